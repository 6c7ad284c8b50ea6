/* json-writer.h - a small streaming JSON writer into a GString, compact or pretty
 * (two-space indent), with no JSON library behind it: the report's normalized form
 * (report_to_json()) and the read side's renderers write through it.
 *
 * Values placed in an array get their separators by themselves; in an object each
 * value follows json_writer_key(). Strings are escaped for JSON (control bytes as
 * \uXXXX) and invalid UTF-8 is repaired (U+FFFD), so the output is always valid UTF-8
 * JSON whatever the strings hold. Nesting is limited to JSON_WRITER_MAX_DEPTH - 1
 * containers (a programmer error beyond). */
#ifndef TLSRPT_JSON_WRITER_H
#define TLSRPT_JSON_WRITER_H

#include <glib.h>

#define JSON_WRITER_MAX_DEPTH 16

/* Called by json_writer_spill_point() once @out holds spill_at bytes or more: writes
 * out what it wants and truncates @out. */
typedef gboolean (*JsonWriterSpill)(GString *out, gpointer user_data, GError **error);

typedef struct {
  GString *out;                   /* appended to (transfer none) */
  gboolean pretty;
  guint depth;
  gboolean after_key;             /* the next value is a member's */
  gboolean first[JSON_WRITER_MAX_DEPTH];
  gsize spill_at;                 /* 0: never spill */
  JsonWriterSpill spill;
  gpointer spill_data;
  GError **error;
  gboolean failed;                /* a spill failed: the caller should stop */
  gboolean jsonc;                 /* json-c's layout (json_writer_init_jsonc()) */
} JsonWriter;

/* A writer appending to @out. */
void json_writer_init(JsonWriter *w, GString *out, gboolean pretty);
/* A pretty writer whose text is byte for byte json-c's (0.16) with JSON_C_TO_STRING_PRETTY
 * | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE, for an output that json-c
 * wrote before: an empty array or object is "[" or "{", a newline, the indent and "]"
 * or "}", and strings are escaped but their bytes not repaired (json-c writes invalid
 * UTF-8 as it is). */
void json_writer_init_jsonc(JsonWriter *w, GString *out);
/* Make json_writer_spill_point() call @spill at @spill_at bytes (at least 1). */
void json_writer_set_spill(JsonWriter *w, gsize spill_at, JsonWriterSpill spill,
                           gpointer user_data, GError **error);

void json_writer_begin_object(JsonWriter *w);
void json_writer_end_object(JsonWriter *w);
void json_writer_begin_array(JsonWriter *w);
void json_writer_end_array(JsonWriter *w);
/* A member's key; its value is the next thing written. */
void json_writer_key(JsonWriter *w, const char *key);

void json_writer_string(JsonWriter *w, const char *s);   /* NULL writes null */
void json_writer_int(JsonWriter *w, gint64 v);
void json_writer_bool(JsonWriter *w, gboolean b);
void json_writer_null(JsonWriter *w);
/* A number already formatted as JSON (@text: "0.010000"), written as it is. */
void json_writer_number_text(JsonWriter *w, const char *text);
/* An epoch as "YYYY-MM-DDTHH:MM:SSZ" (report-datetime.h). */
void json_writer_datetime(JsonWriter *w, gint64 epoch);

/* Members: key and value. _string omits the member when @s is NULL; _strings writes
 * an array of the char* of @a (NULL: []). */
void json_writer_member_string(JsonWriter *w, const char *key, const char *s);
void json_writer_member_int(JsonWriter *w, const char *key, gint64 v);
void json_writer_member_datetime(JsonWriter *w, const char *key, gint64 epoch);
void json_writer_member_strings(JsonWriter *w, const char *key, const GPtrArray *a);

/* A point where the text so far may be written out (see json_writer_set_spill()).
 * FALSE once a spill has failed (w->failed; its error is in the one set). */
gboolean json_writer_spill_point(JsonWriter *w);

/* Append the decimal digits of @v (the JSON and CSV writers' integers). */
void json_append_int(GString *out, gint64 v);
/* Append @s, valid UTF-8, escaped as the body of a JSON string (no quotes). */
void json_append_escaped(GString *out, const char *s);

#endif
