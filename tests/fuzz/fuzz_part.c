/*
 * fuzz_part.c - libFuzzer target for the part reader that `quantaudit
 * merge` feeds with untrusted JSON: the input is one part, merged alone.
 * Every input must be merged or refused cleanly.
 */
#include <stddef.h>
#include <stdint.h>

#include "part.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *p = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	if (!p)
		return 0;
	const char *name = "part", *culprit;
	struct qa_part_merged m;
	struct qa_diag d;
	if (qa_part_merge(&p, &name, 1, &m, &culprit, &d) == QA_OK)
		qa_part_merged_free(&m);
	json_decref(p);
	return 0;
}
