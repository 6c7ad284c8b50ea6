/* report-json.h - the JSON values report-parse.c converts into a Report: a small read-only
 * tree in one arena, made either by a strict reader of its own (the common case: no
 * json-c object is created or freed) or by copying a json-c value (everything the
 * strict reader declines, and large documents parsed incrementally with json-c).
 *
 * The strict reader accepts RFC 8259 JSON whose meaning json-c cannot take differently,
 * and declines (returns NULL, no error) everything else, so that the caller hands the
 * text to json-c, which then accepts or rejects it exactly as it always did: comments,
 * single quotes, control bytes in strings, \u0000 and surrogate escapes, numbers with a
 * fraction, an exponent, a leading zero or more than 15 digits, "-0", duplicate keys,
 * objects of more than 64 members, nesting near the depth limit or deeper than 256
 * containers (the reader recurses; json-c does not), a top level that is
 * not an object, anything after it but white space. Bytes that are not UTF-8 are kept
 * as they are, as json-c keeps them (the converter repairs and records them).
 *
 * JSON null is a NULL node, as json-c's is a NULL object: an array element or member
 * value may be NULL. */
#ifndef TLSRPT_REPORT_JSON_H
#define TLSRPT_REPORT_JSON_H

#include "common.h"

typedef enum {
  REPORT_JSON_BOOLEAN = 1,
  REPORT_JSON_INT,
  REPORT_JSON_DOUBLE,
  REPORT_JSON_STRING,
  REPORT_JSON_ARRAY,
  REPORT_JSON_OBJECT,
} ReportJsonType;

typedef struct ReportJsonValue ReportJsonValue;

typedef struct {
  const char *key;                /* NUL-terminated */
  const ReportJsonValue *value;            /* NULL: JSON null */
} ReportJsonMember;

struct ReportJsonValue {
  ReportJsonType type;
  guint32 n;                      /* string: bytes; array: elements; object: members */
  /* string: its bytes (NUL-terminated; n counts them, NULs inside included); number or
   * boolean: its JSON text as json-c prints it (JSON_C_TO_STRING_PLAIN) */
  const char *text;
  union {
    gint64 i;                     /* REPORT_JSON_INT */
    double d;                     /* REPORT_JSON_DOUBLE */
    gboolean b;                   /* REPORT_JSON_BOOLEAN */
    const ReportJsonValue *const *items;   /* REPORT_JSON_ARRAY: n elements (each may be NULL) */
    const ReportJsonMember *members;     /* REPORT_JSON_OBJECT: n members, in document order */
  } u;
};

typedef struct ReportJsonArena ReportJsonArena;

/* Where the nodes of one document live. report_json_arena_reset() forgets them all and keeps
 * one block for the next document. (transfer full) */
ReportJsonArena *report_json_arena_new(void);
void report_json_arena_reset(ReportJsonArena *arena);
void report_json_arena_free(ReportJsonArena *arena);

/* The document @data (@len bytes, no NUL byte in it, no byte order mark) as a tree in
 * @arena, when the strict reader takes it: its top level is an object and it nests at
 * most @max_nesting containers deep. NULL: declined (not an error: give it to json-c). */
const ReportJsonValue *report_json_parse(ReportJsonArena *arena, const char *data, gsize len, guint max_nesting);

/* A deep copy of the json-c value @v into @arena (NULL for json-c's NULL). Containers
 * nested more than 32 deep in @v are copied empty, of their type: report-parse.c never looks
 * below the sixth level, and a copy that recursed through json-c's deepest trees would
 * need their depth in stack. */
const ReportJsonValue *report_json_from_jsonc(ReportJsonArena *arena, struct json_object *v);

static inline gboolean
report_json_is(const ReportJsonValue *v, ReportJsonType type)
{
  return v != NULL && v->type == type;
}

/* Member @key of the object @obj: TRUE when present (*val NULL when it is null). */
gboolean report_json_member(const ReportJsonValue *obj, const char *key, const ReportJsonValue **val);

/* The name json-c gives the type of @v ("null" for NULL). */
const char *report_json_type_name(const ReportJsonValue *v);

/* What json-c tolerated in @data (@len bytes, a document json-c accepted): the kinds
 * of non-RFC 8259 text it holds, REPORT_JSON_LENIENT_* flags; 0 for strict JSON. A
 * lexical pass, so it only reads text json-c took: "" after a comment or a string it
 * cannot end is not looked at. */
enum {
  REPORT_JSON_LENIENT_SINGLE_QUOTES = 1 << 0,     /* 'strings' (keys included) */
  REPORT_JSON_LENIENT_COMMENTS = 1 << 1,          /* slash-star and // comments */
  REPORT_JSON_LENIENT_TRAILING_COMMAS = 1 << 2,   /* [1,] {"a":1,} */
  REPORT_JSON_LENIENT_NAN_INFINITY = 1 << 3,      /* NaN, Infinity, -Infinity, any case */
  REPORT_JSON_LENIENT_LITERAL_CASE = 1 << 4,      /* True, NULL, fALSE */
  REPORT_JSON_LENIENT_NUMBER = 1 << 5,            /* 01, -01, 1., -.5, 2.e3, 1e, 1e+ */
  REPORT_JSON_LENIENT_CONTROL = 1 << 6,           /* raw control bytes inside strings */
  REPORT_JSON_LENIENT_SURROGATE = 1 << 7,         /* \\uD800 without its pair (I-JSON) */
};
guint report_json_leniency(const char *data, gsize len);

#endif
