/* keyset.c - the set of 16-byte keys (see keyset.h). */
#include "keyset.h"

#include <string.h>

static const guint8 keyset_zero[KEYSET_KEY_LEN];

static gsize
keyset_hash(const guint8 *key)
{
  guint64 h;
  memcpy(&h, key, sizeof h);
  h ^= h >> 33;
  h *= G_GUINT64_CONSTANT(0xff51afd7ed558ccd);
  h ^= h >> 33;
  return (gsize) h;
}

static gboolean
keyset_is_zero(const guint8 *key)
{
  return memcmp(key, keyset_zero, KEYSET_KEY_LEN) == 0;
}

void
keyset_init(KeySet *set, gboolean with_values)
{
  memset(set, 0, sizeof *set);
  set->with_values = with_values;
}

void
keyset_clear(KeySet *set)
{
  gboolean with_values = set->with_values;
  g_free(set->slots);
  g_free(set->values);
  keyset_init(set, with_values);
}

/* The slot of @key (not all-zero), or the empty slot where it would go; capacity > 0. */
static gsize
keyset_slot(const KeySet *set, const guint8 *key)
{
  gsize mask = set->capacity - 1;
  gsize i = keyset_hash(key) & mask;
  for (;;) {
    const guint8 *slot = set->slots + i * KEYSET_KEY_LEN;
    if (keyset_is_zero(slot) || memcmp(slot, key, KEYSET_KEY_LEN) == 0)
      return i;
    i = (i + 1) & mask;
  }
}

gboolean
keyset_contains(const KeySet *set, const guint8 key[KEYSET_KEY_LEN])
{
  if (keyset_is_zero(key))
    return set->has_zero;
  if (set->capacity == 0)
    return FALSE;
  return !keyset_is_zero(set->slots + keyset_slot(set, key) * KEYSET_KEY_LEN);
}

guint8 *
keyset_value(KeySet *set, const guint8 key[KEYSET_KEY_LEN])
{
  if (!set->with_values)
    return NULL;
  if (keyset_is_zero(key))
    return set->has_zero ? &set->zero_value : NULL;
  if (set->capacity == 0)
    return NULL;
  gsize i = keyset_slot(set, key);
  return keyset_is_zero(set->slots + i * KEYSET_KEY_LEN) ? NULL : &set->values[i];
}

/* Insert into a table known to have room. */
static gboolean
keyset_put(KeySet *set, const guint8 *key, guint8 value)
{
  gsize i = keyset_slot(set, key);
  guint8 *slot = set->slots + i * KEYSET_KEY_LEN;
  if (!keyset_is_zero(slot))
    return FALSE;
  memcpy(slot, key, KEYSET_KEY_LEN);
  if (set->values != NULL)
    set->values[i] = value;
  set->count++;
  return TRUE;
}

gboolean
keyset_add(KeySet *set, const guint8 key[KEYSET_KEY_LEN], guint8 value)
{
  if (keyset_is_zero(key)) {
    if (set->has_zero)
      return FALSE;
    set->has_zero = TRUE;
    set->zero_value = value;
    return TRUE;
  }
  /* Load factor at most 4/5: 200,000 keys fit in 2^18 slots (4 MiB). */
  if ((set->count + 1) * 5 > set->capacity * 4) {
    KeySet bigger;
    keyset_init(&bigger, set->with_values);
    bigger.capacity = set->capacity ? set->capacity * 2 : 1024;
    bigger.slots = g_malloc0(bigger.capacity * KEYSET_KEY_LEN);
    if (set->with_values)
      bigger.values = g_malloc0(bigger.capacity);
    bigger.has_zero = set->has_zero;
    bigger.zero_value = set->zero_value;
    for (gsize i = 0; i < set->capacity; i++) {
      const guint8 *slot = set->slots + i * KEYSET_KEY_LEN;
      if (!keyset_is_zero(slot))
        keyset_put(&bigger, slot, set->values != NULL ? set->values[i] : 0);
    }
    g_free(set->slots);
    g_free(set->values);
    *set = bigger;
  }
  return keyset_put(set, key, value);
}

gsize
keyset_size(const KeySet *set)
{
  return set->count + (set->has_zero ? 1 : 0);
}

gsize
keyset_memory(const KeySet *set)
{
  return set->capacity * (KEYSET_KEY_LEN + (set->with_values ? 1 : 0));
}

gboolean
keyset_next(KeySet *set, gsize *iter, const guint8 **key, guint8 **value)
{
  /* 0: the zero key; 1 + i: slot i. */
  if (*iter == 0) {
    (*iter)++;
    if (set->has_zero) {
      *key = keyset_zero;
      if (value != NULL)
        *value = set->with_values ? &set->zero_value : NULL;
      return TRUE;
    }
  }
  for (; *iter - 1 < set->capacity; (*iter)++) {
    gsize i = *iter - 1;
    const guint8 *slot = set->slots + i * KEYSET_KEY_LEN;
    if (keyset_is_zero(slot))
      continue;
    (*iter)++;
    *key = slot;
    if (value != NULL)
      *value = set->values != NULL ? &set->values[i] : NULL;
    return TRUE;
  }
  return FALSE;
}

void
keyset_key_hex(const guint8 key[KEYSET_KEY_LEN], char out[2 * KEYSET_KEY_LEN + 1])
{
  static const char hex[] = "0123456789abcdef";
  for (guint i = 0; i < KEYSET_KEY_LEN; i++) {
    out[2 * i] = hex[key[i] >> 4];
    out[2 * i + 1] = hex[key[i] & 0xf];
  }
  out[2 * KEYSET_KEY_LEN] = '\0';
}

gboolean
keyset_key_from_hex(const char *hex, gsize len, guint8 key[KEYSET_KEY_LEN])
{
  if (len != 2 * KEYSET_KEY_LEN)
    return FALSE;
  for (gsize k = 0; k < KEYSET_KEY_LEN; k++) {
    int hi = g_ascii_xdigit_value(hex[2 * k]);
    int lo = g_ascii_xdigit_value(hex[2 * k + 1]);
    if (hi < 0 || lo < 0)
      return FALSE;
    key[k] = (guint8) ((guint) hi << 4 | (guint) lo);
  }
  return TRUE;
}
