/*
 * arch.c - the architecture table.
 *
 * The renaming rules state gguf-py's tensor mapping (gguf/tensor_mapping.py,
 * resolved with get_tensor_name_map for each MODEL_ARCH) for the tensors a
 * dense decoder checkpoint holds.  They are grouped so that architectures
 * share what they share: Gemma maps post_attention_layernorm to
 * post_attention_norm where the llama family maps it to ffn_norm.
 */
#include "arch.h"

#include <string.h>

#define N(a) (sizeof (a) / sizeof (a)[0])

/* The decoder core every architecture here has. */
static const struct qa_arch_rename core[] = {
	{ "model.embed_tokens", "token_embd", NULL },
	{ "model.norm", "output_norm", NULL },
	{ "model.layers.#.input_layernorm", "blk.#.attn_norm", NULL },
	{ "model.layers.#.self_attn.q_proj", "blk.#.attn_q", NULL },
	{ "model.layers.#.self_attn.k_proj", "blk.#.attn_k", NULL },
	{ "model.layers.#.self_attn.v_proj", "blk.#.attn_v", NULL },
	{ "model.layers.#.self_attn.o_proj", "blk.#.attn_output", NULL },
	{ "model.layers.#.mlp.down_proj", "blk.#.ffn_down", NULL },
};

/* A gated MLP with separate gate and up projections (all but phi3). */
static const struct qa_arch_rename mlp[] = {
	{ "model.layers.#.mlp.gate_proj", "blk.#.ffn_gate", NULL },
	{ "model.layers.#.mlp.up_proj", "blk.#.ffn_up", NULL },
};

static const struct qa_arch_rename lm_head[] = {
	{ "lm_head", "output", NULL },
};

/* llama, qwen2, qwen3, phi3: the norm before the MLP. */
static const struct qa_arch_rename ffn_norm[] = {
	{ "model.layers.#.post_attention_layernorm", "blk.#.ffn_norm", NULL },
};

/* qwen3, gemma3: per-head RMS norms of queries and keys. */
static const struct qa_arch_rename qk_norm[] = {
	{ "model.layers.#.self_attn.q_norm", "blk.#.attn_q_norm", NULL },
	{ "model.layers.#.self_attn.k_norm", "blk.#.attn_k_norm", NULL },
};

/* gemma2, gemma3: norms on both sides of attention and MLP. */
static const struct qa_arch_rename sandwich[] = {
	{ "model.layers.#.post_attention_layernorm", "blk.#.post_attention_norm", NULL },
	{ "model.layers.#.pre_feedforward_layernorm", "blk.#.ffn_norm", NULL },
	{ "model.layers.#.post_feedforward_layernorm", "blk.#.post_ffw_norm", NULL },
};

/* phi3: fused projections, which the converter keeps fused (gate rows first in ffn_up). */
static const struct qa_arch_rename fused[] = {
	{ "model.layers.#.self_attn.qkv_proj", "blk.#.attn_qkv", NULL },
	{ "model.layers.#.mlp.gate_up_proj", "blk.#.ffn_up", NULL },
};

/* Mixture of experts: the router of qwen2moe and qwen3moe, and (gpt-oss too) the
 * merged expert names llama.cpp's converter gives the stacked 3-D tensors. */
static const struct qa_arch_rename router[] = {
	{ "model.layers.#.mlp.gate", "blk.#.ffn_gate_inp", NULL },
};

static const struct qa_arch_rename moe[] = {
	{ "model.layers.#.mlp.experts.gate_proj", "blk.#.ffn_gate_exps", NULL },
	{ "model.layers.#.mlp.experts.up_proj", "blk.#.ffn_up_exps", NULL },
	{ "model.layers.#.mlp.experts.down_proj", "blk.#.ffn_down_exps", NULL },
};

/* qwen2moe: the shared expert and its gate. */
static const struct qa_arch_rename shexp[] = {
	{ "model.layers.#.mlp.shared_expert.gate_proj", "blk.#.ffn_gate_shexp", NULL },
	{ "model.layers.#.mlp.shared_expert.up_proj", "blk.#.ffn_up_shexp", NULL },
	{ "model.layers.#.mlp.shared_expert.down_proj", "blk.#.ffn_down_shexp", NULL },
	{ "model.layers.#.mlp.shared_expert_gate", "blk.#.ffn_gate_inp_shexp", NULL },
};

/* gpt-oss: no ffn_norm (its post_attention_layernorm is post_attention_norm),
 * sinks and down_proj_bias gain a suffix (GptOssModel.modify_tensors), the
 * router is mlp.router. */
static const struct qa_arch_rename gpt_oss[] = {
	{ "model.layers.#.post_attention_layernorm", "blk.#.post_attention_norm", NULL },
	{ "model.layers.#.self_attn.sinks", "blk.#.attn_sinks", ".weight" },
	{ "model.layers.#.mlp.experts.down_proj_bias", "blk.#.ffn_down_exps", ".bias" },
	{ "model.layers.#.mlp.router", "blk.#.ffn_gate_inp", NULL },
};

#define LIST(a) { a, N(a) }
#define END { NULL, 0 }

static const struct qa_arch_names names_llama[] = { LIST(core), LIST(mlp), LIST(lm_head),
                                                    LIST(ffn_norm), END };
static const struct qa_arch_names names_qwen3[] = { LIST(core), LIST(mlp), LIST(lm_head),
                                                    LIST(ffn_norm), LIST(qk_norm), END };
static const struct qa_arch_names names_gemma2[] = { LIST(core), LIST(mlp), LIST(sandwich), END };
static const struct qa_arch_names names_gemma3[] = { LIST(core), LIST(mlp), LIST(lm_head),
                                                     LIST(sandwich), LIST(qk_norm), END };
static const struct qa_arch_names names_qwen2moe[] = { LIST(core), LIST(lm_head), LIST(ffn_norm),
                                                       LIST(router), LIST(moe), LIST(shexp), END };
static const struct qa_arch_names names_qwen3moe[] = { LIST(core), LIST(lm_head), LIST(ffn_norm),
                                                       LIST(qk_norm), LIST(router), LIST(moe), END };
static const struct qa_arch_names names_gpt_oss[] = { LIST(core), LIST(lm_head), LIST(gpt_oss),
                                                      LIST(moe), END };
static const struct qa_arch_names names_phi3[] = { LIST(core), LIST(lm_head), LIST(ffn_norm),
                                                   LIST(fused), END };

/* The classes llama.cpp's converter registers for each model class used here. */
static const char *const hf_llama[] = { "LlamaForCausalLM", "LLaMAForCausalLM", NULL };
static const char *const hf_mistral[] = { "MistralForCausalLM", NULL };
static const char *const hf_qwen2[] = { "Qwen2ForCausalLM", NULL };
static const char *const hf_qwen3[] = { "Qwen3ForCausalLM", NULL };
static const char *const hf_gemma2[] = { "Gemma2ForCausalLM", NULL };
static const char *const hf_gemma3[] = { "Gemma3ForCausalLM", "Gemma3ForConditionalGeneration", NULL };
static const char *const hf_phi3[] = { "Phi3ForCausalLM", NULL };
static const char *const hf_qwen2moe[] = { "Qwen2MoeForCausalLM", NULL };
static const char *const hf_qwen3moe[] = { "Qwen3MoeForCausalLM", NULL };
static const char *const hf_gpt_oss[] = { "GptOssForCausalLM", NULL };

static const char *const mt_llama[] = { "llama", NULL };
static const char *const mt_mistral[] = { "mistral", NULL };
static const char *const mt_qwen2[] = { "qwen2", NULL };
static const char *const mt_qwen3[] = { "qwen3", NULL };
static const char *const mt_gemma2[] = { "gemma2", NULL };
static const char *const mt_gemma3[] = { "gemma3_text", "gemma3", NULL };
static const char *const mt_phi3[] = { "phi3", NULL };
static const char *const mt_qwen2moe[] = { "qwen2_moe", NULL };
static const char *const mt_qwen3moe[] = { "qwen3_moe", NULL };
static const char *const mt_gpt_oss[] = { "gpt_oss", NULL };

static const struct qa_arch table[] = {
	{ "llama", "llama", "LlamaForCausalLM", hf_llama, mt_llama, names_llama,
	  QA_ARCH_PERMUTE_QK | QA_ARCH_70B_AT_80_GQA | QA_ARCH_ROPE_LLAMA3 },
	/* Mistral in Hugging Face form converts as llama (LlamaModel registers it). */
	{ "mistral", "llama", "MistralForCausalLM", hf_mistral, mt_mistral, names_llama,
	  QA_ARCH_PERMUTE_QK | QA_ARCH_70B_AT_80_GQA | QA_ARCH_ROPE_LLAMA3 },
	{ "qwen2", "qwen2", "Qwen2ForCausalLM", hf_qwen2, mt_qwen2, names_llama,
	  QA_ARCH_70B_AT_80 | QA_ARCH_QKV_BIAS },
	{ "qwen3", "qwen3", "Qwen3ForCausalLM", hf_qwen3, mt_qwen3, names_qwen3,
	  QA_ARCH_QK_NORM },
	{ "gemma2", "gemma2", "Gemma2ForCausalLM", hf_gemma2, mt_gemma2, names_gemma2,
	  QA_ARCH_NORM_PLUS_ONE | QA_ARCH_DROP_LM_HEAD | QA_ARCH_FFN_SANDWICH | QA_ARCH_TIED },
	{ "gemma3", "gemma3", "Gemma3ForCausalLM", hf_gemma3, mt_gemma3, names_gemma3,
	  QA_ARCH_NORM_PLUS_ONE | QA_ARCH_FFN_SANDWICH | QA_ARCH_QK_NORM | QA_ARCH_TIED | QA_ARCH_VOCAB_CUT },
	{ "phi3", "phi3", "Phi3ForCausalLM", hf_phi3, mt_phi3, names_phi3,
	  QA_ARCH_FUSED | QA_ARCH_ROPE_LONG },
	/* Mixture of experts: the per-expert tensors are stacked as the converter
	 * stacks them (model.c); synth writes qwen3moe and gpt-oss. */
	{ "qwen2moe", "qwen2moe", "Qwen2MoeForCausalLM", hf_qwen2moe, mt_qwen2moe, names_qwen2moe,
	  QA_ARCH_MOE | QA_ARCH_QKV_BIAS },
	{ "qwen3moe", "qwen3moe", "Qwen3MoeForCausalLM", hf_qwen3moe, mt_qwen3moe, names_qwen3moe,
	  QA_ARCH_MOE },
	{ "gpt-oss", "gpt-oss", "GptOssForCausalLM", hf_gpt_oss, mt_gpt_oss, names_gpt_oss,
	  QA_ARCH_MOE | QA_ARCH_FUSED_EXPERTS },
};

const struct qa_arch *qa_arch_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < N(table); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	for (size_t i = 0; i < N(table); i++)
		if (strcmp(table[i].gguf, name) == 0)
			return &table[i];
	return NULL;
}

static bool listed(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

const struct qa_arch *qa_arch_from_config(const char *hf_class, const char *model_type)
{
	if (hf_class && *hf_class)
		for (size_t i = 0; i < N(table); i++)
			if (listed(table[i].hf_classes, hf_class))
				return &table[i];
	if (model_type && *model_type)
		for (size_t i = 0; i < N(table); i++)
			if (listed(table[i].model_types, model_type))
				return &table[i];
	return NULL;
}

size_t qa_arch_count(void)
{
	return N(table);
}

const struct qa_arch *qa_arch_at(size_t i)
{
	return i < N(table) ? &table[i] : NULL;
}

const char *qa_arch_known_list(char *buf, size_t cap)
{
	size_t o = 0;
	if (buf == NULL || cap == 0)
		return "";
	for (size_t i = 0; i < N(table); i++) {
		size_t n = strlen(table[i].name);
		if (o + n + 3 > cap)
			break;
		if (i) {
			memcpy(buf + o, ", ", 2);
			o += 2;
		}
		memcpy(buf + o, table[i].name, n);
		o += n;
	}
	buf[o] = '\0';
	return buf;
}

bool qa_arch_has(const struct qa_arch *a, unsigned flags)
{
	return a != NULL && (a->flags & flags) == flags;
}
