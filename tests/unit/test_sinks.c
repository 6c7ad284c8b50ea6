/* test_sinks.c - the tree, CSV and JSON Lines sinks with hand-built reports. */
#include "testutil.h"
#include "sink.h"
#include "sink-spill.h"
#include "store.h"

#include <fcntl.h>
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  char *dir;                /* temp dir */
  char *store_dir;          /* dir/store */
  Store *store;
  TrOptions opts;
} Fx;

static int
setup(void **state)
{
  Fx *fx = g_new0(Fx, 1);
  fx->dir = tu_mkdtemp();
  fx->store_dir = g_build_filename(fx->dir, "store", NULL);
  tr_options_init(&fx->opts);
  fx->opts.trust.dkim_keys = g_strdup(tu_no_dkim_keys());   /* no DNS (testutil.h) */
  fx->opts.store_dir = g_strdup(fx->store_dir);
  fx->opts.csv_path = g_build_filename(fx->dir, "r.csv", NULL);
  fx->opts.jsonl_path = g_build_filename(fx->dir, "r.jsonl", NULL);
  g_autoptr(GError) error = NULL;
  fx->store = store_open(fx->store_dir, NULL, &error);
  assert_non_null(fx->store);
  *state = fx;
  return 0;
}

static int
teardown(void **state)
{
  Fx *fx = *state;
  store_close(fx->store);
  tr_options_clear(&fx->opts);
  tu_rmtree(fx->dir);
  g_free(fx->dir);
  g_free(fx->store_dir);
  g_free(fx);
  return 0;
}

/* ---- hand-built reports ------------------------------------------------------ */

static void
test_failure_free(gpointer p)
{
  ReportFailure *f = p;
  g_free(f->result_type);
  g_free(f->sending_mta_ip);
  g_free(f->receiving_mx_hostname);
  g_free(f->receiving_mx_helo);
  g_free(f->receiving_ip);
  g_free(f->additional_information);
  g_free(f->failure_reason_code);
  g_free(f);
}

static void
test_policy_free(gpointer p)
{
  ReportPolicy *pol = p;
  g_free(pol->policy_type);
  g_ptr_array_unref(pol->policy_strings);
  g_free(pol->policy_domain);
  g_ptr_array_unref(pol->mx_hosts);
  g_ptr_array_unref(pol->failures);
  g_free(pol);
}

static ReportPolicy *
add_policy(Report *r, const char *type, const char *domain, gint64 ok, gint64 bad)
{
  ReportPolicy *p = g_new0(ReportPolicy, 1);
  p->policy_type = g_strdup(type);
  p->policy_domain = g_strdup(domain);
  p->policy_strings = g_ptr_array_new_with_free_func(g_free);
  p->mx_hosts = g_ptr_array_new_with_free_func(g_free);
  p->failures = g_ptr_array_new_with_free_func(test_failure_free);
  p->total_successful = ok;
  p->total_failure = bad;
  g_ptr_array_add(r->policies, p);
  return p;
}

static ReportFailure *
add_failure(ReportPolicy *p, const char *type, const char *ip, const char *mx, gint64 n)
{
  ReportFailure *f = g_new0(ReportFailure, 1);
  f->result_type = g_strdup(type);
  f->sending_mta_ip = g_strdup(ip);
  f->receiving_mx_hostname = g_strdup(mx);
  f->failed_session_count = n;
  g_ptr_array_add(p->failures, f);
  return f;
}

static Report *
new_report(const char *org, const char *id, gint64 begin)
{
  Report *r = g_new0(Report, 1);
  r->organization_name = g_strdup(org);
  r->report_id = g_strdup(id);
  r->begin = begin;
  r->end = begin + 86399;
  r->policies = g_ptr_array_new_with_free_func(test_policy_free);
  r->deviations = report_deviations_new();
  r->ingest.source = g_strdup("/var/mail/1");
  r->ingest.submitter = g_strdup("mail.example.net");
  r->ingest.received = begin + 90000;
  return r;
}

/* 2 policies, 3 failure details, a gzip attachment. 2022-09-15T00:00:00Z. */
static Report *
sample_report(void)
{
  Report *r = new_report("Example Org", "rpt-1", 1663200000);
  r->contact_info = g_strdup("tls@example.net");
  ReportPolicy *p1 = add_policy(r, "sts", "example.com", 100, 3);
  g_ptr_array_add(p1->policy_strings, g_strdup("version: STSv1"));
  g_ptr_array_add(p1->policy_strings, g_strdup("mode: enforce"));
  g_ptr_array_add(p1->mx_hosts, g_strdup("mx1.example.com"));
  g_ptr_array_add(p1->mx_hosts, g_strdup("mx2.example.com"));
  ReportFailure *f = add_failure(p1, "certificate-expired", "192.0.2.1", "mx1.example.com", 2);
  f->receiving_ip = g_strdup("198.51.100.7");
  f->failure_reason_code = g_strdup("X509_V_ERR_CERT_HAS_EXPIRED");
  add_failure(p1, "validation-failure", "192.0.2.2", NULL, 1);
  ReportPolicy *p2 = add_policy(r, "tlsa", "mail.example.com", 7, 1);
  f = add_failure(p2, "dane-required", NULL, "mail.example.com", 1);
  f->receiving_mx_helo = g_strdup("helo.example.com");
  f->additional_information = g_strdup("https://example.com/why");
  r->ingest.raw_extension = g_strdup("json.gz");
  r->ingest.raw = g_bytes_new("\x1f\x8b\x08\x00raw", 7);
  report_compute_key(r);
  return r;
}

static char *
key_hex(const Report *r)
{
  return report_key_hex(r->key);
}

static void
lock_store(Fx *fx)
{
  g_autoptr(GError) error = NULL;
  assert_true(store_lock(fx->store, 5, &error));
}

/* ---- registry ---------------------------------------------------------------- */

static void
test_registry(void **state)
{
  assert_ptr_equal(sink_find("tree"), &sink_tree_ops);
  assert_ptr_equal(sink_find("csv"), &sink_csv_ops);
  assert_ptr_equal(sink_find("jsonl"), &sink_jsonl_ops);
  assert_ptr_equal(sink_find("sqlite"), &sink_sqlite_ops);
  assert_ptr_equal(sink_find("postgres"), &sink_postgres_ops);
  assert_null(sink_find("postgresql"));
  assert_null(sink_find(NULL));
  guint n = 0;
  while (sink_registry[n] != NULL)
    n++;
  assert_int_equal(n, 5);
}

/* ---- CSV --------------------------------------------------------------------- */

static void
test_csv_rows_exact(void **state)
{
  g_autoptr(Report) r = sample_report();
  g_autoptr(GString) out = g_string_new(NULL);
  sink_csv_format_rows(r, out);
  const char *want =
      "policy,Example Org,tls@example.net,rpt-1,2022-09-15T00:00:00Z,2022-09-15T23:59:59Z,"
      "example.com,sts,version: STSv1|mode: enforce,mx1.example.com|mx2.example.com,100,3,"
      ",,,,,,,,mail.example.net,/var/mail/1,\r\n"
      "failure,Example Org,tls@example.net,rpt-1,2022-09-15T00:00:00Z,2022-09-15T23:59:59Z,"
      "example.com,sts,version: STSv1|mode: enforce,mx1.example.com|mx2.example.com,,,"
      "certificate-expired,192.0.2.1,mx1.example.com,,198.51.100.7,2,"
      "X509_V_ERR_CERT_HAS_EXPIRED,,mail.example.net,/var/mail/1,\r\n"
      "failure,Example Org,tls@example.net,rpt-1,2022-09-15T00:00:00Z,2022-09-15T23:59:59Z,"
      "example.com,sts,version: STSv1|mode: enforce,mx1.example.com|mx2.example.com,,,"
      "validation-failure,192.0.2.2,,,,1,,,mail.example.net,/var/mail/1,\r\n"
      "policy,Example Org,tls@example.net,rpt-1,2022-09-15T00:00:00Z,2022-09-15T23:59:59Z,"
      "mail.example.com,tlsa,,,7,1,,,,,,,,,mail.example.net,/var/mail/1,\r\n"
      "failure,Example Org,tls@example.net,rpt-1,2022-09-15T00:00:00Z,2022-09-15T23:59:59Z,"
      "mail.example.com,tlsa,,,,,dane-required,,mail.example.com,helo.example.com,,1,,"
      "https://example.com/why,mail.example.net,/var/mail/1,\r\n";
  assert_string_equal(out->str, want);

  /* Every row has the header's column count. */
  guint cols = 1;
  for (const char *p = sink_csv_header; *p; p++)
    cols += *p == ',';
  assert_int_equal(cols, 23);
  g_auto(GStrv) rows = g_strsplit(out->str, "\r\n", -1);
  assert_int_equal(g_strv_length(rows), 6);
  for (guint i = 0; i < 5; i++) {
    guint c = 1;
    for (const char *p = rows[i]; *p; p++)
      c += *p == ',';
    assert_int_equal(c, cols);
  }
  assert_string_equal(sink_csv_header,
                      "row_type,organization_name,contact_info,report_id,begin,end,"
                      "policy_domain,policy_type,policy_strings,mx_hosts,"
                      "total_successful_session_count,total_failure_session_count,"
                      "result_type,sending_mta_ip,receiving_mx_hostname,receiving_mx_helo,"
                      "receiving_ip,failed_session_count,failure_reason_code,"
                      "additional_information,submitter,source,dkim");
}

static void
test_csv_quoting(void **state)
{
  g_autoptr(Report) r = new_report("Evil, \"Inc.\"", "id\r\nrow_type,forged", 0);
  r->contact_info = g_strdup(" padded ");
  g_free(r->ingest.submitter);
  r->ingest.submitter = NULL;
  add_policy(r, "no-policy-found", "example.com", 1, 0);
  g_autoptr(GString) out = g_string_new(NULL);
  /* Raw: the value exactly, a CR LF inside its quotes. */
  sink_csv_format_rows_raw(r, out);
  assert_string_equal(out->str,
                      "policy,\"Evil, \"\"Inc.\"\"\",\" padded \",\"id\r\nrow_type,forged\","
                      "1970-01-01T00:00:00Z,1970-01-01T23:59:59Z,example.com,no-policy-found,"
                      ",,1,0,,,,,,,,,,/var/mail/1,\r\n");
  /* By default CR and LF are shown as \xNN: a record is one line. */
  g_string_truncate(out, 0);
  sink_csv_format_rows(r, out);
  assert_string_equal(out->str,
                      "policy,\"Evil, \"\"Inc.\"\"\",\" padded \",\"id\\x0d\\x0arow_type,forged\","
                      "1970-01-01T00:00:00Z,1970-01-01T23:59:59Z,example.com,no-policy-found,"
                      ",,1,0,,,,,,,,,,/var/mail/1,\r\n");
  /* A report without policies gives no row. */
  g_autoptr(Report) empty = new_report("o", "i", 0);
  g_string_truncate(out, 0);
  sink_csv_format_rows(empty, out);
  assert_int_equal(out->len, 0);
}

static guint
count_substr(const char *hay, const char *needle)
{
  guint n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

static void
test_csv_header_once(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = sample_report();
  for (int round = 0; round < 2; round++) {
    gpointer self = sink_csv_ops.open(&(SinkConfig){ .path = fx->opts.csv_path }, store_durability(fx->store), &error);
    assert_non_null(self);
    assert_string_equal(sink_csv_ops.journal_path(self), fx->opts.csv_path);
    for (int flush = 0; flush < 2; flush++) {
      assert_true(sink_csv_ops.write(self, r, &error));
      assert_true(sink_csv_ops.flush(self, &error));
    }
    /* A flush with nothing staged writes nothing. */
    assert_true(sink_csv_ops.flush(self, &error));
    sink_csv_ops.close(self);
  }
  g_autofree char *text = tu_read_file(fx->opts.csv_path, NULL);
  assert_true(g_str_has_prefix(text, sink_csv_header));
  assert_int_equal(count_substr(text, "row_type,"), 1);
  assert_int_equal(count_substr(text, "\r\npolicy,"), 8);
  assert_int_equal(count_substr(text, "\r\nfailure,"), 12);
  assert_int_equal(count_substr(text, "\r\n"), 21);
  struct stat st;
  assert_int_equal(stat(fx->opts.csv_path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0640);
}

static void
test_csv_rollback_untouched(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = sample_report();
  gpointer self = sink_csv_ops.open(&(SinkConfig){ .path = fx->opts.csv_path }, store_durability(fx->store), &error);
  assert_true(sink_csv_ops.write(self, r, &error));
  sink_csv_ops.rollback(self);
  assert_true(sink_csv_ops.flush(self, &error));
  assert_false(g_file_test(fx->opts.csv_path, G_FILE_TEST_EXISTS));

  assert_true(sink_csv_ops.write(self, r, &error));
  assert_true(sink_csv_ops.flush(self, &error));
  g_autofree char *before = tu_read_file(fx->opts.csv_path, NULL);
  assert_true(sink_csv_ops.write(self, r, &error));
  sink_csv_ops.rollback(self);
  assert_true(sink_csv_ops.flush(self, &error));
  g_autofree char *after = tu_read_file(fx->opts.csv_path, NULL);
  assert_string_equal(before, after);
  sink_csv_ops.close(self);
}

static void
test_csv_unwritable(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = sample_report();
  g_free(fx->opts.csv_path);
  fx->opts.csv_path = g_build_filename(fx->dir, "missing-dir", "r.csv", NULL);
  gpointer self = sink_csv_ops.open(&(SinkConfig){ .path = fx->opts.csv_path }, store_durability(fx->store), &error);
  assert_true(sink_csv_ops.write(self, r, &error));
  assert_false(sink_csv_ops.flush(self, &error));
  assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
  assert_non_null(strstr(error->message, "missing-dir"));
  assert_int_equal(tr_error_classify(error), TR_ERROR_TRANSIENT);
  sink_csv_ops.close(self);
}

/* ---- JSON Lines ------------------------------------------------------------- */

/* A report large enough that its rows pass the sinks' spill size (SINK_SPILL_AT). */
static Report *
big_report(void)
{
  Report *r = sample_report();
  ReportPolicy *p = r->policies->pdata[0];
  for (guint i = 0; i < 40000; i++) {
    g_autofree char *ip = g_strdup_printf("192.0.%u.%u", i / 256 % 256, i % 256);
    ReportFailure *f = add_failure(p, "certificate-host-mismatch", ip, "mx1.example.com", i);
    f->failure_reason_code = g_strdup("a reason, \"quoted\", long enough to fill the rows");
  }
  return r;
}

/* A batch that passes the spill size is written out before flush(), yet rollback() and
 * close() without flush() leave the file as it was; flush() gives the same bytes as a
 * batch held whole. */
static void
test_spill_rollback(void **state)
{
  Fx *fx = *state;
  g_autoptr(Report) small = sample_report();
  g_autoptr(Report) big = big_report();
  const SinkOps *ops[] = { &sink_csv_ops, &sink_jsonl_ops };
  const char *paths[] = { fx->opts.csv_path, fx->opts.jsonl_path };
  for (guint k = 0; k < G_N_ELEMENTS(ops); k++) {
    g_autoptr(GError) error = NULL;
    struct stat st;
    gpointer self = ops[k]->open(&(SinkConfig){ .path = paths[k] }, store_durability(fx->store), &error);
    assert_true(ops[k]->write(self, small, &error));
    assert_true(ops[k]->flush(self, &error));
    gsize before_len;
    g_autofree char *before = tu_read_file(paths[k], &before_len);

    /* written out early, then undone */
    assert_true(ops[k]->write(self, small, &error));
    assert_true(ops[k]->write(self, big, &error));
    assert_int_equal(stat(paths[k], &st), 0);
    assert_true((gsize) st.st_size > before_len + SINK_SPILL_AT / 2);
    ops[k]->rollback(self);
    gsize len;
    g_autofree char *after = tu_read_file(paths[k], &len);
    assert_int_equal(len, before_len);
    assert_memory_equal(after, before, len);

    /* written out early, then committed */
    assert_true(ops[k]->write(self, big, &error));
    assert_true(ops[k]->write(self, small, &error));
    assert_true(ops[k]->flush(self, &error));
    g_autofree char *text = tu_read_file(paths[k], &len);
    g_autoptr(GString) want = g_string_new_len(before, (gssize) before_len);
    if (k == 0) {
      sink_csv_format_rows(big, want);
      sink_csv_format_rows(small, want);
    } else {
      report_to_json(big, FALSE, want);
      g_string_append_c(want, '\n');
      report_to_json(small, FALSE, want);
      g_string_append_c(want, '\n');
    }
    assert_int_equal(len, want->len);
    assert_memory_equal(text, want->str, len);

    /* closed in the middle of a batch: undone as well */
    assert_true(ops[k]->write(self, big, &error));
    ops[k]->close(self);
    g_autofree char *closed = tu_read_file(paths[k], &before_len);
    assert_int_equal(before_len, len);
    assert_memory_equal(closed, text, len);
  }

  /* a first batch that spills into a new CSV file writes the header first */
  g_autoptr(GError) error = NULL;
  g_free(fx->opts.csv_path);
  fx->opts.csv_path = g_build_filename(fx->dir, "new.csv", NULL);
  gpointer self = sink_csv_ops.open(&(SinkConfig){ .path = fx->opts.csv_path }, store_durability(fx->store), &error);
  assert_true(sink_csv_ops.write(self, big, &error));
  assert_true(sink_csv_ops.flush(self, &error));
  sink_csv_ops.close(self);
  g_autofree char *text = tu_read_file(fx->opts.csv_path, NULL);
  assert_true(g_str_has_prefix(text, sink_csv_header));
  assert_null(strstr(text + 1, sink_csv_header));

  /* a spill that cannot be written fails write() */
  g_free(fx->opts.jsonl_path);
  fx->opts.jsonl_path = g_build_filename(fx->dir, "missing-dir", "r.jsonl", NULL);
  self = sink_jsonl_ops.open(&(SinkConfig){ .path = fx->opts.jsonl_path }, store_durability(fx->store), &error);
  assert_false(sink_jsonl_ops.write(self, big, &error));
  assert_non_null(error);
  sink_jsonl_ops.rollback(self);
  sink_jsonl_ops.close(self);
}

/* While another writer holds the file, a batch past the spill size is not written out
 * early and write() does not wait for the lock (a sink must never wait for one file
 * while holding another's); it stays staged, and flush() writes it whole once the file
 * is free. */
static void
test_spill_waits_for_no_lock(void **state)
{
  Fx *fx = *state;
  g_autoptr(Report) big = big_report();
  const SinkOps *ops[] = { &sink_csv_ops, &sink_jsonl_ops };
  const char *paths[] = { fx->opts.csv_path, fx->opts.jsonl_path };
  for (guint k = 0; k < G_N_ELEMENTS(ops); k++) {
    g_autoptr(GError) error = NULL;
    int other = open(paths[k], O_WRONLY | O_CREAT | O_APPEND, 0640);
    assert_true(other >= 0);
    assert_int_equal(flock(other, LOCK_EX), 0);
    gpointer self = ops[k]->open(&(SinkConfig){ .path = paths[k] }, store_durability(fx->store), &error);
    assert_true(ops[k]->write(self, big, &error));
    assert_true(ops[k]->write(self, big, &error));
    struct stat st;
    assert_int_equal(stat(paths[k], &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(flock(other, LOCK_UN), 0);
    close(other);
    assert_true(ops[k]->flush(self, &error));
    ops[k]->close(self);
    gsize len;
    g_autofree char *text = tu_read_file(paths[k], &len);
    g_autoptr(GString) want = g_string_new(k == 0 ? sink_csv_header : NULL);
    if (k == 0)
      g_string_append(want, "\r\n");
    for (guint i = 0; i < 2; i++) {
      if (k == 0) {
        sink_csv_format_rows(big, want);
      } else {
        report_to_json(big, FALSE, want);
        g_string_append_c(want, '\n');
      }
    }
    assert_int_equal(len, want->len);
    assert_memory_equal(text, want->str, len);
  }
}

static void
test_jsonl_lines_parse(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r1 = sample_report();
  g_autoptr(Report) r2 = new_report("Org \"2\"\nline", "id-2", 1663286400);
  add_policy(r2, "sts", "example.org", 5, 0);
  report_compute_key(r2);

  gpointer self = sink_jsonl_ops.open(&(SinkConfig){ .path = fx->opts.jsonl_path }, store_durability(fx->store), &error);
  assert_string_equal(sink_jsonl_ops.journal_path(self), fx->opts.jsonl_path);
  assert_true(sink_jsonl_ops.write(self, r1, &error));
  assert_true(sink_jsonl_ops.flush(self, &error));
  assert_true(sink_jsonl_ops.write(self, r2, &error));
  assert_true(sink_jsonl_ops.write(self, r1, &error));
  sink_jsonl_ops.rollback(self);
  assert_true(sink_jsonl_ops.write(self, r2, &error));
  assert_true(sink_jsonl_ops.flush(self, &error));
  sink_jsonl_ops.close(self);

  g_autofree char *text = tu_read_file(fx->opts.jsonl_path, NULL);
  assert_true(g_str_has_suffix(text, "}\n"));
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  assert_int_equal(g_strv_length(lines), 3);
  assert_string_equal(lines[2], "");
  const char *want_org[] = { "Example Org", "Org \"2\"\nline" };
  for (guint i = 0; i < 2; i++) {
    g_autoptr(TrJson) obj = json_tokener_parse(lines[i]);
    if (obj == NULL)
      fail_msg("line %u is not JSON: %s", i + 1, lines[i]);
    assert_true(json_object_is_type(obj, json_type_object));
    struct json_object *org = NULL;
    assert_true(json_object_object_get_ex(obj, "organization-name", &org));
    assert_string_equal(json_object_get_string(org), want_org[i]);
  }
}

static void
test_jsonl_stdout(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_free(fx->opts.jsonl_path);
  fx->opts.jsonl_path = g_strdup("-");
  gpointer self = sink_jsonl_ops.open(&(SinkConfig){ .path = fx->opts.jsonl_path }, store_durability(fx->store), &error);
  assert_non_null(self);
  assert_null(sink_jsonl_ops.journal_path(self));
  sink_jsonl_ops.close(self);
}

/* ---- tree ------------------------------------------------------------------- */

/* ".tmp-*" entries below @dir. */
static guint
count_tmp_below(const char *dir)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return 0;
  guint n = 0;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *child = g_build_filename(dir, name, NULL);
    if (g_str_has_prefix(name, ".tmp-"))
      n++;
    else if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
      n += count_tmp_below(child);
  }
  g_dir_close(d);
  return n;
}

/* Walk @dir with lstat: no symlink, names printable ASCII, at most 255 bytes, no
 * ".tmp-" leftovers. Returns the number of regular files. */
static guint
check_tree(const char *dir)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  assert_non_null(d);
  guint n = 0;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    assert_true(strlen(name) <= 255);
    for (const guchar *p = (const guchar *) name; *p; p++)
      if (*p <= 0x20 || *p >= 0x7f || *p == '/')
        fail_msg("unsafe name in %s: %s", dir, name);
    if (g_str_has_prefix(name, ".tmp-"))
      fail_msg("temporary file left: %s/%s", dir, name);
    g_autofree char *child = g_build_filename(dir, name, NULL);
    struct stat st;
    assert_int_equal(lstat(child, &st), 0);
    assert_false(S_ISLNK(st.st_mode));
    if (S_ISDIR(st.st_mode))
      n += check_tree(child);
    else
      n++;
  }
  g_dir_close(d);
  return n;
}

static void
test_tree_layout(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = sample_report();
  lock_store(fx);
  gpointer self = sink_tree_ops.open(&(SinkConfig){ .path = NULL }, store_durability(fx->store), &error);
  assert_non_null(self);
  assert_null(sink_tree_ops.journal_path(self));
  assert_true(sink_tree_ops.write(self, r, &error));

  g_autofree char *hex = key_hex(r);
  g_autofree char *base = g_strdup_printf("Example_Org!rpt-1!%s", hex);
  g_autofree char *dir = g_build_filename(fx->store_dir, "example.com", "2022", "09", "15", NULL);
  g_autofree char *json_name = g_strconcat(base, ".json", NULL);
  g_autofree char *raw_name = g_strconcat(base, ".json.gz", NULL);
  g_autofree char *json_path = g_build_filename(dir, json_name, NULL);
  g_autofree char *raw_path = g_build_filename(dir, raw_name, NULL);
  /* In place at once (whole, by rename: no temporary file is left), made durable by
   * the store's commit, not one by one: a single report keeps its fds for an fsync each. */
  assert_true(g_file_test(json_path, G_FILE_TEST_IS_REGULAR));
  assert_true(g_file_test(raw_path, G_FILE_TEST_IS_REGULAR));
  assert_int_equal(tu_count_files(dir, NULL), 2);
  assert_int_equal(count_tmp_below(fx->store_dir), 0);
  assert_true(store_sync_each(store_durability(fx->store)));

  assert_true(sink_tree_ops.flush(self, &error));
  sink_tree_ops.close(self);

  g_autoptr(GString) want = g_string_new(NULL);
  report_to_json(r, TRUE, want);
  g_string_append_c(want, '\n');
  gsize len = 0;
  g_autofree char *json = tu_read_file(json_path, &len);
  assert_non_null(json);
  assert_int_equal(len, want->len);
  assert_memory_equal(json, want->str, len);
  g_autofree char *raw = tu_read_file(raw_path, &len);
  assert_non_null(raw);
  assert_int_equal(len, 7);
  assert_memory_equal(raw, "\x1f\x8b\x08\x00raw", 7);
  assert_int_equal(check_tree(fx->store_dir), 2 + 3);   /* + .lock .index .journal */
  struct stat st;
  assert_int_equal(stat(json_path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0640);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0750);
}

static void
test_tree_same_report_again_and_plain_json(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = sample_report();
  g_free(r->ingest.raw_extension);
  r->ingest.raw_extension = g_strdup("json");
  lock_store(fx);
  for (int i = 0; i < 2; i++) {
    gpointer self = sink_tree_ops.open(&(SinkConfig){ .path = NULL }, store_durability(fx->store), &error);
    assert_true(sink_tree_ops.write(self, r, &error));
    assert_true(sink_tree_ops.flush(self, &error));
    sink_tree_ops.close(self);
  }
  g_autofree char *dir = g_build_filename(fx->store_dir, "example.com", "2022", "09", "15", NULL);
  assert_int_equal(tu_count_files(dir, NULL), 2);
  assert_int_equal(tu_count_files(dir, ".json"), 1);
  assert_int_equal(tu_count_files(dir, ".json.orig"), 1);
}

static void
test_tree_many_and_rollback(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  lock_store(fx);
  gpointer self = sink_tree_ops.open(&(SinkConfig){ .path = NULL }, store_durability(fx->store), &error);
  /* More files than the store fsyncs one by one: the syncfs path; several days and
   * domains. */
  for (guint i = 0; i < 12; i++) {
    g_autofree char *id = g_strdup_printf("id-%u", i);
    g_autofree char *domain = g_strdup_printf("d%u.example", i % 3);
    g_autoptr(Report) r = new_report("Org", id, 1663200000 + (gint64) (i % 4) * 86400);
    add_policy(r, "sts", domain, 1, 0);
    report_compute_key(r);
    assert_true(sink_tree_ops.write(self, r, &error));
  }
  assert_false(store_sync_each(store_durability(fx->store)));
  assert_true(sink_tree_ops.flush(self, &error));
  assert_true(store_commit(fx->store, &error));
  assert_true(store_sync_each(store_durability(fx->store)));
  assert_int_equal(tu_count_files(fx->store_dir, ".json"), 12);
  g_autofree char *d = g_build_filename(fx->store_dir, "d1.example", "2022", "09", "16", NULL);
  assert_int_equal(tu_count_files(d, ".json"), 1);

  /* Staged, then rolled back: nothing remains, not even a temporary file. */
  for (guint i = 0; i < 3; i++) {
    g_autofree char *id = g_strdup_printf("gone-%u", i);
    g_autoptr(Report) r = new_report("Org", id, 1700000000);
    add_policy(r, "sts", "rolled.example", 1, 0);
    r->ingest.raw_extension = g_strdup("zip");
    r->ingest.raw = g_bytes_new("PK", 2);
    report_compute_key(r);
    assert_true(sink_tree_ops.write(self, r, &error));
  }
  g_autofree char *rolled = g_build_filename(fx->store_dir, "rolled.example", NULL);
  assert_int_equal(tu_count_files(rolled, NULL), 6);
  sink_tree_ops.rollback(self);
  assert_int_equal(tu_count_files(rolled, NULL), 0);
  assert_int_equal(tu_count_files(fx->store_dir, ".json"), 12);
  sink_tree_ops.close(self);
  check_tree(fx->store_dir);
}

/* A commit that fails after the tree flushed leaves the tree as it was; a committed
 * flush is never undone by a later rollback. */
static void
test_tree_rollback_after_flush(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r1 = sample_report();
  g_autoptr(Report) r2 = new_report("Org", "second", 1663200000);
  add_policy(r2, "sts", "example.com", 1, 0);
  report_compute_key(r2);
  g_autofree char *dir = g_build_filename(fx->store_dir, "example.com", "2022", "09", "15", NULL);
  lock_store(fx);
  gpointer self = sink_tree_ops.open(&(SinkConfig){ .path = NULL }, store_durability(fx->store), &error);

  /* Flushed, then the commit fails: rolled back. */
  assert_true(store_begin(fx->store, NULL, &error));
  assert_true(sink_tree_ops.write(self, r1, &error));
  assert_true(sink_tree_ops.flush(self, &error));
  assert_int_equal(tu_count_files(dir, NULL), 2);
  sink_tree_ops.rollback(self);
  store_rollback(fx->store);
  assert_int_equal(tu_count_files(dir, NULL), 0);

  /* Flushed and committed: a rollback of the next (empty) commit keeps it. */
  assert_true(store_begin(fx->store, NULL, &error));
  assert_true(sink_tree_ops.write(self, r1, &error));
  assert_true(sink_tree_ops.flush(self, &error));
  store_add(fx->store, r1->key);
  assert_true(store_commit(fx->store, &error));
  assert_true(store_begin(fx->store, NULL, &error));
  sink_tree_ops.rollback(self);
  store_rollback(fx->store);
  assert_int_equal(tu_count_files(dir, NULL), 2);

  /* Committed, then the next commit writes and fails: only its own file goes. */
  assert_true(store_begin(fx->store, NULL, &error));
  assert_true(sink_tree_ops.write(self, r2, &error));
  assert_true(sink_tree_ops.flush(self, &error));
  assert_int_equal(tu_count_files(dir, NULL), 3);
  sink_tree_ops.rollback(self);
  store_rollback(fx->store);
  assert_int_equal(tu_count_files(dir, NULL), 2);
  assert_int_equal(tu_count_files(dir, ".json.gz"), 1);
  sink_tree_ops.close(self);
  assert_int_equal(tu_count_files(dir, NULL), 2);
}

/* A rolled-back commit removes the directories it made (deepest first), and only
 * those: <domain>/<YYYY>/<MM>/<DD> of an earlier commit stays, and the sink writes into
 * the removed ones again afterwards. Both ways of writing: by write() (the first four
 * reports) and staged for flush(). */
static void
test_tree_rollback_removes_new_dirs(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) first = sample_report();
  lock_store(fx);
  gpointer self = sink_tree_ops.open(&(SinkConfig){ .path = NULL }, store_durability(fx->store), &error);
  assert_true(store_begin(fx->store, NULL, &error));
  assert_true(sink_tree_ops.write(self, first, &error));
  assert_true(sink_tree_ops.flush(self, &error));
  store_add(fx->store, first->key);
  assert_true(store_commit(fx->store, &error));
  g_autofree char *kept = g_build_filename(fx->store_dir, "example.com", "2022", "09", "15", NULL);
  assert_int_equal(tu_count_files(kept, NULL), 2);

  for (int round = 0; round < 2; round++) {
    assert_true(store_begin(fx->store, NULL, &error));
    for (guint i = 0; i < 10; i++) {
      g_autofree char *id = g_strdup_printf("rb-%d-%u", round, i);
      /* a new domain, a new day beside the committed one, a new month and year */
      const char *domain = i % 2 ? "rolled.example" : "example.com";
      const gint64 days[] = { 0, 40, 400 };         /* 2022-09-16, 2022-10-26, 2023-10-21 */
      g_autoptr(Report) r = new_report("Org", id, 1663286400 + days[i % 3] * 86400);
      add_policy(r, "sts", domain, 1, 0);
      report_compute_key(r);
      assert_true(sink_tree_ops.write(self, r, &error));
    }
    assert_true(sink_tree_ops.flush(self, &error));
    assert_int_equal(tu_count_files(fx->store_dir, ".json"), 11);
    sink_tree_ops.rollback(self);
    store_rollback(fx->store);

    g_autofree char *rolled = g_build_filename(fx->store_dir, "rolled.example", NULL);
    g_autofree char *day = g_build_filename(fx->store_dir, "example.com", "2022", "09", "16", NULL);
    g_autofree char *month = g_build_filename(fx->store_dir, "example.com", "2022", "10", NULL);
    g_autofree char *year = g_build_filename(fx->store_dir, "example.com", "2023", NULL);
    assert_false(g_file_test(rolled, G_FILE_TEST_EXISTS));
    assert_false(g_file_test(day, G_FILE_TEST_EXISTS));
    assert_false(g_file_test(month, G_FILE_TEST_EXISTS));
    assert_false(g_file_test(year, G_FILE_TEST_EXISTS));
    assert_int_equal(tu_count_files(kept, NULL), 2);
    assert_int_equal(tu_count_files(fx->store_dir, ".json"), 1);
  }

  /* And written again into what was removed. */
  assert_true(store_begin(fx->store, NULL, &error));
  g_autoptr(Report) again = new_report("Org", "again", 1663286400);
  add_policy(again, "sts", "rolled.example", 1, 0);
  report_compute_key(again);
  assert_true(sink_tree_ops.write(self, again, &error));
  assert_true(sink_tree_ops.flush(self, &error));
  store_add(fx->store, again->key);
  assert_true(store_commit(fx->store, &error));
  g_autofree char *back = g_build_filename(fx->store_dir, "rolled.example", "2022", "09", "16", NULL);
  assert_int_equal(tu_count_files(back, ".json"), 1);
  sink_tree_ops.close(self);
  check_tree(fx->store_dir);
}

static void
test_tree_hostile_names(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  lock_store(fx);
  GString *long_id = g_string_new("a/b/../");
  while (long_id->len < 10000)
    g_string_append(long_id, "/x");
  const char *domains[] = { "quarantine", ".hidden", "../../etc", "Example.COM", "QUARANTINE" };
  const char *want_dirs[] = { "_quarantine", "_hidden", "_._.._etc", "example.com",
                              "_quarantine" };
  gpointer self = sink_tree_ops.open(&(SinkConfig){ .path = NULL }, store_durability(fx->store), &error);
  for (guint i = 0; i < G_N_ELEMENTS(domains); i++) {
    g_autoptr(Report) r = new_report("../../etc", long_id->str, 1663200000);
    g_free(r->report_id);
    r->report_id = g_strdup_printf("%u%s", i, long_id->str);
    add_policy(r, "sts", domains[i], 1, 0);
    r->ingest.raw_extension = g_strdup("../../x");
    r->ingest.raw = g_bytes_new("raw", 3);
    report_compute_key(r);
    assert_true(sink_tree_ops.write(self, r, &error));
  }
  assert_true(sink_tree_ops.flush(self, &error));
  sink_tree_ops.close(self);
  g_string_free(long_id, TRUE);

  for (guint i = 0; i < G_N_ELEMENTS(want_dirs); i++) {
    g_autofree char *d = g_build_filename(fx->store_dir, want_dirs[i], "2022", "09", "15", NULL);
    if (!g_file_test(d, G_FILE_TEST_IS_DIR))
      fail_msg("missing %s", d);
  }
  /* Nothing was written to the real quarantine or outside the store. */
  g_autofree char *q = g_build_filename(fx->store_dir, "quarantine", NULL);
  assert_false(g_file_test(q, G_FILE_TEST_EXISTS));
  assert_int_equal(tu_count_files(fx->dir, NULL), tu_count_files(fx->store_dir, NULL));
  assert_int_equal(check_tree(fx->store_dir), 10 + 3);
  g_autofree char *d0 = g_build_filename(fx->store_dir, "_quarantine", "2022", "09", "15", NULL);
  GDir *gd = g_dir_open(d0, 0, NULL);
  const char *name;
  guint seen = 0;
  while ((name = g_dir_read_name(gd)) != NULL) {
    assert_true(g_str_has_prefix(name, "_._.._etc!"));
    assert_true(name[10] == '0' || name[10] == '4');
    assert_true(g_str_has_prefix(name + 11, "a_b_.._"));
    assert_true(strlen(name) <= 10 + 1 + 60 + 1 + 32 + 16);
    seen++;
  }
  g_dir_close(gd);
  assert_int_equal(seen, 4);     /* two reports: "quarantine" and "QUARANTINE" */
}

/* Past the first few reports of a commit, write() only renders and stages; flush()
 * writes the staged files on several threads. Every file is whole and exact, none is
 * left as a temporary file, and a failure in one directory fails the flush, after which
 * rollback() leaves nothing of the commit (and never follows a planted symlink). */
static Report *
staged_report(guint i, const char *prefix)
{
  g_autofree char *id = g_strdup_printf("staged-%u", i);
  g_autofree char *domain = g_strdup_printf("%s%u.example", prefix, i % 37);
  Report *r = new_report("Org", id, 1663200000 + (gint64) (i % 5) * 86400);
  ReportPolicy *p = add_policy(r, "sts", domain, i, i % 3);
  add_failure(p, "certificate-expired", "192.0.2.1", "mx.example", (gint64) (i % 3));
  if (i % 2 == 0) {
    r->ingest.raw_extension = g_strdup("json.gz");
    g_autofree char *raw = g_strdup_printf("raw %u", i);
    r->ingest.raw = g_bytes_new(raw, strlen(raw));
  }
  report_compute_key(r);
  return r;
}

static char *
staged_json_path(Fx *fx, const Report *r)
{
  g_autofree char *hex = key_hex(r);
  g_autofree char *name = g_strdup_printf("Org!%s!%s.json", r->report_id, hex);
  struct tm tm;
  time_t t = (time_t) r->begin;
  gmtime_r(&t, &tm);
  g_autofree char *day = g_strdup_printf("%04d/%02d/%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                                         tm.tm_mday);
  const ReportPolicy *p = r->policies->pdata[0];
  return g_build_filename(fx->store_dir, p->policy_domain, day, name, NULL);
}

static void
test_tree_staged_written_by_flush(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  lock_store(fx);
  gpointer self = sink_tree_ops.open(&(SinkConfig){ .path = NULL }, store_durability(fx->store), &error);
  const guint n = 300;
  GPtrArray *want = g_ptr_array_new_with_free_func(g_free);      /* path, JSON text */
  for (guint i = 0; i < n; i++) {
    g_autoptr(Report) r = staged_report(i, "d");
    assert_true(sink_tree_ops.write(self, r, &error));
    GString *text = g_string_new(NULL);
    report_to_json(r, TRUE, text);
    g_string_append_c(text, '\n');
    g_ptr_array_add(want, staged_json_path(fx, r));
    g_ptr_array_add(want, g_string_free(text, FALSE));
  }
  /* The reports are gone (freed above); only the first four are in place yet. */
  assert_int_equal(tu_count_files(fx->store_dir, ".json"), 4);
  assert_false(store_sync_each(store_durability(fx->store)));
  assert_true(sink_tree_ops.flush(self, &error));
  assert_null(error);
  assert_int_equal(tu_count_files(fx->store_dir, ".json"), n);
  assert_int_equal(tu_count_files(fx->store_dir, ".json.gz"), n / 2);
  assert_int_equal(count_tmp_below(fx->store_dir), 0);
  for (guint i = 0; i < want->len; i += 2) {
    gsize len = 0;
    g_autofree char *got = tu_read_file(want->pdata[i], &len);
    if (got == NULL)
      fail_msg("missing %s", (char *) want->pdata[i]);
    assert_int_equal(len, strlen(want->pdata[i + 1]));
    assert_memory_equal(got, want->pdata[i + 1], len);
  }
  assert_true(store_commit(fx->store, &error));
  g_ptr_array_unref(want);

  /* A file where one staged directory must go: the flush fails, naming it; rollback
   * removes every file of this commit, staged or written at once, and nothing of the
   * committed one. A symlink planted for another staged domain is refused. */
  g_autofree char *blocker = g_build_filename(fx->store_dir, "f30.example", NULL);
  assert_true(g_file_set_contents(blocker, "in the way", -1, NULL));
  g_autofree char *outside = g_build_filename(fx->dir, "outside", NULL);
  assert_int_equal(mkdir(outside, 0755), 0);
  g_autofree char *link = g_build_filename(fx->store_dir, "f31.example", NULL);
  assert_int_equal(symlink(outside, link), 0);
  assert_true(store_begin(fx->store, NULL, &error));
  for (guint i = 0; i < 120; i++) {
    g_autoptr(Report) r = staged_report(i, "f");
    assert_true(sink_tree_ops.write(self, r, &error));
  }
  assert_false(sink_tree_ops.flush(self, &error));
  assert_non_null(error);
  assert_non_null(strstr(error->message, fx->store_dir));
  assert_int_equal(tr_error_classify(error), TR_ERROR_TRANSIENT);
  g_clear_error(&error);
  sink_tree_ops.rollback(self);
  store_rollback(fx->store);
  assert_int_equal(tu_count_files(fx->store_dir, ".json"), n);
  assert_int_equal(count_tmp_below(fx->store_dir), 0);
  assert_int_equal(tu_count_files(outside, NULL), 0);

  /* A rolled-back commit leaves nothing staged: the next flush writes nothing. */
  assert_true(sink_tree_ops.flush(self, &error));
  assert_int_equal(tu_count_files(fx->store_dir, ".json"), n);
  sink_tree_ops.close(self);
}

static void
check_symlink_refused(Fx *fx, const char *link_rel)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *outside = g_build_filename(fx->dir, "outside", NULL);
  assert_int_equal(g_mkdir_with_parents(outside, 0755), 0);
  g_autofree char *link = g_build_filename(fx->store_dir, link_rel, NULL);
  g_autofree char *parent = g_path_get_dirname(link);
  assert_int_equal(g_mkdir_with_parents(parent, 0755), 0);
  assert_int_equal(symlink(outside, link), 0);

  lock_store(fx);
  g_autoptr(Report) r = sample_report();
  gpointer self = sink_tree_ops.open(&(SinkConfig){ .path = NULL }, store_durability(fx->store), &error);
  assert_false(sink_tree_ops.write(self, r, &error));
  assert_non_null(error);
  assert_true(error->domain == G_IO_ERROR);
  assert_non_null(strstr(error->message, "symbolic link"));
  assert_non_null(strstr(error->message, fx->store_dir));
  assert_int_equal(tr_error_classify(error), TR_ERROR_TRANSIENT);
  sink_tree_ops.rollback(self);
  sink_tree_ops.close(self);
  assert_int_equal(tu_count_files(outside, NULL), 0);
  GDir *d = g_dir_open(outside, 0, NULL);
  assert_null(g_dir_read_name(d));
  g_dir_close(d);
}

static void
test_tree_symlink_domain(void **state)
{
  check_symlink_refused(*state, "example.com");
}

static void
test_tree_symlink_month(void **state)
{
  check_symlink_refused(*state, "example.com/2022/09");
}

int
main(void)
{
  umask(022);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_registry),
    cmocka_unit_test(test_csv_rows_exact),
    cmocka_unit_test(test_csv_quoting),
    cmocka_unit_test_setup_teardown(test_csv_header_once, setup, teardown),
    cmocka_unit_test_setup_teardown(test_csv_rollback_untouched, setup, teardown),
    cmocka_unit_test_setup_teardown(test_csv_unwritable, setup, teardown),
    cmocka_unit_test_setup_teardown(test_spill_rollback, setup, teardown),
    cmocka_unit_test_setup_teardown(test_spill_waits_for_no_lock, setup, teardown),
    cmocka_unit_test_setup_teardown(test_jsonl_lines_parse, setup, teardown),
    cmocka_unit_test_setup_teardown(test_jsonl_stdout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tree_layout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tree_same_report_again_and_plain_json, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_tree_many_and_rollback, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tree_rollback_after_flush, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tree_rollback_removes_new_dirs, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tree_staged_written_by_flush, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tree_hostile_names, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tree_symlink_domain, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tree_symlink_month, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
