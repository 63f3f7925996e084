/*
 * cursor.h - bounds-checked little-endian reading of untrusted bytes, and
 * checked size arithmetic.
 *
 * Every parser in libquantaudit reads file data only through a struct
 * qa_cursor.  A cursor borrows a byte range (it never owns or frees it) and
 * knows the absolute file offset of its first byte, so that every error it
 * reports names the offset in the file where the read would have failed.
 * Values are assembled with memcpy and explicit little-endian decoding, never
 * by casting pointers.
 */
#ifndef QA_CURSOR_H
#define QA_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"

struct qa_cursor {
	const uint8_t *base; /* borrowed; must outlive the cursor */
	size_t len;          /* bytes available at base */
	size_t pos;          /* next byte to read, 0 <= pos <= len */
	uint64_t origin;     /* absolute file offset of base[0] */
};

/* Point c at len bytes at base, whose first byte sits at file offset origin. */
void qa_cursor_init(struct qa_cursor *c, const void *base, size_t len,
                    uint64_t origin);

/* Bytes left to read. */
static inline size_t qa_cursor_remaining(const struct qa_cursor *c)
{
	return c->len - c->pos;
}

/* Absolute file offset of the next byte. */
static inline uint64_t qa_cursor_offset(const struct qa_cursor *c)
{
	return c->origin + c->pos;
}

/*
 * Each reader below consumes the value's bytes and stores it in *out, or,
 * when fewer bytes remain, leaves the cursor where it was and returns
 * QA_ERR_FORMAT with d set to the current offset and a reason naming what
 * was being read ("what", e.g. "tensor count").
 */
QA_WARN_UNUSED
enum qa_err qa_cursor_u8(struct qa_cursor *c, uint8_t *out, const char *what, struct qa_diag *d);
QA_WARN_UNUSED
enum qa_err qa_cursor_u16(struct qa_cursor *c, uint16_t *out, const char *what, struct qa_diag *d);
QA_WARN_UNUSED
enum qa_err qa_cursor_u32(struct qa_cursor *c, uint32_t *out, const char *what, struct qa_diag *d);
QA_WARN_UNUSED
enum qa_err qa_cursor_u64(struct qa_cursor *c, uint64_t *out, const char *what, struct qa_diag *d);
QA_WARN_UNUSED
enum qa_err qa_cursor_f32(struct qa_cursor *c, float *out, const char *what, struct qa_diag *d);
QA_WARN_UNUSED
enum qa_err qa_cursor_f64(struct qa_cursor *c, double *out, const char *what, struct qa_diag *d);

/*
 * Borrow n bytes: *out points into the cursor's range and lives as long as
 * that range.  Fails like the value readers when fewer than n bytes remain.
 */
QA_WARN_UNUSED
enum qa_err qa_cursor_bytes(struct qa_cursor *c, uint64_t n, const uint8_t **out,
                            const char *what, struct qa_diag *d);

/* Skip n bytes, failing like qa_cursor_bytes. */
QA_WARN_UNUSED
enum qa_err qa_cursor_skip(struct qa_cursor *c, uint64_t n, const char *what,
                           struct qa_diag *d);

/* Little-endian loads and stores on raw memory (no bounds check: callers own the range). */
static inline uint16_t qa_load_le16(const void *p)
{
	uint8_t b[2];
	memcpy(b, p, 2);
	return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t qa_load_le32(const void *p)
{
	uint8_t b[4];
	memcpy(b, p, 4);
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
	       ((uint32_t)b[3] << 24);
}
static inline uint64_t qa_load_le64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)qa_load_le32(b) | ((uint64_t)qa_load_le32(b + 4) << 32);
}
static inline float qa_load_lef32(const void *p)
{
	uint32_t u = qa_load_le32(p);
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}
static inline void qa_store_le16(void *p, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	memcpy(p, b, 2);
}
static inline void qa_store_le32(void *p, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	memcpy(p, b, 4);
}
static inline void qa_store_le64(void *p, uint64_t v)
{
	qa_store_le32(p, (uint32_t)v);
	qa_store_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}
static inline void qa_store_lef32(void *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	qa_store_le32(p, u);
}

/*
 * Checked arithmetic: store a*b (a+b) in *out and return true, or return
 * false, leaving *out unspecified, when the result does not fit.
 */
static inline bool qa_mul_size(size_t a, size_t b, size_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}
static inline bool qa_add_size(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}
static inline bool qa_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}
static inline bool qa_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

#endif
