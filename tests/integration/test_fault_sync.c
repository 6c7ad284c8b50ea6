/* test_fault_sync.c - group commit never acknowledges what was not made durable.
 *
 * The real binary runs with a small LD_PRELOAD library, built by the test itself, whose
 * syncfs() / fsync() / fdatasync() succeed N times and then fail with EIO (as a disk does
 * when it stops taking writes), logging every call. A batch whose sync fails must exit 75,
 * acknowledge none of its messages (they stay in new/, byte for byte), leave no trace
 * that dedup could mistake for a stored report (index, CSV rows, tree files), and a rerun
 * without the library must store every report exactly once.
 *
 * Skipped when no C compiler is found to build the library. */
#include "../hostile/faultutil.c"

#include <sys/stat.h>
#include <unistd.h>

static const char shim_source[] =
  "#define _GNU_SOURCE\n"
  "#include <dlfcn.h>\n"
  "#include <errno.h>\n"
  "#include <fcntl.h>\n"
  "#include <stdio.h>\n"
  "#include <stdlib.h>\n"
  "#include <string.h>\n"
  "#include <unistd.h>\n"
  "static int calls;\n"
  "/* Calls counted across the three functions (from any thread: the store fsyncs the\n"
  " * files of a small commit at once), or only those of TLSRPT_SHIM_ONLY and of files\n"
  " * whose path contains TLSRPT_SHIM_PATH; past TLSRPT_SHIM_FAIL_AFTER they fail. */\n"
  "static int fail_now(const char *what, int fd) {\n"
  "  const char *env = getenv(\"TLSRPT_SHIM_FAIL_AFTER\");\n"
  "  const char *only = getenv(\"TLSRPT_SHIM_ONLY\");\n"
  "  const char *path = getenv(\"TLSRPT_SHIM_PATH\");\n"
  "  char link[64], target[512];\n"
  "  snprintf(link, sizeof link, \"/proc/self/fd/%d\", fd);\n"
  "  ssize_t len = readlink(link, target, sizeof target - 1);\n"
  "  target[len > 0 ? len : 0] = 0;\n"
  "  int fail = 0, n = __atomic_load_n(&calls, __ATOMIC_SEQ_CST);\n"
  "  if ((only == NULL || strcmp(only, what) == 0) &&\n"
  "      (path == NULL || strstr(target, path) != NULL)) {\n"
  "    n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);\n"
  "    fail = env != NULL && n > atoi(env);\n"
  "  }\n"
  "  const char *log = getenv(\"TLSRPT_SHIM_LOG\");\n"
  "  if (log != NULL) {\n"
  "    char line[700];\n"
  "    int m = snprintf(line, sizeof line, \"%s %d %s %s\\n\", what, n, fail ? \"EIO\" : \"ok\", target);\n"
  "    int lfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);\n"
  "    if (lfd >= 0) { if (write(lfd, line, (size_t) m) < 0) {} close(lfd); }\n"
  "  }\n"
  "  return fail;\n"
  "}\n"
  "int syncfs(int fd) {\n"
  "  static int (*real)(int);\n"
  "  if (!real) real = (int (*)(int)) dlsym(RTLD_NEXT, \"syncfs\");\n"
  "  if (fail_now(\"syncfs\", fd)) { errno = EIO; return -1; }\n"
  "  return real(fd);\n"
  "}\n"
  "int fsync(int fd) {\n"
  "  static int (*real)(int);\n"
  "  if (!real) real = (int (*)(int)) dlsym(RTLD_NEXT, \"fsync\");\n"
  "  if (fail_now(\"fsync\", fd)) { errno = EIO; return -1; }\n"
  "  return real(fd);\n"
  "}\n"
  "int fdatasync(int fd) {\n"
  "  static int (*real)(int);\n"
  "  if (!real) real = (int (*)(int)) dlsym(RTLD_NEXT, \"fdatasync\");\n"
  "  if (fail_now(\"fdatasync\", fd)) { errno = EIO; return -1; }\n"
  "  return real(fd);\n"
  "}\n";

static char *shim_dir;
static char *shim_path;

static int
group_setup(void **state)
{
  const char *compilers[] = { "cc", "gcc", "clang" };
  g_autofree char *cc = NULL;
  for (guint i = 0; i < G_N_ELEMENTS(compilers) && cc == NULL; i++)
    cc = g_find_program_in_path(compilers[i]);
  if (cc == NULL)
    return 0;
  shim_dir = tu_mkdtemp();
  g_autofree char *src = g_build_filename(shim_dir, "shim.c", NULL);
  tu_write_file(src, shim_source, strlen(shim_source));
  g_autofree char *so = g_build_filename(shim_dir, "shim.so", NULL);
  const char *argv[] = { cc, "-shared", "-fPIC", "-O1", "-o", so, src, "-ldl", NULL };
  int status = -1;
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  if (g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, &err,
                   &status, &error) &&
      g_spawn_check_wait_status(status, NULL))
    shim_path = g_steal_pointer(&so);
  else
    print_message("could not build the sync failure library: %s\n",
                  error ? error->message : err);
  return 0;
}

static int
group_teardown(void **state)
{
  if (shim_dir != NULL)
    tu_rmtree(shim_dir);
  g_clear_pointer(&shim_dir, g_free);
  g_clear_pointer(&shim_path, g_free);
  return 0;
}

/* The tests need the library (built by the group setup with the C compiler). */
static void
skip_without_shim(void)
{
  if (shim_path == NULL) {
    print_message("no C compiler to build the sync failure library: skipped\n");
    skip();
  }
}

/* Run the binary with @argv; with @fail_after >= 0 under the library, failing every
 * call of @only (NULL: any of the three) on a file whose path contains @path (NULL: any)
 * after the first @fail_after such calls, logging to @log. */
static int
run_with_shim_path(const char *const *argv, GBytes *stdin_bytes, int fail_after,
                   const char *only, const char *path, const char *log, char **err_out)
{
  if (fail_after >= 0 || log != NULL) {
    g_setenv("LD_PRELOAD", shim_path, TRUE);
    /* An AddressSanitizer build wants its runtime first in the list. */
    g_setenv("ASAN_OPTIONS", "verify_asan_link_order=0", TRUE);
    g_autofree char *n = g_strdup_printf("%d", fail_after >= 0 ? fail_after : G_MAXINT);
    g_setenv("TLSRPT_SHIM_FAIL_AFTER", n, TRUE);
    if (only != NULL)
      g_setenv("TLSRPT_SHIM_ONLY", only, TRUE);
    if (path != NULL)
      g_setenv("TLSRPT_SHIM_PATH", path, TRUE);
    if (log != NULL)
      g_setenv("TLSRPT_SHIM_LOG", log, TRUE);
  }
  FuRunOptions o = { .argv = argv, .stdin_bytes = stdin_bytes, .timeout = 120 };
  FuResult r;
  fu_run(&o, &r);
  g_unsetenv("LD_PRELOAD");
  g_unsetenv("ASAN_OPTIONS");
  g_unsetenv("TLSRPT_SHIM_FAIL_AFTER");
  g_unsetenv("TLSRPT_SHIM_ONLY");
  g_unsetenv("TLSRPT_SHIM_PATH");
  g_unsetenv("TLSRPT_SHIM_LOG");
  assert_false(r.timed_out);
  assert_int_equal(r.signal, 0);
  int rc = r.exit_code;
  if (err_out != NULL)
    *err_out = g_steal_pointer(&r.err);
  fu_result_clear(&r);
  return rc;
}

static int
run_with_shim(const char *const *argv, GBytes *stdin_bytes, int fail_after, const char *only,
              const char *log, char **err_out)
{
  return run_with_shim_path(argv, stdin_bytes, fail_after, only, NULL, log, err_out);
}

/* Lines of @log for calls of @what ("syncfs", "fsync") that had @outcome ("ok", "EIO"),
 * on a file whose path ends with @suffix (NULL: any). */
static guint
log_count_file(const char *log, const char *what, const char *outcome, const char *suffix)
{
  g_autofree char *text = tu_read_file(log, NULL);
  if (text == NULL)
    return 0;
  guint n = 0;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_auto(GStrv) f = g_strsplit(lines[i], " ", 4);
    if (g_strv_length(f) >= 3 && strcmp(f[0], what) == 0 && strcmp(f[2], outcome) == 0 &&
        (suffix == NULL || (f[3] != NULL && g_str_has_suffix(f[3], suffix))))
      n++;
  }
  return n;
}

static guint
log_count(const char *log, const char *what, const char *outcome)
{
  return log_count_file(log, what, outcome, NULL);
}

/* Data rows of @csv (0 when missing or empty), each checked whole and once. */
static guint
csv_rows(const char *csv)
{
  struct stat st;
  if (stat(csv, &st) != 0 || st.st_size == 0)
    return 0;
  return fu_check_csv(csv, NULL);
}

/* A Maildir of @total messages in batches of @batch; the batch sync fails after
 * @good_syncs successful ones. */
static void
batch_sync_fails(gboolean move, guint total, guint batch, int good_syncs)
{
  skip_without_shim();
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *md = g_build_filename(tmp, "md", NULL);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  g_autofree char *log = g_build_filename(tmp, "sync.log", NULL);
  g_autofree char *batch_s = g_strdup_printf("%u", batch);
  fu_make_maildir(md, 0, total);
  g_autoptr(GPtrArray) args = g_ptr_array_new();
  g_ptr_array_add(args, "maildir");
  if (move) {
    g_ptr_array_add(args, "--move-to");
    g_ptr_array_add(args, "Done");
  } else {
    g_ptr_array_add(args, "--mark-seen");
  }
  const char *rest[] = { "--batch-size", batch_s, "--store", store, "--csv", csv, md, NULL };
  for (guint i = 0; i < G_N_ELEMENTS(rest); i++)
    g_ptr_array_add(args, (gpointer) rest[i]);
  const char *const *argv = (const char *const *) args->pdata;
  g_autofree char *cur = g_build_filename(md, "cur", NULL);
  g_autofree char *done_cur = g_build_filename(md, ".Done", "cur", NULL);
  g_autofree char *done_new = g_build_filename(md, ".Done", "new", NULL);
  const char *acked_seen[] = { cur, NULL };
  const char *acked_moved[] = { done_cur, done_new, cur, NULL };
  const char *const *acked = move ? acked_moved : acked_seen;

  g_autofree char *err = NULL;
  int rc = run_with_shim(argv, NULL, good_syncs, "syncfs", log, &err);
  print_message("%s, syncfs failing after %d: exit %d\n%s", move ? "--move-to" : "--mark-seen",
                good_syncs, rc, err);
  assert_int_equal(rc, 75);
  /* The failure hit the batch sync. */
  assert_int_equal(log_count(log, "syncfs", "ok"), (guint) good_syncs);
  assert_int_equal(log_count(log, "syncfs", "EIO"), 1);
  assert_non_null(strstr(err, "syncfs"));

  /* Acknowledged: exactly the batches whose sync succeeded, and each of them stored. */
  guint acked_n = fu_check_acknowledged_only_stored(md, acked, csv, total);
  print_message("%u of %u acknowledged\n", acked_n, total);
  assert_int_equal(acked_n, (guint) good_syncs * batch);
  /* Dedup knows only those; the failed batch left no row and no tree file. */
  assert_int_equal(fu_check_index(store), acked_n);
  assert_int_equal(csv_rows(csv), acked_n);
  assert_int_equal(fu_check_store_tree(store, NULL), acked_n);
  fu_check_tmp_files(store);

  /* Rerun without the failure: everything exactly once. */
  g_free(err);
  err = NULL;
  rc = run_with_shim(argv, NULL, -1, NULL, NULL, &err);
  if (rc != 0)
    print_message("rerun: exit %d\n%s", rc, err);
  assert_int_equal(rc, 0);
  assert_int_equal(fu_check_acknowledged_only_stored(md, acked, csv, total), total);
  fu_check_exactly_once(store, csv, total);
  tu_rmtree(tmp);
}

static void
test_batch_sync_fails_mark_seen(void **state)
{
  batch_sync_fails(FALSE, 200, 50, 1);
}

static void
test_batch_sync_fails_move_to(void **state)
{
  batch_sync_fails(TRUE, 120, 40, 2);
}

/* The very first batch fails: nothing at all is acknowledged. */
static void
test_first_batch_sync_fails(void **state)
{
  batch_sync_fails(FALSE, 60, 30, 0);
}

/* One `mda` message is made durable by an fsync of each of its files (all at once, on
 * threads of their own): the syncs fail from the count at which the probe saw the first
 * tree file's (whichever of the batch's fsyncs reaches the library at that count), and
 * every sync after it. Exit 75, nothing stored; the MTA's retry stores it once. */
static void
test_mda_fsync_fails(void **state)
{
  skip_without_shim();
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  g_autofree char *probe_store = g_build_filename(tmp, "probe", NULL);
  g_autofree char *probe_csv = g_build_filename(tmp, "probe.csv", NULL);
  g_autofree char *log = g_build_filename(tmp, "sync.log", NULL);
  g_autoptr(GBytes) m = fu_generated_message(0);

  /* A probe delivery counts the syncs and finds the first one of a tree file. */
  const char *probe[] = { "mda", "--store", probe_store, "--csv", probe_csv, NULL };
  assert_int_equal(run_with_shim(probe, m, -1, NULL, log, NULL), 0);
  g_autofree char *text = tu_read_file(log, NULL);
  assert_non_null(text);
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  int tree_sync = -1;
  guint syncfs_calls = 0;
  g_autofree char *tree_prefix = g_strconcat(probe_store, "/test.xmox.nl/", NULL);
  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++) {
    if (g_str_has_prefix(lines[i], "syncfs"))
      syncfs_calls++;
    if (tree_sync < 0 && g_str_has_prefix(lines[i], "fsync") &&
        strstr(lines[i], tree_prefix) != NULL && g_str_has_suffix(lines[i], ".json"))
      tree_sync = (int) i;
  }
  print_message("one mda delivery: %u syncs (%u syncfs), the first tree file's is #%d\n",
                g_strv_length(lines) - 1, syncfs_calls, tree_sync + 1);
  /* One message never makes other programs' data wait for a syncfs(). */
  assert_int_equal(syncfs_calls, 0);
  assert_true(tree_sync >= 0);

  const char *argv[] = { "mda", "--store", store, "--csv", csv, NULL };
  g_autofree char *err = NULL;
  int rc = run_with_shim(argv, m, tree_sync, NULL, NULL, &err);
  print_message("fsync failing from #%d: exit %d\n%s", tree_sync + 1, rc, err);
  assert_int_equal(rc, 75);
  /* Nothing looks stored. (The rollback's own fsyncs failed too: the journal stays, and
   * the next run finishes the undo.) */
  g_autofree char *index = g_build_filename(store, ".index", NULL);
  g_autofree char *index_text = tu_read_file(index, NULL);
  assert_string_equal(index_text ? index_text : "", "");
  assert_int_equal(fu_check_store_tree(store, NULL), 0);
  assert_int_equal(csv_rows(csv), 0);

  /* The MTA delivers again. */
  g_free(err);
  err = NULL;
  rc = run_with_shim(argv, m, -1, NULL, NULL, &err);
  if (rc != 0)
    print_message("redelivery: exit %d\n%s", rc, err);
  assert_int_equal(rc, 0);
  fu_check_exactly_once(store, csv, 1);
  tu_rmtree(tmp);
}

/* The commit journal's own fsync fails (it runs while the sinks write; the CSV and
 * JSON Lines appends it would undo wait for it). Exit 75; no CSV or JSON Lines row, no
 * index entry, no tree file may stay; nothing is acknowledged; the rerun (or the MTA's
 * retry) stores every report once. For a Maildir batch and for one `mda` message. */
static void
test_journal_sync_fails(void **state)
{
  skip_without_shim();
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *md = g_build_filename(tmp, "md", NULL);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  g_autofree char *jsonl = g_build_filename(tmp, "r.jsonl", NULL);
  g_autofree char *log = g_build_filename(tmp, "sync.log", NULL);
  const guint total = 40;
  fu_make_maildir(md, 0, total);
  const char *argv[] = { "maildir", "--mark-seen", "--batch-size", "20", "--store", store,
                         "--csv", csv, "--jsonl", jsonl, md, NULL };
  g_autofree char *cur = g_build_filename(md, "cur", NULL);
  const char *acked[] = { cur, NULL };

  g_autofree char *err = NULL;
  int rc = run_with_shim_path(argv, NULL, 0, NULL, "/.journal", log, &err);
  print_message("maildir, the journal's fsync failing: exit %d\n%s", rc, err);
  assert_int_equal(rc, 75);
  /* (The rollback syncs the journal again, and that fails too.) */
  const char *j = "/.journal";
  assert_true(log_count_file(log, "fsync", "EIO", j) + log_count_file(log, "fdatasync", "EIO", j) >= 1);
  assert_int_equal(log_count_file(log, "fsync", "ok", j) + log_count_file(log, "fdatasync", "ok", j), 0);
  assert_int_equal(log_count(log, "fsync", "EIO") + log_count(log, "fdatasync", "EIO") +
                   log_count(log, "syncfs", "EIO"),
                   log_count_file(log, "fsync", "EIO", j) + log_count_file(log, "fdatasync", "EIO", j));
  assert_non_null(strstr(err, ".journal"));
  assert_int_equal(fu_check_acknowledged_only_stored(md, acked, csv, total), 0);
  assert_int_equal(fu_check_index(store), 0);
  assert_int_equal(csv_rows(csv), 0);
  g_autofree char *jl = tu_read_file(jsonl, NULL);
  assert_string_equal(jl ? jl : "", "");
  assert_int_equal(fu_check_store_tree(store, NULL), 0);

  g_free(err);
  err = NULL;
  rc = run_with_shim(argv, NULL, -1, NULL, NULL, &err);
  if (rc != 0)
    print_message("rerun: exit %d\n%s", rc, err);
  assert_int_equal(rc, 0);
  assert_int_equal(fu_check_acknowledged_only_stored(md, acked, csv, total), total);
  fu_check_exactly_once(store, csv, total);

  /* One `mda` delivery into a store of its own. */
  g_autofree char *store1 = g_build_filename(tmp, "store1", NULL);
  g_autofree char *csv1 = g_build_filename(tmp, "r1.csv", NULL);
  g_autoptr(GBytes) m = fu_generated_message(0);
  const char *mda[] = { "mda", "--store", store1, "--csv", csv1, NULL };
  g_free(err);
  err = NULL;
  rc = run_with_shim_path(mda, m, 0, NULL, "/.journal", NULL, &err);
  print_message("mda, the journal's fsync failing: exit %d\n%s", rc, err);
  assert_int_equal(rc, 75);
  assert_int_equal(csv_rows(csv1), 0);
  assert_int_equal(fu_check_store_tree(store1, NULL), 0);
  g_free(err);
  err = NULL;
  rc = run_with_shim(mda, m, -1, NULL, NULL, &err);
  if (rc != 0)
    print_message("redelivery: exit %d\n%s", rc, err);
  assert_int_equal(rc, 0);
  fu_check_exactly_once(store1, csv1, 1);
  tu_rmtree(tmp);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_batch_sync_fails_mark_seen),
    cmocka_unit_test(test_batch_sync_fails_move_to),
    cmocka_unit_test(test_first_batch_sync_fails),
    cmocka_unit_test(test_mda_fsync_fails),
    cmocka_unit_test(test_journal_sync_fails),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
