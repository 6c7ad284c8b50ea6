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
 * Prints one line: files=N create=SECONDS syncfs=SECONDS total=SECONDS. */
#include <errno.h>
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

int
main(int argc, char **argv)
{
  if (argc < 2 || argc > 4) {
    fputs("usage: floor-files DIR [COUNT [SIZE]]\n", stderr);
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
  if (mkdir(dir, 0755) != 0)
    fail("mkdir", dir);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd < 0)
    fail("open", dir);
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
