/* cli-read.h - what the reading commands (summary, check, metrics, report) share: the
 * options of cli_group_read and cli_group_thresholds (cli.h) turned into QueryParams,
 * and the one place they open the index.
 *
 * A second backend (PostgreSQL) plugs in at cli_read_open(): an option of
 * cli_group_read chooses it, and the commands get the same TrDb for query.c. */
#ifndef TLSRPT_CLI_READ_H
#define TLSRPT_CLI_READ_H

#include "cli.h"
#include "db.h"
#include "query.h"

typedef struct {
  QueryParams params;         /* the window [since, until), --domain, --org, --warn and
                                 --crit (ratios); the lists point into the CliCommon */
  gint64 now;                 /* --now, else the clock (epoch seconds UTC) */
  int days;                   /* the window's length in days (rounded up) */
  gboolean days_given;        /* --days was given, not the command's default */
  gboolean by_dates;          /* --since (and --until) gave the window */
} CliRead;

/* The window is the last @default_days UTC days up to today (the day of --now),
 * unless --days N or --since DATE [--until DATE] say otherwise; the thresholds default
 * to 1 % and 5 %. FALSE + CLI_ERROR_USAGE naming the option (CLI_ERROR_CONFIG naming
 * the file when the value came from there). */
gboolean cli_read_params(const CliCommon *c, int default_days, CliRead *out,
                         GError **error);

/* Open the index of the reading commands: --sqlite FILE, else STORE/reports.sqlite
 * (built from the tree on first read, with a progress line when @progress). *where
 * (nullable; transfer full) names what was opened, for messages. (transfer full) or
 * NULL + DB_ERROR (DB_ERROR_MISSING: no index and no tree yet). */
TrDb *cli_read_open(const CliCommon *c, gboolean progress, char **where, GError **error);

#endif
