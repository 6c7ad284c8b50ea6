/* cmd-summary.c - `tlsrpt-ingest summary`: is anything wrong with my mail's TLS, where,
 * since when, and what do I do. Reads the SQL index (query.h), renders (render.h). */
#include "command.h"
#include "report-datetime.h"

#include "cli.h"
#include "log.h"
#include "query.h"
#include "reindex.h"
#include "render.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SUMMARY_DEFAULT_DAYS 30

typedef struct {
  char *sqlite;
  int days;
  char *since;
  char *until;
  char **domains;
  char *by;
  char *format;
  char *warn;
  char *crit;
} SummaryArgs;

static const GOptionEntry cmd_summary_entries[] = {
  { "sqlite", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(SummaryArgs, sqlite),
    "Read the index FILE instead of STORE/reports.sqlite", "FILE" },
  { "days", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(SummaryArgs, days),
    "Reports starting in the last N days, today included (default 30)", "N" },
  { "since", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(SummaryArgs, since),
    "Reports starting on or after DATE (YYYY-MM-DD or RFC 3339, UTC)", "DATE" },
  { "until", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(SummaryArgs, until),
    "... and before the end of DATE (a day is included; a date-time is exclusive)", "DATE" },
  { "domain", 0, 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(SummaryArgs, domains),
    "Only policy domain D (repeatable)", "D" },
  { "by", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(SummaryArgs, by),
    "A table by domain (default), mx, result, org, sending-ip or day", "KEY" },
  { "format", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(SummaryArgs, format),
    "text (default), json (docs/summary.md) or csv (the --by table)", "FORMAT" },
  { "warn", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(SummaryArgs, warn),
    "Failure ratio from which a domain is a warning, in percent (default 1)", "PCT" },
  { "crit", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(SummaryArgs, crit),
    "Failure ratio above which a domain is critical, in percent (default 5)", "PCT" },
  { NULL },
};
const CliGroup cmd_summary_group = { "summary", "Summary options", cmd_summary_entries,
                                     FALSE };
static const CliGroup *const cmd_summary_groups[] = { &cli_group_store, &cmd_summary_group,
                                                      NULL };

static void
summary_args_clear(SummaryArgs *a)
{
  g_free(a->sqlite);
  g_free(a->since);
  g_free(a->until);
  g_strfreev(a->domains);
  g_free(a->by);
  g_free(a->format);
  g_free(a->warn);
  g_free(a->crit);
}

/* "1", "1.5", "1%" -> 0.01, 0.015. */
static gboolean
summary_percent(const char *opt, const char *s, double *out, GError **error)
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

/* YYYY-MM-DD (*date_only) or an RFC 3339 date-time. */
static gboolean
summary_date(const char *opt, const char *s, gint64 *out, gboolean *date_only,
             GError **error)
{
  gboolean zoneless;
  *date_only = strlen(s) == 10;
  g_autofree char *full = *date_only ? g_strdup_printf("%sT00:00:00Z", s) : g_strdup(s);
  if (!report_datetime_parse(full, out, &zoneless)) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--%s takes a date (YYYY-MM-DD) or an RFC 3339 date-time, not '%s'", opt, s);
    return FALSE;
  }
  return TRUE;
}

static gboolean
summary_window(const SummaryArgs *a, gint64 *since, gint64 *until, char **note,
               GError **error)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  gint64 today = now - (now % 86400);
  if (a->days < 0) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--days takes a positive number");
    return FALSE;
  }
  if (a->days > 0 && (a->since != NULL || a->until != NULL)) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--days excludes --since and --until");
    return FALSE;
  }
  if (a->until != NULL && a->since == NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--until needs --since");
    return FALSE;
  }
  if (a->since == NULL) {
    int days = a->days > 0 ? a->days : SUMMARY_DEFAULT_DAYS;
    *since = today - (gint64) (days - 1) * 86400;
    *until = today + 86400;
    *note = g_strdup_printf("the last %d day%s by report start%s", days, days == 1 ? "" : "s",
                            a->days > 0 ? "" : "; --days, --since to change");
    return TRUE;
  }
  gboolean date_only;
  if (!summary_date("since", a->since, since, &date_only, error))
    return FALSE;
  if (a->until != NULL) {
    if (!summary_date("until", a->until, until, &date_only, error))
      return FALSE;
    if (date_only)
      *until += 86400;
  } else {
    *until = today + 86400;
  }
  if (*until <= *since) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--until must be after --since");
    return FALSE;
  }
  *note = g_strdup("by report start");
  return TRUE;
}

static int
cmd_summary_run(const TrCommand *cmd, int argc, char **argv)
{
  SummaryArgs own = { 0 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, cmd_summary_groups, &own, &common, argc, argv, &rc)) {
    summary_args_clear(&own);
    return rc;
  }
  g_autoptr(GError) error = NULL;
  QueryBy by = QUERY_BY_DOMAIN;
  double warn = 0.01, crit = 0.05;
  gint64 since = 0, until = 0;
  g_autofree char *note = NULL;
  const char *format = own.format != NULL ? own.format : "text";
  if (common.n_args != 0) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "takes no arguments");
    goto out;
  }
  if (own.by != NULL && !query_by_parse(own.by, &by)) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH,
                         "--by takes domain, mx, result, org, sending-ip or day, not '%s'",
                         own.by);
    goto out;
  }
  if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0 &&
      strcmp(format, "csv") != 0) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "--format takes text, json or csv, not '%s'",
                         format);
    goto out;
  }
  if (!summary_percent("warn", own.warn, &warn, &error) ||
      !summary_percent("crit", own.crit, &crit, &error) ||
      !summary_window(&own, &since, &until, &note, &error)) {
    rc = cli_fail(cmd, error, TR_MODE_BATCH);
    goto out;
  }
  if (warn > crit) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "--warn must not be above --crit");
    goto out;
  }

  tr_log_init(cli_verbosity(&common), FALSE);
  {
    g_autofree char *store = cli_store_dir(&common);
    g_autoptr(TrDb) db = own.sqlite != NULL ? db_open_read(own.sqlite, &error)
                                            : reindex_open_read(store, NULL, isatty(2), &error);
    QueryParams params = { since, until, (const char *const *) own.domains, warn, crit,
                           NULL };
    RenderSummaryOptions ro = { note, own.sqlite != NULL ? own.sqlite : store, warn, crit };
    g_autoptr(QuerySummary) sum = NULL;
    g_autoptr(GPtrArray) rows = NULL;
    if (db == NULL && g_error_matches(error, DB_ERROR, DB_ERROR_MISSING)) {
      /* No store, or nothing in it yet: an empty summary, said plainly. */
      g_clear_error(&error);
      sum = g_new0(QuerySummary, 1);
      sum->since = since;
      sum->until = until;
      sum->domains = g_ptr_array_new();
      rows = g_ptr_array_new();
    } else if (db == NULL) {
      tr_log_error("%s", error->message);
      rc = 1;
      goto out;
    } else {
      sum = query_summary(db, &params, &error);
      if (sum != NULL && (by != QUERY_BY_DOMAIN || strcmp(format, "csv") == 0))
        rows = query_by(db, &params, by, &error);
      if (sum == NULL || (rows == NULL && error != NULL)) {
        tr_log_error("%s", error->message);
        rc = 1;
        goto out;
      }
    }
    g_autoptr(GString) text = g_string_new(NULL);
    if (strcmp(format, "json") == 0)
      render_summary_json(sum, &ro, by, rows, text);
    else if (strcmp(format, "csv") == 0)
      render_by_csv(by, rows, text);
    else
      render_summary_text(sum, &ro, by, rows, text);
    if (fwrite(text->str, 1, text->len, stdout) != text->len || fflush(stdout) != 0) {
      tr_log_error("standard output: %s", g_strerror(errno));
      rc = 1;
      goto out;
    }
  }
  rc = TR_EXIT_OK;
out:
  summary_args_clear(&own);
  return rc;
}

const TrCommand cmd_summary = {
  "summary", "[--days N | --since DATE [--until DATE]] [--domain D]...",
  "Say per policy domain how many TLS sessions failed, how bad that is, why (the "
  "result types with their cause and fix), on which MX, for whom and since when. "
  "Reads the SQL index of the store (docs/sql.md); the window is the last 30 days of "
  "report start dates unless told otherwise.",
  cmd_summary_run, NULL,
};
