/*
 * quant_legacy.c - the "legacy" 32-element block formats q4_0, q4_1, q5_0,
 * q5_1 and q8_0, reproduced bit for bit from ggml's reference quantizer
 * (quantize_row_*_ref) and its dequantizer (dequantize_row_*).
 *
 * Each block holds 32 weights.  The symmetric formats (q4_0, q5_0, q8_0)
 * store one fp16 scale d; the affine ones (q4_1, q5_1) store d and a minimum
 * m.  The 4-bit codes of element j and j+16 share byte j (low nibble, high
 * nibble); the 5-bit formats keep the fifth bit of element i in bit i of a
 * little-endian 32-bit word qh.  Block layouts, with byte offsets:
 *
 *   q4_0  d@0  qs@2 (16)                 18 bytes
 *   q4_1  d@0  m@2  qs@4 (16)            20 bytes
 *   q5_0  d@0  qh@2 (4)  qs@6 (16)       22 bytes
 *   q5_1  d@0  m@2  qh@4 (4)  qs@8 (16)  24 bytes
 *   q8_0  d@0  qs@2 (32, int8)           34 bytes
 *
 * The float arithmetic follows the reference's operation order exactly
 * (compile with -ffp-contract=off), and the float-to-integer conversions
 * reproduce what the x86-64 reference build does (truncation to a 32-bit
 * integer, then keeping the low byte), without undefined behaviour.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cursor.h"
#include "fp16.h"
#include "quant.h"
#include "quant_x86.h"
#include "quant_fit.h"

#define BLOCK 32
#define HALF (BLOCK / 2)

/*
 * Truncate f toward zero to a 32-bit integer as the x86 cvttss2si
 * instruction does: out-of-range values and NaN give INT32_MIN.  The
 * reference casts floats straight to int8_t/uint8_t, which the compiler
 * lowers to that instruction followed by taking the low byte.  For every
 * finite input that leads to in-range values, this is plain truncation.
 */
static int32_t trunc_i32(float f)
{
	if (f > -2147483648.0f && f < 2147483648.0f)
		return (int32_t)f;
	return INT32_MIN;
}

/* The low byte of the truncated value: what "(uint8_t)f" yields on x86-64. */
static uint8_t trunc_low_byte(float f)
{
	return (uint8_t)((uint32_t)trunc_i32(f) & 0xffu);
}

/* "(int8_t)f" on x86-64: truncate, then reinterpret the low byte as signed. */
static int trunc_i8(float f)
{
	uint8_t b = trunc_low_byte(f);
	return b < 128 ? (int)b : (int)b - 256;
}

/*
 * The element of largest magnitude, with its sign.  The first occurrence
 * wins ties (strict comparison), as in the reference.
 */
static float signed_absmax(const float *x)
{
	float amax = 0.0f, max = 0.0f;
	for (int j = 0; j < BLOCK; j++) {
		float a = fabsf(x[j]);
		if (amax < a) {
			amax = a;
			max = x[j];
		}
	}
	return max;
}

/* Smallest and largest element of a block, for the affine formats. */
static void block_range(const float *x, float *lo, float *hi)
{
	float mn = FLT_MAX, mx = -FLT_MAX;
	for (int j = 0; j < BLOCK; j++) {
		if (x[j] < mn)
			mn = x[j];
		if (x[j] > mx)
			mx = x[j];
	}
	*lo = mn;
	*hi = mx;
}

/* A code clamped from above only, as MIN(limit, (int8_t)v) then stored as uint8_t. */
static uint8_t clamp_code(int limit, int v)
{
	return (uint8_t)(v < limit ? v : limit);
}

/* ---------------------------------------------------------------- q4_0 */

/*
 * q4_0: d = max / -8 where max is the signed extreme, so the extreme maps
 * to code 0 and the codes run 0..15 around an offset of 8.  Codes are
 * (int8_t)(x/d + 8.5) (truncation, i.e. rounding half up for positives)
 * capped at 15.
 */
static void q4_0_scalar(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t b = 0; b < n / BLOCK; b++, src += BLOCK, out += 18) {
		float max = signed_absmax(src);
		float d = max / -8;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		qa_store_le16(out, qa_fp32_to_fp16(d));
		for (int j = 0; j < HALF; j++) {
			uint8_t lo = clamp_code(15, trunc_i8(src[j] * id + 8.5f));
			uint8_t hi = clamp_code(15, trunc_i8(src[j + HALF] * id + 8.5f));
			out[2 + j] = (uint8_t)(lo | (hi << 4));
		}
	}
}

void qa_dequantize_q4_0(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / BLOCK; b++, in += 18, dst += BLOCK) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		for (int j = 0; j < HALF; j++) {
			int lo = (in[2 + j] & 0x0f) - 8;
			int hi = (in[2 + j] >> 4) - 8;
			dst[j] = (float)lo * d;
			dst[j + HALF] = (float)hi * d;
		}
	}
}

/* ---------------------------------------------------------------- q4_1 */

/*
 * q4_1: d = (max - min) / 15 and m = min; codes are
 * (int8_t)((x - min)/d + 0.5) capped at 15.
 */
static void q4_1_scalar(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t b = 0; b < n / BLOCK; b++, src += BLOCK, out += 20) {
		float mn, mx;
		block_range(src, &mn, &mx);
		float d = (mx - mn) / 15;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		qa_store_le16(out, qa_fp32_to_fp16(d));
		qa_store_le16(out + 2, qa_fp32_to_fp16(mn));
		for (int j = 0; j < HALF; j++) {
			uint8_t lo = clamp_code(15, trunc_i8((src[j] - mn) * id + 0.5f));
			uint8_t hi = clamp_code(15, trunc_i8((src[j + HALF] - mn) * id + 0.5f));
			out[4 + j] = (uint8_t)(lo | (hi << 4));
		}
	}
}

void qa_dequantize_q4_1(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / BLOCK; b++, in += 20, dst += BLOCK) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		float m = qa_fp16_to_fp32(qa_load_le16(in + 2));
		for (int j = 0; j < HALF; j++) {
			int lo = in[4 + j] & 0x0f;
			int hi = in[4 + j] >> 4;
			dst[j] = (float)lo * d + m;
			dst[j + HALF] = (float)hi * d + m;
		}
	}
}

/* ---------------------------------------------------------------- q5_0 */

/*
 * q5_0: like q4_0 with 5-bit codes: d = max / -16, codes
 * (int8_t)(x/d + 16.5) capped at 31.  The low nibbles pack like q4_0; the
 * fifth bit of element i goes to bit i of qh.
 */
static void q5_0_scalar(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t b = 0; b < n / BLOCK; b++, src += BLOCK, out += 22) {
		float max = signed_absmax(src);
		float d = max / -16;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		uint32_t qh = 0;
		qa_store_le16(out, qa_fp32_to_fp16(d));
		for (int j = 0; j < HALF; j++) {
			uint8_t lo = clamp_code(31, trunc_i8(src[j] * id + 16.5f));
			uint8_t hi = clamp_code(31, trunc_i8(src[j + HALF] * id + 16.5f));
			out[6 + j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
			qh |= (uint32_t)((lo >> 4) & 1u) << j;
			qh |= (uint32_t)((hi >> 4) & 1u) << (j + HALF);
		}
		qa_store_le32(out + 2, qh);
	}
}

void qa_dequantize_q5_0(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / BLOCK; b++, in += 22, dst += BLOCK) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		uint32_t qh = qa_load_le32(in + 2);
		for (int j = 0; j < HALF; j++) {
			int lo = (int)((in[6 + j] & 0x0fu) | (((qh >> j) & 1u) << 4)) - 16;
			int hi = (int)((in[6 + j] >> 4) | (((qh >> (j + HALF)) & 1u) << 4)) - 16;
			dst[j] = (float)lo * d;
			dst[j + HALF] = (float)hi * d;
		}
	}
}

/* ---------------------------------------------------------------- q5_1 */

/*
 * q5_1: like q4_1 with 5-bit codes: d = (max - min) / 31, m = min, codes
 * (uint8_t)((x - min)/d + 0.5) with no cap (the reference applies none).
 */
static void q5_1_scalar(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t b = 0; b < n / BLOCK; b++, src += BLOCK, out += 24) {
		float mn, mx;
		block_range(src, &mn, &mx);
		float d = (mx - mn) / 31;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		uint32_t qh = 0;
		qa_store_le16(out, qa_fp32_to_fp16(d));
		qa_store_le16(out + 2, qa_fp32_to_fp16(mn));
		for (int j = 0; j < HALF; j++) {
			uint8_t lo = trunc_low_byte((src[j] - mn) * id + 0.5f);
			uint8_t hi = trunc_low_byte((src[j + HALF] - mn) * id + 0.5f);
			out[8 + j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
			qh |= (uint32_t)((lo >> 4) & 1u) << j;
			qh |= (uint32_t)((hi >> 4) & 1u) << (j + HALF);
		}
		qa_store_le32(out + 4, qh);
	}
}

void qa_dequantize_q5_1(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / BLOCK; b++, in += 24, dst += BLOCK) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		float m = qa_fp16_to_fp32(qa_load_le16(in + 2));
		uint32_t qh = qa_load_le32(in + 4);
		for (int j = 0; j < HALF; j++) {
			int lo = (int)((in[8 + j] & 0x0fu) | (((qh >> j) & 1u) << 4));
			int hi = (int)((in[8 + j] >> 4) | (((qh >> (j + HALF)) & 1u) << 4));
			dst[j] = (float)lo * d + m;
			dst[j + HALF] = (float)hi * d + m;
		}
	}
}

/* ---------------------------------------------------------------- q8_0 */

/*
 * q8_0: d = amax / 127 (amax unsigned this time) and each code is
 * roundf(x/d), i.e. round half away from zero, stored as int8.
 */
static void q8_0_scalar(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	for (size_t b = 0; b < n / BLOCK; b++, src += BLOCK, out += 34) {
		float amax = 0.0f;
		for (int j = 0; j < BLOCK; j++) {
			float a = fabsf(src[j]);
			amax = amax > a ? amax : a;
		}
		float d = amax / 127;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		qa_store_le16(out, qa_fp32_to_fp16(d));
		for (int j = 0; j < BLOCK; j++)
			out[2 + j] = trunc_low_byte(roundf(src[j] * id));
	}
}

void qa_dequantize_q8_0(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / BLOCK; b++, in += 34, dst += BLOCK) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		for (int j = 0; j < BLOCK; j++) {
			int q = in[2 + j] < 128 ? (int)in[2 + j] : (int)in[2 + j] - 256;
			dst[j] = (float)q * d;
		}
	}
}

/* ---------------------------------------------------------------- dispatch */

/*
 * The public entry points take the AVX2 path (quant_x86.c) when the CPU
 * has it; both produce the same bytes (check_quant's paths_agree).
 */
#if QA_QUANT_X86
#define LEGACY_ENTRY(T)                                                 \
	void qa_quantize_##T(const float *src, void *dst, size_t n)    \
	{                                                               \
		if (qa_quant_x86_available(true))                      \
			qa_x86_quantize_##T(src, dst, n);               \
		else                                                    \
			T##_scalar(src, dst, n);                        \
	}
#else
#define LEGACY_ENTRY(T)                                                 \
	void qa_quantize_##T(const float *src, void *dst, size_t n)    \
	{                                                               \
		T##_scalar(src, dst, n);                                \
	}
#endif
LEGACY_ENTRY(q4_0)
LEGACY_ENTRY(q4_1)
LEGACY_ENTRY(q5_0)
LEGACY_ENTRY(q5_1)
LEGACY_ENTRY(q8_0)

bool qa_quant_legacy_quantize(uint32_t type, enum qa_quant_k_path path, const float *src,
                              void *dst, size_t n)
{
	static const struct {
		uint32_t type;
		qa_quantize_fn scalar;
#if QA_QUANT_X86
		qa_quantize_fn avx2;
#endif
	} paths[] = {
#if QA_QUANT_X86
		{ QA_TYPE_Q4_0, q4_0_scalar, qa_x86_quantize_q4_0 },
		{ QA_TYPE_Q4_1, q4_1_scalar, qa_x86_quantize_q4_1 },
		{ QA_TYPE_Q5_0, q5_0_scalar, qa_x86_quantize_q5_0 },
		{ QA_TYPE_Q5_1, q5_1_scalar, qa_x86_quantize_q5_1 },
		{ QA_TYPE_Q8_0, q8_0_scalar, qa_x86_quantize_q8_0 },
#else
		{ QA_TYPE_Q4_0, q4_0_scalar }, { QA_TYPE_Q4_1, q4_1_scalar },
		{ QA_TYPE_Q5_0, q5_0_scalar }, { QA_TYPE_Q5_1, q5_1_scalar },
		{ QA_TYPE_Q8_0, q8_0_scalar },
#endif
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		if (paths[i].type != type)
			continue;
		switch (path) {
		case QA_QUANT_K_SCALAR:
			paths[i].scalar(src, dst, n);
			return true;
		case QA_QUANT_K_SIMD8:
		case QA_QUANT_K_AUTO:
#if QA_QUANT_X86
			if (qa_quant_x86_available(true)) {
				paths[i].avx2(src, dst, n);
				return true;
			}
#endif
			if (path == QA_QUANT_K_AUTO) {
				paths[i].scalar(src, dst, n);
				return true;
			}
			return false;
		default:
			return false;
		}
	}
	return false;
}

/* -------------------------------------------- importance-weighted paths */

/*
 * With an importance matrix, ggml's quantize_q4_0, _q4_1, _q5_0 and _q5_1
 * quantize row by row (quantize_row_*_impl): sigma2 is the mean square of
 * the whole row, each value of block b gets the weight
 * qw[32b + j] * sqrt(sigma2 + x^2), and the block is fitted by a weighted
 * search: symmetric (make_qx_quants) for q4_0 and q5_0, affine
 * (make_qkx3_quants) for q4_1 and q5_1.  Rows therefore cannot be cut
 * anywhere here, only at row boundaries.  Without weights ggml takes the
 * reference path, and so do these functions.  q8_0 ignores weights.
 */

/* Mean square of a row, as the reference sums it. */
static float row_sigma2(const float *x, size_t n_per_row)
{
	float s = 0;
	for (size_t j = 0; j < n_per_row; j++)
		s += x[j] * x[j];
	return s / (float)n_per_row;
}

static void block_weights(const float *xb, const float *qw, float sigma2, float *w)
{
	for (int j = 0; j < BLOCK; j++)
		w[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
}

/*
 * A NaN fit result as one fixed NaN (the quiet NaN, positive).  A NaN scale or minimum only
 * arises from NaN or infinite importance weights, and its sign then
 * depends on the order in which the compiler puts the operands of a sum
 * (x86 keeps the first operand's NaN), in ggml's build as in ours; fixing
 * it makes the scalar and the AVX2 fits store the same bytes.
 */
static float nan_canon(float v)
{
	return v != v ? NAN : v;
}

/* Low nibbles of codes j and j+16 share byte j; bit 4 of code i goes to bit i of qh. */
static uint32_t pack_codes(const uint8_t *code, uint8_t *qs)
{
	uint32_t qh = 0;
	for (int j = 0; j < HALF; j++) {
		qs[j] = (uint8_t)((code[j] & 0x0f) | ((code[j + HALF] & 0x0f) << 4));
		qh |= (uint32_t)((code[j] & 0x10u) >> 4) << j;
		qh |= (uint32_t)((code[j + HALF] & 0x10u) >> 4) << (j + HALF);
	}
	return qh;
}

/*
 * One row of a symmetric type (nmax 8: q4_0, 16: q5_0) or an affine one
 * (nmax 15: q4_1, 31: q5_1), weighted, into out.
 */
static void legacy_row_w(const float *x, const float *qw, size_t n_per_row, int nmax,
                         bool affine, bool simd, uint8_t *out)
{
	float sigma2 = row_sigma2(x, n_per_row);
	float w[BLOCK];
	uint8_t code[BLOCK];
	for (size_t b = 0; b < n_per_row / BLOCK; b++) {
		const float *xb = x + BLOCK * b;
		block_weights(xb, qw + BLOCK * b, sigma2, w);
		if (!affine) {
			int8_t lev[BLOCK];
			float d;
#if QA_QUANT_X86
			if (simd)
				d = qa_x86_fit_symmetric32(nmax, xb, lev, w);
			else
#endif
				d = qa_quant_fit_symmetric(BLOCK, nmax, xb, lev, w);
			d = nan_canon(d);
			for (int j = 0; j < BLOCK; j++)
				code[j] = (uint8_t)lev[j];
			qa_store_le16(out, qa_fp32_to_fp16(d));
			if (nmax == 8) { /* q4_0 */
				for (int j = 0; j < HALF; j++)
					out[2 + j] = (uint8_t)(code[j] | (code[j + HALF] << 4));
				out += 18;
			} else { /* q5_0 */
				qa_store_le32(out + 2, pack_codes(code, out + 6));
				out += 22;
			}
		} else {
			float neg_min;
			float d;
#if QA_QUANT_X86
			if (simd)
				d = qa_x86_fit_affine32(nmax, xb, w, code, &neg_min, -0.9f, 0.05f, 36);
			else
#endif
				d = qa_quant_fit_affine(BLOCK, nmax, xb, w, code, &neg_min, -0.9f, 0.05f,
				                        36, false);
			d = nan_canon(d);
			neg_min = nan_canon(neg_min);
			qa_store_le16(out, qa_fp32_to_fp16(d));
			qa_store_le16(out + 2, qa_fp32_to_fp16(-neg_min));
			if (nmax == 15) { /* q4_1 */
				for (int j = 0; j < HALF; j++)
					out[4 + j] = (uint8_t)(code[j] | (code[j + HALF] << 4));
				out += 20;
			} else { /* q5_1 */
				qa_store_le32(out + 4, pack_codes(code, out + 8));
				out += 24;
			}
		}
	}
}

/* Whether the AVX2 fits run on this CPU. */
static bool fits_simd(void)
{
#if QA_QUANT_X86
	return qa_quant_x86_available(false);
#else
	return false;
#endif
}

static void rows_w_path(const float *src, void *dst, size_t nrow, size_t n_per_row,
                        const float *qw, int nmax, bool affine, size_t block_bytes, bool simd)
{
	uint8_t *out = dst;
	size_t row_bytes = n_per_row / BLOCK * block_bytes;
	for (size_t r = 0; r < nrow; r++)
		legacy_row_w(src + r * n_per_row, qw, n_per_row, nmax, affine, simd, out + r * row_bytes);
}

static void legacy_rows_w(const float *src, void *dst, size_t nrow, size_t n_per_row,
                          const float *qw, int nmax, bool affine, size_t block_bytes)
{
	rows_w_path(src, dst, nrow, n_per_row, qw, nmax, affine, block_bytes, fits_simd());
}

bool qa_quant_legacy_quantize_weighted(uint32_t type, enum qa_quant_k_path path, const float *src,
                                       void *dst, size_t nrow, size_t n_per_row, const float *qw)
{
	static const struct {
		uint32_t type;
		int nmax;
		bool affine;
		size_t bytes;
	} kinds[] = {
		{ QA_TYPE_Q4_0, 8, false, 18 }, { QA_TYPE_Q4_1, 15, true, 20 },
		{ QA_TYPE_Q5_0, 16, false, 22 }, { QA_TYPE_Q5_1, 31, true, 24 },
	};
	bool simd;
	if (!qw || !qa_quant_path_fast(path, fits_simd(), &simd))
		return false;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (kinds[i].type == type) {
			rows_w_path(src, dst, nrow, n_per_row, qw, kinds[i].nmax, kinds[i].affine,
			            kinds[i].bytes, simd);
			return true;
		}
	return false;
}

void qa_quantize_rows_q4_0(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw)
{
	if (!qw)
		qa_quantize_q4_0(src, dst, nrow * n_per_row);
	else
		legacy_rows_w(src, dst, nrow, n_per_row, qw, 8, false, 18);
}

void qa_quantize_rows_q4_1(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw)
{
	if (!qw)
		qa_quantize_q4_1(src, dst, nrow * n_per_row);
	else
		legacy_rows_w(src, dst, nrow, n_per_row, qw, 15, true, 20);
}

void qa_quantize_rows_q5_0(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw)
{
	if (!qw)
		qa_quantize_q5_0(src, dst, nrow * n_per_row);
	else
		legacy_rows_w(src, dst, nrow, n_per_row, qw, 16, false, 22);
}

void qa_quantize_rows_q5_1(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw)
{
	if (!qw)
		qa_quantize_q5_1(src, dst, nrow * n_per_row);
	else
		legacy_rows_w(src, dst, nrow, n_per_row, qw, 31, true, 24);
}
