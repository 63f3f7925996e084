#define _POSIX_C_SOURCE 200809L
/*
 * check_tmpfile.c - temporary files renamed into place: a commit makes the
 * destination appear whole, with the mode of an ordinary new file, replacing
 * what was there; an abort or any failure leaves the directory as it was;
 * abort is safe in every state; and bad or overlong paths fail cleanly with
 * QA_ERR_IO or QA_ERR_USAGE.  Every test runs in a fresh directory and checks
 * what is left in it.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpfile.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define OPEN_FAILED "cannot create a temporary file beside it: "

static char tmpdir[64];

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/qa-tmpfile-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Remove dir and everything in it (the tests make at most one level of subdirectories). */
static void remove_tree(const char *dir)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return;
	struct dirent *e;
	char p[1024];
	while ((e = readdir(dh))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (rmdir(p) != 0 && unlink(p) != 0)
			remove_tree(p);
	}
	closedir(dh);
	rmdir(dir);
}

static void teardown(void)
{
	remove_tree(tmpdir);
}

static const char *tpath(const char *name)
{
	static char buf[4][512];
	static int slot;
	char *b = buf[slot++ & 3];
	snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
	return b;
}

/* Entries of the test directory (not "." or ".."). */
static int count_entries(void)
{
	DIR *dh = opendir(tmpdir);
	ck_assert_ptr_nonnull(dh);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dh)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(dh);
	return n;
}

static void put(int fd, const char *text)
{
	size_t n = strlen(text);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
}

/* The whole file at path must be exactly want. */
static void assert_content(const char *path, const char *want)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	char buf[256];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

static void assert_not_pending(const struct qa_tmpfile *t)
{
	ck_assert_ptr_null(t->tmp_path);
	ck_assert_ptr_null(t->dest_path);
	ck_assert_int_eq(t->fd, -1);
}

/* ------------------------------------------------------------------ core */

/* The committed file has mode 0666 less the umask, synced or not. */
static const struct {
	mode_t umask;
	mode_t mode;
	bool sync;
} modes[] = {
	{ 022, 0644, false },
	{ 022, 0644, true },
	{ 077, 0600, false },
	{ 002, 0664, true },
};

/* core: the temporary file sits beside the destination until commit, which
 * makes the destination appear with the content and the ordinary mode. */
START_TEST(commit_makes_file)
{
	umask(modes[_i].umask);
	const char *dest = tpath("out.bin");
	struct qa_tmpfile t;
	struct qa_diag d;
	ck_assert_int_eq(qa_tmpfile_open(&t, dest, &d), QA_OK);
	ck_assert_ptr_nonnull(t.tmp_path);
	ck_assert_int_ge(t.fd, 0);
	/* DEST.tmp.XXXXXX, in the same directory */
	size_t n = strlen(dest);
	ck_assert_uint_eq(strlen(t.tmp_path), n + strlen(".tmp.XXXXXX"));
	ck_assert(strncmp(t.tmp_path, dest, n) == 0);
	ck_assert(strncmp(t.tmp_path + n, ".tmp.", 5) == 0);
	struct stat st;
	ck_assert_int_ne(stat(dest, &st), 0);
	ck_assert_int_eq(count_entries(), 1);
	put(t.fd, "hello, ");
	put(t.fd, "world\n");
	ck_assert_int_eq(qa_tmpfile_commit(&t, modes[_i].sync, &d), QA_OK);
	assert_not_pending(&t);
	assert_content(dest, "hello, world\n");
	ck_assert_int_eq(stat(dest, &st), 0);
	ck_assert_msg((st.st_mode & 07777) == modes[_i].mode, "mode %o, want %o",
	              (unsigned)(st.st_mode & 07777), (unsigned)modes[_i].mode);
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

/* core: abort before commit leaves the directory empty. */
START_TEST(abort_leaves_nothing)
{
	struct qa_tmpfile t;
	ck_assert_int_eq(qa_tmpfile_open(&t, tpath("out.bin"), NULL), QA_OK);
	put(t.fd, "partial");
	ck_assert_int_eq(count_entries(), 1);
	qa_tmpfile_abort(&t);
	assert_not_pending(&t);
	ck_assert_int_eq(count_entries(), 0);
}
END_TEST

/* core: commit replaces an existing destination, and abort leaves it as it was. */
START_TEST(commit_replaces)
{
	const char *dest = tpath("out.bin");
	FILE *f = fopen(dest, "wb");
	ck_assert_ptr_nonnull(f);
	fputs("old content that is longer than the new one\n", f);
	fclose(f);
	struct qa_tmpfile t;
	ck_assert_int_eq(qa_tmpfile_open(&t, dest, NULL), QA_OK);
	put(t.fd, "aborted\n");
	qa_tmpfile_abort(&t);
	assert_content(dest, "old content that is longer than the new one\n");
	ck_assert_int_eq(qa_tmpfile_open(&t, dest, NULL), QA_OK);
	put(t.fd, "new\n");
	ck_assert_int_eq(qa_tmpfile_commit(&t, _i != 0, NULL), QA_OK);
	assert_content(dest, "new\n");
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

/* core: a caller that writes through a stdio stream closes it and gives up
 * the descriptor; commit then only renames. */
START_TEST(stream_handoff)
{
	const char *dest = tpath("out.txt");
	struct qa_tmpfile t;
	ck_assert_int_eq(qa_tmpfile_open(&t, dest, NULL), QA_OK);
	FILE *f = fdopen(t.fd, "wb");
	ck_assert_ptr_nonnull(f);
	t.fd = -1;
	ck_assert_int_gt(fprintf(f, "%s %d\n", "through stdio", 42), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(qa_tmpfile_commit(&t, _i != 0, NULL), QA_OK);
	assert_content(dest, "through stdio 42\n");
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

/* core: temporary files pending at the same time for one destination get
 * distinct names, and the last commit wins. */
START_TEST(distinct_names)
{
	enum { N = 16 };
	const char *dest = tpath("same.bin");
	struct qa_tmpfile t[N];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(qa_tmpfile_open(&t[i], dest, NULL), QA_OK);
		for (int k = 0; k < i; k++)
			ck_assert_str_ne(t[i].tmp_path, t[k].tmp_path);
	}
	ck_assert_int_eq(count_entries(), N);
	for (int i = 0; i < N - 1; i++)
		qa_tmpfile_abort(&t[i]);
	put(t[N - 1].fd, "last\n");
	ck_assert_int_eq(qa_tmpfile_commit(&t[N - 1], false, NULL), QA_OK);
	assert_content(dest, "last\n");
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

/* ------------------------------------------------------------------ limits */

enum long_case { LONG_NEAR_PATH_MAX, LONG_OVER_PATH_MAX, LONG_NAME, LONG_N };

/* limits: paths near and over PATH_MAX, and a name that fits but whose
 * temporary name would not, fail with QA_ERR_IO and leave nothing. */
START_TEST(long_paths)
{
	size_t cap = PATH_MAX + 64;
	char *p = malloc(cap);
	ck_assert_ptr_nonnull(p);
	int n = snprintf(p, cap, "%s", tmpdir);
	switch ((enum long_case)_i) {
	case LONG_NEAR_PATH_MAX: /* PATH_MAX - 2 characters, in directories that do not exist */
	case LONG_OVER_PATH_MAX: {
		size_t want = _i == LONG_NEAR_PATH_MAX ? PATH_MAX - 2 : PATH_MAX + 10;
		while ((size_t)n < want) {
			size_t seg = want - (size_t)n - 1 > 200 ? 200 : want - (size_t)n - 1;
			p[n++] = '/';
			memset(p + n, 'd', seg);
			n += (int)seg;
		}
		p[n] = '\0';
		ck_assert_uint_eq(strlen(p), want);
		break;
	}
	case LONG_NAME: /* 250 characters: a valid name, but not with ".tmp.XXXXXX" added */
		p[n++] = '/';
		memset(p + n, 'n', 250);
		p[n + 250] = '\0';
		break;
	default:
		ck_abort();
	}
	struct qa_tmpfile t;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_tmpfile_open(&t, p, &d), QA_ERR_IO);
	ck_assert_int_eq(d.code, QA_ERR_IO);
	ck_assert_msg(strncmp(d.msg, OPEN_FAILED, strlen(OPEN_FAILED)) == 0, "%s", d.msg);
	assert_not_pending(&t);
	qa_tmpfile_abort(&t);
	ck_assert_int_eq(qa_tmpfile_commit(&t, true, NULL), QA_ERR_USAGE);
	ck_assert_int_eq(count_entries(), 0);
	free(p);
}
END_TEST

enum abort_case { ABORT_TWICE, ABORT_AFTER_COMMIT, ABORT_ZEROED, ABORT_NULL, ABORT_AFTER_FAILED_OPEN, ABORT_N };

/* limits: abort is a no-op on anything not pending, and never touches the
 * committed file. */
START_TEST(abort_is_safe)
{
	const char *dest = tpath("kept.bin");
	struct qa_tmpfile t;
	memset(&t, 0, sizeof t);
	switch ((enum abort_case)_i) {
	case ABORT_TWICE:
		ck_assert_int_eq(qa_tmpfile_open(&t, dest, NULL), QA_OK);
		qa_tmpfile_abort(&t);
		qa_tmpfile_abort(&t);
		ck_assert_int_eq(count_entries(), 0);
		break;
	case ABORT_AFTER_COMMIT:
		ck_assert_int_eq(qa_tmpfile_open(&t, dest, NULL), QA_OK);
		put(t.fd, "kept\n");
		ck_assert_int_eq(qa_tmpfile_commit(&t, true, NULL), QA_OK);
		qa_tmpfile_abort(&t);
		qa_tmpfile_abort(&t);
		assert_content(dest, "kept\n");
		ck_assert_int_eq(count_entries(), 1);
		break;
	case ABORT_ZEROED: { /* not pending: whatever fd holds is not closed */
		qa_tmpfile_abort(&t);
		int fd = open("/dev/null", O_RDONLY);
		ck_assert_int_ge(fd, 0);
		t.fd = fd;
		qa_tmpfile_abort(&t);
		ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
		close(fd);
		break;
	}
	case ABORT_NULL:
		qa_tmpfile_abort(NULL);
		break;
	case ABORT_AFTER_FAILED_OPEN:
		ck_assert_int_eq(qa_tmpfile_open(&t, tpath("missing/x.bin"), NULL), QA_ERR_IO);
		qa_tmpfile_abort(&t);
		qa_tmpfile_abort(&t);
		ck_assert_int_eq(count_entries(), 0);
		break;
	default:
		ck_abort();
	}
}
END_TEST

/* ------------------------------------------------------------------ malformed */

/* malformed: a destination in a missing directory is QA_ERR_IO with the
 * system's reason and without the path, and creates nothing. */
START_TEST(missing_directory)
{
	const char *dest = tpath("no/such/dir/x.gguf");
	struct qa_tmpfile t;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_tmpfile_open(&t, dest, &d), QA_ERR_IO);
	ck_assert_str_eq(d.msg, OPEN_FAILED "no such file or directory");
	ck_assert_uint_eq(d.offset, QA_NO_OFFSET);
	assert_not_pending(&t);
	ck_assert_int_eq(count_entries(), 0);
}
END_TEST

/* malformed: missing arguments are usage errors. */
START_TEST(bad_arguments)
{
	static const char *dests[] = { NULL, "" };
	struct qa_tmpfile t;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_tmpfile_open(&t, dests[_i], &d), QA_ERR_USAGE);
	ck_assert_int_eq(d.code, QA_ERR_USAGE);
	assert_not_pending(&t);
	qa_tmpfile_abort(&t);
	ck_assert_int_eq(qa_tmpfile_open(NULL, tpath("x"), NULL), QA_ERR_USAGE);
	ck_assert_int_eq(qa_tmpfile_commit(NULL, false, NULL), QA_ERR_USAGE);
	ck_assert_int_eq(count_entries(), 0);
}
END_TEST

/* malformed: commit on a struct that is not pending is a usage error. */
START_TEST(commit_not_pending)
{
	struct qa_tmpfile t;
	memset(&t, 0, sizeof t);
	struct qa_diag d;
	ck_assert_int_eq(qa_tmpfile_commit(&t, false, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_tmpfile_open(&t, tpath("x"), NULL), QA_OK);
	if (_i == 0)
		qa_tmpfile_abort(&t);
	else
		ck_assert_int_eq(qa_tmpfile_commit(&t, false, NULL), QA_OK);
	ck_assert_int_eq(qa_tmpfile_commit(&t, false, &d), QA_ERR_USAGE);
	ck_assert_int_eq(count_entries(), _i == 0 ? 0 : 1);
}
END_TEST

/* malformed: a destination that is a directory cannot be replaced; commit
 * fails with QA_ERR_IO, removes the temporary file and leaves the directory. */
START_TEST(dest_is_directory)
{
	const char *dest = tpath("adir");
	ck_assert_int_eq(mkdir(dest, 0755), 0);
	struct qa_tmpfile t;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_tmpfile_open(&t, dest, &d), QA_OK);
	put(t.fd, "data\n");
	ck_assert_int_eq(qa_tmpfile_commit(&t, _i != 0, &d), QA_ERR_IO);
	ck_assert_msg(strncmp(d.msg, "cannot rename into place: ", 26) == 0, "%s", d.msg);
	ck_assert_ptr_null(strstr(d.msg, tmpdir));
	assert_not_pending(&t);
	qa_tmpfile_abort(&t);
	struct stat st;
	ck_assert_int_eq(stat(dest, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

static Suite *tmpfile_suite(void)
{
	Suite *s = suite_create("tmpfile");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, commit_makes_file, 0, (int)(sizeof modes / sizeof modes[0]));
	tcase_add_test(tc, abort_leaves_nothing);
	tcase_add_loop_test(tc, commit_replaces, 0, 2);
	tcase_add_loop_test(tc, stream_handoff, 0, 2);
	tcase_add_test(tc, distinct_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, long_paths, 0, LONG_N);
	tcase_add_loop_test(tc, abort_is_safe, 0, ABORT_N);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, missing_directory);
	tcase_add_loop_test(tc, bad_arguments, 0, 2);
	tcase_add_loop_test(tc, commit_not_pending, 0, 2);
	tcase_add_loop_test(tc, dest_is_directory, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tmpfile_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
