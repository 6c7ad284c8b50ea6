/* dl.h - load a shared library and a table of its functions with dlopen(), for the
 * libraries only some runs need (mda runs once per message and should not pay for
 * loading them). */
#ifndef TLSRPT_DL_H
#define TLSRPT_DL_H

#include "common.h"

/* Open @soname (else @fallback, nullable) with RTLD_NOW | RTLD_LOCAL and look up the @n
 * functions @names into @slots. FALSE with *why (transfer full) saying which library
 * or symbol is missing; the library stays loaded on success. Not thread-safe: call it
 * under a g_once. */
gboolean tr_dl_load(const char *soname, const char *fallback, const char *const *names,
                    void **slots, gsize n, char **why);

#endif
