/* cmd-check.c - `tlsrpt-ingest check`: a monitoring plugin (Nagios, Icinga, Naemon,
 * Sensu) following the Monitoring Plugins development guidelines: one status line with
 * perfdata, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Reads the SQL index
 * (query.h); the output is render_check()'s (render.h). docs/monitoring.md. */
#include "command.h"

#include "cli-read.h"
#include "log.h"
#include "query.h"
#include "render.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHECK_DEFAULT_DAYS 2
#define CHECK_DEFAULT_STALE 3

typedef struct {
  int min_sessions;
  int stale;
} CheckArgs;

static const GOptionEntry cmd_check_entries[] = {
  { "min-sessions", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CheckArgs, min_sessions),
    "A domain with fewer sessions in the window is never WARNING or CRITICAL for its "
    "failures (default 0)", "N" },
  { "stale", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CheckArgs, stale),
    "WARNING for a domain without a report starting in the last DAYS days (default 3; "
    "0: no such check); with --domain, one that never had a report too", "DAYS" },
  { NULL },
};
static const CliGroup cmd_check_group = { "check", "Check options", cmd_check_entries,
                                          FALSE };
static const CliGroup *const cmd_check_groups[] = { &cli_group_store, &cli_group_read,
                                                    &cli_group_thresholds, &cmd_check_group,
                                                    NULL };

/* The status line of an UNKNOWN, on standard output as a plugin must. */
static int
check_unknown(const char *format, ...) G_GNUC_PRINTF(1, 2);
static int
check_unknown(const char *format, ...)
{
  va_list ap;
  va_start(ap, format);
  g_autofree char *msg = g_strdup_vprintf(format, ap);
  va_end(ap);
  g_autofree char *safe = g_strdelimit(g_strdup(msg), "|\n", ' ');
  printf("TLSRPT UNKNOWN - %s\n", safe);
  fflush(stdout);
  return RENDER_PLUGIN_UNKNOWN;
}

static gint
check_cmp(gconstpointer a, gconstpointer b)
{
  const RenderCheckDomain *x = *(const RenderCheckDomain *const *) a;
  const RenderCheckDomain *y = *(const RenderCheckDomain *const *) b;
  if (x->state != y->state)
    return x->state > y->state ? -1 : 1;
  double rx = x->window != NULL ? x->window->failure_ratio : 0;
  double ry = y->window != NULL ? y->window->failure_ratio : 0;
  if (rx != ry)
    return rx > ry ? -1 : 1;
  return strcmp(x->policy_domain, y->policy_domain);
}

static RenderCheckDomain *
check_domain(GHashTable *by_name, GPtrArray *all, const char *name)
{
  RenderCheckDomain *c = g_hash_table_lookup(by_name, name);
  if (c == NULL) {
    c = g_new0(RenderCheckDomain, 1);
    c->policy_domain = name;
    g_hash_table_insert(by_name, (gpointer) name, c);
    g_ptr_array_add(all, c);
  }
  return c;
}

static int
cmd_check_run(const TrCommand *cmd, int argc, char **argv)
{
  CheckArgs own = { .stale = -1, .min_sessions = -1 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, cmd_check_groups, &own, &common, argc, argv, &rc))
    /* --help and -V are 0; a usage or config error is UNKNOWN (already explained on
     * standard error). */
    return rc == 0 ? 0 : check_unknown("usage error (tlsrpt-ingest check --help)");
  g_autoptr(GError) error = NULL;
  CliRead r;
  int stale = own.stale >= 0 ? own.stale : CHECK_DEFAULT_STALE;
  gint64 min_sessions = own.min_sessions >= 0 ? own.min_sessions : 0;
  if (common.n_args != 0)
    return check_unknown("check takes no arguments (tlsrpt-ingest check --help)");
  if (own.stale < -1 || own.min_sessions < -1)
    return check_unknown("--stale and --min-sessions take a number from 0 up");
  if (!cli_read_params(&common, CHECK_DEFAULT_DAYS, &r, &error))
    return check_unknown("%s", error->message);

  tr_log_init(cli_verbosity(&common), FALSE);
  gint64 now = r.now;
  const QueryParams *params = &r.params;
  g_autofree char *where = NULL;
  g_autoptr(TrDb) db = cli_read_open(&common, FALSE, &where, &error);
  if (db == NULL && g_error_matches(error, DB_ERROR, DB_ERROR_MISSING))
    return check_unknown("no TLS report stored yet in %s", where);
  if (db == NULL)
    return check_unknown("%s", error->message);
  g_autoptr(QuerySummary) sum = query_summary(db, params, &error);
  g_autoptr(GPtrArray) latest = sum != NULL ? query_latest(db, params, &error) : NULL;
  if (sum == NULL || latest == NULL)
    return check_unknown("%s", error->message);

  g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) lowered = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < sum->domains->len; i++) {
    QueryDomain *d = sum->domains->pdata[i];
    check_domain(by_name, all, d->policy_domain)->window = d;
  }
  for (guint i = 0; i < latest->len; i++) {
    QueryLatest *l = latest->pdata[i];
    RenderCheckDomain *c = check_domain(by_name, all, l->policy_domain);
    if (l->newest_begin > c->newest_begin || c->newest_begin == 0)
      c->newest_begin = l->newest_begin;
  }
  for (guint i = 0; common.domains != NULL && common.domains[i] != NULL; i++) {
    char *lower = g_ascii_strdown(common.domains[i], -1);
    g_ptr_array_add(lowered, lower);
    check_domain(by_name, all, lower);
  }
  if (all->len == 0)
    return check_unknown("no TLS report in %s%s", where,
                         common.orgs != NULL ? " from the organizations given" : "");
  for (guint i = 0; i < all->len; i++) {
    RenderCheckDomain *c = all->pdata[i];
    const QueryDomain *d = c->window;
    c->state = RENDER_PLUGIN_OK;
    if (d != NULL && d->severity >= QUERY_SEVERITY_WARNING) {
      if (d->successful_sessions + d->failed_sessions < min_sessions)
        c->below_min = TRUE;
      else
        c->state = d->severity == QUERY_SEVERITY_CRITICAL ? RENDER_PLUGIN_CRITICAL
                                                          : RENDER_PLUGIN_WARNING;
    }
    /* A report starting on day D arrives on D+1: "no report for N days" counts
     * from the newest start. */
    if (stale > 0 && (c->newest_begin == 0 || now - c->newest_begin > (gint64) stale * 86400)) {
      c->stale = TRUE;
      if (c->state < RENDER_PLUGIN_WARNING)
        c->state = RENDER_PLUGIN_WARNING;
    }
  }
  g_ptr_array_sort(all, check_cmp);
  RenderCheckOptions ro = { params->warn, params->crit, min_sessions, r.days, stale, now };
  g_autoptr(GString) text = g_string_new(NULL);
  rc = render_check(all, &ro, text);
  if (fwrite(text->str, 1, text->len, stdout) != text->len || fflush(stdout) != 0) {
    tr_log_error("standard output: %s", g_strerror(errno));
    rc = RENDER_PLUGIN_UNKNOWN;
  }
  return rc;
}

const TrCommand cmd_check = {
  "check", "[--days N] [--warn PCT] [--crit PCT] [--min-sessions N] [--stale DAYS] "
  "[--domain D]... [--org ORG]...",
  "A monitoring plugin (Nagios, Icinga): one status line with perfdata per policy "
  "domain, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. WARNING from --warn percent "
  "of failed sessions of a domain in the last --days days, CRITICAL above --crit, "
  "WARNING too for a domain without a report for --stale days; UNKNOWN when there is "
  "no store, the index cannot be read, or an option is wrong (docs/monitoring.md).",
  cmd_check_run, NULL,
};
