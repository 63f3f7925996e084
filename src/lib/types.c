/*
 * types.c - the static ggml type table.  Geometry figures are ggml's.
 */
#include "types.h"

#include <strings.h>

#include "cursor.h"

#define T(id, name, be, bb, dec, q) [id] = { id, name, be, bb, dec, q, }

static const struct qa_type_info table[QA_TYPE_COUNT] = {
	T(QA_TYPE_F32, "f32", 1, 4, true, true),
	T(QA_TYPE_F16, "f16", 1, 2, true, true),
	T(QA_TYPE_Q4_0, "q4_0", 32, 18, true, true),
	T(QA_TYPE_Q4_1, "q4_1", 32, 20, true, true),
	T(QA_TYPE_Q5_0, "q5_0", 32, 22, true, true),
	T(QA_TYPE_Q5_1, "q5_1", 32, 24, true, true),
	T(QA_TYPE_Q8_0, "q8_0", 32, 34, true, true),
	T(QA_TYPE_Q8_1, "q8_1", 32, 36, false, false),
	T(QA_TYPE_Q2_K, "q2_K", 256, 84, true, true),
	T(QA_TYPE_Q3_K, "q3_K", 256, 110, true, true),
	T(QA_TYPE_Q4_K, "q4_K", 256, 144, true, true),
	T(QA_TYPE_Q5_K, "q5_K", 256, 176, true, true),
	T(QA_TYPE_Q6_K, "q6_K", 256, 210, true, true),
	T(QA_TYPE_Q8_K, "q8_K", 256, 292, true, false),
	T(QA_TYPE_IQ2_XXS, "iq2_xxs", 256, 66, true, true),
	T(QA_TYPE_IQ2_XS, "iq2_xs", 256, 74, true, true),
	T(QA_TYPE_IQ3_XXS, "iq3_xxs", 256, 98, true, true),
	T(QA_TYPE_IQ1_S, "iq1_s", 256, 50, true, true),
	T(QA_TYPE_IQ4_NL, "iq4_nl", 32, 18, true, true),
	T(QA_TYPE_IQ3_S, "iq3_s", 256, 110, true, true),
	T(QA_TYPE_IQ2_S, "iq2_s", 256, 82, true, true),
	T(QA_TYPE_IQ4_XS, "iq4_xs", 256, 136, true, true),
	T(QA_TYPE_I8, "i8", 1, 1, false, false),
	T(QA_TYPE_I16, "i16", 1, 2, false, false),
	T(QA_TYPE_I32, "i32", 1, 4, false, false),
	T(QA_TYPE_I64, "i64", 1, 8, false, false),
	T(QA_TYPE_F64, "f64", 1, 8, false, false),
	T(QA_TYPE_IQ1_M, "iq1_m", 256, 56, true, true),
	T(QA_TYPE_BF16, "bf16", 1, 2, true, true),
	T(QA_TYPE_TQ1_0, "tq1_0", 256, 54, true, true),
	T(QA_TYPE_TQ2_0, "tq2_0", 256, 66, true, true),
	T(QA_TYPE_MXFP4, "mxfp4", 32, 17, true, true),
};

const struct qa_type_info *qa_type_get(uint32_t id)
{
	if (id >= QA_TYPE_COUNT || table[id].name == NULL)
		return NULL;
	return &table[id];
}

const struct qa_type_info *qa_type_by_name(const char *name)
{
	if (!name)
		return NULL;
	for (unsigned i = 0; i < QA_TYPE_COUNT; i++)
		if (table[i].name && strcasecmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

const char *qa_type_name(uint32_t id)
{
	const struct qa_type_info *t = qa_type_get(id);
	return t ? t->name : "unknown";
}

bool qa_type_nbytes(const struct qa_type_info *t, uint64_t n, uint64_t *out)
{
	if (!t || n % t->block_elems != 0)
		return false;
	return qa_mul_u64(n / t->block_elems, t->block_bytes, out);
}

double qa_type_bpw(const struct qa_type_info *t)
{
	return 8.0 * (double)t->block_bytes / (double)t->block_elems;
}
