/*
 * quant.h - bit-exact quantization and dequantization, one entry per type.
 *
 * These reproduce the reference path of ggml's quantizer (the one that
 * llama-quantize takes without an importance matrix: ggml_quantize_chunk ->
 * quantize_row_*_ref), byte for byte, and ggml's to_float for dequantization,
 * float for float.  Every quantizer works block by block with no state
 * carried between blocks, so rows may be cut anywhere on a block boundary.
 *
 * The functions take plain arrays: src and dst are owned by the caller and
 * must not overlap; n is a count of elements and must be a multiple of the
 * type's block_elems (callers check this; the functions do not).  Inputs must
 * be finite: qa_quant_check_finite() finds the first offender beforehand.
 */
#ifndef QA_QUANT_H
#define QA_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "types.h"

typedef void (*qa_quantize_fn)(const float *src, void *dst, size_t n);
typedef void (*qa_dequantize_fn)(const void *src, float *dst, size_t n);

/*
 * Importance-weighted quantization of nrow rows of n_per_row elements, as
 * ggml's quantize_<type>(src, dst, nrow, n_per_row, quant_weights) does it:
 * qw holds n_per_row importance weights (one per column, borrowed for the
 * call) or is NULL.  With qw NULL the bytes equal ggml_quantize_chunk's with
 * no importance matrix.  dst receives nrow rows of the type's row size.
 */
typedef void (*qa_quantize_rows_fn)(const float *src, void *dst, size_t nrow, size_t n_per_row,
                                    const float *qw);

struct qa_quant_ops {
	qa_quantize_fn quantize;     /* NULL when the type cannot be produced */
	qa_dequantize_fn dequantize; /* NULL when the type cannot be decoded */
	/*
	 * The weighted path; NULL when ggml ignores importance weights for the
	 * type (quantize is then used row by row whatever qw is).
	 */
	qa_quantize_rows_fn quantize_rows;
	/* ggml refuses to quantize the type without an importance matrix. */
	bool requires_imatrix;
	/*
	 * llama-quantize refuses the type without an importance matrix for
	 * every tensor but token_embd and output (its tensor_requires_imatrix):
	 * true wherever requires_imatrix is, and for some types ggml accepts
	 * without one (iq2_s, iq1_m).
	 */
	bool llama_requires_imatrix;
};

/*
 * The operations for type id.  Returns a pointer to static data, or NULL
 * when neither direction is implemented for id.
 */
const struct qa_quant_ops *qa_quant_ops(uint32_t id);

/*
 * Return the index of the first NaN or infinite value among n floats, or
 * n when all are finite.
 */
size_t qa_quant_find_nonfinite(const float *src, size_t n);

/*
 * Per-type entry points, grouped by family (quant_fp.c, quant_legacy.c,
 * quant_k.c, quant_iq.c, quant_iq4xs.c, quant_iq3.c, quant_tq.c,
 * quant_mxfp4.c).
 */
void qa_quantize_f32(const float *src, void *dst, size_t n);
void qa_dequantize_f32(const void *src, float *dst, size_t n);
void qa_quantize_f16(const float *src, void *dst, size_t n);
void qa_dequantize_f16(const void *src, float *dst, size_t n);
void qa_quantize_bf16(const float *src, void *dst, size_t n);
void qa_dequantize_bf16(const void *src, float *dst, size_t n);

void qa_quantize_q4_0(const float *src, void *dst, size_t n);
void qa_dequantize_q4_0(const void *src, float *dst, size_t n);
void qa_quantize_q4_1(const float *src, void *dst, size_t n);
void qa_dequantize_q4_1(const void *src, float *dst, size_t n);
void qa_quantize_q5_0(const float *src, void *dst, size_t n);
void qa_dequantize_q5_0(const void *src, float *dst, size_t n);
void qa_quantize_q5_1(const float *src, void *dst, size_t n);
void qa_dequantize_q5_1(const void *src, float *dst, size_t n);
void qa_quantize_q8_0(const float *src, void *dst, size_t n);
void qa_dequantize_q8_0(const void *src, float *dst, size_t n);

void qa_quantize_q2_K(const float *src, void *dst, size_t n);
void qa_dequantize_q2_K(const void *src, float *dst, size_t n);
void qa_quantize_q3_K(const float *src, void *dst, size_t n);
void qa_dequantize_q3_K(const void *src, float *dst, size_t n);
void qa_quantize_q4_K(const float *src, void *dst, size_t n);
void qa_dequantize_q4_K(const void *src, float *dst, size_t n);
void qa_quantize_q5_K(const float *src, void *dst, size_t n);
void qa_dequantize_q5_K(const void *src, float *dst, size_t n);
void qa_quantize_q6_K(const float *src, void *dst, size_t n);
void qa_dequantize_q6_K(const void *src, float *dst, size_t n);
void qa_dequantize_q8_K(const void *src, float *dst, size_t n);

/*
 * The k-quant encoders (q2_K .. q6_K) have several implementations of their
 * per-group fits, all producing the same bytes: the scalar reference (one
 * group at a time, the algorithm as ggml states it) and SIMD paths that fit
 * 4, 8 or 16 groups in lockstep.  qa_quantize_q2_K and friends use the fastest
 * one available (QA_QUANT_K_AUTO).
 */
enum qa_quant_k_path {
	QA_QUANT_K_SCALAR, /* the scalar reference path */
	QA_QUANT_K_SIMD4,  /* 4 groups per 128-bit vector (GCC/Clang builds) */
	QA_QUANT_K_SIMD8,  /* 8 groups per 256-bit vector (x86 CPUs with AVX2) */
	QA_QUANT_K_AUTO,   /* the fastest of the above that is available */
	QA_QUANT_K_SIMD16, /* 16 groups per 512-bit vector (x86 CPUs with AVX-512 F/BW/DQ/VL;
	                    * k-quants only, and preferred by AUTO) */
};

/*
 * Quantize n elements (a multiple of 256) of type (QA_TYPE_Q2_K, _Q3_K,
 * _Q4_K, _Q5_K or _Q6_K) from src to dst with the given path, under the
 * same contract as qa_quantize_q4_K.  Returns false, writing nothing, when type has no such
 * choice or the path is not available in this build or on this CPU.  Meant
 * for tests and benchmarks that compare the paths.
 */
bool qa_quant_k_quantize(uint32_t type, enum qa_quant_k_path path, const float *src,
                         void *dst, size_t n);

/*
 * The same for nrow rows of n_per_row values (a multiple of 256) with
 * importance weights qw (n_per_row of them, or NULL for the reference
 * path), under the contract of qa_quantize_rows_q4_K.
 */
bool qa_quant_k_quantize_rows(uint32_t type, enum qa_quant_k_path path, const float *src,
                              void *dst, size_t nrow, size_t n_per_row, const float *qw);

/*
 * The same choice of implementations for the legacy 32-element formats
 * (q4_0, q4_1, q5_0, q5_1, q8_0), whose vector path is AVX2 (SIMD8; there
 * is no 4-lane one): quantize n elements (a multiple of 32) with path.
 * Returns false, writing nothing, for another type or an unavailable path.
 */
bool qa_quant_legacy_quantize(uint32_t type, enum qa_quant_k_path path, const float *src,
                              void *dst, size_t n);

/*
 * The same under importance weights qw (not NULL) for q4_0, q4_1, q5_0 and
 * q5_1, whose weighted fits have an AVX2 path (SIMD8): nrow rows of
 * n_per_row under the contract of quantize_rows.  Returns false, writing
 * nothing, for another type, NULL weights or an unavailable path.
 */
bool qa_quant_legacy_quantize_weighted(uint32_t type, enum qa_quant_k_path path, const float *src,
                                       void *dst, size_t nrow, size_t n_per_row, const float *qw);

/*
 * f16 and bf16 narrowing (narrow: src -> bytes) or widening (bytes -> dst)
 * of n elements with path (SIMD8 is the F16C/AVX2 one).  Returns false for
 * another type or an unavailable path.  For tests and benchmarks.
 */
bool qa_quant_fp_convert(uint32_t type, enum qa_quant_k_path path, bool narrow, const float *src,
                         void *bytes, float *dst, size_t n);

void qa_quantize_iq4_nl(const float *src, void *dst, size_t n);
void qa_dequantize_iq4_nl(const void *src, float *dst, size_t n);

/*
 * iq4_nl and iq4_xs with the chosen path (SIMD8 is the AVX2 level search):
 * nrow rows of n_per_row under the contract of quantize_rows (qw NULL: no
 * importance weights).  Returns false, writing nothing, for another type or
 * an unavailable path.  For tests and benchmarks.
 */
bool qa_quant_iq4_quantize(uint32_t type, enum qa_quant_k_path path, const float *src, void *dst,
                           size_t nrow, size_t n_per_row, const float *qw);

/*
 * The grid i-quants (quant_iq2.c, quant_iq1.c).  iq2_xxs, iq2_xs and iq1_s
 * exist only in the weighted form: their quantize_rows with qw NULL writes
 * zeros (ggml refuses them).  iq2_s and iq1_m also have an unweighted form,
 * which is quantize_rows with qw NULL; all of them work block by block when
 * unweighted and row by row (the weights index columns) when weighted.
 */
void qa_quantize_rows_iq2_xxs(const float *src, void *dst, size_t nrow, size_t n_per_row,
                              const float *qw);
void qa_quantize_rows_iq2_xs(const float *src, void *dst, size_t nrow, size_t n_per_row,
                             const float *qw);
void qa_quantize_rows_iq2_s(const float *src, void *dst, size_t nrow, size_t n_per_row,
                            const float *qw);
void qa_quantize_iq2_s(const float *src, void *dst, size_t n);
void qa_quantize_rows_iq1_s(const float *src, void *dst, size_t nrow, size_t n_per_row,
                            const float *qw);
void qa_quantize_rows_iq1_m(const float *src, void *dst, size_t nrow, size_t n_per_row,
                            const float *qw);
void qa_quantize_iq1_m(const float *src, void *dst, size_t n);
void qa_dequantize_iq2_xxs(const void *src, float *dst, size_t n);
void qa_dequantize_iq2_xs(const void *src, float *dst, size_t n);
void qa_dequantize_iq2_s(const void *src, float *dst, size_t n);
void qa_dequantize_iq1_s(const void *src, float *dst, size_t n);
void qa_dequantize_iq1_m(const void *src, float *dst, size_t n);

/*
 * The grid searches have a scalar reference path (ggml's algorithm as
 * stated) and a fast path (tabulated error terms, side-by-side sums; where
 * the CPU has AVX2, neighbour lists searched 8 entries at a time and, for
 * iq1_s, the cut points 8 candidates at a time) giving the same bytes; the
 * entry points above use the fast one.  These quantize
 * nrow rows of type (iq2_xxs, iq2_xs, iq2_s: the first; iq1_s, iq1_m: the
 * second) with the chosen path (fast true or false) under the contract of
 * quantize_rows.  They return false, writing nothing, for another type or
 * for NULL weights where the type requires them.  Meant for tests and
 * benchmarks that compare the paths.
 */
bool qa_quant_iq2_quantize_path(uint32_t type, bool fast, const float *src, void *dst, size_t nrow,
                                size_t n_per_row, const float *qw);
bool qa_quant_iq1_quantize_path(uint32_t type, bool fast, const float *src, void *dst, size_t nrow,
                                size_t n_per_row, const float *qw);
/*
 * The same for iq3_xxs and iq3_s (quant_iq3.c): the scalar search, or with
 * fast the AVX2 one where the CPU has it (else the scalar one again).
 */
bool qa_quant_iq3_quantize_path(uint32_t type, bool fast, const float *src, void *dst, size_t nrow,
                                size_t n_per_row, const float *qw);

/* iq4_xs, iq3_xxs and iq3_s (quant_iq4xs.c, quant_iq3.c): weighted as ggml weights them. */
void qa_quantize_iq4_xs(const float *src, void *dst, size_t n);
void qa_quantize_rows_iq4_xs(const float *src, void *dst, size_t nrow, size_t n_per_row,
                             const float *qw);
void qa_dequantize_iq4_xs(const void *src, float *dst, size_t n);
void qa_quantize_iq3_xxs(const float *src, void *dst, size_t n);
void qa_quantize_rows_iq3_xxs(const float *src, void *dst, size_t nrow, size_t n_per_row,
                              const float *qw);
void qa_dequantize_iq3_xxs(const void *src, float *dst, size_t n);
void qa_quantize_iq3_s(const float *src, void *dst, size_t n);
void qa_quantize_rows_iq3_s(const float *src, void *dst, size_t nrow, size_t n_per_row,
                            const float *qw);
void qa_dequantize_iq3_s(const void *src, float *dst, size_t n);

/* tq1_0, tq2_0 (quant_tq.c) and mxfp4 (quant_mxfp4.c): ggml ignores importance weights. */
void qa_quantize_tq1_0(const float *src, void *dst, size_t n);
void qa_dequantize_tq1_0(const void *src, float *dst, size_t n);
void qa_quantize_tq2_0(const float *src, void *dst, size_t n);
void qa_dequantize_tq2_0(const void *src, float *dst, size_t n);

/*
 * The same choice of paths for tq1_0 and tq2_0 (SIMD8 is the AVX2 one):
 * quantize n elements (a multiple of 256) with path.  Returns false,
 * writing nothing, for another type or an unavailable path.  For tests and
 * benchmarks.
 */
bool qa_quant_tq_quantize(uint32_t type, enum qa_quant_k_path path, const float *src, void *dst,
                          size_t n);

/* The same for mxfp4 (n a multiple of 32; SIMD8 is the AVX2 code search). */
bool qa_quant_mxfp4_quantize(enum qa_quant_k_path path, const float *src, void *dst, size_t n);
void qa_quantize_mxfp4(const float *src, void *dst, size_t n);
void qa_dequantize_mxfp4(const void *src, float *dst, size_t n);

/*
 * The importance-weighted paths (qa_quantize_rows_fn), one per type whose
 * ggml quantizer uses weights.  n_per_row must be a multiple of the type's
 * block_elems; qw holds n_per_row weights or is NULL.  With qw NULL each is
 * the reference path (qa_quantize_<type> over all rows), because that is
 * what ggml's quantize_<type> does without weights; iq4_nl is the
 * exception in ggml (quantize_iq4_nl and quantize_row_iq4_nl_ref search
 * differently) but qa_quantize_iq4_nl already follows quantize_iq4_nl.
 * With weights the legacy types depend on the whole row (its mean square),
 * the others only on each block and its weights.  Scalar code, bit-exact
 * against ggml's quantize_row_<type>_impl.  q8_0 has none: ggml ignores
 * weights for it.
 */
void qa_quantize_rows_q4_0(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw);
void qa_quantize_rows_q4_1(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw);
void qa_quantize_rows_q5_0(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw);
void qa_quantize_rows_q5_1(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw);
void qa_quantize_rows_q2_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw);
void qa_quantize_rows_q3_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw);
void qa_quantize_rows_q4_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw);
void qa_quantize_rows_q5_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw);
void qa_quantize_rows_q6_K(const float *src, void *dst, size_t nrow, size_t n_per_row,
                           const float *qw);
void qa_quantize_rows_iq4_nl(const float *src, void *dst, size_t nrow, size_t n_per_row,
                             const float *qw);

#endif
