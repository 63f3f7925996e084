/*
 * synth.h - deterministic synthetic reference checkpoints.
 *
 * Audits need reference weights with the shapes of real models, but
 * downloading them is slow and often not allowed.  This module writes a
 * Hugging Face style checkpoint (one .safetensors file plus a config.json
 * in the same directory) for the layouts of the architectures in arch.h
 * (llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3), and for the
 * mixture-of-experts layouts qwen3moe and qwen2moe (one tensor per expert
 * and projection, as their checkpoints store them; qwen2moe with a shared
 * expert) and gpt-oss (the fused 3-D gate_up_proj / down_proj of
 * transformers' GptOss, in bf16), filled
 * with random values whose statistics resemble trained weights: a
 * log-normal scale per output row, rare heavy-tail values (about 0.2% of
 * each matrix, scaled 8 to 15 times), small biases, norm weights near 1.
 *
 * The bytes are a pure function of the options (never of the thread
 * count, the platform's libm or the time): every row is generated from its
 * own pseudo-random stream seeded by (seed, tensor index, row index), with
 * only IEEE add, multiply, divide and square root, so the same options
 * give the same file everywhere.
 */
#ifndef QA_SYNTH_H
#define QA_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* Largest accepted dimension (hidden, intermediate, vocab, head_dim, heads). */
#define QA_SYNTH_MAX_DIM (1u << 24)
/* Most layers accepted. */
#define QA_SYNTH_MAX_LAYERS 4096u
/* Most experts per layer accepted. */
#define QA_SYNTH_MAX_EXPERTS 4096u
/* Largest tensor data accepted: 4 TiB. */
#define QA_SYNTH_MAX_BYTES (UINT64_C(1) << 42)

struct qa_synth_opts {
	const char *arch;        /* arch.h name: llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3,
	                            qwen2moe, qwen3moe, gpt-oss */
	uint64_t hidden, intermediate, vocab;
	uint32_t heads, kv_heads, layers;
	uint32_t head_dim;       /* 0: hidden / heads */
	bool tied;               /* no lm_head.weight; tie_word_embeddings true */
	uint32_t dtype;          /* QA_TYPE_BF16, QA_TYPE_F16 or QA_TYPE_F32 (types.h) */
	uint64_t seed;
	unsigned threads;        /* worker threads, 0: all cores; never changes the bytes */
	/* Mixture of experts (arch qwen2moe, qwen3moe or gpt-oss only; 0 elsewhere). */
	uint32_t experts;        /* experts per layer (2 or more) */
	uint32_t experts_used;   /* experts routed per token, 1..experts */
	uint64_t expert_ffn;     /* each expert's intermediate size, 0: intermediate */
	/* Rotary scaling written to config.json's rope_scaling (NULL: none, as before):
	 * "llama3" (llama, mistral: Llama 3.1's factor 8, low/high_freq_factor 1/4,
	 * original_max_position_embeddings 8192, rope_theta 500000, context 131072), or
	 * "longrope" (phi3: long_factor and short_factor lists of head_dim / 2
	 * deterministic values, original context 4096, context 131072). */
	const char *rope_scaling;
	/* gemma3 only, 0: none.  Also write a tokenizer.json of this many tokens
	 * (tokenizer_vocab - 2 in model.vocab, 2 added_tokens), at most vocab; the
	 * converter cuts token_embd to that size. */
	uint64_t tokenizer_vocab;
	bool mxfp4;              /* gpt-oss only: experts in the published MXFP4 form, U8
	                            mlp.experts.{gate_up,down}_proj_{blocks,scales} (hidden and
	                            expert ffn multiples of 32); config.json's quantization_config
	                            says quant_method mxfp4 */
};

/*
 * Check o without writing anything: QA_OK, or QA_ERR_USAGE with a reason in
 * d (unknown architecture or dtype, a zero size, heads not dividing hidden
 * when head_dim is 0, a phi3 head_dim other than hidden / heads (its config
 * has none), kv_heads not dividing heads, a dimension above
 * QA_SYNTH_MAX_DIM, more than QA_SYNTH_MAX_LAYERS layers, or a total size
 * above QA_SYNTH_MAX_BYTES, a rope_scaling other than llama3 for llama /
 * mistral or longrope for phi3, a tokenizer_vocab for an architecture other
 * than gemma3 or outside 2..vocab).  When out_tensors / out_bytes are not NULL
 * they receive the tensor count and the file size the options produce.
 */
QA_WARN_UNUSED
enum qa_err qa_synth_check(const struct qa_synth_opts *o, uint64_t *out_tensors,
                           uint64_t *out_bytes, struct qa_diag *d);

/*
 * Write the checkpoint described by o to out_path and a config.json to the
 * same directory.  Tensors use Hugging Face names and [out, in] shapes, in
 * the order embed_tokens, then per layer input_layernorm, q/k/v_proj (with
 * biases for qwen2; one qkv_proj for phi3), q_norm/k_norm (qwen3, gemma3),
 * o_proj, post_attention_layernorm, pre/post_feedforward_layernorm (gemma2,
 * gemma3), gate/up/down_proj (gate_up_proj and down_proj for phi3), then
 * model.norm and lm_head (unless tied; gemma2 and gemma3 always are); the
 * config.json has the fields the family's own carry (architectures[0] the
 * arch's HF class, model_type its first); the header carries
 * "__metadata__" {"format":"pt","generator":"quantaudit synth","seed":"S"}
 * (with tokenizer_vocab, a tokenizer.json is written beside them too)
 * and is padded with spaces to a multiple of 8 bytes.
 *
 * Both files are written to temporary files in the target directory and
 * renamed into place, so a reader never sees a partial file; on failure
 * the temporary files are removed.  Memory use is bounded by a fixed
 * chunk of rows, not by the model or tensor size.
 *
 * Errors: QA_ERR_USAGE for bad options (as qa_synth_check), QA_ERR_IO when
 * a file cannot be created, written or renamed (d->msg names the path and
 * the system's reason), QA_ERR_NOMEM.
 */
QA_WARN_UNUSED
enum qa_err qa_synth_write(const struct qa_synth_opts *o, const char *out_path,
                           struct qa_diag *d);

#endif
