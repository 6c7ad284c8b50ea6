/* source-mbox.c - messages of mbox files ("-" = standard input), read as a stream:
 * memory stays flat however many messages a file holds. The mbox is only read, never
 * changed, so commit() has nothing to do.
 *
 * Where a message starts (the From_ line itself is not part of the message):
 *   - a line beginning "From " followed by a word (the envelope sender) at the start of
 *     the file or after an empty line; the empty line belongs to the separator;
 *   - a line beginning "From " after a non-empty line only when the rest is a real
 *     From_ line, "From SENDER Www Mmm dd hh:mm...", as some writers forget the empty
 *     line. Any other "From " line stays in the message.
 * Lines "From " quoted with one or more '>' (mboxrd, and mboxo's single '>') lose one
 * '>'. Content-Length headers are ignored. Text before the first From_ line is taken
 * as a message when it is not blank and begins like one (a header field); a file
 * whose first non-blank line is neither a From_ line nor a header field is not an
 * mbox (an error, before anything is read when it is a regular file). LF and CRLF
 * files both work; line ends are kept
 * as they are. A message over --max-message-size is skipped to the next From_ line and
 * returned without data, with skip_reason set. */
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOURCE_MBOX_BUFSIZE (256 * 1024)

typedef struct {
  gsize max_size;
  char **paths;
  guint next_path;

  /* the file being read */
  int fd;                 /* -1 between files */
  char *label;            /* origin prefix: the path, or "stdin" */
  guint msgno;
  gboolean file_start;    /* nothing read from this file yet */
  gboolean started;       /* a From_ line opened the message being read */
  gboolean prev_empty;    /* the last complete line was empty */
  gboolean line_start;    /* the next piece begins a line */
  gboolean in_from_line;  /* the rest of an overlong From_ line is still to skip */
  gboolean eof;

  guint8 *buf;
  gsize start, end;
} SourceMbox;

static gboolean
source_mbox_fill(SourceMbox *self, GError **error)
{
  if (self->start > 0 && self->start == self->end)
    self->start = self->end = 0;
  if (self->start > 0 && SOURCE_MBOX_BUFSIZE - self->end < SOURCE_MBOX_BUFSIZE / 4) {
    memmove(self->buf, self->buf + self->start, self->end - self->start);
    self->end -= self->start;
    self->start = 0;
  }
  for (;;) {
    ssize_t n = read(self->fd, self->buf + self->end, SOURCE_MBOX_BUFSIZE - self->end);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "%s: read: %s", self->label,
                  g_strerror(errno));
      return FALSE;
    }
    if (n == 0)
      self->eof = TRUE;
    self->end += (gsize) n;
    return TRUE;
  }
}

/* The next piece of the file: a whole line with its '\n', or a full buffer of a line
 * longer than the buffer, or what is left at the end of the file. Returns 1 with a
 * piece, 0 at the end of the file, -1 on a read error. */
static int
source_mbox_piece(SourceMbox *self, const guint8 **piece, gsize *len, gboolean *complete,
                  GError **error)
{
  gsize scanned = self->start;
  for (;;) {
    const guint8 *nl = NULL;
    if (self->end > scanned)
      nl = memchr(self->buf + scanned, '\n', self->end - scanned);
    if (nl != NULL) {
      *piece = self->buf + self->start;
      *len = (gsize) (nl + 1 - *piece);
      *complete = TRUE;
      self->start += *len;
      return 1;
    }
    gsize have = self->end - self->start;
    if (self->eof || (have == SOURCE_MBOX_BUFSIZE)) {
      if (have == 0)
        return 0;
      *piece = self->buf + self->start;
      *len = have;
      *complete = self->eof;
      self->start = self->end;
      return 1;
    }
    scanned = self->end;
    gsize old_start = self->start;
    if (!source_mbox_fill(self, error))
      return -1;
    scanned -= old_start - self->start;
  }
}

static gboolean
source_mbox_is_empty_line(const guint8 *p, gsize len)
{
  return (len == 1 && p[0] == '\n') || (len == 2 && p[0] == '\r' && p[1] == '\n');
}

static gboolean
source_mbox_word(const char *p, const char *const *words)
{
  for (guint i = 0; words[i] != NULL; i++)
    if (strncmp(p, words[i], 3) == 0)
      return TRUE;
  return FALSE;
}

/* "From SENDER Www Mmm dd hh:mm": the start of an asctime date after the sender. */
static gboolean
source_mbox_is_strict_from(const guint8 *p, gsize len)
{
  static const char *const days[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
                                      NULL };
  static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                        "Aug", "Sep", "Oct", "Nov", "Dec", NULL };
  char line[128];
  gsize n = MIN(len, sizeof line - 1);
  memcpy(line, p, n);
  line[n] = '\0';
  const char *s = line + 5;
  if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == '\0')
    return FALSE;
  while (*s != '\0' && *s != ' ' && *s != '\t')
    s++;
  while (*s == ' ' || *s == '\t')
    s++;
  if (!source_mbox_word(s, days) || s[3] != ' ')
    return FALSE;
  s += 4;
  if (!source_mbox_word(s, months) || s[3] != ' ')
    return FALSE;
  s += 4;
  while (*s == ' ')
    s++;
  if (!g_ascii_isdigit(s[0]))
    return FALSE;
  s += g_ascii_isdigit(s[1]) ? 2 : 1;
  if (*s != ' ')
    return FALSE;
  while (*s == ' ')
    s++;
  return g_ascii_isdigit(s[0]) && g_ascii_isdigit(s[1]) && s[2] == ':' &&
         g_ascii_isdigit(s[3]) && g_ascii_isdigit(s[4]);
}

/* Does this line (at a line start) open a new message? */
static gboolean
source_mbox_is_separator(const SourceMbox *self, const guint8 *p, gsize len)
{
  if (len < 6 || memcmp(p, "From ", 5) != 0)
    return FALSE;
  if (self->file_start || self->prev_empty)
    return p[5] != ' ' && p[5] != '\t' && p[5] != '\r' && p[5] != '\n';
  return source_mbox_is_strict_from(p, len);
}

static void
source_mbox_close_file(SourceMbox *self)
{
  if (self->fd > STDIN_FILENO)
    close(self->fd);
  self->fd = -1;
  g_clear_pointer(&self->label, g_free);
}

/* Open the next file; FALSE with no error when there is none left. */
static gboolean
source_mbox_open_file(SourceMbox *self, GError **error)
{
  const char *path = self->paths[self->next_path];
  if (path == NULL)
    return FALSE;
  self->next_path++;
  if (strcmp(path, "-") == 0) {
    self->fd = STDIN_FILENO;
    self->label = g_strdup("stdin");
  } else {
    int fd;
    do
      fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      int errsv = errno;
      g_set_error(error, SOURCE_ERROR,
                  errsv == ENOENT ? SOURCE_ERROR_NOT_FOUND : SOURCE_ERROR_IO,
                  "%s: %s", path, g_strerror(errsv));
      return FALSE;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    self->fd = fd;
    self->label = g_strdup(path);
  }
  self->msgno = 0;
  self->file_start = TRUE;
  self->started = FALSE;
  self->prev_empty = FALSE;
  self->line_start = TRUE;
  self->in_from_line = FALSE;
  self->eof = FALSE;
  self->start = self->end = 0;
  return TRUE;
}

static gboolean
source_mbox_is_blank(const guint8 *p, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isspace(p[i]))
      return FALSE;
  return TRUE;
}

static void
source_mbox_not_mbox(GError **error, const char *label)
{
  g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
              "not an mbox file: %s: it begins with neither a \"From \" line nor a "
              "header field", label);
}

/* Does the regular file @path begin (after blank lines) like an mbox or a message? TRUE too
 * when it cannot tell (unreadable, empty, blank): reading it says more. */
static gboolean
source_mbox_starts_right(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return TRUE;
  char buf[4096];
  ssize_t n;
  do
    n = read(fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  close(fd);
  gsize i = 0;
  while (n > 0 && i < (gsize) n && g_ascii_isspace(buf[i]))
    i++;
  if (n <= 0 || i == (gsize) n)
    return TRUE;
  /* Back to the start of the first non-blank line. */
  while (i > 0 && buf[i - 1] != '\n')
    i--;
  return source_starts_like_message((const guint8 *) buf + i, (gsize) n - i);
}

/* Read one message of the current file. Returns 1 with *msg, 0 at the end of the
 * file, -1 on error. */
static int
source_mbox_read_message(SourceMbox *self, SourceMessage **msg, GError **error)
{
  g_autoptr(GByteArray) data = g_byte_array_new();
  gsize size = 0;             /* bytes of the message, also while skipping */
  gsize last_line_len = 0;    /* bytes the last complete line added */
  gboolean skipping = FALSE;  /* over the size cap: counting, not keeping */
  gboolean have_message = self->started;
  gboolean ended = FALSE;

  for (;;) {
    const guint8 *p;
    gsize len;
    gboolean complete;
    int r = source_mbox_piece(self, &p, &len, &complete, error);
    if (r < 0)
      return -1;
    if (r == 0)
      break;
    gboolean at_line_start = self->line_start;
    self->line_start = complete;

    if (self->in_from_line) {   /* the rest of an overlong From_ line */
      self->in_from_line = !complete;
      continue;
    }
    if (at_line_start && source_mbox_is_separator(self, p, len)) {
      self->file_start = FALSE;
      self->in_from_line = !complete;
      if (have_message || skipping || !source_mbox_is_blank(data->data, data->len)) {
        /* The empty line before a From_ line belongs to the separator. */
        if (self->prev_empty && !skipping && data->len >= last_line_len) {
          g_byte_array_set_size(data, data->len - (guint) last_line_len);
          size -= last_line_len;
        }
        self->started = TRUE;
        self->prev_empty = FALSE;
        ended = TRUE;
        break;
      }
      /* The first From_ line of the file (or after blank text): open the message. */
      have_message = TRUE;
      g_byte_array_set_size(data, 0);
      size = 0;
      self->prev_empty = FALSE;
      continue;
    }
    if (!have_message && at_line_start && !source_mbox_is_blank(p, len) &&
        source_mbox_is_blank(data->data, data->len) && !source_starts_like_message(p, len)) {
      source_mbox_not_mbox(error, self->label);
      return -1;
    }
    self->file_start = FALSE;

    /* mboxrd: ">From ", ">>From " ... lose one '>'. */
    if (at_line_start && len > 0 && p[0] == '>') {
      gsize q = 1;
      while (q < len && p[q] == '>')
        q++;
      if (len - q >= 5 && memcmp(p + q, "From ", 5) == 0) {
        p++;
        len--;
      }
    }

    size += len;
    /* An empty line may turn out to be the separator's: it alone does not trip the
     * cap, the next line does. */
    gboolean empty_line = complete && at_line_start && source_mbox_is_empty_line(p, len);
    if (!skipping && size > self->max_size && !(empty_line && size - len <= self->max_size)) {
      skipping = TRUE;
      g_byte_array_set_size(data, 0);
    }
    if (!skipping)
      g_byte_array_append(data, p, (guint) len);
    if (at_line_start)
      last_line_len = len;
    else
      last_line_len += len;
    if (complete)
      self->prev_empty = empty_line;
  }

  if (!ended) {
    /* End of file: drop the customary empty line after the last message. */
    if (self->prev_empty && !skipping && data->len >= last_line_len) {
      g_byte_array_set_size(data, data->len - (guint) last_line_len);
      size -= last_line_len;
    }
    self->started = FALSE;
    if (!have_message && !skipping && source_mbox_is_blank(data->data, data->len))
      return 0;
  }

  self->msgno++;
  SourceMessage *m = g_new0(SourceMessage, 1);
  m->origin = g_strdup_printf("%s#%u", self->label, self->msgno);
  m->received = g_get_real_time() / G_USEC_PER_SEC;
  if (skipping)
    m->skip_reason = g_strdup_printf("message exceeds --max-message-size (over %"
                                     G_GSIZE_FORMAT " bytes)", self->max_size);
  else
    m->data = g_byte_array_free_to_bytes(g_steal_pointer(&data));
  *msg = m;
  return 1;
}

static void source_mbox_close(gpointer self_);

static gpointer
source_mbox_open(const SourceConfig *opts, char **args, GError **error)
{
  g_assert(args != NULL);
  for (guint i = 0; args[i] != NULL; i++) {
    if (strcmp(args[i], "-") == 0)
      continue;
    struct stat st;
    if (stat(args[i], &st) != 0) {
      int errsv = errno;
      if (errsv == ENOENT || errsv == ENOTDIR)
        g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND, "no such file: %s",
                    args[i]);
      else
        g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "%s: %s", args[i],
                    g_strerror(errsv));
      return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                  "not an mbox file but a directory: %s", args[i]);
      return NULL;
    }
    if (S_ISREG(st.st_mode) && !source_mbox_starts_right(args[i])) {
      source_mbox_not_mbox(error, args[i]);
      return NULL;
    }
  }
  SourceMbox *self = g_new0(SourceMbox, 1);
  /* A GByteArray holds at most G_MAXUINT bytes (and a message may briefly hold its
   * separator's empty line on top of the cap). */
  self->max_size = MIN(opts->max_message_size, (gsize) G_MAXUINT - 16);
  self->paths = g_strdupv(args);
  self->fd = -1;
  self->buf = g_malloc(SOURCE_MBOX_BUFSIZE);
  return self;
}

static gboolean
source_mbox_next(gpointer self_, SourceMessage **msg, GError **error)
{
  SourceMbox *self = self_;
  *msg = NULL;
  for (;;) {
    /* FALSE: no file left (no error) or it could not be opened (error set). */
    if (self->fd < 0 && !source_mbox_open_file(self, error))
      return FALSE;
    int r = source_mbox_read_message(self, msg, error);
    if (r < 0)
      return FALSE;
    if (r > 0)
      return TRUE;
    source_mbox_close_file(self);
  }
}

static gboolean
source_mbox_commit(gpointer self, SourceMessage *msg, SourceOutcome outcome, GError **error)
{
  return TRUE;
}

static void
source_mbox_close(gpointer self_)
{
  SourceMbox *self = self_;
  if (self == NULL)
    return;
  source_mbox_close_file(self);
  g_strfreev(self->paths);
  g_free(self->buf);
  g_free(self);
}

const SourceOps source_mbox_ops = {
  "mbox", source_mbox_open, source_mbox_next, source_mbox_commit, source_mbox_close, NULL,
  NULL,
};
