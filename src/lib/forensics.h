/*
 * forensics.h - what a diff can still say when the bytes cannot match.
 *
 * Byte-for-byte comparison proves an artifact; it cannot explain one that
 * was made by another quantizer, or with an importance matrix the auditor
 * does not have.  This module holds the measurements and decisions that
 * take over then, all by error rather than by bytes:
 *
 *   - the importance matrix an artifact declares (llama-quantize writes
 *     quantize.imatrix.{file,dataset,entries_count,chunks_count});
 *   - the `imatrix` verdict: a tensor of such an artifact whose blocks
 *     mostly diverge while its RMSE stays within the band that importance
 *     weighting produces (QA_FX_IMATRIX_LO..HI times that of ggml's
 *     unweighted re-quantization);
 *   - the fourth layout, `unpermuted`: llama-family attn_q/attn_k rows
 *     without the converter's rotary permutation;
 *   - layouts by error: the dequantized artifact measured against the
 *     reference under each layout, so that a transposed, swapped or
 *     unpermuted export is named even when no byte can match;
 *   - the different-quantizer inference with the spread of its ratios;
 *   - the comparison of an artifact with llama.cpp's recipes
 *     (diff --compare-recipe).
 *
 * The bands were measured on artifacts written by the real llama-quantize
 * (../shared/oracle/real, ../shared/oracle/models/ *imatrix*): see
 * docs/design.md, "Forensics".
 */
#ifndef QA_FORENSICS_H
#define QA_FORENSICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "gguf.h"
#include "layout.h"
#include "model.h"
#include "recipe.h"


/* The band of RMSE ratios (artifact / ggml's unweighted re-quantization)
 * that importance weighting produces; measured 0.764..1.159 over 307
 * tensors of 13 types written by llama-quantize --imatrix (docs/design.md).
 * A ratio below 1 is never damage, so the lower edge is generous. */
#define QA_FX_IMATRIX_LO 0.70
#define QA_FX_IMATRIX_HI 1.30
/* A layout whose ratio (artifact's error / ggml's re-quantization's, both
 * under that layout) is at most QA_FX_NOISE_HI lies within quantization
 * noise; out,in lies far outside it above QA_FX_FAR. */
#define QA_FX_NOISE_HI 1.5
#define QA_FX_FAR 3.0
/* The different-quantizer inference: every diverging tensor's ratio within
 * [QA_FX_QUANTIZER_LO, QA_FX_QUANTIZER_HI]. */
#define QA_FX_QUANTIZER_LO 0.75
#define QA_FX_QUANTIZER_HI 1.25

/* QA_FX_LAYOUTS, enum qa_evidence and struct qa_layout_errors are in layout.h
 * (they are part of a diff result). */

/* "out,in", "in,out", "transposed", "unpermuted"; "?" otherwise. */
const char *qa_forensics_layout_name(int layout);


/* "bytes", "error", or NULL for QA_EVIDENCE_NONE. */
const char *qa_forensics_evidence_name(enum qa_evidence e);


/* a / b as an error ratio: 1 when both are 0, +inf when only b is. */
double qa_forensics_ratio(double a, double b);

/*
 * Undo the llama converter's q/k row permutation (qa_names_permute_rows):
 * w holds rows x cols floats in GGUF order, dst receives them in the
 * checkpoint's order, i.e. what an exporter that forgot the permutation
 * writes.  Errors as qa_names_permute_rows; dst untouched then.
 */
QA_WARN_UNUSED
enum qa_err qa_forensics_unpermute(const float *w, float *dst, uint64_t rows, uint64_t cols,
                                   uint32_t n_heads, struct qa_diag *d);

/*
 * RMSE of the values a (g->n_rows rows of g->padded floats, e.g. a
 * dequantized artifact) against the reference w ([out][in] row-major)
 * arranged as layout l, padding excluded.  rowbuf is caller scratch of
 * g->padded floats.  Accumulated in double in a fixed order.
 */
double qa_forensics_layout_rmse(enum qa_layout l, const float *w, uint64_t in, uint64_t out,
                                const struct qa_layout_geom *g, const float *a, float *rowbuf);

/*
 * The layout that the errors e name, or -1: a layout other than out,in
 * whose ratio rmse/noise is at most QA_FX_NOISE_HI (the smallest such),
 * while out,in was either not comparable or has a ratio above QA_FX_FAR.
 */
int qa_forensics_layout_by_error(const struct qa_layout_errors *e);

/* True when ratio lies in [QA_FX_IMATRIX_LO, QA_FX_IMATRIX_HI]. */
bool qa_forensics_imatrix_band(double ratio);

struct qa_diff_result;

/*
 * The verdicts and inference a diff result gets after every tensor was
 * compared by bytes and by layout errors: the `imatrix` verdict where the
 * artifact declares a matrix and none was given (r->declared_imatrix,
 * r->imatrix), and the different-quantizer
 * inference with its spread (r->quantizer_*).  Counts are recomputed.
 */
void qa_forensics_classify(struct qa_diff_result *r);

/* ------------------------------------------------------------------ recipes */

#define QA_FX_MAX_RECIPES 8

/* One row of the recipe comparison: a tensor class, or the whole model. */
struct qa_recipe_cmp_row {
	char cls[48];              /* tensor class ("attn_q", "output", ...) or "all" */
	size_t tensors;
	uint64_t n_elems;
	double art_rmse, art_bpw;  /* the artifact */
	double rmse[QA_FX_MAX_RECIPES], bpw[QA_FX_MAX_RECIPES]; /* ggml under each recipe */
};

struct qa_recipe_cmp {
	size_t n_recipes;
	const struct qa_recipe *recipes[QA_FX_MAX_RECIPES]; /* static */
	size_t n_rows;             /* classes in first-seen order, then "all" */
	struct qa_recipe_cmp_row *rows;
	/* the measurements behind the rows, one per diff tensor (n_tensors =
	 * the result's n): what qa_forensics_recipe_aggregate sums, and what a
	 * shard's part carries for its own tensors */
	size_t n_tensors;
	uint8_t *measured;         /* tensor i was re-quantized under every recipe */
	uint64_t *n_elems;         /* its element count */
	double *sq, *bits;         /* [i * QA_FX_MAX_RECIPES + k]: squared error and bits under recipe k */
};

/*
 * Parse "Q4_K_M,Q4_K_S" into at most QA_FX_MAX_RECIPES recipes.  Errors:
 * QA_ERR_USAGE naming the first unknown or empty name, a repeated name, or
 * too many.
 */
QA_WARN_UNUSED
enum qa_err qa_forensics_recipes_parse(const char *list, const struct qa_recipe **out,
                                       size_t *n, struct qa_diag *d);

/*
 * Re-quantize the reference at ref_path under each of the n recipes (plan
 * by llama.cpp's rules, ggml's quantizer) and measure, per tensor class and
 * for the whole model, its RMSE and bits per weight next to the artifact's
 * (r's tensors with error figures, i.e. paired with the same shape), with
 * the importance matrix im when not NULL (borrowed; the plans then take
 * llama.cpp's has-imatrix rules and the weighted quantizers).  The
 * result is stored in r->recipe_cmp (freed by qa_diff_free).  Errors: the
 * reader's, QA_ERR_VALUE when a recipe cannot be planned for the model,
 * QA_ERR_NOMEM.
 */
struct qa_imatrix;
QA_WARN_UNUSED
enum qa_err qa_forensics_recipe_compare(const char *ref_path, struct qa_diff_result *r,
                                        const struct qa_recipe *const *recipes, size_t n,
                                        const struct qa_imatrix *im, unsigned n_threads,
                                        struct qa_diag *d);

/*
 * A comparison with no measurements for the n recipes and the n_tensors
 * tensors of a result (a merge fills it from parts); NULL when out of
 * memory.  Free with qa_recipe_cmp_free.
 */
struct qa_recipe_cmp *qa_recipe_cmp_new(const struct qa_recipe *const *recipes, size_t n, size_t n_tensors);

/*
 * (Re)compute r->recipe_cmp's rows from its measurements and r's tensors:
 * classes in the order of r's tensors, sums in that order, so that a merge
 * of shards gives the unsharded run's figures bit for bit.  QA_ERR_NOMEM.
 */
enum qa_err qa_forensics_recipe_aggregate(struct qa_diff_result *r, struct qa_diag *d);

void qa_recipe_cmp_free(struct qa_recipe_cmp *c);

/* ------------------------------------------------------------------ JSON */

struct qa_diff_tensor;

/* The JSON pieces of the diff schema (quantaudit.diff/1) this module adds;
 * each returns a new reference (json_null() when there is nothing). */
json_t *qa_forensics_layout_errors_json(const struct qa_diff_tensor *t);
json_t *qa_forensics_spread_json(const struct qa_diff_result *r);
json_t *qa_forensics_recipe_cmp_json(const struct qa_recipe_cmp *c);

#endif
