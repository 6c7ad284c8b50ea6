/* render-text.c - the reading commands' text for a terminal: 80 columns, plain words,
 * every string a sender controls through tr_escape_terminal(). */
#include "render.h"
#include "report-datetime.h"

#include "escape.h"
#include "report-deviation.h"
#include "result-type.h"

#include <string.h>

#define RENDER_WIDTH 79

char *
render_percent(double ratio)
{
  if (ratio <= 0)
    return g_strdup("0%");
  if (ratio < 0.0001)
    return g_strdup("<0.01%");
  return g_strdup_printf("%.2f%%", ratio * 100.0);
}

static char *
esc(const char *s)
{
  return tr_escape_terminal(s != NULL ? s : "");
}

/* Display width of @len bytes of UTF-8 text (one column per character; a byte each
 * when it is not UTF-8). */
static gsize
render_width_len(const char *s, gsize len)
{
  gsize ascii = 0;
  while (ascii < len && (guchar) s[ascii] < 0x80)
    ascii++;
  if (ascii == len)
    return len;             /* plain ASCII: a column a byte, valid UTF-8 */
  if (!g_utf8_validate(s, (gssize) len, NULL))
    return len;
  gsize n = 0;
  for (gsize i = 0; i < len; i++)
    n += ((guchar) s[i] & 0xC0) != 0x80;
  return n;
}

static gsize
render_width(const char *s)
{
  return render_width_len(s, strlen(s));
}

/* @text wrapped at RENDER_WIDTH: the first line after @first (already counted as
 * @first_width columns by the caller, who appended it), the next ones indented by
 * @indent spaces. Ends with a newline. Words are runs between spaces, appended in
 * place (no copy of each). */
static void
render_wrap(GString *out, gsize indent, const char *first, const char *text)
{
  g_string_append(out, first);
  gsize col = render_width(first);
  gboolean line_start = TRUE;
  for (const char *p = text; *p != '\0';) {
    if (*p == ' ') {
      p++;
      continue;
    }
    const char *end = strchr(p, ' ');
    gsize len = end != NULL ? (gsize) (end - p) : strlen(p);
    gsize w = render_width_len(p, len);
    if (!line_start && col + 1 + w > RENDER_WIDTH) {
      g_string_append_c(out, '\n');
      for (gsize k = 0; k < indent; k++)
        g_string_append_c(out, ' ');
      col = indent;
      line_start = TRUE;
    }
    if (!line_start) {
      g_string_append_c(out, ' ');
      col++;
    }
    g_string_append_len(out, p, (gssize) len);
    col += w;
    line_start = FALSE;
    p += len;
  }
  g_string_append_c(out, '\n');
}

static void
render_wrapf(GString *out, gsize indent, const char *first, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

static void
render_wrapf(GString *out, gsize indent, const char *first, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  render_wrap(out, indent, first, text);
}

/* "DATE" for the window's last day: until is exclusive. */
static void
render_day(gint64 epoch, char buf[11])
{
  db_format_day(epoch, buf);
}

static const char *
render_severity_words(QuerySeverity s)
{
  switch (s) {
  case QUERY_SEVERITY_OK: return "no failure";
  case QUERY_SEVERITY_NOTICE: return "a few failures, usually senders' own trouble";
  case QUERY_SEVERITY_WARNING: return "look into it";
  case QUERY_SEVERITY_CRITICAL: return "something is wrong on the receiving side";
  }
  return "";
}

/* ---- summary ----------------------------------------------------------------- */

static void
render_trend(GString *out, const QueryResultType *t)
{
  if (t->clean_reports_since > 0)
    render_wrapf(out, 8, "      Trend: ",
                 "not seen since %s: %" G_GINT64_FORMAT " clean report%s since (first "
                 "seen %s).",
                 t->last_seen, t->clean_reports_since,
                 t->clean_reports_since == 1 ? "" : "s", t->first_seen);
  else if (t->new_in_window)
    render_wrapf(out, 8, "      Trend: ", "new: first seen %s, last seen %s (the newest "
                 "report).", t->first_seen, t->last_seen);
  else
    render_wrapf(out, 8, "      Trend: ", "ongoing: first seen %s, before this window; "
                 "last seen %s (the newest report).", t->first_seen, t->last_seen);
}

static void
render_counts_line(GString *out, const char *label, const GPtrArray *rows, const char *empty)
{
  g_autoptr(GString) line = g_string_new(NULL);
  for (guint i = 0; rows != NULL && i < rows->len; i++) {
    const QueryCount *c = rows->pdata[i];
    g_autofree char *name = esc(c->name[0] != '\0' ? c->name : empty);
    g_string_append_printf(line, "%s%s (%" G_GINT64_FORMAT ")", i ? ", " : "", name,
                           c->failed_sessions);
  }
  if (line->len > 0)
    render_wrap(out, 4, label, line->str);
}

/* The wrapped "Cause:" and "Fix:" lines of a known result type, made once per
 * rendering: @wrapped maps its ResultTypeInfo to them. */
static const char *
render_cause_fix(GHashTable *wrapped, const ResultTypeInfo *info)
{
  const char *text = g_hash_table_lookup(wrapped, info);
  if (text == NULL) {
    GString *lines = g_string_new(NULL);
    render_wrap(lines, 8, "      Cause: ", info->cause);
    render_wrap(lines, 8, "      Fix: ", info->fix);
    text = g_string_free(lines, FALSE);
    g_hash_table_insert(wrapped, (gpointer) info, (gpointer) text);
  }
  return text;
}

static void
render_domain_details(GString *out, const QuerySummary *s, const QueryDomain *d,
                      GHashTable *wrapped)
{
  g_autofree char *dom = esc(d->policy_domain[0] ? d->policy_domain : "(no policy domain)");
  g_autofree char *pct = render_percent(d->failure_ratio);
  g_string_append_c(out, '\n');
  render_wrapf(out, 2, "", "%s: %s, %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
               " sessions failed (%s) in %" G_GINT64_FORMAT " report%s.",
               dom, query_severity_name(d->severity), d->failed_sessions,
               d->successful_sessions + d->failed_sessions, pct, d->reports,
               d->reports == 1 ? "" : "s");
  /* Recovered: every result type has clean reports after its last day. */
  if (d->result_types != NULL && d->result_types->len > 0) {
    gint64 clean = G_MAXINT64;
    const char *last = "";
    for (guint i = 0; i < d->result_types->len; i++) {
      const QueryResultType *t = d->result_types->pdata[i];
      clean = MIN(clean, t->clean_reports_since);
      if (strcmp(t->last_seen, last) > 0)
        last = t->last_seen;
    }
    if (clean > 0)
      render_wrapf(out, 4, "  ", "Recovered? No failure since %s: %" G_GINT64_FORMAT
                   " clean report%s since then.", last, clean, clean == 1 ? "" : "s");
  }
  if (d->result_types != NULL && d->result_types->len > 0) {
    g_string_append(out, "  What failed (failed sessions by result type):\n");
    for (guint i = 0; i < d->result_types->len; i++) {
      const QueryResultType *t = d->result_types->pdata[i];
      g_autofree char *name = esc(t->result_type[0] ? t->result_type : "(none given)");
      const ResultTypeInfo *info = result_type_find(t->result_type);
      g_autofree char *head = g_strdup_printf("    %s: %" G_GINT64_FORMAT "%s", name,
                                              t->failed_sessions,
                                              info == NULL ? " (unknown type)" : "");
      g_string_append(out, head);
      g_string_append_c(out, '\n');
      if (info != NULL) {
        g_string_append(out, render_cause_fix(wrapped, info));
      } else {
        render_wrap(out, 8, "      ", result_type_unknown_note);
      }
      render_trend(out, t);
    }
  }
  /* Which MX: say so when the failures concentrate on one of several. */
  if (d->mx_hosts != NULL && d->mx_hosts->len > 0) {
    render_counts_line(out, "  Receiving MX: ", d->mx_hosts, "(not reported)");
    const QueryCount *top = d->mx_hosts->pdata[0];
    guint known_mx = 0;
    for (guint i = 0; i < d->mx_hosts->len; i++)
      known_mx += ((const QueryCount *) d->mx_hosts->pdata[i])->name[0] != '\0';
    guint patterns = d->mx_patterns != NULL ? d->mx_patterns->len : 0;
    if (top->name[0] != '\0' && d->mx_hosts->len == 1 && patterns >= 2) {
      g_autofree char *mx = esc(top->name);
      render_wrapf(out, 4, "  ",
                   "Only %s fails; the policy lists %u MX patterns: look at that host "
                   "first.",
                   mx, patterns);
    } else if (top->name[0] != '\0' && known_mx >= 2 &&
               top->failed_sessions * 10 >= d->failed_sessions * 9) {
      g_autofree char *mx = esc(top->name);
      render_wrapf(out, 4, "  ", "Most failures are on %s.", mx);
    }
  }
  if (d->organizations_list != NULL) {
    g_autoptr(GString) line = g_string_new(NULL);
    for (guint i = 0; i < d->organizations_list->len; i++) {
      const QueryCount *c = d->organizations_list->pdata[i];
      g_autofree char *name = esc(c->name[0] ? c->name : "(unnamed)");
      g_string_append_printf(line, "%s%s (%" G_GINT64_FORMAT " failed)", i ? ", " : "", name,
                             c->failed_sessions);
    }
    render_wrap(out, 4, "  Reported by: ", line->str);
  }
  render_counts_line(out, "  Top sending IPs: ", d->sending_ips, "(not reported)");
  if (d->detail_mismatches > 0)
    render_wrapf(out, 4, "  Note: ",
                 "in %" G_GINT64_FORMAT " polic%s the failure details do not add up to "
                 "the summary's failure total; the summary's total is what is counted.",
                 d->detail_mismatches, d->detail_mismatches == 1 ? "y" : "ies");
  if (d->result_types != NULL && d->result_types->len > 0) {
    const QueryResultType *t = d->result_types->pdata[0];
    const QueryCount *mx = d->mx_hosts != NULL && d->mx_hosts->len > 0 ? d->mx_hosts->pdata[0]
                                                                        : NULL;
    g_autoptr(GString) cmd = g_string_new("tlsrpt-ingest explain");
    if (t->known)
      g_string_append_printf(cmd, " %s", t->result_type);
    if (result_type_plain_hostname(d->policy_domain))
      g_string_append_printf(cmd, " --domain %s", d->policy_domain);
    if (mx != NULL && result_type_plain_hostname(mx->name))
      g_string_append_printf(cmd, " --mx %s", mx->name);
    render_wrap(out, 4, "  Diagnose: ", cmd->str);
  }
}

static void
render_table_header(GString *out)
{
  g_string_append_printf(out, "%-28s %7s %4s %10s %8s %7s  %s\n", "POLICY DOMAIN", "REPORTS",
                         "ORGS", "SUCCESSFUL", "FAILED", "RATIO", "SEVERITY");
}

/* At least this many failing domains for a second thread to write half of them. */
#define RENDER_SPLIT_MIN 64

/* The blocks of the failing domains among s->domains [from, to) into @out. */
static void
render_details(const QuerySummary *s, guint from, guint to, GString *out)
{
  g_autoptr(GHashTable) wrapped = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  for (guint i = from; i < to; i++) {
    const QueryDomain *d = s->domains->pdata[i];
    if (d->failed_sessions > 0)
      render_domain_details(out, s, d, wrapped);
  }
}

typedef struct {
  const QuerySummary *s;
  guint from, to;
  GString *out;               /* (transfer full) */
} RenderDetails;

static gpointer
render_details_thread(gpointer data)
{
  RenderDetails *r = data;
  render_details(r->s, r->from, r->to, r->out);
  return NULL;
}

void
render_summary_text(const QuerySummary *s, const RenderSummaryOptions *o, QueryBy by,
                    const GPtrArray *by_rows, GString *out)
{
  char since[11], last[11];
  render_day(s->since, since);
  render_day(s->until - 1, last);
  if (s->store_reports == 0) {
    g_autofree char *store = esc(o->store);
    render_wrapf(out, 0, "", "No reports yet in %s. Ingest some first (see tlsrpt-ingest "
                 "--help), or give --store DIR.", store);
    return;
  }
  if (s->reports == 0) {
    render_wrapf(out, 0, "",
                 "No report starts between %s and %s (UTC%s%s). The index holds %"
                 G_GINT64_FORMAT " report%s, from %s to %s: try --since %s.",
                 since, last, o->window_note ? ", " : "", o->window_note ? o->window_note : "",
                 s->store_reports, s->store_reports == 1 ? "" : "s", s->store_first,
                 s->store_last, s->store_first);
    return;
  }
  render_wrapf(out, 0, "",
               "TLS reports starting %s to %s (UTC%s%s): %" G_GINT64_FORMAT " report%s, %u "
               "policy domain%s.",
               since, last, o->window_note ? ", " : "", o->window_note ? o->window_note : "",
               s->reports, s->reports == 1 ? "" : "s", s->domains->len,
               s->domains->len == 1 ? "" : "s");
  /* The reports' trust verdicts (docs/trust.md), when any was checked. */
  gboolean checked = FALSE;
  for (guint i = 0; s->verdicts != NULL && i < s->verdicts->len && !checked; i++)
    checked = *((const QueryCount *) s->verdicts->pdata[i])->name != '\0';
  if (checked) {
    g_autoptr(GString) v = g_string_new("DKIM verdicts: ");
    for (guint i = 0; i < s->verdicts->len; i++) {
      const QueryCount *c = s->verdicts->pdata[i];
      g_autofree char *name = esc(*c->name != '\0' ? c->name : "not checked");
      g_string_append_printf(v, "%s%" G_GINT64_FORMAT " %s", i ? ", " : "", c->reports, name);
    }
    g_string_append(v, " (--dkim VERDICT to see only those).");
    render_wrapf(out, 0, "", "%s", v->str);
  }
  g_string_append_c(out, '\n');

  if (by != QUERY_BY_DOMAIN && by_rows != NULL) {
    static const char *const heads[] = { "POLICY DOMAIN", "RECEIVING MX", "RESULT TYPE",
                                         "ORGANIZATION", "SENDING IP", "DAY" };
    gboolean have_ok = by_rows->len == 0 ||
                       ((const QueryCount *) by_rows->pdata[0])->successful_sessions >= 0;
    if (have_ok)
      g_string_append_printf(out, "%-36s %7s %10s %8s %7s\n", heads[by], "REPORTS",
                             "SUCCESSFUL", "FAILED", "RATIO");
    else
      g_string_append_printf(out, "%-36s %7s %8s\n", heads[by], "REPORTS", "FAILED");
    for (guint i = 0; i < by_rows->len; i++) {
      const QueryCount *c = by_rows->pdata[i];
      g_autofree char *name = esc(c->name[0] ? c->name : "(not reported)");
      if (render_width(name) > 36) {
        g_string_append_printf(out, "%s\n", name);
        g_free(name);
        name = g_strdup("");
      }
      gsize pad = 36 - render_width(name);
      g_string_append(out, name);
      for (gsize k = 0; k < pad; k++)
        g_string_append_c(out, ' ');
      if (have_ok) {
        gint64 total = c->successful_sessions + c->failed_sessions;
        g_autofree char *pct = render_percent(total > 0 ? (double) c->failed_sessions / total : 0);
        g_string_append_printf(out, " %7" G_GINT64_FORMAT " %10" G_GINT64_FORMAT
                               " %8" G_GINT64_FORMAT " %7s\n",
                               c->reports, c->successful_sessions, c->failed_sessions, pct);
      } else {
        g_string_append_printf(out, " %7" G_GINT64_FORMAT " %8" G_GINT64_FORMAT "\n",
                               c->reports, c->failed_sessions);
      }
    }
    if (!have_ok)
      render_wrap(out, 0, "\n",
                  "Counted from the failure details (the summary blocks do not say which "
                  "MX, result type or sending IP their failures were).");
    return;
  }

  render_table_header(out);
  for (guint i = 0; i < s->domains->len; i++) {
    const QueryDomain *d = s->domains->pdata[i];
    g_autofree char *name = esc(d->policy_domain[0] ? d->policy_domain : "(none)");
    if (render_width(name) > 28) {
      g_string_append_printf(out, "%s\n", name);
      g_free(name);
      name = g_strdup("");
    }
    gsize pad = 28 - render_width(name);
    g_string_append(out, name);
    for (gsize k = 0; k < pad; k++)
      g_string_append_c(out, ' ');
    g_autofree char *pct = render_percent(d->failure_ratio);
    g_string_append_printf(out, " %7" G_GINT64_FORMAT " %4" G_GINT64_FORMAT " %10"
                           G_GINT64_FORMAT " %8" G_GINT64_FORMAT " %7s  %s\n",
                           d->reports, d->organizations, d->successful_sessions,
                           d->failed_sessions, pct, query_severity_name(d->severity));
  }
  /* The failing domains' blocks depend on their domain alone: on two processors the
   * second half of them is written on a thread into a string of its own, appended
   * after the first half (the same text). */
  guint failing = 0, mid = s->domains->len;
  for (guint i = 0; i < s->domains->len; i++)
    failing += ((const QueryDomain *) s->domains->pdata[i])->failed_sessions > 0;
  if (failing >= RENDER_SPLIT_MIN && g_get_num_processors() > 1)
    for (guint i = 0, seen = 0; i < s->domains->len; i++)
      if (((const QueryDomain *) s->domains->pdata[i])->failed_sessions > 0 &&
          seen++ == failing / 2) {
        mid = i;
        break;
      }
  RenderDetails rest = { s, mid, s->domains->len, g_string_new(NULL) };
  GThread *t = mid < s->domains->len
                   ? g_thread_try_new("tlsrpt-render", render_details_thread, &rest, NULL)
                   : NULL;
  render_details(s, 0, t != NULL ? mid : s->domains->len, out);
  if (t != NULL) {
    g_thread_join(t);
    g_string_append_len(out, rest.out->str, (gssize) rest.out->len);
  }
  g_string_free(rest.out, TRUE);
  g_autofree char *w = g_strdup_printf("%g%%", o->warn * 100), *c = g_strdup_printf("%g%%", o->crit * 100);
  g_string_append_c(out, '\n');
  render_wrapf(out, 0, "",
               "Failure ratio = failed / (successful + failed) sessions, from the reports' "
               "summaries. Severity: ok = %s; notice = below %s (%s); warning = %s to "
               "%s (%s); critical = above %s (%s).",
               render_severity_words(QUERY_SEVERITY_OK), w,
               render_severity_words(QUERY_SEVERITY_NOTICE), w, c,
               render_severity_words(QUERY_SEVERITY_WARNING), c,
               render_severity_words(QUERY_SEVERITY_CRITICAL));
  gboolean any_failure = FALSE;
  for (guint i = 0; i < s->domains->len; i++)
    any_failure |= ((const QueryDomain *) s->domains->pdata[i])->failed_sessions > 0;
  if (any_failure)
    render_wrap(out, 0, "",
                "After a fix, watch the reports of the next 48-72 hours: the trend lines "
                "say when a result type was last seen.");
}

/* ---- show ------------------------------------------------------------------ */

static void
render_join(GString *out, const GPtrArray *list, const char *sep)
{
  for (guint i = 0; list != NULL && i < list->len; i++) {
    if (i > 0)
      g_string_append(out, sep);
    g_autofree char *e = esc(list->pdata[i]);
    g_string_append(out, e);
  }
}

void
render_report_text(const Report *r, double warn, double crit, GString *out)
{
  char begin[21], end[21];
  report_datetime_format(r->begin, begin);
  report_datetime_format(r->end, end);
  g_autofree char *org = esc(r->organization_name[0] ? r->organization_name : "(no name)");
  g_autofree char *id = esc(r->report_id);
  g_autofree char *contact = esc(r->contact_info ? r->contact_info : "(none)");
  render_wrapf(out, 2, "", "Report from %s for %s to %s", org, begin, end);
  render_wrap(out, 4, "  report-id: ", id);
  render_wrap(out, 4, "  contact:   ", contact);
  if (r->ingest.submitter != NULL) {
    g_autofree char *sub = esc(r->ingest.submitter);
    render_wrap(out, 4, "  submitter: ", sub);
  }
  if (r->ingest.source != NULL) {
    g_autofree char *src = esc(r->ingest.source);
    render_wrap(out, 4, "  read from: ", src);
  }
  for (guint i = 0; i < r->policies->len; i++) {
    const ReportPolicy *p = r->policies->pdata[i];
    gint64 total = p->total_successful + p->total_failure;
    double ratio = total > 0 ? (double) p->total_failure / (double) total : 0;
    g_autofree char *pct = render_percent(ratio);
    g_autofree char *type = esc(p->policy_type);
    g_autofree char *dom = esc(p->policy_domain ? p->policy_domain : "(not given)");
    g_string_append_c(out, '\n');
    render_wrapf(out, 2, "", "Policy %u: %s for %s: %" G_GINT64_FORMAT " successful, %"
                 G_GINT64_FORMAT " failed sessions (%s, %s)",
                 i + 1, type, dom, p->total_successful, p->total_failure, pct,
                 query_severity_name(query_severity(p->total_successful, p->total_failure,
                                                    warn, crit)));
    if (p->mx_hosts->len > 0) {
      g_autoptr(GString) mx = g_string_new(NULL);
      render_join(mx, p->mx_hosts, ", ");
      render_wrap(out, 4, "  MX patterns: ", mx->str);
    }
    if (p->policy_strings->len > 0) {
      g_autoptr(GString) ps = g_string_new(NULL);
      render_join(ps, p->policy_strings, " | ");
      render_wrap(out, 4, "  Policy: ", ps->str);
    }
    gint64 detail_sum = 0;
    for (guint j = 0; j < p->failures->len; j++) {
      const ReportFailure *f = p->failures->pdata[j];
      detail_sum += f->failed_session_count;
      g_autofree char *rt = esc(f->result_type[0] ? f->result_type : "(none given)");
      const ResultTypeInfo *info = result_type_find(f->result_type);
      render_wrapf(out, 6, "  ", "Failure %u: %s, %" G_GINT64_FORMAT " session%s%s", j + 1, rt,
                   f->failed_session_count, f->failed_session_count == 1 ? "" : "s",
                   info == NULL ? " (unknown type)" : "");
      g_autofree char *ip = esc(f->sending_mta_ip ? f->sending_mta_ip : "(not reported)");
      g_autofree char *mx = esc(f->receiving_mx_hostname ? f->receiving_mx_hostname
                                                         : "(not reported)");
      g_autoptr(GString) route = g_string_new(NULL);
      g_string_append_printf(route, "from %s to MX %s", ip, mx);
      if (f->receiving_ip != NULL) {
        g_autofree char *rip = esc(f->receiving_ip);
        g_string_append_printf(route, " (%s)", rip);
      }
      if (f->receiving_mx_helo != NULL) {
        g_autofree char *helo = esc(f->receiving_mx_helo);
        g_string_append_printf(route, ", HELO %s", helo);
      }
      render_wrap(out, 6, "    ", route->str);
      if (f->failure_reason_code != NULL) {
        g_autofree char *code = esc(f->failure_reason_code);
        render_wrap(out, 6, "    Reason code: ", code);
      }
      if (f->additional_information != NULL) {
        g_autofree char *add = esc(f->additional_information);
        render_wrap(out, 6, "    More: ", add);
      }
      if (info != NULL) {
        render_wrap(out, 6, "    Cause: ", info->cause);
        render_wrap(out, 6, "    Fix: ", info->fix);
      } else {
        render_wrap(out, 6, "    ", result_type_unknown_note);
      }
    }
    if (p->failures->len > 0 && detail_sum != p->total_failure)
      render_wrapf(out, 4, "  Note: ",
                   "the failure details count %" G_GINT64_FORMAT " sessions, the summary %"
                   G_GINT64_FORMAT " (details may overlap or be incomplete; the summary "
                   "counts).",
                   detail_sum, p->total_failure);
  }
  if (r->deviations != NULL && r->deviations->len > 0) {
    g_string_append_c(out, '\n');
    g_string_append(out, "  Accepted despite:\n");
    for (guint i = 0; i < r->deviations->len; i++) {
      ReportDeviation d = g_array_index(r->deviations, ReportDeviation, i);
      render_wrapf(out, 6, "    - ", "%s (%s)", report_deviation_text(d),
                   report_deviation_slug(d));
    }
  }
}

/* ---- explain --------------------------------------------------------------- */

static const char *
render_area(ResultArea a)
{
  switch (a) {
  case RESULT_AREA_TLS: return "the MX's TLS";
  case RESULT_AREA_DANE: return "DANE (DNSSEC and TLSA)";
  case RESULT_AREA_STS: return "MTA-STS";
  }
  return "";
}

static void
render_explain_one(const ResultTypeInfo *info, const char *domain, const char *mx,
                   GString *out)
{
  g_string_append_printf(out, "%s  (%s)\n", info->name, render_area(info->area));
  render_wrap(out, 4, "  What failed: ", info->what);
  render_wrap(out, 4, "  Usual cause: ", info->cause);
  render_wrap(out, 4, "  Fix: ", info->fix);
  g_string_append(out, "  Diagnose:\n");
  for (guint i = 0; info->diagnose[i] != NULL; i++) {
    g_autofree char *cmd = result_type_command(info->diagnose[i], domain, mx);
    g_autofree char *e = esc(cmd);
    g_string_append_printf(out, "    $ %s\n", e);
  }
}

void
render_explain_text(const char *name, const char *domain, const char *mx, GString *out)
{
  if (name != NULL) {
    const ResultTypeInfo *info = result_type_find(name);
    if (info != NULL) {
      render_explain_one(info, domain, mx, out);
      return;
    }
    g_autofree char *e = esc(name);
    g_string_append_printf(out, "%s  (unknown result type)\n", e);
    render_wrap(out, 2, "  ", result_type_unknown_note);
    g_string_append(out, "  The eleven known ones: tlsrpt-ingest explain\n");
    return;
  }
  for (guint i = 0; result_types[i] != NULL; i++) {
    if (i > 0)
      g_string_append_c(out, '\n');
    render_explain_one(result_types[i], domain, mx, out);
  }
  g_string_append_c(out, '\n');
  render_wrap(out, 2, "Any other type: ", result_type_unknown_note);
  if (!result_type_plain_hostname(domain) || !result_type_plain_hostname(mx))
    render_wrap(out, 0, "\n",
                "DOMAIN and MX stand for your policy domain and MX host: give --domain "
                "and --mx to fill them in.");
}
