/* test_json_writer.c - the streaming JSON writer (json-writer.h): its json-c layout
 * byte for byte against json-c's own pretty printer (every byte in strings and keys,
 * empty and nested containers, numbers), and the summary's JSON (render-json.c) written
 * through it as json-c's object tree wrote it. */
#include "testutil.h"
#include "json-writer.h"
#include "render.h"

#include <string.h>

#define JSONC_FLAGS \
  (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Every byte from 1 to 255 once: controls, quote, backslash, slash, DEL, and bytes
 * that are no UTF-8 (json-c writes them as they are). */
static char *
all_bytes(void)
{
  char *s = g_malloc(256);
  for (int i = 1; i < 256; i++)
    s[i - 1] = (char) i;
  s[255] = '\0';
  return s;
}

static void
test_jsonc_layout(void **state)
{
  (void) state;
  g_autofree char *bytes = all_bytes();
  const char *strings[] = { bytes, "", "a/b \"q\" \\ \xc3\xa9 \xff\xfe", "\x7f\x01\x1f" };

  /* The same document through json-c's tree... */
  g_autoptr(TrJson) root = json_object_new_object();
  json_object_object_add(root, "empty_object", json_object_new_object());
  json_object_object_add(root, "empty_array", json_object_new_array());
  TrJson *nest = json_object_new_array();
  TrJson *inner = json_object_new_object();
  json_object_object_add(inner, "a", json_object_new_array());
  json_object_object_add(inner, "o", json_object_new_object());
  json_object_object_add(inner, "n", NULL);
  json_object_array_add(nest, inner);
  json_object_array_add(nest, json_object_new_array());
  json_object_array_add(nest, NULL);
  json_object_object_add(root, "nested", nest);
  TrJson *strs = json_object_new_array();
  for (gsize i = 0; i < G_N_ELEMENTS(strings); i++)
    json_object_array_add(strs, json_object_new_string(strings[i]));
  json_object_object_add(root, "strings", strs);
  json_object_object_add(root, bytes, json_object_new_int64(G_MININT64));
  json_object_object_add(root, "max", json_object_new_int64(G_MAXINT64));
  json_object_object_add(root, "zero", json_object_new_int64(0));
  json_object_object_add(root, "t", json_object_new_boolean(TRUE));
  json_object_object_add(root, "f", json_object_new_boolean(FALSE));
  json_object_object_add(root, "ratio", json_object_new_double_s(0.05, "0.050000"));
  const char *want = json_object_to_json_string_ext(root, JSONC_FLAGS);

  /* ... and through the writer. */
  g_autoptr(GString) out = g_string_new(NULL);
  JsonWriter w;
  json_writer_init_jsonc(&w, out);
  json_writer_begin_object(&w);
  json_writer_key(&w, "empty_object");
  json_writer_begin_object(&w);
  json_writer_end_object(&w);
  json_writer_key(&w, "empty_array");
  json_writer_begin_array(&w);
  json_writer_end_array(&w);
  json_writer_key(&w, "nested");
  json_writer_begin_array(&w);
  json_writer_begin_object(&w);
  json_writer_key(&w, "a");
  json_writer_begin_array(&w);
  json_writer_end_array(&w);
  json_writer_key(&w, "o");
  json_writer_begin_object(&w);
  json_writer_end_object(&w);
  json_writer_key(&w, "n");
  json_writer_null(&w);
  json_writer_end_object(&w);
  json_writer_begin_array(&w);
  json_writer_end_array(&w);
  json_writer_string(&w, NULL);
  json_writer_end_array(&w);
  json_writer_key(&w, "strings");
  json_writer_begin_array(&w);
  for (gsize i = 0; i < G_N_ELEMENTS(strings); i++)
    json_writer_string(&w, strings[i]);
  json_writer_end_array(&w);
  json_writer_member_int(&w, bytes, G_MININT64);
  json_writer_member_int(&w, "max", G_MAXINT64);
  json_writer_member_int(&w, "zero", 0);
  json_writer_key(&w, "t");
  json_writer_bool(&w, TRUE);
  json_writer_key(&w, "f");
  json_writer_bool(&w, FALSE);
  json_writer_key(&w, "ratio");
  json_writer_number_text(&w, "0.050000");
  json_writer_end_object(&w);
  assert_int_equal(out->len, strlen(want));
  assert_memory_equal(out->str, want, out->len);

  /* The other layouts still repair invalid UTF-8. */
  g_string_truncate(out, 0);
  json_writer_init(&w, out, FALSE);
  json_writer_string(&w, "\xff");
  assert_string_equal(out->str, "\"\xef\xbf\xbd\"");
}

static QueryCount *
count(const char *name, gint64 reports)
{
  QueryCount *c = g_new0(QueryCount, 1);
  c->name = g_strdup(name);
  c->reports = reports;
  c->successful_sessions = -1;
  return c;
}

static void
count_free(gpointer p)
{
  QueryCount *c = p;
  g_free(c->name);
  g_free(c);
}

/* A verdict named "unchecked" beside the unchecked reports: one member, where the first
 * was, with the last one's count (json-c's object replaced the value in place). An
 * empty summary's lists are json-c's empty containers. */
static void
test_summary_verdict_keys(void **state)
{
  (void) state;
  QuerySummary s = { 0 };
  s.domains = g_ptr_array_new();
  s.verdicts = g_ptr_array_new_with_free_func(count_free);
  g_ptr_array_add(s.verdicts, count("", 7));
  g_ptr_array_add(s.verdicts, count("pass", 5));
  g_ptr_array_add(s.verdicts, count("unchecked", 3));
  RenderSummaryOptions o = { "note", "store", 0.01, 0.05 };
  g_autoptr(GString) out = g_string_new(NULL);
  render_summary_json(&s, &o, QUERY_BY_DOMAIN, NULL, out);
  assert_non_null(strstr(out->str, "  \"dkim\": {\n    \"unchecked\": 3,\n    \"pass\": 5\n  },\n"
                                   "  \"domains\": [\n  ]\n}\n"));
  g_ptr_array_unref(s.verdicts);
  g_ptr_array_unref(s.domains);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_jsonc_layout),
    cmocka_unit_test(test_summary_verdict_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
