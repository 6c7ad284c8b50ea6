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
 * A run of many commits inserts on a writer thread of the sink's own: write() opens the
 * transaction (on the caller's thread: the open's errors are the write's) and queues the
 * report; the thread inserts the queued reports in their order while the caller goes on
 * with the other sinks (the tree's JSON and files, the CSV rows), and flush() waits for
 * it before it commits, so nothing is committed, let alone acknowledged, before every
 * row of the batch is in the transaction. An insert that fails on the thread fails the
 * next write() or the flush(); the pipeline then rolls the batch back as before. One
 * thread at a time uses the connection: the writer between the transaction's first
 * write() and the flush() or rollback() that waits for it, the caller otherwise. The
 * queued reports are the pipeline's, valid until that flush() or rollback() (sink.h).
 *
 * Inserts are idempotent on the report key: a crash after this commit and before the
 * store's leaves rows whose message is not acknowledged; the next run delivers the
 * message again, and its insert finds the key and adds nothing. */
#include "sink.h"
#include "db.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SINK_SQLITE_NAME "reports.sqlite"
#define SINK_SQLITE_CHECKPOINT_PAGES 1000   /* SQLite's own default */

/* The writer is woken when this many reports wait (or by flush()): one wake-up per few
 * reports rather than a system call per report when it keeps up. */
#define SINK_SQLITE_WAKE 16

/* The writer thread and what it shares with the caller's. pthread primitives, not
 * GLib's: ThreadSanitizer cannot see GMutex (a bare futex). */
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t work;      /* the writer waits: reports queued, or @stop */
  pthread_cond_t idle;      /* the caller waits: @queue empty and not @busy */
  pthread_t thread;
  TrDb *db;                 /* the connection, the writer's while @busy or @queue */
  GPtrArray *queue;         /* const Report*, in write() order (borrowed) */
  gboolean waiting;         /* the writer sleeps on @work */
  gboolean busy;            /* the writer is inserting reports it took from @queue */
  gboolean stop;
  GError *error;            /* the first failed insert of the transaction */
} SinkSqliteWriter;

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
  SinkSqliteWriter *writer; /* NULL: inserts on the caller's thread (one commit, or no
                               thread could be started) */
  gboolean writer_failed;   /* no writer thread could be started: insert inline */
  GArray *keys;             /* guint8[16] of the reports written since the last commit */
  gboolean flushed;         /* the transaction of @keys is committed to the log */
  guint64 flushed_commits;  /* store_commit_count() when it was */
} SinkSqlite;

char *
sink_sqlite_default_path(const char *store_dir)
{
  return g_build_filename(store_dir, SINK_SQLITE_NAME, NULL);
}

static void *
sink_sqlite_writer_main(void *data)
{
  SinkSqliteWriter *w = data;
  g_autoptr(GPtrArray) batch = g_ptr_array_new();
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (w->queue->len == 0 && !w->stop) {
      w->waiting = TRUE;
      pthread_cond_wait(&w->work, &w->lock);
      w->waiting = FALSE;
    }
    if (w->stop)
      break;
    /* Take all that waits; insert it unlocked, so that write() can queue more. */
    GPtrArray *t = w->queue;
    w->queue = batch;
    batch = t;
    w->busy = TRUE;
    gboolean failed = w->error != NULL;
    TrDb *db = w->db;
    pthread_mutex_unlock(&w->lock);
    GError *error = NULL;
    for (guint i = 0; i < batch->len && !failed; i++)
      failed = !db_insert_report(db, batch->pdata[i], NULL, &error);
    g_ptr_array_set_size(batch, 0);
    pthread_mutex_lock(&w->lock);
    if (error != NULL && w->error == NULL)
      w->error = error;
    else if (error != NULL)
      g_error_free(error);
    w->busy = FALSE;
    if (w->queue->len == 0)
      pthread_cond_broadcast(&w->idle);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

/* Start the writer thread on @db. NULL if it cannot be started (the caller inserts on
 * its own thread then). The thread takes no signals: they stay with the threads that
 * handle them. */
static SinkSqliteWriter *
sink_sqlite_writer_new(TrDb *db)
{
  SinkSqliteWriter *w = g_new0(SinkSqliteWriter, 1);
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->work, NULL);
  pthread_cond_init(&w->idle, NULL);
  w->db = db;
  w->queue = g_ptr_array_new();
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&w->thread, NULL, sink_sqlite_writer_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    g_ptr_array_unref(w->queue);
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->lock);
    g_free(w);
    return NULL;
  }
  return w;
}

/* The transaction begins on @db (the sink may have opened another file since the last). */
static void
sink_sqlite_writer_use(SinkSqliteWriter *w, TrDb *db)
{
  pthread_mutex_lock(&w->lock);
  w->db = db;
  pthread_mutex_unlock(&w->lock);
}

/* Queue @report for the writer. FALSE + the error of an insert that failed since the
 * transaction began (the report is not queued). */
static gboolean
sink_sqlite_writer_push(SinkSqliteWriter *w, const Report *report, GError **error)
{
  pthread_mutex_lock(&w->lock);
  if (w->error != NULL) {
    g_set_error_literal(error, w->error->domain, w->error->code, w->error->message);
    pthread_mutex_unlock(&w->lock);
    return FALSE;
  }
  g_ptr_array_add(w->queue, (gpointer) report);
  if (w->waiting && w->queue->len >= SINK_SQLITE_WAKE)
    pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
  return TRUE;
}

/* Wait until the writer has inserted everything queued (@discard: dropped what it has
 * not begun), and take its error: the connection is the caller's again. (transfer full:
 * the error, NULL if every insert succeeded) */
static GError *
sink_sqlite_writer_wait(SinkSqliteWriter *w, gboolean discard)
{
  pthread_mutex_lock(&w->lock);
  if (discard)
    g_ptr_array_set_size(w->queue, 0);
  if (w->queue->len > 0 && w->waiting)
    pthread_cond_signal(&w->work);
  while (w->queue->len > 0 || w->busy)
    pthread_cond_wait(&w->idle, &w->lock);
  GError *error = g_steal_pointer(&w->error);
  pthread_mutex_unlock(&w->lock);
  return error;
}

static void
sink_sqlite_writer_free(SinkSqliteWriter *w)
{
  if (w == NULL)
    return;
  GError *error = sink_sqlite_writer_wait(w, TRUE);
  g_clear_error(&error);
  pthread_mutex_lock(&w->lock);
  w->stop = TRUE;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  g_ptr_array_unref(w->queue);
  pthread_cond_destroy(&w->idle);
  pthread_cond_destroy(&w->work);
  pthread_mutex_destroy(&w->lock);
  g_free(w);
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

/* The writer has inserted all that was queued (@discard: or dropped it): @db is ours
 * again. FALSE + the error of a failed insert. */
static gboolean
sink_sqlite_wait(SinkSqlite *self, gboolean discard, GError **error)
{
  if (self->writer == NULL)
    return TRUE;
  GError *failed = sink_sqlite_writer_wait(self->writer, discard);
  if (failed == NULL)
    return TRUE;
  g_propagate_error(error, failed);
  return FALSE;
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
  gboolean begins = self->db == NULL || !db_in_transaction(self->db);
  if (!sink_sqlite_ensure_open(self, error) || !db_begin(self->db, error)) {
    g_prefix_error(error, "%s: ", self->path);
    return FALSE;
  }
  if (begins && self->writer == NULL && !self->one_commit && !self->writer_failed) {
    self->writer = sink_sqlite_writer_new(self->db);
    self->writer_failed = self->writer == NULL;
  } else if (begins && self->writer != NULL) {
    sink_sqlite_writer_use(self->writer, self->db);
  }
  gboolean ok = self->writer != NULL ? sink_sqlite_writer_push(self->writer, report, error)
                                     : db_insert_report(self->db, report, NULL, error);
  if (!ok) {
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
  if (!sink_sqlite_wait(self, FALSE, error)) {
    g_prefix_error(error, "%s: ", self->path);
    return FALSE;                       /* the rollback that follows drops the batch */
  }
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
  if (self->one_commit || db_wal_pages(self->db) >= SINK_SQLITE_CHECKPOINT_PAGES) {
    self->checkpoint =
        g_thread_try_new("tlsrpt-checkpoint", sink_sqlite_checkpoint_main, self->db, NULL);
    /* No thread: a run of many commits checkpoints here, as nothing else does (SQLite's
     * own is off); one commit's close checkpoints anyway. */
    if (self->checkpoint == NULL && !self->one_commit)
      db_checkpoint(self->db);
  }
  return TRUE;
}

static void
sink_sqlite_rollback(gpointer p)
{
  SinkSqlite *self = p;
  if (self->db == NULL)
    return;
  sink_sqlite_join(self);
  sink_sqlite_wait(self, TRUE, NULL);
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
  sink_sqlite_writer_free(self->writer);
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
