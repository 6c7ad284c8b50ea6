/* mime-walk.c - walk a message with GMime 3 and find every candidate report part.
 *
 * The raw bytes are parsed in place: GMime reads them through a memory stream that
 * borrows the GBytes' buffer, so a large message is not copied; only the candidate
 * parts' transfer-decoded contents are new buffers.
 *
 * Limits. The top-level body is at depth 0; every multipart or message/rfc822 level
 * adds one. Meeting an object deeper than limits->max_mime_depth, or more than
 * limits->max_parts objects (containers and leaves alike), fails the whole message with
 * MIME_WALK_ERROR_LIMIT ("depth" or "parts" in the message) rather than returning a
 * partial walk: a report hidden past a limit must not be silently dropped. GMime itself
 * stops nesting after about a thousand levels, so its parser never recurses unboundedly;
 * the walk below recurses at most max_mime_depth levels.
 *
 * Evidence. A part is a candidate by media type, then by file name, then by content
 * (gzip / zip magic or a JSON object). application/tlsrpt* and tlsrpt-style file names
 * (sender!domain!begin!end...) are STRONG by themselves; every candidate of a message
 * with TLS-RPT markers is STRONG; the rest are WEAK. Markers are a multipart/report with
 * report-type=tlsrpt at any level, or TLS-Report-Domain / TLS-Report-Submitter headers
 * on the top message or on a forwarded (message/rfc822) one. report_domain and
 * submitter come from the top message, else from the first forwarded message that has
 * them. */
#include "mime-walk.h"

#include <string.h>

void
mime_part_free(MimePart *part)
{
  if (part == NULL)
    return;
  g_clear_pointer(&part->content, g_bytes_unref);
  g_free(part->content_type);
  g_free(part->filename);
  g_free(part);
}

void
mime_message_free(MimeMessage *msg)
{
  if (msg == NULL)
    return;
  g_free(msg->report_domain);
  g_free(msg->submitter);
  g_free(msg->subject);
  g_free(msg->message_id);
  g_free(msg->from);
  g_clear_pointer(&msg->parts, g_ptr_array_unref);
  g_clear_pointer(&msg->problems, g_ptr_array_unref);
  g_free(msg);
}

void
mime_walk_init(void)
{
  static gboolean done;
  if (!done) {
    g_mime_init();
    done = TRUE;
  }
}

/* ---- the walk -------------------------------------------------------------- */

typedef struct {
  MimePart *part;
  gboolean strong;        /* STRONG whatever the markers say */
} MimeWalkCandidate;

typedef struct {
  const TrLimits *limits;
  MimeMessage *msg;
  GArray *candidates;     /* MimeWalkCandidate */
  guint parts_seen;
} MimeWalk;

static void
mime_walk_candidate_clear(MimeWalkCandidate *c)
{
  g_clear_pointer(&c->part, mime_part_free);
}

static const char *const mime_walk_generic_types[] = {
  "application/gzip", "application/x-gzip", "application/json", "application/zip",
  "application/octet-stream", "application/x-zip-compressed",
};

static const char *const mime_walk_report_extensions[] = {
  ".json.gz", ".json", ".gz", ".zip",
};

static gboolean
mime_walk_has_suffix_ci(const char *s, const char *suffix)
{
  gsize n = strlen(s), m = strlen(suffix);
  return n >= m && g_ascii_strcasecmp(s + n - m, suffix) == 0;
}

/* RFC 8460 §5.1 shape: sender "!" policy-domain "!" begin "!" end ["!" id] "." ext,
 * with non-empty sender, domain, begin and end. */
static gboolean
mime_walk_tlsrpt_filename(const char *name)
{
  if (name == NULL)
    return FALSE;
  const char *base = strrchr(name, '/');
  base = base != NULL ? base + 1 : name;
  g_auto(GStrv) fields = g_strsplit(base, "!", 6);
  guint n = g_strv_length(fields);
  if (n < 4)
    return FALSE;
  for (guint i = 0; i < 4; i++) {
    if (fields[i][0] == '\0' || fields[i][0] == '.')
      return FALSE;
  }
  return TRUE;
}

static gboolean
mime_walk_sniff(const guint8 *d, gsize len)
{
  if (len >= 2 && d[0] == 0x1f && d[1] == 0x8b)
    return TRUE;
  if (len >= 4 && d[0] == 'P' && d[1] == 'K' && d[2] == 3 && d[3] == 4)
    return TRUE;
  gsize i = 0;
  if (len >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf)
    i = 3;
  while (i < len && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n'))
    i++;
  return i < len && d[i] == '{';
}

static void
mime_walk_problem(MimeWalk *w, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
mime_walk_problem(MimeWalk *w, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_ptr_array_add(w->msg->problems, g_strdup_vprintf(fmt, ap));
  va_end(ap);
}

/* The transfer-decoded content of @part (base64 / quoted-printable / uuencode undone),
 * or NULL when GMime could not write it. */
static GBytes *
mime_walk_part_content(GMimePart *part)
{
  GMimeDataWrapper *wrapper = g_mime_part_get_content(part);
  if (wrapper == NULL)
    return g_bytes_new(NULL, 0);
  g_autoptr(GMimeStream) out = g_mime_stream_mem_new();
  if (g_mime_data_wrapper_write_to_stream(wrapper, out) < 0)
    return NULL;
  GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
  g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(out), FALSE);
  return g_byte_array_free_to_bytes(ba);
}

static void
mime_walk_leaf(MimeWalk *w, GMimePart *part, gboolean whole_body)
{
  GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
  g_autofree char *mime = NULL;
  if (ct != NULL) {
    g_autofree char *raw = g_mime_content_type_get_mime_type(ct);
    mime = g_ascii_strdown(raw != NULL ? raw : "application/octet-stream", -1);
  } else {
    mime = g_strdup("text/plain");
  }
  const char *fname = g_mime_part_get_filename(part);
  if (fname != NULL && fname[0] == '\0')
    fname = NULL;
  gboolean tlsrpt_name = mime_walk_tlsrpt_filename(fname);
  gboolean is_text = g_str_has_prefix(mime, "text/");

  const char *why = NULL;
  gboolean strong = FALSE;
  if (g_str_has_prefix(mime, "application/tlsrpt")) {
    why = "media type";
    strong = TRUE;
  } else {
    for (guint i = 0; i < G_N_ELEMENTS(mime_walk_generic_types) && why == NULL; i++) {
      if (strcmp(mime, mime_walk_generic_types[i]) == 0) {
        why = "media type";
        strong = tlsrpt_name;
      }
    }
  }
  if (why == NULL && fname != NULL) {
    for (guint i = 0; i < G_N_ELEMENTS(mime_walk_report_extensions) && why == NULL; i++) {
      if (mime_walk_has_suffix_ci(fname, mime_walk_report_extensions[i])) {
        why = "file name";
        strong = tlsrpt_name;
      }
    }
  }
  /* Human-readable text is sniffed only when it is the whole body. */
  gboolean sniff = why == NULL && (!is_text || whole_body);
  if (why == NULL && !sniff)
    return;

  g_autoptr(GBytes) content = mime_walk_part_content(part);
  if (content == NULL) {
    mime_walk_problem(w, "part %u (%s): cannot decode its transfer encoding", w->parts_seen,
                      mime);
    return;
  }
  if (why == NULL) {
    gsize len = 0;
    const guint8 *d = g_bytes_get_data(content, &len);
    if (!mime_walk_sniff(d, len))
      return;
    why = "content";
  }

  MimeWalkCandidate c = { 0 };
  c.part = g_new0(MimePart, 1);
  c.part->content = g_steal_pointer(&content);
  c.part->content_type = g_steal_pointer(&mime);
  c.part->filename = g_strdup(fname);
  c.part->why = why;
  c.strong = strong;
  g_array_append_val(w->candidates, c);
}

static char *
mime_walk_header(GMimeObject *obj, const char *name)
{
  const char *v = g_mime_object_get_header(obj, name);
  if (v == NULL)
    return NULL;
  char *s = g_strstrip(g_strdup(v));
  if (s[0] == '\0') {
    g_free(s);
    return NULL;
  }
  return s;
}

/* TLS-Report-* headers of a (top or forwarded) message. */
static void
mime_walk_report_headers(MimeWalk *w, GMimeMessage *message)
{
  g_autofree char *domain = mime_walk_header(GMIME_OBJECT(message), "TLS-Report-Domain");
  g_autofree char *submitter =
      mime_walk_header(GMIME_OBJECT(message), "TLS-Report-Submitter");
  if (domain != NULL || submitter != NULL)
    w->msg->tlsrpt_markers = TRUE;
  if (w->msg->report_domain == NULL)
    w->msg->report_domain = g_steal_pointer(&domain);
  if (w->msg->submitter == NULL)
    w->msg->submitter = g_steal_pointer(&submitter);
}

static gboolean
mime_walk_object(MimeWalk *w, GMimeObject *obj, guint depth, gboolean whole_body,
                 GError **error)
{
  if (depth > w->limits->max_mime_depth) {
    g_set_error(error, MIME_WALK_ERROR, MIME_WALK_ERROR_LIMIT,
                "MIME nesting depth exceeds %u (max-mime-depth)", w->limits->max_mime_depth);
    return FALSE;
  }
  if (++w->parts_seen > w->limits->max_parts) {
    g_set_error(error, MIME_WALK_ERROR, MIME_WALK_ERROR_LIMIT,
                "message has more than %u MIME parts (max-parts)", w->limits->max_parts);
    return FALSE;
  }

  if (GMIME_IS_MULTIPART(obj)) {
    GMimeMultipart *mp = GMIME_MULTIPART(obj);
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (ct != NULL && g_mime_content_type_is_type(ct, "multipart", "report")) {
      const char *rt = g_mime_content_type_get_parameter(ct, "report-type");
      if (rt != NULL && g_ascii_strcasecmp(rt, "tlsrpt") == 0)
        w->msg->tlsrpt_markers = TRUE;
    }
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; i++) {
      GMimeObject *child = g_mime_multipart_get_part(mp, i);
      if (child != NULL && !mime_walk_object(w, child, depth + 1, FALSE, error))
        return FALSE;
    }
    return TRUE;
  }

  if (GMIME_IS_MESSAGE_PART(obj)) {
    GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    if (inner == NULL)
      return TRUE;
    mime_walk_report_headers(w, inner);
    GMimeObject *body = g_mime_message_get_mime_part(inner);
    if (body == NULL)
      return TRUE;
    return mime_walk_object(w, body, depth + 1, TRUE, error);
  }

  if (GMIME_IS_PART(obj))
    mime_walk_leaf(w, GMIME_PART(obj), whole_body);
  /* Anything else (message/partial, ...) holds no report. */
  return TRUE;
}

/* addr-spec of the first mailbox of @list, descending into groups. */
static char *
mime_walk_first_mailbox(InternetAddressList *list)
{
  if (list == NULL)
    return NULL;
  int n = internet_address_list_length(list);
  for (int i = 0; i < n; i++) {
    InternetAddress *ia = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
      const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
      if (addr != NULL && addr[0] != '\0')
        return g_strdup(addr);
    } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
      char *addr =
          mime_walk_first_mailbox(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)));
      if (addr != NULL)
        return addr;
    }
  }
  return NULL;
}

static void
mime_walk_metadata(MimeMessage *msg, GMimeMessage *message)
{
  const char *subject = g_mime_message_get_subject(message);
  if (subject != NULL)
    msg->subject = g_strdup(subject);
  const char *mid = g_mime_message_get_message_id(message);
  if (mid != NULL && mid[0] != '\0')
    msg->message_id = g_strdup(mid);
  msg->from = mime_walk_first_mailbox(g_mime_message_get_from(message));
  GDateTime *date = g_mime_message_get_date(message);
  msg->date = date != NULL ? g_date_time_to_unix(date) : 0;
}

/* Length of a leading mbox "From " separator line, newline included. */
static gsize
mime_walk_mbox_from_len(const guint8 *data, gsize len)
{
  if (len < 5 || memcmp(data, "From ", 5) != 0)
    return 0;
  const guint8 *nl = memchr(data, '\n', len);
  return nl != NULL ? (gsize) (nl - data) + 1 : len;
}

MimeMessage *
mime_walk_message(GBytes *message, const TrLimits *limits, GError **error)
{
  g_return_val_if_fail(message != NULL, NULL);
  g_return_val_if_fail(limits != NULL, NULL);

  gsize len = 0;
  const guint8 *data = g_bytes_get_data(message, &len);
  gsize skip = data != NULL ? mime_walk_mbox_from_len(data, len) : 0;
  if (data == NULL || len - skip == 0) {
    g_set_error(error, MIME_WALK_ERROR, MIME_WALK_ERROR_PARSE, "empty message");
    return NULL;
  }
  if (len - skip > G_MAXUINT) {
    g_set_error(error, MIME_WALK_ERROR, MIME_WALK_ERROR_LIMIT, "message too large");
    return NULL;
  }

  /* A GByteArray that borrows the GBytes' buffer: the memory stream does not own it
   * and nothing writes to it, so the message bytes are never copied. It is detached
   * again below, after every GMime object referring to it is gone. */
  GByteArray *borrowed = g_byte_array_new();
  guint8 *own_data = borrowed->data;
  borrowed->data = (guint8 *) data + skip;
  borrowed->len = (guint) (len - skip);

  MimeMessage *result = NULL;
  {
    g_autoptr(GMimeStream) stream = g_mime_stream_mem_new_with_byte_array(borrowed);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
    g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    g_autoptr(GMimeMessage) gm = g_mime_parser_construct_message(parser, NULL);

    if (gm == NULL) {
      g_set_error(error, MIME_WALK_ERROR, MIME_WALK_ERROR_PARSE,
                  "cannot parse the bytes as a mail message (no header block)");
    } else {
      g_autoptr(MimeMessage) msg = g_new0(MimeMessage, 1);
      msg->parts = g_ptr_array_new_with_free_func((GDestroyNotify) mime_part_free);
      msg->problems = g_ptr_array_new_with_free_func(g_free);
      mime_walk_metadata(msg, gm);

      MimeWalk w = { 0 };
      w.limits = limits;
      w.msg = msg;
      w.candidates = g_array_new(FALSE, TRUE, sizeof(MimeWalkCandidate));
      g_array_set_clear_func(w.candidates, (GDestroyNotify) mime_walk_candidate_clear);

      mime_walk_report_headers(&w, gm);
      GMimeObject *body = g_mime_message_get_mime_part(gm);
      gboolean ok = body == NULL || mime_walk_object(&w, body, 0, TRUE, error);
      if (ok) {
        for (guint i = 0; i < w.candidates->len; i++) {
          MimeWalkCandidate *c = &g_array_index(w.candidates, MimeWalkCandidate, i);
          c->part->evidence = c->strong || msg->tlsrpt_markers ? MIME_EVIDENCE_STRONG
                                                               : MIME_EVIDENCE_WEAK;
          g_ptr_array_add(msg->parts, g_steal_pointer(&c->part));
        }
        result = g_steal_pointer(&msg);
      }
      g_array_unref(w.candidates);
    }
  }

  borrowed->data = own_data;
  borrowed->len = 0;
  g_byte_array_free(borrowed, TRUE);
  return result;
}
