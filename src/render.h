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

#endif
