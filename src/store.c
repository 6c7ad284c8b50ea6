/* store.c - the state directory: lock, dedup index, commit journal and quarantine.
 *
 * The journal is a small text file, rewritten by store_begin() and truncated to zero
 * by store_commit():
 *   tlsrpt-journal 1
 *   index <size>
 *   file <size> <path, g_strescape()d, always last on the line>
 *   end
 * A journal without its "end" line was torn while store_begin() wrote it, before any
 * sink wrote a byte: it is simply cleared. See docs/store.md. */
#include "store.h"
#include "fsutil.h"
#include "quarantine.h"
#include "keyset.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define STORE_KEY_LEN KEYSET_KEY_LEN
#define STORE_HEX_LINE (STORE_KEY_LEN * 2 + 1)
#define STORE_TMP_MAX_AGE 3600   /* a .tmp-* file of a live pid is kept this long */
#define STORE_SWEEP_DEPTH 8       /* <domain>/<YYYY>/<MM>/<DD> is 4 */
#define STORE_JOURNAL_MAGIC "tlsrpt-journal 1"

/* ---- the store ------------------------------------------------------------ */

typedef struct {
  char *path;               /* absolute */
  gint64 size;              /* size before the commit; 0 when it did not exist */
} StoreJournalFile;

struct Store {
  char *path;
  char *quarantine_dir;     /* NULL: STORE/quarantine */
  int dir_fd;
  int lock_fd;
  int index_fd;
  int journal_fd;
  gboolean locked;

  KeySet index;        /* keys read from .index */
  gint64 index_offset;      /* bytes of .index parsed into @index */

  KeySet added;        /* keys of the commit in flight */
  GArray *added_list;       /* guint8[16] in store_add() order */

  StoreSync *sync;          /* durability of the commit in flight */
  Quarantine *quarantine;
  gboolean begun;           /* a journal is written for the commit in flight */
  GThread *journal_sync;    /* fsyncing that journal while the sinks write */
  GError *journal_error;    /* its failure (sticky until the commit ends) */
  gint64 journal_index_size;
  GArray *journal_files;    /* StoreJournalFile */
};

static gboolean store_journal_gate(gpointer data, GError **error);

static void
store_journal_file_clear(gpointer p)
{
  StoreJournalFile *f = p;
  g_free(f->path);
}

static void
store_set_errno(GError **error, int errsv, const char *what, const char *path)
{
  g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "%s: %s: %s", what, path,
              g_strerror(errsv));
}

/* Move an fsutil (G_IO_ERROR) error into the store's domain. */
static void
store_propagate_io(GError **error, GError *src)
{
  g_set_error_literal(error, STORE_ERROR, STORE_ERROR_IO, src->message);
  g_error_free(src);
}

static char *
store_file_path(Store *store, const char *name)
{
  return g_build_filename(store->path, name, NULL);
}

static gboolean store_fsync(Store *store, int fd, const char *name, GError **error);
static gboolean store_fsync_path(int fd, const char *path, GError **error);

Store *
store_open(const char *dir, const char *quarantine_dir, GError **error)
{
  g_return_val_if_fail(dir != NULL, NULL);
  GError *local = NULL;
  if (!fsutil_mkdir_p(dir, &local)) {
    store_propagate_io(error, local);
    g_prefix_error(error, "store: ");
    return NULL;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    store_set_errno(error, errno, "store: open", dir);
    return NULL;
  }
  Store *store = g_new0(Store, 1);
  store->path = g_strdup(dir);
  store->quarantine_dir = g_strdup(quarantine_dir);
  store->dir_fd = fd;
  store->lock_fd = store->index_fd = store->journal_fd = -1;
  store->sync = store_sync_new(store->path, fd);
  store_sync_set_append_gate(store->sync, store_journal_gate, store);
  store->quarantine = quarantine_new(store->path, fd, quarantine_dir);
  store->added_list = g_array_new(FALSE, FALSE, STORE_KEY_LEN);
  store->journal_files = g_array_new(FALSE, TRUE, sizeof(StoreJournalFile));
  g_array_set_clear_func(store->journal_files, store_journal_file_clear);
  fsutil_sweep_tmp(fd, STORE_TMP_MAX_AGE);
  return store;
}

void
store_close(Store *store)
{
  if (store == NULL)
    return;
  if (store->locked)
    store_unlock(store);
  if (store->index_fd >= 0)
    close(store->index_fd);
  if (store->journal_fd >= 0)
    close(store->journal_fd);
  if (store->lock_fd >= 0)
    close(store->lock_fd);
  store_sync_free(store->sync);
  quarantine_free(store->quarantine);
  close(store->dir_fd);
  keyset_clear(&store->index);
  keyset_clear(&store->added);
  g_array_unref(store->added_list);
  g_array_unref(store->journal_files);
  g_free(store->path);
  g_free(store->quarantine_dir);
  g_free(store);
}

const char *
store_path(Store *store)
{
  return store->path;
}

int
store_dir_fd(Store *store)
{
  return store->dir_fd;
}

StoreSync *
store_durability(Store *store)
{
  return store->sync;
}

guint
store_index_size(Store *store)
{
  return (guint) keyset_size(&store->index);
}

guint64
store_commit_count(Store *store)
{
  return store_sync_commit_count(store->sync);
}

gsize
store_index_memory(Store *store)
{
  return keyset_memory(&store->index) + keyset_memory(&store->added) +
         store->added_list->len * STORE_KEY_LEN;
}

/* Open (creating) one of the store's own files, never through a symlink. *created is
 * set when this call made it. */
static int
store_open_file(Store *store, const char *name, int extra_flags, gboolean *created,
                GError **error)
{
  const int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC | extra_flags;
  int fd = openat(store->dir_fd, name, flags | O_CREAT | O_EXCL, 0640);
  if (fd >= 0) {
    *created = TRUE;
    return fd;
  }
  if (errno == EEXIST)
    fd = openat(store->dir_fd, name, flags);
  if (fd < 0) {
    int errsv = errno;
    g_autofree char *path = store_file_path(store, name);
    if (errsv == ELOOP)
      g_set_error(error, STORE_ERROR, STORE_ERROR_IO,
                  "open: %s: is a symbolic link, refusing to follow it", path);
    else
      store_set_errno(error, errsv, "open", path);
  }
  return fd;
}

static gboolean
store_pwrite_all(int fd, const char *data, gsize len, off_t off, const char *what,
                 GError **error)
{
  while (len > 0) {
    ssize_t n = pwrite(fd, data, len, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      store_set_errno(error, n < 0 ? errno : EIO, "write", what);
      return FALSE;
    }
    data += n;
    len -= (gsize) n;
    off += n;
  }
  return TRUE;
}

static gboolean
store_fsync(Store *store, int fd, const char *name, GError **error)
{
  g_autofree char *path = store_file_path(store, name);
  return store_fsync_path(fd, path, error);
}

static gboolean
store_fsync_path(int fd, const char *path, GError **error)
{
  GError *local = NULL;
  if (!fsutil_fsync_fd(fd, path, &local)) {
    store_propagate_io(error, local);
    return FALSE;
  }
  return TRUE;
}

static gboolean
store_truncate_fd(Store *store, int fd, const char *name, gint64 size, GError **error)
{
  while (ftruncate(fd, (off_t) size) != 0) {
    if (errno == EINTR)
      continue;
    g_autofree char *path = store_file_path(store, name);
    store_set_errno(error, errno, "truncate", path);
    return FALSE;
  }
  return TRUE;
}

static gpointer
store_journal_sync_main(gpointer data)
{
  Store *store = data;
  store_fsync(store, store->journal_fd, ".journal", &store->journal_error);
  return NULL;
}

/* The journal of the commit in flight is durable (its fsync, started by store_begin(),
 * is done): what it undoes may now be appended. */
static gboolean
store_journal_wait(Store *store, GError **error)
{
  if (store->journal_sync != NULL)
    g_thread_join(g_steal_pointer(&store->journal_sync));
  if (store->journal_error == NULL)
    return TRUE;
  if (error != NULL)
    g_propagate_error(error, g_error_copy(store->journal_error));
  return FALSE;
}

static gboolean
store_journal_gate(gpointer data, GError **error)
{
  return store_journal_wait(data, error);
}

static gboolean
store_clear_journal(Store *store, GError **error)
{
  return store_truncate_fd(store, store->journal_fd, ".journal", 0, error) &&
         store_fsync(store, store->journal_fd, ".journal", error);
}

/* Truncate one append-only file back to @size (never grow it), and fsync it. */
static gboolean
store_truncate_path(const char *path, gint64 size, GError **error)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return TRUE;
    store_set_errno(error, errno, "open", path);
    return FALSE;
  }
  gboolean ok = TRUE;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    store_set_errno(error, errno, "stat", path);
    ok = FALSE;
  } else if (S_ISREG(st.st_mode) && (gint64) st.st_size > size) {
    while (ftruncate(fd, (off_t) size) != 0) {
      if (errno == EINTR)
        continue;
      store_set_errno(error, errno, "truncate", path);
      ok = FALSE;
      break;
    }
    if (ok) {
      GError *local = NULL;
      if (!fsutil_fsync_fd(fd, path, &local)) {
        store_propagate_io(error, local);
        ok = FALSE;
      }
    }
  }
  close(fd);
  return ok;
}

/* Put every file of the journal back to its recorded size, then clear the journal.
 * Every file is tried even when one fails (a reader should see the rows of a failed
 * commit go at once); the journal is cleared only when all of them are back durably,
 * else the next store_lock() tries again. */
static gboolean
store_undo(Store *store, gint64 index_size, GArray *files, GError **error)
{
  gboolean ok = TRUE;
  GError *local = NULL;
  struct stat st;
  if (fstat(store->index_fd, &st) != 0) {
    g_autofree char *path = store_file_path(store, ".index");
    store_set_errno(&local, errno, "stat", path);
    ok = FALSE;
  } else if ((gint64) st.st_size > index_size &&
             !(store_truncate_fd(store, store->index_fd, ".index", index_size, &local) &&
               store_fsync(store, store->index_fd, ".index", &local))) {
    ok = FALSE;
  }
  for (guint i = 0; i < files->len; i++) {
    const StoreJournalFile *f = &g_array_index(files, StoreJournalFile, i);
    if (!store_truncate_path(f->path, f->size, ok ? &local : NULL))
      ok = FALSE;
  }
  if (!ok) {
    g_propagate_error(error, local);
    return FALSE;
  }
  return store_clear_journal(store, error);
}

/* Parse a journal. FALSE when it is not complete (no "end" line): torn while written,
 * before any sink wrote. Malformed lines are skipped. */
static gboolean
store_journal_parse(const char *text, gint64 *index_size, GArray *files)
{
  gboolean complete = FALSE, magic = FALSE;
  *index_size = -1;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  guint n = g_strv_length(lines);
  /* The last element follows the last "\n": a partial line, never used. */
  for (guint i = 0; i + 1 < n; i++) {
    const char *l = lines[i];
    char *end = NULL;
    if (i == 0) {
      magic = strcmp(l, STORE_JOURNAL_MAGIC) == 0;
      if (!magic)
        return FALSE;
    } else if (strcmp(l, "end") == 0) {
      complete = TRUE;
      break;
    } else if (g_str_has_prefix(l, "index ")) {
      gint64 v = g_ascii_strtoll(l + 6, &end, 10);
      if (end != l + 6 && *end == '\0' && v >= 0)
        *index_size = v;
    } else if (g_str_has_prefix(l, "file ")) {
      gint64 v = g_ascii_strtoll(l + 5, &end, 10);
      if (end == l + 5 || *end != ' ' || v < 0 || end[1] == '\0')
        continue;
      StoreJournalFile f = { g_strcompress(end + 1), v };
      g_array_append_val(files, f);
    }
  }
  return magic && complete && *index_size >= 0;
}

guint
store_sweep_tmp(Store *store)
{
  return fsutil_sweep_tmp_tree(store->dir_fd, STORE_TMP_MAX_AGE, STORE_SWEEP_DEPTH) +
         quarantine_sweep(store->quarantine);
}

/* A non-empty journal: a commit died midway. Undo it. */
static gboolean
store_recover(Store *store, GError **error)
{
  struct stat st;
  if (fstat(store->journal_fd, &st) != 0) {
    g_autofree char *path = store_file_path(store, ".journal");
    store_set_errno(error, errno, "stat", path);
    return FALSE;
  }
  if (st.st_size == 0)
    return TRUE;
  if (st.st_size > 16 * 1024 * 1024) {
    g_autofree char *path = store_file_path(store, ".journal");
    g_set_error(error, STORE_ERROR, STORE_ERROR_CORRUPT,
                "%s: implausibly large journal (%" G_GINT64_FORMAT " bytes; a commit's "
                "journal is a few KB): the store cannot undo that commit by itself. "
                "Fix: look at the file, then move it aside (mv %s %s.damaged) and run "
                "again; the reports of that one commit may then appear twice in the "
                "CSV or JSON Lines files",
                path, (gint64) st.st_size, path, path);
    return FALSE;
  }
  g_autofree char *text = g_malloc((gsize) st.st_size + 1);
  gsize got = 0;
  while (got < (gsize) st.st_size) {
    ssize_t n = pread(store->journal_fd, text + got, (gsize) st.st_size - got, (off_t) got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_autofree char *path = store_file_path(store, ".journal");
      store_set_errno(error, errno, "read", path);
      return FALSE;
    }
    if (n == 0)
      break;
    got += (gsize) n;
  }
  text[got] = '\0';             /* after a NUL byte (a torn block) nothing is parsed */

  g_autoptr(GArray) files = g_array_new(FALSE, TRUE, sizeof(StoreJournalFile));
  g_array_set_clear_func(files, store_journal_file_clear);
  gint64 index_size = -1;
  /* The commit died: its writer's temporary files are left wherever it was writing (the
   * journal does not say where), so the whole store and the quarantine are swept. The
   * store lock is held, so no writer of this store is running; other processes' live
   * temporary files (a shared quarantine) are kept by the pid in their names. */
  store_sweep_tmp(store);
  if (!store_journal_parse(text, &index_size, files))
    return store_clear_journal(store, error);
  if (!store_undo(store, index_size, files, error)) {
    g_prefix_error(error, "recovering an interrupted commit: ");
    return FALSE;
  }
  return TRUE;
}

/* Read the index lines appended since the last refresh. */
static gboolean
store_refresh(Store *store, GError **error)
{
  struct stat st;
  if (fstat(store->index_fd, &st) != 0) {
    g_autofree char *path = store_file_path(store, ".index");
    store_set_errno(error, errno, "stat", path);
    return FALSE;
  }
  if ((gint64) st.st_size < store->index_offset) {
    /* Shrunk under us (replaced or recovered): read it again from the start. */
    keyset_clear(&store->index);
    store->index_offset = 0;
  }
  char buf[64 * 1024];
  gsize have = 0;               /* bytes of a line carried over in buf */
  gint64 off = store->index_offset;
  for (;;) {
    ssize_t n = pread(store->index_fd, buf + have, sizeof buf - have, (off_t) (off + have));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_autofree char *path = store_file_path(store, ".index");
      store_set_errno(error, errno, "read", path);
      return FALSE;
    }
    if (n == 0)
      break;
    gsize len = have + (gsize) n;
    gsize start = 0;
    for (;;) {
      const char *nl = memchr(buf + start, '\n', len - start);
      if (nl == NULL)
        break;
      gsize line_len = (gsize) (nl - (buf + start));
      guint8 key[STORE_KEY_LEN];
      if (keyset_key_from_hex(buf + start, line_len, key))
        keyset_add(&store->index, key, 0);
      start += line_len + 1;
    }
    off += (gint64) start;
    have = len - start;
    if (have == sizeof buf) {
      /* A line longer than the buffer: malformed; skip up to its end. */
      off += (gint64) have;
      have = 0;
      char c;
      ssize_t r;
      while ((r = pread(store->index_fd, &c, 1, (off_t) off)) == 1 && c != '\n')
        off++;
      if (r == 1)
        off++;
      continue;
    }
    memmove(buf, buf + start, have);
  }
  /* A partial last line (no "\n") is left for later: off stops before it. */
  store->index_offset = off;
  return TRUE;
}

gboolean
store_lock(Store *store, double timeout, GError **error)
{
  g_return_val_if_fail(!store->locked, FALSE);
  gboolean created = FALSE, any_created = FALSE;
  if (store->lock_fd < 0) {
    store->lock_fd = store_open_file(store, ".lock", 0, &created, error);
    if (store->lock_fd < 0)
      return FALSE;
    any_created |= created;
  }

  gint64 deadline = g_get_monotonic_time() + (gint64) (MAX(timeout, 0.0) * G_USEC_PER_SEC);
  gulong wait_us = 10000;
  for (;;) {
    if (flock(store->lock_fd, LOCK_EX | LOCK_NB) == 0)
      break;
    int errsv = errno;
    if (errsv == EINTR)
      continue;
    if (errsv != EWOULDBLOCK) {
      g_autofree char *path = store_file_path(store, ".lock");
      store_set_errno(error, errsv, "flock", path);
      return FALSE;
    }
    gint64 now = g_get_monotonic_time();
    if (now >= deadline) {
      g_set_error(error, STORE_ERROR, STORE_ERROR_LOCK,
                  "store is locked by another process (waited %g s)", MAX(timeout, 0.0));
      return FALSE;
    }
    g_usleep(MIN((gint64) wait_us, deadline - now));
    wait_us = MIN(wait_us + 10000, 50000ul);
  }
  store->locked = TRUE;

  if (store->index_fd < 0) {
    store->index_fd = store_open_file(store, ".index", O_APPEND, &created, error);
    if (store->index_fd < 0)
      goto fail;
    any_created |= created;
  }
  if (store->journal_fd < 0) {
    store->journal_fd = store_open_file(store, ".journal", 0, &created, error);
    if (store->journal_fd < 0)
      goto fail;
    any_created |= created;
  }
  if (any_created && !store_fsync(store, store->dir_fd, ".", error))
    goto fail;
  if (!store_recover(store, error) || !store_refresh(store, error))
    goto fail;
  return TRUE;

fail:
  store_unlock(store);
  return FALSE;
}

static void
store_forget_commit(Store *store)
{
  store_sync_reset(store->sync);
  keyset_clear(&store->added);
  g_array_set_size(store->added_list, 0);
  g_array_set_size(store->journal_files, 0);
  store_journal_wait(store, NULL);
  g_clear_error(&store->journal_error);
  store->begun = FALSE;
}

void
store_unlock(Store *store)
{
  if (!store->locked)
    return;
  if (store->begun || store->added_list->len > 0)
    store_rollback(store);
  flock(store->lock_fd, LOCK_UN);
  store->locked = FALSE;
}

gboolean
store_contains(Store *store, const guint8 key[16])
{
  return keyset_contains(&store->index, key) || keyset_contains(&store->added, key);
}

void
store_add(Store *store, const guint8 key[16])
{
  g_return_if_fail(store->locked);
  if (store_contains(store, key))
    return;
  keyset_add(&store->added, key, 0);
  g_array_append_vals(store->added_list, key, 1);
}

gboolean
store_begin(Store *store, GPtrArray *append_paths, GError **error)
{
  g_return_val_if_fail(store->locked, FALSE);
  g_array_set_size(store->journal_files, 0);
  store->begun = FALSE;
  store_sync_reset(store->sync);

  struct stat st;
  if (fstat(store->index_fd, &st) != 0) {
    g_autofree char *path = store_file_path(store, ".index");
    store_set_errno(error, errno, "stat", path);
    return FALSE;
  }
  store->journal_index_size = (gint64) st.st_size;

  g_autoptr(GString) text = g_string_new(STORE_JOURNAL_MAGIC "\n");
  g_string_append_printf(text, "index %" G_GINT64_FORMAT "\n", store->journal_index_size);
  for (guint i = 0; append_paths != NULL && i < append_paths->len; i++) {
    const char *p = append_paths->pdata[i];
    StoreJournalFile f = { g_canonicalize_filename(p, NULL), 0 };
    if (stat(f.path, &st) == 0) {
      f.size = (gint64) st.st_size;
    } else if (errno != ENOENT) {
      store_set_errno(error, errno, "stat", f.path);
      g_free(f.path);
      return FALSE;
    }
    g_autofree char *escaped = g_strescape(f.path, NULL);
    g_string_append_printf(text, "file %" G_GINT64_FORMAT " %s\n", f.size, escaped);
    g_array_append_val(store->journal_files, f);
  }
  g_string_append(text, "end\n");

  g_autofree char *jpath = store_file_path(store, ".journal");
  if (!store_truncate_fd(store, store->journal_fd, ".journal", 0, error) ||
      !store_pwrite_all(store->journal_fd, text->str, text->len, 0, jpath, error)) {
    /* Nothing was written by a sink yet: an unusable journal is just cleared. */
    (void) ftruncate(store->journal_fd, 0);
    g_array_set_size(store->journal_files, 0);
    return FALSE;
  }
  /* Its fsync runs while the sinks write: only the appends it undoes must wait for it
   * (the CSV and JSON Lines sinks through store_sync_before_append(), the index lines
   * in store_commit()); new tree files and the SQL index's rows need no journal. One
   * `mda` message waits for the disk once less. */
  g_clear_error(&store->journal_error);
  store->journal_sync =
      g_thread_try_new("tlsrpt-journal", store_journal_sync_main, store, NULL);
  if (store->journal_sync == NULL &&
      !store_fsync(store, store->journal_fd, ".journal", error)) {
    (void) ftruncate(store->journal_fd, 0);
    g_array_set_size(store->journal_files, 0);
    return FALSE;
  }
  store->begun = TRUE;
  return TRUE;
}

gboolean
store_commit(Store *store, GError **error)
{
  g_return_val_if_fail(store->locked, FALSE);
  if (!store_journal_wait(store, error))
    return FALSE;
  guint n = store->added_list->len;
  if (n > 0) {
    struct stat st;
    if (fstat(store->index_fd, &st) != 0) {
      g_autofree char *path = store_file_path(store, ".index");
      store_set_errno(error, errno, "stat", path);
      return FALSE;
    }
    g_autoptr(GString) lines = g_string_sized_new(n * STORE_HEX_LINE + 1);
    /* A partial line left at the end (never written by this code) is ended first, so
     * the first new key does not merge with it. */
    if ((gint64) st.st_size > store->index_offset)
      g_string_append_c(lines, '\n');
    for (guint i = 0; i < n; i++) {
      const guint8 *key = &g_array_index(store->added_list, guint8, i * STORE_KEY_LEN);
      char hex[2 * STORE_KEY_LEN + 1];
      keyset_key_hex(key, hex);
      g_string_append_len(lines, hex, 2 * STORE_KEY_LEN);
      g_string_append_c(lines, '\n');
    }
    g_autofree char *ipath = store_file_path(store, ".index");
    if (!store_pwrite_all(store->index_fd, lines->str, lines->len, (off_t) st.st_size, ipath,
                          error))
      return FALSE;
  }
  /* One sync for the whole batch: the sinks' files, the quarantine copies, the
   * directories made for them and the index lines. Until the journal is cleared, a crash
   * undoes the index lines (and the rows), so the order of the writes within this sync
   * does not matter. A failed sync fails the commit: the caller rolls it back. */
  g_autofree char *index_path = store_file_path(store, ".index");
  if (n > 0)
    store_sync_borrowed(store->sync, store->index_fd, index_path);
  if (!store_sync_run(store->sync, error))
    return FALSE;
  if (store->begun && !store_clear_journal(store, error))
    return FALSE;

  /* Committed: the keys join the index set. */
  for (guint i = 0; i < n; i++)
    keyset_add(&store->index,
                     &g_array_index(store->added_list, guint8, i * STORE_KEY_LEN), 0);
  store_forget_commit(store);
  store_sync_committed(store->sync);
  GError *local = NULL;
  if (!store_refresh(store, &local))
    g_error_free(local);         /* the next store_lock() reads it again */
  return TRUE;
}

void
store_rollback(Store *store)
{
  store_journal_wait(store, NULL);
  if (store->begun) {
    GError *local = NULL;
    /* On failure the journal stays: the next store_lock() undoes the commit. */
    if (!store_undo(store, store->journal_index_size, store->journal_files, &local))
      g_error_free(local);
  }
  store_forget_commit(store);
}

/* ---- the sources' state files ---------------------------------------------- */

char *
store_state_path(const char *store_dir, const char *source, const char *key,
                 const char *kind, char **name)
{
  g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, key, -1);
  sha[16] = '\0';
  g_autofree char *base = g_strdup_printf(".%s-%s.%s", source, sha, kind);
  char *path = g_build_filename(store_dir, base, NULL);
  if (name != NULL)
    *name = g_steal_pointer(&base);
  return path;
}

/* ---- quarantine ----------------------------------------------------------- */

char *
store_quarantine_path(const char *dir, const char *quarantine_dir)
{
  return quarantine_path(dir, quarantine_dir);
}

char *
store_quarantine(Store *store, GBytes *message, const char *origin, const char *reason,
                 GError **error)
{
  return quarantine_put(store->quarantine, store->begun ? store->sync : NULL, message,
                        origin, reason, error);
}
