/* rusage.c - run one command and report its wall time and peak RSS.
 *
 *   rusage [-o FILE] [-i INPUT] [-O OUTPUT] -- COMMAND [ARG...]
 *
 * Runs COMMAND (stdin from INPUT, stdout to OUTPUT if given), waits for it with
 * wait4() and writes one line to FILE (default standard error):
 *   wall=SECONDS user=SECONDS sys=SECONDS maxrss_kb=KB status=EXIT
 * wall is measured with CLOCK_MONOTONIC from just before fork() to the end of wait4().
 * maxrss_kb is the peak resident set of the command (ru_maxrss of its process; the
 * RUSAGE_CHILDREN maximum would include any grandchildren, which the measured commands
 * do not start). Exits with the command's status (128 + signal if it was killed). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
tv_s(struct timeval tv)
{
  return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
  const char *out = NULL, *in = NULL, *stdout_path = NULL;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc)
      goto usage;
    if (strcmp(argv[i], "-o") == 0)
      out = argv[++i];
    else if (strcmp(argv[i], "-i") == 0)
      in = argv[++i];
    else if (strcmp(argv[i], "-O") == 0)
      stdout_path = argv[++i];
    else
      goto usage;
  }
  if (i >= argc)
    goto usage;

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("rusage: fork");
    return 125;
  }
  if (pid == 0) {
    if (in != NULL) {
      int fd = open(in, O_RDONLY);
      if (fd < 0 || dup2(fd, 0) < 0) {
        fprintf(stderr, "rusage: %s: %s\n", in, strerror(errno));
        _exit(126);
      }
      close(fd);
    }
    if (stdout_path != NULL) {
      int fd = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || dup2(fd, 1) < 0) {
        fprintf(stderr, "rusage: %s: %s\n", stdout_path, strerror(errno));
        _exit(126);
      }
      close(fd);
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "rusage: %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("rusage: wait4");
      return 125;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double wall = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

  FILE *f = stderr;
  if (out != NULL && (f = fopen(out, "w")) == NULL) {
    fprintf(stderr, "rusage: %s: %s\n", out, strerror(errno));
    return 125;
  }
  fprintf(f, "wall=%.6f user=%.6f sys=%.6f maxrss_kb=%ld status=%d\n", wall, tv_s(ru.ru_utime),
          tv_s(ru.ru_stime), ru.ru_maxrss, code);
  if (f != stderr)
    fclose(f);
  return code;

usage:
  fputs("usage: rusage [-o FILE] [-i INPUT] [-O OUTPUT] -- COMMAND [ARG...]\n", stderr);
  return 125;
}
