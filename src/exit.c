/* exit.c - the exit codes' table and the one mapping from an error to a code. */
#include "common.h"

const TrExitInfo tr_exit_table[] = {
  { TR_EXIT_OK, "all",
    "every message was stored, was a duplicate, or was not a report; in mda also: "
    "quarantined",
    "nothing" },
  { TR_EXIT_QUARANTINED, "maildir, mbox, file, imap",
    "some messages were quarantined: kept in STORE/quarantine/ with a .reason file, and "
    "acknowledged",
    "read the .reason files" },
  { TR_EXIT_USAGE_BATCH, "all but mda",
    "usage or config error (bad option or value, unknown config key, empty or missing "
    "path, output directory missing, no password given, an IMAP folder the server "
    "refuses to create or copy into); nothing was read, or (a folder refused at the "
    "acknowledgement) nothing more is acknowledged",
    "fix the command or the config file named in the message" },
  { TR_EXIT_AUTH, "imap",
    "the server refused the login, or no OAuth2 access token could be had (the token "
    "command failed, timed out or printed none; the token file is unreadable)",
    "check user and password, or run the token command by hand" },
  { TR_EXIT_TLS, "imap", "TLS or certificate failure (untrusted, expired, STARTTLS refused)",
    "--cacert, or fix the server" },
  { TR_EXIT_LOCKED, "imap", "another poller holds this mailbox's lock",
    "let it finish; don't overlap timers" },
  { TR_EXIT_SKIPPED, "maildir, mbox, file, imap",
    "some messages were skipped and left where they are (over --max-message-size, "
    "unreadable); the summary line counts them as skipped=N; wins over 1",
    "read the 'skipped' lines; raise the limit or fix the file" },
  { TR_EXIT_STORE_DAMAGED, "maildir, mbox, file, imap",
    "the store cannot recover by itself (an implausible commit journal); nothing was "
    "stored",
    "do what the message says, then run again" },
  { TR_EXIT_TEMPFAIL, "all",
    "temporary failure (EX_TEMPFAIL): store unwritable, disk full, lock timeout, network; "
    "batch commands stop and leave every message not yet stored untouched (not_stored=N); "
    "mda: any failure to store, usage and config errors included, so the MTA keeps the "
    "message queued",
    "MTAs retry by themselves; fix what the log says; rerun later" },
  { 0, NULL, NULL, NULL },
};

void
tr_exit_print_table(FILE *out)
{
  for (const TrExitInfo *e = tr_exit_table; e->meaning != NULL; e++)
    fprintf(out, "  %3d  %s: %s. What to do: %s.\n", e->code, e->commands, e->meaning,
            e->action);
}

int
tr_exit_for(const GError *error, TrExitMode mode)
{
  if (error == NULL)
    return TR_EXIT_OK;
  /* An MTA bounces every code but 75: a report would go back to its sender, lost. */
  if (mode == TR_MODE_MDA)
    return TR_EXIT_TEMPFAIL;
  if (error->domain == CLI_ERROR)
    return TR_EXIT_USAGE_BATCH;
  if (error->domain == SOURCE_ERROR) {
    switch ((SourceError) error->code) {
    case SOURCE_ERROR_AUTH:
      return TR_EXIT_AUTH;
    case SOURCE_ERROR_TLS:
      return TR_EXIT_TLS;
    case SOURCE_ERROR_LOCKED:
      return TR_EXIT_LOCKED;
    case SOURCE_ERROR_NOT_FOUND:
    case SOURCE_ERROR_CONFIG:
      return TR_EXIT_USAGE_BATCH;
    default:
      break;
    }
  }
  if (error->domain == STORE_ERROR && error->code == STORE_ERROR_CORRUPT)
    return TR_EXIT_STORE_DAMAGED;
  /* Anything else that ends a run: transient by tr_error_classify(), or a permanent
   * error of a single message that should never reach here; either way nothing that
   * was not stored was acknowledged, so a retry is safe. */
  return TR_EXIT_TEMPFAIL;
}

int
tr_exit_for_outcome(guint quarantined, guint skipped, TrExitMode mode)
{
  if (mode == TR_MODE_MDA)
    return TR_EXIT_OK;
  if (skipped > 0)
    return TR_EXIT_SKIPPED;
  if (quarantined > 0)
    return TR_EXIT_QUARANTINED;
  return TR_EXIT_OK;
}
