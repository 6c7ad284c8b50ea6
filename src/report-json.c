/* report-json.c - the JSON values of report.c: a strict reader into one arena, and
 * copies of json-c values. See report-json.h for what the reader declines. */
#include "report-json.h"

#include <string.h>

#define REPORT_JSON_BLOCK_MIN (16u * 1024)
#define REPORT_JSON_MAX_MEMBERS 64u     /* larger objects: json-c (duplicate keys) */
#define REPORT_JSON_MAX_DIGITS 15u      /* longer integers: json-c (its int64 limits) */
#define REPORT_JSON_COPY_NESTING 32u    /* containers deeper are copied empty */
#define REPORT_JSON_MAX_NESTING 256u    /* deeper: json-c, which does not recurse (this
                                           reader does, on the caller's stack) */

/* ---- the arena ------------------------------------------------------------------ */

typedef struct ReportJsonBlock {
  struct ReportJsonBlock *prev;
  gsize size;                     /* bytes after this header */
} ReportJsonBlock;

struct ReportJsonArena {
  ReportJsonBlock *block;         /* the newest */
  char *next;
  gsize left;
  GPtrArray *stack;               /* scratch: elements and members of open containers */
};

ReportJsonArena *
report_json_arena_new(void)
{
  ReportJsonArena *a = g_new0(ReportJsonArena, 1);
  a->stack = g_ptr_array_new();
  return a;
}

static void
report_json_arena_free_blocks(ReportJsonArena *a, ReportJsonBlock *keep)
{
  ReportJsonBlock *b = a->block;
  while (b != NULL) {
    ReportJsonBlock *prev = b->prev;
    if (b != keep)
      g_free(b);
    b = prev;
  }
  a->block = keep;
  if (keep != NULL) {
    keep->prev = NULL;
    a->next = (char *) (keep + 1);
    a->left = keep->size;
  } else {
    a->next = NULL;
    a->left = 0;
  }
}

void
report_json_arena_reset(ReportJsonArena *a)
{
  /* The newest block is the largest: keep it unless it is very large. */
  ReportJsonBlock *keep = a->block != NULL && a->block->size <= 1024 * 1024 ? a->block : NULL;
  report_json_arena_free_blocks(a, keep);
  g_ptr_array_set_size(a->stack, 0);
}

void
report_json_arena_free(ReportJsonArena *a)
{
  if (a == NULL)
    return;
  report_json_arena_free_blocks(a, NULL);
  g_ptr_array_unref(a->stack);
  g_free(a);
}

static gpointer
report_json_alloc(ReportJsonArena *a, gsize n)
{
  n = (n + 7) & ~(gsize) 7;
  if (n > a->left) {
    gsize size = MAX(n, REPORT_JSON_BLOCK_MIN);
    if (a->block != NULL)
      size = MAX(size, MIN(a->block->size * 2, (gsize) 1024 * 1024));
    ReportJsonBlock *b = g_malloc(sizeof *b + size);
    b->prev = a->block;
    b->size = size;
    a->block = b;
    a->next = (char *) (b + 1);
    a->left = size;
  }
  gpointer p = a->next;
  a->next += n;
  a->left -= n;
  return p;
}

static char *
report_json_strdup(ReportJsonArena *a, const char *s, gsize len)
{
  char *d = report_json_alloc(a, len + 1);
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

/* ---- the strict reader ------------------------------------------------------------ */

typedef struct {
  ReportJsonArena *a;
  const char *p;
  const char *end;
  guint max_nesting;
} ReportJsonReader;

static void
report_json_ws(ReportJsonReader *rd)
{
  while (rd->p < rd->end &&
         (*rd->p == ' ' || *rd->p == '\n' || *rd->p == '\r' || *rd->p == '\t'))
    rd->p++;
}

static int
report_json_hex(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* The string opening at rd->p ('"'), decoded into the arena; FALSE: declined. */
static gboolean
report_json_string(ReportJsonReader *rd, const char **out, guint32 *out_len)
{
  const char *s = rd->p + 1;
  /* Plain strings (no escape) are copied at once. */
  const char *q = s;
  while (q < rd->end && *q != '"' && *q != '\\' && (guchar) *q >= 0x20)
    q++;
  if (q >= rd->end || (guchar) *q < 0x20)
    return FALSE;
  if (*q == '"') {
    if ((gsize) (q - s) > G_MAXUINT32)
      return FALSE;
    *out = report_json_strdup(rd->a, s, (gsize) (q - s));
    *out_len = (guint32) (q - s);
    rd->p = q + 1;
    return TRUE;
  }
  /* With escapes: the decoded text is never longer than the source. */
  const char *close = q;
  for (;;) {
    while (close < rd->end && *close != '"' && *close != '\\')
      close++;
    if (close >= rd->end)
      return FALSE;
    if (*close == '"')
      break;
    close += 2;                   /* an escape: skip the escaped character */
  }
  if ((gsize) (close - s) > G_MAXUINT32)
    return FALSE;
  char *d = report_json_alloc(rd->a, (gsize) (close - s) + 1);
  char *w = d;
  const char *c = s;
  while (c < close) {
    guchar ch = (guchar) *c;
    if (ch < 0x20)
      return FALSE;
    if (ch != '\\') {
      *w++ = (char) ch;
      c++;
      continue;
    }
    if (c + 1 >= close)
      return FALSE;
    switch (c[1]) {
    case '"': *w++ = '"'; break;
    case '\\': *w++ = '\\'; break;
    case '/': *w++ = '/'; break;
    case 'b': *w++ = '\b'; break;
    case 'f': *w++ = '\f'; break;
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'u': {
      if (close - c < 6)
        return FALSE;
      guint cp = 0;
      for (int k = 2; k < 6; k++) {
        int h = report_json_hex(c[k]);
        if (h < 0)
          return FALSE;
        cp = cp * 16 + (guint) h;
      }
      /* NUL and surrogates: json-c's own handling. */
      if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
        return FALSE;
      if (cp < 0x80) {
        *w++ = (char) cp;
      } else if (cp < 0x800) {
        *w++ = (char) (0xc0 | (cp >> 6));
        *w++ = (char) (0x80 | (cp & 0x3f));
      } else {
        *w++ = (char) (0xe0 | (cp >> 12));
        *w++ = (char) (0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char) (0x80 | (cp & 0x3f));
      }
      c += 6;
      continue;
    }
    default:
      return FALSE;
    }
    c += 2;
  }
  *w = '\0';
  *out = d;
  *out_len = (guint32) (w - d);
  rd->p = close + 1;
  return TRUE;
}

static ReportJsonValue *
report_json_node(ReportJsonArena *a, ReportJsonType type)
{
  ReportJsonValue *v = report_json_alloc(a, sizeof *v);
  memset(v, 0, sizeof *v);
  v->type = type;
  return v;
}

/* An integer: -?(0|[1-9][0-9]*), at most REPORT_JSON_MAX_DIGITS digits; anything else
 * that starts like a number is declined. */
static gboolean
report_json_number(ReportJsonReader *rd, const ReportJsonValue **out)
{
  const char *start = rd->p;
  const char *q = start;
  gboolean negative = q < rd->end && *q == '-';
  if (negative)
    q++;
  const char *digits = q;
  while (q < rd->end && g_ascii_isdigit(*q))
    q++;
  gsize n = (gsize) (q - digits);
  if (n == 0 || n > REPORT_JSON_MAX_DIGITS || (digits[0] == '0' && n > 1))
    return FALSE;
  if (q < rd->end && (*q == '.' || *q == 'e' || *q == 'E'))
    return FALSE;
  gint64 v = 0;
  for (const char *d = digits; d < q; d++)
    v = v * 10 + (*d - '0');
  if (negative && v == 0)
    return FALSE;                 /* "-0": json-c's business */
  ReportJsonValue *node = report_json_node(rd->a, REPORT_JSON_INT);
  node->u.i = negative ? -v : v;
  node->text = report_json_strdup(rd->a, start, (gsize) (q - start));
  rd->p = q;
  *out = node;
  return TRUE;
}

static gboolean
report_json_literal(ReportJsonReader *rd, const char *word)
{
  gsize n = strlen(word);
  if ((gsize) (rd->end - rd->p) < n || memcmp(rd->p, word, n) != 0)
    return FALSE;
  rd->p += n;
  return TRUE;
}

static gboolean report_json_value(ReportJsonReader *rd, guint nesting,
                                  const ReportJsonValue **out);

/* A member is a key and a value: two pointers, as the scratch stack holds them. */
G_STATIC_ASSERT(sizeof(ReportJsonMember) == 2 * sizeof(gpointer));

/* The array or object whose elements (an array's: one pointer each; an object's: a key
 * and a value) its reading pushed on the scratch stack since @base. */
static gboolean
report_json_close(ReportJsonReader *rd, guint base, ReportJsonType type,
                  const ReportJsonValue **out)
{
  GPtrArray *stack = rd->a->stack;
  guint ptrs = stack->len - base;
  ReportJsonValue *node = report_json_node(rd->a, type);
  gpointer *copy = report_json_alloc(rd->a, MAX(ptrs, 1u) * sizeof(gpointer));
  if (ptrs > 0)                   /* an empty stack has no array at all */
    memcpy(copy, stack->pdata + base, ptrs * sizeof(gpointer));
  g_ptr_array_set_size(stack, base);
  if (type == REPORT_JSON_ARRAY) {
    node->n = ptrs;
    node->u.items = (const ReportJsonValue *const *) copy;
  } else {
    node->n = ptrs / 2;
    node->u.members = (const ReportJsonMember *) copy;
  }
  *out = node;
  return TRUE;
}

/* Past the opening '[' or '{' at rd->p: TRUE when @close follows at once (consumed). */
static gboolean
report_json_open(ReportJsonReader *rd, char close)
{
  rd->p++;
  report_json_ws(rd);
  if (rd->p < rd->end && *rd->p == close) {
    rd->p++;
    return TRUE;
  }
  return FALSE;
}

/* After an element of a container: ',' (*closed FALSE) or @close (*closed TRUE), both
 * consumed; anything else: FALSE. */
static gboolean
report_json_after_element(ReportJsonReader *rd, char close, gboolean *closed)
{
  report_json_ws(rd);
  if (rd->p >= rd->end)
    return FALSE;
  if (*rd->p == ',') {
    rd->p++;
    report_json_ws(rd);
    *closed = FALSE;
    return TRUE;
  }
  if (*rd->p != close)
    return FALSE;
  rd->p++;
  *closed = TRUE;
  return TRUE;
}

static gboolean
report_json_array(ReportJsonReader *rd, guint nesting, const ReportJsonValue **out)
{
  GPtrArray *stack = rd->a->stack;
  guint base = stack->len;
  gboolean closed = report_json_open(rd, ']');
  while (!closed) {
    const ReportJsonValue *e = NULL;
    if (!report_json_value(rd, nesting, &e))
      return FALSE;
    g_ptr_array_add(stack, (gpointer) e);
    if (!report_json_after_element(rd, ']', &closed))
      return FALSE;
  }
  return report_json_close(rd, base, REPORT_JSON_ARRAY, out);
}

static gboolean
report_json_object(ReportJsonReader *rd, guint nesting, const ReportJsonValue **out)
{
  GPtrArray *stack = rd->a->stack;
  guint base = stack->len;       /* key, value, key, value, ... */
  gboolean closed = report_json_open(rd, '}');
  while (!closed) {
    if (rd->p >= rd->end || *rd->p != '"')
      return FALSE;
    const char *key;
    guint32 key_len;
    if (!report_json_string(rd, &key, &key_len))
      return FALSE;
    /* A repeated key: json-c keeps the last value at the first place. */
    for (guint i = base; i < stack->len; i += 2)
      if (strcmp(stack->pdata[i], key) == 0)
        return FALSE;
    if ((stack->len - base) / 2 >= REPORT_JSON_MAX_MEMBERS)
      return FALSE;
    report_json_ws(rd);
    if (rd->p >= rd->end || *rd->p != ':')
      return FALSE;
    rd->p++;
    report_json_ws(rd);
    const ReportJsonValue *v = NULL;
    if (!report_json_value(rd, nesting, &v))
      return FALSE;
    g_ptr_array_add(stack, (gpointer) key);
    g_ptr_array_add(stack, (gpointer) v);
    if (!report_json_after_element(rd, '}', &closed))
      return FALSE;
  }
  return report_json_close(rd, base, REPORT_JSON_OBJECT, out);
}

/* The value at rd->p (no white space before it), inside @nesting containers. */
static gboolean
report_json_value(ReportJsonReader *rd, guint nesting, const ReportJsonValue **out)
{
  if (rd->p >= rd->end)
    return FALSE;
  switch (*rd->p) {
  case '{':
    if (nesting + 1 > rd->max_nesting)
      return FALSE;
    return report_json_object(rd, nesting + 1, out);
  case '[':
    if (nesting + 1 > rd->max_nesting)
      return FALSE;
    return report_json_array(rd, nesting + 1, out);
  case '"': {
    ReportJsonValue *node = report_json_node(rd->a, REPORT_JSON_STRING);
    const char *s;
    if (!report_json_string(rd, &s, &node->n))
      return FALSE;
    node->text = s;
    *out = node;
    return TRUE;
  }
  case 't':
  case 'f': {
    gboolean b = *rd->p == 't';
    if (!report_json_literal(rd, b ? "true" : "false"))
      return FALSE;
    ReportJsonValue *node = report_json_node(rd->a, REPORT_JSON_BOOLEAN);
    node->u.b = b;
    node->text = b ? "true" : "false";
    *out = node;
    return TRUE;
  }
  case 'n':
    if (!report_json_literal(rd, "null"))
      return FALSE;
    *out = NULL;
    return TRUE;
  default:
    if (*rd->p == '-' || g_ascii_isdigit(*rd->p))
      return report_json_number(rd, out);
    return FALSE;
  }
}

const ReportJsonValue *
report_json_parse(ReportJsonArena *a, const char *data, gsize len, guint max_nesting)
{
  ReportJsonReader rd = { .a = a, .p = data, .end = data + len,
                          .max_nesting = MIN(max_nesting, REPORT_JSON_MAX_NESTING) };
  g_ptr_array_set_size(a->stack, 0);
  report_json_ws(&rd);
  if (rd.p >= rd.end || *rd.p != '{')
    return NULL;
  const ReportJsonValue *root = NULL;
  if (!report_json_value(&rd, 0, &root)) {
    g_ptr_array_set_size(a->stack, 0);
    return NULL;
  }
  report_json_ws(&rd);
  return rd.p == rd.end ? root : NULL;
}

/* ---- copies of json-c values ------------------------------------------------------ */

static const ReportJsonValue *
report_json_copy(ReportJsonArena *a, struct json_object *v, guint nesting)
{
  if (v == NULL)
    return NULL;
  ReportJsonValue *node;
  switch (json_object_get_type(v)) {
  case json_type_boolean:
    node = report_json_node(a, REPORT_JSON_BOOLEAN);
    node->u.b = json_object_get_boolean(v) ? TRUE : FALSE;
    break;
  case json_type_int:
    node = report_json_node(a, REPORT_JSON_INT);
    node->u.i = json_object_get_int64(v);
    break;
  case json_type_double:
    node = report_json_node(a, REPORT_JSON_DOUBLE);
    node->u.d = json_object_get_double(v);
    break;
  case json_type_string: {
    node = report_json_node(a, REPORT_JSON_STRING);
    gsize n = (gsize) json_object_get_string_len(v);
    node->text = report_json_strdup(a, json_object_get_string(v), n);
    node->n = (guint32) MIN(n, (gsize) G_MAXUINT32);
    return node;
  }
  case json_type_array: {
    gsize n = nesting < REPORT_JSON_COPY_NESTING ? json_object_array_length(v) : 0;
    node = report_json_node(a, REPORT_JSON_ARRAY);
    const ReportJsonValue **items = report_json_alloc(a, MAX(n, (gsize) 1) * sizeof *items);
    for (gsize i = 0; i < n; i++)
      items[i] = report_json_copy(a, json_object_array_get_idx(v, i), nesting + 1);
    node->n = (guint32) n;
    node->u.items = items;
    return node;
  }
  case json_type_object: {
    gsize n = nesting < REPORT_JSON_COPY_NESTING ? (gsize) json_object_object_length(v) : 0;
    node = report_json_node(a, REPORT_JSON_OBJECT);
    ReportJsonMember *members = report_json_alloc(a, MAX(n, (gsize) 1) * sizeof *members);
    gsize i = 0;
    json_object_object_foreach(v, key, val) {
      if (i == n)
        break;
      members[i].key = report_json_strdup(a, key, strlen(key));
      members[i].value = report_json_copy(a, val, nesting + 1);
      i++;
    }
    node->n = (guint32) i;
    node->u.members = members;
    return node;
  }
  default:
    return NULL;
  }
  /* Numbers and booleans: json-c's own text of them. */
  const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
  node->text = report_json_strdup(a, text, strlen(text));
  return node;
}

const ReportJsonValue *
report_json_from_jsonc(ReportJsonArena *a, struct json_object *v)
{
  return report_json_copy(a, v, 0);
}

/* ---- access ----------------------------------------------------------------------- */

gboolean
report_json_member(const ReportJsonValue *obj, const char *key, const ReportJsonValue **val)
{
  *val = NULL;
  if (!report_json_is(obj, REPORT_JSON_OBJECT))
    return FALSE;
  for (guint32 i = 0; i < obj->n; i++) {
    if (strcmp(obj->u.members[i].key, key) == 0) {
      *val = obj->u.members[i].value;
      return TRUE;
    }
  }
  return FALSE;
}

const char *
report_json_type_name(const ReportJsonValue *v)
{
  if (v == NULL)
    return "null";
  switch (v->type) {
  case REPORT_JSON_BOOLEAN: return "boolean";
  case REPORT_JSON_INT: return "int";
  case REPORT_JSON_DOUBLE: return "double";
  case REPORT_JSON_STRING: return "string";
  case REPORT_JSON_ARRAY: return "array";
  case REPORT_JSON_OBJECT: return "object";
  }
  return "null";
}

/* ---- what json-c tolerates ------------------------------------------------------ */

static gboolean
report_json_lenient_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whether [s, s + n) is a number as RFC 8259 §6 writes it:
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static gboolean
report_json_number_ok(const char *s, gsize n)
{
  gsize i = 0;
  if (i < n && s[i] == '-')
    i++;
  if (i == n || !g_ascii_isdigit(s[i]))
    return FALSE;
  if (s[i] == '0')
    i++;
  else
    while (i < n && g_ascii_isdigit(s[i]))
      i++;
  if (i < n && s[i] == '.') {
    i++;
    if (i == n || !g_ascii_isdigit(s[i]))
      return FALSE;
    while (i < n && g_ascii_isdigit(s[i]))
      i++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    if (i == n || !g_ascii_isdigit(s[i]))
      return FALSE;
    while (i < n && g_ascii_isdigit(s[i]))
      i++;
  }
  return i == n;
}

static gboolean
report_json_word_is(const char *s, gsize n, const char *word, gboolean any_case)
{
  gsize w = strlen(word);
  if (n != w)
    return FALSE;
  return any_case ? g_ascii_strncasecmp(s, word, n) == 0 : memcmp(s, word, n) == 0;
}

guint
report_json_leniency(const char *data, gsize len)
{
  guint kinds = 0;
  char last = 0;                  /* the last structural character, 'v' after a value */
  gsize i = 0;
  while (i < len) {
    char c = data[i];
    if (report_json_lenient_space(c)) {
      i++;
      continue;
    }
    if (c == '/' && i + 1 < len && (data[i + 1] == '*' || data[i + 1] == '/')) {
      kinds |= REPORT_JSON_LENIENT_COMMENTS;
      if (data[i + 1] == '/') {
        const char *nl = memchr(data + i, '\n', len - i);
        i = nl != NULL ? (gsize) (nl - data) + 1 : len;
      } else {
        gsize j = i + 2;
        while (j + 1 < len && !(data[j] == '*' && data[j + 1] == '/'))
          j++;
        i = MIN(j + 2, len);
      }
      continue;
    }
    if (c == '"' || c == '\'') {
      if (c == '\'')
        kinds |= REPORT_JSON_LENIENT_SINGLE_QUOTES;
      gsize j = i + 1;
      gboolean after_high = FALSE;    /* just after a \\uD800-\\uDBFF escape */
      while (j < len && data[j] != c) {
        if (data[j] == '\\') {
          guint u = 0;
          gboolean is_u = j + 5 < len && data[j + 1] == 'u';
          for (guint k = 2; is_u && k < 6; k++) {
            is_u = g_ascii_isxdigit(data[j + k]);
            u = u * 16 + (guint) (is_u ? g_ascii_xdigit_value(data[j + k]) : 0);
          }
          gboolean low = is_u && u >= 0xdc00 && u <= 0xdfff;
          if ((after_high && !low) || (!after_high && low))
            kinds |= REPORT_JSON_LENIENT_SURROGATE;
          after_high = is_u && u >= 0xd800 && u <= 0xdbff;
          j += is_u ? 6 : 2;
          continue;
        }
        if (after_high)
          kinds |= REPORT_JSON_LENIENT_SURROGATE;
        after_high = FALSE;
        if ((guchar) data[j] < 0x20)
          kinds |= REPORT_JSON_LENIENT_CONTROL;
        j++;
      }
      if (after_high)
        kinds |= REPORT_JSON_LENIENT_SURROGATE;
      i = j + 1;
      last = 'v';
      continue;
    }
    if (c == ']' || c == '}') {
      if (last == ',')
        kinds |= REPORT_JSON_LENIENT_TRAILING_COMMAS;
      last = 'v';
      i++;
      continue;
    }
    if (c == ',' || c == ':' || c == '[' || c == '{') {
      last = c;
      i++;
      continue;
    }
    /* A bare word: a number or a literal. */
    gsize j = i;
    while (j < len && (g_ascii_isalnum(data[j]) || data[j] == '+' || data[j] == '-' ||
                       data[j] == '.'))
      j++;
    if (j == i)
      j = i + 1;                  /* anything else: json-c rejected it already */
    const char *w = data + i;
    gsize n = j - i;
    const char *unsigned_w = n > 0 && w[0] == '-' ? w + 1 : w;
    gsize unsigned_n = unsigned_w == w ? n : n - 1;
    if (report_json_word_is(w, n, "true", FALSE) || report_json_word_is(w, n, "false", FALSE) ||
        report_json_word_is(w, n, "null", FALSE))
      ;
    else if (report_json_word_is(w, n, "true", TRUE) || report_json_word_is(w, n, "false", TRUE) ||
             report_json_word_is(w, n, "null", TRUE))
      kinds |= REPORT_JSON_LENIENT_LITERAL_CASE;
    else if (report_json_word_is(unsigned_w, unsigned_n, "nan", TRUE) ||
             report_json_word_is(unsigned_w, unsigned_n, "infinity", TRUE))
      kinds |= REPORT_JSON_LENIENT_NAN_INFINITY;
    else if (!report_json_number_ok(w, n))
      kinds |= REPORT_JSON_LENIENT_NUMBER;
    last = 'v';
    i = j;
  }
  return kinds;
}
