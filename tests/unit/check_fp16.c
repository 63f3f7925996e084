/*
 * check_fp16.c - half and bfloat16 conversions: IEEE facts, round trips over
 * every half, and NaN handling.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"

static float f_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* Known narrowing results, each an IEEE 754 fact. */
static const struct {
	uint32_t in;
	uint16_t half, bf16;
} narrow[] = {
	{ 0x3f800000u, 0x3c00, 0x3f80 },     /* 1.0 */
	{ 0xbf800000u, 0xbc00, 0xbf80 },     /* -1.0 */
	{ 0x00000000u, 0x0000, 0x0000 },     /* +0 */
	{ 0x80000000u, 0x8000, 0x8000 },     /* -0 */
	{ 0x477fe000u, 0x7bff, 0x4780 },     /* 65504, largest half; bf16 rounds up */
	{ 0x477ff000u, 0x7c00, 0x4780 },     /* 65520: ties to even -> inf */
	{ 0x477fefffu, 0x7bff, 0x4780 },     /* just below 65520 */
	{ 0x33800000u, 0x0001, 0x3380 },     /* 2^-24, smallest subnormal half */
	{ 0x33000000u, 0x0000, 0x3300 },     /* 2^-25: tie to even -> 0 */
	{ 0x33400000u, 0x0001, 0x3340 },     /* 1.5 * 2^-25 -> rounds up */
	{ 0x38800000u, 0x0400, 0x3880 },     /* 2^-14, smallest normal half */
	{ 0x387fc000u, 0x03ff, 0x3880 },     /* largest subnormal half; bf16 ties up */
	{ 0x3f801000u, 0x3c00, 0x3f80 },     /* 1 + 2^-11: half tie to even (down) */
	{ 0x3f803000u, 0x3c02, 0x3f80 },     /* 1 + 3*2^-11: half tie to even (up) */
	{ 0x3f808000u, 0x3c04, 0x3f80 },     /* bf16 tie: 1 + 2^-8 -> even (down) */
	{ 0x3f818000u, 0x3c0c, 0x3f82 },     /* bf16 tie: -> even (up) */
	{ 0x7f800000u, 0x7c00, 0x7f80 },     /* +inf */
	{ 0xff7fffffu, 0xfc00, 0xff80 },     /* -FLT_MAX overflows both */
	{ 0x00000001u, 0x0000, 0x0000 },     /* fp32 subnormal -> 0 */
};

START_TEST(known_values)
{
	float f = f_of(narrow[_i].in);
	ck_assert_uint_eq(qa_fp32_to_fp16(f), narrow[_i].half);
	ck_assert_uint_eq(qa_fp32_to_bf16(f), narrow[_i].bf16);
}
END_TEST

/* Widening then narrowing every non-NaN half is the identity. */
START_TEST(half_round_trip)
{
	for (uint32_t h = 0; h < 65536; h++) {
		float f = qa_fp16_to_fp32((uint16_t)h);
		if (isnan(f))
			continue;
		ck_assert_uint_eq(qa_fp32_to_fp16(f), h);
		ck_assert_uint_eq(qa_fp32_to_bf16(qa_bf16_to_fp32((uint16_t)h)), h);
	}
}
END_TEST

/* Narrowing is monotonic over a dense sweep of positive floats. */
START_TEST(monotonic)
{
	uint16_t prev = 0;
	for (uint32_t u = 0x30000000u; u < 0x47800000u; u += 997) {
		uint16_t h = qa_fp32_to_fp16(f_of(u));
		ck_assert_uint_ge(h, prev);
		prev = h;
	}
}
END_TEST

/* NaNs stay NaNs of the same sign, quiet. */
static const uint32_t nans[] = { 0x7fc00000u, 0x7f800001u, 0xffc00000u, 0xff800001u, 0x7fffffffu };

START_TEST(nan_inputs)
{
	float f = f_of(nans[_i]);
	uint16_t h = qa_fp32_to_fp16(f), b = qa_fp32_to_bf16(f);
	ck_assert(isnan(qa_fp16_to_fp32(h)));
	ck_assert(isnan(qa_bf16_to_fp32(b)));
	ck_assert_uint_eq(h & 0x8000u, (nans[_i] >> 16) & 0x8000u);
	ck_assert_uint_eq(b & 0x8000u, (nans[_i] >> 16) & 0x8000u);
	ck_assert(h & 0x0200u);
	ck_assert(b & 0x0040u);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fp16");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, known_values, 0, (int)(sizeof narrow / sizeof narrow[0]));
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, half_round_trip);
	tcase_add_test(limits, monotonic);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, nan_inputs, 0, (int)(sizeof nans / sizeof nans[0]));
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
