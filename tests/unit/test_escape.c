/* test_escape.c - the escapers of each output context (escape.h). */
#include "testutil.h"
#include "escape.h"

#include <string.h>

/* The terminal form of @len bytes of @s. (transfer full) */
static char *
term(const char *s, gssize len)
{
  GString *out = g_string_new(NULL);
  tr_escape_terminal_append(out, s, len);
  return g_string_free(out, FALSE);
}

static void
assert_term(const char *in, const char *want)
{
  g_autofree char *a = tr_escape_terminal(in);
  assert_string_equal(a, want);
  g_autofree char *b = term(in, -1);
  assert_string_equal(b, want);
}

static void
test_terminal(void **state)
{
  (void) state;
  assert_term("plain ASCII ~!", "plain ASCII ~!");
  assert_term("", "");
  assert_term("back\\slash", "back\\slash");
  assert_term("\x1b]0;pwned\x07\x1b[31mRED", "\\x1b]0;pwned\\x07\\x1b[31mRED");
  assert_term("\x1b[2J\x1b[Hcleared", "\\x1b[2J\\x1b[Hcleared");
  assert_term("a\tb\nc\rd\x7f", "a\\x09b\\x0ac\\x0dd\\x7f");
  /* Printable UTF-8 is kept: Latin, CJK, an emoji (4 bytes). */
  assert_term("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80");
  /* C1 controls (U+009B CSI, U+0085 NEL), bidi override, line separator. */
  assert_term("x\xc2\x9b" "31m", "x\\xc2\\x9b31m");
  assert_term("\xc2\x85\xc2\xa0", "\\xc2\\x85\xc2\xa0");
  assert_term("abc\xe2\x80\xae" "gpj.exe", "abc\\xe2\\x80\\xaegpj.exe");
  assert_term("\xe2\x81\xa6x\xe2\x80\xa8", "\\xe2\\x81\\xa6x\\xe2\\x80\\xa8");
  /* Invalid UTF-8: a lone continuation, a truncated sequence, an overlong '/', a
   * surrogate, a code point past U+10FFFF: each byte on its own. */
  assert_term("\x80", "\\x80");
  assert_term("a\xc3", "a\\xc3");
  assert_term("\xe4\xb8z", "\\xe4\\xb8z");
  assert_term("\xc0\xaf", "\\xc0\\xaf");
  assert_term("\xed\xa0\x80", "\\xed\\xa0\\x80");
  assert_term("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
  assert_term("\xff\xfe", "\\xff\\xfe");
  /* NULL is "". */
  g_autofree char *n = tr_escape_terminal(NULL);
  assert_string_equal(n, "");
}

static void
test_terminal_len(void **state)
{
  (void) state;
  /* With a length: a NUL byte is shown, and the end is the length, not a NUL. */
  g_autofree char *a = term("a\0b", 3);
  assert_string_equal(a, "a\\x00b");
  g_autofree char *b = term("abcdef", 3);
  assert_string_equal(b, "abc");
  /* A valid sequence cut by the length is invalid there. */
  g_autofree char *c = term("\xc3\xa9", 1);
  assert_string_equal(c, "\\xc3");
  /* Appending keeps what is there. */
  GString *out = g_string_new("x=");
  tr_escape_terminal_append(out, "\x1b", -1);
  tr_escape_terminal_append(out, NULL, -1);
  assert_string_equal(out->str, "x=\\x1b");
  g_string_free(out, TRUE);
}

/* Every byte string of length 1 and 2 gives output with no control byte, no DEL and
 * valid UTF-8 with no C1 control: nothing unsafe gets through. */
static void
test_terminal_exhaustive(void **state)
{
  (void) state;
  for (int a = 0; a < 256; a++) {
    for (int b = -1; b < 256; b++) {
      char in[2] = { (char) a, (char) b };
      g_autofree char *out = term(in, b < 0 ? 1 : 2);
      assert_true(g_utf8_validate(out, -1, NULL));
      for (const char *p = out; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        assert_true(c >= 0x20 && c != 0x7f && !(c >= 0x80 && c <= 0x9f));
      }
    }
  }
}

static void
test_html(void **state)
{
  (void) state;
  GString *out = g_string_new(NULL);
  tr_escape_html_append(out, "<script>alert(\"x\" & 'y')</script>");
  assert_string_equal(out->str,
                      "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;");
  g_string_truncate(out, 0);
  tr_escape_html_append(out, "\" onmouseover=\"x");
  assert_string_equal(out->str, "&quot; onmouseover=&quot;x");
  g_string_truncate(out, 0);
  tr_escape_html_append(out, "caf\xc3\xa9\x1b[31m\n\xff\xe2\x80\xae");
  assert_string_equal(out->str, "caf\xc3\xa9\\x1b[31m\\x0a\\xff\\xe2\\x80\\xae");
  g_string_truncate(out, 0);
  tr_escape_html_append(out, NULL);
  tr_escape_html_append(out, "&amp;");
  assert_string_equal(out->str, "&amp;amp;");
  g_string_free(out, TRUE);
}

static void
test_prom_label(void **state)
{
  (void) state;
  GString *out = g_string_new(NULL);
  tr_escape_prom_label_append(out, "a\\b\"c\nd");
  assert_string_equal(out->str, "a\\\\b\\\"c\\nd");
  g_string_truncate(out, 0);
  /* Other controls as the literal text \xNN (\\xNN), the only escapes being \\ \" \n. */
  tr_escape_prom_label_append(out, "\x1b[2J\r\t\x7f\xc2\x9b\xff caf\xc3\xa9");
  assert_string_equal(out->str,
                      "\\\\x1b[2J\\\\x0d\\\\x09\\\\x7f\\\\xc2\\\\x9b\\\\xff caf\xc3\xa9");
  /* Whatever the input, a backslash in the output starts \\, \" or \n. */
  for (const char *p = out->str; *p; p++) {
    if (*p == '\\') {
      assert_true(p[1] == '\\' || p[1] == '"' || p[1] == 'n');
      p++;
    }
    assert_true(*p != '"' || p[-1] == '\\');
  }
  g_string_truncate(out, 0);
  tr_escape_prom_label_append(out, NULL);
  assert_string_equal(out->str, "");
  g_string_free(out, TRUE);
}

/* The CSV field for @in; *changed says whether it was neutralized. (transfer full) */
static char *
cell(const char *in, gboolean raw, gboolean *changed)
{
  GString *out = g_string_new(NULL);
  *changed = tr_csv_cell_append(out, in, raw);
  return g_string_free(out, FALSE);
}

static void
assert_cell(const char *in, gboolean raw, const char *want, gboolean want_changed)
{
  gboolean changed;
  g_autofree char *c = cell(in, raw, &changed);
  assert_string_equal(c, want);
  assert_int_equal(changed, want_changed);
  if (!raw)
    assert_int_equal(tr_csv_cell_check(in) != 0, want_changed);
}

static void
test_csv(void **state)
{
  (void) state;
  /* Plain values: as before (quoted when needed), unchanged. */
  assert_cell("mail.example", FALSE, "mail.example", FALSE);
  assert_cell("", FALSE, "", FALSE);
  assert_cell(NULL, FALSE, "", FALSE);
  assert_cell("a,b", FALSE, "\"a,b\"", FALSE);
  assert_cell("say \"hi\"", FALSE, "\"say \"\"hi\"\"\"", FALSE);
  assert_cell(" pad", FALSE, "\" pad\"", FALSE);
  assert_cell("caf\xc3\xa9", FALSE, "caf\xc3\xa9", FALSE);
  assert_cell("a\tb", FALSE, "a\tb", FALSE);      /* TAB inside is kept */
  assert_cell("1-2", FALSE, "1-2", FALSE);
  /* Formula-like: the OWASP prefix. */
  assert_cell("=HYPERLINK(\"http://evil.example/\",\"x\")", FALSE,
              "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"x\"\")\"", TRUE);
  assert_cell("@SUM(1+1)", FALSE, "'@SUM(1+1)", TRUE);
  assert_cell("+cmd|' /C calc'!A0", FALSE, "'+cmd|' /C calc'!A0", TRUE);
  assert_cell("-1", FALSE, "'-1", TRUE);
  assert_cell("\tx", FALSE, "'\tx", TRUE);
  assert_cell("\rx", FALSE, "'\\x0dx", TRUE);
  /* Control bytes replaced; LF and CR too, so a row is one line. */
  assert_cell("\x1b[2J\x1b[Hcleared", FALSE, "\\x1b[2J\\x1b[Hcleared", TRUE);
  assert_cell("a\nb\r\n", FALSE, "a\\x0ab\\x0d\\x0a", TRUE);
  assert_cell("x\x7f\xc2\x9b\xff", FALSE, "x\\x7f\\xc2\\x9b\\xff", TRUE);
  assert_cell("=x\x07", FALSE, "'=x\\x07", TRUE);
  assert_int_equal(tr_csv_cell_check("=x\x07"), TR_CSV_FORMULA | TR_CSV_CONTROL);
  assert_int_equal(tr_csv_cell_check("=x"), TR_CSV_FORMULA);
  assert_int_equal(tr_csv_cell_check("x\x07"), TR_CSV_CONTROL);
  /* Raw: exact values, quoted as RFC 4180 wants, never changed. */
  assert_cell("@SUM(1+1)", TRUE, "@SUM(1+1)", FALSE);
  assert_cell("=a,\x1b", TRUE, "\"=a,\x1b\"", FALSE);
  assert_cell("a\nb", TRUE, "\"a\nb\"", FALSE);
  assert_cell("\x1b[2J", TRUE, "\x1b[2J", FALSE);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_terminal),
    cmocka_unit_test(test_terminal_len),
    cmocka_unit_test(test_terminal_exhaustive),
    cmocka_unit_test(test_html),
    cmocka_unit_test(test_prom_label),
    cmocka_unit_test(test_csv),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
