/*
 * check_rope.c - unit tests for the tensors llama.cpp's converter generates (rope.c).
 *
 * core: the llama3 factors of Llama 3.1 8B (head 128, rope_theta 500000, factor 8) and Llama 3.2 1B (head 64,
 * factor 32), bit for bit.  Source of truth: the f32 values llama.cpp's own expression
 * (conversion/llama.py LlamaModel.generate_extra_tensors) gives under Debian's torch 1.13.1, on its AVX2,
 * AVX-512 and scalar paths alike (see docs/design.md).  Config reading: rope_scaling's "type" taken as
 * rope_type, top-level rope_theta mirrored in, phi3's lists rounded to f32.
 * limits / malformed: a longrope list of the wrong length and an unknown longrope type are refused, as the
 * converter refuses them; no factors without a long_factor.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "config.h"
#include "rope.h"

static const uint32_t llama31_8b[64] = {
	0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000,
	0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000,
	0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000,
	0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000,
	0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f9a8ed5,
	0x3fc6d64a, 0x4001af1d, 0x402c732e, 0x406bcace, 0x40a83c06, 0x41000000,
	0x41000000, 0x41000000, 0x41000000, 0x41000000, 0x41000000, 0x41000000,
	0x41000000, 0x41000000, 0x41000000, 0x41000000, 0x41000000, 0x41000000,
	0x41000000, 0x41000000, 0x41000000, 0x41000000, 0x41000000, 0x41000000,
	0x41000000, 0x41000000, 0x41000000, 0x41000000, 0x41000000, 0x41000000,
	0x41000000, 0x41000000, 0x41000000, 0x41000000,
};
static const uint32_t llama32_1b[32] = {
	0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000,
	0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000,
	0x3f800000, 0x3f800000, 0x3f800000, 0x3fd35ec2, 0x4052b46f, 0x411aaaee,
	0x42000000, 0x42000000, 0x42000000, 0x42000000, 0x42000000, 0x42000000,
	0x42000000, 0x42000000, 0x42000000, 0x42000000, 0x42000000, 0x42000000,
	0x42000000, 0x42000000,
};

static void check_llama3(const char *json, const uint32_t *want, size_t n)
{
	struct qa_model_config c;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_config_parse(&c, json, strlen(json), &d), QA_OK);
	struct qa_rope_tensor t[QA_ROPE_MAX_TENSORS];
	size_t nt = 0;
	ck_assert_int_eq(qa_rope_generate(qa_arch_find("llama"), &c, t, &nt, &d), QA_OK);
	ck_assert_uint_eq(nt, 1);
	ck_assert_str_eq(t[0].name, "rope_freqs.weight");
	ck_assert_uint_eq(t[0].n, n);
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &t[0].data[i], 4);
		ck_assert_msg(u == want[i], "value %zu: %08x, want %08x", i, u, want[i]);
	}
	qa_rope_free(t, nt);
}

START_TEST(llama31_8b_bits)
{
	check_llama3("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":4096,\"num_attention_heads\":32,"
	             "\"rope_theta\":500000.0,\"rope_scaling\":{\"factor\":8.0,\"low_freq_factor\":1.0,"
	             "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}}",
	             llama31_8b, 64);
}
END_TEST

START_TEST(llama32_1b_bits)
{
	/* "type" instead of "rope_type", integer factors: read as the converter reads them */
	check_llama3("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":2048,\"num_attention_heads\":32,"
	             "\"head_dim\":64,\"rope_theta\":500000.0,\"rope_scaling\":{\"factor\":32,\"low_freq_factor\":1,"
	             "\"high_freq_factor\":4,\"original_max_position_embeddings\":8192,\"type\":\"LLaMA3\"}}",
	             llama32_1b, 32);
}
END_TEST

START_TEST(no_scaling_no_tensor)
{
	const char *js[] = {
		"{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":256,\"num_attention_heads\":2}",
		"{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":256,\"num_attention_heads\":2,"
		"\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}}",
		"{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":256,\"num_attention_heads\":2,"
		"\"rope_scaling\":{\"rope_type\":\"llama3\"}}",
		"{\"architectures\":[\"Phi3ForCausalLM\"],\"hidden_size\":256,\"num_attention_heads\":8,"
		"\"rope_scaling\":{\"type\":\"longrope\",\"long_factor\":[],\"short_factor\":[]}}",
	};
	for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
		struct qa_model_config c;
		struct qa_diag d;
		qa_diag_clear(&d);
		ck_assert_int_eq(qa_config_parse(&c, js[i], strlen(js[i]), &d), QA_OK);
		struct qa_rope_tensor t[QA_ROPE_MAX_TENSORS];
		size_t nt = 9;
		ck_assert_int_eq(qa_rope_generate(qa_arch_find(c.architecture), &c, t, &nt, &d), QA_OK);
		ck_assert_uint_eq(nt, 0);
	}
}
END_TEST

static enum qa_err phi3(const char *scaling, struct qa_rope_tensor *t, size_t *nt, struct qa_diag *d)
{
	char js[512];
	snprintf(js, sizeof js, "{\"architectures\":[\"Phi3ForCausalLM\"],\"hidden_size\":32,"
	         "\"num_attention_heads\":4,\"rope_scaling\":%s}", scaling);
	struct qa_model_config c;
	enum qa_err e = qa_config_parse(&c, js, strlen(js), d); /* a non-number entry fails here */
	return e ? e : qa_rope_generate(qa_arch_find("phi3"), &c, t, nt, d);
}

START_TEST(phi3_lists)
{
	struct qa_rope_tensor t[QA_ROPE_MAX_TENSORS];
	size_t nt = 0;
	struct qa_diag d;
	qa_diag_clear(&d);
	/* head 8: 4 entries each; 1.0000000596046448 is 1 + 2^-24, which rounds to 1.0f (ties to even) */
	ck_assert_int_eq(phi3("{\"type\":\"su\",\"long_factor\":[1.0000000596046448,2,3.1,4],"
	                      "\"short_factor\":[1,1,1,1.5]}", t, &nt, &d), QA_OK);
	ck_assert_uint_eq(nt, 2);
	ck_assert_str_eq(t[0].name, "rope_factors_long.weight");
	ck_assert_str_eq(t[1].name, "rope_factors_short.weight");
	ck_assert_uint_eq(t[0].n, 4);
	ck_assert(t[0].data[0] == 1.0f && t[0].data[1] == 2.0f && t[0].data[2] == 3.1f && t[1].data[3] == 1.5f);
	qa_rope_free(t, nt);
}
END_TEST

START_TEST(phi3_refused)
{
	struct qa_rope_tensor t[QA_ROPE_MAX_TENSORS];
	size_t nt = 0;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(phi3("{\"type\":\"longrope\",\"long_factor\":[1,2,3],\"short_factor\":[1,1,1]}",
	                      t, &nt, &d), QA_ERR_FORMAT);
	ck_assert_uint_eq(nt, 0);
	ck_assert_int_eq(phi3("{\"type\":\"dynamic\",\"long_factor\":[1,2,3,4],\"short_factor\":[1,1,1,1]}",
	                      t, &nt, &d), QA_ERR_FORMAT);
	ck_assert_int_eq(phi3("{\"type\":\"longrope\",\"long_factor\":[1,2,3,4]}", t, &nt, &d), QA_ERR_FORMAT);
	ck_assert_int_eq(phi3("{\"type\":\"longrope\",\"long_factor\":[1,\"x\",3,4],\"short_factor\":[1,1,1,1]}",
	                      t, &nt, &d), QA_ERR_FORMAT);
	ck_assert_uint_eq(nt, 0);
}
END_TEST

static Suite *rope_suite(void)
{
	Suite *s = suite_create("rope");
	TCase *core = tcase_create("core");
	tcase_add_test(core, llama31_8b_bits);
	tcase_add_test(core, llama32_1b_bits);
	tcase_add_test(core, no_scaling_no_tensor);
	tcase_add_test(core, phi3_lists);
	suite_add_tcase(s, core);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, phi3_refused);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(rope_suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
