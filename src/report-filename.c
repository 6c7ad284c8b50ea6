/* report-filename.c - the file names of RFC 8460 §5.1 (see report-filename.h). */
#include "report-filename.h"
#include "report-datetime.h"

#include <string.h>

static gboolean
report_has_suffix_ci(const char *s, gsize len, const char *suffix)
{
  gsize n = strlen(suffix);
  return len >= n && g_ascii_strncasecmp(s + len - n, suffix, n) == 0;
}

static gboolean
report_filename_field_ok(const char *s, gsize len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++) {
    guchar c = (guchar) s[i];
    if (c < 0x20 || c == 0x7f)
      return FALSE;
  }
  return g_utf8_validate_len(s, len, NULL);
}

gsize
report_filename_extension_len(const char *name, gsize len)
{
  gsize n = 0;
  if (report_has_suffix_ci(name, len, ".gz"))
    n = 3;
  else if (report_has_suffix_ci(name, len, ".zip"))
    n = 4;
  if (report_has_suffix_ci(name, len - n, ".json"))
    n += 5;
  return n;
}

gboolean
report_filename_has_extension(const char *name)
{
  return name != NULL && report_filename_extension_len(name, strlen(name)) > 0;
}

/* The grammar; @out (nullable) gets the fields. */
static gboolean
report_filename_read(const char *filename, ReportFilename *out)
{
  if (filename == NULL)
    return FALSE;

  const char *base = filename;
  for (const char *p = filename; *p != '\0'; p++)
    if (*p == '/' || *p == '\\')
      base = p + 1;
  gsize len = strlen(base);
  len -= report_filename_extension_len(base, len);

  const char *field[5];
  gsize flen[5];
  guint n = 0;
  const char *start = base;
  for (const char *p = base;; p++) {
    if (p == base + len || *p == '!') {
      if (n == 5)
        return FALSE;
      field[n] = start;
      flen[n] = (gsize) (p - start);
      if (!report_filename_field_ok(field[n], flen[n]))
        return FALSE;
      n++;
      if (p == base + len)
        break;
      start = p + 1;
    }
  }
  if (n < 4)
    return FALSE;

  gint64 begin, end;
  if (!report_datetime_parse_stamp(field[2], flen[2], FALSE, &begin) ||
      !report_datetime_parse_stamp(field[3], flen[3], TRUE, &end))
    return FALSE;
  if (out == NULL)
    return TRUE;

  out->sender = g_strndup(field[0], flen[0]);
  out->policy_domain = g_strndup(field[1], flen[1]);
  out->begin = begin;
  out->end = end;
  out->unique_id = n == 5 ? g_strndup(field[4], flen[4]) : NULL;
  return TRUE;
}

gboolean
report_filename_parse(const char *filename, ReportFilename *out)
{
  g_return_val_if_fail(out != NULL, FALSE);
  memset(out, 0, sizeof *out);
  return report_filename_read(filename, out);
}

gboolean
report_filename_matches(const char *filename)
{
  return report_filename_read(filename, NULL);
}

void
report_filename_clear(ReportFilename *f)
{
  if (f == NULL)
    return;
  g_free(f->sender);
  g_free(f->policy_domain);
  g_free(f->unique_id);
  memset(f, 0, sizeof *f);
}

