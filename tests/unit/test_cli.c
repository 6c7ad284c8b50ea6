/* test_cli.c - cli_parse(): a command's own group and the shared ones, the config file
 * applied through them, keys of other commands ignored, the command line winning. */
#include "testutil.h"

#include "cli.h"
#include "cli-read.h"

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

/* argv of the test command: --config with @config_text written, then @args. */
static GPtrArray *
config_argv(Fx *fx, const char *config_text, const char *const *args)
{
  tu_write_file(fx->config, config_text, strlen(config_text));
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (gpointer) "own");
  g_ptr_array_add(argv, (gpointer) "--config");
  g_ptr_array_add(argv, fx->config);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) args[i]);
  g_ptr_array_add(argv, NULL);
  return argv;
}

static gboolean
parse(Fx *fx, const char *config_text, const char *const *args, OwnArgs *own,
      CliCommon *common, int *rc)
{
  g_autoptr(GPtrArray) argv = config_argv(fx, config_text, args);
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

/* The reading commands' shared group: window, filters and thresholds into QueryParams,
 * each wrong value named, a config file's value blamed on the file. */
static const CliGroup *const read_groups[] = { &cli_group_store, &cli_group_read,
                                               &cli_group_thresholds, NULL };

static gboolean
parse_read(Fx *fx, const char *config_text, const char *const *args, CliCommon *c,
           int default_days, CliRead *r, GError **error)
{
  g_autoptr(GPtrArray) argv = config_argv(fx, config_text, args);
  int rc = -1;
  assert_true(cli_parse(&own_cmd, read_groups, NULL, c, (int) argv->len - 1,
                        (char **) argv->pdata, &rc));
  return cli_read_params(c, default_days, r, error);
}

static void
test_read_params(void **state)
{
  Fx *fx = *state;
  const gint64 day = 86400, mar9 = 1709942400;  /* 2024-03-09T00:00:00Z */
  {
    /* The command's default days up to the day of --now (a date alone: its noon). */
    g_auto(CliCommon) c = CLI_COMMON_INIT;
    CliRead r;
    g_autoptr(GError) error = NULL;
    const char *args[] = { "--now", "2024-03-09", "--domain", "a.example", "--org", "Org",
                           NULL };
    assert_true(parse_read(fx, "[tlsrpt-ingest]\n", args, &c, 2, &r, &error));
    assert_int_equal(r.now, mar9 + 12 * 3600);
    assert_int_equal(r.params.since, mar9 - day);
    assert_int_equal(r.params.until, mar9 + day);
    assert_int_equal(r.days, 2);
    assert_false(r.days_given);
    assert_false(r.by_dates);
    assert_string_equal(r.params.domains[0], "a.example");
    assert_null(r.params.domains[1]);
    assert_string_equal(r.params.orgs[0], "Org");
    assert_true(r.params.warn == 0.01 && r.params.crit == 0.05);
  }
  {
    /* --days and the thresholds from the config file; --since/--until a window of
     * dates (the --until day included). */
    g_auto(CliCommon) c = CLI_COMMON_INIT;
    CliRead r;
    g_autoptr(GError) error = NULL;
    const char *args[] = { "--now", "2024-03-09T00:00:00Z", NULL };
    assert_true(parse_read(fx, "[tlsrpt-ingest]\ndays = 7\nwarn = 2%\ncrit = 10\n", args, &c,
                           30, &r, &error));
    assert_int_equal(r.days, 7);
    assert_true(r.days_given);
    assert_int_equal(r.params.since, mar9 - 6 * day);
    assert_true(r.params.warn == 0.02 && r.params.crit == 0.10);
  }
  {
    g_auto(CliCommon) c = CLI_COMMON_INIT;
    CliRead r;
    g_autoptr(GError) error = NULL;
    const char *args[] = { "--since", "2024-03-01", "--until", "2024-03-09", NULL };
    assert_true(parse_read(fx, "[tlsrpt-ingest]\n", args, &c, 30, &r, &error));
    assert_true(r.by_dates);
    assert_int_equal(r.params.since, mar9 - 8 * day);
    assert_int_equal(r.params.until, mar9 + day);
    assert_int_equal(r.days, 9);
  }
  /* Each wrong value is refused with the option's name. */
  const struct {
    const char *config, *arg1, *arg2, *arg3, *arg4, *message;
    int code;
  } bad[] = {
    { "", "--days", "3", "--since", "2024-01-01", "--days excludes --since", CLI_ERROR_USAGE },
    { "", "--until", "2024-01-01", NULL, NULL, "--until needs --since", CLI_ERROR_USAGE },
    { "", "--since", "2024-02-01", "--until", "2024-01-01", "--until must be after",
      CLI_ERROR_USAGE },
    { "", "--now", "yesterday", NULL, NULL, "--now takes a date", CLI_ERROR_USAGE },
    { "", "--warn", "x", NULL, NULL, "--warn takes a percentage", CLI_ERROR_USAGE },
    { "", "--crit", "101", NULL, NULL, "--crit takes a percentage", CLI_ERROR_USAGE },
    { "", "--warn", "7", "--crit", "3", "--warn must not be above --crit", CLI_ERROR_USAGE },
    { "", "--days", "-1", NULL, NULL, "--days takes a positive number", CLI_ERROR_USAGE },
    { "warn = 200\n", NULL, NULL, NULL, NULL, "config file ", CLI_ERROR_CONFIG },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_auto(CliCommon) c = CLI_COMMON_INIT;
    CliRead r;
    g_autoptr(GError) error = NULL;
    const char *args[] = { bad[i].arg1, bad[i].arg2, bad[i].arg3, bad[i].arg4, NULL };
    g_autofree char *config = g_strconcat("[tlsrpt-ingest]\n", bad[i].config, NULL);
    assert_false(parse_read(fx, config, args, &c, 30, &r, &error));
    assert_non_null(error);
    assert_int_equal(error->code, bad[i].code);
    if (strstr(error->message, bad[i].message) == NULL)
      fail_msg("case %zu: '%s' lacks '%s'", i, error->message, bad[i].message);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_own_and_shared_groups, setup, teardown),
    cmocka_unit_test_setup_teardown(test_config_keys_of_other_commands, setup, teardown),
    cmocka_unit_test_setup_teardown(test_version_per_command, setup, teardown),
    cmocka_unit_test_setup_teardown(test_read_params, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
