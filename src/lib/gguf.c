/*
 * gguf.c - the GGUF v2/v3 header reader and the streaming GGUF v3 writer.
 *
 * Reader: the header prefix of the source is copied into an owned buffer
 * (1 MiB to start, doubled while a parse runs off the end of a buffer that
 * is shorter than the file) and parsed through a struct qa_cursor.  Checks
 * that bound counts and lengths use the size of the file, never of the
 * buffer, so the verdict on a file does not depend on how much of it was
 * buffered.  Strings and values are copied into an arena owned by the
 * reader, and the buffer is dropped once parsing succeeds.  Keys and tensor
 * names are indexed in open-addressing hash tables, which also catch
 * duplicates while parsing.
 *
 * Writer: metadata and tensor declarations are deep-copied into the
 * writer's arena; the header is written when data begins, with each tensor's
 * offset the running sum of the padded sizes of those before it, and tensor
 * bytes are streamed through stdio into a temporary file (tmpfile.h) that
 * commit syncs and renames into place.
 */
#define _POSIX_C_SOURCE 200809L
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cursor.h"
#include "tmpfile.h"
#include "types.h"

#define GGUF_HEADER_FIXED 24u   /* magic, version, tensor count, kv count */
#define MIN_TENSOR_INFO 32u     /* empty name, one dimension */
#define MIN_KV 13u              /* empty key, type, one-byte value */
/* First header buffer; overridable at build time only to test the growth path. */
#ifndef QA_GGUF_INITIAL_HEADER_BYTES
#define QA_GGUF_INITIAL_HEADER_BYTES ((uint64_t)1 << 20)
#endif
#define MAX_TENSOR_NAME 64u     /* ggml's GGML_MAX_NAME, names are shorter */

/* ------------------------------------------------------------------ */
/* Arena: bump allocation, everything freed at once                    */
/* ------------------------------------------------------------------ */

struct arena_chunk {
	struct arena_chunk *next;
	size_t cap;
	size_t used;
};

struct arena {
	struct arena_chunk *head;
};

#define ARENA_ALIGN 16u
#define ARENA_HDR ((sizeof(struct arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))
#define ARENA_CHUNK (64u * 1024u)

static void *arena_alloc(struct arena *a, size_t n)
{
	size_t need;
	if (!qa_add_size(n, ARENA_ALIGN - 1, &need))
		return NULL;
	need &= ~(size_t)(ARENA_ALIGN - 1);
	if (need == 0)
		need = ARENA_ALIGN;
	struct arena_chunk *c = a->head;
	if (!c || c->cap - c->used < need) {
		size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
		size_t total;
		if (!qa_add_size(cap, ARENA_HDR, &total))
			return NULL;
		c = malloc(total);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		/* A big one-off block goes behind the head so that the head's
		 * free space stays usable. */
		if (a->head && cap > ARENA_CHUNK) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	void *p = (char *)c + ARENA_HDR + c->used;
	c->used += need;
	return p;
}

static void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->head = NULL;
}

/* Copy n bytes into the arena with a terminating NUL. */
static char *arena_strdup(struct arena *a, const void *s, size_t n)
{
	size_t sz;
	if (!qa_add_size(n, 1, &sz))
		return NULL;
	char *p = arena_alloc(a, sz);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ------------------------------------------------------------------ */
/* Hash index over (bytes, length) keys                                */
/* ------------------------------------------------------------------ */

/* Returns the key of record idx. */
typedef void (*key_fn)(const void *ctx, size_t idx, const char **key, uint64_t *len);

struct htab {
	size_t *slot; /* record index + 1, or 0 when empty */
	size_t cap;   /* power of two, or 0 */
	size_t n;
};

static uint64_t hash_bytes(const char *s, uint64_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (uint64_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static size_t htab_find(const struct htab *h, key_fn get, const void *ctx,
                        const char *key, uint64_t len)
{
	if (!h->cap)
		return SIZE_MAX;
	size_t mask = h->cap - 1;
	size_t i = (size_t)hash_bytes(key, len) & mask;
	while (h->slot[i]) {
		const char *k;
		uint64_t kl;
		get(ctx, h->slot[i] - 1, &k, &kl);
		if (kl == len && memcmp(k, key, (size_t)len) == 0)
			return h->slot[i] - 1;
		i = (i + 1) & mask;
	}
	return SIZE_MAX;
}

static void htab_put(size_t *slot, size_t cap, key_fn get, const void *ctx, size_t idx)
{
	const char *k;
	uint64_t kl;
	get(ctx, idx, &k, &kl);
	size_t mask = cap - 1;
	size_t i = (size_t)hash_bytes(k, kl) & mask;
	while (slot[i])
		i = (i + 1) & mask;
	slot[i] = idx + 1;
}

/* Insert record idx (whose key is not yet present); false when out of memory. */
static bool htab_insert(struct htab *h, key_fn get, const void *ctx, size_t idx)
{
	if ((h->n + 1) * 2 > h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		if (cap < h->cap)
			return false;
		size_t *slot = calloc(cap, sizeof *slot);
		if (!slot)
			return false;
		for (size_t i = 0; i < h->cap; i++)
			if (h->slot[i])
				htab_put(slot, cap, get, ctx, h->slot[i] - 1);
		free(h->slot);
		h->slot = slot;
		h->cap = cap;
	}
	htab_put(h->slot, h->cap, get, ctx, idx);
	h->n++;
	return true;
}

static void htab_free(struct htab *h)
{
	free(h->slot);
	h->slot = NULL;
	h->cap = h->n = 0;
}

/* Grow a malloc'd array of elem-sized records so that it holds want; false on overflow or NOMEM. */
static bool grow_array(void **arr, size_t *cap, size_t want, size_t elem)
{
	if (want <= *cap)
		return true;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < want) {
		if (ncap > SIZE_MAX / 2)
			return false;
		ncap *= 2;
	}
	size_t bytes;
	if (!qa_mul_size(ncap, elem, &bytes))
		return false;
	void *p = realloc(*arr, bytes);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

/* ------------------------------------------------------------------ */
/* Shared helpers                                                      */
/* ------------------------------------------------------------------ */

static const char *vtype_name(uint32_t t)
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

static bool is_pow2(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* A printable excerpt of a file string for messages. */
static const char *printable(char *buf, size_t cap, const char *s, uint64_t len)
{
	size_t n = 0;
	for (uint64_t i = 0; i < len && n + 4 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		buf[n++] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
	}
	if ((uint64_t)n < len && n + 3 < cap) {
		buf[n++] = '.';
		buf[n++] = '.';
		buf[n++] = '.';
	}
	buf[n] = '\0';
	return buf;
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
	struct htab kv_index;
	struct htab tensor_index;
	struct arena arena;
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
	htab_free(&g->kv_index);
	htab_free(&g->tensor_index);
	arena_free(&g->arena);
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
	char *s = arena_strdup(&p->g->arena, bytes, (size_t)n);
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
			                   (unsigned long long)count, vtype_name(et),
			                   (unsigned long long)p_file_left(p));
		/* Buffer the whole minimum extent before allocating items, so that
		 * allocations follow bytes actually read. */
		if (p_short(p, count * min))
			return QA_ERR_FORMAT;
		v->v.arr.elem_type = et;
		v->v.arr.count = count;
		v->v.arr.items = NULL;
		if (count == 0)
			return QA_OK;
		size_t bytes;
		if (!qa_mul_size((size_t)count, sizeof *v->v.arr.items, &bytes))
			return p_nomem(p);
		struct qa_gguf_value *items = arena_alloc(&p->g->arena, bytes);
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
		printable(nb, sizeof nb, r.pub.key, r.key_len);
		if (htab_find(&g->kv_index, kv_key, g, r.pub.key, r.key_len) != SIZE_MAX)
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
				                   vtype_name(t));
			if (!is_pow2(r.pub.value.v.u))
				return qa_diag_set(p->d, QA_ERR_FORMAT, value_at,
				                   "general.alignment %llu is not a nonzero power of two",
				                   (unsigned long long)r.pub.value.v.u);
			g->alignment = (uint32_t)r.pub.value.v.u;
		}
		if (!grow_array((void **)&g->kvs, &g->cap_kv, g->n_kv + 1, sizeof *g->kvs))
			return p_nomem(p);
		g->kvs[g->n_kv] = r;
		if (!htab_insert(&g->kv_index, kv_key, g, g->n_kv))
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
		printable(nb, sizeof nb, t->name, r.name_len);
		if (htab_find(&g->tensor_index, tensor_key, g, t->name, r.name_len) != SIZE_MAX)
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
		if (!grow_array((void **)&g->tensors, &g->cap_tensors, g->n_tensors + 1,
		                sizeof *g->tensors))
			return p_nomem(p);
		g->tensors[g->n_tensors] = r;
		if (!htab_insert(&g->tensor_index, tensor_key, g, g->n_tensors))
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
			                   printable(nb, sizeof nb, r->pub.name, r->name_len),
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
			                   printable(nb, sizeof nb, rl->pub.name, rl->name_len),
			                   printable(nb2, sizeof nb2, re->pub.name, re->name_len));
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
			want = want > size / 2 ? size : want * 2;
			continue;
		}
		break;
	}
	if (e) {
		reader_reset(g);
		free(g);
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
	reader_reset(g);
	free(g);
}

uint32_t qa_gguf_version(const struct qa_gguf *g) { return g->version; }
uint32_t qa_gguf_alignment(const struct qa_gguf *g) { return g->alignment; }
uint64_t qa_gguf_data_offset(const struct qa_gguf *g) { return g->data_offset; }
size_t qa_gguf_n_kv(const struct qa_gguf *g) { return g->n_kv; }
size_t qa_gguf_n_tensors(const struct qa_gguf *g) { return g->n_tensors; }
struct qa_source *qa_gguf_source(const struct qa_gguf *g) { return g->src; }

const struct qa_gguf_kv *qa_gguf_kv_at(const struct qa_gguf *g, size_t i)
{
	return i < g->n_kv ? &g->kvs[i].pub : NULL;
}

const struct qa_gguf_kv *qa_gguf_kv_find(const struct qa_gguf *g, const char *key)
{
	if (!key)
		return NULL;
	size_t i = htab_find(&g->kv_index, kv_key, g, key, strlen(key));
	return i == SIZE_MAX ? NULL : &g->kvs[i].pub;
}

const struct qa_gguf_tensor *qa_gguf_tensor_at(const struct qa_gguf *g, size_t i)
{
	return i < g->n_tensors ? &g->tensors[i].pub : NULL;
}

const struct qa_gguf_tensor *qa_gguf_tensor_find(const struct qa_gguf *g,
                                                 const char *name)
{
	if (!name)
		return NULL;
	size_t i = htab_find(&g->tensor_index, tensor_key, g, name, strlen(name));
	return i == SIZE_MAX ? NULL : &g->tensors[i].pub;
}

enum qa_err qa_gguf_tensor_view(struct qa_gguf *g, const struct qa_gguf_tensor *t,
                                const void **out, struct qa_diag *d)
{
	if (!g || !t || !out)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "qa_gguf_tensor_view needs a reader, a tensor and an output");
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

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

enum writer_state { W_DECLARE, W_DATA, W_COMMITTED, W_FAILED };

struct wkv {
	const char *key;
	size_t key_len;
	struct qa_gguf_value value;
};

struct wtensor {
	const char *name;
	uint64_t name_len;
	uint32_t type, n_dims;
	uint64_t ne[4];
	uint64_t nbytes, offset;
};

struct qa_gguf_writer {
	struct qa_tmpfile out; /* pending until commit; its fd belongs to f */
	FILE *f;               /* NULL for a writer that only feeds its tap */
	bool has_file;
	qa_gguf_tap_fn tap;    /* sees every byte written, in order; may be NULL */
	void *tap_ctx;
	uint64_t pos;          /* bytes written so far */
	bool align_pinned;     /* general.alignment does not change the padding */
	uint64_t *kv_off;      /* absolute offset of each kv, set by begin_data */
	uint64_t *ti_off;      /* absolute offset of each tensor info */
	uint64_t infos_end, data_off;
	enum writer_state state;
	struct arena arena;
	struct wkv *kvs;
	size_t n_kv, cap_kv;
	struct wtensor *ts;
	size_t n_t, cap_t;
	struct htab t_index;
	uint32_t alignment;
	size_t cur;         /* tensor receiving bytes */
	uint64_t cur_done;  /* bytes it has received */
};

static void wt_key(const void *ctx, size_t idx, const char **k, uint64_t *n)
{
	const struct qa_gguf_writer *w = ctx;
	*k = w->ts[idx].name;
	*n = w->ts[idx].name_len;
}

static enum qa_err w_usage_state(struct qa_gguf_writer *w, const char *what,
                                 struct qa_diag *d)
{
	if (w && w->state == W_FAILED)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "%s: the writer failed earlier", what);
	return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "%s: called out of order", what);
}

static enum qa_err w_io(struct qa_gguf_writer *w, const char *what, int err,
                        struct qa_diag *d)
{
	w->state = W_FAILED;
	return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "%s %s: %s", what,
	                   w->has_file ? w->out.tmp_path : "(stream)",
	                   qa_strerror(err ? err : EIO));
}

static enum qa_err w_put(struct qa_gguf_writer *w, const void *buf, size_t n,
                         struct qa_diag *d)
{
	if (n == 0)
		return QA_OK;
	if (w->f && fwrite(buf, 1, n, w->f) != n)
		return w_io(w, "cannot write", errno, d);
	if (w->tap) {
		enum qa_err e = w->tap(w->tap_ctx, w->pos, buf, n, d);
		if (e) {
			w->state = W_FAILED;
			return e;
		}
	}
	w->pos += n;
	return QA_OK;
}

static enum qa_err w_u32(struct qa_gguf_writer *w, uint32_t v, struct qa_diag *d)
{
	uint8_t b[4];
	qa_store_le32(b, v);
	return w_put(w, b, 4, d);
}

static enum qa_err w_u64(struct qa_gguf_writer *w, uint64_t v, struct qa_diag *d)
{
	uint8_t b[8];
	qa_store_le64(b, v);
	return w_put(w, b, 8, d);
}

static enum qa_err w_zeros(struct qa_gguf_writer *w, uint64_t n, struct qa_diag *d)
{
	static const uint8_t zero[256];
	enum qa_err e = QA_OK;
	while (n && !e) {
		size_t k = n < sizeof zero ? (size_t)n : sizeof zero;
		e = w_put(w, zero, k, d);
		n -= k;
	}
	return e;
}

static enum qa_err w_string(struct qa_gguf_writer *w, const char *s, uint64_t n,
                            struct qa_diag *d)
{
	enum qa_err e = w_u64(w, n, d);
	return e ? e : w_put(w, s, (size_t)n, d);
}

static enum qa_err w_value(struct qa_gguf_writer *w, const struct qa_gguf_value *v,
                           struct qa_diag *d)
{
	uint8_t b[8];
	switch (v->type) {
	case QA_GGUF_U8: b[0] = (uint8_t)v->v.u; return w_put(w, b, 1, d);
	case QA_GGUF_I8: b[0] = (uint8_t)v->v.i; return w_put(w, b, 1, d);
	case QA_GGUF_BOOL: b[0] = v->v.b ? 1 : 0; return w_put(w, b, 1, d);
	case QA_GGUF_U16: qa_store_le16(b, (uint16_t)v->v.u); return w_put(w, b, 2, d);
	case QA_GGUF_I16: qa_store_le16(b, (uint16_t)v->v.i); return w_put(w, b, 2, d);
	case QA_GGUF_U32: return w_u32(w, (uint32_t)v->v.u, d);
	case QA_GGUF_I32: return w_u32(w, (uint32_t)v->v.i, d);
	case QA_GGUF_F32: qa_store_lef32(b, (float)v->v.f); return w_put(w, b, 4, d);
	case QA_GGUF_U64: return w_u64(w, v->v.u, d);
	case QA_GGUF_I64: return w_u64(w, (uint64_t)v->v.i, d);
	case QA_GGUF_F64: {
		uint64_t u;
		memcpy(&u, &v->v.f, sizeof u);
		return w_u64(w, u, d);
	}
	case QA_GGUF_STRING: return w_string(w, v->v.str.ptr, v->v.str.len, d);
	case QA_GGUF_ARRAY: {
		enum qa_err e = w_u32(w, v->v.arr.elem_type, d);
		if (!e)
			e = w_u64(w, v->v.arr.count, d);
		for (uint64_t i = 0; !e && i < v->v.arr.count; i++)
			e = w_value(w, &v->v.arr.items[i], d);
		return e;
	}
	}
	return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "unknown value type %u", v->type);
}

enum qa_err qa_gguf_writer_open(struct qa_gguf_writer **out, const char *dest_path,
                                struct qa_diag *d)
{
	if (!out || !dest_path || !*dest_path)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "qa_gguf_writer_open needs a destination path");
	return qa_gguf_writer_open_tap(out, dest_path, NULL, NULL, d);
}

enum qa_err qa_gguf_writer_open_tap(struct qa_gguf_writer **out, const char *dest_path,
                                    qa_gguf_tap_fn tap, void *tap_ctx, struct qa_diag *d)
{
	if (!out || (dest_path && !*dest_path) || (!dest_path && !tap))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "a gguf writer needs a destination path or a tap");
	struct qa_gguf_writer *w = calloc(1, sizeof *w);
	if (!w)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	w->alignment = QA_GGUF_DEFAULT_ALIGNMENT;
	w->out.fd = -1;
	w->tap = tap;
	w->tap_ctx = tap_ctx;
	if (!dest_path) {
		*out = w;
		return QA_OK;
	}
	enum qa_err e = qa_tmpfile_open(&w->out, dest_path, d);
	if (e) {
		qa_gguf_writer_free(w);
		return e;
	}
	w->has_file = true;
	w->f = fdopen(w->out.fd, "wb");
	if (!w->f) {
		int err = errno;
		qa_gguf_writer_free(w);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open %s: %s",
		                   dest_path, qa_strerror(err));
	}
	w->out.fd = -1; /* the stream owns the descriptor now */
	setvbuf(w->f, NULL, _IOFBF, 1u << 20);
	*out = w;
	return QA_OK;
}

void qa_gguf_writer_pin_alignment(struct qa_gguf_writer *w, uint32_t alignment)
{
	if (w && w->state == W_DECLARE && is_pow2(alignment)) {
		w->alignment = alignment;
		w->align_pinned = true;
	}
}

bool qa_gguf_writer_remove_kv(struct qa_gguf_writer *w, const char *key)
{
	if (!w || !key || w->state != W_DECLARE)
		return false;
	size_t klen = strlen(key);
	for (size_t i = 0; i < w->n_kv; i++)
		if (w->kvs[i].key_len == klen && memcmp(w->kvs[i].key, key, klen) == 0) {
			memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *w->kvs);
			w->n_kv--;
			return true;
		}
	return false;
}

/* Deep-copy v into dst inside the writer's arena, validating it. */
static enum qa_err copy_value(struct qa_gguf_writer *w, struct qa_gguf_value *dst,
                              const struct qa_gguf_value *v, unsigned depth,
                              struct qa_diag *d)
{
	*dst = *v;
	if (v->type > QA_GGUF_F64)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "unknown value type %u", v->type);
	if (v->type == QA_GGUF_BOOL)
		dst->v.u = 0, dst->v.b = v->v.b;
	if (v->type == QA_GGUF_STRING) {
		if (!v->v.str.ptr && v->v.str.len)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "string value without bytes");
		if (v->v.str.len >= SIZE_MAX)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "string value too long");
		dst->v.str.ptr = arena_strdup(&w->arena, v->v.str.ptr ? v->v.str.ptr : "",
		                              (size_t)v->v.str.len);
		if (!dst->v.str.ptr)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	if (v->type != QA_GGUF_ARRAY)
		return QA_OK;
	uint32_t et = v->v.arr.elem_type;
	uint64_t count = v->v.arr.count;
	if (et > QA_GGUF_F64)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "unknown array element type %u", et);
	if (et == QA_GGUF_ARRAY && depth + 1 >= QA_GGUF_MAX_ARRAY_DEPTH)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "arrays nested deeper than %d levels", QA_GGUF_MAX_ARRAY_DEPTH);
	dst->v.arr.items = NULL;
	if (count == 0)
		return QA_OK;
	if (!v->v.arr.items)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "array value without items");
	size_t bytes;
	if (count > SIZE_MAX || !qa_mul_size((size_t)count, sizeof *dst->v.arr.items, &bytes))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "array value too long");
	struct qa_gguf_value *items = arena_alloc(&w->arena, bytes);
	if (!items)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	dst->v.arr.items = items;
	for (uint64_t i = 0; i < count; i++) {
		if (v->v.arr.items[i].type != et)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "array item %llu has type %s, the array holds %s",
			                   (unsigned long long)i, vtype_name(v->v.arr.items[i].type),
			                   vtype_name(et));
		enum qa_err e = copy_value(w, &items[i], &v->v.arr.items[i], depth + 1, d);
		if (e)
			return e;
	}
	return QA_OK;
}

enum qa_err qa_gguf_writer_add_kv(struct qa_gguf_writer *w, const char *key,
                                  const struct qa_gguf_value *v, struct qa_diag *d)
{
	if (!w || w->state != W_DECLARE)
		return w_usage_state(w, "add_kv", d);
	if (!key || !v)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "add_kv needs a key and a value");
	size_t klen = strlen(key);
	for (size_t i = 0; i < w->n_kv; i++)
		if (w->kvs[i].key_len == klen && memcmp(w->kvs[i].key, key, klen) == 0)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "duplicate metadata key \"%s\"", key);
	if (strcmp(key, "general.alignment") == 0) {
		if (v->type != QA_GGUF_U32 || !is_pow2(v->v.u) || v->v.u > UINT32_MAX)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "general.alignment must be a nonzero power-of-two u32");
	}
	struct wkv kv;
	enum qa_err e = copy_value(w, &kv.value, v, 0, d);
	if (e)
		return e;
	kv.key = arena_strdup(&w->arena, key, klen);
	kv.key_len = klen;
	if (!kv.key || !grow_array((void **)&w->kvs, &w->cap_kv, w->n_kv + 1, sizeof *w->kvs))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	w->kvs[w->n_kv++] = kv;
	if (strcmp(key, "general.alignment") == 0 && !w->align_pinned)
		w->alignment = (uint32_t)v->v.u;
	return QA_OK;
}

enum qa_err qa_gguf_writer_set_u32(struct qa_gguf_writer *w, const char *key,
                                   uint32_t val, struct qa_diag *d)
{
	struct qa_gguf_value v = { .type = QA_GGUF_U32, .v.u = val };
	return qa_gguf_writer_add_kv(w, key, &v, d);
}

enum qa_err qa_gguf_writer_set_u64(struct qa_gguf_writer *w, const char *key,
                                   uint64_t val, struct qa_diag *d)
{
	struct qa_gguf_value v = { .type = QA_GGUF_U64, .v.u = val };
	return qa_gguf_writer_add_kv(w, key, &v, d);
}

enum qa_err qa_gguf_writer_set_f32(struct qa_gguf_writer *w, const char *key,
                                   float val, struct qa_diag *d)
{
	struct qa_gguf_value v = { .type = QA_GGUF_F32, .v.f = val };
	return qa_gguf_writer_add_kv(w, key, &v, d);
}

enum qa_err qa_gguf_writer_set_bool(struct qa_gguf_writer *w, const char *key,
                                    bool val, struct qa_diag *d)
{
	struct qa_gguf_value v = { .type = QA_GGUF_BOOL, .v.b = val };
	return qa_gguf_writer_add_kv(w, key, &v, d);
}

enum qa_err qa_gguf_writer_set_str(struct qa_gguf_writer *w, const char *key,
                                   const char *val, struct qa_diag *d)
{
	if (!val)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "set_str needs a string");
	struct qa_gguf_value v = { .type = QA_GGUF_STRING };
	v.v.str.ptr = val;
	v.v.str.len = strlen(val);
	return qa_gguf_writer_add_kv(w, key, &v, d);
}

enum qa_err qa_gguf_writer_add_tensor(struct qa_gguf_writer *w, const char *name,
                                      uint32_t type, uint32_t n_dims,
                                      const uint64_t ne[4], struct qa_diag *d)
{
	if (!w || w->state != W_DECLARE)
		return w_usage_state(w, "add_tensor", d);
	if (!name || !ne)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "add_tensor needs a name and a shape");
	size_t nlen = strlen(name);
	if (nlen >= MAX_TENSOR_NAME)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "tensor name \"%.40s...\" is %zu bytes, ggml allows at most %u",
		                   name, nlen, MAX_TENSOR_NAME - 1);
	if (htab_find(&w->t_index, wt_key, w, name, nlen) != SIZE_MAX)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "duplicate tensor name \"%s\"", name);
	const struct qa_type_info *ti = qa_type_get(type);
	if (!ti)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "tensor \"%s\": unknown type %u", name, type);
	if (n_dims < 1 || n_dims > 4)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "tensor \"%s\": %u dimensions, expected 1 to 4", name, n_dims);
	struct wtensor t;
	memset(&t, 0, sizeof t);
	uint64_t n = 1;
	for (unsigned j = 0; j < 4; j++) {
		t.ne[j] = j < n_dims ? ne[j] : 1;
		if (t.ne[j] == 0)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "tensor \"%s\": dimension %u is zero", name, j);
		if (!qa_mul_u64(n, t.ne[j], &n) || n > (uint64_t)INT64_MAX)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "tensor \"%s\": element count overflows int64", name);
	}
	if (t.ne[0] % ti->block_elems != 0)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "tensor \"%s\": row of %llu elements is not a multiple of the %s block size %u",
		                   name, (unsigned long long)t.ne[0], ti->name, ti->block_elems);
	if (!qa_type_nbytes(ti, n, &t.nbytes))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "tensor \"%s\": byte size overflows", name);
	t.name = arena_strdup(&w->arena, name, nlen);
	t.name_len = nlen;
	t.type = type;
	t.n_dims = n_dims;
	if (!t.name || !grow_array((void **)&w->ts, &w->cap_t, w->n_t + 1, sizeof *w->ts))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	w->ts[w->n_t] = t;
	if (!htab_insert(&w->t_index, wt_key, w, w->n_t))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	w->n_t++;
	return QA_OK;
}

static uint64_t pad_to(uint64_t x, uint64_t a)
{
	return (a - x % a) % a;
}

enum qa_err qa_gguf_writer_begin_data(struct qa_gguf_writer *w, struct qa_diag *d)
{
	if (!w || w->state != W_DECLARE)
		return w_usage_state(w, "begin_data", d);
	uint64_t off = 0;
	for (size_t i = 0; i < w->n_t; i++) {
		w->ts[i].offset = off;
		uint64_t padded;
		if (!qa_add_u64(w->ts[i].nbytes, pad_to(w->ts[i].nbytes, w->alignment), &padded) ||
		    !qa_add_u64(off, padded, &off))
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "tensor data section too large");
	}
	free(w->kv_off);
	free(w->ti_off);
	w->kv_off = calloc(w->n_kv ? w->n_kv : 1, sizeof *w->kv_off);
	w->ti_off = calloc(w->n_t ? w->n_t : 1, sizeof *w->ti_off);
	if (!w->kv_off || !w->ti_off)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	enum qa_err e = w_put(w, "GGUF", 4, d);
	if (!e)
		e = w_u32(w, 3, d);
	if (!e)
		e = w_u64(w, w->n_t, d);
	if (!e)
		e = w_u64(w, w->n_kv, d);
	for (size_t i = 0; !e && i < w->n_kv; i++) {
		w->kv_off[i] = w->pos;
		e = w_string(w, w->kvs[i].key, w->kvs[i].key_len, d);
		if (!e)
			e = w_u32(w, w->kvs[i].value.type, d);
		if (!e)
			e = w_value(w, &w->kvs[i].value, d);
	}
	for (size_t i = 0; !e && i < w->n_t; i++) {
		const struct wtensor *t = &w->ts[i];
		w->ti_off[i] = w->pos;
		e = w_string(w, t->name, t->name_len, d);
		if (!e)
			e = w_u32(w, t->n_dims, d);
		for (unsigned j = 0; !e && j < t->n_dims; j++)
			e = w_u64(w, t->ne[j], d);
		if (!e)
			e = w_u32(w, t->type, d);
		if (!e)
			e = w_u64(w, t->offset, d);
	}
	if (e) {
		w->state = W_FAILED;
		return e;
	}
	w->infos_end = w->pos;
	if ((e = w_zeros(w, pad_to(w->pos, w->alignment), d)))
		return e;
	w->data_off = w->pos;
	w->state = W_DATA;
	w->cur = 0;
	w->cur_done = 0;
	return QA_OK;
}

enum qa_err qa_gguf_writer_write(struct qa_gguf_writer *w, const void *buf,
                                 size_t len, struct qa_diag *d)
{
	if (!w || w->state != W_DATA)
		return w_usage_state(w, "write", d);
	if (!buf && len)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "write needs a buffer");
	const uint8_t *p = buf;
	while (len) {
		if (w->cur >= w->n_t)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "%zu bytes written beyond the last tensor", len);
		const struct wtensor *t = &w->ts[w->cur];
		uint64_t left = t->nbytes - w->cur_done;
		size_t k = left < len ? (size_t)left : len;
		enum qa_err e = w_put(w, p, k, d);
		if (e)
			return e;
		p += k;
		len -= k;
		w->cur_done += k;
		if (w->cur_done == t->nbytes) {
			if ((e = w_zeros(w, pad_to(t->nbytes, w->alignment), d)))
				return e;
			w->cur++;
			w->cur_done = 0;
		}
	}
	return QA_OK;
}

enum qa_err qa_gguf_writer_commit(struct qa_gguf_writer *w, struct qa_diag *d)
{
	enum qa_err e;
	if (w && w->state == W_DECLARE && w->n_t == 0 && (e = qa_gguf_writer_begin_data(w, d)))
		return e;
	if (!w || w->state != W_DATA)
		return w_usage_state(w, "commit", d);
	if (w->cur < w->n_t)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "tensor \"%s\" got %llu of its %llu bytes",
		                   w->ts[w->cur].name, (unsigned long long)w->cur_done,
		                   (unsigned long long)w->ts[w->cur].nbytes);
	if (!w->has_file) {
		w->state = W_COMMITTED;
		return QA_OK;
	}
	if (fflush(w->f) != 0)
		return w_io(w, "cannot write", errno, d);
	if (fsync(fileno(w->f)) != 0)
		return w_io(w, "cannot sync", errno, d);
	FILE *f = w->f;
	w->f = NULL;
	if (fclose(f) != 0)
		return w_io(w, "cannot close", errno, d);
	/* The file is synced and closed; the rename and the directory sync
	 * (which makes the rename durable) are the tmpfile's. */
	if ((e = qa_tmpfile_commit(&w->out, true, d))) {
		w->state = W_FAILED;
		return e;
	}
	w->state = W_COMMITTED;
	return QA_OK;
}

void qa_gguf_writer_free(struct qa_gguf_writer *w)
{
	if (!w)
		return;
	if (w->f) {
		fclose(w->f);
		w->out.fd = -1;
	}
	if (w->has_file)
		qa_tmpfile_abort(&w->out);
	free(w->kv_off);
	free(w->ti_off);
	free(w->kvs);
	free(w->ts);
	htab_free(&w->t_index);
	arena_free(&w->arena);
	free(w);
}

uint64_t qa_gguf_writer_size(const struct qa_gguf_writer *w)
{
	return w ? w->pos : 0;
}

bool qa_gguf_writer_locate(const struct qa_gguf_writer *w, uint64_t off,
                           struct qa_gguf_region *out)
{
	if (!w || !out || !w->kv_off || (w->state != W_DATA && w->state != W_COMMITTED))
		return false;
	memset(out, 0, sizeof *out);
	out->index = SIZE_MAX;
	if (off < 24) {
		out->kind = QA_GGUF_REGION_HEADER;
		out->start = 0;
		out->end = 24;
		out->name = off < 4 ? "magic" : off < 8 ? "version" : off < 16 ? "tensor count" : "kv count";
		return true;
	}
	if (off < w->infos_end) {
		for (size_t i = w->n_t; i-- > 0;)
			if (off >= w->ti_off[i]) {
				out->kind = QA_GGUF_REGION_TENSOR_INFO;
				out->index = i;
				out->name = w->ts[i].name;
				out->start = w->ti_off[i];
				out->end = i + 1 < w->n_t ? w->ti_off[i + 1] : w->infos_end;
				return true;
			}
		for (size_t i = w->n_kv; i-- > 0;)
			if (off >= w->kv_off[i]) {
				out->kind = QA_GGUF_REGION_KV;
				out->index = i;
				out->name = w->kvs[i].key;
				out->start = w->kv_off[i];
				out->end = i + 1 < w->n_kv ? w->kv_off[i + 1]
				           : w->n_t ? w->ti_off[0] : w->infos_end;
				return true;
			}
	}
	if (off < w->data_off) {
		out->kind = QA_GGUF_REGION_PADDING;
		out->start = w->infos_end;
		out->end = w->data_off;
		out->name = "header padding";
		return true;
	}
	for (size_t i = w->n_t; i-- > 0;) {
		uint64_t start = w->data_off + w->ts[i].offset;
		if (off >= start) {
			uint64_t end = start + w->ts[i].nbytes;
			out->index = i;
			out->name = w->ts[i].name;
			if (off < end) {
				out->kind = QA_GGUF_REGION_TENSOR_DATA;
				out->start = start;
				out->end = end;
			} else {
				out->kind = QA_GGUF_REGION_PADDING;
				out->start = end;
				out->end = end + pad_to(w->ts[i].nbytes, w->alignment);
			}
			if (off >= out->end && i + 1 == w->n_t) {
				out->kind = QA_GGUF_REGION_BEYOND;
				out->index = SIZE_MAX;
				out->name = "past the end";
				out->start = w->pos;
				out->end = UINT64_MAX;
			}
			return true;
		}
	}
	out->kind = QA_GGUF_REGION_BEYOND;
	out->name = "past the end";
	out->start = w->pos;
	out->end = UINT64_MAX;
	return true;
}

const char *qa_gguf_region_kind_name(enum qa_gguf_region_kind k)
{
	switch (k) {
	case QA_GGUF_REGION_HEADER: return "header";
	case QA_GGUF_REGION_KV: return "kv";
	case QA_GGUF_REGION_TENSOR_INFO: return "tensor-info";
	case QA_GGUF_REGION_PADDING: return "padding";
	case QA_GGUF_REGION_TENSOR_DATA: return "tensor-data";
	case QA_GGUF_REGION_BEYOND: return "beyond-end";
	}
	return "unknown";
}
