/* common.h - shared types of every stage: error domains, the transient/permanent
 * classification, exit codes (exit.h), limits, the pipeline's options, autoptr cleanups
 * for GMime and json-c.
 *
 * Ownership notes follow GMime's style: "(transfer full)" means the caller owns and
 * must free the result, "(transfer none)" means it is borrowed. */
#ifndef TLSRPT_COMMON_H
#define TLSRPT_COMMON_H

#include <glib.h>
#include <gmime/gmime.h>
#include <json-c/json.h>

/* GMime 3.2 and json-c ship no autoptr declarations: they are declared here, once. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeObject, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeMessage, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParser, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimePartIter, g_mime_part_iter_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParserOptions, g_mime_parser_options_free)
typedef struct json_object TrJson;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrJson, json_object_put)
typedef struct json_tokener TrJsonTokener;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrJsonTokener, json_tokener_free)

/* ---- error domains: one per stage ---------------------------------------- */
#define MIME_WALK_ERROR (mime_walk_error_quark())
#define DECODE_ERROR    (decode_error_quark())
#define REPORT_ERROR    (report_error_quark())
#define STORE_ERROR     (store_error_quark())
#define SINK_ERROR      (sink_error_quark())
#define SOURCE_ERROR    (source_error_quark())
#define CLI_ERROR       (cli_error_quark())
GQuark mime_walk_error_quark(void);
GQuark decode_error_quark(void);
GQuark report_error_quark(void);
GQuark store_error_quark(void);
GQuark sink_error_quark(void);
GQuark source_error_quark(void);
GQuark cli_error_quark(void);

/* Permanent: the input itself is bad; retrying cannot help. */
typedef enum {
  MIME_WALK_ERROR_PARSE,      /* not parseable as a message at all */
  MIME_WALK_ERROR_LIMIT,      /* depth / part count / header / size limit exceeded */
} MimeWalkError;

typedef enum {
  DECODE_ERROR_GZIP,          /* bad gzip: header, data, CRC, length, truncated */
  DECODE_ERROR_ZIP,           /* bad or unsupported zip */
  DECODE_ERROR_TOO_LARGE,     /* inflated size over the cap */
  DECODE_ERROR_NOT_JSON,      /* content is neither gzip, zip nor a JSON object */
} DecodeError;

typedef enum {
  REPORT_ERROR_JSON,          /* not JSON (syntax, depth, encoding) */
  REPORT_ERROR_INVALID,       /* JSON, but cannot be a TLS report */
  REPORT_ERROR_DECLINED,      /* REPORT_PARSE_STRICT only: the strict reader declined */
  REPORT_ERROR_NOT_OURS,      /* valid, but for none of the domains we were told (serve
                                 --domain): quarantined, answered 403 over HTTPS */
  REPORT_ERROR_UNTRUSTED,     /* valid, but --dkim=require and no pass (trust.h):
                                 quarantined, answered 403 over HTTPS */
} ReportError;

/* Store and sink errors are transient unless noted: the message is not acknowledged. */
typedef enum {
  STORE_ERROR_IO,             /* write/fsync/rename failed (includes ENOSPC, EROFS, EACCES) */
  STORE_ERROR_LOCK,           /* could not take the store lock in time */
  STORE_ERROR_CORRUPT,        /* index unreadable beyond repair (permanent for the run) */
} StoreError;

typedef enum {
  SINK_ERROR_IO,              /* transient */
} SinkError;

typedef enum {
  SOURCE_ERROR_IO,            /* transient: read failure, network, timeout */
  SOURCE_ERROR_NOT_FOUND,     /* permanent: path does not exist / not a maildir */
  SOURCE_ERROR_TOO_LARGE,     /* permanent for that message: skipped, left alone */
  SOURCE_ERROR_AUTH,          /* fatal: authentication refused */
  SOURCE_ERROR_TLS,           /* fatal: certificate / TLS negotiation */
  SOURCE_ERROR_LOCKED,        /* another poller holds the mailbox lock */
  SOURCE_ERROR_PROTOCOL,      /* transient: server said something unexpected */
  SOURCE_ERROR_CONFIG,        /* permanent: the server refuses a folder we were told to
                                 use (a NO to CREATE, COPY or MOVE): exit 2 */
} SourceError;

typedef enum {
  CLI_ERROR_USAGE,
  CLI_ERROR_CONFIG,
} CliError;

typedef enum {
  TR_ERROR_PERMANENT,         /* bad input: quarantine (or skip) and acknowledge */
  TR_ERROR_TRANSIENT,         /* environment: do not acknowledge, retry later */
} TrErrorClass;

/* The one place that decides transient vs permanent. */
TrErrorClass tr_error_classify(const GError *error);

/* Exit codes and their mapping from errors: exit.h (included here for every stage). */
#include "exit.h"

/* ---- limits and options --------------------------------------------------- */
typedef struct {
  gsize max_report_size;      /* inflated report bytes; default 64 MiB */
  gsize max_message_size;     /* whole message bytes; default 32 MiB */
  guint max_mime_depth;       /* nested multipart / message/rfc822; default 32 */
  guint max_parts;            /* MIME parts walked per message; default 1000 */
  guint max_json_depth;       /* json-c tokener depth; default 64 */
} TrLimits;

#define TR_DEFAULT_MAX_REPORT_SIZE  (64u * 1024 * 1024)
#define TR_DEFAULT_MAX_MESSAGE_SIZE (32u * 1024 * 1024)
#define TR_DEFAULT_MAX_MIME_DEPTH   32u
#define TR_DEFAULT_MAX_PARTS        1000u
#define TR_DEFAULT_MAX_JSON_DEPTH   64u

void tr_limits_init(TrLimits *limits);

/* --dkim: what a report without a DKIM pass (trust.h) gets. */
typedef enum {
  TR_DKIM_RECORD,             /* the default: stored, with its verdict */
  TR_DKIM_REQUIRE,            /* quarantined (a temperror: left for a later run) */
  TR_DKIM_OFF,                /* not checked: no verdict */
} TrDkimPolicy;

/* The trust settings (cli_group_trust; docs/trust.md). */
typedef struct {
  TrDkimPolicy dkim;
  char *dkim_keys;            /* --dkim-keys FILE, or NULL: the DNS */
  char *dkim_nameserver;      /* NULL: /etc/resolv.conf */
  double dkim_timeout;        /* seconds per key lookup; 0: the default (10) */
  gboolean require_submitter; /* --dkim-require-submitter */
  char **authserv_ids;        /* --trust-authserv-id, NULL-terminated, or NULL */
  gboolean accept_unsigned_files; /* loose files and HTTPS POSTs under require */
} TrTrustOptions;

/* What the ingestion pipeline is given (the store, the outputs, the limits and the
 * group commit); sources get a SourceConfig (source.h), sinks a SinkConfig (sink.h). */
typedef struct {
  char *store_dir;            /* state dir; the tree store unless no_store */
  gboolean no_store;
  char *csv_path;             /* NULL = none */
  gboolean csv_raw;           /* CSV values exactly as sent (docs/csv.md) */
  char *jsonl_path;           /* NULL = none; "-" = stdout */
  char *sqlite_path;          /* NULL = STORE/reports.sqlite while the tree is written */
  gboolean no_sqlite;         /* no SQL index (unless sqlite_path is given) */
  char *postgres;             /* NULL = none; a libpq connection string (sink-postgres.c) */
  char *quarantine_dir;       /* default STORE/quarantine */
  int verbosity;              /* -1 quiet, 0 normal, 1.. verbose */
  TrLimits limits;
  guint batch_size;           /* messages per group commit; default 512 */
  double lock_timeout;        /* seconds to wait for the store lock; default 60 */
  char **domains;             /* NULL-terminated, lower case: store only reports for
                                 these policy domains (and their subdomains; "*.D": the
                                 subdomains of D only); NULL: all */
  TrTrustOptions trust;       /* DKIM and Authentication-Results (trust.h) */
} TrOptions;

void tr_options_init(TrOptions *opts);
void tr_options_clear(TrOptions *opts);

#endif
