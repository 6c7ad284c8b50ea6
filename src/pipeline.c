/* pipeline.c - source -> MIME walk -> decode -> parse -> sinks -> commit.
 *
 * Group commit: messages are processed into a pending batch; a batch is flushed under
 * the store lock (journal, sinks, quarantine, index) and only then are its messages
 * acknowledged to their source. The only place that logs a per-message outcome. */
#include "pipeline.h"
#include "escape.h"

#include "decode.h"
#include "log.h"
#include "mime-walk.h"
#include "report-parse.h"
#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#define PIPELINE_MAX_PENDING_BYTES (16u * 1024 * 1024)

static volatile sig_atomic_t pipeline_stop;

void
pipeline_request_stop(void)
{
  pipeline_stop = 1;
}

gboolean
pipeline_stop_requested(void)
{
  return pipeline_stop != 0;
}

void
pipeline_source_event(SourceEventLevel level, const char *origin, const char *text,
                      gpointer data)
{
  const char *sep = origin != NULL ? ": " : "";
  if (origin == NULL)
    origin = "";
  switch (level) {
  case SOURCE_EVENT_DEBUG:
    tr_log_debug("%s%s%s", origin, sep, text);
    break;
  case SOURCE_EVENT_VERBOSE:
    tr_log_verbose("%s%s%s", origin, sep, text);
    break;
  case SOURCE_EVENT_INFO:
    tr_log_info("%s%s%s", origin, sep, text);
    break;
  case SOURCE_EVENT_WARNING:
    tr_log_warn("%s%s%s", origin, sep, text);
    break;
  }
}

void
pipeline_result_clear(PipelineResult *res)
{
  g_clear_pointer(&res->reports, g_ptr_array_unref);
  g_clear_pointer(&res->quarantine_reason, g_free);
  g_clear_error(&res->error);
  g_clear_pointer(&res->notes, g_free);
  g_clear_pointer(&res->tempfail_reason, g_free);
  g_clear_pointer(&res->verdict, g_free);
  res->not_report = FALSE;
}

/* ---- the pure stage chain ------------------------------------------------ */

/* Decode and parse one payload; on success the report is appended to @res->reports. */
static gboolean
pipeline_parse_payload(GBytes *payload, const char *filename, const TrLimits *limits,
                       PipelineResult *res, GError **error)
{
  DecodeFormat format = DECODE_FORMAT_JSON;
  g_autoptr(GBytes) json = decode_payload(payload, limits->max_report_size, &format, error);
  if (json == NULL)
    return FALSE;

  ReportFilename fname = { 0 };
  gboolean have_fname = filename != NULL && report_filename_parse(filename, &fname);
  Report *report = report_parse(json, have_fname ? &fname : NULL, limits, error);
  report_filename_clear(&fname);
  if (report == NULL)
    return FALSE;

  report->ingest.filename = g_strdup(filename);
  report->ingest.raw_extension = g_strdup(decode_format_extension(format));
  report->ingest.raw = g_bytes_ref(payload);
  g_ptr_array_add(res->reports, report);
  return TRUE;
}

static char *
pipeline_domain_of(const char *addr)
{
  if (addr == NULL)
    return NULL;
  const char *at = strrchr(addr, '@');
  return at != NULL && at[1] != '\0' ? g_ascii_strdown(at + 1, -1) : NULL;
}

/* The verdict into every report of @res, and what the --dkim policy makes of it. */
static void
pipeline_apply_trust(const TrTrust *trust, const TrustVerdict *v, gboolean raw_report,
                     PipelineResult *res)
{
  const char *name = trust_verdict_name(v->kind);
  for (guint i = 0; name != NULL && i < res->reports->len; i++) {
    Report *r = res->reports->pdata[i];
    r->ingest.dkim = g_strdup(name);
    r->ingest.dkim_domain = g_strdup(v->domain);
  }
  if (res->reports->len == 0 || name == NULL)
    return;                           /* nothing to store: nothing to decide */
  g_autofree char *why = g_strdup_printf("dkim %s%s%s%s%s", name, v->domain ? " d=" : "",
                                         v->domain ? v->domain : "", v->why ? ": " : "",
                                         v->why ? v->why : "");
  TrustDecision d = trust_decide(trust, v, raw_report);
  if (d == TRUST_ACCEPT) {
    res->verdict = g_steal_pointer(&why);
    return;
  }
  if (d == TRUST_TEMPFAIL) {
    res->tempfail_reason = g_steal_pointer(&why);
    g_ptr_array_set_size(res->reports, 0);
    g_clear_pointer(&res->quarantine_reason, g_free);
    return;
  }
  /* Quarantined as a whole: none of its reports is stored. */
  g_ptr_array_set_size(res->reports, 0);
  if (res->error == NULL)
    res->error = g_error_new_literal(REPORT_ERROR, REPORT_ERROR_UNTRUSTED, why);
  if (res->quarantine_reason == NULL) {
    res->quarantine_reason = g_steal_pointer(&why);
  } else {
    char *both = g_strdup_printf("%s; %s", why, res->quarantine_reason);
    g_free(res->quarantine_reason);
    res->quarantine_reason = both;
  }
}

void
pipeline_process_message(const SourceMessage *msg, const TrLimits *limits,
                         PipelineResult *res)
{
  pipeline_process_message_trust(msg, limits, NULL, res);
}

void
pipeline_process_message_trust(const SourceMessage *msg, const TrLimits *limits,
                               TrTrust *trust, PipelineResult *res)
{
  memset(res, 0, sizeof *res);
  res->reports = g_ptr_array_new_with_free_func((GDestroyNotify) report_free);

  if (msg->skip_reason != NULL) {
    res->quarantine_reason = g_strdup(msg->skip_reason);
    return;
  }

  if (msg->not_message) {
    res->not_report = TRUE;
    return;
  }

  if (msg->raw_report) {
    g_autoptr(GError) error = NULL;
    if (!pipeline_parse_payload(msg->data, msg->filename, limits, res, &error)) {
      res->quarantine_reason = g_strdup(error->message);
      res->error = g_steal_pointer(&error);
    } else {
      Report *r = res->reports->pdata[0];
      r->ingest.source = g_strdup(msg->origin);
      r->ingest.received = msg->received;
      ReportFilename fname = { 0 };
      if (msg->filename && report_filename_parse(msg->filename, &fname))
        r->ingest.submitter = g_strdup(fname.sender);
      report_filename_clear(&fname);
      if (trust != NULL) {
        TrustVerdict v = { TRUST_NONE, NULL, NULL };
        if (msg->verdict != NULL)
          trust_verdict_from_name(msg->verdict, &v.kind);
        v.why = g_strdup(v.kind == TRUST_UNAUTHENTICATED ? "a report over HTTPS"
                                                         : "a report file, not a message");
        pipeline_apply_trust(trust, &v, TRUE, res);
        trust_verdict_clear(&v);
      }
    }
    return;
  }

  g_autoptr(GError) error = NULL;
  g_autoptr(MimeMessage) mm = mime_walk_message(msg->data, limits, &error);
  if (mm == NULL) {
    res->quarantine_reason = g_strdup_printf("not a mail message: %s", error->message);
    return;
  }
  pipeline_result_from_walk(msg, mm, limits, res);
  if (trust != NULL && res->reports->len > 0) {
    g_autofree char *from_domain = pipeline_domain_of(mm->from);
    TrustVerdict v;
    trust_check_message(trust, msg->data, from_domain, mm->submitter, &v);
    pipeline_apply_trust(trust, &v, FALSE, res);
    trust_verdict_clear(&v);
  }
}

/* "part N (type, name): why" for the reason or the notes; one line: the sender's file
 * name may hold any byte. */
static void
pipeline_append_part(GString *out, guint n, const MimePart *part, const char *why)
{
  if (out->len > 0)
    g_string_append(out, "; ");
  g_autofree char *fname = tr_escape_terminal(part->filename);
  g_string_append_printf(out, "part %u (%s%s%s, found by its %s): %s", n, part->content_type,
                         part->filename ? ", " : "", fname, part->why, why);
}

void
pipeline_result_from_walk(const SourceMessage *msg, const MimeMessage *mm,
                          const TrLimits *limits, PipelineResult *res)
{
  /* A strong candidate that fails (or could not be read at all) quarantines the
   * message with its reason; a weak one that fails is only noted for the log line. */
  g_autoptr(GString) reasons = g_string_new(NULL);
  g_autoptr(GString) notes = g_string_new(NULL);
  guint strong_failures = 0;
  for (guint i = 0; i < mm->parts->len; i++) {
    MimePart *part = mm->parts->pdata[i];
    g_autoptr(GError) perr = NULL;
    if (pipeline_parse_payload(part->content, part->filename, limits, res, &perr))
      continue;
    if (part->evidence == MIME_EVIDENCE_STRONG) {
      strong_failures++;
      pipeline_append_part(reasons, i + 1, part, perr->message);
    } else {
      pipeline_append_part(notes, i + 1, part, perr->message);
    }
  }
  for (guint i = 0; i < mm->problems->len; i++) {
    const MimeProblem *pr = mm->problems->pdata[i];
    g_autofree char *text = tr_escape_terminal(pr->text);
    GString *to = pr->evidence == MIME_EVIDENCE_STRONG ? reasons : notes;
    if (pr->evidence == MIME_EVIDENCE_STRONG)
      strong_failures++;
    if (to->len > 0)
      g_string_append(to, "; ");
    g_string_append(to, text);
  }

  if (strong_failures > 0)
    res->quarantine_reason = g_string_free(g_steal_pointer(&reasons), FALSE);
  else if (res->reports->len == 0 && mm->tlsrpt_markers)
    res->quarantine_reason = g_strdup(mm->parts->len == 0
                                          ? "TLS-RPT message without a report part"
                                          : "TLS-RPT message whose parts hold no report");
  else if (res->reports->len == 0)
    res->not_report = TRUE;
  if (notes->len > 0)
    res->notes = g_string_free(g_steal_pointer(&notes), FALSE);

  g_autofree char *from_domain = pipeline_domain_of(mm->from);
  for (guint i = 0; i < res->reports->len; i++) {
    Report *r = res->reports->pdata[i];
    r->ingest.source = g_strdup(msg->origin);
    r->ingest.received = msg->received;
    r->ingest.report_domain = g_strdup(mm->report_domain);
    r->ingest.message_id = g_strdup(mm->message_id);
    r->ingest.submitter = g_strdup(mm->submitter ? mm->submitter : from_domain);
  }
}

/* ---- our domains ------------------------------------------------------------ */

static gboolean
pipeline_domain_is_ours(const char *domain, char **ours)
{
  if (domain == NULL)
    return FALSE;
  gsize dl = strlen(domain);
  for (guint i = 0; ours[i] != NULL; i++) {
    /* "D": D and its subdomains; "*.D": its subdomains only. */
    gboolean wild = g_str_has_prefix(ours[i], "*.");
    const char *o = wild ? ours[i] + 2 : ours[i];
    gsize ol = strlen(o);
    if (!wild && g_ascii_strcasecmp(domain, o) == 0)
      return TRUE;
    if (dl > ol && domain[dl - ol - 1] == '.' && g_ascii_strcasecmp(domain + dl - ol, o) == 0)
      return TRUE;
  }
  return FALSE;
}

/* With opts->domains: a report none of whose policy domains (else its primary domain) is
 * ours, or a subdomain of one, is taken out of @res and the message quarantined. */
static void
pipeline_check_domains(const TrOptions *opts, PipelineResult *res)
{
  if (opts->domains == NULL || res->reports == NULL)
    return;
  for (guint i = 0; i < res->reports->len;) {
    const Report *r = res->reports->pdata[i];
    gboolean ours = FALSE, any = FALSE;
    for (guint j = 0; j < r->policies->len && !ours; j++) {
      const ReportPolicy *pol = r->policies->pdata[j];
      if (pol->policy_domain != NULL && *pol->policy_domain != '\0') {
        any = TRUE;
        ours = pipeline_domain_is_ours(pol->policy_domain, opts->domains);
      }
    }
    if (!any) {
      g_autofree char *primary = report_primary_domain(r);
      ours = pipeline_domain_is_ours(primary, opts->domains);
    }
    if (ours) {
      i++;
      continue;
    }
    g_autofree char *primary = report_primary_domain(r);
    g_autofree char *dom = tr_escape_terminal(primary);
    g_autofree char *why = g_strdup_printf("not for our domains: %s", dom);
    if (res->quarantine_reason == NULL) {
      res->quarantine_reason = g_steal_pointer(&why);
      if (res->error == NULL)
        res->error = g_error_new_literal(REPORT_ERROR, REPORT_ERROR_NOT_OURS,
                                         res->quarantine_reason);
    } else {
      char *both = g_strdup_printf("%s; %s", res->quarantine_reason, why);
      g_free(res->quarantine_reason);
      res->quarantine_reason = both;
    }
    g_ptr_array_remove_index(res->reports, i);
  }
}

/* ---- group commit -------------------------------------------------------- */

typedef struct {
  SourceMessage *msg;
  PipelineResult res;
  guint new_reports;
  char *quarantine_path;
  gboolean processed;     /* res is filled (under PipelineWorkers.lock with workers) */
} PendingMessage;

/* ---- parallel stage chain -------------------------------------------------- */

/* Worker threads run pipeline_process_message() on the pending messages, in the order
 * they were read, while the main thread reads the next ones and flushes. Everything else
 * (the source, the sinks, the store, the log) stays on the main thread. A batch is
 * flushed in the order its messages were read, once every one of them is processed and
 * the next batch has been read and queued, so the workers have something to do while
 * the main thread writes and syncs. Reading ahead acknowledges nothing: a message is
 * still committed only after its own batch is durable. */
#define PIPELINE_MAX_WORKERS 8

static guint pipeline_workers_wanted;    /* 0: one per CPU */

void
pipeline_set_workers(guint n)
{
  pipeline_workers_wanted = n;
}

typedef struct {
  GMutex lock;
  GCond work_cond;        /* a message was queued, or quit */
  GCond done_cond;        /* a message was processed while main_waiting */
  GQueue queue;           /* PendingMessage* not yet taken by a worker */
  guint idle;             /* workers waiting on work_cond */
  gboolean main_waiting;  /* the main thread waits on done_cond */
  gboolean quit;
  const TrLimits *limits;
  TrTrust *trust;
  GThread *threads[PIPELINE_MAX_WORKERS];
  guint n_threads;
} PipelineWorkers;

static gpointer
pipeline_worker_main(gpointer data)
{
  PipelineWorkers *w = data;
  g_mutex_lock(&w->lock);
  for (;;) {
    while (g_queue_is_empty(&w->queue) && !w->quit) {
      w->idle++;
      g_cond_wait(&w->work_cond, &w->lock);
      w->idle--;
    }
    PendingMessage *p = g_queue_pop_head(&w->queue);
    if (p == NULL)
      break;
    g_mutex_unlock(&w->lock);
    pipeline_process_message_trust(p->msg, w->limits, w->trust, &p->res);
    g_mutex_lock(&w->lock);
    p->processed = TRUE;
    if (w->main_waiting)
      g_cond_signal(&w->done_cond);
  }
  g_mutex_unlock(&w->lock);
  return NULL;
}

/* Start @n worker threads; NULL when @n < 2 (the main thread then processes each
 * message itself, as soon as it is read). */
static PipelineWorkers *
pipeline_workers_start(guint n, const TrLimits *limits, TrTrust *trust)
{
  if (n < 2)
    return NULL;
  PipelineWorkers *w = g_new0(PipelineWorkers, 1);
  g_mutex_init(&w->lock);
  g_cond_init(&w->work_cond);
  g_cond_init(&w->done_cond);
  g_queue_init(&w->queue);
  w->limits = limits;
  w->trust = trust;
  for (guint i = 0; i < MIN(n, PIPELINE_MAX_WORKERS); i++) {
    g_autoptr(GError) error = NULL;
    GThread *t = g_thread_try_new("tlsrpt-worker", pipeline_worker_main, w, &error);
    if (t == NULL)
      break;
    w->threads[w->n_threads++] = t;
  }
  if (w->n_threads == 0) {
    g_mutex_clear(&w->lock);
    g_cond_clear(&w->work_cond);
    g_cond_clear(&w->done_cond);
    g_free(w);
    return NULL;
  }
  return w;
}

static void
pipeline_workers_push(PipelineWorkers *w, PendingMessage *p)
{
  g_mutex_lock(&w->lock);
  g_queue_push_tail(&w->queue, p);
  /* A signal is a system call: only when a worker sleeps. */
  if (w->idle > 0)
    g_cond_signal(&w->work_cond);
  g_mutex_unlock(&w->lock);
}

/* Wait until the first @n messages of @pending are processed. */
static void
pipeline_workers_wait(PipelineWorkers *w, GPtrArray *pending, guint n)
{
  if (w == NULL)
    return;
  g_mutex_lock(&w->lock);
  for (guint i = 0; i < n; i++) {
    PendingMessage *p = pending->pdata[i];
    while (!p->processed) {
      w->main_waiting = TRUE;
      g_cond_wait(&w->done_cond, &w->lock);
    }
  }
  w->main_waiting = FALSE;
  g_mutex_unlock(&w->lock);
}

static void
pipeline_workers_stop(PipelineWorkers *w)
{
  if (w == NULL)
    return;
  g_mutex_lock(&w->lock);
  w->quit = TRUE;
  g_cond_broadcast(&w->work_cond);
  g_mutex_unlock(&w->lock);
  for (guint i = 0; i < w->n_threads; i++)
    g_thread_join(w->threads[i]);
  g_mutex_clear(&w->lock);
  g_cond_clear(&w->work_cond);
  g_cond_clear(&w->done_cond);
  g_free(w);
}

static guint
pipeline_worker_count(gboolean mda_mode, guint batch)
{
  if (mda_mode || batch < 2)
    return 1;
  if (pipeline_workers_wanted > 0)
    return pipeline_workers_wanted;
  return MIN((guint) g_get_num_processors(), PIPELINE_MAX_WORKERS);
}

typedef struct {
  const SourceOps *source;
  gpointer source_self;
  const TrOptions *opts;
  gboolean mda_mode;
  Store *store;
  GPtrArray *sinks;       /* SinkOps* */
  GPtrArray *sink_selves; /* gpointer */
  GPtrArray *pending;     /* PendingMessage*, in the order read */
  PipelineWorkers *workers;/* NULL: messages are processed on the main thread */
  TrTrust *trust;         /* NULL: --dkim=off */
  PipelineStats *stats;
} Pipeline;

static void
pending_message_free(PendingMessage *p)
{
  source_message_free(p->msg);
  pipeline_result_clear(&p->res);
  g_free(p->quarantine_path);
  g_free(p);
}

static gboolean
pipeline_open_sinks(Pipeline *pl, const SinkOps *const *extra_sinks, GError **error)
{
  /* Each sink is given its own settings only. */
  const SinkOps *list[8];
  SinkConfig configs[8] = { { .path = NULL } };
  guint n = 0;
  /* The SQL index first: in a run of many commits its write() only queues the report
   * for the sink's writer thread (sink-sqlite.c), which inserts the batch while the
   * next sinks take it (the tree's JSON and files, the CSV rows). */
  if (pl->opts->sqlite_path != NULL || (!pl->opts->no_store && !pl->opts->no_sqlite)) {
    configs[n].path = pl->opts->sqlite_path;     /* NULL: STORE/reports.sqlite */
    configs[n].one_commit = pl->mda_mode;
    list[n++] = sink_find("sqlite");
  }
  if (!pl->opts->no_store)
    list[n++] = sink_find("tree");
  if (pl->opts->csv_path != NULL) {
    configs[n].path = pl->opts->csv_path;
    configs[n].csv_raw = pl->opts->csv_raw;
    list[n++] = sink_find("csv");
  }
  if (pl->opts->jsonl_path != NULL) {
    configs[n].path = pl->opts->jsonl_path;
    list[n++] = sink_find("jsonl");
  }
  if (pl->opts->postgres != NULL) {
    configs[n].conninfo = pl->opts->postgres;
    list[n++] = sink_find("postgres");
  }
  for (guint i = 0; extra_sinks != NULL && extra_sinks[i] != NULL && n < G_N_ELEMENTS(list); i++)
    list[n++] = extra_sinks[i];
  for (guint i = 0; i < n; i++) {
    const SinkOps *ops = list[i];
    g_assert(ops != NULL);
    gpointer self = ops->open(&configs[i], store_durability(pl->store), error);
    if (self == NULL) {
      g_prefix_error(error, "%s sink: ", ops->name);
      return FALSE;
    }
    g_ptr_array_add(pl->sinks, (gpointer) ops);
    g_ptr_array_add(pl->sink_selves, self);
  }
  return TRUE;
}

static void
pipeline_close_sinks(Pipeline *pl)
{
  for (guint i = 0; i < pl->sinks->len; i++) {
    const SinkOps *ops = pl->sinks->pdata[i];
    ops->close(pl->sink_selves->pdata[i]);
  }
  g_ptr_array_set_size(pl->sinks, 0);
  g_ptr_array_set_size(pl->sink_selves, 0);
}

static SourceOutcome
pending_outcome(const PendingMessage *p)
{
  if (p->res.quarantine_reason != NULL)
    return SOURCE_OUTCOME_QUARANTINED;
  if (p->new_reports > 0)
    return SOURCE_OUTCOME_STORED;
  if (p->res.reports->len > 0)
    return SOURCE_OUTCOME_DUPLICATE;
  return SOURCE_OUTCOME_NOT_REPORT;
}

static void
pipeline_log_message(Pipeline *pl, const PendingMessage *p, SourceOutcome outcome)
{
  const char *origin = p->msg->origin;
  guint n = p->res.reports->len;
  /* What the source answered (HTTP), at the end of the same line. */
  const char *asep = p->msg->answer != NULL ? "; " : "";
  const char *answer = p->msg->answer != NULL ? p->msg->answer : "";
  switch (outcome) {
  case SOURCE_OUTCOME_QUARANTINED:
    tr_log_warn("%s: quarantined as %s: %s%s%s%s", origin, p->quarantine_path,
                p->res.quarantine_reason,
                p->new_reports > 0 ? " (its valid reports were stored)" : "", asep, answer);
    return;
  case SOURCE_OUTCOME_STORED:
  case SOURCE_OUTCOME_DUPLICATE:
    if (!pl->mda_mode && tr_log_verbosity() < 1)
      return;
    {
      g_autoptr(GString) ids = g_string_new(NULL);
      for (guint i = 0; i < n; i++) {
        const Report *r = p->res.reports->pdata[i];
        g_string_append_printf(ids, "%s%s/%s", i ? ", " : "", r->organization_name,
                               r->report_id);
      }
      tr_log_info("%s: %s %u report%s, %u new (%s)%s%s%s%s%s%s", origin,
                  outcome == SOURCE_OUTCOME_STORED ? "stored" : "duplicate", n,
                  n == 1 ? "" : "s", p->new_reports, ids->str,
                  p->res.verdict != NULL ? "; " : "",
                  p->res.verdict != NULL ? p->res.verdict : "",
                  p->res.notes != NULL ? "; ignored: " : "",
                  p->res.notes != NULL ? p->res.notes : "", asep, answer);
    }
    return;
  case SOURCE_OUTCOME_NOT_REPORT: {
    /* What was looked at and given up is said with the message, not dropped. */
    const char *notes = p->res.notes;
    if (pl->mda_mode)
      tr_log_info("%s: not a report, ignored%s%s%s%s", origin, notes ? ": " : "",
                  notes ? notes : "", asep, answer);
    else
      tr_log_verbose("%s: not a report, ignored%s%s%s%s", origin, notes ? ": " : "",
                     notes ? notes : "", asep, answer);
    return;
  }
  }
}

/* A sink's flush() on a thread of its own (SinkOps.flush_alongside). */
typedef struct {
  const SinkOps *ops;
  gpointer self;
  GThread *thread;
  GError *error;
} PipelineFlushThread;

static gpointer
pipeline_flush_thread_main(gpointer data)
{
  PipelineFlushThread *f = data;
  if (!f->ops->flush(f->self, &f->error))
    g_prefix_error(&f->error, "%s sink: ", f->ops->name);
  return NULL;
}

/* Wait for the flush on its thread, if one runs: FALSE + its error when it failed. */
static gboolean
pipeline_flush_thread_join(PipelineFlushThread *f, GError **error)
{
  if (f->thread == NULL)
    return TRUE;
  g_thread_join(g_steal_pointer(&f->thread));
  if (f->error == NULL)
    return TRUE;
  g_propagate_error(error, g_steal_pointer(&f->error));
  return FALSE;
}

static void
pipeline_rollback(Pipeline *pl)
{
  for (guint i = 0; i < pl->sinks->len; i++) {
    const SinkOps *ops = pl->sinks->pdata[i];
    ops->rollback(pl->sink_selves->pdata[i]);
  }
  store_rollback(pl->store);
}

/* Store the first @n pending messages durably, then acknowledge them. On failure
 * nothing of them is acknowledged and the whole pending list is dropped (the source
 * still has every message; the next run sees them again). */
static gboolean
pipeline_flush(Pipeline *pl, guint n, GError **error)
{
  g_assert(n <= pl->pending->len);
  if (n == 0)
    return TRUE;
  g_autofree SourceMessage **acks = NULL;          /* for source->commit_batch */
  g_autofree SourceOutcome *ack_outcomes = NULL;
  PipelineFlushThread alongside = { NULL };
  pipeline_workers_wait(pl->workers, pl->pending, n);
  for (guint i = 0; i < n; i++) {
    PendingMessage *p = pl->pending->pdata[i];
    pipeline_check_domains(pl->opts, &p->res);
  }

  gboolean need_store = FALSE;
  for (guint i = 0; i < n && !need_store; i++) {
    PendingMessage *p = pl->pending->pdata[i];
    need_store = p->res.reports->len > 0 || p->res.quarantine_reason != NULL;
  }

  if (need_store) {
    if (!store_lock(pl->store, pl->opts->lock_timeout, error))
      goto fail_unlocked;

    g_autoptr(GPtrArray) paths = g_ptr_array_new();
    for (guint i = 0; i < pl->sinks->len; i++) {
      const SinkOps *ops = pl->sinks->pdata[i];
      const char *path = ops->journal_path(pl->sink_selves->pdata[i]);
      if (path != NULL)
        g_ptr_array_add(paths, (gpointer) path);
    }
    if (!store_begin(pl->store, paths, error))
      goto fail;

    /* The batch's new reports in order (not stored before, not earlier in the batch),
     * and its quarantine copies. */
    g_autoptr(GPtrArray) fresh = g_ptr_array_new();
    for (guint i = 0; i < n; i++) {
      PendingMessage *p = pl->pending->pdata[i];
      for (guint j = 0; j < p->res.reports->len; j++) {
        Report *r = p->res.reports->pdata[j];
        if (store_contains(pl->store, r->key))
          continue;
        if (pl->opts->csv_path != NULL && !pl->opts->csv_raw)
          sink_csv_note_deviations(r);
        store_add(pl->store, r->key);
        p->new_reports++;
        g_ptr_array_add(fresh, r);
      }
      if (p->res.quarantine_reason != NULL) {
        p->quarantine_path = store_quarantine(pl->store, p->msg->data, p->msg->origin,
                                              p->res.quarantine_reason, error);
        if (p->quarantine_path == NULL)
          goto fail;
      }
    }

    /* Each sink takes the whole batch in turn. A sink that may flush alongside (the
     * tree: creating its files is most of a large batch's time) does so on a thread of
     * its own once the commit ends with syncfs(), while the next sinks take the batch
     * and flush. */
    StoreSync *sync = store_durability(pl->store);
    for (guint k = 0; k < pl->sinks->len; k++) {
      const SinkOps *ops = pl->sinks->pdata[k];
      gpointer self = pl->sink_selves->pdata[k];
      for (guint j = 0; j < fresh->len; j++) {
        if (!ops->write(self, fresh->pdata[j], error)) {
          g_prefix_error(error, "%s sink: ", ops->name);
          goto fail;
        }
      }
      if (ops->flush_alongside && alongside.thread == NULL && !store_sync_each(sync)) {
        alongside = (PipelineFlushThread) { ops, self, NULL, NULL };
        alongside.thread = g_thread_try_new("tlsrpt-flush", pipeline_flush_thread_main,
                                            &alongside, NULL);
      }
    }
    for (guint k = 0; k < pl->sinks->len; k++) {
      const SinkOps *ops = pl->sinks->pdata[k];
      gpointer self = pl->sink_selves->pdata[k];
      if (alongside.thread != NULL && alongside.self == self)
        continue;
      if (!ops->flush(self, error)) {
        g_prefix_error(error, "%s sink: ", ops->name);
        goto fail;
      }
    }
    if (!pipeline_flush_thread_join(&alongside, error) || !store_commit(pl->store, error))
      goto fail;
    store_unlock(pl->store);
  }

  /* Durable: acknowledge, count and log. A source that acknowledges a batch at once
   * (IMAP: one command per outcome) gets the whole batch after the log lines. */
  gboolean ok = TRUE;
  gboolean batched = pl->source->commit_batch != NULL;
  if (batched) {
    acks = g_new(SourceMessage *, n);
    ack_outcomes = g_new(SourceOutcome, n);
  }
  guint n_acks = 0;
  for (guint i = 0; i < n; i++) {
    PendingMessage *p = pl->pending->pdata[i];
    PipelineStats *st = pl->stats;
    if (p->res.tempfail_reason != NULL) {
      /* Neither stored nor acknowledged: the source keeps it for a later run. */
      tr_log_error("%s: not stored, left for a later run: %s", p->msg->origin,
                   p->res.tempfail_reason);
      st->not_stored++;
      st->tempfailed++;
      continue;
    }
    SourceOutcome outcome = pending_outcome(p);
    st->reports += p->res.reports->len;
    st->stored += p->new_reports;
    st->duplicates += p->res.reports->len - p->new_reports;
    if (outcome == SOURCE_OUTCOME_QUARANTINED)
      st->quarantined++;
    else if (outcome == SOURCE_OUTCOME_NOT_REPORT)
      st->not_reports++;
    if (batched) {
      pipeline_log_message(pl, p, outcome);
      acks[n_acks] = p->msg;
      ack_outcomes[n_acks++] = outcome;
      continue;
    }
    if (!ok) {
      pipeline_log_message(pl, p, outcome);
      continue;
    }
    /* Acknowledged first, then logged: the line can say what the source answered. */
    g_autoptr(GError) cerr = NULL;
    p->msg->reports = p->res.reports;
    p->msg->quarantine_reason = p->res.quarantine_reason;
    p->msg->quarantine_error = p->res.error;
    gboolean acked = pl->source->commit(pl->source_self, p->msg, outcome, &cerr);
    pipeline_log_message(pl, p, outcome);
    if (!acked) {
      /* Stored but not acknowledged: the next run finds a duplicate. */
      tr_log_error("%s: stored, but could not acknowledge it: %s", p->msg->origin,
                   cerr->message);
      g_propagate_error(error, g_steal_pointer(&cerr));
      ok = FALSE;
    }
  }
  if (batched && n_acks > 0) {
    g_autoptr(GError) cerr = NULL;
    if (!pl->source->commit_batch(pl->source_self, acks, ack_outcomes, n_acks, &cerr)) {
      /* A folder the server refuses is one configuration error, said once. */
      if (g_error_matches(cerr, SOURCE_ERROR, SOURCE_ERROR_CONFIG))
        tr_log_error("%u messages stored, but not acknowledged: %s", n_acks, cerr->message);
      else
        for (guint i = 0; i < n_acks; i++)
          tr_log_error("%s: stored, but could not acknowledge it: %s", acks[i]->origin,
                       cerr->message);
      g_propagate_error(error, g_steal_pointer(&cerr));
      ok = FALSE;
    }
  }
  g_ptr_array_remove_range(pl->pending, 0, n);
  return ok;

fail:
  /* A flush still running on its thread ends before anything is rolled back (its own
   * error, if any, is the lesser one). */
  {
    GError *bg_error = NULL;
    if (!pipeline_flush_thread_join(&alongside, &bg_error))
      g_error_free(bg_error);
  }
  pipeline_rollback(pl);
  store_unlock(pl->store);
fail_unlocked:
  /* Read ahead or not, every pending message is left for a later run. The cause comes
   * first and once, then how many messages it left behind (each one at -v). */
  pipeline_workers_wait(pl->workers, pl->pending, pl->pending->len);
  tr_log_error("%s", (*error)->message);
  guint n_left = pl->pending->len;
  gboolean transient = tr_error_classify(*error) == TR_ERROR_TRANSIENT;
  const char *why = transient ? " for a later run" : ": the error above needs a fix by hand";
  if (n_left == 1) {
    PendingMessage *p = pl->pending->pdata[0];
    tr_log_error("%s: not stored, left where it is%s", p->msg->origin, why);
  } else if (n_left > 1) {
    for (guint i = 0; i < n_left; i++) {
      PendingMessage *p = pl->pending->pdata[i];
      tr_log_verbose("%s: not stored, left for a later run", p->msg->origin);
    }
    tr_log_error("%u messages not stored, left where they are%s", n_left, why);
  }
  pl->stats->not_stored += n_left;
  g_ptr_array_set_size(pl->pending, 0);
  return FALSE;
}

/* Before any message is read: can the store and the output files be written at all?
 * (A read-only or foreign store would otherwise fail at the first commit, after a
 * whole batch was read.) The store directory exists: store_open() made it. */
static gboolean
pipeline_check_writable(Pipeline *pl, GError **error)
{
  if (faccessat(store_dir_fd(pl->store), ".", W_OK | X_OK, AT_EACCESS) != 0) {
    int errsv = errno;
    g_set_error(error, STORE_ERROR, STORE_ERROR_IO, "store %s is not writable: %s",
                store_path(pl->store), g_strerror(errsv));
    return FALSE;
  }
  const char *outputs[] = { pl->opts->csv_path, pl->opts->jsonl_path };
  for (gsize i = 0; i < G_N_ELEMENTS(outputs); i++) {
    const char *path = outputs[i];
    if (path == NULL || strcmp(path, "-") == 0)
      continue;
    g_autofree char *dir = g_path_get_dirname(path);
    gboolean exists = access(path, F_OK) == 0;
    if (exists ? access(path, W_OK) != 0 : access(dir, W_OK | X_OK) != 0) {
      int errsv = errno;
      g_set_error(error, SINK_ERROR, SINK_ERROR_IO, "%s %s is not writable: %s",
                  i == 0 ? "CSV file" : "JSON Lines file", exists ? path : dir,
                  g_strerror(errsv));
      return FALSE;
    }
  }
  return TRUE;
}

int
pipeline_run(const SourceOps *source, gpointer source_self, const TrOptions *opts,
             gboolean mda_mode, PipelineStats *stats)
{
  return pipeline_run_with(source, source_self, opts, mda_mode, NULL, stats);
}

int
pipeline_run_with(const SourceOps *source, gpointer source_self, const TrOptions *opts,
                  gboolean mda_mode, const SinkOps *const *extra_sinks, PipelineStats *stats)
{
  memset(stats, 0, sizeof *stats);
  Pipeline pl = {
    .source = source,
    .source_self = source_self,
    .opts = opts,
    .mda_mode = mda_mode,
    .sinks = g_ptr_array_new(),
    .sink_selves = g_ptr_array_new(),
    .pending = g_ptr_array_new_with_free_func((GDestroyNotify) pending_message_free),
    .stats = stats,
  };
  int rc = TR_EXIT_OK;
  TrExitMode mode = mda_mode ? TR_MODE_MDA : TR_MODE_BATCH;
  g_autoptr(GError) error = NULL;
  guint batch = mda_mode ? 1 : MAX(opts->batch_size, 1u);

  pl.trust = trust_new(&opts->trust, &error);
  if (error != NULL) {
    tr_log_error("%s", error->message);
    rc = tr_exit_for(error, mode);
    goto out;
  }
  pl.store = store_open(opts->store_dir, opts->quarantine_dir, &error);
  if (pl.store == NULL || !pipeline_check_writable(&pl, &error) ||
      !pipeline_open_sinks(&pl, extra_sinks, &error)) {
    tr_log_error("%s", error->message);
    rc = tr_exit_for(error, mode);
    goto out;
  }
  pl.workers = pipeline_workers_start(pipeline_worker_count(mda_mode, batch), &opts->limits,
                                      pl.trust);
  /* Pending: a full batch at the head (with workers: flushed once the next one is read),
   * then the @open messages of the batch being filled. */
  guint open = 0;
  gsize open_bytes = 0;

  for (;;) {
    if (pipeline_stop_requested()) {
      /* The caller decides what a stop means (75 for a batch, 0 for --watch). */
      tr_log_verbose("stop requested: storing what was read, leaving the rest");
      break;
    }
    SourceMessage *msg = NULL;
    if (!source->next(source_self, &msg, &error)) {
      if (error != NULL) {
        tr_log_error("%s", error->message);
        rc = tr_exit_for(error, mode);
      }
      break;
    }
    if (msg == NULL) {
      /* Nothing more for now: store everything pending, the batch being filled too. */
      open = 0;
      open_bytes = 0;
      if (!pipeline_flush(&pl, pl.pending->len, &error)) {
        tr_log_error("%s", error->message);
        rc = TR_EXIT_TEMPFAIL;
        break;
      }
      continue;
    }
    stats->messages++;
    if (msg->data == NULL) {
      stats->skipped++;
      tr_log_warn("%s: skipped, left alone: %s", msg->origin,
                  msg->skip_reason ? msg->skip_reason : "unreadable");
      source_message_free(msg);
      continue;
    }
    PendingMessage *p = g_new0(PendingMessage, 1);
    p->msg = msg;
    g_ptr_array_add(pl.pending, p);
    if (pl.workers != NULL) {
      pipeline_workers_push(pl.workers, p);
    } else {
      pipeline_process_message_trust(msg, &opts->limits, pl.trust, &p->res);
      p->processed = TRUE;
    }
    open++;
    open_bytes += g_bytes_get_size(msg->data);

    if (open >= batch || open_bytes >= PIPELINE_MAX_PENDING_BYTES) {
      /* Without workers the batch is flushed at once; with them, the batch before. */
      guint n = pl.pending->len - (pl.workers != NULL ? open : 0);
      open = 0;
      open_bytes = 0;
      if (!pipeline_flush(&pl, n, &error)) {
        rc = tr_exit_for(error, mode);   /* logged by pipeline_flush() */
        break;                /* the pending list was dropped */
      }
    }
    /* Only what is committed counts as stored: the pending batch is not, yet. */
    if (stats->messages % 256 == 0)
      tr_log_progress("%u message%s read, %u report%s stored", stats->messages,
                      stats->messages == 1 ? "" : "s", stats->stored,
                      stats->stored == 1 ? "" : "s");
  }

  /* Whatever ended the loop, store what was read before it. */
  g_clear_error(&error);
  if (!pipeline_flush(&pl, pl.pending->len - open, &error) ||
      !pipeline_flush(&pl, pl.pending->len, &error))
    rc = tr_exit_for(error, mode);   /* logged by pipeline_flush() */
  tr_log_progress("%s", "");
  if (source->known != NULL)
    stats->known = source->known(source_self);
  if (rc == TR_EXIT_OK && stats->tempfailed > 0)
    rc = TR_EXIT_TEMPFAIL;            /* a DKIM key may be had later: retry them */
  if (rc == TR_EXIT_OK)
    rc = tr_exit_for_outcome(stats->quarantined, stats->skipped, mode);

out:
  pipeline_workers_stop(pl.workers);
  pipeline_close_sinks(&pl);
  g_ptr_array_unref(pl.sinks);
  g_ptr_array_unref(pl.sink_selves);
  g_ptr_array_unref(pl.pending);
  if (pl.store != NULL)
    store_close(pl.store);
  trust_free(pl.trust);
  return rc;
}

char *
pipeline_stats_line(const PipelineStats *s)
{
  g_autoptr(GString) line = g_string_new(NULL);
  g_string_printf(line,
                  "messages=%u reports=%u stored=%u duplicates=%u not_reports=%u "
                  "quarantined=%u",
                  s->messages, s->reports, s->stored, s->duplicates, s->not_reports,
                  s->quarantined);
  if (s->skipped > 0)
    g_string_append_printf(line, " skipped=%u", s->skipped);
  if (s->not_stored > 0)
    g_string_append_printf(line, " not_stored=%u", s->not_stored);
  if (s->known > 0)
    g_string_append_printf(line, " already_ingested=%u", s->known);
  return g_string_free(g_steal_pointer(&line), FALSE);
}
