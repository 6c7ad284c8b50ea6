/* test_report.c - report parsing on every corpus report (figures read by hand from each
 * file), the tolerated quirks and their deviations, hostile JSON, file names, datetimes,
 * the dedup key and the normalized JSON (round trip through report_parse). */
#include "testutil.h"

#include "report.h"
#include "report-datetime.h"
#include "report-parse.h"

#include <string.h>

/* ---- helpers ------------------------------------------------------------------- */

static TrLimits test_limits;

static int
setup_limits(void **state)
{
  tr_limits_init(&test_limits);
  return 0;
}

static Report *
parse_len(const char *json, gsize len, const ReportFilename *fname, GError **error)
{
  g_autoptr(GBytes) b = g_bytes_new(json, len);
  return report_parse(b, fname, &test_limits, error);
}

static Report *
parse_str(const char *json, const ReportFilename *fname, GError **error)
{
  return parse_len(json, strlen(json), fname, error);
}

static Report *
parse_ok(const char *json)
{
  g_autoptr(GError) error = NULL;
  Report *r = parse_str(json, NULL, &error);
  if (r == NULL)
    fail_msg("parse failed: %s", error->message);
  return r;
}

static Report *
parse_fixture(const char *name, const ReportFilename *fname)
{
  g_autoptr(GBytes) b = tu_fixture(name);
  g_autoptr(GError) error = NULL;
  Report *r = report_parse(b, fname, &test_limits, &error);
  if (r == NULL)
    fail_msg("%s: %s", name, error->message);
  return r;
}

/* The text of the report's deviation @i. */
static const char *
dev_text(const Report *r, guint i)
{
  return report_deviation_text(g_array_index(r->deviations, ReportDeviation, i));
}

/* report_primary_domain() of @r, freed at the end of the test. */
static const char *
primary(const Report *r)
{
  static GPtrArray *keep = NULL;
  if (keep == NULL)
    keep = g_ptr_array_new_with_free_func(g_free);
  char *d = report_primary_domain(r);
  g_ptr_array_add(keep, d);
  return d;
}

static gboolean
has_dev(const Report *r, const char *what)
{
  for (guint i = 0; i < r->deviations->len; i++)
    if (strcmp(dev_text(r, i), what) == 0)
      return TRUE;
  return FALSE;
}

static void
assert_devs(const Report *r, const char *const *expected, const char *ctx)
{
  guint n = 0;
  for (; expected[n] != NULL; n++)
    if (!has_dev(r, expected[n]))
      fail_msg("%s: deviation \"%s\" missing", ctx, expected[n]);
  if (r->deviations->len != n) {
    g_autoptr(GString) all = g_string_new(NULL);
    for (guint i = 0; i < r->deviations->len; i++)
      g_string_append_printf(all, "[%s] ", dev_text(r, i));
    fail_msg("%s: %u deviations expected, got %u: %s", ctx, n, r->deviations->len, all->str);
  }
}

static void
assert_error(const char *json, gsize len, gint code, const char *msg_part)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = parse_len(json, len, NULL, &error);
  assert_null(r);
  assert_non_null(error);
  assert_true(error->domain == REPORT_ERROR);
  assert_int_equal(error->code, code);
  if (msg_part != NULL && strstr(error->message, msg_part) == NULL)
    fail_msg("error \"%s\" lacks \"%s\"", error->message, msg_part);
  assert_null(strchr(error->message, '\n'));
}

static ReportPolicy *
policy(const Report *r, guint i)
{
  assert_true(i < r->policies->len);
  return r->policies->pdata[i];
}

static ReportFailure *
failure(const ReportPolicy *p, guint i)
{
  assert_true(i < p->failures->len);
  return p->failures->pdata[i];
}

/* ---- the corpus, figure by figure --------------------------------------------- */

typedef struct {
  guint index;                    /* which detail to check */
  const char *result_type;
  const char *sending_mta_ip;
  const char *receiving_mx_hostname;
  const char *receiving_ip;
  gint64 count;
  const char *additional_information;
  const char *failure_reason_code;
  const char *receiving_mx_helo;
} ExpFailure;

typedef struct {
  const char *type;
  const char *domain;
  gint64 ok;
  gint64 fail;
  guint n_strings;
  const char *first_string;
  const char *last_string;
  const char *mx[3];              /* exact list, NULL-terminated */
  guint n_failures;
  ExpFailure f;                   /* checked when n_failures > 0 */
} ExpPolicy;

typedef struct {
  const char *path;
  const char *org;
  const char *id;
  const char *contact;
  gint64 begin;
  gint64 end;
  guint n_policies;
  ExpPolicy p[3];
  const char *devs[8];
} ExpReport;

#define RFC_STS_STRINGS 4, "version: STSv1", "max_age: 86400"
#define RFC_MANGLED "https://reports.company-x.example/report_info ? id = 5065427 c - 23 d3# StarttlsNotSupported "
#define RFC_CLEAN "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"
#define RFC_DETAIL(url) \
  { 1, "starttls-not-supported", "2001:db8:abcd:0013::1", "mx2.mail.company-y.example", \
    "203.0.113.56", 200, url, NULL, NULL }
#define RFC_POLICY(domain, url) \
  { "sts", domain, 5326, 303, RFC_STS_STRINGS, { "*.mail.company-y.example", NULL }, 3, \
    RFC_DETAIL(url) }
#define RFC_REPORT(path, id, domain, url, ...) \
  { path, "Company-X", id, "sts-reporting@company-x.example", 1459468800, 1459555199, 1, \
    { RFC_POLICY(domain, url) }, { __VA_ARGS__ } }
#define RFC_ID "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
#define MOX_TLSA_FIRST "3 1 1 206d5f55ecb9f8389bc57b5ba14716dd5b23d0834fd2c99fd402f0bda32e9523"
#define MOX_TLSA_LAST "3 1 1 4201e4b741c746b62ff806c142158c35ecbbbd9ac56b6d791f760e272736f8d0"
#define MOX_STS 4, "version: STSv1", "mx: mail.mox.example"

static const ExpReport corpus[] = {
  RFC_REPORT("corpus/dmarc-report-viewer/full-example.json", RFC_ID, "company-y.example",
             RFC_CLEAN, "mx-host is a string", NULL),
  { "corpus/dmarc-report-viewer/google.json", "Google Inc.", "2025-05-22T00:00:00Z_foo-bar.io",
    "smtp-tls-reporting@google.com", 1747872000, 1747958399, 1,
    { { "sts", "foo-bar.io", 1, 0, 4, "version: STSv1", "max_age: 2592000",
        { "*.foo-bar.io", NULL }, 0, { 0 } } },
    { NULL } },
  { "corpus/dmarc-report-viewer/google.old-bbd2196.json", "Google Inc.",
    "2025-04-12T00:00:00Z_domain.de", "smtp-tls-reporting@google.com", 1744416000, 1744502399,
    1, { { "no-policy-found", "domain.de", 2, 0, 0, NULL, NULL, { NULL }, 0, { 0 } } },
    { NULL } },
  { "corpus/dmarc-report-viewer/microsoft.json", "Microsoft Corporation",
    "133925885310113267+random.net", "tlsrpt-noreply@microsoft.com", 1747958400, 1748044799, 2,
    { { "sts", "random.net", 2, 0, 4, "version: STSv1", "max_age: 2592000", { NULL }, 0, { 0 } },
      { "tlsa", "random.net", 2, 0, 2,
        "3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC",
        "3 1 1 837C773D54C2E2BD71871A3FC352BE8214D5646CBAE5E3091401A7274717998B", { NULL }, 0,
        { 0 } } },
    { "policy-string is a JSON-encoded array", NULL } },
  { "corpus/dmarc-report-viewer/no-contact.json", "server.com", "123_456", NULL, 1768089600,
    1768176000, 1,
    { { "sts", "server.com", 1, 0, 4, "version: STSv1", "mx: mx.server.com",
        { "mx.server.com", NULL }, 0, { 0 } } },
    { "contact-info is null", "mx-host has 'mx: ' prefix", NULL } },
  { "corpus/dmarc-report-viewer/no-policy.json", "Google Inc.", "2025-03-27T00:00:00Z_foo-bar.io",
    "smtp-tls-reporting@google.com", 1743033600, 1743119999, 1,
    { { "no-policy-found", "foo-bar.io", 1, 0, 0, NULL, NULL, { NULL }, 0, { 0 } } },
    { NULL } },
  { "corpus/dmarc-report-viewer/no_ip_and_mx.json", "Microsoft Corporation", "1234567890+",
    "tlsrpt-noreply@microsoft.com", 1749859200, 1749945599, 1,
    { { "sts", "xxxxxxxx.xx", 0, 3, 0, NULL, NULL, { NULL }, 1,
        { 0, "sts-policy-fetch-error", NULL, NULL, NULL, 3, NULL, NULL, NULL } } },
    { "policy-string missing", "failure detail fields missing", NULL } },
  RFC_REPORT("corpus/dmarc-report-viewer/rfc-example.json", RFC_ID, "company-y.example",
             RFC_CLEAN, NULL),
  { "corpus/email-report-processor/google.com!example.com!1667520000!1667606399!001.json",
    "Google Inc.", "2022-11-04T00:00:00Z_example.com", "smtp-tls-reporting@google.com",
    1667520000, 1667606399, 1,
    { { "sts", "example.com", 2, 0, 4, "version: STSv1", "max_age: 86400",
        { "mx.example.com", NULL }, 0, { 0 } } },
    { NULL } },
  RFC_REPORT("corpus/mox/report_test.reportJSON.json", RFC_ID, "company-y.example", RFC_MANGLED,
             NULL),
  { "corpus/mox/smtpserver_server_test.tlsrpt.json", "Example.org", "1", "tlsrpt@example.org",
    1641513600, 1641599999, 1,
    { { "no-policy-found", "xmox.nl", 1, 0, 0, NULL, NULL, { NULL }, 0, { 0 } } },
    { NULL } },
  { "corpus/mox/tlsrptdb_report_test.reportMixedJSON.json", "remote.example",
    "20240225.test.xmox.nl@remote.example", "postmaster@remote.example", 1708819200, 1708905599,
    3,
    { { "tlsa", "mail.mox.example", 1, 0, 2, MOX_TLSA_FIRST, MOX_TLSA_LAST, { NULL }, 0, { 0 } },
      { "sts", "unknown.xmox.nl", 1, 0, MOX_STS, { "mail.mox.example", NULL }, 0, { 0 } },
      { "sts", "test.xmox.nl", 1, 0, MOX_STS, { "mail.mox.example", NULL }, 0, { 0 } } },
    { NULL } },
  { "corpus/mox/tlsrptdb_report_test.reportMultipleJSON.json", "remote.example",
    "20240225.mail.mox.example@remote.example", "postmaster@remote.example", 1708819200,
    1708905599, 2,
    { { "tlsa", "test2.xmox.nl", 1, 0, 2, MOX_TLSA_FIRST, MOX_TLSA_LAST,
        { "mail.mox.example", NULL }, 0, { 0 } },
      { "tlsa", "test.xmox.nl", 1, 0, 2, MOX_TLSA_FIRST, MOX_TLSA_LAST,
        { "mail.mox.example", NULL }, 0, { 0 } } },
    { NULL } },
  { "corpus/mox/tlsrptdb_report_test.reportUnknownJSON.json", "remote.example",
    "20240225.test.xmox.nl@remote.example", "postmaster@remote.example", 1708819200, 1708905599,
    2,
    { { "tlsa", "unknown.mox.example", 1, 0, 2, MOX_TLSA_FIRST, MOX_TLSA_LAST, { NULL }, 0,
        { 0 } },
      { "sts", "unknown.xmox.nl", 1, 0, MOX_STS, { "unknown.mox.example", NULL }, 0, { 0 } } },
    { NULL } },
  { "corpus/mta-sts-exporter/google.json", "Google Inc.", "2024-02-17T00:00:00Z_example.com",
    "smtp-tls-reporting@google.com", 1708128000, 1708214399, 1,
    { { "sts", "example.com", 53, 0, 4, "version: STSv1", "max_age: 86400",
        { "example.com", NULL }, 0, { 0 } } },
    { NULL } },
  { "corpus/mta-sts-exporter/microsoft-2.json", "Microsoft Corporation",
    "133561180919336230+example.com", "tlsrpt-noreply@microsoft.com", 1711411200, 1711497599, 1,
    { { "sts", "example.com", 7, 0, 4, "version: STSv1", "max_age: 86400", { NULL }, 0, { 0 } } },
    { "datetime without zone treated as UTC", NULL } },
  { "corpus/mta-sts-exporter/microsoft.json", "Microsoft Corporation",
    "133526718584528772+example.com", "tlsrpt-noreply@microsoft.com", 1708041600, 1708127999, 1,
    { { "sts", "example.com", 18, 0, 4, "version: STSv1", "max_age: 86400", { NULL }, 0,
        { 0 } } },
    { NULL } },
  RFC_REPORT("corpus/mta-sts-exporter/rfc-errata-6241.json", RFC_ID, "company-y.example",
             RFC_MANGLED, NULL),
  RFC_REPORT("corpus/mta-sts-exporter/rfc.json", RFC_ID, "company-y.example", RFC_MANGLED,
             "mx-host is a string", NULL),
  { "corpus/parsedmarc/empty_failure_detail_fields.json", "Reporter Example",
    "2024-06-01T00:00:00Z_example.com", "smtp-tls-reporting@reporter.example", 1717200000,
    1717286399, 1,
    { { "sts", "example.com", 0, 1, 4, "version: STSv1", "max_age: 86400", { NULL }, 1,
        { 0, "sts-policy-fetch-error", NULL, NULL, NULL, 1, NULL, "no-policy-served", NULL } } },
    { "failure detail field is empty", NULL } },
  { "corpus/parsedmarc/mail.ru.json", "Mail.ru", "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru",
    "tls_support@corp.mail.ru", 1708560000, 1708646400, 1,
    { { "sts", "example.com", 0, 1, 0, NULL, NULL, { NULL }, 2,
        { 1, "sts-policy-fetch-error", NULL, NULL, NULL, 1, NULL,
          "bad https response code: 500", NULL } } },
    { "policy-string missing", "failure detail fields missing",
      "failure detail counts exceed total", NULL } },
  RFC_REPORT("corpus/parsedmarc/rfc8460.json", RFC_ID, "company-y.example", RFC_CLEAN,
             "mx-host is a string", NULL),
  { "corpus/parsedmarc/smtp_tls.json", "Example Inc.", "2024-01-09T00:00:00Z_example.com",
    "smtp-tls-reporting@example.com", 1704758400, 1704844799, 1,
    { { "sts", "example.com", 0, 3, 4, "version: STSv1", "max_age: 86400", { NULL }, 2,
        { 0, "validation-failure", "209.85.222.201", "example.com", "173.212.201.41", 2, NULL,
          NULL, NULL } } },
    { NULL } },
  RFC_REPORT("corpus/stalwart-mail-auth/rpt01.json", RFC_ID, "company-y.example", RFC_MANGLED,
             NULL),
  { "corpus/stalwart-mail-auth/rpt02.json", "Google Inc.", "2020-01-01T00:00:00Z_example.com",
    "smtp-tls-reporting@google.com", 1577836800, 1578441599, 1,
    { { "sts", "example.com", 23, 1, 4, "version: STSv1", "max_age: 604800", { NULL }, 1,
        { 0, "certificate-host-mismatch", "123.123.123.123", "demo.example.com",
          "234.234.234.234", 1, NULL, NULL, NULL } } },
    { NULL } },
  { "corpus/stalwart-mail-auth/rpt03.json", "Google Inc.", "2019-04-14T00:00:00Z_example.org",
    "smtp-tls-reporting@google.com", 1555200000, 1555286399, 2,
    { { "no-policy-found", NULL, 1, 0, 0, NULL, NULL, { NULL }, 0, { 0 } },
      { "invalid-policy-type", NULL, 1, 0, 0, NULL, NULL, { NULL }, 0, { 0 } } },
    { "policy-domain missing", "total-failure-session-count missing", "unknown policy-type",
      NULL } },
  { "corpus/tlsrpt-be/report-2.json", "Example LLC.", "2025-08-04T00:00:00Z_example.org",
    "smtp-tls-reporting@example-llc.com", 1754265600, 1754351999, 1,
    { { "no-policy-found", "example.org", 13, 0, 0, NULL, NULL, { NULL }, 0, { 0 } } },
    { NULL } },
  { "corpus/tlsrpt-be/report.json", "Example Inc.", "report-id-from-report.json",
    "smtp-tls-reporting@example.com", 1754265600, 1754351999, 1,
    { { "no-policy-found", "xn--gpher-jua.test", 99, 102, 0, NULL, NULL, { NULL }, 0, { 0 } } },
    { NULL } },
  RFC_REPORT("corpus/tlsrpt-be/testing.json", "report-id-of-report-over-email-1234",
             "xn--gpher-jua.test", RFC_MANGLED, "mx-host is a string", NULL),
  /* written for this project */
  { "synthetic/report-quirks.json", "Quirky Sender", "quirks-1", NULL, 1714521600,
    1714521600 + 86399, 1,
    { { "sts", "example.net", 12, 4, 4, "version: STSv1", "max_age: 604800",
        { "mx1.example.net", NULL }, 1,
        { 0, "certificate-host-mismatch", "192.0.2.1", "mx1.example.net", "198.51.100.7", 4,
          NULL, "hostname mismatch", "mx1.example.net" } } },
    { "contact-info missing", "policies is a single object", "policy-string line ends in CR",
      "mx-host is a string", "mx-host has 'mx: ' prefix",
      "total-successful-session-count is a string", "failure-details is a single object",
      NULL } },
};

static void
check_policy(const ExpReport *e, guint pi, const ReportPolicy *p)
{
  const ExpPolicy *x = &e->p[pi];
  if (g_strcmp0(p->policy_type, x->type) != 0)
    fail_msg("%s policy %u: type %s", e->path, pi, p->policy_type);
  if (g_strcmp0(p->policy_domain, x->domain) != 0)
    fail_msg("%s policy %u: domain %s", e->path, pi, p->policy_domain);
  assert_int_equal(p->total_successful, x->ok);
  assert_int_equal(p->total_failure, x->fail);
  assert_int_equal(p->policy_strings->len, x->n_strings);
  if (x->n_strings > 0) {
    assert_string_equal(p->policy_strings->pdata[0], x->first_string);
    assert_string_equal(p->policy_strings->pdata[x->n_strings - 1], x->last_string);
  }
  guint nmx = 0;
  while (nmx < G_N_ELEMENTS(x->mx) && x->mx[nmx] != NULL)
    nmx++;
  assert_int_equal(p->mx_hosts->len, nmx);
  for (guint i = 0; i < nmx; i++)
    assert_string_equal(p->mx_hosts->pdata[i], x->mx[i]);
  assert_int_equal(p->failures->len, x->n_failures);
  if (x->n_failures == 0)
    return;
  const ReportFailure *f = failure(p, x->f.index);
  assert_string_equal(f->result_type, x->f.result_type);
  if (g_strcmp0(f->sending_mta_ip, x->f.sending_mta_ip) != 0 ||
      g_strcmp0(f->receiving_mx_hostname, x->f.receiving_mx_hostname) != 0 ||
      g_strcmp0(f->receiving_ip, x->f.receiving_ip) != 0 ||
      g_strcmp0(f->additional_information, x->f.additional_information) != 0 ||
      g_strcmp0(f->failure_reason_code, x->f.failure_reason_code) != 0)
    fail_msg("%s policy %u detail %u: fields differ", e->path, pi, x->f.index);
  if (g_strcmp0(f->receiving_mx_helo, x->f.receiving_mx_helo) != 0)
    fail_msg("%s policy %u detail %u: helo %s", e->path, pi, x->f.index, f->receiving_mx_helo);
  assert_int_equal(f->failed_session_count, x->f.count);
}

static void
test_corpus_figures(void **state)
{
  for (gsize i = 0; i < G_N_ELEMENTS(corpus); i++) {
    const ExpReport *e = &corpus[i];
    g_autoptr(Report) r = parse_fixture(e->path, NULL);
    if (strcmp(r->organization_name, e->org) != 0 || strcmp(r->report_id, e->id) != 0)
      fail_msg("%s: org/id %s / %s", e->path, r->organization_name, r->report_id);
    if (g_strcmp0(r->contact_info, e->contact) != 0)
      fail_msg("%s: contact %s", e->path, r->contact_info);
    if (r->begin != e->begin || r->end != e->end)
      fail_msg("%s: range %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT, e->path, r->begin, r->end);
    if (r->policies->len != e->n_policies)
      fail_msg("%s: %u policies", e->path, r->policies->len);
    for (guint p = 0; p < e->n_policies; p++)
      check_policy(e, p, policy(r, p));
    assert_devs(r, e->devs, e->path);
    /* ingest is the pipeline's; the parser leaves it empty */
    assert_null(r->ingest.source);
    assert_null(r->ingest.filename);
    assert_null(r->ingest.raw);
  }
}

/* Every corpus .json file is in the table: a new fixture needs its figures. */
static void
test_corpus_table_is_complete(void **state)
{
  g_autofree char *root = tu_fixture_path("corpus");
  guint found = 0;
  GDir *top = g_dir_open(root, 0, NULL);
  assert_non_null(top);
  const char *sub;
  while ((sub = g_dir_read_name(top)) != NULL) {
    g_autofree char *subdir = g_build_filename(root, sub, NULL);
    GDir *d = g_dir_open(subdir, 0, NULL);
    if (d == NULL)
      continue;
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
      if (!g_str_has_suffix(name, ".json"))
        continue;
      g_autofree char *rel = g_strdup_printf("corpus/%s/%s", sub, name);
      gboolean listed = FALSE;
      for (gsize i = 0; i < G_N_ELEMENTS(corpus); i++)
        listed |= strcmp(corpus[i].path, rel) == 0;
      if (!listed)
        fail_msg("%s is not in the corpus table", rel);
      found++;
    }
    g_dir_close(d);
  }
  g_dir_close(top);
  assert_int_equal(found, G_N_ELEMENTS(corpus) - 1);   /* minus the synthetic one */
}

/* ---- round trip of the normalized JSON --------------------------------------- */

static void
assert_strv_equal(const GPtrArray *a, const GPtrArray *b)
{
  assert_int_equal(a->len, b->len);
  for (guint i = 0; i < a->len; i++)
    assert_string_equal(a->pdata[i], b->pdata[i]);
}

static void
assert_reports_equal(const Report *a, const Report *b)
{
  assert_string_equal(a->organization_name, b->organization_name);
  assert_string_equal(a->report_id, b->report_id);
  assert_true(g_strcmp0(a->contact_info, b->contact_info) == 0);
  assert_int_equal(a->begin, b->begin);
  assert_int_equal(a->end, b->end);
  assert_memory_equal(a->key, b->key, 16);
  assert_int_equal(a->policies->len, b->policies->len);
  for (guint i = 0; i < a->policies->len; i++) {
    const ReportPolicy *p = a->policies->pdata[i], *q = b->policies->pdata[i];
    assert_string_equal(p->policy_type, q->policy_type);
    assert_true(g_strcmp0(p->policy_domain, q->policy_domain) == 0);
    assert_strv_equal(p->policy_strings, q->policy_strings);
    assert_strv_equal(p->mx_hosts, q->mx_hosts);
    assert_int_equal(p->total_successful, q->total_successful);
    assert_int_equal(p->total_failure, q->total_failure);
    assert_int_equal(p->failures->len, q->failures->len);
    for (guint j = 0; j < p->failures->len; j++) {
      const ReportFailure *f = p->failures->pdata[j], *g = q->failures->pdata[j];
      assert_string_equal(f->result_type, g->result_type);
      assert_true(g_strcmp0(f->sending_mta_ip, g->sending_mta_ip) == 0);
      assert_true(g_strcmp0(f->receiving_mx_hostname, g->receiving_mx_hostname) == 0);
      assert_true(g_strcmp0(f->receiving_mx_helo, g->receiving_mx_helo) == 0);
      assert_true(g_strcmp0(f->receiving_ip, g->receiving_ip) == 0);
      assert_true(g_strcmp0(f->additional_information, g->additional_information) == 0);
      assert_true(g_strcmp0(f->failure_reason_code, g->failure_reason_code) == 0);
      assert_int_equal(f->failed_session_count, g->failed_session_count);
    }
  }
}

/* Round trip: normalized output re-parses to an equal report, never with a deviation the
 * original lacked, and serializes to the same bytes again. */
static void
round_trip(const Report *r, gboolean pretty)
{
  g_autoptr(GString) out = g_string_new(NULL);
  report_to_json(r, pretty, out);
  if (!pretty)
    assert_null(strchr(out->str, '\n'));
  else
    assert_non_null(strstr(out->str, "\n  \"organization-name\": "));
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) again = parse_len(out->str, out->len, NULL, &error);
  if (again == NULL)
    fail_msg("re-parse: %s\n%s", error->message, out->str);
  assert_reports_equal(r, again);
  for (guint i = 0; i < again->deviations->len; i++) {
    const char *d = dev_text(again, i);
    /* a NULL contact-info is omitted from the output */
    if (r->contact_info == NULL && strcmp(d, "contact-info missing") == 0)
      continue;
    /* so is an empty failure detail field */
    if (has_dev(r, "failure detail field is empty") &&
        strcmp(d, "failure detail fields missing") == 0)
      continue;
    if (!has_dev(r, d))
      fail_msg("new deviation after round trip: %s", d);
  }

  /* the report part serializes to the same bytes (the ingest block is the pipeline's) */
  g_autoptr(GString) out2 = g_string_new(NULL);
  report_to_json(again, pretty, out2);
  const char *cut = strstr(out->str, "\"ingest\":");
  assert_non_null(cut);
  gsize n = (gsize) (cut - out->str);
  assert_true(out2->len > n);
  assert_memory_equal(out->str, out2->str, n);
}

static void
test_round_trip_corpus(void **state)
{
  for (gsize i = 0; i < G_N_ELEMENTS(corpus); i++) {
    g_autoptr(Report) r = parse_fixture(corpus[i].path, NULL);
    round_trip(r, FALSE);
    round_trip(r, TRUE);
  }
}

static void
test_to_json_exact(void **state)
{
  g_autoptr(Report) r = parse_ok(
      "{\"report-id\":\"r\\\"1\",\"organization-name\":\"Org\\\\X\\u0001\","
      "\"date-range\":{\"end-datetime\":\"2024-01-01T23:59:59Z\","
      "\"start-datetime\":\"2024-01-01T00:00:00Z\"},\"contact-info\":null,"
      "\"policies\":[{\"summary\":{\"total-failure-session-count\":1,"
      "\"total-successful-session-count\":2},\"failure-details\":[{\"failed-session-count\":1,"
      "\"result-type\":\"new-type\",\"receiving-ip\":\"\",\"receiving-mx-helo\":\"helo\\n\"}],"
      "\"policy\":{\"policy-domain\":\"EX.org\",\"policy-type\":\"sts\","
      "\"policy-string\":[\"a\",\"b\"],\"mx-host\":[\"mx.ex.org\"]}}]}");
  r->ingest.source = g_strdup("/tmp/x");
  r->ingest.received = 1704067200;
  r->ingest.raw_extension = g_strdup("json");
  g_autofree char *hex = report_key_hex(r->key);
  g_autoptr(GString) out = g_string_new("prefix:");
  report_to_json(r, FALSE, out);
  g_autofree char *expected = g_strdup_printf(
      "prefix:{\"organization-name\":\"Org\\\\X\\u0001\",\"date-range\":{"
      "\"start-datetime\":\"2024-01-01T00:00:00Z\",\"end-datetime\":\"2024-01-01T23:59:59Z\"},"
      "\"report-id\":\"r\\\"1\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
      "\"policy-string\":[\"a\",\"b\"],\"policy-domain\":\"ex.org\",\"mx-host\":[\"mx.ex.org\"]},"
      "\"summary\":{\"total-successful-session-count\":2,\"total-failure-session-count\":1},"
      "\"failure-details\":[{\"result-type\":\"new-type\",\"receiving-mx-helo\":\"helo\\n\","
      "\"failed-session-count\":1}]}],\"ingest\":{\"key\":\"%s\",\"source\":\"/tmp/x\","
      "\"received\":\"2024-01-01T00:00:00Z\",\"raw-format\":\"json\",\"deviations\":["
      "{\"slug\":\"contact-info-null\",\"text\":\"contact-info is null\"},"
      "{\"slug\":\"failure-detail-fields-missing\",\"text\":\"failure detail fields missing\"},"
      "{\"slug\":\"failure-detail-field-empty\",\"text\":\"failure detail field is empty\"}]}}",
      hex);
  assert_string_equal(out->str, expected);

  g_autoptr(GString) pretty = g_string_new(NULL);
  report_to_json(r, TRUE, pretty);
  assert_true(g_str_has_prefix(pretty->str, "{\n  \"organization-name\": \"Org\\\\X\\u0001\",\n"
                                            "  \"date-range\": {\n"
                                            "    \"start-datetime\": \"2024-01-01T00:00:00Z\",\n"));
  assert_non_null(strstr(pretty->str, "\n      \"policy\": {\n        \"policy-type\": \"sts\","));
  assert_non_null(strstr(pretty->str, "\"policy-string\": [\n          \"a\",\n          \"b\"\n"
                                      "        ],"));
  assert_true(g_str_has_suffix(pretty->str, "\n  }\n}"));
  round_trip(r, TRUE);
}

static void
test_to_json_empty_arrays_and_bad_utf8_ingest(void **state)
{
  g_autoptr(Report) r = parse_ok(
      "{\"organization-name\":\"o\",\"report-id\":\"i\",\"contact-info\":\"c\","
      "\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\","
      "\"end-datetime\":\"2024-01-02T00:00:00Z\"},\"policies\":[{\"policy\":{"
      "\"policy-type\":\"no-policy-found\",\"policy-domain\":\"d.example\"},"
      "\"summary\":{\"total-successful-session-count\":0,\"total-failure-session-count\":0}}]}");
  assert_int_equal(r->deviations->len, 0);
  r->ingest.filename = g_strdup("bad\xff\xfe\"name\x01.json");
  g_autoptr(GString) out = g_string_new(NULL);
  report_to_json(r, FALSE, out);
  assert_non_null(strstr(out->str, "\"policy-string\":[],\"policy-domain\":\"d.example\","
                                   "\"mx-host\":[]},"));
  assert_non_null(strstr(out->str, "\"failure-details\":[]}"));
  assert_non_null(strstr(out->str, "\"contact-info\":\"c\""));
  assert_non_null(strstr(out->str, "\"deviations\":[]}"));
  assert_null(strstr(out->str, "\"received\""));
  assert_true(g_utf8_validate(out->str, -1, NULL));
  assert_non_null(strstr(out->str, "\"filename\":\"bad\xef\xbf\xbd\xef\xbf\xbd\\\"name\\u0001.json\""));
  g_autoptr(GError) error = NULL;
  g_autoptr(TrJson) j = json_tokener_parse(out->str);
  assert_non_null(j);
  round_trip(r, FALSE);
}

/* ---- quirks, one by one ---------------------------------------------------------- */

#define HEAD "{\"organization-name\":\"o\",\"report-id\":\"i\",\"contact-info\":\"c\"," \
             "\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\"," \
             "\"end-datetime\":\"2024-01-01T23:59:59Z\"},"
#define SUMMARY "\"summary\":{\"total-successful-session-count\":1," \
                "\"total-failure-session-count\":0}"

static void
test_mx_host_shapes(void **state)
{
  {
    g_autoptr(Report) r = parse_ok(HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\","
                                   "\"policy-domain\":\"d\",\"mx-host\":[]}," SUMMARY "}]}");
    assert_int_equal(policy(r, 0)->mx_hosts->len, 0);
    assert_int_equal(r->deviations->len, 0);
  }
  {
    g_autoptr(Report) r = parse_ok(HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\","
                                   "\"policy-domain\":\"d\",\"mx-host\":[\"MX: a.example\","
                                   "\"mx:b.example\",7,\"\",\"c.example\"]}," SUMMARY "}]}");
    ReportPolicy *p = policy(r, 0);
    assert_int_equal(p->mx_hosts->len, 3);
    assert_string_equal(p->mx_hosts->pdata[0], "a.example");
    assert_string_equal(p->mx_hosts->pdata[1], "b.example");
    assert_string_equal(p->mx_hosts->pdata[2], "c.example");
    static const char *const devs[] = { "mx-host has 'mx: ' prefix",
                                        "mx-host has a non-string entry",
                                        "mx-host entry is empty", NULL };
    assert_devs(r, devs, "mx-host array");
  }
  {
    g_autoptr(Report) r = parse_ok(HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\","
                                   "\"policy-domain\":\"d\",\"mx-host\":{\"x\":1}}," SUMMARY "}]}");
    assert_int_equal(policy(r, 0)->mx_hosts->len, 0);
    assert_true(has_dev(r, "mx-host is not an array"));
  }
}

static void
test_policy_string_shapes(void **state)
{
  {
    /* Microsoft's encoded TLSA list plus Google's CR-terminated lines */
    g_autoptr(Report) r = parse_ok(HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"tlsa\","
                                   "\"policy-string\":[\"[\\\"3 1 1 AA\\\", \\\"3 1 1 BB\\\"]\","
                                   "\"x\\r\\n\",\"[not json\"],\"policy-domain\":\"d\"}," SUMMARY "}]}");
    ReportPolicy *p = policy(r, 0);
    assert_int_equal(p->policy_strings->len, 4);
    assert_string_equal(p->policy_strings->pdata[0], "3 1 1 AA");
    assert_string_equal(p->policy_strings->pdata[1], "3 1 1 BB");
    assert_string_equal(p->policy_strings->pdata[2], "x");
    assert_string_equal(p->policy_strings->pdata[3], "[not json");
    static const char *const devs[] = { "policy-string is a JSON-encoded array",
                                        "policy-string line ends in CR", NULL };
    assert_devs(r, devs, "policy-string");
  }
  {
    g_autoptr(Report) r = parse_ok(HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
                                   "\"policy-string\":[],\"policy-domain\":\"d\"}," SUMMARY "}]}");
    assert_int_equal(policy(r, 0)->policy_strings->len, 0);
    static const char *const devs[] = { "policy-string missing", NULL };
    assert_devs(r, devs, "empty policy-string");
  }
  {
    g_autoptr(Report) r = parse_ok(HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
                                   "\"policy-string\":\"version: STSv1\",\"policy-domain\":\"d\"},"
                                   SUMMARY "}]}");
    assert_int_equal(policy(r, 0)->policy_strings->len, 1);
    assert_string_equal(policy(r, 0)->policy_strings->pdata[0], "version: STSv1");
    assert_true(has_dev(r, "policy-string is a string"));
  }
  {
    /* an encoded array holding a non-string stays verbatim */
    g_autoptr(Report) r = parse_ok(HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"tlsa\","
                                   "\"policy-string\":[\"[1,2]\", null],\"policy-domain\":\"d\"},"
                                   SUMMARY "}]}");
    assert_int_equal(policy(r, 0)->policy_strings->len, 1);
    assert_string_equal(policy(r, 0)->policy_strings->pdata[0], "[1,2]");
    static const char *const devs[] = { "policy-string has a non-string entry", NULL };
    assert_devs(r, devs, "odd policy-string");
  }
}

static void
test_failure_detail_shapes(void **state)
{
  g_autoptr(Report) r = parse_ok(
      HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":[\"v\"],"
      "\"policy-domain\":\"d\"},\"summary\":{\"total-successful-session-count\":0,"
      "\"total-failure-session-count\":5},\"failure-details\":[{\"result-type\":"
      "\"brand-new-result\",\"sending-mta-ip\":\"192.0.2.1\",\"receiving-ip\":\"192.0.2.2\","
      "\"receiving-mx-hostname\":\"mx\",\"failed-session-count\":5,\"extra\":[1]},"
      "{\"sending-mta-ip\":\"192.0.2.1\",\"receiving-ip\":\"192.0.2.2\","
      "\"receiving-mx-hostname\":\"mx\"}, 42]}]}");
  ReportPolicy *p = policy(r, 0);
  assert_int_equal(p->failures->len, 2);
  assert_string_equal(failure(p, 0)->result_type, "brand-new-result");
  assert_string_equal(failure(p, 1)->result_type, "");
  assert_int_equal(failure(p, 1)->failed_session_count, 0);
  /* unknown result types are data: no deviation for them */
  static const char *const devs[] = { "result-type missing", "failed-session-count missing",
                                      "failure detail is not an object", NULL };
  assert_devs(r, devs, "details");
}

static void
test_policies_and_policy_shapes(void **state)
{
  g_autoptr(Report) r = parse_ok(HEAD "\"policies\":[7,{\"summary\":{}},{\"policy\":{"
                                 "\"policy-type\":\"sts\",\"policy-string\":[\"v\"],"
                                 "\"policy-domain\":\"D\"}}]}");
  assert_int_equal(r->policies->len, 2);
  assert_string_equal(policy(r, 0)->policy_type, "");
  assert_null(policy(r, 0)->policy_domain);
  assert_string_equal(policy(r, 1)->policy_domain, "d");
  static const char *const devs[] = { "policy entry is not an object", "policy missing",
                                      "policy-type missing", "policy-domain missing",
                                      "total-successful-session-count missing",
                                      "total-failure-session-count missing", "summary missing",
                                      NULL };
  assert_devs(r, devs, "policy shapes");

  g_autoptr(Report) empty = parse_ok(HEAD "\"policies\":[]}");
  assert_int_equal(empty->policies->len, 0);
  static const char *const devs2[] = { "policies is empty", NULL };
  assert_devs(empty, devs2, "no policies");
  assert_string_equal(primary(empty), "unknown");
}

static void
test_top_level_fields(void **state)
{
  g_autoptr(Report) r = parse_ok(
      "{\"organization-name\":12,\"report-id\":[1],\"contact-info\":\"\","
      "\"date-range\":{\"start-datetime\":1704067200,\"end-datetime\":\"2024-01-01 23:59:59\"},"
      "\"policies\":[]}");
  assert_string_equal(r->organization_name, "12");
  assert_string_equal(r->report_id, "");
  assert_null(r->contact_info);
  assert_int_equal(r->begin, 1704067200);
  assert_int_equal(r->end, 1704153599);
  static const char *const devs[] = { "organization-name is not a string",
                                      "report-id is not a string", "report-id missing",
                                      "contact-info is empty", "datetime is a number",
                                      "datetime without zone treated as UTC", "policies is empty",
                                      NULL };
  assert_devs(r, devs, "top-level fields");

  g_autoptr(Report) m = parse_ok("{\"date-range\":{\"start-datetime\":\"2024-01-02T00:00:00Z\","
                                 "\"end-datetime\":\"2024-01-01T00:00:00Z\"},\"policies\":{}}");
  assert_string_equal(m->organization_name, "");
  assert_string_equal(m->report_id, "");
  assert_int_equal(m->policies->len, 1);
  assert_true(has_dev(m, "organization-name missing"));
  assert_true(has_dev(m, "contact-info missing"));
  assert_true(has_dev(m, "policies is a single object"));
  assert_true(has_dev(m, "end-datetime before start-datetime"));
}

static void
test_counts(void **state)
{
  g_autoptr(Report) r = parse_fixture("synthetic/report-bad-counts.json", NULL);
  assert_int_equal(r->policies->len, 5);
  assert_int_equal(policy(r, 0)->total_successful, 0);     /* -5 */
  assert_int_equal(policy(r, 0)->total_failure, 2);        /* 2.5 */
  assert_int_equal(policy(r, 1)->total_successful, 0);     /* 2^64-1 */
  assert_int_equal(policy(r, 1)->total_failure, 0);        /* 1e400 */
  assert_int_equal(policy(r, 2)->total_successful, G_GINT64_CONSTANT(9007199254740991));
  assert_int_equal(policy(r, 2)->total_failure, 0);        /* 2^53 */
  assert_int_equal(policy(r, 3)->total_successful, 0);     /* "abc" */
  assert_int_equal(policy(r, 3)->total_failure, 0);        /* true */
  assert_int_equal(policy(r, 4)->total_successful, 0);     /* -1e20 */
  assert_int_equal(policy(r, 4)->total_failure, 0);        /* "-3" */
  static const char *const devs[] = {
    "total-successful-session-count is negative", "total-failure-session-count is not an integer",
    "total-successful-session-count is out of range", "total-failure-session-count is out of range",
    "total-successful-session-count is not a number", "total-failure-session-count is not a number",
    "total-failure-session-count is negative", NULL };
  assert_devs(r, devs, "bad counts");

  g_autoptr(Report) s = parse_ok(HEAD "\"policies\":[{\"policy\":{\"policy-type\":"
                                 "\"no-policy-found\",\"policy-domain\":\"d\"},\"summary\":{"
                                 "\"total-successful-session-count\":\" 42 \","
                                 "\"total-failure-session-count\":7.0},\"failure-details\":[{"
                                 "\"result-type\":\"x\",\"failed-session-count\":NaN}]}]}");
  assert_int_equal(policy(s, 0)->total_successful, 42);
  assert_int_equal(policy(s, 0)->total_failure, 7);
  assert_int_equal(failure(policy(s, 0), 0)->failed_session_count, 0);
  assert_true(has_dev(s, "total-successful-session-count is a string"));
  assert_true(has_dev(s, "total-failure-session-count is not an integer"));
  assert_true(has_dev(s, "failed-session-count is out of range"));
}

static void
test_strings_nul_and_utf8(void **state)
{
  g_autoptr(Report) r = parse_ok(
      "{\"organization-name\":\"ab\\u0000cd\",\"report-id\":\"x\xff\xc3y\","
      "\"contact-info\":\"\\ud800\",\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\","
      "\"end-datetime\":\"2024-01-01T23:59:59Z\"},\"policies\":[{\"policy\":{\"policy-type\":"
      "\"no-policy-found\",\"policy-domain\":\"D\\u0000.evil\"}," SUMMARY "}]}");
  assert_string_equal(r->organization_name, "ab");
  assert_string_equal(r->report_id, "x\xef\xbf\xbd\xef\xbf\xbdy");
  assert_true(g_utf8_validate(r->contact_info, -1, NULL));
  assert_string_equal(policy(r, 0)->policy_domain, "d");
  assert_true(has_dev(r, "NUL in string"));
  assert_true(has_dev(r, "invalid UTF-8 in string"));
  round_trip(r, FALSE);
}

static void
test_datetime_quirks_in_report(void **state)
{
  g_autoptr(Report) r = parse_ok(
      "{\"organization-name\":\"o\",\"report-id\":\"i\",\"contact-info\":\"c\","
      "\"date-range\":{\"start-datetime\":\"2024-01-01T02:00:00.5+02:00\","
      "\"end-datetime\":\"2024-01-01T18:59:59-05:00\"},\"policies\":[]}");
  assert_int_equal(r->begin, 1704067200);
  assert_int_equal(r->end, 1704153599);
  assert_false(has_dev(r, "datetime without zone treated as UTC"));
}

/* ---- date-range and file name interplay ------------------------------------------ */

static void
test_date_range_missing(void **state)
{
  const char *no_range = "{\"organization-name\":\"o\",\"report-id\":\"i\",\"contact-info\":\"c\","
                         "\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\"}," SUMMARY
                         "}]}";
  assert_error(no_range, strlen(no_range), REPORT_ERROR_INVALID, "no usable date-range");
  const char *bad = "{\"date-range\":{\"start-datetime\":\"yesterday\","
                    "\"end-datetime\":\"2024-01-01T00:00:00Z\"},\"policies\":[]}";
  assert_error(bad, strlen(bad), REPORT_ERROR_INVALID, "no usable date-range");

  ReportFilename f = { 0 };
  assert_true(report_filename_parse("sender.example!Example.COM!1704067200!1704153599!77.json.gz",
                                    &f));
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = parse_str(no_range, &f, &error);
  assert_non_null(r);
  assert_int_equal(r->begin, 1704067200);
  assert_int_equal(r->end, 1704153599);
  assert_string_equal(policy(r, 0)->policy_domain, "example.com");   /* filled and lowered */
  static const char *const devs[] = { "date-range missing", "date-range taken from file name",
                                      "policy-domain missing", NULL };
  assert_devs(r, devs, "range from file name");

  g_autoptr(Report) r2 = parse_str(bad, &f, &error);
  assert_non_null(r2);
  assert_int_equal(r2->begin, 1704067200);
  assert_int_equal(r2->end, 1704067200);          /* the JSON's end wins */
  assert_true(has_dev(r2, "start-datetime unparseable"));
  assert_true(has_dev(r2, "date-range taken from file name"));
  assert_true(has_dev(r2, "file name disagrees with report: end"));
  assert_false(has_dev(r2, "file name disagrees with report: begin"));
  report_filename_clear(&f);
}

static void
test_filename_disagreement(void **state)
{
  ReportFilename f = { 0 };
  assert_true(report_filename_parse("google.com!example.org!1577836800!1578441599.json", &f));
  g_autoptr(Report) r = parse_fixture("corpus/stalwart-mail-auth/rpt02.json", &f);
  assert_string_equal(policy(r, 0)->policy_domain, "example.com");   /* JSON wins */
  static const char *const devs[] = { "file name disagrees with report: policy-domain", NULL };
  assert_devs(r, devs, "rpt02 vs file name");
  report_filename_clear(&f);

  assert_true(report_filename_parse("google.com!EXAMPLE.com!1577836801!1578441599.json", &f));
  g_autoptr(Report) r2 = parse_fixture("corpus/stalwart-mail-auth/rpt02.json", &f);
  assert_int_equal(r2->begin, 1577836800);
  static const char *const devs2[] = { "file name disagrees with report: begin", NULL };
  assert_devs(r2, devs2, "rpt02 begin");
  report_filename_clear(&f);

  /* the Google file name of the corpus agrees with its JSON */
  const char *name = "google.com!example.com!1667520000!1667606399!001.json";
  assert_true(report_filename_parse(name, &f));
  g_autofree char *path = g_strconcat("corpus/email-report-processor/", name, NULL);
  g_autoptr(Report) r3 = parse_fixture(path, &f);
  assert_int_equal(r3->deviations->len, 0);
  report_filename_clear(&f);

  /* rpt03 lacks policy-domain: the file name fills it, no disagreement */
  assert_true(report_filename_parse("google.com!Example.ORG!1555200000!1555286399.json", &f));
  g_autoptr(Report) r4 = parse_fixture("corpus/stalwart-mail-auth/rpt03.json", &f);
  assert_string_equal(policy(r4, 0)->policy_domain, "example.org");
  assert_string_equal(policy(r4, 1)->policy_domain, "example.org");
  assert_false(has_dev(r4, "file name disagrees with report: policy-domain"));
  assert_true(has_dev(r4, "policy-domain missing"));
  report_filename_clear(&f);
}

/* ---- hostile JSON --------------------------------------------------------------- */

static void
test_not_json(void **state)
{
  assert_error("", 0, REPORT_ERROR_JSON, "empty");
  assert_error(" \r\n\t", 4, REPORT_ERROR_JSON, "empty");
  assert_error("{\"policies\":[]", 14, REPORT_ERROR_JSON, "not JSON: ");
  assert_error("{\"policies\":[]} x", 17, REPORT_ERROR_JSON, "trailing");
  assert_error("{\"policies\":[]}{}", 17, REPORT_ERROR_JSON, "trailing");
  assert_error("{\"policies\":[]\0}", 16, REPORT_ERROR_JSON, "NUL");
  assert_error("{\"policies\":[]}\0", 16, REPORT_ERROR_JSON, "NUL");
  assert_error("\x1f\x8b\x08\x00", 4, REPORT_ERROR_JSON, "not JSON: ");
  assert_error("{\"a\":}", 6, REPORT_ERROR_JSON, "not JSON: ");
  assert_error("[{\"policies\":[]}]", 17, REPORT_ERROR_INVALID, "not an object");
  assert_error("42", 2, REPORT_ERROR_INVALID, "not an object");
  assert_error("\"s\"", 3, REPORT_ERROR_INVALID, "not an object");
  assert_error("{}", 2, REPORT_ERROR_INVALID, "not a TLS report: no policies array");
  assert_error("{\"policies\":null}", 17, REPORT_ERROR_INVALID, "no policies array");
  assert_error("{\"policies\":\"x\"}", 16, REPORT_ERROR_INVALID, "no policies array");
  assert_error("{\"organization-name\":\"o\"}", 25, REPORT_ERROR_INVALID, "no policies array");
}

static void
test_whitespace_and_bom(void **state)
{
  const char *json = "\xef\xbb\xbf \n" HEAD "\"policies\":[]}\r\n\r\n";
  g_autoptr(Report) r = parse_ok(json);
  assert_true(has_dev(r, "byte order mark before JSON"));
}

static void
test_deep_nesting(void **state)
{
  const gsize depth = 100000;
  g_autoptr(GString) s = g_string_sized_new(depth * 6 + 16);
  for (gsize i = 0; i < depth; i++)
    g_string_append(s, "[");
  for (gsize i = 0; i < depth; i++)
    g_string_append(s, "]");
  assert_error(s->str, s->len, REPORT_ERROR_JSON, "nesting");

  g_string_truncate(s, 0);
  for (gsize i = 0; i < depth; i++)
    g_string_append(s, "{\"a\":");
  g_string_append(s, "1");
  for (gsize i = 0; i < depth; i++)
    g_string_append(s, "}");
  assert_error(s->str, s->len, REPORT_ERROR_JSON, "nesting");

  /* a custom, smaller limit is honoured */
  TrLimits saved = test_limits;
  test_limits.max_json_depth = 3;
  const char *json = HEAD "\"policies\":[{\"policy\":{\"policy-type\":\"sts\"}}]}";
  assert_error(json, strlen(json), REPORT_ERROR_JSON, "nesting");
  test_limits = saved;
}

static void
test_huge_string(void **state)
{
  const gsize big = 20u * 1024 * 1024;
  g_autoptr(GString) s = g_string_sized_new(big + 512);
  g_string_append(s, "{\"organization-name\":\"");
  gsize start = s->len;
  g_string_set_size(s, start + big);
  memset(s->str + start, 'A', big);
  s->str[start + 5] = '\\';     /* an escape straddling nothing in particular */
  s->str[start + 6] = 'n';
  g_string_append(s, "\",\"report-id\":\"i\",\"date-range\":{\"start-datetime\":"
                     "\"2024-01-01T00:00:00Z\",\"end-datetime\":\"2024-01-01T23:59:59Z\"},"
                     "\"policies\":[]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = parse_len(s->str, s->len, NULL, &error);
  assert_non_null(r);
  assert_int_equal(strlen(r->organization_name), big - 1);
  assert_int_equal(r->organization_name[5], '\n');
  assert_int_equal(r->organization_name[big - 2], 'A');
  assert_string_equal(r->report_id, "i");
}

/* Whitespace larger than the tokenizer's chunk on both sides. */
static void
test_chunk_boundaries(void **state)
{
  g_autoptr(GString) s = g_string_new(NULL);
  g_string_set_size(s, 3u << 20);
  memset(s->str, ' ', s->len);
  g_string_append(s, HEAD "\"policies\":[]}");
  gsize mid = s->len;
  g_string_set_size(s, mid + (3u << 20));
  memset(s->str + mid, '\n', 3u << 20);
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = parse_len(s->str, s->len, NULL, &error);
  assert_non_null(r);
  assert_string_equal(r->report_id, "i");

  g_string_append_c(s, 'x');
  assert_error(s->str, s->len, REPORT_ERROR_JSON, "trailing");
}

/* Every proper prefix of a corpus report is rejected, never crashes. */
static void
test_truncations(void **state)
{
  g_autoptr(GBytes) b = tu_fixture("corpus/parsedmarc/mail.ru.json");
  gsize len;
  const char *data = g_bytes_get_data(b, &len);
  gsize end = len;
  while (end > 0 && g_ascii_isspace(data[end - 1]))
    end--;
  for (gsize n = 0; n < end; n++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(Report) r = parse_len(data, n, NULL, &error);
    if (r != NULL)
      fail_msg("prefix of %" G_GSIZE_FORMAT " bytes accepted", n);
    assert_true(error->code == REPORT_ERROR_JSON);
  }
}

/* ---- datetimes ----------------------------------------------------------------- */

static void
test_parse_datetime(void **state)
{
  static const struct {
    const char *s;
    gint64 epoch;
    gboolean zoneless;
  } good[] = {
    { "2024-01-01T00:00:00Z", 1704067200, FALSE },
    { "2024-01-01t00:00:00z", 1704067200, FALSE },
    { "2024-01-01 00:00:00Z", 1704067200, FALSE },
    { "2024-01-01T00:00:00", 1704067200, TRUE },
    { "2024-01-01T00:00", 1704067200, TRUE },
    { "2024-01-01", 1704067200, TRUE },
    { "  2024-01-01T00:00:00Z\n", 1704067200, FALSE },
    { "2024-01-01T00:00:00.999999Z", 1704067200, FALSE },
    { "2024-01-01T00:00:00,5Z", 1704067200, FALSE },
    { "2024-01-01T02:00:00+02:00", 1704067200, FALSE },
    { "2024-01-01T02:00:00+0200", 1704067200, FALSE },
    { "2024-01-01T02:00:00+02", 1704067200, FALSE },
    { "2023-12-31T19:00:00-05:00", 1704067200, FALSE },
    { "2023-12-31T23:59:60Z", 1704067199, FALSE },
    { "2024-02-29T12:00:00Z", 1709208000, FALSE },
    { "2000-02-29T00:00:00Z", 951782400, FALSE },
    { "1970-01-01T00:00:00Z", 0, FALSE },
    { "1970-01-01T01:00:00+01:00", 0, FALSE },
    { "9999-12-31T23:59:59Z", G_GINT64_CONSTANT(253402300799), FALSE },
    { "2016-04-01T23:59:59Z", 1459555199, FALSE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
    gint64 e = -1;
    gboolean zl = !good[i].zoneless;
    if (!report_datetime_parse(good[i].s, &e, &zl))
      fail_msg("rejected %s", good[i].s);
    if (e != good[i].epoch || zl != good[i].zoneless)
      fail_msg("%s: %" G_GINT64_FORMAT " zoneless=%d", good[i].s, e, zl);
  }
  static const char *const bad[] = {
    "", " ", "yesterday", "2024", "2024-01", "2024-1-01", "2024-02-30T00:00:00Z",
    "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z", "2024-01-00T00:00:00Z", "2024-01-01T24:00:00Z",
    "2024-01-01T23:60:00Z", "2024-01-01T23:59:61Z", "2024-01-01T00:00:00+24:00",
    "2024-01-01T00:00:00+02:60", "2024-01-01T00:00:00ZZ", "2024-01-01T00:00:00 Z",
    "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00+", "2024-01-01T00:00:00+2",
    "2024-01-01X00:00:00Z", "2024-01-01T0:00:00Z", "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01", "10000-01-01T00:00:00Z",
    "+2024-01-01T00:00:00Z", "2024-01-01T00:00:00Zjunk", "1704067200",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    gint64 e = 42;
    if (report_datetime_parse(bad[i], &e, NULL))
      fail_msg("accepted %s", bad[i]);
    assert_int_equal(e, 42);
  }
  assert_false(report_datetime_parse(NULL, NULL, NULL));
  assert_true(report_datetime_parse("2024-01-01T00:00:00Z", NULL, NULL));
}

static void
test_format_datetime(void **state)
{
  char buf[21];
  static const struct {
    gint64 epoch;
    const char *s;
  } cases[] = {
    { 0, "1970-01-01T00:00:00Z" },
    { 1704067200, "2024-01-01T00:00:00Z" },
    { 1709208000, "2024-02-29T12:00:00Z" },
    { 1459555199, "2016-04-01T23:59:59Z" },
    { 951868799, "2000-02-29T23:59:59Z" },
    { G_GINT64_CONSTANT(253402300799), "9999-12-31T23:59:59Z" },
    { -5, "1970-01-01T00:00:00Z" },                                 /* clamped */
    { G_MAXINT64, "9999-12-31T23:59:59Z" },                         /* clamped */
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    memset(buf, 'x', sizeof buf);
    report_datetime_format(cases[i].epoch, buf);
    assert_string_equal(buf, cases[i].s);
  }
  /* every day boundary of four centuries of leap rules parses back */
  for (gint64 e = 0; e < G_GINT64_CONSTANT(253402300799); e += 86399 * 97 + 13) {
    gint64 back = -1;
    report_datetime_format(e, buf);
    assert_true(report_datetime_parse(buf, &back, NULL));
    assert_int_equal(back, e);
  }
}

/* ---- file names ------------------------------------------------------------------ */

static void
test_filename_good(void **state)
{
  static const struct {
    const char *name;
    const char *sender, *domain;
    gint64 begin, end;
    const char *id;
  } cases[] = {
    { "google.com!example.com!1667520000!1667606399!001.json", "google.com", "example.com",
      1667520000, 1667606399, "001" },
    { "/var/tmp/in/microsoft.com!test.xmox.nl!1673308800!1673395199!133198585438131172.json.gz",
      "microsoft.com", "test.xmox.nl", 1673308800, 1673395199, "133198585438131172" },
    { "mail.sender.example!example.com!1013662812!1013749130.json.gz", "mail.sender.example",
      "example.com", 1013662812, 1013749130, NULL },
    { "a!B.example!2024-01-01T00:00:00Z!2024-01-01T23:59:59Z.json", "a", "B.example",
      1704067200, 1704153599, NULL },
    { "a!b!20240101!20240101.JSON.GZ", "a", "b", 1704067200, 1704153599, NULL },
    { "a!b!20240101T000000Z!20240101T235959Z!x.zip", "a", "b", 1704067200, 1704153599, "x" },
    { "a!b!2024-01-01!2024-01-02.json", "a", "b", 1704067200, 1704239999, NULL },
    { "a!b!0!1.gz", "a", "b", 0, 1, NULL },
    { "C:\\attachments\\a!b!1!2", "a", "b", 1, 2, NULL },
    { "a!b!1!2.json.zip", "a", "b", 1, 2, NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    ReportFilename f;
    if (!report_filename_parse(cases[i].name, &f))
      fail_msg("rejected %s", cases[i].name);
    assert_string_equal(f.sender, cases[i].sender);
    assert_string_equal(f.policy_domain, cases[i].domain);
    assert_int_equal(f.begin, cases[i].begin);
    assert_int_equal(f.end, cases[i].end);
    assert_true(g_strcmp0(f.unique_id, cases[i].id) == 0);
    report_filename_clear(&f);
    assert_null(f.sender);
    assert_null(f.unique_id);
  }
}

static void
test_filename_bad(void **state)
{
  static const char *const bad[] = {
    "", "report.json", "a!b!1.json", "a!b!1!2!3!4.json", "a!!1!2.json", "!b!1!2.json",
    "a!b!!2.json", "a!b!1!.json", "a!b!1!2!.json", "a!b!x!2.json", "a!b!1!2x.json",
    "a!b!-1!2.json", "a!b!1!1234567890123.json", "a!b!1!999999999999.json",
    "a!b!20241301!20241301.json", "a!b!2024-01-01T25:00:00Z!2.json", "a\x01!b!1!2.json",
    "a!b\x7f!1!2.json", "a!b\n!1!2.json", "a!\xff\xfe!1!2.json", "a!b!1!2/",
    "dir/a!b!1!2/", "a!b!1!2.json.gz!x", "a!b!1 !2.json", "a!b!20240101T0000!2.json",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    ReportFilename f;
    memset(&f, 0x5a, sizeof f);
    if (report_filename_parse(bad[i], &f))
      fail_msg("accepted %s", bad[i]);
    assert_null(f.sender);
    assert_null(f.policy_domain);
    assert_null(f.unique_id);
    assert_int_equal(f.begin, 0);
    assert_int_equal(f.end, 0);
  }
  ReportFilename f;
  assert_false(report_filename_parse(NULL, &f));
  report_filename_clear(NULL);
}

static void
test_filename_hostile(void **state)
{
  ReportFilename f;
  /* 10 kB of '!' and control bytes */
  g_autofree char *bangs = g_strnfill(10240, '!');
  assert_false(report_filename_parse(bangs, &f));
  g_autofree char *ctl = g_malloc(10241);
  for (gsize i = 0; i < 10240; i++)
    ctl[i] = (char) (1 + i % 255);
  ctl[10240] = '\0';
  assert_false(report_filename_parse(ctl, &f));
  /* a valid shape with 10 kB fields is accepted and copied whole */
  g_autofree char *longa = g_strnfill(5000, 'a');
  g_autofree char *name = g_strdup_printf("%s!%s!1!2!%s.json", longa, longa, longa);
  assert_true(report_filename_parse(name, &f));
  assert_int_equal(strlen(f.sender), 5000);
  assert_int_equal(strlen(f.unique_id), 5000);
  report_filename_clear(&f);
  g_autofree char *digits = g_strnfill(10000, '9');
  g_autofree char *name2 = g_strdup_printf("a!b!%s!1.json", digits);
  assert_false(report_filename_parse(name2, &f));
}

/* ---- key and primary domain ---------------------------------------------------- */

static void
test_key(void **state)
{
  g_autoptr(Report) a = parse_fixture("corpus/dmarc-report-viewer/rfc-example.json", NULL);
  g_autofree char *hex = report_key_hex(a->key);
  /* printf 'Company-X\0<id>\0001459468800\0001459555199' | sha256sum, first 32 digits */
  assert_string_equal(hex, "e9bbe072b27059637191908cd38b7f8e");

  /* the same report from other senders' copies: same key (dedup across mailboxes) */
  g_autoptr(Report) b = parse_fixture("corpus/stalwart-mail-auth/rpt01.json", NULL);
  assert_memory_equal(a->key, b->key, 16);

  /* same id, other organization: another key */
  a->organization_name[8] = 'Y';
  report_compute_key(a);
  g_autofree char *hex2 = report_key_hex(a->key);
  assert_string_equal(hex2, "fceed6325446eb196fcfb6a8fccb4216");
  assert_memory_not_equal(a->key, b->key, 16);

  /* the date-range is part of it */
  guint8 before[16];
  memcpy(before, b->key, 16);
  b->end++;
  report_compute_key(b);
  assert_memory_not_equal(before, b->key, 16);
  b->end--;
  report_compute_key(b);
  assert_memory_equal(before, b->key, 16);

  /* separators matter: ("ab","c") differs from ("a","bc") */
  g_autoptr(Report) c = parse_ok(HEAD "\"policies\":[]}");
  g_free(c->organization_name);
  g_free(c->report_id);
  c->organization_name = g_strdup("ab");
  c->report_id = g_strdup("c");
  report_compute_key(c);
  memcpy(before, c->key, 16);
  c->organization_name[1] = '\0';
  g_free(c->report_id);
  c->report_id = g_strdup("bc");
  report_compute_key(c);
  assert_memory_not_equal(before, c->key, 16);

  static const guint8 k[16] = { 0x00, 0x01, 0xab, 0xff };
  g_autofree char *khex = report_key_hex(k);
  assert_string_equal(khex, "0001abff000000000000000000000000");
}

static void
test_primary_domain(void **state)
{
  g_autoptr(Report) r = parse_fixture("corpus/stalwart-mail-auth/rpt03.json", NULL);
  assert_string_equal(primary(r), "unknown");
  r->ingest.filename = g_strdup("google.com!Example.ORG!1555200000!1555286399.json");
  assert_string_equal(primary(r), "example.org");
  r->ingest.report_domain = g_strdup("header.example");
  assert_string_equal(primary(r), "header.example");
  policy(r, 1)->policy_domain = g_strdup("second.example");
  assert_string_equal(primary(r), "second.example");

  g_autoptr(Report) m = parse_fixture("corpus/mox/tlsrptdb_report_test.reportMixedJSON.json", NULL);
  assert_string_equal(primary(m), "mail.mox.example");
}

/* ---- the strict reader ------------------------------------------------------------ */

/* The "not strict JSON: ..." deviations of @r. */
static guint
count_lenient_devs(const Report *r)
{
  guint n = 0;
  for (guint i = 0; i < r->deviations->len; i++)
    if (g_str_has_prefix(dev_text(r, i), "not strict JSON: "))
      n++;
  return n;
}

/* Whether json-c in JSON_TOKENER_STRICT mode takes @json as report_parse() would (the
 * whole text, white space after it). */
static gboolean
jsonc_strict_takes(const char *json, gsize len, guint depth)
{
  if (len > G_MAXINT)
    return FALSE;
  struct json_tokener *tok = json_tokener_new_ex((int) depth);
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
  TrJson *o = json_tokener_parse_ex(tok, json, (int) len);
  enum json_tokener_error e = json_tokener_get_error(tok);
  gsize end = json_tokener_get_parse_end(tok);
  if (e == json_tokener_continue) {
    o = json_tokener_parse_ex(tok, "", 1);
    e = json_tokener_get_error(tok);
    end = len;
  }
  gboolean ok = e == json_tokener_success;
  for (gsize i = end; ok && i < len; i++)
    ok = json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r';
  json_object_put(o);
  json_tokener_free(tok);
  return ok;
}

/* @json parsed by the strict reader alone and by json-c as a tree: where the strict
 * reader does not decline, both give the same report (normalized JSON, deviations and
 * their order included) or the same error; what report_parse() does (AUTO) always
 * agrees with the tree. Returns TRUE when the strict reader took it. */
static gboolean
assert_strict_agrees(const char *json, gsize len, guint depth)
{
  g_autoptr(GBytes) b = g_bytes_new(json, len);
  TrLimits lim = test_limits;
  lim.max_json_depth = depth;
  g_autoptr(GError) terr = NULL, serr = NULL, aerr = NULL;
  g_autoptr(Report) t = report_parse_with(b, NULL, &lim, REPORT_PARSE_TREE, &terr);
  g_autoptr(Report) s = report_parse_with(b, NULL, &lim, REPORT_PARSE_STRICT, &serr);
  g_autoptr(Report) a = report_parse_with(b, NULL, &lim, REPORT_PARSE_AUTO, &aerr);
  g_autoptr(GString) tj = g_string_new(NULL);
  if (t != NULL)
    report_to_json(t, FALSE, tj);
  const Report *const others[] = { s, a };
  GError *const errs[] = { serr, aerr };
  gboolean taken = s != NULL || !g_error_matches(serr, REPORT_ERROR, REPORT_ERROR_DECLINED);
  /* Where json-c's strict mode refuses what its default mode takes, the report says so
   * (issue 12); what the strict reader takes is strict JSON and says nothing. */
  if (t != NULL && (len < 3 || memcmp(json, "\xef\xbb\xbf", 3) != 0) &&
      !jsonc_strict_takes(json, len, depth) && count_lenient_devs(t) == 0)
    fail_msg("json-c's strict mode refuses it, yet no \"not strict JSON\" deviation: %.*s",
             (int) MIN(len, 200), json);
  if (s != NULL && count_lenient_devs(s) != 0)
    fail_msg("the strict reader took it, yet \"not strict JSON\": %.*s", (int) MIN(len, 200),
             json);
  for (guint k = 0; k < 2; k++) {
    if (k == 0 && !taken)
      continue;
    const char *what = k == 0 ? "strict" : "auto";
    if (t == NULL) {
      if (others[k] != NULL)
        fail_msg("%s accepts what json-c rejects (%s): %.*s", what, terr->message,
                 (int) MIN(len, 200), json);
      if (errs[k]->code != terr->code || strcmp(errs[k]->message, terr->message) != 0)
        fail_msg("%s: \"%s\", json-c: \"%s\": %.*s", what, errs[k]->message, terr->message,
                 (int) MIN(len, 200), json);
      continue;
    }
    if (others[k] == NULL)
      fail_msg("%s rejects (%s) what json-c accepts: %.*s", what, errs[k]->message,
               (int) MIN(len, 200), json);
    assert_reports_equal(t, others[k]);
    g_autoptr(GString) oj = g_string_new(NULL);
    report_to_json(others[k], FALSE, oj);
    if (strcmp(tj->str, oj->str) != 0)
      fail_msg("%s differs from json-c:\n%s\n%s", what, oj->str, tj->str);
  }
  return taken;
}

/* A valid report document with @members added at its top level. */
#define RANGE_DOC(members) \
  "{\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}," members "}"

/* Every corpus and synthetic report as it is, and thousands of variants of two of them
 * (each byte replaced by bytes that matter to a JSON reader, every prefix): the strict
 * reader takes the real reports and agrees with json-c wherever it takes anything. */
static void
test_strict_reader_agrees(void **state)
{
  guint taken = 0, total = 0;
  for (gsize i = 0; i < G_N_ELEMENTS(corpus); i++) {
    g_autoptr(GBytes) b = tu_fixture(corpus[i].path);
    gsize len = 0;
    const char *data = g_bytes_get_data(b, &len);
    taken += assert_strict_agrees(data, len, TR_DEFAULT_MAX_JSON_DEPTH);
    total++;
  }
  print_message("strict reader: %u of %u fixtures taken\n", taken, total);
  assert_true(taken * 10 >= total * 8);

  static const char *const sources[] = { "corpus/parsedmarc/smtp_tls.json",
                                         "synthetic/report-quirks.json" };
  static const char swaps[] = { '"', '\\', '0', '9', '-', '.', 'e', ',', ':', '}', ']', '{',
                                '[', ' ', '\n', 'x', 'u', '\x01', '\x7f', '\xe9', '\xff' };
  guint variants = 0, variants_taken = 0;
  /* Under valgrind (tests/valgrind.sh), every fifth position: the same paths, faster. */
  gsize stride = g_getenv("TLSRPT_VALGRIND") != NULL ? 5 : 1;
  for (gsize k = 0; k < G_N_ELEMENTS(sources); k++) {
    g_autoptr(GBytes) b = tu_fixture(sources[k]);
    gsize len = 0;
    const char *data = g_bytes_get_data(b, &len);
    g_autofree char *copy = g_memdup2(data, len);
    for (gsize pos = 0; pos < len; pos += stride) {
      for (gsize w = 0; w < G_N_ELEMENTS(swaps); w++) {
        if (swaps[w] == data[pos])
          continue;
        copy[pos] = swaps[w];
        variants_taken += assert_strict_agrees(copy, len, TR_DEFAULT_MAX_JSON_DEPTH);
        variants++;
      }
      copy[pos] = data[pos];
      variants_taken += assert_strict_agrees(data, pos, TR_DEFAULT_MAX_JSON_DEPTH);
      variants++;
    }
  }
  print_message("strict reader: %u of %u variants taken\n", variants_taken, variants);
  assert_true(variants_taken > variants / 10);

  /* Values at the edges of what it takes. */
  static const char *const docs[] = {
    "{\"policies\":[],\"date-range\":{\"start-datetime\":0,\"end-datetime\":86399}}",
    "{\"policies\":{},\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\","
    "\"end-datetime\":\"2024-01-01T23:59:59Z\"},\"organization-name\":\"\\u00e9\\u20ac\\/\\n\","
    "\"report-id\":123456789012345,\"contact-info\":true}",
    "{\"policies\":[{\"summary\":{\"total-successful-session-count\":1234567890123456,"
    "\"total-failure-session-count\":-0}}],\"date-range\":{\"start-datetime\":1,"
    "\"end-datetime\":2}}",
    "{\"policies\":[{\"summary\":{\"total-successful-session-count\":-5,"
    "\"total-failure-session-count\":1.0}}],\"date-range\":{\"start-datetime\":1,"
    "\"end-datetime\":2},\"report-id\":false}",
    "{\"a\":1,\"a\":2,\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}}",
    "{\"policies\":[null,1,\"x\",[]],\"date-range\":null}",
    "{\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}} ",
    "{\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}} x",
    "{\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2},}",
    "{\"policies\":[],/* c */\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}}",
    "{'policies':[]}",
    "{\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":"
    "\"[\\\"version: STSv1\\\",\\\"mode: enforce\\\"]\",\"mx-host\":\"mx: a.example\"},"
    "\"failure-details\":{\"result-type\":\"x\",\"failed-session-count\":\"7\"}}],"
    "\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00\",\"end-datetime\":5}}",
    "{\"policies\":[{\"failure-details\":[{\"result-type\":\"\\ud83d\\ude00\"},"
    "{\"result-type\":\"\\u0000\"},{\"result-type\":\"a\\tb\"}]}],"
    "\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}}",
    "{\"policies\":[{\"failure-details\":[{\"sending-mta-ip\":\"\xff\xfe\"}]}],"
    "\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}}",
    "[{\"policies\":[]}]", "\"x\"", "null", "17", "{}", "{\"policies\":[]}",
    /* one feature a document, each where the reader declines or decodes */
    RANGE_DOC("\"report-id\":-0"),
    RANGE_DOC("\"report-id\":-12"),
    RANGE_DOC("\"report-id\":0"),
    RANGE_DOC("\"report-id\":123456789012345"),
    RANGE_DOC("\"report-id\":1234567890123456789"),
    RANGE_DOC("\"report-id\":12345678901234567890123"),
    RANGE_DOC("\"report-id\":1.5"),
    RANGE_DOC("\"report-id\":1e5"),
    RANGE_DOC("\"report-id\":01"),
    RANGE_DOC("\"report-id\":\"\\ud83d\\ude00\""),
    RANGE_DOC("\"report-id\":\"\\ud800 lone\""),
    RANGE_DOC("\"report-id\":\"\\udc00\""),
    RANGE_DOC("\"report-id\":\"a\\u0000b\""),
    RANGE_DOC("\"report-id\":\"\\u00E9\\u0041\\u07ff\\u0800\\uffff\""),
    RANGE_DOC("\"report-id\":\"a\tb\x01c\""),
    RANGE_DOC("\"report-id\":\"x\",\"report-id\":\"y\""),
    RANGE_DOC("\"organization-name\":\"x\",\"organization-name\":null"),
    RANGE_DOC("\"report-id\":True"),
    RANGE_DOC("\"report-id\":nul"),
    RANGE_DOC("\"report-id\":\"\\x\""),
    RANGE_DOC("\"report-id\":\"\\u12\""),
  };
  for (gsize i = 0; i < G_N_ELEMENTS(docs); i++)
    assert_strict_agrees(docs[i], strlen(docs[i]), TR_DEFAULT_MAX_JSON_DEPTH);

  /* Nesting far deeper than any report, under a depth limit raised to match: json-c's
   * (the strict reader declines it rather than recurse 60,000 levels deep). */
  {
    g_autoptr(GString) d = g_string_new("{\"policies\":[],\"date-range\":{\"start-datetime\":1,"
                                        "\"end-datetime\":2},\"x\":");
    for (guint k = 0; k < 60000; k++)
      g_string_append_c(d, '[');
    for (guint k = 0; k < 60000; k++)
      g_string_append_c(d, ']');
    g_string_append_c(d, '}');
    assert_false(assert_strict_agrees(d->str, d->len, 1000000));
    g_autoptr(GBytes) b = g_bytes_new(d->str, d->len);
    TrLimits lim = test_limits;
    lim.max_json_depth = 1000000;
    g_autoptr(GError) e = NULL;
    g_autoptr(Report) r = report_parse(b, NULL, &lim, &e);
    assert_non_null(r);
  }

  /* Nesting at and around the depth limit, in every container kind. */
  for (guint depth = 1; depth <= 8; depth++) {
    for (guint nest = 1; nest <= depth + 2; nest++) {
      g_autoptr(GString) d = g_string_new("{\"policies\":[],\"date-range\":{\"start-datetime\":1,"
                                          "\"end-datetime\":2},\"x\":");
      for (guint k = 1; k < nest; k++)
        g_string_append(d, k % 2 ? "[" : "{\"k\":");
      g_string_append(d, "1");
      for (guint k = nest - 1; k >= 1; k--)
        g_string_append(d, k % 2 ? "]" : "}");
      g_string_append(d, "}");
      assert_strict_agrees(d->str, d->len, depth);
    }
  }
}

/* ---- incremental parsing of failure-details arrays ------------------------------- */

/* Parse @json (@len bytes) with @depth as a tree and incrementally; both must give the
 * same report (compared as normalized JSON, deviations and their order included) or
 * the same error. Returns the incremental result's error message or NULL. */
static char *
assert_modes_agree(const char *json, gsize len, guint depth)
{
  g_autoptr(GBytes) b = g_bytes_new(json, len);
  TrLimits lim = test_limits;
  lim.max_json_depth = depth;
  static const ReportParseMode modes[] = { REPORT_PARSE_INCREMENTAL, REPORT_PARSE_AUTO };
  g_autoptr(GError) terr = NULL;
  g_autoptr(Report) t = report_parse_with(b, NULL, &lim, REPORT_PARSE_TREE, &terr);
  g_autoptr(GString) tj = g_string_new(NULL);
  if (t != NULL)
    report_to_json(t, FALSE, tj);
  char *msg = NULL;
  for (guint m = 0; m < G_N_ELEMENTS(modes); m++) {
    g_autoptr(GError) ierr = NULL;
    g_autoptr(Report) i = report_parse_with(b, NULL, &lim, modes[m], &ierr);
    if (t == NULL) {
      if (i != NULL)
        fail_msg("depth %u: tree rejects (%s), mode %u accepts", depth, terr->message, m);
      assert_int_equal(ierr->code, terr->code);
      assert_string_equal(ierr->message, terr->message);
      if (msg == NULL)
        msg = g_strdup(ierr->message);
      continue;
    }
    if (i == NULL)
      fail_msg("depth %u: tree accepts, mode %u rejects: %s", depth, m, ierr->message);
    assert_reports_equal(t, i);
    g_autoptr(GString) ij = g_string_new(NULL);
    report_to_json(i, FALSE, ij);
    assert_string_equal(tj->str, ij->str);
  }
  return msg;
}

/* A report whose failure-details arrays hold many elements in every odd shape. */
static GString *
odd_report(guint n)
{
  static const char *const shapes[] = {
    "{\"result-type\":\"certificate-expired\",\"sending-mta-ip\":\"192.0.2.#\","
    "\"receiving-mx-hostname\":\"mx.example\",\"receiving-ip\":\"198.51.100.1\","
    "\"failed-session-count\":#}",
    " \t\r\n{ \"result-type\" : \"a\\\"],[\\\\\" , \"sending-mta-ip\":\"\\u00e9\\ud83d\\ude00 #\","
    "\n\"receiving-mx-hostname\":\"x\\u0000y\",\"failure-reason-code\":\"\\ud800 lone\","
    "\"failed-session-count\":\"#\" }\r\n",
    "{\"result-type\":\"starttls-not-supported\",\"extra\":[[1,{\"failure-details\":[2]}],"
    "{\"a\":\"]\"}],\"sending-mta-ip\":#,\"receiving-mx-hostname\":\"\","
    "\"failed-session-count\":#.5}",
    "{\"result-type\":\"validation-failure\",\"result-type\":\"dup #\",\"receiving-mx-helo\":"
    "null,\"additional-information\":{\"x\":1},\"failed-session-count\":-#}",
    "#", "null", "\"s#\"", "[]", "true", "-Infinity", "{}",
    "{\"failed-session-count\":1e400,\"sending-mta-ip\":\"\\/x\\b\\f\\n\\r\\t#\"}",
  };
  GString *s = g_string_new(HEAD "\"policies\":[");
  for (guint p = 0; p < 3; p++) {
    g_string_append_printf(s, "%s{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":[\"v\"],"
                           "\"policy-domain\":\"d%u.example\"}," SUMMARY ",%s:[",
                           p ? "," : "", p,
                           p == 1 ? "\"failure\\u002ddetails\"" : "\"failure-details\"");
    for (guint i = 0; i < n; i++) {
      if (i > 0)
        g_string_append(s, i % 7 ? "," : " ,\n ");
      for (const char *c = shapes[(i + p) % G_N_ELEMENTS(shapes)]; *c != '\0'; c++) {
        if (*c == '#')
          g_string_append_printf(s, "%u", i);
        else
          g_string_append_c(s, *c);
      }
    }
    g_string_append(s, "  ]");
    if (p == 2)   /* a second "failure-details": json-c keeps the last */
      g_string_append(s, ",\"failure-details\":[{\"result-type\":\"last\"}]");
    g_string_append(s, "}");
  }
  g_string_append(s, "],\"failure-details\":[1,2,3]}\n");
  return s;
}

static void
test_incremental_same_report(void **state)
{
  g_autoptr(GString) s = odd_report(3000);
  g_autoptr(GBytes) b = g_bytes_new(s->str, s->len);
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = report_parse_with(b, NULL, &test_limits, REPORT_PARSE_INCREMENTAL,
                                          &error);
  assert_non_null(r);
  assert_int_equal(r->policies->len, 3);
  assert_int_equal(policy(r, 0)->failures->len, 1500);
  assert_string_equal(failure(policy(r, 0), 0)->sending_mta_ip, "192.0.2.0");
  assert_string_equal(failure(policy(r, 0), 1)->result_type, "a\"],[\\");
  assert_int_equal(policy(r, 2)->failures->len, 1);
  assert_string_equal(failure(policy(r, 2), 0)->result_type, "last");
  assert_true(has_dev(r, "NUL in string"));
  assert_true(has_dev(r, "failure detail is not an object"));
  /* the same as a tree, at every depth limit around the nesting of the details */
  for (guint depth = 3; depth <= 9; depth++)
    g_free(assert_modes_agree(s->str, s->len, depth));
  g_free(assert_modes_agree(s->str, s->len, TR_DEFAULT_MAX_JSON_DEPTH));
  round_trip(r, FALSE);

  /* what the scanner does not follow is parsed as a tree: same result */
  static const char *const odd[] = {
    HEAD "\"policies\":[{\"failure-details\":[{\"result-type\":\"a\"},]}]}",
    HEAD "\"policies\":[{\"failure-details\":[{\"result-type\":\"a\"} /* c */]}]}",
    HEAD "\"policies\":[{\"failure-details\":[{'result-type':'a\"],['}]}]}",
    HEAD "\"policies\":[{\"failure-details\":[TRUE,NaN,{\"result-type\":True}]}]} // x",
    HEAD "\"policies\":[{\"failure-details\":[ ]},{\"failure-details\":[0]}]}",
  };
  for (guint i = 0; i < G_N_ELEMENTS(odd); i++)
    assert_null(assert_modes_agree(odd[i], strlen(odd[i]), TR_DEFAULT_MAX_JSON_DEPTH));

  /* every corpus report */
  for (gsize i = 0; i < G_N_ELEMENTS(corpus); i++) {
    g_autoptr(GBytes) fb = tu_fixture(corpus[i].path);
    gsize len;
    const char *data = g_bytes_get_data(fb, &len);
    for (guint depth = 4; depth <= 7; depth++)
      g_free(assert_modes_agree(data, len, depth));
  }
}

/* Issue 12: what json-c tolerates and RFC 8259 does not is kept, with one deviation a
 * kind; the fixture of each kind has that deviation (in every parse mode) and no other
 * of its family, and the strict reader declines it. */
static void
test_lenient_json_recorded(void **state)
{
  static const struct {
    const char *fixture;
    const char *dev;
  } kinds[] = {
    { "synthetic/lenient-single-quotes.json", "not strict JSON: single-quoted strings" },
    { "synthetic/lenient-comments.json", "not strict JSON: comments" },
    { "synthetic/lenient-trailing-commas.json", "not strict JSON: trailing commas" },
    { "synthetic/lenient-nan-infinity.json", "not strict JSON: NaN or Infinity" },
    { "synthetic/lenient-literal-case.json",
      "not strict JSON: true, false or null not in lower case" },
    { "synthetic/lenient-number-form.json", "not strict JSON: numbers not in JSON form" },
    { "synthetic/lenient-control-in-string.json",
      "not strict JSON: control characters in strings" },
    { "synthetic/lenient-lone-surrogate.json", "not strict JSON: unpaired surrogate escapes" },
  };
  static const ReportParseMode modes[] = { REPORT_PARSE_AUTO, REPORT_PARSE_TREE,
                                           REPORT_PARSE_INCREMENTAL };
  for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++) {
    g_autoptr(GBytes) b = tu_fixture(kinds[i].fixture);
    for (gsize m = 0; m < G_N_ELEMENTS(modes); m++) {
      g_autoptr(GError) error = NULL;
      g_autoptr(Report) r = report_parse_with(b, NULL, &test_limits, modes[m], &error);
      if (r == NULL)
        fail_msg("%s: %s", kinds[i].fixture, error->message);
      if (!has_dev(r, kinds[i].dev))
        fail_msg("%s (mode %d): no \"%s\"", kinds[i].fixture, (int) modes[m], kinds[i].dev);
      assert_int_equal(count_lenient_devs(r), 1);
      assert_string_equal(r->organization_name,
                          i == 6 ? "X\tY" : i == 7 ? "X\xef\xbf\xbd" : "X");
      assert_int_equal(r->policies->len, 1);
    }
    g_autoptr(GError) serr = NULL;
    g_autoptr(Report) s = report_parse_with(b, NULL, &test_limits, REPORT_PARSE_STRICT, &serr);
    assert_null(s);
    assert_true(g_error_matches(serr, REPORT_ERROR, REPORT_ERROR_DECLINED));
  }

  /* The issue's example: single quotes, a comment and trailing commas, each once. */
  g_autoptr(Report) q = parse_ok(
      "{'organization-name':'X','date-range':{'start-datetime':'2024-01-01T00:00:00Z',"
      "'end-datetime':'2024-01-01T23:59:59Z'},'report-id':'q1',/* c */'policies':[{'policy':"
      "{'policy-type':'sts','policy-domain':'a.example'},'summary':{"
      "'total-successful-session-count':1,'total-failure-session-count':0},}],}");
  static const char *const qdevs[] = {
    "not strict JSON: single-quoted strings", "not strict JSON: comments",
    "not strict JSON: trailing commas", "contact-info missing", "policy-string missing", NULL };
  assert_devs(q, qdevs, "issue 12 example");
  g_autoptr(GString) out = g_string_new(NULL);
  report_to_json(q, FALSE, out);
  assert_non_null(strstr(out->str, "{\"slug\":\"json-single-quotes\",\"text\":"
                                   "\"not strict JSON: single-quoted strings\"}"));

  /* Case and sign variants; what looks lenient inside a string is not. */
  static const struct {
    const char *members;
    const char *dev;
  } more[] = {
    { "\"report-id\":-Infinity", "not strict JSON: NaN or Infinity" },
    { "\"report-id\":nan", "not strict JSON: NaN or Infinity" },
    { "\"report-id\":tRUE", "not strict JSON: true, false or null not in lower case" },
    { "\"report-id\":-.5", "not strict JSON: numbers not in JSON form" },
    { "\"report-id\":2.e3", "not strict JSON: numbers not in JSON form" },
    { "\"report-id\":1e+", "not strict JSON: numbers not in JSON form" },
    { "\"report-id\":00", "not strict JSON: numbers not in JSON form" },
    { "\"report-id\":[1,2,]", "not strict JSON: trailing commas" },
    { "\"report-id\":\"a\nb\"", "not strict JSON: control characters in strings" },
    { "'report-id':\"r\"", "not strict JSON: single-quoted strings" },
    { "\"report-id\":1 // c\n", "not strict JSON: comments" },
    { "\"report-id\":\"\\udc00\"", "not strict JSON: unpaired surrogate escapes" },
    { "\"report-id\":\"\\ud83dx\"", "not strict JSON: unpaired surrogate escapes" },
    { "\"report-id\":\"\\ud83d\\u0041\"", "not strict JSON: unpaired surrogate escapes" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(more); i++) {
    g_autofree char *json = g_strdup_printf(
        "{\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2},%s}",
        more[i].members);
    g_autoptr(Report) r = parse_ok(json);
    if (!has_dev(r, more[i].dev))
      fail_msg("%s: no \"%s\"", json, more[i].dev);
    assert_int_equal(count_lenient_devs(r), 1);
  }
  g_autoptr(Report) plain = parse_ok(
      "{\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2},\"x\":1.5,"
      "\"report-id\":\"it's /* not */ a comment, [1,] NaN True 01\",\"a\":\"\\u0000\",\"b\":\"\\ud83d\\ude00\\\\ud800\"}");
  assert_int_equal(count_lenient_devs(plain), 0);

  /* What json-c does not accept either stays rejected: trailing data, hexadecimal
   * numbers, unquoted keys, a leading '+' or '.'. */
  static const char *const rejected[] = {
    "{\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}} x",
    "{\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}}{}",
    "{\"policies\":[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":0x2}}",
    "{policies:[],\"date-range\":{\"start-datetime\":1,\"end-datetime\":2}}",
    "{\"policies\":[],\"date-range\":{\"start-datetime\":+1,\"end-datetime\":2}}",
    "{\"policies\":[],\"date-range\":{\"start-datetime\":.5,\"end-datetime\":2}}",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(rejected); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(Report) r = parse_str(rejected[i], NULL, &error);
    if (r != NULL)
      fail_msg("accepted: %s", rejected[i]);
    assert_true(g_error_matches(error, REPORT_ERROR, REPORT_ERROR_JSON));
  }
}

static void
test_incremental_rejects(void **state)
{
  g_autoptr(GString) s = odd_report(40);
  /* every prefix ending inside or near the arrays: the same error as the tree */
  const char *first = strstr(s->str, "\"failure-details\"");
  assert_non_null(first);
  for (gsize n = (gsize) (first - s->str); n < s->len - 2; n += 3) {
    g_autofree char *msg = assert_modes_agree(s->str, n, TR_DEFAULT_MAX_JSON_DEPTH);
    assert_non_null(msg);
    assert_true(g_str_has_prefix(msg, "not JSON: "));
  }

  static const struct {
    const char *json;
    const char *error;
  } bad[] = {
    { HEAD "\"policies\":[{\"failure-details\":[{\"result-type\":\"a\"},{\"r\":1}",
      "not JSON: unexpected end of data" },
    { HEAD "\"policies\":[{\"failure-details\":[{\"a\":1} x,{}]}]}",
      "not JSON: array value separator ',' expected" },
    { HEAD "\"policies\":[{\"failure-details\":[{\"a\":1} {}]}]}",
      "not JSON: array value separator ',' expected" },
    { HEAD "\"policies\":[{\"failure-details\":[{},,{}]}]}", "not JSON: unexpected character" },
    { HEAD "\"policies\":[{\"failure-details\":[{\"a\":[1}]}]}",
      "not JSON: array value separator ',' expected" },
    { HEAD "\"policies\":[{\"failure-details\":[{\"a\":\"\\x\"}]}]}",
      "not JSON: invalid string sequence" },
    { HEAD "\"policies\":[{\"failure-details\":[{\"a\":1}]}]} {}", "not JSON: trailing data" },
    { HEAD "\"policies\":[{\"failure-details\":[{\"a\":[[[[[[[[1]]]]]]]]}]}]}",
      "not JSON: nesting deeper than 8 levels (max-json-depth)" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *msg = assert_modes_agree(bad[i].json, strlen(bad[i].json), 8);
    if (msg == NULL || !g_str_has_prefix(msg, bad[i].error))
      fail_msg("%s: got \"%s\", want \"%s\"", bad[i].json, msg ? msg : "(accepted)",
               bad[i].error);
  }
}

/* Many threads parse at once, each with its own tokeners. */
static gpointer
parse_thread(gpointer data)
{
  GBytes *b = data;
  for (guint i = 0; i < 20; i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(Report) r = report_parse_with(b, NULL, &test_limits,
                                            i % 2 ? REPORT_PARSE_TREE : REPORT_PARSE_INCREMENTAL,
                                            &error);
    if (r == NULL || r->policies->len != 3)
      return GINT_TO_POINTER(1);
  }
  return NULL;
}

static void
test_parse_threads(void **state)
{
  g_autoptr(GString) s = odd_report(200);
  g_autoptr(GBytes) b = g_bytes_new(s->str, s->len);
  GThread *t[4];
  for (guint i = 0; i < G_N_ELEMENTS(t); i++)
    t[i] = g_thread_new("parse", parse_thread, b);
  for (guint i = 0; i < G_N_ELEMENTS(t); i++)
    assert_null(g_thread_join(t[i]));
}

static void
test_free_null(void **state)
{
  report_free(NULL);
  Report *r = parse_ok(HEAD "\"policies\":[]}");
  r->ingest.raw = g_bytes_new("x", 1);
  r->ingest.source = g_strdup("s");
  r->ingest.submitter = g_strdup("s");
  r->ingest.report_domain = g_strdup("s");
  r->ingest.filename = g_strdup("s");
  r->ingest.message_id = g_strdup("s");
  r->ingest.raw_extension = g_strdup("json");
  report_free(r);   /* leaks show up under ASan / valgrind */
}

static void
count_member(Report *r, const ReportJsonValue *v, gpointer data)
{
  GString *seen = data;
  g_string_append_printf(seen, "[%s:%s]", r->report_id,
                         report_json_is(v, REPORT_JSON_OBJECT) && v->n > 0 ? v->u.members[0].key
                         : v == NULL                                     ? "null"
                                                                         : "other");
}

/* report_parse_member(): the member is read in the same pass, once per report returned,
 * on every reader (strict, json-c tree, json-c incremental); never when absent or on
 * error. */
static void
test_parse_member(void **state)
{
  (void) state;
  static const char head[] =
      "{\"organization-name\":\"o\",\"report-id\":\"r1\",\"date-range\":{\"start-datetime\":"
      "\"2024-01-01T00:00:00Z\",\"end-datetime\":\"2024-01-01T23:59:59Z\"},\"policies\":[";
  TrLimits limits;
  tr_limits_init(&limits);
  struct {
    const char *tail;
    const char *want;
  } cases[] = {
    { "]}", "" },                                             /* absent */
    { "],\"ingest\":{\"source\":\"a\"}}", "[r1:source]" },    /* strict reader */
    { "],\"ingest\":null}", "[r1:null]" },
    { "],\"ingest\":{'source':\"a\"}}", "[r1:source]" },      /* json-c (single quotes) */
    { "],\"ingest\":{\"source\":\"a\"}", "" },                /* not JSON: error */
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *doc = g_strconcat(head, cases[i].tail, NULL);
    g_autoptr(GBytes) json = g_bytes_new(doc, strlen(doc));
    g_autoptr(GString) seen = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(Report) r = report_parse_member(json, &limits, "ingest", count_member, seen,
                                              &error);
    assert_true((r == NULL) == (i == 4));
    assert_string_equal(seen->str, cases[i].want);
  }
  /* Past 64 KiB, parsed incrementally: the member follows the failure details. */
  g_autoptr(GString) big = g_string_new(head);
  g_string_append(big, "{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d.example\"},"
                       "\"summary\":{\"total-successful-session-count\":1,"
                       "\"total-failure-session-count\":2000},\"failure-details\":[");
  for (guint i = 0; i < 2000; i++)
    g_string_append_printf(big, "%s{\"result-type\":\"validation-failure\","
                           "\"sending-mta-ip\":\"198.51.100.%u\",\"failed-session-count\":1}",
                           i > 0 ? "," : "", i % 200);
  g_string_append(big, "]}],\"ingest\":{\"key\":\"00\"}}");
  assert_true(big->len > 64 * 1024);
  g_autoptr(GBytes) json = g_bytes_new(big->str, big->len);
  g_autoptr(GString) seen = g_string_new(NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(Report) r = report_parse_member(json, &limits, "ingest", count_member, seen, &error);
  assert_non_null(r);
  assert_int_equal(((ReportPolicy *) r->policies->pdata[0])->failures->len, 2000);
  assert_string_equal(seen->str, "[r1:key]");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_corpus_figures),
    cmocka_unit_test(test_corpus_table_is_complete),
    cmocka_unit_test(test_round_trip_corpus),
    cmocka_unit_test(test_to_json_exact),
    cmocka_unit_test(test_to_json_empty_arrays_and_bad_utf8_ingest),
    cmocka_unit_test(test_mx_host_shapes),
    cmocka_unit_test(test_policy_string_shapes),
    cmocka_unit_test(test_failure_detail_shapes),
    cmocka_unit_test(test_policies_and_policy_shapes),
    cmocka_unit_test(test_top_level_fields),
    cmocka_unit_test(test_counts),
    cmocka_unit_test(test_strings_nul_and_utf8),
    cmocka_unit_test(test_datetime_quirks_in_report),
    cmocka_unit_test(test_date_range_missing),
    cmocka_unit_test(test_filename_disagreement),
    cmocka_unit_test(test_not_json),
    cmocka_unit_test(test_whitespace_and_bom),
    cmocka_unit_test(test_deep_nesting),
    cmocka_unit_test(test_huge_string),
    cmocka_unit_test(test_chunk_boundaries),
    cmocka_unit_test(test_truncations),
    cmocka_unit_test(test_parse_datetime),
    cmocka_unit_test(test_format_datetime),
    cmocka_unit_test(test_filename_good),
    cmocka_unit_test(test_filename_bad),
    cmocka_unit_test(test_filename_hostile),
    cmocka_unit_test(test_key),
    cmocka_unit_test(test_primary_domain),
    cmocka_unit_test(test_incremental_same_report),
    cmocka_unit_test(test_incremental_rejects),
    cmocka_unit_test(test_strict_reader_agrees),
    cmocka_unit_test(test_lenient_json_recorded),
    cmocka_unit_test(test_parse_threads),
    cmocka_unit_test(test_free_null),
    cmocka_unit_test(test_parse_member),
  };
  return cmocka_run_group_tests(tests, setup_limits, NULL);
}
