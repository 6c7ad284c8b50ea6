/* test_keyset.c - the set of 16-byte keys shared by the store's index and the Maildir
 * source's seen records, and the one spelling of a key in hex. */
#include "testutil.h"
#include "keyset.h"

#include <string.h>

static void
make_key(guint n, guint8 key[KEYSET_KEY_LEN])
{
  /* Keys that share their first 8 bytes probe past each other. */
  memset(key, 0, KEYSET_KEY_LEN);
  key[0] = (guint8) (n & 1);
  key[12] = (guint8) (n >> 24);
  key[13] = (guint8) (n >> 16);
  key[14] = (guint8) (n >> 8);
  key[15] = (guint8) n;
}

static void
test_add_contains_grow(void **state)
{
  (void) state;
  KeySet set;
  keyset_init(&set, FALSE);
  guint8 key[KEYSET_KEY_LEN];
  for (guint n = 1; n <= 5000; n++) {
    make_key(n, key);
    assert_false(keyset_contains(&set, key));
    assert_true(keyset_add(&set, key, 7));
    assert_false(keyset_add(&set, key, 7));
    assert_null(keyset_value(&set, key));     /* no values in this set */
  }
  assert_int_equal(keyset_size(&set), 5000);
  for (guint n = 1; n <= 5000; n++) {
    make_key(n, key);
    assert_true(keyset_contains(&set, key));
  }
  make_key(5001, key);
  assert_false(keyset_contains(&set, key));
  assert_true(set.capacity >= 5000 * 5 / 4);
  assert_int_equal(keyset_memory(&set), set.capacity * KEYSET_KEY_LEN);

  /* The all-zero key is a member like any other. */
  make_key(0, key);
  assert_false(keyset_contains(&set, key));
  assert_true(keyset_add(&set, key, 0));
  assert_true(keyset_contains(&set, key));
  assert_int_equal(keyset_size(&set), 5001);

  gsize seen = 0;
  const guint8 *k;
  for (gsize it = 0; keyset_next(&set, &it, &k, NULL);) {
    assert_true(keyset_contains(&set, k));
    seen++;
  }
  assert_int_equal(seen, 5001);

  keyset_clear(&set);
  assert_int_equal(keyset_size(&set), 0);
  assert_false(keyset_contains(&set, key));
  keyset_clear(&set);
}

static void
test_values(void **state)
{
  (void) state;
  KeySet set;
  keyset_init(&set, TRUE);
  guint8 key[KEYSET_KEY_LEN];
  for (guint n = 0; n < 3000; n++) {
    make_key(n, key);
    assert_true(keyset_add(&set, key, (guint8) (n % 200)));
  }
  for (guint n = 0; n < 3000; n++) {
    make_key(n, key);
    guint8 *v = keyset_value(&set, key);
    assert_non_null(v);
    assert_int_equal(*v, n % 200);
    *v = 201;
    assert_false(keyset_add(&set, key, 9));    /* an existing key keeps its value */
  }
  gsize seen = 0;
  const guint8 *k;
  guint8 *v;
  for (gsize it = 0; keyset_next(&set, &it, &k, &v);) {
    assert_int_equal(*v, 201);
    seen++;
  }
  assert_int_equal(seen, 3000);
  make_key(3000, key);
  assert_null(keyset_value(&set, key));
  assert_int_equal(keyset_memory(&set), set.capacity * (KEYSET_KEY_LEN + 1));
  keyset_clear(&set);

  KeySet empty = { 0 };                        /* zeroed: empty, no values */
  assert_false(keyset_contains(&empty, key));
  assert_null(keyset_value(&empty, key));
  gsize it = 0;
  assert_false(keyset_next(&empty, &it, &k, &v));
}

static void
test_hex(void **state)
{
  (void) state;
  static const guint8 k[16] = { 0x00, 0x01, 0xab, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7e };
  char hex[2 * KEYSET_KEY_LEN + 1];
  keyset_key_hex(k, hex);
  assert_string_equal(hex, "0001abff00000000000000000000007e");
  guint8 back[16];
  assert_true(keyset_key_from_hex(hex, strlen(hex), back));
  assert_memory_equal(back, k, 16);
  assert_true(keyset_key_from_hex("0001ABFF00000000000000000000007E", 32, back));
  assert_memory_equal(back, k, 16);
  assert_false(keyset_key_from_hex(hex, 31, back));
  assert_false(keyset_key_from_hex("0001abff0000000000000000000000xe", 32, back));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_add_contains_grow),
    cmocka_unit_test(test_values),
    cmocka_unit_test(test_hex),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
