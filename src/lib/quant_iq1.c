/*
 * quant_iq1.c - the ternary lattice i-quants iq1_s and iq1_m, quantized
 * (with importance weights) and dequantized bit for bit as ggml's
 * quantize_iq1_s / quantize_iq1_m and dequantize_row_iq1_s / _m.
 *
 * Both store 8-element subgroups as a point of the 2048-point iq1s grid,
 * whose coordinates are -1, 0, +1 (iq_grid.h), shifted by a delta of
 * +-1/8 and multiplied by an odd 3-bit multiple 2l+1 of the super-block
 * scale d.  A weight decodes to d*(2l+1)*(g + delta).
 *
 * Layouts (little-endian):
 *   iq1_s (50 bytes): fp16 d; 32 low bytes of the 11-bit grid indices;
 *     per group of 32 a u16 holding the four indices' top 3 bits (bits
 *     0..11), the scale l (bits 12..14) and the delta's sign (bit 15).
 *   iq1_m (56 bytes): 32 low index bytes; 16 bytes, per group of 16 the two
 *     indices' top bits (bits 0..2 and 4..6) and the two deltas' signs
 *     (bits 3 and 7); 8 bytes = four u16 holding the 3-bit scales of the
 *     16 groups in their low 12 bits and, in their top nibbles, the fp16
 *     super-block scale (nibble k of it in u16 k).
 *
 * The search per group is exact for the unconstrained problem: with three
 * levels, sorting the elements splits them into three runs, and every pair
 * of cut points (and every delta sign) is scored by its least-squares
 * scale.  When a subgroup's levels are not a grid point, it moves to the
 * best of the point's neighbours at that scale and the scale is refitted.
 * The fast path (the default) tabulates the error terms and, for iq1_m,
 * runs the cut-point search four delta patterns at a time with running
 * prefix sums: the same float operations in the same order per sum, so the
 * same bytes (checked against the scalar path by check_iq_grid).
 * Float operations follow the reference order; the sort is stable, as
 * glibc's qsort (a merge sort) is for these sizes.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cursor.h"
#include "fp16.h"
#include "iq_grid.h"
#include "quant.h"
#include "quant_x86.h"

#define QK 256
#define SUB 8
#define DELTA 0.125f
#define EPS_S 1e-12f
#define EPS_M 1e-7f
#define MAX_GROUP 32

/* The three levels shifted by +delta and by -delta. */
static const float lv_plus[3] = { -1 + DELTA, DELTA, 1 + DELTA };
static const float lv_minus[3] = { -1 - DELTA, -DELTA, 1 - DELTA };

/* Element order of a group by value, ties in index order. */
static void sort_order(const float *x, int n, int *order)
{
	for (int j = 0; j < n; j++) {
		int i = j;
		while (i > 0 && x[j] < x[order[i - 1]]) {
			order[i] = order[i - 1];
			i--;
		}
		order[i] = j;
	}
}

/* sum w*(scale*lv[c] - x)^2 over a subgroup for the grid point with codes c. */
static float point_error(uint16_t c, const float *x, const float *w, float scale, const float *lv)
{
	float d2 = 0;
	for (int i = 0; i < SUB; i++) {
		float diff = scale * lv[(c >> (2 * i)) & 3] - x[i];
		d2 += w[i] * diff * diff;
	}
	return d2;
}

/*
 * The grid point for the level codes L of a subgroup (codes 0..2): itself
 * when on the grid (on_grid untouched); else the neighbour with the least
 * point_error, the first of equals winning, and on_grid is cleared.  Should
 * every neighbour's error be infinite or NaN (only for inputs near the float
 * range), the whole grid is searched the same way, where ggml's fallback
 * reads out of bounds; failing that too, point 0.  L receives the point's
 * codes.
 */
static unsigned snap(const struct qa_iq_grid *g, int8_t *L, const float *x, const float *w,
                     float scale, const float *lv, bool *on_grid, bool fast)
{
	unsigned u = 0;
	for (int i = 0; i < SUB; i++)
		u |= (unsigned)L[i] << (2 * i);
	int32_t m = g->map[u];
	if (m >= 0)
		return (unsigned)m;
	*on_grid = false;
	const uint16_t *list = g->neighbours + (-m - 1);
	float best = FLT_MAX;
	long pick = -1;
	if (fast) {
		/* the same errors, tabulated (iq_grid.c) */
		pick = qa_iq_grid_search(g, list, x, w, scale, lv, qa_iq_grid_vec());
	} else {
		for (unsigned j = 1; j <= list[0]; j++) {
			float d2 = point_error(g->codes[list[j]], x, w, scale, lv);
			if (d2 < best) {
				best = d2;
				pick = list[j];
			}
		}
	}
	if (pick < 0) {
		for (unsigned j = 0; j < g->npoints; j++) {
			float d2 = point_error(g->codes[j], x, w, scale, lv);
			if (d2 < best) {
				best = d2;
				pick = j;
			}
		}
	}
	if (pick < 0)
		pick = 0;
	uint16_t c = g->codes[pick];
	for (int i = 0; i < SUB; i++)
		L[i] = (int8_t)((c >> (2 * i)) & 3);
	return (unsigned)pick;
}

/*
 * The scaled weights of a super-block: qw * sqrt(sigma2 + x^2) with sigma2
 * twice the mean square, or x^2 without importance weights (iq1_m only).
 */
static void block_weights(const float *x, const float *qw, float *w)
{
	float sumx2 = 0;
	for (int i = 0; i < QK; i++)
		sumx2 += x[i] * x[i];
	float sigma2 = 2 * sumx2 / QK;
	for (int i = 0; i < QK; i++)
		w[i] = qw ? qw[i] * sqrtf(sigma2 + x[i] * x[i]) : x[i] * x[i];
}

static float group_max(const float *x, int n)
{
	float max = fabsf(x[0]);
	for (int i = 1; i < n; i++)
		max = max > fabsf(x[i]) ? max : fabsf(x[i]);
	return max;
}

/* Level codes from the cut points: the i1 smallest get 0, up to i2 get 1, the rest 2. */
static void cut_levels(const int *order, int n, int i1, int i2, int8_t *L)
{
	for (int j = 0; j < n; j++)
		L[order[j]] = (int8_t)(j < i1 ? 0 : j < i2 ? 1 : 2);
}

/* ---------------------------------------------------------------- iq1_s */

/*
 * Fit a group of 32: returns its scale (0 for a group stored as zeros, in
 * which case nothing is written) and sets the delta sign (+1 or -1) and the
 * four grid indices.
 */
static bool fit_s(const struct qa_iq_grid *g, const float *xb, const float *w, float *scale_out,
                  int *shift_out, uint16_t *index, bool fast)
{
	const int n = 32;
	int order[MAX_GROUP];
	float sx[MAX_GROUP + 1 + 8] = { 0 }, sw[MAX_GROUP + 1 + 8] = { 0 }; /* padded for vector reads */
	int8_t L[MAX_GROUP];

	float max = group_max(xb, n);
	if (max < EPS_S)
		return false;
	sort_order(xb, n, order);
	for (int j = 0; j < n; j++) {
		int i = order[j];
		sx[j + 1] = sx[j] + w[i] * xb[i];
		sw[j + 1] = sw[j] + w[i];
	}
	float best = -FLT_MAX, scale = max;
	bool searched = false; /* the vector search ran */
	int b1 = -1, b2 = -1, shift = 0;
#if QA_QUANT_X86
	if (fast && qa_quant_x86_available(false)) {
		int sgn = -1;
		for (int i1 = 0; i1 <= n; i1++)
			qa_x86_iq1s_cuts(sx, sw, n, i1, lv_plus, lv_minus, &best, &scale, &b1, &b2, &sgn);
		shift = sgn < 0 ? 0 : sgn ? -1 : 1;
		searched = true;
	}
#endif
	for (int i1 = 0; i1 <= n && !searched; i1++) {
		for (int i2 = i1; i2 <= n; i2++) {
			for (int sgn = 0; sgn < 2; sgn++) {
				const float *lv = sgn ? lv_minus : lv_plus;
				float sqx = (sx[i1] - sx[0]) * lv[0] + (sx[i2] - sx[i1]) * lv[1] +
				            (sx[n] - sx[i2]) * lv[2];
				float sqq = (sw[i1] - sw[0]) * lv[0] * lv[0] + (sw[i2] - sw[i1]) * lv[1] * lv[1] +
				            (sw[n] - sw[i2]) * lv[2] * lv[2];
				if (sqq > 0 && sqx * sqx > best * sqq) {
					scale = sqx / sqq;
					best = scale * sqx;
					b1 = i1;
					b2 = i2;
					shift = sgn ? -1 : 1;
				}
			}
		}
	}
	if (b1 < 0 || b2 < 0 || shift == 0)
		return false;
	cut_levels(order, n, b1, b2, L);
	if (scale < 0) {
		for (int j = 0; j < n; j++)
			L[j] = (int8_t)(2 - L[j]);
		scale = -scale;
		shift = -shift;
	}
	const float *lv = shift == 1 ? lv_plus : lv_minus;
	bool on_grid = true;
	for (int s = 0; s < n / SUB; s++)
		index[s] = (uint16_t)snap(g, L + SUB * s, xb + SUB * s, w + SUB * s, scale, lv, &on_grid, fast);
	if (!on_grid) {
		float sqx = 0, sqq = 0;
		for (int i = 0; i < n; i++) {
			float q = lv[L[i]];
			sqx += w[i] * q * xb[i];
			sqq += w[i] * q * q;
		}
		if (sqx > 0 && sqq > 0)
			scale = sqx / sqq;
	}
	*scale_out = scale;
	*shift_out = shift;
	return true;
}

static void quantize_block_s(const struct qa_iq_grid *g, const float *x, const float *qw, uint8_t *out,
                             bool fast)
{
	float w[QK], scales[8];
	int shifts[8];
	uint16_t qh[8];
	float max_scale = 0;

	memset(out, 0, 50);
	block_weights(x, qw, w);
	for (int ib = 0; ib < 8; ib++) {
		uint16_t index[4];
		scales[ib] = 0;
		shifts[ib] = 1;
		qh[ib] = 0;
		if (!fit_s(g, x + 32 * ib, w + 32 * ib, &scales[ib], &shifts[ib], index, fast))
			continue;
		for (int s = 0; s < 4; s++) {
			out[2 + 4 * ib + s] = (uint8_t)(index[s] & 255);
			qh[ib] |= (uint16_t)((index[s] >> 8) << (3 * s));
		}
		max_scale = max_scale > scales[ib] ? max_scale : scales[ib];
	}
	if (max_scale) {
		float d = max_scale / 15;
		qa_store_le16(out, qa_fp32_to_fp16(d * 1.125f));
		float inv = 1 / d;
		for (int ib = 0; ib < 8; ib++) {
			int l = qa_iq_nearest_int(0.5f * (inv * scales[ib] - 1));
			l = l < 0 ? 0 : l > 7 ? 7 : l;
			if (shifts[ib] == -1)
				l |= 8;
			qh[ib] |= (uint16_t)(l << 12);
		}
	}
	for (int ib = 0; ib < 8; ib++)
		qa_store_le16(out + 34 + 2 * ib, qh[ib]);
}

static void rows_s(const float *src, void *dst, size_t nrow, size_t n_per_row, const float *qw,
                   bool fast)
{
	uint8_t *out = dst;
	if (!qw) {
		memset(dst, 0, nrow * (n_per_row / QK) * 50);
		return;
	}
	const struct qa_iq_grid *g = qa_iq_grid_get(QA_IQ_GRID_IQ1S);
	for (size_t r = 0; r < nrow; r++)
		for (size_t b = 0; b < n_per_row / QK; b++, src += QK, out += 50)
			quantize_block_s(g, src, qw + QK * b, out, fast);
}

void qa_quantize_rows_iq1_s(const float *src, void *dst, size_t nrow, size_t n_per_row,
                            const float *qw)
{
	rows_s(src, dst, nrow, n_per_row, qw, true);
}

/* ---------------------------------------------------------------- iq1_m */

/*
 * The delta table of subgroup s (0 or 1) under shift pattern k: bit 1 of k
 * is the first subgroup's delta sign, bit 0 the second's (set: -delta).
 */
static const float *lv_of(int k, int s)
{
	int neg = s == 0 ? k >> 1 : k & 1;
	return neg ? lv_minus : lv_plus;
}

/*
 * The cut-point search of fit_m, fast: every term w*v*x and w*v*v is
 * tabulated per sorted position, level and delta pattern, the four patterns
 * are summed side by side, and the sums over the first runs are carried
 * from one pair of cut points to the next instead of being restarted.  Each
 * sum still adds the same terms from position 0 upwards, so every float is
 * the scalar search's; so is the order of the comparisons.
 */
static void search_m_fast(const float *xb, const float *w, const int *order, float *best,
                          float *scale, int *b1, int *b2, int *bk)
{
	enum { N = 16 };
	float tx[N][3][4], tq[N][3][4];
	for (int j = 0; j < N; j++) {
		int i = order[j];
		for (int c = 0; c < 3; c++) {
			for (int k = 0; k < 4; k++) {
				float v = lv_of(k, i >= N / 2)[c];
				tx[j][c][k] = w[i] * v * xb[i];
				tq[j][c][k] = w[i] * v * v;
			}
		}
	}
	float p0x[4] = { 0 }, p0q[4] = { 0 }; /* level 0 over positions < i1 */
	for (int i1 = 0; i1 <= N; i1++) {
		float px[4], pq[4];            /* levels 0 and 1 over positions < i2 */
		memcpy(px, p0x, sizeof px);
		memcpy(pq, p0q, sizeof pq);
		for (int i2 = i1; i2 <= N; i2++) {
			float sx[4], sq[4];
			memcpy(sx, px, sizeof sx);
			memcpy(sq, pq, sizeof sq);
			for (int j = i2; j < N; j++) {
				for (int k = 0; k < 4; k++) {
					sx[k] += tx[j][2][k];
					sq[k] += tq[j][2][k];
				}
			}
			for (int k = 0; k < 4; k++) {
				if (sq[k] > 0 && sx[k] * sx[k] > *best * sq[k]) {
					*scale = sx[k] / sq[k];
					*best = *scale * sx[k];
					*b1 = i1;
					*b2 = i2;
					*bk = k;
				}
			}
			if (i2 < N) {
				for (int k = 0; k < 4; k++) {
					px[k] += tx[i2][1][k];
					pq[k] += tq[i2][1][k];
				}
			}
		}
		if (i1 < N) {
			for (int k = 0; k < 4; k++) {
				p0x[k] += tx[i1][0][k];
				p0q[k] += tq[i1][0][k];
			}
		}
	}
}

/*
 * Fit a group of 16: returns false for a group stored as zeros; else sets
 * the scale, the shift pattern (0..3) and the two grid indices.
 */
static bool fit_m(const struct qa_iq_grid *g, const float *xb, const float *w, float *scale_out,
                  int *k_out, uint16_t *index, bool fast)
{
	const int n = 16;
	int order[16];
	int8_t L[16];

	float max = group_max(xb, n);
	if (max < EPS_M)
		return false;
	sort_order(xb, n, order);
	float best = -FLT_MAX, scale = max;
	int b1 = -1, b2 = -1, bk = -1;
	if (fast)
		search_m_fast(xb, w, order, &best, &scale, &b1, &b2, &bk);
	for (int i1 = 0; i1 <= n && !fast; i1++) {
		for (int i2 = i1; i2 <= n; i2++) {
			float sqx[4] = { 0 }, sqq[4] = { 0 };
			for (int j = 0; j < n; j++) {
				int i = order[j], c = j < i1 ? 0 : j < i2 ? 1 : 2;
				for (int k = 0; k < 4; k++) {
					float v = lv_of(k, i >= n / 2)[c];
					sqx[k] += w[i] * v * xb[i];
					sqq[k] += w[i] * v * v;
				}
			}
			for (int k = 0; k < 4; k++) {
				if (sqq[k] > 0 && sqx[k] * sqx[k] > best * sqq[k]) {
					scale = sqx[k] / sqq[k];
					best = scale * sqx[k];
					b1 = i1;
					b2 = i2;
					bk = k;
				}
			}
		}
	}
	if (b1 < 0 || b2 < 0 || bk < 0)
		return false;
	cut_levels(order, n, b1, b2, L);
	if (scale < 0) {
		for (int j = 0; j < n; j++)
			L[j] = (int8_t)(2 - L[j]);
		scale = -scale;
		bk = 3 - bk; /* both delta signs flip */
	}
	bool on_grid = true;
	for (int s = 0; s < 2; s++)
		index[s] = (uint16_t)snap(g, L + SUB * s, xb + SUB * s, w + SUB * s, scale, lv_of(bk, s),
		                          &on_grid, fast);
	if (!on_grid) {
		float sqx = 0, sqq = 0;
		for (int i = 0; i < n; i++) {
			float q = lv_of(bk, i / SUB)[L[i]];
			sqx += w[i] * q * xb[i];
			sqq += w[i] * q * q;
		}
		if (sqx > 0 && sqq > 0)
			scale = sqx / sqq;
	}
	*scale_out = scale;
	*k_out = bk;
	return true;
}

static void quantize_block_m(const struct qa_iq_grid *g, const float *x, const float *qw, uint8_t *out,
                             bool fast)
{
	static const uint8_t delta_bits[4] = { 0x00, 0x80, 0x08, 0x88 };
	float w[QK], scales[16];
	int shifts[16];
	uint16_t sc[4] = { 0 };
	uint8_t *qs = out, *qh = out + 32;
	float max_scale = 0;

	memset(out, 0, 56);
	block_weights(x, qw, w);
	for (int ib = 0; ib < 16; ib++) {
		uint16_t index[2];
		scales[ib] = 0;
		shifts[ib] = 0;
		if (!fit_m(g, x + 16 * ib, w + 16 * ib, &scales[ib], &shifts[ib], index, fast))
			continue;
		qs[2 * ib] = (uint8_t)(index[0] & 255);
		qs[2 * ib + 1] = (uint8_t)(index[1] & 255);
		qh[ib] = (uint8_t)((index[0] >> 8) | ((index[1] >> 8) << 4));
		max_scale = max_scale > scales[ib] ? max_scale : scales[ib];
	}
	if (!max_scale)
		return;

	/* Group scale codes, then the super-block scale refitted to them. */
	float d = max_scale / 15;
	float inv = 1 / d;
	float sqx = 0, sqq = 0;
	for (int ib = 0; ib < 16; ib++) {
		int l = qa_iq_nearest_int(0.5f * (inv * scales[ib] - 1));
		l = l < 0 ? 0 : l > 7 ? 7 : l;
		sc[ib / 4] |= (uint16_t)(l << (3 * (ib % 4)));
		qh[ib] |= delta_bits[shifts[ib]];
		const float *xb = x + 16 * ib, *wb = w + 16 * ib;
		for (int s = 0; s < 2; s++) {
			const float *lv = lv_of(shifts[ib], s);
			unsigned idx = qs[2 * ib + s] | (((unsigned)qh[ib] << (8 - 4 * s)) & 0x700);
			uint16_t c = g->codes[idx];
			for (int j = 0; j < SUB; j++) {
				float q = lv[(c >> (2 * j)) & 3] * (2 * l + 1);
				sqx += wb[SUB * s + j] * q * xb[SUB * s + j];
				sqq += wb[SUB * s + j] * q * q;
			}
		}
	}
	if (sqq > 0)
		d = sqx / sqq;
	uint16_t h = qa_fp32_to_fp16(d * 1.1125f);
	sc[0] |= (uint16_t)((h & 0x000f) << 12);
	sc[1] |= (uint16_t)((h & 0x00f0) << 8);
	sc[2] |= (uint16_t)((h & 0x0f00) << 4);
	sc[3] |= (uint16_t)(h & 0xf000);
	for (int i = 0; i < 4; i++)
		qa_store_le16(out + 48 + 2 * i, sc[i]);
}

static void rows_m(const float *src, void *dst, size_t nrow, size_t n_per_row, const float *qw,
                   bool fast)
{
	const struct qa_iq_grid *g = qa_iq_grid_get(QA_IQ_GRID_IQ1S);
	uint8_t *out = dst;
	for (size_t r = 0; r < nrow; r++)
		for (size_t b = 0; b < n_per_row / QK; b++, src += QK, out += 56)
			quantize_block_m(g, src, qw ? qw + QK * b : NULL, out, fast);
}

void qa_quantize_rows_iq1_m(const float *src, void *dst, size_t nrow, size_t n_per_row,
                            const float *qw)
{
	rows_m(src, dst, nrow, n_per_row, qw, true);
}

void qa_quantize_iq1_m(const float *src, void *dst, size_t n)
{
	qa_quantize_rows_iq1_m(src, dst, 1, n, NULL);
}

bool qa_quant_iq1_quantize_path(uint32_t type, bool fast, const float *src, void *dst, size_t nrow,
                                size_t n_per_row, const float *qw)
{
	if (type == QA_TYPE_IQ1_S && qw)
		rows_s(src, dst, nrow, n_per_row, qw, fast);
	else if (type == QA_TYPE_IQ1_M)
		rows_m(src, dst, nrow, n_per_row, qw, fast);
	else
		return false;
	return true;
}

/* ---------------------------------------------------------------- decoding */

static void decode_sub(const uint8_t *row, float dl, float delta, float *y)
{
	for (int j = 0; j < SUB; j++)
		y[j] = dl * ((float)(int8_t)row[j] + delta);
}

void qa_dequantize_iq1_s(const void *src, float *dst, size_t n)
{
	const struct qa_iq_grid *g = qa_iq_grid_get(QA_IQ_GRID_IQ1S);
	const uint8_t *in = src;
	for (size_t b = 0; b < n / QK; b++, in += 50) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		for (int ib = 0; ib < 8; ib++) {
			uint16_t qh = qa_load_le16(in + 34 + 2 * ib);
			float dl = d * (float)(2 * ((qh >> 12) & 7) + 1);
			float delta = qh & 0x8000 ? -DELTA : DELTA;
			for (int s = 0; s < 4; s++, dst += SUB) {
				unsigned idx = in[2 + 4 * ib + s] | (((unsigned)qh >> (3 * s)) & 7) << 8;
				decode_sub(g->bytes[idx], dl, delta, dst);
			}
		}
	}
}

void qa_dequantize_iq1_m(const void *src, float *dst, size_t n)
{
	const struct qa_iq_grid *g = qa_iq_grid_get(QA_IQ_GRID_IQ1S);
	const uint8_t *in = src;
	for (size_t b = 0; b < n / QK; b++, in += 56) {
		const uint8_t *qs = in, *qh = in + 32;
		uint16_t sc[4];
		for (int i = 0; i < 4; i++)
			sc[i] = qa_load_le16(in + 48 + 2 * i);
		uint16_t h = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
		                        (sc[3] & 0xf000));
		float d = qa_fp16_to_fp32(h);
		for (int ib = 0; ib < 16; ib++) {
			float dl = d * (float)(2 * ((sc[ib / 4] >> (3 * (ib % 4))) & 7) + 1);
			for (int s = 0; s < 2; s++, dst += SUB) {
				unsigned idx = qs[2 * ib + s] | (((unsigned)qh[ib] << (8 - 4 * s)) & 0x700);
				float delta = qh[ib] & (s ? 0x80 : 0x08) ? -DELTA : DELTA;
				decode_sub(g->bytes[idx], dl, delta, dst);
			}
		}
	}
}
