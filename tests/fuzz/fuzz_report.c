/* fuzz_report.c - libFuzzer target over the report JSON parser alone (report_parse,
 * then normalization and the CSV rows of whatever it accepted; the strict reader
 * against json-c wherever it takes the input), and over the RFC 8460
 * §5.1 file-name parser with the same bytes taken as a string, and through every
 * escaper of escape.h: nothing unsafe comes out of any of them. */
#include "escape.h"
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
    /* A neutralized CSV holds no control byte but TAB and the CR LF ending records. */
    for (gsize i = 0; i < out->len; i++) {
      guchar c = (guchar) out->str[i];
      if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
        abort();
      if (c == '\r' && (i + 1 >= out->len || out->str[i + 1] != '\n'))
        abort();
      if (c == '\n' && (i == 0 || out->str[i - 1] != '\r'))
        abort();
    }
    g_string_truncate(out, 0);
    sink_csv_format_rows_raw(report, out);
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

  /* Every escaper: valid UTF-8 out, without a C0 control, DEL or C1; the HTML one
   * without a metacharacter; the Prometheus one with only its own escapes; the CSV cell
   * changed exactly when tr_csv_cell_check() says so. */
  {
    g_autoptr(GString) term = g_string_new(NULL);
    tr_escape_terminal_append(term, (const char *) data, (gssize) size);
    g_autofree char *term_dup = tr_escape_terminal(name);
    g_autoptr(GString) html = g_string_new(NULL);
    tr_escape_html_append(html, name);
    if (strpbrk(html->str, "<>\"'") != NULL)
      abort();
    g_autoptr(GString) prom = g_string_new(NULL);
    tr_escape_prom_label_append(prom, name);
    for (const char *q = prom->str; *q; q++) {
      if (*q == '"')
        abort();
      if (*q == '\\') {
        if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
          abort();
        q++;
      }
    }
    g_autoptr(GString) cell = g_string_new(NULL);
    if (tr_csv_cell_append(cell, name, FALSE) != (tr_csv_cell_check(name) != 0))
      abort();
    const char *outs[] = { term->str, term_dup, html->str, prom->str };
    for (gsize k = 0; k < G_N_ELEMENTS(outs); k++) {
      if (!g_utf8_validate(outs[k], -1, NULL))
        abort();
      for (const char *q = outs[k]; *q; q = g_utf8_next_char(q)) {
        gunichar c = g_utf8_get_char(q);
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f))
          abort();
      }
    }
  }

  g_autofree char *safe = fsutil_sanitize_component(name, 64);
  if (safe[0] == '\0' || safe[0] == '.' || strchr(safe, '/') != NULL || strlen(safe) > 64)
    abort();
  return 0;
}
