/*
 * quantize.c - planning and streaming re-quantization of a whole model.
 */
#include "quantize.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "gguf.h"
#include "order.h"
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

/* The finiteness check on elements base .. base + n - 1 of t, held in w. */
static enum qa_err check_finite_at(const struct qa_ref_tensor *t, const float *w, size_t n,
                                   uint64_t base, struct qa_diag *d)
{
	size_t i = qa_quant_find_nonfinite(w, n);
	bool renamed = strcmp(t->name, t->src_name) != 0;
	if (i < n)
		return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
		                   "tensor %s%s%s%s: element %llu is %s; non-finite weights cannot be quantized",
		                   t->src_name, renamed ? " (" : "", renamed ? t->name : "",
		                   renamed ? ")" : "", (unsigned long long)(base + i),
		                   isnan(w[i]) ? "nan" : (w[i] > 0 ? "+inf" : "-inf"));
	return QA_OK;
}

enum qa_err qa_quantize_check_finite(const struct qa_ref_tensor *t, const float *w,
                                     struct qa_diag *d)
{
	return check_finite_at(t, w, (size_t)t->n_elems, 0, d);
}

enum qa_err qa_quantize_sq_error(struct qa_ref *r, const struct qa_ref_tensor *t,
                                 const struct qa_imatrix *im, const uint32_t *types,
                                 const bool *measure, size_t n, double *sq, double *bits,
                                 struct qa_diag *d)
{
	uint64_t in = t->ne[0], out = t->n_elems / (in ? in : 1);
	float *w = malloc((size_t)t->n_elems * sizeof *w + 1);
	float *deq = malloc((size_t)t->n_elems * sizeof *deq + 1);
	uint8_t *q = NULL;
	enum qa_err e = QA_OK;
	if (!w || !deq) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for tensor %s", t->name);
		goto done;
	}
	if ((e = qa_ref_read_f32(r, t, w, d)) || (e = qa_quantize_check_finite(t, w, d)))
		goto done;
	struct qa_quantize_weights wt = { NULL, t->ne[0], t->ne[2] };
	if (im && (e = qa_imatrix_weights(im, t->name, t->ne[0], t->ne[2], &wt.qw, d)))
		goto done;
	for (size_t k = 0; k < n; k++) {
		if (measure && !measure[k])
			continue;
		uint64_t nb;
		const struct qa_quant_ops *ops = qa_quant_ops(types[k]);
		if (!ops || !ops->quantize || !ops->dequantize ||
		    !qa_quantize_nbytes(types[k], in, out, QA_LAYOUT_OUT_IN, &nb)) {
			e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET, "tensor %s: type %s cannot be produced",
			                t->name, qa_type_name(types[k]));
			goto done;
		}
		uint8_t *nq = realloc(q, (size_t)nb + 1);
		if (!nq) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for tensor %s", t->name);
			goto done;
		}
		q = nq;
		if ((e = qa_quantize_tensor_weighted(w, in, out, types[k], QA_LAYOUT_OUT_IN, &wt, 1, q, d)))
			goto done;
		ops->dequantize(q, deq, (size_t)t->n_elems);
		double s = 0;
		for (uint64_t j = 0; j < t->n_elems; j++) {
			double x = (double)deq[j] - (double)w[j];
			s += x * x;
		}
		sq[k] = s;
		if (bits)
			bits[k] = (double)nb * 8.0;
	}
done:
	free(w);
	free(deq);
	free(q);
	return e;
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
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   ops && ops->requires_imatrix ?
		                   "type %s needs an importance matrix (--imatrix): ggml refuses it without one" :
		                   "type %s cannot be produced",
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
	return qa_quantize_plan_types_with(r, rec, pure_type, has_imatrix, NULL, out, d);
}

enum qa_err qa_quantize_plan_types_with(const struct qa_ref *r, const struct qa_recipe *rec,
                                        uint32_t pure_type, bool has_imatrix,
                                        const struct qa_recipe_overrides *ov,
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
	enum qa_err e = qa_recipe_plan_with(rec, pure_type, ov, &m, pt, n, out, d);
	/* llama-quantize keeps what it does not quantize exactly as the GGUF
	 * reference has it (the f32 rule is the converter's, for safetensors) */
	if (!e && qa_ref_format(r) == QA_FORMAT_GGUF)
		for (size_t i = 0; i < n; i++)
			if (!out[i].quantized && out[i].type != pt[i].src_type) {
				out[i].type = pt[i].src_type;
				snprintf(out[i].rule, sizeof out[i].rule, "not quantized: keeps %s",
				         qa_type_name(pt[i].src_type));
			}
	free(pt);
	return e;
}

/* ggml_n_dims: dimensions up to the last one larger than 1 (at least 1). */
static uint32_t written_dims(const uint64_t ne[4], uint32_t n_dims)
{
	while (n_dims > 1 && ne[n_dims - 1] == 1)
		n_dims--;
	return n_dims;
}

enum qa_err qa_quantize_plan(const struct qa_ref *r, const struct qa_quantize_opts *o,
                             struct qa_quantize_item **out, uint32_t *file_type,
                             struct qa_diag *d)
{
	size_t n = qa_ref_n_tensors(r);
	struct qa_plan_entry *pe = calloc(n ? n : 1, sizeof *pe);
	struct qa_quantize_item *items = calloc(n ? n : 1, sizeof *items);
	size_t *order = NULL;
	const char **names = NULL;
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
	if ((e = qa_quantize_plan_types_with(r, o->recipe, o->pure_type, o->imatrix != NULL,
	                                     o->overrides, pe, d)))
		goto done;
	for (size_t i = 0; i < n && o->imatrix == NULL; i++) {
		if (pe[i].needs_imatrix) {
			e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                "%s needs an importance matrix: tensor %s would be %s, which "
			                "llama-quantize refuses to write without one",
			                o->recipe ? qa_recipe_name(o->recipe) : qa_type_name(o->pure_type),
			                qa_ref_tensor_at(r, i)->name, qa_type_name(pe[i].type));
			goto done;
		}
	}
	if (!(order = calloc(n ? n : 1, sizeof *order)) || !(names = calloc(n ? n : 1, sizeof *names))) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		names[i] = qa_ref_tensor_at(r, i)->name;
	if ((e = qa_order_sort(names, n, order, d)))
		goto done;
	for (size_t k = 0; k < n; k++) {
		size_t i = order[k];
		const struct qa_ref_tensor *t = qa_ref_tensor_at(r, i);
		struct qa_quantize_item *it = &items[k];
		const struct qa_type_info *ti = qa_type_get(pe[i].type);
		it->tensor = t;
		it->plan = pe[i];
		it->n_dims = written_dims(t->ne, t->n_dims);
		memcpy(it->ne, t->ne, sizeof it->ne);
		it->copied = (qa_ref_format(r) == QA_FORMAT_GGUF || qa_ref_tensor_quantized(t)) &&
		             pe[i].type == t->src_type &&
		             (!pe[i].quantized || o->layout == QA_LAYOUT_OUT_IN || t->n_dims != 2);
		if (qa_ref_tensor_quantized(t) && !it->copied) {
			/* llama-quantize: "requantizing from type mxfp4 is disabled" */
			e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                "tensor %s is %s in the reference and would be %s: llama-quantize "
			                "refuses to requantize it (only a recipe that keeps %s, such as "
			                "MXFP4_MOE, can be made from it)", t->name, qa_type_name(t->src_type),
			                qa_type_name(pe[i].type), qa_type_name(t->src_type));
			goto done;
		}
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
	free(order);
	free(names);
	free(pe);
	free(items);
	return e;
}

/* Copy a reference tensor's bytes unchanged, 1 MiB at a time: a GGUF
 * reference's as stored, a quantized safetensors one's as the converter
 * repacks them (qa_ref_read_raw). */
static enum qa_err copy_tensor(struct qa_ref *r, const struct qa_quantize_item *it,
                               struct qa_gguf_writer *w, struct qa_diag *d)
{
	struct qa_gguf *g = qa_ref_gguf(r);
	if (!g) {
		const struct qa_ref_tensor *t = it->tensor;
		uint64_t in = t->ne[0], rows = t->n_elems / in, row_bytes = it->nbytes / rows;
		uint64_t per = ((uint64_t)1 << 20) / row_bytes ? ((uint64_t)1 << 20) / row_bytes : 1;
		uint8_t *buf = malloc((size_t)(per * row_bytes));
		if (!buf)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		enum qa_err e = QA_OK;
		for (uint64_t r0 = 0; !e && r0 < rows; r0 += per) {
			uint64_t k = rows - r0 < per ? rows - r0 : per;
			if (!(e = qa_ref_read_raw(r, t, r0, k, buf, d)))
				e = qa_gguf_writer_write(w, buf, (size_t)(k * row_bytes), d);
		}
		free(buf);
		return e;
	}
	const struct qa_gguf_tensor *s = qa_gguf_tensor_at(g, it->tensor->src_index);
	if (!s || s->nbytes != it->nbytes)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "tensor %s cannot be copied",
		                   it->tensor->name);
	size_t cap = 1u << 20;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	enum qa_err e = QA_OK;
	for (uint64_t off = 0; !e && off < s->nbytes; off += cap) {
		size_t k = s->nbytes - off < cap ? (size_t)(s->nbytes - off) : cap;
		if (!(e = qa_gguf_tensor_read(g, s, off, k, buf, d)))
			e = qa_gguf_writer_write(w, buf, k, d);
	}
	free(buf);
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

/*
 * llama-quantize's tensor_requires_imatrix: it refuses the very low-bit
 * types (iq2_xxs, iq2_xs, iq2_s, iq1_s, iq1_m, iq3_xxs) for a tensor it has
 * no importance weights for, except token_embd and output.  unweighted says
 * the tensor is quantized without weights.
 */
static enum qa_err check_llama_imatrix(const char *name, uint32_t type, bool unweighted,
                                       struct qa_diag *d)
{
	const struct qa_quant_ops *ops = qa_quant_ops(type);
	if (!unweighted || !ops || !ops->llama_requires_imatrix || strcmp(name, "token_embd.weight") == 0 ||
	    strcmp(name, "per_layer_token_embd.weight") == 0 || strcmp(name, "output.weight") == 0)
		return QA_OK;
	return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
	                   "tensor %s: type %s needs an importance matrix (--imatrix with an entry for it), "
	                   "as llama-quantize requires", name, qa_type_name(type));
}

/*
 * The streamed path's buffers, kept from tensor to tensor so that their
 * pages are faulted in once per run rather than once per tensor.
 */
struct stream_bufs {
	float *f;
	uint8_t *q;
	size_t f_cap, q_cap;
};

/* About 4 MiB of floats per window (at least one row). */
#define STREAM_WINDOW_ELEMS ((uint64_t)1 << 20)

static bool grow(void **p, size_t *cap, size_t want)
{
	if (want <= *cap)
		return true;
	void *n = realloc(*p, want);
	if (!n)
		return false;
	*p = n;
	*cap = want;
	return true;
}

/*
 * Whether tensor t can be streamed through a window of whole rows: rows as
 * stored (no layout trial, no row permutation, no transposing MoE assembly), no block padding, and
 * importance weights, if any, shared by every row (one expert).
 */
static bool streamable(const struct qa_quantize_item *it, const struct qa_quantize_weights *wt,
                       uint64_t in)
{
	const struct qa_ref_tensor *t = it->tensor;
	const struct qa_type_info *ti = qa_type_get(it->plan.type);
	return ti && !it->layout_applied && t->perm == QA_PERM_NONE && in > 0 && in % ti->block_elems == 0 &&
	       (t->assembly == QA_REF_DIRECT || t->assembly == QA_REF_STACK ||
	        t->assembly == QA_REF_GENERATED) && /* see qa_ref_read_f32_range */
	       it->ne[0] == in && (!wt->qw || wt->n_expert <= 1);
}

/*
 * Quantize and write tensor t window by window: read whole rows as floats
 * (at most STREAM_WINDOW_ELEMS, or one row), refuse non-finite values
 * (reporting the element's index in the tensor), quantize, append.  The
 * bytes are those of the whole-tensor path: every type's rows are
 * independent of each other.
 */
static enum qa_err stream_tensor(struct qa_ref *r, const struct qa_quantize_opts *o,
                                 const struct qa_quantize_item *it,
                                 const struct qa_quantize_weights *wt, uint64_t in, uint64_t rows,
                                 struct stream_bufs *b, struct qa_gguf_writer *w, struct qa_diag *d)
{
	const struct qa_ref_tensor *t = it->tensor;
	const struct qa_type_info *ti = qa_type_get(it->plan.type);
	uint64_t row_bytes = in / ti->block_elems * ti->block_bytes;
	uint64_t per = STREAM_WINDOW_ELEMS / in ? STREAM_WINDOW_ELEMS / in : 1;
	if (per > rows)
		per = rows;
	uint64_t q_bytes = per * row_bytes;
	if (!grow((void **)&b->f, &b->f_cap, (size_t)(per * in * sizeof(float))) ||
	    !grow((void **)&b->q, &b->q_cap, (size_t)(q_bytes ? q_bytes : 1)))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for tensor %s", t->name);
	enum qa_err e = QA_OK;
	for (uint64_t r0 = 0; !e && r0 < rows; r0 += per) {
		uint64_t k = rows - r0 < per ? rows - r0 : per;
		size_t n = (size_t)(k * in);
		if ((e = qa_ref_read_f32_range(r, t, r0 * in, n, b->f, d)) ||
		    (e = check_finite_at(t, b->f, n, r0 * in, d)) ||
		    (e = qa_quantize_tensor_weighted(b->f, in, k, it->plan.type, QA_LAYOUT_OUT_IN, wt,
		                                     o->n_threads, b->q, d)))
			break;
		e = qa_gguf_writer_write(w, b->q, (size_t)(k * row_bytes), d);
	}
	return e;
}

static enum qa_err write_tensor(struct qa_ref *r, const struct qa_quantize_opts *o,
                                const struct qa_quantize_item *it, struct stream_bufs *b,
                                struct qa_gguf_writer *w, struct qa_diag *d)
{
	const struct qa_ref_tensor *t = it->tensor;
	if (it->copied)
		return copy_tensor(r, it, w, d);
	uint64_t in, rows;
	dims2(t->ne, &in, &rows);
	struct qa_quantize_weights wt = { NULL, it->ne[0], t->ne[2] };
	enum qa_err e;
	/*
	 * Streamed when the importance weights are found and the type needs
	 * none it lacks; otherwise the whole-tensor path, which reports a
	 * non-finite value before an imatrix problem.
	 */
	struct qa_diag ignored;
	qa_diag_clear(&ignored);
	const struct qa_quant_ops *ops = qa_quant_ops(it->plan.type);
	bool weights_ok = !o->imatrix || !it->plan.quantized ||
	                  qa_imatrix_weights(o->imatrix, t->name, t->ne[0], t->ne[2], &wt.qw, &ignored) == QA_OK;
	if (weights_ok && streamable(it, &wt, in) &&
	    !(it->plan.quantized && !wt.qw && ops && ops->llama_requires_imatrix))
		return stream_tensor(r, o, it, &wt, in, rows, b, w, d);
	wt.qw = NULL;
	float *f = malloc((size_t)t->n_elems * sizeof *f);
	uint8_t *q = malloc(it->nbytes ? (size_t)it->nbytes : 1);
	if (!f || !q) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for tensor %s", t->name);
		goto done;
	}
	if ((e = qa_ref_read_f32(r, t, f, d)))
		goto done;
	if ((e = qa_quantize_check_finite(t, f, d)))
		goto done;
	if (o->imatrix && it->plan.quantized &&
	    (e = qa_imatrix_weights(o->imatrix, t->name, t->ne[0], t->ne[2], &wt.qw, d)))
		goto done;
	if ((e = check_llama_imatrix(t->name, it->plan.type, it->plan.quantized && !wt.qw, d)))
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

/* gguf's set on a plan: the key moves to the end with its new value. */
static enum qa_err plan_set(struct qa_quantize_kv **kv, size_t *n, size_t *cap, const char *key,
                           const struct qa_gguf_value *v, struct qa_diag *d)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*kv)[i].key, key) == 0) {
			memmove(&(*kv)[i], &(*kv)[i + 1], (*n - i - 1) * sizeof **kv);
			(*n)--;
			break;
		}
	if (!v)
		return QA_OK;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		struct qa_quantize_kv *p = realloc(*kv, nc * sizeof *p);
		if (!p)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		*kv = p;
		*cap = nc;
	}
	(*kv)[*n].key = key;
	(*kv)[*n].value = *v;
	(*n)++;
	return QA_OK;
}

enum qa_err qa_quantize_kv_plan(const struct qa_ref *r, const struct qa_quantize_opts *o,
                                uint32_t ftype, struct qa_quantize_kv **out, size_t *n_out,
                                struct qa_diag *d)
{
	static const char *const split_keys[] = { "split.no", "split.count", "split.tensors.count" };
	struct qa_gguf *g = qa_ref_gguf(r);
	struct qa_quantize_kv *kv = NULL;
	size_t n = 0, cap = 0;
	enum qa_err e = QA_OK;
	*out = NULL;
	*n_out = 0;
	if (!g)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "llama-quantize's metadata needs a GGUF reference");
	for (size_t i = 0; !e && i < qa_gguf_n_kv(g); i++) {
		const struct qa_gguf_kv *k = qa_gguf_kv_at(g, i);
		e = plan_set(&kv, &n, &cap, k->key, &k->value, d);
	}
	struct qa_gguf_value qv = { .type = QA_GGUF_U32, .v.u = QA_QNT_VERSION };
	struct qa_gguf_value ft = { .type = QA_GGUF_U32, .v.u = ftype };
	if (!e)
		e = plan_set(&kv, &n, &cap, "general.quantization_version", &qv, d);
	if (!e)
		e = plan_set(&kv, &n, &cap, "general.file_type", &ft, d);
	for (size_t i = 0; !e && i < sizeof split_keys / sizeof split_keys[0]; i++)
		e = plan_set(&kv, &n, &cap, split_keys[i], NULL, d);
	for (size_t i = 0; !e && i < o->n_kv_overrides; i++) {
		struct qa_gguf_value v;
		qa_kv_override_value(&o->kv_overrides[i], &v);
		e = plan_set(&kv, &n, &cap, o->kv_overrides[i].key, &v, d);
	}
	if (!e && o->imatrix) {
		/* llama-quantize's own overrides, after the user's: the file as given
		 * and the first dataset, each cut to 127 bytes, then the counts as u32 */
		const struct qa_imatrix_info *in = qa_imatrix_info(o->imatrix);
		const char *file = o->imatrix_file ? o->imatrix_file : "";
		struct qa_gguf_value fv = { .type = QA_GGUF_STRING };
		fv.v.str.ptr = file;
		fv.v.str.len = strlen(file) > 127 ? 127 : strlen(file);
		e = plan_set(&kv, &n, &cap, "quantize.imatrix.file", &fv, d);
		if (!e && in->dataset) {
			struct qa_gguf_value dv = { .type = QA_GGUF_STRING };
			dv.v.str.ptr = in->dataset;
			dv.v.str.len = strlen(in->dataset) > 127 ? 127 : strlen(in->dataset);
			e = plan_set(&kv, &n, &cap, "quantize.imatrix.dataset", &dv, d);
		}
		struct qa_gguf_value ev = { .type = QA_GGUF_U32, .v.u = (uint32_t)in->n_entries };
		if (!e)
			e = plan_set(&kv, &n, &cap, "quantize.imatrix.entries_count", &ev, d);
		struct qa_gguf_value cv = { .type = QA_GGUF_U32, .v.u = (uint32_t)in->chunk_count };
		if (!e && in->chunk_count > 0)
			e = plan_set(&kv, &n, &cap, "quantize.imatrix.chunks_count", &cv, d);
	}
	if (e) {
		free(kv);
		return e;
	}
	*out = kv;
	*n_out = n;
	return QA_OK;
}

/* The metadata in llama-quantize's order (see quantize.h). */
static enum qa_err write_metadata(const struct qa_ref *r, const struct qa_quantize_opts *o,
                                  uint32_t ftype, struct qa_gguf_writer *w, struct qa_diag *d)
{
	enum qa_err e;
	if (qa_ref_gguf(r)) {
		struct qa_quantize_kv *kv;
		size_t n;
		if ((e = qa_quantize_kv_plan(r, o, ftype, &kv, &n, d)))
			return e;
		for (size_t i = 0; !e && i < n; i++)
			e = qa_gguf_writer_add_kv(w, kv[i].key, &kv[i].value, d);
		free(kv);
		return e;
	}
	/* safetensors: quantaudit's own keys, then the same settings */
	struct qa_gguf_value qv = { .type = QA_GGUF_U32, .v.u = QA_QNT_VERSION };
	struct qa_gguf_value ft = { .type = QA_GGUF_U32, .v.u = ftype };
	if ((e = qa_ref_write_metadata(r, w, d)) ||
	    (e = qa_gguf_writer_add_kv(w, "general.quantization_version", &qv, d)) ||
	    (e = qa_gguf_writer_add_kv(w, "general.file_type", &ft, d)))
		return e;
	for (size_t i = 0; i < o->n_kv_overrides; i++) {
		struct qa_gguf_value v;
		qa_kv_override_value(&o->kv_overrides[i], &v);
		qa_gguf_writer_remove_kv(w, o->kv_overrides[i].key);
		if ((e = qa_gguf_writer_add_kv(w, o->kv_overrides[i].key, &v, d)))
			return e;
	}
	return write_imatrix_keys(w, o, d);
}

enum qa_err qa_quantize_model(struct qa_ref *r, const struct qa_quantize_opts *o,
                              const char *out_path, struct qa_diag *d)
{
	return qa_quantize_model_located(r, o, out_path, NULL, NULL, d);
}

enum qa_err qa_quantize_model_located(struct qa_ref *r, const struct qa_quantize_opts *o,
                                      const char *out_path,
                                      void (*located)(void *ctx, const struct qa_gguf_writer *w),
                                      void *ctx, struct qa_diag *d)
{
	struct qa_quantize_item *items = NULL;
	struct qa_gguf_writer *w = NULL;
	struct stream_bufs bufs = { NULL, NULL, 0, 0 };
	uint32_t ftype = 0;
	size_t n = qa_ref_n_tensors(r);
	bool data = false;
	enum qa_err e = qa_quantize_plan(r, o, &items, &ftype, d);
	if (e)
		return e;
	if ((e = qa_gguf_writer_open_tap(&w, out_path, o->tap, o->tap_ctx, d)))
		goto done;
	/* llama-quantize's output context pads to 32 whatever general.alignment says */
	qa_gguf_writer_pin_alignment(w, QA_GGUF_DEFAULT_ALIGNMENT);
	if ((e = write_metadata(r, o, ftype, w, d)))
		goto done;
	for (size_t i = 0; i < n; i++)
		if ((e = qa_gguf_writer_add_tensor(w, items[i].tensor->name, items[i].plan.type,
		                                   items[i].n_dims, items[i].ne, d)))
			goto done;
	if ((e = qa_gguf_writer_begin_data(w, d)))
		goto done;
	data = true;
	for (size_t i = 0; i < n; i++) {
		if ((e = write_tensor(r, o, &items[i], &bufs, w, d)))
			goto done;
		if (o->progress)
			o->progress(o->progress_ctx, i + 1, n, items[i].tensor->name);
	}
	e = qa_gguf_writer_commit(w, d);
done:
	if (located && data)
		located(ctx, w);
	qa_gguf_writer_free(w);
	free(bufs.f);
	free(bufs.q);
	free(items);
	return e;
}

enum qa_err qa_kv_override_parse(const char *arg, struct qa_kv_override *out,
                                 struct qa_diag *d)
{
	memset(out, 0, sizeof *out);
	const char *sep = arg ? strchr(arg, '=') : NULL;
	if (!sep || sep == arg || (size_t)(sep - arg) >= sizeof out->key)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "--override-kv needs KEY=TYPE:VALUE with a key below 128 bytes");
	memcpy(out->key, arg, (size_t)(sep - arg));
	out->key[sep - arg] = '\0';
	const char *v = sep + 1;
	char *end;
	if (strncmp(v, "int:", 4) == 0) {
		errno = 0;
		long long x = strtoll(v + 4, &end, 10);
		if (end == v + 4 || *end || errno)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "--override-kv %s: '%s' is not an integer", out->key, v + 4);
		out->tag = QA_KVO_INT;
		out->i = x;
	} else if (strncmp(v, "float:", 6) == 0) {
		errno = 0;
		double x = strtod(v + 6, &end);
		if (end == v + 6 || *end || errno)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "--override-kv %s: '%s' is not a number", out->key, v + 6);
		out->tag = QA_KVO_FLOAT;
		out->f = x;
	} else if (strncmp(v, "bool:", 5) == 0) {
		if (strcmp(v + 5, "true") != 0 && strcmp(v + 5, "false") != 0)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "--override-kv %s: a bool is true or false", out->key);
		out->tag = QA_KVO_BOOL;
		out->b = strcmp(v + 5, "true") == 0;
	} else if (strncmp(v, "str:", 4) == 0) {
		size_t len = strlen(v + 4);
		if (len > 127)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "--override-kv %s: a string value cannot exceed 127 bytes", out->key);
		out->tag = QA_KVO_STR;
		memcpy(out->str, v + 4, len + 1);
	} else {
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "--override-kv %s: the type is int, float, bool or str", out->key);
	}
	return QA_OK;
}

void qa_kv_override_value(const struct qa_kv_override *o, struct qa_gguf_value *out)
{
	memset(out, 0, sizeof *out);
	switch (o->tag) {
	case QA_KVO_INT:
		out->type = QA_GGUF_U32;
		/* (uint32_t)std::abs(int64): the magnitude's low 32 bits */
		out->v.u = (uint32_t)(o->i < 0 ? 0 - (uint64_t)o->i : (uint64_t)o->i);
		break;
	case QA_KVO_FLOAT:
		out->type = QA_GGUF_F32;
		out->v.f = (double)(float)o->f;
		break;
	case QA_KVO_BOOL:
		out->type = QA_GGUF_BOOL;
		out->v.b = o->b;
		break;
	case QA_KVO_STR:
		out->type = QA_GGUF_STRING;
		out->v.str.ptr = o->str;
		out->v.str.len = strlen(o->str);
		break;
	}
}
