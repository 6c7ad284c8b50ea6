/* cmd-show.c - `tlsrpt-ingest show PATH...`: read reports from .eml messages and
 * .json / .json.gz files (or standard input) and print them readably or as normalized
 * JSON, without touching any store: no dedup index, no tree, no quarantine. */
#include "command.h"

#include "cli.h"
#include "escape.h"
#include "log.h"
#include "mime-walk.h"
#include "pipeline.h"
#include "render.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  char *format;
} ShowArgs;

static const GOptionEntry cmd_show_entries[] = {
  { "format", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(ShowArgs, format),
    "text (default) or json (the normalized report, one per line)", "FORMAT" },
  { NULL },
};
static const CliGroup cmd_show_group = { "show", "Show options", cmd_show_entries, FALSE };
static const CliGroup *const cmd_show_groups[] = { &cmd_show_group, &cli_group_limits, NULL };

/* Standard input as one message or one raw report (gzip, zip or JSON by content). */
static SourceMessage *
cmd_show_stdin(gsize max, GError **error)
{
  g_autoptr(GByteArray) buf = g_byte_array_new();
  guint8 chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
    g_byte_array_append(buf, chunk, (guint) n);
    if (buf->len > max) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_TOO_LARGE,
                  "standard input: larger than --max-message-size");
      return NULL;
    }
  }
  SourceMessage *m = g_new0(SourceMessage, 1);
  m->origin = g_strdup("stdin");
  m->received = g_get_real_time() / G_USEC_PER_SEC;
  const guint8 *p = buf->data;
  gsize len = buf->len, i = 0;
  if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
    i = 3;
  while (i < len && g_ascii_isspace(p[i]))
    i++;
  m->raw_report = (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) ||
                  (len >= 4 && memcmp(p, "PK\003\004", 4) == 0) || (i < len && p[i] == '{');
  m->data = g_byte_array_free_to_bytes(g_steal_pointer(&buf));
  return m;
}

static int
cmd_show_run(const TrCommand *cmd, int argc, char **argv)
{
  ShowArgs own = { 0 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, cmd_show_groups, &own, &common, argc, argv, &rc))
    return rc;
  g_autofree char *format = own.format;
  gboolean json = format != NULL && strcmp(format, "json") == 0;
  if (format != NULL && !json && strcmp(format, "text") != 0)
    return cli_usage_error(cmd, TR_MODE_BATCH, "--format takes text or json, not '%s'",
                           format);
  if (common.n_args == 0)
    return cli_usage_error(cmd, TR_MODE_BATCH, "expected PATH... (or - for standard input)");
  TrLimits limits;
  tr_limits_init(&limits);
  g_autoptr(GError) error = NULL;
  if (!cli_common_limits(&common, &limits, NULL, NULL, &error))
    return cli_fail(cmd, error, TR_MODE_BATCH);
  tr_log_init(cli_verbosity(&common), FALSE);
  mime_walk_init();

  guint reports = 0, bad = 0;
  for (guint a = 0; a < common.n_args; a++) {
    const char *path = common.args[a];
    g_autoptr(GPtrArray) msgs = g_ptr_array_new_with_free_func((GDestroyNotify) source_message_free);
    if (strcmp(path, "-") == 0) {
      SourceMessage *m = cmd_show_stdin(limits.max_message_size, &error);
      if (m == NULL) {
        tr_log_error("%s", error->message);
        g_clear_error(&error);
        bad++;
        continue;
      }
      g_ptr_array_add(msgs, m);
    } else {
      /* Read like `file` does: a file, or every file of a directory. */
      SourceConfig sc;
      source_config_init(&sc);
      sc.max_message_size = limits.max_message_size;
      char *args[] = { (char *) path, NULL };
      const SourceOps *ops = source_find("file");
      gpointer self = ops->open(&sc, args, &error);
      source_config_clear(&sc);
      if (self == NULL) {
        g_autofree char *e = tr_escape_terminal(error->message);
        tr_log_error("%s", e);
        g_clear_error(&error);
        bad++;
        continue;
      }
      SourceMessage *m = NULL;
      while (ops->next(self, &m, &error) && m != NULL)
        g_ptr_array_add(msgs, m);
      if (error != NULL) {
        tr_log_error("%s", error->message);
        g_clear_error(&error);
        bad++;
      }
      ops->close(self);
    }
    for (guint i = 0; i < msgs->len; i++) {
      SourceMessage *m = msgs->pdata[i];
      g_autofree char *origin = tr_escape_terminal(m->origin);
      if (m->data == NULL || m->not_message) {
        tr_log_warn("%s: %s", origin, m->skip_reason ? m->skip_reason : "not a message or a report");
        bad++;
        continue;
      }
      PipelineResult res;
      pipeline_process_message(m, &limits, &res);
      if (res.quarantine_reason != NULL) {
        g_autofree char *why = tr_escape_terminal(res.quarantine_reason);
        tr_log_warn("%s: %s", origin, why);
        bad++;
      } else if (res.reports->len == 0) {
        tr_log_warn("%s: not a report", origin);
        bad++;
      }
      for (guint j = 0; j < res.reports->len; j++) {
        const Report *r = res.reports->pdata[j];
        g_autoptr(GString) out = g_string_new(NULL);
        if (json) {
          report_to_json(r, FALSE, out);
          g_string_append_c(out, '\n');
        } else {
          if (reports > 0)
            g_string_append(out, "\n");
          render_report_text(r, 0.01, 0.05, out);
        }
        fwrite(out->str, 1, out->len, stdout);
        reports++;
      }
      pipeline_result_clear(&res);
    }
  }
  if (fflush(stdout) != 0)
    return 1;
  return bad > 0 ? 1 : TR_EXIT_OK;
}

const TrCommand cmd_show = {
  "show", "PATH...",
  "Print the reports of .eml messages and .json / .json.gz files (a directory: every "
  "file in it; '-': standard input) readably, or as normalized JSON with --format json. "
  "Touches no store.",
  cmd_show_run, NULL,
};
