/*
 * fuzz_manifest.c - libFuzzer target for the manifest parser that
 * `quantaudit verify` feeds with untrusted JSON.  Every input must be
 * accepted or refused cleanly; an accepted manifest is also compared
 * against itself and rendered back to JSON.
 */
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "manifest_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qa_manifest *m = NULL;
	struct qa_diag d;
	if (qa_manifest_parse(data, size, &m, &d) != QA_OK)
		return 0;
	struct qa_verify v;
	if (qa_verify_compare(m, m, &v, &d) == QA_OK)
		qa_verify_free(&v);
	json_decref(qa_manifest_to_json(m));
	qa_manifest_free(m);
	return 0;
}
