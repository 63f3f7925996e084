/*
 * gguf.h - reading and writing GGUF files (ggml's model container).
 *
 * The reader parses GGUF version 2 and 3 headers from any struct qa_source
 * and treats every byte as hostile: each structural problem (truncation,
 * impossible counts, unknown types, misaligned or overlapping tensor data,
 * duplicate names ...) is refused with QA_ERR_FORMAT, the absolute byte
 * offset of the offending field and a lowercase reason.  Only the header is
 * copied into memory (through qa_source_read, growing the copy as needed, so
 * the source need not be mapped); tensor data stays in the source and is
 * reached with qa_gguf_tensor_view() or qa_gguf_tensor_read().
 *
 * The writer streams a GGUF version 3 file: the caller declares metadata and
 * tensor shapes, writes the header, then streams each tensor's bytes in the
 * declared order.  Output goes to a temporary file beside the destination
 * which only qa_gguf_writer_commit() renames into place, so a failed or
 * abandoned write never leaves a half-written file under the final name.
 */
#ifndef QA_GGUF_H
#define QA_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "source.h"

/* Metadata value types, numbered as in the file format. */
enum qa_gguf_vtype {
	QA_GGUF_U8 = 0,
	QA_GGUF_I8 = 1,
	QA_GGUF_U16 = 2,
	QA_GGUF_I16 = 3,
	QA_GGUF_U32 = 4,
	QA_GGUF_I32 = 5,
	QA_GGUF_F32 = 6,
	QA_GGUF_BOOL = 7,
	QA_GGUF_STRING = 8,
	QA_GGUF_ARRAY = 9,
	QA_GGUF_U64 = 10,
	QA_GGUF_I64 = 11,
	QA_GGUF_F64 = 12
};

/* Deepest nesting of arrays inside arrays that the reader and writer accept
 * (an array of scalars has depth 1). */
#define QA_GGUF_MAX_ARRAY_DEPTH 8

/* The largest GGUF header (metadata and tensor infos) the reader accepts: a
 * longer one is refused with QA_ERR_FORMAT, so that memory stays bounded
 * whatever a header claims.  Real headers (tokenizers of 256k tokens
 * included) stay far below it. */
#define QA_GGUF_MAX_HEADER_BYTES ((uint64_t)64 << 20)

/* Alignment of the data section and of each tensor when general.alignment
 * is absent. */
#define QA_GGUF_DEFAULT_ALIGNMENT 32

/*
 * One metadata value.  Unsigned integer types live in v.u, signed ones in
 * v.i, F32 and F64 in v.f (F32 widened exactly), BOOL in v.b.  A string's
 * ptr is NUL-terminated for convenience but may hold embedded NULs: len is
 * authoritative.  An array holds count items, each of type elem_type (an
 * array of arrays has items of type QA_GGUF_ARRAY, each with its own
 * elem_type).  Either items lists them, or, for arrays of fixed-size scalars
 * read from a file, raw holds them packed as in the file (count times the
 * element size, little-endian) and items is NULL; qa_gguf_array_get reads
 * item i either way.  Both are NULL when count is 0.
 */
struct qa_gguf_value {
	uint32_t type;
	union {
		uint64_t u;
		int64_t i;
		double f;
		bool b;
		struct {
			const char *ptr;
			uint64_t len;
		} str;
		struct {
			uint32_t elem_type;
			uint64_t count;
			struct qa_gguf_value *items;
			const void *raw;
		} arr;
	} v;
};

/* A metadata key-value pair. */
struct qa_gguf_kv {
	const char *key;            /* NUL-terminated, but may hold NULs: key_len is authoritative */
	uint64_t key_len;
	struct qa_gguf_value value;
	uint64_t offset;            /* absolute offset of the kv in the file */
};

/* A tensor's description from the header. */
struct qa_gguf_tensor {
	const char *name;     /* NUL-terminated, but may hold NULs: name_len is authoritative */
	uint64_t name_len;
	uint32_t n_dims;      /* 1..4 */
	uint64_t ne[4];       /* elements per dimension, ne[0] fastest; unused dims are 1 */
	uint32_t type;        /* ggml type id; qa_type_get(type) is never NULL */
	uint64_t offset;      /* start of the data, relative to the data section */
	uint64_t nbytes;      /* size of the data (unpadded) */
	uint64_t n_elems;     /* product of ne, at most INT64_MAX */
	uint64_t info_offset; /* absolute offset of its tensor info in the file */
};

/* ------------------------------------------------------------------ */
/* Reader                                                              */
/* ------------------------------------------------------------------ */

struct qa_gguf;

/*
 * Parse the GGUF header of src and store a new reader in *out.  The reader
 * borrows src, which must stay open until qa_gguf_close().  Every pointer
 * the reader hands out (keys, names, values, kv and tensor records) lives
 * until qa_gguf_close().
 *
 * Errors: QA_ERR_FORMAT for a malformed header (d holds the absolute offset
 * of the offending field and the reason); QA_ERR_UNSUPPORTED for GGUF
 * version 1 and byte-swapped (big-endian) files; QA_ERR_NOMEM; and whatever
 * the source reports while reading.  Tensors of ggml types that this build
 * cannot decode are not errors.  On failure *out is left untouched.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_open(struct qa_gguf **out, struct qa_source *src,
                         struct qa_diag *d);

/* Free the reader and everything it handed out (not the source).  g may be NULL. */
void qa_gguf_close(struct qa_gguf *g);

/* The file's GGUF version: 2 or 3. */
uint32_t qa_gguf_version(const struct qa_gguf *g);

/* The alignment in effect: general.alignment, or 32 when absent. */
uint32_t qa_gguf_alignment(const struct qa_gguf *g);

/* Absolute file offset of the data section (header end rounded up to the
 * alignment).  Tensor offsets are relative to it. */
uint64_t qa_gguf_data_offset(const struct qa_gguf *g);

/* Number of metadata pairs, and the i-th one in file order (NULL when i is
 * out of range). */
size_t qa_gguf_n_kv(const struct qa_gguf *g);
const struct qa_gguf_kv *qa_gguf_kv_at(const struct qa_gguf *g, size_t i);

/*
 * Item i of the array value arr (packed or listed) into *out; false when arr
 * is not an array or i is out of range.  A string or array item in *out
 * borrows from arr.
 */
bool qa_gguf_array_get(const struct qa_gguf_value *arr, uint64_t i, struct qa_gguf_value *out);

/* The pair whose key equals key byte for byte, or NULL (hashed lookup). */
const struct qa_gguf_kv *qa_gguf_kv_find(const struct qa_gguf *g, const char *key);

/* Number of tensors, and the i-th one in file order (NULL when out of range). */
size_t qa_gguf_n_tensors(const struct qa_gguf *g);
const struct qa_gguf_tensor *qa_gguf_tensor_at(const struct qa_gguf *g, size_t i);

/* The tensor named name, or NULL (hashed lookup). */
const struct qa_gguf_tensor *qa_gguf_tensor_find(const struct qa_gguf *g,
                                                 const char *name);

/*
 * Borrow the nbytes of tensor t (which must come from g) without copying:
 * *out points into the source and lives until the source is closed.
 * Sources that cannot lend memory fail with QA_ERR_UNSUPPORTED; use
 * qa_gguf_tensor_read() then.  A tensor larger than the address space fails
 * with QA_ERR_UNSUPPORTED.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_tensor_view(struct qa_gguf *g, const struct qa_gguf_tensor *t,
                                const void **out, struct qa_diag *d);

/*
 * Copy len bytes starting off bytes into tensor t's data into buf.  A range
 * reaching past the tensor's nbytes is QA_ERR_USAGE; source failures are
 * passed on.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_tensor_read(struct qa_gguf *g, const struct qa_gguf_tensor *t,
                                uint64_t off, size_t len, void *buf,
                                struct qa_diag *d);

/* The source g reads from (borrowed, as given to qa_gguf_open). */
struct qa_source *qa_gguf_source(const struct qa_gguf *g);

/*
 * Look up key and, when it holds an integer of any width and signedness
 * whose value is not negative, store it in *out and return true.  Returns
 * false (leaving *out alone) when the key is absent, not an integer, or
 * negative.
 */
bool qa_gguf_get_u64(const struct qa_gguf *g, const char *key, uint64_t *out);

/* The string held by key, or NULL when absent or not a string.  Lives until
 * qa_gguf_close(). */
const char *qa_gguf_get_str(const struct qa_gguf *g, const char *key);

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

struct qa_gguf_writer;

/*
 * Start writing a GGUF v3 file that will appear at dest_path on commit.
 * Creates dest_path.tmp.XXXXXX in the same directory (QA_ERR_IO when that
 * fails).  The writer is owned by the caller and freed with
 * qa_gguf_writer_free().
 *
 * Protocol: add kvs and tensors (in the order they shall appear), call
 * qa_gguf_writer_begin_data() once, write every tensor's bytes in declared
 * order with qa_gguf_writer_write(), then qa_gguf_writer_commit().  Calls
 * out of order fail with QA_ERR_USAGE.  After any I/O error the writer is
 * poisoned: further calls fail and only qa_gguf_writer_free() is useful.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_open(struct qa_gguf_writer **out, const char *dest_path,
                                struct qa_diag *d);

/*
 * Add metadata key with value v, deep-copied (strings, arrays and nested
 * arrays), so the caller keeps ownership of v.  QA_ERR_USAGE for a
 * duplicate key, an unknown type, an array whose items do not match its
 * elem_type, arrays nested deeper than QA_GGUF_MAX_ARRAY_DEPTH, or a
 * general.alignment that is not a nonzero power-of-two U32.  A valid
 * general.alignment sets the alignment of the data written.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_add_kv(struct qa_gguf_writer *w, const char *key,
                                  const struct qa_gguf_value *v, struct qa_diag *d);

/* Shorthands for qa_gguf_writer_add_kv() with a scalar or string value
 * (set_str copies the NUL-terminated string). */
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_set_u32(struct qa_gguf_writer *w, const char *key,
                                   uint32_t val, struct qa_diag *d);
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_set_u64(struct qa_gguf_writer *w, const char *key,
                                   uint64_t val, struct qa_diag *d);
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_set_f32(struct qa_gguf_writer *w, const char *key,
                                   float val, struct qa_diag *d);
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_set_bool(struct qa_gguf_writer *w, const char *key,
                                    bool val, struct qa_diag *d);
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_set_str(struct qa_gguf_writer *w, const char *key,
                                   const char *val, struct qa_diag *d);

/*
 * Declare the next tensor: its name (copied; fewer than 64 bytes, which is
 * ggml's limit, and unique), ggml type id, n_dims (1..4) and the first
 * n_dims entries of ne (each nonzero, product at most INT64_MAX).  ne[0]
 * must be a multiple of the type's block size.  Violations are
 * QA_ERR_USAGE.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_add_tensor(struct qa_gguf_writer *w, const char *name,
                                      uint32_t type, uint32_t n_dims,
                                      const uint64_t ne[4], struct qa_diag *d);

/*
 * Write the header (metadata, tensor infos with offsets computed from each
 * tensor's size padded to the alignment, and padding up to the data
 * section).  After this no kvs or tensors may be added.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_begin_data(struct qa_gguf_writer *w, struct qa_diag *d);

/*
 * Append len bytes of tensor data.  Bytes fill the declared tensors in
 * order; one call may finish a tensor and continue into the next.  The
 * writer inserts the alignment padding after each completed tensor.  More
 * bytes than all tensors declared is QA_ERR_USAGE.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_write(struct qa_gguf_writer *w, const void *buf,
                                 size_t len, struct qa_diag *d);

/*
 * Check that every tensor received exactly its bytes (QA_ERR_USAGE
 * otherwise), flush and fsync the temporary file and rename it to the
 * destination (QA_ERR_IO on failure).  After success the writer only needs
 * freeing.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_commit(struct qa_gguf_writer *w, struct qa_diag *d);

/* Free w; an uncommitted temporary file is closed and removed.  w may be NULL. */
void qa_gguf_writer_free(struct qa_gguf_writer *w);

/*
 * A tap sees every byte the writer emits, in file order: len bytes at buf,
 * which belong at absolute file offset off.  buf is borrowed for the call.
 * A non-OK return fails the write that fed it (the writer is then failed).
 */
typedef enum qa_err (*qa_gguf_tap_fn)(void *ctx, uint64_t off, const void *buf, size_t len,
                                      struct qa_diag *d);

/*
 * Like qa_gguf_writer_open, with a tap (may be NULL) that sees every byte as
 * it is written.  dest_path may be NULL when tap is not: the file then
 * exists only as the stream the tap sees (hash a would-be file without
 * writing it), and commit just ends the stream.  QA_ERR_USAGE when neither
 * is given.
 */
QA_WARN_UNUSED
enum qa_err qa_gguf_writer_open_tap(struct qa_gguf_writer **out, const char *dest_path,
                                    qa_gguf_tap_fn tap, void *tap_ctx, struct qa_diag *d);

/*
 * Pad the data section and every tensor to alignment (a power of two; other
 * values are ignored) whatever a general.alignment key says.  llama-quantize
 * does this: it copies the key but pads to 32.  Only before begin_data.
 */
void qa_gguf_writer_pin_alignment(struct qa_gguf_writer *w, uint32_t alignment);

/*
 * Remove the pair with this key, if declared (before begin_data only);
 * returns whether one was removed.  Removing then adding a key moves it to
 * the end: that is gguf's set semantics, which llama-quantize relies on.
 */
bool qa_gguf_writer_remove_kv(struct qa_gguf_writer *w, const char *key);

/* Bytes emitted so far (the file's size after commit). */
uint64_t qa_gguf_writer_size(const struct qa_gguf_writer *w);

enum qa_gguf_region_kind {
	QA_GGUF_REGION_HEADER,      /* magic, version, counts */
	QA_GGUF_REGION_KV,          /* one metadata pair */
	QA_GGUF_REGION_TENSOR_INFO, /* one tensor's name, shape, type, offset */
	QA_GGUF_REGION_PADDING,     /* zeros after the header or after a tensor */
	QA_GGUF_REGION_TENSOR_DATA, /* one tensor's bytes */
	QA_GGUF_REGION_BEYOND       /* past the end of the file */
};

/* Where a byte of a written file lies. name borrows from the writer. */
struct qa_gguf_region {
	enum qa_gguf_region_kind kind;
	size_t index;       /* kv or tensor index, SIZE_MAX for none */
	const char *name;   /* key, tensor name, or a description */
	uint64_t start, end; /* the region's absolute extent [start, end) */
};

/*
 * Name the region of the file being written that holds absolute offset
 * off (tensor padding names the tensor before it).  Available once
 * begin_data has run, until the writer is freed; false before that.
 */
bool qa_gguf_writer_locate(const struct qa_gguf_writer *w, uint64_t off,
                           struct qa_gguf_region *out);

/* "header", "kv", "tensor-info", "padding", "tensor-data", "beyond-end". */
const char *qa_gguf_region_kind_name(enum qa_gguf_region_kind k);

#endif
