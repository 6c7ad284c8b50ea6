/* record.h - the DNS and HTTPS texts a policy domain publishes for SMTP TLS reporting,
 * parsed by hand (no maintained library parses them): the TLS-RPT record (RFC 8460 §3),
 * its rua destinations, the MTA-STS TXT record and policy file (RFC 8461 §3.1, §3.2)
 * and the matching of MX host names against the policy's mx: patterns (§4.1).
 * Also the record `record generate` builds. No I/O here: record-dns.c and
 * record-fetch.c look things up, cmd-record.c decides and prints.
 *
 * Every parser takes bytes with a length (a DNS TXT value may hold NUL bytes) and
 * never fails: what is wrong becomes a RecordProblem with the byte offset where it
 * starts and a suggested fix. Messages quote nothing of the input: the caller shows
 * the input itself, escaped (escape.h). */
#ifndef TLSRPT_RECORD_H
#define TLSRPT_RECORD_H

#include "common.h"

#define RECORD_NO_POS G_MAXSIZE       /* a problem of the whole text, not of one byte */
#define RECORD_STS_MAX_AGE 31557600   /* RFC 8461 §3.2: at most one year, in seconds */
#define RECORD_STS_MAX_POLICY (64 * 1024) /* RFC 8461 §3.3: senders may stop at 64 KiB */

typedef enum {
  RECORD_NOTE,                /* worth knowing, harmless */
  RECORD_WARNING,             /* works, but likely not as meant */
  RECORD_ERROR,               /* senders ignore the record or the policy */
} RecordSeverity;

typedef struct {
  RecordSeverity severity;
  gsize pos;                  /* 0-based byte offset in the parsed text, or RECORD_NO_POS */
  char *message;              /* what is wrong (plain ASCII, no input quoted) */
  char *fix;                  /* what to write instead, or NULL */
} RecordProblem;

/* One rua destination. */
typedef struct {
  char *uri;                  /* as written (nul-terminated copy) */
  gsize pos;                  /* offset of its first byte */
  gboolean mailto;            /* mailto: (else https:) */
  char *domain;               /* lower-case domain of the address or host; NULL if none */
} RecordRua;

typedef struct {
  gboolean is_tlsrpt;         /* starts with "v=TLSRPTv1" (the §3 discovery rule) */
  GPtrArray *rua;             /* RecordRua*, in the order written */
  GPtrArray *extensions;      /* char* "name=value" of unknown fields */
  GPtrArray *problems;        /* RecordProblem*, in the order found */
} RecordTlsrpt;

/* Parse @len bytes of a TLS-RPT record value (TXT strings already joined). (transfer
 * full) */
RecordTlsrpt *record_tlsrpt_parse(const char *value, gsize len);
void record_tlsrpt_free(RecordTlsrpt *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RecordTlsrpt, record_tlsrpt_free)

/* An empty array of RecordProblem* that frees them. (transfer full) */
GPtrArray *record_problems_new(void);

/* Append a problem; @fix nullable. */
void record_problem_add(GPtrArray *problems, RecordSeverity sev, gsize pos, const char *fix,
                        const char *fmt, ...) G_GNUC_PRINTF(5, 6);

/* The worst severity among @problems, or -1 when there is none. */
int record_worst(const GPtrArray *problems);
/* TRUE when @problems holds no RECORD_ERROR. */
gboolean record_ok(const GPtrArray *problems);

/* Check one destination URI (@len bytes at @uri; @pos its offset, for the problems) as
 * RFC 8460 §3 wants it: mailto: with an addr-spec, or https: with a host, no userinfo,
 * no fragment; no unencoded "," "!" ";" or white space. Problems go to @problems.
 * Returns the destination, also when it has errors. (transfer full) */
RecordRua *record_rua_check(const char *uri, gsize len, gsize pos, GPtrArray *problems);
void record_rua_free(RecordRua *rua);

/* Does @host equal @domain or lie below it (case-insensitive, trailing dots ignored)? */
gboolean record_domain_within(const char *host, const char *domain);

/* A domain name as given on the command line (U-labels are converted to A-labels),
 * lower-case, without a trailing dot; NULL + CLI_ERROR_USAGE when it is not a host
 * name. (transfer full) */
char *record_domain_normalize(const char *name, GError **error);

/* ---- record generate ----------------------------------------------------------- */
typedef struct {
  char *domain;               /* the policy domain, normalized */
  char *owner;                /* "_smtp._tls.DOMAIN." */
  char *value;                /* "v=TLSRPTv1; rua=..." */
  GPtrArray *strings;         /* char*: the value cut into character-strings of <= 255 */
  char *zone;                 /* one zone-file line */
  GPtrArray *rua;             /* RecordRua*: the destinations as encoded */
  GPtrArray *problems;        /* RecordProblem* about the destinations (pos = RECORD_NO_POS) */
} RecordGenerated;

/* Build the record for @domain with the destinations @rua (NULL-terminated), each
 * checked and with "," "!" ";" percent-encoded. FALSE + CLI_ERROR_USAGE when the domain
 * or a destination is unusable (the message says which and why). (transfer full) */
RecordGenerated *record_generate(const char *domain, const char *const *rua, GError **error);
void record_generated_free(RecordGenerated *gen);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RecordGenerated, record_generated_free)

/* @value cut into TXT character-strings of at most 255 bytes. (transfer full) */
GPtrArray *record_split_strings(const char *value);
/* @value as one zone-file TXT rdata: quoted strings of <= 255 bytes, '"' and '\'
 * escaped, bytes outside printable ASCII as \DDD. (transfer full) */
char *record_zone_rdata(const char *value, gsize len);

/* ---- MTA-STS (RFC 8461) --------------------------------------------------------- */
typedef struct {
  gboolean is_sts;            /* starts with "v=STSv1" */
  char *id;                   /* the id= value, or NULL */
  GPtrArray *problems;
} RecordStsTxt;

RecordStsTxt *record_sts_txt_parse(const char *value, gsize len);
void record_sts_txt_free(RecordStsTxt *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RecordStsTxt, record_sts_txt_free)

typedef enum {
  RECORD_STS_MODE_UNKNOWN,
  RECORD_STS_MODE_ENFORCE,
  RECORD_STS_MODE_TESTING,
  RECORD_STS_MODE_NONE,
} RecordStsMode;

typedef struct {
  char *version;              /* NULL when absent */
  RecordStsMode mode;
  gint64 max_age;             /* -1 when absent or unusable */
  GPtrArray *mx;              /* char*: the mx: patterns, lower-case, in order */
  GPtrArray *problems;        /* positions are byte offsets in the policy file */
} RecordStsPolicy;

RecordStsPolicy *record_sts_policy_parse(const char *text, gsize len);
void record_sts_policy_free(RecordStsPolicy *pol);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RecordStsPolicy, record_sts_policy_free)
const char *record_sts_mode_name(RecordStsMode mode);

/* Does @host match the mx: @pattern (RFC 8461 §4.1: exact, or "*." and exactly one
 * more label on the left; case-insensitive, trailing dots ignored)? */
gboolean record_sts_mx_match(const char *pattern, const char *host);

#endif
