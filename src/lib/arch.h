/*
 * arch.h - the model architectures quantaudit knows, as llama.cpp sees them.
 *
 * One table row per architecture states the facts an audit needs about it:
 * the Hugging Face class names and model_type values that select it in a
 * config.json (llama.cpp's converter picks its model class by
 * architectures[0]), the GGUF architecture name its converter writes, how
 * the converter renames, drops and changes tensors (convert_hf_to_gguf.py
 * with gguf-py's tensor mapping), and the architecture-dependent facts
 * llama-quantize reads (src/llama-quant.cpp and the model loader: which
 * models count as LLM_TYPE_70B).  It also records the tensor layout of a
 * Hugging Face checkpoint of the architecture, which synth.c writes.
 *
 * Rows are static: every pointer returned here lives for the whole program.
 * The mixture-of-experts architectures (qwen2moe, qwen3moe, gpt-oss) are
 * rows too (QA_ARCH_MOE); new architectures are added as rows; names.c, config.c, model.c, recipe.c and synth.c read only this
 * table.
 */
#ifndef QA_ARCH_H
#define QA_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One renaming rule: a Hugging Face base name and the GGUF base name it
 * becomes.  '#' stands for a decimal layer number (no sign, no leading
 * zero, at most 10 digits, below 2^32) and must appear in both or neither;
 * the suffixes ".weight" and ".bias" are carried over unchanged, unless
 * suffix is set: then the HF name has no suffix and the GGUF name gets this
 * one (gpt-oss's self_attn.sinks -> blk.#.attn_sinks.weight).  Expert
 * numbers do not appear in these rules: the per-expert HF tensors
 * (mlp.experts.X.*_proj) are stacked by model.c into the merged HF name
 * (mlp.experts.*_proj) that a rule here then renames.
 */
struct qa_arch_rename {
	const char *hf;
	const char *gguf;
	const char *suffix; /* NULL: carried over */
};

/* A NULL-terminated list of renaming rules, searched in order. */
struct qa_arch_names {
	const struct qa_arch_rename *rules;
	size_t n;
};

/* Facts of one architecture (flags of struct qa_arch). */
enum qa_arch_flag {
	/* The converter applies llama's rotary row permutation to the q and k
	 * projections (weights and biases): LlamaModel.permute. */
	QA_ARCH_PERMUTE_QK = 1u << 0,
	/* The converter adds 1 to every tensor whose HF name ends in
	 * "norm.weight", in f32 (Gemma's RMSNorm scales by 1 + w). */
	QA_ARCH_NORM_PLUS_ONE = 1u << 1,
	/* The converter skips lm_head.weight (Gemma 2: the output is tied). */
	QA_ARCH_DROP_LM_HEAD = 1u << 2,
	/* llama.cpp's loader calls an 80-layer model LLM_TYPE_70B (qwen2). */
	QA_ARCH_70B_AT_80 = 1u << 3,
	/* ... only when it uses grouped-query attention (llama: n_head != n_head_kv). */
	QA_ARCH_70B_AT_80_GQA = 1u << 4,
	/* The converter generates rope_freqs.weight from a rope_scaling of
	 * rope_type "llama3" (LlamaModel.generate_extra_tensors; rope.h). */
	QA_ARCH_ROPE_LLAMA3 = 1u << 5,
	/* The converter generates rope_factors_long/short.weight from
	 * rope_scaling.long_factor/short_factor (Phi3MiniModel; rope.h). */
	QA_ARCH_ROPE_LONG = 1u << 6,
	/* The converter cuts token_embd to the tokenizer's size (Gemma3Model:
	 * "remove OOV rows"; model.c). */
	QA_ARCH_VOCAB_CUT = 1u << 7,

	/* Checkpoint layout (what synth writes; the converter keeps it as is). */
	QA_ARCH_QKV_BIAS = 1u << 8,      /* q/k/v projections have biases (qwen2) */
	QA_ARCH_QK_NORM = 1u << 9,       /* self_attn.q_norm / k_norm (qwen3, gemma3) */
	QA_ARCH_FFN_SANDWICH = 1u << 10, /* pre/post feed-forward and post-attention norms (gemma2/3) */
	QA_ARCH_FUSED = 1u << 11,        /* self_attn.qkv_proj and mlp.gate_up_proj (phi3) */
	QA_ARCH_TIED = 1u << 12,         /* tie_word_embeddings by default (gemma2/3) */

	/* Mixture of experts: per-expert (or fused) HF expert tensors become the
	 * 3-D blk.#.ffn_{down,gate,up}_exps (model.c), n_expert feeds the recipes. */
	QA_ARCH_MOE = 1u << 16,
	/* gpt-oss: the experts are fused 3-D [E, in, out] tensors (gate_up_proj
	 * interleaved), transposed per expert by the converter; attention sinks. */
	QA_ARCH_FUSED_EXPERTS = 1u << 17
};

struct qa_arch {
	const char *name;      /* quantaudit's name: "llama", "mistral", "qwen2", ... */
	const char *gguf;      /* general.architecture the converter writes ("llama" for mistral) */
	const char *hf_class;  /* the class synth writes into architectures[0] */
	const char *const *hf_classes;  /* NULL-terminated: architectures[0] values selecting this row */
	const char *const *model_types; /* NULL-terminated: model_type values selecting this row;
	                                   the first is what synth writes */
	const struct qa_arch_names *names; /* NULL-terminated list of rule lists */
	unsigned flags;        /* enum qa_arch_flag */
};

/*
 * The row named name (quantaudit's name or the GGUF name, case-sensitive:
 * "mistral" finds the mistral row, whose GGUF name is "llama"), or NULL.
 */
const struct qa_arch *qa_arch_find(const char *name);

/*
 * The row a config.json selects: architectures[0] (hf_class, may be NULL
 * or "") when it names a known class, else model_type (may be NULL or "").
 * NULL when neither is known.
 */
const struct qa_arch *qa_arch_from_config(const char *hf_class, const char *model_type);

/* Number of rows and row i (NULL past the end), in the order of the table. */
size_t qa_arch_count(void);
const struct qa_arch *qa_arch_at(size_t i);

/*
 * The known names, comma-separated ("llama, mistral, qwen2, ..."), for
 * messages: written to buf (cap bytes, NUL-terminated, cut at a whole name
 * when too small; QA_ARCH_LIST_CAP always suffices) and returned.  Returns
 * "" when buf is NULL or cap is 0.
 */
#define QA_ARCH_LIST_CAP 256
const char *qa_arch_known_list(char *buf, size_t cap);

/* Whether a has every flag in flags.  a may be NULL (false). */
bool qa_arch_has(const struct qa_arch *a, unsigned flags);

#endif
