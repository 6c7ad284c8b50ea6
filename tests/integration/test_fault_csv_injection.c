/* test_fault_csv_injection.c - a report whose strings are built to attack a spreadsheet
 * and a terminal (fixtures/hostile/csv-injection*), as a loose file and inside messages
 * (base64, quoted-printable), through the real binary: the CSV is neutralized (formula
 * prefix, control characters replaced; byte for byte in tests/cli/160-*), the report's
 * deviations say so once per column, and the tree and JSON Lines keep every value
 * exactly; with --csv-raw the CSV holds the exact values and no deviation is added. */
#include "testutil.h"

#include <json-c/json.h>
#include <string.h>

static const char *const inputs[] = {
  "hostile/csv-injection.json",
  "hostile/csv-injection-base64.eml",
  "hostile/csv-injection-qp.eml",
};

/* The exact values of the fixture, as the report holds them. */
static const struct {
  const char *path;   /* '/'-separated keys below the report; "0" an array index */
  const char *value;
} exact[] = {
  { "organization-name",
    "=HYPERLINK(\"http://evil.example/\",\"x\")\x1b]0;pwned\x07\x1b[31mRED" },
  { "contact-info", "@SUM(1+1)" },
  { "report-id", "+cmd|' /C calc'!A0" },
  { "policies/0/failure-details/0/receiving-mx-helo", "\t=1+1" },
  { "policies/0/failure-details/0/failure-reason-code", "\x1b[2J\x1b[Hcleared" },
  { "policies/0/failure-details/0/additional-information", "-1+1\nline two\xc2\x9b" "31m" },
};

static const char *const csv_deviations[] = {
  "csv: formula-like value neutralized in organization-name",
  "csv: control characters replaced in organization-name",
  "csv: formula-like value neutralized in contact-info",
  "csv: formula-like value neutralized in report-id",
  "csv: formula-like value neutralized in receiving-mx-helo",
  "csv: control characters replaced in failure-reason-code",
  "csv: formula-like value neutralized in additional-information",
  "csv: control characters replaced in additional-information",
};

static json_object *
get_path(json_object *o, const char *path)
{
  g_auto(GStrv) parts = g_strsplit(path, "/", -1);
  for (guint i = 0; parts[i] != NULL && o != NULL; i++) {
    if (json_object_is_type(o, json_type_array))
      o = json_object_array_get_idx(o, (size_t) g_ascii_strtoull(parts[i], NULL, 10));
    else if (!json_object_object_get_ex(o, parts[i], &o))
      o = NULL;
  }
  return o;
}

/* @doc holds every exact value, and "csv: " deviations exactly when @want_devs. */
static void
check_report(const char *text, gsize len, gboolean want_devs)
{
  json_tokener *tok = json_tokener_new();
  json_object *doc = json_tokener_parse_ex(tok, text, (int) len);
  assert_non_null(doc);
  json_tokener_free(tok);
  for (gsize i = 0; i < G_N_ELEMENTS(exact); i++) {
    json_object *v = get_path(doc, exact[i].path);
    assert_non_null(v);
    assert_int_equal(json_object_get_string_len(v), strlen(exact[i].value));
    assert_memory_equal(json_object_get_string(v), exact[i].value, strlen(exact[i].value));
  }
  json_object *devs = get_path(doc, "ingest/deviations");
  guint csv_n = 0;
  for (size_t i = 0; devs != NULL && i < json_object_array_length(devs); i++) {
    json_object *d = json_object_array_get_idx(devs, i);
    /* Plain text or {"slug", "text"}. */
    json_object *t = json_object_is_type(d, json_type_object) ? get_path(d, "text") : d;
    const char *s = json_object_get_string(t);
    if (!g_str_has_prefix(s, "csv: "))
      continue;
    gboolean known = FALSE;
    for (gsize k = 0; k < G_N_ELEMENTS(csv_deviations); k++)
      known |= strcmp(s, csv_deviations[k]) == 0;
    if (!known)
      fail_msg("unexpected deviation '%s'", s);
    csv_n++;
  }
  /* Each once: as many as expected, all known. */
  assert_int_equal(csv_n, want_devs ? G_N_ELEMENTS(csv_deviations) : 0);
  json_object_put(doc);
}

/* The normalized report of the tree below @store (the file with an "ingest" object). */
static void
check_tree(const char *dir, gboolean want_devs, guint *found)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  assert_non_null(d);
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
      if (strcmp(name, "quarantine") != 0)
        check_tree(path, want_devs, found);
      continue;
    }
    if (!g_str_has_suffix(name, ".json"))
      continue;
    gsize len = 0;
    g_autofree char *text = tu_read_file(path, &len);
    if (strstr(text, "\"ingest\"") == NULL)
      continue;
    check_report(text, len, want_devs);
    (*found)++;
  }
  g_dir_close(d);
}

/* Run `file` on fixture @input with @extra options into a fresh store; check the tree,
 * the JSON Lines file and (when written) the CSV. */
static void
run_one(const char *input, const char *extra, gboolean csv, gboolean want_devs)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *csv_path = g_build_filename(tmp, "r.csv", NULL);
  g_autofree char *jsonl = g_build_filename(tmp, "r.jsonl", NULL);
  g_autofree char *fix = tu_fixture_path(input);
  const char *argv[12];
  guint n = 0;
  argv[n++] = "file";
  argv[n++] = "--store";
  argv[n++] = store;
  argv[n++] = "--jsonl";
  argv[n++] = jsonl;
  if (csv) {
    argv[n++] = "--csv";
    argv[n++] = csv_path;
  }
  if (extra != NULL)
    argv[n++] = extra;
  argv[n++] = fix;
  argv[n] = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GBytes) no_input = g_bytes_new_static("", 0);
  int rc = tu_run(argv, no_input, NULL, &err);
  if (rc != 0)
    fail_msg("%s: exit %d: %s", input, rc, err);

  gsize len = 0;
  g_autofree char *line = tu_read_file(jsonl, &len);
  assert_non_null(line);
  assert_true(len > 0 && line[len - 1] == '\n');
  assert_null(memchr(line, '\n', len - 1));      /* one record, one line */
  check_report(line, len - 1, want_devs);

  guint found = 0;
  check_tree(store, want_devs, &found);
  assert_int_equal(found, 1);

  if (csv) {
    g_autofree char *rows = tu_read_file(csv_path, &len);
    assert_non_null(rows);
    gboolean has_esc = memchr(rows, 0x1b, len) != NULL;
    if (extra != NULL && strcmp(extra, "--csv-raw") == 0) {
      assert_true(has_esc);
      assert_non_null(strstr(rows, ",\"=HYPERLINK("));
      assert_non_null(strstr(rows, ",@SUM(1+1),+cmd|"));
    } else {
      /* No control byte but TAB and the CR LF ending each of the 3 lines. */
      guint eols = 0;
      for (gsize i = 0; i < len; i++) {
        guchar c = (guchar) rows[i];
        if (c == '\r') {
          assert_true(i + 1 < len && rows[i + 1] == '\n');
          eols++;
          i++;
        } else {
          assert_true(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
      }
      assert_int_equal(eols, 3);
      assert_non_null(strstr(rows, ",\"'=HYPERLINK("));
      assert_non_null(strstr(rows, ",'@SUM(1+1),'+cmd|"));
      assert_non_null(strstr(rows, ",\\x1b[2J\\x1b[Hcleared,"));
    }
  }
  tu_rmtree(tmp);
}

static void
test_neutralized_csv_exact_tree_and_jsonl(void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS(inputs); i++)
    run_one(inputs[i], NULL, TRUE, TRUE);
}

static void
test_csv_raw_exact_and_no_deviation(void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS(inputs); i++)
    run_one(inputs[i], "--csv-raw", TRUE, FALSE);
}

/* Without a CSV nothing is neutralized, so nothing is said. */
static void
test_no_csv_no_deviation(void **state)
{
  (void) state;
  run_one(inputs[0], NULL, FALSE, FALSE);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_neutralized_csv_exact_tree_and_jsonl),
    cmocka_unit_test(test_csv_raw_exact_and_no_deviation),
    cmocka_unit_test(test_no_csv_no_deviation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
