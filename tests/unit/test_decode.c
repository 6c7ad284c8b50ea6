/* test_decode.c - payload sniffing, gzip (whole and one byte at a time), zip, caps. */
#include "decode.h"
#include "mime-walk.h"
#include "testutil.h"

#include <string.h>
#include <sys/resource.h>
#include <zlib.h>

static const char test_json[] =
    "{\"organization-name\":\"Decode Inc.\",\"date-range\":{\"start-datetime\":"
    "\"2022-09-15T00:00:00Z\",\"end-datetime\":\"2022-09-15T23:59:59Z\"},"
    "\"contact-info\":\"tlsrpt@sender.example\",\"report-id\":\"decode-1\","
    "\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":["
    "\"version: STSv1\",\"mode: enforce\"],\"policy-domain\":\"example.com\"},"
    "\"summary\":{\"total-successful-session-count\":3,"
    "\"total-failure-session-count\":0}}]}";

#define TEST_CAP (64u * 1024 * 1024)

/* ---- helpers -------------------------------------------------------------- */

/* gzip @len bytes; @fname / @comment set the optional header fields, @os the OS byte. */
static GBytes *
test_gzip_full(const void *data, gsize len, const char *fname, const char *comment, int os)
{
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                   Z_OK);
  gz_header head;
  memset(&head, 0, sizeof head);
  head.name = (Bytef *) fname;
  head.comment = (Bytef *) comment;
  head.os = os;
  assert_int_equal(deflateSetHeader(&zs, &head), Z_OK);
  gsize cap = deflateBound(&zs, (uLong) len) + 64 + (fname ? strlen(fname) : 0) +
              (comment ? strlen(comment) : 0);
  guint8 *out = g_malloc(cap);
  zs.next_in = (Bytef *) data;
  zs.avail_in = (uInt) len;
  zs.next_out = out;
  zs.avail_out = (uInt) cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  gsize n = zs.total_out;
  deflateEnd(&zs);
  return g_bytes_new_take(out, n);
}

static GBytes *
test_gzip(const void *data, gsize len)
{
  return test_gzip_full(data, len, NULL, NULL, 3);
}

static GBytes *
test_concat(GBytes *a, const void *b, gsize blen)
{
  GByteArray *arr = g_byte_array_new();
  g_byte_array_append(arr, g_bytes_get_data(a, NULL), (guint) g_bytes_get_size(a));
  g_byte_array_append(arr, b, (guint) blen);
  return g_byte_array_free_to_bytes(arr);
}

static GBytes *
test_raw_deflate(const void *data, gsize len)
{
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  gsize cap = deflateBound(&zs, (uLong) len) + 16;
  guint8 *out = g_malloc(cap);
  zs.next_in = (Bytef *) data;
  zs.avail_in = (uInt) len;
  zs.next_out = out;
  zs.avail_out = (uInt) cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  gsize n = zs.total_out;
  deflateEnd(&zs);
  return g_bytes_new_take(out, n);
}

static void
test_put16(GByteArray *a, guint v)
{
  guint8 b[2] = { (guint8) (v & 0xff), (guint8) ((v >> 8) & 0xff) };
  g_byte_array_append(a, b, 2);
}

static void
test_put32(GByteArray *a, guint32 v)
{
  guint8 b[4] = { (guint8) (v & 0xff), (guint8) ((v >> 8) & 0xff), (guint8) ((v >> 16) & 0xff),
                  (guint8) ((v >> 24) & 0xff) };
  g_byte_array_append(a, b, 4);
}

/* Append one zip entry (local header + data). @method 0 stores, 8 deflates; @flags is
 * the general-purpose flag (bit 3: data descriptor follows). */
static void
test_zip_entry(GByteArray *a, const char *name, const void *data, gsize len, guint method,
               guint flags, guint32 crc_xor)
{
  g_autoptr(GBytes) packed =
      method == 8 ? test_raw_deflate(data, len) : g_bytes_new(data, len);
  guint32 crc = (guint32) crc32(0L, data, (uInt) len) ^ crc_xor;
  gboolean desc = (flags & 8) != 0;
  test_put32(a, 0x04034b50);
  test_put16(a, 20);
  test_put16(a, flags);
  test_put16(a, method);
  test_put16(a, 0);
  test_put16(a, 0);
  test_put32(a, desc ? 0 : crc);
  test_put32(a, desc ? 0 : (guint32) g_bytes_get_size(packed));
  test_put32(a, desc ? 0 : (guint32) len);
  test_put16(a, (guint) strlen(name));
  test_put16(a, 0);
  g_byte_array_append(a, (const guint8 *) name, (guint) strlen(name));
  g_byte_array_append(a, g_bytes_get_data(packed, NULL), (guint) g_bytes_get_size(packed));
  if (desc) {
    test_put32(a, 0x08074b50);
    test_put32(a, crc);
    test_put32(a, (guint32) g_bytes_get_size(packed));
    test_put32(a, (guint32) len);
  }
}

/* End of central directory (the decoder stops at any non-local-header signature). */
static GBytes *
test_zip_finish(GByteArray *a)
{
  test_put32(a, 0x06054b50);
  for (int i = 0; i < 9; i++)
    test_put16(a, 0);
  return g_byte_array_free_to_bytes(a);
}

static GBytes *
test_decode_ok(GBytes *payload, gsize cap, DecodeFormat want_format)
{
  g_autoptr(GError) error = NULL;
  DecodeFormat format = (DecodeFormat) -1;
  GBytes *out = decode_payload(payload, cap, &format, &error);
  if (out == NULL)
    fail_msg("decode failed: %s", error->message);
  assert_null(error);
  assert_int_equal(format, want_format);
  return out;
}

static void
test_decode_fails(GBytes *payload, gsize cap, int code, const char *substring)
{
  g_autoptr(GError) error = NULL;
  DecodeFormat format = DECODE_FORMAT_JSON;
  g_autoptr(GBytes) out = decode_payload(payload, cap, &format, &error);
  assert_null(out);
  assert_non_null(error);
  if (!g_error_matches(error, DECODE_ERROR, code))
    fail_msg("expected code %d, got %s / %d: %s", code, g_quark_to_string(error->domain),
             error->code, error->message);
  if (substring != NULL && strstr(error->message, substring) == NULL)
    fail_msg("error '%s' lacks '%s'", error->message, substring);
}

static void
test_assert_bytes_equal(GBytes *got, const void *want, gsize want_len)
{
  gsize len = 0;
  const guint8 *d = g_bytes_get_data(got, &len);
  assert_int_equal(len, want_len);
  assert_memory_equal(d, want, want_len);
}

/* Push @gz one byte at a time through the streaming API. */
static GBytes *
test_gzip_bytewise(GBytes *gz, gsize cap, GError **error)
{
  g_autoptr(DecodeGzip) z = decode_gzip_new(cap);
  gsize len = 0;
  const guint8 *d = g_bytes_get_data(gz, &len);
  for (gsize i = 0; i < len; i++) {
    if (!decode_gzip_push(z, d + i, 1, error))
      return NULL;
  }
  return decode_gzip_finish(z, error);
}

/* ---- formats and plain JSON -------------------------------------------- */

static void
test_extension(void **state)
{
  assert_string_equal(decode_format_extension(DECODE_FORMAT_JSON), "json");
  assert_string_equal(decode_format_extension(DECODE_FORMAT_GZIP), "json.gz");
  assert_string_equal(decode_format_extension(DECODE_FORMAT_ZIP), "zip");
}

static void
test_json_as_is(void **state)
{
  g_autoptr(GBytes) in = g_bytes_new_static(test_json, strlen(test_json));
  g_autoptr(GBytes) out = test_decode_ok(in, TEST_CAP, DECODE_FORMAT_JSON);
  test_assert_bytes_equal(out, test_json, strlen(test_json));
}

static void
test_json_bom_and_space(void **state)
{
  g_autofree char *s = g_strconcat("\xef\xbb\xbf \r\n\t", test_json, NULL);
  g_autoptr(GBytes) in = g_bytes_new(s, strlen(s));
  g_autoptr(GBytes) out = test_decode_ok(in, TEST_CAP, DECODE_FORMAT_JSON);
  test_assert_bytes_equal(out, s, strlen(s));

  /* The same inside gzip. */
  g_autoptr(GBytes) gz = test_gzip(s, strlen(s));
  g_autoptr(GBytes) out2 = test_decode_ok(gz, TEST_CAP, DECODE_FORMAT_GZIP);
  test_assert_bytes_equal(out2, s, strlen(s));
}

static void
test_not_json(void **state)
{
  static const char *const inputs[] = {
    "This is a plain text message.\n", "[1,2,3]", "   ", "\xef\xbb\xbf", "\xef\xbb\xbf[]",
    "\x1f", "PK\x03", "<html>{</html>",
  };
  for (guint i = 0; i < G_N_ELEMENTS(inputs); i++) {
    g_autoptr(GBytes) in = g_bytes_new_static(inputs[i], strlen(inputs[i]));
    test_decode_fails(in, TEST_CAP, DECODE_ERROR_NOT_JSON,
                      "content is neither gzip, zip nor JSON");
  }
  g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
  test_decode_fails(empty, TEST_CAP, DECODE_ERROR_NOT_JSON, NULL);
}

static void
test_json_over_cap(void **state)
{
  gsize n = strlen(test_json);
  g_autoptr(GBytes) in = g_bytes_new_static(test_json, n);
  g_autoptr(GBytes) ok = test_decode_ok(in, n, DECODE_FORMAT_JSON);
  test_assert_bytes_equal(ok, test_json, n);
  test_decode_fails(in, n - 1, DECODE_ERROR_TOO_LARGE, "max-report-size");
}

/* ---- gzip ---------------------------------------------------------------- */

static void
test_gzip_whole_vs_bytewise(void **state)
{
  /* A larger payload too, so output crosses the inflater's chunk size. */
  GString *big = g_string_new("{\"organization-name\":\"");
  for (guint i = 0; i < 200000; i++)
    g_string_append_printf(big, "%u,", i * 2654435761u);
  g_string_append(big, "\"}");
  const char *inputs[] = { test_json, big->str };
  gsize lens[] = { strlen(test_json), big->len };

  for (guint k = 0; k < G_N_ELEMENTS(inputs); k++) {
    g_autoptr(GBytes) gz = test_gzip(inputs[k], lens[k]);
    g_autoptr(GBytes) whole = test_decode_ok(gz, TEST_CAP, DECODE_FORMAT_GZIP);
    test_assert_bytes_equal(whole, inputs[k], lens[k]);

    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytewise = test_gzip_bytewise(gz, TEST_CAP, &error);
    assert_null(error);
    assert_non_null(bytewise);
    assert_true(g_bytes_equal(whole, bytewise));
  }
  g_string_free(big, TRUE);
}

static void
test_gzip_bad_crc(void **state)
{
  g_autoptr(GBytes) gz = test_gzip(test_json, strlen(test_json));
  gsize len = 0;
  guint8 *d = g_memdup2(g_bytes_get_data(gz, &len), g_bytes_get_size(gz));
  d[len - 8] ^= 0x5a;
  g_autoptr(GBytes) bad = g_bytes_new_take(d, len);
  test_decode_fails(bad, TEST_CAP, DECODE_ERROR_GZIP, "CRC");

  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = test_gzip_bytewise(bad, TEST_CAP, &error);
  assert_null(out);
  assert_true(g_error_matches(error, DECODE_ERROR, DECODE_ERROR_GZIP));
}

static void
test_gzip_bad_isize(void **state)
{
  g_autoptr(GBytes) gz = test_gzip(test_json, strlen(test_json));
  gsize len = 0;
  guint8 *d = g_memdup2(g_bytes_get_data(gz, &len), g_bytes_get_size(gz));
  d[len - 4] ^= 0x01;
  g_autoptr(GBytes) bad = g_bytes_new_take(d, len);
  test_decode_fails(bad, TEST_CAP, DECODE_ERROR_GZIP, "length");
}

static void
test_gzip_bad_data(void **state)
{
  g_autoptr(GBytes) gz = test_gzip(test_json, strlen(test_json));
  gsize len = 0;
  guint8 *d = g_memdup2(g_bytes_get_data(gz, &len), g_bytes_get_size(gz));
  d[2] = 7;     /* compression method other than deflate */
  g_autoptr(GBytes) bad = g_bytes_new_take(d, len);
  test_decode_fails(bad, TEST_CAP, DECODE_ERROR_GZIP, "bad gzip data");
}

static void
test_gzip_truncated(void **state)
{
  g_autoptr(GBytes) gz = test_gzip(test_json, strlen(test_json));
  gsize len = g_bytes_get_size(gz);
  /* Every cut from the bare magic to one byte short of the trailer fails. */
  for (gsize cut = 2; cut < len; cut++) {
    g_autoptr(GBytes) part = g_bytes_new_from_bytes(gz, 0, cut);
    test_decode_fails(part, TEST_CAP, DECODE_ERROR_GZIP, NULL);
  }
  g_autoptr(GBytes) half = g_bytes_new_from_bytes(gz, 0, len / 2);
  test_decode_fails(half, TEST_CAP, DECODE_ERROR_GZIP, "truncated gzip stream");

  /* The streaming API says the same at finish. */
  g_autoptr(DecodeGzip) z = decode_gzip_new(TEST_CAP);
  assert_true(decode_gzip_push(z, g_bytes_get_data(half, NULL), g_bytes_get_size(half), NULL));
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = decode_gzip_finish(z, &error);
  assert_null(out);
  assert_true(g_error_matches(error, DECODE_ERROR, DECODE_ERROR_GZIP));
  assert_non_null(strstr(error->message, "truncated"));
}

static void
test_gzip_empty_stream(void **state)
{
  g_autoptr(DecodeGzip) z = decode_gzip_new(TEST_CAP);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = decode_gzip_finish(z, &error);
  assert_null(out);
  assert_true(g_error_matches(error, DECODE_ERROR, DECODE_ERROR_GZIP));
}

static void
test_gzip_trailing_bytes(void **state)
{
  g_autoptr(GBytes) gz = test_gzip(test_json, strlen(test_json));
  static const char *const ok_tails[] = { "\r\n", "\n", "\r\n\r\n  \t" };
  for (guint i = 0; i < G_N_ELEMENTS(ok_tails); i++) {
    g_autoptr(GBytes) in = test_concat(gz, ok_tails[i], strlen(ok_tails[i]));
    g_autoptr(GBytes) out = test_decode_ok(in, TEST_CAP, DECODE_FORMAT_GZIP);
    test_assert_bytes_equal(out, test_json, strlen(test_json));
    g_autoptr(GBytes) out2 = test_gzip_bytewise(in, TEST_CAP, NULL);
    assert_non_null(out2);
    assert_true(g_bytes_equal(out, out2));
  }
  g_autoptr(GBytes) nuls = test_concat(gz, "\0\0\0\0", 4);
  g_autoptr(GBytes) out3 = test_decode_ok(nuls, TEST_CAP, DECODE_FORMAT_GZIP);
  test_assert_bytes_equal(out3, test_json, strlen(test_json));

  /* Anything else after the last member is an error, whole or byte by byte. */
  static const char *const bad_tails[] = { "GARBAGE!", "\r\nx", "\x1f", "\x1f\x8b\x08" };
  for (guint i = 0; i < G_N_ELEMENTS(bad_tails); i++) {
    g_autoptr(GBytes) in = test_concat(gz, bad_tails[i], strlen(bad_tails[i]));
    test_decode_fails(in, TEST_CAP, DECODE_ERROR_GZIP, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) out = test_gzip_bytewise(in, TEST_CAP, &error);
    assert_null(out);
    assert_true(g_error_matches(error, DECODE_ERROR, DECODE_ERROR_GZIP));
  }
  g_autoptr(GBytes) garbage = test_concat(gz, "GARBAGE!", 8);
  test_decode_fails(garbage, TEST_CAP, DECODE_ERROR_GZIP, "trailing garbage");
}

static void
test_gzip_concatenated(void **state)
{
  gsize n = strlen(test_json);
  gsize half = n / 2;
  g_autoptr(GBytes) a = test_gzip(test_json, half);
  g_autoptr(GBytes) b = test_gzip(test_json + half, n - half);
  g_autoptr(GBytes) ab = test_concat(a, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
  g_autoptr(GBytes) out = test_decode_ok(ab, TEST_CAP, DECODE_FORMAT_GZIP);
  test_assert_bytes_equal(out, test_json, n);

  g_autoptr(GBytes) out2 = test_gzip_bytewise(ab, TEST_CAP, NULL);
  assert_non_null(out2);
  test_assert_bytes_equal(out2, test_json, n);

  /* Three members, the last one empty, then CRLF. */
  g_autoptr(GBytes) c = test_gzip("", 0);
  g_autoptr(GBytes) abc = test_concat(ab, g_bytes_get_data(c, NULL), g_bytes_get_size(c));
  g_autoptr(GBytes) abc_crlf = test_concat(abc, "\r\n", 2);
  g_autoptr(GBytes) out3 = test_decode_ok(abc_crlf, TEST_CAP, DECODE_FORMAT_GZIP);
  test_assert_bytes_equal(out3, test_json, n);

  /* A second member that is cut short fails. */
  g_autoptr(GBytes) cut = g_bytes_new_from_bytes(ab, 0, g_bytes_get_size(ab) - 5);
  test_decode_fails(cut, TEST_CAP, DECODE_ERROR_GZIP, "truncated");
}

static void
test_gzip_fname_header(void **state)
{
  g_autoptr(GBytes) gz =
      test_gzip_full(test_json, strlen(test_json), "rpt01.json.1", "a comment", 255);
  const guint8 *d = g_bytes_get_data(gz, NULL);
  assert_int_equal(d[3] & 0x18, 0x18);     /* FNAME and FCOMMENT set */
  g_autoptr(GBytes) out = test_decode_ok(gz, TEST_CAP, DECODE_FORMAT_GZIP);
  test_assert_bytes_equal(out, test_json, strlen(test_json));
  g_autoptr(GBytes) out2 = test_gzip_bytewise(gz, TEST_CAP, NULL);
  assert_non_null(out2);
  test_assert_bytes_equal(out2, test_json, strlen(test_json));
}

static void
test_gzip_rpt01_fname(void **state)
{
  /* The corpus message whose gzip header carries FNAME "rpt01.json.1". */
  mime_walk_init();
  TrLimits limits;
  tr_limits_init(&limits);
  g_autoptr(GBytes) msg = tu_fixture("corpus/stalwart-mail-auth/rpt01.eml");
  g_autoptr(GError) error = NULL;
  g_autoptr(MimeMessage) mm = mime_walk_message(msg, &limits, &error);
  assert_non_null(mm);
  assert_int_equal(mm->parts->len, 1);
  MimePart *part = mm->parts->pdata[0];
  gsize len = 0;
  const guint8 *d = g_bytes_get_data(part->content, &len);
  assert_true(len > 22);
  assert_int_equal(d[3] & 0x08, 0x08);
  assert_memory_equal(d + 10, "rpt01.json.1", 13);
  g_autoptr(GBytes) out = test_decode_ok(part->content, TEST_CAP, DECODE_FORMAT_GZIP);
  g_autoptr(GBytes) want = tu_fixture("corpus/stalwart-mail-auth/rpt01.json");
  assert_true(g_bytes_equal(out, want));
}

static void
test_gzip_not_json(void **state)
{
  static const char text[] = "This is not a report.\nJust text, gzip'd.\n";
  g_autoptr(GBytes) gz = test_gzip(text, sizeof text - 1);
  test_decode_fails(gz, TEST_CAP, DECODE_ERROR_NOT_JSON, "gzip content is not JSON");
  g_autoptr(GBytes) empty = test_gzip("", 0);
  test_decode_fails(empty, TEST_CAP, DECODE_ERROR_NOT_JSON, "gzip content is not JSON");
}

static void
test_gzip_cap_boundary(void **state)
{
  gsize n = strlen(test_json);
  g_autoptr(GBytes) gz = test_gzip(test_json, n);
  g_autoptr(GBytes) ok = test_decode_ok(gz, n, DECODE_FORMAT_GZIP);
  test_assert_bytes_equal(ok, test_json, n);
  test_decode_fails(gz, n - 1, DECODE_ERROR_TOO_LARGE, "inflated report exceeds");
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bw = test_gzip_bytewise(gz, n - 1, &error);
  assert_null(bw);
  assert_true(g_error_matches(error, DECODE_ERROR, DECODE_ERROR_TOO_LARGE));

  /* A larger payload whose size is exactly the cap, crossing chunk boundaries. */
  const gsize big = 3u * 64 * 1024 + 17;
  g_autofree char *s = g_malloc(big);
  memset(s, ' ', big);
  s[0] = '{';
  s[big - 1] = '}';
  g_autoptr(GBytes) gzb = test_gzip(s, big);
  g_autoptr(GBytes) okb = test_decode_ok(gzb, big, DECODE_FORMAT_GZIP);
  assert_int_equal(g_bytes_get_size(okb), big);
  test_decode_fails(gzb, big - 1, DECODE_ERROR_TOO_LARGE, "max-report-size");
}

/* After a failure every later call repeats the error; nothing is returned. */
static void
test_gzip_sticky_error(void **state)
{
  g_autoptr(DecodeGzip) z = decode_gzip_new(TEST_CAP);
  g_autoptr(GError) e1 = NULL;
  assert_false(decode_gzip_push(z, (const guint8 *) "\x1f\x8bXXXXXXXXXX", 12, &e1));
  assert_true(g_error_matches(e1, DECODE_ERROR, DECODE_ERROR_GZIP));
  g_autoptr(GBytes) gz = test_gzip(test_json, strlen(test_json));
  g_autoptr(GError) e2 = NULL;
  assert_false(decode_gzip_push(z, g_bytes_get_data(gz, NULL), g_bytes_get_size(gz), &e2));
  assert_string_equal(e1->message, e2->message);
  g_autoptr(GError) e3 = NULL;
  g_autoptr(GBytes) out = decode_gzip_finish(z, &e3);
  assert_null(out);
  assert_string_equal(e1->message, e3->message);
}

static long
test_max_rss_kib(void)
{
  struct rusage ru;
  assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
  return ru.ru_maxrss;
}

static void
test_gzip_bomb(void **state)
{
  /* 1 GiB of zeros, compressed in the test (about 1 MiB). */
  const gsize total = 1024u * 1024 * 1024;
  const gsize block = 1024u * 1024;
  g_autofree guint8 *zeros = g_malloc0(block);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                   Z_OK);
  GByteArray *arr = g_byte_array_new();
  g_autofree guint8 *buf = g_malloc(block);
  for (gsize done = 0; done < total; done += block) {
    zs.next_in = zeros;
    zs.avail_in = (uInt) block;
    int flush = done + block == total ? Z_FINISH : Z_NO_FLUSH;
    int ret;
    do {
      zs.next_out = buf;
      zs.avail_out = (uInt) block;
      ret = deflate(&zs, flush);
      assert_true(ret == Z_OK || ret == Z_STREAM_END || ret == Z_BUF_ERROR);
      g_byte_array_append(arr, buf, (guint) (block - zs.avail_out));
    } while (zs.avail_out == 0 || (flush == Z_FINISH && ret != Z_STREAM_END));
  }
  deflateEnd(&zs);
  g_autoptr(GBytes) bomb = g_byte_array_free_to_bytes(arr);
  assert_true(g_bytes_get_size(bomb) < 8u * 1024 * 1024);

  long rss_before = test_max_rss_kib();
  gint64 t0 = g_get_monotonic_time();
  test_decode_fails(bomb, TEST_CAP, DECODE_ERROR_TOO_LARGE, "67108864");
  gint64 elapsed = g_get_monotonic_time() - t0;
  long rss_after = test_max_rss_kib();
  print_message("bomb: %zu compressed bytes, stopped in %.3f s, peak RSS +%ld KiB\n",
                g_bytes_get_size(bomb), (double) elapsed / 1e6, rss_after - rss_before);
  /* Inflating the whole GiB would take far longer and hold 1 GiB. */
  assert_true(elapsed < 10 * G_USEC_PER_SEC);
  assert_true(rss_after - rss_before < 4L * (long) (TEST_CAP / 1024));
}

/* ---- zip ------------------------------------------------------------------ */

static void
test_zip_stored_and_deflated(void **state)
{
  gsize n = strlen(test_json);
  for (guint method = 0; method <= 8; method += 8) {
    GByteArray *a = g_byte_array_new();
    test_zip_entry(a, "report.json", test_json, n, method, 0, 0);
    g_autoptr(GBytes) zip = test_zip_finish(a);
    g_autoptr(GBytes) out = test_decode_ok(zip, TEST_CAP, DECODE_FORMAT_ZIP);
    test_assert_bytes_equal(out, test_json, n);
  }
}

static void
test_zip_picks_json_entry(void **state)
{
  static const char readme[] = "not the report";
  gsize n = strlen(test_json);
  GByteArray *a = g_byte_array_new();
  test_zip_entry(a, "README.txt", readme, sizeof readme - 1, 8, 0, 0);
  test_zip_entry(a, "dir/Report.JSON", test_json, n, 0, 0, 0);
  test_zip_entry(a, "other.json", "{}", 2, 0, 0, 0);
  g_autoptr(GBytes) zip = test_zip_finish(a);
  g_autoptr(GBytes) out = test_decode_ok(zip, TEST_CAP, DECODE_FORMAT_ZIP);
  test_assert_bytes_equal(out, test_json, n);
}

static void
test_zip_first_entry_fallback(void **state)
{
  gsize n = strlen(test_json);
  GByteArray *a = g_byte_array_new();
  test_zip_entry(a, "report.txt", test_json, n, 8, 0, 0);
  test_zip_entry(a, "second.bin", "{\"x\":1}", 7, 0, 0, 0);
  g_autoptr(GBytes) zip = test_zip_finish(a);
  g_autoptr(GBytes) out = test_decode_ok(zip, TEST_CAP, DECODE_FORMAT_ZIP);
  test_assert_bytes_equal(out, test_json, n);
}

static void
test_zip_data_descriptor(void **state)
{
  gsize n = strlen(test_json);
  GByteArray *a = g_byte_array_new();
  test_zip_entry(a, "first.txt", "hello", 5, 8, 8, 0);
  test_zip_entry(a, "report.json", test_json, n, 8, 8, 0);
  g_autoptr(GBytes) zip = test_zip_finish(a);
  g_autoptr(GBytes) out = test_decode_ok(zip, TEST_CAP, DECODE_FORMAT_ZIP);
  test_assert_bytes_equal(out, test_json, n);

  /* A descriptor with a wrong CRC fails. */
  GByteArray *b = g_byte_array_new();
  test_zip_entry(b, "report.json", test_json, n, 8, 8, 0x1);
  g_autoptr(GBytes) bad = test_zip_finish(b);
  test_decode_fails(bad, TEST_CAP, DECODE_ERROR_ZIP, "CRC");
}

static void
test_zip_fixtures(void **state)
{
  g_autoptr(GBytes) z1 = tu_fixture("synthetic/report-deflated.zip");
  g_autoptr(GBytes) o1 = test_decode_ok(z1, TEST_CAP, DECODE_FORMAT_ZIP);
  g_autoptr(GBytes) z2 = tu_fixture("synthetic/report-descriptor.zip");
  g_autoptr(GBytes) o2 = test_decode_ok(z2, TEST_CAP, DECODE_FORMAT_ZIP);
  const char *orgs[] = { "Zip Org", "Descriptor Org" };
  GBytes *outs[] = { o1, o2 };
  for (guint i = 0; i < 2; i++) {
    g_autofree char *s = g_strndup(g_bytes_get_data(outs[i], NULL), g_bytes_get_size(outs[i]));
    assert_int_equal(strlen(s), g_bytes_get_size(outs[i]));
    g_autoptr(TrJson) j = json_tokener_parse(s);
    assert_non_null(j);
    struct json_object *org = NULL;
    assert_true(json_object_object_get_ex(j, "organization-name", &org));
    assert_string_equal(json_object_get_string(org), orgs[i]);
  }
}

static void
test_zip_bad_crc(void **state)
{
  gsize n = strlen(test_json);
  for (guint method = 0; method <= 8; method += 8) {
    GByteArray *a = g_byte_array_new();
    test_zip_entry(a, "report.json", test_json, n, method, 0, 0x80000000u);
    g_autoptr(GBytes) zip = test_zip_finish(a);
    test_decode_fails(zip, TEST_CAP, DECODE_ERROR_ZIP, "CRC mismatch");
  }
}

static void
test_zip_broken(void **state)
{
  gsize n = strlen(test_json);
  GByteArray *a = g_byte_array_new();
  test_zip_entry(a, "report.json", test_json, n, 8, 0, 0);
  g_autoptr(GBytes) zip = test_zip_finish(a);
  gsize len = g_bytes_get_size(zip);
  /* Every cut inside the entry fails with a zip error (the EOCD is 22 bytes). */
  for (gsize cut = 4; cut < len - 22; cut++) {
    g_autoptr(GBytes) part = g_bytes_new_from_bytes(zip, 0, cut);
    test_decode_fails(part, TEST_CAP, DECODE_ERROR_ZIP, NULL);
  }

  GByteArray *m = g_byte_array_new();
  test_zip_entry(m, "report.json", test_json, n, 0, 0, 0);
  m->data[8] = 14;   /* LZMA */
  g_autoptr(GBytes) lzma = test_zip_finish(m);
  test_decode_fails(lzma, TEST_CAP, DECODE_ERROR_ZIP, "unsupported compression method 14");

  GByteArray *e = g_byte_array_new();
  test_zip_entry(e, "report.json", test_json, n, 0, 1, 0);
  g_autoptr(GBytes) enc = test_zip_finish(e);
  test_decode_fails(enc, TEST_CAP, DECODE_ERROR_ZIP, "encrypted");

  GByteArray *s = g_byte_array_new();
  test_zip_entry(s, "report.json", test_json, n, 0, 8, 0);
  g_autoptr(GBytes) stored_desc = test_zip_finish(s);
  test_decode_fails(stored_desc, TEST_CAP, DECODE_ERROR_ZIP, "data descriptor");
}

static void
test_zip_cap_and_not_json(void **state)
{
  gsize n = strlen(test_json);
  for (guint method = 0; method <= 8; method += 8) {
    GByteArray *a = g_byte_array_new();
    test_zip_entry(a, "report.json", test_json, n, method, 0, 0);
    g_autoptr(GBytes) zip = test_zip_finish(a);
    g_autoptr(GBytes) ok = test_decode_ok(zip, n, DECODE_FORMAT_ZIP);
    test_assert_bytes_equal(ok, test_json, n);
    test_decode_fails(zip, n - 1, DECODE_ERROR_TOO_LARGE, "max-report-size");
  }
  GByteArray *t = g_byte_array_new();
  test_zip_entry(t, "report.json", "plain words", 11, 8, 0, 0);
  g_autoptr(GBytes) text = test_zip_finish(t);
  test_decode_fails(text, TEST_CAP, DECODE_ERROR_NOT_JSON, "zip content is not JSON");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_extension),
    cmocka_unit_test(test_json_as_is),
    cmocka_unit_test(test_json_bom_and_space),
    cmocka_unit_test(test_not_json),
    cmocka_unit_test(test_json_over_cap),
    cmocka_unit_test(test_gzip_whole_vs_bytewise),
    cmocka_unit_test(test_gzip_bad_crc),
    cmocka_unit_test(test_gzip_bad_isize),
    cmocka_unit_test(test_gzip_bad_data),
    cmocka_unit_test(test_gzip_truncated),
    cmocka_unit_test(test_gzip_empty_stream),
    cmocka_unit_test(test_gzip_trailing_bytes),
    cmocka_unit_test(test_gzip_concatenated),
    cmocka_unit_test(test_gzip_fname_header),
    cmocka_unit_test(test_gzip_rpt01_fname),
    cmocka_unit_test(test_gzip_not_json),
    cmocka_unit_test(test_gzip_cap_boundary),
    cmocka_unit_test(test_gzip_sticky_error),
    cmocka_unit_test(test_gzip_bomb),
    cmocka_unit_test(test_zip_stored_and_deflated),
    cmocka_unit_test(test_zip_picks_json_entry),
    cmocka_unit_test(test_zip_first_entry_fallback),
    cmocka_unit_test(test_zip_data_descriptor),
    cmocka_unit_test(test_zip_fixtures),
    cmocka_unit_test(test_zip_bad_crc),
    cmocka_unit_test(test_zip_broken),
    cmocka_unit_test(test_zip_cap_and_not_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
