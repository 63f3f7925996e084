/*
 * quant_iq3.c - iq3_xxs and iq3_s, the 3-bit grid i-quants, reproduced bit
 * for bit from ggml's quantize_iq3_xxs / quantize_iq3_s (with and without
 * importance weights) and their dequantizers.
 *
 * Both cut a 256-element block into eight sub-blocks of 32 and each
 * sub-block into eight groups of 4 magnitudes, every group a point of a
 * fixed grid (iq3_grid.h) whose coordinates are levels l standing for
 * 2l + 1 times the sub-block scale; signs are stored separately.
 *
 * iq3_xxs (98 bytes): fp16 d, 64 bytes of 8-bit grid indices (sub-block i
 * in bytes 8i..8i+7), then per sub-block a little-endian uint32 holding four
 * 7-bit sign masks (bits 7k..7k+6 for elements 8k..8k+7; the eighth sign is
 * the parity of the other seven, so that every group of 8 has an even
 * number of minus signs) and a 4-bit scale s at bits 28..31.  An element
 * decodes to d * (0.5 + s) * 0.5 * byte * sign, byte being the grid's
 * decode byte (iq3_grid.h).
 *
 * iq3_s (110 bytes): fp16 d, 64 bytes with the low 8 bits of the 9-bit grid
 * indices, 8 bytes with their ninth bits (byte i for sub-block i, bit k for
 * group k), 32 bytes of full sign masks (one byte per 8 elements), then 4
 * bytes of 4-bit scales (sub-block 2i in the low nibble of byte i).  An
 * element decodes to d * (1 + 2s) * (2l + 1) * sign.
 *
 * Quantizing a sub-block: weights are x^2 without an importance matrix and
 * qw * sqrt(sigma2 + x^2) with one (sigma2 twice the block's mean square);
 * magnitudes are fitted against 31 (iq3_xxs) or 19 (iq3_s) trial inverse
 * scales (15 + 0.2 t) / max, each group rounded to its nearest cube point
 * and, when that point is off the grid, replaced by the neighbour of least
 * weighted error (weights sqrt(w)); the trial with the best weighted
 * least-squares fit wins, off-grid groups are re-searched at that scale,
 * and the scale is refitted.  The block scale d is the largest sub-block
 * scale / 31 (times a fudge factor, 1.0125 or 1.033), and each sub-block
 * scale is stored as the nearest s with (2s + 1) d.  The operation order,
 * tie-breaking and two oddities of the reference are kept: iq3_xxs fixes
 * the sign parity by flipping the element of least weighted square, and
 * iq3_s does not advance its index and sign output past an all-zero
 * sub-block (later sub-blocks are written in its place).
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cursor.h"
#include "fp16.h"
#include "iq3_grid.h"
#include "quant.h"
#include "quant_x86.h"

#define IQ3_BLOCK 256
#define IQ3_SUB 32
#define IQ3_NSUB (IQ3_BLOCK / IQ3_SUB)
#define IQ3_GROUPS (IQ3_SUB / 4)
#define IQ3_MAXL 7                 /* levels 0..7 */
#define XXS_BYTES 98
#define S_BYTES 110
#define XXS_EPS 1e-8f              /* iq3_xxs sub-blocks below this are zero */

/* Round to nearest, ties to even, through the 1.5 * 2^23 shift (|v| < 2^22). */
static int round_shift(float v)
{
	float s = v + 12582912.f;
	int32_t bits;
	memcpy(&bits, &s, sizeof bits);
	return (bits & 0x007fffff) - 0x00400000;
}

static int clamp_level(int l)
{
	return l < 0 ? 0 : (l > IQ3_MAXL ? IQ3_MAXL : l);
}

/* The level one magnitude rounds to under inverse scale id. */
static int8_t level_of(float id, float x)
{
	return (int8_t)clamp_level(round_shift(0.5f * (id * x - 1)));
}

static unsigned code_of(const int8_t *l)
{
	return (unsigned)l[0] | (unsigned)l[1] << 3 | (unsigned)l[2] << 6 | (unsigned)l[3] << 9;
}

/*
 * Among the neighbours of off-grid code u, the grid point nearest to the
 * group x (4 magnitudes) at the given scale under weights w (first one on
 * ties); its levels go to l.  Returns its grid index.
 */
static int best_neighbour(const struct qa_iq3_grid *g, bool simd, unsigned u, const float *x,
                          const float *w, float scale, int8_t *l)
{
	const uint16_t *nb = g->neighbours + (-g->map[u] - 1);
	float best = FLT_MAX;
	int idx = nb[1];
#if QA_QUANT_X86
	if (simd) {
		/* the same errors, 8 entries at a time (quant_x86.c) */
		const uint16_t *nc = g->neighbour_codes + (-g->map[u] - 1);
		int at = qa_x86_grid4_pick(x, w, scale, nc + 1, nc[0]);
		idx = nb[1 + (at < 0 ? 0 : at)];
		for (int i = 0; i < 4; i++)
			l[i] = (int8_t)((g->pos[idx][i] - 1) / 2);
		return idx;
	}
#else
	(void)simd;
#endif
	for (unsigned j = 1; j <= nb[0]; j++) {
		const uint8_t *p = g->pos[nb[j]];
		float e = 0;
		for (int i = 0; i < 4; i++) {
			float diff = scale * (float)p[i] - x[i];
			e += w[i] * diff * diff;
		}
		if (e < best) {
			best = e;
			idx = nb[j];
		}
	}
	for (int i = 0; i < 4; i++)
		l[i] = (int8_t)((g->pos[idx][i] - 1) / 2);
	return idx;
}

/* sum w*x*q and sum w*q*q of levels l (q = 2l + 1). */
static void fit_sums(const float *w, const float *x, const int8_t *l, float *sqx, float *sqq)
{
	float a = 0, b = 0;
	for (int i = 0; i < IQ3_SUB; i++) {
		float q = (float)(2 * l[i] + 1);
		a += w[i] * x[i] * q;
		b += w[i] * q * q;
	}
	*sqx = a;
	*sqq = b;
}

struct sub_fit {
	float scale;
	int8_t L[IQ3_SUB];
	uint8_t signs[4];
	int index[IQ3_GROUPS];
	bool zero;              /* the sub-block was skipped as negligible */
};

/*
 * Fit one sub-block xb with weights w.  xxs selects iq3_xxs's variant
 * (parity-fixed signs, 31 trials, skip below XXS_EPS, off-grid re-search
 * of off-grid groups only); otherwise iq3_s's.
 */
static void fit_sub(const struct qa_iq3_grid *g, bool simd, bool xxs, const float *xb, const float *w,
                    struct sub_fit *f)
{
	float xval[IQ3_SUB], waux[IQ3_SUB];
	int8_t Laux[IQ3_SUB];
	bool on_grid[IQ3_GROUPS], on_grid_aux[IQ3_GROUPS];

	for (int i = 0; i < IQ3_SUB; i++)
		waux[i] = sqrtf(w[i]);
	for (int k = 0; k < 4; k++) {
		unsigned s = 0, nflip = 0;
		for (int i = 0; i < 8; i++) {
			float v = xb[8 * k + i];
			if (v >= 0) {
				xval[8 * k + i] = v;
			} else {
				xval[8 * k + i] = -v;
				nflip++;
				s |= 1u << i;
			}
		}
		if (xxs && nflip % 2) {
			int imin = 0;
			float min = w[8 * k] * xb[8 * k] * xb[8 * k];
			for (int i = 1; i < 8; i++) {
				float a = w[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
				if (a < min) {
					min = a;
					imin = i;
				}
			}
			xval[8 * k + imin] = -xval[8 * k + imin];
			s ^= 1u << imin;
		}
		f->signs[k] = (uint8_t)(xxs ? s & 127 : s);
	}
	float max = xval[0];
	for (int i = 1; i < IQ3_SUB; i++)
		max = max > xval[i] ? max : xval[i];
	memset(f->L, 0, sizeof f->L);
	f->zero = xxs ? max < XXS_EPS : max == 0;
	if (f->zero) {
		f->scale = 0;
		return;
	}

	float best = 0;
	float scale = max / (2 * IQ3_MAXL + 1);
	for (int k = 0; k < IQ3_GROUPS; k++)
		on_grid[k] = xxs;
	int ntry = xxs ? 15 : 9;
	for (int t = -ntry; t <= ntry; t++) {
		float id = (2 * IQ3_MAXL + 1 + (float)t * 0.2f) / max;
		float this_scale = 1 / id;
		for (int k = 0; k < IQ3_GROUPS; k++) {
			for (int i = 0; i < 4; i++)
				Laux[4 * k + i] = level_of(id, xval[4 * k + i]);
			unsigned u = code_of(Laux + 4 * k);
			on_grid_aux[k] = g->map[u] >= 0;
			if (!on_grid_aux[k])
				best_neighbour(g, simd, u, xval + 4 * k, waux + 4 * k, this_scale, Laux + 4 * k);
		}
		float sqx, sqq;
		fit_sums(w, xval, Laux, &sqx, &sqq);
		if (sqq > 0 && sqx * sqx > best * sqq) {
			scale = sqx / sqq;
			best = scale * sqx;
			memcpy(f->L, Laux, sizeof f->L);
			memcpy(on_grid, on_grid_aux, sizeof on_grid);
		}
	}
	int n_off = 0;
	for (int k = 0; k < IQ3_GROUPS; k++)
		n_off += !on_grid[k];
	if (n_off > 0 && scale > 0) {
		float id = 1 / scale;
		for (int k = 0; k < IQ3_GROUPS; k++) {
			if (xxs && on_grid[k])
				continue;
			int8_t l[4];
			for (int i = 0; i < 4; i++)
				l[i] = level_of(id, xval[4 * k + i]);
			unsigned u = code_of(l);
			int idx = g->map[u];
			if (idx < 0)
				idx = best_neighbour(g, simd, u, xval + 4 * k, waux + 4 * k, scale, f->L + 4 * k);
			for (int i = 0; i < 4; i++)
				f->L[4 * k + i] = (int8_t)((g->pos[idx][i] - 1) / 2);
		}
		float sqx, sqq;
		fit_sums(w, xval, f->L, &sqx, &sqq);
		if (sqq > 0)
			scale = sqx / sqq;
	}
	if (scale < 0) {
		/* never expected; the reference flips the signs to keep d >= 0 */
		scale = -scale;
		for (int k = 0; k < 4; k++)
			f->signs[k] = (uint8_t)(xxs ? ~f->signs[k] & 127 : ~f->signs[k]);
	}
	for (int k = 0; k < IQ3_GROUPS; k++) {
		int idx = g->map[code_of(f->L + 4 * k)];
		f->index[k] = idx >= 0 ? idx : 0; /* always on the grid by now */
	}
	f->scale = scale;
}

/* Per-element weights of sub-block ib of block x (qw: the block's 256 or NULL). */
static void sub_weights(const float *x, const float *qw, float sigma2, int ib, float *w)
{
	const float *xb = x + IQ3_SUB * ib;
	for (int i = 0; i < IQ3_SUB; i++)
		w[i] = qw ? qw[IQ3_SUB * ib + i] * sqrtf(sigma2 + xb[i] * xb[i]) : xb[i] * xb[i];
}

static float block_sigma2(const float *x)
{
	float sumx2 = 0;
	for (int i = 0; i < IQ3_BLOCK; i++)
		sumx2 += x[i] * x[i];
	return 2 * sumx2 / IQ3_BLOCK;
}

/* The 4-bit sub-block scale: nearest s with (2s + 1) d = scale, in 0..15. */
static unsigned scale_code(float id, float scale)
{
	int l = round_shift(0.5f * (id * scale - 1));
	return (unsigned)(l < 0 ? 0 : (l > 15 ? 15 : l));
}

static void quantize_xxs_block(const struct qa_iq3_grid *g, bool simd, const float *x, const float *qw,
                               uint8_t *out)
{
	float sigma2 = block_sigma2(x);
	float scales[IQ3_NSUB], max_scale = 0;
	uint32_t sas[IQ3_NSUB] = { 0 };
	uint8_t q3[64] = { 0 };

	for (int ib = 0; ib < IQ3_NSUB; ib++) {
		float w[IQ3_SUB];
		struct sub_fit f;
		sub_weights(x, qw, sigma2, ib, w);
		fit_sub(g, simd, true, x + IQ3_SUB * ib, w, &f);
		scales[ib] = f.scale;
		if (f.zero)
			continue;
		for (int k = 0; k < IQ3_GROUPS; k++)
			q3[8 * ib + k] = (uint8_t)f.index[k];
		sas[ib] = f.signs[0] | (uint32_t)f.signs[1] << 7 | (uint32_t)f.signs[2] << 14 |
		          (uint32_t)f.signs[3] << 21;
		max_scale = max_scale > f.scale ? max_scale : f.scale;
	}
	memset(out, 0, XXS_BYTES);
	if (max_scale == 0)
		return;
	float d = max_scale / 31;
	qa_store_le16(out, qa_fp32_to_fp16(d * 1.0125f));
	float id = 1 / d;
	memcpy(out + 2, q3, sizeof q3);
	for (int ib = 0; ib < IQ3_NSUB; ib++)
		qa_store_le32(out + 66 + 4 * ib, sas[ib] | (uint32_t)scale_code(id, scales[ib]) << 28);
}

static void quantize_s_block(const struct qa_iq3_grid *g, bool simd, const float *x, const float *qw,
                             uint8_t *out)
{
	float sigma2 = block_sigma2(x);
	float scales[IQ3_NSUB], max_scale = 0;
	uint8_t *qs = out + 2, *qh = out + 66, *signs = out + 74, *sc = out + 106;

	memset(out, 0, S_BYTES);
	for (int ib = 0; ib < IQ3_NSUB; ib++) {
		float w[IQ3_SUB];
		struct sub_fit f;
		sub_weights(x, qw, sigma2, ib, w);
		fit_sub(g, simd, false, x + IQ3_SUB * ib, w, &f);
		scales[ib] = f.scale;
		if (f.zero)
			continue; /* the reference leaves qs and signs where they are */
		for (int k = 0; k < IQ3_GROUPS; k++) {
			qs[k] = (uint8_t)(f.index[k] & 255);
			qh[ib] |= (uint8_t)((f.index[k] >> 8) << k);
		}
		qs += IQ3_GROUPS;
		memcpy(signs, f.signs, 4);
		signs += 4;
		max_scale = max_scale > f.scale ? max_scale : f.scale;
	}
	if (max_scale == 0)
		return;
	float d = max_scale / 31;
	qa_store_le16(out, qa_fp32_to_fp16(d * 1.033f));
	float id = 1 / d;
	for (int ib = 0; ib < IQ3_NSUB; ib += 2)
		sc[ib / 2] = (uint8_t)(scale_code(id, scales[ib]) | scale_code(id, scales[ib + 1]) << 4);
}

/* Rows of iq3_xxs (xxs) or iq3_s, with the vector search where simd. */
static void iq3_rows(bool xxs, bool simd, const float *src, void *dst, size_t nrow, size_t n_per_row,
                     const float *qw)
{
	const struct qa_iq3_grid *g = qa_iq3_grid_get(xxs ? 256 : 512);
	uint8_t *out = dst;
	for (size_t r = 0; r < nrow; r++)
		for (size_t b = 0; b < n_per_row / IQ3_BLOCK; b++, src += IQ3_BLOCK) {
			const float *bw = qw ? qw + b * IQ3_BLOCK : NULL;
			if (xxs)
				quantize_xxs_block(g, simd, src, bw, out);
			else
				quantize_s_block(g, simd, src, bw, out);
			out += xxs ? XXS_BYTES : S_BYTES;
		}
}

/* Whether the vector search runs on this CPU. */
static bool iq3_simd(void)
{
#if QA_QUANT_X86
	return qa_quant_x86_available(false);
#else
	return false;
#endif
}

void qa_quantize_rows_iq3_xxs(const float *src, void *dst, size_t nrow, size_t n_per_row,
                              const float *qw)
{
	iq3_rows(true, iq3_simd(), src, dst, nrow, n_per_row, qw);
}

void qa_quantize_iq3_xxs(const float *src, void *dst, size_t n)
{
	qa_quantize_rows_iq3_xxs(src, dst, 1, n, NULL);
}

void qa_quantize_rows_iq3_s(const float *src, void *dst, size_t nrow, size_t n_per_row,
                            const float *qw)
{
	iq3_rows(false, iq3_simd(), src, dst, nrow, n_per_row, qw);
}

void qa_quantize_iq3_s(const float *src, void *dst, size_t n)
{
	qa_quantize_rows_iq3_s(src, dst, 1, n, NULL);
}

bool qa_quant_iq3_quantize_path(uint32_t type, bool fast, const float *src, void *dst, size_t nrow,
                                size_t n_per_row, const float *qw)
{
	if (type != QA_TYPE_IQ3_XXS && type != QA_TYPE_IQ3_S)
		return false;
	iq3_rows(type == QA_TYPE_IQ3_XXS, fast && iq3_simd(), src, dst, nrow, n_per_row, qw);
	return true;
}

/* The sign of element i (0..7) under an 8-bit mask. */
static float sign_of(unsigned mask, int i)
{
	return (mask >> i) & 1u ? -1.f : 1.f;
}

/* The 8-bit mask of a 7-bit iq3_xxs sign field: bit 7 makes the parity even. */
static unsigned full_mask(unsigned s7)
{
	unsigned p = s7;
	p ^= p >> 4;
	p ^= p >> 2;
	p ^= p >> 1;
	return s7 | (p & 1u) << 7;
}

void qa_dequantize_iq3_xxs(const void *src, float *dst, size_t n)
{
	const struct qa_iq3_grid *g = qa_iq3_grid_get(256);
	const uint8_t *in = src;
	for (size_t b = 0; b < n / IQ3_BLOCK; b++, in += XXS_BYTES) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		for (int ib = 0; ib < IQ3_NSUB; ib++) {
			const uint8_t *qs = in + 2 + 8 * ib;
			uint32_t aux = qa_load_le32(in + 66 + 4 * ib);
			float db = d * (0.5f + (float)(aux >> 28)) * 0.5f;
			for (int l = 0; l < 4; l++, dst += 8) {
				unsigned mask = full_mask((aux >> (7 * l)) & 127u);
				uint32_t g1 = g->decode[qs[2 * l]], g2 = g->decode[qs[2 * l + 1]];
				for (int j = 0; j < 4; j++) {
					dst[j] = db * (float)((g1 >> (8 * j)) & 255u) * sign_of(mask, j);
					dst[j + 4] = db * (float)((g2 >> (8 * j)) & 255u) * sign_of(mask, j + 4);
				}
			}
		}
	}
}

void qa_dequantize_iq3_s(const void *src, float *dst, size_t n)
{
	const struct qa_iq3_grid *g = qa_iq3_grid_get(512);
	const uint8_t *in = src;
	for (size_t b = 0; b < n / IQ3_BLOCK; b++, in += S_BYTES) {
		float d = qa_fp16_to_fp32(qa_load_le16(in));
		for (int ib = 0; ib < IQ3_NSUB; ib++) {
			const uint8_t *qs = in + 2 + 8 * ib, *signs = in + 74 + 4 * ib;
			unsigned qh = in[66 + ib];
			unsigned s = (in[106 + ib / 2] >> (4 * (ib % 2))) & 0xfu;
			float db = d * (float)(1 + 2 * (int)s);
			for (int l = 0; l < 4; l++, dst += 8) {
				uint32_t g1 = g->decode[qs[2 * l] | ((qh >> (2 * l)) & 1u) << 8];
				uint32_t g2 = g->decode[qs[2 * l + 1] | ((qh >> (2 * l + 1)) & 1u) << 8];
				for (int j = 0; j < 4; j++) {
					dst[j] = db * (float)((g1 >> (8 * j)) & 255u) * sign_of(signs[l], j);
					dst[j + 4] = db * (float)((g2 >> (8 * j)) & 255u) * sign_of(signs[l], j + 4);
				}
			}
		}
	}
}
