#define _POSIX_C_SOURCE 200809L
/*
 * check_forensics.c - the forensics of a diff: the imatrix verdict, layouts
 * by error, the unpermuted layout and the different-quantizer inference, on
 * the pieces of llama-quantize's artifacts in fixtures/forensics/real and the
 * llama fixtures in fixtures/forensics/llama (fixtures/forensics/make.py says
 * how each was made and what it must show), plus the decision rules on
 * constructed inputs.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "forensics.h"
#include "gguf.h"
#include "names.h"
#include "source.h"
#include "testutil.h"
#include "tu_defects.h"
#include "types.h"

#define REAL_REF "fixtures/forensics/real/model.safetensors"
#define REAL_IMATRIX "fixtures/forensics/real/imatrix.transposed.gguf"
#define REAL_OTHER "fixtures/forensics/real/other-quantizer.transposed.gguf"
#define REAL_CORRUPT "fixtures/forensics/real/corrupt-block.gguf"
#define LLAMA_REF "fixtures/forensics/llama/model.safetensors"
#define LLAMA_BYTES "fixtures/forensics/llama/unpermuted.q4_0.gguf"
#define LLAMA_ERROR "fixtures/forensics/llama/unpermuted-other.q4_0.gguf"
#define MICRO_REF "fixtures/models/micro-qwen2.safetensors"
#define MICRO_CORRUPT "fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf"

static const struct qa_diff_tensor *find(const struct qa_diff_result *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->tensors[i].name, name) == 0)
			return &r->tensors[i];
	ck_abort_msg("tensor %s not in the result", name);
	return NULL;
}

static struct qa_diff_result *diff(const char *ref, const char *art)
{
	struct qa_diff_result *r = NULL;
	const char *culprit;
	struct qa_diag d;
	struct qa_diff_opts o;
	memset(&o, 0, sizeof o);
	o.n_threads = 2;
	enum qa_err e = qa_diff_run(tu_path(ref), tu_path(art), &o, &r, &culprit, &d);
	ck_assert_msg(e == QA_OK, "diff failed: %s", d.msg);
	return r;
}

/* llama-quantize --imatrix wrote both tensors; blk.1.ffn_down.weight from W
 * transposed (oracle real/README.md). */
START_TEST(imatrix_artifact_without_matrix)
{
	struct qa_diff_result *r = diff(REAL_REF, REAL_IMATRIX);
	ck_assert(r->declared_imatrix.declared);
	ck_assert_str_eq(r->declared_imatrix.file, "real-qwen2.imatrix.gguf");
	ck_assert_str_eq(r->declared_imatrix.dataset, "synthetic-seed-4");
	ck_assert(r->declared_imatrix.has_entries && r->declared_imatrix.entries == 15);
	ck_assert(r->declared_imatrix.has_chunks && r->declared_imatrix.chunks == 100);
	const struct qa_diff_tensor *v = find(r, "blk.0.attn_v.weight");
	ck_assert_int_eq(v->verdict, QA_VERDICT_IMATRIX);
	ck_assert_int_eq(v->evidence, QA_EVIDENCE_NONE);
	const struct qa_diff_tensor *t = find(r, "blk.1.ffn_down.weight");
	ck_assert_int_eq(t->verdict, QA_VERDICT_TRANSPOSED);
	ck_assert_int_eq(t->layout, QA_LAYOUT_TRANSPOSED);
	ck_assert_int_eq(t->evidence, QA_EVIDENCE_ERROR);
	ck_assert(t->has_layout_errors && t->layout_errors.tried[QA_LAYOUT_OUT_IN] &&
	          t->layout_errors.tried[QA_LAYOUT_TRANSPOSED]);
	ck_assert(!t->layout_errors.tried[QA_FX_UNPERMUTED]); /* qwen2 is not permuted */
	ck_assert(!r->pass);
	ck_assert_uint_eq(r->counts[QA_VERDICT_IMATRIX], 1);
	qa_diff_free(r);
}
END_TEST

/* The same bytes without the declaration: the transposed tensor is still
 * named by error, the other stays divergent with the inference. */
START_TEST(other_quantizer)
{
	struct qa_diff_result *r = diff(REAL_REF, REAL_OTHER);
	ck_assert(!r->declared_imatrix.declared);
	ck_assert_int_eq(find(r, "blk.0.attn_v.weight")->verdict, QA_VERDICT_DIVERGENT);
	const struct qa_diff_tensor *t = find(r, "blk.1.ffn_down.weight");
	ck_assert_int_eq(t->verdict, QA_VERDICT_TRANSPOSED);
	ck_assert_int_eq(t->evidence, QA_EVIDENCE_ERROR);
	ck_assert(r->different_quantizer);
	ck_assert_uint_eq(r->quantizer_n, 1);
	ck_assert(r->quantizer_min == r->quantizer_max && r->quantizer_min > 1.0 && r->quantizer_min < 1.25);
	qa_diff_free(r);
}
END_TEST

/* One flipped byte stays divergent, with the keys (fixture) and without
 * them (the oracle's corrupt artifact), and rules out the inference. */
START_TEST(corrupt_block_stays_divergent)
{
	static const struct { const char *ref, *art, *tensor; uint64_t block; bool keys; } c[] = {
		{ REAL_REF, REAL_CORRUPT, "blk.0.attn_v.weight", 5, true },
		{ MICRO_REF, MICRO_CORRUPT, NULL, 0, false }, /* where: defects.json */
	};
	char tensor[128];
	uint64_t block = c[_i].block;
	if (c[_i].tensor)
		snprintf(tensor, sizeof tensor, "%s", c[_i].tensor);
	else
		tu_defect_corrupt("micro-qwen2.Q4_K_M.corrupt.gguf", tensor, sizeof tensor, &block);
	struct qa_diff_result *r = diff(c[_i].ref, c[_i].art);
	ck_assert(r->declared_imatrix.declared == c[_i].keys);
	const struct qa_diff_tensor *t = find(r, tensor);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->verdict, QA_VERDICT_DIVERGENT);
	ck_assert_uint_eq(t->divergent_blocks, 1);
	ck_assert_uint_eq(t->first_divergent, block);
	ck_assert_uint_eq(r->counts[QA_VERDICT_IMATRIX], 0);
	ck_assert(!r->different_quantizer);
	qa_diff_free(r);
}
END_TEST

/* llama q/k without the rotary permutation: by bytes, then by error. */
START_TEST(unpermuted)
{
	static const char *const arts[] = { LLAMA_BYTES, LLAMA_ERROR };
	static const char *const names[] = { "blk.0.attn_q.weight", "blk.0.attn_k.weight" };
	struct qa_diff_result *r = diff(LLAMA_REF, arts[_i]);
	for (int k = 0; k < 2; k++) {
		const struct qa_diff_tensor *t = find(r, names[k]);
		ck_assert_int_eq(t->verdict, QA_VERDICT_UNPERMUTED);
		ck_assert_int_eq(t->layout, QA_FX_UNPERMUTED);
		ck_assert_int_eq(t->evidence, _i == 0 ? QA_EVIDENCE_BYTES : QA_EVIDENCE_ERROR);
	}
	/* the others: identical from the same weights; divergent, not a layout, from moved ones */
	const struct qa_diff_tensor *v = find(r, "blk.0.attn_v.weight");
	ck_assert_int_eq(v->verdict, _i == 0 ? QA_VERDICT_IDENTICAL : QA_VERDICT_DIVERGENT);
	ck_assert(!v->has_layout_errors || !v->layout_errors.tried[QA_FX_UNPERMUTED]);
	ck_assert_uint_eq(r->counts[QA_VERDICT_UNPERMUTED], 2);
	qa_diff_free(r);
}
END_TEST

/* qa_forensics_unpermute undoes qa_names_permute_rows. */
START_TEST(unpermute_inverts_permute)
{
	static const struct { uint64_t rows, cols; uint32_t heads; } c[] = {
		{ 8, 3, 1 }, { 8, 3, 2 }, { 8, 3, 4 }, { 128, 5, 2 }, { 256, 1, 4 },
	};
	size_t n = (size_t)(c[_i].rows * c[_i].cols);
	float *w = malloc(n * sizeof *w), *p = malloc(n * sizeof *p), *u = malloc(n * sizeof *u);
	for (size_t k = 0; k < n; k++)
		w[k] = (float)k;
	ck_assert_int_eq(qa_names_permute_rows(w, p, c[_i].rows, c[_i].cols, c[_i].heads, NULL), QA_OK);
	ck_assert_int_eq(qa_forensics_unpermute(p, u, c[_i].rows, c[_i].cols, c[_i].heads, NULL), QA_OK);
	ck_assert(memcmp(w, u, n * sizeof *w) == 0);
	free(w);
	free(p);
	free(u);
}
END_TEST

/* The decision rule of layouts by error, on constructed figures. */
START_TEST(layout_by_error_rule)
{
	static const struct {
		bool tried[4];
		double rmse[4], noise[4];
		int want;
	} c[] = {
		/* transposed within noise, out,in far */
		{ { true, false, true, false }, { 1.0, 0, 0.011, 0 }, { 0.01, 0, 0.01, 0 }, QA_LAYOUT_TRANSPOSED },
		/* out,in within noise (a different quantizer): nothing */
		{ { true, false, true, false }, { 0.0102, 0, 0.5, 0 }, { 0.01, 0, 0.01, 0 }, -1 },
		/* out,in not far enough (2.9x) */
		{ { true, false, true, false }, { 0.029, 0, 0.01, 0 }, { 0.01, 0, 0.01, 0 }, -1 },
		/* no layout within noise: damage */
		{ { true, true, true, true }, { 1, 1, 1, 1 }, { 0.01, 0.01, 0.01, 0.01 }, -1 },
		/* the smaller of two candidates */
		{ { true, false, true, true }, { 1, 0, 0.014, 0.011 }, { 0.01, 0, 0.01, 0.01 }, QA_FX_UNPERMUTED },
		/* out,in not comparable (swapped shape): in,out within noise suffices */
		{ { false, true, false, false }, { 0, 0.012, 0, 0 }, { 0, 0.01, 0, 0 }, QA_LAYOUT_IN_OUT },
		/* the noise bound is inclusive */
		{ { true, true, false, false }, { 1, 0.015, 0, 0 }, { 0.01, 0.01, 0, 0 }, QA_LAYOUT_IN_OUT },
	};
	struct qa_layout_errors e;
	memset(&e, 0, sizeof e);
	for (int l = 0; l < 4; l++) {
		e.tried[l] = c[_i].tried[l];
		e.rmse[l] = c[_i].rmse[l];
		e.noise[l] = c[_i].noise[l];
	}
	ck_assert_int_eq(qa_forensics_layout_by_error(&e), c[_i].want);
}
END_TEST

/* The band on its edges, and every ratio measured on llama-quantize's
 * --imatrix artifacts (0.764 .. 1.159, docs/design.md) inside it. */
START_TEST(imatrix_band)
{
	ck_assert(qa_forensics_imatrix_band(QA_FX_IMATRIX_LO));
	ck_assert(qa_forensics_imatrix_band(QA_FX_IMATRIX_HI));
	ck_assert(qa_forensics_imatrix_band(0.764) && qa_forensics_imatrix_band(1.159));
	ck_assert(!qa_forensics_imatrix_band(0.69) && !qa_forensics_imatrix_band(1.31));
	ck_assert(!qa_forensics_imatrix_band(NAN) && !qa_forensics_imatrix_band(INFINITY));
	ck_assert(qa_forensics_ratio(0, 0) == 1.0 && isinf(qa_forensics_ratio(1, 0)));
}
END_TEST

/* qa_forensics_classify on a hand-made result: which tensors get imatrix,
 * and when the inference holds. */
START_TEST(classify_rules)
{
	struct qa_diff_tensor t[4];
	struct qa_diff_result r;
	memset(t, 0, sizeof t);
	memset(&r, 0, sizeof r);
	for (int k = 0; k < 4; k++) {
		t[k].verdict = QA_VERDICT_DIVERGENT;
		t[k].quantized = true;
		t[k].n_dims = 2;
		t[k].has_error = true;
		t[k].blocks = 100;
		t[k].divergent_blocks = 90;
		t[k].requant_rmse = 1.0;
		t[k].layout = -1;
	}
	t[0].rmse = 1.05;               /* in the band */
	t[1].rmse = 1.5;                /* outside */
	t[2].rmse = 1.0;
	t[2].divergent_blocks = 50;     /* not most blocks */
	t[3].rmse = 0.9;
	t[3].n_dims = 1;                /* not a matrix */
	r.tensors = t;
	r.n = 4;
	r.declared_imatrix.declared = _i == 1;
	qa_forensics_classify(&r);
	ck_assert_int_eq(t[0].verdict, _i == 1 ? QA_VERDICT_IMATRIX : QA_VERDICT_DIVERGENT);
	ck_assert_int_eq(t[1].verdict, QA_VERDICT_DIVERGENT);
	ck_assert_int_eq(t[2].verdict, QA_VERDICT_DIVERGENT);
	ck_assert_int_eq(t[3].verdict, QA_VERDICT_DIVERGENT);
	ck_assert(!r.pass);
	/* t[2] diverges in half its blocks only, t[1] is 1.5x: no inference */
	ck_assert(!r.different_quantizer);
	t[1].rmse = 1.2;
	t[2].divergent_blocks = 51;
	for (int k = 0; k < 4; k++)
		t[k].verdict = QA_VERDICT_DIVERGENT;
	r.declared_imatrix.declared = false;
	qa_forensics_classify(&r);
	ck_assert(r.different_quantizer);
	ck_assert_uint_eq(r.quantizer_n, 4);
	ck_assert(r.quantizer_min == 0.9 && r.quantizer_max == 1.2);
	ck_assert(fabs(r.quantizer_median - (1.0 + 1.05) / 2) < 1e-12);
}
END_TEST

/* The corrupt Q4_K_M artifact is exactly ggml's Q4_K_M but for one block of
 * blk.1.ffn_up.weight (fixtures/README.md): against the Q4_K_M recipe every
 * class but ffn_up (and the whole model) has the same RMSE and bits. */
START_TEST(recipe_compare_self)
{
	struct qa_diff_result *r = diff(MICRO_REF, MICRO_CORRUPT);
	const struct qa_recipe *rs[2] = { qa_recipe_by_name("Q4_K_M"), qa_recipe_by_name("Q8_0") };
	struct qa_diag d;
	ck_assert_int_eq(qa_forensics_recipe_compare(tu_path(MICRO_REF), r, rs, 2, NULL, 2, &d), QA_OK);
	const struct qa_recipe_cmp *c = r->recipe_cmp;
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->n_recipes, 2);
	ck_assert_str_eq(c->rows[c->n_rows - 1].cls, "all");
	size_t tensors = 0;
	for (size_t j = 0; j < c->n_rows; j++) {
		const struct qa_recipe_cmp_row *row = &c->rows[j];
		bool damaged = strcmp(row->cls, "ffn_up") == 0 || j == c->n_rows - 1;
		/* the artifact's sum is rebuilt from its RMSE: equal to rounding */
		double rel = fabs(row->art_rmse - row->rmse[0]) / row->rmse[0];
		ck_assert_msg(damaged ? rel > 1e-10 : rel < 1e-12, "%s: %g", row->cls, rel);
		ck_assert(row->art_bpw == row->bpw[0]);
		ck_assert(row->rmse[1] < row->rmse[0]); /* q8_0 is finer */
		ck_assert(row->bpw[1] > row->bpw[0] || strcmp(row->cls, "output") == 0);
		if (j < c->n_rows - 1)
			tensors += row->tensors;
	}
	ck_assert_uint_eq(tensors, c->rows[c->n_rows - 1].tensors);
	qa_diff_free(r);
}
END_TEST

START_TEST(recipes_parse)
{
	const struct qa_recipe *rs[QA_FX_MAX_RECIPES];
	size_t n;
	struct qa_diag d;
	ck_assert_int_eq(qa_forensics_recipes_parse("Q4_K_M,q4_k_s", rs, &n, &d), QA_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(qa_recipe_name(rs[0]), "Q4_K_M");
	ck_assert_str_eq(qa_recipe_name(rs[1]), "Q4_K_S");
	static const char *const bad[] = { "", ",", "Q4_K_M,", "Q9_K", "Q4_K_M,Q4_K_M",
	                                   "Q4_0,Q4_1,Q5_0,Q5_1,Q8_0,Q2_K,Q3_K_S,Q3_K_M,Q3_K_L" };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		ck_assert_int_eq(qa_forensics_recipes_parse(bad[k], rs, &n, &d), QA_ERR_USAGE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("forensics");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 120);
	tcase_add_test(core, imatrix_artifact_without_matrix);
	tcase_add_test(core, other_quantizer);
	tcase_add_loop_test(core, corrupt_block_stays_divergent, 0, 2);
	tcase_add_loop_test(core, unpermuted, 0, 2);
	tcase_add_loop_test(core, unpermute_inverts_permute, 0, 5);
	tcase_add_loop_test(core, layout_by_error_rule, 0, 7);
	tcase_add_loop_test(core, classify_rules, 0, 2);
	tcase_add_test(core, recipe_compare_self);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, imatrix_band);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, recipes_parse);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
