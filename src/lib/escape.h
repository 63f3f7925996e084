/*
 * escape.h - one place for putting untrusted bytes (names and strings from a
 * file or a server) into text meant for a terminal, a markdown report, JSON
 * or XML.  Every function takes an explicit length, since a GGUF key or
 * tensor name may hold NUL bytes, and appends to a struct qa_sb (strbuf.h).
 *
 * The policies:
 * - terminal and messages (qa_escape_term): a control byte (0x00-0x1f,
 *   0x7f), a byte that is not part of valid UTF-8, and each byte of a C1
 *   control (U+0080-U+009F) becomes \xNN; a backslash becomes \\.  So
 *   "a\0x" prints as a\x00x and differs from "a\0y", and no escape sequence
 *   reaches the terminal.  Everything else (valid UTF-8) is kept.
 * - markdown prose and table cells (qa_escape_md): as the terminal policy,
 *   then markdown-significant characters get a backslash.
 * - a markdown code span (qa_escape_code): as the terminal policy; a
 *   backtick becomes ' and a pipe \| (so that the span may sit in a table).
 * - JSON (qa_escape_json, and qa_json_text_set in json_scan.h): always
 *   valid JSON; invalid UTF-8 becomes U+FFFD, and the exact bytes are given
 *   beside it as hex by the caller (qa_sb_hex) only then.
 * - XML 1.0 text and attributes (qa_escape_xml): & < > " ' as entities;
 *   bytes XML cannot carry (control bytes other than tab, LF, CR) and invalid
 *   UTF-8 become U+FFFD.
 * Private to the library (not installed).
 */
#ifndef QA_ESCAPE_H
#define QA_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/*
 * Decode one UTF-8 character from the len bytes at s (len > 0).  Returns
 * its length (1-4) with the code point in *cp, or 0 when s does not start
 * with a valid, shortest-form encoding of a scalar value (overlong forms,
 * surrogates and values past U+10FFFF are invalid).
 */
size_t qa_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Whether the len bytes at s are valid UTF-8 (NUL bytes are valid). */
bool qa_utf8_valid(const char *s, size_t len);

/* Append s with every invalid UTF-8 byte replaced by U+FFFD. */
void qa_utf8_sanitize(struct qa_sb *b, const char *s, size_t len);

/* The terminal and message policy above. */
void qa_escape_term(struct qa_sb *b, const char *s, size_t len);

/* The markdown prose policy above. */
void qa_escape_md(struct qa_sb *b, const char *s, size_t len);

/* A markdown code span, backticks included. */
void qa_escape_code(struct qa_sb *b, const char *s, size_t len);

/* A JSON string literal, quotes included (always valid JSON). */
void qa_escape_json(struct qa_sb *b, const char *s, size_t len);

/* XML 1.0 character data or attribute value (no quotes added). */
void qa_escape_xml(struct qa_sb *b, const char *s, size_t len);

/*
 * The same policies for a NUL-terminated string s (NULL: nothing), for text
 * that is a C string already (names in results, messages): qa_escape_md_str
 * (markdown prose), qa_escape_code_str (a code span), qa_escape_term_str
 * (plain text and terminals), and qa_escape_name (a code span when md, the
 * terminal policy otherwise).  Every report goes through these, so a control
 * byte prints as \xNN and a backslash as \\ everywhere.
 */
void qa_escape_md_str(struct qa_sb *b, const char *s);
void qa_escape_code_str(struct qa_sb *b, const char *s);
void qa_escape_term_str(struct qa_sb *b, const char *s);
void qa_escape_name(struct qa_sb *b, bool md, const char *s);

/*
 * The terminal policy into a fixed buffer: NUL-terminated in buf (cap > 0
 * bytes); when the escaped text does not fit it is cut at an escape
 * boundary and ends in "...".  Returns buf.  For messages of bounded size
 * (struct qa_diag); output of unbounded size uses qa_escape_term.
 */
const char *qa_escape_term_buf(char *buf, size_t cap, const char *s, size_t len);

/*
 * A library message (struct qa_diag's msg) for the terminal: as
 * qa_escape_term_buf, but a backslash is kept as it is, because the library
 * escapes the names it puts into a message (with qa_escape_term_buf) and
 * their escapes must not be doubled.  A control byte or invalid UTF-8 that
 * reached a message unescaped still becomes \xNN.
 */
const char *qa_escape_msg_buf(char *buf, size_t cap, const char *s, size_t len);

#endif
