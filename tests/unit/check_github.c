/*
 * check_github.c - GitHub Actions output, held against the runner's rules
 * (actions/toolkit command.ts escaping; 10 annotations of each kind per
 * step; 1 MiB step summary; file-command delimiter syntax).
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "github.h"
#include "policy.h"
#include "testutil.h"

/* ------------------------------------------------------------------ core */

static const struct {
	const char *in;
	bool property;
	const char *want;
} esc[] = {
	{ "plain", false, "plain" },
	{ "100%", false, "100%25" },
	{ "a\r\nb", false, "a%0D%0Ab" },
	{ "a:b,c", false, "a:b,c" },
	{ "a:b,c", true, "a%3Ab%2Cc" },
	{ "x\n::add-mask::y", false, "x%0A::add-mask::y" },
	{ "x\n::add-mask::y", true, "x%0A%3A%3Aadd-mask%3A%3Ay" },
	{ "tab\there\x1b[31m", false, "tab\\x09here\\x1b[31m" },
	{ "a\\b", false, "a\\\\b" },
	{ "caf\xc3\xa9 \xff", false, "caf\xc3\xa9 \\xff" },
	{ "%0A", true, "%250A" },
};

START_TEST(escape_table)
{
	char out[128];
	ck_assert_str_eq(qa_github_escape(esc[_i].in, esc[_i].property, out, sizeof out), esc[_i].want);
}
END_TEST

START_TEST(escape_truncates_whole)
{
	char out[6];
	/* "ab%25" fits in 6 with its NUL; the next escape would not */
	ck_assert_str_eq(qa_github_escape("ab%%", false, out, sizeof out), "ab%25");
}
END_TEST

/* A gate of n_fail failing and n_warn warned items with hostile names. */
static char names[64][48];
static void make_gate(struct qa_gate *g, size_t n_fail, size_t n_warn)
{
	static struct qa_gate_suite su;
	qa_gate_init(g);
	g->items = calloc(n_fail + n_warn + 1, sizeof *g->items);
	for (size_t i = 0; i < n_fail + n_warn; i++) {
		struct qa_gate_item *it = &g->items[g->n++];
		snprintf(names[i], sizeof names[i], "t%zu\n::error::x,y:%%", i);
		it->name = names[i];
		it->status = "divergent";
		snprintf(it->cls, sizeof it->cls, "cls");
		it->action = i < n_fail ? QA_ACTION_FAIL : QA_ACTION_WARN;
		snprintf(it->detail, sizeof it->detail, "why %zu", i);
		g->counts[it->action]++;
	}
	su.name = "a.gguf";
	su.first = 0;
	su.n = g->n;
	g->tensors = g->n;
	g->suites = &su;
	g->n_suites = 1;
	g->pass = n_fail == 0;
}

static size_t count_prefix(const char *text, const char *prefix)
{
	size_t n = 0, k = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		n += strncmp(p, prefix, k) == 0;
	return n;
}

static const struct {
	size_t fail, warn, want_err, want_warn;
} caps[] = {
	{ 0, 0, 0, 0 }, { 1, 0, 1, 0 }, { 10, 10, 10, 10 }, { 11, 3, 10, 3 }, { 40, 20, 10, 10 },
};

START_TEST(annotation_caps)
{
	struct qa_gate g;
	make_gate(&g, caps[_i].fail, caps[_i].warn);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(qa_github_annotate(&g, "diff", f, NULL), QA_OK);
	fclose(f);
	/* every line is a command: hostile names could not start a new one */
	size_t lines = count_prefix(buf, "");
	ck_assert_uint_eq(count_prefix(buf, "::error title="), caps[_i].want_err);
	ck_assert_uint_eq(count_prefix(buf, "::warning title="), caps[_i].want_warn);
	ck_assert_uint_eq(lines, caps[_i].want_err + caps[_i].want_warn);
	ck_assert_ptr_null(strstr(buf, "\n::error::"));
	if (caps[_i].fail > 10)
		ck_assert_ptr_nonnull(strstr(buf, "more failing"));
	free(buf);
	free(g.items);
}
END_TEST

/* ------------------------------------------------------------------ limits */

START_TEST(summary_cut)
{
	char path[] = "/tmp/qa-summary-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	/* the step's summary already holds 1 MiB less 2000 bytes */
	size_t pre = QA_GITHUB_SUMMARY_MAX - 2000;
	char *fill = malloc(pre);
	memset(fill, 'x', pre);
	fill[pre - 1] = '\n';
	ck_assert(write(fd, fill, pre) == (ssize_t)pre);
	close(fd);
	free(fill);
	struct qa_gate g;
	make_gate(&g, 60, 0);
	struct qa_github_summary s = { "diff", NULL, NULL, NULL, NULL, NULL };
	ck_assert_int_eq(qa_github_summary_append(&g, &s, path, NULL), QA_OK);
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_lt(sb.st_size, QA_GITHUB_SUMMARY_MAX);
	ck_assert_int_gt(sb.st_size, pre);
	size_t len;
	char *all = tu_slurp(path, &len);
	ck_assert_ptr_nonnull(strstr(all + pre, "**Summary cut**"));
	free(all);
	/* an empty summary file takes the whole summary */
	ck_assert(truncate(path, 0) == 0);
	ck_assert_int_eq(qa_github_summary_append(&g, &s, path, NULL), QA_OK);
	all = tu_slurp(path, &len);
	ck_assert_ptr_null(strstr(all, "Summary cut"));
	ck_assert_uint_eq(count_prefix(all, "| cls | t"), 60);
	free(all);
	unlink(path);
	free(g.items);
}
END_TEST

START_TEST(outputs_delimiter)
{
	char path[] = "/tmp/qa-output-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	struct qa_gate g;
	make_gate(&g, 2, 1);
	ck_assert_int_eq(qa_github_outputs_append(&g, "dir\nverdict=pass/r.md", path, NULL), QA_OK);
	size_t len;
	char *all = tu_slurp(path, &len);
	ck_assert(strncmp(all, "verdict=fail\ntensors=3\nidentical=0\nfailing=2\nreport<<ghadelimiter_", 66) == 0);
	/* the delimiter line closes the value and appears exactly twice */
	const char *d = all + strlen("verdict=fail\ntensors=3\nidentical=0\nfailing=2\nreport<<");
	char delim[128];
	size_t k = strcspn(d, "\n");
	memcpy(delim, d, k);
	delim[k] = '\0';
	char *tail = strstr(all, "\ndir\nverdict=pass/r.md\n");
	ck_assert_ptr_nonnull(tail);
	ck_assert(strncmp(tail + strlen("\ndir\nverdict=pass/r.md\n"), delim, k) == 0);
	free(all);
	unlink(path);
	free(g.items);
}
END_TEST

/* ------------------------------------------------------------------ malformed */

START_TEST(unwritable)
{
	struct qa_gate g;
	struct qa_diag d;
	make_gate(&g, 1, 0);
	struct qa_github_summary s = { "diff", NULL, NULL, NULL, NULL, NULL };
	ck_assert_int_eq(qa_github_summary_append(&g, &s, "/nonexistent/dir/sum", &d), QA_ERR_IO);
	ck_assert_int_eq(qa_github_outputs_append(&g, NULL, "/nonexistent/dir/out", &d), QA_ERR_IO);
	free(g.items);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("github");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits"), *mal = tcase_create("malformed");
	tcase_add_loop_test(core, escape_table, 0, (int)(sizeof esc / sizeof esc[0]));
	tcase_add_test(core, escape_truncates_whole);
	tcase_add_loop_test(core, annotation_caps, 0, (int)(sizeof caps / sizeof caps[0]));
	tcase_add_test(limits, summary_cut);
	tcase_add_test(limits, outputs_delimiter);
	tcase_add_test(mal, unwritable);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, mal);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
