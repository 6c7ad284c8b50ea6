/* report.h - the TLS report (RFC 8460 §4) as one C struct, its dedup key, and its
 * normalized JSON form (written with json-writer.h, no JSON library).
 *
 * The report's other modules: report-parse.h (JSON bytes into a Report),
 * report-deviation.h (the tolerated quirks, as a table), report-filename.h (the §5.1
 * file names), report-datetime.h (its datetimes), report-json.h (the JSON values the
 * parser converts). */
#ifndef TLSRPT_REPORT_H
#define TLSRPT_REPORT_H

#include "common.h"
#include "json-writer.h"
#include "report-deviation.h"

/* In a report from report_parse() the strings of a failure detail, and the detail
 * itself, live in the report's arena (repeated values shared): read them, do not free
 * or modify them. */
typedef struct {
  char *result_type;              /* kept verbatim, unknown values included; "" if absent */
  char *sending_mta_ip;           /* NULL when absent or "" */
  char *receiving_mx_hostname;    /* NULL when absent or "" */
  char *receiving_mx_helo;        /* NULL when absent or "" */
  char *receiving_ip;             /* NULL when absent or "" */
  gint64 failed_session_count;    /* 0 when absent */
  char *additional_information;   /* NULL when absent or "" */
  char *failure_reason_code;      /* NULL when absent or "" */
} ReportFailure;

typedef struct {
  char *policy_type;              /* "sts", "tlsa", "no-policy-found" or verbatim */
  GPtrArray *policy_strings;      /* char*, never NULL (may be empty); "\r" stripped */
  char *policy_domain;            /* lower-cased; NULL when missing (Postfix) */
  GPtrArray *mx_hosts;            /* char*, never NULL; "mx: " prefix stripped */
  gint64 total_successful;        /* 0 when absent */
  gint64 total_failure;           /* 0 when absent */
  GPtrArray *failures;            /* ReportFailure*, never NULL (see above) */
} ReportPolicy;

/* Where the report came from: filled by the pipeline, written in the "ingest" block. */
typedef struct {
  char *source;                   /* origin: file path, "stdin", "imap://.../;UID=7" */
  char *submitter;                /* TLS-Report-Submitter, else From domain, else NULL */
  char *report_domain;            /* TLS-Report-Domain header, or NULL */
  char *filename;                 /* attachment file name as sent (unsanitized), or NULL */
  char *message_id;               /* or NULL */
  gint64 received;                /* epoch seconds when ingested */
  char *raw_extension;            /* "json", "json.gz" or "zip" */
  GBytes *raw;                    /* the original attachment bytes, or NULL */
  char *dkim;                     /* the trust verdict (trust.h: "pass", "none", ...), or
                                     NULL when not checked (--dkim=off, older stores) */
  char *dkim_domain;              /* its signing domain, or NULL */
} ReportIngest;

typedef struct {
  char *organization_name;        /* "" if absent (deviation) */
  char *contact_info;             /* NULL when null/absent */
  char *report_id;                /* "" if absent (deviation) */
  gint64 begin;                   /* epoch seconds UTC */
  gint64 end;
  GPtrArray *policies;            /* ReportPolicy*, never NULL */
  GArray *deviations;             /* ReportDeviation (report-deviation.h): each once, in
                                     the order met; never NULL in a parsed report */
  ReportIngest ingest;
  guint8 key[16];                 /* dedup key, see report_compute_key() */
  struct ReportArena *arena;      /* private: storage of the failure details; NULL in a
                                     report built by hand */
} Report;

/* An empty report (policies and deviations empty, no arena): what the parser fills,
 * or a report built by hand. (transfer full) */
Report *report_new(void);
void report_free(Report *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Report, report_free)

/* An empty policy (its arrays empty), for report->policies, which frees it. */
ReportPolicy *report_policy_new(void);

/* A policy-domain as stored: lower case, invalid UTF-8 repaired. (transfer full) */
char *report_lower_domain(const char *s);

/* Dedup key: first 16 bytes of SHA-256 over organization-name, report-id, begin, end
 * (NUL separated, begin/end as decimal epoch seconds). */
void report_compute_key(Report *report);
/* 32 lower-case hex characters (keyset_key_hex()); (transfer full). */
char *report_key_hex(const guint8 key[16]);

/* The first policy-domain of the report, else ingest.report_domain, else the file
 * name's (lower case), else "unknown". (transfer full) */
char *report_primary_domain(const Report *report);

/* The normalized report as JSON: RFC field names, RFC 3339 UTC "Z" datetimes, arrays
 * always arrays, absent optional fields omitted, plus an "ingest" object (source,
 * submitter, report-domain, filename, message-id, received, dkim and dkim-domain (the
 * trust verdict), deviations as
 * {"slug", "text"} objects (report-deviation.h), key).
 * Appends to @out; no trailing newline; @pretty for the tree store. */
void report_to_json(const Report *report, gboolean pretty, GString *out);

/* As report_to_json(), calling @spill whenever @out holds @spill_at bytes or more
 * between two failure details, so that the text of a large report need not be held
 * whole; @spill writes out what it wants and truncates @out. Stops at the first
 * @spill that fails and returns FALSE with its error. */
typedef JsonWriterSpill ReportJsonSpill;
gboolean report_to_json_spill(const Report *report, gboolean pretty, GString *out,
                              gsize spill_at, ReportJsonSpill spill, gpointer user_data,
                              GError **error);

#endif
