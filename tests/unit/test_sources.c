/* test_sources.c - the local sources (mda, maildir, mbox, file) on real files in a
 * per-test temporary directory, and the registry. */
#include "testutil.h"

#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>
#include <zlib.h>

typedef struct {
  char *dir;
  SourceConfig opts;
} Fixture;

static int
setup(void **state)
{
  Fixture *f = g_new0(Fixture, 1);
  f->dir = tu_mkdtemp();
  source_config_init(&f->opts);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  Fixture *f = *state;
  tu_rmtree(f->dir);
  g_free(f->dir);
  source_config_clear(&f->opts);
  g_free(f);
  return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

static char *
path_in(const Fixture *f, const char *rel)
{
  return g_build_filename(f->dir, rel, NULL);
}

static void
write_in(const Fixture *f, const char *rel, const char *text)
{
  g_autofree char *p = path_in(f, rel);
  tu_write_file(p, text, strlen(text));
}

static gboolean
exists_in(const Fixture *f, const char *rel)
{
  g_autofree char *p = path_in(f, rel);
  struct stat st;
  return lstat(p, &st) == 0;
}

static void
assert_bytes_eq(GBytes *b, const void *data, gsize len)
{
  assert_non_null(b);
  gsize blen;
  const void *bdata = g_bytes_get_data(b, &blen);
  assert_int_equal(blen, len);
  if (len > 0)
    assert_memory_equal(bdata, data, len);
}

static void
assert_bytes_str(GBytes *b, const char *text)
{
  assert_bytes_eq(b, text, strlen(text));
}

/* Open @ops on @args and read every message. (transfer full) */
static GPtrArray *
read_all(const SourceOps *ops, const SourceConfig *opts, const char *const *args,
         gpointer *self_out)
{
  g_autoptr(GError) error = NULL;
  gpointer self = ops->open(opts, (char **) args, &error);
  if (self == NULL)
    fail_msg("open: %s", error->message);
  GPtrArray *msgs = g_ptr_array_new_with_free_func((GDestroyNotify) source_message_free);
  SourceMessage *m = NULL;
  while (ops->next(self, &m, &error)) {
    assert_non_null(m);
    assert_non_null(m->origin);
    g_ptr_array_add(msgs, m);
    m = NULL;
  }
  if (error != NULL)
    fail_msg("next: %s", error->message);
  if (self_out != NULL)
    *self_out = self;
  else
    ops->close(self);
  return msgs;
}

static SourceMessage *
msg_at(GPtrArray *msgs, guint i)
{
  assert_true(i < msgs->len);
  return msgs->pdata[i];
}

/* Feed @data on fd 0 for the duration of a test; returns the saved fd 0. */
static int
stdin_from(const Fixture *f, const void *data, gsize len)
{
  g_autofree char *p = path_in(f, "stdin.data");
  tu_write_file(p, data, len);
  int saved = dup(STDIN_FILENO);
  assert_true(saved >= 0);
  int fd = open(p, O_RDONLY);
  assert_true(fd >= 0);
  assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
  close(fd);
  return saved;
}

static void
stdin_restore(int saved)
{
  assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
  close(saved);
}

/* ---- registry ------------------------------------------------------------------ */

static void
test_registry(void **state)
{
  static const char *const names[] = { "mda", "maildir", "mbox", "file", "imap" };
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    const SourceOps *ops = source_find(names[i]);
    assert_non_null(ops);
    assert_string_equal(ops->name, names[i]);
  }
  assert_ptr_equal(source_find("maildir"), &source_maildir_ops);
  assert_ptr_equal(source_find("imap"), &source_imap_ops);
  assert_null(source_find("pop3"));
  assert_null(source_find(""));
  guint n = 0;
  while (source_registry[n] != NULL)
    n++;
  assert_int_equal(n, 5);
}

static guint handles_freed;

static void
count_handle_free(gpointer handle)
{
  g_free(handle);
  handles_freed++;
}

static void
test_message_free(void **state)
{
  handles_freed = 0;
  SourceMessage *m = g_new0(SourceMessage, 1);
  m->data = g_bytes_new("x", 1);
  m->origin = g_strdup("o");
  m->filename = g_strdup("f");
  m->skip_reason = g_strdup("s");
  m->handle = g_strdup("handle");
  m->handle_free = count_handle_free;
  source_message_free(m);
  assert_int_equal(handles_freed, 1);
  source_message_free(NULL);
  /* A handle without handle_free is not touched; an empty message is fine. */
  m = g_new0(SourceMessage, 1);
  static char borrowed[] = "borrowed";
  m->handle = borrowed;
  source_message_free(m);
  assert_int_equal(handles_freed, 1);
  assert_string_equal(borrowed, "borrowed");
}

/* ---- maildir ------------------------------------------------------------------- */

/* new/: 1000.A, 1001.B, 1002.C; cur/: 0998.E:2, and 0999.D:2,RF; plus a dot file in
 * new/, a file in tmp/ and a subdirectory in new/, all to be ignored. */
static void
make_maildir(const Fixture *f, const char *md)
{
  static const char *const files[][2] = {
    { "new/1000.A.host", "Subject: A\n\nmessage A\n" },
    { "new/1001.B.host", NULL },    /* the corpus message */
    { "new/1002.C.host", "Subject: C\n\nmessage C\n" },
    { "cur/0999.D.host:2,RF", "Subject: D\n\nmessage D\n" },
    { "cur/0998.E.host:2,", "Subject: E\n\nmessage E\n" },
    { "new/.hidden", "not a message\n" },
    { "tmp/1003.F.host", "still being delivered\n" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *rel = g_build_filename(md, files[i][0], NULL);
    if (files[i][1] != NULL) {
      write_in(f, rel, files[i][1]);
    } else {
      g_autoptr(GBytes) eml = tu_fixture("corpus/mox/example.eml");
      g_autofree char *p = path_in(f, rel);
      tu_write_file(p, g_bytes_get_data(eml, NULL), g_bytes_get_size(eml));
    }
  }
  g_autofree char *sub = g_build_filename(f->dir, md, "new", "subdir", NULL);
  assert_int_equal(g_mkdir_with_parents(sub, 0700), 0);
  g_autofree char *cur = g_build_filename(f->dir, md, "cur", NULL);
  assert_int_equal(g_mkdir_with_parents(cur, 0700), 0);
  /* A known mtime for received. */
  g_autofree char *a = g_build_filename(f->dir, md, "new", "1000.A.host", NULL);
  struct utimbuf ut = { 1700000000, 1700000000 };
  assert_int_equal(utime(a, &ut), 0);
}

static void
test_maildir_lists_new_then_cur(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  g_autofree char *md = path_in(f, "md");
  const char *args[] = { md, NULL };
  g_autoptr(GPtrArray) msgs = read_all(&source_maildir_ops, &f->opts, args, NULL);
  assert_int_equal(msgs->len, 5);

  static const char *const order[] = { "new/1000.A.host", "new/1001.B.host",
                                       "new/1002.C.host", "cur/0998.E.host:2,",
                                       "cur/0999.D.host:2,RF" };
  for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
    SourceMessage *m = msg_at(msgs, i);
    g_autofree char *want = g_build_filename(md, order[i], NULL);
    assert_string_equal(m->origin, want);
    assert_null(m->skip_reason);
    assert_false(m->raw_report);
    assert_non_null(m->handle);
  }
  assert_bytes_str(msg_at(msgs, 0)->data, "Subject: A\n\nmessage A\n");
  assert_int_equal(msg_at(msgs, 0)->received, 1700000000);
  g_autoptr(GBytes) eml = tu_fixture("corpus/mox/example.eml");
  assert_true(g_bytes_equal(msg_at(msgs, 1)->data, eml));
  assert_bytes_str(msg_at(msgs, 4)->data, "Subject: D\n\nmessage D\n");
}

static void
commit_ok(const SourceOps *ops, gpointer self, SourceMessage *m, SourceOutcome outcome)
{
  g_autoptr(GError) error = NULL;
  if (!ops->commit(self, m, outcome, &error))
    fail_msg("commit %s: %s", m->origin, error->message);
}

static void
test_maildir_mark_seen(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  g_autofree char *md = path_in(f, "md");
  const char *args[] = { md, NULL };
  f->opts.mark_seen = TRUE;
  gpointer self = NULL;
  g_autoptr(GPtrArray) msgs = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(msgs->len, 5);

  commit_ok(&source_maildir_ops, self, msg_at(msgs, 0), SOURCE_OUTCOME_STORED);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 1), SOURCE_OUTCOME_NOT_REPORT);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 2), SOURCE_OUTCOME_QUARANTINED);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 3), SOURCE_OUTCOME_DUPLICATE);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 4), SOURCE_OUTCOME_STORED);
  /* Committing twice changes nothing. */
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 0), SOURCE_OUTCOME_STORED);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 4), SOURCE_OUTCOME_STORED);
  source_maildir_ops.close(self);

  assert_false(exists_in(f, "md/new/1000.A.host"));
  assert_true(exists_in(f, "md/cur/1000.A.host:2,S"));
  /* Not a report: left exactly where it was. */
  assert_true(exists_in(f, "md/new/1001.B.host"));
  assert_false(exists_in(f, "md/cur/1001.B.host:2,S"));
  assert_true(exists_in(f, "md/cur/1002.C.host:2,S"));
  assert_false(exists_in(f, "md/cur/0998.E.host:2,"));
  assert_true(exists_in(f, "md/cur/0998.E.host:2,S"));
  /* Flags kept and sorted. */
  assert_false(exists_in(f, "md/cur/0999.D.host:2,RF"));
  assert_true(exists_in(f, "md/cur/0999.D.host:2,FRS"));
  g_autofree char *p = path_in(f, "md/cur/0999.D.host:2,FRS");
  g_autofree char *text = tu_read_file(p, NULL);
  assert_string_equal(text, "Subject: D\n\nmessage D\n");
  assert_true(exists_in(f, "md/tmp/1003.F.host"));
  assert_true(exists_in(f, "md/new/.hidden"));
  assert_int_equal(tu_count_files(f->dir, NULL), 7);
}

static void
test_maildir_no_flag_option_leaves_mail(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  g_autofree char *md = path_in(f, "md");
  const char *args[] = { md, NULL };
  gpointer self = NULL;
  g_autoptr(GPtrArray) msgs = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(msgs->len, 5);
  for (guint i = 0; i < msgs->len; i++)
    commit_ok(&source_maildir_ops, self, msg_at(msgs, i), SOURCE_OUTCOME_STORED);
  source_maildir_ops.close(self);
  assert_true(exists_in(f, "md/new/1000.A.host"));
  assert_true(exists_in(f, "md/cur/0999.D.host:2,RF"));
  assert_false(exists_in(f, "md/cur/1000.A.host:2,S"));
}

static void
test_maildir_move_to(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  g_autofree char *md = path_in(f, "md");
  const char *args[] = { md, NULL };
  f->opts.move_to = g_strdup("Reports");
  gpointer self = NULL;
  g_autoptr(GPtrArray) msgs = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(msgs->len, 5);
  /* Nothing is created before something is moved. */
  assert_false(exists_in(f, "md/.Reports"));

  commit_ok(&source_maildir_ops, self, msg_at(msgs, 0), SOURCE_OUTCOME_STORED);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 1), SOURCE_OUTCOME_NOT_REPORT);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 4), SOURCE_OUTCOME_QUARANTINED);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 4), SOURCE_OUTCOME_QUARANTINED);
  source_maildir_ops.close(self);

  assert_true(exists_in(f, "md/.Reports/cur"));
  assert_true(exists_in(f, "md/.Reports/new"));
  assert_true(exists_in(f, "md/.Reports/tmp"));
  assert_true(exists_in(f, "md/.Reports/maildirfolder"));
  assert_false(exists_in(f, "md/new/1000.A.host"));
  assert_true(exists_in(f, "md/.Reports/cur/1000.A.host:2,S"));
  assert_true(exists_in(f, "md/new/1001.B.host"));
  assert_false(exists_in(f, "md/cur/0999.D.host:2,RF"));
  assert_true(exists_in(f, "md/.Reports/cur/0999.D.host:2,FRS"));
  assert_true(exists_in(f, "md/new/1002.C.host"));

  /* A second run does not see the moved messages. */
  g_autoptr(GPtrArray) again = read_all(&source_maildir_ops, &f->opts, args, NULL);
  assert_int_equal(again->len, 3);
}

static void
test_maildir_hostile_move_to_refused(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  g_autofree char *md = path_in(f, "md");
  const char *args[] = { md, NULL };
  static const char *const bad[] = { "../x", "a/b", ".Reports", "..", "", "a..b",
                                     "x\ny" };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_free(f->opts.move_to);
    f->opts.move_to = g_strdup(bad[i]);
    g_autoptr(GError) error = NULL;
    gpointer self = source_maildir_ops.open(&f->opts, (char **) args, &error);
    assert_null(self);
    assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND));
  }
  assert_false(exists_in(f, "x"));
  /* A dotted Maildir++ hierarchy name is fine. */
  g_free(f->opts.move_to);
  f->opts.move_to = g_strdup("Reports.TLS");
  gpointer self = NULL;
  g_autoptr(GPtrArray) msgs = read_all(&source_maildir_ops, &f->opts, args, &self);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 0), SOURCE_OUTCOME_STORED);
  source_maildir_ops.close(self);
  assert_true(exists_in(f, "md/.Reports.TLS/cur/1000.A.host:2,S"));
}

static void
test_maildir_vanished_before_commit(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  g_autofree char *md = path_in(f, "md");
  const char *args[] = { md, NULL };
  f->opts.mark_seen = TRUE;
  g_autoptr(GError) error = NULL;
  gpointer self = source_maildir_ops.open(&f->opts, (char **) args, &error);
  assert_non_null(self);

  /* Vanished between open() and next(): skipped silently. */
  g_autofree char *a = path_in(f, "md/new/1000.A.host");
  assert_int_equal(unlink(a), 0);
  SourceMessage *raw = NULL;
  assert_true(source_maildir_ops.next(self, &raw, &error));
  g_autoptr(SourceMessage) m = raw;
  g_autofree char *want = path_in(f, "md/new/1001.B.host");
  assert_string_equal(m->origin, want);

  /* Moved by a mail reader between next() and commit(): counts as done. */
  g_autofree char *b = path_in(f, "md/new/1001.B.host");
  g_autofree char *b2 = path_in(f, "md/cur/1001.B.host:2,T");
  assert_int_equal(rename(b, b2), 0);
  assert_true(source_maildir_ops.commit(self, m, SOURCE_OUTCOME_STORED, &error));
  assert_null(error);
  source_maildir_ops.close(self);
  assert_true(exists_in(f, "md/cur/1001.B.host:2,T"));
  assert_false(exists_in(f, "md/cur/1001.B.host:2,S"));
}

static void
test_maildir_never_replaces(void **state)
{
  Fixture *f = *state;
  write_in(f, "md/new/42.X.host", "the new one\n");
  write_in(f, "md/cur/42.X.host:2,S", "an older one\n");
  g_autofree char *tmp = path_in(f, "md/tmp");
  assert_int_equal(g_mkdir_with_parents(tmp, 0700), 0);
  g_autofree char *md = path_in(f, "md");
  const char *args[] = { md, NULL };
  f->opts.mark_seen = TRUE;
  gpointer self = NULL;
  g_autoptr(GPtrArray) msgs = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(msgs->len, 2);
  commit_ok(&source_maildir_ops, self, msg_at(msgs, 0), SOURCE_OUTCOME_STORED);
  source_maildir_ops.close(self);

  g_autofree char *p1 = path_in(f, "md/cur/42.X.host:2,S");
  g_autofree char *p2 = path_in(f, "md/cur/42.X.host.1:2,S");
  g_autofree char *t1 = tu_read_file(p1, NULL);
  g_autofree char *t2 = tu_read_file(p2, NULL);
  assert_string_equal(t1, "an older one\n");
  assert_non_null(t2);
  assert_string_equal(t2, "the new one\n");
  assert_false(exists_in(f, "md/new/42.X.host"));
}

static void
test_maildir_not_a_maildir(void **state)
{
  Fixture *f = *state;
  write_in(f, "half/new/1.x", "x\n");
  static const char *const rels[] = { "half", "missing", "half/new/1.x" };
  for (guint i = 0; i < G_N_ELEMENTS(rels); i++) {
    g_autofree char *p = path_in(f, rels[i]);
    const char *args[] = { p, NULL };
    g_autoptr(GError) error = NULL;
    assert_null(source_maildir_ops.open(&f->opts, (char **) args, &error));
    assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND));
    assert_non_null(strstr(error->message, p));
  }
  /* One bad Maildir among good ones fails the open. */
  make_maildir(f, "md");
  g_autofree char *md = path_in(f, "md");
  g_autofree char *half = path_in(f, "half");
  const char *args[] = { md, half, NULL };
  g_autoptr(GError) error = NULL;
  assert_null(source_maildir_ops.open(&f->opts, (char **) args, &error));
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND));
}

static void
test_maildir_oversized_skipped(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  char big[200];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  write_in(f, "md/new/1001.B.host", big);
  g_autofree char *md = path_in(f, "md");
  const char *args[] = { md, NULL };
  f->opts.max_message_size = 100;
  f->opts.mark_seen = TRUE;
  gpointer self = NULL;
  g_autoptr(GPtrArray) msgs = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(msgs->len, 5);
  SourceMessage *m = msg_at(msgs, 1);
  assert_null(m->data);
  assert_non_null(m->skip_reason);
  assert_non_null(strstr(m->skip_reason, "max-message-size"));
  assert_non_null(msg_at(msgs, 0)->data);
  assert_null(msg_at(msgs, 0)->skip_reason);
  /* A message skipped unread is never moved, whatever the caller says. */
  commit_ok(&source_maildir_ops, self, m, SOURCE_OUTCOME_QUARANTINED);
  assert_true(exists_in(f, "md/new/1001.B.host"));
  assert_false(exists_in(f, "md/cur/1001.B.host:2,S"));
  source_maildir_ops.close(self);
  /* Exactly at the limit is fine. */
  f->opts.max_message_size = strlen("Subject: A\n\nmessage A\n");
  g_autoptr(GPtrArray) again = read_all(&source_maildir_ops, &f->opts, args, NULL);
  assert_non_null(msg_at(again, 0)->data);
}

static void
test_maildir_symlink_not_followed(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  write_in(f, "secret", "not mail\n");
  g_autofree char *secret = path_in(f, "secret");
  g_autofree char *link = path_in(f, "md/new/0001.L.host");
  assert_int_equal(symlink(secret, link), 0);
  g_autofree char *md = path_in(f, "md");
  const char *args[] = { md, NULL };
  g_autoptr(GPtrArray) msgs = read_all(&source_maildir_ops, &f->opts, args, NULL);
  assert_int_equal(msgs->len, 6);
  assert_null(msg_at(msgs, 0)->data);
  assert_non_null(msg_at(msgs, 0)->skip_reason);
}

static void
test_maildir_many_messages_fast(void **state)
{
  Fixture *f = *state;
  const guint n = 10000;
  g_autofree char *md = path_in(f, "md");
  for (const char *sub = "new"; sub != NULL; sub = strcmp(sub, "new") == 0 ? "cur" :
                                                  strcmp(sub, "cur") == 0 ? "tmp" : NULL) {
    g_autofree char *d = g_build_filename(md, sub, NULL);
    assert_int_equal(g_mkdir_with_parents(d, 0700), 0);
  }
  g_autofree char *newdir = g_build_filename(md, "new", NULL);
  int dfd = open(newdir, O_RDONLY | O_DIRECTORY);
  assert_true(dfd >= 0);
  char body[2048];
  memset(body, 'a', sizeof body);
  for (guint i = 0; i < n; i++) {
    char name[64];
    g_snprintf(name, sizeof name, "%u.M%uP1.host", 1700000000 + i, i);
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, body, sizeof body), sizeof body);
    close(fd);
  }
  close(dfd);

  const char *args[] = { md, NULL };
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time();
  gpointer self = source_maildir_ops.open(&f->opts, (char **) args, &error);
  assert_non_null(self);
  guint count = 0;
  gsize bytes = 0;
  SourceMessage *m = NULL;
  while (source_maildir_ops.next(self, &m, &error)) {
    bytes += g_bytes_get_size(m->data);
    count++;
    source_message_free(m);
  }
  assert_null(error);
  source_maildir_ops.close(self);
  gint64 us = g_get_monotonic_time() - t0;
  print_message("maildir: %u messages read in %.3f s\n", count, (double) us / 1e6);
  assert_int_equal(count, n);
  assert_int_equal(bytes, (gsize) n * sizeof body);
  /* Generous enough for sanitizer and valgrind builds; a plain build takes a few ms. */
  assert_true(us < 5 * G_USEC_PER_SEC);
}

/* A store directory for the known-messages file, set in the options. (transfer full) */
static char *
use_store(Fixture *f)
{
  char *store = path_in(f, "store");
  assert_int_equal(g_mkdir_with_parents(store, 0700), 0);
  g_free(f->opts.store_dir);
  f->opts.store_dir = g_strdup(store);
  return store;
}

static void
make_empty_maildir(const char *md)
{
  static const char *const subs[] = { "new", "cur", "tmp" };
  for (guint d = 0; d < G_N_ELEMENTS(subs); d++) {
    g_autofree char *sub = g_build_filename(md, subs[d], NULL);
    assert_int_equal(g_mkdir_with_parents(sub, 0700), 0);
  }
}

/* Committed messages are not read again by the next run with the same store; one
 * whose batch failed (never committed) is, and so is a message whose file changed. */
static void
test_maildir_known_messages_not_read_again(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  g_autofree char *md = path_in(f, "md");
  g_autofree char *store = use_store(f);
  const char *args[] = { md, NULL };

  gpointer self = NULL;
  g_autoptr(GPtrArray) first = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(first->len, 5);
  commit_ok(&source_maildir_ops, self, msg_at(first, 0), SOURCE_OUTCOME_STORED);
  commit_ok(&source_maildir_ops, self, msg_at(first, 1), SOURCE_OUTCOME_NOT_REPORT);
  commit_ok(&source_maildir_ops, self, msg_at(first, 2), SOURCE_OUTCOME_QUARANTINED);
  commit_ok(&source_maildir_ops, self, msg_at(first, 3), SOURCE_OUTCOME_DUPLICATE);
  /* msg 4 is never committed (its batch failed): it must be read again. */
  source_maildir_ops.close(self);
  assert_int_equal(tu_count_files(store, NULL), 1);

  g_autoptr(GPtrArray) second = read_all(&source_maildir_ops, &f->opts, args, NULL);
  assert_int_equal(second->len, 1);
  g_autofree char *d = g_build_filename(md, "cur/0999.D.host:2,RF", NULL);
  assert_string_equal(msg_at(second, 0)->origin, d);

  /* A changed file is a different message. */
  g_autofree char *a = g_build_filename(md, "new", "1000.A.host", NULL);
  struct utimbuf ut = { 1700000100, 1700000100 };
  assert_int_equal(utime(a, &ut), 0);
  g_autoptr(GPtrArray) third = read_all(&source_maildir_ops, &f->opts, args, NULL);
  assert_int_equal(third->len, 2);
  g_autofree char *a_origin = g_build_filename(md, "new/1000.A.host", NULL);
  assert_string_equal(msg_at(third, 0)->origin, a_origin);

  /* Another store knows nothing: everything is read. */
  g_free(f->opts.store_dir);
  f->opts.store_dir = path_in(f, "other-store");
  g_autoptr(GPtrArray) fourth = read_all(&source_maildir_ops, &f->opts, args, NULL);
  assert_int_equal(fourth->len, 5);
}

/* A run with --move-to after one without: the messages stored by the first are moved
 * without being read again; the one that is not a report stays. */
static void
test_maildir_known_messages_acknowledged_later(void **state)
{
  Fixture *f = *state;
  make_maildir(f, "md");
  g_autofree char *md = path_in(f, "md");
  g_autofree char *store = use_store(f);
  const char *args[] = { md, NULL };

  gpointer self = NULL;
  g_autoptr(GPtrArray) first = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(first->len, 5);
  for (guint i = 0; i < first->len; i++)
    commit_ok(&source_maildir_ops, self, msg_at(first, i),
              i == 1 ? SOURCE_OUTCOME_NOT_REPORT : SOURCE_OUTCOME_STORED);
  source_maildir_ops.close(self);
  assert_true(exists_in(f, "md/new/1000.A.host"));

  f->opts.move_to = g_strdup("Done");
  g_autoptr(GPtrArray) second = read_all(&source_maildir_ops, &f->opts, args, NULL);
  assert_int_equal(second->len, 0);
  assert_true(exists_in(f, "md/.Done/cur/1000.A.host:2,S"));
  assert_true(exists_in(f, "md/.Done/cur/0999.D.host:2,FRS"));
  assert_true(exists_in(f, "md/new/1001.B.host"));
  g_autofree char *done = path_in(f, "md/.Done/cur");
  assert_int_equal(tu_count_files(done, NULL), 4);
}

/* The file of known messages is rewritten without the messages that are gone, and
 * keeps those committed by the run that rewrites it. */
static void
test_maildir_known_file_compacted(void **state)
{
  Fixture *f = *state;
  g_autofree char *md = path_in(f, "md");
  g_autofree char *store = path_in(f, "store");
  make_empty_maildir(md);
  assert_int_equal(g_mkdir_with_parents(store, 0700), 0);
  f->opts.store_dir = g_strdup(store);
  for (guint i = 0; i < 1100; i++) {
    char rel[64];
    g_snprintf(rel, sizeof rel, "md/new/%u.M%uP1.host", 1700000000 + i, i);
    write_in(f, rel, "Subject: x\n\nx\n");
  }
  const char *args[] = { md, NULL };
  gpointer self = NULL;
  g_autoptr(GPtrArray) first = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(first->len, 1100);
  for (guint i = 0; i < first->len; i++)
    commit_ok(&source_maildir_ops, self, msg_at(first, i), SOURCE_OUTCOME_STORED);
  source_maildir_ops.close(self);
  g_autoptr(GDir) dir = g_dir_open(store, 0, NULL);
  const char *seen_name = g_dir_read_name(dir);
  assert_non_null(seen_name);
  assert_true(g_str_has_prefix(seen_name, ".maildir-"));
  g_autofree char *seen = g_build_filename(store, seen_name, NULL);
  struct stat st;
  assert_int_equal(stat(seen, &st), 0);
  assert_int_equal(st.st_size, 1100 * 16);

  /* 1,000 messages gone, 5 new ones. */
  for (guint i = 0; i < 1000; i++) {
    char rel[64];
    g_snprintf(rel, sizeof rel, "md/new/%u.M%uP1.host", 1700000000 + i, i);
    g_autofree char *p = path_in(f, rel);
    assert_int_equal(unlink(p), 0);
  }
  for (guint i = 0; i < 5; i++) {
    char rel[64];
    g_snprintf(rel, sizeof rel, "md/new/%u.N%uP1.host", 1800000000 + i, i);
    write_in(f, rel, "Subject: y\n\ny\n");
  }
  g_autoptr(GPtrArray) second = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(second->len, 5);
  assert_int_equal(source_maildir_ops.known(self), 100);
  for (guint i = 0; i < second->len; i++)
    commit_ok(&source_maildir_ops, self, msg_at(second, i), SOURCE_OUTCOME_NOT_REPORT);
  source_maildir_ops.close(self);
  assert_int_equal(stat(seen, &st), 0);
  assert_int_equal(st.st_size, 105 * 16);

  g_autoptr(GPtrArray) third = read_all(&source_maildir_ops, &f->opts, args, &self);
  assert_int_equal(third->len, 0);
  assert_int_equal(source_maildir_ops.known(self), 105);
  source_maildir_ops.close(self);
}

/* More messages than one listing chunk, each committed (--mark-seen) right after it is
 * read, as the pipeline does: renamed into cur/ while cur/ is being listed, every
 * message is still read exactly once. */
static void
test_maildir_mark_seen_while_listing_reads_once(void **state)
{
  Fixture *f = *state;
  const guint n_new = 5000, n_cur = 4500;
  g_autofree char *md = path_in(f, "md");
  make_empty_maildir(md);
  for (guint i = 0; i < n_new + n_cur; i++) {
    char rel[96];
    if (i < n_new)
      g_snprintf(rel, sizeof rel, "md/new/%u.M%uP1.host", 1700000000 + i, i);
    else
      g_snprintf(rel, sizeof rel, "md/cur/%u.M%uP1.host:2,", 1700000000 + i, i);
    char body[64];
    g_snprintf(body, sizeof body, "Subject: %u\n\nbody %u\n", i, i);
    write_in(f, rel, body);
  }
  f->opts.mark_seen = TRUE;
  const char *args[] = { md, NULL };
  g_autoptr(GError) error = NULL;
  gpointer self = source_maildir_ops.open(&f->opts, (char **) args, &error);
  assert_non_null(self);
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  SourceMessage *m = NULL;
  while (source_maildir_ops.next(self, &m, &error)) {
    g_autofree char *body = g_strndup(g_bytes_get_data(m->data, NULL),
                                      g_bytes_get_size(m->data));
    if (!g_hash_table_add(seen, g_strdup(body)))
      fail_msg("read twice: %s", m->origin);
    commit_ok(&source_maildir_ops, self, m, SOURCE_OUTCOME_STORED);
    source_message_free(m);
  }
  assert_null(error);
  source_maildir_ops.close(self);
  assert_int_equal(g_hash_table_size(seen), n_new + n_cur);
  g_autofree char *newdir = path_in(f, "md/new");
  g_autofree char *curdir = path_in(f, "md/cur");
  assert_int_equal(tu_count_files(newdir, NULL), 0);
  assert_int_equal(tu_count_files(curdir, ":2,S"), n_new + n_cur);
}

/* ---- mbox ------------------------------------------------------------------------ */

static GPtrArray *
read_mbox_text(Fixture *f, const char *text, char **path_out)
{
  g_autofree char *p = path_in(f, "box");
  tu_write_file(p, text, strlen(text));
  const char *args[] = { p, NULL };
  GPtrArray *msgs = read_all(&source_mbox_ops, &f->opts, args, NULL);
  if (path_out != NULL)
    *path_out = g_steal_pointer(&p);
  return msgs;
}

static void
test_mbox_three_messages_unescaped(void **state)
{
  Fixture *f = *state;
  const char *box =
    "From alice@example.org Mon Nov 20 10:00:00 2023\n"
    "Subject: one\n"
    "\n"
    "body one\n"
    ">From the start, this was quoted\n"
    ">>From here too\n"
    "> From not this one\n"
    "\n"
    "From bob@example.org Mon Nov 20 10:01:00 2023\n"
    "Subject: two\n"
    "\n"
    "body two\n"
    "\n"
    "\n"
    "From MAILER-DAEMON Mon Nov 20 10:02:00 2023\n"
    "Subject: three\n"
    "\n"
    "body three\n"
    "\n";
  g_autofree char *path = NULL;
  g_autoptr(GPtrArray) msgs = read_mbox_text(f, box, &path);
  assert_int_equal(msgs->len, 3);
  assert_bytes_str(msg_at(msgs, 0)->data,
                   "Subject: one\n\nbody one\nFrom the start, this was quoted\n"
                   ">From here too\n> From not this one\n");
  /* Only the one empty line before the From_ line belongs to the separator. */
  assert_bytes_str(msg_at(msgs, 1)->data, "Subject: two\n\nbody two\n\n");
  assert_bytes_str(msg_at(msgs, 2)->data, "Subject: three\n\nbody three\n");
  for (guint i = 0; i < 3; i++) {
    g_autofree char *want = g_strdup_printf("%s#%u", path, i + 1);
    assert_string_equal(msg_at(msgs, i)->origin, want);
    assert_null(msg_at(msgs, i)->skip_reason);
    assert_true(msg_at(msgs, i)->received > 1700000000);
  }
}

static void
test_mbox_from_in_body_stays(void **state)
{
  Fixture *f = *state;
  const char *box =
    "From alice@example.org Mon Nov 20 10:00:00 2023\n"
    "Subject: one\n"
    "\n"
    "hello\n"
    "From the team: thanks\n"
    "From x@y Tue\n"
    "bye\n";
  g_autoptr(GPtrArray) msgs = read_mbox_text(f, box, NULL);
  assert_int_equal(msgs->len, 1);
  assert_bytes_str(msg_at(msgs, 0)->data,
                   "Subject: one\n\nhello\nFrom the team: thanks\nFrom x@y Tue\nbye\n");

  /* A real From_ line is a separator even without the empty line before it. */
  const char *box2 =
    "From alice@example.org Mon Nov 20 10:00:00 2023\n"
    "Subject: one\n"
    "\n"
    "no empty line follows\n"
    "From bob@example.org  Tue Nov  7 09:05:00 2023\n"
    "Subject: two\n";
  g_autoptr(GPtrArray) msgs2 = read_mbox_text(f, box2, NULL);
  assert_int_equal(msgs2->len, 2);
  assert_bytes_str(msg_at(msgs2, 0)->data, "Subject: one\n\nno empty line follows\n");
  assert_bytes_str(msg_at(msgs2, 1)->data, "Subject: two\n");

  /* After an empty line, "From " must be followed by a sender. */
  const char *box3 = "From a@b Mon Nov 20 10:00:00 2023\nS: 1\n\nFrom  \nx\n";
  g_autoptr(GPtrArray) msgs3 = read_mbox_text(f, box3, NULL);
  assert_int_equal(msgs3->len, 1);
  assert_bytes_str(msg_at(msgs3, 0)->data, "S: 1\n\nFrom  \nx\n");
}

static void
test_mbox_stdin(void **state)
{
  Fixture *f = *state;
  const char *box = "From a@b Mon Nov 20 10:00:00 2023\nSubject: 1\n\nx\n\n"
                    "From a@b Mon Nov 20 10:00:01 2023\nSubject: 2\n\ny\n";
  int saved = stdin_from(f, box, strlen(box));
  const char *args[] = { "-", NULL };
  g_autoptr(GPtrArray) msgs = read_all(&source_mbox_ops, &f->opts, args, NULL);
  stdin_restore(saved);
  assert_int_equal(msgs->len, 2);
  assert_string_equal(msg_at(msgs, 0)->origin, "stdin#1");
  assert_string_equal(msg_at(msgs, 1)->origin, "stdin#2");
  assert_bytes_str(msg_at(msgs, 0)->data, "Subject: 1\n\nx\n");
  assert_bytes_str(msg_at(msgs, 1)->data, "Subject: 2\n\ny\n");
  /* fd 0 is not closed by the source. */
  assert_true(fcntl(STDIN_FILENO, F_GETFD) >= 0);
}

static void
test_mbox_crlf(void **state)
{
  Fixture *f = *state;
  const char *box =
    "From a@b Mon Nov 20 10:00:00 2023\r\n"
    "Subject: 1\r\n"
    "\r\n"
    ">From here\r\n"
    "\r\n"
    "From a@b Mon Nov 20 10:00:01 2023\r\n"
    "Subject: 2\r\n"
    "\r\n"
    "last line without end";
  g_autoptr(GPtrArray) msgs = read_mbox_text(f, box, NULL);
  assert_int_equal(msgs->len, 2);
  assert_bytes_str(msg_at(msgs, 0)->data, "Subject: 1\r\n\r\nFrom here\r\n");
  assert_bytes_str(msg_at(msgs, 1)->data, "Subject: 2\r\n\r\nlast line without end");
}

static void
test_mbox_empty_and_blank(void **state)
{
  Fixture *f = *state;
  g_autoptr(GPtrArray) empty = read_mbox_text(f, "", NULL);
  assert_int_equal(empty->len, 0);
  g_autoptr(GPtrArray) blank = read_mbox_text(f, "\n\n  \n", NULL);
  assert_int_equal(blank->len, 0);
  /* Text without any From_ line is one message. */
  g_autoptr(GPtrArray) bare = read_mbox_text(f, "Subject: bare\n\nbody\n", NULL);
  assert_int_equal(bare->len, 1);
  assert_bytes_str(msg_at(bare, 0)->data, "Subject: bare\n\nbody\n");
}

static void
test_mbox_many_messages(void **state)
{
  Fixture *f = *state;
  const guint n = 2000;
  g_autoptr(GString) box = g_string_new(NULL);
  for (guint i = 0; i < n; i++)
    g_string_append_printf(box, "From sender%u@example.org Mon Nov 20 10:00:00 2023\n"
                           "Subject: message %u\n\nbody\nFrom line %u stays\n>From quoted\n\n",
                           i, i + 1, i);
  g_autofree char *p = path_in(f, "big.mbox");
  tu_write_file(p, box->str, box->len);
  const char *args[] = { p, NULL };
  g_autoptr(GError) error = NULL;
  gpointer self = source_mbox_ops.open(&f->opts, (char **) args, &error);
  assert_non_null(self);
  guint count = 0;
  SourceMessage *m = NULL;
  while (source_mbox_ops.next(self, &m, &error)) {
    count++;
    g_autofree char *want = g_strdup_printf("Subject: message %u\n\nbody\nFrom line %u stays\n"
                                            "From quoted\n", count, count - 1);
    assert_bytes_str(m->data, want);
    g_autofree char *origin = g_strdup_printf("%s#%u", p, count);
    assert_string_equal(m->origin, origin);
    /* Committing an mbox message is a no-op that succeeds. */
    assert_true(source_mbox_ops.commit(self, m, SOURCE_OUTCOME_STORED, &error));
    source_message_free(m);
  }
  assert_null(error);
  source_mbox_ops.close(self);
  assert_int_equal(count, n);
}

static void
test_mbox_oversized_skipped(void **state)
{
  Fixture *f = *state;
  g_autoptr(GString) box = g_string_new("From a@b Mon Nov 20 10:00:00 2023\nS: 1\n\nsmall\n\n"
                                        "From a@b Mon Nov 20 10:00:00 2023\nS: 2\n\n");
  for (guint i = 0; i < 100; i++)
    g_string_append(box, "0123456789012345678901234567890123456789\n");
  g_string_append(box, "\nFrom a@b Mon Nov 20 10:00:00 2023\nS: 3\n\nsmall too\n");
  f->opts.max_message_size = 100;
  g_autoptr(GPtrArray) msgs = read_mbox_text(f, box->str, NULL);
  assert_int_equal(msgs->len, 3);
  assert_bytes_str(msg_at(msgs, 0)->data, "S: 1\n\nsmall\n");
  assert_null(msg_at(msgs, 1)->data);
  assert_non_null(msg_at(msgs, 1)->skip_reason);
  assert_non_null(strstr(msg_at(msgs, 1)->skip_reason, "max-message-size"));
  assert_bytes_str(msg_at(msgs, 2)->data, "S: 3\n\nsmall too\n");
  assert_true(g_str_has_suffix(msg_at(msgs, 2)->origin, "#3"));

  /* Exactly the limit, with the separator's empty line after it: kept. */
  char exact[101];
  memset(exact, 'e', 99);
  exact[99] = '\n';
  exact[100] = '\0';
  g_autofree char *box2 = g_strdup_printf("From a@b Mon Nov 20 10:00:00 2023\n%s\n"
                                          "From a@b Mon Nov 20 10:00:00 2023\n%s\n", exact,
                                          exact);
  g_autoptr(GPtrArray) two = read_mbox_text(f, box2, NULL);
  assert_int_equal(two->len, 2);
  assert_bytes_str(msg_at(two, 0)->data, exact);
  assert_bytes_str(msg_at(two, 1)->data, exact);
  /* One byte more is over. */
  g_autofree char *box3 = g_strdup_printf("From a@b Mon Nov 20 10:00:00 2023\nx%s\n", exact);
  g_autoptr(GPtrArray) over = read_mbox_text(f, box3, NULL);
  assert_int_equal(over->len, 1);
  assert_null(msg_at(over, 0)->data);
  assert_non_null(msg_at(over, 0)->skip_reason);
}

/* Lines longer than the reader's buffer, with "From " at awkward places. */
static void
test_mbox_long_lines(void **state)
{
  Fixture *f = *state;
  const gsize big = 600 * 1024 + 7;
  g_autoptr(GString) line = g_string_sized_new(big + 1);
  for (gsize i = 0; i < big; i++)
    g_string_append_c(line, (char) ('a' + i % 26));
  /* "From " right at a 256 KiB boundary inside the long line. */
  memcpy(line->str + 256 * 1024, "From ", 5);
  g_string_append_c(line, '\n');
  g_autoptr(GString) msg1 = g_string_new("Subject: long\n\n");
  g_string_append_len(msg1, line->str, line->len);
  g_string_append(msg1, "after\n");
  g_autoptr(GString) box = g_string_new("From a@b Mon Nov 20 10:00:00 2023\n");
  g_string_append_len(box, msg1->str, msg1->len);
  g_string_append(box, "\nFrom ");
  /* An overlong From_ line: skipped whole. */
  g_string_append_len(box, line->str, line->len);
  g_string_append(box, "Subject: after long From_\n");
  f->opts.max_message_size = 4 * 1024 * 1024;
  g_autoptr(GPtrArray) msgs = read_mbox_text(f, box->str, NULL);
  assert_int_equal(msgs->len, 2);
  assert_bytes_eq(msg_at(msgs, 0)->data, msg1->str, msg1->len);
  assert_bytes_str(msg_at(msgs, 1)->data, "Subject: after long From_\n");
}

static void
test_mbox_several_files_and_missing(void **state)
{
  Fixture *f = *state;
  write_in(f, "a", "From a@b Mon Nov 20 10:00:00 2023\nS: a\n");
  write_in(f, "b", "From a@b Mon Nov 20 10:00:00 2023\nS: b\n");
  g_autofree char *a = path_in(f, "a");
  g_autofree char *b = path_in(f, "b");
  const char *args[] = { a, b, NULL };
  g_autoptr(GPtrArray) msgs = read_all(&source_mbox_ops, &f->opts, args, NULL);
  assert_int_equal(msgs->len, 2);
  g_autofree char *o2 = g_strdup_printf("%s#1", b);
  assert_string_equal(msg_at(msgs, 1)->origin, o2);
  assert_bytes_str(msg_at(msgs, 1)->data, "S: b\n");

  g_autofree char *missing = path_in(f, "missing");
  const char *bad[] = { a, missing, NULL };
  g_autoptr(GError) error = NULL;
  assert_null(source_mbox_ops.open(&f->opts, (char **) bad, &error));
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND));
  assert_non_null(strstr(error->message, missing));
}

/* ---- file ------------------------------------------------------------------------ */

static void
write_gzip(const char *path, const char *text)
{
  z_stream z = { 0 };
  assert_int_equal(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                                Z_DEFAULT_STRATEGY), Z_OK);
  guint8 out[4096];
  z.next_in = (Bytef *) text;
  z.avail_in = (uInt) strlen(text);
  z.next_out = out;
  z.avail_out = sizeof out;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  gsize len = sizeof out - z.avail_out;
  deflateEnd(&z);
  assert_int_equal(out[0], 0x1f);
  tu_write_file(path, out, len);
}

static void
test_file_directory(void **state)
{
  Fixture *f = *state;
  write_in(f, "in/a.json", "{\"organization-name\": \"x\"}\n");
  g_autofree char *gz = path_in(f, "in/b.json.gz");
  write_gzip(gz, "{\"organization-name\": \"y\"}\n");
  g_autoptr(GBytes) eml = tu_fixture("corpus/mox/example.eml");
  g_autofree char *c = path_in(f, "in/c.eml");
  tu_write_file(c, g_bytes_get_data(eml, NULL), g_bytes_get_size(eml));
  write_in(f, "in/.hidden.json", "{}");
  /* A quarantine's companion file is not a message. */
  write_in(f, "in/c.reason", "origin: x\nreason: y\n");
  struct utimbuf ut = { 1700000123, 1700000123 };
  assert_int_equal(utime(c, &ut), 0);

  g_autofree char *in = path_in(f, "in");
  const char *args[] = { in, NULL };
  g_autoptr(GPtrArray) msgs = read_all(&source_file_ops, &f->opts, args, NULL);
  assert_int_equal(msgs->len, 3);
  SourceMessage *m0 = msg_at(msgs, 0), *m1 = msg_at(msgs, 1), *m2 = msg_at(msgs, 2);
  g_autofree char *pa = path_in(f, "in/a.json");
  assert_string_equal(m0->origin, pa);
  assert_true(m0->raw_report);
  assert_string_equal(m0->filename, "a.json");
  assert_bytes_str(m0->data, "{\"organization-name\": \"x\"}\n");
  assert_string_equal(m1->origin, gz);
  assert_true(m1->raw_report);
  assert_string_equal(m1->filename, "b.json.gz");
  assert_int_equal(((const guint8 *) g_bytes_get_data(m1->data, NULL))[0], 0x1f);
  assert_string_equal(m2->origin, c);
  assert_false(m2->raw_report);
  assert_null(m2->filename);
  assert_true(g_bytes_equal(m2->data, eml));
  assert_int_equal(m2->received, 1700000123);
}

static void
test_file_names_sniffing_and_links(void **state)
{
  Fixture *f = *state;
  write_in(f, "in/sub/A.JSON", "{}");
  g_autofree char *gz = path_in(f, "in/report.bin");
  write_gzip(gz, "{}");
  write_in(f, "in/bom.txt", "\xef\xbb\xbf \n {\"a\": 1}");
  write_in(f, "in/message", "Subject: hi\n\n{not a report}\n");
  write_in(f, "outside/x.eml", "Subject: outside\n\nx\n");
  write_in(f, "target.eml", "Subject: linked\n\nx\n");
  g_autofree char *outside = path_in(f, "outside");
  g_autofree char *dirlink = path_in(f, "in/dirlink");
  assert_int_equal(symlink(outside, dirlink), 0);
  g_autofree char *target = path_in(f, "target.eml");
  g_autofree char *filelink = path_in(f, "in/filelink.eml");
  assert_int_equal(symlink(target, filelink), 0);

  g_autofree char *in = path_in(f, "in");
  const char *args[] = { in, NULL };
  g_autoptr(GPtrArray) msgs = read_all(&source_file_ops, &f->opts, args, NULL);
  /* Sorted: bom.txt, filelink.eml, message, report.bin, sub/A.JSON (dirlink skipped). */
  assert_int_equal(msgs->len, 5);
  assert_true(g_str_has_suffix(msg_at(msgs, 0)->origin, "/bom.txt"));
  assert_true(msg_at(msgs, 0)->raw_report);
  assert_string_equal(msg_at(msgs, 0)->filename, "bom.txt");
  assert_true(g_str_has_suffix(msg_at(msgs, 1)->origin, "/filelink.eml"));
  assert_false(msg_at(msgs, 1)->raw_report);
  assert_bytes_str(msg_at(msgs, 1)->data, "Subject: linked\n\nx\n");
  assert_true(g_str_has_suffix(msg_at(msgs, 2)->origin, "/message"));
  assert_false(msg_at(msgs, 2)->raw_report);
  assert_true(g_str_has_suffix(msg_at(msgs, 3)->origin, "/report.bin"));
  assert_true(msg_at(msgs, 3)->raw_report);
  assert_true(g_str_has_suffix(msg_at(msgs, 4)->origin, "/sub/A.JSON"));
  assert_true(msg_at(msgs, 4)->raw_report);
  assert_string_equal(msg_at(msgs, 4)->filename, "A.JSON");

  /* The name alone makes a raw report, whatever the content (the decoder judges). */
  write_in(f, "named/broken.json.gz", "garbage");
  write_in(f, "named/broken.JSON", "garbage");
  write_in(f, "named/broken.zip", "garbage");
  g_autofree char *named = path_in(f, "named");
  const char *nargs[] = { named, NULL };
  g_autoptr(GPtrArray) nmsgs = read_all(&source_file_ops, &f->opts, nargs, NULL);
  assert_int_equal(nmsgs->len, 3);
  assert_string_equal(msg_at(nmsgs, 0)->filename, "broken.JSON");
  assert_string_equal(msg_at(nmsgs, 1)->filename, "broken.json.gz");
  assert_string_equal(msg_at(nmsgs, 2)->filename, "broken.zip");
  for (guint i = 0; i < nmsgs->len; i++)
    assert_true(msg_at(nmsgs, i)->raw_report);

  /* A file named on the command line is read directly. */
  const char *one[] = { target, NULL };
  g_autoptr(GPtrArray) single = read_all(&source_file_ops, &f->opts, one, NULL);
  assert_int_equal(single->len, 1);
  assert_string_equal(msg_at(single, 0)->origin, target);
}

static void
test_file_missing_and_oversized(void **state)
{
  Fixture *f = *state;
  g_autofree char *missing = path_in(f, "no-such.json");
  const char *args[] = { missing, NULL };
  g_autoptr(GError) error = NULL;
  assert_null(source_file_ops.open(&f->opts, (char **) args, &error));
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND));
  assert_non_null(strstr(error->message, "no such file"));
  assert_non_null(strstr(error->message, missing));

  write_in(f, "big.json", "{\"padding\": \"0123456789012345678901234567890123456789\"}");
  g_autofree char *big = path_in(f, "big.json");
  const char *args2[] = { big, NULL };
  f->opts.max_message_size = 10;
  g_autoptr(GPtrArray) msgs = read_all(&source_file_ops, &f->opts, args2, NULL);
  assert_int_equal(msgs->len, 1);
  assert_null(msg_at(msgs, 0)->data);
  assert_non_null(msg_at(msgs, 0)->skip_reason);
}

/* ---- mda ------------------------------------------------------------------------- */

static void
test_mda_reads_stdin(void **state)
{
  Fixture *f = *state;
  g_autoptr(GBytes) eml = tu_fixture("corpus/mox/example.eml");
  int saved = stdin_from(f, g_bytes_get_data(eml, NULL), g_bytes_get_size(eml));
  const char *args[] = { NULL };
  gpointer self = NULL;
  gint64 before = g_get_real_time() / G_USEC_PER_SEC;
  g_autoptr(GPtrArray) msgs = read_all(&source_mda_ops, &f->opts, args, &self);
  stdin_restore(saved);
  assert_int_equal(msgs->len, 1);
  SourceMessage *m = msg_at(msgs, 0);
  assert_true(g_bytes_equal(m->data, eml));
  assert_string_equal(m->origin, "stdin");
  assert_null(m->skip_reason);
  assert_false(m->raw_report);
  assert_true(m->received >= before);
  g_autoptr(GError) error = NULL;
  assert_true(source_mda_ops.commit(self, m, SOURCE_OUTCOME_STORED, &error));
  /* After the one message: the end, again and again. */
  SourceMessage *none = NULL;
  assert_false(source_mda_ops.next(self, &none, &error));
  assert_null(error);
  assert_null(none);
  source_mda_ops.close(self);
}

static void
test_mda_oversized(void **state)
{
  Fixture *f = *state;
  f->opts.max_message_size = 100;
  char data[250];
  memset(data, 'm', sizeof data);

  /* Over the limit: kept with skip_reason, for the quarantine. */
  int saved = stdin_from(f, data, 150);
  const char *args[] = { NULL };
  g_autoptr(GPtrArray) msgs = read_all(&source_mda_ops, &f->opts, args, NULL);
  stdin_restore(saved);
  assert_int_equal(msgs->len, 1);
  assert_non_null(msg_at(msgs, 0)->skip_reason);
  assert_non_null(strstr(msg_at(msgs, 0)->skip_reason, "max-message-size"));
  assert_bytes_eq(msg_at(msgs, 0)->data, data, 150);

  /* Exactly the limit: a normal message. */
  saved = stdin_from(f, data, 100);
  g_autoptr(GPtrArray) exact = read_all(&source_mda_ops, &f->opts, args, NULL);
  stdin_restore(saved);
  assert_int_equal(exact->len, 1);
  assert_null(msg_at(exact, 0)->skip_reason);
  assert_bytes_eq(msg_at(exact, 0)->data, data, 100);

  /* Beyond twice the limit: drained, and an error that leaves it to the MTA. */
  saved = stdin_from(f, data, 250);
  g_autoptr(GError) error = NULL;
  gpointer self = source_mda_ops.open(&f->opts, (char **) args, &error);
  assert_non_null(self);
  SourceMessage *m = NULL;
  assert_false(source_mda_ops.next(self, &m, &error));
  assert_null(m);
  assert_true(g_error_matches(error, SOURCE_ERROR, SOURCE_ERROR_TOO_LARGE));
  off_t pos = lseek(STDIN_FILENO, 0, SEEK_CUR);
  stdin_restore(saved);
  assert_int_equal(pos, 250);
  source_mda_ops.close(self);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_registry),
    cmocka_unit_test(test_message_free),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    T(test_maildir_lists_new_then_cur),
    T(test_maildir_mark_seen),
    T(test_maildir_no_flag_option_leaves_mail),
    T(test_maildir_move_to),
    T(test_maildir_hostile_move_to_refused),
    T(test_maildir_vanished_before_commit),
    T(test_maildir_never_replaces),
    T(test_maildir_not_a_maildir),
    T(test_maildir_oversized_skipped),
    T(test_maildir_symlink_not_followed),
    T(test_maildir_many_messages_fast),
    T(test_maildir_known_messages_not_read_again),
    T(test_maildir_known_messages_acknowledged_later),
    T(test_maildir_known_file_compacted),
    T(test_maildir_mark_seen_while_listing_reads_once),
    T(test_mbox_three_messages_unescaped),
    T(test_mbox_from_in_body_stays),
    T(test_mbox_stdin),
    T(test_mbox_crlf),
    T(test_mbox_empty_and_blank),
    T(test_mbox_many_messages),
    T(test_mbox_oversized_skipped),
    T(test_mbox_long_lines),
    T(test_mbox_several_files_and_missing),
    T(test_file_directory),
    T(test_file_names_sniffing_and_links),
    T(test_file_missing_and_oversized),
    T(test_mda_reads_stdin),
    T(test_mda_oversized),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
