/*
 * fuzz_imatrix.c - libFuzzer target for the importance-matrix reader.
 *
 * Parses the input as an in-memory source with qa_imatrix_open (GGUF when
 * it starts with "GGUF", the legacy .dat format otherwise) and, when that
 * succeeds, checks the reader's promises: entries in strictly increasing
 * name order, each found again by name, every weight finite and readable,
 * lengths a whole number of rows per expert, and the lookup answering
 * without error for the entry's own length and with an error naming the
 * tensor for any other.  Failures must carry a reason and an offset inside
 * the input.  Seed corpus: tests/data/imatrix/.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "imatrix.h"
#include "source.h"

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qa_source *src;
	struct qa_imatrix *m;
	struct qa_diag d;
	if (qa_source_open_memory(&src, data, size, "fuzz", &d) != QA_OK)
		return 0;
	if (qa_imatrix_open(&m, src, &d) != QA_OK) {
		if (d.msg[0] == '\0' || (d.offset != QA_NO_OFFSET && d.offset > size))
			__builtin_trap();
		qa_source_close(src);
		return 0;
	}
	/* the matrix owns what it hands out: close the source first */
	qa_source_close(src);
	const struct qa_imatrix_info *in = qa_imatrix_info(m);
	if (in->file_size != size || (in->dataset && in->n_datasets == 0))
		__builtin_trap();
	for (size_t i = 0; i < in->n_entries; i++) {
		const struct qa_imatrix_entry *e = qa_imatrix_entry_at(m, i);
		if (i && strcmp(qa_imatrix_entry_at(m, i - 1)->name, e->name) >= 0)
			__builtin_trap();
		if (qa_imatrix_find(m, e->name) != e)
			__builtin_trap();
		if (e->n_expert == 0 || e->n_values == 0 || e->n_values % e->n_expert)
			__builtin_trap();
		for (uint64_t k = 0; k < e->n_values; k++) {
			if (!isfinite(e->weights[k]))
				__builtin_trap();
			sink += e->weights[k];
		}
		const float *w;
		if (qa_imatrix_weights(m, e->name, e->n_values / e->n_expert, e->n_expert, &w, &d) != QA_OK ||
		    w != e->weights)
			__builtin_trap();
		if (qa_imatrix_weights(m, e->name, e->n_values + 1, 1, &w, &d) == QA_OK &&
		    strcmp(e->name, "token_embd.weight") != 0)
			__builtin_trap();
	}
	if (qa_imatrix_entry_at(m, in->n_entries) != NULL)
		__builtin_trap();
	qa_imatrix_free(m);
	return 0;
}
