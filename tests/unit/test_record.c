/* test_record.c - the TLS-RPT record parser (RFC 8460 §3) on a table of good and bad
 * records, each bad one with its expected message and byte position; rua destinations;
 * record generate (encoding, splitting, zone line); the MTA-STS TXT record and policy
 * parser (RFC 8461 §3) and mx: pattern matching (§4.1). */
#include "record.h"
#include "testutil.h"

#include <string.h>

typedef struct {
  const char *record;
  gboolean valid;
  const char *message;        /* a substring of the first problem of @severity, or NULL */
  gsize pos;                  /* its 0-based position (RECORD_NO_POS: whole record) */
  RecordSeverity severity;
  guint rua;                  /* destinations found */
} TlsrptCase;

#define NOPOS RECORD_NO_POS
static const TlsrptCase tlsrpt_cases[] = {
  /* The published examples (RFC 8460 §3 and the issue). */
  { "v=TLSRPTv1; rua=mailto:tlsrpt@example.com", TRUE, NULL, 0, 0, 1 },
  { "v=TLSRPTv1;rua=mailto:reports@example.com", TRUE, NULL, 0, 0, 1 },
  { "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", TRUE, NULL, 0, 0, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com,https://x.example/r", TRUE, NULL, 0, 0, 2 },
  { "v=TLSRPTv1; rua=mailto:a@example.com , https://x.example/r;", TRUE, NULL, 0, 0, 2 },
  { "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net", TRUE, NULL, 0, 0, 1 },
  { "v=TLSRPTv1 ;\trua=mailto:a@example.com ; ", TRUE, NULL, 0, 0, 1 },
  { "v=TLSRPTv1; rua=https://r.example:8443/a%2Cb?x=1", TRUE, NULL, 0, 0, 1 },
  { "v=TLSRPTv1; rua=mailto:a%2Bb@example.com", TRUE, NULL, 0, 0, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com; ext=1", TRUE, "unknown field", 38, RECORD_NOTE, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com,mailto:a@example.com", TRUE, "same destination twice",
    37, RECORD_WARNING, 2 },
  { "v=TLSRPTv1; rua=MAILTO:a@example.com", TRUE, "upper-case scheme", 16, RECORD_WARNING, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com?subject=x", TRUE, "header fields", 36, RECORD_NOTE, 1 },
  /* Bad ones. */
  { "", FALSE, "empty", NOPOS, RECORD_ERROR, 0 },
  { "v=tlsrptv1; rua=mailto:a@example.com", FALSE, "case-sensitive", 0, RECORD_ERROR, 1 },
  { "v=TLSRPTv2; rua=mailto:a@example.com", FALSE, "unknown version", 0, RECORD_ERROR, 1 },
  { "v=TLSRPTv1 rua=mailto:a@example.com", FALSE, "';' is missing", 11, RECORD_ERROR, 1 },
  { "v=TLSRPTv1", FALSE, "no rua", NOPOS, RECORD_ERROR, 0 },
  { "v=TLSRPTv1;", FALSE, "no rua", NOPOS, RECORD_ERROR, 0 },
  { "v=TLSRPTv1; rua=", FALSE, "empty destination", 16, RECORD_ERROR, 0 },
  { "v=TLSRPTv1; rua=tlsrpt@example.com", FALSE, "without mailto:", 16, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=reports.example.com/tlsrpt", FALSE, "not a URI", 16, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=http://r.example/x", FALSE, "http:", 16, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=ftp://r.example/x", FALSE, "only mailto: and https:", 16, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=https://u:p@r.example/x", FALSE, "user name", 24, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=https://r.example/x#frag", FALSE, "fragment", 35, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=https:///x", FALSE, "no host", 24, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=https:r.example", FALSE, "'//'", 22, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=https://r.example:99999/", FALSE, "port", 33, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=https://r_x.example/", FALSE, "not a host name", 24, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com!10m", FALSE, "'!'", 36, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:example.com", FALSE, "no '@'", 23, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:@example.com", FALSE, "dot-atom", 23, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a..b@example.com", FALSE, "dot-atom", 23, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a@ex_ample.com", FALSE, "not a host name", 25, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a%4@example.com", FALSE, "percent-escape", 24, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com mailto:b@example.com", FALSE, "commas", 37,
    RECORD_ERROR, 2 },
  { "v=TLSRPTv1; rua=mailto:a@example.com,,mailto:b@example.com", FALSE, "empty destination",
    37, RECORD_ERROR, 2 },
  { "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", FALSE, "second rua",
    38, RECORD_ERROR, 2 },
  { "v=TLSRPTv1; RUA=mailto:a@example.com", FALSE, "case-sensitive", 12, RECORD_ERROR, 1 },
  { "v=TLSRPTv1;; rua=mailto:a@example.com", FALSE, "(;;)", 11, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com ", FALSE, "white space at the end", 36,
    RECORD_ERROR, 1 },
  { " v=TLSRPTv1; rua=mailto:a@example.com", FALSE, "white space before", 0, RECORD_ERROR, 1 },
  { "rua=mailto:a@example.com", FALSE, "does not begin", 0, RECORD_ERROR, 1 },
  { "rua=mailto:a@example.com; v=TLSRPTv1", FALSE, "does not begin", 0, RECORD_ERROR, 1 },
  { "v=spf1 include:_spf.example.com -all", FALSE, "SPF record", 0, RECORD_ERROR, 0 },
  { "v=STSv1; id=20260101", FALSE, "MTA-STS record", 0, RECORD_ERROR, 0 },
  { "v=TLSRPTv1; rua=mailto:a@example.com; bad", FALSE, "without '='", 38, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com; _x=1", FALSE, "malformed field name", 38,
    RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com; x=a=b", FALSE, "no '='", 41, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com; x=", FALSE, "empty value", 40, RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a@example.com\x01", FALSE, "control or non-ASCII", 36,
    RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:\xc3\xa9@example.com", FALSE, "control or non-ASCII", 23,
    RECORD_ERROR, 1 },
  { "v=TLSRPTv1; rua=mailto:a\"b@example.com", FALSE, "percent-encoded", 24, RECORD_ERROR, 1 },
  { "v=TLSRPTv1x; rua=mailto:a@example.com", FALSE, "followed by other text", 10,
    RECORD_ERROR, 1 },
};

/* The first problem of @sev whose message holds @message (NULL: any). */
static const RecordProblem *
first_of(const GPtrArray *problems, RecordSeverity sev, const char *message)
{
  for (guint i = 0; i < problems->len; i++) {
    const RecordProblem *pr = g_ptr_array_index(problems, i);
    if (pr->severity == sev && (message == NULL || strstr(pr->message, message) != NULL))
      return pr;
  }
  return NULL;
}

static void
dump(const char *what, const GPtrArray *problems)
{
  for (guint i = 0; i < problems->len; i++) {
    const RecordProblem *pr = g_ptr_array_index(problems, i);
    print_message("  %s: [%d] pos %zd: %s\n", what, pr->severity,
                  pr->pos == RECORD_NO_POS ? (gssize) -1 : (gssize) pr->pos, pr->message);
  }
}

static void
test_tlsrpt_table(void **state)
{
  guint bad = 0;
  for (gsize i = 0; i < G_N_ELEMENTS(tlsrpt_cases); i++) {
    const TlsrptCase *c = &tlsrpt_cases[i];
    g_autoptr(RecordTlsrpt) rec = record_tlsrpt_parse(c->record, strlen(c->record));
    gboolean ok = record_ok(rec->problems);
    const RecordProblem *pr = c->message ? first_of(rec->problems, c->severity, c->message) : NULL;
    gboolean good = ok == c->valid && rec->rua->len == c->rua &&
                    (c->message == NULL ? c->valid ? rec->problems->len == 0 : TRUE
                                        : pr != NULL && strstr(pr->message, c->message) &&
                                              pr->pos == c->pos);
    if (!good) {
      print_message("case %zu: '%s': valid=%d rua=%u\n", i, c->record, ok, rec->rua->len);
      dump("got", rec->problems);
      bad++;
    }
    /* Every problem has a message; a positional one points into the record. */
    for (guint k = 0; k < rec->problems->len; k++) {
      const RecordProblem *p = g_ptr_array_index(rec->problems, k);
      assert_non_null(p->message);
      assert_true(p->pos == RECORD_NO_POS || p->pos <= strlen(c->record));
    }
  }
  assert_int_equal(bad, 0);
}

static void
test_tlsrpt_discovery_prefix(void **state)
{
  /* "begins with v=TLSRPTv1" decides which TXT records count (§3). */
  g_autoptr(RecordTlsrpt) a = record_tlsrpt_parse("v=TLSRPTv1 rua=x", 16);
  assert_true(a->is_tlsrpt);
  g_autoptr(RecordTlsrpt) b = record_tlsrpt_parse("v=tlsrptv1; rua=mailto:a@b.example", 34);
  assert_false(b->is_tlsrpt);
  g_autoptr(RecordTlsrpt) c = record_tlsrpt_parse("v=spf1 -all", 11);
  assert_false(c->is_tlsrpt);
}

static void
test_tlsrpt_rua_domains(void **state)
{
  const char *v = "v=TLSRPTv1; rua=mailto:Tls@Reports.Example.NET,https://R.example:443/x";
  g_autoptr(RecordTlsrpt) rec = record_tlsrpt_parse(v, strlen(v));
  assert_true(record_ok(rec->problems));
  assert_int_equal(rec->rua->len, 2);
  RecordRua *m = g_ptr_array_index(rec->rua, 0), *h = g_ptr_array_index(rec->rua, 1);
  assert_true(m->mailto);
  assert_string_equal(m->domain, "reports.example.net");
  assert_int_equal(m->pos, 16);
  assert_false(h->mailto);
  assert_string_equal(h->domain, "r.example");
  assert_true(record_domain_within("mx1.Example.com.", "example.com"));
  assert_true(record_domain_within("example.com", "EXAMPLE.com."));
  assert_false(record_domain_within("badexample.com", "example.com"));
  assert_false(record_domain_within("example.com", "mx.example.com"));
}

/* Every prefix of every case parses without crashing and keeps positions in range:
 * the parser never reads past the length (the bytes after it are poison). */
static void
test_tlsrpt_prefixes(void **state)
{
  for (gsize i = 0; i < G_N_ELEMENTS(tlsrpt_cases); i++) {
    const char *r = tlsrpt_cases[i].record;
    gsize n = strlen(r);
    for (gsize k = 0; k <= n; k++) {
      char *copy = g_malloc(k + 1);
      memcpy(copy, r, k);
      copy[k] = ';';
      g_autoptr(RecordTlsrpt) rec = record_tlsrpt_parse(copy, k);
      for (guint j = 0; j < rec->problems->len; j++) {
        const RecordProblem *p = g_ptr_array_index(rec->problems, j);
        assert_true(p->pos == RECORD_NO_POS || p->pos <= k);
      }
      g_free(copy);
    }
  }
}

static void
test_generate(void **state)
{
  g_autoptr(GError) error = NULL;
  const char *rua[] = { "mailto:tlsrpt@example.com", "https://r.example.net/a,b;c!d", NULL };
  g_autoptr(RecordGenerated) gen = record_generate("Example.COM.", rua, &error);
  assert_non_null(gen);
  assert_string_equal(gen->domain, "example.com");
  assert_string_equal(gen->owner, "_smtp._tls.example.com.");
  assert_string_equal(gen->value, "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,"
                                  "https://r.example.net/a%2Cb%3Bc%21d");
  assert_int_equal(gen->strings->len, 1);
  assert_string_equal(gen->zone, "_smtp._tls.example.com. 3600 IN TXT \"v=TLSRPTv1; "
                                 "rua=mailto:tlsrpt@example.com,"
                                 "https://r.example.net/a%2Cb%3Bc%21d\"");
  /* IDN domains become A-labels. */
  const char *one[] = { "mailto:a@example.com", NULL };
  g_autoptr(RecordGenerated) idn = record_generate("b\xc3\xbc" "cher.example", one, &error);
  assert_non_null(idn);
  assert_string_equal(idn->domain, "xn--bcher-kva.example");
}

static void
test_generate_long_value_is_split(void **state)
{
  g_autoptr(GPtrArray) rua = g_ptr_array_new_with_free_func(g_free);
  for (int i = 0; i < 12; i++)
    g_ptr_array_add(rua, g_strdup_printf("mailto:tlsrpt-destination-%02d@reports.example.org", i));
  g_ptr_array_add(rua, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(RecordGenerated) gen =
      record_generate("example.com", (const char *const *) rua->pdata, &error);
  assert_non_null(gen);
  gsize len = strlen(gen->value);
  assert_true(len > 510);
  assert_int_equal(gen->strings->len, (len + 254) / 255);
  g_autoptr(GString) joined = g_string_new(NULL);
  for (guint i = 0; i < gen->strings->len; i++) {
    const char *s = g_ptr_array_index(gen->strings, i);
    assert_true(strlen(s) <= 255);
    g_string_append(joined, s);
  }
  assert_string_equal(joined->str, gen->value);
  /* The zone line has as many quoted strings. */
  guint quotes = 0;
  for (const char *c = gen->zone; *c; c++)
    quotes += *c == '"';
  assert_int_equal(quotes, 2 * gen->strings->len);
}

static void
test_generate_refuses(void **state)
{
  struct {
    const char *domain;
    const char *rua;
    const char *message;
  } cases[] = {
    { "example.com", "tlsrpt@example.com", "without mailto:" },
    { "example.com", "http://r.example/x", "http:" },
    { "example.com", "https://u@r.example/x", "user name" },
    { "example.com", "https://r.example/#x", "fragment" },
    { "example.com", "mailto:a b@example.com", "white space" },
    { "not a domain", "mailto:a@example.com", "not a domain name" },
    { "localhost", "mailto:a@example.com", "not a domain name" },
    { "_smtp._tls.example.com", "mailto:a@example.com", "not a domain name" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    const char *rua[] = { cases[i].rua, NULL };
    g_autoptr(RecordGenerated) gen = record_generate(cases[i].domain, rua, &error);
    assert_null(gen);
    assert_true(g_error_matches(error, CLI_ERROR, CLI_ERROR_USAGE));
    if (strstr(error->message, cases[i].message) == NULL)
      fail_msg("case %zu: %s", i, error->message);
  }
  g_autoptr(GError) error = NULL;
  const char *none[] = { NULL };
  assert_null(record_generate("example.com", none, &error));
  const char *twice[] = { "mailto:a@example.com", "mailto:A@example.com", NULL };
  g_clear_error(&error);
  assert_null(record_generate("example.com", twice, &error));
  assert_non_null(strstr(error->message, "twice"));
}

static void
test_zone_rdata_escapes(void **state)
{
  g_autofree char *z = record_zone_rdata("a\"b\\c\x01", 6);
  assert_string_equal(z, "\"a\\\"b\\\\c\\001\"");
  g_autofree char *e = record_zone_rdata("", 0);
  assert_string_equal(e, "\"\"");
}

static void
test_sts_txt(void **state)
{
  struct {
    const char *txt;
    gboolean valid;
    const char *message;
    gsize pos;
  } cases[] = {
    { "v=STSv1; id=20260101T000000", TRUE, NULL, 0 },
    { "v=STSv1;id=1;", TRUE, NULL, 0 },
    { "v=STSv1; id=1; ext=x", TRUE, NULL, 0 },
    { "v=STSv1;", FALSE, "no id=", NOPOS },
    { "v=STSv1; id=", FALSE, "1 to 32", 12 },
    { "v=STSv1; id=2026-01-01", FALSE, "1 to 32", 12 },
    { "v=STSv1; id=123456789012345678901234567890123", FALSE, "1 to 32", 12 },
    { "v=stsv1; id=1", FALSE, "case-sensitive", 0 },
    { "v=STSv1 id=1", FALSE, "';' is missing", 8 },
    { "v=STSv1; id=1; id=2", FALSE, "second id=", 15 },
    { "v=TLSRPTv1; rua=mailto:a@example.com", FALSE, "TLS-RPT record", 0 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(RecordStsTxt) rec = record_sts_txt_parse(cases[i].txt, strlen(cases[i].txt));
    gboolean ok = record_ok(rec->problems);
    const RecordProblem *pr = first_of(rec->problems, RECORD_ERROR, cases[i].message);
    if (ok != cases[i].valid ||
        (cases[i].message != NULL &&
         (pr == NULL || strstr(pr->message, cases[i].message) == NULL ||
          pr->pos != cases[i].pos))) {
      dump("got", rec->problems);
      fail_msg("sts txt case %zu ('%s')", i, cases[i].txt);
    }
  }
  g_autoptr(RecordStsTxt) rec = record_sts_txt_parse("v=STSv1; id=abc", 15);
  assert_true(rec->is_sts);
  assert_string_equal(rec->id, "abc");
}

static void
test_sts_policy(void **state)
{
  const char *good = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
                     "mx: *.Example.net\r\nmax_age: 604800\r\n";
  g_autoptr(RecordStsPolicy) p = record_sts_policy_parse(good, strlen(good));
  if (p->problems->len != 0)
    dump("good", p->problems);
  assert_int_equal(p->problems->len, 0);
  assert_int_equal(p->mode, RECORD_STS_MODE_ENFORCE);
  assert_int_equal(p->max_age, 604800);
  assert_int_equal(p->mx->len, 2);
  assert_string_equal(g_ptr_array_index(p->mx, 1), "*.example.net");
  assert_string_equal(p->version, "STSv1");

  struct {
    const char *text;
    gboolean valid;
    const char *message;
    gsize pos;
  } cases[] = {
    { "version: STSv1\nmode: none\nmax_age: 86400", TRUE, NULL, 0 },
    { "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400\nfoo: bar\n", TRUE, NULL, 0 },
    { "", FALSE, "empty", NOPOS },
    { "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 86400\n", FALSE, "not STSv1", 9 },
    { "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 86400\n", FALSE, "unknown mode",
      21 },
    { "version: STSv1\nmode: enforce\nmax_age: 86400\n", FALSE, "no mx:", NOPOS },
    { "version: STSv1\nmode: enforce\nmx: a.example\n", FALSE, "no max_age", NOPOS },
    { "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n", FALSE,
      "over a year", 52 },
    { "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", FALSE, "1 to 10 digits",
      52 },
    { "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 86400\n", FALSE,
      "mx: pattern", 33 },
    { "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nmode: testing\n", FALSE,
      "second mode", 58 },
    { "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 86400\n", FALSE, "without ':'",
      15 },
    { "version: STSv1\nmode: enforce\x01\nmx: a.example\nmax_age: 86400\n", FALSE,
      "control byte", 28 },
    { "<html><body>Not found</body></html>", FALSE, "without ':'", 0 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(RecordStsPolicy) pol = record_sts_policy_parse(cases[i].text,
                                                             strlen(cases[i].text));
    gboolean ok = record_ok(pol->problems);
    const RecordProblem *pr = first_of(pol->problems, RECORD_ERROR, cases[i].message);
    if (ok != cases[i].valid ||
        (cases[i].message != NULL &&
         (pr == NULL || strstr(pr->message, cases[i].message) == NULL ||
          pr->pos != cases[i].pos))) {
      dump("got", pol->problems);
      fail_msg("policy case %zu", i);
    }
  }
  /* A short max_age is a warning, not an error. */
  const char *shortage = "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 60\n";
  g_autoptr(RecordStsPolicy) s = record_sts_policy_parse(shortage, strlen(shortage));
  assert_true(record_ok(s->problems));
  assert_int_equal(record_worst(s->problems), RECORD_WARNING);
}

static void
test_sts_mx_match(void **state)
{
  assert_true(record_sts_mx_match("mail.example.com", "MAIL.example.com."));
  assert_true(record_sts_mx_match("*.example.com", "mx1.example.com"));
  assert_false(record_sts_mx_match("*.example.com", "a.b.example.com"));
  assert_false(record_sts_mx_match("*.example.com", "example.com"));
  assert_false(record_sts_mx_match("*.example.com", ".example.com"));
  assert_false(record_sts_mx_match("mail.example.com", "mail.example.net"));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tlsrpt_table),
    cmocka_unit_test(test_tlsrpt_discovery_prefix),
    cmocka_unit_test(test_tlsrpt_rua_domains),
    cmocka_unit_test(test_tlsrpt_prefixes),
    cmocka_unit_test(test_generate),
    cmocka_unit_test(test_generate_long_value_is_split),
    cmocka_unit_test(test_generate_refuses),
    cmocka_unit_test(test_zone_rdata_escapes),
    cmocka_unit_test(test_sts_txt),
    cmocka_unit_test(test_sts_policy),
    cmocka_unit_test(test_sts_mx_match),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
