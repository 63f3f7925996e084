/*
 * check_ggufhash.c - llama-gguf-hash manifests: the text the real
 * llama-gguf-hash printed for the corrupt fixture (tests/data/ggufhash,
 * --sha256, --all and --no-layer) parses to the digests quantaudit computes
 * itself, and malformed texts are refused at the offset of their line.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ggufhash.h"
#include "manifest.h"
#include "testutil.h"

static const struct {
	const char *file;
	size_t tensors;
} real[] = {
	{ "tests/data/ggufhash/real-sha256.txt", 27 },
	{ "tests/data/ggufhash/real-all.txt", 27 },
	{ "tests/data/ggufhash/real-no-layer.txt", 0 },
};

START_TEST(real_manifests)
{
	size_t len;
	char *buf = tu_slurp(tu_path(real[_i].file), &len);
	ck_assert_ptr_nonnull(buf);
	ck_assert(qa_ggufhash_sniff(buf, len));
	struct qa_manifest *want, *got;
	struct qa_diag d;
	ck_assert_int_eq(qa_ggufhash_parse(buf, len, &want, &d), QA_OK);
	ck_assert_uint_eq(want->n, real[_i].tensors);
	ck_assert(want->has_tensor_data_sha256);
	ck_assert_int_eq(qa_manifest_compute(tu_path("fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf"), false, true,
	                                     1, &got, &d), QA_OK);
	struct qa_verify v;
	ck_assert_int_eq(qa_ggufhash_verify(got, want, &v, &d), QA_OK);
	ck_assert(qa_verify_ok(&v));
	ck_assert_uint_eq(v.n_tensors_ok, real[_i].tensors);
	qa_verify_free(&v);
	/* one flipped digest is named */
	if (want->n) {
		want->tensors[3].sha256[0] ^= 1;
		ck_assert_int_eq(qa_ggufhash_verify(got, want, &v, &d), QA_OK);
		ck_assert_uint_eq(v.n_items, 1);
		ck_assert_str_eq(v.items[0].name, want->tensors[3].name);
		ck_assert(v.file_match);
		qa_verify_free(&v);
	}
	qa_manifest_free(want);
	qa_manifest_free(got);
	free(buf);
}
END_TEST

/* each line "sha256    " + 64 hex + "  f.gguf:a" is 84 bytes: the second starts at 85 */
#define H "0000000000000000000000000000000000000000000000000000000000000000"
static const struct {
	const char *text;
	uint64_t offset;
	const char *reason;
} bad[] = {
	{ "", 0, "no sha256 line" },
	{ "xxh64     c188b54d1b971cef  f.gguf\n", 0, "no sha256 line" },
	{ "sha256    " H "  f.gguf:a\nmd5  00  f.gguf\n", 85, "unknown hash type 'md5'" },
	{ "sha256    " H "  f.gguf:a\nsha256    ABC  f.gguf\n", 85, "64 lowercase hex" },
	{ "sha256    " H "  g.gguf:a\nsha256    " H "  f.gguf\n", 0, "does not name the file" },
	{ "sha256    " H "  f.gguf:a\nsha256    " H "  f.gguf:a\nsha256    " H "  f.gguf\n", 85, "listed twice" },
	{ "sha256    " H "\n", 0, "not a llama-gguf-hash line" },
};

START_TEST(malformed)
{
	struct qa_manifest *m = (struct qa_manifest *)1;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_ggufhash_parse(bad[_i].text, strlen(bad[_i].text), &m, &d), QA_ERR_FORMAT);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(d.msg, bad[_i].reason), "%d: %s", _i, d.msg);
	ck_assert_uint_eq(d.offset, bad[_i].offset);
}
END_TEST

START_TEST(sniff)
{
	ck_assert(!qa_ggufhash_sniff("  {\"schema\":1}", 14));
	ck_assert(qa_ggufhash_sniff("sha256  x  y", 12));
	ck_assert(!qa_ggufhash_sniff("   ", 3));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ggufhash");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits"), *mal = tcase_create("malformed");
	tcase_add_loop_test(core, real_manifests, 0, 3);
	tcase_add_test(limits, sniff);
	tcase_add_loop_test(mal, malformed, 0, (int)(sizeof bad / sizeof bad[0]));
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
