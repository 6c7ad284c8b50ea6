/* source-http.c - the HTTPS receiver (RFC 8460 §5.4) as a pipeline source; see
 * source-http.h. libmicrohttpd parses HTTP and speaks TLS; this file routes, checks the
 * media type and the limits, collects bodies, hands them to the pipeline as raw reports
 * and answers each request from commit(), once its report is durable. */
#include "source-http.h"

#include "decode.h"
#include "report.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

/* libmicrohttpd is loaded with dlopen() when a server starts, not linked: it brings
 * GnuTLS and its eight dependencies, whose loading would cost every `mda` delivery
 * some 6 ms. TLSRPT_LIBMHD_SONAME is the library the build found (CMake). */
#ifndef TLSRPT_LIBMHD_SONAME
#define TLSRPT_LIBMHD_SONAME "libmicrohttpd.so.12"
#endif

#define SOURCE_HTTP_MHD_FUNCTIONS(X)                                                     \
  X(MHD_start_daemon) X(MHD_stop_daemon) X(MHD_quiesce_daemon) X(MHD_get_daemon_info)     \
  X(MHD_get_connection_info) X(MHD_lookup_connection_value) X(MHD_queue_response)        \
  X(MHD_suspend_connection) X(MHD_resume_connection) X(MHD_create_response_from_buffer)  \
  X(MHD_add_response_header) X(MHD_destroy_response) X(MHD_get_version)                  \
  X(MHD_is_feature_supported)

#define SOURCE_HTTP_MHD_POINTER(name) static __typeof__(name) *source_http_##name;
SOURCE_HTTP_MHD_FUNCTIONS(SOURCE_HTTP_MHD_POINTER)
#undef SOURCE_HTTP_MHD_POINTER

static char *source_http_mhd_error; /* why libmicrohttpd could not be loaded, or NULL */

static gboolean
source_http_load_mhd(GError **error)
{
  static gsize loaded = 0;
  if (g_once_init_enter(&loaded)) {
    void *lib = dlopen(TLSRPT_LIBMHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
      lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
      const char *why = dlerror();
      source_http_mhd_error = g_strdup(why != NULL ? why : TLSRPT_LIBMHD_SONAME);
    } else {
#define SOURCE_HTTP_MHD_LOAD(name)                                                       \
  if (source_http_mhd_error == NULL) {                                                   \
    *(void **) (&source_http_##name) = dlsym(lib, #name);                                \
    if (source_http_##name == NULL)                                                      \
      source_http_mhd_error = g_strdup_printf("%s: no symbol %s", TLSRPT_LIBMHD_SONAME,  \
                                              #name);                                    \
  }
      SOURCE_HTTP_MHD_FUNCTIONS(SOURCE_HTTP_MHD_LOAD)
#undef SOURCE_HTTP_MHD_LOAD
    }
    g_once_init_leave(&loaded, 1);
  }
  if (source_http_mhd_error != NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO,
                "serve: cannot load libmicrohttpd (Debian package libmicrohttpd12): %s",
                source_http_mhd_error);
    return FALSE;
  }
  return TRUE;
}

/* From here on, every MHD_*() call goes through the loaded pointers. */
#define MHD_start_daemon                source_http_MHD_start_daemon
#define MHD_stop_daemon                 source_http_MHD_stop_daemon
#define MHD_quiesce_daemon              source_http_MHD_quiesce_daemon
#define MHD_get_daemon_info             source_http_MHD_get_daemon_info
#define MHD_get_connection_info         source_http_MHD_get_connection_info
#define MHD_lookup_connection_value     source_http_MHD_lookup_connection_value
#define MHD_queue_response              source_http_MHD_queue_response
#define MHD_suspend_connection          source_http_MHD_suspend_connection
#define MHD_resume_connection           source_http_MHD_resume_connection
#define MHD_create_response_from_buffer source_http_MHD_create_response_from_buffer
#define MHD_add_response_header         source_http_MHD_add_response_header
#define MHD_destroy_response            source_http_MHD_destroy_response
#define MHD_get_version                 source_http_MHD_get_version
#define MHD_is_feature_supported        source_http_MHD_is_feature_supported

const char *
source_http_library_version(void)
{
  g_autoptr(GError) error = NULL;
  if (!source_http_load_mhd(&error))
    return "libmicrohttpd not loadable";
  static char version[64];
  static gsize once = 0;
  if (g_once_init_enter(&once)) {
    g_snprintf(version, sizeof version, "libmicrohttpd %s", MHD_get_version());
    g_once_init_leave(&once, 1);
  }
  return version;
}

/* ---- limits that are not options ------------------------------------------ */

#define SOURCE_HTTP_MAX_BUFFERED   (256u * 1024 * 1024) /* bodies held, every request */
#define SOURCE_HTTP_RETRY_AFTER    "5"                  /* seconds, 503 */
#define SOURCE_HTTP_MAX_RATE_PEERS 65536u               /* rate buckets kept */
#define SOURCE_HTTP_SWEEP_US       (100 * 1000)
#define SOURCE_HTTP_STOP_WAIT_US   (5 * G_USEC_PER_SEC) /* answers sent at a stop */

void
source_http_config_init(SourceHttpConfig *cfg)
{
  memset(cfg, 0, sizeof *cfg);
  cfg->path = g_strdup("/v1/tlsrpt");
  cfg->max_body = TR_DEFAULT_MAX_REPORT_SIZE;
  cfg->max_connections = 1024;
  cfg->max_per_ip = 32;
  cfg->timeout = 30;
  cfg->rate = 20;
  cfg->window_ms = 5;
}

void
source_http_config_clear(SourceHttpConfig *cfg)
{
  g_strfreev(cfg->listen);
  g_free(cfg->path);
  g_free(cfg->tls_cert);
  g_free(cfg->tls_key);
  g_strfreev(cfg->domains);
  memset(cfg, 0, sizeof *cfg);
}

/* ---- the pure helpers ------------------------------------------------------ */

int
source_http_media_type(const char *content_type)
{
  if (content_type == NULL)
    return -1;
  const char *end = strchr(content_type, ';');
  gsize len = end != NULL ? (gsize) (end - content_type) : strlen(content_type);
  while (len > 0 && (content_type[len - 1] == ' ' || content_type[len - 1] == '\t'))
    len--;
  while (len > 0 && (*content_type == ' ' || *content_type == '\t')) {
    content_type++;
    len--;
  }
  static const char json[] = "application/tlsrpt+json";
  static const char gzip[] = "application/tlsrpt+gzip";
  if (len == sizeof json - 1 && g_ascii_strncasecmp(content_type, json, len) == 0)
    return 0;
  if (len == sizeof gzip - 1 && g_ascii_strncasecmp(content_type, gzip, len) == 0)
    return 1;
  return -1;
}

gboolean
source_http_encoding_ok(const char *enc)
{
  if (enc == NULL)
    return TRUE;
  g_autofree char *e = g_strstrip(g_strdup(enc));
  return *e == '\0' || g_ascii_strcasecmp(e, "identity") == 0 ||
         g_ascii_strcasecmp(e, "gzip") == 0 || g_ascii_strcasecmp(e, "x-gzip") == 0;
}

char *
source_http_one_line(const char *text, gsize max)
{
  if (text == NULL)
    return g_strdup("");
  gsize len = strlen(text);
  gboolean cut = len > max;
  if (cut)
    len = max > 3 ? max - 3 : 0;
  char *out = g_malloc(len + 4);
  for (gsize i = 0; i < len; i++) {
    guchar c = (guchar) text[i];
    out[i] = c >= 0x20 && c < 0x7f ? (char) c : '?';
  }
  if (cut) {
    memcpy(out + len, "...", 3);
    len += 3;
  }
  out[len] = '\0';
  return out;
}

guint
source_http_status_for(SourceOutcome outcome, const GError *error)
{
  switch (outcome) {
  case SOURCE_OUTCOME_STORED:
    return MHD_HTTP_CREATED;
  case SOURCE_OUTCOME_DUPLICATE:
    return MHD_HTTP_OK;
  case SOURCE_OUTCOME_NOT_REPORT:
    return MHD_HTTP_BAD_REQUEST;
  case SOURCE_OUTCOME_QUARANTINED:
    if (g_error_matches(error, DECODE_ERROR, DECODE_ERROR_TOO_LARGE))
      return MHD_HTTP_CONTENT_TOO_LARGE;
    if (g_error_matches(error, REPORT_ERROR, REPORT_ERROR_NOT_OURS) ||
        g_error_matches(error, REPORT_ERROR, REPORT_ERROR_UNTRUSTED))
      return MHD_HTTP_FORBIDDEN;
    return MHD_HTTP_BAD_REQUEST;
  }
  return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* ---- state ---------------------------------------------------------------- */

/* One TCP connection (libmicrohttpd's socket context). Under SourceHttp.lock. */
typedef struct {
  int fd;
  char peer[INET6_ADDRSTRLEN];
  gboolean limited;           /* the per-IP limits apply to this peer */
  gboolean loopback;          /* a peer on this host (a reverse proxy) */
  gint64 deadline;            /* monotonic µs by which the request must be complete;
                                 G_MAXINT64 while the pipeline has it */
  gboolean cut;               /* shut down by the sweeper */
} HttpConn;

typedef enum {
  HTTP_REQ_RECEIVING,         /* body arriving */
  HTTP_REQ_DISCARDING,        /* body over the cap: read and dropped, then 413 */
  HTTP_REQ_WAITING,           /* body handed on, connection suspended */
  HTTP_REQ_ANSWERED,          /* answer decided, connection resumed */
  HTTP_REQ_DONE,              /* answer queued to libmicrohttpd */
} HttpReqState;

typedef struct SourceHttpListener SourceHttpListener;

typedef struct {
  gint refs;
  SourceHttp *server;
  struct MHD_Connection *conn;
  HttpReqState state;         /* under SourceHttp.lock */
  GByteArray *body;
  gsize reserved;             /* bytes counted in SourceHttp.buffered */
  gint64 received;            /* wall clock, epoch seconds */
  gint64 started_us;          /* monotonic, for the log */
  char peer[INET6_ADDRSTRLEN];
  guint status;
  char *text;                 /* the answer's one line */
  const char *retry_after;    /* header value or NULL */
  gboolean answering;         /* counted in SourceHttp.answering */
  const char *scheme;         /* "https" or "http": the transport the sender used */
} HttpRequest;

/* A reverse proxy on this host (the peer is loopback) names the sender: the last
 * address of X-Forwarded-For (the one the proxy itself saw) and X-Forwarded-Proto.
 * Only a literal IP address is taken: it is the peer of the origin and the log line. */
gboolean
source_http_forwarded_for(const char *xff, char out[INET6_ADDRSTRLEN])
{
  if (xff == NULL)
    return FALSE;
  const char *last = strrchr(xff, ',');
  g_autofree char *addr = g_strstrip(g_strdup(last != NULL ? last + 1 : xff));
  guint8 buf[sizeof(struct in6_addr)];
  if (strlen(addr) >= INET6_ADDRSTRLEN ||
      (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1))
    return FALSE;
  g_strlcpy(out, addr, INET6_ADDRSTRLEN);
  return TRUE;
}

static void
http_forwarded(struct MHD_Connection *conn, HttpRequest *req)
{
  char addr[INET6_ADDRSTRLEN];
  if (source_http_forwarded_for(
          MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For"), addr))
    g_strlcpy(req->peer, addr, sizeof req->peer);
  const char *proto = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
  if (proto != NULL && g_ascii_strcasecmp(proto, "https") == 0)
    req->scheme = "https";
}

struct SourceHttpListener {
  int fd;                     /* ours until handed to a daemon */
  char *name;                 /* "127.0.0.1:8080" */
  guint port;
  struct MHD_Daemon *daemon;
};

struct SourceHttp {
  SourceHttpConfig cfg;
  gboolean https;
  char *scheme;               /* "https" or "http": the origin's prefix */
  GMutex lock;
  GCond cond;                 /* next(): a body arrived, a request ended, stop */
  GQueue waiting;             /* SourceMessage*: complete bodies not yet taken */
  guint receiving;            /* requests whose body is arriving */
  guint held;                 /* requests whose body the pipeline has, not answered yet */
  guint answering;            /* answered from commit(), not yet sent */
  guint handed;               /* messages handed out since the last idle flush */
  gint64 first_handed_us;
  gboolean stopping;
  gboolean store_failing;     /* the last commit failed (healthz says so) */
  gsize buffered;             /* body bytes held, over every request */
  GHashTable *conns;          /* HttpConn* set */
  GHashTable *per_ip;         /* peer -> GUINT_TO_POINTER(open connections) */
  GHashTable *rate;           /* peer -> HttpBucket* */
  GPtrArray *listeners;       /* SourceHttpListener* */
  GPtrArray *retired;         /* struct MHD_Daemon*: quiesced by a reload */
  GPtrArray *pems;            /* char*: every certificate and key loaded (daemons keep
                                 pointers into them) */
  GThread *sweeper;
  gboolean sweeper_quit;
  GMutex reload_lock;
};

typedef struct {
  double tokens;
  gint64 last_us;
} HttpBucket;

static HttpRequest *
http_request_ref(HttpRequest *req)
{
  g_atomic_int_inc(&req->refs);
  return req;
}

static void
http_request_unref(HttpRequest *req)
{
  if (!g_atomic_int_dec_and_test(&req->refs))
    return;
  if (req->reserved > 0) {
    g_mutex_lock(&req->server->lock);
    req->server->buffered -= req->reserved;
    g_mutex_unlock(&req->server->lock);
  }
  if (req->body != NULL)
    g_byte_array_unref(req->body);
  g_free(req->text);
  g_free(req);
}

/* ---- answers --------------------------------------------------------------- */

static enum MHD_Result
http_respond(struct MHD_Connection *conn, guint status, const char *line,
             const char *retry_after, const char *allow)
{
  g_autofree char *text = g_strconcat(line, "\n", NULL);
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  if (retry_after != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
  if (allow != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result ret = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* The one line of a request answered here, before the pipeline has it (the pipeline
 * says the line of the others, ending with msg->answer). Any thread. */
static void
http_log(SourceHttp *self, const char *peer, const char *method, const char *url,
         guint status, const char *what)
{
  g_autofree char *u = source_http_one_line(url, 200);
  g_autofree char *m = source_http_one_line(method, 16);
  SourceEventLevel level = status >= 500   ? SOURCE_EVENT_WARNING
                           : status >= 400 ? SOURCE_EVENT_INFO
                                           : SOURCE_EVENT_VERBOSE;
  source_event(&self->cfg.events, level, peer, "\"%s %s\" %u %s", m, u, status, what);
}

/* An early answer, before any body is taken (logged here). */
static enum MHD_Result
http_reject(SourceHttp *self, struct MHD_Connection *conn, const char *peer,
            const char *method, const char *url, guint status, const char *line,
            const char *retry_after, const char *allow)
{
  http_log(self, peer, method, url, status, line);
  return http_respond(conn, status, line, retry_after, allow);
}

/* Decide the answer of a waiting request and wake its connection (any thread). */
static void
http_answer(HttpRequest *req, guint status, char *text_take, const char *retry_after)
{
  SourceHttp *self = req->server;
  g_mutex_lock(&self->lock);
  if (req->state != HTTP_REQ_WAITING) {
    g_mutex_unlock(&self->lock);
    g_free(text_take);
    return;
  }
  req->state = HTTP_REQ_ANSWERED;
  self->held--;
  req->status = status;
  req->text = text_take;
  req->retry_after = retry_after;
  self->answering++;
  req->answering = TRUE;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  HttpConn *hc = ci != NULL ? ci->socket_context : NULL;
  if (hc != NULL)
    hc->deadline = g_get_monotonic_time() + (gint64) self->cfg.timeout * G_USEC_PER_SEC;
  g_mutex_unlock(&self->lock);
  MHD_resume_connection(req->conn);
}

/* ---- libmicrohttpd callbacks ------------------------------------------------ */

static gboolean
http_peer_is_loopback(const struct sockaddr *sa)
{
  if (sa->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a))
      return TRUE;
    return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
  }
  return FALSE;
}

static void
http_peer_name(const struct sockaddr *sa, char out[INET6_ADDRSTRLEN])
{
  out[0] = '\0';
  if (sa == NULL)
    g_strlcpy(out, "?", INET6_ADDRSTRLEN);
  else if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, out, INET6_ADDRSTRLEN);
  else if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a))
      inet_ntop(AF_INET, &a->s6_addr[12], out, INET6_ADDRSTRLEN);
    else
      inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
  } else
    g_strlcpy(out, "?", INET6_ADDRSTRLEN);
}

static enum MHD_Result
http_accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
  SourceHttp *self = cls;
  char peer[INET6_ADDRSTRLEN];
  http_peer_name(addr, peer);
  gboolean ok = TRUE;
  g_mutex_lock(&self->lock);
  if (g_hash_table_size(self->conns) >= self->cfg.max_connections) {
    ok = FALSE;
  } else if (self->cfg.max_per_ip > 0 &&
             (self->cfg.limit_loopback || !http_peer_is_loopback(addr))) {
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(self->per_ip, peer));
    ok = n < self->cfg.max_per_ip;
  }
  g_mutex_unlock(&self->lock);
  if (!ok)
    source_event(&self->cfg.events, SOURCE_EVENT_INFO, peer,
                 "connection refused: too many connections");
  return ok ? MHD_YES : MHD_NO;
}

static void
http_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe)
{
  SourceHttp *self = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    HttpConn *hc = g_new0(HttpConn, 1);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    hc->fd = ci != NULL ? ci->connect_fd : -1;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
    http_peer_name(sa, hc->peer);
    hc->loopback = sa != NULL && http_peer_is_loopback(sa);
    hc->limited = self->cfg.limit_loopback || !hc->loopback;
    hc->deadline = g_get_monotonic_time() + (gint64) self->cfg.timeout * G_USEC_PER_SEC;
    g_mutex_lock(&self->lock);
    g_hash_table_add(self->conns, hc);
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(self->per_ip, hc->peer));
    g_hash_table_insert(self->per_ip, g_strdup(hc->peer), GUINT_TO_POINTER(n + 1));
    g_mutex_unlock(&self->lock);
    *socket_context = hc;
  } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
    HttpConn *hc = *socket_context;
    if (hc == NULL)
      return;
    /* Called before libmicrohttpd closes the socket: the sweeper, which shuts sockets
     * down under the same lock, never touches a descriptor reused by another. */
    g_mutex_lock(&self->lock);
    g_hash_table_remove(self->conns, hc);
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(self->per_ip, hc->peer));
    if (n <= 1)
      g_hash_table_remove(self->per_ip, hc->peer);
    else
      g_hash_table_insert(self->per_ip, g_strdup(hc->peer), GUINT_TO_POINTER(n - 1));
    g_mutex_unlock(&self->lock);
    g_free(hc);
    *socket_context = NULL;
  }
}

static void
http_request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
  SourceHttp *self = cls;
  HttpRequest *req = *con_cls;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  HttpConn *hc = ci != NULL ? ci->socket_context : NULL;
  g_mutex_lock(&self->lock);
  if (hc != NULL)
    hc->deadline = g_get_monotonic_time() + (gint64) self->cfg.timeout * G_USEC_PER_SEC;
  if (req != NULL) {
    if (req->state == HTTP_REQ_RECEIVING) {
      /* The client went away (or was cut) before its body was complete. */
      self->receiving--;
      g_cond_broadcast(&self->cond);
    } else if (req->state == HTTP_REQ_WAITING) {
      /* Ended while the pipeline has it: its answer has nowhere to go. */
      req->state = HTTP_REQ_DONE;
      self->held--;
    } else if (req->answering) {
      req->answering = FALSE;
      self->answering--;
      g_cond_broadcast(&self->cond);
    }
  }
  g_mutex_unlock(&self->lock);
  if (req != NULL) {
    if (req->state == HTTP_REQ_RECEIVING && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
      source_event(&self->cfg.events, SOURCE_EVENT_INFO, req->peer,
                   "request ended before its body was complete (%u bytes received)",
                   req->body != NULL ? req->body->len : 0);
    http_request_unref(req);
    *con_cls = NULL;
  }
}

/* Take @n more body bytes into the budget of every request. */
static gboolean
http_reserve(SourceHttp *self, HttpRequest *req, gsize n)
{
  gboolean ok;
  g_mutex_lock(&self->lock);
  ok = self->buffered + n <= SOURCE_HTTP_MAX_BUFFERED;
  if (ok) {
    self->buffered += n;
    req->reserved += n;
  }
  g_mutex_unlock(&self->lock);
  return ok;
}

/* Per-IP token bucket: FALSE (and *retry seconds) when @peer is over its rate. */
static gboolean
http_rate_ok(SourceHttp *self, const char *peer, guint *retry)
{
  double rate = self->cfg.rate;
  double burst = MAX(1.0, 2 * rate);
  gint64 now = g_get_monotonic_time();
  gboolean ok;
  g_mutex_lock(&self->lock);
  HttpBucket *b = g_hash_table_lookup(self->rate, peer);
  if (b == NULL) {
    if (g_hash_table_size(self->rate) >= SOURCE_HTTP_MAX_RATE_PEERS) {
      /* Forget the peers whose bucket is full again: they are not over any rate. */
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init(&it, self->rate);
      while (g_hash_table_iter_next(&it, &k, &v)) {
        HttpBucket *o = v;
        if (o->tokens + (now - o->last_us) / 1e6 * rate >= burst)
          g_hash_table_iter_remove(&it);
      }
    }
    b = g_new(HttpBucket, 1);
    b->tokens = burst;
    b->last_us = now;
    g_hash_table_insert(self->rate, g_strdup(peer), b);
  }
  b->tokens = MIN(burst, b->tokens + (now - b->last_us) / 1e6 * rate);
  b->last_us = now;
  ok = b->tokens >= 1.0;
  if (ok)
    b->tokens -= 1.0;
  else
    *retry = (guint) MAX(1.0, ceil((1.0 - b->tokens) / rate));
  g_mutex_unlock(&self->lock);
  return ok;
}

static void http_message_release(gpointer data);

/* The first call of a request: route it, check what can be checked before its body. */
static enum MHD_Result
http_begin(SourceHttp *self, struct MHD_Connection *conn, HttpConn *hc, const char *url,
           const char *method, void **con_cls)
{
  const char *peer = hc != NULL ? hc->peer : "?";
  gboolean is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                    strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

  if (strcmp(url, "/healthz") == 0) {
    if (!is_get)
      return http_reject(self, conn, peer, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                         "method not allowed: GET /healthz", NULL, "GET, HEAD");
    g_mutex_lock(&self->lock);
    gboolean stopping = self->stopping, failing = self->store_failing;
    g_mutex_unlock(&self->lock);
    guint status = stopping || failing ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK;
    const char *line = stopping ? "stopping" : failing ? "store failing" : "ok";
    source_event(&self->cfg.events, SOURCE_EVENT_DEBUG, peer, "\"%s /healthz\" %u %s",
                 method, status, line);
    return http_respond(conn, status, line, status == MHD_HTTP_OK ? NULL : SOURCE_HTTP_RETRY_AFTER,
                        NULL);
  }
  if (strcmp(url, self->cfg.path) != 0)
    return http_reject(self, conn, peer, method, url, MHD_HTTP_NOT_FOUND,
                       "not found: reports are POSTed to the report path", NULL, NULL);
  if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
    return http_reject(self, conn, peer, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                       "method not allowed: reports are POSTed", NULL, "POST");

  g_mutex_lock(&self->lock);
  gboolean stopping = self->stopping;
  g_mutex_unlock(&self->lock);
  if (stopping)
    return http_reject(self, conn, peer, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
                       "shutting down, retry later", SOURCE_HTTP_RETRY_AFTER, NULL);

  guint retry = 0;
  if (self->cfg.rate > 0 && (hc == NULL || hc->limited) && !http_rate_ok(self, peer, &retry)) {
    char ra[16];
    g_snprintf(ra, sizeof ra, "%u", retry);
    http_log(self, peer, method, url, MHD_HTTP_TOO_MANY_REQUESTS, "too many requests");
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen("too many requests\n"), (void *) "too many requests\n", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
      return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_TOO_MANY_REQUESTS, resp);
    MHD_destroy_response(resp);
    return ret;
  }

  const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_TYPE);
  if (source_http_media_type(ctype) < 0) {
    g_autofree char *ct = source_http_one_line(ctype != NULL ? ctype : "none", 80);
    g_autofree char *line = g_strdup_printf(
        "unsupported media type %s: application/tlsrpt+gzip or application/tlsrpt+json",
        ct);
    return http_reject(self, conn, peer, method, url, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, line,
                       NULL, NULL);
  }
  const char *cenc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_ENCODING);
  if (!source_http_encoding_ok(cenc)) {
    g_autofree char *ce = source_http_one_line(cenc, 40);
    g_autofree char *line =
        g_strdup_printf("unsupported content encoding %s: gzip or none", ce);
    return http_reject(self, conn, peer, method, url, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, line,
                       NULL, NULL);
  }

  const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
  const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_TRANSFER_ENCODING);
  gboolean chunked = te != NULL && g_ascii_strcasecmp(te, "chunked") == 0;
  guint64 length = 0;
  if (clen != NULL) {
    /* libmicrohttpd already refused a malformed length (400). */
    length = g_ascii_strtoull(clen, NULL, 10);
    if (length > self->cfg.max_body) {
      g_autofree char *line = g_strdup_printf(
          "report too large: %" G_GUINT64_FORMAT " bytes, the limit is %" G_GSIZE_FORMAT,
          length, self->cfg.max_body);
      return http_reject(self, conn, peer, method, url, MHD_HTTP_CONTENT_TOO_LARGE, line,
                         NULL, NULL);
    }
    if (length == 0)
      return http_reject(self, conn, peer, method, url, MHD_HTTP_BAD_REQUEST,
                         "empty body: a report is expected", NULL, NULL);
  } else if (!chunked) {
    return http_reject(self, conn, peer, method, url, MHD_HTTP_LENGTH_REQUIRED,
                       "length required: send Content-Length (or a chunked body)", NULL,
                       NULL);
  }

  HttpRequest *req = g_new0(HttpRequest, 1);
  req->refs = 1;
  req->server = self;
  req->conn = conn;
  req->state = HTTP_REQ_RECEIVING;
  req->received = g_get_real_time() / G_USEC_PER_SEC;
  req->started_us = g_get_monotonic_time();
  g_strlcpy(req->peer, peer, sizeof req->peer);
  req->scheme = self->scheme;
  if (hc != NULL && hc->loopback)
    http_forwarded(conn, req);
  if (!http_reserve(self, req, (gsize) length)) {
    http_request_unref(req);
    return http_reject(self, conn, peer, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
                       "too many reports in flight, retry later", SOURCE_HTTP_RETRY_AFTER,
                       NULL);
  }
  req->body = g_byte_array_sized_new((guint) MIN(length, (guint64) 1024 * 1024));
  g_mutex_lock(&self->lock);
  self->receiving++;
  g_mutex_unlock(&self->lock);
  *con_cls = req;
  return MHD_YES;
}

static enum MHD_Result
http_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
            const char *version, const char *upload_data, size_t *upload_data_size,
            void **con_cls)
{
  SourceHttp *self = cls;
  HttpRequest *req = *con_cls;
  if (req == NULL) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return http_begin(self, conn, ci != NULL ? ci->socket_context : NULL, url, method,
                      con_cls);
  }

  g_mutex_lock(&self->lock);
  HttpReqState state = req->state;
  g_mutex_unlock(&self->lock);

  if (state == HTTP_REQ_RECEIVING && *upload_data_size > 0) {
    gsize n = *upload_data_size;
    if (req->body->len + n > self->cfg.max_body) {
      /* A chunked body over the cap. libmicrohttpd answers only once the body is read:
       * the rest is read and dropped (never held), within the --timeout, then 413. */
      g_mutex_lock(&self->lock);
      req->state = HTTP_REQ_DISCARDING;
      self->receiving--;
      g_cond_broadcast(&self->cond);
      g_mutex_unlock(&self->lock);
      g_clear_pointer(&req->body, g_byte_array_unref);
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (req->body->len + n > req->reserved && !http_reserve(self, req, req->body->len + n -
                                                                           req->reserved)) {
      http_log(self, req->peer, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
               "too many reports in flight");
      return MHD_NO;
    }
    g_byte_array_append(req->body, (const guint8 *) upload_data, (guint) n);
    *upload_data_size = 0;
    return MHD_YES;
  }

  if (state == HTTP_REQ_DISCARDING) {
    if (*upload_data_size > 0) {
      *upload_data_size = 0;
      return MHD_YES;
    }
    g_mutex_lock(&self->lock);
    req->state = HTTP_REQ_DONE;
    g_mutex_unlock(&self->lock);
    g_autofree char *line = g_strdup_printf(
        "report too large: more than %" G_GSIZE_FORMAT " bytes", self->cfg.max_body);
    return http_reject(self, conn, req->peer, method, url, MHD_HTTP_CONTENT_TOO_LARGE, line,
                       NULL, NULL);
  }

  if (state == HTTP_REQ_RECEIVING) {
    /* The body is complete: hand it to the pipeline and wait for its commit. */
    if (req->body->len == 0) {
      g_mutex_lock(&self->lock);
      req->state = HTTP_REQ_DONE;
      self->receiving--;
      g_cond_broadcast(&self->cond);
      g_mutex_unlock(&self->lock);
      return http_reject(self, conn, req->peer, method, url, MHD_HTTP_BAD_REQUEST,
                         "empty body: a report is expected", NULL, NULL);
    }
    SourceMessage *msg = g_new0(SourceMessage, 1);
    msg->data = g_byte_array_free_to_bytes(g_steal_pointer(&req->body));
    msg->origin = g_strdup_printf("%s:%s", req->scheme, req->peer);
    msg->raw_report = TRUE;
    msg->verdict = "unauthenticated";
    msg->received = req->received;
    msg->handle = http_request_ref(req);
    msg->handle_free = http_message_release;
    MHD_suspend_connection(conn);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    HttpConn *hc = ci != NULL ? ci->socket_context : NULL;
    g_mutex_lock(&self->lock);
    if (hc != NULL)
      hc->deadline = G_MAXINT64;
    req->state = HTTP_REQ_WAITING;
    self->held++;
    self->receiving--;
    g_queue_push_tail(&self->waiting, msg);
    g_cond_broadcast(&self->cond);
    g_mutex_unlock(&self->lock);
    return MHD_YES;
  }

  if (state == HTTP_REQ_ANSWERED) {
    g_mutex_lock(&self->lock);
    req->state = HTTP_REQ_DONE;
    g_mutex_unlock(&self->lock);
    return http_respond(conn, req->status, req->text, req->retry_after, NULL);
  }

  /* WAITING (spurious call while suspended) or DONE: nothing to do. */
  return MHD_YES;
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap) G_GNUC_PRINTF(2, 0);

static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
  SourceHttp *self = cls;
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  g_strchomp(msg);
  source_event(&self->cfg.events, SOURCE_EVENT_DEBUG, "libmicrohttpd", "%s", msg);
}

/* ---- the pipeline side ---------------------------------------------------- */

/* handle_free of a message: a request the pipeline dropped without commit() (its batch
 * could not be stored) is answered 503 here. */
static void
http_message_release(gpointer data)
{
  HttpRequest *req = data;
  SourceHttp *self = req->server;
  g_mutex_lock(&self->lock);
  gboolean waiting = req->state == HTTP_REQ_WAITING;
  if (waiting)
    self->store_failing = TRUE;
  g_mutex_unlock(&self->lock);
  if (waiting) {
    /* The pipeline logged why the batch was not stored, and each message of it. */
    http_answer(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                g_strdup("not stored: the store is failing, retry later"),
                SOURCE_HTTP_RETRY_AFTER);
  }
  http_request_unref(req);
}

static gpointer
source_http_open(const SourceConfig *config, char **args, GError **error)
{
  g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "http: started by serve only");
  return NULL;
}

static gboolean
source_http_next(gpointer self_, SourceMessage **msg, GError **error)
{
  SourceHttp *self = self_;
  *msg = NULL;
  g_mutex_lock(&self->lock);
  for (;;) {
    SourceMessage *m = g_queue_pop_head(&self->waiting);
    if (m != NULL) {
      if (self->handed++ == 0)
        self->first_handed_us = g_get_monotonic_time();
      g_mutex_unlock(&self->lock);
      *msg = m;
      return TRUE;
    }
    if (self->handed > 0) {
      /* Group commit, sized by what is waiting: the group is complete once every open
       * connection has its request in the pipeline (none can add one), else it waits
       * for the others, at most the window from its first request: a keep-alive
       * client answered by the last commit sends its next report within it. */
      gint64 until = self->first_handed_us + (gint64) self->cfg.window_ms * 1000;
      gboolean all_in = self->receiving == 0 && self->held >= g_hash_table_size(self->conns);
      if (all_in || g_get_monotonic_time() >= until) {
        source_event(&self->cfg.events, SOURCE_EVENT_DEBUG, NULL,
                     "group commit: %u reports (%s)", self->handed,
                     all_in ? "every connection waits" : "window over");
        self->handed = 0;
        g_mutex_unlock(&self->lock);
        return TRUE;        /* *msg NULL: flush now */
      }
      g_cond_wait_until(&self->cond, &self->lock, until);
      continue;
    }
    if (self->stopping && self->receiving == 0) {
      g_mutex_unlock(&self->lock);
      return FALSE;
    }
    g_cond_wait_until(&self->cond, &self->lock, g_get_monotonic_time() + G_USEC_PER_SEC);
  }
}

static gboolean
source_http_commit(gpointer self_, SourceMessage *msg, SourceOutcome outcome,
                   GError **error)
{
  SourceHttp *self = self_;
  HttpRequest *req = msg->handle;
  guint status = source_http_status_for(outcome, msg->quarantine_error);
  char *text;
  const Report *r = msg->reports != NULL && msg->reports->len > 0 ? msg->reports->pdata[0]
                                                                  : NULL;
  if ((outcome == SOURCE_OUTCOME_STORED || outcome == SOURCE_OUTCOME_DUPLICATE) && r != NULL) {
    g_autofree char *key = report_key_hex(r->key);
    const char *verb = outcome == SOURCE_OUTCOME_STORED ? "stored" : "duplicate";
    text = g_strdup_printf("%s %s", verb, key);
  } else {
    g_autofree char *reason = source_http_one_line(
        msg->quarantine_reason != NULL ? msg->quarantine_reason : "not a report", 300);
    text = g_strdup_printf("rejected, kept in the quarantine: %s", reason);
  }
  g_mutex_lock(&self->lock);
  self->store_failing = FALSE;
  g_mutex_unlock(&self->lock);
  /* The message's log line (the pipeline's: peer, outcome, report or reason) ends with
   * the request and its status; a rejection's reason is said once, by the pipeline. */
  g_autofree char *path = source_http_one_line(self->cfg.path, 200);
  g_free(msg->answer);
  msg->answer = status < 300 ? g_strdup_printf("\"POST %s\" %u %s", path, status, text)
                             : g_strdup_printf("\"POST %s\" %u", path, status);
  http_answer(req, status, text, NULL);
  return TRUE;
}

static void
source_http_close_ops(gpointer self)
{
}

const SourceOps source_http_ops = {
  "http", source_http_open, source_http_next, source_http_commit, source_http_close_ops,
  NULL, NULL,
};

void
source_http_fail_waiting(SourceHttp *self, const char *reason)
{
  for (;;) {
    g_mutex_lock(&self->lock);
    SourceMessage *m = g_queue_pop_head(&self->waiting);
    g_mutex_unlock(&self->lock);
    if (m == NULL)
      break;
    source_message_free(m);   /* answers 503 */
  }
}

/* ---- listening sockets ---------------------------------------------------- */

static char *
http_sockname(int fd, guint *port)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  *port = 0;
  if (getsockname(fd, (struct sockaddr *) &ss, &len) != 0)
    return g_strdup("?");
  char host[INET6_ADDRSTRLEN];
  http_peer_name((struct sockaddr *) &ss, host);
  if (ss.ss_family == AF_INET)
    *port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
  else if (ss.ss_family == AF_INET6)
    *port = ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
  return ss.ss_family == AF_INET6 ? g_strdup_printf("[%s]:%u", host, *port)
                                  : g_strdup_printf("%s:%u", host, *port);
}

/* "ADDR:PORT", "[V6]:PORT", ":PORT" or "PORT" -> a listening socket. */
static int
http_listen_on(const char *spec, GError **error)
{
  g_autofree char *host = NULL;
  g_autofree char *port = NULL;
  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (close == NULL || close[1] != ':' || close[2] == '\0')
      goto bad;
    host = g_strndup(spec + 1, (gsize) (close - spec - 1));
    port = g_strdup(close + 2);
  } else {
    const char *colon = strrchr(spec, ':');
    if (colon == NULL) {
      port = g_strdup(spec);
    } else {
      if (strchr(spec, ':') != colon)
        goto bad;             /* a bare IPv6 address: needs brackets */
      host = g_strndup(spec, (gsize) (colon - spec));
      port = g_strdup(colon + 1);
    }
  }
  if (*port == '\0' || strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535)
    goto bad;

  struct addrinfo hints = { 0 };
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  struct addrinfo *res = NULL;
  gboolean any = host == NULL || *host == '\0';
  int rc = getaddrinfo(any ? "::" : host, port, &hints, &res);
  if (rc != 0 && any)
    rc = getaddrinfo("0.0.0.0", port, &hints, &res);
  if (rc != 0) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND, "--listen %s: %s", spec,
                gai_strerror(rc));
    return -1;
  }
  int fd = -1, errsv = 0;
  for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                ai->ai_protocol);
    if (fd < 0) {
      errsv = errno;
      continue;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6 && any)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
      errsv = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0)
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "--listen %s: %s", spec,
                g_strerror(errsv));
  return fd;

bad:
  g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
              "--listen %s: expected ADDR:PORT, [IPV6]:PORT or :PORT", spec);
  return -1;
}

/* systemd socket activation: LISTEN_PID is us, LISTEN_FDS sockets from fd 3. */
static gboolean
http_inherited_sockets(GPtrArray *fds, GError **error)
{
  const char *pid = g_getenv("LISTEN_PID");
  const char *nfds = g_getenv("LISTEN_FDS");
  if (pid == NULL || nfds == NULL || g_ascii_strtoll(pid, NULL, 10) != (gint64) getpid()) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "socket activation: LISTEN_PID/LISTEN_FDS do not name this process");
    return FALSE;
  }
  gint64 n = g_ascii_strtoll(nfds, NULL, 10);
  if (n < 1 || n > 64) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                "socket activation: LISTEN_FDS=%s", nfds);
    return FALSE;
  }
  for (int fd = 3; fd < 3 + n; fd++) {
    int accepting = 0, type = 0;
    socklen_t len = sizeof accepting, tlen = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND,
                  "socket activation: fd %d is not a listening stream socket", fd);
      return FALSE;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    g_ptr_array_add(fds, GINT_TO_POINTER(fd));
  }
  g_unsetenv("LISTEN_PID");
  g_unsetenv("LISTEN_FDS");
  g_unsetenv("LISTEN_FDNAMES");
  return TRUE;
}

/* ---- daemons -------------------------------------------------------------- */

static struct MHD_Daemon *
http_daemon_start(SourceHttp *self, int fd, const char *cert, const char *key,
                  GError **error)
{
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                       MHD_USE_ERROR_LOG;
  if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
    flags |= MHD_USE_EPOLL;
  if (cert != NULL)
    flags |= MHD_USE_TLS;
  struct MHD_OptionItem ops[16];
  guint n = 0;
#define HTTP_OPT(o, v, p) ops[n++] = (struct MHD_OptionItem) { (o), (intptr_t) (v), (p) }
  HTTP_OPT(MHD_OPTION_LISTEN_SOCKET, fd, NULL);
  HTTP_OPT(MHD_OPTION_CONNECTION_LIMIT, self->cfg.max_connections, NULL);
  HTTP_OPT(MHD_OPTION_CONNECTION_TIMEOUT, self->cfg.timeout, NULL);
  HTTP_OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) http_request_completed, self);
  HTTP_OPT(MHD_OPTION_NOTIFY_CONNECTION, (intptr_t) http_notify_connection, self);
  HTTP_OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t) http_mhd_log, self);
  HTTP_OPT(MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL);
  if (cert != NULL) {
    HTTP_OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, (void *) cert);
    HTTP_OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, (void *) key);
  }
  HTTP_OPT(MHD_OPTION_END, 0, NULL);
#undef HTTP_OPT
  struct MHD_Daemon *d = MHD_start_daemon(flags, 0, http_accept_policy, self, http_access,
                                          self, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
  if (d == NULL)
    g_set_error(error, SOURCE_ERROR, cert != NULL ? SOURCE_ERROR_TLS : SOURCE_ERROR_IO,
                cert != NULL ? "cannot start the HTTPS server (is the key the "
                               "certificate's? see --verbose --verbose)"
                             : "cannot start the HTTP server");
  return d;
}

static gboolean
http_read_pems(SourceHttp *self, char **cert, char **key, GError **error)
{
  *cert = *key = NULL;
  if (self->cfg.tls_cert == NULL)
    return TRUE;
  g_autofree char *c = NULL, *k = NULL;
  if (!g_file_get_contents(self->cfg.tls_cert, &c, NULL, error) ||
      !g_file_get_contents(self->cfg.tls_key, &k, NULL, error)) {
    GError *e = *error;
    *error = g_error_new(SOURCE_ERROR, SOURCE_ERROR_TLS, "TLS: %s", e->message);
    g_error_free(e);
    return FALSE;
  }
  if (strstr(c, "-----BEGIN CERTIFICATE-----") == NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_TLS, "TLS: %s holds no PEM certificate",
                self->cfg.tls_cert);
    return FALSE;
  }
  if (strstr(k, "PRIVATE KEY-----") == NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_TLS, "TLS: %s holds no PEM private key",
                self->cfg.tls_key);
    return FALSE;
  }
  *cert = g_steal_pointer(&c);
  *key = g_steal_pointer(&k);
  return TRUE;
}

static gpointer
http_sweeper_main(gpointer data)
{
  SourceHttp *self = data;
  g_mutex_lock(&self->lock);
  while (!self->sweeper_quit) {
    gint64 now = g_get_monotonic_time();
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, self->conns);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
      HttpConn *hc = k;
      if (hc->cut || hc->deadline > now || hc->fd < 0)
        continue;
      /* Not a whole request within the timeout (or idle that long): cut it. Shutting
       * the socket down makes libmicrohttpd's next read fail and close it. */
      source_event(&self->cfg.events, SOURCE_EVENT_INFO, hc->peer,
                   "connection cut: no complete request within %u s", self->cfg.timeout);
      shutdown(hc->fd, SHUT_RDWR);
      hc->cut = TRUE;
    }
    g_cond_wait_until(&self->cond, &self->lock, now + SOURCE_HTTP_SWEEP_US);
  }
  g_mutex_unlock(&self->lock);
  return NULL;
}

SourceHttp *
source_http_start(const SourceHttpConfig *cfg, const TrOptions *opts, GError **error)
{
  if (!source_http_load_mhd(error))
    return NULL;
  if (cfg->tls_cert != NULL && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_TLS,
                "this libmicrohttpd was built without TLS");
    return NULL;
  }
  SourceHttp *self = g_new0(SourceHttp, 1);
  self->cfg = *cfg;
  self->cfg.listen = g_strdupv(cfg->listen);
  self->cfg.path = g_strdup(cfg->path != NULL ? cfg->path : "/v1/tlsrpt");
  self->cfg.tls_cert = g_strdup(cfg->tls_cert);
  self->cfg.tls_key = g_strdup(cfg->tls_key);
  self->cfg.domains = g_strdupv(cfg->domains);
  self->cfg.window_ms = MIN(cfg->window_ms, 5u);
  if (self->cfg.max_connections == 0)
    self->cfg.max_connections = 1024;
  if (self->cfg.timeout == 0)
    self->cfg.timeout = 30;
  self->https = cfg->tls_cert != NULL;
  self->scheme = g_strdup(self->https ? "https" : "http");
  g_mutex_init(&self->lock);
  g_mutex_init(&self->reload_lock);
  g_cond_init(&self->cond);
  g_queue_init(&self->waiting);
  self->conns = g_hash_table_new(NULL, NULL);
  self->per_ip = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  self->rate = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  self->listeners = g_ptr_array_new();
  self->retired = g_ptr_array_new();
  self->pems = g_ptr_array_new_with_free_func(g_free);

  g_autoptr(GPtrArray) fds = g_ptr_array_new();
  if (cfg->socket_activation) {
    if (!http_inherited_sockets(fds, error))
      goto fail;
  } else {
    for (guint i = 0; self->cfg.listen != NULL && self->cfg.listen[i] != NULL; i++) {
      int fd = http_listen_on(self->cfg.listen[i], error);
      if (fd < 0)
        goto fail;
      g_ptr_array_add(fds, GINT_TO_POINTER(fd));
    }
  }
  for (guint i = 0; i < fds->len; i++) {
    SourceHttpListener *l = g_new0(SourceHttpListener, 1);
    l->fd = GPOINTER_TO_INT(fds->pdata[i]);
    l->name = http_sockname(l->fd, &l->port);
    g_ptr_array_add(self->listeners, l);
  }
  g_ptr_array_set_size(fds, 0);

  char *cert = NULL, *key = NULL;
  if (!http_read_pems(self, &cert, &key, error))
    goto fail;
  if (cert != NULL) {
    g_ptr_array_add(self->pems, cert);
    g_ptr_array_add(self->pems, key);
  }
  self->sweeper = g_thread_new("tlsrpt-http-sweep", http_sweeper_main, self);
  for (guint i = 0; i < self->listeners->len; i++) {
    SourceHttpListener *l = self->listeners->pdata[i];
    l->daemon = http_daemon_start(self, l->fd, cert, key, error);
    if (l->daemon == NULL)
      goto fail;
    source_event(&self->cfg.events, SOURCE_EVENT_INFO, NULL,
                 "listening on %s (%s), reports to %s", l->name, self->scheme,
                 self->cfg.path);
  }
  return self;

fail:
  for (guint i = 0; i < fds->len; i++)
    close(GPOINTER_TO_INT(fds->pdata[i]));
  source_http_stop(self);
  return NULL;
}

guint
source_http_port(SourceHttp *self)
{
  if (self->listeners->len == 0)
    return 0;
  return ((SourceHttpListener *) self->listeners->pdata[0])->port;
}

void
source_http_shutdown(SourceHttp *self)
{
  g_mutex_lock(&self->reload_lock);
  g_mutex_lock(&self->lock);
  gboolean already = self->stopping;
  self->stopping = TRUE;
  g_cond_broadcast(&self->cond);
  g_mutex_unlock(&self->lock);
  if (!already) {
    for (guint i = 0; i < self->listeners->len; i++) {
      SourceHttpListener *l = self->listeners->pdata[i];
      if (l->daemon != NULL && l->fd >= 0) {
        MHD_socket fd = MHD_quiesce_daemon(l->daemon);
        if (fd != MHD_INVALID_SOCKET)
          close(fd);
        l->fd = -1;
      }
    }
  }
  g_mutex_unlock(&self->reload_lock);
}

gboolean
source_http_reload(SourceHttp *self, GError **error)
{
  if (!self->https)
    return TRUE;
  g_mutex_lock(&self->reload_lock);
  char *cert = NULL, *key = NULL;
  gboolean ok = http_read_pems(self, &cert, &key, error);
  g_autoptr(GPtrArray) fresh = g_ptr_array_new();
  for (guint i = 0; ok && i < self->listeners->len; i++) {
    SourceHttpListener *l = self->listeners->pdata[i];
    if (l->fd < 0)
      continue;
    int fd = dup(l->fd);
    struct MHD_Daemon *d = fd >= 0 ? http_daemon_start(self, fd, cert, key, error) : NULL;
    if (d == NULL) {
      if (fd >= 0)
        close(fd);
      else
        g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "dup: %s", g_strerror(errno));
      ok = FALSE;
      break;
    }
    g_ptr_array_add(fresh, d);
  }
  if (!ok) {
    for (guint i = 0; i < fresh->len; i++) {
      MHD_socket fd = MHD_quiesce_daemon(fresh->pdata[i]);
      MHD_stop_daemon(fresh->pdata[i]);
      if (fd != MHD_INVALID_SOCKET)
        close(fd);
    }
    g_free(cert);
    g_free(key);
    g_mutex_unlock(&self->reload_lock);
    return FALSE;
  }
  /* The new daemons accept from now on; the old ones finish their connections. */
  g_ptr_array_add(self->pems, cert);
  g_ptr_array_add(self->pems, key);
  guint j = 0;
  for (guint i = 0; i < self->listeners->len; i++) {
    SourceHttpListener *l = self->listeners->pdata[i];
    if (l->fd < 0)
      continue;
    MHD_socket old = MHD_quiesce_daemon(l->daemon);
    if (old != MHD_INVALID_SOCKET)
      close(old);
    g_mutex_lock(&self->lock);
    g_ptr_array_add(self->retired, l->daemon);
    g_mutex_unlock(&self->lock);
    l->daemon = fresh->pdata[j++];
    l->fd = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_LISTEN_FD)->listen_fd;
  }
  g_mutex_unlock(&self->reload_lock);
  return TRUE;
}

void
source_http_stop(SourceHttp *self)
{
  if (self == NULL)
    return;
  source_http_shutdown(self);
  source_http_fail_waiting(self, "shutting down");
  /* Let the answers decided by the last commits reach their clients. */
  gint64 until = g_get_monotonic_time() + SOURCE_HTTP_STOP_WAIT_US;
  g_mutex_lock(&self->lock);
  while (self->answering > 0 && g_get_monotonic_time() < until)
    g_cond_wait_until(&self->cond, &self->lock, MIN(until, g_get_monotonic_time() + 10000));
  self->sweeper_quit = TRUE;
  g_cond_broadcast(&self->cond);
  g_mutex_unlock(&self->lock);
  if (self->sweeper != NULL)
    g_thread_join(self->sweeper);
  for (guint i = 0; i < self->retired->len; i++)
    MHD_stop_daemon(self->retired->pdata[i]);
  for (guint i = 0; i < self->listeners->len; i++) {
    SourceHttpListener *l = self->listeners->pdata[i];
    if (l->daemon != NULL)
      MHD_stop_daemon(l->daemon);
    else if (l->fd >= 0)
      close(l->fd);
    g_free(l->name);
    g_free(l);
  }
  g_ptr_array_unref(self->listeners);
  g_ptr_array_unref(self->retired);
  g_ptr_array_unref(self->pems);
  g_hash_table_unref(self->conns);
  g_hash_table_unref(self->per_ip);
  g_hash_table_unref(self->rate);
  g_queue_clear(&self->waiting);
  g_mutex_clear(&self->lock);
  g_mutex_clear(&self->reload_lock);
  g_cond_clear(&self->cond);
  g_free(self->scheme);
  source_http_config_clear(&self->cfg);
  g_free(self);
}
