/* sink.c - the sink registry, and standard output for the CSV and JSON Lines sinks
 * (their files are appended to by sink-spill.c). */
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
  &sink_sqlite_ops,
  &sink_postgres_ops,
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

gboolean
sink_write_stdout(const char *data, gsize len, GError **error)
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
