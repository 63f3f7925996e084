/*
 * safetensors.c - safetensors header parsing, sharded checkpoints and
 * tensor data access.
 *
 * A header is read through the shard's qa_source, parsed by jansson with
 * duplicate keys rejected, and then every entry is checked: dtype, shape,
 * offsets, size agreement and overlap.  Because jansson keeps object keys in
 * document order, a small scanner over the raw header finds the byte
 * position of each top-level key, so entry errors can name the exact offset
 * of the offending tensor's key.  Sharded checkpoints are opened shard by
 * shard (sorted by file name) and cross-checked against the index's
 * weight_map, using jansson objects as hash sets.
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
#include "remote.h"

#define INDEX_NAME "model.safetensors.index.json"

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

struct shard {
	char *path;
	struct qa_source *src;
	bool owned;          /* src is closed with the checkpoint */
	uint64_t header_len; /* 8 + N */
	uint64_t data_len;   /* bytes after the header */
};

struct entry {
	struct qa_st_tensor t;
	uint64_t key_off; /* absolute offset of the tensor's key in its shard */
};

struct buf_node {
	struct buf_node *next;
	unsigned char data[];
};

struct qa_st {
	char *dir;
	struct shard *shards;
	uint32_t n_shards;
	struct entry *entries;
	size_t n_entries, cap_entries;
	struct entry **by_name; /* entries sorted by name */
	char **meta;     /* key, value pairs */
	size_t n_meta, cap_meta;
	json_t *meta_keys;        /* the keys recorded so far, as a set */
	struct buf_node *bufs;
};

/* ---------------------------------------------------------------- helpers */

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static char *join_path(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name), n;
	if (!qa_add_size(a, b, &n) || !qa_add_size(n, 2, &n))
		return NULL;
	char *p = malloc(n);
	if (!p)
		return NULL;
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return dup_str(".");
	size_t n = (size_t)(slash - path);
	if (n == 0)
		n = 1; /* "/file" lives in "/" */
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, path, n);
	p[n] = '\0';
	return p;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static enum qa_err nomem(struct qa_diag *d)
{
	return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
}

/* Prefix d->msg with "path: ", keeping code and offset. */
static enum qa_err prefix_diag(struct qa_diag *d, enum qa_err e, const char *path)
{
	if (d) {
		char tmp[sizeof d->msg];
		memcpy(tmp, d->msg, sizeof tmp);
		tmp[sizeof tmp - 1] = '\0';
		qa_diag_set(d, e, d->offset, "%s: %s", path, tmp);
	}
	return e;
}

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

bool qa_st_dtype_is_float(const char *dtype)
{
	return dtype && (strcmp(dtype, "F32") == 0 || strcmp(dtype, "F16") == 0 ||
	                 strcmp(dtype, "BF16") == 0);
}

size_t qa_st_json_key_positions(const char *buf, size_t len, size_t start,
                                size_t *pos, size_t max)
{
	size_t n = 0, depth = 0;
	bool want_key = false;
	for (size_t i = start; i < len; i++) {
		char c = buf[i];
		if (c == '"') {
			if (depth == 1 && want_key) {
				if (n < max)
					pos[n] = i;
				n++;
				want_key = false;
			}
			for (i++; i < len && buf[i] != '"'; i++)
				if (buf[i] == '\\')
					i++;
		} else if (c == '{' || c == '[') {
			depth++;
			if (depth == 1)
				want_key = true;
		} else if (c == '}' || c == ']') {
			if (depth <= 1)
				break;
			depth--;
		} else if (c == ',' && depth == 1) {
			want_key = true;
		}
	}
	return n;
}

/* Position of the first byte of the value after the key whose quote is at kpos. */
static size_t value_position(const char *buf, size_t len, size_t kpos)
{
	size_t i = kpos + 1;
	while (i < len && buf[i] != '"') {
		if (buf[i] == '\\')
			i++;
		i++;
	}
	i++;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' ||
	                   buf[i] == '\r' || buf[i] == ':'))
		i++;
	return i;
}

static size_t first_nonspace(const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' ||
	                   buf[i] == '\r'))
		i++;
	return i;
}

/*
 * Key offsets (absolute: base + position) of the object at buf[start], as
 * a malloc'd array of json_object_size(obj) entries; entries the scanner
 * could not place get fallback.  NULL only when out of memory.
 */
static uint64_t *key_offsets(const char *buf, size_t len, size_t start,
                             size_t n_keys, uint64_t base, uint64_t fallback)
{
	size_t *pos = malloc((n_keys ? n_keys : 1) * sizeof *pos);
	uint64_t *off = malloc((n_keys ? n_keys : 1) * sizeof *off);
	if (!pos || !off) {
		free(pos);
		free(off);
		return NULL;
	}
	size_t found = 0;
	if (start < len && buf[start] == '{')
		found = qa_st_json_key_positions(buf, len, start, pos, n_keys);
	for (size_t i = 0; i < n_keys; i++)
		off[i] = (found == n_keys) ? base + pos[i] : fallback;
	free(pos);
	return off;
}

static enum qa_err json_error(struct qa_diag *d, const json_error_t *je,
                              uint64_t base, size_t len, const char *what)
{
	uint64_t pos = je->position > 0 ? (uint64_t)je->position : 0;
	if (pos > len)
		pos = len;
	if (json_error_code(je) == json_error_duplicate_key)
		return qa_diag_set(d, QA_ERR_FORMAT, base + pos,
		                   "duplicate key in %s: %s", what, je->text);
	return qa_diag_set(d, QA_ERR_FORMAT, base + pos, "%s is not valid json: %s",
	                   what, je->text);
}

/* ------------------------------------------------------------- the model */

static void free_st(struct qa_st *st)
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
		struct buf_node *n = st->bufs->next;
		free(st->bufs);
		st->bufs = n;
	}
	free(st->dir);
	free(st);
}

void qa_st_close(struct qa_st *st)
{
	free_st(st);
}

/* Record a metadata pair; a key already recorded (the index's metadata
 * comes before the first shard's) keeps its first value. */
static bool add_meta(struct qa_st *st, const char *key, const char *value)
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
	char *k = dup_str(key), *v = dup_str(value);
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

static struct entry *new_entry(struct qa_st *st)
{
	if (st->n_entries == st->cap_entries) {
		size_t cap = st->cap_entries ? 2 * st->cap_entries : 64;
		struct entry *e = realloc(st->entries, cap * sizeof *e);
		if (!e)
			return NULL;
		st->entries = e;
		st->cap_entries = cap;
	}
	struct entry *e = &st->entries[st->n_entries];
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
	const struct shard *sh = &st->shards[si];
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

	struct entry *e = new_entry(st);
	if (!e)
		return nomem(d);
	t.name = dup_str(name);
	if (!t.name)
		return nomem(d);
	e->t = t;
	e->key_off = koff;
	st->n_entries++;
	return QA_OK;
}

static int cmp_by_offset(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
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
		if (keep && !add_meta(st, k, json_string_value(v)))
			return nomem(d);
	}
	return QA_OK;
}

/*
 * Parse and validate the header of shard si, appending its tensors in
 * data order.  keep_meta: record its __metadata__.
 */
static enum qa_err parse_shard(struct qa_st *st, uint32_t si, bool keep_meta,
                               struct qa_diag *d)
{
	struct shard *sh = &st->shards[si];
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
		return nomem(d);
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
		return json_error(d, &je, 8, (size_t)n, "header");
	}
	if (!json_is_object(root)) {
		json_decref(root);
		free(hdr);
		return qa_diag_set(d, QA_ERR_FORMAT, 8, "header is not a json object");
	}

	size_t n_keys = json_object_size(root);
	uint64_t *koffs = key_offsets(hdr, (size_t)n, first_nonspace(hdr, (size_t)n),
	                              n_keys, 8, 8);
	free(hdr);
	if (!koffs) {
		json_decref(root);
		return nomem(d);
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
	struct entry *es = st->entries + first;
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

static struct qa_st *new_st(void)
{
	return calloc(1, sizeof(struct qa_st));
}

static bool add_shard(struct qa_st *st, const char *path, struct qa_source *src,
                      bool owned)
{
	struct shard *s = realloc(st->shards, (st->n_shards + 1) * sizeof *s);
	if (!s)
		return false;
	st->shards = s;
	s = &st->shards[st->n_shards];
	memset(s, 0, sizeof *s);
	s->path = dup_str(path);
	if (!s->path)
		return false;
	s->src = src;
	s->owned = owned;
	st->n_shards++;
	return true;
}

static int cmp_entry_name(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;
	return strcmp(x->t.name, y->t.name);
}

/* Build the name index; a duplicate name is a format error. */
static enum qa_err finish(struct qa_st *st, struct qa_diag *d)
{
	size_t n = st->n_entries;
	st->by_name = malloc((n ? n : 1) * sizeof *st->by_name);
	if (!st->by_name)
		return nomem(d);
	for (size_t i = 0; i < n; i++)
		st->by_name[i] = &st->entries[i];
	qsort(st->by_name, n, sizeof *st->by_name, cmp_entry_name);
	for (size_t i = 1; i < n; i++) {
		const struct entry *b = st->by_name[i];
		if (strcmp(st->by_name[i - 1]->t.name, b->t.name) == 0)
			return qa_diag_set(d, QA_ERR_FORMAT, b->key_off,
			                   "duplicate tensor name: %s", b->t.name);
	}
	return QA_OK;
}

/* ------------------------------------------------------------ open paths */

enum qa_err qa_st_open_source(struct qa_st **out, struct qa_source *src,
                              struct qa_diag *d)
{
	if (!out || !src)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no source given");
	struct qa_st *st = new_st();
	if (!st || !add_shard(st, qa_source_name(src), src, false)) {
		free_st(st);
		return nomem(d);
	}
	enum qa_err e = parse_shard(st, 0, true, d);
	if (!e)
		e = finish(st, d);
	if (e) {
		free_st(st);
		return e;
	}
	*out = st;
	return QA_OK;
}

static enum qa_err open_single(struct qa_st *st, const char *path,
                               bool prefix, struct qa_diag *d)
{
	struct qa_source *src;
	enum qa_err e = qa_source_open_file(&src, path, d);
	if (e)
		return prefix ? prefix_diag(d, e, path) : e;
	if (!add_shard(st, path, src, true)) {
		qa_source_close(src);
		return nomem(d);
	}
	e = parse_shard(st, 0, true, d);
	if (e)
		return prefix ? prefix_diag(d, e, path) : e;
	return QA_OK;
}

static bool valid_shard_name(const char *s)
{
	return s[0] != '\0' && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
	       !strchr(s, '/') && !strchr(s, '\\');
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct index_ctx {
	char *buf;
	size_t len;
	json_t *root;
	json_t *wmap;
	uint64_t *wmap_off; /* key offsets inside weight_map */
	const char **names; /* unique shard names, sorted */
	size_t n_names;
	json_t *seen;       /* tensor name -> shard index */
};

static void index_ctx_free(struct index_ctx *c)
{
	free(c->buf);
	free(c->wmap_off);
	free(c->names);
	json_decref(c->seen);
	json_decref(c->root);
}

/* Offset of the weight_map key named key, or 0. */
static uint64_t wmap_key_off(const struct index_ctx *c, const char *key)
{
	size_t i = 0;
	const char *k;
	json_t *v;
	json_object_foreach(c->wmap, k, v) {
		if (strcmp(k, key) == 0)
			return c->wmap_off[i];
		i++;
	}
	return 0;
}

static enum qa_err parse_index(struct qa_st *st, struct index_ctx *c,
                               const char *path, struct qa_diag *d)
{
	struct qa_source *src;
	enum qa_err e = qa_source_open_file(&src, path, d);
	if (e)
		return e;
	uint64_t size = qa_source_size(src);
	if (size > QA_ST_MAX_HEADER) {
		qa_source_close(src);
		return qa_diag_set(d, QA_ERR_FORMAT, 0,
		                   "index file of %llu bytes exceeds the 100 mb limit",
		                   (unsigned long long)size);
	}
	c->len = (size_t)size;
	c->buf = malloc(c->len + 1);
	if (!c->buf) {
		qa_source_close(src);
		return nomem(d);
	}
	e = qa_source_read(src, 0, c->len, c->buf, "index", d);
	qa_source_close(src);
	if (e)
		return e;
	c->buf[c->len] = '\0';

	json_error_t je;
	c->root = json_loadb(c->buf, c->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!c->root)
		return json_error(d, &je, 0, c->len, "index");
	if (!json_is_object(c->root))
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "index is not a json object");

	size_t start = first_nonspace(c->buf, c->len);
	size_t n_top = json_object_size(c->root);
	uint64_t *top = key_offsets(c->buf, c->len, start, n_top, 0, 0);
	if (!top)
		return nomem(d);
	uint64_t wmap_koff = 0, meta_koff = 0;
	{
		size_t i = 0;
		const char *k;
		json_t *v;
		json_object_foreach(c->root, k, v) {
			if (strcmp(k, "weight_map") == 0)
				wmap_koff = top[i];
			else if (strcmp(k, "metadata") == 0)
				meta_koff = top[i];
			i++;
		}
	}
	free(top);

	json_t *meta = json_object_get(c->root, "metadata");
	if (meta && !json_is_null(meta)) {
		const char *k;
		json_t *v;
		if (!json_is_object(meta))
			return qa_diag_set(d, QA_ERR_FORMAT, meta_koff,
			                   "index metadata is not an object");
		json_object_foreach(meta, k, v) {
			bool ok;
			if (json_is_string(v)) {
				ok = add_meta(st, k, json_string_value(v));
			} else {
				char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
				ok = s && add_meta(st, k, s);
				free(s);
			}
			if (!ok)
				return nomem(d);
		}
	}

	c->wmap = json_object_get(c->root, "weight_map");
	if (!c->wmap)
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "index has no weight_map");
	if (!json_is_object(c->wmap))
		return qa_diag_set(d, QA_ERR_FORMAT, wmap_koff,
		                   "weight_map is not an object");
	size_t n_w = json_object_size(c->wmap);
	if (n_w == 0)
		return qa_diag_set(d, QA_ERR_FORMAT, wmap_koff, "weight_map is empty");
	c->wmap_off = key_offsets(c->buf, c->len,
	                          value_position(c->buf, c->len, (size_t)wmap_koff),
	                          n_w, 0, wmap_koff);
	if (!c->wmap_off)
		return nomem(d);

	/* Collect the unique shard names. */
	json_t *uniq = json_object();
	if (!uniq)
		return nomem(d);
	{
		size_t i = 0;
		const char *k;
		json_t *v;
		json_object_foreach(c->wmap, k, v) {
			if (!json_is_string(v)) {
				json_decref(uniq);
				return qa_diag_set(d, QA_ERR_FORMAT, c->wmap_off[i],
				                   "weight_map value is not a string: %s", k);
			}
			const char *s = json_string_value(v);
			if (!valid_shard_name(s)) {
				json_decref(uniq);
				return qa_diag_set(d, QA_ERR_FORMAT, c->wmap_off[i],
				                   "shard name is not a plain file name: \"%.64s\" for %s",
				                   s, k);
			}
			if (json_object_set_new(uniq, s, json_null()) != 0) {
				json_decref(uniq);
				return nomem(d);
			}
			i++;
		}
	}
	c->n_names = json_object_size(uniq);
	c->names = malloc(c->n_names * sizeof *c->names);
	if (!c->names) {
		json_decref(uniq);
		return nomem(d);
	}
	{
		size_t i = 0;
		const char *k;
		json_t *v;
		json_object_foreach(c->wmap, k, v) {
			const char *s = json_string_value(v);
			json_t *u = json_object_get(uniq, s);
			if (json_is_null(u)) {
				/* point at the string owned by the weight_map value */
				c->names[i++] = s;
				json_object_set_new(uniq, s, json_true());
			}
		}
	}
	json_decref(uniq);
	qsort(c->names, c->n_names, sizeof *c->names, cmp_str);
	return QA_OK;
}

static enum qa_err open_index(struct qa_st *st, const char *index_path,
                              bool prefix_index, struct qa_diag *d)
{
	struct index_ctx c;
	memset(&c, 0, sizeof c);
	enum qa_err e = parse_index(st, &c, index_path, d);
	if (e) {
		index_ctx_free(&c);
		return prefix_index ? prefix_diag(d, e, index_path) : e;
	}
	c.seen = json_object();
	if (!c.seen) {
		index_ctx_free(&c);
		return nomem(d);
	}

	for (size_t si = 0; si < c.n_names && !e; si++) {
		char *spath = join_path(st->dir, c.names[si]);
		struct qa_source *src = NULL;
		if (!spath) {
			e = nomem(d);
			break;
		}
		e = qa_source_open_file(&src, spath, d);
		if (!e && !add_shard(st, spath, src, true)) {
			qa_source_close(src);
			e = nomem(d);
		}
		if (!e)
			e = parse_shard(st, (uint32_t)si, si == 0, d);
		if (e && e != QA_ERR_NOMEM)
			prefix_diag(d, e, spath);
		free(spath);
	}
	/* Duplicates across shards first, then the weight_map assignment. */
	for (size_t i = 0; !e && i < st->n_entries; i++) {
		const struct entry *en = &st->entries[i];
		json_t *prev = json_object_get(c.seen, en->t.name);
		if (prev) {
			e = qa_diag_set(d, QA_ERR_FORMAT, en->key_off,
			                "duplicate tensor across shards (also in %s): %s",
			                c.names[json_integer_value(prev)], en->t.name);
			prefix_diag(d, e, st->shards[en->t.shard].path);
		} else if (json_object_set_new(c.seen, en->t.name,
		                               json_integer((json_int_t)en->t.shard)) != 0) {
			e = nomem(d);
		}
	}
	for (size_t i = 0; !e && i < st->n_entries; i++) {
		const struct entry *en = &st->entries[i];
		json_t *w = json_object_get(c.wmap, en->t.name);
		if (!w)
			e = qa_diag_set(d, QA_ERR_FORMAT, en->key_off,
			                "tensor not in weight_map: %s", en->t.name);
		else if (strcmp(json_string_value(w), c.names[en->t.shard]) != 0)
			e = qa_diag_set(d, QA_ERR_FORMAT, en->key_off,
			                "weight_map names shard %.64s for tensor %s",
			                json_string_value(w), en->t.name);
		if (e)
			prefix_diag(d, e, st->shards[en->t.shard].path);
	}
	if (!e) {
		const char *k;
		json_t *v;
		json_object_foreach(c.wmap, k, v) {
			if (!json_object_get(c.seen, k)) {
				e = qa_diag_set(d, QA_ERR_FORMAT, wmap_key_off(&c, k),
				                "tensor in weight_map missing from shard %.64s: %s",
				                json_string_value(v), k);
				if (prefix_index)
					prefix_diag(d, e, index_path);
				break;
			}
		}
	}
	index_ctx_free(&c);
	return e;
}

/* Pick what a directory holds: its index, or its single .safetensors file. */
static enum qa_err open_dir(struct qa_st *st, const char *dir, struct qa_diag *d)
{
	char *p = join_path(dir, INDEX_NAME);
	struct stat sb;
	if (!p)
		return nomem(d);
	if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
		enum qa_err e = open_index(st, p, true, d);
		free(p);
		return e;
	}
	free(p);

	DIR *dh = opendir(dir);
	if (!dh)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open directory: %s",
		                   qa_strerror(errno));
	char *index = NULL, *single = NULL;
	size_t n_index = 0, n_single = 0;
	struct dirent *de;
	while ((de = readdir(dh)) != NULL) {
		const char *nm = de->d_name;
		if (nm[0] == '.')
			continue;
		char **slot = NULL;
		if (ends_with(nm, ".safetensors.index.json")) {
			n_index++;
			slot = &index;
		} else if (ends_with(nm, ".safetensors")) {
			n_single++;
			slot = &single;
		}
		if (slot && !*slot) {
			*slot = join_path(dir, nm);
			if (!*slot) {
				closedir(dh);
				free(index);
				free(single);
				return nomem(d);
			}
		}
	}
	closedir(dh);

	enum qa_err e;
	if (n_index > 1)
		e = qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                "directory holds %zu index files", n_index);
	else if (n_index == 1)
		e = open_index(st, index, true, d);
	else if (n_single == 1)
		e = open_single(st, single, true, d);
	else if (n_single == 0)
		e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET,
		                "no .safetensors file in directory");
	else
		e = qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                "directory holds %zu .safetensors files but no index",
		                n_single);
	free(index);
	free(single);
	return e;
}

enum qa_err qa_st_open(struct qa_st **out, const char *path, struct qa_diag *d)
{
	struct stat sb;
	enum qa_err e;
	if (!out || !path)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no path given");
	bool remote = qa_remote_is_url(path);
	if (!remote && stat(path, &sb) != 0)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open: %s",
		                   qa_strerror(errno));
	struct qa_st *st = new_st();
	if (!st)
		return nomem(d);
	if (!remote && S_ISDIR(sb.st_mode)) {
		st->dir = dup_str(path);
		if (st->dir) {
			/* "dir/" and "dir" name the same checkpoint */
			size_t n = strlen(st->dir);
			while (n > 1 && st->dir[n - 1] == '/')
				st->dir[--n] = '\0';
		}
		e = st->dir ? open_dir(st, st->dir, d) : nomem(d);
	} else {
		st->dir = dir_of(path);
		if (!st->dir)
			e = nomem(d);
		else if (ends_with(path, ".json"))
			e = open_index(st, path, false, d);
		else
			e = open_single(st, path, false, d);
	}
	if (!e)
		e = finish(st, d);
	if (e) {
		free_st(st);
		return e;
	}
	*out = st;
	return QA_OK;
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
		const struct entry *e = st->by_name[mid];
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
static const struct shard *check_tensor(const struct qa_st *st,
                                        const struct qa_st_tensor *t,
                                        struct qa_diag *d)
{
	if (!st || !t || t->shard >= st->n_shards) {
		qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "tensor is not in this checkpoint");
		return NULL;
	}
	const struct shard *sh = &st->shards[t->shard];
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
	const struct shard *sh = check_tensor(st, t, d);
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
	if (!qa_add_size(sizeof(struct buf_node), n, &sz))
		return nomem(d);
	struct buf_node *b = malloc(sz);
	if (!b)
		return nomem(d);
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

static void convert(const char *dtype, const uint8_t *src, size_t n, float *dst)
{
	if (strcmp(dtype, "F32") == 0) {
		for (size_t i = 0; i < n; i++)
			dst[i] = qa_load_lef32(src + 4 * i);
	} else if (strcmp(dtype, "F16") == 0) {
		for (size_t i = 0; i < n; i++)
			dst[i] = qa_fp16_to_fp32(qa_load_le16(src + 2 * i));
	} else {
		for (size_t i = 0; i < n; i++)
			dst[i] = qa_bf16_to_fp32(qa_load_le16(src + 2 * i));
	}
}

enum qa_err qa_st_tensor_read_f32(struct qa_st *st, const struct qa_st_tensor *t,
                                  uint64_t first_elem, size_t n_elems,
                                  float *dst, struct qa_diag *d)
{
	const struct shard *sh = check_tensor(st, t, d);
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
