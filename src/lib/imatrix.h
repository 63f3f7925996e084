/*
 * imatrix.h - importance matrices (llama-imatrix output) and the per-tensor
 * weights llama-quantize --imatrix derives from them.
 *
 * Two file formats exist, and llama-quantize reads both:
 *
 *   GGUF (current)  a GGUF whose tensors come in pairs NAME.in_sum2 (f32,
 *                   ne0 * n_expert sums of squared activations) and
 *                   NAME.counts (f32, n_expert token counts), NAME being the
 *                   model tensor's GGUF name, with the keys
 *                   imatrix.datasets (array of strings), imatrix.chunk_count
 *                   and imatrix.chunk_size (u32), all three required.
 *   legacy (.dat)   little-endian int32 n_entries, then per entry int32
 *                   name length, the name, int32 ncall, int32 nval and nval
 *                   f32 sums (mean * ncall); optionally int32 chunk count,
 *                   int32 dataset length and the dataset name.
 *
 * The weights are normalised as llama-quantize's load_imatrix does, in
 * float: GGUF sums[j*ne0 + i] / count_j per expert j (count_j is the f32
 * count rounded to an integer; a count <= 0 gives weights of 1), legacy
 * sums[i] / ncall (the raw sums when ncall <= 0).  Entries are kept in
 * name order (llama.cpp keeps them in a std::map), and a later legacy entry
 * with the same name replaces an earlier one.
 *
 * A tensor gets weights when an entry has exactly its GGUF name and
 * ne[0] * ne[2] values (expert e of a 3-D tensor uses values
 * [e*ne0, (e+1)*ne0)); no entry means unweighted.  An entry of any other
 * length is an error, except for token_embd.weight, which llama-quantize
 * then quantizes unweighted (qa_imatrix_weights).
 *
 * Ownership: qa_imatrix_open/load return a matrix the caller frees with
 * qa_imatrix_free; every pointer it hands out (entries, names, weights,
 * info strings) lives until then.  The matrix copies what it needs, so the
 * source may be closed after opening.  A matrix is immutable and may be
 * shared by threads.
 */
#ifndef QA_IMATRIX_H
#define QA_IMATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockhash.h"
#include "err.h"
#include "source.h"

struct qa_imatrix;

enum qa_imatrix_format {
	QA_IMATRIX_GGUF,   /* NAME.in_sum2 / NAME.counts tensors */
	QA_IMATRIX_LEGACY  /* the binary .dat format */
};

/* One entry: the weights for one model tensor. */
struct qa_imatrix_entry {
	const char *name;      /* the model tensor's GGUF name (NUL-terminated) */
	uint64_t n_values;     /* ne0 * n_expert */
	uint64_t n_expert;     /* count slots: n_values / n_expert is ne0 (1 for legacy) */
	const float *weights;  /* n_values normalised weights, all finite */
	uint64_t offset;       /* file offset of the entry (its in_sum2 tensor info or legacy record) */
};

struct qa_imatrix_info {
	enum qa_imatrix_format format;
	size_t n_entries;           /* what llama-quantize records as quantize.imatrix.entries_count */
	size_t n_datasets;
	const char *dataset;        /* the first dataset name, NULL when none */
	int32_t chunk_count;        /* imatrix.chunk_count (legacy: the trailer's), 0 when absent;
	                             * llama-quantize records it as chunks_count when > 0 */
	uint32_t chunk_size;        /* imatrix.chunk_size, 0 for legacy */
	uint64_t file_size;
	uint8_t sha256[QA_SHA256_LEN]; /* of the whole file */
};

/*
 * Parse the importance matrix held by src (GGUF when it starts with "GGUF",
 * legacy otherwise) into *out.  Errors: QA_ERR_FORMAT with the offset and
 * the reason for anything malformed or that llama-quantize refuses (no
 * entries, missing imatrix.* metadata in a GGUF matrix, an in_sum2 without
 * its counts or the reverse, non-f32 tensors, a counts tensor whose length
 * does not divide its in_sum2's, truncation); QA_ERR_VALUE (with the
 * offset of the value) when a normalised weight is not finite, as
 * llama-quantize refuses those too; QA_ERR_UNSUPPORTED for what the GGUF
 * reader cannot handle; QA_ERR_NOMEM.  On failure *out is untouched.
 */
QA_WARN_UNUSED
enum qa_err qa_imatrix_open(struct qa_imatrix **out, struct qa_source *src, struct qa_diag *d);

/* Open the file at path and parse it as qa_imatrix_open does (QA_ERR_IO when it cannot be read). */
QA_WARN_UNUSED
enum qa_err qa_imatrix_load(struct qa_imatrix **out, const char *path, struct qa_diag *d);

/* Free m and everything it handed out.  m may be NULL. */
void qa_imatrix_free(struct qa_imatrix *m);

/* Facts about the file (static for the matrix's lifetime). */
const struct qa_imatrix_info *qa_imatrix_info(const struct qa_imatrix *m);

/* The entries in name order; NULL when i is out of range. */
const struct qa_imatrix_entry *qa_imatrix_entry_at(const struct qa_imatrix *m, size_t i);

/* The entry named name, or NULL. */
const struct qa_imatrix_entry *qa_imatrix_find(const struct qa_imatrix *m, const char *name);

/*
 * The weights llama-quantize uses for the tensor named name with
 * ne[0] = ne0 and ne[2] = n_expert (1 for 2-D tensors): *out is set to
 * the entry's ne0 * n_expert weights (expert e at *out + e * ne0), or to
 * NULL when the matrix has no entry for name, or when the entry has the
 * wrong length and name is token_embd.weight (llama-quantize ignores it
 * then).  Any other wrong length is QA_ERR_VALUE naming the entry (with
 * its length and file offset) and the tensor (with its shape).
 */
QA_WARN_UNUSED
enum qa_err qa_imatrix_weights(const struct qa_imatrix *m, const char *name, uint64_t ne0,
                               uint64_t n_expert, const float **out, struct qa_diag *d);

/*
 * The number of entries for which has(ctx, name) is false, i.e. that match
 * no tensor of a model (llama-quantize ignores them but counts them in
 * entries_count); *first (may be NULL) receives the first such name in
 * name order, or NULL.
 */
size_t qa_imatrix_count_unmatched(const struct qa_imatrix *m,
                                  bool (*has)(void *ctx, const char *name), void *ctx,
                                  const char **first);

/* "gguf" or "legacy". */
const char *qa_imatrix_format_name(enum qa_imatrix_format f);

#endif
