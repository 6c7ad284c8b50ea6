/* pq-dl.h - libpq, loaded with dlopen() on first use rather than linked: it brings
 * some two dozen shared objects (OpenSSL, Kerberos, LDAP) whose loading would be paid
 * by every process, and `mda` runs once per delivered message; only runs that name
 * --postgres load it. Its users (pg.c) call through the table pq_dl() returns. */
#ifndef TLSRPT_PQ_DL_H
#define TLSRPT_PQ_DL_H

#include "common.h"

#include <libpq-fe.h>

/* The libpq functions we use, as pointers of their own types. */
typedef struct {
  __typeof__(PQconnectdb) *connectdb;
  __typeof__(PQstatus) *status;
  __typeof__(PQerrorMessage) *errorMessage;
  __typeof__(PQfinish) *finish;
  __typeof__(PQexec) *exec;
  __typeof__(PQexecParams) *execParams;
  __typeof__(PQresultStatus) *resultStatus;
  __typeof__(PQresultErrorField) *resultErrorField;
  __typeof__(PQresultErrorMessage) *resultErrorMessage;
  __typeof__(PQclear) *clear;
  __typeof__(PQntuples) *ntuples;
  __typeof__(PQnfields) *nfields;
  __typeof__(PQgetvalue) *getvalue;
  __typeof__(PQgetisnull) *getisnull;
  __typeof__(PQputCopyData) *putCopyData;
  __typeof__(PQputCopyEnd) *putCopyEnd;
  __typeof__(PQgetResult) *getResult;
  __typeof__(PQgetCopyData) *getCopyData;
  __typeof__(PQescapeLiteral) *escapeLiteral;
  __typeof__(PQconninfoParse) *conninfoParse;
  __typeof__(PQconninfoFree) *conninfoFree;
  __typeof__(PQfreemem) *freemem;
  __typeof__(PQsetNoticeProcessor) *setNoticeProcessor;
  __typeof__(PQtransactionStatus) *transactionStatus;
  __typeof__(PQlibVersion) *libVersion;
  __typeof__(PQdb) *db;
  __typeof__(PQhost) *host;
  __typeof__(PQport) *port;
  __typeof__(PQuser) *user;
} PqApi;

/* Load libpq once (thread-safe). (transfer none) the table, or NULL when the library
 * or one of its functions is missing; *why (nullable; transfer none) then says which. */
const PqApi *pq_dl(const char **why);

#endif
