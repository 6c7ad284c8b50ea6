/* fuzz_report.c - libFuzzer target over the report JSON parser alone (report_parse,
 * then normalization and the CSV rows of whatever it accepted; the strict reader
 * against json-c wherever it takes the input), and over the RFC 8460
 * §5.1 file-name parser with the same bytes taken as a string. */
#include "fsutil.h"
#include "report.h"
#include "report-parse.h"
#include "sink.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  TrLimits limits;
  tr_limits_init(&limits);
  g_autoptr(GBytes) json = g_bytes_new(data, size);

  g_autoptr(GError) error = NULL;
  g_autoptr(Report) report = report_parse(json, NULL, &limits, &error);
  if (report == NULL && error == NULL)
    abort();                  /* a failure always says why */
  if (report != NULL) {
    g_autoptr(GString) out = g_string_new(NULL);
    report_to_json(report, FALSE, out);
    g_string_truncate(out, 0);
    sink_csv_format_rows(report, out);
    /* The key depends only on the report: computing it again gives the same bytes. */
    guint8 key[16];
    memcpy(key, report->key, sizeof key);
    report_compute_key(report);
    if (memcmp(key, report->key, sizeof key) != 0)
      abort();
  }

  /* The strict reader, wherever it does not decline, agrees with json-c exactly. */
  {
    g_autoptr(GError) serr = NULL, terr = NULL;
    g_autoptr(Report) s = report_parse_with(json, NULL, &limits, REPORT_PARSE_STRICT, &serr);
    if (s != NULL || !g_error_matches(serr, REPORT_ERROR, REPORT_ERROR_DECLINED)) {
      g_autoptr(Report) t = report_parse_with(json, NULL, &limits, REPORT_PARSE_TREE, &terr);
      if ((s == NULL) != (t == NULL))
        abort();
      if (s == NULL && (serr->code != terr->code || strcmp(serr->message, terr->message) != 0))
        abort();
      if (s != NULL) {
        g_autoptr(GString) sj = g_string_new(NULL);
        g_autoptr(GString) tj = g_string_new(NULL);
        report_to_json(s, FALSE, sj);
        report_to_json(t, FALSE, tj);
        if (strcmp(sj->str, tj->str) != 0 || memcmp(s->key, t->key, sizeof s->key) != 0)
          abort();
      }
    }
  }

  /* The same bytes as a file name; also as §5.1 metadata for the parser. */
  g_autofree char *name = g_strndup((const char *) data, size);
  ReportFilename fname = { 0 };
  if (report_filename_parse(name, &fname)) {
    if (fname.sender == NULL || fname.policy_domain == NULL)
      abort();
    g_clear_error(&error);
    g_autoptr(Report) with_name = report_parse(json, &fname, &limits, &error);
    if (with_name == NULL && error == NULL)
      abort();
  }
  report_filename_clear(&fname);

  g_autofree char *safe = fsutil_sanitize_component(name, 64);
  if (safe[0] == '\0' || safe[0] == '.' || strchr(safe, '/') != NULL || strlen(safe) > 64)
    abort();
  return 0;
}
