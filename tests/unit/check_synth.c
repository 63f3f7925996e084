/*
 * check_synth.c - unit tests for the synthetic checkpoint writer.
 *
 * core: written files are read back with the safetensors reader and the
 * config loader, and compared with the tensor names and shapes listed here
 * independently from the Hugging Face layouts (qwen2 with biases, llama and
 * mistral without; tied and untied; bf16, f16 and f32); the same options
 * give the same bytes for any thread count, a different seed different
 * bytes, and the bf16 file holds exactly the rounded values of the f32 one.
 * limits: the statistics of the values (norm weights near 1, weight and
 * bias spreads, per-row scales that vary, heavy tails present, everything
 * finite) and the size check at real model shapes.
 * malformed: bad option combinations are QA_ERR_USAGE and write nothing;
 * unwritable outputs are QA_ERR_IO and leave no temporary file.
 * Everything is written below a fresh mkdtemp directory.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fp16.h"
#include "safetensors.h"
#include "synth.h"
#include "types.h"

/* ------------------------------------------------------------ helpers */

static char tmpdir[256];

static void make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/check_synth.XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Remove dir and everything in it (one level of subdirectories). */
static void remove_tree(const char *dir)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return;
	struct dirent *e;
	char p[512];
	while ((e = readdir(dh))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (unlink(p) != 0)
			remove_tree(p);
	}
	closedir(dh);
	rmdir(dir);
}

static void setup(void)
{
	make_tmpdir();
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

/* Entries of dir (not "." or ".."), only those containing `containing` when not NULL. */
static int count_entries(const char *dir, const char *containing)
{
	DIR *dh = opendir(dir);
	ck_assert_ptr_nonnull(dh);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dh)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    (!containing || strstr(e->d_name, containing)))
			n++;
	closedir(dh);
	return n;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	unsigned char *p = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static struct qa_synth_opts small_opts(void)
{
	struct qa_synth_opts o = {
		.arch = "qwen2", .hidden = 64, .intermediate = 160, .vocab = 96,
		.heads = 4, .kv_heads = 2, .layers = 2, .head_dim = 0, .tied = false,
		.dtype = QA_TYPE_BF16, .seed = 7, .threads = 0,
	};
	return o;
}

static void write_ok(const struct qa_synth_opts *o, const char *path)
{
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_synth_write(o, path, &d);
	ck_assert_msg(e == QA_OK, "synth %s: %s", path, d.msg);
}

static struct qa_st *open_ok(const char *path)
{
	struct qa_st *st = NULL;
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_st_open(&st, path, &d);
	ck_assert_msg(e == QA_OK, "open %s: %s", path, d.msg);
	return st;
}

/* All values of t as f32 (malloc'd). */
static float *read_all(struct qa_st *st, const struct qa_st_tensor *t)
{
	float *v = malloc(t->n_elems * sizeof *v);
	ck_assert_ptr_nonnull(v);
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_msg(qa_st_tensor_read_f32(st, t, 0, t->n_elems, v, &d) == QA_OK, "%s: %s", t->name, d.msg);
	return v;
}

static const float *tensor_values(struct qa_st *st, const char *name, uint64_t *n, float **owned)
{
	const struct qa_st_tensor *t = qa_st_tensor_find(st, name);
	ck_assert_msg(t != NULL, "no tensor %s", name);
	*n = t->n_elems;
	*owned = read_all(st, t);
	return *owned;
}

/* ------------------------------------------------------------ core */

struct expect {
	char name[128];
	uint32_t n_dims;
	uint64_t shape[2];
};

/* The expected tensor list of o in file order, written from the HF layouts. */
static size_t expected_tensors(const struct qa_synth_opts *o, struct expect *x)
{
	uint64_t H = o->hidden, D = o->head_dim ? o->head_dim : o->hidden / o->heads;
	uint64_t q = o->heads * D, kv = o->kv_heads * D, I = o->intermediate, V = o->vocab;
	/* Qwen2: q/k/v biases; Qwen3 and Gemma 3: per-head q/k RMS norms; Gemma 2/3:
	 * norms before and after attention and MLP, always tied; Phi-3: qkv_proj and
	 * gate_up_proj (modeling_qwen2/qwen3/gemma2/gemma3/phi3.py). */
	bool bias = strcmp(o->arch, "qwen2") == 0;
	bool qk_norm = strcmp(o->arch, "qwen3") == 0 || strcmp(o->arch, "gemma3") == 0;
	bool gemma = strncmp(o->arch, "gemma", 5) == 0, phi3 = strcmp(o->arch, "phi3") == 0;
	size_t n = 0;
#define X2(nm, a, b) do { snprintf(x[n].name, sizeof x[n].name, "%s", nm); x[n].n_dims = 2; \
	x[n].shape[0] = (a); x[n].shape[1] = (b); n++; } while (0)
#define X1(nm, a) do { snprintf(x[n].name, sizeof x[n].name, "%s", nm); x[n].n_dims = 1; \
	x[n].shape[0] = (a); x[n].shape[1] = 0; n++; } while (0)
	X2("model.embed_tokens.weight", V, H);
	for (uint32_t l = 0; l < o->layers; l++) {
		char b[128];
#define L(s) (snprintf(b, sizeof b, "model.layers.%" PRIu32 ".%s", l, s), b)
		X1(L("input_layernorm.weight"), H);
		if (phi3) {
			X2(L("self_attn.qkv_proj.weight"), q + 2 * kv, H);
		} else {
			X2(L("self_attn.q_proj.weight"), q, H);
			if (bias)
				X1(L("self_attn.q_proj.bias"), q);
			X2(L("self_attn.k_proj.weight"), kv, H);
			if (bias)
				X1(L("self_attn.k_proj.bias"), kv);
			X2(L("self_attn.v_proj.weight"), kv, H);
			if (bias)
				X1(L("self_attn.v_proj.bias"), kv);
		}
		if (qk_norm) {
			X1(L("self_attn.q_norm.weight"), D);
			X1(L("self_attn.k_norm.weight"), D);
		}
		X2(L("self_attn.o_proj.weight"), H, q);
		X1(L("post_attention_layernorm.weight"), H);
		if (gemma) {
			X1(L("pre_feedforward_layernorm.weight"), H);
			X1(L("post_feedforward_layernorm.weight"), H);
		}
		if (phi3) {
			X2(L("mlp.gate_up_proj.weight"), 2 * I, H);
		} else {
			X2(L("mlp.gate_proj.weight"), I, H);
			X2(L("mlp.up_proj.weight"), I, H);
		}
		X2(L("mlp.down_proj.weight"), H, I);
#undef L
	}
	X1("model.norm.weight", H);
	if (!o->tied && !gemma)
		X2("lm_head.weight", V, H);
#undef X1
#undef X2
	return n;
}

static const struct {
	const char *arch;
	bool tied;
	uint32_t dtype;
	uint32_t head_dim;
	const char *st_dtype, *torch_dtype, *hf;
	double rope_theta;
} layouts[] = {
	{ "qwen2", false, QA_TYPE_BF16, 0, "BF16", "bfloat16", "Qwen2ForCausalLM", 1000000.0 },
	{ "qwen2", true, QA_TYPE_F16, 0, "F16", "float16", "Qwen2ForCausalLM", 1000000.0 },
	{ "llama", false, QA_TYPE_F32, 0, "F32", "float32", "LlamaForCausalLM", 10000.0 },
	{ "llama", true, QA_TYPE_BF16, 0, "BF16", "bfloat16", "LlamaForCausalLM", 10000.0 },
	{ "mistral", false, QA_TYPE_BF16, 32, "BF16", "bfloat16", "MistralForCausalLM", 10000.0 },
	{ "qwen3", false, QA_TYPE_BF16, 32, "BF16", "bfloat16", "Qwen3ForCausalLM", 1000000.0 },
	{ "gemma2", false, QA_TYPE_BF16, 0, "BF16", "bfloat16", "Gemma2ForCausalLM", 10000.0 },
	{ "gemma3", true, QA_TYPE_F32, 32, "F32", "float32", "Gemma3ForCausalLM", 1000000.0 },
	{ "phi3", false, QA_TYPE_BF16, 0, "BF16", "bfloat16", "Phi3ForCausalLM", 10000.0 },
	{ "phi3", false, QA_TYPE_F16, 0, "F16", "float16", "Phi3ForCausalLM", 10000.0 },
};

START_TEST(test_layout)
{
	struct qa_synth_opts o = small_opts();
	o.arch = layouts[_i].arch;
	o.tied = layouts[_i].tied;
	o.dtype = layouts[_i].dtype;
	o.head_dim = layouts[_i].head_dim;
	o.seed = 12345678901234567890u;
	const char *path = tpath("model.safetensors");
	write_ok(&o, path);

	uint64_t n_check = 0, bytes_check = 0;
	ck_assert_int_eq(qa_synth_check(&o, &n_check, &bytes_check, NULL), QA_OK);
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq((uint64_t)sb.st_size, bytes_check);

	struct expect x[64];
	size_t n = expected_tensors(&o, x);
	ck_assert_uint_eq(n_check, n);
	struct qa_st *st = open_ok(path);
	ck_assert_uint_eq(qa_st_n_tensors(st), n);
	ck_assert_uint_eq(qa_st_header_len(st, 0) % 8, 0);
	uint64_t expect_off = 0;
	size_t es = o.dtype == QA_TYPE_F32 ? 4 : 2;
	for (size_t i = 0; i < n; i++) {
		const struct qa_st_tensor *t = qa_st_tensor_at(st, i); /* by data offset */
		ck_assert_str_eq(t->name, x[i].name);
		ck_assert_str_eq(t->dtype, layouts[_i].st_dtype);
		ck_assert_uint_eq(t->n_dims, x[i].n_dims);
		ck_assert_uint_eq(t->shape[0], x[i].shape[0]);
		if (x[i].n_dims == 2)
			ck_assert_uint_eq(t->shape[1], x[i].shape[1]);
		ck_assert_uint_eq(t->begin, expect_off); /* packed, in layout order */
		expect_off = t->end;
		ck_assert_uint_eq(t->end - t->begin, t->n_elems * es);
	}
	ck_assert_uint_eq(qa_st_header_len(st, 0) + expect_off, (uint64_t)sb.st_size);

	/* metadata */
	ck_assert_uint_eq(qa_st_n_metadata(st), 3);
	const char *k, *v;
	const char *want[3][2] = { { "format", "pt" }, { "generator", "quantaudit synth" },
	                           { "seed", "12345678901234567890" } };
	for (size_t i = 0; i < 3; i++) {
		ck_assert(qa_st_metadata_at(st, i, &k, &v));
		ck_assert_str_eq(k, want[i][0]);
		ck_assert_str_eq(v, want[i][1]);
	}

	/* config.json beside it */
	struct qa_model_config c;
	struct qa_diag d;
	bool found = false;
	qa_diag_clear(&d);
	ck_assert_msg(qa_config_load_beside(&c, st, &found, &d) == QA_OK, "%s", d.msg);
	ck_assert(found);
	ck_assert_str_eq(c.architecture, o.arch);
	ck_assert_str_eq(c.hf_architecture, layouts[_i].hf);
	ck_assert_uint_eq(c.hidden_size, o.hidden);
	ck_assert_uint_eq(c.intermediate_size, o.intermediate);
	ck_assert_uint_eq(c.n_layers, o.layers);
	ck_assert_uint_eq(c.n_heads, o.heads);
	ck_assert_uint_eq(c.n_kv_heads, o.kv_heads);
	ck_assert(c.has_head_dim);
	ck_assert_uint_eq(c.head_dim, o.head_dim ? o.head_dim : o.hidden / o.heads);
	ck_assert_uint_eq(c.vocab_size, o.vocab);
	ck_assert(c.has_tie_word_embeddings);
	ck_assert(c.tie_word_embeddings == (o.tied || strncmp(o.arch, "gemma", 5) == 0));
	ck_assert(c.rms_norm_eps == 1e-6);
	ck_assert(c.rope_theta == layouts[_i].rope_theta);
	ck_assert_uint_eq(c.max_position, 32768);
	qa_st_close(st);

	/* torch_dtype is not read by the config loader: look at the text */
	size_t len;
	char *text = (char *)slurp(tpath("config.json"), &len);
	text[len] = '\0';
	char needle[64];
	snprintf(needle, sizeof needle, "\"torch_dtype\": \"%s\"", layouts[_i].torch_dtype);
	ck_assert_msg(strstr(text, needle) != NULL, "%s not in config.json", needle);
	free(text);
	ck_assert_int_eq(count_entries(tmpdir, NULL), 2); /* no temporary files left */
}
END_TEST

START_TEST(test_seed)
{
	struct qa_synth_opts o = small_opts();
	write_ok(&o, tpath("a.safetensors"));
	write_ok(&o, tpath("b.safetensors"));
	o.seed = 8;
	write_ok(&o, tpath("c.safetensors"));
	size_t la, lb, lc;
	unsigned char *a = slurp(tpath("a.safetensors"), &la);
	unsigned char *b = slurp(tpath("b.safetensors"), &lb);
	unsigned char *c = slurp(tpath("c.safetensors"), &lc);
	ck_assert_uint_eq(la, lb);
	ck_assert(memcmp(a, b, la) == 0);
	ck_assert_uint_eq(la, lc); /* "7" and "8" have the same length */
	/* every tensor's data differs, not just the metadata */
	struct qa_st *sa = open_ok(tpath("a.safetensors"));
	for (size_t i = 0; i < qa_st_n_tensors(sa); i++) {
		const struct qa_st_tensor *t = qa_st_tensor_at(sa, i);
		ck_assert_msg(memcmp(a + t->data_offset, c + t->data_offset, t->end - t->begin) != 0,
		              "%s does not depend on the seed", t->name);
	}
	/* and tensors of the same shape differ from each other */
	const struct qa_st_tensor *g = qa_st_tensor_find(sa, "model.layers.0.mlp.gate_proj.weight");
	const struct qa_st_tensor *u = qa_st_tensor_find(sa, "model.layers.0.mlp.up_proj.weight");
	const struct qa_st_tensor *g1 = qa_st_tensor_find(sa, "model.layers.1.mlp.gate_proj.weight");
	ck_assert(memcmp(a + g->data_offset, a + u->data_offset, g->end - g->begin) != 0);
	ck_assert(memcmp(a + g->data_offset, a + g1->data_offset, g->end - g->begin) != 0);
	qa_st_close(sa);
	free(a);
	free(b);
	free(c);
}
END_TEST

/* More than one 32 MiB chunk and many pool items per chunk. */
START_TEST(test_threads)
{
	struct qa_synth_opts o = small_opts();
	o.hidden = 128;
	o.vocab = 140000; /* 35.8 MB of bf16 embeddings */
	o.tied = true;
	o.layers = 1;
	static const unsigned threads[] = { 1, 2, 3, 8 };
	char name[64];
	unsigned char *first = NULL;
	size_t first_len = 0;
	for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
		o.threads = threads[i];
		snprintf(name, sizeof name, "t%u.safetensors", threads[i]);
		write_ok(&o, tpath(name));
		size_t len;
		unsigned char *p = slurp(tpath(name), &len);
		if (!first) {
			first = p;
			first_len = len;
			continue;
		}
		ck_assert_uint_eq(len, first_len);
		ck_assert_msg(memcmp(p, first, len) == 0, "%u threads changed the bytes", threads[i]);
		free(p);
		unlink(tpath(name));
	}
	free(first);
}
END_TEST

/* The values do not depend on the dtype: bf16 and f16 are the f32 values rounded. */
START_TEST(test_dtype_rounding)
{
	struct qa_synth_opts o = small_opts();
	o.dtype = QA_TYPE_F32;
	write_ok(&o, tpath("f32.safetensors"));
	o.dtype = QA_TYPE_BF16;
	write_ok(&o, tpath("bf16.safetensors"));
	o.dtype = QA_TYPE_F16;
	write_ok(&o, tpath("f16.safetensors"));
	struct qa_st *s32 = open_ok(tpath("f32.safetensors"));
	struct qa_st *s16b = open_ok(tpath("bf16.safetensors"));
	struct qa_st *s16h = open_ok(tpath("f16.safetensors"));
	for (size_t i = 0; i < qa_st_n_tensors(s32); i++) {
		const struct qa_st_tensor *t = qa_st_tensor_at(s32, i);
		const struct qa_st_tensor *tb = qa_st_tensor_find(s16b, t->name);
		const struct qa_st_tensor *th = qa_st_tensor_find(s16h, t->name);
		ck_assert(tb && th);
		float *v = read_all(s32, t), *vb = read_all(s16b, tb), *vh = read_all(s16h, th);
		for (uint64_t j = 0; j < t->n_elems; j++) {
			ck_assert(qa_fp32_to_bf16(v[j]) == qa_fp32_to_bf16(vb[j]));
			ck_assert(vb[j] == qa_bf16_to_fp32(qa_fp32_to_bf16(v[j])));
			ck_assert(vh[j] == qa_fp16_to_fp32(qa_fp32_to_fp16(v[j])));
		}
		free(v);
		free(vb);
		free(vh);
	}
	qa_st_close(s32);
	qa_st_close(s16b);
	qa_st_close(s16h);
}
END_TEST

/* ------------------------------------------------------------ limits */

struct moments {
	double n, mean, sd, kurt, max_abs;
	bool finite;
};

static struct moments moments(const float *v, uint64_t n)
{
	struct moments m = { .n = (double)n, .finite = true };
	double s = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (!isfinite(v[i]))
			m.finite = false;
		s += v[i];
	}
	m.mean = s / (double)n;
	double s2 = 0, s4 = 0;
	for (uint64_t i = 0; i < n; i++) {
		double dv = v[i] - m.mean;
		s2 += dv * dv;
		s4 += dv * dv * dv * dv;
		if (fabs(v[i]) > m.max_abs)
			m.max_abs = fabs(v[i]);
	}
	m.sd = sqrt(s2 / (double)n);
	m.kurt = s2 > 0 ? (s4 / (double)n) / ((s2 / (double)n) * (s2 / (double)n)) : 0;
	return m;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

START_TEST(test_statistics)
{
	struct qa_synth_opts o = small_opts();
	o.hidden = 512;
	o.intermediate = 1024;
	o.heads = 8;
	o.kv_heads = 2;
	o.vocab = 1024;
	o.layers = 1;
	o.dtype = QA_TYPE_F32;
	o.seed = 2024;
	write_ok(&o, tpath("stats.safetensors"));
	struct qa_st *st = open_ok(tpath("stats.safetensors"));

	/* everything finite and of sane magnitude */
	for (size_t i = 0; i < qa_st_n_tensors(st); i++) {
		const struct qa_st_tensor *t = qa_st_tensor_at(st, i);
		float *v = read_all(st, t);
		struct moments m = moments(v, t->n_elems);
		ck_assert_msg(m.finite, "%s has non-finite values", t->name);
		ck_assert_msg(m.max_abs < 4.0, "%s: max |x| %g", t->name, m.max_abs);
		free(v);
	}

	uint64_t n;
	float *own;
	const float *v;
	/* norms: 1 + N(0, 0.05) */
	const char *norms[] = { "model.layers.0.input_layernorm.weight",
	                        "model.layers.0.post_attention_layernorm.weight", "model.norm.weight" };
	for (size_t i = 0; i < 3; i++) {
		v = tensor_values(st, norms[i], &n, &own);
		struct moments m = moments(v, n);
		ck_assert_msg(fabs(m.mean - 1.0) < 0.015, "%s mean %g", norms[i], m.mean);
		ck_assert_msg(m.sd > 0.035 && m.sd < 0.065, "%s sd %g", norms[i], m.sd);
		free(own);
	}
	/* biases: small, centred */
	v = tensor_values(st, "model.layers.0.self_attn.q_proj.bias", &n, &own);
	struct moments mb = moments(v, n);
	ck_assert_msg(fabs(mb.mean) < 0.005 && mb.sd > 0.015 && mb.sd < 0.025, "bias %g %g", mb.mean, mb.sd);
	free(own);

	/* matrices: overall std near 0.02, row scales that vary, heavy tails */
	const char *mats[] = { "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
	                       "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.down_proj.weight",
	                       "lm_head.weight" };
	for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
		const struct qa_st_tensor *t = qa_st_tensor_find(st, mats[i]);
		ck_assert_ptr_nonnull(t);
		uint64_t rows = t->shape[0], cols = t->shape[1];
		v = own = read_all(st, t);
		struct moments m = moments(v, t->n_elems);
		ck_assert_msg(fabs(m.mean) < 0.002, "%s mean %g", mats[i], m.mean);
		ck_assert_msg(m.sd > 0.015 && m.sd < 0.04, "%s sd %g", mats[i], m.sd);
		ck_assert_msg(m.kurt > 4.0, "%s kurtosis %g (not heavy-tailed)", mats[i], m.kurt);
		double *row_sd = malloc(rows * sizeof *row_sd);
		ck_assert_ptr_nonnull(row_sd);
		uint64_t far = 0;
		for (uint64_t r = 0; r < rows; r++) {
			struct moments mr = moments(v + r * cols, cols);
			row_sd[r] = mr.sd;
			for (uint64_t c = 0; c < cols; c++)
				if (fabs(v[r * cols + c] - mr.mean) > 6.0 * mr.sd)
					far++;
		}
		qsort(row_sd, rows, sizeof *row_sd, cmp_double);
		double lo = row_sd[rows / 20], hi = row_sd[rows - 1 - rows / 20];
		ck_assert_msg(hi / lo > 1.5, "%s row scales barely vary (%g .. %g)", mats[i], lo, hi);
		ck_assert_msg(row_sd[rows / 2] > 0.012 && row_sd[rows / 2] < 0.035, "%s median row sd %g",
		              mats[i], row_sd[rows / 2]);
		/* a normal has 2e-9 of its mass beyond 6 sd; about 0.1% are expected here */
		double frac = (double)far / (double)t->n_elems;
		ck_assert_msg(frac > 2e-4 && frac < 4e-3, "%s: %g beyond 6 row sd", mats[i], frac);
		free(row_sd);
		free(own);
	}
	qa_st_close(st);
}
END_TEST

/* Real shapes pass the check (nothing is written) with the sizes computed here. */
START_TEST(test_real_shapes)
{
	struct qa_synth_opts o = {
		.arch = "qwen2", .hidden = 3584, .intermediate = 18944, .vocab = 152064,
		.heads = 28, .kv_heads = 4, .layers = 28, .dtype = QA_TYPE_BF16,
	};
	uint64_t n = 0, bytes = 0;
	ck_assert_int_eq(qa_synth_check(&o, &n, &bytes, NULL), QA_OK);
	ck_assert_uint_eq(n, 1 + 28 * 12 + 1 + 1);
	uint64_t H = 3584, I = 18944, V = 152064, q = 3584, kv = 512;
	uint64_t per_layer = 2 * H + q * H + q + 2 * (kv * H + kv) + H * q + 3 * I * H;
	uint64_t data = 2 * (2 * V * H + 28 * per_layer + H); /* 15.2 GB, as the real model */
	ck_assert_uint_gt(bytes, data);
	ck_assert_uint_lt(bytes - data, 200000);
	ck_assert_uint_eq((bytes - data) % 8, 0);
	/* the largest accepted layer count, and one past it */
	o.layers = QA_SYNTH_MAX_LAYERS;
	ck_assert_int_eq(qa_synth_check(&o, NULL, NULL, NULL), QA_OK);
	o.layers = QA_SYNTH_MAX_LAYERS + 1;
	ck_assert_int_eq(qa_synth_check(&o, NULL, NULL, NULL), QA_ERR_USAGE);
	/* a one-element model */
	struct qa_synth_opts t = { .arch = "llama", .hidden = 1, .intermediate = 1, .vocab = 1,
	                           .heads = 1, .kv_heads = 1, .layers = 1, .dtype = QA_TYPE_F16 };
	write_ok(&t, tpath("tiny.safetensors"));
	struct qa_st *st = open_ok(tpath("tiny.safetensors"));
	ck_assert_uint_eq(qa_st_n_tensors(st), 12);
	qa_st_close(st);
}
END_TEST

/* ------------------------------------------------------------ malformed */

enum field { F_NONE, F_ARCH, F_DTYPE, F_HIDDEN, F_INTER, F_VOCAB, F_HEADS, F_KV, F_LAYERS,
             F_HEAD_DIM, F_THREADS, F_PATH };

static const struct {
	const char *what;
	enum field f1;
	uint64_t v1;
	enum field f2;
	uint64_t v2;
	const char *s; /* arch or path */
} bad[] = {
	{ "no arch", F_ARCH, 0, F_NONE, 0, NULL },
	{ "unknown arch", F_ARCH, 0, F_NONE, 0, "gpt2" },
	{ "empty arch", F_ARCH, 0, F_NONE, 0, "" },
	{ "arch by its GGUF name only", F_ARCH, 0, F_NONE, 0, "Llama" },
	{ "phi3 head_dim not hidden / heads", F_ARCH, 0, F_HEAD_DIM, 32, "phi3" },
	{ "quantized dtype", F_DTYPE, QA_TYPE_Q4_0, F_NONE, 0, NULL },
	{ "f64 dtype", F_DTYPE, QA_TYPE_F64, F_NONE, 0, NULL },
	{ "zero hidden", F_HIDDEN, 0, F_NONE, 0, NULL },
	{ "zero intermediate", F_INTER, 0, F_NONE, 0, NULL },
	{ "zero vocab", F_VOCAB, 0, F_NONE, 0, NULL },
	{ "zero heads", F_HEADS, 0, F_NONE, 0, NULL },
	{ "zero kv heads", F_KV, 0, F_NONE, 0, NULL },
	{ "zero layers", F_LAYERS, 0, F_NONE, 0, NULL },
	{ "heads do not divide hidden", F_HEADS, 6, F_KV, 2, NULL },
	{ "kv heads do not divide heads", F_KV, 3, F_NONE, 0, NULL },
	{ "more kv heads than heads", F_KV, 8, F_NONE, 0, NULL },
	{ "hidden too large", F_HIDDEN, (uint64_t)QA_SYNTH_MAX_DIM * 2, F_HEADS, 2, NULL },
	{ "hidden absurd", F_HIDDEN, UINT64_MAX, F_HEADS, 1, NULL },
	{ "vocab absurd", F_VOCAB, UINT64_C(1) << 40, F_NONE, 0, NULL },
	{ "intermediate too large", F_INTER, (uint64_t)QA_SYNTH_MAX_DIM + 1, F_NONE, 0, NULL },
	{ "layers too many", F_LAYERS, QA_SYNTH_MAX_LAYERS + 1, F_NONE, 0, NULL },
	{ "head_dim too large", F_HEAD_DIM, (uint64_t)QA_SYNTH_MAX_DIM + 1, F_NONE, 0, NULL },
	{ "q rows too large", F_HEAD_DIM, QA_SYNTH_MAX_DIM / 2, F_NONE, 0, NULL },
	{ "model too large", F_VOCAB, QA_SYNTH_MAX_DIM, F_HIDDEN, QA_SYNTH_MAX_DIM, NULL },
	{ "too many threads", F_THREADS, 5000, F_NONE, 0, NULL },
	{ "output is config.json", F_PATH, 0, F_NONE, 0, "config.json" },
	{ "output is a directory name", F_PATH, 0, F_NONE, 0, "sub/" },
};

static void set_field(struct qa_synth_opts *o, enum field f, uint64_t v, const char *s)
{
	switch (f) {
	case F_NONE: case F_PATH: break;
	case F_ARCH: o->arch = s; break;
	case F_DTYPE: o->dtype = (uint32_t)v; break;
	case F_HIDDEN: o->hidden = v; break;
	case F_INTER: o->intermediate = v; break;
	case F_VOCAB: o->vocab = v; break;
	case F_HEADS: o->heads = (uint32_t)v; break;
	case F_KV: o->kv_heads = (uint32_t)v; break;
	case F_LAYERS: o->layers = (uint32_t)v; break;
	case F_HEAD_DIM: o->head_dim = (uint32_t)v; break;
	case F_THREADS: o->threads = (unsigned)v; break;
	}
}

START_TEST(test_bad_options)
{
	struct qa_synth_opts o = small_opts();
	set_field(&o, bad[_i].f1, bad[_i].v1, bad[_i].s);
	set_field(&o, bad[_i].f2, bad[_i].v2, bad[_i].s);
	const char *path = bad[_i].f1 == F_PATH ? tpath(bad[_i].s) : tpath("x.safetensors");
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_synth_write(&o, path, &d);
	ck_assert_msg(e == QA_ERR_USAGE, "%s: got %d (%s)", bad[_i].what, e, d.msg);
	ck_assert_int_eq(d.code, QA_ERR_USAGE);
	ck_assert_msg(d.msg[0] != '\0', "%s: no reason", bad[_i].what);
	ck_assert_int_eq(count_entries(tmpdir, NULL), 0);
	if (bad[_i].f1 != F_PATH && bad[_i].f1 != F_THREADS)
		ck_assert_int_eq(qa_synth_check(&o, NULL, NULL, NULL), QA_ERR_USAGE);
}
END_TEST

/* Unwritable outputs: each case prepares the directory, then expects QA_ERR_IO. */
enum io_case { IO_NO_DIR, IO_TARGET_IS_DIR, IO_CONFIG_IS_DIR, IO_N };

START_TEST(test_io)
{
	struct qa_synth_opts o = small_opts();
	const char *path = tpath("x.safetensors");
	int expect_entries = 0;
	switch ((enum io_case)_i) {
	case IO_NO_DIR:
		path = tpath("missing/x.safetensors");
		break;
	case IO_TARGET_IS_DIR: /* the rename onto a directory fails after the data is written */
		ck_assert_int_eq(mkdir(path, 0755), 0);
		expect_entries = 1;
		break;
	case IO_CONFIG_IS_DIR:
		ck_assert_int_eq(mkdir(tpath("config.json"), 0755), 0);
		expect_entries = 2; /* config.json (a directory) and the model itself */
		break;
	default:
		break;
	}
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_synth_write(&o, path, &d);
	ck_assert_msg(e == QA_ERR_IO, "case %d: got %d (%s)", _i, e, d.msg);
	ck_assert_int_eq(d.code, QA_ERR_IO);
	ck_assert_msg(strstr(d.msg, "cannot") != NULL, "reason does not say what failed: %s", d.msg);
	ck_assert_int_eq(count_entries(tmpdir, ".tmp"), 0);
	ck_assert_int_eq(count_entries(tmpdir, NULL), expect_entries);
}
END_TEST

static Suite *synth_suite(void)
{
	Suite *s = suite_create("synth");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_layout, 0, (int)(sizeof layouts / sizeof layouts[0]));
	tcase_add_test(tc, test_seed);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_dtype_rounding);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_statistics);
	tcase_add_test(tc, test_real_shapes);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_bad_options, 0, (int)(sizeof bad / sizeof bad[0]));
	tcase_add_loop_test(tc, test_io, 0, IO_N);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(synth_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
