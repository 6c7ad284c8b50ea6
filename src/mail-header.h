/* mail-header.h - the header fields of a message's top header block, read straight
 * from the raw bytes (no MIME parse): for the trust checks, which look at fields the
 * MIME walk does not keep (DKIM-Signature, Authentication-Results). */
#ifndef TLSRPT_MAIL_HEADER_H
#define TLSRPT_MAIL_HEADER_H

#include "common.h"

/* The values of the fields named @name (case-insensitive) in the top header block of
 * @message (LF or CRLF; a leading mbox From_ line skipped), in the order they appear,
 * unfolded (CR and LF removed), at most @max of them. Returns (transfer full) char*,
 * possibly empty. A message without an end of its header block is read to its end. */
GPtrArray *mail_header_fields(GBytes *message, const char *name, guint max);

/* Offset of the first byte after a leading mbox From_ line (0 without one). */
gsize mail_header_skip_from_line(const guint8 *p, gsize len);

#endif
