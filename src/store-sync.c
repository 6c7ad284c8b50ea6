/* store-sync.c - the sync planner of a store's commit (see store-sync.h). */
#include "store-sync.h"
#include "fsutil.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* More files and directories than this in one commit: one syncfs() of the file system
 * instead of an fsync() each. One `mda` delivery stays below it (two files, their
 * directory and the parents of up to four new directories), so it never makes other
 * programs' data on the same file system wait; a batch goes past it at once. */
#define STORE_SYNC_EACH_MAX 16

typedef struct {
  int fd;
  char *path;               /* for messages */
} StoreSyncBorrowed;

typedef struct {
  int fs_fd;                /* a directory on that file system (borrowed) */
  char *path;
  gboolean wide;            /* syncfs() it even while the store's commit syncs each */
} StoreSyncElsewhere;

struct StoreSync {
  char *path;
  int dir_fd;               /* borrowed */
  GArray *fds;              /* int (owned): files and directories to fsync */
  GArray *borrowed;         /* StoreSyncBorrowed: fsynced too, not closed */
  GArray *elsewhere;        /* StoreSyncElsewhere: other file systems written to */
  gboolean each;            /* FALSE: too many, one syncfs() per file system instead */
  guint64 epoch;            /* bumped whenever the above are reset */
  guint64 commits;
  gboolean (*gate)(gpointer data, GError **error);   /* store_sync_before_append() */
  gpointer gate_data;
};

static void
store_sync_borrowed_clear(gpointer p)
{
  g_free(((StoreSyncBorrowed *) p)->path);
}

static void
store_sync_elsewhere_clear(gpointer p)
{
  g_free(((StoreSyncElsewhere *) p)->path);
}

StoreSync *
store_sync_new(const char *path, int dir_fd)
{
  StoreSync *s = g_new0(StoreSync, 1);
  s->path = g_strdup(path);
  s->dir_fd = dir_fd;
  s->fds = g_array_new(FALSE, FALSE, sizeof(int));
  s->borrowed = g_array_new(FALSE, FALSE, sizeof(StoreSyncBorrowed));
  g_array_set_clear_func(s->borrowed, store_sync_borrowed_clear);
  s->elsewhere = g_array_new(FALSE, FALSE, sizeof(StoreSyncElsewhere));
  g_array_set_clear_func(s->elsewhere, store_sync_elsewhere_clear);
  s->each = TRUE;
  return s;
}

static void
store_sync_close_fds(StoreSync *s)
{
  for (guint i = 0; i < s->fds->len; i++)
    close(g_array_index(s->fds, int, i));
  g_array_set_size(s->fds, 0);
}

void
store_sync_reset(StoreSync *s)
{
  store_sync_close_fds(s);
  g_array_set_size(s->borrowed, 0);
  g_array_set_size(s->elsewhere, 0);
  s->each = TRUE;
  s->epoch++;
}

void
store_sync_free(StoreSync *s)
{
  if (s == NULL)
    return;
  store_sync_reset(s);
  g_array_unref(s->fds);
  g_array_unref(s->borrowed);
  g_array_unref(s->elsewhere);
  g_free(s->path);
  g_free(s);
}

const char *
store_sync_store_path(StoreSync *s)
{
  return s->path;
}

int
store_sync_store_fd(StoreSync *s)
{
  return s->dir_fd;
}

guint64
store_sync_epoch(StoreSync *s)
{
  return s->epoch;
}

guint64
store_sync_commit_count(StoreSync *s)
{
  return s->commits;
}

void
store_sync_committed(StoreSync *s)
{
  s->commits++;
}

void
store_sync_set_append_gate(StoreSync *s, gboolean (*gate)(gpointer data, GError **error),
                           gpointer data)
{
  s->gate = gate;
  s->gate_data = data;
}

gboolean
store_sync_before_append(StoreSync *s, GError **error)
{
  return s->gate == NULL || s->gate(s->gate_data, error);
}

gboolean
store_sync_each(StoreSync *s)
{
  return s->each;
}

/* From now on the commit ends with syncfs(): the fds kept so far are not needed. */
void
store_sync_wide(StoreSync *s)
{
  if (!s->each)
    return;
  store_sync_close_fds(s);
  s->each = FALSE;
}

void
store_sync_fd(StoreSync *s, int fd)
{
  if (fd < 0)
    return;
  if (s->each && s->fds->len >= STORE_SYNC_EACH_MAX)
    store_sync_wide(s);
  if (!s->each) {
    close(fd);
    return;
  }
  g_array_append_val(s->fds, fd);
}

void
store_sync_borrowed(StoreSync *s, int fd, const char *path)
{
  for (guint i = 0; i < s->borrowed->len; i++)
    if (g_array_index(s->borrowed, StoreSyncBorrowed, i).fd == fd)
      return;
  StoreSyncBorrowed b = { fd, g_strdup(path) };
  g_array_append_val(s->borrowed, b);
}

void
store_sync_store_dir(StoreSync *s)
{
  store_sync_borrowed(s, s->dir_fd, s->path);
}

void
store_sync_elsewhere(StoreSync *s, int fs_fd, const char *path, int fd)
{
  StoreSyncElsewhere *e = NULL;
  for (guint i = 0; i < s->elsewhere->len && e == NULL; i++)
    if (g_array_index(s->elsewhere, StoreSyncElsewhere, i).fs_fd == fs_fd)
      e = &g_array_index(s->elsewhere, StoreSyncElsewhere, i);
  if (e == NULL) {
    StoreSyncElsewhere n = { fs_fd, g_strdup(path), FALSE };
    g_array_append_val(s->elsewhere, n);
    e = &g_array_index(s->elsewhere, StoreSyncElsewhere, s->elsewhere->len - 1);
  }
  /* The store's syncfs() does not reach it: fsync it, or syncfs() its file system. */
  if (fd >= 0 && s->each && s->fds->len < STORE_SYNC_EACH_MAX) {
    g_array_append_val(s->fds, fd);
    return;
  }
  if (fd >= 0)
    close(fd);
  e->wide = TRUE;
}

/* One fsync() of a small commit, run on a thread of its own. */
typedef struct {
  int fd;
  const char *path;         /* for the error message */
  GError *error;
  GThread *thread;
} StoreSyncJob;

static gpointer
store_sync_job_main(gpointer data)
{
  StoreSyncJob *j = data;
  fsutil_fsync_fd(j->fd, j->path, &j->error);
  return NULL;
}

/* fsync() every job at once, each on a thread of its own: the disk takes them together,
 * in about half the time they take one after the other (the ten or so of one `mda`
 * message). Their order does not matter: all of them come before the commit point. On
 * failure, the error of the first job that failed, in STORE_ERROR_IO. */
static gboolean
store_sync_all(StoreSyncJob *jobs, guint n, GError **error)
{
  for (guint i = 1; i < n; i++)
    jobs[i].thread = g_thread_try_new("tlsrpt-fsync", store_sync_job_main, &jobs[i], NULL);
  if (n > 0)
    store_sync_job_main(&jobs[0]);
  for (guint i = 1; i < n; i++) {
    if (jobs[i].thread != NULL)
      g_thread_join(jobs[i].thread);
    else
      store_sync_job_main(&jobs[i]);            /* no thread: here, after the others */
  }
  gboolean ok = TRUE;
  for (guint i = 0; i < n; i++) {
    if (jobs[i].error == NULL)
      continue;
    if (ok)
      g_set_error_literal(error, STORE_ERROR, STORE_ERROR_IO, jobs[i].error->message);
    g_error_free(jobs[i].error);
    ok = FALSE;
  }
  return ok;
}

static gboolean
store_sync_fs(int fd, const char *path, GError **error)
{
  if (syncfs(fd) == 0)
    return TRUE;
  int errsv = errno;
  g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "syncfs: %s: %s", path, g_strerror(errsv));
  return FALSE;
}

gboolean
store_sync_run(StoreSync *s, GError **error)
{
  gboolean ok = TRUE;
  if (s->each) {
    guint n = 0;
    g_autofree StoreSyncJob *jobs = g_new0(StoreSyncJob, s->fds->len + s->borrowed->len + 1);
    for (guint i = 0; i < s->fds->len; i++)
      jobs[n++] = (StoreSyncJob) { g_array_index(s->fds, int, i), s->path, NULL, NULL };
    for (guint i = 0; i < s->borrowed->len; i++) {
      const StoreSyncBorrowed *b = &g_array_index(s->borrowed, StoreSyncBorrowed, i);
      jobs[n++] = (StoreSyncJob) { b->fd, b->path, NULL, NULL };
    }
    ok = store_sync_all(jobs, n, error);
  } else {
    /* Everything handed in on the store's file system: the index too. */
    ok = store_sync_fs(s->dir_fd, s->path, error);
  }
  for (guint i = 0; ok && i < s->elsewhere->len; i++) {
    const StoreSyncElsewhere *e = &g_array_index(s->elsewhere, StoreSyncElsewhere, i);
    if (e->wide || !s->each)
      ok = store_sync_fs(e->fs_fd, e->path, error);
  }
  if (!ok)
    g_prefix_error(error, "making the batch durable: ");
  store_sync_reset(s);
  return ok;
}
