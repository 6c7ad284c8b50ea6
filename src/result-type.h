/* result-type.h - what each RFC 8460 result type means: what failed, the usual cause,
 * the fix and the commands that diagnose it, as one table of data (result-type.c),
 * used by every renderer (summary, show, explain, and the monitoring outputs). */
#ifndef TLSRPT_RESULT_TYPE_H
#define TLSRPT_RESULT_TYPE_H

#include "common.h"

typedef enum {
  RESULT_AREA_TLS,            /* the MX's STARTTLS or certificate */
  RESULT_AREA_DANE,           /* DNSSEC and TLSA records */
  RESULT_AREA_STS,            /* the MTA-STS policy and its web server */
} ResultArea;

typedef struct {
  const char *name;           /* "starttls-not-supported": as in reports (RFC 8460 §4.3) */
  ResultArea area;
  const char *what;           /* what failed, one sentence */
  const char *cause;          /* the usual cause */
  const char *fix;            /* what to do */
  /* Diagnosis commands, NULL-terminated; "{mx}" and "{domain}" are filled in by
   * result_type_command(). */
  const char *const *diagnose;
} ResultTypeInfo;

/* The 11 types of RFC 8460 §4.3 in the RFC's order, NULL-terminated. */
extern const ResultTypeInfo *const result_types[];

/* The entry of @name, or NULL for a type this table does not know (shown verbatim as
 * unknown, never dropped). (transfer none) */
const ResultTypeInfo *result_type_find(const char *name);

/* What to say about a type this table does not know. */
extern const char result_type_unknown_note[];

/* @template with "{mx}" and "{domain}" replaced. A value that is not a plain host name
 * (letters, digits, '-', '.', '_') is not put into a command line: the placeholder
 * becomes MX or DOMAIN for the reader to fill in. (transfer full) */
char *result_type_command(const char *template_, const char *domain, const char *mx);

/* TRUE when @s is usable as a host name in a shell command (see above). */
gboolean result_type_plain_hostname(const char *s);

#endif
