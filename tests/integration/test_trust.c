/* test_trust.c - the trust verdict end to end, through the binary: keys made by
 * opendkim-genkey (Debian opendkim-tools), messages signed by the test
 * ($TLSRPT_DKIM_SIGN, libopendkim's signer), keys from a --dkim-keys file and from a
 * real DNS server (unbound, started by tests/record/servers.sh on a free port, the zone
 * holding the test's keys), and a loopback UDP socket that never answers (temperror).
 * Every case of docs/trust.md: the verdict in the CSV column, the SQL column and the
 * JSON Lines, --dkim=require's quarantine and tempfail (mda 75, maildir leaves the
 * message in new/), Authentication-Results, --domain, loose files, the real corpus. */
#include "testutil.h"

#include "common.h"
#include "trust-dkim.h"
#include "trust-keys.h"
#include "trust-pkey.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  char *dir;                  /* keys, messages, the DNS server's files */
  char *keys;                 /* the --dkim-keys file */
  char *ns;                   /* 127.0.0.1:PORT of the test DNS server */
  char *silent_ns;            /* 127.0.0.1:PORT of a UDP socket that never answers */
  int silent_fd;
} Fixture;

static Fixture fx;

/* ---- keys and signing ------------------------------------------------------------- */

static void
run_ok(const char *const *argv, const char *in_path, const char *out_path)
{
  g_autofree char *out = NULL, *err = NULL, *in = NULL;
  gsize in_len = 0;
  if (in_path != NULL)
    in = tu_read_file(in_path, &in_len);
  int status = 0;
  g_autoptr(GError) error = NULL;
  GPid pid;
  int in_fd = -1, out_fd = -1, err_fd = -1;
  if (!g_spawn_async_with_pipes(fx.dir, (char **) argv, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                &pid, &in_fd, &out_fd, &err_fd, &error))
    fail_msg("spawn %s: %s", argv[0], error->message);
  if (in != NULL && write(in_fd, in, in_len) != (ssize_t) in_len)
    fail_msg("write to %s", argv[0]);
  close(in_fd);
  GString *o = g_string_new(NULL);
  char buf[8192];
  ssize_t n;
  while ((n = read(out_fd, buf, sizeof buf)) > 0)
    g_string_append_len(o, buf, n);
  close(out_fd);
  GString *e = g_string_new(NULL);
  while ((n = read(err_fd, buf, sizeof buf)) > 0)
    g_string_append_len(e, buf, n);
  close(err_fd);
  waitpid(pid, &status, 0);
  g_spawn_close_pid(pid);
  if (!g_spawn_check_wait_status(status, NULL))
    fail_msg("%s failed: %s", argv[0], e->str);
  if (out_path != NULL)
    tu_write_file(out_path, o->str, o->len);
  g_string_free(o, TRUE);
  g_string_free(e, TRUE);
}

/* opendkim-genkey -d DOMAIN -s SEL [-t TYPE-ish: @services as s=]: returns the TXT
 * record line, its name made absolute. */
static char *
genkey(const char *domain, const char *sel, const char *services)
{
  g_autofree char *kdir = g_build_filename(fx.dir, "keys", domain, NULL);
  g_mkdir_with_parents(kdir, 0700);
  const char *argv[] = { "/usr/sbin/opendkim-genkey", "-b", "1024", "-D", kdir, "-d", domain,
                         "-s", sel, NULL };
  run_ok(argv, NULL, NULL);
  g_autofree char *txt_path = g_strdup_printf("%s/%s.txt", kdir, sel);
  g_autofree char *txt = tu_read_file(txt_path, NULL);
  assert_non_null(txt);
  /* "SEL._domainkey\tIN\tTXT\t( \"v=DKIM1; h=sha256; k=rsa; \" ...": made absolute. */
  const char *rest = strchr(txt, '\t');
  assert_non_null(rest);
  g_autofree char *rec = g_strdup_printf("%s._domainkey.%s. %s", sel, domain, rest + 1);
  if (services != NULL) {
    g_autofree char *with = g_strdup_printf("\"s=%s; v=DKIM1;", services);
    char *v = strstr(rec, "\"v=DKIM1;");
    assert_non_null(v);
    g_autofree char *head = g_strndup(rec, (gsize) (v - rec));
    char *joined = g_strconcat(head, with, v + strlen("\"v=DKIM1;"), NULL);
    g_free(rec);
    rec = joined;
  }
  return g_steal_pointer(&rec);
}

static char *
key_path(const char *domain, const char *sel)
{
  return g_strdup_printf("%s/keys/%s/%s.private", fx.dir, domain, sel);
}

/* A TLS-RPT message from reports@FROM for example.com, report-id @id. (transfer full) */
static char *
message(const char *from, const char *id, const char *extra_headers)
{
  return g_strdup_printf(
      "%s"
      "From: TLS reports <reports@%s>\n"
      "To: tlsrpt@example.com\n"
      "Subject: Report Domain: example.com Submitter: %s Report-ID: <%s@%s>\n"
      "TLS-Report-Domain: example.com\n"
      "TLS-Report-Submitter: %s\n"
      "Message-ID: <%s@%s>\n"
      "Date: Mon, 04 Mar 2024 00:00:00 +0000\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=tlsrpt; boundary=\"b\"\n"
      "\n"
      "--b\n"
      "Content-Type: text/plain\n"
      "\n"
      "A report.\n"
      "--b\n"
      "Content-Type: application/tlsrpt+json\n"
      "Content-Disposition: attachment; filename=\"%s!example.com!1709251200!1709337599.json\"\n"
      "\n"
      "{\"organization-name\":\"Reporter %s\",\"date-range\":{\"start-datetime\":"
      "\"2024-03-01T00:00:00Z\",\"end-datetime\":\"2024-03-01T23:59:59Z\"},\"contact-info\":"
      "\"r@%s\",\"report-id\":\"%s\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
      "\"policy-string\":[\"version: STSv1\"],\"policy-domain\":\"example.com\",\"mx-host\":"
      "[\"mx.example.com\"]},\"summary\":{\"total-successful-session-count\":5,"
      "\"total-failure-session-count\":0}}]}\n"
      "--b--\n",
      extra_headers ? extra_headers : "", from, from, id, from, from, id, from, from, from,
      from, id);
}

/* @msg signed as @domain/@sel (@opt: "-l", "-r" or NULL) into DIR/NAME.eml. */
static char *
sign(const char *name, const char *msg, const char *domain, const char *sel, const char *opt)
{
  g_autofree char *in = g_strdup_printf("%s/%s.in", fx.dir, name);
  char *out = g_strdup_printf("%s/%s.eml", fx.dir, name);
  tu_write_file(in, msg, strlen(msg));
  g_autofree char *key = key_path(domain, sel);
  const char *signer = g_getenv("TLSRPT_DKIM_SIGN");
  assert_non_null(signer);
  const char *argv[] = { signer, "-d", domain, "-s", sel, "-k", key, opt, NULL };
  run_ok(argv, in, out);
  return out;
}

static char *
plain(const char *name, const char *msg)
{
  char *out = g_strdup_printf("%s/%s.eml", fx.dir, name);
  tu_write_file(out, msg, strlen(msg));
  return out;
}

/* ---- the DNS servers ---------------------------------------------------------------- */

static void
servers_script(const char *cmd, const char *a1, const char *a2)
{
  g_autofree char *sdir = g_build_filename(fx.dir, "dns", NULL);
  const char *args[] = { cmd, sdir, a1, a2, NULL };
  tu_run_script("tests/record/servers.sh", args);
}

static int
group_setup(void **state)
{
  fx.dir = tu_mkdtemp();
  GString *keys = g_string_new(NULL);
  struct { const char *domain, *sel, *services; } ks[] = {
    { "reporter.example", "sel", NULL },
    { "mail.reporter.example", "sub", NULL },
    { "other.example", "sel", NULL },
    { "reporter.example", "rpt", "tlsrpt" },
    { "reporter.example", "mail", "email" },
    { "reporter.example", "web", "http" },
    { "dns.example", "sel", NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(ks); i++) {
    g_autofree char *rec = genkey(ks[i].domain, ks[i].sel, ks[i].services);
    g_string_append_printf(keys, "%s\n", rec);
  }
  fx.keys = g_build_filename(fx.dir, "keys.zone", NULL);
  tu_write_file(fx.keys, keys->str, keys->len);
  /* The DNS server serves the same keys. */
  g_autofree char *sdir = g_build_filename(fx.dir, "dns", NULL);
  g_mkdir_with_parents(sdir, 0755);
  g_autofree char *extra = g_build_filename(sdir, "extra.zone", NULL);
  tu_write_file(extra, keys->str, keys->len);
  g_string_free(keys, TRUE);
  int dns = tu_free_port(TRUE), https = tu_free_port(FALSE);
  while (https == dns)
    https = tu_free_port(FALSE);
  fx.ns = g_strdup_printf("127.0.0.1:%d", dns);
  g_autofree char *p1 = g_strdup_printf("%d", dns), *p2 = g_strdup_printf("%d", https);
  servers_script("start", p1, p2);
  if (!tu_wait_port(dns, TRUE, 10000))
    fail_msg("unbound (%d) did not listen within 10 s", dns);
  /* A UDP socket that never answers: every query to it times out. */
  fx.silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  assert_int_equal(bind(fx.silent_fd, (struct sockaddr *) &a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fx.silent_fd, (struct sockaddr *) &a, &len), 0);
  fx.silent_ns = g_strdup_printf("127.0.0.1:%d", ntohs(a.sin_port));
  return 0;
}

static int
group_teardown(void **state)
{
  servers_script("stop", NULL, NULL);
  close(fx.silent_fd);
  tu_rmtree(fx.dir);
  g_free(fx.dir);
  g_free(fx.keys);
  g_free(fx.ns);
  g_free(fx.silent_ns);
  return 0;
}

/* ---- running -------------------------------------------------------------------------- */

/* mda < @eml with the store @store (under fx.dir) and @opts (NULL-terminated). */
static int
mda(const char *store, const char *eml, const char *const *opts, char **err)
{
  g_autofree char *st = g_build_filename(fx.dir, store, NULL);
  g_autofree char *csv = g_build_filename(st, "r.csv", NULL);
  g_autofree char *jsonl = g_build_filename(st, "r.jsonl", NULL);
  g_autofree char *data = tu_read_file(eml, NULL);
  assert_non_null(data);
  g_autoptr(GBytes) in = g_bytes_new(data, strlen(data));
  GPtrArray *argv = g_ptr_array_new();
  const char *fixed[] = { "mda", "--store", st, "--csv", csv, "--jsonl", jsonl };
  for (gsize i = 0; i < G_N_ELEMENTS(fixed); i++)
    g_ptr_array_add(argv, (gpointer) fixed[i]);
  for (guint i = 0; opts != NULL && opts[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) opts[i]);
  g_ptr_array_add(argv, NULL);
  int rc = tu_run((const char *const *) argv->pdata, in, NULL, err);
  g_ptr_array_free(argv, TRUE);
  return rc;
}

/* The dkim column of the CSV's last row. (transfer full) */
static char *
csv_verdict(const char *store)
{
  g_autofree char *csv = g_build_filename(fx.dir, store, "r.csv", NULL);
  g_autofree char *text = tu_read_file(csv, NULL);
  if (text == NULL)
    return NULL;
  g_auto(GStrv) rows = g_strsplit(text, "\r\n", -1);
  guint n = g_strv_length(rows);
  if (n < 3)
    return NULL;
  const char *last = rows[n - 2];
  const char *comma = strrchr(last, ',');
  return g_strdup(comma + 1);
}

/* The dkim and dkim_domain of the SQL index's report rows, "V D;..." by report id. */
static char *
sql_verdicts(const char *store)
{
  g_autofree char *db_path = g_build_filename(fx.dir, store, "reports.sqlite", NULL);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT report_id, coalesce(dkim, 'NULL'), "
                                      "coalesce(dkim_domain, '-') FROM report ORDER BY "
                                      "report_id", -1, &st, NULL),
                   SQLITE_OK);
  GString *s = g_string_new(NULL);
  while (sqlite3_step(st) == SQLITE_ROW)
    g_string_append_printf(s, "%s=%s %s;", sqlite3_column_text(st, 0),
                           sqlite3_column_text(st, 1), sqlite3_column_text(st, 2));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return g_string_free(s, FALSE);
}

typedef struct {
  const char *name;
  const char *want;          /* the CSV's dkim cell */
} Expect;

/* One message through mda --dkim-keys under record (stored, verdict @want) and under
 * require (stored only for a pass, else quarantined with the verdict as reason). */
static void
check_case(const char *name, const char *eml, const char *want, gboolean passes,
           const char *const *more)
{
  g_autofree char *store = g_strdup_printf("rec-%s", name);
  g_autoptr(GPtrArray) o = g_ptr_array_new();
  g_ptr_array_add(o, (gpointer) "--dkim-keys");
  g_ptr_array_add(o, fx.keys);
  for (guint i = 0; more != NULL && more[i] != NULL; i++)
    g_ptr_array_add(o, (gpointer) more[i]);
  g_ptr_array_add(o, NULL);
  g_autofree char *err = NULL;
  int rc = mda(store, eml, (const char *const *) o->pdata, &err);
  if (rc != 0)
    print_message("%s: %s\n", name, err);
  assert_int_equal(rc, 0);
  g_autofree char *got = csv_verdict(store);
  if (g_strcmp0(got, want) != 0)
    fail_msg("%s: CSV dkim '%s', want '%s' (%s)", name, got, want, err);
  g_autofree char *sql = sql_verdicts(store);
  g_autofree char *want_verdict = g_strdup(want);
  char *sp = strchr(want_verdict, ' ');
  g_autofree char *want_sql = g_strdup_printf("=%s %s;", sp ? (*sp = '\0', want_verdict)
                                                            : want_verdict,
                                              sp ? sp + 3 : "-");
  if (strstr(sql, want_sql) == NULL)
    fail_msg("%s: SQL '%s', want '%s'", name, sql, want_sql);
  g_autofree char *jl_path = g_build_filename(fx.dir, store, "r.jsonl", NULL);
  g_autofree char *jl = tu_read_file(jl_path, NULL);
  g_autofree char *want_json = g_strdup_printf("\"dkim\":\"%s\"", want_verdict);
  assert_non_null(strstr(jl, want_json));

  /* --dkim=require */
  g_autofree char *rstore = g_strdup_printf("req-%s", name);
  g_ptr_array_insert(o, (gint) o->len - 1, (gpointer) "--dkim=require");
  g_clear_pointer(&err, g_free);
  rc = mda(rstore, eml, (const char *const *) o->pdata, &err);
  assert_int_equal(rc, 0);
  g_autofree char *rdir = g_build_filename(fx.dir, rstore, NULL);
  g_autofree char *qdir = g_build_filename(rdir, "quarantine", NULL);
  guint quarantined = tu_count_files(qdir, ".eml");
  g_autofree char *rcsv = g_build_filename(rdir, "r.csv", NULL);
  guint rows = tu_count_lines(rcsv);
  if (passes) {
    assert_int_equal(quarantined, 0);
    assert_int_equal(rows, 2);
  } else {
    if (quarantined != 1 || rows > 1)
      fail_msg("%s under require: %u quarantined, %u CSV lines: %s", name, quarantined,
               rows, err);
    g_autofree char *want_reason = g_strdup_printf("dkim %s", want_verdict);
    assert_non_null(strstr(err, want_reason));
    /* The reason file holds the verdict too. */
    GDir *d = g_dir_open(qdir, 0, NULL);
    const char *f;
    gboolean found = FALSE;
    while ((f = g_dir_read_name(d)) != NULL)
      if (g_str_has_suffix(f, ".reason")) {
        g_autofree char *p = g_build_filename(qdir, f, NULL);
        g_autofree char *reason = tu_read_file(p, NULL);
        found = strstr(reason, want_reason) != NULL;
      }
    g_dir_close(d);
    assert_true(found);
  }
}

static void
test_signatures(void **state)
{
  g_autofree char *good_msg = message("reporter.example", "good", NULL);
  g_autofree char *good = sign("good", good_msg, "reporter.example", "sel", NULL);
  check_case("good", good, "pass d=reporter.example", TRUE, NULL);

  /* The body changed after signing: a session count raised. */
  g_autofree char *text = tu_read_file(good, NULL);
  g_autofree char *changed_text = g_strdup(text);
  char *five = strstr(changed_text, "\"total-successful-session-count\":5");
  assert_non_null(five);
  five[strlen("\"total-successful-session-count\":")] = '7';
  g_autofree char *changed = plain("changed", changed_text);
  check_case("changed", changed, "fail d=reporter.example", FALSE, NULL);

  g_autofree char *lmsg = message("reporter.example", "lsig", NULL);
  g_autofree char *l = sign("lsig", lmsg, "reporter.example", "sel", "-l");
  g_autofree char *ltext = tu_read_file(l, NULL);
  assert_non_null(strstr(ltext, "l="));
  check_case("lsig", l, "fail d=reporter.example", FALSE, NULL);

  g_autofree char *omsg = message("reporter.example", "other", NULL);
  g_autofree char *other = sign("other", omsg, "other.example", "sel", NULL);
  check_case("other", other, "fail d=other.example", FALSE, NULL);

  g_autofree char *smsg = message("reporter.example", "subdomain", NULL);
  g_autofree char *sub = sign("subdomain", smsg, "mail.reporter.example", "sub", "-r");
  check_case("subdomain", sub, "pass d=mail.reporter.example", TRUE, NULL);

  g_autofree char *tmsg = message("reporter.example", "stlsrpt", NULL);
  g_autofree char *t = sign("stlsrpt", tmsg, "reporter.example", "rpt", NULL);
  check_case("stlsrpt", t, "pass d=reporter.example", TRUE, NULL);

  g_autofree char *emsg = message("reporter.example", "semail", NULL);
  g_autofree char *e = sign("semail", emsg, "reporter.example", "mail", NULL);
  check_case("semail", e, "pass d=reporter.example", TRUE, NULL);

  g_autofree char *hmsg = message("reporter.example", "shttp", NULL);
  g_autofree char *h = sign("shttp", hmsg, "reporter.example", "web", NULL);
  check_case("shttp", h, "permerror d=reporter.example", FALSE, NULL);

  g_autofree char *umsg = message("reporter.example", "unsigned", NULL);
  g_autofree char *u = plain("unsigned", umsg);
  check_case("unsigned", u, "none", FALSE, NULL);

  /* --dkim-require-submitter: the submitter is reporter.example, the signature's
   * domain other.example shares nothing with it (nor with From). */
  g_autofree char *smsg2 = message("reporter.example", "submitter", NULL);
  g_autofree char *s2 = sign("submitter", smsg2, "reporter.example", "sel", NULL);
  const char *req_sub[] = { "--dkim-require-submitter", NULL };
  check_case("submitter", s2, "pass d=reporter.example", TRUE, req_sub);

  /* summary counts the verdicts and filters by them (--dkim). */
  const char *keys[] = { "--dkim-keys", fx.keys, NULL };
  const char *mixed[] = { good, other, u };
  for (gsize i = 0; i < G_N_ELEMENTS(mixed); i++) {
    g_autofree char *err = NULL;
    assert_int_equal(mda("mixed", mixed[i], keys, &err), 0);
  }
  g_autofree char *mstore = g_build_filename(fx.dir, "mixed", NULL);
  struct { const char *filter, *want; } sums[] = {
    { NULL, "{\"reports\":3,\"dkim\":{\"fail\":1,\"none\":1,\"pass\":1}}" },
    { "pass", "{\"reports\":1,\"dkim\":{\"pass\":1}}" },
    { "none", "{\"reports\":1,\"dkim\":{\"none\":1}}" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(sums); i++) {
    const char *argv[] = { "summary", "--store", mstore, "--since", "2024-03-01", "--until",
                           "2024-03-02", "--format", "json", sums[i].filter ? "--dkim" : NULL,
                           sums[i].filter, NULL };
    g_autofree char *out = NULL, *err = NULL;
    assert_int_equal(tu_run(argv, NULL, &out, &err), 0);
    g_autoptr(TrJson) root = json_tokener_parse(out);
    assert_non_null(root);
    TrJson *reports = NULL, *dkim = NULL;
    assert_true(json_object_object_get_ex(root, "reports", &reports));
    assert_true(json_object_object_get_ex(root, "dkim", &dkim));
    g_autoptr(TrJson) both = json_object_new_object();
    json_object_object_add(both, "reports", json_object_get(reports));
    json_object_object_add(both, "dkim", json_object_get(dkim));
    assert_string_equal(json_object_to_json_string_ext(both, JSON_C_TO_STRING_PLAIN),
                        sums[i].want);
  }
}

static void
test_authentication_results(void **state)
{
  /* A gateway rewrote the body: the signature fails, our MTA's header says pass. */
  g_autofree char *msg = message("reporter.example", "ar", NULL);
  g_autofree char *signed_path = sign("ar-signed", msg, "reporter.example", "sel", NULL);
  g_autofree char *text = tu_read_file(signed_path, NULL);
  g_autofree char *broken = g_strconcat(
      "Authentication-Results: mx.example.com; dkim=pass (2048-bit key)\n"
      "  header.d=reporter.example header.s=sel; spf=pass smtp.mailfrom=reporter.example\n",
      text, NULL);
  char *five = strstr(broken, "\"total-successful-session-count\":5");
  five[strlen("\"total-successful-session-count\":")] = '8';
  g_autofree char *ar = plain("ar", broken);
  const char *trusted[] = { "--trust-authserv-id", "mx.example.com", NULL };
  check_case("ar-trusted", ar, "trusted-ar d=reporter.example", TRUE, trusted);
  /* Not our authserv-id: ignored, the signature's own verdict stands. */
  const char *untrusted[] = { "--trust-authserv-id", "mx.other.example", NULL };
  check_case("ar-untrusted", ar, "fail d=reporter.example", FALSE, untrusted);
  /* Only the topmost trusted one counts: ours says fail, a forged one below it pass. */
  g_autofree char *two = g_strconcat(
      "Authentication-Results: mx.example.com; dkim=fail header.d=reporter.example\n",
      broken, NULL);
  g_autofree char *topmost = plain("ar-topmost", two);
  check_case("ar-topmost", topmost, "fail d=reporter.example", FALSE, trusted);
  /* A pass for another organization does not count. */
  g_autofree char *foreign = g_strconcat(
      "Authentication-Results: mx.example.com; dkim=pass header.d=other.example\n", text,
      NULL);
  char *f5 = strstr(foreign, "\"total-successful-session-count\":5");
  f5[strlen("\"total-successful-session-count\":")] = '9';
  g_autofree char *fpath = plain("ar-foreign", foreign);
  check_case("ar-foreign", fpath, "fail d=reporter.example", FALSE, trusted);
}

/* test_dns and test_temperror ask DNS servers of the test's own (--dkim-nameserver): the
 * config without the empty key file of the other cases (testutil.h). */
static int
real_dns_setup(void **state)
{
  (void) state;
  tu_set_config("");
  return 0;
}

static int
real_dns_teardown(void **state)
{
  (void) state;
  tu_set_config(NULL);
  return 0;
}

static void
test_dns(void **state)
{
  /* The key from the real DNS server. */
  g_autofree char *msg = message("dns.example", "dns", NULL);
  g_autofree char *eml = sign("dns", msg, "dns.example", "sel", NULL);
  const char *opts[] = { "--dkim-nameserver", fx.ns, "--dkim-timeout", "5", NULL };
  g_autofree char *err = NULL;
  assert_int_equal(mda("dns", eml, opts, &err), 0);
  g_autofree char *v = csv_verdict("dns");
  if (g_strcmp0(v, "pass d=dns.example") != 0)
    fail_msg("DNS key: '%s' (%s)", v, err);
  /* A name the zone does not have: no key, permerror. */
  g_autofree char *m2 = message("reporter.example", "nokey", NULL);
  g_autofree char *e2 = sign("nokey", m2, "reporter.example", "sel", NULL);
  g_autofree char *t2 = tu_read_file(e2, NULL);
  g_autofree char *renamed = g_strdup(t2);
  char *s = strstr(renamed, "s=sel;");
  assert_non_null(s);
  memcpy(s, "s=zzz;", 6);     /* the selector is not in the hash: b= still ours, key gone */
  g_autofree char *e3 = plain("nokey2", renamed);
  g_clear_pointer(&err, g_free);
  assert_int_equal(mda("dns-nokey", e3, opts, &err), 0);
  g_autofree char *v2 = csv_verdict("dns-nokey");
  assert_string_equal(v2, "permerror d=reporter.example");
}

static void
test_temperror(void **state)
{
  g_autofree char *msg = message("reporter.example", "slow", NULL);
  g_autofree char *eml = sign("slow", msg, "reporter.example", "sel", NULL);
  const char *rec[] = { "--dkim-nameserver", fx.silent_ns, "--dkim-timeout", "1", NULL };
  g_autofree char *err = NULL;
  gint64 t0 = g_get_monotonic_time();
  assert_int_equal(mda("slow-rec", eml, rec, &err), 0);
  assert_true(g_get_monotonic_time() - t0 < 8 * G_USEC_PER_SEC);
  g_autofree char *v = csv_verdict("slow-rec");
  assert_string_equal(v, "temperror d=reporter.example");

  /* Under require: mda exits 75 and stores nothing, not even in the quarantine. */
  const char *req[] = { "--dkim=require", "--dkim-nameserver", fx.silent_ns,
                        "--dkim-timeout", "1", NULL };
  g_clear_pointer(&err, g_free);
  assert_int_equal(mda("slow-req", eml, req, &err), 75);
  assert_non_null(strstr(err, "left for a later run"));
  g_autofree char *st = g_build_filename(fx.dir, "slow-req", NULL);
  g_autofree char *csv = g_build_filename(st, "r.csv", NULL);
  assert_true(tu_count_lines(csv) <= 1);
  g_autofree char *q = g_build_filename(st, "quarantine", NULL);
  assert_int_equal(tu_count_files(q, ".eml"), 0);

  /* maildir: the message stays in new/ (not acknowledged), exit 75; a good one next to
   * it is stored and moved on. */
  g_autofree char *md = g_build_filename(fx.dir, "Maildir", NULL);
  g_autofree char *newdir = g_build_filename(md, "new", NULL);
  g_autofree char *curdir = g_build_filename(md, "cur", NULL);
  g_autofree char *tmpdir = g_build_filename(md, "tmp", NULL);
  g_mkdir_with_parents(newdir, 0700);
  g_mkdir_with_parents(curdir, 0700);
  g_mkdir_with_parents(tmpdir, 0700);
  g_autofree char *text = tu_read_file(eml, NULL);
  g_autofree char *m1 = g_build_filename(newdir, "1.slow", NULL);
  tu_write_file(m1, text, strlen(text));
  g_autofree char *umsg = message("reporter.example", "md-unsigned", NULL);
  g_autofree char *m2 = g_build_filename(newdir, "2.unsigned", NULL);
  tu_write_file(m2, umsg, strlen(umsg));
  g_autofree char *mstore = g_build_filename(fx.dir, "md-store", NULL);
  const char *argv[] = { "maildir", "--store", mstore, "--mark-seen", "--dkim=require",
                         "--accept-unsigned-files", "--dkim-nameserver", fx.silent_ns,
                         "--dkim-timeout", "1", md, NULL };
  g_clear_pointer(&err, g_free);
  int rc = tu_run(argv, NULL, NULL, &err);
  assert_int_equal(rc, 75);
  assert_true(g_file_test(m1, G_FILE_TEST_EXISTS));       /* left where it was */
  assert_false(g_file_test(m2, G_FILE_TEST_EXISTS));      /* quarantined: none, and moved */
  assert_non_null(strstr(err, "not_stored=1"));
}

static void
test_loose_files_and_domains(void **state)
{
  g_autofree char *json = tu_fixture_path("corpus/dmarc-report-viewer/google.json");
  g_autofree char *store = g_build_filename(fx.dir, "files", NULL);
  g_autofree char *csv = g_build_filename(store, "r.csv", NULL);
  g_autofree char *err = NULL;
  const char *rec[] = { "file", "--store", store, "--csv", csv, json, NULL };
  assert_int_equal(tu_run(rec, NULL, NULL, &err), 0);
  g_autofree char *v = csv_verdict("files");
  assert_string_equal(v, "none");
  /* Under require a loose file needs --accept-unsigned-files. */
  g_autofree char *store2 = g_build_filename(fx.dir, "files-req", NULL);
  const char *req[] = { "file", "--store", store2, "--dkim=require", json, NULL };
  g_clear_pointer(&err, g_free);
  assert_int_equal(tu_run(req, NULL, NULL, &err), 1);
  assert_non_null(strstr(err, "dkim none"));
  g_autofree char *store3 = g_build_filename(fx.dir, "files-acc", NULL);
  const char *acc[] = { "file", "--store", store3, "--dkim=require", "--accept-unsigned-files",
                        json, NULL };
  g_clear_pointer(&err, g_free);
  assert_int_equal(tu_run(acc, NULL, NULL, &err), 0);

  /* Our domains: the report is example.com's. */
  g_autofree char *msg = message("reporter.example", "ours", NULL);
  g_autofree char *eml = sign("ours", msg, "reporter.example", "sel", NULL);
  struct { const char *store, *domain; gboolean ours; } cases[] = {
    { "dom-exact", "example.com", TRUE },
    { "dom-parent", "com", TRUE },
    { "dom-wild", "*.com", TRUE },
    { "dom-wild-self", "*.example.com", FALSE },
    { "dom-other", "example.org", FALSE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    const char *o[] = { "--dkim-keys", fx.keys, "--domain", "other.example", "--domain",
                        cases[i].domain, NULL };
    g_clear_pointer(&err, g_free);
    assert_int_equal(mda(cases[i].store, eml, o, &err), 0);
    g_autofree char *st = g_build_filename(fx.dir, cases[i].store, NULL);
    g_autofree char *q = g_build_filename(st, "quarantine", NULL);
    g_autofree char *c = g_build_filename(st, "r.csv", NULL);
    if ((tu_count_files(q, ".eml") == 0) != cases[i].ours || (tu_count_lines(c) == 2) != cases[i].ours)
      fail_msg("--domain %s: %s", cases[i].domain, err);
    if (!cases[i].ours)
      assert_non_null(strstr(err, "not for our domains: example.com"));
  }
  /* In the config file: a list. */
  g_autofree char *conf = g_build_filename(fx.dir, "domains.conf", NULL);
  const char *conf_text = "[tlsrpt-ingest]\ndomain = example.org, *.example.com\n";
  tu_write_file(conf, conf_text, strlen(conf_text));
  const char *co[] = { "--config", conf, "--dkim-keys", fx.keys, NULL };
  g_clear_pointer(&err, g_free);
  assert_int_equal(mda("dom-conf", eml, co, &err), 0);
  assert_non_null(strstr(err, "not for our domains"));
}

/* The real corpus mails (their old signatures unverifiable now: no key for them in the
 * file) get a verdict and are still stored under record. */
static void
test_corpus(void **state)
{
  const char *mails[] = { "corpus/mox/example.eml", "corpus/mox/microsoft.eml",
                          "corpus/parsedmarc/google.com_smtp_tls_report.eml",
                          "corpus/email-report-processor/report.elm" };
  for (gsize i = 0; i < G_N_ELEMENTS(mails); i++) {
    g_autofree char *path = tu_fixture_path(mails[i]);
    g_autofree char *store = g_strdup_printf("corpus-%zu", i);
    const char *o[] = { "--dkim-keys", fx.keys, NULL };
    g_autofree char *err = NULL;
    assert_int_equal(mda(store, path, o, &err), 0);
    g_autofree char *v = csv_verdict(store);
    /* Expired (x=): fail; else no key in the file: permerror. */
    if (v == NULL || !(g_str_has_prefix(v, "permerror d=") || g_str_has_prefix(v, "fail d=")))
      fail_msg("%s: verdict '%s' (%s)", mails[i], v, err);
    g_autofree char *sql = sql_verdicts(store);
    assert_true(strstr(sql, "=permerror ") != NULL || strstr(sql, "=fail ") != NULL);
  }
}

/* ---- the decoded-key cache (trust-pkey.h), in this process ----------------------- */

/* The one signature of @path, verified with the keys of @keys_path (transfer full). */
static TrustDkimSig *
verify_in_process(TrustKeys *keys, const char *path, const char *text)
{
  gsize len = 0;
  char *data = text != NULL ? g_strdup(text) : tu_read_file(path, &len);
  if (text != NULL)
    len = strlen(text);
  g_autoptr(GBytes) b = g_bytes_new_take(data, len);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) sigs = trust_dkim_verify(b, trust_keys_lookup, keys, &error);
  if (sigs == NULL)
    fail_msg("%s: %s", path, error->message);
  assert_int_equal(sigs->len, 1);
  return g_ptr_array_steal_index(sigs, 0);
}

typedef struct {
  TrustKeys *keys;
  GPtrArray *paths;
  guint passed;
} CacheWorker;

static gpointer
cache_worker(gpointer data)
{
  CacheWorker *w = data;
  for (guint round = 0; round < 4; round++)
    for (guint i = 0; i < w->paths->len; i++) {
      TrustDkimSig *sig = verify_in_process(w->keys, w->paths->pdata[i], NULL);
      w->passed += sig->status == TRUST_SIG_PASS;
      trust_dkim_sig_free(sig);
    }
  return NULL;
}

static void
test_key_cache(void **state)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TrustKeys) keys = trust_keys_new_file(fx.keys, &error);
  assert_non_null(keys);
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
  for (int i = 0; i < 6; i++) {
    g_autofree char *id = g_strdup_printf("cache%d", i);
    g_autofree char *msg = message("reporter.example", id, NULL);
    g_ptr_array_add(paths, sign(id, msg, "reporter.example", "sel", i % 2 ? "-r" : NULL));
  }
  guint decoded0 = 0, reused0 = 0, decoded = 0, reused = 0;
  trust_pkey_cache_stats(&decoded0, &reused0);

  /* The first signature decodes its key, the next ones take it from the cache. */
  for (guint i = 0; i < paths->len; i++) {
    TrustDkimSig *sig = verify_in_process(keys, paths->pdata[i], NULL);
    if (sig->status != TRUST_SIG_PASS)
      fail_msg("%s: %d %s", (char *) paths->pdata[i], sig->status, sig->why);
    trust_dkim_sig_free(sig);
  }
  trust_pkey_cache_stats(&decoded, &reused);
  assert_int_equal(decoded - decoded0, 1);
  assert_int_equal(reused - reused0, paths->len - 1);

  /* A cached key still fails a changed body, and a signature made with another key. */
  g_autofree char *text = tu_read_file(paths->pdata[0], NULL);
  char *five = strstr(text, "\"total-successful-session-count\":5");
  assert_non_null(five);
  five[strlen("\"total-successful-session-count\":")] = '6';
  TrustDkimSig *sig = verify_in_process(keys, paths->pdata[0], text);
  assert_int_equal(sig->status, TRUST_SIG_FAIL);
  trust_dkim_sig_free(sig);

  /* other.example's key (now cached too) published as reporter.example's: the message
   * signed with reporter.example's own key must fail, not find that key's twin. */
  g_autofree char *omsg = message("other.example", "cache-other", NULL);
  g_autofree char *other = sign("cache-other", omsg, "other.example", "sel", NULL);
  sig = verify_in_process(keys, other, NULL);
  assert_int_equal(sig->status, TRUST_SIG_PASS);
  trust_dkim_sig_free(sig);
  g_autofree char *other_txt_path = g_build_filename(fx.dir, "keys", "other.example", "sel.txt",
                                                     NULL);
  g_autofree char *other_txt = tu_read_file(other_txt_path, NULL);
  assert_non_null(other_txt);
  const char *rest = strchr(other_txt, '\t');  /* "sel._domainkey\tIN\tTXT\t( ..." */
  assert_non_null(rest);
  g_autofree char *swapped_rec = g_strdup_printf("sel._domainkey.reporter.example. %s", rest + 1);
  g_autofree char *swapped_path = g_build_filename(fx.dir, "swapped.zone", NULL);
  tu_write_file(swapped_path, swapped_rec, strlen(swapped_rec));
  g_autoptr(TrustKeys) swapped = trust_keys_new_file(swapped_path, &error);
  assert_non_null(swapped);
  trust_pkey_cache_stats(&decoded0, &reused0);
  sig = verify_in_process(swapped, paths->pdata[0], NULL);
  assert_int_equal(sig->status, TRUST_SIG_FAIL);
  trust_dkim_sig_free(sig);
  trust_pkey_cache_stats(&decoded, &reused);
  assert_int_equal(decoded, decoded0);       /* other.example's key, from the cache */
  assert_int_equal(reused, reused0 + 1);

  /* A key that is no key (p= not DER) is a permerror every time, and nothing is kept. */
  g_autofree char *bad_rec = g_strdup(
      "sel._domainkey.reporter.example. IN TXT \"v=DKIM1; k=rsa; p=bm90IGEga2V5IGF0IGFsbA==\"\n");
  g_autofree char *bad_path = g_build_filename(fx.dir, "bad.zone", NULL);
  tu_write_file(bad_path, bad_rec, strlen(bad_rec));
  g_autoptr(TrustKeys) bad = trust_keys_new_file(bad_path, &error);
  assert_non_null(bad);
  for (int i = 0; i < 2; i++) {
    sig = verify_in_process(bad, paths->pdata[1], NULL);
    assert_int_equal(sig->status, TRUST_SIG_PERMERROR);
    trust_dkim_sig_free(sig);
  }
  trust_pkey_cache_stats(&decoded0, &reused0);
  assert_int_equal(decoded0, decoded);
  assert_int_equal(reused0, reused);

  /* Parse workers verify at once: four threads share the cached key. */
  CacheWorker w[4];
  GThread *t[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (CacheWorker) { keys, paths, 0 };
    t[i] = g_thread_new("verify", cache_worker, &w[i]);
  }
  for (int i = 0; i < 4; i++) {
    g_thread_join(t[i]);
    assert_int_equal(w[i].passed, 4 * paths->len);
  }
  trust_pkey_cache_stats(&decoded, &reused);
  assert_int_equal(decoded, decoded0);
  assert_int_equal(reused - reused0, 4 * 4 * paths->len);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_signatures),
    cmocka_unit_test(test_authentication_results),
    cmocka_unit_test_setup_teardown(test_dns, real_dns_setup, real_dns_teardown),
    cmocka_unit_test_setup_teardown(test_temperror, real_dns_setup, real_dns_teardown),
    cmocka_unit_test(test_loose_files_and_domains),
    cmocka_unit_test(test_corpus),
    cmocka_unit_test(test_key_cache),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
