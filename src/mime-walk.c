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
#include "decode.h"
#include "report-filename.h"

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


static void
mime_walk_problem(MimeWalk *w, gboolean strong, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
mime_walk_problem(MimeWalk *w, gboolean strong, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  MimeProblem *p = g_new0(MimeProblem, 1);
  p->text = g_strdup_vprintf(fmt, ap);
  p->evidence = strong ? MIME_EVIDENCE_STRONG : MIME_EVIDENCE_WEAK;
  g_ptr_array_add(w->msg->problems, p);
  va_end(ap);
}

static void
mime_problem_free(MimeProblem *p)
{
  g_free(p->text);
  g_free(p);
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

/* Whether a leaf of media type @mime (lower case) and file name @fname is a candidate.
 * Returns why (static), or NULL when only its content can tell (*sniff set) or when it
 * is no candidate at all (*sniff clear). */
static const char *
mime_walk_classify(const char *mime, const char *fname, gboolean whole_body,
                   gboolean *strong, gboolean *sniff)
{
  gboolean tlsrpt_name = report_filename_matches(fname);
  gboolean is_text = g_str_has_prefix(mime, "text/");

  const char *why = NULL;
  *strong = FALSE;
  if (g_str_has_prefix(mime, "application/tlsrpt")) {
    why = "media type";
    *strong = TRUE;
  } else {
    for (guint i = 0; i < G_N_ELEMENTS(mime_walk_generic_types) && why == NULL; i++) {
      if (strcmp(mime, mime_walk_generic_types[i]) == 0) {
        why = "media type";
        *strong = tlsrpt_name;
      }
    }
  }
  if (why == NULL && report_filename_has_extension(fname)) {
    why = "file name";
    *strong = tlsrpt_name;
  }
  /* Human-readable text is sniffed only when it is the whole body. */
  *sniff = why == NULL && (!is_text || whole_body);
  return why;
}

/* Keep @content (transfer full) as a candidate, unless @why is NULL and the content
 * does not look like a report. */
static void
mime_walk_add_candidate(MimeWalk *w, GBytes *content, char *mime, const char *fname,
                        const char *why, gboolean strong)
{
  if (why == NULL) {
    gsize len = 0;
    const guint8 *d = g_bytes_get_data(content, &len);
    if (!decode_sniff(d, len, NULL)) {
      g_bytes_unref(content);
      g_free(mime);
      return;
    }
    why = "content";
  }
  MimeWalkCandidate c = { 0 };
  c.part = g_new0(MimePart, 1);
  c.part->content = content;
  c.part->content_type = mime;
  c.part->filename = g_strdup(fname);
  c.part->why = why;
  c.strong = strong;
  g_array_append_val(w->candidates, c);
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
  gboolean strong, sniff;
  const char *why = mime_walk_classify(mime, fname, whole_body, &strong, &sniff);
  if (why == NULL && !sniff)
    return;

  GBytes *content = mime_walk_part_content(part);
  if (content == NULL) {
    mime_walk_problem(w, strong, "part %u (%s): cannot decode its transfer encoding",
                      w->parts_seen, mime);
    return;
  }
  mime_walk_add_candidate(w, content, g_steal_pointer(&mime), fname, why, strong);
}

/* @s (nullable, transfer full) stripped of surrounding white space; NULL when empty. */
static char *
mime_walk_nonempty(char *s)
{
  if (s != NULL && g_strstrip(s)[0] == '\0') {
    g_free(s);
    return NULL;
  }
  return s;
}

static char *
mime_walk_header(GMimeObject *obj, const char *name)
{
  return mime_walk_nonempty(g_strdup(g_mime_object_get_header(obj, name)));
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

/* ---- the fast path ---------------------------------------------------------
 *
 * Most reports have one shape: a header block, then a multipart/report (or /mixed)
 * whose parts are leaves, the report a base64 attachment. For that shape the message is
 * scanned directly: header fields are split by hand, and only the few values the walk
 * uses are handed to GMime's own value parsers (content type, disposition, address
 * list, date, message id, encoded words) and decoders (base64), so the results are the
 * ones the full GMime parse gives, without building and freeing its object tree.
 *
 * Whenever the scan meets something it is not sure GMime would read the same way it
 * declines, and the message goes through GMime: no header block or an irregular header
 * line, NUL bytes in headers, a repeated header the walk uses, 8-bit or control bytes
 * in those headers, a folded quoted string, a content type that is not a plain
 * "type/subtype", nested multiparts, message/ parts, a multipart other than report,
 * mixed, alternative or related, a line that starts with the boundary but is not
 * exactly a boundary line, a candidate whose content is not base64, limits reached.
 * tests/unit/test_mime_walk.c runs every fixture through both paths and compares. */

enum {
  MIME_FAST_CONTENT_TYPE,
  MIME_FAST_CTE,
  MIME_FAST_DISPOSITION,
  MIME_FAST_SUBJECT,
  MIME_FAST_FROM,
  MIME_FAST_DATE,
  MIME_FAST_MESSAGE_ID,
  MIME_FAST_TLS_DOMAIN,
  MIME_FAST_TLS_SUBMITTER,
  MIME_FAST_N_FIELDS,
};

static const char *const mime_fast_field_names[MIME_FAST_N_FIELDS] = {
  "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Subject", "From",
  "Date", "Message-Id", "TLS-Report-Domain", "TLS-Report-Submitter",
};

static const gsize mime_fast_field_lengths[MIME_FAST_N_FIELDS] = {
  12, 25, 19, 7, 4, 4, 10, 17, 20,
};

typedef struct {
  const char *value;      /* after the colon */
  const char *end;        /* end of the field's last line, line end excluded */
} MimeFastField;

typedef struct {
  MimeFastField f[MIME_FAST_N_FIELDS];  /* value NULL: absent */
} MimeFastHeaders;

/* Line at @p (inside [@d, @d + @len)): *next is where the next one starts, or len when
 * the line has no newline (*has_nl FALSE). Returns the line length without "\n" or
 * "\r\n". */
static gsize
mime_fast_line(const char *d, gsize len, gsize p, gsize *next, gboolean *has_nl)
{
  const char *nl = memchr(d + p, '\n', len - p);
  gsize end = nl != NULL ? (gsize) (nl - d) : len;
  *has_nl = nl != NULL;
  *next = nl != NULL ? end + 1 : len;
  if (end > p && d[end - 1] == '\r')
    end--;
  return end - p;
}

/* The bytes of a used field may only be printable ASCII, tab and CRLF line ends; in a
 * structured field (@quotes) a quoted string may not be folded nor hold a backslash. */
static gboolean
mime_fast_field_clean(const MimeFastField *f, gboolean quotes)
{
  gboolean in_quote = FALSE;
  for (const char *c = f->value; c < f->end; c++) {
    guchar ch = (guchar) *c;
    if (ch == '\r') {
      if (c + 1 >= f->end || c[1] != '\n')
        return FALSE;
    } else if (ch == '\n') {
      if (in_quote)
        return FALSE;
    } else if ((ch < 0x20 && ch != '\t') || ch > 0x7e) {
      return FALSE;
    } else if (quotes && ch == '\\') {
      return FALSE;
    } else if (quotes && ch == '"') {
      in_quote = !in_quote;
    }
  }
  return TRUE;
}

/* TRUE when the @n bytes at @s are @name (ASCII letters, digits and '-'), whatever
 * the case. */
static gboolean
mime_fast_name_is(const char *s, const char *name, gsize n)
{
  for (gsize i = 0; i < n; i++) {
    if ((s[i] | 0x20) != (name[i] | 0x20))
      return FALSE;
  }
  return TRUE;
}

/* Split the header block at *pos up to its empty line; *pos is then where the body
 * starts. FALSE: not sure (see above). */
static gboolean
mime_fast_headers(const char *d, gsize len, gsize *pos, MimeFastHeaders *h)
{
  memset(h, 0, sizeof *h);
  gsize p = *pos;
  int cur = -1;           /* field being continued: an index, N_FIELDS (unused) or -1 */
  guint fields = 0;
  for (;;) {
    if (p >= len)
      return FALSE;
    gsize next;
    gboolean has_nl;
    const char *line = d + p;
    gsize n = mime_fast_line(d, len, p, &next, &has_nl);
    if (!has_nl)
      return FALSE;
    if (n == 0) {
      p = next;
      break;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (cur < 0)
        return FALSE;
      if (cur < MIME_FAST_N_FIELDS)
        h->f[cur].end = line + n;
    } else {
      gsize i = 0;
      while (i < n && line[i] != ':' && (guchar) line[i] > 0x20 && (guchar) line[i] < 0x7f)
        i++;
      if (i == 0 || i >= n || line[i] != ':')
        return FALSE;
      fields++;
      cur = MIME_FAST_N_FIELDS;
      for (int k = 0; k < MIME_FAST_N_FIELDS; k++) {
        if (mime_fast_field_lengths[k] == i && mime_fast_name_is(line, mime_fast_field_names[k], i)) {
          if (h->f[k].value != NULL)
            return FALSE;
          h->f[k].value = line + i + 1;
          h->f[k].end = line + n;
          cur = k;
          break;
        }
      }
    }
    p = next;
  }
  if (fields == 0 || memchr(d + *pos, '\0', p - *pos) != NULL)
    return FALSE;
  for (int k = 0; k < MIME_FAST_N_FIELDS; k++) {
    gboolean structured = k == MIME_FAST_CONTENT_TYPE || k == MIME_FAST_DISPOSITION;
    if (h->f[k].value != NULL && !mime_fast_field_clean(&h->f[k], structured))
      return FALSE;
  }
  *pos = p;
  return TRUE;
}

/* The field's value as stored by GMime: its lines joined with "\n" (transfer full). */
static char *
mime_fast_raw(const MimeFastField *f)
{
  char *out = g_malloc((gsize) (f->end - f->value) + 1);
  char *o = out;
  for (const char *c = f->value; c < f->end; c++) {
    if (*c != '\r')
      *o++ = *c;
  }
  *o = '\0';
  return out;
}

/* The value as g_mime_object_get_header() gives it: unfolded, encoded words decoded. */
static char *
mime_fast_value(const MimeFastField *f)
{
  if (f->value == NULL)
    return NULL;
  g_autofree char *raw = mime_fast_raw(f);
  char *unfolded = g_mime_utils_header_unfold(raw);
  /* The bytes are printable ASCII (mime_fast_field_clean()): without an encoded word
   * there is nothing to decode. */
  if (strstr(unfolded, "=?") == NULL)
    return unfolded;
  char *decoded = g_mime_utils_header_decode_text(NULL, unfolded);
  g_free(unfolded);
  return decoded;
}

static gboolean
mime_fast_is_token_char(guchar c)
{
  return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static const char *
mime_fast_skip_space(const char *c, const char *end)
{
  while (c < end && (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n'))
    c++;
  return c;
}

/* A Content-Type or Content-Disposition field, parsed. Simple parameter lists
 * (name=token or name="text", no RFC 2231, no encoded words, no escapes, no repeated
 * names) are read here; anything else is handed to GMime's own parser. */
#define MIME_FAST_MAX_PARAMS 8

typedef struct {
  char *mime;             /* "type/subtype" in lower case; the disposition: NULL */
  gsize type_len;         /* length of "type" in mime */
  guint n_params;
  char *names[MIME_FAST_MAX_PARAMS];
  char *values[MIME_FAST_MAX_PARAMS];
  GMimeContentType *ct;   /* GMime's parse, when the list was not simple */
  GMimeContentDisposition *disp;
} MimeFastType;

static void mime_fast_type_clear(MimeFastType *t);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MimeFastType, mime_fast_type_clear)

static void
mime_fast_type_clear(MimeFastType *t)
{
  g_free(t->mime);
  for (guint i = 0; i < t->n_params; i++) {
    g_free(t->names[i]);
    g_free(t->values[i]);
  }
  if (t->ct != NULL)
    g_object_unref(t->ct);
  if (t->disp != NULL)
    g_object_unref(t->disp);
  memset(t, 0, sizeof *t);
}

static const char *
mime_fast_type_param(const MimeFastType *t, const char *name)
{
  if (t->ct != NULL)
    return g_mime_content_type_get_parameter(t->ct, name);
  if (t->disp != NULL)
    return g_mime_content_disposition_get_parameter(t->disp, name);
  for (guint i = 0; i < t->n_params; i++) {
    if (g_ascii_strcasecmp(t->names[i], name) == 0)
      return t->values[i];
  }
  return NULL;
}

/* TRUE when the type is @type/@subtype (lower case; subtype NULL: any). */
static gboolean
mime_fast_type_is(const MimeFastType *t, const char *type, const char *subtype)
{
  gsize n = strlen(type);
  if (t->type_len != n || memcmp(t->mime, type, n) != 0)
    return FALSE;
  return subtype == NULL || strcmp(t->mime + n + 1, subtype) == 0;
}

/* Parameters from @c to @end: FALSE when they are not simple (see above). */
static gboolean
mime_fast_params(const char *c, const char *end, MimeFastType *t)
{
  for (;;) {
    c = mime_fast_skip_space(c, end);
    if (c >= end)
      return TRUE;
    if (*c != ';')
      return FALSE;
    c = mime_fast_skip_space(c + 1, end);
    if (c >= end)
      return TRUE;
    const char *name = c;
    while (c < end && mime_fast_is_token_char((guchar) *c) && *c != '*')
      c++;
    if (c == name || c >= end || *c != '=' || t->n_params == MIME_FAST_MAX_PARAMS)
      return FALSE;
    gsize name_len = (gsize) (c - name);
    const char *value;
    gsize value_len;
    c++;
    if (c < end && *c == '"') {
      value = ++c;
      while (c < end && *c != '"') {
        if (*c == '\\' || *c == '\t' || *c == '\r' || *c == '\n' ||
            (*c == '=' && c + 1 < end && c[1] == '?'))
          return FALSE;
        c++;
      }
      if (c >= end)
        return FALSE;
      value_len = (gsize) (c - value);
      c++;
      if (value_len == 0 || value[0] == ' ' || value[value_len - 1] == ' ')
        return FALSE;
    } else {
      value = c;
      while (c < end && mime_fast_is_token_char((guchar) *c))
        c++;
      value_len = (gsize) (c - value);
      if (value_len == 0)
        return FALSE;
    }
    for (guint i = 0; i < t->n_params; i++) {
      if (strlen(t->names[i]) == name_len && g_ascii_strncasecmp(t->names[i], name, name_len) == 0)
        return FALSE;
    }
    t->names[t->n_params] = g_strndup(name, name_len);
    t->values[t->n_params] = g_strndup(value, value_len);
    t->n_params++;
  }
}

/* The Content-Type of a header block, when it is a plain "type/subtype[;params]"
 * (FALSE: not sure). An absent field is text/plain. */
static gboolean
mime_fast_content_type(const MimeFastField *f, MimeFastType *t)
{
  memset(t, 0, sizeof *t);
  if (f->value == NULL) {
    t->mime = g_strdup("text/plain");
    t->type_len = 4;
    return TRUE;
  }
  const char *c = mime_fast_skip_space(f->value, f->end);
  const char *type = c;
  while (c < f->end && mime_fast_is_token_char((guchar) *c))
    c++;
  if (c == type || c >= f->end || *c != '/')
    return FALSE;
  gsize type_len = (gsize) (c - type);
  const char *subtype = ++c;
  while (c < f->end && mime_fast_is_token_char((guchar) *c))
    c++;
  if (c == subtype)
    return FALSE;
  const char *after = mime_fast_skip_space(c, f->end);
  if (after < f->end && *after != ';')
    return FALSE;
  t->mime = g_ascii_strdown(type, (gssize) (c - type));
  t->type_len = type_len;
  if (mime_fast_params(c, f->end, t))
    return TRUE;

  /* Not simple: GMime's parser reads the parameters. */
  char *mime = g_steal_pointer(&t->mime);
  mime_fast_type_clear(t);
  t->mime = mime;
  t->type_len = type_len;
  g_autofree char *raw = mime_fast_raw(f);
  t->ct = g_mime_content_type_parse(NULL, raw);
  return t->ct != NULL;
}

/* The Content-Disposition of a header block (its parameters only; absent: none). */
static void
mime_fast_disposition(const MimeFastField *f, MimeFastType *t)
{
  memset(t, 0, sizeof *t);
  if (f->value == NULL)
    return;
  const char *c = mime_fast_skip_space(f->value, f->end);
  const char *token = c;
  while (c < f->end && mime_fast_is_token_char((guchar) *c))
    c++;
  if (c > token && mime_fast_params(c, f->end, t))
    return;
  mime_fast_type_clear(t);
  g_autofree char *raw = mime_fast_raw(f);
  t->disp = g_mime_content_disposition_parse(NULL, raw);
}

typedef enum {
  MIME_FAST_DONE,         /* walked */
  MIME_FAST_DECLINED,     /* not sure: let GMime parse the message */
} MimeFastStatus;

/* Content [@start, @end) of a leaf, transfer-decoded as GMime's data wrapper would,
 * or NULL when the fast path does not decode that encoding. */
static GBytes *
mime_fast_content(const char *start, const char *end, GMimeContentEncoding enc)
{
  gsize len = (gsize) (end - start);
  if (enc == GMIME_CONTENT_ENCODING_BASE64) {
    GMimeEncoding state;
    g_mime_encoding_init_decode(&state, enc);
    gsize cap = g_mime_encoding_outlen(&state, len) + 4;
    char *out = g_malloc(cap);
    gsize n = g_mime_encoding_step(&state, start, len, out);
    n += g_mime_encoding_flush(&state, "", 0, out + n);
    g_assert(n <= cap);
    return g_bytes_new_take(out, n);
  }
  return NULL;
}

/* One leaf whose headers are @h and content [@start, @end). */
static MimeFastStatus
mime_fast_leaf(MimeWalk *w, const MimeFastHeaders *h, const MimeFastType *ct,
               const char *start, const char *end, gboolean whole_body)
{
  MimeFastType disp;
  mime_fast_disposition(&h->f[MIME_FAST_DISPOSITION], &disp);
  /* g_mime_part_get_filename(): the disposition's filename, else the type's name. */
  const char *fname = mime_fast_type_param(&disp, "filename");
  if (fname == NULL)
    fname = mime_fast_type_param(ct, "name");
  if (fname != NULL && fname[0] == '\0')
    fname = NULL;

  MimeFastStatus status = MIME_FAST_DONE;
  gboolean strong, sniff;
  const char *why = mime_walk_classify(ct->mime, fname, whole_body, &strong, &sniff);
  if (why != NULL || sniff) {
    GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;
    if (h->f[MIME_FAST_CTE].value != NULL) {
      g_autofree char *v = mime_fast_value(&h->f[MIME_FAST_CTE]);
      enc = g_mime_content_encoding_from_string(v);
    }
    GBytes *content = mime_fast_content(start, end, enc);
    if (content != NULL) {
      mime_walk_add_candidate(w, content, g_strdup(ct->mime), fname, why, strong);
    } else if (why == NULL && (enc == GMIME_CONTENT_ENCODING_DEFAULT ||
                               enc == GMIME_CONTENT_ENCODING_7BIT ||
                               enc == GMIME_CONTENT_ENCODING_8BIT ||
                               enc == GMIME_CONTENT_ENCODING_BINARY) &&
               !decode_sniff((const guint8 *) start, (gsize) (end - start), NULL)) {
      /* Not transfer-encoded and its content does not look like a report: GMime's
       * content is a prefix of these bytes, which would not either. */
    } else {
      status = MIME_FAST_DECLINED;
    }
  }
  mime_fast_type_clear(&disp);
  return status;
}

static gboolean
mime_fast_multipart_known(const MimeFastType *ct)
{
  static const char *const subtypes[] = { "report", "mixed", "alternative", "related" };
  for (guint i = 0; i < G_N_ELEMENTS(subtypes); i++) {
    if (mime_fast_type_is(ct, "multipart", subtypes[i]))
      return TRUE;
  }
  return FALSE;
}

/* What a body line is against the boundary @b (with its leading "--", length @blen). */
typedef enum {
  MIME_FAST_LINE_TEXT,
  MIME_FAST_LINE_BOUNDARY,
  MIME_FAST_LINE_END,
  MIME_FAST_LINE_UNSURE,
} MimeFastLine;

static MimeFastLine
mime_fast_classify_line(const char *line, gsize n, const char *b, gsize blen)
{
  if (n < 2 || line[0] != '-' || line[1] != '-')
    return MIME_FAST_LINE_TEXT;
  if (n < blen || memcmp(line, b, blen) != 0)
    return MIME_FAST_LINE_TEXT;
  if (n == blen)
    return MIME_FAST_LINE_BOUNDARY;
  if (n == blen + 2 && line[blen] == '-' && line[blen + 1] == '-')
    return MIME_FAST_LINE_END;
  return MIME_FAST_LINE_UNSURE;
}

static MimeFastStatus
mime_fast_multipart(MimeWalk *w, const char *d, gsize len, gsize pos, const MimeFastType *ct)
{
  if (!mime_fast_multipart_known(ct) || w->limits->max_mime_depth < 1)
    return MIME_FAST_DECLINED;
  const char *boundary = mime_fast_type_param(ct, "boundary");
  if (boundary == NULL || boundary[0] == '\0' || strlen(boundary) > 200)
    return MIME_FAST_DECLINED;
  for (const char *c = boundary; *c != '\0'; c++) {
    if ((guchar) *c < 0x20 || (guchar) *c > 0x7e)
      return MIME_FAST_DECLINED;
  }
  if (mime_fast_type_is(ct, "multipart", "report")) {
    const char *rt = mime_fast_type_param(ct, "report-type");
    if (rt != NULL && g_ascii_strcasecmp(rt, "tlsrpt") == 0)
      w->msg->tlsrpt_markers = TRUE;
  }
  g_autofree char *b = g_strconcat("--", boundary, NULL);
  gsize blen = strlen(b);

  /* The preface, up to the first boundary. */
  MimeFastLine kind = MIME_FAST_LINE_TEXT;
  while (pos < len) {
    gsize next;
    gboolean has_nl;
    gsize n = mime_fast_line(d, len, pos, &next, &has_nl);
    kind = mime_fast_classify_line(d + pos, n, b, blen);
    pos = next;
    if (kind != MIME_FAST_LINE_TEXT)
      break;
  }
  if (kind != MIME_FAST_LINE_BOUNDARY)
    return MIME_FAST_DECLINED;    /* no part at all, or not sure */

  /* Each part: headers, then content up to the next boundary line. */
  for (;;) {
    if (++w->parts_seen > w->limits->max_parts)
      return MIME_FAST_DECLINED;
    MimeFastHeaders h;
    if (pos < len && (d[pos] == '\n' || (d[pos] == '\r' && pos + 1 < len && d[pos + 1] == '\n'))) {
      memset(&h, 0, sizeof h);    /* no header at all: text/plain */
      pos += d[pos] == '\n' ? 1 : 2;
    } else if (!mime_fast_headers(d, len, &pos, &h)) {
      return MIME_FAST_DECLINED;
    }
    g_auto(MimeFastType) pct = { 0 };
    if (!mime_fast_content_type(&h.f[MIME_FAST_CONTENT_TYPE], &pct) ||
        mime_fast_type_is(&pct, "multipart", NULL) || mime_fast_type_is(&pct, "message", NULL))
      return MIME_FAST_DECLINED;

    gsize start = pos, content_end = len;
    kind = MIME_FAST_LINE_TEXT;
    while (pos < len) {
      gsize next;
      gboolean has_nl;
      gsize n = mime_fast_line(d, len, pos, &next, &has_nl);
      kind = mime_fast_classify_line(d + pos, n, b, blen);
      if (kind == MIME_FAST_LINE_UNSURE)
        return MIME_FAST_DECLINED;
      if (kind != MIME_FAST_LINE_TEXT) {
        /* The line end before the boundary belongs to it: GMime drops 2 bytes when the
         * boundary line ends in CR (CRLF, or a bare CR at the end of the input), else 1.
         * (mime_fast_line() left that CR out of the @n bytes of the line.) */
        gsize crlf = pos + n < next && d[pos + n] == '\r' ? 2 : 1;
        content_end = pos - start > crlf ? pos - crlf : start;
        pos = next;
        break;
      }
      pos = next;
    }
    if (mime_fast_leaf(w, &h, &pct, d + start, d + content_end, FALSE) != MIME_FAST_DONE)
      return MIME_FAST_DECLINED;
    if (kind != MIME_FAST_LINE_BOUNDARY)
      return MIME_FAST_DONE;      /* closing boundary (the epilogue is not read) or EOS */
  }
}

/* RFC 5322 atext. */
static gboolean
mime_fast_is_atext(guchar c)
{
  return g_ascii_isalnum(c) || (c > 0x20 && c < 0x7f && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Length of a plain addr-spec at @s (dot-atom "@" dot-atom of letters, digits and
 * '-'), or 0. */
static gsize
mime_fast_addr_spec(const char *s, const char *end)
{
  const char *c = s;
  for (;;) {
    const char *word = c;
    while (c < end && mime_fast_is_atext((guchar) *c))
      c++;
    if (c == word || c >= end)
      return 0;
    if (*c == '@')
      break;
    if (*c != '.')
      return 0;
    c++;
  }
  c++;
  guint labels = 0;
  for (;;) {
    const char *label = c;
    while (c < end && (g_ascii_isalnum(*c) || *c == '-'))
      c++;
    if (c == label)
      return 0;
    labels++;
    if (c >= end || *c != '.')
      break;
    c++;
  }
  return labels >= 2 ? (gsize) (c - s) : 0;
}

/* The address of a From value of the plain shapes "a@b.c", "<a@b.c>" or
 * "Some Name <a@b.c>" (words of atext without '=' or '.'), or NULL. */
static char *
mime_fast_plain_from(const char *v)
{
  const char *end = v + strlen(v);
  gsize n = mime_fast_addr_spec(v, end);
  if (n > 0 && v + n == end)
    return g_strndup(v, n);
  const char *lt = strchr(v, '<');
  if (lt == NULL)
    return NULL;
  for (const char *c = v; c < lt; c++) {
    if (*c == ' ') {
      if (c == v || c[-1] == ' ')
        return NULL;
    } else if (!mime_fast_is_atext((guchar) *c) || *c == '=') {
      return NULL;
    }
  }
  if (lt > v && lt[-1] != ' ')
    return NULL;
  n = mime_fast_addr_spec(lt + 1, end);
  if (n == 0 || lt + 1 + n + 1 != end || lt[1 + n] != '>')
    return NULL;
  return g_strndup(lt + 1, n);
}

/* First mailbox of the From field, as g_mime_message_get_from() would list it. */
static char *
mime_fast_from(const MimeFastField *f)
{
  if (f->value == NULL)
    return NULL;
  {
    g_autofree char *v = mime_fast_value(f);
    char *addr = v != NULL ? mime_fast_plain_from(v) : NULL;
    if (addr != NULL)
      return addr;
  }
  g_autofree char *raw = mime_fast_raw(f);
  InternetAddressList *list = internet_address_list_parse(NULL, raw);
  if (list == NULL)
    return NULL;
  char *addr = mime_walk_first_mailbox(list);
  g_object_unref(list);
  return addr;
}

static char *
mime_fast_report_header(const MimeFastField *f)
{
  return mime_walk_nonempty(mime_fast_value(f));
}

static MimeFastStatus
mime_fast_walk(MimeWalk *w, const char *d, gsize len)
{
  MimeFastHeaders h;
  gsize pos = 0;
  if (!mime_fast_headers(d, len, &pos, &h))
    return MIME_FAST_DECLINED;
  if (w->limits->max_parts < 1)
    return MIME_FAST_DECLINED;
  g_auto(MimeFastType) ct = { 0 };
  if (!mime_fast_content_type(&h.f[MIME_FAST_CONTENT_TYPE], &ct) ||
      mime_fast_type_is(&ct, "message", NULL))
    return MIME_FAST_DECLINED;

  MimeMessage *msg = w->msg;
  msg->subject = mime_fast_value(&h.f[MIME_FAST_SUBJECT]);
  if (h.f[MIME_FAST_MESSAGE_ID].value != NULL) {
    g_autofree char *v = mime_fast_value(&h.f[MIME_FAST_MESSAGE_ID]);
    char *mid = g_mime_utils_decode_message_id(v);
    if (mid != NULL && mid[0] == '\0')
      g_clear_pointer(&mid, g_free);
    msg->message_id = mid;
  }
  msg->from = mime_fast_from(&h.f[MIME_FAST_FROM]);
  if (h.f[MIME_FAST_DATE].value != NULL) {
    g_autofree char *v = mime_fast_value(&h.f[MIME_FAST_DATE]);
    GDateTime *date = g_mime_utils_header_decode_date(v);
    if (date != NULL) {
      msg->date = g_date_time_to_unix(date);
      g_date_time_unref(date);
    }
  }
  msg->report_domain = mime_fast_report_header(&h.f[MIME_FAST_TLS_DOMAIN]);
  msg->submitter = mime_fast_report_header(&h.f[MIME_FAST_TLS_SUBMITTER]);
  if (msg->report_domain != NULL || msg->submitter != NULL)
    msg->tlsrpt_markers = TRUE;

  w->parts_seen = 1;
  if (mime_fast_type_is(&ct, "multipart", NULL))
    return mime_fast_multipart(w, d, len, pos, &ct);
  return mime_fast_leaf(w, &h, &ct, d + pos, d + len, TRUE);
}

/* ---- both paths -------------------------------------------------------------- */

static MimeMessage *
mime_walk_new_message(void)
{
  MimeMessage *msg = g_new0(MimeMessage, 1);
  msg->parts = g_ptr_array_new_with_free_func((GDestroyNotify) mime_part_free);
  msg->problems = g_ptr_array_new_with_free_func((GDestroyNotify) mime_problem_free);
  return msg;
}

static void
mime_walk_begin(MimeWalk *w, const TrLimits *limits)
{
  memset(w, 0, sizeof *w);
  w->limits = limits;
  w->msg = mime_walk_new_message();
  w->candidates = g_array_new(FALSE, TRUE, sizeof(MimeWalkCandidate));
  g_array_set_clear_func(w->candidates, (GDestroyNotify) mime_walk_candidate_clear);
}

/* Returns the message when @ok (transfer full), else frees it; frees the walk. */
static MimeMessage *
mime_walk_end(MimeWalk *w, gboolean ok)
{
  MimeMessage *msg = g_steal_pointer(&w->msg);
  if (ok) {
    for (guint i = 0; i < w->candidates->len; i++) {
      MimeWalkCandidate *c = &g_array_index(w->candidates, MimeWalkCandidate, i);
      c->part->evidence = c->strong || msg->tlsrpt_markers ? MIME_EVIDENCE_STRONG
                                                           : MIME_EVIDENCE_WEAK;
      g_ptr_array_add(msg->parts, g_steal_pointer(&c->part));
    }
    /* The same rule for the parts that could not be read. */
    for (guint i = 0; i < msg->problems->len && msg->tlsrpt_markers; i++)
      ((MimeProblem *) msg->problems->pdata[i])->evidence = MIME_EVIDENCE_STRONG;
  } else {
    g_clear_pointer(&msg, mime_message_free);
  }
  g_array_unref(w->candidates);
  w->candidates = NULL;
  return msg;
}

static MimeMessage *
mime_walk_gmime(const guint8 *data, gsize len, const TrLimits *limits, GError **error)
{
  /* A GByteArray that borrows the caller's buffer: the memory stream does not own it
   * and nothing writes to it, so the message bytes are never copied. It is detached
   * again below, after every GMime object referring to it is gone. */
  GByteArray *borrowed = g_byte_array_new();
  guint8 *own_data = borrowed->data;
  borrowed->data = (guint8 *) data;
  borrowed->len = (guint) len;

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
      MimeWalk w;
      mime_walk_begin(&w, limits);
      mime_walk_metadata(w.msg, gm);
      mime_walk_report_headers(&w, gm);
      GMimeObject *body = g_mime_message_get_mime_part(gm);
      gboolean ok = body == NULL || mime_walk_object(&w, body, 0, TRUE, error);
      result = mime_walk_end(&w, ok);
    }
  }

  borrowed->data = own_data;
  borrowed->len = 0;
  g_byte_array_free(borrowed, TRUE);
  return result;
}

MimeMessage *
mime_walk_message_path(GBytes *message, const TrLimits *limits, MimeWalkPath path,
                       gboolean *declined, GError **error)
{
  g_return_val_if_fail(message != NULL, NULL);
  g_return_val_if_fail(limits != NULL, NULL);
  if (declined != NULL)
    *declined = FALSE;

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

  if (path != MIME_WALK_PATH_GMIME) {
    MimeWalk w;
    mime_walk_begin(&w, limits);
    gboolean done =
        mime_fast_walk(&w, (const char *) data + skip, len - skip) == MIME_FAST_DONE;
    MimeMessage *msg = mime_walk_end(&w, done);
    if (msg != NULL)
      return msg;
    if (declined != NULL)
      *declined = TRUE;
    if (path == MIME_WALK_PATH_FAST)
      return NULL;
  }
  return mime_walk_gmime(data + skip, len - skip, limits, error);
}

MimeMessage *
mime_walk_message(GBytes *message, const TrLimits *limits, GError **error)
{
  return mime_walk_message_path(message, limits, MIME_WALK_PATH_AUTO, NULL, error);
}
