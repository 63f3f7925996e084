#define _POSIX_C_SOURCE 200809L
/*
 * check_quant_ext.c - iq3_xxs, iq3_s, iq4_xs, tq1_0, tq2_0 and mxfp4
 * (quant_iq3.c, quant_iq4xs.c, quant_tq.c, quant_mxfp4.c) against ggml.
 *
 * Source of truth: fixtures/vectors/TYPE.bin and TYPE.imatrix.bin are
 * ggml_quantize_chunk's output on input.f32 (rows of 1024, with no
 * importance matrix and with imatrix.f32), and iqother.sha256 holds the
 * digests of ggml's dequantization of them; all written by
 * fixtures/vectors/gen-iq-vectors.c against llama.cpp's ggml (0.23.0).
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockhash.h"
#include "quant.h"
#include "testutil.h"
#include "tu_decode.h"
#include "types.h"

#define N_INPUT 131072
#define ROW 1024

static const struct {
	const char *name;
	bool weighted;               /* ggml uses importance weights for the type */
	bool llama_requires_imatrix; /* llama-quantize refuses it without one (ggml never does) */
} types[] = {
	{ "iq3_xxs", true, true }, { "iq3_s", true, false }, { "iq4_xs", true, false },
	{ "tq1_0", false, false }, { "tq2_0", false, false }, { "mxfp4", false, false },
};
#define N_TYPES (int)(sizeof types / sizeof types[0])

static float *input, *imatrix;

static void load(void)
{
	size_t len = 0;
	input = tu_slurp(tu_path("fixtures/vectors/input.f32"), &len);
	ck_assert_msg(input && len == N_INPUT * 4, "fixtures/vectors/input.f32 missing");
	imatrix = tu_slurp(tu_path("fixtures/vectors/imatrix.f32"), &len);
	ck_assert_msg(imatrix && len == ROW * 4, "fixtures/vectors/imatrix.f32 missing");
}

static void unload(void)
{
	free(input);
	free(imatrix);
	input = imatrix = NULL;
}

/* The digest listed for file in fixtures/vectors/iqother.sha256. */
static void listed_digest(const char *file, char hex[65])
{
	size_t len;
	char *text = tu_slurp(tu_path("fixtures/vectors/iqother.sha256"), &len);
	char want[96];
	ck_assert_ptr_nonnull(text);
	snprintf(want, sizeof want, "  %s", file);
	hex[0] = '\0';
	for (char *line = text; line < text + len;) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
		if (n == 64 + strlen(want) && memcmp(line + 64, want, strlen(want)) == 0) {
			memcpy(hex, line, 64);
			hex[64] = '\0';
		}
		line += n + 1;
	}
	free(text);
	ck_assert_msg(hex[0], "no digest for %s", file);
}

static void digest_hex(const void *p, size_t n, char out[65])
{
	uint8_t d[32];
	ck_assert_int_eq(qa_sha256(p, n, d, NULL), QA_OK);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static const struct qa_type_info *type_at(int i, const struct qa_quant_ops **ops)
{
	const struct qa_type_info *t = qa_type_by_name(types[i].name);
	ck_assert_ptr_nonnull(t);
	*ops = qa_quant_ops(t->id);
	ck_assert_ptr_nonnull(*ops);
	return t;
}

static void assert_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n,
                         uint32_t block_bytes)
{
	size_t first = SIZE_MAX;
	for (size_t i = 0; i < n && first == SIZE_MAX; i++)
		if (got[i] != want[i])
			first = i;
	ck_assert_msg(first == SIZE_MAX, "%s: first differing byte %zu (block %zu)", what, first,
	              first / block_bytes);
}

/* core: the no-imatrix bytes and ggml's floats for them. */
START_TEST(oracle_plain)
{
	const struct qa_quant_ops *ops;
	const struct qa_type_info *t = type_at(_i, &ops);
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(t, N_INPUT, &nbytes));
	char rel[128], want[65], got[65];
	size_t len;
	snprintf(rel, sizeof rel, "fixtures/vectors/%s.bin", t->name);
	uint8_t *ref = tu_slurp(tu_path(rel), &len);
	ck_assert_ptr_nonnull(ref);
	ck_assert_uint_eq(len, nbytes);
	uint8_t *q = malloc(nbytes);
	ops->quantize(input, q, N_INPUT);
	assert_bytes(t->name, q, ref, nbytes, t->block_bytes);
	float *f = malloc(N_INPUT * sizeof *f);
	ops->dequantize(ref, f, N_INPUT);
	digest_hex(f, N_INPUT * sizeof *f, got);
	snprintf(rel, sizeof rel, "%s.dequant.f32", t->name);
	listed_digest(rel, want);
	ck_assert_str_eq(got, want);
	free(f);
	free(q);
	free(ref);
}
END_TEST

/* core: with importance weights, the bytes of ggml's weighted path and its floats. */
START_TEST(oracle_weighted)
{
	const struct qa_quant_ops *ops;
	const struct qa_type_info *t = type_at(_i, &ops);
	ck_assert(!ops->requires_imatrix);
	ck_assert_int_eq(ops->llama_requires_imatrix, types[_i].llama_requires_imatrix);
	if (!types[_i].weighted) {
		/* ggml ignores the weights: its bytes with a matrix are the plain ones */
		ck_assert_ptr_null(ops->quantize_rows);
		return;
	}
	ck_assert_ptr_nonnull(ops->quantize_rows);
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(t, N_INPUT, &nbytes));
	char rel[128], want[65], got[65];
	size_t len;
	snprintf(rel, sizeof rel, "fixtures/vectors/%s.imatrix.bin", t->name);
	uint8_t *ref = tu_slurp(tu_path(rel), &len);
	ck_assert_ptr_nonnull(ref);
	ck_assert_uint_eq(len, nbytes);
	uint8_t *q = malloc(nbytes);
	ops->quantize_rows(input, q, N_INPUT / ROW, ROW, imatrix);
	assert_bytes(t->name, q, ref, nbytes, t->block_bytes);
	float *f = malloc(N_INPUT * sizeof *f);
	ops->dequantize(ref, f, N_INPUT);
	digest_hex(f, N_INPUT * sizeof *f, got);
	snprintf(rel, sizeof rel, "%s.imatrix.dequant.f32", t->name);
	listed_digest(rel, want);
	ck_assert_str_eq(got, want);
	/* the weighted path without weights is the plain path */
	uint8_t *plain = malloc(nbytes);
	ops->quantize(input, plain, N_INPUT);
	ops->quantize_rows(input, q, N_INPUT / ROW, ROW, NULL);
	ck_assert_mem_eq(q, plain, nbytes);
	free(plain);
	free(f);
	free(q);
	free(ref);
}
END_TEST

/* limits: without weights, quantizing block by block gives the same bytes. */
START_TEST(block_locality)
{
	const struct qa_quant_ops *ops;
	const struct qa_type_info *t = type_at(_i, &ops);
	size_t n = 64 * 256; /* a quarter of the input keeps the iq3 searches quick */
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(t, n, &nbytes));
	uint8_t *whole = malloc(nbytes), *pieces = malloc(nbytes);
	ops->quantize(input + 3 * n, whole, n);
	for (size_t i = 0; i < n; i += t->block_elems)
		ops->quantize(input + 3 * n + i, pieces + i / t->block_elems * t->block_bytes,
		              t->block_elems);
	ck_assert_mem_eq(whole, pieces, nbytes);
	free(whole);
	free(pieces);
}
END_TEST

/*
 * limits: an all-zero block decodes to zeros; a lone value in the first
 * sub-block keeps its sign.  (Not in a later one: iq3_s, as ggml writes it,
 * stores a sub-block that follows an all-zero one in the zero one's place.)
 */
START_TEST(zero_and_spike)
{
	const struct qa_quant_ops *ops;
	const struct qa_type_info *t = type_at(_i, &ops);
	float x[256] = { 0 }, y[256];
	uint8_t q[256];
	size_t n = 256;
	ops->quantize(x, q, n);
	ops->dequantize(q, y, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(y[i] == 0.0f, "%s: zero block decodes to %g at %zu", t->name, y[i], i);
	x[5] = -3.5f;
	ops->quantize(x, q, n);
	ops->dequantize(q, y, n);
	ck_assert_msg(y[5] < 0.0f, "%s: spike decodes to %g", t->name, y[5]);
}
END_TEST

/* malformed: decoding arbitrary bytes (any scale, any index) keeps to its blocks and its n floats (tu_decode.h). */
START_TEST(decode_garbage)
{
	const struct qa_quant_ops *ops;
	const struct qa_type_info *t = type_at(_i, &ops);
	uint8_t raw[4 * 136 + 64]; /* 64 bytes past the blocks, which must not matter */
	uint32_t x = 2463534242u;
	size_t n = 1024 / t->block_elems * t->block_elems;
	ck_assert_uint_le(n / t->block_elems * t->block_bytes, sizeof raw);
	for (int round = 0; round < 64; round++) {
		for (size_t i = 0; i < sizeof raw; i++) {
			x ^= x << 13; x ^= x >> 17; x ^= x << 5;
			raw[i] = round == 0 ? 0xff : (uint8_t)x;
		}
		tu_decode_properties(t, ops, raw, sizeof raw, n);
	}
}
END_TEST


/* xorshift32 for the adversarial blocks below. */
static uint32_t xs32(uint32_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 17;
	*st ^= *st << 5;
	return *st;
}

/*
 * Block b of an adversarial input: Gaussian-ish values, zeros, a lone spike,
 * ties (repeated magnitudes), subnormals, a huge range, values near the
 * float range, sign runs and +-0.
 */
static void nasty_block(float *v, unsigned kind, uint32_t *st)
{
	for (int i = 0; i < 256; i++) {
		float g = ((float)(xs32(st) >> 8) / 16777216.0f - 0.5f) * 2;
		switch (kind % 10) {
		case 0: v[i] = g; break;
		case 1: v[i] = 0.0f; break;
		case 2: v[i] = i == 77 ? 50.0f : g * 1e-3f; break;
		case 3: v[i] = (float)((int)(xs32(st) % 5) - 2) * 0.25f; break;
		case 4: v[i] = g * 1e-40f; break;
		case 5: v[i] = i % 32 == 0 ? g * 1e30f : g * 1e-30f; break;
		case 6: v[i] = g * 3e37f; break;
		case 7: v[i] = (i / 8) % 2 ? -fabsf(g) : fabsf(g); break;
		case 8: v[i] = i % 2 ? -0.0f : g * (i % 32 == 1 ? 1.0f : 0.0f); break;
		default: v[i] = (i / 32) % 2 ? g : 0.0f; break;
		}
	}
}

/*
 * limits: iq3_xxs and iq3_s have a scalar search (pinned to ggml's bytes
 * by oracle_plain and oracle_weighted) and an AVX2 one; both write the same
 * bytes on the oracle input with and without its importance matrix, and on
 * adversarial blocks with plain, spread, zero and hostile (negative, NaN,
 * infinite) weights.
 */
START_TEST(iq3_paths_agree)
{
	const uint32_t type = _i ? QA_TYPE_IQ3_S : QA_TYPE_IQ3_XXS;
	const struct qa_type_info *t = qa_type_get(type);
	enum { ROWS = 4, COLS = 2560 };
	size_t n = 64 * 256, nb = n / 256 * t->block_bytes, nbx = ROWS * COLS / 256 * t->block_bytes;
	uint8_t *a = malloc(nbx > nb ? nbx : nb), *b = malloc(nbx > nb ? nbx : nb);
	float *x = malloc(ROWS * COLS * sizeof *x), qw[COLS];
	ck_assert(a && b && x);
	for (int weighted = 0; weighted < 2; weighted++) {
		const float *w = weighted ? imatrix : NULL;
		ck_assert(qa_quant_iq3_quantize_path(type, false, input, a, n / ROW, ROW, w));
		ck_assert(qa_quant_iq3_quantize_path(type, true, input, b, n / ROW, ROW, w));
		ck_assert_mem_eq(a, b, nb);
	}
	uint32_t st = 0x51ed270bu;
	for (int blk = 0; blk < ROWS * COLS / 256; blk++)
		nasty_block(x + 256 * blk, (unsigned)blk, &st);
	static const float hostile[] = { -1.0f, NAN, INFINITY, 0.0f, 3e38f, 1e-38f };
	for (int wk = 0; wk < 4; wk++) {
		for (int c = 0; c < COLS; c++) {
			uint32_t u = xs32(&st);
			qw[c] = wk == 1 ? 1.0f : wk == 2 ? (u % 4 == 0 ? 0.0f : (float)(u % 1000) * 0.01f)
			        : hostile[u % 6];
		}
		const float *w = wk ? qw : NULL;
		ck_assert(qa_quant_iq3_quantize_path(type, false, x, a, ROWS, COLS, w));
		ck_assert(qa_quant_iq3_quantize_path(type, true, x, b, ROWS, COLS, w));
		ck_assert_msg(memcmp(a, b, nbx) == 0, "%s weights %d: paths differ", t->name, wk);
	}
	ck_assert(!qa_quant_iq3_quantize_path(QA_TYPE_IQ2_S, true, x, a, 1, 256, NULL));
	free(a);
	free(b);
	free(x);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("quant_ext");
	TCase *core = tcase_create("core");
	tcase_add_unchecked_fixture(core, load, unload);
	tcase_add_loop_test(core, oracle_plain, 0, N_TYPES);
	tcase_add_loop_test(core, oracle_weighted, 0, N_TYPES);
	tcase_set_timeout(core, 120);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_unchecked_fixture(limits, load, unload);
	tcase_add_loop_test(limits, block_locality, 0, N_TYPES);
	tcase_add_loop_test(limits, zero_and_spike, 0, N_TYPES);
	tcase_add_loop_test(limits, iq3_paths_agree, 0, 2);
	tcase_set_timeout(limits, 60);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, decode_garbage, 0, N_TYPES);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
