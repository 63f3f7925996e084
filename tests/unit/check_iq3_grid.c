#define _POSIX_C_SOURCE 200809L
/*
 * check_iq3_grid.c - the iq3 grids and their derived search tables
 * (iq3_grid.c) against ggml's.
 *
 * Source of truth: fixtures/vectors/iqother.sha256 lists the SHA-256 of
 * ggml's tables as fixtures/vectors/gen-iq-vectors.c dumped them: the decode
 * grids iq3xxs_grid and iq3s_grid of ggml-common.h, and for each grid the
 * search grid, map and neighbour lists that iq3xs_init_impl builds (host
 * little-endian int32 / uint16 arrays).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockhash.h"
#include "cursor.h"
#include "iq3_grid.h"
#include "testutil.h"

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

static void assert_digest(const void *p, size_t n, const char *file)
{
	uint8_t d[32];
	char got[65], want[65];
	ck_assert_int_eq(qa_sha256(p, n, d, NULL), QA_OK);
	for (int i = 0; i < 32; i++)
		snprintf(got + 2 * i, 3, "%02x", d[i]);
	listed_digest(file, want);
	ck_assert_msg(strcmp(got, want) == 0, "%s: digest %s, ggml's %s", file, got, want);
}

static const struct {
	unsigned npoints;
	const char *decode_file;
	size_t n_neighbours; /* ggml's total: neighbours.bin is this many uint16 */
} grids[] = {
	{ 256, "iq3xxs_grid.bin", 22825 },
	{ 512, "iq3s_grid.bin", 28317 },
};

/* core: every table equals ggml's, byte for byte (by digest). */
START_TEST(tables_match_ggml)
{
	const struct qa_iq3_grid *g = qa_iq3_grid_get(grids[_i].npoints);
	ck_assert_ptr_nonnull(g);
	ck_assert_uint_eq(g->npoints, grids[_i].npoints);
	unsigned n = g->npoints;
	char file[64];

	uint8_t *buf = malloc(QA_IQ3_MAP_SIZE * 4 + 2 * grids[_i].n_neighbours);
	for (unsigned j = 0; j < n; j++)
		qa_store_le32(buf + 4 * j, g->decode[j]);
	assert_digest(buf, 4 * (size_t)n, grids[_i].decode_file);

	for (unsigned j = 0; j < n; j++)
		memcpy(buf + 4 * j, g->pos[j], 4);
	snprintf(file, sizeof file, "iq3_%u.grid.bin", n);
	assert_digest(buf, 4 * (size_t)n, file);

	for (unsigned u = 0; u < QA_IQ3_MAP_SIZE; u++)
		qa_store_le32(buf + 4 * u, (uint32_t)g->map[u]);
	snprintf(file, sizeof file, "iq3_%u.map.bin", n);
	assert_digest(buf, 4 * (size_t)QA_IQ3_MAP_SIZE, file);

	ck_assert_uint_eq(g->n_neighbours, grids[_i].n_neighbours);
	for (size_t k = 0; k < g->n_neighbours; k++)
		qa_store_le16(buf + 2 * k, g->neighbours[k]);
	snprintf(file, sizeof file, "iq3_%u.neighbours.bin", n);
	assert_digest(buf, 2 * g->n_neighbours, file);
	free(buf);
}
END_TEST

/* limits: properties of the definition: codes increase, map inverts them, lists are non-empty. */
START_TEST(grid_properties)
{
	const struct qa_iq3_grid *g = qa_iq3_grid_get(grids[_i].npoints);
	for (unsigned j = 0; j < g->npoints; j++) {
		if (j > 0)
			ck_assert_uint_lt(g->codes[j - 1], g->codes[j]);
		ck_assert_uint_lt(g->codes[j], QA_IQ3_MAP_SIZE);
		ck_assert_int_eq(g->map[g->codes[j]], (int32_t)j);
	}
	unsigned off = 0;
	for (unsigned u = 0; u < QA_IQ3_MAP_SIZE; u++) {
		if (g->map[u] >= 0)
			continue;
		off++;
		size_t o = (size_t)(-g->map[u] - 1);
		ck_assert_uint_lt(o, g->n_neighbours);
		ck_assert_uint_gt(g->neighbours[o], 0);
		ck_assert_uint_le(o + g->neighbours[o], g->n_neighbours - 1);
		for (unsigned k = 1; k <= g->neighbours[o]; k++)
			ck_assert_uint_lt(g->neighbours[o + k], g->npoints);
	}
	ck_assert_uint_eq(off, QA_IQ3_MAP_SIZE - g->npoints);
}
END_TEST

/* malformed: only the two grid sizes exist. */
START_TEST(unknown_sizes)
{
	static const unsigned bad[] = { 0, 1, 255, 257, 511, 1024, 4096 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_ptr_null(qa_iq3_grid_get(bad[i]));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("iq3_grid");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, tables_match_ggml, 0, 2);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(limits, grid_properties, 0, 2);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, unknown_sizes);
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
