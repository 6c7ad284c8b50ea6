/* record-dns.h - DNS lookups for `record check`, through libunbound (Debian
 * libunbound8), which validates DNSSEC: DANE needs to know whether an answer was
 * secure, and a bogus one is what the report type dnssec-invalid is about. libunbound
 * is loaded with dlopen() on first use, like libcurl (curl-dl.h), so that the other
 * commands do not load it and its libraries.
 *
 * Every string taken from an answer is exactly what the server sent: escape it
 * (escape.h) before showing it. */
#ifndef TLSRPT_RECORD_DNS_H
#define TLSRPT_RECORD_DNS_H

#include "common.h"

#define RECORD_LOOKUP_ERROR (record_lookup_error_quark())
GQuark record_lookup_error_quark(void);
typedef enum {
  RECORD_LOOKUP_ERROR_SETUP,    /* libunbound missing, bad --nameserver or trust anchor */
  RECORD_LOOKUP_ERROR_FAILED,   /* SERVFAIL, REFUSED, timeout: the answer is unknown */
} RecordLookupError;

enum { RECORD_DNS_A = 1, RECORD_DNS_MX = 15, RECORD_DNS_TXT = 16, RECORD_DNS_AAAA = 28,
       RECORD_DNS_TLSA = 52 };

typedef struct RecordDns RecordDns;

/* @nameserver: "IP", "IP:PORT", "[IPv6]:PORT" or NULL for the servers of
 * /etc/resolv.conf. @trust_anchor: a file of DS or DNSKEY records (zone-file lines),
 * or NULL for the root key of dns-root-data / unbound when installed (without one, no
 * answer is secure). @timeout: seconds per lookup. (transfer full) */
RecordDns *record_dns_new(const char *nameserver, const char *trust_anchor, double timeout,
                          GError **error);
/* As record_dns_new() without DNSSEC validation (no trust anchor), for lookups whose
 * answer needs no "secure" (the DKIM keys of trust-keys.c). (transfer full) */
RecordDns *record_dns_new_plain(const char *nameserver, double timeout, GError **error);
void record_dns_free(RecordDns *dns);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RecordDns, record_dns_free)
/* Whether a trust anchor is configured (else "secure" can never be TRUE). */
gboolean record_dns_validates(const RecordDns *dns);

typedef struct {
  char *name;
  int rrtype;
  gboolean nxdomain;          /* the name does not exist */
  gboolean secure;            /* DNSSEC-validated */
  gboolean bogus;             /* DNSSEC validation failed: no data is returned */
  char *why_bogus;            /* libunbound's reason, or NULL */
  GPtrArray *rdata;           /* GBytes*: the wire rdata of each record; empty = none */
} RecordDnsAnswer;

void record_dns_answer_free(RecordDnsAnswer *ans);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RecordDnsAnswer, record_dns_answer_free)

/* Look @name up. NULL + RECORD_LOOKUP_ERROR_FAILED when no answer could be had (the
 * message says why, without the name); a bogus answer is an answer. (transfer full) */
RecordDnsAnswer *record_dns_query(RecordDns *dns, const char *name, int rrtype,
                                  GError **error);

/* The TXT records of @ans, each one's character-strings joined without spaces (RFC
 * 8460 §3, RFC 8461 §3.1): GBytes*, as many as records. Malformed rdata is skipped.
 * (transfer full) */
GPtrArray *record_dns_txt(const RecordDnsAnswer *ans);

/* How many character-strings one TXT rdata holds. */
guint record_dns_txt_nstrings(GBytes *rdata);

typedef struct {
  guint preference;
  char *host;                 /* lower case, no trailing dot; odd bytes as \DDD */
  gboolean host_ok;           /* a host name (LDH labels) */
} RecordDnsMx;

/* The MX records, sorted by preference (RecordDnsMx*). (transfer full) */
GPtrArray *record_dns_mx(const RecordDnsAnswer *ans);

/* The first address of an A or AAAA answer as text, or NULL. (transfer full) */
char *record_dns_address(const RecordDnsAnswer *ans);

#endif
