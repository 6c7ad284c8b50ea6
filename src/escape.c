/* escape.c - one escaper per output context (escape.h). */
#include "escape.h"

#include <string.h>

/* The length of the character at @p (@left > 0 bytes remain) and, in *unsafe, whether
 * it is shown as "\xNN" per byte: a C0 control or DEL, a C1 control, a bidirectional
 * override or isolate, a line or paragraph separator, or a byte of invalid UTF-8
 * (then the length is 1, and the next byte starts afresh). */
static gsize
escape_unit(const guchar *p, gsize left, gboolean *unsafe)
{
  if (*p < 0x80) {
    *unsafe = *p < 0x20 || *p == 0x7f;
    return 1;
  }
  gunichar c = g_utf8_get_char_validated((const char *) p, (gssize) left);
  if (c == (gunichar) -1 || c == (gunichar) -2 || c == 0) {
    *unsafe = TRUE;
    return 1;
  }
  *unsafe = (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
            (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029;
  return (gsize) g_unichar_to_utf8(c, NULL);
}

static void
escape_hex(GString *out, const guchar *p, gsize n, const char *prefix)
{
  for (gsize i = 0; i < n; i++)
    g_string_append_printf(out, "%s%02x", prefix, p[i]);
}

void
tr_escape_terminal_append(GString *out, const char *s, gssize len)
{
  if (s == NULL)
    return;
  gsize n = len < 0 ? strlen(s) : (gsize) len;
  const guchar *p = (const guchar *) s, *end = p + n;
  while (p < end) {
    /* Runs of printable ASCII are copied at once. */
    const guchar *run = p;
    while (p < end && *p >= 0x20 && *p < 0x7f)
      p++;
    if (p > run)
      g_string_append_len(out, (const char *) run, p - run);
    if (p == end)
      break;
    gboolean unsafe;
    gsize u = escape_unit(p, (gsize) (end - p), &unsafe);
    if (unsafe)
      escape_hex(out, p, u, "\\x");
    else
      g_string_append_len(out, (const char *) p, (gssize) u);
    p += u;
  }
}

char *
tr_escape_terminal(const char *s)
{
  if (s == NULL)
    return g_strdup("");
  const guchar *p = (const guchar *) s;
  while (*p >= 0x20 && *p < 0x7f)
    p++;
  if (*p == '\0')
    return g_strdup(s);
  gsize n = strlen(s);
  GString *out = g_string_sized_new(n + 16);
  tr_escape_terminal_append(out, s, (gssize) n);
  return g_string_free(out, FALSE);
}

void
tr_escape_html_append(GString *out, const char *s)
{
  if (s == NULL)
    return;
  const guchar *p = (const guchar *) s, *end = p + strlen(s);
  while (p < end) {
    gboolean unsafe;
    gsize u = escape_unit(p, (gsize) (end - p), &unsafe);
    if (unsafe) {
      escape_hex(out, p, u, "\\x");
    } else {
      switch (*p) {
      case '&': g_string_append(out, "&amp;"); break;
      case '<': g_string_append(out, "&lt;"); break;
      case '>': g_string_append(out, "&gt;"); break;
      case '"': g_string_append(out, "&quot;"); break;
      case '\'': g_string_append(out, "&#39;"); break;
      default: g_string_append_len(out, (const char *) p, (gssize) u); break;
      }
    }
    p += u;
  }
}

void
tr_escape_prom_label_append(GString *out, const char *s)
{
  if (s == NULL)
    return;
  const guchar *p = (const guchar *) s, *end = p + strlen(s);
  while (p < end) {
    gboolean unsafe;
    gsize u = escape_unit(p, (gsize) (end - p), &unsafe);
    if (*p == '\\')
      g_string_append(out, "\\\\");
    else if (*p == '"')
      g_string_append(out, "\\\"");
    else if (*p == '\n')
      g_string_append(out, "\\n");
    else if (unsafe)
      escape_hex(out, p, u, "\\\\x");
    else
      g_string_append_len(out, (const char *) p, (gssize) u);
    p += u;
  }
}

static gboolean
csv_formula_start(const char *s)
{
  return s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
}

guint
tr_csv_cell_check(const char *s)
{
  if (s == NULL || s[0] == '\0')
    return 0;
  guint what = csv_formula_start(s) ? TR_CSV_FORMULA : 0;
  const guchar *p = (const guchar *) s, *end = p + strlen(s);
  while (p < end) {
    if (*p >= 0x20 && *p < 0x7f) {
      p++;
      continue;
    }
    gboolean unsafe;
    gsize u = escape_unit(p, (gsize) (end - p), &unsafe);
    if (unsafe && *p != '\t')
      return what | TR_CSV_CONTROL;
    p += u;
  }
  return what;
}

/* The field for @value (@len bytes), quoted when needed; nothing for "". */
static void
csv_field(GString *out, const char *value, gsize len)
{
  if (len == 0)
    return;
  gboolean quote = g_ascii_isspace(value[0]) || g_ascii_isspace(value[len - 1]);
  for (gsize i = 0; i < len && !quote; i++)
    quote = value[i] == ',' || value[i] == '"' || value[i] == '\r' || value[i] == '\n';
  if (!quote) {
    g_string_append_len(out, value, (gssize) len);
    return;
  }
  g_string_append_c(out, '"');
  for (gsize i = 0; i < len; i++) {
    if (value[i] == '"')
      g_string_append_c(out, '"');
    g_string_append_c(out, value[i]);
  }
  g_string_append_c(out, '"');
}

gboolean
tr_csv_cell_append(GString *out, const char *s, gboolean raw)
{
  if (s == NULL || s[0] == '\0')
    return FALSE;
  guint what = raw ? 0 : tr_csv_cell_check(s);
  if (what == 0) {
    csv_field(out, s, strlen(s));
    return FALSE;
  }
  g_autoptr(GString) cell = g_string_new((what & TR_CSV_FORMULA) ? "'" : NULL);
  if (what & TR_CSV_CONTROL) {
    const guchar *p = (const guchar *) s, *end = p + strlen(s);
    while (p < end) {
      gboolean unsafe;
      gsize u = escape_unit(p, (gsize) (end - p), &unsafe);
      if (unsafe && *p != '\t')
        escape_hex(cell, p, u, "\\x");
      else
        g_string_append_len(cell, (const char *) p, (gssize) u);
      p += u;
    }
  } else {
    g_string_append(cell, s);
  }
  csv_field(out, cell->str, cell->len);
  return TRUE;
}
