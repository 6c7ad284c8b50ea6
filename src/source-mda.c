/* source-mda.c - one message on standard input, as delivered by an MTA or an MDA
 * (procmail, maildrop, Postfix pipe). Nothing to acknowledge: the exit code is the
 * acknowledgement.
 *
 * Size rule: a message is never lost because of its size. Up to --max-message-size it
 * is processed normally. Over it, but within twice the limit, it is returned with its
 * bytes and skip_reason set, so the pipeline quarantines it (exit 0: the MTA is done
 * with it and the postmaster finds it in the quarantine). Beyond twice the limit it is
 * not held in memory at all: standard input is drained and SOURCE_ERROR_TOO_LARGE
 * returned, which makes the pipeline exit 75 and leaves the message with the MTA. */
#include "source.h"

#include <errno.h>
#include <unistd.h>

#define SOURCE_MDA_CHUNK (64 * 1024)

typedef struct {
  gsize max_size;
  gboolean done;
} SourceMda;

static gpointer
source_mda_open(const SourceConfig *opts, char **args, GError **error)
{
  SourceMda *self = g_new0(SourceMda, 1);
  self->max_size = opts->max_message_size;
  return self;
}

/* Read fd 0 to EOF, holding at most @ceiling bytes. *total gets the size read. */
static GByteArray *
source_mda_read_stdin(gsize ceiling, gsize *total, GError **error)
{
  g_autoptr(GByteArray) buf = g_byte_array_sized_new(SOURCE_MDA_CHUNK);
  guint8 scratch[SOURCE_MDA_CHUNK];
  gboolean draining = FALSE;
  *total = 0;
  for (;;) {
    guint8 *dst;
    gsize want;
    if (!draining) {
      gsize old = buf->len;
      want = MIN((gsize) SOURCE_MDA_CHUNK, ceiling + 1 - old);
      g_byte_array_set_size(buf, (guint) (old + want));
      dst = buf->data + old;
      buf->len = (guint) old;
    } else {
      dst = scratch;
      want = sizeof scratch;
    }
    ssize_t n = read(STDIN_FILENO, dst, want);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int errsv = errno;
      g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_IO, "stdin: read: %s",
                  g_strerror(errsv));
      return NULL;
    }
    if (n == 0)
      break;
    *total += (gsize) n;
    if (!draining) {
      buf->len += (guint) n;
      if (buf->len > ceiling) {
        /* Give the memory back at once: the rest may be gigabytes. */
        draining = TRUE;
        g_byte_array_unref(buf);
        buf = g_byte_array_new();
      }
    }
  }
  return g_steal_pointer(&buf);
}

static gboolean
source_mda_next(gpointer self_, SourceMessage **msg, GError **error)
{
  SourceMda *self = self_;
  *msg = NULL;
  if (self->done)
    return FALSE;
  self->done = TRUE;

  gsize max = self->max_size;
  gsize ceiling = max > G_MAXSIZE / 2 - 1 ? G_MAXSIZE / 2 - 1 : max * 2;
  /* GByteArray holds at most G_MAXUINT bytes. */
  ceiling = MIN(ceiling, (gsize) G_MAXUINT - 1);
  gsize total = 0;
  g_autoptr(GByteArray) buf = source_mda_read_stdin(ceiling, &total, error);
  if (buf == NULL)
    return FALSE;
  if (total > ceiling) {
    g_set_error(error, SOURCE_ERROR, SOURCE_ERROR_TOO_LARGE,
                "stdin: message of %" G_GSIZE_FORMAT " bytes is more than twice "
                "--max-message-size (%" G_GSIZE_FORMAT " bytes): not held, left to the MTA",
                total, max);
    return FALSE;
  }

  SourceMessage *m = g_new0(SourceMessage, 1);
  m->origin = g_strdup("stdin");
  m->received = g_get_real_time() / G_USEC_PER_SEC;
  if (total > max)
    m->skip_reason = g_strdup_printf("message exceeds --max-message-size (%" G_GSIZE_FORMAT
                                     " > %" G_GSIZE_FORMAT " bytes)", total, max);
  m->data = g_byte_array_free_to_bytes(g_steal_pointer(&buf));
  *msg = m;
  return TRUE;
}

static gboolean
source_mda_commit(gpointer self, SourceMessage *msg, SourceOutcome outcome, GError **error)
{
  return TRUE;
}

static void
source_mda_close(gpointer self)
{
  g_free(self);
}

const SourceOps source_mda_ops = {
  "mda", source_mda_open, source_mda_next, source_mda_commit, source_mda_close, NULL,
  NULL,
};
