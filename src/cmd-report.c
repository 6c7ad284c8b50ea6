/* cmd-report.c - `tlsrpt-ingest report --html FILE`: one self-contained HTML page (or
 * its text for a mail body) of the window: per domain its severity, daily charts, the
 * failures with cause and fix, the MX hosts, the trend and the senders' deviations.
 * Reads the SQL index (query.h), renders with render-html.c. docs/monitoring.md. */
#include "command.h"

#include "cli-read.h"
#include "fsutil.h"
#include "log.h"
#include "query.h"
#include "render.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REPORT_DEFAULT_DAYS 30

typedef struct {
  char *html;
  char *format;
} ReportArgs;

static const GOptionEntry cmd_report_entries[] = {
  { "html", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(ReportArgs, html),
    "Write the page to FILE (atomically; '-': standard output)", "FILE" },
  { "format", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(ReportArgs, format),
    "html (with --html) or text: the same content for a mail body, on standard output",
    "FORMAT" },
  { NULL },
};
static const CliGroup cmd_report_group = { "report", "Report options", cmd_report_entries,
                                           FALSE };
static const CliGroup *const cmd_report_groups[] = { &cli_group_store, &cli_group_read,
                                                     &cli_group_thresholds, &cmd_report_group,
                                                     NULL };

static void
report_args_clear(ReportArgs *a)
{
  g_free(a->html);
  g_free(a->format);
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
  return fsutil_write_file_atomic(path, text->str, text->len, error);
}

/* The daily, deviation and note rows of the page. The HTML page has a section for
 * its first RENDER_HTML_SECTIONS domains only: when the window has more, the rows
 * are asked for those (the same rows, far fewer to group); the text page shows every
 * domain's days. */
static gboolean
report_details(TrDb *db, const QueryParams *params, const QuerySummary *sum, gboolean html,
               GPtrArray **by_day, GPtrArray **fail_day, GPtrArray **devs, GPtrArray **notes,
               GError **error)
{
  QueryParams shown = *params;
  g_autofree const char **names = NULL;
  if (html && sum->domains->len > RENDER_HTML_SECTIONS) {
    names = g_new0(const char *, RENDER_HTML_SECTIONS + 1);
    for (guint i = 0; i < RENDER_HTML_SECTIONS; i++)
      names[i] = ((const QueryDomain *) sum->domains->pdata[i])->policy_domain;
    shown.domains = names;
  }
  return (*by_day = query_sessions_by_day(db, &shown, error)) != NULL &&
         (*fail_day = query_failures_by_day(db, &shown, error)) != NULL &&
         (*devs = query_deviations(db, &shown, error)) != NULL &&
         (*notes = query_failure_notes(db, &shown, error)) != NULL;
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
  CliRead r;
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
  if (!cli_read_params(&common, REPORT_DEFAULT_DAYS, &r, &error)) {
    rc = cli_fail(cmd, error, TR_MODE_BATCH);
    goto out;
  }
  if (own.html != NULL && strcmp(own.html, "-") != 0 &&
      !cli_check_path(&common, "html", own.html, CLI_PATH_OUTPUT, &error)) {
    rc = cli_fail(cmd, error, TR_MODE_BATCH);
    goto out;
  }

  tr_log_init(cli_verbosity(&common), FALSE);
  {
    const QueryParams *params = &r.params;
    g_autofree char *where = NULL;
    g_autoptr(TrDb) db = cli_read_open(&common, FALSE, &where, &error);
    g_autofree char *note = r.by_dates ? g_strdup("by report start")
                                       : g_strdup_printf("the last %d day%s", r.days,
                                                         r.days == 1 ? "" : "s");
    g_autoptr(QuerySummary) sum = NULL;
    g_autoptr(GPtrArray) by_day = NULL, fail_day = NULL, devs = NULL, notes = NULL;
    if (db == NULL && g_error_matches(error, DB_ERROR, DB_ERROR_MISSING)) {
      g_clear_error(&error);
      sum = g_new0(QuerySummary, 1);
      sum->since = params->since;
      sum->until = params->until;
      sum->domains = g_ptr_array_new();
      by_day = g_ptr_array_new();
      fail_day = g_ptr_array_new();
      devs = g_ptr_array_new();
      notes = g_ptr_array_new();
    } else if (db == NULL) {
      tr_log_error("%s", error->message);
      rc = 1;
      goto out;
    } else if ((sum = query_summary(db, params, &error)) == NULL ||
               !report_details(db, params, sum, strcmp(format, "html") == 0, &by_day,
                               &fail_day, &devs, &notes, &error)) {
      tr_log_error("%s", error->message);
      rc = 1;
      goto out;
    }
    RenderReportInput in = { sum, by_day, fail_day, devs, notes, note, params->warn,
                           params->crit };
    g_autoptr(GString) text = g_string_new(NULL);
    if (strcmp(format, "html") == 0) {
      render_report_html(&in, text);
      if (!report_write(own.html, text, &error)) {
        tr_log_error("%s", error->message);
        rc = 1;
        goto out;
      }
    } else {
      RenderSummaryOptions ro = { note, where, params->warn, params->crit };
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
  "report", "--html FILE | --format text [--days N] [--domain D]... [--org ORG]...",
  "One self-contained HTML page (no script, no external resource, works offline and as "
  "a mail attachment) of the last --days days: per policy domain its severity, daily "
  "charts of successful and failed sessions and of failures by result type (inline "
  "SVG), the failures with cause, fix and MX, the trend, what the senders said and the "
  "deviations of their reports; --format text gives the same content for a mail body "
  "(docs/monitoring.md). Exit 0, 1 when the index cannot be read or the file written, "
  "2 on a usage error.",
  cmd_report_run, NULL,
};
