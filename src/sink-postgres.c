/* sink-postgres.c - the "postgres" sink: every report in a PostgreSQL database
 * (--postgres CONNINFO), the schema of pg.c (docs/postgres.md), shared by many hosts.
 *
 * write() stages the report's rows in memory (COPY text format); flush() sends the
 * batch in one transaction: COPY into temporary tables, then one INSERT ... SELECT
 * per table of the reports whose key the database does not hold yet (ON CONFLICT
 * (report_key) DO NOTHING, in key order so that writers never deadlock), and COMMIT.
 * Only when COMMIT returned is the batch stored: the store's commit, and so any
 * acknowledgement, comes after every sink's flush().
 *
 * The report key is the store's dedup key and is unique in the database: the same
 * report from two hosts, or a retry, is stored once. That is also why rollback() after
 * a successful flush() (a later sink or the store's commit failed) leaves the rows: the
 * messages are not acknowledged, their next delivery finds the keys and adds nothing,
 * and another host may have committed the same report meanwhile.
 *
 * A failed flush() rolls the transaction back and closes a broken connection: the next
 * batch connects anew. A serialization failure, deadlock or lock timeout is retried a
 * few times before the batch fails (DB_ERROR_IO: exit 75). */
#include "sink.h"
#include "db.h"
#include "pg.h"
#include "report-deviation.h"

#include <arpa/inet.h>
#include <string.h>

#define SINK_PG_TRIES 4

typedef struct {
  char *conninfo;
  TrPg *pg;                 /* connected by the first flush(), kept while it works */
  gboolean staging_made;    /* the temporary tables exist on @pg */
  GString *reports, *policies, *failures, *deviations;   /* COPY rows staged */
  GHashTable *keys;         /* hex keys staged (a batch holds each report once) */
  GString *scratch;
} SinkPg;

static const char sink_pg_staging[] =
  "CREATE TEMPORARY TABLE tr_stage_report (report_key TEXT COLLATE \"C\", "
  "organization_name TEXT, contact_info TEXT, report_id TEXT, begin_epoch BIGINT, "
  "end_epoch BIGINT, begin_day TEXT, submitter TEXT, source TEXT, report_domain TEXT, "
  "received_epoch BIGINT, raw_format TEXT, deviation_count INTEGER, report_json TEXT, "
  "dkim TEXT, dkim_domain TEXT) "
  "ON COMMIT DELETE ROWS;"
  "CREATE TEMPORARY TABLE tr_stage_policy (report_key TEXT COLLATE \"C\", "
  "policy_index INTEGER, policy_domain TEXT, policy_type TEXT, policy_strings TEXT, "
  "mx_hosts TEXT, total_successful_session_count BIGINT, "
  "total_failure_session_count BIGINT, organization_name TEXT, begin_epoch BIGINT, "
  "begin_day TEXT, policy_string_list TEXT[], mx_host_list TEXT[]) ON COMMIT DELETE ROWS;"
  "CREATE TEMPORARY TABLE tr_stage_failure (report_key TEXT COLLATE \"C\", "
  "policy_index INTEGER, detail_index INTEGER, result_type TEXT, sending_mta_ip TEXT, "
  "receiving_mx_hostname TEXT, receiving_mx_helo TEXT, receiving_ip TEXT, "
  "failed_session_count BIGINT, failure_reason_code TEXT, additional_information TEXT, "
  "policy_domain TEXT, begin_epoch BIGINT, sending_mta_addr INET, receiving_addr INET) "
  "ON COMMIT DELETE ROWS;"
  "CREATE TEMPORARY TABLE tr_stage_deviation (report_key TEXT COLLATE \"C\", "
  "deviation_index INTEGER, slug TEXT, deviation TEXT) ON COMMIT DELETE ROWS";

/* The reports new to the database, and their rows. */
static const char sink_pg_insert[] =
  "WITH r AS (INSERT INTO report (report_key, organization_name, contact_info, "
  "report_id, begin_epoch, end_epoch, begin_day, submitter, source, report_domain, "
  "received_epoch, raw_format, deviation_count, begin_time, end_time, received_time, "
  "report_json, dkim, dkim_domain) "
  "SELECT report_key, organization_name, contact_info, report_id, begin_epoch, "
  "end_epoch, begin_day, submitter, source, report_domain, received_epoch, raw_format, "
  "deviation_count, to_timestamp(begin_epoch), to_timestamp(end_epoch), "
  "to_timestamp(received_epoch), report_json::jsonb, dkim, dkim_domain FROM tr_stage_report "
  "ORDER BY report_key ON CONFLICT (report_key) DO NOTHING RETURNING report_key), "
  "p AS (INSERT INTO policy (report_key, policy_index, policy_domain, policy_type, "
  "policy_strings, mx_hosts, total_successful_session_count, "
  "total_failure_session_count, organization_name, begin_epoch, begin_day, begin_time, "
  "policy_string_list, mx_host_list) "
  "SELECT s.report_key, policy_index, policy_domain, policy_type, policy_strings, "
  "mx_hosts, total_successful_session_count, total_failure_session_count, "
  "organization_name, begin_epoch, begin_day, to_timestamp(begin_epoch), "
  "policy_string_list, mx_host_list FROM tr_stage_policy s JOIN r USING (report_key)), "
  "f AS (INSERT INTO failure_detail (report_key, policy_index, detail_index, "
  "result_type, sending_mta_ip, receiving_mx_hostname, receiving_mx_helo, receiving_ip, "
  "failed_session_count, failure_reason_code, additional_information, policy_domain, "
  "begin_epoch, begin_time, sending_mta_addr, receiving_addr) "
  "SELECT s.report_key, policy_index, detail_index, result_type, sending_mta_ip, "
  "receiving_mx_hostname, receiving_mx_helo, receiving_ip, failed_session_count, "
  "failure_reason_code, additional_information, policy_domain, begin_epoch, "
  "to_timestamp(begin_epoch), sending_mta_addr, receiving_addr "
  "FROM tr_stage_failure s JOIN r USING (report_key)), "
  "d AS (INSERT INTO deviation (report_key, deviation_index, slug, deviation) "
  "SELECT s.report_key, deviation_index, slug, deviation "
  "FROM tr_stage_deviation s JOIN r USING (report_key)) "
  "SELECT COUNT(*) FROM r";

static gpointer
sink_pg_open(const SinkConfig *config, StoreSync *sync, GError **error)
{
  if (config->conninfo == NULL) {
    g_set_error(error, SINK_ERROR, SINK_ERROR_IO, "no connection string");
    return NULL;
  }
  SinkPg *self = g_new0(SinkPg, 1);
  self->conninfo = g_strdup(config->conninfo);
  self->reports = g_string_new(NULL);
  self->policies = g_string_new(NULL);
  self->failures = g_string_new(NULL);
  self->deviations = g_string_new(NULL);
  self->scratch = g_string_new(NULL);
  self->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  return self;
}

/* Field separators of the COPY text format. */
static void
sink_pg_text(GString *out, const char *s)
{
  g_string_append_c(out, '\t');
  pg_copy_field(out, s);
}

static void
sink_pg_int(GString *out, gint64 v)
{
  g_string_append_printf(out, "\t%" G_GINT64_FORMAT, v);
}

/* A text[] of @list. */
static void
sink_pg_array(GString *out, GString *scratch, const GPtrArray *list)
{
  g_string_assign(scratch, "{");
  for (guint i = 0; list != NULL && i < list->len; i++) {
    if (i > 0)
      g_string_append_c(scratch, ',');
    pg_array_element(scratch, list->pdata[i]);
  }
  g_string_append_c(scratch, '}');
  sink_pg_text(out, scratch->str);
}

/* @s as an inet value when it is a plain IPv4 or IPv6 address, else NULL (the text is
 * kept in its own column either way). */
static void
sink_pg_inet(GString *out, const char *s)
{
  unsigned char buf[sizeof(struct in6_addr)];
  char norm[INET6_ADDRSTRLEN];
  if (s != NULL && inet_pton(AF_INET, s, buf) == 1 &&
      inet_ntop(AF_INET, buf, norm, sizeof norm) != NULL)
    sink_pg_text(out, norm);
  else if (s != NULL && inet_pton(AF_INET6, s, buf) == 1 &&
           inet_ntop(AF_INET6, buf, norm, sizeof norm) != NULL)
    sink_pg_text(out, norm);
  else
    sink_pg_text(out, NULL);
}

static gboolean
sink_pg_write(gpointer p, const Report *r, GError **error)
{
  SinkPg *self = p;
  char *key = report_key_hex(r->key);
  if (!g_hash_table_add(self->keys, key))
    return TRUE;                      /* staged already (the set owns @key either way) */
  char day[11];
  db_format_day(r->begin, day);
  const char *org = r->organization_name != NULL ? r->organization_name : "";

  GString *o = self->reports;
  pg_copy_field(o, key);
  sink_pg_text(o, org);
  sink_pg_text(o, r->contact_info);
  sink_pg_text(o, r->report_id != NULL ? r->report_id : "");
  sink_pg_int(o, r->begin);
  sink_pg_int(o, r->end);
  sink_pg_text(o, day);
  sink_pg_text(o, r->ingest.submitter);
  sink_pg_text(o, r->ingest.source);
  sink_pg_text(o, r->ingest.report_domain);
  if (r->ingest.received != 0)
    sink_pg_int(o, r->ingest.received);
  else
    sink_pg_text(o, NULL);
  sink_pg_text(o, r->ingest.raw_extension);
  sink_pg_int(o, r->deviations != NULL ? r->deviations->len : 0);
  g_string_truncate(self->scratch, 0);
  report_to_json(r, FALSE, self->scratch);
  sink_pg_text(o, self->scratch->str);
  sink_pg_text(o, r->ingest.dkim);
  sink_pg_text(o, r->ingest.dkim_domain);
  g_string_append_c(o, '\n');

  for (guint i = 0; r->policies != NULL && i < r->policies->len; i++) {
    const ReportPolicy *pol = r->policies->pdata[i];
    g_autofree char *owned_domain = NULL;
    const char *domain = db_policy_domain(r, pol, &owned_domain);
    g_autofree char *strings = db_join(pol->policy_strings);
    g_autofree char *mx = db_join(pol->mx_hosts);
    o = self->policies;
    pg_copy_field(o, key);
    sink_pg_int(o, i);
    sink_pg_text(o, domain);
    sink_pg_text(o, pol->policy_type != NULL ? pol->policy_type : "");
    sink_pg_text(o, strings);
    sink_pg_text(o, mx);
    sink_pg_int(o, pol->total_successful);
    sink_pg_int(o, pol->total_failure);
    sink_pg_text(o, org);
    sink_pg_int(o, r->begin);
    sink_pg_text(o, day);
    sink_pg_array(o, self->scratch, pol->policy_strings);
    sink_pg_array(o, self->scratch, pol->mx_hosts);
    g_string_append_c(o, '\n');
    for (guint j = 0; pol->failures != NULL && j < pol->failures->len; j++) {
      const ReportFailure *f = pol->failures->pdata[j];
      o = self->failures;
      pg_copy_field(o, key);
      sink_pg_int(o, i);
      sink_pg_int(o, j);
      sink_pg_text(o, f->result_type != NULL ? f->result_type : "");
      sink_pg_text(o, f->sending_mta_ip);
      sink_pg_text(o, f->receiving_mx_hostname);
      sink_pg_text(o, f->receiving_mx_helo);
      sink_pg_text(o, f->receiving_ip);
      sink_pg_int(o, f->failed_session_count);
      sink_pg_text(o, f->failure_reason_code);
      sink_pg_text(o, f->additional_information);
      sink_pg_text(o, domain);
      sink_pg_int(o, r->begin);
      sink_pg_inet(o, f->sending_mta_ip);
      sink_pg_inet(o, f->receiving_ip);
      g_string_append_c(o, '\n');
    }
  }
  for (guint i = 0; r->deviations != NULL && i < r->deviations->len; i++) {
    ReportDeviation d = g_array_index(r->deviations, ReportDeviation, i);
    o = self->deviations;
    pg_copy_field(o, key);
    sink_pg_int(o, i);
    sink_pg_text(o, report_deviation_slug(d));
    sink_pg_text(o, report_deviation_text(d));
    g_string_append_c(o, '\n');
  }
  return TRUE;
}

static void
sink_pg_clear(SinkPg *self)
{
  g_string_truncate(self->reports, 0);
  g_string_truncate(self->policies, 0);
  g_string_truncate(self->failures, 0);
  g_string_truncate(self->deviations, 0);
  g_hash_table_remove_all(self->keys);
}

/* One try of the batch's transaction. */
static gboolean
sink_pg_send(SinkPg *self, GError **error)
{
  if (self->pg == NULL) {
    self->pg = pg_connect(self->conninfo, TRUE, error);
    self->staging_made = FALSE;
    if (self->pg == NULL)
      return FALSE;
  }
  TrPg *pg = self->pg;
  if (!self->staging_made) {
    if (!pg_exec(pg, sink_pg_staging, error))
      return FALSE;
    self->staging_made = TRUE;
  }
  static const char *const copies[] = {
    "COPY tr_stage_report FROM STDIN", "COPY tr_stage_policy FROM STDIN",
    "COPY tr_stage_failure FROM STDIN", "COPY tr_stage_deviation FROM STDIN",
  };
  GString *data[] = { self->reports, self->policies, self->failures, self->deviations };
  if (!pg_exec(pg, "BEGIN", error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS(copies); i++)
    if (data[i]->len > 0 && !pg_copy(pg, copies[i], data[i], error))
      goto fail;
  g_autoptr(TrPgResult) res = pg_query(pg, sink_pg_insert, 0, NULL, error);
  if (res == NULL)
    goto fail;
  if (!pg_exec(pg, "COMMIT", error))
    goto fail;
  return TRUE;
fail:
  pg_rollback(pg);
  return FALSE;
}

static gboolean
sink_pg_flush(gpointer p, GError **error)
{
  SinkPg *self = p;
  if (g_hash_table_size(self->keys) == 0)
    return TRUE;
  for (int attempt = 1;; attempt++) {
    GError *err = NULL;
    if (sink_pg_send(self, &err)) {
      sink_pg_clear(self);
      return TRUE;
    }
    gboolean retry = self->pg != NULL && !pg_broken(self->pg) &&
                     pg_last_retryable(self->pg) && attempt < SINK_PG_TRIES;
    if (self->pg != NULL && pg_broken(self->pg))
      g_clear_pointer(&self->pg, pg_close);    /* the next batch connects anew */
    if (!retry) {
      g_propagate_error(error, err);
      sink_pg_clear(self);
      return FALSE;
    }
    g_error_free(err);
    g_usleep((gulong) g_random_int_range(10, 100) * 1000 * (gulong) attempt);
  }
}

static void
sink_pg_rollback(gpointer p)
{
  /* Staged rows are dropped; rows a flush() committed stay (see the top). */
  sink_pg_clear(p);
}

static const char *
sink_pg_journal_path(gpointer p)
{
  return NULL;
}

static void
sink_pg_close(gpointer p)
{
  SinkPg *self = p;
  if (self == NULL)
    return;
  pg_close(self->pg);
  g_string_free(self->reports, TRUE);
  g_string_free(self->policies, TRUE);
  g_string_free(self->failures, TRUE);
  g_string_free(self->deviations, TRUE);
  g_string_free(self->scratch, TRUE);
  g_hash_table_unref(self->keys);
  g_free(self->conninfo);
  g_free(self);
}

const SinkOps sink_postgres_ops = {
  .name = "postgres",
  .open = sink_pg_open,
  .write = sink_pg_write,
  .flush = sink_pg_flush,
  .rollback = sink_pg_rollback,
  .journal_path = sink_pg_journal_path,
  .close = sink_pg_close,
};
