/* dl.c - a library and its functions by dlopen(): see dl.h. */
#include "dl.h"

#include <dlfcn.h>

gboolean
tr_dl_load(const char *soname, const char *fallback, const char *const *names, void **slots,
           gsize n, char **why)
{
  void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL && fallback != NULL)
    lib = dlopen(fallback, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *e = dlerror();
    *why = g_strdup(e != NULL ? e : soname);
    return FALSE;
  }
  for (gsize i = 0; i < n; i++) {
    slots[i] = dlsym(lib, names[i]);
    if (slots[i] == NULL) {
      *why = g_strdup_printf("%s: no symbol %s", soname, names[i]);
      dlclose(lib);
      return FALSE;
    }
  }
  return TRUE;
}
