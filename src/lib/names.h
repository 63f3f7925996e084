/*
 * names.h - tensor names of Hugging Face checkpoints and of GGUF files.
 *
 * llama.cpp's converter (convert_hf_to_gguf.py with gguf-py's tensor
 * mapping) renames every tensor of a Hugging Face checkpoint, drops a few,
 * and for the llama family reorders the rows of the query and key
 * projections so that rotary embeddings can use adjacent pairs.  This module
 * applies those facts, which the architecture table states (arch.h: llama,
 * mistral, qwen2, qwen3, gemma2, gemma3, phi3, ...), so that a GGUF tensor
 * can be matched with the reference tensor it was made from.  Everything
 * here is pure string and array work on caller memory (one small heap copy
 * of a name aside).
 */
#ifndef QA_NAMES_H
#define QA_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum qa_names_result {
	QA_NAME_MAPPED,  /* the converter renames the tensor; out holds the new name */
	QA_NAME_KEPT,    /* no mapping is known; out holds the name unchanged */
	QA_NAME_DROPPED  /* the converter does not write this tensor (e.g. rotary_emb.inv_freq) */
};

/*
 * Translate the Hugging Face tensor name hf_name of a checkpoint of
 * architecture arch (a name qa_arch_find knows: "qwen2", "llama", "mistral",
 * "gemma3", ...; case-sensitive) into the GGUF name the converter writes,
 * e.g. "model.layers.3.mlp.down_proj.weight" -> "blk.3.ffn_down.weight".
 * Every "language_model." in the name is removed first, as the converter's
 * filter does.  A mapped base name may carry the suffix ".weight" or
 * ".bias", which is kept.  Layer numbers must be plain decimals without
 * leading zeros, as the converter spells them.
 *
 * Returns QA_NAME_MAPPED with the GGUF name in out; QA_NAME_KEPT with out a
 * copy of hf_name when no mapping is known (this includes every name of an
 * unknown arch); or QA_NAME_DROPPED, with out a copy of hf_name, for tensors
 * the converter never writes (names ending in ".rotary_emb.inv_freq",
 * ".attention.masked_bias" or ".attention.bias", and lm_head.weight of an
 * architecture with QA_ARCH_DROP_LM_HEAD).
 *
 * out is always NUL-terminated when cap > 0 and is silently truncated when
 * too small; no result is ever longer than strlen(hf_name) + 31 characters,
 * so cap >= strlen(hf_name) + 32 rules truncation out.  NULL arch or hf_name
 * is treated as the empty string.
 */
enum qa_names_result qa_names_to_gguf(const char *arch, const char *hf_name,
                                      char *out, size_t cap);

/*
 * The reverse of qa_names_to_gguf for mapped names: the Hugging Face name
 * the converter renamed into gguf_name, e.g. "output.weight" ->
 * "lm_head.weight".  Returns false, with out set to "" (when cap > 0), if
 * arch is unknown, gguf_name has no mapping (kept names cannot be told from
 * unknown ones), or the result does not fit in cap bytes with its NUL.
 */
bool qa_names_to_hf(const char *arch, const char *gguf_name, char *out,
                    size_t cap);

enum qa_names_perm {
	QA_PERM_NONE, /* rows are stored in the checkpoint's order */
	QA_PERM_Q,    /* rows permuted with n_heads = the model's n_head */
	QA_PERM_K     /* rows permuted with n_heads = the model's n_head_kv */
};

/*
 * Which row permutation the converter applied to the GGUF tensor gguf_name:
 * for an architecture with QA_ARCH_PERMUTE_QK ("llama", "mistral"),
 * blk.N.attn_q.{weight,bias} get QA_PERM_Q and blk.N.attn_k.{weight,bias}
 * QA_PERM_K; everything else, and every tensor of another or an unknown
 * arch, QA_PERM_NONE.
 */
enum qa_names_perm qa_names_permutation(const char *arch,
                                        const char *gguf_name);

/*
 * Apply the converter's llama permutation to a row-major rows x cols matrix
 * (a bias is a rows x 1 matrix): the rows are viewed as
 * (n_heads, 2, rows / n_heads / 2), the two inner axes are swapped, and the
 * result is flattened again, i.e. within each head of hd = rows / n_heads
 * rows, destination row 2*j + s takes source row s*hd/2 + j.  src is read and
 * dst written, rows * cols floats each; they must not overlap.
 *
 * Returns QA_OK; QA_ERR_USAGE for NULL pointers or n_heads == 0;
 * QA_ERR_VALUE when rows is not a multiple of 2 * n_heads or rows * cols
 * overflows.  On error dst is untouched.
 */
QA_WARN_UNUSED
enum qa_err qa_names_permute_rows(const float *src, float *dst, uint64_t rows,
                                  uint64_t cols, uint32_t n_heads,
                                  struct qa_diag *d);

/*
 * Whether arch is one of the mixture-of-experts architectures named here:
 * "qwen2moe", "qwen3moe" (router mlp.gate -> ffn_gate_inp, q/k norms for
 * qwen3moe, shared experts for qwen2moe) and "gpt-oss" (router mlp.router
 * -> ffn_gate_inp, self_attn.sinks -> attn_sinks.weight,
 * post_attention_layernorm -> post_attention_norm).  For these,
 * qa_names_to_gguf maps the merged expert names the converter stacks into
 * (model.layers.N.mlp.experts.gate_proj.weight -> blk.N.ffn_gate_exps.weight,
 * likewise up and down, and their biases); the per-expert tensors
 * themselves are KEPT (model.c merges them).
 */
bool qa_names_arch_is_moe(const char *arch);

/*
 * True when gguf_name starts with "blk.N." where N is 1 to 10 decimal digits
 * whose value fits in 32 bits; *layer (if layer is not NULL) is then N.
 */
bool qa_names_layer(const char *gguf_name, uint32_t *layer);

/*
 * The tensor class of gguf_name: the name without a leading "blk.N." and
 * without a trailing ".weight" or ".bias", e.g. "blk.0.attn_q.bias" ->
 * "attn_q", "token_embd.weight" -> "token_embd", "output.weight" ->
 * "output".  Written to buf (cap bytes); returns buf, or NULL when buf or
 * gguf_name is NULL or the class does not fit with its NUL.
 */
const char *qa_names_class(const char *gguf_name, char *buf, size_t cap);

#endif
