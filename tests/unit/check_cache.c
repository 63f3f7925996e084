#define _POSIX_C_SOURCE 200809L
/*
 * check_cache.c - the download cache: head entries round-trip; every way an
 * entry can be damaged (a flipped byte, a cut file, another key, junk) makes
 * it absent rather than trusted; blobs are used only when their bytes hash to
 * their name and are removed otherwise; nothing temporary is left behind; and
 * the huggingface_hub cache is found through refs/REV or a 40-hex revision
 * in the layout its documentation gives (docs/hub/local-cache.md).
 * SHA-256 values are those of sha256sum.
 */
#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "hub.h"
#include "remote.h"

static char dir[64];
static struct qa_remote_options opts;

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/qa-cache-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	qa_remote_options_default(&opts);
	opts.cache_dir = dir;
	qa_remote_configure(&opts);
}

static void rm_rf(const char *p)
{
	struct stat st;
	if (lstat(p, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(p);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char sub[1024];
			snprintf(sub, sizeof sub, "%s/%s", p, e->d_name);
			rm_rf(sub);
		}
		if (d)
			closedir(d);
		rmdir(p);
	} else {
		unlink(p);
	}
}

static void teardown(void)
{
	rm_rf(dir);
}

/* Number of files in dir/sub whose name contains needle. */
static int count_files(const char *sub, const char *needle)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, sub);
	DIR *d = opendir(p);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && strstr(e->d_name, needle))
			n++;
	if (d)
		closedir(d);
	return n;
}

/* The single file in dir/sub, into path. */
static void only_file(const char *sub, char *path, size_t cap)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, sub);
	DIR *d = opendir(p);
	struct dirent *e;
	path[0] = '\0';
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			snprintf(path, cap, "%s/%s", p, e->d_name);
	if (d)
		closedir(d);
	ck_assert(path[0]);
}

static const char key[] = "http://hub.test/org/name/resolve/main/f.gguf\n0123456789abcdef0123456789abcdef01234567";

static void store_sample(void)
{
	struct qa_cache_meta m;
	memset(&m, 0, sizeof m);
	m.size = 1000;
	snprintf(m.etag, sizeof m.etag, "%s", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	m.linked = true;
	snprintf(m.commit, sizeof m.commit, "0123456789abcdef0123456789abcdef01234567");
	ck_assert_int_eq(qa_cache_head_store(key, &m, "GGUF\x03\0\0\0header", 14, NULL), QA_OK);
}

START_TEST(head_roundtrip)
{
	store_sample();
	struct qa_cache_meta m;
	uint8_t *h = NULL;
	size_t n = 0;
	ck_assert(qa_cache_head_load(key, &m, &h, &n));
	ck_assert_uint_eq(n, 14);
	ck_assert(memcmp(h, "GGUF\x03\0\0\0header", 14) == 0);
	ck_assert_uint_eq(m.size, 1000);
	ck_assert(m.linked);
	ck_assert_str_eq(m.commit, "0123456789abcdef0123456789abcdef01234567");
	free(h);
	ck_assert(!qa_cache_head_load("another key", &m, &h, &n));
	ck_assert_int_eq(count_files("heads", ".tmp."), 0);
}
END_TEST

START_TEST(refs_roundtrip)
{
	char buf[256];
	ck_assert(!qa_cache_ref_load("http://x/y", buf, sizeof buf));
	ck_assert_int_eq(qa_cache_ref_store("http://x/y", "KEY-1", NULL), QA_OK);
	ck_assert_int_eq(qa_cache_ref_store("http://x/y", "KEY-2", NULL), QA_OK);
	ck_assert(qa_cache_ref_load("http://x/y", buf, sizeof buf));
	ck_assert_str_eq(buf, "KEY-2");
	ck_assert_int_eq(count_files("refs", ".tmp."), 0);
}
END_TEST

START_TEST(blob_verified)
{
	/* sha256("abc") */
	static const char abc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	ck_assert_int_eq(qa_cache_blob_store(abc, "abc", 3, NULL), QA_OK);
	char *p = qa_cache_blob_find(abc);
	ck_assert_ptr_nonnull(p);
	free(p);
	/* the same name with other bytes is removed, not used */
	char path[512];
	snprintf(path, sizeof path, "%s/blobs/%s", dir, abc);
	FILE *f = fopen(path, "w");
	fputs("abd", f);
	fclose(f);
	ck_assert_ptr_null(qa_cache_blob_find(abc));
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_ptr_null(qa_cache_blob_find("not-a-digest"));
}
END_TEST

/* Damage the stored head entry in one of several ways: each makes it absent. */
START_TEST(head_damaged)
{
	store_sample();
	char path[512];
	only_file("heads", path, sizeof path);
	FILE *f;
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	switch (_i) {
	case 0: /* flip a byte of the head bytes */
		f = fopen(path, "r+");
		fseek(f, -3, SEEK_END);
		fputc('X', f);
		fclose(f);
		break;
	case 1: /* cut the last byte */
		ck_assert_int_eq(truncate(path, st.st_size - 1), 0);
		break;
	case 2: /* cut inside the metadata line */
		ck_assert_int_eq(truncate(path, 20), 0);
		break;
	case 3: /* junk */
		f = fopen(path, "w");
		fputs("not json\nGGUF", f);
		fclose(f);
		break;
	case 4: /* empty */
		ck_assert_int_eq(truncate(path, 0), 0);
		break;
	case 5: /* one byte too many */
		f = fopen(path, "a");
		fputc('!', f);
		fclose(f);
		break;
	}
	struct qa_cache_meta m;
	uint8_t *h = NULL;
	size_t n = 0;
	ck_assert_msg(!qa_cache_head_load(key, &m, &h, &n), "damage %d trusted", _i);
}
END_TEST

START_TEST(hf_cache_lookup)
{
	char hf[256], p[512];
	const char *commit = "0123456789abcdef0123456789abcdef01234567";
	snprintf(hf, sizeof hf, "%s/hfhub", dir);
	setenv("HF_HUB_CACHE", hf, 1);
	snprintf(p, sizeof p, "%s/models--org--name/snapshots/%s/sub", hf, commit);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s/models--org--name/refs/refs/pr'", p, hf);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(p, sizeof p, "%s/models--org--name/snapshots/%s/sub/f.gguf", hf, commit);
	FILE *f = fopen(p, "w");
	fputs("GGUF", f);
	fclose(f);
	struct qa_hub_uri u;
	/* a branch with no refs entry: not found */
	ck_assert_int_eq(qa_hub_parse("hf://org/name/sub/f.gguf", &u, NULL), QA_OK);
	ck_assert_ptr_null(qa_cache_hf_lookup(&u));
	snprintf(p, sizeof p, "%s/models--org--name/refs/main", hf);
	f = fopen(p, "w");
	fprintf(f, "%s\n", commit);
	fclose(f);
	snprintf(p, sizeof p, "%s/models--org--name/refs/refs/pr/1", hf);
	f = fopen(p, "w");
	fprintf(f, "%s", commit);
	fclose(f);
	const char *found[] = { "hf://org/name/sub/f.gguf", "hf://org/name@refs/pr/1/sub/f.gguf",
	                        "hf://org/name@0123456789abcdef0123456789abcdef01234567/sub/f.gguf" };
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(qa_hub_parse(found[i], &u, NULL), QA_OK);
		char *r = qa_cache_hf_lookup(&u);
		ck_assert_msg(r && strstr(r, "/snapshots/0123456789abcdef0123456789abcdef01234567/sub/f.gguf"), "%s", found[i]);
		free(r);
	}
	const char *missing[] = { "hf://org/name/sub/g.gguf", "hf://datasets/org/name/sub/f.gguf",
	                          "hf://org/name@v2/sub/f.gguf" };
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(qa_hub_parse(missing[i], &u, NULL), QA_OK);
		ck_assert_ptr_null(qa_cache_hf_lookup(&u));
	}
	unsetenv("HF_HUB_CACHE");
}
END_TEST

START_TEST(no_cache_dir)
{
	opts.cache_dir = NULL;
	qa_remote_configure(&opts);
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	ck_assert_ptr_null(qa_cache_dir());
	struct qa_cache_meta m;
	memset(&m, 0, sizeof m);
	ck_assert_int_eq(qa_cache_head_store("k", &m, "x", 1, NULL), QA_ERR_IO);
	ck_assert(!qa_cache_ref_load("k", (char[8]){ 0 }, 8));
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, head_roundtrip);
	tcase_add_test(tc, refs_roundtrip);
	tcase_add_test(tc, blob_verified);
	tcase_add_test(tc, hf_cache_lookup);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, no_cache_dir);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, head_damaged, 0, 6);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cache_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
