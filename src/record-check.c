/* record-check.c - `record check`: see record-check.h. */
#include "record-check.h"

#include "escape.h"
#include "record-dns.h"
#include "record-fetch.h"

#include <string.h>

#define RECORD_CHECK_MAX_MX 10  /* MX hosts looked at (TLSA, _smtp._tls) */

typedef struct {
  RecordDns *dns;
  const RecordCheckOptions *opts;
  const char *domain;
  char *dead;                 /* after a lookup timed out: why; later lookups are not made */
} RecordCtx;

/* One lookup; after a timeout the server is taken as gone and no lookup is made. */
static RecordDnsAnswer *
record_query(RecordCtx *ctx, const char *name, int type, GError **error)
{
  if (ctx->dead != NULL) {
    g_set_error(error, RECORD_LOOKUP_ERROR, RECORD_LOOKUP_ERROR_FAILED,
                "not tried after an earlier lookup had no answer");
    return NULL;
  }
  RecordDnsAnswer *ans = record_dns_query(ctx->dns, name, type, error);
  if (ans == NULL && strstr((*error)->message, "no answer within") != NULL)
    ctx->dead = g_strdup((*error)->message);
  return ans;
}

static RecordCheckPart *
record_part_new(RecordCheck *check, const char *name, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static RecordCheckPart *
record_part_new(RecordCheck *check, const char *name, const char *fmt, ...)
{
  RecordCheckPart *part = g_new0(RecordCheckPart, 1);
  part->name = name;
  va_list ap;
  va_start(ap, fmt);
  part->subject = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  part->facts = g_ptr_array_new_with_free_func(g_free);
  part->problems = record_problems_new();
  g_ptr_array_add(check->parts, part);
  return part;
}

static void
record_part_free(gpointer p)
{
  RecordCheckPart *part = p;
  g_free(part->subject);
  g_ptr_array_unref(part->facts);
  g_ptr_array_unref(part->problems);
  g_free(part);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(RecordCheckPart, record_part_free)

void
record_check_free(RecordCheck *check)
{
  if (check == NULL)
    return;
  g_free(check->domain);
  g_ptr_array_unref(check->parts);
  g_free(check);
}

int
record_check_exit_code(const RecordCheck *check)
{
  gboolean error = FALSE;
  for (guint i = 0; i < check->parts->len; i++) {
    const RecordCheckPart *part = g_ptr_array_index(check->parts, i);
    if (part->lookup_failed)
      return 2;
    error = error || !record_ok(part->problems);
  }
  return error ? 1 : 0;
}

G_GNUC_PRINTF(2, 3)
static void
record_fact(RecordCheckPart *part, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_ptr_array_add(part->facts, g_strdup_vprintf(fmt, ap));
  va_end(ap);
}

/* @b as a quoted, escaped string. (transfer full) */
static char *
record_quote(GBytes *b)
{
  gsize n = 0;
  const char *d = g_bytes_get_data(b, &n);
  GString *s = g_string_new("\"");
  tr_escape_terminal_append(s, d, (gssize) n);
  g_string_append_c(s, '"');
  return g_string_free(s, FALSE);
}

static gboolean
record_bytes_prefix(GBytes *b, const char *prefix, gboolean nocase)
{
  gsize n = 0;
  const char *d = g_bytes_get_data(b, &n);
  gsize k = strlen(prefix);
  return n >= k && (nocase ? g_ascii_strncasecmp(d, prefix, k) : memcmp(d, prefix, k)) == 0;
}

/* The problems of a parsed text, copied into the part with "byte N" in front. */
static void
record_copy_problems(RecordCheckPart *part, const char *what, const GPtrArray *problems,
                     gboolean lines, GBytes *text)
{
  gsize n = 0;
  const char *d = text ? g_bytes_get_data(text, &n) : NULL;
  for (guint i = 0; i < problems->len; i++) {
    const RecordProblem *pr = g_ptr_array_index(problems, i);
    g_autofree char *where = NULL;
    if (pr->pos != RECORD_NO_POS && lines && d != NULL) {
      guint line = 1;
      for (gsize k = 0; k < pr->pos && k < n; k++)
        line += d[k] == '\n';
      where = g_strdup_printf(", line %u", line);
    } else if (pr->pos != RECORD_NO_POS) {
      where = g_strdup_printf(", byte %" G_GSIZE_FORMAT, pr->pos + 1);
    }
    record_problem_add(part->problems, pr->severity, RECORD_NO_POS, pr->fix, "%s%s: %s", what,
                       where ? where : "", pr->message);
  }
}

/* Query; on failure the part is marked and a problem added. */
static RecordDnsAnswer *
record_lookup(RecordCtx *ctx, RecordCheckPart *part, const char *name, int type,
              const char *type_name)
{
  g_autoptr(GError) error = NULL;
  RecordDnsAnswer *ans = record_query(ctx, name, type, &error);
  if (ans == NULL) {
    part->lookup_failed = TRUE;
    g_autofree char *msg = tr_escape_terminal(error->message);
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "check the name servers of the zone, then run the check again",
                       "lookup failed: %s %s: %s", name, type_name, msg);
    return NULL;
  }
  if (ans->bogus) {
    g_autofree char *why = tr_escape_terminal(ans->why_bogus ? ans->why_bogus : "");
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "re-sign the zone or fix its DS record at the parent",
                       "DNSSEC validation of %s %s failed (dnssec-invalid): validating "
                       "senders see no answer%s%s",
                       name, type_name, why[0] ? ": " : "", why);
  }
  return ans;
}

/* ---- TLS-RPT ------------------------------------------------------------------------ */

/* One TLS-RPT record at @owner, judged into @part. Returns the parsed record if exactly
 * one exists (transfer full), else NULL. @host_record: the record of an MX host (DANE),
 * whose absence is a warning, not an error. */
static RecordTlsrpt *
record_check_tlsrpt_at(RecordCtx *ctx, RecordCheckPart *part, const char *owner,
                       const char *policy_domain, RecordSeverity missing)
{
  g_autoptr(RecordDnsAnswer) ans = record_lookup(ctx, part, owner, RECORD_DNS_TXT, "TXT");
  if (ans == NULL || ans->bogus)
    return NULL;
  g_autoptr(GPtrArray) txt = record_dns_txt(ans);
  g_autoptr(GPtrArray) found = g_ptr_array_new();
  for (guint i = 0; i < txt->len; i++) {
    GBytes *b = g_ptr_array_index(txt, i);
    g_autofree char *q = record_quote(b);
    if (record_bytes_prefix(b, "v=TLSRPTv1", FALSE)) {
      g_ptr_array_add(found, b);
    } else if (record_bytes_prefix(b, "v=tlsrpt", TRUE)) {
      gsize n = 0;
      const char *d = g_bytes_get_data(b, &n);
      g_autoptr(RecordTlsrpt) rec = record_tlsrpt_parse(d, n);
      record_fact(part, "%s TXT %s", owner, q);
      record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS, NULL,
                         "this record does not begin with v=TLSRPTv1 exactly: senders "
                         "do not see it");
      record_copy_problems(part, "the record", rec->problems, FALSE, NULL);
    } else if (record_bytes_prefix(b, "v=spf1", TRUE)) {
      record_fact(part, "%s TXT %s", owner, q);
      record_problem_add(part->problems, RECORD_NOTE, RECORD_NO_POS,
                         "remove it (SPF belongs at the domain itself)",
                         "an SPF record at %s: senders ignore it", owner);
    } else {
      record_fact(part, "%s TXT %s", owner, q);
      record_problem_add(part->problems, RECORD_NOTE, RECORD_NO_POS, NULL,
                         "another TXT record at %s: ignored", owner);
    }
  }
  if (found->len == 0) {
    g_autofree char *fix = g_strdup_printf("publish one: tlsrpt-ingest record generate "
                                           "--domain %s --rua mailto:ADDRESS",
                                           policy_domain);
    record_problem_add(part->problems, missing, RECORD_NO_POS, fix, "no TLS-RPT record at %s",
                       owner);
    return NULL;
  }
  for (guint i = 0; i < found->len; i++) {
    g_autofree char *q = record_quote(g_ptr_array_index(found, i));
    /* Which rdata it came from, for its character-strings. */
    guint strings = 1;
    for (guint k = 0; txt->len == ans->rdata->len && k < txt->len; k++)
      if (g_ptr_array_index(txt, k) == g_ptr_array_index(found, i))
        strings = record_dns_txt_nstrings(g_ptr_array_index(ans->rdata, k));
    if (strings > 1)
      record_fact(part, "%s TXT %s (%u character-strings, joined without spaces)", owner, q,
                  strings);
    else
      record_fact(part, "%s TXT %s", owner, q);
  }
  if (found->len > 1) {
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "keep one record; put all destinations in its rua=",
                       "%u TLS-RPT records: receivers ignore both (RFC 8460 section 3)",
                       found->len);
    return NULL;
  }
  gsize n = 0;
  const char *d = g_bytes_get_data(g_ptr_array_index(found, 0), &n);
  RecordTlsrpt *rec = record_tlsrpt_parse(d, n);
  record_copy_problems(part, "the record", rec->problems, FALSE, NULL);
  if (record_ok(rec->problems))
    record_fact(part, "valid, %u destination%s", rec->rua->len, rec->rua->len == 1 ? "" : "s");
  return rec;
}

static void
record_check_tlsrpt(RecordCtx *ctx, RecordCheck *check)
{
  g_autofree char *owner = g_strdup_printf("_smtp._tls.%s", ctx->domain);
  RecordCheckPart *part = record_part_new(check, "TLS-RPT", "%s", owner);
  g_autoptr(RecordTlsrpt) rec =
      record_check_tlsrpt_at(ctx, part, owner, ctx->domain, RECORD_ERROR);
  /* A TLS-RPT record at the apex: the classic misplacement. */
  if (rec == NULL && !part->lookup_failed) {
    g_autoptr(GError) error = NULL;
    g_autoptr(RecordDnsAnswer) apex =
        record_query(ctx, ctx->domain, RECORD_DNS_TXT, &error);
    if (apex != NULL) {
      g_autoptr(GPtrArray) txt = record_dns_txt(apex);
      for (guint i = 0; i < txt->len; i++)
        if (record_bytes_prefix(g_ptr_array_index(txt, i), "v=TLSRPTv1", TRUE)) {
          g_autofree char *fix = g_strdup_printf("move it to %s", owner);
          record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS, fix,
                             "a TLS-RPT record at %s itself: senders look only at %s",
                             ctx->domain, owner);
          break;
        }
    }
  }
  if (rec == NULL)
    return;
  /* External mailto: destinations: the authorization record (advisory). */
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < rec->rua->len; i++) {
    const RecordRua *r = g_ptr_array_index(rec->rua, i);
    if (!r->mailto || r->domain == NULL || record_domain_within(r->domain, ctx->domain))
      continue;
    gboolean dup = FALSE;
    for (guint k = 0; k < seen->len; k++)
      dup = dup || strcmp(g_ptr_array_index(seen, k), r->domain) == 0;
    if (dup)
      continue;
    g_ptr_array_add(seen, g_strdup(r->domain));
    g_autofree char *auth = g_strdup_printf("%s._report._tls.%s", ctx->domain, r->domain);
    g_autoptr(GError) error = NULL;
    g_autoptr(RecordDnsAnswer) ans = record_query(ctx, auth, RECORD_DNS_TXT, &error);
    gboolean authorized = FALSE;
    if (ans != NULL) {
      g_autoptr(GPtrArray) txt = record_dns_txt(ans);
      for (guint k = 0; k < txt->len; k++)
        authorized = authorized || record_bytes_prefix(g_ptr_array_index(txt, k),
                                                       "v=TLSRPTv1", FALSE);
    }
    if (authorized) {
      record_fact(part, "%s authorizes the destination in %s", auth, r->domain);
    } else {
      g_autofree char *fix = g_strdup_printf("have %s publish %s TXT \"v=TLSRPTv1\"",
                                             r->domain, auth);
      g_autofree char *why = error ? tr_escape_terminal(error->message) : NULL;
      record_problem_add(part->problems, RECORD_WARNING, RECORD_NO_POS, fix,
                         "the destination in %s is not authorized by %s%s%s (a convention "
                         "some senders follow, from DMARC; not an RFC 8460 requirement)",
                         r->domain, auth, why ? ": " : "", why ? why : "");
    }
  }
}

/* ---- MX ------------------------------------------------------------------------------- */

/* The MX hosts (RecordDnsMx*), NULL when the lookup failed. *secure: the answer was
 * DNSSEC-secure. Problems go to @part. (transfer full) */
static GPtrArray *
record_check_mx_hosts(RecordCtx *ctx, RecordCheckPart *part, gboolean *secure)
{
  g_autoptr(RecordDnsAnswer) ans = record_lookup(ctx, part, ctx->domain, RECORD_DNS_MX, "MX");
  if (ans == NULL)
    return NULL;
  *secure = ans->secure;
  GPtrArray *mx = record_dns_mx(ans);
  return mx;
}

/* ---- MTA-STS -------------------------------------------------------------------------- */

static void
record_check_sts(RecordCtx *ctx, RecordCheck *check, const GPtrArray *mx)
{
  g_autofree char *owner = g_strdup_printf("_mta-sts.%s", ctx->domain);
  RecordCheckPart *part = record_part_new(check, "MTA-STS", "%s", owner);
  g_autoptr(RecordDnsAnswer) ans = record_lookup(ctx, part, owner, RECORD_DNS_TXT, "TXT");
  if (ans == NULL || ans->bogus)
    return;
  g_autoptr(GPtrArray) txt = record_dns_txt(ans);
  g_autoptr(GPtrArray) found = g_ptr_array_new();
  for (guint i = 0; i < txt->len; i++) {
    GBytes *b = g_ptr_array_index(txt, i);
    g_autofree char *q = record_quote(b);
    record_fact(part, "%s TXT %s", owner, q);
    if (record_bytes_prefix(b, "v=STSv1", FALSE))
      g_ptr_array_add(found, b);
    else if (record_bytes_prefix(b, "v=sts", TRUE))
      record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS, "write v=STSv1",
                         "a record that does not begin with v=STSv1 exactly: senders do "
                         "not see it");
  }
  if (found->len == 0) {
    record_problem_add(part->problems, RECORD_NOTE, RECORD_NO_POS,
                       "optional: publish _mta-sts TXT \"v=STSv1; id=...\" and a policy at "
                       "https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461)",
                       "no MTA-STS record: senders do not use MTA-STS for %s", ctx->domain);
    return;
  }
  if (found->len > 1) {
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS, "keep one record",
                       "%u MTA-STS records: senders ignore both (RFC 8461 section 3.1)",
                       found->len);
    return;
  }
  gsize n = 0;
  const char *d = g_bytes_get_data(g_ptr_array_index(found, 0), &n);
  g_autoptr(RecordStsTxt) sts = record_sts_txt_parse(d, n);
  record_copy_problems(part, "the record", sts->problems, FALSE, NULL);
  if (!record_ok(sts->problems))
    return;

  /* The policy host, through the same resolver. */
  g_autofree char *host = g_strdup_printf("mta-sts.%s", ctx->domain);
  g_autofree char *address = NULL;
  static const struct { int type; const char *name; } types[] = {
    { RECORD_DNS_A, "A" }, { RECORD_DNS_AAAA, "AAAA" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(types) && address == NULL; i++) {
    g_autoptr(RecordDnsAnswer) a = record_lookup(ctx, part, host, types[i].type, types[i].name);
    if (a == NULL)
      return;
    address = record_dns_address(a);
  }
  if (address == NULL) {
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "give mta-sts.DOMAIN an A or AAAA record and an HTTPS server",
                       "%s has no address: senders cannot fetch the policy "
                       "(sts-policy-fetch-error)", host);
    return;
  }
  guint port = ctx->opts->https_port ? ctx->opts->https_port : 443;
  g_autoptr(RecordFetch) f =
      record_fetch_policy(host, address, port, ctx->opts->cacert, ctx->opts->timeout);
  g_autofree char *err = f->error ? tr_escape_terminal(f->error) : NULL;
  g_autofree char *ctype = f->content_type ? tr_escape_terminal(f->content_type) : NULL;
  switch (f->status) {
  case RECORD_FETCH_OK:
    record_fact(part, "%s (at %s): HTTP 200, %s, %" G_GSIZE_FORMAT " bytes", f->url, address,
                ctype, g_bytes_get_size(f->body));
    break;
  case RECORD_FETCH_WEBPKI:
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "serve a certificate for mta-sts.DOMAIN from a public CA",
                       "%s: the certificate is not valid (sts-webpki-invalid): %s", f->url, err);
    return;
  case RECORD_FETCH_CONNECT:
  case RECORD_FETCH_SETUP:
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "run an HTTPS server for mta-sts.DOMAIN on port 443",
                       "%s (at %s): no policy (sts-policy-fetch-error): %s", f->url, address,
                       err);
    return;
  case RECORD_FETCH_STATUS:
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "serve the policy file at /.well-known/mta-sts.txt",
                       "%s: HTTP status %ld, not 200 (sts-policy-fetch-error)", f->url,
                       f->http_status);
    return;
  case RECORD_FETCH_REDIRECT:
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "serve the policy itself at this URL",
                       "%s: a redirect (HTTP %ld); senders do not follow redirects (RFC "
                       "8461 section 3.3)", f->url, f->http_status);
    return;
  case RECORD_FETCH_TOO_LARGE:
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "a policy is a few lines: serve only those",
                       "%s: larger than 64 KiB; senders may stop reading", f->url);
    return;
  case RECORD_FETCH_TYPE:
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                       "serve it as Content-Type: text/plain",
                       "%s: Content-Type %s, not text/plain (sts-policy-invalid)", f->url,
                       ctype ? ctype : "missing");
    return;
  }

  gsize plen = 0;
  const char *ptext = g_bytes_get_data(f->body, &plen);
  g_autoptr(RecordStsPolicy) pol = record_sts_policy_parse(ptext, plen);
  record_copy_problems(part, "the policy", pol->problems, TRUE, f->body);
  if (!record_ok(pol->problems)) {
    record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS, NULL,
                       "senders treat an invalid policy as none (sts-policy-invalid)");
    return;
  }
  g_autoptr(GString) pats = g_string_new(NULL);
  for (guint i = 0; i < pol->mx->len; i++)
    g_string_append_printf(pats, "%s%s", i ? ", " : "", (char *) g_ptr_array_index(pol->mx, i));
  record_fact(part, "policy: mode %s, max_age %" G_GINT64_FORMAT ", mx %s",
              record_sts_mode_name(pol->mode), pol->max_age, pats->len ? pats->str : "(none)");
  if (mx == NULL || pol->mode == RECORD_STS_MODE_NONE)
    return;
  for (guint i = 0; i < mx->len; i++) {
    const RecordDnsMx *m = g_ptr_array_index(mx, i);
    const char *match = NULL;
    for (guint k = 0; k < pol->mx->len && match == NULL; k++)
      if (record_sts_mx_match(g_ptr_array_index(pol->mx, k), m->host))
        match = g_ptr_array_index(pol->mx, k);
    if (match != NULL) {
      record_fact(part, "MX %s matches mx: %s", m->host, match);
    } else {
      g_autofree char *fix = g_strdup_printf("add the line 'mx: %s' to the policy (and "
                                             "change the id= of the TXT record)", m->host);
      record_problem_add(part->problems,
                         pol->mode == RECORD_STS_MODE_ENFORCE ? RECORD_ERROR : RECORD_WARNING,
                         RECORD_NO_POS, fix,
                         "MX %s matches no mx: pattern: %s", m->host,
                         pol->mode == RECORD_STS_MODE_ENFORCE
                             ? "senders in enforce mode do not deliver to it"
                             : "senders report each delivery to it as a failure (testing "
                               "mode)");
    }
  }
}

/* ---- DANE ------------------------------------------------------------------------------- */

static void
record_check_dane(RecordCtx *ctx, RecordCheckPart *part, const GPtrArray *mx,
                  gboolean mx_secure)
{
  if (mx->len == 0) {
    record_problem_add(part->problems, RECORD_NOTE, RECORD_NO_POS, NULL,
                       "no MX records: mail goes to %s itself (no DANE checked)", ctx->domain);
    return;
  }
  if (!record_dns_validates(ctx->dns))
    record_problem_add(part->problems, RECORD_NOTE, RECORD_NO_POS,
                       "install dns-root-data, or give --trust-anchor FILE",
                       "no DNSSEC trust anchor: no answer can be known secure");
  for (guint i = 0; i < mx->len && i < RECORD_CHECK_MAX_MX; i++) {
    const RecordDnsMx *m = g_ptr_array_index(mx, i);
    if (!m->host_ok) {
      record_problem_add(part->problems, RECORD_ERROR, RECORD_NO_POS,
                         "point the MX at a host name",
                         "MX %s (preference %u) is not a host name", m->host, m->preference);
      continue;
    }
    g_autofree char *tlsa = g_strdup_printf("_25._tcp.%s", m->host);
    g_autoptr(RecordDnsAnswer) ans = record_lookup(ctx, part, tlsa, RECORD_DNS_TLSA, "TLSA");
    if (ans == NULL || ans->bogus)
      continue;
    if (ans->rdata->len == 0) {
      record_fact(part, "MX %s (preference %u): no TLSA records (no DANE)%s", m->host,
                  m->preference, ans->secure ? ", DNSSEC-secure" : "");
      continue;
    }
    gboolean usable = ans->secure && mx_secure;
    record_fact(part, "MX %s (preference %u): %u TLSA record%s at %s, %s", m->host,
                m->preference, ans->rdata->len, ans->rdata->len == 1 ? "" : "s", tlsa,
                ans->secure ? "DNSSEC-secure" : "not DNSSEC-secure");
    if (!ans->secure)
      record_problem_add(part->problems, RECORD_WARNING, RECORD_NO_POS,
                         "sign the zone of the MX host (DNSSEC), or remove the TLSA records",
                         "the TLSA records of %s are not DNSSEC-secure: senders ignore them "
                         "(DANE needs both)", m->host);
    else if (!mx_secure)
      record_problem_add(part->problems, RECORD_WARNING, RECORD_NO_POS,
                         "sign the zone of the domain (DNSSEC)",
                         "the MX records of %s are not DNSSEC-secure: senders do not use "
                         "DANE for %s", ctx->domain, m->host);
    else
      record_fact(part, "DANE is usable for %s", m->host);
    /* For DANE the policy domain of a report is the MX host itself. */
    g_autofree char *owner = g_strdup_printf("_smtp._tls.%s", m->host);
    g_autoptr(RecordCheckPart) sub = g_new0(RecordCheckPart, 1);
    sub->facts = g_ptr_array_new_with_free_func(g_free);
    sub->problems = record_problems_new();
    g_autoptr(RecordTlsrpt) rec =
        record_check_tlsrpt_at(ctx, sub, owner, m->host, RECORD_WARNING);
    for (guint k = 0; k < sub->facts->len; k++)
      g_ptr_array_add(part->facts, g_strdup(g_ptr_array_index(sub->facts, k)));
    for (guint k = 0; k < sub->problems->len; k++) {
      RecordProblem *pr = g_ptr_array_index(sub->problems, k);
      record_problem_add(part->problems, pr->severity > RECORD_WARNING && usable
                                             ? RECORD_ERROR : MIN(pr->severity, RECORD_WARNING),
                         RECORD_NO_POS, pr->fix, "%s: %s%s", owner, pr->message,
                         rec == NULL && k == 0 && strstr(pr->message, "no TLS-RPT") != NULL
                             ? " (DANE reports about this host are sent to the host's own "
                               "_smtp._tls record, not the domain's)"
                             : "");
    }
    part->lookup_failed = part->lookup_failed || sub->lookup_failed;
  }
}


RecordCheck *
record_check(const char *domain, const RecordCheckOptions *opts, GError **error)
{
  g_autoptr(RecordDns) dns =
      record_dns_new(opts->nameserver, opts->trust_anchor, opts->timeout, error);
  if (dns == NULL)
    return NULL;
  RecordCheck *check = g_new0(RecordCheck, 1);
  check->domain = g_strdup(domain);
  check->parts = g_ptr_array_new_with_free_func(record_part_free);
  RecordCtx ctx = { dns, opts, domain, NULL };

  record_check_tlsrpt(&ctx, check);
  /* The MX hosts are needed by MTA-STS and DANE: the DANE part holds their lookup. */
  RecordCheckPart *dane = g_new0(RecordCheckPart, 1);
  dane->name = "DANE";
  dane->subject = g_strdup_printf("MX %s, TLSA _25._tcp.MX", domain);
  dane->facts = g_ptr_array_new_with_free_func(g_free);
  dane->problems = record_problems_new();
  gboolean mx_secure = FALSE;
  g_autoptr(GPtrArray) mx = record_check_mx_hosts(&ctx, dane, &mx_secure);
  record_check_sts(&ctx, check, mx);
  g_ptr_array_add(check->parts, dane);
  if (mx != NULL)
    record_check_dane(&ctx, dane, mx, mx_secure);
  g_free(ctx.dead);
  return check;
}
