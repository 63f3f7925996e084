/*
 * check_arch.c - Check suite for arch.c, the architecture table.
 *
 * core: lookups by name and by config.json fields, stated against
 * llama.cpp's converter (conversion/llama.py registers MistralForCausalLM
 * under LlamaModel, whose model_arch is LLAMA; gemma.py registers
 * Gemma3ForConditionalGeneration for GEMMA3) and the model loader (70B:
 * src/models/llama.cpp and qwen2.cpp).  limits: the known-name list in
 * small buffers.  malformed: every row's renaming rules are well formed
 * (a '#' on both sides or neither, no HF or GGUF name listed twice within a
 * row), which the name mapping relies on.
 */
#include <check.h>
#include <string.h>

#include "arch.h"

/* ------------------------------------------------------------------ core */

START_TEST(test_find)
{
	const struct qa_arch *a = qa_arch_find("mistral");
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->name, "mistral");
	ck_assert_str_eq(a->gguf, "llama"); /* the converter writes mistral as llama */
	a = qa_arch_find("llama");
	ck_assert_str_eq(a->name, "llama");
	static const char *const known[] = { "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3" };
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		a = qa_arch_find(known[i]);
		ck_assert_msg(a != NULL, "%s", known[i]);
		ck_assert_str_eq(a->name, known[i]);
	}
	ck_assert_ptr_null(qa_arch_find("Llama"));
	ck_assert_ptr_null(qa_arch_find("falcon"));
	ck_assert_ptr_null(qa_arch_find(""));
	ck_assert_ptr_null(qa_arch_find(NULL));
	ck_assert_uint_ge(qa_arch_count(), 7);
	ck_assert_ptr_null(qa_arch_at(qa_arch_count()));
}
END_TEST

START_TEST(test_from_config)
{
	static const struct {
		const char *cls, *type, *want; /* want NULL: unknown */
	} c[] = {
		{ "LlamaForCausalLM", "llama", "llama" },
		{ "MistralForCausalLM", "mistral", "mistral" },
		{ "MistralForCausalLM", "llama", "mistral" },  /* the class decides */
		{ "Qwen2ForCausalLM", NULL, "qwen2" },
		{ "Qwen3ForCausalLM", "qwen3", "qwen3" },
		{ "Gemma2ForCausalLM", "gemma2", "gemma2" },
		{ "Gemma3ForCausalLM", "gemma3_text", "gemma3" },
		{ "Gemma3ForConditionalGeneration", "gemma3", "gemma3" },
		{ "Phi3ForCausalLM", "phi3", "phi3" },
		{ NULL, "gemma3_text", "gemma3" },
		{ "", "qwen2", "qwen2" },
		{ "FancyNewForCausalLM", "qwen3", "qwen3" },   /* unknown class: model_type */
		{ "FancyNewForCausalLM", "fancy", NULL },
		{ "GemmaForCausalLM", "gemma", NULL },          /* gemma (1) is not in the table */
		{ NULL, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		const struct qa_arch *a = qa_arch_from_config(c[i].cls, c[i].type);
		if (c[i].want == NULL)
			ck_assert_msg(a == NULL, "case %zu", i);
		else {
			ck_assert_msg(a != NULL, "case %zu", i);
			ck_assert_str_eq(a->name, c[i].want);
		}
	}
}
END_TEST

START_TEST(test_flags)
{
	ck_assert(qa_arch_has(qa_arch_find("llama"), QA_ARCH_PERMUTE_QK));
	ck_assert(qa_arch_has(qa_arch_find("mistral"), QA_ARCH_PERMUTE_QK));
	ck_assert(!qa_arch_has(qa_arch_find("qwen2"), QA_ARCH_PERMUTE_QK));
	ck_assert(!qa_arch_has(qa_arch_find("qwen3"), QA_ARCH_PERMUTE_QK));
	ck_assert(!qa_arch_has(qa_arch_find("gemma3"), QA_ARCH_PERMUTE_QK));
	ck_assert(!qa_arch_has(qa_arch_find("phi3"), QA_ARCH_PERMUTE_QK));
	ck_assert(qa_arch_has(qa_arch_find("gemma2"), QA_ARCH_NORM_PLUS_ONE | QA_ARCH_DROP_LM_HEAD));
	ck_assert(qa_arch_has(qa_arch_find("gemma3"), QA_ARCH_NORM_PLUS_ONE));
	ck_assert(!qa_arch_has(qa_arch_find("gemma3"), QA_ARCH_DROP_LM_HEAD));
	ck_assert(qa_arch_has(qa_arch_find("qwen2"), QA_ARCH_70B_AT_80));
	ck_assert(qa_arch_has(qa_arch_find("llama"), QA_ARCH_70B_AT_80_GQA));
	ck_assert(!qa_arch_has(qa_arch_find("qwen3"), QA_ARCH_70B_AT_80));
	ck_assert(!qa_arch_has(qa_arch_find("qwen3"), QA_ARCH_70B_AT_80_GQA));
	ck_assert(!qa_arch_has(NULL, 0));
}
END_TEST

/* ---------------------------------------------------------------- limits */

START_TEST(test_known_list)
{
	char buf[QA_ARCH_LIST_CAP];
	const char *s = qa_arch_known_list(buf, sizeof buf);
	ck_assert_ptr_eq(s, buf);
	ck_assert(strncmp(s, "llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3", 49) == 0);
	for (size_t i = 0; i < qa_arch_count(); i++)
		ck_assert_ptr_nonnull(strstr(s, qa_arch_at(i)->name));
	char small[9];
	ck_assert_str_eq(qa_arch_known_list(small, sizeof small), "llama"); /* cut at a whole name */
	char tiny[1];
	ck_assert_str_eq(qa_arch_known_list(tiny, sizeof tiny), "");
	ck_assert_str_eq(qa_arch_known_list(NULL, 0), "");
}
END_TEST

/* ------------------------------------------------------------- malformed */

START_TEST(test_rules_well_formed)
{
	for (size_t i = 0; i < qa_arch_count(); i++) {
		const struct qa_arch *a = qa_arch_at(i);
		ck_assert_ptr_nonnull(a->gguf);
		ck_assert_ptr_nonnull(a->hf_class);
		ck_assert_ptr_nonnull(a->hf_classes[0]);
		ck_assert_ptr_nonnull(a->model_types[0]);
		ck_assert_ptr_eq(qa_arch_from_config(a->hf_class, NULL), a);
		const struct qa_arch_rename *all[64];
		size_t n = 0;
		for (const struct qa_arch_names *l = a->names; l->rules; l++)
			for (size_t k = 0; k < l->n; k++) {
				ck_assert_uint_lt(n, 64);
				all[n++] = &l->rules[k];
			}
		ck_assert_uint_gt(n, 0);
		for (size_t k = 0; k < n; k++) {
			bool h = strchr(all[k]->hf, '#') != NULL, g = strchr(all[k]->gguf, '#') != NULL;
			ck_assert_msg(h == g, "%s: %s -> %s", a->name, all[k]->hf, all[k]->gguf);
			for (size_t j = k + 1; j < n; j++) {
				ck_assert_msg(strcmp(all[k]->hf, all[j]->hf) != 0, "%s: %s twice", a->name, all[k]->hf);
				/* a fixed suffix (gpt-oss's down_proj_bias -> .bias) tells two apart */
				bool same_suffix = all[k]->suffix == all[j]->suffix ||
				                   (all[k]->suffix && all[j]->suffix &&
				                    strcmp(all[k]->suffix, all[j]->suffix) == 0);
				ck_assert_msg(!same_suffix || strcmp(all[k]->gguf, all[j]->gguf) != 0, "%s: %s twice",
				              a->name, all[k]->gguf);
			}
		}
	}
}
END_TEST

static Suite *arch_suite(void)
{
	Suite *s = suite_create("arch");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_from_config);
	tcase_add_test(tc, test_flags);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_test(tc, test_known_list);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_test(tc, test_rules_well_formed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(arch_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
