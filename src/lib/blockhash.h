/*
 * blockhash.h - SHA-256 digests of files, tensors and 256-element blocks,
 * and the tensor Merkle root.  This is the only module that talks to
 * OpenSSL (through its EVP interface).
 *
 * Definitions (the manifest JSON and the audits rely on them):
 *  - a block is 256 consecutive elements of a tensor in storage order: one
 *    super-block of a k-quant, eight 32-element blocks of q4_0/q8_0/..., 256
 *    values of f32/f16/bf16.  The last block of a tensor may be partial;
 *  - block digest: SHA-256 of the block's bytes;
 *  - Merkle root: SHA-256 of the block digests concatenated in order as
 *    32-byte binary values;
 *  - tensor digest: SHA-256 of all the tensor's bytes.
 */
#ifndef QA_BLOCKHASH_H
#define QA_BLOCKHASH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "types.h"

#define QA_SHA256_LEN 32

/* Bytes of one 256-element block of type t (whole quantization blocks). */
uint64_t qa_blockhash_block_bytes(const struct qa_type_info *t);

/* Number of blocks covering nbytes with block_bytes per block (the last may be partial). */
uint64_t qa_blockhash_n_blocks(uint64_t nbytes, uint64_t block_bytes);

/* SHA-256 of len bytes at data into out.  Fails only with QA_ERR_NOMEM. */
enum qa_err qa_sha256(const void *data, size_t len, uint8_t out[QA_SHA256_LEN],
                      struct qa_diag *d);

/*
 * An incremental SHA-256 for data that arrives in pieces (whole files).
 * qa_sha256_stream_init returns NULL when memory runs out; final writes the
 * digest and may be called once; free releases the stream.
 */
struct qa_sha256_stream;
struct qa_sha256_stream *qa_sha256_stream_init(void);
void qa_sha256_stream_update(struct qa_sha256_stream *s, const void *data, size_t len);
void qa_sha256_stream_final(struct qa_sha256_stream *s, uint8_t out[QA_SHA256_LEN]);
void qa_sha256_stream_free(struct qa_sha256_stream *s);

/*
 * A per-thread block hasher: it keeps its OpenSSL context between calls so
 * that the digest of a 144-byte block costs the compression function and
 * little else.  Not shareable between threads.
 */
struct qa_blockhasher;
struct qa_blockhasher *qa_blockhasher_init(void);
void qa_blockhasher_free(struct qa_blockhasher *h);

/*
 * Digest blocks [first, first+count) of the nbytes at data cut into blocks
 * of block_bytes, writing count digests of 32 bytes to out.
 */
void qa_blockhasher_blocks(struct qa_blockhasher *h, const uint8_t *data,
                           uint64_t nbytes, uint64_t block_bytes,
                           uint64_t first, uint64_t count, uint8_t *out);

/* Merkle root of n_blocks digests (32 bytes each, consecutive) into root. */
void qa_blockhasher_merkle(struct qa_blockhasher *h, const uint8_t *digests,
                           uint64_t n_blocks, uint8_t root[QA_SHA256_LEN]);

/* SHA-256 of len bytes with h's context. */
void qa_blockhasher_whole(struct qa_blockhasher *h, const void *data,
                          size_t len, uint8_t out[QA_SHA256_LEN]);

/* The linked OpenSSL's version text, e.g. "OpenSSL 3.0.19 ...". */
const char *qa_blockhash_backend_version(void);

#endif
