/* test_store.c - the store: index and dedup, commit and rollback, crash recovery from
 * the journal, concurrent committers, the lock timeout, the quarantine, memory. */
#include "testutil.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  char *dir;                /* temp dir */
  char *store;              /* dir/store */
} Fx;

/* A child that is done ends like a crash: SIGKILL, no exit handlers, and no leak
 * check of the parent's memory when the suite runs under valgrind. */
static void G_GNUC_NORETURN
child_done(void)
{
  kill(getpid(), SIGKILL);
  _exit(0);
}

static void
assert_child_done(int status)
{
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGKILL);
}

static int
setup(void **state)
{
  Fx *fx = g_new0(Fx, 1);
  fx->dir = tu_mkdtemp();
  fx->store = g_build_filename(fx->dir, "store", NULL);
  *state = fx;
  return 0;
}

static int
teardown(void **state)
{
  Fx *fx = *state;
  tu_rmtree(fx->dir);
  g_free(fx->dir);
  g_free(fx->store);
  g_free(fx);
  return 0;
}

/* A key made from a number: the first 16 bytes of SHA-256 of its decimal text. */
static void
make_key(guint n, guint8 key[16])
{
  g_autofree char *s = g_strdup_printf("%u", n);
  g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA256);
  g_checksum_update(c, (const guchar *) s, -1);
  guint8 digest[32];
  gsize len = sizeof digest;
  g_checksum_get_digest(c, digest, &len);
  memcpy(key, digest, 16);
}

static char *
key_hex(const guint8 key[16])
{
  GString *s = g_string_new(NULL);
  for (int i = 0; i < 16; i++)
    g_string_append_printf(s, "%02x", key[i]);
  return g_string_free(s, FALSE);
}

static gint64
file_size(const char *path)
{
  struct stat st;
  if (stat(path, &st) != 0)
    return -1;
  return st.st_size;
}

static char *
store_file(const Fx *fx, const char *name)
{
  return g_build_filename(fx->store, name, NULL);
}

static Store *
open_locked(const Fx *fx)
{
  g_autoptr(GError) error = NULL;
  Store *s = store_open(fx->store, NULL, &error);
  if (s == NULL)
    fail_msg("store_open: %s", error->message);
  if (!store_lock(s, 5, &error))
    fail_msg("store_lock: %s", error->message);
  return s;
}

static void
append_text(const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
  close(fd);
}

static void
test_commit_and_reopen(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  guint8 k1[16], k2[16], k3[16], other[16];
  make_key(1, k1);
  make_key(2, k2);
  make_key(3, k3);
  make_key(4, other);
  {
    g_autoptr(Store) s = open_locked(fx);
    assert_string_equal(store_path(s), fx->store);
    assert_true(store_dir_fd(s) >= 0);
    assert_int_equal(store_index_size(s), 0);
    assert_true(store_begin(s, NULL, &error));
    assert_false(store_contains(s, k1));
    store_add(s, k1);
    store_add(s, k2);
    store_add(s, k3);
    store_add(s, k1);           /* twice in one commit: once in the index */
    assert_true(store_contains(s, k1));
    assert_false(store_contains(s, other));
    assert_true(store_commit(s, &error));
    assert_int_equal(store_index_size(s), 3);
    store_unlock(s);
  }
  g_autofree char *index = store_file(fx, ".index");
  g_autofree char *text = tu_read_file(index, NULL);
  g_autofree char *h1 = key_hex(k1), *h2 = key_hex(k2), *h3 = key_hex(k3);
  g_autofree char *want = g_strdup_printf("%s\n%s\n%s\n", h1, h2, h3);
  assert_string_equal(text, want);
  g_autofree char *journal = store_file(fx, ".journal");
  assert_int_equal(file_size(journal), 0);

  g_autoptr(Store) s = open_locked(fx);
  assert_int_equal(store_index_size(s), 3);
  assert_true(store_contains(s, k1));
  assert_true(store_contains(s, k2));
  assert_true(store_contains(s, k3));
  assert_false(store_contains(s, other));
}

static void
test_rollback_forgets(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autofree char *csv = g_build_filename(fx->dir, "r.csv", NULL);
  g_autofree char *newfile = g_build_filename(fx->dir, "new.jsonl", NULL);
  tu_write_file(csv, "header\r\nrow 1\r\n", 15);
  guint8 k1[16];
  make_key(1, k1);

  g_autoptr(Store) s = open_locked(fx);
  g_autoptr(GPtrArray) paths = g_ptr_array_new();
  g_ptr_array_add(paths, csv);
  g_ptr_array_add(paths, newfile);
  assert_true(store_begin(s, paths, &error));
  append_text(csv, "row 2\r\npartial");
  append_text(newfile, "{}\n");
  store_add(s, k1);
  assert_true(store_contains(s, k1));
  store_rollback(s);
  assert_false(store_contains(s, k1));
  g_autofree char *got = tu_read_file(csv, NULL);
  assert_string_equal(got, "header\r\nrow 1\r\n");
  assert_int_equal(file_size(newfile), 0);
  g_autofree char *journal = store_file(fx, ".journal");
  assert_int_equal(file_size(journal), 0);
  store_unlock(s);

  /* Nothing reached the index. */
  g_autoptr(Store) s2 = open_locked(fx);
  assert_int_equal(store_index_size(s2), 0);
  assert_false(store_contains(s2, k1));
}

/* A child that locks, journals, appends to every file and dies without committing. */
static void
crash_child(const Fx *fx, const char *csv, const char *jsonl)
{
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    GError *error = NULL;
    Store *s = store_open(fx->store, NULL, &error);
    if (s == NULL || !store_lock(s, 5, &error))
      _exit(2);
    GPtrArray *paths = g_ptr_array_new();
    g_ptr_array_add(paths, (gpointer) csv);
    g_ptr_array_add(paths, (gpointer) jsonl);
    if (!store_begin(s, paths, &error))
      _exit(3);
    append_text(csv, "policy,garbage,row\r\npolicy,torn");
    append_text(jsonl, "{\"torn\":");
    g_autofree char *index = g_build_filename(fx->store, ".index", NULL);
    append_text(index, "0123456789abcdef0123456789abcdef\n01234");
    child_done();               /* no commit, no unlock: a crash */
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_child_done(status);
}

static void
test_crash_recovery(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autofree char *spaced = g_build_filename(fx->dir, "dir with  spaces", NULL);
  assert_int_equal(g_mkdir_with_parents(spaced, 0755), 0);
  g_autofree char *csv = g_build_filename(spaced, "r p\\t.csv", NULL);
  g_autofree char *jsonl = g_build_filename(fx->dir, "never-existed.jsonl", NULL);
  const char *csv_text = "header\r\npolicy,good,row\r\n";
  tu_write_file(csv, csv_text, strlen(csv_text));
  guint8 k1[16], k2[16];
  make_key(1, k1);
  make_key(2, k2);
  {
    g_autoptr(Store) s = open_locked(fx);
    assert_true(store_begin(s, NULL, &error));
    store_add(s, k1);
    assert_true(store_commit(s, &error));
  }
  g_autofree char *index = store_file(fx, ".index");
  g_autofree char *index_before = tu_read_file(index, NULL);

  crash_child(fx, csv, jsonl);
  g_autofree char *journal = store_file(fx, ".journal");
  assert_true(file_size(journal) > 0);
  assert_true(file_size(csv) > (gint64) strlen(csv_text));

  g_autoptr(Store) s = open_locked(fx);       /* recovers */
  g_autofree char *csv_after = tu_read_file(csv, NULL);
  assert_string_equal(csv_after, csv_text);
  assert_int_equal(file_size(jsonl), 0);
  g_autofree char *index_after = tu_read_file(index, NULL);
  assert_string_equal(index_after, index_before);
  assert_int_equal(file_size(journal), 0);
  assert_int_equal(store_index_size(s), 1);
  assert_true(store_contains(s, k1));
  guint8 junk[16];
  memcpy(junk, "\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef", 16);
  assert_false(store_contains(s, junk));

  /* And the store works on. */
  assert_true(store_begin(s, NULL, &error));
  store_add(s, k2);
  assert_true(store_commit(s, &error));
  assert_int_equal(tu_count_lines(index), 2);
}

/* Killed after the index was appended but before the journal was cleared: the index
 * and the rows go back together. */
static void
test_crash_after_index_write(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autofree char *csv = g_build_filename(fx->dir, "r.csv", NULL);
  tu_write_file(csv, "h\r\n", 3);
  { g_autoptr(Store) s = open_locked(fx); }
  g_autofree char *index = store_file(fx, ".index");
  g_autofree char *journal = store_file(fx, ".journal");
  assert_int_equal(file_size(index), 0);

  g_autofree char *jtext = g_strdup_printf("tlsrpt-journal 1\nindex 0\nfile 3 %s\nend\n", csv);
  tu_write_file(journal, jtext, strlen(jtext));
  append_text(csv, "row\r\n");
  append_text(index, "0123456789abcdef0123456789abcdef\n");

  g_autoptr(Store) s = open_locked(fx);
  assert_int_equal(file_size(index), 0);
  assert_int_equal(file_size(csv), 3);
  assert_int_equal(file_size(journal), 0);
  assert_int_equal(store_index_size(s), 0);
}

/* A journal torn while written (no "end"): cleared, nothing truncated. */
static void
test_torn_journal_is_ignored(void **state)
{
  Fx *fx = *state;
  g_autofree char *csv = g_build_filename(fx->dir, "r.csv", NULL);
  tu_write_file(csv, "h\r\nrow\r\n", 8);
  { g_autoptr(Store) s = open_locked(fx); }
  g_autofree char *journal = store_file(fx, ".journal");
  g_autofree char *jtext = g_strdup_printf("tlsrpt-journal 1\nindex 0\nfile 3 %s", csv);
  tu_write_file(journal, jtext, strlen(jtext));

  g_autoptr(Store) s = open_locked(fx);
  assert_int_equal(file_size(csv), 8);
  assert_int_equal(file_size(journal), 0);
}

static void
test_malformed_index_lines(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  guint8 k1[16], k2[16], k3[16];
  make_key(1, k1);
  make_key(2, k2);
  make_key(3, k3);
  g_autofree char *h1 = key_hex(k1), *h2 = key_hex(k2);
  assert_int_equal(g_mkdir_with_parents(fx->store, 0755), 0);
  g_autofree char *index = store_file(fx, ".index");
  g_autofree char *text = g_strdup_printf("%s\nnot a key\n%.31s\nzz%.30s\n\n%s\n%.10s", h1,
                                          h1, h2, h2, h2);
  tu_write_file(index, text, strlen(text));

  g_autoptr(Store) s = open_locked(fx);
  assert_int_equal(store_index_size(s), 2);
  assert_true(store_contains(s, k1));
  assert_true(store_contains(s, k2));

  /* A commit after a partial last line does not merge with it. */
  assert_true(store_begin(s, NULL, &error));
  store_add(s, k3);
  assert_true(store_commit(s, &error));
  store_unlock(s);
  g_autoptr(Store) s2 = open_locked(fx);
  assert_int_equal(store_index_size(s2), 3);
  assert_true(store_contains(s2, k3));
}

#define CHILDREN 20
#define KEYS_PER_CHILD 50

static void
test_concurrent_committers(void **state)
{
  Fx *fx = *state;
  assert_int_equal(g_mkdir_with_parents(fx->store, 0755), 0);
  pid_t pids[CHILDREN];
  for (guint c = 0; c < CHILDREN; c++) {
    pids[c] = fork();
    assert_true(pids[c] >= 0);
    if (pids[c] != 0)
      continue;
    GError *error = NULL;
    Store *s = store_open(fx->store, NULL, &error);
    if (s == NULL || !store_lock(s, 60, &error))
      _exit(2);
    if (!store_begin(s, NULL, &error))
      _exit(3);
    guint8 key[16];
    make_key(999999, key);      /* one key every child wants */
    if (!store_contains(s, key))
      store_add(s, key);
    for (guint i = 0; i < KEYS_PER_CHILD; i++) {
      make_key(c * 1000 + i, key);
      store_add(s, key);
    }
    if (!store_commit(s, &error))
      _exit(4);
    store_unlock(s);
    store_close(s);
    child_done();
  }
  for (guint c = 0; c < CHILDREN; c++) {
    int status = 0;
    assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
    assert_child_done(status);
  }
  g_autofree char *index = store_file(fx, ".index");
  g_autofree char *text = tu_read_file(index, NULL);
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  guint n = 0;
  for (guint i = 0; lines[i] != NULL; i++) {
    if (lines[i][0] == '\0')
      continue;
    assert_int_equal(strlen(lines[i]), 32);
    if (!g_hash_table_add(seen, lines[i]))
      fail_msg("key %s twice in the index", lines[i]);
    n++;
  }
  assert_int_equal(n, CHILDREN * KEYS_PER_CHILD + 1);
  g_autoptr(Store) s = open_locked(fx);
  assert_int_equal(store_index_size(s), CHILDREN * KEYS_PER_CHILD + 1);
}

static void
test_lock_timeout(void **state)
{
  Fx *fx = *state;
  int up[2], down[2];
  assert_int_equal(pipe(up), 0);
  assert_int_equal(pipe(down), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    GError *error = NULL;
    Store *s = store_open(fx->store, NULL, &error);
    if (s == NULL || !store_lock(s, 5, &error))
      _exit(2);
    char c = 'L';
    if (write(up[1], &c, 1) != 1)
      _exit(3);
    if (read(down[0], &c, 1) != 1)
      _exit(4);
    child_done();               /* the end of the process releases the lock */
  }
  char c;
  assert_int_equal(read(up[0], &c, 1), 1);

  g_autoptr(GError) error = NULL;
  g_autoptr(Store) s = store_open(fx->store, NULL, &error);
  assert_non_null(s);
  gint64 t0 = g_get_monotonic_time();
  assert_false(store_lock(s, 0.3, &error));
  gint64 waited = g_get_monotonic_time() - t0;
  assert_true(g_error_matches(error, STORE_ERROR, STORE_ERROR_LOCK));
  assert_non_null(strstr(error->message, "store is locked by another process (waited 0.3 s)"));
  assert_true(waited >= 250000);
  assert_int_equal(tr_error_classify(error), TR_ERROR_TRANSIENT);
  g_clear_error(&error);

  assert_int_equal(write(down[1], "x", 1), 1);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_child_done(status);
  assert_true(store_lock(s, 5, &error));
  store_unlock(s);
  close(up[0]);
  close(up[1]);
  close(down[0]);
  close(down[1]);
}

/* The sources' state files: one name scheme, kept as the stores written before have it. */
static void
test_state_path(void **state)
{
  g_autofree char *name = NULL;
  g_autofree char *path = store_state_path("/var/st", "maildir", "/home/u/Maildir", "seen", &name);
  g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "/home/u/Maildir", -1);
  g_autofree char *want = g_strdup_printf(".maildir-%.16s.seen", sha);
  assert_string_equal(name, want);
  g_autofree char *want_path = g_strconcat("/var/st/", want, NULL);
  assert_string_equal(path, want_path);
  g_autofree char *lock = store_state_path("st", "imap", "u@h:993/INBOX", "lock", NULL);
  g_autofree char *st = NULL;
  g_autofree char *st_path = store_state_path("st", "imap", "u@h:993/INBOX", "state", &st);
  assert_true(g_str_has_prefix(lock, "st/.imap-"));
  assert_true(g_str_has_suffix(lock, ".lock"));
  assert_int_equal(strlen(st), strlen(".imap-") + 16 + strlen(".state"));
  assert_memory_equal(lock + 3, st, strlen(".imap-") + 16);
}

static void
test_quarantine(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Store) s = store_open(fx->store, NULL, &error);
  assert_non_null(s);
  const char *msg = "From: a@b\r\n\r\nnot a report\r\n";
  g_autoptr(GBytes) bytes = g_bytes_new_static(msg, strlen(msg));
  g_autofree char *p1 = store_quarantine(s, bytes, "stdin", "not JSON\ninjected: line", &error);
  assert_non_null(p1);
  g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, msg, -1);
  g_autofree char *want = g_strdup_printf("%s/quarantine/%.16s.eml", fx->store, sha);
  assert_string_equal(p1, want);
  g_autofree char *copy = tu_read_file(p1, NULL);
  assert_string_equal(copy, msg);

  g_autofree char *reason_path = g_strdup_printf("%s/quarantine/%.16s.reason", fx->store, sha);
  g_autofree char *reason = tu_read_file(reason_path, NULL);
  assert_non_null(reason);
  assert_true(g_str_has_prefix(reason, "origin: stdin\nreceived: "));
  assert_true(g_str_has_suffix(reason, "\nreason: not JSON injected: line\n"));
  g_auto(GStrv) lines = g_strsplit(reason, "\n", -1);
  assert_int_equal(g_strv_length(lines), 4);
  gint64 when = 0;
  g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(lines[1] + strlen("received: "), NULL);
  assert_non_null(dt);
  when = g_date_time_to_unix(dt);
  assert_true(llabs(when - g_get_real_time() / G_USEC_PER_SEC) < 60);

  /* Same bytes: same name, one copy, the reason rewritten; the origin stays the first
   * one (re-examining the quarantine reads the message from the quarantine itself). */
  g_autofree char *p2 = store_quarantine(s, bytes, "/x/y", "other reason", &error);
  assert_string_equal(p1, p2);
  g_autofree char *q = g_build_filename(fx->store, "quarantine", NULL);
  assert_int_equal(tu_count_files(q, ".eml"), 1);
  assert_int_equal(tu_count_files(q, ".reason"), 1);
  g_free(reason);
  reason = tu_read_file(reason_path, NULL);
  assert_true(g_str_has_prefix(reason, "origin: stdin\n"));
  assert_non_null(strstr(reason, "reason: other reason\n"));

  /* Other bytes: another name. */
  g_autoptr(GBytes) other = g_bytes_new_static("x", 1);
  g_autofree char *p3 = store_quarantine(s, other, "o", "r", &error);
  assert_non_null(p3);
  assert_string_not_equal(p1, p3);
  assert_int_equal(tu_count_files(q, ".eml"), 2);
  assert_int_equal(tu_count_files(q, NULL), 4);
}

static void
test_quarantine_elsewhere_and_symlink(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autofree char *qdir = g_build_filename(fx->dir, "q", "sub", NULL);
  g_autoptr(GBytes) bytes = g_bytes_new_static("m", 1);
  {
    g_autoptr(Store) s = store_open(fx->store, qdir, &error);
    g_autofree char *p = store_quarantine(s, bytes, "o", "r", &error);
    assert_non_null(p);
    assert_true(g_str_has_prefix(p, qdir));
    assert_int_equal(tu_count_files(qdir, NULL), 2);
  }
  /* A symlink planted as STORE/quarantine is refused. */
  g_autofree char *outside = g_build_filename(fx->dir, "outside", NULL);
  assert_int_equal(g_mkdir_with_parents(outside, 0755), 0);
  g_autofree char *link = g_build_filename(fx->store, "quarantine", NULL);
  assert_int_equal(symlink(outside, link), 0);
  g_autoptr(Store) s = store_open(fx->store, NULL, &error);
  assert_null(store_quarantine(s, bytes, "o", "r", &error));
  assert_true(g_error_matches(error, STORE_ERROR, STORE_ERROR_IO));
  assert_non_null(strstr(error->message, "symbolic link"));
  assert_int_equal(tu_count_files(outside, NULL), 0);
}

static void
test_symlinked_index_refused(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  assert_int_equal(g_mkdir_with_parents(fx->store, 0755), 0);
  g_autofree char *target = g_build_filename(fx->dir, "target", NULL);
  g_autofree char *link = store_file(fx, ".index");
  assert_int_equal(symlink(target, link), 0);
  g_autoptr(Store) s = store_open(fx->store, NULL, &error);
  assert_false(store_lock(s, 1, &error));
  assert_true(g_error_matches(error, STORE_ERROR, STORE_ERROR_IO));
  assert_false(g_file_test(target, G_FILE_TEST_EXISTS));
  g_clear_error(&error);
  /* The lock was given back. */
  assert_int_equal(unlink(link), 0);
  assert_true(store_lock(s, 0, &error));
}

static void
test_open_errors_and_sweep(void **state)
{
  Fx *fx = *state;
  g_autoptr(GError) error = NULL;
  g_autofree char *file = g_build_filename(fx->dir, "file", NULL);
  tu_write_file(file, "x", 1);
  g_autofree char *below = g_build_filename(file, "store", NULL);
  assert_null(store_open(below, NULL, &error));
  assert_true(g_error_matches(error, STORE_ERROR, STORE_ERROR_IO));
  assert_int_equal(tr_error_classify(error), TR_ERROR_TRANSIENT);
  g_clear_error(&error);

  /* Old temporary files at the top are swept at open, young ones and data stay. */
  assert_int_equal(g_mkdir_with_parents(fx->store, 0755), 0);
  g_autofree char *old_tmp = store_file(fx, ".tmp-x-1-2");
  g_autofree char *young_tmp = store_file(fx, ".tmp-y-1-2");
  tu_write_file(old_tmp, "o", 1);
  tu_write_file(young_tmp, "y", 1);
  struct timespec ts[2] = { { time(NULL) - 4000, 0 }, { time(NULL) - 4000, 0 } };
  assert_int_equal(utimensat(AT_FDCWD, old_tmp, ts, 0), 0);
  g_autoptr(Store) s = store_open(fx->store, NULL, &error);
  assert_non_null(s);
  assert_false(g_file_test(old_tmp, G_FILE_TEST_EXISTS));
  assert_true(g_file_test(young_tmp, G_FILE_TEST_EXISTS));
}

#define MANY 200000

static void
test_many_keys_small_memory(void **state)
{
  Fx *fx = *state;
  assert_int_equal(g_mkdir_with_parents(fx->store, 0755), 0);
  GString *text = g_string_sized_new(MANY * 33);
  guint8 key[16];
  for (guint i = 0; i < MANY; i++) {
    make_key(i, key);
    for (int k = 0; k < 16; k++)
      g_string_append_printf(text, "%02x", key[k]);
    g_string_append_c(text, '\n');
  }
  g_autofree char *index = store_file(fx, ".index");
  tu_write_file(index, text->str, text->len);
  g_string_free(text, TRUE);

  g_autoptr(Store) s = open_locked(fx);
  assert_int_equal(store_index_size(s), MANY);
  gsize mem = store_index_memory(s);
  print_message("%u keys held in %zu bytes (%.1f bytes/key)\n", MANY, mem,
                (double) mem / MANY);
  assert_true(mem <= 5u * 1024 * 1024);
  assert_true(mem >= MANY * 16u);
  for (guint i = 0; i < MANY; i += 997) {
    make_key(i, key);
    assert_true(store_contains(s, key));
  }
  for (guint i = MANY; i < MANY + 1000; i++) {
    make_key(i, key);
    assert_false(store_contains(s, key));
  }
  /* The all-zero key is a key like any other. */
  guint8 zero[16] = { 0 };
  assert_false(store_contains(s, zero));
  g_autoptr(GError) error = NULL;
  assert_true(store_begin(s, NULL, &error));
  store_add(s, zero);
  assert_true(store_commit(s, &error));
  assert_true(store_contains(s, zero));
  assert_int_equal(store_index_size(s), MANY + 1);
}

int
main(void)
{
  umask(022);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_commit_and_reopen, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rollback_forgets, setup, teardown),
    cmocka_unit_test_setup_teardown(test_crash_recovery, setup, teardown),
    cmocka_unit_test_setup_teardown(test_crash_after_index_write, setup, teardown),
    cmocka_unit_test_setup_teardown(test_torn_journal_is_ignored, setup, teardown),
    cmocka_unit_test_setup_teardown(test_malformed_index_lines, setup, teardown),
    cmocka_unit_test_setup_teardown(test_concurrent_committers, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
    cmocka_unit_test(test_state_path),
    cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
    cmocka_unit_test_setup_teardown(test_quarantine_elsewhere_and_symlink, setup, teardown),
    cmocka_unit_test_setup_teardown(test_symlinked_index_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_errors_and_sweep, setup, teardown),
    cmocka_unit_test_setup_teardown(test_many_keys_small_memory, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
