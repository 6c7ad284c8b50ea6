/* mime-walk.h - walk a message with GMime 3 and find every candidate report part. */
#ifndef TLSRPT_MIME_WALK_H
#define TLSRPT_MIME_WALK_H

#include "common.h"

/* How strongly a part looks like a TLS report. A STRONG candidate that fails to decode
 * or parse makes the message a quarantine case; a WEAK one that fails is ignored. */
typedef enum {
  MIME_EVIDENCE_WEAK,     /* generic type (application/gzip, octet-stream, json) or
                             sniffed content, in a message without TLS-RPT markers */
  MIME_EVIDENCE_STRONG,   /* application/tlsrpt*, a tlsrpt-style file name
                             (sender!domain!begin!end...), or any candidate in a
                             message with TLS-RPT markers */
} MimeEvidence;

typedef struct {
  GBytes *content;        /* transfer-decoded bytes (base64/QP undone), still gzip/zip/json */
  char *content_type;     /* "type/subtype", lower case; never NULL */
  char *filename;         /* decoded file name (RFC 2231 / encoded-word), or NULL */
  MimeEvidence evidence;
  const char *why;        /* static: "media type", "file name" or "content" */
} MimePart;

void mime_part_free(MimePart *part);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MimePart, mime_part_free)

/* A candidate part that could not be read at all (its transfer encoding could not be
 * undone): a STRONG one makes the message a quarantine case, as a part that fails to
 * parse does. */
typedef struct {
  char *text;             /* "part N (type/subtype): ..." */
  MimeEvidence evidence;
} MimeProblem;

typedef struct MimeMessage MimeMessage;
struct MimeMessage {
  char *report_domain;    /* TLS-Report-Domain header, or NULL */
  char *submitter;        /* TLS-Report-Submitter header, or NULL */
  char *subject;          /* decoded Subject, or NULL */
  char *message_id;       /* Message-Id without <>, or NULL */
  char *from;             /* From address (addr-spec), or NULL */
  gint64 date;            /* Date header as epoch seconds, or 0 */
  gboolean tlsrpt_markers;/* report-type=tlsrpt or TLS-Report-* headers present */
  GPtrArray *parts;       /* MimePart*, in message order (element free func set) */
  GPtrArray *problems;    /* MimeProblem*: candidate parts that could not be read; the
                             pipeline puts them in the quarantine reason (STRONG) or
                             the message's log line (WEAK) */
};

void mime_message_free(MimeMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MimeMessage, mime_message_free)

/* One-time GMime initialisation (idempotent, thread-unsafe: call from main). */
void mime_walk_init(void);

/* Parse @message (raw RFC 5322 bytes, LF or CRLF, optional leading mbox "From " line)
 * and collect every candidate report part, also inside message/rfc822 parts, walking
 * at most limits->max_mime_depth levels and limits->max_parts parts.
 * A message without candidates returns a MimeMessage with parts->len == 0.
 * An object deeper than max_mime_depth (the top-level body is depth 0; each multipart or
 * message/rfc822 level adds one) or more than max_parts objects fail the whole message
 * with MIME_WALK_ERROR_LIMIT ("depth" / "parts" in the message): no partial walk.
 * Returns (transfer full) or NULL with MIME_WALK_ERROR set when the bytes are not a
 * message at all. */
MimeMessage *mime_walk_message(GBytes *message, const TrLimits *limits, GError **error);

/* The same walk through one path, for tests. MIME_WALK_PATH_AUTO is
 * mime_walk_message(): the fast path (a direct scan of the common report shapes) when it
 * is sure to find what GMime finds, else GMime. MIME_WALK_PATH_GMIME always parses with
 * GMime. MIME_WALK_PATH_FAST returns NULL with *declined set (and no error) when the
 * fast path declines the message. @declined (nullable) says whether it declined. */
typedef enum {
  MIME_WALK_PATH_AUTO,
  MIME_WALK_PATH_GMIME,
  MIME_WALK_PATH_FAST,
} MimeWalkPath;

MimeMessage *mime_walk_message_path(GBytes *message, const TrLimits *limits,
                                    MimeWalkPath path, gboolean *declined, GError **error);

#endif
