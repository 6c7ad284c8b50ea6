/* exit.c - the one mapping from an error to a process exit code. */
#include "common.h"

int
tr_exit_for(const GError *error, TrExitMode mode)
{
  gboolean mda = mode == TR_MODE_MDA;
  if (error == NULL)
    return TR_EXIT_OK;
  if (error->domain == CLI_ERROR) {
    if (!mda)
      return TR_EXIT_USAGE_BATCH;
    return error->code == CLI_ERROR_CONFIG ? TR_EXIT_CONFIG : TR_EXIT_USAGE;
  }
  if (error->domain == SOURCE_ERROR) {
    switch ((SourceError) error->code) {
    case SOURCE_ERROR_AUTH:
      return mda ? TR_EXIT_TEMPFAIL : TR_EXIT_AUTH;
    case SOURCE_ERROR_TLS:
      return mda ? TR_EXIT_TEMPFAIL : TR_EXIT_TLS;
    case SOURCE_ERROR_LOCKED:
      return mda ? TR_EXIT_TEMPFAIL : TR_EXIT_LOCKED;
    case SOURCE_ERROR_NOT_FOUND:
      return mda ? TR_EXIT_USAGE : TR_EXIT_USAGE_BATCH;
    default:
      break;
    }
  }
  return TR_EXIT_TEMPFAIL;
}
