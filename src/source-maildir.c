/* source-maildir.c - messages in new/ and cur/ of one or more Maildirs.
 *
 * next() reads each Maildir's new/, then its cur/, in chunks of up to
 * SOURCE_MAILDIR_CHUNK names (each chunk sorted), so memory does not grow with the
 * size of the Maildir; each file is read with plain POSIX calls. tmp/ is never read:
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
 * replaces an existing file (a taken name gets ".N" added to its unique part). The
 * directories a batch renamed in are fsync'ed once, before the next message is read
 * (and at close): the report was durable before the rename, so a rename lost in a
 * crash only means the message is read again, found a duplicate and renamed again.
 * A message that vanished in the meantime (a mail reader moved it) counts as
 * acknowledged. The folder name must be a plain Maildir++ name (no '/', no leading
 * '.', no ".."): anything else is refused at open() rather than rewritten into a
 * surprising place.
 *
 * Messages already ingested are not read again. Each message is known by a key: 16
 * bytes of SHA-256 over its device, inode, size, modification time (ns) and the unique
 * part of its name (before ':'), all of which a --mark-seen rename keeps. The keys of
 * committed messages (stored, duplicate, quarantined, not a report) are appended, after
 * their commit, to STORE/.maildir-H.seen (H: 16 hex of the SHA-256 of the Maildir's
 * real path), and loaded by the next run; a message whose file is the same skips the
 * MIME, JSON and store work (a message skipped unread, or whose batch failed, is read
 * again; the quarantine is re-examined with `tlsrpt-ingest file STORE/quarantine`). A
 * known message that was acknowledged is renamed as this run's --mark-seen/--move-to
 * ask (an earlier run may have had neither); one that was not a report stays. The
 * same keys stop a message renamed into cur/ by this run from being read twice. The
 * file is only a cache: losing it costs one re-read of the Maildir (every report then
 * is a duplicate), so it is written without fsync; a run that read a whole Maildir
 * rewrites it without the keys of messages that are gone. */
#include "source.h"
#include "store.h"
#include "keyset.h"
#include "fsutil.h"


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOURCE_MAILDIR_CHUNK 4096 /* names listed and sorted at a time */
#define SOURCE_MAILDIR_KEY 16       /* bytes of a record: 15 of hash, then the kind */
#define SOURCE_MAILDIR_HASH 15
#define SOURCE_MAILDIR_KIND_ACKED 1 /* stored, duplicate or quarantined: acknowledged */
#define SOURCE_MAILDIR_KIND_LEFT 2  /* not a report: left where it was */

/* The records in memory: a KeySet (keyset.h) keyed by the hash bytes (and a zero
 * byte), whose value holds the kind (low bits) and what this run did with it. */
enum {
  SOURCE_MAILDIR_KIND = 0x0f,          /* the record's kind; larger ones read as 0x0f */
  SOURCE_MAILDIR_LOADED = 1 << 4,      /* loaded from the file, not met yet */
  SOURCE_MAILDIR_MET = 2 << 4,         /* loaded and met again */
  SOURCE_MAILDIR_ADDED = 3 << 4,       /* added by this run */
  SOURCE_MAILDIR_STATE = 3 << 4,
};

static gboolean
source_maildir_hash_empty(const guint8 *k)
{
  for (guint i = 0; i < SOURCE_MAILDIR_HASH; i++)
    if (k[i] != 0)
      return FALSE;
  return TRUE;
}

/* The set's key of a record (or of an entry's key). */
static void
source_maildir_set_key(const guint8 *record, guint8 key[KEYSET_KEY_LEN])
{
  memcpy(key, record, SOURCE_MAILDIR_HASH);
  key[SOURCE_MAILDIR_HASH] = 0;
}

/* The value of the record with the hash bytes of @record, or NULL. */
static guint8 *
source_maildir_set_find(KeySet *set, const guint8 *record)
{
  guint8 key[KEYSET_KEY_LEN];
  source_maildir_set_key(record, key);
  return keyset_value(set, key);
}

/* Add @record (or update its kind), in @state (LOADED or ADDED; a record added by
 * this run stays ADDED). */
static void
source_maildir_set_add(KeySet *set, const guint8 *record, guint8 state)
{
  guint8 kind = record[SOURCE_MAILDIR_HASH];
  if (kind == 0)
    return;
  kind = MIN(kind, (guint8) SOURCE_MAILDIR_KIND);
  guint8 *v = source_maildir_set_find(set, record);
  if (v == NULL) {
    guint8 key[KEYSET_KEY_LEN];
    source_maildir_set_key(record, key);
    keyset_add(set, key, kind | state);
  } else {
    *v = kind | (state == SOURCE_MAILDIR_ADDED ? state : (*v & SOURCE_MAILDIR_STATE));
  }
}

/* The kind recorded for the hash of @key, 0 when unknown; a loaded record is marked as
 * met again (*earlier: met for the first time). */
static guint8
source_maildir_set_check(KeySet *set, const guint8 *key, gboolean *earlier)
{
  guint8 *v = source_maildir_set_find(set, key);
  *earlier = v != NULL && (*v & SOURCE_MAILDIR_STATE) == SOURCE_MAILDIR_LOADED;
  if (v == NULL)
    return 0;
  if (*earlier)
    *v = (guint8) ((*v & SOURCE_MAILDIR_KIND) | SOURCE_MAILDIR_MET);
  return *v & SOURCE_MAILDIR_KIND;
}

/* One Maildir given on the command line; shared by the handles of its messages. */
typedef struct {
  char *path;
  int fd;
  int new_fd;
  int cur_fd;
  int move_fd;            /* DIR/.FOLDER/cur, -1 until the first move */
  gboolean sync_new, sync_cur, sync_move;  /* renamed in since the last fsync */
  /* the cache of ingested messages */
  char *seen_name;        /* ".maildir-H.seen", NULL when the real path is unknown */
  KeySet seen;             /* records, see source_maildir_set_add() */
  guint loaded;           /* keys loaded from the file */
  GString *seen_out;      /* keys to append */
  gboolean seen_broken;   /* the file could not be written: stop trying */
  gboolean listed_all;    /* new/ and cur/ read to the end */
  guint known;            /* messages not read again */
  SourceEvents events;    /* the source's, for what is said about this box */
} SourceMaildirBox;

typedef struct {
  SourceMaildirBox *box;  /* a reference */
  gboolean in_cur;
  char *name;
  guint8 key[SOURCE_MAILDIR_KEY];
  gboolean done;
} SourceMaildirEntry;

typedef struct {
  gsize max_size;
  gboolean mark_seen;
  char *move_to;          /* validated folder name, or NULL */
  char *store_dir;        /* where the .maildir-H.seen files are, or NULL */
  GPtrArray *boxes;       /* SourceMaildirBox* (references) */
  guint box_pos;          /* the box being read */
  gboolean in_cur;        /* reading its cur/ (else new/) */
  DIR *dir;               /* the directory being listed, NULL before/after */
  GPtrArray *chunk;       /* names (char*) of the current chunk, sorted */
  guint chunk_pos;
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
  g_free(box->seen_name);
  keyset_clear(&box->seen);
  if (box->seen_out != NULL)
    g_string_free(box->seen_out, TRUE);
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

/* The key of a message file (see the top of the file). */
static void
source_maildir_key(const char *name, const struct stat *st, guint8 key[SOURCE_MAILDIR_KEY])
{
  const char *colon = strchr(name, ':');
  gsize ulen = colon != NULL ? (gsize) (colon - name) : strlen(name);
  guint64 fields[5] = { (guint64) st->st_dev, (guint64) st->st_ino, (guint64) st->st_size,
                        (guint64) st->st_mtim.tv_sec, (guint64) st->st_mtim.tv_nsec };
  GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
  g_checksum_update(sum, (const guchar *) fields, sizeof fields);
  g_checksum_update(sum, (const guchar *) name, (gssize) ulen);
  guint8 digest[32];
  gsize dlen = sizeof digest;
  g_checksum_get_digest(sum, digest, &dlen);
  g_checksum_free(sum);
  memcpy(key, digest, SOURCE_MAILDIR_HASH);
  key[SOURCE_MAILDIR_HASH] = 0; /* the kind, set when the message is committed */
}

/* Load STORE/.maildir-H.seen of @box, if there is one. A missing or unreadable file
 * only means nothing is known yet. */
static void
source_maildir_seen_load(SourceMaildirBox *box, const char *store_dir)
{
  char *real = realpath(box->path, NULL);
  if (real == NULL || store_dir == NULL) {
    free(real);
    return;
  }
  g_autofree char *path = store_state_path(store_dir, "maildir", real, "seen", &box->seen_name);
  free(real);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return;
  guint8 buf[SOURCE_MAILDIR_KEY * 4096];
  gsize have = 0;
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof buf - have);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    have += (gsize) n;
    gsize whole = have - have % SOURCE_MAILDIR_KEY;
    for (gsize off = 0; off < whole; off += SOURCE_MAILDIR_KEY)
      source_maildir_set_add(&box->seen, buf + off, SOURCE_MAILDIR_LOADED);
    memmove(buf, buf + whole, have - whole);
    have -= whole;
  }
  close(fd);
  box->loaded = (guint) keyset_size(&box->seen);
}

/* Append the keys gathered since the last call (best effort: a cache). */
static void
source_maildir_seen_flush(SourceMaildirBox *box, const char *store_dir)
{
  if (box->seen_out == NULL || box->seen_out->len == 0 || box->seen_name == NULL ||
      box->seen_broken)
    return;
  g_autofree char *path = g_build_filename(store_dir, box->seen_name, NULL);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  struct stat before;
  g_autoptr(GError) local = NULL;
  if (fd >= 0 && fstat(fd, &before) != 0)
    fsutil_set_error_errno(&local, errno, "stat", path);
  else if (fd < 0)
    fsutil_set_error_errno(&local, errno, "open", path);
  if (local == NULL)
    fsutil_write_all(fd, box->seen_out->str, box->seen_out->len, path, &local);
  if (local != NULL) {
    source_event(&box->events, SOURCE_EVENT_VERBOSE, box->path,
                 "cannot write %s (%s): its messages will be read again next time", path,
                 local->message);
    box->seen_broken = TRUE;
    /* A partial record would shift every later key: cut the file back. */
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > before.st_size &&
        (st.st_size - before.st_size) % SOURCE_MAILDIR_KEY != 0 &&
        ftruncate(fd, st.st_size - (st.st_size - before.st_size) % SOURCE_MAILDIR_KEY) != 0)
      source_event(&box->events, SOURCE_EVENT_VERBOSE, box->path, "truncate %s: %s", path,
                   g_strerror(errno));
  }
  if (fd >= 0)
    close(fd);
  g_string_truncate(box->seen_out, 0);
}

/* After a whole Maildir was read: when most loaded records belong to messages that are
 * gone (not met in this run), rewrite the file without them. Records that are not in
 * the set were appended by this run (or a concurrent one): they are kept. */
static void
source_maildir_seen_compact(SourceMaildirBox *box, const char *store_dir)
{
  if (!box->listed_all || box->seen_name == NULL || box->seen_broken || box->loaded < 1024)
    return;
  gsize gone = 0;
  const guint8 *key;
  guint8 *value;
  for (gsize it = 0; keyset_next(&box->seen, &it, &key, &value);)
    if ((*value & SOURCE_MAILDIR_STATE) == SOURCE_MAILDIR_LOADED)
      gone++;
  if (gone * 2 < box->loaded)
    return;
  g_autofree char *path = g_build_filename(store_dir, box->seen_name, NULL);
  int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  int dir = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_autoptr(GError) local = NULL;
  if (in < 0 || dir < 0)
    fsutil_set_error_errno(&local, errno, "open", in < 0 ? path : store_dir);
  g_autoptr(GByteArray) kept = g_byte_array_new();
  guint8 buf[SOURCE_MAILDIR_KEY * 1024];
  gsize have = 0;
  while (local == NULL) {
    ssize_t n = read(in, buf + have, sizeof buf - have);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      fsutil_set_error_errno(&local, errno, "read", path);
    if (n <= 0)
      break;
    have += (gsize) n;
    gsize whole = have - have % SOURCE_MAILDIR_KEY;
    for (gsize off = 0; off < whole; off += SOURCE_MAILDIR_KEY) {
      const guint8 *v = source_maildir_set_find(&box->seen, buf + off);
      if (v == NULL || (*v & SOURCE_MAILDIR_STATE) != SOURCE_MAILDIR_LOADED)
        g_byte_array_append(kept, buf + off, SOURCE_MAILDIR_KEY);
    }
    memmove(buf, buf + whole, have - whole);
    have -= whole;
  }
  if (in >= 0)
    close(in);
  /* Replaced by fsutil (temp file, rename), not synced: a cache. */
  if (local == NULL)
    fsutil_write_replace(dir, box->seen_name, kept->data, kept->len, NULL, &local);
  if (dir >= 0)
    close(dir);
  if (local != NULL)
    source_event(&box->events, SOURCE_EVENT_VERBOSE, box->path, "could not rewrite %s: %s",
                 path, local->message);
}

/* @path itself cannot be opened as a directory. */
static void
source_maildir_not_a_maildir(GError **error, int errsv, const char *path)
{
  if (errsv == ENOENT)
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "not a Maildir: %s: does not exist", path);
  else if (errsv == ENOTDIR)
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "not a Maildir: %s: not a directory", path);
  else
    source_maildir_set_errno(error, errsv, "open Maildir", path);
}

/* The Maildir @path has no usable @sub ("cur" or "new") directory. A path that is
 * itself the new/, cur/ or tmp/ of a Maildir was most likely meant as that Maildir. */
static void
source_maildir_sub_error(GError **error, int errsv, const char *path, const char *sub)
{
  g_autofree char *sub_path = g_build_filename(path, sub, NULL);
  if (errsv != ENOENT && errsv != ENOTDIR) {
    source_maildir_set_errno(error, errsv, "open Maildir", sub_path);
    return;
  }
  g_autofree char *trimmed = g_strdup(path);
  for (gsize n = strlen(trimmed); n > 1 && trimmed[n - 1] == '/'; n--)
    trimmed[n - 1] = '\0';
  g_autofree char *base = g_path_get_basename(trimmed);
  g_autofree char *parent = g_path_get_dirname(trimmed);
  if (strcmp(base, "new") == 0 || strcmp(base, "cur") == 0 || strcmp(base, "tmp") == 0) {
    g_autofree char *pcur = g_build_filename(parent, "cur", NULL);
    g_autofree char *pnew = g_build_filename(parent, "new", NULL);
    if (g_file_test(pcur, G_FILE_TEST_IS_DIR) && g_file_test(pnew, G_FILE_TEST_IS_DIR)) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                  "not a Maildir: %s: did you mean %s?", path, parent);
      return;
    }
  }
  g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
              "not a Maildir: %s: it has no %s/ directory", path, sub);
}

static SourceMaildirBox *
source_maildir_box_open(const char *path, const char *store_dir, GError **error)
{
  g_autoptr(SourceMaildirBox) box = g_rc_box_new0(SourceMaildirBox);
  box->path = g_strdup(path);
  /* "md/" and "md" give the same origins. */
  for (gsize n = strlen(box->path); n > 1 && box->path[n - 1] == '/'; n--)
    box->path[n - 1] = '\0';
  box->fd = box->new_fd = box->cur_fd = box->move_fd = -1;
  keyset_init(&box->seen, TRUE);

  box->fd = source_maildir_open_dir(AT_FDCWD, path);
  if (box->fd < 0) {
    source_maildir_not_a_maildir(error, errno, path);
    return NULL;
  }
  box->cur_fd = source_maildir_open_dir(box->fd, "cur");
  if (box->cur_fd < 0) {
    source_maildir_sub_error(error, errno, path, "cur");
    return NULL;
  }
  box->new_fd = source_maildir_open_dir(box->fd, "new");
  if (box->new_fd < 0) {
    source_maildir_sub_error(error, errno, path, "new");
    return NULL;
  }
  source_maildir_seen_load(box, store_dir);
  box->seen_out = g_string_new(NULL);
  return g_steal_pointer(&box);
}

static gint
source_maildir_name_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Refill self->chunk with the next names of the directory being listed (opening it
 * first when needed). FALSE + error on a listing failure; an empty chunk at its end. */
static gboolean
source_maildir_fill(SourceMaildir *self, GError **error)
{
  SourceMaildirBox *box = self->boxes->pdata[self->box_pos];
  g_ptr_array_set_size(self->chunk, 0);
  self->chunk_pos = 0;
  g_autofree char *where = g_build_filename(box->path, self->in_cur ? "cur" : "new", NULL);
  if (self->dir == NULL) {
    int fd = dup(self->in_cur ? box->cur_fd : box->new_fd);
    self->dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (self->dir == NULL) {
      int errsv = errno;
      if (fd >= 0)
        close(fd);
      source_maildir_set_errno(error, errsv, "list", where);
      return FALSE;
    }
    rewinddir(self->dir);
  }
  while (self->chunk->len < SOURCE_MAILDIR_CHUNK) {
    errno = 0;
    struct dirent *de = readdir(self->dir);
    if (de == NULL) {
      if (errno != 0) {
        source_maildir_set_errno(error, errno, "list", where);
        return FALSE;
      }
      break;
    }
    if (de->d_name[0] == '.' || de->d_type == DT_DIR)
      continue;
    g_ptr_array_add(self->chunk, g_strdup(de->d_name));
  }
  if (self->chunk->len > 1)
    qsort(self->chunk->pdata, self->chunk->len, sizeof(gpointer), source_maildir_name_cmp);
  return TRUE;
}

/* fsync the directories renamed in since the last call. A failure is only logged: the
 * renamed messages were stored durably before, so at worst they come back. */
static void
source_maildir_sync_box(SourceMaildirBox *box)
{
  struct { gboolean *flag; int fd; const char *what; } dirs[] = {
    { &box->sync_move, box->move_fd, "folder" },
    { &box->sync_cur, box->cur_fd, "cur" },
    { &box->sync_new, box->new_fd, "new" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
    if (!*dirs[i].flag)
      continue;
    *dirs[i].flag = FALSE;
    if (dirs[i].fd >= 0 && fsync(dirs[i].fd) != 0 && errno != EINVAL && errno != EROFS)
      source_event(&box->events, SOURCE_EVENT_WARNING, box->path, "fsync %s: %s",
                   dirs[i].what, g_strerror(errno));
  }
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

gboolean
source_maildir_check(const SourceConfig *opts, GError **error)
{
  if (opts->move_to != NULL && !source_maildir_folder_ok(opts->move_to)) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--move-to %s: not a usable folder name (no '/', no leading '.', no '..')",
                opts->move_to);
    return FALSE;
  }
  return TRUE;
}

static void source_maildir_close(gpointer self_);
static gboolean source_maildir_ack(SourceMaildir *self, SourceMaildirBox *box,
                                   gboolean in_cur, const char *name, const char *origin,
                                   GError **error);

static gpointer
source_maildir_open(const SourceConfig *opts, char **args, GError **error)
{
  g_assert(args != NULL);
  if (opts->move_to != NULL && !source_maildir_folder_ok(opts->move_to)) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "--move-to %s: not a usable folder name (no '/', no leading '.', no '..')",
                opts->move_to);
    return NULL;
  }
  SourceMaildir *self = g_new0(SourceMaildir, 1);
  self->max_size = opts->max_message_size;
  self->mark_seen = opts->mark_seen;
  self->move_to = g_strdup(opts->move_to);
  self->store_dir = g_strdup(opts->store_dir);
  self->boxes = g_ptr_array_new_with_free_func((GDestroyNotify) source_maildir_box_unref);
  self->chunk = g_ptr_array_new_with_free_func(g_free);

  for (guint i = 0; args[i] != NULL; i++) {
    SourceMaildirBox *box = source_maildir_box_open(args[i], self->store_dir, error);
    if (box != NULL)
      box->events = opts->events;
    if (box == NULL) {
      source_maildir_close(self);
      return NULL;
    }
    g_ptr_array_add(self->boxes, box);
  }
  return self;
}

static void
source_maildir_handle_free(gpointer data)
{
  source_maildir_entry_free(data);
}

/* "DIR/new/NAME" or "DIR/cur/NAME", for the log. (transfer full) */
static char *
source_maildir_origin(const SourceMaildirBox *box, gboolean in_cur, const char *name)
{
  return g_strconcat(box->path, strcmp(box->path, "/") == 0 ? "" : "/",
                     in_cur ? "cur/" : "new/", name, NULL);
}

/* The next name to look at: *box_out and *in_cur_out say where. NULL at the end. */
static char *
source_maildir_next_name(SourceMaildir *self, SourceMaildirBox **box_out,
                         gboolean *in_cur_out, GError **error)
{
  while (self->box_pos < self->boxes->len) {
    SourceMaildirBox *box = self->boxes->pdata[self->box_pos];
    if (self->chunk_pos < self->chunk->len) {
      *box_out = box;
      *in_cur_out = self->in_cur;
      char *name = self->chunk->pdata[self->chunk_pos];
      self->chunk->pdata[self->chunk_pos++] = NULL;
      return name;
    }
    if (self->dir == NULL || self->chunk->len == SOURCE_MAILDIR_CHUNK) {
      if (!source_maildir_fill(self, error))
        return NULL;
      if (self->chunk->len > 0)
        continue;
    }
    /* This directory is done: on to cur/, or to the next Maildir. */
    closedir(self->dir);
    self->dir = NULL;
    g_ptr_array_set_size(self->chunk, 0);
    self->chunk_pos = 0;
    if (!self->in_cur) {
      self->in_cur = TRUE;
    } else {
      box->listed_all = TRUE;
      self->in_cur = FALSE;
      self->box_pos++;
    }
  }
  return NULL;
}

static gboolean
source_maildir_next(gpointer self_, SourceMessage **msg, GError **error)
{
  SourceMaildir *self = self_;
  *msg = NULL;
  for (guint i = 0; i < self->boxes->len; i++) {
    SourceMaildirBox *box = self->boxes->pdata[i];
    source_maildir_sync_box(box);
    source_maildir_seen_flush(box, self->store_dir);
  }
  for (;;) {
    SourceMaildirBox *box = NULL;
    gboolean in_cur = FALSE;
    g_autofree char *name = source_maildir_next_name(self, &box, &in_cur, error);
    if (name == NULL)
      return FALSE;
    int dir_fd = in_cur ? box->cur_fd : box->new_fd;

    /* Already ingested (by an earlier run, or renamed into cur/ by this one)? */
    guint8 key[SOURCE_MAILDIR_KEY] = { 0 };
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
      source_maildir_key(name, &st, key);
      gboolean earlier = FALSE;
      guint8 kind = source_maildir_set_check(&box->seen, key, &earlier);
      if (kind != 0) {
        /* Stored durably by an earlier run: acknowledge it now if this run was asked
         * to (the earlier one may have run without --mark-seen / --move-to). */
        if (kind == SOURCE_MAILDIR_KIND_ACKED &&
            (self->mark_seen || self->move_to != NULL)) {
          g_autofree char *origin = source_maildir_origin(box, in_cur, name);
          if (!source_maildir_ack(self, box, in_cur, name, origin, error))
            return FALSE;
        }
        if (earlier)
          box->known++;
        continue;
      }
    }

    g_autoptr(GError) rerr = NULL;
    gint64 mtime = 0;
    gsize size = 0;
    GBytes *data = source_read_file(dir_fd, name, FALSE, self->max_size, &size, &mtime,
                                    &rerr);
    if (data == NULL && g_error_matches(rerr, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
      continue; /* moved by a mail reader since it was listed: not ours any more */

    g_autofree char *origin = source_maildir_origin(box, in_cur, name);
    if (data == NULL && !g_error_matches(rerr, SOURCE_ERROR, SOURCE_ERROR_TOO_LARGE) &&
        !g_error_matches(rerr, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE) &&
        !g_error_matches(rerr, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "%s: %s", origin, rerr->message);
      return FALSE;
    }

    SourceMaildirEntry *e = g_new0(SourceMaildirEntry, 1);
    e->box = g_rc_box_acquire(box);
    e->in_cur = in_cur;
    e->name = g_steal_pointer(&name);
    memcpy(e->key, key, sizeof key);
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

/* Remember a committed message, so that it is not read again: in the file for the next
 * runs, and in memory when @renamed_in (--mark-seen may rename it into cur/, where
 * this run would meet it again). */
static void
source_maildir_remember(SourceMaildirBox *box, const guint8 *hash, guint8 kind,
                        gboolean renamed_in)
{
  if (source_maildir_hash_empty(hash))
    return;
  guint8 key[SOURCE_MAILDIR_KEY];
  memcpy(key, hash, SOURCE_MAILDIR_HASH);
  key[SOURCE_MAILDIR_HASH] = kind;
  if (renamed_in)
    source_maildir_set_add(&box->seen, key, SOURCE_MAILDIR_ADDED);
  if (box->seen_name != NULL && !box->seen_broken)
    g_string_append_len(box->seen_out, (const char *) key, SOURCE_MAILDIR_KEY);
}

/* Acknowledge the message @name of new/ or cur/ of @box as the options ask: rename it
 * into the --move-to folder, or mark it seen. */
static gboolean
source_maildir_ack(SourceMaildir *self, SourceMaildirBox *box, gboolean in_cur,
                   const char *name, const char *origin, GError **error)
{
  if (self->move_to == NULL && !self->mark_seen)
    return TRUE;
  int src_fd = in_cur ? box->cur_fd : box->new_fd;
  int dst_fd;
  if (self->move_to != NULL) {
    if (!source_maildir_folder_open(box, self->move_to, error))
      return FALSE;
    dst_fd = box->move_fd;
  } else {
    dst_fd = box->cur_fd;
  }
  g_autofree char *dest = source_maildir_seen_name(name);
  if (src_fd == dst_fd && strcmp(dest, name) == 0)
    return TRUE;

  g_autofree char *final = NULL;
  gboolean vanished = FALSE;
  if (!source_maildir_rename(src_fd, name, dst_fd, dest, origin, &final, &vanished, error))
    return FALSE;
  if (vanished)
    return TRUE;
  /* The directories are fsync'ed once per batch (see the top of the file). */
  if (dst_fd == box->move_fd)
    box->sync_move = TRUE;
  else
    box->sync_cur = TRUE;
  if (src_fd != dst_fd) {
    if (src_fd == box->new_fd)
      box->sync_new = TRUE;
    else
      box->sync_cur = TRUE;
  }
  return TRUE;
}

static gboolean
source_maildir_commit(gpointer self_, SourceMessage *msg, SourceOutcome outcome,
                      GError **error)
{
  SourceMaildir *self = self_;
  SourceMaildirEntry *e = msg->handle;
  /* Skipped unread: left exactly where it is, and read again next time. */
  if (e == NULL || e->done || msg->data == NULL)
    return TRUE;
  /* Not a report: left exactly where it is. */
  if (outcome == SOURCE_OUTCOME_NOT_REPORT) {
    source_maildir_remember(e->box, e->key, SOURCE_MAILDIR_KIND_LEFT, FALSE);
    e->done = TRUE;
    return TRUE;
  }
  if (!source_maildir_ack(self, e->box, e->in_cur, e->name, msg->origin, error))
    return FALSE;
  source_maildir_remember(e->box, e->key, SOURCE_MAILDIR_KIND_ACKED,
                          self->mark_seen && self->move_to == NULL);
  e->done = TRUE;
  return TRUE;
}

static void
source_maildir_close(gpointer self_)
{
  SourceMaildir *self = self_;
  if (self == NULL)
    return;
  if (self->dir != NULL)
    closedir(self->dir);
  for (guint i = 0; i < self->boxes->len; i++) {
    SourceMaildirBox *box = self->boxes->pdata[i];
    source_maildir_sync_box(box);
    source_maildir_seen_flush(box, self->store_dir);
    source_maildir_seen_compact(box, self->store_dir);
    if (box->known > 0)
      source_event(&box->events, SOURCE_EVENT_VERBOSE, box->path,
                   "%u message%s ingested by an earlier run, not read again", box->known,
                   box->known == 1 ? "" : "s");
  }
  g_ptr_array_unref(self->boxes);
  g_ptr_array_unref(self->chunk);
  g_free(self->move_to);
  g_free(self->store_dir);
  g_free(self);
}

static guint
source_maildir_known(gpointer self_)
{
  SourceMaildir *self = self_;
  guint known = 0;
  for (guint i = 0; i < self->boxes->len; i++)
    known += ((SourceMaildirBox *) self->boxes->pdata[i])->known;
  return known;
}

const SourceOps source_maildir_ops = {
  "maildir", source_maildir_open, source_maildir_next, source_maildir_commit,
  source_maildir_close, source_maildir_known, NULL,
};
