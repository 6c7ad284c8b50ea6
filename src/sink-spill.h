/* sink-spill.h - a batch appended to a shared file (the CSV and JSON Lines sinks): the
 * file is opened and locked (flock) when the first piece of the batch is written and
 * stays locked until the batch ends; a batch that does not end is undone by truncating
 * the file back to its size before it. (The store's journal undoes it as well after a
 * crash.) A large batch may be written in pieces before it ends, so that it need not be
 * held in memory whole. */
#ifndef TLSRPT_SINK_SPILL_H
#define TLSRPT_SINK_SPILL_H

#include "common.h"
#include "store-sync.h"

/* Staged text is written out once it reaches this size. */
#define SINK_SPILL_AT (4u * 1024 * 1024)

typedef struct {
  int fd;                 /* -1: nothing of the batch written yet */
  gint64 start;           /* size of the file before the batch */
  gsize retry_at;         /* the file was busy: try again when this much is staged */
  StoreSync *sync;        /* borrowed, nullable: the store's commit, to hand the file to */
  gboolean fresh;         /* the file was empty (perhaps just created) when opened */
} SinkSpill;

#define SINK_SPILL_INIT(sync) { -1, 0, 0, (sync), FALSE }

/* Write the staged @out to @path early, as part of the batch in flight, and empty it.
 * On the first piece @path is opened (O_APPEND, created 0640) and locked, and @header
 * (nullable) written first when the file is empty. When another writer holds the file
 * at that moment, @out simply stays staged: a sink never waits for one file's lock
 * while it holds another's (two sinks of two stores sharing both files could wait for
 * each other forever). FALSE + G_IO_ERROR; the batch must then be aborted. */
gboolean sink_spill_out(SinkSpill *s, const char *path, const char *header, GString *out,
                        GError **error);
/* End the batch: append the last @len bytes (opening and locking @path as above, and
 * waiting for the lock, when nothing was written early), make them durable, unlock.
 * Durable: while the store's commit syncs file by file (store_sync_each()) and the file
 * is on the store's file system, a descriptor of it is handed to that commit, whose
 * fsyncs all run at once before its commit point (one `mda` message: one wait for the
 * disk less); else fsync here. A file that was empty when opened (perhaps created by
 * this batch) also gets its directory fsynced, so that its name survives a crash as its
 * bytes do. Nothing at all to write leaves the file alone. On failure
 * the batch is still in flight (abort it). */
gboolean sink_spill_finish(SinkSpill *s, const char *path, const char *header,
                           const char *data, gsize len, GError **error);
/* Undo the batch in flight, if any: truncate the file back, unlock. */
void sink_spill_abort(SinkSpill *s);

#endif
