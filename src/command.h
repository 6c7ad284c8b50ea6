/* command.h - the command registry. A command is one file (cmd-NAME.c; the ingestion
 * family is cmd-ingest.c) with a run() function, plus one line in command.c. Its
 * options are parsed with cli_parse() (cli.h). cli.c dispatches: it finds the command
 * by name and hands it the rest of argv. */
#ifndef TLSRPT_COMMAND_H
#define TLSRPT_COMMAND_H

#include "common.h"

typedef struct TrCommand TrCommand;

struct TrCommand {
  const char *name;           /* "summary" */
  const char *args;           /* parameter string shown by usage and --help: "[OPTION...]" */
  const char *summary;        /* first sentence goes into the top-level usage */
  /* argv[0] is the command's name, argv[1..] its own arguments.
   * Returns the process exit code (an owner of exit codes decides them: see common.h). */
  int (*run)(const TrCommand *cmd, int argc, char **argv);
  gconstpointer data;         /* the command's own static data (transfer none) */
};

/* Every command, in the order the usage lists them; NULL-terminated. */
extern const TrCommand *const tr_commands[];

/* (transfer none) the command called @name, or NULL. */
const TrCommand *tr_command_find(const char *name);

/* ---- one line per command file ------------------------------------------ */
/* cmd-ingest.c: mda, maildir, mbox, file, imap */
extern const TrCommand cmd_mda, cmd_maildir, cmd_mbox, cmd_file, cmd_imap;
extern const TrCommand cmd_record; /* cmd-record.c */
extern const TrCommand cmd_serve;  /* cmd-serve.c */
extern const TrCommand cmd_reindex; /* cmd-reindex.c */
extern const TrCommand cmd_summary; /* cmd-summary.c */
extern const TrCommand cmd_show;    /* cmd-show.c */
extern const TrCommand cmd_explain; /* cmd-explain.c */
extern const TrCommand cmd_check;   /* cmd-check.c */
extern const TrCommand cmd_metrics; /* cmd-metrics.c */
extern const TrCommand cmd_report;  /* cmd-report.c */

#endif
