/* render-json.c - the summary as the JSON document of docs/summary.md, and the --by
 * table as CSV. The JSON goes straight into the output through json-writer.h. */
#include "render.h"

#include "escape.h"
#include "json-writer.h"

#include <string.h>

/* The JSON is written as json-c wrote it when it built a tree of the summary first
 * (json-writer.h's json-c layout): the same bytes, without the tree. */

static void
rj_ratio(JsonWriter *w, const char *key, double r)
{
  char buf[32];
  g_ascii_formatd(buf, sizeof buf, "%.6f", r);
  json_writer_key(w, key);
  json_writer_number_text(w, buf);
}

static void
rj_bool(JsonWriter *w, const char *key, gboolean b)
{
  json_writer_key(w, key);
  json_writer_bool(w, b);
}

static void
rj_counts(JsonWriter *w, const char *key, const GPtrArray *rows, const char *name_key,
          gboolean with_reports)
{
  json_writer_key(w, key);
  json_writer_begin_array(w);
  for (guint i = 0; rows != NULL && i < rows->len; i++) {
    const QueryCount *c = rows->pdata[i];
    json_writer_begin_object(w);
    json_writer_key(w, name_key);
    json_writer_string(w, c->name[0] ? c->name : NULL);
    if (with_reports)
      json_writer_member_int(w, "reports", c->reports);
    if (c->successful_sessions >= 0)
      json_writer_member_int(w, "successful_sessions", c->successful_sessions);
    json_writer_member_int(w, "failed_sessions", c->failed_sessions);
    json_writer_end_object(w);
  }
  json_writer_end_array(w);
}

static const char *const rj_by_keys[] = { "policy_domain", "receiving_mx_hostname",
                                          "result_type", "organization_name",
                                          "sending_mta_ip", "day" };

/* The name of verdict @c in the "dkim" object: "unchecked" for reports stored without
 * one. */
static const char *
rj_verdict_key(const QueryCount *c)
{
  return *c->name != '\0' ? c->name : "unchecked";
}

/* Reports per trust verdict. A key given twice (a verdict named "unchecked" besides
 * the unchecked ones) is one member, in the place of the first with the count of the
 * last, as json-c's object did it. */
static void
rj_verdicts(JsonWriter *w, const GPtrArray *verdicts)
{
  json_writer_key(w, "dkim");
  json_writer_begin_object(w);
  for (guint i = 0; i < verdicts->len; i++) {
    const char *key = rj_verdict_key(verdicts->pdata[i]);
    gboolean again = FALSE;
    for (guint j = 0; !again && j < i; j++)
      again = strcmp(rj_verdict_key(verdicts->pdata[j]), key) == 0;
    if (again)
      continue;
    const QueryCount *last = verdicts->pdata[i];
    for (guint j = i + 1; j < verdicts->len; j++)
      if (strcmp(rj_verdict_key(verdicts->pdata[j]), key) == 0)
        last = verdicts->pdata[j];
    json_writer_member_int(w, key, last->reports);
  }
  json_writer_end_object(w);
}

static void
rj_domain(JsonWriter *w, const QueryDomain *d)
{
  json_writer_begin_object(w);
  json_writer_key(w, "policy_domain");
  json_writer_string(w, d->policy_domain != NULL ? d->policy_domain : "");
  json_writer_member_int(w, "reports", d->reports);
  json_writer_member_int(w, "organizations", d->organizations);
  json_writer_member_int(w, "successful_sessions", d->successful_sessions);
  json_writer_member_int(w, "failed_sessions", d->failed_sessions);
  rj_ratio(w, "failure_ratio", d->failure_ratio);
  json_writer_member_string(w, "severity", query_severity_name(d->severity));
  json_writer_member_string(w, "last_report", d->last_report);
  json_writer_key(w, "result_types");
  json_writer_begin_array(w);
  for (guint j = 0; d->result_types != NULL && j < d->result_types->len; j++) {
    const QueryResultType *t = d->result_types->pdata[j];
    json_writer_begin_object(w);
    json_writer_key(w, "result_type");
    json_writer_string(w, t->result_type != NULL ? t->result_type : "");
    json_writer_member_int(w, "failed_sessions", t->failed_sessions);
    json_writer_member_string(w, "first_seen", t->first_seen);
    json_writer_member_string(w, "last_seen", t->last_seen);
    rj_bool(w, "known", t->known);
    rj_bool(w, "new_in_window", t->new_in_window);
    json_writer_member_int(w, "clean_reports_since", t->clean_reports_since);
    json_writer_end_object(w);
  }
  json_writer_end_array(w);
  rj_counts(w, "mx_hosts", d->mx_hosts, "receiving_mx_hostname", FALSE);
  json_writer_key(w, "mx_patterns");
  json_writer_begin_array(w);
  for (guint j = 0; d->mx_patterns != NULL && j < d->mx_patterns->len; j++) {
    const char *p = d->mx_patterns->pdata[j];
    json_writer_string(w, p != NULL ? p : "");
  }
  json_writer_end_array(w);
  rj_counts(w, "reporting_organizations", d->organizations_list, "organization_name", TRUE);
  rj_counts(w, "sending_ips", d->sending_ips, "sending_mta_ip", FALSE);
  json_writer_member_int(w, "detail_mismatches", d->detail_mismatches);
  json_writer_end_object(w);
}

void
render_summary_json(const QuerySummary *s, const RenderSummaryOptions *o, QueryBy by,
                    const GPtrArray *by_rows, GString *out)
{
  JsonWriter w;
  json_writer_init_jsonc(&w, out);
  json_writer_begin_object(&w);
  json_writer_key(&w, "window");
  json_writer_begin_object(&w);
  json_writer_member_datetime(&w, "since", s->since);
  json_writer_member_datetime(&w, "until", s->until);
  json_writer_member_string(&w, "rule", "start-datetime in [since, until)");
  json_writer_end_object(&w);
  json_writer_key(&w, "thresholds");
  json_writer_begin_object(&w);
  rj_ratio(&w, "warning", o->warn);
  rj_ratio(&w, "critical", o->crit);
  json_writer_end_object(&w);
  json_writer_member_int(&w, "reports", s->reports);
  json_writer_member_int(&w, "store_reports", s->store_reports);
  if (s->verdicts != NULL)
    rj_verdicts(&w, s->verdicts);
  json_writer_key(&w, "domains");
  json_writer_begin_array(&w);
  for (guint i = 0; i < s->domains->len; i++)
    rj_domain(&w, s->domains->pdata[i]);
  json_writer_end_array(&w);
  if (by != QUERY_BY_DOMAIN && by_rows != NULL) {
    json_writer_key(&w, "table");
    json_writer_begin_object(&w);
    json_writer_member_string(&w, "by", query_by_name(by));
    rj_counts(&w, "rows", by_rows, rj_by_keys[by], TRUE);
    json_writer_end_object(&w);
  }
  json_writer_end_object(&w);
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
