/* test_pipeline.c - the stage chain on real corpus messages, and the commit rule proved
 * with a fake source and fake sinks: nothing is acknowledged before every sink flushed. */
#include "testutil.h"

#include "mime-walk.h"
#include "pipeline.h"

/* ---- fake source: a list of fixture messages; records every commit ------------ */

typedef struct {
  GPtrArray *names;       /* fixture names; "!raw:" prefix = raw report */
  guint next;
  GPtrArray *committed;   /* "origin=outcome" strings */
  gboolean fail_next_at;  /* next() fails transiently at fail_index */
  guint fail_index;
} FakeSource;

static FakeSource *fake_source;

static gpointer
fake_source_open(const SourceConfig *config, char **args, GError **error)
{
  return fake_source;
}

static gboolean
fake_source_next(gpointer self, SourceMessage **msg, GError **error)
{
  FakeSource *fs = self;
  if (fs->fail_next_at && fs->next == fs->fail_index) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "fake: connection lost");
    return FALSE;
  }
  if (fs->next >= fs->names->len)
    return FALSE;
  const char *name = fs->names->pdata[fs->next++];
  SourceMessage *m = g_new0(SourceMessage, 1);
  if (g_str_has_prefix(name, "!raw:")) {
    name += 5;
    m->raw_report = TRUE;
    m->filename = g_path_get_basename(name);
  }
  m->data = tu_fixture(name);
  m->origin = g_strdup(name);
  m->received = 1700000000;
  *msg = m;
  return TRUE;
}

static gboolean
fake_source_commit(gpointer self, SourceMessage *msg, SourceOutcome outcome, GError **error)
{
  FakeSource *fs = self;
  static const char *names[] = { "stored", "duplicate", "quarantined", "not-report" };
  g_ptr_array_add(fs->committed, g_strdup_printf("%s=%s", msg->origin, names[outcome]));
  return TRUE;
}

static void
fake_source_close(gpointer self)
{
}

static const SourceOps fake_source_ops = {
  "fake", fake_source_open, fake_source_next, fake_source_commit, fake_source_close, NULL,
  NULL,
};

/* ---- fake sink: counts writes and flushes; can fail its flush -------------------- */

typedef struct {
  guint writes;
  guint flushed;          /* reports made durable */
  guint staged;
  gboolean fail_flush;
} FakeSink;

static FakeSink fake_sink;

static gpointer
fake_sink_open(const SinkConfig *config, StoreSync *sync, GError **error)
{
  return &fake_sink;
}

static gboolean
fake_sink_write(gpointer self, const Report *report, GError **error)
{
  FakeSink *s = self;
  s->writes++;
  s->staged++;
  return TRUE;
}

static gboolean
fake_sink_flush(gpointer self, GError **error)
{
  FakeSink *s = self;
  if (s->fail_flush) {
    g_set_error(error, SINK_ERROR, SINK_ERROR_IO, "fake: No space left on device");
    return FALSE;
  }
  s->flushed += s->staged;
  s->staged = 0;
  return TRUE;
}

static void
fake_sink_rollback(gpointer self)
{
  ((FakeSink *) self)->staged = 0;
}

static const char *
fake_sink_journal_path(gpointer self)
{
  return NULL;
}

static void
fake_sink_close(gpointer self)
{
}

static const SinkOps fake_sink_ops = {
  "fake", fake_sink_open, fake_sink_write, fake_sink_flush, fake_sink_rollback,
  fake_sink_journal_path, fake_sink_close, FALSE,
};

static const SinkOps *const fake_sinks[] = { &fake_sink_ops, NULL };

/* ---- fixtures ---------------------------------------------------------------- */

typedef struct {
  char *dir;
  TrOptions opts;
  FakeSource src;
} Ctx;

static int
setup(void **state)
{
  Ctx *c = g_new0(Ctx, 1);
  c->dir = tu_mkdtemp();
  tr_options_init(&c->opts);
  c->opts.trust.dkim_keys = g_strdup(tu_no_dkim_keys());   /* no DNS (testutil.h) */
  c->opts.store_dir = g_build_filename(c->dir, "store", NULL);
  c->opts.no_store = TRUE;
  c->opts.verbosity = -1;
  c->src.names = g_ptr_array_new();
  c->src.committed = g_ptr_array_new_with_free_func(g_free);
  fake_source = &c->src;
  memset(&fake_sink, 0, sizeof fake_sink);
  *state = c;
  return 0;
}

static int
teardown(void **state)
{
  Ctx *c = *state;
  tu_rmtree(c->dir);
  g_free(c->dir);
  tr_options_clear(&c->opts);
  g_ptr_array_unref(c->src.names);
  g_ptr_array_unref(c->src.committed);
  g_free(c);
  return 0;
}

static int
run(Ctx *c, gboolean mda, PipelineStats *st)
{
  return pipeline_run_with(&fake_source_ops, &c->src, &c->opts, mda, fake_sinks, st);
}

/* ---- tests ------------------------------------------------------------------- */

static void
test_process_corpus_message(void **state)
{
  g_autoptr(GBytes) data = tu_fixture("corpus/mox/example.eml");
  SourceMessage m = { .data = data, .origin = (char *) "example.eml", .received = 1 };
  TrLimits limits;
  tr_limits_init(&limits);
  PipelineResult res;
  pipeline_process_message(&m, &limits, &res);
  assert_null(res.quarantine_reason);
  assert_false(res.not_report);
  assert_int_equal(res.reports->len, 1);
  Report *r = res.reports->pdata[0];
  assert_string_equal(r->organization_name, "Google Inc.");
  assert_string_equal(r->ingest.source, "example.eml");
  assert_string_equal(r->ingest.raw_extension, "json.gz");
  assert_non_null(r->ingest.raw);
  assert_string_equal(r->ingest.filename,
                      "google.com!test.xmox.nl!1663200000!1663286399!001.json.gz");
  pipeline_result_clear(&res);
}

/* A candidate part that cannot be read at all (MimeMessage.problems): STRONG keeps its
 * reason in the quarantine (issue 18 s6: it disappeared without a trace); WEAK is
 * noted for the message's log line. A strong part that fails says how it was found. */
static void
test_problems_are_kept(void **state)
{
  TrLimits limits;
  tr_limits_init(&limits);
  g_autoptr(GBytes) plain = tu_fixture("sample-maildir/new/1700000011.M11P4242.sample");
  SourceMessage m = { .data = plain, .origin = (char *) "plain" };
  for (int strong = 0; strong < 2; strong++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(MimeMessage) mm = mime_walk_message(plain, &limits, &error);
    assert_non_null(mm);
    assert_int_equal(mm->parts->len, 0);
    MimeProblem *pr = g_new0(MimeProblem, 1);
    pr->text = g_strdup("part 2 (application/tlsrpt+gzip): cannot decode its transfer "
                        "encoding");
    pr->evidence = strong ? MIME_EVIDENCE_STRONG : MIME_EVIDENCE_WEAK;
    g_ptr_array_add(mm->problems, pr);
    PipelineResult res = { 0 };
    res.reports = g_ptr_array_new_with_free_func((GDestroyNotify) report_free);
    pipeline_result_from_walk(&m, mm, &limits, &res);
    if (strong) {
      assert_non_null(res.quarantine_reason);
      assert_non_null(strstr(res.quarantine_reason, "part 2 (application/tlsrpt+gzip): "
                                                    "cannot decode its transfer encoding"));
      assert_false(res.not_report);
    } else {
      assert_null(res.quarantine_reason);
      assert_true(res.not_report);
      assert_non_null(res.notes);
      assert_non_null(strstr(res.notes, "cannot decode its transfer encoding"));
    }
    pipeline_result_clear(&res);
  }

  /* A strong part whose gzip is broken: the reason names the part and why it counted. */
  g_autoptr(GBytes) good = tu_fixture("corpus/mox/example.eml");
  gsize len = 0;
  const char *d = g_bytes_get_data(good, &len);
  g_autoptr(GString) broken = g_string_new_len(d, (gssize) len);
  char *at = strstr(broken->str, "\nH4sI");
  assert_non_null(at);
  g_string_insert(broken, at - broken->str + 5, "AAAA");
  g_autoptr(GBytes) bb = g_bytes_new(broken->str, broken->len);
  SourceMessage b = { .data = bb, .origin = (char *) "broken" };
  PipelineResult res;
  pipeline_process_message(&b, &limits, &res);
  assert_non_null(res.quarantine_reason);
  assert_non_null(strstr(res.quarantine_reason, "part "));
  assert_non_null(strstr(res.quarantine_reason, "found by its "));
  pipeline_result_clear(&res);
}

/* Sources do not log: what they have to say comes up through SourceConfig.events. */
typedef struct {
  GPtrArray *lines;
} Events;

static void
collect_event(SourceEventLevel level, const char *origin, const char *text, gpointer data)
{
  Events *ev = data;
  g_ptr_array_add(ev->lines, g_strdup_printf("%d %s: %s", level, origin ? origin : "-", text));
}

static void
test_source_events_go_up(void **state)
{
  g_autofree char *dir = tu_mkdtemp();
  g_autofree char *md = g_build_filename(dir, "md", NULL);
  g_autofree char *store = g_build_filename(dir, "store", NULL);
  g_assert(g_mkdir_with_parents(store, 0700) == 0);
  for (const char *const *sub = (const char *const[]){ "new", "cur", "tmp", NULL }; *sub;
       sub++) {
    g_autofree char *p = g_build_filename(md, *sub, NULL);
    g_assert(g_mkdir_with_parents(p, 0700) == 0);
  }
  g_autofree char *msg = g_build_filename(md, "cur", "1700000000.M1P1.x:2,S", NULL);
  tu_write_file(msg, "Subject: a\n\nhello\n", 19);
  Events ev = { g_ptr_array_new_with_free_func(g_free) };
  for (int round = 0; round < 2; round++) {
    SourceConfig cfg;
    source_config_init(&cfg);
    cfg.store_dir = g_strdup(store);
    cfg.events.func = collect_event;
    cfg.events.data = &ev;
    const char *args[] = { md, NULL };
    g_autoptr(GError) error = NULL;
    gpointer self = source_maildir_ops.open(&cfg, (char **) args, &error);
    assert_non_null(self);
    SourceMessage *m = NULL;
    while (source_maildir_ops.next(self, &m, &error)) {
      assert_true(source_maildir_ops.commit(self, m, SOURCE_OUTCOME_STORED, &error));
      source_message_free(m);
    }
    assert_null(error);
    source_maildir_ops.close(self);
    source_config_clear(&cfg);
  }
  /* The second run knew the message: said once, at -v, about the Maildir. */
  g_autofree char *want = g_strdup_printf("%d %s: 1 message ingested by an earlier run, "
                                          "not read again", SOURCE_EVENT_VERBOSE, md);
  gboolean found = FALSE;
  for (guint i = 0; i < ev.lines->len; i++)
    found = found || strcmp(ev.lines->pdata[i], want) == 0;
  if (!found)
    fail_msg("no event '%s' (%u events)", want, ev.lines->len);
  g_ptr_array_unref(ev.lines);
  tu_rmtree(dir);
}

static void
test_process_not_report_and_broken(void **state)
{
  TrLimits limits;
  tr_limits_init(&limits);
  g_autoptr(GBytes) plain = tu_fixture("sample-maildir/new/1700000011.M11P4242.sample");
  SourceMessage m = { .data = plain, .origin = (char *) "plain" };
  PipelineResult res;
  pipeline_process_message(&m, &limits, &res);
  assert_true(res.not_report);
  assert_null(res.quarantine_reason);
  assert_int_equal(res.reports->len, 0);
  pipeline_result_clear(&res);

  /* A raw report that is not JSON: quarantined with a reason. */
  GBytes *junk = g_bytes_new_static("{\"policies\": [", 14);
  SourceMessage j = { .data = junk, .origin = (char *) "junk", .raw_report = TRUE,
                      .filename = (char *) "a!b.example!1!2.json" };
  pipeline_process_message(&j, &limits, &res);
  assert_non_null(res.quarantine_reason);
  assert_int_equal(res.reports->len, 0);
  pipeline_result_clear(&res);
  g_bytes_unref(junk);

  /* An oversized message handed over with its reason is quarantined with it. */
  SourceMessage big = { .data = plain, .origin = (char *) "big",
                        .skip_reason = (char *) "message exceeds --max-message-size" };
  pipeline_process_message(&big, &limits, &res);
  assert_string_equal(res.quarantine_reason, "message exceeds --max-message-size");
  pipeline_result_clear(&res);
}

static void
test_commit_after_flush(void **state)
{
  Ctx *c = *state;
  g_ptr_array_add(c->src.names, "corpus/mox/example.eml");
  g_ptr_array_add(c->src.names, "sample-maildir/new/1700000011.M11P4242.sample");
  g_ptr_array_add(c->src.names, "corpus/mox/example.eml");
  g_ptr_array_add(c->src.names, "!raw:corpus/parsedmarc/mail.ru.json");
  PipelineStats st;
  assert_int_equal(run(c, FALSE, &st), TR_EXIT_OK);
  assert_int_equal(st.messages, 4);
  assert_int_equal(st.reports, 3);
  assert_int_equal(st.stored, 2);
  assert_int_equal(st.duplicates, 1);
  assert_int_equal(st.not_reports, 1);
  assert_int_equal(fake_sink.writes, 2);
  assert_int_equal(fake_sink.flushed, 2);
  assert_int_equal(c->src.committed->len, 4);
  assert_string_equal(c->src.committed->pdata[0], "corpus/mox/example.eml=stored");
  assert_string_equal(c->src.committed->pdata[2], "corpus/mox/example.eml=duplicate");
  assert_string_equal(c->src.committed->pdata[1],
                      "sample-maildir/new/1700000011.M11P4242.sample=not-report");

  /* A second run finds only duplicates: the index survived the run. */
  g_ptr_array_set_size(c->src.committed, 0);
  c->src.next = 0;
  memset(&fake_sink, 0, sizeof fake_sink);
  assert_int_equal(run(c, FALSE, &st), TR_EXIT_OK);
  assert_int_equal(st.stored, 0);
  assert_int_equal(st.duplicates, 3);
  assert_int_equal(fake_sink.writes, 0);
}

static void
test_failing_sink_means_no_commit(void **state)
{
  Ctx *c = *state;
  g_ptr_array_add(c->src.names, "corpus/mox/example.eml");
  g_ptr_array_add(c->src.names, "corpus/mox/microsoft.eml");
  fake_sink.fail_flush = TRUE;
  PipelineStats st;
  assert_int_equal(run(c, TRUE, &st), TR_EXIT_TEMPFAIL);
  assert_int_equal(c->src.committed->len, 0);
  assert_int_equal(fake_sink.flushed, 0);

  /* Nothing of the failed commit reached the index: a retry stores both. */
  fake_sink.fail_flush = FALSE;
  c->src.next = 0;
  assert_int_equal(run(c, FALSE, &st), TR_EXIT_OK);
  assert_int_equal(st.stored, 2);
  assert_int_equal(c->src.committed->len, 2);
}

static void
test_transient_source_error_flushes_what_was_read(void **state)
{
  Ctx *c = *state;
  g_ptr_array_add(c->src.names, "corpus/mox/example.eml");
  g_ptr_array_add(c->src.names, "corpus/mox/microsoft.eml");
  c->src.fail_next_at = TRUE;
  c->src.fail_index = 1;
  PipelineStats st;
  assert_int_equal(run(c, FALSE, &st), TR_EXIT_TEMPFAIL);
  assert_int_equal(st.stored, 1);
  assert_int_equal(c->src.committed->len, 1);
  assert_string_equal(c->src.committed->pdata[0], "corpus/mox/example.eml=stored");
}

static void
test_quarantine_then_commit(void **state)
{
  Ctx *c = *state;
  /* A tlsrpt message whose gzip is broken: kept in the quarantine, then acknowledged. */
  g_autoptr(GBytes) good = tu_fixture("corpus/mox/example.eml");
  g_autofree char *text = g_strndup(g_bytes_get_data(good, NULL), g_bytes_get_size(good));
  char *p = strstr(text, "\nH4sI");
  assert_non_null(p);
  memcpy(p + 1, "AAAA", 4);
  g_autofree char *path = g_build_filename(c->dir, "broken.eml", NULL);
  tu_write_file(path, text, strlen(text));
  g_ptr_array_add(c->src.names, path);
  PipelineStats st;
  assert_int_equal(run(c, FALSE, &st), TR_EXIT_QUARANTINED);
  assert_int_equal(st.quarantined, 1);
  assert_int_equal(c->src.committed->len, 1);
  g_autofree char *q = g_build_filename(c->dir, "store", "quarantine", NULL);
  assert_int_equal(tu_count_files(q, ".eml"), 1);
  assert_int_equal(tu_count_files(q, ".reason"), 1);
}

/* Worker threads change nothing a source or a sink can see: the same commits in the
 * same order, the same counts, over several batches of reports, duplicates, plain
 * messages and quarantined ones. */
static void
test_workers_keep_order(void **state)
{
  static const char *const names[] = {
    "corpus/mox/example.eml", "corpus/mox/microsoft.eml",
    "sample-maildir/new/1700000011.M11P4242.sample", "hostile/gzip-truncated.eml",
    "corpus/parsedmarc/google.com_smtp_tls_report.eml", "corpus/mox/example.eml",
    "synthetic/mime-two-reports.eml", "hostile/mime-base64-garbage.eml",
    "!raw:corpus/parsedmarc/mail.ru.json", "synthetic/mime-forwarded-rfc822.eml",
    "corpus/stalwart-mail-auth/rpt01.eml", "hostile/not-a-message.bin",
  };
  Ctx *c = *state;
  c->opts.batch_size = 5;
  g_autoptr(GPtrArray) first = NULL;
  PipelineStats first_st = { 0 };
  const guint workers[] = { 1, 4, 2 };
  for (guint w = 0; w < G_N_ELEMENTS(workers); w++) {
    for (guint round = 0; round < 4; round++)
      for (guint i = 0; i < G_N_ELEMENTS(names); i++)
        g_ptr_array_add(c->src.names, (gpointer) names[i]);
    g_free(c->opts.store_dir);
    c->opts.store_dir = g_strdup_printf("%s/store-%u", c->dir, w);
    memset(&fake_sink, 0, sizeof fake_sink);
    pipeline_set_workers(workers[w]);
    PipelineStats st;
    int rc = run(c, FALSE, &st);
    pipeline_set_workers(0);
    assert_int_equal(rc, TR_EXIT_QUARANTINED);
    assert_int_equal(st.messages, 4 * G_N_ELEMENTS(names));
    assert_int_equal(c->src.committed->len, st.messages);
    assert_int_equal(fake_sink.flushed, st.stored);
    if (first == NULL) {
      first = g_ptr_array_new_with_free_func(g_free);
      for (guint i = 0; i < c->src.committed->len; i++)
        g_ptr_array_add(first, g_strdup(c->src.committed->pdata[i]));
      first_st = st;
      assert_true(st.stored > 0 && st.duplicates > 0 && st.quarantined > 0);
    } else {
      assert_memory_equal(&st, &first_st, sizeof st);
      for (guint i = 0; i < first->len; i++)
        assert_string_equal(c->src.committed->pdata[i], first->pdata[i]);
    }
    g_ptr_array_set_size(c->src.committed, 0);
    g_ptr_array_set_size(c->src.names, 0);
    c->src.next = 0;
  }
}

int
main(void)
{
  mime_walk_init();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_process_corpus_message),
    cmocka_unit_test(test_process_not_report_and_broken),
    cmocka_unit_test(test_problems_are_kept),
    cmocka_unit_test(test_source_events_go_up),
    cmocka_unit_test_setup_teardown(test_commit_after_flush, setup, teardown),
    cmocka_unit_test_setup_teardown(test_failing_sink_means_no_commit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_transient_source_error_flushes_what_was_read,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_quarantine_then_commit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_workers_keep_order, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
