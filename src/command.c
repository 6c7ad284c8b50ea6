/* command.c - the command registry: one line per command; and the option groups
 * whose keys a shared config file may hold. */
#include "command.h"

#include "cli.h"

const TrCommand *const tr_commands[] = {
  &cmd_mda,
  &cmd_maildir,
  &cmd_mbox,
  &cmd_file,
  &cmd_imap,
  &cmd_record,
  &cmd_serve,
  &cmd_summary,
  &cmd_show,
  &cmd_explain,
  &cmd_check,
  &cmd_metrics,
  &cmd_report,
  &cmd_reindex,
  NULL,
};

const TrCommand *
tr_command_find(const char *name)
{
  for (gsize i = 0; tr_commands[i] != NULL; i++)
    if (g_strcmp0(tr_commands[i]->name, name) == 0)
      return tr_commands[i];
  return NULL;
}

/* cmd-ingest.c */
extern const CliGroup cmd_ingest_maildir_group, cmd_ingest_imap_group;
/* cmd-record.c */
extern const CliGroup cmd_record_mailbox_group;
/* cmd-serve.c */
extern const CliGroup cmd_serve_group;
/* cmd-summary.c */
extern const CliGroup cmd_summary_group;

/* Every option group a config file may set: a key of a group the running command does
 * not take is accepted and ignored (cli.h). A command whose own options belong in the
 * config file adds its group here. */
const CliGroup *const cli_config_groups[] = {
  &cli_group_store,
  &cli_group_outputs,
  &cli_group_limits,
  &cli_group_read,
  &cli_group_thresholds,
  &cli_group_trust,
  &cmd_ingest_maildir_group,
  &cmd_ingest_imap_group,
  &cmd_record_mailbox_group,
  &cmd_serve_group,
  &cmd_summary_group,
  NULL,
};
