/* render-check.c - `check`'s output as the Monitoring Plugins development guidelines
 * want it: one status line "TLSRPT STATE - text | perfdata", then the long text. */
#include "render.h"

#include "escape.h"

#include <string.h>

/* How many problem domains the status line names before "and N more". */
#define RENDER_CHECK_NAMED 3

const char *
render_plugin_state_name(RenderPluginState s)
{
  switch (s) {
  case RENDER_PLUGIN_OK: return "OK";
  case RENDER_PLUGIN_WARNING: return "WARNING";
  case RENDER_PLUGIN_CRITICAL: return "CRITICAL";
  case RENDER_PLUGIN_UNKNOWN: return "UNKNOWN";
  }
  return "UNKNOWN";
}

/* Plugin text: escaped for a terminal, and no '|' (it starts the perfdata). */
static void
check_text(GString *out, const char *s)
{
  g_autofree char *e = tr_escape_terminal(s != NULL ? s : "");
  for (const char *p = e; *p; p++) {
    if (*p == '|')
      g_string_append(out, "\\x7c");
    else
      g_string_append_c(out, *p);
  }
}

/* A perfdata label: quoted, so only its own characters need care. */
static void
check_label(GString *out, const char *domain, const char *what)
{
  g_string_append_c(out, '\'');
  for (const unsigned char *p = (const unsigned char *) domain; *p; p++)
    g_string_append_c(out, g_ascii_isalnum(*p) || *p == '.' || *p == '-' || *p == '_'
                               ? (char) *p : '_');
  g_string_append_printf(out, "_%s'", what);
}

/* 2.1, 20, 0.5, 33.33: a percentage with at most two decimals. */
static void
check_number(GString *out, double pct)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd(buf, sizeof buf, "%.2f", pct);
  char *dot = strchr(buf, '.');
  if (dot != NULL) {
    char *end = buf + strlen(buf) - 1;
    while (end > dot && *end == '0')
      *end-- = '\0';
    if (end == dot)
      *end = '\0';
  }
  g_string_append(out, buf);
}

static gint64
check_sessions(const RenderCheckDomain *c)
{
  return c->window != NULL ? c->window->successful_sessions + c->window->failed_sessions : 0;
}

static void
check_day(GString *out, gint64 epoch)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(epoch);
  g_autofree char *s = t != NULL ? g_date_time_format(t, "%Y-%m-%d") : g_strdup("?");
  g_string_append(out, s);
}

/* "example.com 2.1% failed (certificate-host-mismatch on mx2.example.com)" or
 * "example.com no report for 4 days (newest 2024-03-05)". */
static void
check_domain_text(GString *out, const RenderCheckDomain *c, const RenderCheckOptions *o)
{
  check_text(out, c->policy_domain);
  const QueryDomain *d = c->window;
  gboolean said = FALSE;
  if (d != NULL && d->failed_sessions > 0 && !c->below_min &&
      c->state != RENDER_PLUGIN_OK) {
    g_string_append_c(out, ' ');
    check_number(out, d->failure_ratio * 100.0);
    g_string_append(out, "% failed");
    if (d->result_types != NULL && d->result_types->len > 0) {
      const QueryResultType *t = d->result_types->pdata[0];
      g_string_append(out, " (");
      check_text(out, t->result_type[0] ? t->result_type : "no result type");
      if (d->mx_hosts != NULL && d->mx_hosts->len > 0) {
        const QueryCount *mx = d->mx_hosts->pdata[0];
        if (mx->name[0] != '\0') {
          g_string_append(out, " on ");
          check_text(out, mx->name);
        }
      }
      if (d->result_types->len > 1)
        g_string_append_printf(out, ", +%u more", d->result_types->len - 1);
      g_string_append_c(out, ')');
    }
    said = TRUE;
  }
  if (c->stale) {
    g_string_append(out, said ? " and " : " ");
    if (c->newest_begin == 0) {
      g_string_append(out, "no report ever");
    } else {
      gint64 days = (o->now - c->newest_begin) / 86400;
      g_string_append_printf(out, "no report for %" G_GINT64_FORMAT " days (newest ", days);
      check_day(out, c->newest_begin);
      g_string_append_c(out, ')');
    }
  }
}

static gint
check_by_name(gconstpointer a, gconstpointer b)
{
  const RenderCheckDomain *x = *(const RenderCheckDomain *const *) a;
  const RenderCheckDomain *y = *(const RenderCheckDomain *const *) b;
  return strcmp(x->policy_domain, y->policy_domain);
}

RenderPluginState
render_check(const GPtrArray *domains, const RenderCheckOptions *o, GString *out)
{
  RenderPluginState worst = RENDER_PLUGIN_OK;
  guint problems = 0;
  gint64 sessions = 0, failed = 0;
  for (guint i = 0; i < domains->len; i++) {
    const RenderCheckDomain *c = domains->pdata[i];
    if (c->state > worst)
      worst = c->state;
    if (c->state != RENDER_PLUGIN_OK)
      problems++;
    sessions += check_sessions(c);
    failed += c->window != NULL ? c->window->failed_sessions : 0;
  }

  g_string_append_printf(out, "TLSRPT %s - ", render_plugin_state_name(worst));
  if (problems == 0) {
    g_string_append_printf(out, "%u domain%s, %" G_GINT64_FORMAT " sessions, ", domains->len,
                           domains->len == 1 ? "" : "s", sessions);
    check_number(out, sessions > 0 ? 100.0 * (double) failed / (double) sessions : 0.0);
    g_string_append_printf(out, "%% failed in the last %d day%s", o->days,
                           o->days == 1 ? "" : "s");
  } else {
    guint named = 0;
    for (guint i = 0; i < domains->len && named < RENDER_CHECK_NAMED; i++) {
      const RenderCheckDomain *c = domains->pdata[i];
      if (c->state == RENDER_PLUGIN_OK)
        continue;
      if (named++ > 0)
        g_string_append(out, ", ");
      check_domain_text(out, c, o);
    }
    if (problems > named)
      g_string_append_printf(out, " and %u more", problems - named);
    if (domains->len > problems)
      g_string_append_printf(out, "; %u OK", domains->len - problems);
  }

  /* Perfdata, by domain name so that graphs keep their order. */
  /* (a copy of the pointers only: g_ptr_array_copy() would take the free function) */
  g_autoptr(GPtrArray) sorted = g_ptr_array_sized_new(domains->len);
  for (guint i = 0; i < domains->len; i++)
    g_ptr_array_add(sorted, domains->pdata[i]);
  g_ptr_array_sort(sorted, check_by_name);
  for (guint i = 0; i < sorted->len; i++) {
    const RenderCheckDomain *c = sorted->pdata[i];
    g_string_append(out, i == 0 ? " | " : " ");
    check_label(out, c->policy_domain, "failed_ratio");
    g_string_append_c(out, '=');
    check_number(out, c->window != NULL ? c->window->failure_ratio * 100.0 : 0.0);
    g_string_append(out, "%;");
    check_number(out, o->warn * 100.0);
    g_string_append_c(out, ';');
    check_number(out, o->crit * 100.0);
    g_string_append(out, ";0;100 ");
    check_label(out, c->policy_domain, "sessions");
    g_string_append_printf(out, "=%" G_GINT64_FORMAT "c", check_sessions(c));
  }
  g_string_append_c(out, '\n');

  /* Long text: one line per domain, worst first. */
  for (guint i = 0; i < domains->len; i++) {
    const RenderCheckDomain *c = domains->pdata[i];
    const QueryDomain *d = c->window;
    g_string_append_printf(out, "%s: ", render_plugin_state_name(c->state));
    check_text(out, c->policy_domain);
    if (d != NULL) {
      g_string_append_printf(out, " %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                             " sessions failed (", d->failed_sessions, check_sessions(c));
      check_number(out, d->failure_ratio * 100.0);
      g_string_append_printf(out, "%%) in %" G_GINT64_FORMAT " report%s", d->reports,
                             d->reports == 1 ? "" : "s");
      if (d->result_types != NULL)
        for (guint j = 0; j < d->result_types->len; j++) {
          const QueryResultType *t = d->result_types->pdata[j];
          g_string_append(out, j == 0 ? ": " : ", ");
          check_text(out, t->result_type[0] ? t->result_type : "no result type");
          g_string_append_printf(out, " %" G_GINT64_FORMAT "%s", t->failed_sessions,
                                 t->known ? "" : " (unknown type)");
        }
      if (d->mx_hosts != NULL && d->mx_hosts->len > 0) {
        g_string_append(out, "; MX");
        for (guint j = 0; j < d->mx_hosts->len; j++) {
          const QueryCount *mx = d->mx_hosts->pdata[j];
          g_string_append(out, j == 0 ? " " : ", ");
          check_text(out, mx->name[0] ? mx->name : "(not reported)");
          g_string_append_printf(out, " %" G_GINT64_FORMAT, mx->failed_sessions);
        }
      }
    } else {
      g_string_append(out, " no report in the window");
    }
    if (c->below_min)
      g_string_append_printf(out, "; fewer than --min-sessions %" G_GINT64_FORMAT
                             " sessions: not judged", o->min_sessions);
    if (c->stale) {
      if (c->newest_begin == 0) {
        g_string_append(out, "; no report ever received");
      } else {
        g_string_append_printf(out, "; no report for %d days or more (newest ", o->stale_days);
        check_day(out, c->newest_begin);
        g_string_append_c(out, ')');
      }
    } else if (c->newest_begin != 0) {
      g_string_append(out, "; newest report ");
      check_day(out, c->newest_begin);
    }
    g_string_append_c(out, '\n');
  }
  return worst;
}
