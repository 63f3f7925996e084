/*
 * quant_iq.c - iq4_nl, the 4-bit non-linear format, reproduced bit for bit
 * from ggml's quantize_iq4_nl (no importance matrix) and
 * dequantize_row_iq4_nl.
 *
 * A block holds 32 weights as an fp16 scale d (bytes 0..1) and 16 bytes of
 * 4-bit indices into a fixed table of 16 non-uniformly spaced int8 levels;
 * element j and j+16 share byte j (low, high nibble).  A weight decodes to
 * d * level[index].
 *
 * Quantizing searches for the scale that maximises the weighted fit
 * (sum w*q*x)^2 / (sum w*q*q) with weights w = x*x: it starts from the scale
 * that maps the signed extreme onto the most negative level, then tries 15
 * nearby inverse scales (level[0] + t) / max for t in -7..7, each time
 * mapping every weight to its nearest level and keeping the least-squares
 * scale of the best trial.  The final indices are recomputed against the
 * chosen scale.  The float operation order follows the reference exactly.
 * The search is shared with iq4_xs (quant_fit.h) and has an AVX2 path
 * (quant_x86.c) giving the same sums and indices, used when the CPU has it.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cursor.h"
#include "fp16.h"
#include "quant.h"
#include "quant_fit.h"
#include "quant_x86.h"

#define NL_BLOCK 32
#define NL_HALF (NL_BLOCK / 2)
#define NL_BYTES 18
#define NL_TRIES 7           /* trial offsets -7..7 around the extreme level */
#define NL_GROUP_EPS 1e-15f  /* blocks whose extreme is below this are all zero */

/* The 16 iq4_nl levels (a fact of the format), shared with iq4_xs. */
const int8_t qa_iq4_levels[16] = {
	-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};
#define nl_levels qa_iq4_levels

/*
 * Index of the level nearest to v by bisection over the sorted table.  Values
 * at or beyond either end map to that end; between two neighbours the lower
 * one wins only when strictly closer (ties go up), with the distances
 * computed in float as the reference does.
 */
static int nearest_level(float v)
{
	if (v <= (float)nl_levels[0])
		return 0;
	if (v >= (float)nl_levels[15])
		return 15;
	int lo = 0, hi = 15;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (v < (float)nl_levels[mid])
			hi = mid;
		else
			lo = mid;
	}
	return v - (float)nl_levels[hi - 1] < (float)nl_levels[hi] - v ? hi - 1 : hi;
}

/*
 * Map the block through inverse scale inv and accumulate the weighted
 * products sum w*q*x and sum w*q*q of the resulting levels (the AVX2 path
 * when fast).
 */
static void fit_sums(const float *x, const float *w, float inv, bool fast, float *sqx, float *sqq)
{
#if QA_QUANT_X86
	if (fast) {
		qa_x86_iq4_fit_sums(x, w, inv, nl_levels, sqx, sqq);
		return;
	}
#else
	(void)fast;
#endif
	float a = 0.0f, b = 0.0f;
	for (int j = 0; j < NL_BLOCK; j++) {
		float q = (float)nl_levels[nearest_level(inv * x[j])];
		a += w[j] * q * x[j];
		b += w[j] * q * q;
	}
	*sqx = a;
	*sqq = b;
}

void qa_quant_iq4_indices(const float *x, float inv, bool fast, uint8_t idx[32])
{
#if QA_QUANT_X86
	if (fast) {
		qa_x86_iq4_indices(x, inv, nl_levels, idx);
		return;
	}
#else
	(void)fast;
#endif
	for (int j = 0; j < NL_BLOCK; j++)
		idx[j] = (uint8_t)nearest_level(inv * x[j]);
}

float qa_quant_fit_iq4(const float *x, const float *w, bool fast)
{
	float amax = 0.0f, max = 0.0f;
	for (int j = 0; j < NL_BLOCK; j++) {
		float a = fabsf(x[j]);
		if (a > amax) {
			amax = a;
			max = x[j];
		}
	}
	if (amax < NL_GROUP_EPS)
		return 0.0f;

	/* Starting point: the extreme lands on the most negative level. */
	float d = -max / (float)nl_levels[0];
	float sqx, sqq;
	fit_sums(x, w, 1 / d, fast, &sqx, &sqq);
	d = sqq > 0 ? sqx / sqq : 0.0f;
	float best = d * sqx;

	for (int t = -NL_TRIES; t <= NL_TRIES; t++) {
		float inv = (float)(t + nl_levels[0]) / max;
		fit_sums(x, w, inv, fast, &sqx, &sqq);
		if (sqq > 0 && sqx * sqx > best * sqq) {
			d = sqx / sqq;
			best = d * sqx;
		}
	}
	return d;
}

bool qa_quant_iq4_fast(void)
{
#if QA_QUANT_X86
	return qa_quant_x86_available(false);
#else
	return false;
#endif
}

/*
 * Encode one block at src into out; weights qw (importance per column of
 * the block) or NULL.  Without importance the fit is weighted by x^2; with
 * it, by qw[j] * sqrt(sigma2 + x^2), sigma2 being twice the block's mean
 * square (ggml's quantize_row_iq4_nl_impl with a super-block of one block).
 */
static void encode_block(const float *src, const float *qw, bool fast, uint8_t *out)
{
	float w[NL_BLOCK];
	if (qw) {
		float sigma2 = 0;
		for (int j = 0; j < NL_BLOCK; j++)
			sigma2 += src[j] * src[j];
		sigma2 *= 2.f / NL_BLOCK;
		for (int j = 0; j < NL_BLOCK; j++)
			w[j] = qw[j] * sqrtf(sigma2 + src[j] * src[j]);
	} else {
		for (int j = 0; j < NL_BLOCK; j++)
			w[j] = src[j] * src[j];
	}
	float d = qa_quant_fit_iq4(src, w, fast);
	float inv = d != 0.0f ? 1 / d : 0.0f;
	uint8_t idx[NL_BLOCK];
	qa_quant_iq4_indices(src, inv, fast, idx);
	qa_store_le16(out, qa_fp32_to_fp16(d));
	for (int j = 0; j < NL_HALF; j++)
		out[2 + j] = (uint8_t)(idx[j] | (idx[j + NL_HALF] << 4));
}

/*
 * ggml's quantize_iq4_nl: unlike the legacy and k-quant types, the same
 * search (7 trial offsets) runs with and without an importance matrix,
 * and block b of a row takes the weights at column 32*b.
 */
static void iq4_nl_rows(const float *src, uint8_t *out, size_t nrow, size_t n_per_row,
                        const float *qw, bool fast)
{
	for (size_t r = 0; r < nrow; r++)
		for (size_t b = 0; b < n_per_row / NL_BLOCK; b++, out += NL_BYTES)
			encode_block(src + r * n_per_row + b * NL_BLOCK, qw ? qw + b * NL_BLOCK : NULL,
			             fast, out);
}

void qa_quantize_iq4_nl(const float *src, void *dst, size_t n)
{
	iq4_nl_rows(src, dst, 1, n, NULL, qa_quant_iq4_fast());
}

void qa_quantize_rows_iq4_nl(const float *src, void *dst, size_t nrow, size_t n_per_row,
                             const float *qw)
{
	iq4_nl_rows(src, dst, nrow, n_per_row, qw, qa_quant_iq4_fast());
}

bool qa_quant_iq4_quantize(uint32_t type, enum qa_quant_k_path path, const float *src, void *dst,
                           size_t nrow, size_t n_per_row, const float *qw)
{
	bool fast;
	if ((type != QA_TYPE_IQ4_NL && type != QA_TYPE_IQ4_XS) ||
	    !qa_quant_path_fast(path, qa_quant_iq4_fast(), &fast))
		return false;
	if (type == QA_TYPE_IQ4_NL)
		iq4_nl_rows(src, dst, nrow, n_per_row, qw, fast);
	else
		qa_quant_iq4_xs_rows(src, dst, nrow, n_per_row, qw, fast);
	return true;
}

void qa_dequantize_iq4_nl(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / NL_BLOCK; b++, in += NL_BYTES, dst += NL_BLOCK) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		for (int j = 0; j < NL_HALF; j++) {
			dst[j] = d * (float)nl_levels[in[2 + j] & 0x0f];
			dst[j + NL_HALF] = d * (float)nl_levels[in[2 + j] >> 4];
		}
	}
}
