/*
 * quant_x86.c - AVX2 (and F16C) paths for the 32-element legacy formats
 * (q4_0, q4_1, q5_0, q5_1, q8_0), the ternary tq1_0 and tq2_0, mxfp4's code
 * search, the iq4_nl/iq4_xs level search, and for the f16/bf16 conversions.
 *
 * Each function here produces exactly the bytes (or floats) of its scalar
 * counterpart in quant_legacy.c / quant_tq.c / quant_mxfp4.c / quant_fp.c, which follow ggml's reference
 * path; check_quant's paths_agree holds them together on the oracle input
 * and on adversarial blocks.  The arithmetic is the scalar path's IEEE
 * operations, lane by lane, in the same order (no FMA: the file is compiled
 * with -ffp-contract=off like every other):
 *
 *  - extremes: a vector max/min gives the extreme's value; the scalar scans
 *    keep the *first* element that attains it (strict comparisons), and -0
 *    and +0 compare equal, so the element itself is taken from the first
 *    lane equal to the value.  That keeps the sign of a zero extreme, which
 *    reaches the stored fp16 scale or minimum.
 *  - float to code: cvttps2dq is the instruction the scalar (int8_t)f casts
 *    lower to on x86-64 (INT32_MIN for NaN and out-of-range values), and the
 *    low byte is then kept, sign-extended or not, as the scalar does.
 *  - roundf (q8_0): truncate, then step away from zero when the exact
 *    remainder is at least one half.
 *
 * The functions are compiled for AVX2 and F16C with target attributes and
 * are only called when the CPU has both (qa_quant_x86_available); bf16
 * needs AVX2 alone.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fp16.h"
#include "quant_fit.h"
#include "quant_x86.h"

#if QA_QUANT_X86

#include <cpuid.h>
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))
#define AVX2_F16C __attribute__((target("avx2,f16c")))

/*
 * AVX2 as the compiler's runtime check sees it (which includes the OS
 * saving the AVX state); F16C from CPUID leaf 1 (ECX bit 29), because not
 * every compiler's __builtin_cpu_supports knows "f16c" (clang 14 does not).
 */
bool qa_quant_x86_available(bool f16c)
{
	if (!__builtin_cpu_supports("avx2"))
		return false;
	if (!f16c)
		return true;
	unsigned a, b, c, d;
	return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}

/* Little-endian stores of the block header fields. */
static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The block scales: F16C's narrowing equals qa_fp32_to_fp16 on finite floats, NaN aside. */
AVX2_F16C static uint16_t to_fp16(float f)
{
	if (f != f)
		return qa_fp32_to_fp16(f);
	return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

AVX2 static float hmax(__m256 v)
{
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}

AVX2 static float hmin(__m256 v)
{
	__m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_min_ps(m, _mm_movehl_ps(m, m));
	m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}

/* Index of the first of 32 lanes (x[0..3]) that equals t (as floats: -0 == +0). */
AVX2 static int first_equal(const __m256 x[4], float t)
{
	__m256 vt = _mm256_set1_ps(t);
	uint32_t m = 0;
	for (int k = 0; k < 4; k++)
		m |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(x[k], vt, _CMP_EQ_OQ)) << (8 * k);
	return __builtin_ctz(m); /* t is one of the lanes, so m != 0 */
}

/*
 * The scalar signed_absmax: the first element of largest magnitude, or +0
 * when every element is zero (no magnitude exceeds the initial 0).
 */
AVX2 static float signed_absmax(const float *src, const __m256 x[4])
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 a[4];
	for (int k = 0; k < 4; k++)
		a[k] = _mm256_andnot_ps(sign, x[k]);
	float amax = hmax(_mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3])));
	if (amax == 0.0f)
		return 0.0f;
	return src[first_equal(a, amax)];
}

/* The scalar block_range: the first minimum and the first maximum. */
AVX2 static void block_range(const float *src, const __m256 x[4], float *lo, float *hi)
{
	float mn = hmin(_mm256_min_ps(_mm256_min_ps(x[0], x[1]), _mm256_min_ps(x[2], x[3])));
	float mx = hmax(_mm256_max_ps(_mm256_max_ps(x[0], x[1]), _mm256_max_ps(x[2], x[3])));
	*lo = src[first_equal(x, mn)];
	*hi = src[first_equal(x, mx)];
}

AVX2 static void load4(const float *src, __m256 x[4])
{
	for (int k = 0; k < 4; k++)
		x[k] = _mm256_loadu_ps(src + 8 * k);
}

/* (int8_t)v then MIN(limit, .) as an int32 per lane: the scalar clamp_code(trunc_i8). */
AVX2 static __m256i code_i8_min(__m256 v, int limit)
{
	__m256i q = _mm256_cvttps_epi32(v);
	q = _mm256_srai_epi32(_mm256_slli_epi32(q, 24), 24);
	return _mm256_min_epi32(q, _mm256_set1_epi32(limit));
}

/*
 * Bytes (lo[j] & 0xf... as the format wants) of 16 lanes: lo holds elements
 * 0..15 (two vectors), hi elements 16..31; out[j] = (lo[j] & lomask) |
 * ((hi[j] & himask) << 4), all truncated to a byte.
 */
AVX2 static void pack_nibbles(const __m256i lo[2], const __m256i hi[2], int lomask, int himask,
                              uint8_t *out)
{
	const __m256i ff = _mm256_set1_epi32(0xff);
	__m256i c[2];
	for (int k = 0; k < 2; k++) {
		__m256i l = _mm256_and_si256(lo[k], _mm256_set1_epi32(lomask));
		__m256i h = _mm256_slli_epi32(_mm256_and_si256(hi[k], _mm256_set1_epi32(himask)), 4);
		c[k] = _mm256_and_si256(_mm256_or_si256(l, h), ff);
	}
	__m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(c[0], c[1]), 0xd8);
	__m128i b = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
	_mm_storeu_si128((__m128i *)out, b);
}

/* Bit 4 of each of 32 codes (as uint8), bit i for element i: the 5-bit formats' qh. */
AVX2 static uint32_t fifth_bits(const __m256i q[4])
{
	uint32_t qh = 0;
	for (int k = 0; k < 4; k++) {
		__m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(q[k], 27));
		qh |= (uint32_t)_mm256_movemask_ps(s) << (8 * k);
	}
	return qh;
}

/*
 * The symmetric formats: q4_0 (levels 16, codes capped at 15, nibbles as
 * stored) and q5_0 (levels 32, capped at 31, low nibbles plus the fifth bit
 * in qh).  d = max / -(levels/2) and codes (int8_t)(x/d + levels/2 + 0.5).
 */
AVX2_F16C static void quantize_symmetric(const float *src, uint8_t *out, size_t n, bool five)
{
	const float half_levels = five ? 16.0f : 8.0f;
	const int limit = five ? 31 : 15;
	const size_t bytes = five ? 22 : 18;
	for (size_t b = 0; b < n / 32; b++, src += 32, out += bytes) {
		__m256 x[4];
		load4(src, x);
		float max = signed_absmax(src, x);
		float d = max / -half_levels;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		put16(out, to_fp16(d));
		__m256 vid = _mm256_set1_ps(id), off = _mm256_set1_ps(half_levels + 0.5f);
		__m256i q[4];
		for (int k = 0; k < 4; k++)
			q[k] = code_i8_min(_mm256_add_ps(_mm256_mul_ps(x[k], vid), off), limit);
		if (five)
			put32(out + 2, fifth_bits(q));
		pack_nibbles(q, q + 2, five ? 0x0f : 0xff, five ? 0x0f : 0xff, out + (five ? 6 : 2));
	}
}

/*
 * The affine formats: q4_1 (d = range/15, codes capped at 15) and q5_1
 * (d = range/31, no cap: the low byte of the truncated value, fifth bit in
 * qh); m = min, codes (x - min)/d + 0.5 truncated.
 */
AVX2_F16C static void quantize_affine(const float *src, uint8_t *out, size_t n, bool five)
{
	const float steps = five ? 31.0f : 15.0f;
	const size_t bytes = five ? 24 : 20;
	for (size_t b = 0; b < n / 32; b++, src += 32, out += bytes) {
		__m256 x[4];
		load4(src, x);
		float mn, mx;
		block_range(src, x, &mn, &mx);
		float d = (mx - mn) / steps;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		put16(out, to_fp16(d));
		put16(out + 2, to_fp16(mn));
		__m256 vid = _mm256_set1_ps(id), vmn = _mm256_set1_ps(mn), half = _mm256_set1_ps(0.5f);
		__m256i q[4];
		for (int k = 0; k < 4; k++) {
			__m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(x[k], vmn), vid), half);
			q[k] = five ? _mm256_cvttps_epi32(v) : code_i8_min(v, 15);
		}
		if (five)
			put32(out + 4, fifth_bits(q));
		pack_nibbles(q, q + 2, five ? 0x0f : 0xff, five ? 0x0f : 0xff, out + (five ? 8 : 4));
	}
}

AVX2_F16C void qa_x86_quantize_q4_0(const float *src, void *dst, size_t n)
{
	quantize_symmetric(src, dst, n, false);
}

AVX2_F16C void qa_x86_quantize_q4_1(const float *src, void *dst, size_t n)
{
	quantize_affine(src, dst, n, false);
}

AVX2_F16C void qa_x86_quantize_q5_0(const float *src, void *dst, size_t n)
{
	quantize_symmetric(src, dst, n, true);
}

AVX2_F16C void qa_x86_quantize_q5_1(const float *src, void *dst, size_t n)
{
	quantize_affine(src, dst, n, true);
}

/* roundf per lane: truncate, then one step away from zero when |v - trunc(v)| >= 0.5. */
AVX2 static __m256 round_away(__m256 v)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
	__m256 step = _mm256_and_ps(_mm256_cmp_ps(r, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
	                            _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign)));
	return _mm256_add_ps(t, step);
}

AVX2_F16C void qa_x86_quantize_q8_0(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	const __m256 sign = _mm256_set1_ps(-0.0f);
	/* byte 0 of each 32-bit lane into the low 4 bytes of each 128-bit half */
	const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	                                      0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
	for (size_t b = 0; b < n / 32; b++, src += 32, out += 34) {
		__m256 x[4];
		load4(src, x);
		__m256 a = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, x[0]), _mm256_andnot_ps(sign, x[1])),
		                         _mm256_max_ps(_mm256_andnot_ps(sign, x[2]), _mm256_andnot_ps(sign, x[3])));
		float amax = hmax(a);
		float d = amax / 127;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		put16(out, to_fp16(d));
		__m256 vid = _mm256_set1_ps(id);
		for (int k = 0; k < 4; k++) {
			__m256i q = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(x[k], vid)));
			__m256i s = _mm256_shuffle_epi8(q, pick);
			uint32_t lo = (uint32_t)_mm_cvtsi128_si32(_mm256_castsi256_si128(s));
			uint32_t hi = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(s, 1));
			put32(out + 2 + 8 * k, lo);
			put32(out + 2 + 8 * k + 4, hi);
		}
	}
}

/* ---------------------------------------------------------------- f16 / bf16 */

/*
 * F16C's round-to-nearest-even narrowing equals qa_fp32_to_fp16 on every
 * finite float (the quantizers' contract: inputs are finite); a NaN lane
 * is converted by the scalar function so that its payload rule holds too.
 */
AVX2_F16C void qa_x86_quantize_f16(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(src + i);
		if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
			for (size_t k = i; k < i + 8; k++)
				put16(out + 2 * k, qa_fp32_to_fp16(src[k]));
			continue;
		}
		_mm_storeu_si128((__m128i *)(out + 2 * i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
	}
	for (; i < n; i++)
		put16(out + 2 * i, qa_fp32_to_fp16(src[i]));
}

/* Widening is exact in F16C, but it quiets signalling NaNs: those blocks go the scalar way. */
AVX2_F16C void qa_x86_dequantize_f16(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	size_t i = 0;
	const __m128i expmask = _mm_set1_epi16(0x7c00), manmask = _mm_set1_epi16(0x03ff);
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(in + 2 * i));
		__m128i nan = _mm_andnot_si128(_mm_cmpeq_epi16(_mm_and_si128(h, manmask), _mm_setzero_si128()),
		                               _mm_cmpeq_epi16(_mm_and_si128(h, expmask), expmask));
		if (_mm_movemask_epi8(nan)) {
			for (size_t k = i; k < i + 8; k++)
				dst[k] = qa_fp16_to_fp32((uint16_t)(in[2 * k] | in[2 * k + 1] << 8));
			continue;
		}
		_mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
	}
	for (; i < n; i++)
		dst[i] = qa_fp16_to_fp32((uint16_t)(in[2 * i] | in[2 * i + 1] << 8));
}

/* qa_fp32_to_bf16 on 8 lanes: NaN keeps its top half with the quiet bit; else round to nearest even. */
AVX2 void qa_x86_quantize_bf16(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst;
	size_t i = 0;
	const __m256i absm = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
	const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
	const __m256i quiet = _mm256_set1_epi32(0x40);
	for (; i + 16 <= n; i += 16) {
		__m256i r[2];
		for (int k = 0; k < 2; k++) {
			__m256i u = _mm256_loadu_si256((const __m256i *)(src + i + 8 * k));
			__m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absm), inf);
			__m256i hi = _mm256_srli_epi32(u, 16);
			__m256i rounded = _mm256_srli_epi32(
				_mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(hi, one)), 16);
			r[k] = _mm256_blendv_epi8(rounded, _mm256_or_si256(hi, quiet), isnan);
		}
		__m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xd8);
		_mm256_storeu_si256((__m256i *)(out + 2 * i), p);
	}
	for (; i < n; i++)
		put16(out + 2 * i, qa_fp32_to_bf16(src[i]));
}

AVX2 void qa_x86_dequantize_bf16(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(in + 2 * i));
		__m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
		_mm256_storeu_si256((__m256i *)(dst + i), w);
	}
	for (; i < n; i++)
		dst[i] = qa_bf16_to_fp32((uint16_t)(in[2 * i] | in[2 * i + 1] << 8));
}

/* ---------------------------------------------------------------- tq1_0 / tq2_0 */

/*
 * The 256 stored trits (0..2) of one ternary block, t = lroundf(x * inv) + 1.
 * Whenever inv is finite, |x * inv| is at most max|x| * fl(1/max|x|) < 1.5,
 * so lroundf (half away from zero) is -1 below or at -0.5, +1 at or above
 * 0.5 and 0 between: two comparisons per lane.  A block whose inverse
 * overflowed (max|x| below 2^-128) takes the scalar lroundf route, whose
 * x86-64 result for the infinite and NaN products (LONG_MIN, trit 1) the
 * comparisons would not reproduce.
 */
AVX2 static void tq_trits(const float *x, float inv, uint8_t t[256])
{
	if (!(inv <= 3.4028235e38f)) {
		for (int j = 0; j < 256; j++)
			t[j] = (uint8_t)(lroundf(x[j] * inv) + 1);
		return;
	}
	const __m256 vinv = _mm256_set1_ps(inv), hi = _mm256_set1_ps(0.5f), lo = _mm256_set1_ps(-0.5f);
	const __m256i one = _mm256_set1_epi32(1);
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	for (int j = 0; j < 256; j += 32) {
		__m256i r[4];
		for (int k = 0; k < 4; k++) {
			__m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vinv);
			__m256i ge = _mm256_castps_si256(_mm256_cmp_ps(v, hi, _CMP_GE_OQ));
			__m256i le = _mm256_castps_si256(_mm256_cmp_ps(v, lo, _CMP_LE_OQ));
			r[k] = _mm256_add_epi32(_mm256_sub_epi32(one, ge), le);
		}
		__m256i p = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
		_mm256_storeu_si256((__m256i *)(t + j), _mm256_permutevar8x32_epi32(p, order));
	}
}

/* max |x| over a 256-element block and its inverse (0 for an all-zero block), as quant_tq.c. */
AVX2 static float tq_scale(const float *x, float *inv)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 m = _mm256_setzero_ps();
	for (int j = 0; j < 256; j += 8)
		m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
	float amax = hmax(m);
	*inv = amax != 0.0f ? 1.0f / amax : 0.0f;
	return amax;
}

AVX2_F16C void qa_x86_quantize_tq2_0(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst, t[256];
	for (size_t b = 0; b < n / 256; b++, src += 256, out += 66) {
		float inv, d = tq_scale(src, &inv);
		tq_trits(src, inv, t);
		/* byte m of group g: trits 128g + 32k + m at bits 2k (values <= 2: no carry between bytes) */
		for (int g = 0; g < 2; g++) {
			const uint8_t *tg = t + 128 * g;
			__m256i q = _mm256_loadu_si256((const __m256i *)tg);
			for (int k = 1; k < 4; k++)
				q = _mm256_or_si256(q, _mm256_slli_epi16(_mm256_loadu_si256((const __m256i *)(tg + 32 * k)),
				                                         2 * k));
			_mm256_storeu_si256((__m256i *)(out + 32 * g), q);
		}
		put16(out + 64, to_fp16(d));
	}
}

/* ceil(v * 256 / 243) for a base-3 number v < 243, as quant_tq.c packs it. */
static uint8_t tq_pack(unsigned v)
{
	return (uint8_t)((v * 256u + 242u) / 243u);
}

AVX2_F16C void qa_x86_quantize_tq1_0(const float *src, void *dst, size_t n)
{
	uint8_t *out = dst, t[256];
	for (size_t b = 0; b < n / 256; b++, src += 256, out += 54) {
		float inv, d = tq_scale(src, &inv);
		tq_trits(src, inv, t);
		for (int m = 0; m < 32; m++)
			out[m] = tq_pack(((((unsigned)t[m] * 3 + t[m + 32]) * 3 + t[m + 64]) * 3 + t[m + 96]) * 3 +
			                 t[m + 128]);
		for (int m = 0; m < 16; m++)
			out[32 + m] = tq_pack(((((unsigned)t[160 + m] * 3 + t[176 + m]) * 3 + t[192 + m]) * 3 +
			                       t[208 + m]) * 3 + t[224 + m]);
		for (int j = 0; j < 4; j++)
			out[48 + j] = tq_pack(((((unsigned)t[240 + j] * 3 + t[244 + j]) * 3 + t[248 + j]) * 3 +
			                       t[252 + j]) * 3);
		put16(out + 52, to_fp16(d));
	}
}

/* ---------------------------------------------------------------- mxfp4 */

/*
 * The 16 code bytes of one mxfp4 block (quant_mxfp4.c's nearest_code on
 * 8 lanes at a time).  The scalar search tries the 16 doubled E2M1 levels
 * in code order, each as |level * scale - x|, keeping the first strictly
 * smaller error.  Codes 8..15 are the negations of codes 0..7, and
 * negation is exact, so for x < 0 code 8 + i has exactly the error code i
 * has for |x|; a level of the other sign than x errs by at least |x|, code
 * 0's error, which comes first.  So each lane searches codes 0..7 on |x|
 * (first strictly smaller error) and adds 8 when x < 0 and the code is not
 * 0 (code 8 ties with code 0, which wins).  x = -0 gets code 0 either way.
 */
AVX2 void qa_x86_mxfp4_codes(const float *x, const int8_t levels[16], float scale, uint8_t out[16])
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 lv[8];
	for (int c = 0; c < 8; c++)
		lv[c] = _mm256_set1_ps((float)levels[c] * scale);
	__m256i q[4];
	for (int k = 0; k < 4; k++) {
		__m256 v = _mm256_loadu_ps(x + 8 * k);
		__m256 a = _mm256_andnot_ps(sign, v);
		__m256 best = _mm256_andnot_ps(sign, _mm256_sub_ps(lv[0], a));
		__m256i code = _mm256_setzero_si256();
		for (int c = 1; c < 8; c++) {
			__m256 err = _mm256_andnot_ps(sign, _mm256_sub_ps(lv[c], a));
			__m256 lt = _mm256_cmp_ps(err, best, _CMP_LT_OQ);
			best = _mm256_blendv_ps(best, err, lt);
			code = _mm256_blendv_epi8(code, _mm256_set1_epi32(c), _mm256_castps_si256(lt));
		}
		__m256i neg = _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
		__m256i nonzero = _mm256_xor_si256(_mm256_cmpeq_epi32(code, _mm256_setzero_si256()),
		                                   _mm256_set1_epi32(-1));
		q[k] = _mm256_or_si256(code, _mm256_and_si256(_mm256_and_si256(neg, nonzero), _mm256_set1_epi32(8)));
	}
	pack_nibbles(q, q + 2, 0xff, 0xff, out);
}

/* ---------------------------------------------------------------- iq4_nl / iq4_xs */

/*
 * Level index and level (as float) of 8 lanes of v, as quant_iq.c's
 * nearest_level: at or below the first level 0, at or above the last 15;
 * between, hi = 1 + the number of levels 1..14 that v is not below (where
 * the scalar bisection ends, since it moves up unless v < level[mid]), and
 * hi - 1 when v - level[hi-1] < level[hi] - v in float.  A NaN v (a block
 * whose sums overflowed gives a NaN scale) is below no level, so it ends at
 * 15 as the bisection does.  lv holds the 16 levels, lv[k] broadcast.
 */
AVX2 static __m256i iq4_nearest8(__m256 v, const __m256 lv[16], __m256 tab_lo, __m256 tab_hi, __m256 *q)
{
	__m256i hi = _mm256_set1_epi32(1);
	for (int k = 1; k < 15; k++)
		hi = _mm256_sub_epi32(hi, _mm256_castps_si256(_mm256_cmp_ps(v, lv[k], _CMP_NLT_UQ)));
	const __m256i seven = _mm256_set1_epi32(7), one = _mm256_set1_epi32(1);
	__m256i lo = _mm256_sub_epi32(hi, one);
#define IQ4_LOOKUP(i) _mm256_blendv_ps(_mm256_permutevar8x32_ps(tab_lo, i), _mm256_permutevar8x32_ps(tab_hi, i), \
                                       _mm256_castsi256_ps(_mm256_cmpgt_epi32(i, seven)))
	__m256 below = IQ4_LOOKUP(lo), above = IQ4_LOOKUP(hi);
	__m256 take_lo = _mm256_cmp_ps(_mm256_sub_ps(v, below), _mm256_sub_ps(above, v), _CMP_LT_OQ);
	__m256i idx = _mm256_blendv_epi8(hi, lo, _mm256_castps_si256(take_lo));
	__m256 first = _mm256_cmp_ps(v, lv[0], _CMP_LE_OQ), last = _mm256_cmp_ps(v, lv[15], _CMP_GE_OQ);
	idx = _mm256_andnot_si256(_mm256_castps_si256(first), idx);
	idx = _mm256_blendv_epi8(idx, _mm256_set1_epi32(15), _mm256_castps_si256(last));
	*q = IQ4_LOOKUP(idx);
#undef IQ4_LOOKUP
	return idx;
}

AVX2 static void iq4_tables(const int8_t levels[16], __m256 lv[16], __m256 *tab_lo, __m256 *tab_hi)
{
	float f[16];
	for (int k = 0; k < 16; k++) {
		f[k] = (float)levels[k];
		lv[k] = _mm256_set1_ps(f[k]);
	}
	*tab_lo = _mm256_loadu_ps(f);
	*tab_hi = _mm256_loadu_ps(f + 8);
}

/*
 * sum w*q*x and sum w*q*q over 32 values (q the nearest level of inv * x):
 * the products lane by lane as the scalar forms them ((w*q)*x, (w*q)*q),
 * then summed in element order from 0, as the scalar loop adds them.
 */
AVX2 void qa_x86_iq4_fit_sums(const float *x, const float *w, float inv, const int8_t levels[16],
                              float *sqx, float *sqq)
{
	__m256 lv[16], tab_lo, tab_hi;
	iq4_tables(levels, lv, &tab_lo, &tab_hi);
	const __m256 vinv = _mm256_set1_ps(inv);
	float pa[32], pb[32];
	for (int k = 0; k < 4; k++) {
		__m256 vx = _mm256_loadu_ps(x + 8 * k), q;
		iq4_nearest8(_mm256_mul_ps(vinv, vx), lv, tab_lo, tab_hi, &q);
		__m256 wq = _mm256_mul_ps(_mm256_loadu_ps(w + 8 * k), q);
		_mm256_storeu_ps(pa + 8 * k, _mm256_mul_ps(wq, vx));
		_mm256_storeu_ps(pb + 8 * k, _mm256_mul_ps(wq, q));
	}
	float a = 0.0f, b = 0.0f;
	for (int j = 0; j < 32; j++) {
		a += pa[j];
		b += pb[j];
	}
	*sqx = a;
	*sqq = b;
}

/* The nearest level indices of inv * x[j] for 32 values. */
AVX2 void qa_x86_iq4_indices(const float *x, float inv, const int8_t levels[16], uint8_t idx[32])
{
	__m256 lv[16], tab_lo, tab_hi, q;
	iq4_tables(levels, lv, &tab_lo, &tab_hi);
	const __m256 vinv = _mm256_set1_ps(inv);
	int32_t i32[32];
	for (int k = 0; k < 4; k++)
		_mm256_storeu_si256((__m256i *)(i32 + 8 * k),
		                    iq4_nearest8(_mm256_mul_ps(vinv, _mm256_loadu_ps(x + 8 * k)), lv, tab_lo, tab_hi, &q));
	for (int j = 0; j < 32; j++)
		idx[j] = (uint8_t)i32[j];
}

/*
 * The grid searches of the i-quants (quant_iq1.c, quant_iq2.c, quant_iq3.c):
 * among the grid points of a neighbour list, the first one of least error
 * sum_i t_i[c_i], where c_i is the point's code in coordinate i and
 * t_i[c] = (w_i * diff) * diff with diff = scale * pos[c] - x_i, summed from
 * 0 in coordinate order.  The scalar searches compute exactly these floats;
 * here the terms t_i[c] are tabulated in vector registers (a coordinate has
 * at most 8 codes), and 8 list entries are summed at once, one per lane,
 * each term fetched by a lane permute from its coordinate's table.  The
 * scalar picks the first error strictly below the best so far, starting
 * from FLT_MAX, so an error that is NaN or not below FLT_MAX is never
 * picked: lanes are clamped to FLT_MAX (minps returns its second operand
 * for NaN) and the first lane equal to the chunk minimum wins a chunk when
 * it is strictly below the best of the earlier chunks.  Returns the
 * position in the list (0-based) of the pick, or -1 when no error is below
 * FLT_MAX, which the callers resolve as their scalar searches do.  The
 * lists are read 8 entries at a time: the arrays holding them are padded.
 */
AVX2 static int list_pick(__m256 e, unsigned j, unsigned n, float *best, int pos)
{
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	__m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - j)), lane));
	e = _mm256_min_ps(e, _mm256_set1_ps(FLT_MAX));
	e = _mm256_blendv_ps(_mm256_set1_ps(FLT_MAX), e, valid);
	float m = hmin(e);
	if (m < *best) {
		*best = m;
		unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(e, _mm256_set1_ps(m), _CMP_EQ_OQ));
		pos = (int)j + __builtin_ctz(mask);
	}
	return pos;
}

/* The codes of list entries j..j+7 (entries past n read point 0). */
AVX2 static __m256i list_codes(const uint16_t *list, unsigned j, unsigned n, const uint32_t *codes32)
{
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	__m256i idx = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(list + j)));
	idx = _mm256_and_si256(idx, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - j)), lane));
	return _mm256_i32gather_epi32((const int *)codes32, idx, 4);
}

AVX2 int qa_x86_grid8_pick(const float *x, const float *w, float scale, const float pos[3],
                           const uint16_t *list, unsigned n, const uint32_t *codes32)
{
	__m256 vx = _mm256_loadu_ps(x), vw = _mm256_loadu_ps(w), d[3];
	for (int c = 0; c < 3; c++) {
		__m256 diff = _mm256_sub_ps(_mm256_set1_ps(scale * pos[c]), vx);
		d[c] = _mm256_mul_ps(_mm256_mul_ps(vw, diff), diff);
	}
	/* Transpose to tab[k] = { t_k[0..2], 0, t_{k+4}[0..2], 0 }. */
	const __m256 z = _mm256_setzero_ps();
	__m256 lo01 = _mm256_unpacklo_ps(d[0], d[1]), lo2z = _mm256_unpacklo_ps(d[2], z);
	__m256 hi01 = _mm256_unpackhi_ps(d[0], d[1]), hi2z = _mm256_unpackhi_ps(d[2], z);
	__m256 tab[4] = {
		_mm256_shuffle_ps(lo01, lo2z, _MM_SHUFFLE(1, 0, 1, 0)),
		_mm256_shuffle_ps(lo01, lo2z, _MM_SHUFFLE(3, 2, 3, 2)),
		_mm256_shuffle_ps(hi01, hi2z, _MM_SHUFFLE(1, 0, 1, 0)),
		_mm256_shuffle_ps(hi01, hi2z, _MM_SHUFFLE(3, 2, 3, 2)),
	};
	const __m256i three = _mm256_set1_epi32(3), four = _mm256_set1_epi32(4);
	float best = FLT_MAX;
	int pick = -1;
	for (unsigned j = 0; j < n; j += 8) {
		__m256i code = list_codes(list, j, n, codes32);
		__m256 e = _mm256_setzero_ps();
		for (int i = 0; i < 8; i++) {
			__m256i c = _mm256_and_si256(_mm256_srli_epi32(code, 2 * i), three);
			if (i >= 4)
				c = _mm256_or_si256(c, four);
			e = _mm256_add_ps(e, _mm256_permutevar8x32_ps(tab[i % 4], c));
		}
		pick = list_pick(e, j, n, &best, pick);
	}
	return pick;
}

AVX2 int qa_x86_grid4_pick(const float *x, const float *w, float scale, const uint16_t *codes,
                           unsigned n)
{
	const __m256 p = _mm256_setr_ps(1, 3, 5, 7, 9, 11, 13, 15), vs = _mm256_set1_ps(scale);
	__m256 tab[4];
	for (int i = 0; i < 4; i++) {
		__m256 diff = _mm256_sub_ps(_mm256_mul_ps(vs, p), _mm256_set1_ps(x[i]));
		tab[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(w[i]), diff), diff);
	}
	const __m256i seven = _mm256_set1_epi32(7);
	float best = FLT_MAX;
	int pick = -1;
	for (unsigned j = 0; j < n; j += 8) {
		__m256i code = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(codes + j)));
		__m256 e = _mm256_setzero_ps();
		for (int i = 0; i < 4; i++)
			e = _mm256_add_ps(e, _mm256_permutevar8x32_ps(
				tab[i], _mm256_and_si256(_mm256_srli_epi32(code, 3 * i), seven)));
		pick = list_pick(e, j, n, &best, pick);
	}
	return pick;
}

/*
 * iq1_s's cut-point search for one first cut i1 (quant_iq1.c, fit_s): for
 * i2 = i1..n and each delta sign, the fit sums
 *   sqx = (sx[i1]-sx[0])*lv[0] + (sx[i2]-sx[i1])*lv[1] + (sx[n]-sx[i2])*lv[2]
 *   sqq = (sw[i1]-sw[0])*lv[0]*lv[0] + ... (left to right)
 * with lv the plus (sign 0) or minus (sign 1) levels, the candidate taken
 * when sqq > 0 and sqx*sqx > best*sqq.  Eight candidates (four i2, both
 * signs, in the scalar's order) are computed at once, lane by lane with
 * the scalar's operations; a chunk none of whose lanes passes the test
 * against the best at its start is skipped (no lane could pass it before
 * the best changes), otherwise its lanes are taken one by one exactly as
 * the scalar takes them.  sx and sw are readable 8 entries past n.
 */
AVX2 void qa_x86_iq1s_cuts(const float *sx, const float *sw, int n, int i1, const float lvp[3],
                           const float lvm[3], float *best, float *scale, int *b1, int *b2, int *sgn)
{
	const __m256i pair = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
	const __m256i lane2 = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
	__m256 lv[3];
	for (int c = 0; c < 3; c++)
		lv[c] = _mm256_setr_ps(lvp[c], lvm[c], lvp[c], lvm[c], lvp[c], lvm[c], lvp[c], lvm[c]);
	const __m256 ax = _mm256_mul_ps(_mm256_set1_ps(sx[i1] - sx[0]), lv[0]);
	const __m256 aq = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(sw[i1] - sw[0]), lv[0]), lv[0]);
	const __m256 sx1 = _mm256_set1_ps(sx[i1]), sxn = _mm256_set1_ps(sx[n]);
	const __m256 sw1 = _mm256_set1_ps(sw[i1]), swn = _mm256_set1_ps(sw[n]);
	const __m256 zero = _mm256_setzero_ps();
	float vx[8], vq[8];
	for (int i2 = i1; i2 <= n; i2 += 4) {
		__m256 x2 = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sx + i2)), pair);
		__m256 w2 = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sw + i2)), pair);
		__m256 qx = _mm256_add_ps(_mm256_add_ps(ax, _mm256_mul_ps(_mm256_sub_ps(x2, sx1), lv[1])),
		                          _mm256_mul_ps(_mm256_sub_ps(sxn, x2), lv[2]));
		__m256 qq = _mm256_add_ps(
			_mm256_add_ps(aq, _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(w2, sw1), lv[1]), lv[1])),
			_mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(swn, w2), lv[2]), lv[2]));
		__m256 pass = _mm256_and_ps(_mm256_cmp_ps(qq, zero, _CMP_GT_OQ),
		                            _mm256_cmp_ps(_mm256_mul_ps(qx, qx),
		                                          _mm256_mul_ps(_mm256_set1_ps(*best), qq), _CMP_GT_OQ));
		__m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - i2 + 1), lane2);
		unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_and_ps(pass, _mm256_castsi256_ps(valid)));
		if (!mask)
			continue;
		_mm256_storeu_ps(vx, qx);
		_mm256_storeu_ps(vq, qq);
		for (int l = __builtin_ctz(mask); l < 8 && i2 + l / 2 <= n; l++) {
			if (vq[l] > 0 && vx[l] * vx[l] > *best * vq[l]) {
				*scale = vx[l] / vq[l];
				*best = *scale * vx[l];
				*b1 = i1;
				*b2 = i2 + l / 2;
				*sgn = l % 2;
			}
		}
	}
}

/*
 * The weighted legacy fits (quant_legacy.c under an importance matrix):
 * quant_fit.h's qa_quant_fit_symmetric and qa_quant_fit_affine for one
 * block of 32, with the trial inverse scales in vector lanes.  Each lane
 * runs one trial's sums over the 32 elements in element order with the
 * scalar's operations (round by the 1.5 * 2^23 shift, clamp, the same
 * products in the same association), so every lane's sums are the scalar
 * trial's; the trials are then compared in the scalar's order by scalar
 * code.  The levels are recomputed at the end from the winning inverse
 * scale by the scalar's expression.
 */
AVX2 static __m256 round_clamp(__m256 v, __m256i lo, __m256i hi)
{
	__m256i b = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.f)));
	b = _mm256_sub_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
	return _mm256_cvtepi32_ps(_mm256_min_epi32(_mm256_max_epi32(b, lo), hi));
}

static int round_shift_int(float v)
{
	float f = v + 12582912.f;
	int32_t b;
	memcpy(&b, &f, sizeof b);
	return (b & 0x007fffff) - 0x00400000;
}

static int clamp_i(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

AVX2 float qa_x86_fit_symmetric32(int nmax, const float *x, int8_t *q, const float *w)
{
	float peak = 0, apeak = 0;
	for (int i = 0; i < 32; ++i) {
		float a = fabsf(x[i]);
		if (a > apeak) {
			apeak = a;
			peak = x[i];
		}
	}
	if (apeak < 1e-15f) {
		memset(q, 0, 32);
		return 0.f;
	}
	/* lane 0: the first guess; lanes 1..18: k = -9..-1, 1..9; the rest unused */
	float inv[24] = { 0 };
	inv[0] = -nmax / peak;
	for (int k = -9, j = 1; k <= 9; ++k)
		if (k != 0)
			inv[j++] = -(nmax + 0.1f * k) / peak;
	__m256 vinv[3], sxl[3], sl2[3];
	for (int v = 0; v < 3; v++) {
		vinv[v] = _mm256_loadu_ps(inv + 8 * v);
		sxl[v] = sl2[v] = _mm256_setzero_ps();
	}
	const __m256i lo = _mm256_set1_epi32(-nmax), hi = _mm256_set1_epi32(nmax - 1);
	for (int i = 0; i < 32; ++i) {
		__m256 vx = _mm256_set1_ps(x[i]), vw = _mm256_set1_ps(w[i]);
		__m256 wx = _mm256_set1_ps(w[i] * x[i]);
		for (int v = 0; v < 3; v++) {
			__m256 l = round_clamp(_mm256_mul_ps(vinv[v], vx), lo, hi);
			sxl[v] = _mm256_add_ps(sxl[v], _mm256_mul_ps(wx, l));
			sl2[v] = _mm256_add_ps(sl2[v], _mm256_mul_ps(_mm256_mul_ps(vw, l), l));
		}
	}
	float a[24], b[24];
	for (int v = 0; v < 3; v++) {
		_mm256_storeu_ps(a + 8 * v, sxl[v]);
		_mm256_storeu_ps(b + 8 * v, sl2[v]);
	}
	float scale = b[0] ? a[0] / b[0] : 0.0f;
	float best = scale * a[0];
	int win = 0;
	for (int j = 1; j <= 18; j++) {
		if (b[j] > 0 && a[j] * a[j] > best * b[j]) {
			scale = a[j] / b[j];
			best = scale * a[j];
			win = j;
		}
	}
	for (int i = 0; i < 32; ++i)
		q[i] = (int8_t)(nmax + clamp_i(round_shift_int(inv[win] * x[i]), -nmax, nmax - 1));
	return scale;
}

/*
 * The affine fit's trials are not independent: a better trial moves the
 * offset lo, and later trials use the new one.  So the trials from the
 * first one not yet taken are run speculatively with the current lo; the
 * first that the scalar would take is taken, and the speculation restarts
 * after it with the new lo (3.5 times per block on Gaussian-like weights).
 * A window of trials runs at a time, so that a restart wastes little.
 */
/* Trials per speculation: 16 (two vectors) measured best; longer windows mostly redo work. */
#define AFFINE_WINDOW 2
AVX2 float qa_x86_fit_affine32(int nmax, const float *x, const float *w, uint8_t *q, float *neg_min,
                               float rmin, float rdelta, int nstep)
{
	float lo, hi, sw, swx;
	qa_quant_fit_range(32, x, w, &lo, &hi, &sw, &swx);
	if (hi == lo) {
		memset(q, 0, 32);
		*neg_min = -lo;
		return 0.f;
	}
	float inv = nmax / (hi - lo);
	float scale = 1 / inv;
	float best_err = 0;
	float win_inv = inv, win_lo = lo;
	for (int i = 0; i < 32; ++i) {
		int l = clamp_i(round_shift_int(inv * (x[i] - lo)), 0, nmax);
		float diff = scale * (uint8_t)l + lo - x[i];
		diff = diff * diff;
		best_err += w[i] * diff;
	}
	const __m256i zero_i = _mm256_setzero_si256(), top = _mm256_set1_epi32(nmax);
	for (int start = 0; start <= nstep;) {
		int n = nstep + 1 - start, nv = (n + 7) / 8;
		if (nv > AFFINE_WINDOW)
			nv = AFFINE_WINDOW;
		n = n < 8 * nv ? n : 8 * nv;
		float tinv[8 * AFFINE_WINDOW] = { 0 };
		for (int j = 0; j < n; j++)
			tinv[j] = (rmin + rdelta * (start + j) + nmax) / (hi - lo);
		__m256 vinv[AFFINE_WINDOW], s_l[AFFINE_WINDOW], s_l2[AFFINE_WINDOW], s_xl[AFFINE_WINDOW];
		for (int v = 0; v < nv; v++) {
			vinv[v] = _mm256_loadu_ps(tinv + 8 * v);
			s_l[v] = s_l2[v] = s_xl[v] = _mm256_setzero_ps();
		}
		__m256 lev[32][AFFINE_WINDOW];
		for (int i = 0; i < 32; ++i) {
			__m256 d = _mm256_set1_ps(x[i] - lo), vw = _mm256_set1_ps(w[i]), vx = _mm256_set1_ps(x[i]);
			for (int v = 0; v < nv; v++) {
				__m256 l = lev[i][v] = round_clamp(_mm256_mul_ps(vinv[v], d), zero_i, top);
				__m256 wl = _mm256_mul_ps(vw, l);
				s_l[v] = _mm256_add_ps(s_l[v], wl);
				s_l2[v] = _mm256_add_ps(s_l2[v], _mm256_mul_ps(wl, l));
				s_xl[v] = _mm256_add_ps(s_xl[v], _mm256_mul_ps(wl, vx));
			}
		}
		/* The normal equations per lane, as the scalar solves them. */
		__m256 cs[AFFINE_WINDOW], cm[AFFINE_WINDOW], ok[AFFINE_WINDOW];
		const __m256 vsw = _mm256_set1_ps(sw), vswx = _mm256_set1_ps(swx), zero = _mm256_setzero_ps();
		for (int v = 0; v < nv; v++) {
			__m256 det = _mm256_sub_ps(_mm256_mul_ps(vsw, s_l2[v]), _mm256_mul_ps(s_l[v], s_l[v]));
			ok[v] = _mm256_cmp_ps(det, zero, _CMP_GT_OQ);
			__m256 c_s = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(vsw, s_xl[v]), _mm256_mul_ps(vswx, s_l[v])), det);
			__m256 c_m = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(s_l2[v], vswx), _mm256_mul_ps(s_l[v], s_xl[v])), det);
			__m256 pos = _mm256_cmp_ps(c_m, zero, _CMP_GT_OQ);
			cm[v] = _mm256_blendv_ps(c_m, zero, pos);
			cs[v] = _mm256_blendv_ps(c_s, _mm256_div_ps(s_xl[v], s_l2[v]), pos);
		}
		__m256 err[AFFINE_WINDOW];
		for (int v = 0; v < nv; v++)
			err[v] = _mm256_setzero_ps();
		for (int i = 0; i < 32; ++i) {
			__m256 vw = _mm256_set1_ps(w[i]), vx = _mm256_set1_ps(x[i]);
			for (int v = 0; v < nv; v++) {
				__m256 l = lev[i][v];
				__m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(cs[v], l), cm[v]), vx);
				err[v] = _mm256_add_ps(err[v], _mm256_mul_ps(vw, _mm256_mul_ps(diff, diff)));
			}
		}
		float e[8 * AFFINE_WINDOW], okf[8 * AFFINE_WINDOW], vs[8 * AFFINE_WINDOW], vm[8 * AFFINE_WINDOW];
		for (int v = 0; v < nv; v++) {
			_mm256_storeu_ps(e + 8 * v, err[v]);
			_mm256_storeu_ps(okf + 8 * v, ok[v]);
			_mm256_storeu_ps(vs + 8 * v, cs[v]);
			_mm256_storeu_ps(vm + 8 * v, cm[v]);
		}
		int taken = -1;
		for (int j = 0; j < n && taken < 0; j++) {
			uint32_t okb;
			memcpy(&okb, &okf[j], sizeof okb);
			if (okb && e[j] < best_err)
				taken = j;
		}
		if (taken < 0) {
			start += n;
			continue;
		}
		best_err = e[taken];
		scale = vs[taken];
		win_inv = tinv[taken];
		win_lo = lo;
		lo = vm[taken];
		start += taken + 1;
	}
	for (int i = 0; i < 32; ++i)
		q[i] = (uint8_t)clamp_i(round_shift_int(win_inv * (x[i] - win_lo)), 0, nmax);
	*neg_min = -lo;
	return scale;
}

#endif /* QA_QUANT_X86 */
