/* decode.h - turn a report payload (gzip, zip or plain JSON) into JSON bytes. */
#ifndef TLSRPT_DECODE_H
#define TLSRPT_DECODE_H

#include "common.h"

typedef enum {
  DECODE_FORMAT_JSON,
  DECODE_FORMAT_GZIP,
  DECODE_FORMAT_ZIP,
} DecodeFormat;

/* "json", "json.gz" or "zip": the extension under which the original bytes are kept. */
const char *decode_format_extension(DecodeFormat format);

/* What the first bytes of @data say the payload is: gzip (1f 8b), zip (PK\3\4), or a
 * JSON object ('{' after an optional UTF-8 BOM and JSON white space). FALSE when none
 * (*format untouched). The one sniffer: the MIME walk and the file source ask it too. */
gboolean decode_sniff(const guint8 *data, gsize len, DecodeFormat *format);

/* Detect the payload by magic bytes (1f 8b gzip, PK\3\4 zip, else JSON after optional
 * UTF-8 BOM and white space starting with '{'), then inflate with zlib directly:
 * CRC and ISIZE checked, trailing bytes after the (last) gzip member tolerated when they
 * are white space or NULs, concatenated members joined, and never more than @max_size
 * output bytes held (DECODE_ERROR_TOO_LARGE as soon as the cap is passed).
 * Zip: the first entry whose name ends in .json (else the first entry), stored or
 * deflated, CRC checked.
 * Returns (transfer full) the JSON bytes, with *format_out set; NULL + DECODE_ERROR. */
GBytes *decode_payload(GBytes *payload, gsize max_size, DecodeFormat *format_out,
                       GError **error);

/* Streaming gzip inflater, for callers that push bytes in pieces (tests push one byte
 * at a time). decode_payload() is built on it. */
typedef struct DecodeGzip DecodeGzip;
DecodeGzip *decode_gzip_new(gsize max_size);
gboolean decode_gzip_push(DecodeGzip *z, const guint8 *data, gsize len, GError **error);
/* Checks that the stream really ended; returns (transfer full) the output. */
GBytes *decode_gzip_finish(DecodeGzip *z, GError **error);
void decode_gzip_free(DecodeGzip *z);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DecodeGzip, decode_gzip_free)

#endif
