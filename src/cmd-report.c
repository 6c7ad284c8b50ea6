/* cmd-report.c - `tlsrpt-ingest report --html FILE`: one self-contained HTML page (or
 * its text for a mail body) of the window: per domain its severity, daily charts, the
 * failures with cause and fix, the MX hosts, the trend and the senders' deviations.
 * Reads the SQL index (query.h), renders with render-html.c. docs/monitoring.md. */
#include "command.h"

#include "cli.h"
#include "fsutil.h"
#include "log.h"
#include "query.h"
#include "reindex.h"
#include "render.h"
#include "report-datetime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REPORT_DEFAULT_DAYS 30

typedef struct {
  char *sqlite;
  int days;
  char **domains;
  char *html;
  char *format;
  char *now;
  char *warn;
  char *crit;
} ReportArgs;

static const GOptionEntry cmd_report_entries[] = {
  { "sqlite", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(ReportArgs, sqlite),
    "Read the index FILE instead of STORE/reports.sqlite", "FILE" },
  { "days", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(ReportArgs, days),
    "Reports starting in the last N days, today included (default 30)", "N" },
  { "domain", 0, 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(ReportArgs, domains),
    "Only policy domain D (repeatable)", "D" },
  { "html", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(ReportArgs, html),
    "Write the page to FILE (atomically; '-': standard output)", "FILE" },
  { "format", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(ReportArgs, format),
    "html (with --html) or text: the same content for a mail body, on standard output",
    "FORMAT" },
  { "now", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(ReportArgs, now),
    "As if it were DATE (YYYY-MM-DD or RFC 3339; default: now)", "DATE" },
  { "warn", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(ReportArgs, warn),
    "Warning threshold in percent (default 1)", "PCT" },
  { "crit", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(ReportArgs, crit),
    "Critical threshold in percent (default 5)", "PCT" },
  { NULL },
};
static const CliGroup cmd_report_group = { "report", "Report options", cmd_report_entries,
                                           FALSE };
static const CliGroup *const cmd_report_groups[] = { &cli_group_store, &cmd_report_group,
                                                     NULL };

static void
report_args_clear(ReportArgs *a)
{
  g_free(a->sqlite);
  g_strfreev(a->domains);
  g_free(a->html);
  g_free(a->format);
  g_free(a->now);
  g_free(a->warn);
  g_free(a->crit);
}

static gboolean
report_percent(const char *opt, const char *s, double *out, GError **error)
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

static gboolean
report_write(const char *path, const GString *text, GError **error)
{
  if (strcmp(path, "-") == 0) {
    if (fwrite(text->str, 1, text->len, stdout) != text->len || fflush(stdout) != 0) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "standard output: %s",
                  g_strerror(errno));
      return FALSE;
    }
    return TRUE;
  }
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *base = g_path_get_basename(path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fsutil_set_error_errno(error, errno, "cannot open the directory", dir);
    return FALSE;
  }
  gboolean ok = fsutil_write_atomic(fd, base, text->str, text->len, error);
  close(fd);
  if (!ok)
    g_prefix_error(error, "%s: ", path);
  return ok;
}

static int
cmd_report_run(const TrCommand *cmd, int argc, char **argv)
{
  ReportArgs own = { 0 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, cmd_report_groups, &own, &common, argc, argv, &rc)) {
    report_args_clear(&own);
    return rc;
  }
  g_autoptr(GError) error = NULL;
  int days = own.days > 0 ? own.days : REPORT_DEFAULT_DAYS;
  double warn = 0.01, crit = 0.05;
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  const char *format = own.format != NULL ? own.format : (own.html != NULL ? "html" : NULL);
  if (common.n_args != 0) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "takes no arguments");
    goto out;
  }
  if (format == NULL) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "needs --html FILE or --format text");
    goto out;
  }
  if (strcmp(format, "html") != 0 && strcmp(format, "text") != 0) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "--format takes html or text, not '%s'", format);
    goto out;
  }
  if (strcmp(format, "html") == 0 && own.html == NULL) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "--format html needs --html FILE");
    goto out;
  }
  if (own.days < 0) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "--days takes a positive number");
    goto out;
  }
  if (!report_percent("warn", own.warn, &warn, &error) ||
      !report_percent("crit", own.crit, &crit, &error)) {
    rc = cli_fail(cmd, error, TR_MODE_BATCH);
    goto out;
  }
  if (own.now != NULL) {
    gboolean zoneless;
    g_autofree char *full = strlen(own.now) == 10 ? g_strdup_printf("%sT12:00:00Z", own.now)
                                                   : g_strdup(own.now);
    if (!report_datetime_parse(full, &now, &zoneless)) {
      rc = cli_usage_error(cmd, TR_MODE_BATCH,
                           "--now takes a date (YYYY-MM-DD) or an RFC 3339 date-time, not '%s'",
                           own.now);
      goto out;
    }
  }
  if (own.html != NULL && strcmp(own.html, "-") != 0 &&
      !cli_check_path(&common, "html", own.html, CLI_PATH_OUTPUT, &error)) {
    rc = cli_fail(cmd, error, TR_MODE_BATCH);
    goto out;
  }

  tr_log_init(cli_verbosity(&common), FALSE);
  {
    gint64 today = now - (now % 86400);
    g_autofree char *store = cli_store_dir(&common);
    g_autoptr(TrDb) db = own.sqlite != NULL ? db_open_read(own.sqlite, &error)
                                            : reindex_open_read(store, NULL, FALSE, &error);
    QueryParams params = { today - (gint64) (days - 1) * 86400, today + 86400,
                           (const char *const *) own.domains, warn, crit, NULL };
    g_autofree char *note = g_strdup_printf("the last %d day%s", days, days == 1 ? "" : "s");
    g_autoptr(QuerySummary) sum = NULL;
    g_autoptr(GPtrArray) by_day = NULL, fail_day = NULL, devs = NULL, notes = NULL;
    if (db == NULL && g_error_matches(error, DB_ERROR, DB_ERROR_MISSING)) {
      g_clear_error(&error);
      sum = g_new0(QuerySummary, 1);
      sum->since = params.since;
      sum->until = params.until;
      sum->domains = g_ptr_array_new();
      by_day = g_ptr_array_new();
      fail_day = g_ptr_array_new();
      devs = g_ptr_array_new();
      notes = g_ptr_array_new();
    } else if (db == NULL) {
      tr_log_error("%s", error->message);
      rc = 1;
      goto out;
    } else if ((sum = query_summary(db, &params, &error)) == NULL ||
               (by_day = query_sessions_by_day(db, &params, &error)) == NULL ||
               (fail_day = query_failures_by_day(db, &params, &error)) == NULL ||
               (devs = query_deviations(db, &params, &error)) == NULL ||
               (notes = query_failure_notes(db, &params, &error)) == NULL) {
      tr_log_error("%s", error->message);
      rc = 1;
      goto out;
    }
    RenderReportInput in = { sum, by_day, fail_day, devs, notes, note, warn, crit };
    g_autoptr(GString) text = g_string_new(NULL);
    if (strcmp(format, "html") == 0) {
      render_report_html(&in, text);
      if (!report_write(own.html, text, &error)) {
        tr_log_error("%s", error->message);
        rc = 1;
        goto out;
      }
    } else {
      g_autofree char *where = g_strdup(own.sqlite != NULL ? own.sqlite : store);
      RenderSummaryOptions ro = { note, where, warn, crit };
      render_report_text_page(&in, &ro, text);
      if (!report_write(own.html != NULL ? own.html : "-", text, &error)) {
        tr_log_error("%s", error->message);
        rc = 1;
        goto out;
      }
    }
  }
  rc = TR_EXIT_OK;
out:
  report_args_clear(&own);
  return rc;
}

const TrCommand cmd_report = {
  "report", "--html FILE | --format text [--days N] [--domain D]...",
  "One self-contained HTML page (no script, no external resource, works offline and as "
  "a mail attachment) of the last --days days: per policy domain its severity, daily "
  "charts of successful and failed sessions and of failures by result type (inline "
  "SVG), the failures with cause, fix and MX, the trend, what the senders said and the "
  "deviations of their reports; --format text gives the same content for a mail body "
  "(docs/monitoring.md). Exit 0, 1 when the index cannot be read or the file written, "
  "2 on a usage error.",
  cmd_report_run, NULL,
};
