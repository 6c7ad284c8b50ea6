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
#include "report-datetime.h"
#include "report-deviation.h"

#include <arpa/inet.h>
#include <string.h>

#define SINK_PG_TRIES 4

typedef struct {
  char *conninfo;
  TrPg *pg;                 /* connected by the first flush(), kept while it works */
  gboolean staging_made;    /* the temporary tables exist on @pg */
  GString *staged[4];       /* COPY rows staged: report, policy, failure, deviation */
  GString *batch[4];        /* the same in key order (and with their ids), by flush() */
  GArray *ids;              /* report_rowid of each report of the batch, in key order */
  GHashTable *keys;         /* hex keys staged (a batch holds each report once) */
  GArray *rows;             /* SinkPgRow of each staged report (key order after flush()) */
  GString *scratch;
} SinkPg;

/* From schema version 3 on a report's rows carry its report_rowid (the SQLite index's
 * key of the child rows, which query.c joins on): the sink takes one id per report
 * from the identity's sequence and appends it to each row, as the last column. */
#if DB_SCHEMA_VERSION >= 3
#define SINK_PG_ROWID 1
#define SINK_PG_ROWID_COL ", report_rowid"
#else
#define SINK_PG_ROWID 0
#define SINK_PG_ROWID_COL ""
#endif

/* The columns each COPY row holds, in order: the tables' own (pg.c). */
#define SINK_PG_REPORT_COLS                                                              \
  "report_key, organization_name, contact_info, report_id, begin_epoch, end_epoch, "     \
  "begin_day, submitter, source, report_domain, received_epoch, raw_format, "            \
  "deviation_count, begin_time, end_time, received_time, report_json, dkim, dkim_domain" \
  SINK_PG_ROWID_COL
#define SINK_PG_POLICY_COLS                                                              \
  "report_key, policy_index, policy_domain, policy_type, policy_strings, mx_hosts, "     \
  "total_successful_session_count, total_failure_session_count, organization_name, "     \
  "begin_epoch, begin_day, begin_time, policy_string_list, mx_host_list" SINK_PG_ROWID_COL
#define SINK_PG_FAILURE_COLS                                                             \
  "report_key, policy_index, detail_index, result_type, sending_mta_ip, "                \
  "receiving_mx_hostname, receiving_mx_helo, receiving_ip, failed_session_count, "       \
  "failure_reason_code, additional_information, policy_domain, begin_epoch, "            \
  "begin_time, sending_mta_addr, receiving_addr" SINK_PG_ROWID_COL
#define SINK_PG_DEVIATION_COLS "report_key, deviation_index, slug, deviation" SINK_PG_ROWID_COL

static const char *const sink_pg_tables[] = { "report", "policy", "failure_detail",
                                              "deviation" };
static const char *const sink_pg_cols[] = { SINK_PG_REPORT_COLS, SINK_PG_POLICY_COLS,
                                            SINK_PG_FAILURE_COLS, SINK_PG_DEVIATION_COLS };

/* The slow path's temporary tables: the same columns as the tables. */
static const char sink_pg_staging[] =
  "CREATE TEMPORARY TABLE tr_stage_report (LIKE report) ON COMMIT DELETE ROWS;"
  "CREATE TEMPORARY TABLE tr_stage_policy (LIKE policy) ON COMMIT DELETE ROWS;"
  "CREATE TEMPORARY TABLE tr_stage_failure_detail (LIKE failure_detail) "
  "ON COMMIT DELETE ROWS;"
  "CREATE TEMPORARY TABLE tr_stage_deviation (LIKE deviation) ON COMMIT DELETE ROWS;"
  /* report_rowid (schema 3) is the database's to give: the staged rows have none. */
  "ALTER TABLE tr_stage_report ALTER COLUMN report_rowid DROP NOT NULL;"
  "ALTER TABLE tr_stage_policy ALTER COLUMN report_rowid DROP NOT NULL;"
  "ALTER TABLE tr_stage_failure_detail ALTER COLUMN report_rowid DROP NOT NULL;"
  "ALTER TABLE tr_stage_deviation ALTER COLUMN report_rowid DROP NOT NULL";

/* ... from which only the reports new to the database, and their rows, are taken. */
static const char sink_pg_insert[] =
  "WITH r AS (INSERT INTO report (" SINK_PG_REPORT_COLS ") SELECT " SINK_PG_REPORT_COLS
  " FROM tr_stage_report ORDER BY report_key ON CONFLICT (report_key) DO NOTHING "
  "RETURNING report_key), "
  "p AS (INSERT INTO policy (" SINK_PG_POLICY_COLS ") SELECT " SINK_PG_POLICY_COLS
  " FROM tr_stage_policy WHERE report_key IN (SELECT report_key FROM r)), "
  "f AS (INSERT INTO failure_detail (" SINK_PG_FAILURE_COLS ") SELECT " SINK_PG_FAILURE_COLS
  " FROM tr_stage_failure_detail WHERE report_key IN (SELECT report_key FROM r)), "
  "d AS (INSERT INTO deviation (" SINK_PG_DEVIATION_COLS ") SELECT " SINK_PG_DEVIATION_COLS
  " FROM tr_stage_deviation WHERE report_key IN (SELECT report_key FROM r)) "
  "SELECT COUNT(*) FROM r";

/* One staged report: its key and where its rows are in the four staging strings
 * (SinkPg.staged[t]: report, policy, failure_detail, deviation rows, each row ending
 * in '\n', a report's rows of one table next to each other). */
typedef struct {
  char key[33];
  gsize offset[4], len[4];
} SinkPgRow;


static gpointer
sink_pg_open(const SinkConfig *config, StoreSync *sync, GError **error)
{
  if (config->conninfo == NULL) {
    g_set_error(error, SINK_ERROR, SINK_ERROR_IO, "no connection string");
    return NULL;
  }
  SinkPg *self = g_new0(SinkPg, 1);
  self->conninfo = g_strdup(config->conninfo);
  for (int t = 0; t < 4; t++) {
    self->staged[t] = g_string_new(NULL);
    self->batch[t] = g_string_new(NULL);
  }
  self->ids = g_array_new(FALSE, FALSE, sizeof(gint64));
  self->scratch = g_string_new(NULL);
  self->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  self->rows = g_array_new(FALSE, FALSE, sizeof(SinkPgRow));
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
  char day[11], begin_time[21], end_time[21], received_time[21];
  db_format_day(r->begin, day);
  report_datetime_format(r->begin, begin_time);
  report_datetime_format(r->end, end_time);
  report_datetime_format(r->ingest.received, received_time);
  const char *org = r->organization_name != NULL ? r->organization_name : "";

  SinkPgRow row;
  g_strlcpy(row.key, key, sizeof row.key);
  for (int t = 0; t < 4; t++)
    row.offset[t] = self->staged[t]->len;
  GString *o = self->staged[0];
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
  sink_pg_text(o, begin_time);
  sink_pg_text(o, end_time);
  sink_pg_text(o, r->ingest.received != 0 ? received_time : NULL);
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
    o = self->staged[1];
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
    sink_pg_text(o, begin_time);
    sink_pg_array(o, self->scratch, pol->policy_strings);
    sink_pg_array(o, self->scratch, pol->mx_hosts);
    g_string_append_c(o, '\n');
    for (guint j = 0; pol->failures != NULL && j < pol->failures->len; j++) {
      const ReportFailure *f = pol->failures->pdata[j];
      o = self->staged[2];
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
      sink_pg_text(o, begin_time);
      sink_pg_inet(o, f->sending_mta_ip);
      sink_pg_inet(o, f->receiving_ip);
      g_string_append_c(o, '\n');
    }
  }
  for (guint i = 0; r->deviations != NULL && i < r->deviations->len; i++) {
    ReportDeviation d = g_array_index(r->deviations, ReportDeviation, i);
    o = self->staged[3];
    pg_copy_field(o, key);
    sink_pg_int(o, i);
    sink_pg_text(o, report_deviation_slug(d));
    sink_pg_text(o, report_deviation_text(d));
    g_string_append_c(o, '\n');
  }
  for (int t = 0; t < 4; t++)
    row.len[t] = self->staged[t]->len - row.offset[t];
  g_array_append_val(self->rows, row);
  return TRUE;
}

static void
sink_pg_clear(SinkPg *self)
{
  for (int t = 0; t < 4; t++) {
    g_string_truncate(self->staged[t], 0);
    g_string_truncate(self->batch[t], 0);
  }
  g_hash_table_remove_all(self->keys);
  g_array_set_size(self->rows, 0);
  g_array_set_size(self->ids, 0);
}

static int
sink_pg_row_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(((const SinkPgRow *) a)->key, ((const SinkPgRow *) b)->key);
}

/* COPY the four tables' rows into @prefix + table ("" or "tr_stage_"). */
static gboolean
sink_pg_copy_all(SinkPg *self, const char *prefix, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS(sink_pg_tables); i++) {
    if (self->batch[i]->len == 0)
      continue;
    g_autofree char *sql = g_strdup_printf("COPY %s%s (%s) FROM STDIN", prefix,
                                           sink_pg_tables[i], sink_pg_cols[i]);
    if (!pg_copy(self->pg, sql, self->batch[i], error))
      return FALSE;
  }
  return TRUE;
}

/* The batch's COPY rows: the reports in key order, each row with its report's id. */
static void
sink_pg_assemble(SinkPg *self)
{
  for (int t = 0; t < 4; t++)
    g_string_truncate(self->batch[t], 0);
  for (guint i = 0; i < self->rows->len; i++) {
    const SinkPgRow *row = &g_array_index(self->rows, SinkPgRow, i);
    char id[24] = "";
    if (SINK_PG_ROWID)
      g_snprintf(id, sizeof id, "\t%" G_GINT64_FORMAT, g_array_index(self->ids, gint64, i));
    for (int t = 0; t < 4; t++) {
      const char *p = self->staged[t]->str + row->offset[t];
      const char *end = p + row->len[t];
      while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        if (nl == NULL)
          nl = end;
        g_string_append_len(self->batch[t], p, nl - p);
        g_string_append(self->batch[t], id);
        g_string_append_c(self->batch[t], '\n');
        p = nl + 1;
      }
    }
  }
}

/* One report_rowid per report of the batch, from the identity's sequence (one round
 * trip; ids of reports the database holds already are simply not used). */
static gboolean
sink_pg_take_ids(SinkPg *self, GError **error)
{
  if (!SINK_PG_ROWID || self->ids->len == self->rows->len)
    return TRUE;
  char n[16];
  g_snprintf(n, sizeof n, "%u", self->rows->len);
  const char *values[] = { n };
  g_autoptr(TrPgResult) res = pg_query(
      self->pg,
      /* The sequence looked up once per statement, not once per id. */
      "SELECT nextval(s) FROM CAST(pg_get_serial_sequence('report', 'report_rowid') "
      "AS regclass) AS s, generate_series(1, $1::integer)",
      1, values, error);
  if (res == NULL)
    return FALSE;
  g_array_set_size(self->ids, 0);
  for (int i = 0; i < pg_result_rows(res); i++) {
    const char *v = pg_result_value(res, i, 0);
    gint64 id = v != NULL ? g_ascii_strtoll(v, NULL, 10) : 0;
    g_array_append_val(self->ids, id);
  }
  if (self->ids->len != self->rows->len) {
    g_set_error(error, DB_ERROR, DB_ERROR_IO, "PostgreSQL %s: got %u ids for %u reports",
                pg_where(self->pg), self->ids->len, self->rows->len);
    g_array_set_size(self->ids, 0);
    return FALSE;
  }
  sink_pg_assemble(self);
  return TRUE;
}

/* One try of the batch's transaction. The fast path copies straight into the tables;
 * when a key is there already (another host, a retry), that is undone and the slow
 * path copies into temporary tables and inserts what is new. Reports go in key order
 * either way: two writers wait for each other's keys, never in a cycle. */
static gboolean
sink_pg_send(SinkPg *self, GError **error)
{
  if (self->pg == NULL) {
    self->pg = pg_connect(self->conninfo, TRUE, error);
    self->staging_made = FALSE;
    if (self->pg == NULL)
      return FALSE;
    /* lz4 compresses the JSON several times faster than the default, where the server
     * has it (PostgreSQL 14 and later, built with it); without, the default stays. */
    pg_exec(self->pg, "SET default_toast_compression = 'lz4'", NULL);
  }
  TrPg *pg = self->pg;
  if (!sink_pg_take_ids(self, error))
    goto fail;
  if (!pg_exec(pg, "BEGIN; SAVEPOINT fast", error))
    goto fail;
  GError *fast = NULL;
  if (sink_pg_copy_all(self, "", &fast)) {
    g_clear_error(&fast);
  } else {
    if (!pg_last_unique_violation(pg) || pg_broken(pg)) {
      g_propagate_error(error, fast);
      goto fail;
    }
    g_error_free(fast);
    if (!pg_exec(pg, "ROLLBACK TO SAVEPOINT fast", error))
      goto fail;
    if (!self->staging_made) {
      if (!pg_exec(pg, sink_pg_staging, error))
        goto fail;
      self->staging_made = TRUE;
    }
    if (!sink_pg_copy_all(self, "tr_stage_", error))
      goto fail;
    g_autoptr(TrPgResult) res = pg_query(pg, sink_pg_insert, 0, NULL, error);
    if (res == NULL)
      goto fail;
  }
  if (pg_commit(pg, error))
    return TRUE;
fail:
  pg_rollback(pg);
  /* The temporary tables were made in the transaction rolled back. */
  self->staging_made = FALSE;
  return FALSE;
}

static gboolean
sink_pg_flush(gpointer p, GError **error)
{
  SinkPg *self = p;
  if (g_hash_table_size(self->keys) == 0)
    return TRUE;
  g_array_sort(self->rows, sink_pg_row_cmp);
  g_array_set_size(self->ids, 0);
  if (!SINK_PG_ROWID)
    sink_pg_assemble(self);
  for (int attempt = 1;; attempt++) {
    GError *err = NULL;
    if (sink_pg_send(self, &err)) {
      sink_pg_clear(self);
      return TRUE;
    }
    if (err == NULL)      /* never a failure without its message */
      g_set_error(&err, DB_ERROR, DB_ERROR_IO, "PostgreSQL: the batch was not stored");
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
  for (int t = 0; t < 4; t++) {
    g_string_free(self->staged[t], TRUE);
    g_string_free(self->batch[t], TRUE);
  }
  g_array_unref(self->ids);
  g_string_free(self->scratch, TRUE);
  g_array_unref(self->rows);
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
