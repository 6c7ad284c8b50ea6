/* cmd-summary.c - `tlsrpt-ingest summary`: is anything wrong with my mail's TLS, where,
 * since when, and what do I do. Reads the SQL index (query.h), renders (render.h). */
#include "command.h"

#include "cli-read.h"
#include "log.h"
#include "query.h"
#include "render.h"
#include "trust.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SUMMARY_DEFAULT_DAYS 30

typedef struct {
  char *by;
  char *format;
  char **dkim;
} SummaryArgs;

static const GOptionEntry cmd_summary_entries[] = {
  { "by", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(SummaryArgs, by),
    "A table by domain (default), mx, result, org, sending-ip or day", "KEY" },
  { "format", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(SummaryArgs, format),
    "text (default), json (docs/summary.md) or csv (the --by table)", "FORMAT" },
  { "dkim", 0, 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(SummaryArgs, dkim),
    "Only the reports with this trust verdict (pass, fail, none, temperror, permerror, "
    "trusted-ar, unauthenticated; repeatable; docs/trust.md)", "VERDICT" },
  { NULL },
};
const CliGroup cmd_summary_group = { "summary", "Summary options", cmd_summary_entries,
                                     FALSE };
static const CliGroup *const cmd_summary_groups[] = { &cli_group_store, &cli_group_read,
                                                      &cli_group_thresholds,
                                                      &cmd_summary_group, NULL };

static void
summary_args_clear(SummaryArgs *a)
{
  g_free(a->by);
  g_free(a->format);
  g_strfreev(a->dkim);
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
  CliRead r;
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
  if (!cli_read_params(&common, SUMMARY_DEFAULT_DAYS, &r, &error)) {
    rc = cli_fail(cmd, error, TR_MODE_BATCH);
    goto out;
  }
  /* A config file's 'dkim =' is the ingesting commands' policy (require, record, off),
   * not a filter: only the command line's --dkim filters. */
  if (own.dkim != NULL && cli_from_config(&common, "dkim"))
    g_clear_pointer(&own.dkim, g_strfreev);
  for (guint i = 0; own.dkim != NULL && own.dkim[i] != NULL; i++) {
    TrustVerdictKind kind;
    if (!trust_verdict_from_name(own.dkim[i], &kind)) {
      rc = cli_usage_error(cmd, TR_MODE_BATCH,
                           "--dkim takes pass, fail, none, temperror, permerror, trusted-ar "
                           "or unauthenticated, not '%s'",
                           own.dkim[i]);
      goto out;
    }
  }
  r.params.dkim = (const char *const *) own.dkim;

  tr_log_init(cli_verbosity(&common), FALSE);
  {
    g_autofree char *note =
        !r.by_dates ? g_strdup_printf("the last %d day%s by report start%s", r.days,
                                     r.days == 1 ? "" : "s",
                                     r.days_given ? "" : "; --days, --since to change")
                   : g_strdup("by report start");
    g_autofree char *where = NULL;
    g_autoptr(TrDb) db = cli_read_open(&common, isatty(2), &where, &error);
    RenderSummaryOptions ro = { note, where, r.params.warn, r.params.crit };
    g_autoptr(QuerySummary) sum = NULL;
    g_autoptr(GPtrArray) rows = NULL;
    if (db == NULL && g_error_matches(error, DB_ERROR, DB_ERROR_MISSING)) {
      /* No store, or nothing in it yet: an empty summary, said plainly. */
      g_clear_error(&error);
      sum = g_new0(QuerySummary, 1);
      sum->since = r.params.since;
      sum->until = r.params.until;
      sum->domains = g_ptr_array_new();
      rows = g_ptr_array_new();
    } else if (db == NULL) {
      tr_log_error("%s", error->message);
      rc = 1;
      goto out;
    } else {
      sum = query_summary_with_verdicts(db, &r.params, &error);
      if (sum != NULL && (by != QUERY_BY_DOMAIN || strcmp(format, "csv") == 0))
        rows = query_by(db, &r.params, by, &error);
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
  "summary",
  "[--days N | --since DATE [--until DATE]] [--domain D]... [--org ORG]... [--dkim VERDICT]...",
  "Say per policy domain how many TLS sessions failed, how bad that is, why (the "
  "result types with their cause and fix), on which MX, for whom and since when. "
  "Reads the SQL index of the store (docs/sql.md); the window is the last 30 days of "
  "report start dates unless told otherwise.",
  cmd_summary_run, NULL,
};
