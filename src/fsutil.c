/* fsutil.c - durable, symlink-safe file operations and name sanitizing. */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <pthread.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

/* The part of the final name kept in a temporary name: ".tmp-" + this + "-<pid>-<rnd>"
 * stays well below NAME_MAX. */
#define FSUTIL_TMP_FINAL_MAX 200

static int fsutil_openat2_dir(int base_fd, const char *relpath);
static void fsutil_set_open_dir_error(GError **error, int errsv, int dir_fd, const char *name,
                                      const char *what);

void
fsutil_set_error_errno(GError **error, int errsv, const char *what, const char *path)
{
  if (path != NULL)
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "%s: %s: %s", what, path,
                g_strerror(errsv));
  else
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "%s: %s", what,
                g_strerror(errsv));
}

gboolean
fsutil_fsync_fd(int fd, const char *what, GError **error)
{
  while (fsync(fd) != 0) {
    if (errno == EINTR)
      continue;
    /* Directories on some file systems do not support fsync: nothing to make durable. */
    if (errno == EINVAL || errno == ENOTSUP)
      return TRUE;
    fsutil_set_error_errno(error, errno, "fsync", what);
    return FALSE;
  }
  return TRUE;
}

/* Make one directory; TRUE when it exists as a directory afterwards. *created tells
 * whether this call made it. */
static gboolean
fsutil_mkdir_one(const char *path, gboolean *created, GError **error)
{
  *created = FALSE;
  if (mkdir(path, 0750) == 0) {
    *created = TRUE;
    return TRUE;
  }
  int errsv = errno;
  struct stat st;
  if (errsv == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return TRUE;
  if (errsv == EEXIST)
    errsv = ENOTDIR;
  fsutil_set_error_errno(error, errsv, "mkdir", path);
  return FALSE;
}

gboolean
fsutil_fsync_parent(const char *path, GError **error)
{
  g_autofree char *parent = g_path_get_dirname(path);
  int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fsutil_set_error_errno(error, errno, "open", parent);
    return FALSE;
  }
  gboolean ok = fsutil_fsync_fd(fd, parent, error);
  close(fd);
  return ok;
}

gboolean
fsutil_mkdir_p(const char *path, GError **error)
{
  g_return_val_if_fail(path != NULL && path[0] != '\0', FALSE);
  struct stat st;
  if (stat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return TRUE;
    fsutil_set_error_errno(error, ENOTDIR, "mkdir", path);
    return FALSE;
  }

  g_autofree char *copy = g_strdup(path);
  gsize len = strlen(copy);
  while (len > 1 && copy[len - 1] == '/')
    copy[--len] = '\0';
  /* Every prefix ending before a '/', then the whole path. */
  for (gsize i = 1; i <= len; i++) {
    if (i < len && copy[i] != '/')
      continue;
    if (i < len && copy[i - 1] == '/')
      continue;                 /* "//" */
    char saved = copy[i];
    copy[i] = '\0';
    gboolean created = FALSE;
    gboolean ok = fsutil_mkdir_one(copy, &created, error);
    if (ok && created)
      ok = fsutil_fsync_parent(copy, error);
    copy[i] = saved;
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

static gboolean
fsutil_component_ok(const char *c)
{
  return c[0] != '\0' && strcmp(c, ".") != 0 && strcmp(c, "..") != 0;
}

int
fsutil_open_dir_below(int base_fd, const char *relpath, gboolean create, GError **error)
{
  g_return_val_if_fail(relpath != NULL, -1);
  if (relpath[0] == '/' || relpath[0] == '\0') {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "open: %s: not a relative directory path", relpath);
    return -1;
  }
  g_auto(GStrv) parts = g_strsplit(relpath, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    if (!fsutil_component_ok(parts[i])) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                  "open: %s: empty, \".\" or \"..\" component", relpath);
      return -1;
    }

  /* Most directories exist: one system call for the whole path. */
  int fast = fsutil_openat2_dir(base_fd, relpath);
  if (fast >= 0)
    return fast;

  int cur = base_fd;
  for (guint i = 0; parts[i] != NULL; i++) {
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(cur, parts[i], flags);
    if (fd < 0 && errno == ENOENT && create) {
      if (mkdirat(cur, parts[i], 0750) != 0 && errno != EEXIST) {
        fsutil_set_error_errno(error, errno, "mkdir", relpath);
        goto fail;
      }
      fd = openat(cur, parts[i], flags);
    }
    if (fd < 0) {
      fsutil_set_open_dir_error(error, errno, cur, parts[i], relpath);
      goto fail;
    }
    if (cur != base_fd)
      close(cur);
    cur = fd;
  }
  return cur;

fail:
  if (cur != base_fd)
    close(cur);
  return -1;
}

/* openat2(RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH) of a directory: -1 with errno, ENOSYS
 * when this kernel (or a seccomp filter) does not offer it. */
static int
fsutil_openat2_dir(int base_fd, const char *relpath)
{
#if defined(__linux__) && defined(SYS_openat2) && defined(RESOLVE_NO_SYMLINKS)
  static gint unsupported;      /* set once openat2 is known to be missing */
  if (!g_atomic_int_get(&unsupported)) {
    struct open_how how = {
      .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
      .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    int fd;
    do
      fd = (int) syscall(SYS_openat2, base_fd, relpath, &how, sizeof how);
    while (fd < 0 && (errno == EINTR || errno == EAGAIN));
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM && errno != E2BIG))
      return fd;
    g_atomic_int_set(&unsupported, 1);
  }
#endif
  errno = ENOSYS;
  return -1;
}

int
fsutil_open_dir_beneath(int base_fd, const char *relpath, GError **error)
{
  g_return_val_if_fail(relpath != NULL, -1);
  if (relpath[0] != '\0' && relpath[0] != '/' && strstr(relpath, "//") == NULL) {
    int fd = fsutil_openat2_dir(base_fd, relpath);
    if (fd >= 0)
      return fd;
    if (errno == ENOENT) {
      fsutil_set_error_errno(error, ENOENT, "open", relpath);
      return -1;
    }
    /* A symlink (ELOOP), "..", a file in the way ...: the component walk names it. */
  }
  return fsutil_open_dir_below(base_fd, relpath, FALSE, error);
}

/* The error for a failed openat(O_NOFOLLOW|O_DIRECTORY) of @name in @dir_fd. */
static void
fsutil_set_open_dir_error(GError **error, int errsv, int dir_fd, const char *name,
                          const char *what)
{
  struct stat st;
  if ((errsv == ELOOP || errsv == ENOTDIR) &&
      fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_LINKS,
                "open: %s: \"%s\" is a symbolic link, refusing to follow it", what, name);
  else
    fsutil_set_error_errno(error, errsv, "open", what);
}

int
fsutil_mkdir_open(int dir_fd, const char *name, const char *what, gboolean *created,
                  GError **error)
{
  *created = FALSE;
  if (!fsutil_component_ok(name) || strchr(name, '/') != NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "mkdir: %s: empty, \".\", \"..\" or \"/\" in a component", what);
    return -1;
  }
  if (mkdirat(dir_fd, name, 0750) == 0)
    *created = TRUE;
  else if (errno != EEXIST) {
    fsutil_set_error_errno(error, errno, "mkdir", what);
    return -1;
  }
  int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    fsutil_set_open_dir_error(error, errno, dir_fd, name, what);
  return fd;
}

gboolean
fsutil_write_all(int fd, const void *data, gsize len, const char *what, GError **error)
{
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, MIN(len, (gsize) G_MAXSSIZE));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fsutil_set_error_errno(error, errno, "write", what);
      return FALSE;
    }
    if (n == 0) {
      fsutil_set_error_errno(error, EIO, "write", what);
      return FALSE;
    }
    p += n;
    len -= (gsize) n;
  }
  return TRUE;
}

/* The process id, asked once per process (a forked child asks again). */
static pid_t fsutil_pid_cached;

static void
fsutil_pid_forget(void)
{
  fsutil_pid_cached = 0;
}

static pid_t
fsutil_pid(void)
{
  static gsize registered;
  if (g_once_init_enter(&registered)) {
    pthread_atfork(NULL, NULL, fsutil_pid_forget);
    g_once_init_leave(&registered, 1);
  }
  if (fsutil_pid_cached == 0)
    fsutil_pid_cached = getpid();
  return fsutil_pid_cached;
}

/* Create and fill a temporary file for @final_name in @dir_fd; returns its fd (open for
 * writing) and *tmp_out its name, or -1 + error with nothing left behind. */
static int
fsutil_create_tmp(int dir_fd, const char *final_name, const void *data, gsize len,
                  char **tmp_out, GError **error)
{
  g_return_val_if_fail(final_name != NULL && strchr(final_name, '/') == NULL, -1);
  g_autofree char *tmp = NULL;
  int fd = -1;
  for (int attempt = 0; attempt < 16; attempt++) {
    g_free(tmp);
    tmp = g_strdup_printf(".tmp-%.*s-%ld-%08x", FSUTIL_TMP_FINAL_MAX, final_name,
                          (long) fsutil_pid(), g_random_int());
    fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd >= 0 || errno != EEXIST)
      break;
  }
  if (fd < 0) {
    fsutil_set_error_errno(error, errno, "create", tmp);
    return -1;
  }
  if (!fsutil_write_all(fd, data, len, tmp, error)) {
    close(fd);
    unlinkat(dir_fd, tmp, 0);
    return -1;
  }
  *tmp_out = g_steal_pointer(&tmp);
  return fd;
}

char *
fsutil_write_tmp(int dir_fd, const char *final_name, const void *data, gsize len,
                 gboolean do_fsync, GError **error)
{
  char *tmp = NULL;
  int fd = fsutil_create_tmp(dir_fd, final_name, data, len, &tmp, error);
  if (fd < 0)
    return NULL;
  gboolean ok = TRUE;
  if (do_fsync)
    ok = fsutil_fsync_fd(fd, tmp, error);
  if (close(fd) != 0 && ok) {
    fsutil_set_error_errno(error, errno, "close", tmp);
    ok = FALSE;
  }
  if (!ok) {
    unlinkat(dir_fd, tmp, 0);
    g_free(tmp);
    return NULL;
  }
  return tmp;
}

gboolean
fsutil_write_replace(int dir_fd, const char *name, const void *data, gsize len,
                     int *keep_fd, GError **error)
{
  g_autofree char *tmp = NULL;
  int fd = fsutil_create_tmp(dir_fd, name, data, len, &tmp, error);
  if (fd < 0)
    return FALSE;
  if (keep_fd == NULL && close(fd) != 0) {
    fsutil_set_error_errno(error, errno, "close", tmp);
    unlinkat(dir_fd, tmp, 0);
    return FALSE;
  }
  if (renameat(dir_fd, tmp, dir_fd, name) != 0) {
    fsutil_set_error_errno(error, errno, "rename", name);
    if (keep_fd != NULL)
      close(fd);
    unlinkat(dir_fd, tmp, 0);
    return FALSE;
  }
  if (keep_fd != NULL)
    *keep_fd = fd;
  return TRUE;
}

gboolean
fsutil_write_atomic(int dir_fd, const char *name, const void *data, gsize len,
                    GError **error)
{
  g_autofree char *tmp = fsutil_write_tmp(dir_fd, name, data, len, TRUE, error);
  if (tmp == NULL)
    return FALSE;
  if (renameat(dir_fd, tmp, dir_fd, name) != 0) {
    fsutil_set_error_errno(error, errno, "rename", name);
    unlinkat(dir_fd, tmp, 0);
    return FALSE;
  }
  return fsutil_fsync_fd(dir_fd, "directory", error);
}

gboolean
fsutil_write_file_atomic(const char *path, const void *data, gsize len, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *base = g_path_get_basename(path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fsutil_set_error_errno(error, errno, "cannot open the directory", dir);
    return FALSE;
  }
  gboolean ok = fsutil_write_atomic(fd, base, data, len, error);
  close(fd);
  if (!ok)
    g_prefix_error(error, "%s: ", path);
  return ok;
}

/* The pid of a ".tmp-<final>-<pid>-<8 hex>" name, or 0. */
static pid_t
fsutil_tmp_pid(const char *name)
{
  if (!g_str_has_prefix(name, ".tmp-"))
    return 0;
  const char *rnd = strrchr(name, '-');
  if (rnd == NULL || strlen(rnd + 1) != 8)
    return 0;
  for (const char *p = rnd + 1; *p; p++)
    if (!g_ascii_isxdigit(*p))
      return 0;
  const char *dash = rnd;
  while (dash > name + 5 && g_ascii_isdigit(dash[-1]))
    dash--;
  if (dash == rnd || dash <= name + 5 || dash[-1] != '-' || rnd - dash > 10)
    return 0;
  guint64 pid = g_ascii_strtoull(dash, NULL, 10);
  return pid > 0 && pid <= G_MAXINT32 ? (pid_t) pid : 0;
}

gboolean
fsutil_tmp_writer_alive(const char *name)
{
  pid_t pid = fsutil_tmp_pid(name);
  if (pid <= 0)
    return FALSE;
  if (pid == fsutil_pid())
    return TRUE;
  return kill(pid, 0) == 0 || errno != ESRCH;
}

guint
fsutil_sweep_tmp(int dir_fd, gint64 max_age)
{
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return 0;
  }
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  guint removed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!g_str_has_prefix(e->d_name, ".tmp-"))
      continue;
    struct stat st;
    if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
      continue;
    pid_t pid = fsutil_tmp_pid(e->d_name);
    gboolean dead = pid > 0 && !fsutil_tmp_writer_alive(e->d_name);
    if ((dead || now - (gint64) st.st_mtime > max_age) && unlinkat(dir_fd, e->d_name, 0) == 0)
      removed++;
  }
  closedir(d);
  return removed;
}

guint
fsutil_sweep_tmp_tree(int dir_fd, gint64 max_age, guint max_depth)
{
  guint removed = fsutil_sweep_tmp(dir_fd, max_age);
  if (max_depth == 0)
    return removed;
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return removed;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return removed;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
      continue;
    int sub = openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
      continue;
    removed += fsutil_sweep_tmp_tree(sub, max_age, max_depth - 1);
    close(sub);
  }
  closedir(d);
  return removed;
}

static gboolean
fsutil_safe_byte(guchar c)
{
  return g_ascii_isalnum(c) || c == '.' || c == '_' || c == '+' || c == '@' || c == '=' ||
         c == '-';
}

char *
fsutil_sanitize_component(const char *in, gsize max_len)
{
  if (max_len < 2)
    max_len = 2;
  GString *out = g_string_sized_new(MIN(max_len, 64));
  const guchar *p = (const guchar *) (in != NULL ? in : "");
  while (*p != '\0' && out->len < max_len) {
    if (*p < 0x80) {
      g_string_append_c(out, fsutil_safe_byte(*p) ? (char) *p : '_');
      p++;
      continue;
    }
    /* One '_' per UTF-8 character (or per invalid byte). */
    gsize n = *p >= 0xf0 && *p < 0xf8 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;
    gsize k = 1;
    while (k < n && (p[k] & 0xc0) == 0x80)
      k++;
    g_string_append_c(out, '_');
    p += k;
  }
  if (out->len == 0)
    g_string_append_c(out, '_');
  if (out->str[0] == '.')
    out->str[0] = '_';
  /* "." and ".." cannot remain: a leading dot is gone. */
  return g_string_free(out, FALSE);
}
