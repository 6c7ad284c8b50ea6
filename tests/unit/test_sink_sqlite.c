/* test_sink_sqlite.c - the "sqlite" sink and db.c on real corpus reports: rows as the
 * reports say, the sink protocol (flush, rollback before and after flush, commit),
 * idempotent inserts, and clear errors for foreign or damaged files. */
#include "testutil.h"
#include "db.h"
#include "reindex.h"
#include "report-parse.h"
#include "sink.h"
#include "store.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  char *dir;
  char *store_dir;
  char *db_path;
  Store *store;
  TrOptions opts;
} Fx;

static int
setup(void **state)
{
  Fx *fx = g_new0(Fx, 1);
  fx->dir = tu_mkdtemp();
  fx->store_dir = g_build_filename(fx->dir, "store", NULL);
  fx->db_path = g_build_filename(fx->store_dir, "reports.sqlite", NULL);
  tr_options_init(&fx->opts);
  fx->opts.trust.dkim_keys = g_strdup(tu_no_dkim_keys());   /* no DNS (testutil.h) */
  fx->opts.store_dir = g_strdup(fx->store_dir);
  g_autoptr(GError) error = NULL;
  fx->store = store_open(fx->store_dir, NULL, &error);
  assert_non_null(fx->store);
  *state = fx;
  return 0;
}

static int
teardown(void **state)
{
  Fx *fx = *state;
  store_close(fx->store);
  tr_options_clear(&fx->opts);
  tu_rmtree(fx->dir);
  g_free(fx->dir);
  g_free(fx->store_dir);
  g_free(fx->db_path);
  g_free(fx);
  return 0;
}

static Report *
fixture_report(const char *name)
{
  g_autoptr(GBytes) json = tu_fixture(name);
  TrLimits limits;
  tr_limits_init(&limits);
  g_autoptr(GError) error = NULL;
  Report *r = report_parse(json, NULL, &limits, &error);
  assert_non_null(r);
  r->ingest.source = g_strdup(name);
  r->ingest.submitter = g_strdup("reporter.example");
  r->ingest.received = 1700000000;
  r->ingest.raw_extension = g_strdup("json");
  return r;
}

/* One integer from the index at @path. */
static gint64
q_int(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  gint64 v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static char *
q_text(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  char *v = NULL;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
    v = g_strdup((const char *) sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

/* Write @reports through the sink as one commit of the store. */
static void
commit_reports(Fx *fx, gpointer self, Report **reports, guint n)
{
  g_autoptr(GError) error = NULL;
  assert_true(store_lock(fx->store, 5, &error));
  assert_true(store_begin(fx->store, NULL, &error));
  for (guint i = 0; i < n; i++) {
    assert_true(sink_sqlite_ops.write(self, reports[i], &error));
    store_add(fx->store, reports[i]->key);
  }
  assert_true(sink_sqlite_ops.flush(self, &error));
  assert_true(store_commit(fx->store, &error));
  store_unlock(fx->store);
}

static void
test_rows_of_real_reports(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) mailru = fixture_report("corpus/parsedmarc/mail.ru.json");
  g_autoptr(Report) rfc = fixture_report("corpus/parsedmarc/rfc8460.json");
  g_autoptr(Report) ms = fixture_report("corpus/mta-sts-exporter/microsoft.json");
  gpointer self = sink_sqlite_ops.open(&(SinkConfig){ NULL }, store_durability(fx->store), &error);
  assert_non_null(self);
  Report *all[] = { mailru, rfc, ms };
  commit_reports(fx, self, all, 3);
  sink_sqlite_ops.close(self);

  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), 3);
  assert_int_equal(q_int(fx->db_path, "PRAGMA user_version"), DB_SCHEMA_VERSION);
  assert_int_equal(q_int(fx->db_path, "SELECT MAX(version) FROM schema_version"),
                   DB_SCHEMA_VERSION);
  /* A fresh store: the index holds every report it has. */
  g_autofree char *complete =
      q_text(fx->db_path, "SELECT value FROM index_meta WHERE name = 'complete'");
  assert_string_equal(complete, "1");

  /* Every policy and failure detail, with the summary's totals as the report says. */
  gint64 policies = 0, details = 0, failed = 0, ok = 0;
  Report *rs[] = { mailru, rfc, ms };
  for (guint i = 0; i < 3; i++)
    for (guint j = 0; j < rs[i]->policies->len; j++) {
      ReportPolicy *p = rs[i]->policies->pdata[j];
      policies++;
      details += p->failures->len;
      failed += p->total_failure;
      ok += p->total_successful;
    }
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM policy"), policies);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM failure_detail"), details);
  assert_int_equal(
      q_int(fx->db_path, "SELECT SUM(total_failure_session_count) FROM policy"), failed);
  assert_int_equal(
      q_int(fx->db_path, "SELECT SUM(total_successful_session_count) FROM policy"), ok);

  /* mail.ru: two details of one session each under a total of 1 (kept as sent). */
  g_autofree char *key = report_key_hex(mailru->key);
  g_autofree char *sql = g_strdup_printf(
      "SELECT SUM(failed_session_count) FROM failure_detail JOIN report USING "
      "(report_rowid) WHERE report_key = '%s'", key);
  assert_int_equal(q_int(fx->db_path, sql), 2);
  g_free(sql);
  sql = g_strdup_printf(
      "SELECT total_failure_session_count FROM policy JOIN report USING (report_rowid) "
      "WHERE report_key = '%s'", key);
  assert_int_equal(q_int(fx->db_path, sql), 1);
  g_free(sql);
  sql = g_strdup_printf("SELECT begin_day FROM report WHERE report_key = '%s'", key);
  g_autofree char *day = q_text(fx->db_path, sql);
  char want[11];
  db_format_day(mailru->begin, want);
  assert_string_equal(day, want);

  /* The RFC example: its mx-host string and result types verbatim. */
  g_autofree char *types = q_text(fx->db_path,
                                  "SELECT group_concat(result_type, ',') FROM (SELECT "
                                  "DISTINCT result_type FROM failure_detail ORDER BY 1)");
  assert_non_null(strstr(types, "starttls-not-supported"));
  assert_non_null(strstr(types, "certificate-expired"));

  /* Modes like the rest of the store. */
  struct stat st;
  assert_int_equal(stat(fx->db_path, &st), 0);
  assert_int_equal(st.st_mode & 0007, 0);
}

static void
test_idempotent_and_rollbacks(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) a = fixture_report("corpus/parsedmarc/smtp_tls.json");
  g_autoptr(Report) b = fixture_report("corpus/stalwart-mail-auth/rpt02.json");
  gpointer self = sink_sqlite_ops.open(&(SinkConfig){ NULL }, store_durability(fx->store), &error);
  Report *one[] = { a };
  commit_reports(fx, self, one, 1);
  /* The same report again (a crash between this sink's commit and the store's, then
   * the message delivered again): one row. */
  commit_reports(fx, self, one, 1);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), 1);
  gint64 policies = q_int(fx->db_path, "SELECT COUNT(*) FROM policy");

  /* Rolled back before the flush: nothing. */
  assert_true(store_lock(fx->store, 5, &error));
  assert_true(store_begin(fx->store, NULL, &error));
  assert_true(sink_sqlite_ops.write(self, b, &error));
  sink_sqlite_ops.rollback(self);
  store_rollback(fx->store);
  store_unlock(fx->store);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), 1);

  /* Flushed, then the store's commit fails: the rows go again. */
  assert_true(store_lock(fx->store, 5, &error));
  assert_true(store_begin(fx->store, NULL, &error));
  assert_true(sink_sqlite_ops.write(self, b, &error));
  assert_true(sink_sqlite_ops.flush(self, &error));
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), 2);
  sink_sqlite_ops.rollback(self);
  store_rollback(fx->store);
  store_unlock(fx->store);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), 1);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM policy"), policies);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM failure_detail"),
                   q_int(fx->db_path, "SELECT COUNT(*) FROM failure_detail WHERE "
                                      "report_rowid IN (SELECT report_rowid FROM report)"));

  /* Committed, then an empty commit rolled back: it stays. */
  Report *two[] = { b };
  commit_reports(fx, self, two, 1);
  assert_true(store_lock(fx->store, 5, &error));
  assert_true(store_begin(fx->store, NULL, &error));
  sink_sqlite_ops.rollback(self);
  store_rollback(fx->store);
  store_unlock(fx->store);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), 2);
  sink_sqlite_ops.close(self);
}

/* A store that held reports before the index existed: the new index says it is not
 * complete (the read side then builds it from the tree). */
static void
test_new_index_in_old_store(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) a = fixture_report("corpus/parsedmarc/smtp_tls.json");
  g_autoptr(Report) b = fixture_report("corpus/parsedmarc/rfc8460.json");
  assert_true(store_lock(fx->store, 5, &error));
  assert_true(store_begin(fx->store, NULL, &error));
  store_add(fx->store, a->key);
  assert_true(store_commit(fx->store, &error));
  store_unlock(fx->store);

  gpointer self = sink_sqlite_ops.open(&(SinkConfig){ NULL }, store_durability(fx->store), &error);
  Report *one[] = { b };
  commit_reports(fx, self, one, 1);
  sink_sqlite_ops.close(self);
  g_autofree char *complete =
      q_text(fx->db_path, "SELECT value FROM index_meta WHERE name = 'complete'");
  assert_string_equal(complete, "0");
}

static void
test_foreign_and_corrupt_files(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) a = fixture_report("corpus/parsedmarc/smtp_tls.json");

  /* Not a database at all. */
  tu_write_file(fx->db_path, "this is not SQLite\n", 19);
  gpointer self = sink_sqlite_ops.open(&(SinkConfig){ NULL }, store_durability(fx->store), &error);
  assert_true(store_lock(fx->store, 5, &error));
  assert_true(store_begin(fx->store, NULL, &error));
  assert_false(sink_sqlite_ops.write(self, a, &error));
  assert_non_null(strstr(error->message, "reindex"));
  assert_true(tr_error_classify(error) == TR_ERROR_TRANSIENT);
  g_clear_error(&error);
  sink_sqlite_ops.rollback(self);
  store_rollback(fx->store);
  store_unlock(fx->store);
  sink_sqlite_ops.close(self);
  g_autoptr(TrDb) rd = db_open_read(fx->db_path, &error);
  assert_null(rd);
  assert_non_null(strstr(error->message, "reindex"));
  g_clear_error(&error);

  /* Another program's SQLite database. */
  unlink(fx->db_path);
  sqlite3 *other = NULL;
  assert_int_equal(sqlite3_open(fx->db_path, &other), SQLITE_OK);
  assert_int_equal(sqlite3_exec(other, "CREATE TABLE report (x TEXT)", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(other);
  g_autoptr(TrDb) wr = db_open_write(fx->db_path, DB_SYNC_FULL, NULL, &error);
  assert_null(wr);
  assert_int_equal(error->code, DB_ERROR_CORRUPT);
  assert_non_null(strstr(error->message, "not a tlsrpt-ingest index"));
  g_clear_error(&error);

  /* Written by a newer version. */
  unlink(fx->db_path);
  g_autoptr(TrDb) ok = db_open_write(fx->db_path, DB_SYNC_FULL, NULL, &error);
  assert_non_null(ok);
  assert_true(db_exec(ok, "PRAGMA user_version = 99", &error));
  g_clear_pointer(&ok, db_close);
  g_autoptr(TrDb) newer = db_open_read(fx->db_path, &error);
  assert_null(newer);
  assert_int_equal(error->code, DB_ERROR_VERSION);
  g_clear_error(&error);

  /* Missing. */
  unlink(fx->db_path);
  g_autoptr(TrDb) none = db_open_read(fx->db_path, &error);
  assert_null(none);
  assert_int_equal(error->code, DB_ERROR_MISSING);
}

/* --sqlite elsewhere, and the pipeline writes it with --no-store too. */
static void
test_elsewhere_no_store(void **state)
{
  Fx *fx = *state;
  g_autofree char *path = g_build_filename(fx->dir, "elsewhere.sqlite", NULL);
  g_autofree char *fixture = tu_fixture_path("corpus/parsedmarc/mail.ru.json");
  const char *argv[] = { "file", "--store", fx->store_dir, "--no-store", "--sqlite", path,
                         fixture, NULL };
  g_autofree char *err = NULL;
  g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
  int rc = tu_run(argv, empty, NULL, &err);
  assert_int_equal(rc, 0);
  assert_int_equal(q_int(path, "SELECT COUNT(*) FROM report"), 1);
  assert_false(g_file_test(fx->db_path, G_FILE_TEST_EXISTS));
  /* --no-sqlite: none at all. */
  g_autofree char *store2 = g_build_filename(fx->dir, "s2", NULL);
  const char *argv2[] = { "file", "--store", store2, "--no-sqlite", fixture, NULL };
  assert_int_equal(tu_run(argv2, empty, NULL, NULL), 0);
  g_autofree char *db2 = g_build_filename(store2, "reports.sqlite", NULL);
  assert_false(g_file_test(db2, G_FILE_TEST_EXISTS));
}

/* Every row of @table at @path, one line each, by report key (the columns joined; the
 * report_rowid, which depends on the order of the inserts, replaced by the key). */
static char *
q_dump(const char *path, const char *table)
{
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  g_autofree char *sql =
      strcmp(table, "report") == 0
          ? g_strdup("SELECT * FROM report ORDER BY report_key")
          : g_strdup_printf("SELECT r.report_key, t.* FROM %s t JOIN report r USING "
                            "(report_rowid) ORDER BY 1, 3, 4",
                            table);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  GString *out = g_string_new(NULL);
  while (sqlite3_step(st) == SQLITE_ROW) {
    gboolean first = TRUE;
    for (int c = 0; c < sqlite3_column_count(st); c++) {
      if (strcmp(sqlite3_column_name(st, c), "report_rowid") == 0)
        continue;
      const char *v = (const char *) sqlite3_column_text(st, c);
      g_string_append_printf(out, "%s%s", first ? "" : "|", v != NULL ? v : "<null>");
      first = FALSE;
    }
    g_string_append_c(out, '\n');
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return g_string_free(out, FALSE);
}

/* A report of @n failure details (past 64 KiB: the incremental parse), with a
 * deviation (a count sent as a string). */
static char *
big_report(guint n)
{
  GString *s = g_string_new(
      "{\"organization-name\":\"Big Reporter\",\"date-range\":{\"start-datetime\":"
      "\"2024-03-01T00:00:00Z\",\"end-datetime\":\"2024-03-01T23:59:59Z\"},"
      "\"contact-info\":\"tlsrpt@big.example\",\"report-id\":\"big-1\",\"policies\":[{"
      "\"policy\":{\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\","
      "\"mode: enforce\"],\"policy-domain\":\"big.example\",\"mx-host\":[\"mx.big.example\"]},"
      "\"summary\":{\"total-successful-session-count\":\"7\",\"total-failure-session-count\":");
  g_string_append_printf(s, "%u},\"failure-details\":[", n);
  for (guint i = 0; i < n; i++)
    g_string_append_printf(s, "%s{\"result-type\":\"certificate-expired\",\"sending-mta-ip\":"
                           "\"192.0.2.%u\",\"receiving-mx-hostname\":\"mx.big.example\","
                           "\"failed-session-count\":1}", i > 0 ? "," : "", i % 250);
  g_string_append(s, "]}]}");
  return g_string_free(s, FALSE);
}

/* reindex rebuilds exactly the rows the sink wrote at ingestion: the report, its
 * "ingest" block (source, submitter, received, raw format, key) and its deviations,
 * read in one pass over each normalized copy; a large report (parsed incrementally)
 * too. */
static void
test_reindex_equals_ingest(void **state)
{
  Fx *fx = *state;
  g_autofree char *in = g_build_filename(fx->dir, "in", NULL);
  assert_int_equal(mkdir(in, 0700), 0);
  static const char *const names[] = {
    "corpus/parsedmarc/mail.ru.json", "corpus/parsedmarc/rfc8460.json",
    "corpus/parsedmarc/empty_failure_detail_fields.json",
    "corpus/mta-sts-exporter/microsoft.json", "corpus/stalwart-mail-auth/rpt01.eml",
    "corpus/parsedmarc/google.com_smtp_tls_report.eml",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autoptr(GBytes) b = tu_fixture(names[i]);
    g_autofree char *base = g_path_get_basename(names[i]);
    g_autofree char *to = g_build_filename(in, base, NULL);
    tu_write_file(to, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
  }
  g_autofree char *big = big_report(3000);
  g_assert_cmpuint(strlen(big), >, 64 * 1024);
  g_autofree char *big_path = g_build_filename(in, "big.json", NULL);
  tu_write_file(big_path, big, strlen(big));

  const char *argv[] = { "file", "-q", "--store", fx->store_dir, in, NULL };
  g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
  assert_int_equal(tu_run(argv, empty, NULL, NULL), 0);
  gint64 n = q_int(fx->db_path, "SELECT COUNT(*) FROM report");
  assert_true(n >= 6);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM failure_detail WHERE "
                                      "result_type = 'certificate-expired' AND "
                                      "receiving_mx_hostname = 'mx.big.example'"), 3000);
  assert_true(q_int(fx->db_path, "SELECT COUNT(*) FROM deviation") > 0);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report WHERE "
                                      "received_epoch IS NULL OR source IS NULL"), 0);

  g_autofree char *rebuilt = g_build_filename(fx->dir, "rebuilt.sqlite", NULL);
  ReindexStats stats;
  g_autoptr(GError) error = NULL;
  assert_true(reindex_store(fx->store_dir, rebuilt, 5, FALSE, &stats, &error));
  assert_int_equal(stats.reports, n);
  assert_int_equal(stats.skipped, 0);
  static const char *const tables[] = { "report", "policy", "failure_detail", "deviation" };
  for (gsize i = 0; i < G_N_ELEMENTS(tables); i++) {
    g_autofree char *want = q_dump(fx->db_path, tables[i]);
    g_autofree char *got = q_dump(rebuilt, tables[i]);
    assert_true(want[0] != '\0');
    assert_string_equal(got, want);
  }
}

/* reindex parses on worker threads and inserts in the walk's order: with many more
 * reports than the workers may read ahead of the inserts (and a file of the tree that
 * is not a report, skipped), the rebuilt index holds the same rows as the ingested
 * one, and the reading indexes that the bulk load dropped are made again. */
static void
test_reindex_many_equals_ingest(void **state)
{
  Fx *fx = *state;
  g_autofree char *in = g_build_filename(fx->dir, "in", NULL);
  assert_int_equal(mkdir(in, 0700), 0);
  const guint n_reports = 1300;
  for (guint i = 0; i < n_reports; i++) {
    g_autofree char *json = g_strdup_printf(
        "{\"organization-name\":\"Org %u\",\"date-range\":{\"start-datetime\":"
        "\"2024-03-%02uT00:00:00Z\",\"end-datetime\":\"2024-03-%02uT23:59:59Z\"},"
        "\"contact-info\":\"tlsrpt@org%u.example\",\"report-id\":\"many-%u\",\"policies\":[{"
        "\"policy\":{\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\"],"
        "\"policy-domain\":\"d%u.example\",\"mx-host\":[\"mx.d%u.example\"]},"
        "\"summary\":{\"total-successful-session-count\":%u,"
        "\"total-failure-session-count\":%u},\"failure-details\":[{\"result-type\":"
        "\"certificate-expired\",\"sending-mta-ip\":\"192.0.2.%u\",\"receiving-mx-hostname\":"
        "\"mx.d%u.example\",\"failed-session-count\":%u}]}]}",
        i % 7, 1 + i % 28, 1 + i % 28, i % 5, i, i % 40, i % 40, 100 + i, 1 + i % 3, i % 250,
        i % 40, 1 + i % 3);
    g_autofree char *name = g_strdup_printf("r%04u.json", i);
    g_autofree char *to = g_build_filename(in, name, NULL);
    tu_write_file(to, json, strlen(json));
  }
  const char *argv[] = { "file", "-q", "--store", fx->store_dir, in, NULL };
  g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
  assert_int_equal(tu_run(argv, empty, NULL, NULL), 0);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), n_reports);

  /* Not a report, where the walk looks for reports: skipped and counted. */
  g_autofree char *odd_dir = g_build_filename(fx->store_dir, "zz.example", "2024", "03",
                                              "01", NULL);
  assert_int_equal(g_mkdir_with_parents(odd_dir, 0700), 0);
  g_autofree char *odd = g_build_filename(odd_dir, "broken.json", NULL);
  tu_write_file(odd, "{\"not\": \"a report\"", 18);

  g_autofree char *rebuilt = g_build_filename(fx->dir, "rebuilt.sqlite", NULL);
  ReindexStats stats;
  g_autoptr(GError) error = NULL;
  assert_true(reindex_store(fx->store_dir, rebuilt, 5, FALSE, &stats, &error));
  assert_int_equal(stats.reports, n_reports);
  assert_int_equal(stats.skipped, 1);
  static const char *const tables[] = { "report", "policy", "failure_detail", "deviation" };
  for (gsize i = 0; i < G_N_ELEMENTS(tables); i++) {
    g_autofree char *want = q_dump(fx->db_path, tables[i]);
    g_autofree char *got = q_dump(rebuilt, tables[i]);
    if (strcmp(tables[i], "deviation") != 0)
      assert_true(want[0] != '\0');
    assert_string_equal(got, want);
  }
  static const char *const indexes[] = { "policy_domain_org", "failure_domain_type",
                                         "report_begin" };
  for (gsize i = 0; i < G_N_ELEMENTS(indexes); i++) {
    g_autofree char *sql = g_strdup_printf(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '%s'", indexes[i]);
    assert_int_equal(q_int(rebuilt, sql), 1);
  }
  /* The rows are in the walk's (the tree's name) order: report_rowid 1 is the first
   * file of the first domain's first day. */
  assert_int_equal(q_int(rebuilt, "SELECT MIN(report_rowid) FROM report"), 1);
  assert_int_equal(q_int(rebuilt, "SELECT MAX(report_rowid) FROM report"), n_reports);
}

/* An index of schema version 1 (every row keyed by report_key text) is migrated on
 * open to this version's: the rows kept, the children keyed by their report's
 * report_rowid, the old tables gone; inserts then work and stay idempotent. */
static void
test_migrate_v1(void **state)
{
  Fx *fx = *state;
  static const char v1[] =
      "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_epoch BIGINT NOT NULL);"
      "CREATE TABLE index_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE report (report_key TEXT PRIMARY KEY, organization_name TEXT NOT NULL, "
      "contact_info TEXT, report_id TEXT NOT NULL, begin_epoch BIGINT NOT NULL, end_epoch "
      "BIGINT NOT NULL, begin_day TEXT NOT NULL, submitter TEXT, source TEXT, report_domain "
      "TEXT, received_epoch BIGINT, raw_format TEXT, deviation_count INTEGER NOT NULL);"
      "CREATE TABLE policy (report_key TEXT NOT NULL REFERENCES report (report_key), "
      "policy_index INTEGER NOT NULL, policy_domain TEXT NOT NULL, policy_type TEXT NOT NULL, "
      "policy_strings TEXT NOT NULL, mx_hosts TEXT NOT NULL, total_successful_session_count "
      "BIGINT NOT NULL, total_failure_session_count BIGINT NOT NULL, organization_name TEXT "
      "NOT NULL, begin_epoch BIGINT NOT NULL, begin_day TEXT NOT NULL, PRIMARY KEY "
      "(report_key, policy_index));"
      "CREATE TABLE failure_detail (report_key TEXT NOT NULL, policy_index INTEGER NOT NULL, "
      "detail_index INTEGER NOT NULL, result_type TEXT NOT NULL, sending_mta_ip TEXT, "
      "receiving_mx_hostname TEXT, receiving_mx_helo TEXT, receiving_ip TEXT, "
      "failed_session_count BIGINT NOT NULL, failure_reason_code TEXT, "
      "additional_information TEXT, policy_domain TEXT NOT NULL, begin_epoch BIGINT NOT NULL, "
      "PRIMARY KEY (report_key, policy_index, detail_index));"
      "CREATE TABLE deviation (report_key TEXT NOT NULL REFERENCES report (report_key), "
      "deviation_index INTEGER NOT NULL, slug TEXT, deviation TEXT NOT NULL, PRIMARY KEY "
      "(report_key, deviation_index));"
      "CREATE INDEX report_begin ON report (begin_epoch);"
      "CREATE INDEX policy_begin_domain ON policy (begin_epoch, policy_domain);"
      "CREATE INDEX failure_domain_type ON failure_detail (policy_domain, result_type, "
      "begin_epoch);"
      "INSERT INTO schema_version VALUES (1, 1700000000);"
      "INSERT INTO index_meta VALUES ('complete', '1');"
      "INSERT INTO report VALUES ('bbbb', 'Org B', NULL, 'b-1', 200, 299, '1970-01-01', NULL, "
      "'b.json', NULL, 1700000000, 'json', 1);"
      "INSERT INTO report VALUES ('aaaa', 'Org A', 'mailto:a@a.example', 'a-1', 100, 199, "
      "'1970-01-01', 'a.example', 'a.eml', 'a.example', 1700000001, 'json.gz', 0);"
      "INSERT INTO policy VALUES ('aaaa', 0, 'a.example', 'sts', 'version: STSv1', "
      "'mx.a.example', 10, 2, 'Org A', 100, '1970-01-01');"
      "INSERT INTO policy VALUES ('aaaa', 1, 'a.example', 'tlsa', '', '', 5, 0, 'Org A', 100, "
      "'1970-01-01');"
      "INSERT INTO policy VALUES ('bbbb', 0, 'b.example', 'no-policy-found', '', '', 7, 1, "
      "'Org B', 200, '1970-01-01');"
      "INSERT INTO failure_detail VALUES ('aaaa', 0, 0, 'certificate-expired', '192.0.2.1', "
      "'mx.a.example', NULL, NULL, 2, NULL, NULL, 'a.example', 100);"
      "INSERT INTO failure_detail VALUES ('bbbb', 0, 0, 'validation-failure', '192.0.2.2', "
      "NULL, NULL, NULL, 1, 'X', 'info', 'b.example', 200);"
      "INSERT INTO deviation VALUES ('bbbb', 0, 'contact-info-missing', 'contact-info: "
      "missing');"
      "PRAGMA application_id = 1414288210; PRAGMA user_version = 1;";
  sqlite3 *raw = NULL;
  assert_int_equal(mkdir(fx->store_dir, 0700) == 0 || errno == EEXIST, TRUE);
  assert_int_equal(sqlite3_open(fx->db_path, &raw), SQLITE_OK);
  assert_int_equal(sqlite3_exec(raw, v1, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(raw);

  g_autoptr(GError) error = NULL;
  g_autoptr(TrDb) db = db_open_write(fx->db_path, DB_SYNC_FULL, NULL, &error);
  if (db == NULL)
    fail_msg("%s", error->message);
  g_clear_pointer(&db, db_close);
  assert_int_equal(q_int(fx->db_path, "PRAGMA user_version"), DB_SCHEMA_VERSION);
  assert_int_equal(q_int(fx->db_path, "SELECT MAX(version) FROM schema_version"),
                   DB_SCHEMA_VERSION);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE "
                                      "'old_%' OR name LIKE 'policy_begin%'"), 0);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM sqlite_master WHERE name = "
                                      "'failure_domain_type' AND tbl_name = 'failure_detail'"),
                   1);
  g_autofree char *reports = q_dump(fx->db_path, "report");
  g_autofree char *want_reports = g_strdup(
      "aaaa|Org A|mailto:a@a.example|a-1|100|199|1970-01-01|a.example|a.eml|a.example|"
      "1700000001|json.gz|0|<null>|<null>\n"
      "bbbb|Org B|<null>|b-1|200|299|1970-01-01|<null>|b.json|<null>|1700000000|json|1|"
      "<null>|<null>\n");
  assert_string_equal(reports, want_reports);
  g_autofree char *policies = q_dump(fx->db_path, "policy");
  assert_string_equal(policies,
                      "aaaa|0|a.example|sts|version: STSv1|mx.a.example|10|2|Org A|100|1970-01-01\n"
                      "aaaa|1|a.example|tlsa|||5|0|Org A|100|1970-01-01\n"
                      "bbbb|0|b.example|no-policy-found|||7|1|Org B|200|1970-01-01\n");
  g_autofree char *details = q_dump(fx->db_path, "failure_detail");
  assert_string_equal(details,
                      "aaaa|0|0|certificate-expired|192.0.2.1|mx.a.example|<null>|<null>|2|"
                      "<null>|<null>|a.example|100\n"
                      "bbbb|0|0|validation-failure|192.0.2.2|<null>|<null>|<null>|1|X|info|"
                      "b.example|200\n");
  g_autofree char *devs = q_dump(fx->db_path, "deviation");
  assert_string_equal(devs, "bbbb|0|contact-info-missing|contact-info: missing\n");

  /* Written on after the migration: a new report, the same one again (idempotent). */
  g_autoptr(Report) a = fixture_report("corpus/parsedmarc/smtp_tls.json");
  gpointer self = sink_sqlite_ops.open(&(SinkConfig){ NULL }, store_durability(fx->store), &error);
  Report *one[] = { a };
  commit_reports(fx, self, one, 1);
  commit_reports(fx, self, one, 1);
  sink_sqlite_ops.close(self);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), 3);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM policy"),
                   3 + (gint64) a->policies->len);
}

/* An insert that fails on the sink's writer thread in the middle of a batch (a trigger
 * of the test's own refuses one report): the batch fails at a later write() or at the
 * flush, with the insert's error; the rollback leaves none of its rows; the same batch,
 * once the trigger is gone, is committed whole and once. */
static void
test_writer_insert_fails(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) a = fixture_report("corpus/parsedmarc/smtp_tls.json");
  g_autoptr(Report) b = fixture_report("corpus/parsedmarc/rfc8460.json");
  g_autoptr(Report) c = fixture_report("corpus/stalwart-mail-auth/rpt02.json");
  g_autoptr(Report) d = fixture_report("corpus/mta-sts-exporter/microsoft.json");
  gpointer self = sink_sqlite_ops.open(&(SinkConfig){ NULL }, store_durability(fx->store), &error);
  assert_non_null(self);
  Report *one[] = { a };
  commit_reports(fx, self, one, 1);

  sqlite3 *other = NULL;
  assert_int_equal(sqlite3_open(fx->db_path, &other), SQLITE_OK);
  assert_int_equal(sqlite3_exec(other,
                                "CREATE TRIGGER refuse BEFORE INSERT ON report WHEN "
                                "NEW.source = 'corpus/stalwart-mail-auth/rpt02.json' "
                                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                                NULL, NULL, NULL),
                   SQLITE_OK);

  Report *batch[] = { b, c, d };
  assert_true(store_lock(fx->store, 5, &error));
  assert_true(store_begin(fx->store, NULL, &error));
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS(batch) && ok; i++)
    ok = sink_sqlite_ops.write(self, batch[i], &error);
  if (ok)
    ok = sink_sqlite_ops.flush(self, &error);
  assert_false(ok);
  assert_non_null(error);
  assert_non_null(strstr(error->message, "refused by the test"));
  g_clear_error(&error);
  sink_sqlite_ops.rollback(self);
  store_rollback(fx->store);
  store_unlock(fx->store);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), 1);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM policy"), a->policies->len);

  assert_int_equal(sqlite3_exec(other, "DROP TRIGGER refuse", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(other);
  commit_reports(fx, self, batch, G_N_ELEMENTS(batch));
  sink_sqlite_ops.close(self);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM report"), 4);
  gint64 policies = 0;
  Report *all[] = { a, b, c, d };
  for (guint i = 0; i < G_N_ELEMENTS(all); i++)
    policies += all[i]->policies->len;
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(*) FROM policy"), policies);
  assert_int_equal(q_int(fx->db_path, "SELECT COUNT(DISTINCT report_key) FROM report"), 4);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_rows_of_real_reports, setup, teardown),
    cmocka_unit_test_setup_teardown(test_idempotent_and_rollbacks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_new_index_in_old_store, setup, teardown),
    cmocka_unit_test_setup_teardown(test_foreign_and_corrupt_files, setup, teardown),
    cmocka_unit_test_setup_teardown(test_elsewhere_no_store, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reindex_equals_ingest, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reindex_many_equals_ingest, setup, teardown),
    cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
    cmocka_unit_test_setup_teardown(test_writer_insert_fails, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
