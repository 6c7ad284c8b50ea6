/* auth-results.h - the Authentication-Results header field (RFC 8601), which the
 * receiving MTA adds with what it verified. Its text is untrusted input (a sender can
 * write one too): parsed strictly, never trusted here; trust.c decides which one
 * counts (the topmost one of a configured authserv-id). */
#ifndef TLSRPT_AUTH_RESULTS_H
#define TLSRPT_AUTH_RESULTS_H

#include "common.h"

typedef struct {
  char *method;           /* lower case: "dkim", "spf", ... */
  char *result;           /* lower case: "pass", "fail", ... */
  char *header_d;         /* header.d=, or NULL */
  char *header_i;         /* header.i=, or NULL */
} AuthResult;

typedef struct {
  char *authserv_id;      /* as written (compare case-insensitively) */
  GPtrArray *results;     /* AuthResult*, in order; empty for "none" */
} AuthResults;

void auth_results_free(AuthResults *ar);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AuthResults, auth_results_free)

/* Parse one field value (after "Authentication-Results:", unfolded) of @len bytes
 * (NUL bytes make it invalid). NULL when it does not follow RFC 8601 §2.2: such a
 * field is ignored. (transfer full) */
AuthResults *auth_results_parse(const char *value, gsize len);

#endif
