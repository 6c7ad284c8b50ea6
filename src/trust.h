/* trust.h - the trust verdict of a message (RFC 8460 §5.3: a report by mail must carry
 * a valid DKIM signature of the reporting domain), and what the policy (--dkim) makes of
 * it. docs/trust.md explains the verdicts and the policies.
 *
 * A DKIM signature counts for a report when it verifies (trust-dkim.h), has no l=,
 * its d= is the From domain or shares its organizational domain (the public suffix
 * list of the Debian publicsuffix package, read at run time by libpsl), and with
 * --dkim-require-submitter its d= matches the TLS-Report-Submitter in the same way.
 * Else the topmost Authentication-Results field of a trusted authserv-id (if any)
 * counts when it says dkim=pass for such a domain. */
#ifndef TLSRPT_TRUST_H
#define TLSRPT_TRUST_H

#include "common.h"

typedef enum {
  TRUST_UNCHECKED,        /* --dkim=off: no verdict */
  TRUST_PASS,             /* a signature counts */
  TRUST_FAIL,             /* signed, but no signature counts (bad, l=, other domain) */
  TRUST_NONE,             /* not signed (a loose report file too) */
  TRUST_TEMPERROR,        /* a key could not be had for now */
  TRUST_PERMERROR,        /* signatures that cannot be checked (syntax, no key) */
  TRUST_TRUSTED_AR,       /* our MTA's Authentication-Results says dkim=pass */
  TRUST_UNAUTHENTICATED,  /* an HTTPS POST: nothing to check */
} TrustVerdictKind;

typedef struct {
  TrustVerdictKind kind;
  char *domain;           /* the signing domain (d=, header.d), or NULL */
  char *why;              /* for the log and the quarantine reason (sender strings
                             escaped), or NULL */
} TrustVerdict;

void trust_verdict_clear(TrustVerdict *v);

/* "pass", "fail", "none", "temperror", "permerror", "trusted-ar", "unauthenticated";
 * NULL for TRUST_UNCHECKED. (transfer none) */
const char *trust_verdict_name(TrustVerdictKind kind);
/* The kind of a name above; FALSE when unknown. */
gboolean trust_verdict_from_name(const char *name, TrustVerdictKind *kind);

typedef struct TrTrust TrTrust;

/* The checker for @opts (TrOptions.trust): reads --dkim-keys now (CLI_ERROR_USAGE when
 * it cannot). NULL and no error under --dkim=off. (transfer full) */
TrTrust *trust_new(const TrTrustOptions *opts, GError **error);
void trust_free(TrTrust *trust);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrTrust, trust_free)

/* The verdict of the mail message @message whose From domain is @from_domain and whose
 * TLS-Report-Submitter is @submitter (both nullable). Thread-safe. */
void trust_check_message(TrTrust *trust, GBytes *message, const char *from_domain,
                         const char *submitter, TrustVerdict *out);

typedef enum {
  TRUST_ACCEPT,           /* store the reports (with their verdict) */
  TRUST_QUARANTINE,       /* --dkim=require and no pass: the verdict is the reason */
  TRUST_TEMPFAIL,         /* --dkim=require and a temperror: leave it for a later run */
} TrustDecision;

/* What the policy of @trust (nullable: accept) makes of @v; @raw_report: a loose
 * report file or an HTTPS POST (accepted under --accept-unsigned-files). */
TrustDecision trust_decide(const TrTrust *trust, const TrustVerdict *v, gboolean raw_report);

/* Whether @a and @b are the same domain or share their organizational domain (the
 * public suffix list; without it, the same domain only). Case-insensitive. */
gboolean trust_org_aligned(const char *a, const char *b);

/* The public suffix list file that is read (the first of Debian's that exists), or
 * NULL. (transfer none) */
const char *trust_psl_file(void);

#endif
