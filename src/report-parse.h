/* report-parse.h - JSON bytes into a Report (report.h): parse and validate, tolerating
 * real senders' quirks, each recorded as a deviation (report-deviation.h). */
#ifndef TLSRPT_REPORT_PARSE_H
#define TLSRPT_REPORT_PARSE_H

#include "common.h"
#include "report.h"
#include "report-filename.h"
#include "report-json.h"

/* Parse and validate JSON bytes (at most @limits->max_json_depth levels). Below 64 KiB
 * the strict reader of report-json.h reads them without json-c; what it declines, and
 * every larger document, goes to the json-c tokener, with the same result either way.
 * Thread-safe: each thread reuses its own tokeners and arenas. The "failure-details"
 * arrays of a large report are parsed one element at a time (see
 * REPORT_PARSE_INCREMENTAL), so that their json-c objects never all exist at once.
 * Rejects (REPORT_ERROR_JSON / REPORT_ERROR_INVALID, one-line message) only what cannot
 * be a report: not JSON or not an object, no "policies" array, no usable date-range and
 * no @fname to take it from. @fname (nullable) fills a missing date-range and
 * policy-domain; the JSON wins when they disagree (recorded as a deviation).
 * Computes report->key. Returns (transfer full). */
Report *report_parse(GBytes *json, const ReportFilename *fname, const TrLimits *limits,
                     GError **error);

/* How report_parse_with() reads the JSON; the result (report or error) is the same. */
typedef enum {
  REPORT_PARSE_AUTO,          /* what report_parse() does: below 64 KiB the strict reader
                                 of report-json.h, falling back to a json-c tree for what
                                 it declines; from 64 KiB json-c, incrementally */
  REPORT_PARSE_TREE,          /* one json-c object tree of the whole document */
  REPORT_PARSE_INCREMENTAL,   /* a scanner finds each non-empty "failure-details" array;
                                 its elements are parsed and converted one at a time and
                                 the rest of the document is parsed with the array
                                 replaced by a reference. Anything the scanner does not
                                 follow (comments, single quotes, an invalid element)
                                 gives the json-c error of the document, or a second
                                 parse as a tree when the document is valid after all. */
  REPORT_PARSE_STRICT,        /* the strict reader of report-json.h alone (tests): what
                                 it declines fails with REPORT_ERROR_DECLINED */
} ReportParseMode;

Report *report_parse_with(GBytes *json, const ReportFilename *fname, const TrLimits *limits,
                          ReportParseMode mode, GError **error);

/* What report_parse_member() hands its caller: the value of the member it was asked
 * for (transfer none: valid during the call only; NULL for JSON null). */
typedef void (*ReportMemberFunc)(Report *report, const ReportJsonValue *value,
                                 gpointer user_data);

/* report_parse(), and in the same pass @func reads the document's top-level member
 * @member, when it has one: `reindex` reads the "ingest" block of the tree's normalized
 * copies so, instead of parsing each file twice. @func is called once for the report
 * returned (never for one discarded when a parse is redone), before report_parse
 * returns; not at all on error or when the member is absent. */
Report *report_parse_member(GBytes *json, const TrLimits *limits, const char *member,
                            ReportMemberFunc func, gpointer user_data, GError **error);

/* Frees the arena of a parsed report's failure details (report_free() calls it). */
void report_parse_arena_free(struct ReportArena *arena);

#endif
