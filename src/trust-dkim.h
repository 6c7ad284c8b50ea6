/* trust-dkim.h - DKIM signatures of a message (RFC 6376), verified with libopendkim
 * (Debian libopendkim11), which is loaded with dlopen() the first time a message has a
 * DKIM-Signature: it brings libcrypto, and mda runs once per message.
 *
 * The key of each signature is asked of the caller (TrustDkimLookup), never of the
 * library's own resolver; the key's service types (s=) are checked here: RFC 8460 §3
 * suggests keys with s=tlsrpt, which the library's own check refuses
 * (DKIM_SIGERROR_NOTEMAILKEY). What a signature means for a report (alignment, l=) is
 * trust.c's. */
#ifndef TLSRPT_TRUST_DKIM_H
#define TLSRPT_TRUST_DKIM_H

#include "common.h"

#define TRUST_DKIM_ERROR (trust_dkim_error_quark())
GQuark trust_dkim_error_quark(void);
typedef enum {
  TRUST_DKIM_ERROR_LIBRARY,   /* libopendkim missing or failing as a whole */
} TrustDkimError;

typedef enum {
  TRUST_KEY_FOUND,        /* *record holds the TXT record (strings joined) */
  TRUST_KEY_NOT_FOUND,    /* no such record: a permanent error of the signature */
  TRUST_KEY_TEMPFAIL,     /* no answer for now (timeout, SERVFAIL) */
} TrustKeyStatus;

/* Look up the TXT record of @name ("SELECTOR._domainkey.DOMAIN"). *record and *why
 * (transfer full, nullable) are set as the status says. Called from any thread. */
typedef TrustKeyStatus (*TrustDkimLookup)(const char *name, char **record, char **why,
                                          gpointer data);

typedef enum {
  TRUST_SIG_PASS,         /* the signature verifies */
  TRUST_SIG_FAIL,         /* signature or body hash mismatch, expired */
  TRUST_SIG_PERMERROR,    /* unusable: syntax, no key, a key refused */
  TRUST_SIG_TEMPERROR,    /* its key could not be had for now */
} TrustSigStatus;

typedef struct {
  char *domain;           /* d=, lower case; NULL when missing */
  char *selector;         /* s=, or NULL */
  TrustSigStatus status;
  gboolean partial_body;  /* l= given: only part of the body is signed */
  char *why;              /* what went wrong (sender strings escaped), NULL on a pass */
} TrustDkimSig;

void trust_dkim_sig_free(TrustDkimSig *sig);

/* Whether the top header block of @message has a DKIM-Signature field (a cheap scan:
 * the library is loaded only for messages that have one). */
gboolean trust_dkim_signed(GBytes *message);

/* Verify every signature of @message (raw RFC 5322 bytes, LF or CRLF, an mbox From_
 * line skipped). Returns (transfer full) TrustDkimSig*, in header order (empty when no
 * signature could be found), or NULL + error when libopendkim cannot be loaded or
 * fails as a whole. When no signature's key can be had, the library is not used at
 * all: the verdicts (no key, no answer) are known from the lookups. */
GPtrArray *trust_dkim_verify(GBytes *message, TrustDkimLookup lookup, gpointer data,
                             GError **error);

/* The d= and s= tags of a DKIM-Signature field value (lower case, white space
 * removed; transfer full, NULL when missing): TRUE when both are there. */
gboolean trust_dkim_sig_tags(const char *value, char **domain, char **selector);

/* Do the service types of a key record (its s= tag) allow a report signature: no s=,
 * or one of "*", "email", "tlsrpt"? When they do, *usable (transfer full) is the record
 * without its s= tag, for the library; else NULL. */
gboolean trust_dkim_key_services_ok(const char *record, char **usable);

#endif
