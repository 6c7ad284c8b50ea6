/* log.h - the project's logger: stderr (and syslog in MDA mode). Only the pipeline and
 * the CLI log; modules below them return errors. */
#ifndef TLSRPT_LOG_H
#define TLSRPT_LOG_H

#include "common.h"

/* @verbosity: -1 quiet (errors only), 0 normal, 1 verbose, 2 debug. */
void tr_log_init(int verbosity, gboolean use_syslog);
int tr_log_verbosity(void);

void tr_log_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void tr_log_warn(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void tr_log_info(const char *fmt, ...) G_GNUC_PRINTF(1, 2);   /* shown at verbosity >= 0 */
void tr_log_verbose(const char *fmt, ...) G_GNUC_PRINTF(1, 2);/* verbosity >= 1 */
void tr_log_debug(const char *fmt, ...) G_GNUC_PRINTF(1, 2);  /* verbosity >= 2 */

/* Progress line on a terminal only (stderr is a TTY and not quiet); "" clears it. */
void tr_log_progress(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

#endif
