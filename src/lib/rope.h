/*
 * rope.h - the tensors llama.cpp's converter generates from config.json
 * instead of converting them from the checkpoint.
 *
 * A Llama 3.1+ GGUF carries rope_freqs.weight, the per-dimension frequency
 * factors of rope_scaling's rope_type "llama3"; a long-context Phi-3 GGUF
 * carries rope_factors_long.weight and rope_factors_short.weight, the lists
 * of its "longrope" (or "su") rope_scaling.  No safetensors file holds
 * them, so a reference read from one would lack them.  This module computes
 * them as the converter does (conversion/llama.py LlamaModel and
 * conversion/phi.py Phi3MiniModel, generate_extra_tensors), to the bit:
 * the converter computes in torch float32, one rounding per operation, and
 * so does this code (compiled with -ffp-contract=off); the one
 * transcendental step, base ** (2i / dim), is rounded once to f32 from the
 * double result.  All are 1-D f32 tensors, which llama-quantize keeps f32.
 */
#ifndef QA_ROPE_H
#define QA_ROPE_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "config.h"
#include "err.h"

/* At most this many tensors are generated for one model. */
#define QA_ROPE_MAX_TENSORS 2

/* One generated tensor; data is owned by it (qa_rope_free). */
struct qa_rope_tensor {
	char name[32];      /* GGUF name: "rope_freqs.weight", "rope_factors_long.weight", ... */
	const char *origin; /* static: where the values come from, for reports */
	float *data;        /* n values */
	uint32_t n;
};

/*
 * The rope_type "llama3" factors for a head of head_dim: n = ceil(head_dim
 * / 2) values into out (caller-owned, n entries), from r's factor (default
 * 8), low_freq_factor (1), high_freq_factor (4),
 * original_max_position_embeddings (8192) and rope_theta (10000), the
 * converter's defaults.  QA_ERR_USAGE when n does not match; QA_ERR_FORMAT
 * when high_freq_factor equals low_freq_factor while a frequency falls
 * between the two wavelengths (the converter would divide by zero).
 */
QA_WARN_UNUSED
enum qa_err qa_rope_llama3(const struct qa_rope_config *r, uint64_t head_dim, float *out, size_t n,
                           struct qa_diag *d);

/*
 * The tensors the converter generates for architecture a (arch.h flags
 * QA_ARCH_ROPE_LLAMA3, QA_ARCH_ROPE_LONG) from config c, in the order it
 * writes them (first in the file, before every converted tensor): *n_out
 * of them (0 when the config asks for none) into out.  On error nothing is
 * left allocated.  Errors (QA_ERR_FORMAT, where the converter itself
 * refuses the config): llama3 scaling without a head size; phi3
 * long_factor without a rope_type, of an unknown rope_type, without a
 * short_factor, or of a length other than rope_dims / 2 (rope_dims =
 * int(partial_rotary_factor * hidden_size) // num_attention_heads);
 * QA_ERR_NOMEM.
 */
QA_WARN_UNUSED
enum qa_err qa_rope_generate(const struct qa_arch *a, const struct qa_model_config *c,
                             struct qa_rope_tensor out[QA_ROPE_MAX_TENSORS], size_t *n_out,
                             struct qa_diag *d);

/* Free the data of n tensors (their structs are the caller's). */
void qa_rope_free(struct qa_rope_tensor *t, size_t n);

#endif
