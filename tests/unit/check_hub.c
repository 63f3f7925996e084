#define _POSIX_C_SOURCE 200809L
/*
 * check_hub.c - hf:// URLs and the Hub's naming.  The expected URLs follow
 * huggingface_hub's conventions (constants.py HUGGINGFACE_CO_URL_TEMPLATE,
 * file_download.hf_hub_url: the revision quoted with safe="", the path with
 * safe="/"; utils/_hf_uris.py: refs/pr/N and refs/convert/NAME matched
 * before the path is split off), llama.cpp's tag rule (the tag followed by
 * '.' or '-', case-insensitive, mmproj/imatrix excluded, first shard only)
 * and the split-GGUF name pattern STEM-%05d-of-%05d.gguf.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"

struct parse_case {
	const char *uri;
	int kind;
	const char *repo, *rev, *path, *quant;
	const char *resolve; /* with HF_ENDPOINT=http://hub.test/ ; NULL: none */
};

static const struct parse_case good[] = {
	{ "hf://org/name/model.safetensors", QA_HUB_MODEL, "org/name", "main", "model.safetensors", "",
	  "http://hub.test/org/name/resolve/main/model.safetensors" },
	{ "hf://org/name@v1.0/sub/dir/f.gguf", QA_HUB_MODEL, "org/name", "v1.0", "sub/dir/f.gguf", "",
	  "http://hub.test/org/name/resolve/v1.0/sub/dir/f.gguf" },
	{ "hf://org/name@refs/pr/12/x.gguf", QA_HUB_MODEL, "org/name", "refs/pr/12", "x.gguf", "",
	  "http://hub.test/org/name/resolve/refs%2Fpr%2F12/x.gguf" },
	{ "hf://org/name@refs/convert/parquet/data/a.parquet", QA_HUB_MODEL, "org/name",
	  "refs/convert/parquet", "data/a.parquet", "",
	  "http://hub.test/org/name/resolve/refs%2Fconvert%2Fparquet/data/a.parquet" },
	{ "hf://datasets/org/data@0123456789abcdef0123456789abcdef01234567/a b.gguf", QA_HUB_DATASET,
	  "org/data", "0123456789abcdef0123456789abcdef01234567", "a b.gguf", "",
	  "http://hub.test/datasets/org/data/resolve/0123456789abcdef0123456789abcdef01234567/a%20b.gguf" },
	{ "hf://models/Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M", QA_HUB_MODEL, "Qwen/Qwen2.5-7B-Instruct-GGUF",
	  "main", "", "Q4_K_M", NULL },
	{ "hf://org/name@refs/pr/3:q8_0", QA_HUB_MODEL, "org/name", "refs/pr/3", "", "q8_0", NULL },
	{ "hf://org/name", QA_HUB_MODEL, "org/name", "main", "", "", NULL },
	{ "hf://org/name@dev", QA_HUB_MODEL, "org/name", "dev", "", "", NULL },
};

START_TEST(parse_good)
{
	const struct parse_case *c = &good[_i];
	struct qa_hub_uri u;
	struct qa_diag d;
	setenv("HF_ENDPOINT", "http://hub.test/", 1);
	ck_assert_int_eq(qa_hub_parse(c->uri, &u, &d), QA_OK);
	ck_assert_int_eq(u.kind, c->kind);
	ck_assert_str_eq(u.repo, c->repo);
	ck_assert_str_eq(u.rev, c->rev);
	ck_assert_str_eq(u.path, c->path);
	ck_assert_str_eq(u.quant, c->quant);
	if (c->resolve) {
		char *r = qa_hub_resolve_url(&u, NULL);
		ck_assert_str_eq(r, c->resolve);
		free(r);
	}
}
END_TEST

START_TEST(resolve_pinned_and_tree)
{
	struct qa_hub_uri u;
	setenv("HF_ENDPOINT", "http://127.0.0.1:9//", 1);
	ck_assert_int_eq(qa_hub_parse("hf://org/name@main/f.gguf", &u, NULL), QA_OK);
	char *r = qa_hub_resolve_url(&u, "0123456789abcdef0123456789abcdef01234567");
	ck_assert_str_eq(r, "http://127.0.0.1:9/org/name/resolve/0123456789abcdef0123456789abcdef01234567/f.gguf");
	free(r);
	ck_assert_int_eq(qa_hub_parse("hf://org/name@refs/pr/1:Q4_0", &u, NULL), QA_OK);
	r = qa_hub_tree_url(&u);
	ck_assert_str_eq(r, "http://127.0.0.1:9/api/models/org/name/tree/refs%2Fpr%2F1?recursive=true");
	free(r);
	unsetenv("HF_ENDPOINT");
	ck_assert_str_eq(qa_hub_endpoint(), "https://huggingface.co");
}
END_TEST

struct match_case {
	const char *name, *quant;
	bool match;
};

static const struct match_case matches[] = {
	{ "Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Q4_K_M", true },
	{ "qwen2.5-7b-instruct-q4_k_m.gguf", "Q4_K_M", true },
	{ "sub/model.Q4_K_M.gguf", "q4_k_m", true },
	{ "model-Q4_K_M-00001-of-00003.gguf", "Q4_K_M", true },
	{ "model-Q4_K_M-00002-of-00003.gguf", "Q4_K_M", false },
	{ "model-Q4_K_M.gguf", "Q4_K", false },
	{ "model-Q4_K_S.gguf", "Q4_K_M", false },
	{ "mmproj-model-Q4_K_M.gguf", "Q4_K_M", false },
	{ "model-Q4_K_M.imatrix.gguf", "Q4_K_M", false },
	{ "model-Q4_K_M.bin", "Q4_K_M", false },
	{ "model-Q4_K_M.gguf", "", false },
	{ "IQ4_XS/model-IQ4_XS-00001-of-00002.gguf", "IQ4_XS", true },
};

START_TEST(quant_match)
{
	const struct match_case *c = &matches[_i];
	ck_assert_msg(qa_hub_quant_matches(c->name, c->quant) == c->match, "%s ~ %s", c->name, c->quant);
}
END_TEST

struct split_case {
	const char *name;
	bool ok;
	unsigned no, count;
	size_t stem;
};

static const struct split_case splits[] = {
	{ "m-00001-of-00003.gguf", true, 1, 3, 1 },
	{ "Qwen2.5-Q8_0-00002-of-00002.gguf", true, 2, 2, 12 },
	{ "m-00004-of-00003.gguf", false, 0, 0, 0 },
	{ "m-00000-of-00003.gguf", false, 0, 0, 0 },
	{ "m-0001-of-00003.gguf", false, 0, 0, 0 },
	{ "-00001-of-00003.gguf", false, 0, 0, 0 },
	{ "m-00001-of-00003.safetensors", false, 0, 0, 0 },
	{ "m-0000a-of-00003.gguf", false, 0, 0, 0 },
};

START_TEST(split_names)
{
	const struct split_case *c = &splits[_i];
	unsigned no = 0, count = 0;
	size_t stem = 0;
	ck_assert_msg(qa_hub_split_name(c->name, &no, &count, &stem) == c->ok, "%s", c->name);
	if (c->ok) {
		ck_assert_uint_eq(no, c->no);
		ck_assert_uint_eq(count, c->count);
		ck_assert_uint_eq(stem, c->stem);
	}
}
END_TEST

static const char *const bad[] = {
	"hf://justone",
	"hf://justone/",
	"hf:///name/f.gguf",
	"hf://org/../f.gguf",
	"hf://org/name/../x",
	"hf://org/name//x",
	"hf://org/name/x/",
	"hf://org/name@/x",
	"hf://org/name@refs/pr/x/f",
	"hf://org/name@refs/convert//f",
	"hf://org/name@a..b/f",
	"hf://org/name:Q4 K",
	"hf://org/name:",
	"hf://spaces/org/name/app.py",
	"hf://org/na me/f",
	"hf://org/name/f\x01.gguf",
	"hf://org/name/a\\b",
	"https://huggingface.co/org/name",
};

START_TEST(parse_bad)
{
	struct qa_hub_uri u;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_msg(qa_hub_parse(bad[_i], &u, &d) == QA_ERR_USAGE, "%s accepted", bad[_i]);
	ck_assert(d.msg[0] != '\0');
}
END_TEST

START_TEST(parse_limits)
{
	/* a path just past the buffer, and a 97-character name segment */
	struct qa_hub_uri u;
	char uri[1200];
	memset(uri, 'a', sizeof uri);
	memcpy(uri, "hf://org/name/", 14);
	uri[14 + sizeof u.path] = '\0';
	ck_assert_int_eq(qa_hub_parse(uri, &u, NULL), QA_ERR_USAGE);
	uri[14 + sizeof u.path - 1] = '\0';
	ck_assert_int_eq(qa_hub_parse(uri, &u, NULL), QA_OK);
	ck_assert_uint_eq(strlen(u.path), sizeof u.path - 1);
	char name[200] = "hf://org/";
	memset(name + 9, 'n', 97);
	name[9 + 97] = '\0';
	ck_assert_int_eq(qa_hub_parse(name, &u, NULL), QA_ERR_USAGE);
	name[9 + 96] = '\0';
	ck_assert_int_eq(qa_hub_parse(name, &u, NULL), QA_OK);
}
END_TEST

START_TEST(token_sources)
{
	char dir[] = "/tmp/qa-hub-XXXXXX", path[128];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/token", dir);
	FILE *f = fopen(path, "w");
	fputs("hf_fromfile\nsecond line\n", f);
	fclose(f);
	unsetenv("HF_TOKEN_PATH");
	setenv("HF_HOME", dir, 1);
	setenv("HF_TOKEN", "hf_fromenv", 1);
	char *t = qa_hub_token();
	ck_assert_str_eq(t, "hf_fromenv");
	free(t);
	unsetenv("HF_TOKEN");
	t = qa_hub_token();
	ck_assert_str_eq(t, "hf_fromfile");
	free(t);
	unlink(path);
	ck_assert_ptr_null(qa_hub_token());
	rmdir(dir);
}
END_TEST

static Suite *hub_suite(void)
{
	Suite *s = suite_create("hub");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, parse_good, 0, (int)(sizeof good / sizeof good[0]));
	tcase_add_test(tc, resolve_pinned_and_tree);
	tcase_add_loop_test(tc, quant_match, 0, (int)(sizeof matches / sizeof matches[0]));
	tcase_add_loop_test(tc, split_names, 0, (int)(sizeof splits / sizeof splits[0]));
	tcase_add_test(tc, token_sources);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_test(tc, parse_limits);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_loop_test(tc, parse_bad, 0, (int)(sizeof bad / sizeof bad[0]));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hub_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
