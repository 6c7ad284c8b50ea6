/* sink-tree.c - the "tree" sink, the default store:
 *   STORE/<policy-domain>/<YYYY>/<MM>/<DD>/<org>!<report-id>!<key>.json   (normalized)
 *   STORE/<policy-domain>/<YYYY>/<MM>/<DD>/<org>!<report-id>!<key>.<ext>  (as sent)
 * Every file is put in place whole (a temporary file beside it, renamed onto the final
 * name) without fsync: the store makes the whole batch durable at its commit (group
 * commit: one syncfs(), or an fsync() of each file and directory for a single message),
 * before anything is acknowledged. The first few reports of a commit are written by
 * write() at once; the rest are rendered by write() and staged, and flush() writes them
 * on a few threads at once, one directory per thread at a time (creating files is system
 * time the kernel spreads over the CPUs). rollback() drops what is staged and removes
 * the files the commit in flight put in place, and the directories it made for them. Directories are opened below the store
 * without following any symlink; those known to exist are not looked up again.
 * Layout: docs/store.md. */
#include "sink.h"
#include "fsutil.h"
#include "keyset.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SINK_TREE_DOMAIN_MAX 100
#define SINK_TREE_PART_MAX 60
#define SINK_TREE_KNOWN_MAX 65536     /* directories remembered as existing (~4 MB) */
#define SINK_TREE_DIRECT_MAX 4        /* reports of a commit written by write() itself */
#define SINK_TREE_STAGED_MAX (8u * 1024 * 1024) /* staged bytes written out early */
#define SINK_TREE_WRITERS_MAX 4       /* threads writing the staged files */
#define SINK_TREE_TMP_MAX_AGE 3600    /* a .tmp-* of a live pid is kept this long */

/* A file of the commit in flight: put in place, or staged (rendered, not yet written). */
typedef struct {
  char *dir_rel;            /* directory below the store */
  char *name;               /* final name in it */
  GBytes *data;             /* staged: what to write; NULL once in place */
} SinkTreeFile;

typedef struct {
  StoreSync *sync;          /* borrowed: the durability of the commit in flight */
  int store_fd;             /* borrowed from @sync */
  char *store_path;
  GPtrArray *written;       /* SinkTreeFile*: put in place by the commit in flight */
  guint64 written_commits;  /* store_sync_commit_count() when they were written */
  GHashTable *known;        /* directories below the store known to exist (rel paths) */
  GHashTable *swept;        /* directories whose dead writers' .tmp-* files were removed
                               in this run (under known_lock) */
  GMutex known_lock;        /* @known, @swept and @made, shared by the writer threads */
  GPtrArray *made;          /* char*: directories the commit in flight created, in order */
  GPtrArray *staged;        /* SinkTreeFile* with data: the rest of the commit in flight */
  gsize staged_bytes;
  guint direct;             /* reports of the commit in flight written by write() */
  int early_sync_fd;        /* the store directory once more, for the early writeback */
  GHashTable *synced;       /* directories handed to store_sync_fd() in this commit */
  guint64 synced_epoch;     /* store_sync_epoch() of @synced */
} SinkTree;

static void
sink_tree_file_free(gpointer p)
{
  SinkTreeFile *f = p;
  if (f == NULL)
    return;
  g_free(f->dir_rel);
  g_free(f->name);
  if (f->data != NULL)
    g_bytes_unref(f->data);
  g_free(f);
}

static void
sink_tree_prefix(SinkTree *self, GError **error)
{
  g_prefix_error(error, "%s: ", self->store_path);
}

/* A commit ended since the last write (the store's commit count moved): what was
 * written then is committed for good, and a new commit is in flight. */
static void
sink_tree_new_commit(SinkTree *self)
{
  guint64 now = store_sync_commit_count(self->sync);
  if (now == self->written_commits)
    return;
  g_ptr_array_set_size(self->written, 0);
  g_ptr_array_set_size(self->made, 0);
  self->written_commits = now;
  self->direct = 0;
}

/* The directory @rel ("" = the store) is written to by this commit: hand @fd (owned;
 * may be -1 for the store itself) to the store's sync, once per directory and commit. */
static void
sink_tree_sync_dir(SinkTree *self, const char *rel, int fd)
{
  if (!store_sync_each(self->sync)) {
    /* syncfs() covers it; the writer threads come only this far. */
    if (fd >= 0 && fd != self->store_fd)
      close(fd);
    return;
  }
  if (self->synced_epoch != store_sync_epoch(self->sync)) {
    g_hash_table_remove_all(self->synced);
    self->synced_epoch = store_sync_epoch(self->sync);
  }
  if (g_hash_table_contains(self->synced, rel)) {
    if (fd >= 0 && fd != self->store_fd)
      close(fd);
    return;
  }
  g_hash_table_add(self->synced, g_strdup(rel));
  if (rel[0] == '\0')
    store_sync_store_dir(self->sync);
  else
    store_sync_fd(self->sync, fd);
}

/* The set of directories known to exist; thread-safe. */
static void
sink_tree_remember(SinkTree *self, const char *rel)
{
  g_mutex_lock(&self->known_lock);
  if (g_hash_table_size(self->known) >= SINK_TREE_KNOWN_MAX)
    g_hash_table_remove_all(self->known);
  g_hash_table_add(self->known, g_strdup(rel));
  g_mutex_unlock(&self->known_lock);
}

static gboolean
sink_tree_is_known(SinkTree *self, const char *rel)
{
  g_mutex_lock(&self->known_lock);
  gboolean known = g_hash_table_contains(self->known, rel);
  g_mutex_unlock(&self->known_lock);
  return known;
}

/* @rel was created by the commit in flight; thread-safe. */
static void
sink_tree_made(SinkTree *self, const char *rel)
{
  g_mutex_lock(&self->known_lock);
  g_ptr_array_add(self->made, g_strdup(rel));
  g_mutex_unlock(&self->known_lock);
}

static void
sink_tree_forget_all(SinkTree *self)
{
  g_mutex_lock(&self->known_lock);
  g_hash_table_remove_all(self->known);
  g_mutex_unlock(&self->known_lock);
}

/* Once per run for each directory a commit writes in: remove the .tmp-* files that
 * killed runs left there (fsutil_sweep_tmp(): never a live writer's, nor ours). */
static void
sink_tree_sweep_once(SinkTree *self, const char *rel, int dir_fd)
{
  g_mutex_lock(&self->known_lock);
  gboolean first = !g_hash_table_contains(self->swept, rel);
  if (first) {
    if (g_hash_table_size(self->swept) >= SINK_TREE_KNOWN_MAX)
      g_hash_table_remove_all(self->swept);
    g_hash_table_add(self->swept, g_strdup(rel));
  }
  g_mutex_unlock(&self->known_lock);
  if (first)
    fsutil_sweep_tmp(dir_fd, SINK_TREE_TMP_MAX_AGE);
}

/* The existing directory @rel below the store: an fd, or -1 with *missing set when it
 * does not exist (not an error), or -1 + error. */
static int
sink_tree_open_existing(SinkTree *self, const char *rel, gboolean *missing, GError **error)
{
  GError *local = NULL;
  *missing = FALSE;
  int fd = fsutil_open_dir_beneath(self->store_fd, rel, &local);
  if (fd >= 0)
    return fd;
  if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
    *missing = TRUE;
    g_error_free(local);
    return -1;
  }
  g_propagate_error(error, local);
  sink_tree_prefix(self, error);
  return -1;
}

/* The directory @rel below the store, created (mode 0750) when missing, never through
 * a symlink. Every directory this creates has its parent made durable with the commit.
 * Returns an fd (the caller owns it) or -1. */
static int
sink_tree_dir(SinkTree *self, const char *rel, GError **error)
{
  GError *local = NULL;
  gboolean missing = FALSE;
  if (sink_tree_is_known(self, rel)) {
    int fd = sink_tree_open_existing(self, rel, &missing, error);
    if (fd >= 0 || !missing)
      return fd;
    /* Removed behind our back: forget what we knew. */
    sink_tree_forget_all(self);
  }

  /* The deepest ancestor known to exist; without one, try the whole path first (it
   * exists when an earlier run made it). */
  g_auto(GStrv) parts = g_strsplit(rel, "/", -1);
  guint n = g_strv_length(parts);
  g_autoptr(GString) prefix = g_string_new(NULL);
  guint start = 0;
  for (guint k = n - 1; k >= 1; k--) {
    g_string_truncate(prefix, 0);
    for (guint i = 0; i < k; i++)
      g_string_append_printf(prefix, "%s%s", i ? "/" : "", parts[i]);
    if (sink_tree_is_known(self, prefix->str)) {
      start = k;
      break;
    }
  }
  int cur = self->store_fd;
  if (start > 0) {
    cur = fsutil_open_dir_beneath(self->store_fd, prefix->str, &local);
    if (cur < 0) {
      g_clear_error(&local);
      sink_tree_forget_all(self);
      start = 0;
      cur = self->store_fd;
    }
  }
  if (start == 0) {
    g_string_truncate(prefix, 0);
    int fd = sink_tree_open_existing(self, rel, &missing, error);
    if (fd >= 0) {
      for (guint i = 0; i < n; i++) {
        g_string_append_printf(prefix, "%s%s", i ? "/" : "", parts[i]);
        sink_tree_remember(self, prefix->str);
      }
      return fd;
    }
    if (!missing)
      return -1;
  }

  /* Make the missing components one at a time. */
  for (guint i = start; i < n; i++) {
    gboolean created = FALSE;
    int next = fsutil_mkdir_open(cur, parts[i], rel, &created, &local);
    if (next < 0) {
      if (cur != self->store_fd)
        close(cur);
      g_propagate_error(error, local);
      sink_tree_prefix(self, error);
      return -1;
    }
    if (created)
      sink_tree_sync_dir(self, prefix->str, cur);   /* its new entry; takes @cur */
    else if (cur != self->store_fd)
      close(cur);
    cur = next;
    if (prefix->len > 0)
      g_string_append_c(prefix, '/');
    g_string_append(prefix, parts[i]);
    sink_tree_remember(self, prefix->str);
    if (created)
      sink_tree_made(self, prefix->str);
  }
  return cur;
}

/* "<domain>/<YYYY>/<MM>/<DD>" of a report. (transfer full) */
static char *
sink_tree_dir_rel(const Report *r)
{
  g_autofree char *primary = report_primary_domain(r);
  g_autofree char *lower = g_ascii_strdown(primary, -1);
  g_autofree char *domain = fsutil_sanitize_component(lower, SINK_TREE_DOMAIN_MAX);
  if (strcmp(domain, "quarantine") == 0 || domain[0] == '.') {
    char *d = g_strconcat("_", domain, NULL);
    g_free(domain);
    domain = d;
  }
  time_t t = (time_t) r->begin;
  struct tm tm;
  if ((gint64) t != r->begin || gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 0 ||
      tm.tm_year + 1900 > 9999)
    return g_strdup_printf("%s/0000/00/00", domain);
  return g_strdup_printf("%s/%04d/%02d/%02d", domain, tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday);
}

/* "<org>!<report-id>!<key hex>" of a report. (transfer full) */
static char *
sink_tree_base_name(const Report *r)
{
  g_autofree char *org = fsutil_sanitize_component(r->organization_name, SINK_TREE_PART_MAX);
  g_autofree char *id = fsutil_sanitize_component(r->report_id, SINK_TREE_PART_MAX);
  char hex[2 * KEYSET_KEY_LEN + 1];
  keyset_key_hex(r->key, hex);
  return g_strconcat(org, "!", id, "!", hex, NULL);
}

/* The name of the original attachment beside "<base>.json". A plain JSON attachment
 * cannot take "<base>.json" (the normalized report has it): it becomes
 * "<base>.json.orig", so "*.json" lists only normalized reports. (transfer full) */
static char *
sink_tree_raw_name(const char *base, const char *extension)
{
  g_autofree char *ext = fsutil_sanitize_component(extension != NULL ? extension : "raw", 16);
  if (strcmp(ext, "json") == 0)
    return g_strconcat(base, ".json.orig", NULL);
  return g_strconcat(base, ".", ext, NULL);
}

/* Put one file in place in @dir_fd, recorded in @written; it is made durable with the
 * commit. From a writer thread too (the commit is wide then: no fd is kept). */
static gboolean
sink_tree_put(SinkTree *self, GPtrArray *written, const char *rel, int dir_fd,
              const char *name, const void *data, gsize len, GError **error)
{
  gboolean each = store_sync_each(self->sync);
  int fd = -1;
  if (!fsutil_write_replace(dir_fd, name, data, len, each ? &fd : NULL, error)) {
    g_prefix_error(error, "%s/%s: ", self->store_path, rel);
    return FALSE;
  }
  SinkTreeFile *f = g_new0(SinkTreeFile, 1);
  f->dir_rel = g_strdup(rel);
  f->name = g_strdup(name);
  g_ptr_array_add(written, f);
  if (fd >= 0)
    store_sync_fd(self->sync, fd);
  return TRUE;
}

/* ---- the staged files, written by a few threads at once ------------------- */

typedef struct {
  SinkTree *self;
  GPtrArray *jobs;          /* SinkTreeFile*, sorted by directory */
  GArray *groups;           /* guint: index of the first job of each directory */
  gint next;                /* the next group to take (atomic) */
  gint failed;              /* atomic: stop taking groups */
  gint done;                /* atomic: the writers are done */
  GMutex lock;              /* @error */
  GError *error;            /* the first failure */
} SinkTreeRun;

/* While the writers run, write back what they have put in place so far, so that the
 * disk works while they do and the commit's own syncfs() finds little left to write.
 * Not a durability point: only the commit's sync is, and nothing here may hide an
 * error from it. So this syncs through a descriptor of its own (Linux reports a
 * writeback error once per open file: the store's descriptor still sees it), ignores
 * the result, and calls the kernel directly (a test that makes the C library's syncfs()
 * fail targets the commit's sync, not this one). */
static gpointer
sink_tree_early_sync_main(gpointer data)
{
  SinkTreeRun *run = data;
  while (!g_atomic_int_get(&run->done)) {
    gint64 t0 = g_get_monotonic_time();
    if (syscall(SYS_syncfs, run->self->early_sync_fd) != 0)
      break;
    /* Little was dirty: let the writers put more in place first. */
    if (g_get_monotonic_time() - t0 < 2000)
      g_usleep(2000);
  }
  return NULL;
}

typedef struct {
  SinkTreeRun *run;
  GPtrArray *written;       /* SinkTreeFile*: what this writer put in place */
  GThread *thread;
} SinkTreeWriter;

static void
sink_tree_run_fail(SinkTreeRun *run, GError *error)
{
  g_atomic_int_set(&run->failed, 1);
  g_mutex_lock(&run->lock);
  if (run->error == NULL)
    run->error = error;
  else
    g_error_free(error);
  g_mutex_unlock(&run->lock);
}

/* Takes one directory at a time, so no two writers ever make the same directory (a
 * parent two of them need is made by one, and found by the other: EEXIST). */
static gpointer
sink_tree_writer_main(gpointer data)
{
  SinkTreeWriter *w = data;
  SinkTreeRun *run = w->run;
  guint n_groups = run->groups->len;
  while (!g_atomic_int_get(&run->failed)) {
    guint g = (guint) g_atomic_int_add(&run->next, 1);
    if (g >= n_groups)
      break;
    guint first = g_array_index(run->groups, guint, g);
    guint end = g + 1 < n_groups ? g_array_index(run->groups, guint, g + 1) : run->jobs->len;
    const char *rel = ((SinkTreeFile *) run->jobs->pdata[first])->dir_rel;
    GError *error = NULL;
    int dir_fd = sink_tree_dir(run->self, rel, &error);
    if (dir_fd < 0) {
      sink_tree_run_fail(run, error);
      break;
    }
    sink_tree_sweep_once(run->self, rel, dir_fd);
    for (guint i = first; i < end && error == NULL; i++) {
      SinkTreeFile *j = run->jobs->pdata[i];
      gsize len = 0;
      const void *bytes = g_bytes_get_data(j->data, &len);
      sink_tree_put(run->self, w->written, rel, dir_fd, j->name, bytes, len, &error);
    }
    close(dir_fd);
    if (error != NULL) {
      sink_tree_run_fail(run, error);
      break;
    }
  }
  return NULL;
}

static gint
sink_tree_file_cmp(gconstpointer a, gconstpointer b)
{
  const SinkTreeFile *x = *(SinkTreeFile *const *) a;
  const SinkTreeFile *y = *(SinkTreeFile *const *) b;
  return strcmp(x->dir_rel, y->dir_rel);
}

/* Write every staged file; what was put in place joins self->written (also on failure,
 * so that rollback() removes it). */
static gboolean
sink_tree_write_staged(SinkTree *self, GError **error)
{
  GPtrArray *jobs = self->staged;
  if (jobs->len == 0)
    return TRUE;
  g_ptr_array_sort(jobs, sink_tree_file_cmp);
  SinkTreeRun run = { .self = self, .jobs = jobs,
                      .groups = g_array_new(FALSE, FALSE, sizeof(guint)) };
  g_mutex_init(&run.lock);
  for (guint i = 0; i < jobs->len; i++)
    if (i == 0 || strcmp(((SinkTreeFile *) jobs->pdata[i - 1])->dir_rel,
                         ((SinkTreeFile *) jobs->pdata[i])->dir_rel) != 0)
      g_array_append_val(run.groups, i);

  guint n = MIN(MIN((guint) g_get_num_processors(), SINK_TREE_WRITERS_MAX), run.groups->len);
  n = MAX(n, 1u);
  /* Writer 0 is this thread and records into self->written directly. */
  SinkTreeWriter writers[SINK_TREE_WRITERS_MAX];
  for (guint i = 0; i < n; i++)
    writers[i] = (SinkTreeWriter) {
      .run = &run,
      .written = i == 0 ? self->written : g_ptr_array_new_with_free_func(sink_tree_file_free),
    };
  if (self->early_sync_fd < 0)
    self->early_sync_fd = openat(self->store_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  GThread *early = self->early_sync_fd >= 0
                       ? g_thread_try_new("tlsrpt-sync", sink_tree_early_sync_main, &run, NULL)
                       : NULL;
  for (guint i = 1; i < n; i++)
    writers[i].thread = g_thread_try_new("tlsrpt-tree", sink_tree_writer_main, &writers[i],
                                         NULL);
  sink_tree_writer_main(&writers[0]);
  for (guint i = 1; i < n; i++) {
    if (writers[i].thread != NULL)
      g_thread_join(writers[i].thread);
    else
      sink_tree_writer_main(&writers[i]);      /* could not start: do its share here */
    g_ptr_array_extend_and_steal(self->written, writers[i].written);
  }
  g_atomic_int_set(&run.done, 1);
  if (early != NULL)
    g_thread_join(early);

  g_array_unref(run.groups);
  g_mutex_clear(&run.lock);
  g_ptr_array_set_size(self->staged, 0);
  self->staged_bytes = 0;
  if (run.error != NULL) {
    g_propagate_error(error, run.error);
    return FALSE;
  }
  return TRUE;
}

static void
sink_tree_stage(SinkTree *self, const char *rel, char *name, GBytes *data)
{
  SinkTreeFile *j = g_new0(SinkTreeFile, 1);
  j->dir_rel = g_strdup(rel);
  j->name = name;
  j->data = data;
  self->staged_bytes += g_bytes_get_size(data);
  g_ptr_array_add(self->staged, j);
}

static gpointer
sink_tree_open(const SinkConfig *config, StoreSync *sync, GError **error)
{
  SinkTree *self = g_new0(SinkTree, 1);
  self->sync = sync;
  self->store_fd = store_sync_store_fd(sync);
  self->store_path = g_strdup(store_sync_store_path(sync));
  self->written = g_ptr_array_new_with_free_func(sink_tree_file_free);
  self->written_commits = store_sync_commit_count(sync);
  self->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  self->swept = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_mutex_init(&self->known_lock);
  self->made = g_ptr_array_new_with_free_func(g_free);
  self->early_sync_fd = -1;
  self->staged = g_ptr_array_new_with_free_func(sink_tree_file_free);
  self->synced = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  return self;
}

static gboolean
sink_tree_write(gpointer p, const Report *r, GError **error)
{
  SinkTree *self = p;
  sink_tree_new_commit(self);
  g_autofree char *rel = sink_tree_dir_rel(r);
  g_autofree char *base = sink_tree_base_name(r);

  GString *json = g_string_new(NULL);
  report_to_json(r, TRUE, json);
  g_string_append_c(json, '\n');
  char *json_name = g_strconcat(base, ".json", NULL);
  char *raw_name = r->ingest.raw != NULL ? sink_tree_raw_name(base, r->ingest.raw_extension)
                                         : NULL;

  if (self->direct >= SINK_TREE_DIRECT_MAX) {
    /* Many reports in this commit: it ends with syncfs(), and flush() writes them. */
    store_sync_wide(self->sync);
    sink_tree_stage(self, rel, json_name, g_string_free_to_bytes(json));
    if (raw_name != NULL)
      sink_tree_stage(self, rel, raw_name, g_bytes_ref(r->ingest.raw));
    if (self->staged_bytes >= SINK_TREE_STAGED_MAX)
      return sink_tree_write_staged(self, error);
    return TRUE;
  }

  self->direct++;
  int dir_fd = sink_tree_dir(self, rel, error);
  if (dir_fd >= 0)
    sink_tree_sweep_once(self, rel, dir_fd);
  gboolean ok = dir_fd >= 0 &&
                sink_tree_put(self, self->written, rel, dir_fd, json_name, json->str,
                              json->len, error);
  if (ok && raw_name != NULL) {
    gsize len = 0;
    const void *data = g_bytes_get_data(r->ingest.raw, &len);
    ok = sink_tree_put(self, self->written, rel, dir_fd, raw_name, data, len, error);
  }
  if (dir_fd >= 0)
    sink_tree_sync_dir(self, rel, dir_fd);        /* takes dir_fd */
  g_string_free(json, TRUE);
  g_free(json_name);
  g_free(raw_name);
  return ok;
}

static gboolean
sink_tree_flush(gpointer p, GError **error)
{
  /* What write() staged is written now; the store's commit makes every file durable with
   * the batch, before its commit point. */
  return sink_tree_write_staged(p, error);
}

static void
sink_tree_rollback(gpointer p)
{
  SinkTree *self = p;
  g_ptr_array_set_size(self->staged, 0);
  self->staged_bytes = 0;
  self->direct = 0;
  /* The files the failed commit put in place go (best effort: what remains is not in the
   * index, and is written again identically by the next run). Files of a commit that
   * succeeded are never touched. */
  if (store_sync_commit_count(self->sync) == self->written_commits) {
    char *open_rel = NULL;
    int dir_fd = -1;
    for (guint i = 0; i < self->written->len; i++) {
      SinkTreeFile *f = self->written->pdata[i];
      if (open_rel == NULL || strcmp(open_rel, f->dir_rel) != 0) {
        if (dir_fd >= 0)
          close(dir_fd);
        open_rel = f->dir_rel;
        dir_fd = fsutil_open_dir_beneath(self->store_fd, f->dir_rel, NULL);
      }
      if (dir_fd >= 0)
        unlinkat(dir_fd, f->name, 0);
    }
    if (dir_fd >= 0)
      close(dir_fd);
    /* Then the directories it made, deepest first: a rolled-back batch leaves no empty
     * <domain>/<YYYY>/<MM>/<DD> behind (one that is not empty stays). */
    for (guint i = self->made->len; i-- > 0;) {
      const char *rel = self->made->pdata[i];
      const char *slash = strrchr(rel, '/');
      g_autofree char *parent = slash != NULL ? g_strndup(rel, (gsize) (slash - rel)) : NULL;
      int pfd = parent != NULL ? fsutil_open_dir_beneath(self->store_fd, parent, NULL)
                               : self->store_fd;
      if (pfd >= 0)
        unlinkat(pfd, slash != NULL ? slash + 1 : rel, AT_REMOVEDIR);
      if (pfd >= 0 && pfd != self->store_fd)
        close(pfd);
    }
    if (self->made->len > 0)
      sink_tree_forget_all(self);
  }
  g_ptr_array_set_size(self->written, 0);
  g_ptr_array_set_size(self->made, 0);
  self->written_commits = store_sync_commit_count(self->sync);
}

static const char *
sink_tree_journal_path(gpointer p)
{
  return NULL;                  /* files appear whole by rename: nothing to truncate */
}

static void
sink_tree_close(gpointer p)
{
  SinkTree *self = p;
  if (self == NULL)
    return;
  /* Not a rollback: what was written may have been committed by the caller. */
  g_ptr_array_unref(self->written);
  g_ptr_array_unref(self->staged);
  g_hash_table_unref(self->known);
  g_ptr_array_unref(self->made);
  g_hash_table_unref(self->swept);
  g_mutex_clear(&self->known_lock);
  if (self->early_sync_fd >= 0)
    close(self->early_sync_fd);
  g_hash_table_unref(self->synced);
  g_free(self->store_path);
  g_free(self);
}

const SinkOps sink_tree_ops = {
  .name = "tree",
  .open = sink_tree_open,
  .write = sink_tree_write,
  .flush = sink_tree_flush,
  .rollback = sink_tree_rollback,
  .journal_path = sink_tree_journal_path,
  .close = sink_tree_close,
  .flush_alongside = TRUE,
};
