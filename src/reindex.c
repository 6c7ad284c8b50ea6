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
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
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
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &data, &len, error))
    return NULL;
  g_autoptr(GBytes) json = g_bytes_new_take(g_steal_pointer(&data), len);
  TrLimits limits;
  tr_limits_init(&limits);
  Report *r = report_parse_member(json, &limits, "ingest", reindex_read_ingest, NULL, error);
  if (r == NULL)
    g_prefix_error(error, "%s: ", path);
  return r;
}

typedef struct {
  TrDb *db;
  ReindexStats *stats;
  gboolean progress;
  guint in_txn;
} Reindex;

static gint
reindex_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Every "*.json" below STORE/<domain>/YYYY/MM/DD/, in name order. */
static gboolean
reindex_walk(Reindex *rx, const char *dir, guint depth, GError **error)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return TRUE;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    if (name[0] == '.')
      continue;
    if (depth == 0 && strcmp(name, "quarantine") == 0)
      continue;
    g_ptr_array_add(names, g_strdup(name));
  }
  g_ptr_array_sort(names, reindex_cmp);
  for (guint i = 0; i < names->len; i++) {
    const char *n = names->pdata[i];
    g_autofree char *path = g_build_filename(dir, n, NULL);
    if (depth < 4) {
      if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK) &&
          !reindex_walk(rx, path, depth + 1, error))
        return FALSE;
      continue;
    }
    if (!g_str_has_suffix(n, ".json") || !g_file_test(path, G_FILE_TEST_IS_REGULAR))
      continue;
    g_autoptr(GError) rerr = NULL;
    g_autoptr(Report) r = reindex_read_report(path, &rerr);
    if (r == NULL) {
      tr_log_warn("reindex: skipped %s", rerr->message);
      rx->stats->skipped++;
      continue;
    }
    if (rx->in_txn == 0 && !db_begin(rx->db, error))
      return FALSE;
    gboolean inserted = FALSE;
    if (!db_insert_report(rx->db, r, &inserted, error))
      return FALSE;
    rx->stats->reports += inserted;
    if (++rx->in_txn >= REINDEX_BATCH) {
      if (!db_commit(rx->db, error))
        return FALSE;
      rx->in_txn = 0;
    }
    if (rx->progress && rx->stats->reports % 1000 == 0)
      tr_log_progress("indexing the store: %u reports", rx->stats->reports);
  }
  return TRUE;
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
    if (!db_exec(db, "PRAGMA synchronous = OFF", error))
      goto out;
    Reindex rx = { .db = db, .stats = stats, .progress = progress };
    if (!reindex_walk(&rx, store_dir, 0, error))
      goto out;
    if (!db_commit(db, error) || !db_set_meta(db, "complete", "1", error))
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
