/*
 * check_names.c - Check suite for names.c: HF <-> GGUF tensor names and the
 * llama row permutation.
 *
 * The name cases state gguf-py's tensor mapping for qwen2/llama/mistral; the
 * permutation is checked on a hand-worked 8x2 example and by the property
 * that an independently written inverse restores the input.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "names.h"

/* ---- core: name mapping -------------------------------------------------- */

static const struct {
	const char *arch, *hf, *gguf;
} mapped[] = {
	{ "qwen2", "model.embed_tokens.weight", "token_embd.weight" },
	{ "qwen2", "lm_head.weight", "output.weight" },
	{ "qwen2", "model.norm.weight", "output_norm.weight" },
	{ "qwen2", "model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight" },
	{ "qwen2", "model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight" },
	{ "qwen2", "model.layers.3.self_attn.q_proj.bias", "blk.3.attn_q.bias" },
	{ "qwen2", "model.layers.1.self_attn.k_proj.bias", "blk.1.attn_k.bias" },
	{ "qwen2", "model.layers.1.self_attn.v_proj.bias", "blk.1.attn_v.bias" },
	{ "qwen2", "model.layers.27.self_attn.o_proj.weight", "blk.27.attn_output.weight" },
	{ "qwen2", "model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight" },
	{ "llama", "model.embed_tokens.weight", "token_embd.weight" },
	{ "llama", "lm_head.weight", "output.weight" },
	{ "llama", "model.norm.weight", "output_norm.weight" },
	{ "llama", "model.layers.31.self_attn.o_proj.weight", "blk.31.attn_output.weight" },
	{ "llama", "model.layers.5.post_attention_layernorm.weight", "blk.5.ffn_norm.weight" },
	{ "llama", "model.layers.5.mlp.gate_proj.weight", "blk.5.ffn_gate.weight" },
	{ "llama", "model.layers.5.mlp.up_proj.weight", "blk.5.ffn_up.weight" },
	{ "llama", "model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight" },
	{ "llama", "model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight" },
	{ "llama", "model.layers.79.input_layernorm.weight", "blk.79.attn_norm.weight" },
	{ "llama", "model.embed_tokens", "token_embd" },
	{ "mistral", "model.layers.10.mlp.down_proj.weight", "blk.10.ffn_down.weight" },
	{ "mistral", "model.layers.7.self_attn.k_proj.weight", "blk.7.attn_k.weight" },
	{ "mistral", "model.layers.7.self_attn.q_proj.weight", "blk.7.attn_q.weight" },
	{ "mistral", "model.embed_tokens.weight", "token_embd.weight" },
	{ "mistral", "lm_head.weight", "output.weight" },
	{ "mistral", "model.norm.weight", "output_norm.weight" },
	{ "mistral", "model.layers.4294967295.mlp.up_proj.weight", "blk.4294967295.ffn_up.weight" },
	/* gguf-py get_tensor_name_map(MODEL_ARCH.QWEN3 / GEMMA2 / GEMMA3 / PHI3, n) */
	{ "qwen3", "model.layers.2.self_attn.q_norm.weight", "blk.2.attn_q_norm.weight" },
	{ "qwen3", "model.layers.2.self_attn.k_norm.weight", "blk.2.attn_k_norm.weight" },
	{ "qwen3", "model.layers.2.post_attention_layernorm.weight", "blk.2.ffn_norm.weight" },
	{ "qwen3", "lm_head.weight", "output.weight" },
	{ "gemma2", "model.layers.1.post_attention_layernorm.weight", "blk.1.post_attention_norm.weight" },
	{ "gemma2", "model.layers.1.pre_feedforward_layernorm.weight", "blk.1.ffn_norm.weight" },
	{ "gemma2", "model.layers.1.post_feedforward_layernorm.weight", "blk.1.post_ffw_norm.weight" },
	{ "gemma2", "model.layers.1.mlp.gate_proj.weight", "blk.1.ffn_gate.weight" },
	{ "gemma3", "model.layers.0.self_attn.k_norm.weight", "blk.0.attn_k_norm.weight" },
	{ "gemma3", "model.layers.0.post_feedforward_layernorm.weight", "blk.0.post_ffw_norm.weight" },
	{ "gemma3", "model.embed_tokens.weight", "token_embd.weight" },
	{ "gemma3", "lm_head.weight", "output.weight" },
	{ "phi3", "model.layers.3.self_attn.qkv_proj.weight", "blk.3.attn_qkv.weight" },
	{ "phi3", "model.layers.3.mlp.gate_up_proj.weight", "blk.3.ffn_up.weight" },
	{ "phi3", "model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight" },
	{ "phi3", "model.layers.3.post_attention_layernorm.weight", "blk.3.ffn_norm.weight" },
};

#define N_MAPPED (sizeof mapped / sizeof mapped[0])

START_TEST(test_to_gguf_mapped)
{
	char out[128];
	ck_assert_int_eq(qa_names_to_gguf(mapped[_i].arch, mapped[_i].hf, out, sizeof out),
	                 QA_NAME_MAPPED);
	ck_assert_str_eq(out, mapped[_i].gguf);
	ck_assert_uint_le(strlen(out), strlen(mapped[_i].hf) + 31);
}
END_TEST

/* Mixture of experts: gguf-py's tensor_mapping.py entries for these archs
 * (ATTN_SINKS, FFN_GATE_INP "mlp.gate" / "mlp.router", ATTN_POST_NORM for
 * gpt-oss, *_EXP "mlp.experts.{gate,up,down}_proj" merged names, *_SHEXP),
 * and GptOssModel's renames of sinks and down_proj_bias. */
static const struct {
	const char *arch, *hf, *gguf;
} moe_mapped[] = {
	{ "qwen3moe", "model.layers.2.mlp.gate.weight", "blk.2.ffn_gate_inp.weight" },
	{ "qwen3moe", "model.layers.2.self_attn.q_norm.weight", "blk.2.attn_q_norm.weight" },
	{ "qwen3moe", "model.layers.2.self_attn.k_norm.weight", "blk.2.attn_k_norm.weight" },
	{ "qwen3moe", "model.layers.2.post_attention_layernorm.weight", "blk.2.ffn_norm.weight" },
	{ "qwen3moe", "model.layers.2.mlp.experts.down_proj.weight", "blk.2.ffn_down_exps.weight" },
	{ "qwen3moe", "model.layers.0.mlp.experts.gate_proj.weight", "blk.0.ffn_gate_exps.weight" },
	{ "qwen3moe", "model.layers.0.mlp.experts.up_proj.weight", "blk.0.ffn_up_exps.weight" },
	{ "qwen3moe", "model.embed_tokens.weight", "token_embd.weight" },
	{ "qwen2moe", "model.layers.1.mlp.shared_expert.down_proj.weight", "blk.1.ffn_down_shexp.weight" },
	{ "qwen2moe", "model.layers.1.mlp.shared_expert_gate.weight", "blk.1.ffn_gate_inp_shexp.weight" },
	{ "gpt-oss", "model.layers.1.self_attn.sinks", "blk.1.attn_sinks.weight" },
	{ "gpt-oss", "model.layers.1.mlp.router.weight", "blk.1.ffn_gate_inp.weight" },
	{ "gpt-oss", "model.layers.1.mlp.router.bias", "blk.1.ffn_gate_inp.bias" },
	{ "gpt-oss", "model.layers.1.post_attention_layernorm.weight", "blk.1.post_attention_norm.weight" },
	{ "gpt-oss", "model.layers.1.mlp.experts.down_proj_bias", "blk.1.ffn_down_exps.bias" },
	{ "gpt-oss", "model.layers.1.self_attn.o_proj.bias", "blk.1.attn_output.bias" },
	{ "gpt-oss", "lm_head.weight", "output.weight" },
};

START_TEST(test_moe_names)
{
	char out[128];
	ck_assert_int_eq(qa_names_to_gguf(moe_mapped[_i].arch, moe_mapped[_i].hf, out, sizeof out),
	                 QA_NAME_MAPPED);
	ck_assert_str_eq(out, moe_mapped[_i].gguf);
	ck_assert(qa_names_to_hf(moe_mapped[_i].arch, moe_mapped[_i].gguf, out, sizeof out));
	ck_assert_str_eq(out, moe_mapped[_i].hf);
	ck_assert(qa_names_arch_is_moe(moe_mapped[_i].arch));
}
END_TEST

/* The per-expert tensors are merged by model.c, not renamed; a gpt-oss
 * name with a suffix where the checkpoint has none is not gguf-py's. */
START_TEST(test_moe_kept)
{
	char out[128];
	ck_assert_int_eq(qa_names_to_gguf("qwen3moe", "model.layers.0.mlp.experts.3.up_proj.weight", out, sizeof out),
	                 QA_NAME_KEPT);
	ck_assert_int_eq(qa_names_to_gguf("gpt-oss", "model.layers.0.self_attn.sinks.weight", out, sizeof out),
	                 QA_NAME_KEPT);
	ck_assert_int_eq(qa_names_to_gguf("qwen3moe", "model.layers.0.mlp.shared_expert_gate.weight", out,
	                                  sizeof out), QA_NAME_KEPT); /* qwen2moe only */
	ck_assert(!qa_names_arch_is_moe("qwen2"));
	ck_assert(!qa_names_arch_is_moe(NULL));
}
END_TEST

START_TEST(test_to_hf_mapped)
{
	char out[128];
	ck_assert(qa_names_to_hf(mapped[_i].arch, mapped[_i].gguf, out, sizeof out));
	ck_assert_str_eq(out, mapped[_i].hf);
}
END_TEST

static const struct {
	const char *arch, *hf;
	enum qa_names_result want;
} unmapped[] = {
	{ "qwen2", "model.layers.0.self_attn.rotary_emb.inv_freq", QA_NAME_DROPPED },
	{ "llama", "model.layers.12.self_attn.rotary_emb.inv_freq", QA_NAME_DROPPED },
	{ "mistral", "model.layers.3.self_attn.rotary_emb.inv_freq", QA_NAME_DROPPED },
	{ "gpt2", "h.0.attn.attention.masked_bias", QA_NAME_DROPPED },
	{ "llama", "model.layers.0.self_attn.q_norm.weight", QA_NAME_KEPT },
	{ "qwen2", "foo.bar", QA_NAME_KEPT },
	{ "qwen2", "", QA_NAME_KEPT },
	{ "gpt2", "model.embed_tokens.weight", QA_NAME_KEPT },
	{ "QWEN2", "model.embed_tokens.weight", QA_NAME_KEPT },
	{ "llama", "model.layers.01.mlp.down_proj.weight", QA_NAME_KEPT },
	{ "llama", "model.layers.x.mlp.down_proj.weight", QA_NAME_KEPT },
	{ "llama", "model.layers..mlp.down_proj.weight", QA_NAME_KEPT },
	{ "llama", "model.layers.4294967296.mlp.down_proj.weight", QA_NAME_KEPT },
	{ "llama", "model.layers.0.mlp.down_proj.scale", QA_NAME_KEPT },
	{ "llama", "model.layers.0.mlp.down_proj.weight.extra", QA_NAME_KEPT },
	{ "llama", "model.embed_tokens.weight.weight", QA_NAME_KEPT },
	{ "llama", "token_embd.weight", QA_NAME_KEPT },
	{ "mistral", "tok_embeddings.weight", QA_NAME_KEPT },
	{ "gemma2", "lm_head.weight", QA_NAME_DROPPED }, /* Gemma2Model.filter_tensors */
	{ "gemma2", "model.layers.0.self_attn.q_norm.weight", QA_NAME_KEPT },
	{ "phi3", "model.layers.0.mlp.gate_proj.weight", QA_NAME_KEPT },
	{ "qwen2", "model.layers.0.pre_feedforward_layernorm.weight", QA_NAME_KEPT },
};

/* The converter's filter removes "language_model." (multimodal checkpoints). */
START_TEST(test_to_gguf_language_model)
{
	char out[128];
	ck_assert_int_eq(qa_names_to_gguf("gemma3", "language_model.model.layers.4.mlp.down_proj.weight",
	                                  out, sizeof out), QA_NAME_MAPPED);
	ck_assert_str_eq(out, "blk.4.ffn_down.weight");
	ck_assert_int_eq(qa_names_to_gguf("gemma3", "language_model.lm_head.weight", out, sizeof out),
	                 QA_NAME_MAPPED);
	ck_assert_str_eq(out, "output.weight");
	ck_assert_int_eq(qa_names_to_gguf("gemma2", "language_model.lm_head.weight", out, sizeof out),
	                 QA_NAME_DROPPED);
	ck_assert_str_eq(out, "language_model.lm_head.weight");
	/* an unmapped name is kept as written, "language_model." included */
	ck_assert_int_eq(qa_names_to_gguf("gemma3", "language_model.vision.weight", out, sizeof out),
	                 QA_NAME_KEPT);
	ck_assert_str_eq(out, "language_model.vision.weight");
}
END_TEST

START_TEST(test_to_gguf_unmapped)
{
	char out[128];
	ck_assert_int_eq(qa_names_to_gguf(unmapped[_i].arch, unmapped[_i].hf, out, sizeof out),
	                 unmapped[_i].want);
	ck_assert_str_eq(out, unmapped[_i].hf);
}
END_TEST

static const struct {
	const char *arch, *gguf;
} no_hf[] = {
	{ "llama", "rope_freqs.weight" },
	{ "qwen2", "blk.0.attn_q_norm.weight" },
	{ "gpt2", "token_embd.weight" },
	{ "llama", "blk.01.attn_q.weight" },
	{ "llama", "blk.0.attn_q.scale" },
	{ "llama", "model.embed_tokens.weight" },
	{ "qwen2", "" },
	{ "gemma2", "output.weight" },
	{ "phi3", "blk.0.ffn_gate.weight" },
};

START_TEST(test_to_hf_none)
{
	char out[64] = "junk";
	ck_assert(!qa_names_to_hf(no_hf[_i].arch, no_hf[_i].gguf, out, sizeof out));
	ck_assert_str_eq(out, "");
}
END_TEST

static const struct {
	const char *arch, *gguf;
	enum qa_names_perm want;
} perm_cases[] = {
	{ "llama", "blk.0.attn_q.weight", QA_PERM_Q },
	{ "llama", "blk.0.attn_q.bias", QA_PERM_Q },
	{ "llama", "blk.5.attn_k.weight", QA_PERM_K },
	{ "llama", "blk.5.attn_k.bias", QA_PERM_K },
	{ "mistral", "blk.2.attn_q.weight", QA_PERM_Q },
	{ "mistral", "blk.2.attn_k.weight", QA_PERM_K },
	{ "qwen2", "blk.0.attn_q.weight", QA_PERM_NONE },
	{ "qwen2", "blk.0.attn_k.bias", QA_PERM_NONE },
	{ "llama", "blk.0.attn_v.weight", QA_PERM_NONE },
	{ "llama", "blk.0.attn_output.weight", QA_PERM_NONE },
	{ "llama", "blk.0.attn_qkv.weight", QA_PERM_NONE },
	{ "llama", "blk.0.attn_q_norm.weight", QA_PERM_NONE },
	{ "llama", "attn_q.weight", QA_PERM_NONE },
	{ "llama", "token_embd.weight", QA_PERM_NONE },
	{ "gpt2", "blk.0.attn_q.weight", QA_PERM_NONE },
	{ "qwen3", "blk.0.attn_q.weight", QA_PERM_NONE },
	{ "gemma2", "blk.0.attn_k.weight", QA_PERM_NONE },
	{ "gemma3", "blk.0.attn_q.weight", QA_PERM_NONE },
	{ "phi3", "blk.0.attn_q.weight", QA_PERM_NONE },
};

START_TEST(test_permutation_kind)
{
	ck_assert_int_eq(qa_names_permutation(perm_cases[_i].arch, perm_cases[_i].gguf),
	                 perm_cases[_i].want);
}
END_TEST

/* ---- core: permutation ----------------------------------------------------- */

START_TEST(test_permute_8x2)
{
	/* rows viewed as (2 heads, 2, 2): head h, pair s, index j -> row h*4 + 2j + s */
	static const int want_rows[8] = { 0, 2, 1, 3, 4, 6, 5, 7 };
	float src[16], dst[16];
	for (int r = 0; r < 8; r++)
		for (int c = 0; c < 2; c++)
			src[r * 2 + c] = (float)(r * 10 + c);
	ck_assert_int_eq(qa_names_permute_rows(src, dst, 8, 2, 2, NULL), QA_OK);
	for (int r = 0; r < 8; r++)
		for (int c = 0; c < 2; c++)
			ck_assert(dst[r * 2 + c] == (float)(want_rows[r] * 10 + c));
}
END_TEST

/* The inverse, written from the definition: dst row h*hd + 2j + s came from src row h*hd + s*hd/2 + j. */
static void unpermute(const float *dst, float *src, uint64_t rows, uint64_t cols, uint32_t heads)
{
	uint64_t hd = rows / heads;
	for (uint64_t h = 0; h < heads; h++)
		for (uint64_t s = 0; s < 2; s++)
			for (uint64_t j = 0; j < hd / 2; j++)
				for (uint64_t c = 0; c < cols; c++)
					src[(h * hd + s * (hd / 2) + j) * cols + c] =
						dst[(h * hd + 2 * j + s) * cols + c];
}

static const struct {
	uint64_t rows, cols;
	uint32_t heads;
} perm_shapes[] = {
	{ 8, 2, 2 }, { 8, 1, 1 }, { 256, 3, 4 }, { 128, 5, 1 }, { 384, 2, 6 },
	{ 64, 7, 32 }, { 12, 4, 3 }, { 2, 9, 1 }, { 4096, 1, 32 },
};

START_TEST(test_permute_inverse)
{
	uint64_t rows = perm_shapes[_i].rows, cols = perm_shapes[_i].cols;
	uint32_t heads = perm_shapes[_i].heads;
	size_t n = (size_t)(rows * cols);
	float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
	ck_assert(a && b && c);
	uint32_t x = 12345u + (uint32_t)_i;
	for (size_t k = 0; k < n; k++) {
		x = x * 1664525u + 1013904223u;
		a[k] = (float)(x >> 8);
	}
	ck_assert_int_eq(qa_names_permute_rows(a, b, rows, cols, heads, NULL), QA_OK);
	unpermute(b, c, rows, cols, heads);
	ck_assert(memcmp(a, c, n * sizeof *a) == 0);
	/* A permutation: every value appears once, a row stays a row. */
	for (uint64_t r = 0; r < rows; r++) {
		bool found = false;
		for (uint64_t q = 0; q < rows && !found; q++)
			found = memcmp(b + r * cols, a + q * cols, (size_t)cols * sizeof *a) == 0;
		ck_assert(found);
	}
	/* With two rows per head the permutation is the identity. */
	if (rows == 2 * (uint64_t)heads)
		ck_assert(memcmp(a, b, n * sizeof *a) == 0);
	free(a);
	free(b);
	free(c);
}
END_TEST

/* ---- limits ----------------------------------------------------------------- */

static const struct {
	const char *name;
	bool ok;
	uint32_t layer;
} layer_cases[] = {
	{ "blk.0.attn_q.weight", true, 0 },
	{ "blk.123.ffn_down.weight", true, 123 },
	{ "blk.4294967295.x", true, 4294967295u },
	{ "blk.007.x", true, 7 },
	{ "blk.4294967296.x", false, 0 },
	{ "blk.12345678901.x", false, 0 },
	{ "blk..x", false, 0 },
	{ "blk.3", false, 0 },
	{ "blk.3x.y", false, 0 },
	{ "blk.-1.x", false, 0 },
	{ "token_embd.weight", false, 0 },
	{ "xblk.1.a", false, 0 },
	{ "", false, 0 },
};

START_TEST(test_layer)
{
	uint32_t layer = 999;
	ck_assert(qa_names_layer(layer_cases[_i].name, &layer) == layer_cases[_i].ok);
	if (layer_cases[_i].ok) {
		ck_assert_uint_eq(layer, layer_cases[_i].layer);
		ck_assert(qa_names_layer(layer_cases[_i].name, NULL));
	}
}
END_TEST

static const struct {
	const char *name, *cls;
} class_cases[] = {
	{ "blk.0.attn_q.bias", "attn_q" },
	{ "blk.0.attn_q.weight", "attn_q" },
	{ "blk.12.ffn_down.weight", "ffn_down" },
	{ "blk.1.attn_norm.weight", "attn_norm" },
	{ "blk.1.attn_norm", "attn_norm" },
	{ "token_embd.weight", "token_embd" },
	{ "output.weight", "output" },
	{ "output_norm.weight", "output_norm" },
	{ "rope_freqs.weight", "rope_freqs" },
	{ "blk.2.attn_output.weight", "attn_output" },
	{ "blk.x.attn_q.weight", "blk.x.attn_q" },
	{ "", "" },
};

START_TEST(test_class)
{
	char buf[64];
	ck_assert_ptr_eq(qa_names_class(class_cases[_i].name, buf, sizeof buf), buf);
	ck_assert_str_eq(buf, class_cases[_i].cls);
}
END_TEST

START_TEST(test_small_buffers)
{
	char out[8];
	/* to_gguf: truncated but terminated, still MAPPED. */
	memset(out, 'x', sizeof out);
	ck_assert_int_eq(qa_names_to_gguf("llama", "model.layers.3.mlp.down_proj.weight", out, 5),
	                 QA_NAME_MAPPED);
	ck_assert_str_eq(out, "blk.");
	ck_assert_int_eq(qa_names_to_gguf("llama", "model.layers.3.mlp.down_proj.weight", NULL, 0),
	                 QA_NAME_MAPPED);
	ck_assert_int_eq(qa_names_to_gguf("llama", "some.other.name", out, sizeof out),
	                 QA_NAME_KEPT);
	ck_assert_str_eq(out, "some.ot");
	ck_assert_int_eq(qa_names_to_gguf(NULL, NULL, out, sizeof out), QA_NAME_KEPT);
	ck_assert_str_eq(out, "");
	/* to_hf: refuses a result that does not fit. */
	ck_assert(!qa_names_to_hf("llama", "output.weight", out, sizeof out));
	ck_assert_str_eq(out, "");
	ck_assert(!qa_names_to_hf("llama", "output.weight", NULL, 0));
	char nine[15];
	ck_assert(qa_names_to_hf("llama", "output.weight", nine, sizeof nine));
	ck_assert_str_eq(nine, "lm_head.weight");
	ck_assert(!qa_names_to_hf("llama", "output.weight", nine, sizeof nine - 1));
	/* class: exact fit and one short. */
	char cls[7];
	ck_assert_ptr_eq(qa_names_class("blk.0.attn_q.weight", cls, 7), cls);
	ck_assert_str_eq(cls, "attn_q");
	ck_assert_ptr_null(qa_names_class("blk.0.attn_q.weight", cls, 6));
	ck_assert_ptr_null(qa_names_class("blk.0.attn_q.weight", NULL, 6));
	ck_assert_ptr_null(qa_names_class(NULL, cls, sizeof cls));
}
END_TEST

START_TEST(test_permute_bias_and_empty)
{
	float src[4] = { 1, 2, 3, 4 }, dst[4];
	ck_assert_int_eq(qa_names_permute_rows(src, dst, 4, 1, 1, NULL), QA_OK);
	ck_assert(dst[0] == 1 && dst[1] == 3 && dst[2] == 2 && dst[3] == 4);
	ck_assert_int_eq(qa_names_permute_rows(src, dst, 0, 5, 3, NULL), QA_OK);
	ck_assert_int_eq(qa_names_permute_rows(src, dst, 4, 0, 2, NULL), QA_OK);
}
END_TEST

/* ---- malformed ---------------------------------------------------------------- */

static const struct {
	uint64_t rows, cols;
	uint32_t heads;
	enum qa_err want;
} bad_perm[] = {
	{ 6, 2, 2, QA_ERR_VALUE },   /* 6 % 4 */
	{ 7, 1, 1, QA_ERR_VALUE },   /* odd */
	{ 12, 2, 4, QA_ERR_VALUE },  /* 12 % 8 */
	{ 8, 2, 0, QA_ERR_USAGE },
	{ UINT64_MAX - 1, UINT64_MAX, 1, QA_ERR_VALUE }, /* rows * cols overflows */
	{ 1ull << 60, 4, 1, QA_ERR_VALUE },              /* bytes overflow */
};

START_TEST(test_permute_refused)
{
	float src[16] = { 0 }, dst[16];
	for (int k = 0; k < 16; k++)
		dst[k] = -1.0f;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_names_permute_rows(src, dst, bad_perm[_i].rows, bad_perm[_i].cols,
	                                       bad_perm[_i].heads, &d),
	                 bad_perm[_i].want);
	ck_assert_int_eq(d.code, bad_perm[_i].want);
	ck_assert(strlen(d.msg) > 0);
	for (int k = 0; k < 16; k++)
		ck_assert(dst[k] == -1.0f);
}
END_TEST

START_TEST(test_permute_null)
{
	float buf[8];
	ck_assert_int_eq(qa_names_permute_rows(NULL, buf, 4, 2, 1, NULL), QA_ERR_USAGE);
	ck_assert_int_eq(qa_names_permute_rows(buf, NULL, 4, 2, 1, NULL), QA_ERR_USAGE);
	ck_assert_int_eq(qa_names_permutation(NULL, "blk.0.attn_q.weight"), QA_PERM_NONE);
	ck_assert_int_eq(qa_names_permutation("llama", NULL), QA_PERM_NONE);
	ck_assert(!qa_names_layer(NULL, NULL));
	ck_assert(!qa_names_to_hf(NULL, "output.weight", (char[8]){ 0 }, 8));
}
END_TEST

static Suite *names_suite(void)
{
	Suite *s = suite_create("names");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, test_to_gguf_mapped, 0, N_MAPPED);
	tcase_add_loop_test(core, test_moe_names, 0, sizeof moe_mapped / sizeof moe_mapped[0]);
	tcase_add_test(core, test_moe_kept);
	tcase_add_loop_test(core, test_to_hf_mapped, 0, N_MAPPED);
	tcase_add_loop_test(core, test_to_gguf_unmapped, 0, sizeof unmapped / sizeof unmapped[0]);
	tcase_add_test(core, test_to_gguf_language_model);
	tcase_add_loop_test(core, test_to_hf_none, 0, sizeof no_hf / sizeof no_hf[0]);
	tcase_add_loop_test(core, test_permutation_kind, 0, sizeof perm_cases / sizeof perm_cases[0]);
	tcase_add_test(core, test_permute_8x2);
	tcase_add_loop_test(core, test_permute_inverse, 0, sizeof perm_shapes / sizeof perm_shapes[0]);
	suite_add_tcase(s, core);

	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(limits, test_layer, 0, sizeof layer_cases / sizeof layer_cases[0]);
	tcase_add_loop_test(limits, test_class, 0, sizeof class_cases / sizeof class_cases[0]);
	tcase_add_test(limits, test_small_buffers);
	tcase_add_test(limits, test_permute_bias_and_empty);
	suite_add_tcase(s, limits);

	TCase *malformed = tcase_create("malformed");
	tcase_add_loop_test(malformed, test_permute_refused, 0, sizeof bad_perm / sizeof bad_perm[0]);
	tcase_add_test(malformed, test_permute_null);
	suite_add_tcase(s, malformed);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(names_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
