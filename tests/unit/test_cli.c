/* test_cli.c - cli_parse(): a command's own group and the shared ones, the config file
 * applied through them, keys of other commands ignored, the command line winning. */
#include "testutil.h"

#include "cli.h"

#include <sys/stat.h>

typedef struct {
  char *domain;
  gboolean json;
  int days;
} OwnArgs;

static const GOptionEntry own_entries[] = {
  { "domain", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(OwnArgs, domain), "Domain", "DOMAIN" },
  { "json", 0, 0, G_OPTION_ARG_NONE, CLI_FIELD(OwnArgs, json), "JSON", NULL },
  { "days", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(OwnArgs, days), "Days", "N" },
  { NULL },
};
static const CliGroup own_group = { "own", "Own options", own_entries, FALSE };
static const CliGroup *const own_groups[] = { &cli_group_store, &own_group, NULL };
static const TrCommand own_cmd = { "own", "[ARG...]", "A test command.", NULL, NULL };

typedef struct {
  char *dir;
  char *config;
} Fx;

static int
setup(void **state)
{
  Fx *fx = g_new0(Fx, 1);
  fx->dir = tu_mkdtemp();
  fx->config = g_build_filename(fx->dir, "c.conf", NULL);
  *state = fx;
  return 0;
}

static int
teardown(void **state)
{
  Fx *fx = *state;
  tu_rmtree(fx->dir);
  g_free(fx->dir);
  g_free(fx->config);
  g_free(fx);
  return 0;
}

static gboolean
parse(Fx *fx, const char *config_text, const char *const *args, OwnArgs *own,
      CliCommon *common, int *rc)
{
  tu_write_file(fx->config, config_text, strlen(config_text));
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, (gpointer) "own");
  g_ptr_array_add(argv, (gpointer) "--config");
  g_ptr_array_add(argv, fx->config);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) args[i]);
  g_ptr_array_add(argv, NULL);
  return cli_parse(&own_cmd, own_groups, own, common, (int) argv->len - 1,
                   (char **) argv->pdata, rc);
}

/* The command's own options and the store group land in their structs; the config
 * file's keys apply through them, the command line wins; positional arguments kept. */
static void
test_own_and_shared_groups(void **state)
{
  Fx *fx = *state;
  OwnArgs own = { 0 };
  g_auto(CliCommon) c = CLI_COMMON_INIT;
  int rc = -1;
  const char *args[] = { "--domain", "cli.example", "-v", "-v", "one", "--", "-two", NULL };
  assert_true(parse(fx, "[tlsrpt-ingest]\nstore = /from/config\ndomain = conf.example\n"
                        "json = true\ndays = 7\n",
                    args, &own, &c, &rc));
  assert_string_equal(own.domain, "cli.example");
  assert_true(own.json);
  assert_int_equal(own.days, 7);
  assert_string_equal(c.store, "/from/config");
  assert_int_equal(c.verbose, 2);
  assert_int_equal(cli_verbosity(&c), 2);
  assert_int_equal(c.n_args, 2);
  assert_string_equal(c.args[0], "one");
  assert_string_equal(c.args[1], "-two");
  assert_string_equal(c.config_file, fx->config);
  g_free(own.domain);
}

/* Keys of options other commands take (an ingestion option here) are accepted and
 * ignored; a key nobody takes is a config error naming the file. */
static void
test_config_keys_of_other_commands(void **state)
{
  Fx *fx = *state;
  const char *none[] = { NULL };
  {
    OwnArgs own = { 0 };
    g_auto(CliCommon) c = CLI_COMMON_INIT;
    int rc = -1;
    assert_true(parse(fx, "[tlsrpt-ingest]\ncsv = /x.csv\nuser = bob\nmark-seen = true\n"
                          "max-parts = 3\n",
                      none, &own, &c, &rc));
    assert_null(c.csv);                 /* not a group this command takes */
    assert_int_equal(c.max_parts, CLI_UNSET);
  }
  {
    OwnArgs own = { 0 };
    g_auto(CliCommon) c = CLI_COMMON_INIT;
    int rc = -1;
    assert_false(parse(fx, "[tlsrpt-ingest]\nno-such-key = 1\n", none, &own, &c, &rc));
    assert_int_equal(rc, TR_EXIT_USAGE_BATCH);
  }
}

/* Every command takes -V. */
static void
test_version_per_command(void **state)
{
  Fx *fx = *state;
  OwnArgs own = { 0 };
  g_auto(CliCommon) c = CLI_COMMON_INIT;
  int rc = -1;
  const char *args[] = { "-V", NULL };
  assert_false(parse(fx, "[tlsrpt-ingest]\n", args, &own, &c, &rc));
  assert_true(c.version);
  assert_int_equal(rc, TR_EXIT_OK);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_own_and_shared_groups, setup, teardown),
    cmocka_unit_test_setup_teardown(test_config_keys_of_other_commands, setup, teardown),
    cmocka_unit_test_setup_teardown(test_version_per_command, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
