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
 * of the super-block.  The sub-block search is iq4_nl's (quant_fit.h),
 * AVX2 included.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cursor.h"
#include "fp16.h"
#include "quant.h"
#include "quant_fit.h"

#define XS_BLOCK 256
#define XS_SUB 32
#define XS_NSUB (XS_BLOCK / XS_SUB)
#define XS_BYTES 136
#define XS_QS 8              /* offset of the 4-bit indices */
#define xs_levels qa_iq4_levels

/* Round to nearest, ties to even, through the 1.5 * 2^23 shift (|v| < 2^22). */
static int round_shift(float v)
{
	float s = v + 12582912.f;
	int32_t bits;
	memcpy(&bits, &s, sizeof bits);
	return (bits & 0x007fffff) - 0x00400000;
}

/* One super-block; qw is its 256 importance weights or NULL. */
static void quantize_block(const float *x, const float *qw, bool fast, uint8_t *out)
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
		scales[ib] = qa_quant_fit_iq4(xb, w, fast);
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
		uint8_t *qs = out + XS_QS + 16 * ib, idx[XS_SUB];
		qa_quant_iq4_indices(xb, idl, fast, idx);
		for (int j = 0; j < 16; j++)
			qs[j] = (uint8_t)(idx[j] | (idx[j + 16] << 4));
		l += 32;
		out[4 + ib / 2] |= (uint8_t)((l & 0xf) << (4 * (ib % 2)));
		scales_h |= (uint16_t)((l >> 4) << (2 * ib));
	}
	qa_store_le16(out + 2, scales_h);
}

void qa_quant_iq4_xs_rows(const float *src, void *dst, size_t nrow, size_t n_per_row, const float *qw,
                          bool fast)
{
	uint8_t *out = dst;
	for (size_t r = 0; r < nrow; r++)
		for (size_t b = 0; b < n_per_row / XS_BLOCK; b++, src += XS_BLOCK, out += XS_BYTES)
			quantize_block(src, qw ? qw + b * XS_BLOCK : NULL, fast, out);
}

void qa_quantize_rows_iq4_xs(const float *src, void *dst, size_t nrow, size_t n_per_row,
                             const float *qw)
{
	qa_quant_iq4_xs_rows(src, dst, nrow, n_per_row, qw, qa_quant_iq4_fast());
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
