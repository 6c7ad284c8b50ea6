/* sink-csv.c - the "csv" sink: one RFC 4180 row per policy and per failure detail,
 * appended under a lock of the file. Columns: docs/csv.md. */
#include "sink.h"

#include <string.h>

#define SINK_CSV_HEADER                                                                  \
  "row_type,organization_name,contact_info,report_id,begin,end,policy_domain,"          \
  "policy_type,policy_strings,mx_hosts,total_successful_session_count,"                 \
  "total_failure_session_count,result_type,sending_mta_ip,receiving_mx_hostname,"       \
  "receiving_mx_helo,receiving_ip,failed_session_count,failure_reason_code,"            \
  "additional_information,submitter,source"
#define SINK_CSV_EOL "\r\n"

const char sink_csv_header[] = SINK_CSV_HEADER;

typedef struct {
  char *path;
  GString *buf;             /* rows staged since the last flush */
  gboolean to_stdout;       /* "-": the header once per run, no journal */
  gboolean header_done;
} SinkCsv;

/* One field, quoted when it holds a comma, a quote, CR, LF or leading/trailing white
 * space; data is otherwise kept verbatim. @first: no separator before it. */
static void
sink_csv_field(GString *out, const char *value, gboolean first)
{
  if (!first)
    g_string_append_c(out, ',');
  if (value == NULL || value[0] == '\0')
    return;
  gsize len = strlen(value);
  gboolean quote = strpbrk(value, ",\"\r\n") != NULL || g_ascii_isspace(value[0]) ||
                   g_ascii_isspace(value[len - 1]);
  if (!quote) {
    g_string_append_len(out, value, (gssize) len);
    return;
  }
  g_string_append_c(out, '"');
  for (const char *p = value; *p; p++) {
    if (*p == '"')
      g_string_append_c(out, '"');
    g_string_append_c(out, *p);
  }
  g_string_append_c(out, '"');
}

static void
sink_csv_int(GString *out, gint64 v)
{
  g_string_append_printf(out, ",%" G_GINT64_FORMAT, v);
}

static char *
sink_csv_join(const GPtrArray *list)
{
  g_autoptr(GString) s = g_string_new(NULL);
  for (guint i = 0; list != NULL && i < list->len; i++) {
    if (i > 0)
      g_string_append_c(s, '|');
    g_string_append(s, list->pdata[i] != NULL ? list->pdata[i] : "");
  }
  return g_string_free(g_steal_pointer(&s), FALSE);
}

/* The columns every row shares up to mx_hosts. */
static void
sink_csv_head(GString *out, const char *row_type, const Report *r, const ReportPolicy *p,
              const char *begin, const char *end, const char *strings, const char *mx)
{
  sink_csv_field(out, row_type, TRUE);
  sink_csv_field(out, r->organization_name, FALSE);
  sink_csv_field(out, r->contact_info, FALSE);
  sink_csv_field(out, r->report_id, FALSE);
  sink_csv_field(out, begin, FALSE);
  sink_csv_field(out, end, FALSE);
  sink_csv_field(out, p->policy_domain, FALSE);
  sink_csv_field(out, p->policy_type, FALSE);
  sink_csv_field(out, strings, FALSE);
  sink_csv_field(out, mx, FALSE);
}

static void
sink_csv_tail(GString *out, const Report *r)
{
  sink_csv_field(out, r->ingest.submitter, FALSE);
  sink_csv_field(out, r->ingest.source, FALSE);
  g_string_append(out, SINK_CSV_EOL);
}

void
sink_csv_format_rows(const Report *r, GString *out)
{
  char begin[21], end[21];
  report_format_datetime(r->begin, begin);
  report_format_datetime(r->end, end);
  for (guint i = 0; r->policies != NULL && i < r->policies->len; i++) {
    const ReportPolicy *p = r->policies->pdata[i];
    g_autofree char *strings = sink_csv_join(p->policy_strings);
    g_autofree char *mx = sink_csv_join(p->mx_hosts);

    sink_csv_head(out, "policy", r, p, begin, end, strings, mx);
    sink_csv_int(out, p->total_successful);
    sink_csv_int(out, p->total_failure);
    for (guint k = 0; k < 8; k++)      /* result_type .. additional_information */
      g_string_append_c(out, ',');
    sink_csv_tail(out, r);

    for (guint j = 0; p->failures != NULL && j < p->failures->len; j++) {
      const ReportFailure *f = p->failures->pdata[j];
      sink_csv_head(out, "failure", r, p, begin, end, strings, mx);
      g_string_append(out, ",,");      /* totals belong to the policy row */
      sink_csv_field(out, f->result_type, FALSE);
      sink_csv_field(out, f->sending_mta_ip, FALSE);
      sink_csv_field(out, f->receiving_mx_hostname, FALSE);
      sink_csv_field(out, f->receiving_mx_helo, FALSE);
      sink_csv_field(out, f->receiving_ip, FALSE);
      sink_csv_int(out, f->failed_session_count);
      sink_csv_field(out, f->failure_reason_code, FALSE);
      sink_csv_field(out, f->additional_information, FALSE);
      sink_csv_tail(out, r);
    }
  }
}

static gpointer
sink_csv_open(const TrOptions *opts, Store *store, GError **error)
{
  if (opts->csv_path == NULL || opts->csv_path[0] == '\0') {
    g_set_error(error, SINK_ERROR, SINK_ERROR_IO, "no CSV file given");
    return NULL;
  }
  SinkCsv *self = g_new0(SinkCsv, 1);
  self->path = g_strdup(opts->csv_path);
  self->buf = g_string_new(NULL);
  self->to_stdout = strcmp(self->path, "-") == 0;
  return self;
}

static gboolean
sink_csv_write(gpointer p, const Report *report, GError **error)
{
  SinkCsv *self = p;
  sink_csv_format_rows(report, self->buf);
  return TRUE;
}

static gboolean
sink_csv_flush(gpointer p, GError **error)
{
  SinkCsv *self = p;
  if (self->buf->len == 0)
    return TRUE;
  if (self->to_stdout && !self->header_done)
    g_string_prepend(self->buf, SINK_CSV_HEADER SINK_CSV_EOL);
  if (!sink_append_file(self->path, SINK_CSV_HEADER SINK_CSV_EOL, self->buf->str,
                        self->buf->len, error))
    return FALSE;
  self->header_done = TRUE;
  g_string_truncate(self->buf, 0);
  return TRUE;
}

static void
sink_csv_rollback(gpointer p)
{
  SinkCsv *self = p;
  g_string_truncate(self->buf, 0);
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
  g_string_free(self->buf, TRUE);
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
