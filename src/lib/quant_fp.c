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

void qa_quantize_f16(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t i = 0; i < n; i++)
		qa_store_le16(out + 2 * i, qa_fp32_to_fp16(src[i]));
}

void qa_dequantize_f16(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t i = 0; i < n; i++)
		dst[i] = qa_fp16_to_fp32(qa_load_le16(in + 2 * i));
}

void qa_quantize_bf16(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t i = 0; i < n; i++)
		qa_store_le16(out + 2 * i, qa_fp32_to_bf16(src[i]));
}

void qa_dequantize_bf16(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t i = 0; i < n; i++)
		dst[i] = qa_bf16_to_fp32(qa_load_le16(in + 2 * i));
}
