#define _POSIX_C_SOURCE 200809L
/*
 * check_quantize.c - the whole-model engine against ggml's artifacts in
 * fixtures/: recipes, --pure, layouts, threads, atomic output and refusals.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fp16.h"
#include "gguf.h"
#include "imatrix.h"
#include "layout.h"
#include "quant.h"
#include "model.h"
#include "quantize.h"
#include "recipe.h"
#include "source.h"
#include "testutil.h"
#include "types.h"

#define REF "fixtures/models/micro-qwen2.safetensors"
#define CORRUPT "fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf"
#define TRANSPOSED "fixtures/models/micro-qwen2.pure-q4_K.transposed.gguf"

struct opened {
	struct qa_source *src;
	struct qa_gguf *g;
};

static struct opened open_gguf(const char *path)
{
	struct opened o;
	ck_assert_int_eq(qa_source_open_file(&o.src, path, NULL), QA_OK);
	ck_assert_int_eq(qa_gguf_open(&o.g, o.src, NULL), QA_OK);
	return o;
}

static void close_gguf(struct opened o)
{
	qa_gguf_close(o.g);
	qa_source_close(o.src);
}

/* Count tensors of a and b (same names, types, shapes) whose bytes differ;
 * report the name of the last differing one in diff_name. */
static int count_differing(const char *pa, const char *pb, char *diff_name, size_t cap)
{
	struct opened a = open_gguf(pa), b = open_gguf(pb);
	int n = 0;
	ck_assert_uint_eq(qa_gguf_n_tensors(a.g), qa_gguf_n_tensors(b.g));
	for (size_t i = 0; i < qa_gguf_n_tensors(a.g); i++) {
		const struct qa_gguf_tensor *x = qa_gguf_tensor_at(a.g, i);
		const struct qa_gguf_tensor *y = qa_gguf_tensor_find(b.g, x->name);
		ck_assert_msg(y != NULL, "%s missing", x->name);
		ck_assert_msg(x->type == y->type, "%s: type %s vs %s", x->name, qa_type_name(x->type),
		              qa_type_name(y->type));
		ck_assert(memcmp(x->ne, y->ne, sizeof x->ne) == 0);
		const void *p, *q;
		ck_assert_int_eq(qa_gguf_tensor_view(a.g, x, &p, NULL), QA_OK);
		ck_assert_int_eq(qa_gguf_tensor_view(b.g, y, &q, NULL), QA_OK);
		if (memcmp(p, q, (size_t)x->nbytes)) {
			n++;
			snprintf(diff_name, cap, "%s", x->name);
		}
	}
	close_gguf(a);
	close_gguf(b);
	return n;
}

static enum qa_err quantize_to(const char *ref_path, const char *recipe, uint32_t pure,
                               enum qa_layout l, bool allow, unsigned threads, const char *out,
                               struct qa_diag *d)
{
	struct qa_ref *r;
	struct qa_quantize_opts o;
	memset(&o, 0, sizeof o);
	o.recipe = recipe ? qa_recipe_by_name(recipe) : NULL;
	o.pure_type = pure;
	o.layout = l;
	o.allow_invalid = allow;
	o.n_threads = threads;
	enum qa_err e = qa_ref_open(&r, ref_path, d);
	if (e)
		return e;
	e = qa_quantize_model(r, &o, out, d);
	qa_ref_close(r);
	return e;
}

/* core: Q4_K_M reproduces ggml's artifact: only the planted corrupt tensor differs. */
START_TEST(recipe_matches_oracle)
{
	char out[256], name[128] = "";
	snprintf(out, sizeof out, "%s/q4km.gguf", tu_tmpdir());
	ck_assert_int_eq(quantize_to(tu_path(REF), "Q4_K_M", 0, QA_LAYOUT_OUT_IN, false, 0, out, NULL), QA_OK);
	ck_assert_int_eq(count_differing(out, tu_path(CORRUPT), name, sizeof name), 1);
	ck_assert_str_eq(name, "blk.1.ffn_up.weight");
	struct opened o = open_gguf(out);
	uint64_t ft = 0, qv = 0;
	ck_assert(qa_gguf_get_u64(o.g, "general.file_type", &ft));
	ck_assert(qa_gguf_get_u64(o.g, "general.quantization_version", &qv));
	ck_assert_uint_eq(ft, 15);
	ck_assert_uint_eq(qv, 2);
	ck_assert_str_eq(qa_gguf_get_str(o.g, "general.architecture"), "qwen2");
	close_gguf(o);
}
END_TEST

/* core: --type q4_K (pure) matches ggml's artifact except its two transposed tensors,
 * and the transposed layout reproduces exactly those. */
START_TEST(pure_and_transposed)
{
	const char *dir = tu_tmpdir();
	char out[256], name[128];
	snprintf(out, sizeof out, "%s/pure.gguf", dir);
	ck_assert_int_eq(quantize_to(tu_path(REF), NULL, QA_TYPE_Q4_K, QA_LAYOUT_OUT_IN, false, 2, out, NULL), QA_OK);
	ck_assert_int_eq(count_differing(out, tu_path(TRANSPOSED), name, sizeof name), 2);
	snprintf(out, sizeof out, "%s/tr.gguf", dir);
	/* micro dims are 256/512 multiples except k/v (64 rows): transposed changes their size */
	ck_assert_int_eq(quantize_to(tu_path(REF), NULL, QA_TYPE_Q4_K, QA_LAYOUT_TRANSPOSED, false, 2, out, NULL),
	                 QA_ERR_USAGE);
	struct stat st;
	ck_assert_int_ne(stat(out, &st), 0); /* nothing written */
}
END_TEST

/* core: the output does not depend on the thread count. */
START_TEST(threads_do_not_matter)
{
	const char *dir = tu_tmpdir();
	char a[256], b[256];
	snprintf(a, sizeof a, "%s/a.gguf", dir);
	snprintf(b, sizeof b, "%s/b.gguf", dir);
	ck_assert_int_eq(quantize_to(tu_path(REF), "Q5_K_M", 0, QA_LAYOUT_OUT_IN, false, 1, a, NULL), QA_OK);
	ck_assert_int_eq(quantize_to(tu_path(REF), "Q5_K_M", 0, QA_LAYOUT_OUT_IN, false, 2, b, NULL), QA_OK);
	size_t la, lb;
	void *x = tu_slurp(a, &la), *y = tu_slurp(b, &lb);
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_eq(x, y, la);
	free(x);
	free(y);
}
END_TEST

/* limits: sizes under each layout (the AUDIT-Q4K-SHAPE-001 numbers). */
static const struct {
	uint32_t type;
	uint64_t in, out;
	enum qa_layout l;
	uint64_t bytes;
} sizes[] = {
	{ QA_TYPE_Q4_K, 4864, 896, QA_LAYOUT_OUT_IN, 2451456 },
	{ QA_TYPE_Q4_K, 4864, 896, QA_LAYOUT_IN_OUT, 2451456 + 350208 },
	{ QA_TYPE_Q4_K, 1536, 8960, QA_LAYOUT_IN_OUT, 1536ull * 35 * 144 },
	{ QA_TYPE_Q8_0, 64, 3, QA_LAYOUT_IN_OUT, 64ull * 1 * 34 },
	{ QA_TYPE_F16, 7, 3, QA_LAYOUT_TRANSPOSED, 7ull * 3 * 2 },
};

START_TEST(layout_sizes)
{
	uint64_t n;
	ck_assert(qa_quantize_nbytes(sizes[_i].type, sizes[_i].in, sizes[_i].out, sizes[_i].l, &n));
	ck_assert_uint_eq(n, sizes[_i].bytes);
}
END_TEST

/* limits: --allow-invalid records the shape actually used. */
START_TEST(allow_invalid_records_shape)
{
	char out[256];
	snprintf(out, sizeof out, "%s/swap.gguf", tu_tmpdir());
	ck_assert_int_eq(quantize_to(tu_path(REF), NULL, QA_TYPE_Q4_K, QA_LAYOUT_IN_OUT, true, 0, out, NULL), QA_OK);
	struct opened o = open_gguf(out);
	const struct qa_gguf_tensor *k = qa_gguf_tensor_find(o.g, "blk.0.attn_k.weight");
	const struct qa_gguf_tensor *q = qa_gguf_tensor_find(o.g, "blk.0.attn_q.weight");
	ck_assert_ptr_nonnull(k);
	ck_assert_uint_eq(k->ne[0], 256); /* rows of out=64, padded to 256 */
	ck_assert_uint_eq(k->ne[1], 256); /* in=256 rows */
	ck_assert_uint_eq(q->ne[0], 256); /* square: unchanged */
	close_gguf(o);
}
END_TEST

/* A tiny reference with one 2-D tensor whose element `bad` holds `bits`. */
static const char *write_ref(const char *dir, const char *dtype, size_t bad, uint32_t bits)
{
	static char path[256];
	static float w[4 * 256];
	for (int i = 0; i < 4 * 256; i++)
		w[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
	memcpy(&w[bad], &bits, 4);
	struct tu_st_tensor t = { "model.layers.0.mlp.up_proj.weight", dtype, 2, { 4, 256 }, w, sizeof w };
	snprintf(path, sizeof path, "%s/ref.safetensors", dir);
	ck_assert_int_eq(tu_write_st(path, &t, 1), 0);
	return path;
}

/* malformed: non-finite weights are refused, naming the tensor and the element. */
static const struct {
	size_t index;
	uint32_t bits;
	const char *what;
} nonfinite[] = { { 0, 0x7fc00000u, "nan" }, { 700, 0x7f800000u, "+inf" }, { 1023, 0xff800000u, "-inf" } };

START_TEST(refuses_nonfinite)
{
	const char *dir = tu_tmpdir();
	const char *ref = write_ref(dir, "F32", nonfinite[_i].index, nonfinite[_i].bits);
	char out[256], want[64];
	struct qa_diag d;
	snprintf(out, sizeof out, "%s/out.gguf", dir);
	ck_assert_int_eq(quantize_to(ref, "Q4_K_M", 0, QA_LAYOUT_OUT_IN, false, 0, out, &d), QA_ERR_VALUE);
	ck_assert_ptr_nonnull(strstr(d.msg, "model.layers.0.mlp.up_proj.weight (blk.0.ffn_up.weight)"));
	snprintf(want, sizeof want, "element %zu is %s", nonfinite[_i].index, nonfinite[_i].what);
	ck_assert_msg(strstr(d.msg, want) != NULL, "%s", d.msg);
	struct stat st;
	ck_assert_int_ne(stat(out, &st), 0);
	/* and no temporary file is left beside it */
	char cmd[300];
	snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* malformed: a dtype that is not a float cannot be quantized; an unwritable output is an I/O error. */
START_TEST(refuses_int_dtype_and_bad_output)
{
	const char *dir = tu_tmpdir();
	uint8_t q[4 * 256];
	memset(q, 1, sizeof q);
	char ref[256];
	snprintf(ref, sizeof ref, "%s/int.safetensors", dir);
	struct tu_st_tensor t = { "model.layers.0.mlp.up_proj.weight", "I8", 2, { 4, 256 }, q, sizeof q };
	ck_assert_int_eq(tu_write_st(ref, &t, 1), 0);
	struct qa_diag d;
	char out[300];
	snprintf(out, sizeof out, "%s/out.gguf", dir);
	ck_assert_int_eq(quantize_to(ref, NULL, QA_TYPE_Q8_0, QA_LAYOUT_OUT_IN, false, 0, out, &d), QA_ERR_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(d.msg, "I8"));
	const char *good = write_ref(dir, "F32", 0, 0);
	snprintf(out, sizeof out, "%s/no/such/dir/out.gguf", dir);
	ck_assert_int_eq(quantize_to(good, NULL, QA_TYPE_Q8_0, QA_LAYOUT_OUT_IN, false, 0, out, &d), QA_ERR_IO);
}
END_TEST

/* Deterministic test values and weights. */
static void fill(float *x, size_t n, uint32_t seed, float scale)
{
	uint32_t st = seed;
	for (size_t i = 0; i < n; i++) {
		st = st * 1664525u + 1013904223u;
		x[i] = scale * ((float)(st >> 8) / 16777216.0f - 0.5f);
	}
}

/*
 * core: the weighted engine cuts what it quantizes exactly as stated: out,in
 * is the type's quantize_rows over the tensor's rows (any thread count),
 * experts split the rows evenly and take their own weights, transposed is
 * the transposed stream cut into rows of the declared ne[0], and no weights
 * is the plain engine.  (quantize_rows itself is pinned to ggml in
 * check_quant.c.)
 */
START_TEST(weighted_engine)
{
	const uint64_t in = 512, out = 256;
	float *w = malloc(in * out * sizeof *w), *qw = malloc(2 * in * sizeof *qw);
	float *t = malloc(in * out * sizeof *t);
	fill(w, in * out, 7, 2.0f);
	fill(qw, 2 * in, 9, 1.0f);
	for (uint64_t i = 0; i < 2 * in; i++)
		qw[i] = qw[i] + 0.75f; /* positive importance */
	static const uint32_t types[] = { QA_TYPE_Q4_K, QA_TYPE_Q4_0, QA_TYPE_Q6_K, QA_TYPE_IQ4_NL };
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		const struct qa_quant_ops *ops = qa_quant_ops(types[k]);
		uint64_t nb;
		ck_assert(qa_quantize_nbytes(types[k], in, out, QA_LAYOUT_OUT_IN, &nb));
		uint8_t *want = malloc(nb), *got = malloc(nb);
		struct qa_quantize_weights wt = { qw, in, 1 };
		ops->quantize_rows(w, want, out, in, qw);
		for (unsigned th = 1; th <= 3; th += 2) {
			memset(got, 0xa5, nb);
			ck_assert_int_eq(qa_quantize_tensor_weighted(w, in, out, types[k], QA_LAYOUT_OUT_IN, &wt, th,
			                                             got, NULL), QA_OK);
			ck_assert_mem_eq(got, want, nb);
		}
		/* two experts of 128 rows, each with its own weights */
		struct qa_quantize_weights we = { qw, in, 2 };
		size_t half = (size_t)nb / 2;
		ops->quantize_rows(w, want, out / 2, in, qw);
		ops->quantize_rows(w + in * out / 2, want + half, out / 2, in, qw + in);
		ck_assert_int_eq(qa_quantize_tensor_weighted(w, in, out, types[k], QA_LAYOUT_OUT_IN, &we, 2, got,
		                                             NULL), QA_OK);
		ck_assert_mem_eq(got, want, nb);
		/* transposed: W^T laid out flat, cut into rows of in */
		for (uint64_t r = 0; r < out; r++)
			for (uint64_t c = 0; c < in; c++)
				t[c * out + r] = w[r * in + c];
		ops->quantize_rows(t, want, out, in, qw);
		ck_assert_int_eq(qa_quantize_tensor_weighted(w, in, out, types[k], QA_LAYOUT_TRANSPOSED, &wt, 2,
		                                             got, NULL), QA_OK);
		ck_assert_mem_eq(got, want, nb);
		/* no weights: the plain engine */
		ck_assert_int_eq(qa_quantize_tensor(w, in, out, types[k], QA_LAYOUT_OUT_IN, 1, want, NULL), QA_OK);
		struct qa_quantize_weights none = { NULL, in, 1 };
		ck_assert_int_eq(qa_quantize_tensor_weighted(w, in, out, types[k], QA_LAYOUT_OUT_IN, &none, 2,
		                                             got, NULL), QA_OK);
		ck_assert_mem_eq(got, want, nb);
		ck_assert_int_eq(qa_quantize_tensor_weighted(w, in, out, types[k], QA_LAYOUT_OUT_IN, NULL, 2,
		                                             got, NULL), QA_OK);
		ck_assert_mem_eq(got, want, nb);
		free(want);
		free(got);
	}
	/* q8_0 ignores weights */
	uint64_t nb;
	ck_assert(qa_quantize_nbytes(QA_TYPE_Q8_0, in, out, QA_LAYOUT_OUT_IN, &nb));
	uint8_t *a = malloc(nb), *b = malloc(nb);
	struct qa_quantize_weights wt = { qw, in, 1 };
	ck_assert_int_eq(qa_quantize_tensor(w, in, out, QA_TYPE_Q8_0, QA_LAYOUT_OUT_IN, 1, a, NULL), QA_OK);
	ck_assert_int_eq(qa_quantize_tensor_weighted(w, in, out, QA_TYPE_Q8_0, QA_LAYOUT_OUT_IN, &wt, 1, b,
	                                             NULL), QA_OK);
	ck_assert_mem_eq(a, b, nb);
	free(a);
	free(b);
	free(w);
	free(qw);
	free(t);
}
END_TEST

/* limits: weights that cannot follow the layout are refused, not misapplied */
START_TEST(weighted_engine_refuses)
{
	float w[256 * 96], qw[256];
	uint8_t dst[256 * 96 * 2];
	struct qa_diag d;
	fill(w, 256 * 96, 3, 1.0f);
	fill(qw, 256, 4, 1.0f);
	struct qa_quantize_weights wt = { qw, 256, 1 };
	/* in,out pads rows of 96 to 256 */
	ck_assert_int_eq(qa_quantize_tensor_weighted(w, 256, 96, QA_TYPE_Q4_K, QA_LAYOUT_IN_OUT, &wt, 1, dst, &d),
	                 QA_ERR_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(d.msg, "do not fit"));
	/* a row length that is not a whole number of blocks */
	struct qa_quantize_weights odd = { qw, 96, 1 };
	ck_assert_int_eq(qa_quantize_tensor_weighted(w, 256, 96, QA_TYPE_Q4_K, QA_LAYOUT_OUT_IN, &odd, 1, dst, &d),
	                 QA_ERR_UNSUPPORTED);
	/* experts that do not divide the rows */
	struct qa_quantize_weights ex = { qw, 256, 5 };
	ck_assert_int_eq(qa_quantize_tensor_weighted(w, 256, 96, QA_TYPE_Q4_K, QA_LAYOUT_OUT_IN, &ex, 1, dst, &d),
	                 QA_ERR_UNSUPPORTED);
}
END_TEST

/* core: quantize --imatrix records llama-quantize's keys, in its order, and cuts the file name at 127 bytes */
START_TEST(imatrix_keys)
{
	char dir[] = "/tmp/qa_imkeys_XXXXXX", out[256], longname[300];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(out, sizeof out, "%s/o.gguf", dir);
	struct qa_imatrix *m;
	struct qa_ref *r;
	struct qa_diag d;
	ck_assert_int_eq(qa_imatrix_load(&m, tu_path("fixtures/imatrix/real-qwen2.imatrix.dat"), &d), QA_OK);
	ck_assert_int_eq(qa_ref_open(&r, tu_path("fixtures/imatrix/mini.safetensors"), &d), QA_OK);
	memset(longname, 'x', 200);
	longname[200] = '\0';
	struct qa_quantize_opts o;
	memset(&o, 0, sizeof o);
	o.pure_type = QA_TYPE_Q4_K;
	o.imatrix = m;
	o.imatrix_file = longname;
	size_t unmatched;
	const char *first;
	ck_assert_int_eq(qa_quantize_check_imatrix(r, &o, &unmatched, &first, &d), QA_OK);
	ck_assert_uint_eq(unmatched, 11); /* the 2-layer model has 15 weights with entries; mini has 4 */
	ck_assert_str_eq(first, "blk.0.attn_output.weight");
	ck_assert_int_eq(qa_quantize_model(r, &o, out, &d), QA_OK);
	struct opened g = open_gguf(out);
	size_t n = qa_gguf_n_kv(g.g);
	ck_assert_uint_ge(n, 4);
	static const char *const keys[] = { "quantize.imatrix.file", "quantize.imatrix.dataset",
		                            "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count" };
	for (size_t i = 0; i < 4; i++)
		ck_assert_str_eq(qa_gguf_kv_at(g.g, n - 4 + i)->key, keys[i]);
	ck_assert_uint_eq(strlen(qa_gguf_get_str(g.g, "quantize.imatrix.file")), 127);
	ck_assert_str_eq(qa_gguf_get_str(g.g, "quantize.imatrix.dataset"), "synthetic-seed-4");
	ck_assert_uint_eq(qa_gguf_kv_at(g.g, n - 2)->value.type, QA_GGUF_U32);
	ck_assert_uint_eq(qa_gguf_kv_at(g.g, n - 2)->value.v.u, 15);
	ck_assert_uint_eq(qa_gguf_kv_at(g.g, n - 1)->value.v.u, 100);
	close_gguf(g);
	remove(out);
	qa_imatrix_free(m);

	/* a matrix without a chunk count or dataset writes neither key */
	ck_assert_int_eq(qa_imatrix_load(&m, tu_path("tests/data/imatrix/good-no-trailer.dat"), &d), QA_OK);
	o.imatrix = m;
	o.imatrix_file = "good-no-trailer.dat";
	ck_assert_int_eq(qa_quantize_model(r, &o, out, &d), QA_OK);
	g = open_gguf(out);
	ck_assert_str_eq(qa_gguf_get_str(g.g, "quantize.imatrix.file"), "good-no-trailer.dat");
	ck_assert_ptr_null(qa_gguf_kv_find(g.g, "quantize.imatrix.dataset"));
	ck_assert_ptr_null(qa_gguf_kv_find(g.g, "quantize.imatrix.chunks_count"));
	ck_assert_ptr_nonnull(qa_gguf_kv_find(g.g, "quantize.imatrix.entries_count"));
	close_gguf(g);
	remove(out);
	qa_imatrix_free(m);

	/* an entry of the wrong length stops the run before any output */
	ck_assert_int_eq(qa_imatrix_load(&m, tu_path("tests/data/imatrix/bad-length.gguf"), &d), QA_OK);
	o.imatrix = m;
	ck_assert_int_eq(qa_quantize_check_imatrix(r, &o, &unmatched, NULL, &d), QA_ERR_VALUE);
	ck_assert_int_eq(qa_quantize_model(r, &o, out, &d), QA_ERR_VALUE);
	struct stat st;
	ck_assert_int_ne(stat(out, &st), 0);
	qa_imatrix_free(m);
	qa_ref_close(r);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("quantize");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 120);
	tcase_add_test(core, recipe_matches_oracle);
	tcase_add_test(core, pure_and_transposed);
	tcase_add_test(core, threads_do_not_matter);
	tcase_add_test(core, weighted_engine);
	tcase_add_test(core, imatrix_keys);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(limits, layout_sizes, 0, (int)(sizeof sizes / sizeof sizes[0]));
	tcase_add_test(limits, allow_invalid_records_shape);
	tcase_add_test(limits, weighted_engine_refuses);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, refuses_nonfinite, 0, (int)(sizeof nonfinite / sizeof nonfinite[0]));
	tcase_add_test(bad, refuses_int_dtype_and_bad_output);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
