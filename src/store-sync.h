/* store-sync.h - the sync planner of a store's commit, and the one handle sinks get.
 *
 * Group commit: what the sinks and the quarantine write during a commit is not fsynced
 * one file at a time. It is handed to the planner, and store_commit() makes the whole
 * batch durable at once, before its commit point: an fsync() of each file and directory
 * while there are few (one `mda` message), else one syncfs() of the store's file system
 * (and of the quarantine's, when it is elsewhere).
 *
 * A sink gets a StoreSync (transfer none, valid until the sink is closed) instead of
 * the Store: it learns where the store is, hands in what it wrote, and can tell whether
 * a commit ended since; it cannot lock, commit or touch the index. */
#ifndef TLSRPT_STORE_SYNC_H
#define TLSRPT_STORE_SYNC_H

#include "common.h"

typedef struct StoreSync StoreSync;

/* ---- for sinks ------------------------------------------------------------- */

/* (transfer none) the store directory's path, and an O_DIRECTORY fd on it. */
const char *store_sync_store_path(StoreSync *sync);
int store_sync_store_fd(StoreSync *sync);

/* The commit in flight wrote @fd, a file or a directory on the store's file system
 * (transfer full; -1 is ignored, for a caller that closed it already because
 * store_sync_each() said FALSE). */
void store_sync_fd(StoreSync *sync, int fd);
/* The store directory itself got a new entry in this commit. */
void store_sync_store_dir(StoreSync *sync);
/* Whether fds are still wanted (FALSE once the commit will end with syncfs(): callers
 * may then close theirs at once). */
gboolean store_sync_each(StoreSync *sync);
/* The commit in flight will end with syncfs() whatever else it writes (a sink about to
 * write many files says so first, and then needs no fd kept). */
void store_sync_wide(StoreSync *sync);
/* Changes whenever the set of what is to be synced starts afresh (a commit began, ended
 * or was rolled back): lets a caller tell whether it handed an fd in this one already. */
guint64 store_sync_epoch(StoreSync *sync);
/* Number of commits of the store that reached their commit point: lets a sink tell
 * whether what it wrote was committed since. */
guint64 store_sync_commit_count(StoreSync *sync);

/* Call before the first byte of a batch is appended to a file the store's journal
 * undoes (CSV, JSON Lines): waits for the journal of the commit in flight to be
 * durable. FALSE + STORE_ERROR_IO: it is not, nothing may be appended (fail the sink). */
gboolean store_sync_before_append(StoreSync *sync, GError **error);

/* ---- for the store and the quarantine ------------------------------------------ */

/* A planner for the store directory @path, @dir_fd (borrowed: outlives the planner).
 * (transfer full) */
StoreSync *store_sync_new(const char *path, int dir_fd);
void store_sync_free(StoreSync *sync);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreSync, store_sync_free)

/* fsync @fd (borrowed: stays open until the commit ends) when the commit syncs file by
 * file; once per fd and commit. For the index file and the quarantine directory. */
void store_sync_borrowed(StoreSync *sync, int fd, const char *path);
/* The commit in flight wrote @fd (transfer full) on another file system than the store:
 * the file system of the directory @fs_fd (borrowed), named @path in messages. It is
 * fsynced with the rest while the commit syncs file by file and has room, else that
 * file system gets a syncfs() of its own. */
void store_sync_elsewhere(StoreSync *sync, int fs_fd, const char *path, int fd);

/* What store_sync_before_append() calls: @gate(@data, error). */
void store_sync_set_append_gate(StoreSync *sync, gboolean (*gate)(gpointer data, GError **error),
                                gpointer data);

/* Make everything handed in durable: fsync() each file and directory (one thread each:
 * the disk takes them together), or one syncfs() of each file system written to. Then
 * start afresh (closing the fds). FALSE + STORE_ERROR_IO: the commit must not reach its
 * commit point. */
gboolean store_sync_run(StoreSync *sync, GError **error);
/* Forget what the commit in flight asked to make durable (closing the fds). */
void store_sync_reset(StoreSync *sync);
/* The store's commit reached its commit point. */
void store_sync_committed(StoreSync *sync);

#endif
