/* test_fault_diskfull.c - a full disk, a file size limit and a read-only store.
 *
 * A tiny tmpfs is mounted by the test (root in CI); where mounting is not allowed those
 * tests are skipped and the RLIMIT_FSIZE test still runs. `mda` must exit 75 and leave
 * nothing partial (no row fragment in the CSV, the index unchanged); a batch must stop
 * with 75 and acknowledge (mark seen) only what it stored; once space returns a rerun
 * stores everything exactly once. */
#include "../hostile/faultutil.c"

#include <sys/stat.h>
#include <unistd.h>

static gboolean can_mount;
static gboolean deliver_no_sqlite;   /* deliveries without the SQL index */

typedef struct {
  char *csv;
  char *index;
  guint tree;
} Snapshot;

static void
snapshot_take(Snapshot *s, const char *store, const char *csv)
{
  g_autofree char *index = g_build_filename(store, ".index", NULL);
  s->csv = tu_read_file(csv, NULL);
  s->index = tu_read_file(index, NULL);
  s->tree = g_file_test(store, G_FILE_TEST_IS_DIR) ? fu_check_store_tree(store, NULL) : 0;
}

static void
snapshot_assert_same(const Snapshot *s, const char *store, const char *csv)
{
  Snapshot now;
  snapshot_take(&now, store, csv);
  assert_string_equal(s->csv ? s->csv : "", now.csv ? now.csv : "");
  assert_string_equal(s->index ? s->index : "", now.index ? now.index : "");
  assert_int_equal(s->tree, now.tree);
  g_free(now.csv);
  g_free(now.index);
}

static void
snapshot_clear(Snapshot *s)
{
  g_clear_pointer(&s->csv, g_free);
  g_clear_pointer(&s->index, g_free);
}

static int
deliver(const char *store, const char *csv, guint n, guint64 fsize, char **err)
{
  g_autoptr(GBytes) m = fu_generated_message(n);
  const char *argv[] = { "mda", "--store", store, "--csv", csv,
                         deliver_no_sqlite ? "--no-sqlite" : NULL, NULL };
  FuRunOptions o = { .argv = argv, .stdin_bytes = m, .timeout = 60, .rlimit_fsize = fsize };
  FuResult r;
  fu_run(&o, &r);
  assert_false(r.timed_out);
  assert_int_equal(r.signal, 0);
  int rc = r.exit_code;
  if (err != NULL)
    *err = g_steal_pointer(&r.err);
  fu_result_clear(&r);
  return rc;
}

/* Run the binary with @argv; returns its exit code. */
static int
run_ok(const char *const *argv)
{
  FuRunOptions o = { .argv = argv, .timeout = 60 };
  FuResult r;
  fu_run(&o, &r);
  int rc = r.exit_code;
  if (rc != 0)
    print_message("%s: exit %d: %s\n", argv[0], rc, r.err);
  fu_result_clear(&r);
  return rc;
}

/* Deliver reports 0, 1, ... until three of them tempfail; each failure leaves the CSV,
 * the index and the tree as they were. Returns the number delivered (attempted). */
static guint
deliver_until_full(const char *store, const char *csv, guint64 fsize, guint *stored_out)
{
  guint stored = 0, failures = 0, i;
  for (i = 0; i < 400 && failures < 3; i++) {
    Snapshot before;
    snapshot_take(&before, store, csv);
    g_autofree char *err = NULL;
    int rc = deliver(store, csv, i, fsize, &err);
    if (rc == 0) {
      stored++;
    } else {
      if (rc != 75)
        fail_msg("delivery %u exited %d, not 0 or 75: %s", i, rc, err);
      if (failures == 0)
        print_message("first tempfail at report %u: %s", i, err);
      failures++;
      snapshot_assert_same(&before, store, csv);
      assert_true(fu_count_lines_with(err, "stdin") >= 1);
    }
    snapshot_clear(&before);
    if (g_file_test(csv, G_FILE_TEST_EXISTS))
      fu_check_csv(csv, NULL);
  }
  assert_true(stored >= 1);
  assert_int_equal(failures, 3);
  *stored_out = stored;
  return i;
}

static void
test_disk_full_mda(void **state)
{
  if (!can_mount) {
    print_message("cannot mount a tmpfs here: skipped\n");
    skip();
  }
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *mnt = g_build_filename(tmp, "mnt", NULL);
  assert_true(fu_mount_tmpfs(mnt, 256));
  g_autofree char *store = g_build_filename(mnt, "store", NULL);
  g_autofree char *csv = g_build_filename(mnt, "r.csv", NULL);

  guint stored = 0;
  guint n = deliver_until_full(store, csv, 0, &stored);
  print_message("256 KiB filesystem: %u of %u deliveries stored before it filled\n", stored, n);

  /* Space returns: every report redelivered (the MTA retries), each stored once. */
  assert_true(fu_remount(mnt, FALSE, 16 * 1024));
  for (guint i = 0; i < n; i++)
    assert_int_equal(deliver(store, csv, i, 0, NULL), 0);
  fu_check_exactly_once(store, csv, n);
  fu_umount(mnt);
  tu_rmtree(tmp);
}

static void
test_file_size_limit_mda(void **state)
{
  /* RLIMIT_FSIZE (with SIGXFSZ ignored, as an MTA sets it): the CSV hits the limit
   * (without the SQL index, whose files are larger than 16 KiB from the start). */
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  guint stored = 0;
  deliver_no_sqlite = TRUE;
  guint n = deliver_until_full(store, csv, 16 * 1024, &stored);
  deliver_no_sqlite = FALSE;
  print_message("RLIMIT_FSIZE 16 KiB: %u of %u deliveries stored\n", stored, n);
  struct stat st;
  assert_int_equal(stat(csv, &st), 0);
  assert_true(st.st_size <= 16 * 1024);
  /* The index, missing so far, is built for the reports already stored: a rerun adds
   * the rest (the reading side rebuilds it from the tree; here: reindexed at the end). */
  for (guint i = 0; i < n; i++)
    assert_int_equal(deliver(store, csv, i, 0, NULL), 0);
  g_autofree char *dbp = g_build_filename(store, "reports.sqlite", NULL);
  g_unlink(dbp);
  const char *reindex[] = { "reindex", "--store", store, NULL };
  assert_int_equal(run_ok(reindex), 0);
  fu_check_exactly_once(store, csv, n);
  tu_rmtree(tmp);
}

/* The index grows past RLIMIT_FSIZE: exit 75, nothing acknowledged (the tree, the
 * CSV and the dedup index as before), and a rerun completes it. (Its main file does:
 * every delivery's close empties the log, so the log never holds more than one.) */
static void
test_file_size_limit_index_mda(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  guint stored = 0;
  guint n = deliver_until_full(store, csv, 96 * 1024, &stored);
  print_message("RLIMIT_FSIZE 96 KiB, SQL index: %u of %u deliveries stored\n", stored, n);
  g_autofree char *wal = g_build_filename(store, "reports.sqlite-wal", NULL);
  struct stat st;
  assert_int_equal(stat(wal, &st), 0);
  assert_true(st.st_size <= 96 * 1024);
  for (guint i = 0; i < n; i++)
    assert_int_equal(deliver(store, csv, i, 0, NULL), 0);
  fu_check_exactly_once(store, csv, n);
  tu_rmtree(tmp);
}

/* The same with SIGXFSZ at its default action, as a shell's `ulimit -f` leaves it: the
 * program itself must ignore the signal, or the kernel kills it in the middle of a CSV
 * row instead of failing the write with EFBIG. */
static void
test_file_size_limit_sigxfsz_default(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  guint i;
  for (i = 0; i < 200; i++) {
    Snapshot before;
    snapshot_take(&before, store, csv);
    g_autoptr(GBytes) m = fu_generated_message(i);
    const char *argv[] = { "mda", "--store", store, "--csv", csv, NULL };
    FuRunOptions o = { .argv = argv, .stdin_bytes = m, .timeout = 60,
                       .rlimit_fsize = 16 * 1024, .sigxfsz_default = TRUE };
    FuResult r;
    fu_run(&o, &r);
    int rc = r.exit_code, sig = r.signal;
    fu_result_clear(&r);
    if (rc == 0) {
      snapshot_clear(&before);
      continue;
    }
    print_message("report %u: exit %d, signal %d\n", i, rc, sig);
    assert_int_equal(sig, 0);           /* not killed by SIGXFSZ */
    assert_int_equal(rc, 75);
    snapshot_assert_same(&before, store, csv);
    snapshot_clear(&before);
    break;
  }
  assert_true(i < 200);
  tu_rmtree(tmp);
}

/* Every message marked seen has its report in the CSV; every one still in new/ is there
 * byte for byte. Returns the number marked seen. */
static guint
check_maildir_acknowledged_only_stored(const char *md, const char *csv, guint total)
{
  g_autofree char *cur = g_build_filename(md, "cur", NULL);
  const char *acked[] = { cur, NULL };
  return fu_check_acknowledged_only_stored(md, acked, csv, total);
}

static void
test_disk_full_maildir(void **state)
{
  if (!can_mount) {
    print_message("cannot mount a tmpfs here: skipped\n");
    skip();
  }
  const guint total = 150;
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *mnt = g_build_filename(tmp, "mnt", NULL);
  g_autofree char *md = g_build_filename(tmp, "md", NULL);
  assert_true(fu_mount_tmpfs(mnt, 256));
  fu_make_maildir(md, 0, total);
  g_autofree char *store = g_build_filename(mnt, "store", NULL);
  g_autofree char *csv = g_build_filename(mnt, "r.csv", NULL);
  const char *argv[] = { "maildir", "--mark-seen", "--batch-size", "10", "--store", store,
                         "--csv", csv, md, NULL };
  FuRunOptions o = { .argv = argv, .timeout = 120 };
  FuResult r;
  fu_run(&o, &r);
  print_message("maildir on a full disk: exit %d; %s", r.exit_code, r.err);
  assert_int_equal(r.signal, 0);
  assert_int_equal(r.exit_code, 75);
  fu_result_clear(&r);
  guint seen = check_maildir_acknowledged_only_stored(md, csv, total);
  print_message("%u of %u marked seen before the disk filled\n", seen, total);
  assert_true(seen < total);
  assert_int_equal(seen, fu_check_index(store));

  assert_true(fu_remount(mnt, FALSE, 16 * 1024));
  fu_run(&o, &r);
  assert_int_equal(r.exit_code, 0);
  fu_result_clear(&r);
  assert_int_equal(check_maildir_acknowledged_only_stored(md, csv, total), total);
  fu_check_exactly_once(store, csv, total);
  fu_umount(mnt);
  tu_rmtree(tmp);
}

static void
test_read_only_store(void **state)
{
  if (!can_mount) {
    print_message("cannot mount a tmpfs here: skipped\n");
    skip();
  }
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *mnt = g_build_filename(tmp, "mnt", NULL);
  g_autofree char *md = g_build_filename(tmp, "md", NULL);
  assert_true(fu_mount_tmpfs(mnt, 4096));
  g_autofree char *store = g_build_filename(mnt, "store", NULL);
  g_autofree char *csv = g_build_filename(mnt, "r.csv", NULL);
  assert_int_equal(deliver(store, csv, 0, 0, NULL), 0);
  assert_true(fu_remount(mnt, TRUE, 0));

  Snapshot before;
  snapshot_take(&before, store, csv);
  g_autofree char *err = NULL;
  assert_int_equal(deliver(store, csv, 1, 0, &err), 75);
  print_message("read-only store, mda: %s", err);
  snapshot_assert_same(&before, store, csv);
  snapshot_clear(&before);

  fu_make_maildir(md, 1, 5);
  const char *argv[] = { "maildir", "--mark-seen", "--store", store, "--csv", csv, md, NULL };
  FuRunOptions o = { .argv = argv, .timeout = 60 };
  FuResult r;
  fu_run(&o, &r);
  print_message("read-only store, maildir: exit %d; %s", r.exit_code, r.err);
  assert_int_equal(r.exit_code, 75);
  fu_result_clear(&r);
  assert_int_equal(check_maildir_acknowledged_only_stored(md, csv, 5), 0);

  assert_true(fu_remount(mnt, FALSE, 0));
  fu_run(&o, &r);
  assert_int_equal(r.exit_code, 0);
  fu_result_clear(&r);
  fu_check_exactly_once(store, csv, 6);
  fu_umount(mnt);
  tu_rmtree(tmp);
}

int
main(void)
{
  can_mount = fu_can_mount();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_disk_full_mda),
    cmocka_unit_test(test_file_size_limit_mda),
    cmocka_unit_test(test_file_size_limit_index_mda),
    cmocka_unit_test(test_file_size_limit_sigxfsz_default),
    cmocka_unit_test(test_disk_full_maildir),
    cmocka_unit_test(test_read_only_store),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
