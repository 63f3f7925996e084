/*
 * layout.c - the three row layouts of a 2-D weight.
 */
#include "layout.h"

#include <string.h>

#include "cursor.h"

static const char *const names[QA_LAYOUT_COUNT] = { "out,in", "in,out", "transposed" };

const char *qa_layout_name(enum qa_layout l)
{
	return (unsigned)l < QA_LAYOUT_COUNT ? names[l] : "?";
}

bool qa_layout_parse(const char *s, enum qa_layout *out)
{
	for (unsigned i = 0; i < QA_LAYOUT_COUNT; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum qa_layout)i;
			return true;
		}
	return false;
}

bool qa_layout_geom(enum qa_layout l, uint64_t in, uint64_t out,
                    uint32_t block_elems, struct qa_layout_geom *g)
{
	uint64_t len = l == QA_LAYOUT_OUT_IN ? in : out;
	uint64_t rows = l == QA_LAYOUT_OUT_IN ? out : in;
	uint64_t be = block_elems ? block_elems : 1;
	uint64_t padded, total;
	if (!qa_add_u64(len, be - 1, &padded))
		return false;
	padded = padded / be * be;
	if (!qa_mul_u64(padded, rows, &total))
		return false;
	g->n_rows = rows;
	g->row_len = len;
	g->padded = padded;
	return true;
}

void qa_layout_row(enum qa_layout l, const float *w, uint64_t in, uint64_t out,
                   const struct qa_layout_geom *g, uint64_t r, float *dst)
{
	switch (l) {
	case QA_LAYOUT_OUT_IN:
	case QA_LAYOUT_IN_OUT:
		/* both read the flat data contiguously; only the row length differs */
		memcpy(dst, w + r * g->row_len, (size_t)g->row_len * sizeof *dst);
		break;
	case QA_LAYOUT_TRANSPOSED:
		for (uint64_t c = 0; c < out; c++)
			dst[c] = w[c * in + r];
		break;
	}
	for (uint64_t i = g->row_len; i < g->padded; i++)
		dst[i] = 0.0f;
}
