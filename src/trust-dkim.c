/* trust-dkim.c - DKIM verification with libopendkim, loaded on first use: see
 * trust-dkim.h. */
#include "trust-dkim.h"

#include "dl.h"
#include "escape.h"
#include "mail-header.h"
#include "trust-pkey.h"

#include <dlfcn.h>

#include <stdbool.h>
#include <string.h>
#include <opendkim/dkim.h>

#ifndef TLSRPT_LIBOPENDKIM_SONAME
#define TLSRPT_LIBOPENDKIM_SONAME "libopendkim.so.11"
#endif

G_DEFINE_QUARK(tlsrpt-trust-dkim-error-quark, trust_dkim_error)

void
trust_dkim_sig_free(TrustDkimSig *sig)
{
  if (sig == NULL)
    return;
  g_free(sig->domain);
  g_free(sig->selector);
  g_free(sig->why);
  g_free(sig);
}

gboolean
trust_dkim_signed(GBytes *message)
{
  g_autoptr(GPtrArray) f = mail_header_fields(message, "DKIM-Signature", 1);
  return f->len > 0;
}

/* ---- libopendkim, loaded on first use ------------------------------------------- */

#define TRUST_DKIM_FUNCTIONS(X)                                                          \
  X(dkim_init) X(dkim_options) X(dkim_set_key_lookup) X(dkim_verify)                     \
  X(dkim_set_user_context) X(dkim_get_user_context) X(dkim_header) X(dkim_eoh)           \
  X(dkim_body) X(dkim_eom)            \
  X(dkim_getsiglist) X(dkim_sig_getflags) X(dkim_sig_getbh) X(dkim_sig_geterror)         \
  X(dkim_sig_geterrorstr) X(dkim_sig_getdomain) X(dkim_sig_getselector)                  \
  X(dkim_sig_getcanonlen) X(dkim_free) X(dkim_getresultstr)

static struct {
#define TRUST_DKIM_POINTER(name) __typeof__(name) *name;
  TRUST_DKIM_FUNCTIONS(TRUST_DKIM_POINTER)
#undef TRUST_DKIM_POINTER
} trust_dk;

static const char *const trust_dk_names[] = {
#define TRUST_DKIM_NAME(name) #name,
  TRUST_DKIM_FUNCTIONS(TRUST_DKIM_NAME)
#undef TRUST_DKIM_NAME
};

static DKIM_LIB *trust_dk_lib;
static char *trust_dk_error;

static DKIM_CBSTAT trust_dkim_key_cb(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf,
                                     size_t buflen);

static gboolean
trust_dkim_load(GError **error)
{
  static gsize loaded = 0;
  if (g_once_init_enter(&loaded)) {
    G_STATIC_ASSERT(sizeof trust_dk == G_N_ELEMENTS(trust_dk_names) * sizeof(void *));
    if (tr_dl_load(TLSRPT_LIBOPENDKIM_SONAME, "libopendkim.so.11", trust_dk_names,
                   (void **) &trust_dk, G_N_ELEMENTS(trust_dk_names), &trust_dk_error)) {
      trust_dk_lib = trust_dk.dkim_init(NULL, NULL);
      if (trust_dk_lib == NULL) {
        trust_dk_error = g_strdup("dkim_init() failed");
      } else {
        /* Handles for signatures that do not parse, so that they get a verdict too.
         * Bare LFs are made CRLF here, before the library sees the message: its own
         * DKIM_LIBFLAGS_FIXCRLF does it one character at a time. */
        unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
        trust_dk.dkim_options(trust_dk_lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
                              sizeof flags);
        trust_dk.dkim_set_key_lookup(trust_dk_lib, trust_dkim_key_cb);
        /* Decoded keys kept for the run (trust-pkey.h). When that cannot be set up,
         * the library decodes every key itself, as before: slower, not different. */
        void *h = dlopen(TLSRPT_LIBOPENDKIM_SONAME, RTLD_NOW | RTLD_NOLOAD);
        if (h == NULL)
          h = dlopen("libopendkim.so.11", RTLD_NOW | RTLD_NOLOAD);
        g_autofree char *why = NULL;
        if (h != NULL)
          (void) trust_pkey_cache_install(h, &why);
      }
    }
    g_once_init_leave(&loaded, 1);
  }
  if (trust_dk_error != NULL) {
    g_set_error(error, TRUST_DKIM_ERROR, TRUST_DKIM_ERROR_LIBRARY,
                "cannot load libopendkim (Debian package libopendkim11): %s", trust_dk_error);
    return FALSE;
  }
  return TRUE;
}

/* ---- key records ------------------------------------------------------------------- */

gboolean
trust_dkim_key_services_ok(const char *record, char **usable)
{
  *usable = NULL;
  g_auto(GStrv) tags = g_strsplit(record, ";", -1);
  g_autoptr(GString) rest = g_string_new(NULL);
  gboolean ok = TRUE;
  for (guint i = 0; tags[i] != NULL; i++) {
    char *t = g_strstrip(tags[i]);
    if (*t == '\0')
      continue;
    char *eq = strchr(t, '=');
    g_autofree char *tag = g_strstrip(g_strndup(t, eq != NULL ? (gsize) (eq - t) : strlen(t)));
    if (eq != NULL && strcmp(tag, "s") == 0) {
      /* s= is a colon-separated list: any of *, email or tlsrpt will do. */
      g_auto(GStrv) services = g_strsplit(eq + 1, ":", -1);
      ok = FALSE;
      for (guint k = 0; services[k] != NULL && !ok; k++) {
        const char *s = g_strstrip(services[k]);
        ok = strcmp(s, "*") == 0 || g_ascii_strcasecmp(s, "email") == 0 ||
             g_ascii_strcasecmp(s, "tlsrpt") == 0;
      }
      continue;
    }
    if (rest->len > 0)
      g_string_append(rest, "; ");
    g_string_append(rest, t);
  }
  if (ok)
    *usable = g_string_free(g_steal_pointer(&rest), FALSE);
  return ok;
}

/* ---- verification ------------------------------------------------------------------ */

typedef struct {
  TrustDkimLookup lookup;
  gpointer data;
  GHashTable *problems;   /* "selector._domainkey.domain" -> TrustDkimSig (status, why) */
} TrustDkimRun;

static char *
trust_dkim_key_name(DKIM_SIGINFO *sig)
{
  const char *sel = (const char *) trust_dk.dkim_sig_getselector(sig);
  const char *dom = (const char *) trust_dk.dkim_sig_getdomain(sig);
  if (sel == NULL || dom == NULL)
    return NULL;
  char *name = g_strdup_printf("%s._domainkey.%s", sel, dom);
  for (char *c = name; *c != '\0'; c++)
    *c = g_ascii_tolower(*c);
  return name;
}

static void
trust_dkim_note(TrustDkimRun *run, DKIM_SIGINFO *sig, char *name, TrustSigStatus status,
                char *why)
{
  TrustDkimSig *p = g_new0(TrustDkimSig, 1);
  const char *dom = (const char *) trust_dk.dkim_sig_getdomain(sig);
  const char *sel = (const char *) trust_dk.dkim_sig_getselector(sig);
  p->domain = dom != NULL && *dom != '\0' ? g_ascii_strdown(dom, -1) : NULL;
  p->selector = g_strdup(sel);
  p->status = status;
  p->why = why;
  g_hash_table_replace(run->problems, name, p);
}

static DKIM_CBSTAT
trust_dkim_key_cb(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
  TrustDkimRun *run = trust_dk.dkim_get_user_context(dkim);
  char *name = trust_dkim_key_name(sig);
  if (run == NULL || name == NULL) {
    g_free(name);
    return DKIM_CBSTAT_ERROR;
  }
  g_autofree char *record = NULL, *why = NULL;
  TrustKeyStatus st = run->lookup(name, &record, &why, run->data);
  if (st == TRUST_KEY_TEMPFAIL) {
    trust_dkim_note(run, sig, name, TRUST_SIG_TEMPERROR,
                    g_strdup_printf("key lookup failed: %s", why ? why : "no answer"));
    return DKIM_CBSTAT_TRYAGAIN;
  }
  if (st == TRUST_KEY_NOT_FOUND || record == NULL) {
    g_autofree char *esc = tr_escape_terminal(name);
    trust_dkim_note(run, sig, name, TRUST_SIG_PERMERROR, g_strdup_printf("no key %s", esc));
    return DKIM_CBSTAT_NOTFOUND;
  }
  g_autofree char *usable = NULL;
  if (!trust_dkim_key_services_ok(record, &usable)) {
    trust_dkim_note(run, sig, name, TRUST_SIG_PERMERROR,
                    g_strdup("the key's s= allows neither email, tlsrpt nor *"));
    return DKIM_CBSTAT_NOTFOUND;
  }
  g_free(name);
  if (strlen(usable) + 1 > buflen)
    return DKIM_CBSTAT_ERROR;
  memcpy(buf, usable, strlen(usable) + 1);
  return DKIM_CBSTAT_CONTINUE;
}

static TrustDkimSig *
trust_dkim_sig_result(TrustDkimRun *run, DKIM *dkim, DKIM_SIGINFO *sig)
{
  TrustDkimSig *r = g_new0(TrustDkimSig, 1);
  const char *dom = (const char *) trust_dk.dkim_sig_getdomain(sig);
  const char *sel = (const char *) trust_dk.dkim_sig_getselector(sig);
  r->domain = dom != NULL && *dom != '\0' ? g_ascii_strdown(dom, -1) : NULL;
  r->selector = sel != NULL && *sel != '\0' ? g_strdup(sel) : NULL;
  ssize_t msglen = -1, canonlen = -1, signlen = -1;
  if (trust_dk.dkim_sig_getcanonlen(dkim, sig, &msglen, &canonlen, &signlen) == DKIM_STAT_OK)
    r->partial_body = signlen >= 0;

  g_autofree char *name = trust_dkim_key_name(sig);
  const TrustDkimSig *noted = name != NULL ? g_hash_table_lookup(run->problems, name) : NULL;
  unsigned int flags = trust_dk.dkim_sig_getflags(sig);
  int bh = trust_dk.dkim_sig_getbh(sig);
  int err = trust_dk.dkim_sig_geterror(sig);
  if (noted != NULL) {
    r->status = noted->status;
    r->why = g_strdup(noted->why);
  } else if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MATCH) {
    r->status = TRUST_SIG_PASS;
  } else if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MISMATCH) {
    r->status = TRUST_SIG_FAIL;
    r->why = g_strdup("body hash mismatch: the body changed after signing");
  } else {
    switch (err) {
    case DKIM_SIGERROR_BADSIG:
    case DKIM_SIGERROR_EXPIRED:
    case DKIM_SIGERROR_FUTURE:
      r->status = TRUST_SIG_FAIL;
      break;
    case DKIM_SIGERROR_KEYFAIL:
      r->status = TRUST_SIG_TEMPERROR;
      break;
    default:
      r->status = bh == DKIM_SIGBH_MISMATCH ? TRUST_SIG_FAIL : TRUST_SIG_PERMERROR;
      break;
    }
    const char *s = err != DKIM_SIGERROR_OK ? trust_dk.dkim_sig_geterrorstr(err) : NULL;
    r->why = g_strdup(s != NULL ? s : bh == DKIM_SIGBH_MISMATCH ? "body hash mismatch"
                                                                : "signature not verified");
  }
  return r;
}

gboolean
trust_dkim_sig_tags(const char *value, char **domain, char **selector)
{
  *domain = NULL;
  *selector = NULL;
  g_auto(GStrv) tags = g_strsplit(value, ";", 64);
  for (guint i = 0; tags[i] != NULL; i++) {
    char *eq = strchr(tags[i], '=');
    if (eq == NULL)
      continue;
    *eq = '\0';
    const char *tag = g_strstrip(tags[i]);
    /* Folding white space may stand inside a value too: none in a domain or selector. */
    g_autofree char *v = g_strdup(eq + 1);
    char *w = v;
    for (const char *c = v; *c != '\0'; c++)
      if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n')
        *w++ = *c;
    *w = '\0';
    char **slot = strcmp(tag, "d") == 0 ? domain : strcmp(tag, "s") == 0 ? selector : NULL;
    if (slot != NULL && *slot == NULL && *v != '\0')
      *slot = g_ascii_strdown(v, -1);
  }
  return *domain != NULL && *selector != NULL;
}

/* Before the library: the key of each signature. When none has one (no key published,
 * or no answer), the verdicts are known without loading libopendkim or hashing
 * anything: returned here (transfer full). NULL: some key is there, verify. */
static GPtrArray *
trust_dkim_precheck(GBytes *message, TrustDkimLookup lookup, gpointer data)
{
  g_autoptr(GPtrArray) fields = mail_header_fields(message, "DKIM-Signature", 64);
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify) trust_dkim_sig_free);
  for (guint i = 0; i < fields->len; i++) {
    TrustDkimSig *r = g_new0(TrustDkimSig, 1);
    g_ptr_array_add(out, r);
    if (!trust_dkim_sig_tags(fields->pdata[i], &r->domain, &r->selector))
      return NULL;              /* malformed: the library says how */
    g_autofree char *name = g_strdup_printf("%s._domainkey.%s", r->selector, r->domain);
    g_autofree char *record = NULL, *why = NULL;
    TrustKeyStatus st = lookup(name, &record, &why, data);
    if (st == TRUST_KEY_FOUND)
      return NULL;
    g_autofree char *esc = tr_escape_terminal(name);
    r->status = st == TRUST_KEY_TEMPFAIL ? TRUST_SIG_TEMPERROR : TRUST_SIG_PERMERROR;
    r->why = st == TRUST_KEY_TEMPFAIL
                 ? g_strdup_printf("key lookup failed: %s", why ? why : "no answer")
                 : g_strdup_printf("no key %s", esc);
  }
  return out->len > 0 ? g_steal_pointer(&out) : NULL;
}

GPtrArray *
trust_dkim_verify(GBytes *message, TrustDkimLookup lookup, gpointer data, GError **error)
{
  GPtrArray *known = trust_dkim_precheck(message, lookup, data);
  if (known != NULL)
    return known;
  if (!trust_dkim_load(error))
    return NULL;
  gsize len = 0;
  const guint8 *p = g_bytes_get_data(message, &len);
  gsize skip = p != NULL ? mail_header_skip_from_line(p, len) : 0;

  TrustDkimRun run = { lookup, data,
                       g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify) trust_dkim_sig_free) };
  DKIM_STAT st = DKIM_STAT_OK;
  DKIM *dkim = trust_dk.dkim_verify(trust_dk_lib, (const u_char *) "tlsrpt", NULL, &st);
  if (dkim == NULL) {
    g_hash_table_unref(run.problems);
    g_set_error(error, TRUST_DKIM_ERROR, TRUST_DKIM_ERROR_LIBRARY, "libopendkim: %s",
                trust_dk.dkim_getresultstr(st));
    return NULL;
  }
  trust_dk.dkim_set_user_context(dkim, &run);
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify) trust_dkim_sig_free);
  /* Lines end with CRLF for the library (RFC 5322): a bare LF becomes CRLF. */
  g_autoptr(GByteArray) crlf = NULL;
  const guint8 *in = p + skip;
  gsize in_len = len - skip;
  const guint8 *lf = memchr(in, '\n', in_len);
  if (lf != NULL && (lf == in || lf[-1] != '\r')) {
    crlf = g_byte_array_sized_new((guint) (in_len + in_len / 32 + 16));
    const guint8 *start = in, *end = in + in_len;
    for (const guint8 *q = memchr(start, '\n', in_len); q != NULL;
         q = memchr(start, '\n', (gsize) (end - start))) {
      g_byte_array_append(crlf, start, (guint) (q - start));
      if (q == in || q[-1] != '\r')
        g_byte_array_append(crlf, (const guint8 *) "\r\n", 2);
      else
        g_byte_array_append(crlf, (const guint8 *) "\n", 1);
      start = q + 1;
    }
    g_byte_array_append(crlf, start, (guint) (end - start));
    in = crlf->data;
    in_len = crlf->len;
  }
  /* The header fields one by one, then the end of the header: the keys are fetched and
   * the signatures' headers checked there. Only when a signature is still in the
   * running is the body hashed (the library takes non-const buffers and writes
   * nothing into them). */
  const guint8 *end = in + in_len, *q = in;
  st = DKIM_STAT_OK;
  while (q < end && st == DKIM_STAT_OK) {
    if (q + 1 < end && q[0] == '\r' && q[1] == '\n') {
      q += 2;                           /* the empty line: the body follows */
      break;
    }
    const guint8 *f = q;
    for (;;) {
      const guint8 *nl = memchr(q, '\n', (gsize) (end - q));
      q = nl != NULL ? nl + 1 : end;
      if (q >= end || (*q != ' ' && *q != '\t'))
        break;                          /* the field ends unless a line continues it */
    }
    gsize flen = (gsize) (q - f);
    while (flen > 0 && (f[flen - 1] == '\n' || f[flen - 1] == '\r'))
      flen--;
    st = trust_dk.dkim_header(dkim, (u_char *) f, flen);
  }
  if (st == DKIM_STAT_OK)
    st = trust_dk.dkim_eoh(dkim);
  DKIM_SIGINFO **sigs = NULL;
  int nsigs = 0;
  gboolean viable = FALSE;          /* a signature whose header part verified */
  if (st == DKIM_STAT_OK && trust_dk.dkim_getsiglist(dkim, &sigs, &nsigs) == DKIM_STAT_OK)
    for (int i = 0; i < nsigs && !viable; i++)
      viable = (trust_dk.dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_PASSED) != 0;
  if (st == DKIM_STAT_OK && viable) {
    if (q < end)
      st = trust_dk.dkim_body(dkim, (u_char *) q, (gsize) (end - q));
    _Bool testkey = 0;
    trust_dk.dkim_eom(dkim, &testkey);
  }
  sigs = NULL;
  nsigs = 0;
  if (trust_dk.dkim_getsiglist(dkim, &sigs, &nsigs) == DKIM_STAT_OK)
    for (int i = 0; i < nsigs; i++)
      g_ptr_array_add(out, trust_dkim_sig_result(&run, dkim, sigs[i]));
  if (out->len == 0) {
    /* A lookup that said "try again" ends the verification: what was noted is all. */
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, run.problems);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
      const TrustDkimSig *n = value;
      TrustDkimSig *c = g_new0(TrustDkimSig, 1);
      c->domain = g_strdup(n->domain);
      c->selector = g_strdup(n->selector);
      c->status = n->status;
      c->why = g_strdup(n->why);
      g_ptr_array_add(out, c);
    }
  }
  trust_dk.dkim_free(dkim);
  g_hash_table_unref(run.problems);
  return out;
}
