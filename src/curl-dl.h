/* curl-dl.h - libcurl, loaded with dlopen() on first use rather than linked: it pulls
 * in some 30 shared objects (TLS, Kerberos, LDAP, SSH, ...) whose loading and
 * relocation would otherwise be paid by every process, and `mda` runs once per
 * delivered message. Its users (source-imap.c, record-fetch.c) include this header
 * instead of <curl/curl.h>: every curl_*() call below it goes through the loaded
 * pointers. Call curl_dl_load() first. */
#ifndef TLSRPT_CURL_DL_H
#define TLSRPT_CURL_DL_H

#include "common.h"

#define CURL_DISABLE_TYPECHECK 1 /* curl_easy_setopt() is called through a pointer */
#include <curl/curl.h>

#define CURL_DL_FUNCTIONS(X)                                                             \
  X(curl_global_init) X(curl_version) X(curl_easy_init) X(curl_easy_setopt)              \
  X(curl_easy_perform) X(curl_easy_getinfo) X(curl_easy_cleanup) X(curl_easy_send)       \
  X(curl_easy_recv) X(curl_easy_strerror) X(curl_free) X(curl_url) X(curl_url_set)       \
  X(curl_url_get) X(curl_url_cleanup) X(curl_url_strerror) X(curl_slist_append)          \
  X(curl_slist_free_all)

#define CURL_DL_DECLARE(name) extern __typeof__(name) *curl_dl_##name;
CURL_DL_FUNCTIONS(CURL_DL_DECLARE)
#undef CURL_DL_DECLARE

/* Load libcurl once (thread-safe) and call curl_global_init(). FALSE when the library
 * or one of its functions is missing; *why (nullable; transfer none) says which. */
gboolean curl_dl_load(const char **why);

/* libcurl's version string, or "libcurl not loadable". (transfer none) */
const char *curl_dl_version(void);

#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init     curl_dl_curl_global_init
#define curl_version         curl_dl_curl_version
#define curl_easy_init       curl_dl_curl_easy_init
#define curl_easy_setopt     curl_dl_curl_easy_setopt
#define curl_easy_perform    curl_dl_curl_easy_perform
#define curl_easy_getinfo    curl_dl_curl_easy_getinfo
#define curl_easy_cleanup    curl_dl_curl_easy_cleanup
#define curl_easy_send       curl_dl_curl_easy_send
#define curl_easy_recv       curl_dl_curl_easy_recv
#define curl_easy_strerror   curl_dl_curl_easy_strerror
#define curl_free            curl_dl_curl_free
#define curl_url             curl_dl_curl_url
#define curl_url_set         curl_dl_curl_url_set
#define curl_url_get         curl_dl_curl_url_get
#define curl_url_cleanup     curl_dl_curl_url_cleanup
#define curl_url_strerror    curl_dl_curl_url_strerror
#define curl_slist_append    curl_dl_curl_slist_append
#define curl_slist_free_all  curl_dl_curl_slist_free_all

#endif
