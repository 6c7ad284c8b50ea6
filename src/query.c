/* query.c - the reading side's questions to the SQL index. Plain SQL, $N placeholders:
 * $1 is always the window's start and $2 its end. */
#include "query.h"

#include "result-type.h"

#include <string.h>

#define QUERY_TOP_IPS 5

const char *
query_severity_name(QuerySeverity s)
{
  switch (s) {
  case QUERY_SEVERITY_OK: return "ok";
  case QUERY_SEVERITY_NOTICE: return "notice";
  case QUERY_SEVERITY_WARNING: return "warning";
  case QUERY_SEVERITY_CRITICAL: return "critical";
  }
  return "ok";
}

QuerySeverity
query_severity(gint64 successful, gint64 failed, double warn, double crit)
{
  if (failed <= 0)
    return QUERY_SEVERITY_OK;
  double total = (double) successful + (double) failed;
  double ratio = total > 0 ? (double) failed / total : 1.0;
  if (ratio > crit)
    return QUERY_SEVERITY_CRITICAL;
  if (ratio >= warn)
    return QUERY_SEVERITY_WARNING;
  return QUERY_SEVERITY_NOTICE;
}

static const char *const query_by_names[] = { "domain", "mx", "result", "org",
                                              "sending-ip", "day" };

const char *
query_by_name(QueryBy by)
{
  return (gsize) by < G_N_ELEMENTS(query_by_names) ? query_by_names[by] : "domain";
}

gboolean
query_by_parse(const char *s, QueryBy *out)
{
  for (gsize i = 0; s != NULL && i < G_N_ELEMENTS(query_by_names); i++)
    if (strcmp(s, query_by_names[i]) == 0) {
      *out = (QueryBy) i;
      return TRUE;
    }
  return FALSE;
}

static void
query_result_type_free(gpointer p)
{
  QueryResultType *t = p;
  g_free(t->result_type);
  g_free(t);
}

static void
query_count_free(gpointer p)
{
  QueryCount *c = p;
  g_free(c->name);
  g_free(c);
}

static void
query_domain_free(gpointer p)
{
  QueryDomain *d = p;
  g_free(d->policy_domain);
  if (d->result_types)
    g_ptr_array_unref(d->result_types);
  if (d->mx_hosts)
    g_ptr_array_unref(d->mx_hosts);
  if (d->mx_patterns)
    g_ptr_array_unref(d->mx_patterns);
  if (d->organizations_list)
    g_ptr_array_unref(d->organizations_list);
  if (d->sending_ips)
    g_ptr_array_unref(d->sending_ips);
  g_free(d);
}

void
query_summary_free(QuerySummary *s)
{
  if (s == NULL)
    return;
  if (s->domains)
    g_ptr_array_unref(s->domains);
  g_free(s);
}

/* " AND policy_domain IN ($3, $4, ...)" for the domain filter, "" without one. */
static char *
query_domain_filter(const QueryParams *p, int first)
{
  if (p->domains == NULL || p->domains[0] == NULL)
    return g_strdup("");
  g_autoptr(GString) s = g_string_new(" AND policy_domain IN (");
  for (guint i = 0; p->domains[i] != NULL; i++)
    g_string_append_printf(s, "%s$%d", i ? ", " : "", first + (int) i);
  g_string_append_c(s, ')');
  return g_string_free(g_steal_pointer(&s), FALSE);
}

static void
query_bind_window(TrDbStmt *st, const QueryParams *p, int first_domain)
{
  db_bind_int64(st, 1, p->since);
  db_bind_int64(st, 2, p->until);
  for (guint i = 0; p->domains != NULL && p->domains[i] != NULL; i++) {
    g_autofree char *lower = g_ascii_strdown(p->domains[i], -1);
    db_bind_text(st, first_domain + (int) i, lower);
  }
}

/* Rows of (name, reports, successful or -1, failed) into QueryCount*. */
static GPtrArray *
query_counts(TrDbStmt *st, gboolean have_successful, guint limit, GError **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(query_count_free);
  DbStep s;
  while ((s = db_step(st, error)) == DB_STEP_ROW) {
    if (limit > 0 && rows->len >= limit)
      continue;
    QueryCount *c = g_new0(QueryCount, 1);
    const char *name = db_col_text(st, 0);
    c->name = g_strdup(name != NULL ? name : "");
    c->reports = db_col_int64(st, 1);
    c->successful_sessions = have_successful ? db_col_int64(st, 2) : -1;
    c->failed_sessions = db_col_int64(st, 3);
    g_ptr_array_add(rows, c);
  }
  if (s == DB_STEP_ERROR)
    return NULL;
  return g_steal_pointer(&rows);
}

static gint64
query_one_int(TrDbStmt *st, GError **error, gboolean *ok)
{
  DbStep s = db_step(st, error);
  if (s == DB_STEP_ERROR) {
    *ok = FALSE;
    return 0;
  }
  return s == DB_STEP_ROW ? db_col_int64(st, 0) : 0;
}

static gint
query_str_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The details of every domain with failures come from one statement per question,
 * grouped by domain (a statement per domain would be thousands of statements for a
 * large store). Each row's first column is the policy domain; rows of domains without
 * failures are skipped. */
typedef struct {
  TrDb *db;
  const QueryParams *p;
  GHashTable *failing;      /* policy domain -> QueryDomain* (borrowed) */
  char *filter;             /* the domain filter, placeholders from $3 */
} QueryBulk;

static TrDbStmt *
query_bulk_stmt(QueryBulk *b, const char *sql_fmt, GError **error)
{
  /* "%s" in @sql_fmt marks where the domain filter goes. */
  g_auto(GStrv) parts = g_strsplit(sql_fmt, "%s", -1);
  g_autofree char *sql = g_strjoinv(b->filter, parts);
  TrDbStmt *st = db_prepare(b->db, sql, error);
  if (st != NULL)
    query_bind_window(st, b->p, 3);
  return st;
}

/* Step @st; for each row of a failing domain call @row. */
static gboolean
query_bulk_each(QueryBulk *b, TrDbStmt *st, void (*row)(QueryDomain *d, TrDbStmt *st),
                GError **error)
{
  DbStep s;
  while ((s = db_step(st, error)) == DB_STEP_ROW) {
    const char *dom = db_col_text(st, 0);
    QueryDomain *d = g_hash_table_lookup(b->failing, dom != NULL ? dom : "");
    if (d != NULL)
      row(d, st);
  }
  return s != DB_STEP_ERROR;
}

static void
query_row_result_type(QueryDomain *d, TrDbStmt *st)
{
  QueryResultType *t = g_new0(QueryResultType, 1);
  t->result_type = g_strdup(db_col_text(st, 1) != NULL ? db_col_text(st, 1) : "");
  t->known = result_type_find(t->result_type) != NULL;
  t->failed_sessions = db_col_int64(st, 2);
  g_ptr_array_add(d->result_types, t);
}

static QueryCount *
query_row_count(TrDbStmt *st, gboolean have_successful)
{
  QueryCount *c = g_new0(QueryCount, 1);
  const char *name = db_col_text(st, 1);
  c->name = g_strdup(name != NULL ? name : "");
  c->reports = db_col_int64(st, 2);
  c->successful_sessions = have_successful ? db_col_int64(st, 3) : -1;
  c->failed_sessions = db_col_int64(st, 4);
  return c;
}

static void
query_row_mx(QueryDomain *d, TrDbStmt *st)
{
  g_ptr_array_add(d->mx_hosts, query_row_count(st, FALSE));
}

static void
query_row_org(QueryDomain *d, TrDbStmt *st)
{
  g_ptr_array_add(d->organizations_list, query_row_count(st, TRUE));
}

static void
query_row_ip(QueryDomain *d, TrDbStmt *st)
{
  if (d->sending_ips->len < QUERY_TOP_IPS)
    g_ptr_array_add(d->sending_ips, query_row_count(st, FALSE));
}

static void
query_row_patterns(QueryDomain *d, TrDbStmt *st)
{
  g_auto(GStrv) parts = g_strsplit(db_col_text(st, 1) ? db_col_text(st, 1) : "", "|", -1);
  for (guint i = 0; parts[i] != NULL; i++) {
    g_autofree char *mx = g_ascii_strdown(g_strstrip(parts[i]), -1);
    gboolean seen = mx[0] == '\0';
    for (guint j = 0; !seen && j < d->mx_patterns->len; j++)
      seen = strcmp(d->mx_patterns->pdata[j], mx) == 0;
    if (!seen)
      g_ptr_array_add(d->mx_patterns, g_steal_pointer(&mx));
  }
}

static void
query_row_mismatch(QueryDomain *d, TrDbStmt *st)
{
  d->detail_mismatches = db_col_int64(st, 1);
}

/* (domain, result type) -> first and last begin, before the window's end. */
static void
query_row_history(QueryDomain *d, TrDbStmt *st)
{
  const char *rt = db_col_text(st, 1) != NULL ? db_col_text(st, 1) : "";
  for (guint i = 0; i < d->result_types->len; i++) {
    QueryResultType *t = d->result_types->pdata[i];
    if (strcmp(t->result_type, rt) != 0)
      continue;
    gint64 first = db_col_int64(st, 2), last = db_col_int64(st, 3);
    db_format_day(first, t->first_seen);
    db_format_day(last, t->last_seen);
    t->first_epoch = first;
    return;
  }
}

static gboolean
query_details(TrDb *db, const QueryParams *p, GPtrArray *domains, GError **error)
{
  QueryBulk b = { db, p, g_hash_table_new(g_str_hash, g_str_equal), query_domain_filter(p, 3) };
  gboolean ok = FALSE;
  for (guint i = 0; i < domains->len; i++) {
    QueryDomain *d = domains->pdata[i];
    if (d->failed_sessions <= 0)
      continue;
    d->result_types = g_ptr_array_new_with_free_func(query_result_type_free);
    d->mx_hosts = g_ptr_array_new_with_free_func(query_count_free);
    d->mx_patterns = g_ptr_array_new_with_free_func(g_free);
    d->organizations_list = g_ptr_array_new_with_free_func(query_count_free);
    d->sending_ips = g_ptr_array_new_with_free_func(query_count_free);
    g_hash_table_insert(b.failing, d->policy_domain, d);
  }
  if (g_hash_table_size(b.failing) == 0) {
    ok = TRUE;
    goto out;
  }
  static const struct {
    const char *sql;
    void (*row)(QueryDomain *d, TrDbStmt *st);
  } bulk[] = {
    { "SELECT policy_domain, result_type, SUM(failed_session_count) FROM failure_detail "
      "WHERE begin_epoch >= $1 AND begin_epoch < $2%s GROUP BY policy_domain, result_type "
      "ORDER BY 1, 3 DESC, 2",
      query_row_result_type },
    { "SELECT policy_domain, result_type, MIN(begin_epoch), MAX(begin_epoch) "
      "FROM failure_detail WHERE begin_epoch < $2%s "
      "GROUP BY policy_domain, result_type",
      query_row_history },
    { "SELECT policy_domain, COALESCE(receiving_mx_hostname, ''), "
      "COUNT(DISTINCT report_key), 0, SUM(failed_session_count) FROM failure_detail "
      "WHERE begin_epoch >= $1 AND begin_epoch < $2%s "
      "GROUP BY policy_domain, COALESCE(receiving_mx_hostname, '') ORDER BY 1, 5 DESC, 2",
      query_row_mx },
    { "SELECT DISTINCT policy_domain, mx_hosts FROM policy "
      "WHERE begin_epoch >= $1 AND begin_epoch < $2%s ORDER BY 1, 2",
      query_row_patterns },
    { "SELECT policy_domain, organization_name, COUNT(DISTINCT report_key), "
      "SUM(total_successful_session_count), SUM(total_failure_session_count) FROM policy "
      "WHERE begin_epoch >= $1 AND begin_epoch < $2%s "
      "GROUP BY policy_domain, organization_name ORDER BY 1, 5 DESC, 2",
      query_row_org },
    { "SELECT policy_domain, COALESCE(sending_mta_ip, ''), COUNT(DISTINCT report_key), 0, "
      "SUM(failed_session_count) FROM failure_detail "
      "WHERE begin_epoch >= $1 AND begin_epoch < $2%s "
      "GROUP BY policy_domain, COALESCE(sending_mta_ip, '') ORDER BY 1, 5 DESC, 2",
      query_row_ip },
    { "SELECT p.policy_domain, COUNT(*) FROM policy p JOIN (SELECT report_key, "
      "policy_index, SUM(failed_session_count) AS s FROM failure_detail "
      "WHERE begin_epoch >= $1 AND begin_epoch < $2%s GROUP BY report_key, policy_index) f "
      "ON f.report_key = p.report_key AND f.policy_index = p.policy_index "
      "WHERE p.total_failure_session_count <> f.s GROUP BY p.policy_domain",
      query_row_mismatch },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bulk); i++) {
    g_autoptr(TrDbStmt) st = query_bulk_stmt(&b, bulk[i].sql, error);
    if (st == NULL || !query_bulk_each(&b, st, bulk[i].row, error))
      goto out;
  }
  /* The trend: first seen inside the window, and the clean reports after the last
   * day seen, from the domain's reports per day. */
  {
    g_autoptr(TrDbStmt) st = query_bulk_stmt(
        &b,
        "SELECT policy_domain, begin_day, COUNT(DISTINCT report_key) FROM policy "
        "WHERE begin_epoch >= $1 AND begin_epoch < $2%s GROUP BY policy_domain, begin_day",
        error);
    if (st == NULL)
      goto out;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, b.failing);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
      QueryDomain *d = v;
      for (guint i = 0; i < d->result_types->len; i++) {
        QueryResultType *t = d->result_types->pdata[i];
        t->new_in_window = t->first_epoch >= p->since;
        t->clean_reports_since = 0;
      }
    }
    DbStep s;
    while ((s = db_step(st, error)) == DB_STEP_ROW) {
      QueryDomain *d = g_hash_table_lookup(b.failing, db_col_text(st, 0) ? db_col_text(st, 0) : "");
      if (d == NULL)
        continue;
      const char *day = db_col_text(st, 1) != NULL ? db_col_text(st, 1) : "";
      gint64 n = db_col_int64(st, 2);
      for (guint i = 0; i < d->result_types->len; i++) {
        QueryResultType *t = d->result_types->pdata[i];
        if (strcmp(day, t->last_seen) > 0)
          t->clean_reports_since += n;
      }
    }
    if (s == DB_STEP_ERROR)
      goto out;
  }
  for (guint i = 0; i < domains->len; i++) {
    QueryDomain *d = domains->pdata[i];
    if (d->mx_patterns != NULL)
      g_ptr_array_sort(d->mx_patterns, query_str_cmp);
  }
  ok = TRUE;
out:
  g_hash_table_unref(b.failing);
  g_free(b.filter);
  return ok;
}

/* Worst first: severity, then failure ratio, then name. */
static gint
query_domain_cmp(gconstpointer a, gconstpointer b)
{
  const QueryDomain *x = *(const QueryDomain *const *) a, *y = *(const QueryDomain *const *) b;
  if (x->severity != y->severity)
    return x->severity > y->severity ? -1 : 1;
  if (x->failure_ratio != y->failure_ratio)
    return x->failure_ratio > y->failure_ratio ? -1 : 1;
  return strcmp(x->policy_domain, y->policy_domain);
}

QuerySummary *
query_summary(TrDb *db, const QueryParams *p, GError **error)
{
  g_autoptr(QuerySummary) sum = g_new0(QuerySummary, 1);
  sum->since = p->since;
  sum->until = p->until;
  sum->domains = g_ptr_array_new_with_free_func(query_domain_free);
  {
    g_autoptr(TrDbStmt) st =
        db_prepare(db, "SELECT COUNT(*), MIN(begin_epoch), MAX(begin_epoch) FROM report", error);
    if (st == NULL || db_step(st, error) != DB_STEP_ROW)
      return NULL;
    sum->store_reports = db_col_int64(st, 0);
    if (sum->store_reports > 0) {
      db_format_day(db_col_int64(st, 1), sum->store_first);
      db_format_day(db_col_int64(st, 2), sum->store_last);
    }
  }
  g_autofree char *filter = query_domain_filter(p, 3);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, COUNT(DISTINCT report_key), COUNT(DISTINCT organization_name), "
      "SUM(total_successful_session_count), SUM(total_failure_session_count), "
      "MAX(begin_epoch) FROM policy WHERE begin_epoch >= $1 AND begin_epoch < $2%s "
      "GROUP BY policy_domain ORDER BY policy_domain",
      filter);
  g_autoptr(TrDbStmt) st = db_prepare(db, sql, error);
  if (st == NULL)
    return NULL;
  query_bind_window(st, p, 3);
  DbStep s;
  while ((s = db_step(st, error)) == DB_STEP_ROW) {
    QueryDomain *d = g_new0(QueryDomain, 1);
    d->policy_domain = g_strdup(db_col_text(st, 0) != NULL ? db_col_text(st, 0) : "");
    d->reports = db_col_int64(st, 1);
    d->organizations = db_col_int64(st, 2);
    d->successful_sessions = db_col_int64(st, 3);
    d->failed_sessions = db_col_int64(st, 4);
    db_format_day(db_col_int64(st, 5), d->last_report);
    gint64 total = d->successful_sessions + d->failed_sessions;
    d->failure_ratio = total > 0 ? (double) d->failed_sessions / (double) total : 0.0;
    d->severity = query_severity(d->successful_sessions, d->failed_sessions, p->warn, p->crit);
    g_ptr_array_add(sum->domains, d);
  }
  if (s == DB_STEP_ERROR)
    return NULL;
  {
    g_autofree char *rsql = g_strdup_printf(
        "SELECT COUNT(DISTINCT report_key) FROM policy WHERE begin_epoch >= $1 AND "
        "begin_epoch < $2%s",
        filter);
    g_autoptr(TrDbStmt) rst = db_prepare(db, rsql, error);
    if (rst == NULL)
      return NULL;
    query_bind_window(rst, p, 3);
    gboolean ok = TRUE;
    sum->reports = query_one_int(rst, error, &ok);
    if (!ok)
      return NULL;
  }
  if (!query_details(db, p, sum->domains, error))
    return NULL;
  g_ptr_array_sort(sum->domains, query_domain_cmp);
  return g_steal_pointer(&sum);
}

GPtrArray *
query_by(TrDb *db, const QueryParams *p, QueryBy by, GError **error)
{
  g_autofree char *filter = query_domain_filter(p, 3);
  const char *col = NULL, *table = "policy", *order = "4 DESC, 1";
  gboolean have_successful = TRUE;
  switch (by) {
  case QUERY_BY_DOMAIN: col = "policy_domain"; break;
  case QUERY_BY_ORG: col = "organization_name"; break;
  case QUERY_BY_DAY: col = "begin_day"; order = "1"; break;
  case QUERY_BY_MX: col = "COALESCE(receiving_mx_hostname, '')"; break;
  case QUERY_BY_RESULT: col = "result_type"; break;
  case QUERY_BY_SENDING_IP: col = "COALESCE(sending_mta_ip, '')"; break;
  }
  if (by == QUERY_BY_MX || by == QUERY_BY_RESULT || by == QUERY_BY_SENDING_IP) {
    table = "failure_detail";
    have_successful = FALSE;
  }
  g_autofree char *sql = NULL;
  if (have_successful)
    sql = g_strdup_printf(
        "SELECT %s, COUNT(DISTINCT report_key), SUM(total_successful_session_count), "
        "SUM(total_failure_session_count) FROM policy "
        "WHERE begin_epoch >= $1 AND begin_epoch < $2%s GROUP BY %s ORDER BY %s",
        col, filter, col, order);
  else if (by == QUERY_BY_DAY)
    g_assert_not_reached();
  else
    sql = g_strdup_printf(
        "SELECT %s, COUNT(DISTINCT report_key), 0, SUM(failed_session_count) FROM %s "
        "WHERE begin_epoch >= $1 AND begin_epoch < $2%s GROUP BY %s ORDER BY %s",
        col, table, filter, col, order);
  g_autoptr(TrDbStmt) st = db_prepare(db, sql, error);
  if (st == NULL)
    return NULL;
  query_bind_window(st, p, 3);
  return query_counts(st, have_successful, 0, error);
}
