/* cmd-ingest.c - the ingestion commands (mda, maildir, mbox, file, imap): their options,
 * the source they open, the --watch loop and the summary line. */
#include "cli.h"
#include "command.h"

#include "log.h"
#include "mime-walk.h"
#include "pg.h"
#include "pipeline.h"

/* The options of the ingestion family beyond the shared groups. */
typedef struct {
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
  char *oauth2_token_command;
  char *oauth2_token_file;
  int oauth2_token_timeout;   /* CMD_INGEST_UNSET_TIMEOUT: not given */
  char *sasl;
} IngestArgs;

#define CMD_INGEST_UNSET_TIMEOUT G_MININT

static void
ingest_args_clear(IngestArgs *a)
{
  g_free(a->move_to);
  g_free(a->user);
  g_free(a->password_file);
  g_free(a->starttls);
  g_free(a->cacert);
  g_free(a->error_folder);
  g_free(a->oauth2_token_command);
  g_free(a->oauth2_token_file);
  g_free(a->sasl);
  memset(a, 0, sizeof *a);
}

static const GOptionEntry cmd_ingest_maildir_entries[] = {
  { "mark-seen", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(IngestArgs, mark_seen),
    "After storing, move new/x to cur/x:2,S (add the S flag)", NULL },
  { "move-to", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(IngestArgs, move_to),
    "After storing, move the message to the Maildir++ folder FOLDER (created if absent)",
    "FOLDER" },
  { NULL },
};

static const GOptionEntry cmd_ingest_imap_entries[] = {
  { "user", 'u', 0, G_OPTION_ARG_STRING, CLI_FIELD(IngestArgs, user), "IMAP user name",
    "USER" },
  { "password-file", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(IngestArgs, password_file),
    "Read the password from FILE (must not be readable by group or others); else "
    "$TLSRPT_IMAP_PASSWORD, the config file, or ~/.netrc", "FILE" },
  { "oauth2-token-command", 0, 0, G_OPTION_ARG_STRING,
    CLI_FIELD(IngestArgs, oauth2_token_command),
    "Log in with an OAuth2 access token (XOAUTH2 or OAUTHBEARER): the first line of "
    "what CMD prints, run with /bin/sh -c before each connection and again once when "
    "the server refuses the token", "CMD" },
  { "oauth2-token-file", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(IngestArgs, oauth2_token_file),
    "Log in with the OAuth2 access token in FILE (first line; must not be readable by "
    "group or others), read again at each connection", "FILE" },
  { "oauth2-token-timeout", 0, 0, G_OPTION_ARG_INT,
    CLI_FIELD(IngestArgs, oauth2_token_timeout),
    "Seconds the token command may take before it is killed (default 30)", "SECONDS" },
  { "sasl", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(IngestArgs, sasl),
    "The login's SASL mechanism: xoauth2, oauthbearer, plain or login (default: the best "
    "the server offers for the credentials given)", "MECH" },
  { "starttls", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(IngestArgs, starttls),
    "For imap:// URLs: required (default), try, or no", "MODE" },
  { "cacert", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(IngestArgs, cacert),
    "Trust the CA certificates in FILE", "FILE" },
  { "insecure", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(IngestArgs, insecure),
    "Do not verify the server certificate (dangerous)", NULL },
  { "all", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(IngestArgs, all),
    "Fetch every message, not only unseen ones", NULL },
  { "mark-seen", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(IngestArgs, mark_seen),
    "After storing, flag the message \\Seen (the default)", NULL },
  { "move-to", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(IngestArgs, move_to),
    "After storing, move the message to FOLDER (created if missing)", "FOLDER" },
  { "error-folder", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(IngestArgs, error_folder),
    "Move quarantined messages to FOLDER", "FOLDER" },
  { "once", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(IngestArgs, once),
    "Poll once and exit (the default)", NULL },
  { "watch", 'w', 0, G_OPTION_ARG_INT, CLI_FIELD(IngestArgs, watch),
    "Poll every SECONDS until SIGTERM or SIGINT", "SECONDS" },
  { NULL },
};

const CliGroup cmd_ingest_maildir_group = { "maildir", "Maildir options",
                                            cmd_ingest_maildir_entries, FALSE };
const CliGroup cmd_ingest_imap_group = { "imap", "IMAP options", cmd_ingest_imap_entries,
                                         FALSE };

static const CliGroup *const cmd_ingest_plain_groups[] = {
  &cli_group_store, &cli_group_outputs, &cli_group_limits, &cli_group_trust, NULL,
};
static const CliGroup *const cmd_ingest_maildir_groups[] = {
  &cli_group_store, &cli_group_outputs, &cli_group_limits, &cli_group_trust,
  &cmd_ingest_maildir_group, NULL,
};
static const CliGroup *const cmd_ingest_imap_groups[] = {
  &cli_group_store, &cli_group_outputs, &cli_group_limits, &cli_group_trust,
  &cmd_ingest_imap_group, NULL,
};

static gboolean
cmd_ingest_check_maildir(const SourceConfig *src, char **args, GError **error)
{
  return source_maildir_check(src, error);
}

static gboolean
cmd_ingest_check_imap(const SourceConfig *src, char **args, GError **error)
{
  return source_imap_check(src, args[0], error);
}

/* Each ingestion command's data. */
typedef struct {
  const CliGroup *const *groups;
  TrExitMode mode;
  guint min_args;
  guint max_args;             /* G_MAXUINT = unbounded */
  /* Option checks of the source, before it opens (nullable). */
  gboolean (*check)(const SourceConfig *src, char **args, GError **error);
} CmdIngest;

static int cmd_ingest_run(const TrCommand *cmd, int argc, char **argv);
#define CMD_INGEST(cmd) ((const CmdIngest *) (cmd)->data)

static const CmdIngest cmd_ingest_mda = { cmd_ingest_plain_groups, TR_MODE_MDA, 0, 0, NULL };
static const CmdIngest cmd_ingest_many = { cmd_ingest_plain_groups, TR_MODE_BATCH, 1,
                                           G_MAXUINT, NULL };
static const CmdIngest cmd_ingest_maildir = { cmd_ingest_maildir_groups, TR_MODE_BATCH, 1,
                                              G_MAXUINT, cmd_ingest_check_maildir };
static const CmdIngest cmd_ingest_imap = { cmd_ingest_imap_groups, TR_MODE_BATCH, 1, 1,
                                           cmd_ingest_check_imap };

const TrCommand cmd_mda = {
  "mda", "< MESSAGE",
  "Store the reports of one message read on standard input (procmail, maildrop, "
  "Postfix pipe). Exits 0 once the message is stored, a duplicate, not a report or "
  "quarantined, and 75 (EX_TEMPFAIL) when it could not be stored durably.",
  cmd_ingest_run, &cmd_ingest_mda,
};
const TrCommand cmd_maildir = {
  "maildir", "DIR...",
  "Store the reports of every message in new/ and cur/ of each Maildir.",
  cmd_ingest_run, &cmd_ingest_maildir,
};
const TrCommand cmd_mbox = {
  "mbox", "FILE...",
  "Store the reports of every message of mbox files ('-' = standard input).",
  cmd_ingest_run, &cmd_ingest_many,
};
const TrCommand cmd_file = {
  "file", "PATH...",
  "Store reports from .eml messages and .json / .json.gz report files, or "
  "directories of them.",
  cmd_ingest_run, &cmd_ingest_many,
};
const TrCommand cmd_imap = {
  "imap", "URL",
  "Poll an IMAP mailbox (imaps://host/MAILBOX or imap://host/MAILBOX with STARTTLS) "
  "and store the reports of its messages; stored messages are marked seen or moved.",
  cmd_ingest_run, &cmd_ingest_imap,
};

/* ---- options --------------------------------------------------------------- */

static gboolean
cmd_ingest_is_imap(const TrCommand *cmd)
{
  return CMD_INGEST(cmd)->groups == cmd_ingest_imap_groups;
}

/* The parsed options into what the pipeline and the source are given. */
/* Every path given, before anything is opened: a mistake is a usage or config error,
 * said once and before any message is read. */
static gboolean
cmd_ingest_check_paths(const TrCommand *cmd, const CliCommon *c, const IngestArgs *a,
                       GError **error)
{
  if (!cli_check_path(c, "store", c->store, CLI_PATH_DIR, error) ||
      !cli_check_path(c, "quarantine", c->quarantine, CLI_PATH_DIR, error) ||
      !cli_check_path(c, "cacert", a->cacert, CLI_PATH_INPUT, error))
    return FALSE;
  /* An output file's directory must exist, unless it is the store, made on the way. */
  g_autofree char *store = cli_store_dir(c);
  g_autofree char *store_canon = g_canonicalize_filename(store, NULL);
  const char *outputs[][2] = {
    { "csv", c->csv }, { "jsonl", c->jsonl }, { "sqlite", c->sqlite },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(outputs); i++) {
    const char *path = outputs[i][1];
    if (path == NULL)
      continue;
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *dir_canon = g_canonicalize_filename(dir, NULL);
    CliPathKind kind = strcmp(dir_canon, store_canon) == 0 && path[0] != '\0'
                           ? CLI_PATH_DIR_FILE
                           : CLI_PATH_OUTPUT;
    if (!cli_check_path(c, outputs[i][0], path, kind, error))
      return FALSE;
  }
  if (a->password_file != NULL && a->password_file[0] == '\0')
    return cli_check_path(c, "password-file", a->password_file, CLI_PATH_INPUT, error);
  if (a->oauth2_token_file != NULL && a->oauth2_token_file[0] == '\0')
    return cli_check_path(c, "oauth2-token-file", a->oauth2_token_file, CLI_PATH_INPUT,
                          error);
  if (a->move_to != NULL && a->move_to[0] == '\0') {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--move-to: empty folder name");
    return cli_blame(c, "move-to", error);
  }
  for (guint i = 0; i < c->n_args; i++)
    if (c->args[i][0] == '\0') {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                  "%s: argument %u is empty (an unset variable in the command line?)",
                  cmd->name, i + 1);
      return FALSE;
    }
  return TRUE;
}

static gboolean
cmd_ingest_build(const TrCommand *cmd, const CliCommon *c, const IngestArgs *a,
                 TrOptions *opts, SourceConfig *src, guint *watch, GError **error)
{
  if (!cmd_ingest_check_paths(cmd, c, a, error))
    return FALSE;
  if (!cli_common_options(c, opts, error))
    return FALSE;
  if (a->mark_seen && a->move_to != NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--mark-seen and --move-to exclude each other");
    return cli_blame(c, cli_from_config(c, "move-to") ? "move-to" : "mark-seen", error);
  }
  src->store_dir = g_strdup(opts->store_dir);
  src->max_message_size = opts->limits.max_message_size;
  src->batch_size = opts->batch_size;
  /* What the source has to say is logged by the pipeline's logger. */
  src->events.func = pipeline_source_event;
  src->events.trace = opts->verbosity >= 2;
  src->mark_seen = a->mark_seen;
  src->move_to = g_strdup(a->move_to);
  *watch = 0;

  if (cmd_ingest_is_imap(cmd)) {
    if (a->once && a->watch > 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--once and --watch exclude each other");
      return cli_blame(c, cli_from_config(c, "watch") ? "watch" : "once", error);
    }
    if (a->watch < 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--watch takes a number of seconds");
      return cli_blame(c, "watch", error);
    }
    if (a->move_to == NULL)
      src->mark_seen = TRUE;
    src->imap.user = g_strdup(a->user);
    src->imap.password_file = g_strdup(a->password_file);
    src->imap.cacert = g_strdup(a->cacert);
    src->imap.insecure = a->insecure;
    src->imap.all = a->all;
    src->imap.error_folder = g_strdup(a->error_folder);
    src->imap.password = g_strdup(c->config_password);
    src->imap.oauth2_token_command = g_strdup(a->oauth2_token_command);
    src->imap.oauth2_token_file = g_strdup(a->oauth2_token_file);
    if (a->oauth2_token_timeout != CMD_INGEST_UNSET_TIMEOUT) {
      if (a->oauth2_token_timeout <= 0) {
        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                    "--oauth2-token-timeout takes a number of seconds, at least 1");
        return cli_blame(c, "oauth2-token-timeout", error);
      }
      src->imap.oauth2_token_timeout = (guint) a->oauth2_token_timeout;
    }
    static const struct {
      const char *name;
      TrSasl mech;
    } sasl[] = { { "xoauth2", TR_SASL_XOAUTH2 }, { "oauthbearer", TR_SASL_OAUTHBEARER },
                 { "plain", TR_SASL_PLAIN }, { "login", TR_SASL_LOGIN } };
    src->imap.sasl = TR_SASL_AUTO;
    if (a->sasl != NULL) {
      gsize i = 0;
      while (i < G_N_ELEMENTS(sasl) && g_ascii_strcasecmp(a->sasl, sasl[i].name) != 0)
        i++;
      if (i == G_N_ELEMENTS(sasl)) {
        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                    "--sasl takes xoauth2, oauthbearer, plain or login, not '%s'", a->sasl);
        return cli_blame(c, "sasl", error);
      }
      src->imap.sasl = sasl[i].mech;
    }
    *watch = (guint) a->watch;
    if (a->starttls == NULL || strcmp(a->starttls, "required") == 0)
      src->imap.starttls = TR_STARTTLS_REQUIRED;
    else if (strcmp(a->starttls, "try") == 0)
      src->imap.starttls = TR_STARTTLS_TRY;
    else if (strcmp(a->starttls, "no") == 0)
      src->imap.starttls = TR_STARTTLS_NO;
    else {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                  "--starttls takes required, try or no, not '%s'", a->starttls);
      return cli_blame(c, "starttls", error);
    }
  }
  if (CMD_INGEST(cmd)->check != NULL && !CMD_INGEST(cmd)->check(src, c->args, error)) {
    /* "--move-to X: ..." of a value from the config file: say so. */
    const char *m = (*error)->message;
    if ((*error)->domain != CLI_ERROR || !g_str_has_prefix(m, "--"))
      return FALSE;
    g_autofree char *option = g_strndup(m + 2, strspn(m + 2, "abcdefghijklmnopqrstuvwxyz-"));
    return cli_blame(c, option, error);
  }
  return TRUE;
}

/* ---- running ----------------------------------------------------------------- */

/* Sleep @seconds, waking early on a stop request. */
static void
cmd_ingest_sleep(guint seconds)
{
  gint64 until = g_get_monotonic_time() + (gint64) seconds * G_USEC_PER_SEC;
  while (!pipeline_stop_requested() && g_get_monotonic_time() < until)
    g_usleep(100 * 1000);
}

static void
cmd_ingest_add_stats(PipelineStats *total, const PipelineStats *s)
{
  total->messages += s->messages;
  total->reports += s->reports;
  total->stored += s->stored;
  total->duplicates += s->duplicates;
  total->not_reports += s->not_reports;
  total->quarantined += s->quarantined;
  total->skipped += s->skipped;
  total->not_stored += s->not_stored;
  total->known += s->known;
  total->tempfailed += s->tempfailed;
}

/* The batch commands' last two lines: where things went, and the counts. */
static void
cmd_ingest_log_summary(const TrOptions *opts, const PipelineStats *total)
{
  g_autoptr(GString) where = g_string_new(NULL);
  if (!opts->no_store)
    g_string_append_printf(where, " store=%s", opts->store_dir);
  if (opts->csv_path)
    g_string_append_printf(where, " csv=%s", opts->csv_path);
  if (opts->jsonl_path)
    g_string_append_printf(where, " jsonl=%s", opts->jsonl_path);
  if (opts->sqlite_path)
    g_string_append_printf(where, " sqlite=%s", opts->sqlite_path);
  if (opts->postgres) {
    g_autofree char *pg = pg_conninfo_describe(opts->postgres);
    g_string_append_printf(where, " postgres=%s", pg);
  }
  if (total->quarantined > 0) {
    g_autofree char *q = store_quarantine_path(opts->store_dir, opts->quarantine_dir);
    g_string_append_printf(where, " quarantine=%s", q);
  }
  tr_log_info("output:%s", where->str);
  g_autofree char *line = pipeline_stats_line(total);
  tr_log_info("%s", line);
}

static int
cmd_ingest_source(const TrCommand *cmd, const TrOptions *opts, const SourceConfig *src,
                  guint watch, char **args)
{
  TrExitMode mode = CMD_INGEST(cmd)->mode;
  const SourceOps *ops = source_find(cmd->name);
  g_assert(ops != NULL);
  g_autoptr(GError) error = NULL;
  gpointer self = ops->open(src, args, &error);
  if (self == NULL) {
    tr_log_error("%s", error->message);
    return tr_exit_for(error, mode);
  }

  PipelineStats total = { 0 };
  int rc;
  guint backoff = 0;
  for (;;) {
    PipelineStats stats;
    rc = pipeline_run(ops, self, opts, mode == TR_MODE_MDA, &stats);
    cmd_ingest_add_stats(&total, &stats);
    if (watch == 0 || pipeline_stop_requested())
      break;
    /* Only a temporary failure is worth polling again after; what needs the admin
     * (login, certificate, lock, usage, a damaged store) ends the watch. */
    if (rc != TR_EXIT_OK && rc != TR_EXIT_QUARANTINED && rc != TR_EXIT_SKIPPED &&
        rc != TR_EXIT_TEMPFAIL)
      break;
    if (rc == TR_EXIT_TEMPFAIL) {
      /* Network trouble: back off (up to 10 polling intervals), logged by the pipeline. */
      backoff = backoff == 0 ? 1 : MIN(backoff * 2, 10u);
      cmd_ingest_sleep(watch * backoff);
    } else {
      backoff = 0;
      cmd_ingest_sleep(watch);
    }
    if (pipeline_stop_requested()) {
      rc = TR_EXIT_OK;
      break;
    }
  }
  ops->close(self);

  if (pipeline_stop_requested()) {
    /* --watch: a clean stop. A batch command: the rest is left for a later run. */
    rc = watch > 0 ? (rc == TR_EXIT_TEMPFAIL ? TR_EXIT_OK : rc) : TR_EXIT_TEMPFAIL;
  }
  if (mode != TR_MODE_MDA)
    cmd_ingest_log_summary(opts, &total);
  return rc;
}

/* mda, maildir, mbox, file, imap: argv[0] is the command's name. */
static int
cmd_ingest_run(const TrCommand *cmd, int argc, char **argv)
{
  const CmdIngest *ci = CMD_INGEST(cmd);
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  IngestArgs args = { .oauth2_token_timeout = CMD_INGEST_UNSET_TIMEOUT };
  int rc;
  if (!cli_parse_mode(cmd, ci->groups, &args, &common, argc, argv, ci->mode, &rc)) {
    ingest_args_clear(&args);
    return rc;
  }
  if (ci->mode == TR_MODE_MDA && cli_stdin_was_closed()) {
    ingest_args_clear(&args);
    g_autoptr(GError) closed = g_error_new_literal(
        CLI_ERROR, CLI_ERROR_USAGE,
        "standard input is closed: mda reads the message from standard input (a pipe "
        "or a redirect, as an MTA gives it)");
    return cli_fail(cmd, closed, ci->mode);
  }
  if (common.n_args < ci->min_args || common.n_args > ci->max_args) {
    ingest_args_clear(&args);
    return cli_usage_error(cmd, ci->mode, "expected %s", cmd->args);
  }

  TrOptions opts;
  tr_options_init(&opts);
  SourceConfig src;
  source_config_init(&src);
  guint watch = 0;
  g_autoptr(GError) error = NULL;
  if (!cmd_ingest_build(cmd, &common, &args, &opts, &src, &watch, &error)) {
    rc = cli_fail(cmd, error, ci->mode);
    goto out;
  }
  tr_log_init(opts.verbosity, ci->mode == TR_MODE_MDA);
  if (src.imap.insecure)
    tr_log_warn("--insecure: the server certificate is NOT verified; anyone on the path "
                "can read the password and the mail");

  mime_walk_init();
  cli_install_signals();
  rc = cmd_ingest_source(cmd, &opts, &src, watch, common.args);

out:
  tr_options_clear(&opts);
  source_config_clear(&src);
  ingest_args_clear(&args);
  return rc;
}
