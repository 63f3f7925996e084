#define _POSIX_C_SOURCE 200809L
/*
 * check_remote.c - the remote layer's bookkeeping: which paths are URLs,
 * URLs stripped of credentials and queries before they reach a message
 * (issue 9: "URLs in messages carry no credentials"), HF_HUB_OFFLINE's
 * accepted values (huggingface_hub constants.py: 1/ON/YES/TRUE), pins that
 * keep the first commit seen, and the "transfer" object's totals and
 * per-input entries.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote.h"

struct disp_case {
	const char *in, *out;
};

static const struct disp_case disps[] = {
	{ "https://user:secret@host.test/a/b.gguf", "https://host.test/a/b.gguf" },
	{ "https://host.test/a/b.gguf?X-Amz-Signature=abc&Expires=1", "https://host.test/a/b.gguf" },
	{ "http://host.test/a#frag", "http://host.test/a" },
	{ "http://host.test/p@q/f", "http://host.test/p@q/f" },
	{ "hf://org/name@main/f.gguf", "hf://org/name@main/f.gguf" },
	{ "http://host.test/a\nb", "http://host.test/a\\x0ab" },
	{ "http://host.test/a\\b\x1b[31m", "http://host.test/a\\\\b\\x1b[31m" },
};

START_TEST(display_url)
{
	char *s = qa_remote_display_url(disps[_i].in);
	ck_assert_str_eq(s, disps[_i].out);
	free(s);
}
END_TEST

START_TEST(is_url)
{
	ck_assert(qa_remote_is_url("https://x/y"));
	ck_assert(qa_remote_is_url("http://x/y"));
	ck_assert(qa_remote_is_url("hf://o/n"));
	ck_assert(!qa_remote_is_url("ftp://x/y"));
	ck_assert(!qa_remote_is_url("fixtures/models/x.gguf"));
	ck_assert(!qa_remote_is_url("hf:/o/n"));
	ck_assert(!qa_remote_is_url(NULL));
}
END_TEST

static const char *const offline_on[] = { "1", "ON", "yes", "True" };
static const char *const offline_off[] = { "0", "", "off", "no", "2" };

START_TEST(offline_env)
{
	struct qa_remote_options o;
	for (size_t i = 0; i < sizeof offline_on / sizeof offline_on[0]; i++) {
		setenv("HF_HUB_OFFLINE", offline_on[i], 1);
		qa_remote_options_default(&o);
		ck_assert_msg(o.offline, "%s", offline_on[i]);
	}
	for (size_t i = 0; i < sizeof offline_off / sizeof offline_off[0]; i++) {
		setenv("HF_HUB_OFFLINE", offline_off[i], 1);
		qa_remote_options_default(&o);
		ck_assert_msg(!o.offline, "%s", offline_off[i]);
	}
	unsetenv("HF_HUB_OFFLINE");
	qa_remote_options_default(&o);
	ck_assert(!o.offline);
	ck_assert_uint_eq(o.retries, 5);
	ck_assert_uint_eq(o.retry_wait_ms, 1000);
}
END_TEST

START_TEST(pins_keep_first)
{
	char buf[64];
	ck_assert(!qa_remote_pin_get("org/name@main", buf, sizeof buf));
	qa_remote_pin_set("org/name@main", "1111111111111111111111111111111111111111");
	qa_remote_pin_set("org/name@main", "2222222222222222222222222222222222222222");
	qa_remote_pin_set("org/name@dev", "");
	ck_assert(qa_remote_pin_get("org/name@main", buf, sizeof buf));
	ck_assert_str_eq(buf, "1111111111111111111111111111111111111111");
	ck_assert(!qa_remote_pin_get("org/name@dev", buf, sizeof buf));
}
END_TEST

START_TEST(transfer_totals)
{
	ck_assert_ptr_null(qa_remote_transfer_json()); /* a local run has none */
	int a = qa_remote_input_add("hf://o/n@main/a.gguf", NULL);
	int b = qa_remote_input_add("https://h/b.gguf", NULL);
	ck_assert_int_eq(qa_remote_input_add("hf://o/n@main/a.gguf", NULL), a);
	qa_remote_count(a, 100, 1, 0);
	qa_remote_count(a, 50, 1, 1);
	qa_remote_count(b, 7, 1, 0);
	qa_remote_count(-1, 3, 1, 0);
	qa_remote_cache_hit(b);
	qa_remote_input_commit(a, "0123456789abcdef0123456789abcdef01234567");
	json_t *t = qa_remote_transfer_json();
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "requests")), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "bytes")), 160);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "retries")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "cache_hits")), 1);
	json_t *in = json_object_get(t, "inputs");
	ck_assert_uint_eq(json_array_size(in), 2);
	json_t *e = json_array_get(in, 0);
	ck_assert_str_eq(json_string_value(json_object_get(e, "url")), "hf://o/n@main/a.gguf");
	ck_assert_str_eq(json_string_value(json_object_get(e, "commit")), "0123456789abcdef0123456789abcdef01234567");
	ck_assert_int_eq(json_integer_value(json_object_get(e, "bytes")), 150);
	ck_assert_int_eq(json_integer_value(json_object_get(e, "requests")), 2);
	ck_assert_ptr_null(json_object_get(json_array_get(in, 1), "commit"));
	json_decref(t);
	struct qa_diag d;
	ck_assert_int_eq(qa_remote_finish(&d), QA_OK);
	qa_remote_integrity_fail("hf://o/n@main/a.gguf: its SHA-256 differs from the Hub's");
	qa_remote_integrity_fail("second");
	ck_assert_int_eq(qa_remote_finish(&d), QA_ERR_NETWORK);
	ck_assert_str_eq(d.msg, "hf://o/n@main/a.gguf: its SHA-256 differs from the Hub's");
}
END_TEST

START_TEST(offline_open_fails)
{
	struct qa_remote_options o;
	char dir[] = "/tmp/qa-remote-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	qa_remote_options_default(&o);
	o.offline = true;
	o.cache_dir = dir;
	qa_remote_configure(&o);
	setenv("HF_HUB_CACHE", dir, 1);
	setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
	struct qa_source *s = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_remote_open(&s, "hf://org/name/f.gguf", &d), QA_ERR_IO);
	ck_assert_ptr_null(strstr(d.msg, "127.0.0.1")); /* names the URL as given */
	ck_assert_ptr_nonnull(strstr(d.msg, "hf://org/name/f.gguf"));
	ck_assert_int_eq(qa_remote_open(&s, "http://127.0.0.1:1/f.gguf", &d), QA_ERR_IO);
	ck_assert_ptr_nonnull(strstr(d.msg, "not cached"));
	ck_assert_int_eq(qa_remote_open(&s, "hf://org", &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_remote_open(&s, "hf://org/name:Q4_0", &d), QA_ERR_USAGE);
	rmdir(dir);
}
END_TEST

static Suite *remote_suite(void)
{
	Suite *s = suite_create("remote");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, display_url, 0, (int)(sizeof disps / sizeof disps[0]));
	tcase_add_test(tc, is_url);
	tcase_add_test(tc, pins_keep_first);
	tcase_add_test(tc, transfer_totals);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_test(tc, offline_env);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_test(tc, offline_open_fails);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(remote_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
