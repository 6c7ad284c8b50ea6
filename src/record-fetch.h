/* record-fetch.h - the MTA-STS policy fetch of `record check` (RFC 8461 §3.3) with
 * libcurl (curl-dl.h): https://mta-sts.DOMAIN/.well-known/mta-sts.txt, the certificate
 * verified for that name, no redirect followed, at most 64 KiB, text/plain. The host is
 * connected at the address record-dns.c found, so the same resolver decides. */
#ifndef TLSRPT_RECORD_FETCH_H
#define TLSRPT_RECORD_FETCH_H

#include "common.h"

typedef enum {
  RECORD_FETCH_OK,            /* 200, text/plain, body within the limit */
  RECORD_FETCH_CONNECT,       /* no connection (refused, timeout, TLS handshake) */
  RECORD_FETCH_WEBPKI,        /* the certificate is not valid for the host: sts-webpki-invalid */
  RECORD_FETCH_STATUS,        /* an HTTP status other than 200 */
  RECORD_FETCH_REDIRECT,      /* a 3xx: RFC 8461 forbids following it */
  RECORD_FETCH_TOO_LARGE,     /* over 64 KiB */
  RECORD_FETCH_TYPE,          /* 200, but not text/plain */
  RECORD_FETCH_SETUP,         /* libcurl missing or unusable */
} RecordFetchStatus;

typedef struct {
  RecordFetchStatus status;
  char *url;
  long http_status;           /* 0 when no response */
  char *content_type;         /* as sent, or NULL */
  GBytes *body;               /* what was read (up to the limit), never NULL */
  char *error;                /* libcurl's message when not OK, or NULL */
} RecordFetch;

void record_fetch_free(RecordFetch *fetch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RecordFetch, record_fetch_free)

/* Fetch the policy of @host ("mta-sts.DOMAIN") from @address (as record-dns.h gave it)
 * on @port (443 but in tests). @cacert: CA file to trust instead of the system's, or
 * NULL. Never fails: the status says what happened. (transfer full) */
RecordFetch *record_fetch_policy(const char *host, const char *address, guint port,
                                 const char *cacert, double timeout);

#endif
