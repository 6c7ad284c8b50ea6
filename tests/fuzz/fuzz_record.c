/* fuzz_record.c - libFuzzer target over every parser of text a DNS server or a web
 * server controls (record.h): the bytes as a TLS-RPT record, as one rua destination,
 * as an MTA-STS TXT record and as an MTA-STS policy file; then as zone-file rdata, and
 * split at the first newline into an mx: pattern and a host name; and as the wire
 * rdata of a DNS answer (TXT, MX, A/AAAA: record-dns.h), whole and cut in two records. */
#include "escape.h"
#include "record-dns.h"
#include "record.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every problem has a message, a known severity, and points into the input. */
static void
check_problems(const GPtrArray *problems, gsize size)
{
  for (guint i = 0; i < problems->len; i++) {
    const RecordProblem *pr = g_ptr_array_index(problems, i);
    if (pr->message == NULL || pr->message[0] == '\0' || (int) pr->severity < RECORD_NOTE ||
        pr->severity > RECORD_ERROR || (pr->pos != RECORD_NO_POS && pr->pos > size))
      abort();
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* A copy of exactly @size bytes: reading past it is an ASan error. */
  char *p = g_malloc(size > 0 ? size : 1);
  memcpy(p, data, size);

  g_autoptr(RecordTlsrpt) rec = record_tlsrpt_parse(p, size);
  check_problems(rec->problems, size);
  if (!rec->is_tlsrpt && size >= 10 && memcmp(p, "v=TLSRPTv1", 10) == 0)
    abort();
  for (guint i = 0; i < rec->rua->len; i++) {
    const RecordRua *r = g_ptr_array_index(rec->rua, i);
    if (r->uri == NULL || r->pos >= size)
      abort();
    g_autofree char *shown = tr_escape_terminal(r->uri);
    for (const char *c = shown; *c != '\0'; c++)
      if ((guchar) *c < 0x20 || *c == 0x7f)
        abort();              /* escaped text holds no control byte */
  }
  /* An empty record is never valid; a valid one has a destination. */
  if (record_ok(rec->problems) && (rec->rua->len == 0 || !rec->is_tlsrpt))
    abort();

  g_autoptr(GPtrArray) problems = record_problems_new();
  RecordRua *rua = record_rua_check(p, size, 0, problems);
  check_problems(problems, size);
  record_rua_free(rua);

  g_autoptr(RecordStsTxt) sts = record_sts_txt_parse(p, size);
  check_problems(sts->problems, size);
  if (record_ok(sts->problems) && (sts->id == NULL || !sts->is_sts))
    abort();

  g_autoptr(RecordStsPolicy) pol = record_sts_policy_parse(p, size);
  check_problems(pol->problems, size);
  if (record_ok(pol->problems) &&
      (pol->version == NULL || pol->mode == RECORD_STS_MODE_UNKNOWN || pol->max_age < 0 ||
       pol->max_age > RECORD_STS_MAX_AGE ||
       (pol->mx->len == 0 && pol->mode != RECORD_STS_MODE_NONE)))
    abort();

  g_autofree char *rdata = record_zone_rdata(p, size);
  if (rdata[0] != '"')
    abort();

  g_autofree char *text = g_strndup(p, size);
  char *nl = strchr(text, '\n');
  if (nl != NULL) {
    *nl = '\0';
    (void) record_sts_mx_match(text, nl + 1);
    /* A host matches itself as an exact pattern. */
    if (nl[1] != '\0' && nl[1] != '*' && !record_sts_mx_match(nl + 1, nl + 1))
      abort();
  }
  /* The bytes as DNS rdata: one record, and two records cut at the first byte's value. */
  RecordDnsAnswer ans = { 0 };
  ans.rdata = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
  g_ptr_array_add(ans.rdata, g_bytes_new(p, size));
  if (size > 1) {
    gsize cut = 1 + (guchar) p[0] % (size - 1);
    g_ptr_array_add(ans.rdata, g_bytes_new(p + 1, cut - 1));
    g_ptr_array_add(ans.rdata, g_bytes_new(p + cut, size - cut));
  }
  g_autoptr(GPtrArray) txt = record_dns_txt(&ans);
  for (guint i = 0; i < txt->len; i++)
    if (g_bytes_get_size(g_ptr_array_index(txt, i)) > size)
      abort();
  g_autoptr(GPtrArray) mx = record_dns_mx(&ans);
  for (guint i = 0; i < mx->len; i++) {
    const RecordDnsMx *m = g_ptr_array_index(mx, i);
    for (const char *c = m->host; *c != '\0'; c++)
      if ((guchar) *c < 0x21 || (guchar) *c > 0x7e)
        abort();              /* odd bytes are shown as \DDD: the name is printable */
    if (m->preference > 65535)
      abort();
  }
  for (guint i = 0; i < ans.rdata->len; i++)
    if (record_dns_txt_nstrings(g_ptr_array_index(ans.rdata, i)) > size)
      abort();
  g_free(record_dns_address(&ans));
  g_ptr_array_unref(ans.rdata);

  g_free(p);
  return 0;
}
