/* test_query.c - the query module on real and generated fixtures: the severity
 * thresholds, the totals of `summary --format json` against sums computed from the CSV
 * of the same run, the trend of a recovered domain, the secondary-MX case and the
 * detail/summary mismatch. */
#include "testutil.h"
#include "db.h"
#include "query.h"
#include "report-datetime.h"

#include <string.h>

static void
test_severity_thresholds(void **state)
{
  /* ok: no failure; notice below 1 %; warning 1 % .. 5 % included; critical above. */
  assert_int_equal(query_severity(100, 0, 0.01, 0.05), QUERY_SEVERITY_OK);
  assert_int_equal(query_severity(0, 0, 0.01, 0.05), QUERY_SEVERITY_OK);
  assert_int_equal(query_severity(9999, 1, 0.01, 0.05), QUERY_SEVERITY_NOTICE);
  assert_int_equal(query_severity(991, 9, 0.01, 0.05), QUERY_SEVERITY_NOTICE);
  assert_int_equal(query_severity(99, 1, 0.01, 0.05), QUERY_SEVERITY_WARNING);     /* 1 % */
  assert_int_equal(query_severity(95, 5, 0.01, 0.05), QUERY_SEVERITY_WARNING);     /* 5 % */
  assert_int_equal(query_severity(949, 51, 0.01, 0.05), QUERY_SEVERITY_CRITICAL);  /* 5.1 % */
  assert_int_equal(query_severity(0, 3, 0.01, 0.05), QUERY_SEVERITY_CRITICAL);
  /* Other thresholds. */
  assert_int_equal(query_severity(95, 5, 0.10, 0.20), QUERY_SEVERITY_NOTICE);
  assert_string_equal(query_severity_name(QUERY_SEVERITY_WARNING), "warning");
  QueryBy by;
  assert_true(query_by_parse("sending-ip", &by));
  assert_int_equal(by, QUERY_BY_SENDING_IP);
  assert_false(query_by_parse("ip", &by));
}

/* One RFC 4180 record per line (the test's CSV has no newline inside a field). */
static GPtrArray *
csv_fields(const char *line)
{
  GPtrArray *f = g_ptr_array_new_with_free_func(g_free);
  GString *cur = g_string_new(NULL);
  gboolean q = FALSE;
  for (const char *p = line; *p && *p != '\r' && *p != '\n'; p++) {
    if (q && *p == '"' && p[1] == '"') {
      g_string_append_c(cur, '"');
      p++;
    } else if (*p == '"') {
      q = !q;
    } else if (!q && *p == ',') {
      g_ptr_array_add(f, g_string_free(cur, FALSE));
      cur = g_string_new(NULL);
    } else {
      g_string_append_c(cur, *p);
    }
  }
  g_ptr_array_add(f, g_string_free(cur, FALSE));
  return f;
}

typedef struct {
  char *dir, *store, *csv;
} Fx;

static int
setup(void **state)
{
  Fx *fx = g_new0(Fx, 1);
  fx->dir = tu_mkdtemp();
  fx->store = g_build_filename(fx->dir, "s", NULL);
  fx->csv = g_build_filename(fx->dir, "r.csv", NULL);
  g_autofree char *fixtures = tu_fixture_path("synthetic/summary");
  g_autofree char *corpus = tu_fixture_path("corpus");
  g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
  /* The generated store plus every real corpus report (some are quarantined: exit 1). */
  const char *argv[] = { "file", "-q", "--store", fx->store, "--csv", fx->csv, "--csv-raw",
                         fixtures, corpus, NULL };
  int rc = tu_run(argv, empty, NULL, NULL);
  assert_true(rc == 0 || rc == 1);
  *state = fx;
  return 0;
}

static int
teardown(void **state)
{
  Fx *fx = *state;
  tu_rmtree(fx->dir);
  g_free(fx->dir);
  g_free(fx->store);
  g_free(fx->csv);
  g_free(fx);
  return 0;
}

/* The totals of summary --format json over every report equal the sums of the CSV's
 * policy rows, per domain; and its failure-detail sums per result type. */
static void
test_json_totals_match_csv(void **state)
{
  Fx *fx = *state;
  g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
  const char *argv[] = { "summary", "--store", fx->store, "--since", "1990-01-01",
                         "--until", "2099-12-31", "--format", "json", NULL };
  g_autofree char *out = NULL, *err = NULL;
  assert_int_equal(tu_run(argv, empty, &out, &err), 0);
  g_autoptr(TrJson) root = json_tokener_parse(out);
  assert_non_null(root);

  g_autoptr(GHashTable) ok = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GHashTable) bad = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GHashTable) rt = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_autofree char *csv = tu_read_file(fx->csv, NULL);
  assert_non_null(csv);
  g_auto(GStrv) lines = g_strsplit(csv, "\n", -1);
  guint policies = 0;
  for (guint i = 1; lines[i] != NULL; i++) {
    if (lines[i][0] == '\0')
      continue;
    g_autoptr(GPtrArray) f = csv_fields(lines[i]);
    assert_true(f->len >= 18);
    /* row_type 0, policy_domain 6, totals 10 and 11, result_type 12, failed 17 */
    const char *dom = f->pdata[6];
    if (strcmp(f->pdata[0], "policy") == 0) {
      policies++;
      gint64 *o = g_hash_table_lookup(ok, dom), *b = g_hash_table_lookup(bad, dom);
      if (o == NULL) {
        o = g_new0(gint64, 1);
        b = g_new0(gint64, 1);
        g_hash_table_insert(ok, g_strdup(dom), o);
        g_hash_table_insert(bad, g_strdup(dom), b);
      }
      *o += g_ascii_strtoll(f->pdata[10], NULL, 10);
      *b += g_ascii_strtoll(f->pdata[11], NULL, 10);
    } else {
      g_autofree char *k = g_strdup_printf("%s %s", dom, (char *) f->pdata[12]);
      gint64 *n = g_hash_table_lookup(rt, k);
      if (n == NULL) {
        n = g_new0(gint64, 1);
        g_hash_table_insert(rt, g_strdup(k), n);
      }
      *n += g_ascii_strtoll(f->pdata[17], NULL, 10);
    }
  }
  assert_true(policies > 20);

  TrJson *domains = json_object_object_get(root, "domains");
  /* Policies without a policy-domain are indexed under their TLS-Report-Domain: only
   * compare the domains the CSV names. */
  guint compared = 0, compared_rt = 0;
  for (size_t i = 0; i < json_object_array_length(domains); i++) {
    TrJson *d = json_object_array_get_idx(domains, i);
    const char *name = json_object_get_string(json_object_object_get(d, "policy_domain"));
    gint64 *o = g_hash_table_lookup(ok, name), *b = g_hash_table_lookup(bad, name);
    if (o == NULL)
      continue;
    compared++;
    assert_int_equal(json_object_get_int64(json_object_object_get(d, "successful_sessions")), *o);
    assert_int_equal(json_object_get_int64(json_object_object_get(d, "failed_sessions")), *b);
    gint64 total = *o + *b;
    double ratio = json_object_get_double(json_object_object_get(d, "failure_ratio"));
    if (total > 0)
      assert_true(ratio > (double) *b / total - 1e-6 && ratio < (double) *b / total + 1e-6);
    TrJson *rts = json_object_object_get(d, "result_types");
    for (size_t j = 0; j < json_object_array_length(rts); j++) {
      TrJson *t = json_object_array_get_idx(rts, j);
      g_autofree char *k = g_strdup_printf(
          "%s %s", name, json_object_get_string(json_object_object_get(t, "result_type")));
      gint64 *n = g_hash_table_lookup(rt, k);
      assert_non_null(n);
      assert_int_equal(json_object_get_int64(json_object_object_get(t, "failed_sessions")), *n);
      compared_rt++;
    }
  }
  assert_true(compared >= 15);
  assert_true(compared_rt >= 20);
}

static TrDb *
open_index(Fx *fx)
{
  g_autofree char *path = g_build_filename(fx->store, "reports.sqlite", NULL);
  g_autoptr(GError) error = NULL;
  TrDb *db = db_open_read(path, &error);
  assert_non_null(db);
  return db;
}

static const QueryDomain *
find_domain(const QuerySummary *s, const char *name)
{
  for (guint i = 0; i < s->domains->len; i++) {
    const QueryDomain *d = s->domains->pdata[i];
    if (strcmp(d->policy_domain, name) == 0)
      return d;
  }
  return NULL;
}

static void
test_summary_structs(void **state)
{
  Fx *fx = *state;
  g_autoptr(TrDb) db = open_index(fx);
  gint64 since = 0, until = 0;
  gboolean z;
  assert_true(report_datetime_parse("2024-03-01T00:00:00Z", &since, &z));
  assert_true(report_datetime_parse("2024-03-09T00:00:00Z", &until, &z));
  QueryParams p = { since, until, NULL, 0.01, 0.05, NULL, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(QuerySummary) s = query_summary(db, &p, &error);
  assert_non_null(s);
  assert_int_equal(s->reports, 12);
  /* Worst first. */
  const QueryDomain *first = s->domains->pdata[0];
  assert_int_equal(first->severity, QUERY_SEVERITY_CRITICAL);

  const QueryDomain *ok = find_domain(s, "ok.example");
  assert_non_null(ok);
  assert_int_equal(ok->severity, QUERY_SEVERITY_OK);
  assert_int_equal(ok->reports, 2);
  assert_int_equal(ok->organizations, 2);
  assert_int_equal(find_domain(s, "notice.example")->severity, QUERY_SEVERITY_NOTICE);
  assert_int_equal(find_domain(s, "warning.example")->severity, QUERY_SEVERITY_WARNING);

  /* The failures of critical.example are all on mx2, of two MX patterns; its details
   * add up to 25 under a summary of 20: the summary counts, the mismatch is said. */
  const QueryDomain *c = find_domain(s, "critical.example");
  assert_int_equal(c->failed_sessions, 20);
  assert_int_equal(c->detail_mismatches, 1);
  assert_int_equal(c->mx_hosts->len, 1);
  assert_string_equal(((QueryCount *) c->mx_hosts->pdata[0])->name, "mx2.critical.example");
  assert_int_equal(c->mx_patterns->len, 2);

  /* Recovered: seen on 03-01 and 03-02, then three clean daily reports. */
  const QueryDomain *r = find_domain(s, "recovered.example");
  assert_int_equal(r->result_types->len, 1);
  const QueryResultType *t = r->result_types->pdata[0];
  assert_string_equal(t->result_type, "sts-policy-fetch-error");
  assert_string_equal(t->first_seen, "2024-03-01");
  assert_string_equal(t->last_seen, "2024-03-02");
  assert_int_equal(t->clean_reports_since, 3);
  assert_true(t->new_in_window);

  /* The 11 types and an unknown one, each kept. */
  const QueryDomain *all = find_domain(s, "alltypes.example");
  assert_int_equal(all->result_types->len, 12);
  guint known = 0;
  for (guint i = 0; i < all->result_types->len; i++)
    known += ((QueryResultType *) all->result_types->pdata[i])->known;
  assert_int_equal(known, 11);
  assert_int_equal(all->sending_ips->len, 5);
  /* The top five of more: most failed first, then by address; the rest left out. */
  gint64 top_min = G_MAXINT64;
  for (guint i = 0; i < all->sending_ips->len; i++) {
    const QueryCount *ip = all->sending_ips->pdata[i];
    assert_true(ip->failed_sessions <= top_min);
    top_min = ip->failed_sessions;
    if (i > 0 && ip->failed_sessions ==
                     ((const QueryCount *) all->sending_ips->pdata[i - 1])->failed_sessions)
      assert_true(strcmp(((const QueryCount *) all->sending_ips->pdata[i - 1])->name,
                         ip->name) < 0);
  }
  g_autoptr(GPtrArray) ips = query_by(db, &(QueryParams){ since, until,
                                                          (const char *const[]){
                                                              "alltypes.example", NULL },
                                                          0.01, 0.05, NULL, NULL },
                                      QUERY_BY_SENDING_IP, &error);
  assert_non_null(ips);
  assert_true(ips->len > 5);
  for (guint i = 0; i < 5; i++)
    assert_string_equal(((QueryCount *) ips->pdata[i])->name,
                        ((QueryCount *) all->sending_ips->pdata[i])->name);

  /* A window starting later: the type was first seen before it (not new). */
  assert_true(report_datetime_parse("2024-03-02T00:00:00Z", &p.since, &z));
  g_autoptr(QuerySummary) s2 = query_summary(db, &p, &error);
  const QueryResultType *t2 = find_domain(s2, "recovered.example")->result_types->pdata[0];
  assert_false(t2->new_in_window);
  assert_string_equal(t2->first_seen, "2024-03-01");
  assert_string_equal(t2->last_seen, "2024-03-02");
  /* The same through the organization filter (a grouped statement, not the look-up). */
  const char *alpha[] = { "Alpha Mail", NULL };
  p.orgs = alpha;
  g_autoptr(QuerySummary) s2o = query_summary(db, &p, &error);
  assert_non_null(s2o);
  const QueryResultType *t2o = find_domain(s2o, "recovered.example")->result_types->pdata[0];
  assert_false(t2o->new_in_window);
  assert_string_equal(t2o->first_seen, "2024-03-01");
  assert_int_equal(t2o->clean_reports_since, 3);
  const char *nobody[] = { "No Such Org", NULL };
  p.orgs = nobody;
  g_autoptr(QuerySummary) s2n = query_summary(db, &p, &error);
  assert_non_null(s2n);
  assert_int_equal(s2n->domains->len, 0);
  assert_int_equal(s2n->reports, 0);
  p.orgs = NULL;

  /* The domain filter, case-insensitive. */
  const char *only[] = { "OK.Example", NULL };
  p.domains = only;
  g_autoptr(QuerySummary) s3 = query_summary(db, &p, &error);
  assert_int_equal(s3->domains->len, 1);
  g_autoptr(GPtrArray) rows = query_by(db, &p, QUERY_BY_ORG, &error);
  assert_non_null(rows);
  assert_true(rows->len >= 1);
}

/* Real corpus reports: the mail.ru report's two details under a total of 1. */
static void
test_real_reports(void **state)
{
  Fx *fx = *state;
  g_autoptr(TrDb) db = open_index(fx);
  gint64 since = 0, until = 0;
  gboolean z;
  assert_true(report_datetime_parse("2024-02-22T00:00:00Z", &since, &z));
  assert_true(report_datetime_parse("2024-02-23T00:00:00Z", &until, &z));
  QueryParams p = { since, until, NULL, 0.01, 0.05, NULL, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(QuerySummary) s = query_summary(db, &p, &error);
  assert_non_null(s);
  const QueryDomain *d = find_domain(s, "example.com");
  assert_non_null(d);
  assert_int_equal(d->failed_sessions, 1);
  assert_int_equal(d->detail_mismatches, 1);
  assert_string_equal(((QueryResultType *) d->result_types->pdata[0])->result_type,
                      "sts-policy-fetch-error");
  assert_int_equal(((QueryResultType *) d->result_types->pdata[0])->failed_sessions, 2);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_severity_thresholds),
    cmocka_unit_test_setup_teardown(test_json_totals_match_csv, setup, teardown),
    cmocka_unit_test_setup_teardown(test_summary_structs, setup, teardown),
    cmocka_unit_test_setup_teardown(test_real_reports, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
