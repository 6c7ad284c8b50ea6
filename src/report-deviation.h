/* report-deviation.h - the deviations a report may carry: each quirk of a sender that
 * the parser tolerates instead of rejecting the report, as one table of data.
 *
 * Each deviation has a stable slug (what programs count and match: summaries, checks,
 * metrics), a text for people, and the report field it concerns. Slugs and texts are
 * written into every stored report ("ingest"."deviations", see report_to_json()), so
 * neither is ever reworded or reused: a new quirk gets a new entry. The list, with
 * what each means, is docs/deviations.md (a test checks that it names every slug).
 *
 * Stored form: "deviations": [{"slug": "mx-host-is-string", "text": "mx-host is a
 * string"}, ...]. Stores written before the slugs existed hold the texts alone
 * ("deviations": ["mx-host is a string", ...]): report_deviation_from_text() maps them
 * back. The enum's values are not stored and may be renumbered; slugs may not. */
#ifndef TLSRPT_REPORT_DEVIATION_H
#define TLSRPT_REPORT_DEVIATION_H

#include <glib.h>

/* The CSV columns of sender text, for the deviations of the CSV (sink-csv.c): X(ID, field). */
#define REPORT_DEV_CSV_FIELDS(X) \
  X(ORGANIZATION_NAME, "organization-name") \
  X(CONTACT_INFO, "contact-info") \
  X(REPORT_ID, "report-id") \
  X(POLICY_DOMAIN, "policy-domain") \
  X(POLICY_TYPE, "policy-type") \
  X(POLICY_STRING, "policy-string") \
  X(MX_HOST, "mx-host") \
  X(RESULT_TYPE, "result-type") \
  X(SENDING_MTA_IP, "sending-mta-ip") \
  X(RECEIVING_MX_HOSTNAME, "receiving-mx-hostname") \
  X(RECEIVING_MX_HELO, "receiving-mx-helo") \
  X(RECEIVING_IP, "receiving-ip") \
  X(FAILURE_REASON_CODE, "failure-reason-code") \
  X(ADDITIONAL_INFORMATION, "additional-information") \
  X(SUBMITTER, "submitter") \
  X(SOURCE, "source")

typedef enum {
  /* the document */
  REPORT_DEV_BOM,
  REPORT_DEV_STRING_NUL,
  REPORT_DEV_STRING_INVALID_UTF8,
  /* what json-c tolerates but RFC 8259 does not (report_json_leniency()) */
  REPORT_DEV_JSON_SINGLE_QUOTES,
  REPORT_DEV_JSON_COMMENTS,
  REPORT_DEV_JSON_TRAILING_COMMAS,
  REPORT_DEV_JSON_NAN_INFINITY,
  REPORT_DEV_JSON_LITERAL_CASE,
  REPORT_DEV_JSON_NUMBER_FORM,
  REPORT_DEV_JSON_CONTROL_IN_STRING,
  REPORT_DEV_JSON_LONE_SURROGATE,
  /* top level */
  REPORT_DEV_ORGANIZATION_NAME_MISSING,
  REPORT_DEV_ORGANIZATION_NAME_NOT_STRING,
  REPORT_DEV_REPORT_ID_MISSING,
  REPORT_DEV_REPORT_ID_NOT_STRING,
  REPORT_DEV_CONTACT_INFO_NULL,
  REPORT_DEV_CONTACT_INFO_MISSING,
  REPORT_DEV_CONTACT_INFO_EMPTY,
  REPORT_DEV_CONTACT_INFO_NOT_STRING,
  /* date-range */
  REPORT_DEV_DATE_RANGE_MISSING,
  REPORT_DEV_START_DATETIME_MISSING,
  REPORT_DEV_START_DATETIME_UNPARSEABLE,
  REPORT_DEV_END_DATETIME_MISSING,
  REPORT_DEV_END_DATETIME_UNPARSEABLE,
  REPORT_DEV_DATETIME_NUMBER,
  REPORT_DEV_DATETIME_ZONELESS,
  REPORT_DEV_DATE_RANGE_REVERSED,
  REPORT_DEV_DATE_RANGE_FROM_FILENAME,
  REPORT_DEV_FILENAME_BEGIN_DIFFERS,
  REPORT_DEV_FILENAME_END_DIFFERS,
  REPORT_DEV_FILENAME_POLICY_DOMAIN_DIFFERS,
  /* policies */
  REPORT_DEV_POLICIES_SINGLE_OBJECT,
  REPORT_DEV_POLICIES_EMPTY,
  REPORT_DEV_POLICY_ENTRY_NOT_OBJECT,
  REPORT_DEV_POLICY_MISSING,
  REPORT_DEV_POLICY_TYPE_MISSING,
  REPORT_DEV_POLICY_TYPE_UNKNOWN,
  REPORT_DEV_POLICY_TYPE_NOT_STRING,
  REPORT_DEV_POLICY_STRING_MISSING,
  REPORT_DEV_POLICY_STRING_IS_STRING,
  REPORT_DEV_POLICY_STRING_NOT_ARRAY,
  REPORT_DEV_POLICY_STRING_NON_STRING_ENTRY,
  REPORT_DEV_POLICY_STRING_ENCODED_ARRAY,
  REPORT_DEV_POLICY_STRING_CR,
  REPORT_DEV_POLICY_DOMAIN_MISSING,
  REPORT_DEV_POLICY_DOMAIN_NOT_STRING,
  REPORT_DEV_MX_HOST_IS_STRING,
  REPORT_DEV_MX_HOST_NOT_ARRAY,
  REPORT_DEV_MX_HOST_NON_STRING_ENTRY,
  REPORT_DEV_MX_HOST_PREFIX,
  REPORT_DEV_MX_HOST_EMPTY_ENTRY,
  /* summary */
  REPORT_DEV_SUMMARY_MISSING,
  REPORT_DEV_TOTAL_SUCCESSFUL_MISSING,
  REPORT_DEV_TOTAL_SUCCESSFUL_NOT_NUMBER,
  REPORT_DEV_TOTAL_SUCCESSFUL_NEGATIVE,
  REPORT_DEV_TOTAL_SUCCESSFUL_OUT_OF_RANGE,
  REPORT_DEV_TOTAL_SUCCESSFUL_IS_STRING,
  REPORT_DEV_TOTAL_SUCCESSFUL_NOT_INTEGER,
  REPORT_DEV_TOTAL_FAILURE_MISSING,
  REPORT_DEV_TOTAL_FAILURE_NOT_NUMBER,
  REPORT_DEV_TOTAL_FAILURE_NEGATIVE,
  REPORT_DEV_TOTAL_FAILURE_OUT_OF_RANGE,
  REPORT_DEV_TOTAL_FAILURE_IS_STRING,
  REPORT_DEV_TOTAL_FAILURE_NOT_INTEGER,
  /* failure-details */
  REPORT_DEV_FAILURE_DETAILS_SINGLE_OBJECT,
  REPORT_DEV_FAILURE_DETAILS_NOT_ARRAY,
  REPORT_DEV_FAILURE_DETAIL_NOT_OBJECT,
  REPORT_DEV_FAILURE_DETAIL_FIELDS_MISSING,
  REPORT_DEV_FAILURE_DETAIL_FIELD_EMPTY,
  REPORT_DEV_FAILURE_COUNTS_EXCEED_TOTAL,
  REPORT_DEV_RESULT_TYPE_MISSING,
  REPORT_DEV_RESULT_TYPE_NOT_STRING,
  REPORT_DEV_SENDING_MTA_IP_NOT_STRING,
  REPORT_DEV_RECEIVING_MX_HOSTNAME_NOT_STRING,
  REPORT_DEV_RECEIVING_MX_HELO_NOT_STRING,
  REPORT_DEV_RECEIVING_IP_NOT_STRING,
  REPORT_DEV_ADDITIONAL_INFORMATION_NOT_STRING,
  REPORT_DEV_FAILURE_REASON_CODE_NOT_STRING,
  REPORT_DEV_FAILED_SESSION_COUNT_MISSING,
  REPORT_DEV_FAILED_SESSION_COUNT_NOT_NUMBER,
  REPORT_DEV_FAILED_SESSION_COUNT_NEGATIVE,
  REPORT_DEV_FAILED_SESSION_COUNT_OUT_OF_RANGE,
  REPORT_DEV_FAILED_SESSION_COUNT_IS_STRING,
  REPORT_DEV_FAILED_SESSION_COUNT_NOT_INTEGER,
  /* the CSV (not --csv-raw) changed a value: REPORT_DEV_CSV_FORMULA_<ID> (a ' before a
   * formula-like value), REPORT_DEV_CSV_CONTROL_<ID> (control characters as \xNN) */
#define REPORT_DEV_CSV_ENUM(ID, name) REPORT_DEV_CSV_FORMULA_##ID, REPORT_DEV_CSV_CONTROL_##ID,
  REPORT_DEV_CSV_FIELDS(REPORT_DEV_CSV_ENUM)
#undef REPORT_DEV_CSV_ENUM
  REPORT_DEV_N,
} ReportDeviation;

typedef struct {
  const char *slug;               /* stable: lower case, digits and '-' */
  const char *text;               /* stable: as stored since the first release */
  const char *field;              /* the RFC 8460 field it concerns; NULL: the document */
} ReportDeviationInfo;

/* The entry of @d; NULL when @d is out of range. (transfer none: static data) */
const ReportDeviationInfo *report_deviation_info(ReportDeviation d);
const char *report_deviation_slug(ReportDeviation d);
const char *report_deviation_text(ReportDeviation d);

/* The deviation of a slug, or of a stored text (stores written before the slugs);
 * FALSE when none has it. */
gboolean report_deviation_from_slug(const char *slug, ReportDeviation *out);
gboolean report_deviation_from_text(const char *text, ReportDeviation *out);

/* A list of deviations, each at most once, in the order first recorded: a GArray of
 * ReportDeviation. (transfer full) */
GArray *report_deviations_new(void);
/* Record @d in @devs unless it is there already. */
void report_deviations_add(GArray *devs, ReportDeviation d);
gboolean report_deviations_has(const GArray *devs, ReportDeviation d);

#endif
