/*
 * check_order.c - Check suite for order.c: llama.cpp's weight order.
 *
 * Sources of truth: the tensor order of real-qwen2.Q4_K_M.gguf as the real
 * llama-quantize wrote it (../shared/oracle/real, copied here as a list),
 * and the layer values that glibc's sscanf(name, "blk.%d.", &layer) stores
 * for unusual names (measured with a C program on the build machine: the
 * table below is its output).  The mixture-of-experts orders are those of
 * fixtures/moe: the converter's (moe-B.BF16.gguf, moe-C.BF16.gguf, written
 * by tools/hf2gguf.py in convert_hf_to_gguf.py's order) and the real
 * llama-quantize's output (moe-B.MXFP4_MOE.gguf, moe-C.Q4_K_M.gguf), copied
 * here as lists (layer 0 of gpt-oss, layer 1 of qwen3moe, and the
 * unlayered tensors: a subset sorts as it does in the whole).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "order.h"

/* ---- core ---------------------------------------------------------------- */

/* llama-quantize's output order for real-qwen2 (qwen2, 2 layers, untied). */
static const char *const real_order[] = {
	"output.weight", "output_norm.weight", "token_embd.weight",
	"blk.0.attn_k.bias", "blk.0.attn_k.weight", "blk.0.attn_norm.weight",
	"blk.0.attn_output.weight", "blk.0.attn_q.bias", "blk.0.attn_q.weight",
	"blk.0.attn_v.bias", "blk.0.attn_v.weight", "blk.0.ffn_down.weight",
	"blk.0.ffn_gate.weight", "blk.0.ffn_norm.weight", "blk.0.ffn_up.weight",
	"blk.1.attn_k.bias", "blk.1.attn_k.weight", "blk.1.attn_norm.weight",
	"blk.1.attn_output.weight", "blk.1.attn_q.bias", "blk.1.attn_q.weight",
	"blk.1.attn_v.bias", "blk.1.attn_v.weight", "blk.1.ffn_down.weight",
	"blk.1.ffn_gate.weight", "blk.1.ffn_norm.weight", "blk.1.ffn_up.weight",
};
#define N_REAL (sizeof real_order / sizeof real_order[0])

/* The reference's (converter's) order of the same tensors. */
static const char *const converter_order[] = {
	"token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight",
	"blk.0.attn_q.bias", "blk.0.attn_k.weight", "blk.0.attn_k.bias",
	"blk.0.attn_v.weight", "blk.0.attn_v.bias", "blk.0.attn_output.weight",
	"blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
	"blk.0.ffn_down.weight", "blk.1.attn_norm.weight", "blk.1.attn_q.weight",
	"blk.1.attn_q.bias", "blk.1.attn_k.weight", "blk.1.attn_k.bias",
	"blk.1.attn_v.weight", "blk.1.attn_v.bias", "blk.1.attn_output.weight",
	"blk.1.ffn_norm.weight", "blk.1.ffn_gate.weight", "blk.1.ffn_up.weight",
	"blk.1.ffn_down.weight", "output_norm.weight", "output.weight",
};

START_TEST(test_real_order)
{
	size_t perm[N_REAL];
	ck_assert_int_eq(qa_order_sort(converter_order, N_REAL, perm, NULL), QA_OK);
	for (size_t i = 0; i < N_REAL; i++)
		ck_assert_str_eq(converter_order[perm[i]], real_order[i]);
}
END_TEST

/* gpt-oss (moe-B): converter order, then llama-quantize's. */
static const char *const moe_b_converter[] = {
	"token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_q.bias",
	"blk.0.attn_k.weight", "blk.0.attn_k.bias", "blk.0.attn_v.weight", "blk.0.attn_v.bias",
	"blk.0.attn_output.weight", "blk.0.attn_output.bias", "blk.0.attn_sinks.weight",
	"blk.0.post_attention_norm.weight", "blk.0.ffn_gate_inp.weight", "blk.0.ffn_gate_inp.bias",
	"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_gate_exps.bias",
	"blk.0.ffn_up_exps.bias", "blk.0.ffn_down_exps.weight", "blk.0.ffn_down_exps.bias",
	"output_norm.weight", "output.weight",
};
static const char *const moe_b_quantized[] = {
	"output.weight", "output_norm.weight", "token_embd.weight", "blk.0.attn_k.bias",
	"blk.0.attn_k.weight", "blk.0.attn_norm.weight", "blk.0.attn_output.bias",
	"blk.0.attn_output.weight", "blk.0.attn_q.bias", "blk.0.attn_q.weight",
	"blk.0.attn_sinks.weight", "blk.0.attn_v.bias", "blk.0.attn_v.weight",
	"blk.0.ffn_down_exps.bias", "blk.0.ffn_down_exps.weight", "blk.0.ffn_gate_exps.bias",
	"blk.0.ffn_gate_exps.weight", "blk.0.ffn_gate_inp.bias", "blk.0.ffn_gate_inp.weight",
	"blk.0.ffn_up_exps.bias", "blk.0.ffn_up_exps.weight", "blk.0.post_attention_norm.weight",
};
/* qwen3moe (moe-C). */
static const char *const moe_c_converter[] = {
	"token_embd.weight", "blk.1.attn_norm.weight", "blk.1.attn_q.weight", "blk.1.attn_k.weight",
	"blk.1.attn_v.weight", "blk.1.attn_output.weight", "blk.1.attn_q_norm.weight",
	"blk.1.attn_k_norm.weight", "blk.1.ffn_norm.weight", "blk.1.ffn_gate_inp.weight",
	"blk.1.ffn_down_exps.weight", "blk.1.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight",
	"output_norm.weight", "output.weight",
};
static const char *const moe_c_quantized[] = {
	"output.weight", "output_norm.weight", "token_embd.weight", "blk.1.attn_k.weight",
	"blk.1.attn_k_norm.weight", "blk.1.attn_norm.weight", "blk.1.attn_output.weight",
	"blk.1.attn_q.weight", "blk.1.attn_q_norm.weight", "blk.1.attn_v.weight",
	"blk.1.ffn_down_exps.weight", "blk.1.ffn_gate_exps.weight", "blk.1.ffn_gate_inp.weight",
	"blk.1.ffn_norm.weight", "blk.1.ffn_up_exps.weight",
};

static void check_sorted(const char *const *from, const char *const *want, size_t n)
{
	size_t perm[32];
	ck_assert_uint_le(n, 32);
	ck_assert_int_eq(qa_order_sort(from, n, perm, NULL), QA_OK);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(from[perm[i]], want[i]);
}

START_TEST(test_real_moe_order)
{
	check_sorted(moe_b_converter, moe_b_quantized, sizeof moe_b_converter / sizeof moe_b_converter[0]);
	ck_assert_uint_eq(sizeof moe_b_converter, sizeof moe_b_quantized);
	check_sorted(moe_c_converter, moe_c_quantized, sizeof moe_c_converter / sizeof moe_c_converter[0]);
	ck_assert_uint_eq(sizeof moe_c_converter, sizeof moe_c_quantized);
}
END_TEST

/* Pairs in llama.cpp's order: first strictly before second. */
static const struct {
	const char *first, *second;
} before[] = {
	{ "blk.9.ffn_up.weight", "blk.10.attn_k.weight" },   /* 9 < 10 numerically */
	{ "blk.2.x", "blk.10.a" },
	{ "blk.99.z", "blk.100.a" },
	{ "output.weight", "output_norm.weight" },           /* '.' < '_' */
	{ "output_norm.weight", "token_embd.weight" },
	{ "token_embd.weight", "blk.0.attn_k.bias" },        /* no layer (-1) first */
	{ "blk.0.ffn_down.weight", "blk.0.ffn_down_exps.weight" },
	{ "blk.0.ffn_down_exps.weight", "blk.0.ffn_down_shexp.weight" },
	{ "blk.0.ffn_gate.weight", "blk.0.ffn_gate_exps.weight" },
	{ "blk.0.ffn_gate_exps.weight", "blk.0.ffn_gate_inp.weight" },
	{ "blk.0.ffn_gate_inp.weight", "blk.0.ffn_gate_shexp.weight" },
	{ "blk.0.ffn_up_exps.weight", "blk.0.ffn_up_shexp.weight" },
	{ "blk.0.attn_k.bias", "blk.0.attn_k.weight" },
	{ "blk.-5.a", "blk.x" },                             /* -5 < -1 */
	{ "blk.x", "blk.0.a" },
	{ "blk.9.z", "blk.0010.a" },                         /* 10 > 9 although "0" < "9" */
};

START_TEST(test_before)
{
	ck_assert_int_lt(qa_order_cmp(before[_i].first, before[_i].second), 0);
	ck_assert_int_gt(qa_order_cmp(before[_i].second, before[_i].first), 0);
}
END_TEST

START_TEST(test_equal)
{
	ck_assert_int_eq(qa_order_cmp("blk.3.attn_q.weight", "blk.3.attn_q.weight"), 0);
	ck_assert_int_eq(qa_order_cmp("output.weight", "output.weight"), 0);
}
END_TEST

/* ---- limits: what sscanf("blk.%d.") stores ------------------------------- */

static const struct {
	const char *name;
	int layer;
} layers[] = {
	{ "blk.10.attn_q.weight", 10 }, { "blk.9.x", 9 }, { "blk.7", 7 },
	{ "blk. 3.a", 3 }, { "blk.\t4.a", 4 }, { "blk.+2.a", 2 }, { "blk.-1.a", -1 },
	{ "blk.-5.a", -5 }, { "blk.0010.a", 10 }, { "blk.4294967296.a", 0 },
	{ "blk.2147483648.a", -2147483647 - 1 }, { "blk.99999999999999999999.a", -1 },
	{ "blk.-2147483649.a", 2147483647 }, { "blk.-9223372036854775809.a", 0 },
	{ "blk.x", -1 }, { "blk.", -1 }, { "output.weight", -1 }, { "", -1 },
	{ "BLK.1.a", -1 }, { "xblk.1.a", -1 },
};

START_TEST(test_layers)
{
	ck_assert_int_eq(qa_order_layer(layers[_i].name), layers[_i].layer);
}
END_TEST

START_TEST(test_sort_stable_and_empty)
{
	const char *names[] = { "b", "a", "b", "blk.1.x", "a" };
	size_t perm[5];
	ck_assert_int_eq(qa_order_sort(names, 5, perm, NULL), QA_OK);
	size_t want[] = { 1, 4, 0, 2, 3 };
	for (size_t i = 0; i < 5; i++)
		ck_assert_uint_eq(perm[i], want[i]);
	ck_assert_int_eq(qa_order_sort(NULL, 0, NULL, NULL), QA_OK);
}
END_TEST

/* ---- malformed ----------------------------------------------------------- */

START_TEST(test_null_args)
{
	struct qa_diag d;
	size_t perm[1];
	const char *names[] = { "a" };
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_order_sort(NULL, 1, perm, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_order_sort(names, 1, NULL, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_order_layer(NULL), -1);
	ck_assert_int_lt(qa_order_cmp(NULL, "a"), 0);
}
END_TEST

static Suite *order_suite(void)
{
	Suite *s = suite_create("order");
	TCase *core = tcase_create("core");
	tcase_add_test(core, test_real_order);
	tcase_add_test(core, test_real_moe_order);
	tcase_add_loop_test(core, test_before, 0, (int)(sizeof before / sizeof before[0]));
	tcase_add_test(core, test_equal);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(limits, test_layers, 0, (int)(sizeof layers / sizeof layers[0]));
	tcase_add_test(limits, test_sort_stable_and_empty);
	suite_add_tcase(s, limits);
	TCase *malformed = tcase_create("malformed");
	tcase_add_test(malformed, test_null_args);
	suite_add_tcase(s, malformed);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(order_suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
