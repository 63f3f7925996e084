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
 * has SIMD versions that fit 4 or 8 groups in lockstep with the same
 * per-group arithmetic.  The public encoders use the fastest one
 * available; qa_quant_k_quantize picks one explicitly, so tests can check
 * that all agree.
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
	float lo = x[0];
	float hi = x[0];
	float sw = w[0];
	float swx = sw * x[0];

	for (int i = 1; i < n; ++i) {
		if (x[i] < lo)
			lo = x[i];
		if (x[i] > hi)
			hi = x[i];
		float wi = w[i];
		sw += wi;
		swx += wi * x[i];
	}
	if (lo > 0)
		lo = 0;
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
#endif
#endif

#if QK_SIMD
/*
 * Helpers on any vector type: a splat that keeps -0 (s - +0 == s for every
 * float s), and a lane-wise m ? a : b for a comparison mask m.
 */
#define QK_SPLAT(VF, s) ((s) - (VF){ 0 })
#define QK_SEL(VI, m, a, b) (((m) & (VI)(a)) | (~(m) & (VI)(b)))

/* (float)clamp_int(round_magic(v), 0, nmax) in every lane; vnmax is a splat. */
#define QK_LEVEL(VF, VI, v, vnmax)                                              \
	__builtin_convertvector(                                                \
		qk_clamp_##VI(((VI)((v) + QK_SPLAT(VF, 12582912.f)) &           \
		               ((VI){ 0 } + 0x007fffff)) - ((VI){ 0 } + 0x00400000), \
		              vnmax), VF)

/*
 * QK_DEFINE_FIT(L, VF, VI, ATTR) defines, for L-lane vectors VF (float)
 * and VI (int32):
 *
 *   fit_affine_xL(n, nmax, x, w, q, scale, neg_min, rmin, rdelta, nstep,
 *                 abs_err): fit groups g = 0..L-1 given lane-major x[i]
 *     and w[i] (i < n <= 32); writes group g's levels to q + n*g, its scale
 *     to scale[g] and -min to neg_min[g], exactly as fit_affine would.
 *
 *   fit_groups_xL(x, n, ngroups, ...): fit ngroups (a multiple of L)
 *     consecutive groups of n values at x, L at a time, with the weights
 *     the scalar callers use: |x| when abs_err (q2_K), rms(group) + |x|
 *     otherwise (q4_K, q5_K).
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
	for (int g = 0; g < L; ++g) {                                           \
		uint8_t *qg = q + (size_t)n * g;                                \
		neg_min[g] = -lo[g];                                            \
		if (flat[g]) {                                                  \
			/* fit_affine's early return; lo never moved. */        \
			memset(qg, 0, (size_t)n);                               \
			scale_out[g] = 0.f;                                     \
			continue;                                               \
		}                                                               \
		scale_out[g] = scale[g];                                        \
		const float bi = best_inv[g], bl = best_lo[g];                  \
		for (int i = 0; i < n; ++i)                                     \
			qg[i] = (uint8_t)clamp_int(round_magic(bi * (x[i][g] - bl)), 0, nmax); \
	}                                                                       \
}                                                                               \
                                                                                \
ATTR static void fit_groups_x##L(const float *x, int n, int ngroups, int nmax,  \
                                 float rmin, float rdelta, int nstep,           \
                                 bool abs_err, uint8_t *lev, float *scale,      \
                                 float *negmin)                                 \
{                                                                               \
	VF xt[32], wt[32];                                                      \
	const VI abs_mask = (VI){ 0 } + 0x7fffffff;                             \
                                                                                \
	for (int h = 0; h < ngroups; h += L) {                                  \
		for (int i = 0; i < n; ++i)                                     \
			for (int g = 0; g < L; ++g)                             \
				xt[i][g] = x[n * (h + g) + i];                  \
		if (abs_err) {                                                  \
			for (int i = 0; i < n; ++i)                             \
				wt[i] = (VF)((VI)xt[i] & abs_mask);             \
		} else {                                                        \
			VF ss = { 0 }, rms;                                     \
			for (int i = 0; i < n; ++i)                             \
				ss = ss + xt[i] * xt[i];                        \
			for (int g = 0; g < L; ++g)                             \
				rms[g] = sqrtf(ss[g] / n);                      \
			for (int i = 0; i < n; ++i)                             \
				wt[i] = rms + (VF)((VI)xt[i] & abs_mask);       \
		}                                                               \
		fit_affine_x##L(n, nmax, xt, wt, lev + n * h, scale + h,        \
		                negmin + h, rmin, rdelta, nstep, abs_err);      \
	}                                                                       \
}

typedef float qk_v4f __attribute__((vector_size(16)));
typedef int32_t qk_v4i __attribute__((vector_size(16)));
QK_DEFINE_FIT(4, qk_v4f, qk_v4i, )

#if QK_AVX2
typedef float qk_v8f __attribute__((vector_size(32)));
typedef int32_t qk_v8i __attribute__((vector_size(32)));
QK_DEFINE_FIT(8, qk_v8f, qk_v8i, __attribute__((target("avx2"))))
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
	case QA_QUANT_K_AUTO: {
		int l = path_lanes(QA_QUANT_K_SIMD8);
		if (l < 0)
			l = path_lanes(QA_QUANT_K_SIMD4);
		return l < 0 ? 0 : l;
	}
	}
	return -1;
}

/*
 * Fit ngroups groups of n values with the SIMD kernel for lanes; returns
 * false when lanes is 0 (the caller then runs the scalar loop).
 */
static bool fit_groups_simd(int lanes, const float *x, int n, int ngroups, int nmax,
                            float rmin, float rdelta, int nstep, bool abs_err,
                            uint8_t *lev, float *scale, float *negmin)
{
#if QK_AVX2
	if (lanes == 8) {
		fit_groups_x8(x, n, ngroups, nmax, rmin, rdelta, nstep, abs_err, lev,
		              scale, negmin);
		return true;
	}
#endif
#if QK_SIMD
	if (lanes == 4) {
		fit_groups_x4(x, n, ngroups, nmax, rmin, rdelta, nstep, abs_err, lev,
		              scale, negmin);
		return true;
	}
#else
	(void)x, (void)n, (void)ngroups, (void)nmax, (void)rmin, (void)rdelta;
	(void)nstep, (void)abs_err, (void)lev, (void)scale, (void)negmin;
#endif
	(void)lanes;
	return false;
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
	float peak = 0;
	float apeak = 0;
	for (int i = 0; i < n; ++i) {
		float a = fabsf(x[i]);
		if (a > apeak) {
			apeak = a;
			peak = x[i];
		}
	}
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
	float peak = 0;
	float apeak = 0;
	for (int i = 0; i < n; ++i) {
		float a = fabsf(x[i]);
		if (a > apeak) {
			apeak = a;
			peak = x[i];
		}
	}
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
 * QK_DEFINE_SYM(L, VF, VI, ATTR) defines fit_sym_groups_xL(x, q3, lev,
 * scale): fits the 16 groups of 16 of a super-block at x, L at a time, with
 * fit_q3(16, 4, ...) when q3 and fit_symmetric(16, 32, ...) otherwise,
 * writing levels to lev and scales to scale as the scalar loops do.
 */
#if QK_SIMD
#define QK_DEFINE_SYM(L, VF, VI, ATTR)                                          \
ATTR static inline VF qk_level2_x##L(VF v, VI vlo, VI vhi)                      \
{                                                                               \
	VI l = ((VI)(v + QK_SPLAT(VF, 12582912.f)) & ((VI){ 0 } + 0x007fffff)) - \
	       ((VI){ 0 } + 0x00400000);                                        \
	l = QK_SEL(VI, l < vlo, vlo, l);                                        \
	l = QK_SEL(VI, l > vhi, vhi, l);                                        \
	return __builtin_convertvector(l, VF);                                  \
}                                                                               \
                                                                                \
ATTR static void fit_sym_x##L(int nmax, bool q3, const VF *x, int8_t *q,        \
                              float *scale_out)                                 \
{                                                                               \
	const VF zero = { 0 };                                                  \
	const VI vlo = (VI){ 0 } - nmax, vhi = (VI){ 0 } + (nmax - 1);          \
	const VI abs_mask = (VI){ 0 } + 0x7fffffff;                             \
	VF w[16], wx[16], ql[16];                                               \
                                                                                \
	VF peak = zero, apeak = zero;                                           \
	for (int i = 0; i < 16; ++i) {                                          \
		VF a = (VF)((VI)x[i] & abs_mask);                               \
		VI m = a > apeak;                                               \
		apeak = (VF)QK_SEL(VI, m, a, apeak);                            \
		peak = (VF)QK_SEL(VI, m, x[i], peak);                           \
		w[i] = x[i] * x[i];                                             \
		wx[i] = w[i] * x[i];                                            \
	}                                                                       \
	const VI flat = apeak < QK_SPLAT(VF, TINY_GROUP);                       \
                                                                                \
	VF inv = QK_SPLAT(VF, (float)-nmax) / peak;                             \
	VF sxl = zero, sl2 = zero;                                              \
	for (int i = 0; i < 16; ++i) {                                          \
		VF l = qk_level2_x##L(inv * x[i], vlo, vhi);                    \
		ql[i] = l;                                                      \
		sxl = sxl + wx[i] * l;                                          \
		sl2 = sl2 + w[i] * l * l;                                       \
	}                                                                       \
	VF scale;                                                               \
	if (q3) {                                                               \
		for (int sweep = 0; sweep < 5; ++sweep) {                       \
			VI moved = { 0 };                                       \
			for (int i = 0; i < 16; ++i) {                          \
				VF o_xl = sxl - wx[i] * ql[i];                  \
				VF o_l2 = sl2 - w[i] * ql[i] * ql[i];           \
				VF l = qk_level2_x##L(x[i] * o_l2 / o_xl, vlo, vhi); \
				VI m = (o_xl > zero) & (l != ql[i]);            \
				o_xl = o_xl + wx[i] * l;                        \
				o_l2 = o_l2 + w[i] * l * l;                     \
				m &= (o_l2 > zero) &                            \
				     (o_xl * o_xl * sl2 > sxl * sxl * o_l2);    \
				ql[i] = (VF)QK_SEL(VI, m, l, ql[i]);            \
				sxl = (VF)QK_SEL(VI, m, o_xl, sxl);             \
				sl2 = (VF)QK_SEL(VI, m, o_l2, sl2);             \
				moved |= m;                                     \
			}                                                       \
			moved &= ~flat;                                         \
			bool any = false;                                       \
			for (int g = 0; g < L; ++g)                             \
				any |= moved[g] != 0;                           \
			if (!any)                                               \
				break;                                          \
		}                                                               \
		scale = (VF)QK_SEL(VI, sl2 > zero, sxl / sl2, zero);            \
		for (int g = 0; g < L; ++g)                                     \
			for (int i = 0; i < 16; ++i)                            \
				q[16 * g + i] = (int8_t)((int)ql[i][g] + nmax); \
	} else {                                                                \
		scale = (VF)QK_SEL(VI, sl2 != zero, sxl / sl2, zero);           \
		VF best = scale * sxl;                                          \
		VF best_inv = inv;                                              \
		for (int k = -9; k <= 9; ++k) {                                 \
			if (k == 0)                                             \
				continue;                                       \
			const float num = -(nmax + 0.1f * k);                   \
			inv = QK_SPLAT(VF, num) / peak;                         \
			sxl = zero;                                             \
			sl2 = zero;                                             \
			for (int i = 0; i < 16; ++i) {                          \
				VF l = qk_level2_x##L(inv * x[i], vlo, vhi);    \
				sxl = sxl + wx[i] * l;                          \
				sl2 = sl2 + w[i] * l * l;                       \
			}                                                       \
			VI better = (sl2 > zero) & (sxl * sxl > best * sl2);    \
			VF cand = sxl / sl2;                                    \
			best_inv = (VF)QK_SEL(VI, better, inv, best_inv);       \
			scale = (VF)QK_SEL(VI, better, cand, scale);            \
			best = (VF)QK_SEL(VI, better, cand * sxl, best);        \
		}                                                               \
		for (int g = 0; g < L; ++g) {                                   \
			const float bi = best_inv[g];                           \
			for (int i = 0; i < 16; ++i)                            \
				q[16 * g + i] = (int8_t)(nmax + clamp_int(      \
					round_magic(bi * x[i][g]), -nmax, nmax - 1)); \
		}                                                               \
	}                                                                       \
	for (int g = 0; g < L; ++g) {                                           \
		if (flat[g]) {                                                  \
			/* The scalar functions' early return. */               \
			memset(q + 16 * g, 0, 16);                              \
			scale_out[g] = 0.f;                                     \
		} else {                                                        \
			scale_out[g] = scale[g];                                \
		}                                                               \
	}                                                                       \
}                                                                               \
                                                                                \
ATTR static void fit_sym_groups_x##L(const float *x, bool q3, int8_t *lev,     \
                                     float *scale)                              \
{                                                                               \
	VF xt[16];                                                              \
	for (int h = 0; h < 16; h += L) {                                       \
		for (int i = 0; i < 16; ++i)                                    \
			for (int g = 0; g < L; ++g)                             \
				xt[i][g] = x[16 * (h + g) + i];                 \
		fit_sym_x##L(q3 ? 4 : 32, q3, xt, lev + 16 * h, scale + h);     \
	}                                                                       \
}

QK_DEFINE_SYM(4, qk_v4f, qk_v4i, )
#if QK_AVX2
QK_DEFINE_SYM(8, qk_v8f, qk_v8i, __attribute__((target("avx2"))))
#endif
#endif /* QK_SIMD */

/*
 * Fit the 16 groups of 16 of a super-block with fit_q3 (q3) or
 * fit_symmetric, using the SIMD kernel for lanes, or the scalar functions
 * when lanes is 0.
 */
static void fit_sym_groups(int lanes, const float *x, bool q3, int8_t *lev, float *scale)
{
#if QK_AVX2
	if (lanes == 8) {
		fit_sym_groups_x8(x, q3, lev, scale);
		return;
	}
#endif
#if QK_SIMD
	if (lanes == 4) {
		fit_sym_groups_x4(x, q3, lev, scale);
		return;
	}
#endif
	(void)lanes;
	for (int g = 0; g < 16; ++g)
		scale[g] = q3 ? fit_q3(16, 4, x + 16 * g, lev + 16 * g)
		              : qa_quant_fit_symmetric(16, 32, x + 16 * g, lev + 16 * g, NULL);
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

/* Block writers shared by the reference and the importance-weighted encoders. */
static void q4k_write(const uint8_t lev[SUPER], const uint8_t packed[12], uint16_t d_h,
                      uint16_t dmin_h, uint8_t *out);
static void q5k_write(const uint8_t lev[SUPER], const uint8_t packed[12], uint16_t d_h,
                      uint16_t dmin_h, uint8_t *out);
static void q6k_finish(const float *x, int8_t lev[SUPER], const float scale[16], uint8_t *out);

/* ------------------------------------------------------------------ */
/* q2_K                                                                */
/* ------------------------------------------------------------------ */

static void q2k_encode_block(const float *x, uint8_t *out, int lanes)
{
	uint8_t lev[SUPER];
	float w[16];
	float scale[16], negmin[16];
	uint8_t packed[16];
	const float top = 15.f;

	/* Sixteen groups of 16, each an affine 2-bit fit weighted by |x|. */
	if (!fit_groups_simd(lanes, x, 16, 16, 3, -0.5f, 0.1f, 15, true, lev, scale,
	                     negmin)) {
		for (int g = 0; g < 16; ++g) {
			const float *xg = x + 16 * g;
			for (int i = 0; i < 16; ++i)
				w[i] = fabsf(xg[i]);
			scale[g] = qa_quant_fit_affine(16, 3, xg, w, lev + 16 * g, &negmin[g],
			                      -0.5f, 0.1f, 15, true);
		}
	}
	float max_scale = 0;
	float max_min = 0;
	for (int g = 0; g < 16; ++g) {
		if (scale[g] > max_scale)
			max_scale = scale[g];
		if (negmin[g] > max_min)
			max_min = negmin[g];
	}

	/* Scales and mins go to 4 bits each, relative to d and dmin. */
	uint16_t d_h, dmin_h;
	if (max_scale > 0) {
		float inv = top / max_scale;
		for (int g = 0; g < 16; ++g)
			packed[g] = (uint8_t)round_magic(inv * scale[g]);
		d_h = qa_fp32_to_fp16(max_scale / top);
	} else {
		memset(packed, 0, sizeof packed);
		d_h = qa_fp32_to_fp16(0.f);
	}
	if (max_min > 0) {
		float inv = top / max_min;
		for (int g = 0; g < 16; ++g) {
			unsigned l = (unsigned)round_magic(inv * negmin[g]);
			packed[g] = (uint8_t)(packed[g] | (l << 4));
		}
		dmin_h = qa_fp32_to_fp16(max_min / top);
	} else {
		dmin_h = qa_fp32_to_fp16(0.f);
	}

	/* Requantize against the scales as they will be decoded. */
	for (int g = 0; g < 16; ++g) {
		const float d = qa_fp16_to_fp32(d_h) * (packed[g] & 0xF);
		if (!d)
			continue;
		const float m = qa_fp16_to_fp32(dmin_h) * (packed[g] >> 4);
		for (int i = 0; i < 16; ++i) {
			int l = round_magic((x[16 * g + i] + m) / d);
			lev[16 * g + i] = (uint8_t)clamp_int(l, 0, 3);
		}
	}

	memcpy(out, packed, 16);
	pack_2bit(out + 16, lev);
	qa_store_le16(out + 80, d_h);
	qa_store_le16(out + 82, dmin_h);
}

void qa_quantize_q2_K(const float *src, void *dst, size_t n)
{
	const int lanes = path_lanes(QA_QUANT_K_AUTO);
	uint8_t *out = dst;
	for (size_t b = 0; b < n / SUPER; ++b)
		q2k_encode_block(src + b * SUPER, out + b * Q2K_BYTES, lanes);
}

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
 * fitted), split off the high bits and write the block.
 */
static void q3k_finish(const float *x, int8_t lev[SUPER], const uint8_t sc[12], uint16_t d_h,
                       uint8_t *out)
{
	uint8_t hmask[32];
	/* Requantize against the decoded scales. */
	for (int g = 0; g < 16; ++g) {
		int8_t s = (int8_t)(q3_scale_get(sc, g) - 32);
		float d = qa_fp16_to_fp32(d_h) * s;
		if (!d)
			continue;
		for (int i = 0; i < 16; ++i) {
			int l = round_magic(x[16 * g + i] / d);
			lev[16 * g + i] = (int8_t)(clamp_int(l, -4, 3) + 4);
		}
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

static void q3k_encode_block(const float *x, uint8_t *out, int lanes)
{
	int8_t lev[SUPER];
	float scale[16];
	uint8_t sc[12];

	/* Sixteen groups of 16, each a symmetric 3-bit fit. */
	float max_scale = 0;
	float amax = 0;
	fit_sym_groups(lanes, x, true, lev, scale);
	for (int g = 0; g < 16; ++g) {
		float a = fabsf(scale[g]);
		if (a > amax) {
			amax = a;
			max_scale = scale[g];
		}
	}

	/* Group scales to signed 6 bits (stored +32) relative to d. */
	memset(sc, 0, sizeof sc);
	uint16_t d_h;
	if (max_scale) {
		float inv = -32.f / max_scale;
		for (int g = 0; g < 16; ++g) {
			int8_t l = (int8_t)round_magic(inv * scale[g]);
			int v = clamp_int(l, -32, 31) + 32;
			if (g < 8)
				sc[g] = (uint8_t)(v & 0xF);
			else
				sc[g - 8] |= (uint8_t)((v & 0xF) << 4);
			sc[8 + g % 4] |= (uint8_t)((v >> 4) << (2 * (g / 4)));
		}
		d_h = qa_fp32_to_fp16(1 / inv);
	} else {
		d_h = qa_fp32_to_fp16(0.f);
	}

	q3k_finish(x, lev, sc, d_h, out);
}

void qa_quantize_q3_K(const float *src, void *dst, size_t n)
{
	const int lanes = path_lanes(QA_QUANT_K_AUTO);
	uint8_t *out = dst;
	for (size_t b = 0; b < n / SUPER; ++b)
		q3k_encode_block(src + b * SUPER, out + b * Q3K_BYTES, lanes);
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
		for (int i = 0; i < 32; ++i) {
			int l = round_magic((x[32 * g + i] + dm) / d);
			lev[32 * g + i] = (uint8_t)clamp_int(l, 0, nmax);
		}
	}
}

/*
 * The common front half of q4_K and q5_K: fit each group of 32 with
 * levels in [0, nmax], quantize scales and mins to 6 bits, then
 * requantize every value against the decoded scale and min.  Fills the
 * 12 scale bytes, the two fp16 factors and the 256 levels.
 */
static void affine32_encode(const float *x, int nmax, float rmin, float rdelta,
                            int nstep, uint8_t lev[SUPER], uint8_t packed[12],
                            uint16_t *d_h, uint16_t *dmin_h, int lanes)
{
	float w[32];
	float scale[8], negmin[8];
	uint8_t qs6[8], qm6[8];

	/* Weight each value by rms(group) + |x|. */
	if (!fit_groups_simd(lanes, x, 32, 8, nmax, rmin, rdelta, nstep, false, lev,
	                     scale, negmin)) {
		for (int g = 0; g < 8; ++g) {
			const float *xg = x + 32 * g;
			float ss = 0;
			for (int i = 0; i < 32; ++i)
				ss += xg[i] * xg[i];
			float rms = sqrtf(ss / 32);
			for (int i = 0; i < 32; ++i)
				w[i] = rms + fabsf(xg[i]);
			scale[g] = qa_quant_fit_affine(32, nmax, xg, w, lev + 32 * g, &negmin[g],
			                      rmin, rdelta, nstep, false);
		}
	}
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
		uint8_t ls = (uint8_t)round_magic(inv_scale * scale[g]);
		uint8_t lm = (uint8_t)round_magic(inv_min * negmin[g]);
		qs6[g] = ls < 63 ? ls : 63;
		qm6[g] = lm < 63 ? lm : 63;
	}
	pack_scale_min(packed, qs6, qm6);
	*d_h = qa_fp32_to_fp16(max_scale / 63.f);
	*dmin_h = qa_fp32_to_fp16(max_min / 63.f);
	affine32_requantize(x, nmax, packed, *d_h, *dmin_h, lev);
}

static void q4k_encode_block(const float *x, uint8_t *out, int lanes)
{
	uint8_t lev[SUPER];
	uint8_t packed[12];
	uint16_t d_h, dmin_h;

	affine32_encode(x, 15, -1.f, 0.1f, 20, lev, packed, &d_h, &dmin_h, lanes);
	q4k_write(lev, packed, d_h, dmin_h, out);
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

void qa_quantize_q4_K(const float *src, void *dst, size_t n)
{
	const int lanes = path_lanes(QA_QUANT_K_AUTO);
	uint8_t *out = dst;
	for (size_t b = 0; b < n / SUPER; ++b)
		q4k_encode_block(src + b * SUPER, out + b * Q4K_BYTES, lanes);
}

void qa_dequantize_q4_K(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / SUPER; ++b) {
		const uint8_t *blk = in + b * Q4K_BYTES;
		const float d = qa_fp16_to_fp32(qa_load_le16(blk + 0));
		const float dmin = qa_fp16_to_fp32(qa_load_le16(blk + 2));
		const uint8_t *packed = blk + 4;
		const uint8_t *qs = blk + 16;
		float *y = dst + b * SUPER;

		for (int g = 0; g < 8; ++g) {
			uint8_t s, m;
			unpack_scale_min(packed, g, &s, &m);
			const float dg = d * s;
			const float mg = dmin * m;
			const uint8_t *q = qs + 32 * (g / 2);
			int shift = 4 * (g % 2);
			for (int l = 0; l < 32; ++l)
				y[32 * g + l] = dg * ((q[l] >> shift) & 0xF) - mg;
		}
	}
}

static void q5k_encode_block(const float *x, uint8_t *out, int lanes)
{
	uint8_t lev[SUPER];
	uint8_t packed[12];
	uint16_t d_h, dmin_h;

	affine32_encode(x, 31, -0.5f, 0.1f, 15, lev, packed, &d_h, &dmin_h, lanes);
	q5k_write(lev, packed, d_h, dmin_h, out);
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
	memset(qh, 0, 32);
	for (int p = 0; p < 4; ++p) {
		for (int l = 0; l < 32; ++l) {
			int a = lev[64 * p + l];
			int c = lev[64 * p + 32 + l];
			if (a > 15) {
				a -= 16;
				qh[l] |= (uint8_t)(1u << (2 * p));
			}
			if (c > 15) {
				c -= 16;
				qh[l] |= (uint8_t)(2u << (2 * p));
			}
			ql[32 * p + l] = (uint8_t)(a | (c << 4));
		}
	}
}

void qa_quantize_q5_K(const float *src, void *dst, size_t n)
{
	const int lanes = path_lanes(QA_QUANT_K_AUTO);
	uint8_t *out = dst;
	for (size_t b = 0; b < n / SUPER; ++b)
		q5k_encode_block(src + b * SUPER, out + b * Q5K_BYTES, lanes);
}

void qa_dequantize_q5_K(const void *src, float *dst, size_t n)
{
	const uint8_t *in = src;
	for (size_t b = 0; b < n / SUPER; ++b) {
		const uint8_t *blk = in + b * Q5K_BYTES;
		const float d = qa_fp16_to_fp32(qa_load_le16(blk + 0));
		const float dmin = qa_fp16_to_fp32(qa_load_le16(blk + 2));
		const uint8_t *packed = blk + 4;
		const uint8_t *qh = blk + 16;
		const uint8_t *ql = blk + 48;
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
				int v = ((q[l] >> shift) & 0xF) + ((qh[l] & hbit) ? 16 : 0);
				y[32 * g + l] = dg * v - mg;
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* q6_K: 16 groups of 16, symmetric 6-bit, int8 group scales           */
/* ------------------------------------------------------------------ */

static void q6k_encode_block(const float *x, uint8_t *out, int lanes)
{
	int8_t lev[SUPER];
	float scale[16];

	fit_sym_groups(lanes, x, false, lev, scale);
	q6k_finish(x, lev, scale, out);
}

/*
 * The back half of both q6_K encoders: from the fitted group scales and
 * levels, quantize the scales to int8 against d, requantize and write.
 */
static void q6k_finish(const float *x, int8_t lev[SUPER], const float scale[16], uint8_t *out)
{
	int8_t sc[16];
	float max_scale = 0;
	float max_abs = 0;
	for (int g = 0; g < 16; ++g) {
		float a = fabsf(scale[g]);
		if (a > max_abs) {
			max_abs = a;
			max_scale = scale[g];
		}
	}

	if (max_abs < TINY_GROUP) {
		/* An all-zero super-block encodes as all-zero bytes. */
		memset(out, 0, Q6K_BYTES);
		qa_store_le16(out + 208, qa_fp32_to_fp16(0.f));
		return;
	}

	float inv = -128.f / max_scale;
	uint16_t d_h = qa_fp32_to_fp16(1 / inv);
	for (int g = 0; g < 16; ++g) {
		int l = round_magic(inv * scale[g]);
		sc[g] = (int8_t)(l < 127 ? l : 127);
	}

	for (int g = 0; g < 16; ++g) {
		float d = qa_fp16_to_fp32(d_h) * sc[g];
		if (!d)
			continue;
		for (int i = 0; i < 16; ++i) {
			int l = round_magic(x[16 * g + i] / d);
			lev[16 * g + i] = (int8_t)(clamp_int(l, -32, 31) + 32);
		}
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

void qa_quantize_q6_K(const float *src, void *dst, size_t n)
{
	const int lanes = path_lanes(QA_QUANT_K_AUTO);
	uint8_t *out = dst;
	for (size_t b = 0; b < n / SUPER; ++b)
		q6k_encode_block(src + b * SUPER, out + b * Q6K_BYTES, lanes);
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
 * does qa_quantize_rows_*: the NULL case is qa_quantize_*.  Only scalar
 * code here: these paths run for importance-matrix audits only.
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

static void q2k_encode_block_w(const float *x, const float *qw, uint8_t *out)
{
	uint8_t lev[SUPER];
	float w[16], sw[16], scale[16], negmin[16];
	uint8_t ls[16], lm[16], packed[16];

	float sigma2 = sum_squares(x, SUPER) / SUPER;
	for (int g = 0; g < 16; ++g) {
		sw[g] = group_weights(x + 16 * g, qw + 16 * g, sigma2, 16, w);
		scale[g] = qa_quant_fit_affine(16, 3, x + 16 * g, w, lev + 16 * g, &negmin[g],
		                               -0.9f, 0.05f, 36, false);
	}
	float dm = qa_quant_fit_positive(16, 15, scale, ls, sw);
	float mm = qa_quant_fit_positive(16, 15, negmin, lm, sw);
	uint16_t d_h = qa_fp32_to_fp16(dm);
	uint16_t dmin_h = qa_fp32_to_fp16(mm);
	dm = qa_fp16_to_fp32(d_h);
	mm = qa_fp16_to_fp32(dmin_h);
	for (int g = 0; g < 16; ++g)
		packed[g] = (uint8_t)(ls[g] | (lm[g] << 4));

	for (int g = 0; g < 16; ++g) {
		const float d = dm * (packed[g] & 0xF);
		if (!d)
			continue;
		const float m = mm * (packed[g] >> 4);
		for (int i = 0; i < 16; ++i) {
			int l = round_magic((x[16 * g + i] + m) / d);
			lev[16 * g + i] = (uint8_t)clamp_int(l, 0, 3);
		}
	}
	memcpy(out, packed, 16);
	pack_2bit(out + 16, lev);
	qa_store_le16(out + 80, d_h);
	qa_store_le16(out + 82, dmin_h);
}

static void q3k_encode_block_w(const float *x, const float *qw, uint8_t *out)
{
	int8_t lev[SUPER];
	float w[16], sw[16], scale[16];
	int8_t ls[16];
	uint8_t sc[12];

	float sigma2 = 2 * sum_squares(x, SUPER) / SUPER;
	for (int g = 0; g < 16; ++g) {
		sw[g] = group_weights(x + 16 * g, qw + 16 * g, sigma2, 16, w);
		scale[g] = qa_quant_fit_symmetric(16, 4, x + 16 * g, lev + 16 * g, w);
	}
	/* The group scales get their own weighted symmetric fit, 6 bits (+32). */
	memset(sc, 0, sizeof sc);
	float d_block = qa_quant_fit_symmetric(16, 32, scale, ls, sw);
	for (int g = 0; g < 16; ++g) {
		int l = ls[g];
		if (g < 8)
			sc[g] = (uint8_t)(l & 0xF);
		else
			sc[g - 8] |= (uint8_t)((l & 0xF) << 4);
		l >>= 4;
		sc[g % 4 + 8] |= (uint8_t)(l << (2 * (g / 4)));
	}
	q3k_finish(x, lev, sc, qa_fp32_to_fp16(d_block), out);
}

/* q4_K (nmax 15) and q5_K (nmax 31), weighted: levels, scale bytes, factors. */
static void affine32_encode_w(const float *x, const float *qw, int nmax, uint8_t lev[SUPER],
                              uint8_t packed[12], uint16_t *d_h, uint16_t *dmin_h)
{
	float w[32], sw[8], scale[8], negmin[8];
	uint8_t ls[8], lm[8];

	float sigma2 = 2 * sum_squares(x, SUPER) / SUPER;
	for (int g = 0; g < 8; ++g) {
		sw[g] = group_weights(x + 32 * g, qw + 32 * g, sigma2, 32, w);
		scale[g] = qa_quant_fit_affine(32, nmax, x + 32 * g, w, lev + 32 * g, &negmin[g],
		                               -0.9f, 0.05f, 36, false);
	}
	float d_block = qa_quant_fit_positive(8, 63, scale, ls, sw);
	float m_block = qa_quant_fit_positive(8, 63, negmin, lm, sw);
	if (nmax == 31) {
		/* q5_K caps the 6-bit levels (q4_K stores them as they are) */
		for (int g = 0; g < 8; ++g) {
			ls[g] = ls[g] < 63 ? ls[g] : 63;
			lm[g] = lm[g] < 63 ? lm[g] : 63;
		}
	}
	pack_scale_min(packed, ls, lm);
	*d_h = qa_fp32_to_fp16(d_block);
	*dmin_h = qa_fp32_to_fp16(m_block);
	affine32_requantize(x, nmax, packed, *d_h, *dmin_h, lev);
}

static void q4k_encode_block_w(const float *x, const float *qw, uint8_t *out)
{
	uint8_t lev[SUPER], packed[12];
	uint16_t d_h, dmin_h;
	affine32_encode_w(x, qw, 15, lev, packed, &d_h, &dmin_h);
	q4k_write(lev, packed, d_h, dmin_h, out);
}

static void q5k_encode_block_w(const float *x, const float *qw, uint8_t *out)
{
	uint8_t lev[SUPER], packed[12];
	uint16_t d_h, dmin_h;
	affine32_encode_w(x, qw, 31, lev, packed, &d_h, &dmin_h);
	q5k_write(lev, packed, d_h, dmin_h, out);
}

static void q6k_encode_block_w(const float *x, const float *qw, uint8_t *out)
{
	int8_t lev[SUPER];
	float scale[16];
	/* q6_K weights its group fits by the importance alone (no sigma term). */
	for (int g = 0; g < 16; ++g)
		scale[g] = qa_quant_fit_symmetric(16, 32, x + 16 * g, lev + 16 * g, qw + 16 * g);
	q6k_finish(x, lev, scale, out);
}

typedef void (*block_w_fn)(const float *x, const float *qw, uint8_t *out);

/* Rows of super-blocks; block b of a row takes the weights at column 256*b. */
static void rows_w(block_w_fn enc, size_t bytes, const float *src, void *dst, size_t nrow,
                   size_t n_per_row, const float *qw)
{
	uint8_t *out = dst;
	for (size_t r = 0; r < nrow; ++r)
		for (size_t b = 0; b < n_per_row / SUPER; ++b, out += bytes)
			enc(src + r * n_per_row + b * SUPER, qw + b * SUPER, out);
}

void qa_quantize_rows_q2_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw)
{
	if (!qw)
		qa_quantize_q2_K(src, dst, nrow * n_per_row);
	else
		rows_w(q2k_encode_block_w, Q2K_BYTES, src, dst, nrow, n_per_row, qw);
}

void qa_quantize_rows_q3_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw)
{
	if (!qw)
		qa_quantize_q3_K(src, dst, nrow * n_per_row);
	else
		rows_w(q3k_encode_block_w, Q3K_BYTES, src, dst, nrow, n_per_row, qw);
}

void qa_quantize_rows_q4_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw)
{
	if (!qw)
		qa_quantize_q4_K(src, dst, nrow * n_per_row);
	else
		rows_w(q4k_encode_block_w, Q4K_BYTES, src, dst, nrow, n_per_row, qw);
}

void qa_quantize_rows_q5_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw)
{
	if (!qw)
		qa_quantize_q5_K(src, dst, nrow * n_per_row);
	else
		rows_w(q5k_encode_block_w, Q5K_BYTES, src, dst, nrow, n_per_row, qw);
}

void qa_quantize_rows_q6_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw)
{
	if (!qw)
		qa_quantize_q6_K(src, dst, nrow * n_per_row);
	else
		rows_w(q6k_encode_block_w, Q6K_BYTES, src, dst, nrow, n_per_row, qw);
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
/* Choosing the implementation (tests)                                 */
/* ------------------------------------------------------------------ */

bool qa_quant_k_quantize(uint32_t type, enum qa_quant_k_path path, const float *src,
                         void *dst, size_t n)
{
	const int lanes = path_lanes(path);
	uint8_t *out = dst;
	if (lanes < 0)
		return false;
	switch (type) {
	case QA_TYPE_Q2_K:
		for (size_t b = 0; b < n / SUPER; ++b)
			q2k_encode_block(src + b * SUPER, out + b * Q2K_BYTES, lanes);
		return true;
	case QA_TYPE_Q3_K:
		for (size_t b = 0; b < n / SUPER; ++b)
			q3k_encode_block(src + b * SUPER, out + b * Q3K_BYTES, lanes);
		return true;
	case QA_TYPE_Q4_K:
		for (size_t b = 0; b < n / SUPER; ++b)
			q4k_encode_block(src + b * SUPER, out + b * Q4K_BYTES, lanes);
		return true;
	case QA_TYPE_Q5_K:
		for (size_t b = 0; b < n / SUPER; ++b)
			q5k_encode_block(src + b * SUPER, out + b * Q5K_BYTES, lanes);
		return true;
	case QA_TYPE_Q6_K:
		for (size_t b = 0; b < n / SUPER; ++b)
			q6k_encode_block(src + b * SUPER, out + b * Q6K_BYTES, lanes);
		return true;
	default:
		return false;
	}
}
