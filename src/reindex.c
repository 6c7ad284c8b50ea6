/* reindex.c - build the SQL index from the report tree. */
#include "reindex.h"

#include "db.h"
#include "report-datetime.h"
#include "report-parse.h"
#include "fsutil.h"
#include "keyset.h"
#include "log.h"
#include "report-deviation.h"
#include "sink.h"
#include "source.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REINDEX_BATCH 20000       /* reports per transaction */

/* A non-empty string member of @obj, copied; NULL otherwise. */
static char *
reindex_string(const ReportJsonValue *obj, const char *key)
{
  const ReportJsonValue *v = NULL;
  if (!report_json_member(obj, key, &v) || !report_json_is(v, REPORT_JSON_STRING) ||
      v->text[0] == '\0')
    return NULL;
  return g_strdup(v->text);
}

/* The "ingest" block of a normalized copy: where the report came from, and the
 * deviations it had when it arrived (the normalized copy has none of its own). Read in
 * the same pass as the report (report_parse_member()). */
static void
reindex_read_ingest(Report *r, const ReportJsonValue *in, gpointer user_data)
{
  if (!report_json_is(in, REPORT_JSON_OBJECT))
    return;
  ReportIngest *ing = &r->ingest;
  ing->source = reindex_string(in, "source");
  ing->submitter = reindex_string(in, "submitter");
  ing->report_domain = reindex_string(in, "report-domain");
  ing->filename = reindex_string(in, "filename");
  ing->message_id = reindex_string(in, "message-id");
  ing->raw_extension = reindex_string(in, "raw-format");
  ing->dkim = reindex_string(in, "dkim");
  ing->dkim_domain = reindex_string(in, "dkim-domain");
  g_autofree char *received = reindex_string(in, "received");
  gboolean zoneless;
  if (received != NULL)
    report_datetime_parse(received, &ing->received, &zoneless);
  g_autofree char *key = reindex_string(in, "key");
  if (key != NULL)
    keyset_key_from_hex(key, strlen(key), r->key);
  const ReportJsonValue *devs = NULL;
  if (!report_json_member(in, "deviations", &devs) || !report_json_is(devs, REPORT_JSON_ARRAY))
    return;
  /* {"slug", "text"} objects; the texts alone in stores older than the slugs. */
  g_array_set_size(r->deviations, 0);
  for (guint32 i = 0; i < devs->n; i++) {
    const ReportJsonValue *d = devs->u.items[i];
    ReportDeviation dev;
    g_autofree char *slug = NULL;
    if (report_json_is(d, REPORT_JSON_STRING)) {
      if (report_deviation_from_text(d->text, &dev))
        report_deviations_add(r->deviations, dev);
    } else if (report_json_is(d, REPORT_JSON_OBJECT) &&
               (slug = reindex_string(d, "slug")) != NULL &&
               report_deviation_from_slug(slug, &dev)) {
      report_deviations_add(r->deviations, dev);
    }
  }
}

Report *
reindex_read_report(const char *path, GError **error)
{
  /* A stored report is the store's own file: no size bound of its own, a symlink
   * followed as open() does. */
  g_autoptr(GBytes) json = source_read_file(AT_FDCWD, path, TRUE, G_MAXSSIZE, NULL, NULL,
                                            error);
  if (json == NULL)
    return NULL;
  TrLimits limits;
  tr_limits_init(&limits);
  Report *r = report_parse_member(json, &limits, "ingest", reindex_read_ingest, NULL, error);
  if (r == NULL)
    g_prefix_error(error, "%s: ", path);
  return r;
}

static gint
reindex_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The kind of the entry @name of the directory @dfd: from readdir()'s d_type, so that
 * the walk needs no stat() per entry; lstat() (or, for a symbolic link to a report
 * file, stat()) only where the file system does not say. */
typedef enum { REINDEX_OTHER, REINDEX_DIR, REINDEX_FILE } ReindexKind;

static ReindexKind
reindex_kind(int dfd, const struct dirent *de, gboolean follow)
{
  unsigned char t = de->d_type;
  struct stat st;
  if (t == DT_UNKNOWN) {
    if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      return REINDEX_OTHER;
    t = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG
                                     : S_ISLNK(st.st_mode) ? DT_LNK : DT_UNKNOWN;
  }
  if (t == DT_LNK && follow && fstatat(dfd, de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
    return REINDEX_FILE;
  return t == DT_DIR ? REINDEX_DIR : t == DT_REG ? REINDEX_FILE : REINDEX_OTHER;
}

/* Every "*.json" below STORE/<domain>/YYYY/MM/DD/, in name order, into @paths (the
 * directories are not followed through symbolic links; the report files are). */
static void
reindex_walk(GPtrArray *paths, const char *dir, guint depth)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  int dfd = dirfd(d);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GArray) kinds = g_array_new(FALSE, FALSE, sizeof(guint8));
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *name = de->d_name;
    if (name[0] == '.')
      continue;
    if (depth == 0 && strcmp(name, "quarantine") == 0)
      continue;
    if (depth == 4 && !g_str_has_suffix(name, ".json"))
      continue;
    ReindexKind kind = reindex_kind(dfd, de, depth == 4);
    if (kind != (depth < 4 ? REINDEX_DIR : REINDEX_FILE))
      continue;
    g_ptr_array_add(names, g_strdup(name));
  }
  closedir(d);
  g_ptr_array_sort(names, reindex_cmp);
  for (guint i = 0; i < names->len; i++) {
    char *path = g_build_filename(dir, (const char *) names->pdata[i], NULL);
    if (depth < 4) {
      reindex_walk(paths, path, depth + 1);
      g_free(path);
    } else {
      g_ptr_array_add(paths, path);
    }
  }
}

/* The reports are parsed on worker threads (one per processor) and inserted by the
 * caller's thread, in the walk's order, so the index is the same as a single-threaded
 * run's. The workers stay at most REINDEX_AHEAD files ahead of the inserts. */
#define REINDEX_AHEAD 512
#define REINDEX_WORKERS_MAX 8

typedef struct {
  GPtrArray *paths;             /* char*, the walk's order */
  Report **reports;             /* [i]: parsed, or NULL with errors[i] */
  GError **errors;
  gboolean *ready;
  guint next;                   /* the next path a worker takes */
  guint consumed;               /* the paths the inserter is done with */
  gboolean quit;
  guint workers_waiting;
  gboolean main_waiting;
  GMutex lock;
  GCond work_cond;              /* consumed moved on, or quit */
  GCond ready_cond;             /* a report was parsed while main_waiting */
} ReindexPool;

static gpointer
reindex_worker_main(gpointer data)
{
  ReindexPool *pool = data;
  g_mutex_lock(&pool->lock);
  for (;;) {
    while (!pool->quit && pool->next < pool->paths->len &&
           pool->next >= pool->consumed + REINDEX_AHEAD) {
      pool->workers_waiting++;
      g_cond_wait(&pool->work_cond, &pool->lock);
      pool->workers_waiting--;
    }
    if (pool->quit || pool->next >= pool->paths->len)
      break;
    guint i = pool->next++;
    g_mutex_unlock(&pool->lock);
    GError *err = NULL;
    Report *r = reindex_read_report(pool->paths->pdata[i], &err);
    g_mutex_lock(&pool->lock);
    pool->reports[i] = r;
    pool->errors[i] = err;
    pool->ready[i] = TRUE;
    if (pool->main_waiting)
      g_cond_signal(&pool->ready_cond);
  }
  g_mutex_unlock(&pool->lock);
  return NULL;
}

/* Insert every report of @paths into @db (transactions of REINDEX_BATCH). */
static gboolean
reindex_insert_all(TrDb *db, GPtrArray *paths, gboolean progress, ReindexStats *stats,
                   GError **error)
{
  guint n = paths->len;
  ReindexPool pool = { .paths = paths };
  pool.reports = g_new0(Report *, n + 1);
  pool.errors = g_new0(GError *, n + 1);
  pool.ready = g_new0(gboolean, n + 1);
  g_mutex_init(&pool.lock);
  g_cond_init(&pool.work_cond);
  g_cond_init(&pool.ready_cond);
  GThread *threads[REINDEX_WORKERS_MAX];
  guint n_threads = 0;
  guint want = MIN((guint) g_get_num_processors(), REINDEX_WORKERS_MAX);
  for (guint i = 0; want > 1 && i < want; i++) {
    GThread *t = g_thread_try_new("tlsrpt-reindex", reindex_worker_main, &pool, NULL);
    if (t == NULL)
      break;
    threads[n_threads++] = t;
  }
  gboolean ok = TRUE;
  guint in_txn = 0;
  for (guint i = 0; ok && i < n; i++) {
    Report *r;
    GError *rerr;
    if (n_threads == 0) {
      rerr = NULL;
      r = reindex_read_report(paths->pdata[i], &rerr);
    } else {
      g_mutex_lock(&pool.lock);
      while (!pool.ready[i]) {
        pool.main_waiting = TRUE;
        g_cond_wait(&pool.ready_cond, &pool.lock);
      }
      pool.main_waiting = FALSE;
      r = g_steal_pointer(&pool.reports[i]);
      rerr = g_steal_pointer(&pool.errors[i]);
      pool.consumed = i + 1;
      if (pool.workers_waiting > 0)
        g_cond_broadcast(&pool.work_cond);
      g_mutex_unlock(&pool.lock);
    }
    if (r == NULL) {
      tr_log_warn("reindex: skipped %s", rerr->message);
      g_error_free(rerr);
      stats->skipped++;
      continue;
    }
    gboolean inserted = FALSE;
    ok = (in_txn > 0 || db_begin(db, error)) && db_insert_report(db, r, &inserted, error);
    report_free(r);
    if (!ok)
      break;
    stats->reports += inserted;
    if (++in_txn >= REINDEX_BATCH) {
      ok = db_commit(db, error);
      in_txn = 0;
    }
    if (progress && inserted && stats->reports % 1000 == 0)
      tr_log_progress("indexing the store: %u reports", stats->reports);
  }
  g_mutex_lock(&pool.lock);
  pool.quit = TRUE;
  g_cond_broadcast(&pool.work_cond);
  g_mutex_unlock(&pool.lock);
  for (guint i = 0; i < n_threads; i++)
    g_thread_join(threads[i]);
  for (guint i = 0; i < n; i++) {
    if (pool.reports[i] != NULL)
      report_free(pool.reports[i]);
    if (pool.errors[i] != NULL)
      g_error_free(pool.errors[i]);
  }
  g_free(pool.reports);
  g_free(pool.errors);
  g_free(pool.ready);
  g_mutex_clear(&pool.lock);
  g_cond_clear(&pool.work_cond);
  g_cond_clear(&pool.ready_cond);
  return ok;
}

gboolean
reindex_store(const char *store_dir, const char *db_path, double lock_timeout,
              gboolean progress, ReindexStats *stats, GError **error)
{
  memset(stats, 0, sizeof *stats);
  g_autofree char *final = db_path != NULL ? g_strdup(db_path)
                                           : sink_sqlite_default_path(store_dir);
  g_autoptr(Store) store = store_open(store_dir, NULL, error);
  if (store == NULL)
    return FALSE;
  if (!store_lock(store, lock_timeout, error))
    return FALSE;
  g_autofree char *tmp = g_strdup_printf("%s.new-%d", final, (int) getpid());
  g_autofree char *tmp_wal = g_strconcat(tmp, "-wal", NULL);
  g_autofree char *tmp_shm = g_strconcat(tmp, "-shm", NULL);
  unlink(tmp);
  unlink(tmp_wal);
  unlink(tmp_shm);
  gboolean ok = FALSE;
  {
    g_autoptr(TrDb) db = db_open_write(tmp, DB_SYNC_DEFERRED, NULL, error);
    if (db == NULL)
      goto out;
    /* A new file no one reads before it is complete and fsynced below: no sync per
     * checkpoint. */
    if (!db_exec(db, "PRAGMA synchronous = OFF", error) ||
        !db_read_indexes_set(db, FALSE, error))
      goto out;
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    reindex_walk(paths, store_dir, 0);
    if (!reindex_insert_all(db, paths, progress, stats, error))
      goto out;
    if (!db_commit(db, error) || !db_read_indexes_set(db, TRUE, error) ||
        !db_set_meta(db, "complete", "1", error))
      goto out;
    /* Everything into the main file, then one file to rename. */
    if (!db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", error))
      goto out;
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || !fsutil_fsync_fd(fd, tmp, error)) {
      if (fd < 0)
        fsutil_set_error_errno(error, errno, "open", tmp);
      else
        close(fd);
      goto out;
    }
    close(fd);
  }
  /* The old log and shared memory belong to the old file: remove them first, so that
   * the new file is never read with the old file's log. */
  {
    g_autofree char *wal = g_strconcat(final, "-wal", NULL);
    g_autofree char *shm = g_strconcat(final, "-shm", NULL);
    unlink(tmp_wal);
    unlink(tmp_shm);
    unlink(wal);
    unlink(shm);
    if (rename(tmp, final) != 0) {
      fsutil_set_error_errno(error, errno, "rename", final);
      goto out;
    }
    g_autofree char *dir = g_path_get_dirname(final);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsutil_fsync_fd(dfd, dir, NULL);
      close(dfd);
    }
  }
  ok = TRUE;
out:
  if (!ok) {
    unlink(tmp);
    unlink(tmp_wal);
    unlink(tmp_shm);
  }
  if (progress)
    tr_log_progress("%s", "");
  store_unlock(store);
  return ok;
}

TrDb *
reindex_open_read(const char *store_dir, const char *db_path, gboolean progress,
                  GError **error)
{
  g_autofree char *path = db_path != NULL ? g_strdup(db_path)
                                          : sink_sqlite_default_path(store_dir);
  GError *local = NULL;
  TrDb *db = db_open_read(path, &local);
  gboolean stale = FALSE;
  if (db != NULL) {
    g_autofree char *complete = db_get_meta(db, "complete");
    stale = g_strcmp0(complete, "1") != 0;
    if (!stale)
      return db;
  } else if (!(local->domain == DB_ERROR && local->code == DB_ERROR_MISSING)) {
    g_propagate_error(error, local);
    return NULL;
  }
  /* No index, or one started after the store had reports: build it from the tree,
   * when there is a tree to build it from and the store can be written. */
  g_autofree char *index = g_build_filename(store_dir, ".index", NULL);
  gboolean has_store = g_file_test(index, G_FILE_TEST_EXISTS);
  if (!has_store && db == NULL) {
    g_clear_error(&local);
    if (!g_file_test(store_dir, G_FILE_TEST_IS_DIR)) {
      g_set_error(error, DB_ERROR, DB_ERROR_MISSING,
                  "%s: no store here (give --store DIR, or ingest some reports first)",
                  store_dir);
      return NULL;
    }
    g_set_error(error, DB_ERROR, DB_ERROR_MISSING, "%s: empty store", store_dir);
    return NULL;
  }
  if (db_path == NULL && access(store_dir, W_OK) == 0) {
    g_clear_error(&local);
    g_clear_pointer(&db, db_close);
    ReindexStats stats;
    if (!reindex_store(store_dir, NULL, 60, progress, &stats, error))
      return NULL;
    return db_open_read(path, error);
  }
  if (db != NULL) {
    tr_log_warn("%s does not hold every report of the store yet (run tlsrpt-ingest "
                "reindex)", path);
    return db;
  }
  g_propagate_error(error, local);
  g_prefix_error(error, "cannot build the index of a read-only store: ");
  return NULL;
}
