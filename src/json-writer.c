/* json-writer.c - the streaming JSON writer (see json-writer.h). */
#include "json-writer.h"
#include "report-datetime.h"

#include <string.h>

/* Append @n bytes: in place while @out has the room (GLib before 2.76 calls a function
 * for each append, a good part of the cost of a large document). */
static inline void
jw_put(GString *out, const char *s, gsize n)
{
  if (G_LIKELY(out->len + n < out->allocated_len)) {
    memcpy(out->str + out->len, s, n);
    out->len += n;
    out->str[out->len] = '\0';
  } else {
    g_string_append_len(out, s, (gssize) n);
  }
}

void
json_writer_init(JsonWriter *w, GString *out, gboolean pretty)
{
  memset(w, 0, sizeof *w);
  w->out = out;
  w->pretty = pretty;
  w->first[0] = TRUE;
}

void
json_writer_init_jsonc(JsonWriter *w, GString *out)
{
  json_writer_init(w, out, TRUE);
  w->jsonc = TRUE;
}

void
json_writer_set_spill(JsonWriter *w, gsize spill_at, JsonWriterSpill spill, gpointer user_data,
                      GError **error)
{
  w->spill_at = MAX(spill_at, (gsize) 1);
  w->spill = spill;
  w->spill_data = user_data;
  w->error = error;
}

static void
json_writer_newline(JsonWriter *w)
{
  static const char line[] = "\n                                ";  /* 2 * MAX_DEPTH */
  G_STATIC_ASSERT(sizeof line - 2 == 2 * JSON_WRITER_MAX_DEPTH);
  jw_put(w->out, line, 1 + 2 * w->depth);
}

/* Before a value or a key: the separator of the container it is in. */
static void
json_writer_item(JsonWriter *w)
{
  if (w->after_key) {
    w->after_key = FALSE;
    return;
  }
  if (w->depth == 0)
    return;
  if (!w->first[w->depth])
    g_string_append_c(w->out, ',');
  w->first[w->depth] = FALSE;
  if (w->pretty)
    json_writer_newline(w);
}

static void
json_writer_open(JsonWriter *w, char c)
{
  g_assert(w->depth + 1 < JSON_WRITER_MAX_DEPTH);
  json_writer_item(w);
  g_string_append_c(w->out, c);
  w->first[++w->depth] = TRUE;
}

static void
json_writer_close(JsonWriter *w, char c)
{
  g_assert(w->depth > 0);
  gboolean empty = w->first[w->depth];
  w->depth--;
  if (w->pretty && (!empty || w->jsonc))
    json_writer_newline(w);
  g_string_append_c(w->out, c);
}

void
json_writer_begin_object(JsonWriter *w)
{
  json_writer_open(w, '{');
}

void
json_writer_end_object(JsonWriter *w)
{
  json_writer_close(w, '}');
}

void
json_writer_begin_array(JsonWriter *w)
{
  json_writer_open(w, '[');
}

void
json_writer_end_array(JsonWriter *w)
{
  json_writer_close(w, ']');
}

void
json_append_escaped(GString *out, const char *s)
{
  static const char hex[] = "0123456789abcdef";
  const char *run = s;
  const char *p = s;
  for (;; p++) {
    guchar c = (guchar) *p;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    if (p > run)
      jw_put(out, run, (gsize) (p - run));
    if (c == '\0')
      break;
    switch (c) {
    case '"':  jw_put(out, "\\\"", 2); break;
    case '\\': jw_put(out, "\\\\", 2); break;
    case '\n': jw_put(out, "\\n", 2); break;
    case '\r': jw_put(out, "\\r", 2); break;
    case '\t': jw_put(out, "\\t", 2); break;
    case '\b': jw_put(out, "\\b", 2); break;
    case '\f': jw_put(out, "\\f", 2); break;
    default: {
      char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf] };
      jw_put(out, u, 6);
    }
    }
    run = p + 1;
  }
}

/* @s as a quoted JSON string; invalid UTF-8 repaired (ingest fields come from mail
 * headers and may be anything), except in json-c's layout. */
static void
json_writer_quoted(const JsonWriter *w, const char *s)
{
  GString *out = w->out;
  g_string_append_c(out, '"');
  if (w->jsonc || g_utf8_validate(s, -1, NULL)) {
    json_append_escaped(out, s);
  } else {
    g_autofree char *valid = g_utf8_make_valid(s, -1);
    json_append_escaped(out, valid);
  }
  g_string_append_c(out, '"');
}

void
json_writer_key(JsonWriter *w, const char *key)
{
  json_writer_item(w);
  json_writer_quoted(w, key);
  jw_put(w->out, ": ", w->pretty ? 2 : 1);
  w->after_key = TRUE;
}

void
json_writer_string(JsonWriter *w, const char *s)
{
  if (s == NULL) {
    json_writer_null(w);
    return;
  }
  json_writer_item(w);
  json_writer_quoted(w, s);
}

void
json_append_int(GString *out, gint64 v)
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
  jw_put(out, p, (gsize) (buf + sizeof buf - p));
}

void
json_writer_int(JsonWriter *w, gint64 v)
{
  json_writer_item(w);
  json_append_int(w->out, v);
}

void
json_writer_bool(JsonWriter *w, gboolean b)
{
  json_writer_item(w);
  jw_put(w->out, b ? "true" : "false", b ? 4 : 5);
}

void
json_writer_null(JsonWriter *w)
{
  json_writer_item(w);
  jw_put(w->out, "null", 4);
}

void
json_writer_number_text(JsonWriter *w, const char *text)
{
  json_writer_item(w);
  jw_put(w->out, text, strlen(text));
}

void
json_writer_datetime(JsonWriter *w, gint64 epoch)
{
  char buf[21];
  report_datetime_format(epoch, buf);
  json_writer_item(w);
  g_string_append_c(w->out, '"');
  jw_put(w->out, buf, 20);
  g_string_append_c(w->out, '"');
}

void
json_writer_member_string(JsonWriter *w, const char *key, const char *s)
{
  if (s == NULL)
    return;
  json_writer_key(w, key);
  json_writer_string(w, s);
}

void
json_writer_member_int(JsonWriter *w, const char *key, gint64 v)
{
  json_writer_key(w, key);
  json_writer_int(w, v);
}

void
json_writer_member_datetime(JsonWriter *w, const char *key, gint64 epoch)
{
  json_writer_key(w, key);
  json_writer_datetime(w, epoch);
}

void
json_writer_member_strings(JsonWriter *w, const char *key, const GPtrArray *a)
{
  json_writer_key(w, key);
  json_writer_begin_array(w);
  for (guint i = 0; a != NULL && i < a->len; i++)
    json_writer_string(w, a->pdata[i]);
  json_writer_end_array(w);
}

gboolean
json_writer_spill_point(JsonWriter *w)
{
  if (w->failed)
    return FALSE;
  if (w->spill_at > 0 && w->out->len >= w->spill_at &&
      !w->spill(w->out, w->spill_data, w->error))
    w->failed = TRUE;
  return !w->failed;
}
