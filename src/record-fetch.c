/* record-fetch.c - the MTA-STS policy fetch: see record-fetch.h. */
#include "record-fetch.h"

#include "curl-dl.h"
#include "record.h"

#include <string.h>

void
record_fetch_free(RecordFetch *fetch)
{
  if (fetch == NULL)
    return;
  g_free(fetch->url);
  g_free(fetch->content_type);
  if (fetch->body)
    g_bytes_unref(fetch->body);
  g_free(fetch->error);
  g_free(fetch);
}

typedef struct {
  GByteArray *body;
  gboolean too_large;
} RecordFetchSink;

static size_t
record_fetch_write(char *data, size_t size, size_t nmemb, void *user)
{
  RecordFetchSink *sink = user;
  gsize n = size * nmemb;
  if (sink->body->len + n > RECORD_STS_MAX_POLICY) {
    sink->too_large = TRUE;
    return 0;                 /* stops the transfer */
  }
  g_byte_array_append(sink->body, (const guint8 *) data, (guint) n);
  return n;
}

RecordFetch *
record_fetch_policy(const char *host, const char *address, guint port, const char *cacert,
                    double timeout)
{
  RecordFetch *f = g_new0(RecordFetch, 1);
  f->url = port == 443 ? g_strdup_printf("https://%s/.well-known/mta-sts.txt", host)
                       : g_strdup_printf("https://%s:%u/.well-known/mta-sts.txt", host, port);
  const char *why = NULL;
  if (!curl_dl_load(&why)) {
    f->status = RECORD_FETCH_SETUP;
    f->error = g_strdup_printf("cannot load libcurl (Debian package libcurl4): %s", why);
    f->body = g_bytes_new(NULL, 0);
    return f;
  }
  CURL *curl = curl_easy_init();
  if (curl == NULL) {
    f->status = RECORD_FETCH_SETUP;
    f->error = g_strdup("curl_easy_init failed");
    f->body = g_bytes_new(NULL, 0);
    return f;
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  RecordFetchSink sink = { g_byte_array_new(), FALSE };
  /* Connect to the address our resolver found: "host:port:address". */
  g_autofree char *pin = g_strdup_printf("%s:%u:%s%s%s", host, port,
                                         strchr(address, ':') ? "[" : "", address,
                                         strchr(address, ':') ? "]" : "");
  struct curl_slist *resolve = curl_slist_append(NULL, pin);
  curl_easy_setopt(curl, CURLOPT_URL, f->url);
  curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) (timeout * 1000));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) (timeout * 1000));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE, (long) RECORD_STS_MAX_POLICY);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, record_fetch_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "tlsrpt-ingest/" TLSRPT_VERSION);
  if (cacert != NULL)
    curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &f->http_status);
  char *ct = NULL;
  if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
    f->content_type = g_strdup(ct);
  if (rc == CURLE_OK && f->http_status >= 300 && f->http_status < 400) {
    f->status = RECORD_FETCH_REDIRECT;
  } else if (rc == CURLE_OK && f->http_status != 200) {
    f->status = RECORD_FETCH_STATUS;
  } else if (rc == CURLE_FILESIZE_EXCEEDED || sink.too_large) {
    f->status = RECORD_FETCH_TOO_LARGE;
  } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
    f->status = RECORD_FETCH_WEBPKI;
  } else if (rc != CURLE_OK) {
    f->status = RECORD_FETCH_CONNECT;
  } else {
    /* text/plain, parameters allowed: "text/plain; charset=utf-8" */
    gsize n = f->content_type ? strcspn(f->content_type, "; \t") : 0;
    gboolean plain = n == strlen("text/plain") &&
                     g_ascii_strncasecmp(f->content_type, "text/plain", n) == 0;
    f->status = plain ? RECORD_FETCH_OK : RECORD_FETCH_TYPE;
  }
  if (f->status != RECORD_FETCH_OK && f->status != RECORD_FETCH_STATUS &&
      f->status != RECORD_FETCH_REDIRECT && f->status != RECORD_FETCH_TYPE)
    f->error = g_strdup(errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
  curl_easy_cleanup(curl);
  curl_slist_free_all(resolve);
  f->body = g_byte_array_free_to_bytes(sink.body);
  return f;
}
