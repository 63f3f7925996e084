/*
 * quant_fit.h - the group fits that several quantizer families share
 * (internal to the quant_*.c files; not part of the library's interface).
 *
 * Each reproduces one of ggml's helpers float for float (same operation
 * order, same int/float conversions; build with -ffp-contract=off), so a
 * caller that feeds it the same inputs gets the same levels and scale as
 * ggml's quantizer.  All arrays are borrowed for the call.
 */
#ifndef QA_QUANT_FIT_H
#define QA_QUANT_FIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant.h"

/*
 * Affine fit of a group of n <= 32 values x with weights w: levels q in
 * [0, nmax], *neg_min receives -m, returns the scale s with x ~ s*q + m.
 * ggml's make_qkx2_quants, which is also make_qkx3_quants when weights are
 * given.
 */
float qa_quant_fit_affine(int n, int nmax, const float *x, const float *w,
                          uint8_t *q, float *neg_min, float rmin, float rdelta,
                          int nstep, bool abs_err);

/*
 * The opening of every affine fit (ggml's make_qkx2/qkx3_quants): the
 * least and greatest of the n values x (the least clamped to at most 0),
 * and the sums of the weights w and of w[i] * x[i], in element order.
 * Inline, so the scalar fit and the vector ones (quant_x86.c) compute them
 * the same way, float for float.
 */
static inline void qa_quant_fit_range(int n, const float *x, const float *w, float *lo, float *hi,
                                      float *sw, float *swx)
{
	float l = x[0], h = x[0], s = w[0], sx = s * x[0];
	for (int i = 1; i < n; ++i) {
		if (x[i] < l)
			l = x[i];
		if (x[i] > h)
			h = x[i];
		float wi = w[i];
		s += wi;
		sx += wi * x[i];
	}
	*lo = l > 0 ? 0 : l;
	*hi = h;
	*sw = s;
	*swx = sx;
}

/*
 * Symmetric fit of n values: levels offset by +nmax in [0, 2*nmax-1] to q,
 * returns the scale; weights qw[i], or x[i]^2 when qw is NULL.  ggml's
 * make_qx_quants(n, nmax, x, q, 1, qw).
 */
float qa_quant_fit_symmetric(int n, int nmax, const float *x, int8_t *q, const float *qw);

/*
 * Fit of n non-negative values (the group scales or minimums of a
 * super-block) to levels in [0, nmax] with weights qw (not NULL): returns
 * the super-block factor, levels to q (stored as ggml stores them, in a
 * byte).  ggml's make_qp_quants.
 */
float qa_quant_fit_positive(int n, int nmax, const float *x, uint8_t *q, const float *qw);

/*
 * The iq4 level search shared by iq4_nl and iq4_xs (quant_iq.c): the
 * levels, the scale of one block of 32 values x with weights w (ggml's
 * quantize_row_iq4_nl_impl search with 7 trial offsets; 0 for a block
 * whose extreme is below 1e-15), and the nearest level index of inv * x[j]
 * for 32 values.  fast takes the AVX2 path, which gives the same results;
 * it may only be true when qa_quant_iq4_fast() is.
 */
extern const int8_t qa_iq4_levels[16];
bool qa_quant_iq4_fast(void);
float qa_quant_fit_iq4(const float *x, const float *w, bool fast);
void qa_quant_iq4_indices(const float *x, float inv, bool fast, uint8_t idx[32]);

/*
 * The path a request takes in a family with one vector path (AVX2: SIMD8)
 * beside the scalar one, available telling whether this CPU runs it:
 * *fast is set and true returned, or false for an unknown path or SIMD8
 * where it is not available (quant.c).
 */
bool qa_quant_path_fast(enum qa_quant_k_path path, bool available, bool *fast);

/* iq4_xs rows (quant_iq4xs.c) on the chosen path, as qa_quantize_rows_iq4_xs. */
void qa_quant_iq4_xs_rows(const float *src, void *dst, size_t nrow, size_t n_per_row, const float *qw,
                          bool fast);

#endif
