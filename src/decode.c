/* decode.c - turn a report payload (gzip, zip or plain JSON) into JSON bytes.
 *
 * gzip and zip are inflated with zlib directly (GMime's gzip filter neither checks the
 * CRC nor reports errors). Output is streamed into a buffer that never holds more than
 * the caller's cap: a decompression bomb is stopped as soon as it passes the cap.
 *
 * Decisions where RFC 8460 is silent:
 * - gzip: concatenated members are joined; after the last member only white space and
 *   NUL bytes may follow (senders append "\r\n"); anything else is an error, since a
 *   report followed by unknown bytes cannot be trusted to be complete.
 * - zip: local file headers are walked in order; the first entry whose name ends in
 *   ".json" wins, else the first entry. Entries are stored (0) or deflated (8);
 *   encrypted, ZIP64 and other methods are refused. */
#include "decode.h"

#include <string.h>
#include <zlib.h>

#define DECODE_CHUNK (64u * 1024)

const char *
decode_format_extension(DecodeFormat format)
{
  switch (format) {
  case DECODE_FORMAT_GZIP:
    return "json.gz";
  case DECODE_FORMAT_ZIP:
    return "zip";
  case DECODE_FORMAT_JSON:
    break;
  }
  return "json";
}

gboolean
decode_sniff(const guint8 *data, gsize len, DecodeFormat *format)
{
  DecodeFormat f;
  if (data == NULL)
    return FALSE;
  if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
    f = DECODE_FORMAT_GZIP;
  } else if (len >= 4 && data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4) {
    f = DECODE_FORMAT_ZIP;
  } else {
    gsize i = 0;
    if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf)
      i = 3;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
      i++;
    if (i == len || data[i] != '{')
      return FALSE;
    f = DECODE_FORMAT_JSON;
  }
  if (format != NULL)
    *format = f;
  return TRUE;
}

/* TRUE when @data is a JSON object by its first bytes. */
static gboolean
decode_looks_like_json(const guint8 *data, gsize len)
{
  DecodeFormat f;
  return decode_sniff(data, len, &f) && f == DECODE_FORMAT_JSON;
}

static void
decode_set_too_large(GError **error, gsize max_size)
{
  g_set_error(error, DECODE_ERROR, DECODE_ERROR_TOO_LARGE,
              "inflated report exceeds %" G_GSIZE_FORMAT " bytes (max-report-size)", max_size);
}

/* Append @len bytes to @out unless that would pass @max_size. */
static gboolean
decode_append_capped(GByteArray *out, const guint8 *data, gsize len, gsize max_size,
                     GError **error)
{
  if (len > max_size || out->len > max_size - len) {
    decode_set_too_large(error, max_size);
    return FALSE;
  }
  if (len > 0)
    g_byte_array_append(out, data, (guint) len);
  return TRUE;
}

static guint32 decode_le32(const guint8 *p);

/* ---- streaming gzip ------------------------------------------------------ */

typedef enum {
  DECODE_GZIP_START,      /* nothing seen yet: a member must start */
  DECODE_GZIP_MEMBER,     /* inside a member */
  DECODE_GZIP_BETWEEN,    /* a member ended: another member, or trailing bytes */
  DECODE_GZIP_TRAILING,   /* white space / NULs after the last member */
} DecodeGzipState;

/* Each thread keeps one gzip inflater and its output chunk between payloads: zlib's
 * state and window and the chunk are some 100 kB, allocated and freed for every report
 * otherwise. A DecodeGzip takes the thread's spare (or makes its own) and gives it back
 * when freed. */
typedef struct {
  z_stream zs;            /* inflateInit2(16 + MAX_WBITS) done */
  guint8 *chunk;          /* DECODE_CHUNK bytes */
} DecodeInflater;

static void
decode_inflater_free(gpointer data)
{
  DecodeInflater *inf = data;
  if (inf == NULL)
    return;
  inflateEnd(&inf->zs);
  g_free(inf->chunk);
  g_free(inf);
}

static GPrivate decode_spare_inflater = G_PRIVATE_INIT(decode_inflater_free);

/* The thread's spare inflater, reset, or a new one; NULL when zlib cannot start. */
static DecodeInflater *
decode_inflater_take(int *ret)
{
  DecodeInflater *inf = g_private_get(&decode_spare_inflater);
  if (inf != NULL) {
    g_private_set(&decode_spare_inflater, NULL);
    *ret = inflateReset(&inf->zs);
    if (*ret == Z_OK)
      return inf;
    decode_inflater_free(inf);
  }
  inf = g_new0(DecodeInflater, 1);
  *ret = inflateInit2(&inf->zs, 16 + MAX_WBITS);
  if (*ret != Z_OK) {
    g_free(inf);
    return NULL;
  }
  inf->chunk = g_malloc(DECODE_CHUNK);
  return inf;
}

static void
decode_inflater_give_back(DecodeInflater *inf)
{
  if (inf == NULL)
    return;
  if (g_private_get(&decode_spare_inflater) == NULL)
    g_private_set(&decode_spare_inflater, inf);
  else
    decode_inflater_free(inf);
}

struct DecodeGzip {
  DecodeInflater *inf;    /* NULL until the first member starts */
  DecodeGzipState state;
  GByteArray *out;
  gsize max_size;
  guint members;
  GError *failed;         /* the first error; every later call repeats it */
};

DecodeGzip *
decode_gzip_new(gsize max_size)
{
  DecodeGzip *z = g_new0(DecodeGzip, 1);
  z->out = g_byte_array_new();
  z->max_size = max_size;
  z->state = DECODE_GZIP_START;
  return z;
}

void
decode_gzip_free(DecodeGzip *z)
{
  if (z == NULL)
    return;
  decode_inflater_give_back(z->inf);
  if (z->out != NULL)
    g_byte_array_unref(z->out);
  g_clear_error(&z->failed);
  g_free(z);
}

static gboolean
decode_gzip_fail(DecodeGzip *z, GError **error, GError *err)
{
  g_assert(z->failed == NULL);
  z->failed = err;
  /* Whatever was inflated is of no use any more. */
  g_byte_array_set_size(z->out, 0);
  if (error != NULL)
    *error = g_error_copy(err);
  return FALSE;
}

static GError *
decode_gzip_zlib_error(int ret, const z_stream *zs)
{
  const char *msg = zs->msg != NULL ? zs->msg : zError(ret);
  if (ret == Z_DATA_ERROR && strcmp(msg, "incorrect data check") == 0)
    return g_error_new(DECODE_ERROR, DECODE_ERROR_GZIP, "gzip CRC mismatch (corrupt data)");
  if (ret == Z_DATA_ERROR && strcmp(msg, "incorrect length check") == 0)
    return g_error_new(DECODE_ERROR, DECODE_ERROR_GZIP,
                       "gzip length mismatch (ISIZE does not match the data)");
  if (ret == Z_NEED_DICT)
    return g_error_new(DECODE_ERROR, DECODE_ERROR_GZIP,
                       "gzip stream needs a preset dictionary");
  return g_error_new(DECODE_ERROR, DECODE_ERROR_GZIP, "bad gzip data: %s", msg);
}

/* Start (or restart) zlib for a new member. */
static gboolean
decode_gzip_begin_member(DecodeGzip *z, GError **error)
{
  int ret;
  if (z->inf == NULL) {
    z->inf = decode_inflater_take(&ret);
    if (z->inf == NULL)
      return decode_gzip_fail(z, error,
                              g_error_new(DECODE_ERROR, DECODE_ERROR_GZIP,
                                          "cannot start gzip inflater: %s", zError(ret)));
  } else {
    ret = inflateReset(&z->inf->zs);
    if (ret != Z_OK)
      return decode_gzip_fail(z, error, decode_gzip_zlib_error(ret, &z->inf->zs));
  }
  z->state = DECODE_GZIP_MEMBER;
  return TRUE;
}

static gboolean
decode_gzip_is_trailing_byte(guint8 c)
{
  return c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

gboolean
decode_gzip_push(DecodeGzip *z, const guint8 *data, gsize len, GError **error)
{
  g_return_val_if_fail(z != NULL, FALSE);
  g_return_val_if_fail(data != NULL || len == 0, FALSE);

  if (z->failed != NULL) {
    if (error != NULL)
      *error = g_error_copy(z->failed);
    return FALSE;
  }

  while (len > 0) {
    switch (z->state) {
    case DECODE_GZIP_START:
      if (!decode_gzip_begin_member(z, error))
        return FALSE;
      continue;

    case DECODE_GZIP_BETWEEN:
      if (data[0] == 0x1f) {
        if (!decode_gzip_begin_member(z, error))
          return FALSE;
        continue;
      }
      z->state = DECODE_GZIP_TRAILING;
      continue;

    case DECODE_GZIP_TRAILING:
      for (gsize i = 0; i < len; i++) {
        if (!decode_gzip_is_trailing_byte(data[i]))
          return decode_gzip_fail(z, error,
                                  g_error_new(DECODE_ERROR, DECODE_ERROR_GZIP,
                                              "trailing garbage after gzip stream"));
      }
      return TRUE;

    case DECODE_GZIP_MEMBER:
      break;
    }

    /* Inside a member: feed at most what zlib's uInt can hold per round. */
    z_stream *zs = &z->inf->zs;
    uInt feed = len > G_MAXUINT32 ? G_MAXUINT32 : (uInt) len;
    zs->next_in = (Bytef *) data;
    zs->avail_in = feed;
    int ret;
    do {
      zs->next_out = z->inf->chunk;
      zs->avail_out = DECODE_CHUNK;
      ret = inflate(zs, Z_NO_FLUSH);
      if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
        return decode_gzip_fail(z, error, decode_gzip_zlib_error(ret, zs));
      gsize have = DECODE_CHUNK - zs->avail_out;
      GError *err = NULL;
      if (!decode_append_capped(z->out, z->inf->chunk, have, z->max_size, &err))
        return decode_gzip_fail(z, error, err);
      if (ret == Z_BUF_ERROR && zs->avail_in > 0 && have == 0)
        return decode_gzip_fail(z, error,
                                g_error_new(DECODE_ERROR, DECODE_ERROR_GZIP,
                                            "gzip inflater made no progress"));
      /* Continue while input remains or the output chunk was filled (more may be
       * pending inside zlib). */
    } while (ret == Z_OK && (zs->avail_in > 0 || zs->avail_out == 0));

    gsize used = feed - zs->avail_in;
    data += used;
    len -= used;
    if (ret == Z_STREAM_END) {
      z->members++;
      z->state = DECODE_GZIP_BETWEEN;
    }
  }
  return TRUE;
}

GBytes *
decode_gzip_finish(DecodeGzip *z, GError **error)
{
  g_return_val_if_fail(z != NULL, NULL);
  if (z->failed != NULL) {
    if (error != NULL)
      *error = g_error_copy(z->failed);
    return NULL;
  }
  if (z->state == DECODE_GZIP_START || z->state == DECODE_GZIP_MEMBER || z->members == 0) {
    decode_gzip_fail(z, error,
                     g_error_new(DECODE_ERROR, DECODE_ERROR_GZIP, "truncated gzip stream"));
    return NULL;
  }
  GBytes *res = g_byte_array_free_to_bytes(g_steal_pointer(&z->out));
  z->out = g_byte_array_new();
  z->failed = g_error_new(DECODE_ERROR, DECODE_ERROR_GZIP, "gzip stream already finished");
  return res;
}

/* ---- zip ------------------------------------------------------------------ */

#define DECODE_ZIP_LOCAL_SIG   0x04034b50u
#define DECODE_ZIP_DESC_SIG    0x08074b50u
#define DECODE_ZIP_LOCAL_LEN   30u

static guint16
decode_le16(const guint8 *p)
{
  return (guint16) (p[0] | (p[1] << 8));
}

static guint32
decode_le32(const guint8 *p)
{
  return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) |
         ((guint32) p[3] << 24);
}

static gboolean
decode_zip_error(GError **error, const char *reason)
{
  g_set_error(error, DECODE_ERROR, DECODE_ERROR_ZIP, "bad zip: %s", reason);
  return FALSE;
}

/* Inflate raw deflate data from @data (at most @len bytes) until the end of the deflate
 * stream; *consumed says how many input bytes it took. */
static GByteArray *
decode_zip_inflate(const guint8 *data, gsize len, gsize max_size, gsize *consumed,
                   GError **error)
{
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
    decode_zip_error(error, "cannot start inflater");
    return NULL;
  }
  g_autoptr(GByteArray) out = g_byte_array_new();
  g_autofree guint8 *chunk = g_malloc(DECODE_CHUNK);
  const guint8 *p = data;
  gsize left = len;
  int ret = Z_OK;
  gboolean ok = TRUE;
  while (ok) {
    if (zs.avail_in == 0 && left > 0) {
      uInt feed = left > G_MAXUINT32 ? G_MAXUINT32 : (uInt) left;
      zs.next_in = (Bytef *) p;
      zs.avail_in = feed;
      p += feed;
      left -= feed;
    }
    zs.next_out = chunk;
    zs.avail_out = DECODE_CHUNK;
    ret = inflate(&zs, Z_NO_FLUSH);
    gsize have = DECODE_CHUNK - zs.avail_out;
    if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
      g_set_error(error, DECODE_ERROR, DECODE_ERROR_ZIP, "bad zip: deflate data: %s",
                  zs.msg != NULL ? zs.msg : zError(ret));
      ok = FALSE;
    } else if (!decode_append_capped(out, chunk, have, max_size, error)) {
      ok = FALSE;
    } else if (ret == Z_STREAM_END) {
      break;
    } else if (zs.avail_in == 0 && left == 0 && have == 0) {
      ok = decode_zip_error(error, "truncated deflate data");
    } else if (ret == Z_BUF_ERROR && zs.avail_in > 0 && have == 0) {
      ok = decode_zip_error(error, "inflater made no progress");
    }
  }
  *consumed = (gsize) (p - data) - zs.avail_in;
  inflateEnd(&zs);
  return ok ? g_steal_pointer(&out) : NULL;
}

static gboolean
decode_name_is_json(const guint8 *name, gsize len)
{
  static const char ext[] = ".json";
  const gsize n = sizeof ext - 1;
  return len >= n && g_ascii_strncasecmp((const char *) name + len - n, ext, n) == 0;
}

/* Extract one entry whose local header starts at @off; *next is where the following
 * header starts. */
static GByteArray *
decode_zip_entry(const guint8 *data, gsize len, gsize off, gsize max_size, gsize *next,
                 gboolean *is_json, GError **error)
{
  const guint8 *h = data + off;
  if (len - off < DECODE_ZIP_LOCAL_LEN) {
    decode_zip_error(error, "truncated local file header");
    return NULL;
  }
  guint16 flags = decode_le16(h + 6);
  guint16 method = decode_le16(h + 8);
  guint32 crc = decode_le32(h + 14);
  guint32 csize = decode_le32(h + 18);
  guint32 usize = decode_le32(h + 22);
  guint16 name_len = decode_le16(h + 26);
  guint16 extra_len = decode_le16(h + 28);
  gsize data_off = off + DECODE_ZIP_LOCAL_LEN + name_len + extra_len;
  if (data_off > len) {
    decode_zip_error(error, "truncated local file header");
    return NULL;
  }
  *is_json = decode_name_is_json(h + DECODE_ZIP_LOCAL_LEN, name_len);
  if (flags & 0x0001) {
    decode_zip_error(error, "encrypted entry");
    return NULL;
  }
  gboolean descriptor = (flags & 0x0008) != 0;
  if (!descriptor && (csize == 0xffffffffu || usize == 0xffffffffu)) {
    decode_zip_error(error, "ZIP64 entries are not supported");
    return NULL;
  }

  g_autoptr(GByteArray) out = NULL;
  gsize avail = len - data_off;
  gsize used = 0;
  if (method == 0) {
    if (descriptor) {
      decode_zip_error(error, "stored entry with a data descriptor is not supported");
      return NULL;
    }
    if (csize > avail) {
      decode_zip_error(error, "truncated entry data");
      return NULL;
    }
    out = g_byte_array_new();
    if (!decode_append_capped(out, data + data_off, csize, max_size, error))
      return NULL;
    used = csize;
  } else if (method == 8) {
    gsize limit = descriptor ? avail : MIN((gsize) csize, avail);
    out = decode_zip_inflate(data + data_off, limit, max_size, &used, error);
    if (out == NULL)
      return NULL;
    if (!descriptor && used != csize) {
      decode_zip_error(error, "compressed size does not match the entry data");
      return NULL;
    }
  } else {
    g_set_error(error, DECODE_ERROR, DECODE_ERROR_ZIP,
                "bad zip: unsupported compression method %u", method);
    return NULL;
  }

  gsize pos = data_off + used;
  if (descriptor) {
    /* Optional signature, then CRC-32, compressed and uncompressed size. */
    if (len - pos >= 4 && decode_le32(data + pos) == DECODE_ZIP_DESC_SIG)
      pos += 4;
    if (len - pos < 12) {
      decode_zip_error(error, "truncated data descriptor");
      return NULL;
    }
    crc = decode_le32(data + pos);
    csize = decode_le32(data + pos + 4);
    usize = decode_le32(data + pos + 8);
    pos += 12;
    if (csize != (guint32) used) {
      decode_zip_error(error, "data descriptor size does not match the entry data");
      return NULL;
    }
  }
  if (usize != (guint32) out->len) {
    decode_zip_error(error, "uncompressed size mismatch");
    return NULL;
  }
  uLong actual = crc32(0L, Z_NULL, 0);
  const guint8 *p = out->data;
  for (gsize left = out->len; left > 0;) {
    uInt n = left > G_MAXUINT32 ? G_MAXUINT32 : (uInt) left;
    actual = crc32(actual, p, n);
    p += n;
    left -= n;
  }
  if ((guint32) actual != crc) {
    decode_zip_error(error, "CRC mismatch");
    return NULL;
  }
  *next = pos;
  return g_steal_pointer(&out);
}

static GBytes *
decode_zip(const guint8 *data, gsize len, gsize max_size, GError **error)
{
  g_autoptr(GByteArray) first = NULL;
  gsize off = 0;
  while (len - off >= 4 && decode_le32(data + off) == DECODE_ZIP_LOCAL_SIG) {
    gsize next = 0;
    gboolean is_json = FALSE;
    g_autoptr(GByteArray) entry =
        decode_zip_entry(data, len, off, max_size, &next, &is_json, error);
    if (entry == NULL)
      return NULL;
    if (is_json)
      return g_byte_array_free_to_bytes(g_steal_pointer(&entry));
    if (first == NULL)
      first = g_steal_pointer(&entry);
    off = next;
  }
  if (first == NULL) {
    decode_zip_error(error, "no entries");
    return NULL;
  }
  return g_byte_array_free_to_bytes(g_steal_pointer(&first));
}

/* ---- the entry point ------------------------------------------------------ */

GBytes *
decode_payload(GBytes *payload, gsize max_size, DecodeFormat *format_out, GError **error)
{
  g_return_val_if_fail(payload != NULL, NULL);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(payload, &len);
  if (data == NULL)
    len = 0;

  g_autoptr(GBytes) out = NULL;
  DecodeFormat format = DECODE_FORMAT_JSON;
  const char *what;
  gboolean known = decode_sniff(data, len, &format);
  if (known && format == DECODE_FORMAT_GZIP) {
    what = "gzip";
    g_autoptr(DecodeGzip) z = decode_gzip_new(max_size);
    /* The last member's ISIZE (length mod 2^32) is a good guess of the output size:
     * one allocation instead of a doubling series. Only a guess, never trusted: at most
     * 32 times the input (a claimed 4 GB from a few bytes allocates nothing big). */
    if (len >= 18 && len <= (16u << 20) / 32) {
      gsize hint = MIN((gsize) decode_le32(data + len - 4), MIN(max_size, len * 32));
      g_byte_array_set_size(z->out, (guint) hint);
      g_byte_array_set_size(z->out, 0);
    }
    if (!decode_gzip_push(z, data, len, error))
      return NULL;
    out = decode_gzip_finish(z, error);
    if (out == NULL)
      return NULL;
  } else if (known && format == DECODE_FORMAT_ZIP) {
    what = "zip";
    out = decode_zip(data, len, max_size, error);
    if (out == NULL)
      return NULL;
  } else {
    if (!known) {
      g_set_error(error, DECODE_ERROR, DECODE_ERROR_NOT_JSON,
                  "content is neither gzip, zip nor JSON");
      return NULL;
    }
    if (len > max_size) {
      g_set_error(error, DECODE_ERROR, DECODE_ERROR_TOO_LARGE,
                  "report exceeds %" G_GSIZE_FORMAT " bytes (max-report-size)", max_size);
      return NULL;
    }
    if (format_out != NULL)
      *format_out = DECODE_FORMAT_JSON;
    return g_bytes_ref(payload);
  }

  gsize olen = 0;
  const guint8 *odata = g_bytes_get_data(out, &olen);
  if (!decode_looks_like_json(odata, olen)) {
    g_set_error(error, DECODE_ERROR, DECODE_ERROR_NOT_JSON, "%s content is not JSON", what);
    return NULL;
  }
  if (format_out != NULL)
    *format_out = format;
  return g_steal_pointer(&out);
}
