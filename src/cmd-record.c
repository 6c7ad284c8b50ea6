/* cmd-record.c - `tlsrpt-ingest record generate|validate|check`: the _smtp._tls TXT
 * record a policy domain publishes (RFC 8460 §3), and, for check, the MTA-STS and DANE
 * policies whose failures the reports describe. record.h parses, record-check.h looks
 * things up and judges; this file takes the options and prints. Everything that came
 * from DNS or a policy file is escaped (escape.h) before it is printed. */
#include "command.h"

#include "cli.h"
#include "escape.h"
#include "record-check.h"
#include "record.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int record_run(const TrCommand *cmd, int argc, char **argv);

const TrCommand cmd_record = {
  "record", "SUBCOMMAND",
  "Generate, validate and check the _smtp._tls TXT record (RFC 8460) that asks for "
  "reports, and check the MTA-STS and DANE policies they report on. 'record generate "
  "--domain D --rua URI' prints the record; 'record validate VALUE' checks its syntax; "
  "'record check DOMAIN' looks up the published records and policies.",
  record_run, NULL,
};

typedef enum { RECORD_FMT_TEXT, RECORD_FMT_ZONE, RECORD_FMT_JSON } RecordFormat;

static const char *const record_severity_names[] = { "note", "warning", "error" };

/* ---- options ------------------------------------------------------------------------ */

/* Every subcommand's options, filled by cli_parse(). */
typedef struct {
  char *domain;
  char **rua;
  char *format;
  char *mailbox;
  char *nameserver;
  char *cacert;
  char *trust_anchor;
  int https_port;
  double timeout;
} RecordArgs;

static void
record_args_clear(RecordArgs *a);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RecordArgs, record_args_clear)

static void
record_args_clear(RecordArgs *a)
{
  g_free(a->domain);
  g_strfreev(a->rua);
  g_free(a->format);
  g_free(a->mailbox);
  g_free(a->nameserver);
  g_free(a->cacert);
  g_free(a->trust_anchor);
}

static const GOptionEntry record_format_entries[] = {
  { "format", 'f', 0, G_OPTION_ARG_STRING, CLI_FIELD(RecordArgs, format),
    "text (the default) or json; generate also: zone (zone-file lines only)", "FORMAT" },
  { NULL },
};
static const CliGroup record_format_group = { "format", "Output", record_format_entries,
                                              FALSE };

static const GOptionEntry record_generate_entries[] = {
  { "domain", 'd', 0, G_OPTION_ARG_STRING, CLI_FIELD(RecordArgs, domain),
    "The policy domain: the domain whose mail the reports are about", "DOMAIN" },
  { "rua", 'r', 0, G_OPTION_ARG_STRING_ARRAY, CLI_FIELD(RecordArgs, rua),
    "Where reports go: mailto:ADDRESS or https://HOST/PATH (repeat for more; kept in "
    "order)", "URI" },
  { NULL },
};
static const CliGroup record_generate_group = { "generate", "Record options",
                                                record_generate_entries, FALSE };

/* The address this tool reads: also a config-file key (command.c lists this group). */
static const GOptionEntry record_mailbox_entries[] = {
  { "mailbox", 0, 0, G_OPTION_ARG_STRING, CLI_FIELD(RecordArgs, mailbox),
    "The address whose mailbox this tool reads (default: the IMAP user when it is an "
    "address); generate warns when no destination is it", "ADDRESS" },
  { NULL },
};
const CliGroup cmd_record_mailbox_group = { "mailbox", "Mailbox", record_mailbox_entries,
                                            FALSE };

static const CliGroup *const record_generate_groups[] = {
  &cli_group_config, &record_generate_group, &cmd_record_mailbox_group, &record_format_group,
  NULL,
};
static const CliGroup *const record_validate_groups[] = { &record_format_group, NULL };

static const GOptionEntry record_check_entries[] = {
  { "nameserver", 'n', 0, G_OPTION_ARG_STRING, CLI_FIELD(RecordArgs, nameserver),
    "Ask this DNS server (IP, IP:PORT or [IPv6]:PORT) instead of those of "
    "/etc/resolv.conf", "ADDR" },
  { "trust-anchor", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(RecordArgs, trust_anchor),
    "DNSSEC trust anchors (DS or DNSKEY lines) instead of the root key of dns-root-data",
    "FILE" },
  { "cacert", 0, 0, G_OPTION_ARG_FILENAME, CLI_FIELD(RecordArgs, cacert),
    "Trust the CA certificates in FILE for the MTA-STS policy server", "FILE" },
  { "mta-sts-port", 0, 0, G_OPTION_ARG_INT, CLI_FIELD(RecordArgs, https_port),
    "Port of the MTA-STS policy server (default 443, the only one senders use; for "
    "tests)", "PORT" },
  { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, CLI_FIELD(RecordArgs, timeout),
    "Seconds to wait for each lookup and for the policy fetch (default 10)", "SECONDS" },
  { NULL },
};
static const CliGroup record_check_group = { "check", "Lookup options", record_check_entries,
                                             FALSE };
static const CliGroup *const record_check_groups[] = { &record_check_group,
                                                       &record_format_group, NULL };

static const TrCommand record_cmd_generate = {
  "record generate", "--domain DOMAIN --rua URI...",
  "Print the _smtp._tls TXT record that asks senders for TLS reports (RFC 8460): the "
  "value, the owner name, a zone-file line and hints for DNS providers.\n\n"
  "Example:\n  tlsrpt-ingest record generate --domain example.com --rua "
  "mailto:tlsrpt@example.com\nSee docs/record.md.",
  NULL, NULL,
};
static const TrCommand record_cmd_validate = {
  "record validate", "RECORD",
  "Check the syntax of a TLS-RPT record value (RFC 8460 section 3): each problem with "
  "its byte position and a fix. Exit 0 valid, 1 invalid.\n\n"
  "Example:\n  tlsrpt-ingest record validate 'v=TLSRPTv1; "
  "rua=mailto:tlsrpt@example.com'\nSee docs/record.md.",
  NULL, NULL,
};

static const TrCommand record_cmd_check = {
  "record check", "DOMAIN",
  "Look up the TLS-RPT record of DOMAIN (_smtp._tls), its MTA-STS record and policy "
  "(checking every MX against the policy's mx: patterns) and the TLSA records of its MX "
  "hosts with their DNSSEC status; a verdict per part with a fix for each problem. "
  "Exit 0 all good, 1 problems found, 2 a lookup failed.\n\n"
  "Example:\n  tlsrpt-ingest record check example.com\nSee docs/record.md.",
  NULL, NULL,
};

static gboolean
record_parse_format(const TrCommand *cmd, const char *s, gboolean zone_ok, RecordFormat *out,
                    int *rc)
{
  if (s == NULL || strcmp(s, "text") == 0)
    *out = RECORD_FMT_TEXT;
  else if (strcmp(s, "json") == 0)
    *out = RECORD_FMT_JSON;
  else if (zone_ok && strcmp(s, "zone") == 0)
    *out = RECORD_FMT_ZONE;
  else {
    g_autofree char *shown = tr_escape_terminal(s);
    *rc = cli_usage_error(cmd, TR_MODE_BATCH, "--format takes text, %sjson, not '%s'",
                          zone_ok ? "zone, " : "", shown);
    return FALSE;
  }
  return TRUE;
}

/* Print a JSON object and a newline to stdout. */
static void
record_print_json(TrJson *obj)
{
  fputs(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                JSON_C_TO_STRING_NOSLASHESCAPE),
        stdout);
  fputc('\n', stdout);
}

/* ---- problems, shown ------------------------------------------------------------------ */

/* Can @text be shown as is with carets under it? */
static gboolean
record_caret_ok(const char *text, gsize len)
{
  if (len > 200)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if ((guchar) text[i] < 0x20 || (guchar) text[i] >= 0x7f)
      return FALSE;
  return TRUE;
}

static void
record_print_problems(FILE *out, const char *indent, const char *text, gsize len,
                      const GPtrArray *problems)
{
  gboolean carets = text != NULL && record_caret_ok(text, len);
  if (text != NULL) {
    g_autoptr(GString) shown = g_string_new(NULL);
    tr_escape_terminal_append(shown, text, (gssize) len);
    fprintf(out, "%s%s\n", indent, shown->str);
  }
  for (guint i = 0; i < problems->len; i++) {
    const RecordProblem *pr = g_ptr_array_index(problems, i);
    g_autoptr(GString) line = g_string_new(indent);
    if (pr->pos != RECORD_NO_POS && carets) {
      for (gsize k = 0; k < MIN(pr->pos, len); k++)
        g_string_append_c(line, ' ');
      g_string_append(line, "^ ");
    }
    if (pr->pos != RECORD_NO_POS)
      g_string_append_printf(line, "byte %" G_GSIZE_FORMAT ": ", pr->pos + 1);
    g_string_append_printf(line, "%s: %s", record_severity_names[pr->severity], pr->message);
    if (pr->fix != NULL)
      g_string_append_printf(line, "; fix: %s", pr->fix);
    fprintf(out, "%s\n", line->str);
  }
}

static TrJson *
record_problems_json(const GPtrArray *problems)
{
  TrJson *arr = json_object_new_array();
  for (guint i = 0; i < problems->len; i++) {
    const RecordProblem *pr = g_ptr_array_index(problems, i);
    TrJson *o = json_object_new_object();
    json_object_object_add(o, "severity",
                           json_object_new_string(record_severity_names[pr->severity]));
    json_object_object_add(o, "position",
                           pr->pos == RECORD_NO_POS ? NULL
                                                    : json_object_new_int64((gint64) pr->pos + 1));
    json_object_object_add(o, "message", json_object_new_string(pr->message));
    json_object_object_add(o, "fix", pr->fix ? json_object_new_string(pr->fix) : NULL);
    json_object_array_add(arr, o);
  }
  return arr;
}

/* A string for JSON: json-c escapes what JSON must; bytes that are not UTF-8 (a DNS
 * value may hold any) are shown as \xNN first, so the output stays valid JSON. */
static TrJson *
record_json_string(const char *s, gssize len)
{
  gsize n = len < 0 ? strlen(s) : (gsize) len;
  if (g_utf8_validate_len(s, n, NULL) && memchr(s, '\0', n) == NULL)
    return json_object_new_string_len(s, (int) n);
  g_autoptr(GString) e = g_string_new(NULL);
  tr_escape_terminal_append(e, s, (gssize) n);
  return json_object_new_string(e->str);
}

static TrJson *
record_rua_json(const GPtrArray *rua)
{
  TrJson *arr = json_object_new_array();
  for (guint i = 0; i < rua->len; i++) {
    const RecordRua *r = g_ptr_array_index(rua, i);
    TrJson *o = json_object_new_object();
    json_object_object_add(o, "uri", record_json_string(r->uri, -1));
    json_object_object_add(o, "scheme", json_object_new_string(r->mailto ? "mailto" : "https"));
    json_object_object_add(o, "domain", r->domain ? json_object_new_string(r->domain) : NULL);
    json_object_array_add(arr, o);
  }
  return arr;
}

/* ---- record generate ------------------------------------------------------------------ */

/* The addresses this tool reads: --mailbox (or the config file's mailbox key), else the
 * config file's IMAP user when it is an address. (transfer full) */
static GPtrArray *
record_read_addresses(const RecordArgs *own, const CliCommon *common)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  if (own->mailbox != NULL) {
    g_ptr_array_add(out, g_ascii_strdown(own->mailbox, -1));
    return out;
  }
  if (common->config_file == NULL)
    return out;
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_file(kf, common->config_file, G_KEY_FILE_NONE, NULL))
    return out;               /* cli_parse() read it already: it cannot be bad here */
  g_autofree char *user = g_key_file_get_string(kf, "tlsrpt-ingest", "user", NULL);
  if (user != NULL && strchr(g_strstrip(user), '@') != NULL)
    g_ptr_array_add(out, g_ascii_strdown(user, -1));
  return out;
}

/* The address of a mailto: URI, percent-decoded and lower-case. (transfer full) */
static char *
record_mailto_address(const char *uri)
{
  const char *a = uri + strlen("mailto:");
  const char *q = strchr(a, '?');
  g_autofree char *raw = g_strndup(a, q ? (gsize) (q - a) : strlen(a));
  g_autofree char *dec = g_uri_unescape_string(raw, NULL);
  return g_ascii_strdown(dec != NULL ? dec : raw, -1);
}

static int
record_generate_run(int argc, char **argv)
{
  const TrCommand *cmd = &record_cmd_generate;
  g_auto(RecordArgs) own = { 0 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, record_generate_groups, &own, &common, argc, argv, &rc))
    return rc;
  RecordFormat fmt;
  if (!record_parse_format(cmd, own.format, TRUE, &fmt, &rc))
    return rc;
  if (common.n_args > 0)
    return cli_usage_error(cmd, TR_MODE_BATCH, "takes no arguments (use --domain and --rua)");
  if (own.domain == NULL)
    return cli_usage_error(cmd, TR_MODE_BATCH, "--domain is required");
  g_autoptr(GError) error = NULL;
  g_autoptr(RecordGenerated) gen =
      record_generate(own.domain, (const char *const *) own.rua, &error);
  if (gen == NULL)
    return cli_fail(cmd, error, TR_MODE_BATCH);
  g_autoptr(GPtrArray) reads = record_read_addresses(&own, &common);

  /* Destinations outside the policy domain, and whether one is an address we read. */
  g_autoptr(GPtrArray) external = g_ptr_array_new_with_free_func(g_free);
  gboolean any_read = FALSE;
  for (guint i = 0; i < gen->rua->len; i++) {
    RecordRua *r = g_ptr_array_index(gen->rua, i);
    if (r->mailto) {
      g_autofree char *addr = record_mailto_address(r->uri);
      for (guint k = 0; k < reads->len; k++)
        if (strcmp(addr, g_ptr_array_index(reads, k)) == 0)
          any_read = TRUE;
      if (r->domain != NULL && !record_domain_within(r->domain, gen->domain)) {
        gboolean dup = FALSE;
        for (guint k = 0; k < external->len; k++)
          dup = dup || strcmp(g_ptr_array_index(external, k), r->domain) == 0;
        if (!dup)
          g_ptr_array_add(external, g_strdup(r->domain));
      }
    }
  }
  gboolean warn_reads = reads->len > 0 && !any_read;

  if (fmt == RECORD_FMT_JSON) {
    g_autoptr(TrJson) o = json_object_new_object();
    json_object_object_add(o, "domain", json_object_new_string(gen->domain));
    json_object_object_add(o, "owner", json_object_new_string(gen->owner));
    json_object_object_add(o, "value", json_object_new_string(gen->value));
    TrJson *strings = json_object_new_array();
    for (guint i = 0; i < gen->strings->len; i++)
      json_object_array_add(strings, json_object_new_string(g_ptr_array_index(gen->strings, i)));
    json_object_object_add(o, "strings", strings);
    json_object_object_add(o, "zone", json_object_new_string(gen->zone));
    json_object_object_add(o, "rua", record_rua_json(gen->rua));
    TrJson *auth = json_object_new_array();
    for (guint i = 0; i < external->len; i++) {
      const char *d = g_ptr_array_index(external, i);
      TrJson *a = json_object_new_object();
      json_object_object_add(a, "destination_domain", json_object_new_string(d));
      g_autofree char *owner = g_strdup_printf("%s._report._tls.%s.", gen->domain, d);
      json_object_object_add(a, "owner", json_object_new_string(owner));
      json_object_object_add(a, "value", json_object_new_string("v=TLSRPTv1"));
      json_object_object_add(a, "required_by_rfc8460", json_object_new_boolean(FALSE));
      json_object_array_add(auth, a);
    }
    json_object_object_add(o, "authorization", auth);
    TrJson *warnings = json_object_new_array();
    if (warn_reads)
      json_object_array_add(warnings,
                            json_object_new_string("no destination is an address this "
                                                   "tool is configured to read"));
    json_object_object_add(o, "warnings", warnings);
    json_object_object_add(o, "problems", record_problems_json(gen->problems));
    record_print_json(o);
    return TR_EXIT_OK;
  }

  if (fmt == RECORD_FMT_ZONE) {
    printf("%s\n", gen->zone);
    for (guint i = 0; i < external->len; i++)
      printf("; in the zone of %s (a convention, not RFC 8460):\n"
             "; %s._report._tls.%s. 3600 IN TXT \"v=TLSRPTv1\"\n",
             (char *) g_ptr_array_index(external, i), gen->domain,
             (char *) g_ptr_array_index(external, i));
    if (warn_reads)
      fprintf(stderr, "tlsrpt-ingest record generate: warning: no destination is an "
                      "address this tool is configured to read\n");
    return TR_EXIT_OK;
  }

  printf("Publish this TXT record in the DNS zone of %s:\n\n", gen->domain);
  printf("  name:  %s\n", gen->owner);
  printf("  value: %s\n", gen->value);
  if (gen->strings->len > 1) {
    printf("         (over 255 bytes: published as %u character-strings, which senders "
           "join without spaces)\n", gen->strings->len);
  }
  printf("\nZone file (BIND, NSD, Knot):\n  %s\n", gen->zone);
  printf("\nDNS providers:\n"
         "  Cloudflare: type TXT, name _smtp._tls (the zone name is added), content the "
         "value without quotes.\n"
         "  Route 53:   record name _smtp._tls, type TXT, value in double quotes%s.\n"
         "  Others:     the name/host field takes _smtp._tls (or the full name "
         "with its final dot\n"
         "              where the field asks for it); the value without quotes unless "
         "the form shows them.\n",
         gen->strings->len > 1 ? ", each 255-byte piece quoted on its own (as in the zone "
                                 "line)"
                               : "");
  for (guint i = 0; i < gen->problems->len; i++) {
    const RecordProblem *pr = g_ptr_array_index(gen->problems, i);
    printf("%s%s: %s%s%s\n", i == 0 ? "\n" : "", record_severity_names[pr->severity],
           pr->message, pr->fix ? "; fix: " : "", pr->fix ? pr->fix : "");
  }
  if (external->len > 0) {
    printf("\nDestinations outside %s: some senders only send there when the receiving "
           "domain\nauthorizes it. This is a convention taken from DMARC's rule, not an "
           "RFC 8460\nrequirement. To be safe, publish in the zone of each:\n",
           gen->domain);
    for (guint i = 0; i < external->len; i++) {
      const char *d = g_ptr_array_index(external, i);
      printf("  %s._report._tls.%s. 3600 IN TXT \"v=TLSRPTv1\"\n", gen->domain, d);
    }
    printf("(A destination inside %s needs none.)\n", gen->domain);
  }
  if (warn_reads) {
    printf("\nwarning: none of the destinations is an address this tool is configured to "
           "read:\n");
    for (guint i = 0; i < reads->len; i++) {
      g_autofree char *shown = tr_escape_terminal(g_ptr_array_index(reads, i));
      printf("  %s\n", shown);
    }
  }
  printf("\nOnce published: tlsrpt-ingest record check %s\n", gen->domain);
  return TR_EXIT_OK;
}

/* ---- record validate ------------------------------------------------------------------- */

static int
record_validate_run(int argc, char **argv)
{
  const TrCommand *cmd = &record_cmd_validate;
  g_auto(RecordArgs) own = { 0 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, record_validate_groups, &own, &common, argc, argv, &rc))
    return rc;
  RecordFormat fmt;
  if (!record_parse_format(cmd, own.format, FALSE, &fmt, &rc))
    return rc;
  if (common.n_args != 1)
    return cli_usage_error(cmd, TR_MODE_BATCH, "expected one RECORD (quote it)");
  const char *value = common.args[0];
  gsize len = strlen(value);
  g_autoptr(RecordTlsrpt) rec = record_tlsrpt_parse(value, len);
  gboolean ok = record_ok(rec->problems);
  if (fmt == RECORD_FMT_JSON) {
    g_autoptr(TrJson) o = json_object_new_object();
    json_object_object_add(o, "record", record_json_string(value, (gssize) len));
    json_object_object_add(o, "valid", json_object_new_boolean(ok));
    json_object_object_add(o, "rua", record_rua_json(rec->rua));
    TrJson *ext = json_object_new_array();
    for (guint i = 0; i < rec->extensions->len; i++)
      json_object_array_add(ext, record_json_string(g_ptr_array_index(rec->extensions, i), -1));
    json_object_object_add(o, "extensions", ext);
    json_object_object_add(o, "problems", record_problems_json(rec->problems));
    record_print_json(o);
  } else {
    record_print_problems(stdout, "  ", value, len, rec->problems);
    guint errors = 0, warnings = 0;
    for (guint i = 0; i < rec->problems->len; i++) {
      const RecordProblem *pr = g_ptr_array_index(rec->problems, i);
      errors += pr->severity == RECORD_ERROR;
      warnings += pr->severity == RECORD_WARNING;
    }
    if (ok && warnings > 0)
      printf("valid: a TLS-RPT record with %u destination%s (%u warning%s)\n",
             rec->rua->len, rec->rua->len == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    else if (ok)
      printf("valid: a TLS-RPT record with %u destination%s\n", rec->rua->len,
             rec->rua->len == 1 ? "" : "s");
    else
      printf("invalid: %u error%s; senders ignore this record\n", errors,
             errors == 1 ? "" : "s");
  }
  return ok ? TR_EXIT_OK : 1;
}

/* ---- record check ------------------------------------------------------------------------ */

static const char *
record_part_verdict(const RecordCheckPart *part)
{
  if (part->lookup_failed)
    return "lookup failed";
  switch (record_worst(part->problems)) {
  case RECORD_ERROR: return "problems";
  case RECORD_WARNING: return "ok, with warnings";
  default: return "ok";
  }
}

static int
record_check_run(int argc, char **argv)
{
  const TrCommand *cmd = &record_cmd_check;
  g_auto(RecordArgs) own = { 0 };
  g_auto(CliCommon) common = CLI_COMMON_INIT;
  int rc;
  if (!cli_parse(cmd, record_check_groups, &own, &common, argc, argv, &rc))
    return rc;
  RecordFormat fmt;
  if (!record_parse_format(cmd, own.format, FALSE, &fmt, &rc))
    return rc;
  if (common.n_args != 1)
    return cli_usage_error(cmd, TR_MODE_BATCH, "expected one DOMAIN");
  if (own.https_port < 0 || own.https_port > 65535)
    return cli_usage_error(cmd, TR_MODE_BATCH, "--mta-sts-port takes 1 to 65535");
  if (own.timeout < 0 || own.timeout > 3600)
    return cli_usage_error(cmd, TR_MODE_BATCH, "--timeout takes 0 to 3600 seconds");
  g_autoptr(GError) error = NULL;
  g_autofree char *domain = record_domain_normalize(common.args[0], &error);
  if (domain == NULL)
    return cli_fail(cmd, error, TR_MODE_BATCH);
  RecordCheckOptions opts = {
    own.nameserver, own.trust_anchor, own.cacert, (guint) own.https_port,
    own.timeout > 0 ? own.timeout : 10,
  };
  g_autoptr(RecordCheck) check = record_check(domain, &opts, &error);
  if (check == NULL) {
    fprintf(stderr, "tlsrpt-ingest record check: %s\n", error->message);
    return 2;
  }
  int exit_code = record_check_exit_code(check);
  guint errors = 0, warnings = 0;
  for (guint i = 0; i < check->parts->len; i++) {
    const RecordCheckPart *part = g_ptr_array_index(check->parts, i);
    for (guint k = 0; k < part->problems->len; k++) {
      const RecordProblem *pr = g_ptr_array_index(part->problems, k);
      errors += pr->severity == RECORD_ERROR;
      warnings += pr->severity == RECORD_WARNING;
    }
  }
  const char *overall = exit_code == 2 ? "lookup failed"
                        : exit_code == 1 ? "problems found"
                        : warnings > 0 ? "ok, with warnings" : "ok";
  if (fmt == RECORD_FMT_JSON) {
    g_autoptr(TrJson) o = json_object_new_object();
    json_object_object_add(o, "domain", json_object_new_string(check->domain));
    TrJson *parts = json_object_new_array();
    for (guint i = 0; i < check->parts->len; i++) {
      const RecordCheckPart *part = g_ptr_array_index(check->parts, i);
      TrJson *p = json_object_new_object();
      json_object_object_add(p, "part", json_object_new_string(part->name));
      json_object_object_add(p, "subject", json_object_new_string(part->subject));
      json_object_object_add(p, "verdict", json_object_new_string(record_part_verdict(part)));
      TrJson *facts = json_object_new_array();
      for (guint k = 0; k < part->facts->len; k++)
        json_object_array_add(facts, record_json_string(g_ptr_array_index(part->facts, k), -1));
      json_object_object_add(p, "found", facts);
      json_object_object_add(p, "problems", record_problems_json(part->problems));
      json_object_array_add(parts, p);
    }
    json_object_object_add(o, "parts", parts);
    json_object_object_add(o, "verdict", json_object_new_string(overall));
    json_object_object_add(o, "errors", json_object_new_int((int) errors));
    json_object_object_add(o, "warnings", json_object_new_int((int) warnings));
    record_print_json(o);
    return exit_code;
  }
  for (guint i = 0; i < check->parts->len; i++) {
    const RecordCheckPart *part = g_ptr_array_index(check->parts, i);
    printf("%s%s: %s\n", i ? "\n" : "", part->name, part->subject);
    for (guint k = 0; k < part->facts->len; k++)
      printf("  found: %s\n", (char *) g_ptr_array_index(part->facts, k));
    for (guint k = 0; k < part->problems->len; k++) {
      const RecordProblem *pr = g_ptr_array_index(part->problems, k);
      printf("  %s: %s\n", record_severity_names[pr->severity], pr->message);
      if (pr->fix != NULL)
        printf("    fix: %s\n", pr->fix);
    }
    printf("  verdict: %s\n", record_part_verdict(part));
  }
  printf("\n%s: %s (%u error%s, %u warning%s)\n", check->domain, overall, errors,
         errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
  return exit_code;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static void
record_print_usage(FILE *out)
{
  fputs("Usage: tlsrpt-ingest record SUBCOMMAND [OPTION...]\n"
        "\n"
        "The _smtp._tls TXT record that asks senders for SMTP TLS reports (RFC 8460), and\n"
        "the MTA-STS and DANE policies those reports are about.\n"
        "\n"
        "Subcommands:\n"
        "  generate --domain DOMAIN --rua URI...  Print the record to publish\n"
        "  validate RECORD                       Check a record's syntax (exit 0 valid, 1 "
        "invalid)\n"
        "  check DOMAIN                          Look up and check the published TLS-RPT,\n"
        "                                        MTA-STS and DANE records (exit 0 good,\n"
        "                                        1 problems, 2 lookup failure)\n"
        "\n"
        "'tlsrpt-ingest record SUBCOMMAND --help' lists its options. See docs/record.md\n"
        "and tlsrpt-ingest(1).\n",
        out);
}

static int
record_run(const TrCommand *cmd, int argc, char **argv)
{
  if (argc < 2) {
    record_print_usage(stderr);
    return TR_EXIT_USAGE_BATCH;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
    record_print_usage(stdout);
    return TR_EXIT_OK;
  }
  if (strcmp(sub, "generate") == 0)
    return record_generate_run(argc - 1, argv + 1);
  if (strcmp(sub, "validate") == 0)
    return record_validate_run(argc - 1, argv + 1);
  if (strcmp(sub, "check") == 0)
    return record_check_run(argc - 1, argv + 1);
  g_autofree char *shown = tr_escape_terminal(sub);
  fprintf(stderr, "tlsrpt-ingest record: unknown subcommand '%s'\n\n", shown);
  record_print_usage(stderr);
  return TR_EXIT_USAGE_BATCH;
}
