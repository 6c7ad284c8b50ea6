/* faultutil.h - helpers of the fault and hostile-input tests (tests/integration/
 * test_fault_*.c): run the binary with a timeout and resource limits and measure it,
 * build report messages, a Maildir of them, and check a store and a CSV file.
 *
 * The test executables are built from one source file plus tests/testutil.c, so each
 * test_fault_*.c includes faultutil.c (and hostile.c) directly. */
#ifndef TLSRPT_FAULTUTIL_H
#define TLSRPT_FAULTUTIL_H

#include "testutil.h"

#include <sys/resource.h>
#include <sys/types.h>

/* Built with AddressSanitizer (then so is the binary under test): its allocator keeps
 * freed memory in a quarantine and copies on realloc, so peak RSS says nothing about our
 * code, and CPU time is several times higher. Memory bounds are then only reported. */
#if defined(__SANITIZE_ADDRESS__)
#define FU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FU_SANITIZED 1
#endif
#endif
#ifndef FU_SANITIZED
#define FU_SANITIZED 0
#endif
/* CPU-time bounds are multiplied by this. */
#define FU_CPU_FACTOR (FU_SANITIZED ? 5.0 : 1.0)
/* Assert a peak-memory bound, unless sanitized (then it is only printed). */
#define FU_ASSERT_RSS(cond)                                                              \
  do {                                                                                   \
    if (FU_SANITIZED)                                                                    \
      print_message("sanitized build: memory bound not checked: %s\n", #cond);          \
    else                                                                                 \
      assert_true(cond);                                                                 \
  } while (0)

/* ---- running the binary -------------------------------------------------- */

/* Writes the child's standard input in a thread; returns when done or on EPIPE. */
typedef void (*FuStdinWriter)(int fd, gpointer data);

typedef struct {
  const char *const *argv;    /* without argv[0]; NULL-terminated */
  GBytes *stdin_bytes;        /* nullable: fed through a temporary file */
  const char *stdin_path;     /* nullable: a file opened as standard input */
  FuStdinWriter stdin_writer; /* nullable: streams standard input through a pipe */
  gpointer stdin_writer_data;
  double timeout;             /* seconds (wall clock) before SIGKILL; 0 = 120 */
  guint64 rlimit_fsize;       /* 0 = unlimited; else RLIMIT_FSIZE for the child */
  gboolean sigxfsz_default;   /* with rlimit_fsize: leave SIGXFSZ at its default (kill)
                                 instead of ignoring it as an MTA does */
} FuRunOptions;

typedef struct {
  int exit_code;              /* exit status, or -1 when signalled */
  int signal;                 /* the signal that ended it, or 0 */
  gboolean timed_out;         /* killed by us after the timeout */
  struct rusage ru;           /* of the child: ru_maxrss (KiB), CPU times */
  double wall;                /* seconds */
  char *err;                  /* standard error (transfer full) */
  char *out;                  /* standard output (transfer full) */
} FuResult;

void fu_result_clear(FuResult *r);
/* Run $TLSRPT_BIN and wait for it; fails the test only when it cannot be started. */
void fu_run(const FuRunOptions *o, FuResult *r);
/* CPU seconds (user + system) of a finished run. */
double fu_cpu(const FuResult *r);

/* Start $TLSRPT_BIN in the background (stdin /dev/null or @stdin_path, stdout/stderr to
 * @log_path, appended). Returns its pid. */
pid_t fu_spawn(const char *const *argv, const char *stdin_path, const char *log_path);
/* Wait for @pid; returns the exit code, or -signal. */
int fu_wait(pid_t pid);

/* ---- building input ------------------------------------------------------ */

/* gzip (RFC 1952, one member) of @data. (transfer full) */
GBytes *fu_gzip(const void *data, gsize len);
/* A gzip member that inflates to @zeros zero bytes (fast to make for gigabytes:
 * identical full-flushed deflate blocks repeated). (transfer full) */
GBytes *fu_gzip_zeros(guint64 zeros);

/* A TLS report JSON with these fields (used verbatim inside JSON strings: pass them
 * escaped). (transfer full) */
char *fu_report_json(const char *org, const char *report_id, const char *policy_domain);

/* A TLS-RPT message (multipart/report; report-type=tlsrpt, CRLF) with one attachment:
 * @payload base64-encoded, media type @ctype (NULL: application/tlsrpt+gzip), file name
 * @filename (NULL: a §5.1 name; raw text, written as given). (transfer full) */
GBytes *fu_report_message(GBytes *payload, const char *ctype, const char *filename);

/* The message of fixtures/corpus/mox/example.eml with its report's organization-name and
 * report-id replaced by "Generated Org <n % 7>" and "gen-<n>": report @n of a family of
 * distinct reports (same policy domain test.xmox.nl). (transfer full) */
GBytes *fu_generated_message(guint n);
/* The report number of a Maildir message name made by fu_make_maildir(). */
guint fu_message_number(const char *name);
/* Every message in @acked (NULL-terminated: cur/ of the Maildir, or a --move-to folder's
 * cur/ and new/) has its report in the CSV; every message still in @md/new/ is there
 * byte for byte; together they are @total. Returns the number acknowledged. */
guint fu_check_acknowledged_only_stored(const char *md, const char *const *acked,
                                        const char *csv, guint total);

/* A Maildir (new/, cur/, tmp/) at @dir holding fu_generated_message(first..first+count-1)
 * in new/. */
void fu_make_maildir(const char *dir, guint first, guint count);

/* ---- checking output ----------------------------------------------------- */

/* Walk @store (lstat, no symlink followed) and assert: every entry is a regular file or
 * directory (symlinks only if listed in @allowed_symlinks, NULL-terminated, relative
 * paths), every name is printable ASCII without '/' and at most 255 bytes. Returns the
 * number of normalized reports (*.json outside quarantine/). */
guint fu_check_store_tree(const char *store, const char *const *allowed_symlinks);
/* Number of ".tmp-*" files below @dir. */
guint fu_count_tmp_files(const char *dir);
/* Lines of @store/.index: asserts each is 32 hex digits and unique; returns the count. */
guint fu_check_index(const char *store);

/* Parse @csv (RFC 4180): asserts every record has the header's column count, ends with
 * a newline, and no record appears twice. Returns the number of data records and, when
 * @policy_ids is non-NULL, fills it (report_id -> count of "policy" rows). */
guint fu_check_csv(const char *csv, GHashTable *policy_ids);

/* Paths of the ".tmp-*" files below @dir. (transfer full) */
GPtrArray *fu_list_tmp_files(const char *dir);
/* No ".tmp-*" file below @store is named like data (*.json, *.json.gz, *.csv, ...). */
void fu_check_tmp_files(const char *store);
/* The reports fu_generated_message(0 .. @expected-1) are each stored exactly once: in
 * the tree, the index and one "policy" row each in @csv; nothing quarantined; the
 * journal empty; no temporary file named like data. */
/* The SQL index STORE/reports.sqlite holds each report once, with one policy row, and
 * the same keys as the tree and .index; returns the number of reports. */
guint fu_check_sql_index(const char *store);
void fu_check_exactly_once(const char *store, const char *csv, guint expected);

/* Count regular files in @dir (not recursive) whose name ends with @suffix. */
guint fu_count_in_dir(const char *dir, const char *suffix);

/* TRUE when mounting a tmpfs works here (root with CAP_SYS_ADMIN). */
gboolean fu_can_mount(void);
/* Mount a tmpfs of @size_kib KiB on @dir (created); FALSE if it failed. */
gboolean fu_mount_tmpfs(const char *dir, guint size_kib);
/* Remount read-only or read-write, with a new size (0 = unchanged). */
gboolean fu_remount(const char *dir, gboolean read_only, guint size_kib);
void fu_umount(const char *dir);

/* Lines of @text that contain @needle. */
guint fu_count_lines_with(const char *text, const char *needle);

#endif
