/* gen-corpus.c - deterministic corpus of SMTP TLS report messages (RFC 8460) for the
 * benchmark.
 *
 *   gen-corpus --format maildir|mbox|report --count N --out PATH
 *              [--seed S] [--large K] [--details N] [--jobs J]
 *
 * maildir  PATH/{new,cur,tmp}/, one message per file (80 % in new/, 20 % in cur/ with
 *          the S flag), names derived from the message number only;
 * mbox     one file PATH, From_ lines, mboxrd escaping of body lines starting "From ";
 * report   a directory PATH of bare reports named sender!domain!begin!end!id.json.gz
 *          (non-report and broken messages are left out).
 *
 * Messages imitate what Google, Microsoft, Yahoo, Mail.ru and self-hosted
 * (Stalwart-style) reporters send: multipart/report with a text part and a base64
 * application/tlsrpt+gzip part (76-character lines, gzip mtime 0), 1-3 policies and
 * 0-8 failure details per policy, and the quirks the ingester must tolerate
 * (zone-less datetimes, a JSON-encoded TLSA policy-string, "mx: " prefixes, null
 * contact-info, a missing closing boundary, CRLF and LF line ends). Messages whose
 * number i has i % 100 == 37 or 71 are plain mails that hold no report (2 %); those
 * with i % 100 == 53 are broken reports, a truncated gzip or invalid JSON (1 %).
 *
 * --large K adds K reports of --details N failure details each (default 200000).
 * --jobs J writes a Maildir with J processes (default: the number of CPUs, at most 8);
 * the files are the same for any J.
 *
 * Every message is generated from its own PRNG stream (seed, message number), so the
 * output depends only on the arguments: the same arguments give byte-identical files,
 * and the maildir and mbox corpora of one seed hold the same reports.
 *
 * On success one line of statistics goes to standard output:
 *   messages=.. reports=.. nonreports=.. broken=.. bytes=.. json_bytes=.. rows=..
 * where rows is the number of CSV rows the valid reports make (one per policy plus one
 * per failure detail) and json_bytes the inflated size of the valid reports. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* ---------------------------------------------------------------- PRNG */

typedef struct {
  uint64_t s;
} Rng;

static uint64_t
splitmix64(uint64_t *x)
{
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void
rng_init(Rng *r, uint64_t seed, uint64_t stream)
{
  uint64_t x = seed * 0x2545F4914F6CDD1Dull + stream;
  r->s = splitmix64(&x);
  if (r->s == 0)
    r->s = 1;
}

/* xorshift64* */
static uint64_t
rng_next(Rng *r)
{
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1Dull;
}

static uint32_t
rng_below(Rng *r, uint32_t n)
{
  return (uint32_t) (((rng_next(r) >> 32) * (uint64_t) n) >> 32);
}

static int
rng_percent(Rng *r, unsigned p)
{
  return rng_below(r, 100) < p;
}

/* ---------------------------------------------------------------- buffers */

typedef struct {
  char *p;
  size_t len, cap;
} Buf;

static void
die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("gen-corpus: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void
buf_grow(Buf *b, size_t more)
{
  if (b->len + more + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more + 1)
    cap *= 2;
  b->p = realloc(b->p, cap);
  if (b->p == NULL)
    die("out of memory");
  b->cap = cap;
}

static void
buf_add(Buf *b, const void *s, size_t n)
{
  buf_grow(b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void
buf_puts(Buf *b, const char *s)
{
  buf_add(b, s, strlen(s));
}

static void
buf_putc(Buf *b, char c)
{
  buf_grow(b, 1);
  b->p[b->len++] = c;
  b->p[b->len] = '\0';
}

static void
buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
buf_printf(Buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    die("vsnprintf failed");
  if (b->p == NULL || (size_t) n >= b->cap - b->len) {
    buf_grow(b, (size_t) n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t) n;
}

/* Unsigned decimal, faster than printf in the failure-detail loop. */
static void
buf_putu(Buf *b, uint64_t v)
{
  char tmp[24];
  int i = 24;
  do {
    tmp[--i] = (char) ('0' + v % 10);
    v /= 10;
  } while (v);
  buf_add(b, tmp + i, (size_t) (24 - i));
}

static const char b64chars[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Random base64-looking text of n characters (signatures, opaque header values). */
static void
buf_randb64(Buf *b, Rng *r, size_t n)
{
  buf_grow(b, n);
  for (size_t i = 0; i < n; i++) {
    if (i % 10 == 0) {
      uint64_t v = rng_next(r);
      for (size_t j = 0; j < 10 && i + j < n; j++)
        b->p[b->len + i + j] = b64chars[(v >> (6 * j)) & 63];
    }
  }
  b->len += n;
  b->p[b->len] = '\0';
}

static void
buf_randhex(Buf *b, Rng *r, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  buf_grow(b, n);
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (i % 16 == 0)
      v = rng_next(r);
    b->p[b->len + i] = hex[(v >> (4 * (i % 16))) & 15];
  }
  b->len += n;
  b->p[b->len] = '\0';
}

static void
buf_uuid(Buf *b, Rng *r)
{
  buf_randhex(b, r, 8);
  buf_putc(b, '-');
  buf_randhex(b, r, 4);
  buf_putc(b, '-');
  buf_randhex(b, r, 4);
  buf_putc(b, '-');
  buf_randhex(b, r, 4);
  buf_putc(b, '-');
  buf_randhex(b, r, 12);
}

/* Base64 with lines of 76 characters, each ended by eol. */
static void
buf_base64(Buf *b, const unsigned char *in, size_t n, const char *eol)
{
  size_t eol_len = strlen(eol);
  size_t out = (n + 2) / 3 * 4;
  buf_grow(b, out + (out / 76 + 1) * eol_len);
  char *o = b->p + b->len;
  size_t col = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t) in[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t) in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    *o++ = b64chars[(v >> 18) & 63];
    *o++ = b64chars[(v >> 12) & 63];
    *o++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
    *o++ = i + 2 < n ? b64chars[v & 63] : '=';
    col += 4;
    if (col == 76) {
      memcpy(o, eol, eol_len);
      o += eol_len;
      col = 0;
    }
  }
  if (col) {
    memcpy(o, eol, eol_len);
    o += eol_len;
  }
  b->len = (size_t) (o - b->p);
  b->p[b->len] = '\0';
}

/* ---------------------------------------------------------------- gzip */

static z_stream zs_default, zs_fast;

/* gzip member of in[0..n) with mtime 0; fname may be NULL. xfl 4 (what Microsoft
 * writes) means the fastest level, 0 the default level. */
static void
gzip_into(Buf *out, const char *in, size_t n, int xfl, const char *fname)
{
  unsigned char hdr[10] = { 0x1f, 0x8b, 8, fname ? 8 : 0, 0, 0, 0, 0, (unsigned char) xfl,
                            fname ? 3 : 0 };
  out->len = 0;
  buf_add(out, hdr, sizeof hdr);
  if (fname)
    buf_add(out, fname, strlen(fname) + 1);
  z_stream *zs = xfl == 4 ? &zs_fast : &zs_default;
  if (deflateReset(zs) != Z_OK)
    die("deflateReset failed");
  size_t bound = deflateBound(zs, (uLong) n);
  buf_grow(out, bound + 8);
  zs->next_in = (Bytef *) in;
  zs->avail_in = (uInt) n;
  zs->next_out = (Bytef *) out->p + out->len;
  zs->avail_out = (uInt) bound;
  if (deflate(zs, Z_FINISH) != Z_STREAM_END)
    die("deflate failed");
  out->len += bound - zs->avail_out;
  uint32_t crc = (uint32_t) crc32(crc32(0, NULL, 0), (const Bytef *) in, (uInt) n);
  unsigned char tr[8] = { (unsigned char) crc, (unsigned char) (crc >> 8),
                          (unsigned char) (crc >> 16), (unsigned char) (crc >> 24),
                          (unsigned char) n, (unsigned char) (n >> 8),
                          (unsigned char) (n >> 16), (unsigned char) (n >> 24) };
  buf_add(out, tr, sizeof tr);
}

/* ---------------------------------------------------------------- vocabulary */

#define NDOMAINS 1000

static const char *const word1[32] = {
  "alder", "amber", "aspen", "birch", "blue", "bright", "cedar", "cobalt",
  "coral", "delta", "ember", "fern", "granite", "harbor", "iron", "juniper",
  "kestrel", "lark", "maple", "north", "oak", "opal", "pine", "quartz",
  "river", "sage", "silver", "stone", "summit", "tidal", "willow", "zephyr" };
static const char *const word2[32] = {
  "bank", "bay", "bikes", "books", "cloud", "clinic", "coffee", "craft",
  "data", "design", "dental", "farm", "foods", "games", "garden", "group",
  "health", "homes", "labs", "law", "legal", "media", "motors", "music",
  "net", "partners", "press", "shop", "solutions", "studio", "travel", "works" };
static const char *const tlds[8] = {
  "com", "net", "org", "de", "fr", "nl", "co.uk", "io" };

static void
domain_name(char *out, size_t n, unsigned d)
{
  snprintf(out, n, "%s%s%s.%s", word1[d % 32], (d / 32) % 3 == 0 ? "-" : "",
           word2[(d / 32) % 32], tlds[(d * 7 + d / 32) % 8]);
}

static const char *const result_types[] = {
  "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
  "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
  "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid" };
/* Cumulative weights out of 100. */
static const unsigned result_weights[] = { 22, 37, 47, 67, 77, 82, 85, 87, 95, 97, 100 };

static const char *const reason_codes[] = {
  "X509_V_ERR_CERT_HAS_EXPIRED", "X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT",
  "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "X509_V_ERR_HOSTNAME_MISMATCH",
  "bad https response code: 404", "bad https response code: 500",
  "connection refused", "STARTTLS not offered", "certificate name mismatch",
  "TLSA record does not match", "dial tcp: i/o timeout" };

/* ---------------------------------------------------------------- reports */

enum { ORG_GOOGLE, ORG_MICROSOFT, ORG_YAHOO, ORG_MAILRU, ORG_SELFHOSTED, NORGS };

typedef struct {
  unsigned idx;           /* message number */
  int org;
  char domain[64];
  char sender[64];        /* google.com, microsoft.com, ... */
  char org_name[64];
  char self_host[64];     /* self-hosted reporter host */
  int64_t begin;          /* epoch seconds, day start */
  int zoneless, end_next_day, pretty, no_mx_prefix;
  char report_id[128];
  char file_id[64];
  unsigned rows;
} Meta;

static void
fmt_date(char *out, size_t n, int64_t t, int zone)
{
  int64_t days = t / 86400, secs = t % 86400;
  /* civil_from_days */
  int64_t z = days + 719468, era = z / 146097;
  unsigned doe = (unsigned) (z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = (int64_t) yoe + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  unsigned d = doy - (153 * mp + 2) / 5 + 1;
  unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  snprintf(out, n, "%04d-%02u-%02uT%02d:%02d:%02d%s", (int) y, m, d, (int) (secs / 3600),
           (int) (secs / 60 % 60), (int) (secs % 60), zone ? "Z" : "");
}

/* RFC 5322 date of t with the given zone offset in hours. */
static void
fmt_mail_date(char *out, size_t n, int64_t t, int off_h)
{
  static const char *const wd[] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };
  static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  int64_t lt = t + off_h * 3600;
  char iso[40];
  fmt_date(iso, sizeof iso, lt, 0);
  int y, m, d, hh, mm, ss;
  sscanf(iso, "%d-%d-%dT%d:%d:%d", &y, &m, &d, &hh, &mm, &ss);
  snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d %c%02d00", wd[(lt / 86400) % 7], d,
           mon[m - 1], y, hh, mm, ss, off_h < 0 ? '-' : '+', off_h < 0 ? -off_h : off_h);
}

/* JSON writer that does compact or pretty (indent 3 or 4) output. */
typedef struct {
  Buf *b;
  int indent;             /* 0: compact */
  int depth;
  int first;
} Json;

static void
j_nl(Json *j)
{
  if (!j->indent)
    return;
  buf_putc(j->b, '\n');
  for (int i = 0; i < j->depth * j->indent; i++)
    buf_putc(j->b, ' ');
}

static void
j_sep(Json *j)
{
  if (!j->first)
    buf_putc(j->b, ',');
  j->first = 0;
  j_nl(j);
}

static void
j_open(Json *j, char c)
{
  buf_putc(j->b, c);
  j->depth++;
  j->first = 1;
}

static void
j_close(Json *j, char c)
{
  j->depth--;
  if (!j->first)
    j_nl(j);
  buf_putc(j->b, c);
  j->first = 0;
}

static void
j_key(Json *j, const char *k)
{
  j_sep(j);
  buf_putc(j->b, '"');
  buf_puts(j->b, k);
  buf_puts(j->b, j->indent ? "\": " : "\":");
}

/* A string; escapes quotes, backslashes and \r. */
static void
j_str(Json *j, const char *s)
{
  buf_putc(j->b, '"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') {
      buf_putc(j->b, '\\');
      buf_putc(j->b, *s);
    } else if (*s == '\r') {
      buf_puts(j->b, "\\r");
    } else {
      buf_putc(j->b, *s);
    }
  }
  buf_putc(j->b, '"');
}

static void
j_kstr(Json *j, const char *k, const char *v)
{
  j_key(j, k);
  j_str(j, v);
}

static void
j_kuint(Json *j, const char *k, uint64_t v)
{
  j_key(j, k);
  buf_putu(j->b, v);
}

static void
j_elem_str(Json *j, const char *v)
{
  j_sep(j);
  j_str(j, v);
}

static void
gen_ip(char *out, size_t n, Rng *r, int org)
{
  uint64_t v = rng_next(r);
  switch (org) {
  case ORG_GOOGLE:
    if (v & 1)
      snprintf(out, n, "209.85.%u.%u", (unsigned) (v >> 8) % 256, (unsigned) (v >> 16) % 254 + 1);
    else
      snprintf(out, n, "2a00:1450:4864:20::%x", (unsigned) (v >> 8) % 0xfff + 1);
    break;
  case ORG_MICROSOFT:
    if (v & 1)
      snprintf(out, n, "40.107.%u.%u", (unsigned) (v >> 8) % 256, (unsigned) (v >> 16) % 254 + 1);
    else
      snprintf(out, n, "2a01:111:f403:%x::%x", (unsigned) (v >> 8) % 0xffff,
               (unsigned) (v >> 24) % 0xff + 1);
    break;
  case ORG_YAHOO:
    snprintf(out, n, "98.137.%u.%u", (unsigned) (v >> 8) % 256, (unsigned) (v >> 16) % 254 + 1);
    break;
  case ORG_MAILRU:
    snprintf(out, n, "94.100.%u.%u", (unsigned) (v >> 8) % 256, (unsigned) (v >> 16) % 254 + 1);
    break;
  default:
    snprintf(out, n, "%u.%u.%u.%u", (unsigned) (v >> 8) % 223 + 1, (unsigned) (v >> 16) % 256,
             (unsigned) (v >> 24) % 256, (unsigned) (v >> 32) % 254 + 1);
  }
}

static void
gen_detail(Json *j, Rng *r, const Meta *m, const char *mx, int minimal)
{
  unsigned w = rng_below(r, 100), t = 0;
  while (result_weights[t] <= w)
    t++;
  char ip[48], rip[48];
  j_sep(j);
  j_open(j, '{');
  j_kstr(j, "result-type", result_types[t]);
  if (!minimal) {
    gen_ip(ip, sizeof ip, r, m->org);
    j_kstr(j, "sending-mta-ip", ip);
    j_kstr(j, "receiving-mx-hostname", mx);
    if (rng_percent(r, 30)) {
      j_kstr(j, "receiving-mx-helo", mx);
    }
    snprintf(rip, sizeof rip, "%s.%u", (rng_next(r) & 1) ? "203.0.113" : "198.51.100",
             rng_below(r, 254) + 1);
    j_kstr(j, "receiving-ip", rip);
  }
  j_kuint(j, "failed-session-count", rng_below(r, 40) + 1);
  if (minimal || rng_percent(r, 40))
    j_kstr(j, "failure-reason-code", reason_codes[rng_below(r, 11)]);
  if (!minimal && rng_percent(r, 5)) {
    char url[160];
    snprintf(url, sizeof url, "https://reports.%s/tlsrpt/%s", m->sender, result_types[t]);
    j_kstr(j, "additional-information", url);
  }
  j_close(j, '}');
}

/* The report JSON of message m into out; returns the number of CSV rows. extra_details
 * > 0 makes one large policy with that many failure details. */
static unsigned
gen_report(Buf *out, Rng *r, Meta *m, unsigned extra_details)
{
  Json jj = { out, m->pretty, 0, 1 }, *j = &jj;
  char start[40], end[40];
  unsigned rows = 0;
  out->len = 0;
  fmt_date(start, sizeof start, m->begin, !m->zoneless);
  fmt_date(end, sizeof end, m->end_next_day ? m->begin + 86400 : m->begin + 86399,
           !m->zoneless);

  j_open(j, '{');
  int mailru = m->org == ORG_MAILRU;
  if (mailru) {
    /* Mail.ru sorts its keys */
    j_kstr(j, "contact-info", "tls_support@corp.mail.ru");
  } else {
    j_kstr(j, "organization-name", m->org_name);
  }
  j_key(j, "date-range");
  j_open(j, '{');
  if (mailru) {
    j_kstr(j, "end-datetime", end);
    j_kstr(j, "start-datetime", start);
  } else {
    j_kstr(j, "start-datetime", start);
    j_kstr(j, "end-datetime", end);
  }
  j_close(j, '}');
  if (mailru) {
    j_kstr(j, "organization-name", m->org_name);
  } else if (m->org == ORG_SELFHOSTED) {
    j_key(j, "contact-info");
    buf_puts(out, "null");
  } else {
    const char *ci = m->org == ORG_GOOGLE      ? "smtp-tls-reporting@google.com"
                     : m->org == ORG_MICROSOFT ? "tlsrpt-noreply@microsoft.com"
                                               : "tlsrpt@yahooinc.com";
    j_kstr(j, "contact-info", ci);
    j_kstr(j, "report-id", m->report_id);
  }

  unsigned npol = extra_details ? 1 : 1 + (rng_below(r, 100) >= 50) + (rng_below(r, 100) >= 70);
  j_key(j, "policies");
  j_open(j, '[');
  for (unsigned p = 0; p < npol; p++) {
    /* policy type: Microsoft pairs sts with tlsa, Google reports no-policy-found */
    const char *type;
    unsigned u = rng_below(r, 100);
    if (p == 1 && m->org == ORG_MICROSOFT)
      type = "tlsa";
    else if (u < 70)
      type = "sts";
    else if (u < 85)
      type = "no-policy-found";
    else
      type = "tlsa";
    char mx[96];
    snprintf(mx, sizeof mx, "mx%u.%s", rng_below(r, 3) + 1, m->domain);
    unsigned ndet = 0;
    if (extra_details)
      ndet = extra_details;
    else if (rng_below(r, 100) >= 43)
      ndet = 1 + rng_below(r, 8);
    uint64_t fail = 0;
    Rng rr = *r;
    for (unsigned k = 0; k < ndet; k++)
      fail += rng_below(&rr, 40) + 1;   /* roughly; totals need not add up (§4) */

    j_sep(j);
    j_open(j, '{');
    if (mailru && ndet) {
      j_key(j, "failure-details");
      j_open(j, '[');
      for (unsigned k = 0; k < ndet; k++)
        gen_detail(j, r, m, mx, 1);
      j_close(j, ']');
    }
    j_key(j, "policy");
    j_open(j, '{');
    if (mailru) {
      j_kstr(j, "policy-domain", m->domain);
      j_kstr(j, "policy-type", type);
    } else {
      j_kstr(j, "policy-type", type);
      if (strcmp(type, "sts") == 0) {
        j_key(j, "policy-string");
        j_open(j, '[');
        int cr = m->org == ORG_GOOGLE && rng_percent(r, 5);
        char line[128];
        j_elem_str(j, cr ? "version: STSv1\r" : "version: STSv1");
        j_elem_str(j, rng_percent(r, 80) ? (cr ? "mode: enforce\r" : "mode: enforce")
                                         : (cr ? "mode: testing\r" : "mode: testing"));
        snprintf(line, sizeof line, "mx: %s%s", mx, cr ? "\r" : "");
        j_elem_str(j, line);
        if (rng_percent(r, 40)) {
          snprintf(line, sizeof line, "mx: *.%s%s", m->domain, cr ? "\r" : "");
          j_elem_str(j, line);
        }
        j_elem_str(j, cr ? "max_age: 604800\r" : "max_age: 604800");
        j_close(j, ']');
      } else if (strcmp(type, "tlsa") == 0) {
        j_key(j, "policy-string");
        j_open(j, '[');
        Buf rec = { 0 };
        if (m->org == ORG_MICROSOFT) {
          /* one element that is itself a JSON-encoded array */
          buf_puts(&rec, "[\"3 1 1 ");
          buf_randhex(&rec, r, 64);
          buf_puts(&rec, "\",\"3 1 1 ");
          buf_randhex(&rec, r, 64);
          buf_puts(&rec, "\"]");
          j_elem_str(j, rec.p);
        } else {
          for (int k = 0; k < 2; k++) {
            rec.len = 0;
            buf_puts(&rec, "3 1 1 ");
            buf_randhex(&rec, r, 64);
            j_elem_str(j, rec.p);
          }
        }
        free(rec.p);
        j_close(j, ']');
      }
      if (!(strcmp(type, "no-policy-found") == 0 && m->org == ORG_SELFHOSTED && rng_percent(r, 50)))
        j_kstr(j, "policy-domain", strcmp(type, "tlsa") == 0 && m->org != ORG_MICROSOFT
                                      ? mx : m->domain);
      if (m->org == ORG_GOOGLE || m->org == ORG_YAHOO || m->org == ORG_SELFHOSTED ||
          (m->org == ORG_MICROSOFT && !m->no_mx_prefix)) {
        if (strcmp(type, "no-policy-found") != 0) {
          j_key(j, "mx-host");
          j_open(j, '[');
          char h[112];
          snprintf(h, sizeof h, "%s%s", m->org == ORG_MICROSOFT ? "mx: " : "", mx);
          j_elem_str(j, h);
          j_close(j, ']');
        }
      }
    }
    j_close(j, '}');
    j_key(j, "summary");
    j_open(j, '{');
    if (mailru) {
      j_kuint(j, "total-failure-session-count", fail);
      j_kuint(j, "total-successful-session-count", rng_below(r, 5000));
    } else {
      j_kuint(j, "total-successful-session-count", rng_below(r, 20000));
      j_kuint(j, "total-failure-session-count", fail);
    }
    j_close(j, '}');
    if (!mailru && ndet) {
      j_key(j, "failure-details");
      j_open(j, '[');
      for (unsigned k = 0; k < ndet; k++)
        gen_detail(j, r, m, mx, m->org == ORG_SELFHOSTED && rng_percent(r, 10));
      j_close(j, ']');
    }
    j_close(j, '}');
    rows += 1 + ndet;
  }
  j_close(j, ']');
  if (mailru)
    j_kstr(j, "report-id", m->report_id);
  if (m->org == ORG_SELFHOSTED)
    j_kstr(j, "report-id", m->report_id);
  j_close(j, '}');
  if (m->pretty)
    buf_putc(out, '\n');
  return rows;
}

static const char *const org_senders[NORGS] = { "google.com", "microsoft.com", "yahoo.com",
                                                "mail.ru", NULL };
static const char *const org_names[NORGS] = { "Google Inc.", "Microsoft Corporation",
                                              "Yahoo", "Mail.ru", NULL };

/* large: the message is one of the --large reports, which come from Google (even
 * numbers) or Microsoft (odd), the senders that see that much traffic. */
static void
make_meta(Meta *m, Rng *r, unsigned idx, int large)
{
  memset(m, 0, sizeof *m);
  m->idx = idx;
  unsigned u = rng_below(r, 100);
  m->org = u < 45 ? ORG_GOOGLE : u < 80 ? ORG_MICROSOFT : u < 88 ? ORG_YAHOO
         : u < 94 ? ORG_MAILRU : ORG_SELFHOSTED;
  if (large)
    m->org = idx % 2 ? ORG_MICROSOFT : ORG_GOOGLE;
  domain_name(m->domain, sizeof m->domain, idx % NDOMAINS);
  /* (domain, day) is unique per message number: report-ids that embed both stay
   * unique for any count */
  m->begin = 1704067200 + (int64_t) (idx / NDOMAINS) * 86400;
  if (m->org == ORG_SELFHOSTED) {
    char other[48];
    domain_name(other, sizeof other, (idx * 7 + 3) % NDOMAINS);
    snprintf(m->self_host, sizeof m->self_host, "mx.%s", other);
    snprintf(m->sender, sizeof m->sender, "%s", m->self_host);
    snprintf(m->org_name, sizeof m->org_name, "%s", m->self_host);
  } else {
    snprintf(m->sender, sizeof m->sender, "%s", org_senders[m->org]);
    snprintf(m->org_name, sizeof m->org_name, "%s", org_names[m->org]);
  }
  char day[40];
  fmt_date(day, sizeof day, m->begin, 1);
  Buf id = { 0 };
  switch (m->org) {
  case ORG_GOOGLE:
    buf_printf(&id, "%s_%s", day, m->domain);
    snprintf(m->file_id, sizeof m->file_id, "001");
    break;
  case ORG_MICROSOFT:
    buf_printf(&id, "%llu+%s", 133500000000000000ull + (unsigned long long) idx * 100003ull +
               rng_below(r, 100000), m->domain);
    snprintf(m->file_id, sizeof m->file_id, "%.*s", 18, id.p);
    m->zoneless = rng_percent(r, 40);
    m->no_mx_prefix = !rng_percent(r, 15);
    break;
  case ORG_YAHOO:
    buf_printf(&id, "%s_%s_%u", day, m->domain, rng_below(r, 1000000));
    snprintf(m->file_id, sizeof m->file_id, "%u", idx);
    break;
  case ORG_MAILRU:
    buf_uuid(&id, r);
    buf_puts(&id, "@mail.ru");
    snprintf(m->file_id, sizeof m->file_id, "%.8s", id.p);
    m->end_next_day = 1;
    m->pretty = 3;
    break;
  default:
    buf_randhex(&id, r, 16);
    buf_printf(&id, "@%s", m->self_host);
    snprintf(m->file_id, sizeof m->file_id, "%.16s", id.p);
    m->end_next_day = 1;
    m->pretty = 4;
  }
  snprintf(m->report_id, sizeof m->report_id, "%s", id.p);
  free(id.p);
}

static void
report_file_name(char *out, size_t n, const Meta *m)
{
  int64_t end = m->end_next_day ? m->begin + 86400 : m->begin + 86399;
  snprintf(out, n, "%s!%s!%" PRId64 "!%" PRId64 "!%s.json.gz", m->sender, m->domain, m->begin,
           end, m->file_id);
}

/* ---------------------------------------------------------------- messages */

typedef struct {
  Buf msg, json, gz, tmp;
  unsigned long long messages, reports, nonreports, broken, bytes, json_bytes, rows;
} Gen;

/* Header line(s) with the message's line ending; "\n" in s becomes eol. */
static void
put(Buf *b, const char *eol, const char *s)
{
  for (const char *p = s;;) {
    const char *nl = strchr(p, '\n');
    if (nl == NULL) {
      buf_puts(b, p);
      return;
    }
    buf_add(b, p, (size_t) (nl - p));
    buf_puts(b, eol);
    p = nl + 1;
  }
}

static void
putf(Buf *b, Buf *tmp, const char *eol, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));

static void
putf(Buf *b, Buf *tmp, const char *eol, const char *fmt, ...)
{
  va_list ap;
  char small[2048];
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t) n >= sizeof small)
    die("header too long");
  (void) tmp;
  put(b, eol, small);
}

static void
rand_b64_folded(Buf *b, Rng *r, size_t n, size_t width, const char *eol, const char *indent)
{
  for (size_t done = 0; done < n; done += width) {
    if (done) {
      buf_puts(b, eol);
      buf_puts(b, indent);
    }
    buf_randb64(b, r, n - done < width ? n - done : width);
  }
}

static void
gen_headers(Gen *g, Rng *r, const Meta *m, const char *eol, const char *boundary,
            int64_t sent)
{
  Buf *b = &g->msg;
  char date[64], rdate[64];
  const char *rcpt_local = (m->idx / NDOMAINS) % 2 ? "tlsrpt" : "tls-reports";
  switch (m->org) {
  case ORG_GOOGLE: {
    fmt_mail_date(date, sizeof date, sent, -7);
    fmt_mail_date(rdate, sizeof rdate, sent + 1, -7);
    putf(b, &g->tmp, eol, "Return-Path: <%.*s-%u@smtp-tls-reporting.bounces.google.com>\n", 24,
         "3IDzYZhoKADcghkXier-lfmi", m->idx);
    putf(b, &g->tmp, eol, "Received: from mail-qk1-x746.google.com ([2607:f8b0:4864:20::746]) by\n"
         "\tmx.%s with ESMTPS for %s@%s; %s\n", m->domain, rcpt_local, m->domain, rdate);
    put(b, eol, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\n"
        "        d=google.com; s=20230601;\n"
        "        h=to:from:subject:message-id:tls-report-submitter:tls-report-domain\n"
        "         :date:mime-version:from:to:cc:subject:date:message-id:reply-to;\n"
        "        bh=");
    buf_randb64(b, r, 43);
    put(b, eol, "=;\n        b=");
    rand_b64_folded(b, r, 342, 66, eol, "         ");
    put(b, eol, "==\n");
    putf(b, &g->tmp, eol, "X-Gm-Message-State: %s\n", "AOJu0YxO7vIRH2imieMtGRMc8+8poJgd9LToFB5cAjWKskgsPumEIP1Y");
    put(b, eol, "X-Google-Smtp-Source: ");
    buf_randb64(b, r, 90);
    put(b, eol, "=\nMIME-Version: 1.0\n");
    putf(b, &g->tmp, eol, "Date: %s\n", date);
    putf(b, &g->tmp, eol, "TLS-Report-Domain: %s\nTLS-Report-Submitter: google.com\n", m->domain);
    put(b, eol, "Message-ID: <");
    buf_randhex(b, r, 24);
    put(b, eol, "tls@google.com>\n");
    putf(b, &g->tmp, eol, "Subject: Report Domain: %s Submitter: google.com Report-ID: <%.20s+%s@google.com>\n",
         m->domain, m->report_id, m->domain);
    putf(b, &g->tmp, eol, "From: noreply-smtp-tls-reporting@google.com\nTo: %s@%s\n", rcpt_local,
         m->domain);
    putf(b, &g->tmp, eol, "Content-Type: multipart/report; boundary=\"%s\"; report-type=tlsrpt\n",
         boundary);
    break;
  }
  case ORG_MICROSOFT: {
    fmt_mail_date(date, sizeof date, sent, 0);
    put(b, eol, "Return-Path: <tlsrpt-noreply@microsoft.com>\n");
    putf(b, &g->tmp, eol, "Received: from\n\tbn6pr00cu002-vft-obe.outbound.protection.outlook.com"
         " (mail-eastus2azlp170110002.outbound.protection.outlook.com [IPv6:2a01:111:f403:c110::2])\n"
         "\tby mx.%s with ESMTPS for <%s@%s>; %s\n", m->domain, rcpt_local, m->domain, date);
    put(b, eol, "ARC-Seal: i=1; a=rsa-sha256; s=arcselector9901; d=microsoft.com; cv=none;\n b=");
    buf_randb64(b, r, 342);
    put(b, eol, "==\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=microsoft.com;\n s=selector2;\n"
        " h=From:Date:Subject:Message-ID:Content-Type:MIME-Version:X-MS-Exchange-SenderADCheck;\n bh=");
    buf_randb64(b, r, 43);
    put(b, eol, "=;\n b=");
    buf_randb64(b, r, 170);
    put(b, eol, "=\n");
    putf(b, &g->tmp, eol, "Received: from DM6PR00CA0023.namprd00.prod.outlook.com (2603:10b6:5:114::36)\n"
         " by PH7PR21MB3143.namprd21.prod.outlook.com (2603:10b6:510:1d7::17) with\n"
         " Microsoft SMTP Server (version=TLS1_2,\n"
         " cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.6086.6; %s\n", date);
    putf(b, &g->tmp, eol, "From: <tlsrpt-noreply@microsoft.com>\nTo: \"%s@%s\" <%s@%s>\nDate: %s\n",
         rcpt_local, m->domain, rcpt_local, m->domain, date);
    putf(b, &g->tmp, eol, "Subject: Report Domain: %s Submitter: microsoft.com Report-ID:\n %s\n",
         m->domain, m->report_id);
    putf(b, &g->tmp, eol, "TLS-Report-Domain: %s\nTLS-Report-Submitter: microsoft.com\n"
         "MIME-Version: 1.0\nMessage-ID: <%s@%s>\n", m->domain, m->report_id, m->domain);
    putf(b, &g->tmp, eol, "Content-Type: multipart/report;\n\tboundary=\"%s\"; report-type=tlsrpt\n",
         boundary);
    put(b, eol, "X-MS-PublicTrafficType: Email\nX-MS-Office365-Filtering-Correlation-Id: ");
    buf_uuid(b, r);
    put(b, eol, "\nX-MS-Exchange-SenderADCheck: 1\nX-Microsoft-Antispam: BCL:0;\n"
        "X-MS-Exchange-AntiSpam-MessageData-0:\n\t");
    buf_randb64(b, r, 160);
    put(b, eol, "\nX-OriginatorOrg: microsoft.com\nX-MS-Exchange-CrossTenant-Network-Message-Id: ");
    buf_uuid(b, r);
    put(b, eol, "\nX-MS-Exchange-Transport-CrossTenantHeadersStamped: PH7PR21MB3143\n");
    break;
  }
  case ORG_YAHOO: {
    fmt_mail_date(date, sizeof date, sent, 0);
    put(b, eol, "Return-Path: <tlsrpt-noreply@yahoo.com>\n");
    putf(b, &g->tmp, eol, "Received: from sonic301-20.consmr.mail.bf2.yahoo.com (98.137.64.146)\n"
         "\tby mx.%s with ESMTPS; %s\n", m->domain, date);
    put(b, eol, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=yahoo.com; s=s2048;\n"
        "\tt=1704067200; bh=");
    buf_randb64(b, r, 43);
    put(b, eol, "=;\n\th=Date:From:To:Subject:From:Subject:Reply-To;\n\tb=");
    rand_b64_folded(b, r, 342, 72, eol, "\t");
    put(b, eol, "==\n");
    putf(b, &g->tmp, eol, "Date: %s\nFrom: tlsrpt-noreply@yahoo.com\nTo: %s@%s\n", date, rcpt_local,
         m->domain);
    putf(b, &g->tmp, eol, "Subject: Report Domain: %s Submitter: yahoo.com Report-ID: <%s>\n",
         m->domain, m->report_id);
    putf(b, &g->tmp, eol, "TLS-Report-Domain: %s\nTLS-Report-Submitter: yahoo.com\n"
         "Message-ID: <%u.%s@yahoo.com>\nMIME-Version: 1.0\n", m->domain, m->idx, m->file_id);
    putf(b, &g->tmp, eol, "Content-Type: multipart/report; report-type=\"tlsrpt\";\n"
         "\tboundary=\"%s\"\n", boundary);
    break;
  }
  case ORG_MAILRU: {
    fmt_mail_date(date, sizeof date, sent, 3);
    putf(b, &g->tmp, eol, "Received: from [94.100.177.1] by mx.%s with ESMTP; %s\n", m->domain,
         date);
    put(b, eol, "DKIM-Signature: v=1; a=rsa-sha256; q=dns/txt; c=relaxed/relaxed; d=mail.ru;\n"
        "\ts=mail4; h=Date:Message-Id:To:From:Subject:Content-Type; bh=");
    buf_randb64(b, r, 43);
    put(b, eol, "=;\n\tb=");
    rand_b64_folded(b, r, 342, 72, eol, "\t");
    put(b, eol, "==;\n");
    putf(b, &g->tmp, eol, "From: tls_support@corp.mail.ru\nTo: %s@%s\nDate: %s\n", rcpt_local,
         m->domain, date);
    putf(b, &g->tmp, eol, "Subject: Report Domain: %s Submitter: mail.ru Report-ID: <%s>\n",
         m->domain, m->report_id);
    putf(b, &g->tmp, eol, "TLS-Report-Domain: %s\nTLS-Report-Submitter: mail.ru\nMIME-Version: 1.0\n",
         m->domain);
    put(b, eol, "Message-Id: <");
    buf_randhex(b, r, 20);
    put(b, eol, "@mail.ru>\n");
    putf(b, &g->tmp, eol, "Content-Type: multipart/report; boundary=\"%s\"; report-type=\"tlsrpt\"\n",
         boundary);
    break;
  }
  default: {
    fmt_mail_date(date, sizeof date, sent, 1);
    putf(b, &g->tmp, eol, "From: tlsrpt@%s\nDate: %s\nTo: %s@%s\n", m->self_host, date, rcpt_local,
         m->domain);
    putf(b, &g->tmp, eol, "Subject: Report Domain: %s\n    Submitter: %s\n    Report-ID: <%s>\n",
         m->domain, m->self_host, m->report_id);
    putf(b, &g->tmp, eol, "TLS-Report-Domain: %s\nTLS-Report-Submitter: %s\n", m->domain,
         m->self_host);
    put(b, eol, "DKIM-Signature: v=1; a=ed25519-sha256; s=");
    putf(b, &g->tmp, eol, "%s; d=%s; c=relaxed/relaxed;\n\th=From:To:Date:Subject; bh=", "ed",
         m->self_host);
    buf_randb64(b, r, 43);
    put(b, eol, "=;\n\tb=");
    buf_randb64(b, r, 86);
    put(b, eol, "==\nMIME-Version: 1.0\n");
    putf(b, &g->tmp, eol, "Content-Type: multipart/report; report-type=\"tlsrpt\";\n"
         "    boundary=\"%s\"\nContent-Language: en-us\n", boundary);
  }
  }
}

/* What the receiving MX and the delivery agent put on top of every report. */
static void
gen_trace(Gen *g, Rng *r, const Meta *m, const char *eol, int64_t sent)
{
  Buf *b = &g->msg;
  char date[64];
  fmt_mail_date(date, sizeof date, sent + 2, 1);
  putf(b, &g->tmp, eol, "Authentication-Results: mx.%s;\n\tdkim=pass (2048-bit key) header.d=%s"
       " header.i=@%s header.b=", m->domain, m->sender, m->sender);
  buf_randb64(b, r, 8);
  putf(b, &g->tmp, eol, ";\n\tspf=pass (mx.%s: domain of %s designates %u.%u.%u.%u as permitted"
       " sender) smtp.mailfrom=%s;\n\tdmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=%s\n",
       m->domain, m->sender, rng_below(r, 200) + 20, rng_below(r, 256), rng_below(r, 256),
       rng_below(r, 254) + 1, m->sender, m->sender);
  putf(b, &g->tmp, eol, "Received-SPF: pass (mx.%s: domain of %s) client-ip=%u.%u.%u.%u;\n"
       "\tenvelope-from=%s; receiver=mx.%s\n", m->domain, m->sender, rng_below(r, 200) + 20,
       rng_below(r, 256), rng_below(r, 256), rng_below(r, 254) + 1, m->sender, m->domain);
  putf(b, &g->tmp, eol, "Delivered-To: tlsrpt@%s\n", m->domain);
  (void) date;
}

/* One report message (or a broken one) into g->msg. Returns CSV rows, 0 if broken. */
static unsigned
gen_report_message(Gen *g, Rng *r, unsigned idx, int broken, unsigned details, int crlf)
{
  Meta m;
  make_meta(&m, r, idx, details > 0);
  const char *eol = crlf ? "\r\n" : "\n";
  char boundary[80], fname[256];
  unsigned rows = gen_report(&g->json, r, &m, details);
  int64_t sent = m.begin + 86400 + 3600 + rng_below(r, 6 * 3600);
  report_file_name(fname, sizeof fname, &m);
  size_t json_len = g->json.len;
  if (broken == 2) {
    /* invalid JSON: cut in the middle of the text */
    json_len = json_len / 2;
  }
  gzip_into(&g->gz, g->json.p, json_len,
            m.org == ORG_MICROSOFT ? 4 : 0, m.org == ORG_SELFHOSTED ? "report.json" : NULL);
  size_t gz_len = g->gz.len;
  if (broken == 1)
    gz_len = gz_len * 2 / 3;  /* truncated gzip */

  switch (m.org) {
  case ORG_GOOGLE:
    snprintf(boundary, sizeof boundary, "000000000000%012" PRIx64, rng_next(r) >> 16);
    break;
  case ORG_MICROSOFT:
    snprintf(boundary, sizeof boundary, "_");
    buf_uuid(&g->tmp, r);
    snprintf(boundary, sizeof boundary, "_%s_", g->tmp.p);
    g->tmp.len = 0;
    break;
  case ORG_SELFHOSTED:
    snprintf(boundary, sizeof boundary, "----=_NextPart_000_%04X_%08" PRIX64 ".%08X",
             rng_below(r, 0xffff), rng_next(r) >> 32, rng_below(r, 0x7fffffff));
    break;
  default:
    snprintf(boundary, sizeof boundary, "----=_Part_%u_%u.%" PRIu64, rng_below(r, 99999), idx,
             (uint64_t) sent * 1000 + rng_below(r, 1000));
  }

  Buf *b = &g->msg;
  gen_trace(g, r, &m, eol, sent);
  gen_headers(g, r, &m, eol, boundary, sent);
  buf_puts(b, eol);
  if (m.org == ORG_SELFHOSTED)
    putf(b, &g->tmp, eol, "This is a multipart message in MIME format.\n\n");
  /* human-readable part */
  putf(b, &g->tmp, eol, "--%s\n", boundary);
  switch (m.org) {
  case ORG_GOOGLE:
    putf(b, &g->tmp, eol, "Content-Type: text/plain; charset=\"UTF-8\"; format=flowed; delsp=yes\n\n"
         "This is an aggregate TLS report from google.com\n\n");
    break;
  case ORG_MICROSOFT:
    putf(b, &g->tmp, eol, "Content-Type: text/plain; charset=\"us-ascii\"\n"
         "Content-Transfer-Encoding: quoted-printable\n\n"
         "This is an aggregate TLS report from microsoft.com\n\n");
    break;
  case ORG_SELFHOSTED:
    putf(b, &g->tmp, eol, "Content-Type: text/plain; charset=\"us-ascii\"\n"
         "Content-Transfer-Encoding: 7bit\n\nThis is an aggregate TLS report from %s\n\n",
         m.self_host);
    break;
  default:
    putf(b, &g->tmp, eol, "Content-Type: text/plain; charset=utf-8\n"
         "Content-Transfer-Encoding: 7bit\n\n"
         "This is an aggregate TLS report from %s for %s.\n"
         "The report covers %.10s and is attached in the format of RFC 8460.\n\n",
         m.sender, m.domain, m.report_id[0] == '2' ? m.report_id : "one day");
  }
  /* the report */
  putf(b, &g->tmp, eol, "--%s\n", boundary);
  switch (m.org) {
  case ORG_GOOGLE:
    putf(b, &g->tmp, eol, "Content-Type: application/tlsrpt+gzip; \n\tname=\"%s\"\n"
         "Content-Disposition: attachment; \n\tfilename=\"%s\"\n"
         "Content-Transfer-Encoding: base64\n\n", fname, fname);
    break;
  case ORG_MICROSOFT:
    putf(b, &g->tmp, eol, "Content-Type: application/tlsrpt+gzip\nContent-Description:\n %s\n"
         "Content-Disposition: attachment;\n\tfilename=\"%s\"\n"
         "Content-Transfer-Encoding: base64\n\n", fname, fname);
    break;
  case ORG_SELFHOSTED:
    putf(b, &g->tmp, eol, "Content-Type: application/tlsrpt+gzip\nContent-Transfer-Encoding: base64\n"
         "Content-Disposition: attachment;\n    filename=\"%s\"\n\n", fname);
    break;
  default:
    putf(b, &g->tmp, eol, "Content-Type: application/tlsrpt+gzip; name=\"%s\"\n"
         "Content-Transfer-Encoding: base64\n"
         "Content-Disposition: attachment; filename=\"%s\"\n\n", fname, fname);
  }
  buf_base64(b, (const unsigned char *) g->gz.p, gz_len, eol);
  buf_puts(b, eol);
  if (m.org != ORG_MAILRU)  /* Mail.ru omits the closing boundary */
    putf(b, &g->tmp, eol, "--%s--\n", boundary);

  if (broken) {
    g->broken++;
    return 0;
  }
  g->reports++;
  g->json_bytes += g->json.len;
  g->rows += rows;
  return rows;
}

static const char *const plain_subjects[] = {
  "Your invoice for last month", "Weekly digest: 12 new posts", "Re: meeting on Thursday",
  "Delivery Status Notification (Failure)", "Report Domain question from a customer" };

/* A message that holds no report: plain text mail to the report address. */
static void
gen_plain_message(Gen *g, Rng *r, unsigned idx, int crlf)
{
  const char *eol = crlf ? "\r\n" : "\n";
  char dom[64], date[64];
  domain_name(dom, sizeof dom, idx % NDOMAINS);
  fmt_mail_date(date, sizeof date, 1704067200 + (int64_t) (idx / NDOMAINS) * 86400 + 40000, 2);
  Buf *b = &g->msg;
  putf(b, &g->tmp, eol, "Return-Path: <newsletter@%s>\n", dom);
  putf(b, &g->tmp, eol, "Received: from mail.%s (mail.%s [192.0.2.%u])\n\tby mx.%s with ESMTPS; %s\n",
       dom, dom, rng_below(r, 254) + 1, dom, date);
  putf(b, &g->tmp, eol, "From: \"Someone\" <someone@%s>\nTo: tlsrpt@%s\nDate: %s\n", dom, dom, date);
  putf(b, &g->tmp, eol, "Subject: %s\nMessage-ID: <%u.", plain_subjects[rng_below(r, 5)], idx);
  buf_randhex(b, r, 12);
  putf(b, &g->tmp, eol, "@%s>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
       "Content-Transfer-Encoding: 8bit\n\n", dom);
  putf(b, &g->tmp, eol, "Hello,\n\nthis mailbox receives SMTP TLS reports, but this message is not one.\n"
       "From what we can tell it was sent to the wrong address.\n\n");
  unsigned paras = 3 + rng_below(r, 8);
  for (unsigned p = 0; p < paras; p++) {
    unsigned words = 20 + rng_below(r, 60);
    size_t col = 0;
    for (unsigned w = 0; w < words; w++) {
      const char *s = rng_percent(r, 50) ? word1[rng_below(r, 32)] : word2[rng_below(r, 32)];
      if (col + strlen(s) > 70) {
        buf_puts(b, eol);
        col = 0;
      } else if (w) {
        buf_putc(b, ' ');
        col++;
      }
      buf_puts(b, s);
      col += strlen(s);
    }
    buf_puts(b, eol);
    buf_puts(b, eol);
  }
  putf(b, &g->tmp, eol, "From the team at %s\n-- \nsomeone\n", dom);
  g->nonreports++;
}

/* Message idx into g->msg; kind: 0 report, 1 non-report, 2 broken. */
static void
gen_message(Gen *g, uint64_t seed, unsigned idx, unsigned large_details, int force_lf)
{
  Rng r;
  rng_init(&r, seed, idx);
  g->msg.len = 0;
  int crlf = rng_percent(&r, 20) && !force_lf;
  unsigned k = idx % 100;
  if (large_details)
    gen_report_message(g, &r, idx, 0, large_details, crlf);
  else if (k == 37 || k == 71)
    gen_plain_message(g, &r, idx, crlf);
  else if (k == 53)
    gen_report_message(g, &r, idx, 1 + (int) ((idx / 100) % 2), 0, crlf);
  else
    gen_report_message(g, &r, idx, 0, 0, crlf);
  g->messages++;
  g->bytes += g->msg.len;
}

/* ---------------------------------------------------------------- output */

static void
write_all(int fd, const char *p, size_t n, const char *what)
{
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      die("write %s: %s", what, strerror(errno));
    }
    p += w;
    n -= (size_t) w;
  }
}

static void
mkdir_p(const char *path)
{
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        die("mkdir %s: %s", tmp, strerror(errno));
      *p = '/';
    }
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
    die("mkdir %s: %s", tmp, strerror(errno));
}

static int
open_dir(const char *path)
{
  int fd = open(path, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    die("open %s: %s", path, strerror(errno));
  return fd;
}

static void
write_file_at(int dfd, const char *name, const char *p, size_t n)
{
  int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    die("create %s: %s", name, strerror(errno));
  write_all(fd, p, n, name);
  close(fd);
}

/* mboxrd: one '>' more before every body line that matches ^>*From  */
static void
mbox_append(Buf *out, const Buf *msg, unsigned idx)
{
  char date[64];
  fmt_mail_date(date, sizeof date, 1704067200 + (int64_t) (idx / NDOMAINS) * 86400 + 90000, 0);
  /* asctime-style date for the From_ line */
  char wd[4], mon[4];
  int d, y, hh, mm, ss;
  sscanf(date, "%3s, %d %3s %d %d:%d:%d", wd, &d, mon, &y, &hh, &mm, &ss);
  buf_printf(out, "From MAILER-DAEMON %s %s %2d %02d:%02d:%02d %d\n", wd, mon, d, hh, mm, ss, y);
  const char *p = msg->p, *end = msg->p + msg->len;
  int in_body = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t) (end - p));
    const char *le = nl ? nl + 1 : end;
    if (!in_body && (le - p == 1 || (le - p == 2 && p[0] == '\r')))
      in_body = 1;
    else if (in_body) {
      const char *q = p;
      while (q < le && *q == '>')
        q++;
      if (le - q >= 5 && memcmp(q, "From ", 5) == 0)
        buf_putc(out, '>');
    }
    buf_add(out, p, (size_t) (le - p));
    p = le;
  }
  if (msg->len && msg->p[msg->len - 1] != '\n')
    buf_putc(out, '\n');
  buf_putc(out, '\n');
}

static void
usage(void)
{
  fputs("usage: gen-corpus --format maildir|mbox|report --count N --out PATH\n"
        "                  [--seed S] [--large K] [--details N] [--jobs J]\n",
        stderr);
  exit(2);
}

int
main(int argc, char **argv)
{
  const char *format = NULL, *out = NULL;
  unsigned long count = 0, large = 0, details = 200000;
  uint64_t seed = 8460;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned long jobs = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (unsigned long) ncpu;
  int have_count = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    char *e = NULL;
    if (strcmp(a, "--format") == 0)
      format = v;
    else if (strcmp(a, "--out") == 0)
      out = v;
    else if (strcmp(a, "--count") == 0) {
      count = strtoul(v, &e, 10);
      have_count = 1;
    } else if (strcmp(a, "--seed") == 0)
      seed = strtoull(v, &e, 10);
    else if (strcmp(a, "--large") == 0)
      large = strtoul(v, &e, 10);
    else if (strcmp(a, "--details") == 0)
      details = strtoul(v, &e, 10);
    else if (strcmp(a, "--jobs") == 0)
      jobs = strtoul(v, &e, 10);
    else
      usage();
    if (e != NULL && (*e != '\0' || e == v))
      die("%s: not a number: %s", a, v);
  }
  if (format == NULL || out == NULL || !have_count)
    usage();
  if (count > 100000000ul || large > 1000 || details == 0 || details > 10000000ul ||
      jobs == 0 || jobs > 64)
    die("--count, --large, --details or --jobs out of range");
  int fmt = strcmp(format, "maildir") == 0 ? 0 : strcmp(format, "mbox") == 0 ? 1
          : strcmp(format, "report") == 0 ? 2 : -1;
  if (fmt < 0)
    usage();

  if (deflateInit2(&zs_default, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
      deflateInit2(&zs_fast, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    die("deflateInit2 failed");

  Gen g;
  memset(&g, 0, sizeof g);
  unsigned long total = count + large;

  if (fmt == 0) {
    char path[4096];
    mkdir_p(out);
    int fds[3];
    static const char *const sub[3] = { "new", "cur", "tmp" };
    for (int k = 0; k < 3; k++) {
      snprintf(path, sizeof path, "%s/%s", out, sub[k]);
      mkdir_p(path);
      fds[k] = open_dir(path);
    }
    /* Worker w of J writes the messages i with i % J == w: the files do not depend on
     * J. Each worker leaves its counters in a shared page. */
    if (jobs > total)
      jobs = total ? total : 1;
    Gen *shared = mmap(NULL, sizeof(Gen) * jobs, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
      die("mmap: %s", strerror(errno));
    memset(shared, 0, sizeof(Gen) * jobs);
    for (unsigned long w = 0; w < jobs; w++) {
      pid_t pid = jobs > 1 ? fork() : 0;
      if (pid < 0)
        die("fork: %s", strerror(errno));
      if (pid > 0)
        continue;
      for (unsigned long i = w; i < total; i += jobs) {
        unsigned idx = (unsigned) i;
        gen_message(&g, seed, idx, i >= count ? (unsigned) details : 0, 0);
        char name[128];
        int in_cur = (idx * 2654435761u >> 16) % 5 == 0;
        snprintf(name, sizeof name, "%lu.M%luP%u.bench.example,S=%zu%s",
                 1704150000ul + i / 4, i, 4000u + (unsigned) (i % 30000), g.msg.len,
                 in_cur ? ":2,S" : "");
        write_file_at(fds[in_cur], name, g.msg.p, g.msg.len);
      }
      shared[w] = g;
      if (jobs > 1)
        _exit(0);
    }
    if (jobs > 1) {
      int status;
      for (unsigned long w = 0; w < jobs; w++) {
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
          die("a worker failed");
      }
    }
    memset(&g, 0, sizeof g);
    for (unsigned long w = 0; w < jobs; w++) {
      g.messages += shared[w].messages;
      g.reports += shared[w].reports;
      g.nonreports += shared[w].nonreports;
      g.broken += shared[w].broken;
      g.bytes += shared[w].bytes;
      g.json_bytes += shared[w].json_bytes;
      g.rows += shared[w].rows;
    }
    munmap(shared, sizeof(Gen) * jobs);
    for (int k = 0; k < 3; k++)
      close(fds[k]);
  } else if (fmt == 1) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
      die("create %s: %s", out, strerror(errno));
    Buf ob = { 0 };
    for (unsigned long i = 0; i < total; i++) {
      gen_message(&g, seed, (unsigned) i, i >= count ? (unsigned) details : 0, 1);
      mbox_append(&ob, &g.msg, (unsigned) i);
      if (ob.len > (1u << 20)) {
        write_all(fd, ob.p, ob.len, out);
        ob.len = 0;
      }
    }
    write_all(fd, ob.p, ob.len, out);
    free(ob.p);
    g.bytes = (unsigned long long) lseek(fd, 0, SEEK_END);
    close(fd);
  } else {
    mkdir_p(out);
    int dfd = open_dir(out);
    for (unsigned long i = 0; i < total; i++) {
      unsigned idx = (unsigned) i;
      unsigned k = idx % 100;
      if (i < count && (k == 37 || k == 71 || k == 53))
        continue;
      Rng r;
      rng_init(&r, seed, idx);
      (void) rng_percent(&r, 20);  /* same stream as the message form */
      Meta m;
      make_meta(&m, &r, idx, i >= count);
      unsigned rows = gen_report(&g.json, &r, &m, i >= count ? (unsigned) details : 0);
      gzip_into(&g.gz, g.json.p, g.json.len, m.org == ORG_MICROSOFT ? 4 : 0, NULL);
      char fname[256];
      report_file_name(fname, sizeof fname, &m);
      write_file_at(dfd, fname, g.gz.p, g.gz.len);
      g.messages++;
      g.reports++;
      g.rows += rows;
      g.json_bytes += g.json.len;
      g.bytes += g.gz.len;
    }
    close(dfd);
  }
  deflateEnd(&zs_default);
  deflateEnd(&zs_fast);
  printf("messages=%llu reports=%llu nonreports=%llu broken=%llu bytes=%llu json_bytes=%llu "
         "rows=%llu\n", g.messages, g.reports, g.nonreports, g.broken, g.bytes, g.json_bytes,
         g.rows);
  free(g.msg.p);
  free(g.json.p);
  free(g.gz.p);
  free(g.tmp.p);
  return 0;
}
