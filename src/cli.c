/* cli.c - command dispatch, the top-level help, and the option and config-file handling
 * every command shares (cli.h). The commands themselves are cmd-*.c. */
#include "cli.h"

#include "command.h"
#include "escape.h"
#include "pg.h"
#include "pipeline.h"
#include "source-http.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <zlib.h>

/* ---- the shared groups --------------------------------------------------- */

static gboolean
cli_count_verbose(const char *name, const char *value, gpointer data, GError **error)
{
  ((CliCommon *) data)->verbose++;
  return TRUE;
}

static const GOptionEntry cli_store_entries[] = {
  { "config", 'c', 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CliCommon, config),
    "Read defaults from FILE (else $XDG_CONFIG_HOME/tlsrpt-ingest/config, else "
    "/etc/tlsrpt-ingest.conf)", "FILE" },
  { "store", 's', 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CliCommon, store),
    "Store directory: the report tree and the state (default "
    "$XDG_DATA_HOME/tlsrpt-ingest)", "DIR" },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, CLI_FIELD(CliCommon, quiet), "Log errors only", NULL },
  { "verbose", 'v', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK,
    (gpointer) cli_count_verbose, "Log every message (twice: debug)", NULL },
  { NULL },
};

static const GOptionEntry cli_outputs_entries[] = {
  { "csv", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CliCommon, csv),
    "Append one row per policy and per failure detail to FILE (header written once)",
    "FILE" },
  { "csv-raw", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(CliCommon, csv_raw),
    "Write CSV values exactly as sent: no ' before a formula-like value, control "
    "characters kept (see docs/csv.md)", NULL },
  { "jsonl", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CliCommon, jsonl),
    "Append one normalized report per line to FILE ('-' = standard output)", "FILE" },
  { "sqlite", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CliCommon, sqlite),
    "Keep the SQL index of the reports in FILE (default STORE/reports.sqlite while the "
    "tree is written; also with --no-store)", "FILE" },
  { "no-sqlite", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(CliCommon, no_sqlite),
    "Write no SQL index (the reading commands build it from the tree)", NULL },
  { "postgres", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, postgres),
    "Also store every report in the PostgreSQL database CONNINFO (libpq key=value "
    "string or postgresql:// URI; the password from ~/.pgpass, PGPASSFILE or PGPASSWORD, "
    "never in CONNINFO; see docs/postgres.md)", "CONNINFO" },
  { "no-store", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(CliCommon, no_store),
    "Write no report tree, only --csv / --jsonl / --sqlite / --postgres (the store directory still "
    "keeps the dedup index)", NULL },
  { "quarantine", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CliCommon, quarantine),
    "Keep messages that hold no valid report in DIR (default STORE/quarantine)", "DIR" },
  { NULL },
};

static const GOptionEntry cli_limits_entries[] = {
  { "max-report-size", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, max_report_size),
    "Largest inflated report, in bytes (K, M, G suffixes; default 64M)", "SIZE" },
  { "max-message-size", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, max_message_size),
    "Largest message, in bytes (default 32M); larger ones are left alone", "SIZE" },
  { "max-mime-depth", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CliCommon, max_mime_depth),
    "Deepest nesting of multiparts and forwarded messages walked (default 32)", "N" },
  { "max-parts", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CliCommon, max_parts),
    "Most MIME parts walked in one message (default 1000)", "N" },
  { "max-json-depth", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CliCommon, max_json_depth),
    "Deepest JSON nesting accepted in a report (default 64)", "N" },
  { "batch-size", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CliCommon, batch_size),
    "Messages stored per group commit (default 512; mda always 1)", "N" },
  { "lock-timeout", 0, 0, G_OPTION_ARG_DOUBLE, CLI_FIELD(CliCommon, lock_timeout),
    "Seconds to wait for the store lock (default 60)", "SECONDS" },
  { NULL },
};

static const GOptionEntry cli_trust_entries[] = {
  { "dkim", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, dkim),
    "DKIM on report mail: record (default: store every report with its verdict), "
    "require (quarantine a report without a pass) or off (docs/trust.md)", "POLICY" },
  { "dkim-keys", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CliCommon, dkim_keys),
    "Take DKIM keys from FILE (zone-file lines 'SELECTOR._domainkey.DOMAIN TXT \"...\"'), "
    "not from the DNS", "FILE" },
  { "dkim-nameserver", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, dkim_nameserver),
    "Ask this DNS server for DKIM keys (IP, IP:PORT or [IPv6]:PORT; default: those of "
    "/etc/resolv.conf)", "ADDR" },
  { "dkim-timeout", 0, 0, G_OPTION_ARG_DOUBLE, CLI_FIELD(CliCommon, dkim_timeout),
    "Seconds to wait for a DKIM key (default 10); no answer is a temperror", "SECONDS" },
  { "dkim-require-submitter", 0, 0, G_OPTION_ARG_NONE,
    CLI_FIELD(CliCommon, dkim_require_submitter),
    "A signature counts only when its domain also matches TLS-Report-Submitter", NULL },
  { "trust-authserv-id", 0, 0, G_OPTION_ARG_STRING_ARRAY,
    CLI_FIELD(CliCommon, trust_authserv_ids),
    "Trust the topmost Authentication-Results header of ID (our own MTA; repeatable) "
    "when it says dkim=pass", "ID" },
  { "accept-unsigned-files", 0, 0, G_OPTION_ARG_NONE,
    CLI_FIELD(CliCommon, accept_unsigned_files),
    "Under --dkim=require, still accept loose .json/.json.gz files and HTTPS POSTs "
    "(which cannot be signed)", NULL },
  { "domain", 'd', 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(CliCommon, domains),
    "Our domain: accept only reports for DOMAIN and its subdomains (*.DOMAIN: its "
    "subdomains only; repeatable); others are quarantined as not for our domains",
    "DOMAIN" },
  { NULL },
};

static const GOptionEntry cli_config_entries[] = {
  { "config", 'c', 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CliCommon, config),
    "Read defaults from FILE (else $XDG_CONFIG_HOME/tlsrpt-ingest/config, else "
    "/etc/tlsrpt-ingest.conf)", "FILE" },
  { NULL },
};

/* The reading commands' (summary, check, metrics, report) index, window and filters.
 * --sqlite and --postgres fill the same fields as the outputs group's: one config key
 * for both. */
static const GOptionEntry cli_read_entries[] = {
  { "sqlite", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(CliCommon, sqlite),
    "Read the index FILE instead of STORE/reports.sqlite", "FILE" },
  { "postgres", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, postgres),
    "Read the PostgreSQL database CONNINFO instead (libpq key=value string or "
    "postgresql:// URI, no password in it; docs/postgres.md)", "CONNINFO" },
  { "days", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(CliCommon, days),
    "Reports starting in the last N UTC days, today included (default: summary and "
    "report 30, check 2, metrics 1)", "N" },
  { "since", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, since),
    "Reports starting on or after DATE (YYYY-MM-DD or RFC 3339, UTC)", "DATE" },
  { "until", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, until),
    "... and before the end of DATE (a day is included; a date-time is exclusive)", "DATE" },
  { "now", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, now),
    "As if it were DATE (YYYY-MM-DD: its noon, or RFC 3339; default: now)", "DATE" },
  { "domain", 0, 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(CliCommon, domains),
    "Only policy domain D (repeatable)", "D" },
  { "org", 0, 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(CliCommon, orgs),
    "Only the reports of organization ORG (exact name, repeatable)", "ORG" },
  { NULL },
};

static const GOptionEntry cli_thresholds_entries[] = {
  { "warn", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, warn),
    "Failure ratio from which a domain is a warning, in percent (default 1)", "PCT" },
  { "crit", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(CliCommon, crit),
    "Failure ratio above which a domain is critical, in percent (default 5)", "PCT" },
  { NULL },
};

const CliGroup cli_group_read = { "read", "Index and window options", cli_read_entries,
                                  TRUE };
const CliGroup cli_group_thresholds = { "thresholds", "Thresholds", cli_thresholds_entries,
                                        TRUE };
const CliGroup cli_group_config = { "config", "Config file", cli_config_entries, TRUE };
const CliGroup cli_group_store = { "store", "Store and logging options", cli_store_entries,
                                   TRUE };
const CliGroup cli_group_outputs = { "outputs", "Output options", cli_outputs_entries, TRUE };
const CliGroup cli_group_limits = { "limits", "Limits", cli_limits_entries, TRUE };
const CliGroup cli_group_trust = { "trust", "Trust options (docs/trust.md)", cli_trust_entries,
                                   TRUE };

void
cli_common_clear(CliCommon *c)
{
  g_free(c->config);
  g_free(c->store);
  g_free(c->csv);
  g_free(c->jsonl);
  g_free(c->sqlite);
  g_free(c->postgres);
  g_free(c->quarantine);
  g_free(c->max_report_size);
  g_free(c->max_message_size);
  g_free(c->since);
  g_free(c->until);
  g_free(c->now);
  g_strfreev(c->domains);
  g_strfreev(c->orgs);
  g_free(c->warn);
  g_free(c->crit);
  g_free(c->dkim);
  g_free(c->dkim_keys);
  g_free(c->dkim_nameserver);
  g_strfreev(c->trust_authserv_ids);
  g_strfreev(c->args);
  g_free(c->config_file);
  if (c->config_password != NULL)
    memset(c->config_password, 0, strlen(c->config_password));
  g_free(c->config_password);
  if (c->from_config != NULL)
    g_hash_table_unref(c->from_config);
  memset(c, 0, sizeof *c);
}

/* ---- top-level help and version ------------------------------------------ */

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
        "Exit codes (docs/exit-codes.md):\n",
        out);
  tr_exit_print_table(out);
  fputs("See tlsrpt-ingest(1).\n", out);
}

static void
cli_print_version(void)
{
  printf("tlsrpt-ingest %s\n", TLSRPT_VERSION);
  printf("GMime %u.%u.%u, GLib %u.%u.%u, json-c %s, zlib %s, %s\n", gmime_major_version,
         gmime_minor_version, gmime_micro_version, glib_major_version, glib_minor_version,
         glib_micro_version, json_c_version(), zlibVersion(), source_imap_libcurl_version());
  printf("%s (serve)\n", source_http_library_version());
}

static gboolean cli_stdin_closed;

gboolean
cli_stdin_was_closed(void)
{
  return cli_stdin_closed;
}

/* A closed fd 0, 1 or 2 would be handed to the next file opened (the store's index,
 * say), and a log line written into it. */
static void
cli_reopen_std_fds(void)
{
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
      continue;
    if (fd == 0)
      cli_stdin_closed = TRUE;
    int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (n >= 0 && n != fd) {
      dup2(n, fd);
      close(n);
    }
  }
}

int
cli_main(int argc, char **argv)
{
  cli_reopen_std_fds();
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

/* ---- sizes and settings ------------------------------------------------------ */

gboolean
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
    if (mult != 0 && g_ascii_strcasecmp(end + 1, "B") == 0) {
      /* 3KB: a thousand or 1024? Said, not guessed. */
      guint64 si = g_ascii_toupper(*end) == 'K' ? 1000 : g_ascii_toupper(*end) == 'M'
                                                               ? 1000 * 1000
                                                               : 1000 * 1000 * 1000;
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                  "--%s: '%s' is ambiguous: say %.*s%c (%" G_GUINT64_FORMAT
                  " bytes) or %" G_GUINT64_FORMAT,
                  option, s, (int) (end - s), s, g_ascii_toupper(*end),
                  v <= G_MAXUINT64 / mult ? v * mult : 0,
                  v <= G_MAXUINT64 / si ? v * si : 0);
      return FALSE;
    }
    if (mult != 0 && end[1] != '\0' && g_ascii_strcasecmp(end + 1, "iB") != 0)
      mult = 0;
  }
  if (end != s && errno == 0 && mult != 0 && v == 0) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--%s must be at least 1 byte, not %s",
                option, s);
    return FALSE;
  }
  if (end == s || errno != 0 || mult == 0 || v > G_MAXSIZE / mult) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--%s: '%s' is not a size (a number of bytes, with K, M or G)", option, s);
    return FALSE;
  }
  *out = (gsize) (v * mult);
  return TRUE;
}

char *
cli_store_dir(const CliCommon *c)
{
  return c->store != NULL ? g_strdup(c->store)
                          : g_build_filename(g_get_user_data_dir(), "tlsrpt-ingest", NULL);
}

int
cli_verbosity(const CliCommon *c)
{
  return c->quiet ? -1 : c->verbose;
}

gboolean
cli_common_options(const CliCommon *c, TrOptions *opts, GError **error)
{
  opts->store_dir = cli_store_dir(c);
  opts->no_store = c->no_store;
  opts->csv_path = g_strdup(c->csv);
  opts->csv_raw = c->csv_raw;
  opts->jsonl_path = g_strdup(c->jsonl);
  opts->sqlite_path = g_strdup(c->sqlite);
  opts->no_sqlite = c->no_sqlite;
  opts->postgres = g_strdup(c->postgres);
  opts->quarantine_dir = g_strdup(c->quarantine);
  opts->verbosity = cli_verbosity(c);
  if (!cli_common_limits(c, &opts->limits, &opts->batch_size, &opts->lock_timeout, error))
    return FALSE;
  /* The outputs: somewhere to go, and no contradiction. */
  if (opts->no_store && opts->csv_path == NULL && opts->jsonl_path == NULL &&
      opts->sqlite_path == NULL && opts->postgres == NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--no-store needs --csv, --jsonl, --sqlite or --postgres: reports would go "
                "nowhere");
    return cli_blame(c, "no-store", error);
  }
  if (opts->no_sqlite && opts->sqlite_path != NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--sqlite and --no-sqlite exclude each other");
    return cli_blame(c, cli_from_config(c, "sqlite") ? "sqlite" : "no-sqlite", error);
  }
  if (opts->postgres != NULL && !pg_conninfo_check("postgres", opts->postgres, error))
    return cli_blame(c, "postgres", error);
  return cli_common_trust(c, opts, error);
}

gboolean
cli_common_trust(const CliCommon *c, TrOptions *opts, GError **error)
{
  TrTrustOptions *t = &opts->trust;
  if (c->dkim == NULL || strcmp(c->dkim, "record") == 0) {
    t->dkim = TR_DKIM_RECORD;
  } else if (strcmp(c->dkim, "require") == 0) {
    t->dkim = TR_DKIM_REQUIRE;
  } else if (strcmp(c->dkim, "off") == 0) {
    t->dkim = TR_DKIM_OFF;
  } else {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--dkim takes require, record or off, not '%s'", c->dkim);
    return cli_blame(c, "dkim", error);
  }
  if (!cli_check_path(c, "dkim-keys", c->dkim_keys, CLI_PATH_INPUT, error))
    return FALSE;
  if (c->dkim_timeout < 0) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--dkim-timeout must not be negative");
    return cli_blame(c, "dkim-timeout", error);
  }
  if (c->dkim_nameserver != NULL && c->dkim_nameserver[0] == '\0') {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--dkim-nameserver: empty address");
    return cli_blame(c, "dkim-nameserver", error);
  }
  t->dkim_keys = g_strdup(c->dkim_keys);
  t->dkim_nameserver = g_strdup(c->dkim_nameserver);
  t->dkim_timeout = c->dkim_timeout;
  t->require_submitter = c->dkim_require_submitter;
  t->accept_unsigned_files = c->accept_unsigned_files;
  if (c->trust_authserv_ids != NULL) {
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; c->trust_authserv_ids[i] != NULL; i++) {
      g_autofree char *one = g_strstrip(g_strdup(c->trust_authserv_ids[i]));
      if (*one == '\0' || strpbrk(one, " \t;()\"") != NULL) {
        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                    "--trust-authserv-id '%s': not an authserv-id (a host name, usually)",
                    c->trust_authserv_ids[i]);
        return cli_blame(c, "trust-authserv-id", error);
      }
      g_ptr_array_add(ids, g_steal_pointer(&one));
    }
    g_ptr_array_add(ids, NULL);
    t->authserv_ids = (char **) g_ptr_array_free(g_steal_pointer(&ids), FALSE);
  }
  if (c->domains != NULL) {
    g_autoptr(GPtrArray) d = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; c->domains[i] != NULL; i++) {
      g_autofree char *one = g_ascii_strdown(g_strstrip(c->domains[i]), -1);
      while (g_str_has_suffix(one, "."))
        one[strlen(one) - 1] = '\0';
      const char *name = g_str_has_prefix(one, "*.") ? one + 2 : one;
      if (*name == '\0' || strpbrk(name, "@/* \t") != NULL) {
        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                    "--domain %s: not a domain name (DOMAIN or *.DOMAIN)", c->domains[i]);
        return cli_blame(c, "domain", error);
      }
      g_ptr_array_add(d, g_steal_pointer(&one));
    }
    g_ptr_array_add(d, NULL);
    opts->domains = (char **) g_ptr_array_free(g_steal_pointer(&d), FALSE);
  }
  return TRUE;
}

gboolean
cli_common_limits(const CliCommon *c, TrLimits *limits, guint *batch_size,
                  double *lock_timeout, GError **error)
{
  if (!cli_parse_size("max-report-size", c->max_report_size, &limits->max_report_size,
                      error))
    return cli_blame(c, "max-report-size", error);
  if (!cli_parse_size("max-message-size", c->max_message_size, &limits->max_message_size,
                      error))
    return cli_blame(c, "max-message-size", error);
  guint unused = 0;
  struct {
    const char *name;
    int value;
    guint *target;
  } ints[] = {
    { "max-mime-depth", c->max_mime_depth, &limits->max_mime_depth },
    { "max-parts", c->max_parts, &limits->max_parts },
    { "max-json-depth", c->max_json_depth, &limits->max_json_depth },
    { "batch-size", c->batch_size, batch_size != NULL ? batch_size : &unused },
  };
  /* Like a size (a limit of 0 bytes is refused), a count given must be at least 1. */
  for (gsize i = 0; i < G_N_ELEMENTS(ints); i++) {
    int v = ints[i].value;
    if (v == CLI_UNSET || (v == 0 && !c->limits_given))
      continue;
    if (v < 1) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--%s must be at least 1, not %d",
                  ints[i].name, v);
      return cli_blame(c, ints[i].name, error);
    }
    *ints[i].target = (guint) v;
  }
  /* --lock-timeout 0: try once, do not wait. */
  gboolean timeout_given = c->limits_given ? c->lock_timeout != CLI_UNSET_SECONDS
                                           : c->lock_timeout != 0;
  if (timeout_given) {
    if (c->lock_timeout < 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--lock-timeout must not be negative");
      return cli_blame(c, "lock-timeout", error);
    }
    if (lock_timeout != NULL)
      *lock_timeout = c->lock_timeout;
  }
  return TRUE;
}

/* ---- messages ----------------------------------------------------------------- */

int
cli_usage_error(const TrCommand *cmd, TrExitMode mode, const char *format, ...)
{
  va_list ap;
  va_start(ap, format);
  g_autofree char *msg = g_strdup_vprintf(format, ap);
  va_end(ap);
  g_autoptr(GError) error = g_error_new_literal(CLI_ERROR, CLI_ERROR_USAGE, msg);
  return cli_fail(cmd, error, mode);
}

int
cli_fail(const TrCommand *cmd, const GError *error, TrExitMode mode)
{
  g_autofree char *msg = tr_escape_terminal(error->message);
  int rc = tr_exit_for(error, mode);
  fprintf(stderr, "tlsrpt-ingest %s: %s\n", cmd->name, msg);
  if (error->domain == CLI_ERROR && error->code == CLI_ERROR_USAGE)
    fprintf(stderr, "Try 'tlsrpt-ingest %s --help'.\n", cmd->name);
  if (mode == TR_MODE_MDA) {
    /* The MTA keeps the message queued (exit 75) until the admin fixes this. */
    fprintf(stderr, "tlsrpt-ingest %s: not stored, exit %d: the message stays queued\n",
            cmd->name, rc);
    openlog("tlsrpt-ingest", LOG_PID, LOG_MAIL);
    syslog(LOG_ERR, "%s: %s (not stored, exit %d: the message stays queued)", cmd->name,
           msg, rc);
  }
  return rc;
}

gboolean
cli_from_config(const CliCommon *c, const char *option)
{
  return c->from_config != NULL && g_hash_table_contains(c->from_config, option);
}

gboolean
cli_blame(const CliCommon *c, const char *option, GError **error)
{
  if (error == NULL || *error == NULL || !cli_from_config(c, option))
    return FALSE;
  const char *m = (*error)->message;
  if (g_str_has_prefix(m, "--"))
    m += 2;
  GError *e = g_error_new(CLI_ERROR, CLI_ERROR_CONFIG, "config file %s: %s", c->config_file,
                          m);
  g_clear_error(error);
  *error = e;
  return FALSE;
}

gboolean
cli_check_path(const CliCommon *c, const char *option, const char *value, CliPathKind kind,
               GError **error)
{
  if (value == NULL)
    return TRUE;
  if (value[0] == '\0') {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--%s: empty path (an unset variable in the command line?)", option);
    return cli_blame(c, option, error);
  }
  struct stat st;
  switch (kind) {
  case CLI_PATH_DIR: {
    g_autofree char *canon = g_canonicalize_filename(value, NULL);
    if (strcmp(canon, "/") == 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                  "--%s %s: the root directory, not a directory of its own", option, value);
      return cli_blame(c, option, error);
    }
    if (stat(value, &st) == 0 && !S_ISDIR(st.st_mode)) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--%s %s: not a directory", option,
                  value);
      return cli_blame(c, option, error);
    }
    return TRUE;
  }
  case CLI_PATH_DIR_FILE:
  case CLI_PATH_OUTPUT: {
    if (strcmp(value, "-") == 0)
      return TRUE;
    if (stat(value, &st) == 0 && S_ISDIR(st.st_mode)) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                  "--%s %s: a directory, not a file", option, value);
      return cli_blame(c, option, error);
    }
    if (kind == CLI_PATH_DIR_FILE)
      return TRUE;
    g_autofree char *dir = g_path_get_dirname(value);
    int rc = stat(dir, &st);
    if (rc != 0 || !S_ISDIR(st.st_mode)) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--%s %s: directory %s %s", option,
                  value, dir,
                  rc != 0 && errno == ENOENT ? "does not exist (create it first)"
                  : rc != 0                  ? "cannot be reached"
                                             : "is not a directory");
      return cli_blame(c, option, error);
    }
    return TRUE;
  }
  case CLI_PATH_INPUT:
    if (stat(value, &st) != 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--%s %s: %s", option, value,
                  g_strerror(errno));
      return cli_blame(c, option, error);
    }
    if (!S_ISREG(st.st_mode)) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--%s %s: not a regular file", option,
                  value);
      return cli_blame(c, option, error);
    }
    return TRUE;
  }
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

static const GOptionEntry *
cli_lookup_in(const CliGroup *const groups[], const char *key)
{
  for (gsize i = 0; groups[i] != NULL; i++) {
    const GOptionEntry *e = cli_lookup_entry(groups[i]->entries, key);
    if (e != NULL)
      return e;
  }
  return NULL;
}

static gboolean
cli_takes_group(const CliGroup *const groups[], const CliGroup *group)
{
  for (gsize i = 0; groups[i] != NULL; i++)
    if (groups[i] == group)
      return TRUE;
  return FALSE;
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

/* Is @value of the right type for @e? Parsed alone, into scratch storage. */
static gboolean
cli_check_config_value(const GOptionEntry *e, const char *path, const char *key,
                       const char *value, GError **error)
{
  if (e->arg != G_OPTION_ARG_INT && e->arg != G_OPTION_ARG_INT64 &&
      e->arg != G_OPTION_ARG_DOUBLE)
    return TRUE;
  union {
    int i;
    gint64 l;
    double d;
  } scratch = { 0 };
  GOptionEntry one[2] = { *e, { NULL } };
  one[0].short_name = 0;
  one[0].flags = 0;
  one[0].arg_data = &scratch;
  g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
  g_option_context_set_help_enabled(ctx, FALSE);
  g_option_context_add_main_entries(ctx, one, NULL);
  g_autofree char *arg = g_strdup_printf("--%s=%s", key, value);
  char *argv[] = { (char *) "tlsrpt-ingest", arg, NULL };
  char **pargv = argv;
  int argc = 2;
  g_autoptr(GError) local = NULL;
  if (g_option_context_parse(ctx, &argc, &pargv, &local))
    return TRUE;
  g_set_error(error, CLI_ERROR, CLI_ERROR_CONFIG, "config file %s: %s = %s: %s", path, key,
              value, local->message);
  return FALSE;
}

/* Turn the [tlsrpt-ingest] group of the config file into "--key=value" arguments that
 * go before the real ones (so the command line wins); @applied gets the keys used. */
static gboolean cli_on_command_line(const GOptionEntry *e, int argc, char **argv);

static gboolean
cli_load_config(const CliGroup *const groups[], const char *path, int argc, char **argv,
                GPtrArray *argv_out, GPtrArray *applied, char **password_out,
                GError **error)
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
  const char *group = "tlsrpt-ingest";
  g_auto(GStrv) kgroups = g_key_file_get_groups(kf, NULL);
  for (guint i = 0; kgroups[i] != NULL; i++)
    if (strcmp(kgroups[i], group) != 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_CONFIG,
                  "config file %s: unknown group [%s] (use [%s])", path, kgroups[i], group);
      return FALSE;
    }
  g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
    const char *key = keys[i];
    g_autofree char *value = g_key_file_get_string(kf, group, key, NULL);
    if (value == NULL)
      value = g_strdup("");
    g_strstrip(value);
    if (value[0] == '\0') {
      g_set_error(error, CLI_ERROR, CLI_ERROR_CONFIG,
                  "config file %s: '%s =' has no value (remove the line for the default)",
                  path, key);
      return FALSE;
    }
    if (strcmp(key, "password") == 0) {
      if (!cli_check_private(path, "config file", error))
        return FALSE;
      g_free(*password_out);
      *password_out = g_steal_pointer(&value);
      continue;
    }
    const GOptionEntry *e = cli_lookup_in(groups, key);
    gboolean applies = e != NULL;
    if (e == NULL)
      e = cli_lookup_in(cli_config_groups, key);
    if (e == NULL || strcmp(key, "config") == 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_CONFIG, "config file %s: unknown key '%s'",
                  path, key);
      return FALSE;
    }
    if (!applies || cli_on_command_line(e, argc, argv))
      continue;             /* the command line wins, even over a value gone wrong */
    if (!cli_check_config_value(e, path, key, value, error))
      return FALSE;
    g_ptr_array_add(applied, (gpointer) e);
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
    } else if (e->arg == G_OPTION_ARG_STRING_ARRAY) {
      /* A repeatable option: 'domain = a.example, *.b.example'. */
      g_auto(GStrv) items = g_regex_split_simple("[,\\s]+", value, 0, 0);
      for (guint k = 0; items[k] != NULL; k++)
        if (items[k][0] != '\0')
          g_ptr_array_add(argv_out, g_strdup_printf("--%s=%s", key, items[k]));
    } else {
      g_ptr_array_add(argv_out, g_strdup_printf("--%s=%s", key, value));
    }
  }
  return TRUE;
}

/* ---- parsing -------------------------------------------------------------- */

/* Does the command line set @e (--name, --name=..., -x, -xVALUE)? */
static gboolean
cli_on_command_line(const GOptionEntry *e, int argc, char **argv)
{
  gsize n = strlen(e->long_name);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0)
      break;
    if (a[0] == '-' && a[1] == '-' && strncmp(a + 2, e->long_name, n) == 0 &&
        (a[2 + n] == '\0' || a[2 + n] == '='))
      return TRUE;
    if (e->short_name != 0 && a[0] == '-' && a[1] == e->short_name)
      return TRUE;
  }
  return FALSE;
}

/* A GOptionGroup for @group whose entries point into @base; shown in --help. */
static GOptionGroup *
cli_option_group(const CliGroup *group, gpointer base)
{
  GOptionGroup *g = g_option_group_new(group->name, group->description,
                                       group->description, base, NULL);
  gsize n = 0;
  while (group->entries[n].long_name != NULL)
    n++;
  g_autofree GOptionEntry *copy = g_new0(GOptionEntry, n + 1);
  for (gsize i = 0; i < n; i++) {
    copy[i] = group->entries[i];
    copy[i].flags |= G_OPTION_FLAG_IN_MAIN;
    if (copy[i].arg != G_OPTION_ARG_CALLBACK)
      copy[i].arg_data = (char *) base + GPOINTER_TO_SIZE(group->entries[i].arg_data);
  }
  g_option_group_add_entries(g, copy);
  return g;
}

gboolean
cli_parse(const TrCommand *cmd, const CliGroup *const groups[], gpointer own,
          CliCommon *common, int argc, char **argv, int *exit_code)
{
  return cli_parse_mode(cmd, groups, own, common, argc, argv, TR_MODE_BATCH, exit_code);
}

gboolean
cli_parse_mode(const TrCommand *cmd, const CliGroup *const groups[], gpointer own,
               CliCommon *common, int argc, char **argv, TrExitMode mode, int *exit_code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) full = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(full, g_strdup_printf("tlsrpt-ingest %s", cmd->name));

  /* The config file's values go first, so the command line wins. Find --config / -c
   * before parsing. */
  gboolean reads_config =
      cli_takes_group(groups, &cli_group_store) || cli_takes_group(groups, &cli_group_config);
  if (reads_config) {
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
      if (strcmp(argv[i], "--") == 0)
        break;
      if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
        config_path = argv[i + 1];
      else if (g_str_has_prefix(argv[i], "--config="))
        config_path = argv[i] + strlen("--config=");
    }
    if (config_path != NULL && config_path[0] == '\0') {
      error = g_error_new(CLI_ERROR, CLI_ERROR_USAGE,
                          "--config: empty path (an unset variable in the command line?)");
      *exit_code = cli_fail(cmd, error, mode);
      return FALSE;
    }
    g_autofree char *path = config_path ? g_strdup(config_path) : cli_default_config_path();
    if (path != NULL) {
      g_autoptr(GPtrArray) applied = g_ptr_array_new();
      if (!cli_load_config(groups, path, argc, argv, full, applied, &common->config_password,
                           &error)) {
        *exit_code = cli_fail(cmd, error, mode);
        return FALSE;
      }
      common->config_file = g_steal_pointer(&path);
      /* Which values are the config file's: those the command line does not set. */
      common->from_config = g_hash_table_new(g_str_hash, g_str_equal);
      for (guint k = 0; k < applied->len; k++) {
        const GOptionEntry *e = applied->pdata[k];
        g_hash_table_add(common->from_config, (gpointer) e->long_name);
      }
    }
  }
  for (int i = 1; i < argc; i++)
    g_ptr_array_add(full, g_strdup(argv[i]));
  g_ptr_array_add(full, NULL);

  g_autoptr(GOptionContext) ctx = g_option_context_new(cmd->args);
  g_option_context_set_summary(ctx, cmd->summary);
  if (reads_config)
    g_option_context_set_description(
        ctx, "Options can also be set in the config file, in a [tlsrpt-ingest] group, as\n"
             "'option-name = value' (flags: true/false); the command line wins.\n"
             "See tlsrpt-ingest(1).");
  else
    g_option_context_set_description(ctx, "See tlsrpt-ingest(1).");
  const GOptionEntry version_entries[] = {
    { "version", 'V', 0, G_OPTION_ARG_NONE, &common->version,
      "Show the version and the library versions", NULL },
    { NULL },
  };
  g_option_context_add_main_entries(ctx, version_entries, NULL);
  for (gsize i = 0; groups[i] != NULL; i++)
    g_option_context_add_group(ctx, cli_option_group(groups[i],
                                                     groups[i]->shared ? (gpointer) common
                                                                       : own));

  /* Counts and seconds not given stay CLI_UNSET / CLI_UNSET_SECONDS: a 0 given is a 0. */
  common->max_mime_depth = common->max_parts = common->max_json_depth = CLI_UNSET;
  common->batch_size = CLI_UNSET;
  common->lock_timeout = CLI_UNSET_SECONDS;
  common->limits_given = TRUE;

  int fargc = (int) full->len - 1;
  /* g_option_context_parse rearranges the pointers; keep our own copy for freeing. */
  g_autofree char **parse_argv = g_memdup2(full->pdata, sizeof(char *) * (gsize) (fargc + 1));
  int pargc = fargc;
  char **pargv = parse_argv;
  if (!g_option_context_parse(ctx, &pargc, &pargv, &error)) {
    GError *usage = g_error_new_literal(CLI_ERROR, CLI_ERROR_USAGE, error->message);
    *exit_code = cli_fail(cmd, usage, mode);
    g_error_free(usage);
    return FALSE;
  }
  if (common->version) {
    cli_print_version();
    *exit_code = TR_EXIT_OK;
    return FALSE;
  }
  /* GLib stops at "--" and may leave it in place: the first one is not an argument. */
  common->args = g_new0(char *, (gsize) pargc);
  gboolean dashdash = FALSE;
  for (int i = 1; i < pargc; i++) {
    if (!dashdash && strcmp(pargv[i], "--") == 0) {
      dashdash = TRUE;
      continue;
    }
    common->args[common->n_args++] = g_strdup(pargv[i]);
  }
  return TRUE;
}

/* ---- signals -------------------------------------------------------------- */

static void
cli_on_signal(int sig)
{
  pipeline_request_stop();
}

void
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
