/* faultutil.c - helpers of the fault and hostile-input tests; see faultutil.h. */
#include "faultutil.h"

#include <glib/gstdio.h>

#include <errno.h>
#include <sqlite3.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* ---- running the binary -------------------------------------------------- */

void
fu_result_clear(FuResult *r)
{
  g_clear_pointer(&r->err, g_free);
  g_clear_pointer(&r->out, g_free);
}

double
fu_cpu(const FuResult *r)
{
  return (double) r->ru.ru_utime.tv_sec + r->ru.ru_utime.tv_usec / 1e6 +
         (double) r->ru.ru_stime.tv_sec + r->ru.ru_stime.tv_usec / 1e6;
}

static const char *
fu_bin(void)
{
  const char *bin = g_getenv("TLSRPT_BIN");
  if (bin == NULL)
    fail_msg("TLSRPT_BIN is not set");
  return bin;
}

static char **
fu_full_argv(const char *const *argv)
{
  GPtrArray *a = g_ptr_array_new();
  g_ptr_array_add(a, g_strdup(fu_bin()));
  for (guint i = 0; argv[i] != NULL; i++)
    g_ptr_array_add(a, g_strdup(argv[i]));
  g_ptr_array_add(a, NULL);
  return (char **) g_ptr_array_free(a, FALSE);
}

static int
fu_tmpfile(char **path_out)
{
  g_autoptr(GError) error = NULL;
  int fd = g_file_open_tmp("tlsrpt-fault-XXXXXX", path_out, &error);
  if (fd < 0)
    fail_msg("tmpfile: %s", error->message);
  return fd;
}

typedef struct {
  int fd;
  FuStdinWriter writer;
  gpointer data;
} FuWriterJob;

static gpointer
fu_writer_thread(gpointer p)
{
  FuWriterJob *job = p;
  job->writer(job->fd, job->data);
  close(job->fd);
  return NULL;
}

void
fu_run(const FuRunOptions *o, FuResult *r)
{
  memset(r, 0, sizeof *r);
  signal(SIGPIPE, SIG_IGN);
  g_auto(GStrv) argv = fu_full_argv(o->argv);
  g_autofree char *out_path = NULL;
  g_autofree char *err_path = NULL;
  g_autofree char *in_path = NULL;
  int out_fd = fu_tmpfile(&out_path);
  int err_fd = fu_tmpfile(&err_path);
  int in_fd = -1;
  int pipe_fds[2] = { -1, -1 };

  if (o->stdin_bytes != NULL) {
    in_fd = fu_tmpfile(&in_path);
    gsize len = 0;
    const guint8 *d = g_bytes_get_data(o->stdin_bytes, &len);
    for (gsize off = 0; off < len;) {
      ssize_t n = write(in_fd, d + off, len - off);
      if (n <= 0)
        fail_msg("write stdin file: %s", g_strerror(errno));
      off += (gsize) n;
    }
    lseek(in_fd, 0, SEEK_SET);
  } else if (o->stdin_path != NULL) {
    in_fd = open(o->stdin_path, O_RDONLY | O_CLOEXEC);
    if (in_fd < 0)
      fail_msg("open %s: %s", o->stdin_path, g_strerror(errno));
  } else if (o->stdin_writer != NULL) {
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
      fail_msg("pipe: %s", g_strerror(errno));
    in_fd = pipe_fds[0];
  } else {
    in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  gint64 start = g_get_monotonic_time();
  pid_t pid = fork();
  if (pid < 0)
    fail_msg("fork: %s", g_strerror(errno));
  if (pid == 0) {
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    if (o->rlimit_fsize > 0) {
      struct rlimit rl = { o->rlimit_fsize, o->rlimit_fsize };
      setrlimit(RLIMIT_FSIZE, &rl);
      /* As an MTA does (Postfix): writes past the limit fail with EFBIG instead of
       * killing the process. */
      signal(SIGXFSZ, o->sigxfsz_default ? SIG_DFL : SIG_IGN);
    }
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    _exit(127);
  }
  close(in_fd);
  GThread *writer = NULL;
  FuWriterJob job = { pipe_fds[1], o->stdin_writer, o->stdin_writer_data };
  if (o->stdin_writer != NULL)
    writer = g_thread_new("stdin-writer", fu_writer_thread, &job);

  double timeout = o->timeout > 0 ? o->timeout : 120;
  int status = 0;
  for (;;) {
    pid_t w = wait4(pid, &status, WNOHANG, &r->ru);
    if (w == pid)
      break;
    if (w < 0 && errno != EINTR)
      fail_msg("wait4: %s", g_strerror(errno));
    if ((g_get_monotonic_time() - start) / 1e6 > timeout && !r->timed_out) {
      r->timed_out = TRUE;
      kill(pid, SIGKILL);
    }
    g_usleep(2000);
  }
  r->wall = (g_get_monotonic_time() - start) / 1e6;
  if (writer != NULL)
    g_thread_join(writer);
  if (WIFEXITED(status)) {
    r->exit_code = WEXITSTATUS(status);
  } else {
    r->exit_code = -1;
    r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
  close(out_fd);
  close(err_fd);
  r->out = tu_read_file(out_path, NULL);
  r->err = tu_read_file(err_path, NULL);
  if (r->out == NULL)
    r->out = g_strdup("");
  if (r->err == NULL)
    r->err = g_strdup("");
  g_unlink(out_path);
  g_unlink(err_path);
  if (in_path != NULL)
    g_unlink(in_path);
}

pid_t
fu_spawn(const char *const *argv, const char *stdin_path, const char *log_path)
{
  g_auto(GStrv) full = fu_full_argv(argv);
  int in_fd = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY | O_CLOEXEC);
  int log_fd = open(log_path ? log_path : "/dev/null",
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (in_fd < 0 || log_fd < 0)
    fail_msg("spawn: open: %s", g_strerror(errno));
  pid_t pid = fork();
  if (pid < 0)
    fail_msg("fork: %s", g_strerror(errno));
  if (pid == 0) {
    dup2(in_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execv(full[0], full);
    _exit(127);
  }
  close(in_fd);
  close(log_fd);
  return pid;
}

int
fu_wait(pid_t pid)
{
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      fail_msg("waitpid: %s", g_strerror(errno));
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? -WTERMSIG(status) : -1000;
}

/* ---- building input ------------------------------------------------------ */

static void
fu_deflate_all(z_stream *zs, const guint8 *in, gsize len, int flush, GByteArray *out)
{
  guint8 buf[64 * 1024];
  zs->next_in = (Bytef *) in;
  zs->avail_in = (uInt) len;
  do {
    zs->next_out = buf;
    zs->avail_out = sizeof buf;
    int rc = deflate(zs, flush);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
      fail_msg("deflate: %d", rc);
    g_byte_array_append(out, buf, (guint) (sizeof buf - zs->avail_out));
  } while (zs->avail_out == 0 || zs->avail_in > 0);
}

GBytes *
fu_gzip(const void *data, gsize len)
{
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    fail_msg("deflateInit2");
  GByteArray *out = g_byte_array_new();
  /* zlib's avail_in is 32 bits: feed big inputs in pieces. */
  const guint8 *p = data;
  while (len > (1u << 30)) {
    fu_deflate_all(&zs, p, 1u << 30, Z_NO_FLUSH, out);
    p += 1u << 30;
    len -= 1u << 30;
  }
  fu_deflate_all(&zs, p, len, Z_FINISH, out);
  deflateEnd(&zs);
  return g_byte_array_free_to_bytes(out);
}

GBytes *
fu_gzip_zeros(guint64 zeros)
{
  const gsize chunk = 1024 * 1024;
  assert_true(zeros >= chunk && zeros % chunk == 0);
  guint64 k = zeros / chunk;
  g_autofree guint8 *z = g_malloc0(chunk);

  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    fail_msg("deflateInit2");
  g_autoptr(GByteArray) a = g_byte_array_new();
  g_autoptr(GByteArray) b = g_byte_array_new();
  g_autoptr(GByteArray) c = g_byte_array_new();
  g_autoptr(GByteArray) fin = g_byte_array_new();
  fu_deflate_all(&zs, z, chunk, Z_FULL_FLUSH, a);
  fu_deflate_all(&zs, z, chunk, Z_FULL_FLUSH, b);
  fu_deflate_all(&zs, z, chunk, Z_FULL_FLUSH, c);
  /* After a full flush the compressor starts afresh: the same input gives the same
   * block, which is what lets us repeat it. */
  assert_int_equal(b->len, c->len);
  assert_memory_equal(b->data, c->data, b->len);
  fu_deflate_all(&zs, NULL, 0, Z_FINISH, fin);
  deflateEnd(&zs);

  uLong crc1 = crc32(0L, z, (uInt) chunk);
  uLong crc = crc1;
  for (guint64 i = 1; i < k; i++)
    crc = crc32_combine(crc, crc1, (z_off_t) chunk);

  static const guint8 header[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3 };
  GByteArray *out = g_byte_array_sized_new((guint) (10 + a->len + b->len * (k - 1) + 16));
  g_byte_array_append(out, header, sizeof header);
  g_byte_array_append(out, a->data, a->len);
  for (guint64 i = 1; i < k; i++)
    g_byte_array_append(out, b->data, b->len);
  g_byte_array_append(out, fin->data, fin->len);
  guint8 trailer[8];
  guint32 isize = (guint32) (zeros & 0xffffffffu);
  for (int i = 0; i < 4; i++) {
    trailer[i] = (guint8) (crc >> (8 * i));
    trailer[4 + i] = (guint8) (isize >> (8 * i));
  }
  g_byte_array_append(out, trailer, sizeof trailer);
  return g_byte_array_free_to_bytes(out);
}

char *
fu_report_json(const char *org, const char *report_id, const char *policy_domain)
{
  return g_strdup_printf(
      "{\"organization-name\":\"%s\",\"date-range\":{\"start-datetime\":"
      "\"2022-09-15T00:00:00Z\",\"end-datetime\":\"2022-09-15T23:59:59Z\"},"
      "\"contact-info\":\"smtp-tls-reporting@sender.example\",\"report-id\":\"%s\","
      "\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":["
      "\"version: STSv1\",\"mode: enforce\",\"max_age: 86400\",\"mx: mx.example.com\"],"
      "\"policy-domain\":\"%s\",\"mx-host\":[\"mx.example.com\"]},\"summary\":{"
      "\"total-successful-session-count\":3,\"total-failure-session-count\":1},"
      "\"failure-details\":[{\"result-type\":\"certificate-expired\",\"sending-mta-ip\":"
      "\"192.0.2.1\",\"receiving-mx-hostname\":\"mx.example.com\","
      "\"failed-session-count\":1}]}]}",
      org, report_id, policy_domain);
}

static void
fu_append_base64(GString *s, const guint8 *data, gsize len)
{
  g_autofree char *b64 = g_base64_encode(data, len);
  gsize n = strlen(b64);
  for (gsize i = 0; i < n; i += 76) {
    g_string_append_len(s, b64 + i, (gssize) MIN((gsize) 76, n - i));
    g_string_append(s, "\r\n");
  }
}

static gboolean
fu_needs_rfc2231(const char *s)
{
  for (const guchar *p = (const guchar *) s; *p; p++)
    if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
      return TRUE;
  return FALSE;
}

static void
fu_append_filename_param(GString *s, const char *param, const char *filename)
{
  if (!fu_needs_rfc2231(filename)) {
    g_string_append_printf(s, ";\r\n\t%s=\"%s\"", param, filename);
    return;
  }
  g_string_append_printf(s, ";\r\n\t%s*=UTF-8''", param);
  for (const guchar *p = (const guchar *) filename; *p; p++) {
    if (g_ascii_isalnum(*p) || strchr("!#$&+-.^_`|~", *p) != NULL)
      g_string_append_c(s, (char) *p);
    else
      g_string_append_printf(s, "%%%02X", *p);
  }
}

GBytes *
fu_report_message(GBytes *payload, const char *ctype, const char *filename)
{
  GString *s = g_string_new(NULL);
  g_string_append(s,
                  "From: TLS reporter <noreply-tlsrpt@sender.example>\r\n"
                  "To: tlsrpt@example.com\r\n"
                  "Subject: Report Domain: example.com Submitter: sender.example\r\n"
                  "Date: Fri, 16 Sep 2022 03:10:06 -0700\r\n"
                  "Message-ID: <hostile@sender.example>\r\n"
                  "TLS-Report-Domain: example.com\r\n"
                  "TLS-Report-Submitter: sender.example\r\n"
                  "MIME-Version: 1.0\r\n"
                  "Content-Type: multipart/report; boundary=\"b-outer\"; "
                  "report-type=tlsrpt\r\n"
                  "\r\n"
                  "--b-outer\r\n"
                  "Content-Type: text/plain; charset=us-ascii\r\n"
                  "\r\n"
                  "This is an aggregate TLS report from sender.example\r\n"
                  "\r\n"
                  "--b-outer\r\n");
  g_string_append_printf(s, "Content-Type: %s", ctype ? ctype : "application/tlsrpt+gzip");
  const char *fn = filename ? filename
                            : "sender.example!example.com!1663200000!1663286399!001.json.gz";
  fu_append_filename_param(s, "name", fn);
  g_string_append(s, "\r\nContent-Disposition: attachment");
  fu_append_filename_param(s, "filename", fn);
  g_string_append(s, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
  gsize len = 0;
  const guint8 *d = g_bytes_get_data(payload, &len);
  fu_append_base64(s, d, len);
  g_string_append(s, "--b-outer--\r\n");
  return g_string_free_to_bytes(s);
}

GBytes *
fu_generated_message(guint n)
{
  static char *head;          /* the template up to the base64 body */
  static char *tail;          /* from the closing boundary on */
  if (head == NULL) {
    g_autoptr(GBytes) t = tu_fixture("corpus/mox/example.eml");
    g_autofree char *text = g_strndup(g_bytes_get_data(t, NULL), g_bytes_get_size(t));
    char *body = strstr(text, "\r\n\r\nH4sI");
    assert_non_null(body);
    body += 4;
    char *end = strstr(body, "\r\n--000000000000f47cb005e8c8905b--");
    assert_non_null(end);
    head = g_strndup(text, (gsize) (body - text));
    tail = g_strdup(end + 2);
  }
  g_autofree char *json = g_strdup_printf(
      "{\"organization-name\":\"Generated Org %u\",\"date-range\":{\"start-datetime\":"
      "\"2022-09-15T00:00:00Z\",\"end-datetime\":\"2022-09-15T23:59:59Z\"},"
      "\"contact-info\":\"smtp-tls-reporting@google.com\",\"report-id\":\"gen-%05u\","
      "\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":["
      "\"version: STSv1\",\"mode: enforce\",\"max_age: 86400\","
      "\"mx: komijn.test.xmox.nl\"],\"policy-domain\":\"test.xmox.nl\",\"mx-host\":["
      "\"komijn.test.xmox.nl\"]},\"summary\":{\"total-successful-session-count\":%u,"
      "\"total-failure-session-count\":0}}]}",
      n % 7, n, n + 1);
  g_autoptr(GBytes) gz = fu_gzip(json, strlen(json));
  GString *s = g_string_new(head);
  fu_append_base64(s, g_bytes_get_data(gz, NULL), g_bytes_get_size(gz));
  g_string_append(s, tail);
  return g_string_free_to_bytes(s);
}

void
fu_make_maildir(const char *dir, guint first, guint count)
{
  for (const char *sub = "new\0cur\0tmp\0"; *sub; sub += strlen(sub) + 1) {
    g_autofree char *p = g_build_filename(dir, sub, NULL);
    g_mkdir_with_parents(p, 0755);
  }
  for (guint i = first; i < first + count; i++) {
    g_autoptr(GBytes) m = fu_generated_message(i);
    g_autofree char *name = g_strdup_printf("%u.M%uP4242.gen", 1700000000u + i, i);
    g_autofree char *path = g_build_filename(dir, "new", name, NULL);
    tu_write_file(path, g_bytes_get_data(m, NULL), g_bytes_get_size(m));
  }
}

/* ---- checking output ----------------------------------------------------- */

static guint
fu_walk(const char *root, const char *rel, const char *const *allowed, gboolean in_quarantine)
{
  g_autofree char *path = rel[0] ? g_build_filename(root, rel, NULL) : g_strdup(root);
  GDir *d = g_dir_open(path, 0, NULL);
  if (d == NULL)
    fail_msg("walk: cannot open %s", path);
  guint n = 0;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    gsize len = strlen(name);
    if (len > 255)
      fail_msg("store: name of %zu bytes in %s", len, path);
    for (const guchar *p = (const guchar *) name; *p; p++)
      if (*p <= 0x20 || *p >= 0x7f)
        fail_msg("store: name with byte 0x%02x in %s: '%s'", *p, path, name);
    g_autofree char *child_rel = rel[0] ? g_build_filename(rel, name, NULL) : g_strdup(name);
    g_autofree char *child = g_build_filename(root, child_rel, NULL);
    struct stat st;
    if (lstat(child, &st) != 0)
      continue;                 /* vanished (a temporary file) */
    if (S_ISLNK(st.st_mode)) {
      gboolean ok = FALSE;
      for (guint i = 0; allowed != NULL && allowed[i] != NULL; i++)
        ok = ok || strcmp(allowed[i], child_rel) == 0;
      if (!ok)
        fail_msg("store: unexpected symlink %s", child);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      gboolean q = in_quarantine || (rel[0] == '\0' && strcmp(name, "quarantine") == 0);
      n += fu_walk(root, child_rel, allowed, q);
    } else if (S_ISREG(st.st_mode)) {
      if (!in_quarantine && g_str_has_suffix(name, ".json"))
        n++;
    } else {
      fail_msg("store: %s is neither a file nor a directory", child);
    }
  }
  g_dir_close(d);
  return n;
}

guint
fu_check_store_tree(const char *store, const char *const *allowed_symlinks)
{
  return fu_walk(store, "", allowed_symlinks, FALSE);
}

guint
fu_count_tmp_files(const char *dir)
{
  guint n = 0;
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return 0;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *child = g_build_filename(dir, name, NULL);
    struct stat st;
    if (lstat(child, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode))
      n += fu_count_tmp_files(child);
    else if (g_str_has_prefix(name, ".tmp-"))
      n++;
  }
  g_dir_close(d);
  return n;
}

guint
fu_check_index(const char *store)
{
  g_autofree char *path = g_build_filename(store, ".index", NULL);
  gsize len = 0;
  g_autofree char *data = tu_read_file(path, &len);
  if (data == NULL)
    return 0;
  if (len > 0 && data[len - 1] != '\n')
    fail_msg(".index does not end with a newline (torn line)");
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
  guint n = 0;
  for (guint i = 0; lines[i] != NULL; i++) {
    if (lines[i][0] == '\0')
      continue;
    if (strlen(lines[i]) != 32)
      fail_msg(".index line %u is not a 32-hex key: '%s'", i + 1, lines[i]);
    for (const char *p = lines[i]; *p; p++)
      if (!g_ascii_isxdigit(*p))
        fail_msg(".index line %u is not hex: '%s'", i + 1, lines[i]);
    if (!g_hash_table_add(seen, g_strdup(lines[i])))
      fail_msg(".index: key %s appears twice", lines[i]);
    n++;
  }
  return n;
}

/* Split an RFC 4180 text into records of fields. */
static GPtrArray *
fu_csv_parse(const char *data, gsize len, GPtrArray *raw_records)
{
  GPtrArray *records = g_ptr_array_new_with_free_func((GDestroyNotify) g_ptr_array_unref);
  GPtrArray *fields = g_ptr_array_new_with_free_func(g_free);
  GString *field = g_string_new(NULL);
  gboolean quoted = FALSE, was_quoted = FALSE;
  gsize rec_start = 0;
  for (gsize i = 0; i < len; i++) {
    char c = data[i];
    if (quoted) {
      if (c == '"' && i + 1 < len && data[i + 1] == '"') {
        g_string_append_c(field, '"');
        i++;
      } else if (c == '"') {
        quoted = FALSE;
      } else {
        g_string_append_c(field, c);
      }
      continue;
    }
    if (c == '"') {
      if (field->len != 0 || was_quoted)
        fail_msg("csv: stray quote at byte %zu", i);
      quoted = was_quoted = TRUE;
    } else if (c == ',') {
      g_ptr_array_add(fields, g_string_free(field, FALSE));
      field = g_string_new(NULL);
      was_quoted = FALSE;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r') {
        if (i + 1 >= len || data[i + 1] != '\n')
          fail_msg("csv: bare CR at byte %zu", i);
        i++;
      }
      g_ptr_array_add(fields, g_string_free(field, FALSE));
      field = g_string_new(NULL);
      was_quoted = FALSE;
      g_ptr_array_add(records, fields);
      g_ptr_array_add(raw_records, g_strndup(data + rec_start, i + 1 - rec_start));
      rec_start = i + 1;
      fields = g_ptr_array_new_with_free_func(g_free);
    } else {
      if (was_quoted)
        fail_msg("csv: text after a closing quote at byte %zu", i);
      g_string_append_c(field, c);
    }
  }
  if (quoted || field->len > 0 || fields->len > 0)
    fail_msg("csv: last record is not terminated (torn row)");
  g_string_free(field, TRUE);
  g_ptr_array_unref(fields);
  return records;
}

guint
fu_check_csv(const char *csv, GHashTable *policy_ids)
{
  gsize len = 0;
  g_autofree char *data = tu_read_file(csv, &len);
  if (data == NULL || len == 0)
    return 0;
  g_autoptr(GPtrArray) raw = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) records = fu_csv_parse(data, len, raw);
  assert_true(records->len >= 1);
  GPtrArray *header = records->pdata[0];
  int col_type = -1, col_id = -1;
  for (guint i = 0; i < header->len; i++) {
    if (strcmp(header->pdata[i], "row_type") == 0)
      col_type = (int) i;
    if (strcmp(header->pdata[i], "report_id") == 0)
      col_id = (int) i;
  }
  if (col_type < 0 || col_id < 0)
    fail_msg("csv: header has no row_type / report_id: %s", (char *) raw->pdata[0]);
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint r = 1; r < records->len; r++) {
    GPtrArray *f = records->pdata[r];
    if (f->len != header->len)
      fail_msg("csv: record %u has %u fields, the header %u: %s", r + 1, f->len, header->len,
               (char *) raw->pdata[r]);
    if (strcmp(f->pdata[0], header->pdata[0]) == 0)
      fail_msg("csv: header repeated at record %u", r + 1);
    if (!g_hash_table_add(seen, raw->pdata[r]))
      fail_msg("csv: record %u appears twice: %s", r + 1, (char *) raw->pdata[r]);
    if (policy_ids != NULL && strcmp(f->pdata[col_type], "policy") == 0) {
      const char *id = f->pdata[col_id];
      guint c = GPOINTER_TO_UINT(g_hash_table_lookup(policy_ids, id));
      g_hash_table_insert(policy_ids, g_strdup(id), GUINT_TO_POINTER(c + 1));
    }
  }
  return records->len - 1;
}

guint
fu_count_in_dir(const char *dir, const char *suffix)
{
  guint n = 0;
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return 0;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL)
    if (suffix == NULL || g_str_has_suffix(name, suffix))
      n++;
  g_dir_close(d);
  return n;
}

/* No ".tmp-*" file a reader could take for data: none may remain named like data. */
static void
fu_tmp_walk(const char *dir, GPtrArray *found)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *child = g_build_filename(dir, name, NULL);
    struct stat st;
    if (lstat(child, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode))
      fu_tmp_walk(child, found);
    else if (g_str_has_prefix(name, ".tmp-"))
      g_ptr_array_add(found, g_steal_pointer(&child));
  }
  g_dir_close(d);
}

GPtrArray *
fu_list_tmp_files(const char *dir)
{
  GPtrArray *found = g_ptr_array_new_with_free_func(g_free);
  fu_tmp_walk(dir, found);
  return found;
}

void
fu_check_tmp_files(const char *store)
{
  static const char *const data_ext[] = { ".json", ".json.gz", ".gz", ".zip", ".csv",
                                          ".jsonl", ".eml", ".reason", NULL };
  g_autoptr(GPtrArray) tmp = fu_list_tmp_files(store);
  if (tmp->len > 0)
    print_message("%u .tmp-* files remain (ignored by name), e.g. %s\n", tmp->len,
                  (char *) tmp->pdata[0]);
  for (guint i = 0; i < tmp->len; i++)
    for (guint k = 0; data_ext[k] != NULL; k++)
      if (g_str_has_suffix(tmp->pdata[i], data_ext[k]))
        fail_msg("a temporary file is named like data: %s", (char *) tmp->pdata[i]);
}

/* Keys of the normalized reports of the tree: "<org>!<id>!<key>.json". */
static void
fu_tree_keys(const char *dir, gboolean top, GHashTable *keys)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    if (top && (name[0] == '.' || strcmp(name, "quarantine") == 0))
      continue;
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
      fu_tree_keys(path, FALSE, keys);
      continue;
    }
    const char *bang = strrchr(name, '!');
    if (!top && bang != NULL && g_str_has_suffix(name, ".json") && strlen(bang + 1) == 37)
      g_hash_table_add(keys, g_strndup(bang + 1, 32));
  }
}

guint
fu_check_sql_index(const char *store)
{
  g_autofree char *path = g_build_filename(store, "reports.sqlite", NULL);
  if (!g_file_test(path, G_FILE_TEST_EXISTS))
    fail_msg("%s: no SQL index", path);
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    fail_msg("%s: %s", path, sqlite3_errmsg(db));
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT report_key, (SELECT COUNT(*) FROM policy p WHERE "
                             "p.report_rowid = r.report_rowid) FROM report r",
                         -1, &st, NULL) != SQLITE_OK)
    fail_msg("%s: %s", path, sqlite3_errmsg(db));
  g_autoptr(GHashTable) sql = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *key = (const char *) sqlite3_column_text(st, 0);
    if (!g_hash_table_add(sql, g_strdup(key)))
      fail_msg("SQL index: report %s twice", key);
    if (sqlite3_column_int64(st, 1) != 1)
      fail_msg("SQL index: report %s has %d policy rows, not 1", key,
               (int) sqlite3_column_int64(st, 1));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  /* The same keys as the tree and the dedup index. */
  g_autoptr(GHashTable) tree = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  fu_tree_keys(store, TRUE, tree);
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init(&it, tree);
  while (g_hash_table_iter_next(&it, &k, NULL))
    if (!g_hash_table_contains(sql, k))
      fail_msg("report %s is in the tree, not in the SQL index", (char *) k);
  g_hash_table_iter_init(&it, sql);
  while (g_hash_table_iter_next(&it, &k, NULL))
    if (!g_hash_table_contains(tree, k))
      fail_msg("report %s is in the SQL index, not in the tree", (char *) k);
  g_autofree char *ipath = g_build_filename(store, ".index", NULL);
  g_autofree char *idx = tu_read_file(ipath, NULL);
  g_auto(GStrv) lines = g_strsplit(idx != NULL ? idx : "", "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0' && !g_hash_table_contains(sql, lines[i]))
      fail_msg("report %s is in .index, not in the SQL index", lines[i]);
  return g_hash_table_size(sql);
}

void
fu_check_exactly_once(const char *store, const char *csv, guint expected)
{
  assert_int_equal(fu_check_sql_index(store), expected);
  assert_int_equal(fu_check_store_tree(store, NULL), expected);
  assert_int_equal(fu_check_index(store), expected);
  g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  assert_int_equal(fu_check_csv(csv, ids), expected);
  assert_int_equal(g_hash_table_size(ids), expected);
  for (guint i = 0; i < expected; i++) {
    g_autofree char *id = g_strdup_printf("gen-%05u", i);
    guint c = GPOINTER_TO_UINT(g_hash_table_lookup(ids, id));
    if (c != 1)
      fail_msg("report %s has %u policy rows in the CSV, not 1", id, c);
  }
  g_autofree char *q = g_build_filename(store, "quarantine", NULL);
  assert_int_equal(fu_count_in_dir(q, NULL), 0);
  g_autofree char *journal = g_build_filename(store, ".journal", NULL);
  struct stat st;
  if (stat(journal, &st) == 0)
    assert_int_equal(st.st_size, 0);
  fu_check_tmp_files(store);
}

gboolean
fu_mount_tmpfs(const char *dir, guint size_kib)
{
  g_mkdir_with_parents(dir, 0755);
  g_autofree char *opts = g_strdup_printf("size=%uk,mode=0755", size_kib);
  return mount("tmpfs", dir, "tmpfs", 0, opts) == 0;
}

gboolean
fu_can_mount(void)
{
  g_autofree char *d = tu_mkdtemp();
  gboolean ok = fu_mount_tmpfs(d, 64);
  if (ok)
    umount(d);
  g_rmdir(d);
  return ok;
}

gboolean
fu_remount(const char *dir, gboolean read_only, guint size_kib)
{
  unsigned long flags = MS_REMOUNT | (read_only ? MS_RDONLY : 0);
  g_autofree char *opts = size_kib ? g_strdup_printf("size=%uk", size_kib) : NULL;
  return mount("tmpfs", dir, "tmpfs", flags, opts) == 0;
}

void
fu_umount(const char *dir)
{
  umount2(dir, MNT_DETACH);
}

guint
fu_count_lines_with(const char *text, const char *needle)
{
  guint n = 0;
  g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr(lines[i], needle) != NULL)
      n++;
  return n;
}

/* The report number of a Maildir message name made by fu_make_maildir(). */
guint
fu_message_number(const char *name)
{
  return (guint) g_ascii_strtoull(strchr(name, 'M') + 1, NULL, 10);
}

/* Every message in @acked (cur/ of the Maildir, or the --move-to folder's cur/ and new/)
 * has its report in the CSV; every message still in @md/new/ is there byte for byte;
 * together they are @total. Returns the number acknowledged. */
guint
fu_check_acknowledged_only_stored(const char *md, const char *const *acked,
                                  const char *csv, guint total)
{
  g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  if (g_file_test(csv, G_FILE_TEST_EXISTS))
    fu_check_csv(csv, ids);
  guint seen = 0, untouched = 0;
  const char *name;
  for (guint k = 0; acked[k] != NULL; k++) {
    GDir *d = g_dir_open(acked[k], 0, NULL);
    if (d == NULL)
      continue;
    while ((name = g_dir_read_name(d)) != NULL) {
      g_autofree char *id = g_strdup_printf("gen-%05u", fu_message_number(name));
      if (!g_hash_table_contains(ids, id))
        fail_msg("%s/%s is acknowledged but report %s is not stored", acked[k], name, id);
      seen++;
    }
    g_dir_close(d);
  }
  g_autofree char *new_dir = g_build_filename(md, "new", NULL);
  GDir *d = g_dir_open(new_dir, 0, NULL);
  assert_non_null(d);
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *p = g_build_filename(new_dir, name, NULL);
    gsize len = 0;
    g_autofree char *data = tu_read_file(p, &len);
    g_autoptr(GBytes) orig = fu_generated_message(fu_message_number(name));
    assert_int_equal(len, g_bytes_get_size(orig));
    assert_memory_equal(data, g_bytes_get_data(orig, NULL), len);
    untouched++;
  }
  g_dir_close(d);
  assert_int_equal(seen + untouched, total);
  return seen;
}
