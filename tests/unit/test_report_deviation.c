/* test_report_deviation.c - the table of deviations: stable slugs and texts, the texts
 * of stores written before the slugs, and docs/deviations.md naming every slug. */
#include "testutil.h"
#include "report-deviation.h"

#include <string.h>

/* The texts stored in ingest.deviations before the table existed, verbatim: each must
 * still be one deviation's text (a reworded one would split the counts of old and new
 * stores). */
static const char *const old_texts[] = {
  "byte order mark before JSON",
  "NUL in string",
  "invalid UTF-8 in string",
  "organization-name missing",
  "organization-name is not a string",
  "report-id missing",
  "report-id is not a string",
  "contact-info is null",
  "contact-info missing",
  "contact-info is empty",
  "contact-info is not a string",
  "date-range missing",
  "start-datetime missing",
  "start-datetime unparseable",
  "end-datetime missing",
  "end-datetime unparseable",
  "datetime is a number",
  "datetime without zone treated as UTC",
  "end-datetime before start-datetime",
  "date-range taken from file name",
  "file name disagrees with report: begin",
  "file name disagrees with report: end",
  "file name disagrees with report: policy-domain",
  "policies is a single object",
  "policies is empty",
  "policy entry is not an object",
  "policy missing",
  "policy-type missing",
  "unknown policy-type",
  "policy-type is not a string",
  "policy-string missing",
  "policy-string is a string",
  "policy-string is not an array",
  "policy-string has a non-string entry",
  "policy-string is a JSON-encoded array",
  "policy-string line ends in CR",
  "policy-domain missing",
  "policy-domain is not a string",
  "mx-host is a string",
  "mx-host is not an array",
  "mx-host has a non-string entry",
  "mx-host has 'mx: ' prefix",
  "mx-host entry is empty",
  "summary missing",
  "total-successful-session-count missing",
  "total-successful-session-count is not a number",
  "total-successful-session-count is negative",
  "total-successful-session-count is out of range",
  "total-successful-session-count is a string",
  "total-successful-session-count is not an integer",
  "total-failure-session-count missing",
  "total-failure-session-count is not a number",
  "total-failure-session-count is negative",
  "total-failure-session-count is out of range",
  "total-failure-session-count is a string",
  "total-failure-session-count is not an integer",
  "failure-details is a single object",
  "failure-details is not an array",
  "failure detail is not an object",
  "failure detail fields missing",
  "failure detail field is empty",
  "failure detail counts exceed total",
  "result-type missing",
  "result-type is not a string",
  "sending-mta-ip is not a string",
  "receiving-mx-hostname is not a string",
  "receiving-mx-helo is not a string",
  "receiving-ip is not a string",
  "additional-information is not a string",
  "failure-reason-code is not a string",
  "failed-session-count missing",
  "failed-session-count is not a number",
  "failed-session-count is negative",
  "failed-session-count is out of range",
  "failed-session-count is a string",
  "failed-session-count is not an integer",
};

static void
test_table_is_complete_and_unique(void **state)
{
  (void) state;
  g_autoptr(GHashTable) slugs = g_hash_table_new(g_str_hash, g_str_equal);
  g_autoptr(GHashTable) texts = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < REPORT_DEV_N; i++) {
    const ReportDeviationInfo *d = report_deviation_info((ReportDeviation) i);
    assert_non_null(d);
    assert_non_null(d->slug);
    assert_non_null(d->text);
    assert_true(d->slug[0] != '\0' && d->text[0] != '\0');
    for (const char *p = d->slug; *p != '\0'; p++)
      if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '-')
        fail_msg("slug \"%s\": '%c' is not a-z, 0-9 or '-'", d->slug, *p);
    if (!g_hash_table_add(slugs, (gpointer) d->slug))
      fail_msg("slug \"%s\" twice", d->slug);
    if (!g_hash_table_add(texts, (gpointer) d->text))
      fail_msg("text \"%s\" twice", d->text);
    ReportDeviation back = REPORT_DEV_N;
    assert_true(report_deviation_from_slug(d->slug, &back));
    assert_int_equal(back, i);
    assert_true(report_deviation_from_text(d->text, &back));
    assert_int_equal(back, i);
    assert_string_equal(report_deviation_slug((ReportDeviation) i), d->slug);
    assert_string_equal(report_deviation_text((ReportDeviation) i), d->text);
  }
  assert_null(report_deviation_info(REPORT_DEV_N));
  assert_null(report_deviation_slug(REPORT_DEV_N));
  assert_false(report_deviation_from_slug("no-such-deviation", NULL));
  assert_false(report_deviation_from_text("no such deviation", NULL));
  assert_false(report_deviation_from_text(NULL, NULL));
}

static void
test_old_texts_still_read(void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS(old_texts); i++) {
    ReportDeviation d;
    if (!report_deviation_from_text(old_texts[i], &d))
      fail_msg("stored text \"%s\" is no deviation's any more", old_texts[i]);
    assert_string_equal(report_deviation_text(d), old_texts[i]);
  }
}

static void
test_list_records_once_in_order(void **state)
{
  (void) state;
  g_autoptr(GArray) devs = report_deviations_new();
  report_deviations_add(devs, REPORT_DEV_MX_HOST_PREFIX);
  report_deviations_add(devs, REPORT_DEV_BOM);
  report_deviations_add(devs, REPORT_DEV_MX_HOST_PREFIX);
  assert_int_equal(devs->len, 2);
  assert_int_equal(g_array_index(devs, ReportDeviation, 0), REPORT_DEV_MX_HOST_PREFIX);
  assert_int_equal(g_array_index(devs, ReportDeviation, 1), REPORT_DEV_BOM);
  assert_true(report_deviations_has(devs, REPORT_DEV_BOM));
  assert_false(report_deviations_has(devs, REPORT_DEV_POLICIES_EMPTY));
}

static void
test_docs_name_every_slug(void **state)
{
  (void) state;
  const char *src = g_getenv("TLSRPT_SOURCE_DIR");
  assert_non_null(src);
  g_autofree char *path = g_build_filename(src, "docs", "deviations.md", NULL);
  g_autofree char *doc = tu_read_file(path, NULL);
  if (doc == NULL)
    fail_msg("%s missing", path);
  for (guint i = 0; i < REPORT_DEV_N; i++) {
    const ReportDeviationInfo *d = report_deviation_info((ReportDeviation) i);
    g_autofree char *row = g_strdup_printf("| `%s` | %s |", d->slug, d->text);
    if (strstr(doc, row) == NULL)
      fail_msg("docs/deviations.md has no row for %s (\"%s\")", d->slug, d->text);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table_is_complete_and_unique),
    cmocka_unit_test(test_old_texts_still_read),
    cmocka_unit_test(test_list_records_once_in_order),
    cmocka_unit_test(test_docs_name_every_slug),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
