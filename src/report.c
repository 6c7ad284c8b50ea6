/* report.c - the TLS report (RFC 8460 §4): read the JSON (report-json.c's strict
 * reader, else json-c) and convert its values, tolerate the quirks of
 * real senders (each recorded once per report as a short deviation string), normalize,
 * serialize with a hand-written writer, and read §5.1 file names.
 *
 * Decisions where RFC 8460 is silent:
 * - Counts are I-JSON integers: anything above 2^53-1 is out of range and becomes 0.
 *   Fractions are truncated, numeric strings are read, negatives become 0; each with a
 *   deviation.
 * - Datetimes must fall in 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z after applying
 *   the zone offset. Fractional seconds are dropped; a leap second reads as :59.
 * - In file names, an 8-digit stamp is a compact date (YYYYMMDD), not epoch seconds:
 *   epoch values that short predate TLS reporting by decades. A date-only end stamp
 *   means the last second of that day. */
#include "report.h"
#include "report-deviation.h"
#include "report-json.h"

#include <math.h>
#include <string.h>

#define REPORT_MAX_COUNT      G_GINT64_CONSTANT(9007199254740991)  /* 2^53 - 1 */
#define REPORT_MAX_EPOCH      G_GINT64_CONSTANT(253402300799)      /* 9999-12-31T23:59:59Z */
#define REPORT_PARSE_CHUNK    (1u << 20)
#ifndef REPORT_INCREMENTAL_MIN                  /* report_parse(): incremental from here */
#define REPORT_INCREMENTAL_MIN (64u * 1024)
#endif
#define REPORT_TOKENER_KEEP_MAX (256u * 1024)    /* larger documents: fresh tokeners after */
#define REPORT_ARENA_FIRST_BLOCK 2048u
#define REPORT_ARENA_MAX_BLOCK (256u * 1024)
#define REPORT_INTERN_AFTER   64u       /* failure details before values are shared */
#define REPORT_INTERN_SLOTS   4096u
#define REPORT_INTERN_MAX_LEN 256u

/* ---- small helpers ---------------------------------------------------------- */

static void
report_policy_free(ReportPolicy *p)
{
  if (p == NULL)
    return;
  g_free(p->policy_type);
  g_clear_pointer(&p->policy_strings, g_ptr_array_unref);
  g_free(p->policy_domain);
  g_clear_pointer(&p->mx_hosts, g_ptr_array_unref);
  g_clear_pointer(&p->failures, g_ptr_array_unref);
  g_free(p);
}

static ReportPolicy *
report_policy_new(void)
{
  ReportPolicy *p = g_new0(ReportPolicy, 1);
  p->policy_strings = g_ptr_array_new_with_free_func(g_free);
  p->mx_hosts = g_ptr_array_new_with_free_func(g_free);
  p->failures = g_ptr_array_new();     /* the details live in the report's arena */
  return p;
}

static Report *
report_new(void)
{
  Report *r = g_new0(Report, 1);
  r->policies = g_ptr_array_new_with_free_func((GDestroyNotify) report_policy_free);
  r->deviations = report_deviations_new();
  return r;
}

static void report_arena_free(struct ReportArena *a);

void
report_free(Report *report)
{
  if (report == NULL)
    return;
  g_free(report->organization_name);
  g_free(report->contact_info);
  g_free(report->report_id);
  g_clear_pointer(&report->policies, g_ptr_array_unref);
  g_clear_pointer(&report->deviations, g_array_unref);
  report_arena_free(report->arena);
  g_free(report->ingest.source);
  g_free(report->ingest.submitter);
  g_free(report->ingest.report_domain);
  g_free(report->ingest.filename);
  g_free(report->ingest.message_id);
  g_free(report->ingest.raw_extension);
  g_clear_pointer(&report->ingest.raw, g_bytes_unref);
  g_free(report);
}

/* Record a deviation once per report. */
static void
report_deviation(Report *r, ReportDeviation d)
{
  report_deviations_add(r->deviations, d);
}

static gboolean
report_is_json_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- datetimes -------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static gint64
report_days_from_civil(gint64 y, guint m, guint d)
{
  y -= m <= 2;
  gint64 era = (y >= 0 ? y : y - 399) / 400;
  guint yoe = (guint) (y - era * 400);
  guint doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  guint doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (gint64) doe - 719468;
}

static void
report_civil_from_days(gint64 z, gint64 *y_out, guint *m_out, guint *d_out)
{
  z += 719468;
  gint64 era = (z >= 0 ? z : z - 146096) / 146097;
  guint doe = (guint) (z - era * 146097);
  guint yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  gint64 y = (gint64) yoe + era * 400;
  guint doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  guint mp = (5 * doy + 2) / 153;
  guint d = doy - (153 * mp + 2) / 5 + 1;
  guint m = mp < 10 ? mp + 3 : mp - 9;
  *y_out = y + (m <= 2);
  *m_out = m;
  *d_out = d;
}

static guint
report_days_in_month(guint y, guint m)
{
  static const guint8 days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return days[m - 1];
}

/* Exactly @n ASCII digits at *p (bounded by @end); advances *p. */
static gboolean
report_digits(const char **p, const char *end, guint n, guint *out)
{
  if ((gsize) (end - *p) < n)
    return FALSE;
  guint v = 0;
  for (guint i = 0; i < n; i++) {
    char c = (*p)[i];
    if (!g_ascii_isdigit(c))
      return FALSE;
    v = v * 10 + (guint) (c - '0');
  }
  *p += n;
  *out = v;
  return TRUE;
}

static gboolean
report_civil_valid(guint y, guint mo, guint d)
{
  return y >= 1970 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 &&
         d <= report_days_in_month(y, mo);
}

/* The date-time grammar proper, on [s, end). @date_only (nullable) is set when only a
 * date was given. */
static gboolean
report_parse_datetime_range(const char *s, const char *end, gint64 *epoch_out,
                            gboolean *zoneless_out, gboolean *date_only)
{
  const char *p = s;
  guint y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  gint64 offset = 0;
  gboolean zoneless = TRUE;

  if (!report_digits(&p, end, 4, &y) || p == end || *p++ != '-' ||
      !report_digits(&p, end, 2, &mo) || p == end || *p++ != '-' ||
      !report_digits(&p, end, 2, &d))
    return FALSE;
  if (!report_civil_valid(y, mo, d))
    return FALSE;
  if (date_only != NULL)
    *date_only = p == end;
  if (p != end) {
    if (*p != 'T' && *p != 't' && *p != ' ')
      return FALSE;
    p++;
    if (!report_digits(&p, end, 2, &h) || p == end || *p++ != ':' ||
        !report_digits(&p, end, 2, &mi))
      return FALSE;
    if (p != end && *p == ':') {
      p++;
      if (!report_digits(&p, end, 2, &sec))
        return FALSE;
      if (p != end && (*p == '.' || *p == ',')) {
        p++;
        if (p == end || !g_ascii_isdigit(*p))
          return FALSE;
        while (p != end && g_ascii_isdigit(*p))
          p++;
      }
    }
    if (h > 23 || mi > 59 || sec > 60)
      return FALSE;
    if (sec == 60)
      sec = 59;
    if (p != end) {
      if ((*p == 'Z' || *p == 'z') && p + 1 == end) {
        zoneless = FALSE;
        p++;
      } else if (*p == '+' || *p == '-') {
        gint64 sign = *p == '-' ? -1 : 1;
        guint oh = 0, om = 0;
        p++;
        if (!report_digits(&p, end, 2, &oh))
          return FALSE;
        if (p != end && *p == ':')
          p++;
        if (p != end && !report_digits(&p, end, 2, &om))
          return FALSE;
        if (oh > 23 || om > 59)
          return FALSE;
        offset = sign * ((gint64) oh * 3600 + (gint64) om * 60);
        zoneless = FALSE;
      }
    }
  }
  if (p != end)
    return FALSE;

  gint64 epoch = report_days_from_civil(y, mo, d) * 86400 + (gint64) h * 3600 +
                 (gint64) mi * 60 + (gint64) sec - offset;
  if (epoch < 0 || epoch > REPORT_MAX_EPOCH)
    return FALSE;
  *epoch_out = epoch;
  if (zoneless_out != NULL)
    *zoneless_out = zoneless;
  return TRUE;
}

gboolean
report_parse_datetime(const char *s, gint64 *epoch_out, gboolean *zoneless)
{
  if (s == NULL)
    return FALSE;
  const char *end = s + strlen(s);
  while (s < end && g_ascii_isspace(*s))
    s++;
  while (end > s && g_ascii_isspace(end[-1]))
    end--;
  gint64 epoch = 0;
  gboolean zl = FALSE;
  if (!report_parse_datetime_range(s, end, &epoch, &zl, NULL))
    return FALSE;
  if (epoch_out != NULL)
    *epoch_out = epoch;
  if (zoneless != NULL)
    *zoneless = zl;
  return TRUE;
}

static void
report_put2(char *p, guint v)
{
  p[0] = (char) ('0' + v / 10 % 10);
  p[1] = (char) ('0' + v % 10);
}

void
report_format_datetime(gint64 epoch, char buf[21])
{
  epoch = CLAMP(epoch, 0, REPORT_MAX_EPOCH);
  gint64 days = epoch / 86400;
  guint secs = (guint) (epoch % 86400);
  gint64 y;
  guint m, d;
  report_civil_from_days(days, &y, &m, &d);
  report_put2(buf, (guint) (y / 100));
  report_put2(buf + 2, (guint) (y % 100));
  buf[4] = '-';
  report_put2(buf + 5, m);
  buf[7] = '-';
  report_put2(buf + 8, d);
  buf[10] = 'T';
  report_put2(buf + 11, secs / 3600);
  buf[13] = ':';
  report_put2(buf + 14, secs / 60 % 60);
  buf[16] = ':';
  report_put2(buf + 17, secs % 60);
  buf[19] = 'Z';
  buf[20] = '\0';
}

/* ---- file names (§5.1) -------------------------------------------------------- */

static gboolean
report_has_suffix_ci(const char *s, gsize len, const char *suffix)
{
  gsize n = strlen(suffix);
  return len >= n && g_ascii_strncasecmp(s + len - n, suffix, n) == 0;
}

/* A begin/end stamp: epoch digits, a compact date (YYYYMMDD, see the file comment),
 * compact ISO 8601 (YYYYMMDDTHHMMSS[Z]) or RFC 3339. */
static gboolean
report_filename_stamp(const char *s, gsize len, gboolean is_end, gint64 *out)
{
  const char *end = s + len;
  gsize ndigits = 0;
  while (ndigits < len && g_ascii_isdigit(s[ndigits]))
    ndigits++;

  if (ndigits == len && len != 8) {
    if (len > 12)
      return FALSE;
    gint64 v = 0;
    for (gsize i = 0; i < len; i++)
      v = v * 10 + (s[i] - '0');
    if (v > REPORT_MAX_EPOCH)
      return FALSE;
    *out = v;
    return TRUE;
  }

  if (ndigits == 8) {
    const char *p = s;
    guint y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    report_digits(&p, end, 4, &y);
    report_digits(&p, end, 2, &mo);
    report_digits(&p, end, 2, &d);
    if (!report_civil_valid(y, mo, d))
      return FALSE;
    gboolean date_only = p == end;
    if (!date_only) {
      if ((*p != 'T' && *p != 't') || ++p == end || !report_digits(&p, end, 2, &h) ||
          !report_digits(&p, end, 2, &mi) || !report_digits(&p, end, 2, &sec))
        return FALSE;
      if (p != end && (*p == 'Z' || *p == 'z'))
        p++;
      if (p != end || h > 23 || mi > 59 || sec > 59)
        return FALSE;
    }
    gint64 v = report_days_from_civil(y, mo, d) * 86400 + (gint64) h * 3600 +
               (gint64) mi * 60 + (gint64) sec;
    if (date_only && is_end)
      v += 86399;
    *out = v;
    return TRUE;
  }

  gboolean date_only = FALSE;
  if (!report_parse_datetime_range(s, end, out, NULL, &date_only))
    return FALSE;
  if (date_only && is_end)
    *out += 86399;
  return TRUE;
}

static gboolean
report_filename_field_ok(const char *s, gsize len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++) {
    guchar c = (guchar) s[i];
    if (c < 0x20 || c == 0x7f)
      return FALSE;
  }
  return g_utf8_validate_len(s, len, NULL);
}

gboolean
report_filename_parse(const char *filename, ReportFilename *out)
{
  g_return_val_if_fail(out != NULL, FALSE);
  memset(out, 0, sizeof *out);
  if (filename == NULL)
    return FALSE;

  const char *base = filename;
  for (const char *p = filename; *p != '\0'; p++)
    if (*p == '/' || *p == '\\')
      base = p + 1;
  gsize len = strlen(base);
  if (report_has_suffix_ci(base, len, ".gz"))
    len -= 3;
  else if (report_has_suffix_ci(base, len, ".zip"))
    len -= 4;
  if (report_has_suffix_ci(base, len, ".json"))
    len -= 5;

  const char *field[5];
  gsize flen[5];
  guint n = 0;
  const char *start = base;
  for (const char *p = base;; p++) {
    if (p == base + len || *p == '!') {
      if (n == 5)
        return FALSE;
      field[n] = start;
      flen[n] = (gsize) (p - start);
      if (!report_filename_field_ok(field[n], flen[n]))
        return FALSE;
      n++;
      if (p == base + len)
        break;
      start = p + 1;
    }
  }
  if (n < 4)
    return FALSE;

  gint64 begin, end;
  if (!report_filename_stamp(field[2], flen[2], FALSE, &begin) ||
      !report_filename_stamp(field[3], flen[3], TRUE, &end))
    return FALSE;

  out->sender = g_strndup(field[0], flen[0]);
  out->policy_domain = g_strndup(field[1], flen[1]);
  out->begin = begin;
  out->end = end;
  out->unique_id = n == 5 ? g_strndup(field[4], flen[4]) : NULL;
  return TRUE;
}

void
report_filename_clear(ReportFilename *f)
{
  if (f == NULL)
    return;
  g_free(f->sender);
  g_free(f->policy_domain);
  g_free(f->unique_id);
  memset(f, 0, sizeof *f);
}

/* ---- per-thread tokeners -------------------------------------------------------- */

/* json_tokener_new_ex() allocates a stack of @depth levels and a buffer: each thread
 * keeps its tokeners and resets them instead. Slots: the document, the elements of a
 * failure-details array, a JSON-encoded policy-string. */
enum {
  REPORT_TOK_DOCUMENT,
  REPORT_TOK_ELEMENT,
  REPORT_TOK_ENCODED,
  REPORT_TOK_SLOTS,
};

/* The arenas of the JSON values converted: the document's, and one element's of a
 * failure-details array parsed ahead (report-json.h). */
enum {
  REPORT_VALUES_DOCUMENT,
  REPORT_VALUES_ELEMENT,
  REPORT_VALUES_SLOTS,
};

typedef struct {
  TrJsonTokener *tok[REPORT_TOK_SLOTS];
  int depth[REPORT_TOK_SLOTS];
  ReportJsonArena *values[REPORT_VALUES_SLOTS];
} ReportTokeners;

static void
report_tokeners_free(gpointer p)
{
  ReportTokeners *t = p;
  for (guint i = 0; i < REPORT_TOK_SLOTS; i++)
    g_clear_pointer(&t->tok[i], json_tokener_free);
  for (guint i = 0; i < REPORT_VALUES_SLOTS; i++)
    g_clear_pointer(&t->values[i], report_json_arena_free);
  g_free(t);
}

static GPrivate report_tokeners = G_PRIVATE_INIT(report_tokeners_free);

static ReportTokeners *
report_tokeners_get(void)
{
  ReportTokeners *t = g_private_get(&report_tokeners);
  if (t == NULL) {
    t = g_new0(ReportTokeners, 1);
    g_private_set(&report_tokeners, t);
  }
  return t;
}

/* This thread's arena for @slot, empty. (transfer none) */
static ReportJsonArena *
report_values(guint slot)
{
  ReportTokeners *t = report_tokeners_get();
  if (t->values[slot] == NULL)
    t->values[slot] = report_json_arena_new();
  else
    report_json_arena_reset(t->values[slot]);
  return t->values[slot];
}

/* This thread's tokener for @slot, reset, with @depth levels and no flags; NULL when
 * out of memory. (transfer none) */
static TrJsonTokener *
report_tokener(guint slot, int depth)
{
  ReportTokeners *t = report_tokeners_get();
  if (t->tok[slot] != NULL && t->depth[slot] != depth)
    g_clear_pointer(&t->tok[slot], json_tokener_free);
  if (t->tok[slot] == NULL) {
    t->tok[slot] = json_tokener_new_ex(depth);
    t->depth[slot] = depth;
  } else {
    json_tokener_reset(t->tok[slot]);
  }
  if (t->tok[slot] != NULL)
    json_tokener_set_flags(t->tok[slot], 0);
  return t->tok[slot];
}

/* A tokener's buffer keeps the size of the longest string it has read: after a large
 * document, let the next one start afresh. */
static void
report_tokeners_trim(void)
{
  ReportTokeners *t = g_private_get(&report_tokeners);
  for (guint i = 0; t != NULL && i < REPORT_TOK_SLOTS; i++)
    g_clear_pointer(&t->tok[i], json_tokener_free);
}

/* ---- the arena of failure details ------------------------------------------------ */

typedef struct ReportArenaBlock {
  struct ReportArenaBlock *prev;
  gsize pad_;                     /* keeps the data after the header 16-byte aligned */
} ReportArenaBlock;

typedef struct {
  const char *s;
  guint32 len;
  guint32 hash;
} ReportInternSlot;

struct ReportArena {
  ReportArenaBlock *block;        /* the newest; each links to the one before */
  char *next;
  gsize left;
  gsize block_size;               /* of the next block */
  guint failures;
  ReportInternSlot *intern;       /* REPORT_INTERN_SLOTS, once there are many failures */
};

static struct ReportArena *
report_arena(Report *r)
{
  if (r->arena == NULL) {
    r->arena = g_new0(struct ReportArena, 1);
    r->arena->block_size = REPORT_ARENA_FIRST_BLOCK;
  }
  return r->arena;
}

static void
report_arena_free(struct ReportArena *a)
{
  if (a == NULL)
    return;
  while (a->block != NULL) {
    ReportArenaBlock *prev = a->block->prev;
    g_free(a->block);
    a->block = prev;
  }
  g_free(a->intern);
  g_free(a);
}

/* @n bytes aligned to @align (a power of two, at most 16). */
static gpointer
report_arena_alloc(struct ReportArena *a, gsize n, gsize align)
{
  gsize pad = (align - ((guintptr) a->next & (align - 1))) & (align - 1);
  if (a->next == NULL || n > a->left || pad > a->left - n) {
    gsize size = MAX(a->block_size, sizeof(ReportArenaBlock) + n);
    ReportArenaBlock *b = g_malloc(size);
    b->prev = a->block;
    a->block = b;
    a->next = (char *) (b + 1);
    a->left = size - sizeof *b;
    a->block_size = MIN(a->block_size * 2, REPORT_ARENA_MAX_BLOCK);
    pad = 0;
  }
  char *p = a->next + pad;
  a->next = p + n;
  a->left -= pad + n;
  return p;
}

/* A copy of @s (@len bytes, no NUL among them) in the arena. With @share, once the
 * report has many failure details, the same value is stored once (a small
 * direct-mapped cache: repeated host names, result types, reason codes). */
static char *
report_arena_string(struct ReportArena *a, const char *s, gsize len, gboolean share)
{
  ReportInternSlot *slot = NULL;
  guint32 h = 2166136261u;
  if (share && a->intern != NULL && len <= REPORT_INTERN_MAX_LEN) {
    for (gsize i = 0; i < len; i++)
      h = (h ^ (guchar) s[i]) * 16777619u;
    slot = &a->intern[h & (REPORT_INTERN_SLOTS - 1)];
    if (slot->s != NULL && slot->hash == h && slot->len == len && memcmp(slot->s, s, len) == 0)
      return (char *) slot->s;
  }
  char *copy = report_arena_alloc(a, len + 1, 1);
  memcpy(copy, s, len);
  copy[len] = '\0';
  if (slot != NULL) {
    slot->s = copy;
    slot->len = (guint32) len;
    slot->hash = h;
  }
  return copy;
}

/* ---- parsing: typed field access -------------------------------------------- */

typedef enum {
  REPORT_FIELD_ABSENT,
  REPORT_FIELD_NULL,
  REPORT_FIELD_PRESENT,
} ReportFieldState;

/* Make @s (@len bytes) a valid UTF-8 C string: cut at an embedded NUL and repair
 * invalid UTF-8, recording either. *repaired gets the repaired copy when one was
 * needed (the caller frees it); *s and *len then point to it. */
static void
report_clean_string(Report *r, const char **s, gsize *len, char **repaired)
{
  const char *nul = memchr(*s, '\0', *len);
  if (nul != NULL) {
    *len = (gsize) (nul - *s);
    report_deviation(r, REPORT_DEV_STRING_NUL);
  }
  if (!g_utf8_validate_len(*s, *len, NULL)) {
    report_deviation(r, REPORT_DEV_STRING_INVALID_UTF8);
    *repaired = g_utf8_make_valid(*s, (gssize) *len);
    *s = *repaired;
    *len = strlen(*repaired);
  }
}

/* A json-c string value as a valid UTF-8 C string. (transfer full) */
static char *
report_dup_string(Report *r, const char *s, gsize len)
{
  char *repaired = NULL;
  report_clean_string(r, &s, &len, &repaired);
  return repaired != NULL ? repaired : g_strndup(s, len);
}

static char *
report_dup_json_string(Report *r, const ReportJsonValue *v)
{
  return report_dup_string(r, v->text, (gsize) v->n);
}

/* Member @key of @obj when it is an object, else absent. */
static ReportFieldState
report_member(const ReportJsonValue *obj, const char *key, const ReportJsonValue **val)
{
  if (!report_json_member(obj, key, val))
    return REPORT_FIELD_ABSENT;
  return *val == NULL ? REPORT_FIELD_NULL : REPORT_FIELD_PRESENT;
}

/* The text of @v, the (non-null) value of a member: a string's bytes (*is_string), or
 * the JSON text of a number or boolean; FALSE for objects and arrays. Anything but a
 * string is recorded as the deviation @not_string. The text belongs to @v. */
static gboolean
report_value_text(Report *r, const ReportJsonValue *v, ReportDeviation not_string,
                  const char **s, gsize *len, gboolean *is_string)
{
  switch (v->type) {
  case REPORT_JSON_STRING:
    *s = v->text;
    *len = (gsize) v->n;
    *is_string = TRUE;
    return TRUE;
  case REPORT_JSON_INT:
  case REPORT_JSON_DOUBLE:
  case REPORT_JSON_BOOLEAN:
    report_deviation(r, not_string);
    *s = v->text;
    *len = strlen(*s);
    *is_string = FALSE;
    return TRUE;
  default:
    report_deviation(r, not_string);
    return FALSE;
  }
}

/* A string member. Numbers and booleans are taken as their JSON text, objects and
 * arrays as absent (each with a deviation). NULL when absent or null; *state says
 * which. (transfer full) */
static char *
report_get_string(Report *r, const ReportJsonValue *obj, const char *key,
                  ReportDeviation not_string, ReportFieldState *state)
{
  const ReportJsonValue *v;
  ReportFieldState st = report_member(obj, key, &v);
  if (state != NULL)
    *state = st;
  if (st != REPORT_FIELD_PRESENT)
    return NULL;
  const char *s;
  gsize len;
  gboolean is_string;
  if (!report_value_text(r, v, not_string, &s, &len, &is_string)) {
    if (state != NULL)
      *state = REPORT_FIELD_ABSENT;
    return NULL;
  }
  return is_string ? report_dup_string(r, s, len) : g_strndup(s, len);
}

/* An optional string: "" and absent both become NULL. (transfer full) */
static char *
report_get_optional(Report *r, const ReportJsonValue *obj, const char *key,
                    ReportDeviation not_string, gboolean *was_empty)
{
  char *s = report_get_string(r, obj, key, not_string, NULL);
  if (s != NULL && *s == '\0') {
    g_free(s);
    if (was_empty != NULL)
      *was_empty = TRUE;
    return NULL;
  }
  return s;
}

/* The deviations of one session count field. */
typedef struct {
  const char *key;
  ReportDeviation missing, not_number, negative, out_of_range, is_string, not_integer;
} ReportCountField;

#define REPORT_COUNT_FIELD(name, ID)                                                      \
  { name, REPORT_DEV_##ID##_MISSING, REPORT_DEV_##ID##_NOT_NUMBER,                        \
    REPORT_DEV_##ID##_NEGATIVE, REPORT_DEV_##ID##_OUT_OF_RANGE, REPORT_DEV_##ID##_IS_STRING, \
    REPORT_DEV_##ID##_NOT_INTEGER }
static const ReportCountField report_total_successful =
    REPORT_COUNT_FIELD("total-successful-session-count", TOTAL_SUCCESSFUL);
static const ReportCountField report_total_failure =
    REPORT_COUNT_FIELD("total-failure-session-count", TOTAL_FAILURE);
static const ReportCountField report_failed_session_count =
    REPORT_COUNT_FIELD("failed-session-count", FAILED_SESSION_COUNT);
#undef REPORT_COUNT_FIELD

static gint64
report_count_from_string(Report *r, const ReportCountField *cf, const char *s, gsize len)
{
  while (len > 0 && g_ascii_isspace(*s))
    s++, len--;
  while (len > 0 && g_ascii_isspace(s[len - 1]))
    len--;
  gboolean negative = len > 0 && s[0] == '-';
  gsize i = negative ? 1 : 0;
  if (i == len) {
    report_deviation(r, cf->not_number);
    return 0;
  }
  gint64 v = 0;
  for (; i < len; i++) {
    if (!g_ascii_isdigit(s[i])) {
      report_deviation(r, cf->not_number);
      return 0;
    }
    if (v <= REPORT_MAX_COUNT)
      v = v * 10 + (s[i] - '0');
  }
  if (negative && v != 0) {
    report_deviation(r, cf->negative);
    return 0;
  }
  if (v > REPORT_MAX_COUNT) {
    report_deviation(r, cf->out_of_range);
    return 0;
  }
  report_deviation(r, cf->is_string);
  return v;
}

/* A session count from the (non-null) value @v of the member @cf: an integer in
 * 0 .. 2^53-1. */
static gint64
report_count_value(Report *r, const ReportCountField *cf, const ReportJsonValue *v)
{
  switch (v->type) {
  case REPORT_JSON_INT: {
    gint64 i = v->u.i;
    if (i < 0 && i != G_MININT64) {
      report_deviation(r, cf->negative);
      return 0;
    }
    if (i < 0 || i > REPORT_MAX_COUNT) {
      report_deviation(r, cf->out_of_range);
      return 0;
    }
    return i;
  }
  case REPORT_JSON_DOUBLE: {
    double d = v->u.d;
    if (!isfinite(d) || d > (double) REPORT_MAX_COUNT || d < -(double) REPORT_MAX_COUNT) {
      report_deviation(r, cf->out_of_range);
      return 0;
    }
    if (d <= -1.0) {
      report_deviation(r, cf->negative);
      return 0;
    }
    report_deviation(r, cf->not_integer);
    return d < 0 ? 0 : (gint64) d;
  }
  case REPORT_JSON_STRING:
    return report_count_from_string(r, cf, v->text, (gsize) v->n);
  default:
    report_deviation(r, cf->not_number);
    return 0;
  }
}

/* A session count member of the object @obj; a missing one is recorded when @obj is
 * there. */
static gint64
report_get_count(Report *r, const ReportJsonValue *obj, const ReportCountField *cf)
{
  const ReportJsonValue *v;
  if (report_member(obj, cf->key, &v) == REPORT_FIELD_PRESENT)
    return report_count_value(r, cf, v);
  if (obj != NULL)
    report_deviation(r, cf->missing);
  return 0;
}

/* ---- parsing: the report's parts ---------------------------------------------- */

static void
report_add_policy_string(Report *r, ReportPolicy *p, char *s)
{
  gsize len = strlen(s);
  if (len > 0 && (s[len - 1] == '\r' || s[len - 1] == '\n')) {
    while (len > 0 && (s[len - 1] == '\r' || s[len - 1] == '\n'))
      s[--len] = '\0';
    report_deviation(r, REPORT_DEV_POLICY_STRING_CR);
  }
  g_ptr_array_add(p->policy_strings, s);
}

/* Microsoft's TLSA policy-string: one element holding a JSON-encoded array of strings.
 * Expands it into @p and returns TRUE, or FALSE when @s is not that. */
static gboolean
report_expand_encoded_array(Report *r, ReportPolicy *p, const char *s)
{
  const char *q = s;
  while (report_is_json_space(*q))
    q++;
  if (*q != '[')
    return FALSE;
  gsize len = strlen(q);
  if (len > G_MAXINT)
    return FALSE;
  TrJsonTokener *tok = report_tokener(REPORT_TOK_ENCODED, 2);
  if (tok == NULL)
    return FALSE;
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
  g_autoptr(TrJson) arr = json_tokener_parse_ex(tok, q, (int) len);
  gsize end = json_tokener_get_parse_end(tok);
  json_tokener_reset(tok);
  if (arr == NULL || !json_object_is_type(arr, json_type_array))
    return FALSE;
  for (gsize i = end; i < len; i++)
    if (!report_is_json_space(q[i]))
      return FALSE;
  gsize n = json_object_array_length(arr);
  for (gsize i = 0; i < n; i++)
    if (!json_object_is_type(json_object_array_get_idx(arr, i), json_type_string))
      return FALSE;
  for (gsize i = 0; i < n; i++) {
    TrJson *e = json_object_array_get_idx(arr, i);
    report_add_policy_string(r, p, report_dup_string(r, json_object_get_string(e),
                                                     (gsize) json_object_get_string_len(e)));
  }
  report_deviation(r, REPORT_DEV_POLICY_STRING_ENCODED_ARRAY);
  return TRUE;
}

static void
report_parse_policy_strings(Report *r, ReportPolicy *p, const ReportJsonValue *pol)
{
  const ReportJsonValue *v;
  ReportFieldState st = report_member(pol, "policy-string", &v);
  gboolean needs = g_strcmp0(p->policy_type, "sts") == 0 ||
                   g_strcmp0(p->policy_type, "tlsa") == 0;
  if (st != REPORT_FIELD_PRESENT) {
    if (needs)
      report_deviation(r, REPORT_DEV_POLICY_STRING_MISSING);
    return;
  }
  if (report_json_is(v, REPORT_JSON_STRING)) {
    report_deviation(r, REPORT_DEV_POLICY_STRING_IS_STRING);
    char *s = report_dup_json_string(r, v);
    if (report_expand_encoded_array(r, p, s))
      g_free(s);
    else
      report_add_policy_string(r, p, s);
    return;
  }
  if (!report_json_is(v, REPORT_JSON_ARRAY)) {
    report_deviation(r, REPORT_DEV_POLICY_STRING_NOT_ARRAY);
    return;
  }
  gsize n = v->n;
  if (n == 0 && needs)
    report_deviation(r, REPORT_DEV_POLICY_STRING_MISSING);   /* [] and absent alike */
  for (gsize i = 0; i < n; i++) {
    const ReportJsonValue *e = v->u.items[i];
    if (!report_json_is(e, REPORT_JSON_STRING)) {
      report_deviation(r, REPORT_DEV_POLICY_STRING_NON_STRING_ENTRY);
      continue;
    }
    char *s = report_dup_json_string(r, e);
    if (report_expand_encoded_array(r, p, s))
      g_free(s);
    else
      report_add_policy_string(r, p, s);
  }
}

static void
report_add_mx_host(Report *r, ReportPolicy *p, char *s)
{
  if (g_ascii_strncasecmp(s, "mx:", 3) == 0) {
    report_deviation(r, REPORT_DEV_MX_HOST_PREFIX);
    const char *q = s + 3;
    while (*q == ' ' || *q == '\t')
      q++;
    memmove(s, q, strlen(q) + 1);
  }
  if (*s == '\0') {
    report_deviation(r, REPORT_DEV_MX_HOST_EMPTY_ENTRY);
    g_free(s);
    return;
  }
  g_ptr_array_add(p->mx_hosts, s);
}

static void
report_parse_mx_hosts(Report *r, ReportPolicy *p, const ReportJsonValue *pol)
{
  const ReportJsonValue *v;
  if (report_member(pol, "mx-host", &v) != REPORT_FIELD_PRESENT)
    return;
  if (report_json_is(v, REPORT_JSON_STRING)) {
    report_deviation(r, REPORT_DEV_MX_HOST_IS_STRING);
    report_add_mx_host(r, p, report_dup_json_string(r, v));
    return;
  }
  if (!report_json_is(v, REPORT_JSON_ARRAY)) {
    report_deviation(r, REPORT_DEV_MX_HOST_NOT_ARRAY);
    return;
  }
  gsize n = v->n;
  for (gsize i = 0; i < n; i++) {
    const ReportJsonValue *e = v->u.items[i];
    if (!report_json_is(e, REPORT_JSON_STRING)) {
      report_deviation(r, REPORT_DEV_MX_HOST_NON_STRING_ENTRY);
      continue;
    }
    report_add_mx_host(r, p, report_dup_json_string(r, e));
  }
}

static char *
report_lower_domain(const char *s)
{
  if (g_utf8_validate(s, -1, NULL))
    return g_utf8_strdown(s, -1);
  g_autofree char *valid = g_utf8_make_valid(s, -1);
  return g_utf8_strdown(valid, -1);
}

/* The members of a failure detail, found in one pass over the object. */
enum {
  REPORT_FD_RESULT_TYPE,
  REPORT_FD_SENDING_MTA_IP,
  REPORT_FD_RECEIVING_MX_HOSTNAME,
  REPORT_FD_RECEIVING_MX_HELO,
  REPORT_FD_RECEIVING_IP,
  REPORT_FD_ADDITIONAL_INFORMATION,
  REPORT_FD_FAILURE_REASON_CODE,
  REPORT_FD_FAILED_SESSION_COUNT,
  REPORT_FD_N,
};

static const char *const report_fd_names[REPORT_FD_N] = {
  "result-type", "sending-mta-ip", "receiving-mx-hostname", "receiving-mx-helo",
  "receiving-ip", "additional-information", "failure-reason-code", "failed-session-count",
};

/* "... is not a string" of each (string) member. */
static const ReportDeviation report_fd_not_string[REPORT_FD_N] = {
  REPORT_DEV_RESULT_TYPE_NOT_STRING, REPORT_DEV_SENDING_MTA_IP_NOT_STRING,
  REPORT_DEV_RECEIVING_MX_HOSTNAME_NOT_STRING, REPORT_DEV_RECEIVING_MX_HELO_NOT_STRING,
  REPORT_DEV_RECEIVING_IP_NOT_STRING, REPORT_DEV_ADDITIONAL_INFORMATION_NOT_STRING,
  REPORT_DEV_FAILURE_REASON_CODE_NOT_STRING, REPORT_DEV_FAILED_SESSION_COUNT_NOT_NUMBER,
};

static int
report_fd_index(const char *key)
{
  for (int i = 0; i < REPORT_FD_N; i++)
    if (strcmp(key, report_fd_names[i]) == 0)
      return i;
  return -1;
}

/* A string of a failure detail, in the arena: as report_get_string() (@keep_empty) or
 * report_get_optional(), from the member's state and value. */
static char *
report_fd_string(Report *r, ReportFieldState st, const ReportJsonValue *v, int field,
                 gboolean keep_empty, gboolean share, gboolean *was_empty)
{
  if (st != REPORT_FIELD_PRESENT)
    return NULL;
  const char *s;
  gsize len;
  gboolean is_string;
  if (!report_value_text(r, v, report_fd_not_string[field], &s, &len, &is_string))
    return NULL;
  g_autofree char *repaired = NULL;
  if (is_string)
    report_clean_string(r, &s, &len, &repaired);
  if (len == 0 && !keep_empty) {
    if (was_empty != NULL)
      *was_empty = TRUE;
    return NULL;
  }
  return report_arena_string(r->arena, s, len, share);
}

static ReportFailure *
report_parse_failure(Report *r, const ReportJsonValue *fd)
{
  struct ReportArena *a = report_arena(r);
  if (a->intern == NULL && ++a->failures >= REPORT_INTERN_AFTER)
    a->intern = g_new0(ReportInternSlot, REPORT_INTERN_SLOTS);

  const ReportJsonValue *val[REPORT_FD_N] = { NULL };
  ReportFieldState st[REPORT_FD_N] = { REPORT_FIELD_ABSENT };
  for (guint32 m = 0; m < fd->n; m++) {
    const ReportJsonValue *fd_val = fd->u.members[m].value;
    int i = report_fd_index(fd->u.members[m].key);
    if (i >= 0) {
      val[i] = fd_val;
      st[i] = fd_val != NULL ? REPORT_FIELD_PRESENT : REPORT_FIELD_NULL;
    }
  }

  ReportFailure *f = report_arena_alloc(a, sizeof *f, _Alignof(ReportFailure));
  memset(f, 0, sizeof *f);
  f->result_type = report_fd_string(r, st[REPORT_FD_RESULT_TYPE], val[REPORT_FD_RESULT_TYPE],
                                    REPORT_FD_RESULT_TYPE, TRUE, TRUE, NULL);
  if (f->result_type == NULL) {
    report_deviation(r, REPORT_DEV_RESULT_TYPE_MISSING);
    f->result_type = report_arena_string(a, "", 0, TRUE);
  }

  gboolean empty = FALSE;
  /* The RFC's own example omits receiving-ip: only these two count as missing. */
  gboolean missing = st[REPORT_FD_SENDING_MTA_IP] != REPORT_FIELD_PRESENT ||
                     st[REPORT_FD_RECEIVING_MX_HOSTNAME] != REPORT_FIELD_PRESENT;
  static const struct {
    int field;
    gboolean share;               /* sending addresses rarely repeat */
    gsize offset;
  } strings[] = {
    { REPORT_FD_SENDING_MTA_IP, FALSE, G_STRUCT_OFFSET(ReportFailure, sending_mta_ip) },
    { REPORT_FD_RECEIVING_MX_HOSTNAME, TRUE,
      G_STRUCT_OFFSET(ReportFailure, receiving_mx_hostname) },
    { REPORT_FD_RECEIVING_MX_HELO, TRUE, G_STRUCT_OFFSET(ReportFailure, receiving_mx_helo) },
    { REPORT_FD_RECEIVING_IP, TRUE, G_STRUCT_OFFSET(ReportFailure, receiving_ip) },
    { REPORT_FD_ADDITIONAL_INFORMATION, TRUE,
      G_STRUCT_OFFSET(ReportFailure, additional_information) },
    { REPORT_FD_FAILURE_REASON_CODE, TRUE,
      G_STRUCT_OFFSET(ReportFailure, failure_reason_code) },
  };
  for (guint i = 0; i < G_N_ELEMENTS(strings); i++) {
    int k = strings[i].field;
    G_STRUCT_MEMBER(char *, f, strings[i].offset) =
        report_fd_string(r, st[k], val[k], k, FALSE, strings[i].share, &empty);
  }
  if (missing)
    report_deviation(r, REPORT_DEV_FAILURE_DETAIL_FIELDS_MISSING);
  if (empty)
    report_deviation(r, REPORT_DEV_FAILURE_DETAIL_FIELD_EMPTY);

  if (st[REPORT_FD_FAILED_SESSION_COUNT] == REPORT_FIELD_PRESENT)
    f->failed_session_count = report_count_value(r, &report_failed_session_count,
                                                 val[REPORT_FD_FAILED_SESSION_COUNT]);
  else
    report_deviation(r, report_failed_session_count.missing);
  return f;
}

/* The failure details of one "failure-details" array parsed ahead of the document
 * (report_stream_array()): what report_parse_failures() would have found in it. */
typedef struct {
  GPtrArray *failures;            /* ReportFailure* in the arena; NULL once taken */
  GArray *deviations;             /* ReportDeviation: distinct, in the order first met */
} ReportDetails;

static void
report_details_free(ReportDetails *d)
{
  if (d->failures != NULL)
    g_ptr_array_unref(d->failures);
  g_array_unref(d->deviations);
  g_free(d);
}

/* One element of a failure-details array, into @failures; deviations are recorded in
 * @devs (r->deviations when converting a tree). */
static void
report_add_failure_element(Report *r, GPtrArray *failures, GArray *devs,
                           const ReportJsonValue *e)
{
  GArray *saved = r->deviations;
  r->deviations = devs;
  if (!report_json_is(e, REPORT_JSON_OBJECT))
    report_deviation(r, REPORT_DEV_FAILURE_DETAIL_NOT_OBJECT);
  else
    g_ptr_array_add(failures, report_parse_failure(r, e));
  r->deviations = saved;
}

typedef struct {
  Report *r;
  const ReportFilename *fname;
  GPtrArray *details;             /* ReportDetails*, when parsed incrementally */
  gboolean restart;               /* the tree does not match what was parsed ahead */
} ReportParse;

static void
report_parse_failures(ReportParse *ps, ReportPolicy *p, const ReportJsonValue *entry)
{
  Report *r = ps->r;
  const ReportJsonValue *v;
  if (report_member(entry, "failure-details", &v) != REPORT_FIELD_PRESENT)
    return;
  if (report_json_is(v, REPORT_JSON_OBJECT)) {
    report_deviation(r, REPORT_DEV_FAILURE_DETAILS_SINGLE_OBJECT);
    report_add_failure_element(r, p->failures, r->deviations, v);
  } else if (report_json_is(v, REPORT_JSON_ARRAY)) {
    gsize n = v->n;
    if (ps->details != NULL && n > 0) {
      /* Parsed ahead: the tree holds [index] in its place. */
      const ReportJsonValue *m = v->u.items[0];
      gint64 idx = report_json_is(m, REPORT_JSON_INT) ? m->u.i : -1;
      ReportDetails *d = idx >= 0 && idx < (gint64) ps->details->len
                             ? ps->details->pdata[idx] : NULL;
      if (n != 1 || d == NULL || d->failures == NULL) {
        ps->restart = TRUE;
        return;
      }
      for (guint i = 0; i < d->deviations->len; i++)
        report_deviation(r, g_array_index(d->deviations, ReportDeviation, i));
      g_ptr_array_unref(p->failures);
      p->failures = g_steal_pointer(&d->failures);
    } else {
      for (gsize i = 0; i < n; i++)
        report_add_failure_element(r, p->failures, r->deviations, v->u.items[i]);
    }
  } else {
    report_deviation(r, REPORT_DEV_FAILURE_DETAILS_NOT_ARRAY);
  }

  gint64 sum = 0;
  for (guint i = 0; i < p->failures->len; i++) {
    const ReportFailure *f = p->failures->pdata[i];
    sum += f->failed_session_count;   /* each <= 2^53 - 1: cannot overflow in practice */
    if (sum > REPORT_MAX_COUNT)
      sum = REPORT_MAX_COUNT;
  }
  if (sum > p->total_failure)
    report_deviation(r, REPORT_DEV_FAILURE_COUNTS_EXCEED_TOTAL);
}

static gboolean
report_known_policy_type(const char *t)
{
  return strcmp(t, "sts") == 0 || strcmp(t, "tlsa") == 0 || strcmp(t, "no-policy-found") == 0;
}

static ReportPolicy *
report_parse_policy(ReportParse *ps, const ReportJsonValue *entry)
{
  Report *r = ps->r;
  const ReportFilename *fname = ps->fname;
  ReportPolicy *p = report_policy_new();
  const ReportJsonValue *pol = NULL;
  if (report_member(entry, "policy", &pol) != REPORT_FIELD_PRESENT ||
      !report_json_is(pol, REPORT_JSON_OBJECT)) {
    report_deviation(r, REPORT_DEV_POLICY_MISSING);
    pol = NULL;
  }

  p->policy_type = report_get_string(r, pol, "policy-type", REPORT_DEV_POLICY_TYPE_NOT_STRING, NULL);
  if (p->policy_type == NULL || *p->policy_type == '\0') {
    report_deviation(r, REPORT_DEV_POLICY_TYPE_MISSING);
    if (p->policy_type == NULL)
      p->policy_type = g_strdup("");
  } else if (!report_known_policy_type(p->policy_type)) {
    report_deviation(r, REPORT_DEV_POLICY_TYPE_UNKNOWN);
  }

  report_parse_policy_strings(r, p, pol);

  g_autofree char *domain = report_get_optional(r, pol, "policy-domain",
                                                REPORT_DEV_POLICY_DOMAIN_NOT_STRING, NULL);
  if (domain != NULL) {
    p->policy_domain = report_lower_domain(domain);
  } else {
    report_deviation(r, REPORT_DEV_POLICY_DOMAIN_MISSING);
    if (fname != NULL && fname->policy_domain != NULL && *fname->policy_domain != '\0')
      p->policy_domain = report_lower_domain(fname->policy_domain);
  }

  report_parse_mx_hosts(r, p, pol);

  const ReportJsonValue *summary = NULL;
  if (report_member(entry, "summary", &summary) != REPORT_FIELD_PRESENT ||
      !report_json_is(summary, REPORT_JSON_OBJECT)) {
    report_deviation(r, REPORT_DEV_SUMMARY_MISSING);
    summary = NULL;
  }
  p->total_successful = report_get_count(r, summary, &report_total_successful);
  p->total_failure = report_get_count(r, summary, &report_total_failure);

  report_parse_failures(ps, p, entry);
  return p;
}

/* One end of the date-range; FALSE when missing or unusable. */
static gboolean
report_parse_range_end(Report *r, const ReportJsonValue *range, const char *key,
                       ReportDeviation missing, ReportDeviation unparseable, gint64 *out)
{
  const ReportJsonValue *v;
  if (report_member(range, key, &v) != REPORT_FIELD_PRESENT) {
    if (range != NULL)
      report_deviation(r, missing);
    return FALSE;
  }
  if (report_json_is(v, REPORT_JSON_INT)) {
    gint64 e = v->u.i;
    if (e < 0 || e > REPORT_MAX_EPOCH) {
      report_deviation(r, unparseable);
      return FALSE;
    }
    report_deviation(r, REPORT_DEV_DATETIME_NUMBER);
    *out = e;
    return TRUE;
  }
  if (!report_json_is(v, REPORT_JSON_STRING)) {
    report_deviation(r, unparseable);
    return FALSE;
  }
  g_autofree char *s = report_dup_json_string(r, v);
  gboolean zoneless = FALSE;
  if (!report_parse_datetime(s, out, &zoneless)) {
    report_deviation(r, unparseable);
    return FALSE;
  }
  if (zoneless)
    report_deviation(r, REPORT_DEV_DATETIME_ZONELESS);
  return TRUE;
}

static gboolean
report_parse_date_range(Report *r, const ReportJsonValue *root, const ReportFilename *fname,
                        GError **error)
{
  const ReportJsonValue *range = NULL;
  if (report_member(root, "date-range", &range) != REPORT_FIELD_PRESENT ||
      !report_json_is(range, REPORT_JSON_OBJECT)) {
    report_deviation(r, REPORT_DEV_DATE_RANGE_MISSING);
    range = NULL;
  }
  gboolean have_begin = report_parse_range_end(r, range, "start-datetime",
                                               REPORT_DEV_START_DATETIME_MISSING,
                                               REPORT_DEV_START_DATETIME_UNPARSEABLE, &r->begin);
  gboolean have_end = report_parse_range_end(r, range, "end-datetime",
                                             REPORT_DEV_END_DATETIME_MISSING,
                                             REPORT_DEV_END_DATETIME_UNPARSEABLE, &r->end);

  if ((!have_begin || !have_end) && fname == NULL) {
    g_set_error_literal(error, REPORT_ERROR, REPORT_ERROR_INVALID, "no usable date-range");
    return FALSE;
  }
  if (fname != NULL) {
    if (!have_begin || !have_end)
      report_deviation(r, REPORT_DEV_DATE_RANGE_FROM_FILENAME);
    if (!have_begin)
      r->begin = fname->begin;
    else if (r->begin != fname->begin)
      report_deviation(r, REPORT_DEV_FILENAME_BEGIN_DIFFERS);
    if (!have_end)
      r->end = fname->end;
    else if (r->end != fname->end)
      report_deviation(r, REPORT_DEV_FILENAME_END_DIFFERS);
  }
  if (r->end < r->begin)
    report_deviation(r, REPORT_DEV_DATE_RANGE_REVERSED);
  return TRUE;
}

static void
report_check_fname_domain(Report *r, const ReportFilename *fname)
{
  if (fname == NULL || fname->policy_domain == NULL)
    return;
  gboolean any = FALSE;
  for (guint i = 0; i < r->policies->len; i++) {
    const ReportPolicy *p = r->policies->pdata[i];
    if (p->policy_domain == NULL)
      continue;
    any = TRUE;
    if (g_ascii_strcasecmp(p->policy_domain, fname->policy_domain) == 0)
      return;
  }
  if (any)
    report_deviation(r, REPORT_DEV_FILENAME_POLICY_DOMAIN_DIFFERS);
}

/* ---- tokenizing ----------------------------------------------------------------
 *
 * The document tokener is fed the text in pieces. In incremental mode a scanner walks
 * the text ahead of it; at each `"failure-details" : [` it parses the array's elements
 * one by one with a second tokener (its depth limit reduced by the array's nesting, so
 * that it accepts exactly what the document tokener would), converts each and frees it,
 * and gives the document tokener `[N]` instead of the array (N: index in ps->details).
 * json-c then sees a document that differs only inside arrays it would have accepted,
 * so it accepts or rejects the same and reports the same error. When the scanner meets
 * what it does not follow (a comment, a single quote, an element json-c rejects or that
 * the scanner cannot delimit), the document tokener gets `[0,0,...,` for the elements
 * converted so far and then the original text from that element on: its error is then
 * the error of the original document. If it reports none, the document is parsed again
 * as a tree (ps->restart). */

typedef struct {
  const char *data;
  gsize len;
  guint depth;                    /* max-json-depth */
  TrJsonTokener *doc;
  gsize fed;                      /* bytes of @data given to @doc */
  enum json_tokener_error jerr;   /* json_tokener_continue while @doc wants more */
  TrJson *root;                   /* once jerr is success */
  gsize end;                      /* offset in @data just after the top-level value */
  gboolean gave_up;               /* the rest went to @doc unscanned */
} ReportStream;

/* Give @doc @n bytes: the original text at @data + st->fed when @copy is NULL (and
 * advance st->fed), else @copy (a substitute). */
static void
report_stream_feed(ReportStream *st, const char *copy, gsize n)
{
  const char *p = copy != NULL ? copy : st->data + st->fed;
  gsize off = 0;
  while (off < n && st->jerr == json_tokener_continue) {
    gsize chunk = MIN(n - off, (gsize) REPORT_PARSE_CHUNK);
    TrJson *obj = json_tokener_parse_ex(st->doc, p + off, (int) chunk);
    st->jerr = json_tokener_get_error(st->doc);
    if (st->jerr == json_tokener_success) {
      st->root = obj;
      st->end = st->fed + off + json_tokener_get_parse_end(st->doc);
      if (copy != NULL)
        st->gave_up = TRUE;     /* cannot happen: a substitute is never a whole value */
    } else {
      json_object_put(obj);
    }
    off += chunk;
  }
  if (copy == NULL)
    st->fed += n;
}

/* Give @doc the original text up to @pos. */
static void
report_stream_feed_to(ReportStream *st, gsize pos)
{
  if (pos > st->fed)
    report_stream_feed(st, NULL, pos - st->fed);
}

/* Whether the JSON string body @s (@len bytes, escapes undone as json-c does, an
 * escaped NUL ending it as json-c's object keys end) equals the ASCII @want. */
static gboolean
report_json_key_is(const char *s, gsize len, const char *want)
{
  gsize wlen = strlen(want);
  if (len == wlen && memcmp(s, want, len) == 0)
    return TRUE;
  if (memchr(s, '\\', len) == NULL)
    return FALSE;
  gsize w = 0;
  for (gsize i = 0; i < len; i++) {
    guint c = (guchar) s[i];
    if (c == '\\') {
      if (++i == len)
        return FALSE;
      switch (s[i]) {
      case '"': case '\\': case '/': c = (guchar) s[i]; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u':
        if (len - i < 5)
          return FALSE;
        c = 0;
        for (guint k = 1; k <= 4; k++) {
          if (!g_ascii_isxdigit(s[i + k]))
            return FALSE;
          c = c * 16 + (guint) g_ascii_xdigit_value(s[i + k]);
        }
        i += 4;
        if (c >= 0x80)
          return FALSE;       /* never one of want's ASCII bytes */
        break;
      default:
        return FALSE;         /* json-c rejects it */
      }
    }
    if (c == 0)
      return w == wlen;
    if (w == wlen || want[w] != (char) c)
      return FALSE;
    w++;
  }
  return w == wlen;
}

/* The offset of the '"' closing the string that opens at @pos, or @len. */
static gsize
report_scan_string(const char *data, gsize len, gsize pos)
{
  gsize i = pos + 1;
  for (;;) {
    const char *q = memchr(data + i, '"', len - i);
    if (q == NULL)
      return len;
    gsize e = (gsize) (q - data);
    gsize bs = 0;
    while (e - bs > pos + 1 && data[e - bs - 1] == '\\')
      bs++;
    if (bs % 2 == 0)
      return e;
    i = e + 1;
  }
}

/* The offset of the ',' or ']' that ends the array element starting at @pos, or @len
 * when the scanner cannot tell (end of input, a comment, a single quote, a '}' closing
 * the array). */
static gsize
report_scan_element(const char *data, gsize len, gsize pos)
{
  guint nest = 0;
  for (gsize i = pos; i < len; i++) {
    switch (data[i]) {
    case '"':
      i = report_scan_string(data, len, i);
      if (i == len)
        return len;
      break;
    case '{':
    case '[':
      nest++;
      break;
    case '}':
    case ']':
      if (nest == 0)
        return data[i] == ']' ? i : len;
      nest--;
      break;
    case ',':
      if (nest == 0)
        return i;
      break;
    case '\'':
    case '/':
      return len;
    default:
      break;
    }
  }
  return len;
}

/* The failure-details array opening at @pos, its elements at nesting @level (the
 * number of containers around them, the array included). Returns the offset after it
 * when it was parsed ahead, 0 when it is not worth it (empty), or @len when the scanner
 * gave up (st->gave_up). */
static gsize
report_stream_array(ReportStream *st, ReportParse *ps, gsize pos, guint level)
{
  const char *data = st->data;
  gsize len = st->len;
  gsize q = pos + 1;
  while (q < len && report_is_json_space(data[q]))
    q++;
  if (q < len && data[q] == ']')
    return 0;

  report_stream_feed_to(st, pos);
  if (st->jerr != json_tokener_continue)
    return len;

  ReportDetails *d = NULL;
  TrJsonTokener *el = NULL;
  guint converted = 0;
  gsize start = pos + 1;
  if (level < st->depth)
    el = report_tokener(REPORT_TOK_ELEMENT, (int) (st->depth - level));
  if (el != NULL) {
    d = g_new0(ReportDetails, 1);
    d->failures = g_ptr_array_new();
    d->deviations = report_deviations_new();
    g_ptr_array_add(ps->details, d);
  }
  while (el != NULL) {
    gsize end = report_scan_element(data, len, start);
    if (end == len)
      break;
    q = start;
    while (q < end && report_is_json_space(data[q]))
      q++;
    if (q == end)
      break;                      /* [1,,2], [1,]: json-c decides */
    json_tokener_reset(el);
    TrJson *e = json_tokener_parse_ex(el, data + start, (int) MIN(end + 1 - start, (gsize) G_MAXINT));
    gsize used = json_tokener_get_parse_end(el);
    gboolean ok = json_tokener_get_error(el) == json_tokener_success && used <= end - start;
    for (q = start + used; ok && q < end; q++)
      ok = report_is_json_space(data[q]);
    if (!ok) {
      json_object_put(e);
      break;
    }
    ReportJsonArena *values = report_values(REPORT_VALUES_ELEMENT);
    report_add_failure_element(ps->r, d->failures, d->deviations,
                               report_json_from_jsonc(values, e));
    report_json_arena_reset(values);
    json_object_put(e);
    converted++;
    if (data[end] == ']') {
      char marker[24];
      int n = g_snprintf(marker, sizeof marker, "[%u]", ps->details->len - 1);
      report_stream_feed(st, marker, (gsize) n);
      st->fed = end + 1;
      return end + 1;
    }
    start = end + 1;
  }

  /* Give up: stand-ins for what was converted, then the original text. */
  static const char zeros[] = "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0";
  report_stream_feed(st, zeros, 1);
  for (guint left = converted; left > 0 && st->jerr == json_tokener_continue;) {
    guint n = MIN(left, (guint) (sizeof zeros - 2) / 2);
    report_stream_feed(st, zeros + 1, 2 * (gsize) n);
    left -= n;
  }
  st->fed = start;
  st->gave_up = TRUE;
  return len;
}

/* Walk the text ahead of the document tokener, parsing failure-details arrays ahead. */
static void
report_stream_scan(ReportStream *st, ReportParse *ps)
{
  const char *data = st->data;
  gsize len = st->len;
  guint open = 0;                 /* containers open at pos */
  gsize key = 0, key_len = 0;     /* the last string */
  enum { AFTER_OTHER, AFTER_STRING, AFTER_COLON } after = AFTER_OTHER;
  gsize pos = 0;
  while (pos < len && st->jerr == json_tokener_continue) {
    switch (data[pos]) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
      pos++;
      continue;
    case '"': {
      gsize e = report_scan_string(data, len, pos);
      if (e == len) {
        st->gave_up = TRUE;       /* unterminated: json-c reports it */
        return;
      }
      key = pos + 1;
      key_len = e - key;
      after = AFTER_STRING;
      pos = e + 1;
      continue;
    }
    case ':':
      after = after == AFTER_STRING ? AFTER_COLON : AFTER_OTHER;
      pos++;
      continue;
    case '[':
      if (after == AFTER_COLON && report_json_key_is(data + key, key_len, "failure-details")) {
        gsize next = report_stream_array(st, ps, pos, open + 1);
        if (next == len)
          return;
        if (next != 0) {
          after = AFTER_OTHER;
          pos = next;
          continue;
        }
      }
      open++;
      break;
    case '{':
      open++;
      break;
    case ']':
    case '}':
      if (open > 0)
        open--;
      break;
    case '\'':
    case '/':
      st->gave_up = TRUE;         /* single-quoted strings and comments: json-c's own */
      return;
    default:
      break;
    }
    after = AFTER_OTHER;
    pos++;
  }
}

/* Tokenize the document; with @ps->details set, parse failure-details arrays ahead.
 * Returns the root, or NULL with @error set, or NULL with ps->restart set. */
static TrJson *
report_tokenize(ReportParse *ps, const guint8 *bytes, gsize len, guint depth, GError **error)
{
  ReportStream st = {
    .data = (const char *) bytes,
    .len = len,
    .depth = depth,
    .jerr = json_tokener_continue,
  };
  st.doc = report_tokener(REPORT_TOK_DOCUMENT, (int) MIN(depth, (guint) G_MAXINT));
  if (st.doc == NULL) {
    g_set_error_literal(error, REPORT_ERROR, REPORT_ERROR_JSON, "not JSON: out of memory");
    return NULL;
  }
  if (ps->details != NULL)
    report_stream_scan(&st, ps);
  report_stream_feed_to(&st, len);
  if (st.jerr == json_tokener_continue) {
    /* A NUL ends a top-level scalar; inside an object it is "unexpected end". */
    TrJson *obj = json_tokener_parse_ex(st.doc, "", 1);
    st.jerr = json_tokener_get_error(st.doc);
    if (st.jerr == json_tokener_continue)
      st.jerr = json_tokener_error_parse_eof;
    if (st.jerr == json_tokener_success) {
      st.root = obj;
      st.end = len;
    } else {
      json_object_put(obj);
    }
  }
  json_tokener_reset(st.doc);

  if (st.jerr == json_tokener_error_depth) {
    g_set_error(error, REPORT_ERROR, REPORT_ERROR_JSON,
                "not JSON: nesting deeper than %u levels (max-json-depth)", depth);
    return NULL;
  }
  if (st.jerr != json_tokener_success) {
    g_set_error(error, REPORT_ERROR, REPORT_ERROR_JSON, "not JSON: %s",
                json_tokener_error_desc(st.jerr));
    return NULL;
  }
  if (st.gave_up) {
    /* Valid, but not as scanned: the tree holds stand-ins or unreplaced arrays. */
    json_object_put(st.root);
    ps->restart = TRUE;
    return NULL;
  }
  if (st.root == NULL) {
    /* json-c parses the text "null" into a NULL object: not a report either. */
    g_set_error_literal(error, REPORT_ERROR, REPORT_ERROR_INVALID,
                        "not a TLS report: top level is null, not an object");
    return NULL;
  }
  for (gsize off = st.end; off < len; off++) {
    if (!report_is_json_space((char) bytes[off])) {
      json_object_put(st.root);
      g_set_error(error, REPORT_ERROR, REPORT_ERROR_JSON,
                  "not JSON: trailing data at offset %" G_GSIZE_FORMAT, off);
      return NULL;
    }
  }
  return st.root;
}

/* How report_parse_once() reads the text. */
typedef enum {
  REPORT_READ_STRICT_FIRST,       /* the strict reader, else json-c as a tree */
  REPORT_READ_STRICT_ONLY,        /* the strict reader; REPORT_ERROR_DECLINED if it declines */
  REPORT_READ_JSONC,              /* json-c as a tree */
  REPORT_READ_JSONC_INCREMENTAL,  /* json-c, failure-details arrays parsed ahead */
} ReportRead;

static gboolean report_convert(ReportParse *ps, const ReportJsonValue *root, GError **error);

/* One parse; NULL with *restart set (and no error) when the incremental parse must be
 * redone as a tree. */
static Report *
report_parse_once(const guint8 *data, gsize len, const ReportFilename *fname, guint depth,
                  ReportRead read, gboolean *restart, GError **error)
{
  gboolean incremental = read == REPORT_READ_JSONC_INCREMENTAL;
  g_autoptr(Report) r = report_new();
  g_autoptr(GPtrArray) details = NULL;
  if (incremental)
    details = g_ptr_array_new_with_free_func((GDestroyNotify) report_details_free);
  ReportParse ps = { .r = r, .fname = fname, .details = details };

  if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf) {
    report_deviation(r, REPORT_DEV_BOM);
    data += 3;
    len -= 3;
  }
  gsize ws = 0;
  while (ws < len && report_is_json_space((char) data[ws]))
    ws++;
  if (ws == len) {
    g_set_error_literal(error, REPORT_ERROR, REPORT_ERROR_JSON, "not JSON: empty input");
    return NULL;
  }
  const guint8 *nul = memchr(data, '\0', len);
  if (nul != NULL) {
    g_set_error(error, REPORT_ERROR, REPORT_ERROR_JSON,
                "not JSON: NUL byte at offset %" G_GSIZE_FORMAT, (gsize) (nul - data));
    return NULL;
  }

  ReportJsonArena *values = report_values(REPORT_VALUES_DOCUMENT);
  const ReportJsonValue *root = NULL;
  if (read == REPORT_READ_STRICT_FIRST || read == REPORT_READ_STRICT_ONLY)
    root = report_json_parse(values, (const char *) data, len, depth > 2 ? depth - 2 : 0);
  if (root == NULL && read == REPORT_READ_STRICT_ONLY) {
    g_set_error_literal(error, REPORT_ERROR, REPORT_ERROR_DECLINED,
                        "declined by the strict JSON reader");
    return NULL;
  }
  if (root == NULL) {
    TrJson *jroot = report_tokenize(&ps, data, len, depth, error);
    if (jroot == NULL) {
      *restart = ps.restart;
      return NULL;
    }
    if (!json_object_is_type(jroot, json_type_object)) {
      g_set_error(error, REPORT_ERROR, REPORT_ERROR_INVALID,
                  "not a TLS report: top level is %s, not an object",
                  json_type_to_name(json_object_get_type(jroot)));
      json_object_put(jroot);
      return NULL;
    }
    root = report_json_from_jsonc(values, jroot);
    json_object_put(jroot);
  }
  gboolean ok = report_convert(&ps, root, error);
  report_json_arena_reset(values);
  if (!ok)
    return NULL;
  if (ps.restart) {
    *restart = TRUE;
    return NULL;
  }
  report_check_fname_domain(r, fname);
  report_compute_key(r);
  return g_steal_pointer(&r);
}

/* The report of the document @root (an object) into ps->r. */
static gboolean
report_convert(ReportParse *ps, const ReportJsonValue *root, GError **error)
{
  Report *r = ps->r;
  const ReportFilename *fname = ps->fname;
  const ReportJsonValue *policies;
  if (report_member(root, "policies", &policies) != REPORT_FIELD_PRESENT ||
      (!report_json_is(policies, REPORT_JSON_ARRAY) &&
       !report_json_is(policies, REPORT_JSON_OBJECT))) {
    g_set_error_literal(error, REPORT_ERROR, REPORT_ERROR_INVALID,
                        "not a TLS report: no policies array");
    return FALSE;
  }

  ReportFieldState st;
  r->organization_name = report_get_string(r, root, "organization-name",
                                           REPORT_DEV_ORGANIZATION_NAME_NOT_STRING, NULL);
  if (r->organization_name == NULL) {
    report_deviation(r, REPORT_DEV_ORGANIZATION_NAME_MISSING);
    r->organization_name = g_strdup("");
  }
  r->report_id = report_get_string(r, root, "report-id", REPORT_DEV_REPORT_ID_NOT_STRING, NULL);
  if (r->report_id == NULL) {
    report_deviation(r, REPORT_DEV_REPORT_ID_MISSING);
    r->report_id = g_strdup("");
  }
  r->contact_info = report_get_string(r, root, "contact-info", REPORT_DEV_CONTACT_INFO_NOT_STRING,
                                      &st);
  if (st == REPORT_FIELD_NULL)
    report_deviation(r, REPORT_DEV_CONTACT_INFO_NULL);
  else if (st == REPORT_FIELD_ABSENT)
    report_deviation(r, REPORT_DEV_CONTACT_INFO_MISSING);
  else if (r->contact_info != NULL && *r->contact_info == '\0') {
    report_deviation(r, REPORT_DEV_CONTACT_INFO_EMPTY);
    g_clear_pointer(&r->contact_info, g_free);
  }

  if (!report_parse_date_range(r, root, fname, error))
    return FALSE;

  if (report_json_is(policies, REPORT_JSON_OBJECT)) {
    report_deviation(r, REPORT_DEV_POLICIES_SINGLE_OBJECT);
    g_ptr_array_add(r->policies, report_parse_policy(ps, policies));
  } else {
    gsize n = policies->n;
    if (n == 0)
      report_deviation(r, REPORT_DEV_POLICIES_EMPTY);
    for (gsize i = 0; i < n; i++) {
      const ReportJsonValue *e = policies->u.items[i];
      if (!report_json_is(e, REPORT_JSON_OBJECT)) {
        report_deviation(r, REPORT_DEV_POLICY_ENTRY_NOT_OBJECT);
        continue;
      }
      g_ptr_array_add(r->policies, report_parse_policy(ps, e));
    }
  }
  return TRUE;
}

Report *
report_parse_with(GBytes *json, const ReportFilename *fname, const TrLimits *limits,
                  ReportParseMode mode, GError **error)
{
  g_return_val_if_fail(json != NULL, NULL);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(json, &len);
  guint depth = limits != NULL && limits->max_json_depth > 0 ? limits->max_json_depth
                                                              : TR_DEFAULT_MAX_JSON_DEPTH;
  ReportRead read;
  switch (mode) {
  case REPORT_PARSE_TREE:
    read = REPORT_READ_JSONC;
    break;
  case REPORT_PARSE_INCREMENTAL:
    read = REPORT_READ_JSONC_INCREMENTAL;
    break;
  case REPORT_PARSE_STRICT:
    read = REPORT_READ_STRICT_ONLY;
    break;
  case REPORT_PARSE_AUTO:
  default:
    read = len >= REPORT_INCREMENTAL_MIN ? REPORT_READ_JSONC_INCREMENTAL
                                         : REPORT_READ_STRICT_FIRST;
    break;
  }
  gboolean restart = FALSE;
  Report *r = report_parse_once(data, len, fname, depth, read, &restart, error);
  if (r == NULL && restart)
    r = report_parse_once(data, len, fname, depth, REPORT_READ_JSONC, &restart, error);
  if (len > REPORT_TOKENER_KEEP_MAX)
    report_tokeners_trim();
  return r;
}

Report *
report_parse(GBytes *json, const ReportFilename *fname, const TrLimits *limits,
             GError **error)
{
  return report_parse_with(json, fname, limits, REPORT_PARSE_AUTO, error);
}

/* ---- key ------------------------------------------------------------------ */

void
report_compute_key(Report *report)
{
  g_return_if_fail(report != NULL);
  g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
  char num[32];
  const char *org = report->organization_name != NULL ? report->organization_name : "";
  const char *id = report->report_id != NULL ? report->report_id : "";
  g_checksum_update(sum, (const guchar *) org, (gssize) strlen(org) + 1);
  g_checksum_update(sum, (const guchar *) id, (gssize) strlen(id) + 1);
  int n = g_snprintf(num, sizeof num, "%" G_GINT64_FORMAT, report->begin);
  g_checksum_update(sum, (const guchar *) num, n + 1);
  n = g_snprintf(num, sizeof num, "%" G_GINT64_FORMAT, report->end);
  g_checksum_update(sum, (const guchar *) num, n);
  guint8 digest[32];
  gsize dlen = sizeof digest;
  g_checksum_get_digest(sum, digest, &dlen);
  memcpy(report->key, digest, sizeof report->key);
}

char *
report_key_hex(const guint8 key[16])
{
  static const char hex[] = "0123456789abcdef";
  char *s = g_malloc(33);
  for (guint i = 0; i < 16; i++) {
    s[2 * i] = hex[key[i] >> 4];
    s[2 * i + 1] = hex[key[i] & 0xf];
  }
  s[32] = '\0';
  return s;
}

/* ---- primary domain --------------------------------------------------------- */

const char *
report_primary_domain(const Report *report)
{
  g_return_val_if_fail(report != NULL, "unknown");
  for (guint i = 0; report->policies != NULL && i < report->policies->len; i++) {
    const ReportPolicy *p = report->policies->pdata[i];
    if (p->policy_domain != NULL && *p->policy_domain != '\0')
      return p->policy_domain;
  }
  if (report->ingest.report_domain != NULL && *report->ingest.report_domain != '\0')
    return report->ingest.report_domain;
  ReportFilename f;
  if (report->ingest.filename != NULL && report_filename_parse(report->ingest.filename, &f)) {
    /* Interned: the result must outlive this call and @report is const. */
    g_autofree char *lower = report_lower_domain(f.policy_domain);
    report_filename_clear(&f);
    return g_intern_string(lower);
  }
  return "unknown";
}

/* ---- serialization ------------------------------------------------------------ */

#define REPORT_JW_MAX_DEPTH 8

typedef struct {
  GString *out;
  gboolean pretty;
  guint depth;
  gboolean first[REPORT_JW_MAX_DEPTH];
  gsize spill_at;                 /* 0: never spill */
  ReportJsonSpill spill;
  gpointer spill_data;
  GError **error;
  gboolean failed;                /* a spill failed: stop */
} ReportJsonWriter;

static void
report_jw_newline(ReportJsonWriter *w)
{
  static const char spaces[] = "                ";   /* 2 * REPORT_JW_MAX_DEPTH */
  g_string_append_c(w->out, '\n');
  g_string_append_len(w->out, spaces, (gssize) (2 * w->depth));
}

static void
report_jw_item(ReportJsonWriter *w)
{
  if (!w->first[w->depth])
    g_string_append_c(w->out, ',');
  w->first[w->depth] = FALSE;
  if (w->pretty)
    report_jw_newline(w);
}

static void
report_jw_open(ReportJsonWriter *w, char c)
{
  g_assert(w->depth + 1 < REPORT_JW_MAX_DEPTH);
  g_string_append_c(w->out, c);
  w->first[++w->depth] = TRUE;
}

static void
report_jw_close(ReportJsonWriter *w, char c)
{
  gboolean empty = w->first[w->depth];
  w->depth--;
  if (w->pretty && !empty)
    report_jw_newline(w);
  g_string_append_c(w->out, c);
}

static void
report_jw_key(ReportJsonWriter *w, const char *key)
{
  report_jw_item(w);
  g_string_append_c(w->out, '"');
  g_string_append(w->out, key);
  g_string_append(w->out, w->pretty ? "\": " : "\":");
}

/* Escape valid UTF-8 @s as a JSON string body. */
static void
report_jw_escape(GString *out, const char *s)
{
  static const char hex[] = "0123456789abcdef";
  const char *run = s;
  const char *p = s;
  for (;; p++) {
    guchar c = (guchar) *p;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    if (p > run)
      g_string_append_len(out, run, p - run);
    if (c == '\0')
      break;
    switch (c) {
    case '"':  g_string_append_len(out, "\\\"", 2); break;
    case '\\': g_string_append_len(out, "\\\\", 2); break;
    case '\n': g_string_append_len(out, "\\n", 2); break;
    case '\r': g_string_append_len(out, "\\r", 2); break;
    case '\t': g_string_append_len(out, "\\t", 2); break;
    case '\b': g_string_append_len(out, "\\b", 2); break;
    case '\f': g_string_append_len(out, "\\f", 2); break;
    default: {
      char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf] };
      g_string_append_len(out, u, 6);
    }
    }
    run = p + 1;
  }
}

static void
report_jw_string(ReportJsonWriter *w, const char *s)
{
  g_string_append_c(w->out, '"');
  if (g_utf8_validate(s, -1, NULL)) {
    report_jw_escape(w->out, s);
  } else {
    /* Ingest fields come from mail headers and may be anything. */
    g_autofree char *valid = g_utf8_make_valid(s, -1);
    report_jw_escape(w->out, valid);
  }
  g_string_append_c(w->out, '"');
}

void
report_append_int(GString *out, gint64 v)
{
  char buf[24];
  char *p = buf + sizeof buf;
  guint64 u = v < 0 ? (guint64) 0 - (guint64) v : (guint64) v;
  do {
    *--p = (char) ('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0)
    *--p = '-';
  g_string_append_len(out, p, buf + sizeof buf - p);
}

static void
report_jw_int(ReportJsonWriter *w, gint64 v)
{
  report_append_int(w->out, v);
}

static void
report_jw_member_string(ReportJsonWriter *w, const char *key, const char *s)
{
  if (s == NULL)
    return;
  report_jw_key(w, key);
  report_jw_string(w, s);
}

static void
report_jw_member_int(ReportJsonWriter *w, const char *key, gint64 v)
{
  report_jw_key(w, key);
  report_jw_int(w, v);
}

static void
report_jw_member_datetime(ReportJsonWriter *w, const char *key, gint64 epoch)
{
  char buf[21];
  report_format_datetime(epoch, buf);
  report_jw_key(w, key);
  g_string_append_c(w->out, '"');
  g_string_append_len(w->out, buf, 20);
  g_string_append_c(w->out, '"');
}

static void
report_jw_member_strings(ReportJsonWriter *w, const char *key, const GPtrArray *a)
{
  report_jw_key(w, key);
  report_jw_open(w, '[');
  for (guint i = 0; a != NULL && i < a->len; i++) {
    report_jw_item(w);
    report_jw_string(w, a->pdata[i]);
  }
  report_jw_close(w, ']');
}

static void
report_jw_failure(ReportJsonWriter *w, const ReportFailure *f)
{
  report_jw_item(w);
  report_jw_open(w, '{');
  report_jw_member_string(w, "result-type", f->result_type != NULL ? f->result_type : "");
  report_jw_member_string(w, "sending-mta-ip", f->sending_mta_ip);
  report_jw_member_string(w, "receiving-mx-hostname", f->receiving_mx_hostname);
  report_jw_member_string(w, "receiving-mx-helo", f->receiving_mx_helo);
  report_jw_member_string(w, "receiving-ip", f->receiving_ip);
  report_jw_member_int(w, "failed-session-count", f->failed_session_count);
  report_jw_member_string(w, "additional-information", f->additional_information);
  report_jw_member_string(w, "failure-reason-code", f->failure_reason_code);
  report_jw_close(w, '}');
}

static void
report_jw_policy(ReportJsonWriter *w, const ReportPolicy *p)
{
  report_jw_item(w);
  report_jw_open(w, '{');

  report_jw_key(w, "policy");
  report_jw_open(w, '{');
  report_jw_member_string(w, "policy-type", p->policy_type != NULL ? p->policy_type : "");
  report_jw_member_strings(w, "policy-string", p->policy_strings);
  report_jw_member_string(w, "policy-domain", p->policy_domain);
  report_jw_member_strings(w, "mx-host", p->mx_hosts);
  report_jw_close(w, '}');

  report_jw_key(w, "summary");
  report_jw_open(w, '{');
  report_jw_member_int(w, "total-successful-session-count", p->total_successful);
  report_jw_member_int(w, "total-failure-session-count", p->total_failure);
  report_jw_close(w, '}');

  report_jw_key(w, "failure-details");
  report_jw_open(w, '[');
  for (guint i = 0; p->failures != NULL && i < p->failures->len && !w->failed; i++) {
    report_jw_failure(w, p->failures->pdata[i]);
    if (w->spill_at > 0 && w->out->len >= w->spill_at &&
        !w->spill(w->out, w->spill_data, w->error))
      w->failed = TRUE;
  }
  report_jw_close(w, ']');

  report_jw_close(w, '}');
}

static gboolean
report_to_json_writer(const Report *report, ReportJsonWriter *wp)
{
  ReportJsonWriter w = *wp;   /* a local copy keeps the hot path free of aliasing */
  w.first[0] = TRUE;

  report_jw_open(&w, '{');
  report_jw_member_string(&w, "organization-name",
                          report->organization_name != NULL ? report->organization_name : "");
  report_jw_key(&w, "date-range");
  report_jw_open(&w, '{');
  report_jw_member_datetime(&w, "start-datetime", report->begin);
  report_jw_member_datetime(&w, "end-datetime", report->end);
  report_jw_close(&w, '}');
  report_jw_member_string(&w, "contact-info", report->contact_info);
  report_jw_member_string(&w, "report-id", report->report_id != NULL ? report->report_id : "");

  report_jw_key(&w, "policies");
  report_jw_open(&w, '[');
  for (guint i = 0; report->policies != NULL && i < report->policies->len; i++)
    report_jw_policy(&w, report->policies->pdata[i]);
  report_jw_close(&w, ']');

  const ReportIngest *in = &report->ingest;
  report_jw_key(&w, "ingest");
  report_jw_open(&w, '{');
  char hex[33];
  static const char digits[] = "0123456789abcdef";
  for (guint i = 0; i < 16; i++) {
    hex[2 * i] = digits[report->key[i] >> 4];
    hex[2 * i + 1] = digits[report->key[i] & 0xf];
  }
  hex[32] = '\0';
  report_jw_member_string(&w, "key", hex);
  report_jw_member_string(&w, "source", in->source);
  report_jw_member_string(&w, "submitter", in->submitter);
  report_jw_member_string(&w, "report-domain", in->report_domain);
  report_jw_member_string(&w, "filename", in->filename);
  report_jw_member_string(&w, "message-id", in->message_id);
  if (in->received != 0)
    report_jw_member_datetime(&w, "received", in->received);
  report_jw_member_string(&w, "raw-format", in->raw_extension);
  report_jw_key(&w, "deviations");
  report_jw_open(&w, '[');
  for (guint i = 0; report->deviations != NULL && i < report->deviations->len; i++) {
    ReportDeviation d = g_array_index(report->deviations, ReportDeviation, i);
    report_jw_item(&w);
    report_jw_open(&w, '{');
    report_jw_member_string(&w, "slug", report_deviation_slug(d));
    report_jw_member_string(&w, "text", report_deviation_text(d));
    report_jw_close(&w, '}');
  }
  report_jw_close(&w, ']');
  report_jw_close(&w, '}');

  report_jw_close(&w, '}');
  return !w.failed;
}

void
report_to_json(const Report *report, gboolean pretty, GString *out)
{
  g_return_if_fail(report != NULL && out != NULL);
  ReportJsonWriter w = { .out = out, .pretty = pretty };
  report_to_json_writer(report, &w);
}

gboolean
report_to_json_spill(const Report *report, gboolean pretty, GString *out, gsize spill_at,
                     ReportJsonSpill spill, gpointer user_data, GError **error)
{
  g_return_val_if_fail(report != NULL && out != NULL && spill != NULL, FALSE);
  ReportJsonWriter w = { .out = out, .pretty = pretty, .spill_at = MAX(spill_at, (gsize) 1),
                         .spill = spill, .spill_data = user_data, .error = error };
  return report_to_json_writer(report, &w);
}
