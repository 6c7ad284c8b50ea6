/* floor-decode.c - lower bounds for the benchmark: the work any ingester must do.
 *
 *   floor-decode [--read-only] maildir DIR...
 *   floor-decode [--read-only] mbox FILE...
 *
 * --read-only reads every message (each file of DIR/new and DIR/cur, or the mbox
 * file) into one reused buffer and does nothing else: "reading the files only".
 *
 * Otherwise each message is also decoded in the simplest way that works on the
 * benchmark corpus: find the first "application/tlsrpt" part, skip its headers,
 * decode the base64 body up to the next boundary line, and inflate it (gzip) into a
 * reused buffer. No MIME parser, no JSON, no output: "the decode lower bound".
 *
 * Prints one line: messages=N bytes=B reports=R inflated=I errors=E. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static int read_only;
static unsigned long long n_messages, n_bytes, n_reports, n_inflated, n_errors;

static unsigned char *rbuf, *dbuf, *ibuf;
static size_t rcap, dcap, icap;
static z_stream zs;
static signed char b64val[256];

static void *
grow(void *p, size_t *cap, size_t need)
{
  if (need <= *cap)
    return p;
  size_t c = *cap ? *cap : 65536;
  while (c < need)
    c *= 2;
  p = realloc(p, c);
  if (p == NULL) {
    fputs("floor-decode: out of memory\n", stderr);
    exit(1);
  }
  *cap = c;
  return p;
}

/* Base64 of [p, end) up to a line starting with "--" into dbuf; returns length. */
static size_t
b64_decode(const unsigned char *p, const unsigned char *end)
{
  dbuf = grow(dbuf, &dcap, (size_t) (end - p) / 4 * 3 + 4);
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  int bol = 1;
  for (; p < end; p++) {
    unsigned char c = *p;
    if (bol && c == '-' && p + 1 < end && p[1] == '-')
      break;
    bol = c == '\n';
    signed char v = b64val[c];
    if (v < 0)
      continue;
    acc = acc << 6 | (uint32_t) v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      dbuf[o++] = (unsigned char) (acc >> bits);
    }
  }
  return o;
}

static void
decode_message(const unsigned char *m, size_t n)
{
  const unsigned char *end = m + n;
  const unsigned char *p = memmem(m, n, "application/tlsrpt", 18);
  if (p == NULL)
    return;
  /* end of the part's headers: an empty line */
  const unsigned char *q = p;
  for (;;) {
    q = memchr(q, '\n', (size_t) (end - q));
    if (q == NULL)
      return;
    q++;
    if (q < end && *q == '\n') {
      q++;
      break;
    }
    if (q + 1 < end && q[0] == '\r' && q[1] == '\n') {
      q += 2;
      break;
    }
  }
  size_t dn = b64_decode(q, end);
  n_reports++;
  if (inflateReset2(&zs, 15 + 16) != Z_OK) {
    n_errors++;
    return;
  }
  zs.next_in = dbuf;
  zs.avail_in = (uInt) dn;
  size_t total = 0;
  for (;;) {
    ibuf = grow(ibuf, &icap, total + 65536);
    zs.next_out = ibuf + total;
    zs.avail_out = (uInt) (icap - total);
    int rc = inflate(&zs, Z_NO_FLUSH);
    total = icap - zs.avail_out;
    if (rc == Z_STREAM_END)
      break;
    if (rc != Z_OK || (zs.avail_in == 0 && zs.avail_out != 0)) {
      n_errors++;
      break;
    }
  }
  n_inflated += total;
}

static void
message(const unsigned char *m, size_t n)
{
  n_messages++;
  n_bytes += n;
  if (!read_only)
    decode_message(m, n);
}

static void
read_fd(int fd, const char *name, size_t *len)
{
  struct stat st;
  if (fstat(fd, &st) != 0) {
    fprintf(stderr, "floor-decode: %s: %s\n", name, strerror(errno));
    exit(1);
  }
  rbuf = grow(rbuf, &rcap, (size_t) st.st_size + 1);
  size_t got = 0;
  for (;;) {
    if (got == rcap)
      rbuf = grow(rbuf, &rcap, rcap * 2);
    ssize_t r = read(fd, rbuf + got, rcap - got);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "floor-decode: %s: %s\n", name, strerror(errno));
      exit(1);
    }
    if (r == 0)
      break;
    got += (size_t) r;
  }
  *len = got;
}

static void
do_maildir(const char *dir)
{
  static const char *const sub[] = { "new", "cur" };
  for (int k = 0; k < 2; k++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub[k]);
    int dfd = open(path, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) {
      fprintf(stderr, "floor-decode: %s: %s\n", path, strerror(errno));
      exit(1);
    }
    DIR *d = fdopendir(dfd);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      int fd = openat(dfd, e->d_name, O_RDONLY);
      if (fd < 0) {
        fprintf(stderr, "floor-decode: %s: %s\n", e->d_name, strerror(errno));
        exit(1);
      }
      size_t n;
      read_fd(fd, e->d_name, &n);
      close(fd);
      message(rbuf, n);
    }
    closedir(d);
  }
}

static void
do_mbox(const char *file)
{
  int fd = open(file, O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "floor-decode: %s: %s\n", file, strerror(errno));
    exit(1);
  }
  size_t n;
  read_fd(fd, file, &n);
  close(fd);
  /* messages start at "From " at the beginning of a line */
  const unsigned char *p = rbuf, *end = rbuf + n;
  while (p < end) {
    const unsigned char *next = p + 1;
    for (;;) {
      next = memmem(next, (size_t) (end - next), "\nFrom ", 6);
      if (next == NULL) {
        next = end;
        break;
      }
      next++;
      break;
    }
    message(p, (size_t) (next - p));
    p = next;
  }
}

int
main(int argc, char **argv)
{
  int i = 1;
  if (i < argc && strcmp(argv[i], "--read-only") == 0) {
    read_only = 1;
    i++;
  }
  if (argc - i < 2 || (strcmp(argv[i], "maildir") != 0 && strcmp(argv[i], "mbox") != 0)) {
    fputs("usage: floor-decode [--read-only] maildir DIR... | mbox FILE...\n", stderr);
    return 2;
  }
  memset(b64val, -1, sizeof b64val);
  const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int k = 0; k < 64; k++)
    b64val[(unsigned char) alpha[k]] = (signed char) k;
  if (inflateInit2(&zs, 15 + 16) != Z_OK)
    return 1;
  int mbox = strcmp(argv[i], "mbox") == 0;
  for (i++; i < argc; i++) {
    if (mbox)
      do_mbox(argv[i]);
    else
      do_maildir(argv[i]);
  }
  inflateEnd(&zs);
  printf("messages=%llu bytes=%llu reports=%llu inflated=%llu errors=%llu\n", n_messages,
         n_bytes, n_reports, n_inflated, n_errors);
  return 0;
}
