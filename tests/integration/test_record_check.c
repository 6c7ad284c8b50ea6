/* test_record.c - `tlsrpt-ingest record check` against a real DNS server (unbound with
 * auth-zones, two of them DNSSEC-signed with ldns-signzone, one tampered with) and a
 * real HTTPS server (nginx, a test CA) on 127.0.0.1, started once for the group by
 * tests/record/servers.sh on free ports. Needs the Debian packages unbound, ldnsutils,
 * nginx-light and openssl: without them the tests fail, they are not skipped. */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  char *dir;
  char *ns;                   /* 127.0.0.1:PORT */
  char *port_https;
  char *cacert;
  char *anchors;
} Servers;

static Servers srv;

static void
servers_script(const char *cmd, const char *a1, const char *a2)
{
  const char *args[] = { cmd, srv.dir, a1, a2, NULL };
  tu_run_script("tests/record/servers.sh", args);
}

static int
group_setup(void **state)
{
  srv.dir = tu_mkdtemp();
  int dns = tu_free_port(TRUE), https = tu_free_port(TRUE);
  while (https == dns)
    https = tu_free_port(TRUE);
  srv.ns = g_strdup_printf("127.0.0.1:%d", dns);
  srv.port_https = g_strdup_printf("%d", https);
  srv.cacert = g_build_filename(srv.dir, "ca.pem", NULL);
  srv.anchors = g_build_filename(srv.dir, "anchors.ds", NULL);
  g_autofree char *p1 = g_strdup_printf("%d", dns);
  servers_script("start", p1, srv.port_https);
  if (!tu_wait_port(dns, TRUE, 10000) || !tu_wait_port(https, TRUE, 10000))
    fail_msg("unbound (%d) or nginx (%d) did not listen within 10 s", dns, https);
  return 0;
}

static int
group_teardown(void **state)
{
  servers_script("stop", NULL, NULL);
  tu_rmtree(srv.dir);
  g_free(srv.dir);
  g_free(srv.ns);
  g_free(srv.port_https);
  g_free(srv.cacert);
  g_free(srv.anchors);
  return 0;
}

/* Run `record check DOMAIN` against the servers (@extra: one more option, nullable). */
static int
check(const char *domain, const char *extra, char **out)
{
  const char *argv[] = { "record", "check", "--nameserver", srv.ns, "--cacert", srv.cacert,
                         "--mta-sts-port", srv.port_https, "--trust-anchor", srv.anchors,
                         "--timeout", "5", extra ? extra : domain, extra ? domain : NULL,
                         NULL };
  g_autofree char *err = NULL;
  int rc = tu_run(argv, NULL, out, &err);
  if (err != NULL && err[0] != '\0')
    print_message("stderr: %s\n", err);
  return rc;
}

typedef struct {
  const char *domain;
  int exit;
  const char *want[4];        /* substrings of the output, in order */
  const char *not_want;       /* nullable */
} CheckCase;

static const CheckCase cases[] = {
  { "good.example", 0,
    { "found: _smtp._tls.good.example TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@good.example\"",
      "policy: mode enforce, max_age 604800, mx mx1.good.example, *.good.example",
      "MX mx2.good.example matches mx: *.good.example", "good.example: ok (0 errors" },
    "error:" },
  /* TLS-RPT */
  { "missing.example", 1, { "error: no TLS-RPT record at _smtp._tls.missing.example",
                            "fix: publish one: tlsrpt-ingest record generate" }, NULL },
  { "apex.example", 1, { "a TLS-RPT record at apex.example itself",
                         "fix: move it to _smtp._tls.apex.example" }, NULL },
  { "two.example", 1, { "2 TLS-RPT records: receivers ignore both" }, NULL },
  { "wrongver.example", 1, { "does not begin with v=TLSRPTv1 exactly", "an unknown version" },
    NULL },
  { "nosemi.example", 1, { "byte 12: a ';' is missing before this field" }, NULL },
  { "multi.example", 0, { "TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@multi.example\" (2 "
                          "character-strings, joined without spaces)",
                          "valid, 1 destination" }, "error:" },
  { "baduri.example", 1, { "byte 17: an e-mail address without mailto:",
                           "fix: write mailto: before the address" }, NULL },
  { "spf.example", 0, { "note: an SPF record at _smtp._tls.spf.example: senders ignore it" },
    "error:" },
  { "dup.example", 0, { "warning: the record, byte 38: the same destination twice" },
    "error:" },
  { "extauth.example", 0,
    { "extauth.example._report._tls.reports.example authorizes the destination" },
    "warning:" },
  { "extnoauth.example", 0,
    { "warning: the destination in reports.example is not authorized by "
      "extnoauth.example._report._tls.reports.example", "not an RFC 8460 requirement" },
    "error:" },
  { "hostile.example", 1, { "hostile.example\\x1b[31m\\x07\"" }, "\x1b" },
  /* MTA-STS */
  { "stsnone.example", 0, { "note: no MTA-STS record" }, "error:" },
  { "ststwo.example", 1, { "2 MTA-STS records: senders ignore both" }, NULL },
  { "sts404.example", 1, { "HTTP status 404, not 200 (sts-policy-fetch-error)" }, NULL },
  { "stsbad.example", 1, { "the policy, line 2: an unknown mode",
                           "senders treat an invalid policy as none (sts-policy-invalid)" },
    NULL },
  { "stswrongcert.example", 1, { "the certificate is not valid (sts-webpki-invalid)" }, NULL },
  { "stsuncovered.example", 1,
    { "MX mx.stsuncovered.example matches mx: mx.stsuncovered.example",
      "error: MX backup.stsuncovered.example matches no mx: pattern: senders in enforce mode "
      "do not deliver to it", "fix: add the line 'mx: backup.stsuncovered.example'" },
    NULL },
  { "stsredirect.example", 1, { "a redirect (HTTP 301); senders do not follow redirects" },
    NULL },
  { "ststype.example", 1, { "Content-Type text/html, not text/plain" }, NULL },
  /* DANE */
  { "tlsa.example", 0,
    { "1 TLSA record at _25._tcp.mx.tlsa.example, not DNSSEC-secure",
      "warning: the TLSA records of mx.tlsa.example are not DNSSEC-secure",
      "warning: _smtp._tls.mx.tlsa.example: no TLS-RPT record" },
    "error:" },
  { "secure.example", 0,
    { "1 TLSA record at _25._tcp.mx.secure.example, DNSSEC-secure",
      "DANE is usable for mx.secure.example",
      "found: _smtp._tls.mx.secure.example TXT" },
    "warning:" },
  { "bogus.example", 1,
    { "DNSSEC validation of _smtp._tls.bogus.example TXT failed (dnssec-invalid)" }, NULL },
};

static void
test_check_cases(void **state)
{
  guint bad = 0;
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    const CheckCase *c = &cases[i];
    g_autofree char *out = NULL;
    int rc = check(c->domain, NULL, &out);
    gboolean ok = rc == c->exit;
    const char *at = out;
    for (gsize k = 0; ok && k < G_N_ELEMENTS(c->want) && c->want[k] != NULL; k++) {
      const char *hit = strstr(at, c->want[k]);
      if (hit == NULL) {
        print_message("%s: missing (in order): %s\n", c->domain, c->want[k]);
        ok = FALSE;
      } else {
        at = hit + strlen(c->want[k]);
      }
    }
    if (ok && c->not_want != NULL && strstr(out, c->not_want) != NULL) {
      print_message("%s: unexpected: %s\n", c->domain, c->not_want);
      ok = FALSE;
    }
    if (!ok) {
      print_message("%s: exit %d (want %d):\n%s\n", c->domain, rc, c->exit, out);
      bad++;
    }
  }
  assert_int_equal(bad, 0);
}

/* Without the trust anchors nothing is secure: DANE is not usable, and the check says
 * why. The bogus zone then just looks unsigned. */
static void
test_check_without_trust_anchor(void **state)
{
  const char *argv[] = { "record", "check", "--nameserver", srv.ns, "--timeout", "5",
                         "secure.example", NULL };
  g_autofree char *out = NULL, *err = NULL;
  int rc = tu_run(argv, NULL, &out, &err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "not DNSSEC-secure"));
  if (g_file_test("/usr/share/dns/root.key", G_FILE_TEST_EXISTS) ||
      g_file_test("/var/lib/unbound/root.key", G_FILE_TEST_EXISTS))
    return;
  assert_non_null(strstr(out, "no DNSSEC trust anchor"));
}

static void
test_check_json(void **state)
{
  g_autofree char *out = NULL;
  int rc = check("stsuncovered.example", "--format=json", &out);
  assert_int_equal(rc, 1);
  assert_non_null(strstr(out, "\"verdict\":\"problems found\""));
  assert_non_null(strstr(out, "\"part\":\"MTA-STS\""));
  assert_non_null(strstr(out, "matches no mx: pattern"));
}

/* No server on the port: a lookup failure, exit 2, quickly (one timeout, not one per
 * lookup). */
static void
test_check_lookup_failure(void **state)
{
  int port = tu_free_port(FALSE);
  g_autofree char *ns = g_strdup_printf("127.0.0.1:%d", port);
  const char *argv[] = { "record", "check", "--nameserver", ns, "--timeout", "1",
                         "good.example", NULL };
  g_autofree char *out = NULL, *err = NULL;
  gint64 t0 = g_get_monotonic_time();
  int rc = tu_run(argv, NULL, &out, &err);
  gint64 ms = (g_get_monotonic_time() - t0) / 1000;
  assert_int_equal(rc, 2);
  assert_non_null(strstr(out, "lookup failed: _smtp._tls.good.example TXT: no answer within 1 s"));
  assert_non_null(strstr(out, "good.example: lookup failed"));
  assert_true(ms < 4000);
}

static void
test_check_usage(void **state)
{
  const char *bad_ns[] = { "record", "check", "--nameserver", "not-an-ip", "good.example", NULL };
  g_autofree char *out = NULL, *err = NULL;
  assert_int_equal(tu_run(bad_ns, NULL, &out, &err), 2);
  assert_non_null(strstr(err, "--nameserver takes IP"));
  const char *bad_domain[] = { "record", "check", "not a domain", NULL };
  g_free(err);
  err = NULL;
  assert_int_equal(tu_run(bad_domain, NULL, NULL, &err), 2);
  assert_non_null(strstr(err, "is not a domain name"));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_check_cases),
    cmocka_unit_test(test_check_without_trust_anchor),
    cmocka_unit_test(test_check_json),
    cmocka_unit_test(test_check_lookup_failure),
    cmocka_unit_test(test_check_usage),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
