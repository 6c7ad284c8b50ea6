/* exit.h - the process exit codes, their table, and the one mapping from an error to a
 * code. docs/exit-codes.md holds the same table as `tlsrpt-ingest --help` prints
 * (tests/cli/008-* compares them). */
#ifndef TLSRPT_EXIT_H
#define TLSRPT_EXIT_H

#include <glib.h>
#include <stdio.h>

enum {
  TR_EXIT_OK = 0,             /* every message stored, duplicate or not a report */
  TR_EXIT_QUARANTINED = 1,    /* batch: some messages quarantined */
  TR_EXIT_USAGE_BATCH = 2,    /* batch: usage or config error */
  TR_EXIT_AUTH = 3,           /* imap: authentication refused */
  TR_EXIT_TLS = 4,            /* imap: certificate / TLS failure */
  TR_EXIT_LOCKED = 5,         /* imap: another poller holds the mailbox */
  TR_EXIT_SKIPPED = 6,        /* batch: some messages skipped, left where they are */
  TR_EXIT_STORE_DAMAGED = 7,  /* batch: the store needs a repair by hand (the log says how) */
  TR_EXIT_TEMPFAIL = 75,      /* EX_TEMPFAIL: not stored durably, retry; mda: any failure */
};

/* Who is told the code: a batch command (cron, systemd, a shell), an MTA delivering
 * one message (mda: every failure to store is 75, so the MTA keeps the message), or a
 * long-running poller (imap --watch: as batch). */
typedef enum {
  TR_MODE_BATCH,
  TR_MODE_MDA,
  TR_MODE_WATCH,
} TrExitMode;

/* The exit code for a run that ended with @error (nullable: TR_EXIT_OK). The
 * transient/permanent decision is tr_error_classify()'s (common.h). */
int tr_exit_for(const GError *error, TrExitMode mode);

/* The exit code of a batch run that ended without an error but quarantined or skipped
 * messages (skipped wins: those messages are still where they were). */
int tr_exit_for_outcome(guint quarantined, guint skipped, TrExitMode mode);

/* One row of the table. */
typedef struct {
  int code;
  const char *commands;       /* "all", "maildir, mbox, file, imap", "mda" ... */
  const char *meaning;
  const char *action;         /* what to do */
} TrExitInfo;

/* Every code, in order; NULL-terminated by a row with meaning NULL. */
extern const TrExitInfo tr_exit_table[];

/* The table as --help shows it, one row a line:
 * "  CODE  COMMANDS: MEANING. What to do: ACTION." */
void tr_exit_print_table(FILE *out);

#endif
