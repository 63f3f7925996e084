/*
 * check_policy.c - the gate policy: its table of names, parsing (a corpus of
 * malformed policies with the offsets a reader finds by hand), and the one
 * evaluation, case by case, against the rules stated in issue 10: a tensor
 * fails when its verdict's action is fail or its RMSE ratio exceeds its
 * class's limit, warns likewise, skips win, and without a policy only
 * identical passes.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "policy.h"
#include "reproduce.h"
#include "testutil.h"

/* ------------------------------------------------------------------ core */

START_TEST(table_names)
{
	/* diff's verdicts come first, in enum order, spelled as the JSON spells them */
	for (int v = 0; v < QA_VERDICT_COUNT; v++)
		ck_assert_str_eq(qa_policy_status_at((size_t)v)->name, qa_verdict_name((enum qa_verdict)v));
	for (size_t i = 0; i < qa_policy_status_count(); i++) {
		const struct qa_policy_status *s = qa_policy_status_at(i);
		ck_assert_int_eq(qa_policy_status_find(s->name), (int)i);
		ck_assert(s->commands != 0);
	}
	ck_assert_int_ge(qa_policy_status_find("imatrix"), 0);
	ck_assert_int_ge(qa_policy_status_find("unpermuted"), 0);
	ck_assert_int_eq(qa_policy_status_find("Divergent"), -1);
	ck_assert_ptr_null(qa_policy_status_at(qa_policy_status_count()));
}
END_TEST

START_TEST(parse_full)
{
	size_t len;
	char *buf = tu_slurp(tu_path("tests/data/policy/good-full.json"), &len);
	ck_assert_ptr_nonnull(buf);
	struct qa_policy *p;
	struct qa_diag d;
	ck_assert_int_eq(qa_policy_parse(buf, len, &p, &d), QA_OK);
	ck_assert_int_eq(p->status[qa_policy_status_find("layout-swap")], QA_ACTION_WARN);
	ck_assert_int_eq(p->status[qa_policy_status_find("extra")], QA_ACTION_IGNORE);
	ck_assert_int_eq(p->status[qa_policy_status_find("divergent")], QA_ACTION_FAIL);  /* unlisted: default */
	ck_assert_int_eq(p->status[qa_policy_status_find("identical")], QA_ACTION_PASS);
	ck_assert_int_eq(p->recipe_deviation, QA_ACTION_WARN);
	ck_assert_uint_eq(p->n_limits, 2);
	ck_assert_str_eq(p->limits[0].cls, "*");
	ck_assert(p->limits[0].fail == 1.5 && p->limits[0].warn == 1.1);
	ck_assert_str_eq(p->limits[1].cls, "attn_v");
	ck_assert(p->limits[1].fail == 2.0 && p->limits[1].warn == 0);
	ck_assert_uint_eq(p->n_skip, 2);
	ck_assert_str_eq(p->skip[1], "blk.*.attn_norm.weight");
	qa_policy_free(p);
	free(buf);
}
END_TEST

/* One tensor judged under one policy. */
struct gate_case {
	const char *policy;       /* NULL: no policy */
	const char *name;
	enum qa_verdict verdict;
	double rmse, requant;     /* < 0: no error figures */
	bool deviates;            /* the recipe gives another type */
	enum qa_action want;
};

#define P(x) "{\"schema\":\"quantaudit.policy/1\"," x "}"
static const struct gate_case gate_cases[] = {
	/* no policy: identical passes, everything else fails, figures and recipe not judged */
	{ NULL, "blk.0.attn_q.weight", QA_VERDICT_IDENTICAL, 1.0, 1.0, true, QA_ACTION_PASS },
	{ NULL, "blk.0.attn_q.weight", QA_VERDICT_DIVERGENT, 9.0, 1.0, false, QA_ACTION_FAIL },
	{ NULL, "blk.0.attn_q.weight", QA_VERDICT_LAYOUT_SWAP, -1, -1, false, QA_ACTION_FAIL },
	{ NULL, "blk.0.attn_q.weight", QA_VERDICT_MISSING, -1, -1, false, QA_ACTION_FAIL },
	{ NULL, "blk.0.attn_q.weight", QA_VERDICT_EXTRA, -1, -1, false, QA_ACTION_FAIL },
	/* verdict actions */
	{ P("\"verdicts\":{\"divergent\":\"warn\"}"), "blk.0.attn_q.weight", QA_VERDICT_DIVERGENT, 1.0, 1.0, false, QA_ACTION_WARN },
	{ P("\"verdicts\":{\"divergent\":\"ignore\"}"), "blk.0.attn_q.weight", QA_VERDICT_DIVERGENT, 1.0, 1.0, false, QA_ACTION_IGNORE },
	{ P("\"verdicts\":{\"divergent\":\"warn\"}"), "blk.0.attn_q.weight", QA_VERDICT_TRANSPOSED, -1, -1, false, QA_ACTION_FAIL },
	{ P("\"verdicts\":{\"identical\":\"fail\"}"), "blk.0.attn_q.weight", QA_VERDICT_IDENTICAL, 1.0, 1.0, false, QA_ACTION_FAIL },
	{ P("\"verdicts\":{\"extra\":\"ignore\"}"), "blk.0.attn_q.weight", QA_VERDICT_EXTRA, -1, -1, false, QA_ACTION_IGNORE },
	/* RMSE ratio: the class limit, then "*"; strictly above fails */
	{ P("\"verdicts\":{\"divergent\":\"ignore\"},\"max_rmse_ratio\":{\"*\":1.5}"), "blk.3.ffn_up.weight", QA_VERDICT_DIVERGENT, 1.6, 1.0, false, QA_ACTION_FAIL },
	{ P("\"verdicts\":{\"divergent\":\"ignore\"},\"max_rmse_ratio\":{\"*\":1.5}"), "blk.3.ffn_up.weight", QA_VERDICT_DIVERGENT, 1.5, 1.0, false, QA_ACTION_IGNORE },
	{ P("\"verdicts\":{\"divergent\":\"ignore\"},\"max_rmse_ratio\":{\"*\":1.5,\"ffn_up\":2}"), "blk.3.ffn_up.weight", QA_VERDICT_DIVERGENT, 1.9, 1.0, false, QA_ACTION_IGNORE },
	{ P("\"verdicts\":{\"divergent\":\"ignore\"},\"max_rmse_ratio\":{\"*\":1.5,\"ffn_up\":2}"), "blk.3.ffn_down.weight", QA_VERDICT_DIVERGENT, 1.9, 1.0, false, QA_ACTION_FAIL },
	{ P("\"verdicts\":{\"divergent\":\"ignore\"},\"warn_rmse_ratio\":{\"*\":1.1}"), "blk.3.ffn_up.weight", QA_VERDICT_DIVERGENT, 1.2, 1.0, false, QA_ACTION_WARN },
	{ P("\"verdicts\":{\"divergent\":\"warn\"},\"max_rmse_ratio\":{\"attn_q.bias\":1.1}"), "blk.0.attn_q.bias", QA_VERDICT_DIVERGENT, 1.2, 1.0, false, QA_ACTION_FAIL },
	{ P("\"verdicts\":{\"divergent\":\"warn\"},\"max_rmse_ratio\":{\"attn_q.bias\":1.1}"), "blk.0.attn_q.weight", QA_VERDICT_DIVERGENT, 1.2, 1.0, false, QA_ACTION_WARN },
	/* a zero re-quantization error makes any error an infinite ratio */
	{ P("\"verdicts\":{\"divergent\":\"ignore\"},\"max_rmse_ratio\":{\"*\":1000}"), "blk.0.attn_q.weight", QA_VERDICT_DIVERGENT, 1e-9, 0.0, false, QA_ACTION_FAIL },
	/* recipe deviations */
	{ P("\"recipe_deviation\":\"fail\""), "blk.0.attn_v.weight", QA_VERDICT_IDENTICAL, 1.0, 1.0, true, QA_ACTION_FAIL },
	{ P("\"recipe_deviation\":\"warn\""), "blk.0.attn_v.weight", QA_VERDICT_IDENTICAL, 1.0, 1.0, true, QA_ACTION_WARN },
	{ P("\"recipe_deviation\":\"warn\""), "blk.0.attn_v.weight", QA_VERDICT_DIVERGENT, 1.0, 1.0, true, QA_ACTION_FAIL },
	{ P("\"recipe_deviation\":\"ignore\""), "blk.0.attn_v.weight", QA_VERDICT_IDENTICAL, 1.0, 1.0, true, QA_ACTION_PASS },
	/* skips win over everything */
	{ P("\"skip\":[\"output.weight\"]"), "output.weight", QA_VERDICT_DIVERGENT, 9.0, 1.0, true, QA_ACTION_IGNORE },
	{ P("\"skip\":[\"blk.*.attn_?.weight\"]"), "blk.12.attn_k.weight", QA_VERDICT_MISSING, -1, -1, false, QA_ACTION_IGNORE },
	{ P("\"skip\":[\"blk.*.attn_?.weight\"]"), "blk.12.attn_output.weight", QA_VERDICT_MISSING, -1, -1, false, QA_ACTION_FAIL },
};
#undef P

START_TEST(gate_table)
{
	const struct gate_case *c = &gate_cases[_i];
	struct qa_policy *p = NULL;
	struct qa_diag d;
	if (c->policy)
		ck_assert_msg(qa_policy_parse(c->policy, strlen(c->policy), &p, &d) == QA_OK, "%s", d.msg);
	struct qa_diff_tensor t;
	memset(&t, 0, sizeof t);
	t.name = (char *)c->name;
	t.verdict = c->verdict;
	t.type = 12;
	t.blocks = 10;
	t.divergent_blocks = c->verdict == QA_VERDICT_DIVERGENT ? 3 : 0;
	t.first_divergent = c->verdict == QA_VERDICT_DIVERGENT ? 4 : QA_NO_BLOCK;
	t.has_error = c->rmse >= 0;
	t.rmse = c->rmse;
	t.requant_rmse = c->requant;
	t.in_plan = true;
	t.recipe_type = c->deviates ? 14 : 12;
	struct qa_diff_result r;
	memset(&r, 0, sizeof r);
	r.n = 1;
	r.tensors = &t;
	r.artifact_path = (char *)"a.gguf";
	struct qa_gate g;
	qa_gate_init(&g);
	ck_assert_int_eq(qa_gate_add_diff(&g, p, &r, "a.gguf", &d), QA_OK);
	ck_assert_uint_eq(g.n, 1);
	ck_assert_msg(g.items[0].action == c->want, "case %d: %s, want %s (%s)", _i,
	              qa_action_name(g.items[0].action), qa_action_name(c->want), g.items[0].detail);
	ck_assert_int_eq(g.pass, c->want != QA_ACTION_FAIL);
	ck_assert_uint_eq(g.counts[c->want], 1);
	ck_assert_uint_eq(g.suites[0].counts[c->want], 1);
	/* a tensor that does not pass says why; one that passes says nothing */
	ck_assert_int_eq(g.items[0].detail[0] != '\0', c->want != QA_ACTION_PASS);
	qa_gate_free(&g);
	qa_policy_free(p);
}
END_TEST

/* diff's metadata audit: one "metadata" item per finding, none for a listed difference */
START_TEST(gate_metadata)
{
	struct qa_reproduce_kv kv[2];
	memset(kv, 0, sizeof kv);
	kv[0].key = (char *)"qwen2.context_length";
	kv[0].kind = QA_RKV_CHANGED;
	kv[0].expected = (char *)"u32 32768";
	kv[0].actual = (char *)"u32 4096";
	kv[0].finding = true;
	kv[1].key = (char *)"general.name";
	kv[1].kind = QA_RKV_EXTRA;
	kv[1].actual = (char *)"string \"x\"";
	struct qa_diff_tensor t;
	memset(&t, 0, sizeof t);
	t.name = (char *)"blk.0.attn_q.weight";
	t.verdict = QA_VERDICT_IDENTICAL;
	struct qa_diff_result r;
	memset(&r, 0, sizeof r);
	r.n = 1;
	r.tensors = &t;
	r.metadata = kv;
	r.n_metadata = 2;
	r.metadata_audited = true;
	static const char *const pols[] = { NULL, "{\"schema\":\"quantaudit.policy/1\",\"verdicts\":{\"metadata\":\"warn\"}}",
	                                    "{\"schema\":\"quantaudit.policy/1\",\"skip\":[\"qwen2.*\"]}" };
	static const enum qa_action want[] = { QA_ACTION_FAIL, QA_ACTION_WARN, QA_ACTION_IGNORE };
	for (int i = 0; i < 3; i++) {
		struct qa_policy *p = NULL;
		struct qa_diag d;
		if (pols[i])
			ck_assert_msg(qa_policy_parse(pols[i], strlen(pols[i]), &p, &d) == QA_OK, "%s", d.msg);
		struct qa_gate g;
		qa_gate_init(&g);
		ck_assert_int_eq(qa_gate_add_diff(&g, p, &r, "a.gguf", &d), QA_OK);
		ck_assert_uint_eq(g.n, 2);
		ck_assert_uint_eq(g.tensors, 1); /* a finding is an item, not a tensor */
		ck_assert_str_eq(g.items[1].name, "qwen2.context_length");
		ck_assert_str_eq(g.items[1].status, "metadata");
		ck_assert_str_eq(g.items[1].cls, "metadata");
		ck_assert_int_eq(g.items[1].action, want[i]);
		ck_assert_int_eq(g.pass, want[i] != QA_ACTION_FAIL);
		if (want[i] != QA_ACTION_IGNORE)
			ck_assert_ptr_nonnull(strstr(g.items[1].detail, "expected u32 32768, artifact u32 4096"));
		qa_gate_free(&g);
		qa_policy_free(p);
	}
}
END_TEST

START_TEST(gate_verify)
{
	/* a manifest of three tensors; the file lost one, changed one, gained one */
	struct qa_manifest_tensor mt[3];
	memset(mt, 0, sizeof mt);
	mt[0].name = (char *)"a";
	mt[1].name = (char *)"b";
	mt[2].name = (char *)"c";
	struct qa_manifest want;
	memset(&want, 0, sizeof want);
	want.n = 3;
	want.tensors = mt;
	struct qa_verify_item items[3] = {
		{ QA_VERIFY_MISMATCH, "b", 10, 2, 5, true },
		{ QA_VERIFY_MISSING, "c", 0, 0, UINT64_MAX, false },
		{ QA_VERIFY_EXTRA, "z", 0, 0, UINT64_MAX, false },
	};
	struct qa_verify v = { false, true, 3, items, 1 };
	struct qa_gate g;
	struct qa_diag d;
	qa_gate_init(&g);
	ck_assert_int_eq(qa_gate_add_verify(&g, NULL, &want, &v, true, "f.gguf", &d), QA_OK);
	ck_assert_uint_eq(g.n, 5);  /* a, b, c, z, (file) */
	ck_assert_str_eq(g.items[0].status, "match");
	ck_assert_str_eq(g.items[1].status, "mismatch");
	ck_assert_str_eq(g.items[2].status, "missing");
	ck_assert_str_eq(g.items[3].status, "extra");
	ck_assert_str_eq(g.items[4].status, "file-mismatch");
	ck_assert_uint_eq(g.counts[QA_ACTION_FAIL], 4);
	ck_assert_uint_eq(g.identical, 1);
	ck_assert(!g.pass);
	qa_gate_free(&g);
	/* the whole-file digest not computed: not judged */
	qa_gate_init(&g);
	ck_assert_int_eq(qa_gate_add_verify(&g, NULL, &want, &v, false, "f.gguf", &d), QA_OK);
	ck_assert_uint_eq(g.n, 4);
	qa_gate_free(&g);
}
END_TEST

/* ------------------------------------------------------------------ limits */

START_TEST(too_large)
{
	size_t n = (1u << 20) + 1;
	char *buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	memset(buf, ' ', n);
	struct qa_policy *p = (struct qa_policy *)1;
	struct qa_diag d;
	ck_assert_int_eq(qa_policy_parse(buf, n, &p, &d), QA_ERR_FORMAT);
	ck_assert_ptr_null(p);
	free(buf);
}
END_TEST

START_TEST(empty_gate_passes)
{
	struct qa_gate g;
	qa_gate_init(&g);
	ck_assert(g.pass);
	ck_assert_uint_eq(g.n, 0);
	qa_gate_free(&g);
}
END_TEST

/* ------------------------------------------------------------------ malformed */

/* Each malformed policy with the offset where a reader of the text finds the
 * fault (python3 str.find on the file), -1 when only a range is pinned. */
static const struct {
	const char *file;
	long offset;
	const char *reason;
} bad[] = {
	{ "bad-unknown-key.json", 32, "unknown policy key 'verdict'" },
	{ "bad-unknown-verdict.json", 63, "unknown verdict or status 'frobbed'" },
	{ "bad-unknown-action.json", 56, "unknown action" },
	{ "bad-schema.json", 10, "unknown policy schema" },
	{ "bad-no-schema.json", 0, "no \"schema\"" },
	{ "bad-negative-limit.json", 54, "must be a number above 0" },
	{ "bad-string-limit.json", 54, "must be a number above 0" },
	{ "bad-skip-not-array.json", 39, "must be an array" },
	{ "bad-skip-not-string.json", 39, "\"skip\"[0]" },
	{ "bad-recipe-type.json", 51, "\"recipe_deviation\" must be" },
	{ "bad-verdicts-array.json", 43, "\"verdicts\" must be an object" },
	{ "bad-not-object.json", 0, "not a json object" },
	{ "bad-truncated.json", 44, "not valid json" },
	{ "bad-empty.json", 0, "not valid json" },
	{ "bad-duplicate.json", -1, "duplicate" },
};

START_TEST(malformed_corpus)
{
	char rel[256];
	snprintf(rel, sizeof rel, "tests/data/policy/%s", bad[_i].file);
	struct qa_policy *p = NULL;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_policy_load(tu_path(rel), &p, &d), QA_ERR_FORMAT);
	ck_assert_ptr_null(p);
	ck_assert_msg(strstr(d.msg, bad[_i].reason), "%s: '%s'", bad[_i].file, d.msg);
	if (bad[_i].offset >= 0)
		ck_assert_msg(d.offset == (uint64_t)bad[_i].offset, "%s: offset %llu", bad[_i].file,
		              (unsigned long long)d.offset);
	else
		ck_assert(d.offset >= 32 && d.offset <= 42);  /* within the second "schema" key */
}
END_TEST

START_TEST(missing_file)
{
	struct qa_policy *p = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_policy_load("/nonexistent/policy.json", &p, &d), QA_ERR_IO);
	ck_assert_ptr_null(p);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("policy");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits"), *mal = tcase_create("malformed");
	tcase_add_test(core, table_names);
	tcase_add_test(core, parse_full);
	tcase_add_loop_test(core, gate_table, 0, (int)(sizeof gate_cases / sizeof gate_cases[0]));
	tcase_add_test(core, gate_metadata);
	tcase_add_test(core, gate_verify);
	tcase_add_test(limits, too_large);
	tcase_add_test(limits, empty_gate_passes);
	tcase_add_loop_test(mal, malformed_corpus, 0, (int)(sizeof bad / sizeof bad[0]));
	tcase_add_test(mal, missing_file);
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
