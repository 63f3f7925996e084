#define _POSIX_C_SOURCE 200809L
/*
 * check_quant.c - the quantizers against ggml's oracle vectors, and the
 * properties every quantizer must have (block locality, exact f32 passthrough,
 * safe decoding of arbitrary bytes).
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockhash.h"
#include "cursor.h"
#include "quant.h"
#include "testutil.h"
#include "tu_decode.h"
#include "types.h"

#define N_INPUT 131072

static const char *const oracle_types[] = {
	"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K",
	"q4_K", "q5_K", "q6_K", "iq4_nl", "f16", "bf16",
};
#define N_ORACLE (int)(sizeof oracle_types / sizeof oracle_types[0])

static float *input;

static void load_input(void)
{
	size_t len = 0;
	input = tu_slurp(tu_path("fixtures/vectors/input.f32"), &len);
	ck_assert_msg(input && len == N_INPUT * 4, "fixtures/vectors/input.f32 missing");
}

static void free_input(void)
{
	free(input);
	input = NULL;
}

/* The oracle's digest of TYPE.dequant.f32, from fixtures/vectors/dequant.sha256. */
static void oracle_dequant_digest(const char *type, char hex[65])
{
	size_t len;
	char *text = tu_slurp(tu_path("fixtures/vectors/dequant.sha256"), &len);
	char want[64];
	ck_assert_ptr_nonnull(text);
	snprintf(want, sizeof want, "  %s.dequant.f32", type);
	hex[0] = '\0';
	for (char *line = text; line < text + len;) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
		if (n > 64 && strncmp(line + 64, want, strlen(want)) == 0 && n == 64 + strlen(want)) {
			memcpy(hex, line, 64);
			hex[64] = '\0';
		}
		line += n + 1;
	}
	free(text);
	ck_assert_msg(hex[0], "no digest for %s", type);
}

static void hexof(const uint8_t *b, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* core: quantize(input) equals ggml's bytes; dequantize(ggml's bytes) equals ggml's floats. */
START_TEST(oracle_quantize)
{
	const struct qa_type_info *t = qa_type_by_name(oracle_types[_i]);
	ck_assert_ptr_nonnull(t);
	const struct qa_quant_ops *ops = qa_quant_ops(t->id);
	ck_assert_ptr_nonnull(ops);
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(t, N_INPUT, &nbytes));
	char rel[128];
	snprintf(rel, sizeof rel, "fixtures/vectors/%s.bin", t->name);
	size_t len;
	uint8_t *want = tu_slurp(tu_path(rel), &len);
	ck_assert_ptr_nonnull(want);
	ck_assert_uint_eq(len, nbytes);
	uint8_t *got = malloc(nbytes);
	ops->quantize(input, got, N_INPUT);
	size_t first = SIZE_MAX;
	for (size_t i = 0; i < nbytes && first == SIZE_MAX; i++)
		if (got[i] != want[i])
			first = i;
	ck_assert_msg(first == SIZE_MAX, "%s: first differing byte %zu (block %zu)", t->name,
	              first, first / t->block_bytes);
	free(got);
	free(want);
}
END_TEST

START_TEST(oracle_dequantize)
{
	const struct qa_type_info *t = qa_type_by_name(oracle_types[_i]);
	const struct qa_quant_ops *ops = qa_quant_ops(t->id);
	char rel[128], want[65], got[65];
	uint8_t dig[32];
	snprintf(rel, sizeof rel, "fixtures/vectors/%s.bin", t->name);
	size_t len;
	uint8_t *q = tu_slurp(tu_path(rel), &len);
	ck_assert_ptr_nonnull(q);
	float *f = malloc(N_INPUT * sizeof *f);
	ops->dequantize(q, f, N_INPUT);
	ck_assert_int_eq(qa_sha256(f, N_INPUT * sizeof *f, dig, NULL), QA_OK);
	hexof(dig, got);
	oracle_dequant_digest(t->name, want);
	ck_assert_str_eq(got, want);
	free(f);
	free(q);
}
END_TEST

/* limits: quantizing block by block gives the bytes of quantizing at once. */
START_TEST(block_locality)
{
	const struct qa_type_info *t = qa_type_by_name(oracle_types[_i]);
	const struct qa_quant_ops *ops = qa_quant_ops(t->id);
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(t, N_INPUT, &nbytes));
	uint8_t *whole = malloc(nbytes), *pieces = malloc(nbytes);
	ops->quantize(input, whole, N_INPUT);
	size_t step = t->block_elems < 32 ? 32 : t->block_elems;
	for (size_t i = 0; i < N_INPUT; i += step)
		ops->quantize(input + i, pieces + i / t->block_elems * t->block_bytes, step);
	ck_assert_mem_eq(whole, pieces, nbytes);
	free(whole);
	free(pieces);
}
END_TEST

/* limits: zeros stay zeros, and the round trip error is bounded by the block's range. */
START_TEST(zeros_and_error_bound)
{
	const struct qa_type_info *t = qa_type_by_name(oracle_types[_i]);
	const struct qa_quant_ops *ops = qa_quant_ops(t->id);
	float zeros[256] = { 0 }, back[256];
	uint8_t buf[1024];
	ops->quantize(zeros, buf, 256);
	ops->dequantize(buf, back, 256);
	for (int i = 0; i < 256; i++)
		ck_assert_float_eq(back[i], 0.0f);
	/* a smooth ramp in [-1, 1]: every type must land within 1/3 of the range */
	float ramp[256];
	for (int i = 0; i < 256; i++)
		ramp[i] = -1.0f + 2.0f * (float)i / 255.0f;
	ops->quantize(ramp, buf, 256);
	ops->dequantize(buf, back, 256);
	for (int i = 0; i < 256; i++)
		ck_assert_msg(fabsf(back[i] - ramp[i]) < 0.34f, "%s: element %d: %g vs %g", t->name, i,
		              (double)back[i], (double)ramp[i]);
}
END_TEST

/*
 * limits: every implementation of the k-quant group fits (q2_K..q6_K; scalar
 * reference, 4- and 8-lane SIMD where this build and CPU have them, and the
 * default entry point) writes the same bytes, on the oracle input and on
 * pseudo-random super-blocks built to hit edge cases.
 */
#define N_NASTY (1u << 22)

static const uint32_t path_types[] = { QA_TYPE_Q2_K, QA_TYPE_Q3_K, QA_TYPE_Q4_K, QA_TYPE_Q5_K,
	                                QA_TYPE_Q6_K };
#define N_PATH_TYPES (int)(sizeof path_types / sizeof path_types[0])

static uint32_t xs_next(uint32_t *st)
{
	uint32_t x = *st;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *st = x;
}

/* Uniform in [-1, 1). */
static float xs_unit(uint32_t *st)
{
	return (float)(xs_next(st) >> 8) / 8388608.0f - 1.0f;
}

static float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* One super-block of kind k (0..N_KINDS-1), all finite. */
#define N_KINDS 19
static void nasty_block(float *v, unsigned k, uint32_t *st)
{
	float s = 0.01f + fabsf(xs_unit(st));
	for (int i = 0; i < 256; i++) {
		float u = xs_unit(st);
		switch (k) {
		case 0: /* smooth noise */
			v[i] = s * (u + xs_unit(st) + xs_unit(st));
			break;
		case 1: /* each group of 16 constant: zero, negative or positive */
			v[i] = (i / 16) % 3 == 0 ? 0.0f : ((i / 16) % 3 == 1 ? -s : s);
			break;
		case 2: /* zeros, some negative */
			v[i] = i % 3 ? 0.0f : -0.0f;
			break;
		case 3: /* huge magnitudes, sums overflow to inf */
			v[i] = u * 3e38f;
			break;
		case 4: /* tiny, near the float minimum */
			v[i] = u * 1e-36f;
			break;
		case 5: /* one spike per group of 32 over a small floor */
			v[i] = i % 32 == (int)(xs_next(st) % 32) ? 1e4f * u : 1e-3f * u;
			break;
		case 6: /* negative only */
			v[i] = -s * fabsf(u) - 1e-3f;
			break;
		case 7: /* denormals and zeros */
			v[i] = from_bits(xs_next(st) & 0x807fffffu);
			break;
		case 8: /* every group its own magnitude, 1e-40 .. 1e30 */
			v[i] = u * powf(10.0f, (float)((i / 16 * 7 + (int)k) % 71 - 40));
			break;
		case 9: /* positive only */
			v[i] = s * fabsf(u) + 0.5f;
			break;
		case 10: /* small integers and halves: rounding ties */
			v[i] = (float)((int)(xs_next(st) % 31) - 15) * 0.5f;
			break;
		case 11: /* two values per group */
			v[i] = (xs_next(st) & 1) ? s : -0.25f * s;
			break;
		case 14: /* groups of 16 around the all-zero threshold 1e-15, +-0 between */
			v[i] = (i % 16 == (i / 16) % 5) ? ((i / 16) % 2 ? -0.0f : 0.0f)
			                                : u * from_bits(0x26000000u + (xs_next(st) & 0x01ffffffu));
			break;
		case 15: /* one spike per group of 16, sign of the group's choosing */
			v[i] = i % 16 == (int)(xs_next(st) % 16) ? ((i / 16) % 2 ? -1e3f : 1e3f) * s : 1e-2f * u;
			break;
		case 16: /* each group of 16 one-signed, a few equal magnitudes of both signs */
			v[i] = (i / 16) % 3 == 2 ? ((xs_next(st) & 1) ? s : -s)
			                         : ((i / 16) % 3 ? -1.0f : 1.0f) * (s * fabsf(u) + 1e-20f);
			break;
		case 17: /* sparse small integers (exact cancellations), some groups peaking
		          * exactly at the all-zero threshold 1e-15 */
			if ((i / 16) % 4 == 3)
				v[i] = i % 16 == 5 ? ((i / 32) % 2 ? -1e-15f : 1e-15f) : 1e-16f * u;
			else
				v[i] = xs_next(st) % 3 ? 0.0f : (float)((int)(xs_next(st) % 7) - 3);
			break;
		case 18: /* denormals below 2^-128, whose inverse overflows to inf; some zeros */
			v[i] = xs_next(st) % 5 ? from_bits((xs_next(st) & 0x8000ffffu) | 1u) : 0.0f;
			break;
		case 12: /* random finite bit patterns */
			do
				v[i] = from_bits(xs_next(st));
			while (!isfinite(v[i]));
			break;
		default: /* constant groups of 32 of one random finite value */
			if (i % 32 == 0) {
				do
					s = from_bits(xs_next(st));
				while (!isfinite(s));
			}
			v[i] = s;
			break;
		}
	}
}

/*
 * Every path of quantize for type writes the scalar path's bytes, and so
 * does the default entry point; on the oracle input the scalar path is
 * pinned to the oracle bytes first, else n elements of adversarial blocks
 * (seeded with seed) are used.  paths lists the non-scalar paths to try;
 * one that is not available is skipped, except AUTO, which always is.
 */
static void check_paths(uint32_t type, bool oracle, size_t n, uint32_t seed,
                        bool (*quantize)(uint32_t, enum qa_quant_k_path, const float *, void *, size_t),
                        const enum qa_quant_k_path *paths, size_t n_paths)
{
	const struct qa_type_info *t = qa_type_get(type);
	ck_assert_ptr_nonnull(t);
	float *src = input;
	if (!oracle) {
		src = malloc(n * sizeof *src);
		ck_assert_ptr_nonnull(src);
		uint32_t st = seed;
		for (size_t b = 0; b < n / 256; b++)
			nasty_block(src + 256 * b, (unsigned)(b % N_KINDS), &st);
	}
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(t, n, &nbytes));
	uint8_t *want = malloc(nbytes), *got = malloc(nbytes);
	ck_assert(want && got);
	ck_assert(quantize(type, QA_QUANT_K_SCALAR, src, want, n));
	if (oracle) {
		/* The scalar reference itself is pinned to the oracle bytes. */
		char rel[128];
		size_t len;
		snprintf(rel, sizeof rel, "fixtures/vectors/%s.bin", t->name);
		uint8_t *fix = tu_slurp(tu_path(rel), &len);
		ck_assert_ptr_nonnull(fix);
		ck_assert_uint_eq(len, nbytes);
		ck_assert_mem_eq(want, fix, nbytes);
		free(fix);
	}
	for (size_t p = 0; p <= n_paths; p++) {
		memset(got, 0xa5, nbytes);
		if (p < n_paths) {
			if (!quantize(type, paths[p], src, got, n)) {
				ck_assert_int_ne(paths[p], QA_QUANT_K_AUTO);
				continue;
			}
		} else {
			qa_quant_ops(type)->quantize(src, got, n);
		}
		size_t first = SIZE_MAX;
		for (size_t i = 0; i < nbytes && first == SIZE_MAX; i++)
			if (got[i] != want[i])
				first = i;
		ck_assert_msg(first == SIZE_MAX, "%s path %zu: first differing byte %zu (block %zu)",
		              t->name, p, first, first / t->block_bytes);
	}
	free(want);
	free(got);
	if (!oracle)
		free(src);
}

START_TEST(paths_agree)
{
	static const enum qa_quant_k_path paths[] = { QA_QUANT_K_SIMD4, QA_QUANT_K_SIMD8,
		                                      QA_QUANT_K_SIMD16, QA_QUANT_K_AUTO };
	const uint32_t type = path_types[_i % N_PATH_TYPES];
	/* 16381 blocks: the last chunk of 32 holds 29, so q4_K/q5_K's 232 groups end on a narrower kernel */
	check_paths(type, _i < N_PATH_TYPES, _i < N_PATH_TYPES ? N_INPUT : N_NASTY - 3 * 256,
	            0x9e3779b9u, qa_quant_k_quantize, paths, sizeof paths / sizeof paths[0]);
	/* Types without a choice of paths, and unknown paths, are refused. */
	uint8_t got[256];
	ck_assert(!qa_quant_k_quantize(QA_TYPE_Q4_0, QA_QUANT_K_SCALAR, input, got, 256));
	ck_assert(!qa_quant_k_quantize(type, (enum qa_quant_k_path)99, input, got, 256));
}
END_TEST

/*
 * limits: the importance-weighted k-quant encoders run their group fits on
 * the same kernels; every path writes the scalar path's bytes on the
 * adversarial blocks, in rows of 7 super-blocks (so chunks of blocks span
 * rows and end in a partial chunk) with adversarial weights: zeros,
 * denormals, huge, ties and a spike, besides ordinary positive ones.  The
 * scalar weighted path is pinned to ggml by oracle_weighted.
 */
START_TEST(weighted_paths_agree)
{
	static const enum qa_quant_k_path paths[] = { QA_QUANT_K_SIMD4, QA_QUANT_K_SIMD8,
		                                      QA_QUANT_K_SIMD16, QA_QUANT_K_AUTO };
	const uint32_t type = path_types[_i % N_PATH_TYPES];
	const size_t n_per_row = 7 * 256, nrow = 61, n = nrow * n_per_row;
	float *src = malloc(n * sizeof *src), *qw = malloc(n_per_row * sizeof *qw);
	uint32_t st = 0x3c6ef372u + (uint32_t)_i;
	ck_assert(src && qw);
	for (size_t b = 0; b < n / 256; b++)
		nasty_block(src + 256 * b, (unsigned)(b % N_KINDS), &st);
	for (size_t j = 0; j < n_per_row; j++) {
		float u = fabsf(xs_unit(&st));
		switch ((j / 16 + (size_t)_i) % 6) {
		case 0: qw[j] = 0.05f + u; break;                     /* ordinary */
		case 1: qw[j] = j % 3 ? 0.0f : u; break;              /* zeros */
		case 2: qw[j] = from_bits(xs_next(&st) & 0x007fffffu); break; /* denormals */
		case 3: qw[j] = 1e30f * (1.0f + u); break;            /* huge */
		case 4: qw[j] = 1.0f; break;                           /* all equal: ties */
		default: qw[j] = j % 16 == 3 ? 1e6f : 1e-6f * u; break; /* one spike */
		}
	}
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(qa_type_get(type), n, &nbytes));
	uint8_t *want = malloc(nbytes), *got = malloc(nbytes);
	ck_assert(want && got);
	ck_assert(qa_quant_k_quantize_rows(type, QA_QUANT_K_SCALAR, src, want, nrow, n_per_row, qw));
	for (size_t p = 0; p <= sizeof paths / sizeof paths[0]; p++) {
		memset(got, 0xa5, nbytes);
		if (p < sizeof paths / sizeof paths[0]) {
			if (!qa_quant_k_quantize_rows(type, paths[p], src, got, nrow, n_per_row, qw)) {
				ck_assert_int_ne(paths[p], QA_QUANT_K_AUTO);
				continue;
			}
		} else {
			qa_quant_ops(type)->quantize_rows(src, got, nrow, n_per_row, qw);
		}
		size_t first = SIZE_MAX;
		for (size_t i = 0; i < nbytes && first == SIZE_MAX; i++)
			if (got[i] != want[i])
				first = i;
		ck_assert_msg(first == SIZE_MAX, "%s weighted path %zu: first differing byte %zu",
		              qa_type_get(type)->name, p, first);
	}
	ck_assert(!qa_quant_k_quantize_rows(QA_TYPE_Q4_0, QA_QUANT_K_SCALAR, src, got, 1, 256, qw));
	free(src);
	free(qw);
	free(want);
	free(got);
}
END_TEST

/*
 * limits: the legacy formats, f16/bf16, tq1_0/tq2_0 and mxfp4 have a scalar path
 * (ggml's reference, pinned to the oracle bytes) and an AVX2/F16C one; both write the
 * same bytes on the oracle input and on the adversarial blocks, and the
 * default entry point agrees too.
 */
static const uint32_t legacy_types[] = { QA_TYPE_Q4_0, QA_TYPE_Q4_1, QA_TYPE_Q5_0, QA_TYPE_Q5_1,
	                                  QA_TYPE_Q8_0, QA_TYPE_F16, QA_TYPE_BF16, QA_TYPE_TQ1_0,
	                                  QA_TYPE_TQ2_0, QA_TYPE_MXFP4 };
#define N_LEGACY_TYPES (int)(sizeof legacy_types / sizeof legacy_types[0])

static bool quantize_path(uint32_t type, enum qa_quant_k_path path, const float *src, void *dst,
                          size_t n)
{
	if (type == QA_TYPE_F16 || type == QA_TYPE_BF16)
		return qa_quant_fp_convert(type, path, true, src, dst, NULL, n);
	if (type == QA_TYPE_TQ1_0 || type == QA_TYPE_TQ2_0)
		return qa_quant_tq_quantize(type, path, src, dst, n);
	if (type == QA_TYPE_MXFP4)
		return qa_quant_mxfp4_quantize(path, src, dst, n);
	return qa_quant_legacy_quantize(type, path, src, dst, n);
}

START_TEST(legacy_paths_agree)
{
	static const enum qa_quant_k_path paths[] = { QA_QUANT_K_SIMD8, QA_QUANT_K_AUTO };
	const uint32_t type = legacy_types[_i % N_LEGACY_TYPES];
	check_paths(type, _i < N_LEGACY_TYPES, _i < N_LEGACY_TYPES ? N_INPUT : N_NASTY / 4, 0x2545f491u,
	            quantize_path, paths, sizeof paths / sizeof paths[0]);
	uint8_t got[1024];
	ck_assert(!qa_quant_legacy_quantize(QA_TYPE_Q4_K, QA_QUANT_K_SCALAR, input, got, 256));
	ck_assert(!qa_quant_tq_quantize(QA_TYPE_Q4_0, QA_QUANT_K_SCALAR, input, got, 256));
	ck_assert(!quantize_path(type, QA_QUANT_K_SIMD4, input, got, 256));
}
END_TEST


/*
 * limits: the weighted fits of q4_0, q5_0 (symmetric) and q4_1, q5_1
 * (affine) have a scalar path (ggml's make_qx_quants / make_qkx3_quants,
 * pinned to the oracle bytes by check_iq_grid's and the CLI's imatrix
 * cases) and an AVX2 one; both write the same bytes on the adversarial
 * blocks under plain, spread, zero-heavy and hostile (negative, NaN,
 * infinite, huge) weights.
 */
static const uint32_t weighted_legacy[] = { QA_TYPE_Q4_0, QA_TYPE_Q4_1, QA_TYPE_Q5_0, QA_TYPE_Q5_1 };

START_TEST(legacy_weighted_paths_agree)
{
	const uint32_t type = weighted_legacy[_i];
	/* one kind per row: the weights scale with the row's mean square, which one huge block would swamp */
	const size_t cols = 1024, rows = 2 * N_KINDS, n = rows * cols;
	float *src = malloc(n * sizeof *src), *qw = malloc(cols * sizeof *qw);
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(qa_type_get(type), n, &nbytes));
	uint8_t *want = malloc(nbytes), *got = malloc(nbytes);
	ck_assert(src && qw && want && got);
	uint32_t st = 0x243f6a88u + (uint32_t)_i;
	for (size_t b = 0; b < n / 256; b++)
		nasty_block(src + 256 * b, (unsigned)(b / (cols / 256) % N_KINDS), &st);
	static const float hostile[] = { -1.0f, NAN, INFINITY, 0.0f, 3e38f, 1e-38f, -0.0f };
	for (int wk = 0; wk < 4; wk++) {
		for (size_t c = 0; c < cols; c++) {
			uint32_t u = xs_next(&st);
			qw[c] = wk == 0 ? 1.0f : wk == 1 ? expf(4.0f * xs_unit(&st))
			        : wk == 2 ? (u % 3 ? 0.0f : 0.5f) : hostile[u % 7];
		}
		ck_assert(qa_quant_legacy_quantize_weighted(type, QA_QUANT_K_SCALAR, src, want, rows, cols, qw));
		if (qa_quant_legacy_quantize_weighted(type, QA_QUANT_K_SIMD8, src, got, rows, cols, qw))
			ck_assert_msg(memcmp(got, want, nbytes) == 0, "type %u weights %d: paths differ",
			              (unsigned)type, wk);
		memset(got, 0, nbytes);
		qa_quant_ops(type)->quantize_rows(src, got, rows, cols, qw);
		ck_assert_msg(memcmp(got, want, nbytes) == 0, "type %u weights %d: default path differs",
		              (unsigned)type, wk);
	}
	ck_assert(!qa_quant_legacy_quantize_weighted(QA_TYPE_Q8_0, QA_QUANT_K_SCALAR, src, got, 1, 256, qw));
	ck_assert(!qa_quant_legacy_quantize_weighted(type, QA_QUANT_K_SCALAR, src, got, 1, 256, NULL));
	ck_assert(!qa_quant_legacy_quantize_weighted(type, QA_QUANT_K_SIMD4, src, got, 1, 256, qw));
	free(src);
	free(qw);
	free(want);
	free(got);
}
END_TEST

/*
 * limits: iq4_nl and iq4_xs (one level search, quant_fit.h) have a scalar
 * path pinned to ggml's bytes and an AVX2 one; both write the same bytes on
 * the oracle input and the adversarial blocks, unweighted and with
 * importance weights (rows of 256, weights from the oracle imatrix).
 */
static const uint32_t iq4_types[] = { QA_TYPE_IQ4_NL, QA_TYPE_IQ4_XS };

static bool iq4_flat(uint32_t type, enum qa_quant_k_path path, const float *src, void *dst, size_t n)
{
	return qa_quant_iq4_quantize(type, path, src, dst, 1, n, NULL);
}

START_TEST(iq4_paths_agree)
{
	static const enum qa_quant_k_path paths[] = { QA_QUANT_K_SIMD8, QA_QUANT_K_AUTO };
	const uint32_t type = iq4_types[_i % 2];
	const size_t n = N_NASTY / 16;
	check_paths(type, _i < 2, _i < 2 ? N_INPUT : n, 0x6a09e667u, iq4_flat, paths, 2);
	if (_i < 2)
		return;
	/* weighted: the same adversarial blocks, rows of 256 with positive weights */
	float *src = malloc(n * sizeof *src), qw[256];
	uint32_t st = 0x6a09e667u;
	for (size_t b = 0; b < n / 256; b++)
		nasty_block(src + 256 * b, (unsigned)(b % N_KINDS), &st);
	for (int j = 0; j < 256; j++)
		qw[j] = 0.05f + fabsf(xs_unit(&st));
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(qa_type_get(type), n, &nbytes));
	uint8_t *want = malloc(nbytes), *got = malloc(nbytes);
	ck_assert(src && want && got);
	ck_assert(qa_quant_iq4_quantize(type, QA_QUANT_K_SCALAR, src, want, n / 256, 256, qw));
	if (qa_quant_iq4_quantize(type, QA_QUANT_K_SIMD8, src, got, n / 256, 256, qw))
		ck_assert_mem_eq(got, want, nbytes);
	memset(got, 0, nbytes);
	qa_quant_ops(type)->quantize_rows(src, got, n / 256, 256, qw);
	ck_assert_mem_eq(got, want, nbytes);
	ck_assert(!qa_quant_iq4_quantize(QA_TYPE_Q4_0, QA_QUANT_K_SCALAR, src, got, 1, 256, NULL));
	ck_assert(!qa_quant_iq4_quantize(type, QA_QUANT_K_SIMD4, src, got, 1, 256, NULL));
	free(src);
	free(want);
	free(got);
}
END_TEST

/*
 * limits: every one of the 65536 f16 and bf16 bit patterns (NaNs and
 * denormals included) widens to the same float bits on every path, and
 * every float pattern of a strided sweep (NaNs included) narrows alike.
 */
START_TEST(conversions_agree)
{
	const uint32_t type = _i ? QA_TYPE_BF16 : QA_TYPE_F16;
	enum { N = 65536 + 3 }; /* not a multiple of the vector width: the tail too */
	uint8_t *h = malloc(2 * N);
	float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
	ck_assert(h && a && b);
	for (uint32_t i = 0; i < N; i++) {
		h[2 * i] = (uint8_t)i;
		h[2 * i + 1] = (uint8_t)(i >> 8);
	}
	ck_assert(qa_quant_fp_convert(type, QA_QUANT_K_SCALAR, false, NULL, h, a, N));
	if (qa_quant_fp_convert(type, QA_QUANT_K_SIMD8, false, NULL, h, b, N))
		ck_assert_mem_eq(a, b, N * sizeof *a);
	qa_quant_ops(type)->dequantize(h, b, N);
	ck_assert_mem_eq(a, b, N * sizeof *a);

	uint8_t *h2 = malloc(2 * N);
	ck_assert_ptr_nonnull(h2);
	for (uint32_t start = 0; start < 4096; start += 97) {
		for (uint32_t i = 0; i < N; i++)
			a[i] = from_bits(start + i * 65521u);
		ck_assert(qa_quant_fp_convert(type, QA_QUANT_K_SCALAR, true, a, h, NULL, N));
		if (qa_quant_fp_convert(type, QA_QUANT_K_SIMD8, true, a, h2, NULL, N))
			ck_assert_mem_eq(h, h2, 2 * N);
	}
	ck_assert(!qa_quant_fp_convert(QA_TYPE_Q4_0, QA_QUANT_K_SCALAR, true, a, h, NULL, 32));
	free(h);
	free(h2);
	free(a);
	free(b);
}
END_TEST

/*
 * core: the importance-weighted paths against ggml.  The digests in
 * fixtures/imatrix/weighted.sha256 are of ggml_quantize_chunk(TYPE, input,
 * out, 0, 256, 512, weights) computed by ggml itself (libggml-base 0.23.0,
 * built by ../shared/tools/build-llama-cpp), on fixtures/vectors/input.f32
 * cut into 256 rows of 512 with fixtures/imatrix/weights-512.f32 (seeded
 * lognormal weights, every 97th from column 5 zero).  q8_0 ignores weights.
 */
static const char *const weighted_types[] = {
	"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl",
};
#define N_WEIGHTED (int)(sizeof weighted_types / sizeof weighted_types[0])
#define W_ROW 512

static void weighted_digest(const char *type, char hex[65])
{
	size_t len;
	char *text = tu_slurp(tu_path("fixtures/imatrix/weighted.sha256"), &len);
	char want[64];
	ck_assert_ptr_nonnull(text);
	snprintf(want, sizeof want, "  %s.weighted.bin", type);
	hex[0] = '\0';
	for (char *line = text; line < text + len;) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
		if (n == 64 + strlen(want) && strncmp(line + 64, want, strlen(want)) == 0) {
			memcpy(hex, line, 64);
			hex[64] = '\0';
		}
		line += n + 1;
	}
	free(text);
	ck_assert_msg(hex[0], "no weighted digest for %s", type);
}

/* Quantize rows with the type's weighted path, or its plain one when it has none. */
static void quantize_rows_any(const struct qa_quant_ops *ops, const float *src, uint8_t *dst,
                              size_t nrow, size_t n_per_row, const float *qw)
{
	if (ops->quantize_rows)
		ops->quantize_rows(src, dst, nrow, n_per_row, qw);
	else
		ops->quantize(src, dst, nrow * n_per_row);
}

START_TEST(oracle_weighted)
{
	const struct qa_type_info *t = qa_type_by_name(weighted_types[_i]);
	ck_assert_ptr_nonnull(t);
	const struct qa_quant_ops *ops = qa_quant_ops(t->id);
	size_t len;
	float *qw = tu_slurp(tu_path("fixtures/imatrix/weights-512.f32"), &len);
	ck_assert_ptr_nonnull(qw);
	ck_assert_uint_eq(len, W_ROW * sizeof(float));
	/* q8_0 is the one type here whose ggml quantizer ignores weights */
	ck_assert_int_eq(ops->quantize_rows == NULL, t->id == QA_TYPE_Q8_0);
	ck_assert(!ops->requires_imatrix);
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(t, N_INPUT, &nbytes));
	uint8_t *got = malloc(nbytes), dig[32];
	quantize_rows_any(ops, input, got, N_INPUT / W_ROW, W_ROW, qw);
	char hex[65], want[65];
	ck_assert_int_eq(qa_sha256(got, (size_t)nbytes, dig, NULL), QA_OK);
	hexof(dig, hex);
	weighted_digest(t->name, want);
	ck_assert_msg(strcmp(hex, want) == 0, "%s: weighted bytes differ from ggml's", t->name);

	/* limits: rows are independent; one row at a time gives the same bytes */
	uint8_t *one = malloc(nbytes);
	size_t row_bytes = (size_t)nbytes / (N_INPUT / W_ROW);
	for (size_t r = 0; r < N_INPUT / W_ROW; r++)
		quantize_rows_any(ops, input + r * W_ROW, one + r * row_bytes, 1, W_ROW, qw);
	ck_assert_mem_eq(one, got, (size_t)nbytes);

	/* without weights the weighted entry point is ggml's reference path */
	quantize_rows_any(ops, input, one, N_INPUT / W_ROW, W_ROW, NULL);
	char rel[128];
	snprintf(rel, sizeof rel, "fixtures/vectors/%s.bin", t->name);
	uint8_t *ref = tu_slurp(tu_path(rel), &len);
	ck_assert_ptr_nonnull(ref);
	ck_assert_uint_eq(len, nbytes);
	ck_assert_mem_eq(one, ref, (size_t)nbytes);
	/* and importance weights change the result, except for q8_0 */
	if (t->id != QA_TYPE_Q8_0)
		ck_assert(memcmp(got, ref, (size_t)nbytes) != 0);
	free(ref);
	free(one);
	free(got);
	free(qw);
}
END_TEST

/* limits: f32 is an exact little-endian passthrough. */
START_TEST(f32_passthrough)
{
	const struct qa_quant_ops *ops = qa_quant_ops(QA_TYPE_F32);
	uint8_t *buf = malloc(N_INPUT * 4);
	float *back = malloc(N_INPUT * 4);
	uint32_t bits1;
	memcpy(&bits1, &input[1], 4);
	ops->quantize(input, buf, N_INPUT);
	ck_assert_uint_eq(qa_load_le32(buf + 4), bits1);
	ops->dequantize(buf, back, N_INPUT);
	ck_assert_mem_eq(back, input, N_INPUT * 4);
	free(buf);
	free(back);
}
END_TEST

/*
 * limits: the ops table covers exactly the decodable/quantizable types (a
 * type ggml quantizes only with importance weights has just the weighted path).
 */
START_TEST(ops_table)
{
	for (uint32_t id = 0; id < QA_TYPE_COUNT + 5; id++) {
		const struct qa_type_info *t = qa_type_get(id);
		const struct qa_quant_ops *ops = qa_quant_ops(id);
		if (!t) {
			ck_assert_ptr_null(ops);
			continue;
		}
		ck_assert_msg(t->decodable == (ops && ops->dequantize), "%s decodable", t->name);
		ck_assert_msg(t->quantizable == (ops && (ops->quantize || ops->quantize_rows)),
		              "%s quantizable", t->name);
	}
}
END_TEST

/* malformed: non-finite values are found at the right index. */
static const struct {
	size_t index;
	uint32_t bits;
} nonfinite_cases[] = {
	{ 0, 0x7f800000u }, { 5, 0xff800000u }, { 255, 0x7fc00000u }, { 100, 0x7f800001u },
	{ 7, 0xffffffffu },
};

START_TEST(find_nonfinite)
{
	float v[256];
	for (int i = 0; i < 256; i++)
		v[i] = (float)i * 1e30f; /* large but finite */
	ck_assert_uint_eq(qa_quant_find_nonfinite(v, 256), 256);
	memcpy(&v[nonfinite_cases[_i].index], &nonfinite_cases[_i].bits, 4);
	ck_assert_uint_eq(qa_quant_find_nonfinite(v, 256), nonfinite_cases[_i].index);
}
END_TEST

/* malformed: the first non-finite value is found, in a group of 64 or in
 * the tail past the last whole group, and none past n. */
START_TEST(find_nonfinite_first)
{
	float v[300];
	uint32_t inf = 0x7f800000u, nan = 0xffc00001u;
	for (int i = 0; i < 300; i++)
		v[i] = -(float)i * 1e36f;
	ck_assert_uint_eq(qa_quant_find_nonfinite(v, 300), 300);
	memcpy(&v[290], &inf, 4);
	ck_assert_uint_eq(qa_quant_find_nonfinite(v, 300), 290);
	ck_assert_uint_eq(qa_quant_find_nonfinite(v, 290), 290);
	memcpy(&v[130], &nan, 4);
	memcpy(&v[70], &inf, 4);
	ck_assert_uint_eq(qa_quant_find_nonfinite(v, 300), 70);
	ck_assert_uint_eq(qa_quant_find_nonfinite(v, 71), 70);
	ck_assert_uint_eq(qa_quant_find_nonfinite(v, 70), 70);
	ck_assert_uint_eq(qa_quant_find_nonfinite(v + 71, 229), 59);
	ck_assert_uint_eq(qa_quant_find_nonfinite(v, 0), 0);
}
END_TEST

/* malformed: decoding arbitrary bytes (NaN scales, any bit pattern) keeps to its blocks and its n floats (tu_decode.h). */
START_TEST(decode_garbage)
{
	const struct qa_type_info *t = qa_type_by_name(oracle_types[_i]);
	const struct qa_quant_ops *ops = qa_quant_ops(t->id);
	uint8_t raw[4 * 292];
	uint32_t x = 2463534242u;
	for (int round = 0; round < 64; round++) {
		for (size_t i = 0; i < sizeof raw; i++) {
			x ^= x << 13; x ^= x >> 17; x ^= x << 5;
			raw[i] = round == 0 ? 0xff : (uint8_t)x;
		}
		size_t n = 256 / t->block_elems * t->block_elems;
		if (t->block_elems == 1)
			n = 256;
		tu_decode_properties(t, ops, raw, sizeof raw, n);
	}
}
END_TEST

static Suite *quant_suite(void)
{
	Suite *s = suite_create("quant");
	TCase *core = tcase_create("core");
	tcase_add_unchecked_fixture(core, load_input, free_input);
	tcase_add_loop_test(core, oracle_quantize, 0, N_ORACLE);
	tcase_add_loop_test(core, oracle_dequantize, 0, N_ORACLE);
	tcase_add_loop_test(core, oracle_weighted, 0, N_WEIGHTED);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_unchecked_fixture(limits, load_input, free_input);
	tcase_add_loop_test(limits, block_locality, 0, N_ORACLE);
	tcase_add_loop_test(limits, zeros_and_error_bound, 0, N_ORACLE);
	tcase_add_test(limits, f32_passthrough);
	tcase_add_test(limits, ops_table);
	tcase_add_loop_test(limits, paths_agree, 0, 2 * N_PATH_TYPES);
	tcase_add_loop_test(limits, weighted_paths_agree, 0, 2 * N_PATH_TYPES);
	tcase_add_loop_test(limits, legacy_paths_agree, 0, 2 * N_LEGACY_TYPES);
	tcase_add_loop_test(limits, iq4_paths_agree, 0, 4);
	tcase_add_loop_test(limits, legacy_weighted_paths_agree, 0, 4);
	tcase_add_loop_test(limits, conversions_agree, 0, 2);
	tcase_set_timeout(limits, 120);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, find_nonfinite, 0, (int)(sizeof nonfinite_cases / sizeof nonfinite_cases[0]));
	tcase_add_test(bad, find_nonfinite_first);
	tcase_add_loop_test(bad, decode_garbage, 0, N_ORACLE);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(quant_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
