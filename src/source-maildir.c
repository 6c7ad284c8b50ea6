/* source-maildir.c - messages in new/ and cur/ of one or more Maildirs.
 *
 * open() lists every Maildir up front (names only, sorted: new/ first, then cur/), so
 * a message that commit() moves into cur/ or into a folder is never seen twice in one
 * run. next() reads one file at a time with plain POSIX calls. tmp/ is never read:
 * files there are still being delivered.
 *
 * commit() acknowledges stored, duplicate and quarantined messages (a message that is
 * not a report is left exactly where it is):
 *   --move-to FOLDER  rename into the Maildir++ folder DIR/.FOLDER/cur/ (created with
 *                     cur/ new/ tmp/ and a maildirfolder file), the S flag added;
 *   --mark-seen       new/NAME -> cur/NAME:2,S; cur/NAME:2,FLAGS -> the S flag added,
 *                     flags kept in ASCII order as the Maildir specification asks;
 *   neither           nothing.
 * A message skipped unread (too large, unreadable) is never touched. A rename never
 * replaces an existing file (a taken name gets ".N" added to its unique part), and
 * both directories are fsync'ed before commit() returns. A message that vanished in
 * the meantime (a mail reader moved it) counts as acknowledged. The folder name must
 * be a plain Maildir++ name (no '/', no leading '.', no ".."): anything else is
 * refused at open() rather than rewritten into a surprising place. */
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One Maildir given on the command line; shared by the handles of its messages. */
typedef struct {
  char *path;
  int fd;
  int new_fd;
  int cur_fd;
  int move_fd;            /* DIR/.FOLDER/cur, -1 until the first move */
} SourceMaildirBox;

typedef struct {
  SourceMaildirBox *box;  /* a reference */
  gboolean in_cur;
  char *name;
  gboolean done;
} SourceMaildirEntry;

typedef struct {
  gsize max_size;
  gboolean mark_seen;
  char *move_to;          /* validated folder name, or NULL */
  GPtrArray *entries;     /* SourceMaildirEntry*, in reading order */
  guint pos;
} SourceMaildir;

static void
source_maildir_box_clear(gpointer data)
{
  SourceMaildirBox *box = data;
  g_free(box->path);
  if (box->fd >= 0)
    close(box->fd);
  if (box->new_fd >= 0)
    close(box->new_fd);
  if (box->cur_fd >= 0)
    close(box->cur_fd);
  if (box->move_fd >= 0)
    close(box->move_fd);
}

static void
source_maildir_box_unref(SourceMaildirBox *box)
{
  g_rc_box_release_full(box, source_maildir_box_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(SourceMaildirBox, source_maildir_box_unref)

static void
source_maildir_entry_free(gpointer data)
{
  SourceMaildirEntry *e = data;
  if (e == NULL)
    return;
  if (e->box != NULL)
    source_maildir_box_unref(e->box);
  g_free(e->name);
  g_free(e);
}

static int
source_maildir_open_dir(int dir_fd, const char *name)
{
  int fd;
  do
    fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  return fd;
}

static void
source_maildir_set_errno(GError **error, int errsv, const char *what, const char *path)
{
  g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "%s %s: %s", what, path,
              g_strerror(errsv));
}

static SourceMaildirBox *
source_maildir_box_open(const char *path, GError **error)
{
  g_autoptr(SourceMaildirBox) box = g_rc_box_new0(SourceMaildirBox);
  box->path = g_strdup(path);
  /* "md/" and "md" give the same origins. */
  for (gsize n = strlen(box->path); n > 1 && box->path[n - 1] == '/'; n--)
    box->path[n - 1] = '\0';
  box->fd = box->new_fd = box->cur_fd = box->move_fd = -1;

  box->fd = source_maildir_open_dir(AT_FDCWD, path);
  if (box->fd >= 0)
    box->new_fd = source_maildir_open_dir(box->fd, "new");
  if (box->new_fd >= 0)
    box->cur_fd = source_maildir_open_dir(box->fd, "cur");
  if (box->cur_fd < 0) {
    int errsv = errno;
    if (errsv == ENOENT || errsv == ENOTDIR)
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND, "not a Maildir: %s", path);
    else
      source_maildir_set_errno(error, errsv, "open Maildir", path);
    return NULL;
  }
  return g_steal_pointer(&box);
}

static gint
source_maildir_entry_cmp(gconstpointer a, gconstpointer b)
{
  const SourceMaildirEntry *ea = *(const SourceMaildirEntry *const *) a;
  const SourceMaildirEntry *eb = *(const SourceMaildirEntry *const *) b;
  return strcmp(ea->name, eb->name);
}

/* Append the names in new/ or cur/ of @box to @entries, sorted. */
static gboolean
source_maildir_list(SourceMaildirBox *box, gboolean in_cur, GPtrArray *entries,
                    GError **error)
{
  int fd = dup(in_cur ? box->cur_fd : box->new_fd);
  DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
  if (dir == NULL) {
    int errsv = errno;
    if (fd >= 0)
      close(fd);
    g_autofree char *where = g_build_filename(box->path, in_cur ? "cur" : "new", NULL);
    source_maildir_set_errno(error, errsv, "list", where);
    return FALSE;
  }
  rewinddir(dir);
  guint first = entries->len;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(dir);
    if (de == NULL) {
      if (errno != 0) {
        int errsv = errno;
        closedir(dir);
        g_autofree char *where = g_build_filename(box->path, in_cur ? "cur" : "new", NULL);
        source_maildir_set_errno(error, errsv, "list", where);
        return FALSE;
      }
      break;
    }
    if (de->d_name[0] == '.')
      continue;
    if (de->d_type == DT_DIR)
      continue;
    SourceMaildirEntry *e = g_new0(SourceMaildirEntry, 1);
    e->box = g_rc_box_acquire(box);
    e->in_cur = in_cur;
    e->name = g_strdup(de->d_name);
    g_ptr_array_add(entries, e);
  }
  closedir(dir);

  /* Sort only what this directory added. */
  if (entries->len - first > 1)
    qsort(entries->pdata + first, entries->len - first, sizeof(gpointer),
          source_maildir_entry_cmp);
  return TRUE;
}

/* A Maildir++ folder name: what goes after the '.' in DIR/.FOLDER. */
static gboolean
source_maildir_folder_ok(const char *name)
{
  if (name[0] == '\0' || name[0] == '.' || strstr(name, "..") != NULL)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (*p == '/' || (guchar) *p < 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

static void source_maildir_close(gpointer self_);

static gpointer
source_maildir_open(const TrOptions *opts, char **args, GError **error)
{
  g_assert(args != NULL);
  if (opts->move_to != NULL && !source_maildir_folder_ok(opts->move_to)) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "--move-to %s: not a usable folder name (no '/', no leading '.', no '..')",
                opts->move_to);
    return NULL;
  }
  SourceMaildir *self = g_new0(SourceMaildir, 1);
  self->max_size = opts->limits.max_message_size;
  self->mark_seen = opts->mark_seen;
  self->move_to = g_strdup(opts->move_to);
  self->entries = g_ptr_array_new_with_free_func(source_maildir_entry_free);

  for (guint i = 0; args[i] != NULL; i++) {
    g_autoptr(SourceMaildirBox) box = source_maildir_box_open(args[i], error);
    if (box == NULL || !source_maildir_list(box, FALSE, self->entries, error) ||
        !source_maildir_list(box, TRUE, self->entries, error)) {
      source_maildir_close(self);
      return NULL;
    }
  }
  return self;
}

static void
source_maildir_handle_free(gpointer data)
{
  source_maildir_entry_free(data);
}

static gboolean
source_maildir_next(gpointer self_, SourceMessage **msg, GError **error)
{
  SourceMaildir *self = self_;
  *msg = NULL;
  while (self->pos < self->entries->len) {
    SourceMaildirEntry *e = self->entries->pdata[self->pos];
    self->entries->pdata[self->pos] = NULL;
    self->pos++;

    g_autoptr(GError) rerr = NULL;
    gint64 mtime = 0;
    gsize size = 0;
    int dir_fd = e->in_cur ? e->box->cur_fd : e->box->new_fd;
    GBytes *data = source_read_file(dir_fd, e->name, FALSE, self->max_size, &size, &mtime,
                                    &rerr);
    if (data == NULL && g_error_matches(rerr, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
      /* Moved by a mail reader since open(): not ours any more. */
      source_maildir_entry_free(e);
      continue;
    }

    g_autofree char *origin = g_strconcat(e->box->path,
                                          strcmp(e->box->path, "/") == 0 ? "" : "/",
                                          e->in_cur ? "cur/" : "new/", e->name, NULL);
    if (data == NULL && !g_error_matches(rerr, SOURCE_ERROR, SOURCE_ERROR_TOO_LARGE) &&
        !g_error_matches(rerr, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE) &&
        !g_error_matches(rerr, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "%s: %s", origin, rerr->message);
      source_maildir_entry_free(e);
      return FALSE;
    }

    SourceMessage *m = g_new0(SourceMessage, 1);
    m->data = data;
    m->origin = g_steal_pointer(&origin);
    m->received = mtime;
    if (data == NULL)
      m->skip_reason = g_strdup(rerr->message);
    m->handle = e;
    m->handle_free = source_maildir_handle_free;
    *msg = m;
    return TRUE;
  }
  return FALSE;
}

/* @name with the S flag added: "u" -> "u:2,S", "u:2,RF" -> "u:2,FRS". A name whose
 * info is not of the "2," kind is returned unchanged. (transfer full) */
static char *
source_maildir_seen_name(const char *name)
{
  const char *colon = strchr(name, ':');
  if (colon == NULL)
    return g_strconcat(name, ":2,S", NULL);
  if (strncmp(colon + 1, "2,", 2) != 0)
    return g_strdup(name);
  const char *flags = colon + 3;
  gboolean present[256] = { FALSE };
  for (const char *p = flags; *p != '\0'; p++)
    present[(guchar) *p] = TRUE;
  present['S'] = TRUE;
  GString *out = g_string_new_len(name, colon + 3 - name);
  for (guint c = 1; c < 256; c++)
    if (present[c])
      g_string_append_c(out, (char) c);
  return g_string_free(out, FALSE);
}

/* @name with ".N" added to its unique part, for a destination that is taken. */
static char *
source_maildir_alt_name(const char *name, guint n)
{
  const char *colon = strchr(name, ':');
  gsize ulen = colon != NULL ? (gsize) (colon - name) : strlen(name);
  return g_strdup_printf("%.*s.%u%s", (int) ulen, name, n, colon != NULL ? colon : "");
}

static int
source_maildir_rename_noreplace(int src_fd, const char *src, int dst_fd, const char *dst)
{
  if (renameat2(src_fd, src, dst_fd, dst, RENAME_NOREPLACE) == 0)
    return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
    return -1;
  /* A file system without RENAME_NOREPLACE: check, then rename (a narrow race, and
   * only against another program choosing the very same unique name). */
  struct stat st;
  if (fstatat(dst_fd, dst, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    errno = EEXIST;
    return -1;
  }
  return renameat(src_fd, src, dst_fd, dst);
}

/* Rename without ever replacing a file. *final gets the name used (transfer full);
 * *vanished is set when the source is gone (already acknowledged elsewhere). */
static gboolean
source_maildir_rename(int src_fd, const char *src, int dst_fd, const char *dst,
                      const char *origin, char **final, gboolean *vanished, GError **error)
{
  *vanished = FALSE;
  g_autofree char *target = g_strdup(dst);
  for (guint n = 1;; n++) {
    if (source_maildir_rename_noreplace(src_fd, src, dst_fd, target) == 0)
      break;
    int errsv = errno;
    if (errsv == ENOENT) {
      struct stat st;
      if (fstatat(src_fd, src, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
        *vanished = TRUE;
        return TRUE;
      }
    }
    if (errsv != EEXIST || n > 1000) {
      source_maildir_set_errno(error, errsv, "rename", origin);
      return FALSE;
    }
    /* The destination exists: the same file (a second link) or another message that
     * happens to carry the same unique name. */
    struct stat a, b;
    if (fstatat(src_fd, src, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
        fstatat(dst_fd, target, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
      if (unlinkat(src_fd, src, 0) != 0 && errno != ENOENT) {
        source_maildir_set_errno(error, errno, "unlink", origin);
        return FALSE;
      }
      break;
    }
    g_free(target);
    target = source_maildir_alt_name(dst, n);
  }
  *final = g_steal_pointer(&target);
  return TRUE;
}

static gboolean
source_maildir_fsync(int fd, const char *what, GError **error)
{
  if (fsync(fd) == 0 || errno == EINVAL || errno == EROFS)
    return TRUE;
  source_maildir_set_errno(error, errno, "fsync", what);
  return FALSE;
}

static gboolean
source_maildir_mkdir(int dir_fd, const char *name, const char *path, GError **error)
{
  if (mkdirat(dir_fd, name, 0700) == 0 || errno == EEXIST)
    return TRUE;
  source_maildir_set_errno(error, errno, "create folder", path);
  return FALSE;
}

/* Open (creating it when missing) DIR/.FOLDER/cur for --move-to. */
static gboolean
source_maildir_folder_open(SourceMaildirBox *box, const char *folder, GError **error)
{
  if (box->move_fd >= 0)
    return TRUE;
  g_autofree char *dotname = g_strconcat(".", folder, NULL);
  g_autofree char *path = g_build_filename(box->path, dotname, NULL);
  if (!source_maildir_mkdir(box->fd, dotname, path, error))
    return FALSE;
  int fd = openat(box->fd, dotname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    source_maildir_set_errno(error, errno, "open folder", path);
    return FALSE;
  }
  gboolean ok = source_maildir_mkdir(fd, "tmp", path, error) &&
                source_maildir_mkdir(fd, "new", path, error) &&
                source_maildir_mkdir(fd, "cur", path, error);
  if (ok) {
    int mf = openat(fd, "maildirfolder", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (mf >= 0)
      close(mf);
    ok = source_maildir_fsync(fd, path, error) &&
         source_maildir_fsync(box->fd, box->path, error);
  }
  if (ok) {
    box->move_fd = openat(fd, "cur", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (box->move_fd < 0) {
      source_maildir_set_errno(error, errno, "open folder", path);
      ok = FALSE;
    }
  }
  close(fd);
  return ok;
}

static gboolean
source_maildir_commit(gpointer self_, SourceMessage *msg, SourceOutcome outcome,
                      GError **error)
{
  SourceMaildir *self = self_;
  SourceMaildirEntry *e = msg->handle;
  /* Not a report, or skipped unread: left exactly where it is. */
  if (e == NULL || e->done || outcome == SOURCE_OUTCOME_NOT_REPORT || msg->data == NULL)
    return TRUE;
  if (self->move_to == NULL && !self->mark_seen)
    return TRUE;

  SourceMaildirBox *box = e->box;
  int src_fd = e->in_cur ? box->cur_fd : box->new_fd;
  int dst_fd;
  if (self->move_to != NULL) {
    if (!source_maildir_folder_open(box, self->move_to, error))
      return FALSE;
    dst_fd = box->move_fd;
  } else {
    dst_fd = box->cur_fd;
  }
  g_autofree char *dest = source_maildir_seen_name(e->name);
  if (src_fd == dst_fd && strcmp(dest, e->name) == 0) {
    e->done = TRUE;
    return TRUE;
  }

  g_autofree char *final = NULL;
  gboolean vanished = FALSE;
  if (!source_maildir_rename(src_fd, e->name, dst_fd, dest, msg->origin, &final, &vanished,
                             error))
    return FALSE;
  e->done = TRUE;
  if (vanished)
    return TRUE;
  if (!source_maildir_fsync(dst_fd, msg->origin, error))
    return FALSE;
  if (src_fd != dst_fd && !source_maildir_fsync(src_fd, msg->origin, error))
    return FALSE;
  return TRUE;
}

static void
source_maildir_close(gpointer self_)
{
  SourceMaildir *self = self_;
  if (self == NULL)
    return;
  g_ptr_array_unref(self->entries);
  g_free(self->move_to);
  g_free(self);
}

const SourceOps source_maildir_ops = {
  "maildir", source_maildir_open, source_maildir_next, source_maildir_commit,
  source_maildir_close,
};
