/* source-file.c - loose files and directories of them: report files (.json, .json.gz,
 * .gz, .zip) and messages (.eml and anything else). Directories are walked recursively
 * in name order, skipping dot files, symbolic links to directories and the quarantine's
 * *.reason files (so that `file STORE/quarantine` re-examines just the messages). Files
 * are only read, never changed, so commit() has nothing to do.
 *
 * A file is a raw report when its name says so (case-insensitive .json, .json.gz, .gz,
 * .zip) or when its content does: gzip or zip magic, or '{' after an optional UTF-8
 * BOM and white space. It is a message when its name ends in .eml or .msg, or when it
 * begins with a header field ("Name:") or a From_ line: it is parsed as MIME. Anything
 * else (a README, notes) is neither: counted as not a report, never quarantined. */
#include "source.h"
#include "decode.h"
#include "report-filename.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  gsize max_size;
  GPtrArray *paths;       /* char*, in reading order */
  guint pos;
} SourceFile;

static gint
source_file_name_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Append the files below @dir to @paths, sorted, recursively. */
static gboolean
source_file_walk(const char *dir, GPtrArray *paths, GError **error)
{
  DIR *d = opendir(dir);
  if (d == NULL) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "%s: %s", dir, g_strerror(errno));
    return FALSE;
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      if (errno != 0) {
        int errsv = errno;
        closedir(d);
        g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "%s: %s", dir,
                    g_strerror(errsv));
        return FALSE;
      }
      break;
    }
    if (de->d_name[0] == '.' || g_str_has_suffix(de->d_name, ".reason"))
      continue;
    g_ptr_array_add(names, g_strdup(de->d_name));
  }
  closedir(d);
  g_ptr_array_sort(names, source_file_name_cmp);

  for (guint i = 0; i < names->len; i++) {
    g_autofree char *path = g_build_filename(dir, names->pdata[i], NULL);
    struct stat st;
    if (lstat(path, &st) != 0)
      continue;               /* vanished */
    if (S_ISLNK(st.st_mode) && (stat(path, &st) != 0 || S_ISDIR(st.st_mode)))
      continue;               /* a dangling link, or a link to a directory */
    if (S_ISDIR(st.st_mode)) {
      if (!source_file_walk(path, paths, error))
        return FALSE;
    } else if (S_ISREG(st.st_mode)) {
      g_ptr_array_add(paths, g_steal_pointer(&path));
    }
  }
  return TRUE;
}

static void source_file_close(gpointer self_);

static gpointer
source_file_open(const SourceConfig *opts, char **args, GError **error)
{
  g_assert(args != NULL);
  SourceFile *self = g_new0(SourceFile, 1);
  self->max_size = opts->max_message_size;
  self->paths = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; args[i] != NULL; i++) {
    struct stat st;
    if (stat(args[i], &st) != 0) {
      int errsv = errno;
      if (errsv == ENOENT || errsv == ENOTDIR)
        g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_NOT_FOUND, "no such file: %s",
                    args[i]);
      else
        g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "%s: %s", args[i],
                    g_strerror(errsv));
      source_file_close(self);
      return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!source_file_walk(args[i], self->paths, error)) {
        source_file_close(self);
        return NULL;
      }
    } else {
      /* Named on the command line: taken whatever it is; next() says why not. */
      g_ptr_array_add(self->paths, g_strdup(args[i]));
    }
  }
  return self;
}

static gboolean
source_file_name_is_message(const char *name)
{
  g_autofree char *lower = g_ascii_strdown(name, -1);
  return g_str_has_suffix(lower, ".eml") || g_str_has_suffix(lower, ".msg");
}

static gboolean
source_file_next(gpointer self_, SourceMessage **msg, GError **error)
{
  SourceFile *self = self_;
  *msg = NULL;
  while (self->pos < self->paths->len) {
    const char *path = self->paths->pdata[self->pos++];
    g_autoptr(GError) rerr = NULL;
    gint64 mtime = 0;
    GBytes *data = source_read_file(AT_FDCWD, path, TRUE, self->max_size, NULL, &mtime,
                                    &rerr);
    if (data == NULL && g_error_matches(rerr, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
      continue;               /* removed since open() */
    if (data == NULL && !g_error_matches(rerr, SOURCE_ERROR, SOURCE_ERROR_TOO_LARGE) &&
        !g_error_matches(rerr, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE) &&
        !g_error_matches(rerr, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)) {
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "%s: %s", path, rerr->message);
      return FALSE;
    }

    g_autofree char *base = g_path_get_basename(path);
    SourceMessage *m = g_new0(SourceMessage, 1);
    m->origin = g_strdup(path);
    m->received = mtime;
    if (data == NULL) {
      m->skip_reason = g_strdup(rerr->message);
    } else {
      m->data = data;
      m->raw_report = report_filename_has_extension(base) ||
                      decode_sniff(g_bytes_get_data(data, NULL), g_bytes_get_size(data), NULL);
      if (m->raw_report)
        m->filename = g_steal_pointer(&base);
      else
        m->not_message = !source_file_name_is_message(base) &&
                         !source_starts_like_message(g_bytes_get_data(data, NULL),
                                                    g_bytes_get_size(data));
    }
    *msg = m;
    return TRUE;
  }
  return FALSE;
}

static gboolean
source_file_commit(gpointer self, SourceMessage *msg, SourceOutcome outcome, GError **error)
{
  return TRUE;
}

static void
source_file_close(gpointer self_)
{
  SourceFile *self = self_;
  if (self == NULL)
    return;
  g_ptr_array_unref(self->paths);
  g_free(self);
}

const SourceOps source_file_ops = {
  "file", source_file_open, source_file_next, source_file_commit, source_file_close, NULL,
  NULL,
};
