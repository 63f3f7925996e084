#define _POSIX_C_SOURCE 200809L
/*
 * check_source.c - byte sources: a mapped file and a memory buffer hand out
 * exactly the bytes they hold, ranges are bounds-checked without overflow,
 * and files that cannot be sources are refused as I/O errors.
 */
#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockhash.h"
#include "source.h"
#include "testutil.h"

#define PATTERN_LEN 4099 /* not a page or power-of-two multiple */

static uint8_t pattern_byte(size_t i)
{
	return (uint8_t)(i * 31u + 7u + (i >> 8));
}

static void fill_pattern(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_byte(i);
}

/* Write n pattern bytes to dir/name; returns the path (static buffer). */
static const char *write_file(const char *dir, const char *name, size_t n)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	uint8_t *buf = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(buf);
	fill_pattern(buf, n);
	ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
	free(buf);
	return path;
}

/* Ranges inside a PATTERN_LEN source, including both ends. */
static const struct {
	uint64_t off;
	size_t len;
} ranges[] = {
	{ 0, 0 },
	{ 0, 1 },
	{ 0, 16 },
	{ 1, 7 },
	{ 4095, 4 },
	{ 4096, 3 },
	{ 1000, 3000 },
	{ PATTERN_LEN - 1, 1 },
	{ PATTERN_LEN, 0 },
	{ 0, PATTERN_LEN },
};

static void check_range_bytes(struct qa_source *s, uint64_t off, size_t len)
{
	struct qa_diag d;
	uint8_t *buf = malloc(len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(qa_source_read(s, off, len, buf, "range", &d), QA_OK);
	for (size_t i = 0; i < len; i++)
		ck_assert_uint_eq(buf[i], pattern_byte((size_t)off + i));
	const void *v = NULL;
	ck_assert_int_eq(qa_source_view(s, off, len, &v, "range", &d), QA_OK);
	ck_assert_ptr_nonnull(v);
	if (len)
		ck_assert_int_eq(memcmp(v, buf, len), 0);
	free(buf);
}

/* core: a file source returns the file's bytes by read and by view. */
START_TEST(file_read_view)
{
	const char *dir = tu_tmpdir();
	ck_assert_ptr_nonnull(dir);
	const char *path = write_file(dir, "bytes.bin", PATTERN_LEN);
	char keep[512];
	snprintf(keep, sizeof keep, "%s", path);
	struct qa_source *s = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_source_open_file(&s, keep, &d), QA_OK);
	ck_assert_uint_eq(qa_source_size(s), PATTERN_LEN);
	ck_assert_str_eq(qa_source_name(s), keep);
	check_range_bytes(s, ranges[_i].off, ranges[_i].len);
	qa_source_close(s);
	unlink(keep);
	rmdir(dir);
}
END_TEST

/*
 * core: releasing a range of a mapped file (qa_source_release) leaves every
 * view valid, its bytes come back on access; the windowed SHA-256 of a
 * file spanning several 8 MiB windows, and of a memory source, is the
 * one-shot SHA-256 of the same bytes (OpenSSL's, through qa_sha256).
 */
START_TEST(release_and_sha256)
{
	enum { BIG = (3 << 23) + 5 };
	const char *dir = tu_tmpdir();
	ck_assert_ptr_nonnull(dir);
	const char *path = write_file(dir, "big.bin", BIG);
	char keep[512];
	snprintf(keep, sizeof keep, "%s", path);
	uint8_t *want = malloc(BIG);
	ck_assert_ptr_nonnull(want);
	fill_pattern(want, BIG);
	uint8_t ref[32], got[32];
	struct qa_diag d;
	ck_assert_int_eq(qa_sha256(want, BIG, ref, &d), QA_OK);

	struct qa_source *s = NULL;
	const void *p;
	ck_assert_int_eq(qa_source_open_file(&s, keep, &d), QA_OK);
	ck_assert_int_eq(qa_source_view(s, 0, BIG, &p, "all", &d), QA_OK);
	ck_assert(memcmp(p, want, BIG) == 0);
	qa_source_release(s, 12289, (1 << 20) + 7);
	qa_source_release(s, BIG - 3, 100);  /* clipped at the end */
	qa_source_release(s, BIG + 10, 100); /* past the end: nothing */
	qa_source_release(s, 0, 0);
	ck_assert(memcmp(p, want, BIG) == 0); /* the same view, the same bytes */
	check_range_bytes(s, 12288, 8192);
	ck_assert_int_eq(qa_source_sha256(s, got, &d), QA_OK);
	ck_assert(memcmp(got, ref, 32) == 0);
	ck_assert(memcmp(p, want, BIG) == 0);
	qa_source_close(s);

	ck_assert_int_eq(qa_source_open_memory(&s, want, BIG, "mem", &d), QA_OK);
	qa_source_release(s, 0, BIG); /* a caller's buffer is never touched */
	ck_assert_int_eq(qa_source_sha256(s, got, &d), QA_OK);
	ck_assert(memcmp(got, ref, 32) == 0);
	qa_source_close(s);
	ck_assert_int_eq(qa_source_open_memory(&s, NULL, 0, "empty", &d), QA_OK);
	ck_assert_int_eq(qa_sha256("", 0, ref, &d), QA_OK);
	ck_assert_int_eq(qa_source_sha256(s, got, &d), QA_OK);
	ck_assert(memcmp(got, ref, 32) == 0);
	qa_source_close(s);
	free(want);
	unlink(keep);
	rmdir(dir);
}
END_TEST

/* core: a memory source behaves the same over a caller's buffer. */
START_TEST(memory_read_view)
{
	uint8_t *buf = malloc(PATTERN_LEN);
	ck_assert_ptr_nonnull(buf);
	fill_pattern(buf, PATTERN_LEN);
	struct qa_source *s = NULL;
	ck_assert_int_eq(qa_source_open_memory(&s, buf, PATTERN_LEN, "mem", NULL), QA_OK);
	ck_assert_uint_eq(qa_source_size(s), PATTERN_LEN);
	ck_assert_str_eq(qa_source_name(s), "mem");
	check_range_bytes(s, ranges[_i].off, ranges[_i].len);
	/* a view of a memory source lends the caller's own bytes */
	const void *v = NULL;
	ck_assert_int_eq(qa_source_view(s, ranges[_i].off, ranges[_i].len, &v, "x", NULL), QA_OK);
	ck_assert_ptr_eq(v, buf + ranges[_i].off);
	qa_source_close(s);
	free(buf);
}
END_TEST

/* limits: an empty file and an empty buffer are sources of size 0. */
START_TEST(empty_sources)
{
	const char *dir = tu_tmpdir();
	ck_assert_ptr_nonnull(dir);
	char path[512];
	snprintf(path, sizeof path, "%s", write_file(dir, "empty.bin", 0));
	struct qa_source *srcs[3] = { NULL, NULL, NULL };
	struct qa_diag d;
	static const uint8_t one[1] = { 0 };
	ck_assert_int_eq(qa_source_open_file(&srcs[0], path, &d), QA_OK);
	ck_assert_int_eq(qa_source_open_memory(&srcs[1], NULL, 0, NULL, &d), QA_OK);
	ck_assert_int_eq(qa_source_open_memory(&srcs[2], one, 0, "zero", &d), QA_OK);
	for (int k = 0; k < 3; k++) {
		struct qa_source *s = srcs[k];
		uint8_t b = 0xee;
		const void *v = NULL;
		ck_assert_uint_eq(qa_source_size(s), 0);
		ck_assert_ptr_nonnull(qa_source_name(s));
		ck_assert_int_eq(qa_source_read(s, 0, 0, &b, "nothing", &d), QA_OK);
		ck_assert_uint_eq(b, 0xee);
		ck_assert_int_eq(qa_source_view(s, 0, 0, &v, "nothing", &d), QA_OK);
		ck_assert_int_eq(qa_source_read(s, 0, 1, &b, "byte", &d), QA_ERR_FORMAT);
		ck_assert_uint_eq(d.offset, 0);
		ck_assert_int_eq(qa_source_view(s, 0, 1, &v, "byte", &d), QA_ERR_FORMAT);
		ck_assert_uint_eq(d.offset, 0);
		qa_source_close(s);
	}
	unlink(path);
	rmdir(dir);
}
END_TEST

/* limits: ranges ending exactly at the end succeed; one byte further fails at off. */
static const uint64_t sizes[] = { 1, 2, 8, 4095, 4096, 4097, PATTERN_LEN };

START_TEST(end_boundary)
{
	size_t n = (size_t)sizes[_i];
	uint8_t *buf = malloc(n);
	uint8_t *out = malloc(n + 1);
	ck_assert(buf && out);
	fill_pattern(buf, n);
	struct qa_source *mem = NULL, *file = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_source_open_memory(&mem, buf, n, "mem", &d), QA_OK);
	const char *dir = tu_tmpdir();
	ck_assert_ptr_nonnull(dir);
	char path[512];
	snprintf(path, sizeof path, "%s", write_file(dir, "b.bin", n));
	ck_assert_int_eq(qa_source_open_file(&file, path, &d), QA_OK);
	struct qa_source *both[2] = { mem, file };
	for (int k = 0; k < 2; k++) {
		struct qa_source *s = both[k];
		const void *v;
		for (uint64_t off = 0; off <= n; off += (n > 64 ? n / 7 + 1 : 1)) {
			size_t rest = n - (size_t)off;
			ck_assert_int_eq(qa_source_read(s, off, rest, out, "tail", &d), QA_OK);
			ck_assert_int_eq(qa_source_view(s, off, rest, &v, "tail", &d), QA_OK);
			memset(&d, 0, sizeof d);
			ck_assert_int_eq(qa_source_read(s, off, rest + 1, out, "tail", &d), QA_ERR_FORMAT);
			ck_assert_int_eq(d.code, QA_ERR_FORMAT);
			ck_assert_uint_eq(d.offset, off);
			ck_assert_ptr_nonnull(strstr(d.msg, "tail"));
			memset(&d, 0, sizeof d);
			ck_assert_int_eq(qa_source_view(s, off, rest + 1, &v, "tail", &d), QA_ERR_FORMAT);
			ck_assert_uint_eq(d.offset, off);
		}
		/* a zero-length range starting one past the end is out of bounds */
		ck_assert_int_eq(qa_source_read(s, n + 1, 0, out, "gap", &d), QA_ERR_FORMAT);
		ck_assert_uint_eq(d.offset, n + 1);
	}
	qa_source_close(mem);
	qa_source_close(file);
	unlink(path);
	rmdir(dir);
	free(buf);
	free(out);
}
END_TEST

/* The number of open file descriptors of this process. */
static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/* The number of mappings of files named name in this process (Linux). */
static int maps_of(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return 0;
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, name) != NULL;
	fclose(f);
	return n;
}

/* limits: close releases what open took (the same file opens and closes 200
 * times without a descriptor or a mapping more), and closing NULL is a no-op
 * that leaves them as they are. */
START_TEST(close_null)
{
	const char *path = tu_path("fixtures/models/micro-qwen2.safetensors");
	int before = open_fds();
	for (int i = 0; i < 200; i++) {
		struct qa_source *s = NULL;
		struct qa_diag d;
		ck_assert_int_eq(qa_source_open_file(&s, path, &d), QA_OK);
		ck_assert_int_le(open_fds(), before + 1);
		qa_source_close(s);
		ck_assert_int_eq(open_fds(), before);
		ck_assert_int_eq(maps_of("micro-qwen2.safetensors"), 0);
	}
	qa_source_close(NULL);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* malformed: offset + len wrapping past UINT64_MAX never passes the bounds check. */
static const struct {
	uint64_t off;
	size_t len;
} wraps[] = {
	{ UINT64_MAX, 1 },
	{ UINT64_MAX, 0 },
	{ UINT64_MAX, SIZE_MAX },
	{ 1, SIZE_MAX },
	{ 16, SIZE_MAX - 8 },
	{ UINT64_MAX - 15, 32 },
	{ UINT64_MAX / 2 + 1, SIZE_MAX / 2 + 1 },
	{ 0, SIZE_MAX },
};

START_TEST(overflow_refused)
{
	static uint8_t bytes[64];
	uint8_t sink[64];
	struct qa_source *s = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_source_open_memory(&s, bytes, sizeof bytes, "small", NULL), QA_OK);
	memset(&d, 0, sizeof d);
	/* sink is small, but a refused read must not write to it */
	ck_assert_int_eq(qa_source_read(s, wraps[_i].off, wraps[_i].len, sink, "huge", &d), QA_ERR_FORMAT);
	ck_assert_uint_eq(d.offset, wraps[_i].off);
	const void *v = NULL;
	ck_assert_int_eq(qa_source_view(s, wraps[_i].off, wraps[_i].len, &v, "huge", &d), QA_ERR_FORMAT);
	ck_assert_uint_eq(d.offset, wraps[_i].off);
	qa_source_close(s);
}
END_TEST

/* malformed: a directory, a missing file, a device and a path through a file are I/O errors. */
START_TEST(open_refused)
{
	const char *dir = tu_tmpdir();
	ck_assert_ptr_nonnull(dir);
	char file[512], missing[512], through[512];
	snprintf(file, sizeof file, "%s", write_file(dir, "f.bin", 10));
	snprintf(missing, sizeof missing, "%s/no-such-file", dir);
	snprintf(through, sizeof through, "%s/f.bin/x", dir);
	const char *paths[] = { dir, missing, "/dev/null", through, "" };
	const char *path = paths[_i];
	struct qa_source *s = (struct qa_source *)&s; /* must not be taken for a result */
	struct qa_diag d;
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(qa_source_open_file(&s, path, &d), QA_ERR_IO);
	ck_assert_int_eq(d.code, QA_ERR_IO);
	ck_assert_uint_gt(strlen(d.msg), 0);
	if (_i == 1)
		ck_assert_ptr_nonnull(strstr(d.msg, "no such file or directory"));
	/* also accepted without a diag */
	ck_assert_int_eq(qa_source_open_file(&s, path, NULL), QA_ERR_IO);
	unlink(file);
	rmdir(dir);
}
END_TEST

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
	Suite *s = suite_create("source");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, file_read_view, 0, LEN(ranges));
	tcase_add_loop_test(core, memory_read_view, 0, LEN(ranges));
	tcase_add_test(core, release_and_sha256);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, empty_sources);
	tcase_add_loop_test(limits, end_boundary, 0, LEN(sizes));
	tcase_add_test(limits, close_null);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, overflow_refused, 0, LEN(wraps));
	tcase_add_loop_test(bad, open_refused, 0, 5);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
