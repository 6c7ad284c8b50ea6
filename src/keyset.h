/* keyset.h - a compact set of 16-byte keys (SHA-256 prefixes: the store's dedup index,
 * the Maildir source's seen records), each with an optional one-byte value: open
 * addressing, linear probing, load factor at most 4/5, 16 bytes a slot (17 with values).
 * The all-zero key is a member like any other (it is kept beside the slots). */
#ifndef TLSRPT_KEYSET_H
#define TLSRPT_KEYSET_H

#include <glib.h>

#define KEYSET_KEY_LEN 16

typedef struct {
  guint8 *slots;            /* capacity * 16 bytes; an all-zero slot is empty */
  guint8 *values;           /* capacity bytes, or NULL for a set without values */
  gsize capacity;           /* power of two, or 0 */
  gsize count;              /* keys in slots */
  gboolean with_values;     /* a zeroed KeySet is an empty set without values */
  gboolean has_zero;        /* the all-zero key, which cannot live in a slot */
  guint8 zero_value;
} KeySet;

/* An empty set; @with_values: keys carry a value byte. Free with keyset_clear(). */
void keyset_init(KeySet *set, gboolean with_values);
/* Forget every key and free the memory; the set stays usable (as initialized). */
void keyset_clear(KeySet *set);

gboolean keyset_contains(const KeySet *set, const guint8 key[KEYSET_KEY_LEN]);
/* The value of @key, or NULL when it is not in the set (and always NULL for a set
 * without values): read and change it in place, until the next keyset_add(). */
guint8 *keyset_value(KeySet *set, const guint8 key[KEYSET_KEY_LEN]);
/* Add @key with @value (ignored without values); TRUE when it was not there (an
 * existing key keeps its value). */
gboolean keyset_add(KeySet *set, const guint8 key[KEYSET_KEY_LEN], guint8 value);
gsize keyset_size(const KeySet *set);
/* Bytes allocated. */
gsize keyset_memory(const KeySet *set);

/* The one spelling of a key: 32 lower-case hex digits and a NUL into @out (report
 * keys in file names, the store's index, the JSON). */
void keyset_key_hex(const guint8 key[KEYSET_KEY_LEN], char out[2 * KEYSET_KEY_LEN + 1]);
/* Read that spelling back from exactly @len bytes at @hex (either case); FALSE when it
 * is not 32 hex digits. */
gboolean keyset_key_from_hex(const char *hex, gsize len, guint8 key[KEYSET_KEY_LEN]);

/* Iterate: for (gsize i = 0; keyset_next(set, &i, &key, &value);) visits every key
 * once (@value nullable; NULL for a set without values). */
gboolean keyset_next(KeySet *set, gsize *iter, const guint8 **key, guint8 **value);

#endif
