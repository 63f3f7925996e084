/*
 * manifest.h - per-tensor and per-block digests of a file (a "manifest"),
 * its JSON form (schema quantaudit.manifest/2, and /1 read back), and
 * verification of a file against a manifest.
 *
 * A manifest records the file digest, the metadata digest (the bytes before
 * the data section), and for each tensor its digest, block count and Merkle
 * root; blockhash.h defines these.  Block location data comes either inline
 * (every full block digest, "block_sha256", as /1 wrote it and /2 still
 * prints on stdout) or in a block index sidecar (blockindex.h) that the JSON
 * names and pins by size and SHA-256.  Computing one streams the file
 * through bounded windows read with pread: memory does not grow with the
 * file unless every block digest is kept for inline output.
 */
#ifndef QA_MANIFEST_H
#define QA_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockhash.h"
#include "err.h"
#include "source.h"

struct qa_blockindex; /* blockindex.h */

#define QA_MANIFEST_SCHEMA "quantaudit.manifest/2"
#define QA_MANIFEST_SCHEMA_V1 "quantaudit.manifest/1"

struct qa_manifest_tensor {
	char *name;
	char *type;              /* ggml type name (GGUF) or dtype (safetensors) */
	uint32_t n_dims;
	uint64_t shape[8];       /* GGUF order for GGUF, file order for safetensors */
	uint64_t offset;         /* relative to the data section */
	uint64_t nbytes;
	uint64_t n_blocks;
	uint64_t block_bytes;
	uint8_t sha256[QA_SHA256_LEN];
	uint8_t merkle[QA_SHA256_LEN];
	uint8_t *blocks;         /* n_blocks digests, or NULL when not kept */
};

struct qa_manifest {
	char *path;
	char *format;            /* "gguf" or "safetensors" */
	uint64_t size;
	uint8_t sha256[QA_SHA256_LEN];
	uint8_t metadata_sha256[QA_SHA256_LEN];
	uint8_t tensor_data_sha256[QA_SHA256_LEN]; /* all tensor bytes in file order (llama-gguf-hash's model line) */
	bool has_tensor_data_sha256;
	size_t n;
	struct qa_manifest_tensor *tensors;
	bool has_blocks;         /* every tensor carries its block digests */
	uint64_t data_offset;    /* start of the data section (computed manifests) */
	/* the block index sidecar (schema /2 "block_index"), when there is one */
	bool has_index;
	char *index_file;        /* its file name, beside the manifest */
	unsigned index_digest_bytes;
	uint64_t index_size;
	uint8_t index_sha256[QA_SHA256_LEN];
};

/*
 * Hash the GGUF or single safetensors file at path.  With keep_blocks, every
 * tensor keeps its block digests; with data_digest, the digest of all tensor
 * data in file order is computed too.  Work runs on n_threads threads (0:
 * all cores).  The caller frees *out with qa_manifest_free().  Errors: the
 * readers' (malformed input, I/O); QA_ERR_USAGE for a sharded checkpoint.
 */
QA_WARN_UNUSED
enum qa_err qa_manifest_compute(const char *path, bool keep_blocks, bool data_digest,
                                unsigned n_threads, struct qa_manifest **out,
                                struct qa_diag *d);

/* What qa_manifest_compute_opts computes. */
struct qa_manifest_opts {
	bool keep_blocks;     /* keep every full block digest (inline output) */
	bool data_digest;     /* the digest of all tensor data in file order */
	bool no_blocks;       /* skip block digests and Merkle roots (verify's first pass) */
	unsigned n_threads;   /* 0: all cores */
	bool index;           /* write a block index to index_fd (borrowed, not closed) */
	int index_fd;
	/* verify --shard: when select is set, only the tensors it accepts are
	 * read and digested (the others keep zero digests), and with no_file
	 * the whole-file and metadata digests are not computed (left zero) */
	bool (*select)(void *ctx, const struct qa_manifest_tensor *t);
	void *select_ctx;
	bool no_file;
};

/*
 * The same with options.  The file is read in windows of a few MiB through
 * pread (twice: once for the whole-file digest on its own thread, once
 * tensor by tensor), and each window's tensor digest, block digests, Merkle
 * update and the read of the next window run in parallel.  With index,
 * the block index (blockindex.h, QA_BLOCKINDEX_DIGEST_BYTES per record) is
 * written to index_fd and the manifest records its size, digest size and
 * SHA-256 (has_index); the caller sets index_file.  A failed write of it is
 * QA_ERR_IO with a message naming the block index.
 */
enum qa_err qa_manifest_compute_opts(const char *path, const struct qa_manifest_opts *o,
                                     struct qa_manifest **out, struct qa_diag *d);

/*
 * Parse a manifest from the JSON file at path.  Errors: QA_ERR_IO when it
 * cannot be read; QA_ERR_FORMAT (with the byte offset of the JSON error, or
 * of the file start for a structural problem) when it is not JSON, has an
 * unknown schema, or lacks or mistypes a field.
 */
QA_WARN_UNUSED
enum qa_err qa_manifest_load(const char *path, struct qa_manifest **out,
                             struct qa_diag *d);

/* The same for a manifest held in memory (len bytes at buf, borrowed). */
QA_WARN_UNUSED
enum qa_err qa_manifest_parse(const void *buf, size_t len, struct qa_manifest **out,
                              struct qa_diag *d);

/* m as the JSON manifest `quantaudit hash --json` writes (schema
 * quantaudit.manifest/2; block digests only when m has them, the block
 * index object only when m has one), indented, as a malloc'd string the
 * caller frees; NULL when out of memory. */
char *qa_manifest_json_text(const struct qa_manifest *m);

void qa_manifest_free(struct qa_manifest *m);

/* The first tensor of m named name, or NULL when m has none (a linear
 * scan); the pointer lives as long as m. */
const struct qa_manifest_tensor *qa_manifest_find(const struct qa_manifest *m, const char *name);

/* Lowercase hex of a digest into out (65 bytes). */
void qa_manifest_hex(const uint8_t digest[QA_SHA256_LEN], char out[65]);

/* One difference between a file and a manifest. */
enum qa_verify_kind {
	QA_VERIFY_MISMATCH,      /* tensor bytes differ */
	QA_VERIFY_MISSING,       /* in the manifest, not in the file */
	QA_VERIFY_EXTRA,         /* in the file, not in the manifest */
	QA_VERIFY_SHAPE          /* type, shape or size changed */
};

struct qa_verify_item {
	enum qa_verify_kind kind;
	const char *name;          /* borrowed from the manifests */
	uint64_t blocks_compared;  /* blocks with digests on both sides */
	uint64_t divergent_blocks; /* when both sides have block digests */
	uint64_t first_divergent;  /* UINT64_MAX when unknown or none */
	bool blocks_known;
};

struct qa_verify {
	bool file_match;
	bool metadata_match;
	size_t n_items;
	struct qa_verify_item *items; /* malloc'd; free with qa_verify_free */
	size_t n_tensors_ok;
};

/*
 * Compare the computed manifest got against the expected manifest want and
 * fill *v (the caller frees it with qa_verify_free).  Tensors pair by name.
 * Returns QA_OK or QA_ERR_NOMEM; whether they match is in *v.
 */
QA_WARN_UNUSED
enum qa_err qa_verify_compare(const struct qa_manifest *got, const struct qa_manifest *want,
                              struct qa_verify *v, struct qa_diag *d);
void qa_verify_free(struct qa_verify *v);

/*
 * Open the block index that want names, beside the manifest at
 * manifest_path, as *src (a streamed source) and *bi, and check it against
 * want: a plain file name (no directory part), the recorded size and
 * SHA-256 (the file is read once, in bounded pieces), digest size, tensor
 * count and every tensor's block count.  Errors: QA_ERR_IO when it cannot
 * be read, QA_ERR_FORMAT when it is malformed or belongs to another
 * manifest.  The caller frees *bi, then closes *src.  A manifest without a
 * block index gives QA_OK with both NULL.
 */
enum qa_err qa_manifest_open_index(const struct qa_manifest *want, const char *manifest_path,
                                   struct qa_source **src, struct qa_blockindex **bi,
                                   struct qa_diag *d);

/*
 * Locate the divergent blocks of every mismatching tensor of v whose block
 * location data want has (inline digests, or bi, which may be NULL): read
 * that tensor of the file at path again in windows, digest its blocks and
 * compare them with the records, filling blocks_known, blocks_compared,
 * divergent_blocks and first_divergent.  got is the manifest computed from
 * path (for the tensors' offsets).  Memory stays bounded by the window.
 * Errors: the file's I/O errors, QA_ERR_NOMEM, and the index's read errors.
 */
enum qa_err qa_verify_locate(struct qa_verify *v, const struct qa_manifest *got,
                             const struct qa_manifest *want, struct qa_blockindex *bi,
                             const char *path, unsigned n_threads, struct qa_diag *d);

/* True when v records no difference at all. */
bool qa_verify_ok(const struct qa_verify *v);

#endif
