/* fsutil.h - durable, symlink-safe file operations and name sanitizing. Everything that
 * puts a byte on disk goes through here. */
#ifndef TLSRPT_FSUTIL_H
#define TLSRPT_FSUTIL_H

#include "common.h"

/* Make @path (and parents) as a directory, mode 0750 for new ones. */
gboolean fsutil_mkdir_p(const char *path, GError **error);

/* Open (creating with mkdirat when @create) the directory @relpath below the directory
 * fd @base_fd, one component at a time with O_NOFOLLOW|O_DIRECTORY: a symlink planted
 * anywhere below @base_fd is refused, never followed. @relpath must be relative, with
 * no "." / ".." / empty components. Returns an fd (close it) or -1 + G_IO_ERROR. */
int fsutil_open_dir_below(int base_fd, const char *relpath, gboolean create, GError **error);

/* Open the directory @relpath below @base_fd, never through a symlink, without creating
 * anything: one openat2(RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH) where the kernel has it,
 * else fsutil_open_dir_below(). Returns an fd or -1 + G_IO_ERROR (NOT_FOUND when a
 * component is missing, TOO_MANY_LINKS for a symlink). */
int fsutil_open_dir_beneath(int base_fd, const char *relpath, GError **error);

/* Make the directory @name in @dir_fd (mode 0750) unless it exists, and open it
 * (O_NOFOLLOW|O_DIRECTORY: a symlink is refused). *created tells whether this call made
 * it. Returns an fd or -1 + G_IO_ERROR; @what names it in messages. */
int fsutil_mkdir_open(int dir_fd, const char *name, const char *what, gboolean *created,
                      GError **error);

/* Write all of @data to @fd, retrying on EINTR and short writes; @what names the file
 * in the error. */
gboolean fsutil_write_all(int fd, const void *data, gsize len, const char *what,
                          GError **error);

/* Write @len bytes to a new temporary file in @dir_fd (O_CREAT|O_EXCL|O_NOFOLLOW,
 * name ".tmp-<final>-<pid>-<random>"). When @do_fsync, fsync it. Returns the temporary
 * name (transfer full) or NULL + G_IO_ERROR (the partial file is removed). */
char *fsutil_write_tmp(int dir_fd, const char *final_name, const void *data, gsize len,
                       gboolean do_fsync, GError **error);

/* Write @data to a temporary file in @dir_fd and rename it onto @name, without any
 * fsync (the caller makes it durable later, e.g. with one syncfs() for many files).
 * With @keep_fd the file stays open and *keep_fd gets its fd (read-only use: fsync).
 * FALSE + G_IO_ERROR: nothing is left behind. */
gboolean fsutil_write_replace(int dir_fd, const char *name, const void *data, gsize len,
                              int *keep_fd, GError **error);

/* The whole durable write: write_tmp with fsync, renameat onto @name, fsync @dir_fd. */
gboolean fsutil_write_atomic(int dir_fd, const char *name, const void *data, gsize len,
                             GError **error);

/* The same for the file @path (its directory opened here): an output file that a
 * reader sees whole or not at all (metrics --output, report --html). The error is
 * prefixed with @path. */
gboolean fsutil_write_file_atomic(const char *path, const void *data, gsize len,
                                  GError **error);

gboolean fsutil_fsync_fd(int fd, const char *what, GError **error);
/* fsync the directory that holds @path (a file or directory just created in it). */
gboolean fsutil_fsync_parent(const char *path, GError **error);

/* Remove the ".tmp-*" files (regular files and symlinks) that a writer which died left
 * in @dir_fd: those whose name carries the pid of a process that no longer exists on
 * this host (see fsutil_write_tmp()), and those older than @max_age seconds whatever
 * their name says (a reused pid, another pid namespace, a foreign name). A file of a
 * live process, this one included, younger than @max_age is never touched. Returns
 * how many were removed. */
guint fsutil_sweep_tmp(int dir_fd, gint64 max_age);
/* The same in @dir_fd and every directory below it, at most @max_depth levels down,
 * never through a symlink. */
guint fsutil_sweep_tmp_tree(int dir_fd, gint64 max_age, guint max_depth);
/* Whether @name is a ".tmp-*" name whose writer (the pid in it) is alive on this host;
 * FALSE for a dead writer, and for a name without a pid. */
gboolean fsutil_tmp_writer_alive(const char *name);

/* A file-name component made from untrusted text: bytes outside [A-Za-z0-9._+@=-]
 * become '_', no leading '.', never empty ("_"), at most @max_len bytes (cut at a
 * character boundary). Never returns "." or "..". (transfer full) */
char *fsutil_sanitize_component(const char *in, gsize max_len);

/* Set *error from errno with a "what: path: strerror" message, code from
 * g_io_error_from_errno(); for callers that need it. */
void fsutil_set_error_errno(GError **error, int errsv, const char *what, const char *path);

#endif
