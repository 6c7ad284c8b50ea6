/* query.h - the questions the reading commands ask the SQL index, answered as plain
 * structs. It knows no output format (renderers: render.h) and the renderers know no
 * SQL. Every statement is plain SQL with $N placeholders (db.h), the same for SQLite
 * and PostgreSQL.
 *
 * Window rule: a report belongs to the window when its start-datetime is in
 * [since, until) (UTC epoch seconds). Totals come from the policies' summary blocks,
 * never from adding failure-detail counts. */
#ifndef TLSRPT_QUERY_H
#define TLSRPT_QUERY_H

#include "common.h"
#include "db.h"

typedef enum {
  QUERY_SEVERITY_OK,          /* no failed session */
  QUERY_SEVERITY_NOTICE,      /* failure ratio below the warning threshold */
  QUERY_SEVERITY_WARNING,     /* from the warning threshold up to the critical one */
  QUERY_SEVERITY_CRITICAL,    /* above the critical threshold */
} QuerySeverity;

/* "ok", "notice", "warning", "critical". */
const char *query_severity_name(QuerySeverity s);
/* The severity of @failed of @failed + @successful sessions. */
QuerySeverity query_severity(gint64 successful, gint64 failed, double warn, double crit);

typedef enum {
  QUERY_BY_DOMAIN,
  QUERY_BY_MX,
  QUERY_BY_RESULT,
  QUERY_BY_ORG,
  QUERY_BY_SENDING_IP,
  QUERY_BY_DAY,
} QueryBy;

/* "domain", "mx", "result", "org", "sending-ip", "day"; parse: FALSE if unknown. */
const char *query_by_name(QueryBy by);
gboolean query_by_parse(const char *s, QueryBy *out);

typedef struct {
  gint64 since, until;        /* [since, until), epoch seconds UTC */
  const char *const *domains; /* only these policy domains (NULL-terminated); NULL: all */
  double warn, crit;          /* thresholds as ratios (0.01, 0.05) */
  const char *const *orgs;    /* only reports of these organizations (exact names,
                                 NULL-terminated); NULL: all */
  const char *const *dkim;    /* only reports with these trust verdicts (trust.h's names,
                                 NULL-terminated); NULL: all */
} QueryParams;

typedef struct {
  char *result_type;          /* verbatim ("" when the sender gave none) */
  gboolean known;             /* one of RFC 8460's eleven (result-type.h) */
  gint64 failed_sessions;     /* in the window, from the failure details */
  char first_seen[11];        /* YYYY-MM-DD of the first report with it (any time
                                 before the window's end) */
  char last_seen[11];         /* ... of the last one */
  gboolean new_in_window;     /* first seen inside the window */
  gint64 clean_reports_since; /* reports of the domain after the last day it was seen */
  gint64 first_epoch;         /* start of the first report with it */
} QueryResultType;

typedef struct {
  char *name;                 /* MX host name, sending IP, organization; "" = not reported */
  gint64 reports;
  gint64 successful_sessions; /* -1 where the index has no such number (per MX, per IP) */
  gint64 failed_sessions;
} QueryCount;

typedef struct {
  char *policy_domain;
  gint64 reports;
  gint64 organizations;
  gint64 successful_sessions;
  gint64 failed_sessions;
  double failure_ratio;       /* failed / (successful + failed); 0 without sessions */
  QuerySeverity severity;
  char last_report[11];       /* day of the newest report in the window */
  /* Filled only for domains with failed sessions: */
  GPtrArray *result_types;    /* QueryResultType*, most failed sessions first */
  GPtrArray *mx_hosts;        /* QueryCount* (receiving MX), most failures first */
  GPtrArray *mx_patterns;     /* char*: the MX patterns the policies list */
  GPtrArray *organizations_list; /* QueryCount*, most failed sessions first */
  GPtrArray *sending_ips;     /* QueryCount*, the top 5 */
  gint64 detail_mismatches;   /* policies whose failure-detail counts do not add up to
                                 their summary's failure total (the total is counted) */
} QueryDomain;

typedef struct {
  gint64 since, until;
  GPtrArray *domains;         /* QueryDomain*, worst first (severity, ratio, name) */
  gint64 reports;             /* in the window (after the domain filter) */
  gint64 store_reports;       /* in the whole index */
  GPtrArray *verdicts;        /* QueryCount* per trust verdict of the window's reports
                                 (name: the verdict, "" when not checked; reports),
                                 most reports first; NULL when not asked
                                 (query_summary_with_verdicts() asks) */
  char store_first[11], store_last[11];  /* days of the oldest and newest report, "" */
} QuerySummary;

void query_summary_free(QuerySummary *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QuerySummary, query_summary_free)

/* The summary of the window. (transfer full) or NULL + DB_ERROR. An SQLite index is
 * read on two threads (two connections) when there are two processors. */
QuerySummary *query_summary(TrDb *db, const QueryParams *params, GError **error);
/* The same with QuerySummary.verdicts filled: how many reports of the window (the
 * filters applied) have each trust verdict, counted beside the scan. (transfer full) or
 * NULL + DB_ERROR. */
QuerySummary *query_summary_with_verdicts(TrDb *db, const QueryParams *params,
                                          GError **error);

/* The `--by` table of the window: QueryCount* rows, largest failed first (by day: in
 * day order). Per MX, per result type and per sending IP the rows count failure
 * details (successful_sessions -1). (transfer full) */
GPtrArray *query_by(TrDb *db, const QueryParams *params, QueryBy by, GError **error);


/* ---- the monitoring outputs (check, metrics, report) ---------------------- */

/* The newest report of each (policy domain, organization) in the whole index before
 * the window's end, the domain and organization filters applied: for "no report for
 * N days". Ordered by domain, then organization. */
typedef struct {
  char *policy_domain;
  char *organization;         /* "" when the report names none */
  gint64 newest_begin;        /* start-datetime of the newest report, epoch UTC */
  gint64 reports;             /* policies of the pair in the whole index (a report's
                                 policies are counted apart: cheaper than reports) */
} QueryLatest;

/* (transfer full) QueryLatest* rows, or NULL + DB_ERROR. */
GPtrArray *query_latest(TrDb *db, const QueryParams *params, GError **error);

/* One row of a grouped count in the window: up to three keys and the sessions. */
typedef struct {
  char *key[3];               /* never NULL ("" when absent) */
  gint64 reports;
  gint64 successful_sessions; /* -1 for rows counted from failure details */
  gint64 failed_sessions;
} QueryGroup;

/* Sessions from the policies' summaries, by (policy domain, policy type,
 * organization). (transfer full) QueryGroup*, ordered by the keys. */
GPtrArray *query_sessions_by_policy(TrDb *db, const QueryParams *params, GError **error);
/* Failed sessions from the failure details, by (policy domain, result type verbatim,
 * receiving MX or ""). (transfer full) QueryGroup*, ordered by the keys. */
GPtrArray *query_failures_by_mx(TrDb *db, const QueryParams *params, GError **error);
/* Per (policy domain, day "YYYY-MM-DD") the sessions from the summaries. (transfer
 * full) QueryGroup* (key[2] ""), ordered by domain and day. */
GPtrArray *query_sessions_by_day(TrDb *db, const QueryParams *params, GError **error);
/* Per (policy domain, day, result type) the failed sessions of the failure details.
 * (transfer full) QueryGroup*, ordered by domain, day, result type. */
GPtrArray *query_failures_by_day(TrDb *db, const QueryParams *params, GError **error);
/* Per (policy domain, deviation slug or its text when it has none) the reports of the
 * window that had the deviation. (transfer full) QueryGroup* (key[2] the text of one of
 * them), ordered by domain, most reports first. */
GPtrArray *query_deviations(TrDb *db, const QueryParams *params, GError **error);
/* Per (policy domain, failure reason code or "", additional information or "") the
 * failed sessions of the window's failure details. (transfer full) QueryGroup*, ordered
 * by domain, most failed sessions first. */
GPtrArray *query_failure_notes(TrDb *db, const QueryParams *params, GError **error);

#endif
