/* test_fault_kill.c - SIGKILL at random points (deterministic seed), then rerun: every
 * report ends up stored exactly once, the CSV has no torn, interleaved or duplicate row,
 * and no temporary file is left where a reader would take it for data.
 *
 *  - kill mid-batch: a Maildir of 2,000 reports, --mark-seen, --batch-size 50;
 *  - crash consistency of the dedup index: --batch-size 1 and no --mark-seen, so every
 *    rerun sees every message again and only the index tells stored from new.
 *
 * After the final run no ".tmp-*" file of the killed runs is left anywhere in the store.
 * And the sweep that removes them spares a live concurrent writer's temporary files.
 *
 * TLSRPT_FAULT_KILLS overrides the number of kills (default 24 and 30). */
#include "../hostile/faultutil.c"

#include "common.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILL_SEED 20240601u
/* Seconds every run but the early ones is given before its share of the work: about
 * what starting the process and opening the store take (a few ms here). Larger, and a
 * fast build finishes 2,000 messages before the kill. */
#define KILL_BASE 0.01

static guint
kills_wanted(guint dflt)
{
  const char *e = g_getenv("TLSRPT_FAULT_KILLS");
  return e != NULL && atoi(e) > 0 ? (guint) atoi(e) : dflt;
}

/* How much of the work is done so far (messages marked seen, or index lines). */
typedef guint (*DoneFn)(const char *path);

static guint
done_seen(const char *md)
{
  g_autofree char *cur = g_build_filename(md, "cur", NULL);
  return fu_count_in_dir(cur, ":2,S");
}

static guint
done_indexed(const char *store)
{
  g_autofree char *index = g_build_filename(store, ".index", NULL);
  return tu_count_lines(index);
}

/* Run @argv repeatedly, killing it after a random delay, until @kills runs were killed
 * while still running. The delays adapt to the measured speed so that the kills are
 * spread over the whole job rather than all at its start: each run gets about an equal
 * share of the remaining work, times a random factor in [0.2, 1.8); a third of the runs
 * are killed within 20 ms (start-up, recovery, first writes) instead. */
static guint
kill_repeatedly(const char *const *argv, const char *log, guint kills, GRand *rng,
                guint total, DoneFn done_fn, const char *done_path)
{
  guint killed = 0, attempts = 0;
  double rate = 5000.0;       /* work units per second: high at first (early kills),
                                 refined from the measured progress */
  double alive = 0;
  guint progress = 0;
  while (killed < kills) {
    if (++attempts > kills * 4)
      fail_msg("only %u of %u runs were still running when killed", killed, kills);
    guint before = done_fn(done_path);
    guint left = total > before ? total - before : 0;
    double share = (double) left / (kills - killed + 2) / rate;
    double delay = g_rand_int_range(rng, 0, 3) == 0
                       ? g_rand_double_range(rng, 0, 0.02)
                       : KILL_BASE + share * g_rand_double_range(rng, 0.2, 1.8);
    gint64 t0 = g_get_monotonic_time();
    pid_t pid = fu_spawn(argv, NULL, log);
    g_usleep((gulong) (delay * 1e6));
    kill(pid, SIGKILL);
    int rc = fu_wait(pid);
    double ran = (g_get_monotonic_time() - t0) / 1e6;
    guint after = done_fn(done_path);
    if (rc != -SIGKILL) {
      if (rc != 0 && rc != 1)
        fail_msg("run exited %d before it could be killed (see %s)", rc, log);
      print_message("a run finished its work before the kill (%u killed so far)\n", killed);
      break;
    }
    killed++;
    if (after > before && ran > KILL_BASE) {
      progress += after - before;
      alive += ran - KILL_BASE;
      rate = MAX(progress / alive, 20.0);
    }
  }
  print_message("%u runs killed (%u attempts), %u of %u done before the final run, "
                "%.0f units/s\n", killed, attempts, done_fn(done_path), total, rate);
  return killed;
}

/* No ".tmp-*" file anywhere below @store (its quarantine included). */
static void
assert_no_tmp_left(const char *store)
{
  g_autoptr(GPtrArray) tmp = fu_list_tmp_files(store);
  if (tmp->len > 0)
    fail_msg("%u .tmp-* files left after the final run, e.g. %s", tmp->len,
             (const char *) tmp->pdata[0]);
}

static void
test_kill_mid_batch(void **state)
{
  const guint n = 2000;
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *md = g_build_filename(tmp, "md", NULL);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  g_autofree char *log = g_build_filename(tmp, "log", NULL);
  fu_make_maildir(md, 0, n);

  const char *argv[] = { "maildir", "--mark-seen", "--store", store, "--csv", csv,
                         "--batch-size", "50", md, NULL };
  g_autoptr(GRand) rng = g_rand_new_with_seed(KILL_SEED);
  guint kills = kill_repeatedly(argv, log, kills_wanted(24), rng, n, done_seen, md);
  assert_true(kills >= MIN(kills_wanted(24), 20u));

  /* After the kills: whatever is marked seen is stored (the commit rule). */
  g_autofree char *cur = g_build_filename(md, "cur", NULL);
  guint seen = fu_count_in_dir(cur, ":2,S");
  guint indexed = fu_check_index(store);
  print_message("after the kills: %u of %u marked seen, %u in the index\n", seen, n, indexed);
  assert_true(seen <= indexed);

  FuRunOptions o = { .argv = argv, .timeout = 300 };
  FuResult r;
  fu_run(&o, &r);
  print_message("final run: exit %d, %.1f s; %s", r.exit_code, r.wall, r.err);
  assert_int_equal(r.exit_code, 0);
  fu_result_clear(&r);

  fu_check_exactly_once(store, csv, n);
  assert_no_tmp_left(store);
  g_autofree char *new_dir = g_build_filename(md, "new", NULL);
  assert_int_equal(fu_count_in_dir(new_dir, NULL), 0);
  assert_int_equal(fu_count_in_dir(cur, ":2,S"), n);
  tu_rmtree(tmp);
}

static void
test_kill_index_updates(void **state)
{
  /* Enough work for 30 kills: a run skips what earlier runs committed, so the work left
   * shrinks quickly. */
  const guint n = 1000;
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *md = g_build_filename(tmp, "md", NULL);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  g_autofree char *jsonl = g_build_filename(tmp, "r.jsonl", NULL);
  g_autofree char *log = g_build_filename(tmp, "log", NULL);
  fu_make_maildir(md, 0, n);

  const char *argv[] = { "maildir", "--store", store, "--csv", csv, "--jsonl", jsonl,
                         "--batch-size", "1", md, NULL };
  g_autoptr(GRand) rng = g_rand_new_with_seed(KILL_SEED + 1);
  guint kills = kill_repeatedly(argv, log, kills_wanted(30), rng, n, done_indexed, store);
  assert_true(kills >= MIN(kills_wanted(30), 20u));

  /* Recovery from the last kill happens at the next lock, so the files are checked after
   * the rerun: a report in the index without its rows (stored looking new would be the
   * reverse) shows as a missing or duplicate row. */
  FuRunOptions o = { .argv = argv, .timeout = 300 };
  FuResult r;
  fu_run(&o, &r);
  print_message("final run: exit %d, %.1f s; %s", r.exit_code, r.wall, r.err);
  assert_int_equal(r.exit_code, 0);
  fu_result_clear(&r);

  fu_check_exactly_once(store, csv, n);
  assert_no_tmp_left(store);
  /* JSON Lines: one whole line per report. */
  gsize len = 0;
  g_autofree char *data = tu_read_file(jsonl, &len);
  assert_non_null(data);
  assert_true(len > 0 && data[len - 1] == '\n');
  g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  guint count = 0;
  for (guint i = 0; lines[i] != NULL; i++) {
    if (lines[i][0] == '\0')
      continue;
    g_autoptr(TrJson) obj = json_tokener_parse(lines[i]);
    if (obj == NULL || !json_object_is_type(obj, json_type_object))
      fail_msg("jsonl line %u is not a JSON object: %.80s", i + 1, lines[i]);
    struct json_object *id = NULL;
    assert_true(json_object_object_get_ex(obj, "report-id", &id));
    if (!g_hash_table_add(seen, g_strdup(json_object_get_string(id))))
      fail_msg("jsonl: report %s twice", json_object_get_string(id));
    count++;
  }
  assert_int_equal(count, n);

  /* And once more: everything is a duplicate, nothing appended. */
  gsize before = 0;
  g_free(tu_read_file(csv, &before));
  fu_run(&o, &r);
  assert_int_equal(r.exit_code, 0);
  gsize after = 0;
  g_free(tu_read_file(csv, &after));
  assert_int_equal(before, after);
  assert_int_equal(fu_check_index(store), n);
  fu_result_clear(&r);
  tu_rmtree(tmp);
}

/* ---- a live concurrent writer's temporary files are spared --------------- */

/* Directories below @store (not the quarantine) that hold a stored report. */
static void
leaf_dirs(const char *dir, GPtrArray *out)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  assert_non_null(d);
  gboolean has_report = FALSE;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *child = g_build_filename(dir, name, NULL);
    if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK)) {
      if (strcmp(name, "quarantine") != 0)
        leaf_dirs(child, out);
    } else if (name[0] != '.' && g_str_has_suffix(name, ".json")) {
      has_report = TRUE;
    }
  }
  g_dir_close(d);
  if (has_report)
    g_ptr_array_add(out, g_strdup(dir));
}

static pid_t
reaped_pid(void)
{
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(0);
  assert_int_equal(waitpid(pid, NULL, 0), pid);
  return pid;
}

/* A writer process that creates a temporary file, named as the store names them, in
 * each of @dirs, keeps them open and goes on writing to them until killed. Returns
 * its pid once the files exist; their paths go to @paths. */
static pid_t
start_live_writer(GPtrArray *dirs, GPtrArray *paths)
{
  int ready[2];
  assert_int_equal(pipe(ready), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(ready[0]);
    int fds[16];
    guint n = MIN(dirs->len, G_N_ELEMENTS(fds));
    for (guint i = 0; i < n; i++) {
      g_autofree char *p = g_strdup_printf("%s/.tmp-live!w!%u.json-%d-0011aabb",
                                           (const char *) dirs->pdata[i], i, (int) getpid());
      fds[i] = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
      if (fds[i] < 0 || write(fds[i], "partial", 7) != 7)
        _exit(1);
    }
    if (write(ready[1], "r", 1) != 1)
      _exit(1);
    for (;;) {
      for (guint i = 0; i < n; i++)
        if (write(fds[i], ".", 1) != 1)
          _exit(1);
      usleep(20000);
    }
  }
  close(ready[1]);
  char c;
  assert_int_equal(read(ready[0], &c, 1), 1);
  close(ready[0]);
  for (guint i = 0; i < dirs->len && i < 16; i++)
    g_ptr_array_add(paths, g_strdup_printf("%s/.tmp-live!w!%u.json-%d-0011aabb",
                                           (const char *) dirs->pdata[i], i, (int) pid));
  return pid;
}

static void
plant_dead(GPtrArray *dirs, pid_t dead, GPtrArray *paths)
{
  for (guint i = 0; i < dirs->len; i++) {
    g_autofree char *p = g_strdup_printf("%s/.tmp-dead!w!%u.json.gz-%d-99887766",
                                         (const char *) dirs->pdata[i], i, (int) dead);
    tu_write_file(p, "half a report", 13);
    g_ptr_array_add(paths, g_steal_pointer(&p));
  }
}

static pid_t live_writer;       /* killed by main() too, should a test fail first */

static void
assert_all(GPtrArray *paths, gboolean exist)
{
  for (guint i = 0; i < paths->len; i++)
    if (g_file_test(paths->pdata[i], G_FILE_TEST_EXISTS) != exist)
      fail_msg("%s should %s", (const char *) paths->pdata[i], exist ? "exist" : "be gone");
}

static void
test_sweep_spares_live_writer(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *md = g_build_filename(tmp, "md", NULL);
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *quarantine = g_build_filename(store, "quarantine", NULL);
  g_autofree char *log = g_build_filename(tmp, "log", NULL);
  fu_make_maildir(md, 0, 40);
  const char *argv[] = { "maildir", "--store", store, "--batch-size", "10", md, NULL };
  FuRunOptions o = { .argv = argv, .timeout = 120 };
  FuResult r;
  fu_run(&o, &r);
  assert_int_equal(r.exit_code, 0);
  fu_result_clear(&r);

  g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
  leaf_dirs(store, dirs);
  assert_true(dirs->len >= 1);
  g_mkdir_with_parents(quarantine, 0750);
  g_ptr_array_add(dirs, g_strdup(quarantine));

  /* 1. Recovery: a non-empty journal (a commit that died before writing anything), found
   *    by the next run that takes the lock: one with new reports but --no-store, so no
   *    commit writes in the tree or the quarantine: the recovery's sweep alone. */
  g_autoptr(GPtrArray) live = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) dead = g_ptr_array_new_with_free_func(g_free);
  pid_t writer = live_writer = start_live_writer(dirs, live);
  plant_dead(dirs, reaped_pid(), dead);
  g_autofree char *index = g_build_filename(store, ".index", NULL);
  struct stat st;
  assert_int_equal(stat(index, &st), 0);
  g_autofree char *journal = g_strdup_printf("tlsrpt-journal 1\nindex %lld\nend\n",
                                             (long long) st.st_size);
  g_autofree char *jpath = g_build_filename(store, ".journal", NULL);
  tu_write_file(jpath, journal, strlen(journal));
  g_autofree char *md2 = g_build_filename(tmp, "md2", NULL);
  g_autofree char *jsonl = g_build_filename(tmp, "r.jsonl", NULL);
  fu_make_maildir(md2, 80, 5);
  const char *argv2[] = { "maildir", "--store", store, "--no-store", "--jsonl", jsonl, md2,
                          NULL };
  FuRunOptions o2 = { .argv = argv2, .timeout = 120 };
  fu_run(&o2, &r);
  assert_int_equal(r.exit_code, 0);
  fu_result_clear(&r);
  assert_int_equal(tu_count_lines(jsonl), 5);
  assert_int_equal(stat(jpath, &st), 0);
  assert_int_equal(st.st_size, 0);                /* recovered */
  assert_all(dead, FALSE);
  assert_all(live, TRUE);

  /* 2. Once per run in the directories a commit writes in (no journal): new reports. */
  g_ptr_array_set_size(dead, 0);
  plant_dead(dirs, reaped_pid(), dead);
  fu_make_maildir(md, 40, 40);
  fu_run(&o, &r);
  assert_int_equal(r.exit_code, 0);
  fu_result_clear(&r);
  guint swept = 0;
  for (guint i = 0; i + 1 < dirs->len; i++)      /* the tree's; not the quarantine */
    swept += !g_file_test(dead->pdata[i], G_FILE_TEST_EXISTS);
  assert_true(swept >= 1);
  assert_all(live, TRUE);

  /* The live writer's files were never touched: still its, still growing. */
  for (guint i = 0; i < live->len; i++) {
    gsize len = 0;
    g_autofree char *data = tu_read_file(live->pdata[i], &len);
    assert_non_null(data);
    assert_true(len >= 7 && memcmp(data, "partial", 7) == 0);
  }
  kill(writer, SIGKILL);
  assert_int_equal(waitpid(writer, NULL, 0), writer);
  live_writer = 0;

  /* 3. Once the writer is dead, the next recovery removes its files too. */
  assert_int_equal(stat(index, &st), 0);
  g_free(journal);
  journal = g_strdup_printf("tlsrpt-journal 1\nindex %lld\nend\n", (long long) st.st_size);
  tu_write_file(jpath, journal, strlen(journal));
  fu_make_maildir(md2, 90, 5);
  fu_run(&o2, &r);
  assert_int_equal(r.exit_code, 0);
  fu_result_clear(&r);
  assert_all(live, FALSE);
  assert_no_tmp_left(store);
  tu_rmtree(tmp);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_kill_mid_batch),
    cmocka_unit_test(test_kill_index_updates),
    cmocka_unit_test(test_sweep_spares_live_writer),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  if (live_writer > 0)
    kill(live_writer, SIGKILL);
  return rc;
}
