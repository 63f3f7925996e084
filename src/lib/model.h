/*
 * model.h - format detection, and a reference checkpoint seen in GGUF terms.
 *
 * A reference is what an artifact was quantized from: a safetensors file,
 * a sharded safetensors checkpoint, or a GGUF whose tensors are f32, f16 or
 * bf16.  struct qa_ref hides which: it lists the tensors under their GGUF
 * names with GGUF shapes (ne[0] = in_features, i.e. the HF shape reversed),
 * reads any tensor as f32 in GGUF storage order (applying the llama-family
 * q/k row permutation that llama.cpp's converter applies), and knows the
 * model's dimensions from config.json, the GGUF metadata, or, failing both,
 * the tensor shapes.
 */
#ifndef QA_MODEL_H
#define QA_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"
#include "names.h"
#include "recipe.h"

enum qa_format {
	QA_FORMAT_GGUF = 1,
	QA_FORMAT_SAFETENSORS = 2
};

/*
 * Decide how to read path: a directory or a *.json file is a safetensors
 * checkpoint, a file starting with "GGUF" is GGUF, anything else is tried
 * as safetensors.  Fails with QA_ERR_IO when path cannot be opened.
 */
QA_WARN_UNUSED
enum qa_err qa_format_detect(const char *path, enum qa_format *out,
                             struct qa_diag *d);

/*
 * How a reference tensor is assembled from the source, as llama.cpp's
 * converter assembles the mixture-of-experts tensors (see model.c).
 */
enum qa_ref_assembly {
	QA_REF_DIRECT = 0,  /* one source tensor, read as is (plus perm) */
	QA_REF_STACK,       /* n_parts per-expert 2-D tensors [out, in], stacked in expert order
	                       (qwen2moe/qwen3moe: torch.stack(dim=0)) */
	QA_REF_EXPERT_T,    /* one fused [experts, in, out * stride] tensor, each expert transposed
	                       and every stride-th output (from select) kept (gpt-oss gate_up_proj,
	                       down_proj) */
	QA_REF_SPLIT,       /* one [rows, cols * stride] tensor, every stride-th column (from select)
	                       kept (gpt-oss gate_up_proj_bias) */
	QA_REF_MXFP4,       /* gpt-oss's MXFP4 checkpoint form: *_blocks [E, R, nb, 16] and *_scales
	                       [E, R, nb] (U8), repacked into ggml mxfp4 blocks [nb*32, R/stride, E],
	                       rows select, select + stride, ... of each expert kept (gate_up 0::2 and
	                       1::2, as conversion/gpt_oss.py repack_mxfp4 does) */
	QA_REF_GENERATED    /* no source tensor: f32 values the converter computes from config.json
	                       (rope_freqs, rope_factors_long/short; rope.h), held in values */
};

struct qa_ref_tensor {
	const char *name;      /* GGUF name */
	const char *src_name;  /* name in the source file (HF name for safetensors) */
	const char *src_dtype; /* dtype as the source names it: "BF16", "f32", ... */
	uint32_t src_type;     /* QA_TYPE_F32/F16/BF16, or QA_TYPE_MXFP4 for gpt-oss's MXFP4 experts
	                          (qa_ref_read_raw gives their blocks); QA_TYPE_COUNT when not readable */
	uint32_t n_dims;
	uint64_t ne[4];        /* GGUF order; unused dims are 1 */
	uint64_t n_elems;
	enum qa_names_perm perm; /* row permutation applied by qa_ref_read_f32 */
	bool plus_one;         /* qa_ref_read_f32 adds 1 in f32, as Gemma's converter does to norms */
	size_t src_index;      /* index in the underlying reader (the first part for QA_REF_STACK) */
	enum qa_ref_assembly assembly;
	const size_t *parts;   /* QA_REF_STACK: n_parts reader indices in expert order; else NULL */
	size_t n_parts;
	uint32_t stride, select; /* QA_REF_EXPERT_T, QA_REF_SPLIT, QA_REF_MXFP4: keep element select of
	                            every stride */
	size_t src_scales;     /* QA_REF_MXFP4: reader index of the *_scales tensor */
	const float *values;   /* QA_REF_GENERATED: the n_elems values (owned by the ref); else NULL */
};

struct qa_ref_info {
	char arch[64];         /* GGUF architecture: "qwen2", "llama" (also for mistral), "gemma3", ... */
	char name[128];        /* general.name to write, may be empty */
	uint32_t n_layer, n_head, n_head_kv;
	uint64_t hidden, ffn, context, vocab;
	double rms_eps;
	double rope_theta;
	bool has_rms_eps, has_rope_theta;
	bool tied;             /* no separate output weight */
	uint32_t n_expert;     /* experts per MoE layer (0: dense) */
	uint32_t n_expert_used;/* experts routed per token */
	uint64_t expert_ffn;   /* each expert's intermediate size */
	bool from_config;      /* dims came from config.json or GGUF metadata */
};

struct qa_ref;

/*
 * Open the reference at path (any form qa_format_detect accepts).  For a
 * safetensors checkpoint, config.json chooses the architecture (arch.h);
 * without one, qwen2 (q bias present) or llama is assumed.  Tensors whose
 * HF names the converter drops (rotary inv_freq, Gemma 2's lm_head) are
 * left out.  For a mixture-of-experts safetensors checkpoint (qwen2moe,
 * qwen3moe, gpt-oss)
 * the expert tensors appear as the converter writes them: the per-expert
 * model.layers.L.mlp.experts.X.{gate,up,down}_proj.weight as three 3-D
 * tensors blk.L.ffn_{down,gate,up}_exps.weight (ne = [in, out, experts], in
 * that order, where the layer's last expert tensor was), gpt-oss's fused
 * gate_up_proj [experts, in, 2*ffn] as ffn_gate_exps (outputs 0::2) and
 * ffn_up_exps (1::2), each expert transposed, and its down_proj
 * [experts, ffn, in] transposed per expert, and its published MXFP4 form
 * (mlp.experts.{gate_up,down}_proj_{blocks,scales}, U8) as mxfp4 tensors
 * of the same names and shapes (QA_REF_MXFP4); every expert must be present
 * once with one shape and dtype (QA_ERR_FORMAT otherwise).  The tensors
 * the converter generates from config.json (llama 3.1+'s rope_freqs, phi3's
 * rope_factors_long/short; rope.h) come first, as QA_REF_GENERATED f32
 * tensors.  For gemma3, token_embd has the rows the converter keeps: the
 * first vocab_size (config.json) when a tokenizer.model is beside it, else
 * len(model.vocab) + len(added_tokens) of tokenizer.json; with neither it
 * is left whole and its src_name says so.  The returned
 * ref owns its readers and sources; free it with qa_ref_close().  Errors:
 * those of the readers; QA_ERR_USAGE when config.json names an
 * architecture arch.h does not know (the message lists the known ones);
 * QA_ERR_FORMAT when two source tensors map to one GGUF name, a
 * llama-family checkpoint lacks the head counts its q/k permutation needs,
 * config.json's rope_scaling is one the converter refuses (rope.h), a
 * gemma3 tokenizer.json is malformed, or a gemma3 tokenizer.model comes
 * without config.json's vocab_size (the size would need the SentencePiece
 * model, which is not read).
 */
QA_WARN_UNUSED
enum qa_err qa_ref_open(struct qa_ref **out, const char *path, struct qa_diag *d);
void qa_ref_close(struct qa_ref *r);

enum qa_format qa_ref_format(const struct qa_ref *r);
const char *qa_ref_path(const struct qa_ref *r);
size_t qa_ref_n_tensors(const struct qa_ref *r);
/* Tensors in source order; pointers live until qa_ref_close. */
const struct qa_ref_tensor *qa_ref_tensor_at(const struct qa_ref *r, size_t i);
/* Lookup by GGUF name; NULL when absent. */
const struct qa_ref_tensor *qa_ref_tensor_find(const struct qa_ref *r, const char *gguf_name);
const struct qa_ref_info *qa_ref_info(const struct qa_ref *r);

/* The model shape the recipes need (arch points into r). */
void qa_ref_model_shape(const struct qa_ref *r, struct qa_model_shape *out);

/*
 * Read tensor t as n_elems floats into dst (caller-owned) in GGUF storage
 * order.  Safe to call from several threads at once.  Fails with
 * QA_ERR_UNSUPPORTED for dtypes that are not f32/f16/bf16, and with the
 * readers' errors.  Values are not checked for finiteness here.
 */
QA_WARN_UNUSED
enum qa_err qa_ref_read_f32(struct qa_ref *r, const struct qa_ref_tensor *t,
                            float *dst, struct qa_diag *d);

/*
 * Whether t is stored quantized in the reference (gpt-oss's MXFP4 experts,
 * from safetensors or a converted GGUF): llama-quantize then copies its
 * bytes when the target type is t->src_type, and refuses any other target
 * unless told --allow-requantize.
 */
bool qa_ref_tensor_quantized(const struct qa_ref_tensor *t);

/*
 * Read rows [row0, row0 + n_rows) of a quantized tensor t (a row is ne[0]
 * values) in t->src_type's block encoding into dst (n_rows row sizes of
 * that type): for QA_REF_MXFP4 the repacked ggml blocks (scale byte, then
 * 16 bytes holding value j in the low and value j + 16 in the high nibble
 * of byte j), for a GGUF tensor its stored bytes.  The bytes are those
 * llama.cpp's converter writes.  QA_ERR_USAGE when t is not quantized or
 * the range is outside it; the readers' errors.  Safe from several threads.
 */
QA_WARN_UNUSED
enum qa_err qa_ref_read_raw(struct qa_ref *r, const struct qa_ref_tensor *t, uint64_t row0,
                            uint64_t n_rows, void *dst, struct qa_diag *d);

/*
 * The row granularity of qa_ref_read_rows_f32 for t (a row is ne[0]
 * values): 1, or the rows of one head when t's rows are permuted within
 * heads (llama q/k from safetensors), since a head is permuted as a whole.
 */
uint64_t qa_ref_row_align(const struct qa_ref *r, const struct qa_ref_tensor *t);

/*
 * Read rows [row0, row0 + n_rows) of t (a row is ne[0] values, the rows of
 * all higher dimensions counted in storage order) as floats into dst, the
 * same values qa_ref_read_f32 puts at dst[row0 * ne[0] ...].  row0 and
 * n_rows must be multiples of qa_ref_row_align (QA_ERR_USAGE otherwise).
 * The source bytes are copied out of the file a chunk at a time
 * (qa_source_read), so a caller that walks a tensor in windows holds only
 * its window in memory.
 * Safe to call from several threads at once; errors as qa_ref_read_f32.
 */
enum qa_err qa_ref_read_rows_f32(struct qa_ref *r, const struct qa_ref_tensor *t,
                                 uint64_t row0, uint64_t n_rows, float *dst,
                                 struct qa_diag *d);

/*
 * Read n_elems floats of tensor t starting at element first into dst, as
 * qa_ref_read_f32 would place them at dst - first.  Only for tensors whose
 * perm is QA_PERM_NONE and whose assembly is QA_REF_DIRECT or QA_REF_STACK
 * (QA_ERR_USAGE otherwise, and for a range outside the tensor).  Lets a caller stream a large tensor through a small window.
 */
enum qa_err qa_ref_read_f32_range(struct qa_ref *r, const struct qa_ref_tensor *t, uint64_t first,
                                  size_t n_elems, float *dst, struct qa_diag *d);

/*
 * Write the metadata a quantized GGUF of this reference starts from: for a
 * GGUF reference every pair of the source, in the source's order (as
 * llama-quantize copies them; the caller then moves or replaces the keys it
 * sets); for safetensors quantaudit's own minimal set: general.architecture
 * and general.name and the architecture's dimension keys.
 */
QA_WARN_UNUSED
enum qa_err qa_ref_write_metadata(const struct qa_ref *r, struct qa_gguf_writer *w,
                                  struct qa_diag *d);

/* The GGUF reader of a GGUF reference (borrowed, lives until qa_ref_close),
 * NULL for safetensors. */
struct qa_gguf *qa_ref_gguf(const struct qa_ref *r);

/* The source's shard sources (1 for a single file); used to hash inputs. */
size_t qa_ref_n_sources(const struct qa_ref *r);
struct qa_source *qa_ref_source(const struct qa_ref *r, size_t i);

/*
 * QA_OK when r can serve as a reference: a GGUF reference must hold only
 * f32, f16 or bf16 tensors, or mxfp4 expert tensors of gpt-oss (as the
 * converter writes its MXFP4 checkpoint).  Otherwise QA_ERR_USAGE "a
 * reference must hold f32/f16/bf16 weights (tensor 'NAME' is TYPE)": auditing a quantized file
 * against itself (or another quantized file) would compare nothing.
 */
QA_WARN_UNUSED
enum qa_err qa_ref_require_float(const struct qa_ref *r, struct qa_diag *d);

#endif
