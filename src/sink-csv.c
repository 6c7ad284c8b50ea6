/* sink-csv.c - the "csv" sink: one RFC 4180 row per policy and per failure detail,
 * appended under a lock of the file. Columns: docs/csv.md. */
#include "sink.h"
#include "sink-spill.h"
#include "escape.h"
#include "report-datetime.h"

#include <string.h>

#define SINK_CSV_HEADER                                                                  \
  "row_type,organization_name,contact_info,report_id,begin,end,policy_domain,"          \
  "policy_type,policy_strings,mx_hosts,total_successful_session_count,"                 \
  "total_failure_session_count,result_type,sending_mta_ip,receiving_mx_hostname,"       \
  "receiving_mx_helo,receiving_ip,failed_session_count,failure_reason_code,"            \
  "additional_information,submitter,source,dkim"
#define SINK_CSV_EOL "\r\n"

const char sink_csv_header[] = SINK_CSV_HEADER;

typedef struct {
  char *path;
  GString *buf;             /* rows staged since the last flush (and not spilled) */
  gboolean to_stdout;       /* "-": the header once per run, no journal, no spilling */
  gboolean header_done;
  gboolean raw;             /* --csv-raw */
  SinkSpill spill;          /* rows of the batch already written to the file */
  GString *head, *tail, *scratch;   /* reused by sink_csv_rows() */
} SinkCsv;

/* One field (escape.h: quoted as RFC 4180 wants; unless @raw, a formula-like value
 * prefixed with ' and control characters replaced). @first: no separator before it. */
static void
sink_csv_field(GString *out, const char *value, gboolean first, gboolean raw)
{
  if (!first)
    g_string_append_c(out, ',');
  tr_csv_cell_append(out, value, raw);
}

static void
sink_csv_int(GString *out, gint64 v)
{
  g_string_append_c(out, ',');
  json_append_int(out, v);
}

static void
sink_csv_join(GString *s, const GPtrArray *list)
{
  for (guint i = 0; list != NULL && i < list->len; i++) {
    if (i > 0)
      g_string_append_c(s, '|');
    g_string_append(s, list->pdata[i] != NULL ? list->pdata[i] : "");
  }
}

/* The columns every row of a policy shares after row_type, up to mx_hosts (with the
 * comma before them). */
static void
sink_csv_head(GString *out, const Report *r, const ReportPolicy *p, const char *begin,
              const char *end, GString *scratch, gboolean raw)
{
  sink_csv_field(out, r->organization_name, FALSE, raw);
  sink_csv_field(out, r->contact_info, FALSE, raw);
  sink_csv_field(out, r->report_id, FALSE, raw);
  sink_csv_field(out, begin, FALSE, raw);
  sink_csv_field(out, end, FALSE, raw);
  sink_csv_field(out, p->policy_domain, FALSE, raw);
  sink_csv_field(out, p->policy_type, FALSE, raw);
  g_string_truncate(scratch, 0);
  sink_csv_join(scratch, p->policy_strings);
  sink_csv_field(out, scratch->str, FALSE, raw);
  g_string_truncate(scratch, 0);
  sink_csv_join(scratch, p->mx_hosts);
  sink_csv_field(out, scratch->str, FALSE, raw);
}

/* Rows of @r into @out (@raw: values exactly as sent); with @self, its scratch strings
 * are reused, and (unless it writes to standard output) @out is written to the file
 * whenever it grows past SINK_SPILL_AT. */
static gboolean
sink_csv_rows(const Report *r, gboolean raw, GString *out, SinkCsv *self, GError **error)
{
  char begin[21], end[21];
  report_datetime_format(r->begin, begin);
  report_datetime_format(r->end, end);
  g_autoptr(GString) own_head = NULL, own_tail = NULL, own_scratch = NULL;
  GString *head, *tail, *scratch;
  if (self != NULL) {
    head = self->head;
    tail = self->tail;
    scratch = self->scratch;
    g_string_truncate(tail, 0);
  } else {
    head = own_head = g_string_new(NULL);
    tail = own_tail = g_string_new(NULL);
    scratch = own_scratch = g_string_new(NULL);
  }
  sink_csv_field(tail, r->ingest.submitter, FALSE, raw);
  sink_csv_field(tail, r->ingest.source, FALSE, raw);
  /* The verdict, and its signing domain: "pass d=example.com". Both are ours or
   * printable ASCII (trust.c), never changed by the cell rules. */
  g_string_append_c(tail, ',');
  if (r->ingest.dkim != NULL) {
    g_autofree char *v = r->ingest.dkim_domain != NULL
                             ? g_strdup_printf("%s d=%s", r->ingest.dkim, r->ingest.dkim_domain)
                             : g_strdup(r->ingest.dkim);
    tr_csv_cell_append(tail, v, raw);
  }
  g_string_append(tail, SINK_CSV_EOL);
  for (guint i = 0; r->policies != NULL && i < r->policies->len; i++) {
    const ReportPolicy *p = r->policies->pdata[i];
    g_string_truncate(head, 0);
    sink_csv_head(head, r, p, begin, end, scratch, raw);

    g_string_append(out, "policy");
    g_string_append_len(out, head->str, (gssize) head->len);
    sink_csv_int(out, p->total_successful);
    sink_csv_int(out, p->total_failure);
    g_string_append_len(out, ",,,,,,,,", 8);   /* result_type .. additional_information */
    g_string_append_len(out, tail->str, (gssize) tail->len);

    for (guint j = 0; p->failures != NULL && j < p->failures->len; j++) {
      const ReportFailure *f = p->failures->pdata[j];
      g_string_append(out, "failure");
      g_string_append_len(out, head->str, (gssize) head->len);
      g_string_append_len(out, ",,", 2);       /* totals belong to the policy row */
      sink_csv_field(out, f->result_type, FALSE, raw);
      sink_csv_field(out, f->sending_mta_ip, FALSE, raw);
      sink_csv_field(out, f->receiving_mx_hostname, FALSE, raw);
      sink_csv_field(out, f->receiving_mx_helo, FALSE, raw);
      sink_csv_field(out, f->receiving_ip, FALSE, raw);
      sink_csv_int(out, f->failed_session_count);
      sink_csv_field(out, f->failure_reason_code, FALSE, raw);
      sink_csv_field(out, f->additional_information, FALSE, raw);
      g_string_append_len(out, tail->str, (gssize) tail->len);
      if (self != NULL && !self->to_stdout && out->len >= SINK_SPILL_AT &&
          !sink_spill_out(&self->spill, self->path, SINK_CSV_HEADER SINK_CSV_EOL, out, error))
        return FALSE;
    }
  }
  return TRUE;
}

void
sink_csv_format_rows(const Report *r, GString *out)
{
  sink_csv_rows(r, FALSE, out, NULL, NULL);
}

void
sink_csv_format_rows_raw(const Report *r, GString *out)
{
  sink_csv_rows(r, TRUE, out, NULL, NULL);
}

/* One value of a column: the deviation of each kind of change the CSV makes to it. */
static void
sink_csv_note(Report *r, ReportDeviation formula, ReportDeviation control, const char *value)
{
  guint what = tr_csv_cell_check(value);
  if (what & TR_CSV_FORMULA)
    report_deviations_add(r->deviations, formula);
  if (what & TR_CSV_CONTROL)
    report_deviations_add(r->deviations, control);
}

#define SINK_CSV_NOTE(r, ID, value)                                                       \
  sink_csv_note((r), REPORT_DEV_CSV_FORMULA_##ID, REPORT_DEV_CSV_CONTROL_##ID, (value))

void
sink_csv_note_deviations(Report *r)
{
  g_autoptr(GString) scratch = g_string_new(NULL);
  SINK_CSV_NOTE(r, ORGANIZATION_NAME, r->organization_name);
  SINK_CSV_NOTE(r, CONTACT_INFO, r->contact_info);
  SINK_CSV_NOTE(r, REPORT_ID, r->report_id);
  for (guint i = 0; r->policies != NULL && i < r->policies->len; i++) {
    const ReportPolicy *p = r->policies->pdata[i];
    SINK_CSV_NOTE(r, POLICY_DOMAIN, p->policy_domain);
    SINK_CSV_NOTE(r, POLICY_TYPE, p->policy_type);
    g_string_truncate(scratch, 0);
    sink_csv_join(scratch, p->policy_strings);
    SINK_CSV_NOTE(r, POLICY_STRING, scratch->str);
    g_string_truncate(scratch, 0);
    sink_csv_join(scratch, p->mx_hosts);
    SINK_CSV_NOTE(r, MX_HOST, scratch->str);
    for (guint j = 0; p->failures != NULL && j < p->failures->len; j++) {
      const ReportFailure *f = p->failures->pdata[j];
      SINK_CSV_NOTE(r, RESULT_TYPE, f->result_type);
      SINK_CSV_NOTE(r, SENDING_MTA_IP, f->sending_mta_ip);
      SINK_CSV_NOTE(r, RECEIVING_MX_HOSTNAME, f->receiving_mx_hostname);
      SINK_CSV_NOTE(r, RECEIVING_MX_HELO, f->receiving_mx_helo);
      SINK_CSV_NOTE(r, RECEIVING_IP, f->receiving_ip);
      SINK_CSV_NOTE(r, FAILURE_REASON_CODE, f->failure_reason_code);
      SINK_CSV_NOTE(r, ADDITIONAL_INFORMATION, f->additional_information);
    }
  }
  SINK_CSV_NOTE(r, SUBMITTER, r->ingest.submitter);
  SINK_CSV_NOTE(r, SOURCE, r->ingest.source);
}

static gpointer
sink_csv_open(const SinkConfig *config, StoreSync *sync, GError **error)
{
  if (config->path == NULL || config->path[0] == '\0') {
    g_set_error(error, SINK_ERROR, SINK_ERROR_IO, "no CSV file given");
    return NULL;
  }
  SinkCsv *self = g_new0(SinkCsv, 1);
  self->path = g_strdup(config->path);
  self->buf = g_string_new(NULL);
  self->to_stdout = strcmp(self->path, "-") == 0;
  self->raw = config->csv_raw;
  self->spill = (SinkSpill) SINK_SPILL_INIT(sync);
  self->head = g_string_new(NULL);
  self->tail = g_string_new(NULL);
  self->scratch = g_string_new(NULL);
  return self;
}

static gboolean
sink_csv_write(gpointer p, const Report *report, GError **error)
{
  SinkCsv *self = p;
  return sink_csv_rows(report, self->raw, self->buf, self, error);
}

static gboolean
sink_csv_flush(gpointer p, GError **error)
{
  SinkCsv *self = p;
  if (self->to_stdout) {
    if (self->buf->len == 0)
      return TRUE;
    if (!self->header_done)
      g_string_prepend(self->buf, SINK_CSV_HEADER SINK_CSV_EOL);
    if (!sink_write_stdout(self->buf->str, self->buf->len, error))
      return FALSE;
    self->header_done = TRUE;
  } else if (!sink_spill_finish(&self->spill, self->path, SINK_CSV_HEADER SINK_CSV_EOL,
                                self->buf->str, self->buf->len, error)) {
    return FALSE;
  }
  g_string_truncate(self->buf, 0);
  return TRUE;
}

static void
sink_csv_rollback(gpointer p)
{
  SinkCsv *self = p;
  g_string_truncate(self->buf, 0);
  sink_spill_abort(&self->spill);
}

static const char *
sink_csv_journal_path(gpointer p)
{
  SinkCsv *self = p;
  return self->to_stdout ? NULL : self->path;
}

static void
sink_csv_close(gpointer p)
{
  SinkCsv *self = p;
  if (self == NULL)
    return;
  sink_spill_abort(&self->spill);     /* a batch never flushed */
  g_string_free(self->buf, TRUE);
  g_string_free(self->head, TRUE);
  g_string_free(self->tail, TRUE);
  g_string_free(self->scratch, TRUE);
  g_free(self->path);
  g_free(self);
}

const SinkOps sink_csv_ops = {
  .name = "csv",
  .open = sink_csv_open,
  .write = sink_csv_write,
  .flush = sink_csv_flush,
  .rollback = sink_csv_rollback,
  .journal_path = sink_csv_journal_path,
  .close = sink_csv_close,
};
