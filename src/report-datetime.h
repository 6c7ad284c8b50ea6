/* report-datetime.h - datetimes of TLS reports: RFC 3339 date-times in (1970..9999,
 * any zone), epoch seconds UTC inside, "YYYY-MM-DDTHH:MM:SSZ" out; and the begin/end
 * stamps of §5.1 file names. No JSON library: the read side uses it as is. */
#ifndef TLSRPT_REPORT_DATETIME_H
#define TLSRPT_REPORT_DATETIME_H

#include <glib.h>

#define REPORT_DATETIME_MAX G_GINT64_CONSTANT(253402300799)   /* 9999-12-31T23:59:59Z */

/* Parse an RFC 3339 date-time (surrounding white space ignored; 'T', 't' or ' '
 * between date and time; fractional seconds dropped); zone-less stamps are UTC
 * (*zoneless set TRUE). Returns FALSE when unparseable or out of range. */
gboolean report_datetime_parse(const char *s, gint64 *epoch_out, gboolean *zoneless);

/* Format epoch seconds (clamped to 0 .. REPORT_DATETIME_MAX) as
 * "YYYY-MM-DDTHH:MM:SSZ" into @buf (at least 21 bytes). */
void report_datetime_format(gint64 epoch, char buf[21]);

/* A begin/end stamp of a §5.1 file name (@len bytes at @s): epoch digits, a compact
 * date (YYYYMMDD; as an end, the last second of that day), compact ISO 8601
 * (YYYYMMDDTHHMMSS[Z]) or RFC 3339 (a date-only end likewise). FALSE when none. */
gboolean report_datetime_parse_stamp(const char *s, gsize len, gboolean is_end, gint64 *out);

#endif
