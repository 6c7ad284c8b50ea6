/* quarantine.c - messages that hold no valid report, kept whole (see quarantine.h). */
#include "quarantine.h"
#include "fsutil.h"
#include "escape.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUARANTINE_REASON_MAX (64 * 1024)   /* an earlier .reason read back, at most */
#define QUARANTINE_TMP_MAX_AGE 3600         /* see fsutil_sweep_tmp() and docs/store.md */

struct Quarantine {
  char *store_path;
  int store_fd;             /* borrowed */
  char *dir;                /* --quarantine, or NULL: STORE/quarantine */
  char *path;               /* where it is */
  int fd;                   /* the quarantine directory, once opened; else -1 */
  gboolean other_fs;        /* not on the store's file system */
};

char *
quarantine_path(const char *store_dir, const char *quarantine_dir)
{
  return quarantine_dir != NULL ? g_strdup(quarantine_dir)
                                : g_build_filename(store_dir, "quarantine", NULL);
}

Quarantine *
quarantine_new(const char *store_path, int store_fd, const char *quarantine_dir)
{
  Quarantine *q = g_new0(Quarantine, 1);
  q->store_path = g_strdup(store_path);
  q->store_fd = store_fd;
  q->dir = g_strdup(quarantine_dir);
  q->path = quarantine_path(store_path, quarantine_dir);
  q->fd = -1;
  return q;
}

void
quarantine_free(Quarantine *q)
{
  if (q == NULL)
    return;
  if (q->fd >= 0)
    close(q->fd);
  g_free(q->store_path);
  g_free(q->dir);
  g_free(q->path);
  g_free(q);
}

/* Move an fsutil (G_IO_ERROR) error into the store's domain. */
static void
quarantine_propagate_io(GError **error, GError *src)
{
  g_set_error_literal(error, STORE_ERROR, STORE_ERROR_IO, src->message);
  g_error_free(src);
}

static void
quarantine_set_errno(GError **error, int errsv, const char *what, const char *path)
{
  g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "%s: %s: %s", what, path,
              g_strerror(errsv));
}

/* @s on one line of the .reason file: line breaks and tabs folded into spaces (as a
 * header is unfolded), every other unsafe byte shown as "\xNN" by the one escaper
 * (escape.h). (transfer full) */
static char *
quarantine_one_line(const char *s)
{
  g_autofree char *folded = g_strdup(s != NULL ? s : "");
  for (char *p = folded; *p != '\0'; p++)
    if (*p == '\r' || *p == '\n' || *p == '\t')
      *p = ' ';
  return tr_escape_terminal(folded);
}

/* The quarantine directory, created when missing, never through a symlink below the
 * store; opened once and kept. A new STORE/quarantine is made durable with the store
 * directory: with the commit (@sync), else at once. */
static gboolean
quarantine_open(Quarantine *q, StoreSync *sync, GError **error)
{
  if (q->fd >= 0)
    return TRUE;
  GError *local = NULL;
  int fd;
  if (q->dir != NULL) {
    if (!fsutil_mkdir_p(q->dir, &local)) {
      quarantine_propagate_io(error, local);
      return FALSE;
    }
    fd = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      quarantine_set_errno(error, errno, "open", q->dir);
      return FALSE;
    }
  } else {
    gboolean created = FALSE;
    fd = fsutil_mkdir_open(q->store_fd, "quarantine", "quarantine", &created, &local);
    if (fd < 0) {
      quarantine_propagate_io(error, local);
      g_prefix_error(error, "%s: ", q->store_path);
      return FALSE;
    }
    if (created) {
      if (sync != NULL) {
        store_sync_store_dir(sync);
      } else if (!fsutil_fsync_fd(q->store_fd, q->store_path, &local)) {
        quarantine_propagate_io(error, local);
        close(fd);
        return FALSE;
      }
    }
  }
  struct stat qst, sst;
  q->other_fs = fstat(fd, &qst) != 0 || fstat(q->store_fd, &sst) != 0 ||
                qst.st_dev != sst.st_dev;
  q->fd = fd;
  /* Once per run: what killed writers left here (never a live writer's). */
  fsutil_sweep_tmp(fd, QUARANTINE_TMP_MAX_AGE);
  return TRUE;
}

guint
quarantine_sweep(Quarantine *q)
{
  if (q->fd >= 0)
    return fsutil_sweep_tmp(q->fd, QUARANTINE_TMP_MAX_AGE);
  int fd = q->dir != NULL
               ? open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
               : openat(q->store_fd, "quarantine", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return 0;                   /* none yet: nothing to sweep */
  guint n = fsutil_sweep_tmp(fd, QUARANTINE_TMP_MAX_AGE);
  close(fd);
  return n;
}

/* Write one quarantine file: inside a commit without fsync (the commit's sync makes it
 * durable with the batch), outside one durably at once. */
static gboolean
quarantine_write(Quarantine *q, StoreSync *sync, const char *name, const void *data,
                 gsize len, GError **error)
{
  if (sync == NULL)
    return fsutil_write_atomic(q->fd, name, data, len, error);
  int fd = -1;
  if (!fsutil_write_replace(q->fd, name, data, len, store_sync_each(sync) ? &fd : NULL,
                            error))
    return FALSE;
  store_sync_borrowed(sync, q->fd, q->path);
  if (q->other_fs)
    store_sync_elsewhere(sync, q->fd, q->path, fd);
  else
    store_sync_fd(sync, fd);
  return TRUE;
}

/* The "origin:" value of an earlier @name in the quarantine, or NULL. (transfer full) */
static char *
quarantine_first_origin(Quarantine *q, const char *name)
{
  int fd = openat(q->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  char buf[QUARANTINE_REASON_MAX + 1];
  gsize got = 0;
  for (;;) {
    ssize_t n = read(fd, buf + got, QUARANTINE_REASON_MAX - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (gsize) n;
    if (got == QUARANTINE_REASON_MAX)
      break;
  }
  close(fd);
  buf[got] = '\0';
  for (char *line = buf; line != NULL && *line != '\0';) {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    if (g_str_has_prefix(line, "origin: ") && line[8] != '\0')
      return g_strdup(line + 8);
    line = nl != NULL ? nl + 1 : NULL;
  }
  return NULL;
}

char *
quarantine_put(Quarantine *q, StoreSync *sync, GBytes *message, const char *origin,
               const char *reason, GError **error)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(message, &len);
  g_autofree char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
  sha[16] = '\0';
  g_autofree char *eml = g_strconcat(sha, ".eml", NULL);
  g_autofree char *why = g_strconcat(sha, ".reason", NULL);

  if (!quarantine_open(q, sync, error)) {
    g_prefix_error(error, "quarantine: ");
    return NULL;
  }

  /* The .eml is written again even when a copy is there: after a crash that copy may
   * not be complete (written by a commit that never became durable). */
  GError *local = NULL;
  gboolean ok = quarantine_write(q, sync, eml, data, len, &local);

  if (ok) {
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    g_autofree char *first = quarantine_first_origin(q, why);
    g_autofree char *o = quarantine_one_line(first != NULL ? first : origin);
    g_autofree char *r = quarantine_one_line(reason);
    g_autofree char *text = g_strdup_printf("origin: %s\nreceived: %s\nreason: %s\n", o, stamp, r);
    ok = quarantine_write(q, sync, why, text, strlen(text), &local);
  }
  if (!ok) {
    quarantine_propagate_io(error, local);
    g_prefix_error(error, "quarantine: %s: ", q->path);
    return NULL;
  }
  return g_build_filename(q->path, eml, NULL);
}
