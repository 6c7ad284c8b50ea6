/* trust.c - the trust verdict and the --dkim policy: see trust.h. */
#include "trust.h"

#include "auth-results.h"
#include "dl.h"
#include "escape.h"
#include "mail-header.h"
#include "trust-dkim.h"
#include "trust-keys.h"

#include <libpsl.h>
#include <string.h>

#define TRUST_DEFAULT_TIMEOUT 10.0
#define TRUST_MAX_AR_FIELDS 64

static const char *const trust_verdict_names[] = {
  [TRUST_UNCHECKED] = NULL,
  [TRUST_PASS] = "pass",
  [TRUST_FAIL] = "fail",
  [TRUST_NONE] = "none",
  [TRUST_TEMPERROR] = "temperror",
  [TRUST_PERMERROR] = "permerror",
  [TRUST_TRUSTED_AR] = "trusted-ar",
  [TRUST_UNAUTHENTICATED] = "unauthenticated",
};

const char *
trust_verdict_name(TrustVerdictKind kind)
{
  return (gsize) kind < G_N_ELEMENTS(trust_verdict_names) ? trust_verdict_names[kind] : NULL;
}

gboolean
trust_verdict_from_name(const char *name, TrustVerdictKind *kind)
{
  for (gsize i = 0; name != NULL && i < G_N_ELEMENTS(trust_verdict_names); i++)
    if (trust_verdict_names[i] != NULL && strcmp(trust_verdict_names[i], name) == 0) {
      *kind = (TrustVerdictKind) i;
      return TRUE;
    }
  return FALSE;
}

void
trust_verdict_clear(TrustVerdict *v)
{
  g_clear_pointer(&v->domain, g_free);
  g_clear_pointer(&v->why, g_free);
  v->kind = TRUST_UNCHECKED;
}

/* ---- the organizational domain ----------------------------------------------------- */

static const char *const trust_psl_files[] = {
  "/usr/share/publicsuffix/public_suffix_list.dafsa", /* the same list, precompiled */
  "/usr/share/publicsuffix/public_suffix_list.dat",
};

#ifndef TLSRPT_LIBPSL_SONAME
#define TLSRPT_LIBPSL_SONAME "libpsl.so.5"
#endif

/* libpsl, loaded with dlopen() the first time a signing domain is not the From domain
 * itself (mda runs once per message: most messages never need it). */
static struct {
  __typeof__(psl_load_file) *load_file;
  __typeof__(psl_registrable_domain) *registrable_domain;
} trust_psl_fn;

static const char *const trust_psl_names[] = { "psl_load_file", "psl_registrable_domain" };

static psl_ctx_t *trust_psl;
static const char *trust_psl_path;

static const psl_ctx_t *
trust_psl_get(void)
{
  static gsize loaded = 0;
  if (g_once_init_enter(&loaded)) {
    G_STATIC_ASSERT(sizeof trust_psl_fn == G_N_ELEMENTS(trust_psl_names) * sizeof(void *));
    g_autofree char *why = NULL;
    if (tr_dl_load(TLSRPT_LIBPSL_SONAME, "libpsl.so.5", trust_psl_names,
                   (void **) &trust_psl_fn, G_N_ELEMENTS(trust_psl_names), &why))
      for (gsize i = 0; i < G_N_ELEMENTS(trust_psl_files) && trust_psl == NULL; i++) {
        trust_psl = trust_psl_fn.load_file(trust_psl_files[i]);
        if (trust_psl != NULL)
          trust_psl_path = trust_psl_files[i];
      }
    g_once_init_leave(&loaded, 1);
  }
  return trust_psl;
}

const char *
trust_psl_file(void)
{
  trust_psl_get();
  return trust_psl_path;
}

gboolean
trust_org_aligned(const char *a, const char *b)
{
  if (a == NULL || b == NULL || *a == '\0' || *b == '\0')
    return FALSE;
  if (g_ascii_strcasecmp(a, b) == 0)
    return TRUE;
  const psl_ctx_t *psl = trust_psl_get();
  if (psl == NULL)
    return FALSE;
  g_autofree char *la = g_ascii_strdown(a, -1), *lb = g_ascii_strdown(b, -1);
  const char *oa = trust_psl_fn.registrable_domain(psl, la);
  const char *ob = trust_psl_fn.registrable_domain(psl, lb);
  return oa != NULL && ob != NULL && strcmp(oa, ob) == 0;
}

/* ---- the checker ---------------------------------------------------------------------- */

struct TrTrust {
  TrTrustOptions opts;        /* the strings borrowed from the caller's TrOptions */
  TrustKeys *keys;
};

TrTrust *
trust_new(const TrTrustOptions *opts, GError **error)
{
  if (opts->dkim == TR_DKIM_OFF)
    return NULL;
  g_autoptr(TrTrust) t = g_new0(TrTrust, 1);
  t->opts = *opts;
  if (opts->dkim_keys != NULL) {
    t->keys = trust_keys_new_file(opts->dkim_keys, error);
    if (t->keys == NULL)
      return NULL;
  } else {
    t->keys = trust_keys_new_dns(opts->dkim_nameserver, opts->dkim_timeout > 0
                                                            ? opts->dkim_timeout
                                                            : TRUST_DEFAULT_TIMEOUT);
  }
  return g_steal_pointer(&t);
}

void
trust_free(TrTrust *trust)
{
  if (trust == NULL)
    return;
  trust_keys_free(trust->keys);
  g_free(trust);
}

/* Does a signature of @d count for the sender @from (and the submitter, if asked)?
 * NULL when it does, else why not (static). */
static const char *
trust_domain_problem(const TrTrust *t, const char *d, const char *from, const char *submitter)
{
  if (d == NULL)
    return "no signing domain";
  if (!trust_org_aligned(d, from))
    return "its domain is not the From domain's organization";
  if (t->opts.require_submitter && !trust_org_aligned(d, submitter))
    return "its domain is not the TLS-Report-Submitter's";
  return NULL;
}

/* A signing domain as stored: lower case, every byte outside printable ASCII as '?'
 * (it goes into CSV cells and log lines as it is). */
static char *
trust_clean_domain(const char *d)
{
  if (d == NULL || *d == '\0')
    return NULL;
  char *c = g_ascii_strdown(d, -1);
  for (char *p = c; *p != '\0'; p++)
    if ((guchar) *p <= 0x20 || (guchar) *p >= 0x7f || *p == ',' || *p == '"')
      *p = '?';
  return c;
}

static void
trust_set(TrustVerdict *out, TrustVerdictKind kind, const char *domain, char *why)
{
  out->kind = kind;
  out->domain = trust_clean_domain(domain);
  out->why = why;
}

/* The topmost Authentication-Results of a trusted authserv-id: TRUE and @out set when
 * it says dkim=pass for a domain that counts. */
static gboolean
trust_check_ar(const TrTrust *t, GBytes *message, const char *from, const char *submitter,
               TrustVerdict *out)
{
  if (t->opts.authserv_ids == NULL || t->opts.authserv_ids[0] == NULL)
    return FALSE;
  g_autoptr(GPtrArray) fields =
      mail_header_fields(message, "Authentication-Results", TRUST_MAX_AR_FIELDS);
  for (guint i = 0; i < fields->len; i++) {
    const char *v = fields->pdata[i];
    g_autoptr(AuthResults) ar = auth_results_parse(v, strlen(v));
    if (ar == NULL)
      continue;
    gboolean trusted = FALSE;
    for (guint k = 0; t->opts.authserv_ids[k] != NULL && !trusted; k++)
      trusted = g_ascii_strcasecmp(ar->authserv_id, t->opts.authserv_ids[k]) == 0;
    if (!trusted)
      continue;
    /* Only the topmost trusted one counts: ours, added last. */
    for (guint k = 0; k < ar->results->len; k++) {
      const AuthResult *r = ar->results->pdata[k];
      if (strcmp(r->method, "dkim") != 0 || strcmp(r->result, "pass") != 0)
        continue;
      const char *d = r->header_d;
      if (d == NULL && r->header_i != NULL)
        d = strrchr(r->header_i, '@') != NULL ? strrchr(r->header_i, '@') + 1 : r->header_i;
      if (d != NULL && trust_domain_problem(t, d, from, submitter) == NULL) {
        g_autofree char *id = tr_escape_terminal(ar->authserv_id);
        g_autofree char *lower = g_ascii_strdown(d, -1);
        trust_set(out, TRUST_TRUSTED_AR, lower,
                  g_strdup_printf("Authentication-Results of %s: dkim=pass", id));
        return TRUE;
      }
    }
    return FALSE;
  }
  return FALSE;
}

void
trust_check_message(TrTrust *t, GBytes *message, const char *from, const char *submitter,
                    TrustVerdict *out)
{
  memset(out, 0, sizeof *out);
  if (t == NULL)
    return;
  g_autoptr(GPtrArray) sigs = NULL;
  g_autoptr(GError) error = NULL;
  gboolean signed_ = trust_dkim_signed(message);
  if (signed_)
    sigs = trust_dkim_verify(message, trust_keys_lookup, t->keys, &error);

  /* A signature that counts. */
  const TrustDkimSig *first_pass = NULL;
  const char *pass_problem = NULL;
  for (guint i = 0; sigs != NULL && i < sigs->len; i++) {
    const TrustDkimSig *s = sigs->pdata[i];
    if (s->status != TRUST_SIG_PASS)
      continue;
    const char *problem = s->partial_body ? "it signs only part of the body (l=)"
                                          : trust_domain_problem(t, s->domain, from, submitter);
    if (problem == NULL) {
      g_autofree char *esc = tr_escape_terminal(s->domain);
      trust_set(out, TRUST_PASS, s->domain, g_strdup_printf("signature of %s verified", esc));
      return;
    }
    if (first_pass == NULL) {
      first_pass = s;
      pass_problem = problem;
    }
  }
  if (trust_check_ar(t, message, from, submitter, out))
    return;

  if (!signed_) {
    trust_set(out, TRUST_NONE, NULL, g_strdup("no DKIM signature"));
    return;
  }
  if (sigs == NULL) {
    trust_set(out, TRUST_TEMPERROR, NULL, g_strdup(error->message));
    return;
  }
  if (sigs->len == 0) {
    trust_set(out, TRUST_PERMERROR, NULL, g_strdup("no DKIM signature could be read"));
    return;
  }
  /* A key that could not be had may hide a pass: temporary, before any failure. */
  const TrustDkimSig *first_fail = NULL;
  for (guint i = 0; i < sigs->len; i++) {
    const TrustDkimSig *s = sigs->pdata[i];
    g_autofree char *esc = tr_escape_terminal(s->domain != NULL ? s->domain : "?");
    if (s->status == TRUST_SIG_TEMPERROR) {
      trust_set(out, TRUST_TEMPERROR, s->domain,
                g_strdup_printf("signature of %s: %s", esc, s->why ? s->why : "temporary error"));
      return;
    }
    if (s->status == TRUST_SIG_FAIL && first_fail == NULL)
      first_fail = s;
  }
  if (first_pass != NULL) {
    g_autofree char *esc = tr_escape_terminal(first_pass->domain);
    trust_set(out, TRUST_FAIL, first_pass->domain,
              g_strdup_printf("signature of %s verified, but %s", esc, pass_problem));
    return;
  }
  const TrustDkimSig *s = first_fail != NULL ? first_fail : sigs->pdata[0];
  g_autofree char *esc = tr_escape_terminal(s->domain != NULL ? s->domain : "?");
  g_autofree char *why = tr_escape_terminal(s->why != NULL ? s->why : "not verified");
  trust_set(out, first_fail != NULL ? TRUST_FAIL : TRUST_PERMERROR, s->domain,
            g_strdup_printf("signature of %s: %s", esc, why));
}

TrustDecision
trust_decide(const TrTrust *t, const TrustVerdict *v, gboolean raw_report)
{
  if (t == NULL || t->opts.dkim != TR_DKIM_REQUIRE)
    return TRUST_ACCEPT;
  switch (v->kind) {
  case TRUST_PASS:
  case TRUST_TRUSTED_AR:
  case TRUST_UNCHECKED:
    return TRUST_ACCEPT;
  case TRUST_TEMPERROR:
    return TRUST_TEMPFAIL;
  case TRUST_NONE:
  case TRUST_UNAUTHENTICATED:
    return raw_report && t->opts.accept_unsigned_files ? TRUST_ACCEPT : TRUST_QUARANTINE;
  case TRUST_FAIL:
  case TRUST_PERMERROR:
    return TRUST_QUARANTINE;
  }
  return TRUST_QUARANTINE;
}
