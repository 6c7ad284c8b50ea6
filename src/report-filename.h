/* report-filename.h - the file names of RFC 8460 §5.1, the one authority on them:
 *   sender "!" policy-domain "!" begin "!" end ["!" unique-id] "." extension
 * with the report extensions ".json", ".json.gz", ".gz", ".zip", ".json.zip"
 * (case-insensitive). The MIME walk (is an attachment a report?), the file source (is a
 * loose file a report?) and the parser (metadata when the JSON lacks it) all ask here. */
#ifndef TLSRPT_REPORT_FILENAME_H
#define TLSRPT_REPORT_FILENAME_H

#include <glib.h>

/* Metadata from a §5.1 file name. */
typedef struct {
  char *sender;
  char *policy_domain;
  gint64 begin;                   /* epoch seconds (ISO-8601 stamps accepted) */
  gint64 end;
  char *unique_id;                /* NULL when absent */
} ReportFilename;

/* Parse a §5.1 file name (base name only: anything up to the last '/' or '\' is
 * ignored; the extension is optional). Fields are non-empty UTF-8 without control
 * bytes; begin and end as report_datetime_parse_stamp() reads them. Returns FALSE (and
 * leaves @out zeroed) when the name does not have that shape. */
gboolean report_filename_parse(const char *filename, ReportFilename *out);
void report_filename_clear(ReportFilename *f);

/* Whether report_filename_parse() would accept @filename (nothing allocated). */
gboolean report_filename_matches(const char *filename);

/* The length of the report extension @name (@len bytes) ends in, 0 when none. */
gsize report_filename_extension_len(const char *name, gsize len);
/* Whether @name (nullable) ends in a report extension. */
gboolean report_filename_has_extension(const char *name);

#endif
