/* sink-tree.c - the "tree" sink, the default store:
 *   STORE/<policy-domain>/<YYYY>/<MM>/<DD>/<org>!<report-id>!<key>.json   (normalized)
 *   STORE/<policy-domain>/<YYYY>/<MM>/<DD>/<org>!<report-id>!<key>.<ext>  (as sent)
 * write() puts each file in a temporary file beside its final name; flush() fsyncs them
 * (one syncfs() for a big batch), renames them into place and fsyncs every directory
 * touched or created. Directories are opened below the store one component at a time,
 * never through a symlink. Layout and guarantees: docs/store.md. */
#include "sink.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SINK_TREE_DOMAIN_MAX 100
#define SINK_TREE_PART_MAX 60
#define SINK_TREE_FSYNC_EACH_MAX 8    /* more pending files: one syncfs() instead */

typedef struct {
  char *dir_rel;            /* directory below the store */
  char *tmp;                /* temporary name in it */
  char *final;              /* final name in it */
  gboolean renamed;
} SinkTreeFile;

typedef struct {
  Store *store;             /* borrowed */
  int store_fd;             /* borrowed from the Store */
  char *store_path;
  GPtrArray *pending;       /* SinkTreeFile*: staged by write() */
  GPtrArray *done;          /* SinkTreeFile*: renamed by the last flush() */
  guint64 done_commits;     /* store_commit_count() at that flush */
  GHashTable *sync_dirs;    /* dir_rel ("" = the store) -> fsync at flush */
  char *cur_rel;            /* one cached open directory */
  int cur_fd;
} SinkTree;

static void
sink_tree_file_free(gpointer p)
{
  SinkTreeFile *f = p;
  if (f == NULL)
    return;
  g_free(f->dir_rel);
  g_free(f->tmp);
  g_free(f->final);
  g_free(f);
}

static void
sink_tree_uncache(SinkTree *self)
{
  if (self->cur_fd >= 0)
    close(self->cur_fd);
  self->cur_fd = -1;
  g_clear_pointer(&self->cur_rel, g_free);
}

static void
sink_tree_prefix(SinkTree *self, GError **error)
{
  g_prefix_error(error, "%s: ", self->store_path);
}

/* The directory @rel below the store, created when missing; every directory this
 * creates gets its parent queued for fsync. Returns a borrowed fd (the cache). */
static int
sink_tree_dir(SinkTree *self, const char *rel, gboolean create, GError **error)
{
  if (self->cur_rel != NULL && strcmp(self->cur_rel, rel) == 0)
    return self->cur_fd;
  sink_tree_uncache(self);
  if (rel[0] == '\0') {
    int fd = dup(self->store_fd);
    if (fd < 0) {
      fsutil_set_error_errno(error, errno, "dup", self->store_path);
      return -1;
    }
    self->cur_fd = fd;
    self->cur_rel = g_strdup(rel);
    return fd;
  }

  GError *local = NULL;
  int fd = fsutil_open_dir_below(self->store_fd, rel, FALSE, &local);
  if (fd < 0 && create && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
    g_clear_error(&local);
    /* Walk it component by component to learn which ones are new. */
    g_auto(GStrv) parts = g_strsplit(rel, "/", -1);
    g_autoptr(GString) prefix = g_string_new(NULL);
    int cur = self->store_fd;
    for (guint i = 0; parts[i] != NULL; i++) {
      int next = fsutil_open_dir_below(cur, parts[i], FALSE, &local);
      if (next < 0 && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
        g_clear_error(&local);
        next = fsutil_open_dir_below(cur, parts[i], TRUE, &local);
        if (next >= 0)
          g_hash_table_add(self->sync_dirs, g_strdup(prefix->str));
      }
      if (cur != self->store_fd)
        close(cur);
      if (next < 0) {
        fd = -1;
        break;
      }
      cur = next;
      if (prefix->len > 0)
        g_string_append_c(prefix, '/');
      g_string_append(prefix, parts[i]);
      fd = cur;
    }
  }
  if (fd < 0) {
    /* The message names the relative path; add the store's. */
    g_propagate_error(error, local);
    sink_tree_prefix(self, error);
    return -1;
  }
  self->cur_fd = fd;
  self->cur_rel = g_strdup(rel);
  return fd;
}

/* "<domain>/<YYYY>/<MM>/<DD>" of a report. (transfer full) */
static char *
sink_tree_dir_rel(const Report *r)
{
  g_autofree char *lower = g_ascii_strdown(report_primary_domain(r), -1);
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
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "%s!%s!", org, id);
  for (guint i = 0; i < G_N_ELEMENTS(r->key); i++)
    g_string_append_printf(s, "%02x", r->key[i]);
  return g_string_free(s, FALSE);
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

static gboolean
sink_tree_stage(SinkTree *self, const char *rel, int dir_fd, const char *final,
                const void *data, gsize len, GError **error)
{
  char *tmp = fsutil_write_tmp(dir_fd, final, data, len, FALSE, error);
  if (tmp == NULL) {
    g_prefix_error(error, "%s/%s: ", self->store_path, rel);
    return FALSE;
  }
  SinkTreeFile *f = g_new0(SinkTreeFile, 1);
  f->dir_rel = g_strdup(rel);
  f->tmp = tmp;
  f->final = g_strdup(final);
  g_ptr_array_add(self->pending, f);
  return TRUE;
}

static gpointer
sink_tree_open(const TrOptions *opts, Store *store, GError **error)
{
  SinkTree *self = g_new0(SinkTree, 1);
  self->store = store;
  self->store_fd = store_dir_fd(store);
  self->store_path = g_strdup(store_path(store));
  self->pending = g_ptr_array_new_with_free_func(sink_tree_file_free);
  self->done = g_ptr_array_new_with_free_func(sink_tree_file_free);
  self->sync_dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  self->cur_fd = -1;
  return self;
}

static gboolean
sink_tree_write(gpointer p, const Report *r, GError **error)
{
  SinkTree *self = p;
  /* What the last flush renamed was committed since: it stays for good. */
  if (self->done->len > 0 && store_commit_count(self->store) != self->done_commits)
    g_ptr_array_set_size(self->done, 0);
  g_autofree char *rel = sink_tree_dir_rel(r);
  g_autofree char *base = sink_tree_base_name(r);
  int dir_fd = sink_tree_dir(self, rel, TRUE, error);
  if (dir_fd < 0)
    return FALSE;
  g_hash_table_add(self->sync_dirs, g_strdup(rel));

  g_autoptr(GString) json = g_string_new(NULL);
  report_to_json(r, TRUE, json);
  g_string_append_c(json, '\n');
  g_autofree char *json_name = g_strconcat(base, ".json", NULL);
  if (!sink_tree_stage(self, rel, dir_fd, json_name, json->str, json->len, error))
    return FALSE;

  if (r->ingest.raw != NULL) {
    gsize len = 0;
    const void *data = g_bytes_get_data(r->ingest.raw, &len);
    g_autofree char *raw_name = sink_tree_raw_name(base, r->ingest.raw_extension);
    if (!sink_tree_stage(self, rel, dir_fd, raw_name, data, len, error))
      return FALSE;
  }
  return TRUE;
}

/* fsync a directory below the store ("" = the store itself). */
static gboolean
sink_tree_fsync_dir(SinkTree *self, const char *rel, GError **error)
{
  int fd = sink_tree_dir(self, rel, FALSE, error);
  if (fd < 0)
    return FALSE;
  if (!fsutil_fsync_fd(fd, rel[0] ? rel : self->store_path, error)) {
    if (rel[0])
      sink_tree_prefix(self, error);
    return FALSE;
  }
  return TRUE;
}

static gboolean
sink_tree_flush(gpointer p, GError **error)
{
  SinkTree *self = p;
  gboolean ok = TRUE;
  guint n = self->pending->len;

  /* 1. The data of every temporary file on disk. */
  if (n > SINK_TREE_FSYNC_EACH_MAX) {
    if (syncfs(self->store_fd) != 0) {
      fsutil_set_error_errno(error, errno, "syncfs", self->store_path);
      ok = FALSE;
    }
  } else {
    for (guint i = 0; ok && i < n; i++) {
      SinkTreeFile *f = self->pending->pdata[i];
      int dir_fd = sink_tree_dir(self, f->dir_rel, FALSE, error);
      if (dir_fd < 0) {
        ok = FALSE;
        break;
      }
      int fd = openat(dir_fd, f->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        fsutil_set_error_errno(error, errno, "open", f->tmp);
        ok = FALSE;
      } else {
        ok = fsutil_fsync_fd(fd, f->tmp, error);
        close(fd);
      }
      if (!ok)
        g_prefix_error(error, "%s/%s: ", self->store_path, f->dir_rel);
    }
  }

  /* 2. Into place. */
  for (guint i = 0; ok && i < n; i++) {
    SinkTreeFile *f = self->pending->pdata[i];
    int dir_fd = sink_tree_dir(self, f->dir_rel, FALSE, error);
    if (dir_fd < 0) {
      ok = FALSE;
      break;
    }
    if (renameat(dir_fd, f->tmp, dir_fd, f->final) != 0) {
      fsutil_set_error_errno(error, errno, "rename", f->final);
      g_prefix_error(error, "%s/%s: ", self->store_path, f->dir_rel);
      ok = FALSE;
      break;
    }
    f->renamed = TRUE;
  }

  /* 3. The directory entries: every directory renamed into, every parent of a
   * directory created. */
  if (ok) {
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, self->sync_dirs);
    while (ok && g_hash_table_iter_next(&it, &key, NULL))
      ok = sink_tree_fsync_dir(self, key, error);
  }

  if (!ok)
    return FALSE;               /* rollback() removes what this commit put in place */
  /* Until the store commits, a rollback removes these again. */
  if (self->done->len > 0 && store_commit_count(self->store) != self->done_commits)
    g_ptr_array_set_size(self->done, 0);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add(self->done, g_steal_pointer(&self->pending->pdata[i]));
  self->done_commits = store_commit_count(self->store);
  g_ptr_array_set_size(self->pending, 0);
  g_hash_table_remove_all(self->sync_dirs);
  sink_tree_uncache(self);
  return TRUE;
}

/* Remove the files of @list: temporary ones, and (@finals) those renamed into place.
 * Best effort: what remains is harmless (not in the index; rewritten identically). */
static void
sink_tree_remove(SinkTree *self, GPtrArray *list, gboolean finals)
{
  g_autoptr(GHashTable) dirs = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < list->len; i++) {
    SinkTreeFile *f = list->pdata[i];
    if (f->renamed && !finals)
      continue;
    GError *local = NULL;
    int dir_fd = sink_tree_dir(self, f->dir_rel, FALSE, &local);
    if (dir_fd < 0) {
      g_error_free(local);
      continue;
    }
    if (unlinkat(dir_fd, f->renamed ? f->final : f->tmp, 0) == 0 && f->renamed)
      g_hash_table_add(dirs, f->dir_rel);
  }
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init(&it, dirs);
  while (g_hash_table_iter_next(&it, &key, NULL)) {
    GError *local = NULL;
    if (!sink_tree_fsync_dir(self, key, &local))
      g_error_free(local);
  }
}

static void
sink_tree_rollback(gpointer p)
{
  SinkTree *self = p;
  /* Files renamed by a flush of this same commit (not committed since) go too: a failed
   * commit leaves the tree as it was. Once committed they are never touched. */
  if (self->done->len > 0 && store_commit_count(self->store) == self->done_commits)
    sink_tree_remove(self, self->done, TRUE);
  g_ptr_array_set_size(self->done, 0);
  sink_tree_remove(self, self->pending, TRUE);
  g_ptr_array_set_size(self->pending, 0);
  g_hash_table_remove_all(self->sync_dirs);
  sink_tree_uncache(self);
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
  /* Not a rollback: what was flushed may have been committed by the caller. */
  g_ptr_array_set_size(self->done, 0);
  sink_tree_remove(self, self->pending, FALSE);
  sink_tree_uncache(self);
  g_ptr_array_unref(self->pending);
  g_ptr_array_unref(self->done);
  g_hash_table_unref(self->sync_dirs);
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
};
