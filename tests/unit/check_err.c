#define _POSIX_C_SOURCE 200809L
/*
 * check_err.c - the error vocabulary: qa_diag_set records what it is given
 * and returns the code, every code has a distinct name and the exit status
 * the CLI documents, and qa_strerror speaks lowercase.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define N_CODES ((int)QA_ERR_NOMEM + 1)

/* The exit statuses err.h documents: 0 ok, 2 usage, 3 refused input, 4 system. */
static const struct {
	enum qa_err code;
	int exit;
} exits[] = {
	{ QA_OK, 0 },
	{ QA_ERR_USAGE, 2 },
	{ QA_ERR_FORMAT, 3 },
	{ QA_ERR_UNSUPPORTED, 3 },
	{ QA_ERR_VALUE, 3 },
	{ QA_ERR_IO, 4 },
	{ QA_ERR_NETWORK, 4 },
	{ QA_ERR_NOMEM, 4 },
};

static const struct {
	enum qa_err code;
	uint64_t offset;
} sets[] = {
	{ QA_ERR_FORMAT, 0 },
	{ QA_ERR_FORMAT, 12345 },
	{ QA_ERR_IO, QA_NO_OFFSET },
	{ QA_ERR_VALUE, UINT64_MAX - 1 },
	{ QA_ERR_USAGE, 1 },
	{ QA_OK, 7 },
};

/* core: code, offset and formatted message land in d; the code comes back. */
START_TEST(diag_set_fills)
{
	struct qa_diag d;
	memset(&d, 0x5a, sizeof d);
	enum qa_err got = qa_diag_set(&d, sets[_i].code, sets[_i].offset,
	                              "bad %s at %d", "thing", 42);
	ck_assert_int_eq(got, sets[_i].code);
	ck_assert_int_eq(d.code, sets[_i].code);
	ck_assert_uint_eq(d.offset, sets[_i].offset);
	ck_assert_str_eq(d.msg, "bad thing at 42");
}
END_TEST

/* core: a NULL diag is accepted and the code still comes back; clear resets. */
START_TEST(diag_null_and_clear)
{
	for (int c = 0; c < N_CODES; c++)
		ck_assert_int_eq(qa_diag_set(NULL, (enum qa_err)c, 5, "x %d", c), c);
	struct qa_diag d;
	qa_diag_set(&d, QA_ERR_IO, 9, "boom");
	qa_diag_clear(&d);
	ck_assert_int_eq(d.code, QA_OK);
	ck_assert_uint_eq(d.offset, QA_NO_OFFSET);
	ck_assert_str_eq(d.msg, "");
	qa_diag_clear(NULL);
}
END_TEST

/* core: each documented exit status. */
START_TEST(exit_codes)
{
	ck_assert_int_eq(qa_err_exit_code(exits[_i].code), exits[_i].exit);
}
END_TEST

/* core: names are non-empty, lowercase, and pairwise distinct. */
START_TEST(names_distinct)
{
	for (int a = 0; a < N_CODES; a++) {
		const char *na = qa_err_name((enum qa_err)a);
		ck_assert_ptr_nonnull(na);
		ck_assert_uint_gt(strlen(na), 0);
		for (const char *p = na; *p; p++)
			ck_assert(!isupper((unsigned char)*p));
		for (int b = a + 1; b < N_CODES; b++)
			ck_assert_str_ne(na, qa_err_name((enum qa_err)b));
	}
}
END_TEST

/* core: the one text the house style quotes verbatim. */
START_TEST(strerror_enoent)
{
	ck_assert_str_eq(qa_strerror(ENOENT), "no such file or directory");
}
END_TEST

/* errnos whose C-library texts start with a capitalised ordinary word */
static const int errnos[] = { ENOENT, EACCES, EISDIR, ENOTDIR, EINVAL, EIO,
                              ENOMEM, ENOSPC, EEXIST, EPERM, EBADF, EAGAIN,
                              EPIPE, ERANGE, EFBIG, EROFS, EMFILE };

/* core: same text as strerror, but with a lowercase first letter. */
START_TEST(strerror_lowercase)
{
	int e = errnos[_i];
	char want[256];
	snprintf(want, sizeof want, "%s", strerror(e));
	want[0] = (char)tolower((unsigned char)want[0]);
	const char *got = qa_strerror(e);
	ck_assert_ptr_nonnull(got);
	ck_assert(islower((unsigned char)got[0]));
	ck_assert_str_eq(got, want);
}
END_TEST

/* limits: a message longer than msg is truncated and NUL-terminated, without overrun. */
static const size_t long_lens[] = { 254, 255, 256, 257, 1000, 100000 };

START_TEST(diag_truncates)
{
	size_t n = long_lens[_i];
	char *text = malloc(n + 1);
	ck_assert_ptr_nonnull(text);
	for (size_t i = 0; i < n; i++)
		text[i] = (char)('a' + i % 26);
	text[n] = '\0';
	struct {
		struct qa_diag d;
		unsigned char canary[64];
	} box;
	memset(&box, 0x77, sizeof box);
	ck_assert_int_eq(qa_diag_set(&box.d, QA_ERR_FORMAT, 3, "%s", text), QA_ERR_FORMAT);
	size_t cap = sizeof box.d.msg;
	size_t want = n < cap ? n : cap - 1;
	ck_assert_ptr_nonnull(memchr(box.d.msg, '\0', cap));
	ck_assert_uint_eq(strlen(box.d.msg), want);
	ck_assert_int_eq(memcmp(box.d.msg, text, want), 0);
	for (size_t i = 0; i < sizeof box.canary; i++)
		ck_assert_uint_eq(box.canary[i], 0x77);
	ck_assert_uint_eq(box.d.offset, 3);
	free(text);
}
END_TEST

/* limits: an empty format gives an empty message. */
START_TEST(diag_empty)
{
	struct qa_diag d;
	memset(&d, 'z', sizeof d);
	ck_assert_int_eq(qa_diag_set(&d, QA_ERR_IO, QA_NO_OFFSET, "%s", ""), QA_ERR_IO);
	ck_assert_str_eq(d.msg, "");
}
END_TEST

/* malformed: out-of-range codes and errnos still give usable, non-zero answers. */
static const int bad_errnos[] = { 0, -1, 4095, 99999, INT32_MAX };

START_TEST(unknown_values)
{
	const char *s = qa_strerror(bad_errnos[_i]);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_gt(strlen(s), 0);
	ck_assert_uint_lt(strlen(s), 256);
	enum qa_err junk = (enum qa_err)(N_CODES + _i);
	const char *n = qa_err_name(junk);
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_gt(strlen(n), 0);
	/* an unknown code must never look like success to the shell */
	ck_assert_int_ne(qa_err_exit_code(junk), 0);
}
END_TEST

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
	Suite *s = suite_create("err");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, diag_set_fills, 0, LEN(sets));
	tcase_add_test(core, diag_null_and_clear);
	tcase_add_loop_test(core, exit_codes, 0, LEN(exits));
	tcase_add_test(core, names_distinct);
	tcase_add_test(core, strerror_enoent);
	tcase_add_loop_test(core, strerror_lowercase, 0, LEN(errnos));
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(limits, diag_truncates, 0, LEN(long_lens));
	tcase_add_test(limits, diag_empty);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, unknown_values, 0, LEN(bad_errnos));
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
