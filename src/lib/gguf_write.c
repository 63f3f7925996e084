/*
 * gguf_write.c - the streaming GGUF v3 writer (see gguf.h).
 *
 * Metadata and tensor declarations are deep-copied into the writer's arena;
 * the header is written when data begins, with each tensor's offset the
 * running sum of the padded sizes of those before it, and tensor bytes are
 * streamed through stdio into a temporary file (tmpfile.h) that commit
 * syncs and renames into place.
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
#include "gguf_int.h"
#include "htab.h"
#include "tmpfile.h"
#include "types.h"
#include "util.h"

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
	struct qa_arena arena;
	struct wkv *kvs;
	size_t n_kv, cap_kv;
	struct wtensor *ts;
	size_t n_t, cap_t;
	struct qa_htab t_index;
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
		for (uint64_t i = 0; !e && i < v->v.arr.count; i++) {
			struct qa_gguf_value item;
			if (!qa_gguf_array_get(v, i, &item))
				return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "array value without items");
			e = w_value(w, &item, d);
		}
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
	if (w && w->state == W_DECLARE && qa_is_pow2(alignment)) {
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
		dst->v.str.ptr = qa_arena_strdup(&w->arena, v->v.str.ptr ? v->v.str.ptr : "",
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
	dst->v.arr.raw = NULL;
	if (count == 0)
		return QA_OK;
	if (!v->v.arr.items && !v->v.arr.raw)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "array value without items");
	size_t bytes;
	if (count > SIZE_MAX || !qa_mul_size((size_t)count, sizeof *dst->v.arr.items, &bytes))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "array value too long");
	struct qa_gguf_value *items = qa_arena_alloc(&w->arena, bytes);
	if (!items)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	dst->v.arr.items = items;
	for (uint64_t i = 0; i < count; i++) {
		struct qa_gguf_value item;
		if (!qa_gguf_array_get(v, i, &item))
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "array value without items");
		if (item.type != et)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "array item %llu has type %s, the array holds %s",
			                   (unsigned long long)i, qa_gguf_vtype_name(item.type),
			                   qa_gguf_vtype_name(et));
		enum qa_err e = copy_value(w, &items[i], &item, depth + 1, d);
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
		if (v->type != QA_GGUF_U32 || !qa_is_pow2(v->v.u) || v->v.u > UINT32_MAX)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "general.alignment must be a nonzero power-of-two u32");
	}
	struct wkv kv;
	enum qa_err e = copy_value(w, &kv.value, v, 0, d);
	if (e)
		return e;
	kv.key = qa_arena_strdup(&w->arena, key, klen);
	kv.key_len = klen;
	if (!kv.key || !qa_array_grow((void **)&w->kvs, &w->cap_kv, w->n_kv + 1, sizeof *w->kvs))
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
	if (nlen >= QA_GGUF_MAX_TENSOR_NAME)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "tensor name \"%.40s...\" is %zu bytes, ggml allows at most %u",
		                   name, nlen, QA_GGUF_MAX_TENSOR_NAME - 1);
	if (qa_htab_find(&w->t_index, wt_key, w, name, nlen) != SIZE_MAX)
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
	t.name = qa_arena_strdup(&w->arena, name, nlen);
	t.name_len = nlen;
	t.type = type;
	t.n_dims = n_dims;
	if (!t.name || !qa_array_grow((void **)&w->ts, &w->cap_t, w->n_t + 1, sizeof *w->ts))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	w->ts[w->n_t] = t;
	if (!qa_htab_insert(&w->t_index, wt_key, w, w->n_t))
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
	qa_htab_free(&w->t_index);
	qa_arena_free(&w->arena);
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
