/*
 * check_layout.c - the three row layouts of a 2-D weight: geometry (the
 * shape-swap arithmetic of AUDIT-Q4K-SHAPE-001) and row contents.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "layout.h"

static const struct {
	enum qa_layout l;
	uint64_t in, out;
	uint32_t be;
	uint64_t rows, len, padded;
} geoms[] = {
	/* Qwen2-0.5B ffn_down: in 4864, out 896 */
	{ QA_LAYOUT_OUT_IN, 4864, 896, 256, 896, 4864, 4864 },
	{ QA_LAYOUT_IN_OUT, 4864, 896, 256, 4864, 896, 1024 },
	{ QA_LAYOUT_TRANSPOSED, 4864, 896, 256, 4864, 896, 1024 },
	/* hidden 896 is not a multiple of 256: out,in pads too */
	{ QA_LAYOUT_OUT_IN, 896, 896, 256, 896, 896, 1024 },
	{ QA_LAYOUT_IN_OUT, 1536, 8960, 256, 1536, 8960, 8960 },
	{ QA_LAYOUT_IN_OUT, 384, 128, 32, 384, 128, 128 },
	{ QA_LAYOUT_OUT_IN, 5, 3, 1, 3, 5, 5 },
};

START_TEST(geometry)
{
	struct qa_layout_geom g;
	ck_assert(qa_layout_geom(geoms[_i].l, geoms[_i].in, geoms[_i].out, geoms[_i].be, &g));
	ck_assert_uint_eq(g.n_rows, geoms[_i].rows);
	ck_assert_uint_eq(g.row_len, geoms[_i].len);
	ck_assert_uint_eq(g.padded, geoms[_i].padded);
}
END_TEST

/* Row contents on a 3x5 matrix W[r][c] = 10r + c (out 3, in 5), padded to blocks of 4. */
START_TEST(rows)
{
	float w[15], row[8];
	for (int r = 0; r < 3; r++)
		for (int c = 0; c < 5; c++)
			w[r * 5 + c] = (float)(10 * r + c);
	enum qa_layout l = (enum qa_layout)_i;
	struct qa_layout_geom g;
	ck_assert(qa_layout_geom(l, 5, 3, 4, &g));
	for (uint64_t r = 0; r < g.n_rows; r++) {
		qa_layout_row(l, w, 5, 3, &g, r, row);
		for (uint64_t k = 0; k < g.padded; k++) {
			float want;
			if (k >= g.row_len)
				want = 0.0f;
			else if (l == QA_LAYOUT_OUT_IN)
				want = w[r * 5 + k];
			else if (l == QA_LAYOUT_IN_OUT)
				want = w[r * 3 + k]; /* the flat data read as rows of 3 */
			else
				want = w[k * 5 + r]; /* column r of W */
			ck_assert_float_eq(row[k], want);
		}
	}
}
END_TEST

START_TEST(overflow_and_names)
{
	struct qa_layout_geom g;
	enum qa_layout l;
	ck_assert(!qa_layout_geom(QA_LAYOUT_OUT_IN, UINT64_MAX, 2, 256, &g));
	ck_assert(!qa_layout_geom(QA_LAYOUT_IN_OUT, UINT64_MAX / 2, UINT64_MAX / 2, 256, &g));
	for (int i = 0; i < QA_LAYOUT_COUNT; i++) {
		ck_assert(qa_layout_parse(qa_layout_name((enum qa_layout)i), &l));
		ck_assert_int_eq(l, i);
	}
}
END_TEST

static const char *const bad_names[] = { "", "in-out", "OUT,IN", "out,in ", "transpose" };

START_TEST(bad_names_refused)
{
	enum qa_layout l = QA_LAYOUT_TRANSPOSED;
	ck_assert(!qa_layout_parse(bad_names[_i], &l));
	ck_assert_int_eq(l, QA_LAYOUT_TRANSPOSED);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("layout");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, geometry, 0, (int)(sizeof geoms / sizeof geoms[0]));
	tcase_add_loop_test(core, rows, 0, QA_LAYOUT_COUNT);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, overflow_and_names);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, bad_names_refused, 0, (int)(sizeof bad_names / sizeof bad_names[0]));
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
