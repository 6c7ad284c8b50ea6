/* exit.h - the process exit codes and the one mapping from an error to a code.
 * Documented in docs/exit-codes.md; `tlsrpt-ingest --help` prints the same table. */
#ifndef TLSRPT_EXIT_H
#define TLSRPT_EXIT_H

#include <glib.h>

enum {
  TR_EXIT_OK = 0,             /* every message stored, duplicate or not a report */
  TR_EXIT_QUARANTINED = 1,    /* batch: some messages quarantined */
  TR_EXIT_USAGE_BATCH = 2,    /* batch: usage error */
  TR_EXIT_AUTH = 3,           /* imap: authentication refused */
  TR_EXIT_TLS = 4,            /* imap: certificate / TLS failure */
  TR_EXIT_LOCKED = 5,         /* imap: another poller holds the mailbox */
  TR_EXIT_USAGE = 64,         /* EX_USAGE (mda) */
  TR_EXIT_TEMPFAIL = 75,      /* EX_TEMPFAIL: not stored durably, retry */
  TR_EXIT_CONFIG = 78,        /* EX_CONFIG (mda) */
};

/* Who is told the code: a batch command (cron, systemd, a shell), an MTA delivering
 * one message (mda), or a long-running poller between two polls (--watch). */
typedef enum {
  TR_MODE_BATCH,
  TR_MODE_MDA,
  TR_MODE_WATCH,
} TrExitMode;

/* The exit code for a run that ended with @error (nullable: TR_EXIT_OK). */
int tr_exit_for(const GError *error, TrExitMode mode);

#endif
