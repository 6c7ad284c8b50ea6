/* cli.h - command dispatch, and the option and config-file handling every command
 * shares. A command (cmd-NAME.c, see command.h) parses its argv with cli_parse(): its
 * own option groups plus the shared ones it chooses, with the config file applied
 * through those groups.
 *
 * Option groups are data. A CliGroup's entries are ordinary GOptionEntry rows whose
 * arg_data is not a pointer but the offset of the field they fill (CLI_FIELD()), in
 * CliCommon for the shared groups (shared = TRUE), else in the command's own options
 * struct (the @own argument of cli_parse()). A G_OPTION_ARG_CALLBACK entry keeps its
 * function in arg_data and is called with that struct as its data.
 *
 * Example, a command with one option of its own and the store group:
 *
 *   typedef struct { char *domain; gboolean json; } SummaryArgs;
 *   static const GOptionEntry summary_entries[] = {
 *     { "domain", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(SummaryArgs, domain),
 *       "Only the reports of DOMAIN", "DOMAIN" },
 *     { "json", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(SummaryArgs, json), "JSON output", NULL },
 *     { NULL },
 *   };
 *   static const CliGroup summary_group = { "summary", "Summary options", summary_entries, FALSE };
 *   static const CliGroup *const summary_groups[] = { &cli_group_store, &summary_group, NULL };
 *
 *   static int
 *   summary_run(const TrCommand *cmd, int argc, char **argv)
 *   {
 *     SummaryArgs own = { 0 };
 *     g_auto(CliCommon) common = CLI_COMMON_INIT;
 *     int rc;
 *     if (!cli_parse(cmd, summary_groups, &own, &common, argc, argv, &rc))
 *       return rc;                       // --help, -V, or an error already printed
 *     if (common.n_args != 0)
 *       return cli_usage_error(cmd, TR_MODE_BATCH, "takes no arguments");
 *     g_autofree char *store = cli_store_dir(&common);
 *     ...
 *     g_free(own.domain);
 *     return TR_EXIT_OK;
 *   }
 *
 * Config file: [tlsrpt-ingest] 'key = value' lines are the long options without the
 * dashes. A key of this command's groups is applied before the command line (which
 * wins); a key of another command's option (any group in cli_config_groups[],
 * command.c) is accepted and ignored; any other key is a config error naming the file.
 * 'password' is read for the imap source (CliCommon.config_password) and requires a
 * private file. Only commands that take cli_group_store or cli_group_config read a
 * config file. A value of the wrong type, or an empty one, is a config error naming
 * the file and the key; so is a value found wrong later, when the check goes through
 * cli_blame().
 *
 * In TR_MODE_MDA every error is also sent to syslog and exits 75 (tr_exit_for()): an
 * MTA bounces any other code, and a report would go back to its sender. */
#ifndef TLSRPT_CLI_H
#define TLSRPT_CLI_H

#include "common.h"
#include "command.h"

#include <stddef.h>

/* The whole program: returns the process exit code. */
int cli_main(int argc, char **argv);

typedef struct CliGroup CliGroup;
struct CliGroup {
  const char *name;              /* "store"; --help-NAME shows this group alone */
  const char *description;       /* "Store options" */
  const GOptionEntry *entries;   /* NULL-terminated; arg_data = CLI_FIELD(Type, field) */
  gboolean shared;               /* fills CliCommon, not the command's own struct */
};

#define CLI_FIELD(type, field) GSIZE_TO_POINTER(offsetof(type, field))

/* What the shared groups fill, and what cli_parse() found. Zero (CLI_COMMON_INIT) means
 * "not given" for every field. */
typedef struct {
  /* cli_group_store: --config --store --quiet --verbose */
  char *config;
  char *store;
  gboolean quiet;
  int verbose;
  /* cli_group_outputs: --csv --csv-raw --jsonl --sqlite --no-sqlite --postgres --no-store
   * --quarantine */
  char *csv;
  gboolean csv_raw;
  char *jsonl;
  char *sqlite;
  gboolean no_sqlite;
  char *postgres;
  gboolean no_store;
  char *quarantine;
  /* cli_group_limits: --max-* --batch-size --lock-timeout; a count or seconds not given
   * is CLI_UNSET / CLI_UNSET_SECONDS after cli_parse() */
  char *max_report_size;
  char *max_message_size;
  int max_mime_depth;
  int max_parts;
  int max_json_depth;
  int batch_size;
  double lock_timeout;
  /* cli_group_read (the reading commands, cli-read.h): --sqlite (the field above)
   * --days --since --until --now --domain --org */
  int days;
  char *since;
  char *until;
  char *now;
  char **domains;
  char **orgs;
  /* cli_group_thresholds: --warn --crit (percent, as given) */
  char *warn;
  char *crit;
  /* cli_group_trust: --dkim --dkim-keys --dkim-nameserver --dkim-timeout
   * --dkim-require-submitter --trust-authserv-id --accept-unsigned-files --domain (the same field
   * domains as cli_group_read's: no command takes both groups) */
  char *dkim;
  char *dkim_keys;
  char *dkim_nameserver;
  double dkim_timeout;
  gboolean dkim_require_submitter;
  char **trust_authserv_ids;
  gboolean accept_unsigned_files;
  /* Set by cli_parse(). */
  gboolean version;              /* -V was given (cli_parse() printed the version) */
  char **args;                   /* the positional arguments, NULL-terminated */
  guint n_args;
  char *config_file;             /* the config file that was read, or NULL */
  char *config_password;         /* its 'password =' value, or NULL */
  GHashTable *from_config;       /* options whose value is the config file's (set) */
  gboolean limits_given;         /* cli_parse() set the CLI_UNSET markers */
} CliCommon;

#define CLI_UNSET G_MININT
#define CLI_UNSET_SECONDS (-1e300)

#define CLI_COMMON_INIT { 0 }
void cli_common_clear(CliCommon *common);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CliCommon, cli_common_clear)

/* The shared groups. Their fields are in CliCommon. */
extern const CliGroup cli_group_store;     /* --config --store --quiet --verbose */
extern const CliGroup cli_group_outputs;   /* --csv --csv-raw --jsonl --no-store --quarantine */
extern const CliGroup cli_group_limits;    /* --max-report-size ... --lock-timeout */
extern const CliGroup cli_group_config;    /* --config alone, for commands without a store */
extern const CliGroup cli_group_read;      /* --sqlite --days --since --until --now --domain
                                              --org: the index and window of the reading
                                              commands (turned into QueryParams and an open
                                              index by cli-read.h) */
extern const CliGroup cli_group_thresholds; /* --warn --crit */
extern const CliGroup cli_group_trust;     /* --dkim ... --domain: the ingesting commands */

/* Every group whose keys a config file may hold (command.c): keys of groups the
 * running command does not take are accepted and ignored. */
extern const CliGroup *const cli_config_groups[];

/* Parse @argv (argv[0] = the command's name) with @groups (NULL-terminated) after
 * applying the config file through them. Every command also takes -V / --version.
 * Fields of non-shared groups land in @own. TRUE: go on (common->args holds the
 * arguments). FALSE: return *exit_code from run(): 0 after -V, else a usage or
 * config error already printed to standard error (the code chosen for @mode;
 * cli_parse() is cli_parse_mode() in TR_MODE_BATCH). --help prints and exits 0. */
gboolean cli_parse(const TrCommand *cmd, const CliGroup *const groups[], gpointer own,
                   CliCommon *common, int argc, char **argv, int *exit_code);
gboolean cli_parse_mode(const TrCommand *cmd, const CliGroup *const groups[], gpointer own,
                        CliCommon *common, int argc, char **argv, TrExitMode mode,
                        int *exit_code);

/* Print "tlsrpt-ingest CMD: MESSAGE" and the --help hint; returns the usage error's
 * exit code for @mode. */
int cli_usage_error(const TrCommand *cmd, TrExitMode mode, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

/* Print @error (CLI_ERROR: with the --help hint) and return tr_exit_for(error, mode). */
int cli_fail(const TrCommand *cmd, const GError *error, TrExitMode mode);

/* ---- turning CliCommon into settings ------------------------------------- */

/* TRUE when @option's (long name) value came from the config file. */
gboolean cli_from_config(const CliCommon *common, const char *option);

/* For a check of @option that failed with *error (CLI_ERROR_USAGE, its message
 * starting with "--OPTION"): when the value came from the config file, make it a
 * CLI_ERROR_CONFIG that names the file. Returns FALSE, for "return cli_blame(...)". */
gboolean cli_blame(const CliCommon *common, const char *option, GError **error);

typedef enum {
  CLI_PATH_DIR,               /* a directory we write into: not "/", a directory if present */
  CLI_PATH_OUTPUT,            /* a file we append to: "-" allowed; its directory exists */
  CLI_PATH_INPUT,             /* a file we read: exists and is a regular file */
  CLI_PATH_DIR_FILE,          /* as OUTPUT, in a directory made later (the store) */
} CliPathKind;

/* Check the path @value (nullable: not given, TRUE) of --@option before anything is
 * opened: never empty (an unset variable in a delivery command), and as @kind says.
 * CLI_ERROR_USAGE, or CLI_ERROR_CONFIG naming the file when it came from there. */
gboolean cli_check_path(const CliCommon *common, const char *option, const char *value,
                        CliPathKind kind, GError **error);

/* TRUE when standard input was closed when the program started (it is /dev/null now:
 * cli_main() opens /dev/null on a closed fd 0, 1 or 2, so no file of ours gets them). */
gboolean cli_stdin_was_closed(void);

/* (transfer full) --store, else $XDG_DATA_HOME/tlsrpt-ingest. */
char *cli_store_dir(const CliCommon *common);

/* -1 quiet, 0 normal, 1.. verbose. */
int cli_verbosity(const CliCommon *common);

/* "64M" -> bytes; NULL leaves *out. CLI_ERROR_USAGE naming --@option otherwise. */
gboolean cli_parse_size(const char *option, const char *text, gsize *out, GError **error);

/* The limits group's values into @limits and the batch and lock settings (each
 * nullable); unset values keep what is there. CLI_ERROR_USAGE on a bad value. */
gboolean cli_common_limits(const CliCommon *common, TrLimits *limits, guint *batch_size,
                           double *lock_timeout, GError **error);

/* The store, output and limits groups' values into @opts (store directory, outputs,
 * quarantine, verbosity, limits, batch and lock settings), for every command that runs
 * the pipeline. CLI_ERROR_USAGE on a bad limit. */
gboolean cli_common_options(const CliCommon *common, TrOptions *opts, GError **error);

/* The trust group's values into @opts (opts->trust, opts->domains: lower case, trailing
 * dots gone). Called by cli_common_options(). CLI_ERROR_USAGE on a bad value. */
gboolean cli_common_trust(const CliCommon *common, TrOptions *opts, GError **error);

/* Block SIGPIPE and SIGXFSZ; SIGTERM and SIGINT ask the pipeline to stop. */
void cli_install_signals(void);

#endif
