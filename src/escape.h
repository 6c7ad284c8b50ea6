/* escape.h - one escaper per output context for strings a sender controls (every
 * string of a report, file names, message ids): the terminal (log lines, summary,
 * show, explain, check), HTML text and attributes, Prometheus label values, CSV cells.
 *
 * What is unsafe is the same in every context and shown the same way, as a visible
 * "\xNN" per byte: C0 control bytes (0x00-0x1f), DEL (0x7f), C1 controls (U+0080-U+009F,
 * the bytes c2 80 .. c2 9f), the bidirectional overrides and isolates (U+202A-U+202E,
 * U+2066-U+2069) and the line and paragraph separators (U+2028, U+2029), and every
 * byte that is not part of valid UTF-8 (overlong forms and surrogates included).
 * Printable UTF-8, backslash included, is kept. Each context then escapes its own
 * metacharacters. docs/csv.md says what the CSV does and why.
 *
 * A NULL string is treated as "". */
#ifndef TLSRPT_ESCAPE_H
#define TLSRPT_ESCAPE_H

#include "common.h"

/* @s for a terminal or a log line: unsafe characters as "\xNN". (transfer full) */
char *tr_escape_terminal(const char *s);
/* The same, appended to @out; @len bytes of @s, or up to its NUL when @len < 0 (with
 * a length, a NUL byte is shown as "\x00"). */
void tr_escape_terminal_append(GString *out, const char *s, gssize len);

/* @s as HTML text or a quoted attribute value: & < > " ' as entities, unsafe
 * characters as "\xNN". */
void tr_escape_html_append(GString *out, const char *s);

/* @s as a Prometheus label value (the text between the double quotes): backslash as
 * \\, double quote as \", line feed as \n (the exposition format's escapes, so the
 * value reads back exact), any other unsafe character as the literal text "\xNN"
 * (written \\xNN: the format knows no other escape). */
void tr_escape_prom_label_append(GString *out, const char *s);

/* Why a CSV cell differs from its value (flags of tr_csv_cell_check()). */
typedef enum {
  TR_CSV_FORMULA = 1 << 0,    /* starts with = + - @ TAB or CR: prefixed with ' */
  TR_CSV_CONTROL = 1 << 1,    /* unsafe characters (but TAB) replaced with "\xNN" */
} TrCsvChange;

/* What tr_csv_cell_append(@s, FALSE) changes in @s: 0 when nothing. */
guint tr_csv_cell_check(const char *s);

/* @s as one RFC 4180 field (no separator), quoted when it holds a comma, a double
 * quote, CR, LF or leading or trailing white space. Unless @raw, a formula-like value
 * (first character = + - @ TAB or CR) is prefixed with ' and unsafe characters other
 * than TAB are replaced with "\xNN", so a spreadsheet shows the text and a terminal
 * showing the file is not driven by it. With @raw the value is written exactly.
 * Returns TRUE when the value was changed (neutralized). */
gboolean tr_csv_cell_append(GString *out, const char *s, gboolean raw);

#endif
