/*
 * cursor.c - the bounds-checked reader every parser goes through.
 */
#include "cursor.h"

void qa_cursor_init(struct qa_cursor *c, const void *base, size_t len,
                    uint64_t origin)
{
	c->base = base;
	c->len = base ? len : 0;
	c->pos = 0;
	c->origin = origin;
}

static enum qa_err need(struct qa_cursor *c, uint64_t n, const char *what,
                        struct qa_diag *d)
{
	size_t left = qa_cursor_remaining(c);
	if (n > left)
		return qa_diag_set(d, QA_ERR_FORMAT, qa_cursor_offset(c),
		                   "truncated %s: need %llu bytes, %zu remain",
		                   what, (unsigned long long)n, left);
	return QA_OK;
}

enum qa_err qa_cursor_bytes(struct qa_cursor *c, uint64_t n, const uint8_t **out,
                            const char *what, struct qa_diag *d)
{
	enum qa_err e = need(c, n, what, d);
	if (e)
		return e;
	*out = c->base + c->pos;
	c->pos += (size_t)n;
	return QA_OK;
}

enum qa_err qa_cursor_skip(struct qa_cursor *c, uint64_t n, const char *what,
                           struct qa_diag *d)
{
	const uint8_t *p;
	return qa_cursor_bytes(c, n, &p, what, d);
}

enum qa_err qa_cursor_u8(struct qa_cursor *c, uint8_t *out, const char *what, struct qa_diag *d)
{
	const uint8_t *p;
	enum qa_err e = qa_cursor_bytes(c, 1, &p, what, d);
	if (!e)
		*out = p[0];
	return e;
}

enum qa_err qa_cursor_u16(struct qa_cursor *c, uint16_t *out, const char *what, struct qa_diag *d)
{
	const uint8_t *p;
	enum qa_err e = qa_cursor_bytes(c, 2, &p, what, d);
	if (!e)
		*out = qa_load_le16(p);
	return e;
}

enum qa_err qa_cursor_u32(struct qa_cursor *c, uint32_t *out, const char *what, struct qa_diag *d)
{
	const uint8_t *p;
	enum qa_err e = qa_cursor_bytes(c, 4, &p, what, d);
	if (!e)
		*out = qa_load_le32(p);
	return e;
}

enum qa_err qa_cursor_u64(struct qa_cursor *c, uint64_t *out, const char *what, struct qa_diag *d)
{
	const uint8_t *p;
	enum qa_err e = qa_cursor_bytes(c, 8, &p, what, d);
	if (!e)
		*out = qa_load_le64(p);
	return e;
}

enum qa_err qa_cursor_f32(struct qa_cursor *c, float *out, const char *what, struct qa_diag *d)
{
	uint32_t u;
	enum qa_err e = qa_cursor_u32(c, &u, what, d);
	if (!e)
		memcpy(out, &u, sizeof *out);
	return e;
}

enum qa_err qa_cursor_f64(struct qa_cursor *c, double *out, const char *what, struct qa_diag *d)
{
	uint64_t u;
	enum qa_err e = qa_cursor_u64(c, &u, what, d);
	if (!e)
		memcpy(out, &u, sizeof *out);
	return e;
}
