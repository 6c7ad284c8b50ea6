/* sink-spill.c - a batch appended to a shared file: see sink-spill.h. */
#include "sink-spill.h"
#include "fsutil.h"

#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open and lock @path for the batch, writing @header when the file is empty. Without
 * @wait a file locked by another writer gives FALSE with *busy set and no error. */
static gboolean
sink_spill_begin(SinkSpill *s, const char *path, const char *header, gboolean wait,
                 gboolean *busy, GError **error)
{
  *busy = FALSE;
  /* The store's journal, which undoes this append after a crash, must be durable first. */
  if (s->sync != NULL && !store_sync_before_append(s->sync, error))
    return FALSE;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    fsutil_set_error_errno(error, errno, "open", path);
    return FALSE;
  }
  /* Writers of other stores may share this file: the whole batch under one lock. */
  while (flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR)
      continue;
    if (errno == EWOULDBLOCK && !wait)
      *busy = TRUE;
    else
      fsutil_set_error_errno(error, errno, "flock", path);
    close(fd);
    return FALSE;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    fsutil_set_error_errno(error, errno, "stat", path);
    flock(fd, LOCK_UN);
    close(fd);
    return FALSE;
  }
  s->fd = fd;
  s->start = (gint64) st.st_size;
  s->retry_at = 0;
  s->fresh = st.st_size == 0;
  if (header != NULL && st.st_size == 0)
    return fsutil_write_all(fd, header, strlen(header), path, error);
  return TRUE;
}

gboolean
sink_spill_out(SinkSpill *s, const char *path, const char *header, GString *out,
               GError **error)
{
  if (s->fd < 0) {
    if (out->len < s->retry_at)
      return TRUE;
    gboolean busy = FALSE;
    if (!sink_spill_begin(s, path, header, FALSE, &busy, error)) {
      if (!busy)
        return FALSE;
      s->retry_at = out->len * 2;   /* keep staging; do not retry on every row */
      return TRUE;
    }
  }
  if (!fsutil_write_all(s->fd, out->str, out->len, path, error))
    return FALSE;
  g_string_truncate(out, 0);
  return TRUE;
}

static void
sink_spill_end(SinkSpill *s)
{
  flock(s->fd, LOCK_UN);
  close(s->fd);
  s->fd = -1;
  s->start = 0;
}

/* The batch's bytes durable before the store's commit point: see sink-spill.h. A file
 * on the store's file system is left to the store's commit (its fsync of each file, or
 * its syncfs(), which reaches this file too); a file on another file system is fsynced
 * here, since a commit that ends with the store's syncfs() would not reach it. */
static gboolean
sink_spill_sync(SinkSpill *s, const char *path, GError **error)
{
  struct stat st, store_st;
  if (s->sync != NULL && fstat(s->fd, &st) == 0 &&
      fstat(store_sync_store_fd(s->sync), &store_st) == 0 && st.st_dev == store_st.st_dev) {
    if (!store_sync_each(s->sync))
      return TRUE;        /* the commit ends with syncfs() of this file system */
    int fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) {
      store_sync_fd(s->sync, fd);
      return TRUE;
    }
  }
  return fsutil_fsync_fd(s->fd, path, error);
}

gboolean
sink_spill_finish(SinkSpill *s, const char *path, const char *header, const char *data,
                  gsize len, GError **error)
{
  s->retry_at = 0;
  if (s->fd < 0) {
    gboolean busy = FALSE;
    if (len == 0)
      return TRUE;
    if (!sink_spill_begin(s, path, header, TRUE, &busy, error))
      return FALSE;
  }
  if (!fsutil_write_all(s->fd, data, len, path, error) || !sink_spill_sync(s, path, error))
    return FALSE;
  /* A file O_CREAT made: its directory entry is durable only once the directory is. */
  if (s->fresh && !fsutil_fsync_parent(path, error))
    return FALSE;
  sink_spill_end(s);
  return TRUE;
}

void
sink_spill_abort(SinkSpill *s)
{
  s->retry_at = 0;
  if (s->fd < 0)
    return;
  if (ftruncate(s->fd, (off_t) s->start) == 0)
    (void) fsync(s->fd);
  sink_spill_end(s);
}
