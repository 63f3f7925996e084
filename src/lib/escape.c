/*
 * escape.c - untrusted bytes into terminal, markdown, JSON and XML text
 * (see escape.h for the policies).
 */
#include "escape.h"

#include <stdio.h>
#include <string.h>

size_t qa_utf8_decode(const char *s, size_t len, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	if (len == 0)
		return 0;
	unsigned char c = u[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t n;
	uint32_t v, min;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (u[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

bool qa_utf8_valid(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = qa_utf8_decode(s + i, len - i, &cp);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD in UTF-8 */

void qa_utf8_sanitize(struct qa_sb *b, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = qa_utf8_decode(s + i, len - i, &cp);
		if (n) {
			qa_sb_putn(b, s + i, n);
			i += n;
		} else {
			qa_sb_puts(b, REPLACEMENT);
			i++;
		}
	}
}

/*
 * The next unit of s under the terminal policy: either one escape (\xNN or
 * \\, written to esc) or n bytes of s to copy as they are.  Returns the
 * number of input bytes consumed; *out and *out_len give the text.
 */
static size_t term_unit(const char *s, size_t len, char esc[8], const char **out, size_t *out_len)
{
	unsigned char c = (unsigned char)s[0];
	if (c == '\\') {
		*out = "\\\\";
		*out_len = 2;
		return 1;
	}
	uint32_t cp;
	size_t n = qa_utf8_decode(s, len, &cp);
	if (n == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
		snprintf(esc, 8, "\\x%02x", c);
		*out = esc;
		*out_len = 4;
		return 1;
	}
	*out = s;
	*out_len = n;
	return n;
}

/* What the buffer escapers add to the terminal policy. */
enum term_mode {
	TERM_PLAIN,
	TERM_MD,    /* a backslash before markdown-significant characters */
	TERM_CODE,  /* inside a code span: ` becomes ', | becomes \| */
};

static void term_sb(struct qa_sb *b, const char *s, size_t len, enum term_mode m)
{
	size_t i = 0;
	while (i < len) {
		char esc[8];
		const char *o;
		size_t on;
		i += term_unit(s + i, len - i, esc, &o, &on);
		if (m == TERM_MD && on == 1 && strchr("`*_[]<>|#!~&", o[0]))
			qa_sb_putc(b, '\\');
		if (m == TERM_CODE && on == 1 && (o[0] == '`' || o[0] == '|'))
			qa_sb_puts(b, o[0] == '`' ? "'" : "\\|");
		else
			qa_sb_putn(b, o, on);
	}
}

void qa_escape_term(struct qa_sb *b, const char *s, size_t len)
{
	term_sb(b, s, len, TERM_PLAIN);
}

/* The fixed-buffer writer of both buffer policies; keep_backslash: a
 * backslash is copied as it is (library messages, escaped already). */
static const char *term_buf(char *buf, size_t cap, const char *s, size_t len, bool keep_backslash)
{
	size_t used = 0, i = 0;
	buf[0] = '\0';
	while (i < len) {
		char esc[8];
		const char *o;
		size_t on;
		size_t k = term_unit(s + i, len - i, esc, &o, &on);
		if (keep_backslash && s[i] == '\\')
			on = 1; /* o is the two-backslash escape: keep one */
		bool last = i + k == len;
		/* room for this unit, and for "..." unless it is the last one */
		if (used + on + (last ? 0 : 3) + 1 > cap) {
			if (used + 4 <= cap) {
				memcpy(buf + used, "...", 4);
			} else if (cap >= 4) {
				memcpy(buf + cap - 4, "...", 4);
			}
			return buf;
		}
		memcpy(buf + used, o, on);
		used += on;
		buf[used] = '\0';
		i += k;
	}
	return buf;
}

const char *qa_escape_term_buf(char *buf, size_t cap, const char *s, size_t len)
{
	return term_buf(buf, cap, s, len, false);
}

const char *qa_escape_msg_buf(char *buf, size_t cap, const char *s, size_t len)
{
	return term_buf(buf, cap, s, len, true);
}

void qa_escape_md(struct qa_sb *b, const char *s, size_t len)
{
	term_sb(b, s, len, TERM_MD);
}

void qa_escape_code(struct qa_sb *b, const char *s, size_t len)
{
	qa_sb_putc(b, '`');
	term_sb(b, s, len, TERM_CODE);
	qa_sb_putc(b, '`');
}

void qa_escape_json(struct qa_sb *b, const char *s, size_t len)
{
	qa_sb_putc(b, '"');
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = qa_utf8_decode(s + i, len - i, &cp);
		if (n == 0) {
			qa_sb_puts(b, "\\ufffd");
			i++;
			continue;
		}
		if (cp == '"')
			qa_sb_puts(b, "\\\"");
		else if (cp == '\\')
			qa_sb_puts(b, "\\\\");
		else if (cp == '\n')
			qa_sb_puts(b, "\\n");
		else if (cp == '\t')
			qa_sb_puts(b, "\\t");
		else if (cp == '\r')
			qa_sb_puts(b, "\\r");
		else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
			qa_sb_printf(b, "\\u%04x", (unsigned)cp);
		else
			qa_sb_putn(b, s + i, n);
		i += n;
	}
	qa_sb_putc(b, '"');
}

void qa_escape_xml(struct qa_sb *b, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = qa_utf8_decode(s + i, len - i, &cp);
		if (n == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xfffe ||
		    cp == 0xffff) {
			qa_sb_puts(b, REPLACEMENT);
			i += n ? n : 1;
			continue;
		}
		switch (cp) {
		case '&': qa_sb_puts(b, "&amp;"); break;
		case '<': qa_sb_puts(b, "&lt;"); break;
		case '>': qa_sb_puts(b, "&gt;"); break;
		case '"': qa_sb_puts(b, "&quot;"); break;
		case '\'': qa_sb_puts(b, "&apos;"); break;
		case '\t': qa_sb_puts(b, "&#9;"); break;
		case '\n': qa_sb_puts(b, "&#10;"); break;
		case '\r': qa_sb_puts(b, "&#13;"); break;
		default: qa_sb_putn(b, s + i, n); break;
		}
		i += n;
	}
}

void qa_escape_md_str(struct qa_sb *b, const char *s)
{
	if (s)
		qa_escape_md(b, s, strlen(s));
}

void qa_escape_code_str(struct qa_sb *b, const char *s)
{
	qa_escape_code(b, s ? s : "", s ? strlen(s) : 0);
}

void qa_escape_term_str(struct qa_sb *b, const char *s)
{
	if (s)
		qa_escape_term(b, s, strlen(s));
}

void qa_escape_name(struct qa_sb *b, bool md, const char *s)
{
	if (md)
		qa_escape_code_str(b, s);
	else
		qa_escape_term_str(b, s);
}
