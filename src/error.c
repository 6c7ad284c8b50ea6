/* error.c - error domains and the single transient/permanent classifier. */
#include "common.h"

G_DEFINE_QUARK(tlsrpt-mime-walk-error-quark, mime_walk_error)
G_DEFINE_QUARK(tlsrpt-decode-error-quark, decode_error)
G_DEFINE_QUARK(tlsrpt-report-error-quark, report_error)
G_DEFINE_QUARK(tlsrpt-store-error-quark, store_error)
G_DEFINE_QUARK(tlsrpt-sink-error-quark, sink_error)
G_DEFINE_QUARK(tlsrpt-source-error-quark, source_error)
G_DEFINE_QUARK(tlsrpt-cli-error-quark, cli_error)

TrErrorClass
tr_error_classify(const GError *error)
{
  if (error == NULL)
    return TR_ERROR_TRANSIENT;
  if (error->domain == MIME_WALK_ERROR || error->domain == DECODE_ERROR ||
      error->domain == REPORT_ERROR)
    return TR_ERROR_PERMANENT;
  if (error->domain == STORE_ERROR)
    return error->code == STORE_ERROR_CORRUPT ? TR_ERROR_PERMANENT : TR_ERROR_TRANSIENT;
  if (error->domain == SOURCE_ERROR) {
    switch ((SourceError) error->code) {
    case SOURCE_ERROR_NOT_FOUND:
    case SOURCE_ERROR_TOO_LARGE:
    case SOURCE_ERROR_AUTH:
    case SOURCE_ERROR_TLS:
    case SOURCE_ERROR_LOCKED:
    case SOURCE_ERROR_CONFIG:
      return TR_ERROR_PERMANENT;
    case SOURCE_ERROR_IO:
    case SOURCE_ERROR_PROTOCOL:
      return TR_ERROR_TRANSIENT;
    }
  }
  if (error->domain == CLI_ERROR)
    return TR_ERROR_PERMANENT;
  /* G_IO_ERROR, G_FILE_ERROR, SINK_ERROR and anything unknown: the environment. */
  return TR_ERROR_TRANSIENT;
}

void
tr_limits_init(TrLimits *limits)
{
  limits->max_report_size = TR_DEFAULT_MAX_REPORT_SIZE;
  limits->max_message_size = TR_DEFAULT_MAX_MESSAGE_SIZE;
  limits->max_mime_depth = TR_DEFAULT_MAX_MIME_DEPTH;
  limits->max_parts = TR_DEFAULT_MAX_PARTS;
  limits->max_json_depth = TR_DEFAULT_MAX_JSON_DEPTH;
}

void
tr_options_init(TrOptions *opts)
{
  memset(opts, 0, sizeof *opts);
  tr_limits_init(&opts->limits);
  opts->batch_size = 512;
  opts->lock_timeout = 60.0;
}

void
tr_options_clear(TrOptions *opts)
{
  g_free(opts->store_dir);
  g_free(opts->csv_path);
  g_free(opts->jsonl_path);
  g_free(opts->sqlite_path);
  g_free(opts->postgres);
  g_free(opts->quarantine_dir);
  g_strfreev(opts->domains);
  g_free(opts->trust.dkim_keys);
  g_free(opts->trust.dkim_nameserver);
  g_strfreev(opts->trust.authserv_ids);
  memset(opts, 0, sizeof *opts);
}
