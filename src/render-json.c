/* render-json.c - the summary as the JSON document of docs/summary.md, and the --by
 * table as CSV. json-c writes the JSON (its string escaping is complete). */
#include "render.h"
#include "report-datetime.h"

#include "escape.h"

static TrJson *
rj_str(const char *s)
{
  return json_object_new_string(s != NULL ? s : "");
}

static TrJson *
rj_ratio(double r)
{
  char buf[32];
  g_ascii_formatd(buf, sizeof buf, "%.6f", r);
  return json_object_new_double_s(r, buf);
}

static TrJson *
rj_datetime(gint64 epoch)
{
  char buf[21];
  report_datetime_format(epoch, buf);
  return json_object_new_string(buf);
}

static TrJson *
rj_counts(const GPtrArray *rows, const char *key, gboolean with_reports)
{
  TrJson *a = json_object_new_array();
  for (guint i = 0; rows != NULL && i < rows->len; i++) {
    const QueryCount *c = rows->pdata[i];
    TrJson *o = json_object_new_object();
    json_object_object_add(o, key, c->name[0] ? rj_str(c->name) : NULL);
    if (with_reports)
      json_object_object_add(o, "reports", json_object_new_int64(c->reports));
    if (c->successful_sessions >= 0)
      json_object_object_add(o, "successful_sessions",
                             json_object_new_int64(c->successful_sessions));
    json_object_object_add(o, "failed_sessions", json_object_new_int64(c->failed_sessions));
    json_object_array_add(a, o);
  }
  return a;
}

static const char *const rj_by_keys[] = { "policy_domain", "receiving_mx_hostname",
                                          "result_type", "organization_name",
                                          "sending_mta_ip", "day" };

void
render_summary_json(const QuerySummary *s, const RenderSummaryOptions *o, QueryBy by,
                    const GPtrArray *by_rows, GString *out)
{
  g_autoptr(TrJson) root = json_object_new_object();
  TrJson *win = json_object_new_object();
  json_object_object_add(win, "since", rj_datetime(s->since));
  json_object_object_add(win, "until", rj_datetime(s->until));
  json_object_object_add(win, "rule", json_object_new_string("start-datetime in [since, until)"));
  json_object_object_add(root, "window", win);
  TrJson *th = json_object_new_object();
  json_object_object_add(th, "warning", rj_ratio(o->warn));
  json_object_object_add(th, "critical", rj_ratio(o->crit));
  json_object_object_add(root, "thresholds", th);
  json_object_object_add(root, "reports", json_object_new_int64(s->reports));
  json_object_object_add(root, "store_reports", json_object_new_int64(s->store_reports));
  if (s->verdicts != NULL) {
    /* Reports per trust verdict; "unchecked" for those stored without one. */
    TrJson *v = json_object_new_object();
    for (guint i = 0; i < s->verdicts->len; i++) {
      const QueryCount *c = s->verdicts->pdata[i];
      json_object_object_add(v, *c->name != '\0' ? c->name : "unchecked",
                             json_object_new_int64(c->reports));
    }
    json_object_object_add(root, "dkim", v);
  }
  TrJson *domains = json_object_new_array();
  for (guint i = 0; i < s->domains->len; i++) {
    const QueryDomain *d = s->domains->pdata[i];
    TrJson *jd = json_object_new_object();
    json_object_object_add(jd, "policy_domain", rj_str(d->policy_domain));
    json_object_object_add(jd, "reports", json_object_new_int64(d->reports));
    json_object_object_add(jd, "organizations", json_object_new_int64(d->organizations));
    json_object_object_add(jd, "successful_sessions",
                           json_object_new_int64(d->successful_sessions));
    json_object_object_add(jd, "failed_sessions", json_object_new_int64(d->failed_sessions));
    json_object_object_add(jd, "failure_ratio", rj_ratio(d->failure_ratio));
    json_object_object_add(jd, "severity", json_object_new_string(query_severity_name(d->severity)));
    json_object_object_add(jd, "last_report", json_object_new_string(d->last_report));
    TrJson *rts = json_object_new_array();
    for (guint j = 0; d->result_types != NULL && j < d->result_types->len; j++) {
      const QueryResultType *t = d->result_types->pdata[j];
      TrJson *jt = json_object_new_object();
      json_object_object_add(jt, "result_type", rj_str(t->result_type));
      json_object_object_add(jt, "failed_sessions", json_object_new_int64(t->failed_sessions));
      json_object_object_add(jt, "first_seen", json_object_new_string(t->first_seen));
      json_object_object_add(jt, "last_seen", json_object_new_string(t->last_seen));
      json_object_object_add(jt, "known", json_object_new_boolean(t->known));
      json_object_object_add(jt, "new_in_window", json_object_new_boolean(t->new_in_window));
      json_object_object_add(jt, "clean_reports_since",
                             json_object_new_int64(t->clean_reports_since));
      json_object_array_add(rts, jt);
    }
    json_object_object_add(jd, "result_types", rts);
    json_object_object_add(jd, "mx_hosts", rj_counts(d->mx_hosts, "receiving_mx_hostname", FALSE));
    TrJson *pats = json_object_new_array();
    for (guint j = 0; d->mx_patterns != NULL && j < d->mx_patterns->len; j++)
      json_object_array_add(pats, rj_str(d->mx_patterns->pdata[j]));
    json_object_object_add(jd, "mx_patterns", pats);
    json_object_object_add(jd, "reporting_organizations",
                           rj_counts(d->organizations_list, "organization_name", TRUE));
    json_object_object_add(jd, "sending_ips", rj_counts(d->sending_ips, "sending_mta_ip", FALSE));
    json_object_object_add(jd, "detail_mismatches", json_object_new_int64(d->detail_mismatches));
    json_object_array_add(domains, jd);
  }
  json_object_object_add(root, "domains", domains);
  if (by != QUERY_BY_DOMAIN && by_rows != NULL) {
    TrJson *jb = json_object_new_object();
    json_object_object_add(jb, "by", json_object_new_string(query_by_name(by)));
    json_object_object_add(jb, "rows", rj_counts(by_rows, rj_by_keys[by], TRUE));
    json_object_object_add(root, "table", jb);
  }
  g_string_append(out, json_object_to_json_string_ext(
                           root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                     JSON_C_TO_STRING_NOSLASHESCAPE));
  g_string_append_c(out, '\n');
}

void
render_by_csv(QueryBy by, const GPtrArray *rows, GString *out)
{
  gboolean have_ok = rows == NULL || rows->len == 0 ||
                     ((const QueryCount *) rows->pdata[0])->successful_sessions >= 0;
  if (by == QUERY_BY_MX || by == QUERY_BY_RESULT || by == QUERY_BY_SENDING_IP)
    have_ok = FALSE;
  g_string_append_printf(out, "%s,reports,%sfailed_sessions%s\r\n", rj_by_keys[by],
                         have_ok ? "successful_sessions," : "", have_ok ? ",failure_ratio" : "");
  for (guint i = 0; rows != NULL && i < rows->len; i++) {
    const QueryCount *c = rows->pdata[i];
    tr_csv_cell_append(out, c->name, FALSE);
    g_string_append_printf(out, ",%" G_GINT64_FORMAT, c->reports);
    if (have_ok) {
      gint64 total = c->successful_sessions + c->failed_sessions;
      char buf[32];
      g_ascii_formatd(buf, sizeof buf, "%.6f",
                      total > 0 ? (double) c->failed_sessions / (double) total : 0.0);
      g_string_append_printf(out, ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%s",
                             c->successful_sessions, c->failed_sessions, buf);
    } else {
      g_string_append_printf(out, ",%" G_GINT64_FORMAT, c->failed_sessions);
    }
    g_string_append(out, "\r\n");
  }
}
