/*
 * quant_mxfp4.c - mxfp4, the OCP microscaling 4-bit float format, bit for
 * bit as ggml's quantize_row_mxfp4_ref and dequantize_row_mxfp4 write and
 * read it.  ggml ignores importance weights for mxfp4.
 *
 * A block (17 bytes) holds 32 weights: one E8M0 exponent byte e, then 16
 * bytes of 4-bit E2M1 codes, element j in the low nibble of byte j and
 * element j + 16 in the high nibble.  ggml stores the E2M1 values doubled
 * as integers (0 1 2 3 4 6 8 12 and their negatives, code 8 being -0) and
 * halves the scale instead, so a weight decodes to level[code] * 2^(e-128).
 *
 * The exponent is floor(log2(max |x|)) - 2 + 127 (0 for an all-zero block),
 * and each weight takes the first code whose decoded value is nearest.
 * That search has an AVX2 path (quant_x86.c) giving the same codes, taken
 * when the CPU has AVX2.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "quant.h"
#include "quant_fit.h"
#include "quant_x86.h"

#define MX_BLOCK 32
#define MX_HALF (MX_BLOCK / 2)
#define MX_BYTES 17

/* Doubled E2M1 values by code (a fact of the format). */
static const int8_t mx_levels[16] = {
	0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
};

/* 2^(e-128): half of the E8M0 scale 2^(e-127), exactly, subnormals included. */
static float half_scale(uint8_t e)
{
	uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
	float f;
	memcpy(&f, &bits, sizeof f);
	return f;
}

/* The first code whose value times scale is nearest to x. */
static uint8_t nearest_code(float x, float scale)
{
	uint8_t best = 0;
	float best_err = fabsf((float)mx_levels[0] * scale - x);
	for (uint8_t c = 1; c < 16; c++) {
		float err = fabsf((float)mx_levels[c] * scale - x);
		if (err < best_err) {
			best = c;
			best_err = err;
		}
	}
	return best;
}

/* The codes of one block, element j in the low nibble of byte j and j + 16 in the high one. */
static void block_codes(const float *x, float scale, uint8_t *out)
{
	for (int j = 0; j < MX_HALF; j++)
		out[j] = (uint8_t)(nearest_code(x[j], scale) | (nearest_code(x[j + MX_HALF], scale) << 4));
}

static void quantize_mxfp4(const float *src, uint8_t *out, size_t n, bool fast)
{
	for (size_t b = 0; b < n / MX_BLOCK; b++, src += MX_BLOCK, out += MX_BYTES) {
		float amax = 0.0f;
		for (int j = 0; j < MX_BLOCK; j++)
			if (amax < fabsf(src[j]))
				amax = fabsf(src[j]);
		/*
		 * The exponent is computed in float and narrowed as ggml's
		 * compiled code narrows it on x86-64: through a 32-bit integer,
		 * keeping the low byte (relevant only for subnormal blocks).
		 */
		uint8_t e = 0;
		if (amax > 0.0f)
			e = (uint8_t)(int32_t)(floorf(log2f(amax)) - 2 + 127);
		float scale = half_scale(e);
		out[0] = e;
#if QA_QUANT_X86
		if (fast) {
			qa_x86_mxfp4_codes(src, mx_levels, scale, out + 1);
			continue;
		}
#endif
		block_codes(src, scale, out + 1);
	}
}

void qa_quantize_mxfp4(const float *src, void *dst, size_t n)
{
#if QA_QUANT_X86
	quantize_mxfp4(src, dst, n, qa_quant_x86_available(false));
#else
	quantize_mxfp4(src, dst, n, false);
#endif
}

bool qa_quant_mxfp4_quantize(enum qa_quant_k_path path, const float *src, void *dst, size_t n)
{
	bool available = false, fast;
#if QA_QUANT_X86
	available = qa_quant_x86_available(false);
#endif
	if (!qa_quant_path_fast(path, available, &fast))
		return false;
	quantize_mxfp4(src, dst, n, fast);
	return true;
}

void qa_dequantize_mxfp4(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / MX_BLOCK; b++, in += MX_BYTES, dst += MX_BLOCK) {
		float scale = half_scale(in[0]);
		for (int j = 0; j < MX_HALF; j++) {
			dst[j] = (float)mx_levels[in[1 + j] & 0x0f] * scale;
			dst[j + MX_HALF] = (float)mx_levels[in[1 + j] >> 4] * scale;
		}
	}
}
