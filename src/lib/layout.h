/*
 * layout.h - how a 2-D weight is cut into rows before quantization.
 *
 * A reference weight W has HF shape [out, in] and is stored row-major, so its
 * flat data is out rows of in values.  The quantizer cuts rows into blocks;
 * which rows it is given decides which values share a block:
 *
 *   out,in      what GGUF expects: out rows of in values (ne = [in, out]).
 *   in,out      the shape-swap defect of AUDIT-Q4K-SHAPE-001: the same flat
 *               data read as in rows of out values (the exporter declared
 *               ne = [out, in]).
 *   transposed  W transposed: in rows, row r holding column r of W.
 *
 * When a row's length is not a multiple of the block size, the row is
 * zero-padded up to one (that is what a quantizer given such a shape has
 * to do, and what makes the layouts differ).  1-D tensors have one layout.
 */
#ifndef QA_LAYOUT_H
#define QA_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

enum qa_layout {
	QA_LAYOUT_OUT_IN = 0,
	QA_LAYOUT_IN_OUT = 1,
	QA_LAYOUT_TRANSPOSED = 2
};
#define QA_LAYOUT_COUNT 3

/* "out,in", "in,out" or "transposed". */
const char *qa_layout_name(enum qa_layout l);

/* Parse a layout name; false when unknown. */
bool qa_layout_parse(const char *s, enum qa_layout *out);

struct qa_layout_geom {
	uint64_t n_rows;   /* rows handed to the quantizer */
	uint64_t row_len;  /* values of W per row */
	uint64_t padded;   /* row length after zero padding (multiple of the block) */
};

/*
 * Geometry of W ([out, in], i.e. ne = [in, out]) under layout l for a type
 * with block_elems per block.  Returns false when the padded size would
 * overflow.
 */
bool qa_layout_geom(enum qa_layout l, uint64_t in, uint64_t out,
                    uint32_t block_elems, struct qa_layout_geom *g);

/*
 * Write row r of layout l into dst (g->padded floats): the row's values
 * from w (out*in floats, row-major [out][in]) followed by zeros.
 */
void qa_layout_row(enum qa_layout l, const float *w, uint64_t in, uint64_t out,
                   const struct qa_layout_geom *g, uint64_t r, float *dst);

/* ------------------------------------------------ diff's layout verdicts */

/* The layouts a diff tries: enum qa_layout's three, then unpermuted. */
#define QA_FX_UNPERMUTED 3
#define QA_FX_LAYOUTS 4

/* How a layout verdict was reached. */
enum qa_evidence {
	QA_EVIDENCE_NONE = 0,
	QA_EVIDENCE_BYTES,  /* every block digest matched a re-quantization under the layout */
	QA_EVIDENCE_ERROR   /* the dequantized artifact's error under the layout is quantization noise */
};

/* A tensor's errors under each layout tried by error. */
struct qa_layout_errors {
	bool tried[QA_FX_LAYOUTS];
	double rmse[QA_FX_LAYOUTS];   /* dequantized artifact vs the reference arranged as the layout */
	double noise[QA_FX_LAYOUTS];  /* ggml's re-quantization under the layout, same measure */
};

#endif
