/*
 * quant_iq2.c - the 2-bit lattice i-quants iq2_xxs, iq2_xs and iq2_s,
 * quantized (with importance weights) and dequantized bit for bit as ggml's
 * quantize_iq2_xxs / _xs / _s and dequantize_row_iq2_*.
 *
 * All three cut a 256-element super-block into groups (32 elements for
 * iq2_xxs, 16 for the others) of 8-element subgroups.  A subgroup is stored
 * as signs plus one point of the type's grid (iq_grid.h) whose coordinates
 * are the magnitudes 1, 3, 5 in units of the group scale; the group scale is
 * a 4-bit multiple (2l+1)/4 of the super-block's fp16 scale d.
 *
 * Layouts (little-endian):
 *   iq2_xxs (66 bytes): d; then per group of 32 two u32: the four grid
 *     indices (a byte each) and four 7-bit sign indices with the 4-bit scale
 *     in bits 28..31.  The eighth sign of a subgroup is the parity of the
 *     other seven (qa_iq_sign_byte).
 *   iq2_xs (74 bytes): d; 32 u16, per subgroup a 9-bit grid index and a
 *     7-bit sign index; 8 bytes of 4-bit scales, one per group of 16.
 *   iq2_s (82 bytes): d; 32 low bytes of the 10-bit grid indices; 32 sign
 *     bytes (all eight signs explicit); 8 bytes of the indices' top 2 bits;
 *     8 bytes of 4-bit scales.
 *
 * The search per group: take magnitudes (with the parity rule, the
 * least important element of an odd-signed subgroup is stored with the
 * "wrong" sign and a negative magnitude), try a fan of trial scales, map
 * every subgroup to its nearest cube point and, when that point is off the
 * grid, to the best of its neighbour list under the trial scale, and keep
 * the least-squares scale of the trial that fits best; then re-map with that
 * scale and fit it once more.  Float operations follow the reference order.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cursor.h"
#include "fp16.h"
#include "iq_grid.h"
#include "quant_fit.h"
#include "quant.h"

#define QK 256
#define SUB 8            /* elements per grid point */
#define MAX_GROUP 32
#define LEVELS 3         /* magnitude codes 0..2, i.e. 1, 3, 5 */
#define EPS 1e-15f       /* groups below this are zero (iq2_xxs, iq2_xs) */
#define EPS_S 1e-8f      /* iq2_s */

/* How the three types differ. */
struct iq2_kind {
	enum qa_iq_grid_id grid;
	int group;         /* elements per group: 32 or 16 */
	int fan;           /* trial scales (5 + 0.1 t) / max for t in -fan..fan */
	bool parity;       /* 7 stored signs, the eighth implied (xxs, xs) */
	bool qp_start;     /* the fan is centred on a make_qp_quants fit (xxs) */
	bool refit_all;    /* re-map every subgroup after the fan (xxs) or only off-grid ones */
	bool wide_sigma;   /* the spread term is twice the mean square (iq2_s) */
	float eps;
};

static const struct iq2_kind kind_xxs = { QA_IQ_GRID_IQ2XXS, 32, 6, true, true, true, false, EPS };
static const struct iq2_kind kind_xs = { QA_IQ_GRID_IQ2XS, 16, 9, true, false, false, false, EPS };
static const struct iq2_kind kind_s = { QA_IQ_GRID_IQ2S, 16, 9, false, false, false, true, EPS_S };

/* The result of fitting one group. */
struct iq2_fit {
	float scale;               /* >= 0; 0 for a group stored as zeros */
	uint16_t index[4];         /* grid index per subgroup */
	uint8_t signs[4];          /* sign bits per subgroup (7 with parity, else 8) */
};

/*
 * ggml's make_qp_quants for n <= MAX_GROUP magnitudes and levels 0..nmax
 * (qa_quant_fit_positive, which the weighted k-quants share): the scale of a
 * weighted fit with a 9-point scale fan and up to 5 rounds of coordinate
 * descent.  The levels are kept as bytes, as the reference keeps them: a
 * level computed from a negative magnitude wraps to 256 + l where the
 * reference reads it back from that byte, and is used as l where it reads
 * the int.  Only the returned scale is used by the caller.
 */
static float qp_scale(int n, int nmax, const float *x, const float *w)
{
	uint8_t L[MAX_GROUP];
	return qa_quant_fit_positive(n, nmax, x, L, w);
}

/*
 * Map the 8 magnitudes x of a subgroup to level codes under inverse scale
 * inv (code = round((inv*x - 1) / 2), clamped to 0..2) and return the cube
 * index they form; the codes go to L.
 */
static unsigned cube_point(const float *x, float inv, int8_t *L)
{
	unsigned u = 0;
	for (int i = 0; i < SUB; i++) {
		int l = qa_iq_nearest_int(0.5f * (inv * x[i] - 1));
		l = l < 0 ? 0 : l > LEVELS - 1 ? LEVELS - 1 : l;
		L[i] = (int8_t)l;
		u |= (unsigned)l << (2 * i);
	}
	return u;
}

/*
 * The grid point for cube point u: u itself when on the grid, else the
 * neighbour with the least weighted squared error sum w*(scale*q - x)^2
 * (q the odd position 2c+1; the first of equals wins, the first neighbour
 * when no error is below FLT_MAX), found by a plain loop over the list or,
 * fast, by qa_iq_grid_search (the same errors, tabulated).  L receives the
 * point's codes.
 */
struct iq2_ctx {
	const struct qa_iq_grid *g;
	bool fast, vec;
};

static struct iq2_ctx iq2_ctx_of(enum qa_iq_grid_id grid, bool fast)
{
	struct iq2_ctx cx = { qa_iq_grid_get(grid), fast, fast && qa_iq_grid_vec() };
	return cx;
}

static unsigned snap(const struct iq2_ctx *cx, unsigned u, const float *x, const float *w,
                     float scale, int8_t *L)
{
	static const float pos[3] = { 1, 3, 5 };
	const struct qa_iq_grid *g = cx->g;
	int32_t m = g->map[u];
	if (m >= 0)
		return (unsigned)m;
	const uint16_t *list = g->neighbours + (-m - 1);
	long p = -1;
	if (cx->fast) {
		p = qa_iq_grid_search(g, list, x, w, scale, pos, cx->vec);
	} else {
		float best = FLT_MAX;
		for (unsigned j = 1; j <= list[0]; j++) {
			uint16_t c = g->codes[list[j]];
			float d2 = 0;
			for (int i = 0; i < SUB; i++) {
				float q = (float)(2 * ((c >> (2 * i)) & 3) + 1);
				float diff = scale * q - x[i];
				d2 += w[i] * diff * diff;
			}
			if (d2 < best) {
				best = d2;
				p = list[j];
			}
		}
	}
	unsigned pick = p < 0 ? list[1] : (unsigned)p;
	uint16_t c = g->codes[pick];
	for (int i = 0; i < SUB; i++)
		L[i] = (int8_t)((c >> (2 * i)) & 3);
	return pick;
}

/* sum w*x*q and sum w*q*q over n elements with q = 2L+1. */
static void level_sums(int n, const float *w, const float *x, const int8_t *L, float *sqx, float *sqq)
{
	float a = 0, b = 0;
	for (int i = 0; i < n; i++) {
		float q = (float)(2 * L[i] + 1);
		a += w[i] * x[i] * q;
		b += w[i] * q * q;
	}
	*sqx = a;
	*sqq = b;
}

/*
 * Fit one group of k->group elements xb with importance weights w (already
 * combined with the super-block's spread).  Returns false for a group that
 * is stored as all zeros (scale 0, no indices, no signs).
 */
static bool fit_group(const struct iq2_kind *k, const struct iq2_ctx *cx, const float *xb,
                      const float *w, struct iq2_fit *f)
{
	const int n = k->group, nsub = n / SUB;
	float mag[MAX_GROUP] = { 0 }, wsq[MAX_GROUP];
	int8_t L[MAX_GROUP], Lt[MAX_GROUP];
	bool on[4], on_t[4];

	for (int i = 0; i < n; i++)
		wsq[i] = sqrtf(w[i]);
	for (int s = 0; s < nsub; s++) {
		const float *x = xb + SUB * s;
		float *m = mag + SUB * s;
		unsigned bits = 0, neg = 0;
		for (int i = 0; i < SUB; i++) {
			if (x[i] >= 0) {
				m[i] = x[i];
			} else {
				m[i] = -x[i];
				bits |= 1u << i;
				neg++;
			}
		}
		if (k->parity && neg % 2) {
			/* Store the least important element with the sign flipped. */
			int imin = 0;
			float min = w[SUB * s] * x[0] * x[0];
			for (int i = 1; i < SUB; i++) {
				float a = w[SUB * s + i] * x[i] * x[i];
				if (a < min) {
					min = a;
					imin = i;
				}
			}
			m[imin] = -m[imin];
			bits ^= 1u << imin;
		}
		f->signs[s] = (uint8_t)(k->parity ? bits & 127 : bits);
	}
	float max = mag[0];
	for (int i = 1; i < n; i++)
		max = max > mag[i] ? max : mag[i];
	if (max < k->eps)
		return false;

	/* The fan of trial scales around the starting point. */
	float top = max, scale;
	if (k->qp_start) {
		scale = qp_scale(n, LEVELS + 1, mag, w);
		top = scale * LEVELS;
		if (top <= 0)
			return false;
	} else {
		scale = max / (2 * LEVELS - 1);
	}
	memset(L, 0, sizeof L);
	for (int s = 0; s < nsub; s++)
		on[s] = true;
	float best = 0;
	for (int t = -k->fan; t <= k->fan; t++) {
		float inv = (2 * LEVELS - 1 + t * 0.1f) / top;
		float trial = 1 / inv;
		for (int s = 0; s < nsub; s++) {
			unsigned u = cube_point(mag + SUB * s, inv, Lt + SUB * s);
			on_t[s] = cx->g->map[u] >= 0;
			if (!on_t[s])
				snap(cx, u, mag + SUB * s, wsq + SUB * s, trial, Lt + SUB * s);
		}
		float sqx, sqq;
		level_sums(n, w, mag, Lt, &sqx, &sqq);
		if (sqq > 0 && sqx * sqx > best * sqq) {
			scale = sqx / sqq;
			best = scale * sqx;
			memcpy(L, Lt, (size_t)n);
			memcpy(on, on_t, sizeof on);
		}
	}

	/* Re-map with the chosen scale and fit it once more. */
	bool remap = false;
	for (int s = 0; s < nsub; s++)
		remap |= k->refit_all || !on[s];
	if (remap && scale > 0) {
		float inv = 1 / scale;
		for (int s = 0; s < nsub; s++) {
			if (!k->refit_all && on[s])
				continue;
			unsigned u = cube_point(mag + SUB * s, inv, L + SUB * s);
			snap(cx, u, mag + SUB * s, wsq + SUB * s, scale, L + SUB * s);
		}
		float sqx, sqq;
		level_sums(n, w, mag, L, &sqx, &sqq);
		if (sqq > 0)
			scale = sqx / sqq;
	}
	if (scale < 0) {
		/* Not expected; keep the scale positive by flipping every sign. */
		scale = -scale;
		for (int s = 0; s < nsub; s++)
			f->signs[s] = (uint8_t)(k->parity ? ~f->signs[s] & 127 : ~f->signs[s]);
	}
	for (int s = 0; s < nsub; s++) {
		unsigned u = 0;
		for (int i = 0; i < SUB; i++)
			u |= (unsigned)L[SUB * s + i] << (2 * i);
		/* Every path above ends on a grid point, so the map hits. */
		int32_t m = cx->g->map[u];
		f->index[s] = (uint16_t)(m >= 0 ? m : 0);
	}
	f->scale = scale;
	return true;
}

/*
 * The element weights of super-block x: with importance weights qw,
 * qw * sqrt(sigma2 + x^2); without (iq2_s only), sigma2/4 + x^2, where
 * sigma2 is the block's mean square (iq2_s: twice it).
 */
static void block_weights(const struct iq2_kind *k, const float *x, const float *qw, float *w)
{
	float sumx2 = 0;
	for (int i = 0; i < QK; i++)
		sumx2 += x[i] * x[i];
	float sigma2 = k->wide_sigma ? 2 * sumx2 / QK : sumx2 / QK;
	for (int i = 0; i < QK; i++)
		w[i] = qw ? qw[i] * sqrtf(sigma2 + x[i] * x[i]) : 0.25f * sigma2 + x[i] * x[i];
}

/* The 4-bit code of a group scale under super-block inverse scale inv. */
static unsigned scale_code(float inv, float scale)
{
	int l = qa_iq_nearest_int(0.5f * (inv * scale - 1));
	return (unsigned)(l < 0 ? 0 : l > 15 ? 15 : l);
}

static void quantize_block(const struct iq2_kind *k, const struct iq2_ctx *cx, const float *x,
                           const float *qw, uint8_t *out, size_t nbytes)
{
	float w[QK];
	struct iq2_fit fit[QK / 16];
	bool stored[QK / 16];
	const int ngroups = QK / k->group;
	float max_scale = 0;

	block_weights(k, x, qw, w);
	for (int gi = 0; gi < ngroups; gi++) {
		stored[gi] = fit_group(k, cx, x + k->group * gi, w + k->group * gi, &fit[gi]);
		if (!stored[gi])
			fit[gi].scale = 0;
		max_scale = max_scale > fit[gi].scale ? max_scale : fit[gi].scale;
	}
	memset(out, 0, nbytes);
	if (!max_scale)
		return;
	float d = max_scale / 31;
	qa_store_le16(out, qa_fp32_to_fp16(k == &kind_s ? d * 0.9875f : d));
	float inv = 1 / d;

	for (int gi = 0; gi < ngroups; gi++) {
		const struct iq2_fit *f = &fit[gi];
		unsigned sc = scale_code(inv, f->scale);
		if (k == &kind_xxs) {
			uint32_t idx = 0, sg = (uint32_t)sc << 28;
			for (int s = 0; s < 4 && stored[gi]; s++) {
				idx |= (uint32_t)f->index[s] << (8 * s);
				sg |= (uint32_t)f->signs[s] << (7 * s);
			}
			qa_store_le32(out + 2 + 8 * gi, idx);
			qa_store_le32(out + 2 + 8 * gi + 4, sg);
			continue;
		}
		out[k == &kind_xs ? 66 + gi / 2 : 74 + gi / 2] |= (uint8_t)(sc << (4 * (gi % 2)));
		if (!stored[gi])
			continue;
		for (int s = 0; s < 2; s++) {
			int i8 = 2 * gi + s;
			if (k == &kind_xs) {
				qa_store_le16(out + 2 + 2 * i8, (uint16_t)(f->index[s] | (f->signs[s] << 9)));
			} else {
				out[2 + i8] = (uint8_t)(f->index[s] & 255);
				out[34 + i8] = f->signs[s];
				out[66 + i8 / 4] |= (uint8_t)((f->index[s] >> 8) << (2 * (i8 % 4)));
			}
		}
	}
}

static void quantize_rows(const struct iq2_kind *k, size_t nbytes, const float *src, void *dst,
                          size_t nrow, size_t n_per_row, const float *qw, bool fast)
{
	const struct iq2_ctx cx = iq2_ctx_of(k->grid, fast);
	uint8_t *out = dst;
	for (size_t r = 0; r < nrow; r++)
		for (size_t b = 0; b < n_per_row / QK; b++, src += QK, out += nbytes)
			quantize_block(k, &cx, src, qw ? qw + QK * b : NULL, out, nbytes);
}

void qa_quantize_rows_iq2_xxs(const float *src, void *dst, size_t nrow, size_t n_per_row,
                              const float *qw)
{
	if (qw)
		quantize_rows(&kind_xxs, 66, src, dst, nrow, n_per_row, qw, true);
	else
		memset(dst, 0, nrow * (n_per_row / QK) * 66);
}

void qa_quantize_rows_iq2_xs(const float *src, void *dst, size_t nrow, size_t n_per_row,
                             const float *qw)
{
	if (qw)
		quantize_rows(&kind_xs, 74, src, dst, nrow, n_per_row, qw, true);
	else
		memset(dst, 0, nrow * (n_per_row / QK) * 74);
}

void qa_quantize_rows_iq2_s(const float *src, void *dst, size_t nrow, size_t n_per_row,
                            const float *qw)
{
	quantize_rows(&kind_s, 82, src, dst, nrow, n_per_row, qw, true);
}

void qa_quantize_iq2_s(const float *src, void *dst, size_t n)
{
	quantize_rows(&kind_s, 82, src, dst, 1, n, NULL, true);
}

/* Decode one subgroup: 8 values db * level * sign. */
static void decode_sub(const uint8_t *row, uint8_t signs, float db, float *y)
{
	for (int j = 0; j < SUB; j++)
		y[j] = db * (float)row[j] * (signs >> j & 1 ? -1.f : 1.f);
}

void qa_dequantize_iq2_xxs(const void *src, float *dst, size_t n)
{
	const struct qa_iq_grid *g = qa_iq_grid_get(QA_IQ_GRID_IQ2XXS);
	const uint8_t *in = src;
	for (size_t b = 0; b < n / QK; b++, in += 66) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		for (int gi = 0; gi < 8; gi++) {
			const uint8_t *q = in + 2 + 8 * gi;
			uint32_t sg = qa_load_le32(q + 4);
			float db = d * (0.5f + (float)(sg >> 28)) * 0.25f;
			for (int s = 0; s < 4; s++, dst += SUB)
				decode_sub(g->bytes[q[s]], qa_iq_sign_byte(sg >> (7 * s)), db, dst);
		}
	}
}

void qa_dequantize_iq2_xs(const void *src, float *dst, size_t n)
{
	const struct qa_iq_grid *g = qa_iq_grid_get(QA_IQ_GRID_IQ2XS);
	const uint8_t *in = src;
	for (size_t b = 0; b < n / QK; b++, in += 74) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		for (int gi = 0; gi < 8; gi++) {
			uint8_t sc = in[66 + gi];
			float db[2] = { d * (0.5f + (float)(sc & 0xf)) * 0.25f, d * (0.5f + (float)(sc >> 4)) * 0.25f };
			for (int s = 0; s < 4; s++, dst += SUB) {
				uint16_t v = qa_load_le16(in + 2 + 2 * (4 * gi + s));
				decode_sub(g->bytes[v & 511], qa_iq_sign_byte(v >> 9), db[s / 2], dst);
			}
		}
	}
}

void qa_dequantize_iq2_s(const void *src, float *dst, size_t n)
{
	const struct qa_iq_grid *g = qa_iq_grid_get(QA_IQ_GRID_IQ2S);
	const uint8_t *in = src;
	for (size_t b = 0; b < n / QK; b++, in += 82) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		for (int gi = 0; gi < 8; gi++) {
			uint8_t sc = in[74 + gi];
			float db[2] = { d * (0.5f + (float)(sc & 0xf)) * 0.25f, d * (0.5f + (float)(sc >> 4)) * 0.25f };
			for (int s = 0; s < 4; s++, dst += SUB) {
				unsigned i8 = 4 * gi + s;
				unsigned idx = in[2 + i8] | ((unsigned)(in[66 + gi] >> (2 * s)) & 3) << 8;
				decode_sub(g->bytes[idx], in[34 + i8], db[s / 2], dst);
			}
		}
	}
}

bool qa_quant_iq2_quantize_path(uint32_t type, bool fast, const float *src, void *dst, size_t nrow,
                                size_t n_per_row, const float *qw)
{
	const struct iq2_kind *k = type == QA_TYPE_IQ2_XXS ? &kind_xxs : type == QA_TYPE_IQ2_XS ? &kind_xs :
	                           type == QA_TYPE_IQ2_S ? &kind_s : NULL;
	if (!k || (!qw && k != &kind_s))
		return false;
	quantize_rows(k, k == &kind_xxs ? 66 : k == &kind_xs ? 74 : 82, src, dst, nrow, n_per_row, qw, fast);
	return true;
}
