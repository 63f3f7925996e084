/*
 * strbuf.c - the growable string buffer the reports are rendered into, and
 * the helpers that put untrusted text into it (markdown, code spans, plain
 * text, shell words).  See strbuf.h.
 */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void qa_sb_reserve(struct qa_sb *b, size_t extra)
{
	if (b->oom)
		return;
	if (b->len + extra + 1 <= b->cap)
		return;
	if (extra > QA_SB_MAX || b->len + extra + 1 > QA_SB_MAX) {
		b->oom = true;
		return;
	}
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

void qa_sb_putn(struct qa_sb *b, const char *s, size_t n)
{
	qa_sb_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void qa_sb_puts(struct qa_sb *b, const char *s)
{
	qa_sb_putn(b, s, strlen(s));
}

void qa_sb_putc(struct qa_sb *b, char c)
{
	qa_sb_putn(b, &c, 1);
}

void qa_sb_printf(struct qa_sb *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tmp[256];
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n < sizeof tmp) {
		qa_sb_putn(b, tmp, (size_t)n);
		return;
	}
	qa_sb_reserve(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void qa_sb_free(struct qa_sb *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void qa_sb_copy_out(const struct qa_sb *b, char *buf, size_t cap)
{
	if (!buf || cap == 0)
		return;
	size_t n = b->oom || !b->p ? 0 : b->len;
	if (n >= cap) {
		n = cap - 1;
		/* do not cut a UTF-8 sequence in half */
		while (n > 0 && ((unsigned char)b->p[n] & 0xc0) == 0x80)
			n--;
	}
	if (n)
		memcpy(buf, b->p, n);
	buf[n] = '\0';
}

void qa_sb_hex(struct qa_sb *b, const uint8_t *h, size_t n)
{
	if (n == 0)
		return;
	if (n > (SIZE_MAX - 1) / 2) {
		b->oom = true;
		return;
	}
	qa_sb_reserve(b, 2 * n);
	if (b->oom)
		return;
	qa_hex_encode(h, n, b->p + b->len);
	b->len += 2 * n;
}

/* Shell-quote one argument for a POSIX shell. */
void qa_sb_shell(struct qa_sb *b, const char *s)
{
	bool plain = *s != '\0';
	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+@%-", *p)) {
			plain = false;
			break;
		}
	if (plain) {
		qa_sb_puts(b, s);
		return;
	}
	qa_sb_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			qa_sb_puts(b, "'\\''");
		else
			qa_sb_putc(b, *s);
	}
	qa_sb_putc(b, '\'');
}
