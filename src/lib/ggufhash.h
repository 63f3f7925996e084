/*
 * ggufhash.h - llama.cpp's llama-gguf-hash text as a manifest: reading the
 * lines "sha256  HEX  FILE:TENSOR" (one per tensor) and "sha256  HEX  FILE"
 * (all tensor data in file order) that `llama-gguf-hash --sha256` prints
 * and `quantaudit hash --format gguf-hash` writes, and verifying a file
 * against them.
 *
 * Lines of the other hash types llama-gguf-hash prints (xxh64, sha1, uuid,
 * with --all) are read past; only SHA-256 is checked.  Such a manifest says
 * nothing of types, shapes, the metadata or the whole file: verification
 * compares tensor digests by name and the digest of all tensor data.
 */
#ifndef QA_GGUFHASH_H
#define QA_GGUFHASH_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "manifest.h"

/* True when the len bytes at buf look like gguf-hash text, not JSON. */
bool qa_ggufhash_sniff(const void *buf, size_t len);

/*
 * Parse gguf-hash text (len bytes at buf, borrowed) into a manifest whose
 * tensors carry only a name and sha256, and whose tensor_data_sha256 is the
 * last whole-file sha256 line (has_tensor_data_sha256 set).  The caller
 * frees *out with qa_manifest_free.  Errors: QA_ERR_FORMAT at the offset of
 * the offending line (unknown hash type, bad hex, a tensor line that does
 * not name the file of the closing line, a tensor listed twice, no sha256
 * line at all); QA_ERR_NOMEM.
 */
enum qa_err qa_ggufhash_parse(const void *buf, size_t len, struct qa_manifest **out,
                              struct qa_diag *d);

/*
 * Verify the manifest got (computed with data_digest) against the gguf-hash
 * manifest want: items for missing, extra and mismatching tensors (by name
 * and digest), file_match when the digests of all tensor data agree (true
 * when want has none), metadata_match always true (not claimed).  Free *v
 * with qa_verify_free.  Errors: QA_ERR_NOMEM.
 */
enum qa_err qa_ggufhash_verify(const struct qa_manifest *got, const struct qa_manifest *want,
                               struct qa_verify *v, struct qa_diag *d);

#endif
