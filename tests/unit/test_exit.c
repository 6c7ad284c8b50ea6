/* test_exit.c - the one mapping from an error to an exit code, per mode (issue: an IMAP
 * login failure exited 3 through one path and 75 through another; a corrupt journal
 * tempfailed forever; mda bounced usage and config errors with 64 and 78). */
#include "testutil.h"

#include "common.h"

static int
code(GQuark domain, int c, TrExitMode mode)
{
  g_autoptr(GError) e = g_error_new_literal(domain, c, "x");
  return tr_exit_for(e, mode);
}

static void
test_batch_and_watch(void **state)
{
  TrExitMode modes[] = { TR_MODE_BATCH, TR_MODE_WATCH };
  for (gsize i = 0; i < G_N_ELEMENTS(modes); i++) {
    TrExitMode m = modes[i];
    assert_int_equal(tr_exit_for(NULL, m), TR_EXIT_OK);
    assert_int_equal(code(SOURCE_ERROR, SOURCE_ERROR_AUTH, m), TR_EXIT_AUTH);
    assert_int_equal(code(SOURCE_ERROR, SOURCE_ERROR_TLS, m), TR_EXIT_TLS);
    assert_int_equal(code(SOURCE_ERROR, SOURCE_ERROR_LOCKED, m), TR_EXIT_LOCKED);
    assert_int_equal(code(SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND, m), TR_EXIT_USAGE_BATCH);
    assert_int_equal(code(SOURCE_ERROR, SOURCE_ERROR_IO, m), TR_EXIT_TEMPFAIL);
    assert_int_equal(code(SOURCE_ERROR, SOURCE_ERROR_PROTOCOL, m), TR_EXIT_TEMPFAIL);
    assert_int_equal(code(CLI_ERROR, CLI_ERROR_USAGE, m), TR_EXIT_USAGE_BATCH);
    assert_int_equal(code(CLI_ERROR, CLI_ERROR_CONFIG, m), TR_EXIT_USAGE_BATCH);
    assert_int_equal(code(STORE_ERROR, STORE_ERROR_IO, m), TR_EXIT_TEMPFAIL);
    assert_int_equal(code(STORE_ERROR, STORE_ERROR_LOCK, m), TR_EXIT_TEMPFAIL);
    assert_int_equal(code(STORE_ERROR, STORE_ERROR_CORRUPT, m), TR_EXIT_STORE_DAMAGED);
    assert_int_equal(code(SINK_ERROR, SINK_ERROR_IO, m), TR_EXIT_TEMPFAIL);
    assert_int_equal(code(G_IO_ERROR, G_IO_ERROR_NO_SPACE, m), TR_EXIT_TEMPFAIL);
  }
  assert_int_equal(tr_exit_for_outcome(0, 0, TR_MODE_BATCH), TR_EXIT_OK);
  assert_int_equal(tr_exit_for_outcome(2, 0, TR_MODE_BATCH), TR_EXIT_QUARANTINED);
  assert_int_equal(tr_exit_for_outcome(2, 1, TR_MODE_BATCH), TR_EXIT_SKIPPED);
  assert_int_equal(tr_exit_for_outcome(0, 1, TR_MODE_WATCH), TR_EXIT_SKIPPED);
}

/* mda: an MTA bounces every code but 75, so every failure to store is 75. */
static void
test_mda_never_bounces(void **state)
{
  const struct {
    GQuark domain;
    int code;
  } errors[] = {
    { CLI_ERROR, CLI_ERROR_USAGE },       { CLI_ERROR, CLI_ERROR_CONFIG },
    { SOURCE_ERROR, SOURCE_ERROR_AUTH },  { SOURCE_ERROR, SOURCE_ERROR_TLS },
    { SOURCE_ERROR, SOURCE_ERROR_LOCKED },{ SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND },
    { SOURCE_ERROR, SOURCE_ERROR_TOO_LARGE }, { STORE_ERROR, STORE_ERROR_CORRUPT },
    { STORE_ERROR, STORE_ERROR_IO },      { SINK_ERROR, SINK_ERROR_IO },
    { G_FILE_ERROR, G_FILE_ERROR_ACCES },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(errors); i++)
    assert_int_equal(code(errors[i].domain, errors[i].code, TR_MODE_MDA), TR_EXIT_TEMPFAIL);
  assert_int_equal(tr_exit_for(NULL, TR_MODE_MDA), TR_EXIT_OK);
  assert_int_equal(tr_exit_for_outcome(3, 0, TR_MODE_MDA), TR_EXIT_OK);
}

/* The table lists each code once, in order, and every code tr_exit_for() returns. */
static void
test_table(void **state)
{
  int last = -1;
  guint n = 0;
  for (const TrExitInfo *e = tr_exit_table; e->meaning != NULL; e++, n++) {
    assert_true(e->code > last);
    assert_non_null(e->commands);
    assert_non_null(e->action);
    last = e->code;
  }
  int want[] = { TR_EXIT_OK, TR_EXIT_QUARANTINED, TR_EXIT_USAGE_BATCH, TR_EXIT_AUTH,
                 TR_EXIT_TLS, TR_EXIT_LOCKED, TR_EXIT_SKIPPED, TR_EXIT_STORE_DAMAGED,
                 TR_EXIT_TEMPFAIL };
  assert_int_equal(n, G_N_ELEMENTS(want));
  for (gsize i = 0; i < G_N_ELEMENTS(want); i++)
    assert_int_equal(tr_exit_table[i].code, want[i]);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_batch_and_watch),
    cmocka_unit_test(test_mda_never_bounces),
    cmocka_unit_test(test_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
