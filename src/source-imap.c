/* source-imap.c - IMAP source: poll one mailbox, fetch each new message exactly once.
 *
 * libcurl makes the connection: TCP, implicit TLS (imaps://) or STARTTLS (imap://,
 * CURLOPT_USE_SSL), certificate checks, SASL/LOGIN authentication and ~/.netrc. It is
 * used with CURLOPT_CONNECT_ONLY, and the few commands after the login are spoken here
 * over curl_easy_send()/curl_easy_recv(), because libcurl's own IMAP transfers do not
 * fit exactly-once ingestion:
 *   - a ";UID=n" URL fetch sends "UID FETCH n BODY[]", which sets \Seen as a side
 *     effect: a crash before the message is stored would lose it for UNSEEN searches;
 *   - custom requests are read line by line, without literal framing, and lines longer
 *     than the receive buffer are clipped: a message could not be fetched byte-exact.
 * So messages are fetched with BODY.PEEK[] (never sets \Seen) and the literal is read
 * by its announced length.
 *
 * One pass (one pipeline run): SELECT the mailbox (UIDVALIDITY), UID SEARCH for new
 * messages (UNSEEN, or ALL with --all; UIDs at or below the saved last_uid are skipped
 * when the UIDVALIDITY matches), UID FETCH <set> (UID RFC822.SIZE INTERNALDATE) for all
 * of them (in chunks of SOURCE_IMAP_META_CHUNK), then the bodies a batch at a time:
 * UID FETCH <set> (UID BODY.PEEK[]) for up to --batch-size messages and
 * SOURCE_IMAP_BATCH_BYTES bytes (by RFC822.SIZE; a message over --max-message-size is
 * never fetched). The pipeline acknowledges a durable batch with commit_batch(): one
 * UID STORE <set> +FLAGS.SILENT (\Seen), or UID MOVE <set> (UID COPY + STORE \Deleted
 * + UID EXPUNGE without MOVE), per outcome, and only then is last_uid advanced in the
 * state file. UID sets use ranges ("1:500,502") and every command stays under
 * SOURCE_IMAP_SET_CHARS characters of set. next() returns FALSE at the end of a pass;
 * the next call starts a new pass on the same connection (reconnecting when it was
 * lost).
 *
 * Files in the store directory, per user@host:port/mailbox (H = 16 hex of its SHA-256):
 *   .imap-H.state   "uidvalidity N\nlast_uid N\n", replaced atomically
 *   .imap-H.lock    flock()ed for the life of the source: one poller per mailbox */
#include "source.h"
#include "source-imap-auth.h"
#include "store.h"
#include "fsutil.h"

#include "curl-dl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOURCE_IMAP_CONNECT_TIMEOUT 30L       /* seconds, TCP connect */
#define SOURCE_IMAP_LOGIN_TIMEOUT   120L      /* seconds, connect + TLS + login */
#define SOURCE_IMAP_IO_TIMEOUT_MS   (120 * 1000)  /* silence while waiting for data */
#define SOURCE_IMAP_LOGOUT_TIMEOUT_MS (5 * 1000)
#define SOURCE_IMAP_MAX_LINE        (64u * 1024 * 1024)  /* e.g. a huge SEARCH result */
#define SOURCE_IMAP_SMALL_LITERAL   (1024u * 1024)       /* literals outside BODY[] */
#define SOURCE_IMAP_REPLY_BUDGET    (128u * 1024 * 1024) /* a reply's lines + literals */
#define SOURCE_IMAP_META_CHUNK      10000u    /* UIDs per UID FETCH of sizes and dates */
#define SOURCE_IMAP_SET_CHARS       2000u     /* characters of UID set per command */
#define SOURCE_IMAP_BATCH_BYTES     (16u * 1024 * 1024)  /* bodies per FETCH, by size */
#define SOURCE_IMAP_LITERAL_SLACK   (64u * 1024)  /* BODY[] vs RFC822.SIZE, per message */

/* libcurl is loaded with dlopen() the first time an IMAP source opens (curl-dl.h). */
static gboolean
source_imap_load_curl(GError **error)
{
  const char *why = NULL;
  if (!curl_dl_load(&why)) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO,
                "imap: cannot load libcurl (Debian package libcurl4): %s", why);
    return FALSE;
  }
  return TRUE;
}

const char *
source_imap_libcurl_version(void)
{
  return curl_dl_version();
}

typedef struct {
  /* from the options (copied: the source may outlive nothing it borrows) */
  char *user;
  char *password;             /* NULL: ~/.netrc (CURLOPT_NETRC), or a token */
  char *password_origin;      /* for error messages: "password from X", "token from X" */
  char *token_command;        /* OAuth2: --oauth2-token-command, or NULL */
  char *token_file;           /* OAuth2: --oauth2-token-file, or NULL */
  guint token_timeout;        /* seconds */
  TrSasl sasl;
  char *token;                /* the access token, only while a connection logs in */
  gboolean no_mechanism;      /* the last login failed for want of a common mechanism */
  TrStarttls starttls;
  char *cacert;
  gboolean insecure;
  gboolean all;
  char *move_to_name;         /* as given (UTF-8, "/" as separator), or NULL */
  char *error_folder_name;
  char *move_to;              /* the server's name (personal namespace, mUTF-7), or NULL */
  char *error_folder;
  gsize max_message_size;

  /* from the URL */
  gboolean implicit_tls;      /* imaps:// */
  char *conn_url;             /* "imaps://host:port/" (no mailbox: libcurl only logs in) */
  char *host;
  long port;
  char *mailbox;              /* decoded UTF-8 name */
  char *mailbox_wire;         /* modified UTF-7 */
  char *origin_base;          /* "imaps://user@host:port/MAILBOX" (URL-encoded path) */

  /* state and lock */
  char *store_dir;
  char *state_name;           /* ".imap-H.state" */
  int store_fd;
  int lock_fd;
  gboolean have_state;
  guint32 state_uidvalidity;
  guint32 state_last_uid;

  /* the connection */
  CURL *curl;
  curl_socket_t sock;
  char errbuf[CURL_ERROR_SIZE];
  guint tag;
  gboolean cap_move;
  gboolean cap_uidplus;
  gboolean cap_namespace;
  gboolean selected;
  guint32 uidvalidity;        /* of the selected mailbox */
  GByteArray *rbuf;
  gsize rpos;
  int io_timeout_ms;
  gsize reply_left;           /* bytes the reply being read may still bring */
  guint commands;             /* sent after the logins of this source (for the trace) */

  /* the pass */
  gboolean in_pass;
  gboolean fresh_select;      /* the SELECT of open() still serves the first pass */
  GArray *uids;               /* guint32, ascending: what UID SEARCH found */
  GArray *meta;               /* SourceImapMeta, ascending UID: sizes and dates */
  guint pos;                  /* the next entry of meta to fetch or skip */
  GQueue ready;               /* SourceMessage*: the fetched batch, handed out in order */
  guint batch_max;            /* messages per body FETCH (--batch-size) */
  gsize batch_bytes;          /* bytes per body FETCH (by RFC822.SIZE) */

  /* tests: canned server output instead of a connection (source_imap_test_fetch_batch) */
  const guint8 *canned;
  gsize canned_len;
  gsize canned_pos;
  gsize canned_step;
  SourceEvents events;        /* what is said goes up through these (the trace, UIDVALIDITY) */
} SourceImap;

/* What RFC822.SIZE and INTERNALDATE said about one UID of the search result. */
typedef struct {
  guint32 uid;
  guint64 size;
  gint64 received;            /* epoch seconds, 0 if unknown */
  gboolean answered;          /* the server sent its size (else: expunged meanwhile) */
} SourceImapMeta;

/* What commit() needs to find the message again. */
typedef struct {
  guint32 uid;
  guint32 uidvalidity;
} SourceImapHandle;

/* One server response: the text of its lines joined, each literal replaced by its
 * "{N}" announcement, and the literals in order. */
typedef struct {
  GString *text;
  GPtrArray *literals;        /* GBytes* */
} SourceImapResponse;

typedef struct {
  GPtrArray *untagged;        /* SourceImapResponse* */
  char *status;               /* "OK", "NO", "BAD" */
  char *text;                 /* the rest of the tagged line */
} SourceImapReply;

static void
source_imap_response_free(SourceImapResponse *r)
{
  if (r == NULL)
    return;
  g_string_free(r->text, TRUE);
  g_ptr_array_unref(r->literals);
  g_free(r);
}

static void
source_imap_reply_free(SourceImapReply *r)
{
  if (r == NULL)
    return;
  g_ptr_array_unref(r->untagged);
  g_free(r->status);
  g_free(r->text);
  g_free(r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(SourceImapResponse, source_imap_response_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SourceImapReply, source_imap_reply_free)

/* ---- tracing (verbosity >= 2), with credentials redacted --------------------------- */

static void
source_imap_trace_line(SourceImap *self, const char *dir, const char *data, gsize len)
{
  while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
    len--;
  if (len > 300)
    source_event(&self->events, SOURCE_EVENT_DEBUG, NULL,
                 "imap %s %.*s ...(%" G_GSIZE_FORMAT " bytes)", dir, 300, data, len);
  else
    source_event(&self->events, SOURCE_EVENT_DEBUG, NULL, "imap %s %.*s", dir, (int) len,
                 data);
}

/* libcurl's side of the conversation: greeting, CAPABILITY, STARTTLS, the login. The
 * LOGIN / AUTHENTICATE line and every SASL continuation line carry credentials: only
 * the tag, the command and AUTHENTICATE's mechanism name are shown (the initial
 * response after it is a password or a bearer token in base64). */
static int
source_imap_curl_debug(CURL *handle, curl_infotype type, char *data, size_t size,
                       void *userp)
{
  SourceImap *self = userp;
  (void) handle;
  switch (type) {
  case CURLINFO_TEXT:
    /* Said (not put into the error buffer) when the server offers no mechanism we
     * asked for: the login error says it instead of "Login denied". */
    if (g_strstr_len(data, (gssize) size, "No known authentication mechanism") != NULL)
      self->no_mechanism = TRUE;
    if (self->events.trace)
      source_imap_trace_line(self, "*", data, size);
    break;
  case CURLINFO_HEADER_IN:
    if (self->events.trace)
      source_imap_trace_line(self, "<", data, size);
    break;
  case CURLINFO_HEADER_OUT: {
    if (!self->events.trace)
      break;
    g_autofree char *line = g_strndup(data, size);
    g_strchomp(line);
    char **words = g_strsplit(line, " ", 4);
    if (words[0] != NULL && words[1] != NULL &&
        g_ascii_strcasecmp(words[1], "AUTHENTICATE") == 0 && words[2] != NULL) {
      /* The mechanism is a SASL name (RFC 4422: upper case, digits, '-', '_'). */
      gboolean named = words[2][0] != '\0' && strlen(words[2]) <= 20 &&
                       strspn(words[2], "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
                           strlen(words[2]);
      g_autofree char *red = g_strdup_printf("%s %s %s%s<credentials redacted>", words[0],
                                             words[1], named ? words[2] : "",
                                             named ? " " : "");
      source_imap_trace_line(self, ">", red, strlen(red));
    } else if (words[0] != NULL && words[1] != NULL &&
               (g_ascii_strcasecmp(words[1], "LOGIN") == 0 ||
                g_ascii_strncasecmp(words[1], "AUTHENTICATE", 12) == 0)) {
      g_autofree char *red = g_strdup_printf("%s %s <credentials redacted>", words[0],
                                             words[1]);
      source_imap_trace_line(self, ">", red, strlen(red));
    } else if (words[0] != NULL && words[2] == NULL &&
               (g_ascii_strcasecmp(words[1] ? words[1] : "", "CAPABILITY") == 0 ||
                g_ascii_strcasecmp(words[1] ? words[1] : "", "STARTTLS") == 0)) {
      source_imap_trace_line(self, ">", data, size);
    } else {
      /* A SASL continuation (base64 user name / password) or anything else. */
      source_imap_trace_line(self, ">", "<redacted>", strlen("<redacted>"));
    }
    g_strfreev(words);
    break;
  }
  default:
    break;
  }
  return 0;
}

/* ---- small helpers --------------------------------------------------------------- */

static gboolean
source_imap_parse_u32(const char *s, const char **end, guint32 *out)
{
  guint64 v = 0;
  const char *p = s;
  if (!g_ascii_isdigit(*p))
    return FALSE;
  while (g_ascii_isdigit(*p)) {
    v = v * 10 + (guint64) (*p - '0');
    if (v > G_MAXUINT32)
      return FALSE;
    p++;
  }
  if (end != NULL)
    *end = p;
  *out = (guint32) v;
  return TRUE;
}

/* RFC 3501 5.1.3: modified UTF-7 for mailbox names. */
static char *
source_imap_mutf7_encode(const char *utf8, GError **error)
{
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
  if (!g_utf8_validate(utf8, -1, NULL)) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "mailbox name '%s' is not valid UTF-8", utf8);
    return NULL;
  }
  g_autoptr(GString) out = g_string_new(NULL);
  const char *p = utf8;
  while (*p != '\0') {
    gunichar c = g_utf8_get_char(p);
    if (c >= 0x20 && c <= 0x7e) {
      if (c == '&')
        g_string_append(out, "&-");
      else
        g_string_append_c(out, (char) c);
      p = g_utf8_next_char(p);
      continue;
    }
    /* A run of characters outside printable ASCII: UTF-16BE, then base64. */
    g_autoptr(GByteArray) u16 = g_byte_array_new();
    while (*p != '\0') {
      c = g_utf8_get_char(p);
      if (c >= 0x20 && c <= 0x7e)
        break;
      gunichar2 units[2];
      guint n = 0;
      if (c >= 0x10000) {
        units[n++] = (gunichar2) (0xd800 + ((c - 0x10000) >> 10));
        units[n++] = (gunichar2) (0xdc00 + ((c - 0x10000) & 0x3ff));
      } else {
        units[n++] = (gunichar2) c;
      }
      for (guint i = 0; i < n; i++) {
        guint8 be[2] = { (guint8) (units[i] >> 8), (guint8) (units[i] & 0xff) };
        g_byte_array_append(u16, be, 2);
      }
      p = g_utf8_next_char(p);
    }
    g_string_append_c(out, '&');
    guint32 acc = 0;
    int bits = 0;
    for (guint i = 0; i < u16->len; i++) {
      acc = (acc << 8) | u16->data[i];
      bits += 8;
      while (bits >= 6) {
        bits -= 6;
        g_string_append_c(out, b64[(acc >> bits) & 0x3f]);
      }
    }
    if (bits > 0)
      g_string_append_c(out, b64[(acc << (6 - bits)) & 0x3f]);
    g_string_append_c(out, '-');
  }
  return g_string_free(g_steal_pointer(&out), FALSE);
}

/* An IMAP quoted string (the input is printable ASCII: mUTF-7 output). */
static char *
source_imap_quote(const char *s)
{
  GString *q = g_string_new("\"");
  for (const char *p = s; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c(q, '\\');
    g_string_append_c(q, *p);
  }
  g_string_append_c(q, '"');
  return g_string_free(q, FALSE);
}

/* "22-Nov-2026 21:30:20 +0000" -> epoch seconds; 0 when unparseable. */
static gint64
source_imap_parse_internaldate(const char *s)
{
  static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  int day, year, hh, mm, ss;
  char mon[4], zone[6];
  if (sscanf(s, " %d-%3s-%d %d:%d:%d %5s", &day, mon, &year, &hh, &mm, &ss, zone) != 7)
    return 0;
  int month = 0;
  for (int i = 0; i < 12; i++)
    if (g_ascii_strcasecmp(mon, months[i]) == 0)
      month = i + 1;
  if (month == 0)
    return 0;
  g_autoptr(GTimeZone) tz = g_time_zone_new_identifier(zone);
  if (tz == NULL)
    return 0;
  g_autoptr(GDateTime) dt = g_date_time_new(tz, year, month, day, hh, mm, ss);
  return dt != NULL ? g_date_time_to_unix(dt) : 0;
}

/* ---- state file and lock ----------------------------------------------------------- */

static void
source_imap_set_errno(GError **error, int errsv, const char *what, const char *path)
{
  g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "imap state: %s %s: %s", what, path,
              g_strerror(errsv));
}

static void
source_imap_load_state(SourceImap *self)
{
  self->have_state = FALSE;
  g_autofree char *path = g_build_filename(self->store_dir, self->state_name, NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, NULL))
    return;
  gboolean have_v = FALSE, have_l = FALSE;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    if (g_str_has_prefix(lines[i], "uidvalidity "))
      have_v = source_imap_parse_u32(lines[i] + 12, NULL, &self->state_uidvalidity);
    else if (g_str_has_prefix(lines[i], "last_uid "))
      have_l = source_imap_parse_u32(lines[i] + 9, NULL, &self->state_last_uid);
  }
  /* A damaged state file only costs a refetch: the store's dedup catches repeats. */
  self->have_state = have_v && have_l;
  if (!self->have_state)
    self->state_last_uid = 0;
}

/* Durably replaced (fsutil_write_atomic(): tmp file, fsync, rename, fsync of the
 * directory). */
static gboolean
source_imap_save_state(SourceImap *self, guint32 uidvalidity, guint32 last_uid,
                       GError **error)
{
  g_autofree char *text = g_strdup_printf("uidvalidity %u\nlast_uid %u\n", uidvalidity,
                                          last_uid);
  g_autoptr(GError) local = NULL;
  if (!fsutil_write_atomic(self->store_fd, self->state_name, text, strlen(text), &local)) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "imap state: %s", local->message);
    return FALSE;
  }
  self->have_state = TRUE;
  self->state_uidvalidity = uidvalidity;
  self->state_last_uid = last_uid;
  return TRUE;
}

static gboolean
source_imap_take_lock(SourceImap *self, const char *key, GError **error)
{
  g_autofree char *name = NULL;
  g_autofree char *path = store_state_path(self->store_dir, "imap", key, "lock", &name);
  self->lock_fd = openat(self->store_fd, name,
                         O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (self->lock_fd < 0) {
    source_imap_set_errno(error, errno, "open", path);
    return FALSE;
  }
  while (flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR)
      continue;
    if (errno == EWOULDBLOCK) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_LOCKED,
                  "another poller is working on this mailbox (lock %s)", path);
      return FALSE;
    }
    source_imap_set_errno(error, errno, "flock", path);
    return FALSE;
  }
  return TRUE;
}

/* ---- the connection: raw I/O ------------------------------------------------------- */

static void
source_imap_disconnect(SourceImap *self)
{
  if (self->curl != NULL && self->canned == NULL)
    curl_easy_cleanup(self->curl);
  self->curl = NULL;
  self->sock = CURL_SOCKET_BAD;
  self->selected = FALSE;
  if (self->rbuf != NULL)
    g_byte_array_set_size(self->rbuf, 0);
  self->rpos = 0;
}

static void
source_imap_io_error(SourceImap *self, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* A network failure: the connection is gone; the next command reconnects. */
static void
source_imap_io_error(SourceImap *self, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "imap %s:%ld: %s", self->host,
              self->port, msg);
  source_imap_disconnect(self);
}

static gboolean
source_imap_wait(SourceImap *self, short events, GError **error)
{
  for (;;) {
    struct pollfd pfd = { .fd = self->sock, .events = events };
    int r = poll(&pfd, 1, self->io_timeout_ms);
    if (r > 0)
      return TRUE;
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0)
      source_imap_io_error(self, error, "no answer from the server for %d s",
                           self->io_timeout_ms / 1000);
    else
      source_imap_io_error(self, error, "poll: %s", g_strerror(errno));
    return FALSE;
  }
}

static gboolean
source_imap_send_all(SourceImap *self, const char *data, gsize len, GError **error)
{
  if (self->canned != NULL)
    return TRUE;   /* tests: the answer is canned, what is asked goes nowhere */
  gsize done = 0;
  while (done < len) {
    size_t n = 0;
    CURLcode rc = curl_easy_send(self->curl, data + done, len - done, &n);
    if (rc == CURLE_AGAIN) {
      if (!source_imap_wait(self, POLLOUT, error))
        return FALSE;
      continue;
    }
    if (rc != CURLE_OK) {
      source_imap_io_error(self, error, "send: %s", curl_easy_strerror(rc));
      return FALSE;
    }
    done += n;
  }
  return TRUE;
}

/* Receive up to @len bytes (at least one). */
static gboolean
source_imap_recv_some(SourceImap *self, guint8 *buf, gsize len, gsize *got, GError **error)
{
  if (self->canned != NULL) {
    gsize n = MIN(len, self->canned_len - self->canned_pos);
    if (self->canned_step > 0)
      n = MIN(n, self->canned_step);
    if (n == 0) {
      source_imap_io_error(self, error, "connection closed by the server");
      return FALSE;
    }
    memcpy(buf, self->canned + self->canned_pos, n);
    self->canned_pos += n;
    *got = n;
    return TRUE;
  }
  for (;;) {
    size_t n = 0;
    CURLcode rc = curl_easy_recv(self->curl, buf, len, &n);
    if (rc == CURLE_AGAIN) {
      if (!source_imap_wait(self, POLLIN, error))
        return FALSE;
      continue;
    }
    if (rc != CURLE_OK) {
      source_imap_io_error(self, error, "receive: %s", curl_easy_strerror(rc));
      return FALSE;
    }
    if (n == 0) {
      source_imap_io_error(self, error, "connection closed by the server");
      return FALSE;
    }
    *got = n;
    return TRUE;
  }
}

/* One line without its CRLF (transfer full). */
static char *
source_imap_read_line(SourceImap *self, GError **error)
{
  gsize scanned = self->rpos;
  for (;;) {
    guint8 *start = self->rbuf->data + self->rpos;
    gsize avail = self->rbuf->len - self->rpos;
    gsize from = scanned - self->rpos;
    if (from > 0)
      from--;   /* the CR may be the last byte seen so far */
    guint8 *lf = avail > from ? memchr(start + from, '\n', avail - from) : NULL;
    if (lf != NULL) {
      gsize n = (gsize) (lf - start);
      gsize linelen = n > 0 && start[n - 1] == '\r' ? n - 1 : n;
      char *line = g_strndup((const char *) start, linelen);
      self->rpos += n + 1;
      if (self->rpos == self->rbuf->len) {
        g_byte_array_set_size(self->rbuf, 0);
        self->rpos = 0;
      }
      return line;
    }
    if (avail > SOURCE_IMAP_MAX_LINE) {
      source_imap_io_error(self, error, "server sent a line over %u bytes",
                           SOURCE_IMAP_MAX_LINE);
      return NULL;
    }
    scanned = self->rbuf->len;
    if (self->rpos > 0 && self->rpos == self->rbuf->len) {
      g_byte_array_set_size(self->rbuf, 0);
      self->rpos = 0;
      scanned = 0;
    } else if (self->rpos > 65536) {
      g_byte_array_remove_range(self->rbuf, 0, (guint) self->rpos);
      scanned -= self->rpos;
      self->rpos = 0;
    }
    guint8 chunk[16384];
    gsize got = 0;
    if (!source_imap_recv_some(self, chunk, sizeof chunk, &got, error))
      return NULL;
    g_byte_array_append(self->rbuf, chunk, (guint) got);
  }
}

static GBytes *
source_imap_read_literal(SourceImap *self, gsize len, GError **error)
{
  guint8 *buf = g_malloc(len > 0 ? len : 1);
  gsize have = MIN(len, self->rbuf->len - self->rpos);
  memcpy(buf, self->rbuf->data + self->rpos, have);
  self->rpos += have;
  if (self->rpos == self->rbuf->len) {
    g_byte_array_set_size(self->rbuf, 0);
    self->rpos = 0;
  }
  while (have < len) {
    gsize got = 0;
    if (!source_imap_recv_some(self, buf + have, len - have, &got, error)) {
      g_free(buf);
      return NULL;
    }
    have += got;
  }
  return g_bytes_new_take(buf, len);
}

/* Does @line end with a literal announcement "{N}" or "{N+}"? */
static gboolean
source_imap_literal_size(const char *line, guint64 *size)
{
  gsize len = strlen(line);
  if (len < 3 || line[len - 1] != '}')
    return FALSE;
  const char *open = strrchr(line, '{');
  if (open == NULL)
    return FALSE;
  const char *p = open + 1;
  guint64 v = 0;
  if (!g_ascii_isdigit(*p))
    return FALSE;
  while (g_ascii_isdigit(*p)) {
    if (v > G_MAXUINT64 / 16)
      return FALSE;
    v = v * 10 + (guint64) (*p - '0');
    p++;
  }
  if (*p == '+')
    p++;
  if (*p != '}' || p != line + len - 1)
    return FALSE;
  *size = v;
  return TRUE;
}

/* One response: a line, and for each literal it announces, the literal and the line
 * that continues it. */
static SourceImapResponse *
source_imap_read_response(SourceImap *self, gsize literal_cap, GError **error)
{
  g_autoptr(SourceImapResponse) r = g_new0(SourceImapResponse, 1);
  r->text = g_string_new(NULL);
  r->literals = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
  for (;;) {
    g_autofree char *line = source_imap_read_line(self, error);
    if (line == NULL)
      return NULL;
    gsize linelen = strlen(line) + 2;
    if (linelen > self->reply_left) {
      source_imap_io_error(self, error, "the server's answer exceeds the %" G_GSIZE_FORMAT
                           " bytes expected", self->reply_left);
      return NULL;
    }
    self->reply_left -= linelen;
    g_string_append(r->text, line);
    guint64 size = 0;
    if (!source_imap_literal_size(line, &size)) {
      if (self->events.trace)
        source_imap_trace_line(self, "<", r->text->str, r->text->len);
      return g_steal_pointer(&r);
    }
    if (size > literal_cap || size > self->reply_left) {
      source_imap_io_error(self, error, "server announced a %" G_GUINT64_FORMAT
                           "-byte literal (more than the %" G_GSIZE_FORMAT " expected)",
                           size, MIN(literal_cap, self->reply_left));
      return NULL;
    }
    self->reply_left -= (gsize) size;
    GBytes *lit = source_imap_read_literal(self, (gsize) size, error);
    if (lit == NULL)
      return NULL;
    g_ptr_array_add(r->literals, lit);
  }
}

/* Send "<tag> @cmd" and read everything up to the tagged status: each literal at most
 * @literal_cap bytes, the whole reply (lines and literals) at most @budget. A NO or BAD
 * answer is not an error here: the caller looks at reply->status. */
static SourceImapReply *
source_imap_command_budget(SourceImap *self, const char *cmd, gsize literal_cap,
                           gsize budget, GError **error)
{
  g_assert(self->curl != NULL || self->canned != NULL);
  self->reply_left = budget;
  self->commands++;
  g_autofree char *tag = g_strdup_printf("t%04u", ++self->tag);
  g_autofree char *line = g_strdup_printf("%s %s\r\n", tag, cmd);
  if (self->events.trace)
    source_imap_trace_line(self, ">", line, strlen(line));
  if (!source_imap_send_all(self, line, strlen(line), error))
    return NULL;

  g_autoptr(SourceImapReply) reply = g_new0(SourceImapReply, 1);
  reply->untagged = g_ptr_array_new_with_free_func((GDestroyNotify) source_imap_response_free);
  gsize taglen = strlen(tag);
  for (;;) {
    SourceImapResponse *r = source_imap_read_response(self, literal_cap, error);
    if (r == NULL)
      return NULL;
    const char *t = r->text->str;
    if (strncmp(t, tag, taglen) == 0 && t[taglen] == ' ') {
      const char *status = t + taglen + 1;
      const char *sp = strchr(status, ' ');
      reply->status = g_ascii_strup(status, sp ? (gssize) (sp - status) : -1);
      reply->text = g_strdup(sp ? sp + 1 : "");
      source_imap_response_free(r);
      return g_steal_pointer(&reply);
    }
    if (g_str_has_prefix(t, "* BYE")) {
      g_autofree char *why = g_strdup(t + 5);
      source_imap_response_free(r);
      source_imap_io_error(self, error, "server closed the connection:%s", why);
      return NULL;
    }
    if (t[0] == '+') {
      source_imap_response_free(r);
      source_imap_io_error(self, error, "unexpected continuation request after %s", cmd);
      return NULL;
    }
    g_ptr_array_add(reply->untagged, r);
  }
}

static SourceImapReply *
source_imap_command(SourceImap *self, const char *cmd, gsize literal_cap, GError **error)
{
  return source_imap_command_budget(self, cmd, literal_cap, SOURCE_IMAP_REPLY_BUDGET, error);
}

/* A command that must succeed; NO/BAD become SOURCE_ERROR_PROTOCOL. */
static SourceImapReply *
source_imap_command_ok(SourceImap *self, const char *cmd, gsize literal_cap,
                       GError **error)
{
  g_autoptr(SourceImapReply) reply = source_imap_command(self, cmd, literal_cap, error);
  if (reply == NULL)
    return NULL;
  if (strcmp(reply->status, "OK") != 0) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_PROTOCOL, "imap %s:%ld: %s: %s %s",
                self->host, self->port, cmd, reply->status, reply->text);
    return NULL;
  }
  return g_steal_pointer(&reply);
}

/* ---- connect, login (libcurl), CAPABILITY, SELECT ----------------------------------- */

static const char *
source_imap_sasl_name(TrSasl sasl)
{
  static const char *const names[] = { "auto", "xoauth2", "oauthbearer", "plain", "login" };
  return names[MIN((guint) sasl, G_N_ELEMENTS(names) - 1)];
}

static gboolean
source_imap_map_curl_error(SourceImap *self, CURLcode rc, GError **error)
{
  const char *detail = self->errbuf[0] != '\0' ? self->errbuf : curl_easy_strerror(rc);
  switch (rc) {
  case CURLE_LOGIN_DENIED:
  case CURLE_AUTH_ERROR:
    if (self->no_mechanism) {   /* the server's AUTH= list and ours do not meet */
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH,
                  "imap %s:%ld: the server offers no login mechanism for %s (--sasl %s): "
                  "%s", self->host, self->port, self->token_command || self->token_file
                                                    ? "an OAuth2 token" : "a password",
                  source_imap_sasl_name(self->sasl), detail);
      break;
    }
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH,
                "imap %s:%ld: login refused for user %s (%s): %s", self->host,
                self->port, self->user, self->password_origin, detail);
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_TLS,
                "imap %s:%ld: TLS failed: %s%s", self->host, self->port, detail,
                rc == CURLE_PEER_FAILED_VERIFICATION
                    ? " (the server certificate is not trusted: --cacert FILE)" : "");
    break;
  case CURLE_USE_SSL_FAILED:
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_TLS,
                "imap %s:%ld: the server does not offer STARTTLS (%s); use imaps:// or, "
                "only on a trusted network, --starttls=no", self->host, self->port, detail);
    break;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND, "imap: bad URL: %s", detail);
    break;
  default:
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "imap %s:%ld: %s", self->host,
                self->port, detail);
    break;
  }
  return FALSE;
}

static gboolean
source_imap_connect(SourceImap *self, GError **error)
{
  source_imap_disconnect(self);
  CURL *curl = curl_easy_init();
  if (curl == NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "imap: curl_easy_init failed");
    return FALSE;
  }
  self->errbuf[0] = '\0';
  self->no_mechanism = FALSE;
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, self->errbuf);
  curl_easy_setopt(curl, CURLOPT_URL, self->conn_url);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "imap,imaps");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, SOURCE_IMAP_CONNECT_TIMEOUT);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, SOURCE_IMAP_LOGIN_TIMEOUT);
  curl_easy_setopt(curl, CURLOPT_USERNAME, self->user);
  if (self->token != NULL) {
    /* SASL only (no LOGIN command): OAUTHBEARER (RFC 7628) before XOAUTH2 when the
     * server offers both. */
    curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, self->token);
    curl_easy_setopt(curl, CURLOPT_LOGIN_OPTIONS,
                     self->sasl == TR_SASL_XOAUTH2       ? "AUTH=XOAUTH2"
                     : self->sasl == TR_SASL_OAUTHBEARER ? "AUTH=OAUTHBEARER"
                                                         : "AUTH=OAUTHBEARER;AUTH=XOAUTH2");
  } else {
    if (self->password != NULL)
      curl_easy_setopt(curl, CURLOPT_PASSWORD, self->password);
    else
      curl_easy_setopt(curl, CURLOPT_NETRC, (long) CURL_NETRC_OPTIONAL);
    if (self->sasl == TR_SASL_PLAIN || self->sasl == TR_SASL_LOGIN)
      curl_easy_setopt(curl, CURLOPT_LOGIN_OPTIONS,
                       self->sasl == TR_SASL_PLAIN ? "AUTH=PLAIN" : "AUTH=LOGIN");
  }
  if (!self->implicit_tls) {
    long use_ssl = self->starttls == TR_STARTTLS_REQUIRED ? (long) CURLUSESSL_ALL
                   : self->starttls == TR_STARTTLS_TRY   ? (long) CURLUSESSL_TRY
                                                         : (long) CURLUSESSL_NONE;
    curl_easy_setopt(curl, CURLOPT_USE_SSL, use_ssl);
  }
  if (self->cacert != NULL)
    curl_easy_setopt(curl, CURLOPT_CAINFO, self->cacert);
  if (self->insecure) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  /* The debug callback redacts the login in the trace (and without one, notes why a
   * login failed); raw verbose output never goes anywhere. */
  curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, source_imap_curl_debug);
  curl_easy_setopt(curl, CURLOPT_DEBUGDATA, self);
  curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);
  self->curl = curl;
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    source_imap_map_curl_error(self, rc, error);
    source_imap_disconnect(self);
    return FALSE;
  }
  if (self->token != NULL)
    curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, NULL);   /* libcurl's copy: not kept */
  if (!self->events.trace)
    curl_easy_setopt(curl, CURLOPT_VERBOSE, 0L);
  curl_socket_t sock = CURL_SOCKET_BAD;
  rc = curl_easy_getinfo(curl, CURLINFO_ACTIVESOCKET, &sock);
  if (rc != CURLE_OK || sock == CURL_SOCKET_BAD) {
    source_imap_io_error(self, error, "no connection after login");
    return FALSE;
  }
  self->sock = sock;
  self->io_timeout_ms = SOURCE_IMAP_IO_TIMEOUT_MS;

  g_autoptr(SourceImapReply) caps = source_imap_command_ok(self, "CAPABILITY",
                                                           SOURCE_IMAP_SMALL_LITERAL, error);
  if (caps == NULL)
    return FALSE;
  self->cap_move = self->cap_uidplus = self->cap_namespace = FALSE;
  for (guint i = 0; i < caps->untagged->len; i++) {
    SourceImapResponse *r = caps->untagged->pdata[i];
    if (!g_str_has_prefix(r->text->str, "* CAPABILITY "))
      continue;
    g_auto(GStrv) words = g_strsplit(r->text->str + 13, " ", -1);
    for (guint j = 0; words[j] != NULL; j++) {
      if (g_ascii_strcasecmp(words[j], "MOVE") == 0)
        self->cap_move = TRUE;
      else if (g_ascii_strcasecmp(words[j], "UIDPLUS") == 0)
        self->cap_uidplus = TRUE;
      else if (g_ascii_strcasecmp(words[j], "NAMESPACE") == 0)
        self->cap_namespace = TRUE;
    }
  }
  return TRUE;
}

/* The access token for the next login: the command run again, or the file read
 * again (a helper may have replaced it). */
static gboolean
source_imap_fetch_token(SourceImap *self, GError **error)
{
  g_clear_pointer(&self->token, source_imap_auth_free);
  gint64 ms = 0;
  if (self->token_command != NULL) {
    self->token = source_imap_auth_run_command(self->token_command, self->token_timeout, &ms,
                                               error);
  } else {
    self->token = source_imap_auth_read_token_file(self->token_file, error);
  }
  if (self->token == NULL) {
    g_prefix_error(error, "imap %s:%ld: no access token for user %s: ", self->host,
                   self->port, self->user);
    return FALSE;
  }
  source_event(&self->events, SOURCE_EVENT_DEBUG, NULL,
               "imap %s: an access token of %" G_GSIZE_FORMAT " characters from %s (%"
               G_GINT64_FORMAT " ms)", self->origin_base, strlen(self->token),
               self->token_command != NULL ? "--oauth2-token-command" : self->token_file, ms);
  return TRUE;
}

/* Connect and log in. With OAuth2, every connection gets a fresh token, and a token
 * the server refuses is replaced once (it may have expired since the helper cached
 * it) before the refusal is reported. The token is wiped once the login is over. */
static gboolean
source_imap_login(SourceImap *self, GError **error)
{
  if (self->token_command == NULL && self->token_file == NULL)
    return source_imap_connect(self, error);
  g_autofree char *from = self->token_command != NULL
                              ? g_strdup("--oauth2-token-command")
                              : g_strdup_printf("token file %s", self->token_file);
  for (guint attempt = 0;; attempt++) {
    g_free(self->password_origin);
    self->password_origin = g_strdup_printf("token from %s%s", from,
                                            attempt > 0 ? "; a fresh one was refused too"
                                                        : "");
    if (!source_imap_fetch_token(self, error))
      return FALSE;
    g_autoptr(GError) local = NULL;
    gboolean ok = source_imap_connect(self, &local);
    g_clear_pointer(&self->token, source_imap_auth_free);
    if (ok)
      return TRUE;
    if (!g_error_matches(local, SOURCE_ERROR, SOURCE_ERROR_AUTH) || self->no_mechanism) {
      g_propagate_error(error, g_steal_pointer(&local));
      return FALSE;
    }
    if (attempt == 0) {
      source_event(&self->events, SOURCE_EVENT_VERBOSE, self->origin_base,
                   "the server refused the access token; getting a fresh one and trying "
                   "once more");
      continue;
    }
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
}

static gboolean
source_imap_select(SourceImap *self, GError **error)
{
  g_autofree char *quoted = source_imap_quote(self->mailbox_wire);
  g_autofree char *cmd = g_strdup_printf("SELECT %s", quoted);
  g_autoptr(SourceImapReply) reply = source_imap_command(self, cmd, SOURCE_IMAP_SMALL_LITERAL,
                                                         error);
  if (reply == NULL)
    return FALSE;
  if (strcmp(reply->status, "OK") != 0) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "imap %s:%ld: cannot open mailbox '%s': %s %s", self->host, self->port,
                self->mailbox, reply->status, reply->text);
    return FALSE;
  }
  gboolean found = FALSE;
  for (guint i = 0; i < reply->untagged->len && !found; i++) {
    SourceImapResponse *r = reply->untagged->pdata[i];
    const char *p = strstr(r->text->str, "[UIDVALIDITY ");
    if (g_str_has_prefix(r->text->str, "* OK ") && p != NULL)
      found = source_imap_parse_u32(p + 13, NULL, &self->uidvalidity);
  }
  if (!found) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_PROTOCOL,
                "imap %s:%ld: the server sent no UIDVALIDITY for '%s'", self->host,
                self->port, self->mailbox);
    return FALSE;
  }
  self->selected = TRUE;
  return TRUE;
}

/* Connected with the mailbox selected; a connection that died while idle (between
 * passes, or before a commit) is replaced once. */
static gboolean
source_imap_ensure_selected(SourceImap *self, gboolean reselect, GError **error)
{
  if (self->curl != NULL && (!reselect && self->selected))
    return TRUE;
  if (self->curl != NULL) {
    g_autoptr(GError) local = NULL;
    if (source_imap_select(self, &local))
      return TRUE;
    if (!g_error_matches(local, SOURCE_ERROR, SOURCE_ERROR_IO)) {
      g_propagate_error(error, g_steal_pointer(&local));
      return FALSE;
    }
    /* Fall through: reconnect. */
  }
  if (!source_imap_login(self, error))
    return FALSE;
  return source_imap_select(self, error);
}

/* ---- folders: the personal namespace (RFC 2342), CREATE, SUBSCRIBE ----------------- */

char *
source_imap_resolve_folder(const char *name, const char *prefix, char delim)
{
  g_autofree char *n = g_strdup(name);
  if (delim != '\0' && delim != '/')
    for (char *p = n; *p != '\0'; p++)
      if (*p == '/')
        *p = delim;
  if (prefix == NULL || prefix[0] == '\0' || g_ascii_strcasecmp(n, "INBOX") == 0)
    return g_steal_pointer(&n);
  gsize plen = strlen(prefix);
  if (g_ascii_strncasecmp(n, prefix, plen) == 0)
    return g_strconcat(prefix, n + plen, NULL);   /* given with it: the server's spelling */
  return g_strconcat(prefix, n, NULL);
}

static char *source_imap_parse_quoted(const char **pp);

/* A quoted one-character delimiter at *p, or NIL: the character, or '\0'. */
static char
source_imap_parse_delimiter(const char *p)
{
  if (*p != '"')
    return '\0';
  g_autofree char *d = source_imap_parse_quoted(&p);
  return strlen(d) == 1 ? d[0] : '\0';
}

/* The first personal namespace of "* NAMESPACE ((PREFIX DELIM)...) OTHER SHARED":
 * *prefix (transfer full; mUTF-7 as sent) and *delim. FALSE when there is none. */
static gboolean
source_imap_parse_namespace(const char *text, char **prefix, char *delim)
{
  const char *p = text;
  if (g_ascii_strncasecmp(p, "* NAMESPACE ", 12) != 0)
    return FALSE;
  p += 12;
  while (*p == ' ')
    p++;
  if (strncmp(p, "((", 2) != 0)
    return FALSE;     /* NIL: no personal namespace */
  p += 2;
  if (*p != '"')
    return FALSE;
  g_autofree char *pre = source_imap_parse_quoted(&p);
  while (*p == ' ')
    p++;
  *delim = source_imap_parse_delimiter(p);
  *prefix = g_steal_pointer(&pre);
  return TRUE;
}

/* The user's name for the folder whose server name is @wire (for messages). */
static const char *
source_imap_folder_name(SourceImap *self, const char *wire)
{
  if (self->move_to != NULL && strcmp(wire, self->move_to) == 0)
    return self->move_to_name;
  if (self->error_folder != NULL && strcmp(wire, self->error_folder) == 0)
    return self->error_folder_name;
  return wire;
}

/* RFC 5530 response codes that say "not now" rather than "never". */
static gboolean
source_imap_no_is_transient(const char *text)
{
  static const char *const codes[] = { "[UNAVAILABLE]", "[INUSE]", "[LIMIT]", "[SERVERBUG]",
                                       "[OVERQUOTA]", "[EXPUNGEISSUED]" };
  for (gsize i = 0; i < G_N_ELEMENTS(codes); i++)
    if (g_ascii_strncasecmp(text, codes[i], strlen(codes[i])) == 0)
      return TRUE;
  return FALSE;
}

/* A NO the server will say again on every run: a configuration error (exit 2). */
static void
source_imap_folder_error(SourceImap *self, GError **error, const char *wire, const char *what,
                         const SourceImapReply *reply)
{
  const char *name = source_imap_folder_name(self, wire);
  gboolean same = strcmp(name, wire) == 0;
  gboolean transient = source_imap_no_is_transient(reply->text);
  g_set_error(error, SOURCE_ERROR, transient ? SOURCE_ERROR_PROTOCOL : SOURCE_ERROR_CONFIG,
              "imap %s:%ld: folder '%s'%s%s%s: the server refused %s: %s %s", self->host,
              self->port, name, same ? "" : " (on the server: '", same ? "" : wire,
              same ? "" : "')", what, reply->status, reply->text);
}

/* CREATE @wire (its parents first if the server wants them), then SUBSCRIBE it. */
static gboolean
source_imap_create_folder(SourceImap *self, const char *wire, char delim, gsize prefix_len,
                          GError **error)
{
  g_autofree char *quoted = source_imap_quote(wire);
  g_autofree char *create = g_strdup_printf("CREATE %s", quoted);
  g_autoptr(SourceImapReply) created = source_imap_command(self, create,
                                                           SOURCE_IMAP_SMALL_LITERAL, error);
  if (created == NULL)
    return FALSE;
  if (strcmp(created->status, "OK") != 0 && strstr(created->text, "[ALREADYEXISTS]") == NULL &&
      delim != '\0' && strchr(wire + prefix_len, delim) != NULL) {
    /* Servers that do not create the levels above it: one by one, then again. */
    for (const char *p = wire + prefix_len; (p = strchr(p, delim)) != NULL; p++) {
      g_autofree char *parent = g_strndup(wire, (gsize) (p - wire));
      g_autofree char *qp = source_imap_quote(parent);
      g_autofree char *cp = g_strdup_printf("CREATE %s", qp);
      g_autoptr(SourceImapReply) r = source_imap_command(self, cp, SOURCE_IMAP_SMALL_LITERAL,
                                                         error);
      if (r == NULL)
        return FALSE;
    }
    g_clear_pointer(&created, source_imap_reply_free);
    created = source_imap_command(self, create, SOURCE_IMAP_SMALL_LITERAL, error);
    if (created == NULL)
      return FALSE;
  }
  if (strcmp(created->status, "OK") != 0 && strstr(created->text, "[ALREADYEXISTS]") == NULL) {
    source_imap_folder_error(self, error, wire, "to create it", created);
    return FALSE;
  }
  /* So that mail clients show it; a server without subscriptions may say NO. */
  g_autofree char *sub = g_strdup_printf("SUBSCRIBE %s", quoted);
  g_autoptr(SourceImapReply) subscribed = source_imap_command(self, sub,
                                                              SOURCE_IMAP_SMALL_LITERAL, error);
  return subscribed != NULL;
}

/* Resolve --move-to and --error-folder in the server's personal namespace and make sure
 * they exist: NAMESPACE (when offered) or LIST "" "" for the delimiter, LIST per folder,
 * CREATE + SUBSCRIBE when missing. Once per source: the names stay for its life. */
static gboolean
source_imap_prepare_folders(SourceImap *self, GError **error)
{
  if (self->move_to_name == NULL && self->error_folder_name == NULL)
    return TRUE;
  if (self->move_to != NULL || self->error_folder != NULL)
    return TRUE;    /* done at the first connection */
  g_autofree char *prefix = NULL;
  char delim = '\0';
  gboolean have_delim = FALSE;
  if (self->cap_namespace) {
    g_autoptr(SourceImapReply) ns = source_imap_command(self, "NAMESPACE",
                                                        SOURCE_IMAP_SMALL_LITERAL, error);
    if (ns == NULL)
      return FALSE;
    for (guint i = 0; strcmp(ns->status, "OK") == 0 && i < ns->untagged->len && !have_delim;
         i++) {
      SourceImapResponse *r = ns->untagged->pdata[i];
      have_delim = source_imap_parse_namespace(r->text->str, &prefix, &delim);
    }
  }
  if (!have_delim) {
    g_autoptr(SourceImapReply) list = source_imap_command(self, "LIST \"\" \"\"",
                                                          SOURCE_IMAP_SMALL_LITERAL, error);
    if (list == NULL)
      return FALSE;
    for (guint i = 0; strcmp(list->status, "OK") == 0 && i < list->untagged->len; i++) {
      const char *t = ((SourceImapResponse *) list->untagged->pdata[i])->text->str;
      const char *close = g_ascii_strncasecmp(t, "* LIST (", 8) == 0 ? strchr(t, ')') : NULL;
      if (close != NULL) {
        delim = source_imap_parse_delimiter(close + 1 + (close[1] == ' '));
        break;
      }
    }
  }
  gsize prefix_len = prefix != NULL ? strlen(prefix) : 0;
  const char *names[] = { self->move_to_name, self->error_folder_name };
  char **wires[] = { &self->move_to, &self->error_folder };
  for (guint k = 0; k < G_N_ELEMENTS(names); k++) {
    if (names[k] == NULL)
      continue;
    g_autofree char *utf7 = source_imap_mutf7_encode(names[k], error);
    if (utf7 == NULL)
      return FALSE;
    *wires[k] = source_imap_resolve_folder(utf7, prefix, delim);
    source_event(&self->events, SOURCE_EVENT_DEBUG, NULL,
                 "imap %s: folder '%s' is '%s' on the server (namespace '%s', "
                 "delimiter '%c')", self->origin_base, names[k], *wires[k],
                 prefix ? prefix : "", delim ? delim : ' ');
    if (k == 1 && self->move_to != NULL && strcmp(self->move_to, self->error_folder) == 0)
      continue;
    g_autofree char *quoted = source_imap_quote(*wires[k]);
    g_autofree char *cmd = g_strdup_printf("LIST \"\" %s", quoted);
    g_autoptr(SourceImapReply) list = source_imap_command(self, cmd, SOURCE_IMAP_SMALL_LITERAL,
                                                          error);
    if (list == NULL)
      return FALSE;
    gboolean exists = FALSE;
    for (guint i = 0; strcmp(list->status, "OK") == 0 && i < list->untagged->len; i++) {
      const char *t = ((SourceImapResponse *) list->untagged->pdata[i])->text->str;
      exists = exists || (g_ascii_strncasecmp(t, "* LIST ", 7) == 0 &&
                          g_strstr_len(t, -1, "\\Noselect") == NULL &&
                          g_strstr_len(t, -1, "\\NoSelect") == NULL &&
                          g_strstr_len(t, -1, "\\NonExistent") == NULL);
    }
    if (!exists && !source_imap_create_folder(self, *wires[k], delim, prefix_len, error))
      return FALSE;
  }
  return TRUE;
}

/* ---- open ------------------------------------------------------------------------- */

static void source_imap_close(gpointer data);

static gboolean
source_imap_parse_url(SourceImap *self, const char *url, GError **error)
{
  /* libcurl reads "imaps:///INBOX" as the host INBOX: an empty authority is refused
   * here, as a URL without a host. */
  const char *authority = strstr(url, "://");
  if (authority != NULL && (authority[3] == '/' || authority[3] == '\0')) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "imap: URL '%s' has no host (imaps://HOST/MAILBOX)", url);
    return FALSE;
  }
  CURLU *u = curl_url();
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc != CURLUE_OK) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND, "imap: bad URL '%s': %s", url,
                curl_url_strerror(uc));
    curl_url_cleanup(u);
    return FALSE;
  }
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *password = NULL;
  char *query = NULL, *user = NULL;
  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
  curl_url_get(u, CURLUPART_PATH, &path, 0);
  curl_url_get(u, CURLUPART_PASSWORD, &password, 0);
  curl_url_get(u, CURLUPART_QUERY, &query, 0);
  curl_url_get(u, CURLUPART_USER, &user, 0);
  curl_url_cleanup(u);

  gboolean ok = FALSE;
  if (scheme == NULL || (g_ascii_strcasecmp(scheme, "imaps") != 0 &&
                         g_ascii_strcasecmp(scheme, "imap") != 0)) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "imap: URL '%s' must start with imaps:// or imap://", url);
  } else if (password != NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "imap: no password in the URL, please (--password-file FILE, "
                "TLSRPT_IMAP_PASSWORD, or ~/.netrc)");
  } else if (user != NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "imap: give the user with --user, not in the URL");
  } else if (query != NULL || (path != NULL && strchr(path, ';') != NULL)) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "imap: URL '%s': only imap[s]://HOST[:PORT]/MAILBOX is supported", url);
  } else if (host == NULL || port == NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND, "imap: URL '%s' has no host",
                url);
  } else {
    self->implicit_tls = g_ascii_strcasecmp(scheme, "imaps") == 0;
    self->host = g_ascii_strdown(host, -1);
    self->port = strtol(port, NULL, 10);
    const char *p = path != NULL ? path : "/";
    while (*p == '/')
      p++;
    gsize plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
      plen--;
    g_autofree char *enc = g_strndup(p, plen);
    if (enc[0] == '\0') {
      g_free(enc);
      enc = g_strdup("INBOX");
    }
    g_autofree char *dec = g_uri_unescape_string(enc, NULL);
    if (dec == NULL || dec[0] == '\0' || strpbrk(dec, "\r\n") != NULL) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                  "imap: URL '%s': bad mailbox name", url);
    } else {
      self->mailbox = g_steal_pointer(&dec);
      self->mailbox_wire = source_imap_mutf7_encode(self->mailbox, error);
      if (self->mailbox_wire != NULL) {
        const char *s = self->implicit_tls ? "imaps" : "imap";
        gboolean v6 = strchr(host, ':') != NULL && host[0] != '[';
        self->conn_url = g_strdup_printf("%s://%s%s%s:%ld/", s, v6 ? "[" : "", host,
                                         v6 ? "]" : "", self->port);
        g_autofree char *euser = g_uri_escape_string(self->user, NULL, FALSE);
        self->origin_base = g_strdup_printf("%s://%s@%s%s%s:%ld/%s", s, euser, v6 ? "[" : "",
                                            host, v6 ? "]" : "", self->port, enc);
        ok = TRUE;
      }
    }
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  if (password != NULL)
    explicit_bzero(password, strlen(password));
  curl_free(password);
  curl_free(query);
  curl_free(user);
  return ok;
}

/* A SOURCE_ERROR of a check becomes a CLI_ERROR @code: an option mistake, found before
 * anything is opened. */
static gboolean
source_imap_option_error(GError **error, CliError code)
{
  if (error != NULL && *error != NULL && (*error)->domain != CLI_ERROR) {
    GError *e = g_error_new_literal(CLI_ERROR, code, (*error)->message);
    g_clear_error(error);
    *error = e;
  }
  return FALSE;
}

gboolean
source_imap_check(const SourceConfig *opts, const char *url, GError **error)
{
  if (opts->imap.user == NULL || opts->imap.user[0] == '\0') {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "imap needs --user");
    return FALSE;
  }
  if (!source_imap_load_curl(error))
    return FALSE;
  SourceImap *probe = g_new0(SourceImap, 1);
  probe->user = opts->imap.user;
  gboolean ok = source_imap_parse_url(probe, url, error);
  g_free(probe->host);
  g_free(probe->mailbox);
  g_free(probe->mailbox_wire);
  g_free(probe->conn_url);
  g_free(probe->origin_base);
  g_free(probe);
  if (!ok)
    return source_imap_option_error(error, CLI_ERROR_USAGE);

  const struct {
    const char *option;
    const char *value;
  } folders[] = { { "move-to", opts->move_to }, { "error-folder", opts->imap.error_folder } };
  for (gsize i = 0; i < G_N_ELEMENTS(folders); i++) {
    if (folders[i].value == NULL)
      continue;
    if (folders[i].value[0] == '\0') {
      g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--%s: empty folder name",
                  folders[i].option);
      return FALSE;
    }
    g_autofree char *wire = source_imap_mutf7_encode(folders[i].value, error);
    if (wire == NULL) {
      g_prefix_error(error, "--%s: ", folders[i].option);
      return source_imap_option_error(error, CLI_ERROR_USAGE);
    }
  }

  /* Credentials, in the order open() takes them; nothing is sent anywhere, and the
   * token command is not run yet. */
  const TrImapOptions *im = &opts->imap;
  gboolean oauth = im->oauth2_token_command != NULL || im->oauth2_token_file != NULL;
  const char *token_option = im->oauth2_token_command != NULL ? "--oauth2-token-command"
                                                              : "--oauth2-token-file";
  const char *sasl = source_imap_sasl_name(im->sasl);
  if (im->oauth2_token_command != NULL && im->oauth2_token_file != NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--oauth2-token-command and --oauth2-token-file exclude each other");
    return FALSE;
  }
  g_autofree char *command = im->oauth2_token_command != NULL
                                 ? g_strstrip(g_strdup(im->oauth2_token_command)) : NULL;
  if (command != NULL && command[0] == '\0') {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--oauth2-token-command: empty command");
    return FALSE;
  }
  if (oauth && im->password_file != NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "%s and --password-file exclude each other (the access token replaces the "
                "password)", token_option);
    return FALSE;
  }
  if ((im->sasl == TR_SASL_XOAUTH2 || im->sasl == TR_SASL_OAUTHBEARER) && !oauth) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--sasl %s needs an access token: --oauth2-token-command CMD or "
                "--oauth2-token-file FILE", sasl);
    return FALSE;
  }
  if ((im->sasl == TR_SASL_PLAIN || im->sasl == TR_SASL_LOGIN) && oauth) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--sasl %s logs in with a password, not with the access token of %s (use "
                "--sasl xoauth2 or oauthbearer)", sasl, token_option);
    return FALSE;
  }
  if (im->oauth2_token_file != NULL) {
    char *token = source_imap_auth_read_token_file(im->oauth2_token_file, error);
    if (token == NULL)
      return source_imap_option_error(error, CLI_ERROR_CONFIG);
    source_imap_auth_free(token);
  }
  if (oauth)
    return TRUE;
  const char *env = g_getenv("TLSRPT_IMAP_PASSWORD");
  if (im->password_file != NULL) {
    char *pw = source_imap_auth_read_file(im->password_file, "password file", error);
    if (pw == NULL)
      return source_imap_option_error(error, CLI_ERROR_CONFIG);
    source_imap_auth_free(pw);
    return TRUE;
  }
  if ((env != NULL && env[0] != '\0') || opts->imap.password != NULL)
    return TRUE;
  g_autofree char *netrc = g_build_filename(g_get_home_dir(), ".netrc", NULL);
  if (g_file_test(netrc, G_FILE_TEST_EXISTS))
    return TRUE;
  g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
              "imap: no password given: use --password-file FILE, $TLSRPT_IMAP_PASSWORD, "
              "'password =' in the config file, or a machine entry in %s (there is none)",
              netrc);
  return FALSE;
}

static gpointer
source_imap_open(const SourceConfig *opts, char **args, GError **error)
{
  if (!source_imap_load_curl(error))
    return NULL;
  if (args == NULL || args[0] == NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND, "imap: no URL given");
    return NULL;
  }
  if (opts->imap.user == NULL || opts->imap.user[0] == '\0') {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_AUTH, "imap: no user name (--user)");
    return NULL;
  }
  if (opts->store_dir == NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "imap: no store directory for the mailbox state (--store)");
    return NULL;
  }

  SourceImap *self = g_new0(SourceImap, 1);
  self->store_fd = -1;
  self->lock_fd = -1;
  self->sock = CURL_SOCKET_BAD;
  self->rbuf = g_byte_array_new();
  self->uids = g_array_new(FALSE, FALSE, sizeof(guint32));
  self->meta = g_array_new(FALSE, FALSE, sizeof(SourceImapMeta));
  g_queue_init(&self->ready);
  self->batch_max = MAX(opts->batch_size, 1u);
  self->batch_bytes = SOURCE_IMAP_BATCH_BYTES;
  self->user = g_strdup(opts->imap.user);
  self->events = opts->events;
  self->starttls = opts->imap.starttls;
  self->cacert = g_strdup(opts->imap.cacert);
  self->insecure = opts->imap.insecure;
  self->all = opts->imap.all;
  self->max_message_size = opts->max_message_size;
  self->store_dir = g_strdup(opts->store_dir);
  self->io_timeout_ms = SOURCE_IMAP_IO_TIMEOUT_MS;

  if (!source_imap_parse_url(self, args[0], error))
    goto fail;
  self->move_to_name = g_strdup(opts->move_to);
  self->error_folder_name = g_strdup(opts->imap.error_folder);

  /* Credentials: an OAuth2 token (fetched at each login), else the password file,
   * the environment, the config file, ~/.netrc (libcurl). */
  const char *env = g_getenv("TLSRPT_IMAP_PASSWORD");
  self->sasl = opts->imap.sasl;
  if (opts->imap.oauth2_token_command != NULL || opts->imap.oauth2_token_file != NULL) {
    self->token_command = g_strdup(opts->imap.oauth2_token_command);
    self->token_file = self->token_command == NULL ? g_strdup(opts->imap.oauth2_token_file)
                                                   : NULL;
    self->token_timeout = opts->imap.oauth2_token_timeout;
  } else if (opts->imap.password_file != NULL) {
    self->password = source_imap_auth_read_file(opts->imap.password_file, "password file",
                                                error);
    if (self->password == NULL)
      goto fail;
    self->password_origin = g_strdup_printf("password from password file %s",
                                            opts->imap.password_file);
  } else if (env != NULL && env[0] != '\0') {
    self->password = g_strdup(env);
    self->password_origin = g_strdup("password from TLSRPT_IMAP_PASSWORD");
  } else if (opts->imap.password != NULL) {
    self->password = g_strdup(opts->imap.password);
    self->password_origin = g_strdup("password from the config file");
  } else {
    self->password_origin = g_strdup("password from ~/.netrc");
  }

  /* State and lock in the store directory. */
  if (g_mkdir_with_parents(self->store_dir, 0750) != 0) {
    source_imap_set_errno(error, errno, "mkdir", self->store_dir);
    goto fail;
  }
  self->store_fd = open(self->store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (self->store_fd < 0) {
    source_imap_set_errno(error, errno, "open", self->store_dir);
    goto fail;
  }
  {
    g_autofree char *key = g_strdup_printf("%s@%s:%ld/%s", self->user, self->host, self->port,
                                           self->mailbox);
    g_free(store_state_path(self->store_dir, "imap", key, "state", &self->state_name));
    if (!source_imap_take_lock(self, key, error))
      goto fail;
  }
  source_imap_load_state(self);

  /* Log in now: a wrong password or an untrusted certificate is reported at once, and
   * so is a folder the server refuses. */
  if (!source_imap_ensure_selected(self, FALSE, error) ||
      !source_imap_prepare_folders(self, error))
    goto fail;
  self->fresh_select = TRUE;
  return self;

fail:
  source_imap_close(self);
  return NULL;
}

/* ---- a pass ----------------------------------------------------------------------- */

static gint
source_imap_uid_cmp(gconstpointer a, gconstpointer b)
{
  guint32 x = *(const guint32 *) a, y = *(const guint32 *) b;
  return x < y ? -1 : x > y;
}

/* Append to @out the UID set of @uids[@from..] (ascending), with ranges for runs of
 * consecutive UIDs, until it holds @max_count UIDs or about @max_chars characters.
 * Returns the index of the first UID left out. */
static guint
source_imap_uid_set(const GArray *uids, guint from, guint max_count, gsize max_chars,
                    GString *out)
{
  const guint32 *u = (const guint32 *) uids->data;
  guint i = from;
  while (i < uids->len && i - from < max_count && out->len < max_chars) {
    guint j = i;
    while (j + 1 < uids->len && j + 1 - from < max_count && u[j + 1] == u[j] + 1)
      j++;
    if (out->len > 0)
      g_string_append_c(out, ',');
    if (j > i)
      g_string_append_printf(out, "%u:%u", u[i], u[j]);
    else
      g_string_append_printf(out, "%u", u[i]);
    i = j + 1;
  }
  return i;
}

static gboolean source_imap_fetch_meta(SourceImap *self, GError **error);

static gboolean
source_imap_start_pass(SourceImap *self, GError **error)
{
  /* The first pass uses the SELECT of open(); later ones select again (new UIDs,
   * UIDVALIDITY), reconnecting when the idle connection was dropped. */
  gboolean reselect = !self->fresh_select;
  self->fresh_select = FALSE;
  if (!source_imap_ensure_selected(self, reselect, error))
    return FALSE;

  guint32 floor = 0;
  if (self->have_state && self->state_uidvalidity == self->uidvalidity) {
    floor = self->state_last_uid;
  } else {
    /* The whole mailbox is fetched again: worth saying at the default level. */
    if (self->have_state)
      source_event(&self->events, SOURCE_EVENT_WARNING, self->origin_base,
                   "UIDVALIDITY changed from %u to %u: every message is fetched again "
                   "(the store skips the duplicates; last_uid %u reset to 0)",
                   self->state_uidvalidity, self->uidvalidity, self->state_last_uid);
    if (!source_imap_save_state(self, self->uidvalidity, 0, error))
      return FALSE;
  }

  g_autofree char *cmd = NULL;
  const char *which = self->all ? "" : " UNSEEN";
  if (floor > 0 && floor < G_MAXUINT32)
    cmd = g_strdup_printf("UID SEARCH UID %u:*%s", floor + 1, which);
  else
    cmd = g_strdup_printf("UID SEARCH %s", self->all ? "ALL" : "UNSEEN");
  g_autoptr(SourceImapReply) reply = source_imap_command_ok(self, cmd,
                                                            SOURCE_IMAP_SMALL_LITERAL, error);
  if (reply == NULL)
    return FALSE;
  g_array_set_size(self->uids, 0);
  for (guint i = 0; i < reply->untagged->len; i++) {
    SourceImapResponse *r = reply->untagged->pdata[i];
    if (g_ascii_strncasecmp(r->text->str, "* SEARCH", 8) != 0)
      continue;
    const char *p = r->text->str + 8;
    while (*p == ' ') {
      p++;
      guint32 uid;
      if (!source_imap_parse_u32(p, &p, &uid))
        break;
      /* "n:*" always matches the highest UID, even below n. */
      if (uid > floor)
        g_array_append_val(self->uids, uid);
    }
  }
  g_array_sort(self->uids, source_imap_uid_cmp);
  if (!source_imap_fetch_meta(self, error))
    return FALSE;
  self->pos = 0;
  self->in_pass = TRUE;
  return TRUE;
}

/* ---- FETCH responses ------------------------------------------------------------ */

typedef struct {
  gboolean have_uid;
  guint32 uid;
  gboolean have_size;
  guint64 size;
  char *internaldate;
  GBytes *body;
} SourceImapFetch;

static void
source_imap_fetch_clear(SourceImapFetch *f)
{
  g_clear_pointer(&f->internaldate, g_free);
  g_clear_pointer(&f->body, g_bytes_unref);
  memset(f, 0, sizeof *f);
}

/* A quoted string at *p (on '"'): its unescaped text (transfer full), *p after it. */
static char *
source_imap_parse_quoted(const char **pp)
{
  const char *p = *pp + 1;
  GString *s = g_string_new(NULL);
  while (*p != '\0' && *p != '"') {
    if (*p == '\\' && p[1] != '\0')
      p++;
    g_string_append_c(s, *p++);
  }
  if (*p == '"')
    p++;
  *pp = p;
  return g_string_free(s, FALSE);
}

/* A literal marker "{N}" at *p: TRUE and *p after it. */
static gboolean
source_imap_skip_literal_marker(const char **pp)
{
  const char *p = *pp;
  if (*p != '{' || !g_ascii_isdigit(p[1]))
    return FALSE;
  p++;
  while (g_ascii_isdigit(*p))
    p++;
  if (*p == '+')
    p++;
  if (*p != '}')
    return FALSE;
  *pp = p + 1;
  return TRUE;
}

/* "* N FETCH (NAME VALUE ...)": picks UID, RFC822.SIZE, INTERNALDATE and BODY[]. */
static gboolean
source_imap_parse_fetch(const SourceImapResponse *r, SourceImapFetch *f)
{
  memset(f, 0, sizeof *f);
  const char *p = r->text->str;
  guint32 seq;
  if (!g_str_has_prefix(p, "* "))
    return FALSE;
  p += 2;
  if (!source_imap_parse_u32(p, &p, &seq) || g_ascii_strncasecmp(p, " FETCH (", 8) != 0)
    return FALSE;
  p += 8;
  guint lit = 0;
  for (;;) {
    while (*p == ' ')
      p++;
    if (*p == ')' || *p == '\0')
      break;
    /* the item name, brackets included ("BODY[]", "BODY[HEADER.FIELDS (A B)]") */
    const char *name = p;
    int depth = 0;
    while (*p != '\0' && (depth > 0 || (*p != ' ' && *p != ')'))) {
      if (*p == '[')
        depth++;
      else if (*p == ']')
        depth--;
      p++;
    }
    g_autofree char *item = g_ascii_strup(name, p - name);
    while (*p == ' ')
      p++;
    /* the value */
    if (*p == '"') {
      g_autofree char *q = source_imap_parse_quoted(&p);
      if (strcmp(item, "INTERNALDATE") == 0) {
        g_free(f->internaldate);
        f->internaldate = g_steal_pointer(&q);
      } else if (strcmp(item, "BODY[]") == 0) {
        g_clear_pointer(&f->body, g_bytes_unref);
        gsize len = strlen(q);
        f->body = g_bytes_new_take(g_steal_pointer(&q), len);
      }
    } else if (*p == '{') {
      if (!source_imap_skip_literal_marker(&p) || lit >= r->literals->len)
        return FALSE;
      if (strcmp(item, "BODY[]") == 0) {
        g_clear_pointer(&f->body, g_bytes_unref);
        f->body = g_bytes_ref(r->literals->pdata[lit]);
      }
      lit++;
    } else if (*p == '(') {
      /* a list (FLAGS, ENVELOPE...): skipped, counting the literals inside */
      int level = 0;
      do {
        if (*p == '"') {
          g_free(source_imap_parse_quoted(&p));
          continue;
        }
        if (*p == '{' && source_imap_skip_literal_marker(&p)) {
          lit++;
          continue;
        }
        if (*p == '(')
          level++;
        else if (*p == ')')
          level--;
        p++;
      } while (level > 0 && *p != '\0');
    } else {
      const char *v = p;
      while (*p != '\0' && *p != ' ' && *p != ')')
        p++;
      g_autofree char *atom = g_strndup(v, p - v);
      if (strcmp(item, "UID") == 0)
        f->have_uid = source_imap_parse_u32(atom, NULL, &f->uid);
      else if (strcmp(item, "RFC822.SIZE") == 0)
        f->have_size = g_ascii_string_to_unsigned(atom, 10, 0, G_MAXUINT64, &f->size, NULL);
    }
  }
  return TRUE;
}

/* The entry of @meta for @uid, or NULL. */
static SourceImapMeta *
source_imap_find_meta(GArray *meta, guint from, guint to, guint32 uid)
{
  while (from < to) {
    guint mid = from + (to - from) / 2;
    SourceImapMeta *m = &g_array_index(meta, SourceImapMeta, mid);
    if (m->uid == uid)
      return m;
    if (m->uid < uid)
      from = mid + 1;
    else
      to = mid;
  }
  return NULL;
}

/* Sizes and dates of every UID of the search, SOURCE_IMAP_META_CHUNK at a time; a UID
 * the server does not answer for was expunged meanwhile and is dropped. */
static gboolean
source_imap_fetch_meta(SourceImap *self, GError **error)
{
  g_array_set_size(self->meta, 0);
  for (guint i = 0; i < self->uids->len;) {
    g_autoptr(GString) set = g_string_new(NULL);
    guint from = i;
    i = source_imap_uid_set(self->uids, i, SOURCE_IMAP_META_CHUNK, SOURCE_IMAP_SET_CHARS, set);
    g_autofree char *cmd = g_strdup_printf("UID FETCH %s (UID RFC822.SIZE INTERNALDATE)",
                                           set->str);
    g_autoptr(SourceImapReply) reply = source_imap_command_ok(self, cmd,
                                                              SOURCE_IMAP_SMALL_LITERAL, error);
    if (reply == NULL)
      return FALSE;
    guint first = self->meta->len;
    for (guint k = from; k < i; k++) {
      SourceImapMeta m = { g_array_index(self->uids, guint32, k), 0, 0, FALSE };
      g_array_append_val(self->meta, m);
    }
    for (guint k = 0; k < reply->untagged->len; k++) {
      SourceImapFetch f;
      if (!source_imap_parse_fetch(reply->untagged->pdata[k], &f))
        continue;
      SourceImapMeta *m = f.have_uid && f.have_size
                              ? source_imap_find_meta(self->meta, first, self->meta->len, f.uid)
                              : NULL;
      if (m != NULL) {
        m->size = f.size;
        m->answered = TRUE;
        m->received = f.internaldate ? source_imap_parse_internaldate(f.internaldate) : 0;
      }
      source_imap_fetch_clear(&f);
    }
    /* Drop what got no answer. */
    guint keep = first;
    for (guint k = first; k < self->meta->len; k++) {
      SourceImapMeta *m = &g_array_index(self->meta, SourceImapMeta, k);
      if (m->answered)
        g_array_index(self->meta, SourceImapMeta, keep++) = *m;
    }
    g_array_set_size(self->meta, keep);
  }
  return TRUE;
}

static SourceMessage *
source_imap_new_message(SourceImap *self, const SourceImapMeta *m)
{
  SourceMessage *msg = g_new0(SourceMessage, 1);
  msg->origin = g_strdup_printf("%s;UIDVALIDITY=%u/;UID=%u", self->origin_base,
                                self->uidvalidity, m->uid);
  msg->received = m->received != 0 ? m->received : g_get_real_time() / G_USEC_PER_SEC;
  return msg;
}

/* The next batch from meta[pos]: a message over --max-message-size at its head is
 * handed out as skipped (never fetched); else the following messages up to
 * batch_max / batch_bytes (at least one) are fetched with one UID FETCH and queued in
 * UID order. A UID without a body in the answer was expunged meanwhile. */
static gboolean
source_imap_fetch_batch(SourceImap *self, GError **error)
{
  SourceImapMeta *head = &g_array_index(self->meta, SourceImapMeta, self->pos);
  if (head->size > self->max_message_size) {
    SourceMessage *m = source_imap_new_message(self, head);
    m->skip_reason = g_strdup_printf("message exceeds --max-message-size (%" G_GUINT64_FORMAT
                                     " > %" G_GSIZE_FORMAT " bytes)",
                                     head->size, self->max_message_size);
    g_queue_push_tail(&self->ready, m);
    self->pos++;
    return TRUE;
  }
  guint from = self->pos, to = self->pos;
  guint64 bytes = 0;
  g_autoptr(GArray) uids = g_array_new(FALSE, FALSE, sizeof(guint32));
  while (to < self->meta->len && to - from < self->batch_max) {
    SourceImapMeta *m = &g_array_index(self->meta, SourceImapMeta, to);
    if (m->size > self->max_message_size || (to > from && bytes + m->size > self->batch_bytes))
      break;
    bytes += m->size;
    g_array_append_val(uids, m->uid);
    to++;
  }
  /* The set of a batch stays short: cut it where it would grow too long. */
  g_autoptr(GString) set = g_string_new(NULL);
  guint used = source_imap_uid_set(uids, 0, uids->len, SOURCE_IMAP_SET_CHARS, set);
  to = from + used;
  bytes = 0;
  for (guint k = from; k < to; k++)
    bytes += g_array_index(self->meta, SourceImapMeta, k).size;

  g_autofree char *cmd = g_strdup_printf("UID FETCH %s (UID BODY.PEEK[])", set->str);
  /* RFC822.SIZE is the size of BODY[]; a little slack per message for servers that
   * differ, and for the lines around the literals. */
  gsize budget = (gsize) bytes + (gsize) used * SOURCE_IMAP_LITERAL_SLACK + 1024 * 1024;
  g_autoptr(SourceImapReply) reply = source_imap_command_budget(
      self, cmd, self->max_message_size + SOURCE_IMAP_LITERAL_SLACK, budget, error);
  if (reply == NULL)
    return FALSE;
  if (strcmp(reply->status, "OK") != 0) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_PROTOCOL, "imap %s:%ld: %s: %s %s",
                self->host, self->port, cmd, reply->status, reply->text);
    return FALSE;
  }
  g_autoptr(GPtrArray) bodies = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
  g_ptr_array_set_size(bodies, (gint) used);
  for (guint k = 0; k < reply->untagged->len; k++) {
    SourceImapFetch f;
    if (!source_imap_parse_fetch(reply->untagged->pdata[k], &f))
      continue;
    SourceImapMeta *m = f.have_uid && f.body != NULL
                            ? source_imap_find_meta(self->meta, from, to, f.uid) : NULL;
    if (m != NULL) {
      guint idx = (guint) (m - &g_array_index(self->meta, SourceImapMeta, from));
      g_clear_pointer(&bodies->pdata[idx], g_bytes_unref);
      bodies->pdata[idx] = g_steal_pointer(&f.body);
    }
    source_imap_fetch_clear(&f);
  }
  g_clear_pointer(&reply, source_imap_reply_free);
  for (guint k = 0; k < used; k++) {
    if (bodies->pdata[k] == NULL)
      continue;   /* expunged since the search */
    const SourceImapMeta *m = &g_array_index(self->meta, SourceImapMeta, from + k);
    SourceMessage *msg = source_imap_new_message(self, m);
    msg->data = g_steal_pointer(&bodies->pdata[k]);
    SourceImapHandle *h = g_new0(SourceImapHandle, 1);
    h->uid = m->uid;
    h->uidvalidity = self->uidvalidity;
    msg->handle = h;
    msg->handle_free = g_free;
    g_queue_push_tail(&self->ready, msg);
  }
  self->pos = to;
  return TRUE;
}

static void
source_imap_drop_ready(SourceImap *self)
{
  SourceMessage *m;
  while ((m = g_queue_pop_head(&self->ready)) != NULL)
    source_message_free(m);
}

/* ---- next --------------------------------------------------------------------------- */

static gboolean
source_imap_next(gpointer data, SourceMessage **msg, GError **error)
{
  SourceImap *self = data;
  if (!self->in_pass && !source_imap_start_pass(self, error))
    return FALSE;
  while (g_queue_is_empty(&self->ready) && self->pos < self->meta->len) {
    if (!source_imap_fetch_batch(self, error)) {
      self->in_pass = FALSE;
      return FALSE;
    }
  }
  if (!g_queue_is_empty(&self->ready)) {
    *msg = g_queue_pop_head(&self->ready);
    return TRUE;
  }
  /* The end of the pass; the next call starts a new one. */
  self->in_pass = FALSE;
  return FALSE;
}

/* ---- commit ------------------------------------------------------------------------ */

/* UID MOVE of @set (or COPY + \Deleted + UID EXPUNGE), creating @folder on TRYCREATE. */
static gboolean
source_imap_move(SourceImap *self, const char *set, const char *folder, GError **error)
{
  g_autofree char *quoted = source_imap_quote(folder);
  for (int attempt = 0;; attempt++) {
    g_autofree char *cmd = g_strdup_printf("UID %s %s %s", self->cap_move ? "MOVE" : "COPY",
                                           set, quoted);
    g_autoptr(SourceImapReply) reply = source_imap_command(self, cmd,
                                                           SOURCE_IMAP_SMALL_LITERAL, error);
    if (reply == NULL)
      return FALSE;
    if (strcmp(reply->status, "OK") == 0)
      break;
    if (attempt == 0 && strstr(reply->text, "[TRYCREATE]") != NULL) {
      g_autofree char *create = g_strdup_printf("CREATE %s", quoted);
      g_autoptr(SourceImapReply) created = source_imap_command(self, create,
                                                               SOURCE_IMAP_SMALL_LITERAL,
                                                               error);
      if (created == NULL)
        return FALSE;
      if (strcmp(created->status, "OK") != 0 &&
          strstr(created->text, "[ALREADYEXISTS]") == NULL) {
        source_imap_folder_error(self, error, folder, "to create it", created);
        return FALSE;
      }
      continue;
    }
    g_autofree char *what = g_strdup_printf("UID %s into it", self->cap_move ? "MOVE" : "COPY");
    source_imap_folder_error(self, error, folder, what, reply);
    return FALSE;
  }
  if (self->cap_move)
    return TRUE;

  g_autofree char *store = g_strdup_printf("UID STORE %s +FLAGS.SILENT (\\Seen \\Deleted)",
                                           set);
  g_autoptr(SourceImapReply) stored = source_imap_command_ok(self, store,
                                                             SOURCE_IMAP_SMALL_LITERAL, error);
  if (stored == NULL)
    return FALSE;
  if (!self->cap_uidplus)
    return TRUE;  /* no UID EXPUNGE: a plain EXPUNGE could remove other people's mail */
  g_autofree char *expunge = g_strdup_printf("UID EXPUNGE %s", set);
  g_autoptr(SourceImapReply) expunged = source_imap_command_ok(self, expunge,
                                                               SOURCE_IMAP_SMALL_LITERAL,
                                                               error);
  return expunged != NULL;
}

/* Flag (\Seen) or move every UID of @uids (ascending), a set of at most
 * SOURCE_IMAP_SET_CHARS characters per command. */
static gboolean
source_imap_ack_set(SourceImap *self, GArray *uids, const char *folder, GError **error)
{
  g_array_sort(uids, source_imap_uid_cmp);
  for (guint i = 0; i < uids->len;) {
    g_autoptr(GString) set = g_string_new(NULL);
    i = source_imap_uid_set(uids, i, G_MAXUINT, SOURCE_IMAP_SET_CHARS, set);
    if (folder != NULL) {
      if (!source_imap_move(self, set->str, folder, error))
        return FALSE;
      continue;
    }
    g_autofree char *cmd = g_strdup_printf("UID STORE %s +FLAGS.SILENT (\\Seen)", set->str);
    g_autoptr(SourceImapReply) reply = source_imap_command_ok(self, cmd,
                                                              SOURCE_IMAP_SMALL_LITERAL,
                                                              error);
    if (reply == NULL)
      return FALSE;
  }
  return TRUE;
}

/* The messages of one durable batch: one command per outcome (STORE \Seen, MOVE to
 * --move-to, MOVE to --error-folder), then last_uid. Not reports are left as they
 * are, but never fetched again. */
static gboolean
source_imap_commit_batch(gpointer data, SourceMessage *const *msgs,
                         const SourceOutcome *outcomes, guint n, GError **error)
{
  SourceImap *self = data;
  if (n == 0)
    return TRUE;
  guint32 uidvalidity = ((SourceImapHandle *) msgs[0]->handle)->uidvalidity;
  for (guint i = 1; i < n; i++) {
    if (((SourceImapHandle *) msgs[i]->handle)->uidvalidity != uidvalidity) {
      /* From two passes with a UIDVALIDITY change between them: one after the other. */
      return source_imap_commit_batch(self, msgs, outcomes, i, error) &&
             source_imap_commit_batch(self, msgs + i, outcomes + i, n - i, error);
    }
  }
  g_autoptr(GArray) seen = g_array_new(FALSE, FALSE, sizeof(guint32));
  g_autoptr(GArray) moved = g_array_new(FALSE, FALSE, sizeof(guint32));
  g_autoptr(GArray) errors = g_array_new(FALSE, FALSE, sizeof(guint32));
  guint32 max_uid = 0;
  for (guint i = 0; i < n; i++) {
    SourceImapHandle *h = msgs[i]->handle;
    g_assert(h != NULL);
    max_uid = MAX(max_uid, h->uid);
    switch (outcomes[i]) {
    case SOURCE_OUTCOME_NOT_REPORT:
      break;    /* left unseen and in place */
    case SOURCE_OUTCOME_QUARANTINED:
      if (self->error_folder != NULL) {
        g_array_append_val(errors, h->uid);
        break;
      }
      /* no error folder: handled like a stored message */
      G_GNUC_FALLTHROUGH;
    case SOURCE_OUTCOME_STORED:
    case SOURCE_OUTCOME_DUPLICATE:
      g_array_append_val(self->move_to != NULL ? moved : seen, h->uid);
      break;
    }
  }

  if (seen->len + moved->len + errors->len > 0) {
    /* After a lost connection (the pipeline still acknowledges what it stored). */
    if (!source_imap_ensure_selected(self, FALSE, error))
      return FALSE;
    if (self->uidvalidity != uidvalidity) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_PROTOCOL,
                  "imap %s: UIDVALIDITY changed from %u to %u since UID %u was fetched; "
                  "it is left for the next run", self->origin_base, uidvalidity,
                  self->uidvalidity, max_uid);
      return FALSE;
    }
    if (!source_imap_ack_set(self, moved, self->move_to, error) ||
        !source_imap_ack_set(self, errors, self->error_folder, error) ||
        !source_imap_ack_set(self, seen, NULL, error))
      return FALSE;
  }

  /* Acknowledged: never fetch them again (also with --all, or if \Seen gets lost). */
  if (!self->have_state || self->state_uidvalidity != uidvalidity ||
      max_uid > self->state_last_uid)
    return source_imap_save_state(self, uidvalidity,
                                  self->have_state && self->state_uidvalidity == uidvalidity
                                      ? MAX(max_uid, self->state_last_uid) : max_uid,
                                  error);
  return TRUE;
}

static gboolean
source_imap_commit(gpointer data, SourceMessage *msg, SourceOutcome outcome, GError **error)
{
  return source_imap_commit_batch(data, &msg, &outcome, 1, error);
}

/* ---- close --------------------------------------------------------------------------- */

static void
source_imap_close(gpointer data)
{
  SourceImap *self = data;
  if (self == NULL)
    return;
  if (self->curl != NULL) {
    /* A polite LOGOUT, not waited for long. */
    self->io_timeout_ms = SOURCE_IMAP_LOGOUT_TIMEOUT_MS;
    g_autoptr(SourceImapReply) reply = source_imap_command(self, "LOGOUT",
                                                           SOURCE_IMAP_SMALL_LITERAL, NULL);
  }
  source_event(&self->events, SOURCE_EVENT_DEBUG, NULL,
               "imap %s: %u commands after the login", self->origin_base, self->commands);
  source_imap_disconnect(self);
  source_imap_drop_ready(self);
  if (self->lock_fd >= 0)
    close(self->lock_fd);
  if (self->store_fd >= 0)
    close(self->store_fd);
  g_free(self->user);
  source_imap_auth_free(self->password);
  source_imap_auth_free(self->token);
  g_free(self->token_command);
  g_free(self->token_file);
  g_free(self->password_origin);
  g_free(self->cacert);
  g_free(self->move_to_name);
  g_free(self->error_folder_name);
  g_free(self->move_to);
  g_free(self->error_folder);
  g_free(self->conn_url);
  g_free(self->host);
  g_free(self->mailbox);
  g_free(self->mailbox_wire);
  g_free(self->origin_base);
  g_free(self->store_dir);
  g_free(self->state_name);
  g_byte_array_unref(self->rbuf);
  g_array_unref(self->uids);
  g_array_unref(self->meta);
  g_free(self);
}

/* ---- tests ------------------------------------------------------------------------ */

char *
source_imap_test_fetch_batch(const guint32 *uids, const guint64 *sizes, guint n,
                             guint batch_max, gsize batch_bytes, gsize max_message_size,
                             GBytes *canned, gsize step, GError **error)
{
  SourceImap *self = g_new0(SourceImap, 1);
  self->store_fd = self->lock_fd = -1;
  self->sock = CURL_SOCKET_BAD;
  self->rbuf = g_byte_array_new();
  self->uids = g_array_new(FALSE, FALSE, sizeof(guint32));
  self->meta = g_array_new(FALSE, FALSE, sizeof(SourceImapMeta));
  g_queue_init(&self->ready);
  self->host = g_strdup("canned");
  self->origin_base = g_strdup("imap://test@canned:143/INBOX");
  self->uidvalidity = 1;
  self->batch_max = MAX(batch_max, 1u);
  self->batch_bytes = batch_bytes;
  self->max_message_size = max_message_size;
  self->io_timeout_ms = 1000;
  gsize len = 0;
  self->canned = g_bytes_get_data(canned, &len);
  self->canned_len = len;
  self->canned_step = step;
  for (guint i = 0; i < n; i++) {
    SourceImapMeta m = { uids[i], sizes[i], 0, TRUE };
    g_array_append_val(self->meta, m);
  }
  /* One line per message handed out: "UID LEN SHA256" or "UID skipped"; then one per
   * FETCH sent: "fetch SET". */
  g_autoptr(GString) out = g_string_new(NULL);
  g_autoptr(GString) cmds = g_string_new(NULL);
  gboolean ok = TRUE;
  while (ok && self->pos < self->meta->len) {
    guint before = self->commands;
    guint from = self->pos;
    ok = source_imap_fetch_batch(self, error);
    if (self->commands > before)
      g_string_append_printf(cmds, "fetch %u..%u\n", from, self->pos - 1);
    SourceMessage *m;
    while ((m = g_queue_pop_head(&self->ready)) != NULL) {
      const char *uid = strrchr(m->origin, '=') + 1;
      if (m->data == NULL) {
        g_string_append_printf(out, "%s skipped\n", uid);
      } else {
        g_autofree char *sha = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, m->data);
        g_string_append_printf(out, "%s %" G_GSIZE_FORMAT " %s\n", uid,
                               g_bytes_get_size(m->data), sha);
      }
      source_message_free(m);
    }
  }
  g_string_append(out, cmds->str);
  source_imap_close(self);
  return ok ? g_string_free(g_steal_pointer(&out), FALSE) : NULL;
}

const SourceOps source_imap_ops = {
  "imap", source_imap_open, source_imap_next, source_imap_commit, source_imap_close, NULL,
  source_imap_commit_batch,
};
