/* record-dns.c - libunbound lookups with a deadline: see record-dns.h. */
#include "record-dns.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <gio/gio.h>
#include <poll.h>
#include <string.h>
#include <unbound.h>

#ifndef TLSRPT_LIBUNBOUND_SONAME
#define TLSRPT_LIBUNBOUND_SONAME "libunbound.so.8"
#endif

G_DEFINE_QUARK(tlsrpt-record-lookup-error-quark, record_lookup_error)

/* ---- libunbound, loaded on first use ---------------------------------------------- */

#define RECORD_UB_FUNCTIONS(X)                                                           \
  X(ub_ctx_create) X(ub_ctx_delete) X(ub_ctx_set_option) X(ub_ctx_set_fwd)               \
  X(ub_ctx_resolvconf) X(ub_ctx_add_ta_file) X(ub_ctx_async) X(ub_resolve_async)         \
  X(ub_fd) X(ub_process) X(ub_cancel) X(ub_resolve_free) X(ub_strerror)

#define RECORD_UB_POINTER(name) static __typeof__(name) *record_##name;
RECORD_UB_FUNCTIONS(RECORD_UB_POINTER)
#undef RECORD_UB_POINTER

static char *record_ub_error;

static gboolean
record_ub_load(GError **error)
{
  static gsize loaded = 0;
  if (g_once_init_enter(&loaded)) {
    void *lib = dlopen(TLSRPT_LIBUNBOUND_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
      lib = dlopen("libunbound.so.8", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
      const char *why = dlerror();
      record_ub_error = g_strdup(why != NULL ? why : TLSRPT_LIBUNBOUND_SONAME);
    } else {
#define RECORD_UB_LOAD(name)                                                             \
  if (record_ub_error == NULL) {                                                         \
    *(void **) (&record_##name) = dlsym(lib, #name);                                     \
    if (record_##name == NULL)                                                           \
      record_ub_error = g_strdup_printf("%s: no symbol %s", TLSRPT_LIBUNBOUND_SONAME, #name); \
  }
      RECORD_UB_FUNCTIONS(RECORD_UB_LOAD)
#undef RECORD_UB_LOAD
    }
    g_once_init_leave(&loaded, 1);
  }
  if (record_ub_error != NULL) {
    g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_SETUP,
                "cannot load libunbound (Debian package libunbound8): %s", record_ub_error);
    return FALSE;
  }
  return TRUE;
}

/* ---- the resolver ------------------------------------------------------------------- */

struct RecordDns {
  struct ub_ctx *ctx;
  double timeout;
  gboolean validates;
};

static const char *const record_root_keys[] = {
  "/usr/share/dns/root.key",  /* dns-root-data */
  "/var/lib/unbound/root.key", /* unbound */
};

/* "IP", "IP:PORT", "[IPv6]:PORT", "IPv6" -> libunbound's "IP@PORT". */
static char *
record_dns_fwd(const char *ns, GError **error)
{
  g_autofree char *host = NULL;
  const char *port = NULL;
  if (ns[0] == '[') {
    const char *close = strchr(ns, ']');
    if (close != NULL) {
      host = g_strndup(ns + 1, (gsize) (close - ns - 1));
      if (close[1] == ':')
        port = close + 2;
      else if (close[1] != '\0')
        g_clear_pointer(&host, g_free);
    }
  } else {
    const char *colon = strchr(ns, ':');
    if (colon != NULL && strchr(colon + 1, ':') == NULL) {
      host = g_strndup(ns, (gsize) (colon - ns));
      port = colon + 1;
    } else {
      host = g_strdup(ns);
    }
  }
  g_autoptr(GInetAddress) addr = host ? g_inet_address_new_from_string(host) : NULL;
  guint64 p = 53;
  if (addr == NULL || (port != NULL && (!g_ascii_string_to_unsigned(port, 10, 1, 65535, &p,
                                                                     NULL)))) {
    g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_SETUP,
                "--nameserver takes IP, IP:PORT or [IPv6]:PORT");
    return NULL;
  }
  return g_strdup_printf("%s@%u", host, (guint) p);
}

static RecordDns *record_dns_make(const char *nameserver, const char *trust_anchor,
                                  gboolean validate, double timeout, GError **error);

RecordDns *
record_dns_new(const char *nameserver, const char *trust_anchor, double timeout,
               GError **error)
{
  return record_dns_make(nameserver, trust_anchor, TRUE, timeout, error);
}

RecordDns *
record_dns_new_plain(const char *nameserver, double timeout, GError **error)
{
  return record_dns_make(nameserver, NULL, FALSE, timeout, error);
}

static RecordDns *
record_dns_make(const char *nameserver, const char *trust_anchor, gboolean validate,
                double timeout, GError **error)
{
  if (!record_ub_load(error))
    return NULL;
  g_autoptr(RecordDns) dns = g_new0(RecordDns, 1);
  dns->timeout = timeout > 0 ? timeout : 10;
  dns->ctx = record_ub_ctx_create();
  if (dns->ctx == NULL) {
    g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_SETUP,
                "libunbound: cannot create a resolver");
    return NULL;
  }
  /* A resolver on this machine (systemd-resolved, a local unbound, the tests' server)
   * is the usual forwarder: libunbound refuses loopback addresses by default. */
  record_ub_ctx_set_option(dns->ctx, "do-not-query-localhost:", "no");
  record_ub_ctx_async(dns->ctx, 1);
  int err;
  if (nameserver != NULL) {
    g_autofree char *fwd = record_dns_fwd(nameserver, error);
    if (fwd == NULL)
      return NULL;
    err = record_ub_ctx_set_fwd(dns->ctx, fwd);
  } else {
    err = record_ub_ctx_resolvconf(dns->ctx, NULL);
  }
  if (err != 0) {
    g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_SETUP, "%s: %s",
                nameserver ? "--nameserver" : "/etc/resolv.conf", record_ub_strerror(err));
    return NULL;
  }
  if (trust_anchor != NULL) {
    if (!g_file_test(trust_anchor, G_FILE_TEST_IS_REGULAR) ||
        (err = record_ub_ctx_add_ta_file(dns->ctx, trust_anchor)) != 0) {
      g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_SETUP,
                  "--trust-anchor %s: %s", trust_anchor,
                  err != 0 ? record_ub_strerror(err) : "not a readable file");
      return NULL;
    }
    dns->validates = TRUE;
  } else if (validate) {
    for (gsize i = 0; i < G_N_ELEMENTS(record_root_keys) && !dns->validates; i++)
      if (g_file_test(record_root_keys[i], G_FILE_TEST_IS_REGULAR) &&
          record_ub_ctx_add_ta_file(dns->ctx, record_root_keys[i]) == 0)
        dns->validates = TRUE;
  }
  return g_steal_pointer(&dns);
}

void
record_dns_free(RecordDns *dns)
{
  if (dns == NULL)
    return;
  if (dns->ctx != NULL)
    record_ub_ctx_delete(dns->ctx);
  g_free(dns);
}

gboolean
record_dns_validates(const RecordDns *dns)
{
  return dns->validates;
}

void
record_dns_answer_free(RecordDnsAnswer *ans)
{
  if (ans == NULL)
    return;
  g_free(ans->name);
  g_free(ans->why_bogus);
  g_ptr_array_unref(ans->rdata);
  g_free(ans);
}

typedef struct {
  gboolean done;
  int err;
  struct ub_result *result;
} RecordPending;

static void
record_dns_done(void *data, int err, struct ub_result *result)
{
  RecordPending *p = data;
  p->done = TRUE;
  p->err = err;
  p->result = result;
}

static const char *
record_rcode_name(int rcode)
{
  switch (rcode) {
  case 1: return "FORMERR";
  case 2: return "SERVFAIL";
  case 4: return "NOTIMP";
  case 5: return "REFUSED";
  default: return "an error";
  }
}

RecordDnsAnswer *
record_dns_query(RecordDns *dns, const char *name, int rrtype, GError **error)
{
  RecordPending p = { 0 };
  int id = 0;
  int err = record_ub_resolve_async(dns->ctx, name, rrtype, 1, &p, record_dns_done, &id);
  if (err != 0) {
    g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_FAILED, "%s",
                record_ub_strerror(err));
    return NULL;
  }
  gint64 deadline = g_get_monotonic_time() + (gint64) (dns->timeout * G_USEC_PER_SEC);
  while (!p.done) {
    gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0) {
      record_ub_cancel(dns->ctx, id);
      g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_FAILED,
                  "no answer within %g s", dns->timeout);
      return NULL;
    }
    struct pollfd pfd = { .fd = record_ub_fd(dns->ctx), .events = POLLIN };
    int ms = (int) MIN(left / 1000 + 1, 1000);
    if (poll(&pfd, 1, ms) > 0)
      record_ub_process(dns->ctx);
  }
  if (p.err != 0) {
    g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_FAILED, "%s",
                record_ub_strerror(p.err));
    if (p.result != NULL)
      record_ub_resolve_free(p.result);
    return NULL;
  }
  struct ub_result *r = p.result;
  RecordDnsAnswer *ans = g_new0(RecordDnsAnswer, 1);
  ans->name = g_strdup(name);
  ans->rrtype = rrtype;
  ans->rdata = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
  ans->secure = r->secure != 0;
  ans->bogus = r->bogus != 0;
  ans->why_bogus = g_strdup(r->why_bogus);
  if (!ans->bogus && r->rcode != 0 && r->rcode != 3) {
    g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_FAILED, "the server said %s",
                record_rcode_name(r->rcode));
    record_ub_resolve_free(r);
    record_dns_answer_free(ans);
    return NULL;
  }
  ans->nxdomain = r->nxdomain != 0;
  for (int i = 0; r->havedata && r->data != NULL && r->data[i] != NULL; i++)
    g_ptr_array_add(ans->rdata, g_bytes_new(r->data[i], (gsize) MAX(r->len[i], 0)));
  record_ub_resolve_free(r);
  return ans;
}

/* ---- rdata ------------------------------------------------------------------------------ */

GPtrArray *
record_dns_txt(const RecordDnsAnswer *ans)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
  for (guint i = 0; i < ans->rdata->len; i++) {
    gsize n = 0;
    const guint8 *d = g_bytes_get_data(g_ptr_array_index(ans->rdata, i), &n);
    GByteArray *joined = g_byte_array_new();
    gboolean ok = TRUE;
    for (gsize k = 0; k < n;) {
      gsize len = d[k];
      if (k + 1 + len > n) {
        ok = FALSE;
        break;
      }
      g_byte_array_append(joined, d + k + 1, (guint) len);
      k += 1 + len;
    }
    if (ok)
      g_ptr_array_add(out, g_byte_array_free_to_bytes(joined));
    else
      g_byte_array_unref(joined);
  }
  return out;
}

guint
record_dns_txt_nstrings(GBytes *rdata)
{
  gsize n = 0;
  const guint8 *d = g_bytes_get_data(rdata, &n);
  guint count = 0;
  for (gsize k = 0; k < n; k += 1 + (gsize) d[k])
    count++;
  return count;
}

/* A wire-format name at @d (@n bytes; no compression in libunbound's rdata). */
static char *
record_dns_name(const guint8 *d, gsize n, gboolean *ok)
{
  GString *s = g_string_new(NULL);
  *ok = TRUE;
  gsize k = 0;
  while (k < n && d[k] != 0) {
    gsize len = d[k];
    if (len > 63 || k + 1 + len > n) {
      *ok = FALSE;
      break;
    }
    if (s->len > 0)
      g_string_append_c(s, '.');
    for (gsize j = 0; j < len; j++) {
      guchar c = d[k + 1 + j];
      if (g_ascii_isalnum(c) || c == '-' || c == '_') {
        g_string_append_c(s, g_ascii_tolower((char) c));
      } else {
        g_string_append_printf(s, "\\%03u", c);
        *ok = FALSE;
      }
    }
    k += 1 + len;
  }
  if (k >= n)
    *ok = FALSE;
  if (s->len == 0)
    *ok = FALSE;              /* the root: "no mail" (RFC 7505) or nonsense */
  return g_string_free(s, FALSE);
}

static void
record_dns_mx_free(gpointer p)
{
  RecordDnsMx *mx = p;
  g_free(mx->host);
  g_free(mx);
}

static gint
record_dns_mx_cmp(gconstpointer a, gconstpointer b)
{
  const RecordDnsMx *x = *(RecordDnsMx *const *) a, *y = *(RecordDnsMx *const *) b;
  if (x->preference != y->preference)
    return x->preference < y->preference ? -1 : 1;
  return strcmp(x->host, y->host);
}

GPtrArray *
record_dns_mx(const RecordDnsAnswer *ans)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(record_dns_mx_free);
  for (guint i = 0; i < ans->rdata->len; i++) {
    gsize n = 0;
    const guint8 *d = g_bytes_get_data(g_ptr_array_index(ans->rdata, i), &n);
    if (n < 3)
      continue;
    RecordDnsMx *mx = g_new0(RecordDnsMx, 1);
    mx->preference = (guint) (d[0] << 8 | d[1]);
    mx->host = record_dns_name(d + 2, n - 2, &mx->host_ok);
    g_ptr_array_add(out, mx);
  }
  g_ptr_array_sort(out, record_dns_mx_cmp);
  return out;
}

char *
record_dns_address(const RecordDnsAnswer *ans)
{
  for (guint i = 0; i < ans->rdata->len; i++) {
    gsize n = 0;
    const guint8 *d = g_bytes_get_data(g_ptr_array_index(ans->rdata, i), &n);
    char buf[INET6_ADDRSTRLEN];
    if ((n == 4 && inet_ntop(AF_INET, d, buf, sizeof buf) != NULL) ||
        (n == 16 && inet_ntop(AF_INET6, d, buf, sizeof buf) != NULL))
      return g_strdup(buf);
  }
  return NULL;
}
