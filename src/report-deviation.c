/* report-deviation.c - the table of deviations (see report-deviation.h). */
#include "report-deviation.h"

#include <string.h>

#define DEV(id, slug, text, field) [REPORT_DEV_##id] = { slug, text, field }

static const ReportDeviationInfo report_deviation_table[REPORT_DEV_N] = {
  DEV(BOM, "bom", "byte order mark before JSON", NULL),
  DEV(STRING_NUL, "string-nul", "NUL in string", NULL),
  DEV(STRING_INVALID_UTF8, "string-invalid-utf8", "invalid UTF-8 in string", NULL),
  DEV(JSON_SINGLE_QUOTES, "json-single-quotes", "not strict JSON: single-quoted strings", NULL),
  DEV(JSON_COMMENTS, "json-comments", "not strict JSON: comments", NULL),
  DEV(JSON_TRAILING_COMMAS, "json-trailing-commas", "not strict JSON: trailing commas", NULL),
  DEV(JSON_NAN_INFINITY, "json-nan-infinity", "not strict JSON: NaN or Infinity", NULL),
  DEV(JSON_LITERAL_CASE, "json-literal-case", "not strict JSON: true, false or null not in lower case",
      NULL),
  DEV(JSON_NUMBER_FORM, "json-number-form", "not strict JSON: numbers not in JSON form", NULL),
  DEV(JSON_CONTROL_IN_STRING, "json-control-in-string",
      "not strict JSON: control characters in strings", NULL),
  DEV(JSON_LONE_SURROGATE, "json-lone-surrogate",
      "not strict JSON: unpaired surrogate escapes", NULL),

  DEV(ORGANIZATION_NAME_MISSING, "organization-name-missing", "organization-name missing",
      "organization-name"),
  DEV(ORGANIZATION_NAME_NOT_STRING, "organization-name-not-string",
      "organization-name is not a string", "organization-name"),
  DEV(REPORT_ID_MISSING, "report-id-missing", "report-id missing", "report-id"),
  DEV(REPORT_ID_NOT_STRING, "report-id-not-string", "report-id is not a string", "report-id"),
  DEV(CONTACT_INFO_NULL, "contact-info-null", "contact-info is null", "contact-info"),
  DEV(CONTACT_INFO_MISSING, "contact-info-missing", "contact-info missing", "contact-info"),
  DEV(CONTACT_INFO_EMPTY, "contact-info-empty", "contact-info is empty", "contact-info"),
  DEV(CONTACT_INFO_NOT_STRING, "contact-info-not-string", "contact-info is not a string",
      "contact-info"),

  DEV(DATE_RANGE_MISSING, "date-range-missing", "date-range missing", "date-range"),
  DEV(START_DATETIME_MISSING, "start-datetime-missing", "start-datetime missing",
      "start-datetime"),
  DEV(START_DATETIME_UNPARSEABLE, "start-datetime-unparseable", "start-datetime unparseable",
      "start-datetime"),
  DEV(END_DATETIME_MISSING, "end-datetime-missing", "end-datetime missing", "end-datetime"),
  DEV(END_DATETIME_UNPARSEABLE, "end-datetime-unparseable", "end-datetime unparseable",
      "end-datetime"),
  DEV(DATETIME_NUMBER, "datetime-number", "datetime is a number", "date-range"),
  DEV(DATETIME_ZONELESS, "datetime-zoneless", "datetime without zone treated as UTC",
      "date-range"),
  DEV(DATE_RANGE_REVERSED, "date-range-reversed", "end-datetime before start-datetime",
      "date-range"),
  DEV(DATE_RANGE_FROM_FILENAME, "date-range-from-filename", "date-range taken from file name",
      "date-range"),
  DEV(FILENAME_BEGIN_DIFFERS, "filename-begin-differs", "file name disagrees with report: begin",
      "start-datetime"),
  DEV(FILENAME_END_DIFFERS, "filename-end-differs", "file name disagrees with report: end",
      "end-datetime"),
  DEV(FILENAME_POLICY_DOMAIN_DIFFERS, "filename-policy-domain-differs",
      "file name disagrees with report: policy-domain", "policy-domain"),

  DEV(POLICIES_SINGLE_OBJECT, "policies-single-object", "policies is a single object",
      "policies"),
  DEV(POLICIES_EMPTY, "policies-empty", "policies is empty", "policies"),
  DEV(POLICY_ENTRY_NOT_OBJECT, "policy-entry-not-object", "policy entry is not an object",
      "policies"),
  DEV(POLICY_MISSING, "policy-missing", "policy missing", "policy"),
  DEV(POLICY_TYPE_MISSING, "policy-type-missing", "policy-type missing", "policy-type"),
  DEV(POLICY_TYPE_UNKNOWN, "policy-type-unknown", "unknown policy-type", "policy-type"),
  DEV(POLICY_TYPE_NOT_STRING, "policy-type-not-string", "policy-type is not a string",
      "policy-type"),
  DEV(POLICY_STRING_MISSING, "policy-string-missing", "policy-string missing", "policy-string"),
  DEV(POLICY_STRING_IS_STRING, "policy-string-is-string", "policy-string is a string",
      "policy-string"),
  DEV(POLICY_STRING_NOT_ARRAY, "policy-string-not-array", "policy-string is not an array",
      "policy-string"),
  DEV(POLICY_STRING_NON_STRING_ENTRY, "policy-string-non-string-entry",
      "policy-string has a non-string entry", "policy-string"),
  DEV(POLICY_STRING_ENCODED_ARRAY, "policy-string-encoded-array",
      "policy-string is a JSON-encoded array", "policy-string"),
  DEV(POLICY_STRING_CR, "policy-string-cr", "policy-string line ends in CR", "policy-string"),
  DEV(POLICY_DOMAIN_MISSING, "policy-domain-missing", "policy-domain missing", "policy-domain"),
  DEV(POLICY_DOMAIN_NOT_STRING, "policy-domain-not-string", "policy-domain is not a string",
      "policy-domain"),
  DEV(MX_HOST_IS_STRING, "mx-host-is-string", "mx-host is a string", "mx-host"),
  DEV(MX_HOST_NOT_ARRAY, "mx-host-not-array", "mx-host is not an array", "mx-host"),
  DEV(MX_HOST_NON_STRING_ENTRY, "mx-host-non-string-entry", "mx-host has a non-string entry",
      "mx-host"),
  DEV(MX_HOST_PREFIX, "mx-host-prefix", "mx-host has 'mx: ' prefix", "mx-host"),
  DEV(MX_HOST_EMPTY_ENTRY, "mx-host-empty-entry", "mx-host entry is empty", "mx-host"),

  DEV(SUMMARY_MISSING, "summary-missing", "summary missing", "summary"),
#define COUNT_DEVS(ID, name)                                                              \
  DEV(ID##_MISSING, name "-missing", name " missing", name),                              \
  DEV(ID##_NOT_NUMBER, name "-not-number", name " is not a number", name),                \
  DEV(ID##_NEGATIVE, name "-negative", name " is negative", name),                        \
  DEV(ID##_OUT_OF_RANGE, name "-out-of-range", name " is out of range", name),            \
  DEV(ID##_IS_STRING, name "-is-string", name " is a string", name),                      \
  DEV(ID##_NOT_INTEGER, name "-not-integer", name " is not an integer", name)
  COUNT_DEVS(TOTAL_SUCCESSFUL, "total-successful-session-count"),
  COUNT_DEVS(TOTAL_FAILURE, "total-failure-session-count"),

  DEV(FAILURE_DETAILS_SINGLE_OBJECT, "failure-details-single-object",
      "failure-details is a single object", "failure-details"),
  DEV(FAILURE_DETAILS_NOT_ARRAY, "failure-details-not-array", "failure-details is not an array",
      "failure-details"),
  DEV(FAILURE_DETAIL_NOT_OBJECT, "failure-detail-not-object", "failure detail is not an object",
      "failure-details"),
  DEV(FAILURE_DETAIL_FIELDS_MISSING, "failure-detail-fields-missing",
      "failure detail fields missing", "failure-details"),
  DEV(FAILURE_DETAIL_FIELD_EMPTY, "failure-detail-field-empty", "failure detail field is empty",
      "failure-details"),
  DEV(FAILURE_COUNTS_EXCEED_TOTAL, "failure-counts-exceed-total",
      "failure detail counts exceed total", "failed-session-count"),
  DEV(RESULT_TYPE_MISSING, "result-type-missing", "result-type missing", "result-type"),
#define NOT_STRING_DEV(ID, name) DEV(ID##_NOT_STRING, name "-not-string", name " is not a string", name)
  NOT_STRING_DEV(RESULT_TYPE, "result-type"),
  NOT_STRING_DEV(SENDING_MTA_IP, "sending-mta-ip"),
  NOT_STRING_DEV(RECEIVING_MX_HOSTNAME, "receiving-mx-hostname"),
  NOT_STRING_DEV(RECEIVING_MX_HELO, "receiving-mx-helo"),
  NOT_STRING_DEV(RECEIVING_IP, "receiving-ip"),
  NOT_STRING_DEV(ADDITIONAL_INFORMATION, "additional-information"),
  NOT_STRING_DEV(FAILURE_REASON_CODE, "failure-reason-code"),
  COUNT_DEVS(FAILED_SESSION_COUNT, "failed-session-count"),
#undef NOT_STRING_DEV
#undef COUNT_DEVS
#define CSV_DEVS(ID, name)                                                                \
  DEV(CSV_FORMULA_##ID, "csv-formula-" name, "csv: formula-like value neutralized in " name, \
      name),                                                                              \
  DEV(CSV_CONTROL_##ID, "csv-control-" name, "csv: control characters replaced in " name, \
      name),
  REPORT_DEV_CSV_FIELDS(CSV_DEVS)
#undef CSV_DEVS
};

#undef DEV

const ReportDeviationInfo *
report_deviation_info(ReportDeviation d)
{
  if ((guint) d >= REPORT_DEV_N)
    return NULL;
  return &report_deviation_table[d];
}

const char *
report_deviation_slug(ReportDeviation d)
{
  const ReportDeviationInfo *i = report_deviation_info(d);
  return i != NULL ? i->slug : NULL;
}

const char *
report_deviation_text(ReportDeviation d)
{
  const ReportDeviationInfo *i = report_deviation_info(d);
  return i != NULL ? i->text : NULL;
}

static gboolean
report_deviation_find(const char *s, gsize member, ReportDeviation *out)
{
  if (s == NULL)
    return FALSE;
  for (guint i = 0; i < REPORT_DEV_N; i++) {
    const char *v = G_STRUCT_MEMBER(const char *, &report_deviation_table[i], member);
    if (strcmp(v, s) == 0) {
      if (out != NULL)
        *out = (ReportDeviation) i;
      return TRUE;
    }
  }
  return FALSE;
}

gboolean
report_deviation_from_slug(const char *slug, ReportDeviation *out)
{
  return report_deviation_find(slug, G_STRUCT_OFFSET(ReportDeviationInfo, slug), out);
}

gboolean
report_deviation_from_text(const char *text, ReportDeviation *out)
{
  return report_deviation_find(text, G_STRUCT_OFFSET(ReportDeviationInfo, text), out);
}

GArray *
report_deviations_new(void)
{
  return g_array_new(FALSE, FALSE, sizeof(ReportDeviation));
}

gboolean
report_deviations_has(const GArray *devs, ReportDeviation d)
{
  for (guint i = 0; devs != NULL && i < devs->len; i++)
    if (g_array_index(devs, ReportDeviation, i) == d)
      return TRUE;
  return FALSE;
}

void
report_deviations_add(GArray *devs, ReportDeviation d)
{
  if (!report_deviations_has(devs, d))
    g_array_append_val(devs, d);
}
