/*
 * quantize.h - the re-quantization engine: a reference checkpoint in, a GGUF
 * byte-identical to what llama-quantize (with or without an importance
 * matrix) writes out.
 *
 * From a GGUF reference the whole file is llama-quantize's: the reference's
 * metadata in its order with general.quantization_version and
 * general.file_type moved to the end, split.* removed, --override-kv and the
 * quantize.imatrix.* keys appended; the tensors in llama.cpp's weight order
 * (order.h) with trailing dimensions of 1 dropped; unchanged tensors copied
 * byte for byte; everything padded to 32 bytes.  From safetensors the
 * tensors and their order are the same, and the metadata is quantaudit's own
 * minimal set (model.h).
 *
 * The engine walks the reference tensor by tensor: it reads one tensor as
 * f32, refuses non-finite values, cuts it into rows under the requested
 * layout and quantizes the rows on a pool of threads, then streams the bytes
 * into the output.  Peak memory is one tensor's floats plus its quantized
 * bytes, never the model.  The same per-tensor routine serves the audits
 * (diff, shape-swap), which quantize into memory and hash instead of
 * writing.
 */
#ifndef QA_QUANTIZE_H
#define QA_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"
#include "imatrix.h"
#include "layout.h"
#include "model.h"
#include "recipe.h"

/* Progress callback: tensor `done` of `total` (named name) has been written. */
typedef void (*qa_progress_fn)(void *ctx, size_t done, size_t total, const char *name);

/* One llama-quantize --override-kv KEY=TYPE:VALUE. */
enum qa_kv_override_tag { QA_KVO_INT, QA_KVO_FLOAT, QA_KVO_BOOL, QA_KVO_STR };

struct qa_kv_override {
	char key[128];
	enum qa_kv_override_tag tag;
	int64_t i;          /* written as u32 |i|, as llama-quantize does */
	double f;           /* written as f32 */
	bool b;
	char str[128];      /* at most 127 bytes */
};

/*
 * Parse "KEY=int:N", "KEY=float:X", "KEY=bool:true|false" or "KEY=str:S" as
 * llama.cpp's string_parse_kv_override does (key below 128 bytes, string
 * value at most 127), except that numbers must be whole: "int:12abc" is
 * refused rather than read as 12.  QA_ERR_USAGE with the reason otherwise.
 */
QA_WARN_UNUSED
enum qa_err qa_kv_override_parse(const char *arg, struct qa_kv_override *out,
                                 struct qa_diag *d);

/* The GGUF value an override writes (strings borrow from o). */
void qa_kv_override_value(const struct qa_kv_override *o, struct qa_gguf_value *out);

struct qa_quantize_opts {
	const struct qa_recipe *recipe; /* a llama.cpp file type, or NULL for pure */
	uint32_t pure_type;             /* --type: used when recipe is NULL */
	const struct qa_recipe_overrides *overrides;  /* type options, NULL: none */
	const struct qa_kv_override *kv_overrides;    /* --override-kv, in order */
	size_t n_kv_overrides;
	qa_gguf_tap_fn tap;             /* sees every output byte (may be NULL) */
	void *tap_ctx;
	enum qa_layout layout;          /* applied to quantized 2-D tensors */
	bool allow_invalid;             /* write layouts that change a tensor's size */
	unsigned n_threads;             /* 0: all cores */
	qa_progress_fn progress;        /* may be NULL */
	void *progress_ctx;
	/*
	 * llama-quantize --imatrix: the matrix (borrowed, NULL for none) and
	 * the file name as the user gave it, which the output records in
	 * quantize.imatrix.file.  Tensors with an entry are quantized with its
	 * weights, the others unweighted; the recipe sees has_imatrix.
	 */
	const struct qa_imatrix *imatrix;
	const char *imatrix_file;
};

/* One tensor of a plan: the reference tensor, its type and the shape written. */
struct qa_quantize_item {
	const struct qa_ref_tensor *tensor;
	struct qa_plan_entry plan;
	uint32_t n_dims;    /* as written: trailing dimensions of 1 dropped */
	uint64_t ne[4];     /* shape recorded in the output */
	uint64_t nbytes;    /* bytes written */
	bool layout_applied;
	bool resized;       /* the layout changed the tensor's byte size */
	bool copied;        /* GGUF reference, type unchanged: bytes copied as they are */
};

/*
 * The types llama.cpp would give every tensor of r under recipe rec, or
 * under --pure pure_type when rec is NULL, with or without an importance
 * matrix (has_imatrix): out receives qa_ref_n_tensors(r) entries, in r's
 * order.  Errors are the recipe's (qa_recipe_plan).
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_plan_types(const struct qa_ref *r, const struct qa_recipe *rec,
                                   uint32_t pure_type, bool has_imatrix,
                                   struct qa_plan_entry *out, struct qa_diag *d);

/*
 * The same under llama-quantize's type options ov (NULL: none); for a GGUF
 * reference a tensor that is not quantized keeps the reference's type.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_plan_types_with(const struct qa_ref *r, const struct qa_recipe *rec,
                                        uint32_t pure_type, bool has_imatrix,
                                        const struct qa_recipe_overrides *ov,
                                        struct qa_plan_entry *out, struct qa_diag *d);

/*
 * Plan the output of quantizing r with o: *out receives a malloc'd array of
 * qa_ref_n_tensors(r) items in the order they are written (llama.cpp's
 * weight order; free it with free()), and *file_type the
 * general.file_type to write.  Errors: QA_ERR_USAGE for an unsupported pure
 * type, for a plan with a tensor llama-quantize refuses to write without an
 * importance matrix when o->imatrix is NULL, or, unless o->allow_invalid, a
 * layout that changes some tensor's byte size (d names the first such
 * tensor); QA_ERR_UNSUPPORTED when a
 * tensor to quantize is not f32/f16/bf16; the recipe's errors otherwise.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_plan(const struct qa_ref *r, const struct qa_quantize_opts *o,
                             struct qa_quantize_item **out, uint32_t *file_type,
                             struct qa_diag *d);

/*
 * Check o->imatrix (when set) against the plan of r under o before any
 * work: every tensor to be quantized whose entry has the wrong length is
 * QA_ERR_VALUE naming both (qa_imatrix_weights).  *unmatched receives the
 * number of entries that name no tensor of r and *first_unmatched (may be
 * NULL) the first of them, or NULL.  Errors of qa_quantize_plan otherwise.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_check_imatrix(const struct qa_ref *r, const struct qa_quantize_opts *o,
                                      size_t *unmatched, const char **first_unmatched,
                                      struct qa_diag *d);

/*
 * Quantize r into a new GGUF at out_path, written atomically (temporary
 * file, then rename): on any error no file appears at out_path.  out_path
 * may be NULL when o->tap is set: the file then only streams through the
 * tap.  Errors: those of qa_quantize_plan; QA_ERR_VALUE naming the tensor
 * and element of the first NaN or infinity; the tap's; I/O errors of the
 * writer.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_model(struct qa_ref *r, const struct qa_quantize_opts *o,
                              const char *out_path, struct qa_diag *d);

/*
 * As qa_quantize_model, and when located is not NULL and the file was
 * written (or streamed), call located(ctx, w) with the committed writer
 * before it is freed, so that the caller can name regions of the file
 * (qa_gguf_writer_locate).  Also called after a tap error, so that the tap's
 * stop can be located.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_model_located(struct qa_ref *r, const struct qa_quantize_opts *o,
                                      const char *out_path,
                                      void (*located)(void *ctx, const struct qa_gguf_writer *w),
                                      void *ctx, struct qa_diag *d);

/* One metadata pair of a planned file; key and value borrow from the
 * reference and the options. */
struct qa_quantize_kv {
	const char *key;
	struct qa_gguf_value value;
};

/*
 * The metadata llama-quantize writes from GGUF reference r with options o
 * and general.file_type ftype, in file order: *out receives a malloc'd
 * array of *n pairs (free() it) that borrow from r and o, which must
 * outlive it.  QA_ERR_USAGE for a safetensors reference.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_kv_plan(const struct qa_ref *r, const struct qa_quantize_opts *o,
                                uint32_t ftype, struct qa_quantize_kv **out, size_t *n,
                                struct qa_diag *d);

/*
 * Bytes that a tensor of ne[0] = in and `out` rows takes as type under
 * layout l, with rows zero-padded to whole blocks; false on overflow or
 * when type is unknown.
 */
bool qa_quantize_nbytes(uint32_t type, uint64_t in, uint64_t out, enum qa_layout l,
                        uint64_t *nbytes);

/*
 * Quantize w (out rows of in floats, row-major) as type under layout l into
 * dst, which must hold qa_quantize_nbytes() bytes, on n_threads threads.
 * The values must be finite.  Returns QA_ERR_USAGE for a type that cannot be
 * produced, QA_ERR_NOMEM when a row buffer cannot be allocated.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_tensor(const float *w, uint64_t in, uint64_t out, uint32_t type,
                               enum qa_layout l, unsigned n_threads, void *dst,
                               struct qa_diag *d);

/*
 * Importance weights for one tensor, borrowed for the call: n_expert * row_len
 * floats, expert e's at qw + e * row_len (qa_imatrix_weights gives them).
 * row_len is the row length llama-quantize saw: the tensor's declared ne[0].
 */
struct qa_quantize_weights {
	const float *qw;
	uint64_t row_len;
	uint64_t n_expert; /* 1 (or 0) for 2-D tensors; rows split evenly between experts */
};

/*
 * qa_quantize_tensor with importance weights, as llama-quantize --imatrix
 * quantizes: the values of w under layout l, laid end to end, are cut into
 * rows of wt->row_len and quantized with the type's weighted path
 * (quantize_rows), row r taking expert r / (rows / n_expert)'s weights.
 * Under out,in that is w's own rows; under another layout it is what an
 * exporter that wrote that layout under the declared shape would have made.
 * When wt is NULL or wt->qw is NULL, or ggml ignores weights for the type
 * (q8_0, f16, ...), this is exactly qa_quantize_tensor, except for a type
 * that only has the weighted path (iq2_xxs, ...: quantize_rows with no
 * weights, row by row of the layout).  Errors: those of
 * qa_quantize_tensor; QA_ERR_UNSUPPORTED when the layout pads rows or the
 * values do not cut into whole rows of row_len (a multiple of the block),
 * split evenly between experts; QA_ERR_NOMEM.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_tensor_weighted(const float *w, uint64_t in, uint64_t out, uint32_t type,
                                        enum qa_layout l, const struct qa_quantize_weights *wt,
                                        unsigned n_threads, void *dst, struct qa_diag *d);

/*
 * Fail with QA_ERR_VALUE ("tensor NAME (GGUF NAME): element I is nan") when
 * any of t's n_elems values at w is not finite; QA_OK otherwise.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_check_finite(const struct qa_ref_tensor *t, const float *w,
                                     struct qa_diag *d);

/*
 * Re-quantize reference tensor t of r (read as f32, non-finite values
 * refused) under each of the n types at types, on the calling thread and in
 * llama-quantize's out-major layout, and dequantize it back: sq[k] receives
 * the sum over elements of (dequantized - original)^2 in double, and, when
 * bits is not NULL, bits[k] the quantized size in bits.  Entry k is skipped
 * (sq[k] and bits[k] untouched) when measure is not NULL and measure[k] is
 * false.  With im, the matrix's weights for t apply (qa_imatrix_weights).
 * Memory: t's floats twice and one quantized copy, freed before return.
 * Errors: the reader's; QA_ERR_VALUE for a non-finite weight or a matrix
 * entry that does not fit; QA_ERR_UNSUPPORTED when a type cannot be
 * produced or dequantized; QA_ERR_NOMEM; the quantizer's.
 */
QA_WARN_UNUSED
enum qa_err qa_quantize_sq_error(struct qa_ref *r, const struct qa_ref_tensor *t,
                                 const struct qa_imatrix *im, const uint32_t *types,
                                 const bool *measure, size_t n, double *sq, double *bits,
                                 struct qa_diag *d);

#endif
