/*
 * quant_x86.h - the AVX2/F16C paths of the legacy formats, tq1_0/tq2_0 and
 * the f16/bf16 conversions (internal to the quantizers; quant.h is the interface).
 *
 * Each qa_x86_* function has the contract of the scalar function of the
 * same name without "x86_" (quant.h) and produces the same bytes or floats.
 * They may only be called when qa_quant_x86_available(f16c) is true, f16c
 * being true for all but the bf16 pair.  QA_QUANT_X86 is 0 where the compiler cannot
 * build them; nothing here exists then.
 */
#ifndef QA_QUANT_X86_H
#define QA_QUANT_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && \
	(defined(__clang__) || __GNUC__ >= 9)
#define QA_QUANT_X86 1
#else
#define QA_QUANT_X86 0
#endif

#if QA_QUANT_X86
/* Whether this CPU runs the AVX2 paths (and, with f16c, the F16C ones). */
bool qa_quant_x86_available(bool f16c);

void qa_x86_quantize_q4_0(const float *src, void *dst, size_t n);
void qa_x86_quantize_q4_1(const float *src, void *dst, size_t n);
void qa_x86_quantize_q5_0(const float *src, void *dst, size_t n);
void qa_x86_quantize_q5_1(const float *src, void *dst, size_t n);
void qa_x86_quantize_q8_0(const float *src, void *dst, size_t n);
void qa_x86_quantize_tq1_0(const float *src, void *dst, size_t n);
void qa_x86_quantize_tq2_0(const float *src, void *dst, size_t n);
/* The 16 code bytes of one 32-element mxfp4 block at half-scale scale (AVX2 alone). */
void qa_x86_mxfp4_codes(const float *x, const int8_t levels[16], float scale, uint8_t out[16]);
/* quant_fit.h's iq4 level search: the fit sums of one trial and the final indices (AVX2 alone). */
void qa_x86_iq4_fit_sums(const float *x, const float *w, float inv, const int8_t levels[16],
                         float *sqx, float *sqq);
void qa_x86_iq4_indices(const float *x, float inv, const int8_t levels[16], uint8_t idx[32]);
/*
 * The i-quant grid searches (AVX2 alone): the position in list[0..n-1] of
 * the first grid point of least weighted error, or -1 when no error is below
 * FLT_MAX.  grid8: 8 coordinates of 2-bit codes at positions pos[code]
 * (iq2, iq1); grid4: 4 coordinates of 3-bit codes at positions 2c + 1
 * (iq3).  grid8 takes the list of grid indices and codes32, each grid
 * point's packed codes; grid4 takes the list's codes themselves.  Lists
 * must be readable 8 entries past their end.
 */
int qa_x86_grid8_pick(const float *x, const float *w, float scale, const float pos[3],
                      const uint16_t *list, unsigned n, const uint32_t *codes32);
int qa_x86_grid4_pick(const float *x, const float *w, float scale, const uint16_t *codes,
                      unsigned n);
/*
 * iq1_s's cut-point search for first cut i1 over prefix sums sx, sw of n
 * sorted elements (readable 8 past n), as quant_iq1.c's fit_s loop body
 * for that i1 does it: updates best, scale, the cuts and the delta sign
 * (0 plus, 1 minus) exactly as the scalar loop would.
 */
void qa_x86_iq1s_cuts(const float *sx, const float *sw, int n, int i1, const float lvp[3],
                      const float lvm[3], float *best, float *scale, int *b1, int *b2, int *sgn);
/*
 * quant_fit.h's qa_quant_fit_symmetric(32, nmax, x, q, w) and
 * qa_quant_fit_affine(32, nmax, x, w, q, neg_min, rmin, rdelta, nstep,
 * false) with weights w, giving the same levels and scale (AVX2 alone).
 */
float qa_x86_fit_symmetric32(int nmax, const float *x, int8_t *q, const float *w);
float qa_x86_fit_affine32(int nmax, const float *x, const float *w, uint8_t *q, float *neg_min,
                          float rmin, float rdelta, int nstep);
void qa_x86_quantize_f16(const float *src, void *dst, size_t n);
void qa_x86_dequantize_f16(const void *src, float *dst, size_t n);
void qa_x86_quantize_bf16(const float *src, void *dst, size_t n);
void qa_x86_dequantize_bf16(const void *src, float *dst, size_t n);
#endif

#endif
