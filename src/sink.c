/* sink.c - the sink registry, and the locked durable append shared by the CSV and JSON
 * Lines sinks. */
#include "sink.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const SinkOps *const sink_registry[] = {
  &sink_tree_ops,
  &sink_csv_ops,
  &sink_jsonl_ops,
  NULL,
};

const SinkOps *
sink_find(const char *name)
{
  for (guint i = 0; name != NULL && sink_registry[i] != NULL; i++)
    if (strcmp(sink_registry[i]->name, name) == 0)
      return sink_registry[i];
  return NULL;
}

static gboolean
sink_append_stdout(const char *data, gsize len, GError **error)
{
  if (len > 0 && fwrite(data, 1, len, stdout) != len) {
    fsutil_set_error_errno(error, errno ? errno : EIO, "write", "standard output");
    return FALSE;
  }
  if (fflush(stdout) != 0) {
    fsutil_set_error_errno(error, errno ? errno : EIO, "write", "standard output");
    return FALSE;
  }
  return TRUE;
}

gboolean
sink_append_file(const char *path, const char *header, const char *data, gsize len,
                 GError **error)
{
  if (strcmp(path, "-") == 0)
    return sink_append_stdout(data, len, error);

  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    fsutil_set_error_errno(error, errno, "open", path);
    return FALSE;
  }
  gboolean ok = FALSE;
  /* Writers of other stores may share this file: one whole append at a time. */
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      fsutil_set_error_errno(error, errno, "flock", path);
      goto out;
    }
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    fsutil_set_error_errno(error, errno, "stat", path);
    goto out_unlock;
  }
  if (header != NULL && st.st_size == 0) {
    g_autoptr(GString) all = g_string_sized_new(strlen(header) + len);
    g_string_append(all, header);
    g_string_append_len(all, data, (gssize) len);
    ok = fsutil_write_all(fd, all->str, all->len, path, error);
  } else {
    ok = fsutil_write_all(fd, data, len, path, error);
  }
  if (ok)
    ok = fsutil_fsync_fd(fd, path, error);

out_unlock:
  flock(fd, LOCK_UN);
out:
  close(fd);
  return ok;
}
