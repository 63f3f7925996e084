/*
 * types.h - the ggml tensor type table: ids, names and block geometry.
 *
 * Every ggml type that has ever been written to a GGUF file is known here
 * by id, name and block size, so that inspect can list any file.  Whether
 * a type can be decoded (dequantized) or produced (quantized) is recorded
 * too; the code that does it lives in quant.h.  The table is static data:
 * pointers it returns live for the whole program.
 */
#ifndef QA_TYPES_H
#define QA_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qa_type {
	QA_TYPE_F32 = 0,
	QA_TYPE_F16 = 1,
	QA_TYPE_Q4_0 = 2,
	QA_TYPE_Q4_1 = 3,
	QA_TYPE_Q5_0 = 6,
	QA_TYPE_Q5_1 = 7,
	QA_TYPE_Q8_0 = 8,
	QA_TYPE_Q8_1 = 9,
	QA_TYPE_Q2_K = 10,
	QA_TYPE_Q3_K = 11,
	QA_TYPE_Q4_K = 12,
	QA_TYPE_Q5_K = 13,
	QA_TYPE_Q6_K = 14,
	QA_TYPE_Q8_K = 15,
	QA_TYPE_IQ2_XXS = 16,
	QA_TYPE_IQ2_XS = 17,
	QA_TYPE_IQ3_XXS = 18,
	QA_TYPE_IQ1_S = 19,
	QA_TYPE_IQ4_NL = 20,
	QA_TYPE_IQ3_S = 21,
	QA_TYPE_IQ2_S = 22,
	QA_TYPE_IQ4_XS = 23,
	QA_TYPE_I8 = 24,
	QA_TYPE_I16 = 25,
	QA_TYPE_I32 = 26,
	QA_TYPE_I64 = 27,
	QA_TYPE_F64 = 28,
	QA_TYPE_IQ1_M = 29,
	QA_TYPE_BF16 = 30,
	QA_TYPE_TQ1_0 = 34,
	QA_TYPE_TQ2_0 = 35,
	QA_TYPE_MXFP4 = 39,
	QA_TYPE_COUNT = 40
};

/* Elements per 256-element hash block (see blockhash.h). */
#define QA_HASH_BLOCK_ELEMS 256

struct qa_type_info {
	enum qa_type id;
	const char *name;     /* ggml's name: "q4_K", "f32", ... */
	uint32_t block_elems; /* elements per quantization block */
	uint32_t block_bytes; /* bytes per quantization block */
	bool decodable;       /* qa_quant can dequantize it */
	bool quantizable;     /* qa_quant can produce it bit-exactly */
};

/* The entry for id, or NULL when id is not a ggml type. */
const struct qa_type_info *qa_type_get(uint32_t id);

/* The entry whose name equals name (case-insensitive), or NULL. */
const struct qa_type_info *qa_type_by_name(const char *name);

/* The name of id, or "unknown" when it is not a ggml type. */
const char *qa_type_name(uint32_t id);

/*
 * Bytes taken by n elements of type t: n must be a multiple of the block
 * size.  Returns false when it is not, or when the result overflows.
 */
bool qa_type_nbytes(const struct qa_type_info *t, uint64_t n, uint64_t *out);

/* Bits per weight of t: 8 * block_bytes / block_elems. */
double qa_type_bpw(const struct qa_type_info *t);

#endif
