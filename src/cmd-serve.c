/* cmd-serve.c - `tlsrpt-ingest serve`: the HTTPS receiver of RFC 8460 §5.4 in front of
 * the same pipeline, sinks and store as the mail commands. The source (source-http.c)
 * yields each POSTed report and answers it from commit(); this file parses the options,
 * handles the signals (SIGTERM/SIGINT: stop accepting, finish, commit, exit 0; SIGHUP:
 * reload the certificate) and runs the pipeline until the stop. */
#include "command.h"

#include "cli.h"

#include "log.h"
#include "mime-walk.h"
#include "pipeline.h"
#include "source-http.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>

/* serve's own options; the store, outputs and limits groups are cli.c's. */
typedef struct {
  char **listen;
  char *tls_cert;
  char *tls_key;
  char *path;
  int max_connections;
  int max_per_ip;             /* -1: not given (0 is a value) */
  int timeout;
  double rate_limit;          /* -1: not given (0 is a value) */
  gboolean limit_loopback;
} ServeArgs;

static const GOptionEntry serve_entries[] = {
  { "listen", 'l', 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(ServeArgs, listen),
    "Listen on ADDR:PORT ([IPV6]:PORT, :PORT for every address; repeatable; default "
    "127.0.0.1:8080, none under socket activation)", "ADDR:PORT" },
  { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(ServeArgs, tls_cert),
    "Serve HTTPS with the PEM certificate chain in FILE (read again on SIGHUP)", "FILE" },
  { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(ServeArgs, tls_key),
    "The PEM private key of --tls-cert", "FILE" },
  { "path", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(ServeArgs, path),
    "Where reports are POSTed (default /v1/tlsrpt)", "PATH" },
  { "max-connections", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(ServeArgs, max_connections),
    "Most open connections (default 1024)", "N" },
  { "max-connections-per-ip", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(ServeArgs, max_per_ip),
    "Most open connections of one peer address (default 32; 0: no limit)", "N" },
  { "timeout", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(ServeArgs, timeout),
    "Seconds a connection may take to send a whole request, or stay idle (default 30)",
    "SECONDS" },
  { "rate-limit", 0, 0, G_OPTION_ARG_DOUBLE, CLI_FIELD(ServeArgs, rate_limit),
    "Requests per second of one peer address, bursts of twice that (default 20; 0: no "
    "limit); more get 429", "N" },
  { "limit-loopback", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(ServeArgs, limit_loopback),
    "Apply the per-address limits to loopback peers too (a reverse proxy on this host "
    "is exempt by default)", NULL },
  { NULL },
};

const CliGroup cmd_serve_group = { "serve", "Server options", serve_entries, FALSE };

static const CliGroup *const serve_groups[] = {
  &cmd_serve_group, &cli_group_store, &cli_group_outputs, &cli_group_limits,
  &cli_group_trust, NULL,
};

static void
serve_args_clear(ServeArgs *a)
{
  g_strfreev(a->listen);
  g_free(a->tls_cert);
  g_free(a->tls_key);
  g_free(a->path);
  memset(a, 0, sizeof *a);
}

static gboolean
serve_build(const CliCommon *c, const ServeArgs *a, TrOptions *opts, SourceHttpConfig *cfg,
            GError **error)
{
  if ((a->tls_cert == NULL) != (a->tls_key == NULL)) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--tls-cert and --tls-key go together");
    return FALSE;
  }
  if (!cli_check_path(c, "store", c->store, CLI_PATH_DIR, error) ||
      !cli_check_path(c, "quarantine", c->quarantine, CLI_PATH_DIR, error) ||
      !cli_check_path(c, "tls-cert", a->tls_cert, CLI_PATH_INPUT, error) ||
      !cli_check_path(c, "tls-key", a->tls_key, CLI_PATH_INPUT, error))
    return FALSE;
  if (!cli_common_options(c, opts, error))
    return FALSE;
  if (opts->jsonl_path != NULL && strcmp(opts->jsonl_path, "-") == 0) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--jsonl - (standard output) is not for a server: name a file");
    return cli_blame(c, "jsonl", error);
  }
  cfg->max_body = opts->limits.max_report_size;
  if (a->max_connections < 0 || a->timeout < 0 || a->max_per_ip < -1 ||
      (a->rate_limit < 0 && a->rate_limit != -1)) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "serve: limits must not be negative");
    return FALSE;
  }
  if (a->max_connections > 0)
    cfg->max_connections = (guint) a->max_connections;
  if (a->timeout > 0)
    cfg->timeout = (guint) a->timeout;
  if (a->max_per_ip >= 0)
    cfg->max_per_ip = (guint) a->max_per_ip;
  if (a->rate_limit >= 0)
    cfg->rate = a->rate_limit;
  cfg->limit_loopback = a->limit_loopback;
  cfg->tls_cert = g_strdup(a->tls_cert);
  cfg->tls_key = g_strdup(a->tls_key);
  if (a->path != NULL) {
    if (a->path[0] != '/' || strcmp(a->path, "/healthz") == 0) {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                  "--path must start with '/' (and not be /healthz)");
      return FALSE;
    }
    g_free(cfg->path);
    cfg->path = g_strdup(a->path);
  }
  cfg->socket_activation = g_getenv("LISTEN_FDS") != NULL;
  if (cfg->socket_activation && a->listen != NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--listen and socket activation (LISTEN_FDS) exclude each other");
    return FALSE;
  }
  if (a->listen != NULL)
    cfg->listen = g_strdupv(a->listen);
  else if (!cfg->socket_activation)
    cfg->listen = g_strsplit("127.0.0.1:8080", ",", -1);
  return TRUE;
}

/* ---- signals: one thread takes them all ------------------------------------ */

typedef struct {
  SourceHttp *http;
  volatile gboolean stop;
} ServeSignals;

static gpointer
serve_signal_main(gpointer data)
{
  ServeSignals *s = data;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0)
      continue;
    if (sig == SIGUSR1)     /* from serve_run(): the server is done */
      return NULL;
    if (sig == SIGHUP) {
      g_autoptr(GError) error = NULL;
      if (source_http_reload(s->http, &error))
        tr_log_info("SIGHUP: certificate and key read again");
      else
        tr_log_error("SIGHUP: %s (the previous certificate stays)", error->message);
      continue;
    }
    tr_log_info("%s: no new connections; finishing the requests in flight",
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
    s->stop = TRUE;
    source_http_shutdown(s->http);
  }
}

static int
serve_run(const TrCommand *cmd, int argc, char **argv)
{
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  ServeArgs args = { .max_per_ip = -1, .rate_limit = -1 };
  int rc;
  if (!cli_parse(cmd, serve_groups, &args, &common, argc, argv, &rc)) {
    serve_args_clear(&args);
    return rc;
  }
  if (common.n_args != 0) {
    serve_args_clear(&args);
    return cli_usage_error(cmd, TR_MODE_BATCH, "takes no arguments");
  }
  TrOptions opts;
  tr_options_init(&opts);
  SourceHttpConfig cfg;
  source_http_config_init(&cfg);
  g_autoptr(GError) error = NULL;
  if (!serve_build(&common, &args, &opts, &cfg, &error)) {
    rc = cli_fail(cmd, error, TR_MODE_BATCH);
    tr_options_clear(&opts);
    source_http_config_clear(&cfg);
    serve_args_clear(&args);
    return rc;
  }
  serve_args_clear(&args);
  tr_log_init(opts.verbosity, FALSE);
  /* What the receiver has to say is logged where every message's outcome is. */
  cfg.events = (SourceEvents) { pipeline_source_event, NULL, opts.verbosity >= 2 };
  mime_walk_init();

  /* Every thread started from here on (libmicrohttpd's, the pipeline's) inherits this
   * mask: only the signal thread takes SIGTERM, SIGINT, SIGHUP. */
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);

  rc = TR_EXIT_OK;
  SourceHttp *http = source_http_start(&cfg, &opts, &error);
  source_http_config_clear(&cfg);
  if (http == NULL) {
    tr_log_error("%s", error->message);
    rc = tr_exit_for(error, TR_MODE_BATCH);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    tr_options_clear(&opts);
    return rc;
  }

  ServeSignals sigs = { .http = http };
  GThread *sig_thread = g_thread_new("tlsrpt-signals", serve_signal_main, &sigs);

  PipelineStats total = { 0 };
  gint64 failing_since = 0;   /* the first of the runs in a row that could not start */
  gint64 retry_us = 100 * 1000;   /* the pause before the next try after such a run */
  for (;;) {
    PipelineStats stats;
    int prc = pipeline_run(&source_http_ops, http, &opts, FALSE, &stats);
    total.messages += stats.messages;
    total.reports += stats.reports;
    total.stored += stats.stored;
    total.duplicates += stats.duplicates;
    total.quarantined += stats.quarantined;
    total.not_reports += stats.not_reports;
    total.not_stored += stats.not_stored;
    if (sigs.stop)
      break;
    /* The run ended on a store failure: its requests were answered 503, and so are
     * those waiting. Serve on, with a fresh store. A run that could not even start (the
     * store still failing: its disk still full, a file of the configuration gone) took
     * no request: the waiting ones wait for the next try, 100 ms later and then less
     * often (up to 5 s apart, so that a lasting failure neither spins nor floods the
     * log), and are answered 503 only after a second of such tries (a request that came
     * as space returned is stored, not refused). */
    if (prc != TR_EXIT_OK && stats.messages == 0) {
      gint64 now = g_get_monotonic_time();
      if (failing_since == 0)
        failing_since = now;
      if (now - failing_since >= G_USEC_PER_SEC) {
        source_http_fail_waiting(http, "store failing");
        failing_since = now;
      }
      for (gint64 slept = 0; slept < retry_us && !sigs.stop; slept += 100 * 1000)
        g_usleep(100 * 1000);
      retry_us = MIN(retry_us * 2, 5 * G_USEC_PER_SEC);
    } else {
      source_http_fail_waiting(http, "store failing");
      failing_since = 0;
      retry_us = 100 * 1000;
    }
  }
  source_http_stop(http);
  kill(getpid(), SIGUSR1);
  g_thread_join(sig_thread);
  pthread_sigmask(SIG_SETMASK, &old, NULL);

  g_autofree char *line = pipeline_stats_line(&total);
  tr_log_info("stopped: %s", line);
  tr_options_clear(&opts);
  return rc;
}

const TrCommand cmd_serve = {
  "serve", "",
  "Receive reports over HTTPS (RFC 8460 section 5.4): POSTs of application/tlsrpt+gzip "
  "or application/tlsrpt+json bodies, each answered only once it is stored durably.",
  serve_run, NULL,
};
