/* cmd-reindex.c - `tlsrpt-ingest reindex`: rebuild the SQL index from the tree. */
#include "command.h"

#include "cli.h"
#include "log.h"
#include "reindex.h"

#include <unistd.h>

typedef struct {
  char *sqlite;
  double lock_timeout;
} ReindexArgs;

static const GOptionEntry cmd_reindex_entries[] = {
  { "sqlite", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(ReindexArgs, sqlite),
    "Write the index to FILE instead of STORE/reports.sqlite", "FILE" },
  { "lock-timeout", 0, 0, G_OPTION_ARG_DOUBLE, CLI_FIELD(ReindexArgs, lock_timeout),
    "Seconds to wait for the store lock (default 60)", "SECONDS" },
  { NULL },
};
static const CliGroup cmd_reindex_group = { "reindex", "Reindex options",
                                            cmd_reindex_entries, FALSE };
static const CliGroup *const cmd_reindex_groups[] = { &cli_group_store, &cmd_reindex_group,
                                                      NULL };

static int
cmd_reindex_run(const TrCommand *cmd, int argc, char **argv)
{
  ReindexArgs own = { NULL, 0 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, cmd_reindex_groups, &own, &common, argc, argv, &rc))
    return rc;
  g_autofree char *sqlite = own.sqlite;
  if (common.n_args != 0)
    return cli_usage_error(cmd, TR_MODE_BATCH, "takes no arguments");
  g_autofree char *store = cli_store_dir(&common);
  tr_log_init(cli_verbosity(&common), FALSE);
  if (!g_file_test(store, G_FILE_TEST_IS_DIR)) {
    tr_log_error("%s: no store here", store);
    return TR_EXIT_USAGE_BATCH;
  }
  ReindexStats stats;
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time();
  if (!reindex_store(store, sqlite, own.lock_timeout > 0 ? own.lock_timeout : 60,
                     isatty(2), &stats, &error)) {
    tr_log_error("%s", error->message);
    return TR_EXIT_TEMPFAIL;
  }
  g_autofree char *path = sqlite != NULL ? g_strdup(sqlite)
                                         : g_build_filename(store, "reports.sqlite", NULL);
  tr_log_info("indexed %u reports into %s in %.2f s%s", stats.reports, path,
              (double) (g_get_monotonic_time() - t0) / G_USEC_PER_SEC,
              stats.skipped > 0 ? " (some files skipped, see above)" : "");
  return TR_EXIT_OK;
}

const TrCommand cmd_reindex = {
  "reindex", "[--store DIR]",
  "Rebuild the SQL index (STORE/reports.sqlite) from the report tree. The tree is the "
  "truth; the new index replaces the old one when it is complete.",
  cmd_reindex_run, NULL,
};
