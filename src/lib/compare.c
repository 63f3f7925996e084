/*
 * compare.c - the diff and shape-swap audits.
 *
 * Each audited tensor is one work item on the thread pool: the worker reads
 * the reference tensor as f32 (once), re-quantizes it under the candidate
 * layouts into a scratch buffer, and walks both sides block by block,
 * comparing SHA-256 digests.  Error figures are accumulated in double
 * precision in a fixed order, so results do not depend on the thread count.
 */
#define _POSIX_C_SOURCE 200809L
#include "compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "forensics.h"
#include "gguf.h"
#include "manifest.h"
#include "model.h"
#include "names.h"
#include "part.h"
#include "pool.h"
#include "quant.h"
#include "quantize.h"
#include "recipe.h"
#include "reproduce.h"
#include "source.h"
#include "types.h"
#include "json_scan.h"
#include "util.h"
#include "compare_json.h"

static const char *const verdict_names[QA_VERDICT_COUNT] = {
	"identical", "layout-swap", "transposed", "divergent",
	"missing", "extra", "shape-mismatch", "unsupported-type",
	"unpermuted", "imatrix", "needs-imatrix",
};

const char *qa_verdict_name(enum qa_verdict v)
{
	return (unsigned)v < QA_VERDICT_COUNT ? verdict_names[v] : "?";
}

/* SHA-256 and size of the whole of an open source (the inputs of a result),
 * read in windows released behind the hash. */
static enum qa_err source_sha256(struct qa_source *src, uint64_t *size,
                                 uint8_t out[QA_SHA256_LEN], struct qa_diag *d)
{
	*size = qa_source_size(src);
	return qa_source_sha256(src, out, d);
}

/* Compare two byte strings in blocks of bb bytes (the last block of each
 * may be partial; blocks of different lengths differ).  Blocks past the
 * shorter side count as divergent.  bitmap (optional) gets one bit per
 * block of the longer side.  Both sides are in memory, so equal blocks are
 * equal bytes: memcmp decides what equal SHA-256 digests would. */
static void compare_blocks(const uint8_t *a, uint64_t na, const uint8_t *b, uint64_t nb,
                           uint64_t bb, uint64_t *divergent, uint64_t *first, uint8_t *bitmap)
{
	uint64_t ba = qa_blockhash_n_blocks(na, bb), bbn = qa_blockhash_n_blocks(nb, bb);
	uint64_t common = ba < bbn ? ba : bbn, total = ba > bbn ? ba : bbn;
	*divergent = 0;
	*first = QA_NO_BLOCK;
	for (uint64_t i = 0; i < total; i++) {
		bool diff = true;
		if (i < common) {
			uint64_t off = i * bb, la = na - off < bb ? na - off : bb, lb = nb - off < bb ? nb - off : bb;
			diff = la != lb || memcmp(a + off, b + off, (size_t)la) != 0;
		}
		if (diff) {
			if (*first == QA_NO_BLOCK)
				*first = i;
			(*divergent)++;
			if (bitmap)
				bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
		}
	}
}

bool qa_diff_block_divergent(const struct qa_diff_tensor *t, uint64_t b)
{
	return t->divergence && b < t->blocks && (t->divergence[b / 8] >> (b % 8)) & 1u;
}

/* Running sums of the error of dequantized values against the reference,
 * added in element order (so a tensor walked in windows gets exactly the
 * sums of one pass over the whole). */
struct err_acc {
	double sum, mx;
};

static void error_add(uint32_t type, const uint8_t *q, const float *ref, uint64_t n,
                      struct err_acc *a)
{
	const struct qa_type_info *t = qa_type_get(type);
	const struct qa_quant_ops *ops = qa_quant_ops(type);
	enum { CHUNK = 8192 };
	float buf[CHUNK];
	double sum = a->sum, mx = a->mx;
	uint64_t step = CHUNK / t->block_elems * t->block_elems;
	for (uint64_t i = 0; i < n; i += step) {
		uint64_t m = n - i < step ? n - i : step;
		ops->dequantize(q + i / t->block_elems * t->block_bytes, buf, (size_t)m);
		for (uint64_t k = 0; k < m; k++) {
			double e = (double)buf[k] - (double)ref[i + k];
			sum += e * e;
			if (fabs(e) > mx)
				mx = fabs(e);
		}
	}
	a->sum = sum;
	a->mx = mx;
}

static void error_finish(const struct err_acc *a, uint64_t n, double *rmse, double *max_abs)
{
	*rmse = n ? sqrt(a->sum / (double)n) : 0;
	*max_abs = a->mx;
}

/* RMSE and max abs error of the n values dequantized from q (type) against ref. */
static void error_figures(uint32_t type, const uint8_t *q, const float *ref, uint64_t n,
                          double *rmse, double *max_abs)
{
	struct err_acc a = { 0, 0 };
	error_add(type, q, ref, n, &a);
	error_finish(&a, n, rmse, max_abs);
}

static int layer_of(const char *name)
{
	uint32_t l;
	return qa_names_layer(name, &l) && l <= INT32_MAX ? (int)l : -1;
}

/*
 * The parallel part both audits share: one diag per item, and a work order
 * that hands out the biggest items first so that a large embedding does not
 * start last.  Items write only their own slots.
 */
struct audit_pool {
	unsigned n_threads;
	size_t *order;           /* item indices, biggest first */
	size_t n_work;
	struct qa_diag *diags;   /* indexed by item */
	size_t failed;           /* the item whose diag a failed run reports */
};

static void audit_pool_free(struct audit_pool *p)
{
	free(p->order);
	free(p->diags);
	memset(p, 0, sizeof *p);
}

/*
 * Run fn over the n_work items listed in work (indices below n_items, each
 * weighted by sizes[index]) on n_threads threads.  On failure d receives the
 * diag of the failing item that comes first in the work order.
 */
static enum qa_err audit_pool_run(unsigned n_threads, size_t n_items, const size_t *work,
                                  size_t n_work, const uint64_t *sizes, qa_pool_fn fn,
                                  void *ctx, struct audit_pool *p, struct qa_diag *d)
{
	p->n_threads = n_threads ? n_threads : qa_pool_default_threads();
	p->order = calloc(n_work + 1, sizeof *p->order);
	p->diags = calloc(n_items + 1, sizeof *p->diags);
	if (!p->order || !p->diags)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	memcpy(p->order, work, n_work * sizeof *work);
	if (!qa_pool_order_by_weight(p->order, n_work, sizes))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	p->n_work = n_work;
	enum qa_err e = qa_pool_run(p->n_threads, n_work, fn, ctx);
	if (e) {
		qa_diag_clear(d);
		for (size_t k = 0; k < n_work; k++)
			if (p->diags[p->order[k]].code != QA_OK) {
				*d = p->diags[p->order[k]];
				p->failed = p->order[k];
				break;
			}
		if (d->code == QA_OK)
			qa_diag_set(d, e, QA_NO_OFFSET, "%s", qa_err_name(e));
	}
	return e;
}

/* ------------------------------------------------------------------ diff */

struct diff_ctx {
	struct qa_ref *ref;
	struct qa_gguf *art;
	struct qa_diff_result *res;
	const struct qa_imatrix *imatrix;
	uint64_t window;              /* weights per window, QA_DIFF_WHOLE: none */
	size_t n_paired;              /* items below are tensors, the rest file hashes */
	size_t n_hash;
	struct qa_source *hash_src[2];
	uint64_t *hash_size[2];
	uint8_t *hash_out[2];
	bool hash_done[2];
	bool *art_fault;              /* per item: its error came from the artifact */
	struct audit_pool pool;
};

static bool is_float_type(uint32_t t)
{
	return t == QA_TYPE_F32 || t == QA_TYPE_F16 || t == QA_TYPE_BF16;
}

/*
 * The layout audit of a 3-D expert tensor, slice by slice: an exporter may
 * get one expert's matrix wrong and the others right.  Each expert's slice
 * of the artifact (ne[1] rows of ne[0], whole rows of blocks) is compared
 * with ggml's out,in re-quantization (q, already made for the whole tensor),
 * then with the slice quantized in,out and transposed (with the expert's own
 * importance weights where the layout lets them apply).
 */
static enum qa_err expert_layouts(struct qa_diff_tensor *dt, const struct qa_ref_tensor *rt,
                                  uint32_t type, const float *w, const uint8_t *abytes,
                                  const uint8_t *q, const struct qa_quantize_weights *wt,
                                  struct qa_diag *d)
{
	uint64_t in = rt->ne[0], out = rt->ne[1], E = rt->ne[2], slice;
	if (!qa_quantize_nbytes(type, in, out, QA_LAYOUT_OUT_IN, &slice) || slice * E != dt->nbytes ||
	    E > UINT32_MAX)
		return QA_OK;
	int8_t *lay = malloc((size_t)E);
	uint8_t *buf = malloc(slice ? (size_t)slice : 1);
	enum qa_err e = QA_OK;
	if (!lay || !buf) {
		free(lay);
		free(buf);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	size_t per = (size_t)(in * out);
	for (uint64_t x = 0; x < E && !e; x++) {
		const uint8_t *art = abytes + x * slice;
		lay[x] = -1;
		if (memcmp(art, q + x * slice, (size_t)slice) == 0) {
			lay[x] = QA_LAYOUT_OUT_IN;
			continue;
		}
		struct qa_quantize_weights ew = { wt->qw ? wt->qw + x * in : NULL, in, 1 };
		for (int l = QA_LAYOUT_IN_OUT; l <= QA_LAYOUT_TRANSPOSED && lay[x] < 0; l++) {
			uint64_t nb;
			if (!qa_quantize_nbytes(type, in, out, (enum qa_layout)l, &nb) || nb != slice)
				continue;
			e = qa_quantize_tensor_weighted(w + x * per, in, out, type, (enum qa_layout)l,
			                                ew.qw ? &ew : NULL, 1, buf, d);
			if (e == QA_ERR_UNSUPPORTED) { /* the weights cannot follow this layout */
				e = QA_OK;
				continue;
			}
			if (!e && memcmp(art, buf, (size_t)slice) == 0)
				lay[x] = (int8_t)l;
		}
	}
	free(buf);
	if (e) {
		free(lay);
		return e;
	}
	dt->n_experts = (uint32_t)E;
	dt->expert_layout = lay;
	/* one wrong layout shared by every slice that is not out,in: the tensor's verdict */
	int other = -1;
	bool single = true;
	for (uint64_t x = 0; x < E; x++) {
		if (lay[x] < 0)
			single = false;
		else if (lay[x] != QA_LAYOUT_OUT_IN && other >= 0 && lay[x] != other)
			single = false;
		else if (lay[x] != QA_LAYOUT_OUT_IN)
			other = lay[x];
	}
	if (single && other >= 0) {
		dt->verdict = other == QA_LAYOUT_IN_OUT ? QA_VERDICT_LAYOUT_SWAP : QA_VERDICT_TRANSPOSED;
		dt->layout = other;
		dt->evidence = QA_EVIDENCE_BYTES;
	}
	return QA_OK;
}

/* Weights per window of the streamed comparison by default: 1 MiB of
 * floats, so a worker's window stays in its cache's reach however large the
 * tensor. */
#define WINDOW_ELEMS ((uint64_t)1 << 18)

/* Mark the blocks (bb bytes each, tensor offsets) where a and b, the len
 * bytes at tensor offset off of each side, differ. */
static void mark_divergent(const uint8_t *a, const uint8_t *b, uint64_t off, uint64_t len,
                           uint64_t bb, uint8_t *bitmap)
{
	if (memcmp(a, b, (size_t)len) == 0)
		return;
	for (uint64_t end = off + len; off < end;) {
		uint64_t blk = off / bb, stop = (blk + 1) * bb < end ? (blk + 1) * bb : end;
		if (memcmp(a, b, (size_t)(stop - off)) != 0)
			bitmap[blk / 8] |= (uint8_t)(1u << (blk % 8));
		a += stop - off;
		b += stop - off;
		off = stop;
	}
}

/* The element index of a non-finite weight, in qa_quantize_check_finite's words. */
static enum qa_err nonfinite_error(const struct qa_ref_tensor *t, const float *w, uint64_t i,
                                   struct qa_diag *d)
{
	bool renamed = strcmp(t->name, t->src_name) != 0;
	return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
	                   "tensor %s%s%s%s: element %llu is %s; non-finite weights cannot be quantized",
	                   t->src_name, renamed ? " (" : "", renamed ? t->name : "",
	                   renamed ? ")" : "", (unsigned long long)i,
	                   isnan(w[0]) ? "nan" : (w[0] > 0 ? "+inf" : "-inf"));
}

/*
 * Compare the expected bytes q with the artifact's [off, off + len) of at,
 * marking divergent blocks in bitmap; *abytes views the artifact's bytes
 * until the caller releases the range.  A read failure marks the artifact
 * tensor as faulty.
 */
static enum qa_err window_compare(struct diff_ctx *c, const struct qa_diff_tensor *dt,
                                  const struct qa_gguf_tensor *at, const uint8_t *q, uint64_t off,
                                  uint64_t len, uint64_t bb, uint8_t *bitmap, const void **abytes,
                                  struct qa_diag *d)
{
	enum qa_err e = qa_gguf_tensor_view_range(c->art, at, off, (size_t)len, abytes, d);
	if (e) {
		c->art_fault[dt - c->res->tensors] = true;
		return e;
	}
	mark_divergent(*abytes, q, off, len, bb, bitmap);
	return QA_OK;
}

/*
 * The out,in comparison of a tensor whose shape and byte count match its
 * reference, streamed: a window of reference rows at a time is read (its
 * source bytes released behind), checked, re-quantized and compared with
 * the same rows of the artifact by memcmp, and the error figures add up in
 * element order, exactly the sums of one pass over the whole tensor.  So a
 * worker holds one window of weights however large the tensor is.  When
 * every block matches, dt is complete (identical, by bytes) and *done is
 * set; otherwise the tensor needs the other layouts and error tables, and
 * the caller audits it whole (so does anything unusual here: importance
 * weights that are not there, experts with permuted rows).  Errors are
 * those the whole-tensor path would report first for the tensor.
 */
static enum qa_err diff_stream(struct diff_ctx *c, struct qa_diff_tensor *dt,
                               const struct qa_gguf_tensor *at, const struct qa_ref_tensor *rt,
                               bool *done, struct qa_diag *d)
{
	const struct qa_type_info *ti = qa_type_get(at->type);
	const struct qa_quant_ops *ops = qa_quant_ops(at->type);
	uint64_t in = rt->ne[0], rows = in ? rt->n_elems / in : 0;
	uint64_t bb = qa_blockhash_block_bytes(ti), row_bytes, align = qa_ref_row_align(c->ref, rt);
	struct qa_diag ignore;
	*done = false;
	if (!in || !rows || in % ti->block_elems || !qa_mul_u64(in / ti->block_elems, ti->block_bytes, &row_bytes) ||
	    rows > UINT64_MAX / row_bytes || rows * row_bytes != at->nbytes)
		return QA_OK;
	if (rt->perm != QA_PERM_NONE && qa_ref_format(c->ref) == QA_FORMAT_SAFETENSORS && align == 1)
		return QA_OK;
	struct qa_quantize_weights wt = { NULL, in, rt->ne[2] };
	if (c->imatrix && dt->quantized &&
	    qa_imatrix_weights(c->imatrix, dt->name, rt->ne[0], rt->ne[2], &wt.qw, &ignore))
		return QA_OK;
	if (!ops->quantize && !wt.qw)
		return QA_OK;
	uint64_t n_expert = wt.qw && ops->quantize_rows && wt.n_expert > 1 ? wt.n_expert : 1;
	if (rows % n_expert || (n_expert > 1 && align > 1))
		return QA_OK;
	uint64_t per_expert = rows / n_expert;
	uint64_t win = c->window / in / align * align;
	if (win == 0)
		win = align;
	if (win > rows)
		win = rows;
	float *w = malloc((size_t)(win * in) * sizeof *w);
	uint8_t *q = malloc((size_t)(win * row_bytes));
	uint8_t *bitmap = calloc((size_t)(dt->blocks / 8 + 1), 1);
	enum qa_err e = QA_OK;
	struct err_acc acc = { 0, 0 };
	if (!w || !q || !bitmap) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for tensor %s", dt->name);
		goto out;
	}
	for (uint64_t r0 = 0, n; r0 < rows; r0 += n) {
		uint64_t expert = r0 / per_expert, stop = (expert + 1) * per_expert;
		n = rows - r0 < win ? rows - r0 : win;
		if (r0 + n > stop)
			n = stop - r0;
		size_t ne = (size_t)(n * in), i;
		const void *abytes;
		struct qa_quantize_weights cw = { wt.qw ? wt.qw + expert * in : NULL, in, 1 };
		if ((e = qa_ref_read_rows_f32(c->ref, rt, r0, n, w, d)))
			goto out;
		if ((i = qa_quant_find_nonfinite(w, ne)) < ne) {
			e = nonfinite_error(rt, w + i, r0 * in + i, d);
			goto out;
		}
		if ((e = qa_quantize_tensor_weighted(w, in, n, at->type, QA_LAYOUT_OUT_IN, &cw, 1, q, d)))
			goto out;
		if ((e = window_compare(c, dt, at, q, r0 * row_bytes, n * row_bytes, bb, bitmap, &abytes, d)))
			goto out;
		qa_gguf_tensor_release(c->art, at, r0 * row_bytes, n * row_bytes);
		error_add(at->type, q, w, ne, &acc);
	}
	for (uint64_t b = 0; b < dt->blocks; b++)
		if ((bitmap[b / 8] >> (b % 8)) & 1u)
			goto out; /* divergent: the caller audits it whole */
	*done = true;
	dt->weighted = wt.qw && ops->quantize_rows;
	dt->divergent_blocks = 0;
	dt->first_divergent = QA_NO_BLOCK;
	dt->has_error = true;
	error_finish(&acc, rt->n_elems, &dt->requant_rmse, &dt->requant_max_abs);
	dt->rmse = dt->requant_rmse;
	dt->max_abs = dt->requant_max_abs;
	dt->verdict = QA_VERDICT_IDENTICAL;
	dt->layout = QA_LAYOUT_OUT_IN;
	dt->evidence = QA_EVIDENCE_BYTES;
out:
	free(w);
	free(q);
	free(bitmap);
	return e;
}

/* ggml_n_dims: the dimensions up to the last one larger than 1 (at least 1). */
static uint32_t ggml_dims(uint32_t n_dims, const uint64_t ne[4])
{
	while (n_dims > 1 && ne[n_dims - 1] == 1)
		n_dims--;
	return n_dims;
}

/*
 * A tensor the reference already holds in the artifact's type (gpt-oss's
 * MXFP4 experts under MXFP4_MOE): llama-quantize copies such a tensor
 * unchanged (quantize = cur_type != new_type), so the expected bytes are the
 * reference's own (qa_ref_read_raw), not a re-quantization, which would
 * differ wherever the checkpoint's scale is not ggml's choice.  Compared a
 * window of rows at a time; the error figures are those of the artifact's
 * values against the reference's (dequantized) ones.  A divergent copy is
 * not tried under other layouts.
 */
static enum qa_err diff_copied(struct diff_ctx *c, struct qa_diff_tensor *dt,
                               const struct qa_gguf_tensor *at, const struct qa_ref_tensor *rt,
                               struct qa_diag *d)
{
	const struct qa_type_info *ti = qa_type_get(at->type);
	uint64_t in = rt->ne[0], rows = in ? rt->n_elems / in : 0, bb = qa_blockhash_block_bytes(ti);
	uint64_t row_bytes = in / ti->block_elems * ti->block_bytes;
	uint64_t win = c->window == QA_DIFF_WHOLE ? rows : c->window / in;
	if (win == 0)
		win = 1;
	if (win > rows)
		win = rows;
	float *w = malloc((size_t)(win * in) * sizeof *w + 1);
	uint8_t *q = malloc((size_t)(win * row_bytes) + 1);
	uint8_t *bitmap = calloc((size_t)(dt->blocks / 8 + 1), 1);
	enum qa_err e = QA_OK;
	struct err_acc acc = { 0, 0 }, req = { 0, 0 };
	if (!w || !q || !bitmap) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for tensor %s", dt->name);
		goto out;
	}
	for (uint64_t r0 = 0, n; r0 < rows; r0 += n) {
		n = rows - r0 < win ? rows - r0 : win;
		const void *abytes;
		if ((e = qa_ref_read_raw(c->ref, rt, r0, n, q, d)) ||
		    (e = qa_ref_read_rows_f32(c->ref, rt, r0, n, w, d)))
			goto out;
		if ((e = window_compare(c, dt, at, q, r0 * row_bytes, n * row_bytes, bb, bitmap, &abytes, d)))
			goto out;
		error_add(at->type, abytes, w, n * in, &acc);
		error_add(at->type, q, w, n * in, &req);
		qa_gguf_tensor_release(c->art, at, r0 * row_bytes, n * row_bytes);
	}
	dt->divergent_blocks = 0;
	dt->first_divergent = QA_NO_BLOCK;
	for (uint64_t b = 0; b < dt->blocks; b++) {
		if (!((bitmap[b / 8] >> (b % 8)) & 1u))
			continue;
		if (!dt->divergent_blocks++)
			dt->first_divergent = b;
	}
	dt->has_error = true;
	error_finish(&acc, rt->n_elems, &dt->rmse, &dt->max_abs);
	error_finish(&req, rt->n_elems, &dt->requant_rmse, &dt->requant_max_abs);
	dt->layout = QA_LAYOUT_OUT_IN;
	dt->evidence = QA_EVIDENCE_BYTES;
	dt->verdict = QA_VERDICT_IDENTICAL;
	if (dt->divergent_blocks) {
		dt->verdict = QA_VERDICT_DIVERGENT;
		dt->layout = -1;
		dt->evidence = QA_EVIDENCE_NONE;
		dt->divergence = bitmap;
		bitmap = NULL;
	}
out:
	free(w);
	free(q);
	free(bitmap);
	return e;
}

/* One work item: a file's SHA-256 (items past the paired tensors) or the
 * audit of one paired tensor. */
static enum qa_err diff_hash_one(struct diff_ctx *c, size_t k, struct qa_diag *d)
{
	enum qa_err e = source_sha256(c->hash_src[k], c->hash_size[k], c->hash_out[k], d);
	c->hash_done[k] = e == QA_OK;
	return e;
}

static enum qa_err diff_one(void *vctx, size_t item, unsigned worker)
{
	struct diff_ctx *c = vctx;
	size_t i = c->pool.order[item];
	struct qa_diag *d = &c->pool.diags[i];
	(void)worker;
	if (i >= c->n_paired)
		return diff_hash_one(c, i - c->n_paired, d);
	struct qa_diff_tensor *dt = &c->res->tensors[i];
	const struct qa_gguf_tensor *at = qa_gguf_tensor_find(c->art, dt->name);
	const struct qa_ref_tensor *rt = qa_ref_tensor_find(c->ref, dt->name);
	const struct qa_type_info *ti = qa_type_get(at->type);
	const struct qa_quant_ops *ops = qa_quant_ops(at->type);
	uint64_t bb = qa_blockhash_block_bytes(ti);
	float *w = NULL, *wu = NULL, *deq = NULL, *deq_art = NULL, *rowbuf = NULL;
	uint8_t *q = NULL;
	const void *abytes;
	enum qa_err e = QA_OK;

	/* Types ggml quantizes only with importance weights need --imatrix. */
	bool producible = ops && (ops->quantize || (ops->quantize_rows && c->imatrix));
	if (!producible || !ops->dequantize || rt->src_type == QA_TYPE_COUNT) {
		bool weights_only = ops && !ops->quantize && ops->quantize_rows && ops->dequantize &&
		                    rt->src_type != QA_TYPE_COUNT;
		dt->verdict = weights_only ? QA_VERDICT_NEEDS_IMATRIX : QA_VERDICT_UNSUPPORTED;
		return QA_OK;
	}
	uint64_t in = rt->ne[0], out = rt->ne[1] * rt->ne[2] * rt->ne[3];
	/* dimensions as ggml_n_dims counts them: llama-quantize writes every
	 * tensor with trailing 1s dropped (qwen2moe's shared-expert gate,
	 * [1, n_embd] in HF and [n_embd, 1] in the converted file, is [n_embd]) */
	bool same = ggml_dims(at->n_dims, at->ne) == ggml_dims(rt->n_dims, rt->ne) &&
	            memcmp(at->ne, rt->ne, sizeof at->ne) == 0;
	uint64_t padded_out = (out + ti->block_elems - 1) / ti->block_elems * ti->block_elems;
	bool swapped = !same && rt->n_dims == 2 && at->n_dims == 2 && at->ne[1] == in &&
	               (at->ne[0] == out || at->ne[0] == padded_out);
	if (!same && !swapped) {
		dt->verdict = QA_VERDICT_SHAPE_MISMATCH;
		return QA_OK;
	}
	if (same && qa_ref_tensor_quantized(rt) && rt->src_type == at->type)
		return diff_copied(c, dt, at, rt, d);
	if (same && c->window != QA_DIFF_WHOLE) {
		bool done;
		if ((e = diff_stream(c, dt, at, rt, &done, d)) || done)
			return e;
	}
	if ((e = qa_gguf_tensor_view(c->art, at, &abytes, d)))
		return e;
	w = malloc((size_t)rt->n_elems * sizeof *w);
	q = malloc(at->nbytes ? (size_t)at->nbytes : 1);
	if (!w || !q) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for tensor %s", dt->name);
		goto done;
	}
	if ((e = qa_ref_read_f32(c->ref, rt, w, d)) ||
	    (e = qa_quantize_check_finite(rt, w, d)))
		goto done;
	/* --imatrix: the weights llama-quantize used for this tensor, if any
	 * (lengths were checked before the audit started) */
	struct qa_quantize_weights wt = { NULL, rt->ne[0], rt->ne[2] };
	if (c->imatrix && dt->quantized &&
	    (e = qa_imatrix_weights(c->imatrix, dt->name, rt->ne[0], rt->ne[2], &wt.qw, d)))
		goto done;
	dt->weighted = wt.qw && ops->quantize_rows;
	if (!ops->quantize && !wt.qw) {
		/* the matrix has no entry for this tensor, and ggml refuses the type without one */
		dt->verdict = QA_VERDICT_NEEDS_IMATRIX;
		goto done;
	}

	/* Candidate layouts in order of preference; only those producing the
	 * artifact's byte count can match.  When no layout matches by bytes,
	 * each one tried is measured by error (forensics.h). */
	enum qa_names_perm perm = rt->n_dims == 2 ? qa_names_permutation(c->res->arch, dt->name) : QA_PERM_NONE;
	const struct qa_ref_info *info = qa_ref_info(c->ref);
	uint32_t heads = perm == QA_PERM_Q ? info->n_head : perm == QA_PERM_K ? info->n_head_kv : 0;
	struct qa_layout_errors le;
	memset(&le, 0, sizeof le);
	bool first_done = false, any_error = false;
	for (int l = 0; l < QA_FX_LAYOUTS; l++) {
		enum qa_layout geo = l == QA_FX_UNPERMUTED ? QA_LAYOUT_OUT_IN : (enum qa_layout)l;
		const float *src = w;
		uint64_t nbytes;
		if (l != QA_LAYOUT_OUT_IN && rt->n_dims != 2)
			continue;
		if (!qa_quantize_nbytes(at->type, in, out, geo, &nbytes) || nbytes != at->nbytes)
			continue;
		if (geo == QA_LAYOUT_OUT_IN && !same)
			continue;
		/* in,out cuts the flat data exactly as out,in when both
		 * dimensions are whole blocks: nothing new to learn */
		if (l == QA_LAYOUT_IN_OUT && same && in % ti->block_elems == 0 && out % ti->block_elems == 0)
			continue;
		if (l == QA_FX_UNPERMUTED) {
			struct qa_diag ignore;
			if (!heads)
				continue;
			if (!wu && !(wu = malloc((size_t)rt->n_elems * sizeof *wu))) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				goto done;
			}
			if (qa_forensics_unpermute(w, wu, out, in, heads, &ignore))
				continue;
			src = wu;
		}
		e = qa_quantize_tensor_weighted(src, in, out, at->type, geo, &wt, 1, q, d);
		if (e == QA_ERR_UNSUPPORTED && l != QA_LAYOUT_OUT_IN) {
			/* the weights cannot follow this layout: it cannot be matched */
			e = QA_OK;
			continue;
		}
		if (e)
			goto done;
		uint64_t div, first;
		uint8_t *bitmap = NULL;
		if (l == QA_LAYOUT_OUT_IN) {
			bitmap = calloc((size_t)(dt->blocks / 8 + 1), 1);
			if (!bitmap) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				goto done;
			}
		}
		compare_blocks(abytes, at->nbytes, q, nbytes, bb, &div, &first, bitmap);
		if (l == QA_LAYOUT_OUT_IN) {
			first_done = true;
			dt->divergent_blocks = div;
			dt->first_divergent = first;
			if (div)
				dt->divergence = bitmap;
			else
				free(bitmap);
			if (same) {
				dt->has_error = true;
				error_figures(at->type, q, w, rt->n_elems, &dt->requant_rmse, &dt->requant_max_abs);
				if (div == 0) { /* the same bytes: the same error */
					dt->rmse = dt->requant_rmse;
					dt->max_abs = dt->requant_max_abs;
				} else {
					error_figures(at->type, abytes, w, rt->n_elems, &dt->rmse, &dt->max_abs);
				}
			}
		}
		if (div == 0) {
			dt->verdict = l == QA_LAYOUT_OUT_IN ? QA_VERDICT_IDENTICAL :
			              l == QA_LAYOUT_IN_OUT ? QA_VERDICT_LAYOUT_SWAP :
			              l == QA_LAYOUT_TRANSPOSED ? QA_VERDICT_TRANSPOSED : QA_VERDICT_UNPERMUTED;
			dt->layout = l;
			dt->evidence = QA_EVIDENCE_BYTES;
			goto done;
		}
		/* the error under this layout, of the artifact and of ggml's own re-quantization */
		struct qa_layout_geom g;
		if (rt->n_dims != 2 || !qa_layout_geom(geo, in, out, ti->block_elems, &g))
			continue;
		uint64_t nv = nbytes / ti->block_bytes * ti->block_elems;
		if (!deq) {
			deq = malloc((size_t)nv * sizeof *deq);
			deq_art = malloc((size_t)nv * sizeof *deq_art);
			/* a row of any layout: max(in, out) plus padding to a block */
			rowbuf = malloc((size_t)(in + out + ti->block_elems) * sizeof *rowbuf);
			if (!deq || !deq_art || !rowbuf) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				goto done;
			}
			ops->dequantize(abytes, deq_art, (size_t)nv);
		}
		ops->dequantize(q, deq, (size_t)nv);
		le.tried[l] = true;
		le.noise[l] = qa_forensics_layout_rmse(geo, src, in, out, &g, deq, rowbuf);
		le.rmse[l] = qa_forensics_layout_rmse(geo, src, in, out, &g, deq_art, rowbuf);
		any_error = true;
	}
	dt->verdict = QA_VERDICT_DIVERGENT;
	if (!first_done) {
		/* no out,in comparison was possible (size differs): every block differs */
		dt->divergent_blocks = dt->blocks;
		dt->first_divergent = dt->blocks ? 0 : QA_NO_BLOCK;
	}
	if (any_error) {
		dt->has_layout_errors = true;
		dt->layout_errors = le;
		int l = qa_forensics_layout_by_error(&le);
		if (l >= 0) {
			dt->verdict = l == QA_LAYOUT_IN_OUT ? QA_VERDICT_LAYOUT_SWAP :
			              l == QA_LAYOUT_TRANSPOSED ? QA_VERDICT_TRANSPOSED : QA_VERDICT_UNPERMUTED;
			dt->layout = l;
			dt->evidence = QA_EVIDENCE_ERROR;
		}
	}
	if (first_done && same && rt->n_dims == 3 && rt->ne[2] > 1 && rt->ne[3] == 1)
		e = expert_layouts(dt, rt, at->type, w, (const uint8_t *)abytes, q, &wt, d);
done:
	free(w);
	free(wu);
	free(q);
	free(deq);
	free(deq_art);
	free(rowbuf);
	return e;
}

/* Recipe check: what llama.cpp's rules would have chosen for each tensor. */
static enum qa_err check_recipe(struct qa_ref *ref, struct qa_diff_result *r, struct qa_diag *d)
{
	size_t n = qa_ref_n_tensors(ref);
	struct qa_plan_entry *pe = calloc(n ? n : 1, sizeof *pe);
	if (!pe)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	const struct qa_recipe *rec = r->has_file_type ? qa_recipe_by_file_type(r->file_type) : NULL;
	/* the pure hypothesis (llama-quantize --pure T): T is the most common
	 * quantized type, and the other types must be T's fallbacks */
	size_t votes[QA_TYPE_COUNT] = { 0 };
	uint32_t pure = QA_TYPE_COUNT;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		if (t->quantized && t->verdict != QA_VERDICT_MISSING && t->type < QA_TYPE_COUNT)
			votes[t->type]++;
	}
	for (uint32_t k = 0; k < QA_TYPE_COUNT; k++)
		if (votes[k] && (pure == QA_TYPE_COUNT || votes[k] > votes[pure]))
			pure = k;
	/* a plan that cannot be made (a shape llama.cpp itself refuses) leaves
	 * the check unanswered rather than failing the audit */
	struct qa_diag ignore;
	bool has_imatrix = r->imatrix.given || r->declared_imatrix.declared;
	if (rec && qa_quantize_plan_types(ref, rec, 0, has_imatrix, pe, &ignore) == QA_OK) {
		r->recipe_name = qa_recipe_name(rec);
		r->recipe_matches = true;
		for (size_t i = 0; i < r->n; i++) {
			struct qa_diff_tensor *t = &r->tensors[i];
			const struct qa_ref_tensor *rt = qa_ref_tensor_find(ref, t->name);
			if (!rt || t->verdict == QA_VERDICT_MISSING)
				continue;
			size_t k = (size_t)(rt - qa_ref_tensor_at(ref, 0));
			t->in_plan = true;
			t->recipe_type = pe[k].type;
			snprintf(t->rule, sizeof t->rule, "%s", pe[k].rule);
			if (t->recipe_type != t->type) {
				r->recipe_matches = false;
				r->recipe_deviations++;
			}
		}
	}
	if (pure != QA_TYPE_COUNT && qa_recipe_pure_file_type(pure) != QA_RECIPE_NO_FILE_TYPE &&
	    qa_quantize_plan_types(ref, NULL, pure, has_imatrix, pe, &ignore) == QA_OK) {
		r->pure_type = pure;
		r->pure_matches = true;
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_diff_tensor *t = &r->tensors[i];
			const struct qa_ref_tensor *rt = qa_ref_tensor_find(ref, t->name);
			if (!rt || t->verdict == QA_VERDICT_MISSING)
				continue;
			if (pe[rt - qa_ref_tensor_at(ref, 0)].type != t->type)
				r->pure_matches = false;
		}
	}
	free(pe);
	return QA_OK;
}

/* The artifact's quantize.imatrix.* keys. */
static enum qa_err read_declared_imatrix(struct qa_gguf *art, struct qa_diff_imatrix_keys *k,
                                         struct qa_diag *d)
{
	const char *file = qa_gguf_get_str(art, "quantize.imatrix.file");
	const char *ds = qa_gguf_get_str(art, "quantize.imatrix.dataset");
	k->has_entries = qa_gguf_get_u64(art, "quantize.imatrix.entries_count", &k->entries);
	k->has_chunks = qa_gguf_get_u64(art, "quantize.imatrix.chunks_count", &k->chunks);
	k->declared = file || ds || k->has_entries || k->has_chunks ||
	              qa_gguf_kv_find(art, "quantize.imatrix.file") ||
	              qa_gguf_kv_find(art, "quantize.imatrix.dataset");
	if ((file && !(k->file = qa_str_dup(file))) || (ds && !(k->dataset = qa_str_dup(ds))))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	return QA_OK;
}

static bool ref_has_tensor(void *ctx, const char *name)
{
	return qa_ref_tensor_find(ctx, name) != NULL;
}

/*
 * Record the matrix given with --imatrix, compare it with what the artifact
 * declares, and check every entry that will be used against its tensor's
 * shape before the audit starts (so that the error names the matrix).
 */
static enum qa_err note_imatrix(struct qa_diff_result *r, const struct qa_diff_opts *o,
                                struct qa_ref *ref, struct qa_gguf *art, struct qa_diag *d)
{
	struct qa_diff_imatrix_given *g = &r->imatrix;
	const struct qa_imatrix_info *in = qa_imatrix_info(o->imatrix);
	const char *first;
	g->given = true;
	g->format = in->format;
	g->entries = in->n_entries;
	g->chunks = in->chunk_count;
	memcpy(g->sha256, in->sha256, sizeof g->sha256);
	if (!(g->path = qa_str_dup(o->imatrix_path ? o->imatrix_path : "")) ||
	    (in->dataset && !(g->dataset = qa_str_dup(in->dataset))))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	g->unmatched = qa_imatrix_count_unmatched(o->imatrix, ref_has_tensor, ref, &first);
	if (first && !(g->first_unmatched = qa_str_dup(first)))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	const struct qa_diff_imatrix_keys *k = &r->declared_imatrix;
	if (k->declared) {
		/* the artifact records the first dataset cut to 127 bytes */
		char ds[128];
		snprintf(ds, sizeof ds, "%s", in->dataset ? in->dataset : "");
		g->dataset_differs = (k->dataset != NULL) != (in->dataset != NULL) ||
		                     (k->dataset && strcmp(k->dataset, ds) != 0);
		g->entries_differ = !k->has_entries || k->entries != in->n_entries;
	}
	for (size_t i = 0; i < qa_gguf_n_tensors(art); i++) {
		const struct qa_gguf_tensor *at = qa_gguf_tensor_at(art, i);
		const struct qa_ref_tensor *rt = qa_ref_tensor_find(ref, at->name);
		const float *w;
		const struct qa_quant_ops *ops = qa_quant_ops(at->type);
		if (!rt || is_float_type(at->type))
			continue;
		enum qa_err e = qa_imatrix_weights(o->imatrix, at->name, rt->ne[0], rt->ne[2], &w, d);
		if (e)
			return e;
		if (w && ops && ops->quantize_rows)
			g->weighted_tensors++;
	}
	return QA_OK;
}

/*
 * The work of a shard: owner[i] for each of the n items of res, weighed by
 * weight(res, i), or all zero without sh.  NULL when out of memory.
 */
static uint32_t *shard_owners(const struct qa_audit_shard *sh, size_t n,
                              uint64_t (*weight)(const void *res, size_t i), const void *res)
{
	uint64_t *weights = calloc(n + 1, sizeof *weights);
	uint32_t *owner = weights ? calloc(n + 1, sizeof *owner) : NULL;
	for (size_t i = 0; owner && i < n; i++)
		weights[i] = weight(res, i);
	if (owner && sh && !qa_part_assign(weights, n, sh->n, owner)) {
		free(owner);
		owner = NULL;
	}
	free(weights);
	return owner;
}

static uint64_t diff_weight(const void *res, size_t i)
{
	return qa_part_diff_weight(&((const struct qa_diff_result *)res)->tensors[i]);
}

static uint64_t swap_weight(const void *res, size_t i)
{
	const struct qa_swap_tensor *t = &((const struct qa_swap_result *)res)->tensors[i];
	return t->in * t->out;
}

enum qa_err qa_diff_run(const char *ref_path, const char *art_path,
                        const struct qa_diff_opts *o, struct qa_diff_result **out,
                        const char **culprit, struct qa_diag *d)
{
	uint32_t *owner = NULL;
	static const struct qa_diff_opts defaults;
	unsigned n_threads;
	struct qa_ref *ref = NULL;
	struct qa_source *src = NULL;
	struct qa_gguf *art = NULL;
	struct diff_ctx c;
	size_t *work = NULL;
	uint64_t *sizes = NULL;
	struct qa_diff_result *r = calloc(1, sizeof *r);
	enum qa_err e;
	memset(&c, 0, sizeof c);
	if (!o)
		o = &defaults;
	n_threads = o->n_threads;
	if (!r)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	r->reference_path = qa_str_dup(ref_path);
	r->artifact_path = qa_str_dup(art_path);
	*culprit = ref_path;
	if ((e = qa_ref_open(&ref, ref_path, d)) || (e = qa_ref_require_float(ref, d)))
		goto done;
	*culprit = art_path;
	const struct qa_audit_shard *sh = o->shard;
	bool digests = !sh || sh->file_digests;
	if ((e = qa_source_open_file(&src, art_path, d)) || (e = qa_gguf_open(&art, src, d)))
		goto done;
	/* the files' SHA-256 are work items of the audit's pool, beside the
	 * tensors (an artifact larger than the address space fails here, as
	 * mapping it whole once did) */
	r->artifact_size = qa_source_size(src);
	if (qa_ref_n_sources(ref) == 1)
		r->reference_size = qa_source_size(qa_ref_source(ref, 0));
	if (digests) {
		c.hash_src[c.n_hash] = src;
		c.hash_size[c.n_hash] = &r->artifact_size;
		c.hash_out[c.n_hash++] = r->artifact_sha256;
	}
	if (digests && qa_ref_n_sources(ref) == 1) {
		c.hash_src[c.n_hash] = qa_ref_source(ref, 0);
		c.hash_size[c.n_hash] = &r->reference_size;
		c.hash_out[c.n_hash++] = r->reference_sha256;
	}
	*culprit = ref_path;
	if (!digests)
		r->no_digests = true;
	if (sh) {
		r->shard_k = sh->k;
		r->shard_n = sh->n;
	}
	uint64_t ft;
	if (qa_gguf_get_u64(art, "general.file_type", &ft) && ft <= UINT32_MAX) {
		r->has_file_type = true;
		r->file_type = (uint32_t)ft;
	}
	snprintf(r->arch, sizeof r->arch, "%s", qa_ref_info(ref)->arch);
	*culprit = art_path;
	if ((e = read_declared_imatrix(art, &r->declared_imatrix, d)))
		goto done;
	*culprit = o->imatrix_path ? o->imatrix_path : ref_path;
	if (o->imatrix && (e = note_imatrix(r, o, ref, art, d)))
		goto done;
	*culprit = ref_path;

	size_t na = qa_gguf_n_tensors(art), nr = qa_ref_n_tensors(ref);
	r->tensors = calloc(na + nr + 1, sizeof *r->tensors);
	if (!r->tensors) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < na; i++) {
		const struct qa_gguf_tensor *at = qa_gguf_tensor_at(art, i);
		const struct qa_ref_tensor *rt = qa_ref_tensor_find(ref, at->name);
		struct qa_diff_tensor *t = &r->tensors[r->n++];
		const struct qa_type_info *ti = qa_type_get(at->type);
		t->name = qa_str_dup(at->name);
		t->reference_name = rt ? qa_str_dup(rt->src_name) : NULL;
		t->type = at->type;
		t->n_dims = at->n_dims;
		memcpy(t->ne, at->ne, sizeof t->ne);
		t->nbytes = at->nbytes;
		t->blocks = qa_blockhash_n_blocks(at->nbytes, qa_blockhash_block_bytes(ti));
		t->layer = layer_of(at->name);
		t->layout = -1;
		t->first_divergent = QA_NO_BLOCK;
		t->quantized = !is_float_type(at->type);
		t->verdict = rt ? QA_VERDICT_DIVERGENT : QA_VERDICT_EXTRA;
		if (!t->name || (rt && !t->reference_name)) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
	}
	size_t n_paired = r->n;
	for (size_t i = 0; i < nr; i++) {
		const struct qa_ref_tensor *rt = qa_ref_tensor_at(ref, i);
		if (qa_gguf_tensor_find(art, rt->name))
			continue;
		struct qa_diff_tensor *t = &r->tensors[r->n++];
		t->name = qa_str_dup(rt->name);
		t->reference_name = qa_str_dup(rt->src_name);
		t->type = rt->src_type == QA_TYPE_COUNT ? QA_TYPE_F32 : rt->src_type;
		t->n_dims = rt->n_dims;
		memcpy(t->ne, rt->ne, sizeof t->ne);
		t->layer = layer_of(rt->name);
		t->layout = -1;
		t->first_divergent = QA_NO_BLOCK;
		t->verdict = QA_VERDICT_MISSING;
		if (!t->name || !t->reference_name) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
	}

	/* audit the paired tensors in parallel, biggest first */
	c.ref = ref;
	c.art = art;
	c.res = r;
	c.imatrix = o->imatrix;
	c.window = o->window_elems ? o->window_elems : WINDOW_ELEMS;
	c.n_paired = n_paired;
	work = calloc(n_paired + c.n_hash + 1, sizeof *work);
	sizes = calloc(n_paired + c.n_hash + 1, sizeof *sizes);
	c.art_fault = calloc(n_paired + c.n_hash + 1, sizeof *c.art_fault);
	if (!work || !sizes || !c.art_fault) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	if (!(owner = shard_owners(sh, r->n, diff_weight, r))) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	size_t n_work = 0;
	for (size_t i = 0; i < n_paired; i++) {
		sizes[i] = r->tensors[i].nbytes;
		if (r->tensors[i].verdict != QA_VERDICT_EXTRA && (!sh || owner[i] == sh->k - 1))
			work[n_work++] = i;
	}
	/* hashing costs far less per byte than re-quantizing: weigh it so
	 * that the largest tensors still start first */
	for (size_t k = 0; k < c.n_hash; k++) {
		sizes[n_paired + k] = *c.hash_size[k] / 16;
		work[n_work++] = n_paired + k;
	}
	if (c.n_hash)
		c.art_fault[n_paired] = true; /* the artifact's hash */
	if ((e = audit_pool_run(n_threads, n_paired + c.n_hash, work, n_work, sizes, diff_one, &c,
	                        &c.pool, d))) {
		*culprit = c.art_fault[c.pool.failed] ? art_path : ref_path;
		/* the artifact's own faults come first, whichever item met a
		 * fault first (as when the artifact was hashed before the audit) */
		struct qa_diag ad;
		qa_diag_clear(&ad);
		if (c.n_hash && !c.hash_done[0] && (c.art_fault[c.pool.failed] ||
		                        diff_hash_one(&c, 0, &ad) != QA_OK)) {
			if (ad.code != QA_OK)
				*d = ad;
			e = d->code != QA_OK ? d->code : e;
			*culprit = art_path;
		}
		goto done;
	}

	qa_forensics_classify(r);
	e = check_recipe(ref, r, d);
done:
	free(owner);
	audit_pool_free(&c.pool);
	free(work);
	free(sizes);
	free(c.art_fault);
	qa_gguf_close(art);
	qa_source_close(src);
	qa_ref_close(ref);
	if (e) {
		qa_diff_free(r);
		return e;
	}
	*out = r;
	return QA_OK;
}

void qa_diff_free(struct qa_diff_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->tensors[i].name);
		free(r->tensors[i].reference_name);
		free(r->tensors[i].divergence);
		free(r->tensors[i].expert_layout);
	}
	free(r->tensors);
	free(r->reference_path);
	free(r->artifact_path);
	qa_recipe_cmp_free(r->recipe_cmp);
	free(r->declared_imatrix.file);
	free(r->declared_imatrix.dataset);
	free(r->imatrix.path);
	free(r->imatrix.dataset);
	free(r->imatrix.first_unmatched);
	qa_reproduce_kv_free(r->metadata, r->n_metadata);
	free(r);
}

static json_t *block_json(uint64_t b)
{
	return b == QA_NO_BLOCK ? json_null() : qa_json_u64(b);
}

/* "imatrix": what the artifact declares and what --imatrix gave. */
static json_t *imatrix_json(const struct qa_diff_result *r)
{
	const struct qa_diff_imatrix_keys *k = &r->declared_imatrix;
	const struct qa_diff_imatrix_given *g = &r->imatrix;
	json_t *o = json_object();
	if (k->declared) {
		json_t *dk = json_object();
		json_object_set_new(dk, "file", qa_json_str_or_null(k->file));
		json_object_set_new(dk, "dataset", qa_json_str_or_null(k->dataset));
		json_object_set_new(dk, "entries_count", k->has_entries ? qa_json_u64(k->entries) : json_null());
		json_object_set_new(dk, "chunks_count", k->has_chunks ? qa_json_u64(k->chunks) : json_null());
		json_object_set_new(o, "declared", dk);
	} else {
		json_object_set_new(o, "declared", json_null());
	}
	if (g->given) {
		json_t *gk = json_object();
		json_object_set_new(gk, "path", json_string(g->path));
		json_object_set_new(gk, "format", json_string(qa_imatrix_format_name(g->format)));
		json_object_set_new(gk, "sha256", qa_json_hex(g->sha256, QA_SHA256_LEN));
		json_object_set_new(gk, "dataset", qa_json_str_or_null(g->dataset));
		json_object_set_new(gk, "entries_count", qa_json_u64(g->entries));
		json_object_set_new(gk, "chunks_count", g->chunks > 0 ? qa_json_u64((uint64_t)g->chunks) : json_null());
		json_object_set_new(gk, "weighted_tensors", qa_json_u64(g->weighted_tensors));
		json_object_set_new(gk, "unmatched_entries", qa_json_u64(g->unmatched));
		json_object_set_new(gk, "matches_declared",
		                    r->declared_imatrix.declared ?
		                    json_boolean(!g->dataset_differs && !g->entries_differ) : json_null());
		json_object_set_new(o, "given", gk);
	} else {
		json_object_set_new(o, "given", json_null());
	}
	return o;
}

json_t *qa_diff_to_json(const struct qa_diff_result *r)
{
	json_t *root = json_object(), *ref = json_object(), *art = json_object();
	json_t *ts = json_array(), *recipe = json_object(), *summary = json_object();
	json_object_set_new(root, "schema", json_string("quantaudit.diff/1"));
	json_object_set_new(ref, "path", json_string(r->reference_path));
	json_object_set_new(ref, "size", qa_json_u64(r->reference_size));
	json_object_set_new(ref, "sha256", r->reference_size && !r->no_digests ? qa_json_hex(r->reference_sha256, QA_SHA256_LEN) : json_null());
	json_object_set_new(root, "reference", ref);
	json_object_set_new(art, "path", json_string(r->artifact_path));
	json_object_set_new(art, "size", qa_json_u64(r->artifact_size));
	json_object_set_new(art, "sha256", r->no_digests ? json_null() : qa_json_hex(r->artifact_sha256, QA_SHA256_LEN));
	json_object_set_new(art, "file_type", r->has_file_type ? qa_json_u64(r->file_type) : json_null());
	json_object_set_new(root, "artifact", art);
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		json_t *o = json_object(), *sh = json_array();
		for (uint32_t k = 0; k < t->n_dims; k++)
			json_array_append_new(sh, qa_json_u64(t->ne[k]));
		json_object_set_new(o, "name", json_string(t->name));
		json_object_set_new(o, "reference_name", t->reference_name ? json_string(t->reference_name) : json_null());
		json_object_set_new(o, "type", json_string(qa_type_name(t->type)));
		json_object_set_new(o, "shape", sh);
		json_object_set_new(o, "blocks", qa_json_u64(t->blocks));
		json_object_set_new(o, "verdict", json_string(qa_verdict_name(t->verdict)));
		json_object_set_new(o, "layout", t->layout >= 0 ? json_string(qa_forensics_layout_name(t->layout)) : json_null());
		const char *ev = qa_forensics_evidence_name(t->evidence);
		json_object_set_new(o, "evidence", ev ? json_string(ev) : json_null());
		json_object_set_new(o, "divergent_blocks", qa_json_u64(t->divergent_blocks));
		json_object_set_new(o, "first_divergent_block", block_json(t->first_divergent));
		if (t->has_error) {
			json_t *err = json_object();
			json_object_set_new(err, "rmse", json_real(t->rmse));
			json_object_set_new(err, "max_abs", json_real(t->max_abs));
			json_object_set_new(err, "requant_rmse", json_real(t->requant_rmse));
			json_object_set_new(err, "requant_max_abs", json_real(t->requant_max_abs));
			json_object_set_new(o, "error", err);
		} else {
			json_object_set_new(o, "error", json_null());
		}
		json_object_set_new(o, "layout_errors", qa_forensics_layout_errors_json(t));
		json_object_set_new(o, "recipe_type", t->in_plan ? json_string(qa_type_name(t->recipe_type)) : json_null());
		if (r->imatrix.given)
			json_object_set_new(o, "imatrix_weighted", json_boolean(t->weighted));
		if (t->n_experts) {
			/* only for expert tensors that diverged under out,in: each slice's layout */
			json_t *ex = json_array();
			for (uint32_t x = 0; x < t->n_experts; x++)
				json_array_append_new(ex, t->expert_layout[x] >= 0
				                          ? json_string(qa_layout_name((enum qa_layout)t->expert_layout[x]))
				                          : json_null());
			json_object_set_new(o, "expert_layouts", ex);
		}
		json_array_append_new(ts, o);
	}
	json_object_set_new(root, "tensors", ts);
	json_object_set_new(root, "imatrix", imatrix_json(r));

	json_object_set_new(recipe, "file_type", r->has_file_type ? qa_json_u64(r->file_type) : json_null());
	json_object_set_new(recipe, "name", r->recipe_name ? json_string(r->recipe_name) : json_null());
	json_object_set_new(recipe, "matches", r->recipe_name ? json_boolean(r->recipe_matches) : json_null());
	json_t *dev = json_array();
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		if (!t->in_plan || t->recipe_type == t->type)
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(t->name));
		json_object_set_new(o, "type", json_string(qa_type_name(t->type)));
		json_object_set_new(o, "recipe_type", json_string(qa_type_name(t->recipe_type)));
		json_object_set_new(o, "rule", json_string(t->rule));
		json_array_append_new(dev, o);
	}
	json_object_set_new(recipe, "deviations", dev);
	json_object_set_new(recipe, "pure_type", r->pure_matches ? json_string(qa_type_name(r->pure_type)) : json_null());
	json_object_set_new(root, "recipe", recipe);

	json_object_set_new(summary, "tensors", qa_json_u64(r->n));
	for (int v = 0; v < QA_VERDICT_COUNT; v++)
		json_object_set_new(summary, verdict_names[v], qa_json_u64(r->counts[v]));
	json_object_set_new(summary, "quantized_tensors", qa_json_u64(r->quantized_tensors));
	json_object_set_new(summary, "quantized_divergent", qa_json_u64(r->quantized_divergent));
	json_object_set_new(summary, "inference",
	                    r->different_quantizer ? json_string("different-quantizer") : json_null());
	json_object_set_new(summary, "inference_spread", qa_forensics_spread_json(r));
	json_object_set_new(root, "summary", summary);
	json_object_set_new(root, "recipe_comparison", qa_forensics_recipe_cmp_json(r->recipe_cmp));
	json_object_set_new(root, "verdict", json_string(r->pass ? "pass" : "fail"));
	return root;
}

/* ------------------------------------------------------------------ shape-swap */

struct swap_ctx {
	struct qa_ref *ref;
	struct qa_swap_result *res;
	const struct qa_ref_tensor **src;
	const float **qw; /* per tensor: importance weights or NULL */
	struct audit_pool pool;
};

static enum qa_err swap_one(void *vctx, size_t item, unsigned worker)
{
	struct swap_ctx *c = vctx;
	size_t i = c->pool.order[item];
	struct qa_swap_tensor *st = &c->res->tensors[i];
	const struct qa_ref_tensor *rt = c->src[i];
	struct qa_diag *d = &c->pool.diags[i];
	const struct qa_type_info *ti = qa_type_get(c->res->type);
	uint64_t bb = qa_blockhash_block_bytes(ti);
	float *w = malloc((size_t)rt->n_elems * sizeof *w);
	uint8_t *a = malloc(st->bytes[0] ? (size_t)st->bytes[0] : 1);
	uint8_t *b = malloc(st->bytes[1] ? (size_t)st->bytes[1] : 1);
	enum qa_err e;
	if (!w || !a || !b) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for tensor %s", st->name);
		goto done;
	}
	if ((e = qa_ref_read_f32(c->ref, rt, w, d)) || (e = qa_quantize_check_finite(rt, w, d)))
		goto done;
	/* a 3-D expert tensor is swapped slice by slice, each with its expert's weights */
	uint64_t sa = st->bytes[0] / st->experts, sb = st->bytes[1] / st->experts;
	size_t per = (size_t)(st->in * st->out);
	for (uint64_t x = 0; x < st->experts; x++) {
		struct qa_quantize_weights wt = { c->qw[i] ? c->qw[i] + x * st->in : NULL, st->in, 1 };
		if ((e = qa_quantize_tensor_weighted(w + x * per, st->in, st->out, c->res->type, QA_LAYOUT_OUT_IN,
		                                     st->weighted[0] ? &wt : NULL, 1, a + x * sa, d)) ||
		    (e = qa_quantize_tensor_weighted(w + x * per, st->in, st->out, c->res->type, QA_LAYOUT_IN_OUT,
		                                     st->weighted[1] ? &wt : NULL, 1, b + x * sb, d)))
			goto done;
		if (sa != sb || memcmp(a + x * sa, b + x * sb, (size_t)sa) != 0)
			st->divergent_experts++;
	}
	(void)worker;
	compare_blocks(a, st->bytes[0], b, st->bytes[1], bb,
	               &st->divergent_blocks, &st->first_divergent, NULL);
	st->identical = st->divergent_blocks == 0;
done:
	free(w);
	free(a);
	free(b);
	return e;
}

void qa_swap_summarize(struct qa_swap_result *r)
{
	r->n_identical = r->n_divergent = r->n_mispredicted = 0;
	r->excess_bytes = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_swap_tensor *st = &r->tensors[i];
		if (st->identical)
			r->n_identical++;
		else
			r->n_divergent++;
		if (st->identical != st->predicted_identical)
			r->n_mispredicted++;
		r->excess_bytes += (int64_t)st->bytes[1] - (int64_t)st->bytes[0];
	}
}

enum qa_err qa_swap_run(const char *ref_path, uint32_t type, const struct qa_swap_opts *o,
                        struct qa_swap_result **out, const char **culprit, struct qa_diag *d)
{
	uint32_t *owner = NULL;
	static const struct qa_swap_opts defaults;
	if (!o)
		o = &defaults;
	unsigned n_threads = o->n_threads;
	*culprit = ref_path;
	const struct qa_type_info *ti = qa_type_get(type);
	const struct qa_quant_ops *ops = qa_quant_ops(type);
	if (!ti || !ops || !ops->quantize)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   ops && ops->requires_imatrix ?
		                   "type %s is quantized only with an importance matrix (ggml refuses it without one)" :
		                   "type %s cannot be produced",
		                   qa_type_name(type));
	struct qa_ref *ref = NULL;
	struct swap_ctx c;
	size_t *work = NULL;
	uint64_t *sizes = NULL;
	struct qa_swap_result *r = calloc(1, sizeof *r);
	enum qa_err e;
	memset(&c, 0, sizeof c);
	if (!r)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	r->reference_path = qa_str_dup(ref_path);
	r->type = type;
	r->block_elems = ti->block_elems;
	if ((e = qa_ref_open(&ref, ref_path, d)) || (e = qa_ref_require_float(ref, d)))
		goto done;
	const struct qa_audit_shard *sh = o->shard;
	bool digests = !sh || sh->file_digests;
	if (qa_ref_n_sources(ref) == 1 && digests &&
	    (e = source_sha256(qa_ref_source(ref, 0), &r->reference_size, r->reference_sha256, d)))
		goto done;
	if (!digests) {
		r->no_digests = true;
		if (qa_ref_n_sources(ref) == 1)
			r->reference_size = qa_source_size(qa_ref_source(ref, 0));
	}
	if (sh) {
		r->shard_k = sh->k;
		r->shard_n = sh->n;
	}
	snprintf(r->arch, sizeof r->arch, "%s", qa_ref_info(ref)->arch);
	size_t nr = qa_ref_n_tensors(ref);
	r->tensors = calloc(nr + 1, sizeof *r->tensors);
	c.src = calloc(nr + 1, sizeof *c.src);
	c.qw = calloc(nr + 1, sizeof *c.qw);
	if (!r->tensors || !c.src || !c.qw) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nr; i++) {
		const struct qa_ref_tensor *rt = qa_ref_tensor_at(ref, i);
		/* 2-D weights, and 3-D expert tensors (ne[2] slices swapped one by one) */
		if ((rt->n_dims != 2 && (rt->n_dims != 3 || rt->ne[3] != 1)) ||
		    !qa_str_ends_with(rt->name, "weight") || rt->src_type == QA_TYPE_COUNT)
			continue;
		struct qa_swap_tensor *st = &r->tensors[r->n];
		c.src[r->n++] = rt;
		st->name = qa_str_dup(rt->name);
		st->in = rt->ne[0];
		st->out = rt->ne[1];
		st->experts = rt->n_dims == 3 ? rt->ne[2] : 1;
		st->layer = layer_of(rt->name);
		st->first_divergent = QA_NO_BLOCK;
		if (!st->name) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
		for (int l = 0; l < 2; l++) {
			if (!qa_quantize_nbytes(type, st->in, st->out, (enum qa_layout)l, &st->bytes[l]) ||
			    !qa_mul_u64(st->bytes[l], st->experts, &st->bytes[l])) {
				e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET, "tensor %s is too large", st->name);
				goto done;
			}
			st->blocks[l] = qa_blockhash_n_blocks(st->bytes[l], qa_blockhash_block_bytes(ti));
		}
		if (o->imatrix) {
			const float *qw;
			if ((e = qa_imatrix_weights(o->imatrix, rt->name, rt->ne[0], rt->ne[2], &qw, d))) {
				*culprit = o->imatrix_path ? o->imatrix_path : ref_path;
				goto done;
			}
			c.qw[r->n - 1] = qw;
			st->weighted[QA_LAYOUT_OUT_IN] = qw && ops->quantize_rows;
			/* a swapped matrix's rows are not the ones the entry describes */
			st->weighted[QA_LAYOUT_IN_OUT] = st->weighted[QA_LAYOUT_OUT_IN] && st->in == st->out;
		}
		st->predicted_identical = st->in == st->out ||
		                          (!st->weighted[QA_LAYOUT_OUT_IN] && st->in % ti->block_elems == 0 &&
		                           st->out % ti->block_elems == 0);
	}
	r->imatrix = o->imatrix != NULL;
	c.ref = ref;
	c.res = r;
	work = calloc(r->n + 1, sizeof *work);
	sizes = calloc(r->n + 1, sizeof *sizes);
	if (!work || !sizes) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	if (!(owner = shard_owners(sh, r->n, swap_weight, r))) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	size_t n_work = 0;
	for (size_t i = 0; i < r->n; i++) {
		sizes[i] = r->tensors[i].bytes[0];
		if (!sh || owner[i] == sh->k - 1)
			work[n_work++] = i;
	}
	if ((e = audit_pool_run(n_threads, r->n, work, n_work, sizes, swap_one, &c, &c.pool, d)))
		goto done;
	qa_swap_summarize(r);
done:
	free(owner);
	audit_pool_free(&c.pool);
	free(work);
	free(sizes);
	free(c.src);
	free(c.qw);
	qa_ref_close(ref);
	if (e) {
		qa_swap_free(r);
		return e;
	}
	*out = r;
	return QA_OK;
}

void qa_swap_free(struct qa_swap_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->tensors[i].name);
	free(r->tensors);
	free(r->reference_path);
	free(r);
}

json_t *qa_swap_to_json(const struct qa_swap_result *r)
{
	json_t *root = json_object(), *ref = json_object(), *ts = json_array(), *sum = json_object();
	json_object_set_new(root, "schema", json_string("quantaudit.shape-swap/1"));
	json_object_set_new(root, "type", json_string(qa_type_name(r->type)));
	json_object_set_new(ref, "path", json_string(r->reference_path));
	json_object_set_new(ref, "size", qa_json_u64(r->reference_size));
	json_object_set_new(ref, "sha256", r->reference_size && !r->no_digests ? qa_json_hex(r->reference_sha256, QA_SHA256_LEN) : json_null());
	json_object_set_new(root, "reference", ref);
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_swap_tensor *t = &r->tensors[i];
		json_t *o = json_object(), *blocks = json_object(), *bytes = json_object();
		json_object_set_new(o, "name", json_string(t->name));
		json_object_set_new(o, "shape", json_pack("[II]", (json_int_t)t->in, (json_int_t)t->out));
		if (t->experts > 1) { /* a 3-D expert tensor: shape is one slice's */
			json_object_set_new(o, "experts", qa_json_u64(t->experts));
			json_object_set_new(o, "divergent_experts", qa_json_u64(t->divergent_experts));
		}
		json_object_set_new(blocks, "out,in", qa_json_u64(t->blocks[0]));
		json_object_set_new(blocks, "in,out", qa_json_u64(t->blocks[1]));
		json_object_set_new(bytes, "out,in", qa_json_u64(t->bytes[0]));
		json_object_set_new(bytes, "in,out", qa_json_u64(t->bytes[1]));
		json_object_set_new(o, "blocks", blocks);
		json_object_set_new(o, "bytes", bytes);
		json_object_set_new(o, "excess_bytes", json_integer((json_int_t)t->bytes[1] - (json_int_t)t->bytes[0]));
		json_object_set_new(o, "identical", json_boolean(t->identical));
		json_object_set_new(o, "predicted_identical", json_boolean(t->predicted_identical));
		if (r->imatrix) {
			json_t *wl = json_object();
			json_object_set_new(wl, "out,in", json_boolean(t->weighted[0]));
			json_object_set_new(wl, "in,out", json_boolean(t->weighted[1]));
			json_object_set_new(o, "imatrix_weighted", wl);
		}
		json_object_set_new(o, "divergent_blocks", qa_json_u64(t->divergent_blocks));
		json_object_set_new(o, "first_divergent_block", block_json(t->first_divergent));
		json_array_append_new(ts, o);
	}
	json_object_set_new(root, "tensors", ts);
	json_object_set_new(sum, "tensors", qa_json_u64(r->n));
	json_object_set_new(sum, "identical", qa_json_u64(r->n_identical));
	json_object_set_new(sum, "divergent", qa_json_u64(r->n_divergent));
	json_object_set_new(sum, "mispredicted", qa_json_u64(r->n_mispredicted));
	json_object_set_new(sum, "excess_bytes", json_integer((json_int_t)r->excess_bytes));
	json_object_set_new(sum, "benign", json_boolean(r->n_divergent == 0));
	json_object_set_new(root, "summary", sum);
	return root;
}

static char *json_text(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
	json_decref(j);
	return s;
}

char *qa_diff_json_text(const struct qa_diff_result *r)
{
	return json_text(qa_diff_to_json(r));
}

char *qa_swap_json_text(const struct qa_swap_result *r)
{
	return json_text(qa_swap_to_json(r));
}
