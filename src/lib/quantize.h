/*
 * quantize.h - the re-quantization engine: a reference checkpoint in, a GGUF
 * byte-identical to what llama-quantize (without an importance matrix)
 * writes out.
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
#include "layout.h"
#include "model.h"
#include "recipe.h"

/* Progress callback: tensor `done` of `total` (named name) has been written. */
typedef void (*qa_progress_fn)(void *ctx, size_t done, size_t total, const char *name);

struct qa_quantize_opts {
	const struct qa_recipe *recipe; /* a llama.cpp file type, or NULL for pure */
	uint32_t pure_type;             /* --type: used when recipe is NULL */
	enum qa_layout layout;          /* applied to quantized 2-D tensors */
	bool allow_invalid;             /* write layouts that change a tensor's size */
	unsigned n_threads;             /* 0: all cores */
	/*
	 * An importance matrix is used: the recipe rules that read it apply,
	 * and the types llama-quantize refuses without one are allowed.
	 */
	bool has_imatrix;
	qa_progress_fn progress;        /* may be NULL */
	void *progress_ctx;
};

/* One tensor of a plan: the reference tensor, its type and the shape written. */
struct qa_quantize_item {
	const struct qa_ref_tensor *tensor;
	struct qa_plan_entry plan;
	uint32_t n_dims;
	uint64_t ne[4];     /* shape recorded in the output */
	uint64_t nbytes;    /* bytes written */
	bool layout_applied;
	bool resized;       /* the layout changed the tensor's byte size */
};

/*
 * The types llama.cpp would give every tensor of r under recipe rec, or
 * under --pure pure_type when rec is NULL, with or without an importance
 * matrix: out receives qa_ref_n_tensors(r) entries, in r's order.  Errors
 * are the recipe's (qa_recipe_plan).
 */
enum qa_err qa_quantize_plan_types(const struct qa_ref *r, const struct qa_recipe *rec,
                                   uint32_t pure_type, bool has_imatrix,
                                   struct qa_plan_entry *out, struct qa_diag *d);

/*
 * Plan the output of quantizing r with o: *out receives a malloc'd array of
 * qa_ref_n_tensors(r) items (free it with free()), and *file_type the
 * general.file_type to write.  Errors: QA_ERR_USAGE for an unsupported pure
 * type, for a plan with a tensor llama-quantize refuses to write without an
 * importance matrix when o->has_imatrix is false, or, unless o->allow_invalid, a layout that changes some tensor's
 * byte size (d names the first such tensor); QA_ERR_UNSUPPORTED when a
 * tensor to quantize is not f32/f16/bf16; the recipe's errors otherwise.
 */
enum qa_err qa_quantize_plan(const struct qa_ref *r, const struct qa_quantize_opts *o,
                             struct qa_quantize_item **out, uint32_t *file_type,
                             struct qa_diag *d);

/*
 * Quantize r into a new GGUF at out_path, written atomically (temporary
 * file, then rename): on any error no file appears at out_path.  Errors:
 * those of qa_quantize_plan; QA_ERR_VALUE naming the tensor and element of
 * the first NaN or infinity; I/O errors of the writer.
 */
enum qa_err qa_quantize_model(struct qa_ref *r, const struct qa_quantize_opts *o,
                              const char *out_path, struct qa_diag *d);

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
enum qa_err qa_quantize_tensor(const float *w, uint64_t in, uint64_t out, uint32_t type,
                               enum qa_layout l, unsigned n_threads, void *dst,
                               struct qa_diag *d);

/*
 * Fail with QA_ERR_VALUE ("tensor NAME (GGUF NAME): element I is nan") when
 * any of t's n_elems values at w is not finite; QA_OK otherwise.
 */
enum qa_err qa_quantize_check_finite(const struct qa_ref_tensor *t, const float *w,
                                     struct qa_diag *d);

#endif
