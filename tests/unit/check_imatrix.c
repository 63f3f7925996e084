#define _POSIX_C_SOURCE 200809L
/*
 * check_imatrix.c - the importance-matrix reader: llama.cpp's GGUF and legacy
 * formats, llama-quantize's normalisation, the per-tensor lookup, and the
 * malformed corpus in tests/data/imatrix/ (written by its make-corpus.py;
 * the expected outcome of each file is stated in its README.md).
 *
 * Sources of truth: fixtures/imatrix/real-qwen2.imatrix.{gguf,dat} are the
 * matrices the real llama-quantize used for ../shared/oracle/real (their
 * facts below are what its README and the files' own headers state); the
 * normalisation is load_imatrix's in llama.cpp's tools/quantize/quantize.cpp
 * (sums / count per expert in float, 1 when the rounded count is <= 0;
 * legacy sums / ncall, the raw sums when ncall <= 0).
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockhash.h"
#include "cursor.h"
#include "gguf.h"
#include "imatrix.h"
#include "source.h"
#include "testutil.h"

static struct qa_imatrix *load(const char *rel)
{
	struct qa_imatrix *m = NULL;
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_imatrix_load(&m, tu_path(rel), &d);
	ck_assert_msg(e == QA_OK, "%s: %s", rel, d.msg);
	return m;
}

/* The same sums the corpus generator writes: ((i*37 + seed*11) % 97 + 1) * 0.5. */
static float corpus_sum(int i, int seed)
{
	return (float)((i * 37 + seed * 11) % 97 + 1) * 0.5f;
}

/* core: the real GGUF matrix llama-quantize was given */
START_TEST(real_gguf)
{
	struct qa_imatrix *m = load("fixtures/imatrix/real-qwen2.imatrix.gguf");
	const struct qa_imatrix_info *in = qa_imatrix_info(m);
	ck_assert_int_eq(in->format, QA_IMATRIX_GGUF);
	/* every 2-D weight of the 2-layer model except token_embd: 7 per layer + output */
	ck_assert_uint_eq(in->n_entries, 15);
	ck_assert_str_eq(in->dataset, "synthetic-seed-4");
	ck_assert_int_eq(in->chunk_count, 100);
	ck_assert_uint_eq(in->chunk_size, 512);
	ck_assert_ptr_null(qa_imatrix_find(m, "token_embd.weight"));
	const struct qa_imatrix_entry *e = qa_imatrix_find(m, "blk.1.ffn_down.weight");
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->n_values, 768);
	ck_assert_uint_eq(e->n_expert, 1);
	/* name order, as llama.cpp's std::map */
	for (size_t i = 1; i < in->n_entries; i++)
		ck_assert_int_lt(strcmp(qa_imatrix_entry_at(m, i - 1)->name, qa_imatrix_entry_at(m, i)->name), 0);
	ck_assert_ptr_null(qa_imatrix_entry_at(m, in->n_entries));

	/* the normalisation, against the raw tensors read by the GGUF reader */
	struct qa_source *src;
	struct qa_gguf *g;
	struct qa_diag d;
	ck_assert_int_eq(qa_source_open_file(&src, tu_path("fixtures/imatrix/real-qwen2.imatrix.gguf"), &d), QA_OK);
	ck_assert_int_eq(qa_gguf_open(&g, src, &d), QA_OK);
	for (size_t k = 0; k < in->n_entries; k++) {
		const struct qa_imatrix_entry *en = qa_imatrix_entry_at(m, k);
		char name[128];
		const void *sv, *cv;
		snprintf(name, sizeof name, "%s.in_sum2", en->name);
		const struct qa_gguf_tensor *st = qa_gguf_tensor_find(g, name);
		snprintf(name, sizeof name, "%s.counts", en->name);
		const struct qa_gguf_tensor *ct = qa_gguf_tensor_find(g, name);
		ck_assert(st && ct);
		ck_assert_int_eq(qa_gguf_tensor_view(g, st, &sv, &d), QA_OK);
		ck_assert_int_eq(qa_gguf_tensor_view(g, ct, &cv, &d), QA_OK);
		float count = (float)lroundf(qa_load_lef32(cv));
		ck_assert(count > 0);
		for (uint64_t i = 0; i < en->n_values; i++) {
			float want = qa_load_lef32((const uint8_t *)sv + 4 * i) / count;
			ck_assert_msg(memcmp(&want, &en->weights[i], 4) == 0, "%s[%llu]", en->name,
			              (unsigned long long)i);
		}
	}
	qa_gguf_close(g);
	qa_source_close(src);

	/* the file's digest */
	size_t len;
	uint8_t *raw = tu_slurp(tu_path("fixtures/imatrix/real-qwen2.imatrix.gguf"), &len);
	uint8_t dig[QA_SHA256_LEN];
	ck_assert_int_eq(qa_sha256(raw, len, dig, NULL), QA_OK);
	ck_assert_mem_eq(dig, in->sha256, QA_SHA256_LEN);
	ck_assert_uint_eq(in->file_size, len);

	/* a memory source parses the same */
	struct qa_source *ms;
	struct qa_imatrix *m2;
	ck_assert_int_eq(qa_source_open_memory(&ms, raw, len, "mem", &d), QA_OK);
	ck_assert_int_eq(qa_imatrix_open(&m2, ms, &d), QA_OK);
	qa_source_close(ms);
	ck_assert_uint_eq(qa_imatrix_info(m2)->n_entries, 15);
	ck_assert_mem_eq(qa_imatrix_find(m2, "output.weight")->weights,
	                 qa_imatrix_find(m, "output.weight")->weights, 256 * sizeof(float));
	qa_imatrix_free(m2);
	free(raw);
	qa_imatrix_free(m);
}
END_TEST

/* core: the legacy .dat of the same means (sums = mean * 100) */
START_TEST(real_dat)
{
	struct qa_imatrix *m = load("fixtures/imatrix/real-qwen2.imatrix.dat");
	struct qa_imatrix *g = load("fixtures/imatrix/real-qwen2.imatrix.gguf");
	const struct qa_imatrix_info *in = qa_imatrix_info(m);
	ck_assert_int_eq(in->format, QA_IMATRIX_LEGACY);
	ck_assert_uint_eq(in->n_entries, 15);
	ck_assert_str_eq(in->dataset, "synthetic-seed-4");
	ck_assert_int_eq(in->chunk_count, 100);
	ck_assert_uint_eq(in->chunk_size, 0);
	/* the same entries; each weight within a few ulps of the GGUF one
	 * (llama-quantize divides by ncall again, so low bits may differ) */
	size_t differ = 0;
	for (size_t k = 0; k < in->n_entries; k++) {
		const struct qa_imatrix_entry *a = qa_imatrix_entry_at(m, k), *b = qa_imatrix_entry_at(g, k);
		ck_assert_str_eq(a->name, b->name);
		ck_assert_uint_eq(a->n_values, b->n_values);
		for (uint64_t i = 0; i < a->n_values; i++) {
			ck_assert(fabsf(a->weights[i] - b->weights[i]) <= 4e-7f * fabsf(b->weights[i]));
			differ += a->weights[i] != b->weights[i];
		}
	}
	(void)differ;
	qa_imatrix_free(g);
	qa_imatrix_free(m);
}
END_TEST

/* core: normalisation cases of the corpus (count 0 -> 1, experts, ncall 0 -> raw) */
START_TEST(corpus_normalisation)
{
	struct qa_imatrix *m = load("tests/data/imatrix/good.gguf");
	const struct qa_imatrix_entry *k = qa_imatrix_find(m, "blk.0.attn_k.weight");
	const struct qa_imatrix_entry *v = qa_imatrix_find(m, "blk.0.attn_v.weight");
	ck_assert(k && v);
	for (int i = 0; i < 256; i++) {
		ck_assert_float_eq(k->weights[i], corpus_sum(i, 1) / 20.0f);
		ck_assert_float_eq(v->weights[i], 1.0f); /* count 0: weights of 1 */
	}
	ck_assert_str_eq(qa_imatrix_info(m)->dataset, "corpus-set");
	qa_imatrix_free(m);

	m = load("tests/data/imatrix/good-experts.gguf");
	const struct qa_imatrix_entry *x = qa_imatrix_find(m, "blk.0.ffn_down_exps.weight");
	ck_assert_uint_eq(x->n_values, 256);
	ck_assert_uint_eq(x->n_expert, 4);
	for (int i = 0; i < 256; i++)
		ck_assert_float_eq(x->weights[i], corpus_sum(i, 3) / 8.0f);
	const float *w;
	struct qa_diag d;
	ck_assert_int_eq(qa_imatrix_weights(m, x->name, 64, 4, &w, &d), QA_OK);
	ck_assert_ptr_eq(w, x->weights);
	/* llama-quantize compares the length with ne[0] * ne[2] only */
	ck_assert_int_eq(qa_imatrix_weights(m, x->name, 256, 1, &w, &d), QA_OK);
	ck_assert_int_eq(qa_imatrix_weights(m, x->name, 64, 1, &w, &d), QA_ERR_VALUE);
	qa_imatrix_free(m);

	m = load("tests/data/imatrix/good.dat");
	k = qa_imatrix_find(m, "blk.0.attn_k.weight");
	v = qa_imatrix_find(m, "blk.0.attn_v.weight");
	for (int i = 0; i < 256; i++) {
		ck_assert_float_eq(k->weights[i], corpus_sum(i, 1) / 10.0f);
		ck_assert_float_eq(v->weights[i], corpus_sum(i, 2)); /* ncall 0: raw sums */
	}
	ck_assert_int_eq(qa_imatrix_info(m)->chunk_count, 10);
	ck_assert_str_eq(qa_imatrix_info(m)->dataset, "corpus-set");
	qa_imatrix_free(m);

	m = load("tests/data/imatrix/good-no-trailer.dat");
	ck_assert_int_eq(qa_imatrix_info(m)->chunk_count, 0);
	ck_assert_ptr_null(qa_imatrix_info(m)->dataset);
	qa_imatrix_free(m);
}
END_TEST

static bool only_attn_k(void *ctx, const char *name)
{
	(void)ctx;
	return strcmp(name, "blk.0.attn_k.weight") == 0;
}

/* limits: which tensors get weights, and lengths that do not fit */
START_TEST(lookup)
{
	struct qa_imatrix *m = load("tests/data/imatrix/bad-length.gguf");
	const float *w = (const float *)1;
	struct qa_diag d;
	qa_diag_clear(&d);
	/* no entry: unweighted */
	ck_assert_int_eq(qa_imatrix_weights(m, "blk.0.attn_q.weight", 256, 1, &w, &d), QA_OK);
	ck_assert_ptr_null(w);
	/* 128 values for a tensor of 256 columns: an error naming both */
	ck_assert_int_eq(qa_imatrix_weights(m, "blk.0.attn_k.weight", 256, 1, &w, &d), QA_ERR_VALUE);
	ck_assert_ptr_nonnull(strstr(d.msg, "imatrix entry blk.0.attn_k.weight has 128 values"));
	ck_assert_ptr_nonnull(strstr(d.msg, "tensor blk.0.attn_k.weight has 256 columns"));
	ck_assert_uint_ne(d.offset, QA_NO_OFFSET);
	/* the right length */
	ck_assert_int_eq(qa_imatrix_weights(m, "blk.0.attn_k.weight", 128, 1, &w, &d), QA_OK);
	ck_assert_ptr_nonnull(w);
	/* experts multiply the length */
	ck_assert_int_eq(qa_imatrix_weights(m, "blk.0.attn_k.weight", 64, 2, &w, &d), QA_OK);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(qa_imatrix_weights(m, "blk.0.attn_k.weight", UINT64_MAX, 2, &w, &d), QA_ERR_VALUE);
	qa_imatrix_free(m);

	m = load("tests/data/imatrix/unmatched.gguf");
	const char *first;
	ck_assert_uint_eq(qa_imatrix_count_unmatched(m, only_attn_k, NULL, &first), 1);
	ck_assert_str_eq(first, "blk.9.attn_x.weight");
	qa_imatrix_free(m);
}
END_TEST

/* limits: the token_embd exception, on a matrix whose entry is named so */
START_TEST(token_embd_exception)
{
	/* write a legacy matrix: token_embd.weight with 10 values */
	uint8_t buf[4 + 4 + 17 + 8 + 40];
	size_t k = 0;
	qa_store_le32(buf + k, 1); k += 4;
	qa_store_le32(buf + k, 17); k += 4;
	memcpy(buf + k, "token_embd.weight", 17); k += 17;
	qa_store_le32(buf + k, 1); k += 4;
	qa_store_le32(buf + k, 10); k += 4;
	for (int i = 0; i < 10; i++, k += 4)
		qa_store_lef32(buf + k, 1.0f + (float)i);
	struct qa_source *src;
	struct qa_imatrix *m;
	struct qa_diag d;
	const float *w = (const float *)1;
	ck_assert_int_eq(qa_source_open_memory(&src, buf, k, "mem", &d), QA_OK);
	ck_assert_int_eq(qa_imatrix_open(&m, src, &d), QA_OK);
	qa_source_close(src);
	ck_assert_int_eq(qa_imatrix_weights(m, "token_embd.weight", 256, 1, &w, &d), QA_OK);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(qa_imatrix_weights(m, "token_embd.weight", 10, 1, &w, &d), QA_OK);
	ck_assert_float_eq(w[9], 10.0f);
	qa_imatrix_free(m);
}
END_TEST

/* malformed: the corpus, each with the outcome its README states */
static const struct {
	const char *file;
	enum qa_err code;
	const char *reason;
} bad[] = {
	{ "bad-truncated.gguf", QA_ERR_FORMAT, "runs past end of file" },
	{ "bad-truncated.dat", QA_ERR_FORMAT, "truncated imatrix entry values" },
	{ "bad-counts.gguf", QA_ERR_FORMAT, "has 3 counts for 256 sums" },
	{ "bad-no-counts.gguf", QA_ERR_FORMAT, "has no matching .counts" },
	{ "bad-no-sums.gguf", QA_ERR_FORMAT, "has no matching .in_sum2" },
	{ "bad-f16.gguf", QA_ERR_FORMAT, "must be f32" },
	{ "bad-nan.gguf", QA_ERR_VALUE, "value 17 is nan" },
	{ "bad-nan.dat", QA_ERR_VALUE, "value 17 is nan" },
	{ "bad-nan-name.dat", QA_ERR_VALUE, "entry evil\x1b[2J\anam" },
	{ "bad-inf.dat", QA_ERR_VALUE, "value 3 is +inf" },
	{ "bad-nan-count.gguf", QA_ERR_FORMAT, "count 0 is not a finite integer" },
	{ "bad-no-metadata.gguf", QA_ERR_FORMAT, "missing imatrix metadata" },
	{ "bad-chunk-type.gguf", QA_ERR_FORMAT, "imatrix.chunk_count must be a u32" },
	{ "bad-no-entries.gguf", QA_ERR_FORMAT, "no entries" },
	{ "bad-empty.dat", QA_ERR_FORMAT, "no data" },
	{ "bad-name-length.dat", QA_ERR_FORMAT, "name length -5" },
	{ "bad-zero-values.dat", QA_ERR_FORMAT, "0 values" },
	{ "bad-huge-values.dat", QA_ERR_FORMAT, "truncated imatrix entry values" },
	{ "bad-trailer.dat", QA_ERR_FORMAT, "truncated legacy imatrix dataset" },
};

START_TEST(malformed)
{
	char rel[128];
	size_t len;
	struct qa_imatrix *m = NULL;
	struct qa_diag d;
	snprintf(rel, sizeof rel, "tests/data/imatrix/%s", bad[_i].file);
	uint8_t *raw = tu_slurp(tu_path(rel), &len);
	ck_assert_ptr_nonnull(raw);
	qa_diag_clear(&d);
	enum qa_err e = qa_imatrix_load(&m, tu_path(rel), &d);
	ck_assert_msg(e == bad[_i].code, "%s: got %d (%s)", bad[_i].file, e, d.msg);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(d.msg, bad[_i].reason), "%s: %s", bad[_i].file, d.msg);
	ck_assert_uint_ne(d.offset, QA_NO_OFFSET);
	ck_assert_uint_le(d.offset, len);
	free(raw);
}
END_TEST

/* malformed: every prefix of a valid file parses or fails cleanly, never reads past it */
START_TEST(prefixes)
{
	static const char *const files[] = { "tests/data/imatrix/good.gguf", "tests/data/imatrix/good.dat" };
	size_t len;
	uint8_t *raw = tu_slurp(tu_path(files[_i]), &len);
	ck_assert_ptr_nonnull(raw);
	for (size_t n = 0; n < len; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, raw, n);
		struct qa_source *src;
		struct qa_imatrix *m = NULL;
		struct qa_diag d;
		ck_assert_int_eq(qa_source_open_memory(&src, cut, n, "cut", &d), QA_OK);
		enum qa_err e = qa_imatrix_open(&m, src, &d);
		/* the GGUF needs all its data (not the padding after the last
		 * tensor); a legacy file may end before the optional trailer */
		if (e) {
			ck_assert_ptr_null(m);
			ck_assert(d.msg[0]);
			ck_assert_uint_le(d.offset, n);
		} else {
			ck_assert(_i == 1 || n > len - 32);
			qa_imatrix_free(m);
		}
		qa_source_close(src);
		free(cut);
	}
	free(raw);
}
END_TEST

START_TEST(missing_file)
{
	struct qa_imatrix *m = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_imatrix_load(&m, "no/such/imatrix.gguf", &d), QA_ERR_IO);
	ck_assert_ptr_null(m);
	qa_imatrix_free(NULL);
	ck_assert_str_eq(qa_imatrix_format_name(QA_IMATRIX_GGUF), "gguf");
	ck_assert_str_eq(qa_imatrix_format_name(QA_IMATRIX_LEGACY), "legacy");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("imatrix");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits"), *bad_tc = tcase_create("malformed");
	tcase_add_test(core, real_gguf);
	tcase_add_test(core, real_dat);
	tcase_add_test(core, corpus_normalisation);
	tcase_add_test(limits, lookup);
	tcase_add_test(limits, token_embd_exception);
	tcase_add_loop_test(bad_tc, malformed, 0, (int)(sizeof bad / sizeof bad[0]));
	tcase_add_loop_test(bad_tc, prefixes, 0, 2);
	tcase_add_test(bad_tc, missing_file);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, bad_tc);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
