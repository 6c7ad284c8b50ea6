/* curl-dl.c - libcurl loaded with dlopen(): see curl-dl.h. TLSRPT_LIBCURL_SONAME is the
 * library the build found (CMake). */
#include "curl-dl.h"

#include <dlfcn.h>

#ifndef TLSRPT_LIBCURL_SONAME
#define TLSRPT_LIBCURL_SONAME "libcurl.so.4"
#endif

/* The pointers, named as the header's macros expect. The header renamed the
 * functions, so their types are taken from the real declarations via the macros'
 * targets: __typeof__(curl_dl_curl_x) is declared extern in the header. */
#define CURL_DL_DEFINE(name) __typeof__(*curl_dl_##name) *curl_dl_##name;
CURL_DL_FUNCTIONS(CURL_DL_DEFINE)
#undef CURL_DL_DEFINE

static char *curl_dl_error; /* why libcurl could not be loaded, or NULL */

gboolean
curl_dl_load(const char **why)
{
  static gsize loaded = 0;
  if (g_once_init_enter(&loaded)) {
    void *lib = dlopen(TLSRPT_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
      lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
      const char *e = dlerror();
      curl_dl_error = g_strdup(e != NULL ? e : TLSRPT_LIBCURL_SONAME);
    } else {
#define CURL_DL_LOAD(name)                                                               \
  if (curl_dl_error == NULL) {                                                           \
    *(void **) (&curl_dl_##name) = dlsym(lib, #name);                                    \
    if (curl_dl_##name == NULL)                                                          \
      curl_dl_error = g_strdup_printf("%s: no symbol %s", TLSRPT_LIBCURL_SONAME, #name);  \
  }
      CURL_DL_FUNCTIONS(CURL_DL_LOAD)
#undef CURL_DL_LOAD
      if (curl_dl_error == NULL)
        curl_global_init(CURL_GLOBAL_DEFAULT);
    }
    g_once_init_leave(&loaded, 1);
  }
  if (why != NULL)
    *why = curl_dl_error;
  return curl_dl_error == NULL;
}

const char *
curl_dl_version(void)
{
  return curl_dl_load(NULL) ? curl_version() : "libcurl not loadable";
}
