/*
 * quant_tq.c - the ternary types tq1_0 and tq2_0 (BitNet b1.58 / TriLM
 * weights), reproduced bit for bit from ggml's quantize_row_tq1_0_ref,
 * quantize_row_tq2_0_ref and their dequantizers.  ggml ignores importance
 * weights for both, so there is no weighted path.  The functions here are
 * the scalar reference; quant_x86.c has AVX2 paths writing the same bytes,
 * which the entry points take when the CPU has them.
 *
 * Both work on 256-element blocks with one fp16 scale d = max |x| and every
 * weight rounded (half away from zero) to a trit t = round(x / d) in
 * {-1, 0, 1}, stored as t + 1 in {0, 1, 2}; a weight decodes to (t) * d.
 *
 * tq2_0 (66 bytes): 64 bytes of 2-bit trits, then d.  Byte m of 32-byte
 * group g holds the elements 128g + 32n + m at bits 2n..2n+1 (n = 0..3).
 *
 * tq1_0 (54 bytes): 48 bytes qs, 4 bytes qh, then d.  Five trits make a
 * base-3 number v < 243 (the first trit most significant), stored as the
 * fixed-point fraction ceil(v * 256 / 243), so that trit n is recovered as
 * the integer part of 3 * frac(byte * 3^n / 256).  qs[0..31] hold elements
 * m + 32n (n = 0..4) of the first 160, qs[32..47] elements 160 + m + 16n of
 * the next 80, and qh[j] the last 16 as four trits j + 4n with a fifth zero
 * trit appended.
 */
#include <math.h>
#include <stdint.h>

#include "cursor.h"
#include "fp16.h"
#include "quant.h"
#include "quant_x86.h"

#define TQ_BLOCK 256
#define TQ1_QS 48
#define TQ1_QH 4
#define TQ1_BYTES (TQ1_QS + TQ1_QH + 2)
#define TQ2_QS 64
#define TQ2_BYTES (TQ2_QS + 2)

/* max |x| over one block and its inverse (0 for an all-zero block). */
static float block_scale(const float *x, float *inv)
{
	float amax = 0.0f;
	for (int j = 0; j < TQ_BLOCK; j++) {
		float a = fabsf(x[j]);
		amax = amax > a ? amax : a;
	}
	*inv = amax != 0.0f ? 1.0f / amax : 0.0f;
	return amax;
}

/* The stored trit 0..2 of one weight. */
static unsigned trit(float x, float inv)
{
	return (unsigned)(lroundf(x * inv) + 1);
}

/* Fixed-point encoding of a base-3 number v < 243 as ceil(v * 256 / 243). */
static uint8_t pack_trits(unsigned v)
{
	return (uint8_t)((v * 256u + 242u) / 243u);
}

/* Trit n (0 = most significant) of a byte written by pack_trits. */
static int unpack_trit(uint8_t byte, unsigned pow3)
{
	uint8_t q = (uint8_t)(byte * pow3);
	return (int)(((unsigned)q * 3u) >> 8);
}

static const unsigned pow3[5] = { 1, 3, 9, 27, 81 };

static void tq1_0_scalar(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t b = 0; b < n / TQ_BLOCK; b++, src += TQ_BLOCK, out += TQ1_BYTES) {
		float inv, d = block_scale(src, &inv);
		const float *x = src;
		/* qs[0..31] over 160 elements, then qs[32..47] over 80 */
		for (int part = 0; part < 2; part++) {
			int width = part == 0 ? 32 : 16;
			uint8_t *qs = out + (part == 0 ? 0 : 32);
			for (int m = 0; m < width; m++) {
				unsigned v = 0;
				for (int k = 0; k < 5; k++)
					v = v * 3 + trit(x[m + k * width], inv);
				qs[m] = pack_trits(v);
			}
			x += 5 * width;
		}
		for (int j = 0; j < TQ1_QH; j++) {
			unsigned v = 0;
			for (int k = 0; k < 4; k++)
				v = v * 3 + trit(x[j + k * TQ1_QH], inv);
			out[TQ1_QS + j] = pack_trits(v * 3);
		}
		qa_store_le16(out + TQ1_QS + TQ1_QH, qa_fp32_to_fp16(d));
	}
}

void qa_dequantize_tq1_0(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / TQ_BLOCK; b++, in += TQ1_BYTES) {
		float d = qa_fp16_to_fp32(qa_load_le16(in + TQ1_QS + TQ1_QH));
		for (int part = 0; part < 2; part++) {
			int width = part == 0 ? 32 : 16;
			const uint8_t *qs = in + (part == 0 ? 0 : 32);
			for (int k = 0; k < 5; k++)
				for (int m = 0; m < width; m++)
					*dst++ = (float)(unpack_trit(qs[m], pow3[k]) - 1) * d;
		}
		for (int k = 0; k < 4; k++)
			for (int j = 0; j < TQ1_QH; j++)
				*dst++ = (float)(unpack_trit(in[TQ1_QS + j], pow3[k]) - 1) * d;
	}
}

static void tq2_0_scalar(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t b = 0; b < n / TQ_BLOCK; b++, src += TQ_BLOCK, out += TQ2_BYTES) {
		float inv, d = block_scale(src, &inv);
		for (int g = 0; g < 2; g++) {
			const float *x = src + 128 * g;
			for (int m = 0; m < 32; m++) {
				unsigned q = 0;
				for (int k = 0; k < 4; k++)
					q |= (trit(x[m + 32 * k], inv) & 3u) << (2 * k);
				out[32 * g + m] = (uint8_t)q;
			}
		}
		qa_store_le16(out + TQ2_QS, qa_fp32_to_fp16(d));
	}
}

void qa_dequantize_tq2_0(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / TQ_BLOCK; b++, in += TQ2_BYTES) {
		float d = qa_fp16_to_fp32(qa_load_le16(in + TQ2_QS));
		for (int g = 0; g < 2; g++)
			for (int k = 0; k < 4; k++)
				for (int m = 0; m < 32; m++)
					*dst++ = (float)((int)((in[32 * g + m] >> (2 * k)) & 3) - 1) * d;
	}
}

/* ---------------------------------------------------------------- dispatch */

void qa_quantize_tq1_0(const float *src, void *dst, size_t n)
{
	qa_quant_tq_quantize(QA_TYPE_TQ1_0, QA_QUANT_K_AUTO, src, dst, n);
}

void qa_quantize_tq2_0(const float *src, void *dst, size_t n)
{
	qa_quant_tq_quantize(QA_TYPE_TQ2_0, QA_QUANT_K_AUTO, src, dst, n);
}

bool qa_quant_tq_quantize(uint32_t type, enum qa_quant_k_path path, const float *src, void *dst,
                          size_t n)
{
	if (type != QA_TYPE_TQ1_0 && type != QA_TYPE_TQ2_0)
		return false;
	bool one = type == QA_TYPE_TQ1_0;
	switch (path) {
	case QA_QUANT_K_SIMD8:
	case QA_QUANT_K_AUTO:
#if QA_QUANT_X86
		if (qa_quant_x86_available(true)) {
			(one ? qa_x86_quantize_tq1_0 : qa_x86_quantize_tq2_0)(src, dst, n);
			return true;
		}
#endif
		if (path != QA_QUANT_K_AUTO)
			return false;
		/* fall through */
	case QA_QUANT_K_SCALAR:
		(one ? tq1_0_scalar : tq2_0_scalar)(src, dst, n);
		return true;
	default:
		return false;
	}
}
