/* trust-pkey.h - decoded DKIM public keys kept for the run, for libopendkim.
 *
 * libopendkim decodes the key of every signature anew (OpenSSL 3's d2i_PUBKEY_bio(), a
 * million instructions for an RSA-2048 key, three times its RSA check) and its API has
 * no way to be handed a decoded key. This module redirects that one import of
 * libopendkim (its GOT slot for d2i_PUBKEY_bio, nothing else, no other library's) to a
 * function that returns the EVP_PKEY already decoded from the same DER bytes (a new
 * reference to it), and decodes with the real function otherwise. Everything else the
 * library checks stays the library's: the key record's tags, the hashes, RSA_verify.
 * See docs/trust.md, "Keys". */
#ifndef TLSRPT_TRUST_PKEY_H
#define TLSRPT_TRUST_PKEY_H

#include "common.h"

/* At most this many decoded keys are kept (a few KB each); when full, the cache starts
 * again empty. */
#define TRUST_PKEY_CACHE_MAX 512

/* Redirect libopendkim's d2i_PUBKEY_bio to the cache. @handle is libopendkim's dlopen()
 * handle. FALSE with *why (transfer full) when its import cannot be found as expected
 * (another libc, libopendkim built otherwise): then nothing is changed and every key
 * is decoded by the library as before. Call once, before libopendkim verifies anything
 * (under trust-dkim.c's g_once). */
gboolean trust_pkey_cache_install(void *handle, char **why);

/* How many keys were decoded, and how many decodings were saved, since the start.
 * Thread-safe. */
void trust_pkey_cache_stats(guint *decoded, guint *reused);

#endif
