/*
 * tu_defects.h - where the defects planted in fixtures/models are, read from
 * fixtures/models/defects.json (the one record of them, written when the
 * fixtures were made; fixtures/README.md) instead of being spelled again in
 * each test.  Include after check.h and testutil.h.
 */
#ifndef QA_TU_DEFECTS_H
#define QA_TU_DEFECTS_H

#include <stdint.h>
#include <string.h>

#include <jansson.h>

/* The loaded defects.json; the caller json_decref()s it. */
static inline json_t *tu_defects(void)
{
	json_error_t err;
	json_t *j = json_load_file(tu_path("fixtures/models/defects.json"), 0, &err);
	ck_assert_msg(j != NULL, "defects.json: %s", err.text);
	return j;
}

/*
 * The corrupt artifact file (a basename under fixtures/models): the tensor
 * holding the flipped byte (copied into name, cap bytes) and its block.
 */
static inline void tu_defect_corrupt(const char *file, char *name, size_t cap, uint64_t *block)
{
	json_t *j = tu_defects();
	json_t *c = json_object_get(json_object_get(j, "corrupt"), file);
	const char *t = json_string_value(json_object_get(c, "tensor"));
	json_t *b = json_object_get(c, "block");
	ck_assert_msg(t && json_is_integer(b), "defects.json: no corrupt entry for %s", file);
	ck_assert_uint_lt(strlen(t), cap);
	memcpy(name, t, strlen(t) + 1);
	*block = (uint64_t)json_integer_value(b);
	json_decref(j);
}

/* The transposed artifact file: how many tensors are transposed (at most
 * max), with their names copied into names[i] (cap bytes each). */
static inline size_t tu_defect_transposed(const char *file, char names[][128], size_t max)
{
	json_t *j = tu_defects();
	json_t *a = json_object_get(json_object_get(j, "transposed"), file);
	ck_assert_msg(json_is_array(a) && json_array_size(a) > 0, "defects.json: no transposed entry for %s", file);
	size_t n = json_array_size(a) < max ? json_array_size(a) : max;
	for (size_t i = 0; i < n; i++) {
		const char *t = json_string_value(json_array_get(a, i));
		ck_assert(t && strlen(t) < 128);
		memcpy(names[i], t, strlen(t) + 1);
	}
	json_decref(j);
	return n;
}

#endif
