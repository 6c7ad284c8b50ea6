/* source.c - the source registry, SourceMessage, and the file reader shared by the
 * local sources. */
#include "source.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const SourceOps *const source_registry[] = {
  &source_mda_ops,
  &source_maildir_ops,
  &source_mbox_ops,
  &source_file_ops,
  &source_imap_ops,
  NULL,
};

const SourceOps *
source_find(const char *name)
{
  g_return_val_if_fail(name != NULL, NULL);
  for (guint i = 0; source_registry[i] != NULL; i++)
    if (strcmp(source_registry[i]->name, name) == 0)
      return source_registry[i];
  return NULL;
}

void
source_event(const SourceEvents *events, SourceEventLevel level, const char *origin,
             const char *format, ...)
{
  if (events == NULL || events->func == NULL ||
      (level == SOURCE_EVENT_DEBUG && !events->trace))
    return;
  va_list ap;
  va_start(ap, format);
  g_autofree char *text = g_strdup_vprintf(format, ap);
  va_end(ap);
  events->func(level, origin, text, events->data);
}

void
source_config_init(SourceConfig *config)
{
  memset(config, 0, sizeof *config);
  config->max_message_size = TR_DEFAULT_MAX_MESSAGE_SIZE;
  config->batch_size = 512;   /* as tr_options_init() */
}

void
source_config_clear(SourceConfig *config)
{
  g_free(config->store_dir);
  g_free(config->move_to);
  g_free(config->imap.user);
  g_free(config->imap.password_file);
  if (config->imap.password != NULL)
    memset(config->imap.password, 0, strlen(config->imap.password));
  g_free(config->imap.password);
  g_free(config->imap.cacert);
  g_free(config->imap.error_folder);
  g_free(config->imap.oauth2_token_command);
  g_free(config->imap.oauth2_token_file);
  memset(config, 0, sizeof *config);
}

void
source_message_free(SourceMessage *msg)
{
  if (msg == NULL)
    return;
  if (msg->data != NULL)
    g_bytes_unref(msg->data);
  g_free(msg->origin);
  g_free(msg->filename);
  g_free(msg->skip_reason);
  g_free(msg->answer);
  if (msg->handle != NULL && msg->handle_free != NULL)
    msg->handle_free(msg->handle);
  g_free(msg);
}

static void
source_set_errno(GError **error, int errsv, const char *what, const char *name)
{
  g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "%s %s: %s", what, name,
              g_strerror(errsv));
}

GBytes *
source_read_file(int dir_fd, const char *name, gboolean follow, gsize max_size,
                 gsize *size_out, gint64 *mtime_out, GError **error)
{
  int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (follow ? 0 : O_NOFOLLOW);
  int fd;
  do
    fd = openat(dir_fd, name, flags);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int errsv = errno;
    if (errsv == ELOOP && !follow) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE,
                  "%s: a symbolic link, not read", name);
      return NULL;
    }
    source_set_errno(error, errsv, "open", name);
    return NULL;
  }

  struct stat st;
  if (fstat(fd, &st) != 0) {
    int errsv = errno;
    close(fd);
    source_set_errno(error, errsv, "stat", name);
    return NULL;
  }
  if (size_out != NULL)
    *size_out = (gsize) st.st_size;
  if (mtime_out != NULL)
    *mtime_out = (gint64) st.st_mtime;
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE, "%s: not a regular file",
                name);
    return NULL;
  }
  if ((guint64) st.st_size > (guint64) max_size) {
    close(fd);
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_TOO_LARGE,
                "message exceeds --max-message-size (%" G_GUINT64_FORMAT " > %"
                G_GSIZE_FORMAT " bytes)", (guint64) st.st_size, max_size);
    return NULL;
  }

  /* One read normally does: asked for one byte more than fstat() said, it returns
   * exactly the size, which is the end of the file. A short read before that size, or
   * a file still growing, is read on up to the cap. */
  gsize cap = (gsize) st.st_size + 1;
  gsize len = 0;
  guint8 *buf = g_malloc(cap);
  for (;;) {
    if (len == cap) {
      if (cap > max_size) {
        g_free(buf);
        close(fd);
        if (size_out != NULL)
          *size_out = len;
        g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_TOO_LARGE,
                    "message exceeds --max-message-size (over %" G_GSIZE_FORMAT " bytes)",
                    max_size);
        return NULL;
      }
      cap = MIN(cap * 2, max_size + 1);
      buf = g_realloc(buf, cap);
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      int errsv = errno;
      g_free(buf);
      close(fd);
      source_set_errno(error, errsv, "read", name);
      return NULL;
    }
    if (n == 0)
      break;
    len += (gsize) n;
    if (len == (gsize) st.st_size && len < cap)
      break;
  }
  close(fd);
  if (size_out != NULL)
    *size_out = len;
  return g_bytes_new_take(buf, len);
}

gboolean
source_starts_like_message(const guint8 *p, gsize len)
{
  if (len >= 6 && memcmp(p, "From ", 5) == 0)
    return p[5] != ' ' && p[5] != '\t' && p[5] != '\r' && p[5] != '\n';
  gsize i = 0;
  while (i < len && p[i] >= 0x21 && p[i] <= 0x7e && p[i] != ':')
    i++;
  if (i == 0)
    return FALSE;
  while (i < len && (p[i] == ' ' || p[i] == '\t'))
    i++;
  return i < len && p[i] == ':';
}
