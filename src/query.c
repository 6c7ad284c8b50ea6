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

/* A statement over one domain: $1 since, $2 until, $3 the domain. */
static TrDbStmt *
query_domain_stmt(TrDb *db, const char *sql, const QueryParams *p, const char *domain,
                  GError **error)
{
  TrDbStmt *st = db_prepare(db, sql, error);
  if (st == NULL)
    return NULL;
  db_bind_int64(st, 1, p->since);
  db_bind_int64(st, 2, p->until);
  db_bind_text(st, 3, domain);
  return st;
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

static gint64
query_day_start(gint64 epoch)
{
  gint64 d = epoch / 86400;
  if (epoch < 0 && epoch % 86400 != 0)
    d--;
  return d * 86400;
}

static gint
query_str_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static gboolean
query_domain_details(TrDb *db, const QueryParams *p, QueryDomain *d, GError **error)
{
  const char *dom = d->policy_domain;
  gboolean ok = TRUE;

  /* Result types, with their history up to the window's end. */
  d->result_types = g_ptr_array_new_with_free_func(query_result_type_free);
  {
    g_autoptr(TrDbStmt) st = query_domain_stmt(
        db,
        "SELECT result_type, SUM(failed_session_count) FROM failure_detail "
        "WHERE policy_domain = $3 AND begin_epoch >= $1 AND begin_epoch < $2 "
        "GROUP BY result_type ORDER BY 2 DESC, 1",
        p, dom, error);
    if (st == NULL)
      return FALSE;
    DbStep s;
    while ((s = db_step(st, error)) == DB_STEP_ROW) {
      QueryResultType *t = g_new0(QueryResultType, 1);
      t->result_type = g_strdup(db_col_text(st, 0) != NULL ? db_col_text(st, 0) : "");
      t->known = result_type_find(t->result_type) != NULL;
      t->failed_sessions = db_col_int64(st, 1);
      g_ptr_array_add(d->result_types, t);
    }
    if (s == DB_STEP_ERROR)
      return FALSE;
  }
  g_autoptr(TrDbStmt) hist = db_prepare(
      db,
      "SELECT MIN(begin_epoch), MAX(begin_epoch) FROM failure_detail "
      "WHERE policy_domain = $3 AND result_type = $4 AND begin_epoch < $2",
      error);
  g_autoptr(TrDbStmt) clean = db_prepare(
      db,
      "SELECT COUNT(DISTINCT report_key) FROM policy "
      "WHERE policy_domain = $3 AND begin_epoch >= $4 AND begin_epoch < $2",
      error);
  if (hist == NULL || clean == NULL)
    return FALSE;
  for (guint i = 0; i < d->result_types->len; i++) {
    QueryResultType *t = d->result_types->pdata[i];
    db_reset(hist);
    db_bind_int64(hist, 2, p->until);
    db_bind_text(hist, 3, dom);
    db_bind_text(hist, 4, t->result_type);
    if (db_step(hist, error) != DB_STEP_ROW)
      return FALSE;
    gint64 first = db_col_int64(hist, 0), last = db_col_int64(hist, 1);
    db_format_day(first, t->first_seen);
    db_format_day(last, t->last_seen);
    t->new_in_window = first >= p->since;
    db_reset(clean);
    db_bind_int64(clean, 2, p->until);
    db_bind_text(clean, 3, dom);
    db_bind_int64(clean, 4, query_day_start(last) + 86400);
    t->clean_reports_since = query_one_int(clean, error, &ok);
    if (!ok)
      return FALSE;
  }

  /* Receiving MX hosts, and the MX patterns of the policies. */
  {
    g_autoptr(TrDbStmt) st = query_domain_stmt(
        db,
        "SELECT COALESCE(receiving_mx_hostname, ''), COUNT(DISTINCT report_key), 0, "
        "SUM(failed_session_count) FROM failure_detail "
        "WHERE policy_domain = $3 AND begin_epoch >= $1 AND begin_epoch < $2 "
        "GROUP BY COALESCE(receiving_mx_hostname, '') ORDER BY 4 DESC, 1",
        p, dom, error);
    if (st == NULL || (d->mx_hosts = query_counts(st, FALSE, 0, error)) == NULL)
      return FALSE;
  }
  {
    g_autoptr(TrDbStmt) st = query_domain_stmt(
        db,
        "SELECT DISTINCT mx_hosts FROM policy "
        "WHERE policy_domain = $3 AND begin_epoch >= $1 AND begin_epoch < $2",
        p, dom, error);
    if (st == NULL)
      return FALSE;
    d->mx_patterns = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    DbStep s;
    while ((s = db_step(st, error)) == DB_STEP_ROW) {
      g_auto(GStrv) parts = g_strsplit(db_col_text(st, 0) ? db_col_text(st, 0) : "", "|", -1);
      for (guint i = 0; parts[i] != NULL; i++) {
        g_autofree char *mx = g_ascii_strdown(g_strstrip(parts[i]), -1);
        if (mx[0] == '\0' || g_hash_table_contains(seen, mx))
          continue;
        g_hash_table_add(seen, mx);
        g_ptr_array_add(d->mx_patterns, g_steal_pointer(&mx));
      }
    }
    if (s == DB_STEP_ERROR)
      return FALSE;
    g_ptr_array_sort(d->mx_patterns, query_str_cmp);
  }

  /* Reporting organizations and the top sending IPs. */
  {
    g_autoptr(TrDbStmt) st = query_domain_stmt(
        db,
        "SELECT organization_name, COUNT(DISTINCT report_key), "
        "SUM(total_successful_session_count), SUM(total_failure_session_count) "
        "FROM policy WHERE policy_domain = $3 AND begin_epoch >= $1 AND begin_epoch < $2 "
        "GROUP BY organization_name ORDER BY 4 DESC, 1",
        p, dom, error);
    if (st == NULL || (d->organizations_list = query_counts(st, TRUE, 0, error)) == NULL)
      return FALSE;
  }
  {
    g_autoptr(TrDbStmt) st = query_domain_stmt(
        db,
        "SELECT COALESCE(sending_mta_ip, ''), COUNT(DISTINCT report_key), 0, "
        "SUM(failed_session_count) FROM failure_detail "
        "WHERE policy_domain = $3 AND begin_epoch >= $1 AND begin_epoch < $2 "
        "GROUP BY COALESCE(sending_mta_ip, '') ORDER BY 4 DESC, 1",
        p, dom, error);
    if (st == NULL ||
        (d->sending_ips = query_counts(st, FALSE, QUERY_TOP_IPS, error)) == NULL)
      return FALSE;
  }

  /* Policies whose failure details do not add up to their summary's total. */
  {
    g_autoptr(TrDbStmt) st = query_domain_stmt(
        db,
        "SELECT COUNT(*) FROM policy p "
        "WHERE p.policy_domain = $3 AND p.begin_epoch >= $1 AND p.begin_epoch < $2 "
        "AND EXISTS (SELECT 1 FROM failure_detail f WHERE f.report_key = p.report_key "
        "AND f.policy_index = p.policy_index) "
        "AND p.total_failure_session_count <> (SELECT SUM(f.failed_session_count) "
        "FROM failure_detail f WHERE f.report_key = p.report_key "
        "AND f.policy_index = p.policy_index)",
        p, dom, error);
    if (st == NULL)
      return FALSE;
    d->detail_mismatches = query_one_int(st, error, &ok);
  }
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
  g_ptr_array_sort(sum->domains, query_domain_cmp);
  for (guint i = 0; i < sum->domains->len; i++) {
    QueryDomain *d = sum->domains->pdata[i];
    if (d->failed_sessions > 0 || d->severity != QUERY_SEVERITY_OK) {
      if (!query_domain_details(db, p, d, error))
        return NULL;
    } else {
      /* A clean domain may still have had failure details with zero counts, or
       * failures that stopped before the window: only its totals are shown. */
    }
  }
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
