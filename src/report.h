/* report.h - the TLS report (RFC 8460 §4) as one C struct: parse and validate with
 * json-c, tolerating real senders' quirks (each recorded as a deviation), normalize,
 * serialize, and the file-name metadata of §5.1. */
#ifndef TLSRPT_REPORT_H
#define TLSRPT_REPORT_H

#include "common.h"
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

/* Metadata from a §5.1 file name: sender!policy-domain!begin!end[!unique-id].json[.gz] */
typedef struct {
  char *sender;
  char *policy_domain;
  gint64 begin;                   /* epoch seconds (ISO-8601 stamps accepted) */
  gint64 end;
  char *unique_id;                /* NULL when absent */
} ReportFilename;

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

void report_free(Report *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Report, report_free)

/* Parse and validate JSON bytes (at most @limits->max_json_depth levels). Below 64 KiB
 * the strict reader of report-json.h reads them without json-c; what it declines, and
 * every larger document, goes to the json-c tokener, with the same result either way.
 * Thread-safe: each thread reuses its own tokeners and arenas. The "failure-details"
 * arrays of a large report are parsed one element at a time (see
 * REPORT_PARSE_INCREMENTAL), so that their json-c objects never all exist at once.
 * Rejects (REPORT_ERROR_JSON / REPORT_ERROR_INVALID, one-line message) only what cannot
 * be a report: not JSON or not an object, no "policies" array, no usable date-range and
 * no @fname to take it from. @fname (nullable) fills a missing date-range and
 * policy-domain; the JSON wins when they disagree (recorded as a deviation).
 * Computes report->key. Returns (transfer full). */
Report *report_parse(GBytes *json, const ReportFilename *fname, const TrLimits *limits,
                     GError **error);

/* How report_parse_with() reads the JSON; the result (report or error) is the same. */
typedef enum {
  REPORT_PARSE_AUTO,          /* what report_parse() does: below 64 KiB the strict reader
                                 of report-json.h, falling back to a json-c tree for what
                                 it declines; from 64 KiB json-c, incrementally */
  REPORT_PARSE_TREE,          /* one json-c object tree of the whole document */
  REPORT_PARSE_INCREMENTAL,   /* a scanner finds each non-empty "failure-details" array;
                                 its elements are parsed and converted one at a time and
                                 the rest of the document is parsed with the array
                                 replaced by a reference. Anything the scanner does not
                                 follow (comments, single quotes, an invalid element)
                                 gives the json-c error of the document, or a second
                                 parse as a tree when the document is valid after all. */
  REPORT_PARSE_STRICT,        /* the strict reader of report-json.h alone (tests): what
                                 it declines fails with REPORT_ERROR_DECLINED */
} ReportParseMode;

Report *report_parse_with(GBytes *json, const ReportFilename *fname, const TrLimits *limits,
                          ReportParseMode mode, GError **error);

/* Dedup key: first 16 bytes of SHA-256 over organization-name, report-id, begin, end
 * (NUL separated, begin/end as decimal epoch seconds). */
void report_compute_key(Report *report);
/* 32 lower-case hex characters; (transfer full). */
char *report_key_hex(const guint8 key[16]);

/* Parse an RFC 3339 date-time; zone-less stamps are UTC (*zoneless set TRUE).
 * Returns FALSE when unparseable. */
gboolean report_parse_datetime(const char *s, gint64 *epoch_out, gboolean *zoneless);
/* Format epoch seconds as "YYYY-MM-DDTHH:MM:SSZ" into @buf (at least 21 bytes). */
void report_format_datetime(gint64 epoch, char buf[21]);

/* Append the decimal digits of @v to @out (the JSON and CSV writers' integers). */
void report_append_int(GString *out, gint64 v);

/* Parse a §5.1 file name (base name only; directories ignored). Returns FALSE (and
 * leaves @out zeroed) when the name does not have that shape. */
gboolean report_filename_parse(const char *filename, ReportFilename *out);
void report_filename_clear(ReportFilename *f);

/* The first policy-domain of the report, else ingest.report_domain, else the file
 * name's, else "unknown". (transfer none) */
const char *report_primary_domain(const Report *report);

/* The normalized report as JSON: RFC field names, RFC 3339 UTC "Z" datetimes, arrays
 * always arrays, absent optional fields omitted, plus an "ingest" object (source,
 * submitter, report-domain, filename, message-id, received, deviations as
 * {"slug", "text"} objects (report-deviation.h), key).
 * Appends to @out; no trailing newline; @pretty for the tree store. */
void report_to_json(const Report *report, gboolean pretty, GString *out);

/* As report_to_json(), calling @spill whenever @out holds @spill_at bytes or more
 * between two failure details, so that the text of a large report need not be held
 * whole; @spill writes out what it wants and truncates @out. Stops at the first
 * @spill that fails and returns FALSE with its error. */
typedef gboolean (*ReportJsonSpill)(GString *out, gpointer user_data, GError **error);
gboolean report_to_json_spill(const Report *report, gboolean pretty, GString *out,
                              gsize spill_at, ReportJsonSpill spill, gpointer user_data,
                              GError **error);

#endif
