/* render.h - the reading commands' output: the structs of query.h and report.h as
 * text for a terminal (80 columns, every sender-controlled string through
 * tr_escape_terminal()), JSON (docs/summary.md) and CSV. Renderers know no SQL; the
 * meaning of result types comes from result-type.h. */
#ifndef TLSRPT_RENDER_H
#define TLSRPT_RENDER_H

#include "common.h"
#include "query.h"
#include "report.h"

typedef struct {
  const char *window_note;    /* how the window was chosen: "the last 30 days" */
  const char *store;          /* the store or index read, for the empty-store line */
  double warn, crit;          /* thresholds (ratios), said in the text and the JSON */
} RenderSummaryOptions;

/* The summary as text / as the JSON document of docs/summary.md. @by_rows (nullable):
 * the --by table (QueryCount*) to show instead of (text) or beside (JSON) the domains. */
void render_summary_text(const QuerySummary *s, const RenderSummaryOptions *o,
                         QueryBy by, const GPtrArray *by_rows, GString *out);
void render_summary_json(const QuerySummary *s, const RenderSummaryOptions *o,
                         QueryBy by, const GPtrArray *by_rows, GString *out);
/* The --by table as CSV (RFC 4180, header line; cells through tr_csv_cell_append()). */
void render_by_csv(QueryBy by, const GPtrArray *rows, GString *out);

/* One report, readable: header, policies with totals and ratio, failure details with
 * the cause and fix of their result type, deviations. */
void render_report_text(const Report *r, double warn, double crit, GString *out);

/* explain: the entry of @name (NULL: every type), with @domain and @mx (nullable)
 * filled into the diagnosis commands. A name the table does not know gets the
 * unknown-type note. */
void render_explain_text(const char *name, const char *domain, const char *mx, GString *out);

/* "5.38%" of a ratio; "0%" for zero, "<0.01%" for a tiny one. (transfer full) */
char *render_percent(double ratio);

/* ---- check: a monitoring plugin's output (Monitoring Plugins guidelines) ---------- */

typedef enum {
  RENDER_PLUGIN_OK = 0,
  RENDER_PLUGIN_WARNING = 1,
  RENDER_PLUGIN_CRITICAL = 2,
  RENDER_PLUGIN_UNKNOWN = 3,
} RenderPluginState;

/* "OK", "WARNING", "CRITICAL", "UNKNOWN". */
const char *render_plugin_state_name(RenderPluginState s);

/* One policy domain as `check` judged it. */
typedef struct {
  const char *policy_domain;
  const QueryDomain *window;  /* its numbers in the window (nullable: no report in it) */
  RenderPluginState state;
  gboolean stale;             /* no report for --stale days (or never: newest_begin 0) */
  gint64 newest_begin;        /* start of its newest report; 0 = none ever */
  gboolean below_min;         /* failures that do not count: fewer than --min-sessions */
} RenderCheckDomain;

typedef struct {
  double warn, crit;          /* ratios, for the perfdata thresholds */
  gint64 min_sessions;
  int days, stale_days;
  gint64 now;
} RenderCheckOptions;

/* The status line ("TLSRPT WARNING - ... | perfdata"), then one line per domain (worst
 * first). @domains: RenderCheckDomain*, worst first. Returns the overall state (the
 * worst). Sender strings through tr_escape_terminal(), '|' shown as \x7c; perfdata
 * labels hold only [A-Za-z0-9._-] (others become '_'). */
RenderPluginState render_check(const GPtrArray *domains, const RenderCheckOptions *o,
                               GString *out);

/* ---- metrics: the Prometheus text exposition format ------------------------------ */

/* Label values a sender controls are bounded: the policy domains and organizations with
 * the most sessions, the receiving MX hosts with the most failures per domain, the
 * eleven result types and three policy types; the rest is counted under "other". */
#define RENDER_PROM_MAX_DOMAINS 100
#define RENDER_PROM_MAX_ORGS 20
#define RENDER_PROM_MAX_MX 10

typedef struct {
  const GPtrArray *sessions;  /* QueryGroup* of query_sessions_by_policy() */
  const GPtrArray *failures;  /* QueryGroup* of query_failures_by_mx() */
  const GPtrArray *latest;    /* QueryLatest* of query_latest() */
  gint64 store_reports;       /* reports in the index */
  gint64 quarantined;         /* messages in the quarantine; -1: not known */
  int days;                   /* the window: the last @days UTC days */
} RenderPromInput;

/* Every metric with its HELP and TYPE lines (docs/monitoring.md), label values
 * through tr_escape_prom_label_append(), series in label order. */
void render_prom(const RenderPromInput *in, GString *out);

/* ---- report: one self-contained HTML page (HTML + inline SVG) -------------------- */

/* The domains (the summary's first, worst first) with a section of their own: the
 * page reads the daily, deviation and note rows of these only. */
#define RENDER_HTML_SECTIONS 30

typedef struct {
  const QuerySummary *summary;
  const GPtrArray *sessions_by_day;   /* QueryGroup* of query_sessions_by_day() */
  const GPtrArray *failures_by_day;   /* QueryGroup* of query_failures_by_day() */
  const GPtrArray *deviations;        /* QueryGroup* of query_deviations() */
  const GPtrArray *notes;             /* QueryGroup* of query_failure_notes() */
  const char *window_note;            /* "the last 30 days" */
  double warn, crit;
} RenderReportInput;

/* The page: no script, no external resource of any kind, a Content-Security-Policy
 * that forbids them; every sender string escaped for its context (HTML text,
 * attribute, SVG text); additional-information is a link only when it is an https:
 * URL. Charts are generated SVG, readable without colour (patterns and labels). */
void render_report_html(const RenderReportInput *in, GString *out);
/* The same content as text for a mail body (80 columns, terminal-escaped). */
void render_report_text_page(const RenderReportInput *in, const RenderSummaryOptions *o,
                             GString *out);

#endif
