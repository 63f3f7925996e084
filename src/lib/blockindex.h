/*
 * blockindex.h - the block index: the binary sidecar of a manifest
 * (quantaudit.manifest/2) holding, for every tensor, a truncated digest of
 * each 256-element block, so that `verify` can name the first and count the
 * divergent blocks of a tensor whose digest differs.
 *
 * It is location data, not the integrity proof: a truncated digest may
 * collide.  The proof is each tensor's full SHA-256 and Merkle root in the
 * JSON, and the JSON records the index's size and SHA-256, so an index that
 * does not belong to its manifest is refused.
 *
 * Format (all integers little-endian; the size is exactly what they imply):
 *   0   8  magic "QABLKIDX"
 *   8   4  version, 1
 *   12  4  digest_bytes: bytes kept of each block's SHA-256, 4..32 (8 written)
 *   16  8  n_tensors
 *   24  8  n_records: the sum of the tensors' block counts
 *   32     n_tensors x 8: each tensor's block count, in manifest order
 *   ...    n_records x digest_bytes: the first digest_bytes bytes of each
 *          block's SHA-256, tensor by tensor in manifest order, blocks in order
 */
#ifndef QA_BLOCKINDEX_H
#define QA_BLOCKINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "blockhash.h"
#include "err.h"
#include "source.h"

#define QA_BLOCKINDEX_SCHEMA "quantaudit.blockindex/1"
#define QA_BLOCKINDEX_DIGEST_BYTES 8u
#define QA_BLOCKINDEX_HEADER 32u

/*
 * A writer appending to fd (borrowed; the caller closes it).  open writes
 * the header and table for n_tensors tensors with the given block counts;
 * add appends the truncated form of count full (32-byte) block digests, in
 * order; finish checks that every record was written, flushes, and gives
 * the size and SHA-256 of all bytes written.  A write error is kept and
 * reported by finish (QA_ERR_IO).  free releases w (NULL is fine).
 */
struct qa_blockindex_writer;
enum qa_err qa_blockindex_writer_open(struct qa_blockindex_writer **out, int fd,
                                      unsigned digest_bytes, size_t n_tensors,
                                      const uint64_t *n_blocks, struct qa_diag *d);
void qa_blockindex_writer_add(struct qa_blockindex_writer *w, const uint8_t *digests,
                              uint64_t count);
enum qa_err qa_blockindex_writer_finish(struct qa_blockindex_writer *w, uint64_t *size,
                                        uint8_t sha256[QA_SHA256_LEN], struct qa_diag *d);
void qa_blockindex_writer_free(struct qa_blockindex_writer *w);

/*
 * A block index read from src (borrowed; it must outlive the index).  open
 * checks the header and table against the source's size with overflow-safe
 * arithmetic, reading the table in bounded pieces; memory is 8 bytes per
 * tensor.  Errors: QA_ERR_FORMAT with the offset of the bad field, I/O
 * errors of the source, QA_ERR_NOMEM.
 */
struct qa_blockindex;
enum qa_err qa_blockindex_open(struct qa_blockindex **out, struct qa_source *src,
                               struct qa_diag *d);
void qa_blockindex_free(struct qa_blockindex *bi);

unsigned qa_blockindex_digest_bytes(const struct qa_blockindex *bi);
size_t qa_blockindex_n_tensors(const struct qa_blockindex *bi);
/* Block count of tensor i (i < n_tensors). */
uint64_t qa_blockindex_blocks(const struct qa_blockindex *bi, size_t i);

/*
 * Copy the records of blocks [first, first+count) of tensor i into out
 * (count x digest_bytes bytes).  A range outside the tensor fails with
 * QA_ERR_USAGE; read errors are the source's.
 */
enum qa_err qa_blockindex_read(struct qa_blockindex *bi, size_t i, uint64_t first,
                               uint64_t count, uint8_t *out, struct qa_diag *d);

/* SHA-256 of the whole index, read in bounded pieces. */
enum qa_err qa_blockindex_sha256(struct qa_blockindex *bi, uint8_t out[QA_SHA256_LEN],
                                 struct qa_diag *d);

#endif
