/*
 * config.h - the Hugging Face model configuration (config.json) beside a
 * reference checkpoint.
 *
 * Only the handful of fields an audit needs are read: the architecture and
 * the model dimensions that decide tensor shapes and GGUF metadata.  Every
 * field records whether the file gave it, so callers can tell "absent" from
 * "zero".  Unknown fields are ignored; known fields with the wrong JSON
 * type or a negative value make the file malformed.
 */
#ifndef QA_CONFIG_H
#define QA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "safetensors.h"

/* Most entries read from rope_scaling.long_factor / short_factor (a head of 2048). */
#define QA_ROPE_MAX_FACTORS 1024

/*
 * The rotary-embedding scaling of config.json, as llama.cpp's converter
 * collects it (ModelBase: "rope_parameters", else "rope_scaling", read at
 * the top level, else from text_config; its "full_attention" object when
 * it has one).  Keys missing from the object are taken from the top level
 * where the converter mirrors them (rope_theta, partial_rotary_factor,
 * original_max_position_embeddings).  type is "rope_type", else "type",
 * lower-cased.  long_factor and short_factor hold the lists rounded to
 * f32, as torch.tensor(..., dtype=float32) rounds them.
 */
struct qa_rope_config {
	char type[32];                     /* "llama3", "longrope", "su", "linear", ...; "" if none */
	double factor, low_freq_factor, high_freq_factor;
	double rope_theta;
	double partial_rotary_factor;
	uint64_t original_max_position;
	uint32_t n_long, n_short;          /* entries of long_factor / short_factor */
	float long_factor[QA_ROPE_MAX_FACTORS], short_factor[QA_ROPE_MAX_FACTORS];
	bool present;                      /* the file has a rope_parameters / rope_scaling object */
	bool has_factor, has_low_freq_factor, has_high_freq_factor, has_rope_theta;
	bool has_partial_rotary_factor, has_original_max_position;
	bool has_long_factor, has_short_factor; /* given as lists (perhaps empty) */
};

struct qa_model_config {
	char architecture[64];    /* the arch.h row selected: "qwen2", "llama", "mistral", ...; "" if none */
	char hf_architecture[64]; /* architectures[0], e.g. "Qwen2ForCausalLM"; "" if absent */
	char model_type[64];      /* model_type as written, e.g. "gemma3_text"; "" if absent */
	uint64_t hidden_size;       /* hidden_size */
	uint64_t intermediate_size; /* intermediate_size */
	uint64_t n_layers;          /* num_hidden_layers */
	uint64_t n_heads;           /* num_attention_heads */
	uint64_t n_kv_heads;        /* num_key_value_heads, default n_heads */
	uint64_t vocab_size;        /* vocab_size */
	uint64_t head_dim;          /* head_dim, default hidden_size / n_heads */
	uint64_t max_position;      /* max_position_embeddings */
	double rms_norm_eps;        /* rms_norm_eps */
	double rope_theta;          /* rope_theta */
	bool tie_word_embeddings;   /* tie_word_embeddings, false when absent */
	/* Mixture of experts: num_experts or num_local_experts; num_experts_per_tok
	 * or experts_per_token; moe_intermediate_size (gpt-oss: intermediate_size). */
	uint64_t n_experts, n_experts_used, expert_ffn;
	struct qa_rope_config rope; /* rope_scaling / rope_parameters */

	/* Whether the file itself gave each field (defaults leave these false). */
	bool has_architecture, has_hf_architecture, has_model_type;
	bool has_hidden_size, has_intermediate_size, has_n_layers, has_n_heads;
	bool has_n_kv_heads, has_vocab_size, has_head_dim, has_max_position;
	bool has_rms_norm_eps, has_rope_theta, has_tie_word_embeddings;
	bool has_n_experts, has_n_experts_used, has_expert_ffn;
};

/*
 * Read the config.json at path into *out (fully overwritten, also on
 * failure, where it is zeroed).  architecture is the name of the arch.h row
 * that architectures[0] selects (as llama.cpp's converter chooses its model
 * class: Qwen2ForCausalLM -> qwen2, MistralForCausalLM -> mistral,
 * Gemma3ForCausalLM -> gemma3, ...), else the row model_type selects, else
 * "" with has_architecture false (hf_architecture and model_type still say
 * what the file named).  The dimension fields and tie_word_embeddings are
 * read at the top level, else from a "text_config" object (multimodal
 * checkpoints).  n_kv_heads defaults to n_heads, head_dim to hidden_size /
 * n_heads when that divides exactly; a JSON null counts as absent.  The
 * mixture-of-experts rows are chosen alike (qwen3_moe / Qwen3MoeForCausalLM
 * -> qwen3moe, qwen2_moe -> qwen2moe, gpt_oss -> gpt-oss), and their expert
 * counts and sizes read into n_experts, n_experts_used and expert_ffn.
 * The rotary scaling is read into rope (see struct qa_rope_config): a
 * rope_scaling that is neither an object nor null, a factor that is not a
 * number, a long_factor / short_factor that is not a list of numbers or has
 * more than QA_ROPE_MAX_FACTORS entries, is malformed.
 *
 * Errors: QA_ERR_IO when the file cannot be opened; QA_ERR_FORMAT when it is
 * not a JSON object, has duplicate keys, or a known field has the wrong type
 * (text_config not an object), a negative value or an over-long string (offset: the field's key, or where
 * jansson stopped); QA_ERR_NOMEM.
 */
QA_WARN_UNUSED
enum qa_err qa_config_load(struct qa_model_config *out, const char *path,
                           struct qa_diag *d);

/*
 * Parse the config.json text of len bytes at buf (need not be
 * NUL-terminated) into *out, as qa_config_load does for a file.  Errors:
 * QA_ERR_FORMAT with the byte offset in buf; QA_ERR_NOMEM.
 */
QA_WARN_UNUSED
enum qa_err qa_config_parse(struct qa_model_config *out, const char *buf, size_t len,
                            struct qa_diag *d);

/*
 * Load config.json from qa_st_dir(st).  When st has no directory or the
 * directory has no config.json, *found is set false, *out zeroed and QA_OK
 * returned; otherwise *found is true and the result is qa_config_load()'s,
 * with d->msg prefixed by the config path on failure.
 */
QA_WARN_UNUSED
enum qa_err qa_config_load_beside(struct qa_model_config *out,
                                  const struct qa_st *st, bool *found,
                                  struct qa_diag *d);

#endif
