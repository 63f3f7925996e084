/*
 * quantize.c - planning and streaming re-quantization of a whole model.
 */
#include "quantize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "gguf.h"
#include "pool.h"
#include "quant.h"
#include "types.h"

/* The ggml quantization format version llama.cpp writes (GGML_QNT_VERSION). */
#define QA_QNT_VERSION 2

/* 2-D view of a tensor: rows of ne[0]. */
static void dims2(const uint64_t ne[4], uint64_t *in, uint64_t *out)
{
	*in = ne[0];
	*out = ne[1] * ne[2] * ne[3];
}

bool qa_quantize_nbytes(uint32_t type, uint64_t in, uint64_t out, enum qa_layout l,
                        uint64_t *nbytes)
{
	const struct qa_type_info *t = qa_type_get(type);
	struct qa_layout_geom g;
	uint64_t blocks;
	if (!t || !qa_layout_geom(l, in, out, t->block_elems, &g))
		return false;
	if (!qa_mul_u64(g.padded / t->block_elems, g.n_rows, &blocks))
		return false;
	return qa_mul_u64(blocks, t->block_bytes, nbytes);
}

enum qa_err qa_quantize_check_finite(const struct qa_ref_tensor *t, const float *w,
                                     struct qa_diag *d)
{
	size_t i = qa_quant_find_nonfinite(w, (size_t)t->n_elems);
	bool renamed = strcmp(t->name, t->src_name) != 0;
	if (i < t->n_elems)
		return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
		                   "tensor %s%s%s%s: element %zu is %s; non-finite weights cannot be quantized",
		                   t->src_name, renamed ? " (" : "", renamed ? t->name : "",
		                   renamed ? ")" : "", i,
		                   isnan(w[i]) ? "nan" : (w[i] > 0 ? "+inf" : "-inf"));
	return QA_OK;
}

struct tensor_job {
	const float *w;
	uint64_t in, out;
	enum qa_layout layout;
	struct qa_layout_geom g;
	const struct qa_type_info *t;
	qa_quantize_fn quantize;
	uint8_t *dst;
	uint64_t row_bytes;
	uint64_t rows_per_chunk;
	bool direct; /* rows are contiguous and unpadded: quantize in place */
};

static enum qa_err tensor_chunk(void *ctx, size_t item, unsigned worker)
{
	(void)worker;
	struct tensor_job *j = ctx;
	uint64_t r0 = (uint64_t)item * j->rows_per_chunk;
	uint64_t r1 = r0 + j->rows_per_chunk;
	if (r1 > j->g.n_rows)
		r1 = j->g.n_rows;
	if (j->direct) {
		j->quantize(j->w + r0 * j->g.row_len, j->dst + r0 * j->row_bytes,
		            (size_t)((r1 - r0) * j->g.row_len));
		return QA_OK;
	}
	float *row = malloc((size_t)j->g.padded * sizeof *row);
	if (!row)
		return QA_ERR_NOMEM;
	for (uint64_t r = r0; r < r1; r++) {
		qa_layout_row(j->layout, j->w, j->in, j->out, &j->g, r, row);
		j->quantize(row, j->dst + r * j->row_bytes, (size_t)j->g.padded);
	}
	free(row);
	return QA_OK;
}

enum qa_err qa_quantize_tensor(const float *w, uint64_t in, uint64_t out, uint32_t type,
                               enum qa_layout l, unsigned n_threads, void *dst,
                               struct qa_diag *d)
{
	struct tensor_job j;
	const struct qa_quant_ops *ops = qa_quant_ops(type);
	memset(&j, 0, sizeof j);
	j.t = qa_type_get(type);
	if (!j.t || !ops || !ops->quantize)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "type %s cannot be produced",
		                   qa_type_name(type));
	if (!qa_layout_geom(l, in, out, j.t->block_elems, &j.g))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "tensor too large");
	j.w = w;
	j.in = in;
	j.out = out;
	j.layout = l;
	j.quantize = ops->quantize;
	j.dst = dst;
	j.row_bytes = j.g.padded / j.t->block_elems * j.t->block_bytes;
	j.direct = l != QA_LAYOUT_TRANSPOSED && j.g.padded == j.g.row_len;
	if (n_threads == 0)
		n_threads = qa_pool_default_threads();
	/* about 8 chunks per thread, each at least 64 KiB of input */
	uint64_t chunks = (uint64_t)n_threads * 8;
	uint64_t min_rows = (16384 + j.g.padded - 1) / (j.g.padded ? j.g.padded : 1);
	j.rows_per_chunk = (j.g.n_rows + chunks - 1) / (chunks ? chunks : 1);
	if (j.rows_per_chunk < min_rows)
		j.rows_per_chunk = min_rows;
	if (j.rows_per_chunk == 0)
		j.rows_per_chunk = 1;
	size_t n_chunks = (size_t)((j.g.n_rows + j.rows_per_chunk - 1) / j.rows_per_chunk);
	enum qa_err e = qa_pool_run(n_threads, n_chunks, tensor_chunk, &j);
	if (e)
		return qa_diag_set(d, e, QA_NO_OFFSET, "out of memory");
	return QA_OK;
}

/*
 * The weighted path: the layout's values as one flat stream (x), cut into
 * rows of wt->row_len as llama-quantize cut the tensor it was given, row r
 * taking the weights of its expert.
 */
struct weighted_job {
	const float *x;
	uint8_t *dst;
	qa_quantize_rows_fn rows;
	const float *qw;
	uint64_t row_len, row_bytes, n_rows, rows_per_expert, rows_per_chunk;
};

static enum qa_err weighted_chunk(void *ctx, size_t item, unsigned worker)
{
	(void)worker;
	struct weighted_job *j = ctx;
	uint64_t r0 = (uint64_t)item * j->rows_per_chunk;
	uint64_t r1 = r0 + j->rows_per_chunk;
	if (r1 > j->n_rows)
		r1 = j->n_rows;
	/* a run of rows within one expert shares its weights */
	for (uint64_t r = r0; r < r1;) {
		uint64_t e = r / j->rows_per_expert;
		uint64_t end = (e + 1) * j->rows_per_expert;
		if (end > r1)
			end = r1;
		j->rows(j->x + r * j->row_len, j->dst + r * j->row_bytes, (size_t)(end - r),
		        (size_t)j->row_len, j->qw ? j->qw + e * j->row_len : NULL);
		r = end;
	}
	return QA_OK;
}

enum qa_err qa_quantize_tensor_weighted(const float *w, uint64_t in, uint64_t out, uint32_t type,
                                        enum qa_layout l, const struct qa_quantize_weights *wt,
                                        unsigned n_threads, void *dst, struct qa_diag *d)
{
	const struct qa_quant_ops *ops = qa_quant_ops(type);
	const struct qa_type_info *ti = qa_type_get(type);
	const float *qw = wt ? wt->qw : NULL;
	struct qa_layout_geom g;
	/* the plain path, unless weights apply or the type only has the weighted one */
	if (!ops || !ops->quantize_rows || (!qw && ops->quantize))
		return qa_quantize_tensor(w, in, out, type, l, n_threads, dst, d);
	if (!ti || !qa_layout_geom(l, in, out, ti->block_elems, &g))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "tensor too large");
	uint64_t total = g.n_rows * g.padded, n_expert = qw && wt->n_expert ? wt->n_expert : 1;
	uint64_t row_len = qw ? wt->row_len : g.padded;
	if ((qw && g.padded != g.row_len) || row_len == 0 || row_len % ti->block_elems ||
	    total % row_len || (total / row_len) % n_expert)
		return qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET,
		                   "importance weights for rows of %llu do not fit %llu x %llu as %s "
		                   "under layout %s",
		                   (unsigned long long)row_len, (unsigned long long)out,
		                   (unsigned long long)in, qa_type_name(type), qa_layout_name(l));
	struct weighted_job j;
	float *flat = NULL;
	memset(&j, 0, sizeof j);
	j.x = w;
	if (l != QA_LAYOUT_OUT_IN || g.padded != g.row_len) {
		/* the rows of the layout (padded), laid end to end: the stream the exporter wrote */
		flat = malloc((size_t)total * sizeof *flat);
		if (!flat)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		for (uint64_t r = 0; r < g.n_rows; r++)
			qa_layout_row(l, w, in, out, &g, r, flat + r * g.padded);
		j.x = flat;
	}
	j.dst = dst;
	j.rows = ops->quantize_rows;
	j.qw = qw;
	j.row_len = row_len;
	j.row_bytes = row_len / ti->block_elems * ti->block_bytes;
	j.n_rows = total / row_len;
	j.rows_per_expert = j.n_rows / n_expert;
	if (n_threads == 0)
		n_threads = qa_pool_default_threads();
	uint64_t chunks = (uint64_t)n_threads * 8;
	uint64_t min_rows = (16384 + j.row_len - 1) / j.row_len;
	j.rows_per_chunk = (j.n_rows + chunks - 1) / chunks;
	if (j.rows_per_chunk < min_rows)
		j.rows_per_chunk = min_rows;
	size_t n_chunks = (size_t)((j.n_rows + j.rows_per_chunk - 1) / j.rows_per_chunk);
	enum qa_err e = qa_pool_run(n_threads, n_chunks, weighted_chunk, &j);
	free(flat);
	if (e)
		return qa_diag_set(d, e, QA_NO_OFFSET, "out of memory");
	return QA_OK;
}

enum qa_err qa_quantize_plan_types(const struct qa_ref *r, const struct qa_recipe *rec,
                                   uint32_t pure_type, bool has_imatrix,
                                   struct qa_plan_entry *out, struct qa_diag *d)
{
	size_t n = qa_ref_n_tensors(r);
	struct qa_plan_tensor *pt = calloc(n ? n : 1, sizeof *pt);
	if (!pt)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct qa_ref_tensor *t = qa_ref_tensor_at(r, i);
		pt[i].name = t->name;
		pt[i].n_dims = t->n_dims;
		memcpy(pt[i].ne, t->ne, sizeof pt[i].ne);
		/* a tensor that is not f32/f16/bf16 is planned as f32: it is
		 * refused later, when it would have to be read */
		pt[i].src_type = t->src_type == QA_TYPE_COUNT ? QA_TYPE_F32 : t->src_type;
	}
	struct qa_model_shape m;
	qa_ref_model_shape(r, &m);
	m.has_imatrix = has_imatrix;
	enum qa_err e = qa_recipe_plan(rec, pure_type, &m, pt, n, out, d);
	free(pt);
	return e;
}

enum qa_err qa_quantize_plan(const struct qa_ref *r, const struct qa_quantize_opts *o,
                             struct qa_quantize_item **out, uint32_t *file_type,
                             struct qa_diag *d)
{
	size_t n = qa_ref_n_tensors(r);
	struct qa_plan_entry *pe = calloc(n ? n : 1, sizeof *pe);
	struct qa_quantize_item *items = calloc(n ? n : 1, sizeof *items);
	enum qa_err e = QA_OK;
	if (!pe || !items) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	if (o->recipe) {
		*file_type = qa_recipe_file_type(o->recipe);
	} else {
		*file_type = qa_recipe_pure_file_type(o->pure_type);
		const struct qa_type_info *ti = qa_type_get(o->pure_type);
		if (*file_type == QA_RECIPE_NO_FILE_TYPE || !ti || !ti->quantizable) {
			e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "type %s cannot be produced",
			                qa_type_name(o->pure_type));
			goto done;
		}
	}
	if ((e = qa_quantize_plan_types(r, o->recipe, o->pure_type, o->imatrix != NULL, pe, d)))
		goto done;
	for (size_t i = 0; i < n; i++) {
		const struct qa_ref_tensor *t = qa_ref_tensor_at(r, i);
		struct qa_quantize_item *it = &items[i];
		const struct qa_type_info *ti = qa_type_get(pe[i].type);
		it->tensor = t;
		it->plan = pe[i];
		it->n_dims = t->n_dims;
		memcpy(it->ne, t->ne, sizeof it->ne);
		if (t->src_type == QA_TYPE_COUNT) {
			e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET,
			                "tensor %s is %s; only f32, f16 and bf16 references can be quantized",
			                t->src_name, t->src_dtype);
			goto done;
		}
		if (!ti || !ti->quantizable) {
			e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET,
			                "tensor %s: type %s cannot be produced", t->name,
			                qa_type_name(pe[i].type));
			goto done;
		}
		uint64_t in, rows, normal;
		dims2(t->ne, &in, &rows);
		it->layout_applied = o->layout != QA_LAYOUT_OUT_IN && pe[i].quantized && t->n_dims == 2;
		enum qa_layout l = it->layout_applied ? o->layout : QA_LAYOUT_OUT_IN;
		if (!qa_quantize_nbytes(pe[i].type, in, rows, QA_LAYOUT_OUT_IN, &normal) ||
		    !qa_quantize_nbytes(pe[i].type, in, rows, l, &it->nbytes)) {
			e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET, "tensor %s is too large", t->name);
			goto done;
		}
		if (it->nbytes != normal) {
			struct qa_layout_geom g;
			qa_layout_geom(l, in, rows, ti->block_elems, &g);
			if (!o->allow_invalid) {
				e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
				                "layout %s changes %s [%llu x %llu] from %llu to %llu bytes: "
				                "the result would not be a valid gguf (--allow-invalid writes it anyway)",
				                qa_layout_name(l), t->name, (unsigned long long)in,
				                (unsigned long long)rows, (unsigned long long)normal,
				                (unsigned long long)it->nbytes);
				goto done;
			}
			it->resized = true;
			it->ne[0] = g.padded;
			it->ne[1] = g.n_rows;
		}
	}
	*out = items;
	items = NULL;
done:
	free(pe);
	free(items);
	return e;
}

static bool ref_has(void *ctx, const char *name)
{
	return qa_ref_tensor_find(ctx, name) != NULL;
}

enum qa_err qa_quantize_check_imatrix(const struct qa_ref *r, const struct qa_quantize_opts *o,
                                      size_t *unmatched, const char **first_unmatched,
                                      struct qa_diag *d)
{
	struct qa_quantize_item *items = NULL;
	uint32_t ftype;
	const char *first = NULL;
	*unmatched = 0;
	if (first_unmatched)
		*first_unmatched = NULL;
	if (!o->imatrix)
		return QA_OK;
	enum qa_err e = qa_quantize_plan(r, o, &items, &ftype, d);
	for (size_t i = 0; !e && i < qa_ref_n_tensors(r); i++) {
		const struct qa_ref_tensor *t = items[i].tensor;
		const float *w;
		if (items[i].plan.quantized)
			e = qa_imatrix_weights(o->imatrix, t->name, t->ne[0], t->ne[2], &w, d);
	}
	free(items);
	if (e)
		return e;
	*unmatched = qa_imatrix_count_unmatched(o->imatrix, ref_has, (void *)r, &first);
	if (first_unmatched)
		*first_unmatched = first;
	return QA_OK;
}

static enum qa_err write_tensor(struct qa_ref *r, const struct qa_quantize_opts *o,
                                const struct qa_quantize_item *it,
                                struct qa_gguf_writer *w, struct qa_diag *d)
{
	const struct qa_ref_tensor *t = it->tensor;
	float *f = malloc((size_t)t->n_elems * sizeof *f);
	uint8_t *q = malloc(it->nbytes ? (size_t)it->nbytes : 1);
	enum qa_err e;
	if (!f || !q) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for tensor %s", t->name);
		goto done;
	}
	if ((e = qa_ref_read_f32(r, t, f, d)))
		goto done;
	if ((e = qa_quantize_check_finite(t, f, d)))
		goto done;
	uint64_t in, rows;
	dims2(t->ne, &in, &rows);
	struct qa_quantize_weights wt = { NULL, it->ne[0], t->ne[2] };
	if (o->imatrix && it->plan.quantized &&
	    (e = qa_imatrix_weights(o->imatrix, t->name, t->ne[0], t->ne[2], &wt.qw, d)))
		goto done;
	e = qa_quantize_tensor_weighted(f, in, rows, it->plan.type,
	                                it->layout_applied ? o->layout : QA_LAYOUT_OUT_IN, &wt,
	                                o->n_threads, q, d);
	if (!e)
		e = qa_gguf_writer_write(w, q, (size_t)it->nbytes, d);
done:
	free(f);
	free(q);
	return e;
}

/*
 * The keys llama-quantize adds when given an importance matrix, in its
 * order: the file name as given and the first dataset (each cut to 127
 * bytes, as its fixed buffer does), the number of entries, and the chunk
 * count when positive; the integers as u32.
 */
static enum qa_err write_imatrix_keys(struct qa_gguf_writer *w, const struct qa_quantize_opts *o,
                                      struct qa_diag *d)
{
	char buf[128];
	enum qa_err e;
	if (!o->imatrix)
		return QA_OK;
	const struct qa_imatrix_info *in = qa_imatrix_info(o->imatrix);
	snprintf(buf, sizeof buf, "%s", o->imatrix_file ? o->imatrix_file : "");
	if ((e = qa_gguf_writer_set_str(w, "quantize.imatrix.file", buf, d)))
		return e;
	if (in->dataset) {
		snprintf(buf, sizeof buf, "%s", in->dataset);
		if ((e = qa_gguf_writer_set_str(w, "quantize.imatrix.dataset", buf, d)))
			return e;
	}
	if ((e = qa_gguf_writer_set_u32(w, "quantize.imatrix.entries_count",
	                                (uint32_t)in->n_entries, d)))
		return e;
	if (in->chunk_count > 0)
		e = qa_gguf_writer_set_u32(w, "quantize.imatrix.chunks_count",
		                           (uint32_t)in->chunk_count, d);
	return e;
}

enum qa_err qa_quantize_model(struct qa_ref *r, const struct qa_quantize_opts *o,
                              const char *out_path, struct qa_diag *d)
{
	struct qa_quantize_item *items = NULL;
	struct qa_gguf_writer *w = NULL;
	uint32_t ftype = 0;
	size_t n = qa_ref_n_tensors(r);
	enum qa_err e = qa_quantize_plan(r, o, &items, &ftype, d);
	if (e)
		return e;
	if ((e = qa_gguf_writer_open(&w, out_path, d)))
		goto done;
	if ((e = qa_ref_write_metadata(r, w, d)) ||
	    (e = qa_gguf_writer_set_u32(w, "general.quantization_version", QA_QNT_VERSION, d)) ||
	    (e = qa_gguf_writer_set_u32(w, "general.file_type", ftype, d)) ||
	    (e = write_imatrix_keys(w, o, d)))
		goto done;
	for (size_t i = 0; i < n; i++)
		if ((e = qa_gguf_writer_add_tensor(w, items[i].tensor->name, items[i].plan.type,
		                                   items[i].n_dims, items[i].ne, d)))
			goto done;
	if ((e = qa_gguf_writer_begin_data(w, d)))
		goto done;
	for (size_t i = 0; i < n; i++) {
		if ((e = write_tensor(r, o, &items[i], w, d)))
			goto done;
		if (o->progress)
			o->progress(o->progress_ctx, i + 1, n, items[i].tensor->name);
	}
	e = qa_gguf_writer_commit(w, d);
done:
	qa_gguf_writer_free(w);
	free(items);
	return e;
}
