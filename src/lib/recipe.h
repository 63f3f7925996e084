/*
 * recipe.h - llama.cpp's choice of a type for every tensor of a model.
 *
 * llama-quantize does not give every tensor the file type's nominal type:
 * it keeps 1-D tensors and norms, raises the output matrix, some attn_v and
 * ffn_down layers and a few others to more bits, and falls back to a
 * block-32 type (or f16) when a row length does not fit.  This module
 * reproduces that choice (llama.cpp's src/llama-quant.cpp of 2026-09) for
 * decoders that are not Falcon and the file types Q4_0 Q4_1 Q5_0 Q5_1
 * Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K,
 * IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ4_NL
 * IQ4_XS TQ1_0 TQ2_0 and MXFP4_MOE, plus llama-quantize --pure, so that an
 * audit can tell which type each tensor of an artifact should have.  The
 * rules that read whether an importance matrix is used, and the
 * mixture-of-experts rules (n_expert), are modelled.  The options of
 * llama-quantize that change types (--pure, --output-tensor-type,
 * --token-embedding-type, --tensor-type, --leave-output-tensor) are modelled
 * by struct qa_recipe_overrides.
 *
 * Recipes are static table entries: pointers returned here live for the
 * whole program and are never freed.
 */
#ifndef QA_RECIPE_H
#define QA_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* One llama.cpp file type ("ftype"); opaque, static. */
struct qa_recipe;

/* Returned by qa_recipe_pure_file_type for types with no file type. */
#define QA_RECIPE_NO_FILE_TYPE UINT32_MAX

/*
 * The recipe called name, compared case-insensitively: "Q4_K_M", "q8_0",
 * ...; the llama-quantize aliases "Q3_K", "Q4_K" and "Q5_K" name the _M
 * variants.  NULL when name is NULL or not one of the supported file types.
 */
const struct qa_recipe *qa_recipe_by_name(const char *name);

/*
 * Whether llama-quantize's --tensor-type pattern matches the tensor name:
 * the pattern lower-cased, then searched anywhere in name as the ECMAScript
 * regular expression std::regex reads.  This build translates what tensor
 * patterns use to POSIX ERE: \d \w \s (also inside brackets; after
 * lower-casing \D \W \S are the same classes, as in llama-quantize),
 * \b (GNU regex), identity escapes of punctuation, "(?:" groups, lazy
 * quantifiers and {n,m}.  QA_ERR_USAGE for a pattern it cannot compile:
 * look-arounds, back-references and escapes such as \x41 \u0041 \t.
 */
enum qa_err qa_recipe_pattern_match(const char *pattern, const char *name, bool *match,
                                    struct qa_diag *d);

/*
 * The recipe a file name announces, as publishers name artifacts
 * ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "model.IQ4_XS.imatrix.gguf"): a
 * recipe name or alias in path's base name (a URL's query ignored),
 * preceded by the start, '.', '-' or '_' and followed by '.' or '-',
 * case-insensitively.  NULL when none, or when two different recipes are
 * named.  A guess: only a digest can confirm it.
 */
const struct qa_recipe *qa_recipe_from_file_name(const char *path);

/*
 * The recipe whose llama_ftype id (the value of general.file_type, e.g.
 * 15 for Q4_K_M) is ftype, or NULL when it is not supported here.
 */
const struct qa_recipe *qa_recipe_by_file_type(uint32_t ftype);

/* The canonical upper-case name of r, e.g. "Q4_K_M". r must not be NULL. */
const char *qa_recipe_name(const struct qa_recipe *r);

/* The llama_ftype id of r. r must not be NULL. */
uint32_t qa_recipe_file_type(const struct qa_recipe *r);

/* The ggml type most tensors of r get (enum qa_type). r must not be NULL. */
uint32_t qa_recipe_default_type(const struct qa_recipe *r);

/*
 * The general.file_type to expect for a --pure file whose tensors are all of
 * ggml type `type`.  llama-quantize writes whatever ftype its command line
 * named, and --pure only uses that ftype's default type, so several ftypes
 * are possible for a k-quant; this returns the natural one: the ftype of
 * that name (q4_0 -> 2, q8_0 -> 7, q6_K -> 18, f16 -> 1, bf16 -> 32,
 * f32 -> 0, q2_K -> 10 (Q2_K), iq4_nl -> 25, ...) and the _M variant for
 * q3_K, q4_K and q5_K (12, 15, 17), which is what the oracle's pure-q4_K
 * artifacts carry.  The i-quants map to the ftype whose default type they
 * are (iq2_s -> 29 IQ2_M, iq3_s -> 26 IQ3_S, iq4_xs -> 30), mxfp4 -> 38.
 * Returns QA_RECIPE_NO_FILE_TYPE for any other type; qa_recipe_plan accepts
 * exactly the pure types for which this is not QA_RECIPE_NO_FILE_TYPE.
 */
uint32_t qa_recipe_pure_file_type(uint32_t type);

/* One tensor of the model, in the order of the file being planned. */
struct qa_plan_tensor {
	const char *name;  /* GGUF name, e.g. "blk.0.attn_v.weight" */
	uint32_t n_dims;   /* 1..4 */
	uint64_t ne[4];    /* ggml order: ne[0] is the row length (HF in-features) */
	uint32_t src_type; /* type in the reference, e.g. f32/f16/bf16 */
};

struct qa_model_shape {
	const char *arch;   /* GGUF or arch.h name: "qwen2", "llama", "gemma3", ... */
	uint32_t n_layer, n_head, n_head_kv;
	bool tied;          /* token_embd doubles as output (no output.weight) */
	/*
	 * Not a property of the weights but read by the same rules: the
	 * quantization uses an importance matrix (llama.cpp's has_imatrix,
	 * which changes attn_v and ffn_down for IQ3_XXS, IQ4_NL, IQ4_XS, Q4_0
	 * and Q5_0).
	 */
	bool has_imatrix;
	uint32_t n_expert;  /* experts per MoE layer; 0 or 1 for a dense model */
};

struct qa_plan_entry {
	uint32_t type;  /* the ggml type llama.cpp writes for the tensor */
	bool quantized; /* the type was chosen by the quantizer (see qa_recipe_plan) */
	char rule[96];  /* short human reason, e.g. "ffn_down use_more_bits(layer 0 of 4) -> q6_K" */
	/*
	 * llama-quantize refuses to write this tensor without an importance
	 * matrix: a quantized iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s or iq3_xxs
	 * tensor other than token_embd and output.
	 */
	bool needs_imatrix;
};

/*
 * Plan the types of the n tensors t[0..n) of one model for recipe r, or for
 * llama-quantize --pure with type pure_type when r is NULL (pure_type is
 * ignored otherwise).  out[i] receives the plan of t[i].  All tensors are
 * planned at once because llama.cpp's counters (attn_v, ffn_down, ffn_gate
 * and ffn_up tensors seen) run over the whole model; they are advanced in llama.cpp's
 * own tensor order (by layer, then by name), whatever the order of t.
 *
 * A tensor is quantized (out[i].quantized true, type chosen by the recipe)
 * when llama.cpp allows it: at least two dimensions larger than 1, a name
 * ending in "weight" that is not a norm ("_norm.weight") and not on
 * llama.cpp's never-quantize list.  Its type may still end up f16 when no
 * quantized type fits the row length.  Other tensors keep what the converter
 * wrote: f32 for 1-D tensors, norms, MoE routers (ffn_gate_inp,
 * ffn_gate_inp_shexp) and names not ending in ".weight", src_type otherwise.
 *
 * The model is treated as tied when it has no "output.weight" tensor, as
 * llama.cpp does; m->tied true with an output.weight present is refused.
 *
 * Returns QA_OK; QA_ERR_USAGE for NULL arguments (t and out may be NULL
 * when n is 0) or an unsupported pure_type; QA_ERR_VALUE for a malformed
 * tensor (NULL name, n_dims outside 1..4, unknown src_type), a tied model
 * with output.weight, or an expert tensor whose layer cannot be read from
 * its name (llama.cpp refuses both); a row length that fits no block ends
 * up f16, as in llama.cpp;
 * QA_ERR_NOMEM when the ordering scratch cannot be allocated.  On error the
 * contents of out are unspecified.
 */
QA_WARN_UNUSED
enum qa_err qa_recipe_plan(const struct qa_recipe *r, uint32_t pure_type,
                           const struct qa_model_shape *m,
                           const struct qa_plan_tensor *t, size_t n,
                           struct qa_plan_entry *out, struct qa_diag *d);

/*
 * One llama-quantize --tensor-type PATTERN=TYPE.  llama.cpp lower-cases the
 * pattern and searches tensor names for it with an ECMAScript regex; here it
 * is compiled (lower-cased) as a POSIX extended regex with \d and \D
 * translated, which agrees for the patterns people write ("attn_v",
 * "blk\.[0-9]+\.ffn_down", "ffn_(up|gate)").  The first pattern found in a
 * name decides its type.
 */
struct qa_recipe_tensor_type {
	const char *pattern;
	uint32_t type;
};

/* The type-changing options of llama-quantize; start from qa_recipe_overrides_init. */
struct qa_recipe_overrides {
	bool pure;                /* --pure: the recipe's default type everywhere */
	bool leave_output;        /* --leave-output-tensor: output.weight keeps its type */
	uint32_t output_type;     /* --output-tensor-type, QA_TYPE_COUNT when not given */
	uint32_t token_embd_type; /* --token-embedding-type, QA_TYPE_COUNT when not given */
	const struct qa_recipe_tensor_type *tensor_types; /* --tensor-type, in order */
	size_t n_tensor_types;
};

/* No overrides: every type QA_TYPE_COUNT, flags false, no patterns. */
void qa_recipe_overrides_init(struct qa_recipe_overrides *o);

/* Whether o changes nothing (NULL does not either). */
bool qa_recipe_overrides_empty(const struct qa_recipe_overrides *o);

/*
 * qa_recipe_plan under llama-quantize's overrides ov (NULL: none), in
 * llama.cpp's order of precedence: a tensor that may not be quantized keeps
 * its type (output.weight too under leave_output); token_embd takes
 * token_embd_type and output.weight output_type, with no fallback; otherwise,
 * when the default type is quantized, the first matching --tensor-type
 * pattern decides, else the recipe's rules unless ov->pure, and the fallback
 * for row lengths applies last.  A manual or pure choice does not advance
 * the recipe's attn_v and ffn_down counters, exactly as in llama.cpp.  With
 * r NULL, pure_type is the type (and ov->pure is implied).  Errors as for
 * qa_recipe_plan, plus QA_ERR_USAGE for a pattern that does not compile.
 */
QA_WARN_UNUSED
enum qa_err qa_recipe_plan_with(const struct qa_recipe *r, uint32_t pure_type,
                                const struct qa_recipe_overrides *ov,
                                const struct qa_model_shape *m,
                                const struct qa_plan_tensor *t, size_t n,
                                struct qa_plan_entry *out, struct qa_diag *d);

#endif
