/* source-imap-auth.h - the IMAP source's credentials: the private files a password or
 * an OAuth2 access token is read from, the token command (--oauth2-token-command) run
 * through /bin/sh with a time limit, and the check of what it printed.
 *
 * Nothing here puts a secret into an error message: errors name the file or the
 * option, the command's exit status and its error output, never the password, the
 * token or the command line (which may hold a client secret). Every error is
 * SOURCE_ERROR_AUTH (exit 3). Secrets returned are wiped when freed with
 * source_imap_auth_free(). */
#ifndef TLSRPT_SOURCE_IMAP_AUTH_H
#define TLSRPT_SOURCE_IMAP_AUTH_H

#include "common.h"

/* The longest secret read from a file or a command's first line. */
#define SOURCE_IMAP_AUTH_MAX_SECRET (64u * 1024)
/* The token command's time limit when none is given (--oauth2-token-timeout). */
#define SOURCE_IMAP_AUTH_DEFAULT_TIMEOUT 30u

/* The first line of the regular file @path (CR LF or LF ends it), which must be
 * readable by its owner only; @what names it in errors ("password file", "token
 * file"). NULL + error when it cannot be read, is group- or world-readable, is
 * empty, or holds more than SOURCE_IMAP_AUTH_MAX_SECRET bytes. (transfer full: free
 * with source_imap_auth_free()) */
char *source_imap_auth_read_file(const char *path, const char *what, GError **error);

/* The token on the first line of the private file @path: source_imap_auth_read_file()
 * ("token file") and source_imap_auth_parse_token(). (transfer full: free with
 * source_imap_auth_free()) */
char *source_imap_auth_read_token_file(const char *path, GError **error);

/* Run @command with /bin/sh -c in a process group of its own, standard input from
 * /dev/null, for at most @timeout_s seconds (0: SOURCE_IMAP_AUTH_DEFAULT_TIMEOUT);
 * on the deadline the whole group gets SIGTERM, then SIGKILL a second later. Returns
 * the token: the first line of its standard output, checked by
 * source_imap_auth_parse_token(). A failure to start, a non-zero exit, a signal, the
 * timeout and a missing or malformed token are errors that say which, with the
 * command's error output (trimmed, at most 1000 bytes, escaped for the terminal).
 * *elapsed_ms (nullable) gets how long it ran. (transfer full: free with
 * source_imap_auth_free()) */
char *source_imap_auth_run_command(const char *command, guint timeout_s, gint64 *elapsed_ms,
                                   GError **error);

/* The token in @len bytes of output @data: its first line (up to LF; a CR before it is
 * dropped), which must be 1 to SOURCE_IMAP_AUTH_MAX_SECRET visible ASCII characters
 * (0x21..0x7e: RFC 6750's b64token and the JWTs of the big providers are). @what
 * names the source in errors ("--oauth2-token-command"). NULL + error otherwise; the
 * error never quotes the data. (transfer full: free with source_imap_auth_free()) */
char *source_imap_auth_parse_token(const char *data, gsize len, const char *what,
                                   GError **error);

/* Wipe and free a secret (NULL is fine). */
void source_imap_auth_free(char *secret);

#endif
