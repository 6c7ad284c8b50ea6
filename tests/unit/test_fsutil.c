/* test_fsutil.c - durable writes, the symlink-safe directory walk, name sanitizing. */
#include "testutil.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int
setup(void **state)
{
  *state = tu_mkdtemp();
  return 0;
}

static int
teardown(void **state)
{
  tu_rmtree(*state);
  g_free(*state);
  return 0;
}

static int
open_dir(const char *path)
{
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  assert_true(fd >= 0);
  return fd;
}

/* Number of ".tmp-*" entries directly in @dir. */
static guint
count_tmp(const char *dir)
{
  guint n = 0;
  GDir *d = g_dir_open(dir, 0, NULL);
  assert_non_null(d);
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL)
    if (g_str_has_prefix(name, ".tmp-"))
      n++;
  g_dir_close(d);
  return n;
}

static void
test_write_atomic(void **state)
{
  const char *dir = *state;
  int fd = open_dir(dir);
  g_autoptr(GError) error = NULL;
  assert_true(fsutil_write_atomic(fd, "a.json", "hello\n", 6, &error));
  assert_null(error);
  g_autofree char *path = g_build_filename(dir, "a.json", NULL);
  gsize len = 0;
  g_autofree char *got = tu_read_file(path, &len);
  assert_non_null(got);
  assert_int_equal(len, 6);
  assert_memory_equal(got, "hello\n", 6);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0640);

  /* Replaced as a whole. */
  assert_true(fsutil_write_atomic(fd, "a.json", "x", 1, &error));
  g_free(got);
  got = tu_read_file(path, &len);
  assert_int_equal(len, 1);
  assert_int_equal(got[0], 'x');
  assert_int_equal(count_tmp(dir), 0);

  /* Empty content. */
  assert_true(fsutil_write_atomic(fd, "empty", "", 0, &error));
  g_autofree char *epath = g_build_filename(dir, "empty", NULL);
  assert_int_equal(stat(epath, &st), 0);
  assert_int_equal(st.st_size, 0);
  close(fd);
}

/* The same by path: the file appears whole, nothing temporary is left, and a missing
 * directory is an error naming the path. */
static void
test_write_file_atomic(void **state)
{
  const char *dir = *state;
  g_autofree char *path = g_build_filename(dir, "out.prom", NULL);
  g_autoptr(GError) error = NULL;
  assert_true(fsutil_write_file_atomic(path, "a 1\n", 4, &error));
  assert_true(fsutil_write_file_atomic(path, "b 2\nc 3\n", 8, &error));
  assert_null(error);
  gsize len = 0;
  g_autofree char *got = tu_read_file(path, &len);
  assert_int_equal(len, 8);
  assert_memory_equal(got, "b 2\nc 3\n", 8);
  assert_int_equal(count_tmp(dir), 0);
  g_autofree char *missing = g_build_filename(dir, "no-such-dir", "x.html", NULL);
  assert_false(fsutil_write_file_atomic(missing, "x", 1, &error));
  assert_non_null(error);
  assert_non_null(strstr(error->message, "no-such-dir"));
}

static void
test_write_tmp_name(void **state)
{
  const char *dir = *state;
  int fd = open_dir(dir);
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = fsutil_write_tmp(fd, "r.json", "{}", 2, FALSE, &error);
  assert_non_null(tmp);
  assert_true(g_str_has_prefix(tmp, ".tmp-r.json-"));
  assert_false(g_str_has_suffix(tmp, ".json"));
  g_autofree char *p = g_build_filename(dir, tmp, NULL);
  g_autofree char *got = tu_read_file(p, NULL);
  assert_string_equal(got, "{}");

  /* A long final name still gives a valid temporary name. */
  g_autofree char *longname = g_strnfill(250, 'n');
  g_autofree char *tmp2 = fsutil_write_tmp(fd, longname, "y", 1, TRUE, &error);
  assert_non_null(tmp2);
  assert_true(strlen(tmp2) <= 255);
  assert_int_equal(count_tmp(dir), 2);
  close(fd);
}

static void
test_write_fails_cleanly(void **state)
{
  const char *dir = *state;
  g_autoptr(GError) error = NULL;

  /* A closed directory fd: nothing created, an error with errno text. */
  int fd = open_dir(dir);
  close(fd);
  assert_false(fsutil_write_atomic(fd, "a", "x", 1, &error));
  assert_true(error->domain == G_IO_ERROR);
  assert_non_null(strstr(error->message, g_strerror(EBADF)));
  g_clear_error(&error);

  /* The target name is a non-empty directory: rename fails, the temporary file is gone. */
  fd = open_dir(dir);
  g_autofree char *sub = g_build_filename(dir, "taken", "inner", NULL);
  assert_int_equal(g_mkdir_with_parents(sub, 0755), 0);
  assert_false(fsutil_write_atomic(fd, "taken", "data", 4, &error));
  assert_non_null(error);
  assert_true(error->domain == G_IO_ERROR);
  assert_non_null(strstr(error->message, "rename"));
  assert_int_equal(count_tmp(dir), 0);
  g_clear_error(&error);

  /* A write that fails after the file was created (file size limit): the partial
   * temporary file is removed. */
  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 4096;
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  g_autofree char *big = g_malloc0(100000);
  gboolean ok = fsutil_write_atomic(fd, "big", big, 100000, &error);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, SIG_DFL);
  assert_false(ok);
  assert_non_null(error);
  assert_non_null(strstr(error->message, g_strerror(EFBIG)));
  assert_int_equal(count_tmp(dir), 0);
  g_autofree char *bigpath = g_build_filename(dir, "big", NULL);
  assert_false(g_file_test(bigpath, G_FILE_TEST_EXISTS));
  g_clear_error(&error);

  /* A regular file where the directory should be. */
  g_autofree char *file = g_build_filename(dir, "plain", NULL);
  tu_write_file(file, "p", 1);
  int ffd = open(file, O_RDONLY | O_CLOEXEC);
  assert_true(ffd >= 0);
  assert_null(fsutil_write_tmp(ffd, "a", "x", 1, TRUE, &error));
  assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY));
  close(ffd);
  close(fd);
}

static void
test_error_codes(void **state)
{
  g_autoptr(GError) error = NULL;
  fsutil_set_error_errno(&error, ENOSPC, "write", "/x");
  assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE));
  assert_non_null(strstr(error->message, "write: /x: "));
  g_clear_error(&error);
  fsutil_set_error_errno(&error, EROFS, "write", "/x");
  assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_READ_ONLY));
  g_clear_error(&error);
  fsutil_set_error_errno(&error, EACCES, "open", "/x");
  assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED));
  assert_int_equal(tr_error_classify(error), TR_ERROR_TRANSIENT);
}

static void
test_mkdir_p(void **state)
{
  const char *dir = *state;
  g_autoptr(GError) error = NULL;
  g_autofree char *deep = g_build_filename(dir, "a", "b", "c", NULL);
  assert_true(fsutil_mkdir_p(deep, &error));
  assert_true(g_file_test(deep, G_FILE_TEST_IS_DIR));
  struct stat st;
  assert_int_equal(stat(deep, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0750);
  /* Again: fine. With a trailing slash: fine. */
  assert_true(fsutil_mkdir_p(deep, &error));
  g_autofree char *slash = g_strconcat(deep, "/", NULL);
  assert_true(fsutil_mkdir_p(slash, &error));

  /* A file in the way. */
  g_autofree char *file = g_build_filename(dir, "file", NULL);
  tu_write_file(file, "x", 1);
  g_autofree char *below = g_build_filename(file, "store", NULL);
  assert_false(fsutil_mkdir_p(below, &error));
  assert_non_null(error);
  assert_true(error->domain == G_IO_ERROR);
  g_clear_error(&error);
  assert_false(fsutil_mkdir_p(file, &error));
  assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY));
}

static void
test_open_dir_below(void **state)
{
  const char *dir = *state;
  int base = open_dir(dir);
  g_autoptr(GError) error = NULL;

  /* Missing without create. */
  assert_int_equal(fsutil_open_dir_below(base, "x/y", FALSE, &error), -1);
  assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
  g_clear_error(&error);

  int fd = fsutil_open_dir_below(base, "x/y/z", TRUE, &error);
  assert_true(fd >= 0);
  assert_null(error);
  assert_true(fsutil_write_atomic(fd, "f", "1", 1, &error));
  close(fd);
  g_autofree char *f = g_build_filename(dir, "x", "y", "z", "f", NULL);
  assert_true(g_file_test(f, G_FILE_TEST_IS_REGULAR));

  /* Existing, no create needed. */
  fd = fsutil_open_dir_below(base, "x/y", FALSE, &error);
  assert_true(fd >= 0);
  close(fd);

  /* Bad paths: never touch the disk. */
  const char *bad[] = { "..", "../x", "x/../..", "x/./y", "/tmp", "", "x//y", "x/", "." };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    assert_int_equal(fsutil_open_dir_below(base, bad[i], TRUE, &error), -1);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
    g_clear_error(&error);
  }
  close(base);
}

static void
test_open_dir_below_refuses_symlinks(void **state)
{
  const char *dir = *state;
  g_autofree char *store = g_build_filename(dir, "store", NULL);
  g_autofree char *outside = g_build_filename(dir, "outside", NULL);
  assert_int_equal(g_mkdir_with_parents(store, 0755), 0);
  assert_int_equal(g_mkdir_with_parents(outside, 0755), 0);
  g_autofree char *link = g_build_filename(store, "evil", NULL);
  assert_int_equal(symlink(outside, link), 0);
  g_autofree char *mid = g_build_filename(store, "ok", NULL);
  assert_int_equal(g_mkdir_with_parents(mid, 0755), 0);
  g_autofree char *link2 = g_build_filename(store, "ok", "2022", NULL);
  assert_int_equal(symlink(outside, link2), 0);
  g_autofree char *dangling = g_build_filename(store, "dangling", NULL);
  g_autofree char *nowhere = g_build_filename(outside, "nowhere", NULL);
  assert_int_equal(symlink(nowhere, dangling), 0);

  int base = open_dir(store);
  g_autoptr(GError) error = NULL;
  const char *cases[] = { "evil", "evil/2022/01", "ok/2022", "ok/2022/09", "dangling",
                          "dangling/x" };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    assert_int_equal(fsutil_open_dir_below(base, cases[i], TRUE, &error), -1);
    assert_non_null(error);
    assert_non_null(strstr(error->message, "symbolic link"));
    g_clear_error(&error);
  }
  close(base);
  assert_int_equal(tu_count_files(outside, NULL), 0);
  g_autofree char *sub = g_build_filename(outside, "2022", NULL);
  assert_false(g_file_test(sub, G_FILE_TEST_EXISTS));
  assert_false(g_file_test(nowhere, G_FILE_TEST_EXISTS));
}

static void
test_sweep_tmp(void **state)
{
  const char *dir = *state;
  int fd = open_dir(dir);
  g_autoptr(GError) error = NULL;
  g_autofree char *old_tmp = fsutil_write_tmp(fd, "old", "o", 1, FALSE, &error);
  g_autofree char *new_tmp = fsutil_write_tmp(fd, "new", "n", 1, FALSE, &error);
  assert_non_null(old_tmp);
  assert_non_null(new_tmp);
  g_autofree char *keep = g_build_filename(dir, "keep.json", NULL);
  tu_write_file(keep, "k", 1);
  g_autofree char *old_path = g_build_filename(dir, old_tmp, NULL);
  struct timespec ts[2] = { { time(NULL) - 7200, 0 }, { time(NULL) - 7200, 0 } };
  assert_int_equal(utimensat(AT_FDCWD, old_path, ts, 0), 0);
  assert_int_equal(utimensat(AT_FDCWD, keep, ts, 0), 0);

  fsutil_sweep_tmp(fd, 3600);
  assert_false(g_file_test(old_path, G_FILE_TEST_EXISTS));
  g_autofree char *new_path = g_build_filename(dir, new_tmp, NULL);
  assert_true(g_file_test(new_path, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(keep, G_FILE_TEST_EXISTS));
  close(fd);
}

/* A pid that was a process and is no more (reaped at once). */
static pid_t
dead_pid(void)
{
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(0);
  assert_int_equal(waitpid(pid, NULL, 0), pid);
  return pid;
}

/* A child that lives until killed. */
static pid_t
live_pid(void)
{
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    for (;;)
      pause();
  }
  return pid;
}

static char *
plant(const char *dir, const char *name)
{
  char *path = g_build_filename(dir, name, NULL);
  tu_write_file(path, "x", 1);
  return path;
}

static void
test_sweep_tmp_dead_writers(void **state)
{
  const char *dir = *state;
  pid_t dead = dead_pid(), live = live_pid();
  g_autofree char *n_dead = g_strdup_printf(".tmp-a!b!c.json-%d-0badcafe", (int) dead);
  g_autofree char *n_dash = g_strdup_printf(".tmp-x-1-2.json.gz-%d-00000001", (int) dead);
  g_autofree char *n_live = g_strdup_printf(".tmp-a!b!c.json-%d-0badcafe", (int) live);
  g_autofree char *n_self = g_strdup_printf(".tmp-mine.json-%d-12345678", (int) getpid());
  g_autofree char *p_dead = plant(dir, n_dead);
  g_autofree char *p_dash = plant(dir, n_dash);
  g_autofree char *p_live = plant(dir, n_live);
  g_autofree char *p_self = plant(dir, n_self);
  g_autofree char *p_foreign = plant(dir, ".tmp-no-pid-here");      /* young: kept */
  g_autofree char *p_short = plant(dir, ".tmp-x-123-abc");          /* not 8 hex: no pid */
  g_autofree char *p_data = plant(dir, "data.json");
  assert_false(fsutil_tmp_writer_alive(n_dead));
  assert_true(fsutil_tmp_writer_alive(n_live));
  assert_true(fsutil_tmp_writer_alive(n_self));
  assert_false(fsutil_tmp_writer_alive(".tmp-no-pid-here"));
  assert_false(fsutil_tmp_writer_alive("data.json"));

  int fd = open_dir(dir);
  assert_int_equal(fsutil_sweep_tmp(fd, 3600), 2);
  assert_false(g_file_test(p_dead, G_FILE_TEST_EXISTS));
  assert_false(g_file_test(p_dash, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_live, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_self, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_foreign, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_short, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_data, G_FILE_TEST_EXISTS));

  /* Past the age limit, a file goes whatever its name says, but a live writer's own
   * fresh file stays. */
  struct timespec ts[2] = { { time(NULL) - 7200, 0 }, { time(NULL) - 7200, 0 } };
  assert_int_equal(utimensat(AT_FDCWD, p_foreign, ts, 0), 0);
  assert_int_equal(fsutil_sweep_tmp(fd, 3600), 1);
  assert_false(g_file_test(p_foreign, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_live, G_FILE_TEST_EXISTS));

  /* When the writer dies, its file goes. */
  kill(live, SIGKILL);
  assert_int_equal(waitpid(live, NULL, 0), live);
  assert_false(fsutil_tmp_writer_alive(n_live));
  assert_int_equal(fsutil_sweep_tmp(fd, 3600), 1);
  assert_false(g_file_test(p_live, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_self, G_FILE_TEST_EXISTS));
  close(fd);
}

static void
test_sweep_tmp_tree(void **state)
{
  const char *dir = *state;
  pid_t dead = dead_pid();
  g_autofree char *name = g_strdup_printf(".tmp-r.json-%d-deadbeef", (int) dead);
  g_autofree char *deep = g_build_filename(dir, "example.com", "2024", "03", "01", NULL);
  g_autofree char *deeper = g_build_filename(deep, "a", "b", NULL);
  g_autofree char *outside = tu_mkdtemp();
  assert_int_equal(g_mkdir_with_parents(deeper, 0755), 0);
  g_autofree char *p_top = plant(dir, name);
  g_autofree char *p_deep = plant(deep, name);
  g_autofree char *p_deeper = plant(deeper, name);     /* 6 levels down */
  g_autofree char *p_outside = plant(outside, name);
  g_autofree char *link = g_build_filename(dir, "example.com", "link", NULL);
  assert_int_equal(symlink(outside, link), 0);          /* never followed */

  int fd = open_dir(dir);
  assert_int_equal(fsutil_sweep_tmp_tree(fd, 3600, 4), 2);
  assert_false(g_file_test(p_top, G_FILE_TEST_EXISTS));
  assert_false(g_file_test(p_deep, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_deeper, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_outside, G_FILE_TEST_EXISTS));
  assert_int_equal(fsutil_sweep_tmp_tree(fd, 3600, 8), 1);
  assert_false(g_file_test(p_deeper, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(p_outside, G_FILE_TEST_EXISTS));
  close(fd);
  tu_rmtree(outside);
}

static void
check_sanitized(const char *in, gsize max, const char *want)
{
  g_autofree char *got = fsutil_sanitize_component(in, max);
  if (strcmp(got, want) != 0)
    fail_msg("sanitize('%s', %zu) = '%s', expected '%s'", in ? in : "(null)", max, got, want);
}

static void
test_sanitize(void **state)
{
  check_sanitized("example.com", 100, "example.com");
  check_sanitized("Google LLC", 100, "Google_LLC");
  check_sanitized("a+b@c=d-e_f.G", 100, "a+b@c=d-e_f.G");
  check_sanitized("../", 100, "_._");
  check_sanitized("../../etc/passwd", 100, "_._.._etc_passwd");
  check_sanitized("/", 100, "_");
  check_sanitized("a/b", 100, "a_b");
  check_sanitized(".", 100, "_");
  check_sanitized("..", 100, "_.");
  check_sanitized(".hidden", 100, "_hidden");
  check_sanitized("", 100, "_");
  check_sanitized(NULL, 100, "_");
  check_sanitized("a\tb\nc\rd\x01" "e\x7f", 100, "a_b_c_d_e_");
  check_sanitized("x!y", 100, "x_y");
  check_sanitized("abcdef", 3, "abc");
  /* One '_' per UTF-8 character, whatever its length. */
  check_sanitized("caf\xc3\xa9", 100, "caf_");
  check_sanitized("\xe2\x82\xac" "1", 100, "_1");
  check_sanitized("\xf0\x9f\x94\x92x", 100, "_x");
  check_sanitized("\xff\xfe", 100, "__");

  /* 10 kB in: at most max_len out, only safe bytes, never "." / "..". */
  g_autofree char *big = g_strnfill(10000, '/');
  g_autofree char *s = fsutil_sanitize_component(big, 100);
  assert_int_equal(strlen(s), 100);
  GString *utf = g_string_new(NULL);
  for (int i = 0; i < 3000; i++)
    g_string_append(utf, "\xc3\xa9x");
  g_autofree char *u = fsutil_sanitize_component(utf->str, 61);
  g_string_free(utf, TRUE);
  assert_int_equal(strlen(u), 61);
  assert_true(g_utf8_validate(u, -1, NULL));
  for (const char *p = u; *p; p++)
    assert_true(*p == '_' || *p == 'x');
  assert_int_equal(u[60], '_');
}

int
main(void)
{
  umask(022);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
    cmocka_unit_test_setup_teardown(test_write_file_atomic, setup, teardown),
    cmocka_unit_test_setup_teardown(test_write_tmp_name, setup, teardown),
    cmocka_unit_test_setup_teardown(test_write_fails_cleanly, setup, teardown),
    cmocka_unit_test(test_error_codes),
    cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_dir_below, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_dir_below_refuses_symlinks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sweep_tmp, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sweep_tmp_dead_writers, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sweep_tmp_tree, setup, teardown),
    cmocka_unit_test(test_sanitize),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
