/* test_mime_walk.c - candidate report parts in real and synthetic messages, limits. */
#include "decode.h"
#include "mime-walk.h"
#include "testutil.h"

#include <string.h>
#include <zlib.h>

/* ---- helpers -------------------------------------------------------------- */

static TrLimits test_limits;

static int
test_setup(void **state)
{
  mime_walk_init();
  mime_walk_init();   /* idempotent */
  tr_limits_init(&test_limits);
  return 0;
}

static MimeMessage *
test_walk_bytes(GBytes *bytes, const TrLimits *limits)
{
  g_autoptr(GError) error = NULL;
  MimeMessage *mm = mime_walk_message(bytes, limits ? limits : &test_limits, &error);
  if (mm == NULL)
    fail_msg("mime_walk_message: %s", error->message);
  assert_null(error);
  assert_non_null(mm->parts);
  assert_non_null(mm->problems);
  return mm;
}

static MimeMessage *
test_walk_str(const char *text)
{
  g_autoptr(GBytes) b = g_bytes_new(text, strlen(text));
  return test_walk_bytes(b, NULL);
}

static void
test_walk_fails(GBytes *bytes, const TrLimits *limits, int code, const char *substring)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MimeMessage) mm = mime_walk_message(bytes, limits, &error);
  assert_null(mm);
  assert_non_null(error);
  if (!g_error_matches(error, MIME_WALK_ERROR, code))
    fail_msg("expected MIME_WALK_ERROR %d, got %s %d: %s", code,
             g_quark_to_string(error->domain), error->code, error->message);
  if (substring != NULL && strstr(error->message, substring) == NULL)
    fail_msg("error '%s' lacks '%s'", error->message, substring);
}

/* Decode @part and check the JSON: parses, organization-name == @org; returns its
 * length. */
static gsize
test_part_json(const MimePart *part, const char *org, DecodeFormat want_format)
{
  g_autoptr(GError) error = NULL;
  DecodeFormat format = (DecodeFormat) -1;
  g_autoptr(GBytes) json = decode_payload(part->content, 64u * 1024 * 1024, &format, &error);
  if (json == NULL)
    fail_msg("decode: %s", error->message);
  assert_int_equal(format, want_format);
  gsize len = 0;
  const char *d = g_bytes_get_data(json, &len);
  assert_true(len > 0);
  assert_int_equal(d[0], '{');
  g_autofree char *s = g_strndup(d, len);
  assert_int_equal(strlen(s), len);
  g_autoptr(TrJson) j = json_tokener_parse(s);
  assert_non_null(j);
  struct json_object *o = NULL;
  assert_true(json_object_object_get_ex(j, "organization-name", &o));
  assert_string_equal(json_object_get_string(o), org);
  return len;
}

static GBytes *
test_gzip(const char *data)
{
  gsize len = strlen(data);
  uLong cap = compressBound((uLong) len) + 32;
  guint8 *out = g_malloc(cap);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                   Z_OK);
  zs.next_in = (Bytef *) data;
  zs.avail_in = (uInt) len;
  zs.next_out = out;
  zs.avail_out = (uInt) cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  gsize n = zs.total_out;
  deflateEnd(&zs);
  return g_bytes_new_take(out, n);
}

static const char test_json[] =
    "{\"organization-name\":\"Walk Inc.\",\"date-range\":{\"start-datetime\":"
    "\"2022-09-15T00:00:00Z\",\"end-datetime\":\"2022-09-15T23:59:59Z\"},"
    "\"report-id\":\"walk-1\",\"policies\":[]}";

static char *
test_gzip_b64(void)
{
  g_autoptr(GBytes) gz = test_gzip(test_json);
  return g_base64_encode(g_bytes_get_data(gz, NULL), g_bytes_get_size(gz));
}

static const char test_head[] =
    "From: Reporter <reporter@sender.example>\r\n"
    "To: tlsrpt@example.com\r\n"
    "Subject: test\r\n"
    "MIME-Version: 1.0\r\n";

/* A message with one non-report text part and one part with the given headers and a
 * base64 gzip report body; @markers adds the TLS-Report-* headers. */
static char *
test_message_with_part(gboolean markers, const char *part_headers)
{
  g_autofree char *b64 = test_gzip_b64();
  return g_strdup_printf("%s%s"
                         "Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n"
                         "--x\r\nContent-Type: text/plain\r\n\r\nHello.\r\n"
                         "--x\r\n%s\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n"
                         "--x--\r\n",
                         test_head,
                         markers ? "TLS-Report-Domain: example.com\r\n"
                                   "TLS-Report-Submitter: sender.example\r\n"
                                 : "",
                         part_headers, b64);
}

/* ---- the corpus ----------------------------------------------------------- */

typedef struct {
  const char *path;
  const char *content_type;
  const char *filename;
  const char *org;
  gsize json_len;         /* length of the decoded JSON (checked independently) */
  DecodeFormat format;
  const char *report_domain;
  const char *submitter;
  const char *from;
  const char *message_id; /* NULL = absent */
  gint64 date;            /* 0 = absent */
} CorpusCase;

static const CorpusCase corpus_cases[] = {
  { "corpus/mox/example.eml", "application/tlsrpt+gzip",
    "google.com!test.xmox.nl!1663200000!1663286399!001.json.gz", "Google Inc.", 507,
    DECODE_FORMAT_GZIP, "test.xmox.nl", "google.com", "noreply-smtp-tls-reporting@google.com",
    "000000000000f47cc505e8c8905c@google.com", 1663323006 },
  { "corpus/mox/microsoft.eml", "application/tlsrpt+gzip",
    "microsoft.com!test.xmox.nl!1673308800!1673395199!133198585438131172.json.gz",
    "Microsoft Corporation", 478, DECODE_FORMAT_GZIP, "test.xmox.nl", "microsoft.com",
    "tlsrpt-noreply@microsoft.com", "133198585438131172+test.xmox.nl@test.xmox.nl",
    1675400962 },
  { "corpus/mox/report_test.tlsrptMessage.eml", "application/tlsrpt+json",
    "mail.sender.example!example.com!1013662812!1013749130.json.gz", "Company-X", 1707,
    DECODE_FORMAT_JSON, "example.net", "mail.sender.example.com",
    "tlsrpt@mail.sender.example.com", NULL, 1494377670 },
  { "corpus/mox/report_test.tlsrptMessage2.eml", "application/tlsrpt+json",
    "mail.sender.example!example.com!1013662812!1013749130.json.gz", "Company-X", 1707,
    DECODE_FORMAT_JSON, "example.net", "mail.sender.example.com",
    "tlsrpt@mail.sender.example.com", NULL, 0 },
  { "corpus/mox/examples_test.ExampleParseMessage.eml", "application/tlsrpt+gzip",
    "mail.sender.example!example.com!1013662812!1013749130.json.gz", "Company-X", 1548,
    DECODE_FORMAT_GZIP, "example.net", "mail.sender.example.com",
    "tlsrpt@mail.sender.example.com", NULL, 0 },
  { "corpus/parsedmarc/google.com_smtp_tls_report.eml", "application/tlsrpt+gzip",
    "google.com!cardinalhealth.ca!1725321600!1725407999!001.json.gz", "Google Inc.", 402,
    DECODE_FORMAT_GZIP, "cardinalhealth.ca", "google.com",
    "noreply-smtp-tls-reporting@google.com", "66d83c20.050a0220.a0566.1e8dtls@google.com",
    1725447200 },
  { "corpus/stalwart-mail-auth/rpt01.eml", "application/tlsrpt+gzip",
    "mail.sender.example!example.com!1013662812!1013749130.json.gz", "Company-X", 2129,
    DECODE_FORMAT_GZIP, "example.net", "mail.sender.example.com",
    "tlsrpt@mail.sender.example.com", NULL, 1494377670 },
  { "corpus/stalwart-mail-auth/rpt02.eml", "application/tlsrpt",
    "mail.sender.example!example.com!1013662812!1013749130.json", "Google Inc.", 1166,
    DECODE_FORMAT_JSON, "example.net", "mail.sender.example.com",
    "tlsrpt@mail.sender.example.com", NULL, 1494377670 },
  { "corpus/email-report-processor/report.elm", "application/tlsrpt+gzip",
    "google.com!blogreen.org!1675296000!1675382399!001.json.gz", "Google Inc.", 499,
    DECODE_FORMAT_GZIP, "blogreen.org", "google.com", "noreply-smtp-tls-reporting@google.com",
    "00000000000066453b05f3c8de51@google.com", 1675418933 },
  { "corpus/tlsrpt-be/test.eml", "application/tlsrpt+gzip",
    "mail.sender.example!example.com!1013662812!1013749130.json.gz", "Company-X", 1720,
    DECODE_FORMAT_GZIP, "example.net", "mail.sender.example.com",
    "tlsrpt@mail.sender.example.com", NULL, 1494377670 },
};

static void
test_corpus_message(void **state)
{
  const CorpusCase *c = *state;
  g_autoptr(GBytes) bytes = tu_fixture(c->path);
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  assert_int_equal(mm->parts->len, 1);
  assert_int_equal(mm->problems->len, 0);
  assert_true(mm->tlsrpt_markers);
  MimePart *p = mm->parts->pdata[0];
  assert_string_equal(p->content_type, c->content_type);
  assert_non_null(p->filename);
  assert_string_equal(p->filename, c->filename);
  assert_int_equal(p->evidence, MIME_EVIDENCE_STRONG);
  assert_string_equal(p->why, "media type");
  assert_int_equal(test_part_json(p, c->org, c->format), c->json_len);

  assert_non_null(mm->report_domain);
  assert_string_equal(mm->report_domain, c->report_domain);
  assert_non_null(mm->submitter);
  assert_string_equal(mm->submitter, c->submitter);
  assert_non_null(mm->from);
  assert_string_equal(mm->from, c->from);
  if (c->message_id != NULL) {
    assert_non_null(mm->message_id);
    assert_string_equal(mm->message_id, c->message_id);
  } else {
    assert_null(mm->message_id);
  }
  assert_int_equal(mm->date, c->date);
  assert_non_null(mm->subject);
  assert_true(g_str_has_prefix(mm->subject, "Report Domain: "));
}

/* Every corpus message is in the table above. */
static void
test_corpus_complete(void **state)
{
  g_autofree char *root = tu_fixture_path("corpus");
  guint found = 0;
  GDir *top = g_dir_open(root, 0, NULL);
  assert_non_null(top);
  const char *sub;
  while ((sub = g_dir_read_name(top)) != NULL) {
    g_autofree char *dir = g_build_filename(root, sub, NULL);
    GDir *d = g_dir_open(dir, 0, NULL);
    if (d == NULL)
      continue;
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
      if (!g_str_has_suffix(name, ".eml") && !g_str_has_suffix(name, ".elm"))
        continue;
      g_autofree char *rel = g_strdup_printf("corpus/%s/%s", sub, name);
      gboolean listed = FALSE;
      for (guint i = 0; i < G_N_ELEMENTS(corpus_cases); i++)
        listed = listed || strcmp(corpus_cases[i].path, rel) == 0;
      if (!listed)
        fail_msg("%s is not in corpus_cases", rel);
      found++;
    }
    g_dir_close(d);
  }
  g_dir_close(top);
  assert_int_equal(found, G_N_ELEMENTS(corpus_cases));
}

/* The same message with LF line ends gives the same part. */
static void
test_crlf_and_lf(void **state)
{
  g_autoptr(GBytes) crlf = tu_fixture("corpus/mox/example.eml");
  gsize len = 0;
  const char *d = g_bytes_get_data(crlf, &len);
  assert_non_null(memchr(d, '\r', len));
  GString *lf = g_string_sized_new(len);
  for (gsize i = 0; i < len; i++)
    if (d[i] != '\r')
      g_string_append_c(lf, d[i]);
  g_autoptr(GBytes) lfb = g_string_free_to_bytes(lf);
  g_autoptr(MimeMessage) a = test_walk_bytes(crlf, NULL);
  g_autoptr(MimeMessage) b = test_walk_bytes(lfb, NULL);
  assert_int_equal(a->parts->len, 1);
  assert_int_equal(b->parts->len, 1);
  MimePart *pa = a->parts->pdata[0], *pb = b->parts->pdata[0];
  assert_true(g_bytes_equal(pa->content, pb->content));
}

/* ---- synthetic fixtures ------------------------------------------------- */

static void
test_forwarded_rfc822(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-forwarded-rfc822.eml");
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  assert_int_equal(mm->parts->len, 1);
  MimePart *p = mm->parts->pdata[0];
  assert_string_equal(p->content_type, "application/tlsrpt+gzip");
  assert_string_equal(p->filename, "sender.example!example.com!1663200000!1663286399!001.json.gz");
  assert_int_equal(p->evidence, MIME_EVIDENCE_STRONG);
  test_part_json(p, "Forwarded Org", DECODE_FORMAT_GZIP);
  /* Markers and TLS-Report-* headers come from the forwarded message; the envelope
   * fields from the outer one. */
  assert_true(mm->tlsrpt_markers);
  assert_string_equal(mm->report_domain, "example.com");
  assert_string_equal(mm->submitter, "sender.example");
  assert_string_equal(mm->from, "admin@example.com");
  assert_string_equal(mm->message_id, "fwd-1@example.com");
  assert_string_equal(mm->subject, "Fwd: Report Domain: example.com");
  assert_int_equal(mm->date, 1663394400);
}

static void
test_two_reports(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-two-reports.eml");
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  assert_int_equal(mm->parts->len, 2);
  MimePart *a = mm->parts->pdata[0], *b = mm->parts->pdata[1];
  assert_string_equal(a->content_type, "application/tlsrpt+gzip");
  assert_string_equal(a->filename, "first.json.gz");
  assert_string_equal(b->content_type, "application/tlsrpt+json");
  assert_string_equal(b->filename, "second.json");
  gsize la = test_part_json(a, "First Org", DECODE_FORMAT_GZIP);
  /* Quoted-printable undone: the JSON part is the raw report. */
  gsize lb = test_part_json(b, "Second Org", DECODE_FORMAT_JSON);
  assert_int_equal(la, lb);
  assert_int_equal(g_bytes_get_size(b->content), lb);
  assert_int_equal(a->evidence, MIME_EVIDENCE_STRONG);
  assert_int_equal(b->evidence, MIME_EVIDENCE_STRONG);
}

static void
test_octet_stream(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-octet-stream.eml");
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  /* The HTML first part mentions JSON but is no candidate. */
  assert_int_equal(mm->parts->len, 1);
  assert_false(mm->tlsrpt_markers);
  assert_null(mm->report_domain);
  assert_null(mm->submitter);
  MimePart *p = mm->parts->pdata[0];
  assert_string_equal(p->content_type, "application/octet-stream");
  assert_string_equal(p->filename, "sender.example!example.com!1663200000!1663286399!001.json.gz");
  assert_string_equal(p->why, "media type");
  /* No markers, but a tlsrpt-style name. */
  assert_int_equal(p->evidence, MIME_EVIDENCE_STRONG);
  test_part_json(p, "Octet Org", DECODE_FORMAT_GZIP);
}

static void
test_rfc2231_filename(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-rfc2231-filename.eml");
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  assert_int_equal(mm->parts->len, 1);
  MimePart *p = mm->parts->pdata[0];
  assert_string_equal(p->content_type, "application/gzip");
  assert_string_equal(p->filename,
                      "r\xc3\xa9porter.example!example.com!1663200000!1663286399.json.gz");
  assert_int_equal(p->evidence, MIME_EVIDENCE_STRONG);
  test_part_json(p, "Encoded Name Org", DECODE_FORMAT_GZIP);
}

static void
test_text_only(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-text-only.eml");
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  assert_int_equal(mm->parts->len, 0);
  assert_false(mm->tlsrpt_markers);
  assert_string_equal(mm->subject, "About our JSON reports");
  assert_string_equal(mm->from, "noreply-tlsrpt@sender.example");
  assert_string_equal(mm->message_id, "text@sender.example");
}

static void
test_missing_close(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-missing-close.eml");
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  assert_int_equal(mm->parts->len, 1);
  MimePart *p = mm->parts->pdata[0];
  assert_string_equal(p->content_type, "application/tlsrpt+gzip");
  test_part_json(p, "No Close Org", DECODE_FORMAT_GZIP);
}

static void
test_nested_beyond_depth(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-nested-40.eml");
  test_walk_fails(bytes, &test_limits, MIME_WALK_ERROR_LIMIT, "depth");

  /* With a deeper limit the report is found. */
  TrLimits deep = test_limits;
  deep.max_mime_depth = 64;
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, &deep);
  assert_int_equal(mm->parts->len, 1);
  test_part_json(mm->parts->pdata[0], "Deep Org", DECODE_FORMAT_GZIP);
}

static void
test_many_parts(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-many-parts.eml");
  test_walk_fails(bytes, &test_limits, MIME_WALK_ERROR_LIMIT, "parts");

  TrLimits more = test_limits;
  more.max_parts = 1102;    /* the multipart, 1100 text parts and the report */
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, &more);
  assert_int_equal(mm->parts->len, 1);
  test_part_json(mm->parts->pdata[0], "Many Org", DECODE_FORMAT_GZIP);
  more.max_parts = 1101;
  test_walk_fails(bytes, &more, MIME_WALK_ERROR_LIMIT, "parts");
}

static void
test_sniffed_mbox_body(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-sniffed-body.eml");
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  assert_int_equal(mm->parts->len, 1);
  MimePart *p = mm->parts->pdata[0];
  assert_string_equal(p->content_type, "text/plain");
  assert_null(p->filename);
  assert_string_equal(p->why, "content");
  assert_int_equal(p->evidence, MIME_EVIDENCE_WEAK);
  /* The mbox "From " line was skipped, the real From header read. */
  assert_string_equal(mm->from, "reporter@sender.example");
  assert_string_equal(mm->subject, "report");
  assert_int_equal(mm->date, 0);
  test_part_json(p, "Sniffed Org", DECODE_FORMAT_GZIP);
}

static void
test_zip_attachment(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("synthetic/mime-zip-attachment.eml");
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  assert_int_equal(mm->parts->len, 1);
  MimePart *p = mm->parts->pdata[0];
  assert_string_equal(p->content_type, "application/zip");
  assert_string_equal(p->filename, "report.zip");
  assert_int_equal(p->evidence, MIME_EVIDENCE_WEAK);
  g_autoptr(GBytes) zip = tu_fixture("synthetic/report-deflated.zip");
  assert_true(g_bytes_equal(p->content, zip));
  test_part_json(p, "Zip Org", DECODE_FORMAT_ZIP);
}

/* ---- classification, built in the test ---------------------------------- */

static void
test_evidence_rules(void **state)
{
  static const struct {
    gboolean markers;
    const char *headers;
    const char *content_type;
    const char *filename;
    const char *why;     /* NULL: no candidate */
    MimeEvidence evidence;
  } cases[] = {
    { FALSE, "Content-Type: application/tlsrpt+gzip", "application/tlsrpt+gzip", NULL,
      "media type", MIME_EVIDENCE_STRONG },
    { FALSE, "Content-Type: Application/TLSRPT+X-Gzip", "application/tlsrpt+x-gzip", NULL,
      "media type", MIME_EVIDENCE_STRONG },
    { FALSE, "Content-Type: application/tlsrpt+zip", "application/tlsrpt+zip", NULL,
      "media type", MIME_EVIDENCE_STRONG },
    { FALSE, "Content-Type: application/x-gzip; name=\"data.json.gz\"", "application/x-gzip",
      "data.json.gz", "media type", MIME_EVIDENCE_WEAK },
    { TRUE, "Content-Type: application/x-gzip; name=\"data.json.gz\"", "application/x-gzip",
      "data.json.gz", "media type", MIME_EVIDENCE_STRONG },
    { FALSE, "Content-Type: application/octet-stream", "application/octet-stream", NULL,
      "media type", MIME_EVIDENCE_WEAK },
    { FALSE, "Content-Type: application/x-whatever\r\n"
             "Content-Disposition: attachment; filename=\"REPORT.JSON.GZ\"",
      "application/x-whatever", "REPORT.JSON.GZ", "file name", MIME_EVIDENCE_WEAK },
    { FALSE, "Content-Type: application/x-whatever\r\n"
             "Content-Disposition: attachment; filename=\"a.example!b.example!1!2.json.gz\"",
      "application/x-whatever", "a.example!b.example!1!2.json.gz", "file name",
      MIME_EVIDENCE_STRONG },
    /* Encoded-word name on the Content-Type only. */
    { FALSE, "Content-Type: application/x-whatever; "
             "name=\"=?UTF-8?B?csOpcG9ydC5qc29uLmd6?=\"",
      "application/x-whatever", "r\xc3\xa9port.json.gz", "file name", MIME_EVIDENCE_WEAK },
    /* Text with a report name is a candidate. */
    { FALSE, "Content-Type: text/plain\r\n"
             "Content-Disposition: attachment; filename=\"r.json.gz\"",
      "text/plain", "r.json.gz", "file name", MIME_EVIDENCE_WEAK },
    /* Found by content (gzip magic) on a non-text part. */
    { FALSE, "Content-Type: image/x-unknown", "image/x-unknown", NULL, "content",
      MIME_EVIDENCE_WEAK },
    { TRUE, "Content-Type: image/x-unknown", "image/x-unknown", NULL, "content",
      MIME_EVIDENCE_STRONG },
    /* A text part that is not the whole body is not sniffed. */
    { TRUE, "Content-Type: text/plain", NULL, NULL, NULL, MIME_EVIDENCE_WEAK },
    { FALSE, "Content-Type: text/html; name=\"r.pdf\"", NULL, NULL, NULL, MIME_EVIDENCE_WEAK },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *msg = test_message_with_part(cases[i].markers, cases[i].headers);
    g_autoptr(MimeMessage) mm = test_walk_str(msg);
    assert_int_equal(mm->tlsrpt_markers, cases[i].markers);
    if (cases[i].why == NULL) {
      assert_int_equal(mm->parts->len, 0);
      continue;
    }
    if (mm->parts->len != 1)
      fail_msg("case %u: %u parts", i, mm->parts->len);
    MimePart *p = mm->parts->pdata[0];
    assert_string_equal(p->content_type, cases[i].content_type);
    if (cases[i].filename != NULL) {
      assert_non_null(p->filename);
      assert_string_equal(p->filename, cases[i].filename);
    } else {
      assert_null(p->filename);
    }
    if (strcmp(p->why, cases[i].why) != 0 || p->evidence != cases[i].evidence)
      fail_msg("case %u: why %s evidence %d", i, p->why, p->evidence);
    test_part_json(p, "Walk Inc.", DECODE_FORMAT_GZIP);
  }
}

/* A generic part that holds nothing report-like is not sniffed into a candidate. */
static void
test_non_report_attachment(void **state)
{
  g_autoptr(MimeMessage) mm = test_walk_str(
      "From: a@example.com\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n"
      "--x\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
      "iVBORw0KGgoAAAANSUhEUg==\r\n--x--\r\n");
  assert_int_equal(mm->parts->len, 0);
}

/* The whole message is the report (non-multipart), with only TLS-RPT headers. */
static void
test_whole_message_is_report(void **state)
{
  g_autofree char *b64 = test_gzip_b64();
  g_autofree char *msg = g_strdup_printf(
      "From: r@sender.example\r\nTLS-Report-Submitter: sender.example\r\n"
      "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n",
      b64);
  g_autoptr(MimeMessage) mm = test_walk_str(msg);
  assert_true(mm->tlsrpt_markers);
  assert_null(mm->report_domain);
  assert_string_equal(mm->submitter, "sender.example");
  assert_int_equal(mm->parts->len, 1);
  MimePart *p = mm->parts->pdata[0];
  assert_int_equal(p->evidence, MIME_EVIDENCE_STRONG);
  test_part_json(p, "Walk Inc.", DECODE_FORMAT_GZIP);
}

/* A plain RFC 5322 message: JSON as the body is found by content, prose is not. */
static void
test_plain_bodies(void **state)
{
  g_autofree char *json_msg =
      g_strdup_printf("From: r@sender.example\r\nSubject: x\r\n\r\n%s\r\n", test_json);
  g_autoptr(MimeMessage) a = test_walk_str(json_msg);
  assert_int_equal(a->parts->len, 1);
  MimePart *p = a->parts->pdata[0];
  assert_string_equal(p->content_type, "text/plain");
  assert_string_equal(p->why, "content");
  assert_int_equal(p->evidence, MIME_EVIDENCE_WEAK);
  test_part_json(p, "Walk Inc.", DECODE_FORMAT_JSON);

  g_autoptr(MimeMessage) b =
      test_walk_str("From: r@sender.example\r\nSubject: x\r\n\r\nJust words {here}.\r\n");
  assert_int_equal(b->parts->len, 0);
}

static void
test_base64_noise(void **state)
{
  g_autofree char *b64 = test_gzip_b64();
  GString *noisy = g_string_new(NULL);
  for (const char *c = b64; *c; c++) {
    g_string_append_c(noisy, *c);
    if ((c - b64) % 9 == 8)
      g_string_append(noisy, "!*~");
  }
  g_autofree char *msg = g_strdup_printf(
      "%sContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n"
      "\r\n%s\r\n",
      test_head, noisy->str);
  g_string_free(noisy, TRUE);
  g_autoptr(MimeMessage) mm = test_walk_str(msg);
  assert_int_equal(mm->parts->len, 1);
  test_part_json(mm->parts->pdata[0], "Walk Inc.", DECODE_FORMAT_GZIP);
}

static void
test_uuencode(void **state)
{
  g_autoptr(GBytes) gz = test_gzip(test_json);
  gsize len = 0;
  const guint8 *d = g_bytes_get_data(gz, &len);
  GString *s = g_string_new(test_head);
  g_string_append(s, "Content-Type: application/tlsrpt+gzip\r\n"
                     "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 r.json.gz\r\n");
  for (gsize off = 0; off < len; off += 45) {
    gsize n = MIN(45, len - off);
    g_string_append_c(s, (char) (32 + n));
    for (gsize i = 0; i < n; i += 3) {
      guint8 b[3] = { d[off + i], i + 1 < n ? d[off + i + 1] : 0, i + 2 < n ? d[off + i + 2] : 0 };
      guint v[4] = { b[0] >> 2u, ((b[0] & 3u) << 4) | (b[1] >> 4u),
                     ((b[1] & 15u) << 2) | (b[2] >> 6u), b[2] & 63u };
      for (int k = 0; k < 4; k++)
        g_string_append_c(s, v[k] == 0 ? '`' : (char) (32 + v[k]));
    }
    g_string_append(s, "\r\n");
  }
  g_string_append(s, "`\r\nend\r\n");
  g_autoptr(GBytes) bytes = g_string_free_to_bytes(s);
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, NULL);
  assert_int_equal(mm->parts->len, 1);
  MimePart *p = mm->parts->pdata[0];
  assert_true(g_bytes_equal(p->content, gz));
}

static void
test_group_from_and_bad_date(void **state)
{
  g_autoptr(MimeMessage) mm = test_walk_str(
      "From: Reporters: First <first@sender.example>, second@sender.example;\r\n"
      "Date: not a date at all\r\nMessage-ID: <id@x>\r\n"
      "Subject: =?UTF-8?Q?R=C3=A9port?=\r\n\r\nhello\r\n");
  assert_string_equal(mm->from, "first@sender.example");
  assert_int_equal(mm->date, 0);
  assert_string_equal(mm->message_id, "id@x");
  assert_string_equal(mm->subject, "R\xc3\xa9port");
  assert_int_equal(mm->parts->len, 0);
}

/* ---- limits and hostile structure -------------------------------------- */

static GBytes *
test_nested_multipart(guint depth)
{
  g_autofree char *b64 = test_gzip_b64();
  GString *s = g_string_new(test_head);
  for (guint i = 0; i < depth; i++)
    g_string_append_printf(s, "Content-Type: multipart/mixed; boundary=\"n%u\"\r\n\r\n--n%u\r\n",
                           i, i);
  g_string_append_printf(s, "Content-Type: application/tlsrpt+gzip\r\n"
                            "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n", b64);
  for (guint i = depth; i-- > 0;)
    g_string_append_printf(s, "--n%u--\r\n", i);
  return g_string_free_to_bytes(s);
}

static GBytes *
test_nested_rfc822(guint depth)
{
  g_autofree char *b64 = test_gzip_b64();
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < depth; i++)
    g_string_append_printf(s, "From: fwd%u@example.com\r\nMIME-Version: 1.0\r\n"
                              "Content-Type: message/rfc822\r\n\r\n", i);
  g_string_append_printf(s, "%sContent-Type: application/tlsrpt+gzip\r\n"
                            "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n", test_head, b64);
  return g_string_free_to_bytes(s);
}

static void
test_depth_boundary(void **state)
{
  TrLimits l = test_limits;
  l.max_mime_depth = 3;
  /* Three multiparts: the report is at depth 3. */
  g_autoptr(GBytes) ok = test_nested_multipart(3);
  g_autoptr(MimeMessage) mm = test_walk_bytes(ok, &l);
  assert_int_equal(mm->parts->len, 1);
  test_part_json(mm->parts->pdata[0], "Walk Inc.", DECODE_FORMAT_GZIP);
  g_autoptr(GBytes) deep = test_nested_multipart(4);
  test_walk_fails(deep, &l, MIME_WALK_ERROR_LIMIT, "depth");

  /* message/rfc822 counts like a multipart: the forwarded message's body is one level
   * below the message/rfc822 part. */
  l.max_mime_depth = 1;
  g_autoptr(GBytes) fwd1 = test_nested_rfc822(1);
  g_autoptr(MimeMessage) mf = test_walk_bytes(fwd1, &l);
  assert_int_equal(mf->parts->len, 1);
  assert_string_equal(mf->from, "fwd0@example.com");
  g_autoptr(GBytes) fwd2 = test_nested_rfc822(2);
  test_walk_fails(fwd2, &l, MIME_WALK_ERROR_LIMIT, "depth");
}

static void
test_hostile_nesting(void **state)
{
  g_autoptr(GBytes) mp = test_nested_multipart(10000);
  test_walk_fails(mp, &test_limits, MIME_WALK_ERROR_LIMIT, "depth");
  g_autoptr(GBytes) fw = test_nested_rfc822(10000);
  test_walk_fails(fw, &test_limits, MIME_WALK_ERROR_LIMIT, "depth");
  /* Even with no walk limit to speak of, GMime's own nesting cap keeps this finite. */
  TrLimits loose = test_limits;
  loose.max_mime_depth = G_MAXUINT;
  loose.max_parts = G_MAXUINT;
  g_autoptr(GError) error = NULL;
  g_autoptr(MimeMessage) mm = mime_walk_message(mp, &loose, &error);
  assert_non_null(mm);
  assert_true(mm->parts->len <= 1);
  g_autoptr(MimeMessage) mm2 = mime_walk_message(fw, &loose, &error);
  assert_non_null(mm2);
  /* Finite, not timed here: a timed unit test fails on a slow machine or under valgrind
   * (speed lives in tests/bench/); a hang is the test runner's timeout. */
}

static void
test_parts_boundary(void **state)
{
  g_autofree char *b64 = test_gzip_b64();
  g_autofree char *msg = g_strdup_printf(
      "%sContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n"
      "--x\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n"
      "\r\n%s\r\n--x\r\nContent-Type: text/plain\r\n\r\none\r\n"
      "--x\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--x--\r\n",
      test_head, b64);
  g_autoptr(GBytes) bytes = g_bytes_new(msg, strlen(msg));
  TrLimits l = test_limits;
  l.max_parts = 4;          /* multipart + 3 leaves */
  g_autoptr(MimeMessage) mm = test_walk_bytes(bytes, &l);
  assert_int_equal(mm->parts->len, 1);
  /* Over the limit fails even though the report came first. */
  l.max_parts = 3;
  test_walk_fails(bytes, &l, MIME_WALK_ERROR_LIMIT, "parts");
}

static void
test_not_a_message(void **state)
{
  static const guint8 junk[] = { 0x00, 0xff, 0x13, 0x37, 0x00, 0x00, 0x7f, 0x80, '\n' };
  g_autoptr(GBytes) j = g_bytes_new_static(junk, sizeof junk);
  test_walk_fails(j, &test_limits, MIME_WALK_ERROR_PARSE, NULL);
  g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
  test_walk_fails(empty, &test_limits, MIME_WALK_ERROR_PARSE, "empty");
  static const char from_only[] = "From someone@example.com Mon Jan  1 00:00:00 2024\n";
  g_autoptr(GBytes) f = g_bytes_new_static(from_only, sizeof from_only - 1);
  test_walk_fails(f, &test_limits, MIME_WALK_ERROR_PARSE, NULL);
  static const char prose[] = "hello world\nthis is not a message\n";
  g_autoptr(GBytes) p = g_bytes_new_static(prose, sizeof prose - 1);
  test_walk_fails(p, &test_limits, MIME_WALK_ERROR_PARSE, NULL);
}

/* The caller's bytes are not modified and may be released right after the walk. */
static void
test_input_untouched(void **state)
{
  g_autoptr(GBytes) bytes = tu_fixture("corpus/mox/microsoft.eml");
  g_autoptr(GBytes) copy = g_bytes_new(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
  MimeMessage *mm = test_walk_bytes(bytes, NULL);
  g_clear_pointer(&bytes, g_bytes_unref);
  g_autoptr(GBytes) again = tu_fixture("corpus/mox/microsoft.eml");
  assert_true(g_bytes_equal(copy, again));
  assert_int_equal(mm->parts->len, 1);
  test_part_json(mm->parts->pdata[0], "Microsoft Corporation", DECODE_FORMAT_GZIP);
  mime_message_free(mm);
  mime_message_free(NULL);
  mime_part_free(NULL);
}

/* ---- the fast path finds what GMime finds ----------------------------------------- */

static void
test_same_str(const char *what, const char *name, const char *a, const char *b)
{
  if (g_strcmp0(a, b) != 0)
    fail_msg("%s: %s differs: fast '%s', GMime '%s'", name, what, a ? a : "(null)",
             b ? b : "(null)");
}

static void
test_same_message(const char *name, const MimeMessage *f, const MimeMessage *g)
{
  test_same_str("report_domain", name, f->report_domain, g->report_domain);
  test_same_str("submitter", name, f->submitter, g->submitter);
  test_same_str("subject", name, f->subject, g->subject);
  test_same_str("message_id", name, f->message_id, g->message_id);
  test_same_str("from", name, f->from, g->from);
  if (f->date != g->date)
    fail_msg("%s: date differs: %" G_GINT64_FORMAT " vs %" G_GINT64_FORMAT, name, f->date,
             g->date);
  if (f->tlsrpt_markers != g->tlsrpt_markers)
    fail_msg("%s: tlsrpt_markers differ", name);
  if (f->parts->len != g->parts->len)
    fail_msg("%s: %u parts found, GMime finds %u", name, f->parts->len, g->parts->len);
  for (guint i = 0; i < f->parts->len; i++) {
    const MimePart *a = f->parts->pdata[i], *b = g->parts->pdata[i];
    if (!g_bytes_equal(a->content, b->content))
      fail_msg("%s: part %u: content differs (%zu vs %zu bytes)", name, i,
               g_bytes_get_size(a->content), g_bytes_get_size(b->content));
    test_same_str("content_type", name, a->content_type, b->content_type);
    test_same_str("filename", name, a->filename, b->filename);
    test_same_str("why", name, a->why, b->why);
    if (a->evidence != b->evidence)
      fail_msg("%s: part %u: evidence differs", name, i);
  }
  if (f->problems->len != g->problems->len)
    fail_msg("%s: %u problems, GMime %u", name, f->problems->len, g->problems->len);
  for (guint i = 0; i < f->problems->len; i++) {
    const MimeProblem *fp = f->problems->pdata[i], *gp = g->problems->pdata[i];
    test_same_str("problem", name, fp->text, gp->text);
    if (fp->evidence != gp->evidence)
      fail_msg("%s: problem %u: evidence differs", name, i);
  }
}

/* Walk @bytes through both paths under @limits; returns TRUE when the fast path took
 * the message (and found exactly what GMime finds). */
static gboolean
test_both_paths(const char *name, GBytes *bytes, const TrLimits *limits)
{
  g_autoptr(GError) gerr = NULL;
  g_autoptr(MimeMessage) g =
      mime_walk_message_path(bytes, limits, MIME_WALK_PATH_GMIME, NULL, &gerr);
  gboolean declined = FALSE;
  g_autoptr(GError) ferr = NULL;
  g_autoptr(MimeMessage) f =
      mime_walk_message_path(bytes, limits, MIME_WALK_PATH_FAST, &declined, &ferr);
  /* The automatic choice gives GMime's answer either way. */
  g_autoptr(GError) aerr = NULL;
  g_autoptr(MimeMessage) a =
      mime_walk_message_path(bytes, limits, MIME_WALK_PATH_AUTO, NULL, &aerr);

  if (g == NULL) {
    /* Errors (not a message, limits) are GMime's to give. */
    if (f != NULL)
      fail_msg("%s: the fast path walked a message GMime refuses (%s)", name, gerr->message);
    if (a != NULL || aerr == NULL || !g_error_matches(aerr, gerr->domain, gerr->code) ||
        strcmp(aerr->message, gerr->message) != 0)
      fail_msg("%s: the automatic walk does not fail as GMime does", name);
    return FALSE;
  }
  if (a == NULL)
    fail_msg("%s: the automatic walk fails: %s", name, aerr->message);
  test_same_message(name, a, g);
  if (f == NULL) {
    assert_true(declined);
    if (ferr != NULL)
      fail_msg("%s: the fast path declined with an error: %s", name, ferr->message);
    return FALSE;
  }
  assert_false(declined);
  test_same_message(name, f, g);
  return TRUE;
}

static char *
test_to_crlf(const char *d, gsize len, gsize *out_len)
{
  GString *s = g_string_sized_new(len + len / 16);
  for (gsize i = 0; i < len; i++) {
    if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r'))
      g_string_append_c(s, '\r');
    g_string_append_c(s, d[i]);
  }
  *out_len = s->len;
  return g_string_free(s, FALSE);
}

static char *
test_to_lf(const char *d, gsize len, gsize *out_len)
{
  GString *s = g_string_sized_new(len);
  for (gsize i = 0; i < len; i++) {
    if (!(d[i] == '\r' && i + 1 < len && d[i + 1] == '\n'))
      g_string_append_c(s, d[i]);
  }
  *out_len = s->len;
  return g_string_free(s, FALSE);
}

typedef struct {
  guint files;
  guint walks;
  guint fast;
  guint walks_default;    /* under the default limits */
  guint fast_default;
} TestFastCount;

/* Every file under @dir, as is, with CRLF and with LF line ends, under the default
 * limits and under tight ones. */
static void
test_fast_dir(const char *dir, TestFastCount *count)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return;
  const char *entry;
  while ((entry = g_dir_read_name(d)) != NULL) {
    g_autofree char *path = g_build_filename(dir, entry, NULL);
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
      test_fast_dir(path, count);
      continue;
    }
    g_autofree char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &data, &len, NULL))
      fail_msg("cannot read %s", path);
    count->files++;
    gsize crlf_len = 0, lf_len = 0;
    g_autofree char *crlf = test_to_crlf(data, len, &crlf_len);
    g_autofree char *lf = test_to_lf(data, len, &lf_len);
    GBytes *variants[] = {
      g_bytes_new_static(data, len),
      g_bytes_new_static(crlf, crlf_len),
      g_bytes_new_static(lf, lf_len),
    };
    TrLimits tight = test_limits;
    tight.max_parts = 2;
    TrLimits flat = test_limits;
    flat.max_mime_depth = 0;
    const TrLimits *limits[] = { &test_limits, &tight, &flat };
    for (guint v = 0; v < G_N_ELEMENTS(variants); v++) {
      for (guint l = 0; l < G_N_ELEMENTS(limits); l++) {
        g_autofree char *name = g_strdup_printf("%s (variant %u, limits %u)", path, v, l);
        gboolean fast = test_both_paths(name, variants[v], limits[l]);
        count->walks++;
        count->fast += fast;
        count->walks_default += l == 0;
        count->fast_default += l == 0 && fast;
      }
      g_bytes_unref(variants[v]);
    }
  }
}

/* Header and MIME variants around the common shape, each walked through both paths
 * (with LF and CRLF line ends): whichever path takes them, the results are GMime's. */
static void
test_fast_path_variants(void **state)
{
  static const char *const top_headers[] = {
    "Subject: a  b\t c  \r\n",
    "Subject:\r\n  folded\r\n\tsubject \r\n",
    "Subject: =?UTF-8?B?w6l0w6k=?= report\r\n",
    "Subject: =?ISO-8859-1?Q?caf=E9?=\r\n",
    "Subject:\r\n",
    "Message-Id: plain@id.example\r\n",
    "Message-ID:   <a@b>  (comment)\r\n",
    "Message-Id: <>\r\n",
    "Date: 1 Jan 2024 00:00 +0100\r\n",
    "Date: garbage\r\n",
    "Date: Mon, 01 Jan 2024 23:45:03 -0700 (MST)\r\n",
    "TLS-Report-Domain:   spaced.example  \r\n",
    "TLS-Report-Domain:\r\n",
    "TLS-Report-Submitter: =?UTF-8?Q?sub?=\r\n",
    "tls-report-domain: lower.example\r\n",
    "X-Long: one\r\n two\r\n three\r\n",
  };
  static const char *const froms[] = {
    "From: Reporter <reporter@sender.example>\r\n",
    "From: \"Quoted, Name\" <q@sender.example>\r\n",
    "From: group: a@x.example, b@y.example;\r\n",
    "From: undisclosed-recipients:;\r\n",
    "From: (comment) bare@sender.example\r\n",
    "From:\r\n <folded@sender.example>\r\n",
    "From: =?UTF-8?Q?N=C3=A9?= <ne@sender.example>\r\n",
    "From: not an address\r\n",
    "From: bare@Sender.Example\r\n",
    "From: <angle@sender.example>\r\n",
    "From: Some Name <some.name+tag@mail.sender.example>\r\n",
    "From: Some  Name <two@sender.example>\r\n",
    "From: Name<tight@sender.example>\r\n",
    "From: a@b\r\n",
    "From: a@b.example, c@d.example\r\n",
    "From: <a@b.example> trailing\r\n",
    "From: a..b@c.example\r\n",
    "From: a@-b.example\r\n",
    "From: Dr. Who <who@tardis.example>\r\n",
    "From: x=y <xy@sender.example>\r\n",
    "From: <@route.example:a@b.example>\r\n",
  };
  static const char *const top_types[] = {
    "Content-Type: multipart/report; report-type=tlsrpt; boundary=\"b1\"\r\n",
    "Content-Type: multipart/report; report-type=\"TLSRPT\";\r\n\tboundary=b1\r\n",
    "Content-Type: Multipart/Mixed; Boundary=\"b1\";\r\n",
    "Content-Type: multipart/mixed;boundary=b1\r\n",
    "Content-Type: multipart/mixed; boundary = \"b1\"\r\n",
    "Content-Type: multipart/mixed; boundary*=''b1\r\n",
    "Content-Type: multipart/mixed; boundary=\"b1\"; boundary=\"b2\"\r\n",
    "Content-Type: multipart/alternative; boundary=\"b1\" (comment)\r\n",
    "Content-Type: multipart/signed; boundary=\"b1\"\r\n",
    "Content-Type: multipart/report; report-type=tlsrpt\r\n",
  };
  static const char *const part_types[] = {
    "Content-Type: application/tlsrpt+gzip\r\n",
    "Content-Type: application/gzip; name=\"g.example!d.example!1!2!x.json.gz\"\r\n",
    "Content-Type: application/octet-stream; name=report.json.gz\r\n",
    "Content-Type: APPLICATION/OCTET-STREAM; NAME=\"x.json.gz\"\r\n",
    "Content-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment; filename=\"s.example!d.example!1!2.json.gz\"\r\n",
    "Content-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment;\r\n filename*=UTF-8''%73.example%21d.example%211%212.gz\r\n",
    "Content-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment; filename=\"=?UTF-8?Q?a.json.gz?=\"\r\n",
    "Content-Type: application/octet-stream\r\nContent-Disposition: inline\r\n",
    "Content-Type: application/octet-stream; name=\"a b.json.gz\"\r\n",
    "Content-Type: application/octet-stream; name=\" x.gz\"\r\n",
    "Content-Type: application/octet-stream; name=\"\"\r\n",
    "Content-Type: image/png\r\n",
    "Content-Type: text/plain; name=\"r.json\"\r\n",
    "Content-Type: application/pdf; name=\"a\\\"b.pdf\"\r\n",
    "",
  };
  static const char *const encodings[] = {
    "Content-Transfer-Encoding: base64\r\n",
    "Content-Transfer-Encoding: BASE64 \r\n",
    "Content-Transfer-Encoding: base64 (comment)\r\n",
    "Content-Transfer-Encoding: 7bit\r\n",
    "Content-Transfer-Encoding: quoted-printable\r\n",
    "",
  };
  g_autofree char *b64 = test_gzip_b64();
  guint walks = 0, fast = 0;
  for (guint t = 0; t < G_N_ELEMENTS(top_types); t++) {
    for (guint p = 0; p < G_N_ELEMENTS(part_types); p++) {
      for (guint e = 0; e < G_N_ELEMENTS(encodings); e++) {
        guint h = (t * 7 + p * 3 + e) % G_N_ELEMENTS(top_headers);
        guint f = (t + p + e) % G_N_ELEMENTS(froms);
        const char *body = encodings[e][0] == '\0' || strstr(encodings[e], "7bit") != NULL
                               ? test_json
                               : b64;
        g_autofree char *msg = g_strdup_printf(
            "%s%sTo: x@example.com\r\n%sMIME-Version: 1.0\r\n\r\n"
            "preface\r\n--b1\r\nContent-Type: text/plain\r\n\r\nHello.\r\n"
            "--b1\r\n%s%s\r\n%s\r\n--b1--\r\nepilogue\r\n",
            froms[f], top_headers[h], top_types[t], part_types[p], encodings[e], body);
        gsize lf_len = 0;
        g_autofree char *lf = test_to_lf(msg, strlen(msg), &lf_len);
        GBytes *variants[] = {
          g_bytes_new_static(msg, strlen(msg)),
          g_bytes_new_static(lf, lf_len),
        };
        for (guint v = 0; v < G_N_ELEMENTS(variants); v++) {
          g_autofree char *name = g_strdup_printf("variant t%u p%u e%u h%u f%u %s", t, p, e,
                                                  h, f, v ? "LF" : "CRLF");
          walks++;
          fast += test_both_paths(name, variants[v], &test_limits);
          g_bytes_unref(variants[v]);
        }
      }
    }
  }
  /* Every From and top header variant in a message of the common shape: the fast path
   * takes them all (header values it does not parse itself go to GMime's parsers). */
  for (guint i = 0; i < G_N_ELEMENTS(froms) + G_N_ELEMENTS(top_headers); i++) {
    gboolean is_from = i < G_N_ELEMENTS(froms);
    g_autofree char *msg = g_strdup_printf(
        "%s%sMIME-Version: 1.0\r\n%s\r\n--b1\r\n%s%s\r\n%s\r\n--b1--\r\n",
        is_from ? froms[i] : "From: a@b.example\r\n",
        is_from ? "" : top_headers[i - G_N_ELEMENTS(froms)], top_types[0], part_types[0],
        encodings[0], b64);
    g_autoptr(GBytes) b = g_bytes_new(msg, strlen(msg));
    g_autofree char *name = g_strdup_printf("header variant %u", i);
    walks++;
    if (!test_both_paths(name, b, &test_limits))
      fail_msg("%s: the fast path declined it", name);
    fast++;
  }

  /* Single-part messages, and boundary lines with something after them. */
  static const char *const shapes[] = {
    "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s",
    "Content-Type: text/plain\r\n\r\n%s\r\n",
    "\r\n%s",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1  \r\n"
    "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1\r\n"
    "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1-- \r\n",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1\r\n"
    "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1x\r\n--b1",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1\r\n\r\n%s\r\n--b1\r\n\r\n--b1--",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1\r\n"
    "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\n--b1\r\n",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1--\r\n%s",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n%s",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1\r\n"
    "Content-Type: application/tlsrpt+gzip\r\nBroken header line\r\n\r\n%s\r\n",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1\r\n"
    "Content-Type: application/tlsrpt+gzip\r\nContent-Type: text/plain\r\n\r\n%s\r\n",
    /* The closing boundary at the end of the input, ending in a bare CR: GMime then
     * drops two bytes before it (the base64 body is a short JSON object). */
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1\r\n"
    "Content-Type: text/plain\r\n\r\n%s\r\n--b1\r\n"
    "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "eyJhIjoxMjN9\n--b1--\r",
    "Content-Type: multipart/report; boundary=b1\r\n\r\n--b1\r\n"
    "Content-Type: text/plain\r\n\r\n%s\r\n--b1\r\n"
    "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "eyJhIjoxMjN9\r\n--b1--\r",
  };
  for (guint i = 0; i < G_N_ELEMENTS(shapes); i++) {
    for (guint j = 0; j < 2; j++) {
      const char *body = j == 0 ? b64 : test_json;
      const char *at = strstr(shapes[i], "%s");
      g_assert(at != NULL);
      g_autofree char *head = g_strndup(shapes[i], (gsize) (at - shapes[i]));
      g_autofree char *tail = g_strconcat(head, body, at + 2, NULL);
      g_autofree char *msg =
          g_strdup_printf("From: a@b.example\r\nSubject: s\r\n%s", tail);
      g_autoptr(GBytes) b = g_bytes_new(msg, strlen(msg));
      g_autofree char *name = g_strdup_printf("shape %u body %u", i, j);
      walks++;
      fast += test_both_paths(name, b, &test_limits);
    }
  }
  print_message("fast path: %u of %u variants\n", fast, walks);
  assert_true(fast * 3 > walks);
}

static void
test_fast_path_matches_gmime(void **state)
{
  static const char *const dirs[] = { "corpus", "synthetic", "hostile", "sample-maildir" };
  TestFastCount count = { 0 };
  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
    g_autofree char *dir = tu_fixture_path(dirs[i]);
    test_fast_dir(dir, &count);
  }
  /* Also any directory named in the environment (e.g. a generated benchmark corpus). */
  const char *extra = g_getenv("TLSRPT_MIME_COMPARE_DIR");
  if (extra != NULL && extra[0] != '\0')
    test_fast_dir(extra, &count);
  print_message("fast path: %u of %u walks over %u files\n", count.fast, count.walks,
                count.files);
  assert_true(count.files > 60);
  /* Not vacuous: the common shapes do take the fast path. */
  assert_true(count.fast_default * 3 > count.walks_default);

  static const char *const common[] = {
    "corpus/mox/example.eml", "corpus/mox/microsoft.eml",
    "corpus/parsedmarc/google.com_smtp_tls_report.eml",
    "sample-maildir/new/1700000011.M11P4242.sample",
  };
  for (guint i = 0; i < G_N_ELEMENTS(common); i++) {
    g_autoptr(GBytes) b = tu_fixture(common[i]);
    gboolean declined = TRUE;
    g_autoptr(GError) error = NULL;
    g_autoptr(MimeMessage) mm =
        mime_walk_message_path(b, &test_limits, MIME_WALK_PATH_FAST, &declined, &error);
    if (mm == NULL)
      fail_msg("%s: the fast path declined it", common[i]);
    assert_false(declined);
  }
}

int
main(void)
{
  struct CMUnitTest all[G_N_ELEMENTS(corpus_cases) + 40];
  guint n = 0;
  for (guint i = 0; i < G_N_ELEMENTS(corpus_cases); i++) {
    struct CMUnitTest t = { corpus_cases[i].path, test_corpus_message, NULL, NULL,
                            (void *) &corpus_cases[i] };
    all[n++] = t;
  }
#define ADD(fn) all[n++] = (struct CMUnitTest) cmocka_unit_test(fn)
  ADD(test_corpus_complete);
  ADD(test_crlf_and_lf);
  ADD(test_forwarded_rfc822);
  ADD(test_two_reports);
  ADD(test_octet_stream);
  ADD(test_rfc2231_filename);
  ADD(test_text_only);
  ADD(test_missing_close);
  ADD(test_nested_beyond_depth);
  ADD(test_many_parts);
  ADD(test_sniffed_mbox_body);
  ADD(test_zip_attachment);
  ADD(test_evidence_rules);
  ADD(test_non_report_attachment);
  ADD(test_whole_message_is_report);
  ADD(test_plain_bodies);
  ADD(test_base64_noise);
  ADD(test_uuencode);
  ADD(test_group_from_and_bad_date);
  ADD(test_depth_boundary);
  ADD(test_hostile_nesting);
  ADD(test_parts_boundary);
  ADD(test_not_a_message);
  ADD(test_input_untouched);
  ADD(test_fast_path_matches_gmime);
  ADD(test_fast_path_variants);
#undef ADD
  return _cmocka_run_group_tests("mime_walk", all, n, test_setup, NULL);
}
