/* record.c - TLS-RPT record, rua destinations, MTA-STS record and policy: see record.h.
 *
 * The grammars (RFC 8460 §3, RFC 8461 §3.1) share one shape, parsed by record_taglist():
 *   record      = version 1*(field-delim field) [field-delim]
 *   field-delim = *WSP ";" *WSP
 *   field       = name "=" value
 * with WSP = SP / HTAB. Each field is handed to the record's own field function. */
#include "record.h"

#include "escape.h"

#include <string.h>

#define IS_WSP(c) ((c) == ' ' || (c) == '\t')

static void
record_problem_free(gpointer p)
{
  RecordProblem *pr = p;
  g_free(pr->message);
  g_free(pr->fix);
  g_free(pr);
}

#define record_add record_problem_add

/* By position, those of the whole text last; g_ptr_array_sort() is stable. */
static gint
record_problem_cmp(gconstpointer a, gconstpointer b)
{
  const RecordProblem *x = *(RecordProblem *const *) a;
  const RecordProblem *y = *(RecordProblem *const *) b;
  return x->pos < y->pos ? -1 : x->pos > y->pos ? 1 : 0;
}

GPtrArray *
record_problems_new(void)
{
  return g_ptr_array_new_with_free_func(record_problem_free);
}

void
record_problem_add(GPtrArray *problems, RecordSeverity sev, gsize pos, const char *fix,
                   const char *fmt, ...)
{
  RecordProblem *pr = g_new0(RecordProblem, 1);
  pr->severity = sev;
  pr->pos = pos;
  va_list ap;
  va_start(ap, fmt);
  pr->message = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  pr->fix = g_strdup(fix);
  g_ptr_array_add(problems, pr);
}

int
record_worst(const GPtrArray *problems)
{
  int worst = -1;
  for (guint i = 0; problems != NULL && i < problems->len; i++) {
    const RecordProblem *pr = g_ptr_array_index(problems, i);
    worst = MAX(worst, (int) pr->severity);
  }
  return worst;
}

gboolean
record_ok(const GPtrArray *problems)
{
  return record_worst(problems) < RECORD_ERROR;
}

/* Bytes that no TXT value of these records may hold: controls, DEL, non-ASCII. One
 * problem for the first; the caller's parse goes on. */
static void
record_check_bytes(const char *p, gsize len, GPtrArray *problems)
{
  for (gsize i = 0; i < len; i++) {
    guchar c = (guchar) p[i];
    if ((c < 0x20 && c != '\t') || c >= 0x7f) {
      record_add(problems, RECORD_ERROR, i, "write the record in printable ASCII",
                 "a control or non-ASCII byte (0x%02x): the record is printable ASCII", c);
      return;
    }
  }
}

/* ---- domain names -------------------------------------------------------------- */

/* LDH labels of 1..63 bytes, at most 253 bytes, no leading/trailing '-' in a label.
 * Underscores are allowed (owner names such as _smtp._tls), '*' is not. */
static gboolean
record_is_hostname(const char *s, gsize len)
{
  if (len > 0 && s[len - 1] == '.')
    len--;
  if (len == 0 || len > 253)
    return FALSE;
  gsize label = 0;
  for (gsize i = 0; i <= len; i++) {
    char c = i < len ? s[i] : '.';
    if (c == '.') {
      if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
        return FALSE;
      label = 0;
    } else if (g_ascii_isalnum(c) || c == '-' || c == '_') {
      label++;
    } else {
      return FALSE;
    }
  }
  return TRUE;
}

static char *
record_strip_dot_down(const char *s)
{
  char *d = g_ascii_strdown(s, -1);
  gsize n = strlen(d);
  while (n > 0 && d[n - 1] == '.')
    d[--n] = '\0';
  return d;
}

gboolean
record_domain_within(const char *host, const char *domain)
{
  if (host == NULL || domain == NULL)
    return FALSE;
  g_autofree char *h = record_strip_dot_down(host);
  g_autofree char *d = record_strip_dot_down(domain);
  gsize hl = strlen(h), dl = strlen(d);
  if (hl == dl)
    return strcmp(h, d) == 0;
  return hl > dl && h[hl - dl - 1] == '.' && strcmp(h + hl - dl, d) == 0;
}

char *
record_domain_normalize(const char *name, GError **error)
{
  g_autofree char *ascii = g_hostname_to_ascii(name);
  if (ascii == NULL || strchr(ascii, '_') != NULL ||
      !record_is_hostname(ascii, strlen(ascii)) || strchr(ascii, '.') == NULL) {
    g_autofree char *shown = tr_escape_terminal(name);
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "'%s' is not a domain name (example.com)", shown);
    return NULL;
  }
  return record_strip_dot_down(ascii);
}

/* ---- rua destinations ------------------------------------------------------------ */

void
record_rua_free(RecordRua *rua)
{
  if (rua == NULL)
    return;
  g_free(rua->uri);
  g_free(rua->domain);
  g_free(rua);
}

static int
record_hex(char c)
{
  return g_ascii_xdigit_value(c);
}

/* The characters RFC 3986 allows unencoded anywhere in a URI (reserved and
 * unreserved), less the three RFC 8460 wants encoded. */
static gboolean
record_uri_char(char c)
{
  return g_ascii_isalnum(c) || strchr("-._~:/?#[]@$&'()*+=", c) != NULL;
}

/* Percent-decode @len bytes at @s into a new string; FALSE at a bad %-escape (*bad =
 * its offset) or an encoded NUL. */
static gboolean
record_pct_decode(const char *s, gsize len, GString *out, gsize *bad)
{
  for (gsize i = 0; i < len; i++) {
    if (s[i] != '%') {
      g_string_append_c(out, s[i]);
      continue;
    }
    int hi = i + 1 < len ? record_hex(s[i + 1]) : -1;
    int lo = i + 2 < len ? record_hex(s[i + 2]) : -1;
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
      *bad = i;
      return FALSE;
    }
    g_string_append_c(out, (char) (hi * 16 + lo));
    i += 2;
  }
  return TRUE;
}

/* RFC 5322 atext. */
static gboolean
record_atext(char c)
{
  return g_ascii_isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static void
record_check_mailto(RecordRua *rua, const char *s, gsize len, gsize pos, GPtrArray *problems)
{
  /* s: what follows "mailto:" (@pos its offset). hfields after '?' are allowed by
   * RFC 6068; senders ignore them. */
  const char *q = memchr(s, '?', len);
  gsize alen = q != NULL ? (gsize) (q - s) : len;
  if (q != NULL)
    record_add(problems, RECORD_NOTE, pos + alen, "remove the ?... part",
               "header fields in a mailto: destination are ignored by senders");
  /* "!10m": DMARC's size limit, not TLS-RPT's. */
  const char *bang = memchr(s, '!', alen);
  if (bang != NULL) {
    record_add(problems, RECORD_ERROR, pos + (gsize) (bang - s),
               "remove it (a DMARC size limit such as !10m has no meaning here), or "
               "write %21",
               "'!' must be percent-encoded in a destination (RFC 8460 section 3)");
    alen = (gsize) (bang - s);
  }
  g_autoptr(GString) addr = g_string_new(NULL);
  gsize bad = 0;
  if (!record_pct_decode(s, alen, addr, &bad)) {
    record_add(problems, RECORD_ERROR, pos + bad, "write % as %25, and %XX with two hex digits",
               "a bad percent-escape");
    return;
  }
  const char *at = strrchr(addr->str, '@');
  if (addr->len == 0) {
    record_add(problems, RECORD_ERROR, pos, "write mailto:tlsrpt@YOUR-DOMAIN",
               "mailto: without an address");
    return;
  }
  if (at == NULL) {
    record_add(problems, RECORD_ERROR, pos, "write mailto:LOCAL@DOMAIN",
               "the mailto: address has no '@'");
    return;
  }
  gsize llen = (gsize) (at - addr->str);
  const char *local = addr->str;
  gboolean local_ok = llen > 0 && local[0] != '.' && local[llen - 1] != '.';
  for (gsize i = 0; local_ok && i < llen; i++)
    if (!(record_atext(local[i]) || (local[i] == '.' && local[i + 1] != '.')))
      local_ok = FALSE;
  if (!local_ok)
    record_add(problems, RECORD_ERROR, pos,
               "use a plain local part (letters, digits, . - _ +), e.g. tlsrpt@",
               "the local part of the mailto: address is not a dot-atom");
  const char *domain = at + 1;
  gsize dpos = pos;
  for (gsize k = alen; k > 0; k--)
    if (s[k - 1] == '@') {
      dpos = pos + k;
      break;
    }
  if (domain[0] == '[') {
    record_add(problems, RECORD_WARNING, dpos, "use a domain name",
               "an address literal: many senders do not mail to one");
    return;
  }
  if (!record_is_hostname(domain, strlen(domain)) || strchr(domain, '_') != NULL) {
    record_add(problems, RECORD_ERROR, dpos, "write a host name such as example.com",
               "the domain of the mailto: address is not a host name");
    return;
  }
  if (strchr(domain, '.') == NULL)
    record_add(problems, RECORD_WARNING, dpos, "write the full domain (example.com)",
               "the mailto: domain has no dot");
  rua->domain = record_strip_dot_down(domain);
}

static void
record_check_https(RecordRua *rua, const char *s, gsize len, gsize pos, GPtrArray *problems)
{
  /* s: what follows "https:". */
  if (len < 2 || s[0] != '/' || s[1] != '/') {
    record_add(problems, RECORD_ERROR, pos, "write https://HOST/PATH",
               "an https: destination needs '//' and a host");
    return;
  }
  const char *hash = memchr(s, '#', len);
  if (hash != NULL) {
    record_add(problems, RECORD_ERROR, pos + (gsize) (hash - s), "remove the #... part",
               "an https: destination has no fragment (#)");
    len = (gsize) (hash - s);
  }
  gsize a = 2, e = a;
  while (e < len && s[e] != '/' && s[e] != '?')
    e++;
  const char *auth = s + a;
  gsize alen = e - a;
  const char *at = memchr(auth, '@', alen);
  if (at != NULL) {
    record_add(problems, RECORD_ERROR, pos + a, "remove the user name and password",
               "no user name or password (user@) in an https: destination");
    alen -= (gsize) (at + 1 - auth);
    a += (gsize) (at + 1 - auth);
    auth = at + 1;
  }
  gsize hlen = alen;
  if (alen > 0 && auth[0] == '[') {
    const char *close = memchr(auth, ']', alen);
    if (close == NULL) {
      record_add(problems, RECORD_ERROR, pos + a, "close the IPv6 address with ]",
                 "an unclosed [ in the host");
      return;
    }
    hlen = (gsize) (close - auth) + 1;
    record_add(problems, RECORD_NOTE, pos + a, NULL,
               "the host is an IP address: a name is easier to move");
  } else {
    const char *colon = memchr(auth, ':', alen);
    if (colon != NULL)
      hlen = (gsize) (colon - auth);
  }
  if (hlen == 0) {
    record_add(problems, RECORD_ERROR, pos + a, "write https://HOST/PATH",
               "the https: destination has no host");
    return;
  }
  if (hlen < alen) {
    const char *port = auth + hlen;
    gsize plen = alen - hlen;
    gboolean ok = plen >= 2 && port[0] == ':' && plen <= 6;
    guint v = 0;
    for (gsize i = 1; ok && i < plen; i++) {
      ok = g_ascii_isdigit(port[i]);
      v = v * 10 + (guint) (port[i] - '0');
    }
    if (!ok || v == 0 || v > 65535) {
      record_add(problems, RECORD_ERROR, pos + a + hlen, "write :PORT with 1..65535, or none",
                 "a bad port");
      return;
    }
  }
  if (auth[0] != '[') {
    g_autoptr(GString) host = g_string_new(NULL);
    gsize bad = 0;
    if (!record_pct_decode(auth, hlen, host, &bad) ||
        !record_is_hostname(host->str, host->len) || strchr(host->str, '_') != NULL) {
      record_add(problems, RECORD_ERROR, pos + a, "write a host name such as reports.example.com",
                 "the https: host is not a host name");
      return;
    }
    rua->domain = record_strip_dot_down(host->str);
  }
}

RecordRua *
record_rua_check(const char *uri, gsize len, gsize pos, GPtrArray *problems)
{
  RecordRua *rua = g_new0(RecordRua, 1);
  rua->uri = g_strndup(uri, len);
  rua->pos = pos;
  for (gsize i = 0; i < len; i++) {
    char c = uri[i];
    if (c == '%' || record_uri_char(c))
      continue;
    if (c == '!')
      continue;             /* said in the mailto: check, with its own advice */
    if (c == ',' || c == ';')
      record_add(problems, RECORD_ERROR, pos + i, "write , as %2C and ; as %3B",
                 "',' and ';' must be percent-encoded in a destination");
    else if (IS_WSP(c))
      record_add(problems, RECORD_ERROR, pos + i, "remove the white space, or write %20",
                 "white space inside a destination");
    else
      record_add(problems, RECORD_ERROR, pos + i, "percent-encode it (%XX)",
                 "a character (0x%02x) that a URI holds only percent-encoded", (guchar) c);
    break;
  }
  /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
  gsize k = 0;
  while (k < len && (g_ascii_isalnum(uri[k]) || uri[k] == '+' || uri[k] == '-' || uri[k] == '.'))
    k++;
  gboolean has_scheme = k > 0 && k < len && uri[k] == ':' && g_ascii_isalpha(uri[0]);
  if (!has_scheme) {
    rua->mailto = memchr(uri, '@', len) != NULL && memchr(uri, '/', len) == NULL;
    if (rua->mailto) {
      record_add(problems, RECORD_ERROR, pos, "write mailto: before the address",
                 "an e-mail address without mailto:");
      record_check_mailto(rua, uri, len, pos, problems);
    } else if (len > 0) {
      record_add(problems, RECORD_ERROR, pos, "write https:// before the host",
                 "not a URI: a destination is mailto:ADDRESS or https://HOST/PATH");
    }
    return rua;
  }
  g_autofree char *scheme = g_ascii_strdown(uri, (gssize) k);
  if (strncmp(uri, scheme, k) != 0)
    record_add(problems, RECORD_WARNING, pos, "write the scheme in lower case",
               "an upper-case scheme: some senders compare it as written");
  if (strcmp(scheme, "mailto") == 0) {
    rua->mailto = TRUE;
    record_check_mailto(rua, uri + k + 1, len - k - 1, pos + k + 1, problems);
  } else if (strcmp(scheme, "https") == 0) {
    record_check_https(rua, uri + k + 1, len - k - 1, pos + k + 1, problems);
  } else if (strcmp(scheme, "http") == 0) {
    record_add(problems, RECORD_ERROR, pos, "write https://",
               "http: destinations are not allowed (RFC 8460 section 3: https only)");
  } else {
    record_add(problems, RECORD_ERROR, pos, "use mailto:ADDRESS or https://HOST/PATH",
               "only mailto: and https: destinations are allowed");
  }
  return rua;
}

/* ---- the shared tag-list shape ---------------------------------------------------- */

/* Parse the field at @p[*i] (name "=" value) for one record; *i is left after the
 * value. The name is p[n0..n1), the value starts at v0 (after '='). */
typedef void (*RecordFieldFunc)(gpointer rec, const char *p, gsize len, gsize n0, gsize n1,
                                gsize *i, GPtrArray *problems);

/* A value of an unknown field: 1*(%x21-3A / %x3C / %x3E-7E), name (ALPHA / DIGIT)
 * *31(ALPHA / DIGIT / "_" / "-" / "."). Returns the end of the value. */
static gsize
record_extension(const char *p, gsize len, gsize n0, gsize n1, gsize v0, GPtrArray *problems)
{
  gboolean name_ok = n1 > n0 && n1 - n0 <= 32 && g_ascii_isalnum(p[n0]);
  for (gsize k = n0; name_ok && k < n1; k++)
    name_ok = g_ascii_isalnum(p[k]) || p[k] == '_' || p[k] == '-' || p[k] == '.';
  if (!name_ok)
    record_add(problems, RECORD_ERROR, n0, "a field name is letters, digits, _ - . (1-32)",
               "a malformed field name");
  gsize e = v0;
  while (e < len && p[e] != ';' && !IS_WSP(p[e]))
    e++;
  if (e == v0)
    record_add(problems, RECORD_ERROR, v0, "give the field a value, or remove it",
               "a field with an empty value");
  for (gsize k = v0; k < e; k++)
    if (p[k] == '=' || (guchar) p[k] < 0x21 || (guchar) p[k] > 0x7e) {
      record_add(problems, RECORD_ERROR, k, NULL,
                 "a field value holds no '=', control or non-ASCII bytes");
      break;
    }
  return e;
}

/* The version, then fields. @version: "v=TLSRPTv1". Returns whether the text begins with
 * the version exactly (the discovery rule). */
static gboolean
record_taglist(const char *p, gsize len, const char *version, const char *what,
               RecordFieldFunc field, gpointer rec, GPtrArray *problems)
{
  gsize vlen = strlen(version);
  gsize i = 0;
  gboolean exact = len >= vlen && memcmp(p, version, vlen) == 0;
  if (exact) {
    i = vlen;
    if (i < len && p[i] != ';' && !IS_WSP(p[i])) {
      record_add(problems, RECORD_ERROR, i, NULL,
                 "the version is followed by other text: write the version, then ';'");
      while (i < len && p[i] != ';' && !IS_WSP(p[i]))
        i++;
    }
  } else {
    while (i < len && IS_WSP(p[i]))
      i++;
    g_autofree char *fix = g_strdup_printf("begin the record with %s;", version);
    if (i > 0 && len - i >= vlen && memcmp(p + i, version, vlen) == 0) {
      record_add(problems, RECORD_ERROR, 0, "remove the white space before it",
                 "white space before the version: the record must begin with %s", version);
      i += vlen;
    } else if (len - i >= vlen && g_ascii_strncasecmp(p + i, version, vlen) == 0) {
      g_autofree char *cs = g_strdup_printf("write %s", version);
      record_add(problems, RECORD_ERROR, i, cs, "the version is case-sensitive");
      i += vlen;
    } else if (len - i >= 2 && g_ascii_strncasecmp(p + i, "v=", 2) == 0) {
      gboolean spf = len - i >= 6 && g_ascii_strncasecmp(p + i, "v=spf1", 6) == 0;
      gboolean sts = strcmp(what, "TLS-RPT") == 0 && len - i >= 7 &&
                     g_ascii_strncasecmp(p + i, "v=STSv1", 7) == 0;
      gboolean rpt = strcmp(what, "MTA-STS") == 0 && len - i >= 10 &&
                     g_ascii_strncasecmp(p + i, "v=TLSRPTv1", 10) == 0;
      record_add(problems, RECORD_ERROR, i, fix, "%s",
                 spf   ? "an SPF record, not a TLS-RPT record"
                 : sts ? "an MTA-STS record (it belongs at _mta-sts), not a TLS-RPT record"
                 : rpt ? "a TLS-RPT record (it belongs at _smtp._tls), not an MTA-STS record"
                       : "an unknown version");
      while (i < len && p[i] != ';')
        i++;
    } else if (len == 0) {
      record_add(problems, RECORD_ERROR, RECORD_NO_POS, fix, "the record is empty");
      return FALSE;
    } else {
      record_add(problems, RECORD_ERROR, i, fix, "the record does not begin with %s",
                 version);
    }
  }
  gboolean first = TRUE;
  while (i < len) {
    /* field-delim: *WSP ";" *WSP (the first field may follow a bad start directly) */
    gsize d = i;
    while (i < len && IS_WSP(p[i]))
      i++;
    if (i == len) {
      record_add(problems, RECORD_ERROR, d, "remove it (or end the record with ;)",
                 "white space at the end of the record");
      break;
    }
    if (p[i] == ';') {
      i++;
      while (i < len && IS_WSP(p[i]))
        i++;
      if (i == len)
        break;                /* a trailing ';' is allowed */
      if (p[i] == ';') {
        record_add(problems, RECORD_ERROR, i, "remove the extra ;", "an empty field (;;)");
        continue;
      }
    } else if (!(first && d == 0 && !exact)) {
      record_add(problems, RECORD_ERROR, i, "separate the fields with ;",
                 "a ';' is missing before this field");
    }
    first = FALSE;
    gsize n0 = i;
    while (i < len && p[i] != '=' && p[i] != ';' && !IS_WSP(p[i]))
      i++;
    if (i == len || p[i] != '=') {
      record_add(problems, RECORD_ERROR, n0, "write name=value",
                 "a field without '=' (fields are name=value)");
      while (i < len && p[i] != ';')
        i++;
      continue;
    }
    gsize n1 = i++;
    field(rec, p, len, n0, n1, &i, problems);
  }
  return exact;
}

/* ---- the TLS-RPT record ----------------------------------------------------------- */

static void
record_tlsrpt_field(gpointer data, const char *p, gsize len, gsize n0, gsize n1, gsize *i,
                    GPtrArray *problems)
{
  RecordTlsrpt *rec = data;
  gsize nlen = n1 - n0;
  gboolean rua = nlen == 3 && memcmp(p + n0, "rua", 3) == 0;
  if (!rua && nlen == 3 && g_ascii_strncasecmp(p + n0, "rua", 3) == 0) {
    record_add(problems, RECORD_ERROR, n0, "write rua= in lower case",
               "field names are case-sensitive");
    rua = TRUE;
  }
  if (!rua) {
    guint before = problems->len;
    gsize e = record_extension(p, len, n0, n1, *i, problems);
    g_autofree char *name = g_strndup(p + n0, nlen);
    if (problems->len > before)
      ; /* said */
    else if (g_ascii_strcasecmp(name, "ruf") == 0 || g_ascii_strcasecmp(name, "p") == 0)
      record_add(problems, RECORD_WARNING, n0, "remove it",
                 "a DMARC field: it means nothing in a TLS-RPT record");
    else
      record_add(problems, RECORD_NOTE, n0, NULL,
                 "an unknown field: senders ignore it (RFC 8460 allows extensions)");
    g_ptr_array_add(rec->extensions, g_strndup(p + n0, e - n0));
    *i = e;
    return;
  }
  if (rec->rua->len > 0)
    record_add(problems, RECORD_ERROR, n0, "join the destinations in one rua=, comma-separated",
               "a second rua= field");
  gsize j = *i;
  for (;;) {
    gsize u0 = j;
    while (j < len && p[j] != ',' && p[j] != ';' && !IS_WSP(p[j]))
      j++;
    if (j == u0) {
      record_add(problems, RECORD_ERROR, u0,
                 rec->rua->len == 0 ? "write rua=mailto:tlsrpt@YOUR-DOMAIN"
                                    : "remove the extra comma",
                 "an empty destination");
    } else {
      RecordRua *r = record_rua_check(p + u0, j - u0, u0, problems);
      for (guint k = 0; k < rec->rua->len; k++) {
        RecordRua *o = g_ptr_array_index(rec->rua, k);
        if (g_ascii_strcasecmp(o->uri, r->uri) == 0) {
          record_add(problems, RECORD_WARNING, u0, "remove the second one",
                     "the same destination twice: it would get each report twice");
          break;
        }
      }
      g_ptr_array_add(rec->rua, r);
    }
    gsize w = j;
    while (w < len && IS_WSP(p[w]))
      w++;
    if (w < len && p[w] == ',') {
      j = w + 1;
      while (j < len && IS_WSP(p[j]))
        j++;
      continue;
    }
    if (w < len && p[w] != ';' && w > j && (p[w] == 'm' || p[w] == 'h' || p[w] == 'M' ||
                                            p[w] == 'H')) {
      /* "mailto:a@x mailto:b@x": a list needs commas */
      record_add(problems, RECORD_ERROR, w, "separate destinations with ,",
                 "destinations are separated by commas, not spaces");
      j = w;
      continue;
    }
    break;
  }
  *i = j;
}

void
record_tlsrpt_free(RecordTlsrpt *rec)
{
  if (rec == NULL)
    return;
  g_ptr_array_unref(rec->rua);
  g_ptr_array_unref(rec->extensions);
  g_ptr_array_unref(rec->problems);
  g_free(rec);
}

RecordTlsrpt *
record_tlsrpt_parse(const char *value, gsize len)
{
  RecordTlsrpt *rec = g_new0(RecordTlsrpt, 1);
  rec->rua = g_ptr_array_new_with_free_func((GDestroyNotify) record_rua_free);
  rec->extensions = g_ptr_array_new_with_free_func(g_free);
  rec->problems = record_problems_new();
  record_check_bytes(value, len, rec->problems);
  rec->is_tlsrpt = record_taglist(value, len, "v=TLSRPTv1", "TLS-RPT", record_tlsrpt_field,
                                  rec, rec->problems);
  /* Another kind of record (v=spf1, v=STSv1): its missing rua says nothing new. */
  gsize w = 0;
  while (w < len && IS_WSP(value[w]))
    w++;
  gboolean foreign = len - w >= 2 && g_ascii_strncasecmp(value + w, "v=", 2) == 0 &&
                     !(len - w >= 10 && g_ascii_strncasecmp(value + w, "v=TLSRPTv1", 10) == 0);
  gboolean rua_named = foreign;
  for (guint k = 0; k < rec->problems->len; k++) {
    RecordProblem *pr = g_ptr_array_index(rec->problems, k);
    if (strstr(pr->message, "destination") != NULL)
      rua_named = TRUE;
  }
  if (rec->rua->len == 0 && !rua_named && len > 0)
    record_add(rec->problems, RECORD_ERROR, RECORD_NO_POS,
               "add rua=mailto:tlsrpt@YOUR-DOMAIN",
               "no rua= field: without a destination no report is sent");
  g_ptr_array_sort(rec->problems, record_problem_cmp);
  return rec;
}

/* ---- record generate ---------------------------------------------------------------- */

void
record_generated_free(RecordGenerated *gen)
{
  if (gen == NULL)
    return;
  g_free(gen->domain);
  g_free(gen->owner);
  g_free(gen->value);
  if (gen->strings)
    g_ptr_array_unref(gen->strings);
  g_free(gen->zone);
  if (gen->rua)
    g_ptr_array_unref(gen->rua);
  if (gen->problems)
    g_ptr_array_unref(gen->problems);
  g_free(gen);
}

GPtrArray *
record_split_strings(const char *value)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  gsize len = strlen(value);
  for (gsize i = 0; i < len || out->len == 0; i += 255)
    g_ptr_array_add(out, g_strndup(value + i, MIN(255, len - MIN(i, len))));
  return out;
}

char *
record_zone_rdata(const char *value, gsize len)
{
  GString *out = g_string_new(NULL);
  for (gsize i = 0; i < len || i == 0; i += 255) {
    if (i > 0)
      g_string_append_c(out, ' ');
    g_string_append_c(out, '"');
    for (gsize k = i; k < MIN(len, i + 255); k++) {
      guchar c = (guchar) value[k];
      if (c == '"' || c == '\\')
        g_string_append_printf(out, "\\%c", c);
      else if (c < 0x20 || c >= 0x7f)
        g_string_append_printf(out, "\\%03u", c);
      else
        g_string_append_c(out, (char) c);
    }
    g_string_append_c(out, '"');
    if (len == 0)
      break;
  }
  return g_string_free(out, FALSE);
}

RecordGenerated *
record_generate(const char *domain, const char *const *rua, GError **error)
{
  g_autoptr(RecordGenerated) gen = g_new0(RecordGenerated, 1);
  gen->domain = record_domain_normalize(domain, error);
  if (gen->domain == NULL) {
    g_prefix_error(error, "--domain: ");
    return NULL;
  }
  if (rua == NULL || rua[0] == NULL) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "give at least one --rua (mailto:ADDRESS or https://HOST/PATH)");
    return NULL;
  }
  gen->rua = g_ptr_array_new_with_free_func((GDestroyNotify) record_rua_free);
  gen->problems = record_problems_new();
  g_autoptr(GString) value = g_string_new("v=TLSRPTv1; rua=");
  for (guint n = 0; rua[n] != NULL; n++) {
    g_autoptr(GString) enc = g_string_new(NULL);
    for (const char *c = rua[n]; *c != '\0'; c++) {
      if (*c == ',')
        g_string_append(enc, "%2C");
      else if (*c == '!')
        g_string_append(enc, "%21");
      else if (*c == ';')
        g_string_append(enc, "%3B");
      else
        g_string_append_c(enc, *c);
    }
    g_autoptr(GPtrArray) problems = record_problems_new();
    RecordRua *r = record_rua_check(enc->str, enc->len, 0, problems);
    g_ptr_array_add(gen->rua, r);
    for (guint k = 0; k < problems->len; k++) {
      RecordProblem *pr = g_ptr_array_index(problems, k);
      if (pr->severity == RECORD_ERROR) {
        g_autofree char *shown = tr_escape_terminal(rua[n]);
        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--rua %s: %s%s%s%s", shown,
                    pr->message, pr->fix ? " (" : "", pr->fix ? pr->fix : "",
                    pr->fix ? ")" : "");
        return NULL;
      }
      g_autofree char *shown = tr_escape_terminal(rua[n]);
      record_add(gen->problems, pr->severity, RECORD_NO_POS, pr->fix, "%s: %s", shown,
                 pr->message);
    }
    for (guint k = 0; k < n; k++) {
      RecordRua *o = g_ptr_array_index(gen->rua, k);
      if (g_ascii_strcasecmp(o->uri, r->uri) == 0) {
        g_autofree char *shown = tr_escape_terminal(rua[n]);
        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--rua %s is given twice", shown);
        return NULL;
      }
    }
    if (n > 0)
      g_string_append_c(value, ',');
    g_string_append_len(value, enc->str, (gssize) enc->len);
  }
  /* What we built must pass our own validation. */
  g_autoptr(RecordTlsrpt) check = record_tlsrpt_parse(value->str, value->len);
  if (!record_ok(check->problems)) {
    RecordProblem *pr = g_ptr_array_index(check->problems, 0);
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "the record would be invalid: %s",
                pr->message);
    return NULL;
  }
  gen->value = g_strdup(value->str);
  gen->owner = g_strdup_printf("_smtp._tls.%s.", gen->domain);
  gen->strings = record_split_strings(gen->value);
  g_autofree char *rdata = record_zone_rdata(gen->value, strlen(gen->value));
  gen->zone = g_strdup_printf("%s 3600 IN TXT %s", gen->owner, rdata);
  return g_steal_pointer(&gen);
}

/* ---- MTA-STS TXT record --------------------------------------------------------------- */

static void
record_sts_field(gpointer data, const char *p, gsize len, gsize n0, gsize n1, gsize *i,
                 GPtrArray *problems)
{
  RecordStsTxt *rec = data;
  gsize nlen = n1 - n0;
  gboolean id = nlen == 2 && memcmp(p + n0, "id", 2) == 0;
  if (!id && nlen == 2 && g_ascii_strncasecmp(p + n0, "id", 2) == 0) {
    record_add(problems, RECORD_ERROR, n0, "write id= in lower case",
               "field names are case-sensitive");
    id = TRUE;
  }
  gsize v0 = *i;
  gsize e = v0;
  if (id)
    while (e < len && p[e] != ';' && !IS_WSP(p[e]))
      e++;
  else
    e = record_extension(p, len, n0, n1, v0, problems);
  if (!id) {
    record_add(problems, RECORD_NOTE, n0, NULL, "an unknown field: senders ignore it");
  } else {
    if (rec->id != NULL)
      record_add(problems, RECORD_ERROR, n0, "keep one id=", "a second id= field");
    gboolean ok = e > v0 && e - v0 <= 32;
    for (gsize k = v0; ok && k < e; k++)
      ok = g_ascii_isalnum(p[k]);
    if (!ok)
      record_add(problems, RECORD_ERROR, v0, "use 1-32 letters and digits, e.g. 20260101T0000",
                 "the id is 1 to 32 letters and digits");
    if (rec->id == NULL)
      rec->id = g_strndup(p + v0, e - v0);
  }
  *i = e;
}

RecordStsTxt *
record_sts_txt_parse(const char *value, gsize len)
{
  RecordStsTxt *rec = g_new0(RecordStsTxt, 1);
  rec->problems = record_problems_new();
  record_check_bytes(value, len, rec->problems);
  rec->is_sts = record_taglist(value, len, "v=STSv1", "MTA-STS", record_sts_field, rec,
                               rec->problems);
  if (rec->id == NULL && len > 0)
    record_add(rec->problems, RECORD_ERROR, RECORD_NO_POS,
               "add id=YYYYMMDDhhmm (change it whenever the policy changes)",
               "no id= field");
  g_ptr_array_sort(rec->problems, record_problem_cmp);
  return rec;
}

void
record_sts_txt_free(RecordStsTxt *rec)
{
  if (rec == NULL)
    return;
  g_free(rec->id);
  g_ptr_array_unref(rec->problems);
  g_free(rec);
}

/* ---- MTA-STS policy file ----------------------------------------------------------------- */

const char *
record_sts_mode_name(RecordStsMode mode)
{
  switch (mode) {
  case RECORD_STS_MODE_ENFORCE: return "enforce";
  case RECORD_STS_MODE_TESTING: return "testing";
  case RECORD_STS_MODE_NONE: return "none";
  case RECORD_STS_MODE_UNKNOWN: break;
  }
  return "unknown";
}

void
record_sts_policy_free(RecordStsPolicy *pol)
{
  if (pol == NULL)
    return;
  g_free(pol->version);
  g_ptr_array_unref(pol->mx);
  g_ptr_array_unref(pol->problems);
  g_free(pol);
}

/* sts-policy-mx-value: an optional "*." then a host name. */
static gboolean
record_sts_mx_pattern_ok(const char *v, gsize len)
{
  if (len >= 2 && v[0] == '*' && v[1] == '.') {
    v += 2;
    len -= 2;
  }
  return memchr(v, '_', len) == NULL && record_is_hostname(v, len);
}

RecordStsPolicy *
record_sts_policy_parse(const char *text, gsize len)
{
  RecordStsPolicy *pol = g_new0(RecordStsPolicy, 1);
  pol->mx = g_ptr_array_new_with_free_func(g_free);
  pol->problems = record_problems_new();
  pol->max_age = -1;
  GPtrArray *pr = pol->problems;
  gboolean seen_version = FALSE, seen_mode = FALSE, seen_age = FALSE;

  /* Bytes: UTF-8 is allowed by the RFC in extensions only; controls are not. */
  for (gsize k = 0; k < len; k++) {
    guchar c = (guchar) text[k];
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      record_add(pr, RECORD_ERROR, k, "remove it", "a control byte (0x%02x) in the policy", c);
      break;
    }
  }
  if (len == 0)
    record_add(pr, RECORD_ERROR, RECORD_NO_POS, "write version, mode, mx and max_age lines",
               "the policy is empty");
  gsize i = 0;
  guint line = 0;
  while (i < len) {
    line++;
    gsize l0 = i;
    const char *nl = memchr(text + i, '\n', len - i);
    gsize le = nl != NULL ? (gsize) (nl - text) : len;
    i = nl != NULL ? le + 1 : len;
    gsize e = le;
    if (e > l0 && text[e - 1] == '\r')
      e--;
    if (memchr(text + l0, '\r', e - l0) != NULL)
      record_add(pr, RECORD_ERROR, l0, "end lines with LF or CRLF", "a bare CR in a line");
    if (e == l0) {
      if (i < len)
        record_add(pr, RECORD_WARNING, l0, "remove the empty line",
                   "an empty line: the policy grammar has none, some senders reject it");
      continue;
    }
    const char *colon = memchr(text + l0, ':', e - l0);
    if (colon == NULL) {
      record_add(pr, RECORD_ERROR, l0, "write key: value", "a line without ':'");
      continue;
    }
    gsize k1 = (gsize) (colon - text);
    gsize v0 = k1 + 1;
    while (v0 < e && IS_WSP(text[v0]))
      v0++;
    gsize v1 = e;
    while (v1 > v0 && IS_WSP(text[v1 - 1]))
      v1--;
    g_autofree char *key = g_strndup(text + l0, k1 - l0);
    g_autofree char *val = g_strndup(text + v0, v1 - v0);
    g_autofree char *lkey = g_ascii_strdown(key, -1);
    gboolean known = strcmp(lkey, "version") == 0 || strcmp(lkey, "mode") == 0 ||
                     strcmp(lkey, "max_age") == 0 || strcmp(lkey, "mx") == 0;
    if (known && strcmp(key, lkey) != 0)
      record_add(pr, RECORD_WARNING, l0, "write the key in lower case",
                 "an upper-case key: some senders do not recognize it");
    if (!known) {
      gboolean ok = key[0] != '\0' && g_ascii_isalnum(key[0]) && strlen(key) <= 32;
      for (const char *c = key; ok && *c; c++)
        ok = g_ascii_isalnum(*c) || *c == '_' || *c == '-' || *c == '.';
      if (!ok)
        record_add(pr, RECORD_ERROR, l0, "a key is letters, digits, _ - . (1-32)",
                   "a malformed key");
      else
        record_add(pr, RECORD_NOTE, l0, NULL, "an unknown key: senders ignore it");
      continue;
    }
    if (val[0] == '\0') {
      record_add(pr, RECORD_ERROR, v0, "give it a value", "a key without a value");
      continue;
    }
    if (strcmp(lkey, "version") == 0) {
      if (seen_version)
        record_add(pr, RECORD_ERROR, l0, "keep one version line", "a second version line");
      seen_version = TRUE;
      if (strcmp(val, "STSv1") != 0)
        record_add(pr, RECORD_ERROR, v0, "write version: STSv1", "the version is not STSv1");
      if (pol->version == NULL)
        pol->version = g_strdup(val);
    } else if (strcmp(lkey, "mode") == 0) {
      if (seen_mode)
        record_add(pr, RECORD_ERROR, l0, "keep one mode line", "a second mode line");
      seen_mode = TRUE;
      RecordStsMode m = strcmp(val, "enforce") == 0   ? RECORD_STS_MODE_ENFORCE
                        : strcmp(val, "testing") == 0 ? RECORD_STS_MODE_TESTING
                        : strcmp(val, "none") == 0    ? RECORD_STS_MODE_NONE
                                                      : RECORD_STS_MODE_UNKNOWN;
      if (m == RECORD_STS_MODE_UNKNOWN)
        record_add(pr, RECORD_ERROR, v0, "write mode: testing, enforce or none (lower case)",
                   "an unknown mode");
      else if (pol->mode == RECORD_STS_MODE_UNKNOWN)
        pol->mode = m;
    } else if (strcmp(lkey, "max_age") == 0) {
      if (seen_age)
        record_add(pr, RECORD_ERROR, l0, "keep one max_age line", "a second max_age line");
      seen_age = TRUE;
      gsize n = strlen(val);
      gboolean digits = n >= 1 && n <= 10;
      for (gsize k = 0; digits && k < n; k++)
        digits = g_ascii_isdigit(val[k]);
      guint64 age = digits ? g_ascii_strtoull(val, NULL, 10) : 0;
      if (!digits)
        record_add(pr, RECORD_ERROR, v0, "write max_age: 604800 (seconds; a week)",
                   "max_age is 1 to 10 digits, in seconds");
      else if (age > RECORD_STS_MAX_AGE)
        record_add(pr, RECORD_ERROR, v0, "write max_age: 31557600 or less",
                   "max_age is over a year (31557600 s)");
      else {
        if (age < 86400)
          record_add(pr, RECORD_WARNING, v0, "use a week or more (604800) once it works",
                     "max_age under a day: senders refetch often and are protected little");
        if (pol->max_age < 0)
          pol->max_age = (gint64) age;
      }
    } else {
      if (!record_sts_mx_pattern_ok(val, strlen(val)))
        record_add(pr, RECORD_ERROR, v0, "write a host name, or *.DOMAIN for one label",
                   "an mx: pattern is a host name, optionally starting with *.");
      else {
        if (val[strlen(val) - 1] == '.')
          record_add(pr, RECORD_WARNING, v0, "remove the trailing dot",
                     "an mx: pattern with a trailing dot: some senders never match it");
        g_ptr_array_add(pol->mx, record_strip_dot_down(val));
      }
    }
  }
  if (!seen_version)
    record_add(pr, RECORD_ERROR, RECORD_NO_POS, "add version: STSv1", "no version line");
  if (!seen_mode)
    record_add(pr, RECORD_ERROR, RECORD_NO_POS, "add mode: testing (then enforce)",
               "no mode line");
  if (!seen_age)
    record_add(pr, RECORD_ERROR, RECORD_NO_POS, "add max_age: 604800", "no max_age line");
  if (pol->mx->len == 0 && pol->mode != RECORD_STS_MODE_NONE)
    record_add(pr, RECORD_ERROR, RECORD_NO_POS, "add an mx: line for every MX host",
               "no mx: line: no MX can match the policy");
  return pol;
}

gboolean
record_sts_mx_match(const char *pattern, const char *host)
{
  g_autofree char *p = record_strip_dot_down(pattern);
  g_autofree char *h = record_strip_dot_down(host);
  if (g_str_has_prefix(p, "*.")) {
    const char *dot = strchr(h, '.');
    return dot != NULL && dot != h && strcmp(dot + 1, p + 2) == 0;
  }
  return strcmp(p, h) == 0;
}
