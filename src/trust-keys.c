/* trust-keys.c - DKIM keys from the DNS or a file, kept for the run: see trust-keys.h. */
#include "trust-keys.h"

#include "escape.h"
#include "record-dns.h"

#include <string.h>

typedef struct {
  TrustKeyStatus status;
  char *record;
  char *why;
} TrustKeyAnswer;

static void
trust_key_answer_free(TrustKeyAnswer *a)
{
  g_free(a->record);
  g_free(a->why);
  g_free(a);
}

struct TrustKeys {
  GMutex lock;
  GHashTable *answers;        /* lower-case name -> TrustKeyAnswer */
  gboolean from_file;         /* a name not in the file does not exist */
  char *nameserver;
  double timeout;
  RecordDns *dns;             /* made at the first lookup */
  char *dns_error;            /* why it could not be made */
};

static TrustKeys *
trust_keys_alloc(void)
{
  TrustKeys *k = g_new0(TrustKeys, 1);
  g_mutex_init(&k->lock);
  k->answers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify) trust_key_answer_free);
  return k;
}

void
trust_keys_free(TrustKeys *keys)
{
  if (keys == NULL)
    return;
  g_hash_table_unref(keys->answers);
  g_free(keys->nameserver);
  g_free(keys->dns_error);
  record_dns_free(keys->dns);
  g_mutex_clear(&keys->lock);
  g_free(keys);
}

static char *
trust_keys_norm_name(const char *name, gsize len)
{
  while (len > 0 && name[len - 1] == '.')
    len--;
  return g_ascii_strdown(name, (gssize) len);
}

/* ---- the file --------------------------------------------------------------------- */

typedef struct {
  GPtrArray *tokens;          /* char* */
  GArray *quoted;             /* gboolean per token */
  int depth;                  /* open parentheses */
  guint first_line;
} TrustKeysRecord;

/* Tokens of one line into @rec; FALSE on an unterminated string. */
static gboolean
trust_keys_tokens(const char *line, TrustKeysRecord *rec)
{
  const char *p = line;
  while (*p != '\0') {
    if (*p == ' ' || *p == '\t' || *p == '\r') {
      p++;
    } else if (*p == ';') {
      break;
    } else if (*p == '(') {
      rec->depth++;
      p++;
    } else if (*p == ')') {
      rec->depth--;
      p++;
    } else if (*p == '"') {
      GString *s = g_string_new(NULL);
      for (p++; *p != '\0' && *p != '"'; p++) {
        if (*p == '\\' && p[1] != '\0') {
          p++;
          if (g_ascii_isdigit(p[0]) && g_ascii_isdigit(p[1]) && g_ascii_isdigit(p[2])) {
            g_string_append_c(s, (char) ((p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0')));
            p += 2;
            continue;
          }
        }
        g_string_append_c(s, *p);
      }
      if (*p != '"') {
        g_string_free(s, TRUE);
        return FALSE;
      }
      p++;
      g_ptr_array_add(rec->tokens, g_string_free(s, FALSE));
      gboolean q = TRUE;
      g_array_append_val(rec->quoted, q);
    } else {
      const char *start = p;
      while (*p != '\0' && !strchr(" \t\r;()\"", *p))
        p++;
      g_ptr_array_add(rec->tokens, g_strndup(start, (gsize) (p - start)));
      gboolean q = FALSE;
      g_array_append_val(rec->quoted, q);
    }
  }
  return TRUE;
}

/* One whole record into @keys; FALSE when it is not "NAME [TTL] [CLASS] TXT STRING...". */
static gboolean
trust_keys_add(TrustKeys *keys, TrustKeysRecord *rec)
{
  GPtrArray *t = rec->tokens;
  if (t->len < 3 || g_array_index(rec->quoted, gboolean, 0))
    return FALSE;
  guint i = 1;
  for (; i < t->len && !g_array_index(rec->quoted, gboolean, i); i++) {
    const char *tok = t->pdata[i];
    if (g_ascii_strcasecmp(tok, "TXT") == 0)
      break;
    if (strspn(tok, "0123456789") != strlen(tok) && g_ascii_strcasecmp(tok, "IN") != 0)
      return FALSE;
  }
  if (i >= t->len || g_array_index(rec->quoted, gboolean, i) || i + 1 >= t->len)
    return FALSE;
  GString *joined = g_string_new(NULL);
  for (guint k = i + 1; k < t->len; k++) {
    if (!g_array_index(rec->quoted, gboolean, k)) {
      g_string_free(joined, TRUE);
      return FALSE;
    }
    g_string_append(joined, t->pdata[k]);
  }
  const char *name = t->pdata[0];
  char *key = trust_keys_norm_name(name, strlen(name));
  if (g_hash_table_contains(keys->answers, key)) {
    g_free(key);                      /* the first record of a name is its key */
    g_string_free(joined, TRUE);
    return TRUE;
  }
  TrustKeyAnswer *a = g_new0(TrustKeyAnswer, 1);
  a->status = TRUST_KEY_FOUND;
  a->record = g_string_free(joined, FALSE);
  g_hash_table_insert(keys->answers, key, a);
  return TRUE;
}

TrustKeys *
trust_keys_new_file(const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) err = NULL;
  if (!g_file_get_contents(path, &text, NULL, &err)) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--dkim-keys %s: %s", path, err->message);
    return NULL;
  }
  g_autoptr(TrustKeys) keys = trust_keys_alloc();
  keys->from_file = TRUE;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  TrustKeysRecord rec = { g_ptr_array_new_with_free_func(g_free),
                          g_array_new(FALSE, FALSE, sizeof(gboolean)), 0, 0 };
  gboolean ok = TRUE;
  guint bad_line = 0;
  for (guint n = 0; lines[n] != NULL && ok; n++) {
    if (rec.tokens->len == 0 && rec.depth == 0)
      rec.first_line = n + 1;
    if (!trust_keys_tokens(lines[n], &rec) || rec.depth < 0) {
      ok = FALSE;
      bad_line = n + 1;
      break;
    }
    if (rec.depth > 0)
      continue;
    if (rec.tokens->len > 0 && !trust_keys_add(keys, &rec)) {
      ok = FALSE;
      bad_line = rec.first_line;
    }
    g_ptr_array_set_size(rec.tokens, 0);
    g_array_set_size(rec.quoted, 0);
  }
  if (ok && rec.depth > 0) {
    ok = FALSE;
    bad_line = rec.first_line;
  }
  g_ptr_array_unref(rec.tokens);
  g_array_unref(rec.quoted);
  if (!ok) {
    g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                "--dkim-keys %s: line %u is not a record 'NAME [TTL] [IN] TXT \"...\"'",
                path, bad_line);
    return NULL;
  }
  return g_steal_pointer(&keys);
}

/* ---- the DNS ---------------------------------------------------------------------- */

TrustKeys *
trust_keys_new_dns(const char *nameserver, double timeout)
{
  TrustKeys *keys = trust_keys_alloc();
  keys->nameserver = g_strdup(nameserver);
  keys->timeout = timeout;
  return keys;
}

/* Under keys->lock. */
static TrustKeyAnswer *
trust_keys_ask_dns(TrustKeys *keys, const char *name)
{
  TrustKeyAnswer *a = g_new0(TrustKeyAnswer, 1);
  if (keys->dns == NULL && keys->dns_error == NULL) {
    g_autoptr(GError) error = NULL;
    keys->dns = record_dns_new_plain(keys->nameserver, keys->timeout, &error);
    if (keys->dns == NULL)
      keys->dns_error = g_strdup(error->message);
  }
  if (keys->dns == NULL) {
    a->status = TRUST_KEY_TEMPFAIL;
    a->why = g_strdup(keys->dns_error);
    return a;
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(RecordDnsAnswer) ans = record_dns_query(keys->dns, name, RECORD_DNS_TXT, &error);
  if (ans == NULL) {
    a->status = TRUST_KEY_TEMPFAIL;
    a->why = g_strdup(error->message);
    return a;
  }
  g_autoptr(GPtrArray) txt = record_dns_txt(ans);
  GBytes *pick = NULL;
  for (guint i = 0; i < txt->len && pick == NULL; i++) {
    gsize n = 0;
    const char *d = g_bytes_get_data(txt->pdata[i], &n);
    if (n >= 7 && memcmp(d, "v=DKIM1", 7) == 0)
      pick = txt->pdata[i];
  }
  if (pick == NULL && txt->len > 0)
    pick = txt->pdata[0];
  if (pick == NULL) {
    a->status = TRUST_KEY_NOT_FOUND;
    return a;
  }
  gsize n = 0;
  const char *d = g_bytes_get_data(pick, &n);
  a->status = TRUST_KEY_FOUND;
  a->record = g_strndup(d != NULL ? d : "", n);   /* a NUL inside ends the record */
  return a;
}

TrustKeyStatus
trust_keys_lookup(const char *name, char **record, char **why, gpointer data)
{
  TrustKeys *keys = data;
  g_autofree char *key = trust_keys_norm_name(name, strlen(name));
  g_mutex_lock(&keys->lock);
  TrustKeyAnswer *a = g_hash_table_lookup(keys->answers, key);
  if (a == NULL && !keys->from_file) {
    a = trust_keys_ask_dns(keys, key);
    g_hash_table_insert(keys->answers, g_strdup(key), a);
  }
  TrustKeyStatus st = a != NULL ? a->status : TRUST_KEY_NOT_FOUND;
  *record = a != NULL ? g_strdup(a->record) : NULL;
  *why = a != NULL ? g_strdup(a->why) : NULL;
  g_mutex_unlock(&keys->lock);
  return st;
}
