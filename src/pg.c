/* pg.c - the PostgreSQL connection, schema and statements: see pg.h; the schema and
 * the reasons for its types: docs/postgres.md. */
#include "pg.h"
#include "escape.h"
#include "pq-dl.h"

#include <string.h>

/* pg_advisory_xact_lock() key of the schema migrations: "TLSR". */
#define PG_SCHEMA_LOCK 0x544c5352

struct TrPg {
  const PqApi *pq;
  PGconn *conn;
  char *where;              /* pg_conninfo_describe(), for messages */
  gboolean retryable;       /* the last failure may be retried (pg_last_retryable()) */
  gboolean unique_violation; /* ... was a duplicate key */
  TrPgStmt *streaming;      /* the statement whose COPY rows are still coming, or NULL */
};

static void pg_settle(TrPg *pg);

struct TrPgResult {
  const PqApi *pq;
  PGresult *res;
};

/* Version 1: the SQLite index's tables, columns, keys and indexes (db.c), then the
 * PostgreSQL types. Text columns sort and compare by byte, as in SQLite ("C"). No
 * foreign keys (SQLite does not enforce its own either): the sink inserts a report and
 * its rows in one statement, and checking each row's parent cost a third of a batch. */
const char pg_schema_v1[] =
  "CREATE TABLE index_meta (\n"
  "  name TEXT COLLATE \"C\" PRIMARY KEY,\n"
  "  value TEXT COLLATE \"C\" NOT NULL\n"
  ");\n"
  "CREATE TABLE report (\n"
  "  report_key TEXT COLLATE \"C\" PRIMARY KEY,\n"
  "  organization_name TEXT COLLATE \"C\" NOT NULL,\n"
  "  contact_info TEXT COLLATE \"C\",\n"
  "  report_id TEXT COLLATE \"C\" NOT NULL,\n"
  "  begin_epoch BIGINT NOT NULL,\n"
  "  end_epoch BIGINT NOT NULL,\n"
  "  begin_day TEXT COLLATE \"C\" NOT NULL,\n"
  "  submitter TEXT COLLATE \"C\",\n"
  "  source TEXT COLLATE \"C\",\n"
  "  report_domain TEXT COLLATE \"C\",\n"
  "  received_epoch BIGINT,\n"
  "  raw_format TEXT COLLATE \"C\",\n"
  "  deviation_count INTEGER NOT NULL,\n"
  "  begin_time TIMESTAMPTZ NOT NULL,\n"
  "  end_time TIMESTAMPTZ NOT NULL,\n"
  "  received_time TIMESTAMPTZ,\n"
  "  report_json JSONB NOT NULL\n"
  ");\n"
  "CREATE TABLE policy (\n"
  "  report_key TEXT COLLATE \"C\" NOT NULL,\n"
  "  policy_index INTEGER NOT NULL,\n"
  "  policy_domain TEXT COLLATE \"C\" NOT NULL,\n"
  "  policy_type TEXT COLLATE \"C\" NOT NULL,\n"
  "  policy_strings TEXT COLLATE \"C\" NOT NULL,\n"
  "  mx_hosts TEXT COLLATE \"C\" NOT NULL,\n"
  "  total_successful_session_count BIGINT NOT NULL,\n"
  "  total_failure_session_count BIGINT NOT NULL,\n"
  "  organization_name TEXT COLLATE \"C\" NOT NULL,\n"
  "  begin_epoch BIGINT NOT NULL,\n"
  "  begin_day TEXT COLLATE \"C\" NOT NULL,\n"
  "  begin_time TIMESTAMPTZ NOT NULL,\n"
  "  policy_string_list TEXT[] COLLATE \"C\" NOT NULL,\n"
  "  mx_host_list TEXT[] COLLATE \"C\" NOT NULL,\n"
  "  PRIMARY KEY (report_key, policy_index)\n"
  ");\n"
  "CREATE TABLE failure_detail (\n"
  "  report_key TEXT COLLATE \"C\" NOT NULL,\n"
  "  policy_index INTEGER NOT NULL,\n"
  "  detail_index INTEGER NOT NULL,\n"
  "  result_type TEXT COLLATE \"C\" NOT NULL,\n"
  "  sending_mta_ip TEXT COLLATE \"C\",\n"
  "  receiving_mx_hostname TEXT COLLATE \"C\",\n"
  "  receiving_mx_helo TEXT COLLATE \"C\",\n"
  "  receiving_ip TEXT COLLATE \"C\",\n"
  "  failed_session_count BIGINT NOT NULL,\n"
  "  failure_reason_code TEXT COLLATE \"C\",\n"
  "  additional_information TEXT COLLATE \"C\",\n"
  "  policy_domain TEXT COLLATE \"C\" NOT NULL,\n"
  "  begin_epoch BIGINT NOT NULL,\n"
  "  begin_time TIMESTAMPTZ NOT NULL,\n"
  "  sending_mta_addr INET,\n"
  "  receiving_addr INET,\n"
  "  PRIMARY KEY (report_key, policy_index, detail_index)\n"
  ");\n"
  "CREATE TABLE deviation (\n"
  "  report_key TEXT COLLATE \"C\" NOT NULL,\n"
  "  deviation_index INTEGER NOT NULL,\n"
  "  slug TEXT COLLATE \"C\",\n"
  "  deviation TEXT COLLATE \"C\" NOT NULL,\n"
  "  PRIMARY KEY (report_key, deviation_index)\n"
  ");\n"
  "CREATE INDEX report_begin ON report (begin_epoch);\n"
  "CREATE INDEX policy_begin_domain ON policy (begin_epoch, policy_domain);\n"
  "CREATE INDEX failure_begin_domain ON failure_detail (begin_epoch, policy_domain);\n"
  "CREATE INDEX failure_domain_type ON failure_detail (policy_domain, result_type, "
  "begin_epoch);\n";

/* The migrations, in order: migration[i] takes version i to i + 1 (index 0 creates
 * version 1). A later version appends its ALTER statements here. */
static const char *const pg_migrations[] = {
  pg_schema_v1,
  /* v2: the trust verdict of each report (trust.h), NULL in rows written before. */
  "ALTER TABLE report ADD COLUMN dkim TEXT COLLATE \"C\";\n"
  "ALTER TABLE report ADD COLUMN dkim_domain TEXT COLLATE \"C\";\n",
  /* v3: a report's rows are also keyed by its report_rowid (an identity, filled for the
   * rows there are), which the shared queries of query.c join and count on, as in the
   * SQLite index (docs/sql.md). report_key stays in the child tables here; the sink
   * takes the ids from the identity's sequence and writes them into every row
   * (sink-postgres.c). The per-row indexes the SQLite index dropped go here too; its
   * reading indexes (failure_domain_type, policy_domain_org) are kept or made. */
  "ALTER TABLE report ADD COLUMN report_rowid BIGINT GENERATED BY DEFAULT AS IDENTITY;\n"
  "ALTER TABLE report ADD CONSTRAINT report_rowid_unique UNIQUE (report_rowid);\n"
  "ALTER TABLE policy ADD COLUMN report_rowid BIGINT;\n"
  "UPDATE policy c SET report_rowid = r.report_rowid FROM report r "
  "WHERE r.report_key = c.report_key;\n"
  "ALTER TABLE policy ALTER COLUMN report_rowid SET NOT NULL;\n"
  "ALTER TABLE failure_detail ADD COLUMN report_rowid BIGINT;\n"
  "UPDATE failure_detail c SET report_rowid = r.report_rowid FROM report r "
  "WHERE r.report_key = c.report_key;\n"
  "ALTER TABLE failure_detail ALTER COLUMN report_rowid SET NOT NULL;\n"
  "ALTER TABLE deviation ADD COLUMN report_rowid BIGINT;\n"
  "UPDATE deviation c SET report_rowid = r.report_rowid FROM report r "
  "WHERE r.report_key = c.report_key;\n"
  "ALTER TABLE deviation ALTER COLUMN report_rowid SET NOT NULL;\n"
  "DROP INDEX IF EXISTS policy_begin_domain;\n"
  "DROP INDEX IF EXISTS failure_begin_domain;\n"
  "CREATE INDEX IF NOT EXISTS policy_domain_org ON policy (policy_domain, "
  "organization_name, begin_epoch);\n",
};
G_STATIC_ASSERT(G_N_ELEMENTS(pg_migrations) == DB_SCHEMA_VERSION);

/* ---- the connection string ---------------------------------------------------- */

/* The password a connection string may hold (keyword "password", or the URI's
 * "user:password@"), to keep it out of a message whose source we do not control
 * (libpq's parse errors echo parts of the string). (transfer full) or NULL. */
static char *
pg_conninfo_secret(const char *conninfo)
{
  const char *uri = strstr(conninfo, "://");
  if (uri != NULL) {
    const char *start = uri + 3;
    const char *end = start + strcspn(start, "/?#");
    const char *at = g_strstr_len(start, end - start, "@");
    const char *colon = at != NULL ? memchr(start, ':', (size_t) (at - start)) : NULL;
    if (colon != NULL && at > colon + 1)
      return g_strndup(colon + 1, (gsize) (at - colon - 1));
    const char *q = strstr(conninfo, "password=");
    if (q != NULL) {
      q += strlen("password=");
      gsize n = strcspn(q, "&#");
      if (n > 0)
        return g_strndup(q, n);
    }
    return NULL;
  }
  const char *p = strstr(conninfo, "password");
  if (p == NULL)
    return NULL;
  p += strlen("password");
  while (*p == ' ' || *p == '\t')
    p++;
  if (*p != '=')
    return NULL;
  p++;
  while (*p == ' ' || *p == '\t')
    p++;
  gsize n = *p == '\'' ? strcspn(p + 1, "'") : strcspn(p, " \t");
  const char *v = *p == '\'' ? p + 1 : p;
  return n > 0 ? g_strndup(v, n) : NULL;
}

/* @msg on one line, escaped, with @secret (nullable) replaced. (transfer full) */
static char *
pg_clean_message(const char *msg, const char *secret)
{
  g_autoptr(GString) s = g_string_new(msg != NULL ? msg : "");
  if (secret != NULL && secret[0] != '\0')
    g_string_replace(s, secret, "***", 0);
  for (gsize i = 0; i < s->len; i++)
    if (s->str[i] == '\n' || s->str[i] == '\t' || s->str[i] == '\r')
      s->str[i] = ' ';
  g_strstrip(s->str);
  g_string_set_size(s, strlen(s->str));
  while (g_str_has_suffix(s->str, ".") || g_str_has_suffix(s->str, " "))
    g_string_truncate(s, s->len - 1);
  /* "  " from the joined lines */
  while (g_string_replace(s, "  ", " ", 0) > 0)
    ;
  return tr_escape_terminal(s->str);
}

static const PqApi *
pg_api(GError **error)
{
  const char *why = NULL;
  const PqApi *pq = pq_dl(&why);
  if (pq == NULL)
    g_set_error(error, DB_ERROR, DB_ERROR_IO, "PostgreSQL: %s", why);
  return pq;
}

gboolean
pg_conninfo_check(const char *option, const char *conninfo, GError **error)
{
  if (conninfo == NULL || conninfo[0] == '\0') {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--%s: empty connection string (an unset variable in the command line?)",
                option);
    return FALSE;
  }
  const char *why = NULL;
  const PqApi *pq = pq_dl(&why);
  if (pq == NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--%s: %s", option, why);
    return FALSE;
  }
  char *err = NULL;
  PQconninfoOption *opts = pq->conninfoParse(conninfo, &err);
  if (opts == NULL) {
    g_autofree char *secret = pg_conninfo_secret(conninfo);
    g_autofree char *msg = pg_clean_message(err != NULL ? err : "out of memory", secret);
    if (err != NULL)
      pq->freemem(err);
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--%s: not a PostgreSQL connection string (keyword=value ... or "
                "postgresql://...): %s",
                option, msg);
    return FALSE;
  }
  gboolean has_password = FALSE;
  for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
    if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
      has_password = TRUE;
  pq->conninfoFree(opts);
  if (has_password) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--%s: the connection string holds a password; put it in ~/.pgpass or "
                "the file PGPASSFILE names (or PGPASSWORD), not where every user can "
                "read it",
                option);
    return FALSE;
  }
  /* An unreachable host must not hang a delivery: libpq's own default is to wait
   * for ever. A connect_timeout in the string wins over this. */
  g_setenv("PGCONNECT_TIMEOUT", "10", FALSE);
  return TRUE;
}

char *
pg_conninfo_describe(const char *conninfo)
{
  const PqApi *pq = pq_dl(NULL);
  PQconninfoOption *opts = pq != NULL ? pq->conninfoParse(conninfo, NULL) : NULL;
  if (opts == NULL)
    return g_strdup("(unparsable connection string)");
  static const char *const shown[] = { "host", "hostaddr", "port", "dbname", "user",
                                       "service", "sslmode" };
  g_autoptr(GString) s = g_string_new(NULL);
  for (gsize k = 0; k < G_N_ELEMENTS(shown); k++)
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
      if (strcmp(o->keyword, shown[k]) == 0 && o->val != NULL && o->val[0] != '\0') {
        if (s->len > 0)
          g_string_append_c(s, ' ');
        g_string_append_printf(s, "%s=", o->keyword);
        tr_escape_terminal_append(s, o->val, -1);
      }
  pq->conninfoFree(opts);
  if (s->len == 0)
    g_string_append(s, "(libpq defaults)");
  return g_string_free(g_steal_pointer(&s), FALSE);
}

/* ---- errors ------------------------------------------------------------------- */

/* The error of a failed @res (nullable: the connection's own error) while doing @what. */
static void
pg_set_error(TrPg *pg, PGresult *res, const char *what, GError **error)
{
  const PqApi *pq = pg->pq;
  const char *state = res != NULL ? pq->resultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  /* The primary message only: the detail lines can quote the values (sender text). */
  const char *primary = res != NULL ? pq->resultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                                    : NULL;
  if (primary == NULL)
    primary = pq->errorMessage(pg->conn);
  g_autofree char *msg = pg_clean_message(primary, NULL);
  pg->retryable = state != NULL && (strcmp(state, "40001") == 0 ||   /* serialization */
                                    strcmp(state, "40P01") == 0 ||   /* deadlock */
                                    strcmp(state, "55P03") == 0);    /* lock not available */
  pg->unique_violation = state != NULL && strcmp(state, "23505") == 0;
  gboolean gone = pq->status(pg->conn) != CONNECTION_OK;
  if (msg[0] == '\0')
    g_set_error(error, DB_ERROR, DB_ERROR_IO, "PostgreSQL %s: %s: %s", pg->where, what,
                gone ? "the connection to the server was lost" : "failed");
  else
    g_set_error(error, DB_ERROR, DB_ERROR_IO, "PostgreSQL %s: %s: %s%s%s%s", pg->where,
                what, msg, state != NULL ? " (SQLSTATE " : "", state != NULL ? state : "",
                state != NULL ? ")" : "");
}

gboolean
pg_broken(TrPg *pg)
{
  return pg->conn == NULL || pg->pq->status(pg->conn) != CONNECTION_OK;
}

gboolean
pg_last_retryable(TrPg *pg)
{
  return pg->retryable;
}

gboolean
pg_last_unique_violation(TrPg *pg)
{
  return pg->unique_violation;
}

/* ---- statements ---------------------------------------------------------------- */

gboolean
pg_exec(TrPg *pg, const char *sql, GError **error)
{
  pg_settle(pg);
  PGresult *res = pg->pq->exec(pg->conn, sql);
  ExecStatusType st = res != NULL ? pg->pq->resultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    pg_set_error(pg, res, "cannot run a statement", error);
    pg->pq->clear(res);
    return FALSE;
  }
  pg->pq->clear(res);
  return TRUE;
}

void
pg_rollback(TrPg *pg)
{
  if (pg->conn == NULL)
    return;
  pg_settle(pg);
  if (pg->pq->transactionStatus(pg->conn) == PQTRANS_IDLE ||
      pg->pq->transactionStatus(pg->conn) == PQTRANS_UNKNOWN)
    return;
  pg->pq->clear(pg->pq->exec(pg->conn, "ROLLBACK"));
}

gboolean
pg_commit(TrPg *pg, GError **error)
{
  if (pg_exec(pg, "COMMIT", error))
    return TRUE;
  pg_rollback(pg);
  return FALSE;
}

TrPgResult *
pg_query(TrPg *pg, const char *sql, int n, const char *const *values, GError **error)
{
  return pg_query_typed(pg, sql, n, NULL, values, error);
}

TrPgResult *
pg_query_typed(TrPg *pg, const char *sql, int n, const unsigned int *types,
               const char *const *values, GError **error)
{
  pg_settle(pg);
  PGresult *res = pg->pq->execParams(pg->conn, sql, n, types, values, NULL, NULL, 0);
  ExecStatusType st = res != NULL ? pg->pq->resultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    pg_set_error(pg, res, "cannot run a query", error);
    pg->pq->clear(res);
    return NULL;
  }
  TrPgResult *r = g_new0(TrPgResult, 1);
  r->pq = pg->pq;
  r->res = res;
  return r;
}

int
pg_result_rows(TrPgResult *r)
{
  return r->pq->ntuples(r->res);
}

const char *
pg_result_value(TrPgResult *r, int row, int col)
{
  if (row < 0 || row >= r->pq->ntuples(r->res) || col < 0 || col >= r->pq->nfields(r->res) ||
      r->pq->getisnull(r->res, row, col))
    return NULL;
  return r->pq->getvalue(r->res, row, col);
}

void
pg_result_free(TrPgResult *r)
{
  if (r == NULL)
    return;
  r->pq->clear(r->res);
  g_free(r);
}

gboolean
pg_copy(TrPg *pg, const char *copy_sql, const GString *data, GError **error)
{
  const PqApi *pq = pg->pq;
  pg_settle(pg);
  PGresult *res = pq->exec(pg->conn, copy_sql);
  if (res == NULL || pq->resultStatus(res) != PGRES_COPY_IN) {
    pg_set_error(pg, res, "cannot start a COPY", error);
    pq->clear(res);
    return FALSE;
  }
  pq->clear(res);
  /* Sent in pieces of at most 1 MiB: the length is an int. */
  gboolean sent = TRUE;
  for (gsize off = 0; sent && off < data->len;) {
    gsize n = MIN(data->len - off, (gsize) 1 << 20);
    sent = pq->putCopyData(pg->conn, data->str + off, (int) n) == 1;
    off += n;
  }
  if (pq->putCopyEnd(pg->conn, sent ? NULL : "send failed") != 1)
    sent = FALSE;
  /* Read every result, so that the connection is ready for the next command; the
   * first failure is the error (a send that failed has one from the server, or the
   * connection's own). */
  gboolean failed = FALSE;
  while ((res = pq->getResult(pg->conn)) != NULL) {
    if (!failed && pq->resultStatus(res) != PGRES_COMMAND_OK) {
      pg_set_error(pg, res, "cannot copy the rows", error);
      failed = TRUE;
    }
    pq->clear(res);
    if (pg_broken(pg))
      break;
  }
  if (!sent && !failed) {
    pg_set_error(pg, NULL, "cannot copy the rows", error);
    failed = TRUE;
  }
  return !failed;
}

/* ---- the readers' statements ---------------------------------------------------- */

/* A statement that is one SELECT runs as COPY (SELECT ...) TO STDOUT, its bound values
 * written into the text as literals (COPY takes no parameters): its rows come one line
 * at a time while the server still scans, where PQexecParams() would hold every row
 * back until the last and build a PGresult of them all; the server's scan and our
 * reading of the rows overlap. Any other statement runs with PQexecParams().
 *
 * A connection carries one command at a time: a command sent while a statement's COPY
 * is still coming first reads the rest of its rows ahead into that statement
 * (pg_settle()), so that statements may be stepped in any interleaving, as SQLite's. */
typedef enum {
  PG_STMT_IDLE,             /* not run since its bindings */
  PG_STMT_RESULT,           /* run with PQexecParams(): res, row */
  PG_STMT_COPY,             /* run as COPY: its lines */
} PgStmtState;

struct TrPgStmt {
  TrPg *pg;
  const PqApi *pq;
  char *sql;
  GPtrArray *params;        /* char*, NULL for SQL NULL; index n - 1 is $n */
  GArray *types;            /* Oid of each */
  PgStmtState state;
  TrPgResult *res;
  int row;
  GQueue ahead;             /* lines read ahead (libpq's buffers), oldest first */
  gboolean ended;           /* the COPY's end is read: the connection is free */
  GError *failure;          /* how it ended, when it failed: told after the lines ahead */
  char *line;               /* the current row's line (libpq's buffer), split in place */
  char **vals;              /* into line: each field, NULL for SQL NULL */
  guint nvals, vals_size;
};

TrPgStmt *
pg_stmt_new(TrPg *pg, const char *sql)
{
  TrPgStmt *st = g_new0(TrPgStmt, 1);
  st->pg = pg;
  st->pq = pg->pq;
  st->sql = g_strdup(sql);
  st->params = g_ptr_array_new_with_free_func(g_free);
  st->types = g_array_new(FALSE, TRUE, sizeof(Oid));
  g_queue_init(&st->ahead);
  return st;
}

/* pg_type.h's OIDs of bigint and text. */
#define PG_INT8OID 20
#define PG_TEXTOID 25

void
pg_stmt_bind(TrPgStmt *st, int n, const char *v, gboolean integer)
{
  if (n < 1)
    return;
  while (st->params->len < (guint) n) {
    g_ptr_array_add(st->params, NULL);
    Oid unbound = PG_TEXTOID;   /* left NULL */
    g_array_append_val(st->types, unbound);
  }
  g_free(st->params->pdata[n - 1]);
  st->params->pdata[n - 1] = g_strdup(v);
  g_array_index(st->types, Oid, n - 1) = integer ? PG_INT8OID : PG_TEXTOID;
}

/* A byte that may go on an identifier (PostgreSQL's: letters, digits, _, $, and any
 * byte of a multibyte character). */
static gboolean
pg_ident_char(char c)
{
  return g_ascii_isalnum(c) || c == '_' || c == '$' || (guchar) c >= 0x80;
}

/* Append $@n of @st as a literal of its bound type, what PQexecParams() would bind:
 * ('...'::bigint) or ('...'::text) made by PQescapeLiteral(), (NULL::text) for SQL
 * NULL and for a parameter never bound (SQLite's NULL). FALSE when libpq cannot quote
 * the value (not valid in the client encoding). */
static gboolean
pg_stmt_append_param(TrPgStmt *st, GString *out, guint n)
{
  const char *v = n >= 1 && n <= st->params->len ? st->params->pdata[n - 1] : NULL;
  const char *type = n >= 1 && n <= st->types->len &&
                             g_array_index(st->types, Oid, n - 1) == PG_INT8OID
                         ? "bigint"
                         : "text";
  if (v == NULL) {
    g_string_append_printf(out, "(NULL::%s)", type);
    return TRUE;
  }
  char *lit = st->pq->escapeLiteral(st->pg->conn, v, strlen(v));
  if (lit == NULL)
    return FALSE;
  g_string_append_printf(out, "(%s::%s)", lit, type);
  st->pq->freemem(lit);
  return TRUE;
}

/* @st's SQL as "COPY (...) TO STDOUT" with each $n placeholder written as its value
 * (pg_stmt_append_param()). The SQL is read as PostgreSQL's lexer reads it, so that a
 * "$1" in a string, a quoted identifier, a comment or a dollar-quoted string is left
 * as it is, and $1 is never taken for the start of $10. NULL when the SQL is not one
 * SELECT, or is not understood here: PQexecParams() then runs it. (transfer full) */
static char *
pg_stmt_copy_sql(TrPgStmt *st)
{
  const char *sql = st->sql, *p = sql;
  while (g_ascii_isspace(*p))
    p++;
  if (g_ascii_strncasecmp(p, "SELECT", 6) != 0 || pg_ident_char(p[6]))
    return NULL;
  g_autoptr(GString) out = g_string_new("COPY (");
  while (*p != '\0') {
    const char *q = p + 1;  /* the end of this token */
    if (*p == '\'' || *p == '"') {
      /* A string or quoted identifier, to its closing quote (a doubled quote is read
       * as the end of one and the start of the next); in an E'' string a backslash
       * escapes the next character. */
      gboolean esc = *p == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                     (p - 1 == sql || !pg_ident_char(p[-2]));
      while (*q != '\0' && *q != *p)
        q += esc && *q == '\\' && q[1] != '\0' ? 2 : 1;
      if (*q == '\0')
        return NULL;
      q++;
    } else if (p[0] == '-' && p[1] == '-') {
      q = p + strcspn(p, "\n");
    } else if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      const char *inner = strstr(p + 2, "/*");
      if (end == NULL || (inner != NULL && inner < end))
        return NULL;        /* unterminated, or nested */
      q = end + 2;
    } else if (*p == '$' && (p == sql || !pg_ident_char(p[-1]))) {
      if (g_ascii_isdigit(p[1])) {
        guint n = 0;
        for (q = p + 1; g_ascii_isdigit(*q); q++) {
          n = n * 10 + (guint) (*q - '0');
          if (n > 65535)
            return NULL;    /* more than the protocol's parameters */
        }
        if (pg_ident_char(*q) || !pg_stmt_append_param(st, out, n))
          return NULL;
        p = q;
        continue;
      }
      /* $tag$...$tag$ (or $$...$$): to the same tag. */
      const char *tag_end = p + 1;
      while (*tag_end != '\0' && *tag_end != '$' && pg_ident_char(*tag_end))
        tag_end++;
      if (*tag_end != '$')
        return NULL;
      gsize tag_len = (gsize) (tag_end - p) + 1;
      g_autofree char *tag = g_strndup(p, tag_len);
      const char *close = strstr(tag_end + 1, tag);
      if (close == NULL)
        return NULL;
      q = close + tag_len;
    } else if (*p == ';') {
      return NULL;          /* more than one statement */
    }
    g_string_append_len(out, p, q - p);
    p = q;
  }
  g_string_append(out, "\n) TO STDOUT");   /* on a line of its own: after a -- comment */
  return g_string_free(g_steal_pointer(&out), FALSE);
}

/* The next line of the COPY of @st (the connection's streaming statement): TRUE and
 * *@line (libpq's buffer, PQfreemem()), or FALSE at its end, with st->failure when it
 * failed; the connection is then free. */
static gboolean
pg_stmt_copy_next(TrPgStmt *st, char **line)
{
  TrPg *pg = st->pg;
  const PqApi *pq = pg->pq;
  *line = NULL;
  int n = pq->getCopyData(pg->conn, line, 0);
  if (n > 0)
    return TRUE;
  /* -1: the end, the COPY's own result says how it went; -2: a failure (the server
   * gone, out of memory). */
  GError *err = NULL;
  PGresult *res;
  while ((res = pq->getResult(pg->conn)) != NULL) {
    ExecStatusType s = pq->resultStatus(res);
    if (err == NULL && s != PGRES_COMMAND_OK)
      pg_set_error(pg, res, "cannot read the rows of a query", &err);
    pq->clear(res);
    /* Still in the COPY (after -2): no end to read, the connection is unusable. */
    if (pg_broken(pg) || s == PGRES_COPY_OUT)
      break;
  }
  if (err == NULL && n != -1)
    pg_set_error(pg, NULL, "cannot read the rows of a query", &err);
  st->failure = err;
  st->ended = TRUE;
  pg->streaming = NULL;
  return FALSE;
}

/* Before another command on @pg: read the rest of the streaming statement's rows
 * ahead, into it. */
static void
pg_settle(TrPg *pg)
{
  TrPgStmt *st = pg->streaming;
  char *line;
  while (st != NULL && pg->streaming == st && pg_stmt_copy_next(st, &line))
    g_queue_push_tail(&st->ahead, line);
}

/* Split @st's line (COPY text format: fields separated by tabs, a newline at the end)
 * into st->vals, in place. A field that is \N as it came is SQL NULL (told before
 * its escapes are undone: "\\N" is the text \N); then the escapes COPY writes, \b \f
 * \n \r \t \v and \ before itself, are undone. */
static void
pg_stmt_split(TrPgStmt *st)
{
  st->nvals = 0;
  char *r = st->line;
  for (;;) {
    char *field = r, *w = r;
    if (r[0] == '\\' && r[1] == 'N' && (r[2] == '\t' || r[2] == '\n' || r[2] == '\0')) {
      field = NULL;
      r += 2;
    } else {
      for (;;) {
        gsize n = strcspn(r, "\t\n\\");
        if (w != r)
          memmove(w, r, n);
        w += n;
        r += n;
        if (*r != '\\')
          break;
        switch (r[1]) {
        case '\0': *w++ = '\\'; r++; continue;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'v': *w++ = '\v'; break;
        default: *w++ = r[1]; break;
        }
        r += 2;
      }
    }
    char end = *r;          /* read before the field's end is written (w <= r) */
    if (field != NULL)
      *w = '\0';
    if (st->nvals == st->vals_size) {
      st->vals_size = MAX(16, st->vals_size * 2);
      st->vals = g_renew(char *, st->vals, st->vals_size);
    }
    st->vals[st->nvals++] = field;
    if (end != '\t')
      break;
    r++;
  }
}

/* The rows of a COPY statement: those read ahead, then the connection's. */
static DbStep
pg_stmt_copy_step(TrPgStmt *st, GError **error)
{
  if (st->line != NULL)
    st->pq->freemem(g_steal_pointer(&st->line));
  char *line = g_queue_pop_head(&st->ahead);
  if (line == NULL && !st->ended && st->pg->streaming == st)
    pg_stmt_copy_next(st, &line);
  if (line != NULL) {
    st->line = line;
    pg_stmt_split(st);
    return DB_STEP_ROW;
  }
  st->nvals = 0;
  if (st->failure != NULL) {
    g_propagate_error(error, g_steal_pointer(&st->failure));
    return DB_STEP_ERROR;
  }
  return DB_STEP_DONE;
}

DbStep
pg_stmt_step(TrPgStmt *st, GError **error)
{
  TrPg *pg = st->pg;
  if (st->state == PG_STMT_RESULT) {
    if (st->row < pg_result_rows(st->res))
      st->row++;
    return st->row < pg_result_rows(st->res) ? DB_STEP_ROW : DB_STEP_DONE;
  }
  if (st->state == PG_STMT_COPY)
    return pg_stmt_copy_step(st, error);
  pg_settle(pg);
  g_autofree char *copy = pg_stmt_copy_sql(st);
  if (copy == NULL) {
    st->res = pg_query_typed(pg, st->sql, (int) st->params->len,
                             (const unsigned int *) st->types->data,
                             (const char *const *) st->params->pdata, error);
    if (st->res == NULL)
      return DB_STEP_ERROR;
    st->state = PG_STMT_RESULT;
    st->row = 0;
    return st->row < pg_result_rows(st->res) ? DB_STEP_ROW : DB_STEP_DONE;
  }
  PGresult *res = pg->pq->exec(pg->conn, copy);
  if (res == NULL || pg->pq->resultStatus(res) != PGRES_COPY_OUT) {
    pg_set_error(pg, res, "cannot run a query", error);
    pg->pq->clear(res);
    return DB_STEP_ERROR;
  }
  pg->pq->clear(res);
  st->state = PG_STMT_COPY;
  st->ended = FALSE;
  pg->streaming = st;
  return pg_stmt_copy_step(st, error);
}

const char *
pg_stmt_value(TrPgStmt *st, int col)
{
  if (st->state == PG_STMT_COPY)
    return col >= 0 && (guint) col < st->nvals ? st->vals[col] : NULL;
  return st->res != NULL ? pg_result_value(st->res, st->row, col) : NULL;
}

/* Forget the rows of the last run: the rest of a COPY still coming is read and
 * dropped (the connection is then free), an error not yet told with it. */
static void
pg_stmt_clear_rows(TrPgStmt *st)
{
  char *line;
  if (st->state == PG_STMT_COPY && !st->ended && st->pg->streaming == st)
    while (pg_stmt_copy_next(st, &line))
      st->pq->freemem(line);
  if (st->line != NULL)
    st->pq->freemem(g_steal_pointer(&st->line));
  while ((line = g_queue_pop_head(&st->ahead)) != NULL)
    st->pq->freemem(line);
  g_clear_error(&st->failure);
  st->nvals = 0;
  g_clear_pointer(&st->res, pg_result_free);
  st->state = PG_STMT_IDLE;
  st->ended = FALSE;
}

void
pg_stmt_reset(TrPgStmt *st)
{
  pg_stmt_clear_rows(st);
  g_ptr_array_set_size(st->params, 0);
  g_array_set_size(st->types, 0);
}

void
pg_stmt_free(TrPgStmt *st)
{
  if (st == NULL)
    return;
  pg_stmt_clear_rows(st);
  g_free(st->vals);
  g_ptr_array_unref(st->params);
  g_array_unref(st->types);
  g_free(st->sql);
  g_free(st);
}

const char *
pg_where(TrPg *pg)
{
  return pg->where;
}

void
pg_copy_field(GString *out, const char *s)
{
  if (s == NULL) {
    g_string_append(out, "\\N");
    return;
  }
  g_autofree char *valid = g_utf8_validate(s, -1, NULL) ? NULL : g_utf8_make_valid(s, -1);
  for (const char *p = valid != NULL ? valid : s; *p != '\0'; p++) {
    switch (*p) {
    case '\\': g_string_append(out, "\\\\"); break;
    case '\n': g_string_append(out, "\\n"); break;
    case '\r': g_string_append(out, "\\r"); break;
    case '\t': g_string_append(out, "\\t"); break;
    default: g_string_append_c(out, *p); break;
    }
  }
}

void
pg_array_element(GString *out, const char *s)
{
  g_string_append_c(out, '"');
  for (const char *p = s != NULL ? s : ""; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c(out, '\\');
    g_string_append_c(out, *p);
  }
  g_string_append_c(out, '"');
}

/* ---- connecting, and the schema -------------------------------------------------- */

static void
pg_quiet_notice(void *arg, const char *message)
{
  /* Notices ("relation already exists, skipping") are not ours to print. */
}

/* The schema version in the database: 0 when there is none (-1 + error). */
static gint64
pg_schema_version(TrPg *pg, GError **error)
{
  g_autoptr(TrPgResult) r = pg_query(
      pg,
      "SELECT COALESCE(MAX(version), 0) FROM schema_version",
      0, NULL, error);
  if (r == NULL)
    return -1;
  const char *v = pg_result_value(r, 0, 0);
  return v != NULL ? g_ascii_strtoll(v, NULL, 10) : 0;
}

static gboolean
pg_version_newer(TrPg *pg, gint64 version, GError **error)
{
  g_set_error(error, DB_ERROR, DB_ERROR_VERSION,
              "PostgreSQL %s has schema version %" G_GINT64_FORMAT ", newer than this "
              "tlsrpt-ingest knows (%d): upgrade tlsrpt-ingest",
              pg->where, version, DB_SCHEMA_VERSION);
  return FALSE;
}

/* Create or migrate the schema: one transaction, under an advisory lock that every
 * writer takes, so two writers starting at once migrate once. */
static gboolean
pg_migrate(TrPg *pg, GError **error)
{
  g_autofree char *lock = g_strdup_printf(
      "BEGIN; SELECT pg_advisory_xact_lock(%d); "
      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
      "applied_epoch BIGINT NOT NULL)",
      PG_SCHEMA_LOCK);
  if (!pg_exec(pg, lock, error))
    goto fail;
  gint64 version = pg_schema_version(pg, error);
  if (version < 0)
    goto fail;
  if (version > DB_SCHEMA_VERSION) {
    pg_version_newer(pg, version, error);
    goto fail;
  }
  for (gint64 v = version; v < DB_SCHEMA_VERSION; v++) {
    g_autofree char *mark = g_strdup_printf(
        "INSERT INTO schema_version (version, applied_epoch) VALUES (%" G_GINT64_FORMAT
        ", %" G_GINT64_FORMAT ")",
        v + 1, (gint64) (g_get_real_time() / G_USEC_PER_SEC));
    if (!pg_exec(pg, pg_migrations[v], error) || !pg_exec(pg, mark, error)) {
      g_prefix_error(error, "schema version %" G_GINT64_FORMAT ": ", v + 1);
      goto fail;
    }
  }
  if (pg_commit(pg, error))
    return TRUE;
fail:
  pg_rollback(pg);
  return FALSE;
}

TrPg *
pg_connect(const char *conninfo, gboolean write, GError **error)
{
  const PqApi *pq = pg_api(error);
  if (pq == NULL)
    return NULL;
  g_autoptr(TrPg) pg = g_new0(TrPg, 1);
  pg->pq = pq;
  pg->where = pg_conninfo_describe(conninfo);
  pg->conn = pq->connectdb(conninfo);
  if (pg->conn == NULL) {
    g_set_error(error, DB_ERROR, DB_ERROR_IO, "PostgreSQL %s: cannot connect: out of memory",
                pg->where);
    return NULL;
  }
  if (pq->status(pg->conn) != CONNECTION_OK) {
    g_autofree char *secret = pg_conninfo_secret(conninfo);
    g_autofree char *msg = pg_clean_message(pq->errorMessage(pg->conn), secret);
    g_set_error(error, DB_ERROR, DB_ERROR_IO, "PostgreSQL %s: cannot connect: %s",
                pg->where, msg);
    return NULL;
  }
  pq->setNoticeProcessor(pg->conn, pg_quiet_notice, NULL);
  if (!pg_exec(pg, "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'", error))
    return NULL;
  /* The usual case, a database at this version: one query, no lock. */
  GError *first = NULL;
  gint64 version = pg_schema_version(pg, &first);
  if (version < 0) {
    if (!write || pg_broken(pg)) {
      if (!write)
        g_prefix_error(&first, "no tlsrpt-ingest schema? ");
      g_propagate_error(error, first);
      return NULL;
    }
    g_error_free(first);
    version = 0;
  }
  if (version > DB_SCHEMA_VERSION) {
    pg_version_newer(pg, version, error);
    return NULL;
  }
  if (version < DB_SCHEMA_VERSION) {
    if (!write) {
      g_set_error(error, DB_ERROR, DB_ERROR_VERSION,
                  "PostgreSQL %s has schema version %" G_GINT64_FORMAT " (this "
                  "tlsrpt-ingest reads %d): the next run that stores a report migrates it",
                  pg->where, version, DB_SCHEMA_VERSION);
      return NULL;
    }
    if (!pg_migrate(pg, error))
      return NULL;
  }
  return g_steal_pointer(&pg);
}

void
pg_close(TrPg *pg)
{
  if (pg == NULL)
    return;
  if (pg->streaming != NULL) {
    /* A statement freed after its connection: nothing more to read. */
    pg->streaming->ended = TRUE;
    pg->streaming = NULL;
  }
  if (pg->conn != NULL)
    pg->pq->finish(pg->conn);
  g_free(pg->where);
  g_free(pg);
}
