/* test_source_imap_auth.c - the IMAP source's credentials (source-imap-auth.h): the
 * token's shape, the private files, and the token command run through /bin/sh with a
 * time limit (real processes: exit codes, signals, a hung command and what it left
 * running, the error output in the message). */
#include "testutil.h"
#include "source-imap-auth.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
parse(const char *data, GError **error)
{
  return source_imap_auth_parse_token(data, strlen(data), "the test", error);
}

static void
test_token_is_the_first_line(void **state)
{
  (void) state;
  const struct {
    const char *in;
    const char *want;
  } ok[] = {
    { "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ4In0.c2ln", "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ4In0.c2ln" },
    { "ya29.a0Af-_~+/=\n", "ya29.a0Af-_~+/=" },
    { "tok\r\nsecond line\n", "tok" },
    { "tok\nexpires_in 3599\n", "tok" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(ok); i++) {
    g_autoptr(GError) error = NULL;
    char *t = parse(ok[i].in, &error);
    if (t == NULL)
      fail_msg("'%s': %s", ok[i].in, error->message);
    assert_string_equal(t, ok[i].want);
    source_imap_auth_free(t);
  }
  /* Without a NUL after it: only @len bytes count. */
  g_autoptr(GError) e0 = NULL;
  char *t = source_imap_auth_parse_token("abcdef", 3, "the test", &e0);
  assert_string_equal(t, "abc");
  source_imap_auth_free(t);
}

static void
test_token_refused_shapes_never_quoted(void **state)
{
  (void) state;
  const char *bad[] = { "", "\n", "\r\n", "secret token\n", "secret\ttoken", "secr\x01t",
                        "s\xc3\xa9" "cret", "secret\x7f" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    assert_null(parse(bad[i], &error));
    assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_AUTH));
    assert_non_null(strstr(error->message, "the test gave "));
    assert_null(strstr(error->message, "secr"));
  }
  g_autoptr(GError) error = NULL;
  assert_null(source_imap_auth_parse_token(NULL, 0, "the test", &error));
  g_clear_error(&error);
  gsize n = SOURCE_IMAP_AUTH_MAX_SECRET + 1;
  g_autofree char *big = g_malloc(n + 1);
  memset(big, 'a', n);
  big[n] = '\0';
  assert_null(parse(big, &error));
  assert_non_null(strstr(error->message, "more than the 65536 a token may have"));
  big[n - 1] = '\0';
  g_clear_error(&error);
  char *t = parse(big, &error);
  assert_non_null(t);
  assert_int_equal(strlen(t), SOURCE_IMAP_AUTH_MAX_SECRET);
  source_imap_auth_free(t);
}

/* ---- files ------------------------------------------------------------------------ */

static void
write_mode(const char *path, const char *text, mode_t mode)
{
  tu_write_file(path, text, strlen(text));
  assert_int_equal(chmod(path, mode), 0);
}

static void
test_secret_file_rules(void **state)
{
  (void) state;
  g_autofree char *dir = tu_mkdtemp();
  g_autofree char *path = g_build_filename(dir, "token", NULL);
  g_autoptr(GError) error = NULL;

  write_mode(path, "the-token\r\nignored\n", 0600);
  char *s = source_imap_auth_read_file(path, "token file", &error);
  assert_string_equal(s, "the-token");
  source_imap_auth_free(s);

  write_mode(path, "the-token\n", 0640);
  assert_null(source_imap_auth_read_file(path, "token file", &error));
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_AUTH));
  assert_non_null(strstr(error->message, "token file "));
  assert_non_null(strstr(error->message, "is readable by group or others (chmod 600 "));
  assert_null(strstr(error->message, "the-token"));
  g_clear_error(&error);
  assert_int_equal(chmod(path, 0604), 0);
  assert_null(source_imap_auth_read_file(path, "token file", &error));
  g_clear_error(&error);

  write_mode(path, "\nsecond\n", 0600);
  assert_null(source_imap_auth_read_file(path, "password file", &error));
  assert_non_null(strstr(error->message, "is empty"));
  g_clear_error(&error);

  g_autofree char *missing = g_build_filename(dir, "none", NULL);
  assert_null(source_imap_auth_read_file(missing, "token file", &error));
  assert_non_null(strstr(error->message, "No such file"));
  g_clear_error(&error);

  assert_null(source_imap_auth_read_file(dir, "token file", &error));
  assert_non_null(strstr(error->message, "not a regular file"));
  g_clear_error(&error);

  /* A first line longer than any token: refused, not cut. */
  gsize n = SOURCE_IMAP_AUTH_MAX_SECRET + 10;
  g_autofree char *big = g_malloc(n + 1);
  memset(big, 'x', n);
  big[n] = '\0';
  write_mode(path, big, 0600);
  assert_null(source_imap_auth_read_file(path, "token file", &error));
  assert_non_null(strstr(error->message, "the first line is longer than 65536 bytes"));
  g_clear_error(&error);
  /* Exactly the largest fits, also without its newline. */
  big[SOURCE_IMAP_AUTH_MAX_SECRET] = '\0';
  write_mode(path, big, 0600);
  s = source_imap_auth_read_file(path, "token file", &error);
  assert_non_null(s);
  assert_int_equal(strlen(s), SOURCE_IMAP_AUTH_MAX_SECRET);
  source_imap_auth_free(s);
  tu_rmtree(dir);
}

/* ---- the command ------------------------------------------------------------------ */

static char *
run(const char *cmd, guint timeout, gint64 *ms, GError **error)
{
  return source_imap_auth_run_command(cmd, timeout, ms, error);
}

static void
test_command_first_line_is_the_token(void **state)
{
  (void) state;
  g_autoptr(GError) error = NULL;
  gint64 ms = -1;
  char *t = run("printf 'tok-1.abc\\nexpires 3600\\n'; echo noise >&2", 5, &ms, &error);
  if (t == NULL)
    fail_msg("%s", error->message);
  assert_string_equal(t, "tok-1.abc");
  assert_true(ms >= 0 && ms < 5000);
  source_imap_auth_free(t);

  /* Standard input is /dev/null: a helper that asks does not hang. */
  t = run("read answer; echo \"got-${answer:-nothing}\"", 5, NULL, &error);
  assert_string_equal(t, "got-nothing");
  source_imap_auth_free(t);

  /* The shell's own syntax: pipes, variables. */
  t = run("x=abc; echo \"$x\" | tr a-c A-C", 5, NULL, &error);
  assert_string_equal(t, "ABC");
  source_imap_auth_free(t);

  /* SIGPIPE is the default again in the command (we ignore it): 'yes | head' ends. */
  t = run("yes tok | head -n 1", 5, NULL, &error);
  assert_string_equal(t, "tok");
  source_imap_auth_free(t);
}

static void
test_command_failures_say_why_with_stderr(void **state)
{
  (void) state;
  g_autoptr(GError) error = NULL;
  assert_null(run("echo 'helper: the refresh token has expired; log in again' >&2; exit 4",
                  5, NULL, &error));
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_AUTH));
  assert_string_equal(error->message,
                      "--oauth2-token-command failed with exit status 4: helper: the refresh "
                      "token has expired; log in again");
  g_clear_error(&error);

  /* A token printed before a failure is not used, nor shown. */
  assert_null(run("echo secret-token; exit 1", 5, NULL, &error));
  assert_string_equal(error->message,
                      "--oauth2-token-command failed with exit status 1 (no error output)");
  g_clear_error(&error);

  /* The error output is trimmed and escaped for the terminal. */
  assert_null(run("printf '  \\033[31mred\\033[0m\\n\\n' >&2; exit 2", 5, NULL, &error));
  assert_non_null(strstr(error->message, ": \\x1b[31mred\\x1b[0m"));
  assert_null(strchr(error->message, '\033'));
  g_clear_error(&error);

  assert_null(run("kill -9 $$", 5, NULL, &error));
  assert_string_equal(error->message, "--oauth2-token-command was killed by signal 9 "
                                      "(no error output)");
  g_clear_error(&error);

  assert_null(run("true", 5, NULL, &error));
  assert_string_equal(error->message,
                      "--oauth2-token-command gave no token (its first line is empty)");
  g_clear_error(&error);

  assert_null(run("echo 'not a token'; echo 'why: none' >&2", 5, NULL, &error));
  assert_non_null(strstr(error->message, "gave a first line that is not an access token"));
  assert_non_null(strstr(error->message, ": why: none"));
  assert_null(strstr(error->message, "not a token"));
  g_clear_error(&error);

  assert_null(run("no-such-helper-program-here", 5, NULL, &error));
  assert_non_null(strstr(error->message, "failed with exit status 127: "));
  assert_non_null(strstr(error->message, "not found"));
  g_clear_error(&error);

  /* Lots of output: a first line too long, and only 1000 bytes of error output kept. */
  assert_null(run("head -c 200000 /dev/zero | tr '\\0' a; head -c 100000 /dev/zero | "
                  "tr '\\0' e >&2", 10, NULL, &error));
  assert_non_null(strstr(error->message, "more than the 65536 a token may have"));
  assert_true(strlen(error->message) < 1300);
  g_clear_error(&error);
}

/* Is @pid gone (or a zombie nobody reaped: it runs no more)? */
static gboolean
pid_gone(pid_t pid)
{
  g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", (int) pid);
  g_autofree char *stat = NULL;
  if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
    return TRUE;
  const char *close = strrchr(stat, ')');
  return close != NULL && close[1] == ' ' && close[2] == 'Z';
}

static void
test_command_timeout_kills_the_group(void **state)
{
  (void) state;
  g_autofree char *dir = tu_mkdtemp();
  g_autofree char *pidfile = g_build_filename(dir, "pid", NULL);
  g_autofree char *cmd = g_strdup_printf(
      "sleep 60 & echo $! > %s; echo 'waiting for the browser' >&2; wait", pidfile);
  g_autoptr(GError) error = NULL;
  gint64 ms = 0;
  gint64 t0 = g_get_monotonic_time();
  assert_null(run(cmd, 1, &ms, &error));
  gint64 took = (g_get_monotonic_time() - t0) / 1000;
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_AUTH));
  assert_string_equal(error->message,
                      "--oauth2-token-command did not finish within 1 s "
                      "(--oauth2-token-timeout) and was killed: waiting for the browser");
  assert_true(took >= 900 && took < 4000);
  assert_true(ms >= 900);
  g_autofree char *text = tu_read_file(pidfile, NULL);
  assert_non_null(text);
  pid_t bg = (pid_t) atoi(text);
  assert_true(bg > 0);
  for (int i = 0; i < 100 && !pid_gone(bg); i++)
    g_usleep(20 * 1000);
  assert_true(pid_gone(bg));

  /* A command that ignores SIGTERM gets SIGKILL a second later. */
  g_clear_error(&error);
  t0 = g_get_monotonic_time();
  assert_null(run("trap '' TERM; while :; do sleep 0.1; done", 1, NULL, &error));
  took = (g_get_monotonic_time() - t0) / 1000;
  assert_non_null(strstr(error->message, "did not finish within 1 s"));
  assert_true(took >= 1900 && took < 5000);
  tu_rmtree(dir);
}

/* A command that ends but leaves something running with its output open: the token is
 * taken when the command ends, not when the pipe closes. */
static void
test_command_background_child_does_not_hold_us(void **state)
{
  (void) state;
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time();
  char *t = run("echo tok-bg; sleep 30 &", 20, NULL, &error);
  gint64 took = (g_get_monotonic_time() - t0) / 1000;
  if (t == NULL)
    fail_msg("%s", error->message);
  assert_string_equal(t, "tok-bg");
  assert_true(took < 3000);
  source_imap_auth_free(t);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_token_is_the_first_line),
    cmocka_unit_test(test_token_refused_shapes_never_quoted),
    cmocka_unit_test(test_secret_file_rules),
    cmocka_unit_test(test_command_first_line_is_the_token),
    cmocka_unit_test(test_command_failures_say_why_with_stderr),
    cmocka_unit_test(test_command_timeout_kills_the_group),
    cmocka_unit_test(test_command_background_child_does_not_hold_us),
  };
  return cmocka_run_group_tests_name("source_imap_auth", tests, NULL, NULL);
}
