/* store.h - the state directory: lock, dedup index, commit journal and quarantine.
 *
 * The store directory (--store) always holds the state, also with --no-store:
 *   .lock       flock()ed exclusively around every group commit
 *   .index      append-only dedup index, one "<32 hex key>\n" line per stored report
 *   .journal    present and non-empty only while a commit is in flight: the sizes of
 *               the index and of every append-only sink file before the commit
 *   quarantine/ messages that hold no valid report (default; --quarantine)
 * Crash recovery (done by store_lock() when it finds a non-empty journal): every file
 * named in the journal is truncated back to its recorded size, so a commit is all or
 * nothing: a report is in the index iff its CSV/JSONL rows are complete. */
#ifndef TLSRPT_STORE_H
#define TLSRPT_STORE_H

#include "common.h"

typedef struct Store Store;

/* Creates the directory when missing. Loads nothing yet. (transfer full) */
Store *store_open(const char *dir, const char *quarantine_dir, GError **error);
/* Where the quarantine of the store @dir is: @quarantine_dir, or DIR/quarantine when
 * it is NULL. (transfer full) */
char *store_quarantine_path(const char *dir, const char *quarantine_dir);
void store_close(Store *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Store, store_close)

/* (transfer none) the store directory path, and an O_DIRECTORY fd on it. */
const char *store_path(Store *store);
int store_dir_fd(Store *store);

/* Take the exclusive lock, waiting at most @timeout seconds (STORE_ERROR_LOCK after).
 * Then recover from a crashed commit if the journal says so, and read index lines
 * appended since the last refresh into the in-memory set. */
gboolean store_lock(Store *store, double timeout, GError **error);
void store_unlock(Store *store);

/* Under the lock: is the key in the index, or added by store_add() in this commit? */
gboolean store_contains(Store *store, const guint8 key[16]);
/* Under the lock: remember @key for this commit (visible to store_contains). */
void store_add(Store *store, const guint8 key[16]);

/* Under the lock, before any sink writes: record the current sizes of the index and of
 * each path in @append_paths (char*, files that sinks only append to; may not exist
 * yet), fsync the journal. */
gboolean store_begin(Store *store, GPtrArray *append_paths, GError **error);
/* Group commit: what the sinks and the quarantine write during a commit is not fsynced
 * one file at a time. They hand it to the store, and store_commit() makes the whole batch
 * durable at once, before its commit point: an fsync() of each file and directory while
 * there are few (one `mda` message), else one syncfs() of the store's file system.
 *
 * store_sync_fd(): the commit in flight wrote @fd, a file or a directory on the store's
 * file system (transfer full; -1 when the caller closed it already because
 * store_sync_each() said FALSE). store_sync_store_dir(): the store directory itself got a
 * new entry. store_sync_each(): whether fds are still wanted (FALSE once the commit will
 * end with syncfs(): callers may then close theirs at once). */
void store_sync_fd(Store *store, int fd);
void store_sync_store_dir(Store *store);
gboolean store_sync_each(Store *store);
/* The commit in flight will end with syncfs() whatever else it writes (a sink about to
 * write many files says so first, and then needs no fd kept). */
void store_sync_wide(Store *store);
/* Changes whenever the set of what is to be synced starts afresh (a commit began, ended
 * or was rolled back): lets a caller tell whether it handed an fd in this one already. */
guint64 store_sync_epoch(Store *store);

/* After every sink flushed: append the added keys to the index, make the batch durable
 * (everything handed to store_sync_fd(), the quarantine copies, the index lines), then
 * clear the journal (truncate + fsync): the commit point. Only after this returns TRUE is
 * anything acknowledged; FALSE (a failed sync too) means the caller must roll back. */
gboolean store_commit(Store *store, GError **error);
/* A commit failed midway: truncate the journal's files back, forget the added keys. */
void store_rollback(Store *store);

/* Copy a message that holds no valid report to the quarantine, durably (inside a
 * commit: with the commit's sync):
 * "<sha256-prefix>.eml" (idempotent: the same bytes give the same name) and
 * "<same>.reason" with the origin, time and @reason lines. Returns the path of the
 * .eml (transfer full) or NULL + STORE_ERROR_IO. */
char *store_quarantine(Store *store, GBytes *message, const char *origin,
                       const char *reason, GError **error);

/* Number of keys in the index (after the last refresh). */
guint store_index_size(Store *store);
/* Number of successful store_commit() calls on @store: lets a sink tell whether what
 * it flushed was committed since. */
guint64 store_commit_count(Store *store);
/* Bytes held by the in-memory key set (for tests and diagnostics). */
gsize store_index_memory(Store *store);

#endif
