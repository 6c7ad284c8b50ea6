/* auth-results.c - RFC 8601 §2.2 Authentication-Results, parsed strictly: see
 * auth-results.h. Comments (nested, with quoted-pairs) and folding white space may
 * stand between any two tokens. */
#include "auth-results.h"

#include <string.h>

static void
auth_result_free(AuthResult *r)
{
  g_free(r->method);
  g_free(r->result);
  g_free(r->header_d);
  g_free(r->header_i);
  g_free(r);
}

void
auth_results_free(AuthResults *ar)
{
  if (ar == NULL)
    return;
  g_free(ar->authserv_id);
  g_ptr_array_unref(ar->results);
  g_free(ar);
}

typedef struct {
  const char *p;
  const char *end;
  gboolean bad;
} ArScan;

/* Skip white space and comments; an unclosed comment makes the field invalid. */
static void
ar_cfws(ArScan *s)
{
  while (s->p < s->end) {
    char c = *s->p;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      s->p++;
    } else if (c == '(') {
      guint depth = 0;
      while (s->p < s->end) {
        c = *s->p++;
        if (c == '\\' && s->p < s->end)
          s->p++;
        else if (c == '(')
          depth++;
        else if (c == ')' && --depth == 0)
          break;
      }
      if (depth != 0) {
        s->bad = TRUE;
        return;
      }
    } else {
      return;
    }
  }
}

static gboolean
ar_at(ArScan *s, char c)
{
  return s->p < s->end && *s->p == c;
}

/* A token: RFC 2045 token characters, and '@' '.' '/' for the property values. @stop
 * holds characters that end it besides white space and the specials. NULL when
 * empty. */
static char *
ar_token(ArScan *s, const char *stop)
{
  const char *start = s->p;
  while (s->p < s->end) {
    unsigned char c = (unsigned char) *s->p;
    if (c <= ' ' || c >= 0x7f || strchr("()<>,;:\\\"[]?=", c) != NULL ||
        (stop != NULL && strchr(stop, c) != NULL))
      break;
    s->p++;
  }
  return s->p > start ? g_strndup(start, (gsize) (s->p - start)) : NULL;
}

/* A value: a quoted-string or a token (with '@', '.', '/' allowed). */
static char *
ar_value(ArScan *s)
{
  if (!ar_at(s, '"'))
    return ar_token(s, NULL);
  GString *v = g_string_new(NULL);
  for (s->p++; s->p < s->end && *s->p != '"'; s->p++) {
    if (*s->p == '\\' && s->p + 1 < s->end)
      s->p++;
    g_string_append_c(v, *s->p);
  }
  if (!ar_at(s, '"')) {
    s->bad = TRUE;
    g_string_free(v, TRUE);
    return NULL;
  }
  s->p++;
  return g_string_free(v, FALSE);
}

/* A keyword (method, result, ptype, property): letters, digits, '-' and '_'. */
static char *
ar_keyword(ArScan *s)
{
  const char *start = s->p;
  while (s->p < s->end && (g_ascii_isalnum(*s->p) || *s->p == '-' || *s->p == '_'))
    s->p++;
  return s->p > start ? g_ascii_strdown(start, (gssize) (s->p - start)) : NULL;
}

/* One resinfo after its ';': method[/version] = result [reason=value] [ptype.prop=value]... */
static AuthResult *
ar_resinfo(ArScan *s)
{
  ar_cfws(s);
  g_autofree char *method = ar_keyword(s);
  if (method == NULL)
    return NULL;
  ar_cfws(s);
  if (ar_at(s, '/')) {
    s->p++;
    ar_cfws(s);
    const char *v = s->p;
    while (s->p < s->end && g_ascii_isdigit(*s->p))
      s->p++;
    if (s->p == v)
      return NULL;
    ar_cfws(s);
  }
  if (!ar_at(s, '='))
    return NULL;
  s->p++;
  ar_cfws(s);
  g_autofree char *result = ar_keyword(s);
  if (result == NULL)
    return NULL;
  AuthResult *r = g_new0(AuthResult, 1);
  r->method = g_steal_pointer(&method);
  r->result = g_steal_pointer(&result);
  for (;;) {
    ar_cfws(s);
    if (s->bad || s->p >= s->end || ar_at(s, ';'))
      return r;
    g_autofree char *ptype = ar_keyword(s);
    ar_cfws(s);
    g_autofree char *prop = NULL;
    if (ptype != NULL && strcmp(ptype, "reason") == 0 && ar_at(s, '=')) {
      /* reasonspec */
    } else if (ptype != NULL && ar_at(s, '.')) {
      s->p++;
      ar_cfws(s);
      prop = ar_token(s, NULL);
      ar_cfws(s);
      if (prop == NULL || !ar_at(s, '='))
        break;
    } else {
      break;
    }
    s->p++;
    ar_cfws(s);
    g_autofree char *value = ar_value(s);
    if (value == NULL)
      break;
    if (prop != NULL && strcmp(ptype, "header") == 0) {
      char **slot = g_ascii_strcasecmp(prop, "d") == 0   ? &r->header_d
                    : g_ascii_strcasecmp(prop, "i") == 0 ? &r->header_i
                                                         : NULL;
      if (slot != NULL && *slot == NULL)
        *slot = g_steal_pointer(&value);
    }
  }
  auth_result_free(r);
  return NULL;
}

AuthResults *
auth_results_parse(const char *value, gsize len)
{
  if (value == NULL || memchr(value, '\0', len) != NULL)
    return NULL;
  ArScan s = { value, value + len, FALSE };
  ar_cfws(&s);
  g_autofree char *id = ar_value(&s);
  if (id == NULL || *id == '\0')
    return NULL;
  g_autoptr(AuthResults) ar = g_new0(AuthResults, 1);
  ar->authserv_id = g_steal_pointer(&id);
  ar->results = g_ptr_array_new_with_free_func((GDestroyNotify) auth_result_free);
  ar_cfws(&s);
  while (s.p < s.end && g_ascii_isdigit(*s.p))   /* authres-version */
    s.p++;
  ar_cfws(&s);
  if (s.bad)
    return NULL;
  if (s.p >= s.end)
    return NULL;                      /* neither "; none" nor a resinfo */
  gboolean none = FALSE;
  while (s.p < s.end) {
    if (!ar_at(&s, ';'))
      return NULL;
    s.p++;
    ar_cfws(&s);
    if (s.p + 4 <= s.end && g_ascii_strncasecmp(s.p, "none", 4) == 0 && ar->results->len == 0) {
      const char *after = s.p + 4;
      ArScan t = { after, s.end, FALSE };
      ar_cfws(&t);
      if (!t.bad && t.p >= t.end) {
        none = TRUE;
        break;
      }
    }
    AuthResult *r = ar_resinfo(&s);
    if (r == NULL || s.bad) {
      if (r != NULL)
        auth_result_free(r);
      return NULL;
    }
    g_ptr_array_add(ar->results, r);
    ar_cfws(&s);
    if (s.bad)
      return NULL;
  }
  (void) none;
  return g_steal_pointer(&ar);
}
