/* source-imap-auth.c - the IMAP source's credentials: secret files, the token command
 * and the token check (source-imap-auth.h). */
#include "source-imap-auth.h"

#include "escape.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SOURCE_IMAP_AUTH_STDERR_KEPT 1000u   /* bytes of the command's error output shown */
#define SOURCE_IMAP_AUTH_KILL_GRACE_MS 1000  /* SIGTERM to SIGKILL */

void
source_imap_auth_free(char *secret)
{
  if (secret == NULL)
    return;
  explicit_bzero(secret, strlen(secret));
  g_free(secret);
}

/* ---- the token's shape --------------------------------------------------------- */

char *
source_imap_auth_parse_token(const char *data, gsize len, const char *what, GError **error)
{
  const char *lf = data != NULL ? memchr(data, '\n', len) : NULL;
  gsize n = lf != NULL ? (gsize) (lf - data) : len;
  if (n > 0 && data[n - 1] == '\r')
    n--;
  if (n == 0) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH,
                "%s gave no token (its first line is empty)", what);
    return NULL;
  }
  if (n > SOURCE_IMAP_AUTH_MAX_SECRET) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH,
                "%s gave a first line of %" G_GSIZE_FORMAT " bytes: more than the %u a "
                "token may have", what, n, SOURCE_IMAP_AUTH_MAX_SECRET);
    return NULL;
  }
  for (gsize i = 0; i < n; i++) {
    guchar c = (guchar) data[i];
    if (c < 0x21 || c > 0x7e) {
      /* Never quoted: it may be most of a token. */
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH,
                  "%s gave a first line that is not an access token (byte %" G_GSIZE_FORMAT
                  " of %" G_GSIZE_FORMAT " is a space, a control character or not ASCII)",
                  what, i + 1, n);
      return NULL;
    }
  }
  return g_strndup(data, n);
}

/* ---- files -------------------------------------------------------------------- */

char *
source_imap_auth_read_file(const char *path, const char *what, GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH, "%s %s: %s", what, path,
                g_strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH, "%s %s: not a regular file", what,
                path);
    return NULL;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    close(fd);
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH,
                "%s %s is readable by group or others (chmod 600 %s)", what, path, path);
    return NULL;
  }
  /* One byte more than a secret may have, to tell a long one from one that fits. */
  gsize cap = SOURCE_IMAP_AUTH_MAX_SECRET + 2;
  char *buf = g_malloc(cap + 1);
  gsize len = 0;
  int errsv = 0;
  while (len < cap) {
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      errsv = errno;
      break;
    }
    if (n == 0)
      break;
    len += (gsize) n;
  }
  close(fd);
  buf[len] = '\0';
  char *secret = NULL;
  if (errsv != 0) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH, "%s %s: %s", what, path,
                g_strerror(errsv));
  } else {
    /* The first line is the secret; a trailing newline (CRLF too) is not part of it. */
    gsize n = strcspn(buf, "\r\n");
    if (n == 0)
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH, "%s %s is empty", what, path);
    else if (n > SOURCE_IMAP_AUTH_MAX_SECRET)
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH,
                  "%s %s: the first line is longer than %u bytes", what, path,
                  SOURCE_IMAP_AUTH_MAX_SECRET);
    else
      secret = g_strndup(buf, n);
  }
  explicit_bzero(buf, cap + 1);
  g_free(buf);
  return secret;
}

char *
source_imap_auth_read_token_file(const char *path, GError **error)
{
  char *line = source_imap_auth_read_file(path, "token file", error);
  if (line == NULL)
    return NULL;
  g_autofree char *what = g_strdup_printf("token file %s", path);
  char *token = source_imap_auth_parse_token(line, strlen(line), what, error);
  source_imap_auth_free(line);
  return token;
}

/* ---- the token command --------------------------------------------------------- */

/* In the child, before exec: a process group of its own (so that a timeout reaches
 * whatever it started), and the signal dispositions we changed put back. */
static void
source_imap_auth_child_setup(gpointer data)
{
  (void) data;
  setpgid(0, 0);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGXFSZ, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Append what @fd has now to @out (at most @cap bytes kept; the rest is read and
 * dropped). FALSE at the end of the file or on an error. */
static gboolean
source_imap_auth_drain(int fd, GByteArray *out, gsize cap, gboolean *overflow)
{
  for (;;) {
    guint8 chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0)
      return FALSE;
    gsize keep = out->len < cap ? MIN((gsize) n, cap - out->len) : 0;
    if (keep < (gsize) n && overflow != NULL)
      *overflow = TRUE;
    g_byte_array_append(out, chunk, (guint) keep);
    explicit_bzero(chunk, sizeof chunk);
  }
}

/* ": its error output: '...'" for a message, or "" when there was none. */
static char *
source_imap_auth_stderr_note(GByteArray *err)
{
  g_autofree char *text = g_strndup(err->len > 0 ? (const char *) err->data : "", err->len);
  g_strstrip(text);
  if (text[0] == '\0')
    return g_strdup(" (no error output)");
  g_autofree char *shown = tr_escape_terminal(text);
  return g_strdup_printf(": %s", shown);
}

/* Wait for @pid until @deadline (monotonic µs); TRUE with *status when it ended. */
static gboolean
source_imap_auth_wait(GPid pid, gint64 deadline, int *status)
{
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid)
      return TRUE;
    if (r < 0 && errno != EINTR)
      return TRUE;   /* not ours to wait for any more: nothing else to do */
    if (g_get_monotonic_time() >= deadline)
      return FALSE;
    g_usleep(5 * 1000);
  }
}

char *
source_imap_auth_run_command(const char *command, guint timeout_s, gint64 *elapsed_ms,
                             GError **error)
{
  const char *what = "--oauth2-token-command";
  if (timeout_s == 0)
    timeout_s = SOURCE_IMAP_AUTH_DEFAULT_TIMEOUT;
  const char *argv[] = { "/bin/sh", "-c", command, NULL };
  GPid pid = 0;
  int out_fd = -1, err_fd = -1;
  g_autoptr(GError) local = NULL;
  gint64 start = g_get_monotonic_time();
  if (!g_spawn_async_with_pipes(NULL, (char **) argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDIN_FROM_DEV_NULL,
                                source_imap_auth_child_setup, NULL, &pid, NULL, &out_fd,
                                &err_fd, &local)) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH, "%s: cannot start /bin/sh: %s", what,
                local->message);
    return NULL;
  }
  /* Also from here: a kill right away must reach the group even if the child has not
   * run setpgid() yet. */
  setpgid(pid, pid);
  fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
  fcntl(err_fd, F_SETFL, fcntl(err_fd, F_GETFL) | O_NONBLOCK);

  gint64 deadline = start + (gint64) timeout_s * G_USEC_PER_SEC;
  g_autoptr(GByteArray) out = g_byte_array_new();
  g_autoptr(GByteArray) err = g_byte_array_new();
  gboolean out_open = TRUE, err_open = TRUE, exited = FALSE;
  gboolean out_overflow = FALSE;
  int status = 0;
  while (!exited && (out_open || err_open)) {
    gint64 now = g_get_monotonic_time();
    if (now >= deadline)
      break;
    struct pollfd pfd[2];
    nfds_t nfds = 0;
    if (out_open)
      pfd[nfds++] = (struct pollfd) { .fd = out_fd, .events = POLLIN };
    if (err_open)
      pfd[nfds++] = (struct pollfd) { .fd = err_fd, .events = POLLIN };
    /* Short waits: the command may exit while something it started in the background
     * keeps the pipes open. */
    int wait_ms = (int) MIN((deadline - now + 999) / 1000, 50);
    if (poll(pfd, nfds, wait_ms) < 0 && errno != EINTR)
      break;
    if (out_open)
      out_open = source_imap_auth_drain(out_fd, out, SOURCE_IMAP_AUTH_MAX_SECRET + 2,
                                        &out_overflow);
    if (err_open)
      err_open = source_imap_auth_drain(err_fd, err, SOURCE_IMAP_AUTH_STDERR_KEPT, NULL);
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      exited = TRUE;
      /* What it wrote before it ended. */
      if (out_open)
        source_imap_auth_drain(out_fd, out, SOURCE_IMAP_AUTH_MAX_SECRET + 2, &out_overflow);
      if (err_open)
        source_imap_auth_drain(err_fd, err, SOURCE_IMAP_AUTH_STDERR_KEPT, NULL);
    }
  }
  close(out_fd);
  close(err_fd);
  /* Both pipes at their end: the command is ending, or closed them and goes on. */
  if (!exited && !out_open && !err_open)
    exited = source_imap_auth_wait(pid, deadline, &status);
  if (!exited) {
    /* The deadline (or a poll failure): the whole group goes. */
    kill(-pid, SIGTERM);
    if (!source_imap_auth_wait(pid, g_get_monotonic_time() +
                                        SOURCE_IMAP_AUTH_KILL_GRACE_MS * 1000, &status)) {
      kill(-pid, SIGKILL);
      source_imap_auth_wait(pid, G_MAXINT64, &status);
    } else {
      kill(-pid, SIGKILL);   /* what it started and left behind */
    }
  }
  g_spawn_close_pid(pid);
  if (elapsed_ms != NULL)
    *elapsed_ms = (g_get_monotonic_time() - start) / 1000;

  char *token = NULL;
  g_autofree char *note = source_imap_auth_stderr_note(err);
  if (!exited) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH,
                "%s did not finish within %u s (--oauth2-token-timeout) and was killed%s",
                what, timeout_s, note);
  } else if (WIFSIGNALED(status)) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH, "%s was killed by signal %d%s", what,
                WTERMSIG(status), note);
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH, "%s failed with exit status %d%s",
                what, WEXITSTATUS(status), note);
  } else {
    g_autoptr(GError) bad = NULL;
    token = source_imap_auth_parse_token((const char *) out->data, out->len, what, &bad);
    if (token == NULL)
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH, "%s%s", bad->message,
                  err->len > 0 ? note : "");
  }
  if (out->len > 0)
    explicit_bzero(out->data, out->len);
  return token;
}
