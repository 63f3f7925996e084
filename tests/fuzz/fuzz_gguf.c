/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader.
 *
 * Opens the input as an in-memory source, parses it with qa_gguf_open and,
 * when that succeeds, walks every kv (recursing into arrays), looks every
 * key and tensor name up again, and touches each tensor's data through
 * both the view and the read paths, so the sanitizers see every pointer
 * the reader hands out.  Seed corpus: tests/data/gguf/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gguf.h"
#include "source.h"

static volatile uint64_t sink;

static void walk_value(const struct qa_gguf_value *v)
{
	switch (v->type) {
	case QA_GGUF_STRING:
		/* the string is NUL-terminated at len */
		sink += v->v.str.len + (uint8_t)v->v.str.ptr[v->v.str.len];
		if (v->v.str.len)
			sink += (uint8_t)v->v.str.ptr[0];
		break;
	case QA_GGUF_ARRAY:
		/* scalar arrays stay packed (items NULL): read every item through
		 * qa_gguf_array_get, which must succeed in range and fail past it */
		for (uint64_t i = 0; i < v->v.arr.count; i++) {
			struct qa_gguf_value item;
			if (!qa_gguf_array_get(v, i, &item) || item.type != v->v.arr.elem_type)
				__builtin_trap();
			walk_value(&item);
		}
		{
			struct qa_gguf_value past;
			if (qa_gguf_array_get(v, v->v.arr.count, &past))
				__builtin_trap();
		}
		break;
	default:
		sink += v->v.u;
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qa_source *src;
	struct qa_gguf *g;
	struct qa_diag d;
	if (qa_source_open_memory(&src, data, size, "fuzz", &d) != QA_OK)
		return 0;
	if (qa_gguf_open(&g, src, &d) != QA_OK) {
		if (d.msg[0] == '\0' || (d.offset != QA_NO_OFFSET && d.offset > size))
			__builtin_trap();
		qa_source_close(src);
		return 0;
	}
	sink += qa_gguf_version(g) + qa_gguf_alignment(g) + qa_gguf_data_offset(g);
	for (size_t i = 0; i < qa_gguf_n_kv(g); i++) {
		const struct qa_gguf_kv *kv = qa_gguf_kv_at(g, i);
		walk_value(&kv->value);
		/* a key with embedded NULs may find a shorter key, or nothing */
		const struct qa_gguf_kv *found = qa_gguf_kv_find(g, kv->key);
		if (found && strcmp(found->key, kv->key) != 0)
			__builtin_trap();
		uint64_t u;
		if (qa_gguf_get_u64(g, kv->key, &u))
			sink += u;
		const char *s = qa_gguf_get_str(g, kv->key);
		if (s)
			sink += strlen(s);
	}
	for (size_t i = 0; i < qa_gguf_n_tensors(g); i++) {
		const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
		const struct qa_gguf_tensor *f = qa_gguf_tensor_find(g, t->name);
		if (f && strcmp(f->name, t->name) != 0)
			__builtin_trap();
		if (t->offset + t->nbytes + qa_gguf_data_offset(g) > size)
			__builtin_trap();
		const void *view;
		if (qa_gguf_tensor_view(g, t, &view, &d) == QA_OK && t->nbytes)
			sink += ((const uint8_t *)view)[t->nbytes - 1];
		uint8_t b[4];
		size_t n = t->nbytes < sizeof b ? (size_t)t->nbytes : sizeof b;
		if (qa_gguf_tensor_read(g, t, t->nbytes - n, n, b, &d) != QA_OK)
			__builtin_trap();
		sink += b[0];
	}
	qa_gguf_close(g);
	qa_source_close(src);
	return 0;
}
