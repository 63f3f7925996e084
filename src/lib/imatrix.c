/*
 * imatrix.c - reading importance matrices (GGUF and legacy .dat) and
 * normalising them into the weights llama-quantize quantizes with.
 *
 * Everything read from the file goes through the GGUF reader or a
 * bounds-checked cursor; lengths are checked against what is left before
 * anything is allocated, so memory stays within a small multiple of the
 * file size.  The normalisation reproduces llama-quantize's load_imatrix
 * (tools/quantize/quantize.cpp) and common_imatrix_load
 * (common/imatrix-loader.cpp) float for float.
 */
#define _POSIX_C_SOURCE 200809L
#include "imatrix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "gguf.h"
#include "types.h"

#define SUFFIX_SUMS ".in_sum2"
#define SUFFIX_COUNTS ".counts"

struct qa_imatrix {
	struct qa_imatrix_info info;
	struct qa_imatrix_entry *entries; /* sorted by name */
	size_t n;
	char **datasets;
};

const char *qa_imatrix_format_name(enum qa_imatrix_format f)
{
	return f == QA_IMATRIX_GGUF ? "gguf" : "legacy";
}

void qa_imatrix_free(struct qa_imatrix *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free((char *)m->entries[i].name);
		free((float *)m->entries[i].weights);
	}
	free(m->entries);
	for (size_t i = 0; i < m->info.n_datasets; i++)
		free(m->datasets[i]);
	free(m->datasets);
	free(m);
}

const struct qa_imatrix_info *qa_imatrix_info(const struct qa_imatrix *m)
{
	return &m->info;
}

const struct qa_imatrix_entry *qa_imatrix_entry_at(const struct qa_imatrix *m, size_t i)
{
	return i < m->n ? &m->entries[i] : NULL;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct qa_imatrix_entry *)a)->name,
	              ((const struct qa_imatrix_entry *)b)->name);
}

const struct qa_imatrix_entry *qa_imatrix_find(const struct qa_imatrix *m, const char *name)
{
	struct qa_imatrix_entry key = { .name = name };
	if (!m->n)
		return NULL;
	return bsearch(&key, m->entries, m->n, sizeof key, entry_cmp);
}

enum qa_err qa_imatrix_weights(const struct qa_imatrix *m, const char *name, uint64_t ne0,
                               uint64_t n_expert, const float **out, struct qa_diag *d)
{
	const struct qa_imatrix_entry *e = qa_imatrix_find(m, name);
	uint64_t want;
	*out = NULL;
	if (!e)
		return QA_OK;
	if (qa_mul_u64(ne0, n_expert ? n_expert : 1, &want) && e->n_values == want) {
		*out = e->weights;
		return QA_OK;
	}
	/* llama-quantize quantizes token_embd unweighted rather than failing */
	if (strcmp(name, "token_embd.weight") == 0)
		return QA_OK;
	if (n_expert <= 1)
		return qa_diag_set(d, QA_ERR_VALUE, e->offset,
		                   "imatrix entry %s has %llu values, but tensor %s has %llu columns",
		                   e->name, (unsigned long long)e->n_values, name,
		                   (unsigned long long)ne0);
	return qa_diag_set(d, QA_ERR_VALUE, e->offset,
	                   "imatrix entry %s has %llu values, but tensor %s has %llu columns x %llu "
	                   "experts",
	                   e->name, (unsigned long long)e->n_values, name, (unsigned long long)ne0,
	                   (unsigned long long)n_expert);
}

size_t qa_imatrix_count_unmatched(const struct qa_imatrix *m,
                                  bool (*has)(void *ctx, const char *name), void *ctx,
                                  const char **first)
{
	size_t n = 0;
	if (first)
		*first = NULL;
	for (size_t i = 0; i < m->n; i++) {
		if (has(ctx, m->entries[i].name))
			continue;
		if (first && !*first)
			*first = m->entries[i].name;
		n++;
	}
	return n;
}

static char *dup_bytes(const void *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* Append an entry (name and weights owned by it from now on). */
static enum qa_err add_entry(struct qa_imatrix *m, size_t *cap, char *name, float *w,
                             uint64_t n_values, uint64_t n_expert, uint64_t offset,
                             struct qa_diag *d)
{
	if (m->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct qa_imatrix_entry *ne = realloc(m->entries, nc * sizeof *ne);
		if (!ne) {
			free(name);
			free(w);
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		}
		m->entries = ne;
		*cap = nc;
	}
	m->entries[m->n++] = (struct qa_imatrix_entry){ name, n_values, n_expert, w, offset };
	return QA_OK;
}

static enum qa_err add_dataset(struct qa_imatrix *m, const void *p, size_t len,
                               struct qa_diag *d)
{
	char **nd = realloc(m->datasets, (m->info.n_datasets + 1) * sizeof *nd);
	if (!nd)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	m->datasets = nd;
	/* llama.cpp keeps C strings: a dataset name ends at its first NUL */
	const char *s = p;
	size_t n = strnlen(s, len);
	if (!(m->datasets[m->info.n_datasets] = dup_bytes(s, n)))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	m->info.n_datasets++;
	return QA_OK;
}

/* Refuse a non-finite weight as llama-quantize does, naming where its value sits. */
static enum qa_err check_finite(const float *w, uint64_t n, const char *name, uint64_t base,
                                struct qa_diag *d)
{
	for (uint64_t i = 0; i < n; i++)
		if (!isfinite(w[i]))
			return qa_diag_set(d, QA_ERR_VALUE, base == QA_NO_OFFSET ? base : base + 4 * i,
			                   "imatrix entry %s: value %llu is %s after normalisation; "
			                   "llama-quantize refuses non-finite importance",
			                   name, (unsigned long long)i,
			                   isnan(w[i]) ? "nan" : (w[i] > 0 ? "+inf" : "-inf"));
	return QA_OK;
}

/* ------------------------------------------------------------------ GGUF */

static bool has_suffix(const char *s, const char *suf, size_t *base_len)
{
	size_t n = strlen(s), k = strlen(suf);
	if (n < k || memcmp(s + n - k, suf, k) != 0)
		return false;
	*base_len = n - k;
	return true;
}

/* The tensor named base + suffix, or NULL. */
static const struct qa_gguf_tensor *find_pair(struct qa_gguf *g, const char *base, size_t len,
                                              const char *suffix, struct qa_diag *d, bool *oom)
{
	size_t k = strlen(suffix);
	char *n = malloc(len + k + 1);
	*oom = n == NULL;
	if (!n) {
		qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		return NULL;
	}
	memcpy(n, base, len);
	memcpy(n + len, suffix, k + 1);
	const struct qa_gguf_tensor *t = qa_gguf_tensor_find(g, n);
	free(n);
	return t;
}

static enum qa_err read_f32s(struct qa_gguf *g, const struct qa_gguf_tensor *t, float **out,
                             struct qa_diag *d)
{
	size_t n = (size_t)t->n_elems;
	float *v = malloc(n ? n * sizeof *v : 1);
	uint8_t *raw = malloc(n ? n * 4 : 1);
	enum qa_err e = QA_OK;
	if (!v || !raw) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	} else if (!(e = qa_gguf_tensor_read(g, t, 0, n * 4, raw, d))) {
		for (size_t i = 0; i < n; i++)
			v[i] = qa_load_lef32(raw + 4 * i);
	}
	free(raw);
	if (e) {
		free(v);
		return e;
	}
	*out = v;
	return QA_OK;
}

/* A required u32 key: false when absent; QA_ERR_FORMAT when of another type. */
static enum qa_err get_u32_key(struct qa_gguf *g, const char *key, bool *present, uint32_t *out,
                               struct qa_diag *d)
{
	const struct qa_gguf_kv *kv = qa_gguf_kv_find(g, key);
	*present = kv != NULL;
	if (!kv)
		return QA_OK;
	if (kv->value.type != QA_GGUF_U32)
		return qa_diag_set(d, QA_ERR_FORMAT, kv->offset, "%s must be a u32", key);
	*out = (uint32_t)kv->value.v.u;
	return QA_OK;
}

static enum qa_err parse_gguf(struct qa_imatrix *m, struct qa_source *src, struct qa_diag *d)
{
	struct qa_gguf *g = NULL;
	size_t cap = 0;
	enum qa_err e = qa_gguf_open(&g, src, d);
	if (e)
		return e;
	m->info.format = QA_IMATRIX_GGUF;
	if (qa_gguf_n_tensors(g) < 1) {
		/* the offset of the header's tensor count */
		e = qa_diag_set(d, QA_ERR_FORMAT, 8, "imatrix has no entries");
		goto done;
	}
	const struct qa_gguf_kv *ds = qa_gguf_kv_find(g, "imatrix.datasets");
	bool has_count, has_size;
	uint32_t count = 0;
	if ((e = get_u32_key(g, "imatrix.chunk_count", &has_count, &count, d)) ||
	    (e = get_u32_key(g, "imatrix.chunk_size", &has_size, &m->info.chunk_size, d)))
		goto done;
	if (!ds || !has_count || !has_size) {
		e = qa_diag_set(d, QA_ERR_FORMAT, 0,
		                "missing imatrix metadata: imatrix.datasets, imatrix.chunk_count and "
		                "imatrix.chunk_size are required (llama-quantize refuses the file)");
		goto done;
	}
	/* llama.cpp keeps the chunk count in an int32 */
	m->info.chunk_count = (int32_t)count;
	if (ds->value.type == QA_GGUF_ARRAY && ds->value.v.arr.elem_type == QA_GGUF_STRING)
		for (uint64_t i = 0; i < ds->value.v.arr.count; i++)
			if ((e = add_dataset(m, ds->value.v.arr.items[i].v.str.ptr,
			                     (size_t)ds->value.v.arr.items[i].v.str.len, d)))
				goto done;

	for (size_t i = 0; i < qa_gguf_n_tensors(g); i++) {
		const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i), *sums = t, *counts;
		size_t blen;
		bool oom;
		if (has_suffix(t->name, SUFFIX_COUNTS, &blen)) {
			/* a counts tensor must have its sums */
			if (!find_pair(g, t->name, blen, SUFFIX_SUMS, d, &oom)) {
				e = oom ? QA_ERR_NOMEM :
				    qa_diag_set(d, QA_ERR_FORMAT, t->info_offset,
				                "imatrix tensor %s has no matching " SUFFIX_SUMS, t->name);
				goto done;
			}
			continue;
		}
		if (!has_suffix(t->name, SUFFIX_SUMS, &blen))
			continue;
		counts = find_pair(g, t->name, blen, SUFFIX_COUNTS, d, &oom);
		if (!counts) {
			e = oom ? QA_ERR_NOMEM :
			    qa_diag_set(d, QA_ERR_FORMAT, t->info_offset,
			                "imatrix tensor %s has no matching " SUFFIX_COUNTS, t->name);
			goto done;
		}
		if (sums->type != QA_TYPE_F32 || counts->type != QA_TYPE_F32) {
			const struct qa_gguf_tensor *bad = sums->type != QA_TYPE_F32 ? sums : counts;
			e = qa_diag_set(d, QA_ERR_FORMAT, bad->info_offset,
			                "imatrix tensor %s is %s; sums and counts must be f32", bad->name,
			                qa_type_name(bad->type));
			goto done;
		}
		uint64_t nval = sums->n_elems, ncounts = counts->n_elems;
		if (ncounts == 0 || nval == 0 || nval % ncounts != 0) {
			e = qa_diag_set(d, QA_ERR_FORMAT, counts->info_offset,
			                "imatrix tensor %s has %llu counts for %llu sums in %s; the sums "
			                "must be a whole number of rows of one per count",
			                counts->name, (unsigned long long)ncounts,
			                (unsigned long long)nval, sums->name);
			goto done;
		}
		float *s = NULL, *c = NULL;
		if ((e = read_f32s(g, sums, &s, d)) || (e = read_f32s(g, counts, &c, d))) {
			free(s);
			goto done;
		}
		uint64_t ne0 = nval / ncounts;
		uint64_t sums_at = qa_gguf_data_offset(g) + sums->offset;
		for (uint64_t j = 0; j < ncounts; j++) {
			/* common_imatrix_load: std::lround of the f32 count, kept as int64 */
			if (!isfinite(c[j]) || fabsf(c[j]) >= 9.2e18f) {
				e = qa_diag_set(d, QA_ERR_FORMAT,
				                qa_gguf_data_offset(g) + counts->offset + 4 * j,
				                "imatrix tensor %s: count %llu is not a finite integer",
				                counts->name, (unsigned long long)j);
				break;
			}
			const float count = (float)llroundf(c[j]);
			for (uint64_t k = 0; k < ne0; k++) {
				float *v = &s[j * ne0 + k];
				*v = count > 0.0f ? *v / count : 1;
			}
		}
		free(c);
		char *name = e ? NULL : dup_bytes(t->name, blen);
		if (!e && !name)
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		if (!e)
			e = check_finite(s, nval, name, sums_at, d);
		if (e) {
			free(name);
			free(s);
			goto done;
		}
		if ((e = add_entry(m, &cap, name, s, nval, ncounts, sums->info_offset, d)))
			goto done;
	}
	if (m->n == 0)
		e = qa_diag_set(d, QA_ERR_FORMAT, 8,
		                "imatrix has no " SUFFIX_SUMS " / " SUFFIX_COUNTS " tensor pairs");
done:
	qa_gguf_close(g);
	return e;
}

/* ------------------------------------------------------------------ legacy */

static enum qa_err read_i32(struct qa_cursor *c, int32_t *out, const char *what,
                            struct qa_diag *d)
{
	uint32_t u;
	enum qa_err e = qa_cursor_u32(c, &u, what, d);
	if (!e)
		memcpy(out, &u, sizeof *out);
	return e;
}

/* Keep the last of several legacy entries with one name (std::map assignment). */
static void drop_duplicates(struct qa_imatrix *m)
{
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++) {
		/* stable sort: equal names keep file order, so the last one wins */
		if (i + 1 < m->n && strcmp(m->entries[i].name, m->entries[i + 1].name) == 0) {
			free((char *)m->entries[i].name);
			free((float *)m->entries[i].weights);
			continue;
		}
		m->entries[k++] = m->entries[i];
	}
	m->n = k;
}

static enum qa_err parse_legacy(struct qa_imatrix *m, const uint8_t *buf, size_t len,
                                struct qa_diag *d)
{
	struct qa_cursor c;
	int32_t n_entries;
	size_t cap = 0;
	enum qa_err e;
	m->info.format = QA_IMATRIX_LEGACY;
	qa_cursor_init(&c, buf, len, 0);
	if ((e = read_i32(&c, &n_entries, "legacy imatrix entry count", d)))
		return e;
	if (n_entries < 1)
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "legacy imatrix entry count %d: no data",
		                   (int)n_entries);
	for (int32_t i = 0; i < n_entries; i++) {
		uint64_t at = qa_cursor_offset(&c);
		int32_t name_len, ncall, nval;
		const uint8_t *name_p, *vals;
		if ((e = read_i32(&c, &name_len, "imatrix entry name length", d)))
			return e;
		if (name_len < 0)
			return qa_diag_set(d, QA_ERR_FORMAT, at, "imatrix entry %d: name length %d",
			                   (int)i, (int)name_len);
		if ((e = qa_cursor_bytes(&c, (uint64_t)name_len, &name_p, "imatrix entry name", d)))
			return e;
		uint64_t counts_at = qa_cursor_offset(&c);
		if ((e = read_i32(&c, &ncall, "imatrix entry ncall", d)) ||
		    (e = read_i32(&c, &nval, "imatrix entry value count", d)))
			return e;
		if (nval < 1)
			return qa_diag_set(d, QA_ERR_FORMAT, counts_at + 4,
			                   "imatrix entry %d: %d values", (int)i, (int)nval);
		uint64_t vals_at = qa_cursor_offset(&c);
		if ((e = qa_cursor_bytes(&c, (uint64_t)nval * 4, &vals, "imatrix entry values", d)))
			return e;
		/* llama.cpp keeps the name as a C string: it ends at its first NUL */
		char *name = dup_bytes(name_p, strnlen((const char *)name_p, (size_t)name_len));
		float *w = malloc((size_t)nval * sizeof *w);
		if (!name || !w) {
			free(name);
			free(w);
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		}
		/* load_imatrix: sums / ncall in float, the raw sums when ncall <= 0 */
		for (int32_t k = 0; k < nval; k++) {
			float s = qa_load_lef32(vals + 4 * (size_t)k);
			w[k] = ncall > 0 ? s / (float)ncall : s;
		}
		if ((e = check_finite(w, (uint64_t)nval, name, vals_at, d))) {
			free(name);
			free(w);
			return e;
		}
		if ((e = add_entry(m, &cap, name, w, (uint64_t)nval, 1, at, d)))
			return e;
	}
	/* the optional trailer: chunk count, then the dataset's name */
	if (qa_cursor_remaining(&c) > 0) {
		int32_t chunks, ds_len;
		const uint8_t *ds;
		if ((e = read_i32(&c, &chunks, "legacy imatrix chunk count", d)))
			return e;
		m->info.chunk_count = chunks;
		if (qa_cursor_remaining(&c) > 0) {
			if ((e = read_i32(&c, &ds_len, "legacy imatrix dataset length", d)))
				return e;
			if (ds_len > 0) {
				if ((e = qa_cursor_bytes(&c, (uint64_t)ds_len, &ds, "legacy imatrix dataset", d)) ||
				    (e = add_dataset(m, ds, (size_t)ds_len, d)))
					return e;
			}
		}
	}
	return QA_OK;
}

/* Stable merge sort by name, so that legacy duplicates keep their file order. */
static void sort_entries(struct qa_imatrix_entry *a, struct qa_imatrix_entry *tmp, size_t n)
{
	if (n < 2)
		return;
	size_t h = n / 2;
	sort_entries(a, tmp, h);
	sort_entries(a + h, tmp, n - h);
	size_t i = 0, j = h, k = 0;
	while (i < h && j < n)
		tmp[k++] = strcmp(a[j].name, a[i].name) < 0 ? a[j++] : a[i++];
	while (i < h)
		tmp[k++] = a[i++];
	while (j < n)
		tmp[k++] = a[j++];
	memcpy(a, tmp, n * sizeof *a);
}

enum qa_err qa_imatrix_open(struct qa_imatrix **out, struct qa_source *src, struct qa_diag *d)
{
	struct qa_imatrix *m = calloc(1, sizeof *m);
	const void *view = NULL;
	uint8_t *copy = NULL;
	uint64_t size = qa_source_size(src);
	enum qa_err e;
	if (!m)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	m->info.file_size = size;
	if (size > SIZE_MAX) {
		e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET, "imatrix too large");
		goto done;
	}
	e = qa_source_view(src, 0, (size_t)size, &view, "imatrix", d);
	if (e == QA_ERR_UNSUPPORTED) {
		copy = malloc(size ? (size_t)size : 1);
		if (!copy) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
		e = qa_source_read(src, 0, (size_t)size, copy, "imatrix", d);
		view = copy;
	}
	if (e || (e = qa_sha256(view, (size_t)size, m->info.sha256, d)))
		goto done;
	if (size >= 4 && memcmp(view, "GGUF", 4) == 0)
		e = parse_gguf(m, src, d);
	else
		e = parse_legacy(m, view, (size_t)size, d);
	if (e)
		goto done;
	if (m->n > 1) {
		struct qa_imatrix_entry *tmp = malloc(m->n * sizeof *tmp);
		if (!tmp) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
		sort_entries(m->entries, tmp, m->n);
		free(tmp);
		drop_duplicates(m);
	}
	m->info.n_entries = m->n;
	m->info.dataset = m->info.n_datasets ? m->datasets[0] : NULL;
done:
	free(copy);
	if (e) {
		qa_imatrix_free(m);
		return e;
	}
	*out = m;
	return QA_OK;
}

enum qa_err qa_imatrix_load(struct qa_imatrix **out, const char *path, struct qa_diag *d)
{
	struct qa_source *src = NULL;
	enum qa_err e = qa_source_open_file(&src, path, d);
	if (!e)
		e = qa_imatrix_open(out, src, d);
	qa_source_close(src);
	return e;
}
