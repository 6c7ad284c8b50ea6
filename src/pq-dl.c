/* pq-dl.c - libpq loaded with dlopen(): see pq-dl.h. TLSRPT_LIBPQ_SONAME is the library
 * the build found (CMake). */
#include "pq-dl.h"

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

#ifndef TLSRPT_LIBPQ_SONAME
#define TLSRPT_LIBPQ_SONAME "libpq.so.5"
#endif

/* Each symbol and where its pointer goes in the table. */
static const struct {
  const char *symbol;
  size_t offset;
} pq_dl_symbols[] = {
#define PQ_DL_SYM(field, sym) { #sym, offsetof(PqApi, field) }
  PQ_DL_SYM(connectdb, PQconnectdb),
  PQ_DL_SYM(status, PQstatus),
  PQ_DL_SYM(errorMessage, PQerrorMessage),
  PQ_DL_SYM(finish, PQfinish),
  PQ_DL_SYM(exec, PQexec),
  PQ_DL_SYM(execParams, PQexecParams),
  PQ_DL_SYM(resultStatus, PQresultStatus),
  PQ_DL_SYM(resultErrorField, PQresultErrorField),
  PQ_DL_SYM(resultErrorMessage, PQresultErrorMessage),
  PQ_DL_SYM(clear, PQclear),
  PQ_DL_SYM(ntuples, PQntuples),
  PQ_DL_SYM(nfields, PQnfields),
  PQ_DL_SYM(getvalue, PQgetvalue),
  PQ_DL_SYM(getisnull, PQgetisnull),
  PQ_DL_SYM(putCopyData, PQputCopyData),
  PQ_DL_SYM(putCopyEnd, PQputCopyEnd),
  PQ_DL_SYM(getResult, PQgetResult),
  PQ_DL_SYM(getCopyData, PQgetCopyData),
  PQ_DL_SYM(escapeLiteral, PQescapeLiteral),
  PQ_DL_SYM(conninfoParse, PQconninfoParse),
  PQ_DL_SYM(conninfoFree, PQconninfoFree),
  PQ_DL_SYM(freemem, PQfreemem),
  PQ_DL_SYM(setNoticeProcessor, PQsetNoticeProcessor),
  PQ_DL_SYM(transactionStatus, PQtransactionStatus),
  PQ_DL_SYM(libVersion, PQlibVersion),
  PQ_DL_SYM(db, PQdb),
  PQ_DL_SYM(host, PQhost),
  PQ_DL_SYM(port, PQport),
  PQ_DL_SYM(user, PQuser),
#undef PQ_DL_SYM
};

static PqApi pq_dl_api;
static char *pq_dl_error;   /* why libpq could not be loaded, or NULL */

const PqApi *
pq_dl(const char **why)
{
  static gsize once = 0;
  if (g_once_init_enter(&once)) {
    const char *names[] = { TLSRPT_LIBPQ_SONAME, "libpq.so.5" };
    void *lib = NULL;
    for (gsize i = 0; lib == NULL && i < G_N_ELEMENTS(names); i++)
      lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
      const char *e = dlerror();
      pq_dl_error = g_strdup_printf("cannot load libpq (Debian: libpq5): %s",
                                    e != NULL ? e : TLSRPT_LIBPQ_SONAME);
    }
    for (gsize i = 0; lib != NULL && pq_dl_error == NULL && i < G_N_ELEMENTS(pq_dl_symbols);
         i++) {
      void *fn = dlsym(lib, pq_dl_symbols[i].symbol);
      if (fn == NULL)
        pq_dl_error = g_strdup_printf("%s has no %s (too old a libpq)", TLSRPT_LIBPQ_SONAME,
                                      pq_dl_symbols[i].symbol);
      else
        memcpy((char *) &pq_dl_api + pq_dl_symbols[i].offset, &fn, sizeof fn);
    }
    g_once_init_leave(&once, 1);
  }
  if (why != NULL)
    *why = pq_dl_error;
  return pq_dl_error == NULL ? &pq_dl_api : NULL;
}
