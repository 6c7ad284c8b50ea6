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
  char store_first[11], store_last[11];  /* days of the oldest and newest report, "" */
} QuerySummary;

void query_summary_free(QuerySummary *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QuerySummary, query_summary_free)

/* The summary of the window. (transfer full) or NULL + DB_ERROR. */
QuerySummary *query_summary(TrDb *db, const QueryParams *params, GError **error);

/* The `--by` table of the window: QueryCount* rows, largest failed first (by day: in
 * day order). Per MX, per result type and per sending IP the rows count failure
 * details (successful_sessions -1). (transfer full) */
GPtrArray *query_by(TrDb *db, const QueryParams *params, QueryBy by, GError **error);

#endif
