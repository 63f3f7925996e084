/*
 * safetensors.h - reading reference checkpoints in the safetensors format.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of
 * JSON naming every tensor's dtype, shape and byte range, then the tensor
 * data.  A checkpoint may be one such file or several shards tied together
 * by a "model.safetensors.index.json" whose weight_map names the shard of
 * every tensor.  This module opens either form, validates every header
 * completely before anything is returned (files are hostile input), and
 * reads tensor data through struct qa_source, so that the same code works on
 * mapped files, memory buffers and remote sources.
 *
 * Every malformed-input error is QA_ERR_FORMAT with the absolute byte offset
 * in the offending file: the opening quote of the tensor's key for problems
 * with one tensor entry, the position jansson reports (plus 8) for JSON
 * syntax errors, and 0 for a bad header length.
 */
#ifndef QA_SAFETENSORS_H
#define QA_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "source.h"
#include "types.h"

/* Largest header (and index file) accepted: 100 MB, as the reference reader. */
#define QA_ST_MAX_HEADER 100000000u

/* Most dimensions a tensor may have. */
#define QA_ST_MAX_DIMS 8

/* One checkpoint, possibly made of many shards.  Opaque. */
struct qa_st;

/*
 * One tensor as the header describes it.  All pointers live as long as the
 * struct qa_st it came from.
 */
struct qa_st_tensor {
	const char *name;
	const char *dtype;      /* "F32", "BF16", ... (static string) */
	uint32_t n_dims;        /* 0 for a scalar */
	uint64_t shape[QA_ST_MAX_DIMS]; /* file order, i.e. HF [out, in]; unused dims 0 */
	uint64_t n_elems;       /* product of shape (1 for a scalar) */
	uint64_t begin, end;    /* byte range relative to the shard's data start */
	uint64_t data_offset;   /* absolute offset of the first byte in its shard file */
	uint32_t shard;         /* index of the shard holding the data */
};

/*
 * Open a checkpoint at path, which may be (a) a single .safetensors file,
 * (b) an index json (any path ending in ".json") whose weight_map names
 * shard files in the same directory, or (c) a directory holding an index
 * json ("model.safetensors.index.json", or exactly one *.safetensors.index.json)
 * or exactly one *.safetensors file.
 *
 * Every shard header is parsed and validated, and the shards are checked
 * against the weight_map: each tensor must be in the shard the weight_map
 * names, every weight_map entry must exist, no tensor may appear in two
 * shards, and shard names must be plain file names (no '/', '\\', "." or
 * "..").  Shards are ordered by file name.
 *
 * On success *out is a checkpoint the caller frees with qa_st_close().  On
 * failure *out is untouched and d is set; when the offending file is not
 * path itself (a shard or the index of a directory), d->msg starts with that
 * file's path and ": ".  Errors: QA_ERR_IO (cannot open/read, no
 * safetensors file in the directory), QA_ERR_FORMAT (malformed file,
 * inconsistent shards, or an ambiguous directory), QA_ERR_NOMEM.
 */
QA_WARN_UNUSED
enum qa_err qa_st_open(struct qa_st **out, const char *path, struct qa_diag *d);

/*
 * Open a single safetensors file from src, which is borrowed: it must stay
 * open until qa_st_close() and is not closed by it.  The checkpoint has one
 * shard whose path is the source's name and no directory (qa_st_dir()
 * returns NULL).  Errors as qa_st_open().
 */
QA_WARN_UNUSED
enum qa_err qa_st_open_source(struct qa_st **out, struct qa_source *src,
                              struct qa_diag *d);

/* Free st, its owned sources and every pointer it handed out.  NULL is fine. */
void qa_st_close(struct qa_st *st);

/*
 * Tensor count, and the tensor at i (NULL when i is out of range).  The
 * order is deterministic: shards in order, and within a shard by ascending
 * data_offsets (ties by name).
 */
size_t qa_st_n_tensors(const struct qa_st *st);
const struct qa_st_tensor *qa_st_tensor_at(const struct qa_st *st, size_t i);

/* The tensor called name, or NULL; a binary search, O(log n). */
const struct qa_st_tensor *qa_st_tensor_find(const struct qa_st *st,
                                             const char *name);

/*
 * Metadata entries: for a sharded checkpoint first the index's "metadata"
 * object (string values verbatim, other JSON values as compact JSON text),
 * then the keys of the first shard's "__metadata__" that the index did not
 * already give; for a single file its
 * "__metadata__", in file order.  qa_st_metadata_at stores borrowed
 * pointers (living as long as st) and returns true, or returns false when i
 * is out of range.
 */
size_t qa_st_n_metadata(const struct qa_st *st);
bool qa_st_metadata_at(const struct qa_st *st, size_t i, const char **key,
                       const char **value);

/*
 * Shards: their count; the path (or source name) of shard i; its source,
 * borrowed from st; and the header size 8 + N, the bytes before its data.
 * Out-of-range i gives NULL or 0.
 */
size_t qa_st_n_shards(const struct qa_st *st);
const char *qa_st_shard_path(const struct qa_st *st, uint32_t i);
struct qa_source *qa_st_shard_source(const struct qa_st *st, uint32_t i);
uint64_t qa_st_header_len(const struct qa_st *st, uint32_t shard);

/*
 * The directory holding the checkpoint (where config.json would be), owned
 * by st; "." for a bare file name; NULL for qa_st_open_source().
 */
const char *qa_st_dir(const struct qa_st *st);

/*
 * Point *out at the raw bytes of t (end - begin bytes, file byte order).
 * When the shard's source cannot lend memory, the bytes are read into a
 * buffer owned by st.  Either way *out lives until qa_st_close().  Errors:
 * QA_ERR_USAGE when t does not describe data in st's shards, or what the
 * source reports.
 */
QA_WARN_UNUSED
enum qa_err qa_st_tensor_view(struct qa_st *st, const struct qa_st_tensor *t,
                              const void **out, struct qa_diag *d);

/*
 * Convert n_elems elements of t starting at element first_elem (in file
 * order, row-major) to f32 in dst.  F32 is copied, F16 and BF16 are widened
 * exactly.  Other dtypes fail with QA_ERR_UNSUPPORTED ("dtype I8 cannot be
 * quantized"); a range outside the tensor fails with QA_ERR_USAGE; source
 * failures are passed on.
 */
QA_WARN_UNUSED
enum qa_err qa_st_tensor_read_f32(struct qa_st *st, const struct qa_st_tensor *t,
                                  uint64_t first_elem, size_t n_elems,
                                  float *dst, struct qa_diag *d);

/*
 * Bytes per element of a safetensors dtype name (exact, case-sensitive:
 * F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2
 * F8_E8M0 C64), or 0 for an unknown name.  Sub-byte dtypes (F4, F6_*) are
 * not known.
 */
int qa_st_dtype_size(const char *dtype);

/* True for the dtypes qa_st_tensor_read_f32 converts: F32, F16, BF16. */
bool qa_st_dtype_is_float(const char *dtype);

/* The ggml type of those dtypes (QA_TYPE_F32, QA_TYPE_F16, QA_TYPE_BF16),
 * or QA_TYPE_COUNT for any other dtype or NULL. */
uint32_t qa_st_dtype_type(const char *dtype);

#endif
