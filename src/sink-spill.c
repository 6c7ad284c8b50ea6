/* sink-spill.c - a batch appended to a shared file in pieces: see sink-spill.h. */
#include "sink-spill.h"
#include "fsutil.h"

#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static gboolean
sink_spill_begin(SinkSpill *s, const char *path, const char *header, GError **error)
{
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    fsutil_set_error_errno(error, errno, "open", path);
    return FALSE;
  }
  /* Writers of other stores may share this file: the whole batch under one lock. */
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      fsutil_set_error_errno(error, errno, "flock", path);
      close(fd);
      return FALSE;
    }
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
  if (header != NULL && st.st_size == 0)
    return fsutil_write_all(fd, header, strlen(header), path, error);
  return TRUE;
}

gboolean
sink_spill_write(SinkSpill *s, const char *path, const char *header, const char *data,
                 gsize len, GError **error)
{
  if (s->fd < 0 && !sink_spill_begin(s, path, header, error))
    return FALSE;
  return fsutil_write_all(s->fd, data, len, path, error);
}

gboolean
sink_spill_active(const SinkSpill *s)
{
  return s->fd >= 0;
}

static void
sink_spill_end(SinkSpill *s)
{
  flock(s->fd, LOCK_UN);
  close(s->fd);
  s->fd = -1;
  s->start = 0;
}

gboolean
sink_spill_finish(SinkSpill *s, const char *path, const char *data, gsize len,
                  GError **error)
{
  g_return_val_if_fail(s->fd >= 0, FALSE);
  if (!fsutil_write_all(s->fd, data, len, path, error) ||
      !fsutil_fsync_fd(s->fd, path, error))
    return FALSE;
  sink_spill_end(s);
  return TRUE;
}

void
sink_spill_abort(SinkSpill *s)
{
  if (s->fd < 0)
    return;
  if (ftruncate(s->fd, (off_t) s->start) == 0)
    (void) fsync(s->fd);
  sink_spill_end(s);
}
