/*
 * fuzz_blockindex.c - libFuzzer target for the block index reader that
 * `quantaudit verify` feeds with an untrusted MANIFEST.blocks.  Every input
 * must be accepted or refused cleanly; an accepted index is digested and
 * every tensor's records are read, in and just past its bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "blockindex.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qa_source *src;
	struct qa_blockindex *bi;
	struct qa_diag d;
	if (qa_source_open_memory(&src, data, size, "fuzz", &d) != QA_OK)
		return 0;
	if (qa_blockindex_open(&bi, src, &d) == QA_OK) {
		uint8_t sha[QA_SHA256_LEN], rec[64 * QA_SHA256_LEN];
		qa_blockindex_sha256(bi, sha, &d);
		for (size_t i = 0; i < qa_blockindex_n_tensors(bi) && i < 64; i++) {
			uint64_t n = qa_blockindex_blocks(bi, i);
			uint64_t k = n < 64 ? n : 64;
			qa_blockindex_read(bi, i, n - k, k, rec, &d);
			qa_blockindex_read(bi, i, n, 1, rec, &d);
		}
		qa_blockindex_free(bi);
	}
	qa_source_close(src);
	return 0;
}
