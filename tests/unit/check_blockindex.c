#define _POSIX_C_SOURCE 200809L
/*
 * check_blockindex.c - the block index sidecar of manifest/2: the writer's
 * bytes against the format in blockindex.h, records against an independent
 * SHA-256 of every block, streaming verification locating a flipped block
 * through the index, limits, and the malformed corpus (tests/data/blockindex,
 * written by make-corpus.py from the format).
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "blockindex.h"
#include "gguf.h"
#include "manifest.h"
#include "manifest_json.h"
#include "source.h"
#include "testutil.h"
#include "types.h"

#define FIX "fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf"

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* core: the writer lays out header, table and truncated records as blockindex.h says. */
START_TEST(writer_layout)
{
	const char *dir = tu_tmpdir();
	char path[256];
	snprintf(path, sizeof path, "%s/x.blocks", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	uint64_t counts[3] = { 3, 0, 2 };
	uint8_t dg[5 * 32];
	for (int i = 0; i < 5 * 32; i++)
		dg[i] = (uint8_t)(i * 13 + 1);
	struct qa_blockindex_writer *w;
	ck_assert_int_eq(qa_blockindex_writer_open(&w, fd, 8, 3, counts, NULL), QA_OK);
	qa_blockindex_writer_add(w, dg, 3);
	qa_blockindex_writer_add(w, dg + 3 * 32, 2);
	uint64_t size;
	uint8_t sha[32], want[32];
	ck_assert_int_eq(qa_blockindex_writer_finish(w, &size, sha, NULL), QA_OK);
	qa_blockindex_writer_free(w);
	close(fd);
	size_t len;
	uint8_t *b = tu_slurp(path, &len);
	ck_assert_uint_eq(len, 32 + 3 * 8 + 5 * 8);
	ck_assert_uint_eq(size, len);
	SHA256(b, len, want);
	ck_assert_mem_eq(sha, want, 32);
	ck_assert_mem_eq(b, "QABLKIDX", 8);
	ck_assert_uint_eq(le64(b + 8) & 0xffffffffu, 1);
	ck_assert_uint_eq(le64(b + 8) >> 32, 8);
	ck_assert_uint_eq(le64(b + 16), 3);
	ck_assert_uint_eq(le64(b + 24), 5);
	ck_assert_uint_eq(le64(b + 32), 3);
	ck_assert_uint_eq(le64(b + 40), 0);
	ck_assert_uint_eq(le64(b + 48), 2);
	for (int r = 0; r < 5; r++)
		ck_assert_mem_eq(b + 56 + r * 8, dg + r * 32, 8);
	/* and the reader gives the same back */
	struct qa_source *src;
	struct qa_blockindex *bi;
	ck_assert_int_eq(qa_source_open_stream(&src, path, NULL), QA_OK);
	ck_assert_int_eq(qa_blockindex_open(&bi, src, NULL), QA_OK);
	ck_assert_uint_eq(qa_blockindex_n_tensors(bi), 3);
	ck_assert_uint_eq(qa_blockindex_blocks(bi, 1), 0);
	uint8_t rec[16];
	ck_assert_int_eq(qa_blockindex_read(bi, 2, 0, 2, rec, NULL), QA_OK);
	ck_assert_mem_eq(rec, dg + 3 * 32, 8);
	ck_assert_mem_eq(rec + 8, dg + 4 * 32, 8);
	uint8_t again[32];
	ck_assert_int_eq(qa_blockindex_sha256(bi, again, NULL), QA_OK);
	ck_assert_mem_eq(again, want, 32);
	qa_blockindex_free(bi);
	qa_source_close(src);
	free(b);
}
END_TEST

/* core: hashing with an index writes, for every block, the first 8 bytes of its SHA-256
 * (computed here with OpenSSL's one-shot SHA256 over the fixture's bytes). */
START_TEST(compute_writes_records)
{
	const char *dir = tu_tmpdir();
	char path[256];
	snprintf(path, sizeof path, "%s/m.blocks", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct qa_manifest_opts o = { false, false, false, (unsigned)_i + 1, true, fd, NULL, NULL, false };
	struct qa_manifest *m;
	ck_assert_int_eq(qa_manifest_compute_opts(tu_path(FIX), &o, &m, NULL), QA_OK);
	close(fd);
	ck_assert(m->has_index);
	ck_assert(!m->has_blocks);
	size_t len, flen;
	uint8_t *b = tu_slurp(path, &len), *file = tu_slurp(tu_path(FIX), &flen), d[32];
	ck_assert_uint_eq(m->index_size, len);
	SHA256(b, len, d);
	ck_assert_mem_eq(d, m->index_sha256, 32);
	const uint8_t *rec = b + 32 + 8 * m->n;
	for (size_t i = 0; i < m->n; i++) {
		const struct qa_manifest_tensor *t = &m->tensors[i];
		ck_assert_uint_eq(le64(b + 32 + 8 * i), t->n_blocks);
		const uint8_t *data = file + m->data_offset + t->offset;
		for (uint64_t k = 0; k < t->n_blocks; k++, rec += 8) {
			uint64_t n = t->nbytes - k * t->block_bytes < t->block_bytes ? t->nbytes - k * t->block_bytes
			                                                               : t->block_bytes;
			SHA256(data + k * t->block_bytes, (size_t)n, d);
			ck_assert_mem_eq(rec, d, 8);
		}
	}
	ck_assert_ptr_eq(rec, b + len);
	free(b);
	free(file);
	qa_manifest_free(m);
}
END_TEST

/* core: verify's streaming path locates a flipped byte through the index,
 * and a first pass without blocks gives the same tensor digests. */
START_TEST(locate_through_index)
{
	const char *dir = tu_tmpdir();
	char mpath[256], ipath[256], copy[256];
	snprintf(mpath, sizeof mpath, "%s/m.json", dir);
	snprintf(ipath, sizeof ipath, "%s/m.json.blocks", dir);
	snprintf(copy, sizeof copy, "%s/copy.gguf", dir);
	int fd = open(ipath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct qa_manifest_opts o = { false, false, false, 2, true, fd, NULL, NULL, false };
	struct qa_manifest *m, *want, *got, *full;
	ck_assert_int_eq(qa_manifest_compute_opts(tu_path(FIX), &o, &m, NULL), QA_OK);
	close(fd);
	m->index_file = malloc(sizeof "m.json.blocks");
	memcpy(m->index_file, "m.json.blocks", sizeof "m.json.blocks");
	json_t *j = qa_manifest_to_json(m);
	ck_assert_int_eq(json_dump_file(j, mpath, 0), 0);
	json_decref(j);
	ck_assert_int_eq(qa_manifest_load(mpath, &want, NULL), QA_OK);
	ck_assert(want->has_index);
	ck_assert(!want->has_blocks);

	/* flip one byte in blk.0.ffn_down.weight, block 124 (data offset 2016 + 280064 + 124*144 + 5) */
	ck_assert_int_eq(tu_copy_flipped(tu_path(FIX), copy, 2016 + 280064 + 124 * 144 + 5, 0x40), 0);
	struct qa_manifest_opts first = { false, false, true, 2, false, -1, NULL, NULL, false };
	ck_assert_int_eq(qa_manifest_compute_opts(copy, &first, &got, NULL), QA_OK);
	ck_assert_int_eq(qa_manifest_compute(copy, false, false, 1, &full, NULL), QA_OK);
	for (size_t i = 0; i < got->n; i++)
		ck_assert_mem_eq(got->tensors[i].sha256, full->tensors[i].sha256, 32);
	ck_assert_mem_eq(got->sha256, full->sha256, 32);
	struct qa_source *isrc;
	struct qa_blockindex *bi;
	struct qa_verify v;
	ck_assert_int_eq(qa_manifest_open_index(want, mpath, &isrc, &bi, NULL), QA_OK);
	ck_assert_int_eq(qa_verify_compare(got, want, &v, NULL), QA_OK);
	ck_assert_int_eq(qa_verify_locate(&v, got, want, bi, copy, 2, NULL), QA_OK);
	ck_assert_uint_eq(v.n_items, 1);
	ck_assert_str_eq(v.items[0].name, "blk.0.ffn_down.weight");
	ck_assert(v.items[0].blocks_known);
	ck_assert_uint_eq(v.items[0].blocks_compared, 512);
	ck_assert_uint_eq(v.items[0].divergent_blocks, 1);
	ck_assert_uint_eq(v.items[0].first_divergent, 124);
	qa_verify_free(&v);
	qa_blockindex_free(bi);
	qa_source_close(isrc);

	/* an index of another file with the same tensors is refused by its digest */
	struct qa_diag d;
	want->index_sha256[0] ^= 1;
	ck_assert_int_eq(qa_manifest_open_index(want, mpath, &isrc, &bi, &d), QA_ERR_FORMAT);
	ck_assert_ptr_null(bi);
	ck_assert_ptr_null(isrc);
	qa_manifest_free(full);
	qa_manifest_free(got);
	qa_manifest_free(want);
	qa_manifest_free(m);
}
END_TEST

/* limits: digests of 4 and 32 bytes, no tensors, reads outside a tensor, a short writer. */
START_TEST(limits)
{
	const char *dir = tu_tmpdir();
	char path[256];
	snprintf(path, sizeof path, "%s/l.blocks", dir);
	uint64_t counts[2] = { 2, 1 };
	uint8_t dg[3 * 32] = { 0 };
	for (unsigned db = 4; db <= 32; db += 28) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		struct qa_blockindex_writer *w;
		ck_assert_int_eq(qa_blockindex_writer_open(&w, fd, db, 2, counts, NULL), QA_OK);
		qa_blockindex_writer_add(w, dg, 3);
		uint64_t size;
		uint8_t sha[32];
		ck_assert_int_eq(qa_blockindex_writer_finish(w, &size, sha, NULL), QA_OK);
		ck_assert_uint_eq(size, 32 + 16 + 3 * db);
		qa_blockindex_writer_free(w);
		close(fd);
		struct qa_source *src;
		struct qa_blockindex *bi;
		ck_assert_int_eq(qa_source_open_stream(&src, path, NULL), QA_OK);
		ck_assert_int_eq(qa_blockindex_open(&bi, src, NULL), QA_OK);
		ck_assert_uint_eq(qa_blockindex_digest_bytes(bi), db);
		uint8_t rec[64];
		ck_assert_int_eq(qa_blockindex_read(bi, 0, 1, 2, rec, NULL), QA_ERR_USAGE);
		ck_assert_int_eq(qa_blockindex_read(bi, 2, 0, 1, rec, NULL), QA_ERR_USAGE);
		ck_assert_int_eq(qa_blockindex_read(bi, 0, UINT64_MAX, 2, rec, NULL), QA_ERR_USAGE);
		ck_assert_int_eq(qa_blockindex_read(bi, 1, 0, 1, rec, NULL), QA_OK);
		qa_blockindex_free(bi);
		qa_source_close(src);
	}
	/* a writer given fewer records than its table promised */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct qa_blockindex_writer *w;
	ck_assert_int_eq(qa_blockindex_writer_open(&w, fd, 8, 2, counts, NULL), QA_OK);
	qa_blockindex_writer_add(w, dg, 2);
	uint64_t size;
	uint8_t sha[32];
	ck_assert_int_eq(qa_blockindex_writer_finish(w, &size, sha, NULL), QA_ERR_USAGE);
	qa_blockindex_writer_free(w);
	close(fd);
	ck_assert_int_eq(qa_blockindex_writer_open(&w, -1, 3, 0, counts, NULL), QA_ERR_USAGE);
	/* a write that fails (a closed descriptor) is an I/O error at finish */
	ck_assert_int_eq(qa_blockindex_writer_open(&w, fd, 8, 2, counts, NULL), QA_OK);
	qa_blockindex_writer_add(w, dg, 3);
	ck_assert_int_eq(qa_blockindex_writer_finish(w, &size, sha, NULL), QA_ERR_IO);
	qa_blockindex_writer_free(w);
}
END_TEST

/* malformed: every bad-*.bin of the corpus is refused with QA_ERR_FORMAT, every good-*.bin read. */
START_TEST(corpus)
{
	DIR *dp = opendir(tu_path("tests/data/blockindex"));
	ck_assert_ptr_nonnull(dp);
	struct dirent *de;
	int good = 0, bad = 0;
	while ((de = readdir(dp))) {
		const char *n = de->d_name;
		size_t l = strlen(n);
		if (l < 4 || strcmp(n + l - 4, ".bin") != 0)
			continue;
		char rel[512];
		snprintf(rel, sizeof rel, "tests/data/blockindex/%s", n);
		size_t len = 0;
		uint8_t *b = tu_slurp(tu_path(rel), &len);
		ck_assert_msg(b != NULL, "%s: cannot read", rel);
		struct qa_source *src;
		struct qa_blockindex *bi = NULL;
		struct qa_diag d;
		qa_diag_clear(&d);
		ck_assert_int_eq(qa_source_open_memory(&src, b, len, n, NULL), QA_OK);
		enum qa_err e = qa_blockindex_open(&bi, src, &d);
		if (strncmp(n, "good-", 5) == 0) {
			ck_assert_msg(e == QA_OK, "%s: %s", n, d.msg);
			uint8_t sha[32], want[32];
			ck_assert_int_eq(qa_blockindex_sha256(bi, sha, NULL), QA_OK);
			SHA256(b, len, want);
			ck_assert_mem_eq(sha, want, 32);
			good++;
		} else {
			ck_assert_msg(e == QA_ERR_FORMAT, "%s: accepted (%d)", n, (int)e);
			ck_assert_ptr_null(bi);
			ck_assert(d.msg[0] != '\0');
			bad++;
		}
		qa_blockindex_free(bi);
		qa_source_close(src);
		free(b);
	}
	closedir(dp);
	ck_assert_int_ge(good, 3);
	ck_assert_int_ge(bad, 11);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blockindex");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 60);
	tcase_add_test(core, writer_layout);
	tcase_add_loop_test(core, compute_writes_records, 0, 2);
	tcase_add_test(core, locate_through_index);
	suite_add_tcase(s, core);
	TCase *lim = tcase_create("limits");
	tcase_add_test(lim, limits);
	suite_add_tcase(s, lim);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, corpus);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
