/* command.c - the command registry: one line per command. */
#include "command.h"

const TrCommand *const tr_commands[] = {
  &cli_cmd_mda,
  &cli_cmd_maildir,
  &cli_cmd_mbox,
  &cli_cmd_file,
  &cli_cmd_imap,
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
