/* cmd-metrics.c - `tlsrpt-ingest metrics`: the store's numbers in the Prometheus text
 * exposition format, on standard output or written atomically into a file for
 * node_exporter's textfile collector. Reads the SQL index (query.h), renders with
 * render_prom() (render.h). docs/monitoring.md. */
#include "command.h"

#include "cli.h"
#include "fsutil.h"
#include "log.h"
#include "quarantine.h"
#include "query.h"
#include "reindex.h"
#include "render.h"
#include "report-datetime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define METRICS_DEFAULT_DAYS 1

typedef struct {
  char *sqlite;
  int days;
  char *output;
  char *now;
} MetricsArgs;

static const GOptionEntry cmd_metrics_entries[] = {
  { "sqlite", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(MetricsArgs, sqlite),
    "Read the index FILE instead of STORE/reports.sqlite", "FILE" },
  { "days", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(MetricsArgs, days),
    "The window of the session gauges: reports starting in the last N days, today "
    "included (default 1)", "N" },
  { "output", 'o', 0, G_OPTION_ARG_FILENAME, CLI_FIELD(MetricsArgs, output),
    "Write FILE atomically (a temporary file in its directory, renamed), e.g. "
    "node_exporter's textfile directory/tlsrpt.prom; default: standard output", "FILE" },
  { "now", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(MetricsArgs, now),
    "Count as if it were DATE (YYYY-MM-DD or RFC 3339; default: now)", "DATE" },
  { NULL },
};
static const CliGroup cmd_metrics_group = { "metrics", "Metrics options", cmd_metrics_entries,
                                            FALSE };
static const CliGroup *const cmd_metrics_groups[] = { &cli_group_store, &cmd_metrics_group,
                                                      NULL };

static void
metrics_args_clear(MetricsArgs *a)
{
  g_free(a->sqlite);
  g_free(a->output);
  g_free(a->now);
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

static gboolean
metrics_write(const char *path, const GString *text, GError **error)
{
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
  int days = own.days > 0 ? own.days : METRICS_DEFAULT_DAYS;
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  if (common.n_args != 0) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "takes no arguments");
    goto out;
  }
  if (own.days < 0) {
    rc = cli_usage_error(cmd, TR_MODE_BATCH, "--days takes a positive number");
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
    gint64 today = now - (now % 86400);
    g_autofree char *store = cli_store_dir(&common);
    g_autoptr(TrDb) db = own.sqlite != NULL ? db_open_read(own.sqlite, &error)
                                            : reindex_open_read(store, NULL, FALSE, &error);
    QueryParams params = { today - (gint64) (days - 1) * 86400, today + 86400, NULL, 0.01,
                           0.05, NULL };
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
          (sessions = query_sessions_by_policy(db, &params, &error)) == NULL ||
          (failures = query_failures_by_mx(db, &params, &error)) == NULL ||
          (latest = query_latest(db, &params, &error)) == NULL) {
        tr_log_error("%s", error->message);
        rc = 1;
        goto out;
      }
    }
    gint64 quarantined = -1;
    if (own.sqlite == NULL || common.store != NULL) {
      g_autofree char *qdir = quarantine_path(store, NULL);
      quarantined = metrics_quarantined(qdir);
    }
    RenderPromInput in = { sessions, failures, latest, store_reports, quarantined, days };
    g_autoptr(GString) text = g_string_new(NULL);
    render_prom(&in, text);
    if (own.output != NULL) {
      if (!metrics_write(own.output, text, &error)) {
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
  "metrics", "[--days N] [--output FILE]",
  "The store's numbers in the Prometheus text exposition format, with HELP and TYPE "
  "lines: sessions by policy domain, policy type, organization and result, failed "
  "sessions by domain, result type and MX over the last --days days, the newest report "
  "per domain and organization, reports stored and quarantined. --output writes a file "
  "atomically for node_exporter's textfile collector (docs/monitoring.md). Exit 0, 1 "
  "when the index cannot be read or the file written, 2 on a usage error.",
  cmd_metrics_run, NULL,
};
