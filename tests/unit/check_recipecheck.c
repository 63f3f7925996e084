#define _POSIX_C_SOURCE 200809L
/*
 * check_recipecheck.c - a recipe against a pure type on a model's shapes:
 * the plan for more layers than the checkpoint has follows llama.cpp's
 * use_more_bits rule as the oracle's README states it, and the error figures
 * obey what they are (the same type gives the same error; q6_K is finer than
 * q4_K; the carried-over estimate is the plan's mix of the measured ones).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recipe.h"
#include "recipecheck.h"
#include "testutil.h"
#include "types.h"

#define REF "fixtures/models/micro-qwen2.safetensors"

/* llama.cpp's use_more_bits (oracle models/README: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2) */
static bool more_bits(int i, int n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

START_TEST(plan_and_error)
{
	static const uint32_t layers[] = { 28, 32, 2 };
	uint32_t n = layers[_i];
	struct qa_recipe_check *c = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_recipe_check_run(tu_path(REF), qa_recipe_by_name("Q4_K_M"), QA_TYPE_Q4_K, n, 1, 2, &c, &d),
	                 QA_OK);
	ck_assert_uint_eq(c->n_layer, n);
	int down = qa_recipe_check_class(c, "ffn_down"), v = qa_recipe_check_class(c, "attn_v");
	int o = qa_recipe_check_class(c, "attn_output"), q = qa_recipe_check_class(c, "attn_q");
	ck_assert(down >= 0 && v >= 0 && o >= 0 && q >= 0);
	size_t want = 0;
	for (uint32_t l = 0; l < n; l++) {
		bool mb = more_bits((int)l, (int)n);
		want += mb;
		ck_assert_uint_eq(c->plan[(size_t)l * c->n_classes + (size_t)down], mb ? QA_TYPE_Q6_K : QA_TYPE_Q4_K);
		ck_assert_uint_eq(c->plan[(size_t)l * c->n_classes + (size_t)v], mb ? QA_TYPE_Q6_K : QA_TYPE_Q4_K);
		ck_assert_uint_eq(c->plan[(size_t)l * c->n_classes + (size_t)o], QA_TYPE_Q4_K);
	}
	ck_assert_uint_eq(qa_recipe_check_layers_at(c, (size_t)down, QA_TYPE_Q6_K), want);
	ck_assert_uint_eq(qa_recipe_check_layers_at(c, (size_t)o, QA_TYPE_Q6_K), 0);
	/* the same type: the same error; q6_K finer than q4_K */
	const struct qa_rc_class *cq = &c->classes[q], *cd = &c->classes[down];
	ck_assert(cq->est_rmse_pure == cq->est_rmse_recipe && cq->est_rmse_pure > 0);
	ck_assert(cd->measured[0] && cd->measured[1]);
	ck_assert_uint_eq(c->types[0], QA_TYPE_Q4_K);
	ck_assert(cd->rmse[1] < cd->rmse[0]);
	double mix = sqrt(((double)want * cd->rmse[1] * cd->rmse[1] + (double)(n - want) * cd->rmse[0] * cd->rmse[0]) / n);
	ck_assert(fabs(mix - cd->est_rmse_recipe) <= 1e-12 * mix);
	ck_assert(c->layers_rmse_recipe < c->layers_rmse_pure);
	ck_assert(c->bpw_recipe > c->bpw_pure && c->bpw_pure == 4.5);
	qa_recipe_check_free(c);
}
END_TEST

START_TEST(bad_counts)
{
	struct qa_recipe_check *c = NULL;
	struct qa_diag d;
	const struct qa_recipe *r = qa_recipe_by_name("Q4_K_M");
	ck_assert_int_eq(qa_recipe_check_run(tu_path(REF), r, QA_TYPE_Q4_K, 28, 3, 1, &c, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_recipe_check_run(tu_path(REF), r, QA_TYPE_Q4_K, 28, 0, 1, &c, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_recipe_check_run(tu_path(REF), NULL, QA_TYPE_Q4_K, 28, 1, 1, &c, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_recipe_check_run(tu_path(REF), r, QA_TYPE_Q8_K, 28, 1, 1, &c, &d), QA_ERR_USAGE);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(malformed_reference)
{
	struct qa_recipe_check *c = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_recipe_check_run(tu_path("tests/data/safetensors/bad-overlap.safetensors"),
	                                     qa_recipe_by_name("Q4_K_M"), QA_TYPE_Q4_K, 28, 1, 1, &c, &d), QA_ERR_FORMAT);
	ck_assert_ptr_null(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("recipecheck");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 120);
	tcase_add_loop_test(core, plan_and_error, 0, 3);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, bad_counts);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, malformed_reference);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
