#define _POSIX_C_SOURCE 200809L
/*
 * check_manifest.c - block digests, Merkle roots and manifests: against an
 * independent SHA-256 computation, with partial blocks, tampering, JSON
 * round trips and malformed manifests.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "gguf.h"
#include "manifest.h"
#include "source.h"
#include "testutil.h"
#include "types.h"
#include "manifest_json.h"

#define FIX "fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf"

/* Independent digest (OpenSSL's one-shot function, not the library's EVP path). */
static void sha(const void *p, size_t n, uint8_t out[32])
{
	SHA256(p, n, out);
}

/* core: every tensor's digest, block digests and Merkle root agree with a direct computation. */
START_TEST(digests_match_direct_computation)
{
	struct qa_manifest *m;
	ck_assert_int_eq(qa_manifest_compute(tu_path(FIX), true, true, (unsigned)_i + 1, &m, NULL), QA_OK);
	size_t len;
	uint8_t *file = tu_slurp(tu_path(FIX), &len), d[32];
	sha(file, len, d);
	ck_assert_mem_eq(d, m->sha256, 32);
	ck_assert_uint_eq(m->size, len);
	struct qa_source *src;
	struct qa_gguf *g;
	ck_assert_int_eq(qa_source_open_file(&src, tu_path(FIX), NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_open(&g, src, NULL), QA_OK);
	sha(file, (size_t)qa_gguf_data_offset(g), d);
	ck_assert_mem_eq(d, m->metadata_sha256, 32);
	ck_assert_uint_eq(m->n, qa_gguf_n_tensors(g));
	for (size_t i = 0; i < m->n; i++) {
		const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
		const struct qa_manifest_tensor *mt = &m->tensors[i];
		const uint8_t *data = file + qa_gguf_data_offset(g) + t->offset;
		const struct qa_type_info *ti = qa_type_get(t->type);
		uint64_t per = ti->block_elems >= 256 ? ti->block_bytes : 256 / ti->block_elems * ti->block_bytes;
		ck_assert_str_eq(mt->name, t->name);
		sha(data, (size_t)t->nbytes, d);
		ck_assert_mem_eq(d, mt->sha256, 32);
		ck_assert_uint_eq(mt->n_blocks, (t->nbytes + per - 1) / per);
		uint8_t *all = malloc((size_t)mt->n_blocks * 32);
		for (uint64_t b = 0; b < mt->n_blocks; b++) {
			uint64_t n = t->nbytes - b * per < per ? t->nbytes - b * per : per;
			sha(data + b * per, (size_t)n, all + b * 32);
		}
		ck_assert_mem_eq(all, mt->blocks, (size_t)mt->n_blocks * 32);
		sha(all, (size_t)mt->n_blocks * 32, d);
		ck_assert_mem_eq(d, mt->merkle, 32);
		free(all);
	}
	qa_gguf_close(g);
	qa_source_close(src);
	free(file);
	qa_manifest_free(m);
}
END_TEST

/* core: a manifest survives JSON and verifies its own file; a tampered copy names tensor and block. */
START_TEST(round_trip_and_tamper)
{
	const char *dir = tu_tmpdir();
	char mpath[256], copy[256];
	snprintf(mpath, sizeof mpath, "%s/m.json", dir);
	snprintf(copy, sizeof copy, "%s/copy.gguf", dir);
	struct qa_manifest *m, *back, *got;
	ck_assert_int_eq(qa_manifest_compute(tu_path(FIX), true, false, 0, &m, NULL), QA_OK);
	json_t *j = qa_manifest_to_json(m);
	ck_assert_int_eq(json_dump_file(j, mpath, JSON_INDENT(1)), 0);
	json_decref(j);
	ck_assert_int_eq(qa_manifest_load(mpath, &back, NULL), QA_OK);
	ck_assert(back->has_blocks);
	struct qa_verify v;
	ck_assert_int_eq(qa_verify_compare(m, back, &v, NULL), QA_OK);
	ck_assert(qa_verify_ok(&v));
	qa_verify_free(&v);

	/* flip one byte in blk.0.ffn_down.weight, block 124 (data offset 2016 + 280064 + 124*144 + 5) */
	ck_assert_int_eq(tu_copy_flipped(tu_path(FIX), copy, 2016 + 280064 + 124 * 144 + 5, 0x40), 0);
	ck_assert_int_eq(qa_manifest_compute(copy, true, false, 0, &got, NULL), QA_OK);
	ck_assert_int_eq(qa_verify_compare(got, back, &v, NULL), QA_OK);
	ck_assert(!qa_verify_ok(&v));
	ck_assert(v.metadata_match);
	ck_assert(!v.file_match);
	ck_assert_uint_eq(v.n_items, 1);
	ck_assert_str_eq(v.items[0].name, "blk.0.ffn_down.weight");
	ck_assert_int_eq(v.items[0].kind, QA_VERIFY_MISMATCH);
	ck_assert_uint_eq(v.items[0].divergent_blocks, 1);
	ck_assert_uint_eq(v.items[0].first_divergent, 124);
	qa_verify_free(&v);
	qa_manifest_free(got);
	qa_manifest_free(back);
	qa_manifest_free(m);
}
END_TEST

/* limits: partial last blocks for every block geometry. */
static const struct {
	uint32_t type;
	uint64_t ne0;
	uint64_t blocks, last_bytes;
} partial[] = {
	{ QA_TYPE_F32, 300, 2, 44 * 4 },     /* 256 + 44 values */
	{ QA_TYPE_F16, 256, 1, 512 },
	{ QA_TYPE_BF16, 513, 3, 2 },
	{ QA_TYPE_Q8_0, 288, 2, 34 },        /* 9 blocks of 32: 8 + 1 */
	{ QA_TYPE_Q4_0, 32, 1, 18 },
	{ QA_TYPE_Q4_K, 512, 2, 144 },
	{ QA_TYPE_Q6_K, 256, 1, 210 },
	{ QA_TYPE_IQ4_NL, 480, 2, 7 * 18 },
};

START_TEST(partial_blocks)
{
	const char *dir = tu_tmpdir();
	char path[256];
	snprintf(path, sizeof path, "%s/p.gguf", dir);
	const struct qa_type_info *ti = qa_type_get(partial[_i].type);
	uint64_t ne[4] = { partial[_i].ne0, 1, 1, 1 }, nbytes;
	ck_assert(qa_type_nbytes(ti, partial[_i].ne0, &nbytes));
	uint8_t *data = malloc((size_t)nbytes);
	for (uint64_t i = 0; i < nbytes; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	struct qa_gguf_writer *w;
	ck_assert_int_eq(qa_gguf_writer_open(&w, path, NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_writer_add_tensor(w, "t", partial[_i].type, 1, ne, NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_writer_begin_data(w, NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_writer_write(w, data, (size_t)nbytes, NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_writer_commit(w, NULL), QA_OK);
	qa_gguf_writer_free(w);
	struct qa_manifest *m;
	ck_assert_int_eq(qa_manifest_compute(path, true, false, 2, &m, NULL), QA_OK);
	ck_assert_uint_eq(m->tensors[0].n_blocks, partial[_i].blocks);
	uint8_t d[32];
	uint64_t last = partial[_i].last_bytes;
	sha(data + nbytes - last, (size_t)last, d);
	ck_assert_mem_eq(d, m->tensors[0].blocks + (partial[_i].blocks - 1) * 32, 32);
	qa_manifest_free(m);
	free(data);
}
END_TEST

/* malformed: manifests that must be refused with QA_ERR_FORMAT. */
static const char *const bad_manifests[] = {
	"not json",
	"[]",
	"{\"schema\":\"quantaudit.manifest/2\"}",
	"{\"schema\":\"quantaudit.manifest/1\",\"schema\":\"quantaudit.manifest/1\"}",
	"{\"schema\":\"quantaudit.manifest/1\",\"file\":{\"size\":1},\"metadata_sha256\":\"00\",\"tensors\":[]}",
	"{\"schema\":\"quantaudit.manifest/1\",\"file\":{\"size\":1,\"sha256\":\"" /* 63 hex */
	"000000000000000000000000000000000000000000000000000000000000000\"},\"tensors\":[]}",
	"{\"schema\":\"quantaudit.manifest/1\",\"file\":{\"size\":1,\"sha256\":\"%H\"},\"metadata_sha256\":\"%H\",\"tensors\":{}}",
	"{\"schema\":\"quantaudit.manifest/1\",\"file\":{\"size\":1,\"sha256\":\"%H\"},\"metadata_sha256\":\"%H\","
	"\"tensors\":[{\"name\":\"a\",\"type\":\"f32\",\"shape\":[1],\"nbytes\":4,\"sha256\":\"%H\",\"blocks\":1}]}",
	"{\"schema\":\"quantaudit.manifest/1\",\"file\":{\"size\":1,\"sha256\":\"%H\"},\"metadata_sha256\":\"%H\","
	"\"tensors\":[{\"name\":\"a\",\"type\":\"f32\",\"shape\":[-1],\"nbytes\":4,\"sha256\":\"%H\",\"blocks\":1,\"merkle_root\":\"%H\"}]}",
	"{\"schema\":\"quantaudit.manifest/1\",\"file\":{\"size\":1,\"sha256\":\"%H\"},\"metadata_sha256\":\"%H\","
	"\"tensors\":[{\"name\":\"a\",\"type\":\"f32\",\"shape\":[1],\"nbytes\":4,\"sha256\":\"%H\",\"blocks\":2,"
	"\"merkle_root\":\"%H\",\"block_sha256\":[\"%H\"]}]}",
	"{\"schema\":\"quantaudit.manifest/1\",\"file\":{\"size\":1,\"sha256\":\"%H\"},\"metadata_sha256\":\"%H\","
	"\"tensors\":[{\"name\":\"a\",\"type\":\"f32\",\"shape\":[1],\"nbytes\":4,\"sha256\":\"%H\",\"blocks\":1,"
	"\"merkle_root\":\"%H\",\"block_sha256\":[\"zz%G\"]}]}",
};

START_TEST(malformed_manifests)
{
	const char *dir = tu_tmpdir();
	char path[256], text[2048];
	const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	const char *src = bad_manifests[_i];
	size_t o = 0;
	for (const char *p = src; *p && o < sizeof text - 70; p++) {
		if (p[0] == '%' && (p[1] == 'H' || p[1] == 'G')) {
			size_t n = p[1] == 'H' ? 64 : 62;
			memcpy(text + o, hex, n);
			o += n;
			p++;
		} else {
			text[o++] = *p;
		}
	}
	text[o] = '\0';
	snprintf(path, sizeof path, "%s/bad.json", dir);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	struct qa_manifest *m = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_manifest_load(path, &m, &d), QA_ERR_FORMAT);
	ck_assert_ptr_null(m);
	ck_assert(d.msg[0] != '\0');
	snprintf(path, sizeof path, "%s/absent.json", dir);
	ck_assert_int_eq(qa_manifest_load(path, &m, &d), QA_ERR_IO);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("manifest");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, digests_match_direct_computation, 0, 2);
	tcase_add_test(core, round_trip_and_tamper);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(limits, partial_blocks, 0, (int)(sizeof partial / sizeof partial[0]));
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, malformed_manifests, 0, (int)(sizeof bad_manifests / sizeof bad_manifests[0]));
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
