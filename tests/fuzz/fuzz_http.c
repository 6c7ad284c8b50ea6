/* fuzz_http.c - libFuzzer target over what `serve` itself does with a request
 * (src/source-http.c; HTTP parsing is libmicrohttpd's): the input's first line is taken
 * as the Content-Type, Content-Encoding and X-Forwarded-For header values, the rest as
 * the POST body, which goes through the same stage chain as a POSTed report (a raw
 * report: decode with the size cap, parse, validate) and gets its status and one-line
 * answer. */
#include "pipeline.h"
#include "source-http.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const uint8_t *nl = memchr(data, '\n', size);
  gsize hlen = nl != NULL ? (gsize) (nl - data) : size;
  g_autofree char *header = g_strndup((const char *) data, hlen);
  const uint8_t *body = nl != NULL ? nl + 1 : data + size;
  gsize blen = size - (gsize) (body - data);

  int type = source_http_media_type(header);
  if (type < -1 || type > 1)
    abort();
  (void) source_http_encoding_ok(header);
  char addr[46];
  if (source_http_forwarded_for(header, addr) && strlen(addr) >= sizeof addr)
    abort();
  g_autofree char *line = source_http_one_line(header, 300);
  if (strlen(line) > 300 || strchr(line, '\n') != NULL)
    abort();

  TrLimits limits;
  tr_limits_init(&limits);
  limits.max_report_size = 1024 * 1024;   /* the fuzzer's memory, not the default */
  SourceMessage msg = { 0 };
  msg.data = g_bytes_new(body, blen);
  msg.origin = (char *) "https:192.0.2.1";
  msg.raw_report = TRUE;
  PipelineResult res;
  pipeline_process_message(&msg, &limits, &res);
  /* A raw report is one report or one reason, never both, never neither. */
  if ((res.reports->len == 1) == (res.quarantine_reason != NULL) || res.reports->len > 1)
    abort();
  SourceOutcome outcome = res.reports->len == 1 ? SOURCE_OUTCOME_STORED
                                                : SOURCE_OUTCOME_QUARANTINED;
  guint status = source_http_status_for(outcome, res.error);
  if (outcome == SOURCE_OUTCOME_QUARANTINED && status != 400 && status != 413)
    abort();
  g_autofree char *reason = source_http_one_line(res.quarantine_reason, 300);
  if (strchr(reason, '\n') != NULL || strchr(reason, '\r') != NULL)
    abort();
  pipeline_result_clear(&res);
  g_bytes_unref(msg.data);
  return 0;
}
