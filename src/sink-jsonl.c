/* sink-jsonl.c - the "jsonl" sink: one normalized report per line (JSON Lines),
 * appended under a lock of the file; "-" is standard output. */
#include "sink.h"
#include "sink-spill.h"

#include <string.h>

typedef struct {
  char *path;
  gboolean to_stdout;
  GString *buf;             /* lines staged since the last flush (and not spilled) */
  SinkSpill spill;          /* lines of the batch already written to the file */
} SinkJsonl;

static gpointer
sink_jsonl_open(const SinkConfig *config, StoreSync *sync, GError **error)
{
  if (config->path == NULL || config->path[0] == '\0') {
    g_set_error(error, SINK_ERROR, SINK_ERROR_IO, "no JSON Lines file given");
    return NULL;
  }
  SinkJsonl *self = g_new0(SinkJsonl, 1);
  self->path = g_strdup(config->path);
  self->to_stdout = strcmp(self->path, "-") == 0;
  self->buf = g_string_new(NULL);
  self->spill = (SinkSpill) SINK_SPILL_INIT(sync);
  return self;
}

static gboolean
sink_jsonl_spill(GString *out, gpointer p, GError **error)
{
  SinkJsonl *self = p;
  return sink_spill_out(&self->spill, self->path, NULL, out, error);
}

static gboolean
sink_jsonl_write(gpointer p, const Report *report, GError **error)
{
  SinkJsonl *self = p;
  if (self->to_stdout) {
    report_to_json(report, FALSE, self->buf);
  } else if (!report_to_json_spill(report, FALSE, self->buf, SINK_SPILL_AT, sink_jsonl_spill,
                                   self, error)) {
    return FALSE;
  }
  g_string_append_c(self->buf, '\n');
  return TRUE;
}

static gboolean
sink_jsonl_flush(gpointer p, GError **error)
{
  SinkJsonl *self = p;
  if (self->to_stdout ? !sink_write_stdout(self->buf->str, self->buf->len, error)
                      : !sink_spill_finish(&self->spill, self->path, NULL, self->buf->str,
                                           self->buf->len, error))
    return FALSE;
  g_string_truncate(self->buf, 0);
  return TRUE;
}

static void
sink_jsonl_rollback(gpointer p)
{
  SinkJsonl *self = p;
  g_string_truncate(self->buf, 0);
  sink_spill_abort(&self->spill);
}

static const char *
sink_jsonl_journal_path(gpointer p)
{
  SinkJsonl *self = p;
  return self->to_stdout ? NULL : self->path;
}

static void
sink_jsonl_close(gpointer p)
{
  SinkJsonl *self = p;
  if (self == NULL)
    return;
  sink_spill_abort(&self->spill);     /* a batch never flushed */
  g_string_free(self->buf, TRUE);
  g_free(self->path);
  g_free(self);
}

const SinkOps sink_jsonl_ops = {
  .name = "jsonl",
  .open = sink_jsonl_open,
  .write = sink_jsonl_write,
  .flush = sink_jsonl_flush,
  .rollback = sink_jsonl_rollback,
  .journal_path = sink_jsonl_journal_path,
  .close = sink_jsonl_close,
};
