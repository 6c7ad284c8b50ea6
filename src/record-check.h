/* record-check.h - `record check DOMAIN`: look up what a policy domain publishes for
 * SMTP TLS reporting and judge it. Three parts, each with what was found (facts) and
 * what is wrong (problems, each with a fix):
 *   TLS-RPT   TXT _smtp._tls.DOMAIN (exactly one v=TLSRPTv1 record, valid), the
 *             authorization records of external mailto: destinations (advisory), and
 *             the common mistakes (a record at the apex, SPF at _smtp._tls);
 *   MTA-STS   TXT _mta-sts.DOMAIN, the policy fetched from mta-sts.DOMAIN, parsed, and
 *             every MX checked against its mx: patterns;
 *   DANE      the MX hosts, their TLSA records at _25._tcp.MX and whether the answers
 *             were DNSSEC-secure, and each such MX host's own _smtp._tls record.
 * Every string in a fact or problem that came from DNS or the policy file is already
 * escaped for a terminal (escape.h). The lookups are record-dns.h and record-fetch.h. */
#ifndef TLSRPT_RECORD_CHECK_H
#define TLSRPT_RECORD_CHECK_H

#include "record.h"

typedef struct {
  const char *name;           /* "TLS-RPT", "MTA-STS", "DANE" */
  char *subject;              /* what was looked at: "_smtp._tls.example.com" */
  GPtrArray *facts;           /* char*: what was found */
  GPtrArray *problems;        /* RecordProblem* (pos RECORD_NO_POS) */
  gboolean lookup_failed;     /* a lookup this part needs had no answer */
} RecordCheckPart;

typedef struct {
  char *domain;
  GPtrArray *parts;           /* RecordCheckPart* */
} RecordCheck;

void record_check_free(RecordCheck *check);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RecordCheck, record_check_free)

typedef struct {
  const char *nameserver;     /* IP[:PORT], or NULL for /etc/resolv.conf */
  const char *trust_anchor;   /* DS/DNSKEY file, or NULL for the root key */
  const char *cacert;         /* CA file for the policy fetch, or NULL */
  guint https_port;           /* of mta-sts.DOMAIN: 443 */
  double timeout;             /* seconds per lookup and for the fetch */
} RecordCheckOptions;

/* Check @domain (already normalized). NULL + error only when no lookup can be made at
 * all (libunbound missing, a bad --nameserver or --trust-anchor). (transfer full) */
RecordCheck *record_check(const char *domain, const RecordCheckOptions *opts,
                          GError **error);

/* The exit code: 0 no error, 1 an error, 2 a lookup failed. */
int record_check_exit_code(const RecordCheck *check);

#endif
