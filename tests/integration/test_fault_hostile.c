/* test_fault_hostile.c - hostile input through the real binary: every case of
 * tests/hostile/hostile.c gets its expected outcome, a one-line reason in the log and in
 * the quarantine, no crash, no hang, and nothing written outside the store. Plus the
 * gzip bomb (memory and CPU measured), 1 GB header lines, symlinks planted in the store,
 * and every committed fixture of fixtures/hostile/ replayed through the stage chain.
 *
 * `test_fault_hostile --write-fixtures DIR` writes the small cases to DIR (that is how
 * fixtures/hostile/ was made). */
#include "../hostile/faultutil.c"
#include "../hostile/hostile.c"

#include "mime-walk.h"
#include "pipeline.h"
#include "report-parse.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

/* ---- helpers -------------------------------------------------------------- */

typedef struct {
  char *tmp;        /* TMP */
  char *cage;       /* TMP/a/b: holds only store/ and r.csv afterwards */
  char *store;      /* TMP/a/b/store */
  char *csv;        /* TMP/a/b/r.csv */
} Cage;

static void
cage_init(Cage *c)
{
  c->tmp = tu_mkdtemp();
  c->cage = g_build_filename(c->tmp, "a", "b", NULL);
  g_mkdir_with_parents(c->cage, 0755);
  c->store = g_build_filename(c->cage, "store", NULL);
  c->csv = g_build_filename(c->cage, "r.csv", NULL);
}

static void
cage_clear(Cage *c)
{
  tu_rmtree(c->tmp);
  g_free(c->tmp);
  g_free(c->cage);
  g_free(c->store);
  g_free(c->csv);
}

/* Nothing but store/ (and r.csv) in the cage, nothing else in its parents, nothing
 * where the hostile names point. */
static void
cage_check_outside(const Cage *c)
{
  g_autofree char *a = g_build_filename(c->tmp, "a", NULL);
  assert_int_equal(fu_count_in_dir(c->tmp, NULL), 1);
  assert_int_equal(fu_count_in_dir(a, NULL), 1);
  GDir *d = g_dir_open(c->cage, 0, NULL);
  assert_non_null(d);
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL)
    if (strcmp(name, "store") != 0 && strcmp(name, "r.csv") != 0)
      fail_msg("written outside the store: %s/%s", c->cage, name);
  g_dir_close(d);
  assert_false(g_file_test("/tmp/tlsrpt-evil", G_FILE_TEST_EXISTS));
  assert_false(g_file_test("/tmp/tlsrpt-evil-abs", G_FILE_TEST_EXISTS));
  assert_false(g_file_test("/tmp/tlsrpt-evil.json.gz", G_FILE_TEST_EXISTS));
}

/* No control characters (terminal escapes, injected line breaks) in the log. */
static void
check_log_clean(const char *err)
{
  for (const guchar *p = (const guchar *) err; *p; p++)
    if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
      fail_msg("log holds control byte 0x%02x: %s", *p, err);
}

static char *
quarantine_dir(const Cage *c)
{
  return g_build_filename(c->store, "quarantine", NULL);
}

/* The text of the only .reason file of the quarantine (transfer full). */
static char *
quarantine_reason(const Cage *c)
{
  g_autofree char *q = quarantine_dir(c);
  GDir *d = g_dir_open(q, 0, NULL);
  if (d == NULL)
    return NULL;
  char *text = NULL;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL)
    if (g_str_has_suffix(name, ".reason")) {
      g_autofree char *p = g_build_filename(q, name, NULL);
      text = tu_read_file(p, NULL);
    }
  g_dir_close(d);
  return text;
}

static gboolean
contains_ci(const char *hay, const char *needle)
{
  g_autofree char *h = g_ascii_strdown(hay, -1);
  g_autofree char *n = g_ascii_strdown(needle, -1);
  return strstr(h, n) != NULL;
}

/* Run @msg through `mda` in a fresh cage and check everything a hostile case must
 * satisfy whatever its outcome. Leaves the result in @r. */
static void
run_mda_caged(const Cage *c, GBytes *msg, const char *const *extra, FuResult *r)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, (gpointer) "mda");
  g_ptr_array_add(argv, (gpointer) "--store");
  g_ptr_array_add(argv, c->store);
  g_ptr_array_add(argv, (gpointer) "--csv");
  g_ptr_array_add(argv, c->csv);
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) extra[i]);
  g_ptr_array_add(argv, NULL);
  FuRunOptions o = { .argv = (const char *const *) argv->pdata, .stdin_bytes = msg,
                     .timeout = 60 };
  fu_run(&o, r);
  if (r->timed_out)
    fail_msg("timed out after %.1f s; log: %s", r->wall, r->err);
  if (r->signal != 0)
    fail_msg("killed by signal %d; log: %s", r->signal, r->err);
  check_log_clean(r->err);
  cage_check_outside(c);
}

/* ---- the table -------------------------------------------------------------- */

static void
test_hostile_case(void **state)
{
  const HostileCase *hc = *state;
  Cage c;
  cage_init(&c);
  g_autoptr(GBytes) msg = hc->make();
  FuResult r;
  run_mda_caged(&c, msg, NULL, &r);
  print_message("%s: %zu bytes, exit %d, %.2f s CPU, %ld KiB peak; log: %s", hc->name,
                g_bytes_get_size(msg), r.exit_code, fu_cpu(&r), r.ru.ru_maxrss, r.err);
  assert_int_equal(r.exit_code, 0);

  guint stored = fu_check_store_tree(c.store, NULL);
  g_autofree char *q = quarantine_dir(&c);
  guint quarantined = fu_count_in_dir(q, ".eml");
  g_autofree char *reason = quarantine_reason(&c);
  /* One line per message, whatever the outcome. */
  assert_int_equal(fu_count_lines_with(r.err, "stdin"), 1);

  switch (hc->outcome) {
  case HOSTILE_STORED:
    assert_int_equal(stored, hc->reports);
    assert_int_equal(quarantined, 0);
    assert_int_equal(fu_check_index(c.store), hc->reports);
    assert_true(fu_check_csv(c.csv, NULL) >= hc->reports);
    assert_int_equal(fu_count_lines_with(r.err, "stored"), 1);
    break;
  case HOSTILE_QUARANTINED:
    assert_int_equal(stored, 0);
    assert_int_equal(quarantined, 1);
    assert_non_null(reason);
    assert_int_equal(fu_count_lines_with(r.err, "quarantined"), 1);
    if (hc->reason != NULL && !contains_ci(r.err, hc->reason))
      fail_msg("%s: the log line does not say '%s': %s", hc->name, hc->reason, r.err);
    if (hc->reason != NULL && !contains_ci(reason, hc->reason))
      fail_msg("%s: the .reason file does not say '%s': %s", hc->name, hc->reason, reason);
    assert_int_equal(fu_check_index(c.store), 0);
    break;
  case HOSTILE_NOT_REPORT:
    assert_int_equal(stored, 0);
    assert_int_equal(quarantined, 0);
    assert_int_equal(fu_count_lines_with(r.err, "not a report"), 1);
    break;
  }
  fu_result_clear(&r);
  cage_clear(&c);
}

/* ---- gzip bomb -------------------------------------------------------------- */

/* The bomb generator itself: what it makes inflates to exactly that many zeros. */
static void
test_gzip_zeros_generator(void **state)
{
  const gsize n = 16u * 1024 * 1024;
  g_autoptr(GBytes) gz = fu_gzip_zeros(n);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
  g_autofree guint8 *out = g_malloc(n + 1);
  zs.next_in = (Bytef *) g_bytes_get_data(gz, NULL);
  zs.avail_in = (uInt) g_bytes_get_size(gz);
  zs.next_out = out;
  zs.avail_out = (uInt) n + 1;
  assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);   /* CRC and ISIZE checked */
  assert_int_equal(zs.total_out, n);
  assert_int_equal(zs.avail_in, 0);
  inflateEnd(&zs);
  for (gsize i = 0; i < n; i += 4096)
    assert_int_equal(out[i], 0);
}

static void
run_file_measured(const char *store, const char *path, const char *cap, FuResult *r)
{
  const char *argv[] = { "file", "--store", store, "--max-report-size", cap, path, NULL };
  FuRunOptions o = { .argv = argv, .timeout = 60 };
  fu_run(&o, r);
  assert_false(r->timed_out);
  assert_int_equal(r->signal, 0);
}

static void
test_gzip_bomb(void **state)
{
  const guint64 zeros = 4ull * 1024 * 1024 * 1024;
  const gsize cap = 8u * 1024 * 1024;
  g_autofree char *tmp = tu_mkdtemp();
  g_autoptr(GBytes) bomb = fu_gzip_zeros(zeros);
  print_message("bomb: %zu bytes of gzip for 4 GiB of zeros\n", g_bytes_get_size(bomb));
  assert_true(g_bytes_get_size(bomb) < 16u * 1024 * 1024);

  /* Baseline: the same command on a small valid report. */
  g_autofree char *ok_path = g_build_filename(tmp, "in", "ok.json", NULL);
  tu_write_file(ok_path, hostile_valid_json, strlen(hostile_valid_json));
  g_autofree char *store0 = g_build_filename(tmp, "store0", NULL);
  FuResult base;
  run_file_measured(store0, ok_path, "8M", &base);
  assert_int_equal(base.exit_code, 0);

  g_autofree char *bomb_path = g_build_filename(tmp, "in", "bomb.json.gz", NULL);
  tu_write_file(bomb_path, g_bytes_get_data(bomb, NULL), g_bytes_get_size(bomb));
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  FuResult r;
  run_file_measured(store, bomb_path, "8M", &r);
  long delta_kib = r.ru.ru_maxrss - base.ru.ru_maxrss;
  print_message("bomb: exit %d, %.3f s CPU, peak %ld KiB (baseline %ld KiB, +%ld KiB, "
                "cap %zu KiB); log: %s",
                r.exit_code, fu_cpu(&r), r.ru.ru_maxrss, base.ru.ru_maxrss, delta_kib,
                cap / 1024, r.err);
  assert_int_equal(r.exit_code, 1);               /* batch: quarantined */
  assert_int_equal(fu_check_store_tree(store, NULL), 0);
  g_autofree char *q = g_build_filename(store, "quarantine", NULL);
  assert_int_equal(fu_count_in_dir(q, ".reason"), 1);
  assert_true(contains_ci(r.err, "max-report-size") || contains_ci(r.err, "too large"));
  /* Memory: the input file is held (4 MB) plus at most the cap, with slack for the
   * doubling of the output buffer: below twice the cap over the baseline. */
  FU_ASSERT_RSS(delta_kib < (long) (2 * cap / 1024));
  assert_true(fu_cpu(&r) < 1.0 * FU_CPU_FACTOR);
  fu_result_clear(&base);
  fu_result_clear(&r);

  /* The same bomb mailed (base64, 5.5 MB message) at the default cap of 64M. */
  Cage c;
  cage_init(&c);
  g_autoptr(GBytes) msg = fu_report_message(bomb, NULL, NULL);
  run_mda_caged(&c, msg, NULL, &r);
  print_message("mailed bomb: exit %d, %.3f s CPU, peak %ld KiB; log: %s", r.exit_code,
                fu_cpu(&r), r.ru.ru_maxrss, r.err);
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(fu_count_lines_with(r.err, "quarantined"), 1);
  FU_ASSERT_RSS(r.ru.ru_maxrss < (long) (2 * TR_DEFAULT_MAX_REPORT_SIZE / 1024 +
                                         8 * g_bytes_get_size(msg) / 1024 +
                                         (gsize) base.ru.ru_maxrss));
  assert_true(fu_cpu(&r) < 1.0 * FU_CPU_FACTOR);
  fu_result_clear(&r);
  cage_clear(&c);
  tu_rmtree(tmp);
}

/* ---- 1 GB header line ------------------------------------------------------- */

typedef struct {
  guint64 line_bytes;
} LongHeader;

static void
write_all(int fd, const void *data, gsize len)
{
  const guint8 *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;                   /* the reader went away: fine, it may stop reading */
    p += n;
    len -= (gsize) n;
  }
}

static void
long_header_writer(int fd, gpointer data)
{
  const LongHeader *lh = data;
  static char block[1 << 20];
  memset(block, 'a', sizeof block);
  write_all(fd, "X-Long: ", 8);
  for (guint64 left = lh->line_bytes; left > 0;) {
    gsize n = (gsize) MIN(left, (guint64) sizeof block);
    write_all(fd, block, n);
    left -= n;
  }
  g_autoptr(GBytes) msg = hostile_gzip_not_json();  /* any message: appended after */
  write_all(fd, "\r\n", 2);
  write_all(fd, g_bytes_get_data(msg, NULL), g_bytes_get_size(msg));
}

static void
test_header_line_1g_mda(void **state)
{
  Cage c;
  cage_init(&c);
  LongHeader lh = { 1024ull * 1024 * 1024 };
  const char *argv[] = { "mda", "--store", c.store, "--csv", c.csv, NULL };
  FuRunOptions o = { .argv = argv, .stdin_writer = long_header_writer,
                     .stdin_writer_data = &lh, .timeout = 120 };
  FuResult r;
  fu_run(&o, &r);
  print_message("1 GB header, mda: exit %d, %.2f s, peak %ld KiB; log: %s", r.exit_code,
                r.wall, r.ru.ru_maxrss, r.err);
  assert_false(r.timed_out);
  /* More than twice --max-message-size: not held, left to the MTA. */
  assert_int_equal(r.exit_code, 75);
  assert_true(contains_ci(r.err, "max-message-size"));
  assert_int_equal(fu_check_store_tree(c.store, NULL), 0);
  g_autofree char *q = quarantine_dir(&c);
  assert_int_equal(fu_count_in_dir(q, NULL), 0);
  /* Never more than twice the limit in memory. */
  FU_ASSERT_RSS(r.ru.ru_maxrss < 3 * (long) (TR_DEFAULT_MAX_MESSAGE_SIZE / 1024));
  cage_check_outside(&c);
  fu_result_clear(&r);
  cage_clear(&c);
}

static void
test_header_line_40m_mda(void **state)
{
  Cage c;
  cage_init(&c);
  LongHeader lh = { 40ull * 1024 * 1024 };
  const char *argv[] = { "mda", "--store", c.store, NULL };
  FuRunOptions o = { .argv = argv, .stdin_writer = long_header_writer,
                     .stdin_writer_data = &lh, .timeout = 60 };
  FuResult r;
  fu_run(&o, &r);
  print_message("40 MB header, mda: exit %d; log: %s", r.exit_code, r.err);
  /* Over the limit but within twice it: kept in the quarantine, the MTA is done. */
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(fu_count_lines_with(r.err, "quarantined"), 1);
  g_autofree char *reason = quarantine_reason(&c);
  assert_non_null(reason);
  assert_true(contains_ci(reason, "max-message-size"));
  fu_result_clear(&r);
  cage_clear(&c);
}

static void
test_header_line_1g_maildir(void **state)
{
  Cage c;
  cage_init(&c);
  g_autofree char *md = g_build_filename(c.tmp, "md", NULL);
  fu_make_maildir(md, 1, 2);
  g_autofree char *big = g_build_filename(md, "new", "1800000000.M1P1.big", NULL);
  int fd = open(big, O_WRONLY | O_CREAT | O_EXCL, 0644);
  assert_true(fd >= 0);
  LongHeader lh = { 1024ull * 1024 * 1024 };
  long_header_writer(fd, &lh);
  close(fd);
  g_autofree char *md_arg = g_strdup(md);
  const char *argv[] = { "maildir", "--mark-seen", "--store", c.store, md_arg, NULL };
  FuRunOptions o = { .argv = argv, .timeout = 60 };
  FuResult r;
  fu_run(&o, &r);
  g_unlink(big);
  g_autofree char *md_new = g_build_filename(md, "new", NULL);
  print_message("1 GB header, maildir: exit %d, peak %ld KiB; log: %s", r.exit_code,
                r.ru.ru_maxrss, r.err);
  assert_false(r.timed_out);
  assert_int_equal(r.exit_code, TR_EXIT_SKIPPED);  /* issue 19 item 3: a skip is not 0 */
  assert_int_equal(fu_count_lines_with(r.err, "1800000000.M1P1.big"), 1);
  assert_true(contains_ci(r.err, "max-message-size"));
  assert_true(contains_ci(r.err, "skipped=1"));
  /* The two good ones stored, the big one left where it was (not marked seen). */
  assert_int_equal(fu_check_store_tree(c.store, NULL), 2);
  FU_ASSERT_RSS(r.ru.ru_maxrss < 2 * (long) (TR_DEFAULT_MAX_MESSAGE_SIZE / 1024));
  fu_result_clear(&r);
  cage_clear(&c);
}

/* ---- symlinks planted in the store ------------------------------------------ */

static void
check_symlink_refused(const char *link_rel, GBytes *msg)
{
  Cage c;
  cage_init(&c);
  g_autofree char *outside = g_build_filename(c.tmp, "outside", NULL);
  g_mkdir_with_parents(outside, 0755);
  g_autofree char *target = g_build_filename(outside, "target", NULL);
  g_mkdir_with_parents(c.store, 0755);
  g_autofree char *link = g_build_filename(c.store, link_rel, NULL);
  g_autofree char *parent = g_path_get_dirname(link);
  g_mkdir_with_parents(parent, 0755);
  /* A directory target for directories, a missing file for files. */
  gboolean dir_target = link_rel[0] != '.';
  if (dir_target)
    g_mkdir_with_parents(target, 0755);
  assert_int_equal(symlink(target, link), 0);

  const char *argv[] = { "mda", "--store", c.store, "--csv", c.csv, NULL };
  FuRunOptions o = { .argv = argv, .stdin_bytes = msg, .timeout = 60 };
  FuResult r;
  fu_run(&o, &r);
  print_message("symlink %s: exit %d; log: %s", link_rel, r.exit_code, r.err);
  assert_int_equal(r.signal, 0);
  /* Refused, not followed: a temporary failure that leaves the message with the MTA. */
  assert_int_equal(r.exit_code, 75);
  if (dir_target)
    assert_int_equal(fu_count_in_dir(target, NULL), 0);
  else
    assert_false(g_file_test(target, G_FILE_TEST_EXISTS));
  const char *allowed[] = { link_rel, NULL };
  fu_check_store_tree(c.store, allowed);
  fu_result_clear(&r);
  cage_clear(&c);
}

static void
test_symlink_policy_domain(void **state)
{
  g_autoptr(GBytes) msg = hostile_message_of_str(hostile_valid_json);
  check_symlink_refused("example.com", msg);
}

static void
test_symlink_year(void **state)
{
  g_autoptr(GBytes) msg = hostile_message_of_str(hostile_valid_json);
  check_symlink_refused("example.com/2022", msg);
}

static void
test_symlink_quarantine(void **state)
{
  g_autoptr(GBytes) msg = hostile_gzip_bad_crc();
  check_symlink_refused("quarantine", msg);
}

static void
test_symlink_index(void **state)
{
  g_autoptr(GBytes) msg = hostile_message_of_str(hostile_valid_json);
  check_symlink_refused(".index", msg);
}

/* ---- committed fixtures, replayed in process -------------------------------- */

static void
test_fixtures_replay(void **state)
{
  g_autofree char *dir = tu_fixture_path("hostile");
  GDir *d = g_dir_open(dir, 0, NULL);
  assert_non_null(d);
  TrLimits limits;
  tr_limits_init(&limits);
  guint n = 0;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *rel = g_build_filename("hostile", name, NULL);
    g_autoptr(GBytes) data = tu_fixture(rel);
    for (int raw = 0; raw <= 1; raw++) {
      SourceMessage m = { .data = data, .origin = (char *) name, .raw_report = raw,
                          .received = 1700000000 };
      PipelineResult res;
      pipeline_process_message(&m, &limits, &res);
      /* Exactly one of: reports, a quarantine reason, not a report. */
      assert_true(res.reports->len > 0 || res.quarantine_reason != NULL || res.not_report);
      if (res.quarantine_reason != NULL)
        assert_null(strchr(res.quarantine_reason, '\n'));
      /* The table's outcome holds in process too. */
      for (gsize i = 0; !raw && i < G_N_ELEMENTS(hostile_cases); i++) {
        const HostileCase *hc = &hostile_cases[i];
        if (strcmp(hc->name, name) != 0)
          continue;
        if (hc->outcome == HOSTILE_STORED)
          assert_int_equal(res.reports->len, hc->reports);
        else if (hc->outcome == HOSTILE_QUARANTINED)
          assert_non_null(res.quarantine_reason);
        else
          assert_true(res.not_report);
      }
      pipeline_result_clear(&res);
    }
    n++;
  }
  g_dir_close(d);
  assert_true(n >= 10);
}

/* ---- crash regressions found by fuzzing --------------------------------------- */

/* fuzz_report: the JSON text "null" made report_parse() return NULL without an error
 * (json-c represents null as a NULL object); callers dereference the error. */
static void
test_crash_report_parse_null(void **state)
{
  TrLimits limits;
  tr_limits_init(&limits);
  g_autoptr(GBytes) crash =
      tu_fixture("hostile/crash-fuzz_report-117eea00a0b1c967c9d91557c4a59fbed27360e4");
  g_autoptr(GBytes) plain = g_bytes_new_static("null", 4);
  GBytes *inputs[] = { crash, plain };
  for (gsize i = 0; i < G_N_ELEMENTS(inputs); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(Report) r = report_parse(inputs[i], NULL, &limits, &error);
    assert_null(r);
    assert_non_null(error);
    assert_true(error->domain == REPORT_ERROR);
  }
  /* As a loose report file, through the whole chain: quarantined with a reason. */
  SourceMessage m = { .data = crash, .origin = (char *) "null.json", .raw_report = TRUE,
                      .filename = (char *) "null.json" };
  PipelineResult res;
  pipeline_process_message(&m, &limits, &res);
  assert_int_equal(res.reports->len, 0);
  assert_non_null(res.quarantine_reason);
  pipeline_result_clear(&res);
}

/* fuzz_report: "{ }3" made the strict JSON reader add a zero offset to the empty
 * scratch stack's NULL array (undefined behaviour, caught by UBSan) when it closed the
 * empty object. Empty containers anywhere are read; the trailing "3" is json-c's
 * error, as before the strict reader. */
static void
test_crash_strict_reader_empty_container(void **state)
{
  TrLimits limits;
  tr_limits_init(&limits);
  g_autoptr(GBytes) crash =
      tu_fixture("hostile/crash-fuzz_report-c2186d70be332dd0eeb10534b68f602ceeaf049d");
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = report_parse(crash, NULL, &limits, &error);
  assert_null(r);
  assert_true(g_error_matches(error, REPORT_ERROR, REPORT_ERROR_JSON));
  assert_string_equal(error->message, "not JSON: trailing data at offset 3");

  static const char *const empty[] = { "{}", "{ }", "[]", "{\"x\":{},\"y\":[]}" };
  for (gsize i = 0; i < G_N_ELEMENTS(empty); i++) {
    g_autofree char *doc = g_strdup_printf(
        "{\"policies\":[{}],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2},"
        "\"extra\":%s}", empty[i]);
    g_autoptr(GBytes) b = g_bytes_new(doc, strlen(doc));
    g_autoptr(GError) serr = NULL;
    g_autoptr(Report) s = report_parse_with(b, NULL, &limits, REPORT_PARSE_STRICT, &serr);
    assert_non_null(s);
    assert_int_equal(s->policies->len, 1);
  }
}

/* fuzz_message: a file name with CR LF and terminal escapes (RFC 2231) on a broken
 * attachment went verbatim into the quarantine reason, which became several log lines
 * (log injection). The reason must stay one line, the log free of control bytes. */
static void
test_crash_reason_one_line(void **state)
{
  g_autoptr(GBytes) crash =
      tu_fixture("hostile/crash-fuzz_message-296248e87890f158a672a6d9a10c13d6055ca789");
  TrLimits limits;
  tr_limits_init(&limits);
  SourceMessage m = { .data = crash, .origin = (char *) "crash", .received = 1700000000 };
  PipelineResult res;
  pipeline_process_message(&m, &limits, &res);
  assert_non_null(res.quarantine_reason);
  for (const guchar *p = (const guchar *) res.quarantine_reason; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      fail_msg("quarantine reason holds control byte 0x%02x: %s", *p, res.quarantine_reason);
  pipeline_result_clear(&res);

  Cage c;
  cage_init(&c);
  FuResult r;
  run_mda_caged(&c, crash, NULL, &r);           /* checks the log for control bytes */
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(fu_count_lines_with(r.err, "quarantined"), 1);
  fu_result_clear(&r);
  cage_clear(&c);
}

/* ---- main -------------------------------------------------------------------- */

static int
write_fixtures(const char *dir)
{
  g_mkdir_with_parents(dir, 0755);
  for (gsize i = 0; i < G_N_ELEMENTS(hostile_cases); i++) {
    if (!hostile_cases[i].small)
      continue;
    g_autoptr(GBytes) b = hostile_cases[i].make();
    g_autofree char *p = g_build_filename(dir, hostile_cases[i].name, NULL);
    if (!g_file_set_contents(p, g_bytes_get_data(b, NULL), (gssize) g_bytes_get_size(b),
                             NULL))
      return 1;
    printf("%s\n", p);
  }
  return 0;
}

int
main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "--write-fixtures") == 0)
    return write_fixtures(argv[2]);
  mime_walk_init();

  GArray *tests = g_array_new(FALSE, TRUE, sizeof(struct CMUnitTest));
  for (gsize i = 0; i < G_N_ELEMENTS(hostile_cases); i++) {
    struct CMUnitTest t = { hostile_cases[i].name, test_hostile_case, NULL, NULL,
                            (void *) &hostile_cases[i] };
    g_array_append_val(tests, t);
  }
  const struct CMUnitTest fixed[] = {
    cmocka_unit_test(test_gzip_zeros_generator),
    cmocka_unit_test(test_gzip_bomb),
    cmocka_unit_test(test_header_line_40m_mda),
    cmocka_unit_test(test_header_line_1g_mda),
    cmocka_unit_test(test_header_line_1g_maildir),
    cmocka_unit_test(test_symlink_policy_domain),
    cmocka_unit_test(test_symlink_year),
    cmocka_unit_test(test_symlink_quarantine),
    cmocka_unit_test(test_symlink_index),
    cmocka_unit_test(test_fixtures_replay),
    cmocka_unit_test(test_crash_report_parse_null),
    cmocka_unit_test(test_crash_strict_reader_empty_container),
    cmocka_unit_test(test_crash_reason_one_line),
  };
  g_array_append_vals(tests, fixed, G_N_ELEMENTS(fixed));
  int rc = _cmocka_run_group_tests("fault_hostile", (struct CMUnitTest *) tests->data,
                                   tests->len, NULL, NULL);
  g_array_free(tests, TRUE);
  return rc;
}
