/* fuzz_trust.c - libFuzzer target over the parsers of the trust checks' untrusted text:
 * the bytes as an Authentication-Results field value (RFC 8601, auth-results.h), as a
 * DKIM key record's tag list (its s= service types, trust-dkim.h) and a DKIM-Signature's
 * (its d= and s=), and as a whole
 * message whose top header fields are read from the raw bytes (mail-header.h), every
 * Authentication-Results field found parsed again. */
#include "auth-results.h"
#include "mail-header.h"
#include "trust-dkim.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_results(const AuthResults *ar)
{
  if (ar == NULL)
    return;
  if (ar->authserv_id == NULL || ar->authserv_id[0] == '\0')
    abort();
  for (guint i = 0; i < ar->results->len; i++) {
    const AuthResult *r = ar->results->pdata[i];
    if (r->method == NULL || r->result == NULL || r->method[0] == '\0')
      abort();
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* A copy of exactly @size bytes: reading past it is an ASan error. */
  char *p = g_malloc(size > 0 ? size : 1);
  memcpy(p, data, size);
  g_autoptr(AuthResults) ar = auth_results_parse(p, size);
  check_results(ar);

  g_autofree char *text = g_strndup(p, size);
  g_autofree char *usable = NULL;
  gboolean ok = trust_dkim_key_services_ok(text, &usable);
  if (ok != (usable != NULL))
    abort();

  g_autofree char *d = NULL, *sel = NULL;
  if (trust_dkim_sig_tags(text, &d, &sel) != (d != NULL && sel != NULL))
    abort();

  g_autoptr(GBytes) msg = g_bytes_new_take(p, size);
  g_autoptr(GPtrArray) fields = mail_header_fields(msg, "Authentication-Results", 64);
  if (fields->len > 64)
    abort();
  for (guint i = 0; i < fields->len; i++) {
    const char *v = fields->pdata[i];
    g_autoptr(AuthResults) one = auth_results_parse(v, strlen(v));
    check_results(one);
  }
  (void) trust_dkim_signed(msg);
  return 0;
}
