/* fuzz_message.c - libFuzzer target over the whole message path: bytes -> MIME walk ->
 * decode -> report parse -> normalize, with the sinks replaced by in-memory formatting
 * (report_to_json and the CSV rows). The same bytes also go through the raw-report path
 * (a loose .json / .json.gz file) under a RFC 8460 §5.1 file name.
 *
 * Besides "no crash, no leak, no undefined behaviour", it checks properties the store
 * relies on: every name built from sender-controlled text is a safe path component. */
#include "fsutil.h"
#include "mime-walk.h"
#include "pipeline.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static TrLimits fuzz_limits;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  mime_walk_init();
  tr_limits_init(&fuzz_limits);
  /* Small caps keep each execution fast; the code paths are the same. */
  fuzz_limits.max_report_size = 4u * 1024 * 1024;
  fuzz_limits.max_parts = 200;
  return 0;
}

static void
fuzz_check_component(const char *text, gsize max_len)
{
  if (text == NULL)
    return;
  g_autofree char *c = fsutil_sanitize_component(text, max_len);
  gsize n = strlen(c);
  if (n == 0 || n > max_len || strchr(c, '/') != NULL || c[0] == '.' ||
      strcmp(c, "..") == 0)
    abort();
}

static void
fuzz_exercise_report(const Report *r)
{
  g_autoptr(GString) out = g_string_new(NULL);
  report_to_json(r, TRUE, out);
  g_string_truncate(out, 0);
  report_to_json(r, FALSE, out);
  /* A JSON Lines record must be one line. */
  if (memchr(out->str, '\n', out->len) != NULL)
    abort();
  g_string_truncate(out, 0);
  sink_csv_format_rows(r, out);
  g_autofree char *hex = report_key_hex(r->key);
  if (strlen(hex) != 32)
    abort();
  g_autofree char *primary = report_primary_domain(r);
  fuzz_check_component(primary, 255);
  fuzz_check_component(r->organization_name, 128);
  fuzz_check_component(r->report_id, 128);
  fuzz_check_component(r->ingest.filename, 128);
}

static void
fuzz_run(GBytes *bytes, gboolean raw, const char *filename)
{
  SourceMessage msg = {
    .data = bytes,
    .origin = (char *) "fuzz",
    .filename = (char *) filename,
    .raw_report = raw,
    .received = 1700000000,
  };
  PipelineResult res;
  pipeline_process_message(&msg, &fuzz_limits, &res);
  for (guint i = 0; i < res.reports->len; i++)
    fuzz_exercise_report(res.reports->pdata[i]);
  /* Exactly one outcome. */
  if (res.reports->len == 0 && res.quarantine_reason == NULL && !res.not_report && raw)
    abort();
  if (res.quarantine_reason != NULL && strchr(res.quarantine_reason, '\n') != NULL)
    abort();
  pipeline_result_clear(&res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  fuzz_run(bytes, FALSE, NULL);
  fuzz_run(bytes, TRUE, "sender.example!example.com!1663200000!1663286399!001.json.gz");
  fuzz_run(bytes, TRUE, NULL);
  return 0;
}
