/* render-prom.c - `metrics`: the Prometheus text exposition format (version 0.0.4), for
 * node_exporter's textfile collector or a scrape. Window gauges, not counters: retention
 * and re-indexing would make a counter go down. Label values that a sender controls
 * are few (RENDER_PROM_MAX_*) and escaped; no sending IP, report id or free text is a
 * label. */
#include "render.h"

#include "escape.h"
#include "result-type.h"

#include <string.h>

#define PROM_OTHER "other"

/* The @max names with the largest weight (then by name); a name not kept is "other". */
typedef struct {
  GHashTable *weight;         /* name -> gint64* */
  GHashTable *kept;           /* name set */
} PromTop;

static void
prom_top_init(PromTop *t)
{
  t->weight = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  t->kept = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void
prom_top_clear(PromTop *t)
{
  g_hash_table_unref(t->weight);
  g_hash_table_unref(t->kept);
}

static void
prom_top_add(PromTop *t, const char *name, gint64 w)
{
  gint64 *v = g_hash_table_lookup(t->weight, name);
  if (v == NULL) {
    v = g_new0(gint64, 1);
    g_hash_table_insert(t->weight, g_strdup(name), v);
  }
  *v += w;
}

static GHashTable *prom_sort_weights;

static gint
prom_top_cmp(gconstpointer a, gconstpointer b)
{
  const char *x = *(const char *const *) a, *y = *(const char *const *) b;
  gint64 wx = *(gint64 *) g_hash_table_lookup(prom_sort_weights, x);
  gint64 wy = *(gint64 *) g_hash_table_lookup(prom_sort_weights, y);
  if (wx != wy)
    return wx > wy ? -1 : 1;
  return strcmp(x, y);
}

static void
prom_top_finish(PromTop *t, guint max)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new();
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init(&it, t->weight);
  while (g_hash_table_iter_next(&it, &k, NULL))
    g_ptr_array_add(names, k);
  prom_sort_weights = t->weight;
  g_ptr_array_sort(names, prom_top_cmp);
  prom_sort_weights = NULL;
  for (guint i = 0; i < names->len && i < max; i++)
    g_hash_table_add(t->kept, g_strdup(names->pdata[i]));
}

static const char *
prom_top_name(const PromTop *t, const char *name)
{
  return g_hash_table_contains(t->kept, name) ? name : PROM_OTHER;
}

static const char *
prom_policy_type(const char *t)
{
  static const char *const known[] = { "sts", "tlsa", "no-policy-found" };
  for (gsize i = 0; i < G_N_ELEMENTS(known); i++)
    if (strcmp(t, known[i]) == 0)
      return t;
  return PROM_OTHER;
}

/* One metric family: series text "{labels}" -> value, summed or maximised. */
typedef struct {
  GHashTable *series;         /* label text -> gint64* */
  gboolean max;               /* keep the largest value, not the sum */
} PromFamily;

static void
prom_family_init(PromFamily *f, gboolean max)
{
  f->series = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  f->max = max;
}

/* @labels: NULL-terminated name, value, name, value ... */
static void
prom_family_add(PromFamily *f, const char *const *labels, gint64 v)
{
  g_autoptr(GString) key = g_string_new("{");
  for (guint i = 0; labels[i] != NULL; i += 2) {
    g_string_append_printf(key, "%s%s=\"", i ? "," : "", labels[i]);
    tr_escape_prom_label_append(key, labels[i + 1]);
    g_string_append_c(key, '"');
  }
  g_string_append_c(key, '}');
  gint64 *cur = g_hash_table_lookup(f->series, key->str);
  if (cur == NULL) {
    cur = g_new0(gint64, 1);
    *cur = v;
    g_hash_table_insert(f->series, g_string_free(g_steal_pointer(&key), FALSE), cur);
  } else if (f->max) {
    *cur = MAX(*cur, v);
  } else {
    *cur += v;
  }
}

static gint
prom_str_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void
prom_family_write(PromFamily *f, const char *name, const char *help, GString *out)
{
  g_string_append_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
  g_autoptr(GPtrArray) keys = g_ptr_array_new();
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init(&it, f->series);
  while (g_hash_table_iter_next(&it, &k, NULL))
    g_ptr_array_add(keys, k);
  g_ptr_array_sort(keys, prom_str_cmp);
  for (guint i = 0; i < keys->len; i++)
    g_string_append_printf(out, "%s%s %" G_GINT64_FORMAT "\n", name,
                           (const char *) keys->pdata[i],
                           *(gint64 *) g_hash_table_lookup(f->series, keys->pdata[i]));
  g_hash_table_unref(f->series);
}

void
render_prom(const RenderPromInput *in, GString *out)
{
  /* The label values kept. */
  PromTop domains, orgs;
  prom_top_init(&domains);
  prom_top_init(&orgs);
  g_autoptr(GHashTable) mx = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
  for (guint i = 0; i < in->sessions->len; i++) {
    const QueryGroup *g = in->sessions->pdata[i];
    prom_top_add(&domains, g->key[0], g->successful_sessions + g->failed_sessions);
    prom_top_add(&orgs, g->key[2], g->successful_sessions + g->failed_sessions);
  }
  for (guint i = 0; i < in->latest->len; i++) {
    const QueryLatest *l = in->latest->pdata[i];
    prom_top_add(&domains, l->policy_domain, 0);
    prom_top_add(&orgs, l->organization, 0);
  }
  prom_top_finish(&domains, RENDER_PROM_MAX_DOMAINS);
  prom_top_finish(&orgs, RENDER_PROM_MAX_ORGS);
  /* MX hosts: per policy domain, the ones with the most failures. */
  for (guint i = 0; i < in->failures->len; i++) {
    const QueryGroup *g = in->failures->pdata[i];
    PromTop *t = g_hash_table_lookup(mx, g->key[0]);
    if (t == NULL) {
      t = g_new0(PromTop, 1);
      prom_top_init(t);
      g_hash_table_insert(mx, g->key[0], t);
    }
    prom_top_add(t, g->key[2], g->failed_sessions);
  }
  {
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, mx);
    while (g_hash_table_iter_next(&it, NULL, &v))
      prom_top_finish(v, RENDER_PROM_MAX_MX);
  }

  g_autofree char *days = g_strdup_printf("%d", in->days);
  PromFamily f;

  prom_family_init(&f, FALSE);
  for (guint i = 0; i < in->sessions->len; i++) {
    const QueryGroup *g = in->sessions->pdata[i];
    const char *dom = prom_top_name(&domains, g->key[0]);
    const char *type = prom_policy_type(g->key[1]);
    const char *org = prom_top_name(&orgs, g->key[2]);
    const char *ok[] = { "policy_domain", dom, "policy_type", type, "organization", org,
                         "result", "successful", NULL };
    const char *bad[] = { "policy_domain", dom, "policy_type", type, "organization", org,
                          "result", "failed", NULL };
    prom_family_add(&f, ok, g->successful_sessions);
    prom_family_add(&f, bad, g->failed_sessions);
  }
  g_autofree char *help_sessions = g_strdup_printf(
      "TLS sessions in the reports starting in the last %s UTC days (today included), from "
      "the policies' summaries, by policy domain, policy type, reporting organization and "
      "result.", days);
  prom_family_write(&f, "tlsrpt_sessions", help_sessions, out);

  prom_family_init(&f, FALSE);
  for (guint i = 0; i < in->failures->len; i++) {
    const QueryGroup *g = in->failures->pdata[i];
    PromTop *t = g_hash_table_lookup(mx, g->key[0]);
    const char *labels[] = {
      "policy_domain", prom_top_name(&domains, g->key[0]),
      "result_type", result_type_find(g->key[1]) != NULL ? g->key[1] : PROM_OTHER,
      "receiving_mx", prom_top_name(t, g->key[2]), NULL,
    };
    prom_family_add(&f, labels, g->failed_sessions);
  }
  g_autofree char *help_failed = g_strdup_printf(
      "Failed TLS sessions in the reports starting in the last %s UTC days, from the failure "
      "details, by policy domain, result type (types RFC 8460 does not name: other) and "
      "receiving MX (empty when not reported).", days);
  prom_family_write(&f, "tlsrpt_failed_sessions", help_failed, out);

  prom_family_init(&f, TRUE);
  for (guint i = 0; i < in->latest->len; i++) {
    const QueryLatest *l = in->latest->pdata[i];
    const char *labels[] = { "policy_domain", prom_top_name(&domains, l->policy_domain),
                             "organization", prom_top_name(&orgs, l->organization), NULL };
    prom_family_add(&f, labels, l->newest_begin);
  }
  prom_family_write(&f, "tlsrpt_last_report_timestamp_seconds",
                    "Start of the newest report (start-datetime, Unix time) per policy "
                    "domain and reporting organization, over the whole index.", out);

  g_string_append_printf(out,
                         "# HELP tlsrpt_store_reports Reports in the store's index.\n"
                         "# TYPE tlsrpt_store_reports gauge\n"
                         "tlsrpt_store_reports %" G_GINT64_FORMAT "\n",
                         in->store_reports);
  if (in->quarantined >= 0)
    g_string_append_printf(out,
                           "# HELP tlsrpt_store_quarantined Messages kept in the store's "
                           "quarantine (no valid report in them).\n"
                           "# TYPE tlsrpt_store_quarantined gauge\n"
                           "tlsrpt_store_quarantined %" G_GINT64_FORMAT "\n",
                           in->quarantined);
  g_string_append_printf(out,
                         "# HELP tlsrpt_window_seconds The window of the tlsrpt_sessions and "
                         "tlsrpt_failed_sessions gauges: the last N UTC days, today "
                         "included.\n"
                         "# TYPE tlsrpt_window_seconds gauge\n"
                         "tlsrpt_window_seconds %" G_GINT64_FORMAT "\n",
                         (gint64) in->days * 86400);

  {
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, mx);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
      prom_top_clear(v);
    }
  }
  prom_top_clear(&domains);
  prom_top_clear(&orgs);
}
