/* reindex.h - build the SQL index from the report tree (the tree is the truth).
 *
 * The new index is written to a temporary file beside the old one and renamed into
 * place once complete (and fsynced), under the store lock, so that no commit is in
 * flight meanwhile and a reader sees the old index or the new one, never half of it. */
#ifndef TLSRPT_REINDEX_H
#define TLSRPT_REINDEX_H

#include "common.h"
#include "db.h"
#include "report.h"

typedef struct {
  guint reports;              /* indexed */
  guint skipped;              /* .json files of the tree that are not reports (listed
                                 in the log, left alone) */
} ReindexStats;

/* Rebuild the index of the store @store_dir into @db_path (NULL: STORE/reports.sqlite).
 * With @progress, a progress line on a terminal. Returns FALSE + error (STORE_ERROR,
 * DB_ERROR, G_IO_ERROR); the old index is then left as it was. */
gboolean reindex_store(const char *store_dir, const char *db_path, double lock_timeout,
                       gboolean progress, ReindexStats *stats, GError **error);

/* Open the index of the store @store_dir (or @db_path) for reading. When there is none,
 * or it was started after the store held reports (not "complete"), and the store is
 * writable, build it first (@progress: a progress line on a terminal). An empty or
 * missing store is DB_ERROR_MISSING. (transfer full) */
TrDb *reindex_open_read(const char *store_dir, const char *db_path, gboolean progress,
                        GError **error);

/* Read one normalized report of the tree (its "ingest" block included). (transfer
 * full) or NULL + REPORT_ERROR / G_FILE_ERROR. */
Report *reindex_read_report(const char *path, GError **error);

#endif
