/*
 * check_part.c - the partition of a sharded audit, held against its stated
 * properties (every item to exactly one shard, deterministic, the greedy
 * bound: no shard exceeds the lightest by more than the heaviest item) and
 * the part parser against malformed documents.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "part.h"
#include "testutil.h"

/* ------------------------------------------------------------------ core */

static const uint64_t w27[] = { 896, 14, 64, 8, 32, 8, 32, 8, 56, 14, 300, 300, 300, 14, 64, 8,
                                32, 8, 32, 8, 56, 14, 300, 300, 300, 14, 896 };

START_TEST(partition_properties)
{
	uint32_t n = (uint32_t)_i + 1;
	size_t m = sizeof w27 / sizeof w27[0];
	uint32_t a[32], b[32];
	ck_assert(qa_part_assign(w27, m, n, a));
	ck_assert(qa_part_assign(w27, m, n, b));
	ck_assert(memcmp(a, b, m * sizeof a[0]) == 0);
	uint64_t load[8] = { 0 }, heaviest = 0;
	for (size_t i = 0; i < m; i++) {
		ck_assert_uint_lt(a[i], n);
		load[a[i]] += w27[i];
		heaviest = w27[i] > heaviest ? w27[i] : heaviest;
	}
	uint64_t lo = UINT64_MAX, hi = 0;
	for (uint32_t s = 0; s < n; s++) {
		lo = load[s] < lo ? load[s] : lo;
		hi = load[s] > hi ? load[s] : hi;
	}
	ck_assert_uint_le(hi - lo, heaviest);
	if (n == 1)
		for (size_t i = 0; i < m; i++)
			ck_assert_uint_eq(a[i], 0);
}
END_TEST

START_TEST(partition_ties_by_position)
{
	/* equal weights go round-robin in order */
	uint64_t w[6] = { 5, 5, 5, 5, 5, 5 };
	uint32_t o[6];
	ck_assert(qa_part_assign(w, 6, 3, o));
	const uint32_t want[6] = { 0, 1, 2, 0, 1, 2 };
	ck_assert(memcmp(o, want, sizeof want) == 0);
}
END_TEST

/* ------------------------------------------------------------------ limits */

START_TEST(partition_limits)
{
	uint32_t o[2];
	uint64_t w[2] = { 1, 2 };
	ck_assert(!qa_part_assign(w, 2, 0, o));
	ck_assert(!qa_part_assign(w, 2, QA_PART_MAX_SHARDS + 1, o));
	ck_assert(qa_part_assign(w, 2, QA_PART_MAX_SHARDS, o));
	ck_assert(qa_part_assign(w, 0, 3, o));  /* nothing to deal */
	uint64_t huge[3] = { UINT64_MAX, UINT64_MAX, 1 };
	uint32_t h[3];
	ck_assert(qa_part_assign(huge, 3, 2, h));  /* loads saturate */
}
END_TEST

/* ------------------------------------------------------------------ malformed */

static const char *const bad_parts[] = {
	"[]",
	"{}",
	"{\"schema\":\"quantaudit.part/2\"}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"diff\",\"shard\":1,\"shards\":1,\"run\":\"x\"}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"hash\",\"shard\":1,\"shards\":1,\"run\":\"x\",\"header\":{}}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"diff\",\"shard\":2,\"shards\":1,\"run\":\"x\",\"header\":{}}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"diff\",\"shard\":-1,\"shards\":1,\"run\":\"x\",\"header\":{}}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"diff\",\"shard\":1,\"shards\":999,\"run\":\"x\",\"header\":{}}",
};

START_TEST(malformed_parts)
{
	json_error_t je;
	json_t *p = json_loads(bad_parts[_i], 0, &je);
	ck_assert_ptr_nonnull(p);
	const char *name = "p.json", *culprit = NULL;
	struct qa_part_merged m;
	struct qa_diag d;
	ck_assert_int_eq(qa_part_merge(&p, &name, 1, &m, &culprit, &d), QA_ERR_FORMAT);
	ck_assert_str_eq(culprit, "p.json");
	ck_assert_ptr_null(m.diff);
	json_decref(p);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("part");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits"), *mal = tcase_create("malformed");
	tcase_add_loop_test(core, partition_properties, 0, 8);
	tcase_add_test(core, partition_ties_by_position);
	tcase_add_test(limits, partition_limits);
	tcase_add_loop_test(mal, malformed_parts, 0, (int)(sizeof bad_parts / sizeof bad_parts[0]));
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, mal);
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
