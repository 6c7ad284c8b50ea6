/* store.h - the state directory: lock, dedup index, commit journal and quarantine
 * (the quarantine itself: quarantine.c; what a commit makes durable: store-sync.c).
 *
 * The store directory (--store) always holds the state, also with --no-store:
 *   .lock       flock()ed exclusively around every group commit
 *   .index      append-only dedup index, one "<32 hex key>\n" line per stored report
 *   .journal    present and non-empty only while a commit is in flight: the sizes of
 *               the index and of every append-only sink file before the commit
 *   quarantine/ messages that hold no valid report (default; --quarantine)
 *   .maildir-H.seen, .imap-H.state, .imap-H.lock
 *               the sources' own state, named by store_state_path()
 * Crash recovery (done by store_lock() when it finds a non-empty journal): every file
 * named in the journal is truncated back to its recorded size, so a commit is all or
 * nothing: a report is in the index iff its CSV/JSONL rows are complete; and the
 * ".tmp-*" files the dead commit left are removed (store_sweep_tmp()). */
#ifndef TLSRPT_STORE_H
#define TLSRPT_STORE_H

#include "common.h"
#include "store-sync.h"

typedef struct Store Store;

/* Creates the directory when missing. Loads nothing yet. (transfer full) */
Store *store_open(const char *dir, const char *quarantine_dir, GError **error);
/* Where the quarantine of the store @dir is: @quarantine_dir, or DIR/quarantine when
 * it is NULL (quarantine_path()). (transfer full) */
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

/* Remove the ".tmp-*" files of dead writers everywhere below the store (a few levels,
 * never through a symlink) and in the quarantine: fsutil_sweep_tmp(), which never
 * touches a live writer's. Done by the recovery; returns how many were removed. */
guint store_sweep_tmp(Store *store);

/* Under the lock: is the key in the index, or added by store_add() in this commit? */
gboolean store_contains(Store *store, const guint8 key[16]);
/* Under the lock: remember @key for this commit (visible to store_contains). */
void store_add(Store *store, const guint8 key[16]);

/* Under the lock, before any sink writes: record the current sizes of the index and of
 * each path in @append_paths (char*, files that sinks only append to; may not exist
 * yet), fsync the journal. */
gboolean store_begin(Store *store, GPtrArray *append_paths, GError **error);
/* The sync planner of the commit in flight (store-sync.h): the one handle a sink gets
 * of the store. Valid until store_close(). (transfer none) */
StoreSync *store_durability(Store *store);

/* After every sink flushed: append the added keys to the index, make the batch durable
 * (everything handed to store_sync_fd(), the quarantine copies, the index lines), then
 * clear the journal (truncate + fsync): the commit point. Only after this returns TRUE is
 * anything acknowledged; FALSE (a failed sync too) means the caller must roll back. */
gboolean store_commit(Store *store, GError **error);
/* A commit failed midway: truncate the journal's files back, forget the added keys. */
void store_rollback(Store *store);

/* Copy a message that holds no valid report to the store's quarantine, durably (inside
 * a commit: with the commit's sync); see quarantine_put(). Returns the path of the .eml
 * (transfer full) or NULL + STORE_ERROR_IO. */
char *store_quarantine(Store *store, GBytes *message, const char *origin,
                       const char *reason, GError **error);

/* A source's own state file in the store @store_dir: STORE/.<source>-<H>.<kind>, H the
 * first 16 hex digits of the SHA-256 of @key (what the state is about: a Maildir's real
 * path, an IMAP account and mailbox), e.g. ".maildir-H.seen", ".imap-H.state",
 * ".imap-H.lock". The leading '.' keeps it apart from the tree (whose names never start
 * with one) and out of `file STORE`. Returns the path (transfer full); *name (nullable)
 * gets the file name alone, for openat() on the store directory (transfer full). */
char *store_state_path(const char *store_dir, const char *source, const char *key,
                       const char *kind, char **name);

/* Number of keys in the index (after the last refresh). */
guint store_index_size(Store *store);
/* Number of successful store_commit() calls on @store: lets a sink tell whether what
 * it flushed was committed since. */
guint64 store_commit_count(Store *store);
/* Bytes held by the in-memory key set (for tests and diagnostics). */
gsize store_index_memory(Store *store);

#endif
