/*
 * check_types.c - the ggml type table: ggml's published geometry for every
 * type, name lookup and overflow-checked sizes.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "types.h"

/* ggml's ids and block geometry (ggml.c's type traits). */
static const struct {
	uint32_t id;
	const char *name;
	uint32_t be, bb;
} facts[] = {
	{ 0, "f32", 1, 4 },      { 1, "f16", 1, 2 },       { 2, "q4_0", 32, 18 },
	{ 3, "q4_1", 32, 20 },   { 6, "q5_0", 32, 22 },    { 7, "q5_1", 32, 24 },
	{ 8, "q8_0", 32, 34 },   { 9, "q8_1", 32, 36 },    { 10, "q2_K", 256, 84 },
	{ 11, "q3_K", 256, 110 }, { 12, "q4_K", 256, 144 }, { 13, "q5_K", 256, 176 },
	{ 14, "q6_K", 256, 210 }, { 15, "q8_K", 256, 292 }, { 16, "iq2_xxs", 256, 66 },
	{ 17, "iq2_xs", 256, 74 }, { 18, "iq3_xxs", 256, 98 }, { 19, "iq1_s", 256, 50 },
	{ 20, "iq4_nl", 32, 18 }, { 21, "iq3_s", 256, 110 }, { 22, "iq2_s", 256, 82 },
	{ 23, "iq4_xs", 256, 136 }, { 24, "i8", 1, 1 },     { 25, "i16", 1, 2 },
	{ 26, "i32", 1, 4 },     { 27, "i64", 1, 8 },      { 28, "f64", 1, 8 },
	{ 29, "iq1_m", 256, 56 }, { 30, "bf16", 1, 2 },    { 34, "tq1_0", 256, 54 },
	{ 35, "tq2_0", 256, 66 }, { 39, "mxfp4", 32, 17 },
};

START_TEST(geometry)
{
	const struct qa_type_info *t = qa_type_get(facts[_i].id);
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->name, facts[_i].name);
	ck_assert_uint_eq(t->block_elems, facts[_i].be);
	ck_assert_uint_eq(t->block_bytes, facts[_i].bb);
	ck_assert_ptr_eq(qa_type_by_name(facts[_i].name), t);
}
END_TEST

START_TEST(sizes)
{
	const struct qa_type_info *q4k = qa_type_get(12), *f32 = qa_type_get(0);
	uint64_t n;
	ck_assert(qa_type_nbytes(q4k, 4864 * 896, &n));
	ck_assert_uint_eq(n, 4864 * 896 / 256 * 144);
	ck_assert(!qa_type_nbytes(q4k, 300, &n)); /* not whole blocks */
	ck_assert(!qa_type_nbytes(f32, UINT64_MAX, &n)); /* overflow */
	ck_assert(qa_type_nbytes(f32, UINT64_MAX / 4, &n));
	ck_assert_double_eq_tol(qa_type_bpw(q4k), 4.5, 1e-12);
	ck_assert_ptr_eq(qa_type_by_name("Q4_k"), q4k); /* case-insensitive */
}
END_TEST

static const uint32_t unknown_ids[] = { 4, 5, 31, 32, 33, 36, 37, 38, 40, 1000, UINT32_MAX };

START_TEST(unknown)
{
	ck_assert_ptr_null(qa_type_get(unknown_ids[_i]));
	ck_assert_str_eq(qa_type_name(unknown_ids[_i]), "unknown");
	ck_assert_ptr_null(qa_type_by_name("q4_2"));
	ck_assert_ptr_null(qa_type_by_name(""));
	ck_assert_ptr_null(qa_type_by_name(NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("types");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, geometry, 0, (int)(sizeof facts / sizeof facts[0]));
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, sizes);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, unknown, 0, (int)(sizeof unknown_ids / sizeof unknown_ids[0]));
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
