/* report-datetime.c - the datetimes of reports and their file names: RFC 3339 in,
 * "YYYY-MM-DDTHH:MM:SSZ" out, and the stamps of §5.1 file names.
 *
 * Decisions where RFC 8460 is silent:
 * - Datetimes must fall in 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z after applying
 *   the zone offset. Fractional seconds are dropped; a leap second reads as :59.
 * - In file names, an 8-digit stamp is a compact date (YYYYMMDD), not epoch seconds:
 *   epoch values that short predate TLS reporting by decades. A date-only end stamp
 *   means the last second of that day. */
#include "report-datetime.h"

#include <string.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static gint64
report_datetime_days_from_civil(gint64 y, guint m, guint d)
{
  y -= m <= 2;
  gint64 era = (y >= 0 ? y : y - 399) / 400;
  guint yoe = (guint) (y - era * 400);
  guint doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  guint doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (gint64) doe - 719468;
}

static void
report_datetime_civil_from_days(gint64 z, gint64 *y_out, guint *m_out, guint *d_out)
{
  z += 719468;
  gint64 era = (z >= 0 ? z : z - 146096) / 146097;
  guint doe = (guint) (z - era * 146097);
  guint yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  gint64 y = (gint64) yoe + era * 400;
  guint doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  guint mp = (5 * doy + 2) / 153;
  guint d = doy - (153 * mp + 2) / 5 + 1;
  guint m = mp < 10 ? mp + 3 : mp - 9;
  *y_out = y + (m <= 2);
  *m_out = m;
  *d_out = d;
}

static guint
report_datetime_days_in_month(guint y, guint m)
{
  static const guint8 days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return days[m - 1];
}

/* Exactly @n ASCII digits at *p (bounded by @end); advances *p. */
static gboolean
report_datetime_digits(const char **p, const char *end, guint n, guint *out)
{
  if ((gsize) (end - *p) < n)
    return FALSE;
  guint v = 0;
  for (guint i = 0; i < n; i++) {
    char c = (*p)[i];
    if (!g_ascii_isdigit(c))
      return FALSE;
    v = v * 10 + (guint) (c - '0');
  }
  *p += n;
  *out = v;
  return TRUE;
}

static gboolean
report_datetime_civil_valid(guint y, guint mo, guint d)
{
  return y >= 1970 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 &&
         d <= report_datetime_days_in_month(y, mo);
}

/* The date-time grammar proper, on [s, end). @date_only (nullable) is set when only a
 * date was given. */
static gboolean
report_datetime_parse_range(const char *s, const char *end, gint64 *epoch_out,
                            gboolean *zoneless_out, gboolean *date_only)
{
  const char *p = s;
  guint y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  gint64 offset = 0;
  gboolean zoneless = TRUE;

  if (!report_datetime_digits(&p, end, 4, &y) || p == end || *p++ != '-' ||
      !report_datetime_digits(&p, end, 2, &mo) || p == end || *p++ != '-' ||
      !report_datetime_digits(&p, end, 2, &d))
    return FALSE;
  if (!report_datetime_civil_valid(y, mo, d))
    return FALSE;
  if (date_only != NULL)
    *date_only = p == end;
  if (p != end) {
    if (*p != 'T' && *p != 't' && *p != ' ')
      return FALSE;
    p++;
    if (!report_datetime_digits(&p, end, 2, &h) || p == end || *p++ != ':' ||
        !report_datetime_digits(&p, end, 2, &mi))
      return FALSE;
    if (p != end && *p == ':') {
      p++;
      if (!report_datetime_digits(&p, end, 2, &sec))
        return FALSE;
      if (p != end && (*p == '.' || *p == ',')) {
        p++;
        if (p == end || !g_ascii_isdigit(*p))
          return FALSE;
        while (p != end && g_ascii_isdigit(*p))
          p++;
      }
    }
    if (h > 23 || mi > 59 || sec > 60)
      return FALSE;
    if (sec == 60)
      sec = 59;
    if (p != end) {
      if ((*p == 'Z' || *p == 'z') && p + 1 == end) {
        zoneless = FALSE;
        p++;
      } else if (*p == '+' || *p == '-') {
        gint64 sign = *p == '-' ? -1 : 1;
        guint oh = 0, om = 0;
        p++;
        if (!report_datetime_digits(&p, end, 2, &oh))
          return FALSE;
        if (p != end && *p == ':')
          p++;
        if (p != end && !report_datetime_digits(&p, end, 2, &om))
          return FALSE;
        if (oh > 23 || om > 59)
          return FALSE;
        offset = sign * ((gint64) oh * 3600 + (gint64) om * 60);
        zoneless = FALSE;
      }
    }
  }
  if (p != end)
    return FALSE;

  gint64 epoch = report_datetime_days_from_civil(y, mo, d) * 86400 + (gint64) h * 3600 +
                 (gint64) mi * 60 + (gint64) sec - offset;
  if (epoch < 0 || epoch > REPORT_DATETIME_MAX)
    return FALSE;
  *epoch_out = epoch;
  if (zoneless_out != NULL)
    *zoneless_out = zoneless;
  return TRUE;
}

gboolean
report_datetime_parse(const char *s, gint64 *epoch_out, gboolean *zoneless)
{
  if (s == NULL)
    return FALSE;
  const char *end = s + strlen(s);
  while (s < end && g_ascii_isspace(*s))
    s++;
  while (end > s && g_ascii_isspace(end[-1]))
    end--;
  gint64 epoch = 0;
  gboolean zl = FALSE;
  if (!report_datetime_parse_range(s, end, &epoch, &zl, NULL))
    return FALSE;
  if (epoch_out != NULL)
    *epoch_out = epoch;
  if (zoneless != NULL)
    *zoneless = zl;
  return TRUE;
}

static void
report_datetime_put2(char *p, guint v)
{
  p[0] = (char) ('0' + v / 10 % 10);
  p[1] = (char) ('0' + v % 10);
}

void
report_datetime_format(gint64 epoch, char buf[21])
{
  epoch = CLAMP(epoch, 0, REPORT_DATETIME_MAX);
  gint64 days = epoch / 86400;
  guint secs = (guint) (epoch % 86400);
  gint64 y;
  guint m, d;
  report_datetime_civil_from_days(days, &y, &m, &d);
  report_datetime_put2(buf, (guint) (y / 100));
  report_datetime_put2(buf + 2, (guint) (y % 100));
  buf[4] = '-';
  report_datetime_put2(buf + 5, m);
  buf[7] = '-';
  report_datetime_put2(buf + 8, d);
  buf[10] = 'T';
  report_datetime_put2(buf + 11, secs / 3600);
  buf[13] = ':';
  report_datetime_put2(buf + 14, secs / 60 % 60);
  buf[16] = ':';
  report_datetime_put2(buf + 17, secs % 60);
  buf[19] = 'Z';
  buf[20] = '\0';
}

gboolean
report_datetime_parse_stamp(const char *s, gsize len, gboolean is_end, gint64 *out)
{
  const char *end = s + len;
  gsize ndigits = 0;
  while (ndigits < len && g_ascii_isdigit(s[ndigits]))
    ndigits++;

  if (ndigits == len && len != 8) {
    if (len > 12)
      return FALSE;
    gint64 v = 0;
    for (gsize i = 0; i < len; i++)
      v = v * 10 + (s[i] - '0');
    if (v > REPORT_DATETIME_MAX)
      return FALSE;
    *out = v;
    return TRUE;
  }

  if (ndigits == 8) {
    const char *p = s;
    guint y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    report_datetime_digits(&p, end, 4, &y);
    report_datetime_digits(&p, end, 2, &mo);
    report_datetime_digits(&p, end, 2, &d);
    if (!report_datetime_civil_valid(y, mo, d))
      return FALSE;
    gboolean date_only = p == end;
    if (!date_only) {
      if ((*p != 'T' && *p != 't') || ++p == end || !report_datetime_digits(&p, end, 2, &h) ||
          !report_datetime_digits(&p, end, 2, &mi) || !report_datetime_digits(&p, end, 2, &sec))
        return FALSE;
      if (p != end && (*p == 'Z' || *p == 'z'))
        p++;
      if (p != end || h > 23 || mi > 59 || sec > 59)
        return FALSE;
    }
    gint64 v = report_datetime_days_from_civil(y, mo, d) * 86400 + (gint64) h * 3600 +
               (gint64) mi * 60 + (gint64) sec;
    if (date_only && is_end)
      v += 86399;
    *out = v;
    return TRUE;
  }

  gboolean date_only = FALSE;
  if (!report_datetime_parse_range(s, end, out, NULL, &date_only))
    return FALSE;
  if (date_only && is_end)
    *out += 86399;
  return TRUE;
}
