#define _POSIX_C_SOURCE 200809L
/*
 * check_model.c - format detection and the reference view: the fixture
 * checkpoint seen under GGUF names and shapes, bf16 widened exactly, the
 * GGUF path reading metadata and refusing quantized tensors, the llama q/k
 * row permutation on a hand-computed case, and the checkpoints that must be
 * refused.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "testutil.h"
#include "types.h"

#define ST_FIXTURE "fixtures/models/micro-qwen2.safetensors"
#define GGUF_FIXTURE "fixtures/models/micro-qwen2.Q4_K_M.corrupt.gguf"

/* ------------------------------------------------------------ helpers */

/* Temporary files made by a test, removed by cleanup(). */
static char made[16][512];
static int n_made;
static char made_dir[64];

static const char *tmp_begin(void)
{
	const char *d = tu_tmpdir();
	ck_assert_ptr_nonnull(d);
	snprintf(made_dir, sizeof made_dir, "%s", d);
	n_made = 0;
	return made_dir;
}

static const char *tmp_path(const char *name)
{
	ck_assert_int_lt(n_made, 16);
	snprintf(made[n_made], sizeof made[0], "%s/%s", made_dir, name);
	return made[n_made++];
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
}

static void cleanup(void)
{
	for (int i = n_made - 1; i >= 0; i--) {
		if (rmdir(made[i]) != 0)
			unlink(made[i]);
	}
	rmdir(made_dir);
	n_made = 0;
}

static float bf16_widen(const uint8_t *p)
{
	uint32_t bits = ((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16;
	float f;
	memcpy(&f, &bits, sizeof f);
	return f;
}

/*
 * The raw bytes of tensor hf_name in a safetensors file image: found in the
 * JSON header by hand (8-byte length, header, data).
 */
static const uint8_t *st_raw(const uint8_t *file, size_t len, const char *hf_name, size_t *nbytes)
{
	ck_assert_uint_ge(len, 8);
	uint64_t hlen = 0;
	for (int k = 0; k < 8; k++)
		hlen |= (uint64_t)file[k] << (8 * k);
	ck_assert_uint_le(8 + hlen, len);
	char *hdr = malloc((size_t)hlen + 1);
	ck_assert_ptr_nonnull(hdr);
	memcpy(hdr, file + 8, (size_t)hlen);
	hdr[hlen] = '\0';
	char key[256];
	snprintf(key, sizeof key, "\"%s\"", hf_name);
	const char *p = strstr(hdr, key);
	ck_assert_ptr_nonnull(p);
	p = strstr(p, "\"data_offsets\"");
	ck_assert_ptr_nonnull(p);
	p = strchr(p, '[');
	ck_assert_ptr_nonnull(p);
	char *end;
	uint64_t a = strtoull(p + 1, &end, 10);
	ck_assert_int_eq(*end, ',');
	uint64_t b = strtoull(end + 1, &end, 10);
	ck_assert_int_eq(*end, ']');
	free(hdr);
	ck_assert_uint_le(a, b);
	ck_assert_uint_le(8 + hlen + b, len);
	*nbytes = (size_t)(b - a);
	return file + 8 + hlen + a;
}

/* ------------------------------------------------------------ format detection */

enum { WANT_GGUF = QA_FORMAT_GGUF, WANT_ST = QA_FORMAT_SAFETENSORS, WANT_BAD, WANT_IO };

static const struct {
	const char *name;
	int kind; /* 0 GGUF magic + junk, 1 safetensors, 2 directory, 3 junk, 4 empty,
	             5 "GGU", 6 "GGUF" only, 7 "{}", 8 absent */
	int want;
} detects[] = {
	{ "magic.bin", 0, WANT_GGUF },
	{ "magic", 0, WANT_GGUF },
	{ "tensors.bin", 1, WANT_ST },
	{ "model.safetensors", 1, WANT_ST },
	{ "tensors.gguf", 1, WANT_ST }, /* content wins over a misleading name */
	{ "ckpt", 2, WANT_ST },
	{ "ckpt.gguf", 2, WANT_ST },
	{ "model.safetensors.index.json", 7, WANT_ST },
	{ "x.json", 3, WANT_ST },
	{ "x.bin", 3, WANT_BAD },
	{ "x", 3, WANT_BAD },
	{ "x.gguf", 3, WANT_GGUF },
	{ "x.safetensors", 3, WANT_ST },
	{ "empty.bin", 4, WANT_BAD },
	{ "empty.gguf", 4, WANT_GGUF },
	{ "short.bin", 5, WANT_BAD },
	{ "four.bin", 6, WANT_GGUF },
	{ "missing.gguf", 8, WANT_IO },
	{ "missing.json", 8, WANT_IO },
	{ "missing", 8, WANT_IO },
};

static void make_input(const char *path, int kind)
{
	uint8_t junk[100];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof junk; i++) {
		x = x * 1103515245u + 12345u;
		junk[i] = (uint8_t)(x >> 16);
	}
	junk[0] = 0x01; /* not "GGUF" */
	junk[8] = 'x';  /* not a json header after a length */
	switch (kind) {
	case 0:
		memcpy(junk, "GGUF", 4);
		write_bytes(path, junk, sizeof junk);
		break;
	case 1: {
		static const float v[4] = { 1, 2, 3, 4 };
		struct tu_st_tensor t = { "a.weight", "F32", 1, { 4 }, v, sizeof v };
		ck_assert_int_eq(tu_write_st(path, &t, 1), 0);
		break;
	}
	case 2:
		ck_assert_int_eq(mkdir(path, 0700), 0);
		break;
	case 3:
		write_bytes(path, junk, sizeof junk);
		break;
	case 4:
		write_bytes(path, "", 0);
		break;
	case 5:
		write_bytes(path, "GGU", 3);
		break;
	case 6:
		write_bytes(path, "GGUF", 4);
		break;
	case 7:
		write_bytes(path, "{}", 2);
		break;
	default:
		break;
	}
}

/* core: each input is detected as its content (or, failing that, its name) says. */
START_TEST(detect_table)
{
	tmp_begin();
	const char *path = tmp_path(detects[_i].name);
	make_input(path, detects[_i].kind);
	enum qa_format f = (enum qa_format)0;
	struct qa_diag d;
	memset(&d, 0, sizeof d);
	enum qa_err e = qa_format_detect(path, &f, &d);
	switch (detects[_i].want) {
	case WANT_GGUF:
	case WANT_ST:
		ck_assert_int_eq(e, QA_OK);
		ck_assert_int_eq(f, detects[_i].want);
		break;
	case WANT_BAD:
		ck_assert_int_eq(e, QA_ERR_FORMAT);
		ck_assert_int_eq(d.code, QA_ERR_FORMAT);
		ck_assert_uint_eq(d.offset, 0);
		ck_assert_uint_gt(strlen(d.msg), 0);
		break;
	case WANT_IO:
		ck_assert_int_eq(e, QA_ERR_IO);
		ck_assert_int_eq(d.code, QA_ERR_IO);
		break;
	}
	/* a NULL diag gives the same verdict */
	ck_assert_int_eq(qa_format_detect(path, &f, NULL), e);
	cleanup();
}
END_TEST

/* ------------------------------------------------------------ the safetensors fixture */

static const struct {
	const char *name;
	uint32_t n_dims;
	uint64_t ne0, ne1;
	const char *hf;
} st_tensors[] = {
	{ "blk.1.ffn_down.weight", 2, 512, 256, "model.layers.1.mlp.down_proj.weight" },
	{ "blk.0.ffn_up.weight", 2, 256, 512, "model.layers.0.mlp.up_proj.weight" },
	{ "blk.0.ffn_gate.weight", 2, 256, 512, "model.layers.0.mlp.gate_proj.weight" },
	{ "blk.0.attn_q.weight", 2, 256, 256, "model.layers.0.self_attn.q_proj.weight" },
	{ "blk.0.attn_k.weight", 2, 256, 64, "model.layers.0.self_attn.k_proj.weight" },
	{ "blk.1.attn_v.bias", 1, 64, 1, "model.layers.1.self_attn.v_proj.bias" },
	{ "blk.1.attn_output.weight", 2, 256, 256, "model.layers.1.self_attn.o_proj.weight" },
	{ "blk.0.attn_norm.weight", 1, 256, 1, "model.layers.0.input_layernorm.weight" },
	{ "blk.1.ffn_norm.weight", 1, 256, 1, "model.layers.1.post_attention_layernorm.weight" },
	{ "token_embd.weight", 2, 256, 256, "model.embed_tokens.weight" },
	{ "output_norm.weight", 1, 256, 1, "model.norm.weight" },
	{ "output.weight", 2, 256, 256, "lm_head.weight" },
};

/* core: the fixture seen in GGUF terms, and what can be inferred without config.json. */
START_TEST(st_fixture_view)
{
	struct qa_ref *r = NULL;
	struct qa_diag d;
	ck_assert_msg(qa_ref_open(&r, tu_path(ST_FIXTURE), &d) == QA_OK, "%s", d.msg);
	ck_assert_int_eq(qa_ref_format(r), QA_FORMAT_SAFETENSORS);
	ck_assert_uint_eq(qa_ref_n_tensors(r), 27);
	ck_assert_uint_eq(qa_ref_n_sources(r), 1);
	ck_assert_ptr_nonnull(qa_ref_source(r, 0));
	const struct qa_ref_info *in = qa_ref_info(r);
	ck_assert_str_eq(in->arch, "qwen2");
	ck_assert_uint_eq(in->n_layer, 2);
	ck_assert_uint_gt(in->n_head_kv, 0);
	ck_assert_uint_eq(in->n_head, 4 * in->n_head_kv);
	ck_assert(!in->tied);
	ck_assert(!in->from_config);
	struct qa_model_shape ms;
	qa_ref_model_shape(r, &ms);
	ck_assert_str_eq(ms.arch, "qwen2");
	ck_assert_uint_eq(ms.n_layer, 2);
	ck_assert(!ms.tied);

	const struct qa_ref_tensor *t = qa_ref_tensor_find(r, st_tensors[_i].name);
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->name, st_tensors[_i].name);
	ck_assert_str_eq(t->src_name, st_tensors[_i].hf);
	ck_assert_str_eq(t->src_dtype, "BF16");
	ck_assert_uint_eq(t->src_type, QA_TYPE_BF16);
	ck_assert_uint_eq(t->n_dims, st_tensors[_i].n_dims);
	ck_assert_uint_eq(t->ne[0], st_tensors[_i].ne0);
	ck_assert_uint_eq(t->ne[1], st_tensors[_i].ne1);
	ck_assert_uint_eq(t->ne[2], 1);
	ck_assert_uint_eq(t->ne[3], 1);
	ck_assert_uint_eq(t->n_elems, st_tensors[_i].ne0 * st_tensors[_i].ne1);
	ck_assert_int_eq(t->perm, QA_PERM_NONE); /* qwen2 is not permuted */
	qa_ref_close(r);
}
END_TEST

/* core: every tensor is findable by its name, at its index. */
START_TEST(st_fixture_index)
{
	struct qa_ref *r = NULL;
	ck_assert_int_eq(qa_ref_open(&r, tu_path(ST_FIXTURE), NULL), QA_OK);
	size_t n = qa_ref_n_tensors(r);
	for (size_t i = 0; i < n; i++) {
		const struct qa_ref_tensor *t = qa_ref_tensor_at(r, i);
		ck_assert_ptr_nonnull(t);
		ck_assert_ptr_eq(qa_ref_tensor_find(r, t->name), t);
		uint64_t prod = 1;
		for (int k = 0; k < 4; k++)
			prod *= t->ne[k];
		ck_assert_uint_eq(prod, t->n_elems);
		ck_assert_ptr_null(strstr(t->name, "model.")); /* all renamed */
	}
	ck_assert_ptr_null(qa_ref_tensor_at(r, n));
	ck_assert_ptr_null(qa_ref_tensor_find(r, "blk.2.attn_q.weight"));
	ck_assert_ptr_null(qa_ref_tensor_find(r, "model.norm.weight"));
	ck_assert_ptr_null(qa_ref_tensor_find(r, ""));
	qa_ref_close(r);
}
END_TEST

/* core: a bf16 tensor reads as its bf16 values widened, in file order. */
START_TEST(st_fixture_bf16_widened)
{
	size_t flen = 0;
	uint8_t *file = tu_slurp(tu_path(ST_FIXTURE), &flen);
	ck_assert_ptr_nonnull(file);
	struct qa_ref *r = NULL;
	ck_assert_int_eq(qa_ref_open(&r, tu_path(ST_FIXTURE), NULL), QA_OK);
	const struct qa_ref_tensor *t = qa_ref_tensor_find(r, st_tensors[_i].name);
	ck_assert_ptr_nonnull(t);
	size_t nbytes = 0;
	const uint8_t *raw = st_raw(file, flen, st_tensors[_i].hf, &nbytes);
	ck_assert_uint_eq(nbytes, t->n_elems * 2);
	float *got = malloc((size_t)t->n_elems * sizeof *got);
	float *want = malloc((size_t)t->n_elems * sizeof *want);
	ck_assert(got && want);
	for (size_t i = 0; i < t->n_elems; i++)
		want[i] = bf16_widen(raw + 2 * i);
	struct qa_diag d;
	ck_assert_int_eq(qa_ref_read_f32(r, t, got, &d), QA_OK);
	ck_assert_int_eq(memcmp(got, want, (size_t)t->n_elems * sizeof *got), 0);
	free(got);
	free(want);
	qa_ref_close(r);
	free(file);
}
END_TEST

/* ------------------------------------------------------------ the GGUF fixture */

/* core: metadata, shapes matching the reference, and quantized tensors refused. */
START_TEST(gguf_fixture)
{
	struct qa_ref *g = NULL, *st = NULL;
	struct qa_diag d;
	ck_assert_msg(qa_ref_open(&g, tu_path(GGUF_FIXTURE), &d) == QA_OK, "%s", d.msg);
	ck_assert_int_eq(qa_ref_open(&st, tu_path(ST_FIXTURE), &d), QA_OK);
	ck_assert_int_eq(qa_ref_format(g), QA_FORMAT_GGUF);
	ck_assert_uint_eq(qa_ref_n_sources(g), 1);
	const struct qa_ref_info *in = qa_ref_info(g);
	ck_assert_str_eq(in->arch, "qwen2");
	ck_assert_uint_eq(in->n_head, 4);
	ck_assert_uint_eq(in->n_head_kv, 1);
	ck_assert_uint_eq(in->n_layer, 2);
	ck_assert_uint_eq(in->hidden, 256);
	ck_assert_uint_eq(in->ffn, 512);
	ck_assert(in->from_config);
	ck_assert(!in->tied);
	ck_assert_uint_eq(qa_ref_n_tensors(g), qa_ref_n_tensors(st));

	size_t floats = 0, quants = 0;
	for (size_t i = 0; i < qa_ref_n_tensors(g); i++) {
		const struct qa_ref_tensor *t = qa_ref_tensor_at(g, i);
		const struct qa_ref_tensor *s = qa_ref_tensor_find(st, t->name);
		ck_assert_msg(s != NULL, "%s", t->name);
		ck_assert_uint_eq(t->n_dims, s->n_dims);
		for (int k = 0; k < 4; k++)
			ck_assert_uint_eq(t->ne[k], s->ne[k]);
		ck_assert_int_eq(t->perm, QA_PERM_NONE);
		const struct qa_type_info *ti = qa_type_by_name(t->src_dtype);
		ck_assert_ptr_nonnull(ti);
		float *buf = malloc((size_t)t->n_elems * sizeof *buf);
		ck_assert_ptr_nonnull(buf);
		if (ti->id == QA_TYPE_F32 || ti->id == QA_TYPE_F16 || ti->id == QA_TYPE_BF16) {
			ck_assert_uint_eq(t->src_type, ti->id);
			ck_assert_msg(qa_ref_read_f32(g, t, buf, &d) == QA_OK, "%s: %s", t->name, d.msg);
			/* f32 tensors were converted from the bf16 reference: exact */
			float *ref = malloc((size_t)s->n_elems * sizeof *ref);
			ck_assert_ptr_nonnull(ref);
			ck_assert_int_eq(qa_ref_read_f32(st, s, ref, NULL), QA_OK);
			if (ti->id == QA_TYPE_F32)
				ck_assert_msg(memcmp(buf, ref, (size_t)t->n_elems * sizeof *buf) == 0, "%s", t->name);
			free(ref);
			floats++;
		} else {
			ck_assert_uint_eq(t->src_type, QA_TYPE_COUNT);
			memset(&d, 0, sizeof d);
			ck_assert_int_eq(qa_ref_read_f32(g, t, buf, &d), QA_ERR_UNSUPPORTED);
			ck_assert_int_eq(d.code, QA_ERR_UNSUPPORTED);
			ck_assert_ptr_nonnull(strstr(d.msg, t->name));
			quants++;
		}
		free(buf);
	}
	/* Q4_K_M keeps norms and biases f32 and quantizes the matrices */
	ck_assert_uint_eq(floats, 2 * 5 + 1);
	ck_assert_uint_eq(quants, 2 * 7 + 2);
	const struct qa_ref_tensor *norm = qa_ref_tensor_find(g, "output_norm.weight");
	ck_assert_ptr_nonnull(norm);
	ck_assert_uint_eq(norm->src_type, QA_TYPE_F32);
	qa_ref_close(g);
	qa_ref_close(st);
}
END_TEST

/* ------------------------------------------------------------ llama permutation */

/* A one-layer llama checkpoint: hidden 8, 2 heads of 4, 1 KV head. */
#define H 8
static float q_w[8 * H], q_b[8], k_w[4 * H], v_w[4 * H], emb[32 * H], inv_freq[2];

static void fill_rows(float *p, int rows, int cols, float tag)
{
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++)
			p[r * cols + c] = tag + (float)(100 * r + c);
}

/* Write the checkpoint into dir; with_bias adds q_proj.bias; config may be NULL. */
static const char *write_llama(int with_bias, const char *config)
{
	fill_rows(q_w, 8, H, 1000);
	fill_rows(q_b, 8, 1, 2000);
	fill_rows(k_w, 4, H, 3000);
	fill_rows(v_w, 4, H, 4000);
	fill_rows(emb, 32, H, 5000);
	inv_freq[0] = 1;
	inv_freq[1] = 0.5f;
	struct tu_st_tensor t[6] = {
		{ "model.embed_tokens.weight", "F32", 2, { 32, H }, emb, sizeof emb },
		{ "model.layers.0.self_attn.q_proj.weight", "F32", 2, { 8, H }, q_w, sizeof q_w },
		{ "model.layers.0.self_attn.k_proj.weight", "F32", 2, { 4, H }, k_w, sizeof k_w },
		{ "model.layers.0.self_attn.v_proj.weight", "F32", 2, { 4, H }, v_w, sizeof v_w },
		{ "model.layers.0.self_attn.rotary_emb.inv_freq", "F32", 1, { 2 }, inv_freq, sizeof inv_freq },
		{ "model.layers.0.self_attn.q_proj.bias", "F32", 1, { 8 }, q_b, sizeof q_b },
	};
	const char *path = tmp_path("model.safetensors");
	ck_assert_int_eq(tu_write_st(path, t, with_bias ? 6 : 5), 0);
	if (config)
		write_bytes(tmp_path("config.json"), config, strlen(config));
	return path;
}

static const char llama_config[] =
	"{\"model_type\": \"llama\", \"architectures\": [\"LlamaForCausalLM\"],"
	" \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"hidden_size\": 8,"
	" \"num_hidden_layers\": 1, \"intermediate_size\": 16, \"vocab_size\": 32}";

/*
 * Rows viewed as (n_head, 2, hd/2) with the middle axes swapped: with hd 4,
 * destination rows (0,1,2,3) of a head take source rows (0,2,1,3).  q has 2
 * heads of 4 rows, k one head of 4 rows, v is not permuted.
 */
static const struct {
	const char *name;
	const float *src;
	int rows, cols;
	enum qa_names_perm perm;
	int order[8];
} perms[] = {
	{ "blk.0.attn_q.weight", q_w, 8, H, QA_PERM_Q, { 0, 2, 1, 3, 4, 6, 5, 7 } },
	{ "blk.0.attn_q.bias", q_b, 8, 1, QA_PERM_Q, { 0, 2, 1, 3, 4, 6, 5, 7 } },
	{ "blk.0.attn_k.weight", k_w, 4, H, QA_PERM_K, { 0, 2, 1, 3 } },
	{ "blk.0.attn_v.weight", v_w, 4, H, QA_PERM_NONE, { 0, 1, 2, 3 } },
	{ "token_embd.weight", emb, 8, H, QA_PERM_NONE, { 0, 1, 2, 3, 4, 5, 6, 7 } }, /* first 8 rows */
};

/* core: q and k rows permuted as llama.cpp's converter does; v untouched. */
START_TEST(llama_permutation)
{
	tmp_begin();
	const char *path = write_llama(1, llama_config);
	struct qa_ref *r = NULL;
	struct qa_diag d;
	ck_assert_msg(qa_ref_open(&r, path, &d) == QA_OK, "%s", d.msg);
	const struct qa_ref_info *in = qa_ref_info(r);
	ck_assert_str_eq(in->arch, "llama");
	ck_assert(in->from_config);
	ck_assert_uint_eq(in->n_head, 2);
	ck_assert_uint_eq(in->n_head_kv, 1);
	ck_assert_uint_eq(in->hidden, 8);
	ck_assert(in->tied); /* no lm_head */
	ck_assert_uint_eq(qa_ref_n_tensors(r), 5); /* inv_freq dropped */
	ck_assert_ptr_null(qa_ref_tensor_find(r, "model.layers.0.self_attn.rotary_emb.inv_freq"));

	const struct qa_ref_tensor *t = qa_ref_tensor_find(r, perms[_i].name);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->perm, perms[_i].perm);
	float *got = malloc((size_t)t->n_elems * sizeof *got);
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(qa_ref_read_f32(r, t, got, &d) == QA_OK, "%s", d.msg);
	int cols = perms[_i].cols;
	for (int row = 0; row < perms[_i].rows; row++)
		for (int c = 0; c < cols; c++)
			ck_assert_float_eq(got[row * cols + c], perms[_i].src[perms[_i].order[row] * cols + c]);
	/* read by rows in units of the alignment (whole heads when permuted),
	 * the same values as the whole read; a range cutting a head is refused */
	uint64_t align = qa_ref_row_align(r, t), rows = t->n_elems / t->ne[0];
	/* q: 2 heads of 4 rows, k: 1 head of 4 rows; a 1-D bias is one row */
	ck_assert_uint_eq(align, perms[_i].perm == QA_PERM_NONE || t->n_dims < 2 ? 1 : 4);
	float *part = malloc((size_t)t->n_elems * sizeof *part);
	ck_assert_ptr_nonnull(part);
	for (uint64_t r0 = 0; r0 < rows; r0 += align) {
		ck_assert_msg(qa_ref_read_rows_f32(r, t, r0, align, part, &d) == QA_OK, "%s", d.msg);
		ck_assert(memcmp(part, got + r0 * t->ne[0], (size_t)(align * t->ne[0]) * sizeof *part) == 0);
	}
	if (align > 1)
		ck_assert_int_eq(qa_ref_read_rows_f32(r, t, 1, align, part, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_ref_read_rows_f32(r, t, rows, 1, part, &d), QA_ERR_USAGE);
	free(part);
	free(got);
	qa_ref_close(r);
	cleanup();
}
END_TEST

/*
 * core: a Gemma 2 checkpoint: norms read 1 + w in f32 (Gemma2Model.modify_tensors
 * adds 1 to every "norm.weight" after widening to f32), other tensors as
 * stored, lm_head.weight dropped (its filter_tensors), sandwich norms named
 * as gguf-py maps them.  The same tensors under mistral read unshifted, with
 * the GGUF architecture "llama".
 */
START_TEST(gemma2_norms)
{
	tmp_begin();
	static const float norm[4] = { 0.5f, -1.0f, 1e-8f, 3.0f };
	static const float lin[8] = { 0.5f, -1.0f, 1e-8f, 3.0f, 1, 2, 3, 4 };
	struct tu_st_tensor t[4] = {
		{ "model.layers.0.pre_feedforward_layernorm.weight", "F32", 1, { 4 }, norm, sizeof norm },
		{ "model.layers.0.post_attention_layernorm.weight", "F32", 1, { 4 }, norm, sizeof norm },
		{ "model.layers.0.mlp.down_proj.weight", "F32", 2, { 2, 4 }, lin, sizeof lin },
		{ "lm_head.weight", "F32", 2, { 2, 4 }, lin, sizeof lin },
	};
	const char *path = tmp_path("model.safetensors");
	ck_assert_int_eq(tu_write_st(path, t, 4), 0);
	static const char *const cfg[2] = {
		"{\"architectures\": [\"Gemma2ForCausalLM\"], \"model_type\": \"gemma2\", \"num_attention_heads\": 2,"
		" \"num_key_value_heads\": 1, \"hidden_size\": 4, \"num_hidden_layers\": 1, \"head_dim\": 2}",
		"{\"architectures\": [\"MistralForCausalLM\"], \"num_attention_heads\": 2,"
		" \"num_key_value_heads\": 1, \"hidden_size\": 4, \"num_hidden_layers\": 1}",
	};
	write_bytes(tmp_path("config.json"), cfg[_i], strlen(cfg[_i]));
	struct qa_ref *r = NULL;
	struct qa_diag d;
	ck_assert_msg(qa_ref_open(&r, path, &d) == QA_OK, "%s", d.msg);
	ck_assert_str_eq(qa_ref_info(r)->arch, _i == 0 ? "gemma2" : "llama");
	ck_assert_uint_eq(qa_ref_n_tensors(r), _i == 0 ? 3 : 4);
	ck_assert(_i == 0 ? qa_ref_info(r)->tied : !qa_ref_info(r)->tied);
	const char *norm_name = _i == 0 ? "blk.0.ffn_norm.weight" : "model.layers.0.pre_feedforward_layernorm.weight";
	const struct qa_ref_tensor *n = qa_ref_tensor_find(r, norm_name);
	ck_assert_ptr_nonnull(n);
	ck_assert_ptr_nonnull(qa_ref_tensor_find(r, _i == 0 ? "blk.0.post_attention_norm.weight"
	                                                    : "blk.0.ffn_norm.weight"));
	float got[8];
	ck_assert_msg(qa_ref_read_f32(r, n, got, &d) == QA_OK, "%s", d.msg);
	for (int k = 0; k < 4; k++)
		ck_assert_float_eq(got[k], _i == 0 ? norm[k] + 1.0f : norm[k]);
	ck_assert_float_eq(got[2], _i == 0 ? 1.0f : 1e-8f); /* 1 + 1e-8 rounds to 1 in f32 */
	/* the streamed paths read the same values: by rows and by element range */
	float rows[4], range[2];
	ck_assert_msg(qa_ref_read_rows_f32(r, n, 0, 1, rows, &d) == QA_OK, "%s", d.msg);
	ck_assert_msg(qa_ref_read_f32_range(r, n, 2, 2, range, &d) == QA_OK, "%s", d.msg);
	for (int k = 0; k < 4; k++)
		ck_assert_float_eq(rows[k], got[k]);
	ck_assert_float_eq(range[0], got[2]);
	ck_assert_float_eq(range[1], got[3]);
	const struct qa_ref_tensor *w = qa_ref_tensor_find(r, "blk.0.ffn_down.weight");
	ck_assert_ptr_nonnull(w);
	ck_assert(!w->plus_one);
	ck_assert_msg(qa_ref_read_f32(r, w, got, &d) == QA_OK, "%s", d.msg);
	for (int k = 0; k < 8; k++)
		ck_assert_float_eq(got[k], lin[k]);
	qa_ref_close(r);
	cleanup();
}
END_TEST

/*
 * core: gpt-oss's MXFP4 checkpoint form, one expert of one gate/up row pair
 * and one 32-value block.  HF holds values 2j and 2j+1 in the low and high
 * nibble of byte j; the converter's transform_nibble_layout gives ggml's
 * value j low, j + 16 high, after the scale byte.  Gate row bytes
 * (2j) | (2j+1) << 4 hold codes k & 15 at value k, so ggml's bytes are
 * j | j << 4; the up row's 0x21 holds codes 1, 2, 1, 2, ..., so ggml's bytes
 * alternate 0x11 and 0x22 and read 0.5, 1.0, ... at scale 127 (2^0).
 */
START_TEST(gpt_oss_mxfp4)
{
	tmp_begin();
	uint8_t blocks[2][16], scales[2] = { 120, 127 };
	for (int j = 0; j < 16; j++) {
		blocks[0][j] = (uint8_t)((2 * j) | ((2 * j + 1) & 15) << 4);
		blocks[1][j] = 0x21;
	}
	struct tu_st_tensor t[2] = {
		{ "model.layers.0.mlp.experts.gate_up_proj_blocks", "U8", 4, { 1, 2, 1, 16 }, blocks, sizeof blocks },
		{ "model.layers.0.mlp.experts.gate_up_proj_scales", "U8", 3, { 1, 2, 1 }, scales, sizeof scales },
	};
	const char *path = tmp_path("model.safetensors");
	ck_assert_int_eq(tu_write_st(path, t, 2), 0);
	static const char cfg[] =
		"{\"architectures\": [\"GptOssForCausalLM\"], \"model_type\": \"gpt_oss\", \"num_attention_heads\": 2,"
		" \"num_key_value_heads\": 1, \"hidden_size\": 32, \"num_hidden_layers\": 1, \"num_local_experts\": 1}";
	write_bytes(tmp_path("config.json"), cfg, strlen(cfg));
	struct qa_ref *r = NULL;
	struct qa_diag d;
	ck_assert_msg(qa_ref_open(&r, path, &d) == QA_OK, "%s", d.msg);
	ck_assert_uint_eq(qa_ref_n_tensors(r), 2);
	const struct qa_ref_tensor *g = qa_ref_tensor_find(r, "blk.0.ffn_gate_exps.weight");
	const struct qa_ref_tensor *u = qa_ref_tensor_find(r, "blk.0.ffn_up_exps.weight");
	ck_assert_ptr_nonnull(g);
	ck_assert_ptr_nonnull(u);
	ck_assert(qa_ref_tensor_quantized(g));
	ck_assert_uint_eq(g->src_type, QA_TYPE_MXFP4);
	ck_assert_uint_eq(g->n_dims, 3);
	ck_assert_uint_eq(g->ne[0], 32);
	ck_assert_uint_eq(g->ne[1], 1);
	ck_assert_uint_eq(g->ne[2], 1);
	uint8_t raw[17];
	ck_assert_msg(qa_ref_read_raw(r, g, 0, 1, raw, &d) == QA_OK, "%s", d.msg);
	ck_assert_uint_eq(raw[0], 120);
	for (int j = 0; j < 16; j++)
		ck_assert_uint_eq(raw[1 + j], (unsigned)(j | j << 4));
	ck_assert_msg(qa_ref_read_raw(r, u, 0, 1, raw, &d) == QA_OK, "%s", d.msg);
	ck_assert_uint_eq(raw[0], 127);
	for (int j = 0; j < 16; j++)
		ck_assert_uint_eq(raw[1 + j], j % 2 ? 0x22u : 0x11u);
	float f[32];
	ck_assert_msg(qa_ref_read_f32(r, u, f, &d) == QA_OK, "%s", d.msg);
	for (int k = 0; k < 32; k++)
		ck_assert_float_eq(f[k], k % 2 ? 1.0f : 0.5f);
	/* out of range, and a float tensor has no raw bytes */
	ck_assert_int_eq(qa_ref_read_raw(r, g, 1, 1, raw, &d), QA_ERR_USAGE);
	qa_ref_close(r);
	/* the scales of another shape: malformed */
	t[1].shape[2] = 2;
	uint8_t scales4[4] = { 1, 2, 3, 4 };
	t[1].data = scales4;
	t[1].nbytes = sizeof scales4;
	ck_assert_int_eq(tu_write_st(path, t, 2), 0);
	ck_assert_int_eq(qa_ref_open(&r, path, &d), QA_ERR_FORMAT);
	ck_assert(strstr(d.msg, "must be U8 [experts, rows, blocks, 16]") != NULL);
	cleanup();
}
END_TEST

/* ------------------------------------------------------------ limits */

/* limits: an empty file with a .gguf name and an empty checkpoint directory. */
START_TEST(empty_inputs)
{
	tmp_begin();
	const char *gguf = tmp_path("empty.gguf");
	write_bytes(gguf, "", 0);
	struct qa_ref *r = NULL;
	struct qa_diag d;
	memset(&d, 0, sizeof d);
	enum qa_err e = qa_ref_open(&r, gguf, &d);
	ck_assert_int_eq(e, QA_ERR_FORMAT);
	ck_assert_uint_eq(d.offset, 0);
	const char *dir = tmp_path("ckpt");
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_ne(qa_ref_open(&r, dir, &d), QA_OK);
	qa_ref_close(NULL);
	cleanup();
}
END_TEST

/* limits: a safetensors file with no tensors opens as an empty reference. */
START_TEST(no_tensors)
{
	tmp_begin();
	const char *path = tmp_path("none.safetensors");
	ck_assert_int_eq(tu_write_st(path, NULL, 0), 0);
	struct qa_ref *r = NULL;
	struct qa_diag d;
	ck_assert_msg(qa_ref_open(&r, path, &d) == QA_OK, "%s", d.msg);
	ck_assert_uint_eq(qa_ref_n_tensors(r), 0);
	ck_assert_ptr_null(qa_ref_tensor_at(r, 0));
	ck_assert_ptr_null(qa_ref_tensor_find(r, "output.weight"));
	ck_assert(qa_ref_info(r)->tied);
	qa_ref_close(r);
	cleanup();
}
END_TEST

/* ------------------------------------------------------------ malformed */

/* malformed: without config.json, llama q/k cannot be permuted: refused at open. */
START_TEST(llama_without_config)
{
	tmp_begin();
	const char *path = write_llama(0, NULL);
	struct qa_ref *r = NULL;
	struct qa_diag d;
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(qa_ref_open(&r, path, &d), QA_ERR_FORMAT);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(d.msg, "config.json"));
	ck_assert_ptr_nonnull(strstr(d.msg, "q_proj"));
	cleanup();
}
END_TEST

/*
 * malformed: a llama config.json that cannot drive the permutation (no or
 * zero head count, or heads that do not split q's rows into pairs) is
 * refused at open with QA_ERR_FORMAT, so q is never handed out unpermuted.
 */
static const char *const bad_configs[] = {
	"{\"model_type\": \"llama\", \"hidden_size\": 8, \"num_hidden_layers\": 1}",
	"{\"model_type\": \"llama\", \"num_attention_heads\": 0, \"hidden_size\": 8}",
	"{\"model_type\": \"llama\", \"num_attention_heads\": 3, \"num_key_value_heads\": 1, \"hidden_size\": 8}",
};

START_TEST(llama_bad_heads)
{
	tmp_begin();
	const char *path = write_llama(0, bad_configs[_i]);
	struct qa_ref *r = NULL;
	struct qa_diag d;
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(qa_ref_open(&r, path, &d), QA_ERR_FORMAT);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(d.msg, "heads"));
	cleanup();
}
END_TEST

/*
 * malformed: a config.json naming an architecture the table does not know
 * is a usage error (exit 2) whose message lists the known ones.
 */
START_TEST(unknown_arch)
{
	tmp_begin();
	static const char *const cfg[] = {
		"{\"architectures\": [\"FalconForCausalLM\"], \"model_type\": \"falcon\"}",
		"{\"model_type\": \"gemma\", \"hidden_size\": 8}",
	};
	const char *path = write_llama(0, cfg[_i]);
	struct qa_ref *r = NULL;
	struct qa_diag d;
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(qa_ref_open(&r, path, &d), QA_ERR_USAGE);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(d.msg, _i == 0 ? "'FalconForCausalLM'" : "'gemma'"));
	ck_assert_ptr_nonnull(strstr(d.msg, "known: llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3, "
	                                          "qwen2moe, qwen3moe, gpt-oss"));
	cleanup();
}
END_TEST

/* malformed: two source tensors landing on one GGUF name. */
START_TEST(duplicate_names)
{
	tmp_begin();
	static const float a[4] = { 1, 2, 3, 4 }, b[4] = { 5, 6, 7, 8 };
	struct tu_st_tensor t[2] = {
		{ "model.norm.weight", "F32", 1, { 4 }, a, sizeof a },
		{ "output_norm.weight", "F32", 1, { 4 }, b, sizeof b },
	};
	if (_i == 1) { /* the lm_head alias of output.weight */
		t[0].name = "lm_head.weight";
		t[1].name = "output.weight";
	}
	const char *path = tmp_path("dup.safetensors");
	ck_assert_int_eq(tu_write_st(path, t, 2), 0);
	struct qa_ref *r = NULL;
	struct qa_diag d;
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(qa_ref_open(&r, path, &d), QA_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(d.msg, t[0].name));
	ck_assert_ptr_nonnull(strstr(d.msg, t[1].name));
	cleanup();
}
END_TEST

/* malformed: unreadable paths come back as the detector's errors. */
START_TEST(open_refused)
{
	tmp_begin();
	const char *junk = tmp_path("x.bin");
	make_input(junk, 3);
	const char *missing = tmp_path("missing.safetensors");
	struct qa_ref *r = NULL;
	struct qa_diag d;
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(qa_ref_open(&r, junk, &d), QA_ERR_FORMAT);
	ck_assert_uint_eq(d.offset, 0);
	ck_assert_int_eq(qa_ref_open(&r, missing, &d), QA_ERR_IO);
	ck_assert_int_eq(qa_ref_open(&r, missing, NULL), QA_ERR_IO);
	cleanup();
}
END_TEST

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
	Suite *s = suite_create("model");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, detect_table, 0, LEN(detects));
	tcase_add_loop_test(core, st_fixture_view, 0, LEN(st_tensors));
	tcase_add_test(core, st_fixture_index);
	tcase_add_loop_test(core, st_fixture_bf16_widened, 0, LEN(st_tensors));
	tcase_add_test(core, gguf_fixture);
	tcase_add_loop_test(core, llama_permutation, 0, LEN(perms));
	tcase_add_loop_test(core, gemma2_norms, 0, 2);
	tcase_add_test(core, gpt_oss_mxfp4);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, empty_inputs);
	tcase_add_test(limits, no_tensors);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, llama_without_config);
	tcase_add_loop_test(bad, llama_bad_heads, 0, LEN(bad_configs));
	tcase_add_loop_test(bad, duplicate_names, 0, 2);
	tcase_add_test(bad, open_refused);
	tcase_add_loop_test(bad, unknown_arch, 0, 2);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
