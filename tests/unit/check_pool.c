#define _POSIX_C_SOURCE 200809L
/*
 * check_pool.c - the parallel-for: every item runs exactly once whatever
 * the thread count, and errors are reported deterministically.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "pool.h"

struct counter {
	atomic_int *hits;
	size_t fail_from; /* items >= this fail */
	atomic_int calls;
};

static enum qa_err bump(void *ctx, size_t item, unsigned worker)
{
	struct counter *c = ctx;
	(void)worker;
	atomic_fetch_add(&c->hits[item], 1);
	atomic_fetch_add(&c->calls, 1);
	if (item >= c->fail_from)
		return item % 2 ? QA_ERR_IO : QA_ERR_NOMEM;
	return QA_OK;
}

static const struct {
	unsigned threads;
	size_t items;
} shapes[] = { { 1, 1000 }, { 2, 1000 }, { 4, 7 }, { 0, 333 }, { 16, 3 }, { 3, 1 } };

/* core: each item exactly once. */
START_TEST(each_item_once)
{
	size_t n = shapes[_i].items;
	struct counter c = { calloc(n, sizeof(atomic_int)), SIZE_MAX, 0 };
	ck_assert_int_eq(qa_pool_run(shapes[_i].threads, n, bump, &c), QA_OK);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(atomic_load(&c.hits[i]), 1);
	free(c.hits);
}
END_TEST

/* limits: no items is a no-op; the default thread count is positive. */
START_TEST(empty_and_default)
{
	struct counter c = { NULL, SIZE_MAX, 0 };
	ck_assert_int_eq(qa_pool_run(4, 0, bump, &c), QA_OK);
	ck_assert_int_eq(atomic_load(&c.calls), 0);
	ck_assert_uint_ge(qa_pool_default_threads(), 1);
}
END_TEST

/* malformed: a failing item's error comes back; with one thread it is the first failure. */
START_TEST(errors)
{
	size_t n = 100;
	struct counter c = { calloc(n, sizeof(atomic_int)), 41, 0 };
	ck_assert_int_eq(qa_pool_run(1, n, bump, &c), QA_ERR_IO); /* item 41 is odd */
	ck_assert_int_eq(atomic_load(&c.calls), 42);              /* hand-out stops */
	free(c.hits);
}
END_TEST

/*
 * Two failing items where the higher-numbered one fails first in time: item
 * LOW waits (up to 5 s) until item HIGH has failed, then fails with another
 * code.  The pool must report LOW's error, not the first one to arrive, and
 * every item below LOW must have run exactly once.  A pool that keeps the
 * first error in time returns HIGH's code here with two or more threads.
 */
enum { LOW = 3, HIGH = 7, N_RACE = 64 };

struct race {
	atomic_int hits[N_RACE];
	atomic_bool high_failed;
	unsigned threads;
};

static enum qa_err race_item(void *ctx, size_t item, unsigned worker)
{
	struct race *r = ctx;
	(void)worker;
	atomic_fetch_add(&r->hits[item], 1);
	if (item == HIGH) {
		atomic_store(&r->high_failed, true);
		return QA_ERR_IO;
	}
	if (item == LOW) {
		/* with one thread HIGH never runs (the hand-out stops at LOW) */
		for (int k = 0; r->threads > 1 && k < 5000 && !atomic_load(&r->high_failed); k++)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		return QA_ERR_VALUE;
	}
	return QA_OK;
}

START_TEST(lowest_error_wins)
{
	static const unsigned threads[] = { 1, 2, 4, 16 };
	struct race *r = calloc(1, sizeof *r);
	ck_assert_ptr_nonnull(r);
	r->threads = threads[_i];
	ck_assert_int_eq(qa_pool_run(r->threads, N_RACE, race_item, r), QA_ERR_VALUE);
	for (size_t i = 0; i <= LOW; i++)
		ck_assert_int_eq(atomic_load(&r->hits[i]), 1);
	if (r->threads > 1)
		ck_assert(atomic_load(&r->high_failed)); /* the race did happen */
	else
		ck_assert_int_eq(atomic_load(&r->hits[HIGH]), 0);
	free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pool");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, each_item_once, 0, (int)(sizeof shapes / sizeof shapes[0]));
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, empty_and_default);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, errors);
	tcase_add_loop_test(bad, lowest_error_wins, 0, 4);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
