/* sink-spill.h - a batch appended to a shared file in pieces (the CSV and JSON Lines
 * sinks), so that a large batch need not be held in memory whole: the file is opened
 * and locked (flock) at the first piece and stays locked until the batch ends, and a
 * batch that does not end is undone by truncating the file back to its size before it.
 * (The store's journal undoes it as well after a crash.) */
#ifndef TLSRPT_SINK_SPILL_H
#define TLSRPT_SINK_SPILL_H

#include "common.h"

/* Staged text is written out once it reaches this size. */
#define SINK_SPILL_AT (4u * 1024 * 1024)

typedef struct {
  int fd;                 /* -1: nothing of the batch written yet */
  gint64 start;           /* size of the file before the batch */
} SinkSpill;

#define SINK_SPILL_INIT { -1, 0 }

/* Append @len bytes of @data to @path as part of the batch in flight: on the first
 * piece open @path (O_APPEND, created 0640), lock it and write @header (nullable) first
 * when the file is empty. FALSE + G_IO_ERROR; the batch must then be aborted. */
gboolean sink_spill_write(SinkSpill *s, const char *path, const char *header,
                          const char *data, gsize len, GError **error);
/* Whether part of the batch has been written. */
gboolean sink_spill_active(const SinkSpill *s);
/* End the batch: append the last @len bytes, fsync, unlock. On failure the batch is
 * still in flight (abort it). */
gboolean sink_spill_finish(SinkSpill *s, const char *path, const char *data, gsize len,
                           GError **error);
/* Undo the batch in flight, if any: truncate the file back, unlock. */
void sink_spill_abort(SinkSpill *s);

#endif
