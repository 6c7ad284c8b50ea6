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

/* The organization filter, its placeholders from $@first: on the policy table
 * (organization_name is a column) or on failure_detail (through the report). */
static char *
query_org_filter(const QueryParams *p, gboolean detail, int first)
{
  if (p->orgs == NULL || p->orgs[0] == NULL)
    return g_strdup("");
  g_autoptr(GString) s = g_string_new(
      detail ? " AND report_key IN (SELECT report_key FROM report WHERE organization_name IN ("
             : " AND organization_name IN (");
  for (guint i = 0; p->orgs[i] != NULL; i++)
    g_string_append_printf(s, "%s$%d", i ? ", " : "", first + (int) i);
  g_string_append(s, detail ? "))" : ")");
  return g_string_free(g_steal_pointer(&s), FALSE);
}

static void
query_bind_orgs(TrDbStmt *st, const QueryParams *p, int first)
{
  for (guint i = 0; p->orgs != NULL && p->orgs[i] != NULL; i++)
    db_bind_text(st, first + (int) i, p->orgs[i]);
}

static guint
query_n_domains(const QueryParams *p)
{
  return p->domains != NULL ? g_strv_length((char **) p->domains) : 0;
}

/* The window, domain and organization filters of a statement on @table's columns:
 * "begin_epoch >= $1 AND begin_epoch < $2 AND policy_domain IN ($3..) AND ...". */
static char *
query_where(const QueryParams *p, gboolean detail)
{
  g_autofree char *dom = query_domain_filter(p, 3);
  g_autofree char *org = query_org_filter(p, detail, 3 + (int) query_n_domains(p));
  return g_strdup_printf("begin_epoch >= $1 AND begin_epoch < $2%s%s", dom, org);
}

static TrDbStmt *
query_window_stmt(TrDb *db, const QueryParams *p, const char *sql, GError **error)
{
  TrDbStmt *st = db_prepare(db, sql, error);
  if (st == NULL)
    return NULL;
  query_bind_window(st, p, 3);
  query_bind_orgs(st, p, 3 + (int) query_n_domains(p));
  return st;
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

static gint
query_str_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The summary is two scans of the window, the policy rows and the failure-detail
 * rows, aggregated here per domain (GROUP BY statements per question sort every row
 * again for each question; one statement per domain would be thousands of statements),
 * plus one grouped statement for the history of each result type. When the window
 * covers much of the index, the scans read the tables in order instead of through
 * the begin_epoch index ("+begin_epoch": plain SQL that keeps the planner off it). */
typedef struct {
  QueryDomain *d;
  GHashTable *reports;      /* report keys seen for the domain */
  GHashTable *orgs;         /* organization -> QueryCount* (owned by d) */
  GHashTable *days;         /* "YYYY-MM-DD" -> reports that day (GINT_TO_POINTER) */
  GHashTable *patterns;     /* mx_hosts strings seen */
  GHashTable *rts;          /* result type -> QueryResultType* (owned by d) */
  GHashTable *mx;           /* receiving MX -> QueryCount* */
  GHashTable *ips;          /* sending IP -> QueryCount* */
  GPtrArray *all_ips;       /* every QueryCount* of @ips (owned) */
} QueryAgg;

static void
query_agg_free(gpointer p)
{
  QueryAgg *a = p;
  g_hash_table_unref(a->reports);
  g_hash_table_unref(a->orgs);
  g_hash_table_unref(a->days);
  g_hash_table_unref(a->patterns);
  g_hash_table_unref(a->rts);
  g_hash_table_unref(a->mx);
  g_hash_table_unref(a->ips);
  g_ptr_array_unref(a->all_ips);
  g_free(a);
}

static QueryCount *
query_count_get(GHashTable *h, GPtrArray *owner, const char *name, gboolean have_successful)
{
  QueryCount *c = g_hash_table_lookup(h, name);
  if (c == NULL) {
    c = g_new0(QueryCount, 1);
    c->name = g_strdup(name);
    c->successful_sessions = have_successful ? 0 : -1;
    g_ptr_array_add(owner, c);
    g_hash_table_insert(h, c->name, c);
  }
  return c;
}

/* Most failed first, then by name. */
static gint
query_count_cmp(gconstpointer a, gconstpointer b)
{
  const QueryCount *x = *(const QueryCount *const *) a, *y = *(const QueryCount *const *) b;
  if (x->failed_sessions != y->failed_sessions)
    return x->failed_sessions > y->failed_sessions ? -1 : 1;
  return strcmp(x->name, y->name);
}

static gint
query_rt_cmp(gconstpointer a, gconstpointer b)
{
  const QueryResultType *x = *(const QueryResultType *const *) a;
  const QueryResultType *y = *(const QueryResultType *const *) b;
  if (x->failed_sessions != y->failed_sessions)
    return x->failed_sessions > y->failed_sessions ? -1 : 1;
  return strcmp(x->result_type, y->result_type);
}

static TrDbStmt *
query_scan_stmt(TrDb *db, const QueryParams *p, const char *select_from, gboolean full,
                GError **error)
{
  g_autofree char *filter = query_domain_filter(p, 3);
  /* The organization is a column of policy; failure_detail has it through the report. */
  g_autofree char *orgs = query_org_filter(p, g_str_has_suffix(select_from, "FROM failure_detail"),
                                           3 + (int) query_n_domains(p));
  g_autofree char *sql = g_strdup_printf(
      "%s WHERE %sbegin_epoch >= $1 AND %sbegin_epoch < $2%s%s", select_from, full ? "+" : "",
      full ? "+" : "", filter, orgs);
  TrDbStmt *st = db_prepare(db, sql, error);
  if (st != NULL) {
    query_bind_window(st, p, 3);
    query_bind_orgs(st, p, 3 + (int) query_n_domains(p));
  }
  return st;
}

/* One policy of the window: its summary's failure total and what its details add up to. */
typedef struct {
  QueryAgg *agg;
  gint64 total;
  gint64 details;
  gboolean has_details;
} QueryPolicyTotal;

static gboolean
query_scan(TrDb *db, const QueryParams *p, QuerySummary *sum, gboolean full, GError **error)
{
  g_autoptr(GHashTable) aggs =
      g_hash_table_new_full(g_str_hash, g_str_equal, NULL, query_agg_free);
  g_autoptr(GHashTable) policies = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
  g_autoptr(GHashTable) all_reports = g_hash_table_new(g_str_hash, g_str_equal);
  GStringChunk *strings = g_string_chunk_new(1 << 16);
  gboolean ok = FALSE;
  char pkey[64];

  /* Policies: the totals, organizations, days and MX patterns. */
  {
    g_autoptr(TrDbStmt) st = query_scan_stmt(
        db, p,
        "SELECT policy_domain, report_key, policy_index, organization_name, begin_day, "
        "mx_hosts, total_successful_session_count, total_failure_session_count, "
        "begin_epoch FROM policy",
        full, error);
    if (st == NULL)
      goto out;
    DbStep s;
    while ((s = db_step(st, error)) == DB_STEP_ROW) {
      const char *dom = db_col_text(st, 0) ? db_col_text(st, 0) : "";
      QueryAgg *a = g_hash_table_lookup(aggs, dom);
      if (a == NULL) {
        a = g_new0(QueryAgg, 1);
        a->d = g_new0(QueryDomain, 1);
        a->d->policy_domain = g_strdup(dom);
        a->d->organizations_list = g_ptr_array_new_with_free_func(query_count_free);
        a->reports = g_hash_table_new(g_str_hash, g_str_equal);
        a->orgs = g_hash_table_new(g_str_hash, g_str_equal);
        a->days = g_hash_table_new(g_str_hash, g_str_equal);
        a->patterns = g_hash_table_new(g_str_hash, g_str_equal);
        a->rts = g_hash_table_new(g_str_hash, g_str_equal);
        a->mx = g_hash_table_new(g_str_hash, g_str_equal);
        a->ips = g_hash_table_new(g_str_hash, g_str_equal);
        a->all_ips = g_ptr_array_new_with_free_func(query_count_free);
        g_ptr_array_add(sum->domains, a->d);
        g_hash_table_insert(aggs, a->d->policy_domain, a);
      }
      QueryDomain *d = a->d;
      const char *key =
          g_string_chunk_insert_const(strings, db_col_text(st, 1) ? db_col_text(st, 1) : "");
      const char *org = db_col_text(st, 3) ? db_col_text(st, 3) : "";
      gint64 good = db_col_int64(st, 6), bad = db_col_int64(st, 7), begin = db_col_int64(st, 8);
      g_hash_table_add(all_reports, (gpointer) key);
      gboolean new_report = g_hash_table_add(a->reports, (gpointer) key);
      d->successful_sessions += good;
      d->failed_sessions += bad;
      QueryCount *c = query_count_get(a->orgs, d->organizations_list, org, TRUE);
      c->successful_sessions += good;
      c->failed_sessions += bad;
      if (new_report) {
        d->reports++;
        c->reports++;
        const char *day =
            g_string_chunk_insert_const(strings, db_col_text(st, 4) ? db_col_text(st, 4) : "");
        g_hash_table_insert(a->days, (gpointer) day,
                            GINT_TO_POINTER(GPOINTER_TO_INT(g_hash_table_lookup(a->days, day)) + 1));
        char last[11];
        db_format_day(begin, last);
        if (strcmp(last, d->last_report) > 0)
          memcpy(d->last_report, last, sizeof last);
      }
      const char *mxh = db_col_text(st, 5) ? db_col_text(st, 5) : "";
      if (mxh[0] != '\0' && !g_hash_table_contains(a->patterns, mxh))
        g_hash_table_add(a->patterns, (gpointer) g_string_chunk_insert_const(strings, mxh));
      g_snprintf(pkey, sizeof pkey, "%s\t%" G_GINT64_FORMAT, key, db_col_int64(st, 2));
      QueryPolicyTotal *pt = g_new0(QueryPolicyTotal, 1);
      pt->agg = a;
      pt->total = bad;
      g_hash_table_replace(policies, (gpointer) g_string_chunk_insert(strings, pkey), pt);
    }
    if (s == DB_STEP_ERROR)
      goto out;
  }
  sum->reports = g_hash_table_size(all_reports);

  /* Failure details: result types, MX hosts, sending IPs, and the details' sums. */
  {
    g_autoptr(TrDbStmt) st = query_scan_stmt(
        db, p,
        "SELECT policy_domain, result_type, receiving_mx_hostname, sending_mta_ip, "
        "failed_session_count, report_key, policy_index FROM failure_detail",
        full, error);
    if (st == NULL)
      goto out;
    DbStep s;
    while ((s = db_step(st, error)) == DB_STEP_ROW) {
      QueryAgg *a = g_hash_table_lookup(aggs, db_col_text(st, 0) ? db_col_text(st, 0) : "");
      if (a == NULL)
        continue;
      QueryDomain *d = a->d;
      if (d->result_types == NULL) {
        d->result_types = g_ptr_array_new_with_free_func(query_result_type_free);
        d->mx_hosts = g_ptr_array_new_with_free_func(query_count_free);
      }
      gint64 n = db_col_int64(st, 4);
      const char *rt = db_col_text(st, 1) ? db_col_text(st, 1) : "";
      QueryResultType *t = g_hash_table_lookup(a->rts, rt);
      if (t == NULL) {
        t = g_new0(QueryResultType, 1);
        t->result_type = g_strdup(rt);
        t->known = result_type_find(rt) != NULL;
        g_ptr_array_add(d->result_types, t);
        g_hash_table_insert(a->rts, t->result_type, t);
      }
      t->failed_sessions += n;
      query_count_get(a->mx, d->mx_hosts, db_col_text(st, 2) ? db_col_text(st, 2) : "", FALSE)
          ->failed_sessions += n;
      query_count_get(a->ips, a->all_ips, db_col_text(st, 3) ? db_col_text(st, 3) : "", FALSE)
          ->failed_sessions += n;
      g_snprintf(pkey, sizeof pkey, "%s\t%" G_GINT64_FORMAT,
                 db_col_text(st, 5) ? db_col_text(st, 5) : "", db_col_int64(st, 6));
      QueryPolicyTotal *pt = g_hash_table_lookup(policies, pkey);
      if (pt != NULL) {
        pt->details += n;
        pt->has_details = TRUE;
      }
    }
    if (s == DB_STEP_ERROR)
      goto out;
  }
  {
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, policies);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
      QueryPolicyTotal *pt = v;
      if (pt->has_details && pt->details != pt->total)
        pt->agg->d->detail_mismatches++;
    }
  }

  /* Per domain: ratio, severity, ordered lists; the details only for failing ones. */
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, aggs);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    QueryAgg *a = v;
    QueryDomain *d = a->d;
    gint64 total = d->successful_sessions + d->failed_sessions;
    d->failure_ratio = total > 0 ? (double) d->failed_sessions / (double) total : 0.0;
    d->severity = query_severity(d->successful_sessions, d->failed_sessions, p->warn, p->crit);
    d->organizations = g_hash_table_size(a->orgs);
    if (d->failed_sessions <= 0) {
      g_clear_pointer(&d->organizations_list, g_ptr_array_unref);
      g_clear_pointer(&d->result_types, g_ptr_array_unref);
      g_clear_pointer(&d->mx_hosts, g_ptr_array_unref);
      continue;
    }
    if (d->result_types == NULL) {
      d->result_types = g_ptr_array_new_with_free_func(query_result_type_free);
      d->mx_hosts = g_ptr_array_new_with_free_func(query_count_free);
    }
    g_ptr_array_sort(d->result_types, query_rt_cmp);
    g_ptr_array_sort(d->mx_hosts, query_count_cmp);
    g_ptr_array_sort(d->organizations_list, query_count_cmp);
    g_ptr_array_sort(a->all_ips, query_count_cmp);
    d->sending_ips = g_ptr_array_new_with_free_func(query_count_free);
    for (guint i = 0; i < a->all_ips->len && i < QUERY_TOP_IPS; i++) {
      QueryCount *c = a->all_ips->pdata[i];
      QueryCount *copy = g_new0(QueryCount, 1);
      *copy = *c;
      copy->name = g_strdup(c->name);
      g_ptr_array_add(d->sending_ips, copy);
    }
    d->mx_patterns = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter pi;
    gpointer pk;
    g_hash_table_iter_init(&pi, a->patterns);
    while (g_hash_table_iter_next(&pi, &pk, NULL)) {
      g_auto(GStrv) parts = g_strsplit(pk, "|", -1);
      for (guint i = 0; parts[i] != NULL; i++) {
        g_autofree char *mx = g_ascii_strdown(g_strstrip(parts[i]), -1);
        gboolean seen = mx[0] == '\0';
        for (guint j = 0; !seen && j < d->mx_patterns->len; j++)
          seen = strcmp(d->mx_patterns->pdata[j], mx) == 0;
        if (!seen)
          g_ptr_array_add(d->mx_patterns, g_steal_pointer(&mx));
      }
    }
    g_ptr_array_sort(d->mx_patterns, query_str_cmp);
  }

  /* Trend: the first and last day each type was seen (any time before the window's
   * end), then the clean reports of the domain after the last one. */
  {
    g_autofree char *filter = query_domain_filter(p, 3);
    g_autofree char *orgs = query_org_filter(p, TRUE, 3 + (int) query_n_domains(p));
    g_autofree char *sql = g_strdup_printf(
        "SELECT policy_domain, result_type, MIN(begin_epoch), MAX(begin_epoch) "
        "FROM failure_detail WHERE begin_epoch < $2%s%s GROUP BY policy_domain, result_type",
        filter, orgs);
    g_autoptr(TrDbStmt) st = db_prepare(db, sql, error);
    if (st == NULL)
      goto out;
    query_bind_window(st, p, 3);
    query_bind_orgs(st, p, 3 + (int) query_n_domains(p));
    DbStep s;
    while ((s = db_step(st, error)) == DB_STEP_ROW) {
      QueryAgg *a = g_hash_table_lookup(aggs, db_col_text(st, 0) ? db_col_text(st, 0) : "");
      if (a == NULL || a->d->failed_sessions <= 0)
        continue;
      QueryResultType *t = g_hash_table_lookup(a->rts, db_col_text(st, 1) ? db_col_text(st, 1) : "");
      if (t == NULL)
        continue;
      t->first_epoch = db_col_int64(st, 2);
      db_format_day(t->first_epoch, t->first_seen);
      db_format_day(db_col_int64(st, 3), t->last_seen);
      t->new_in_window = t->first_epoch >= p->since;
    }
    if (s == DB_STEP_ERROR)
      goto out;
  }
  g_hash_table_iter_init(&it, aggs);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    QueryAgg *a = v;
    QueryDomain *d = a->d;
    if (d->result_types == NULL)
      continue;
    GHashTableIter di;
    gpointer dk, dv;
    g_hash_table_iter_init(&di, a->days);
    while (g_hash_table_iter_next(&di, &dk, &dv))
      for (guint i = 0; i < d->result_types->len; i++) {
        QueryResultType *t = d->result_types->pdata[i];
        if (strcmp(dk, t->last_seen) > 0)
          t->clean_reports_since += GPOINTER_TO_INT(dv);
      }
  }
  ok = TRUE;
out:
  g_hash_table_remove_all(aggs);
  g_string_chunk_free(strings);
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
  /* A window over most of the index is read in table order, not through the index. */
  gboolean full = FALSE;
  {
    g_autoptr(TrDbStmt) st =
        db_prepare(db, "SELECT MIN(begin_epoch), MAX(begin_epoch) FROM report", error);
    if (st == NULL || db_step(st, error) != DB_STEP_ROW)
      return NULL;
    gint64 lo = db_col_int64(st, 0), hi = db_col_int64(st, 1) + 1;
    gint64 covered = MIN(hi, p->until) - MAX(lo, p->since);
    full = sum->store_reports > 0 && covered * 3 > (hi - lo);
  }
  if (!query_scan(db, p, sum, full, error))
    return NULL;
  g_ptr_array_sort(sum->domains, query_domain_cmp);
  return g_steal_pointer(&sum);
}

GPtrArray *
query_by(TrDb *db, const QueryParams *p, QueryBy by, GError **error)
{
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
  g_autofree char *where = query_where(p, !have_successful);
  g_autofree char *sql = NULL;
  if (have_successful)
    sql = g_strdup_printf(
        "SELECT %s, COUNT(DISTINCT report_key), SUM(total_successful_session_count), "
        "SUM(total_failure_session_count) FROM policy "
        "WHERE %s GROUP BY %s ORDER BY %s",
        col, where, col, order);
  else if (by == QUERY_BY_DAY)
    g_assert_not_reached();
  else
    sql = g_strdup_printf(
        "SELECT %s, COUNT(DISTINCT report_key), 0, SUM(failed_session_count) FROM %s "
        "WHERE %s GROUP BY %s ORDER BY %s",
        col, table, where, col, order);
  g_autoptr(TrDbStmt) st = query_window_stmt(db, p, sql, error);
  if (st == NULL)
    return NULL;
  return query_counts(st, have_successful, 0, error);
}

/* ---- the monitoring outputs ------------------------------------------------ */

static void
query_latest_free(gpointer p)
{
  QueryLatest *l = p;
  g_free(l->policy_domain);
  g_free(l->organization);
  g_free(l);
}

GPtrArray *
query_latest(TrDb *db, const QueryParams *p, GError **error)
{
  /* The window's start is not a bound here: the newest report may be older. */
  g_autofree char *dom = query_domain_filter(p, 3);
  g_autofree char *org = query_org_filter(p, FALSE, 3 + (int) query_n_domains(p));
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, organization_name, MAX(begin_epoch), COUNT(*) "
      "FROM policy WHERE begin_epoch < $2%s%s "
      "GROUP BY policy_domain, organization_name ORDER BY policy_domain, organization_name",
      dom, org);
  g_autoptr(TrDbStmt) st = db_prepare(db, sql, error);
  if (st == NULL)
    return NULL;
  /* Bound by name: $1 is not in this statement. */
  db_bind_int64(st, 2, p->until);
  for (guint i = 0; p->domains != NULL && p->domains[i] != NULL; i++) {
    g_autofree char *lower = g_ascii_strdown(p->domains[i], -1);
    db_bind_text(st, 3 + (int) i, lower);
  }
  query_bind_orgs(st, p, 3 + (int) query_n_domains(p));
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(query_latest_free);
  DbStep s;
  while ((s = db_step(st, error)) == DB_STEP_ROW) {
    QueryLatest *l = g_new0(QueryLatest, 1);
    l->policy_domain = g_strdup(db_col_text(st, 0) != NULL ? db_col_text(st, 0) : "");
    l->organization = g_strdup(db_col_text(st, 1) != NULL ? db_col_text(st, 1) : "");
    l->newest_begin = db_col_int64(st, 2);
    l->reports = db_col_int64(st, 3);
    g_ptr_array_add(rows, l);
  }
  if (s == DB_STEP_ERROR)
    return NULL;
  return g_steal_pointer(&rows);
}

static void
query_group_free(gpointer p)
{
  QueryGroup *g = p;
  for (guint i = 0; i < G_N_ELEMENTS(g->key); i++)
    g_free(g->key[i]);
  g_free(g);
}

/* Rows of (@nkeys keys, reports, successful or -1, failed) into QueryGroup*. */
static GPtrArray *
query_groups(TrDb *db, const QueryParams *p, const char *sql, guint nkeys,
             gboolean have_successful, GError **error)
{
  g_autoptr(TrDbStmt) st = query_window_stmt(db, p, sql, error);
  if (st == NULL)
    return NULL;
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(query_group_free);
  DbStep s;
  while ((s = db_step(st, error)) == DB_STEP_ROW) {
    QueryGroup *g = g_new0(QueryGroup, 1);
    for (guint i = 0; i < G_N_ELEMENTS(g->key); i++) {
      const char *v = i < nkeys ? db_col_text(st, (int) i) : NULL;
      g->key[i] = g_strdup(v != NULL ? v : "");
    }
    g->reports = db_col_int64(st, (int) nkeys);
    g->successful_sessions = have_successful ? db_col_int64(st, (int) nkeys + 1) : -1;
    g->failed_sessions = db_col_int64(st, (int) nkeys + 2);
    g_ptr_array_add(rows, g);
  }
  if (s == DB_STEP_ERROR)
    return NULL;
  return g_steal_pointer(&rows);
}

GPtrArray *
query_sessions_by_policy(TrDb *db, const QueryParams *p, GError **error)
{
  g_autofree char *where = query_where(p, FALSE);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, policy_type, organization_name, COUNT(DISTINCT report_key), "
      "SUM(total_successful_session_count), SUM(total_failure_session_count) FROM policy "
      "WHERE %s GROUP BY policy_domain, policy_type, organization_name ORDER BY 1, 2, 3",
      where);
  return query_groups(db, p, sql, 3, TRUE, error);
}

GPtrArray *
query_failures_by_mx(TrDb *db, const QueryParams *p, GError **error)
{
  g_autofree char *where = query_where(p, TRUE);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, result_type, COALESCE(receiving_mx_hostname, ''), "
      "COUNT(DISTINCT report_key), 0, SUM(failed_session_count) FROM failure_detail "
      "WHERE %s GROUP BY policy_domain, result_type, COALESCE(receiving_mx_hostname, '') "
      "ORDER BY 1, 2, 3",
      where);
  return query_groups(db, p, sql, 3, FALSE, error);
}

GPtrArray *
query_sessions_by_day(TrDb *db, const QueryParams *p, GError **error)
{
  g_autofree char *where = query_where(p, FALSE);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, begin_day, COUNT(DISTINCT report_key), "
      "SUM(total_successful_session_count), SUM(total_failure_session_count) FROM policy "
      "WHERE %s GROUP BY policy_domain, begin_day ORDER BY 1, 2",
      where);
  return query_groups(db, p, sql, 2, TRUE, error);
}

GPtrArray *
query_failures_by_day(TrDb *db, const QueryParams *p, GError **error)
{
  /* failure_detail has no begin_day: the day is begin_epoch's, as for the report
   * (begin_day is its UTC day); the SELECT gives the day number, made a date below. */
  g_autofree char *where = query_where(p, TRUE);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, result_type, COUNT(DISTINCT report_key), "
      "begin_epoch - (begin_epoch %% 86400), SUM(failed_session_count) FROM failure_detail "
      "WHERE %s GROUP BY policy_domain, result_type, begin_epoch - (begin_epoch %% 86400) "
      "ORDER BY 1, 4, 2",
      where);
  g_autoptr(GPtrArray) rows = query_groups(db, p, sql, 2, TRUE, error);
  if (rows == NULL)
    return NULL;
  for (guint i = 0; i < rows->len; i++) {
    /* (domain, result type, reports, day epoch, failed) -> (domain, day, result type) */
    QueryGroup *g = rows->pdata[i];
    char day[11];
    db_format_day(g->successful_sessions, day);
    g_free(g->key[2]);
    g->key[2] = g->key[1];
    g->key[1] = g_strdup(day);
    g->successful_sessions = -1;
  }
  return g_steal_pointer(&rows);
}

GPtrArray *
query_deviations(TrDb *db, const QueryParams *p, GError **error)
{
  g_autofree char *where = query_where(p, FALSE);
  g_autofree char *sql = g_strdup_printf(
      "SELECT pd.policy_domain, COALESCE(d.slug, d.deviation), MIN(d.deviation), "
      "COUNT(DISTINCT d.report_key), 0, 0 FROM deviation d "
      "JOIN (SELECT DISTINCT report_key, policy_domain FROM policy WHERE %s) pd "
      "ON pd.report_key = d.report_key "
      "GROUP BY pd.policy_domain, COALESCE(d.slug, d.deviation) ORDER BY 1, 4 DESC, 2",
      where);
  return query_groups(db, p, sql, 3, FALSE, error);
}

GPtrArray *
query_failure_notes(TrDb *db, const QueryParams *p, GError **error)
{
  g_autofree char *where = query_where(p, TRUE);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, COALESCE(failure_reason_code, ''), "
      "COALESCE(additional_information, ''), COUNT(DISTINCT report_key), 0, "
      "SUM(failed_session_count) FROM failure_detail WHERE %s AND "
      "(failure_reason_code IS NOT NULL OR additional_information IS NOT NULL) "
      "GROUP BY policy_domain, COALESCE(failure_reason_code, ''), "
      "COALESCE(additional_information, '') ORDER BY 1, 6 DESC, 2, 3",
      where);
  return query_groups(db, p, sql, 3, FALSE, error);
}
