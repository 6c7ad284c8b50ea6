/* pipeline.h - source -> MIME walk -> decode -> parse -> sinks -> commit.
 * The only place that logs a per-message outcome (one line per message). */
#ifndef TLSRPT_PIPELINE_H
#define TLSRPT_PIPELINE_H

#include "common.h"
#include "report.h"
#include "source.h"
#include "sink.h"
#include "store.h"

typedef struct {
  guint messages;
  guint reports;          /* valid reports found */
  guint stored;           /* new reports written */
  guint duplicates;       /* reports already in the store */
  guint not_reports;      /* messages without a report */
  guint quarantined;      /* messages copied to the quarantine */
  guint skipped;          /* messages the source skipped (left alone) */
  guint not_stored;       /* messages read, then left for a later run by a failure */
  guint known;            /* messages ingested by an earlier run, not read again */
  guint tempfailed;       /* of not_stored: left for a later run by a DKIM temperror
                             under --dkim=require */
} PipelineStats;

/* What one message holds, before any sink sees it. */
typedef struct {
  GPtrArray *reports;     /* Report* (element free func set) */
  char *quarantine_reason;/* non-NULL: keep the message in the quarantine for this */
  gboolean not_report;    /* no candidate part at all (or only weak ones that failed) */
  GError *error;          /* raw report: the error behind quarantine_reason, or NULL */
  char *notes;            /* weak candidates that failed, for the message's log line, or
                             NULL */
  char *verdict;          /* "dkim VERDICT[ d=DOMAIN]: why" for the log line, or NULL */
  char *tempfail_reason;  /* non-NULL: the message cannot be judged now (--dkim=require
                             and a temperror): nothing of it is stored or acknowledged */
} PipelineResult;

void pipeline_result_clear(PipelineResult *res);

/* Pure stage chain for one message, no I/O: walk, decode, parse. Never fails: bad
 * input ends in res->quarantine_reason or res->not_report. Used by the fuzz target. */
void pipeline_process_message(const SourceMessage *msg, const TrLimits *limits,
                              PipelineResult *res);

/* As pipeline_process_message(), with the trust checks of @trust (trust.h; nullable:
 * none): every report gets the message's verdict (ReportIngest.dkim), and the --dkim
 * policy may quarantine the message (its reports are then not stored) or set
 * res->tempfail_reason. Thread-safe; the DKIM key lookups are I/O. */
typedef struct TrTrust TrTrust;
void pipeline_process_message_trust(const SourceMessage *msg, const TrLimits *limits,
                                    TrTrust *trust, PipelineResult *res);

/* Its second half, once the message is walked: decode and parse each part of @mm into
 * @res (set up by pipeline_process_message(): reports array, the rest zero). A STRONG
 * part that fails, or a STRONG MimeProblem, puts its reason in res->quarantine_reason;
 * WEAK ones go to res->notes. Exported for tests. */
typedef struct MimeMessage MimeMessage;
void pipeline_result_from_walk(const SourceMessage *msg, const MimeMessage *mm,
                               const TrLimits *limits, PipelineResult *res);

/* Run a whole source through the sinks with group commit. In batch mode the messages
 * of a batch are processed (pipeline_process_message(), which must stay thread-safe)
 * by one worker thread per CPU; reading, sinks, store, acknowledgements and logging
 * stay on the calling thread, in the order the source gave the messages. Returns the exit code
 * (TR_EXIT_*) and fills @stats. */
int pipeline_run(const SourceOps *source, gpointer source_self, const TrOptions *opts,
                 gboolean mda_mode, PipelineStats *stats);

/* As pipeline_run(), with @extra_sinks (NULL-terminated, nullable) opened after the
 * configured ones; tests use it to put fake sinks behind the real pipeline. */
int pipeline_run_with(const SourceOps *source, gpointer source_self, const TrOptions *opts,
                      gboolean mda_mode, const SinkOps *const *extra_sinks,
                      PipelineStats *stats);

/* Number of worker threads of later pipeline_run() calls: 0 (the default) is one per
 * CPU (at most 8), 1 processes every message on the calling thread. For tests. */
void pipeline_set_workers(guint n);

/* A SourceEventFunc that logs the event, "ORIGIN: TEXT", at its level: give it to a
 * source (SourceConfig.events.func) so that what the source has to say is logged here,
 * where every message's outcome is. @data is unused. */
void pipeline_source_event(SourceEventLevel level, const char *origin, const char *text,
                           gpointer data);

/* Async-signal-safe: ask pipeline_run() to stop after the message in flight (its
 * batch is still flushed and acknowledged). */
void pipeline_request_stop(void);
gboolean pipeline_stop_requested(void);

/* "messages=N reports=N stored=N duplicates=N not_reports=N quarantined=N", then
 * " skipped=N", " not_stored=N", " already_ingested=N" when not 0 (transfer full) */
char *pipeline_stats_line(const PipelineStats *stats);

#endif
