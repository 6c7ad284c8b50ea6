/* source-http.h - the HTTPS receiver of RFC 8460 §5.4 as a source: every POSTed report
 * body is one message of the pipeline (a raw report, like a .json / .json.gz file), and
 * the request is answered from commit(), that is only once the report is durable in
 * every sink, or 503 when it could not be stored. The HTTP protocol is libmicrohttpd's
 * (loaded with dlopen() when a server starts, as libcurl is for IMAP); this module holds
 * only what is ours: routing, media types, limits, the commit rule and the answers.
 *
 * Threads: libmicrohttpd runs one polling thread per listening socket; the pipeline's
 * thread calls next() and commit(); a sweeper thread cuts connections whose request
 * takes longer than the timeout (slowloris). The pipeline is woken when a body is
 * complete and flushes when no further one arrives within the group-commit window. */
#ifndef TLSRPT_SOURCE_HTTP_H
#define TLSRPT_SOURCE_HTTP_H

#include "common.h"
#include "source.h"

typedef struct {
  char **listen;              /* "ADDR:PORT" ("[::1]:8080", ":8080" = every address);
                                 NULL-terminated, may be empty with socket activation */
  gboolean socket_activation; /* take the listening sockets from LISTEN_FDS (systemd) */
  char *path;                 /* where reports are POSTed; "/v1/tlsrpt" by default */
  char *tls_cert;             /* PEM certificate chain, or NULL: plain HTTP */
  char *tls_key;              /* PEM private key (with tls_cert) */
  gsize max_body;             /* largest request body accepted (413 beyond) */
  guint max_connections;      /* open connections over every listener */
  guint max_per_ip;           /* open connections of one peer address (0 = no limit) */
  guint timeout;              /* seconds a request (or an idle connection) may take */
  double rate;                /* requests per second per peer address (0 = no limit) */
  gboolean limit_loopback;    /* apply the per-IP limits to loopback peers too */
  char **domains;             /* NULL-terminated policy domains we accept, or NULL */
  guint window_ms;            /* group-commit window (<= 5 ms) */
  SourceEvents events;        /* where the receiver's own lines go (it does not log):
                                 one per request answered before the pipeline has it,
                                 and the connection events; from any thread */
} SourceHttpConfig;

void source_http_config_init(SourceHttpConfig *cfg);
void source_http_config_clear(SourceHttpConfig *cfg);

/* The pipeline ops of the receiver. open() is not used: source_http_start() makes one. */
extern const SourceOps source_http_ops;

typedef struct SourceHttp SourceHttp;

/* Load libmicrohttpd, open the listening sockets (or take the inherited ones) and
 * start serving; requests wait for the pipeline from then on. Says one "listening on
 * ADDR:PORT" line per socket (cfg->events). (transfer full) NULL + SOURCE_ERROR (SOURCE_ERROR_TLS for
 * an unusable certificate or key) on failure. */
SourceHttp *source_http_start(const SourceHttpConfig *cfg, const TrOptions *opts,
                              GError **error);

/* Async-signal-unsafe, any thread: stop accepting connections; next() ends once the
 * requests in flight are received (and the pipeline then commits and answers them). */
void source_http_shutdown(SourceHttp *self);

/* Any thread: read the certificate and key again and serve new connections with them
 * (connections already open keep theirs). FALSE + error, and the old ones kept, when the
 * new files are unusable. */
gboolean source_http_reload(SourceHttp *self, GError **error);

/* Answer 503 to every request that waits for the pipeline (after a pipeline run ended
 * without taking them, e.g. the store could not be opened). */
void source_http_fail_waiting(SourceHttp *self, const char *reason);

/* The port of the first listening socket (tests listen on port 0). */
guint source_http_port(SourceHttp *self);

/* Wait (at most a few seconds) for the answers to be sent, stop the servers, free. */
void source_http_stop(SourceHttp *self);

/* libmicrohttpd's version, or a reason it could not be loaded. (transfer none) */
const char *source_http_library_version(void);

/* ---- what is ours of the body handling: exported for the tests and fuzz_http ----- */

/* The media type of a report POST: 0 for application/tlsrpt+json, 1 for
 * application/tlsrpt+gzip (parameters ignored, case-insensitive), -1 for anything else. */
int source_http_media_type(const char *content_type);
/* Content-Encoding accepted: absent, "identity" or "gzip" (case-insensitive). */
gboolean source_http_encoding_ok(const char *content_encoding);
/* @text as one line of printable ASCII (other bytes as '?'), at most @max bytes, for
 * answers and logs. (transfer full) */
char *source_http_one_line(const char *text, gsize max);
/* The last address of an X-Forwarded-For value into @out (46 bytes), when it is a
 * literal IPv4 or IPv6 address; FALSE otherwise. */
gboolean source_http_forwarded_for(const char *xff, char out[46]);
/* The HTTP status for a pipeline outcome, with the reason the pipeline gave. */
guint source_http_status_for(SourceOutcome outcome, const GError *quarantine_error);

#endif
