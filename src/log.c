/* log.c - stderr (and syslog in MDA mode) logging for the pipeline and the CLI; callable
 * from any thread, one whole line at a time. */
#include "log.h"
#include "escape.h"

#include <stdio.h>
#include <syslog.h>
#include <unistd.h>

static int log_verbosity;
static gboolean log_syslog;
static gboolean progress_shown;   /* under log_lock */
/* Lines come from any thread (the HTTP receiver's, the signal thread, the pipeline's):
 * each is formatted first, then written whole under this lock. */
static GMutex log_lock;

void
tr_log_init(int verbosity, gboolean use_syslog)
{
  log_verbosity = verbosity;
  log_syslog = use_syslog;
  if (use_syslog)
    openlog("tlsrpt-ingest", LOG_PID, LOG_MAIL);
}

int
tr_log_verbosity(void)
{
  return log_verbosity;
}

static void
log_clear_progress(void)
{
  if (progress_shown) {
    fputs("\r\033[K", stderr);
    progress_shown = FALSE;
  }
}

static void
log_emit(int prio, const char *prefix, const char *fmt, va_list ap)
{
  /* A log line is one line of text: what came from a sender (names, ids, file names)
   * is shown through the terminal escaper, never passed to the terminal or syslog. */
  g_autofree char *raw = g_strdup_vprintf(fmt, ap);
  g_autofree char *msg = tr_escape_terminal(raw);
  g_mutex_lock(&log_lock);
  log_clear_progress();
  fprintf(stderr, "tlsrpt-ingest: %s%s\n", prefix, msg);
  if (log_syslog)
    syslog(prio, "%s%s", prefix, msg);
  g_mutex_unlock(&log_lock);
}

#define LOG_FN(name, min, prio, prefix)                                                 \
  void name(const char *fmt, ...)                                                       \
  {                                                                                     \
    if (log_verbosity < (min))                                                          \
      return;                                                                           \
    va_list ap;                                                                         \
    va_start(ap, fmt);                                                                  \
    log_emit(prio, prefix, fmt, ap);                                                    \
    va_end(ap);                                                                         \
  }

LOG_FN(tr_log_error, -1, LOG_ERR, "error: ")
LOG_FN(tr_log_warn, 0, LOG_WARNING, "warning: ")
LOG_FN(tr_log_info, 0, LOG_INFO, "")
LOG_FN(tr_log_verbose, 1, LOG_INFO, "")
LOG_FN(tr_log_debug, 2, LOG_DEBUG, "debug: ")

void
tr_log_progress(const char *fmt, ...)
{
  if (log_verbosity < 0 || !isatty(STDERR_FILENO))
    return;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *raw = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_autofree char *msg = tr_escape_terminal(raw);
  g_mutex_lock(&log_lock);
  fprintf(stderr, "\r\033[K%s", msg);
  progress_shown = msg[0] != '\0';
  fflush(stderr);
  g_mutex_unlock(&log_lock);
}
