/* testutil.h - helpers shared by every test executable. */
#ifndef TLSRPT_TESTUTIL_H
#define TLSRPT_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <glib.h>

/* Absolute path of fixtures/<name>; an absolute @name is returned as is. (transfer full) */
char *tu_fixture_path(const char *name);
/* Contents of fixtures/<name>; fails the test when missing. (transfer full) */
GBytes *tu_fixture(const char *name);
/* A fresh empty directory under $TMPDIR, removed by tu_rmtree(). (transfer full) */
char *tu_mkdtemp(void);
void tu_rmtree(const char *path);
/* Write a file (creating parent dirs). */
void tu_write_file(const char *path, const void *data, gsize len);
/* Read a whole file into a string, NULL if missing. (transfer full) */
char *tu_read_file(const char *path, gsize *len);
/* Count regular files below @dir whose name ends with @suffix (NULL = all). */
guint tu_count_files(const char *dir, const char *suffix);
/* Count lines in a file (0 if missing). */
guint tu_count_lines(const char *path);

/* Run the tlsrpt-ingest binary ($TLSRPT_BIN) with @argv (NULL-terminated, without
 * argv[0]), feeding @stdin_data (nullable) and capturing stdout/stderr
 * (transfer full, nullable out params). Returns the exit status (-1 if signalled). */
int tu_run(const char *const *argv, GBytes *stdin_data, char **out, char **err);

/* The config file of the commands a test starts (tu_run(), or its own spawns: they
 * inherit the environment). At start every test executable sets XDG_CONFIG_HOME to a
 * directory of its own whose config says "dkim-keys = " an empty file: the commands
 * never read the user's config, and never ask the system resolver for the DKIM keys of
 * the corpus mails' signatures (where DNS is unreachable, as in CI, each lookup would
 * hang for the timeout). @text replaces the config (NULL: that default again); a test
 * of the real DNS path gives "" and names its own DNS server (--dkim-nameserver). */
void tu_set_config(const char *text);
/* The empty DKIM key file of that config, for options built in the test's own
 * process (TrOptions.trust.dkim_keys). (transfer none) */
const char *tu_no_dkim_keys(void);

/* ---- servers the tests start on loopback ------------------------------------- */

/* Run "bash $TLSRPT_SOURCE_DIR/@script ARGS..." (@args NULL-terminated, NULL entries
 * after the first are not passed: a harness's optional arguments); the test fails,
 * with the script's standard error, when it cannot run or exits non-zero. For the
 * harnesses that start real servers (tests/imap/dovecot.sh, tests/record/servers.sh). */
void tu_run_script(const char *script, const char *const *args);

/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed);
 * with @udp_too also free for UDP (a DNS server listens on both). Fails the test when
 * none is found. */
int tu_free_port(gboolean udp_too);
/* Whether something accepts TCP connections on 127.0.0.1:@port now. */
gboolean tu_port_accepts(int port);
/* Wait until 127.0.0.1:@port accepts connections (@accepting TRUE) or no longer does
 * (FALSE), at most @timeout_ms; whether it happened. */
gboolean tu_wait_port(int port, gboolean accepting, guint timeout_ms);
/* Wait, at most @timeout_ms, until the file @path holds @needle after its first @from
 * bytes (a server's log saying it listens): the file's text then (transfer full), or
 * NULL when @needle did not appear in time. */
char *tu_wait_file_text(const char *path, gsize from, const char *needle, guint timeout_ms);

#endif
