/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors reader.
 *
 * The input is one safetensors file held in memory.  Every accepted file is
 * walked completely: each tensor is looked up by name, its bytes viewed,
 * and the first few elements of every F32/F16/BF16 tensor converted, so the
 * sanitizers see every access the reader allows.  A rejected file must carry
 * an offset inside the input.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/lib
 *   tests/fuzz/fuzz_safetensors.c src/lib/{safetensors,err,cursor,source,fp16}.c
 *   $(pkg-config --cflags --libs jansson)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qa_source *src;
	struct qa_st *st = NULL;
	struct qa_diag d;

	if (qa_source_open_memory(&src, data, size, "fuzz", &d) != QA_OK)
		return 0;
	enum qa_err e = qa_st_open_source(&st, src, &d);
	if (e != QA_OK) {
		if (e != QA_ERR_FORMAT && e != QA_ERR_NOMEM)
			abort();
		if (e == QA_ERR_FORMAT && d.offset != QA_NO_OFFSET && d.offset > size)
			abort();
		qa_source_close(src);
		return 0;
	}
	for (size_t i = 0; i < qa_st_n_tensors(st); i++) {
		const struct qa_st_tensor *t = qa_st_tensor_at(st, i);
		if (qa_st_tensor_find(st, t->name) != t)
			abort();
		const void *view;
		if (qa_st_tensor_view(st, t, &view, &d) != QA_OK)
			abort();
		volatile uint8_t sink = 0;
		if (t->end > t->begin)
			sink ^= ((const uint8_t *)view)[t->end - t->begin - 1];
		(void)sink;
		float f[8];
		size_t n = t->n_elems < 8 ? (size_t)t->n_elems : 8;
		e = qa_st_tensor_read_f32(st, t, 0, n, f, &d);
		if (qa_st_dtype_is_float(t->dtype) ? e != QA_OK : e != QA_ERR_UNSUPPORTED)
			abort();
		if (t->n_elems > n &&
		    qa_st_dtype_is_float(t->dtype) &&
		    qa_st_tensor_read_f32(st, t, t->n_elems - 1, 1, f, &d) != QA_OK)
			abort();
	}
	for (size_t i = 0; i < qa_st_n_metadata(st); i++) {
		const char *k, *v;
		if (!qa_st_metadata_at(st, i, &k, &v) || !k || !v)
			abort();
	}
	qa_st_close(st);
	qa_source_close(src);
	return 0;
}
