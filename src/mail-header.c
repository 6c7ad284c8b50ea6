/* mail-header.c - the top header block's fields, from the raw bytes: see mail-header.h. */
#include "mail-header.h"

#include <string.h>

gsize
mail_header_skip_from_line(const guint8 *p, gsize len)
{
  if (len < 5 || memcmp(p, "From ", 5) != 0)
    return 0;
  const guint8 *nl = memchr(p, '\n', len);
  return nl != NULL ? (gsize) (nl - p) + 1 : len;
}

/* The end of the line starting at @i (the offset of its '\n', or @len). */
static gsize
mail_header_eol(const guint8 *p, gsize len, gsize i)
{
  const guint8 *nl = memchr(p + i, '\n', len - i);
  return nl != NULL ? (gsize) (nl - p) : len;
}

GPtrArray *
mail_header_fields(GBytes *message, const char *name, guint max)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  gsize len = 0;
  const guint8 *p = g_bytes_get_data(message, &len);
  gsize nlen = strlen(name);
  gsize i = p != NULL ? mail_header_skip_from_line(p, len) : len;
  while (i < len && out->len < max) {
    gsize eol = mail_header_eol(p, len, i);
    gsize line_len = eol - i;
    if (line_len > 0 && p[eol - 1] == '\r')
      line_len--;
    if (line_len == 0)
      break;                                  /* the end of the header block */
    gboolean match = line_len > nlen && g_ascii_strncasecmp((const char *) p + i, name, nlen) == 0;
    gsize colon = i + nlen;
    while (match && colon < i + line_len && (p[colon] == ' ' || p[colon] == '\t'))
      colon++;
    match = match && colon < i + line_len && p[colon] == ':';
    GString *value = match ? g_string_new_len((const char *) p + colon + 1,
                                              (gssize) (i + line_len - colon - 1))
                           : NULL;
    i = eol < len ? eol + 1 : len;
    /* Continuation lines (starting with white space) belong to this field. */
    while (i < len && (p[i] == ' ' || p[i] == '\t')) {
      eol = mail_header_eol(p, len, i);
      gsize l = eol - i;
      if (l > 0 && p[eol - 1] == '\r')
        l--;
      if (value != NULL)
        g_string_append_len(value, (const char *) p + i, (gssize) l);
      i = eol < len ? eol + 1 : len;
    }
    if (value != NULL)
      g_ptr_array_add(out, g_string_free(value, FALSE));
  }
  return out;
}
