/*
 * util.c - small helpers several library modules share (see util.h).
 */
#include "util.h"

#include <stdlib.h>

#include "cursor.h"

bool qa_array_grow(void **arr, size_t *cap, size_t want, size_t elem)
{
	if (want <= *cap)
		return true;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < want) {
		if (ncap > SIZE_MAX / 2)
			return false;
		ncap *= 2;
	}
	size_t bytes;
	if (!qa_mul_size(ncap, elem, &bytes))
		return false;
	void *p = realloc(*arr, bytes);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

bool qa_is_pow2(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}
