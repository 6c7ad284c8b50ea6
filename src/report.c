/* report.c - the report model: construction and freeing, the dedup key, the primary
 * domain, and the normalized JSON form (RFC field names, RFC 3339 UTC datetimes, arrays
 * always arrays, plus the "ingest" block). Parsing is report-parse.c. */
#include "report.h"
#include "keyset.h"
#include "report-datetime.h"
#include "report-filename.h"
#include "report-parse.h"

#include <string.h>

static void
report_policy_free(ReportPolicy *p)
{
  if (p == NULL)
    return;
  g_free(p->policy_type);
  g_clear_pointer(&p->policy_strings, g_ptr_array_unref);
  g_free(p->policy_domain);
  g_clear_pointer(&p->mx_hosts, g_ptr_array_unref);
  g_clear_pointer(&p->failures, g_ptr_array_unref);
  g_free(p);
}

ReportPolicy *
report_policy_new(void)
{
  ReportPolicy *p = g_new0(ReportPolicy, 1);
  p->policy_strings = g_ptr_array_new_with_free_func(g_free);
  p->mx_hosts = g_ptr_array_new_with_free_func(g_free);
  p->failures = g_ptr_array_new();     /* the details live in the report's arena */
  return p;
}

Report *
report_new(void)
{
  Report *r = g_new0(Report, 1);
  r->policies = g_ptr_array_new_with_free_func((GDestroyNotify) report_policy_free);
  r->deviations = report_deviations_new();
  return r;
}

void
report_free(Report *report)
{
  if (report == NULL)
    return;
  g_free(report->organization_name);
  g_free(report->contact_info);
  g_free(report->report_id);
  g_clear_pointer(&report->policies, g_ptr_array_unref);
  g_clear_pointer(&report->deviations, g_array_unref);
  report_parse_arena_free(report->arena);
  g_free(report->ingest.source);
  g_free(report->ingest.submitter);
  g_free(report->ingest.dkim);
  g_free(report->ingest.dkim_domain);
  g_free(report->ingest.report_domain);
  g_free(report->ingest.filename);
  g_free(report->ingest.message_id);
  g_free(report->ingest.raw_extension);
  g_clear_pointer(&report->ingest.raw, g_bytes_unref);
  g_free(report);
}

char *
report_lower_domain(const char *s)
{
  if (g_utf8_validate(s, -1, NULL))
    return g_utf8_strdown(s, -1);
  g_autofree char *valid = g_utf8_make_valid(s, -1);
  return g_utf8_strdown(valid, -1);
}

/* ---- key ------------------------------------------------------------------ */

void
report_compute_key(Report *report)
{
  g_return_if_fail(report != NULL);
  g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
  char num[32];
  const char *org = report->organization_name != NULL ? report->organization_name : "";
  const char *id = report->report_id != NULL ? report->report_id : "";
  g_checksum_update(sum, (const guchar *) org, (gssize) strlen(org) + 1);
  g_checksum_update(sum, (const guchar *) id, (gssize) strlen(id) + 1);
  int n = g_snprintf(num, sizeof num, "%" G_GINT64_FORMAT, report->begin);
  g_checksum_update(sum, (const guchar *) num, n + 1);
  n = g_snprintf(num, sizeof num, "%" G_GINT64_FORMAT, report->end);
  g_checksum_update(sum, (const guchar *) num, n);
  guint8 digest[32];
  gsize dlen = sizeof digest;
  g_checksum_get_digest(sum, digest, &dlen);
  memcpy(report->key, digest, sizeof report->key);
}

char *
report_key_hex(const guint8 key[16])
{
  char *s = g_malloc(2 * KEYSET_KEY_LEN + 1);
  keyset_key_hex(key, s);
  return s;
}

/* ---- primary domain --------------------------------------------------------- */

char *
report_primary_domain(const Report *report)
{
  g_return_val_if_fail(report != NULL, g_strdup("unknown"));
  for (guint i = 0; report->policies != NULL && i < report->policies->len; i++) {
    const ReportPolicy *p = report->policies->pdata[i];
    if (p->policy_domain != NULL && *p->policy_domain != '\0')
      return g_strdup(p->policy_domain);
  }
  if (report->ingest.report_domain != NULL && *report->ingest.report_domain != '\0')
    return g_strdup(report->ingest.report_domain);
  ReportFilename f;
  if (report->ingest.filename != NULL && report_filename_parse(report->ingest.filename, &f)) {
    char *lower = report_lower_domain(f.policy_domain);
    report_filename_clear(&f);
    return lower;
  }
  return g_strdup("unknown");
}

/* ---- the normalized JSON ------------------------------------------------------ */

static void
report_write_failure(JsonWriter *w, const ReportFailure *f)
{
  json_writer_begin_object(w);
  json_writer_member_string(w, "result-type", f->result_type != NULL ? f->result_type : "");
  json_writer_member_string(w, "sending-mta-ip", f->sending_mta_ip);
  json_writer_member_string(w, "receiving-mx-hostname", f->receiving_mx_hostname);
  json_writer_member_string(w, "receiving-mx-helo", f->receiving_mx_helo);
  json_writer_member_string(w, "receiving-ip", f->receiving_ip);
  json_writer_member_int(w, "failed-session-count", f->failed_session_count);
  json_writer_member_string(w, "additional-information", f->additional_information);
  json_writer_member_string(w, "failure-reason-code", f->failure_reason_code);
  json_writer_end_object(w);
}

static void
report_write_policy(JsonWriter *w, const ReportPolicy *p)
{
  json_writer_begin_object(w);

  json_writer_key(w, "policy");
  json_writer_begin_object(w);
  json_writer_member_string(w, "policy-type", p->policy_type != NULL ? p->policy_type : "");
  json_writer_member_strings(w, "policy-string", p->policy_strings);
  json_writer_member_string(w, "policy-domain", p->policy_domain);
  json_writer_member_strings(w, "mx-host", p->mx_hosts);
  json_writer_end_object(w);

  json_writer_key(w, "summary");
  json_writer_begin_object(w);
  json_writer_member_int(w, "total-successful-session-count", p->total_successful);
  json_writer_member_int(w, "total-failure-session-count", p->total_failure);
  json_writer_end_object(w);

  json_writer_key(w, "failure-details");
  json_writer_begin_array(w);
  for (guint i = 0; p->failures != NULL && i < p->failures->len; i++) {
    report_write_failure(w, p->failures->pdata[i]);
    if (!json_writer_spill_point(w))
      break;
  }
  json_writer_end_array(w);

  json_writer_end_object(w);
}

static gboolean
report_write(const Report *report, JsonWriter *w)
{
  json_writer_begin_object(w);
  json_writer_member_string(w, "organization-name",
                            report->organization_name != NULL ? report->organization_name : "");
  json_writer_key(w, "date-range");
  json_writer_begin_object(w);
  json_writer_member_datetime(w, "start-datetime", report->begin);
  json_writer_member_datetime(w, "end-datetime", report->end);
  json_writer_end_object(w);
  json_writer_member_string(w, "contact-info", report->contact_info);
  json_writer_member_string(w, "report-id", report->report_id != NULL ? report->report_id : "");

  json_writer_key(w, "policies");
  json_writer_begin_array(w);
  for (guint i = 0; report->policies != NULL && i < report->policies->len && !w->failed; i++)
    report_write_policy(w, report->policies->pdata[i]);
  json_writer_end_array(w);

  const ReportIngest *in = &report->ingest;
  json_writer_key(w, "ingest");
  json_writer_begin_object(w);
  char hex[33];
  keyset_key_hex(report->key, hex);
  json_writer_member_string(w, "key", hex);
  json_writer_member_string(w, "source", in->source);
  json_writer_member_string(w, "submitter", in->submitter);
  json_writer_member_string(w, "report-domain", in->report_domain);
  json_writer_member_string(w, "filename", in->filename);
  json_writer_member_string(w, "message-id", in->message_id);
  if (in->received != 0)
    json_writer_member_datetime(w, "received", in->received);
  json_writer_member_string(w, "raw-format", in->raw_extension);
  json_writer_member_string(w, "dkim", in->dkim);
  json_writer_member_string(w, "dkim-domain", in->dkim_domain);
  json_writer_key(w, "deviations");
  json_writer_begin_array(w);
  for (guint i = 0; report->deviations != NULL && i < report->deviations->len; i++) {
    ReportDeviation d = g_array_index(report->deviations, ReportDeviation, i);
    json_writer_begin_object(w);
    json_writer_member_string(w, "slug", report_deviation_slug(d));
    json_writer_member_string(w, "text", report_deviation_text(d));
    json_writer_end_object(w);
  }
  json_writer_end_array(w);
  json_writer_end_object(w);

  json_writer_end_object(w);
  return !w->failed;
}

void
report_to_json(const Report *report, gboolean pretty, GString *out)
{
  g_return_if_fail(report != NULL && out != NULL);
  JsonWriter w;
  json_writer_init(&w, out, pretty);
  report_write(report, &w);
}

gboolean
report_to_json_spill(const Report *report, gboolean pretty, GString *out, gsize spill_at,
                     ReportJsonSpill spill, gpointer user_data, GError **error)
{
  g_return_val_if_fail(report != NULL && out != NULL && spill != NULL, FALSE);
  JsonWriter w;
  json_writer_init(&w, out, pretty);
  json_writer_set_spill(&w, spill_at, spill, user_data, error);
  return report_write(report, &w);
}
