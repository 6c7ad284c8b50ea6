/* source-imap.c - IMAP source (libcurl). Placeholder: replaced by the IMAP work. */
#include "source.h"

static gpointer
source_imap_open(const TrOptions *opts, char **args, GError **error)
{
  g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_PROTOCOL, "imap: not built yet");
  return NULL;
}

static gboolean
source_imap_next(gpointer self, SourceMessage **msg, GError **error)
{
  return FALSE;
}

static gboolean
source_imap_commit(gpointer self, SourceMessage *msg, SourceOutcome outcome, GError **error)
{
  return TRUE;
}

static void
source_imap_close(gpointer self)
{
}

const SourceOps source_imap_ops = {
  "imap", source_imap_open, source_imap_next, source_imap_commit, source_imap_close,
};
