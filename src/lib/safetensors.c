/*
 * safetensors.c - safetensors header parsing and tensor data access (the
 * opening of files, directories and sharded checkpoints is in st_index.c).
 *
 * A header is read through the shard's qa_source, parsed by jansson with
 * duplicate keys rejected, and then every entry is checked: dtype, shape,
 * offsets, size agreement and overlap.  Because jansson keeps object keys in
 * document order, a small scanner over the raw header finds the byte
 * position of each top-level key (json_scan.h), so entry errors can name
 * the exact offset of the offending tensor's key.
 */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cursor.h"
#include "fp16.h"
#include "json_scan.h"
#include "quant.h"
#include "st_int.h"
#include "util.h"


struct dtype_info {
	const char *name;
	int size;
};

static const struct dtype_info dtypes[] = {
	{ "F64", 8 },     { "F32", 4 },     { "F16", 2 },     { "BF16", 2 },
	{ "I64", 8 },     { "I32", 4 },     { "I16", 2 },     { "I8", 1 },
	{ "U64", 8 },     { "U32", 4 },     { "U16", 2 },     { "U8", 1 },
	{ "BOOL", 1 },    { "F8_E4M3", 1 }, { "F8_E5M2", 1 }, { "F8_E8M0", 1 },
	{ "C64", 8 },
};

/* ---------------------------------------------------------------- helpers */

static const struct dtype_info *dtype_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (strcmp(dtypes[i].name, name) == 0)
			return &dtypes[i];
	return NULL;
}

int qa_st_dtype_size(const char *dtype)
{
	const struct dtype_info *di = dtype ? dtype_lookup(dtype) : NULL;
	return di ? di->size : 0;
}

uint32_t qa_st_dtype_type(const char *dtype)
{
	if (!dtype)
		return QA_TYPE_COUNT;
	if (strcmp(dtype, "F32") == 0)
		return QA_TYPE_F32;
	if (strcmp(dtype, "F16") == 0)
		return QA_TYPE_F16;
	if (strcmp(dtype, "BF16") == 0)
		return QA_TYPE_BF16;
	return QA_TYPE_COUNT;
}

bool qa_st_dtype_is_float(const char *dtype)
{
	return qa_st_dtype_type(dtype) != QA_TYPE_COUNT;
}



enum qa_err qa_st_nomem(struct qa_diag *d)
{
	return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
}

/* ------------------------------------------------------------- the model */

void qa_st_free(struct qa_st *st)
{
	if (!st)
		return;
	for (uint32_t i = 0; i < st->n_shards; i++) {
		if (st->shards[i].owned)
			qa_source_close(st->shards[i].src);
		free(st->shards[i].path);
	}
	free(st->shards);
	for (size_t i = 0; i < st->n_entries; i++)
		free((char *)st->entries[i].t.name);
	free(st->entries);
	free(st->by_name);
	for (size_t i = 0; i < 2 * st->n_meta; i++)
		free(st->meta[i]);
	free(st->meta);
	json_decref(st->meta_keys);
	while (st->bufs) {
		struct qa_st_buf_node *n = st->bufs->next;
		free(st->bufs);
		st->bufs = n;
	}
	free(st->dir);
	free(st);
}

void qa_st_close(struct qa_st *st)
{
	qa_st_free(st);
}

/* Record a metadata pair; a key already recorded (the index's metadata
 * comes before the first shard's) keeps its first value. */
bool qa_st_add_meta(struct qa_st *st, const char *key, const char *value)
{
	if (!st->meta_keys && !(st->meta_keys = json_object()))
		return false;
	if (json_object_get(st->meta_keys, key))
		return true;
	if (json_object_set_new(st->meta_keys, key, json_true()) != 0)
		return false;
	if (st->n_meta == st->cap_meta) {
		size_t cap = st->cap_meta ? 2 * st->cap_meta : 8;
		char **m = realloc(st->meta, 2 * cap * sizeof *m);
		if (!m)
			return false;
		st->meta = m;
		st->cap_meta = cap;
	}
	char *k = qa_str_dup(key), *v = qa_str_dup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return false;
	}
	st->meta[2 * st->n_meta] = k;
	st->meta[2 * st->n_meta + 1] = v;
	st->n_meta++;
	return true;
}

static struct qa_st_entry *new_entry(struct qa_st *st)
{
	if (st->n_entries == st->cap_entries) {
		size_t cap = st->cap_entries ? 2 * st->cap_entries : 64;
		struct qa_st_entry *e = realloc(st->entries, cap * sizeof *e);
		if (!e)
			return NULL;
		st->entries = e;
		st->cap_entries = cap;
	}
	struct qa_st_entry *e = &st->entries[st->n_entries];
	memset(e, 0, sizeof *e);
	return e;
}

static bool get_u64(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* Validate one tensor entry and append it (name not yet owned on failure). */
static enum qa_err parse_entry(struct qa_st *st, uint32_t si, const char *name,
                               json_t *val, uint64_t koff, struct qa_diag *d)
{
	const struct qa_st_shard *sh = &st->shards[si];
	const struct dtype_info *di;
	json_t *j;

	if (name[0] == '\0')
		return qa_diag_set(d, QA_ERR_FORMAT, koff, "empty tensor name");
	if (!json_is_object(val))
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "tensor entry is not an object: %s", name);

	j = json_object_get(val, "dtype");
	if (!j)
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "tensor entry has no dtype: %s", name);
	if (!json_is_string(j))
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "tensor dtype is not a string: %s", name);
	di = dtype_lookup(json_string_value(j));
	if (!di)
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "unknown dtype \"%.32s\" for tensor %s",
		                   json_string_value(j), name);

	struct qa_st_tensor t;
	memset(&t, 0, sizeof t);
	t.dtype = di->name;
	t.shard = si;

	j = json_object_get(val, "shape");
	if (!j)
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "tensor entry has no shape: %s", name);
	if (!json_is_array(j))
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "tensor shape is not an array: %s", name);
	if (json_array_size(j) > QA_ST_MAX_DIMS)
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "tensor has %zu dims, more than %d: %s",
		                   json_array_size(j), QA_ST_MAX_DIMS, name);
	t.n_dims = (uint32_t)json_array_size(j);
	t.n_elems = 1;
	for (uint32_t k = 0; k < t.n_dims; k++) {
		if (!get_u64(json_array_get(j, k), &t.shape[k]))
			return qa_diag_set(d, QA_ERR_FORMAT, koff,
			                   "shape entry %u is not a non-negative integer: %s",
			                   k, name);
		if (!qa_mul_u64(t.n_elems, t.shape[k], &t.n_elems))
			return qa_diag_set(d, QA_ERR_FORMAT, koff,
			                   "shape element count overflows: %s", name);
	}

	j = json_object_get(val, "data_offsets");
	if (!j)
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "tensor entry has no data_offsets: %s", name);
	if (!json_is_array(j) || json_array_size(j) != 2 ||
	    !get_u64(json_array_get(j, 0), &t.begin) ||
	    !get_u64(json_array_get(j, 1), &t.end))
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "data_offsets is not a pair of non-negative integers: %s",
		                   name);
	if (t.begin > t.end)
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "data_offsets begin %llu > end %llu: %s",
		                   (unsigned long long)t.begin,
		                   (unsigned long long)t.end, name);
	uint64_t nbytes;
	if (!qa_mul_u64(t.n_elems, (uint64_t)di->size, &nbytes))
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "tensor byte size overflows: %s", name);
	if (nbytes != t.end - t.begin)
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "shape and dtype give %llu bytes but data_offsets span %llu: %s",
		                   (unsigned long long)nbytes,
		                   (unsigned long long)(t.end - t.begin), name);
	if (t.end > sh->data_len)
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "data_offsets end %llu past end of data (%llu bytes): %s",
		                   (unsigned long long)t.end,
		                   (unsigned long long)sh->data_len, name);
	t.data_offset = sh->header_len + t.begin; /* cannot overflow: <= file size */

	struct qa_st_entry *e = new_entry(st);
	if (!e)
		return qa_st_nomem(d);
	t.name = qa_str_dup(name);
	if (!t.name)
		return qa_st_nomem(d);
	e->t = t;
	e->key_off = koff;
	st->n_entries++;
	return QA_OK;
}

static int cmp_by_offset(const void *a, const void *b)
{
	const struct qa_st_entry *x = a, *y = b;
	if (x->t.begin != y->t.begin)
		return x->t.begin < y->t.begin ? -1 : 1;
	if (x->t.end != y->t.end)
		return x->t.end < y->t.end ? -1 : 1;
	return strcmp(x->t.name, y->t.name);
}

static enum qa_err parse_metadata(struct qa_st *st, json_t *val, bool keep,
                                  uint64_t koff, struct qa_diag *d)
{
	const char *k;
	json_t *v;
	if (!json_is_object(val))
		return qa_diag_set(d, QA_ERR_FORMAT, koff,
		                   "__metadata__ is not an object");
	json_object_foreach(val, k, v) {
		if (!json_is_string(v))
			return qa_diag_set(d, QA_ERR_FORMAT, koff,
			                   "__metadata__ value is not a string: %s", k);
		if (keep && !qa_st_add_meta(st, k, json_string_value(v)))
			return qa_st_nomem(d);
	}
	return QA_OK;
}

/*
 * Parse and validate the header of shard si, appending its tensors in
 * data order.  keep_meta: record its __metadata__.
 */
enum qa_err qa_st_parse_shard(struct qa_st *st, uint32_t si, bool keep_meta,
                               struct qa_diag *d)
{
	struct qa_st_shard *sh = &st->shards[si];
	uint64_t size = qa_source_size(sh->src);
	uint8_t lenbuf[8];
	uint64_t n;
	enum qa_err e;

	if (size < 8)
		return qa_diag_set(d, QA_ERR_FORMAT, 0,
		                   "file too short for a header length (%llu bytes)",
		                   (unsigned long long)size);
	e = qa_source_read(sh->src, 0, 8, lenbuf, "header length", d);
	if (e)
		return e;
	n = qa_load_le64(lenbuf);
	if (n > QA_ST_MAX_HEADER)
		return qa_diag_set(d, QA_ERR_FORMAT, 0,
		                   "header length %llu exceeds the 100 mb limit",
		                   (unsigned long long)n);
	if (n > size - 8)
		return qa_diag_set(d, QA_ERR_FORMAT, 0,
		                   "header length %llu past end of file (%llu bytes)",
		                   (unsigned long long)n, (unsigned long long)size);
	sh->header_len = 8 + n;
	sh->data_len = size - sh->header_len;

	char *hdr = malloc((size_t)n + 1);
	if (!hdr)
		return qa_st_nomem(d);
	e = qa_source_read(sh->src, 8, (size_t)n, hdr, "header", d);
	if (e) {
		free(hdr);
		return e;
	}
	hdr[n] = '\0';

	json_error_t je;
	json_t *root = json_loadb(hdr, (size_t)n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root) {
		free(hdr);
		return qa_json_error_diag(d, &je, 8, (size_t)n, "header");
	}
	if (!json_is_object(root)) {
		json_decref(root);
		free(hdr);
		return qa_diag_set(d, QA_ERR_FORMAT, 8, "header is not a json object");
	}

	size_t n_keys = json_object_size(root);
	uint64_t *koffs = qa_json_key_offsets(hdr, (size_t)n, qa_json_first_nonspace(hdr, (size_t)n),
	                              n_keys, 8, 8);
	free(hdr);
	if (!koffs) {
		json_decref(root);
		return qa_st_nomem(d);
	}

	size_t first = st->n_entries, ki = 0;
	const char *key;
	json_t *val;
	e = QA_OK;
	json_object_foreach(root, key, val) {
		uint64_t koff = ki < n_keys ? koffs[ki] : 8;
		ki++;
		if (strcmp(key, "__metadata__") == 0)
			e = parse_metadata(st, val, keep_meta, koff, d);
		else
			e = parse_entry(st, si, key, val, koff, d);
		if (e)
			break;
	}
	free(koffs);
	json_decref(root);
	if (e)
		return e;

	size_t cnt = st->n_entries - first;
	if (cnt == 0)
		return QA_OK;
	struct qa_st_entry *es = st->entries + first;
	if (cnt > 1)
		qsort(es, cnt, sizeof *es, cmp_by_offset);
	uint64_t max_end = 0;
	size_t max_i = 0;
	for (size_t i = 0; i < cnt; i++) {
		if (i > 0 && es[i].t.begin < max_end)
			return qa_diag_set(d, QA_ERR_FORMAT, es[i].key_off,
			                   "tensor \"%s\" data overlaps tensor \"%s\"",
			                   es[i].t.name, es[max_i].t.name);
		if (es[i].t.end > max_end) {
			max_end = es[i].t.end;
			max_i = i;
		}
	}
	return QA_OK;
}

struct qa_st *qa_st_new(void)
{
	return calloc(1, sizeof(struct qa_st));
}

bool qa_st_add_shard(struct qa_st *st, const char *path, struct qa_source *src,
                      bool owned)
{
	struct qa_st_shard *s = realloc(st->shards, (st->n_shards + 1) * sizeof *s);
	if (!s)
		return false;
	st->shards = s;
	s = &st->shards[st->n_shards];
	memset(s, 0, sizeof *s);
	s->path = qa_str_dup(path);
	if (!s->path)
		return false;
	s->src = src;
	s->owned = owned;
	st->n_shards++;
	return true;
}

static int cmp_entry_name(const void *a, const void *b)
{
	const struct qa_st_entry *x = *(const struct qa_st_entry *const *)a;
	const struct qa_st_entry *y = *(const struct qa_st_entry *const *)b;
	return strcmp(x->t.name, y->t.name);
}

/* Build the name index; a duplicate name is a format error. */
static enum qa_err sort_names(struct qa_st *st, struct qa_diag *d)
{
	size_t n = st->n_entries;
	st->by_name = malloc((n ? n : 1) * sizeof *st->by_name);
	if (!st->by_name)
		return qa_st_nomem(d);
	for (size_t i = 0; i < n; i++)
		st->by_name[i] = &st->entries[i];
	qsort(st->by_name, n, sizeof *st->by_name, cmp_entry_name);
	for (size_t i = 1; i < n; i++) {
		const struct qa_st_entry *b = st->by_name[i];
		if (strcmp(st->by_name[i - 1]->t.name, b->t.name) == 0)
			return qa_diag_set(d, QA_ERR_FORMAT, b->key_off,
			                   "duplicate tensor name: %s", b->t.name);
	}
	return QA_OK;
}

/* ------------------------------------------------------------ open paths */

enum qa_err qa_st_finish(struct qa_st *st, enum qa_err e, struct qa_st **out, struct qa_diag *d)
{
	if (!e)
		e = sort_names(st, d);
	if (e) {
		qa_st_free(st);
		return e;
	}
	*out = st;
	return QA_OK;
}

enum qa_err qa_st_open_source(struct qa_st **out, struct qa_source *src,
                              struct qa_diag *d)
{
	if (!out || !src)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no source given");
	struct qa_st *st = qa_st_new();
	if (!st || !qa_st_add_shard(st, qa_source_name(src), src, false)) {
		qa_st_free(st);
		return qa_st_nomem(d);
	}
	return qa_st_finish(st, qa_st_parse_shard(st, 0, true, d), out, d);
}



/* -------------------------------------------------------------- queries */

size_t qa_st_n_tensors(const struct qa_st *st)
{
	return st ? st->n_entries : 0;
}

const struct qa_st_tensor *qa_st_tensor_at(const struct qa_st *st, size_t i)
{
	return st && i < st->n_entries ? &st->entries[i].t : NULL;
}

const struct qa_st_tensor *qa_st_tensor_find(const struct qa_st *st,
                                             const char *name)
{
	if (!st || !name)
		return NULL;
	size_t lo = 0, hi = st->n_entries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct qa_st_entry *e = st->by_name[mid];
		int c = strcmp(name, e->t.name);
		if (c == 0)
			return &e->t;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t qa_st_n_metadata(const struct qa_st *st)
{
	return st ? st->n_meta : 0;
}

bool qa_st_metadata_at(const struct qa_st *st, size_t i, const char **key,
                       const char **value)
{
	if (!st || i >= st->n_meta)
		return false;
	if (key)
		*key = st->meta[2 * i];
	if (value)
		*value = st->meta[2 * i + 1];
	return true;
}

size_t qa_st_n_shards(const struct qa_st *st)
{
	return st ? st->n_shards : 0;
}

const char *qa_st_shard_path(const struct qa_st *st, uint32_t i)
{
	return st && i < st->n_shards ? st->shards[i].path : NULL;
}

struct qa_source *qa_st_shard_source(const struct qa_st *st, uint32_t i)
{
	return st && i < st->n_shards ? st->shards[i].src : NULL;
}

uint64_t qa_st_header_len(const struct qa_st *st, uint32_t shard)
{
	return st && shard < st->n_shards ? st->shards[shard].header_len : 0;
}

const char *qa_st_dir(const struct qa_st *st)
{
	return st ? st->dir : NULL;
}

/* ----------------------------------------------------------- data access */

/* Check that t describes data inside its shard; returns the shard. */
static const struct qa_st_shard *check_tensor(const struct qa_st *st,
                                        const struct qa_st_tensor *t,
                                        struct qa_diag *d)
{
	if (!st || !t || t->shard >= st->n_shards) {
		qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "tensor is not in this checkpoint");
		return NULL;
	}
	const struct qa_st_shard *sh = &st->shards[t->shard];
	uint64_t abs_end;
	if (t->begin > t->end || t->end > sh->data_len ||
	    t->data_offset != sh->header_len + t->begin ||
	    !qa_add_u64(t->data_offset, t->end - t->begin, &abs_end) ||
	    abs_end > qa_source_size(sh->src) || t->end - t->begin > SIZE_MAX) {
		qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		            "tensor does not describe data in its shard");
		return NULL;
	}
	return sh;
}

enum qa_err qa_st_tensor_view(struct qa_st *st, const struct qa_st_tensor *t,
                              const void **out, struct qa_diag *d)
{
	const struct qa_st_shard *sh = check_tensor(st, t, d);
	if (!sh)
		return QA_ERR_USAGE;
	size_t n = (size_t)(t->end - t->begin);
	struct qa_diag tmp;
	qa_diag_clear(&tmp);
	enum qa_err e = qa_source_view(sh->src, t->data_offset, n, out, "tensor data", &tmp);
	if (e != QA_ERR_UNSUPPORTED) {
		if (e && d)
			*d = tmp;
		return e;
	}
	size_t sz;
	if (!qa_add_size(sizeof(struct qa_st_buf_node), n, &sz))
		return qa_st_nomem(d);
	struct qa_st_buf_node *b = malloc(sz);
	if (!b)
		return qa_st_nomem(d);
	e = qa_source_read(sh->src, t->data_offset, n, b->data, "tensor data", d);
	if (e) {
		free(b);
		return e;
	}
	b->next = st->bufs;
	st->bufs = b;
	*out = b->data;
	return QA_OK;
}

/* Widen n little-endian elements to floats, through the quantizers' (vectorised) widening. */
static void convert(const char *dtype, const uint8_t *src, size_t n, float *dst)
{
	if (strcmp(dtype, "F32") == 0)
		qa_dequantize_f32(src, dst, n);
	else if (strcmp(dtype, "F16") == 0)
		qa_dequantize_f16(src, dst, n);
	else
		qa_dequantize_bf16(src, dst, n);
}

enum qa_err qa_st_tensor_read_f32(struct qa_st *st, const struct qa_st_tensor *t,
                                  uint64_t first_elem, size_t n_elems,
                                  float *dst, struct qa_diag *d)
{
	const struct qa_st_shard *sh = check_tensor(st, t, d);
	if (!sh)
		return QA_ERR_USAGE;
	if (!qa_st_dtype_is_float(t->dtype))
		return qa_diag_set(d, QA_ERR_UNSUPPORTED, t->data_offset,
		                   "dtype %s cannot be quantized", t->dtype);
	size_t esz = (size_t)qa_st_dtype_size(t->dtype);
	if (first_elem > t->n_elems || n_elems > t->n_elems - first_elem)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "elements %llu..+%zu outside tensor of %llu: %s",
		                   (unsigned long long)first_elem, n_elems,
		                   (unsigned long long)t->n_elems, t->name);
	if (n_elems == 0)
		return QA_OK;
	if (!dst)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no destination");
	size_t nbytes;
	uint64_t off = t->data_offset + first_elem * esz; /* within the checked range */
	if (!qa_mul_size(n_elems, esz, &nbytes) ||
	    (uint64_t)nbytes > t->end - t->begin - first_elem * esz)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "element range does not match the tensor's bytes: %s",
		                   t->name);

	const void *p;
	struct qa_diag tmp;
	qa_diag_clear(&tmp);
	enum qa_err e = qa_source_view(sh->src, off, nbytes, &p, "tensor data", &tmp);
	if (e == QA_OK) {
		convert(t->dtype, p, n_elems, dst);
		/* the floats are in dst now: the source need not keep the bytes */
		qa_source_release(sh->src, off, nbytes);
		return QA_OK;
	}
	if (e != QA_ERR_UNSUPPORTED) {
		if (d)
			*d = tmp;
		return e;
	}
	uint8_t chunk[4096];
	size_t per = sizeof chunk / esz;
	while (n_elems > 0) {
		size_t k = n_elems < per ? n_elems : per;
		e = qa_source_read(sh->src, off, k * esz, chunk, "tensor data", d);
		if (e)
			return e;
		convert(t->dtype, chunk, k, dst);
		dst += k;
		n_elems -= k;
		off += k * esz;
	}
	return QA_OK;
}

