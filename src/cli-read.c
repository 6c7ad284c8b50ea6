/* cli-read.c - the reading commands' shared options into QueryParams, and opening
 * their index (cli-read.h). */
#include "cli-read.h"

#include "pg.h"
#include "reindex.h"
#include "report-datetime.h"

#include <string.h>

/* "1", "1.5", "1%" -> 0.01, 0.015; NULL leaves *out. */
static gboolean
cli_read_percent(const CliCommon *c, const char *opt, const char *s, double *out,
                 GError **error)
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
    return cli_blame(c, opt, error);
  }
  *out = v / 100.0;
  return TRUE;
}

/* YYYY-MM-DD (its start, or with @noon its noon; *date_only) or an RFC 3339 date-time. */
static gboolean
cli_read_date(const CliCommon *c, const char *opt, const char *s, gboolean noon,
              gint64 *out, gboolean *date_only, GError **error)
{
  gboolean zoneless;
  *date_only = strlen(s) == 10;
  g_autofree char *full =
      *date_only ? g_strdup_printf("%sT%s:00:00Z", s, noon ? "12" : "00") : g_strdup(s);
  if (!report_datetime_parse(full, out, &zoneless)) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--%s takes a date (YYYY-MM-DD) or an RFC 3339 date-time, not '%s'", opt, s);
    return cli_blame(c, opt, error);
  }
  return TRUE;
}

gboolean
cli_read_params(const CliCommon *c, int default_days, CliRead *out, GError **error)
{
  memset(out, 0, sizeof *out);
  QueryParams *p = &out->params;
  p->domains = (const char *const *) c->domains;
  p->orgs = (const char *const *) c->orgs;
  p->warn = 0.01;
  p->crit = 0.05;
  if (!cli_read_percent(c, "warn", c->warn, &p->warn, error) ||
      !cli_read_percent(c, "crit", c->crit, &p->crit, error))
    return FALSE;
  if (p->warn > p->crit) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--warn must not be above --crit");
    return cli_blame(c, cli_from_config(c, "warn") ? "warn" : "crit", error);
  }

  gboolean date_only;
  out->now = g_get_real_time() / G_USEC_PER_SEC;
  if (c->now != NULL && !cli_read_date(c, "now", c->now, TRUE, &out->now, &date_only, error))
    return FALSE;
  gint64 today = out->now - (out->now % 86400);
  if (c->days < 0) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--days takes a positive number");
    return cli_blame(c, "days", error);
  }
  if (c->days > 0 && (c->since != NULL || c->until != NULL)) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--days excludes --since and --until");
    return cli_blame(c, "days", error);
  }
  if (c->until != NULL && c->since == NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--until needs --since");
    return cli_blame(c, "until", error);
  }
  if (c->since == NULL) {
    out->days_given = c->days > 0;
    out->days = c->days > 0 ? c->days : default_days;
    p->since = today - (gint64) (out->days - 1) * 86400;
    p->until = today + 86400;
    return TRUE;
  }
  if (!cli_read_date(c, "since", c->since, FALSE, &p->since, &date_only, error))
    return FALSE;
  if (c->until != NULL) {
    if (!cli_read_date(c, "until", c->until, FALSE, &p->until, &date_only, error))
      return FALSE;
    if (date_only)
      p->until += 86400;
  } else {
    p->until = today + 86400;
  }
  if (p->until <= p->since) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--until must be after --since");
    return cli_blame(c, "until", error);
  }
  out->by_dates = TRUE;
  out->days = (int) MIN((p->until - p->since + 86399) / 86400, G_MAXINT);
  return TRUE;
}

TrDb *
cli_read_open(const CliCommon *c, gboolean progress, char **where, GError **error)
{
  /* PostgreSQL (--postgres): query.c asks it the same statements. A config file may
   * name both (for a host that writes both): the command line chooses then. */
  gboolean pg_cmdline = c->postgres != NULL && !cli_from_config(c, "postgres");
  gboolean sqlite_cmdline = c->sqlite != NULL && !cli_from_config(c, "sqlite");
  if (c->postgres != NULL && c->sqlite != NULL && pg_cmdline == sqlite_cmdline) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--sqlite and --postgres: read which one? (name one on the command line)");
    cli_blame(c, "sqlite", error);
    return NULL;
  }
  if (c->postgres != NULL && (c->sqlite == NULL || pg_cmdline)) {
    if (!pg_conninfo_check("postgres", c->postgres, error)) {
      cli_blame(c, "postgres", error);
      return NULL;
    }
    TrDb *db = db_open_postgres(c->postgres, error);
    if (db != NULL && where != NULL)
      *where = g_strdup(db_path(db));
    return db;
  }
  if (c->sqlite != NULL) {
    if (where != NULL)
      *where = g_strdup(c->sqlite);
    return db_open_read(c->sqlite, error);
  }
  g_autofree char *store = cli_store_dir(c);
  TrDb *db = reindex_open_read(store, NULL, progress, error);
  if (where != NULL)
    *where = g_steal_pointer(&store);
  return db;
}
