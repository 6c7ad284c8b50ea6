/* test_fault_concurrency.c - 100 `tlsrpt-ingest mda` processes delivering at once into
 * one store, one CSV and one JSON Lines file, some of them the same report: every
 * report stored once, every row whole, every exit 0. */
#include "../hostile/faultutil.c"

#include <signal.h>
#include <unistd.h>

#define PROCESSES 100u
#define DISTINCT 70u

static void
test_hundred_mda_at_once(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv = g_build_filename(tmp, "r.csv", NULL);
  g_autofree char *jsonl = g_build_filename(tmp, "r.jsonl", NULL);
  g_autofree char *logdir = g_build_filename(tmp, "logs", NULL);
  g_mkdir_with_parents(logdir, 0755);

  /* Message i carries report i % DISTINCT: 30 reports are delivered twice. */
  GPtrArray *inputs = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < PROCESSES; i++) {
    g_autoptr(GBytes) m = fu_generated_message(i % DISTINCT);
    char *p = g_strdup_printf("%s/in-%03u.eml", tmp, i);
    tu_write_file(p, g_bytes_get_data(m, NULL), g_bytes_get_size(m));
    g_ptr_array_add(inputs, p);
  }

  pid_t pids[PROCESSES];
  for (guint i = 0; i < PROCESSES; i++) {
    g_autofree char *log = g_strdup_printf("%s/%03u.log", logdir, i);
    const char *argv[] = { "mda", "--store", store, "--csv", csv, "--jsonl", jsonl, NULL };
    pids[i] = fu_spawn(argv, inputs->pdata[i], log);
  }
  guint failed = 0;
  for (guint i = 0; i < PROCESSES; i++) {
    int rc = fu_wait(pids[i]);
    if (rc != 0) {
      g_autofree char *log = g_strdup_printf("%s/%03u.log", logdir, i);
      g_autofree char *text = tu_read_file(log, NULL);
      print_message("delivery %u exited %d: %s", i, rc, text ? text : "");
      failed++;
    }
  }
  assert_int_equal(failed, 0);

  /* Exactly DISTINCT new reports across all logs, the rest duplicates. */
  guint stored = 0, dup = 0;
  for (guint i = 0; i < PROCESSES; i++) {
    g_autofree char *log = g_strdup_printf("%s/%03u.log", logdir, i);
    g_autofree char *text = tu_read_file(log, NULL);
    stored += fu_count_lines_with(text, ", 1 new");
    dup += fu_count_lines_with(text, "duplicate");
  }
  print_message("logs: %u stored, %u duplicates\n", stored, dup);
  assert_int_equal(stored, DISTINCT);
  assert_int_equal(dup, PROCESSES - DISTINCT);

  fu_check_exactly_once(store, csv, DISTINCT);
  /* JSON Lines: DISTINCT whole lines. */
  gsize len = 0;
  g_autofree char *data = tu_read_file(jsonl, &len);
  assert_non_null(data);
  assert_true(data[len - 1] == '\n');
  assert_int_equal(tu_count_lines(jsonl), DISTINCT);
  g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    if (!g_str_has_prefix(lines[i], "{") || !g_str_has_suffix(lines[i], "}"))
      fail_msg("jsonl line %u is not whole: %.60s", i + 1, lines[i]);
  g_ptr_array_unref(inputs);
  tu_rmtree(tmp);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_hundred_mda_at_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
