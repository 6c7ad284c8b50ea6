/* result-type.c - the meaning of each result type (RFC 8460 §4.3), in our own words.
 * One table: `explain` prints it, `summary` and `show` quote its cause and fix. */
#include "result-type.h"

#include <string.h>

#define S_CLIENT "openssl s_client -connect {mx}:25 -starttls smtp -servername {mx} </dev/null"

static const char *const diag_starttls[] = {
  "dig +short MX {domain}",
  "printf 'EHLO test\\r\\nQUIT\\r\\n' | nc -C -w 10 {mx} 25   # look for 250-STARTTLS",
  S_CLIENT,
  NULL,
};
static const char *const diag_cert[] = {
  S_CLIENT " 2>/dev/null | openssl x509 -noout -subject -ext subjectAltName -dates",
  NULL,
};
static const char *const diag_chain[] = {
  S_CLIENT " -showcerts -verify_return_error",
  S_CLIENT " 2>/dev/null | openssl x509 -noout -issuer -dates",
  NULL,
};
static const char *const diag_tlsa[] = {
  "dig +dnssec +multi TLSA _25._tcp.{mx}",
  S_CLIENT " -dane_tlsa_domain {mx} -dane_tlsa_rrdata \"$(dig +short TLSA _25._tcp.{mx} "
  "| head -1)\"",
  NULL,
};
static const char *const diag_dnssec[] = {
  "dig +dnssec +multi TLSA _25._tcp.{mx}   # look for the 'ad' flag",
  "delv TLSA _25._tcp.{mx}",
  "dig +dnssec DS {domain}",
  NULL,
};
static const char *const diag_dane_required[] = {
  "dig +dnssec +short TLSA _25._tcp.{mx}",
  "dig +dnssec MX {domain}   # must be signed ('ad' flag)",
  NULL,
};
static const char *const diag_sts_fetch[] = {
  "dig +short TXT _mta-sts.{domain}",
  "dig +short A mta-sts.{domain}; dig +short AAAA mta-sts.{domain}",
  "curl -v https://mta-sts.{domain}/.well-known/mta-sts.txt",
  NULL,
};
static const char *const diag_sts_invalid[] = {
  "curl -s https://mta-sts.{domain}/.well-known/mta-sts.txt | cat -A",
  "dig +short TXT _mta-sts.{domain}",
  NULL,
};
static const char *const diag_sts_webpki[] = {
  "curl -v https://mta-sts.{domain}/.well-known/mta-sts.txt",
  "openssl s_client -connect mta-sts.{domain}:443 -servername mta-sts.{domain} "
  "</dev/null 2>/dev/null | openssl x509 -noout -subject -ext subjectAltName -dates",
  NULL,
};

static const ResultTypeInfo rt_table[] = {
  { "starttls-not-supported", RESULT_AREA_TLS,
    "The receiving MX did not offer STARTTLS, so the sender could not encrypt.",
    "STARTTLS is switched off or broken on that MX, or something between the sender "
    "and the MX (a firewall, an SMTP proxy) strips it from the EHLO answer.",
    "Enable STARTTLS with a valid certificate on every MX, and make sure no middlebox "
    "removes it.",
    diag_starttls },
  { "certificate-host-mismatch", RESULT_AREA_TLS,
    "The MX's certificate does not name the MX host the sender connected to.",
    "The certificate was issued for another name (the domain, an old host name), or one "
    "MX serves the certificate of another.",
    "Issue a certificate whose subjectAltName holds the exact MX host name (each one, "
    "when several MX share it) and install it on that MX.",
    diag_cert },
  { "certificate-expired", RESULT_AREA_TLS,
    "The MX's certificate has expired.",
    "Renewal failed or the renewed certificate was never loaded (the service was not "
    "reloaded, or one MX was forgotten).",
    "Renew the certificate now, reload the mail service on every MX, and automate the "
    "renewal with a check that the served certificate changed.",
    diag_cert },
  { "certificate-not-trusted", RESULT_AREA_TLS,
    "The sender could not build a trusted chain for the MX's certificate.",
    "A self-signed or private-CA certificate, or the intermediate certificates are not "
    "sent with it.",
    "Use a certificate from a public CA and serve the full chain (the certificate plus "
    "its intermediates).",
    diag_chain },
  { "validation-failure", RESULT_AREA_TLS,
    "The TLS session or the certificate failed validation for a reason the sender did "
    "not classify further.",
    "Often a TLS handshake problem (old protocol versions or ciphers only), a broken "
    "chain, or an MTA-STS policy the MX does not match; the failure reason code may "
    "say more.",
    "Check the whole certificate chain and the TLS configuration of the MX, and compare "
    "the MX names with the MTA-STS policy's mx lines.",
    diag_chain },
  { "tlsa-invalid", RESULT_AREA_DANE,
    "The MX's TLSA records did not match its certificate, or could not be used.",
    "The certificate or key changed without the TLSA records (a renewal with a new key), "
    "or the records are malformed.",
    "Publish TLSA records for the new key before the certificate changes (keep both "
    "during the roll-over), or go back to a key that matches.",
    diag_tlsa },
  { "dnssec-invalid", RESULT_AREA_DANE,
    "DNSSEC validation failed for the MX records or the TLSA records.",
    "Expired signatures, a DS record at the parent that matches no key, or a broken "
    "key roll-over.",
    "Repair the DNSSEC chain: re-sign the zone, check that the DS at the registrar "
    "matches a published key, then check with a validating resolver.",
    diag_dnssec },
  { "dane-required", RESULT_AREA_DANE,
    "The sender requires DANE for this destination, and found no usable TLSA records.",
    "TLSA records are missing or unsigned for an MX the sender expects to use DANE.",
    "Publish signed TLSA records for every MX, or stop announcing DANE for it.",
    diag_dane_required },
  { "sts-policy-fetch-error", RESULT_AREA_STS,
    "The sender could not fetch the MTA-STS policy at "
    "https://mta-sts.DOMAIN/.well-known/mta-sts.txt.",
    "The mta-sts host has no address, refuses HTTPS, answers with a redirect or an "
    "error status, or times out.",
    "Make mta-sts.DOMAIN resolve and serve the policy file over HTTPS with status 200 "
    "and no redirect.",
    diag_sts_fetch },
  { "sts-policy-invalid", RESULT_AREA_STS,
    "The MTA-STS policy file was fetched but could not be understood.",
    "A syntax error (a missing 'version: STSv1', a bad mode or max_age, stray "
    "characters or HTML instead of the policy) or a wrong content type.",
    "Fix mta-sts.txt: 'version: STSv1', 'mode:', one 'mx:' line per MX pattern and "
    "'max_age:', served as text/plain.",
    diag_sts_invalid },
  { "sts-webpki-invalid", RESULT_AREA_STS,
    "The HTTPS certificate of the mta-sts web server was not valid.",
    "The certificate of mta-sts.DOMAIN expired, does not name that host, or is not "
    "from a trusted CA.",
    "Install a valid, publicly trusted certificate for mta-sts.DOMAIN on its web "
    "server and renew it automatically.",
    diag_sts_webpki },
};

const ResultTypeInfo *const result_types[] = {
  &rt_table[0], &rt_table[1], &rt_table[2], &rt_table[3], &rt_table[4], &rt_table[5],
  &rt_table[6], &rt_table[7], &rt_table[8], &rt_table[9], &rt_table[10], NULL,
};

const char result_type_unknown_note[] =
  "This result type is not one of the eleven of RFC 8460: a newer registration, or "
  "one the sender made up. Look at its failure reason code and additional "
  "information, or ask the reporting organization.";

const ResultTypeInfo *
result_type_find(const char *name)
{
  if (name == NULL)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS(rt_table); i++)
    if (strcmp(rt_table[i].name, name) == 0)
      return &rt_table[i];
  return NULL;
}

gboolean
result_type_plain_hostname(const char *s)
{
  if (s == NULL || s[0] == '\0' || s[0] == '-' || strlen(s) > 253)
    return FALSE;
  for (const char *p = s; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_')
      return FALSE;
  return TRUE;
}

char *
result_type_command(const char *template_, const char *domain, const char *mx)
{
  const char *d = result_type_plain_hostname(domain) ? domain : "DOMAIN";
  const char *m = result_type_plain_hostname(mx) ? mx : "MX";
  g_autoptr(GString) out = g_string_new(NULL);
  for (const char *p = template_; *p;) {
    if (g_str_has_prefix(p, "{mx}")) {
      g_string_append(out, m);
      p += 4;
    } else if (g_str_has_prefix(p, "{domain}")) {
      g_string_append(out, d);
      p += 8;
    } else {
      g_string_append_c(out, *p++);
    }
  }
  return g_string_free(g_steal_pointer(&out), FALSE);
}
