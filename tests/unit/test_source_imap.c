/* test_source_imap.c - the IMAP source's batched body FETCH against canned server
 * output, handed to the reader whole and one byte at a time (literals split anywhere),
 * and folder names in a server's namespace; the real conversation with a server is in
 * tests/integration/test_imap.c. */
#include "testutil.h"

#include "source.h"

#include <string.h>

/* A FETCH response for @uid with @body as BODY[] literal. */
static void
add_fetch(GString *out, guint seq, guint32 uid, const char *body, gsize len)
{
  g_string_append_printf(out, "* %u FETCH (UID %u BODY[] {%" G_GSIZE_FORMAT "}\r\n", seq, uid,
                         len);
  g_string_append_len(out, body, (gssize) len);
  g_string_append(out, ")\r\n");
}

static char *
line_for(guint32 uid, const char *body, gsize len)
{
  g_autofree char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *) body,
                                                     len);
  return g_strdup_printf("%u %" G_GSIZE_FORMAT " %s\n", uid, len, sha);
}

/* Bodies that look like protocol inside the literal: a fake tagged OK, a fake FETCH with
 * its own literal announcement, a NUL byte, CR and LF alone. */
static const char body1[] = "Subject: a\r\n\r\n)\r\nt0001 OK fake\r\n";
static const char body2[] = "X: {5}\r\n* 9 FETCH (UID 99 BODY[] {3}\r\nabc)\r\n\0tail\r";
static const char body3[] = "\n";

static void
test_batch_split_anywhere(void **state)
{
  (void) state;
  const guint32 uids[] = { 5, 6, 7, 8 };
  const guint64 sizes[] = { sizeof body1 - 1, sizeof body2 - 1, sizeof body3 - 1, 10 };
  g_autoptr(GString) canned = g_string_new(NULL);
  add_fetch(canned, 1, 5, body1, sizeof body1 - 1);
  /* An unsolicited flag update in between, and one before the body of UID 7. */
  g_string_append(canned, "* 3 FETCH (FLAGS (\\Seen \\Recent))\r\n");
  add_fetch(canned, 2, 6, body2, sizeof body2 - 1);
  g_string_append(canned, "* 3 FETCH (FLAGS () UID 7 BODY[] \"\\n\")\r\n");
  g_string_append(canned, "* 3 FETCH (UID 7 FLAGS () BODY[] {1}\r\n\n)\r\n");
  /* UID 8 was expunged since the search: no answer for it. */
  g_string_append(canned, "* 4 EXPUNGE\r\n");
  g_string_append(canned, "t0001 OK Fetch completed.\r\n");
  g_autoptr(GBytes) bytes = g_bytes_new(canned->str, canned->len);

  g_autofree char *l1 = line_for(5, body1, sizeof body1 - 1);
  g_autofree char *l2 = line_for(6, body2, sizeof body2 - 1);
  g_autofree char *l3 = line_for(7, body3, sizeof body3 - 1);
  g_autofree char *want = g_strconcat(l1, l2, l3, "fetch 0..3\n", NULL);
  for (gsize step = 0; step <= 9; step++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *got = source_imap_test_fetch_batch(uids, sizes, 4, 512, 1 << 20, 1000,
                                                        bytes, step, &error);
    if (got == NULL)
      fail_msg("step %" G_GSIZE_FORMAT ": %s", step, error->message);
    assert_string_equal(got, want);
  }
}

/* A message over --max-message-size is never fetched: it splits the batches around it.
 * The byte cap (by RFC822.SIZE) ends a batch, but a batch holds at least one message. */
static void
test_batch_limits(void **state)
{
  (void) state;
  const guint32 uids[] = { 1, 2, 3, 4, 5, 6 };
  const guint64 sizes[] = { 3, 3, 500, 3, 3, 40 };
  g_autoptr(GString) canned = g_string_new(NULL);
  add_fetch(canned, 1, 1, "aaa", 3);
  add_fetch(canned, 2, 2, "bbb", 3);
  g_string_append(canned, "t0001 OK done\r\n");
  add_fetch(canned, 4, 4, "ddd", 3);
  add_fetch(canned, 5, 5, "eee", 3);
  g_string_append(canned, "t0002 OK done\r\n");
  g_autofree char *big = g_strnfill(40, 'f');
  add_fetch(canned, 6, 6, big, 40);
  g_string_append(canned, "t0003 OK done\r\n");
  g_autoptr(GBytes) bytes = g_bytes_new(canned->str, canned->len);
  g_autoptr(GError) error = NULL;
  g_autofree char *got = source_imap_test_fetch_batch(uids, sizes, 6, 512, 10, 100, bytes, 1,
                                                      &error);
  if (got == NULL)
    fail_msg("%s", error->message);
  g_autofree char *a = line_for(1, "aaa", 3);
  g_autofree char *b = line_for(2, "bbb", 3);
  g_autofree char *d = line_for(4, "ddd", 3);
  g_autofree char *e = line_for(5, "eee", 3);
  g_autofree char *f = line_for(6, big, 40);
  g_autofree char *want = g_strconcat(a, b, "3 skipped\n", d, e, f,
                                      "fetch 0..1\nfetch 3..4\nfetch 5..5\n", NULL);
  assert_string_equal(got, want);

  /* The count cap: two messages per FETCH. */
  const guint64 small[] = { 3, 3, 3, 3, 3, 3 };
  g_autoptr(GString) c2 = g_string_new(NULL);
  const char *names[] = { "aaa", "bbb", "ccc", "ddd", "eee", "fff" };
  for (guint i = 0; i < 6; i++) {
    add_fetch(c2, i + 1, i + 1, names[i], 3);
    if (i % 2 == 1)
      g_string_append_printf(c2, "t%04u OK done\r\n", i / 2 + 1);
  }
  g_autoptr(GBytes) b2 = g_bytes_new(c2->str, c2->len);
  g_autofree char *got2 = source_imap_test_fetch_batch(uids, small, 6, 2, 1 << 20, 100, b2, 0,
                                                       &error);
  if (got2 == NULL)
    fail_msg("%s", error->message);
  assert_non_null(strstr(got2, "fetch 0..1\nfetch 2..3\nfetch 4..5\n"));
}

/* What the reader refuses: a literal far over the announced size, an answer cut inside
 * a literal, a NO to the FETCH. Nothing is handed out then. */
static void
test_batch_refused(void **state)
{
  (void) state;
  const guint32 uids[] = { 1 };
  const guint64 sizes[] = { 10 };
  struct {
    const char *canned;
    const char *error;
  } cases[] = {
    { "* 1 FETCH (UID 1 BODY[] {900000}\r\n", "-byte literal (more than the " },
    { "* 1 FETCH (UID 1 BODY[] {10}\r\nabcd", "connection closed by the server" },
    { "* 1 FETCH (UID 1 BODY[] {10}\r\nabcdefghij)\r\n", "connection closed by the server" },
    { "t0001 NO [SERVERBUG] oops\r\n", "NO [SERVERBUG] oops" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GBytes) bytes = g_bytes_new_static(cases[i].canned, strlen(cases[i].canned));
    for (gsize step = 0; step <= 1; step++) {
      g_autoptr(GError) error = NULL;
      g_autofree char *got = source_imap_test_fetch_batch(uids, sizes, 1, 512, 1 << 20, 100,
                                                          bytes, step, &error);
      assert_null(got);
      assert_non_null(error);
      if (strstr(error->message, cases[i].error) == NULL)
        fail_msg("case %u: %s", i, error->message);
    }
  }
}

/* Folder names in the server's personal namespace (issue: Courier, Cyrus). */
static void
test_resolve_folder(void **state)
{
  (void) state;
  struct {
    const char *name, *prefix;
    char delim;
    const char *want;
  } cases[] = {
    { "Processed", "", '/', "Processed" },             /* Dovecot's default */
    { "Processed", NULL, '\0', "Processed" },
    { "Processed", "INBOX.", '.', "INBOX.Processed" }, /* Courier, Cyrus */
    { "INBOX.Processed", "INBOX.", '.', "INBOX.Processed" },
    { "inbox.Processed", "INBOX.", '.', "INBOX.Processed" },
    { "Errors/TLS R&AOk-", "INBOX.", '.', "INBOX.Errors.TLS R&AOk-" },
    { "Errors/TLS", "", '/', "Errors/TLS" },
    { "Errors/TLS", "", '.', "Errors.TLS" },
    { "INBOX", "INBOX.", '.', "INBOX" },
    { "a.b", "", '/', "a.b" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *got = source_imap_resolve_folder(cases[i].name, cases[i].prefix,
                                                      cases[i].delim);
    if (strcmp(got, cases[i].want) != 0)
      fail_msg("case %" G_GSIZE_FORMAT ": '%s' -> '%s', want '%s'", i, cases[i].name, got,
               cases[i].want);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_batch_split_anywhere),
    cmocka_unit_test(test_batch_limits),
    cmocka_unit_test(test_batch_refused),
    cmocka_unit_test(test_resolve_folder),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
