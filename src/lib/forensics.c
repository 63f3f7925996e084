/*
 * forensics.c - layouts by error, the imatrix verdict, the different-quantizer
 * inference and the recipe comparison (see forensics.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "forensics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compare.h"
#include "cursor.h"
#include "imatrix.h"
#include "json_scan.h"
#include "names.h"
#include "pool.h"
#include "quant.h"
#include "quantize.h"
#include "types.h"

static const char *const layout_names[QA_FX_LAYOUTS] = { "out,in", "in,out", "transposed", "unpermuted" };

const char *qa_forensics_layout_name(int layout)
{
	return layout >= 0 && layout < QA_FX_LAYOUTS ? layout_names[layout] : "?";
}

const char *qa_forensics_evidence_name(enum qa_evidence e)
{
	return e == QA_EVIDENCE_BYTES ? "bytes" : e == QA_EVIDENCE_ERROR ? "error" : NULL;
}

static void copy_str(const char *s, char *buf, size_t cap)
{
	size_t n = strlen(s);
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

double qa_forensics_ratio(double a, double b)
{
	if (b > 0)
		return a / b;
	return a > 0 ? INFINITY : 1.0;
}

enum qa_err qa_forensics_unpermute(const float *w, float *dst, uint64_t rows, uint64_t cols,
                                   uint32_t n_heads, struct qa_diag *d)
{
	uint64_t total;
	if (!w || !dst || n_heads == 0)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "unpermute needs buffers and a nonzero head count");
	if (rows % (2 * (uint64_t)n_heads) != 0)
		return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET, "%llu rows do not split into %u heads of row pairs",
		                   (unsigned long long)rows, (unsigned)n_heads);
	if (!qa_mul_u64(rows, cols, &total) || total > SIZE_MAX / sizeof(float))
		return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET, "unpermute of %llu x %llu overflows",
		                   (unsigned long long)rows, (unsigned long long)cols);
	/* the converter moved checkpoint row s*half + j of each head to row
	 * 2*j + s; move it back */
	uint64_t head_rows = rows / n_heads, half = head_rows / 2;
	for (uint64_t h = 0; h < n_heads; h++)
		for (uint64_t j = 0; j < half; j++)
			for (uint64_t s = 0; s < 2; s++)
				memcpy(dst + (h * head_rows + s * half + j) * cols, w + (h * head_rows + 2 * j + s) * cols,
				       (size_t)cols * sizeof *dst);
	return QA_OK;
}

double qa_forensics_layout_rmse(enum qa_layout l, const float *w, uint64_t in, uint64_t out,
                                const struct qa_layout_geom *g, const float *a, float *rowbuf)
{
	double sum = 0;
	uint64_t n = 0;
	for (uint64_t r = 0; r < g->n_rows; r++) {
		qa_layout_row(l, w, in, out, g, r, rowbuf);
		const float *ar = a + r * g->padded;
		for (uint64_t c = 0; c < g->row_len; c++) {
			double e = (double)ar[c] - (double)rowbuf[c];
			sum += e * e;
		}
		n += g->row_len;
	}
	return n ? sqrt(sum / (double)n) : 0;
}

int qa_forensics_layout_by_error(const struct qa_layout_errors *e)
{
	if (e->tried[QA_LAYOUT_OUT_IN] &&
	    !(qa_forensics_ratio(e->rmse[QA_LAYOUT_OUT_IN], e->noise[QA_LAYOUT_OUT_IN]) > QA_FX_FAR))
		return -1;
	int best = -1;
	double br = 0;
	for (int l = 1; l < QA_FX_LAYOUTS; l++) {
		if (!e->tried[l])
			continue;
		double q = qa_forensics_ratio(e->rmse[l], e->noise[l]);
		if (q <= QA_FX_NOISE_HI && (best < 0 || q < br)) {
			best = l;
			br = q;
		}
	}
	return best;
}

bool qa_forensics_imatrix_band(double ratio)
{
	return ratio >= QA_FX_IMATRIX_LO && ratio <= QA_FX_IMATRIX_HI;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static bool mostly_divergent(const struct qa_diff_tensor *t)
{
	return t->blocks && t->divergent_blocks * 2 > t->blocks;
}

void qa_forensics_classify(struct qa_diff_result *r)
{
	/* the imatrix verdict: declared matrix, most blocks diverge, error in the band */
	if (r->declared_imatrix.declared && !r->imatrix.given)
		for (size_t i = 0; i < r->n; i++) {
			struct qa_diff_tensor *t = &r->tensors[i];
			if (t->verdict == QA_VERDICT_DIVERGENT && t->quantized && t->n_dims == 2 && t->has_error &&
			    mostly_divergent(t) && qa_forensics_imatrix_band(qa_forensics_ratio(t->rmse, t->requant_rmse)))
				t->verdict = QA_VERDICT_IMATRIX;
		}
	memset(r->counts, 0, sizeof r->counts);
	r->quantized_tensors = r->quantized_divergent = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		r->counts[t->verdict]++;
		if (t->quantized && t->verdict != QA_VERDICT_EXTRA && t->verdict != QA_VERDICT_MISSING &&
		    t->verdict != QA_VERDICT_UNSUPPORTED && t->verdict != QA_VERDICT_NEEDS_IMATRIX &&
		    t->verdict != QA_VERDICT_SHAPE_MISMATCH) {
			r->quantized_tensors++;
			if (t->verdict == QA_VERDICT_DIVERGENT)
				r->quantized_divergent++;
		}
	}
	r->pass = r->counts[QA_VERDICT_IDENTICAL] == r->n;

	/* the different-quantizer inference judges the tensors that diverge
	 * (byte-identical ones, e.g. a token_embd without importance data,
	 * neither support nor refute it); one tensor that diverges in only a
	 * few blocks is local damage and rules it out */
	r->different_quantizer = false;
	r->quantizer_n = 0;
	r->quantizer_min = r->quantizer_median = r->quantizer_max = 0;
	double *q = malloc((r->quantized_divergent + 1) * sizeof *q);
	if (!q)
		return;
	bool ok = r->quantized_divergent > 0;
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		if (t->verdict != QA_VERDICT_DIVERGENT || !t->quantized)
			continue;
		if (!t->has_error || !mostly_divergent(t)) {
			ok = false;
			continue;
		}
		q[n++] = qa_forensics_ratio(t->rmse, t->requant_rmse);
	}
	if (n) {
		qsort(q, n, sizeof *q, cmp_double);
		r->quantizer_n = n;
		r->quantizer_min = q[0];
		r->quantizer_max = q[n - 1];
		r->quantizer_median = n % 2 ? q[n / 2] : (q[n / 2 - 1] + q[n / 2]) / 2;
		r->different_quantizer = ok && q[0] >= QA_FX_QUANTIZER_LO && q[n - 1] <= QA_FX_QUANTIZER_HI;
	}
	free(q);
}

/* ------------------------------------------------------------------ recipes */

enum qa_err qa_forensics_recipes_parse(const char *list, const struct qa_recipe **out,
                                       size_t *n, struct qa_diag *d)
{
	*n = 0;
	const char *p = list ? list : "";
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char name[32];
		if (len == 0 || len >= sizeof name)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "--compare-recipe: empty or overlong recipe name");
		memcpy(name, p, len);
		name[len] = '\0';
		const struct qa_recipe *rec = qa_recipe_by_name(name);
		if (!rec)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "--compare-recipe: unknown recipe '%.31s' (Q4_K_M, Q4_K_S, Q5_K_M, Q6_K, Q8_0, ...)",
			                   name);
		for (size_t k = 0; k < *n; k++)
			if (out[k] == rec)
				return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "--compare-recipe: %s named twice",
				                   qa_recipe_name(rec));
		if (*n == QA_FX_MAX_RECIPES)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "--compare-recipe: at most %d recipes",
			                   QA_FX_MAX_RECIPES);
		out[(*n)++] = rec;
		if (!comma)
			return QA_OK;
		p = comma + 1;
	}
}

/* One tensor of the comparison: the reference tensor, its types under
 * each recipe, and the squared error and bits measured for each. */
struct cmp_item {
	const struct qa_ref_tensor *rt;
	size_t diff_index;
	uint32_t type[QA_FX_MAX_RECIPES];
	double sq[QA_FX_MAX_RECIPES], bits[QA_FX_MAX_RECIPES];
};

struct cmp_ctx {
	struct qa_ref *ref;
	const struct qa_imatrix *im;
	struct cmp_item *items;
	size_t n_recipes;
	struct qa_diag *diags;
};

static enum qa_err cmp_one(void *vctx, size_t i, unsigned worker)
{
	(void)worker;
	struct cmp_ctx *c = vctx;
	struct cmp_item *it = &c->items[i];
	return qa_quantize_sq_error(c->ref, it->rt, c->im, it->type, NULL, c->n_recipes, it->sq, it->bits,
	                            &c->diags[i]);
}

void qa_recipe_cmp_free(struct qa_recipe_cmp *c)
{
	if (!c)
		return;
	free(c->rows);
	free(c->measured);
	free(c->n_elems);
	free(c->sq);
	free(c->bits);
	free(c);
}

struct qa_recipe_cmp *qa_recipe_cmp_new(const struct qa_recipe *const *recipes, size_t n, size_t n_tensors)
{
	struct qa_recipe_cmp *rc = calloc(1, sizeof *rc);
	if (!rc || n > QA_FX_MAX_RECIPES)
		goto fail;
	rc->n_recipes = n;
	for (size_t k = 0; k < n; k++)
		rc->recipes[k] = recipes[k];
	rc->n_tensors = n_tensors;
	rc->rows = calloc(n_tensors + 2, sizeof *rc->rows);
	rc->measured = calloc(n_tensors + 1, 1);
	rc->n_elems = calloc(n_tensors + 1, sizeof *rc->n_elems);
	rc->sq = calloc(n_tensors * QA_FX_MAX_RECIPES + 1, sizeof *rc->sq);
	rc->bits = calloc(n_tensors * QA_FX_MAX_RECIPES + 1, sizeof *rc->bits);
	if (!rc->rows || !rc->measured || !rc->n_elems || !rc->sq || !rc->bits)
		goto fail;
	return rc;
fail:
	qa_recipe_cmp_free(rc);
	return NULL;
}

enum qa_err qa_forensics_recipe_aggregate(struct qa_diff_result *r, struct qa_diag *d)
{
	struct qa_recipe_cmp *rc = r->recipe_cmp;
	if (!rc)
		return QA_OK;
	size_t n = rc->n_recipes, nt = rc->n_tensors < r->n ? rc->n_tensors : r->n;
	memset(rc->rows, 0, (rc->n_tensors + 2) * sizeof *rc->rows);
	rc->n_rows = 0;
	size_t *row_of = calloc(nt + 1, sizeof *row_of);
	if (!row_of)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	/* classes in first-seen order */
	for (size_t i = 0; i < nt; i++) {
		if (!rc->measured[i])
			continue;
		char cls[48];
		if (!qa_names_class(r->tensors[i].name, cls, sizeof cls))
			copy_str("?", cls, sizeof cls);
		size_t row = 0;
		while (row < rc->n_rows && strcmp(rc->rows[row].cls, cls) != 0)
			row++;
		if (row == rc->n_rows)
			copy_str(cls, rc->rows[rc->n_rows++].cls, sizeof rc->rows[0].cls);
		row_of[i] = row;
	}
	/* sums per class and for the whole model, in a fixed order */
	size_t all = rc->n_rows++;
	copy_str("all", rc->rows[all].cls, sizeof rc->rows[all].cls);
	double *art_sq = calloc(rc->n_rows, sizeof *art_sq), *art_bits = calloc(rc->n_rows, sizeof *art_bits);
	double *sq = calloc(rc->n_rows * n + 1, sizeof *sq), *bits = calloc(rc->n_rows * n + 1, sizeof *bits);
	if (!art_sq || !art_bits || !sq || !bits) {
		free(art_sq);
		free(art_bits);
		free(sq);
		free(bits);
		free(row_of);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	for (size_t i = 0; i < nt; i++) {
		if (!rc->measured[i])
			continue;
		const struct qa_diff_tensor *t = &r->tensors[i];
		double ne = (double)rc->n_elems[i];
		size_t rows[2] = { row_of[i], all };
		for (int h = 0; h < 2; h++) {
			struct qa_recipe_cmp_row *row = &rc->rows[rows[h]];
			row->tensors++;
			row->n_elems += rc->n_elems[i];
			art_sq[rows[h]] += t->rmse * t->rmse * ne;
			art_bits[rows[h]] += (double)t->nbytes * 8.0;
			for (size_t k = 0; k < n; k++) {
				sq[rows[h] * n + k] += rc->sq[i * QA_FX_MAX_RECIPES + k];
				bits[rows[h] * n + k] += rc->bits[i * QA_FX_MAX_RECIPES + k];
			}
		}
	}
	for (size_t j = 0; j < rc->n_rows; j++) {
		struct qa_recipe_cmp_row *row = &rc->rows[j];
		double ne = row->n_elems ? (double)row->n_elems : 1;
		row->art_rmse = sqrt(art_sq[j] / ne);
		row->art_bpw = art_bits[j] / ne;
		for (size_t k = 0; k < n; k++) {
			row->rmse[k] = sqrt(sq[j * n + k] / ne);
			row->bpw[k] = bits[j * n + k] / ne;
		}
	}
	free(art_sq);
	free(art_bits);
	free(sq);
	free(bits);
	free(row_of);
	return QA_OK;
}

enum qa_err qa_forensics_recipe_compare(const char *ref_path, struct qa_diff_result *r,
                                        const struct qa_recipe *const *recipes, size_t n,
                                        const struct qa_imatrix *im, unsigned n_threads,
                                        struct qa_diag *d)
{
	struct qa_ref *ref = NULL;
	struct qa_plan_entry *pe = NULL;
	struct cmp_item *items = NULL;
	struct cmp_ctx c;
	struct qa_recipe_cmp *rc = NULL;
	enum qa_err e;
	memset(&c, 0, sizeof c);
	if (!r || n == 0 || n > QA_FX_MAX_RECIPES)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "recipe comparison needs 1 to %d recipes",
		                   QA_FX_MAX_RECIPES);
	if ((e = qa_ref_open(&ref, ref_path, d)))
		return e;
	size_t nr = qa_ref_n_tensors(ref);
	pe = calloc(nr * n + 1, sizeof *pe);
	items = calloc(r->n + 1, sizeof *items);
	rc = qa_recipe_cmp_new(recipes, n, r->n);
	c.diags = calloc(r->n + 1, sizeof *c.diags);
	if (!pe || !items || !rc || !c.diags) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (size_t k = 0; k < n; k++) {
		struct qa_diag why;
		qa_diag_clear(&why);
		if (qa_quantize_plan_types(ref, recipes[k], 0, im != NULL, pe + k * nr, &why)) {
			e = qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET, "recipe %s cannot be planned for this model: %.160s",
			                qa_recipe_name(recipes[k]), why.msg);
			goto done;
		}
	}
	/* the tensors both sides quantize: the artifact's quantized tensors
	 * paired by shape (error figures known; in a shard, only its own) */
	size_t ni = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		const struct qa_ref_tensor *rt = qa_ref_tensor_find(ref, t->name);
		if (!rt || !t->has_error || !t->quantized || rt->n_dims != 2)
			continue;
		struct cmp_item *it = &items[ni++];
		size_t ri = (size_t)(rt - qa_ref_tensor_at(ref, 0));
		it->rt = rt;
		it->diff_index = i;
		for (size_t k = 0; k < n; k++)
			it->type[k] = pe[k * nr + ri].type;
	}
	c.ref = ref;
	c.im = im;
	c.items = items;
	c.n_recipes = n;
	if ((e = qa_pool_run(n_threads ? n_threads : qa_pool_default_threads(), ni, cmp_one, &c))) {
		qa_pool_first_diag(c.diags, ni, d);
		goto done;
	}
	for (size_t i = 0; i < ni; i++) {
		const struct cmp_item *it = &items[i];
		size_t j = it->diff_index;
		rc->measured[j] = 1;
		rc->n_elems[j] = it->rt->n_elems;
		for (size_t k = 0; k < n; k++) {
			rc->sq[j * QA_FX_MAX_RECIPES + k] = it->sq[k];
			rc->bits[j * QA_FX_MAX_RECIPES + k] = it->bits[k];
		}
	}
	qa_recipe_cmp_free(r->recipe_cmp);
	r->recipe_cmp = rc;
	rc = NULL;
	e = qa_forensics_recipe_aggregate(r, d);
done:
	qa_recipe_cmp_free(rc);
	free(pe);
	free(items);
	free(c.diags);
	qa_ref_close(ref);
	return e;
}

/* ------------------------------------------------------------------ JSON */

/* A ratio for JSON, which has no infinity: null then. */
static json_t *ratio_json(double q)
{
	return isfinite(q) ? json_real(q) : json_null();
}

json_t *qa_forensics_layout_errors_json(const struct qa_diff_tensor *t)
{
	if (!t->has_layout_errors)
		return json_null();
	json_t *o = json_object();
	for (int l = 0; l < QA_FX_LAYOUTS; l++) {
		if (!t->layout_errors.tried[l])
			continue;
		json_t *e = json_object();
		json_object_set_new(e, "rmse", json_real(t->layout_errors.rmse[l]));
		json_object_set_new(e, "requant_rmse", json_real(t->layout_errors.noise[l]));
		json_object_set_new(e, "ratio", ratio_json(qa_forensics_ratio(t->layout_errors.rmse[l],
		                                                               t->layout_errors.noise[l])));
		json_object_set_new(o, layout_names[l], e);
	}
	return o;
}

json_t *qa_forensics_spread_json(const struct qa_diff_result *r)
{
	if (!r->quantizer_n)
		return json_null();
	json_t *o = json_object();
	json_object_set_new(o, "tensors", qa_json_u64(r->quantizer_n));
	json_object_set_new(o, "min_ratio", ratio_json(r->quantizer_min));
	json_object_set_new(o, "median_ratio", ratio_json(r->quantizer_median));
	json_object_set_new(o, "max_ratio", ratio_json(r->quantizer_max));
	return o;
}

json_t *qa_forensics_recipe_cmp_json(const struct qa_recipe_cmp *c)
{
	if (!c)
		return json_null();
	json_t *o = json_object(), *names = json_array(), *rows = json_array();
	for (size_t k = 0; k < c->n_recipes; k++)
		json_array_append_new(names, json_string(qa_recipe_name(c->recipes[k])));
	for (size_t j = 0; j < c->n_rows; j++) {
		const struct qa_recipe_cmp_row *row = &c->rows[j];
		json_t *ro = json_object(), *art = json_object(), *recs = json_object();
		json_object_set_new(ro, "class", json_string(row->cls));
		json_object_set_new(ro, "tensors", qa_json_u64(row->tensors));
		json_object_set_new(ro, "elements", qa_json_u64(row->n_elems));
		json_object_set_new(art, "rmse", json_real(row->art_rmse));
		json_object_set_new(art, "bpw", json_real(row->art_bpw));
		json_object_set_new(ro, "artifact", art);
		for (size_t k = 0; k < c->n_recipes; k++) {
			json_t *e = json_object();
			json_object_set_new(e, "rmse", json_real(row->rmse[k]));
			json_object_set_new(e, "bpw", json_real(row->bpw[k]));
			json_object_set_new(e, "artifact_ratio", ratio_json(qa_forensics_ratio(row->art_rmse, row->rmse[k])));
			json_object_set_new(recs, qa_recipe_name(c->recipes[k]), e);
		}
		json_object_set_new(ro, "recipes", recs);
		json_array_append_new(rows, ro);
	}
	json_object_set_new(o, "recipes", names);
	json_object_set_new(o, "rows", rows);
	return o;
}
