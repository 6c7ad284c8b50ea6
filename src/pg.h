/* pg.h - a connection to a PostgreSQL database (libpq, loaded by pq-dl.c): the
 * connection string's checks, the schema and its migrations, and statements with
 * errors that never show a password or an unescaped sender string.
 *
 * The schema is the SQLite index's (docs/sql.md: the same tables, columns and keys,
 * so that query.c reads both), with text columns in the "C" collation (byte order,
 * as SQLite sorts) and the PostgreSQL types beside them: timestamptz times, text[]
 * policy strings and MX hosts, inet addresses where the text parses as one, the
 * normalized report as jsonb (docs/postgres.md). It is created or migrated on the
 * first connection that writes, in one transaction under an advisory lock, so that
 * writers starting at once do it once.
 *
 * Errors: DB_ERROR (db.h). DB_ERROR_IO is transient (cannot connect, authentication,
 * server gone, lock or serialization failure): nothing is acknowledged and the run
 * exits 75. DB_ERROR_VERSION: the database has a newer schema. pg_last_retryable()
 * tells a failure that the same transaction may simply be tried again. */
#ifndef TLSRPT_PG_H
#define TLSRPT_PG_H

#include "common.h"
#include "db.h"

typedef struct TrPg TrPg;

/* Check @conninfo (a libpq keyword/value string or a postgresql:// URI) before any I/O:
 * it parses, and holds no password (that comes from ~/.pgpass, PGPASSFILE or
 * PGPASSWORD: a command line is visible to every user). FALSE + CLI_ERROR_USAGE
 * "--@option: ..."; the message never shows the password. */
gboolean pg_conninfo_check(const char *option, const char *conninfo, GError **error);

/* The connection string for messages and logs: its host, port, database and user
 * only, e.g. "host=/run/postgresql dbname=tlsrpt user=mx1". (transfer full) */
char *pg_conninfo_describe(const char *conninfo);

/* Connect to @conninfo; with @write create or migrate the schema, else check that the
 * schema is the one this build reads. (transfer full) or NULL + DB_ERROR. */
TrPg *pg_connect(const char *conninfo, gboolean write, GError **error);
void pg_close(TrPg *pg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrPg, pg_close)

/* The connection is unusable (the server went away): close it and connect anew. */
gboolean pg_broken(TrPg *pg);
/* The last failure was a serialization failure, a deadlock or a lock not available:
 * rolled back, the transaction may be tried again. */
gboolean pg_last_retryable(TrPg *pg);
/* The last failure was a unique violation (a key that is there already). */
gboolean pg_last_unique_violation(TrPg *pg);

/* Run @sql (one or more commands, no parameters). */
gboolean pg_exec(TrPg *pg, const char *sql, GError **error);
/* Roll back the open transaction, if any (errors ignored). */
void pg_rollback(TrPg *pg);
/* COMMIT the open transaction; when that fails, roll back what is left of it. */
gboolean pg_commit(TrPg *pg, GError **error);

/* Run the query @sql with @n text parameters (NULL = SQL NULL). The rows stay in the
 * result: pg_result_*() read them until pg_result_free(). (transfer full) or NULL +
 * DB_ERROR. */
typedef struct TrPgResult TrPgResult;
TrPgResult *pg_query(TrPg *pg, const char *sql, int n, const char *const *values,
                     GError **error);
/* The same with the parameters' type OIDs (@types nullable: inferred). */
TrPgResult *pg_query_typed(TrPg *pg, const char *sql, int n, const unsigned int *types,
                           const char *const *values, GError **error);
int pg_result_rows(TrPgResult *r);
/* NULL for SQL NULL. (transfer none) */
const char *pg_result_value(TrPgResult *r, int row, int col);
void pg_result_free(TrPgResult *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrPgResult, pg_result_free)

/* A statement for db.h's readers: @sql with $N placeholders, bound as text, run by
 * the first step; the rows are then read one by one. (transfer full) */
typedef struct TrPgStmt TrPgStmt;
TrPgStmt *pg_stmt_new(TrPg *pg, const char *sql);
/* Bind $@n (from 1) to @v (NULL: SQL NULL; copied), a bigint when @integer, else text
 * (typed: a statement may leave a parameter unused, as SQLite allows). */
void pg_stmt_bind(TrPgStmt *st, int n, const char *v, gboolean integer);
DbStep pg_stmt_step(TrPgStmt *st, GError **error);
/* The current row's column @col: NULL for SQL NULL. (transfer none) */
const char *pg_stmt_value(TrPgStmt *st, int col);
/* Ready to run again with new bindings. */
void pg_stmt_reset(TrPgStmt *st);
void pg_stmt_free(TrPgStmt *st);

/* The description of the connection (pg_conninfo_describe()). (transfer none) */
const char *pg_where(TrPg *pg);

/* COPY @data (COPY text format rows) with @copy_sql ("COPY t (...) FROM STDIN"). */
gboolean pg_copy(TrPg *pg, const char *copy_sql, const GString *data, GError **error);

/* Append @s (NULL: \N) as one field of the COPY text format, valid UTF-8 (invalid bytes
 * repaired: the server refuses them). */
void pg_copy_field(GString *out, const char *s);
/* Append @s as an element of a text[] literal ("{...}"), quoted. */
void pg_array_element(GString *out, const char *s);

/* Where the schema of this build is created: for tests and for docs/postgres.md. */
extern const char pg_schema_v1[];

#endif
