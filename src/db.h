/* db.h - the SQL index of the store (docs/sql.md): a connection, the schema and its
 * migrations, statements, and the rows of one report.
 *
 * The index is written by the "sqlite" sink (sink-sqlite.c) and by `reindex`, and is
 * the only thing the read side (query.c) reads. The tree stays the truth: the index
 * can always be rebuilt from it. This file is the one place that knows SQLite: the
 * statements of query.c are plain SQL with "$1"-style placeholders, which both SQLite
 * and PostgreSQL read, so a PostgreSQL backend is a second implementation of this
 * header, not a second set of queries.
 *
 * Errors: DB_ERROR. DB_ERROR_IO is transient (disk full, locked, I/O): a sink that
 * gets it fails the commit (exit 75). DB_ERROR_CORRUPT and DB_ERROR_VERSION name
 * `reindex` in their message. */
#ifndef TLSRPT_DB_H
#define TLSRPT_DB_H

#include "common.h"
#include "report.h"

#define DB_ERROR (db_error_quark())
GQuark db_error_quark(void);

typedef enum {
  DB_ERROR_IO,                /* transient: I/O, disk full, busy */
  DB_ERROR_CORRUPT,           /* not an index of ours, or damaged */
  DB_ERROR_VERSION,           /* written by a newer version (schema unknown to us) */
  DB_ERROR_MISSING,           /* no index file (db_open_read) */
} DbError;

/* The schema version this build writes and reads (PRAGMA user_version and the
 * schema_version table). Older versions are migrated on open for writing. */
#define DB_SCHEMA_VERSION 3

typedef struct TrDb TrDb;
typedef struct TrDbStmt TrDbStmt;

typedef enum {
  DB_SYNC_FULL,               /* every commit fsyncs the write-ahead log itself */
  DB_SYNC_DEFERRED,           /* commits are written, not fsynced: the caller makes the
                                 log durable (db_wal_path()) before relying on them */
} DbSync;

/* Open @path for writing, creating it (and its schema) when missing or empty, and
 * migrating an older schema. *created (nullable) tells whether this call made it.
 * (transfer full) */
TrDb *db_open_write(const char *path, DbSync sync, gboolean *created, GError **error);
/* Open @path for reading only: DB_ERROR_MISSING when there is none; a read-only store
 * is read as it is. (transfer full) */
TrDb *db_open_read(const char *path, GError **error);
/* Another reading connection to the SQLite index @db reads, for another thread (a
 * connection is used by one thread at a time). NULL without an error for PostgreSQL,
 * and when the path no longer names the file @db has open (a reindex replaced it).
 * (transfer full) */
TrDb *db_open_read_again(TrDb *db, GError **error);
/* Open the PostgreSQL database @conninfo (a libpq connection string, checked with
 * pg_conninfo_check()) for reading: the same tables as the SQLite index (pg.h), asked
 * the same statements; db_path() names it without its password. (transfer full) */
TrDb *db_open_postgres(const char *conninfo, GError **error);
void db_close(TrDb *db);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrDb, db_close)

/* Copy the write-ahead log into the file now (SQLite's passive checkpoint: it waits for
 * no reader; it syncs the log, then the file), so that closing the last connection has
 * nothing left to copy and only empties the log. Best effort: FALSE when it could not
 * (the close then tries again). Uses the connection: nothing else may, meanwhile. */
gboolean db_checkpoint(TrDb *db);
/* From now on no commit of @db checkpoints by itself (SQLite's automatic checkpoint,
 * every 1,000 pages of log, runs inside the COMMIT that crosses it, and syncs twice):
 * the caller calls db_checkpoint() when db_wal_pages() says the log has grown, at a
 * moment of its choosing (on a thread of its own, while it waits for something else). */
void db_own_checkpoints(TrDb *db);
/* Pages in the write-ahead log after the last commit (0 before the first, and after a
 * checkpoint that copied them all once the log starts over). With db_own_checkpoints(). */
guint db_wal_pages(TrDb *db);

/* (transfer none) */
const char *db_path(TrDb *db);
/* The write-ahead log beside the database ("FILE-wal"). (transfer none) */
const char *db_wal_path(TrDb *db);

gboolean db_exec(TrDb *db, const char *sql, GError **error);

/* A scan of a table ordered by its key (ORDER BY report_rowid, ...) costs no sort: the
 * SQLite index's tables are clustered by their key. PostgreSQL's are heaps, which would
 * sort every row for it: a reader that can take the rows in any order asks for none. */
gboolean db_key_order_free(TrDb *db);
/* What to write before a column (begin_epoch) to keep the planner off its index, for a
 * window over most of a table that is cheaper read in order: "+" for SQLite (a unary
 * plus makes the term unusable for an index), "" for PostgreSQL, whose planner chooses
 * from its statistics (a "+column" would hide them, and its guess of few rows picks a
 * parallel plan for a scan of every row). (transfer none) */
const char *db_scan_hint(TrDb *db);

/* Drop (@present FALSE) or make (TRUE) the reading side's indexes that no schema
 * version holds (db_open_write() makes them). A bulk load (reindex) drops them first
 * and makes them at the end: one sort per index instead of a B-tree insert per row. */
gboolean db_read_indexes_set(TrDb *db, gboolean present, GError **error);
gboolean db_begin(TrDb *db, GError **error);
gboolean db_commit(TrDb *db, GError **error);
/* Roll back an open transaction (no-op without one). */
void db_rollback(TrDb *db);
gboolean db_in_transaction(TrDb *db);

/* The index's own notes ("complete" = "1" once it holds every report of the tree).
 * db_get_meta returns (transfer full) or NULL. */
char *db_get_meta(TrDb *db, const char *name);
gboolean db_set_meta(TrDb *db, const char *name, const char *value, GError **error);

/* ---- statements ------------------------------------------------------------ */
/* A statement of @sql with placeholders $1, $2, ... (transfer full) */
TrDbStmt *db_prepare(TrDb *db, const char *sql, GError **error);
void db_stmt_free(TrDbStmt *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrDbStmt, db_stmt_free)
/* Bind $@n; a NULL text binds SQL NULL. The text is copied. */
void db_bind_int64(TrDbStmt *st, int n, gint64 v);
void db_bind_text(TrDbStmt *st, int n, const char *v);
/* Make the statement ready to run again with new bindings. */
void db_reset(TrDbStmt *st);

typedef enum {
  DB_STEP_ROW,
  DB_STEP_DONE,
  DB_STEP_ERROR,              /* *error set */
} DbStep;
DbStep db_step(TrDbStmt *st, GError **error);
/* Columns of the current row, from 0. A NULL text is NULL; (transfer none: valid until
 * the next step or reset). */
gint64 db_col_int64(TrDbStmt *st, int col);
double db_col_double(TrDbStmt *st, int col);
const char *db_col_text(TrDbStmt *st, int col);
gboolean db_col_is_null(TrDbStmt *st, int col);

/* ---- the rows of a report ---------------------------------------------------- */
/* Insert @report (its report, policy, failure-detail and deviation rows) inside the
 * open transaction, unless its key is in the index already (*inserted = FALSE then).
 * Statements are prepared once per connection and reused. */
gboolean db_insert_report(TrDb *db, const Report *report, gboolean *inserted,
                          GError **error);
/* Remove every row of the report @key (for a rollback). */
gboolean db_delete_report(TrDb *db, const guint8 key[16], GError **error);

/* Number of reports in the index; -1 + error. */
gint64 db_count_reports(TrDb *db, GError **error);

/* The policy_domain column of @p: its domain; when the report names none, its
 * TLS-Report-Domain header lower-cased (into *owned, transfer full), else "". */
const char *db_policy_domain(const Report *r, const ReportPolicy *p, char **owned);
/* The policy_strings and mx_hosts columns: the list joined with '|'. (transfer full) */
char *db_join(const GPtrArray *list);

/* "YYYY-MM-DD" of @epoch (UTC) into @buf. */
void db_format_day(gint64 epoch, char buf[11]);

#endif
