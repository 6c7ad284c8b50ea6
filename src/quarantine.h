/* quarantine.h - where messages that hold no valid report are kept, whole:
 *   QDIR/<first 16 hex digits of SHA-256 of the message>.eml   the message as read
 *   QDIR/<same>.reason                                        origin, received, reason
 * QDIR is --quarantine, or STORE/quarantine. Layout: docs/store.md. */
#ifndef TLSRPT_QUARANTINE_H
#define TLSRPT_QUARANTINE_H

#include "common.h"
#include "store-sync.h"

typedef struct Quarantine Quarantine;

/* Where the quarantine of the store @store_dir is: @quarantine_dir, or
 * STORE/quarantine when it is NULL. (transfer full) */
char *quarantine_path(const char *store_dir, const char *quarantine_dir);

/* The quarantine of the store at @store_path / @store_fd (borrowed: outlives it),
 * in @quarantine_dir (nullable: STORE/quarantine). Opens nothing yet. (transfer full) */
Quarantine *quarantine_new(const char *store_path, int store_fd, const char *quarantine_dir);
void quarantine_free(Quarantine *q);

/* Copy @message to the quarantine: "<sha>.eml" (idempotent: the same bytes give the
 * same name, written again whole) and "<sha>.reason" with the origin, time and @reason
 * lines. A message quarantined before keeps the origin recorded first (re-examining the
 * quarantine reads it from the quarantine itself). Inside a commit (@sync non-NULL) the
 * files are made durable by the commit's sync; outside one each is written durably at
 * once. Returns the path of the .eml (transfer full) or NULL + STORE_ERROR_IO. */
char *quarantine_put(Quarantine *q, StoreSync *sync, GBytes *message, const char *origin,
                     const char *reason, GError **error);

/* Remove the ".tmp-*" files that killed writers left in the quarantine (see
 * fsutil_sweep_tmp(): never a live writer's). Also done once per run when the
 * quarantine is first opened for writing. Returns how many were removed. */
guint quarantine_sweep(Quarantine *q);

#endif
