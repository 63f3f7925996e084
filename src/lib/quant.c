/*
 * quant.c - the per-type dispatch table for quantization and
 * dequantization, and the finiteness check run before quantizing.
 *
 * The table is indexed by ggml type id.  An entry whose two functions are
 * both NULL means "not implemented", for which qa_quant_ops returns NULL.
 * The functions themselves live in quant_fp.c, quant_legacy.c, quant_k.c,
 * quant_iq.c, quant_iq2.c, quant_iq1.c, quant_iq4xs.c, quant_iq3.c,
 * quant_tq.c and quant_mxfp4.c.  Also the resolution of a requested
 * path (quant_fit.h) that the families with one vector path share.
 */
#include <string.h>

#include "quant.h"
#include "quant_fit.h"

bool qa_quant_path_fast(enum qa_quant_k_path path, bool available, bool *fast)
{
	switch (path) {
	case QA_QUANT_K_SCALAR:
		*fast = false;
		return true;
	case QA_QUANT_K_SIMD8:
		*fast = true;
		return available;
	case QA_QUANT_K_AUTO:
		*fast = available;
		return true;
	default:
		return false;
	}
}

static const struct qa_quant_ops ops_table[QA_TYPE_COUNT] = {
	[QA_TYPE_F32] = { qa_quantize_f32, qa_dequantize_f32 },
	[QA_TYPE_F16] = { qa_quantize_f16, qa_dequantize_f16 },
	[QA_TYPE_BF16] = { qa_quantize_bf16, qa_dequantize_bf16 },
	[QA_TYPE_Q4_0] = { qa_quantize_q4_0, qa_dequantize_q4_0, qa_quantize_rows_q4_0 },
	[QA_TYPE_Q4_1] = { qa_quantize_q4_1, qa_dequantize_q4_1, qa_quantize_rows_q4_1 },
	[QA_TYPE_Q5_0] = { qa_quantize_q5_0, qa_dequantize_q5_0, qa_quantize_rows_q5_0 },
	[QA_TYPE_Q5_1] = { qa_quantize_q5_1, qa_dequantize_q5_1, qa_quantize_rows_q5_1 },
	[QA_TYPE_Q8_0] = { qa_quantize_q8_0, qa_dequantize_q8_0 },
	[QA_TYPE_Q2_K] = { qa_quantize_q2_K, qa_dequantize_q2_K, qa_quantize_rows_q2_K },
	[QA_TYPE_Q3_K] = { qa_quantize_q3_K, qa_dequantize_q3_K, qa_quantize_rows_q3_K },
	[QA_TYPE_Q4_K] = { qa_quantize_q4_K, qa_dequantize_q4_K, qa_quantize_rows_q4_K },
	[QA_TYPE_Q5_K] = { qa_quantize_q5_K, qa_dequantize_q5_K, qa_quantize_rows_q5_K },
	[QA_TYPE_Q6_K] = { qa_quantize_q6_K, qa_dequantize_q6_K, qa_quantize_rows_q6_K },
	[QA_TYPE_Q8_K] = { NULL, qa_dequantize_q8_K },
	[QA_TYPE_IQ4_NL] = { qa_quantize_iq4_nl, qa_dequantize_iq4_nl, qa_quantize_rows_iq4_nl },
	/* The grid i-quants: ggml refuses three without an importance matrix. */
	[QA_TYPE_IQ2_XXS] = { NULL, qa_dequantize_iq2_xxs, qa_quantize_rows_iq2_xxs, true, true },
	[QA_TYPE_IQ2_XS] = { NULL, qa_dequantize_iq2_xs, qa_quantize_rows_iq2_xs, true, true },
	[QA_TYPE_IQ2_S] = { qa_quantize_iq2_s, qa_dequantize_iq2_s, qa_quantize_rows_iq2_s, false, true },
	[QA_TYPE_IQ1_S] = { NULL, qa_dequantize_iq1_s, qa_quantize_rows_iq1_s, true, true },
	[QA_TYPE_IQ1_M] = { qa_quantize_iq1_m, qa_dequantize_iq1_m, qa_quantize_rows_iq1_m, false, true },
	/* ggml accepts iq3_xxs without an importance matrix, llama-quantize does not */
	[QA_TYPE_IQ3_XXS] = { qa_quantize_iq3_xxs, qa_dequantize_iq3_xxs, qa_quantize_rows_iq3_xxs, false, true },
	[QA_TYPE_IQ3_S] = { qa_quantize_iq3_s, qa_dequantize_iq3_s, qa_quantize_rows_iq3_s, false, false },
	[QA_TYPE_IQ4_XS] = { qa_quantize_iq4_xs, qa_dequantize_iq4_xs, qa_quantize_rows_iq4_xs, false, false },
	[QA_TYPE_TQ1_0] = { qa_quantize_tq1_0, qa_dequantize_tq1_0, NULL, false, false },
	[QA_TYPE_TQ2_0] = { qa_quantize_tq2_0, qa_dequantize_tq2_0, NULL, false, false },
	[QA_TYPE_MXFP4] = { qa_quantize_mxfp4, qa_dequantize_mxfp4, NULL, false, false },
};

const struct qa_quant_ops *qa_quant_ops(uint32_t id)
{
	if (id >= QA_TYPE_COUNT)
		return NULL;
	const struct qa_quant_ops *ops = &ops_table[id];
	if (ops->quantize == NULL && ops->dequantize == NULL)
		return NULL;
	return ops;
}

/*
 * A float is NaN or infinite exactly when its exponent field is all ones;
 * testing the bits keeps the answer independent of floating-point modes.
 */
size_t qa_quant_find_nonfinite(const float *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &src[i], sizeof u);
		if ((u & 0x7f800000u) == 0x7f800000u)
			return i;
	}
	return n;
}
