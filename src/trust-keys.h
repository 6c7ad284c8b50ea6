/* trust-keys.h - where DKIM keys come from: the DNS (record-dns.h's libunbound, the
 * servers of /etc/resolv.conf or --dkim-nameserver), or a file of TXT records
 * (--dkim-keys) for offline use and the tests. Answers are kept for the run. Thread-safe:
 * the pipeline's workers share one. */
#ifndef TLSRPT_TRUST_KEYS_H
#define TLSRPT_TRUST_KEYS_H

#include "common.h"
#include "trust-dkim.h"

typedef struct TrustKeys TrustKeys;

/* Keys from the zone-file lines of @path: "NAME [TTL] [IN] TXT "STRING" ...", strings
 * joined, parentheses spanning lines, ';' comments (opendkim-genkey's .txt files are
 * such lines once their name is made absolute). CLI_ERROR_USAGE naming --dkim-keys
 * and the line when the file cannot be read or a line is not such a record.
 * (transfer full) */
TrustKeys *trust_keys_new_file(const char *path, GError **error);

/* Keys from the DNS: @nameserver ("IP", "IP:PORT", "[IPv6]:PORT", NULL: the servers of
 * /etc/resolv.conf), @timeout seconds per lookup. The resolver is made at the first
 * lookup. (transfer full) */
TrustKeys *trust_keys_new_dns(const char *nameserver, double timeout);

void trust_keys_free(TrustKeys *keys);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrustKeys, trust_keys_free)

/* A TrustDkimLookup: @data is the TrustKeys. */
TrustKeyStatus trust_keys_lookup(const char *name, char **record, char **why, gpointer data);

#endif
