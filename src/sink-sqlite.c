/* sink-sqlite.c - the "sqlite" sink: the SQL index of the store (STORE/reports.sqlite,
 * or --sqlite FILE), written by the same commit as the tree. Schema: docs/sql.md.
 *
 * write() inserts the report's rows in a transaction it opens (BEGIN IMMEDIATE: under
 * the store lock, so no other writer waits on it); flush() commits that transaction to
 * the write-ahead log; rollback() rolls it back, or, when flush() had committed it and
 * the store's commit did not follow, deletes the rows of the reports it wrote.
 *
 * Durability follows the store's group commit: in the store's directory the commit is
 * written to the log without an fsync, and the log is handed to the store, whose
 * commit makes it durable with everything else of the batch, before the commit point.
 * A file elsewhere (--sqlite FILE) syncs its own log at every commit.
 *
 * A run of one commit (mda) starts SQLite's checkpoint on a thread of its own as soon as
 * flush() committed, so that it syncs the log and copies it into the file while the
 * store's commit syncs the rest, instead of after it, in the close (which then only
 * empties the log). A run of many commits (serve, a Maildir batch) does the same once
 * the log holds SINK_SQLITE_CHECKPOINT_PAGES pages, instead of SQLite's own checkpoint
 * inside the COMMIT that crosses them (two syncs and a copy on the commit's path: 33 ms
 * of a serve group's 50 on the shared disk, one group in seven). Nothing else uses the
 * connection until that thread is joined: the next write(), rollback() or close() joins
 * it first.
 *
 * Inserts are idempotent on the report key: a crash after this commit and before the
 * store's leaves rows whose message is not acknowledged; the next run delivers the
 * message again, and its insert finds the key and adds nothing. */
#include "sink.h"
#include "db.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SINK_SQLITE_NAME "reports.sqlite"
#define SINK_SQLITE_CHECKPOINT_PAGES 1000   /* SQLite's own default */

typedef struct {
  StoreSync *sync;          /* borrowed */
  char *path;
  gboolean in_store;        /* the file is STORE/reports.sqlite */
  TrDb *db;                 /* opened by the first write() (under the store lock) */
  dev_t dev;                /* the file @db has open: replaced by a `reindex` when */
  ino_t ino;                /* the path names another */
  gboolean dir_sync;        /* the file or its log is new: its directory must be synced */
  gboolean one_commit;      /* SinkConfig.one_commit */
  GThread *checkpoint;      /* running db_checkpoint() on @db: join before using @db */
  GArray *keys;             /* guint8[16] of the reports written since the last commit */
  gboolean flushed;         /* the transaction of @keys is committed to the log */
  guint64 flushed_commits;  /* store_commit_count() when it was */
} SinkSqlite;

char *
sink_sqlite_default_path(const char *store_dir)
{
  return g_build_filename(store_dir, SINK_SQLITE_NAME, NULL);
}

static gpointer
sink_sqlite_open(const SinkConfig *config, StoreSync *sync, GError **error)
{
  SinkSqlite *self = g_new0(SinkSqlite, 1);
  self->sync = sync;
  self->in_store = config->path == NULL;
  self->path = self->in_store ? sink_sqlite_default_path(store_sync_store_path(sync))
                              : g_strdup(config->path);
  self->keys = g_array_new(FALSE, FALSE, 16);
  self->one_commit = config->one_commit;
  return self;
}

static gpointer
sink_sqlite_checkpoint_main(gpointer db)
{
  db_checkpoint(db);
  return NULL;
}

/* The checkpoint thread, if one runs, is done: @db is ours again. */
static void
sink_sqlite_join(SinkSqlite *self)
{
  if (self->checkpoint != NULL)
    g_thread_join(g_steal_pointer(&self->checkpoint));
}

/* A commit ended since the last flush: what was flushed is committed for good. */
static void
sink_sqlite_new_commit(SinkSqlite *self)
{
  if (self->flushed && store_sync_commit_count(self->sync) != self->flushed_commits) {
    g_array_set_size(self->keys, 0);
    self->flushed = FALSE;
  }
}

/* Open (creating and migrating) the index on first use, under the store lock. A new
 * index in a store that already holds reports is marked incomplete: the read side
 * then builds it from the tree (docs/sql.md). */
static gboolean
sink_sqlite_ensure_open(SinkSqlite *self, GError **error)
{
  struct stat st;
  if (self->db != NULL && !db_in_transaction(self->db) &&
      (stat(self->path, &st) != 0 || st.st_dev != self->dev || st.st_ino != self->ino))
    g_clear_pointer(&self->db, db_close);     /* reindexed since: write the new file */
  if (self->db != NULL)
    return TRUE;
  g_autofree char *wal = g_strconcat(self->path, "-wal", NULL);
  gboolean wal_existed = stat(wal, &st) == 0;
  gboolean created = FALSE;
  self->db = db_open_write(self->path, self->in_store ? DB_SYNC_DEFERRED : DB_SYNC_FULL,
                           &created, error);
  if (self->db == NULL)
    return FALSE;
  if (!self->one_commit)
    db_own_checkpoints(self->db);
  if (stat(self->path, &st) == 0) {
    self->dev = st.st_dev;
    self->ino = st.st_ino;
  }
  if (created) {
    /* Under the store lock: .index holds every report committed so far. */
    g_autofree char *index = g_build_filename(store_sync_store_path(self->sync), ".index",
                                              NULL);
    gboolean complete = stat(index, &st) != 0 || st.st_size == 0;
    if (!db_set_meta(self->db, "complete", complete ? "1" : "0", error))
      return FALSE;
  }
  self->dir_sync = created || !wal_existed;
  return TRUE;
}

static gboolean
sink_sqlite_write(gpointer p, const Report *report, GError **error)
{
  SinkSqlite *self = p;
  sink_sqlite_join(self);
  sink_sqlite_new_commit(self);
  if (self->flushed) {
    /* A flush that the store did not commit, not rolled back: start afresh. */
    g_array_set_size(self->keys, 0);
    self->flushed = FALSE;
  }
  if (!sink_sqlite_ensure_open(self, error) || !db_begin(self->db, error) ||
      !db_insert_report(self->db, report, NULL, error)) {
    g_prefix_error(error, "%s: ", self->path);
    return FALSE;
  }
  g_array_append_vals(self->keys, report->key, 1);
  return TRUE;
}

/* The directory of @path, to fsync after the file was created. */
static gboolean
sink_sqlite_sync_dir(SinkSqlite *self, GError **error)
{
  if (self->in_store) {
    store_sync_store_dir(self->sync);
    return TRUE;
  }
  g_autofree char *dir = g_path_get_dirname(self->path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fsutil_set_error_errno(error, errno, "open", dir);
    return FALSE;
  }
  gboolean ok = fsutil_fsync_fd(fd, dir, error);
  close(fd);
  return ok;
}

static gboolean
sink_sqlite_flush(gpointer p, GError **error)
{
  SinkSqlite *self = p;
  if (self->db == NULL || !db_in_transaction(self->db))
    return TRUE;
  if (!db_commit(self->db, error)) {
    g_prefix_error(error, "%s: ", self->path);
    g_array_set_size(self->keys, 0);
    return FALSE;
  }
  self->flushed = TRUE;
  self->flushed_commits = store_sync_commit_count(self->sync);
  if (self->dir_sync) {
    if (!sink_sqlite_sync_dir(self, error))
      return FALSE;
    self->dir_sync = FALSE;
  }
  if (self->in_store && store_sync_each(self->sync)) {
    /* The store's commit fsyncs the log with the rest of the batch. */
    int fd = open(db_wal_path(self->db), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fsutil_set_error_errno(error, errno, "open", db_wal_path(self->db));
      return FALSE;
    }
    store_sync_fd(self->sync, fd);
  }
  if (self->one_commit || db_wal_pages(self->db) >= SINK_SQLITE_CHECKPOINT_PAGES)
    self->checkpoint =
        g_thread_try_new("tlsrpt-checkpoint", sink_sqlite_checkpoint_main, self->db, NULL);
  return TRUE;
}

static void
sink_sqlite_rollback(gpointer p)
{
  SinkSqlite *self = p;
  if (self->db == NULL)
    return;
  sink_sqlite_join(self);
  sink_sqlite_new_commit(self);
  if (db_in_transaction(self->db)) {
    db_rollback(self->db);
  } else if (self->flushed && self->keys->len > 0) {
    /* Committed to the log, but the store's commit failed: take the rows out again.
     * If even that fails, they stay; the messages are not acknowledged, and their
     * next delivery finds them indexed (idempotent). */
    g_autoptr(GError) error = NULL;
    gboolean ok = db_begin(self->db, &error);
    for (guint i = 0; ok && i < self->keys->len; i++)
      ok = db_delete_report(self->db, (const guint8 *) self->keys->data + 16 * i, &error);
    if (ok)
      ok = db_commit(self->db, &error);
    if (!ok)
      db_rollback(self->db);
  }
  g_array_set_size(self->keys, 0);
  self->flushed = FALSE;
}

static const char *
sink_sqlite_journal_path(gpointer p)
{
  return NULL;
}

static void
sink_sqlite_close(gpointer p)
{
  SinkSqlite *self = p;
  if (self == NULL)
    return;
  sink_sqlite_join(self);
  db_close(self->db);           /* rolls back a transaction never flushed */
  g_array_unref(self->keys);
  g_free(self->path);
  g_free(self);
}

const SinkOps sink_sqlite_ops = {
  .name = "sqlite",
  .open = sink_sqlite_open,
  .write = sink_sqlite_write,
  .flush = sink_sqlite_flush,
  .rollback = sink_sqlite_rollback,
  .journal_path = sink_sqlite_journal_path,
  .close = sink_sqlite_close,
};
