/* render-html.c - `report --html`: one self-contained page a person would rather look
 * at. No script, no external resource (font, image, style sheet), a
 * Content-Security-Policy that forbids them all, so it works offline and as a mail
 * attachment. Charts are inline SVG generated here, readable without colour: each
 * series has a pattern and the legend names it. Every string a sender controls goes
 * through tr_escape_html_append() (HTML text, quoted attributes and SVG text alike). */
#include "render.h"

#include "escape.h"
#include "result-type.h"

#include <string.h>

#define HTML_MAX_DAYS 400         /* chart columns: a longer window is cut at its end */
#define HTML_MAX_TYPES 6          /* result types with a pattern of their own per chart */
#define HTML_MAX_NOTES 10         /* failure reason codes / additional information rows */
#define HTML_MAX_SECTIONS RENDER_HTML_SECTIONS
#define HTML_MAX_ROWS 200         /* domains in the overview table */
#define HTML_CHART_W 640
#define HTML_CHART_H 160

static void
esc(GString *out, const char *s)
{
  tr_escape_html_append(out, s != NULL ? s : "");
}

/* https: URLs only, and only plain ones: anything else is shown as text. */
static gboolean
html_https_url(const char *s)
{
  if (s == NULL || g_ascii_strncasecmp(s, "https://", 8) != 0 || strlen(s) > 2048 ||
      s[8] == '\0')
    return FALSE;
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\'' || *p == '<' || *p == '>' ||
        *p == '\\' || *p == '`')
      return FALSE;
  return TRUE;
}

static const char *const html_fills[HTML_MAX_TYPES + 1] = {
  "url(#p0)", "url(#p1)", "url(#p2)", "url(#p3)", "url(#p4)", "url(#p5)", "url(#p6)",
};

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
    "style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'\">\n"
    "<meta name=\"referrer\" content=\"no-referrer\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";

static const char html_style[] =
    "<style>\n"
    "body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;color:#111}\n"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #999;padding:.2em .5em;"
    "text-align:left;vertical-align:top}td.n,th.n{text-align:right}\n"
    ".sev{font-weight:bold;padding:0 .4em;border:2px solid #111}\n"
    ".critical{background:#f4c7c3}.warning{background:#fce8b2}.notice{background:#e8eaf6}"
    ".ok{background:#d9ead3}\n"
    "section{border-top:2px solid #555;margin-top:1.5em}svg{display:block;margin:.5em 0}\n"
    ".legend span{margin-right:1em}.legend svg{display:inline;margin:0;vertical-align:middle}\n"
    "code{word-break:break-all}\n"
    "</style>\n</head>\n<body>\n";

/* The patterns: successful (light, dots), failed (dark, hatched), and one per result
 * type slot. */
static const char html_defs[] =
    "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs>\n"
    "<pattern id=\"ok\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
    "<rect width=\"6\" height=\"6\" fill=\"#9fd49a\"/><circle cx=\"3\" cy=\"3\" r=\"1\" "
    "fill=\"#2e6b29\"/></pattern>\n"
    "<pattern id=\"bad\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
    "<rect width=\"6\" height=\"6\" fill=\"#d0312d\"/><path d=\"M0 6L6 0\" stroke=\"#000\" "
    "stroke-width=\"1.5\"/></pattern>\n"
    "<pattern id=\"p0\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
    "<rect width=\"6\" height=\"6\" fill=\"#d0312d\"/><path d=\"M0 6L6 0\" stroke=\"#000\"/>"
    "</pattern>\n"
    "<pattern id=\"p1\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
    "<rect width=\"6\" height=\"6\" fill=\"#f39c12\"/><path d=\"M3 0V6\" stroke=\"#000\"/>"
    "</pattern>\n"
    "<pattern id=\"p2\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
    "<rect width=\"6\" height=\"6\" fill=\"#8e44ad\"/><path d=\"M0 3H6\" stroke=\"#fff\"/>"
    "</pattern>\n"
    "<pattern id=\"p3\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
    "<rect width=\"6\" height=\"6\" fill=\"#2980b9\"/><circle cx=\"3\" cy=\"3\" r=\"1.5\" "
    "fill=\"#fff\"/></pattern>\n"
    "<pattern id=\"p4\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
    "<rect width=\"6\" height=\"6\" fill=\"#16a085\"/><path d=\"M0 0L6 6\" stroke=\"#000\"/>"
    "</pattern>\n"
    "<pattern id=\"p5\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
    "<rect width=\"6\" height=\"6\" fill=\"#7f8c8d\"/><path d=\"M0 3H6M3 0V6\" "
    "stroke=\"#fff\"/></pattern>\n"
    "<pattern id=\"p6\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
    "<rect width=\"6\" height=\"6\" fill=\"#bbb\"/></pattern>\n"
    "</defs></svg>\n";

static void
html_legend_item(GString *out, const char *fill, const char *label)
{
  g_string_append_printf(out, "<span><svg width=\"14\" height=\"14\"><rect width=\"14\" "
                              "height=\"14\" fill=\"%s\" stroke=\"#000\"/></svg> ", fill);
  esc(out, label);
  g_string_append(out, "</span>");
}

static void
html_day(GString *out_day, gint64 epoch)
{
  char buf[11];
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(epoch);
  g_autofree char *s = t != NULL ? g_date_time_format(t, "%Y-%m-%d") : g_strdup("?");
  g_strlcpy(buf, s, sizeof buf);
  g_string_append(out_day, buf);
}

/* The days of the window, as "YYYY-MM-DD" strings (at most HTML_MAX_DAYS, the last). */
static GPtrArray *
html_days(const QuerySummary *s)
{
  GPtrArray *days = g_ptr_array_new_with_free_func(g_free);
  gint64 first = s->since - (s->since % 86400);
  gint64 n = (s->until - first + 86399) / 86400;
  if (n > HTML_MAX_DAYS)
    first += (n - HTML_MAX_DAYS) * 86400, n = HTML_MAX_DAYS;
  for (gint64 i = 0; i < n; i++) {
    GString *d = g_string_new(NULL);
    html_day(d, first + i * 86400);
    g_ptr_array_add(days, g_string_free(d, FALSE));
  }
  return days;
}

static gint
html_day_index(const GPtrArray *days, const char *day)
{
  /* days are sorted: binary search */
  gint lo = 0, hi = (gint) days->len - 1;
  while (lo <= hi) {
    gint mid = (lo + hi) / 2;
    int c = strcmp(days->pdata[mid], day);
    if (c == 0)
      return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

/* Chart 1: per day, the sessions, the failed part on top. */
static void
html_chart_sessions(GString *out, const char *domain, const GPtrArray *days,
                    const GPtrArray *rows)
{
  guint n = days->len;
  g_autofree gint64 *ok = g_new0(gint64, n), *bad = g_new0(gint64, n);
  gint64 max = 0;
  for (guint i = 0; i < rows->len; i++) {
    const QueryGroup *g = rows->pdata[i];
    if (strcmp(g->key[0], domain) != 0)
      continue;
    gint k = html_day_index(days, g->key[1]);
    if (k < 0)
      continue;
    ok[k] += g->successful_sessions;
    bad[k] += g->failed_sessions;
  }
  for (guint i = 0; i < n; i++)
    max = MAX(max, ok[i] + bad[i]);
  double bw = (double) (HTML_CHART_W - 40) / n;
  g_string_append_printf(out,
                         "<svg class=\"chart sessions\" width=\"%d\" height=\"%d\" "
                         "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"Sessions per day\">\n"
                         "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\" "
                         "stroke=\"#999\"/>\n",
                         HTML_CHART_W, HTML_CHART_H + 20, HTML_CHART_W, HTML_CHART_H + 20,
                         HTML_CHART_W, HTML_CHART_H + 20);
  for (guint i = 0; i < n && max > 0; i++) {
    gint64 total = ok[i] + bad[i];
    if (total == 0)
      continue;
    double x = 30 + i * bw, h = (double) total / (double) max * (HTML_CHART_H - 20);
    double hb = (double) bad[i] / (double) max * (HTML_CHART_H - 20);
    if (bad[i] > 0 && hb < 2)
      hb = 2;
    double y = HTML_CHART_H - h;
    g_string_append_printf(out, "<g data-day=\"%s\"><title>%s: %" G_GINT64_FORMAT
                                " successful, %" G_GINT64_FORMAT " failed</title>",
                           (char *) days->pdata[i], (char *) days->pdata[i], ok[i], bad[i]);
    g_string_append_printf(out, "<rect class=\"ok\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                                "height=\"%.1f\" fill=\"url(#ok)\" stroke=\"#2e6b29\"/>",
                           x, y + hb, MAX(bw - 2, 1), h - hb);
    if (bad[i] > 0)
      g_string_append_printf(out,
                             "<rect class=\"failed\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                             "height=\"%.1f\" fill=\"url(#bad)\" stroke=\"#000\"/>"
                             "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" "
                             "text-anchor=\"middle\">%" G_GINT64_FORMAT "</text>",
                             x, y, MAX(bw - 2, 1), hb, x + bw / 2 - 1, y - 2, bad[i]);
    g_string_append(out, "</g>\n");
  }
  g_string_append_printf(out, "<text x=\"2\" y=\"12\" font-size=\"10\">%" G_GINT64_FORMAT
                              "</text><text x=\"30\" y=\"%d\" font-size=\"10\">%s</text>"
                              "<text x=\"%d\" y=\"%d\" font-size=\"10\" "
                              "text-anchor=\"end\">%s</text>\n</svg>\n",
                         max, HTML_CHART_H + 14, (char *) days->pdata[0], HTML_CHART_W - 4,
                         HTML_CHART_H + 14, (char *) days->pdata[n - 1]);
  g_string_append(out, "<div class=\"legend\">");
  html_legend_item(out, "url(#ok)", "successful sessions");
  html_legend_item(out, "url(#bad)", "failed sessions (count above the bar)");
  g_string_append(out, "</div>\n");
}

/* Chart 2: per day, the failed sessions by result type, stacked. */
static void
html_chart_types(GString *out, const QueryDomain *d, const GPtrArray *days,
                 const GPtrArray *rows)
{
  guint n = days->len;
  guint ntypes = d->result_types != NULL ? MIN(d->result_types->len, HTML_MAX_TYPES) : 0;
  g_autofree gint64 *v = g_new0(gint64, (gsize) n * (HTML_MAX_TYPES + 1));
  gint64 max = 0;
  for (guint i = 0; i < rows->len; i++) {
    const QueryGroup *g = rows->pdata[i];
    if (strcmp(g->key[0], d->policy_domain) != 0)
      continue;
    gint k = html_day_index(days, g->key[1]);
    if (k < 0)
      continue;
    guint slot = HTML_MAX_TYPES;
    for (guint t = 0; t < ntypes; t++)
      if (strcmp(((QueryResultType *) d->result_types->pdata[t])->result_type, g->key[2]) == 0)
        slot = t;
    v[(gsize) k * (HTML_MAX_TYPES + 1) + slot] += g->failed_sessions;
  }
  for (guint i = 0; i < n; i++) {
    gint64 sum = 0;
    for (guint t = 0; t <= HTML_MAX_TYPES; t++)
      sum += v[(gsize) i * (HTML_MAX_TYPES + 1) + t];
    max = MAX(max, sum);
  }
  if (max == 0)
    return;
  double bw = (double) (HTML_CHART_W - 40) / n;
  g_string_append_printf(out,
                         "<svg class=\"chart types\" width=\"%d\" height=\"%d\" "
                         "viewBox=\"0 0 %d %d\" role=\"img\" "
                         "aria-label=\"Failed sessions per day by result type\">\n"
                         "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\" "
                         "stroke=\"#999\"/>\n",
                         HTML_CHART_W, HTML_CHART_H + 20, HTML_CHART_W, HTML_CHART_H + 20,
                         HTML_CHART_W, HTML_CHART_H + 20);
  for (guint i = 0; i < n; i++) {
    double y = HTML_CHART_H, x = 30 + i * bw;
    for (guint t = 0; t <= HTML_MAX_TYPES; t++) {
      gint64 c = v[(gsize) i * (HTML_MAX_TYPES + 1) + t];
      if (c == 0)
        continue;
      double h = MAX((double) c / (double) max * (HTML_CHART_H - 20), 2);
      y -= h;
      g_string_append_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                                  "fill=\"%s\" stroke=\"#000\"><title>%s: ",
                             x, y, MAX(bw - 2, 1), h, html_fills[t], (char *) days->pdata[i]);
      if (t < ntypes)
        esc(out, ((QueryResultType *) d->result_types->pdata[t])->result_type);
      else
        g_string_append(out, "other result types");
      g_string_append_printf(out, " %" G_GINT64_FORMAT "</title></rect>", c);
    }
  }
  g_string_append_printf(out, "<text x=\"2\" y=\"12\" font-size=\"10\">%" G_GINT64_FORMAT
                              "</text>\n</svg>\n<div class=\"legend\">",
                         max);
  for (guint t = 0; t < ntypes; t++)
    html_legend_item(out, html_fills[t],
                     ((QueryResultType *) d->result_types->pdata[t])->result_type);
  if (d->result_types != NULL && d->result_types->len > ntypes)
    html_legend_item(out, html_fills[HTML_MAX_TYPES], "other result types");
  g_string_append(out, "</div>\n");
}

static void
html_percent(GString *out, double ratio)
{
  g_autofree char *p = render_percent(ratio);
  g_string_append(out, p);
}

static void
html_domain(GString *out, guint idx, const QueryDomain *d, const RenderReportInput *in,
            const GPtrArray *days)
{
  const char *sev = query_severity_name(d->severity);
  g_string_append_printf(out, "<section id=\"d%u\">\n<h2>", idx);
  esc(out, d->policy_domain);
  g_string_append_printf(out, " <span class=\"sev %s\">%s</span></h2>\n<p>", sev, sev);
  g_string_append_printf(out, "%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                              " sessions failed (",
                         d->failed_sessions, d->successful_sessions + d->failed_sessions);
  html_percent(out, d->failure_ratio);
  g_string_append_printf(out, ") in %" G_GINT64_FORMAT " report%s from %" G_GINT64_FORMAT
                              " organization%s; newest report %s.</p>\n",
                         d->reports, d->reports == 1 ? "" : "s", d->organizations,
                         d->organizations == 1 ? "" : "s", d->last_report);
  g_string_append(out, "<h3>Sessions per day</h3>\n");
  html_chart_sessions(out, d->policy_domain, days, in->sessions_by_day);
  if (d->result_types != NULL && d->result_types->len > 0) {
    g_string_append(out, "<h3>Failed sessions per day by result type</h3>\n");
    html_chart_types(out, d, days, in->failures_by_day);
    g_string_append(out, "<h3>What failed</h3>\n<table class=\"failures\"><tr><th>result "
                         "type</th><th class=\"n\">failed sessions</th><th>cause</th>"
                         "<th>fix</th><th>trend</th></tr>\n");
    for (guint i = 0; i < d->result_types->len; i++) {
      const QueryResultType *t = d->result_types->pdata[i];
      const ResultTypeInfo *info = result_type_find(t->result_type);
      g_string_append(out, "<tr><td><code>");
      esc(out, t->result_type[0] ? t->result_type : "(none given)");
      g_string_append_printf(out, "</code>%s</td><td class=\"n\">%" G_GINT64_FORMAT "</td>",
                             info != NULL ? "" : " (unknown type)", t->failed_sessions);
      if (info != NULL) {
        g_string_append(out, "<td>");
        esc(out, info->cause);
        g_string_append(out, "</td><td>");
        esc(out, info->fix);
        g_string_append(out, "</td>");
      } else {
        g_string_append(out, "<td colspan=\"2\">");
        esc(out, result_type_unknown_note);
        g_string_append(out, "</td>");
      }
      if (t->new_in_window)
        g_string_append_printf(out, "<td>new: first seen %s, last seen %s</td></tr>\n",
                               t->first_seen, t->last_seen);
      else if (t->clean_reports_since > 0)
        g_string_append_printf(out, "<td>not seen since %s: %" G_GINT64_FORMAT
                                    " clean report%s since (first seen %s)</td></tr>\n",
                               t->last_seen, t->clean_reports_since,
                               t->clean_reports_since == 1 ? "" : "s", t->first_seen);
      else
        g_string_append_printf(out, "<td>seen from %s to %s</td></tr>\n", t->first_seen,
                               t->last_seen);
    }
    g_string_append(out, "</table>\n");
  }
  if (d->mx_hosts != NULL && d->mx_hosts->len > 0) {
    g_string_append(out, "<h3>Receiving MX</h3>\n<table class=\"mx\"><tr><th>MX host</th>"
                         "<th class=\"n\">failed sessions</th></tr>\n");
    for (guint i = 0; i < d->mx_hosts->len; i++) {
      const QueryCount *c = d->mx_hosts->pdata[i];
      g_string_append(out, "<tr><td><code>");
      esc(out, c->name[0] ? c->name : "(not reported)");
      g_string_append_printf(out, "</code></td><td class=\"n\">%" G_GINT64_FORMAT
                                  "</td></tr>\n", c->failed_sessions);
    }
    g_string_append(out, "</table>\n");
    if (d->mx_hosts->len == 1 && d->mx_patterns != NULL && d->mx_patterns->len > 1) {
      g_string_append(out, "<p>Only <code>");
      esc(out, ((QueryCount *) d->mx_hosts->pdata[0])->name);
      g_string_append_printf(out, "</code> fails; the policy lists %u MX patterns: look at "
                                  "that host first.</p>\n", d->mx_patterns->len);
    }
  }
  if (d->organizations_list != NULL && d->organizations_list->len > 0) {
    g_string_append(out, "<h3>Reported by</h3>\n<ul class=\"orgs\">");
    for (guint i = 0; i < d->organizations_list->len; i++) {
      const QueryCount *c = d->organizations_list->pdata[i];
      g_string_append(out, "<li>");
      esc(out, c->name[0] ? c->name : "(not named)");
      g_string_append_printf(out, ": %" G_GINT64_FORMAT " failed</li>", c->failed_sessions);
    }
    g_string_append(out, "</ul>\n");
  }
  guint shown = 0;
  for (guint i = 0; in->notes != NULL && i < in->notes->len; i++) {
    const QueryGroup *g = in->notes->pdata[i];
    if (strcmp(g->key[0], d->policy_domain) != 0 || shown >= HTML_MAX_NOTES)
      continue;
    if (shown++ == 0)
      g_string_append(out, "<h3>What the senders said</h3>\n<table class=\"notes\"><tr>"
                           "<th>failure reason code</th><th>additional information</th>"
                           "<th class=\"n\">failed sessions</th></tr>\n");
    g_string_append(out, "<tr><td><code>");
    esc(out, g->key[1]);
    g_string_append(out, "</code></td><td>");
    if (html_https_url(g->key[2])) {
      g_string_append(out, "<a href=\"");
      esc(out, g->key[2]);
      g_string_append(out, "\" rel=\"noopener noreferrer nofollow\">");
      esc(out, g->key[2]);
      g_string_append(out, "</a>");
    } else {
      g_string_append(out, "<code>");
      esc(out, g->key[2]);
      g_string_append(out, "</code>");
    }
    g_string_append_printf(out, "</td><td class=\"n\">%" G_GINT64_FORMAT "</td></tr>\n",
                           g->failed_sessions);
  }
  if (shown > 0)
    g_string_append(out, "</table>\n");
  shown = 0;
  for (guint i = 0; in->deviations != NULL && i < in->deviations->len; i++) {
    const QueryGroup *g = in->deviations->pdata[i];
    if (strcmp(g->key[0], d->policy_domain) != 0)
      continue;
    if (shown++ == 0)
      g_string_append(out, "<h3>Deviations the senders' reports had</h3>\n<ul class=\"dev\">");
    g_string_append(out, "<li><code>");
    esc(out, g->key[1]);
    g_string_append(out, "</code>: ");
    esc(out, g->key[2]);
    g_string_append_printf(out, " (%" G_GINT64_FORMAT " report%s)</li>", g->reports,
                           g->reports == 1 ? "" : "s");
  }
  if (shown > 0)
    g_string_append(out, "</ul>\n");
  if (d->detail_mismatches > 0)
    g_string_append_printf(out, "<p>In %" G_GINT64_FORMAT " polic%s the failure details do "
                                "not add up to the summary's failure total; the summary's "
                                "total is what is counted.</p>\n",
                           d->detail_mismatches, d->detail_mismatches == 1 ? "y" : "ies");
  g_string_append(out, "</section>\n");
}

void
render_report_html(const RenderReportInput *in, GString *out)
{
  const QuerySummary *s = in->summary;
  g_string_append(out, html_head);
  g_string_append(out, "<title>TLS reports: ");
  esc(out, in->window_note);
  g_string_append(out, "</title>\n");
  g_string_append(out, html_style);
  g_string_append(out, html_defs);
  g_string_append(out, "<h1>SMTP TLS reports</h1>\n<p>Reports starting ");
  html_day(out, s->since);
  g_string_append(out, " to ");
  html_day(out, s->until - 1);
  g_string_append(out, " (UTC, ");
  esc(out, in->window_note);
  g_string_append_printf(out, "): %" G_GINT64_FORMAT " report%s, %u policy domain%s.</p>\n",
                         s->reports, s->reports == 1 ? "" : "s", s->domains->len,
                         s->domains->len == 1 ? "" : "s");
  if (s->domains->len == 0) {
    g_string_append(out, "<p>No report in this window.</p>\n</body>\n</html>\n");
    return;
  }
  g_string_append(out, "<table class=\"summary\"><tr><th>policy domain</th><th>severity</th>"
                       "<th class=\"n\">reports</th><th class=\"n\">successful</th>"
                       "<th class=\"n\">failed</th><th class=\"n\">ratio</th></tr>\n");
  for (guint i = 0; i < s->domains->len && i < HTML_MAX_ROWS; i++) {
    const QueryDomain *d = s->domains->pdata[i];
    const char *sev = query_severity_name(d->severity);
    if (i < HTML_MAX_SECTIONS)
      g_string_append_printf(out, "<tr><td><a href=\"#d%u\">", i);
    else
      g_string_append(out, "<tr><td><a>");
    esc(out, d->policy_domain);
    g_string_append_printf(out, "</a></td><td class=\"%s\">%s</td><td class=\"n\">%"
                                G_GINT64_FORMAT "</td><td class=\"n\">%" G_GINT64_FORMAT
                                "</td><td class=\"n\">%" G_GINT64_FORMAT "</td><td class=\"n\">",
                           sev, sev, d->reports, d->successful_sessions, d->failed_sessions);
    html_percent(out, d->failure_ratio);
    g_string_append(out, "</td></tr>\n");
  }
  g_string_append(out, "</table>\n");
  if (s->domains->len > HTML_MAX_ROWS)
    g_string_append_printf(out, "<p>... and %u more domains, all better than those above "
                                "(tlsrpt-ingest summary lists them).</p>\n",
                           s->domains->len - HTML_MAX_ROWS);
  g_autofree char *w = render_percent(in->warn), *c = render_percent(in->crit);
  g_string_append_printf(out, "<p>Failure ratio = failed / (successful + failed) sessions, "
                              "from the reports' summaries. Severity: ok = no failure; "
                              "notice = below %s; warning = %s to %s; critical = above %s."
                              "</p>\n",
                         w, w, c, c);
  g_autoptr(GPtrArray) days = html_days(s);
  for (guint i = 0; i < s->domains->len && i < HTML_MAX_SECTIONS; i++)
    html_domain(out, i, s->domains->pdata[i], in, days);
  if (s->domains->len > HTML_MAX_SECTIONS)
    g_string_append_printf(out, "<p>The %u domains after the first %d have no section here: "
                                "tlsrpt-ingest report --domain D shows one.</p>\n",
                           s->domains->len - HTML_MAX_SECTIONS, HTML_MAX_SECTIONS);
  g_string_append(out, "</body>\n</html>\n");
}

void
render_report_text_page(const RenderReportInput *in, const RenderSummaryOptions *o,
                        GString *out)
{
  render_summary_text(in->summary, o, QUERY_BY_DOMAIN, NULL, out);
  /* The charts' numbers, as a table per domain. */
  for (guint i = 0; i < in->summary->domains->len; i++) {
    const QueryDomain *d = in->summary->domains->pdata[i];
    gboolean any = FALSE;
    for (guint j = 0; j < in->sessions_by_day->len; j++) {
      const QueryGroup *g = in->sessions_by_day->pdata[j];
      if (strcmp(g->key[0], d->policy_domain) != 0)
        continue;
      if (!any) {
        g_autofree char *name = tr_escape_terminal(d->policy_domain);
        g_string_append_printf(out, "\n%s per day:\n  DAY         SUCCESSFUL     FAILED\n",
                               name);
        any = TRUE;
      }
      g_string_append_printf(out, "  %-10s %11" G_GINT64_FORMAT " %10" G_GINT64_FORMAT "\n",
                             g->key[1], g->successful_sessions, g->failed_sessions);
    }
  }
}
