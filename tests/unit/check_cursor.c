/*
 * check_cursor.c - the bounds-checked reader and the checked size helpers.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"

static const uint8_t bytes[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                 0x00, 0x00, 0x80, 0x3f, 0xff };

/* Each read at offset 0 gives the little-endian value. */
START_TEST(le_reads)
{
	struct qa_cursor c;
	qa_cursor_init(&c, bytes, sizeof bytes, 1000);
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	float f;
	switch (_i) {
	case 0: ck_assert_int_eq(qa_cursor_u8(&c, &u8, "x", NULL), QA_OK); ck_assert_uint_eq(u8, 1); break;
	case 1: ck_assert_int_eq(qa_cursor_u16(&c, &u16, "x", NULL), QA_OK); ck_assert_uint_eq(u16, 0x0201); break;
	case 2: ck_assert_int_eq(qa_cursor_u32(&c, &u32, "x", NULL), QA_OK); ck_assert_uint_eq(u32, 0x04030201u); break;
	case 3: ck_assert_int_eq(qa_cursor_u64(&c, &u64, "x", NULL), QA_OK); ck_assert_uint_eq(u64, 0x0807060504030201ull); break;
	case 4:
		ck_assert_int_eq(qa_cursor_skip(&c, 8, "x", NULL), QA_OK);
		ck_assert_int_eq(qa_cursor_f32(&c, &f, "x", NULL), QA_OK);
		ck_assert_float_eq(f, 1.0f);
		ck_assert_uint_eq(qa_cursor_offset(&c), 1012);
		break;
	}
}
END_TEST

/* Reading up to the last byte works; one more fails without moving. */
START_TEST(exact_end)
{
	struct qa_cursor c;
	struct qa_diag d;
	const uint8_t *p;
	qa_cursor_init(&c, bytes, sizeof bytes, 0);
	ck_assert_int_eq(qa_cursor_bytes(&c, sizeof bytes, &p, "all", NULL), QA_OK);
	ck_assert_uint_eq(qa_cursor_remaining(&c), 0);
	ck_assert_int_eq(qa_cursor_bytes(&c, 0, &p, "nothing", NULL), QA_OK);
	uint8_t u;
	ck_assert_int_eq(qa_cursor_u8(&c, &u, "byte", &d), QA_ERR_FORMAT);
	ck_assert_uint_eq(d.offset, sizeof bytes);
}
END_TEST

static const struct {
	size_t a, b;
	int mul_ok, add_ok;
} sizes[] = {
	{ 0, SIZE_MAX, 1, 1 },
	{ 1, SIZE_MAX, 1, 0 },
	{ 2, SIZE_MAX / 2, 1, 1 },
	{ 2, SIZE_MAX / 2 + 1, 0, 1 },
	{ SIZE_MAX, SIZE_MAX, 0, 0 },
	{ (size_t)1 << 32, (size_t)1 << 32, 0, 1 },
};

START_TEST(checked_sizes)
{
	size_t r;
	uint64_t r64;
	ck_assert_int_eq(qa_mul_size(sizes[_i].a, sizes[_i].b, &r), sizes[_i].mul_ok);
	if (sizes[_i].mul_ok)
		ck_assert_uint_eq(r, sizes[_i].a * sizes[_i].b);
	ck_assert_int_eq(qa_add_size(sizes[_i].a, sizes[_i].b, &r), sizes[_i].add_ok);
	ck_assert_int_eq(qa_mul_u64(sizes[_i].a, sizes[_i].b, &r64), sizes[_i].mul_ok);
	ck_assert_int_eq(qa_add_u64(sizes[_i].a, sizes[_i].b, &r64), sizes[_i].add_ok);
}
END_TEST

/* A truncated read fails with the offset of the read and leaves the cursor in place. */
START_TEST(truncated)
{
	struct qa_cursor c;
	struct qa_diag d;
	uint64_t v;
	qa_cursor_init(&c, bytes, (size_t)_i, 500);
	ck_assert_int_eq(qa_cursor_u64(&c, &v, "tensor count", &d), QA_ERR_FORMAT);
	ck_assert_uint_eq(d.offset, 500);
	ck_assert_ptr_nonnull(strstr(d.msg, "tensor count"));
	ck_assert_uint_eq(qa_cursor_offset(&c), 500);
	const uint8_t *p;
	ck_assert_int_eq(qa_cursor_bytes(&c, UINT64_MAX, &p, "string", &d), QA_ERR_FORMAT);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cursor");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, le_reads, 0, 5);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, exact_end);
	tcase_add_loop_test(limits, checked_sizes, 0, (int)(sizeof sizes / sizeof sizes[0]));
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, truncated, 0, 8);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
