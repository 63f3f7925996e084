/*
 * strbuf.h - a growable, always NUL-terminated string buffer with a sticky
 * out-of-memory flag, and the helpers that append untrusted text to it
 * escaped for markdown, for a markdown code span, for plain text, or as a
 * POSIX shell word.
 *
 * A buffer starts zeroed ({ 0 }).  Appends never fail loudly: when memory
 * runs out, or the buffer would grow past QA_SB_MAX bytes, oom is set and
 * every later append is a no-op, so a caller checks oom once at the end.
 * p is NULL until the first append; it is owned by the buffer and freed by
 * qa_sb_free.  This is a private header of the library (not installed).
 */
#ifndef QA_STRBUF_H
#define QA_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest buffer (bytes, NUL included) an append may grow to. */
#define QA_SB_MAX ((size_t)1 << 30)

struct qa_sb {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Append n bytes of s (which may hold NULs), s itself, or one byte. */
void qa_sb_putn(struct qa_sb *b, const char *s, size_t n);
void qa_sb_puts(struct qa_sb *b, const char *s);
void qa_sb_putc(struct qa_sb *b, char c);

/* Append printf-formatted text. */
void qa_sb_printf(struct qa_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Free the buffer's memory and reset it to empty (oom is kept). */
void qa_sb_free(struct qa_sb *b);

/* n bytes as lowercase hex. */
void qa_sb_hex(struct qa_sb *b, const uint8_t *h, size_t n);

/* s quoted as one word for a POSIX shell (unquoted when it is safe). */
void qa_sb_shell(struct qa_sb *b, const char *s);

/* Copy the text into buf (cap bytes, NUL-terminated, cut at a UTF-8
 * character boundary); an oom buffer gives "". */
void qa_sb_copy_out(const struct qa_sb *b, char *buf, size_t cap);

#endif
