/* sink.h - where reports go. One implementation per file (sink-tree.c, sink-csv.c,
 * sink-jsonl.c), found by name in a NULL-terminated registry.
 *
 * Protocol, driven by the pipeline under the store lock:
 *   write()* stages reports (not durable yet) -> flush() makes all of them durable
 *   (the one durability point) or rollback() discards what was staged since the last
 *   flush. A sink never logs; it returns errors (SINK_ERROR_IO / G_IO_ERROR). */
#ifndef TLSRPT_SINK_H
#define TLSRPT_SINK_H

#include "common.h"
#include "report.h"
#include "store.h"

typedef struct {
  const char *name;       /* "tree", "csv", "jsonl" */
  gpointer (*open)(const TrOptions *opts, Store *store, GError **error);
  gboolean (*write)(gpointer self, const Report *report, GError **error);
  gboolean (*flush)(gpointer self, GError **error);
  void (*rollback)(gpointer self);
  /* The append-only file this sink extends (for the store journal), or NULL. */
  const char *(*journal_path)(gpointer self);
  void (*close)(gpointer self);
} SinkOps;

extern const SinkOps sink_tree_ops;
extern const SinkOps sink_csv_ops;
extern const SinkOps sink_jsonl_ops;

/* NULL-terminated registry, and lookup by name (NULL if unknown). */
extern const SinkOps *const sink_registry[];
const SinkOps *sink_find(const char *name);

/* CSV header (no newline) and rows of one report, RFC 4180, exported for `query`. */
extern const char sink_csv_header[];
void sink_csv_format_rows(const Report *report, GString *out);

/* Shared by the CSV and JSON Lines sinks for "-": write and flush standard output (no
 * lock, no fsync). Returns FALSE + G_IO_ERROR. */
gboolean sink_write_stdout(const char *data, gsize len, GError **error);

#endif
