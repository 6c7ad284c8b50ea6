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

#endif
