/* source.h - where messages come from. One implementation per file (source-mda.c,
 * source-maildir.c, source-mbox.c, source-file.c, source-imap.c), found by name in a
 * NULL-terminated registry. A source yields messages and later commits each one. */
#ifndef TLSRPT_SOURCE_H
#define TLSRPT_SOURCE_H

#include "common.h"

typedef enum {
  TR_STARTTLS_REQUIRED,
  TR_STARTTLS_TRY,
  TR_STARTTLS_NO,
} TrStarttls;

/* --sasl: the SASL mechanism of the login. AUTO: OAUTHBEARER or XOAUTH2 (the first
 * the server offers) with a token, else libcurl's choice for a password (LOGIN too). */
typedef enum {
  TR_SASL_AUTO,
  TR_SASL_XOAUTH2,
  TR_SASL_OAUTHBEARER,
  TR_SASL_PLAIN,
  TR_SASL_LOGIN,
} TrSasl;

/* The imap source's own settings. */
typedef struct {
  char *user;
  char *password_file;        /* 0600-style file; else TLSRPT_IMAP_PASSWORD; else ~/.netrc */
  char *password;             /* from the config file (same permission rule) */
  /* OAuth2: the access token, fetched again for every connection; either replaces the
   * password sources above. */
  char *oauth2_token_command; /* /bin/sh -c; its first line of output is the token */
  char *oauth2_token_file;    /* 0600-style file, re-read at each connection */
  guint oauth2_token_timeout; /* seconds the command may take; 0: the default (30) */
  TrSasl sasl;
  TrStarttls starttls;
  char *cacert;
  gboolean insecure;
  gboolean all;               /* UID SEARCH ALL instead of UNSEEN */
  char *error_folder;         /* quarantined messages go here, if set */
} TrImapOptions;

/* How a source hands up what it has to say (sources never log: the pipeline does, or a
 * test collects). @origin is the mailbox, file or server the event is about (nullable);
 * @text is one line. */
typedef enum {
  SOURCE_EVENT_DEBUG,         /* shown at -vv: protocol traces (only sent when trace) */
  SOURCE_EVENT_VERBOSE,       /* shown at -v */
  SOURCE_EVENT_INFO,          /* shown by default */
  SOURCE_EVENT_WARNING,
} SourceEventLevel;

typedef void (*SourceEventFunc)(SourceEventLevel level, const char *origin,
                                const char *text, gpointer data);

typedef struct {
  SourceEventFunc func;       /* NULL: events are dropped */
  gpointer data;
  gboolean trace;             /* SOURCE_EVENT_DEBUG is wanted (costly to format) */
} SourceEvents;

/* Hand an event to @events->func (nothing when it is NULL, or DEBUG without trace). */
void source_event(const SourceEvents *events, SourceEventLevel level, const char *origin,
                  const char *format, ...) G_GNUC_PRINTF(4, 5);

/* What a source is given: only what sources use (no sink or output settings). */
typedef struct {
  char *store_dir;            /* the store directory: the source's own state files */
  gsize max_message_size;     /* larger messages are skipped, left alone */
  gboolean mark_seen;         /* maildir, imap: after storing */
  char *move_to;              /* maildir, imap: after storing (NULL = none) */
  guint batch_size;           /* imap: messages per body FETCH (the pipeline's batch) */
  TrImapOptions imap;         /* imap only: left empty for the other sources */
  SourceEvents events;        /* where the source's own events go (copied by open()) */
} SourceConfig;

/* Defaults (max_message_size TR_DEFAULT_MAX_MESSAGE_SIZE); clear frees the strings and
 * wipes the password. */
void source_config_init(SourceConfig *config);
void source_config_clear(SourceConfig *config);

typedef struct {
  GBytes *data;           /* the message (or raw report) bytes; NULL when skipped */
  char *origin;           /* for the log: path, "stdin", "mbox:FILE#N", "imap:...;UID=N" */
  char *filename;         /* loose report files: the file name (for §5.1 metadata) */
  gboolean raw_report;    /* data is a report payload (.json/.json.gz), not a message */
  gboolean not_message;   /* loose files: neither a message nor a report by name and
                             content; counted as not a report, never parsed */
  const char *verdict;    /* raw reports: the trust verdict the source gives them (static,
                             trust.h's names: "unauthenticated" for HTTPS), NULL: "none" */
  gint64 received;        /* epoch seconds: file mtime, IMAP INTERNALDATE, or now */
  char *skip_reason;      /* set (and data NULL) when the source skips this message,
                             e.g. over --max-message-size; it is left alone */
  gpointer handle;        /* source-private, for commit */
  GDestroyNotify handle_free;
  /* Set by the pipeline just before commit() (transfer none, valid during the call), for
   * sources that answer someone (the HTTP receiver): the reports the message held
   * (Report*), why it was quarantined (or NULL), and the error behind that reason when
   * one raw report failed (or NULL). */
  const GPtrArray *reports;
  const char *quarantine_reason;
  const GError *quarantine_error;
  /* Set by commit() of a source that answers someone (transfer full, nullable): what it
   * answered ("\"POST /v1/tlsrpt\" 201 stored KEY"), said at the end of the message's
   * one log line, which the pipeline writes after commit(). */
  char *answer;
} SourceMessage;

void source_message_free(SourceMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SourceMessage, source_message_free)

typedef enum {
  SOURCE_OUTCOME_STORED,      /* at least one new report stored */
  SOURCE_OUTCOME_DUPLICATE,   /* every report already stored */
  SOURCE_OUTCOME_QUARANTINED, /* copied to the quarantine (maybe some reports stored too) */
  SOURCE_OUTCOME_NOT_REPORT,  /* no report in it: left as it is by every source */
} SourceOutcome;

typedef struct {
  const char *name;       /* "mda", "maildir", "mbox", "file", "imap" */
  /* @args: NULL-terminated list of command arguments (paths, URL). */
  gpointer (*open)(const SourceConfig *config, char **args, GError **error);
  /* TRUE + *msg (transfer full) for the next message; FALSE with no error at the end;
   * FALSE + error on failure (transient errors stop the run). TRUE with *msg NULL: none
   * yet, store what is pending now and call again (a server between requests). */
  gboolean (*next)(gpointer self, SourceMessage **msg, GError **error);
  /* Acknowledge: called only after every sink flushed (or the quarantine copy is
   * durable). Maildir: --mark-seen / --move-to; IMAP: flag / move; others: nothing. */
  gboolean (*commit)(gpointer self, SourceMessage *msg, SourceOutcome outcome,
                     GError **error);
  void (*close)(gpointer self);
  /* Optional: how many messages the source recognized as ingested by an earlier run
   * and did not hand out (Maildir); for the summary line. */
  guint (*known)(gpointer self);
  /* Optional: acknowledge the @n messages of one durable batch at once, as commit()
   * would one by one (IMAP: one STORE or MOVE per outcome for the whole batch). FALSE +
   * error when they could not all be acknowledged; none or some of them may be. */
  gboolean (*commit_batch)(gpointer self, SourceMessage *const *msgs,
                           const SourceOutcome *outcomes, guint n, GError **error);
} SourceOps;

extern const SourceOps source_mda_ops;
extern const SourceOps source_maildir_ops;
extern const SourceOps source_mbox_ops;
extern const SourceOps source_file_ops;
extern const SourceOps source_imap_ops;

extern const SourceOps *const source_registry[];
const SourceOps *source_find(const char *name);

/* Option checks made before a source opens, without I/O beyond reading the password
 * file: CLI_ERROR_USAGE, or CLI_ERROR_CONFIG for the password file. imap: --user, the
 * URL, the folder names and that a password is given somewhere. maildir: --move-to. */
gboolean source_imap_check(const SourceConfig *config, const char *url, GError **error);
gboolean source_maildir_check(const SourceConfig *config, GError **error);

/* libcurl's version string (source-imap.c loads libcurl on first use). */
const char *source_imap_libcurl_version(void);

/* The server's name of folder @name (mUTF-7, "/" as separator, as given): "/" becomes
 * @delim ('\0': flat), and the personal namespace @prefix (e.g. "INBOX.") is put in
 * front unless @name already starts with it or is INBOX. (transfer full) */
char *source_imap_resolve_folder(const char *name, const char *prefix, char delim);

/* For tests: the batched body FETCH of the IMAP source, answered by the canned server
 * output @canned (tags t0001, t0002, ... in order), handed to the reader @step bytes at
 * a time (0: as it comes). @uids/@sizes are the search result with its RFC822.SIZEs.
 * Returns (transfer full) one line per message handed out ("UID LEN SHA256", or "UID
 * skipped"), then one per FETCH sent ("fetch FIRST..LAST", indexes into @uids); NULL +
 * error when the answer is refused. */
char *source_imap_test_fetch_batch(const guint32 *uids, const guint64 *sizes, guint n,
                                   guint batch_max, gsize batch_bytes,
                                   gsize max_message_size, GBytes *canned, gsize step,
                                   GError **error);

/* ---- helpers shared by the local sources (source.c) ------------------------ */

/* Read the regular file @name (relative to the directory fd @dir_fd, or AT_FDCWD) with
 * one open/fstat/read; a final symlink is followed only when @follow. *size_out and
 * *mtime_out (nullable) get the file's size and modification time. Returns (transfer
 * full) the bytes, or NULL + error: SOURCE_ERROR_TOO_LARGE when the file holds more than
 * @max_size bytes (the size is still set), G_IO_ERROR_NOT_REGULAR_FILE for anything but
 * a regular file, else G_IO_ERROR from errno (G_IO_ERROR_NOT_FOUND: it vanished). */
GBytes *source_read_file(int dir_fd, const char *name, gboolean follow, gsize max_size,
                         gsize *size_out, gint64 *mtime_out, GError **error);

/* Do the bytes at @p (the start of a file, after blank lines) begin like a mail
 * message: a From_ line ("From " and a word) or a header field ("Name:", RFC 5322
 * field-name characters)? For the loose files of `file` and the start of an mbox. */
gboolean source_starts_like_message(const guint8 *p, gsize len);

#endif
