/* cmd-metrics.c - `tlsrpt-ingest metrics`: the store's numbers in the Prometheus text
 * exposition format, on standard output or written atomically into a file for
 * node_exporter's textfile collector. Reads the SQL index (query.h), renders with
 * render_prom() (render.h). docs/monitoring.md. */
#include "command.h"

#include "cli-read.h"
#include "fsutil.h"
#include "log.h"
#include "quarantine.h"
#include "query.h"
#include "render.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define METRICS_DEFAULT_DAYS 1

typedef struct {
  char *output;
} MetricsArgs;

static const GOptionEntry cmd_metrics_entries[] = {
  { "output", 'o', 0, G_OPTION_ARG_FILENAME, CLI_FIELD(MetricsArgs, output),
    "Write FILE atomically (a temporary file in its directory, renamed), e.g. "
    "node_exporter's textfile directory/tlsrpt.prom; default: standard output", "FILE" },
  { NULL },
};
static const CliGroup cmd_metrics_group = { "metrics", "Metrics options", cmd_metrics_entries,
                                            FALSE };
static const CliGroup *const cmd_metrics_groups[] = { &cli_group_store, &cli_group_read,
                                                      &cmd_metrics_group, NULL };

static void
metrics_args_clear(MetricsArgs *a)
{
  g_free(a->output);
}

/* Messages in the quarantine directory @dir (its .eml files); 0 when there is none. */
static gint64
metrics_quarantined(const char *dir)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return 0;
  gint64 n = 0;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL)
    if (name[0] != '.' && g_str_has_suffix(name, ".eml"))
      n++;
  return n;
}

static int
cmd_metrics_run(const TrCommand *cmd, int argc, char **argv)
{
  MetricsArgs own = { 0 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, cmd_metrics_groups, &own, &common, argc, argv, &rc)) {
    metrics_args_clear(&own);
    return rc;
  }
  g_autoptr(GError) error = NULL;
  CliRead r;
  if (common.n_args != 0) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "takes no arguments");
    goto out;
  }
  if (!cli_read_params(&common, METRICS_DEFAULT_DAYS, &r, &error)) {
    rc = cli_fail(cmd, error, TR_MODE_BATCH);
    goto out;
  }
  if (own.output != NULL &&
      (strcmp(own.output, "-") == 0 ||
       !cli_check_path(&common, "output", own.output, CLI_PATH_OUTPUT, &error))) {
    if (error == NULL)
      rc = cli_usage_error(cmd, TR_MODE_BATCH, "--output needs a file (standard output is "
                                               "the default)");
    else
      rc = cli_fail(cmd, error, TR_MODE_BATCH);
    goto out;
  }

  tr_log_init(cli_verbosity(&common), FALSE);
  {
    const QueryParams *params = &r.params;
    g_autoptr(TrDb) db = cli_read_open(&common, FALSE, NULL, &error);
    g_autoptr(GPtrArray) sessions = NULL, failures = NULL, latest = NULL;
    gint64 store_reports = 0;
    if (db == NULL && g_error_matches(error, DB_ERROR, DB_ERROR_MISSING)) {
      /* Nothing stored yet: the metrics say so (zero reports), a scrape still works. */
      g_clear_error(&error);
      sessions = g_ptr_array_new();
      failures = g_ptr_array_new();
      latest = g_ptr_array_new();
    } else if (db == NULL) {
      tr_log_error("%s", error->message);
      rc = 1;
      goto out;
    } else {
      store_reports = db_count_reports(db, &error);
      if (store_reports < 0 ||
          (sessions = query_sessions_by_policy(db, params, &error)) == NULL ||
          (failures = query_failures_by_mx(db, params, &error)) == NULL ||
          (latest = query_latest(db, params, &error)) == NULL) {
        tr_log_error("%s", error->message);
        rc = 1;
        goto out;
      }
    }
    gint64 quarantined = -1;
    if ((common.sqlite == NULL && common.postgres == NULL) || common.store != NULL) {
      g_autofree char *store = cli_store_dir(&common);
      g_autofree char *qdir = quarantine_path(store, NULL);
      quarantined = metrics_quarantined(qdir);
    }
    RenderPromInput in = { sessions, failures, latest, store_reports, quarantined, r.days };
    g_autoptr(GString) text = g_string_new(NULL);
    render_prom(&in, text);
    if (own.output != NULL) {
      if (!fsutil_write_file_atomic(own.output, text->str, text->len, &error)) {
        tr_log_error("%s", error->message);
        rc = 1;
        goto out;
      }
    } else if (fwrite(text->str, 1, text->len, stdout) != text->len || fflush(stdout) != 0) {
      tr_log_error("standard output: %s", g_strerror(errno));
      rc = 1;
      goto out;
    }
  }
  rc = TR_EXIT_OK;
out:
  metrics_args_clear(&own);
  return rc;
}

const TrCommand cmd_metrics = {
  "metrics", "[--days N] [--domain D]... [--org ORG]... [--output FILE]",
  "The store's numbers in the Prometheus text exposition format, with HELP and TYPE "
  "lines: sessions by policy domain, policy type, organization and result, failed "
  "sessions by domain, result type and MX over the last --days days, the newest report "
  "per domain and organization, reports stored and quarantined. --output writes a file "
  "atomically for node_exporter's textfile collector (docs/monitoring.md). Exit 0, 1 "
  "when the index cannot be read or the file written, 2 on a usage error.",
  cmd_metrics_run, NULL,
};
