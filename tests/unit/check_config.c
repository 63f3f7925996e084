/*
 * check_config.c - unit tests for config.json loading.
 *
 * core: realistic configs (qwen2 as shipped, llama with only architectures,
 * defaults) and loading beside a checkpoint.  limits: the longest accepted
 * names and integers.  malformed: every tests/data/config/bad-*.json, where
 * the expected offset is found independently as the position of the
 * field's key in the file text.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "safetensors.h"

static char *cfg_path(const char *sub, const char *rel)
{
	const char *top = getenv("QA_TOP_SRCDIR");
	if (!top || !*top)
		top = ".";
	size_t n = strlen(top) + strlen(rel) + 64;
	char *p = malloc(n);
	ck_assert_ptr_nonnull(p);
	snprintf(p, n, "%s/tests/data/%s/%s", top, sub, rel);
	return p;
}

static void load_ok(struct qa_model_config *c, const char *rel)
{
	char *p = cfg_path("config", rel);
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_config_load(c, p, &d);
	ck_assert_msg(e == QA_OK, "%s: %s", p, d.msg);
	free(p);
}

/* ------------------------------------------------------------------ core */

START_TEST(test_qwen2)
{
	struct qa_model_config c;
	load_ok(&c, "qwen2.json");
	ck_assert_str_eq(c.architecture, "qwen2");
	ck_assert_str_eq(c.hf_architecture, "Qwen2ForCausalLM");
	ck_assert(c.has_architecture && c.has_hf_architecture);
	ck_assert_uint_eq(c.hidden_size, 896);
	ck_assert_uint_eq(c.intermediate_size, 4864);
	ck_assert_uint_eq(c.n_layers, 24);
	ck_assert_uint_eq(c.n_heads, 14);
	ck_assert_uint_eq(c.n_kv_heads, 2);
	ck_assert(c.has_n_kv_heads);
	ck_assert_uint_eq(c.vocab_size, 151936);
	ck_assert_uint_eq(c.head_dim, 64);
	ck_assert(!c.has_head_dim);
	ck_assert_uint_eq(c.max_position, 32768);
	ck_assert(c.rms_norm_eps == 1e-06);
	ck_assert(c.rope_theta == 1000000.0);
	ck_assert(c.tie_word_embeddings && c.has_tie_word_embeddings);
	ck_assert(c.has_hidden_size && c.has_intermediate_size && c.has_n_layers &&
	          c.has_n_heads && c.has_vocab_size && c.has_max_position &&
	          c.has_rms_norm_eps && c.has_rope_theta);
}
END_TEST

/* The MoE fields as Qwen3-30B-A3B's and gpt-oss-20b's config.json spell them. */
START_TEST(test_moe)
{
	static const char q3[] = "{\"architectures\":[\"Qwen3MoeForCausalLM\"],\"model_type\":\"qwen3_moe\","
	                         "\"hidden_size\":2048,\"intermediate_size\":6144,\"moe_intermediate_size\":768,"
	                         "\"num_experts\":128,\"num_experts_per_tok\":8}";
	static const char oss[] = "{\"architectures\":[\"GptOssForCausalLM\"],\"model_type\":\"gpt_oss\","
	                          "\"hidden_size\":2880,\"intermediate_size\":2880,\"num_local_experts\":32,"
	                          "\"experts_per_token\":4}";
	static const char bad[] = "{\"num_experts\":-1}";
	struct qa_model_config c;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_config_parse(&c, q3, sizeof q3 - 1, &d), QA_OK);
	ck_assert_str_eq(c.architecture, "qwen3moe");
	ck_assert(c.has_n_experts && c.has_n_experts_used && c.has_expert_ffn);
	ck_assert_uint_eq(c.n_experts, 128);
	ck_assert_uint_eq(c.n_experts_used, 8);
	ck_assert_uint_eq(c.expert_ffn, 768);
	ck_assert_int_eq(qa_config_parse(&c, oss, sizeof oss - 1, &d), QA_OK);
	ck_assert_str_eq(c.architecture, "gpt-oss");
	ck_assert_uint_eq(c.n_experts, 32);
	ck_assert_uint_eq(c.n_experts_used, 4);
	ck_assert_uint_eq(c.expert_ffn, 2880);
	ck_assert_int_eq(qa_config_parse(&c, bad, sizeof bad - 1, &d), QA_ERR_FORMAT);
	ck_assert_uint_eq(d.offset, 1);
}
END_TEST

START_TEST(test_llama_defaults)
{
	struct qa_model_config c;
	load_ok(&c, "llama-arch-only.json");
	ck_assert_str_eq(c.architecture, "llama");
	ck_assert_str_eq(c.hf_architecture, "LlamaForCausalLM");
	ck_assert_uint_eq(c.n_heads, 32);
	ck_assert_uint_eq(c.n_kv_heads, 32); /* default: n_heads */
	ck_assert(!c.has_n_kv_heads);
	ck_assert_uint_eq(c.head_dim, 128); /* null counts as absent */
	ck_assert(!c.has_head_dim);
	ck_assert(c.rope_theta == 10000.0); /* an integer is a number */
	ck_assert(!c.tie_word_embeddings && !c.has_tie_word_embeddings);

	load_ok(&c, "mistral-arch.json");
	ck_assert_str_eq(c.architecture, "mistral");
	ck_assert_uint_eq(c.head_dim, 0); /* 100 / 3 does not divide */
	ck_assert_uint_eq(c.n_kv_heads, 3);

	load_ok(&c, "class-over-type.json"); /* the converter goes by architectures[0] */
	ck_assert_str_eq(c.architecture, "mistral");
	ck_assert_str_eq(c.model_type, "llama");

	load_ok(&c, "unknown-arch.json");
	ck_assert_str_eq(c.architecture, "");
	ck_assert(!c.has_architecture);
	ck_assert_str_eq(c.hf_architecture, "FancyNewForCausalLM");
	ck_assert_uint_eq(c.head_dim, 128);
	ck_assert(c.has_head_dim);

	load_ok(&c, "minimal.json");
	ck_assert_str_eq(c.architecture, "");
	ck_assert_str_eq(c.hf_architecture, "");
	ck_assert(!c.has_hidden_size && !c.has_n_heads && !c.has_n_kv_heads &&
	          !c.has_head_dim && !c.has_rope_theta);
	ck_assert_uint_eq(c.n_kv_heads, 0);
	ck_assert_uint_eq(c.head_dim, 0);
}
END_TEST

/* Gemma 3: multimodal checkpoints keep the decoder's dimensions in text_config. */
START_TEST(test_gemma3)
{
	struct qa_model_config c;
	load_ok(&c, "gemma3-multimodal.json");
	ck_assert_str_eq(c.architecture, "gemma3");
	ck_assert_str_eq(c.hf_architecture, "Gemma3ForConditionalGeneration");
	ck_assert_str_eq(c.model_type, "gemma3");
	ck_assert(c.has_hidden_size && c.has_n_layers && c.has_head_dim && c.has_vocab_size);
	ck_assert_uint_eq(c.hidden_size, 2560); /* top-level null falls through */
	ck_assert_uint_eq(c.intermediate_size, 10240);
	ck_assert_uint_eq(c.n_layers, 34);
	ck_assert_uint_eq(c.n_heads, 8);
	ck_assert_uint_eq(c.n_kv_heads, 4);
	ck_assert_uint_eq(c.head_dim, 256);
	ck_assert_uint_eq(c.vocab_size, 262208);
	ck_assert(c.rms_norm_eps == 1e-06);

	load_ok(&c, "model-type-only.json"); /* Gemma 3 1B's model_type */
	ck_assert_str_eq(c.architecture, "gemma3");
	ck_assert_str_eq(c.hf_architecture, "");
	ck_assert_uint_eq(c.head_dim, 160);
}
END_TEST

START_TEST(test_beside)
{
	struct qa_model_config c;
	struct qa_st *st;
	struct qa_diag d;
	bool found = false;
	char *p = cfg_path("safetensors", "sharded");
	ck_assert_int_eq(qa_st_open(&st, p, &d), QA_OK);
	ck_assert_int_eq(qa_config_load_beside(&c, st, &found, &d), QA_OK);
	ck_assert(found);
	ck_assert_str_eq(c.architecture, "qwen2");
	ck_assert_uint_eq(c.hidden_size, 3);
	ck_assert_uint_eq(c.n_layers, 2);
	ck_assert(!c.tie_word_embeddings && c.has_tie_word_embeddings);
	qa_st_close(st);
	free(p);

	p = cfg_path("safetensors", "good-small.safetensors");
	ck_assert_int_eq(qa_st_open(&st, p, &d), QA_OK);
	found = true;
	ck_assert_int_eq(qa_config_load_beside(&c, st, &found, &d), QA_OK);
	ck_assert(!found);
	qa_st_close(st);
	free(p);

	/* No directory (memory source): nothing to find. */
	static const unsigned char empty[] = { 2, 0, 0, 0, 0, 0, 0, 0, '{', '}' };
	struct qa_source *src;
	ck_assert_int_eq(qa_source_open_memory(&src, empty, sizeof empty, "m", &d), QA_OK);
	ck_assert_int_eq(qa_st_open_source(&st, src, &d), QA_OK);
	found = true;
	ck_assert_int_eq(qa_config_load_beside(&c, st, &found, &d), QA_OK);
	ck_assert(!found);
	qa_st_close(st);
	qa_source_close(src);
}
END_TEST

START_TEST(test_missing)
{
	struct qa_model_config c;
	struct qa_diag d;
	char *p = cfg_path("config", "no-such.json");
	ck_assert_int_eq(qa_config_load(&c, p, &d), QA_ERR_IO);
	free(p);
	ck_assert_int_eq(qa_config_load(&c, NULL, &d), QA_ERR_USAGE);
}
END_TEST

/* ---------------------------------------------------------------- limits */

START_TEST(test_limits)
{
	struct qa_model_config c;
	load_ok(&c, "limit-name-63.json");
	ck_assert_uint_eq(strlen(c.model_type), 63);
	ck_assert(c.has_model_type && !c.has_architecture); /* no architecture is called that */
	load_ok(&c, "limit-int-max.json");
	ck_assert_uint_eq(c.vocab_size, 9223372036854775807ull);
	ck_assert_uint_eq(c.hidden_size, 0);
	ck_assert(c.has_hidden_size);
}
END_TEST

/* ------------------------------------------------------------- malformed */

static const struct {
	const char *file;
	enum qa_err code;
	const char *reason;
	const char *key; /* offset is where "key" appears; NULL: a parse position */
} bad[] = {
	{ "bad-negative.json", QA_ERR_FORMAT, "hidden_size is negative", "hidden_size" },
	{ "bad-type-string.json", QA_ERR_FORMAT, "hidden_size is not an integer", "hidden_size" },
	{ "bad-type-real.json", QA_ERR_FORMAT, "num_hidden_layers is not an integer", "num_hidden_layers" },
	{ "bad-tie-type.json", QA_ERR_FORMAT, "not a boolean", "tie_word_embeddings" },
	{ "bad-eps-type.json", QA_ERR_FORMAT, "rms_norm_eps is not a number", "rms_norm_eps" },
	{ "bad-theta-negative.json", QA_ERR_FORMAT, "rope_theta is negative", "rope_theta" },
	{ "bad-model-type.json", QA_ERR_FORMAT, "model_type is not a string", "model_type" },
	{ "bad-architectures.json", QA_ERR_FORMAT, "not an array", "architectures" },
	{ "bad-architectures-entry.json", QA_ERR_FORMAT, "not a string", "architectures" },
	{ "bad-name-64.json", QA_ERR_FORMAT, "longer than 63", "model_type" },
	{ "bad-duplicate.json", QA_ERR_FORMAT, "duplicate key", NULL },
	{ "bad-int-too-big.json", QA_ERR_FORMAT, "not valid json", NULL },
	{ "bad-truncated.json", QA_ERR_FORMAT, "not valid json", NULL },
	{ "bad-empty.json", QA_ERR_FORMAT, "not valid json", NULL },
	{ "bad-array.json", QA_ERR_FORMAT, "not a json object", NULL },
	{ "bad-text-config-type.json", QA_ERR_FORMAT, "text_config is not an object", "text_config" },
	{ "bad-text-config-field.json", QA_ERR_FORMAT, "hidden_size is negative", "text_config" },
};

START_TEST(test_bad)
{
	struct qa_model_config c;
	struct qa_diag d;
	char *p = cfg_path("config", bad[_i].file);
	memset(&c, 0x55, sizeof c);
	qa_diag_clear(&d);
	enum qa_err e = qa_config_load(&c, p, &d);
	ck_assert_msg(e == bad[_i].code, "%s: %d %s", bad[_i].file, e, d.msg);
	ck_assert_msg(strstr(d.msg, bad[_i].reason), "%s: %s", bad[_i].file, d.msg);
	ck_assert_uint_eq(c.hidden_size, 0); /* zeroed on failure */

	FILE *f = fopen(p, "rb");
	char text[4096];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	if (bad[_i].key) {
		char needle[80];
		snprintf(needle, sizeof needle, "\"%s\"", bad[_i].key);
		const char *at = strstr(text, needle);
		ck_assert_ptr_nonnull(at);
		ck_assert_uint_eq(d.offset, (uint64_t)(at - text));
	} else {
		ck_assert_uint_le(d.offset, n);
	}
	free(p);
}
END_TEST

START_TEST(test_bad_all_listed)
{
	char *p = cfg_path("config", "");
	DIR *dh = opendir(p);
	ck_assert_ptr_nonnull(dh);
	struct dirent *de;
	while ((de = readdir(dh)) != NULL) {
		if (strncmp(de->d_name, "bad-", 4) != 0)
			continue;
		bool found = false;
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
			found |= strcmp(bad[i].file, de->d_name) == 0;
		ck_assert_msg(found, "%s is not in the table", de->d_name);
	}
	closedir(dh);
	free(p);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_qwen2);
	tcase_add_test(tc, test_moe);
	tcase_add_test(tc, test_llama_defaults);
	tcase_add_test(tc, test_gemma3);
	tcase_add_test(tc, test_beside);
	tcase_add_test(tc, test_missing);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof bad / sizeof bad[0]));
	tcase_add_test(tc, test_bad_all_listed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
