/* dkim-sign.c - sign a message for the tests and the benchmark with libopendkim's
 * signer (linked here, unlike the binary):
 *   dkim-sign -d DOMAIN -s SELECTOR -k KEY.private [-l] [-r] < MESSAGE > SIGNED
 * -l signs with l= (the body length), -r uses relaxed/relaxed (default simple/simple).
 * Writes the DKIM-Signature field, then the message unchanged (LF or CRLF as given).
 * With several files: dkim-sign ... -o OUTDIR FILE... signs each into OUTDIR.
 * -d @from signs each message with its From domain as d=; with -t SEL.txt (the
 * opendkim-genkey record of the key) and -K KEYS, a --dkim-keys line for every domain
 * signed is written to KEYS (the benchmark's signed corpus). */
#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <opendkim/dkim.h>

static DKIM_LIB *lib;

static gboolean
sign_one(const char *in, gsize len, const char *key, const char *domain, const char *sel,
         gboolean with_l, gboolean relaxed, GString *out)
{
  DKIM_STAT st;
  dkim_canon_t c = relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
  /* The body's length in CRLF form, for l=. */
  const char *start = strstr(in, "\r\n\r\n");
  if (start != NULL) {
    start += 4;
  } else {
    start = strstr(in, "\n\n");
    start = start != NULL ? start + 2 : in + len;
  }
  ssize_t blen = -1;
  if (with_l) {
    blen = 0;
    for (const char *p = start; p < in + len; p++)
      blen += *p == '\n' && (p == in || p[-1] != '\r') ? 2 : 1;
  }
  DKIM *d = dkim_sign(lib, (const u_char *) "test", NULL, (dkim_sigkey_t) key,
                      (const u_char *) sel, (const u_char *) domain, c, c,
                      DKIM_SIGN_RSASHA256, blen, &st);
  if (d == NULL) {
    fprintf(stderr, "dkim-sign: dkim_sign: %s\n", dkim_getresultstr(st));
    return FALSE;
  }
  st = dkim_chunk(d, (u_char *) in, len);
  if (st == DKIM_STAT_OK)
    st = dkim_chunk(d, NULL, 0);
  if (st == DKIM_STAT_OK)
    st = dkim_eom(d, NULL);
  u_char hdr[8192];
  if (st == DKIM_STAT_OK)
    st = dkim_getsighdr(d, hdr, sizeof hdr, strlen(DKIM_SIGNHEADER) + 2);
  if (st != DKIM_STAT_OK) {
    fprintf(stderr, "dkim-sign: %s: %s\n", dkim_getresultstr(st), dkim_geterror(d));
    dkim_free(d);
    return FALSE;
  }
  /* The field in the message's own line ends. */
  gboolean crlf = strstr(in, "\r\n") != NULL;
  g_autofree char *h = g_strdup((const char *) hdr);
  g_autofree char *lf = NULL;
  if (!crlf) {
    g_auto(GStrv) parts = g_strsplit(h, "\r\n", -1);
    lf = g_strjoinv("\n", parts);
  }
  g_string_append_printf(out, "%s: %s%s", DKIM_SIGNHEADER, crlf ? h : lf, crlf ? "\r\n" : "\n");
  g_string_append_len(out, in, (gssize) len);
  dkim_free(d);
  return TRUE;
}

int
main(int argc, char **argv)
{
  const char *domain = NULL, *sel = NULL, *keyfile = NULL, *outdir = NULL;
  const char *txtfile = NULL, *keysout = NULL;
  gboolean with_l = FALSE, relaxed = FALSE;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
      domain = argv[++i];
    else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
      sel = argv[++i];
    else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc)
      keyfile = argv[++i];
    else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
      outdir = argv[++i];
    else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
      txtfile = argv[++i];
    else if (strcmp(argv[i], "-K") == 0 && i + 1 < argc)
      keysout = argv[++i];
    else if (strcmp(argv[i], "-l") == 0)
      with_l = TRUE;
    else if (strcmp(argv[i], "-r") == 0)
      relaxed = TRUE;
    else
      break;
  }
  if (domain == NULL || sel == NULL || keyfile == NULL || (outdir != NULL) != (i < argc)) {
    fprintf(stderr, "usage: dkim-sign -d DOMAIN -s SELECTOR -k KEY [-l] [-r] "
                    "[-o OUTDIR FILE...] < MESSAGE\n");
    return 2;
  }
  g_autofree char *key = NULL;
  if (!g_file_get_contents(keyfile, &key, NULL, NULL)) {
    fprintf(stderr, "dkim-sign: cannot read %s\n", keyfile);
    return 1;
  }
  lib = dkim_init(NULL, NULL);
  const char *hdrs[] = { "from", "to", "subject", "date", "message-id", "mime-version",
                         "content-type", "tls-report-domain", "tls-report-submitter", NULL };
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, hdrs, sizeof(char **));
  unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
  if (outdir == NULL) {
    GString *in = g_string_new(NULL);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
      g_string_append_len(in, buf, (gssize) n);
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok = sign_one(in->str, in->len, key, domain, sel, with_l, relaxed, out);
    g_string_free(in, TRUE);
    if (!ok)
      return 1;
    fwrite(out->str, 1, out->len, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
  }
  g_autoptr(GString) out = g_string_new(NULL);
  gboolean from_domain = strcmp(domain, "@from") == 0;
  g_autoptr(GHashTable) domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (; i < argc; i++) {
    g_autofree char *in = NULL;
    gsize len = 0;
    if (!g_file_get_contents(argv[i], &in, &len, NULL)) {
      fprintf(stderr, "dkim-sign: cannot read %s\n", argv[i]);
      return 1;
    }
    g_string_truncate(out, 0);
    g_autofree char *d = NULL;
    if (from_domain) {
      /* The From field's address domain: "From: ... <x@d>" or "From: x@d". */
      const char *f = strstr(in, "\nFrom:");
      const char *at = f != NULL ? strchr(f + 1, '@') : NULL;
      const char *nl = f != NULL ? strchr(f + 1, '\n') : NULL;
      if (at == NULL || (nl != NULL && at > nl))
        continue;                       /* no From address: left out */
      gsize n = strcspn(at + 1, "> \t\r\n");
      d = g_ascii_strdown(at + 1, (gssize) n);
      g_hash_table_add(domains, g_strdup(d));
    }
    if (!sign_one(in, len, key, d != NULL ? d : domain, sel, with_l, relaxed, out))
      return 1;
    g_autofree char *base = g_path_get_basename(argv[i]);
    g_autofree char *path = g_build_filename(outdir, base, NULL);
    if (!g_file_set_contents(path, out->str, (gssize) out->len, NULL)) {
      fprintf(stderr, "dkim-sign: cannot write %s\n", path);
      return 1;
    }
  }
  if (txtfile != NULL && keysout != NULL) {
    g_autofree char *txt = NULL;
    if (!g_file_get_contents(txtfile, &txt, NULL, NULL) || strchr(txt, '\t') == NULL) {
      fprintf(stderr, "dkim-sign: cannot read %s\n", txtfile);
      return 1;
    }
    GString *keys = g_string_new(NULL);
    GHashTableIter it;
    gpointer d;
    g_hash_table_iter_init(&it, domains);
    while (g_hash_table_iter_next(&it, &d, NULL))
      g_string_append_printf(keys, "%s._domainkey.%s. %s", sel, (char *) d, strchr(txt, '\t') + 1);
    if (!g_file_set_contents(keysout, keys->str, (gssize) keys->len, NULL)) {
      fprintf(stderr, "dkim-sign: cannot write %s\n", keysout);
      return 1;
    }
    g_string_free(keys, TRUE);
  }
  dkim_close(lib);
  return 0;
}
