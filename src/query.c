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
  if (s->verdicts)
    g_ptr_array_unref(s->verdicts);
  g_free(s);
}

/* ---- statements: the filters, their bindings, and the one step loop ----------- */

/* Append @head, the placeholders "$n, $n+1, ..." for each of @vals (numbered on from
 * *@n), then @tail: the " AND column IN (...)" of a filter. */
static void
query_append_in(GString *s, const char *head, const char *const *vals, int *n,
                const char *tail)
{
  g_string_append(s, head);
  for (guint i = 0; vals[i] != NULL; i++)
    g_string_append_printf(s, "%s$%d", i ? ", " : "", (*n)++);
  g_string_append(s, tail);
}

/* The window and the filters as a WHERE condition: "begin_epoch >= $1 AND begin_epoch
 * < $2", then " AND policy_domain IN ($3, ...)" and the organizations after them (a
 * column of policy; failure_detail has it through its report). @with_since: FALSE
 * for a statement over everything before the window's end ($1 is left out). @scan:
 * NULL, or the window covers most of the index and reading the table in order is
 * cheaper: the prefix of begin_epoch that keeps the planner off its index then
 * (db_scan_hint()). */
static char *
query_where(const QueryParams *p, gboolean detail, gboolean with_since, const char *scan)
{
  g_autoptr(GString) s = g_string_new(NULL);
  if (with_since)
    g_string_append_printf(s, "%sbegin_epoch >= $1 AND ", scan != NULL ? scan : "");
  g_string_append_printf(s, "%sbegin_epoch < $2", scan != NULL ? scan : "");
  /* A narrow window: its reports through report_begin, their rows by their clustered
   * key (report_rowid), instead of a scan of every row for its begin_epoch. */
  if (with_since && !scan)
    g_string_append(s, " AND report_rowid IN (SELECT report_rowid FROM report WHERE "
                       "begin_epoch >= $1 AND begin_epoch < $2)");
  int n = 3;
  if (p->domains != NULL && p->domains[0] != NULL)
    query_append_in(s, " AND policy_domain IN (", p->domains, &n, ")");
  if (p->orgs != NULL && p->orgs[0] != NULL)
    query_append_in(s,
                    detail ? " AND report_rowid IN (SELECT report_rowid FROM report WHERE "
                             "organization_name IN ("
                           : " AND organization_name IN (",
                    p->orgs, &n, detail ? "))" : ")");
  if (p->dkim != NULL && p->dkim[0] != NULL)
    query_append_in(s, " AND report_rowid IN (SELECT report_rowid FROM report WHERE dkim IN (",
                    p->dkim, &n, "))");
  return g_string_free(g_steal_pointer(&s), FALSE);
}

/* Prepare @sql (its condition from query_where()) and bind the window and filters. */
static TrDbStmt *
query_prepare(TrDb *db, const QueryParams *p, const char *sql, gboolean with_since,
              GError **error)
{
  TrDbStmt *st = db_prepare(db, sql, error);
  if (st == NULL)
    return NULL;
  if (with_since)
    db_bind_int64(st, 1, p->since);
  db_bind_int64(st, 2, p->until);
  int n = 3;
  for (guint i = 0; p->domains != NULL && p->domains[i] != NULL; i++) {
    g_autofree char *lower = g_ascii_strdown(p->domains[i], -1);
    db_bind_text(st, n++, lower);
  }
  for (guint i = 0; p->orgs != NULL && p->orgs[i] != NULL; i++)
    db_bind_text(st, n++, p->orgs[i]);
  for (guint i = 0; p->dkim != NULL && p->dkim[i] != NULL; i++)
    db_bind_text(st, n++, p->dkim[i]);
  return st;
}

/* A text column, "" for NULL. */
static const char *
query_text(TrDbStmt *st, int col)
{
  const char *v = db_col_text(st, col);
  return v != NULL ? v : "";
}

/* Step @st to its end, handing each row to @row. FALSE + DB_ERROR. */
typedef void (*QueryRowFn)(TrDbStmt *st, gpointer data);
static gboolean
query_each(TrDbStmt *st, QueryRowFn row, gpointer data, GError **error)
{
  DbStep s;
  while ((s = db_step(st, error)) == DB_STEP_ROW)
    row(st, data);
  return s != DB_STEP_ERROR;
}

/* The rows of @st made into elements by @make: (transfer full) or NULL + DB_ERROR. */
typedef gpointer (*QueryMakeFn)(TrDbStmt *st, gpointer data);
typedef struct {
  GPtrArray *rows;
  QueryMakeFn make;
  gpointer data;
} QueryCollect;

static void
query_collect_row(TrDbStmt *st, gpointer data)
{
  QueryCollect *c = data;
  g_ptr_array_add(c->rows, c->make(st, c->data));
}

static GPtrArray *
query_collect(TrDbStmt *st, QueryMakeFn make, gpointer data, GDestroyNotify free_fn,
              GError **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(free_fn);
  QueryCollect c = { rows, make, data };
  if (st == NULL || !query_each(st, query_collect_row, &c, error))
    return NULL;
  return g_steal_pointer(&rows);
}

/* Rows of (name, reports, successful, failed) into QueryCount*; @data: TRUE when the
 * statement has successful sessions (else -1). */
static gpointer
query_count_row(TrDbStmt *st, gpointer data)
{
  QueryCount *c = g_new0(QueryCount, 1);
  c->name = g_strdup(query_text(st, 0));
  c->reports = db_col_int64(st, 1);
  c->successful_sessions = GPOINTER_TO_INT(data) ? db_col_int64(st, 2) : -1;
  c->failed_sessions = db_col_int64(st, 3);
  return c;
}

static gint
query_str_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
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

/* ---- tallies: counts by (group, name) without an allocation per row ------------ */

/* One counted (group, name): the group is a domain's number (or a policy index), the
 * name a string of the map's chunk; what n[] counts is the user's. */
typedef struct {
  guint32 name_hash;          /* query_name_hash() */
  guint32 group;
  const char *name;
  gint64 n[4];
} QueryTally;

/* Open addressing over an array of tallies: the entries are numbered in the order
 * they came (a domain's number is its entry's), the strings copied once into a chunk. */
typedef struct {
  GArray *items;              /* QueryTally */
  guint64 *slots;             /* hash << 32 | entry number + 1; 0 = free */
  guint32 mask;               /* slots - 1 (a power of two less one) */
  GStringChunk *strings;
} QueryTallies;

#define QUERY_TALLY(t, i) (&g_array_index((t)->items, QueryTally, (i)))

static void
query_tallies_init(QueryTallies *t)
{
  t->items = g_array_sized_new(FALSE, FALSE, sizeof(QueryTally), 256);
  t->mask = 511;
  t->slots = g_new0(guint64, t->mask + 1);
  t->strings = g_string_chunk_new(1 << 16);
}

static void
query_tallies_clear(QueryTallies *t)
{
  g_array_unref(t->items);
  g_free(t->slots);
  g_string_chunk_free(t->strings);
}

static guint32
query_name_hash(const char *name)
{
  guint32 h = 2166136261u;
  for (const guchar *c = (const guchar *) name; *c; c++)
    h = (h ^ *c) * 16777619u;
  return h;
}

/* The hash of (@group, a name of hash @name_hash): a name's hash is kept with its
 * entry, so that a merge of tallies (a group renumbered) does not read the name again. */
static inline guint32
query_tally_hash(guint32 group, guint32 name_hash)
{
  guint32 h = name_hash ^ (group * 2654435761u);
  h ^= h >> 15;
  h *= 0x2c1b3c6du;
  h ^= h >> 12;
  return h;
}

static void
query_tallies_grow(QueryTallies *t)
{
  g_free(t->slots);
  t->mask = t->mask * 2 + 1;
  t->slots = g_new0(guint64, t->mask + 1);
  for (guint i = 0; i < t->items->len; i++) {
    const QueryTally *e = QUERY_TALLY(t, i);
    guint32 h = query_tally_hash(e->group, e->name_hash);
    guint32 s = h & t->mask;
    while (t->slots[s] != 0)
      s = (s + 1) & t->mask;
    t->slots[s] = (guint64) h << 32 | (i + 1);
  }
}

/* The number of the entry (@group, @name), @name_hash its query_name_hash(); a new one
 * (zero counts, *added TRUE when given) unless @find_only, which gives -1 for one not
 * there. A new entry's name is copied into the chunk, or with @keep_name is @name
 * itself (it must then outlive the tallies). */
static gint
query_tally_h(QueryTallies *t, guint32 group, const char *name, guint32 name_hash,
              gboolean keep_name, gboolean find_only, gboolean *added)
{
  guint32 h = query_tally_hash(group, name_hash);
  guint32 s = h & t->mask;
  if (added != NULL)
    *added = FALSE;
  for (; t->slots[s] != 0; s = (s + 1) & t->mask) {
    if ((guint32) (t->slots[s] >> 32) != h)
      continue;             /* told apart without reading the entry */
    gint i = (gint) (guint32) t->slots[s] - 1;
    QueryTally *e = QUERY_TALLY(t, i);
    if (e->group == group && strcmp(e->name, name) == 0)
      return i;
  }
  if (find_only)
    return -1;
  QueryTally e = { name_hash, group,
                   keep_name ? name : g_string_chunk_insert(t->strings, name), { 0, 0, 0, 0 } };
  g_array_append_val(t->items, e);
  gint i = (gint) t->items->len - 1;
  t->slots[s] = (guint64) h << 32 | ((guint32) i + 1);
  if (added != NULL)
    *added = TRUE;
  if ((guint32) t->items->len * 2 > t->mask)
    query_tallies_grow(t);
  return i;
}

static gint
query_tally(QueryTallies *t, guint32 group, const char *name, gboolean find_only,
            gboolean *added)
{
  return query_tally_h(t, group, name, query_name_hash(name), FALSE, find_only, added);
}

/* The entry of (@group, @name), made when new: valid until the next new entry. */
static QueryTally *
query_tally_get(QueryTallies *t, guint32 group, const char *name, gboolean *added)
{
  gint i = query_tally(t, group, name, FALSE, added);
  return QUERY_TALLY(t, i);
}

/* ---- the summary ------------------------------------------------------------- */

/* The summary is two passes over the window, the policy rows and the failure-detail
 * rows, counted here by domain in tallies (GROUP BY statements would sort every row
 * again for each question), then a look-up of each failing result type's first day.
 * The policies, kept in key order (report_rowid, policy_index), give the distinct
 * reports without a look-up (a report's policies are together) and join each failure
 * detail to its policy: by a cursor walking them when the details come in key order
 * too, else by a binary search. The detail's domain, window start and filters are its
 * policy's, never read again from the detail rows. The SQLite index gives both passes
 * in key order at no cost (the tables' clustered key); PostgreSQL would sort every row
 * for it, so there the rows come as the tables hold them and the policies are sorted
 * here, once, when they did not come in order (db_key_order_free()). On two
 * processors (SQLite) the window's reports are split in two ranges of report_rowid,
 * each read in both passes on a thread and a connection of its own (a report's rows
 * are all in one range), and the two parts' tallies added up before the lists are
 * made. */
typedef struct {
  gint64 rowid, index;        /* the policy's key */
  gint64 failed;              /* its summary's failed sessions */
  gint64 details;             /* the sum of its failure details' counts */
  gint64 begin;               /* its report's start */
  guint32 domain;             /* its domain's number */
  guint32 org;                /* its entry in the (domain, organization) tallies */
  guint32 day;                /* its entry in the (domain, day) tallies */
  gboolean has_details;
} QueryPolicy;

static gint
query_policy_cmp(gconstpointer a, gconstpointer b)
{
  const QueryPolicy *x = a, *y = b;
  if (x->rowid != y->rowid)
    return x->rowid < y->rowid ? -1 : 1;
  if (x->index != y->index)
    return x->index < y->index ? -1 : 1;
  return 0;
}

typedef struct {
  const QueryParams *p;
  GPtrArray *domains;         /* QueryDomain*, numbered as the tallies' domains */
  GArray *newest;             /* gint64 per domain: the newest report's start */
  GArray *policies;           /* QueryPolicy, in key order after the policy pass */
  gboolean unordered;         /* ... which did not give them in key order */
  GArray *report_domains;     /* guint32: the domains of the current report so far */
  gint64 reports;             /* distinct reports */
  guint cursor;               /* the detail pass's place in policies */
  QueryTallies dom;           /* (0, domain): the domains, numbered */
  QueryTallies orgs;          /* (domain, organization): n = reports, successful, failed */
  QueryTallies days;          /* (domain, day): n[0] = reports */
  QueryTallies patterns;      /* (domain, mx_hosts of a policy) */
  QueryTallies rts;           /* (domain, result type): n = failed, first, last start */
  QueryTallies mx;            /* (domain, receiving MX): n[0] = failed */
  QueryTallies ips;           /* (domain, sending IP): n[0] = failed */
  gint last_dom;              /* the previous row's domain entry, or -1 */
  gint last_mx;               /* the previous detail's mx entry, or -1 */
} QueryScan;

static gint
query_scan_domain(QueryScan *sc, const char *name, gboolean find_only)
{
  if (sc->last_dom >= 0 && strcmp(QUERY_TALLY(&sc->dom, sc->last_dom)->name, name) == 0)
    return sc->last_dom;
  gboolean added;
  gint i = query_tally(&sc->dom, 0, name, find_only, &added);
  if (added) {
    QueryDomain *d = g_new0(QueryDomain, 1);
    d->policy_domain = g_strdup(name);
    g_ptr_array_add(sc->domains, d);
    gint64 zero = G_MININT64;
    g_array_append_val(sc->newest, zero);
  }
  if (i >= 0)
    sc->last_dom = i;
  return i;
}

/* SELECT policy_domain, report_rowid, policy_index, organization_name, begin_day,
 * mx_hosts, total_successful_session_count, total_failure_session_count, begin_epoch
 * ... [ORDER BY report_rowid, policy_index] */
static void
query_scan_policy(TrDbStmt *st, gpointer data)
{
  QueryScan *sc = data;
  gint di = query_scan_domain(sc, query_text(st, 0), FALSE);
  QueryDomain *d = sc->domains->pdata[di];
  gint64 good = db_col_int64(st, 6), bad = db_col_int64(st, 7), begin = db_col_int64(st, 8);
  d->successful_sessions += good;
  d->failed_sessions += bad;
  gint org = query_tally(&sc->orgs, (guint32) di, query_text(st, 3), FALSE, NULL);
  QUERY_TALLY(&sc->orgs, org)->n[1] += good;
  QUERY_TALLY(&sc->orgs, org)->n[2] += bad;
  gint day = query_tally(&sc->days, (guint32) di, query_text(st, 4), FALSE, NULL);
  const char *mxh = query_text(st, 5);
  if (mxh[0] != '\0')
    query_tally(&sc->patterns, (guint32) di, mxh, FALSE, NULL);
  QueryPolicy pol = { db_col_int64(st, 1), db_col_int64(st, 2), bad, 0, begin, (guint32) di,
                      (guint32) org, (guint32) day, FALSE };
  if (sc->policies->len > 0 &&
      query_policy_cmp(&g_array_index(sc->policies, QueryPolicy, sc->policies->len - 1),
                       &pol) > 0)
    sc->unordered = TRUE;
  g_array_append_val(sc->policies, pol);
}

/* After the policy pass: the policies in key order, then the distinct reports of the
 * window and of each domain, with their organization's and day's report counts and
 * the domain's newest start (a report's policies are together in key order). */
static void
query_scan_reports(QueryScan *sc)
{
  if (sc->unordered)
    g_array_sort(sc->policies, query_policy_cmp);
  for (guint i = 0; i < sc->policies->len; i++) {
    const QueryPolicy *pol = &g_array_index(sc->policies, QueryPolicy, i);
    if (i == 0 || pol[-1].rowid != pol->rowid) {
      sc->reports++;
      g_array_set_size(sc->report_domains, 0);
    }
    gboolean new_report = TRUE;
    for (guint k = 0; new_report && k < sc->report_domains->len; k++)
      new_report = g_array_index(sc->report_domains, guint32, k) != pol->domain;
    if (!new_report)
      continue;
    g_array_append_val(sc->report_domains, pol->domain);
    ((QueryDomain *) sc->domains->pdata[pol->domain])->reports++;
    QUERY_TALLY(&sc->orgs, pol->org)->n[0]++;
    QUERY_TALLY(&sc->days, pol->day)->n[0]++;
    gint64 *newest = &g_array_index(sc->newest, gint64, pol->domain);
    *newest = MAX(*newest, pol->begin);
  }
}

/* The first of the @len policies at @base from @from on that is not before @key (the
 * policies are in key order, and so are those before @from). A few steps first: with
 * the details in key order too, it is the last one's policy or one soon after. */
static guint
query_policy_find(const QueryPolicy *base, guint len, guint from, const QueryPolicy *key)
{
  guint lo = from, hi = len;
  for (guint k = 0; k < 8 && lo < hi; k++, lo++)
    if (query_policy_cmp(&base[lo], key) >= 0)
      return lo;
  while (lo < hi) {
    guint mid = lo + (hi - lo) / 2;
    if (query_policy_cmp(&base[mid], key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* SELECT report_rowid, policy_index, result_type, receiving_mx_hostname, sending_mta_ip,
 * failed_session_count ... [ORDER BY report_rowid, policy_index] */
static void
query_scan_detail(TrDbStmt *st, gpointer data)
{
  QueryScan *sc = data;
  QueryPolicy key = { .rowid = db_col_int64(st, 0), .index = db_col_int64(st, 1) };
  QueryPolicy *base = (QueryPolicy *) (gpointer) sc->policies->data;
  guint len = sc->policies->len, from = sc->cursor;
  if (from > 0 && query_policy_cmp(&base[from - 1], &key) >= 0)
    from = 0;             /* behind the cursor: the details are not in key order */
  guint i = query_policy_find(base, len, from, &key);
  sc->cursor = i;
  if (i == len || query_policy_cmp(&base[i], &key) != 0)
    return;               /* a policy outside the window or the filters */
  QueryPolicy *pt = &base[i];
  gint64 n = db_col_int64(st, 5);
  pt->details += n;
  pt->has_details = TRUE;
  /* Counted for every domain: a domain's failed sessions are known only once every
   * part of the scan is in (query_scan_merge()); a domain without failures shows no
   * details, which query_scan_finish() leaves out. */
  gboolean added;
  QueryTally *t = query_tally_get(&sc->rts, pt->domain, query_text(st, 2), &added);
  t->n[0] += n;
  t->n[1] = added ? pt->begin : MIN(t->n[1], pt->begin);
  t->n[2] = added ? pt->begin : MAX(t->n[2], pt->begin);
  /* A policy's details are mostly on one receiving MX: the previous entry first. */
  const char *mx = query_text(st, 3);
  gint mi = sc->last_mx;
  if (mi < 0 || QUERY_TALLY(&sc->mx, mi)->group != pt->domain ||
      strcmp(QUERY_TALLY(&sc->mx, mi)->name, mx) != 0)
    mi = sc->last_mx = query_tally(&sc->mx, pt->domain, mx, FALSE, NULL);
  QUERY_TALLY(&sc->mx, mi)->n[0] += n;
  query_tally_get(&sc->ips, pt->domain, query_text(st, 4), NULL)->n[0] += n;
}

static QueryCount *
query_count_new(const char *name, gint64 reports, gint64 successful, gint64 failed)
{
  QueryCount *c = g_new0(QueryCount, 1);
  c->name = g_strdup(name);
  c->reports = reports;
  c->successful_sessions = successful;
  c->failed_sessions = failed;
  return c;
}

/* Is sending IP tally @a before @b (most failed first, then by name)? */
static gboolean
query_tally_before(const QueryTally *a, const QueryTally *b)
{
  if (a->n[0] != b->n[0])
    return a->n[0] > b->n[0];
  return strcmp(a->name, b->name) < 0;
}

/* The top QUERY_TOP_IPS sending IPs of each failing domain, without sorting them all. */
static void
query_scan_top_ips(QueryScan *sc)
{
  guint nd = sc->domains->len;
  g_autofree gint *top = g_new(gint, (gsize) nd * QUERY_TOP_IPS);
  g_autofree guint *ntop = g_new0(guint, nd);
  for (guint i = 0; i < sc->ips.items->len; i++) {
    const QueryTally *e = QUERY_TALLY(&sc->ips, i);
    gint *t = top + (gsize) e->group * QUERY_TOP_IPS;
    guint *n = &ntop[e->group];
    guint at = *n;
    while (at > 0 && query_tally_before(e, QUERY_TALLY(&sc->ips, t[at - 1])))
      at--;
    if (at >= QUERY_TOP_IPS)
      continue;
    guint last = MIN(*n, QUERY_TOP_IPS - 1);
    memmove(t + at + 1, t + at, (last - at) * sizeof *t);
    t[at] = (gint) i;
    if (*n < QUERY_TOP_IPS)
      (*n)++;
  }
  for (guint di = 0; di < nd; di++) {
    QueryDomain *d = sc->domains->pdata[di];
    if (d->failed_sessions <= 0)
      continue;
    d->sending_ips = g_ptr_array_new_with_free_func(query_count_free);
    for (guint k = 0; k < ntop[di]; k++) {
      const QueryTally *e = QUERY_TALLY(&sc->ips, top[(gsize) di * QUERY_TOP_IPS + k]);
      g_ptr_array_add(d->sending_ips, query_count_new(e->name, 0, -1, e->n[0]));
    }
  }
}

/* The first start of each failing result type (@types: NULL for one of a domain
 * without failures) before the window's end, where the window does not hold it: one
 * index look-up per type (failure_domain_type), or with an organization filter one
 * grouped statement. */
static gboolean
query_scan_first_seen(TrDb *db, const QueryParams *p, QueryScan *sc,
                      QueryResultType **types, GError **error)
{
  if (p->orgs == NULL || p->orgs[0] == NULL) {
    g_autoptr(TrDbStmt) st = db_prepare(
        db,
        "SELECT MIN(begin_epoch) FROM failure_detail WHERE policy_domain = $1 AND "
        "result_type = $2 AND begin_epoch < $3",
        error);
    if (st == NULL)
      return FALSE;
    for (guint i = 0; i < sc->rts.items->len; i++) {
      const QueryTally *e = QUERY_TALLY(&sc->rts, i);
      if (types[i] == NULL)
        continue;
      db_reset(st);
      db_bind_text(st, 1, QUERY_TALLY(&sc->dom, e->group)->name);
      db_bind_text(st, 2, e->name);
      db_bind_int64(st, 3, p->since);
      DbStep s = db_step(st, error);
      if (s == DB_STEP_ERROR)
        return FALSE;
      if (s == DB_STEP_ROW && !db_col_is_null(st, 0))
        types[i]->first_epoch = MIN(types[i]->first_epoch, db_col_int64(st, 0));
    }
    return TRUE;
  }
  /* Before the window's start, with the filters. */
  g_autofree char *where = query_where(p, TRUE, FALSE, NULL);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, result_type, MIN(begin_epoch) FROM failure_detail "
      "WHERE begin_epoch < $1 AND %s GROUP BY policy_domain, result_type",
      where);
  g_autoptr(TrDbStmt) st = query_prepare(db, p, sql, TRUE, error);
  DbStep s;
  while (st != NULL && (s = db_step(st, error)) == DB_STEP_ROW) {
    gint di = query_tally(&sc->dom, 0, query_text(st, 0), TRUE, NULL);
    gint ti = di < 0 ? -1 : query_tally(&sc->rts, (guint32) di, query_text(st, 1), TRUE, NULL);
    if (ti >= 0 && types[ti] != NULL)
      types[ti]->first_epoch = MIN(types[ti]->first_epoch, db_col_int64(st, 2));
  }
  return st != NULL && s != DB_STEP_ERROR;
}

/* One part of the scan: the reports of a range of report_rowid (all of them when the
 * scan is not split), read on its own connection into its own tallies. */
typedef struct {
  TrDb *db;                   /* (transfer none) */
  const QueryParams *p;
  gboolean scan;              /* the window is read in table order */
  char *range;                /* the part's report_rowid condition, or "" */
  char *sql_policy, *sql_detail;
  gboolean detail_bound;      /* sql_detail has the window's placeholders */
  QueryScan sc;
  GPtrArray *verdicts;        /* QueryCount* per trust verdict, or NULL: not asked */
  GError *error;
  gboolean ok;
} QueryPart;

static gboolean query_verdicts_count(TrDb *db, const QueryParams *p, gboolean scan,
                                     const char *range, GPtrArray *rows, GError **error);

static void
query_scan_init(QueryScan *sc, const QueryParams *p, GPtrArray *domains)
{
  memset(sc, 0, sizeof *sc);
  sc->p = p;
  sc->domains = domains;
  sc->newest = g_array_new(FALSE, FALSE, sizeof(gint64));
  sc->policies = g_array_sized_new(FALSE, FALSE, sizeof(QueryPolicy), 1024);
  sc->report_domains = g_array_new(FALSE, FALSE, sizeof(guint32));
  QueryTallies *all[] = { &sc->dom, &sc->orgs, &sc->days, &sc->patterns, &sc->rts, &sc->mx,
                          &sc->ips };
  for (gsize i = 0; i < G_N_ELEMENTS(all); i++)
    query_tallies_init(all[i]);
  sc->last_dom = -1;
  sc->last_mx = -1;
}

static void
query_scan_clear(QueryScan *sc)
{
  QueryTallies *all[] = { &sc->dom, &sc->orgs, &sc->days, &sc->patterns, &sc->rts, &sc->mx,
                          &sc->ips };
  for (gsize i = 0; i < G_N_ELEMENTS(all); i++)
    query_tallies_clear(all[i]);
  g_array_unref(sc->newest);
  g_array_unref(sc->policies);
  g_array_unref(sc->report_domains);
}

/* The part's statements: the window and filters, and when @ranged the report_rowid
 * range [@from, @to) (G_MININT64 / G_MAXINT64: open). */
static void
query_part_sql(QueryPart *part, TrDb *db, gboolean scan, gboolean ranged, gint64 from,
               gint64 to)
{
  const QueryParams *p = part->p;
  part->scan = scan;
  if (!ranged)
    part->range = g_strdup("");
  else if (from == G_MININT64)
    part->range = g_strdup_printf("report_rowid < %" G_GINT64_FORMAT, to);
  else
    part->range = g_strdup_printf("report_rowid >= %" G_GINT64_FORMAT, from);
  const char *range = part->range;
  const char *hint = scan ? db_scan_hint(db) : NULL;
  g_autofree char *where_policy = query_where(p, FALSE, TRUE, hint);
  /* The details need no condition of their own (the join to the policies applies the
   * window and the filters) but a cheaper set of rows to read: the window's reports,
   * or with a filter the filter too. A scan of the whole table reads no more column
   * than the join needs. */
  gboolean filtered = (p->domains != NULL && p->domains[0] != NULL) ||
                      (p->orgs != NULL && p->orgs[0] != NULL) ||
                      (p->dkim != NULL && p->dkim[0] != NULL);
  g_autofree char *where_detail =
      filtered ? query_where(p, TRUE, TRUE, hint)
      : scan   ? NULL
               : g_strdup("report_rowid IN (SELECT report_rowid FROM report WHERE "
                          "begin_epoch >= $1 AND begin_epoch < $2)");
  part->detail_bound = where_detail != NULL;
  const char *order = db_key_order_free(db) ? " ORDER BY report_rowid, policy_index" : "";
  part->sql_policy = g_strdup_printf(
      "SELECT policy_domain, report_rowid, policy_index, organization_name, begin_day, "
      "mx_hosts, total_successful_session_count, total_failure_session_count, begin_epoch "
      "FROM policy WHERE %s%s%s%s",
      where_policy, ranged ? " AND " : "", range, order);
  part->sql_detail = g_strdup_printf(
      "SELECT report_rowid, policy_index, result_type, receiving_mx_hostname, "
      "sending_mta_ip, failed_session_count FROM failure_detail%s%s%s%s%s",
      where_detail != NULL || ranged ? " WHERE " : "",
      where_detail != NULL ? where_detail : "",
      where_detail != NULL && ranged ? " AND " : "", range, order);
}

/* The part's two passes, its policies whose details do not add up, and when asked its
 * reports' trust verdicts. */
static gboolean
query_part_run(QueryPart *part)
{
  QueryScan *sc = &part->sc;
  g_autoptr(TrDbStmt) st = query_prepare(part->db, part->p, part->sql_policy, TRUE,
                                         &part->error);
  if (st == NULL || !query_each(st, query_scan_policy, sc, &part->error))
    return FALSE;
  query_scan_reports(sc);
  g_clear_pointer(&st, db_stmt_free);
  st = part->detail_bound ? query_prepare(part->db, part->p, part->sql_detail, TRUE, &part->error)
                          : db_prepare(part->db, part->sql_detail, &part->error);
  if (st == NULL || !query_each(st, query_scan_detail, sc, &part->error))
    return FALSE;
  for (guint i = 0; i < sc->policies->len; i++) {
    const QueryPolicy *e = &g_array_index(sc->policies, QueryPolicy, i);
    if (e->has_details && e->details != e->failed)
      ((QueryDomain *) sc->domains->pdata[e->domain])->detail_mismatches++;
  }
  return part->verdicts == NULL ||
         query_verdicts_count(part->db, part->p, part->scan, part->range, part->verdicts,
                              &part->error);
}

static gpointer
query_part_thread(gpointer data)
{
  QueryPart *part = data;
  part->ok = query_part_run(part);
  return NULL;
}

/* Add the counts of part @b to part @a, @b's domains numbered as @a's (@a's new
 * entries keep the names of @b's: @b must outlive @a's use). The result is
 * the same as one scan of both ranges: sums, the first and last start of a result type,
 * the newest report; every list made from them is sorted on a unique key, so the order
 * in which the entries came does not show. */
static void
query_scan_merge(QueryScan *a, const QueryScan *b)
{
  g_autofree guint32 *map = g_new(guint32, MAX(b->domains->len, 1));
  for (guint i = 0; i < b->domains->len; i++) {
    const QueryDomain *bd = b->domains->pdata[i];
    gint ai = query_scan_domain(a, bd->policy_domain, FALSE);
    QueryDomain *ad = a->domains->pdata[ai];
    map[i] = (guint32) ai;
    ad->reports += bd->reports;
    ad->successful_sessions += bd->successful_sessions;
    ad->failed_sessions += bd->failed_sessions;
    ad->detail_mismatches += bd->detail_mismatches;
    gint64 *newest = &g_array_index(a->newest, gint64, ai);
    *newest = MAX(*newest, g_array_index(b->newest, gint64, i));
  }
  a->reports += b->reports;
  QueryTallies *at[] = { &a->orgs, &a->days, &a->patterns, &a->rts, &a->mx, &a->ips };
  const QueryTallies *bt[] = { &b->orgs, &b->days, &b->patterns, &b->rts, &b->mx, &b->ips };
  for (gsize k = 0; k < G_N_ELEMENTS(at); k++) {
    for (guint i = 0; i < bt[k]->items->len; i++) {
      const QueryTally *e = QUERY_TALLY(bt[k], i);
      gboolean added;
      gint ti = query_tally_h(at[k], map[e->group], e->name, e->name_hash, TRUE, FALSE, &added);
      QueryTally *t = QUERY_TALLY(at[k], ti);
      t->n[0] += e->n[0];
      if (at[k] == &a->rts) {   /* failed, first start, last start */
        t->n[1] = added ? e->n[1] : MIN(t->n[1], e->n[1]);
        t->n[2] = added ? e->n[2] : MAX(t->n[2], e->n[2]);
      } else {
        t->n[1] += e->n[1];
        t->n[2] += e->n[2];
        t->n[3] += e->n[3];
      }
    }
  }
}

/* Where to split the window's reports for two parts: the middle of their report_rowid
 * range, or FALSE for one part (one processor, one report or none). */
static gboolean
query_scan_split(TrDb *db, const QueryParams *p, gboolean scan, gint64 *mid, GError **error)
{
  /* Over the whole table, MIN and MAX apart: each is one end of the table's B-tree
   * (together they would be a scan of it). */
  TrDbStmt *st = db_prepare(
      db,
      scan ? "SELECT (SELECT MIN(report_rowid) FROM report), "
             "(SELECT MAX(report_rowid) FROM report)"
           : "SELECT MIN(report_rowid), MAX(report_rowid) FROM report WHERE begin_epoch >= $1 "
             "AND begin_epoch < $2",
      error);
  if (st == NULL)
    return FALSE;
  if (!scan) {
    db_bind_int64(st, 1, p->since);
    db_bind_int64(st, 2, p->until);
  }
  gboolean split = FALSE;
  if (db_step(st, error) == DB_STEP_ROW && !db_col_is_null(st, 0)) {
    gint64 lo = db_col_int64(st, 0), hi = db_col_int64(st, 1);
    split = hi > lo;
    *mid = lo + (hi - lo) / 2 + 1;
  }
  db_stmt_free(st);
  return split;
}

/* The two passes over the window into @parts[0] (whose domains are the summary's): on
 * two processors in two parts, the window's reports split by report_rowid, each read
 * on a connection of its own and then added up. */
static gboolean
query_scan_read(TrDb *db, const QueryParams *p, gboolean scan, QueryPart parts[2],
                GError **error)
{
  gint64 mid = 0;
  g_autoptr(TrDb) db2 = NULL;
  GError *local = NULL;
  if (g_get_num_processors() > 1 && (db2 = db_open_read_again(db, &local)) != NULL &&
      !query_scan_split(db, p, scan, &mid, &local))
    g_clear_pointer(&db2, db_close);
  if (local != NULL) {
    /* One part after all: the same result, on one processor. */
    g_clear_error(&local);
    g_clear_pointer(&db2, db_close);
  }
  gboolean split = db2 != NULL;
  parts[0].db = db;
  parts[1].db = db2;
  query_part_sql(&parts[0], db, scan, split, G_MININT64, mid);
  query_part_sql(&parts[1], db, scan, split, mid, G_MAXINT64);
  GThread *t = split ? g_thread_try_new("tlsrpt-summary", query_part_thread, &parts[1], NULL)
                     : NULL;
  parts[0].ok = query_part_run(&parts[0]);
  if (t != NULL)
    g_thread_join(t);
  else if (split)
    parts[1].ok = query_part_run(&parts[1]);
  for (guint i = 0; i < (split ? 2u : 1u); i++)
    if (!parts[i].ok) {
      g_propagate_error(error, g_steal_pointer(&parts[i].error));
      return FALSE;
    }
  if (split)
    query_scan_merge(&parts[0].sc, &parts[1].sc);
  if (split && parts[0].verdicts != NULL) {
    GPtrArray *a = parts[0].verdicts, *b = parts[1].verdicts;
    for (guint i = 0; i < b->len; i++) {
      QueryCount *c = b->pdata[i], *into = NULL;
      for (guint j = 0; into == NULL && j < a->len; j++)
        if (strcmp(((QueryCount *) a->pdata[j])->name, c->name) == 0)
          into = a->pdata[j];
      if (into != NULL)
        into->reports += c->reports;
      else
        g_ptr_array_add(a, g_ptr_array_steal_index(b, i--));
    }
  }
  return TRUE;
}

/* From the counts of the whole window: per domain its ratio, severity and the lists
 * of a failing one. */
static gboolean
query_scan_finish(TrDb *db, const QueryParams *p, QueryScan *sc, gboolean earlier,
                  GError **error)
{
  g_autofree QueryResultType **types = NULL;
  /* Per domain: ratio, severity, and the lists of the failing ones. */
  for (guint di = 0; di < sc->domains->len; di++) {
    QueryDomain *d = sc->domains->pdata[di];
    gint64 total = d->successful_sessions + d->failed_sessions;
    d->failure_ratio = total > 0 ? (double) d->failed_sessions / (double) total : 0.0;
    d->severity = query_severity(d->successful_sessions, d->failed_sessions, p->warn, p->crit);
    db_format_day(g_array_index(sc->newest, gint64, di), d->last_report);
    if (d->failed_sessions > 0) {
      d->result_types = g_ptr_array_new_with_free_func(query_result_type_free);
      d->mx_hosts = g_ptr_array_new_with_free_func(query_count_free);
      d->organizations_list = g_ptr_array_new_with_free_func(query_count_free);
      d->mx_patterns = g_ptr_array_new_with_free_func(g_free);
    }
  }
  for (guint i = 0; i < sc->orgs.items->len; i++) {
    const QueryTally *e = QUERY_TALLY(&sc->orgs, i);
    QueryDomain *d = sc->domains->pdata[e->group];
    d->organizations++;
    if (d->organizations_list != NULL)
      g_ptr_array_add(d->organizations_list, query_count_new(e->name, e->n[0], e->n[1], e->n[2]));
  }
  for (guint i = 0; i < sc->mx.items->len; i++) {
    const QueryTally *e = QUERY_TALLY(&sc->mx, i);
    QueryDomain *d = sc->domains->pdata[e->group];
    if (d->mx_hosts != NULL)
      g_ptr_array_add(d->mx_hosts, query_count_new(e->name, 0, -1, e->n[0]));
  }
  for (guint i = 0; i < sc->patterns.items->len; i++) {
    const QueryTally *e = QUERY_TALLY(&sc->patterns, i);
    QueryDomain *d = sc->domains->pdata[e->group];
    if (d->mx_patterns == NULL)
      continue;
    g_auto(GStrv) parts = g_strsplit(e->name, "|", -1);
    for (guint k = 0; parts[k] != NULL; k++) {
      g_autofree char *mx = g_ascii_strdown(g_strstrip(parts[k]), -1);
      gboolean seen = mx[0] == '\0';
      for (guint j = 0; !seen && j < d->mx_patterns->len; j++)
        seen = strcmp(d->mx_patterns->pdata[j], mx) == 0;
      if (!seen)
        g_ptr_array_add(d->mx_patterns, g_steal_pointer(&mx));
    }
  }
  query_scan_top_ips(sc);

  /* The result types, their first day (before the window too, when the index has
   * earlier reports) and the clean reports after their last day. */
  types = g_new0(QueryResultType *, sc->rts.items->len + 1);
  for (guint i = 0; i < sc->rts.items->len; i++) {
    const QueryTally *e = QUERY_TALLY(&sc->rts, i);
    QueryDomain *d = sc->domains->pdata[e->group];
    if (d->result_types == NULL)
      continue;             /* types[i] NULL: a domain without failures */
    QueryResultType *t = g_new0(QueryResultType, 1);
    t->result_type = g_strdup(e->name);
    t->known = result_type_find(e->name) != NULL;
    t->failed_sessions = e->n[0];
    t->first_epoch = e->n[1];
    db_format_day(e->n[2], t->last_seen);
    g_ptr_array_add(d->result_types, t);
    types[i] = t;
  }
  if (earlier && !query_scan_first_seen(db, p, sc, types, error))
    return FALSE;
  for (guint i = 0; i < sc->rts.items->len; i++) {
    if (types[i] == NULL)
      continue;
    db_format_day(types[i]->first_epoch, types[i]->first_seen);
    types[i]->new_in_window = types[i]->first_epoch >= p->since;
  }
  for (guint i = 0; i < sc->days.items->len; i++) {
    const QueryTally *e = QUERY_TALLY(&sc->days, i);
    const QueryDomain *d = sc->domains->pdata[e->group];
    for (guint k = 0; d->result_types != NULL && k < d->result_types->len; k++) {
      QueryResultType *t = d->result_types->pdata[k];
      if (strcmp(e->name, t->last_seen) > 0)
        t->clean_reports_since += e->n[0];
    }
  }
  for (guint di = 0; di < sc->domains->len; di++) {
    QueryDomain *d = sc->domains->pdata[di];
    if (d->result_types == NULL)
      continue;
    g_ptr_array_sort(d->result_types, query_rt_cmp);
    g_ptr_array_sort(d->mx_hosts, query_count_cmp);
    g_ptr_array_sort(d->organizations_list, query_count_cmp);
    g_ptr_array_sort(d->mx_patterns, query_str_cmp);
  }
  return TRUE;
}

static gint query_verdict_cmp(gconstpointer a, gconstpointer b);

/* The scan of the window into @sum, with its verdicts when @verdicts. */
static gboolean
query_scan(TrDb *db, const QueryParams *p, QuerySummary *sum, gboolean scan, gboolean earlier,
           gboolean verdicts, GError **error)
{
  QueryPart parts[2];
  memset(parts, 0, sizeof parts);
  for (guint i = 0; i < 2; i++) {
    parts[i].p = p;
    query_scan_init(&parts[i].sc, p,
                    i == 0 ? sum->domains : g_ptr_array_new_with_free_func(query_domain_free));
    if (verdicts)
      parts[i].verdicts = g_ptr_array_new_with_free_func(query_count_free);
  }
  gboolean ok = query_scan_read(db, p, scan, parts, error) &&
                query_scan_finish(db, p, &parts[0].sc, earlier, error);
  sum->reports = parts[0].sc.reports;
  if (ok && verdicts) {
    g_ptr_array_sort(parts[0].verdicts, query_verdict_cmp);
    sum->verdicts = g_steal_pointer(&parts[0].verdicts);
  }
  for (guint i = 0; i < 2; i++) {
    if (i == 1)
      g_ptr_array_unref(parts[i].sc.domains);
    query_scan_clear(&parts[i].sc);
    g_free(parts[i].range);
    g_free(parts[i].sql_policy);
    g_free(parts[i].sql_detail);
    if (parts[i].verdicts != NULL)
      g_ptr_array_unref(parts[i].verdicts);
    g_clear_error(&parts[i].error);
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

static QuerySummary *
query_summary_run(TrDb *db, const QueryParams *p, gboolean verdicts, GError **error)
{
  g_autoptr(QuerySummary) sum = g_new0(QuerySummary, 1);
  sum->since = p->since;
  sum->until = p->until;
  sum->domains = g_ptr_array_new_with_free_func(query_domain_free);
  /* Apart, each is cheap: a count of the table's cells by page, and each end of
   * report_begin (together, one row at a time through the index). */
  g_autoptr(TrDbStmt) st =
      db_prepare(db,
                 "SELECT (SELECT COUNT(*) FROM report), (SELECT MIN(begin_epoch) FROM report), "
                 "(SELECT MAX(begin_epoch) FROM report)",
                 error);
  if (st == NULL || db_step(st, error) != DB_STEP_ROW)
    return NULL;
  sum->store_reports = db_col_int64(st, 0);
  gint64 lo = db_col_int64(st, 1), hi = db_col_int64(st, 2) + 1;
  if (sum->store_reports > 0) {
    db_format_day(lo, sum->store_first);
    db_format_day(hi - 1, sum->store_last);
  }
  /* A window over most of the index is read in table order, not through the index;
   * one that starts before the oldest report needs no look-up of earlier days. */
  gint64 covered = MIN(hi, p->until) - MAX(lo, p->since);
  gboolean scan = sum->store_reports > 0 && covered * 3 > (hi - lo);
  gboolean earlier = sum->store_reports > 0 && p->since > lo;
  if (!query_scan(db, p, sum, scan, earlier, verdicts, error))
    return NULL;
  g_ptr_array_sort(sum->domains, query_domain_cmp);
  return g_steal_pointer(&sum);
}

QuerySummary *
query_summary(TrDb *db, const QueryParams *p, GError **error)
{
  return query_summary_run(db, p, FALSE, error);
}

QuerySummary *
query_summary_with_verdicts(TrDb *db, const QueryParams *p, GError **error)
{
  return query_summary_run(db, p, TRUE, error);
}

GPtrArray *
query_by(TrDb *db, const QueryParams *p, QueryBy by, GError **error)
{
  const char *col = NULL, *order = "4 DESC, 1";
  gboolean detail = FALSE;
  switch (by) {
  case QUERY_BY_DOMAIN: col = "policy_domain"; break;
  case QUERY_BY_ORG: col = "organization_name"; break;
  case QUERY_BY_DAY: col = "begin_day"; order = "1"; break;
  case QUERY_BY_MX: col = "COALESCE(receiving_mx_hostname, '')"; detail = TRUE; break;
  case QUERY_BY_RESULT: col = "result_type"; detail = TRUE; break;
  case QUERY_BY_SENDING_IP: col = "COALESCE(sending_mta_ip, '')"; detail = TRUE; break;
  }
  g_autofree char *where = query_where(p, detail, TRUE, NULL);
  g_autofree char *sql =
      detail ? g_strdup_printf("SELECT %s, COUNT(DISTINCT report_rowid), 0, "
                               "SUM(failed_session_count) FROM failure_detail "
                               "WHERE %s GROUP BY %s ORDER BY %s",
                               col, where, col, order)
             : g_strdup_printf("SELECT %s, COUNT(DISTINCT report_rowid), "
                               "SUM(total_successful_session_count), "
                               "SUM(total_failure_session_count) FROM policy "
                               "WHERE %s GROUP BY %s ORDER BY %s",
                               col, where, col, order);
  g_autoptr(TrDbStmt) st = query_prepare(db, p, sql, TRUE, error);
  return query_collect(st, query_count_row, GINT_TO_POINTER(!detail), query_count_free,
                       error);
}

/* Most reports first, then by name (ORDER BY 2 DESC, 1). */
static gint
query_verdict_cmp(gconstpointer a, gconstpointer b)
{
  const QueryCount *x = *(const QueryCount *const *) a, *y = *(const QueryCount *const *) b;
  if (x->reports != y->reports)
    return x->reports > y->reports ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Add the reports of the window (the filters applied, and @range: a report_rowid
 * condition or "") per trust verdict to @rows (QueryCount*, unsorted). @scan: the
 * window covers most of the index (read the table in order). */
static gboolean
query_verdicts_count(TrDb *db, const QueryParams *p, gboolean scan, const char *range,
                     GPtrArray *rows, GError **error)
{
  gboolean ranged = range[0] != '\0';
  g_autoptr(GString) sql = g_string_new(NULL);
  /* The report table has the window and the organization, not the policy domains. */
  gboolean domains = p->domains != NULL && p->domains[0] != NULL;
  if (domains) {
    g_autofree char *where = query_where(p, FALSE, TRUE, NULL);
    g_string_append_printf(sql,
                           "SELECT COALESCE(dkim, ''), COUNT(*) FROM report WHERE "
                           "report_rowid IN (SELECT report_rowid FROM policy WHERE %s)%s%s "
                           "GROUP BY 1",
                           where, ranged ? " AND " : "", range);
  } else {
    /* Without one, the report rows themselves: no sub-select of their own keys. A
     * window over most of the index reads the table in order rather than through
     * report_begin. */
    const char *hint = scan ? db_scan_hint(db) : "";
    g_string_append_printf(sql,
                           "SELECT dkim, 1 FROM report WHERE %sbegin_epoch >= $1 AND "
                           "%sbegin_epoch < $2%s%s",
                           hint, hint, ranged ? " AND " : "", range);
    int n = 3;
    if (p->orgs != NULL && p->orgs[0] != NULL)
      query_append_in(sql, " AND organization_name IN (", p->orgs, &n, ")");
    if (p->dkim != NULL && p->dkim[0] != NULL)
      query_append_in(sql, " AND dkim IN (", p->dkim, &n, ")");
  }
  /* Counted here, not by GROUP BY (a sort of every report row for a handful of
   * verdicts): the rows come in table order, mostly with the previous row's verdict. */
  g_autoptr(TrDbStmt) st = query_prepare(db, p, sql->str, TRUE, error);
  if (st == NULL)
    return FALSE;
  QueryCount *last = NULL;
  DbStep step;
  while ((step = db_step(st, error)) == DB_STEP_ROW) {
    const char *v = query_text(st, 0);
    if (last == NULL || strcmp(last->name, v) != 0) {
      last = NULL;
      for (guint i = 0; last == NULL && i < rows->len; i++)
        if (strcmp(((QueryCount *) rows->pdata[i])->name, v) == 0)
          last = rows->pdata[i];
      if (last == NULL) {
        last = query_count_new(v, 0, -1, 0);
        g_ptr_array_add(rows, last);
      }
    }
    last->reports += domains ? db_col_int64(st, 1) : 1;
  }
  return step != DB_STEP_ERROR;
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

static gpointer
query_latest_row(TrDbStmt *st, gpointer data)
{
  QueryLatest *l = g_new0(QueryLatest, 1);
  l->policy_domain = g_strdup(query_text(st, 0));
  l->organization = g_strdup(query_text(st, 1));
  l->newest_begin = db_col_int64(st, 2);
  l->reports = db_col_int64(st, 3);
  return l;
}

GPtrArray *
query_latest(TrDb *db, const QueryParams *p, GError **error)
{
  /* The window's start is not a bound here: the newest report may be older. One scan
   * of the index policy_domain_org (policy_domain, organization_name, begin_epoch), in
   * the order of the groups: no sort, no table row read. */
  g_autofree char *where = query_where(p, FALSE, FALSE, NULL);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, organization_name, MAX(begin_epoch), COUNT(*) "
      "FROM policy WHERE %s "
      "GROUP BY policy_domain, organization_name ORDER BY policy_domain, organization_name",
      where);
  g_autoptr(TrDbStmt) st = query_prepare(db, p, sql, FALSE, error);
  return query_collect(st, query_latest_row, NULL, query_latest_free, error);
}

static void
query_group_free(gpointer p)
{
  QueryGroup *g = p;
  for (guint i = 0; i < G_N_ELEMENTS(g->key); i++)
    g_free(g->key[i]);
  g_free(g);
}

/* How the columns of a grouped statement are read: @nkeys keys, then reports,
 * successful (when @have_successful, else -1) and failed. */
typedef struct {
  guint nkeys;
  gboolean have_successful;
} QueryGroupShape;

static gpointer
query_group_row(TrDbStmt *st, gpointer data)
{
  const QueryGroupShape *shape = data;
  QueryGroup *g = g_new0(QueryGroup, 1);
  for (guint i = 0; i < G_N_ELEMENTS(g->key); i++)
    g->key[i] = g_strdup(i < shape->nkeys ? query_text(st, (int) i) : "");
  int n = (int) shape->nkeys;
  g->reports = db_col_int64(st, n);
  g->successful_sessions = shape->have_successful ? db_col_int64(st, n + 1) : -1;
  g->failed_sessions = db_col_int64(st, n + 2);
  return g;
}

/* The rows of a grouped statement over the window into QueryGroup*. */
static GPtrArray *
query_groups(TrDb *db, const QueryParams *p, const char *sql, guint nkeys,
             gboolean have_successful, GError **error)
{
  QueryGroupShape shape = { nkeys, have_successful };
  g_autoptr(TrDbStmt) st = query_prepare(db, p, sql, TRUE, error);
  return query_collect(st, query_group_row, &shape, query_group_free, error);
}

GPtrArray *
query_sessions_by_policy(TrDb *db, const QueryParams *p, GError **error)
{
  g_autofree char *where = query_where(p, FALSE, TRUE, NULL);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, policy_type, organization_name, COUNT(DISTINCT report_rowid), "
      "SUM(total_successful_session_count), SUM(total_failure_session_count) FROM policy "
      "WHERE %s GROUP BY policy_domain, policy_type, organization_name ORDER BY 1, 2, 3",
      where);
  return query_groups(db, p, sql, 3, TRUE, error);
}

GPtrArray *
query_failures_by_mx(TrDb *db, const QueryParams *p, GError **error)
{
  g_autofree char *where = query_where(p, TRUE, TRUE, NULL);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, result_type, COALESCE(receiving_mx_hostname, ''), "
      "COUNT(DISTINCT report_rowid), 0, SUM(failed_session_count) FROM failure_detail "
      "WHERE %s GROUP BY policy_domain, result_type, COALESCE(receiving_mx_hostname, '') "
      "ORDER BY 1, 2, 3",
      where);
  return query_groups(db, p, sql, 3, FALSE, error);
}

GPtrArray *
query_sessions_by_day(TrDb *db, const QueryParams *p, GError **error)
{
  g_autofree char *where = query_where(p, FALSE, TRUE, NULL);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, begin_day, COUNT(DISTINCT report_rowid), "
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
  g_autofree char *where = query_where(p, TRUE, TRUE, NULL);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, result_type, COUNT(DISTINCT report_rowid), "
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
  g_autofree char *where = query_where(p, FALSE, TRUE, NULL);
  g_autofree char *sql = g_strdup_printf(
      "SELECT pd.policy_domain, COALESCE(d.slug, d.deviation), MIN(d.deviation), "
      "COUNT(DISTINCT d.report_rowid), 0, 0 FROM deviation d "
      "JOIN (SELECT DISTINCT report_rowid, policy_domain FROM policy WHERE %s) pd "
      "ON pd.report_rowid = d.report_rowid "
      "GROUP BY pd.policy_domain, COALESCE(d.slug, d.deviation) ORDER BY 1, 4 DESC, 2",
      where);
  return query_groups(db, p, sql, 3, FALSE, error);
}

GPtrArray *
query_failure_notes(TrDb *db, const QueryParams *p, GError **error)
{
  g_autofree char *where = query_where(p, TRUE, TRUE, NULL);
  g_autofree char *sql = g_strdup_printf(
      "SELECT policy_domain, COALESCE(failure_reason_code, ''), "
      "COALESCE(additional_information, ''), COUNT(DISTINCT report_rowid), 0, "
      "SUM(failed_session_count) FROM failure_detail WHERE %s AND "
      "(failure_reason_code IS NOT NULL OR additional_information IS NOT NULL) "
      "GROUP BY policy_domain, COALESCE(failure_reason_code, ''), "
      "COALESCE(additional_information, '') ORDER BY 1, 6 DESC, 2, 3",
      where);
  return query_groups(db, p, sql, 3, FALSE, error);
}
