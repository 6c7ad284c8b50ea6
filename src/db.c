/* db.c - the SQL index over SQLite: schema, migrations, statements, report rows.
 * Schema and the reasons for it: docs/sql.md. */
#include "db.h"
#include "pg.h"
#include "report-deviation.h"
#include "report-datetime.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(tlsrpt-db-error-quark, db_error)

/* PRAGMA application_id: "TLSR". Tells our index from any other SQLite file. */
#define DB_APPLICATION_ID 0x544c5352

/* The schema of this version (DB_SCHEMA_VERSION), as a new index gets it. Plain types
 * (TEXT, BIGINT, INTEGER); the PostgreSQL schema (pg.c) has the same tables, columns and
 * keys. Keep docs/sql.md in step.
 *
 * Version 3 is shaped by the cost of writing it (docs/sql.md, docs/performance.md): a
 * report's rows are keyed by its report_rowid, the integer SQLite gives the report row,
 * so that the policy, failure-detail and deviation rows of a report are appended in
 * order to one clustered B-tree per table (WITHOUT ROWID: the key is the table) instead
 * of being filed under a 32-character text key in a table and an index each. The only
 * per-report index is report_begin; windows and filters go through report. */
static const char db_schema_meta[] =
  "CREATE TABLE schema_version (\n"
  "  version INTEGER NOT NULL,\n"
  "  applied_epoch BIGINT NOT NULL\n"
  ");\n"
  "CREATE TABLE index_meta (\n"
  "  name TEXT PRIMARY KEY,\n"
  "  value TEXT NOT NULL\n"
  ");\n";

static const char db_schema_rows[] =
  "CREATE TABLE report (\n"
  "  report_rowid INTEGER PRIMARY KEY,\n"
  "  report_key TEXT NOT NULL UNIQUE,\n"
  "  organization_name TEXT NOT NULL,\n"
  "  contact_info TEXT,\n"
  "  report_id TEXT NOT NULL,\n"
  "  begin_epoch BIGINT NOT NULL,\n"
  "  end_epoch BIGINT NOT NULL,\n"
  "  begin_day TEXT NOT NULL,\n"
  "  submitter TEXT,\n"
  "  source TEXT,\n"
  "  report_domain TEXT,\n"
  "  received_epoch BIGINT,\n"
  "  raw_format TEXT,\n"
  "  deviation_count INTEGER NOT NULL,\n"
  "  dkim TEXT,\n"
  "  dkim_domain TEXT\n"
  ");\n"
  "CREATE TABLE policy (\n"
  "  report_rowid INTEGER NOT NULL REFERENCES report (report_rowid),\n"
  "  policy_index INTEGER NOT NULL,\n"
  "  policy_domain TEXT NOT NULL,\n"
  "  policy_type TEXT NOT NULL,\n"
  "  policy_strings TEXT NOT NULL,\n"
  "  mx_hosts TEXT NOT NULL,\n"
  "  total_successful_session_count BIGINT NOT NULL,\n"
  "  total_failure_session_count BIGINT NOT NULL,\n"
  "  organization_name TEXT NOT NULL,\n"
  "  begin_epoch BIGINT NOT NULL,\n"
  "  begin_day TEXT NOT NULL,\n"
  "  PRIMARY KEY (report_rowid, policy_index)\n"
  ") WITHOUT ROWID;\n"
  "CREATE TABLE failure_detail (\n"
  "  report_rowid INTEGER NOT NULL,\n"
  "  policy_index INTEGER NOT NULL,\n"
  "  detail_index INTEGER NOT NULL,\n"
  "  result_type TEXT NOT NULL,\n"
  "  sending_mta_ip TEXT,\n"
  "  receiving_mx_hostname TEXT,\n"
  "  receiving_mx_helo TEXT,\n"
  "  receiving_ip TEXT,\n"
  "  failed_session_count BIGINT NOT NULL,\n"
  "  failure_reason_code TEXT,\n"
  "  additional_information TEXT,\n"
  "  policy_domain TEXT NOT NULL,\n"
  "  begin_epoch BIGINT NOT NULL,\n"
  "  PRIMARY KEY (report_rowid, policy_index, detail_index),\n"
  "  FOREIGN KEY (report_rowid, policy_index) REFERENCES policy (report_rowid, "
  "policy_index)\n"
  ") WITHOUT ROWID;\n"
  "CREATE TABLE deviation (\n"
  "  report_rowid INTEGER NOT NULL REFERENCES report (report_rowid),\n"
  "  deviation_index INTEGER NOT NULL,\n"
  "  slug TEXT,\n"
  "  deviation TEXT NOT NULL,\n"
  "  PRIMARY KEY (report_rowid, deviation_index)\n"
  ") WITHOUT ROWID;\n"
  "CREATE INDEX report_begin ON report (begin_epoch);\n";

/* The tables of a report's rows, parents first. */
static const char *const db_row_tables[] = { "report", "policy", "failure_detail", "deviation" };

/* DB_STMT_PARAMS_MAX: "$1".."$n" placeholders mapped to SQLite's parameter indexes
 * once, at prepare (a lookup by name per bind cost more than the insert itself).
 * A PostgreSQL database (--postgres) has TrDb.pg and its statements @pg_stmt (pg.c):
 * the readers' statements, with the same SQL; the functions below hand them over. */
#define DB_STMT_PARAMS_MAX 32

/* The reading side's indexes beyond those of the schema versions: no column, nothing a
 * reader needs to be correct, so no version of their own. policy_domain_org: the
 * newest report per (domain, organization) (query_latest) as one covering scan.
 * failure_domain_type: the first start of a failing result type (query.c's
 * query_scan_first_seen) as one look-up. Each costs one B-tree insert per row at
 * ingestion (docs/performance.md). */
static const char db_read_indexes[] =
  "CREATE INDEX IF NOT EXISTS policy_domain_org ON policy (policy_domain, "
  "organization_name, begin_epoch);\n"
  "CREATE INDEX IF NOT EXISTS failure_domain_type ON failure_detail (policy_domain, "
  "result_type, begin_epoch);\n";

static const char db_read_indexes_drop[] =
  "DROP INDEX IF EXISTS policy_domain_org;\n"
  "DROP INDEX IF EXISTS failure_domain_type;\n";

/* A report's child rows (its policies, failure details, deviations) go in with one
 * statement per table and report, up to DB_ROWS_MAX rows each ("INSERT ... VALUES
 * (...), (...)"): SQLite's cost per statement (starting the run, halting it, resetting
 * it) is paid once per report instead of once per row. OR FAIL: a statement of several
 * rows that could stop half-way with ABORT needs a statement journal to undo its first
 * rows; a failed insert fails the whole batch, which is rolled back, so none is needed.
 * One statement per table and row count, prepared when first needed. */
#define DB_ROWS_MAX 16

typedef enum {
  DB_ROWS_POLICY,
  DB_ROWS_FAILURE,
  DB_ROWS_DEVIATION,
  DB_ROWS_TABLES
} DbRowsTable;

static const struct {
  const char *insert;       /* up to VALUES */
  int columns;
} db_rows_tables[DB_ROWS_TABLES] = {
  [DB_ROWS_POLICY] = { "INSERT OR FAIL INTO policy (report_rowid, policy_index, "
                       "policy_domain, policy_type, policy_strings, mx_hosts, "
                       "total_successful_session_count, total_failure_session_count, "
                       "organization_name, begin_epoch, begin_day) VALUES ",
                       11 },
  [DB_ROWS_FAILURE] = { "INSERT OR FAIL INTO failure_detail (report_rowid, policy_index, "
                        "detail_index, result_type, sending_mta_ip, receiving_mx_hostname, "
                        "receiving_mx_helo, receiving_ip, failed_session_count, "
                        "failure_reason_code, additional_information, policy_domain, "
                        "begin_epoch) VALUES ",
                        13 },
  [DB_ROWS_DEVIATION] = { "INSERT OR FAIL INTO deviation (report_rowid, deviation_index, "
                          "slug, deviation) VALUES ",
                          4 },
};

struct TrDbStmt {
  sqlite3_stmt *stmt;
  TrDb *db;
  guint8 param[DB_STMT_PARAMS_MAX + 1];   /* $n -> its index (0: use n) */
  TrPgStmt *pg_stmt;
};

struct TrDb {
  sqlite3 *conn;
  char *path;
  char *wal_path;
  gboolean in_txn;
  TrDbStmt *ins_report;
  TrDbStmt *ins_rows[DB_ROWS_TABLES][DB_ROWS_MAX + 1];  /* [table][rows]: lazily */
  TrPg *pg;                 /* a PostgreSQL database: conn is NULL */
  int wal_pages;            /* pages in the log after the last commit (db_own_checkpoints) */
  gboolean file_known;      /* a read connection: @file_dev/@file_ino are the file it has
                               open (the path named the same file before and after) */
  dev_t file_dev;
  ino_t file_ino;
};

/* The file @path names now: FALSE when it cannot be stat()ed. */
static gboolean
db_path_identity(const char *path, dev_t *dev, ino_t *ino)
{
  struct stat st;
  if (stat(path, &st) != 0)
    return FALSE;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return TRUE;
}

static void
db_set_error(TrDb *db, GError **error, const char *what)
{
  int rc = db->conn != NULL ? sqlite3_extended_errcode(db->conn) : SQLITE_CANTOPEN;
  int primary = rc & 0xff;
  DbError code = DB_ERROR_IO;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || primary == SQLITE_FORMAT)
    code = DB_ERROR_CORRUPT;
  const char *msg = db->conn != NULL ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc);
  if (code == DB_ERROR_CORRUPT)
    g_set_error(error, DB_ERROR, code,
                "%s: %s: %s (the index can be rebuilt from the tree: tlsrpt-ingest "
                "reindex)",
                db->path, what, msg);
  else
    g_set_error(error, DB_ERROR, code, "%s: %s: %s", db->path, what, msg);
}

gboolean
db_exec(TrDb *db, const char *sql, GError **error)
{
  if (db->pg != NULL)
    return pg_exec(db->pg, sql, error);
  char *err = NULL;
  if (sqlite3_exec(db->conn, sql, NULL, NULL, &err) != SQLITE_OK) {
    sqlite3_free(err);
    db_set_error(db, error, "cannot run a statement");
    return FALSE;
  }
  return TRUE;
}

static gint64
db_pragma_int(TrDb *db, const char *pragma, GError **error)
{
  g_autofree char *sql = g_strdup_printf("PRAGMA %s", pragma);
  g_autoptr(TrDbStmt) st = db_prepare(db, sql, error);
  if (st == NULL)
    return -1;
  DbStep s = db_step(st, error);
  if (s == DB_STEP_ERROR)
    return -1;
  return s == DB_STEP_ROW ? db_col_int64(st, 0) : 0;
}

static gint64
db_table_count(TrDb *db, GError **error)
{
  g_autoptr(TrDbStmt) st =
      db_prepare(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'", error);
  if (st == NULL || db_step(st, error) != DB_STEP_ROW)
    return -1;
  return db_col_int64(st, 0);
}

/* The file is ours and of a version we read: FALSE + DB_ERROR_CORRUPT / _VERSION. */
static gboolean
db_check_ours(TrDb *db, gint64 *version_out, GError **error)
{
  gint64 app = db_pragma_int(db, "application_id", error);
  if (app < 0)
    return FALSE;
  gint64 version = db_pragma_int(db, "user_version", error);
  if (version < 0)
    return FALSE;
  if (app == 0 && version == 0) {
    gint64 tables = db_table_count(db, error);
    if (tables < 0)
      return FALSE;
    if (tables == 0) {
      *version_out = 0;               /* empty: ours to create */
      return TRUE;
    }
  }
  if (app != DB_APPLICATION_ID) {
    g_set_error(error, DB_ERROR, DB_ERROR_CORRUPT,
                "%s is an SQLite database, but not a tlsrpt-ingest index (move it away, "
                "then rebuild the index from the tree: tlsrpt-ingest reindex)",
                db->path);
    return FALSE;
  }
  if (version > DB_SCHEMA_VERSION) {
    g_set_error(error, DB_ERROR, DB_ERROR_VERSION,
                "%s has index schema version %" G_GINT64_FORMAT ", newer than this "
                "tlsrpt-ingest reads (%d): upgrade, or rebuild it with tlsrpt-ingest "
                "reindex",
                db->path, version, DB_SCHEMA_VERSION);
    return FALSE;
  }
  *version_out = version;
  return TRUE;
}

/* The columns of @table, in order ("PRAGMA table_info"). (transfer full) */
static GPtrArray *
db_columns(TrDb *db, const char *table, GError **error)
{
  g_autofree char *sql = g_strdup_printf("PRAGMA table_info(%s)", table);
  g_autoptr(TrDbStmt) st = db_prepare(db, sql, error);
  if (st == NULL)
    return NULL;
  g_autoptr(GPtrArray) cols = g_ptr_array_new_with_free_func(g_free);
  DbStep s;
  while ((s = db_step(st, error)) == DB_STEP_ROW)
    g_ptr_array_add(cols, g_strdup(db_col_text(st, 1)));
  if (s == DB_STEP_ERROR)
    return NULL;
  return g_steal_pointer(&cols);
}

static gboolean
db_has_column(GPtrArray *cols, const char *name)
{
  for (guint i = 0; i < cols->len; i++)
    if (strcmp(cols->pdata[i], name) == 0)
      return TRUE;
  return FALSE;
}

/* Rows of version 1 and 2 (keyed by report_key text in every table) into version 3's
 * tables (keyed by report.report_rowid): the old tables are renamed, the new ones
 * made, every column both have is copied (the children find their report_rowid through
 * report_key), and the old ones dropped. In the migration's transaction. */
static gboolean
db_migrate_v3(TrDb *db, GError **error)
{
  static const char *const old_indexes[] = { "report_begin", "policy_begin_domain",
                                             "failure_begin_domain", "failure_domain_type",
                                             "policy_domain_org" };
  for (gsize i = 0; i < G_N_ELEMENTS(old_indexes); i++) {
    g_autofree char *sql = g_strdup_printf("DROP INDEX IF EXISTS %s", old_indexes[i]);
    if (!db_exec(db, sql, error))
      return FALSE;
  }
  for (gsize i = 0; i < G_N_ELEMENTS(db_row_tables); i++) {
    g_autofree char *sql =
        g_strdup_printf("ALTER TABLE %s RENAME TO old_%s", db_row_tables[i], db_row_tables[i]);
    if (!db_exec(db, sql, error))
      return FALSE;
  }
  if (!db_exec(db, db_schema_rows, error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS(db_row_tables); i++) {
    const char *table = db_row_tables[i];
    g_autofree char *old = g_strconcat("old_", table, NULL);
    g_autoptr(GPtrArray) to = db_columns(db, table, error);
    g_autoptr(GPtrArray) from = to != NULL ? db_columns(db, old, error) : NULL;
    if (from == NULL)
      return FALSE;
    gboolean child = strcmp(table, "report") != 0;
    g_autoptr(GString) names = g_string_new(child ? "report_rowid" : NULL);
    g_autoptr(GString) values = g_string_new(child ? "r.report_rowid" : NULL);
    for (guint c = 0; c < to->len; c++) {
      const char *col = to->pdata[c];
      if (strcmp(col, "report_rowid") == 0 || !db_has_column(from, col))
        continue;
      g_string_append_printf(names, "%s%s", names->len > 0 ? ", " : "", col);
      g_string_append_printf(values, "%so.%s", values->len > 0 ? ", " : "", col);
    }
    g_autofree char *sql =
        child ? g_strdup_printf("INSERT INTO %s (%s) SELECT %s FROM %s o JOIN report r ON "
                                "r.report_key = o.report_key",
                                table, names->str, values->str, old)
              : g_strdup_printf("INSERT INTO report (%s) SELECT %s FROM %s o ORDER BY "
                                "o.begin_epoch, o.report_key",
                                names->str, values->str, old);
    if (!db_exec(db, sql, error))
      return FALSE;
  }
  for (gsize i = G_N_ELEMENTS(db_row_tables); i-- > 0;) {
    g_autofree char *sql = g_strdup_printf("DROP TABLE old_%s", db_row_tables[i]);
    if (!db_exec(db, sql, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
db_migrate(TrDb *db, gint64 from, GError **error)
{
  if (from >= DB_SCHEMA_VERSION)
    return TRUE;
  if (!db_exec(db, db->pg != NULL ? "BEGIN" : "BEGIN IMMEDIATE", error))
    return FALSE;
  /* Another writer may have created it between our check and the lock. */
  gint64 now_version = db_pragma_int(db, "user_version", error);
  if (now_version < 0)
    goto fail;
  if (now_version < 1) {
    /* Empty: this version's schema at once. */
    if (!db_exec(db, db_schema_meta, error) || !db_exec(db, db_schema_rows, error))
      goto fail;
  } else {
    if (now_version < 2) {
      /* v2: the trust verdict of each report (trust.h) and its signing domain; NULL for
       * reports indexed before (not checked). */
      g_autofree char *v2 = g_strdup_printf(
          "ALTER TABLE report ADD COLUMN dkim TEXT;\n"
          "ALTER TABLE report ADD COLUMN dkim_domain TEXT;\n"
          "INSERT INTO schema_version (version, applied_epoch) VALUES (2, %" G_GINT64_FORMAT
          ");",
          (gint64) (g_get_real_time() / G_USEC_PER_SEC));
      if (!db_exec(db, v2, error))
        goto fail;
    }
    if (now_version < 3 && !db_migrate_v3(db, error))
      goto fail;
  }
  if (now_version < DB_SCHEMA_VERSION) {
    g_autofree char *ins = g_strdup_printf(
        "INSERT INTO schema_version (version, applied_epoch) VALUES (%d, %" G_GINT64_FORMAT
        ");",
        DB_SCHEMA_VERSION, (gint64) (g_get_real_time() / G_USEC_PER_SEC));
    if (!db_exec(db, ins, error))
      goto fail;
  }
  /* Later versions: if (now_version < 4 && !db_migrate_v4(db, error)) goto fail; */
  {
    g_autofree char *pragmas =
        g_strdup_printf("PRAGMA application_id = %d; PRAGMA user_version = %d;",
                        DB_APPLICATION_ID, DB_SCHEMA_VERSION);
    if (!db_exec(db, pragmas, error))
      goto fail;
  }
  if (!db_exec(db, "COMMIT", error))
    goto fail;
  return TRUE;
fail:
  sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
  return FALSE;
}

static TrDb *
db_new(const char *path)
{
  TrDb *db = g_new0(TrDb, 1);
  db->path = g_strdup(path);
  db->wal_path = g_strconcat(path, "-wal", NULL);
  return db;
}

TrDb *
db_open_write(const char *path, DbSync sync, gboolean *created, GError **error)
{
  g_autoptr(TrDb) db = db_new(path);
  struct stat st;
  gboolean existed = stat(path, &st) == 0 && st.st_size > 0;
  if (!existed) {
    /* Made here, so that it (and the log and shared memory files SQLite makes with the
     * same mode) gets the store's mode, 0640 less the umask. */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) {
      int errsv = errno;
      g_set_error(error, DB_ERROR, DB_ERROR_IO, "%s: cannot create the index: %s", path,
                  g_strerror(errsv));
      return NULL;
    }
    close(fd);
  }
  if (sqlite3_open_v2(path, &db->conn,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    db_set_error(db, error, "cannot open the index");
    return NULL;
  }
  sqlite3_extended_result_codes(db->conn, 1);
  sqlite3_busy_timeout(db->conn, 60000);
  /* Keep the log file between connections: no directory entry made per run. */
  int persist = 1;
  sqlite3_file_control(db->conn, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  gint64 version = 0;
  if (!db_check_ours(db, &version, error))
    return NULL;
  g_autoptr(TrDbStmt) jm = db_prepare(db, "PRAGMA journal_mode = WAL", error);
  if (jm == NULL || db_step(jm, error) != DB_STEP_ROW)
    return NULL;
  if (g_ascii_strcasecmp(db_col_text(jm, 0), "wal") != 0) {
    g_set_error(error, DB_ERROR, DB_ERROR_IO, "%s: cannot use a write-ahead log", path);
    return NULL;
  }
  g_clear_pointer(&jm, db_stmt_free);
  /* journal_size_limit >= 0 makes the last connection's close, after its checkpoint
   * copied the log into the file, truncate the kept log to zero bytes (SQLite truncates
   * to zero whatever the limit). Without it the log keeps every frame ever written
   * (SQLITE_FCNTL_PERSIST_WAL), and the next connection's recovery reads and checksums
   * all of them: an `mda` delivery into a store of 50 re-read 2 MB. The limit itself
   * (64 MiB) is far above what a batch writes, so a long run's log is never cut. */
  if (!db_exec(db,
               sync == DB_SYNC_FULL
                   ? "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 67108864"
                   : "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 67108864",
               error))
    return NULL;
  if (!db_migrate(db, version, error))
    return NULL;
  /* Indexes that only speed up reading: made here, for indexes of every version. */
  if (!db_exec(db, db_read_indexes, error))
    return NULL;
  /* A batch of 512 reports touches a few thousand index pages: keep them cached. */
  if (!db_exec(db, "PRAGMA cache_size = -32768", error))
    return NULL;
  if (created != NULL)
    *created = !existed;
  return g_steal_pointer(&db);
}

gboolean
db_key_order_free(TrDb *db)
{
  return db->pg == NULL;
}

const char *
db_scan_hint(TrDb *db)
{
  return db->pg == NULL ? "+" : "";
}

gboolean
db_read_indexes_set(TrDb *db, gboolean present, GError **error)
{
  return db_exec(db, present ? db_read_indexes : db_read_indexes_drop, error);
}

TrDb *
db_open_postgres(const char *conninfo, GError **error)
{
  TrPg *pg = pg_connect(conninfo, FALSE, error);
  if (pg == NULL)
    return NULL;
  TrDb *db = db_new(pg_where(pg));
  db->pg = pg;
  return db;
}

/* A reader scans much of the file: map it (no copy through read() per page) and cache
 * more of it. Best effort: without them it reads the same, slower. */
static TrDb *
db_read_tuned(TrDb *db)
{
  sqlite3_exec(db->conn, "PRAGMA mmap_size = 268435456; PRAGMA cache_size = -65536", NULL,
               NULL, NULL);
  return db;
}

TrDb *
db_open_read(const char *path, GError **error)
{
  g_autoptr(TrDb) db = db_new(path);
  if (access(path, F_OK) != 0) {
    g_set_error(error, DB_ERROR, DB_ERROR_MISSING, "%s: no index", path);
    return NULL;
  }
  dev_t dev = 0;
  ino_t ino = 0;
  gboolean known = db_path_identity(path, &dev, &ino);
  int rc = sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    /* The file opened is the one @path named before and after the open (a reindex
     * renames a new file over it): what db_open_read_again() must open too. */
    dev_t dev2 = 0;
    ino_t ino2 = 0;
    db->file_known = known && db_path_identity(path, &dev2, &ino2) && dev2 == dev &&
                     ino2 == ino;
    db->file_dev = dev;
    db->file_ino = ino;
    sqlite3_extended_result_codes(db->conn, 1);
    sqlite3_busy_timeout(db->conn, 60000);
    gint64 version = 0;
    GError *check = NULL;
    if (db_check_ours(db, &version, &check)) {
      if (version == DB_SCHEMA_VERSION)
        return db_read_tuned(g_steal_pointer(&db));
      if (version > 0 && version < DB_SCHEMA_VERSION) {
        /* An index of an older version: its migrations only add columns; made here
         * when the file can be written, else the error below. */
        GError *mig = NULL;
        TrDb *w = db_open_write(path, DB_SYNC_FULL, NULL, &mig);
        if (w != NULL) {
          db_close(w);
          db_close(g_steal_pointer(&db));
          return db_open_read(path, error);
        }
        g_clear_error(&mig);
      }
      g_set_error(error, DB_ERROR, DB_ERROR_VERSION,
                  "%s has index schema version %" G_GINT64_FORMAT " (this tlsrpt-ingest "
                  "reads %d): rebuild it with tlsrpt-ingest reindex",
                  path, version, DB_SCHEMA_VERSION);
      return NULL;
    }
    gboolean cantopen = check->domain == DB_ERROR && check->code == DB_ERROR_IO;
    if (!cantopen) {
      g_propagate_error(error, check);
      return NULL;
    }
    g_error_free(check);
  }
  /* A read-only store whose log cannot be opened for sharing: read the file as it is,
   * as an immutable snapshot. */
  sqlite3_close(db->conn);
  db->conn = NULL;
  g_autofree char *escaped = g_uri_escape_string(path, "/", FALSE);
  g_autofree char *uri = g_strdup_printf("file:%s?immutable=1", escaped);
  if (sqlite3_open_v2(uri, &db->conn, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) !=
      SQLITE_OK) {
    db_set_error(db, error, "cannot open the index");
    return NULL;
  }
  sqlite3_extended_result_codes(db->conn, 1);
  gint64 version = 0;
  if (!db_check_ours(db, &version, error))
    return NULL;
  if (version != DB_SCHEMA_VERSION) {
    g_set_error(error, DB_ERROR, DB_ERROR_VERSION,
                "%s has index schema version %" G_GINT64_FORMAT ": rebuild it with "
                "tlsrpt-ingest reindex",
                path, version);
    return NULL;
  }
  return db_read_tuned(g_steal_pointer(&db));
}

TrDb *
db_open_read_again(TrDb *db, GError **error)
{
  if (db->pg != NULL || !db->file_known)
    return NULL;
  TrDb *again = db_open_read(db->path, error);
  if (again != NULL && (!again->file_known || again->file_dev != db->file_dev ||
                        again->file_ino != db->file_ino))
    g_clear_pointer(&again, db_close);      /* replaced since: not the same reports */
  return again;
}

void
db_close(TrDb *db)
{
  if (db == NULL)
    return;
  db_stmt_free(db->ins_report);
  for (int t = 0; t < DB_ROWS_TABLES; t++)
    for (int n = 0; n <= DB_ROWS_MAX; n++)
      db_stmt_free(db->ins_rows[t][n]);
  pg_close(db->pg);
  if (db->conn != NULL) {
    if (db->in_txn)
      sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(db->conn);
  }
  g_free(db->path);
  g_free(db->wal_path);
  g_free(db);
}

static int
db_wal_hook(void *data, sqlite3 *conn, const char *name, int pages)
{
  TrDb *db = data;
  db->wal_pages = pages;
  return SQLITE_OK;
}

void
db_own_checkpoints(TrDb *db)
{
  if (db->conn != NULL)
    sqlite3_wal_hook(db->conn, db_wal_hook, db);
}

guint
db_wal_pages(TrDb *db)
{
  return db->wal_pages > 0 ? (guint) db->wal_pages : 0;
}

gboolean
db_checkpoint(TrDb *db)
{
  if (db->conn == NULL || db->in_txn)
    return FALSE;
  return sqlite3_wal_checkpoint_v2(db->conn, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
         SQLITE_OK;
}

const char *
db_path(TrDb *db)
{
  return db->path;
}

const char *
db_wal_path(TrDb *db)
{
  return db->wal_path;
}

gboolean
db_begin(TrDb *db, GError **error)
{
  if (db->in_txn)
    return TRUE;
  if (!db_exec(db, "BEGIN IMMEDIATE", error))
    return FALSE;
  db->in_txn = TRUE;
  return TRUE;
}

gboolean
db_commit(TrDb *db, GError **error)
{
  if (!db->in_txn)
    return TRUE;
  if (!db_exec(db, "COMMIT", error)) {
    db_rollback(db);
    return FALSE;
  }
  db->in_txn = FALSE;
  return TRUE;
}

void
db_rollback(TrDb *db)
{
  if (!db->in_txn)
    return;
  if (db->pg != NULL)
    pg_rollback(db->pg);
  else if (!sqlite3_get_autocommit(db->conn))
    sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
  db->in_txn = FALSE;
}

gboolean
db_in_transaction(TrDb *db)
{
  return db->in_txn;
}

char *
db_get_meta(TrDb *db, const char *name)
{
  g_autoptr(TrDbStmt) st =
      db_prepare(db, "SELECT value FROM index_meta WHERE name = $1", NULL);
  if (st == NULL)
    return NULL;
  db_bind_text(st, 1, name);
  if (db_step(st, NULL) != DB_STEP_ROW)
    return NULL;
  return g_strdup(db_col_text(st, 0));
}

gboolean
db_set_meta(TrDb *db, const char *name, const char *value, GError **error)
{
  g_autoptr(TrDbStmt) st = db_prepare(
      db,
      "INSERT INTO index_meta (name, value) VALUES ($1, $2) "
      "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      error);
  if (st == NULL)
    return FALSE;
  db_bind_text(st, 1, name);
  db_bind_text(st, 2, value);
  return db_step(st, error) == DB_STEP_DONE;
}

/* ---- statements ------------------------------------------------------------ */

TrDbStmt *
db_prepare(TrDb *db, const char *sql, GError **error)
{
  if (db->pg != NULL) {
    TrDbStmt *st = g_new0(TrDbStmt, 1);
    st->db = db;
    st->pg_stmt = pg_stmt_new(db->pg, sql);
    return st;
  }
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_prepare_v2(db->conn, sql, -1, &stmt, NULL) != SQLITE_OK) {
    db_set_error(db, error, "cannot prepare a statement");
    return NULL;
  }
  TrDbStmt *st = g_new0(TrDbStmt, 1);
  st->stmt = stmt;
  st->db = db;
  int count = sqlite3_bind_parameter_count(stmt);
  for (int i = 1; i <= count; i++) {
    const char *name = sqlite3_bind_parameter_name(stmt, i);
    guint64 n = 0;
    if (name != NULL && name[0] == '$' &&
        g_ascii_string_to_unsigned(name + 1, 10, 1, DB_STMT_PARAMS_MAX, &n, NULL) &&
        i <= G_MAXUINT8)
      st->param[n] = (guint8) i;
  }
  return st;
}

void
db_stmt_free(TrDbStmt *st)
{
  if (st == NULL)
    return;
  pg_stmt_free(st->pg_stmt);
  sqlite3_finalize(st->stmt);
  g_free(st);
}

/* "$n" placeholders are named parameters to SQLite: their index, found at prepare. */
static int
db_param(TrDbStmt *st, int n)
{
  if (n > 0 && n <= DB_STMT_PARAMS_MAX && st->param[n] != 0)
    return st->param[n];
  char name[16];
  g_snprintf(name, sizeof name, "$%d", n);
  int i = sqlite3_bind_parameter_index(st->stmt, name);
  return i > 0 ? i : n;
}

void
db_bind_int64(TrDbStmt *st, int n, gint64 v)
{
  if (st->pg_stmt != NULL) {
    char text[24];
    g_snprintf(text, sizeof text, "%" G_GINT64_FORMAT, v);
    pg_stmt_bind(st->pg_stmt, n, text, TRUE);
    return;
  }
  sqlite3_bind_int64(st->stmt, db_param(st, n), v);
}

void
db_bind_text(TrDbStmt *st, int n, const char *v)
{
  if (st->pg_stmt != NULL)
    pg_stmt_bind(st->pg_stmt, n, v, FALSE);
  else if (v == NULL)
    sqlite3_bind_null(st->stmt, db_param(st, n));
  else
    sqlite3_bind_text(st->stmt, db_param(st, n), v, -1, SQLITE_TRANSIENT);
}

void
db_reset(TrDbStmt *st)
{
  if (st->pg_stmt != NULL) {
    pg_stmt_reset(st->pg_stmt);
    return;
  }
  sqlite3_reset(st->stmt);
  sqlite3_clear_bindings(st->stmt);
}

DbStep
db_step(TrDbStmt *st, GError **error)
{
  if (st->pg_stmt != NULL)
    return pg_stmt_step(st->pg_stmt, error);
  int rc = sqlite3_step(st->stmt);
  if (rc == SQLITE_ROW)
    return DB_STEP_ROW;
  if (rc == SQLITE_DONE)
    return DB_STEP_DONE;
  db_set_error(st->db, error, "cannot read or write the index");
  sqlite3_reset(st->stmt);
  return DB_STEP_ERROR;
}

/* A PostgreSQL integer's text: up to 18 digits after an optional minus read here (the
 * readers' every row has several), anything else by g_ascii_strtoll(). */
static gint64
db_pg_int64(const char *v)
{
  const char *p = v + (v[0] == '-');
  guint64 n = 0;
  int digits = 0;
  for (; g_ascii_isdigit(*p) && digits < 18; p++, digits++)
    n = n * 10 + (guint64) (*p - '0');
  if (*p == '\0' && digits > 0)
    return v[0] == '-' ? -(gint64) n : (gint64) n;
  return g_ascii_strtoll(v, NULL, 10);
}

gint64
db_col_int64(TrDbStmt *st, int col)
{
  if (st->pg_stmt != NULL) {
    const char *v = pg_stmt_value(st->pg_stmt, col);
    return v != NULL ? db_pg_int64(v) : 0;
  }
  return sqlite3_column_int64(st->stmt, col);
}

double
db_col_double(TrDbStmt *st, int col)
{
  if (st->pg_stmt != NULL) {
    const char *v = pg_stmt_value(st->pg_stmt, col);
    return v != NULL ? g_ascii_strtod(v, NULL) : 0.0;
  }
  return sqlite3_column_double(st->stmt, col);
}

const char *
db_col_text(TrDbStmt *st, int col)
{
  if (st->pg_stmt != NULL)
    return pg_stmt_value(st->pg_stmt, col);
  return (const char *) sqlite3_column_text(st->stmt, col);
}

gboolean
db_col_is_null(TrDbStmt *st, int col)
{
  if (st->pg_stmt != NULL)
    return pg_stmt_value(st->pg_stmt, col) == NULL;
  return sqlite3_column_type(st->stmt, col) == SQLITE_NULL;
}

/* ---- the rows of a report ---------------------------------------------------- */

void
db_format_day(gint64 epoch, char buf[11])
{
  char dt[21];
  report_datetime_format(epoch, dt);
  memcpy(buf, dt, 10);
  buf[10] = '\0';
}

char *
db_join(const GPtrArray *list)
{
  g_autoptr(GString) s = g_string_new(NULL);
  for (guint i = 0; list != NULL && i < list->len; i++) {
    if (i > 0)
      g_string_append_c(s, '|');
    g_string_append(s, list->pdata[i] != NULL ? list->pdata[i] : "");
  }
  return g_string_free(g_steal_pointer(&s), FALSE);
}

static gboolean
db_prepare_inserts(TrDb *db, GError **error)
{
  if (db->ins_report != NULL)
    return TRUE;
  db->ins_report = db_prepare(
      db,
      "INSERT INTO report (report_key, organization_name, contact_info, report_id, "
      "begin_epoch, end_epoch, begin_day, submitter, source, report_domain, "
      "received_epoch, raw_format, deviation_count, dkim, dkim_domain) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
      "ON CONFLICT (report_key) DO NOTHING",
      error);
  return db->ins_report != NULL;
}

/* The statement inserting @n rows (1..DB_ROWS_MAX) into @table. Its parameters are
 * plain "?": row i's column c is parameter i * columns + c + 1. (transfer none) */
static TrDbStmt *
db_rows_stmt(TrDb *db, DbRowsTable table, guint n, GError **error)
{
  g_assert(n >= 1 && n <= DB_ROWS_MAX);
  if (db->ins_rows[table][n] != NULL)
    return db->ins_rows[table][n];
  g_autoptr(GString) sql = g_string_new(db_rows_tables[table].insert);
  for (guint i = 0; i < n; i++) {
    g_string_append(sql, i > 0 ? ", (?" : "(?");
    for (int c = 1; c < db_rows_tables[table].columns; c++)
      g_string_append(sql, ", ?");
    g_string_append_c(sql, ')');
  }
  return db->ins_rows[table][n] = db_prepare(db, sql->str, error);
}

/* Rows of one table being bound into db_rows_stmt()'s statements: a statement is run
 * when it has DB_ROWS_MAX rows, and the rest by db_rows_end(). The texts bound stay
 * valid until then (they are the report's, or kept by the caller meanwhile). */
typedef struct {
  TrDb *db;
  DbRowsTable table;
  guint total;              /* rows still to insert, this statement's included */
  guint n;                  /* rows of the current statement */
  guint row;                /* the row being bound in it */
  int col;                  /* the next column of that row */
  TrDbStmt *st;
} DbRows;

static gboolean
db_rows_begin(DbRows *rows, TrDb *db, DbRowsTable table, guint total, GError **error)
{
  *rows = (DbRows) { .db = db, .table = table, .total = total };
  if (total == 0)
    return TRUE;
  rows->n = MIN(total, DB_ROWS_MAX);
  rows->st = db_rows_stmt(db, table, rows->n, error);
  return rows->st != NULL;
}

static int
db_rows_param(DbRows *rows)
{
  return (int) rows->row * db_rows_tables[rows->table].columns + rows->col++ + 1;
}

static void
db_rows_text(DbRows *rows, const char *v)
{
  int i = db_rows_param(rows);
  if (v == NULL)
    sqlite3_bind_null(rows->st->stmt, i);
  else
    sqlite3_bind_text(rows->st->stmt, i, v, -1, SQLITE_STATIC);
}

static void
db_rows_int64(DbRows *rows, gint64 v)
{
  sqlite3_bind_int64(rows->st->stmt, db_rows_param(rows), v);
}

/* The row just bound is complete: run the statement once it has all its rows. */
static gboolean
db_rows_next(DbRows *rows, GError **error)
{
  g_assert(rows->col == db_rows_tables[rows->table].columns);
  rows->col = 0;
  if (++rows->row < rows->n)
    return TRUE;
  DbStep s = db_step(rows->st, error);
  sqlite3_reset(rows->st->stmt);      /* every parameter is bound again before a run */
  if (s == DB_STEP_ERROR)
    return FALSE;
  rows->total -= rows->n;
  rows->row = 0;
  rows->n = MIN(rows->total, DB_ROWS_MAX);
  if (rows->n == 0)
    return TRUE;
  rows->st = db_rows_stmt(rows->db, rows->table, rows->n, error);
  return rows->st != NULL;
}

/* Bind a text of a row being inserted without copying it: @v stays valid until
 * db_run() below has reset the statement (which also drops the binding). */
static void
db_row_text(TrDbStmt *st, int n, const char *v)
{
  if (v == NULL)
    sqlite3_bind_null(st->stmt, db_param(st, n));
  else
    sqlite3_bind_text(st->stmt, db_param(st, n), v, -1, SQLITE_STATIC);
}

static gboolean
db_run(TrDbStmt *st, GError **error)
{
  DbStep s = db_step(st, error);
  db_reset(st);
  return s != DB_STEP_ERROR;
}

const char *
db_policy_domain(const Report *r, const ReportPolicy *p, char **owned)
{
  if (p->policy_domain != NULL && p->policy_domain[0] != '\0')
    return p->policy_domain;
  if (r->ingest.report_domain != NULL && r->ingest.report_domain[0] != '\0')
    return *owned = g_ascii_strdown(r->ingest.report_domain, -1);
  return "";
}

gboolean
db_insert_report(TrDb *db, const Report *r, gboolean *inserted, GError **error)
{
  if (inserted != NULL)
    *inserted = FALSE;
  if (!db_prepare_inserts(db, error))
    return FALSE;
  g_autofree char *key = report_key_hex(r->key);
  char day[11];
  db_format_day(r->begin, day);

  TrDbStmt *st = db->ins_report;
  db_row_text(st, 1, key);
  db_row_text(st, 2, r->organization_name != NULL ? r->organization_name : "");
  db_row_text(st, 3, r->contact_info);
  db_row_text(st, 4, r->report_id != NULL ? r->report_id : "");
  db_bind_int64(st, 5, r->begin);
  db_bind_int64(st, 6, r->end);
  db_row_text(st, 7, day);
  db_row_text(st, 8, r->ingest.submitter);
  db_row_text(st, 9, r->ingest.source);
  db_row_text(st, 10, r->ingest.report_domain);
  if (r->ingest.received != 0)
    db_bind_int64(st, 11, r->ingest.received);
  db_row_text(st, 12, r->ingest.raw_extension);
  db_bind_int64(st, 13, r->deviations != NULL ? r->deviations->len : 0);
  db_row_text(st, 14, r->ingest.dkim);
  db_row_text(st, 15, r->ingest.dkim_domain);
  if (!db_run(st, error))
    return FALSE;
  if (sqlite3_changes(db->conn) == 0)
    return TRUE;                      /* indexed before: idempotent */
  gint64 rowid = sqlite3_last_insert_rowid(db->conn);

  guint n_policies = r->policies != NULL ? r->policies->len : 0;
  guint n_failures = 0;
  for (guint i = 0; i < n_policies; i++) {
    const ReportPolicy *p = r->policies->pdata[i];
    n_failures += p->failures != NULL ? p->failures->len : 0;
  }
  /* The texts made for the policy rows, kept until their statements ran. */
  g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
  g_autofree const char **domains = g_new(const char *, MAX(n_policies, 1));
  DbRows rows;
  if (!db_rows_begin(&rows, db, DB_ROWS_POLICY, n_policies, error))
    return FALSE;
  for (guint i = 0; i < n_policies; i++) {
    const ReportPolicy *p = r->policies->pdata[i];
    char *owned_domain = NULL;
    domains[i] = db_policy_domain(r, p, &owned_domain);
    if (owned_domain != NULL)
      g_ptr_array_add(owned, owned_domain);
    char *strings = db_join(p->policy_strings);
    char *mx = db_join(p->mx_hosts);
    g_ptr_array_add(owned, strings);
    g_ptr_array_add(owned, mx);
    db_rows_int64(&rows, rowid);
    db_rows_int64(&rows, i);
    db_rows_text(&rows, domains[i]);
    db_rows_text(&rows, p->policy_type != NULL ? p->policy_type : "");
    db_rows_text(&rows, strings);
    db_rows_text(&rows, mx);
    db_rows_int64(&rows, p->total_successful);
    db_rows_int64(&rows, p->total_failure);
    db_rows_text(&rows, r->organization_name != NULL ? r->organization_name : "");
    db_rows_int64(&rows, r->begin);
    db_rows_text(&rows, day);
    if (!db_rows_next(&rows, error))
      return FALSE;
  }
  if (!db_rows_begin(&rows, db, DB_ROWS_FAILURE, n_failures, error))
    return FALSE;
  for (guint i = 0; i < n_policies; i++) {
    const ReportPolicy *p = r->policies->pdata[i];
    for (guint j = 0; p->failures != NULL && j < p->failures->len; j++) {
      const ReportFailure *f = p->failures->pdata[j];
      db_rows_int64(&rows, rowid);
      db_rows_int64(&rows, i);
      db_rows_int64(&rows, j);
      db_rows_text(&rows, f->result_type != NULL ? f->result_type : "");
      db_rows_text(&rows, f->sending_mta_ip);
      db_rows_text(&rows, f->receiving_mx_hostname);
      db_rows_text(&rows, f->receiving_mx_helo);
      db_rows_text(&rows, f->receiving_ip);
      db_rows_int64(&rows, f->failed_session_count);
      db_rows_text(&rows, f->failure_reason_code);
      db_rows_text(&rows, f->additional_information);
      db_rows_text(&rows, domains[i]);
      db_rows_int64(&rows, r->begin);
      if (!db_rows_next(&rows, error))
        return FALSE;
    }
  }
  guint n_deviations = r->deviations != NULL ? r->deviations->len : 0;
  if (!db_rows_begin(&rows, db, DB_ROWS_DEVIATION, n_deviations, error))
    return FALSE;
  for (guint i = 0; i < n_deviations; i++) {
    ReportDeviation d = g_array_index(r->deviations, ReportDeviation, i);
    db_rows_int64(&rows, rowid);
    db_rows_int64(&rows, i);
    db_rows_text(&rows, report_deviation_slug(d));
    db_rows_text(&rows, report_deviation_text(d));
    if (!db_rows_next(&rows, error))
      return FALSE;
  }
  if (inserted != NULL)
    *inserted = TRUE;
  return TRUE;
}

gboolean
db_delete_report(TrDb *db, const guint8 key[16], GError **error)
{
  g_autofree char *hex = report_key_hex(key);
  for (gsize i = G_N_ELEMENTS(db_row_tables); i-- > 0;) {
    g_autofree char *sql = g_strdup_printf(
        "DELETE FROM %s WHERE report_rowid IN (SELECT report_rowid FROM report WHERE "
        "report_key = $1)",
        db_row_tables[i]);
    g_autoptr(TrDbStmt) st = db_prepare(db, sql, error);
    if (st == NULL)
      return FALSE;
    db_bind_text(st, 1, hex);
    if (db_step(st, error) == DB_STEP_ERROR)
      return FALSE;
  }
  return TRUE;
}

gint64
db_count_reports(TrDb *db, GError **error)
{
  g_autoptr(TrDbStmt) st = db_prepare(db, "SELECT COUNT(*) FROM report", error);
  if (st == NULL || db_step(st, error) != DB_STEP_ROW)
    return -1;
  return db_col_int64(st, 0);
}
