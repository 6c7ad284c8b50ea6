/* test_imap.c - the IMAP source and `tlsrpt-ingest imap` against a real Dovecot on
 * 127.0.0.1, started per test by tests/imap/dovecot.sh in a temporary directory (free
 * ports, self-signed certificate, user "test" / "secret" with uid 8 owning the Maildir).
 * Needs root, dovecot-core, openssl and Dovecot's imap processes (installed, or unpacked by
 * tests/setup-debian.sh --test): without them the tests fail, they are not skipped. */
#include "testutil.h"

#include "source.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <microhttpd.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAIL_UID 8
#define MAIL_GID 8

typedef struct {
  char *dir;          /* Dovecot's directory */
  char *store;        /* the tlsrpt-ingest store */
  char *maildir;      /* the test user's Maildir */
  char *cacert;
  char *password_file;
  int port_imap;
  int port_imaps;
  guint delivered;
} Dove;

/* ---- the Dovecot harness --------------------------------------------------------- */

/* Run "tests/imap/dovecot.sh CMD DIR [ARG1 ARG2]"; the test fails when it does. */
static void
dove_script(Dove *d, const char *cmd, const char *arg1, const char *arg2)
{
  const char *args[] = { cmd, d->dir, arg1, arg2, NULL };
  tu_run_script("tests/imap/dovecot.sh", args);
}

static void
dove_start(Dove *d)
{
  if (!g_file_test("/usr/sbin/dovecot", G_FILE_TEST_IS_EXECUTABLE) &&
      g_find_program_in_path("dovecot") == NULL)
    fail_msg("dovecot is not installed: the IMAP tests need the Debian packages "
             "dovecot-core and openssl and Dovecot's imap (tests/setup-debian.sh --test)");
  if (geteuid() != 0)
    fail_msg("the IMAP tests start Dovecot and must run as root");
  g_autofree char *p1 = g_strdup_printf("%d", d->port_imap);
  g_autofree char *p2 = g_strdup_printf("%d", d->port_imaps);
  dove_script(d, "start", p1, p2);
  /* Ready: both ports listen and the master wrote its pid file (dove_stop needs it). */
  g_autofree char *pidpath = g_build_filename(d->dir, "run", "master.pid", NULL);
  g_autofree char *pid = NULL;
  if (tu_wait_port(d->port_imap, TRUE, 10000) && tu_wait_port(d->port_imaps, TRUE, 10000) &&
      (pid = tu_wait_file_text(pidpath, 0, "", 10000)) != NULL)
    return;
  g_autofree char *logpath = g_build_filename(d->dir, "dovecot.log", NULL);
  g_autofree char *log = tu_read_file(logpath, NULL);
  fail_msg("Dovecot did not listen on %d/%d within 10 s; log:\n%s", d->port_imap,
           d->port_imaps, log ? log : "(none)");
}

/* Stop the master (dovecot.sh waits until it is gone and removes its pid file: Dovecot
 * refuses to start while that pid answers, and a zombie nobody reaps would). */
static void
dove_stop(Dove *d)
{
  dove_script(d, "stop", NULL, NULL);
  /* The listeners close with the master; wait until the ports are free again. */
  tu_wait_port(d->port_imap, FALSE, 2500);
  tu_wait_port(d->port_imaps, FALSE, 2500);
}

/* The password file, mode 0600 as the source demands. */
static void
write_password(Dove *d, const char *password)
{
  g_autofree char *text = g_strdup_printf("%s\n", password);
  tu_write_file(d->password_file, text, strlen(text));
  assert_int_equal(chmod(d->password_file, 0600), 0);
}

static int
dove_setup(void **state)
{
  Dove *d = g_new0(Dove, 1);
  d->dir = tu_mkdtemp();
  d->store = tu_mkdtemp();
  d->maildir = g_build_filename(d->dir, "home", "Maildir", NULL);
  d->cacert = g_build_filename(d->dir, "cert.pem", NULL);
  g_autofree char *pwdir = tu_mkdtemp();
  d->password_file = g_build_filename(pwdir, "imap-password", NULL);
  write_password(d, "secret");
  d->port_imap = tu_free_port(FALSE);
  do
    d->port_imaps = tu_free_port(FALSE);
  while (d->port_imaps == d->port_imap);
  dove_start(d);
  *state = d;
  return 0;
}

static int
dove_teardown(void **state)
{
  Dove *d = *state;
  dove_stop(d);
  g_autofree char *pwdir = g_path_get_dirname(d->password_file);
  tu_rmtree(pwdir);
  tu_rmtree(d->store);
  tu_rmtree(d->dir);
  g_free(d->dir);
  g_free(d->store);
  g_free(d->maildir);
  g_free(d->cacert);
  g_free(d->password_file);
  g_free(d);
  return 0;
}

/* Put a message into INBOX the way an MDA does: tmp/, then rename into new/. */
static void
dove_deliver(Dove *d, GBytes *msg)
{
  d->delivered++;
  g_autofree char *name = g_strdup_printf("%" G_GINT64_FORMAT ".M%uP%d.test",
                                          g_get_real_time() / G_USEC_PER_SEC, d->delivered,
                                          (int) getpid());
  g_autofree char *tmp = g_build_filename(d->maildir, "tmp", name, NULL);
  g_autofree char *dst = g_build_filename(d->maildir, "new", name, NULL);
  gsize len = 0;
  const void *data = g_bytes_get_data(msg, &len);
  tu_write_file(tmp, data, len);
  assert_int_equal(chown(tmp, MAIL_UID, MAIL_GID), 0);
  assert_int_equal(rename(tmp, dst), 0);
}

static void
dove_deliver_fixture(Dove *d, const char *name)
{
  g_autoptr(GBytes) b = tu_fixture(name);
  dove_deliver(d, b);
}

/* Messages in a Maildir folder ("" = INBOX, else ".Name"), and how many carry \Seen. */
static guint
dove_count(Dove *d, const char *folder, guint *seen)
{
  guint n = 0;
  if (seen != NULL)
    *seen = 0;
  const char *subs[] = { "new", "cur" };
  for (guint i = 0; i < 2; i++) {
    g_autofree char *dir = g_build_filename(d->maildir, folder, subs[i], NULL);
    GDir *dh = g_dir_open(dir, 0, NULL);
    if (dh == NULL)
      continue;
    const char *name;
    while ((name = g_dir_read_name(dh)) != NULL) {
      if (name[0] == '.')
        continue;
      n++;
      const char *flags = strstr(name, ":2,");
      if (seen != NULL && flags != NULL && strchr(flags + 3, 'S') != NULL)
        (*seen)++;
    }
    g_dir_close(dh);
  }
  return n;
}

/* Give the mailbox a new UIDVALIDITY, as when it is deleted and recreated: no session
 * may be open. Every message becomes new and unseen again. */
static void
dove_reset_uidvalidity(Dove *d)
{
  g_autofree char *uidlist = g_build_filename(d->maildir, "dovecot-uidlist", NULL);
  g_unlink(uidlist);
  GDir *dh = g_dir_open(d->maildir, 0, NULL);
  assert_non_null(dh);
  const char *name;
  while ((name = g_dir_read_name(dh)) != NULL) {
    if (g_str_has_prefix(name, "dovecot.index") || strcmp(name, "dovecot.list.index.log") == 0) {
      g_autofree char *p = g_build_filename(d->maildir, name, NULL);
      g_unlink(p);
    }
  }
  g_dir_close(dh);
  g_autofree char *cur = g_build_filename(d->maildir, "cur", NULL);
  dh = g_dir_open(cur, 0, NULL);
  while (dh != NULL && (name = g_dir_read_name(dh)) != NULL) {
    g_autofree char *base = g_strndup(name, strcspn(name, ":"));
    g_autofree char *from = g_build_filename(cur, name, NULL);
    g_autofree char *to = g_build_filename(d->maildir, "new", base, NULL);
    assert_int_equal(rename(from, to), 0);
  }
  if (dh != NULL)
    g_dir_close(dh);
  /* Dovecot takes the time as the new UIDVALIDITY: make sure it differs. */
  g_usleep(1100 * 1000);
}

static char *
dove_url(Dove *d, gboolean imaps, const char *mailbox)
{
  return g_strdup_printf("%s://127.0.0.1:%d/%s", imaps ? "imaps" : "imap",
                         imaps ? d->port_imaps : d->port_imap, mailbox ? mailbox : "INBOX");
}

/* IMAP sends CRLF line ends: a fixture stored with LF comes back with CRLF. */
static GBytes *
to_crlf(GBytes *in)
{
  gsize len = 0;
  const char *p = g_bytes_get_data(in, &len);
  GString *s = g_string_sized_new(len + len / 20);
  for (gsize i = 0; i < len; i++) {
    if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
      g_string_append_c(s, '\r');
    g_string_append_c(s, p[i]);
  }
  return g_string_free_to_bytes(s);
}

/* ---- report messages made up for the tests ------------------------------------------ */

static GBytes *
make_report_message(guint n)
{
  g_autofree char *json = g_strdup_printf(
      "{\"organization-name\":\"Imap Test Org\","
      "\"date-range\":{\"start-datetime\":\"2024-01-%02uT00:00:00Z\","
      "\"end-datetime\":\"2024-01-%02uT23:59:59Z\"},"
      "\"contact-info\":\"tlsrpt@reporter.example\","
      "\"report-id\":\"imap-test-%u\","
      "\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
      "\"policy-string\":[\"version: STSv1\",\"mode: enforce\",\"mx: mx.example.com\","
      "\"max_age: 86400\"],\"policy-domain\":\"example.com\"},"
      "\"summary\":{\"total-successful-session-count\":%u,"
      "\"total-failure-session-count\":0}}]}",
      n % 28 + 1, n % 28 + 1, n, 100 + n);
  g_autofree char *msg = g_strdup_printf(
      "From: TLS Reports <tlsrpt@reporter.example>\r\n"
      "To: tls-reports@example.com\r\n"
      "Subject: Report Domain: example.com Submitter: reporter.example Report-ID: "
      "<imap-test-%u>\r\n"
      "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
      "Message-ID: <imap-test-%u@reporter.example>\r\n"
      "TLS-Report-Domain: example.com\r\n"
      "TLS-Report-Submitter: reporter.example\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"b%u\"\r\n"
      "\r\n"
      "--b%u\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "This is an aggregate TLS report.\r\n"
      "--b%u\r\n"
      "Content-Type: application/tlsrpt+json\r\n"
      "Content-Disposition: attachment;\r\n"
      " filename=\"reporter.example!example.com!1704067200!1704153599!%u.json\"\r\n"
      "\r\n"
      "%s\r\n"
      "--b%u--\r\n",
      n, n, n, n, n, n, json, n);
  return g_bytes_new(msg, strlen(msg));
}

static GBytes *
make_plain_message(void)
{
  const char *msg = "From: someone@example.org\r\n"
                    "To: tls-reports@example.com\r\n"
                    "Subject: hello\r\n"
                    "Message-ID: <plain@example.org>\r\n"
                    "\r\n"
                    "Not a report, just mail.\r\n";
  return g_bytes_new_static(msg, strlen(msg));
}

/* A report part that claims gzip but is not: quarantined. */
static GBytes *
make_broken_gzip_message(void)
{
  const char *msg =
      "From: tlsrpt@reporter.example\r\n"
      "To: tls-reports@example.com\r\n"
      "Subject: Report Domain: example.com Submitter: reporter.example Report-ID: <broken>\r\n"
      "Message-ID: <broken@reporter.example>\r\n"
      "TLS-Report-Domain: example.com\r\n"
      "TLS-Report-Submitter: reporter.example\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"zz\"\r\n"
      "\r\n"
      "--zz\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "Report attached.\r\n"
      "--zz\r\n"
      "Content-Type: application/tlsrpt+gzip\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "Content-Disposition: attachment;\r\n"
      " filename=\"reporter.example!example.com!1704067200!1704153599!broken.json.gz\"\r\n"
      "\r\n"
      "H4sIAAAAAAAAA6tWSk7NyVFSKM3LSU1RSs8vSlWqBQBxo6sNFAAAAA==\r\n"
      "--zz--\r\n";
  return g_bytes_new_static(msg, strlen(msg));
}

/* ---- source-level helpers ------------------------------------------------------------ */

static void
opts_for(Dove *d, SourceConfig *opts)
{
  source_config_init(opts);
  opts->store_dir = g_strdup(d->store);
  opts->imap.user = g_strdup("test");
  opts->imap.password_file = g_strdup(d->password_file);
  opts->imap.cacert = g_strdup(d->cacert);
  opts->imap.starttls = TR_STARTTLS_REQUIRED;
  opts->mark_seen = TRUE;
}

static gpointer
open_source(Dove *d, SourceConfig *opts, gboolean imaps, GError **error)
{
  g_autofree char *url = dove_url(d, imaps, NULL);
  char *args[] = { url, NULL };
  return source_imap_ops.open(opts, args, error);
}

/* Read one whole pass; the messages in UID order. */
static GPtrArray *
read_pass(gpointer src)
{
  GPtrArray *msgs = g_ptr_array_new_with_free_func((GDestroyNotify) source_message_free);
  for (;;) {
    SourceMessage *m = NULL;
    g_autoptr(GError) error = NULL;
    if (!source_imap_ops.next(src, &m, &error)) {
      if (error != NULL)
        fail_msg("next: %s", error->message);
      break;
    }
    g_ptr_array_add(msgs, m);
  }
  return msgs;
}

static void
commit_all(gpointer src, GPtrArray *msgs, SourceOutcome outcome)
{
  for (guint i = 0; i < msgs->len; i++) {
    g_autoptr(GError) error = NULL;
    if (!source_imap_ops.commit(src, msgs->pdata[i], outcome, &error))
      fail_msg("commit: %s", error->message);
  }
}

static const char *corpus[] = {
  "corpus/mox/example.eml",
  "corpus/mox/microsoft.eml",
  "corpus/parsedmarc/google.com_smtp_tls_report.eml",
};

static void
fetch_corpus(void **state, gboolean imaps)
{
  Dove *d = *state;
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);

  SourceConfig opts;
  opts_for(d, &opts);
  g_autoptr(GError) error = NULL;
  gpointer src = open_source(d, &opts, imaps, &error);
  if (src == NULL)
    fail_msg("open: %s", error->message);
  g_autoptr(GPtrArray) msgs = read_pass(src);
  assert_int_equal(msgs->len, G_N_ELEMENTS(corpus));
  for (guint i = 0; i < msgs->len; i++) {
    SourceMessage *m = msgs->pdata[i];
    g_autoptr(GBytes) raw = tu_fixture(corpus[i]);
    g_autoptr(GBytes) want = to_crlf(raw);
    assert_non_null(m->data);
    assert_null(m->skip_reason);
    assert_int_equal(g_bytes_get_size(m->data), g_bytes_get_size(want));
    assert_true(g_bytes_equal(m->data, want));
    assert_true(g_str_has_prefix(m->origin, imaps ? "imaps://test@127.0.0.1:" : "imap://test@"));
    assert_non_null(strstr(m->origin, "/INBOX;UIDVALIDITY="));
    assert_true(m->received > 1000000000);
  }
  /* BODY.PEEK: fetching flagged nothing. */
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), G_N_ELEMENTS(corpus));
  assert_int_equal(seen, 0);
  source_imap_ops.close(src);

  /* Not acknowledged: a new run sees them all again. */
  src = open_source(d, &opts, imaps, &error);
  assert_non_null(src);
  g_autoptr(GPtrArray) again = read_pass(src);
  assert_int_equal(again->len, G_N_ELEMENTS(corpus));
  source_imap_ops.close(src);
  source_config_clear(&opts);
}

static void
test_imaps_fetches_corpus_byte_exact_and_unseen(void **state)
{
  fetch_corpus(state, TRUE);
}

static void
test_starttls_fetches_corpus_byte_exact_and_unseen(void **state)
{
  fetch_corpus(state, FALSE);
}

static void
test_commit_stored_marks_seen(void **state)
{
  Dove *d = *state;
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);
  SourceConfig opts;
  opts_for(d, &opts);
  g_autoptr(GError) error = NULL;
  gpointer src = open_source(d, &opts, FALSE, &error);
  if (src == NULL)
    fail_msg("open: %s", error->message);
  g_autoptr(GPtrArray) msgs = read_pass(src);
  assert_int_equal(msgs->len, 3);
  commit_all(src, msgs, SOURCE_OUTCOME_STORED);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 3);
  assert_int_equal(seen, 3);

  /* The next pass on the same source finds nothing new; a message delivered now is. */
  g_autoptr(GPtrArray) second = read_pass(src);
  assert_int_equal(second->len, 0);
  g_autoptr(GBytes) extra = make_report_message(1);
  dove_deliver(d, extra);
  g_autoptr(GPtrArray) third = read_pass(src);
  assert_int_equal(third->len, 1);
  commit_all(src, third, SOURCE_OUTCOME_DUPLICATE);
  source_imap_ops.close(src);

  /* The state file remembers the highest UID. */
  GDir *dh = g_dir_open(d->store, 0, NULL);
  const char *name;
  gboolean found = FALSE;
  while ((name = g_dir_read_name(dh)) != NULL) {
    if (g_str_has_prefix(name, ".imap-") && g_str_has_suffix(name, ".state")) {
      g_autofree char *p = g_build_filename(d->store, name, NULL);
      g_autofree char *text = tu_read_file(p, NULL);
      assert_non_null(strstr(text, "uidvalidity "));
      assert_non_null(strstr(text, "\nlast_uid 4\n"));
      assert_int_equal(strlen(name), strlen(".imap-") + 16 + strlen(".state"));
      found = TRUE;
    }
  }
  g_dir_close(dh);
  assert_true(found);

  /* --all also skips what was acknowledged. */
  opts.imap.all = TRUE;
  src = open_source(d, &opts, FALSE, &error);
  assert_non_null(src);
  g_autoptr(GPtrArray) all = read_pass(src);
  assert_int_equal(all->len, 0);
  source_imap_ops.close(src);
  source_config_clear(&opts);
}

static void
test_move_to_and_error_folder(void **state)
{
  Dove *d = *state;
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);
  g_autoptr(GBytes) broken = make_broken_gzip_message();
  dove_deliver(d, broken);
  SourceConfig opts;
  opts_for(d, &opts);
  opts.mark_seen = FALSE;
  opts.move_to = g_strdup("Processed");
  opts.imap.error_folder = g_strdup("Errors/TLS Ré");
  g_autoptr(GError) error = NULL;
  gpointer src = open_source(d, &opts, TRUE, &error);
  if (src == NULL)
    fail_msg("open: %s", error->message);
  g_autoptr(GPtrArray) msgs = read_pass(src);
  assert_int_equal(msgs->len, 4);
  for (guint i = 0; i < 4; i++) {
    SourceOutcome o = i < 3 ? SOURCE_OUTCOME_STORED : SOURCE_OUTCOME_QUARANTINED;
    if (!source_imap_ops.commit(src, msgs->pdata[i], o, &error))
      fail_msg("commit: %s", error->message);
  }
  source_imap_ops.close(src);
  assert_int_equal(dove_count(d, "", NULL), 0);
  assert_int_equal(dove_count(d, ".Processed", NULL), 3);
  /* mUTF-7 on the wire, Maildir++ with "/" as separator on disk. */
  assert_int_equal(dove_count(d, ".Errors.TLS R&AOk-", NULL), 1);
  source_config_clear(&opts);
}

/* A server without MOVE: UID COPY, \Deleted, UID EXPUNGE. */
static void
test_move_without_move_capability(void **state)
{
  Dove *d = *state;
  dove_stop(d);
  g_autofree char *extra = g_build_filename(d->dir, "extra.conf", NULL);
  const char *caps = "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS\n";
  tu_write_file(extra, caps, strlen(caps));
  dove_start(d);
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);
  SourceConfig opts;
  opts_for(d, &opts);
  opts.mark_seen = FALSE;
  opts.move_to = g_strdup("Processed");
  g_autoptr(GError) error = NULL;
  gpointer src = open_source(d, &opts, TRUE, &error);
  if (src == NULL)
    fail_msg("open: %s", error->message);
  g_autoptr(GPtrArray) msgs = read_pass(src);
  assert_int_equal(msgs->len, 3);
  commit_all(src, msgs, SOURCE_OUTCOME_STORED);
  source_imap_ops.close(src);
  assert_int_equal(dove_count(d, "", NULL), 0);
  guint seen = 0;
  assert_int_equal(dove_count(d, ".Processed", &seen), 3);
  assert_int_equal(seen, 0);
  source_config_clear(&opts);
}

static void
test_not_report_stays_unseen(void **state)
{
  Dove *d = *state;
  g_autoptr(GBytes) plain = make_plain_message();
  dove_deliver(d, plain);
  SourceConfig opts;
  opts_for(d, &opts);
  g_autoptr(GError) error = NULL;
  gpointer src = open_source(d, &opts, TRUE, &error);
  assert_non_null(src);
  g_autoptr(GPtrArray) msgs = read_pass(src);
  assert_int_equal(msgs->len, 1);
  commit_all(src, msgs, SOURCE_OUTCOME_NOT_REPORT);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 1);
  assert_int_equal(seen, 0);
  /* ... and is not fetched again by later passes. */
  g_autoptr(GPtrArray) again = read_pass(src);
  assert_int_equal(again->len, 0);
  source_imap_ops.close(src);
  source_config_clear(&opts);
}

static void
test_oversized_message_is_skipped(void **state)
{
  Dove *d = *state;
  dove_deliver_fixture(d, corpus[0]);
  SourceConfig opts;
  opts_for(d, &opts);
  opts.max_message_size = 100;
  g_autoptr(GError) error = NULL;
  gpointer src = open_source(d, &opts, TRUE, &error);
  assert_non_null(src);
  g_autoptr(GPtrArray) msgs = read_pass(src);
  assert_int_equal(msgs->len, 1);
  SourceMessage *m = msgs->pdata[0];
  assert_null(m->data);
  assert_non_null(m->skip_reason);
  assert_non_null(strstr(m->skip_reason, "exceeds --max-message-size ("));
  assert_non_null(strstr(m->skip_reason, " > 100 bytes)"));
  source_imap_ops.close(src);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 1);
  assert_int_equal(seen, 0);
  source_config_clear(&opts);
}

static void
test_wrong_password_is_auth_error(void **state)
{
  Dove *d = *state;
  write_password(d, "wrong");
  SourceConfig opts;
  opts_for(d, &opts);
  g_autoptr(GError) error = NULL;
  gpointer src = open_source(d, &opts, TRUE, &error);
  assert_null(src);
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_AUTH));
  if (strstr(error->message, "login refused for user test") == NULL)
    fail_msg("unexpected message: %s", error->message);
  assert_null(strstr(error->message, "wrong"));
  source_config_clear(&opts);
}

static void
test_password_file_permissions(void **state)
{
  Dove *d = *state;
  chmod(d->password_file, 0640);
  SourceConfig opts;
  opts_for(d, &opts);
  g_autoptr(GError) error = NULL;
  gpointer src = open_source(d, &opts, TRUE, &error);
  assert_null(src);
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_AUTH));
  assert_non_null(strstr(error->message, "is readable by group or others (chmod 600 "));
  g_clear_error(&error);

  /* The environment variable works when no file is given. */
  g_clear_pointer(&opts.imap.password_file, g_free);
  g_setenv("TLSRPT_IMAP_PASSWORD", "secret", TRUE);
  src = open_source(d, &opts, TRUE, &error);
  g_unsetenv("TLSRPT_IMAP_PASSWORD");
  if (src == NULL)
    fail_msg("open with TLSRPT_IMAP_PASSWORD: %s", error->message);
  source_imap_ops.close(src);
  source_config_clear(&opts);
}

static void
test_untrusted_certificate_is_tls_error(void **state)
{
  Dove *d = *state;
  dove_deliver_fixture(d, corpus[0]);
  SourceConfig opts;
  opts_for(d, &opts);
  g_clear_pointer(&opts.imap.cacert, g_free);
  for (int imaps = 0; imaps < 2; imaps++) {
    g_autoptr(GError) error = NULL;
    gpointer src = open_source(d, &opts, imaps, &error);
    assert_null(src);
    assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_TLS));
  }
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 1);
  assert_int_equal(seen, 0);
  source_config_clear(&opts);
}

static void
test_second_poller_is_locked_out(void **state)
{
  Dove *d = *state;
  SourceConfig opts;
  opts_for(d, &opts);
  g_autoptr(GError) error = NULL;
  gpointer first = open_source(d, &opts, TRUE, &error);
  assert_non_null(first);
  gpointer second = open_source(d, &opts, TRUE, &error);
  assert_null(second);
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_LOCKED));
  assert_non_null(strstr(error->message, "another poller is working on this mailbox"));
  source_imap_ops.close(first);
  g_clear_error(&error);
  second = open_source(d, &opts, TRUE, &error);
  assert_non_null(second);
  source_imap_ops.close(second);
  source_config_clear(&opts);
}

static void
test_uidvalidity_change_resets_last_uid(void **state)
{
  Dove *d = *state;
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);
  SourceConfig opts;
  opts_for(d, &opts);
  opts.imap.all = TRUE;
  g_autoptr(GError) error = NULL;
  gpointer src = open_source(d, &opts, TRUE, &error);
  assert_non_null(src);
  g_autoptr(GPtrArray) msgs = read_pass(src);
  assert_int_equal(msgs->len, 3);
  g_autofree char *origin = g_strdup(((SourceMessage *) msgs->pdata[0])->origin);
  commit_all(src, msgs, SOURCE_OUTCOME_STORED);
  source_imap_ops.close(src);

  dove_reset_uidvalidity(d);
  src = open_source(d, &opts, TRUE, &error);
  assert_non_null(src);
  g_autoptr(GPtrArray) again = read_pass(src);
  assert_int_equal(again->len, 3);
  SourceMessage *m = again->pdata[0];
  assert_string_not_equal(m->origin, origin);
  assert_non_null(strstr(m->origin, ";UID=1"));
  source_imap_ops.close(src);
  source_config_clear(&opts);
}

static void
test_bad_urls(void **state)
{
  Dove *d = *state;
  SourceConfig opts;
  opts_for(d, &opts);
  const char *bad[] = { "http://127.0.0.1/INBOX", "imaps://u:pw@127.0.0.1/INBOX",
                        "imaps://127.0.0.1/INBOX;UID=3", NULL };
  for (guint i = 0; bad[i] != NULL; i++) {
    char *args[] = { (char *) bad[i], NULL };
    g_autoptr(GError) error = NULL;
    assert_null(source_imap_ops.open(&opts, args, &error));
    assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND));
  }
  /* A mailbox that does not exist. */
  g_autofree char *url = dove_url(d, TRUE, "No%20Such");
  char *args[] = { url, NULL };
  g_autoptr(GError) error = NULL;
  assert_null(source_imap_ops.open(&opts, args, &error));
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND));
  assert_non_null(strstr(error->message, "No Such"));
  source_config_clear(&opts);
}

/* ---- the command: tlsrpt-ingest imap ------------------------------------------------- */

/* tu_run() wants standard input as bytes (its stdin is a pipe): an empty one. */
static GBytes *
no_input(void)
{
  static GBytes *empty;
  if (empty == NULL)
    empty = g_bytes_new_static("", 0);
  return empty;
}

/* `tlsrpt-ingest imap`, logging in with the password file unless @password is FALSE
 * (the credentials are then in @extra). */
static int
run_imap_with(Dove *d, gboolean imaps, gboolean password, const char *const *extra,
              char **err_out)
{
  g_autofree char *url = dove_url(d, imaps, NULL);
  g_autofree char *csv = g_build_filename(d->store, "reports.csv", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  const char *base[] = { "imap", url, "--user", "test", "--cacert", d->cacert, "--store",
                         d->store, "--csv", csv, "--password-file", d->password_file };
  for (guint i = 0; i < G_N_ELEMENTS(base) - (password ? 0 : 2); i++)
    g_ptr_array_add(argv, (gpointer) base[i]);
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) extra[i]);
  g_ptr_array_add(argv, NULL);
  g_autofree char *err = NULL;
  int rc = tu_run((const char *const *) argv->pdata, no_input(), NULL, &err);
  if (err_out != NULL)
    *err_out = g_steal_pointer(&err);
  return rc;
}

static int
run_imap(Dove *d, gboolean imaps, const char *const *extra, char **err_out)
{
  return run_imap_with(d, imaps, TRUE, extra, err_out);
}

static guint
store_index_lines(Dove *d)
{
  g_autofree char *p = g_build_filename(d->store, ".index", NULL);
  return tu_count_lines(p);
}

static guint
csv_rows(Dove *d)
{
  g_autofree char *p = g_build_filename(d->store, "reports.csv", NULL);
  guint n = tu_count_lines(p);
  return n > 0 ? n - 1 : 0;   /* the header */
}

static void
test_cli_imaps_and_starttls_ingest_once(void **state)
{
  Dove *d = *state;
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);
  g_autoptr(GBytes) plain = make_plain_message();
  dove_deliver(d, plain);

  g_autofree char *err = NULL;
  int rc = run_imap(d, TRUE, NULL, &err);
  if (rc != 0)
    fail_msg("imap exited %d: %s", rc, err);
  assert_non_null(strstr(err, "messages=4 "));
  assert_non_null(strstr(err, "not_reports=1"));
  guint reports = store_index_lines(d);
  guint rows = csv_rows(d);
  assert_true(reports >= 3);
  assert_true(rows >= reports);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 4);
  assert_int_equal(seen, 3);

  /* A second run (STARTTLS this time) finds nothing new. */
  g_free(err);
  err = NULL;
  rc = run_imap(d, FALSE, NULL, &err);
  if (rc != 0)
    fail_msg("imap (STARTTLS) exited %d: %s", rc, err);
  /* (The state is per host:port, so the non-report is looked at once more here.) */
  if (strstr(err, "stored=0 duplicates=0 not_reports=1") == NULL)
    fail_msg("second run: %s", err);
  assert_int_equal(store_index_lines(d), reports);
  assert_int_equal(csv_rows(d), rows);

  /* New mail over STARTTLS. */
  g_autoptr(GBytes) extra = make_report_message(7);
  dove_deliver(d, extra);
  g_free(err);
  err = NULL;
  rc = run_imap(d, FALSE, NULL, &err);
  if (rc != 0)
    fail_msg("imap (STARTTLS) exited %d: %s", rc, err);
  assert_non_null(strstr(err, "stored=1 "));
  assert_int_equal(store_index_lines(d), reports + 1);
  assert_int_equal(csv_rows(d), rows + 1);
}

static void
test_cli_move_to_and_error_folder(void **state)
{
  Dove *d = *state;
  for (guint i = 0; i < 3; i++) {
    g_autoptr(GBytes) m = make_report_message(i);
    dove_deliver(d, m);
  }
  g_autoptr(GBytes) broken = make_broken_gzip_message();
  dove_deliver(d, broken);
  g_autoptr(GBytes) plain = make_plain_message();
  dove_deliver(d, plain);
  const char *extra[] = { "--move-to", "Done", "--error-folder", "Broken", NULL };
  g_autofree char *err = NULL;
  int rc = run_imap(d, TRUE, extra, &err);
  /* Some messages were quarantined: exit 1. */
  if (rc != 1)
    fail_msg("imap exited %d (expected 1): %s", rc, err);
  assert_int_equal(dove_count(d, ".Done", NULL), 3);
  assert_int_equal(dove_count(d, ".Broken", NULL), 1);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 1);    /* the plain message */
  assert_int_equal(seen, 0);
  assert_int_equal(store_index_lines(d), 3);
  g_autofree char *q = g_build_filename(d->store, "quarantine", NULL);
  assert_int_equal(tu_count_files(q, ".eml"), 1);
}

static void
test_cli_errors_exit_codes(void **state)
{
  Dove *d = *state;
  dove_deliver_fixture(d, corpus[0]);
  g_autofree char *url = dove_url(d, TRUE, NULL);

  /* Untrusted certificate: 4, nothing marked. */
  const char *no_ca[] = { "imap", url, "--user", "test", "--password-file", d->password_file,
                          "--store", d->store, NULL };
  g_autofree char *err = NULL;
  assert_int_equal(tu_run(no_ca, no_input(), NULL, &err), 4);
  assert_non_null(strstr(err, "certificate"));

  /* Wrong password: 3, and the password never shows, even at -vv. */
  write_password(d, "hunter2-wrong");
  g_free(err);
  err = NULL;
  const char *vv[] = { "-v", "-v", NULL };
  assert_int_equal(run_imap(d, FALSE, vv, &err), 3);
  assert_non_null(strstr(err, "login refused"));
  assert_null(strstr(err, "hunter2"));
  g_autofree char *b64 = g_base64_encode((const guchar *) "\0test\0hunter2-wrong", 19);
  assert_null(strstr(err, b64));
  assert_non_null(strstr(err, "<credentials redacted>"));

  /* Server down: 75. */
  write_password(d, "secret");
  dove_stop(d);
  g_free(err);
  err = NULL;
  assert_int_equal(run_imap(d, TRUE, NULL, &err), 75);

  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 1);
  assert_int_equal(seen, 0);
}

static void
test_cli_uidvalidity_reset_no_duplicates(void **state)
{
  Dove *d = *state;
  for (guint i = 0; i < 5; i++) {
    g_autoptr(GBytes) m = make_report_message(i);
    dove_deliver(d, m);
  }
  const char *all[] = { "--all", NULL };
  g_autofree char *err = NULL;
  int rc = run_imap(d, TRUE, all, &err);
  if (rc != 0)
    fail_msg("imap exited %d: %s", rc, err);
  assert_int_equal(store_index_lines(d), 5);
  guint rows = csv_rows(d);
  assert_int_equal(rows, 5);

  dove_reset_uidvalidity(d);
  g_free(err);
  err = NULL;
  rc = run_imap(d, TRUE, all, &err);
  if (rc != 0)
    fail_msg("imap exited %d: %s", rc, err);
  assert_non_null(strstr(err, "messages=5 "));
  assert_non_null(strstr(err, "stored=0 duplicates=5"));
  /* The whole mailbox fetched again is said at the default level (it was debug only). */
  assert_non_null(strstr(err, "warning: "));
  assert_non_null(strstr(err, "UIDVALIDITY changed from "));
  assert_int_equal(store_index_lines(d), 5);
  assert_int_equal(csv_rows(d), rows);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 5);
  assert_int_equal(seen, 5);
}

/* A TCP relay in front of Dovecot's plain port that stops Dovecot right after the
 * client asked for the bodies of the N-th batch (the N-th "BODY.PEEK[]" command): the
 * server dies in the middle of a run, exactly there. With @cut, only part of that
 * answer gets through (the connection drops inside a literal of the batch). */
typedef struct {
  Dove *d;
  int listen_fd;
  int port;
  guint kill_after;
  gboolean cut;
  guint fetched;
  gboolean killed;
} Relay;

static gpointer
relay_thread(gpointer data)
{
  Relay *r = data;
  int c = accept(r->listen_fd, NULL, NULL);
  if (c < 0)
    return NULL;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) r->d->port_imap),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (connect(s, (struct sockaddr *) &a, sizeof a) != 0) {
    close(c);
    close(s);
    return NULL;
  }
  g_autoptr(GString) upstream = g_string_new(NULL);
  for (;;) {
    struct pollfd p[2] = { { .fd = c, .events = POLLIN }, { .fd = s, .events = POLLIN } };
    if (poll(p, 2, 30000) <= 0)
      break;
    char buf[65536];
    if (p[0].revents) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0)
        break;
      g_string_append_len(upstream, buf, n);
      if (write(s, buf, (size_t) n) != n)
        break;
      const char *q = upstream->str;
      while ((q = strstr(q, "BODY.PEEK[]")) != NULL) {
        r->fetched++;
        q += 11;
      }
      g_string_truncate(upstream, 0);
      if (r->fetched >= r->kill_after) {
        /* Let the answer for this one through (or half its first part), then the
         * server goes away. */
        g_usleep(200 * 1000);
        while (poll(&p[1], 1, 0) > 0 && (n = read(s, buf, sizeof buf)) > 0) {
          if (r->cut)
            n = n > 1 ? n / 2 : n;
          if (write(c, buf, (size_t) n) != n || r->cut)
            break;
        }
        dove_stop(r->d);
        r->killed = TRUE;
        /* Reconnects are refused at once, as by a host whose server is down. */
        close(r->listen_fd);
        r->listen_fd = -1;
        break;
      }
    }
    if (p[1].revents) {
      ssize_t n = read(s, buf, sizeof buf);
      if (n <= 0)
        break;
      if (write(c, buf, (size_t) n) != n)
        break;
    }
  }
  close(c);
  close(s);
  return NULL;
}

static void
server_killed_mid_run(void **state, guint kill_after, gboolean cut, guint min_seen)
{
  Dove *d = *state;
  const guint total = 40;
  for (guint i = 0; i < total; i++) {
    g_autoptr(GBytes) m = make_report_message(100 + i);
    dove_deliver(d, m);
  }
  Relay r = { .d = d, .kill_after = kill_after, .cut = cut };
  r.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  assert_int_equal(bind(r.listen_fd, (struct sockaddr *) &a, sizeof a), 0);
  socklen_t alen = sizeof a;
  assert_int_equal(getsockname(r.listen_fd, (struct sockaddr *) &a, &alen), 0);
  assert_int_equal(listen(r.listen_fd, 4), 0);
  r.port = ntohs(a.sin_port);
  GThread *t = g_thread_new("relay", relay_thread, &r);

  g_autofree char *url = g_strdup_printf("imap://127.0.0.1:%d/INBOX", r.port);
  g_autofree char *csv = g_build_filename(d->store, "reports.csv", NULL);
  const char *argv[] = { "imap", url, "--user", "test", "--password-file", d->password_file,
                         "--starttls=no", "--store", d->store, "--csv", csv,
                         "--batch-size", "4", NULL };
  g_autofree char *err = NULL;
  int rc = tu_run(argv, no_input(), NULL, &err);
  g_thread_join(t);
  if (r.listen_fd >= 0)
    close(r.listen_fd);
  assert_true(r.killed);
  if (rc != 75)
    fail_msg("imap exited %d (expected 75): %s", rc, err);

  /* Every message flagged \Seen was stored; nothing is stored twice. */
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), total);
  guint stored = store_index_lines(d);
  assert_true(seen >= min_seen);
  assert_true(seen <= stored);
  assert_true(stored < total);
  assert_int_equal(csv_rows(d), stored);

  /* Dovecot comes back; the rerun stores the rest, each exactly once. */
  dove_start(d);
  g_free(err);
  err = NULL;
  const char *batch[] = { "--batch-size", "4", NULL };
  rc = run_imap(d, TRUE, batch, &err);
  if (rc != 0)
    fail_msg("rerun exited %d: %s", rc, err);
  assert_int_equal(store_index_lines(d), total);
  assert_int_equal(csv_rows(d), total);
  assert_int_equal(dove_count(d, "", &seen), total);
  assert_int_equal(seen, total);
  g_autofree char *ids = tu_read_file(csv, NULL);
  for (guint i = 0; i < total; i++) {
    g_autofree char *id = g_strdup_printf("imap-test-%u,", 100 + i);
    const char *first = strstr(ids, id);
    assert_non_null(first);
    assert_null(strstr(first + 1, id));
  }
}

/* The commands a run sent after its login, from Dovecot's rawlog of the client's side:
 * the lines that start with one of our tags. *@n_match counts those containing @match;
 * @all (nullable) gets them all. */
static guint
rawlog_commands(Dove *d, const char *match, guint *n_match, GString *all)
{
  g_autofree char *dir = g_build_filename(d->dir, "rawlog", NULL);
  GDir *dh = g_dir_open(dir, 0, NULL);
  assert_non_null(dh);
  guint n = 0;
  *n_match = 0;
  const char *name;
  while ((name = g_dir_read_name(dh)) != NULL) {
    if (!g_str_has_suffix(name, ".in"))
      continue;
    g_autofree char *p = g_build_filename(dir, name, NULL);
    g_autofree char *text = tu_read_file(p, NULL);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
      /* Each line starts with its time stamp ("1796165467.411962 "). */
      g_strchomp(lines[i]);   /* the CR */
      const char *l = lines[i];
      if (g_ascii_isdigit(l[0]) && strchr(l, ' ') != NULL)
        l = strchr(l, ' ') + 1;
      if (l[0] != 't' || !g_ascii_isdigit(l[1]))
        continue;
      n++;
      if (strstr(l, match) != NULL)
        (*n_match)++;
      if (all != NULL)
        g_string_append_printf(all, "%s\n", l);
    }
  }
  g_dir_close(dh);
  return n;
}

static void
rawlog_enable(Dove *d, const char *more_conf)
{
  dove_stop(d);
  g_autofree char *dir = g_build_filename(d->dir, "rawlog", NULL);
  assert_int_equal(g_mkdir_with_parents(dir, 0755), 0);
  assert_int_equal(chown(dir, 8, 8), 0);
  g_autofree char *extra = g_build_filename(d->dir, "extra.conf", NULL);
  g_autofree char *conf = g_strdup_printf("rawlog_dir = %s\n%s", dir, more_conf);
  tu_write_file(extra, conf, strlen(conf));
  dove_start(d);
}

/* 30 messages in batches of 8: sizes and dates in one FETCH, the bodies in 4 (one per
 * batch), one STORE per batch after its commit; with --move-to on a server without
 * MOVE, COPY + STORE + UID EXPUNGE per batch. At most 10 + 4 per batch in all. */
static void
test_cli_batches_one_command_per_step(void **state)
{
  Dove *d = *state;
  rawlog_enable(d, "");
  for (guint i = 0; i < 30; i++) {
    g_autoptr(GBytes) m = make_report_message(200 + i);
    dove_deliver(d, m);
  }
  const char *batch[] = { "--batch-size", "8", NULL };
  g_autofree char *err = NULL;
  int rc = run_imap(d, TRUE, batch, &err);
  if (rc != 0)
    fail_msg("imap exited %d: %s", rc, err);
  assert_int_equal(csv_rows(d), 30);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 30);
  assert_int_equal(seen, 30);
  g_autoptr(GString) log = g_string_new(NULL);
  guint bodies = 0, stores = 0, metas = 0;
  guint total = rawlog_commands(d, "(UID BODY.PEEK[])", &bodies, log);
  rawlog_commands(d, "+FLAGS.SILENT (\\Seen)", &stores, NULL);
  rawlog_commands(d, "UID FETCH 1:30 (UID RFC822.SIZE INTERNALDATE)", &metas, NULL);
  print_message("%u commands:\n%s", total, log->str);
  assert_int_equal(bodies, 4);
  assert_int_equal(stores, 4);
  assert_int_equal(metas, 1);
  assert_true(total <= 10 + 4 * 4);

  /* Without MOVE: per batch COPY, STORE \Deleted, UID EXPUNGE of the batch's set. */
  dove_stop(d);
  g_autofree char *rawdir = g_build_filename(d->dir, "rawlog", NULL);
  tu_rmtree(rawdir);
  rawlog_enable(d, "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS\n");
  for (guint i = 0; i < 30; i++) {
    g_autoptr(GBytes) m = make_report_message(300 + i);
    dove_deliver(d, m);
  }
  const char *move[] = { "--batch-size", "8", "--move-to", "Processed", NULL };
  g_free(err);
  err = NULL;
  rc = run_imap(d, TRUE, move, &err);
  if (rc != 0)
    fail_msg("imap exited %d: %s", rc, err);
  assert_int_equal(csv_rows(d), 60);
  assert_int_equal(dove_count(d, ".Processed", NULL), 30);
  assert_int_equal(dove_count(d, "", NULL), 30);   /* the first 30, flagged \Seen */
  guint copies = 0, deleted = 0, expunges = 0;
  g_string_truncate(log, 0);
  total = rawlog_commands(d, "UID COPY 31:38 \"Processed\"", &copies, log);
  rawlog_commands(d, "+FLAGS.SILENT (\\Seen \\Deleted)", &deleted, NULL);
  rawlog_commands(d, "UID EXPUNGE ", &expunges, NULL);
  print_message("%u commands:\n%s", total, log->str);
  assert_int_equal(copies, 1);     /* the folder was created before the first message */
  assert_int_equal(deleted, 4);
  assert_int_equal(expunges, 4);
  assert_true(total <= 10 + 4 * 4);
}

/* Dovecot set up the way Courier and Cyrus lay out folders (Dovecot's documented
 * Courier migration: the inbox namespace "INBOX." with "." as separator) and without
 * MOVE, as Courier has none. */
static const char courier_layout_conf[] =
    "namespace inbox {\n  prefix = INBOX.\n  separator = .\n}\n"
    "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS NAMESPACE CHILDREN\n";

/* --move-to Processed and --error-folder Errors resolve to INBOX.Processed and
 * INBOX.Errors (created, subscribed); the non-report stays in INBOX; a rerun stores
 * nothing new. */
static void
test_cli_namespace_prefix_folders(void **state)
{
  Dove *d = *state;
  rawlog_enable(d, courier_layout_conf);
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);
  g_autoptr(GBytes) broken = make_broken_gzip_message();
  dove_deliver(d, broken);
  g_autoptr(GBytes) plain = make_plain_message();
  dove_deliver(d, plain);
  const char *extra[] = { "--move-to", "Processed", "--error-folder", "Errors/TLS", NULL };
  g_autofree char *err = NULL;
  int rc = run_imap(d, TRUE, extra, &err);
  if (rc != 1)
    fail_msg("imap exited %d (expected 1, one quarantined): %s", rc, err);
  /* Maildir++ keeps INBOX.X as .X on disk. */
  assert_int_equal(dove_count(d, ".Processed", NULL), 3);
  assert_int_equal(dove_count(d, ".Errors.TLS", NULL), 1);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 1);
  assert_int_equal(seen, 0);
  g_autoptr(GString) log = g_string_new(NULL);
  guint n = 0;
  rawlog_commands(d, "", &n, log);
  print_message("%s", log->str);
  assert_non_null(strstr(log->str, " NAMESPACE\n"));
  assert_non_null(strstr(log->str, " CREATE \"INBOX.Processed\"\n"));
  assert_non_null(strstr(log->str, " SUBSCRIBE \"INBOX.Processed\"\n"));
  assert_non_null(strstr(log->str, " CREATE \"INBOX.Errors.TLS\"\n"));
  assert_null(strstr(log->str, "UID MOVE"));
  assert_int_equal(store_index_lines(d), 3);

  /* Again: the folders exist now (LIST, no CREATE), nothing new is stored. */
  g_free(err);
  err = NULL;
  rc = run_imap(d, TRUE, extra, &err);
  if (rc != 0)
    fail_msg("rerun exited %d: %s", rc, err);
  assert_non_null(strstr(err, "stored=0"));
  assert_int_equal(store_index_lines(d), 3);
  assert_int_equal(dove_count(d, ".Processed", NULL), 3);
}

/* --mark-seen (the default) on the same layout. */
static void
test_cli_namespace_prefix_mark_seen(void **state)
{
  Dove *d = *state;
  dove_stop(d);
  g_autofree char *extra = g_build_filename(d->dir, "extra.conf", NULL);
  tu_write_file(extra, courier_layout_conf, strlen(courier_layout_conf));
  dove_start(d);
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);
  g_autofree char *err = NULL;
  int rc = run_imap(d, TRUE, NULL, &err);
  if (rc != 0)
    fail_msg("imap exited %d: %s", rc, err);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 3);
  assert_int_equal(seen, 3);
  assert_int_equal(store_index_lines(d), 3);
}

/* A folder the server refuses is a configuration error: exit 2 with the server's words,
 * before any message is fetched; nothing is stored or acknowledged. The same on every
 * run, and --watch stops with it instead of polling on. */
static void
test_cli_refused_folder_is_config_error(void **state)
{
  Dove *d = *state;
  dove_stop(d);
  g_autofree char *conf = g_build_filename(d->dir, "extra.conf", NULL);
  tu_write_file(conf, courier_layout_conf, strlen(courier_layout_conf));
  dove_start(d);
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);
  const char *extra[] = { "--move-to", "~Refused", NULL };
  const char *watch[] = { "--move-to", "~Refused", "--watch", "1", NULL };
  for (guint run = 0; run < 2; run++) {
    g_autofree char *err = NULL;
    int rc = run_imap(d, TRUE, run == 0 ? extra : watch, &err);
    if (rc != 2)
      fail_msg("imap exited %d (expected 2): %s", rc, err);
    assert_non_null(strstr(err, "folder '~Refused' (on the server: 'INBOX.~Refused')"));
    assert_non_null(strstr(err, "the server refused to create it: NO"));
    assert_non_null(strstr(err, "Begins with '~'"));
    guint seen = 0;
    assert_int_equal(dove_count(d, "", &seen), 3);
    assert_int_equal(seen, 0);
    assert_int_equal(store_index_lines(d), 0);
  }
}

/* ---- Courier-IMAP, the second real server (tests/imap/courier.sh) ------------------ */

static char *
courier_script(void)
{
  const char *src = g_getenv("TLSRPT_SOURCE_DIR");
  return g_build_filename(src != NULL ? src : ".", "tests", "imap", "courier.sh", NULL);
}

static void
courier_script_run(Dove *d, const char *cmd, const char *arg)
{
  g_autofree char *script = courier_script();
  const char *argv[] = { "bash", script, cmd, d->dir, arg, NULL };
  g_autofree char *err = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &err,
                    &status, &error))
    fail_msg("spawn %s: %s", script, error->message);
  if (!g_spawn_check_wait_status(status, NULL))
    fail_msg("%s %s failed: %s", script, cmd, err);
}

/* Courier keeps Maildir files with LF line ends and adds a CR to every LF it sends
 * (a file with CRLF would come back with CR CR LF): deliver @msg with LF. */
static void
courier_deliver(Dove *d, GBytes *msg)
{
  gsize len = 0;
  const char *p = g_bytes_get_data(msg, &len);
  GString *lf = g_string_sized_new(len);
  for (gsize i = 0; i < len; i++)
    if (!(p[i] == '\r' && i + 1 < len && p[i + 1] == '\n'))
      g_string_append_c(lf, p[i]);
  gsize n = lf->len;
  g_autoptr(GBytes) b = g_bytes_new_take(g_string_free(lf, FALSE), n);
  dove_deliver(d, b);
}

/* The same fixture as Dovecot's (a Dove: Maildir, store, certificate, IMAPS port). */
static int
courier_setup(void **state)
{
  if (geteuid() != 0)
    fail_msg("the IMAP tests start Courier-IMAP and must run as root");
  Dove *d = g_new0(Dove, 1);
  d->dir = tu_mkdtemp();
  d->store = tu_mkdtemp();
  d->maildir = g_build_filename(d->dir, "home", "Maildir", NULL);
  d->cacert = g_build_filename(d->dir, "cert.pem", NULL);
  g_autofree char *pwdir = tu_mkdtemp();
  d->password_file = g_build_filename(pwdir, "imap-password", NULL);
  write_password(d, "unused: preauthenticated");
  d->port_imaps = tu_free_port(FALSE);
  d->port_imap = -1;
  g_autofree char *port = g_strdup_printf("%d", d->port_imaps);
  courier_script_run(d, "start", port);
  *state = d;
  return 0;
}

static int
courier_teardown(void **state)
{
  Dove *d = *state;
  courier_script_run(d, "stop", NULL);
  g_autofree char *pwdir = g_path_get_dirname(d->password_file);
  tu_rmtree(pwdir);
  tu_rmtree(d->store);
  tu_rmtree(d->dir);
  g_free(d->dir);
  g_free(d->store);
  g_free(d->maildir);
  g_free(d->cacert);
  g_free(d->password_file);
  g_free(d);
  return 0;
}

/* Courier: --move-to Processed lands in INBOX.Processed (COPY + \Deleted + UID EXPUNGE:
 * no MOVE), --error-folder Errors/TLS in INBOX.Errors.TLS, the non-report stays; a
 * rerun stores nothing new. */
static void
test_courier_move_to_and_error_folder(void **state)
{
  Dove *d = *state;
  for (guint i = 0; i < 3; i++) {
    g_autoptr(GBytes) m = make_report_message(400 + i);
    courier_deliver(d, m);
  }
  g_autoptr(GBytes) broken = make_broken_gzip_message();
  courier_deliver(d, broken);
  g_autoptr(GBytes) plain = make_plain_message();
  courier_deliver(d, plain);
  const char *extra[] = { "--move-to", "Processed", "--error-folder", "Errors/TLS", "-v", "-v",
                          NULL };
  g_autofree char *err = NULL;
  int rc = run_imap(d, TRUE, extra, &err);
  if (rc != 1)
    fail_msg("imap exited %d (expected 1, one quarantined): %s", rc, err);
  assert_non_null(strstr(err, "folder 'Processed' is 'INBOX.Processed' on the server"));
  assert_non_null(strstr(err, "UID COPY 1:3 \"INBOX.Processed\""));
  assert_null(strstr(err, "UID MOVE"));
  assert_int_equal(dove_count(d, ".Processed", NULL), 3);
  assert_int_equal(dove_count(d, ".Errors.TLS", NULL), 1);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 1);
  assert_int_equal(seen, 0);
  assert_int_equal(store_index_lines(d), 3);

  g_free(err);
  err = NULL;
  rc = run_imap(d, TRUE, extra, &err);
  if (rc != 0)
    fail_msg("rerun exited %d: %s", rc, err);
  assert_non_null(strstr(err, "stored=0"));
  assert_int_equal(dove_count(d, ".Processed", NULL), 3);
  assert_int_equal(store_index_lines(d), 3);
}

/* Courier: --mark-seen, the default, in batches. */
static void
test_courier_mark_seen(void **state)
{
  Dove *d = *state;
  for (guint i = 0; i < 10; i++) {
    g_autoptr(GBytes) m = make_report_message(500 + i);
    courier_deliver(d, m);
  }
  const char *extra[] = { "--batch-size", "4", NULL };
  g_autofree char *err = NULL;
  int rc = run_imap(d, TRUE, extra, &err);
  if (rc != 0)
    fail_msg("imap exited %d: %s", rc, err);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 10);
  assert_int_equal(seen, 10);
  assert_int_equal(csv_rows(d), 10);
}

/* Courier refuses an empty level ("Bad//Name" is INBOX.Bad..Name): exit 2 with its
 * words, nothing stored or acknowledged. */
static void
test_courier_refused_folder(void **state)
{
  Dove *d = *state;
  g_autoptr(GBytes) m = make_report_message(600);
  courier_deliver(d, m);
  const char *extra[] = { "--move-to", "Bad//Name", NULL };
  g_autofree char *err = NULL;
  int rc = run_imap(d, TRUE, extra, &err);
  if (rc != 2)
    fail_msg("imap exited %d (expected 2): %s", rc, err);
  assert_non_null(strstr(err, "folder 'Bad//Name' (on the server: 'INBOX.Bad..Name'): the "
                              "server refused to create it: NO"));
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 1);
  assert_int_equal(seen, 0);
  assert_int_equal(store_index_lines(d), 0);
}

/* Batches of 4: the server goes away after the 5th batch was fetched; the 3rd and 4th
 * (stored, the 4th maybe not yet) are not acknowledged, two are. */
static void
test_cli_server_killed_mid_batch(void **state)
{
  server_killed_mid_run(state, 5, FALSE, 8);
}

/* The connection drops inside the answer of the 3rd batch: that batch is never
 * stored, the 2nd maybe not acknowledged, the 1st is. */
static void
test_cli_connection_cut_inside_batch_literal(void **state)
{
  server_killed_mid_run(state, 3, TRUE, 4);
}

/* Wait (@tries times 50 ms) until the store holds @n reports. */
static void
wait_index_lines(Dove *d, guint n, int tries)
{
  for (int i = 0; i < tries && store_index_lines(d) < n; i++)
    g_usleep(50 * 1000);
  assert_int_equal(store_index_lines(d), n);
}

/* `tlsrpt-ingest imap --watch 1` on INBOX over imaps, with @creds (the credential
 * options). (transfer full) */
static GSubprocess *
watch_start(Dove *d, const char *const *creds)
{
  g_autofree char *url = dove_url(d, TRUE, NULL);
  const char *bin = g_getenv("TLSRPT_BIN");
  assert_non_null(bin);
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  const char *base[] = { bin, "imap", url, "--user", "test", "--cacert", d->cacert,
                         "--store", d->store, "--watch", "1" };
  for (guint i = 0; i < G_N_ELEMENTS(base); i++)
    g_ptr_array_add(argv, (gpointer) base[i]);
  for (guint i = 0; creds[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) creds[i]);
  g_ptr_array_add(argv, NULL);
  g_autoptr(GError) error = NULL;
  GSubprocess *p = g_subprocess_newv((const char *const *) argv->pdata,
                                     G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  if (p == NULL)
    fail_msg("spawn: %s", error->message);
  return p;
}

/* SIGTERM to a --watch poller, which must exit 0; its standard error. (transfer full) */
static char *
watch_stop(GSubprocess *p)
{
  g_autoptr(GError) error = NULL;
  g_subprocess_send_signal(p, SIGTERM);
  g_autoptr(GBytes) eb = NULL;
  if (!g_subprocess_communicate(p, NULL, NULL, NULL, &eb, &error))
    fail_msg("communicate: %s", error->message);
  char *err = g_strndup(g_bytes_get_data(eb, NULL), g_bytes_get_size(eb));
  assert_true(g_subprocess_get_if_exited(p));
  if (g_subprocess_get_exit_status(p) != 0)
    fail_msg("--watch exited %d on SIGTERM: %s", g_subprocess_get_exit_status(p), err);
  return err;
}

static void
test_cli_watch_picks_up_new_mail_and_stops_on_sigterm(void **state)
{
  Dove *d = *state;
  g_autoptr(GBytes) m1 = make_report_message(1);
  dove_deliver(d, m1);
  const char *creds[] = { "--password-file", d->password_file, NULL };
  g_autoptr(GSubprocess) p = watch_start(d, creds);
  wait_index_lines(d, 1, 200);

  g_autoptr(GBytes) m2 = make_report_message(2);
  dove_deliver(d, m2);
  wait_index_lines(d, 2, 200);

  g_autofree char *err = watch_stop(p);
  guint seen = 0;
  assert_int_equal(dove_count(d, "", &seen), 2);
  assert_int_equal(seen, 2);
}

/* --sasl plain and --sasl login with a password: that mechanism, the password never
 * in the trace. */
static void
test_cli_sasl_plain_and_login(void **state)
{
  Dove *d = *state;
  dove_deliver_fixture(d, corpus[0]);
  const char *mechs[] = { "plain", "login" };
  for (guint k = 0; k < G_N_ELEMENTS(mechs); k++) {
    const char *extra[] = { "--sasl", mechs[k], "-v", "-v", "-v", "--all", NULL };
    g_autofree char *err = NULL;
    int rc = run_imap(d, TRUE, extra, &err);
    if (rc != 0)
      fail_msg("--sasl %s exited %d: %s", mechs[k], rc, err);
    g_autofree char *up = g_ascii_strup(mechs[k], -1);
    g_autofree char *want = g_strdup_printf(" AUTHENTICATE %s <credentials redacted>", up);
    if (strstr(err, want) == NULL)
      fail_msg("no '%s' in:\n%s", want, err);
    assert_null(strstr(err, "secret"));
    assert_null(strstr(err, "c2VjcmV0"));                     /* base64 "secret" */
    assert_null(strstr(err, "AHRlc3QAc2VjcmV0"));             /* base64 "\0test\0secret" */
  }
  /* A mechanism the server does not offer: refused, exit 3 (never a LOGIN instead). */
  dove_stop(d);
  g_autofree char *extra_conf = g_build_filename(d->dir, "extra.conf", NULL);
  const char *mechs_conf = "auth_mechanisms = plain\n";
  tu_write_file(extra_conf, mechs_conf, strlen(mechs_conf));
  dove_start(d);
  const char *login[] = { "--sasl", "login", NULL };
  g_autofree char *err = NULL;
  assert_int_equal(run_imap(d, TRUE, login, &err), 3);
  if (strstr(err, "the server offers no login mechanism for a password (--sasl login)") == NULL)
    fail_msg("unexpected: %s", err);
}

/* ---- OAuth2: XOAUTH2 / OAUTHBEARER against Dovecot's passdb oauth2 ------------------- */

/* The introspection endpoint Dovecot asks about each token (RFC 7662 style: POST
 * "token=..."; introspection_mode = post), here in the test process with
 * libmicrohttpd: it knows one valid token, which a test may change, and records every
 * token it was asked about. */
/* Two long tokens shaped like the big providers' (a JWT, a Google one). */
#define TOKEN_GOOD "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlMzY1LmNvbSIsInNjcCI6IklNQVAuQWNjZXNzQXNVc2VyLkFsbCJ9.c2lnbmF0dXJlLWdvb2Q"
#define TOKEN_NEXT "ya29.a0AfB_byC-next-token-7Qx9LmZ2pW4vR8sT1uY6eH3jK0nB5"

typedef struct {
  struct MHD_Daemon *daemon;
  int port;
  GMutex lock;
  char *valid;            /* the one active token */
  GPtrArray *asked;       /* char*: every token Dovecot asked about, in order */
} Introspect;

static Introspect introspect;

typedef struct {
  GString *body;
} IntrospectRequest;

static void
introspect_done(void *cls, struct MHD_Connection *c, void **con_cls,
                enum MHD_RequestTerminationCode toe)
{
  (void) cls;
  (void) c;
  (void) toe;
  IntrospectRequest *r = *con_cls;
  if (r != NULL) {
    g_string_free(r->body, TRUE);
    g_free(r);
  }
  *con_cls = NULL;
}

/* The value of @name in a form body "a=1&b=2" (URL-decoded), or NULL. */
static char *
introspect_field(const char *body, const char *name)
{
  g_auto(GStrv) fields = g_strsplit(body, "&", -1);
  gsize n = strlen(name);
  for (guint i = 0; fields[i] != NULL; i++)
    if (strncmp(fields[i], name, n) == 0 && fields[i][n] == '=') {
      g_autofree char *plus = g_strdelimit(g_strdup(fields[i] + n + 1), "+", ' ');
      return g_uri_unescape_string(plus, NULL);
    }
  return NULL;
}

static enum MHD_Result
introspect_reply(struct MHD_Connection *c, unsigned int status, const char *json)
{
  struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(json), (void *) json,
                                                              MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(resp, "Content-Type", "application/json");
  enum MHD_Result ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* A stand-in for Microsoft's token endpoint (client credentials grant): the client
 * "test-client" with the secret "s3cret value/+" gets TOKEN_GOOD, as Entra ID answers. */
static enum MHD_Result
introspect_token_endpoint(struct MHD_Connection *c, const char *body)
{
  g_autofree char *grant = introspect_field(body, "grant_type");
  g_autofree char *id = introspect_field(body, "client_id");
  g_autofree char *secret = introspect_field(body, "client_secret");
  g_autofree char *scope = introspect_field(body, "scope");
  if (g_strcmp0(grant, "client_credentials") != 0 ||
      g_strcmp0(scope, "https://outlook.office365.com/.default") != 0)
    return introspect_reply(c, 400, "{\"error\":\"invalid_request\",\"error_description\":"
                                    "\"AADSTS900144: bad grant or scope\"}");
  if (g_strcmp0(id, "test-client") != 0 || g_strcmp0(secret, "s3cret value/+") != 0)
    return introspect_reply(c, 401, "{\"error\":\"invalid_client\",\"error_description\":"
                                    "\"AADSTS7000215: Invalid client secret provided.\"}");
  return introspect_reply(c, 200, "{\"token_type\":\"Bearer\",\"expires_in\":3599,"
                                  "\"ext_expires_in\":3599,\"access_token\":\"" TOKEN_GOOD "\"}");
}

static enum MHD_Result
introspect_answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  (void) cls;
  (void) url;
  (void) version;
  IntrospectRequest *r = *con_cls;
  if (r == NULL) {
    r = g_new0(IntrospectRequest, 1);
    r->body = g_string_new(NULL);
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    if (r->body->len < 65536)
      g_string_append_len(r->body, upload, (gssize) *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(url, "/token") == 0)
    return introspect_token_endpoint(c, r->body->str);
  /* "token=T&client_id=&client_secret=" */
  g_autofree char *token = introspect_field(r->body->str, "token");
  g_mutex_lock(&introspect.lock);
  gboolean active = strcmp(method, "POST") == 0 && token != NULL &&
                    introspect.valid != NULL && strcmp(token, introspect.valid) == 0;
  g_ptr_array_add(introspect.asked, g_strdup(token != NULL ? token : ""));
  g_mutex_unlock(&introspect.lock);
  return introspect_reply(c, 200, active ? "{\"active\":true,\"username\":\"test\","
                                           "\"scope\":\"imap\"}"
                                         : "{\"active\":false}");
}

static void
introspect_set_valid(const char *token)
{
  g_mutex_lock(&introspect.lock);
  g_free(introspect.valid);
  introspect.valid = g_strdup(token);
  g_mutex_unlock(&introspect.lock);
}

/* How often Dovecot asked about @token (NULL: about any). */
static guint
introspect_asked(const char *token)
{
  g_mutex_lock(&introspect.lock);
  guint n = 0;
  for (guint i = 0; i < introspect.asked->len; i++)
    if (token == NULL || strcmp(introspect.asked->pdata[i], token) == 0)
      n++;
  g_mutex_unlock(&introspect.lock);
  return n;
}


/* Dovecot with XOAUTH2 and OAUTHBEARER, tokens checked by the introspection endpoint
 * above; no auth cache (every login asks), no failure delay. */
static int
oauth_setup(void **state)
{
  dove_setup(state);
  Dove *d = *state;
  g_mutex_init(&introspect.lock);
  introspect.asked = g_ptr_array_new_with_free_func(g_free);
  introspect.valid = g_strdup(TOKEN_GOOD);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  introspect.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                       introspect_answer, NULL, MHD_OPTION_SOCK_ADDR, &a,
                                       MHD_OPTION_NOTIFY_COMPLETED, introspect_done, NULL,
                                       MHD_OPTION_END);
  assert_non_null(introspect.daemon);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(introspect.daemon,
                                                         MHD_DAEMON_INFO_BIND_PORT);
  assert_non_null(info);
  introspect.port = info->port;
  assert_true(introspect.port > 0);

  dove_stop(d);
  g_autofree char *ext = g_build_filename(d->dir, "oauth2.conf.ext", NULL);
  g_autofree char *oauth = g_strdup_printf(
      "introspection_mode = post\n"
      "introspection_url = http://127.0.0.1:%d/introspect\n"
      "force_introspection = yes\n"
      "username_attribute = username\n"
      "active_attribute = active\n"
      "active_value = true\n"
      "timeout_msecs = 5000\n", introspect.port);
  tu_write_file(ext, oauth, strlen(oauth));
  g_autofree char *extra = g_build_filename(d->dir, "extra.conf", NULL);
  g_autofree char *conf = g_strdup_printf(
      "auth_mechanisms = plain login xoauth2 oauthbearer\n"
      "auth_cache_size = 0\n"
      "auth_failure_delay = 0\n"
      "passdb {\n"
      "  driver = oauth2\n"
      "  mechanisms = xoauth2 oauthbearer\n"
      "  args = %s\n"
      "}\n", ext);
  tu_write_file(extra, conf, strlen(conf));
  dove_start(d);
  return 0;
}

static int
oauth_teardown(void **state)
{
  MHD_stop_daemon(introspect.daemon);
  introspect.daemon = NULL;
  g_clear_pointer(&introspect.valid, g_free);
  g_clear_pointer(&introspect.asked, g_ptr_array_unref);
  g_mutex_clear(&introspect.lock);
  return dove_teardown(state);
}

/* A token command printing @first on its first run and @then on the later ones;
 * *count_file (transfer full) counts its runs. (transfer full) */
static char *
token_script(Dove *d, const char *first, const char *then, char **count_file)
{
  g_autofree char *dir = g_path_get_dirname(d->password_file);
  *count_file = g_build_filename(dir, "token-runs", NULL);
  g_autofree char *script = g_build_filename(dir, "token-helper.sh", NULL);
  g_autofree char *text = g_strdup_printf(
      "n=$(cat '%s' 2>/dev/null || echo 0)\n"
      "n=$((n + 1)); echo $n > '%s'\n"
      "if [ $n -eq 1 ]; then echo '%s'; else echo '%s'; fi\n",
      *count_file, *count_file, first, then);
  tu_write_file(script, text, strlen(text));
  return g_strdup_printf("sh '%s'", script);
}

static guint
token_runs(const char *count_file)
{
  g_autofree char *text = tu_read_file(count_file, NULL);
  return text != NULL ? (guint) atoi(text) : 0;
}

/* The SASL initial responses that would carry @token (libcurl's XOAUTH2 and
 * OAUTHBEARER for user "test" on @port), in base64 as they go on the wire. */
static void
assert_token_absent(const char *log, const char *token, int port)
{
  assert_null(strstr(log, token));
  g_autofree char *x = g_strdup_printf("user=test\001auth=Bearer %s\001\001", token);
  g_autofree char *o = g_strdup_printf("n,a=test,\001host=127.0.0.1\001port=%d\001"
                                       "auth=Bearer %s\001\001", port, token);
  g_autofree char *bx = g_base64_encode((const guchar *) x, strlen(x));
  g_autofree char *bo = g_base64_encode((const guchar *) o, strlen(o));
  assert_null(strstr(log, bx));
  assert_null(strstr(log, bo));
  /* Nor a long piece of the token (e.g. its signature part). */
  gsize n = strlen(token);
  g_autofree char *tail = g_strdup(token + (n > 24 ? n - 24 : 0));
  assert_null(strstr(log, tail));
}

/* The corpus into INBOX. */
static void
oauth_deliver_corpus(Dove *d)
{
  for (guint i = 0; i < G_N_ELEMENTS(corpus); i++)
    dove_deliver_fixture(d, corpus[i]);
}

/* INBOX holds @total messages, @seen of them flagged \Seen. */
static void
oauth_assert_inbox(Dove *d, guint total, guint seen)
{
  guint n_seen = 0;
  assert_int_equal(dove_count(d, "", &n_seen), total);
  assert_int_equal(n_seen, seen);
}

static void
test_oauth2_xoauth2_and_oauthbearer_store_the_corpus(void **state)
{
  Dove *d = *state;
  oauth_deliver_corpus(d);
  const char *mechs[] = { "xoauth2", "oauthbearer", NULL };
  const char *wire[] = { "XOAUTH2", "OAUTHBEARER", "OAUTHBEARER" };
  for (guint k = 0; k < G_N_ELEMENTS(mechs); k++) {
    /* Each mechanism into a store of its own, all messages (--all): the whole corpus. */
    tu_rmtree(d->store);
    g_free(d->store);
    d->store = tu_mkdtemp();
    const char *extra[] = { "--oauth2-token-command", "echo '" TOKEN_GOOD "'", "--all",
                            "-v", "-v", "--sasl", mechs[k], NULL };
    if (mechs[k] == NULL)
      extra[5] = NULL;    /* the default: OAUTHBEARER, the first the server offers */
    g_autofree char *err = NULL;
    int rc = run_imap_with(d, k != 1, FALSE, extra, &err);
    if (rc != 0)
      fail_msg("imap --sasl %s exited %d: %s", mechs[k] ? mechs[k] : "(auto)", rc, err);
    g_autofree char *line = g_strdup_printf(" AUTHENTICATE %s <credentials redacted>", wire[k]);
    if (strstr(err, line) == NULL)
      fail_msg("no '%s' in the trace:\n%s", line, err);
    assert_non_null(strstr(err, "messages=3 "));
    assert_true(store_index_lines(d) >= 3);
    assert_true(csv_rows(d) >= 3);
    assert_token_absent(err, TOKEN_GOOD, k != 1 ? d->port_imaps : d->port_imap);
  }
  oauth_assert_inbox(d, 3, 3);
  /* Dovecot asked the endpoint at every login. */
  assert_int_equal(introspect_asked(TOKEN_GOOD), 3);
}

static void
test_oauth2_expired_token_is_refreshed(void **state)
{
  Dove *d = *state;
  oauth_deliver_corpus(d);
  g_autofree char *count = NULL;
  g_autofree char *cmd = token_script(d, "expired-cached-token", TOKEN_GOOD, &count);
  const char *extra[] = { "--oauth2-token-command", cmd, "-v", NULL };
  g_autofree char *err = NULL;
  int rc = run_imap_with(d, TRUE, FALSE, extra, &err);
  if (rc != 0)
    fail_msg("imap exited %d: %s", rc, err);
  assert_non_null(strstr(err, "the server refused the access token; getting a fresh one"));
  assert_non_null(strstr(err, "stored=3 "));
  assert_int_equal(token_runs(count), 2);
  /* Both logins reached the endpoint: no cache made the second pass for the first. */
  assert_int_equal(introspect_asked("expired-cached-token"), 1);
  assert_int_equal(introspect_asked(TOKEN_GOOD), 1);
  oauth_assert_inbox(d, 3, 3);
  assert_null(strstr(err, "expired-cached-token"));
}

static void
test_oauth2_refused_after_refresh_is_exit_3(void **state)
{
  Dove *d = *state;
  oauth_deliver_corpus(d);
  g_autofree char *count = NULL;
  g_autofree char *cmd = token_script(d, "revoked-token-1", "revoked-token-2", &count);
  const char *extra[] = { "--oauth2-token-command", cmd, "--sasl", "xoauth2", NULL };
  g_autofree char *err = NULL;
  assert_int_equal(run_imap_with(d, TRUE, FALSE, extra, &err), 3);
  if (strstr(err, "login refused for user test (token from --oauth2-token-command; a fresh "
                  "one was refused too)") == NULL)
    fail_msg("unexpected: %s", err);
  assert_int_equal(token_runs(count), 2);
  assert_int_equal(introspect_asked("revoked-token-1"), 1);
  assert_int_equal(introspect_asked("revoked-token-2"), 1);
  assert_null(strstr(err, "revoked-token"));
  /* Nothing fetched, stored or marked. */
  oauth_assert_inbox(d, 3, 0);
  assert_int_equal(store_index_lines(d), 0);
}

static void
test_oauth2_failing_token_command_is_exit_3(void **state)
{
  Dove *d = *state;
  dove_deliver_fixture(d, corpus[0]);
  const char *extra[] = { "--oauth2-token-command",
                          "echo 'token-helper: no refresh token for test@example.com; run "
                          "the authorization again' >&2; exit 1", NULL };
  g_autofree char *err = NULL;
  assert_int_equal(run_imap_with(d, TRUE, FALSE, extra, &err), 3);
  if (strstr(err, "no access token for user test: --oauth2-token-command failed with exit "
                  "status 1: token-helper: no refresh token for test@example.com; run the "
                  "authorization again") == NULL)
    fail_msg("unexpected: %s", err);

  /* A hung helper (waiting for a browser that never comes): killed, exit 3. */
  const char *hung[] = { "--oauth2-token-command", "echo 'open the URL below' >&2; sleep 60",
                         "--oauth2-token-timeout", "1", NULL };
  g_free(err);
  err = NULL;
  gint64 t0 = g_get_monotonic_time();
  assert_int_equal(run_imap_with(d, TRUE, FALSE, hung, &err), 3);
  assert_true(g_get_monotonic_time() - t0 < 5 * G_USEC_PER_SEC);
  assert_non_null(strstr(err, "did not finish within 1 s (--oauth2-token-timeout) and was "
                              "killed: open the URL below"));

  /* Empty output. */
  const char *empty[] = { "--oauth2-token-command", "true", NULL };
  g_free(err);
  err = NULL;
  assert_int_equal(run_imap_with(d, TRUE, FALSE, empty, &err), 3);
  assert_non_null(strstr(err, "gave no token"));

  /* The server was never asked, nothing was marked. */
  assert_int_equal(introspect_asked(NULL), 0);
  oauth_assert_inbox(d, 1, 0);
}

static void
test_oauth2_token_never_in_the_log(void **state)
{
  Dove *d = *state;
  oauth_deliver_corpus(d);
  g_autofree char *dir = g_path_get_dirname(d->password_file);
  g_autofree char *file = g_build_filename(dir, "access-token", NULL);
  tu_write_file(file, TOKEN_GOOD "\n", strlen(TOKEN_GOOD) + 1);
  assert_int_equal(chmod(file, 0600), 0);
  /* -vvv, both mechanisms, STARTTLS and imaps, a refused token first. */
  introspect_set_valid(TOKEN_NEXT);
  const char *refused[] = { "--oauth2-token-file", file, "-v", "-v", "-v", NULL };
  g_autofree char *err = NULL;
  assert_int_equal(run_imap_with(d, FALSE, FALSE, refused, &err), 3);
  assert_non_null(strstr(err, "(token from token file "));
  assert_non_null(strstr(err, "<credentials redacted>"));
  assert_token_absent(err, TOKEN_GOOD, d->port_imap);

  introspect_set_valid(TOKEN_GOOD);
  const char *mechs[] = { "xoauth2", "oauthbearer" };
  for (guint k = 0; k < G_N_ELEMENTS(mechs); k++) {
    const char *extra[] = { "--oauth2-token-file", file, "--sasl", mechs[k], "-v", "-v",
                            "-v", NULL };
    g_free(err);
    err = NULL;
    int rc = run_imap_with(d, k == 0, FALSE, extra, &err);
    if (rc != 0)
      fail_msg("imap exited %d: %s", rc, err);
    g_autofree char *line = g_ascii_strup(mechs[k], -1);
    g_autofree char *want = g_strdup_printf(" AUTHENTICATE %s <credentials redacted>", line);
    assert_non_null(strstr(err, want));
    assert_token_absent(err, TOKEN_GOOD, k == 0 ? d->port_imaps : d->port_imap);
  }
  assert_int_equal(store_index_lines(d), 3);

  /* Group- or world-readable: refused before any connection (a config error, 2). */
  guint asked = introspect_asked(NULL);
  assert_int_equal(chmod(file, 0644), 0);
  const char *open_file[] = { "--oauth2-token-file", file, NULL };
  g_free(err);
  err = NULL;
  assert_int_equal(run_imap_with(d, TRUE, FALSE, open_file, &err), 2);
  assert_non_null(strstr(err, "is readable by group or others (chmod 600 "));
  assert_token_absent(err, TOKEN_GOOD, d->port_imaps);
  assert_int_equal(introspect_asked(NULL), asked);
}

/* contrib/oauth2/m365-client-credentials-token against a stand-in of the token
 * endpoint: the token it gets logs in; a wrong secret is exit 3 with Entra's words. */
static void
test_oauth2_m365_helper_script(void **state)
{
  Dove *d = *state;
  oauth_deliver_corpus(d);
  const char *src = g_getenv("TLSRPT_SOURCE_DIR");
  assert_non_null(src);
  g_autofree char *helper = g_build_filename(src, "contrib", "oauth2",
                                             "m365-client-credentials-token", NULL);
  g_autofree char *dir = g_path_get_dirname(d->password_file);
  g_autofree char *secret = g_build_filename(dir, "m365-client-secret", NULL);
  tu_write_file(secret, "wrong\n", 6);
  assert_int_equal(chmod(secret, 0600), 0);
  g_autofree char *cmd = g_strdup_printf(
      "TLSRPT_M365_TOKEN_URL=http://127.0.0.1:%d/token sh '%s' tenant-id test-client '%s'",
      introspect.port, helper, secret);
  const char *extra[] = { "--oauth2-token-command", cmd, NULL };
  g_autofree char *err = NULL;
  assert_int_equal(run_imap_with(d, TRUE, FALSE, extra, &err), 3);
  if (strstr(err, "--oauth2-token-command failed with exit status 1: m365-token: no access "
                  "token from http://127.0.0.1:") == NULL ||
      strstr(err, ": AADSTS7000215: Invalid client secret provided.") == NULL)
    fail_msg("unexpected: %s", err);
  oauth_assert_inbox(d, 3, 0);

  tu_write_file(secret, "s3cret value/+\r\n", 16);
  g_free(err);
  err = NULL;
  int rc = run_imap_with(d, TRUE, FALSE, extra, &err);
  if (rc != 0)
    fail_msg("imap exited %d: %s", rc, err);
  assert_non_null(strstr(err, "stored=3 "));
  assert_int_equal(introspect_asked(TOKEN_GOOD), 1);
  oauth_assert_inbox(d, 3, 3);
}

/* End every IMAP session of this Dovecot (its imap processes), as a server does with
 * the session of an expired token; the master keeps listening. */
static guint
dove_kill_sessions(Dove *d)
{
  g_autofree char *pidpath = g_build_filename(d->dir, "run", "master.pid", NULL);
  g_autofree char *text = tu_read_file(pidpath, NULL);
  assert_non_null(text);
  int master = atoi(text);
  guint killed = 0;
  GDir *proc = g_dir_open("/proc", 0, NULL);
  assert_non_null(proc);
  const char *name;
  while ((name = g_dir_read_name(proc)) != NULL) {
    if (!g_ascii_isdigit(name[0]))
      continue;
    g_autofree char *statpath = g_build_filename("/proc", name, "stat", NULL);
    g_autofree char *stat = NULL;
    if (!g_file_get_contents(statpath, &stat, NULL, NULL))
      continue;
    /* "PID (COMM) STATE PPID ..." */
    const char *open = strchr(stat, '(');
    const char *close = strrchr(stat, ')');
    if (open == NULL || close == NULL)
      continue;
    g_autofree char *comm = g_strndup(open + 1, (gsize) (close - open - 1));
    int ppid = 0;
    char st = 0;
    if (sscanf(close + 1, " %c %d", &st, &ppid) != 2)
      continue;
    if (ppid == master && strcmp(comm, "imap") == 0 && kill(atoi(name), SIGKILL) == 0)
      killed++;
  }
  g_dir_close(proc);
  return killed;
}

/* --watch: a connection that ends (the server dropped the session when its token
 * expired) is made again with a token the command fetches again. */
static void
test_oauth2_watch_fetches_a_new_token_at_reconnect(void **state)
{
  Dove *d = *state;
  g_autoptr(GBytes) m1 = make_report_message(1);
  dove_deliver(d, m1);
  g_autofree char *dir = g_path_get_dirname(d->password_file);
  g_autofree char *current = g_build_filename(dir, "current-token", NULL);
  tu_write_file(current, TOKEN_GOOD "\n", strlen(TOKEN_GOOD) + 1);
  g_autofree char *cmd = g_strdup_printf("cat '%s'", current);
  const char *creds[] = { "--oauth2-token-command", cmd, "-v", NULL };
  g_autoptr(GSubprocess) p = watch_start(d, creds);
  wait_index_lines(d, 1, 200);

  /* The old token expires, the helper has a new one, the session is gone. */
  introspect_set_valid(TOKEN_NEXT);
  tu_write_file(current, TOKEN_NEXT "\n", strlen(TOKEN_NEXT) + 1);
  assert_true(dove_kill_sessions(d) >= 1);
  g_autoptr(GBytes) m2 = make_report_message(2);
  dove_deliver(d, m2);
  wait_index_lines(d, 2, 400);
  assert_true(introspect_asked(TOKEN_NEXT) >= 1);

  g_autofree char *err = watch_stop(p);
  assert_null(strstr(err, TOKEN_GOOD));
  assert_null(strstr(err, TOKEN_NEXT));
  oauth_assert_inbox(d, 2, 2);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_imaps_fetches_corpus_byte_exact_and_unseen,
                                    dove_setup, dove_teardown),
    cmocka_unit_test_setup_teardown(test_starttls_fetches_corpus_byte_exact_and_unseen,
                                    dove_setup, dove_teardown),
    cmocka_unit_test_setup_teardown(test_commit_stored_marks_seen, dove_setup, dove_teardown),
    cmocka_unit_test_setup_teardown(test_move_to_and_error_folder, dove_setup, dove_teardown),
    cmocka_unit_test_setup_teardown(test_move_without_move_capability, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_not_report_stays_unseen, dove_setup, dove_teardown),
    cmocka_unit_test_setup_teardown(test_oversized_message_is_skipped, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_wrong_password_is_auth_error, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_password_file_permissions, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_untrusted_certificate_is_tls_error, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_second_poller_is_locked_out, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_uidvalidity_change_resets_last_uid, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_bad_urls, dove_setup, dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_imaps_and_starttls_ingest_once, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_move_to_and_error_folder, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_errors_exit_codes, dove_setup, dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_uidvalidity_reset_no_duplicates, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_courier_move_to_and_error_folder, courier_setup,
                                    courier_teardown),
    cmocka_unit_test_setup_teardown(test_courier_mark_seen, courier_setup, courier_teardown),
    cmocka_unit_test_setup_teardown(test_courier_refused_folder, courier_setup,
                                    courier_teardown),
    cmocka_unit_test_setup_teardown(test_cli_namespace_prefix_folders, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_namespace_prefix_mark_seen, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_refused_folder_is_config_error, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_batches_one_command_per_step, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_connection_cut_inside_batch_literal, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_server_killed_mid_batch, dove_setup,
                                    dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_watch_picks_up_new_mail_and_stops_on_sigterm,
                                    dove_setup, dove_teardown),
    cmocka_unit_test_setup_teardown(test_cli_sasl_plain_and_login, dove_setup, dove_teardown),
    cmocka_unit_test_setup_teardown(test_oauth2_xoauth2_and_oauthbearer_store_the_corpus,
                                    oauth_setup, oauth_teardown),
    cmocka_unit_test_setup_teardown(test_oauth2_expired_token_is_refreshed, oauth_setup,
                                    oauth_teardown),
    cmocka_unit_test_setup_teardown(test_oauth2_refused_after_refresh_is_exit_3, oauth_setup,
                                    oauth_teardown),
    cmocka_unit_test_setup_teardown(test_oauth2_failing_token_command_is_exit_3, oauth_setup,
                                    oauth_teardown),
    cmocka_unit_test_setup_teardown(test_oauth2_token_never_in_the_log, oauth_setup,
                                    oauth_teardown),
    cmocka_unit_test_setup_teardown(test_oauth2_watch_fetches_a_new_token_at_reconnect,
                                    oauth_setup, oauth_teardown),
    cmocka_unit_test_setup_teardown(test_oauth2_m365_helper_script, oauth_setup,
                                    oauth_teardown),
  };
  return cmocka_run_group_tests_name("imap", tests, NULL, NULL);
}
