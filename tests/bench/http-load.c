/* http-load.c - load client for `tlsrpt-ingest serve` (tests/bench/run.sh): C keep-alive
 * connections (libcurl multi) POST N distinct gzip'd reports, each a report of the
 * benchmark corpus's shape with its own report-id, one request in flight per connection.
 * The bodies are made before the clock starts, and the connections are driven through
 * curl_multi_socket_action() on epoll: curl_multi_perform() visits every connection at
 * each wake-up, which cost the client about as much CPU as the server it measured, on
 * the same two cores.
 * Prints one line of key=value figures: requests, answers by class, wall time,
 * requests/s, latency percentiles, and the server's peak and current RSS and CPU time
 * (from /proc/PID, when --pid is given).
 *
 *   http-load --url URL [--connections 64] [--requests 20000] [--first 0] [--pid PID]
 *
 * Exit status: 0 when every request was answered 200 or 201. */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <zlib.h>

typedef struct {
  CURL *easy;
  struct curl_slist *headers;
  unsigned char *body;
  size_t body_len;
  double started;
} Slot;

static double
now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t
discard(char *p, size_t s, size_t n, void *u)
{
  (void) p;
  (void) u;
  return s * n;
}

/* gzip of one report with report-id bench-http-N (distinct for every N). */
static unsigned char *
make_body(unsigned long n, size_t *len)
{
  char json[2048];
  int jl = snprintf(json, sizeof json,
      "{\"organization-name\":\"Bench Sender %lu\",\"date-range\":{\"start-datetime\":"
      "\"2026-11-%02luT00:00:00Z\",\"end-datetime\":\"2026-11-%02luT23:59:59Z\"},"
      "\"contact-info\":\"smtp-tls-reporting@sender%lu.example\",\"report-id\":"
      "\"bench-http-%lu\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
      "\"policy-string\":[\"version: STSv1\",\"mode: enforce\",\"max_age: 86400\","
      "\"mx: mx%lu.example.net\"],\"policy-domain\":\"domain%lu.example\",\"mx-host\":"
      "[\"mx%lu.example.net\"]},\"summary\":{\"total-successful-session-count\":%lu,"
      "\"total-failure-session-count\":%lu},\"failure-details\":[{\"result-type\":"
      "\"certificate-expired\",\"sending-mta-ip\":\"192.0.2.%lu\",\"receiving-mx-hostname\":"
      "\"mx%lu.example.net\",\"failed-session-count\":%lu}]}]}",
      n % 17, n % 28 + 1, n % 28 + 1, n % 17, n, n % 50, n % 50, n % 50, 100 + n % 900,
      n % 7 + 1, n % 250 + 1, n % 50, n % 7 + 1);
  z_stream z;
  memset(&z, 0, sizeof z);
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  size_t cap = deflateBound(&z, (uLong) jl) + 32;
  unsigned char *out = malloc(cap);
  z.next_in = (Bytef *) json;
  z.avail_in = (uInt) jl;
  z.next_out = out;
  z.avail_out = (uInt) cap;
  deflate(&z, Z_FINISH);
  *len = cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

/* libcurl's socket and timer callbacks: the sockets it wants watched go into the epoll
 * set, and its one timeout is kept for epoll_wait(). */
static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  (void) easy;
  (void) socketp;
  int ep = *(int *) userp;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    return 0;
  }
  struct epoll_event ev = { 0 };
  ev.data.fd = fd;
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0)
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  return 0;
}

static long timeout_ms = -1;

static int
on_timer(CURLM *multi, long ms, void *userp)
{
  (void) multi;
  (void) userp;
  timeout_ms = ms;
  return 0;
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static long
proc_status_kb(int pid, const char *key)
{
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':')
      v = atol(line + strlen(key) + 1);
  fclose(f);
  return v;
}

static double
proc_cpu_s(int pid)
{
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (p == NULL)
    return -1;
  unsigned long utime = 0, stime = 0;
  /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
   * utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
    return -1;
  return (double) (utime + stime) / (double) sysconf(_SC_CLK_TCK);
}

int
main(int argc, char **argv)
{
  const char *url = NULL;
  long conns = 64, requests = 20000, first = 0;
  int pid = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--url") == 0)
      url = argv[i + 1];
    else if (strcmp(argv[i], "--connections") == 0)
      conns = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--requests") == 0)
      requests = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--first") == 0)
      first = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--pid") == 0)
      pid = atoi(argv[i + 1]);
  }
  if (url == NULL || conns < 1 || requests < 1) {
    fprintf(stderr, "usage: http-load --url URL [--connections N] [--requests N] "
                    "[--first N] [--pid PID]\n");
    return 2;
  }
  if (conns > requests)
    conns = requests;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &ep);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
  Slot *slots = calloc((size_t) conns, sizeof *slots);
  double *lat = malloc(sizeof(double) * (size_t) requests);
  unsigned char **bodies = malloc(sizeof(unsigned char *) * (size_t) requests);
  size_t *body_lens = malloc(sizeof(size_t) * (size_t) requests);
  for (long i = 0; i < requests; i++)
    bodies[i] = make_body((unsigned long) (first + i), &body_lens[i]);
  long issued = 0, done = 0, created = 0, dup = 0, other = 0, failed = 0;
  size_t bytes = 0;

  for (long i = 0; i < conns; i++) {
    Slot *s = &slots[i];
    s->easy = curl_easy_init();
    s->headers = curl_slist_append(NULL, "Content-Type: application/tlsrpt+gzip");
    s->headers = curl_slist_append(s->headers, "Expect:");
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  double t0 = now();
  for (long i = 0; i < conns; i++) {
    Slot *s = &slots[i];
    s->body = bodies[issued];
    s->body_len = body_lens[issued++];
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long) s->body_len);
    s->started = now();
    curl_multi_add_handle(multi, s->easy);
  }
  int running = 1;
  curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  struct epoll_event evs[64];
  while (done < requests) {
    int n = epoll_wait(ep, evs, 64, timeout_ms < 0 ? 100 : (int) timeout_ms);
    if (n <= 0) {
      curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    } else {
      for (int k = 0; k < n; k++) {
        int mask = (evs[k].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                   (evs[k].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                   (evs[k].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(multi, evs[k].data.fd, mask, &running);
      }
    }
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left)) != NULL) {
      if (m->msg != CURLMSG_DONE)
        continue;
      Slot *s = NULL;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &s);
      long status = 0;
      if (m->data.result == CURLE_OK)
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      else
        failed++;
      if (status == 201)
        created++;
      else if (status == 200)
        dup++;
      else if (m->data.result == CURLE_OK)
        other++;
      lat[done++] = now() - s->started;
      bytes += s->body_len;
      curl_multi_remove_handle(multi, s->easy);
      s->body = NULL;
      if (issued < requests) {
        s->body = bodies[issued];
        s->body_len = body_lens[issued++];
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long) s->body_len);
        s->started = now();
        curl_multi_add_handle(multi, s->easy);
      }
    }
  }
  double wall = now() - t0;
  qsort(lat, (size_t) done, sizeof *lat, cmp_double);
  double p50 = lat[done / 2], p99 = lat[(size_t) ((double) done * 0.99)],
         max = lat[done - 1];
  printf("requests=%ld created=%ld duplicates=%ld other=%ld failed=%ld wall=%.3f rps=%.0f "
         "mbps=%.2f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f",
         done, created, dup, other, failed, wall, done / wall, bytes / 1e6 / wall,
         p50 * 1e3, p99 * 1e3, max * 1e3);
  if (pid > 0)
    printf(" server_hwm_kb=%ld server_rss_kb=%ld server_cpu_s=%.3f",
           proc_status_kb(pid, "VmHWM"), proc_status_kb(pid, "VmRSS"), proc_cpu_s(pid));
  printf("\n");
  for (long i = 0; i < conns; i++) {
    curl_slist_free_all(slots[i].headers);
    curl_easy_cleanup(slots[i].easy);
  }
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  close(ep);
  for (long i = 0; i < requests; i++)
    free(bodies[i]);
  free(bodies);
  free(body_lens);
  free(slots);
  free(lat);
  return created + dup == requests ? 0 : 1;
}
