/* test_serve.c - `tlsrpt-ingest serve` as a real server on a free loopback port (it
 * listens on port 0 and logs the port it got), talked to with libcurl and the curl
 * command:
 *  - json and gzip bodies stored with their figures; the same report twice is stored
 *    once and answered 200 the second time;
 *  - every bad input gets its status, the quarantine holds the bad bodies, and the
 *    server keeps serving;
 *  - 500 concurrent POSTs of 250 distinct reports (each twice): 250 stored once, every
 *    client answered, CSV rows whole;
 *  - kill -9 during a load run, restart, re-POST of what got no 2xx: every report
 *    exactly once, nothing that got 2xx missing;
 *  - a full store (tmpfs): 503 with Retry-After, nothing partial, then 201 once space
 *    returns;
 *  - a slowloris client is cut after --timeout while others are served; per-IP
 *    connection and rate limits (429); --domain (403, quarantined);
 *  - HTTPS with a certificate made by openssl, talked to with the curl command, and
 *    the certificate replaced on SIGHUP; systemd socket activation (LISTEN_FDS);
 *  - every fixture (the fuzz seed corpus) POSTed as a body: answered, no crash;
 *  - SIGTERM: exit 0 after answering. */
#include "../hostile/faultutil.c"

#include <curl/curl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <signal.h>
#include <fcntl.h>
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
  static const char listening[] = "listening on 127.0.0.1:";
  g_autofree char *started = tu_wait_file_text(s->log, log_before, listening, 10000);
  if (started != NULL)
    s->port = (guint) atoi(strstr(started + log_before, listening) + strlen(listening));
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
  /* One line per request (-v): the pipeline's, with the peer, the outcome, the report
   * and what was answered; the five POSTs of five reports of three keys. */
  g_auto(GStrv) lines = g_strsplit(log, "\n", -1);
  g_autofree char *key = g_strstrip(g_strdup(t1 + strlen("stored ")));
  guint posts = 0, of_key = 0;
  for (guint i = 0; lines[i] != NULL; i++) {
    if (strstr(lines[i], "http-1") != NULL || strstr(lines[i], "http-2") != NULL ||
        strstr(lines[i], "http-3") != NULL)
      posts++;
    if (strstr(lines[i], key) != NULL) {
      of_key++;
      assert_true(g_str_has_prefix(lines[i], "tlsrpt-ingest: http:127.0.0.1: "));
    }
  }
  assert_int_equal(posts, 5);
  assert_int_equal(of_key, 2);   /* stored, then the duplicate */
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


/* ---- kill -9 under load ----------------------------------------------------- */

static void
run_multi(Post *posts, guint n, pid_t kill_pid, guint kill_after, guint *answered)
{
  CURLM *multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
  for (guint i = 0; i < n; i++)
    curl_multi_add_handle(multi, posts[i].easy);
  int running = 1;
  guint done = 0;
  gboolean killed = FALSE;
  while (running > 0) {
    curl_multi_perform(multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left)) != NULL) {
      if (m->msg != CURLMSG_DONE)
        continue;
      Post *p = NULL;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &p);
      p->status = 0;
      if (m->data.result == CURLE_OK)
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &p->status);
      done++;
    }
    if (!killed && kill_pid > 0 && done >= kill_after) {
      kill(kill_pid, SIGKILL);
      killed = TRUE;
    }
    if (running > 0)
      curl_multi_poll(multi, NULL, 0, 50, NULL);
  }
  for (guint i = 0; i < n; i++)
    curl_multi_remove_handle(multi, posts[i].easy);
  curl_multi_cleanup(multi);
  if (answered != NULL)
    *answered = done;
}

static void
test_kill_under_load(void **state)
{
  const guint n = 600;
  g_autofree char *tmp = tu_mkdtemp();
  Serve s;
  serve_start_in(&s, tmp, NULL);
  g_autofree Post *posts = g_new0(Post, n);
  for (guint i = 0; i < n; i++) {
    g_autoptr(GBytes) r = report_n(5000 + i);
    post_setup(&posts[i], s.url, "application/tlsrpt+json", r);
  }
  run_multi(posts, n, s.pid, n / 3, NULL);
  assert_int_equal(fu_wait(s.pid), -SIGKILL);
  s.pid = 0;
  guint acked = 0;
  g_autoptr(GPtrArray) again = g_ptr_array_new();
  for (guint i = 0; i < n; i++) {
    if (posts[i].status == 200 || posts[i].status == 201)
      acked++;
    else
      g_ptr_array_add(again, GUINT_TO_POINTER(i));
    post_clear(&posts[i]);
  }
  print_message("killed under load: %u of %u answered 2xx before the kill\n", acked, n);
  assert_true(acked >= n / 3 && acked < n);

  /* Restart on the same store; POST again only what got no success answer. */
  serve_clear(&s, FALSE);
  serve_start_in(&s, tmp, NULL);
  for (guint k = 0; k < again->len; k++) {
    guint i = GPOINTER_TO_UINT(again->pdata[k]);
    g_autoptr(GBytes) r = report_n(5000 + i);
    long st = post(s.url, "application/tlsrpt+json", r, NULL);
    assert_true(st == 200 || st == 201);
  }
  assert_int_equal(serve_stop(&s), 0);
  /* Exactly once each: so none that was answered 2xx was lost. */
  assert_int_equal(fu_check_index(s.store), n);
  g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  assert_int_equal(fu_check_csv(s.csv, ids), 2 * n);
  assert_int_equal(g_hash_table_size(ids), n);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, ids);
  while (g_hash_table_iter_next(&it, NULL, &v))
    assert_int_equal(GPOINTER_TO_UINT(v), 1);
  assert_int_equal(fu_check_store_tree(s.store, NULL), n);
  serve_clear(&s, TRUE);
}

/* ---- a full store ----------------------------------------------------------- */

static void
test_disk_full(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *mnt = g_build_filename(tmp, "mnt", NULL);
  if (!fu_can_mount() || !fu_mount_tmpfs(mnt, 512)) {
    print_message("cannot mount a tmpfs here: skipped\n");
    tu_rmtree(tmp);
    skip();
  }
  Serve s;
  serve_start_in(&s, mnt, NULL);
  g_autoptr(GBytes) r1 = report_n(1);
  assert_int_equal(post(s.url, "application/tlsrpt+json", r1, NULL), 201);
  /* Fill the file system. */
  g_autofree char *filler = g_build_filename(mnt, "filler", NULL);
  {
    FILE *f = fopen(filler, "w");
    assert_non_null(f);
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    while (fwrite(buf, 1, sizeof buf, f) == sizeof buf && fflush(f) == 0) {
    }
    fclose(f);
  }
  g_autofree char *csv_before = tu_read_file(s.csv, NULL);
  guint index_before = fu_check_index(s.store);
  guint tree_before = fu_check_store_tree(s.store, NULL);
  g_autoptr(GBytes) r2 = report_n(2);
  long st = 0;
  {
    Post p = { 0 };
    post_setup(&p, s.url, "application/tlsrpt+json", r2);
    g_autoptr(GString) hdr = g_string_new(NULL);
    curl_easy_setopt(p.easy, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(p.easy, CURLOPT_HEADERDATA, hdr);
    assert_int_equal(curl_easy_perform(p.easy), CURLE_OK);
    curl_easy_getinfo(p.easy, CURLINFO_RESPONSE_CODE, &st);
    assert_int_equal(st, 503);
    assert_non_null(strcasestr(hdr->str, "Retry-After: "));
    post_clear(&p);
  }
  /* Nothing partial: the CSV, the index and the tree are as before. */
  g_autofree char *csv_after = tu_read_file(s.csv, NULL);
  assert_string_equal(csv_before, csv_after);
  assert_int_equal(fu_check_index(s.store), index_before);
  assert_int_equal(fu_check_store_tree(s.store, NULL), tree_before);
  g_autofree char *health = g_strdup_printf("http://127.0.0.1:%u/healthz", s.port);
  assert_int_equal(request(health, "GET", NULL), 503);
  /* Space returns: the same POST succeeds, once. (The store's next commit may still
   * be refused for a moment, 503 with Retry-After, as a client is told: it retries.) */
  assert_int_equal(unlink(filler), 0);
  long again = 503;
  for (int i = 0; i < 30 && again == 503; i++) {
    if (i > 0)
      g_usleep(100 * 1000);
    again = post(s.url, "application/tlsrpt+json", r2, NULL);
  }
  assert_int_equal(again, 201);
  assert_int_equal(post(s.url, "application/tlsrpt+json", r2, NULL), 200);
  assert_int_equal(request(health, "GET", NULL), 200);
  assert_int_equal(serve_stop(&s), 0);
  assert_int_equal(fu_check_index(s.store), 2);
  assert_int_equal(fu_check_csv(s.csv, NULL), 4);
  serve_clear(&s, FALSE);
  fu_umount(mnt);
  tu_rmtree(tmp);
}

/* ---- slow clients and limits ------------------------------------------------ */

static int
connect_to(guint port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *) &a, sizeof a), 0);
  return fd;
}

/* TRUE when the server closed @fd within @seconds (without sending anything). */
static gboolean
closed_within(int fd, double seconds)
{
  struct timeval tv = { (time_t) seconds, (suseconds_t) ((seconds - (time_t) seconds) * 1e6) };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  ssize_t r = recv(fd, &c, 1, 0);
  return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void
test_slowloris(void **state)
{
  const char *extra[] = { "--timeout", "2", NULL };
  Serve s;
  serve_start(&s, extra);
  int fd = connect_to(s.port);
  static const char head[] = "POST /v1/tlsrpt HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/tlsrpt+json\r\n";
  gint64 t0 = g_get_monotonic_time();
  gboolean cut = FALSE;
  guint served = 0;
  signal(SIGPIPE, SIG_IGN);
  for (gsize i = 0; i < sizeof head - 1 && !cut; i++) {
    if (send(fd, head + i, 1, MSG_NOSIGNAL) != 1) {
      cut = TRUE;
      break;
    }
    /* Meanwhile another client is served at once. */
    g_autoptr(GBytes) r = report_n(300 + (guint) i);
    if (post(s.url, "application/tlsrpt+json", r, NULL) == 201)
      served++;
    cut = closed_within(fd, 0.3);
  }
  double took = (g_get_monotonic_time() - t0) / 1e6;
  print_message("slowloris cut after %.1f s; %u other POSTs served meanwhile\n", took, served);
  assert_true(cut);
  assert_true(took >= 1.9 && took < 5.0);
  assert_true(served >= 3);
  close(fd);
  assert_int_equal(serve_stop(&s), 0);
  g_autofree char *log = tu_read_file(s.log, NULL);
  assert_non_null(strstr(log, "connection cut"));
  serve_clear(&s, TRUE);
}

static void
test_limits(void **state)
{
  const char *extra[] = { "--limit-loopback", "--max-connections-per-ip", "2",
                          "--rate-limit", "2", "--domain", "example.com", NULL };
  Serve s;
  serve_start(&s, extra);
  /* Per-IP connections: the third is closed at once, the first two stay open. */
  int a = connect_to(s.port), b = connect_to(s.port);
  g_usleep(100 * 1000);
  int c = connect_to(s.port);
  assert_true(closed_within(c, 2.0));
  assert_false(closed_within(a, 0.2));
  close(a);
  close(b);
  close(c);
  g_usleep(200 * 1000);

  /* Rate: bursts of 4 at 2/s, then 429 with Retry-After. */
  guint ok = 0, limited = 0;
  for (guint i = 0; i < 10; i++) {
    g_autoptr(GBytes) r = report_n(400 + i);
    long st = post(s.url, "application/tlsrpt+json", r, NULL);
    if (st == 201)
      ok++;
    else if (st == 429)
      limited++;
    else
      fail_msg("answer %ld", st);
  }
  print_message("rate limit: %u stored, %u answered 429\n", ok, limited);
  assert_true(ok >= 4 && ok <= 6);
  assert_true(limited >= 4);
  g_usleep(1500 * 1000);

  /* --domain: a report for another domain is 403 and quarantined. */
  g_autofree char *json = fu_report_json("Other Org", "other-1", "elsewhere.example");
  char *t = NULL;
  assert_int_equal(post_str(s.url, "application/tlsrpt+json", json, &t), 403);
  assert_non_null(strstr(t, "not for our domains"));
  g_free(t);
  g_autofree char *sub = fu_report_json("Sub Org", "sub-1", "mail.example.com");
  assert_int_equal(post_str(s.url, "application/tlsrpt+json", sub, NULL), 201);
  assert_int_equal(serve_stop(&s), 0);
  g_autofree char *q = g_build_filename(s.store, "quarantine", NULL);
  assert_int_equal(fu_count_in_dir(q, ".eml"), 1);
  serve_clear(&s, TRUE);
}

static void
test_chunked_over_the_cap(void **state)
{
  const char *extra[] = { "--max-report-size", "100K", NULL };
  Serve s;
  serve_start(&s, extra);
  /* NUL-terminated: with POSTFIELDSIZE -1 (chunked) libcurl takes strlen() of it. */
  g_autofree char *big = g_malloc0(3 * 1024 * 1024 + 1);
  memset(big, ' ', 3 * 1024 * 1024);
  big[0] = '{';
  g_autoptr(GBytes) b = g_bytes_new(big, 3 * 1024 * 1024 + 1); /* the NUL too: g_bytes_new() copies */
  Post p = { 0 };
  post_setup(&p, s.url, "application/tlsrpt+json", b);
  p.headers = curl_slist_append(p.headers, "Transfer-Encoding: chunked");
  curl_easy_setopt(p.easy, CURLOPT_HTTPHEADER, p.headers);
  curl_easy_setopt(p.easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) -1);
  assert_int_equal(curl_easy_perform(p.easy), CURLE_OK);
  curl_easy_getinfo(p.easy, CURLINFO_RESPONSE_CODE, &p.status);
  assert_int_equal(p.status, 413);
  post_clear(&p);
  g_autoptr(GBytes) r = report_n(9);
  assert_int_equal(post(s.url, "application/tlsrpt+json", r, NULL), 201);
  assert_int_equal(serve_stop(&s), 0);
  serve_clear(&s, TRUE);
}

/* ---- HTTPS, SIGHUP, socket activation ------------------------------------------ */

static void
make_cert(const char *dir, const char *name, const char *cn)
{
  g_autofree char *cert = g_strdup_printf("%s/%s.crt", dir, name);
  g_autofree char *key = g_strdup_printf("%s/%s.key", dir, name);
  g_autofree char *subj = g_strdup_printf("/CN=%s", cn);
  const char *argv[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                         "-keyout", key, "-out", cert, "-days", "2", "-subj", subj,
                         "-addext", "subjectAltName=IP:127.0.0.1", NULL };
  int status = 0;
  g_autoptr(GError) error = NULL;
  if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH |
                    G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                    NULL, NULL, NULL, NULL, &status, &error) || status != 0)
    fail_msg("openssl req failed: %s", error ? error->message : "exit status");
}

/* curl (the command) POSTing @file over HTTPS, trusting @cacert: the status, or 0. */
static long
curl_cmd(const char *url, const char *cacert, const char *file, char **out)
{
  g_autofree char *data = g_strdup_printf("@%s", file);
  const char *argv[] = { "curl", "-sS", "--cacert", cacert, "-H",
                         "Content-Type: application/tlsrpt+json", "--data-binary", data,
                         "-w", "\n%{http_code}", url, NULL };
  g_autofree char *sout = NULL;
  int status = 0;
  if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH |
                    G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &sout, NULL, &status, NULL))
    return 0;
  const char *nl = strrchr(sout, '\n');
  long code = nl != NULL ? atol(nl + 1) : 0;
  if (out != NULL)
    *out = g_strdup(sout);
  return code;
}

static void
test_https_and_sighup(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  make_cert(tmp, "one", "first");
  make_cert(tmp, "two", "second");
  g_autofree char *cert = g_build_filename(tmp, "live.crt", NULL);
  g_autofree char *key = g_build_filename(tmp, "live.key", NULL);
  g_autofree char *one_crt = g_build_filename(tmp, "one.crt", NULL);
  g_autofree char *one_key = g_build_filename(tmp, "one.key", NULL);
  g_autofree char *two_crt = g_build_filename(tmp, "two.crt", NULL);
  g_autofree char *two_key = g_build_filename(tmp, "two.key", NULL);
  g_autofree char *pem = NULL;
  g_file_get_contents(one_crt, &pem, NULL, NULL);
  g_file_set_contents(cert, pem, -1, NULL);
  g_clear_pointer(&pem, g_free);
  g_file_get_contents(one_key, &pem, NULL, NULL);
  g_file_set_contents(key, pem, -1, NULL);
  g_clear_pointer(&pem, g_free);

  const char *extra[] = { "--tls-cert", cert, "--tls-key", key, NULL };
  Serve s;
  serve_start_in(&s, tmp, extra);
  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%u/v1/tlsrpt", s.port);
  g_autofree char *body = g_build_filename(tmp, "r.json", NULL);
  g_autofree char *json = fu_report_json("TLS Org", "tls-1", "example.com");
  g_file_set_contents(body, json, -1, NULL);
  g_autofree char *out = NULL;
  assert_int_equal(curl_cmd(url, one_crt, body, &out), 201);
  assert_true(g_str_has_prefix(out, "stored "));
  /* Not trusted: the second certificate is not served yet. */
  assert_int_equal(curl_cmd(url, two_crt, body, NULL), 0);

  /* Replace the files, SIGHUP: new connections get the new certificate. */
  g_file_get_contents(two_crt, &pem, NULL, NULL);
  g_file_set_contents(cert, pem, -1, NULL);
  g_clear_pointer(&pem, g_free);
  g_file_get_contents(two_key, &pem, NULL, NULL);
  g_file_set_contents(key, pem, -1, NULL);
  g_clear_pointer(&pem, g_free);
  kill(s.pid, SIGHUP);
  long st = 0;
  for (int i = 0; i < 50 && st != 200; i++) {
    g_usleep(100 * 1000);
    st = curl_cmd(url, two_crt, body, NULL);
  }
  assert_int_equal(st, 200);   /* the duplicate, over the new certificate */
  assert_int_equal(curl_cmd(url, one_crt, body, NULL), 0);
  /* A broken key on SIGHUP: logged, the current certificate stays. */
  g_file_set_contents(key, "not a key\n", -1, NULL);
  kill(s.pid, SIGHUP);
  g_usleep(300 * 1000);
  assert_int_equal(curl_cmd(url, two_crt, body, NULL), 200);
  assert_int_equal(serve_stop(&s), 0);
  g_autofree char *log = tu_read_file(s.log, NULL);
  assert_non_null(strstr(log, "listening on 127.0.0.1:"));
  assert_non_null(strstr(log, "(https)"));
  assert_non_null(strstr(log, "SIGHUP: certificate and key read again"));
  assert_non_null(strstr(log, "the previous certificate stays"));
  g_autofree char *csv = tu_read_file(s.csv, NULL);
  assert_non_null(strstr(csv, "https:127.0.0.1"));
  serve_clear(&s, TRUE);
}

static void
test_socket_activation(void **state)
{
  g_autofree char *tmp = tu_mkdtemp();
  g_autofree char *store = g_build_filename(tmp, "store", NULL);
  g_autofree char *log = g_build_filename(tmp, "log", NULL);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(ls, (struct sockaddr *) &a, sizeof a), 0);
  assert_int_equal(listen(ls, 16), 0);
  socklen_t al = sizeof a;
  getsockname(ls, (struct sockaddr *) &a, &al);
  guint port = ntohs(a.sin_port);
  const char *bin = g_getenv("TLSRPT_BIN");
  pid_t pid = fork();
  if (pid == 0) {
    int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(lf, 2);
    if (ls != 3) {
      dup2(ls, 3);
      close(ls);
    }
    char pidbuf[32];
    g_snprintf(pidbuf, sizeof pidbuf, "%d", (int) getpid());
    setenv("LISTEN_PID", pidbuf, 1);
    setenv("LISTEN_FDS", "1", 1);
    execl(bin, bin, "serve", "--store", store, "-v", (char *) NULL);
    _exit(127);
  }
  close(ls);
  g_autofree char *url = g_strdup_printf("http://127.0.0.1:%u/v1/tlsrpt", port);
  g_autoptr(GBytes) r = report_n(77);
  /* The socket already listens: no need to wait for the server to start. */
  assert_int_equal(post(url, "application/tlsrpt+json", r, NULL), 201);
  kill(pid, SIGTERM);
  assert_int_equal(fu_wait(pid), 0);
  g_autofree char *text = tu_read_file(log, NULL);
  g_autofree char *want = g_strdup_printf("listening on 127.0.0.1:%u", port);
  assert_non_null(strstr(text, want));
  assert_int_equal(fu_check_index(store), 1);
  tu_rmtree(tmp);
}


/* ---- behind nginx: contrib/nginx/tlsrpt-ingest.conf ---------------------------- */

static char *
replace_all(const char *text, const char *from, const char *to)
{
  g_auto(GStrv) parts = g_strsplit(text, from, -1);
  return g_strjoinv(to, parts);
}

static void
test_behind_nginx(void **state)
{
  g_autofree char *nginx = g_find_program_in_path("nginx");
  if (nginx == NULL)
    nginx = g_file_test("/usr/sbin/nginx", G_FILE_TEST_IS_EXECUTABLE) ? g_strdup("/usr/sbin/nginx")
                                                                      : NULL;
  if (nginx == NULL) {
    print_message("no nginx here: skipped\n");
    skip();
  }
  g_autofree char *tmp = tu_mkdtemp();
  make_cert(tmp, "site", "reports.example.com");
  Serve s;
  serve_start_in(&s, tmp, NULL);
  g_autofree char *example_path = g_build_filename(g_getenv("TLSRPT_SOURCE_DIR"), "contrib",
                                                   "nginx", "tlsrpt-ingest.conf", NULL);
  g_autofree char *example = tu_read_file(example_path, NULL);
  assert_non_null(example);
  guint port = (guint) tu_free_port(FALSE);
  g_autofree char *listen = g_strdup_printf("listen 127.0.0.1:%u ssl http2;", port);
  g_autofree char *upstream = g_strdup_printf("server 127.0.0.1:%u;", s.port);
  g_autofree char *crt = g_build_filename(tmp, "site.crt", NULL);
  g_autofree char *key = g_build_filename(tmp, "site.key", NULL);
  g_autofree char *c1 = replace_all(example, "listen 443 ssl http2;", listen);
  g_autofree char *c2 = replace_all(c1, "listen [::]:443 ssl http2;", "");
  g_autofree char *c3 = replace_all(c2, "server 127.0.0.1:8080;", upstream);
  g_autofree char *c4 =
      replace_all(c3, "/etc/letsencrypt/live/reports.example.com/fullchain.pem", crt);
  g_autofree char *c5 =
      replace_all(c4, "/etc/letsencrypt/live/reports.example.com/privkey.pem", key);
  g_autofree char *site = g_build_filename(tmp, "site.conf", NULL);
  g_file_set_contents(site, c5, -1, NULL);
  g_autofree char *main_conf = g_strdup_printf(
      "daemon off;\npid %s/nginx.pid;\nerror_log %s/nginx-error.log;\nevents {}\n"
      "http { access_log off; client_body_temp_path %s/body; proxy_temp_path %s/proxy;\n"
      "include %s; }\n", tmp, tmp, tmp, tmp, site);
  g_autofree char *conf = g_build_filename(tmp, "nginx.conf", NULL);
  g_file_set_contents(conf, main_conf, -1, NULL);
  const char *argv[] = { nginx, "-c", conf, "-p", tmp, NULL };
  GPid npid = 0;
  g_autoptr(GError) error = NULL;
  assert_true(g_spawn_async(NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
                            G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &npid, &error));
  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%u/v1/tlsrpt", port);
  g_autofree char *body = g_build_filename(tmp, "r.json", NULL);
  g_autofree char *json = fu_report_json("Proxied Org", "via-nginx-1", "example.com");
  g_file_set_contents(body, json, -1, NULL);
  assert_true(tu_wait_port((int) port, TRUE, 5000));
  assert_int_equal(curl_cmd(url, crt, body, NULL), 201);
  assert_int_equal(curl_cmd(url, crt, body, NULL), 200);
  kill(npid, SIGTERM);
  waitpid(npid, NULL, 0);
  assert_int_equal(serve_stop(&s), 0);
  /* The sender's transport as nginx told it (https), not the proxy's plain HTTP. */
  g_autofree char *csv = tu_read_file(s.csv, NULL);
  assert_non_null(strstr(csv, ",https:127.0.0.1"));
  serve_clear(&s, TRUE);
}

/* ---- the fuzz seed corpus as bodies ----------------------------------------------- */

static void
post_tree(const char *url, const char *dir, guint *n)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
      post_tree(url, path, n);
      continue;
    }
    g_autofree char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &data, &len, NULL) || len == 0)
      continue;
    g_autoptr(GBytes) b = g_bytes_new(data, len);
    const char *ct = (*n % 2) ? "application/tlsrpt+gzip" : "application/tlsrpt+json";
    long st = post(url, ct, b, NULL);
    if (st != 200 && st != 201 && st != 400 && st != 413)
      fail_msg("%s answered %ld", path, st);
    (*n)++;
  }
}

static void
test_fixtures_as_bodies(void **state)
{
  const char *extra[] = { "--rate-limit", "0", NULL };
  Serve s;
  serve_start(&s, extra);
  const char *root = g_getenv("TLSRPT_FIXTURES");
  assert_non_null(root);
  guint n = 0;
  for (const char *const *sub = (const char *const[]) { "corpus", "synthetic", "hostile",
                                                         NULL };
       *sub != NULL; sub++) {
    g_autofree char *dir = g_build_filename(root, *sub, NULL);
    post_tree(s.url, dir, &n);
  }
  print_message("%u fixture files POSTed as bodies\n", n);
  assert_true(n > 50);
  g_autofree char *health = g_strdup_printf("http://127.0.0.1:%u/healthz", s.port);
  assert_int_equal(request(health, "GET", NULL), 200);
  assert_int_equal(serve_stop(&s), 0);
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
    cmocka_unit_test(test_chunked_over_the_cap),
    cmocka_unit_test(test_limits),
    cmocka_unit_test(test_slowloris),
    cmocka_unit_test(test_https_and_sighup),
    cmocka_unit_test(test_socket_activation),
    cmocka_unit_test(test_behind_nginx),
    cmocka_unit_test(test_fixtures_as_bodies),
    cmocka_unit_test(test_kill_under_load),
    cmocka_unit_test(test_disk_full),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
