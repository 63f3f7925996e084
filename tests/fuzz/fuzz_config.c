/*
 * fuzz_config.c - libFuzzer target for the config.json parser (untrusted
 * JSON beside a checkpoint).  Every input must be accepted or refused
 * cleanly, with an offset inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qa_model_config c;
	struct qa_diag d;
	if (qa_config_parse(&c, (const char *)data, size, &d) == QA_ERR_FORMAT &&
	    d.offset != QA_NO_OFFSET && d.offset > size)
		abort(); /* an offset outside the input is a bug */
	return 0;
}
