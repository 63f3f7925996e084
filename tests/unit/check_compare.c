#define _POSIX_C_SOURCE 200809L
/*
 * check_compare.c - the diff and shape-swap audits: every verdict, on ggml's
 * artifacts in fixtures/ and on variants of them written here, plus the
 * error paths.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "gguf.h"
#include "model.h"
#include "quantize.h"
#include "recipe.h"
#include "source.h"
#include "testutil.h"
#include "tu_defects.h"
#include "types.h"

#define REF "fixtures/models/micro-qwen2.safetensors"
#define CORRUPT "fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf"
#define TRANSPOSED "fixtures/models/micro-qwen2.pure-q4_K.transposed.gguf"

static const struct qa_diff_tensor *find(const struct qa_diff_result *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->tensors[i].name, name) == 0)
			return &r->tensors[i];
	return NULL;
}

static struct qa_diff_result *diff(const char *ref, const char *art)
{
	struct qa_diff_result *r = NULL;
	const char *culprit;
	struct qa_diag d;
	enum qa_err e = qa_diff_run(ref, art, NULL, &r, &culprit, &d);
	ck_assert_msg(e == QA_OK, "diff failed: %s", d.msg);
	return r;
}

/* The JSON of diff with options o (asserting success). */
static char *diff_json(const char *ref, const char *art, const struct qa_diff_opts *o)
{
	struct qa_diff_result *r = NULL;
	const char *culprit;
	struct qa_diag d;
	enum qa_err e = qa_diff_run(ref, art, o, &r, &culprit, &d);
	ck_assert_msg(e == QA_OK, "diff %s %s failed: %s", ref, art, d.msg);
	char *j = qa_diff_json_text(r);
	ck_assert_ptr_nonnull(j);
	qa_diff_free(r);
	return j;
}

/*
 * core: the streamed comparison (windows of rows, memcmp, error sums
 * carried across windows) is held to the whole-tensor path: for every
 * fixture pair, with and without importance weights, llama q/k rows
 * permuted within heads, divergent tensors falling back, the JSON is
 * byte-identical under QA_DIFF_WHOLE, one-row windows, odd-sized windows
 * and the default, and on one thread or two.
 */
START_TEST(stream_agrees_with_whole)
{
	static const struct {
		const char *ref, *art, *imatrix;
	} cases[] = {
		{ REF, CORRUPT, NULL },
		{ REF, TRANSPOSED, NULL },
		{ "fixtures/forensics/llama/model.safetensors", "fixtures/forensics/llama/unpermuted.q4_0.gguf", NULL },
		{ "fixtures/forensics/llama/model.safetensors", "fixtures/forensics/llama/unpermuted-other.q4_0.gguf", NULL },
		{ "fixtures/forensics/real/model.safetensors", "fixtures/forensics/real/corrupt-block.gguf", NULL },
		{ "fixtures/forensics/real/model.safetensors", "fixtures/forensics/real/imatrix.transposed.gguf",
		  "fixtures/imatrix/real-qwen2.imatrix.gguf" },
		{ "fixtures/forensics/real/model.safetensors", "fixtures/forensics/real/other-quantizer.transposed.gguf", NULL },
	};
	static const uint64_t windows[] = { 1, 777, 40000, 0 };
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct qa_imatrix *im = NULL;
		struct qa_diag d;
		struct qa_diff_opts o;
		memset(&o, 0, sizeof o);
		if (cases[k].imatrix) {
			ck_assert_int_eq(qa_imatrix_load(&im, tu_path(cases[k].imatrix), &d), QA_OK);
			o.imatrix = im;
			o.imatrix_path = cases[k].imatrix;
		}
		o.window_elems = QA_DIFF_WHOLE;
		o.n_threads = 1;
		char *whole = diff_json(tu_path(cases[k].ref), tu_path(cases[k].art), &o);
		for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
			o.window_elems = windows[w];
			o.n_threads = 1 + (unsigned)(w % 2);
			char *j = diff_json(tu_path(cases[k].ref), tu_path(cases[k].art), &o);
			ck_assert_msg(strcmp(whole, j) == 0, "%s: window %llu differs from the whole-tensor path",
			              cases[k].art, (unsigned long long)windows[w]);
			free(j);
		}
		free(whole);
		qa_imatrix_free(im);
	}
}
END_TEST

/* core: the planted corrupt block is found, and only it. */
START_TEST(corrupt_block)
{
	char name[128];
	uint64_t block;
	tu_defect_corrupt("micro-qwen2.Q4_K_M.corrupt.gguf", name, sizeof name, &block);
	struct qa_diff_result *r = diff(tu_path(REF), tu_path(CORRUPT));
	ck_assert(!r->pass);
	ck_assert_uint_eq(r->counts[QA_VERDICT_DIVERGENT], 1);
	ck_assert_uint_eq(r->counts[QA_VERDICT_IDENTICAL], r->n - 1);
	const struct qa_diff_tensor *t = find(r, name);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->verdict, QA_VERDICT_DIVERGENT);
	ck_assert_uint_eq(t->divergent_blocks, 1);
	ck_assert_uint_eq(t->first_divergent, block);
	ck_assert(qa_diff_block_divergent(t, block));
	ck_assert(!qa_diff_block_divergent(t, block - 1));
	ck_assert_int_eq(t->layout, -1);
	ck_assert(t->has_error);
	/* the recipe check: every type is what llama.cpp's Q4_K_M chooses */
	ck_assert_str_eq(r->recipe_name, "Q4_K_M");
	ck_assert(r->recipe_matches);
	ck_assert(!r->different_quantizer);
	/* identical tensors carry exactly ggml's error */
	const struct qa_diff_tensor *o = find(r, "output.weight");
	ck_assert(o->rmse == o->requant_rmse && o->rmse > 0);
	qa_diff_free(r);
}
END_TEST

/* core: a transposed export is named as such, with its real (large) error. */
START_TEST(transposed_export)
{
	char names[8][128];
	size_t n = tu_defect_transposed("micro-qwen2.pure-q4_K.transposed.gguf", names, 8);
	struct qa_diff_result *r = diff(tu_path(REF), tu_path(TRANSPOSED));
	for (size_t i = 0; i < n; i++) {
		const struct qa_diff_tensor *t = find(r, names[i]);
		ck_assert_ptr_nonnull(t);
		ck_assert_int_eq(t->verdict, QA_VERDICT_TRANSPOSED);
		ck_assert_int_eq(t->layout, QA_LAYOUT_TRANSPOSED);
		ck_assert(t->rmse > 5 * t->requant_rmse);
	}
	ck_assert_uint_eq(r->counts[QA_VERDICT_TRANSPOSED], 2);
	/* the type plan is llama-quantize --pure q4_K, not the Q4_K_M recipe it declares */
	ck_assert(!r->recipe_matches);
	ck_assert(r->pure_matches);
	ck_assert_uint_eq(r->pure_type, QA_TYPE_Q4_K);
	const struct qa_diff_tensor *v = find(r, "blk.1.attn_v.weight");
	ck_assert(v->in_plan);
	ck_assert_uint_eq(v->recipe_type, QA_TYPE_Q6_K);
	ck_assert_uint_eq(r->counts[QA_VERDICT_TRANSPOSED], n); /* and no other */
	qa_diff_free(r);
}
END_TEST

/* core: an artifact written with the shape-swap layout is reported as layout-swap. */
START_TEST(layout_swap)
{
	const char *dir = tu_tmpdir();
	char out[256];
	snprintf(out, sizeof out, "%s/swap.gguf", dir);
	struct qa_ref *ref;
	struct qa_quantize_opts o;
	memset(&o, 0, sizeof o);
	o.pure_type = QA_TYPE_Q4_K;
	o.layout = QA_LAYOUT_IN_OUT;
	o.allow_invalid = true;
	ck_assert_int_eq(qa_ref_open(&ref, tu_path(REF), NULL), QA_OK);
	ck_assert_int_eq(qa_quantize_model(ref, &o, out, NULL), QA_OK);
	qa_ref_close(ref);
	struct qa_diff_result *r = diff(tu_path(REF), out);
	/* k and v have 64 rows: the swap changes their cut; the 256/512 tensors are unaffected */
	ck_assert_int_eq(find(r, "blk.0.attn_k.weight")->verdict, QA_VERDICT_LAYOUT_SWAP);
	ck_assert_int_eq(find(r, "blk.1.attn_v.weight")->verdict, QA_VERDICT_LAYOUT_SWAP);
	ck_assert_int_eq(find(r, "blk.0.ffn_down.weight")->verdict, QA_VERDICT_IDENTICAL);
	ck_assert_uint_eq(r->counts[QA_VERDICT_LAYOUT_SWAP], 4);
	qa_diff_free(r);
}
END_TEST

/* Copy the corrupt fixture with edits: drop `drop`, add an extra tensor,
 * retype `retype` to q8_1 (a type no quantizer writes), reshape `reshape`. */
static void write_variant(const char *out, const char *drop, bool extra, const char *retype,
                          const char *reshape)
{
	struct qa_source *src;
	struct qa_gguf *g;
	struct qa_gguf_writer *w;
	ck_assert_int_eq(qa_source_open_file(&src, tu_path(CORRUPT), NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_open(&g, src, NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_writer_open(&w, out, NULL), QA_OK);
	for (size_t i = 0; i < qa_gguf_n_kv(g); i++) {
		const struct qa_gguf_kv *kv = qa_gguf_kv_at(g, i);
		ck_assert_int_eq(qa_gguf_writer_add_kv(w, kv->key, &kv->value, NULL), QA_OK);
	}
	uint64_t ne_extra[4] = { 256, 1, 1, 1 };
	for (size_t i = 0; i < qa_gguf_n_tensors(g); i++) {
		const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
		uint64_t ne[4];
		memcpy(ne, t->ne, sizeof ne);
		uint32_t type = t->type;
		if (drop && strcmp(t->name, drop) == 0)
			continue;
		if (retype && strcmp(t->name, retype) == 0)
			type = QA_TYPE_Q8_1;
		if (reshape && strcmp(t->name, reshape) == 0) {
			ne[0] = t->ne[1];
			ne[1] = t->ne[0];
		}
		if (strcmp(t->name, "blk.1.attn_q.weight") == 0 && reshape) {
			ne[0] = 1024; /* same element count, unrelated shape */
			ne[1] = 64;
		}
		ck_assert_int_eq(qa_gguf_writer_add_tensor(w, t->name, type, t->n_dims, ne, NULL), QA_OK);
	}
	if (extra)
		ck_assert_int_eq(qa_gguf_writer_add_tensor(w, "blk.9.extra.weight", QA_TYPE_F32, 1, ne_extra, NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_writer_begin_data(w, NULL), QA_OK);
	static uint8_t zeros[1 << 20];
	for (size_t i = 0; i < qa_gguf_n_tensors(g); i++) {
		const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
		if (drop && strcmp(t->name, drop) == 0)
			continue;
		const void *p;
		ck_assert_int_eq(qa_gguf_tensor_view(g, t, &p, NULL), QA_OK);
		if (retype && strcmp(t->name, retype) == 0) {
			uint64_t n;
			ck_assert(qa_type_nbytes(qa_type_get(QA_TYPE_Q8_1), t->n_elems, &n));
			ck_assert_int_eq(qa_gguf_writer_write(w, zeros, (size_t)n, NULL), QA_OK);
		} else {
			ck_assert_int_eq(qa_gguf_writer_write(w, p, (size_t)t->nbytes, NULL), QA_OK);
		}
	}
	if (extra)
		ck_assert_int_eq(qa_gguf_writer_write(w, zeros, 1024, NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_writer_commit(w, NULL), QA_OK);
	qa_gguf_writer_free(w);
	qa_gguf_close(g);
	qa_source_close(src);
}

/* limits: missing, extra, unsupported-type and shape-mismatch verdicts. */
START_TEST(other_verdicts)
{
	const char *dir = tu_tmpdir();
	char out[256];
	snprintf(out, sizeof out, "%s/variant.gguf", dir);
	write_variant(out, "blk.0.attn_q.bias", true, "blk.0.ffn_gate.weight", "blk.1.ffn_gate.weight");
	struct qa_diff_result *r = diff(tu_path(REF), out);
	ck_assert_int_eq(find(r, "blk.0.attn_q.bias")->verdict, QA_VERDICT_MISSING);
	ck_assert_int_eq(find(r, "blk.9.extra.weight")->verdict, QA_VERDICT_EXTRA);
	ck_assert_ptr_null(find(r, "blk.9.extra.weight")->reference_name);
	ck_assert_int_eq(find(r, "blk.0.ffn_gate.weight")->verdict, QA_VERDICT_UNSUPPORTED);
	/* ne [512,256] declared for a [256,512] weight is the shape-swap export; with both
	 * dims multiples of 256 its bytes are the in,out layout's, which are harmless */
	const struct qa_diff_tensor *t = find(r, "blk.1.ffn_gate.weight");
	ck_assert_int_eq(t->verdict, QA_VERDICT_LAYOUT_SWAP);
	ck_assert_int_eq(t->layout, QA_LAYOUT_IN_OUT);
	ck_assert_int_eq(find(r, "blk.1.attn_q.weight")->verdict, QA_VERDICT_SHAPE_MISMATCH);
	ck_assert_int_eq(find(r, "blk.1.ffn_up.weight")->verdict, QA_VERDICT_DIVERGENT);
	ck_assert_uint_eq(r->counts[QA_VERDICT_MISSING], 1);
	ck_assert_uint_eq(r->counts[QA_VERDICT_EXTRA], 1);
	ck_assert(!r->pass);
	qa_diff_free(r);
}
END_TEST

/* core: shape-swap on the micro model follows the row-split prediction exactly. */
START_TEST(shape_swap_prediction)
{
	struct qa_swap_result *r;
	struct qa_swap_opts so = { .n_threads = (unsigned)_i + 1 };
	const char *culprit;
	ck_assert_int_eq(qa_swap_run(tu_path(REF), QA_TYPE_Q4_K, &so, &r, &culprit, NULL), QA_OK);
	ck_assert_uint_eq(r->n, 2 * 7 + 2); /* 7 weights per layer, embeddings, output */
	ck_assert_uint_eq(r->n_mispredicted, 0);
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_swap_tensor *t = &r->tensors[i];
		ck_assert_uint_eq(t->blocks[0], t->out * ((t->in + 255) / 256));
		ck_assert_uint_eq(t->blocks[1], t->in * ((t->out + 255) / 256));
		ck_assert_int_eq(t->identical, t->predicted_identical);
		ck_assert_int_eq(t->identical, t->first_divergent == QA_NO_BLOCK);
	}
	/* attn_k/v: 64 rows of 256 -> 256 rows of 64 padded to 256: 4x the bytes */
	ck_assert_uint_eq(r->n_divergent, 4);
	ck_assert_int_eq(r->excess_bytes, 4 * (256 - 64) * 144);
	qa_swap_free(r);
}
END_TEST

/* limits: the mechanism on a hand-made reference of the Qwen2-0.5B ffn_down shape. */
START_TEST(shape_swap_ffn_down_excess)
{
	const char *dir = tu_tmpdir();
	char path[256];
	size_t n = 896 * 4864;
	float *w = malloc(n * sizeof *w);
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		w[i] = (float)(int32_t)x / 2147483648.0f * 0.05f;
	}
	struct tu_st_tensor t = { "model.layers.0.mlp.down_proj.weight", "F32", 2, { 896, 4864 }, w, n * 4 };
	snprintf(path, sizeof path, "%s/ffn.safetensors", dir);
	ck_assert_int_eq(tu_write_st(path, &t, 1), 0);
	free(w);
	struct qa_swap_result *r;
	const char *culprit;
	ck_assert_int_eq(qa_swap_run(path, QA_TYPE_Q4_K, NULL, &r, &culprit, NULL), QA_OK);
	ck_assert_uint_eq(r->n, 1);
	ck_assert_uint_eq(r->tensors[0].in, 4864);
	ck_assert_uint_eq(r->tensors[0].out, 896);
	ck_assert_uint_eq(r->tensors[0].bytes[1] - r->tensors[0].bytes[0], 350208);
	ck_assert(!r->tensors[0].identical);
	ck_assert(!r->tensors[0].predicted_identical);
	/* row 0 of out,in holds elements 0..4863; in,out row 0 holds 0..895 then zeros:
	 * the first 256-element block (elements 0..255) is the same, the 4th is not */
	ck_assert_uint_eq(r->tensors[0].first_divergent, 3);
	qa_swap_free(r);
}
END_TEST

/* malformed: a bad artifact names the artifact; a NaN in the reference is refused. */
START_TEST(error_paths)
{
	const char *dir = tu_tmpdir();
	char bad[256];
	snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
	FILE *f = fopen(bad, "wb");
	fputs("GGUF\x03\0\0\0 truncated", f);
	fclose(f);
	struct qa_diff_result *r = NULL;
	const char *culprit = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_diff_run(tu_path(REF), bad, NULL, &r, &culprit, &d), QA_ERR_FORMAT);
	ck_assert_str_eq(culprit, bad);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(qa_diff_run(bad, tu_path(CORRUPT), NULL, &r, &culprit, &d), QA_ERR_FORMAT);
	ck_assert_str_eq(culprit, bad);

	float w[256];
	for (int i = 0; i < 256; i++)
		w[i] = 0.01f * (float)i;
	uint32_t nan = 0x7fc00000u;
	memcpy(&w[77], &nan, 4);
	struct tu_st_tensor t = { "model.layers.0.mlp.up_proj.weight", "F32", 2, { 1, 256 }, w, sizeof w };
	char ref[256];
	snprintf(ref, sizeof ref, "%s/nan.safetensors", dir);
	ck_assert_int_eq(tu_write_st(ref, &t, 1), 0);
	struct qa_swap_result *s = NULL;
	ck_assert_int_eq(qa_swap_run(ref, QA_TYPE_Q4_K, NULL, &s, &culprit, &d), QA_ERR_VALUE);
	ck_assert_ptr_nonnull(strstr(d.msg, "element 77"));
	ck_assert_int_eq(qa_swap_run(ref, QA_TYPE_Q8_K, NULL, &s, &culprit, &d), QA_ERR_USAGE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("compare");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 120);
	tcase_add_test(core, corrupt_block);
	tcase_add_test(core, stream_agrees_with_whole);
	tcase_add_test(core, transposed_export);
	tcase_add_test(core, layout_swap);
	tcase_add_loop_test(core, shape_swap_prediction, 0, 2);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_set_timeout(limits, 120);
	tcase_add_test(limits, other_verdicts);
	tcase_add_test(limits, shape_swap_ffn_down_excess);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, error_paths);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
