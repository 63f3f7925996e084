/*
 * gguf_read.c - the GGUF v2/v3 header reader (see gguf.h).
 *
 * The header prefix of the source is copied into an owned buffer (1 MiB to
 * start, doubled while a parse runs off the end of a buffer that is shorter
 * than the file) and parsed through a struct qa_cursor.  Checks that bound
 * counts and lengths use the size of the file, never of the buffer, so the
 * verdict on a file does not depend on how much of it was buffered.  Strings
 * and values are copied into an arena (arena.h) owned by the reader, and the
 * buffer is dropped once parsing succeeds.  Keys and tensor names are
 * indexed in hash tables (htab.h), which also catch duplicates while parsing.
 */
#define _POSIX_C_SOURCE 200809L
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "cursor.h"
#include "escape.h"
#include "gguf_int.h"
#include "htab.h"
#include "hub.h"
#include "tmpfile.h"
#include "types.h"
#include "util.h"

#define GGUF_HEADER_FIXED 24u   /* magic, version, tensor count, kv count */
#define MIN_TENSOR_INFO 32u     /* empty name, one dimension */
#define MIN_KV 13u              /* empty key, type, one-byte value */
/* First header buffer; overridable at build time only to test the growth path.
 * It starts small and grows by 64 KiB (to at least what the parser found it
 * needs) up to 4 MiB, then by 1/16, so that a remote header costs about its
 * own size in transfers (see http.h) at a bounded number of re-parses. */
#ifndef QA_GGUF_INITIAL_HEADER_BYTES
#define QA_GGUF_INITIAL_HEADER_BYTES ((uint64_t)64 << 10)
#endif
#define HEADER_STEP ((uint64_t)64 << 10)
#define HEADER_STEP_UNTIL ((uint64_t)4 << 20)

const char *qa_gguf_vtype_name(uint32_t t)
{
	static const char *const names[] = {
		"u8", "i8", "u16", "i16", "u32", "i32", "f32",
		"bool", "string", "array", "u64", "i64", "f64",
	};
	return t <= QA_GGUF_F64 ? names[t] : "unknown";
}

/* Smallest encoding of one value of a (known) type. */
static uint64_t vtype_min_size(uint32_t t)
{
	switch (t) {
	case QA_GGUF_U8: case QA_GGUF_I8: case QA_GGUF_BOOL: return 1;
	case QA_GGUF_U16: case QA_GGUF_I16: return 2;
	case QA_GGUF_U32: case QA_GGUF_I32: case QA_GGUF_F32: return 4;
	case QA_GGUF_U64: case QA_GGUF_I64: case QA_GGUF_F64: return 8;
	case QA_GGUF_STRING: return 8;                /* length */
	case QA_GGUF_ARRAY: return 12;                /* type and count */
	}
	return 1;
}

/* ------------------------------------------------------------------ */
/* Reader                                                              */
/* ------------------------------------------------------------------ */

struct kv_rec {
	struct qa_gguf_kv pub;
	uint64_t key_len;
};

struct tensor_rec {
	struct qa_gguf_tensor pub;
	uint64_t name_len;
	uint64_t offset_at; /* absolute offset of the data-offset field */
};

struct qa_gguf {
	struct qa_source *src;
	uint32_t version;
	uint32_t alignment;
	uint64_t data_offset;
	struct kv_rec *kvs;
	size_t n_kv, cap_kv;
	struct tensor_rec *tensors;
	size_t n_tensors, cap_tensors;
	struct qa_htab kv_index;
	struct qa_htab tensor_index;
	struct qa_arena arena;
	/* A split GGUF opened at its first shard: the other shards (each owns
	 * its source) and every tensor in shard order. */
	struct qa_gguf **parts;
	size_t n_parts;
	const struct qa_gguf_tensor **all;
	size_t n_all;
};

static void kv_key(const void *ctx, size_t idx, const char **k, uint64_t *n)
{
	const struct qa_gguf *g = ctx;
	*k = g->kvs[idx].pub.key;
	*n = g->kvs[idx].key_len;
}

static void tensor_key(const void *ctx, size_t idx, const char **k, uint64_t *n)
{
	const struct qa_gguf *g = ctx;
	*k = g->tensors[idx].pub.name;
	*n = g->tensors[idx].name_len;
}

static void reader_reset(struct qa_gguf *g)
{
	free(g->kvs);
	free(g->tensors);
	qa_htab_free(&g->kv_index);
	qa_htab_free(&g->tensor_index);
	qa_arena_free(&g->arena);
	g->kvs = NULL;
	g->tensors = NULL;
	g->n_kv = g->cap_kv = g->n_tensors = g->cap_tensors = 0;
}

struct parser {
	struct qa_gguf *g;
	struct qa_cursor c;
	uint64_t file_size;
	bool partial;   /* the buffer holds less than the whole file */
	bool need_more; /* parsing ran off the end of a partial buffer */
	uint64_t need_end; /* when need_more: the end offset that was wanted */
	struct qa_diag *d;
};

static uint64_t p_off(const struct parser *p)
{
	return qa_cursor_offset(&p->c);
}

static uint64_t p_file_left(const struct parser *p)
{
	uint64_t o = p_off(p);
	return o < p->file_size ? p->file_size - o : 0;
}

/*
 * Before every read: when n bytes are not buffered but the file has more,
 * flag need_more and fail so that the caller retries with a bigger buffer.
 * When the buffer is the whole file the cursor itself reports truncation.
 */
static bool p_short(struct parser *p, uint64_t n)
{
	if (n <= qa_cursor_remaining(&p->c) || !p->partial)
		return false;
	p->need_more = true;
	p->need_end = p_off(p) + n; /* n is at most the file left */
	return true;
}

static enum qa_err p_nomem(struct parser *p)
{
	return qa_diag_set(p->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
}

static enum qa_err p_u8(struct parser *p, uint8_t *v, const char *what)
{
	if (p_short(p, 1))
		return QA_ERR_FORMAT;
	return qa_cursor_u8(&p->c, v, what, p->d);
}

static enum qa_err p_u16(struct parser *p, uint16_t *v, const char *what)
{
	if (p_short(p, 2))
		return QA_ERR_FORMAT;
	return qa_cursor_u16(&p->c, v, what, p->d);
}

static enum qa_err p_u32(struct parser *p, uint32_t *v, const char *what)
{
	if (p_short(p, 4))
		return QA_ERR_FORMAT;
	return qa_cursor_u32(&p->c, v, what, p->d);
}

static enum qa_err p_u64(struct parser *p, uint64_t *v, const char *what)
{
	if (p_short(p, 8))
		return QA_ERR_FORMAT;
	return qa_cursor_u64(&p->c, v, what, p->d);
}

/* Read a length-prefixed string into the arena ("what" names it in errors). */
static enum qa_err p_string(struct parser *p, const char *what, const char **out,
                            uint64_t *len_out)
{
	char what_len[64];
	uint64_t at = p_off(p), n;
	snprintf(what_len, sizeof what_len, "%s length", what);
	enum qa_err e = p_u64(p, &n, what_len);
	if (e)
		return e;
	if (n > p_file_left(p))
		return qa_diag_set(p->d, QA_ERR_FORMAT, at,
		                   "%s length %llu runs past end of file (%llu bytes left)",
		                   what, (unsigned long long)n,
		                   (unsigned long long)p_file_left(p));
	if (p_short(p, n))
		return QA_ERR_FORMAT;
	const uint8_t *bytes;
	e = qa_cursor_bytes(&p->c, n, &bytes, what, p->d);
	if (e)
		return e;
	char *s = qa_arena_strdup(&p->g->arena, bytes, (size_t)n);
	if (!s)
		return p_nomem(p);
	*out = s;
	*len_out = n;
	return QA_OK;
}

/* Read one value of known type t into v; depth counts enclosing arrays. */
static enum qa_err p_value(struct parser *p, uint32_t t, struct qa_gguf_value *v,
                           unsigned depth)
{
	enum qa_err e;
	uint64_t at = p_off(p);
	v->type = t;
	switch (t) {
	case QA_GGUF_U8: {
		uint8_t x;
		if ((e = p_u8(p, &x, "u8 value")))
			return e;
		v->v.u = x;
		return QA_OK;
	}
	case QA_GGUF_I8: {
		uint8_t x;
		if ((e = p_u8(p, &x, "i8 value")))
			return e;
		v->v.i = (int8_t)x;
		return QA_OK;
	}
	case QA_GGUF_BOOL: {
		uint8_t x;
		if ((e = p_u8(p, &x, "bool value")))
			return e;
		if (x > 1)
			return qa_diag_set(p->d, QA_ERR_FORMAT, at,
			                   "bool value %u is neither 0 nor 1", x);
		v->v.b = x != 0;
		return QA_OK;
	}
	case QA_GGUF_U16: {
		uint16_t x;
		if ((e = p_u16(p, &x, "u16 value")))
			return e;
		v->v.u = x;
		return QA_OK;
	}
	case QA_GGUF_I16: {
		uint16_t x;
		if ((e = p_u16(p, &x, "i16 value")))
			return e;
		v->v.i = (int16_t)x;
		return QA_OK;
	}
	case QA_GGUF_U32: {
		uint32_t x;
		if ((e = p_u32(p, &x, "u32 value")))
			return e;
		v->v.u = x;
		return QA_OK;
	}
	case QA_GGUF_I32: {
		uint32_t x;
		if ((e = p_u32(p, &x, "i32 value")))
			return e;
		v->v.i = (int32_t)x;
		return QA_OK;
	}
	case QA_GGUF_F32: {
		uint32_t x;
		float f;
		if ((e = p_u32(p, &x, "f32 value")))
			return e;
		memcpy(&f, &x, sizeof f);
		v->v.f = (double)f;
		return QA_OK;
	}
	case QA_GGUF_U64: {
		uint64_t x;
		if ((e = p_u64(p, &x, "u64 value")))
			return e;
		v->v.u = x;
		return QA_OK;
	}
	case QA_GGUF_I64: {
		uint64_t x;
		if ((e = p_u64(p, &x, "i64 value")))
			return e;
		v->v.i = (int64_t)x;
		return QA_OK;
	}
	case QA_GGUF_F64: {
		uint64_t x;
		if ((e = p_u64(p, &x, "f64 value")))
			return e;
		memcpy(&v->v.f, &x, sizeof v->v.f);
		return QA_OK;
	}
	case QA_GGUF_STRING:
		return p_string(p, "string value", &v->v.str.ptr, &v->v.str.len);
	case QA_GGUF_ARRAY: {
		uint32_t et;
		uint64_t count;
		if ((e = p_u32(p, &et, "array element type")))
			return e;
		if (et > QA_GGUF_F64)
			return qa_diag_set(p->d, QA_ERR_FORMAT, at,
			                   "unknown array element type %u", et);
		if (et == QA_GGUF_ARRAY && depth + 1 >= QA_GGUF_MAX_ARRAY_DEPTH)
			return qa_diag_set(p->d, QA_ERR_FORMAT, at,
			                   "arrays nested deeper than %d levels",
			                   QA_GGUF_MAX_ARRAY_DEPTH);
		uint64_t count_at = p_off(p);
		if ((e = p_u64(p, &count, "array count")))
			return e;
		uint64_t min = vtype_min_size(et);
		if (count > p_file_left(p) / min)
			return qa_diag_set(p->d, QA_ERR_FORMAT, count_at,
			                   "array count %llu of %s needs more than the %llu bytes left in the file",
			                   (unsigned long long)count, qa_gguf_vtype_name(et),
			                   (unsigned long long)p_file_left(p));
		/* Buffer the whole minimum extent before allocating items, so that
		 * allocations follow bytes actually read. */
		if (p_short(p, count * min))
			return QA_ERR_FORMAT;
		v->v.arr.elem_type = et;
		v->v.arr.count = count;
		v->v.arr.items = NULL;
		v->v.arr.raw = NULL;
		if (count == 0)
			return QA_OK;
		if (et != QA_GGUF_STRING && et != QA_GGUF_ARRAY) {
			/* Scalars stay packed as in the file (count * min bytes, one
			 * copy): a metadata-heavy file costs about its own size. */
			const uint8_t *src;
			if ((e = qa_cursor_bytes(&p->c, count * min, &src, "array items", p->d)))
				return e;
			if (et == QA_GGUF_BOOL)
				for (uint64_t i = 0; i < count; i++)
					if (src[i] > 1)
						return qa_diag_set(p->d, QA_ERR_FORMAT, at + 12 + i,
						                   "bool value %u is neither 0 nor 1", src[i]);
			void *raw = qa_arena_alloc(&p->g->arena, (size_t)(count * min));
			if (!raw)
				return p_nomem(p);
			memcpy(raw, src, (size_t)(count * min));
			v->v.arr.raw = raw;
			return QA_OK;
		}
		size_t bytes;
		if (!qa_mul_size((size_t)count, sizeof *v->v.arr.items, &bytes))
			return p_nomem(p);
		struct qa_gguf_value *items = qa_arena_alloc(&p->g->arena, bytes);
		if (!items)
			return p_nomem(p);
		memset(items, 0, bytes);
		v->v.arr.items = items;
		for (uint64_t i = 0; i < count; i++)
			if ((e = p_value(p, et, &items[i], depth + 1)))
				return e;
		return QA_OK;
	}
	}
	return qa_diag_set(p->d, QA_ERR_FORMAT, at, "unknown value type %u", t);
}

static uint32_t bswap32(uint32_t x)
{
	return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
}

static enum qa_err parse_preamble(struct parser *p, uint64_t *n_tensors, uint64_t *n_kv)
{
	struct qa_gguf *g = p->g;
	const uint8_t *magic;
	enum qa_err e;
	if (p_short(p, 4))
		return QA_ERR_FORMAT;
	if ((e = qa_cursor_bytes(&p->c, 4, &magic, "magic", p->d)))
		return e;
	if (memcmp(magic, "GGUF", 4) != 0)
		return qa_diag_set(p->d, QA_ERR_FORMAT, 0,
		                   "bad magic: not a gguf file (expected \"GGUF\")");
	if ((e = p_u32(p, &g->version, "version")))
		return e;
	if (g->version == 1)
		return qa_diag_set(p->d, QA_ERR_UNSUPPORTED, 4,
		                   "gguf version 1 is not supported");
	if (g->version != 2 && g->version != 3) {
		uint32_t sw = bswap32(g->version);
		if (sw >= 1 && sw <= 3)
			return qa_diag_set(p->d, QA_ERR_UNSUPPORTED, 4,
			                   "version field reads 0x%08x: big-endian gguf files are not supported",
			                   g->version);
		return qa_diag_set(p->d, QA_ERR_FORMAT, 4, "unknown gguf version %u",
		                   g->version);
	}
	if ((e = p_u64(p, n_tensors, "tensor count")))
		return e;
	if ((e = p_u64(p, n_kv, "metadata count")))
		return e;
	uint64_t body = p->file_size - GGUF_HEADER_FIXED;
	if (*n_tensors > body / MIN_TENSOR_INFO)
		return qa_diag_set(p->d, QA_ERR_FORMAT, 8,
		                   "tensor count %llu is more than a %llu-byte file can hold",
		                   (unsigned long long)*n_tensors,
		                   (unsigned long long)p->file_size);
	body -= *n_tensors * MIN_TENSOR_INFO;
	if (*n_kv > body / MIN_KV)
		return qa_diag_set(p->d, QA_ERR_FORMAT, 16,
		                   "metadata count %llu is more than a %llu-byte file can hold",
		                   (unsigned long long)*n_kv,
		                   (unsigned long long)p->file_size);
	return QA_OK;
}

static enum qa_err parse_kvs(struct parser *p, uint64_t n_kv)
{
	struct qa_gguf *g = p->g;
	char nb[80];
	enum qa_err e;
	for (uint64_t i = 0; i < n_kv; i++) {
		struct kv_rec r;
		memset(&r, 0, sizeof r);
		r.pub.offset = p_off(p);
		if ((e = p_string(p, "metadata key", &r.pub.key, &r.key_len)))
			return e;
		r.pub.key_len = r.key_len;
		qa_escape_term_buf(nb, sizeof nb, r.pub.key, (size_t)r.key_len);
		if (qa_htab_find(&g->kv_index, kv_key, g, r.pub.key, r.key_len) != SIZE_MAX)
			return qa_diag_set(p->d, QA_ERR_FORMAT, r.pub.offset,
			                   "duplicate metadata key \"%s\"", nb);
		uint64_t type_at = p_off(p);
		uint32_t t;
		if ((e = p_u32(p, &t, "metadata value type")))
			return e;
		if (t > QA_GGUF_F64)
			return qa_diag_set(p->d, QA_ERR_FORMAT, type_at,
			                   "unknown value type %u for key \"%s\"", t, nb);
		uint64_t value_at = p_off(p);
		if ((e = p_value(p, t, &r.pub.value, 0)))
			return e;
		if (r.key_len == 17 && memcmp(r.pub.key, "general.alignment", 17) == 0) {
			if (t != QA_GGUF_U32)
				return qa_diag_set(p->d, QA_ERR_FORMAT, type_at,
				                   "general.alignment has type %s, expected u32",
				                   qa_gguf_vtype_name(t));
			if (!qa_is_pow2(r.pub.value.v.u))
				return qa_diag_set(p->d, QA_ERR_FORMAT, value_at,
				                   "general.alignment %llu is not a nonzero power of two",
				                   (unsigned long long)r.pub.value.v.u);
			g->alignment = (uint32_t)r.pub.value.v.u;
		}
		if (!qa_array_grow((void **)&g->kvs, &g->cap_kv, g->n_kv + 1, sizeof *g->kvs))
			return p_nomem(p);
		g->kvs[g->n_kv] = r;
		if (!qa_htab_insert(&g->kv_index, kv_key, g, g->n_kv))
			return p_nomem(p);
		g->n_kv++;
	}
	return QA_OK;
}

static enum qa_err parse_tensor_infos(struct parser *p, uint64_t n_tensors)
{
	struct qa_gguf *g = p->g;
	char nb[80];
	enum qa_err e;
	for (uint64_t i = 0; i < n_tensors; i++) {
		struct tensor_rec r;
		struct qa_gguf_tensor *t = &r.pub;
		memset(&r, 0, sizeof r);
		t->info_offset = p_off(p);
		if ((e = p_string(p, "tensor name", &t->name, &r.name_len)))
			return e;
		t->name_len = r.name_len;
		qa_escape_term_buf(nb, sizeof nb, t->name, (size_t)r.name_len);
		if (qa_htab_find(&g->tensor_index, tensor_key, g, t->name, r.name_len) != SIZE_MAX)
			return qa_diag_set(p->d, QA_ERR_FORMAT, t->info_offset,
			                   "duplicate tensor name \"%s\"", nb);
		uint64_t nd_at = p_off(p);
		if ((e = p_u32(p, &t->n_dims, "tensor dimension count")))
			return e;
		if (t->n_dims == 0)
			return qa_diag_set(p->d, QA_ERR_FORMAT, nd_at,
			                   "tensor \"%s\" has zero dimensions", nb);
		if (t->n_dims > 4)
			return qa_diag_set(p->d, QA_ERR_FORMAT, nd_at,
			                   "tensor \"%s\" has %u dimensions, more than 4", nb,
			                   t->n_dims);
		uint64_t ne0_at = p_off(p), n = 1;
		for (unsigned j = 0; j < 4; j++)
			t->ne[j] = 1;
		for (unsigned j = 0; j < t->n_dims; j++) {
			uint64_t ne_at = p_off(p);
			if ((e = p_u64(p, &t->ne[j], "tensor dimension")))
				return e;
			if (t->ne[j] == 0)
				return qa_diag_set(p->d, QA_ERR_FORMAT, ne_at,
				                   "tensor \"%s\" dimension %u is zero", nb, j);
			if (t->ne[j] > (uint64_t)INT64_MAX || !qa_mul_u64(n, t->ne[j], &n) ||
			    n > (uint64_t)INT64_MAX)
				return qa_diag_set(p->d, QA_ERR_FORMAT, ne_at,
				                   "tensor \"%s\" element count overflows int64", nb);
		}
		t->n_elems = n;
		uint64_t type_at = p_off(p);
		if ((e = p_u32(p, &t->type, "tensor type")))
			return e;
		const struct qa_type_info *ti = qa_type_get(t->type);
		if (!ti)
			return qa_diag_set(p->d, QA_ERR_FORMAT, type_at,
			                   "tensor \"%s\" has unknown type %u", nb, t->type);
		if (t->ne[0] % ti->block_elems != 0)
			return qa_diag_set(p->d, QA_ERR_FORMAT, ne0_at,
			                   "tensor \"%s\" row of %llu elements is not a multiple of the %s block size %u",
			                   nb, (unsigned long long)t->ne[0], ti->name,
			                   ti->block_elems);
		if (!qa_type_nbytes(ti, n, &t->nbytes))
			return qa_diag_set(p->d, QA_ERR_FORMAT, type_at,
			                   "tensor \"%s\" byte size overflows", nb);
		r.offset_at = p_off(p);
		if ((e = p_u64(p, &t->offset, "tensor data offset")))
			return e;
		if (t->offset % g->alignment != 0)
			return qa_diag_set(p->d, QA_ERR_FORMAT, r.offset_at,
			                   "tensor \"%s\" data offset %llu is not a multiple of the alignment %u",
			                   nb, (unsigned long long)t->offset, g->alignment);
		if (!qa_array_grow((void **)&g->tensors, &g->cap_tensors, g->n_tensors + 1,
		                sizeof *g->tensors))
			return p_nomem(p);
		g->tensors[g->n_tensors] = r;
		if (!qa_htab_insert(&g->tensor_index, tensor_key, g, g->n_tensors))
			return p_nomem(p);
		g->n_tensors++;
	}
	return QA_OK;
}

struct extent {
	uint64_t start, end;
	size_t idx;
};

static int extent_cmp(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Data placement: every tensor inside the file, no two overlapping. */
static enum qa_err check_extents(struct parser *p)
{
	struct qa_gguf *g = p->g;
	char nb[80], nb2[80];
	for (size_t i = 0; i < g->n_tensors; i++) {
		const struct tensor_rec *r = &g->tensors[i];
		uint64_t start, end;
		if (!qa_add_u64(g->data_offset, r->pub.offset, &start) ||
		    !qa_add_u64(start, r->pub.nbytes, &end) || end > p->file_size)
			return qa_diag_set(p->d, QA_ERR_FORMAT, r->offset_at,
			                   "tensor \"%s\" data (%llu bytes at data offset %llu) runs past end of file",
			                   qa_escape_term_buf(nb, sizeof nb, r->pub.name, (size_t)r->name_len),
			                   (unsigned long long)r->pub.nbytes,
			                   (unsigned long long)r->pub.offset);
	}
	if (g->n_tensors < 2)
		return QA_OK;
	struct extent *x = malloc(g->n_tensors * sizeof *x);
	if (!x)
		return p_nomem(p);
	for (size_t i = 0; i < g->n_tensors; i++) {
		x[i].start = g->tensors[i].pub.offset;
		x[i].end = x[i].start + g->tensors[i].pub.nbytes; /* checked above */
		x[i].idx = i;
	}
	qsort(x, g->n_tensors, sizeof *x, extent_cmp);
	size_t owner = 0;
	for (size_t i = 1; i < g->n_tensors; i++) {
		if (x[i].start < x[owner].end) {
			size_t a = x[owner].idx, b = x[i].idx;
			size_t later = a > b ? a : b, earlier = a > b ? b : a;
			const struct tensor_rec *rl = &g->tensors[later], *re = &g->tensors[earlier];
			free(x);
			return qa_diag_set(p->d, QA_ERR_FORMAT, rl->offset_at,
			                   "tensor \"%s\" data overlaps tensor \"%s\"",
			                   qa_escape_term_buf(nb, sizeof nb, rl->pub.name, (size_t)rl->name_len),
			                   qa_escape_term_buf(nb2, sizeof nb2, re->pub.name, (size_t)re->name_len));
		}
		if (x[i].end > x[owner].end)
			owner = i;
	}
	free(x);
	return QA_OK;
}

static enum qa_err parse(struct parser *p)
{
	struct qa_gguf *g = p->g;
	uint64_t n_tensors, n_kv;
	enum qa_err e;
	g->alignment = QA_GGUF_DEFAULT_ALIGNMENT;
	if ((e = parse_preamble(p, &n_tensors, &n_kv)))
		return e;
	if ((e = parse_kvs(p, n_kv)))
		return e;
	if ((e = parse_tensor_infos(p, n_tensors)))
		return e;
	uint64_t end = p_off(p), a = g->alignment;
	g->data_offset = (end + a - 1) / a * a; /* end <= file size, no overflow */
	return check_extents(p);
}

/* The tensor named name in g's own table (not its other shards), or NULL. */
static const struct qa_gguf_tensor *find_own(const struct qa_gguf *g, const char *name,
                                             uint64_t len)
{
	size_t i = qa_htab_find(&g->tensor_index, tensor_key, g, name, len);
	return i == SIZE_MAX ? NULL : &g->tensors[i].pub;
}

/*
 * A split GGUF (llama-gguf-split: NAME-00001-of-0000N.gguf with split.no 0
 * and split.count N) opened at its first shard: open the other shards
 * beside it (same directory or URL prefix) and list every tensor in shard
 * order.  A later shard opened on its own is read as a single file.
 */
static enum qa_err open_split(struct qa_gguf *g, struct qa_diag *d)
{
	uint64_t count, no, total;
	if (!qa_gguf_get_u64(g, "split.count", &count) || count <= 1 ||
	    !qa_gguf_get_u64(g, "split.no", &no) || no != 0)
		return QA_OK;
	const char *name = qa_source_name(g->src);
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	unsigned sno, scount;
	size_t stem;
	if (count > 99999 || !qa_hub_split_name(base, &sno, &scount, &stem) || sno != 1 ||
	    scount != count)
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                   "first shard of a split gguf (split.count %llu) whose name does not end in -00001-of-%05llu.gguf",
		                   (unsigned long long)count, (unsigned long long)count);
	size_t plen = (size_t)(base - name) + stem;
	g->parts = calloc((size_t)count - 1, sizeof *g->parts);
	char *path = malloc(plen + 32);
	if (!g->parts || !path) {
		free(path);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	memcpy(path, name, plen);
	size_t n_all = g->n_tensors;
	enum qa_err e = QA_OK;
	for (uint64_t k = 2; k <= count && !e; k++) {
		snprintf(path + plen, 32, "-%05u-of-%05u.gguf", (unsigned)k, (unsigned)count);
		struct qa_source *src;
		struct qa_gguf *part = NULL;
		uint64_t pc, pn;
		if ((e = qa_source_open_file(&src, path, d))) {
			qa_diag_prefix(d, e, path);
			break;
		}
		if ((e = qa_gguf_open(&part, src, d))) {
			qa_source_close(src);
			qa_diag_prefix(d, e, path);
			break;
		}
		g->parts[g->n_parts++] = part;
		if (!qa_gguf_get_u64(part, "split.count", &pc) || pc != count ||
		    !qa_gguf_get_u64(part, "split.no", &pn) || pn != k - 1) {
			e = qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
			                "%s: split.no/split.count do not say shard %llu of %llu", path,
			                (unsigned long long)k, (unsigned long long)count);
			break;
		}
		for (size_t i = 0; i < part->n_tensors && !e; i++) {
			const char *tn = part->tensors[i].pub.name;
			uint64_t tl = part->tensors[i].name_len;
			bool dup = find_own(g, tn, tl) != NULL;
			for (size_t j = 0; j + 1 < g->n_parts && !dup; j++)
				dup = find_own(g->parts[j], tn, tl) != NULL;
			if (dup)
				e = qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
				                "%s: tensor \"%s\" is also in an earlier shard", path,
				                qa_escape_term_buf((char[80]){ 0 }, 80, tn, (size_t)part->tensors[i].name_len));
		}
		n_all += part->n_tensors;
	}
	free(path);
	if (e)
		return e;
	if (qa_gguf_get_u64(g, "split.tensors.count", &total) && total != n_all)
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                   "split.tensors.count is %llu but the %llu shards hold %zu tensors",
		                   (unsigned long long)total, (unsigned long long)count, n_all);
	g->all = malloc((n_all ? n_all : 1) * sizeof *g->all);
	if (!g->all)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < g->n_tensors; i++)
		g->all[k++] = &g->tensors[i].pub;
	for (size_t j = 0; j < g->n_parts; j++)
		for (size_t i = 0; i < g->parts[j]->n_tensors; i++)
			g->all[k++] = &g->parts[j]->tensors[i].pub;
	g->n_all = n_all;
	return QA_OK;
}

/* The reader (g or one of its other shards) whose table holds t, or NULL. */
static struct qa_gguf *owner_of(struct qa_gguf *g, const struct qa_gguf_tensor *t)
{
	if (find_own(g, t->name, t->name_len) == t)
		return g;
	for (size_t j = 0; j < g->n_parts; j++)
		if (find_own(g->parts[j], t->name, t->name_len) == t)
			return g->parts[j];
	return NULL;
}

enum qa_err qa_gguf_open(struct qa_gguf **out, struct qa_source *src,
                         struct qa_diag *d)
{
	if (!out || !src)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "qa_gguf_open needs a source and an output");
	struct qa_gguf *g = calloc(1, sizeof *g);
	if (!g)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	g->src = src;
	uint64_t size = qa_source_size(src);
	uint64_t want = size < QA_GGUF_INITIAL_HEADER_BYTES ? size : QA_GGUF_INITIAL_HEADER_BYTES;
	enum qa_err e;
	for (;;) {
		if (want > SIZE_MAX - 1) {
			e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET,
			                "gguf header too large for this machine");
			break;
		}
		uint8_t *buf = malloc((size_t)want + 1);
		if (!buf) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			break;
		}
		e = qa_source_read(src, 0, (size_t)want, buf, "gguf header", d);
		if (e) {
			free(buf);
			break;
		}
		struct parser p;
		memset(&p, 0, sizeof p);
		p.g = g;
		p.file_size = size;
		p.partial = want < size;
		p.d = d;
		qa_cursor_init(&p.c, buf, (size_t)want, 0);
		e = parse(&p);
		free(buf); /* everything kept was copied into the arena */
		if (e && p.need_more) {
			reader_reset(g);
			if (want >= QA_GGUF_MAX_HEADER_BYTES) {
				e = qa_diag_set(d, QA_ERR_FORMAT, want,
				                "gguf header larger than the %llu-byte limit",
				                (unsigned long long)QA_GGUF_MAX_HEADER_BYTES);
				break;
			}
			uint64_t step = want < HEADER_STEP_UNTIL ? HEADER_STEP : want / 16;
			uint64_t next = want + step;
			if (p.need_end > next)
				next = p.need_end;
			want = next > size || next < want ? size : next;
			if (want > QA_GGUF_MAX_HEADER_BYTES)
				want = QA_GGUF_MAX_HEADER_BYTES;
			continue;
		}
		break;
	}
	if (!e)
		e = open_split(g, d);
	if (e) {
		qa_gguf_close(g);
		return e;
	}
	qa_diag_clear(d);
	*out = g;
	return QA_OK;
}

void qa_gguf_close(struct qa_gguf *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n_parts; i++) {
		struct qa_source *src = g->parts[i]->src;
		qa_gguf_close(g->parts[i]);
		qa_source_close(src);
	}
	free(g->parts);
	free(g->all);
	reader_reset(g);
	free(g);
}

uint32_t qa_gguf_version(const struct qa_gguf *g) { return g->version; }
uint32_t qa_gguf_alignment(const struct qa_gguf *g) { return g->alignment; }
uint64_t qa_gguf_data_offset(const struct qa_gguf *g) { return g->data_offset; }
size_t qa_gguf_n_kv(const struct qa_gguf *g) { return g->n_kv; }
size_t qa_gguf_n_tensors(const struct qa_gguf *g) { return g->all ? g->n_all : g->n_tensors; }
struct qa_source *qa_gguf_source(const struct qa_gguf *g) { return g->src; }

const struct qa_gguf_kv *qa_gguf_kv_at(const struct qa_gguf *g, size_t i)
{
	return i < g->n_kv ? &g->kvs[i].pub : NULL;
}

const struct qa_gguf_kv *qa_gguf_kv_find(const struct qa_gguf *g, const char *key)
{
	if (!key)
		return NULL;
	size_t i = qa_htab_find(&g->kv_index, kv_key, g, key, strlen(key));
	return i == SIZE_MAX ? NULL : &g->kvs[i].pub;
}

const struct qa_gguf_tensor *qa_gguf_tensor_at(const struct qa_gguf *g, size_t i)
{
	if (g->all)
		return i < g->n_all ? g->all[i] : NULL;
	return i < g->n_tensors ? &g->tensors[i].pub : NULL;
}

const struct qa_gguf_tensor *qa_gguf_tensor_find(const struct qa_gguf *g,
                                                 const char *name)
{
	if (!name)
		return NULL;
	uint64_t len = strlen(name);
	const struct qa_gguf_tensor *t = find_own(g, name, len);
	for (size_t j = 0; !t && j < g->n_parts; j++)
		t = find_own(g->parts[j], name, len);
	return t;
}

enum qa_err qa_gguf_tensor_view(struct qa_gguf *g, const struct qa_gguf_tensor *t,
                                const void **out, struct qa_diag *d)
{
	if (!g || !t || !out)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "qa_gguf_tensor_view needs a reader, a tensor and an output");
	if (!(g = owner_of(g, t)))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "tensor is not from this reader");
	if (t->nbytes > SIZE_MAX)
		return qa_diag_set(d, QA_ERR_UNSUPPORTED, g->data_offset + t->offset,
		                   "tensor larger than the address space");
	return qa_source_view(g->src, g->data_offset + t->offset, (size_t)t->nbytes,
	                      out, "tensor data", d);
}

enum qa_err qa_gguf_tensor_read(struct qa_gguf *g, const struct qa_gguf_tensor *t,
                                uint64_t off, size_t len, void *buf,
                                struct qa_diag *d)
{
	uint64_t end;
	if (!g || !t || (!buf && len))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "qa_gguf_tensor_read needs a reader, a tensor and a buffer");
	if (!qa_add_u64(off, len, &end) || end > t->nbytes)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "read of %zu bytes at %llu is outside tensor \"%s\" (%llu bytes)",
		                   len, (unsigned long long)off, t->name,
		                   (unsigned long long)t->nbytes);
	if (!(g = owner_of(g, t)))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "tensor is not from this reader");
	return qa_source_read(g->src, g->data_offset + t->offset + off, len, buf,
	                      "tensor data", d);
}

bool qa_gguf_get_u64(const struct qa_gguf *g, const char *key, uint64_t *out)
{
	const struct qa_gguf_kv *kv = qa_gguf_kv_find(g, key);
	if (!kv)
		return false;
	switch (kv->value.type) {
	case QA_GGUF_U8: case QA_GGUF_U16: case QA_GGUF_U32: case QA_GGUF_U64:
		*out = kv->value.v.u;
		return true;
	case QA_GGUF_I8: case QA_GGUF_I16: case QA_GGUF_I32: case QA_GGUF_I64:
		if (kv->value.v.i < 0)
			return false;
		*out = (uint64_t)kv->value.v.i;
		return true;
	}
	return false;
}

const char *qa_gguf_get_str(const struct qa_gguf *g, const char *key)
{
	const struct qa_gguf_kv *kv = qa_gguf_kv_find(g, key);
	if (!kv || kv->value.type != QA_GGUF_STRING)
		return NULL;
	return kv->value.v.str.ptr;
}

bool qa_gguf_array_get(const struct qa_gguf_value *arr, uint64_t i, struct qa_gguf_value *out)
{
	if (!arr || arr->type != QA_GGUF_ARRAY || i >= arr->v.arr.count)
		return false;
	if (arr->v.arr.items) {
		*out = arr->v.arr.items[i];
		return true;
	}
	if (!arr->v.arr.raw)
		return false;
	uint32_t et = arr->v.arr.elem_type;
	size_t size = (size_t)vtype_min_size(et);
	const uint8_t *b = (const uint8_t *)arr->v.arr.raw + (size_t)i * size;
	uint64_t x = 0;
	for (size_t k = size; k-- > 0;)
		x = (x << 8) | b[k]; /* little-endian */
	memset(out, 0, sizeof *out);
	out->type = et;
	switch (et) {
	case QA_GGUF_U8: case QA_GGUF_U16: case QA_GGUF_U32: case QA_GGUF_U64: out->v.u = x; break;
	case QA_GGUF_I8: out->v.i = (int8_t)x; break;
	case QA_GGUF_I16: out->v.i = (int16_t)x; break;
	case QA_GGUF_I32: out->v.i = (int32_t)x; break;
	case QA_GGUF_I64: out->v.i = (int64_t)x; break;
	case QA_GGUF_BOOL: out->v.b = x != 0; break;
	case QA_GGUF_F32: {
		uint32_t u = (uint32_t)x;
		float f;
		memcpy(&f, &u, sizeof f);
		out->v.f = (double)f;
		break;
	}
	case QA_GGUF_F64: memcpy(&out->v.f, &x, sizeof out->v.f); break;
	default: return false;
	}
	return true;
}
