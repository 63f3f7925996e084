/*
 * fuzz_ggufhash.c - libFuzzer target for the llama-gguf-hash text reader
 * that `quantaudit verify` feeds with untrusted manifests.  Every input must
 * be accepted or refused cleanly; an accepted manifest is verified against
 * itself, which must pass.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ggufhash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qa_manifest *m = NULL;
	struct qa_diag d;
	if (qa_ggufhash_parse(data, size, &m, &d) != QA_OK) {
		if (d.code == QA_ERR_FORMAT && d.offset != QA_NO_OFFSET && d.offset > size)
			abort();
		return 0;
	}
	struct qa_verify v;
	if (qa_ggufhash_verify(m, m, &v, &d) == QA_OK) {
		if (!qa_verify_ok(&v))
			abort();
		qa_verify_free(&v);
	}
	qa_manifest_free(m);
	return 0;
}
