/* cli.c - command line, config file, help texts and command dispatch. */
#include "cli.h"

#include "command.h"

#include "log.h"
#include "mime-walk.h"
#include "pipeline.h"

#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* What a command accepts beyond the output options. */
enum {
  CLI_OPT_MAILDIR = 1 << 0,   /* --mark-seen, --move-to */
  CLI_OPT_IMAP = 1 << 1,      /* --user ... --watch */
};

/* The ingestion family's own data, behind each TrCommand's data pointer. */
typedef struct {
  guint flags;
  gboolean mda;
  guint min_args;             /* G_MAXUINT max = unbounded */
  guint max_args;
} CliIngest;

static int cli_ingest_run(const TrCommand *cmd, int argc, char **argv);
#define CLI_INGEST(cmd) ((const CliIngest *) (cmd)->data)

static const CliIngest cli_ingest_mda = { 0, TRUE, 0, 0 };
static const CliIngest cli_ingest_many = { 0, FALSE, 1, G_MAXUINT };
static const CliIngest cli_ingest_maildir = { CLI_OPT_MAILDIR, FALSE, 1, G_MAXUINT };
static const CliIngest cli_ingest_imap = { CLI_OPT_IMAP, FALSE, 1, 1 };

const TrCommand cli_cmd_mda = {
  "mda", "< MESSAGE",
  "Store the reports of one message read on standard input (procmail, maildrop, "
  "Postfix pipe). Exits 0 once the message is stored, a duplicate, not a report or "
  "quarantined, and 75 (EX_TEMPFAIL) when it could not be stored durably.",
  cli_ingest_run, &cli_ingest_mda,
};
const TrCommand cli_cmd_maildir = {
  "maildir", "DIR...",
  "Store the reports of every message in new/ and cur/ of each Maildir.",
  cli_ingest_run, &cli_ingest_maildir,
};
const TrCommand cli_cmd_mbox = {
  "mbox", "FILE...",
  "Store the reports of every message of mbox files ('-' = standard input).",
  cli_ingest_run, &cli_ingest_many,
};
const TrCommand cli_cmd_file = {
  "file", "PATH...",
  "Store reports from .eml messages and .json / .json.gz report files, or "
  "directories of them.",
  cli_ingest_run, &cli_ingest_many,
};
const TrCommand cli_cmd_imap = {
  "imap", "URL",
  "Poll an IMAP mailbox (imaps://host/MAILBOX or imap://host/MAILBOX with STARTTLS) "
  "and store the reports of its messages; stored messages are marked seen or moved.",
  cli_ingest_run, &cli_ingest_imap,
};

/* Parsed values, before they become TrOptions. */
typedef struct {
  char *config;
  char *store;
  char *csv;
  char *jsonl;
  gboolean no_store;
  char *quarantine;
  gboolean quiet;
  int verbose;
  char *max_report_size;
  char *max_message_size;
  int max_mime_depth;
  int max_parts;
  int max_json_depth;
  int batch_size;
  double lock_timeout;
  gboolean mark_seen;
  char *move_to;
  char *user;
  char *password_file;
  char *starttls;
  char *cacert;
  gboolean insecure;
  gboolean all;
  char *error_folder;
  gboolean once;
  int watch;
} CliArgs;

static CliArgs cli_args;

static gboolean
cli_count_verbose(const char *name, const char *value, gpointer data, GError **error)
{
  cli_args.verbose++;
  return TRUE;
}

static const GOptionEntry cli_output_entries[] = {
  { "config", 'c', 0, G_OPTION_ARG_FILENAME, &cli_args.config,
    "Read defaults from FILE (else $XDG_CONFIG_HOME/tlsrpt-ingest/config, else "
    "/etc/tlsrpt-ingest.conf)", "FILE" },
  { "store", 's', 0, G_OPTION_ARG_FILENAME, &cli_args.store,
    "Store directory: the report tree and the state (default "
    "$XDG_DATA_HOME/tlsrpt-ingest)", "DIR" },
  { "csv", 0, 0, G_OPTION_ARG_FILENAME, &cli_args.csv,
    "Append one row per policy and per failure detail to FILE (header written once)",
    "FILE" },
  { "jsonl", 0, 0, G_OPTION_ARG_FILENAME, &cli_args.jsonl,
    "Append one normalized report per line to FILE ('-' = standard output)", "FILE" },
  { "no-store", 0, 0, G_OPTION_ARG_NONE, &cli_args.no_store,
    "Write no report tree, only --csv / --jsonl (the store directory still keeps the "
    "dedup index)", NULL },
  { "quarantine", 0, 0, G_OPTION_ARG_FILENAME, &cli_args.quarantine,
    "Keep messages that hold no valid report in DIR (default STORE/quarantine)", "DIR" },
  { "max-report-size", 0, 0, G_OPTION_ARG_STRING, &cli_args.max_report_size,
    "Largest inflated report, in bytes (K, M, G suffixes; default 64M)", "SIZE" },
  { "max-message-size", 0, 0, G_OPTION_ARG_STRING, &cli_args.max_message_size,
    "Largest message, in bytes (default 32M); larger ones are left alone", "SIZE" },
  { "max-mime-depth", 0, 0, G_OPTION_ARG_INT, &cli_args.max_mime_depth,
    "Deepest nesting of multiparts and forwarded messages walked (default 32)", "N" },
  { "max-parts", 0, 0, G_OPTION_ARG_INT, &cli_args.max_parts,
    "Most MIME parts walked in one message (default 1000)", "N" },
  { "max-json-depth", 0, 0, G_OPTION_ARG_INT, &cli_args.max_json_depth,
    "Deepest JSON nesting accepted in a report (default 64)", "N" },
  { "batch-size", 0, 0, G_OPTION_ARG_INT, &cli_args.batch_size,
    "Messages stored per group commit (default 512; mda always 1)", "N" },
  { "lock-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &cli_args.lock_timeout,
    "Seconds to wait for the store lock (default 60)", "SECONDS" },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &cli_args.quiet, "Log errors only", NULL },
  { "verbose", 'v', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK,
    (gpointer) cli_count_verbose, "Log every message (twice: debug)", NULL },
  { NULL },
};

static const GOptionEntry cli_maildir_entries[] = {
  { "mark-seen", 0, 0, G_OPTION_ARG_NONE, &cli_args.mark_seen,
    "After storing, move new/x to cur/x:2,S (add the S flag)", NULL },
  { "move-to", 0, 0, G_OPTION_ARG_STRING, &cli_args.move_to,
    "After storing, move the message to the Maildir++ folder FOLDER (created if absent)",
    "FOLDER" },
  { NULL },
};

static const GOptionEntry cli_imap_entries[] = {
  { "user", 'u', 0, G_OPTION_ARG_STRING, &cli_args.user, "IMAP user name", "USER" },
  { "password-file", 0, 0, G_OPTION_ARG_FILENAME, &cli_args.password_file,
    "Read the password from FILE (must not be readable by group or others); else "
    "$TLSRPT_IMAP_PASSWORD, the config file, or ~/.netrc", "FILE" },
  { "starttls", 0, 0, G_OPTION_ARG_STRING, &cli_args.starttls,
    "For imap:// URLs: required (default), try, or no", "MODE" },
  { "cacert", 0, 0, G_OPTION_ARG_FILENAME, &cli_args.cacert,
    "Trust the CA certificates in FILE", "FILE" },
  { "insecure", 0, 0, G_OPTION_ARG_NONE, &cli_args.insecure,
    "Do not verify the server certificate (dangerous)", NULL },
  { "all", 0, 0, G_OPTION_ARG_NONE, &cli_args.all,
    "Fetch every message, not only unseen ones", NULL },
  { "mark-seen", 0, 0, G_OPTION_ARG_NONE, &cli_args.mark_seen,
    "After storing, flag the message \\Seen (the default)", NULL },
  { "move-to", 0, 0, G_OPTION_ARG_STRING, &cli_args.move_to,
    "After storing, move the message to FOLDER (created if missing)", "FOLDER" },
  { "error-folder", 0, 0, G_OPTION_ARG_STRING, &cli_args.error_folder,
    "Move quarantined messages to FOLDER", "FOLDER" },
  { "max-message-size", 0, 0, G_OPTION_ARG_STRING, &cli_args.max_message_size,
    "Largest message fetched (default 32M); larger ones are left alone", "SIZE" },
  { "once", 0, 0, G_OPTION_ARG_NONE, &cli_args.once,
    "Poll once and exit (the default)", NULL },
  { "watch", 'w', 0, G_OPTION_ARG_INT, &cli_args.watch,
    "Poll every SECONDS until SIGTERM or SIGINT", "SECONDS" },
  { NULL },
};

static void
cli_args_clear(void)
{
  g_free(cli_args.config);
  g_free(cli_args.store);
  g_free(cli_args.csv);
  g_free(cli_args.jsonl);
  g_free(cli_args.quarantine);
  g_free(cli_args.max_report_size);
  g_free(cli_args.max_message_size);
  g_free(cli_args.move_to);
  g_free(cli_args.user);
  g_free(cli_args.password_file);
  g_free(cli_args.starttls);
  g_free(cli_args.cacert);
  g_free(cli_args.error_folder);
  memset(&cli_args, 0, sizeof cli_args);
}

static void
cli_print_usage(FILE *out)
{
  fputs("Usage: tlsrpt-ingest COMMAND [OPTION...] [ARG...]\n"
        "\n"
        "Store SMTP TLS reports (RFC 8460) received by mail in a directory tree, CSV or\n"
        "JSON Lines, each report once.\n"
        "\n"
        "Commands:\n",
        out);
  for (gsize i = 0; tr_commands[i] != NULL; i++) {
    g_autofree char *left = g_strdup_printf("%s %s", tr_commands[i]->name,
                                            tr_commands[i]->args);
    g_autofree char *first = g_strdup(tr_commands[i]->summary);
    char *dot = strstr(first, ". ");
    if (dot != NULL)
      dot[1] = '\0';
    fprintf(out, "  %-18s %s\n", left, first);
  }
  fputs("\n"
        "Options for every command are listed by 'tlsrpt-ingest COMMAND --help'.\n"
        "  -h, --help         Show this help\n"
        "  -V, --version      Show the version and the library versions\n"
        "\n"
        "Exit codes: 0 done; 1 some messages quarantined; 2 usage; 3 IMAP login refused;\n"
        "4 TLS/certificate failure; 5 mailbox locked by another poller; 75 temporary\n"
        "failure, nothing acknowledged that was not stored (mda: 64 usage, 78 config).\n"
        "See tlsrpt-ingest(1).\n",
        out);
}

static void
cli_print_version(void)
{
  printf("tlsrpt-ingest %s\n", TLSRPT_VERSION);
  printf("GMime %u.%u.%u, GLib %u.%u.%u, json-c %s, zlib %s, %s\n", gmime_major_version,
         gmime_minor_version, gmime_micro_version, glib_major_version, glib_minor_version,
         glib_micro_version, json_c_version(), zlibVersion(), source_imap_libcurl_version());
}

/* "64M" -> bytes. */
static gboolean
cli_parse_size(const char *option, const char *s, gsize *out, GError **error)
{
  if (s == NULL)
    return TRUE;
  char *end = NULL;
  errno = 0;
  guint64 v = g_ascii_strtoull(s, &end, 10);
  guint64 mult = 1;
  if (end != s && *end != '\0') {
    switch (g_ascii_toupper(*end)) {
    case 'K': mult = 1024; break;
    case 'M': mult = 1024 * 1024; break;
    case 'G': mult = 1024 * 1024 * 1024; break;
    default: mult = 0; break;
    }
    if (mult != 0 && end[1] != '\0' && g_ascii_strcasecmp(end + 1, "B") != 0 &&
        g_ascii_strcasecmp(end + 1, "iB") != 0)
      mult = 0;
  }
  if (end == s || errno != 0 || mult == 0 || v == 0 || v > G_MAXSIZE / mult) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--%s: '%s' is not a size (a number of bytes, with K, M or G)", option, s);
    return FALSE;
  }
  *out = (gsize) (v * mult);
  return TRUE;
}

/* ---- config file --------------------------------------------------------- */

static const GOptionEntry *
cli_lookup_entry(const GOptionEntry *entries, const char *key)
{
  for (const GOptionEntry *e = entries; e->long_name != NULL; e++)
    if (strcmp(e->long_name, key) == 0)
      return e;
  return NULL;
}

static char *
cli_default_config_path(void)
{
  char *user = g_build_filename(g_get_user_config_dir(), "tlsrpt-ingest", "config", NULL);
  if (g_file_test(user, G_FILE_TEST_EXISTS))
    return user;
  g_free(user);
  if (g_file_test("/etc/tlsrpt-ingest.conf", G_FILE_TEST_EXISTS))
    return g_strdup("/etc/tlsrpt-ingest.conf");
  return NULL;
}

static gboolean
cli_check_private(const char *path, const char *what, GError **error)
{
  struct stat st;
  if (stat(path, &st) != 0) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_CONFIG, "%s %s: %s", what, path,
                g_strerror(errno));
    return FALSE;
  }
  if (st.st_mode & 077) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_CONFIG,
                "%s %s holds a password but is readable by group or others "
                "(chmod 600 %s)",
                what, path, path);
    return FALSE;
  }
  return TRUE;
}

/* Turn the [tlsrpt-ingest] group of the config file into "--key=value" arguments that
 * go before the real ones (so the command line wins). Keys of options this command
 * does not take are ignored; unknown keys are an error. */
static gboolean
cli_load_config(const TrCommand *cmd, const char *path, gboolean explicit_path,
                GPtrArray *argv_out, char **password_out, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, error)) {
    g_prefix_error(error, "config file %s: ", path);
    if ((*error)->domain != CLI_ERROR) {
      GError *e = *error;
      *error = g_error_new_literal(CLI_ERROR, CLI_ERROR_CONFIG, e->message);
      g_error_free(e);
    }
    return FALSE;
  }
  (void) explicit_path;
  const char *group = "tlsrpt-ingest";
  g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    if (strcmp(groups[i], group) != 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_CONFIG,
                  "config file %s: unknown group [%s] (use [%s])", path, groups[i], group);
      return FALSE;
    }
  g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
    const char *key = keys[i];
    g_autofree char *value = g_key_file_get_string(kf, group, key, NULL);
    if (value == NULL)
      value = g_strdup("");
    g_strstrip(value);
    if (strcmp(key, "password") == 0) {
      if (!cli_check_private(path, "config file", error))
        return FALSE;
      g_free(*password_out);
      *password_out = g_steal_pointer(&value);
      continue;
    }
    const GOptionEntry *e = cli_lookup_entry(cli_output_entries, key);
    gboolean applies = e != NULL;
    if (e == NULL && (e = cli_lookup_entry(cli_maildir_entries, key)) != NULL)
      applies = (CLI_INGEST(cmd)->flags & CLI_OPT_MAILDIR) != 0;
    if (!applies && (e = cli_lookup_entry(cli_imap_entries, key)) != NULL)
      applies = (CLI_INGEST(cmd)->flags & CLI_OPT_IMAP) != 0;
    if (e == NULL || strcmp(key, "config") == 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_CONFIG, "config file %s: unknown key '%s'",
                  path, key);
      return FALSE;
    }
    if (!applies)
      continue;
    if (e->arg == G_OPTION_ARG_NONE || e->arg == G_OPTION_ARG_CALLBACK) {
      if (g_ascii_strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
          g_ascii_strcasecmp(value, "yes") == 0)
        g_ptr_array_add(argv_out, g_strdup_printf("--%s", key));
      else if (!(g_ascii_strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                 g_ascii_strcasecmp(value, "no") == 0)) {
        g_set_error(error, CLI_ERROR, CLI_ERROR_CONFIG,
                    "config file %s: '%s' takes true or false, not '%s'", path, key, value);
        return FALSE;
      }
    } else {
      g_ptr_array_add(argv_out, g_strdup_printf("--%s=%s", key, value));
    }
  }
  return TRUE;
}

/* ---- signals -------------------------------------------------------------- */

static void
cli_on_signal(int sig)
{
  pipeline_request_stop();
}

static void
cli_install_signals(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = cli_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Under a file size limit (ulimit -f, an MTA's limit) a write past it must fail with
   * EFBIG, which rolls the commit back and exits 75, not kill us mid-row. */
  signal(SIGXFSZ, SIG_IGN);
}

/* Sleep @seconds, waking early on a stop request. */
static void
cli_sleep_interruptible(guint seconds)
{
  gint64 until = g_get_monotonic_time() + (gint64) seconds * G_USEC_PER_SEC;
  while (!pipeline_stop_requested() && g_get_monotonic_time() < until)
    g_usleep(100 * 1000);
}

/* ---- command ------------------------------------------------------------- */

static gboolean
cli_build_options(const TrCommand *cmd, TrOptions *opts, GError **error)
{
  opts->store_dir = cli_args.store != NULL
                        ? g_strdup(cli_args.store)
                        : g_build_filename(g_get_user_data_dir(), "tlsrpt-ingest", NULL);
  opts->no_store = cli_args.no_store;
  opts->csv_path = g_strdup(cli_args.csv);
  opts->jsonl_path = g_strdup(cli_args.jsonl);
  opts->quarantine_dir = g_strdup(cli_args.quarantine);
  opts->verbosity = cli_args.quiet ? -1 : cli_args.verbose;
  if (!cli_parse_size("max-report-size", cli_args.max_report_size,
                      &opts->limits.max_report_size, error) ||
      !cli_parse_size("max-message-size", cli_args.max_message_size,
                      &opts->limits.max_message_size, error))
    return FALSE;

  struct {
    const char *name;
    int value;
    guint *target;
  } ints[] = {
    { "max-mime-depth", cli_args.max_mime_depth, &opts->limits.max_mime_depth },
    { "max-parts", cli_args.max_parts, &opts->limits.max_parts },
    { "max-json-depth", cli_args.max_json_depth, &opts->limits.max_json_depth },
    { "batch-size", cli_args.batch_size, &opts->batch_size },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(ints); i++) {
    if (ints[i].value < 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--%s must be a positive number",
                  ints[i].name);
      return FALSE;
    }
    if (ints[i].value > 0)
      *ints[i].target = (guint) ints[i].value;
  }
  if (cli_args.lock_timeout < 0) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--lock-timeout must not be negative");
    return FALSE;
  }
  if (cli_args.lock_timeout > 0)
    opts->lock_timeout = cli_args.lock_timeout;
  if (opts->no_store && opts->csv_path == NULL && opts->jsonl_path == NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--no-store needs --csv or --jsonl: reports would go nowhere");
    return FALSE;
  }
  if (cli_args.mark_seen && cli_args.move_to != NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--mark-seen and --move-to exclude each other");
    return FALSE;
  }
  opts->mark_seen = cli_args.mark_seen;
  opts->move_to = g_strdup(cli_args.move_to);

  if (CLI_INGEST(cmd)->flags & CLI_OPT_IMAP) {
    if (cli_args.once && cli_args.watch > 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--once and --watch exclude each other");
      return FALSE;
    }
    if (cli_args.watch < 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--watch takes a number of seconds");
      return FALSE;
    }
    if (cli_args.move_to == NULL)
      opts->mark_seen = TRUE;
    opts->imap.user = g_strdup(cli_args.user);
    opts->imap.password_file = g_strdup(cli_args.password_file);
    opts->imap.cacert = g_strdup(cli_args.cacert);
    opts->imap.insecure = cli_args.insecure;
    opts->imap.all = cli_args.all;
    opts->imap.error_folder = g_strdup(cli_args.error_folder);
    opts->imap.watch = (guint) cli_args.watch;
    if (cli_args.starttls == NULL || strcmp(cli_args.starttls, "required") == 0)
      opts->imap.starttls = TR_STARTTLS_REQUIRED;
    else if (strcmp(cli_args.starttls, "try") == 0)
      opts->imap.starttls = TR_STARTTLS_TRY;
    else if (strcmp(cli_args.starttls, "no") == 0)
      opts->imap.starttls = TR_STARTTLS_NO;
    else {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                  "--starttls takes required, try or no, not '%s'", cli_args.starttls);
      return FALSE;
    }
    if (opts->imap.user == NULL) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "imap needs --user");
      return FALSE;
    }
  }
  return TRUE;
}

static int
cli_run_source(const TrCommand *cmd, TrOptions *opts, char **args)
{
  const SourceOps *ops = source_find(cmd->name);
  g_assert(ops != NULL);
  g_autoptr(GError) error = NULL;
  gpointer self = ops->open(opts, args, &error);
  if (self == NULL) {
    tr_log_error("%s", error->message);
    if (error->domain == SOURCE_ERROR && error->code == SOURCE_ERROR_NOT_FOUND)
      return CLI_INGEST(cmd)->mda ? TR_EXIT_USAGE : TR_EXIT_USAGE_BATCH;
    if (error->domain == SOURCE_ERROR && error->code == SOURCE_ERROR_AUTH)
      return TR_EXIT_AUTH;
    if (error->domain == SOURCE_ERROR && error->code == SOURCE_ERROR_TLS)
      return TR_EXIT_TLS;
    if (error->domain == SOURCE_ERROR && error->code == SOURCE_ERROR_LOCKED)
      return TR_EXIT_LOCKED;
    return TR_EXIT_TEMPFAIL;
  }

  PipelineStats total = { 0 };
  int rc;
  guint backoff = 0;
  for (;;) {
    PipelineStats stats;
    rc = pipeline_run(ops, self, opts, CLI_INGEST(cmd)->mda, &stats);
    total.messages += stats.messages;
    total.reports += stats.reports;
    total.stored += stats.stored;
    total.duplicates += stats.duplicates;
    total.not_reports += stats.not_reports;
    total.quarantined += stats.quarantined;
    total.skipped += stats.skipped;
    total.known += stats.known;
    if (opts->imap.watch == 0 || pipeline_stop_requested())
      break;
    if (rc == TR_EXIT_AUTH || rc == TR_EXIT_TLS || rc == TR_EXIT_LOCKED ||
        rc == TR_EXIT_USAGE_BATCH)
      break;
    if (rc == TR_EXIT_TEMPFAIL) {
      /* Network trouble: back off (up to 10 polling intervals), logged by the pipeline. */
      backoff = backoff == 0 ? 1 : MIN(backoff * 2, 10u);
      cli_sleep_interruptible(opts->imap.watch * backoff);
    } else {
      backoff = 0;
      cli_sleep_interruptible(opts->imap.watch);
    }
    if (pipeline_stop_requested()) {
      rc = TR_EXIT_OK;
      break;
    }
  }
  ops->close(self);

  if (pipeline_stop_requested()) {
    /* --watch: a clean stop. A batch command: the rest is left for a later run. */
    rc = opts->imap.watch > 0 ? (rc == TR_EXIT_TEMPFAIL ? TR_EXIT_OK : rc) : TR_EXIT_TEMPFAIL;
  }
  if (!CLI_INGEST(cmd)->mda) {
    g_autoptr(GString) where = g_string_new(NULL);
    if (!opts->no_store)
      g_string_append_printf(where, " store=%s", opts->store_dir);
    if (opts->csv_path)
      g_string_append_printf(where, " csv=%s", opts->csv_path);
    if (opts->jsonl_path)
      g_string_append_printf(where, " jsonl=%s", opts->jsonl_path);
    if (total.quarantined > 0) {
      g_autofree char *q = store_quarantine_path(opts->store_dir, opts->quarantine_dir);
      g_string_append_printf(where, " quarantine=%s", q);
    }
    tr_log_info("output:%s", where->str);
    g_autofree char *line = pipeline_stats_line(&total);
    tr_log_info("%s", line);
  }
  return rc;
}

int
cli_main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  if (argc < 2) {
    cli_print_usage(stderr);
    return TR_EXIT_USAGE_BATCH;
  }
  const char *name = argv[1];
  if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
    cli_print_usage(stdout);
    return TR_EXIT_OK;
  }
  if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
    cli_print_version();
    return TR_EXIT_OK;
  }
  const TrCommand *cmd = tr_command_find(name);
  if (cmd == NULL) {
    fprintf(stderr, "tlsrpt-ingest: unknown command '%s'\n\n", name);
    cli_print_usage(stderr);
    return TR_EXIT_USAGE_BATCH;
  }
  return cmd->run(cmd, argc - 1, argv + 1);
}

/* mda, maildir, mbox, file, imap: argv[0] is the command's name. */
static int
cli_ingest_run(const TrCommand *cmd, int argc, char **argv)
{
  int usage_rc = CLI_INGEST(cmd)->mda ? TR_EXIT_USAGE : TR_EXIT_USAGE_BATCH;
  int config_rc = CLI_INGEST(cmd)->mda ? TR_EXIT_CONFIG : TR_EXIT_USAGE_BATCH;

  /* Find --config / -c before parsing, to put the config file's values first. */
  const char *config_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      break;
    if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
      config_path = argv[i + 1];
    else if (g_str_has_prefix(argv[i], "--config="))
      config_path = argv[i] + strlen("--config=");
  }

  memset(&cli_args, 0, sizeof cli_args);
  g_autoptr(GPtrArray) full = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(full, g_strdup_printf("tlsrpt-ingest %s", cmd->name));
  g_autofree char *config_password = NULL;
  g_autoptr(GError) error = NULL;
  {
    g_autofree char *path = config_path ? g_strdup(config_path) : cli_default_config_path();
    if (path != NULL &&
        !cli_load_config(cmd, path, config_path != NULL, full, &config_password, &error)) {
      fprintf(stderr, "tlsrpt-ingest: %s\n", error->message);
      return config_rc;
    }
  }
  for (int i = 1; i < argc; i++)
    g_ptr_array_add(full, g_strdup(argv[i]));
  g_ptr_array_add(full, NULL);

  g_autofree char *param = g_strdup_printf("%s", cmd->args);
  g_autoptr(GOptionContext) ctx = g_option_context_new(param);
  g_option_context_set_summary(ctx, cmd->summary);
  g_option_context_set_description(
      ctx, "Options can also be set in the config file, in a [tlsrpt-ingest] group, as\n"
           "'option-name = value' (flags: true/false); the command line wins.\n"
           "See tlsrpt-ingest(1).");
  g_option_context_add_main_entries(ctx, cli_output_entries, NULL);
  if (CLI_INGEST(cmd)->flags & CLI_OPT_MAILDIR)
    g_option_context_add_main_entries(ctx, cli_maildir_entries, NULL);
  if (CLI_INGEST(cmd)->flags & CLI_OPT_IMAP) {
    /* --max-message-size is already a common option. */
    GOptionEntry imap_entries[G_N_ELEMENTS(cli_imap_entries)];
    guint n = 0;
    for (const GOptionEntry *e = cli_imap_entries; e->long_name != NULL; e++)
      if (strcmp(e->long_name, "max-message-size") != 0)
        imap_entries[n++] = *e;
    memset(&imap_entries[n], 0, sizeof imap_entries[n]);
    g_option_context_add_main_entries(ctx, imap_entries, NULL);
  }

  int fargc = (int) full->len - 1;
  char **fargv = (char **) full->pdata;
  /* g_option_context_parse rearranges the pointers; keep our own copy for freeing. */
  g_autofree char **parse_argv = g_memdup2(fargv, sizeof(char *) * (gsize) (fargc + 1));
  int pargc = fargc;
  char **pargv = parse_argv;
  if (!g_option_context_parse(ctx, &pargc, &pargv, &error)) {
    fprintf(stderr, "tlsrpt-ingest %s: %s\nTry 'tlsrpt-ingest %s --help'.\n", cmd->name,
            error->message, cmd->name);
    cli_args_clear();
    return usage_rc;
  }
  guint nargs = (guint) pargc - 1;
  char **args = pargv + 1;
  if (nargs > 0 && strcmp(args[0], "--") == 0) {
    args++;
    nargs--;
  }
  if (nargs < CLI_INGEST(cmd)->min_args || nargs > CLI_INGEST(cmd)->max_args) {
    fprintf(stderr, "tlsrpt-ingest %s: expected %s\nTry 'tlsrpt-ingest %s --help'.\n",
            cmd->name, cmd->args, cmd->name);
    cli_args_clear();
    return usage_rc;
  }

  TrOptions opts;
  tr_options_init(&opts);
  if (!cli_build_options(cmd, &opts, &error)) {
    fprintf(stderr, "tlsrpt-ingest %s: %s\n", cmd->name, error->message);
    tr_options_clear(&opts);
    cli_args_clear();
    return usage_rc;
  }
  opts.imap.password = g_steal_pointer(&config_password);
  tr_log_init(opts.verbosity, CLI_INGEST(cmd)->mda);
  if (opts.imap.insecure)
    tr_log_warn("--insecure: the server certificate is NOT verified; anyone on the path "
                "can read the password and the mail");

  mime_walk_init();
  cli_install_signals();

  /* NULL-terminated argument list for the source. */
  g_autoptr(GPtrArray) source_args = g_ptr_array_new();
  for (guint i = 0; i < nargs; i++)
    g_ptr_array_add(source_args, args[i]);
  g_ptr_array_add(source_args, NULL);

  int rc = cli_run_source(cmd, &opts, (char **) source_args->pdata);
  tr_options_clear(&opts);
  cli_args_clear();
  return rc;
}
