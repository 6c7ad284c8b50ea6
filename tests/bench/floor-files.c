/* floor-files.c - the file-creation floor of a store that keeps one file per report.
 *
 *   floor-files DIR [COUNT [SIZE]]
 *
 * Creates COUNT (default 20000) files of SIZE bytes (default 2000, about one gzip'ed
 * report plus its metadata) under DIR, spread over 256 subdirectories the way a report
 * tree spreads them: each one written to DIR/tmp/NAME, then renamed into place, and at
 * the end one syncfs() makes everything durable (no fsync per file). DIR must not
 * exist yet.
 *
 *   floor-files --like SRC DIR
 *
 * Creates the tree SRC has (every directory, and every file with its size; entries of
 * SRC whose names start with a dot are left out) under DIR the same way: the cost of
 * merely creating the files and directories a store run made, without parsing anything.
 *
 * Prints one line: files=N create=SECONDS syncfs=SECONDS total=SECONDS (with --like
 * also dirs=N). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
fail(const char *what, const char *path)
{
  fprintf(stderr, "floor-files: %s %s: %s\n", what, path, strerror(errno));
  exit(1);
}

/* Make DIR (it must not exist) and open it. */
static int
make_root(const char *dir)
{
  if (mkdir(dir, 0755) != 0)
    fail("mkdir", dir);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd < 0)
    fail("open", dir);
  return dfd;
}

/* --like: the entries of SRC, in the order nftw() gives them (a directory before
 * what it holds). */
typedef struct {
  char *rel;
  long long size;           /* -1: a directory */
} Entry;

static Entry *entries;
static size_t n_entries, cap_entries;
static size_t src_len;

static int
collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  if (ftw->level == 0)
    return 0;
  const char *rel = path + src_len + 1;
  if (ftw->level == 1 && rel[0] == '.')
    return type == FTW_D ? FTW_SKIP_SUBTREE : 0;
  if (type != FTW_D && type != FTW_F)
    return 0;
  if (n_entries == cap_entries) {
    cap_entries = cap_entries ? 2 * cap_entries : 4096;
    entries = realloc(entries, cap_entries * sizeof *entries);
    if (entries == NULL)
      exit(1);
  }
  entries[n_entries].rel = strdup(rel);
  entries[n_entries].size = type == FTW_D ? -1 : (long long) st->st_size;
  n_entries++;
  return 0;
}

static int
like(const char *src, const char *dir)
{
  src_len = strlen(src);
  if (nftw(src, collect, 64, FTW_PHYS | FTW_ACTIONRETVAL) != 0)
    fail("walk", src);
  size_t max = 1;
  for (size_t i = 0; i < n_entries; i++)
    if (entries[i].size > (long long) max)
      max = (size_t) entries[i].size;
  char *data = malloc(max);
  if (data == NULL)
    return 1;
  memset(data, 'x', max);

  double t0 = now();
  int dfd = make_root(dir);
  unsigned long files = 0, dirs = 0;
  char tmp[4200];
  for (size_t i = 0; i < n_entries; i++) {
    const Entry *e = &entries[i];
    if (e->size < 0) {
      if (mkdirat(dfd, e->rel, 0750) != 0)
        fail("mkdir", e->rel);
      dirs++;
      continue;
    }
    /* A temporary file beside the final name, as the store writes it. */
    const char *slash = strrchr(e->rel, '/');
    int dlen = slash ? (int) (slash - e->rel + 1) : 0;
    snprintf(tmp, sizeof tmp, "%.*s.tmp-%lu", dlen, e->rel, files);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL, 0640);
    if (fd < 0)
      fail("create", tmp);
    if (write(fd, data, (size_t) e->size) != (ssize_t) e->size)
      fail("write", tmp);
    if (close(fd) != 0)
      fail("close", tmp);
    if (renameat(dfd, tmp, dfd, e->rel) != 0)
      fail("rename", e->rel);
    files++;
  }
  double t1 = now();
  if (syncfs(dfd) != 0)
    fail("syncfs", dir);
  double t2 = now();
  close(dfd);
  printf("files=%lu dirs=%lu create=%.6f syncfs=%.6f total=%.6f\n", files, dirs, t1 - t0,
         t2 - t1, t2 - t0);
  free(data);
  return 0;
}

int
main(int argc, char **argv)
{
  if (argc == 4 && strcmp(argv[1], "--like") == 0)
    return like(argv[2], argv[3]);
  if (argc < 2 || argc > 4) {
    fputs("usage: floor-files DIR [COUNT [SIZE]] | floor-files --like SRC DIR\n", stderr);
    return 2;
  }
  const char *dir = argv[1];
  unsigned long count = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
  size_t size = argc > 3 ? strtoul(argv[3], NULL, 10) : 2000;
  char *data = malloc(size + 1);
  if (data == NULL)
    return 1;
  for (size_t i = 0; i < size; i++)
    data[i] = (char) ('a' + i % 26);

  double t0 = now();
  int dfd = make_root(dir);
  if (mkdirat(dfd, "tmp", 0755) != 0)
    fail("mkdir", "tmp");
  char name[64], tmp[80], final[96];
  for (unsigned i = 0; i < 256; i++) {
    snprintf(name, sizeof name, "%02x", i);
    if (mkdirat(dfd, name, 0755) != 0)
      fail("mkdir", name);
  }
  for (unsigned long i = 0; i < count; i++) {
    snprintf(name, sizeof name, "report-%08lx.json.gz", i * 2654435761ul & 0xffffffff);
    snprintf(tmp, sizeof tmp, "tmp/%s", name);
    snprintf(final, sizeof final, "%02lx/%s", (i * 2654435761ul >> 8) & 0xff, name);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
      fail("create", tmp);
    data[0] = (char) ('A' + i % 26);  /* not quite identical files */
    if (write(fd, data, size) != (ssize_t) size)
      fail("write", tmp);
    if (close(fd) != 0)
      fail("close", tmp);
    if (renameat(dfd, tmp, dfd, final) != 0)
      fail("rename", final);
  }
  double t1 = now();
  if (syncfs(dfd) != 0)
    fail("syncfs", dir);
  double t2 = now();
  close(dfd);
  printf("files=%lu create=%.6f syncfs=%.6f total=%.6f\n", count, t1 - t0, t2 - t1, t2 - t0);
  free(data);
  return 0;
}
