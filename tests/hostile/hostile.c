/* hostile.c - generators of hostile input and the table of their expected outcomes.
 *
 * Each case is a message (or a loose report file) a sender could write; the table says
 * what `tlsrpt-ingest` must do with it. tests/integration/test_fault_hostile.c runs every
 * case through the binary and asserts the outcome, the one-line reason in the log and in
 * the quarantine, and that nothing is written outside the store. The small cases are
 * also committed under fixtures/hostile/ (seeds for the fuzzers; regenerate them with
 * `test_fault_hostile --write-fixtures fixtures/hostile`). */
#include "faultutil.h"

typedef enum {
  HOSTILE_STORED,         /* its report(s) stored; nothing quarantined */
  HOSTILE_QUARANTINED,    /* kept in the quarantine with a reason; nothing stored */
  HOSTILE_NOT_REPORT,     /* ignored as not a report; nothing stored or kept */
} HostileOutcome;

typedef struct {
  const char *name;       /* also its file name under fixtures/hostile/ */
  GBytes *(*make)(void);
  gboolean small;         /* committed under fixtures/hostile/ */
  HostileOutcome outcome;
  guint reports;          /* HOSTILE_STORED: how many reports */
  const char *reason;     /* HOSTILE_QUARANTINED: substring of the reason (any case) */
} HostileCase;

static const char hostile_valid_json[] =
    "{\"organization-name\":\"Sender Inc.\",\"date-range\":{\"start-datetime\":"
    "\"2022-09-15T00:00:00Z\",\"end-datetime\":\"2022-09-15T23:59:59Z\"},"
    "\"contact-info\":\"tlsrpt@sender.example\",\"report-id\":\"hostile-1\","
    "\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":["
    "\"version: STSv1\",\"mode: enforce\"],\"policy-domain\":\"example.com\"},"
    "\"summary\":{\"total-successful-session-count\":3,"
    "\"total-failure-session-count\":0}}]}";

static GBytes *
hostile_message_of_json(const char *json, gsize len)
{
  g_autoptr(GBytes) gz = fu_gzip(json, len);
  return fu_report_message(gz, NULL, NULL);
}

static GBytes *
hostile_message_of_str(const char *json)
{
  return hostile_message_of_json(json, strlen(json));
}

/* ---- gzip ---------------------------------------------------------------- */

static GBytes *
hostile_gzip_truncated(void)
{
  g_autoptr(GBytes) gz = fu_gzip(hostile_valid_json, strlen(hostile_valid_json));
  g_autoptr(GBytes) cut = g_bytes_new_from_bytes(gz, 0, g_bytes_get_size(gz) / 2);
  return fu_report_message(cut, NULL, NULL);
}

static GBytes *
hostile_gzip_truncated_trailer(void)
{
  g_autoptr(GBytes) gz = fu_gzip(hostile_valid_json, strlen(hostile_valid_json));
  g_autoptr(GBytes) cut = g_bytes_new_from_bytes(gz, 0, g_bytes_get_size(gz) - 3);
  return fu_report_message(cut, NULL, NULL);
}

static GBytes *
hostile_gzip_bad_crc(void)
{
  g_autoptr(GBytes) gz = fu_gzip(hostile_valid_json, strlen(hostile_valid_json));
  gsize len = 0;
  guint8 *d = g_memdup2(g_bytes_get_data(gz, &len), g_bytes_get_size(gz));
  d[len - 8] ^= 0x5a;           /* first byte of the CRC-32 */
  g_autoptr(GBytes) bad = g_bytes_new_take(d, len);
  return fu_report_message(bad, NULL, NULL);
}

static GBytes *
hostile_gzip_bad_length(void)
{
  g_autoptr(GBytes) gz = fu_gzip(hostile_valid_json, strlen(hostile_valid_json));
  gsize len = 0;
  guint8 *d = g_memdup2(g_bytes_get_data(gz, &len), g_bytes_get_size(gz));
  d[len - 4] ^= 0x01;           /* ISIZE */
  g_autoptr(GBytes) bad = g_bytes_new_take(d, len);
  return fu_report_message(bad, NULL, NULL);
}

static GBytes *
hostile_gzip_not_json(void)
{
  static const char text[] = "This is not a report.\nJust text, gzip'd.\n";
  return hostile_message_of_json(text, sizeof text - 1);
}

static GBytes *
hostile_gzip_trailing_garbage(void)
{
  g_autoptr(GBytes) gz = fu_gzip(hostile_valid_json, strlen(hostile_valid_json));
  GByteArray *a = g_byte_array_new();
  g_byte_array_append(a, g_bytes_get_data(gz, NULL), (guint) g_bytes_get_size(gz));
  g_byte_array_append(a, (const guint8 *) "GARBAGE!", 8);
  g_autoptr(GBytes) bad = g_byte_array_free_to_bytes(a);
  return fu_report_message(bad, NULL, NULL);
}

/* ---- JSON ---------------------------------------------------------------- */

static GBytes *
hostile_json_deep(void)
{
  const guint depth = 100000;
  GString *s = g_string_new("{\"policies\":");
  for (guint i = 0; i < depth; i++)
    g_string_append_c(s, '[');
  for (guint i = 0; i < depth; i++)
    g_string_append_c(s, ']');
  g_string_append_c(s, '}');
  GBytes *m = hostile_message_of_json(s->str, s->len);
  g_string_free(s, TRUE);
  return m;
}

static GBytes *
hostile_json_deep_objects(void)
{
  const guint depth = 100000;
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < depth; i++)
    g_string_append(s, "{\"a\":");
  g_string_append(s, "1");
  for (guint i = 0; i < depth; i++)
    g_string_append_c(s, '}');
  GBytes *m = hostile_message_of_json(s->str, s->len);
  g_string_free(s, TRUE);
  return m;
}

static GBytes *
hostile_json_string_200mb(void)
{
  const gsize n = 200u * 1024 * 1024;
  char *s = g_malloc(n + 512);
  gsize off = (gsize) g_snprintf(s, 512, "{\"organization-name\":\"");
  memset(s + off, 'a', n);
  off += n;
  off += (gsize) g_snprintf(s + off, 512,
                            "\",\"report-id\":\"big\",\"date-range\":{\"start-datetime\":"
                            "\"2022-09-15T00:00:00Z\",\"end-datetime\":"
                            "\"2022-09-15T23:59:59Z\"},\"policies\":[]}");
  GBytes *m = hostile_message_of_json(s, off);
  g_free(s);
  return m;
}

static GBytes *
hostile_json_numbers_out_of_range(void)
{
  return hostile_message_of_str(
      "{\"organization-name\":\"Numbers Inc.\",\"date-range\":{\"start-datetime\":"
      "\"2022-09-15T00:00:00Z\",\"end-datetime\":\"2022-09-15T23:59:59Z\"},"
      "\"report-id\":\"numbers-1\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
      "\"policy-domain\":\"example.com\"},\"summary\":{"
      "\"total-successful-session-count\":99999999999999999999999999999,"
      "\"total-failure-session-count\":1e400},\"failure-details\":[{\"result-type\":"
      "\"certificate-expired\",\"failed-session-count\":-1e308}]}]}");
}

static GBytes *
hostile_json_negative_counts(void)
{
  return hostile_message_of_str(
      "{\"organization-name\":\"Negative Inc.\",\"date-range\":{\"start-datetime\":"
      "\"2022-09-15T00:00:00Z\",\"end-datetime\":\"2022-09-15T23:59:59Z\"},"
      "\"report-id\":\"negative-1\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
      "\"policy-domain\":\"example.com\"},\"summary\":{"
      "\"total-successful-session-count\":-5,\"total-failure-session-count\":-9223372036854775808},"
      "\"failure-details\":[{\"result-type\":\"starttls-not-supported\","
      "\"failed-session-count\":-3}]}]}");
}

/* Attached under a name without §5.1 metadata, so the date range cannot come from it. */
static GBytes *
hostile_message_plain_name(const char *json)
{
  g_autoptr(GBytes) gz = fu_gzip(json, strlen(json));
  return fu_report_message(gz, NULL, "report.json.gz");
}

static GBytes *
hostile_json_dates_out_of_range(void)
{
  return hostile_message_plain_name(
      "{\"organization-name\":\"Dates Inc.\",\"date-range\":{\"start-datetime\":"
      "\"99999-01-01T00:00:00Z\",\"end-datetime\":\"-0001-12-31T23:59:59Z\"},"
      "\"report-id\":\"dates-1\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
      "\"policy-domain\":\"example.com\"},\"summary\":{"
      "\"total-successful-session-count\":1,\"total-failure-session-count\":0}}]}");
}

static GBytes *
hostile_json_nul_escape(void)
{
  return hostile_message_of_str(
      "{\"organization-name\":\"Evil\\u0000Org\",\"date-range\":{\"start-datetime\":"
      "\"2022-09-15T00:00:00Z\",\"end-datetime\":\"2022-09-15T23:59:59Z\"},"
      "\"report-id\":\"nul\\u0000../../../../tmp/x\",\"policies\":[{\"policy\":{"
      "\"policy-type\":\"sts\",\"policy-domain\":\"example.com\\u0000.evil\"},"
      "\"summary\":{\"total-successful-session-count\":1,"
      "\"total-failure-session-count\":0}}]}");
}

static GBytes *
hostile_json_raw_nul(void)
{
  static const char json[] =
      "{\"organization-name\":\"Raw\0Nul\",\"date-range\":{\"start-datetime\":"
      "\"2022-09-15T00:00:00Z\",\"end-datetime\":\"2022-09-15T23:59:59Z\"},"
      "\"report-id\":\"rawnul-1\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
      "\"policy-domain\":\"example.com\"},\"summary\":{"
      "\"total-successful-session-count\":1,\"total-failure-session-count\":0}}]}";
  return hostile_message_of_json(json, sizeof json - 1);
}

static GBytes *
hostile_json_invalid_utf8(void)
{
  return hostile_message_of_str(
      "{\"organization-name\":\"Bad \xff\xfe UTF-8 \xc0\xaf\",\"date-range\":{"
      "\"start-datetime\":\"2022-09-15T00:00:00Z\",\"end-datetime\":"
      "\"2022-09-15T23:59:59Z\"},\"report-id\":\"utf8-\xed\xa0\x80\",\"policies\":[{"
      "\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"example.com\"},"
      "\"summary\":{\"total-successful-session-count\":1,"
      "\"total-failure-session-count\":0}}]}");
}

static GBytes *
hostile_json_wrong_types(void)
{
  return hostile_message_plain_name(
      "{\"organization-name\":[1,2],\"date-range\":\"yesterday\",\"report-id\":{},"
      "\"policies\":[{\"policy\":\"sts\",\"summary\":[],\"failure-details\":{}},"
      "null,7,\"x\"]}");
}

/* ---- MIME ---------------------------------------------------------------- */

static const char hostile_mime_head[] =
    "From: noreply-tlsrpt@sender.example\r\n"
    "To: tlsrpt@example.com\r\n"
    "Subject: Report Domain: example.com\r\n"
    "TLS-Report-Domain: example.com\r\n"
    "TLS-Report-Submitter: sender.example\r\n"
    "MIME-Version: 1.0\r\n";

static void
hostile_append_report_part(GString *s)
{
  g_autoptr(GBytes) gz = fu_gzip(hostile_valid_json, strlen(hostile_valid_json));
  g_autofree char *b64 = g_base64_encode(g_bytes_get_data(gz, NULL), g_bytes_get_size(gz));
  g_string_append_printf(s,
                         "Content-Type: application/tlsrpt+gzip\r\n"
                         "Content-Disposition: attachment; filename=\"sender.example!"
                         "example.com!1663200000!1663286399!001.json.gz\"\r\n"
                         "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n",
                         b64);
}

static GBytes *
hostile_mime_nested_multipart(void)
{
  const guint depth = 10000;
  GString *s = g_string_new(hostile_mime_head);
  for (guint i = 0; i < depth; i++)
    g_string_append_printf(s,
                           "Content-Type: multipart/mixed; boundary=\"n%u\"\r\n\r\n"
                           "--n%u\r\n",
                           i, i);
  hostile_append_report_part(s);
  for (guint i = depth; i-- > 0;)
    g_string_append_printf(s, "--n%u--\r\n", i);
  return g_string_free_to_bytes(s);
}

static GBytes *
hostile_mime_nested_rfc822(void)
{
  const guint depth = 10000;
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < depth; i++)
    g_string_append_printf(s,
                           "From: fwd%u@sender.example\r\nSubject: Fwd\r\n"
                           "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n",
                           i);
  g_string_append(s, hostile_mime_head);
  hostile_append_report_part(s);
  return g_string_free_to_bytes(s);
}

static GBytes *
hostile_mime_missing_close(void)
{
  GString *s = g_string_new(hostile_mime_head);
  g_string_append(s, "Content-Type: multipart/report; boundary=\"b\"; report-type=tlsrpt\r\n"
                     "\r\n--b\r\nContent-Type: text/plain\r\n\r\nA report.\r\n--b\r\n");
  hostile_append_report_part(s);
  /* no "--b--" */
  return g_string_free_to_bytes(s);
}

static GBytes *
hostile_mime_many_parts(gboolean report_first)
{
  const guint parts = 10000;
  GString *s = g_string_new(hostile_mime_head);
  g_string_append(s, "Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n");
  if (report_first) {
    g_string_append(s, "--p\r\n");
    hostile_append_report_part(s);
  }
  for (guint i = 0; i < parts; i++)
    g_string_append_printf(s, "--p\r\nContent-Type: text/plain\r\n\r\npart %u\r\n", i);
  if (!report_first) {
    g_string_append(s, "--p\r\n");
    hostile_append_report_part(s);
  }
  g_string_append(s, "--p--\r\n");
  return g_string_free_to_bytes(s);
}

static GBytes *
hostile_mime_many_parts_report_last(void)
{
  return hostile_mime_many_parts(FALSE);
}

static GBytes *
hostile_mime_many_parts_report_first(void)
{
  return hostile_mime_many_parts(TRUE);
}

static GBytes *
hostile_base64_noise(void)
{
  /* Valid base64 with characters outside the alphabet strewn in: decoders skip them. */
  g_autoptr(GBytes) gz = fu_gzip(hostile_valid_json, strlen(hostile_valid_json));
  g_autofree char *b64 = g_base64_encode(g_bytes_get_data(gz, NULL), g_bytes_get_size(gz));
  GString *s = g_string_new(hostile_mime_head);
  g_string_append(s, "Content-Type: application/tlsrpt+gzip\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\n");
  for (const char *p = b64; *p; p++) {
    g_string_append_c(s, *p);
    if ((p - b64) % 9 == 8)
      g_string_append(s, "!*~");
  }
  g_string_append(s, "\r\n");
  return g_string_free_to_bytes(s);
}

static GBytes *
hostile_base64_garbage(void)
{
  GString *s = g_string_new(hostile_mime_head);
  g_string_append(s, "Content-Type: application/tlsrpt+gzip\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\n"
                     "!!!! this is ### not base64 @@@ at all ~~~ \x01\x02\x7f\r\n"
                     "====\r\n=A=B=C\r\n");
  return g_string_free_to_bytes(s);
}

static GBytes *
hostile_not_a_message(void)
{
  static const guint8 junk[] = { 0x00, 0xff, 0x13, 0x37, 0x00, 0x00, 0x7f, 0x80, '\n' };
  return g_bytes_new(junk, sizeof junk);
}

static GBytes *
hostile_plain_message(void)
{
  static const char msg[] = "From: someone@example.org\r\nTo: tlsrpt@example.com\r\n"
                            "Subject: hello\r\n\r\nNot a report, just mail.\r\n";
  return g_bytes_new_static(msg, sizeof msg - 1);
}

/* ---- names ---------------------------------------------------------------- */

static GBytes *
hostile_names_message(const char *value, const char *escaped)
{
  /* The same hostile text as the attachment file name, the report-id, the
   * organization-name and the policy-domain. */
  g_autofree char *json = fu_report_json(escaped, escaped, escaped);
  g_autoptr(GBytes) gz = fu_gzip(json, strlen(json));
  g_autofree char *fname = g_strdup_printf("%s.json.gz", value);
  return fu_report_message(gz, NULL, fname);
}

static GBytes *
hostile_names_dotdot(void)
{
  return hostile_names_message("../../../../../../tmp/tlsrpt-evil",
                               "../../../../../../tmp/tlsrpt-evil");
}

static GBytes *
hostile_names_absolute(void)
{
  return hostile_names_message("/tmp/tlsrpt-evil-abs", "/tmp/tlsrpt-evil-abs");
}

static GBytes *
hostile_names_slash(void)
{
  return hostile_names_message("/", "/");
}

static GBytes *
hostile_names_dots(void)
{
  return hostile_names_message("..", "..");
}

static GBytes *
hostile_names_control(void)
{
  return hostile_names_message("a\x01\x1b[31mred\r\nX-Injected: yes\x7f",
                               "a\\u0001\\u001b[31mred\\r\\nX-Injected: yes\\u007f");
}

static GBytes *
hostile_names_long(void)
{
  g_autofree char *v = g_strnfill(10 * 1024, 'a');
  /* Multi-byte characters too, to test cutting at a character boundary. */
  GString *u = g_string_new(NULL);
  for (guint i = 0; i < 3000; i++)
    g_string_append(u, "\xc3\xa9");
  g_string_append(u, v);
  GBytes *m = hostile_names_message(u->str, u->str);
  g_string_free(u, TRUE);
  return m;
}

/* The table. Messages go through `tlsrpt-ingest mda` (exit 0 for every outcome). */
static const HostileCase hostile_cases[] = {
  { "gzip-truncated.eml", hostile_gzip_truncated, TRUE, HOSTILE_QUARANTINED, 0, "gzip" },
  { "gzip-truncated-trailer.eml", hostile_gzip_truncated_trailer, TRUE, HOSTILE_QUARANTINED,
    0, "gzip" },
  { "gzip-bad-crc.eml", hostile_gzip_bad_crc, TRUE, HOSTILE_QUARANTINED, 0, "crc" },
  { "gzip-bad-length.eml", hostile_gzip_bad_length, TRUE, HOSTILE_QUARANTINED, 0, "gzip" },
  { "gzip-not-json.eml", hostile_gzip_not_json, TRUE, HOSTILE_QUARANTINED, 0, "json" },
  { "gzip-trailing-garbage.eml", hostile_gzip_trailing_garbage, TRUE, HOSTILE_QUARANTINED,
    0, "gzip" },
  { "json-nested-100000.eml", hostile_json_deep, TRUE, HOSTILE_QUARANTINED, 0,
    "max-json-depth" },
  { "json-nested-objects-100000.eml", hostile_json_deep_objects, TRUE, HOSTILE_QUARANTINED,
    0, "max-json-depth" },
  { "json-string-200mb.eml", hostile_json_string_200mb, FALSE, HOSTILE_QUARANTINED, 0,
    "max-report-size" },
  /* Counts out of range or negative become 0, recorded as deviations. */
  { "json-numbers-out-of-range.eml", hostile_json_numbers_out_of_range, TRUE,
    HOSTILE_STORED, 1, NULL },
  { "json-negative-counts.eml", hostile_json_negative_counts, TRUE, HOSTILE_STORED, 1, NULL },
  { "json-dates-out-of-range.eml", hostile_json_dates_out_of_range, TRUE,
    HOSTILE_QUARANTINED, 0, "date-range" },
  /* \u0000 ends the string (recorded as a deviation); a raw NUL is not JSON. */
  { "json-nul-escape.eml", hostile_json_nul_escape, TRUE, HOSTILE_STORED, 1, NULL },
  { "json-raw-nul.eml", hostile_json_raw_nul, TRUE, HOSTILE_QUARANTINED, 0, "json" },
  /* Repaired (U+FFFD) and recorded as a deviation: the report is kept. */
  { "json-invalid-utf8.eml", hostile_json_invalid_utf8, TRUE, HOSTILE_STORED, 1, NULL },
  { "json-wrong-types.eml", hostile_json_wrong_types, TRUE, HOSTILE_QUARANTINED, 0,
    "date-range" },
  { "mime-nested-multipart-10000.eml", hostile_mime_nested_multipart, FALSE,
    HOSTILE_QUARANTINED, 0, "max-mime-depth" },
  { "mime-nested-rfc822-10000.eml", hostile_mime_nested_rfc822, FALSE, HOSTILE_QUARANTINED,
    0, "max-mime-depth" },
  { "mime-missing-closing-boundary.eml", hostile_mime_missing_close, TRUE, HOSTILE_STORED,
    1, NULL },
  { "mime-10000-parts-report-last.eml", hostile_mime_many_parts_report_last, FALSE,
    HOSTILE_QUARANTINED, 0, "max-parts" },
  { "mime-10000-parts-report-first.eml", hostile_mime_many_parts_report_first, FALSE,
    HOSTILE_QUARANTINED, 0, "max-parts" },
  { "mime-base64-noise.eml", hostile_base64_noise, TRUE, HOSTILE_STORED, 1, NULL },
  { "mime-base64-garbage.eml", hostile_base64_garbage, TRUE, HOSTILE_QUARANTINED, 0, NULL },
  /* Bytes that are no message at all are kept (the postmaster looks); mail that is
   * simply not a report is ignored. */
  { "not-a-message.bin", hostile_not_a_message, TRUE, HOSTILE_QUARANTINED, 0,
    "not a mail message" },
  { "plain-message.eml", hostile_plain_message, TRUE, HOSTILE_NOT_REPORT, 0, NULL },
  { "names-dotdot.eml", hostile_names_dotdot, TRUE, HOSTILE_STORED, 1, NULL },
  { "names-absolute.eml", hostile_names_absolute, TRUE, HOSTILE_STORED, 1, NULL },
  { "names-slash.eml", hostile_names_slash, TRUE, HOSTILE_STORED, 1, NULL },
  { "names-dots.eml", hostile_names_dots, TRUE, HOSTILE_STORED, 1, NULL },
  { "names-control-bytes.eml", hostile_names_control, TRUE, HOSTILE_STORED, 1, NULL },
  { "names-10k.eml", hostile_names_long, TRUE, HOSTILE_STORED, 1, NULL },
};
