/* cmd-explain.c - `tlsrpt-ingest explain`: what each result type means, its usual
 * cause, the fix, and the commands that diagnose it (result-type.h). */
#include "command.h"

#include "cli.h"
#include "render.h"

#include <stdio.h>

typedef struct {
  char *domain;
  char *mx;
} ExplainArgs;

static const GOptionEntry cmd_explain_entries[] = {
  { "domain", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(ExplainArgs, domain),
    "Your policy domain, filled into the diagnosis commands", "D" },
  { "mx", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(ExplainArgs, mx),
    "The MX host to diagnose, filled into the commands", "HOST" },
  { NULL },
};
static const CliGroup cmd_explain_group = { "explain", "Explain options", cmd_explain_entries,
                                            FALSE };
static const CliGroup *const cmd_explain_groups[] = { &cmd_explain_group, NULL };

static int
cmd_explain_run(const TrCommand *cmd, int argc, char **argv)
{
  ExplainArgs own = { 0 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, cmd_explain_groups, &own, &common, argc, argv, &rc))
    return rc;
  g_autofree char *domain = own.domain, *mx = own.mx;
  if (common.n_args > 1)
    return cli_usage_error(cmd, TR_MODE_BATCH, "takes at most one result type");
  g_autoptr(GString) out = g_string_new(NULL);
  render_explain_text(common.n_args == 1 ? common.args[0] : NULL, domain, mx, out);
  fwrite(out->str, 1, out->len, stdout);
  return fflush(stdout) == 0 ? TR_EXIT_OK : 1;
}

const TrCommand cmd_explain = {
  "explain", "[RESULT-TYPE]",
  "Say what a TLS-RPT result type means: what failed, the usual cause, the fix and the "
  "commands that diagnose it (--domain and --mx fill in your names). Without a type, "
  "all eleven of RFC 8460.",
  cmd_explain_run, NULL,
};
