/*
 * quant_fp.c - the plain floating-point "quantizations": f32 (a
 * little-endian copy), f16 and bf16.
 *
 * Narrowing matches ggml_fp32_to_fp16_row and ggml_fp32_to_bf16_row_ref:
 * round to nearest, ties to even, through the conversions of fp16.h.
 * Widening is exact.  Every element is its own block, stored little-endian.
 */
#include <stdint.h>

#include "cursor.h"
#include "fp16.h"
#include "quant.h"
#include "quant_x86.h"

void qa_quantize_f32(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t i = 0; i < n; i++)
		qa_store_lef32(out + 4 * i, src[i]);
}

void qa_dequantize_f32(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t i = 0; i < n; i++)
		dst[i] = qa_load_lef32(in + 4 * i);
}

static void quantize_f16_scalar(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t i = 0; i < n; i++)
		qa_store_le16(out + 2 * i, qa_fp32_to_fp16(src[i]));
}

static void dequantize_f16_scalar(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t i = 0; i < n; i++)
		dst[i] = qa_fp16_to_fp32(qa_load_le16(in + 2 * i));
}

static void quantize_bf16_scalar(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t i = 0; i < n; i++)
		qa_store_le16(out + 2 * i, qa_fp32_to_bf16(src[i]));
}

static void dequantize_bf16_scalar(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t i = 0; i < n; i++)
		dst[i] = qa_bf16_to_fp32(qa_load_le16(in + 2 * i));
}

/* ---------------------------------------------------------------- dispatch */

/*
 * f16 takes F16C and bf16 AVX2 (quant_x86.c) when the CPU has them; both
 * produce the same bytes and floats as the scalar functions above
 * (check_quant's paths_agree and conversions_agree).
 */
void qa_quantize_f16(const float *src, void *dst, size_t n)
{
#if QA_QUANT_X86
	if (qa_quant_x86_available(true)) {
		qa_x86_quantize_f16(src, dst, n);
		return;
	}
#endif
	quantize_f16_scalar(src, dst, n);
}

void qa_dequantize_f16(const void *src, float *dst, size_t n)
{
#if QA_QUANT_X86
	if (qa_quant_x86_available(true)) {
		qa_x86_dequantize_f16(src, dst, n);
		return;
	}
#endif
	dequantize_f16_scalar(src, dst, n);
}

void qa_quantize_bf16(const float *src, void *dst, size_t n)
{
#if QA_QUANT_X86
	if (qa_quant_x86_available(false)) {
		qa_x86_quantize_bf16(src, dst, n);
		return;
	}
#endif
	quantize_bf16_scalar(src, dst, n);
}

void qa_dequantize_bf16(const void *src, float *dst, size_t n)
{
#if QA_QUANT_X86
	if (qa_quant_x86_available(false)) {
		qa_x86_dequantize_bf16(src, dst, n);
		return;
	}
#endif
	dequantize_bf16_scalar(src, dst, n);
}

bool qa_quant_fp_convert(uint32_t type, enum qa_quant_k_path path, bool narrow, const float *src,
                         void *bytes, float *dst, size_t n)
{
	if (type != QA_TYPE_F16 && type != QA_TYPE_BF16)
		return false;
	bool f16 = type == QA_TYPE_F16;
	bool fast;
	switch (path) {
	case QA_QUANT_K_SCALAR:
		fast = false;
		break;
	case QA_QUANT_K_SIMD8:
	case QA_QUANT_K_AUTO:
#if QA_QUANT_X86
		fast = qa_quant_x86_available(f16);
#else
		fast = false;
#endif
		if (!fast && path == QA_QUANT_K_SIMD8)
			return false;
		break;
	default:
		return false;
	}
	if (!fast) {
		if (narrow)
			(f16 ? quantize_f16_scalar : quantize_bf16_scalar)(src, bytes, n);
		else
			(f16 ? dequantize_f16_scalar : dequantize_bf16_scalar)(bytes, dst, n);
		return true;
	}
#if QA_QUANT_X86
	if (narrow)
		(f16 ? qa_x86_quantize_f16 : qa_x86_quantize_bf16)(src, bytes, n);
	else
		(f16 ? qa_x86_dequantize_f16 : qa_x86_dequantize_bf16)(bytes, dst, n);
#endif
	return true;
}
