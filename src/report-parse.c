/* report-parse.c - JSON bytes into a Report (report.h): read the JSON (report-json.c's
 * strict reader, else json-c, as a tree or incrementally) and convert its values,
 * tolerating the quirks of real senders, each recorded once per report as a deviation
 * (report-deviation.h) in the list the converting function is given.
 *
 * Decisions where RFC 8460 is silent:
 * - Counts are I-JSON integers: anything above 2^53-1 is out of range and becomes 0.
 *   Fractions are truncated, numeric strings are read, negatives become 0; each with a
 *   deviation.
 * - Datetimes: report-datetime.c. */
#include "report-parse.h"
#include "report-datetime.h"
#include "report-json.h"

#include <math.h>
#include <string.h>

#define REPORT_MAX_COUNT      G_GINT64_CONSTANT(9007199254740991)  /* 2^53 - 1 */
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

static gboolean
report_is_json_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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

void
report_parse_arena_free(struct ReportArena *a)
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
report_clean_string(GArray *devs, const char **s, gsize *len, char **repaired)
{
  const char *nul = memchr(*s, '\0', *len);
  if (nul != NULL) {
    *len = (gsize) (nul - *s);
    report_deviations_add(devs, REPORT_DEV_STRING_NUL);
  }
  if (!g_utf8_validate_len(*s, *len, NULL)) {
    report_deviations_add(devs, REPORT_DEV_STRING_INVALID_UTF8);
    *repaired = g_utf8_make_valid(*s, (gssize) *len);
    *s = *repaired;
    *len = strlen(*repaired);
  }
}

/* A json-c string value as a valid UTF-8 C string. (transfer full) */
static char *
report_dup_string(GArray *devs, const char *s, gsize len)
{
  char *repaired = NULL;
  report_clean_string(devs, &s, &len, &repaired);
  return repaired != NULL ? repaired : g_strndup(s, len);
}

static char *
report_dup_json_string(GArray *devs, const ReportJsonValue *v)
{
  return report_dup_string(devs, v->text, (gsize) v->n);
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
report_value_text(GArray *devs, const ReportJsonValue *v, ReportDeviation not_string,
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
    report_deviations_add(devs, not_string);
    *s = v->text;
    *len = strlen(*s);
    *is_string = FALSE;
    return TRUE;
  default:
    report_deviations_add(devs, not_string);
    return FALSE;
  }
}

/* A string member. Numbers and booleans are taken as their JSON text, objects and
 * arrays as absent (each with a deviation). NULL when absent or null; *state says
 * which. (transfer full) */
static char *
report_get_string(GArray *devs, const ReportJsonValue *obj, const char *key,
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
  if (!report_value_text(devs, v, not_string, &s, &len, &is_string)) {
    if (state != NULL)
      *state = REPORT_FIELD_ABSENT;
    return NULL;
  }
  return is_string ? report_dup_string(devs, s, len) : g_strndup(s, len);
}

/* An optional string: "" and absent both become NULL. (transfer full) */
static char *
report_get_optional(GArray *devs, const ReportJsonValue *obj, const char *key,
                    ReportDeviation not_string, gboolean *was_empty)
{
  char *s = report_get_string(devs, obj, key, not_string, NULL);
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
report_count_from_string(GArray *devs, const ReportCountField *cf, const char *s, gsize len)
{
  while (len > 0 && g_ascii_isspace(*s))
    s++, len--;
  while (len > 0 && g_ascii_isspace(s[len - 1]))
    len--;
  gboolean negative = len > 0 && s[0] == '-';
  gsize i = negative ? 1 : 0;
  if (i == len) {
    report_deviations_add(devs, cf->not_number);
    return 0;
  }
  gint64 v = 0;
  for (; i < len; i++) {
    if (!g_ascii_isdigit(s[i])) {
      report_deviations_add(devs, cf->not_number);
      return 0;
    }
    if (v <= REPORT_MAX_COUNT)
      v = v * 10 + (s[i] - '0');
  }
  if (negative && v != 0) {
    report_deviations_add(devs, cf->negative);
    return 0;
  }
  if (v > REPORT_MAX_COUNT) {
    report_deviations_add(devs, cf->out_of_range);
    return 0;
  }
  report_deviations_add(devs, cf->is_string);
  return v;
}

/* A session count from the (non-null) value @v of the member @cf: an integer in
 * 0 .. 2^53-1. */
static gint64
report_count_value(GArray *devs, const ReportCountField *cf, const ReportJsonValue *v)
{
  switch (v->type) {
  case REPORT_JSON_INT: {
    gint64 i = v->u.i;
    if (i < 0 && i != G_MININT64) {
      report_deviations_add(devs, cf->negative);
      return 0;
    }
    if (i < 0 || i > REPORT_MAX_COUNT) {
      report_deviations_add(devs, cf->out_of_range);
      return 0;
    }
    return i;
  }
  case REPORT_JSON_DOUBLE: {
    double d = v->u.d;
    if (!isfinite(d) || d > (double) REPORT_MAX_COUNT || d < -(double) REPORT_MAX_COUNT) {
      report_deviations_add(devs, cf->out_of_range);
      return 0;
    }
    if (d <= -1.0) {
      report_deviations_add(devs, cf->negative);
      return 0;
    }
    report_deviations_add(devs, cf->not_integer);
    return d < 0 ? 0 : (gint64) d;
  }
  case REPORT_JSON_STRING:
    return report_count_from_string(devs, cf, v->text, (gsize) v->n);
  default:
    report_deviations_add(devs, cf->not_number);
    return 0;
  }
}

/* A session count member of the object @obj; a missing one is recorded when @obj is
 * there. */
static gint64
report_get_count(GArray *devs, const ReportJsonValue *obj, const ReportCountField *cf)
{
  const ReportJsonValue *v;
  if (report_member(obj, cf->key, &v) == REPORT_FIELD_PRESENT)
    return report_count_value(devs, cf, v);
  if (obj != NULL)
    report_deviations_add(devs, cf->missing);
  return 0;
}

/* ---- parsing: the report's parts ---------------------------------------------- */

static void
report_add_policy_string(GArray *devs, ReportPolicy *p, char *s)
{
  gsize len = strlen(s);
  if (len > 0 && (s[len - 1] == '\r' || s[len - 1] == '\n')) {
    while (len > 0 && (s[len - 1] == '\r' || s[len - 1] == '\n'))
      s[--len] = '\0';
    report_deviations_add(devs, REPORT_DEV_POLICY_STRING_CR);
  }
  g_ptr_array_add(p->policy_strings, s);
}

/* Microsoft's TLSA policy-string: one element holding a JSON-encoded array of strings.
 * Expands it into @p and returns TRUE, or FALSE when @s is not that. */
static gboolean
report_expand_encoded_array(GArray *devs, ReportPolicy *p, const char *s)
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
    report_add_policy_string(devs, p, report_dup_string(devs, json_object_get_string(e),
                                                     (gsize) json_object_get_string_len(e)));
  }
  report_deviations_add(devs, REPORT_DEV_POLICY_STRING_ENCODED_ARRAY);
  return TRUE;
}

static void
report_parse_policy_strings(GArray *devs, ReportPolicy *p, const ReportJsonValue *pol)
{
  const ReportJsonValue *v;
  ReportFieldState st = report_member(pol, "policy-string", &v);
  gboolean needs = g_strcmp0(p->policy_type, "sts") == 0 ||
                   g_strcmp0(p->policy_type, "tlsa") == 0;
  if (st != REPORT_FIELD_PRESENT) {
    if (needs)
      report_deviations_add(devs, REPORT_DEV_POLICY_STRING_MISSING);
    return;
  }
  if (report_json_is(v, REPORT_JSON_STRING)) {
    report_deviations_add(devs, REPORT_DEV_POLICY_STRING_IS_STRING);
    char *s = report_dup_json_string(devs, v);
    if (report_expand_encoded_array(devs, p, s))
      g_free(s);
    else
      report_add_policy_string(devs, p, s);
    return;
  }
  if (!report_json_is(v, REPORT_JSON_ARRAY)) {
    report_deviations_add(devs, REPORT_DEV_POLICY_STRING_NOT_ARRAY);
    return;
  }
  gsize n = v->n;
  if (n == 0 && needs)
    report_deviations_add(devs, REPORT_DEV_POLICY_STRING_MISSING);   /* [] and absent alike */
  for (gsize i = 0; i < n; i++) {
    const ReportJsonValue *e = v->u.items[i];
    if (!report_json_is(e, REPORT_JSON_STRING)) {
      report_deviations_add(devs, REPORT_DEV_POLICY_STRING_NON_STRING_ENTRY);
      continue;
    }
    char *s = report_dup_json_string(devs, e);
    if (report_expand_encoded_array(devs, p, s))
      g_free(s);
    else
      report_add_policy_string(devs, p, s);
  }
}

static void
report_add_mx_host(GArray *devs, ReportPolicy *p, char *s)
{
  if (g_ascii_strncasecmp(s, "mx:", 3) == 0) {
    report_deviations_add(devs, REPORT_DEV_MX_HOST_PREFIX);
    const char *q = s + 3;
    while (*q == ' ' || *q == '\t')
      q++;
    memmove(s, q, strlen(q) + 1);
  }
  if (*s == '\0') {
    report_deviations_add(devs, REPORT_DEV_MX_HOST_EMPTY_ENTRY);
    g_free(s);
    return;
  }
  g_ptr_array_add(p->mx_hosts, s);
}

static void
report_parse_mx_hosts(GArray *devs, ReportPolicy *p, const ReportJsonValue *pol)
{
  const ReportJsonValue *v;
  if (report_member(pol, "mx-host", &v) != REPORT_FIELD_PRESENT)
    return;
  if (report_json_is(v, REPORT_JSON_STRING)) {
    report_deviations_add(devs, REPORT_DEV_MX_HOST_IS_STRING);
    report_add_mx_host(devs, p, report_dup_json_string(devs, v));
    return;
  }
  if (!report_json_is(v, REPORT_JSON_ARRAY)) {
    report_deviations_add(devs, REPORT_DEV_MX_HOST_NOT_ARRAY);
    return;
  }
  gsize n = v->n;
  for (gsize i = 0; i < n; i++) {
    const ReportJsonValue *e = v->u.items[i];
    if (!report_json_is(e, REPORT_JSON_STRING)) {
      report_deviations_add(devs, REPORT_DEV_MX_HOST_NON_STRING_ENTRY);
      continue;
    }
    report_add_mx_host(devs, p, report_dup_json_string(devs, e));
  }
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
report_fd_string(struct ReportArena *a, GArray *devs, ReportFieldState st, const ReportJsonValue *v, int field,
                 gboolean keep_empty, gboolean share, gboolean *was_empty)
{
  if (st != REPORT_FIELD_PRESENT)
    return NULL;
  const char *s;
  gsize len;
  gboolean is_string;
  if (!report_value_text(devs, v, report_fd_not_string[field], &s, &len, &is_string))
    return NULL;
  g_autofree char *repaired = NULL;
  if (is_string)
    report_clean_string(devs, &s, &len, &repaired);
  if (len == 0 && !keep_empty) {
    if (was_empty != NULL)
      *was_empty = TRUE;
    return NULL;
  }
  return report_arena_string(a, s, len, share);
}

/* One failure detail into @a; its deviations into @devs. */
static ReportFailure *
report_parse_failure(struct ReportArena *a, GArray *devs, const ReportJsonValue *fd)
{
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
  f->result_type = report_fd_string(a, devs, st[REPORT_FD_RESULT_TYPE], val[REPORT_FD_RESULT_TYPE],
                                    REPORT_FD_RESULT_TYPE, TRUE, TRUE, NULL);
  if (f->result_type == NULL) {
    report_deviations_add(devs, REPORT_DEV_RESULT_TYPE_MISSING);
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
        report_fd_string(a, devs, st[k], val[k], k, FALSE, strings[i].share, &empty);
  }
  if (missing)
    report_deviations_add(devs, REPORT_DEV_FAILURE_DETAIL_FIELDS_MISSING);
  if (empty)
    report_deviations_add(devs, REPORT_DEV_FAILURE_DETAIL_FIELD_EMPTY);

  if (st[REPORT_FD_FAILED_SESSION_COUNT] == REPORT_FIELD_PRESENT)
    f->failed_session_count = report_count_value(devs, &report_failed_session_count,
                                                 val[REPORT_FD_FAILED_SESSION_COUNT]);
  else
    report_deviations_add(devs, report_failed_session_count.missing);
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

/* One element of a failure-details array, into @failures (in @r's arena); deviations
 * are recorded in @devs (r->deviations when converting a tree, the array's own list
 * when parsed ahead). */
static void
report_add_failure_element(Report *r, GPtrArray *failures, GArray *devs,
                           const ReportJsonValue *e)
{
  if (!report_json_is(e, REPORT_JSON_OBJECT))
    report_deviations_add(devs, REPORT_DEV_FAILURE_DETAIL_NOT_OBJECT);
  else
    g_ptr_array_add(failures, report_parse_failure(report_arena(r), devs, e));
}

typedef struct {
  Report *r;
  const ReportFilename *fname;
  GPtrArray *details;             /* ReportDetails*, when parsed incrementally */
  gboolean restart;               /* the tree does not match what was parsed ahead */
} ReportParse;

/* A top-level member the caller reads in the same pass (report_parse_member()). */
typedef struct {
  const char *member;
  ReportMemberFunc func;
  gpointer user_data;
} ReportParseMember;

static void
report_parse_failures(ReportParse *ps, ReportPolicy *p, const ReportJsonValue *entry)
{
  Report *r = ps->r;
  GArray *devs = r->deviations;
  const ReportJsonValue *v;
  if (report_member(entry, "failure-details", &v) != REPORT_FIELD_PRESENT)
    return;
  if (report_json_is(v, REPORT_JSON_OBJECT)) {
    report_deviations_add(devs, REPORT_DEV_FAILURE_DETAILS_SINGLE_OBJECT);
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
        report_deviations_add(devs, g_array_index(d->deviations, ReportDeviation, i));
      g_ptr_array_unref(p->failures);
      p->failures = g_steal_pointer(&d->failures);
    } else {
      for (gsize i = 0; i < n; i++)
        report_add_failure_element(r, p->failures, r->deviations, v->u.items[i]);
    }
  } else {
    report_deviations_add(devs, REPORT_DEV_FAILURE_DETAILS_NOT_ARRAY);
  }

  gint64 sum = 0;
  for (guint i = 0; i < p->failures->len; i++) {
    const ReportFailure *f = p->failures->pdata[i];
    sum += f->failed_session_count;   /* each <= 2^53 - 1: cannot overflow in practice */
    if (sum > REPORT_MAX_COUNT)
      sum = REPORT_MAX_COUNT;
  }
  if (sum > p->total_failure)
    report_deviations_add(devs, REPORT_DEV_FAILURE_COUNTS_EXCEED_TOTAL);
}

static gboolean
report_known_policy_type(const char *t)
{
  return strcmp(t, "sts") == 0 || strcmp(t, "tlsa") == 0 || strcmp(t, "no-policy-found") == 0;
}

static ReportPolicy *
report_parse_policy(ReportParse *ps, const ReportJsonValue *entry)
{
  GArray *devs = ps->r->deviations;
  const ReportFilename *fname = ps->fname;
  ReportPolicy *p = report_policy_new();
  const ReportJsonValue *pol = NULL;
  if (report_member(entry, "policy", &pol) != REPORT_FIELD_PRESENT ||
      !report_json_is(pol, REPORT_JSON_OBJECT)) {
    report_deviations_add(devs, REPORT_DEV_POLICY_MISSING);
    pol = NULL;
  }

  p->policy_type = report_get_string(devs, pol, "policy-type", REPORT_DEV_POLICY_TYPE_NOT_STRING, NULL);
  if (p->policy_type == NULL || *p->policy_type == '\0') {
    report_deviations_add(devs, REPORT_DEV_POLICY_TYPE_MISSING);
    if (p->policy_type == NULL)
      p->policy_type = g_strdup("");
  } else if (!report_known_policy_type(p->policy_type)) {
    report_deviations_add(devs, REPORT_DEV_POLICY_TYPE_UNKNOWN);
  }

  report_parse_policy_strings(devs, p, pol);

  g_autofree char *domain = report_get_optional(devs, pol, "policy-domain",
                                                REPORT_DEV_POLICY_DOMAIN_NOT_STRING, NULL);
  if (domain != NULL) {
    p->policy_domain = report_lower_domain(domain);
  } else {
    report_deviations_add(devs, REPORT_DEV_POLICY_DOMAIN_MISSING);
    if (fname != NULL && fname->policy_domain != NULL && *fname->policy_domain != '\0')
      p->policy_domain = report_lower_domain(fname->policy_domain);
  }

  report_parse_mx_hosts(devs, p, pol);

  const ReportJsonValue *summary = NULL;
  if (report_member(entry, "summary", &summary) != REPORT_FIELD_PRESENT ||
      !report_json_is(summary, REPORT_JSON_OBJECT)) {
    report_deviations_add(devs, REPORT_DEV_SUMMARY_MISSING);
    summary = NULL;
  }
  p->total_successful = report_get_count(devs, summary, &report_total_successful);
  p->total_failure = report_get_count(devs, summary, &report_total_failure);

  report_parse_failures(ps, p, entry);
  return p;
}

/* One end of the date-range; FALSE when missing or unusable. */
static gboolean
report_parse_range_end(GArray *devs, const ReportJsonValue *range, const char *key,
                       ReportDeviation missing, ReportDeviation unparseable, gint64 *out)
{
  const ReportJsonValue *v;
  if (report_member(range, key, &v) != REPORT_FIELD_PRESENT) {
    if (range != NULL)
      report_deviations_add(devs, missing);
    return FALSE;
  }
  if (report_json_is(v, REPORT_JSON_INT)) {
    gint64 e = v->u.i;
    if (e < 0 || e > REPORT_DATETIME_MAX) {
      report_deviations_add(devs, unparseable);
      return FALSE;
    }
    report_deviations_add(devs, REPORT_DEV_DATETIME_NUMBER);
    *out = e;
    return TRUE;
  }
  if (!report_json_is(v, REPORT_JSON_STRING)) {
    report_deviations_add(devs, unparseable);
    return FALSE;
  }
  g_autofree char *s = report_dup_json_string(devs, v);
  gboolean zoneless = FALSE;
  if (!report_datetime_parse(s, out, &zoneless)) {
    report_deviations_add(devs, unparseable);
    return FALSE;
  }
  if (zoneless)
    report_deviations_add(devs, REPORT_DEV_DATETIME_ZONELESS);
  return TRUE;
}

static gboolean
report_parse_date_range(Report *r, const ReportJsonValue *root, const ReportFilename *fname,
                        GError **error)
{
  GArray *devs = r->deviations;
  const ReportJsonValue *range = NULL;
  if (report_member(root, "date-range", &range) != REPORT_FIELD_PRESENT ||
      !report_json_is(range, REPORT_JSON_OBJECT)) {
    report_deviations_add(devs, REPORT_DEV_DATE_RANGE_MISSING);
    range = NULL;
  }
  gboolean have_begin = report_parse_range_end(devs, range, "start-datetime",
                                               REPORT_DEV_START_DATETIME_MISSING,
                                               REPORT_DEV_START_DATETIME_UNPARSEABLE, &r->begin);
  gboolean have_end = report_parse_range_end(devs, range, "end-datetime",
                                             REPORT_DEV_END_DATETIME_MISSING,
                                             REPORT_DEV_END_DATETIME_UNPARSEABLE, &r->end);

  if ((!have_begin || !have_end) && fname == NULL) {
    g_set_error_literal(error, REPORT_ERROR, REPORT_ERROR_INVALID, "no usable date-range");
    return FALSE;
  }
  if (fname != NULL) {
    if (!have_begin || !have_end)
      report_deviations_add(devs, REPORT_DEV_DATE_RANGE_FROM_FILENAME);
    if (!have_begin)
      r->begin = fname->begin;
    else if (r->begin != fname->begin)
      report_deviations_add(devs, REPORT_DEV_FILENAME_BEGIN_DIFFERS);
    if (!have_end)
      r->end = fname->end;
    else if (r->end != fname->end)
      report_deviations_add(devs, REPORT_DEV_FILENAME_END_DIFFERS);
  }
  if (r->end < r->begin)
    report_deviations_add(devs, REPORT_DEV_DATE_RANGE_REVERSED);
  return TRUE;
}

static void
report_check_fname_domain(Report *r, const ReportFilename *fname)
{
  GArray *devs = r->deviations;
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
    report_deviations_add(devs, REPORT_DEV_FILENAME_POLICY_DOMAIN_DIFFERS);
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

/* What json-c tolerated in a document it accepted, one deviation a kind (issue: a
 * report that is not I-JSON is kept, but says why it was accepted). The strict reader
 * takes RFC 8259 JSON only: documents it reads need no look. */
static void
report_record_leniency(GArray *devs, const char *data, gsize len)
{
  static const struct {
    guint kind;
    ReportDeviation dev;
  } kinds[] = {
    { REPORT_JSON_LENIENT_SINGLE_QUOTES, REPORT_DEV_JSON_SINGLE_QUOTES },
    { REPORT_JSON_LENIENT_COMMENTS, REPORT_DEV_JSON_COMMENTS },
    { REPORT_JSON_LENIENT_TRAILING_COMMAS, REPORT_DEV_JSON_TRAILING_COMMAS },
    { REPORT_JSON_LENIENT_NAN_INFINITY, REPORT_DEV_JSON_NAN_INFINITY },
    { REPORT_JSON_LENIENT_LITERAL_CASE, REPORT_DEV_JSON_LITERAL_CASE },
    { REPORT_JSON_LENIENT_NUMBER, REPORT_DEV_JSON_NUMBER_FORM },
    { REPORT_JSON_LENIENT_CONTROL, REPORT_DEV_JSON_CONTROL_IN_STRING },
    { REPORT_JSON_LENIENT_SURROGATE, REPORT_DEV_JSON_LONE_SURROGATE },
  };
  guint found = report_json_leniency(data, len);
  for (guint i = 0; found != 0 && i < G_N_ELEMENTS(kinds); i++)
    if (found & kinds[i].kind)
      report_deviations_add(devs, kinds[i].dev);
}

/* One parse; NULL with *restart set (and no error) when the incremental parse must be
 * redone as a tree. */
static Report *
report_parse_once(const guint8 *data, gsize len, const ReportFilename *fname, guint depth,
                  ReportRead read, const ReportParseMember *extra, gboolean *restart,
                  GError **error)
{
  gboolean incremental = read == REPORT_READ_JSONC_INCREMENTAL;
  g_autoptr(Report) r = report_new();
  g_autoptr(GPtrArray) details = NULL;
  if (incremental)
    details = g_ptr_array_new_with_free_func((GDestroyNotify) report_details_free);
  ReportParse ps = { .r = r, .fname = fname, .details = details };
  GArray *devs = r->deviations;

  if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf) {
    report_deviations_add(devs, REPORT_DEV_BOM);
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
    report_record_leniency(devs, (const char *) data, len);
  }
  gboolean ok = report_convert(&ps, root, error);
  const ReportJsonValue *member = NULL;
  if (ok && !ps.restart && extra != NULL && report_json_member(root, extra->member, &member))
    extra->func(r, member, extra->user_data);
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
  GArray *devs = r->deviations;
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
  r->organization_name = report_get_string(devs, root, "organization-name",
                                           REPORT_DEV_ORGANIZATION_NAME_NOT_STRING, NULL);
  if (r->organization_name == NULL) {
    report_deviations_add(devs, REPORT_DEV_ORGANIZATION_NAME_MISSING);
    r->organization_name = g_strdup("");
  }
  r->report_id = report_get_string(devs, root, "report-id", REPORT_DEV_REPORT_ID_NOT_STRING, NULL);
  if (r->report_id == NULL) {
    report_deviations_add(devs, REPORT_DEV_REPORT_ID_MISSING);
    r->report_id = g_strdup("");
  }
  r->contact_info = report_get_string(devs, root, "contact-info", REPORT_DEV_CONTACT_INFO_NOT_STRING,
                                      &st);
  if (st == REPORT_FIELD_NULL)
    report_deviations_add(devs, REPORT_DEV_CONTACT_INFO_NULL);
  else if (st == REPORT_FIELD_ABSENT)
    report_deviations_add(devs, REPORT_DEV_CONTACT_INFO_MISSING);
  else if (r->contact_info != NULL && *r->contact_info == '\0') {
    report_deviations_add(devs, REPORT_DEV_CONTACT_INFO_EMPTY);
    g_clear_pointer(&r->contact_info, g_free);
  }

  if (!report_parse_date_range(r, root, fname, error))
    return FALSE;

  if (report_json_is(policies, REPORT_JSON_OBJECT)) {
    report_deviations_add(devs, REPORT_DEV_POLICIES_SINGLE_OBJECT);
    g_ptr_array_add(r->policies, report_parse_policy(ps, policies));
  } else {
    gsize n = policies->n;
    if (n == 0)
      report_deviations_add(devs, REPORT_DEV_POLICIES_EMPTY);
    for (gsize i = 0; i < n; i++) {
      const ReportJsonValue *e = policies->u.items[i];
      if (!report_json_is(e, REPORT_JSON_OBJECT)) {
        report_deviations_add(devs, REPORT_DEV_POLICY_ENTRY_NOT_OBJECT);
        continue;
      }
      g_ptr_array_add(r->policies, report_parse_policy(ps, e));
    }
  }
  return TRUE;
}

static Report *
report_parse_full(GBytes *json, const ReportFilename *fname, const TrLimits *limits,
                  ReportParseMode mode, const ReportParseMember *extra, GError **error)
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
  Report *r = report_parse_once(data, len, fname, depth, read, extra, &restart, error);
  if (r == NULL && restart)
    r = report_parse_once(data, len, fname, depth, REPORT_READ_JSONC, extra, &restart,
                          error);
  if (len > REPORT_TOKENER_KEEP_MAX)
    report_tokeners_trim();
  return r;
}

Report *
report_parse_with(GBytes *json, const ReportFilename *fname, const TrLimits *limits,
                  ReportParseMode mode, GError **error)
{
  return report_parse_full(json, fname, limits, mode, NULL, error);
}

Report *
report_parse_member(GBytes *json, const TrLimits *limits, const char *member,
                    ReportMemberFunc func, gpointer user_data, GError **error)
{
  ReportParseMember extra = { member, func, user_data };
  return report_parse_full(json, NULL, limits, REPORT_PARSE_AUTO, &extra, error);
}

Report *
report_parse(GBytes *json, const ReportFilename *fname, const TrLimits *limits,
             GError **error)
{
  return report_parse_with(json, fname, limits, REPORT_PARSE_AUTO, error);
}
