/* test_postgres.c - the "postgres" sink against a real PostgreSQL: a throw-away
 * cluster started by tests/pg/cluster.sh for this executable (initdb in a temporary
 * directory, a Unix socket there and a free port of 127.0.0.1), one fresh database per
 * test, stopped at the end (also when a test fails: the group teardown runs).
 *
 * The corpus via `file` is the CSV of the same run; three "MX hosts" (three stores)
 * ingesting overlapping Maildirs at once store every report once; 100 concurrent `mda`
 * each report once; the server killed mid-batch gives 75 and nothing acknowledged that
 * is not in the database, and a rerun stores the rest once; wrong password, unreachable
 * server and a bad connection string are clear, never show the password; a dump of
 * the previous schema version is migrated with its data kept. */
#include "../hostile/faultutil.c"
#include "db.h"

#include <json-c/json.h>
#include <sys/wait.h>
#include <unistd.h>

static char *pg_dir;        /* the cluster's directory */
static char *pg_script;     /* tests/pg/cluster.sh */
static char *pg_port;
static guint pg_db_serial;

/* Run cluster.sh with @args (NULL-terminated, after the command and DIR), @stdin_path
 * (nullable) as standard input. Returns its standard output (transfer full); fails
 * the test when it fails, unless @may_fail. */
static char *
pg_script_run(const char *cmd, const char *const *args, const char *stdin_path,
              gboolean may_fail)
{
  GPtrArray *argv = g_ptr_array_new();
  if (stdin_path != NULL) {
    g_ptr_array_add(argv, "sh");
    g_ptr_array_add(argv, "-c");
    g_ptr_array_add(argv, "f=$1; shift; exec \"$@\" <\"$f\"");
    g_ptr_array_add(argv, "sh");
    g_ptr_array_add(argv, (gpointer) stdin_path);
  }
  g_ptr_array_add(argv, pg_script);
  g_ptr_array_add(argv, (gpointer) cmd);
  g_ptr_array_add(argv, pg_dir);
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) args[i]);
  g_ptr_array_add(argv, NULL);
  char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  gboolean ok = g_spawn_sync(NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL,
                             NULL, &out, &err, &status, &error);
  g_ptr_array_unref(argv);
  if (!ok)
    fail_msg("cluster.sh %s: %s", cmd, error->message);
  if (!may_fail && !g_spawn_check_wait_status(status, NULL))
    fail_msg("cluster.sh %s failed: %s", cmd, err);
  g_free(err);
  return out;
}

/* One value (first row, first column) or all rows of @sql in database @db. */
static char *
pg_sql(const char *db, const char *sql)
{
  const char *args[] = { "-d", db, "-At", "-c", sql, NULL };
  char *out = pg_script_run("psql", args, NULL, FALSE);
  g_strchomp(out);
  return out;
}

static gint64
pg_sql_int(const char *db, const char *sql)
{
  g_autofree char *v = pg_sql(db, sql);
  return g_ascii_strtoll(v, NULL, 10);
}

/* A fresh database owned by the role tlsrpt; its name (transfer full). */
static char *
pg_new_db(void)
{
  char *name = g_strdup_printf("t%u", ++pg_db_serial);
  g_autofree char *sql = g_strdup_printf("CREATE DATABASE %s OWNER tlsrpt", name);
  g_free(pg_sql("postgres", sql));
  return name;
}

/* The socket connection string of @db (transfer full). */
static char *
pg_conninfo(const char *db)
{
  return g_strdup_printf("host=%s/sock port=%s dbname=%s user=tlsrpt", pg_dir, pg_port, db);
}

static int
pg_setup(void **state)
{
  const char *src = g_getenv("TLSRPT_SOURCE_DIR");
  pg_script = g_build_filename(src != NULL ? src : ".", "tests", "pg", "cluster.sh", NULL);
  pg_dir = tu_mkdtemp();
  /* The tests need durability against a killed server, not against a power cut. */
  g_setenv("TLSRPT_PG_FSYNC", "off", TRUE);
  pg_port = pg_script_run("start", NULL, NULL, FALSE);
  g_strchomp(pg_port);
  return 0;
}

static int
pg_teardown(void **state)
{
  const char *args[] = { "fast", NULL };
  g_free(pg_script_run("stop", args, NULL, TRUE));
  tu_rmtree(pg_dir);
  g_clear_pointer(&pg_dir, g_free);
  g_clear_pointer(&pg_port, g_free);
  g_clear_pointer(&pg_script, g_free);
  return 0;
}

/* Sorted records (fields joined by \x1f) of an RFC 4180 text; the header dropped when
 * @header. (transfer full) */
static GPtrArray *
pg_csv_records(const char *text, gboolean header)
{
  g_autoptr(GPtrArray) raw = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) recs = fu_csv_parse(text, strlen(text), raw);
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  for (guint i = header ? 1 : 0; i < recs->len; i++) {
    GPtrArray *f = recs->pdata[i];
    g_ptr_array_add(f, NULL);
    g_ptr_array_add(out, g_strjoinv("\x1f", (char **) f->pdata));
    g_ptr_array_remove_index(f, f->len - 1);
  }
  g_ptr_array_sort(out, (GCompareFunc) g_strcmp0);
  return out;
}

static int
pg_strcmp_p(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The CSV's rows, rebuilt from the database: the report, policy and failure_detail
 * tables, their timestamptz, text[] and jsonb columns. */
static const char pg_rows_sql[] =
  "COPY (SELECT 'policy', r.organization_name, COALESCE(r.contact_info, ''), r.report_id,"
  " to_char(r.begin_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
  " to_char(r.end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
  " COALESCE(r.report_json->'policies'->p.policy_index->'policy'->>'policy-domain', ''),"
  " p.policy_type, array_to_string(p.policy_string_list, '|'),"
  " array_to_string(p.mx_host_list, '|'), p.total_successful_session_count::text,"
  " p.total_failure_session_count::text, '', '', '', '', '', '', '', '',"
  " COALESCE(r.submitter, ''), COALESCE(r.source, ''),"
  " COALESCE(r.dkim || COALESCE(' d=' || r.dkim_domain, ''), '')"
  " FROM report r JOIN policy p USING (report_key)"
  " UNION ALL SELECT 'failure', r.organization_name, COALESCE(r.contact_info, ''),"
  " r.report_id,"
  " to_char(r.begin_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
  " to_char(r.end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
  " COALESCE(r.report_json->'policies'->p.policy_index->'policy'->>'policy-domain', ''),"
  " p.policy_type, array_to_string(p.policy_string_list, '|'),"
  " array_to_string(p.mx_host_list, '|'), '', '', f.result_type,"
  " COALESCE(f.sending_mta_ip, ''), COALESCE(f.receiving_mx_hostname, ''),"
  " COALESCE(f.receiving_mx_helo, ''), COALESCE(f.receiving_ip, ''),"
  " f.failed_session_count::text, COALESCE(f.failure_reason_code, ''),"
  " COALESCE(f.additional_information, ''), COALESCE(r.submitter, ''),"
  " COALESCE(r.source, ''), COALESCE(r.dkim || COALESCE(' d=' || r.dkim_domain, ''), '')"
  " FROM report r JOIN policy p USING (report_key)"
  " JOIN failure_detail f USING (report_key, policy_index)) TO STDOUT WITH (FORMAT csv)";

static void
test_corpus_matches_csv(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *db = pg_new_db();
  g_autofree char *ci = pg_conninfo(db);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  g_autofree char *corpus = tu_fixture_path("corpus");
  const char *argv[] = { "file", "--store", store, "--no-store", "--postgres", ci,
                         "--csv", csv, "--csv-raw", corpus, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int rc = tu_run(argv, NULL, &out, &err);
  if (rc != 0)
    fail_msg("file exited %d: %s", rc, err);
  assert_non_null(strstr(err, "postgres=host="));

  g_autofree char *csv_text = tu_read_file(csv, NULL);
  g_autoptr(GPtrArray) want = pg_csv_records(csv_text, TRUE);
  const char *args[] = { "-d", db, "-c", pg_rows_sql, NULL };
  g_autofree char *db_text = pg_script_run("psql", args, NULL, FALSE);
  g_autoptr(GPtrArray) got = pg_csv_records(db_text, FALSE);
  g_ptr_array_sort(want, pg_strcmp_p);
  g_ptr_array_sort(got, pg_strcmp_p);
  assert_true(want->len > 30);
  for (guint i = 0; i < MIN(want->len, got->len); i++)
    if (strcmp(want->pdata[i], got->pdata[i]) != 0)
      fail_msg("row %u differs:\n csv: %s\n  db: %s", i, (char *) want->pdata[i],
               (char *) got->pdata[i]);
  assert_int_equal(got->len, want->len);

  /* The reports stored are the store's: one row each, keys as in its index. */
  g_autofree char *index_path = g_build_filename(store, ".index", NULL);
  guint indexed = tu_count_lines(index_path);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM report"), indexed);
  /* inet where the text is an address, and only there; the schema's version. */
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM failure_detail WHERE "
                                  "sending_mta_addr IS NOT NULL AND "
                                  "sending_mta_addr <> sending_mta_ip::inet"), 0);
  assert_true(pg_sql_int(db, "SELECT COUNT(*) FROM failure_detail WHERE "
                             "sending_mta_addr IS NOT NULL") > 0);
  assert_int_equal(pg_sql_int(db, "SELECT MAX(version) FROM schema_version"),
                   DB_SCHEMA_VERSION);
  /* The RFC's additional-information is kept. */
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM report WHERE "
                                  "report_json::text LIKE '%additional-information%'") > 0,
                   pg_sql_int(db, "SELECT COUNT(*) FROM failure_detail WHERE "
                                  "additional_information IS NOT NULL") > 0);

  /* A second run stores nothing new, and its report count stays. */
  g_autofree char *store2 = g_build_filename(tmp, "store2", NULL);
  const char *again[] = { "file", "--store", store2, "--no-store", "--postgres", ci,
                          corpus, NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  assert_int_equal(tu_run(again, NULL, &out2, &err2), 0);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM report"), indexed);
  tu_rmtree(tmp);
}

/* Wait for the processes; the number that exited 0 (others printed). */
static guint
pg_wait_all(pid_t *pids, guint n, const char *logdir)
{
  guint ok = 0;
  for (guint i = 0; i < n; i++) {
    int rc = fu_wait(pids[i]);
    if (rc == 0) {
      ok++;
      continue;
    }
    g_autofree char *log = g_strdup_printf("%s/%03u.log", logdir, i);
    g_autofree char *text = tu_read_file(log, NULL);
    print_message("process %u exited %d: %s\n", i, rc, text ? text : "");
  }
  return ok;
}

static void
test_three_hosts_overlapping(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *db = pg_new_db();
  g_autofree char *ci = pg_conninfo(db);
  g_autofree char *logdir = g_build_filename(tmp, "logs", NULL);
  g_mkdir_with_parents(logdir, 0755);
  /* Host h gets messages [300h, 300h + 600) mod 900: each message reaches two hosts. */
  pid_t pids[3];
  for (guint h = 0; h < 3; h++) {
    g_autofree char *md = g_strdup_printf("%s/md%u", tmp, h);
    guint first = 300 * h;
    guint n1 = MIN(600u, 900 - first);
    fu_make_maildir(md, first, n1);
    if (n1 < 600)
      fu_make_maildir(md, 0, 600 - n1);
  }
  for (guint h = 0; h < 3; h++) {
    g_autofree char *md = g_strdup_printf("%s/md%u", tmp, h);
    g_autofree char *store = g_strdup_printf("%s/store%u", tmp, h);
    g_autofree char *log = g_strdup_printf("%s/%03u.log", logdir, h);
    const char *argv[] = { "maildir", "--store", store, "--no-store", "--postgres", ci,
                           "--batch-size", "40", md, NULL };
    pids[h] = fu_spawn(argv, NULL, log);
  }
  assert_int_equal(pg_wait_all(pids, 3, logdir), 3);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM report"), 900);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(DISTINCT report_id) FROM report"), 900);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM policy"), 900);
  /* Each host stored its 600 in its own store. */
  for (guint h = 0; h < 3; h++) {
    g_autofree char *index = g_strdup_printf("%s/store%u/.index", tmp, h);
    assert_int_equal(tu_count_lines(index), 600);
  }
  tu_rmtree(tmp);
}

#define MDA_PROCESSES 100u
#define MDA_DISTINCT 70u

static void
test_hundred_mda(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *db = pg_new_db();
  g_autofree char *ci = pg_conninfo(db);
  g_autofree char *logdir = g_build_filename(tmp, "logs", NULL);
  g_mkdir_with_parents(logdir, 0755);
  /* The schema exists before the rush (its creation at once is test 2's). */
  g_autoptr(GPtrArray) inputs = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < MDA_PROCESSES; i++) {
    g_autoptr(GBytes) m = fu_generated_message(5000 + i % MDA_DISTINCT);
    char *p = g_strdup_printf("%s/in-%03u.eml", tmp, i);
    tu_write_file(p, g_bytes_get_data(m, NULL), g_bytes_get_size(m));
    g_ptr_array_add(inputs, p);
  }
  /* Half the deliveries share one store (its lock and dedup index), the others have
   * one each, as on as many hosts. */
  pid_t pids[MDA_PROCESSES];
  for (guint i = 0; i < MDA_PROCESSES; i++) {
    g_autofree char *store = i % 2 == 0 ? g_strdup_printf("%s/shared", tmp)
                                        : g_strdup_printf("%s/host%03u", tmp, i);
    g_autofree char *log = g_strdup_printf("%s/%03u.log", logdir, i);
    const char *argv[] = { "mda", "--store", store, "--no-store", "--postgres", ci, NULL };
    pids[i] = fu_spawn(argv, inputs->pdata[i], log);
  }
  assert_int_equal(pg_wait_all(pids, MDA_PROCESSES, logdir), MDA_PROCESSES);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM report"), MDA_DISTINCT);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM policy"), MDA_DISTINCT);
  tu_rmtree(tmp);
}

/* Keys of a store's dedup index (what the runs acknowledged). */
static GHashTable *
pg_index_keys(const char *store)
{
  g_autofree char *path = g_build_filename(store, ".index", NULL);
  g_autofree char *text = tu_read_file(path, NULL);
  GHashTable *keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GStrv) lines = g_strsplit(text != NULL ? text : "", "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      g_hash_table_add(keys, g_strdup(lines[i]));
  return keys;
}

static void
test_server_killed_mid_batch(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *db = pg_new_db();
  g_autofree char *ci = pg_conninfo(db);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *md = g_build_filename(tmp, "md", NULL);
  g_autofree char *log = g_build_filename(tmp, "run.log", NULL);
  /* The schema first, then every batch made slow, so the kill lands mid-run. */
  g_autofree char *first = g_build_filename(tmp, "first", NULL);
  fu_make_maildir(first, 9000, 1);
  const char *argv0[] = { "maildir", "--store", store, "--no-store", "--postgres", ci,
                          first, NULL };
  assert_int_equal(tu_run(argv0, NULL, NULL, NULL), 0);
  g_free(pg_sql(db, "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END$$; "
                    "CREATE TRIGGER slow AFTER INSERT ON report FOR EACH STATEMENT "
                    "EXECUTE FUNCTION slow()"));

  fu_make_maildir(md, 0, 1000);
  const char *argv[] = { "maildir", "--store", store, "--no-store", "--postgres", ci,
                         "--batch-size", "20", md, NULL };
  pid_t pid = fu_spawn(argv, NULL, log);
  gint64 stored = 0;
  for (int i = 0; i < 600 && stored < 101; i++) {
    g_usleep(20 * 1000);
    stored = pg_sql_int(db, "SELECT COUNT(*) FROM report");
  }
  assert_true(stored >= 101);
  const char *immediate[] = { "immediate", NULL };
  g_free(pg_script_run("stop", immediate, NULL, FALSE));
  int rc = fu_wait(pid);
  g_autofree char *text = tu_read_file(log, NULL);
  if (rc != 75)
    fail_msg("maildir exited %d, not 75: %s", rc, text);
  assert_non_null(strstr(text, "PostgreSQL"));

  g_free(pg_script_run("restart", NULL, NULL, FALSE));
  /* Nothing acknowledged that is not in the database. */
  g_autoptr(GHashTable) acked = pg_index_keys(store);
  g_autofree char *in_db = pg_sql(db, "SELECT report_key FROM report");
  g_auto(GStrv) db_keys = g_strsplit(in_db, "\n", -1);
  g_autoptr(GHashTable) have = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; db_keys[i] != NULL; i++)
    g_hash_table_add(have, db_keys[i]);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init(&it, acked);
  while (g_hash_table_iter_next(&it, &key, NULL))
    if (!g_hash_table_contains(have, key))
      fail_msg("acknowledged, not in the database: %s", (char *) key);
  guint before = g_hash_table_size(acked);
  print_message("killed after %u acknowledged, %u in the database\n", before,
                g_hash_table_size(have));
  assert_true(before < 1001);

  /* The rerun stores the rest, once. */
  g_free(pg_sql(db, "DROP TRIGGER slow ON report"));
  g_autofree char *out2 = NULL, *err2 = NULL;
  rc = tu_run(argv, NULL, &out2, &err2);
  if (rc != 0)
    fail_msg("rerun exited %d: %s", rc, err2);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM report"), 1001);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM policy"), 1001);
  g_autoptr(GHashTable) acked2 = pg_index_keys(store);
  assert_int_equal(g_hash_table_size(acked2), 1001);
  tu_rmtree(tmp);
}

static void
test_bad_credentials(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *md = g_build_filename(tmp, "md", NULL);
  fu_make_maildir(md, 0, 3);
  g_autofree char *msg = g_build_filename(tmp, "one.eml", NULL);
  g_autoptr(GBytes) m = fu_generated_message(1);
  tu_write_file(msg, g_bytes_get_data(m, NULL), g_bytes_get_size(m));
  g_autofree char *tcp =
      g_strdup_printf("host=127.0.0.1 port=%s dbname=tlsrpt user=tlsrpt", pg_port);

  /* Wrong password (over TCP the role needs one): transient, the password unseen. */
  g_setenv("PGPASSWORD", "Wrong-Pass-4711", TRUE);
  FuResult r = { 0 };
  const char *a1[] = { "maildir", "--store", store, "--no-store", "--postgres", tcp, md,
                       NULL };
  fu_run(&(FuRunOptions){ .argv = a1 }, &r);
  assert_int_equal(r.exit_code, 75);
  assert_non_null(strstr(r.err, "password authentication failed"));
  assert_null(strstr(r.err, "Wrong-Pass-4711"));
  assert_non_null(strstr(r.err, "not_stored=3"));
  fu_result_clear(&r);
  const char *a2[] = { "mda", "--store", store, "--no-store", "--postgres", tcp, NULL };
  fu_run(&(FuRunOptions){ .argv = a2, .stdin_path = msg }, &r);
  assert_int_equal(r.exit_code, 75);
  assert_null(strstr(r.err, "Wrong-Pass-4711"));
  fu_result_clear(&r);

  /* The right one, from PGPASSWORD: stored. */
  g_setenv("PGPASSWORD", "tlsrpt-secret", TRUE);
  fu_run(&(FuRunOptions){ .argv = a2, .stdin_path = msg }, &r);
  assert_int_equal(r.exit_code, 0);
  fu_result_clear(&r);
  g_unsetenv("PGPASSWORD");

  /* Unreachable: nothing listens on the port of a stopped... a closed port. */
  const char *a3[] = { "maildir", "--store", store, "--no-store", "--postgres",
                       "host=127.0.0.1 port=1 dbname=tlsrpt user=tlsrpt", md, NULL };
  fu_run(&(FuRunOptions){ .argv = a3 }, &r);
  assert_int_equal(r.exit_code, 75);
  assert_non_null(strstr(r.err, "cannot connect"));
  fu_result_clear(&r);

  /* A password in the connection string, or one that does not parse: refused before
   * any message is read (a usage error: 2; mda: 75), never echoed. */
  g_autofree char *with_pw = g_strdup_printf(
      "postgresql://tlsrpt:Secret-URI-99@127.0.0.1:%s/tlsrpt", pg_port);
  const char *bad[] = { with_pw, "host=127.0.0.1 password=Secret-KV-98 dbname=x",
                        "password='Secret Q 97' host", "dbname=x port", NULL };
  for (guint i = 0; bad[i] != NULL; i++) {
    const char *a4[] = { "maildir", "--store", store, "--no-store", "--postgres", bad[i], md,
                         NULL };
    fu_run(&(FuRunOptions){ .argv = a4 }, &r);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "--postgres"));
    assert_null(strstr(r.err, "Secret"));
    fu_result_clear(&r);
    const char *a5[] = { "mda", "--store", store, "--no-store", "--postgres", bad[i], NULL };
    fu_run(&(FuRunOptions){ .argv = a5, .stdin_path = msg }, &r);
    assert_int_equal(r.exit_code, 75);
    assert_null(strstr(r.err, "Secret"));
    fu_result_clear(&r);
  }
  /* The config file's postgres = is the same option. */
  g_autofree char *conf = g_build_filename(tmp, "conf", NULL);
  g_autofree char *conf_text = g_strdup_printf("[tlsrpt-ingest]\npostgres = %s\n", with_pw);
  tu_write_file(conf, conf_text, strlen(conf_text));
  const char *a6[] = { "maildir", "--config", conf, "--store", store, "--no-store", md, NULL };
  fu_run(&(FuRunOptions){ .argv = a6 }, &r);
  assert_int_equal(r.exit_code, 2);
  assert_non_null(strstr(r.err, conf));
  assert_null(strstr(r.err, "Secret"));
  fu_result_clear(&r);
  tu_rmtree(tmp);
}

static void
test_migration_from_dump(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *db = pg_new_db();
  g_autofree char *ci = pg_conninfo(db);
  g_autofree char *dump = tu_fixture_path("postgres/schema-v1.sql");
  const char *args[] = { "-d", db, "-U", "tlsrpt", "-f", "-", NULL };
  g_free(pg_script_run("psql", args, dump, FALSE));
  gint64 before = pg_sql_int(db, "SELECT COUNT(*) FROM report");
  g_autofree char *keys_before =
      pg_sql(db, "SELECT string_agg(report_key || total_failure_session_count, ',' "
                 "ORDER BY report_key) FROM report JOIN policy USING (report_key)");
  assert_true(before > 0);

  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *corpus = tu_fixture_path("corpus");
  const char *argv[] = { "file", "--store", store, "--no-store", "--postgres", ci, corpus,
                         NULL };
  g_autofree char *out = NULL, *err = NULL;
  int rc = tu_run(argv, NULL, &out, &err);
  if (rc != 0)
    fail_msg("file exited %d: %s", rc, err);
  assert_int_equal(pg_sql_int(db, "SELECT MAX(version) FROM schema_version"),
                   DB_SCHEMA_VERSION);
  /* The dump's rows are still there, as they were, and the corpus joined them. */
  g_autofree char *keys_after = pg_sql(
      db, "SELECT string_agg(report_key || total_failure_session_count, ',' "
          "ORDER BY report_key) FROM report JOIN policy USING (report_key) "
          "WHERE report_key IN (SELECT report_key FROM report WHERE source LIKE 'dump:%')");
  assert_string_equal(keys_after, keys_before);
  assert_true(pg_sql_int(db, "SELECT COUNT(*) FROM report") > before);
  tu_rmtree(tmp);
}

/* The reading commands on the database give what they give on the SQLite index of
 * the same reports (the same run wrote both), hostile and synthetic reports included. */
static void
test_readers_match_sqlite(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *db = pg_new_db();
  g_autofree char *ci = pg_conninfo(db);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *index = g_build_filename(store, "reports.sqlite", NULL);
  g_autofree char *corpus = tu_fixture_path("corpus");
  g_autofree char *hostile = tu_fixture_path("hostile");
  g_autofree char *synthetic = tu_fixture_path("synthetic");
  const char *argv[] = { "file", "-q", "--store", store, "--postgres", ci, corpus, hostile,
                         synthetic, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int rc = tu_run(argv, NULL, &out, &err);
  if (rc != 0 && rc != 1)
    fail_msg("file exited %d: %s", rc, err);
  g_autofree char *index_path = g_build_filename(store, ".index", NULL);
  assert_int_equal(pg_sql_int(db, "SELECT COUNT(*) FROM report"), tu_count_lines(index_path));

  static const char *const commands[][4] = {
    { "summary", "--format", "json", NULL },
    { "summary", "--format", "text", NULL },
    { "summary", "--by", "mx", "--format=json" },
    { "summary", "--by", "result", "--format=csv" },
    { "summary", "--by", "day", "--format=json" },
    { "summary", "--by", "org", "--format=json" },
    { "summary", "--by", "sending-ip", "--format=json" },
    { "check", NULL },
    { "metrics", NULL },
    { "report", "--format", "text", NULL },
    { "report", "--html", "-", NULL },
  };
  static const char *const filters[][7] = {
    { NULL },
    { "--domain", "example.com", "--org", "Google Inc.", "--since", "2016-01-01", NULL },
    { "--days", "400", NULL },
    /* A window after the first reports (their result types were seen before it), with
     * and without an organization; one holding no report; a trust-verdict filter. */
    { "--since", "2024-03-01", "--until", "2024-03-05", NULL },
    { "--since", "2024-03-03", "--org", "Google Inc.", NULL },
    { "--since", "2030-01-01", "--until", "2030-02-01", NULL },
    { "--since", "2016-01-01", "--dkim", "none", NULL },
    /* Filter values that a literal must quote (the statements' rows come through COPY,
     * their values written into the text): synthetic/copy-escapes.json's organization,
     * with a backslash, tab, newline, \N, $1 and quotes. */
    { "--since", "2016-01-01", "--org", "Back\\slash\tTab\nNewline \\N $1 'q' \"dq\"",
      "--domain", "Copy-Escapes.example", NULL },
    { "--since", "2016-01-01", "--org", "$2' OR ''='", "--domain", "$1", NULL },
  };
  guint compared = 0, expected = 0;
  /* Then the summaries again, the tables rewritten in another order than their keys'
   * (a heap's rows come as they lie: summary's scans take them in any order). */
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1)
      g_free(pg_sql(db, "CLUSTER policy USING policy_domain_org; "
                        "CLUSTER failure_detail USING failure_domain_type; ANALYZE"));
    for (gsize f = 0; f < G_N_ELEMENTS(filters); f++)
      for (gsize c = 0; c < G_N_ELEMENTS(commands); c++) {
        /* --dkim is summary's only. */
        gboolean dkim = strcmp(filters[f][2] != NULL ? filters[f][2] : "", "--dkim") == 0;
        if ((dkim || pass == 1) && strcmp(commands[c][0], "summary") != 0)
          continue;
        expected++;
        char *outs[2] = { NULL, NULL };
        int rcs[2];
        for (int backend = 0; backend < 2; backend++) {
          GPtrArray *a = g_ptr_array_new();
          for (gsize i = 0; i < 4 && commands[c][i] != NULL; i++)
            g_ptr_array_add(a, (gpointer) commands[c][i]);
          g_ptr_array_add(a, backend == 0 ? "--sqlite" : "--postgres");
          g_ptr_array_add(a, backend == 0 ? index : ci);
          g_ptr_array_add(a, "--now");
          g_ptr_array_add(a, "2025-09-01");
          if (filters[f][0] == NULL) {
            g_ptr_array_add(a, "--since");
            g_ptr_array_add(a, "2016-01-01");
          }
          for (gsize i = 0; filters[f][i] != NULL; i++)
            g_ptr_array_add(a, (gpointer) filters[f][i]);
          g_ptr_array_add(a, NULL);
          g_autofree char *e = NULL;
          rcs[backend] = tu_run((const char *const *) a->pdata, NULL, &outs[backend], &e);
          g_ptr_array_unref(a);
          if (rcs[backend] < 0 || rcs[backend] > 2)  /* check: 1 warning, 2 critical */
            fail_msg("%s on backend %d exited %d: %s", commands[c][0], backend, rcs[backend],
                     e);
        }
        if (strcmp(outs[0], outs[1]) != 0) {
          g_autofree char *a = g_build_filename(tmp, "sqlite.out", NULL);
          g_autofree char *b = g_build_filename(tmp, "postgres.out", NULL);
          tu_write_file(a, outs[0], strlen(outs[0]));
          tu_write_file(b, outs[1], strlen(outs[1]));
          fail_msg("%s %s (filter %zu): the outputs differ: diff %s %s", commands[c][0],
                   commands[c][1] ? commands[c][1] : "", f, a, b);
        }
        assert_int_equal(rcs[0], rcs[1]);
        g_free(outs[1]);
        if (f == 0 && strlen(outs[0]) < 40)
          fail_msg("%s %s (filter %zu): almost nothing: %s", commands[c][0],
                   commands[c][1] ? commands[c][1] : "", f, outs[0]);
        g_free(outs[0]);
        compared++;
      }
  }
  assert_int_equal(compared, expected);
  assert_true(expected > G_N_ELEMENTS(commands) * (G_N_ELEMENTS(filters) - 1));

  /* A database without the schema, and one that is unreachable: said, not crashed. */
  g_autofree char *empty = pg_new_db();
  g_autofree char *empty_ci = pg_conninfo(empty);
  const char *a1[] = { "summary", "--postgres", empty_ci, NULL };
  g_autofree char *o1 = NULL, *e1 = NULL;
  assert_int_not_equal(tu_run(a1, NULL, &o1, &e1), 0);
  assert_non_null(strstr(e1, "PostgreSQL"));
  const char *a2[] = { "check", "--postgres", "host=127.0.0.1 port=1 dbname=x", NULL };
  g_autofree char *o2 = NULL, *e2 = NULL;
  assert_int_equal(tu_run(a2, NULL, &o2, &e2), 3);    /* UNKNOWN */
  assert_non_null(strstr(o2, "cannot connect"));
  tu_rmtree(tmp);
}

/* The readers' statements (db.h on PostgreSQL: a SELECT runs as COPY with its values
 * written in as literals): each $n is its value, of its type, and only where it is a
 * placeholder ($1 is not $10's start; "$1" in a string, an identifier, a comment or a
 * dollar-quoted string stays); NULL is told from the text \N; tab, newline and
 * backslash come back as they went; statements interleave; one with two commands
 * still runs (as PQexecParams() would refuse it: an error, not a crash). */
static void
test_reader_statements(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *dbname = pg_new_db();
  g_autofree char *ci = pg_conninfo(dbname);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *corpus = tu_fixture_path("corpus");
  const char *argv[] = { "file", "-q", "--store", store, "--no-store", "--postgres", ci,
                         corpus, NULL };
  assert_int_equal(tu_run(argv, NULL, NULL, NULL), 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(TrDb) db = db_open_postgres(ci, &error);
  assert_non_null(db);
  g_autoptr(TrDbStmt) st = db_prepare(
      db,
      "  SELECT $1, '$1', $10, $2 || 'x', \"report_rowid\" > 0 AS \"$1\", $3 + 1, "
      "E'\\'$1', $$ $1 $$, $q$ $1' $q$, /* $1 ' */ $4 -- $1 '\n"
      "FROM report WHERE report_rowid = (SELECT MIN(report_rowid) FROM report)",
      &error);
  assert_non_null(st);
  const char *hostile = "a'b\\c\td\ne\\N $2 \"";
  db_bind_text(st, 1, hostile);
  db_bind_text(st, 2, NULL);
  db_bind_int64(st, 3, -41);
  db_bind_text(st, 4, "\\N");
  db_bind_text(st, 10, "ten");
  assert_int_equal(db_step(st, &error), DB_STEP_ROW);
  assert_string_equal(db_col_text(st, 0), hostile);
  assert_string_equal(db_col_text(st, 1), "$1");
  assert_string_equal(db_col_text(st, 2), "ten");
  assert_true(db_col_is_null(st, 3));
  assert_string_equal(db_col_text(st, 4), "t");
  assert_int_equal(db_col_int64(st, 5), -40);
  assert_string_equal(db_col_text(st, 6), "'$1");
  assert_string_equal(db_col_text(st, 7), " $1 ");
  assert_string_equal(db_col_text(st, 8), " $1' ");
  assert_false(db_col_is_null(st, 9));
  assert_string_equal(db_col_text(st, 9), "\\N");
  /* Another statement while this one's COPY is not read to its end, then this one's
   * end: the rows it had left were read ahead. */
  g_autoptr(TrDbStmt) all = db_prepare(db, "SELECT report_rowid FROM report", &error);
  g_autoptr(TrDbStmt) count = db_prepare(db, "SELECT COUNT(*) FROM report", &error);
  assert_int_equal(db_step(all, &error), DB_STEP_ROW);
  assert_int_equal(db_step(count, &error), DB_STEP_ROW);
  gint64 n = db_col_int64(count, 0), seen = 1;
  assert_true(n > 2);
  assert_int_equal(db_step(st, &error), DB_STEP_DONE);
  while (db_step(all, &error) == DB_STEP_ROW)
    seen++;
  assert_null(error);
  assert_int_equal(seen, n);
  /* Run again with other values. */
  db_reset(st);
  db_bind_text(st, 1, "");
  db_bind_int64(st, 3, 0);
  db_bind_text(st, 4, NULL);
  db_bind_text(st, 10, NULL);
  assert_int_equal(db_step(st, &error), DB_STEP_ROW);
  assert_string_equal(db_col_text(st, 0), "");
  assert_true(db_col_is_null(st, 2));
  assert_true(db_col_is_null(st, 9));
  db_reset(st);
  /* Two commands: not a COPY; the server refuses them with parameters. */
  g_autoptr(TrDbStmt) two = db_prepare(db, "SELECT $1; SELECT 2", &error);
  db_bind_text(two, 1, "x");
  assert_int_equal(db_step(two, &error), DB_STEP_ERROR);
  assert_non_null(strstr(error->message, "PostgreSQL"));
  g_clear_error(&error);
  /* A statement's error, then the connection still reads. */
  g_autoptr(TrDbStmt) bad = db_prepare(db, "SELECT no_such_column FROM report", &error);
  assert_int_equal(db_step(bad, &error), DB_STEP_ERROR);
  assert_non_null(strstr(error->message, "no_such_column"));
  g_clear_error(&error);
  db_reset(count);
  assert_int_equal(db_step(count, &error), DB_STEP_ROW);
  assert_int_equal(db_col_int64(count, 0), n);
  tu_rmtree(tmp);
}

/* A reader whose rows stop mid-stream (the server's error after some rows have come, or
 * its backend gone) says so and exits 1: nothing half-read is shown. The details'
 * table is made a view whose fourth row raises, or ends its backend. */
static void
test_reader_fails_mid_stream(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *db = pg_new_db();
  g_autofree char *ci = pg_conninfo(db);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *corpus = tu_fixture_path("corpus");
  const char *argv[] = { "file", "-q", "--store", store, "--no-store", "--postgres", ci,
                         corpus, NULL };
  assert_int_equal(tu_run(argv, NULL, NULL, NULL), 0);
  assert_true(pg_sql_int(db, "SELECT COUNT(*) FROM failure_detail") > 4);
  g_free(pg_sql(
      db, "SET ROLE tlsrpt; CREATE SEQUENCE boom_rows; "
          "CREATE TABLE boom_how (terminate BOOLEAN NOT NULL); "
          "INSERT INTO boom_how VALUES (FALSE); "
          "CREATE FUNCTION boom(t TEXT) RETURNS TEXT LANGUAGE plpgsql VOLATILE AS $f$ "
          "BEGIN IF nextval('boom_rows') % 1000 = 4 THEN "
          "IF (SELECT terminate FROM boom_how) THEN "
          "PERFORM pg_terminate_backend(pg_backend_pid()); END IF; "
          "RAISE EXCEPTION 'boom at a fourth row'; END IF; RETURN t; END $f$; "
          "ALTER TABLE failure_detail RENAME TO failure_detail_rows; "
          "CREATE VIEW failure_detail AS SELECT report_rowid, policy_index, detail_index, "
          "boom(result_type) AS result_type, sending_mta_ip, receiving_mx_hostname, "
          "failed_session_count, policy_domain, begin_epoch, failure_reason_code, "
          "additional_information FROM failure_detail_rows"));
  for (int terminate = 0; terminate < 2; terminate++) {
    g_autofree char *how = g_strdup_printf(
        "SET ROLE tlsrpt; UPDATE boom_how SET terminate = %s; "
        "SELECT setval('boom_rows', 1000)", terminate ? "TRUE" : "FALSE");
    g_free(pg_sql(db, how));
    for (int json = 0; json < 2; json++) {
      const char *a[] = { "summary", "--postgres", ci, "--since", "2016-01-01", "--format",
                          json ? "json" : "text", NULL };
      g_autofree char *out = NULL, *err = NULL;
      assert_int_equal(tu_run(a, NULL, &out, &err), 1);
      assert_true(out == NULL || out[0] == '\0');   /* nothing half-read */
      assert_non_null(strstr(err, "PostgreSQL"));
      if (!terminate)
        assert_non_null(strstr(err, "boom at a fourth row"));
      g_free(pg_sql(db, "SELECT setval('boom_rows', 1000)"));
    }
  }
  tu_rmtree(tmp);
}

/* @sql with Grafana's macros and variables replaced, minimally: the time filter by
 * a range holding every report, ${domain:sqlstring} by every domain. (transfer full) */
static char *
pg_grafana_sql(const char *sql, const char *domains)
{
  g_autoptr(GString) s = g_string_new(sql);
  g_string_replace(s, "${domain:sqlstring}", domains, 0);
  for (;;) {
    char *m = strstr(s->str, "$__timeFilter(");
    if (m == NULL)
      break;
    char *close = strchr(m, ')');
    assert_non_null(close);
    g_autofree char *col = g_strndup(m + strlen("$__timeFilter("),
                                     (gsize) (close - m - strlen("$__timeFilter(")));
    g_autofree char *range = g_strdup_printf(
        "%s BETWEEN '2010-01-01T00:00:00Z' AND '2030-01-01T00:00:00Z'", col);
    gssize at = m - s->str;
    g_string_erase(s, at, close + 1 - m);
    g_string_insert(s, at, range);
  }
  assert_null(strstr(s->str, "$__"));
  assert_null(strstr(s->str, "${"));
  return g_string_free(g_steal_pointer(&s), FALSE);
}

/* contrib/grafana's dashboard: every query it holds runs on the schema and finds rows
 * in a database of the corpus, so a schema change cannot silently break it. */
static void
test_grafana_queries(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *db = pg_new_db();
  g_autofree char *ci = pg_conninfo(db);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *corpus = tu_fixture_path("corpus");
  const char *argv[] = { "file", "-q", "--store", store, "--no-store", "--postgres", ci,
                         corpus, NULL };
  assert_int_equal(tu_run(argv, NULL, NULL, NULL), 0);

  const char *src = g_getenv("TLSRPT_SOURCE_DIR");
  g_autofree char *path = g_build_filename(src != NULL ? src : ".", "contrib", "grafana",
                                           "tlsrpt.json", NULL);
  g_autofree char *text = tu_read_file(path, NULL);
  assert_non_null(text);
  json_object *dash = json_tokener_parse(text);
  assert_non_null(dash);
  g_autofree char *domains = pg_sql(
      db, "SELECT string_agg(quote_literal(d), ',') FROM (SELECT DISTINCT policy_domain d "
          "FROM policy) x");
  g_autoptr(GPtrArray) queries = g_ptr_array_new_with_free_func(g_free);
  json_object *panels = NULL, *templating = NULL, *list = NULL;
  assert_true(json_object_object_get_ex(dash, "panels", &panels));
  for (size_t i = 0; i < json_object_array_length(panels); i++) {
    json_object *targets = NULL, *p = json_object_array_get_idx(panels, i);
    assert_true(json_object_object_get_ex(p, "targets", &targets));
    for (size_t j = 0; j < json_object_array_length(targets); j++) {
      json_object *raw = NULL;
      assert_true(json_object_object_get_ex(json_object_array_get_idx(targets, j), "rawSql",
                                            &raw));
      g_ptr_array_add(queries, g_strdup(json_object_get_string(raw)));
    }
  }
  if (json_object_object_get_ex(dash, "templating", &templating) &&
      json_object_object_get_ex(templating, "list", &list))
    for (size_t i = 0; i < json_object_array_length(list); i++) {
      json_object *q = NULL, *type = NULL, *v = json_object_array_get_idx(list, i);
      if (json_object_object_get_ex(v, "type", &type) &&
          strcmp(json_object_get_string(type), "query") == 0 &&
          json_object_object_get_ex(v, "query", &q))
        g_ptr_array_add(queries, g_strdup(json_object_get_string(q)));
    }
  assert_true(queries->len >= 6);
  for (guint i = 0; i < queries->len; i++) {
    g_autofree char *sql = pg_grafana_sql(queries->pdata[i], domains);
    g_autofree char *rows = pg_sql(db, sql);
    if (rows[0] == '\0')
      fail_msg("dashboard query %u found no rows:\n%s", i, sql);
  }
  json_object_put(dash);
  tu_rmtree(tmp);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_corpus_matches_csv),
    cmocka_unit_test(test_three_hosts_overlapping),
    cmocka_unit_test(test_hundred_mda),
    cmocka_unit_test(test_bad_credentials),
    cmocka_unit_test(test_migration_from_dump),
    cmocka_unit_test(test_readers_match_sqlite),
    cmocka_unit_test(test_reader_statements),
    cmocka_unit_test(test_reader_fails_mid_stream),
    cmocka_unit_test(test_grafana_queries),
    cmocka_unit_test(test_server_killed_mid_batch),
  };
  return cmocka_run_group_tests(tests, pg_setup, pg_teardown);
}
