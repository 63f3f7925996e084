/*
 * quant_iq4xs.c - iq4_xs, the 4.25-bit non-linear super-block format,
 * reproduced bit for bit from ggml's quantize_iq4_xs (with and without
 * importance weights) and dequantize_row_iq4_xs.
 *
 * A block (136 bytes) holds 256 weights in eight sub-blocks of 32: an fp16
 * super-scale d (bytes 0..1), a little-endian uint16 with the high 2 bits
 * of every sub-block's 6-bit scale (sub-block i at bits 2i..2i+1), 4 bytes
 * with their low 4 bits (sub-block i in byte i/2, low nibble for even i),
 * then 128 bytes of 4-bit indices into the iq4_nl level table, sub-block i
 * in bytes 16i..16i+15 (element j in the low nibble of byte j, element
 * j + 16 in the high nibble).  A weight decodes to
 * d * (scale - 32) * level[index].
 *
 * Quantizing fits each sub-block's own float scale as iq4_nl does (start at
 * the scale mapping the signed extreme onto the most negative level, try 15
 * inverse scales around it, keep the weighted least-squares best), then
 * expresses every sub-block scale as a multiple l in -32..31 of
 * d = -(the sub-block scale of largest magnitude) / 32 and re-picks every
 * index against d * l.  The weights are x^2 without an importance matrix,
 * qw[j] * sqrt(sigma2 + x^2) with one, sigma2 being twice the mean square
 * of the super-block.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cursor.h"
#include "fp16.h"
#include "quant.h"

#define XS_BLOCK 256
#define XS_SUB 32
#define XS_NSUB (XS_BLOCK / XS_SUB)
#define XS_BYTES 136
#define XS_QS 8              /* offset of the 4-bit indices */
#define XS_TRIES 7           /* trial offsets -7..7 around the extreme level */
#define XS_GROUP_EPS 1e-15f  /* sub-blocks whose extreme is below this are zero */

/* The 16 levels shared with iq4_nl (a fact of the format). */
static const int8_t xs_levels[16] = {
	-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/*
 * Index of the level nearest to v: ends clamp, and between two neighbours
 * the lower wins only when strictly closer, distances taken in float.
 */
static int nearest_level(float v)
{
	if (v <= (float)xs_levels[0])
		return 0;
	if (v >= (float)xs_levels[15])
		return 15;
	int lo = 0, hi = 15;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (v < (float)xs_levels[mid])
			hi = mid;
		else
			lo = mid;
	}
	return v - (float)xs_levels[hi - 1] < (float)xs_levels[hi] - v ? hi - 1 : hi;
}

/* Round to nearest, ties to even, through the 1.5 * 2^23 shift (|v| < 2^22). */
static int round_shift(float v)
{
	float s = v + 12582912.f;
	int32_t bits;
	memcpy(&bits, &s, sizeof bits);
	return (bits & 0x007fffff) - 0x00400000;
}

/* sum w*q*x and sum w*q*q of the levels x maps to under inverse scale inv. */
static void fit_sums(const float *x, const float *w, float inv, float *sqx, float *sqq)
{
	float a = 0.0f, b = 0.0f;
	for (int j = 0; j < XS_SUB; j++) {
		float q = (float)xs_levels[nearest_level(inv * x[j])];
		a += w[j] * q * x[j];
		b += w[j] * q * q;
	}
	*sqx = a;
	*sqq = b;
}

/* The float scale of one sub-block with weights w (0 for a negligible one). */
static float sub_scale(const float *x, const float *w)
{
	float amax = 0.0f, max = 0.0f;
	for (int j = 0; j < XS_SUB; j++) {
		float a = fabsf(x[j]);
		if (a > amax) {
			amax = a;
			max = x[j];
		}
	}
	if (amax < XS_GROUP_EPS)
		return 0.0f;
	float d = -max / (float)xs_levels[0];
	float sqx, sqq;
	fit_sums(x, w, 1 / d, &sqx, &sqq);
	d = sqq > 0 ? sqx / sqq : 0.0f;
	float best = d * sqx;
	for (int t = -XS_TRIES; t <= XS_TRIES; t++) {
		fit_sums(x, w, (float)(t + xs_levels[0]) / max, &sqx, &sqq);
		if (sqq > 0 && sqx * sqx > best * sqq) {
			d = sqx / sqq;
			best = d * sqx;
		}
	}
	return d;
}

/* One super-block; qw is its 256 importance weights or NULL. */
static void quantize_block(const float *x, const float *qw, uint8_t *out)
{
	float sigma2 = 0.0f;
	for (int j = 0; j < XS_BLOCK; j++)
		sigma2 += x[j] * x[j];
	sigma2 *= 2.f / XS_BLOCK;

	float scales[XS_NSUB];
	float max_scale = 0.0f, amax_scale = 0.0f;
	for (int ib = 0; ib < XS_NSUB; ib++) {
		const float *xb = x + ib * XS_SUB;
		float w[XS_SUB];
		for (int j = 0; j < XS_SUB; j++)
			w[j] = qw ? qw[ib * XS_SUB + j] * sqrtf(sigma2 + xb[j] * xb[j])
			          : xb[j] * xb[j];
		scales[ib] = sub_scale(xb, w);
		float a = fabsf(scales[ib]);
		if (a > amax_scale) {
			amax_scale = a;
			max_scale = scales[ib];
		}
	}

	float d = -max_scale / 32;
	float id = d != 0.0f ? 1 / d : 0.0f;
	uint16_t scales_h = 0;
	memset(out, 0, XS_BYTES);
	qa_store_le16(out, qa_fp32_to_fp16(d));
	for (int ib = 0; ib < XS_NSUB; ib++) {
		int l = round_shift(id * scales[ib]);
		l = l < -32 ? -32 : (l > 31 ? 31 : l);
		float dl = d * (float)l;
		float idl = dl != 0.0f ? 1 / dl : 0.0f;
		const float *xb = x + ib * XS_SUB;
		uint8_t *qs = out + XS_QS + 16 * ib;
		for (int j = 0; j < 16; j++)
			qs[j] = (uint8_t)(nearest_level(idl * xb[j]) |
			                  (nearest_level(idl * xb[j + 16]) << 4));
		l += 32;
		out[4 + ib / 2] |= (uint8_t)((l & 0xf) << (4 * (ib % 2)));
		scales_h |= (uint16_t)((l >> 4) << (2 * ib));
	}
	qa_store_le16(out + 2, scales_h);
}

void qa_quantize_rows_iq4_xs(const float *src, void *dst, size_t nrow, size_t n_per_row,
                             const float *qw)
{
	uint8_t *out = dst;
	for (size_t r = 0; r < nrow; r++)
		for (size_t b = 0; b < n_per_row / XS_BLOCK; b++, src += XS_BLOCK, out += XS_BYTES)
			quantize_block(src, qw ? qw + b * XS_BLOCK : NULL, out);
}

void qa_quantize_iq4_xs(const float *src, void *dst, size_t n)
{
	qa_quantize_rows_iq4_xs(src, dst, 1, n, NULL);
}

void qa_dequantize_iq4_xs(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / XS_BLOCK; b++, in += XS_BYTES) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		uint16_t scales_h = qa_load_le16(in + 2);
		for (int ib = 0; ib < XS_NSUB; ib++, dst += XS_SUB) {
			int ls = ((in[4 + ib / 2] >> (4 * (ib % 2))) & 0xf) |
			         (((scales_h >> (2 * ib)) & 3) << 4);
			float dl = d * (float)(ls - 32);
			const uint8_t *qs = in + XS_QS + 16 * ib;
			for (int j = 0; j < 16; j++) {
				dst[j] = dl * (float)xs_levels[qs[j] & 0xf];
				dst[j + 16] = dl * (float)xs_levels[qs[j] >> 4];
			}
		}
	}
}
