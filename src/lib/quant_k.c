/*
 * quant_k.c - the "k-quant" super-block formats q2_K .. q6_K (both
 * directions) and q8_K (decoding only).
 *
 * Every k-quant works on super-blocks of 256 values cut into sub-blocks of
 * 16 or 32.  Each sub-block gets its own scale (and, for the affine types
 * q2_K, q4_K and q5_K, its own minimum); those per-sub-block numbers are
 * themselves quantized to 4 or 6 bits against one or two fp16 super-block
 * factors.  Finally every value is re-quantized against the scale it will
 * actually be decoded with.
 *
 * The encoders reproduce ggml's reference quantizer (quantize_row_*_ref,
 * the path taken without an importance matrix) byte for byte.  That means
 * every floating-point expression below is evaluated in the same order and
 * with the same int/float conversions as the reference; rearranging a sum
 * or hoisting a product changes low bits and, through the rounding steps,
 * whole output bytes.  The file must therefore be built with
 * -ffp-contract=off (no fused multiply-add).
 *
 * The group fits dominate the cost of every k-quant encoder: the affine
 * fit of q2_K, q4_K and q5_K (fit_affine) and the symmetric fits of q3_K
 * (fit_q3) and q6_K (fit_symmetric).  Besides the scalar references each
 * has SIMD versions that fit 4, 8 (AVX2) or 16 (AVX-512) groups in
 * lockstep with the same per-group arithmetic; fit_q3's groups leave their
 * lanes as they settle (fit_q3_all).  The finishing steps (scales,
 * requantization, bit packing) have vector versions too.  The public
 * encoders use the fastest one available; qa_quant_k_quantize picks one
 * explicitly, so tests can check that all agree.
 *
 * Block layouts (little-endian, no padding), offsets in bytes:
 *   q2_K (84):  scales[16] @0 (lo nibble scale, hi nibble min), qs[64] @16,
 *               d @80, dmin @82
 *   q3_K (110): hmask[32] @0, qs[64] @32, scales[12] @96 (16 x 6 bit), d @108
 *   q4_K (144): d @0, dmin @2, scales[12] @4 (8 x (6+6) bit), qs[128] @16
 *   q5_K (176): d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
 *   q6_K (210): ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208
 *   q8_K (292): d (f32) @0, qs[256] (int8) @4, bsums[16] (int16) @260
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "cursor.h"
#include "fp16.h"
#include "quant.h"
#include "quant_fit.h"

#define SUPER 256              /* values per super-block */
#define TINY_GROUP 1e-15f      /* below this |max| a group counts as all zero */

#define Q2K_BYTES 84
#define Q3K_BYTES 110
#define Q4K_BYTES 144
#define Q5K_BYTES 176
#define Q6K_BYTES 210
#define Q8K_BYTES 292

/* ------------------------------------------------------------------ */
/* Shared numeric helpers                                              */
/* ------------------------------------------------------------------ */

/*
 * Round to the nearest integer, ties to even, the way the reference does:
 * adding 1.5 * 2^23 pushes the integer part into the low mantissa bits,
 * where the FPU's own round-to-nearest-even has already rounded it.  Valid
 * for |v| < 2^22; outside that range it still returns a deterministic (if
 * meaningless) value, and it must return the *same* meaningless value as
 * the reference, which is why this is not lrintf().
 */
static inline int round_magic(float v)
{
	float shifted = v + 12582912.f;
	int32_t bits;
	memcpy(&bits, &shifted, sizeof bits);
	return (bits & 0x007fffff) - 0x00400000;
}

static inline int clamp_int(int v, int lo, int hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

/*
 * The value of largest magnitude among x[0..n-1] (the first of equal
 * magnitudes; 0 when all are zero), its magnitude to *apeak.
 */
static float signed_peak(const float *x, int n, float *apeak)
{
	float peak = 0;
	float a_peak = 0;
	for (int i = 0; i < n; ++i) {
		float a = fabsf(x[i]);
		if (a > a_peak) {
			a_peak = a;
			peak = x[i];
		}
	}
	*apeak = a_peak;
	return peak;
}

/*
 * signed_peak of 16 values: the largest magnitude found four lanes at a
 * time (a NaN is never taken, as in the scalar comparison), then the first
 * value with that magnitude, which is the one the scalar scan keeps.
 */
static float signed_peak16(const float *x, float *apeak)
{
#if defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 9)
	typedef float v4f __attribute__((vector_size(16)));
	typedef int32_t v4i __attribute__((vector_size(16)));
	v4f am = { 0 };
	for (int j = 0; j < 16; j += 4) {
		v4f t;
		memcpy(&t, x + j, sizeof t);
		v4f a = (v4f)((v4i)t & ((v4i){ 0 } + 0x7fffffff));
		v4i m = a > am;
		am = (v4f)((m & (v4i)a) | (~m & (v4i)am));
	}
	float a_peak = 0;
	for (int k = 0; k < 4; ++k)
		if (am[k] > a_peak)
			a_peak = am[k];
	*apeak = a_peak;
	if (a_peak > 0)
		for (int i = 0; i < 16; ++i)
			if (fabsf(x[i]) == a_peak)
				return x[i];
	return 0;
#else
	return signed_peak(x, 16, apeak);
#endif
}

/*
 * Affine fit of a group: find scale s and offset m <= 0 such that
 * x ~ s*q + m with integer q in [0, nmax], minimising a weighted error
 * (absolute when abs_err, squared otherwise).  The first guess spans the
 * range [min(x,0), max(x)]; then nstep+1 alternative inverse scales
 * (nmax + rmin + rdelta*k) / range are tried, each followed by a weighted
 * least-squares solve for (s, m) given the levels; the best one is kept.
 * Writes the levels to q and -m to *neg_min; returns s.
 * (This is ggml's make_qkx2_quants.)
 */
float qa_quant_fit_affine(int n, int nmax, const float *x, const float *w,
                          uint8_t *q, float *neg_min, float rmin, float rdelta,
                          int nstep, bool abs_err)
{
	uint8_t trial[32];
	float lo, hi, sw, swx;
	qa_quant_fit_range(n, x, w, &lo, &hi, &sw, &swx);
	if (hi == lo) {
		memset(q, 0, (size_t)n);
		*neg_min = -lo;
		return 0.f;
	}

	float inv = nmax / (hi - lo);
	float scale = 1 / inv;
	float best_err = 0;
	for (int i = 0; i < n; ++i) {
		q[i] = (uint8_t)clamp_int(round_magic(inv * (x[i] - lo)), 0, nmax);
		float diff = scale * q[i] + lo - x[i];
		diff = abs_err ? fabsf(diff) : diff * diff;
		best_err += w[i] * diff;
	}
	if (nstep < 1) {
		*neg_min = -lo;
		return scale;
	}

	for (int step = 0; step <= nstep; ++step) {
		inv = (rmin + rdelta * step + nmax) / (hi - lo);
		float s_l = 0, s_l2 = 0, s_xl = 0;
		for (int i = 0; i < n; ++i) {
			int l = clamp_int(round_magic(inv * (x[i] - lo)), 0, nmax);
			trial[i] = (uint8_t)l;
			float wi = w[i];
			s_l += wi * l;
			s_l2 += wi * l * l;
			s_xl += wi * l * x[i];
		}
		/* Normal equations of the weighted 2x2 least-squares problem. */
		float det = sw * s_l2 - s_l * s_l;
		if (!(det > 0))
			continue;
		float cand_scale = (sw * s_xl - swx * s_l) / det;
		float cand_min = (s_l2 * swx - s_l * s_xl) / det;
		if (cand_min > 0) {
			/* The offset may not be positive: refit the scale alone. */
			cand_min = 0;
			cand_scale = s_xl / s_l2;
		}
		float err = 0;
		for (int i = 0; i < n; ++i) {
			float diff = cand_scale * trial[i] + cand_min - x[i];
			diff = abs_err ? fabsf(diff) : diff * diff;
			err += w[i] * diff;
		}
		if (err < best_err) {
			memcpy(q, trial, (size_t)n);
			best_err = err;
			scale = cand_scale;
			lo = cand_min;
		}
	}
	*neg_min = -lo;
	return scale;
}

/*
 * Each encoder works on a chunk of up to CHUNK consecutive super-blocks:
 * it computes the weights (importance-weighted case), fits all groups of
 * the chunk as one job (so a 16-lane kernel gets 16 groups even where a
 * super-block has only 8), then finishes every super-block on its own.
 * The fits of different groups are independent, so fitting them together
 * changes nothing.  qw is NULL (ggml's reference path) or holds, for each
 * super-block of the chunk, its 256 importance weights.  A chunk's buffers
 * live on the stack: at 32 super-blocks about 195 KB with q3_K's lane sets
 * (q3_K gains 7 % over 16 from fewer near-empty late sweeps), well within
 * the 8 MiB a thread gets by default on glibc.
 */
#define CHUNK 32

/*
 * One fitting job: the groups of n values at x (consecutive, possibly
 * spanning several super-blocks) with weights w in the same layout, or
 * NULL for the built-in weights of the unweighted encoders (affine: |x|
 * when abs_err, rms(group) + |x| otherwise; symmetric: x^2).  Group h
 * writes its n levels to lev + n*h and its scale (and, affine, -min) to
 * scale[h] (negmin[h]).  sym selects the symmetric fits (n is 16): fit_q3
 * with nmax 4 when q3, else qa_quant_fit_symmetric; otherwise the affine
 * fit with rmin, rdelta, nstep and abs_err.  no_levels (symmetric fits
 * only) lets the SIMD kernels write the scales alone: the encoders
 * requantize every group against its decoded scale, and need the fitted
 * levels only of a group whose scale decodes to 0, which they fit again
 * with sym_levels_one (the same levels every kernel writes).
 */
struct qk_fit {
	const float *x, *w;
	int n, nmax;
	float rmin, rdelta;
	int nstep;
	bool abs_err, sym, q3, no_levels;
	uint8_t *lev;
	float *scale, *negmin;
};

/*
 * The fast paths: fit_affine for several groups at once, in SIMD lanes.
 *
 * fit_affine spends its time in serial float sums, each add waiting for
 * the previous one.  Here the groups of a super-block advance in lockstep,
 * one group per lane of a float vector (GCC/Clang vector extensions;
 * lane-major data, x[i][g] = element i of group g), so the chains overlap
 * and each instruction does several groups' work.  Within each lane the
 * floating-point operations are exactly those of fit_affine, in the same
 * order: the same sums in the same element order, the same int/float
 * conversions, comparisons and updates; vector + - * / are the same IEEE
 * single-precision operations as the scalar ones (never fused:
 * -ffp-contract=off covers vector code too), and fabsf is a sign-bit clear
 * in both.  Work fit_affine would skip is still done but masked out: a
 * flat group (max == min) or a step with det <= 0 computes throwaway
 * values (possibly NaN or inf; nothing traps) that never reach the result.
 * Instead of copying the trial levels on every improvement, the inverse
 * scale and offset that produced the best levels are remembered and the
 * levels recomputed from them once at the end, by the same expression.
 *
 * One body, QK_DEFINE_FIT below, is instantiated twice: 4 lanes (128-bit
 * vectors, any target) and, on x86, 8 lanes compiled for AVX2 and used
 * only when the CPU has it.  (8-lane code compiled without AVX would have
 * its comparisons split into scalar code, hence two widths.)  Compilers
 * without vector extensions have only the scalar path.
 */
#if defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 9)
#define QK_SIMD 1
#if defined(__x86_64__) || defined(__i386__)
#define QK_AVX2 1
#if defined(__clang__) || __GNUC__ >= 10
#define QK_AVX512 1
#define QK_AVX512_ATTR __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#endif
#endif
#endif

#if QK_SIMD
/*
 * Helpers on any vector type: a splat that keeps -0 (s - +0 == s for every
 * float s), and a lane-wise m ? a : b for a comparison mask m.
 */
#define QK_SPLAT(VF, s) ((s) - (VF){ 0 })
#define QK_SEL(VI, m, a, b) (((m) & (VI)(a)) | (~(m) & (VI)(b)))

/* round_magic(v) in every lane, as int32 lanes of VI. */
#define QK_ROUND_MAGIC(VF, VI, v)                                               \
	(((VI)((v) + QK_SPLAT(VF, 12582912.f)) & ((VI){ 0 } + 0x007fffff)) -    \
	 ((VI){ 0 } + 0x00400000))

/* (float)clamp_int(round_magic(v), 0, nmax) in every lane; vnmax is a splat. */
#define QK_LEVEL(VF, VI, v, vnmax)                                              \
	__builtin_convertvector(qk_clamp_##VI(QK_ROUND_MAGIC(VF, VI, v), vnmax), VF)

/*
 * QK_DEFINE_FIT(L, VF, VI, ATTR) defines, for L-lane vectors VF (float)
 * and VI (int32):
 *
 *   fit_affine_xL(n, nmax, x, w, q, scale, neg_min, rmin, rdelta, nstep,
 *                 abs_err): fit groups g = 0..L-1 given lane-major x[i]
 *     and w[i] (i < n <= 32); writes group g's levels to q + n*g, its scale
 *     to scale[g] and -min to neg_min[g], exactly as fit_affine would.
 *
 *   fit_affine_lanes_xL(f, h): fit groups h..h+L-1 of job f (struct
 *     qk_fit), moving them into lanes and computing the built-in weights
 *     when f->w is NULL, as the scalar path does per group.
 */
#define QK_DEFINE_FIT(L, VF, VI, ATTR)                                          \
ATTR static inline VI qk_clamp_##VI(VI l, VI vnmax)                             \
{                                                                               \
	l = QK_SEL(VI, l < (VI){ 0 }, (VI){ 0 }, l);                            \
	return QK_SEL(VI, l > vnmax, vnmax, l);                                 \
}                                                                               \
                                                                                \
ATTR static void fit_affine_x##L(int n, int nmax, const VF *x, const VF *w,    \
                                 uint8_t *q, float *scale_out, float *neg_min,  \
                                 float rmin, float rdelta, int nstep,           \
                                 bool abs_err)                                  \
{                                                                               \
	const VF zero = { 0 };                                                  \
	const VI vnmax = (VI){ 0 } + nmax;                                      \
	const VI abs_mask = (VI){ 0 } + 0x7fffffff;                             \
	VF trial[32];                                                           \
                                                                                \
	VF lo = x[0], hi = x[0];                                                \
	VF sw = w[0];                                                           \
	VF swx = sw * x[0];                                                     \
	for (int i = 1; i < n; ++i) {                                           \
		lo = (VF)QK_SEL(VI, x[i] < lo, x[i], lo);                       \
		hi = (VF)QK_SEL(VI, x[i] > hi, x[i], hi);                       \
		sw = sw + w[i];                                                 \
		swx = swx + w[i] * x[i];                                        \
	}                                                                       \
	lo = (VF)QK_SEL(VI, lo > zero, zero, lo);                               \
	const VI flat = hi == lo;                                               \
                                                                                \
	VF inv = QK_SPLAT(VF, (float)nmax) / (hi - lo);                         \
	VF scale = QK_SPLAT(VF, 1.f) / inv;                                     \
	VF best_inv = inv, best_lo = lo, best_err = zero;                       \
	for (int i = 0; i < n; ++i) {                                           \
		VF l = QK_LEVEL(VF, VI, inv * (x[i] - lo), vnmax);              \
		VF diff = scale * l + lo - x[i];                                \
		diff = abs_err ? (VF)((VI)diff & abs_mask) : diff * diff;       \
		best_err = best_err + w[i] * diff;                              \
	}                                                                       \
	/* A flat group must never take a step: nothing is below -inf. */      \
	best_err = (VF)QK_SEL(VI, flat, QK_SPLAT(VF, -INFINITY), best_err);     \
                                                                                \
	for (int step = 0; nstep >= 1 && step <= nstep; ++step) {               \
		const float num = rmin + rdelta * step + nmax;                  \
		inv = QK_SPLAT(VF, num) / (hi - lo);                            \
		VF s_l = zero, s_l2 = zero, s_xl = zero;                        \
		for (int i = 0; i < n; ++i) {                                   \
			VF l = QK_LEVEL(VF, VI, inv * (x[i] - lo), vnmax);      \
			VF wl = w[i] * l;                                       \
			trial[i] = l;                                           \
			s_l = s_l + wl;                                         \
			s_l2 = s_l2 + wl * l;                                   \
			s_xl = s_xl + wl * x[i];                                \
		}                                                               \
		VF det = sw * s_l2 - s_l * s_l;                                 \
		VF cand_scale = (sw * s_xl - swx * s_l) / det;                  \
		VF cand_min = (s_l2 * swx - s_l * s_xl) / det;                  \
		VI pos = cand_min > zero;                                       \
		cand_scale = (VF)QK_SEL(VI, pos, s_xl / s_l2, cand_scale);      \
		cand_min = (VF)QK_SEL(VI, pos, zero, cand_min);                 \
		VF err = zero;                                                  \
		if (abs_err) {                                                  \
			for (int i = 0; i < n; ++i) {                           \
				VF diff = cand_scale * trial[i] + cand_min - x[i]; \
				err = err + w[i] * (VF)((VI)diff & abs_mask);   \
			}                                                       \
		} else {                                                        \
			for (int i = 0; i < n; ++i) {                           \
				VF diff = cand_scale * trial[i] + cand_min - x[i]; \
				err = err + w[i] * (diff * diff);               \
			}                                                       \
		}                                                               \
		VI better = (det > zero) & (err < best_err);                    \
		best_inv = (VF)QK_SEL(VI, better, inv, best_inv);               \
		best_lo = (VF)QK_SEL(VI, better, lo, best_lo);                  \
		best_err = (VF)QK_SEL(VI, better, err, best_err);               \
		scale = (VF)QK_SEL(VI, better, cand_scale, scale);              \
		lo = (VF)QK_SEL(VI, better, cand_min, lo);                      \
	}                                                                       \
                                                                                \
	/* The best levels, lane-wise; fit_affine's early return leaves a  */  \
	/* flat group's levels 0 (and its lo unmoved). */                       \
	VI ql[32];                                                              \
	for (int i = 0; i < n; ++i)                                             \
		ql[i] = __builtin_convertvector(                                \
			QK_LEVEL(VF, VI, best_inv * (x[i] - best_lo), vnmax), VI) & ~flat; \
	for (int g = 0; g < L; ++g) {                                           \
		uint8_t *qg = q + (size_t)n * g;                                \
		neg_min[g] = -lo[g];                                            \
		scale_out[g] = flat[g] ? 0.f : scale[g];                        \
		for (int i = 0; i < n; ++i)                                     \
			qg[i] = (uint8_t)ql[i][g];                              \
	}                                                                       \
}                                                                               \
                                                                                \
ATTR static inline __attribute__((always_inline)) void                          \
fit_affine_n_x##L(const struct qk_fit *f, int h, const int n)                  \
{                                                                               \
	VF xt[32], wt[32];                                                      \
	const VI abs_mask = (VI){ 0 } + 0x7fffffff;                             \
	const float *x = f->x + n * h;                                          \
                                                                                \
	qk_lanes_x##L(x, n, xt);                                                \
	if (f->w) {                                                             \
		qk_lanes_x##L(f->w + n * h, n, wt);                             \
	} else if (f->abs_err) {                                                \
		for (int i = 0; i < n; ++i)                                     \
			wt[i] = (VF)((VI)xt[i] & abs_mask);                     \
	} else {                                                                \
		VF ss = { 0 }, rms;                                             \
		for (int i = 0; i < n; ++i)                                     \
			ss = ss + xt[i] * xt[i];                                \
		for (int g = 0; g < L; ++g)                                     \
			rms[g] = sqrtf(ss[g] / n);                              \
		for (int i = 0; i < n; ++i)                                     \
			wt[i] = rms + (VF)((VI)xt[i] & abs_mask);               \
	}                                                                       \
	fit_affine_x##L(n, f->nmax, xt, wt, f->lev + n * h, f->scale + h,       \
	                f->negmin + h, f->rmin, f->rdelta, f->nstep,            \
	                f->abs_err);                                            \
}                                                                               \
                                                                                \
/* n as a constant: the compiler knows the loops run, and unrolls them. */      \
ATTR static void fit_affine_lanes_x##L(const struct qk_fit *f, int h)            \
{                                                                               \
	if (f->n == 16)                                                         \
		fit_affine_n_x##L(f, h, 16);                                    \
	else                                                                    \
		fit_affine_n_x##L(f, h, 32);                                    \
}

/*
 * qk_lanes_xL(src, n, dst): L groups of n floats (group g at src + n*g; n
 * 16 or 32, a constant where inlined) into lanes, dst[i][g] = src[n*g + i]:
 * a transposition, done per L x L
 * block with log2(L) rounds of two-vector shuffles where the compiler has
 * GCC's __builtin_shuffle (round h pairs rows i and i+h and interleaves
 * runs of h lanes), element by element otherwise.  Only moves values.
 */
#if defined(__clang__)
#define QK_DEFINE_LANES(L, VF, VI, ATTR)                                      \
ATTR static inline __attribute__((always_inline)) void                          \
qk_lanes_x##L(const float *src, const int n, VF *dst)                                      \
{                                                                               \
	for (int i = 0; i < n; ++i)                                             \
		for (int g = 0; g < L; ++g)                                     \
			dst[i][g] = src[n * g + i];                             \
}
#else
#define QK_DEFINE_LANES(L, VF, VI, ATTR)                                      \
ATTR static inline __attribute__((always_inline)) void                          \
qk_lanes_x##L(const float *src, const int n, VF *dst)                                      \
{                                                                               \
	_Pragma("GCC unroll 8")                                                 \
	for (int c = 0; c < n; c += L) {                                        \
		VF r[L];                                                        \
		_Pragma("GCC unroll 16")                                        \
		for (int g = 0; g < L; ++g)                                     \
			memcpy(&r[g], src + n * g + c, sizeof r[g]);            \
		_Pragma("GCC unroll 4")                                         \
		for (int h = L / 2; h >= 1; h /= 2) {                           \
			VI lo, hi;                                              \
			_Pragma("GCC unroll 16")                                \
			for (int j = 0; j < L; ++j) {                           \
				lo[j] = ((j / h) & 1) * L + (j / (2 * h)) * 2 * h + j % h; \
				hi[j] = lo[j] + h;                              \
			}                                                       \
			_Pragma("GCC unroll 16")                                \
			for (int i = 0; i < L; ++i) {                           \
				if (i & h)                                      \
					continue;                               \
				VF a = r[i], b = r[i + h];                      \
				r[i] = __builtin_shuffle(a, b, lo);             \
				r[i + h] = __builtin_shuffle(a, b, hi);         \
			}                                                       \
		}                                                               \
		_Pragma("GCC unroll 16")                                        \
		for (int j = 0; j < L; ++j)                                     \
			dst[c + j] = r[j];                                      \
	}                                                                       \
}
#endif
typedef float qk_v4f __attribute__((vector_size(16)));
typedef int32_t qk_v4i __attribute__((vector_size(16)));
QK_DEFINE_LANES(4, qk_v4f, qk_v4i, )
QK_DEFINE_FIT(4, qk_v4f, qk_v4i, )

#if QK_AVX2
typedef float qk_v8f __attribute__((vector_size(32)));
typedef int32_t qk_v8i __attribute__((vector_size(32)));
QK_DEFINE_LANES(8, qk_v8f, qk_v8i, __attribute__((target("avx2"))))
QK_DEFINE_FIT(8, qk_v8f, qk_v8i, __attribute__((target("avx2"))))
#endif

#if QK_AVX512
typedef float qk_v16f __attribute__((vector_size(64)));
typedef int32_t qk_v16i __attribute__((vector_size(64)));
QK_DEFINE_LANES(16, qk_v16f, qk_v16i, QK_AVX512_ATTR)
QK_DEFINE_FIT(16, qk_v16f, qk_v16i, QK_AVX512_ATTR)
#endif
#endif /* QK_SIMD */

/*
 * Which implementation fits the groups: 0 for the scalar fit_affine, else
 * the number of lanes.
 */
static int path_lanes(enum qa_quant_k_path path)
{
	switch (path) {
	case QA_QUANT_K_SCALAR:
		return 0;
	case QA_QUANT_K_SIMD4:
#if QK_SIMD
		return 4;
#else
		return -1;
#endif
	case QA_QUANT_K_SIMD8:
#if QK_AVX2
		return __builtin_cpu_supports("avx2") ? 8 : -1;
#else
		return -1;
#endif
	case QA_QUANT_K_SIMD16:
#if QK_AVX512
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") ? 16 : -1;
#else
		return -1;
#endif
	case QA_QUANT_K_AUTO: {
		int l = path_lanes(QA_QUANT_K_SIMD16);
		if (l < 0)
			l = path_lanes(QA_QUANT_K_SIMD8);
		if (l < 0)
			l = path_lanes(QA_QUANT_K_SIMD4);
		return l < 0 ? 0 : l;
	}
	}
	return -1;
}

/*
 * Symmetric fit with levels in [-nmax, nmax-1], weighted by qw[i] or, when
 * qw is NULL, by x^2, used by q6_K (and, weighted, by q3_K, q4_0 and q5_0
 * under an importance matrix): the value of largest magnitude is first
 * mapped to -nmax, then 18 nearby inverse scales -(nmax + k/10)/max
 * (k = -9..9, k != 0) are tried and the one with the best weighted
 * least-squares fit is kept.  Writes levels offset by +nmax to q and
 * returns the fitted scale.
 * (ggml's make_qx_quants with rmse_type 1.)
 */
float qa_quant_fit_symmetric(int n, int nmax, const float *x, int8_t *q, const float *qw)
{
	float apeak;
	float peak = signed_peak(x, n, &apeak);
	if (apeak < TINY_GROUP) {
		memset(q, 0, (size_t)n);
		return 0.f;
	}

	float inv = -nmax / peak;
	float sxl = 0;
	float sl2 = 0;
	for (int i = 0; i < n; ++i) {
		int l = clamp_int(round_magic(inv * x[i]), -nmax, nmax - 1);
		q[i] = (int8_t)(l + nmax);
		float w = qw ? qw[i] : x[i] * x[i];
		sxl += w * x[i] * l;
		sl2 += w * l * l;
	}
	float scale = sl2 ? sxl / sl2 : 0.0f;
	float best = scale * sxl;

	for (int k = -9; k <= 9; ++k) {
		if (k == 0)
			continue;
		inv = -(nmax + 0.1f * k) / peak;
		sxl = 0;
		sl2 = 0;
		for (int i = 0; i < n; ++i) {
			int l = clamp_int(round_magic(inv * x[i]), -nmax, nmax - 1);
			float w = qw ? qw[i] : x[i] * x[i];
			sxl += w * x[i] * l;
			sl2 += w * l * l;
		}
		/* Compare sxl^2/sl2 against best without dividing. */
		if (sl2 > 0 && sxl * sxl > best * sl2) {
			for (int i = 0; i < n; ++i) {
				int l = round_magic(inv * x[i]);
				q[i] = (int8_t)(nmax + clamp_int(l, -nmax, nmax - 1));
			}
			scale = sxl / sl2;
			best = scale * sxl;
		}
	}
	return scale;
}

/*
 * Symmetric fit for q3_K (levels in [-nmax, nmax-1], weights x^2): after
 * the initial mapping of the largest-magnitude value to -nmax, up to five
 * coordinate-descent sweeps move single levels to the value that is
 * optimal given all the others, keeping a move only when it improves
 * sxl^2/sl2.  Writes levels offset by +nmax and returns sxl/sl2.
 * (ggml's make_q3_quants with do_rmse.)
 */
static float fit_q3(int n, int nmax, const float *x, int8_t *q)
{
	float apeak;
	float peak = signed_peak(x, n, &apeak);
	if (apeak < TINY_GROUP) {
		memset(q, 0, (size_t)n);
		return 0.f;
	}

	float inv = -nmax / peak;
	float sxl = 0;
	float sl2 = 0;
	for (int i = 0; i < n; ++i) {
		int l = clamp_int(round_magic(inv * x[i]), -nmax, nmax - 1);
		q[i] = (int8_t)l;
		float w = x[i] * x[i];
		sxl += w * x[i] * l;
		sl2 += w * l * l;
	}

	for (int sweep = 0; sweep < 5; ++sweep) {
		int moved = 0;
		for (int i = 0; i < n; ++i) {
			float w = x[i] * x[i];
			/* Sums with element i taken out. */
			float o_xl = sxl - w * x[i] * q[i];
			if (!(o_xl > 0))
				continue;
			float o_l2 = sl2 - w * q[i] * q[i];
			int l = clamp_int(round_magic(x[i] * o_l2 / o_xl), -nmax, nmax - 1);
			if (l == q[i])
				continue;
			o_xl += w * x[i] * l;
			o_l2 += w * l * l;
			if (o_l2 > 0 && o_xl * o_xl * sl2 > sxl * sxl * o_l2) {
				q[i] = (int8_t)l;
				sxl = o_xl;
				sl2 = o_l2;
				++moved;
			}
		}
		if (!moved)
			break;
	}
	for (int i = 0; i < n; ++i)
		q[i] = (int8_t)(q[i] + nmax);
	return sl2 > 0.0f ? sxl / sl2 : 0.0f;
}

/*
 * fit_symmetric and fit_q3 for several groups at once, in SIMD lanes, by
 * the same scheme as fit_affine_xL above: the groups of a super-block
 * advance in lockstep, one per lane (lane-major x[i][g]), and each lane
 * performs exactly the scalar function's IEEE operations in the same
 * order.  The products w*x[i] (w = x[i]^2) that both use in every sum are
 * the same operations whether computed once or per trial, so they are
 * computed once.  A lane that the scalar code would skip (a group below
 * TINY_GROUP, a trial or a move that is rejected) computes throwaway
 * values that are masked out.  fit_q3's early exit after a sweep without
 * moves is an optimisation only: a sweep that moves nothing leaves the
 * state as it was, so the next one would move nothing either; the lanes
 * simply keep sweeping until none moves or five sweeps are done.  Levels
 * are kept as floats (small integers, exact), so l == q compares the same.
 *
 * The weights are x^2 or, with an importance matrix, the given ones
 * (fit_symmetric's qw), which enter the sums exactly where x^2 does.
 *
 * QK_DEFINE_SYM(L, VF, VI, ATTR) defines fit_sym_lanes_xL(f, h): fits
 * groups h..h+L-1 of job f (struct qk_fit, sym) with fit_q3 when f->q3
 * and fit_symmetric otherwise, writing levels and scales as the scalar
 * fits do.
 */
#if QK_SIMD
/*
 * Round to nearest, ties to even, in every lane: round_magic without the
 * trip through the integer bits where the CPU rounds floats directly
 * (AVX's vroundps, AVX-512's vrndscaleps); round_magic's bits otherwise.
 * Both agree wherever |v| < 2^22.
 */
static inline qk_v4f qk_rne_x4(qk_v4f v)
{
	return __builtin_convertvector(QK_ROUND_MAGIC(qk_v4f, qk_v4i, v), qk_v4f);
}
#if QK_AVX2
__attribute__((target("avx2"))) static inline qk_v8f qk_rne_x8(qk_v8f v)
{
	return (qk_v8f)_mm256_round_ps((__m256)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif
#if QK_AVX512
QK_AVX512_ATTR static inline qk_v16f qk_rne_x16(qk_v16f v)
{
	return (qk_v16f)_mm512_roundscale_ps((__m512)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif

#define QK_DEFINE_SYM(L, VF, VI, VB, ATTR)                                          \
ATTR static inline VF qk_level2_x##L(VF v, VI vlo, VI vhi)                      \
{                                                                               \
	VI l = QK_ROUND_MAGIC(VF, VI, v);                                       \
	l = QK_SEL(VI, l < vlo, vlo, l);                                        \
	l = QK_SEL(VI, l > vhi, vhi, l);                                        \
	return __builtin_convertvector(l, VF);                                  \
}                                                                               \
                                                                                \
/*                                                                              \
 * qk_level2 for |v| < 2^22, where round_magic is round-to-nearest-even: the    \
 * initial mapping and fit_symmetric's trials, whose products inv * x stay      \
 * within nmax + 1 in magnitude in every group that is not flat.  A level       \
 * of -0 here instead of +0 changes nothing: each enters only products         \
 * added to sums that start at +0, or a comparison.                            \
 */                                                                             \
ATTR static inline VF qk_level_small_x##L(VF v, VF vlo, VF vhi)                 \
{                                                                               \
	VF l = qk_rne_x##L(v);                                                  \
	l = (VF)QK_SEL(VI, l < vlo, vlo, l);                                    \
	return (VF)QK_SEL(VI, l > vhi, vhi, l);                                 \
}                                                                               \
                                                                                \
/* Mask m as bytes (0 or 0xff per lane) packed into w[(L + 7) / 8]. */       \
ATTR static inline void qk_mask_words_x##L(VI m, uint64_t *w)                   \
{                                                                               \
	VB b = __builtin_convertvector(m, VB);                                  \
	memset(w, 0, 8 * ((L + 7) / 8));                                        \
	memcpy(w, &b, sizeof b);                                                \
}                                                                               \
                                                                                \
/* Whether any lane of mask m is set. */                                        \
ATTR static inline bool qk_any_x##L(VI m)                                       \
{                                                                               \
	uint64_t w[(L + 7) / 8];                                                \
	qk_mask_words_x##L(m, w);                                               \
	uint64_t any = 0;                                                       \
	for (int k = 0; k < (L + 7) / 8; ++k)                                   \
		any |= w[k];                                                    \
	return any != 0;                                                        \
}                                                                               \
                                                                                \
/*                                                                              \
 * The level of v between -nmax and nmax-1: qk_level_small where the set's     \
 * values are all finite (then |v| < 2^22 in every lane that counts), else      \
 * round_magic's bits, which a NaN or an infinity in a group turns into         \
 * levels of their own.                                                         \
 */                                                                             \
ATTR static inline VF qk_level_sym_x##L(VF v, bool finite, int nmax)            \
{                                                                               \
	if (finite)                                                             \
		return qk_level_small_x##L(v, QK_SPLAT(VF, (float)-nmax),        \
		                           QK_SPLAT(VF, (float)(nmax - 1)));     \
	return qk_level2_x##L(v, (VI){ 0 } - nmax, (VI){ 0 } + (nmax - 1));     \
}                                                                               \
                                                                                \
/* One set of L groups in flight: weights, levels and the two sums. */          \
struct qk_sym_x##L {                                                            \
	VF x[16], w[16], wx[16], ql[16];                                        \
	VF peak, inv, sxl, sl2;                                                 \
	VI flat;                                                                \
	bool finite; /* every x of the set (qk_level_sym) */                    \
};                                                                              \
                                                                                \
/* The peak, the first mapping and its sums (both scalar fits alike). */        \
ATTR static inline __attribute__((always_inline)) void                          \
qk_sym_init_x##L(struct qk_sym_x##L *s, int nmax, const VF *wq)                 \
{                                                                               \
	const VF zero = { 0 };                                                  \
	const VI abs_mask = (VI){ 0 } + 0x7fffffff;                             \
	VF peak = zero, apeak = zero;                                           \
	VI bad = { 0 };                                                         \
	for (int i = 0; i < 16; ++i) {                                          \
		VF a = (VF)((VI)s->x[i] & abs_mask);                            \
		VI m = a > apeak;                                               \
		apeak = (VF)QK_SEL(VI, m, a, apeak);                            \
		peak = (VF)QK_SEL(VI, m, s->x[i], peak);                        \
		bad |= s->x[i] - s->x[i] != zero;                               \
		s->w[i] = wq ? wq[i] : s->x[i] * s->x[i];                       \
		s->wx[i] = s->w[i] * s->x[i];                                   \
	}                                                                       \
	s->finite = !qk_any_x##L(bad);                                          \
	s->flat = apeak < QK_SPLAT(VF, TINY_GROUP);                             \
	s->peak = peak;                                                         \
	s->inv = QK_SPLAT(VF, (float)-nmax) / peak;                             \
	VF sxl = zero, sl2 = zero;                                              \
	for (int i = 0; i < 16; ++i) {                                          \
		VF l = qk_level_sym_x##L(s->inv * s->x[i], s->finite, nmax);    \
		s->ql[i] = l;                                                   \
		sxl = sxl + s->wx[i] * l;                                       \
		sl2 = sl2 + s->w[i] * l * l;                                    \
	}                                                                       \
	s->sxl = sxl;                                                           \
	s->sl2 = sl2;                                                           \
}                                                                               \
                                                                                \
/*                                                                              \
 * One of fit_q3's sweeps on U sets at once (U = 1 or 2): the sets are         \
 * independent, so interleaving their moves element by element only overlaps  \
 * two serial chains; each set sees exactly its own sequence of operations.    \
 * moved[u] marks the lanes of set u (flat ones excluded) where a level moved. \
 */                                                                             \
ATTR static inline __attribute__((always_inline)) void                          \
qk_q3_sweep_x##L(struct qk_sym_x##L *s, const int U, int nmax, VI *moved,       \
                 const bool reweigh)                                            \
{                                                                               \
	const VF zero = { 0 };                                                  \
	const VI vlo = (VI){ 0 } - nmax, vhi = (VI){ 0 } + (nmax - 1);          \
	VF sxl[4], sl2[4];                                                      \
	VI mv[4];                                                               \
	for (int u = 0; u < U; ++u)                                             \
		sxl[u] = s[u].sxl, sl2[u] = s[u].sl2, mv[u] = (VI){ 0 };        \
	for (int i = 0; i < 16; ++i) {                                          \
		_Pragma("GCC unroll 4")                                         \
		for (int u = 0; u < U; ++u) {                                   \
			const VF x = s[u].x[i], q = s[u].ql[i];                 \
			const VF w = reweigh ? x * x : s[u].w[i];               \
			const VF wx = reweigh ? w * x : s[u].wx[i];             \
			VF o_xl = sxl[u] - wx * q;                              \
			VF o_l2 = sl2[u] - w * q * q;                           \
			VF l = qk_level2_x##L(x * o_l2 / o_xl, vlo, vhi);       \
			VI m = (o_xl > zero) & (l != q);                        \
			o_xl = o_xl + wx * l;                                   \
			o_l2 = o_l2 + w * l * l;                                \
			m &= (o_l2 > zero) &                                    \
			     (o_xl * o_xl * sl2[u] > sxl[u] * sxl[u] * o_l2);   \
			s[u].ql[i] = (VF)QK_SEL(VI, m, l, q);                   \
			sxl[u] = (VF)QK_SEL(VI, m, o_xl, sxl[u]);               \
			sl2[u] = (VF)QK_SEL(VI, m, o_l2, sl2[u]);               \
			mv[u] |= m & ~s[u].flat;                                \
		}                                                               \
	}                                                                       \
	for (int u = 0; u < U; ++u)                                             \
		s[u].sxl = sxl[u], s[u].sl2 = sl2[u], moved[u] = mv[u];         \
}                                                                               \
                                                                                \
/* Levels (+nmax; none if q is NULL) and scales out; flat groups as the early return leaves them. */ \
ATTR static inline __attribute__((always_inline)) void                          \
qk_sym_out_x##L(const struct qk_sym_x##L *s, VF scale, int nmax, int8_t *q,     \
                float *scale_out)                                               \
{                                                                               \
	for (int g = 0; g < L; ++g) {                                           \
		if (s->flat[g]) {                                               \
			if (q)                                                  \
				memset(q + 16 * g, 0, 16);                      \
			scale_out[g] = 0.f;                                     \
			continue;                                               \
		}                                                               \
		scale_out[g] = scale[g];                                        \
		for (int i = 0; q && i < 16; ++i)                               \
			q[16 * g + i] = (int8_t)((int)s->ql[i][g] + nmax);      \
	}                                                                       \
}                                                                               \
                                                                                \
/* fit_symmetric's 18 further trials; the best levels end up in s->ql if levels. */ \
ATTR static inline __attribute__((always_inline)) VF                            \
qk_sym_trials_x##L(struct qk_sym_x##L *s, int nmax, bool levels)                \
{                                                                               \
	const VF zero = { 0 };                                                  \
	const bool finite = s->finite;                                          \
	VF sxl = s->sxl, sl2 = s->sl2;                                          \
	VF scale = (VF)QK_SEL(VI, sl2 != zero, sxl / sl2, zero);                \
	VF best = scale * sxl;                                                  \
	VF best_inv = s->inv;                                                   \
	for (int k = -9; k <= 9; ++k) {                                         \
		if (k == 0)                                                     \
			continue;                                               \
		const float num = -(nmax + 0.1f * k);                           \
		VF inv = QK_SPLAT(VF, num) / s->peak;                           \
		sxl = zero;                                                     \
		sl2 = zero;                                                     \
		for (int i = 0; i < 16; ++i) {                                  \
			VF l = qk_level_sym_x##L(inv * s->x[i], finite, nmax);  \
			sxl = sxl + s->wx[i] * l;                               \
			sl2 = sl2 + s->w[i] * l * l;                            \
		}                                                               \
		VI better = (sl2 > zero) & (sxl * sxl > best * sl2);            \
		VF cand = sxl / sl2;                                            \
		best_inv = (VF)QK_SEL(VI, better, inv, best_inv);               \
		scale = (VF)QK_SEL(VI, better, cand, scale);                    \
		best = (VF)QK_SEL(VI, better, cand * sxl, best);                \
	}                                                                       \
	if (levels)                                                             \
		for (int i = 0; i < 16; ++i)                                    \
			s->ql[i] = qk_level_sym_x##L(best_inv * s->x[i], finite, nmax); \
	return scale;                                                           \
}                                                                               \
                                                                                \
/*                                                                              \
 * Lane g of set k to position out (set out / L, lane out % L; out <= k*L+g):   \
 * x, the levels and the sums; later sweeps compute the weights x^2 and the    \
 * products w*x again from x, which gives the same values.                      \
 */                                                                             \
ATTR static inline void qk_q3_lane_move_x##L(struct qk_sym_x##L *s, int k, int g, int out) \
{                                                                               \
	struct qk_sym_x##L *d = &s[out / L];                                    \
	const int h = out % L;                                                  \
	if (d == &s[k] && h == g)                                               \
		return;                                                         \
	for (int i = 0; i < 16; ++i) {                                          \
		d->x[i][h] = s[k].x[i][g];                                      \
		d->ql[i][h] = s[k].ql[i][g];                                    \
	}                                                                       \
	d->sxl[h] = s[k].sxl[g];                                                \
	d->sl2[h] = s[k].sl2[g];                                                \
	d->flat[h] = 0;                                                         \
}                                                                               \
                                                                                \
/* Move set u's groups (h + u*L ...) of job f into lanes. */                    \
ATTR static inline __attribute__((always_inline)) const VF *                    \
qk_sym_load_x##L(struct qk_sym_x##L *s, VF *wt, const struct qk_fit *f, int h)   \
{                                                                               \
	qk_lanes_x##L(f->x + 16 * h, 16, s->x);                                 \
	if (!f->w)                                                              \
		return NULL;                                                    \
	qk_lanes_x##L(f->w + 16 * h, 16, wt);                                   \
	return wt;                                                              \
}                                                                               \
                                                                                \
ATTR static void fit_sym_lanes_x##L(const struct qk_fit *f, int h)               \
{                                                                               \
	struct qk_sym_x##L s;                                                   \
	VF wt[16];                                                              \
	qk_sym_init_x##L(&s, f->nmax, qk_sym_load_x##L(&s, wt, f, h));          \
	VF scale = qk_sym_trials_x##L(&s, f->nmax, !f->no_levels);              \
	qk_sym_out_x##L(&s, scale, f->nmax,                                     \
	                f->no_levels ? NULL : (int8_t *)f->lev + 16 * h, f->scale + h); \
}                                                                               \
                                                                                \
/*                                                                              \
 * fit_q3 on groups 0..ngroups-1 of job f (ngroups a multiple of L, at most    \
 * 16 * CHUNK).  Most groups settle after one sweep (on typical weights 80 %   \
 * move nothing in their first, and fewer than 2 % need a third), so sweeping  \
 * L groups in lockstep until the slowest settles would mostly redo settled    \
 * work.  Instead every group gets its first sweep; after each sweep the       \
 * groups that are done (no move, or their fifth sweep) are written out and    \
 * those that go on are packed together into the fewest sets, lane by lane,    \
 * for the next.  A group's own sequence of operations is the scalar one       \
 * whichever lane it sits in; spare lanes of the last set are marked flat and  \
 * never written.  Sets go through the sweep two at a time where there are     \
 * two (see qk_q3_sweep).                                                      \
 */                                                                             \
ATTR static void fit_q3_all_x##L(const struct qk_fit *f, int ngroups)           \
{                                                                               \
	struct qk_sym_x##L s[16 * CHUNK / L];                                   \
	VI moved[16 * CHUNK / L];                                               \
	int id[16 * CHUNK / L][L];                                              \
	const VF zero = { 0 };                                                  \
	const int nmax = f->nmax;                                               \
	int nsets = ngroups / L;                                                \
	for (int k = 0; k < nsets; ++k) {                                       \
		qk_lanes_x##L(f->x + 16 * L * k, 16, s[k].x);                 \
		qk_sym_init_x##L(&s[k], nmax, NULL);                            \
		for (int g = 0; g < L; ++g)                                     \
			id[k][g] = L * k + g;                                   \
	}                                                                       \
	for (int sweep = 0; nsets > 0; ++sweep) {                               \
		int k = 0;                                                      \
		if (sweep == 0) {                                               \
			for (; k + 4 <= nsets; k += 4)                          \
				qk_q3_sweep_x##L(s + k, 4, nmax, moved + k, false); \
		} else {                                                        \
			for (; k + 4 <= nsets; k += 4)                          \
				qk_q3_sweep_x##L(s + k, 4, nmax, moved + k, true); \
		}                                                               \
		for (; k + 2 <= nsets; k += 2)                                  \
			qk_q3_sweep_x##L(s + k, 2, nmax, moved + k, sweep > 0); \
		if (k < nsets)                                                  \
			qk_q3_sweep_x##L(s + k, 1, nmax, moved + k, sweep > 0); \
		int out = 0;                                                    \
		for (k = 0; k < nsets; ++k) {                                   \
			VF scale = (VF)QK_SEL(VI, s[k].sl2 > zero, s[k].sxl / s[k].sl2, zero); \
			if (sweep == 0 && f->no_levels) {                       \
				/* Groups L*k.. in order: all scales at once (a    \
				 * group that goes on overwrites its own later),  \
				 * then the movers, found through a byte mask. */ \
				scale = (VF)((VI)scale & ~s[k].flat);           \
				memcpy(f->scale + L * k, &scale, sizeof scale); \
				uint64_t mw[(L + 7) / 8];                       \
				qk_mask_words_x##L(moved[k], mw);               \
				for (int w = 0; w < (L + 7) / 8; ++w) {         \
					for (uint64_t b = mw[w]; b;) {          \
						const int byte = __builtin_ctzll(b) / 8; \
						const int g = 8 * w + byte;         \
						b &= ~(0xffull << (8 * byte));      \
						qk_q3_lane_move_x##L(s, k, g, out); \
						id[out / L][out % L] = L * k + g;   \
						++out;                              \
					}                                       \
				}                                               \
				continue;                                       \
			}                                                       \
			for (int g = 0; g < L; ++g) {                           \
				const int j = id[k][g];                         \
				if (j < 0)                                      \
					continue;                               \
				if (moved[k][g] && sweep < 4) {                 \
					qk_q3_lane_move_x##L(s, k, g, out);     \
					id[out / L][out % L] = j;               \
					++out;                                  \
					continue;                               \
				}                                               \
				int8_t *q = (int8_t *)f->lev + 16 * j;          \
				if (s[k].flat[g]) {                             \
					if (!f->no_levels)                      \
						memset(q, 0, 16);               \
					f->scale[j] = 0.f;                      \
					continue;                               \
				}                                               \
				f->scale[j] = scale[g];                         \
				for (int i = 0; !f->no_levels && i < 16; ++i)   \
					q[i] = (int8_t)((int)s[k].ql[i][g] + nmax); \
			}                                                       \
		}                                                               \
		nsets = (out + L - 1) / L;                                      \
		for (; out < nsets * L; ++out) {                                \
			id[out / L][out % L] = -1;                              \
			s[out / L].flat[out % L] = -1;                          \
		}                                                               \
	}                                                                       \
}

typedef uint8_t qk_v4u8 __attribute__((vector_size(4)));
QK_DEFINE_SYM(4, qk_v4f, qk_v4i, qk_v4u8, )
#if QK_AVX2
typedef uint8_t qk_v8u8 __attribute__((vector_size(8)));
QK_DEFINE_SYM(8, qk_v8f, qk_v8i, qk_v8u8, __attribute__((target("avx2"))))
#endif
#if QK_AVX512
typedef uint8_t qk_v16u8 __attribute__((vector_size(16)));
QK_DEFINE_SYM(16, qk_v16f, qk_v16i, qk_v16u8, QK_AVX512_ATTR)
#endif
#endif /* QK_SIMD */

/* The scalar reference fits for group h of job f. */
static void fit_affine_one(const struct qk_fit *f, int h)
{
	float w[32];
	const int n = f->n;
	const float *xg = f->x + n * h;
	const float *wg = w;
	if (f->w) {
		wg = f->w + n * h;
	} else if (f->abs_err) {
		for (int i = 0; i < n; ++i)
			w[i] = fabsf(xg[i]);
	} else {
		float ss = 0;
		for (int i = 0; i < n; ++i)
			ss += xg[i] * xg[i];
		float rms = sqrtf(ss / n);
		for (int i = 0; i < n; ++i)
			w[i] = rms + fabsf(xg[i]);
	}
	f->scale[h] = qa_quant_fit_affine(n, f->nmax, xg, wg, f->lev + n * h, &f->negmin[h],
	                                  f->rmin, f->rdelta, f->nstep, f->abs_err);
}

/* The levels alone of group h of symmetric job f, as fit_sym_one writes them. */
static void sym_levels_one(const struct qk_fit *f, int h)
{
	int8_t *lev = (int8_t *)f->lev + 16 * h;
	const float *xg = f->x + 16 * h;
	if (f->q3)
		(void)fit_q3(16, f->nmax, xg, lev);
	else
		(void)qa_quant_fit_symmetric(16, f->nmax, xg, lev, f->w ? f->w + 16 * h : NULL);
}

static void fit_sym_one(const struct qk_fit *f, int h)
{
	int8_t *lev = (int8_t *)f->lev + 16 * h;
	const float *xg = f->x + 16 * h;
	f->scale[h] = f->q3 ? fit_q3(16, f->nmax, xg, lev)
	                    : qa_quant_fit_symmetric(16, f->nmax, xg, lev, f->w ? f->w + 16 * h : NULL);
}

/*
 * Run job f on ngroups groups: as many as possible with the widest kernel
 * that lanes allows, the rest with narrower ones and finally the scalar
 * fits (every kernel gives the same results, so the split is free).
 * fit_q3 takes all groups of the job at once (fit_q3_all).
 */
static void fit_groups(const struct qk_fit *f, int lanes, int ngroups)
{
	typedef void (*lanes_fn)(const struct qk_fit *, int);
	static const struct {
		int l;
		lanes_fn affine, sym, q3;
	} kernels[] = {
#if QK_AVX512
		{ 16, fit_affine_lanes_x16, fit_sym_lanes_x16, fit_q3_all_x16 },
#endif
#if QK_AVX2
		{ 8, fit_affine_lanes_x8, fit_sym_lanes_x8, fit_q3_all_x8 },
#endif
#if QK_SIMD
		{ 4, fit_affine_lanes_x4, fit_sym_lanes_x4, fit_q3_all_x4 },
#endif
		{ 1, fit_affine_one, fit_sym_one, NULL },
	};
	int h = 0;
	for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; ++k) {
		const int l = kernels[k].l;
		if (l > (lanes ? lanes : 1))
			continue;
		if (f->q3 && kernels[k].q3) {
			/* fit_q3_all works from group 0: only the first kernel runs it. */
			if (h == 0 && ngroups >= l) {
				kernels[k].q3(f, ngroups - ngroups % l);
				h = ngroups - ngroups % l;
			}
			continue;
		}
		lanes_fn fn = f->sym ? kernels[k].sym : kernels[k].affine;
		for (; h + l <= ngroups; h += l)
			fn(f, h);
	}
}

/*
 * The last step of every encoder: requantize n values (a multiple of 4)
 * against the scale d they decode with, lev[i] = clamp(round_magic((x[i]
 * + m) / d), lo, hi) - lo, in bytes; the "+ m" only when affine (the
 * symmetric types divide x itself).  Four lanes at a time where vectors
 * exist: the same IEEE add and divide per value.
 */
static void requantize(const float *x, int n, bool affine, float m, float d, int lo, int hi,
                       uint8_t *lev)
{
	int i = 0;
#if QK_SIMD
	const qk_v4i vlo = (qk_v4i){ 0 } + lo, vhi = (qk_v4i){ 0 } + hi;
	for (; i + 4 <= n; i += 4) {
		qk_v4f v;
		memcpy(&v, x + i, sizeof v);
		if (affine)
			v = v + QK_SPLAT(qk_v4f, m);
		v = v / QK_SPLAT(qk_v4f, d);
		qk_v4i l = QK_ROUND_MAGIC(qk_v4f, qk_v4i, v);
		l = QK_SEL(qk_v4i, l < vlo, vlo, l);
		l = QK_SEL(qk_v4i, l > vhi, vhi, l) - vlo;
		for (int k = 0; k < 4; ++k)
			lev[i + k] = (uint8_t)l[k];
	}
#endif
	for (; i < n; ++i) {
		int l = round_magic(affine ? (x[i] + m) / d : x[i] / d);
		lev[i] = (uint8_t)(clamp_int(l, lo, hi) - lo);
	}
}

/*
 * The 12-byte scale area of q4_K and q5_K holds eight 6-bit scales and
 * eight 6-bit minimums.  Sub-blocks 0-3 keep scale and min whole in the
 * low 6 bits of bytes 0-3 and 4-7; sub-blocks 4-7 keep their low nibbles
 * in bytes 8-11 (scale low, min high) and their top two bits in the spare
 * top bits of bytes 0-3 (scale) and 4-7 (min).
 */
static void pack_scale_min(uint8_t s[12], const uint8_t sc[8], const uint8_t mn[8])
{
	for (int j = 0; j < 4; ++j) {
		s[j] = sc[j];
		s[j + 4] = mn[j];
	}
	for (int j = 4; j < 8; ++j) {
		s[j + 4] = (uint8_t)((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
		s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
		s[j] |= (uint8_t)((mn[j] >> 4) << 6);
	}
}

static void unpack_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *mn)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*mn = s[j + 4] & 63;
	} else {
		*sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
		*mn = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
	}
}

/* q3_K: 16 six-bit scales, low nibbles in bytes 0-7, top bits in 8-11. */
static int q3_scale_get(const uint8_t *s, int j)
{
	int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
	int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
	return low | (high << 4);
}

/* Pack 256 two-bit levels: byte 32*h + l holds values 128*h + l + 32*k at bits 2k. */
static void pack_2bit(uint8_t *qs, const uint8_t *lev)
{
	for (int h = 0; h < 2; ++h) {
		const uint8_t *v = lev + 128 * h;
		for (int l = 0; l < 32; ++l)
			qs[32 * h + l] = (uint8_t)(v[l] | (v[l + 32] << 2) |
			                           (v[l + 64] << 4) | (v[l + 96] << 6));
	}
}

/* ------------------------------------------------------------------ */
/* q2_K                                                                */
/* ------------------------------------------------------------------ */

void qa_dequantize_q2_K(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / SUPER; ++b) {
		const uint8_t *blk = in + b * Q2K_BYTES;
		const uint8_t *sc = blk;
		const uint8_t *qs = blk + 16;
		const float d = qa_fp16_to_fp32(qa_load_le16(blk + 80));
		const float dmin = qa_fp16_to_fp32(qa_load_le16(blk + 82));
		float *y = dst + b * SUPER;

		for (int e = 0; e < SUPER; ++e) {
			int g = e / 16;
			int byte = 32 * (e / 128) + e % 32;
			int shift = 2 * ((e % 128) / 32);
			float dl = d * (sc[g] & 0xF);
			float ml = dmin * (sc[g] >> 4);
			int8_t q = (int8_t)((qs[byte] >> shift) & 3);
			y[e] = dl * q - ml;
		}
	}
}

/* ------------------------------------------------------------------ */
/* q3_K                                                                */
/* ------------------------------------------------------------------ */

/*
 * The back half of both q3_K encoders: requantize every value against its
 * decoded group scale (levels of groups whose scale decodes to 0 stay as
 * fitted), split off the high bits and write the block.  v holds the
 * 6-bit scale levels that sc packs (q3k_scales gives both).
 */
static void q3k_finish(const float *x, int8_t lev[SUPER], const int8_t v[16], const uint8_t sc[12],
                       uint16_t d_h, uint8_t *out, const struct qk_fit *refit, int h0)
{
	uint8_t hmask[32];
	/* Requantize against the decoded scales. */
	for (int g = 0; g < 16; ++g) {
		int8_t s = (int8_t)(v[g] - 32);
		float d = qa_fp16_to_fp32(d_h) * s;
		if (!d) {
			if (refit)
				sym_levels_one(refit, h0 + g);
			continue;
		}
		requantize(x + 16 * g, 16, false, 0.f, d, -4, 3, (uint8_t *)lev + 16 * g);
	}

	/*
	 * Bit 2 of level e goes to hmask[e % 32], bit e / 32; two bits stay.
	 * (Every level is in 0..7 here, so v > 3 is bit 2 and v - 4 is v & 3.)
	 */
	uint8_t low[SUPER];
	memset(hmask, 0, sizeof hmask);
	for (int k = 0; k < 8; ++k) {
		for (int j = 0; j < 32; ++j) {
			unsigned v = (uint8_t)lev[32 * k + j];
			hmask[j] = (uint8_t)(hmask[j] | ((v >> 2 & 1u) << k));
			low[32 * k + j] = (uint8_t)(v & 3u);
		}
	}

	memcpy(out, hmask, 32);
	pack_2bit(out + 32, low);
	memcpy(out + 96, sc, 12);
	qa_store_le16(out + 108, d_h);
}

void qa_dequantize_q3_K(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / SUPER; ++b) {
		const uint8_t *blk = in + b * Q3K_BYTES;
		const uint8_t *hmask = blk;
		const uint8_t *qs = blk + 32;
		const uint8_t *sc = blk + 96;
		const float d_all = qa_fp16_to_fp32(qa_load_le16(blk + 108));
		float *y = dst + b * SUPER;

		for (int e = 0; e < SUPER; ++e) {
			float dl = d_all * (q3_scale_get(sc, e / 16) - 32);
			int byte = 32 * (e / 128) + e % 32;
			int shift = 2 * ((e % 128) / 32);
			int low = (int8_t)((qs[byte] >> shift) & 3);
			int hi_clear = (hmask[e % 32] & (1u << (e / 32))) ? 0 : 4;
			y[e] = dl * (low - hi_clear);
		}
	}
}

/* ------------------------------------------------------------------ */
/* q4_K and q5_K: 8 groups of 32, affine, 6-bit scales and mins        */
/* ------------------------------------------------------------------ */

/*
 * Requantize the 256 values at x against the group scales and minimums as
 * they decode from packed, d_h and dmin_h (q4_K and q5_K, both paths);
 * groups whose scale decodes to 0 keep their fitted levels.
 */
static void affine32_requantize(const float *x, int nmax, const uint8_t packed[12],
                                uint16_t d_h, uint16_t dmin_h, uint8_t lev[SUPER])
{
	for (int g = 0; g < 8; ++g) {
		uint8_t s, m;
		unpack_scale_min(packed, g, &s, &m);
		const float d = qa_fp16_to_fp32(d_h) * s;
		if (!d)
			continue;
		const float dm = qa_fp16_to_fp32(dmin_h) * m;
		requantize(x + 32 * g, 32, true, dm, d, 0, nmax, lev + 32 * g);
	}
}

/* Write a q4_K block from its levels, scale bytes and factors. */
static void q4k_write(const uint8_t lev[SUPER], const uint8_t packed[12], uint16_t d_h,
                      uint16_t dmin_h, uint8_t *out)
{
	qa_store_le16(out + 0, d_h);
	qa_store_le16(out + 2, dmin_h);
	memcpy(out + 4, packed, 12);
	/* Each 32 bytes hold two groups: the even one low, the odd one high. */
	uint8_t *qs = out + 16;
	for (int p = 0; p < 4; ++p)
		for (int l = 0; l < 32; ++l)
			qs[32 * p + l] = (uint8_t)(lev[64 * p + l] | (lev[64 * p + 32 + l] << 4));
}

/*
 * Decode q4_K (five_bit false) or q5_K (true, whose bit 4 of group g's
 * value l sits in qh[l] bit g): value = d*scale*level - dmin*min.
 */
static void affine32_decode(const void *src, float *dst, size_t n, bool five_bit)
{
	const size_t bytes = five_bit ? Q5K_BYTES : Q4K_BYTES;
	const uint8_t *in = src;
	for (size_t b = 0; b < n / SUPER; ++b) {
		const uint8_t *blk = in + b * bytes;
		const float d = qa_fp16_to_fp32(qa_load_le16(blk + 0));
		const float dmin = qa_fp16_to_fp32(qa_load_le16(blk + 2));
		const uint8_t *packed = blk + 4;
		const uint8_t *qh = blk + 16;
		const uint8_t *ql = blk + (five_bit ? 48 : 16);
		float *y = dst + b * SUPER;

		for (int g = 0; g < 8; ++g) {
			uint8_t s, m;
			unpack_scale_min(packed, g, &s, &m);
			const float dg = d * s;
			const float mg = dmin * m;
			const uint8_t *q = ql + 32 * (g / 2);
			int shift = 4 * (g % 2);
			unsigned hbit = 1u << g;
			for (int l = 0; l < 32; ++l) {
				int v = ((q[l] >> shift) & 0xF) + (five_bit && (qh[l] & hbit) ? 16 : 0);
				y[32 * g + l] = dg * v - mg;
			}
		}
	}
}

void qa_dequantize_q4_K(const void *src, float *dst, size_t n)
{
	affine32_decode(src, dst, n, false);
}

/* Write a q5_K block from its levels, scale bytes and factors. */
static void q5k_write(const uint8_t lev[SUPER], const uint8_t packed[12], uint16_t d_h,
                      uint16_t dmin_h, uint8_t *out)
{
	qa_store_le16(out + 0, d_h);
	qa_store_le16(out + 2, dmin_h);
	memcpy(out + 4, packed, 12);

	/* Low nibbles pair up like q4_K; bit 4 of group g goes to qh bit g. */
	uint8_t *qh = out + 16;
	uint8_t *ql = out + 48;
	/* (Levels are in 0..31: bit 4 is "above 15", the low nibble the rest.) */
	memset(qh, 0, 32);
	for (int p = 0; p < 4; ++p) {
		for (int l = 0; l < 32; ++l) {
			unsigned a = lev[64 * p + l];
			unsigned c = lev[64 * p + 32 + l];
			qh[l] |= (uint8_t)((a >> 4 & 1u) << (2 * p) | (c >> 4 & 1u) << (2 * p + 1));
			ql[32 * p + l] = (uint8_t)((a & 0xF) | (c & 0xF) << 4);
		}
	}
}

void qa_dequantize_q5_K(const void *src, float *dst, size_t n)
{
	affine32_decode(src, dst, n, true);
}

/* ------------------------------------------------------------------ */
/* q6_K: 16 groups of 16, symmetric 6-bit, int8 group scales           */
/* ------------------------------------------------------------------ */

/*
 * q6_K's fitted group scales to int8 against d (the largest magnitude maps
 * to -128, capped at 127); false for an all-zero super-block.
 */
static bool q6k_scales(const float scale[16], int8_t sc[16], uint16_t *d_h)
{
	float max_abs;
	float max_scale = signed_peak16(scale, &max_abs);
	if (max_abs < TINY_GROUP)
		return false;
	float inv = -128.f / max_scale;
	*d_h = qa_fp32_to_fp16(1 / inv);
	for (int g = 0; g < 16; ++g) {
		int l = round_magic(inv * scale[g]);
		sc[g] = (int8_t)(l < 127 ? l : 127);
	}
	return true;
}

/*
 * The back half of both q6_K encoders: from the fitted group scales and
 * levels, quantize the scales to int8 against d, requantize and write.
 */
static void q6k_finish(const float *x, int8_t lev[SUPER], const float scale[16], uint8_t *out,
                       const struct qk_fit *refit, int h0)
{
	int8_t sc[16];
	uint16_t d_h;
	if (!q6k_scales(scale, sc, &d_h)) {
		/* An all-zero super-block encodes as all-zero bytes. */
		memset(out, 0, Q6K_BYTES);
		qa_store_le16(out + 208, qa_fp32_to_fp16(0.f));
		return;
	}

	for (int g = 0; g < 16; ++g) {
		float d = qa_fp16_to_fp32(d_h) * sc[g];
		if (!d) {
			if (refit)
				sym_levels_one(refit, h0 + g);
			continue;
		}
		requantize(x + 16 * g, 16, false, 0.f, d, -32, 31, (uint8_t *)lev + 16 * g);
	}

	/*
	 * Per half of 128 values: ql[64h + l] takes the low nibbles of values
	 * l (low) and l+64 (high), ql[64h + 32 + l] those of l+32 and l+96;
	 * qh[32h + l] takes the top two bits of l, l+32, l+64, l+96.
	 */
	uint8_t *ql = out;
	uint8_t *qh = out + 128;
	for (int h = 0; h < 2; ++h) {
		const int8_t *v = lev + 128 * h;
		for (int l = 0; l < 32; ++l) {
			int a = v[l], b = v[l + 32], c = v[l + 64], e = v[l + 96];
			ql[64 * h + l] = (uint8_t)((a & 0xF) | ((c & 0xF) << 4));
			ql[64 * h + 32 + l] = (uint8_t)((b & 0xF) | ((e & 0xF) << 4));
			qh[32 * h + l] = (uint8_t)((a >> 4) | ((b >> 4) << 2) |
			                           ((c >> 4) << 4) | ((e >> 4) << 6));
		}
	}
	memcpy(out + 192, sc, 16);
	qa_store_le16(out + 208, d_h);
}

/*
 * q3k_finish and q6k_finish in vectors: a group of 16 values is requantized
 * L at a time (the same IEEE divide and round_magic per value as
 * requantize), and the bit planes are split and packed 32 levels at a time
 * with byte vectors, the same shifts and masks as the scalar loops.  The
 * decoded super-block factor is converted from fp16 once instead of once
 * per group (the same value each time).
 *
 * QK_DEFINE_FINISH(L, VF, VI, VB, ATTR) defines q3k_finish_xL and
 * q6k_finish_xL with the scalar functions' contracts; VB is a vector of L
 * bytes.
 */
#if QK_SIMD
typedef uint8_t qk_v32u8 __attribute__((vector_size(32)));

#define QK_DEFINE_FINISH(L, VF, VI, VB, ATTR)                                   \
/* lev[i] = clamp(round_magic(x[i] / d), lo, hi) - lo for i < 16. */           \
ATTR static inline __attribute__((always_inline)) void                          \
qk_requant16_x##L(const float *x, float d, int lo, int hi, uint8_t *lev)         \
{                                                                               \
	const VI vlo = (VI){ 0 } + lo, vhi = (VI){ 0 } + hi;                    \
	for (int i = 0; i < 16; i += L) {                                       \
		VF v;                                                           \
		memcpy(&v, x + i, sizeof v);                                    \
		v = v / QK_SPLAT(VF, d);                                        \
		VI l = QK_ROUND_MAGIC(VF, VI, v);                               \
		l = QK_SEL(VI, l < vlo, vlo, l);                                \
		l = QK_SEL(VI, l > vhi, vhi, l) - vlo;                          \
		VB b = __builtin_convertvector(l, VB);                          \
		memcpy(lev + i, &b, sizeof b);                                  \
	}                                                                       \
}                                                                               \
                                                                                \
ATTR static void q3k_finish_x##L(const float *x, int8_t lev[SUPER],             \
                                 const int8_t v[16], const uint8_t sc[12],      \
                                 uint16_t d_h, uint8_t *out,                    \
                                 const struct qk_fit *refit, int h0)            \
{                                                                               \
	const float dd = qa_fp16_to_fp32(d_h);                                  \
	for (int g = 0; g < 16; ++g) {                                          \
		int8_t s = (int8_t)(v[g] - 32);                                 \
		float d = dd * s;                                               \
		if (d)                                                          \
			qk_requant16_x##L(x + 16 * g, d, -4, 3, (uint8_t *)lev + 16 * g); \
		else if (refit)                                                 \
			sym_levels_one(refit, h0 + g);                          \
	}                                                                       \
	qk_v32u8 hm = { 0 }, low[8];                                            \
	for (int k = 0; k < 8; ++k) {                                           \
		qk_v32u8 v;                                                     \
		memcpy(&v, lev + 32 * k, sizeof v);                             \
		hm |= ((v >> 2) & 1) << k;                                      \
		low[k] = v & 3;                                                 \
	}                                                                       \
	memcpy(out, &hm, 32);                                                   \
	for (int h = 0; h < 2; ++h) {                                           \
		qk_v32u8 p = low[4 * h] | (low[4 * h + 1] << 2) |               \
		             (low[4 * h + 2] << 4) | (low[4 * h + 3] << 6);     \
		memcpy(out + 32 + 32 * h, &p, 32);                              \
	}                                                                       \
	memcpy(out + 96, sc, 12);                                               \
	qa_store_le16(out + 108, d_h);                                          \
}                                                                               \
                                                                                \
ATTR static void q6k_finish_x##L(const float *x, int8_t lev[SUPER],             \
                                 const float scale[16], uint8_t *out,           \
                                 const struct qk_fit *refit, int h0)            \
{                                                                               \
	int8_t sc[16];                                                          \
	uint16_t d_h;                                                           \
	if (!q6k_scales(scale, sc, &d_h)) {                                     \
		memset(out, 0, Q6K_BYTES);                                      \
		qa_store_le16(out + 208, qa_fp32_to_fp16(0.f));                 \
		return;                                                         \
	}                                                                       \
	const float dd = qa_fp16_to_fp32(d_h);                                  \
	for (int g = 0; g < 16; ++g) {                                          \
		float d = dd * sc[g];                                           \
		if (d)                                                          \
			qk_requant16_x##L(x + 16 * g, d, -32, 31, (uint8_t *)lev + 16 * g); \
		else if (refit)                                                 \
			sym_levels_one(refit, h0 + g);                          \
	}                                                                       \
	for (int h = 0; h < 2; ++h) {                                           \
		qk_v32u8 a, b, c, e;                                            \
		memcpy(&a, lev + 128 * h, 32);                                  \
		memcpy(&b, lev + 128 * h + 32, 32);                             \
		memcpy(&c, lev + 128 * h + 64, 32);                             \
		memcpy(&e, lev + 128 * h + 96, 32);                             \
		qk_v32u8 l0 = (a & 0xF) | ((c & 0xF) << 4);                     \
		qk_v32u8 l1 = (b & 0xF) | ((e & 0xF) << 4);                     \
		qk_v32u8 hi = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) |    \
		              ((e >> 4) << 6);                                  \
		memcpy(out + 64 * h, &l0, 32);                                  \
		memcpy(out + 64 * h + 32, &l1, 32);                             \
		memcpy(out + 128 + 32 * h, &hi, 32);                            \
	}                                                                       \
	memcpy(out + 192, sc, 16);                                              \
	qa_store_le16(out + 208, d_h);                                          \
}

QK_DEFINE_FINISH(4, qk_v4f, qk_v4i, qk_v4u8, )
#if QK_AVX2
QK_DEFINE_FINISH(8, qk_v8f, qk_v8i, qk_v8u8, __attribute__((target("avx2"))))
#endif
#if QK_AVX512
QK_DEFINE_FINISH(16, qk_v16f, qk_v16i, qk_v16u8, QK_AVX512_ATTR)
#endif
#endif /* QK_SIMD */

typedef void (*q3k_finish_fn)(const float *x, int8_t lev[SUPER], const int8_t v[16],
                              const uint8_t sc[12], uint16_t d_h, uint8_t *out,
                              const struct qk_fit *refit, int h0);
typedef void (*q6k_finish_fn)(const float *x, int8_t lev[SUPER], const float scale[16],
                              uint8_t *out, const struct qk_fit *refit, int h0);

/* The finishers for the kernels lanes allows (0: the scalar ones). */
static void finishers(int lanes, q3k_finish_fn *q3, q6k_finish_fn *q6)
{
	*q3 = q3k_finish;
	*q6 = q6k_finish;
#if QK_AVX512
	if (lanes == 16) {
		*q3 = q3k_finish_x16, *q6 = q6k_finish_x16;
		return;
	}
#endif
#if QK_AVX2
	if (lanes == 8) {
		*q3 = q3k_finish_x8, *q6 = q6k_finish_x8;
		return;
	}
#endif
#if QK_SIMD
	if (lanes == 4)
		*q3 = q3k_finish_x4, *q6 = q6k_finish_x4;
#else
	(void)lanes;
#endif
}

void qa_dequantize_q6_K(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / SUPER; ++b) {
		const uint8_t *blk = in + b * Q6K_BYTES;
		const uint8_t *ql = blk;
		const uint8_t *qh = blk + 128;
		const uint8_t *scb = blk + 192;
		const float d = qa_fp16_to_fp32(qa_load_le16(blk + 208));
		float *y = dst + b * SUPER;

		for (int e = 0; e < SUPER; ++e) {
			int h = e / 128;
			int r = e % 128;
			int quarter = r / 32; /* which of l, l+32, l+64, l+96 */
			int l = r % 32;
			int lo_byte = 64 * h + l + 32 * (quarter & 1);
			int lo = (ql[lo_byte] >> (4 * (quarter >> 1))) & 0xF;
			int hi = (qh[32 * h + l] >> (2 * quarter)) & 3;
			int8_t q = (int8_t)((lo | (hi << 4)) - 32);
			int8_t s = (int8_t)scb[e / 16];
			y[e] = d * s * q;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Importance-weighted encoders (llama-quantize --imatrix)             */
/* ------------------------------------------------------------------ */

/*
 * With an importance matrix, ggml's quantize_q2_K .. quantize_q6_K take a
 * different algorithm (quantize_row_*_impl), one row at a time: every value
 * gets the weight qw[column] * sqrt(sigma2 + x^2), where sigma2 is the
 * super-block's mean square (twice it for q3_K, q4_K and q5_K), except q6_K,
 * which weights its fit by qw alone.  The group fits use those weights, and
 * the group scales and minimums are then fitted to the super-block factor
 * by a weighted search (qa_quant_fit_positive for q2_K/q4_K/q5_K,
 * qa_quant_fit_symmetric for q3_K) instead of the reference's plain
 * max-based mapping.  Without weights ggml calls the reference path, and so
 * does qa_quantize_rows_*: the NULL case is qa_quantize_*.  The group
 * fits run on the same SIMD kernels as the reference path's (the weights
 * are computed here, in scalar code, and handed to them); the super-block
 * fits of the scales below stay scalar.
 */

float qa_quant_fit_positive(int n, int nmax, const float *x, uint8_t *q, const float *qw)
{
	float max = 0;
	for (int i = 0; i < n; ++i)
		max = max > x[i] ? max : x[i];
	if (max < TINY_GROUP) {
		memset(q, 0, (size_t)n);
		return 0.f;
	}
	/* The first mapping only seeds the error to beat; levels are bytes. */
	float inv = nmax / max;
	for (int i = 0; i < n; ++i)
		q[i] = (uint8_t)round_magic(inv * x[i]);
	float scale = 1 / inv;
	float best = 0;
	for (int i = 0; i < n; ++i) {
		float diff = x[i] - scale * q[i];
		best += qw[i] * diff * diff;
	}
	for (int k = -4; k <= 4; ++k) {
		if (k == 0)
			continue;
		float inv_k = (0.1f * k + nmax) / max;
		float scale_k = 1 / inv_k;
		float err = 0;
		for (int i = 0; i < n; ++i) {
			int l = round_magic(inv_k * x[i]);
			l = l < nmax ? l : nmax;
			float diff = x[i] - scale_k * l;
			err += qw[i] * diff * diff;
		}
		if (err < best) {
			best = err;
			inv = inv_k;
		}
	}
	float sxl = 0, sl2 = 0;
	for (int i = 0; i < n; ++i) {
		int l = round_magic(inv * x[i]);
		l = l < nmax ? l : nmax;
		q[i] = (uint8_t)l;
		float w = qw[i];
		sxl += w * x[i] * l;
		sl2 += w * l * l;
	}
	/* Coordinate descent: move one level at a time while sxl^2/sl2 grows. */
	for (int sweep = 0; sweep < 5; ++sweep) {
		int moved = 0;
		for (int i = 0; i < n; ++i) {
			float w = qw[i];
			float o_xl = sxl - w * x[i] * q[i];
			float o_l2 = sl2 - w * q[i] * q[i];
			if (!(o_xl > 0 && o_l2 > 0))
				continue;
			int l = round_magic(x[i] * o_l2 / o_xl);
			l = l < nmax ? l : nmax;
			if (l == q[i])
				continue;
			o_xl += w * x[i] * l;
			o_l2 += w * l * l;
			if (o_xl * o_xl * sl2 > sxl * sxl * o_l2) {
				q[i] = (uint8_t)l;
				sxl = o_xl;
				sl2 = o_l2;
				++moved;
			}
		}
		if (!moved)
			break;
	}
	return sl2 > 0.0f ? sxl / sl2 : 0.0f;
}

/* Sum of squares of a super-block, in the reference's element order. */
static float sum_squares(const float *x, int n)
{
	float s = 0;
	for (int j = 0; j < n; ++j)
		s += x[j] * x[j];
	return s;
}

/* The weights of one group: qw[i] * sqrt(sigma2 + x[i]^2), and their sum. */
static float group_weights(const float *x, const float *qw, float sigma2, int n, float *w)
{
	for (int i = 0; i < n; ++i)
		w[i] = qw[i] * sqrtf(sigma2 + x[i] * x[i]);
	float sw = 0;
	for (int i = 0; i < n; ++i)
		sw += w[i];
	return sw;
}

/* ------------------------------------------------------------------ */
/* q8_K (decode only)                                                  */
/* ------------------------------------------------------------------ */

void qa_dequantize_q8_K(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / SUPER; ++b) {
		const uint8_t *blk = in + b * Q8K_BYTES;
		const float d = qa_load_lef32(blk);
		float *y = dst + b * SUPER;
		/* bsums (offset 260) are a dot-product aid and do not affect values. */
		for (int e = 0; e < SUPER; ++e)
			y[e] = d * (int8_t)blk[4 + e];
	}
}

/* ------------------------------------------------------------------ */
/* The encoders: chunks of super-blocks, both with and without weights */
/* ------------------------------------------------------------------ */


/*
 * The weights of one super-block's groups of n values (importance case):
 * w[i] = qw[i] * sqrt(sigma2 + x[i]^2) with sigma2 = mul * (mean square of
 * the super-block); sw[g] is the sum of group g's weights.  The expressions
 * are the reference's, mul * sum / 256 included (1 * s is s).
 */
static void block_weights(const float *x, const float *qw, float mul, int n, float *w, float *sw)
{
	float sigma2 = mul * sum_squares(x, SUPER) / SUPER;
	for (int g = 0; g < SUPER / n; ++g)
		sw[g] = group_weights(x + n * g, qw + n * g, sigma2, n, w + n * g);
}

/* Requantize a q2_K super-block against its decoded scales and write it. */
static void q2k_write(const float *x, uint8_t lev[SUPER], const uint8_t packed[16], uint16_t d_h,
                      uint16_t dmin_h, uint8_t *out)
{
	for (int g = 0; g < 16; ++g) {
		const float d = qa_fp16_to_fp32(d_h) * (packed[g] & 0xF);
		if (!d)
			continue;
		const float m = qa_fp16_to_fp32(dmin_h) * (packed[g] >> 4);
		requantize(x + 16 * g, 16, true, m, d, 0, 3, lev + 16 * g);
	}
	memcpy(out, packed, 16);
	pack_2bit(out + 16, lev);
	qa_store_le16(out + 80, d_h);
	qa_store_le16(out + 82, dmin_h);
}

/*
 * q2_K's group scales and mins to 4 bits each against d and dmin: the
 * reference maps the largest to 15; with weights (sw, the groups' weight
 * sums) each set gets a weighted fit instead.
 */
static void q2k_scales(const float scale[16], const float negmin[16], const float *sw,
                       uint8_t packed[16], uint16_t *d_h, uint16_t *dmin_h)
{
	if (sw) {
		uint8_t ls[16], lm[16];
		*d_h = qa_fp32_to_fp16(qa_quant_fit_positive(16, 15, scale, ls, sw));
		*dmin_h = qa_fp32_to_fp16(qa_quant_fit_positive(16, 15, negmin, lm, sw));
		for (int g = 0; g < 16; ++g)
			packed[g] = (uint8_t)(ls[g] | (lm[g] << 4));
		return;
	}
	const float top = 15.f;
	float max_scale = 0;
	float max_min = 0;
	for (int g = 0; g < 16; ++g) {
		if (scale[g] > max_scale)
			max_scale = scale[g];
		if (negmin[g] > max_min)
			max_min = negmin[g];
	}
	if (max_scale > 0) {
		float inv = top / max_scale;
		for (int g = 0; g < 16; ++g)
			packed[g] = (uint8_t)round_magic(inv * scale[g]);
		*d_h = qa_fp32_to_fp16(max_scale / top);
	} else {
		memset(packed, 0, 16);
		*d_h = qa_fp32_to_fp16(0.f);
	}
	if (max_min > 0) {
		float inv = top / max_min;
		for (int g = 0; g < 16; ++g) {
			unsigned l = (unsigned)round_magic(inv * negmin[g]);
			packed[g] = (uint8_t)(packed[g] | (l << 4));
		}
		*dmin_h = qa_fp32_to_fp16(max_min / top);
	} else {
		*dmin_h = qa_fp32_to_fp16(0.f);
	}
}

/* q2_K: sixteen groups of 16, each an affine 2-bit fit. */
static void q2k_chunk(const float *x, const float *const *qw, int m, uint8_t *out, int lanes)
{
	uint8_t lev[CHUNK * SUPER];
	float w[CHUNK * SUPER], sw[CHUNK * 16], scale[CHUNK * 16], negmin[CHUNK * 16];
	/* Reference: weighted by |x|, absolute error; with weights: squared. */
	struct qk_fit f = { .x = x, .n = 16, .nmax = 3, .rmin = -0.5f, .rdelta = 0.1f,
		            .nstep = 15, .abs_err = true, .lev = lev, .scale = scale,
		            .negmin = negmin };
	if (qw) {
		for (int b = 0; b < m; ++b)
			block_weights(x + SUPER * b, qw[b], 1, 16, w + SUPER * b, sw + 16 * b);
		f.w = w;
		f.rmin = -0.9f, f.rdelta = 0.05f, f.nstep = 36, f.abs_err = false;
	}
	fit_groups(&f, lanes, 16 * m);
	for (int b = 0; b < m; ++b) {
		uint8_t packed[16];
		uint16_t d_h, dmin_h;
		q2k_scales(scale + 16 * b, negmin + 16 * b, qw ? sw + 16 * b : NULL, packed, &d_h,
		           &dmin_h);
		q2k_write(x + SUPER * b, lev + SUPER * b, packed, d_h, dmin_h, out + Q2K_BYTES * b);
	}
}

/*
 * q3_K's 16 group scales to signed 6 bits (stored +32) against d: the
 * reference maps the largest magnitude to -32; with weights the scales got
 * their own weighted symmetric fit (fitted levels and d, given).  Packs
 * them into sc and returns d in fp16.
 */
static uint16_t q3k_scales(const float scale[16], const int8_t *fitted, float d, uint8_t sc[12],
                           int8_t v[16])
{
	if (fitted) {
		memcpy(v, fitted, 16);
	} else {
		float amax;
		float max_scale = signed_peak16(scale, &amax);
		if (!max_scale) {
			memset(sc, 0, 12);
			memset(v, 0, 16);
			return qa_fp32_to_fp16(0.f);
		}
		float inv = -32.f / max_scale;
#if QK_SIMD
		/* The same multiply and round_magic per lane; the int8 cast is a shift pair. */
		for (int j = 0; j < 16; j += 4) {
			qk_v4f t;
			memcpy(&t, scale + j, sizeof t);
			t = QK_SPLAT(qk_v4f, inv) * t;
			qk_v4i l = QK_ROUND_MAGIC(qk_v4f, qk_v4i, t);
			l = (l << 24) >> 24;
			l = QK_SEL(qk_v4i, l < -32, (qk_v4i){ 0 } - 32, l);
			l = QK_SEL(qk_v4i, l > 31, (qk_v4i){ 0 } + 31, l);
			for (int k = 0; k < 4; ++k)
				v[j + k] = (int8_t)(l[k] + 32);
		}
#else
		for (int g = 0; g < 16; ++g) {
			int8_t l = (int8_t)round_magic(inv * scale[g]);
			v[g] = (int8_t)(clamp_int(l, -32, 31) + 32);
		}
#endif
		d = 1 / inv;
	}
	/* Low nibbles in bytes 0-7 (groups 8-15 high), top two bits in 8-11. */
	for (int g = 0; g < 8; ++g)
		sc[g] = (uint8_t)((v[g] & 0xF) | ((v[g + 8] & 0xF) << 4));
	for (int j = 0; j < 4; ++j)
		sc[8 + j] = (uint8_t)(((v[j] >> 4) & 3) | (((v[j + 4] >> 4) & 3) << 2) |
		                      (((v[j + 8] >> 4) & 3) << 4) | (((v[j + 12] >> 4) & 3) << 6));
	return qa_fp32_to_fp16(d);
}

/* q3_K: sixteen groups of 16, each a symmetric 3-bit fit. */
static void q3k_chunk(const float *x, const float *const *qw, int m, uint8_t *out, int lanes)
{
	int8_t lev[CHUNK * SUPER];
	float w[CHUNK * SUPER], sw[CHUNK * 16], scale[CHUNK * 16];
	/* Reference: fit_q3; with weights: fit_symmetric(16, 4, ...). */
	struct qk_fit f = { .x = x, .n = 16, .nmax = 4, .sym = true, .q3 = true,
		            .no_levels = lanes > 0, .lev = (uint8_t *)lev, .scale = scale };
	if (qw) {
		for (int b = 0; b < m; ++b)
			block_weights(x + SUPER * b, qw[b], 2, 16, w + SUPER * b, sw + 16 * b);
		f.w = w;
		f.q3 = false;
	}
	fit_groups(&f, lanes, 16 * m);
	/* With weights, each super-block's 16 scales are one more weighted group. */
	int8_t ls[CHUNK * 16];
	float dsb[CHUNK];
	if (qw) {
		struct qk_fit fs = { .x = scale, .w = sw, .n = 16, .nmax = 32, .sym = true,
			             .lev = (uint8_t *)ls, .scale = dsb };
		fit_groups(&fs, lanes, m);
	}
	q3k_finish_fn finish;
	q6k_finish_fn unused;
	finishers(lanes, &finish, &unused);
	for (int b = 0; b < m; ++b) {
		uint8_t sc[12];
		int8_t v[16];
		uint16_t d_h = q3k_scales(scale + 16 * b, qw ? ls + 16 * b : NULL, qw ? dsb[b] : 0.f,
		                          sc, v);
		finish(x + SUPER * b, lev + SUPER * b, v, sc, d_h, out + Q3K_BYTES * b,
		       f.no_levels ? &f : NULL, 16 * b);
	}
}

/*
 * q4_K and q5_K's 8 group scales and mins to 6 bits against d and dmin: the
 * reference maps the largest to 63; with weights each set gets a weighted
 * fit (q5_K then caps the levels at 63; q4_K stores them as they are).
 */
static void affine32_scales(int nmax, const float scale[8], const float negmin[8],
                            const float *sw, uint8_t packed[12], uint16_t *d_h,
                            uint16_t *dmin_h)
{
	uint8_t ls[8], lm[8];
	if (sw) {
		*d_h = qa_fp32_to_fp16(qa_quant_fit_positive(8, 63, scale, ls, sw));
		*dmin_h = qa_fp32_to_fp16(qa_quant_fit_positive(8, 63, negmin, lm, sw));
		if (nmax == 31) {
			for (int g = 0; g < 8; ++g) {
				ls[g] = ls[g] < 63 ? ls[g] : 63;
				lm[g] = lm[g] < 63 ? lm[g] : 63;
			}
		}
	} else {
		float max_scale = 0;
		float max_min = 0;
		for (int g = 0; g < 8; ++g) {
			if (scale[g] > max_scale)
				max_scale = scale[g];
			if (negmin[g] > max_min)
				max_min = negmin[g];
		}
		float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
		float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
		for (int g = 0; g < 8; ++g) {
			/* Narrowed to a byte before the clamp, as the reference does. */
			uint8_t s = (uint8_t)round_magic(inv_scale * scale[g]);
			uint8_t mn = (uint8_t)round_magic(inv_min * negmin[g]);
			ls[g] = s < 63 ? s : 63;
			lm[g] = mn < 63 ? mn : 63;
		}
		*d_h = qa_fp32_to_fp16(max_scale / 63.f);
		*dmin_h = qa_fp32_to_fp16(max_min / 63.f);
	}
	pack_scale_min(packed, ls, lm);
}

typedef void (*affine32_write_fn)(const uint8_t lev[SUPER], const uint8_t packed[12],
                                  uint16_t d_h, uint16_t dmin_h, uint8_t *out);

/*
 * q4_K (nmax 15) and q5_K (nmax 31): eight groups of 32, each an affine
 * fit, scales and mins to 6 bits, every value requantized against them.
 */
static void affine32_chunk(int nmax, affine32_write_fn write, size_t bytes, const float *x,
                           const float *const *qw, int m, uint8_t *out, int lanes)
{
	uint8_t lev[CHUNK * SUPER];
	float w[CHUNK * SUPER], sw[CHUNK * 8], scale[CHUNK * 8], negmin[CHUNK * 8];
	struct qk_fit f = { .x = x, .n = 32, .nmax = nmax, .rdelta = 0.1f, .lev = lev,
		            .scale = scale, .negmin = negmin };
	if (nmax == 15)
		f.rmin = -1.f, f.nstep = 20;
	else
		f.rmin = -0.5f, f.nstep = 15;
	if (qw) {
		for (int b = 0; b < m; ++b)
			block_weights(x + SUPER * b, qw[b], 2, 32, w + SUPER * b, sw + 8 * b);
		f.w = w;
		f.rmin = -0.9f, f.rdelta = 0.05f, f.nstep = 36;
	}
	fit_groups(&f, lanes, 8 * m);
	for (int b = 0; b < m; ++b) {
		uint8_t packed[12];
		uint16_t d_h, dmin_h;
		affine32_scales(nmax, scale + 8 * b, negmin + 8 * b, qw ? sw + 8 * b : NULL, packed,
		                &d_h, &dmin_h);
		affine32_requantize(x + SUPER * b, nmax, packed, d_h, dmin_h, lev + SUPER * b);
		write(lev + SUPER * b, packed, d_h, dmin_h, out + bytes * b);
	}
}

static void q4k_chunk(const float *x, const float *const *qw, int m, uint8_t *out, int lanes)
{
	affine32_chunk(15, q4k_write, Q4K_BYTES, x, qw, m, out, lanes);
}

static void q5k_chunk(const float *x, const float *const *qw, int m, uint8_t *out, int lanes)
{
	affine32_chunk(31, q5k_write, Q5K_BYTES, x, qw, m, out, lanes);
}

/* q6_K: sixteen groups of 16, symmetric 6-bit fits (weighted by qw alone). */
static void q6k_chunk(const float *x, const float *const *qw, int m, uint8_t *out, int lanes)
{
	int8_t lev[CHUNK * SUPER];
	float w[CHUNK * SUPER], scale[CHUNK * 16];
	struct qk_fit f = { .x = x, .n = 16, .nmax = 32, .sym = true, .no_levels = lanes > 0,
		            .lev = (uint8_t *)lev, .scale = scale };
	if (qw) {
		for (int b = 0; b < m; ++b)
			memcpy(w + SUPER * b, qw[b], SUPER * sizeof *w);
		f.w = w;
	}
	fit_groups(&f, lanes, 16 * m);
	q3k_finish_fn unused;
	q6k_finish_fn finish;
	finishers(lanes, &unused, &finish);
	for (int b = 0; b < m; ++b)
		finish(x + SUPER * b, lev + SUPER * b, scale + 16 * b, out + Q6K_BYTES * b,
		       f.no_levels ? &f : NULL, 16 * b);
}

typedef void (*chunk_fn)(const float *x, const float *const *qw, int m, uint8_t *out, int lanes);

static const struct {
	uint32_t type;
	chunk_fn chunk;
	size_t bytes;
} k_types[] = {
	{ QA_TYPE_Q2_K, q2k_chunk, Q2K_BYTES }, { QA_TYPE_Q3_K, q3k_chunk, Q3K_BYTES },
	{ QA_TYPE_Q4_K, q4k_chunk, Q4K_BYTES }, { QA_TYPE_Q5_K, q5k_chunk, Q5K_BYTES },
	{ QA_TYPE_Q6_K, q6k_chunk, Q6K_BYTES },
};

/*
 * Encode nrow rows of n_per_row values (a multiple of 256) with the
 * encoder of k_types[k] on the kernels lanes allows; block b of a row takes
 * the weights at qw + 256*b (qw NULL: the reference path).  Chunks may
 * span rows.
 */
static void encode_rows(int k, const float *src, void *dst, size_t nrow, size_t n_per_row,
                        const float *qw, int lanes)
{
	const size_t nb_row = n_per_row / SUPER;
	const size_t total = nrow * nb_row;
	uint8_t *out = dst;
	for (size_t i = 0; i < total; i += CHUNK) {
		const float *qwb[CHUNK];
		const int m = total - i < CHUNK ? (int)(total - i) : CHUNK;
		for (int b = 0; b < m; ++b)
			qwb[b] = qw ? qw + ((i + (size_t)b) % nb_row) * SUPER : NULL;
		k_types[k].chunk(src + i * SUPER, qw ? qwb : NULL, m, out + i * k_types[k].bytes,
		                 lanes);
	}
}

/*
 * The public entry points, qa_quantize_q2_K .. qa_quantize_q6_K and
 * qa_quantize_rows_q2_K .. _q6_K (quant.h), on the fastest kernels.
 */
#define QK_ENTRY_POINTS(NAME, K)                                                        \
	void qa_quantize_##NAME(const float *src, void *dst, size_t n)                  \
	{                                                                               \
		encode_rows(K, src, dst, 1, n, NULL, path_lanes(QA_QUANT_K_AUTO));      \
	}                                                                               \
	void qa_quantize_rows_##NAME(const float *src, void *dst, size_t nrow,          \
	                             size_t n_per_row, const float *qw)                 \
	{                                                                               \
		encode_rows(K, src, dst, nrow, n_per_row, qw, path_lanes(QA_QUANT_K_AUTO)); \
	}
QK_ENTRY_POINTS(q2_K, 0)
QK_ENTRY_POINTS(q3_K, 1)
QK_ENTRY_POINTS(q4_K, 2)
QK_ENTRY_POINTS(q5_K, 3)
QK_ENTRY_POINTS(q6_K, 4)

/* ------------------------------------------------------------------ */
/* Choosing the implementation (tests)                                 */
/* ------------------------------------------------------------------ */

bool qa_quant_k_quantize_rows(uint32_t type, enum qa_quant_k_path path, const float *src,
                              void *dst, size_t nrow, size_t n_per_row, const float *qw)
{
	const int lanes = path_lanes(path);
	if (lanes < 0)
		return false;
	for (int k = 0; k < (int)(sizeof k_types / sizeof k_types[0]); ++k) {
		if (k_types[k].type == type) {
			encode_rows(k, src, dst, nrow, n_per_row, qw, lanes);
			return true;
		}
	}
	return false;
}

bool qa_quant_k_quantize(uint32_t type, enum qa_quant_k_path path, const float *src,
                         void *dst, size_t n)
{
	return qa_quant_k_quantize_rows(type, path, src, dst, 1, n, NULL);
}
