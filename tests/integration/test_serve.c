/* test_serve.c - `tlsrpt-ingest serve` as a real server on a free loopback port (it
 * listens on port 0 and logs the port it got), talked to with libcurl and the curl
 * command:
 *  - json and gzip bodies stored with their figures; the same report twice is stored
 *    once and answered 200 the second time;
 *  - every bad input gets its status, the quarantine holds the bad bodies, and the
 *    server keeps serving;
 *  - 500 concurrent POSTs of 250 distinct reports (each twice): 250 stored once, every
 *    client answered, CSV rows whole;
 *  - SIGTERM: exit 0 after answering. */
#include "../hostile/faultutil.c"

#include <curl/curl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  char *tmp;
  char *store;
  char *csv;
  char *log;
  pid_t pid;
  guint port;
  char *url;
} Serve;

/* Start serve with @extra (NULL-terminated, nullable) options; wait for its port. */
static void
serve_start_in(Serve *s, const char *tmp, const char *const *extra)
{
  memset(s, 0, sizeof *s);
  s->tmp = g_strdup(tmp);
  s->store = g_build_filename(tmp, "store", NULL);
  s->csv = g_build_filename(tmp, "r.csv", NULL);
  s->log = g_build_filename(tmp, "serve.log", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  const char *base[] = { "serve", "--listen", "127.0.0.1:0", "--store", s->store,
                         "--csv", s->csv, "-v" };
  for (gsize i = 0; i < G_N_ELEMENTS(base); i++)
    g_ptr_array_add(argv, (gpointer) base[i]);
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) extra[i]);
  g_ptr_array_add(argv, NULL);
  gsize log_before = 0;
  g_autofree char *old = tu_read_file(s->log, &log_before);
  s->pid = fu_spawn((const char *const *) argv->pdata, NULL, s->log);
  for (int i = 0; i < 1000 && s->port == 0; i++) {
    g_usleep(10 * 1000);
    g_autofree char *text = tu_read_file(s->log, NULL);
    const char *p = text != NULL ? strstr(text + log_before, "listening on 127.0.0.1:") : NULL;
    if (p != NULL)
      s->port = (guint) atoi(p + strlen("listening on 127.0.0.1:"));
  }
  if (s->port == 0) {
    g_autofree char *text = tu_read_file(s->log, NULL);
    kill(s->pid, SIGKILL);
    fail_msg("serve did not start: %s", text ? text : "");
  }
  s->url = g_strdup_printf("http://127.0.0.1:%u/v1/tlsrpt", s->port);
}

static void
serve_start(Serve *s, const char *const *extra)
{
  g_autofree char *tmp = tu_mkdtemp();
  serve_start_in(s, tmp, extra);
}

/* SIGTERM; the exit code. */
static int
serve_stop(Serve *s)
{
  kill(s->pid, SIGTERM);
  int rc = fu_wait(s->pid);
  s->pid = 0;
  return rc;
}

static void
serve_clear(Serve *s, gboolean remove)
{
  if (s->pid > 0) {
    kill(s->pid, SIGKILL);
    fu_wait(s->pid);
  }
  if (remove)
    tu_rmtree(s->tmp);
  g_free(s->tmp);
  g_free(s->store);
  g_free(s->csv);
  g_free(s->log);
  g_free(s->url);
  memset(s, 0, sizeof *s);
}

static size_t
collect(char *data, size_t size, size_t n, void *user)
{
  g_string_append_len(user, data, (gssize) (size * n));
  return size * n;
}

typedef struct {
  CURL *easy;
  struct curl_slist *headers;
  GString *body;
  GBytes *payload;
  guint n;
  long status;
} Post;

static void
post_setup(Post *p, const char *url, const char *ctype, GBytes *payload)
{
  p->easy = curl_easy_init();
  p->body = g_string_new(NULL);
  p->payload = g_bytes_ref(payload);
  g_autofree char *ct = g_strdup_printf("Content-Type: %s", ctype);
  p->headers = curl_slist_append(NULL, ct);
  p->headers = curl_slist_append(p->headers, "Expect:");
  gsize len;
  const void *data = g_bytes_get_data(payload, &len);
  curl_easy_setopt(p->easy, CURLOPT_URL, url);
  curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
  curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, data);
  curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
  curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p->body);
  curl_easy_setopt(p->easy, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(p->easy, CURLOPT_PRIVATE, p);
}

static void
post_clear(Post *p)
{
  curl_easy_cleanup(p->easy);
  curl_slist_free_all(p->headers);
  g_string_free(p->body, TRUE);
  g_bytes_unref(p->payload);
}

/* One POST; returns the status (0 when no answer), *text the answer body. */
static long
post(const char *url, const char *ctype, GBytes *payload, char **text)
{
  Post p = { 0 };
  post_setup(&p, url, ctype, payload);
  CURLcode rc = curl_easy_perform(p.easy);
  long status = 0;
  if (rc == CURLE_OK)
    curl_easy_getinfo(p.easy, CURLINFO_RESPONSE_CODE, &status);
  if (text != NULL)
    *text = rc == CURLE_OK ? g_strdup(p.body->str) : g_strdup(curl_easy_strerror(rc));
  post_clear(&p);
  return status;
}

static long
post_str(const char *url, const char *ctype, const char *body, char **text)
{
  g_autoptr(GBytes) b = g_bytes_new(body, strlen(body));
  return post(url, ctype, b, text);
}

static long
request(const char *url, const char *method, char **text)
{
  CURL *e = curl_easy_init();
  g_autoptr(GString) body = g_string_new(NULL);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
  long status = 0;
  if (curl_easy_perform(e) == CURLE_OK)
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  if (text != NULL)
    *text = g_strdup(body->str);
  return status;
}

static GBytes *
report_n(guint n)
{
  g_autofree char *org = g_strdup_printf("HTTP Org %u", n % 5);
  g_autofree char *id = g_strdup_printf("http-%u", n);
  char *json = fu_report_json(org, id, "example.com");
  return g_bytes_new_take(json, strlen(json));
}

static void
test_stores_json_and_gzip_once(void **state)
{
  Serve s;
  serve_start(&s, NULL);
  g_autoptr(GBytes) j = report_n(1);
  g_autofree char *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL;
  assert_int_equal(post(s.url, "application/tlsrpt+json", j, &t1), 201);
  assert_true(g_str_has_prefix(t1, "stored "));
  assert_int_equal(post(s.url, "application/tlsrpt+json", j, &t2), 200);
  assert_true(g_str_has_prefix(t2, "duplicate "));
  assert_string_equal(t1 + strlen("stored "), t2 + strlen("duplicate "));

  g_autoptr(GBytes) r2 = report_n(2);
  g_autoptr(GBytes) gz = fu_gzip(g_bytes_get_data(r2, NULL), g_bytes_get_size(r2));
  assert_int_equal(post(s.url, "application/tlsrpt+gzip", gz, &t3), 201);
  /* Content-Encoding: gzip of a JSON body (and a media type parameter). */
  g_autoptr(GBytes) r3 = report_n(3);
  g_autoptr(GBytes) gz3 = fu_gzip(g_bytes_get_data(r3, NULL), g_bytes_get_size(r3));
  {
    Post p = { 0 };
    post_setup(&p, s.url, "application/tlsrpt+json; charset=utf-8", gz3);
    p.headers = curl_slist_append(p.headers, "Content-Encoding: gzip");
    curl_easy_setopt(p.easy, CURLOPT_HTTPHEADER, p.headers);
    assert_int_equal(curl_easy_perform(p.easy), CURLE_OK);
    curl_easy_getinfo(p.easy, CURLINFO_RESPONSE_CODE, &p.status);
    assert_int_equal(p.status, 201);
    post_clear(&p);
  }
  assert_int_equal(post(s.url, "application/tlsrpt+gzip", gz, &t4), 200);

  assert_int_equal(serve_stop(&s), 0);
  /* Stored once each, with the figures of the report (3 successful, 1 failed). */
  assert_int_equal(fu_check_index(s.store), 3);
  g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  guint rows = fu_check_csv(s.csv, ids);
  assert_int_equal(g_hash_table_size(ids), 3);
  assert_int_equal(rows, 6);      /* one policy row and one failure row each */
  g_autofree char *csv = tu_read_file(s.csv, NULL);
  assert_non_null(strstr(csv, ",3,1,"));
  assert_non_null(strstr(csv, "http:127.0.0.1"));
  assert_int_equal(fu_check_store_tree(s.store, NULL), 3);
  g_autofree char *log = tu_read_file(s.log, NULL);
  assert_non_null(strstr(log, "\"POST /v1/tlsrpt\" 201 stored "));
  assert_non_null(strstr(log, "\"POST /v1/tlsrpt\" 200 duplicate "));
  serve_clear(&s, TRUE);
}

static void
test_bad_inputs(void **state)
{
  const char *extra[] = { "--max-report-size", "256K", NULL };
  Serve s;
  serve_start(&s, extra);
  g_autoptr(GBytes) good = report_n(7);
  g_autofree char *base = g_strdup_printf("http://127.0.0.1:%u", s.port);
  g_autofree char *other = g_strdup_printf("%s/other", base);
  g_autofree char *health = g_strdup_printf("%s/healthz", base);
  char *t = NULL;

  assert_int_equal(post(s.url, "text/plain", good, &t), 415);
  assert_non_null(strstr(t, "unsupported media type"));
  g_free(t);
  assert_int_equal(post(s.url, "application/json", good, NULL), 415);
  assert_int_equal(request(s.url, "GET", NULL), 405);
  assert_int_equal(request(s.url, "PUT", NULL), 405);
  assert_int_equal(post(other, "application/tlsrpt+json", good, NULL), 404);
  assert_int_equal(request(health, "GET", &t), 200);
  assert_string_equal(t, "ok\n");
  g_free(t);
  assert_int_equal(request(health, "POST", NULL), 405);

  /* Not JSON, bad JSON, not a report, bad gzip: 400, and each body is quarantined. */
  assert_int_equal(post_str(s.url, "application/tlsrpt+json", "not json at all", &t), 400);
  assert_non_null(strstr(t, "quarantine"));
  g_free(t);
  assert_int_equal(post_str(s.url, "application/tlsrpt+json", "{\"policies\": [", NULL), 400);
  assert_int_equal(post_str(s.url, "application/tlsrpt+json", "{\"a\": 1}", NULL), 400);
  static const char badgz[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage";
  g_autoptr(GBytes) bg = g_bytes_new(badgz, sizeof badgz - 1);
  assert_int_equal(post(s.url, "application/tlsrpt+gzip", bg, NULL), 400);
  /* A truncated gzip of a good report. */
  g_autoptr(GBytes) gz = fu_gzip(g_bytes_get_data(good, NULL), g_bytes_get_size(good));
  g_autoptr(GBytes) cut = g_bytes_new_from_bytes(gz, 0, g_bytes_get_size(gz) - 6);
  assert_int_equal(post(s.url, "application/tlsrpt+gzip", cut, NULL), 400);

  /* Over the size cap by its length: 413 before the body is read. */
  g_autofree char *big = g_malloc(300 * 1024);
  memset(big, ' ', 300 * 1024);
  big[0] = '{';
  g_autoptr(GBytes) bigb = g_bytes_new(big, 300 * 1024);
  assert_int_equal(post(s.url, "application/tlsrpt+json", bigb, &t), 413);
  assert_non_null(strstr(t, "too large"));
  g_free(t);
  /* A gzip bomb: small on the wire, stopped at the cap when inflated: 413, kept. */
  g_autoptr(GBytes) bomb = fu_gzip_zeros(64 * 1024 * 1024);
  assert_true(g_bytes_get_size(bomb) < 256 * 1024);
  assert_int_equal(post(s.url, "application/tlsrpt+gzip", bomb, &t), 413);
  g_free(t);

  /* Missing length: 411. Empty body: 400. */
  {
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/tlsrpt+json");
    curl_easy_setopt(e, CURLOPT_URL, s.url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "POST");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    g_autoptr(GString) sink = g_string_new(NULL);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sink);
    long status = 0;
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 411);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
  }
  assert_int_equal(post_str(s.url, "application/tlsrpt+json", "", NULL), 400);

  /* And the server still serves. */
  assert_int_equal(post(s.url, "application/tlsrpt+json", good, NULL), 201);
  assert_int_equal(serve_stop(&s), 0);

  g_autofree char *q = g_build_filename(s.store, "quarantine", NULL);
  assert_int_equal(fu_count_in_dir(q, ".eml"), 6);
  assert_int_equal(fu_count_in_dir(q, ".reason"), 6);
  assert_int_equal(fu_check_index(s.store), 1);
  serve_clear(&s, TRUE);
}

static void
test_concurrent_posts(void **state)
{
  const guint distinct = 250, total = 500;
  Serve s;
  serve_start(&s, NULL);
  CURLM *multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
  g_autofree Post *posts = g_new0(Post, total);
  for (guint i = 0; i < total; i++) {
    g_autoptr(GBytes) r = report_n(1000 + i % distinct);
    g_autoptr(GBytes) gz = fu_gzip(g_bytes_get_data(r, NULL), g_bytes_get_size(r));
    post_setup(&posts[i], s.url, "application/tlsrpt+gzip", gz);
    posts[i].n = i;
    curl_easy_setopt(posts[i].easy, CURLOPT_FORBID_REUSE, 1L);
    curl_multi_add_handle(multi, posts[i].easy);
  }
  int running = 1;
  gint64 t0 = g_get_monotonic_time();
  while (running > 0) {
    curl_multi_perform(multi, &running);
    if (running > 0)
      curl_multi_poll(multi, NULL, 0, 100, NULL);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left)) != NULL) {
      if (m->msg != CURLMSG_DONE)
        continue;
      Post *p = NULL;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &p);
      assert_int_equal(m->data.result, CURLE_OK);
      curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &p->status);
    }
  }
  double wall = (g_get_monotonic_time() - t0) / 1e6;
  guint created = 0, ok = 0;
  for (guint i = 0; i < total; i++) {
    if (posts[i].status == 201)
      created++;
    else if (posts[i].status == 200)
      ok++;
    else
      fail_msg("POST %u answered %ld: %s", i, posts[i].status, posts[i].body->str);
    curl_multi_remove_handle(multi, posts[i].easy);
    post_clear(&posts[i]);
  }
  curl_multi_cleanup(multi);
  print_message("%u POSTs in %.2f s: %u stored, %u duplicates\n", total, wall, created, ok);
  assert_int_equal(created, distinct);
  assert_int_equal(ok, total - distinct);
  assert_int_equal(serve_stop(&s), 0);
  assert_int_equal(fu_check_index(s.store), distinct);
  g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  assert_int_equal(fu_check_csv(s.csv, ids), 2 * distinct);
  assert_int_equal(g_hash_table_size(ids), distinct);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, ids);
  while (g_hash_table_iter_next(&it, NULL, &v))
    assert_int_equal(GPOINTER_TO_UINT(v), 1);
  serve_clear(&s, TRUE);
}

static void
test_usage_errors(void **state)
{
  g_autoptr(GBytes) none = g_bytes_new(NULL, 0);
  g_autofree char *err = NULL;
  const char *a1[] = { "serve", "--tls-cert", "/nonexistent", NULL };
  assert_int_equal(tu_run(a1, none, NULL, &err), 2);
  assert_non_null(strstr(err, "--tls-key"));
  g_clear_pointer(&err, g_free);
  const char *a2[] = { "serve", "--listen", "nonsense:port", "--store", "/tmp/x", NULL };
  assert_int_equal(tu_run(a2, none, NULL, &err), 2);
  g_clear_pointer(&err, g_free);
  const char *a3[] = { "serve", "--path", "relative", NULL };
  assert_int_equal(tu_run(a3, none, NULL, &err), 2);
  g_clear_pointer(&err, g_free);
  g_autofree char *out = NULL;
  const char *a4[] = { "serve", "--help", NULL };
  assert_int_equal(tu_run(a4, none, &out, NULL), 0);
  assert_non_null(strstr(out, "--tls-cert"));
  assert_non_null(strstr(out, "--max-connections"));
}

int
main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_usage_errors),
    cmocka_unit_test(test_stores_json_and_gzip_once),
    cmocka_unit_test(test_bad_inputs),
    cmocka_unit_test(test_concurrent_posts),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
