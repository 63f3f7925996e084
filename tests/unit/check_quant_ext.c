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
