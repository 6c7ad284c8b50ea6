/* testutil.c - helpers shared by every test executable. */
#include "testutil.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

char *
tu_fixture_path(const char *name)
{
  if (g_path_is_absolute(name))
    return g_strdup(name);
  const char *dir = g_getenv("TLSRPT_FIXTURES");
  if (dir == NULL)
    dir = "fixtures";
  return g_build_filename(dir, name, NULL);
}

GBytes *
tu_fixture(const char *name)
{
  g_autofree char *path = tu_fixture_path(name);
  char *data = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  if (!g_file_get_contents(path, &data, &len, &error))
    fail_msg("fixture %s: %s", name, error->message);
  return g_bytes_new_take(data, len);
}

char *
tu_mkdtemp(void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp("tlsrpt-test-XXXXXX", &error);
  if (dir == NULL)
    fail_msg("mkdtemp: %s", error->message);
  return dir;
}

void
tu_rmtree(const char *path)
{
  if (path == NULL)
    return;
  GDir *d = g_dir_open(path, 0, NULL);
  if (d != NULL) {
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
        tu_rmtree(child);
      else
        g_unlink(child);
    }
    g_dir_close(d);
  }
  g_rmdir(path);
}

/* ---- the commands' config ------------------------------------------------------ */

static char *tu_config_home;
static char *tu_config_keys;
static pid_t tu_config_owner;

static void
tu_config_cleanup(void)
{
  if (getpid() == tu_config_owner)   /* not a forked child exiting */
    tu_rmtree(tu_config_home);
}

void
tu_set_config(const char *text)
{
  g_autofree char *def = g_strdup_printf("[tlsrpt-ingest]\ndkim-keys = %s\n", tu_config_keys);
  g_autofree char *path = g_build_filename(tu_config_home, "tlsrpt-ingest", "config", NULL);
  const char *t = text != NULL ? text : def;
  if (!g_file_set_contents(path, t, -1, NULL))
    fail_msg("cannot write %s", path);
}

const char *
tu_no_dkim_keys(void)
{
  return tu_config_keys;
}

__attribute__((constructor)) static void
tu_config_init(void)
{
  tu_config_home = g_dir_make_tmp("tlsrpt-test-config-XXXXXX", NULL);
  if (tu_config_home == NULL)
    return;
  tu_config_owner = getpid();
  atexit(tu_config_cleanup);
  tu_config_keys = g_build_filename(tu_config_home, "no.keys", NULL);
  g_autofree char *dir = g_build_filename(tu_config_home, "tlsrpt-ingest", NULL);
  g_mkdir_with_parents(dir, 0700);
  g_file_set_contents(tu_config_keys, "", 0, NULL);
  tu_set_config(NULL);
  g_setenv("XDG_CONFIG_HOME", tu_config_home, TRUE);
}

void
tu_write_file(const char *path, const void *data, gsize len)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_mkdir_with_parents(dir, 0755);
  g_autoptr(GError) error = NULL;
  if (!g_file_set_contents(path, data, (gssize) len, &error))
    fail_msg("write %s: %s", path, error->message);
}

char *
tu_read_file(const char *path, gsize *len)
{
  char *data = NULL;
  gsize l = 0;
  if (!g_file_get_contents(path, &data, &l, NULL))
    return NULL;
  if (len)
    *len = l;
  return data;
}

guint
tu_count_files(const char *dir, const char *suffix)
{
  guint n = 0;
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return 0;
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *child = g_build_filename(dir, name, NULL);
    if (g_file_test(child, G_FILE_TEST_IS_SYMLINK))
      continue;
    if (g_file_test(child, G_FILE_TEST_IS_DIR))
      n += tu_count_files(child, suffix);
    else if (suffix == NULL || g_str_has_suffix(name, suffix))
      n++;
  }
  g_dir_close(d);
  return n;
}

guint
tu_count_lines(const char *path)
{
  gsize len = 0;
  g_autofree char *data = tu_read_file(path, &len);
  guint n = 0;
  for (gsize i = 0; data && i < len; i++)
    if (data[i] == '\n')
      n++;
  return n;
}

int
tu_run(const char *const *argv, GBytes *stdin_data, char **out, char **err)
{
  const char *bin = g_getenv("TLSRPT_BIN");
  assert_non_null(bin);
  g_autoptr(GPtrArray) args = g_ptr_array_new();
  g_ptr_array_add(args, (gpointer) bin);
  for (guint i = 0; argv[i] != NULL; i++)
    g_ptr_array_add(args, (gpointer) argv[i]);
  g_ptr_array_add(args, NULL);

  g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
      G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p =
      g_subprocess_launcher_spawnv(l, (const char *const *) args->pdata, &error);
  if (p == NULL)
    fail_msg("spawn %s: %s", bin, error->message);
  g_autoptr(GBytes) ob = NULL;
  g_autoptr(GBytes) eb = NULL;
  /* GLib 2.74 asserts on a NULL buffer with a stdin pipe: NULL means empty input. */
  g_autoptr(GBytes) none = stdin_data == NULL ? g_bytes_new(NULL, 0) : NULL;
  if (!g_subprocess_communicate(p, stdin_data ? stdin_data : none, NULL, &ob, &eb, &error))
    fail_msg("communicate: %s", error->message);
  if (out)
    *out = g_strndup(g_bytes_get_data(ob, NULL), g_bytes_get_size(ob));
  if (err)
    *err = g_strndup(g_bytes_get_data(eb, NULL), g_bytes_get_size(eb));
  if (!g_subprocess_get_if_exited(p))
    return -1;
  return g_subprocess_get_exit_status(p);
}

/* ---- servers the tests start on loopback ------------------------------------- */

void
tu_run_script(const char *script, const char *const *args)
{
  const char *src = g_getenv("TLSRPT_SOURCE_DIR");
  g_autofree char *path = g_build_filename(src != NULL ? src : ".", script, NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, (gpointer) "bash");
  g_ptr_array_add(argv, path);
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer) args[i]);
  g_ptr_array_add(argv, NULL);
  g_autofree char *err = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  if (!g_spawn_sync(NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                    &err, &status, &error))
    fail_msg("spawn %s: %s", path, error->message);
  if (!g_spawn_check_wait_status(status, NULL))
    fail_msg("%s %s failed: %s", path, args != NULL && args[0] != NULL ? args[0] : "", err);
}

int
tu_free_port(gboolean udp_too)
{
  for (int attempt = 0; attempt < 50; attempt++) {
    int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t < 0)
      fail_msg("socket: %s", g_strerror(errno));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (bind(t, (struct sockaddr *) &a, sizeof a) != 0 ||
        getsockname(t, (struct sockaddr *) &a, &len) != 0) {
      close(t);
      continue;
    }
    gboolean ok = TRUE;
    if (udp_too) {
      int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      ok = u >= 0 && bind(u, (struct sockaddr *) &a, sizeof a) == 0;
      if (u >= 0)
        close(u);
    }
    close(t);
    if (ok)
      return ntohs(a.sin_port);
  }
  fail_msg("no free port on 127.0.0.1");
  return -1;
}

gboolean
tu_port_accepts(int port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return FALSE;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  gboolean ok = connect(fd, (struct sockaddr *) &a, sizeof a) == 0;
  close(fd);
  return ok;
}

gboolean
tu_wait_port(int port, gboolean accepting, guint timeout_ms)
{
  gint64 until = g_get_monotonic_time() + (gint64) timeout_ms * 1000;
  for (;;) {
    if (tu_port_accepts(port) == accepting)
      return TRUE;
    if (g_get_monotonic_time() >= until)
      return FALSE;
    g_usleep(10 * 1000);
  }
}

char *
tu_wait_file_text(const char *path, gsize from, const char *needle, guint timeout_ms)
{
  gint64 until = g_get_monotonic_time() + (gint64) timeout_ms * 1000;
  for (;;) {
    gsize len = 0;
    char *text = tu_read_file(path, &len);
    if (text != NULL && len >= from && strstr(text + from, needle) != NULL)
      return text;
    g_free(text);
    if (g_get_monotonic_time() >= until)
      return NULL;
    g_usleep(10 * 1000);
  }
}
