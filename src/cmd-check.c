/* cmd-check.c - `tlsrpt-ingest check`: a monitoring plugin (Nagios, Icinga, Naemon,
 * Sensu) following the Monitoring Plugins development guidelines: one status line with
 * perfdata, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Reads the SQL index
 * (query.h); the output is render_check()'s (render.h). docs/monitoring.md. */
#include "command.h"

#include "cli.h"
#include "log.h"
#include "query.h"
#include "reindex.h"
#include "render.h"
#include "report-datetime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHECK_DEFAULT_DAYS 2
#define CHECK_DEFAULT_STALE 3

typedef struct {
  char *sqlite;
  int days;
  char *warn;
  char *crit;
  int min_sessions;
  int stale;
  char **domains;
  char **orgs;
  char *now;
} CheckArgs;

static const GOptionEntry cmd_check_entries[] = {
  { "sqlite", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CheckArgs, sqlite),
    "Read the index FILE instead of STORE/reports.sqlite", "FILE" },
  { "days", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CheckArgs, days),
    "Judge the reports starting in the last N days, today included (default 2)", "N" },
  { "warn", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CheckArgs, warn),
    "WARNING from this failure ratio of a domain, in percent (default 1)", "PCT" },
  { "crit", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CheckArgs, crit),
    "CRITICAL above this failure ratio, in percent (default 5)", "PCT" },
  { "min-sessions", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CheckArgs, min_sessions),
    "A domain with fewer sessions in the window is never WARNING or CRITICAL for its "
    "failures (default 0)", "N" },
  { "stale", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CheckArgs, stale),
    "WARNING for a domain without a report starting in the last DAYS days (default 3; "
    "0: no such check)", "DAYS" },
  { "domain", 0, 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(CheckArgs, domains),
    "Only policy domain D (repeatable); one that never had a report is WARNING", "D" },
  { "org", 0, 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(CheckArgs, orgs),
    "Only the reports of organization ORG (exact name, repeatable)", "ORG" },
  { "now", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CheckArgs, now),
    "Judge as if it were DATE (YYYY-MM-DD or RFC 3339; default: now)", "DATE" },
  { NULL },
};
static const CliGroup cmd_check_group = { "check", "Check options", cmd_check_entries,
                                          FALSE };
static const CliGroup *const cmd_check_groups[] = { &cli_group_store, &cmd_check_group,
                                                    NULL };

static void
check_args_clear(CheckArgs *a)
{
  g_free(a->sqlite);
  g_free(a->warn);
  g_free(a->crit);
  g_strfreev(a->domains);
  g_strfreev(a->orgs);
  g_free(a->now);
}

/* "1", "1.5", "1%" -> 0.01, 0.015. */
static gboolean
check_percent(const char *opt, const char *s, double *out, GError **error)
{
  if (s == NULL)
    return TRUE;
  char *end = NULL;
  double v = g_ascii_strtod(s, &end);
  if (end != NULL && *end == '%')
    end++;
  if (end == s || *end != '\0' || !(v >= 0 && v <= 100)) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--%s takes a percentage from 0 to 100, not '%s'", opt, s);
    return FALSE;
  }
  *out = v / 100.0;
  return TRUE;
}

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
  if (!cli_parse(cmd, cmd_check_groups, &own, &common, argc, argv, &rc)) {
    check_args_clear(&own);
    /* --help and -V are 0; a usage or config error is UNKNOWN (already explained on
     * standard error). */
    return rc == 0 ? 0 : check_unknown("usage error (tlsrpt-ingest check --help)");
  }
  g_autoptr(GError) error = NULL;
  double warn = 0.01, crit = 0.05;
  int days = own.days > 0 ? own.days : CHECK_DEFAULT_DAYS;
  int stale = own.stale >= 0 ? own.stale : CHECK_DEFAULT_STALE;
  gint64 min_sessions = own.min_sessions >= 0 ? own.min_sessions : 0;
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  if (common.n_args != 0) {
    rc = check_unknown("check takes no arguments (tlsrpt-ingest check --help)");
    goto out;
  }
  if (own.days < 0 || (own.stale < -1) || own.min_sessions < -1) {
    rc = check_unknown("--days, --stale and --min-sessions take a number from 0 up");
    goto out;
  }
  if (!check_percent("warn", own.warn, &warn, &error) ||
      !check_percent("crit", own.crit, &crit, &error)) {
    rc = check_unknown("%s", error->message);
    goto out;
  }
  if (warn > crit) {
    rc = check_unknown("--warn must not be above --crit");
    goto out;
  }
  if (own.now != NULL) {
    gboolean zoneless;
    g_autofree char *full = strlen(own.now) == 10 ? g_strdup_printf("%sT12:00:00Z", own.now)
                                                   : g_strdup(own.now);
    if (!report_datetime_parse(full, &now, &zoneless)) {
      rc = check_unknown("--now takes a date (YYYY-MM-DD) or an RFC 3339 date-time");
      goto out;
    }
  }

  tr_log_init(cli_verbosity(&common), FALSE);
  {
    gint64 today = now - (now % 86400);
    g_autofree char *store = cli_store_dir(&common);
    const char *where = own.sqlite != NULL ? own.sqlite : store;
    g_autoptr(TrDb) db = own.sqlite != NULL ? db_open_read(own.sqlite, &error)
                                            : reindex_open_read(store, NULL, FALSE, &error);
    if (db == NULL && g_error_matches(error, DB_ERROR, DB_ERROR_MISSING)) {
      rc = check_unknown("no TLS report stored yet in %s", where);
      goto out;
    }
    if (db == NULL) {
      rc = check_unknown("%s", error->message);
      goto out;
    }
    QueryParams params = { today - (gint64) (days - 1) * 86400, today + 86400,
                           (const char *const *) own.domains, warn, crit,
                           (const char *const *) own.orgs };
    g_autoptr(QuerySummary) sum = query_summary(db, &params, &error);
    g_autoptr(GPtrArray) latest = sum != NULL ? query_latest(db, &params, &error) : NULL;
    if (sum == NULL || latest == NULL) {
      rc = check_unknown("%s", error->message);
      goto out;
    }

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
    for (guint i = 0; own.domains != NULL && own.domains[i] != NULL; i++) {
      char *lower = g_ascii_strdown(own.domains[i], -1);
      g_ptr_array_add(lowered, lower);
      check_domain(by_name, all, lower);
    }
    if (all->len == 0) {
      rc = check_unknown("no TLS report in %s%s", where,
                         own.orgs != NULL ? " from the organizations given" : "");
      goto out;
    }
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
    RenderCheckOptions ro = { warn, crit, min_sessions, days, stale, now };
    g_autoptr(GString) text = g_string_new(NULL);
    rc = render_check(all, &ro, text);
    if (fwrite(text->str, 1, text->len, stdout) != text->len || fflush(stdout) != 0) {
      tr_log_error("standard output: %s", g_strerror(errno));
      rc = RENDER_PLUGIN_UNKNOWN;
    }
  }
out:
  check_args_clear(&own);
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
