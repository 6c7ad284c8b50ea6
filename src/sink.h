/* sink.h - where reports go. One implementation per file (sink-tree.c, sink-csv.c,
 * sink-jsonl.c), found by name in a NULL-terminated registry.
 *
 * The phases of a commit, driven by the pipeline under the store lock:
 *   1. stage: write() takes each new report of the batch (one sink after the other,
 *      each the whole batch). Nothing is visible as stored yet; a sink may write part
 *      of a large batch out early (to bound its memory). A report given to write()
 *      stays valid and unchanged until the flush() or rollback() that ends its commit
 *      (the sqlite sink reads it on its writer thread meanwhile).
 *   2. write out: flush() puts everything staged into the sink's files. A sink either
 *      makes it durable itself here (fsync: CSV, JSON Lines) or hands each file and
 *      directory it wrote to the StoreSync it was opened with (store_sync_fd(), ...:
 *      the tree), never both for the same bytes. A sink with flush_alongside (the tree)
 *      may be flushed on a thread of its own while the sinks after it stage and flush.
 *   3. durable at the store's commit: store_commit() appends the index lines and runs
 *      the StoreSync (everything handed in, one fsync each or one syncfs()), then
 *      clears the journal: the commit point. Nothing is acknowledged before it.
 * rollback() may come at any time before the commit point (also after flush(), when a
 * later sink or the store's commit failed): the sink drops what it staged and removes
 * or truncates what it wrote out for the commit in flight, never what an earlier
 * commit wrote (store_sync_commit_count() tells whether one ended since). An append-only
 * file a sink extends is also named by journal_path(), so that a crash before the
 * commit point is undone by the store's journal.
 * open() gets the options and the StoreSync (transfer none, valid until close()); the
 * sink never sees the Store itself. A sink never logs; it returns errors
 * (SINK_ERROR_IO / G_IO_ERROR). */
#ifndef TLSRPT_SINK_H
#define TLSRPT_SINK_H

#include "common.h"
#include "report.h"
#include "store-sync.h"

/* What a sink is given: only its own settings. */
typedef struct {
  const char *path;       /* csv, jsonl: the file ("-" = standard output); sqlite: the
                             file, NULL for STORE/reports.sqlite; tree: NULL */
  gboolean csv_raw;       /* csv: values exactly as sent (--csv-raw, docs/csv.md) */
  const char *conninfo;   /* postgres: the connection string (--postgres) */
  gboolean one_commit;    /* the run makes one commit (mda): work a sink would do after
                             it (sqlite: the checkpoint) may run alongside its sync */
} SinkConfig;

typedef struct {
  const char *name;       /* "tree", "csv", "jsonl", "sqlite", "postgres" */
  gpointer (*open)(const SinkConfig *config, StoreSync *sync, GError **error);
  gboolean (*write)(gpointer self, const Report *report, GError **error);
  gboolean (*flush)(gpointer self, GError **error);
  void (*rollback)(gpointer self);
  /* The append-only file this sink extends (for the store journal), or NULL. */
  const char *(*journal_path)(gpointer self);
  void (*close)(gpointer self);
  /* flush() may run on a thread of its own while the pipeline gives the batch to the
   * other sinks and flushes them, when the commit ends with syncfs() (store_sync_each()
   * FALSE once this sink took the batch): such a flush then only reads the StoreSync,
   * and shares nothing else with the other sinks. */
  gboolean flush_alongside;
} SinkOps;

extern const SinkOps sink_tree_ops;
extern const SinkOps sink_csv_ops;
extern const SinkOps sink_jsonl_ops;
extern const SinkOps sink_sqlite_ops;
extern const SinkOps sink_postgres_ops;

/* Where the "sqlite" sink keeps the index of the store @store_dir by default:
 * STORE/reports.sqlite. (transfer full) */
char *sink_sqlite_default_path(const char *store_dir);

/* NULL-terminated registry, and lookup by name (NULL if unknown). */
extern const SinkOps *const sink_registry[];
const SinkOps *sink_find(const char *name);

/* CSV header (no newline) and rows of one report, RFC 4180, exported for `query`. */
extern const char sink_csv_header[];
void sink_csv_format_rows(const Report *report, GString *out);
/* The same with every value exactly as sent (--csv-raw). */
void sink_csv_format_rows_raw(const Report *report, GString *out);
/* Record in @report's deviations what the CSV (not raw) changes in its values, once
 * per column and kind: "csv: formula-like value neutralized in organization-name",
 * "csv: control characters replaced in failure-reason-code" (docs/csv.md). The
 * pipeline calls it, before any sink writes the report, when the run writes a CSV
 * without --csv-raw. */
void sink_csv_note_deviations(Report *report);

/* Shared by the CSV and JSON Lines sinks for "-": write and flush standard output (no
 * lock, no fsync). Returns FALSE + G_IO_ERROR. */
gboolean sink_write_stdout(const char *data, gsize len, GError **error);

#endif
