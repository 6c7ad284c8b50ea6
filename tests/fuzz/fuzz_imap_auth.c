/* fuzz_imap_auth.c - libFuzzer target over what an OAuth2 token helper prints
 * (source-imap-auth.h): the bytes as the output of --oauth2-token-command, whose first
 * line is the access token. The helper passes on text from an identity provider's
 * answer, so the check must hold for any bytes. */
#include "source-imap-auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* A copy of exactly @size bytes: reading past it is an ASan error. */
  char *p = g_malloc(size > 0 ? size : 1);
  memcpy(p, data, size);
  const char *lf = memchr(p, '\n', size);
  gsize line = lf != NULL ? (gsize) (lf - p) : size;
  if (line > 0 && p[line - 1] == '\r')
    line--;

  GError *error = NULL;
  char *token = source_imap_auth_parse_token(p, size, "the helper", &error);
  if (token != NULL) {
    /* The whole first line, 1 to MAX visible ASCII characters, nothing else. */
    gsize n = strlen(token);
    if (error != NULL || n == 0 || n != line || n > SOURCE_IMAP_AUTH_MAX_SECRET ||
        memcmp(token, p, n) != 0)
      abort();
    for (gsize i = 0; i < n; i++)
      if ((guchar) token[i] < 0x21 || (guchar) token[i] > 0x7e)
        abort();
    source_imap_auth_free(token);
  } else {
    /* A reason, one line, that never quotes what may be most of a token. */
    if (error == NULL || error->domain != SOURCE_ERROR || error->code != SOURCE_ERROR_AUTH ||
        error->message[0] == '\0' || strchr(error->message, '\n') != NULL)
      abort();
    if (line >= 8) {
      char *first = g_strndup(p, line);
      if (strlen(first) >= 8 && strstr(error->message, first) != NULL)
        abort();
      g_free(first);
    }
    g_error_free(error);
  }
  g_free(p);
  return 0;
}
