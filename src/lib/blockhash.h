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

/*
 * SHA-256 of len bytes at data into out.  Fails only when OpenSSL does
 * (QA_ERR_NOMEM, "sha-256 failed"); out is then all zero, never a stale
 * or partial digest.
 */
QA_WARN_UNUSED
enum qa_err qa_sha256(const void *data, size_t len, uint8_t out[QA_SHA256_LEN],
                      struct qa_diag *d);

/*
 * An incremental SHA-256 for data that arrives in pieces (whole files).
 * qa_sha256_stream_init returns NULL when memory runs out.  A failed update
 * is remembered (like a stream's error flag) and reported by final, so a
 * caller feeding many pieces checks once.  final writes the digest and may
 * be called once; it returns QA_ERR_NOMEM and writes 32 zero bytes when
 * OpenSSL failed at any step.  free releases the stream (NULL is fine).
 */
struct qa_sha256_stream;
struct qa_sha256_stream *qa_sha256_stream_init(void);
void qa_sha256_stream_update(struct qa_sha256_stream *s, const void *data, size_t len);
QA_WARN_UNUSED
enum qa_err qa_sha256_stream_final(struct qa_sha256_stream *s, uint8_t out[QA_SHA256_LEN]);
void qa_sha256_stream_free(struct qa_sha256_stream *s);

/*
 * A per-thread block hasher: it keeps its OpenSSL context between calls so
 * that the digest of a 144-byte block costs the compression function and
 * little else.  Not shareable between threads.  Returns NULL when memory
 * runs out or OpenSSL cannot provide SHA2-256.
 */
struct qa_blockhasher;
struct qa_blockhasher *qa_blockhasher_init(void);
void qa_blockhasher_free(struct qa_blockhasher *h);

/*
 * Digest blocks [first, first+count) of the nbytes at data cut into blocks
 * of block_bytes, writing count digests of 32 bytes to out.  On an OpenSSL
 * failure it returns QA_ERR_NOMEM and all count digests are zero (none is
 * left stale); the three functions below do the same.
 */
QA_WARN_UNUSED
enum qa_err qa_blockhasher_blocks(struct qa_blockhasher *h, const uint8_t *data,
                                  uint64_t nbytes, uint64_t block_bytes,
                                  uint64_t first, uint64_t count, uint8_t *out);

/* Merkle root of n_blocks digests (32 bytes each, consecutive) into root. */
QA_WARN_UNUSED
enum qa_err qa_blockhasher_merkle(struct qa_blockhasher *h, const uint8_t *digests,
                                  uint64_t n_blocks, uint8_t root[QA_SHA256_LEN]);

/* SHA-256 of len bytes with h's context. */
QA_WARN_UNUSED
enum qa_err qa_blockhasher_whole(struct qa_blockhasher *h, const void *data,
                                 size_t len, uint8_t out[QA_SHA256_LEN]);

/* The linked OpenSSL's version text, e.g. "OpenSSL 3.0.19 ...". */
const char *qa_blockhash_backend_version(void);

/*
 * How this process's block hashers digest blocks: "provider" (the bound
 * provider functions, used only with OpenSSL 3.0.x at run time and after
 * a self-check against EVP) or "evp" (plain EVP_Digest* calls, everywhere
 * else).  The environment variable QUANTAUDIT_SHA256 is read once, at the
 * first use: "evp" (or any value but "auto" and empty) forces the EVP path.
 * Both paths give the same digests; the test suite runs both.
 *
 * Lifetime: the SHA2-256 method is fetched once (EVP_MD_fetch) and kept
 * for the life of the process; the library registers no atexit handler,
 * and OpenSSL's own exit clean-up releases its library context.
 */
const char *qa_blockhash_path(void);

#endif
