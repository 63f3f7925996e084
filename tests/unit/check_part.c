/*
 * check_part.c - the partition of a sharded audit, held against its stated
 * properties (every item to exactly one shard, deterministic, the greedy
 * bound: no shard exceeds the lightest by more than the heaviest item) and
 * the part parser against malformed documents; verify's parts merged back
 * into the unsharded comparison they were cut from (any shard count, any
 * order) and refused when they overlap, miss a shard, come from another
 * manifest or claim another shard's tensors; the shards' "transfer" objects
 * summed.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "part.h"
#include "testutil.h"

/* ------------------------------------------------------------------ core */

static const uint64_t w27[] = { 896, 14, 64, 8, 32, 8, 32, 8, 56, 14, 300, 300, 300, 14, 64, 8,
                                32, 8, 32, 8, 56, 14, 300, 300, 300, 14, 896 };

START_TEST(partition_properties)
{
	uint32_t n = (uint32_t)_i + 1;
	size_t m = sizeof w27 / sizeof w27[0];
	uint32_t a[32], b[32];
	ck_assert(qa_part_assign(w27, m, n, a));
	ck_assert(qa_part_assign(w27, m, n, b));
	ck_assert(memcmp(a, b, m * sizeof a[0]) == 0);
	uint64_t load[8] = { 0 }, heaviest = 0;
	for (size_t i = 0; i < m; i++) {
		ck_assert_uint_lt(a[i], n);
		load[a[i]] += w27[i];
		heaviest = w27[i] > heaviest ? w27[i] : heaviest;
	}
	uint64_t lo = UINT64_MAX, hi = 0;
	for (uint32_t s = 0; s < n; s++) {
		lo = load[s] < lo ? load[s] : lo;
		hi = load[s] > hi ? load[s] : hi;
	}
	ck_assert_uint_le(hi - lo, heaviest);
	if (n == 1)
		for (size_t i = 0; i < m; i++)
			ck_assert_uint_eq(a[i], 0);
}
END_TEST

START_TEST(partition_ties_by_position)
{
	/* equal weights go round-robin in order */
	uint64_t w[6] = { 5, 5, 5, 5, 5, 5 };
	uint32_t o[6];
	ck_assert(qa_part_assign(w, 6, 3, o));
	const uint32_t want[6] = { 0, 1, 2, 0, 1, 2 };
	ck_assert(memcmp(o, want, sizeof want) == 0);
}
END_TEST

/* ------------------------------------------------------------------ limits */

START_TEST(partition_limits)
{
	uint32_t o[2];
	uint64_t w[2] = { 1, 2 };
	ck_assert(!qa_part_assign(w, 2, 0, o));
	ck_assert(!qa_part_assign(w, 2, QA_PART_MAX_SHARDS + 1, o));
	ck_assert(qa_part_assign(w, 2, QA_PART_MAX_SHARDS, o));
	ck_assert(qa_part_assign(w, 0, 3, o));  /* nothing to deal */
	uint64_t huge[3] = { UINT64_MAX, UINT64_MAX, 1 };
	uint32_t h[3];
	ck_assert(qa_part_assign(huge, 3, 2, h));  /* loads saturate */
}
END_TEST

/* ------------------------------------------------------------------ malformed */

static const char *const bad_parts[] = {
	"[]",
	"{}",
	"{\"schema\":\"quantaudit.part/2\"}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"diff\",\"shard\":1,\"shards\":1,\"run\":\"x\"}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"hash\",\"shard\":1,\"shards\":1,\"run\":\"x\",\"header\":{}}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"diff\",\"shard\":2,\"shards\":1,\"run\":\"x\",\"header\":{}}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"diff\",\"shard\":-1,\"shards\":1,\"run\":\"x\",\"header\":{}}",
	"{\"schema\":\"quantaudit.part/1\",\"command\":\"diff\",\"shard\":1,\"shards\":999,\"run\":\"x\",\"header\":{}}",
};

START_TEST(malformed_parts)
{
	json_error_t je;
	json_t *p = json_loads(bad_parts[_i], 0, &je);
	ck_assert_ptr_nonnull(p);
	const char *name = "p.json", *culprit = NULL;
	struct qa_part_merged m;
	struct qa_diag d;
	ck_assert_int_eq(qa_part_merge(&p, &name, 1, &m, &culprit, &d), QA_ERR_FORMAT);
	ck_assert_str_eq(culprit, "p.json");
	ck_assert_ptr_null(m.diff);
	json_decref(p);
}
END_TEST

/* ------------------------------------------------------------------ verify parts */

/*
 * The truth the parts are cut from: a manifest of six tensors and the
 * unsharded comparison of a file with it.  t1 differs (4 blocks compared, 1
 * divergent, block 2), t3 changed shape, t5 is missing, the file has one
 * extra tensor; t0, t2 and t4 match.
 */
static const char *const vnames[6] = { "t0", "t1", "t2", "t3", "t4", "t5" };
static const uint64_t vbytes[6] = { 100, 50, 50, 30, 20, 10 };
static const struct qa_verify_item vtruth[4] = {
	{ QA_VERIFY_MISMATCH, "t1", 4, 1, 2, true },
	{ QA_VERIFY_SHAPE, "t3", 0, 0, UINT64_MAX, false },
	{ QA_VERIFY_MISSING, "t5", 0, 0, UINT64_MAX, false },
	{ QA_VERIFY_EXTRA, "x.extra", 0, 0, UINT64_MAX, false },
};
#define VTRUTH_OK 3

static void vmanifest(struct qa_manifest *m, struct qa_manifest_tensor *t, uint64_t last_bytes)
{
	memset(m, 0, sizeof *m);
	memset(t, 0, 6 * sizeof *t);
	for (size_t i = 0; i < 6; i++) {
		t[i].name = (char *)vnames[i];
		t[i].nbytes = i == 5 ? last_bytes : vbytes[i];
	}
	m->n = 6;
	m->tensors = t;
}

/* Shard k of n's part of the truth, as verify --shard writes it (shard 1
 * computes the file digests); sha_byte varies the manifest's SHA-256. */
static json_t *vpart(const struct qa_manifest *m, uint32_t k, uint32_t n, uint8_t sha_byte)
{
	uint32_t owner[6];
	ck_assert(qa_part_verify_assign(m, n, owner));
	struct qa_verify_item items[4];
	struct qa_verify v = { .file_match = false, .metadata_match = true, .items = items };
	for (size_t i = 0; i < 4; i++) {
		size_t j = 0;
		while (j < 6 && strcmp(vnames[j], vtruth[i].name) != 0)
			j++;
		if (j < 6 ? owner[j] == k - 1 : k == 1)
			items[v.n_items++] = vtruth[i];
	}
	uint8_t sha[QA_SHA256_LEN];
	memset(sha, sha_byte, sizeof sha);
	char *argv[] = { (char *)"verify", (char *)"model.gguf", (char *)"model.json", NULL };
	json_t *p = qa_part_verify_to_json(m, &v, owner, "model.gguf", 4096, "model.json", sha, k == 1, k, n, 3, argv);
	ck_assert_ptr_nonnull(p);
	return p;
}

/* what is done to shard 2's part */
enum vtamper { T_NONE, T_OTHER_SHA, T_OTHER_SIZES, T_OTHER_N, T_STEAL, T_TWICE, T_COUNT, T_EXTRA2, T_STATUS };

static const struct vcase {
	const char *name;
	uint32_t n;          /* shards */
	const char *give;    /* the parts given, by shard number, in this order */
	enum vtamper tamper;
	enum qa_err want;
	const char *msg;     /* in the diagnosis */
	int culprit;         /* index in give of the part named */
} vcases[] = {
	{ "disjoint-1", 1, "1", T_NONE, QA_OK, NULL, 0 },
	{ "disjoint-2", 2, "21", T_NONE, QA_OK, NULL, 0 },
	{ "disjoint-3", 3, "312", T_NONE, QA_OK, NULL, 0 },
	{ "disjoint-6", 6, "536142", T_NONE, QA_OK, NULL, 0 },
	{ "disjoint-8", 8, "12345678", T_NONE, QA_OK, NULL, 0 },
	{ "overlapping", 3, "1223", T_NONE, QA_ERR_FORMAT, "overlaps", 2 },
	{ "missing", 3, "13", T_NONE, QA_ERR_FORMAT, "shard 2 of 3 is missing", 0 },
	{ "missing-all-but-one", 4, "4", T_NONE, QA_ERR_FORMAT, "shard 1 of 4 is missing", 0 },
	{ "other-manifest-text", 3, "123", T_OTHER_SHA, QA_ERR_FORMAT, "belongs to another run", 1 },
	{ "other-manifest-tensors", 3, "123", T_OTHER_SIZES, QA_ERR_FORMAT, "belongs to another run", 1 },
	{ "other-shard-count", 3, "123", T_OTHER_N, QA_ERR_FORMAT, "belongs to another run", 1 },
	{ "another-shards-tensor", 3, "123", T_STEAL, QA_ERR_FORMAT, "is not shard 2's to verify", 1 },
	{ "listed-twice", 3, "123", T_TWICE, QA_ERR_FORMAT, "listed twice", 1 },
	{ "miscounted", 3, "123", T_COUNT, QA_ERR_FORMAT, "accounts for 3 of its 2 tensors", 1 },
	{ "extra-not-shard-1", 3, "123", T_EXTRA2, QA_ERR_FORMAT, "is not shard 2's to verify", 1 },
	{ "bad-status", 3, "123", T_STATUS, QA_ERR_FORMAT, "is not a verify status", 1 },
};

static json_t *vtampered(const struct qa_manifest *m, uint32_t n, enum vtamper t)
{
	struct qa_manifest m2;
	struct qa_manifest_tensor t2[6];
	vmanifest(&m2, t2, 11);
	json_t *p = vpart(t == T_OTHER_SIZES ? &m2 : m, 2, t == T_OTHER_N ? n + 1 : n, t == T_OTHER_SHA ? 0x22 : 0x11);
	json_t *aud = json_object_get(p, "audited"), *dg = json_object_get(p, "digests");
	uint32_t owner[6];
	ck_assert(qa_part_verify_assign(m, n, owner));
	size_t other = 0;
	while (owner[other] == 1)
		other++;
	switch (t) {
	case T_STEAL:
		json_array_append_new(aud, json_pack("{s:I, s:s, s:s, s:b, s:I, s:I, s:n}", "index", (json_int_t)other,
		                                     "status", "mismatch", "name", vnames[other], "blocks_known", 0,
		                                     "blocks_compared", (json_int_t)0, "divergent_blocks", (json_int_t)0,
		                                     "first_divergent"));
		break;
	case T_TWICE:
		ck_assert_uint_gt(json_array_size(aud), 0);
		json_array_append_new(aud, json_deep_copy(json_array_get(aud, 0)));
		break;
	case T_COUNT:
		json_object_set_new(dg, "tensors_ok", json_integer(json_integer_value(json_object_get(dg, "tensors_ok")) + 1));
		break;
	case T_EXTRA2:
		json_array_append_new(aud, json_pack("{s:I, s:s, s:s, s:b, s:I, s:I, s:n}", "index", (json_int_t)6, "status",
		                                     "extra", "name", "y.extra", "blocks_known", 0, "blocks_compared",
		                                     (json_int_t)0, "divergent_blocks", (json_int_t)0, "first_divergent"));
		break;
	case T_STATUS:
		json_object_set_new(json_array_get(aud, 0), "status", json_string("fine"));
		break;
	default:
		break;
	}
	return p;
}

START_TEST(verify_parts_merge)
{
	const struct vcase *c = &vcases[_i];
	struct qa_manifest m;
	struct qa_manifest_tensor t[6];
	vmanifest(&m, t, vbytes[5]);
	size_t np = strlen(c->give);
	json_t *parts[16];
	const char *names[16];
	char nbuf[16][32];
	for (size_t i = 0; i < np; i++) {
		uint32_t k = (uint32_t)(c->give[i] - '0');
		parts[i] = k == 2 && c->tamper != T_NONE ? vtampered(&m, c->n, c->tamper) : vpart(&m, k, c->n, 0x11);
		snprintf(nbuf[i], sizeof nbuf[i], "part%zu-shard%u.json", i, k);
		names[i] = nbuf[i];
	}
	struct qa_part_merged out;
	struct qa_diag d;
	qa_diag_clear(&d);
	const char *culprit = NULL;
	enum qa_err e = qa_part_merge(parts, names, np, &out, &culprit, &d);
	ck_assert_msg(e == c->want, "%s: merge returned %d (%s), want %d", c->name, e, d.msg, c->want);
	if (c->want == QA_OK) {
		ck_assert_str_eq(out.command, "verify");
		ck_assert_str_eq(out.file, "model.gguf");
		ck_assert_str_eq(out.manifest_path, "model.json");
		ck_assert(out.digests);
		ck_assert(!out.verify.file_match);
		ck_assert(out.verify.metadata_match);
		ck_assert_uint_eq(out.verify.n_tensors_ok, VTRUTH_OK);
		ck_assert_uint_eq(out.verify.n_items, 4);
		for (size_t i = 0; i < 4; i++) {
			const struct qa_verify_item *g = &out.verify.items[i], *w = &vtruth[i];
			ck_assert_int_eq(g->kind, w->kind);
			ck_assert_str_eq(g->name, w->name);
			ck_assert_uint_eq(g->blocks_compared, w->blocks_compared);
			ck_assert_uint_eq(g->divergent_blocks, w->divergent_blocks);
			ck_assert_uint_eq(g->first_divergent, w->first_divergent);
			ck_assert_int_eq(g->blocks_known, w->blocks_known);
		}
		ck_assert_uint_eq(out.n_extra, 1);
		ck_assert_ptr_null(out.transfer);  /* no shard read a remote input */
		qa_part_merged_free(&out);
	} else {
		ck_assert_msg(strstr(d.msg, c->msg) != NULL, "%s: '%s' lacks '%s'", c->name, d.msg, c->msg);
		ck_assert_str_eq(culprit, names[c->culprit]);
		ck_assert_ptr_null(out.argv);
	}
	for (size_t i = 0; i < np; i++)
		json_decref(parts[i]);
}
END_TEST

/* ------------------------------------------------------------------ transfer */

/* the "transfer" objects of shards 1..3 (NULL: that shard read nothing remote), and what merge must make */
static const struct tcase_t {
	const char *name;
	const char *t[3];
	enum qa_err want;
	const char *expect;  /* the merged object (QA_OK), or text in the diagnosis */
	int culprit;         /* the shard named on error */
} tcases[] = {
	{ "summed",
	  { "{\"requests\":3,\"bytes\":100,\"retries\":1,\"cache_hits\":0,\"inputs\":["
	    "{\"url\":\"hf://o/a@c/x\",\"commit\":\"c\",\"bytes\":60,\"requests\":2,\"local_peak_bytes\":60},"
	    "{\"url\":\"https://h/b\",\"bytes\":40,\"requests\":1,\"local_peak_bytes\":40}]}",
	    NULL,
	    "{\"requests\":2,\"bytes\":\"50\",\"retries\":0,\"cache_hits\":1,\"inputs\":["
	    "{\"url\":\"hf://o/a@c/x\",\"commit\":\"c\",\"bytes\":50,\"requests\":2,\"local_peak_bytes\":70}]}" },
	  QA_OK,
	  "{\"requests\":5,\"bytes\":150,\"retries\":1,\"cache_hits\":1,\"inputs\":["
	  "{\"url\":\"hf://o/a@c/x\",\"commit\":\"c\",\"bytes\":110,\"requests\":4,\"local_peak_bytes\":70},"
	  "{\"url\":\"https://h/b\",\"bytes\":40,\"requests\":1,\"local_peak_bytes\":40}]}", 0 },
	{ "commit-learned-late",
	  { "{\"requests\":1,\"bytes\":1,\"retries\":0,\"cache_hits\":0,\"inputs\":["
	    "{\"url\":\"u\",\"bytes\":1,\"requests\":1,\"local_peak_bytes\":1}]}",
	    "{\"requests\":1,\"bytes\":2,\"retries\":0,\"cache_hits\":0,\"inputs\":["
	    "{\"url\":\"u\",\"commit\":\"c\",\"bytes\":2,\"requests\":1,\"local_peak_bytes\":2}]}", NULL },
	  QA_OK,
	  "{\"requests\":2,\"bytes\":3,\"retries\":0,\"cache_hits\":0,\"inputs\":["
	  "{\"url\":\"u\",\"commit\":\"c\",\"bytes\":3,\"requests\":2,\"local_peak_bytes\":2}]}", 0 },
	{ "other-commit",
	  { "{\"requests\":1,\"bytes\":1,\"retries\":0,\"cache_hits\":0,\"inputs\":["
	    "{\"url\":\"u\",\"commit\":\"c\",\"bytes\":1,\"requests\":1,\"local_peak_bytes\":1}]}",
	    NULL,
	    "{\"requests\":1,\"bytes\":1,\"retries\":0,\"cache_hits\":0,\"inputs\":["
	    "{\"url\":\"u\",\"commit\":\"d\",\"bytes\":1,\"requests\":1,\"local_peak_bytes\":1}]}" },
	  QA_ERR_FORMAT, "read at another commit", 3 },
	{ "not-an-object", { NULL, "[]", NULL }, QA_ERR_FORMAT, "\"transfer\" is not an object", 2 },
	{ "no-inputs", { "{\"requests\":1,\"bytes\":1,\"retries\":0,\"cache_hits\":0}", NULL, NULL },
	  QA_ERR_FORMAT, "lacks \"inputs\"", 1 },
	{ "negative", { NULL, NULL, "{\"requests\":-1,\"bytes\":1,\"retries\":0,\"cache_hits\":0,\"inputs\":[]}" },
	  QA_ERR_FORMAT, "\"requests\" is not an integer in range", 3 },
	{ "url-not-a-string",
	  { "{\"requests\":1,\"bytes\":1,\"retries\":0,\"cache_hits\":0,\"inputs\":["
	    "{\"url\":7,\"bytes\":1,\"requests\":1,\"local_peak_bytes\":1}]}", NULL, NULL },
	  QA_ERR_FORMAT, "\"url\" is not a string", 1 },
	{ "overflow",
	  { "{\"requests\":1,\"bytes\":\"18446744073709551615\",\"retries\":0,\"cache_hits\":0,\"inputs\":[]}",
	    "{\"requests\":1,\"bytes\":1,\"retries\":0,\"cache_hits\":0,\"inputs\":[]}", NULL },
	  QA_ERR_FORMAT, "overflows", 2 },
};

START_TEST(transfer_merge)
{
	const struct tcase_t *c = &tcases[_i];
	struct qa_manifest m;
	struct qa_manifest_tensor t[6];
	vmanifest(&m, t, vbytes[5]);
	json_t *parts[3];
	const char *names[3] = { "s1.json", "s2.json", "s3.json" };
	for (uint32_t k = 1; k <= 3; k++) {
		parts[k - 1] = vpart(&m, k, 3, 0x11);
		if (c->t[k - 1]) {
			json_error_t je;
			json_t *x = json_loads(c->t[k - 1], 0, &je);
			ck_assert_msg(x != NULL, "%s: %s", c->name, je.text);
			json_object_set_new(parts[k - 1], "transfer", x);
		}
	}
	struct qa_part_merged out;
	struct qa_diag d;
	qa_diag_clear(&d);
	const char *culprit = NULL;
	enum qa_err e = qa_part_merge(parts, names, 3, &out, &culprit, &d);
	ck_assert_msg(e == c->want, "%s: merge returned %d (%s)", c->name, e, d.msg);
	if (e == QA_OK) {
		json_t *want = json_loads(c->expect, 0, NULL);
		ck_assert_ptr_nonnull(want);
		char *got = json_dumps(out.transfer, JSON_COMPACT);
		ck_assert_msg(json_equal(want, out.transfer), "%s: merged %s", c->name, got ? got : "(null)");
		free(got);
		/* the order of the keys is that of an unsharded run's (remote.c) */
		const char *order[] = { "requests", "bytes", "retries", "cache_hits", "inputs" };
		size_t i = 0;
		const char *key;
		json_t *v;
		json_object_foreach(out.transfer, key, v)
			ck_assert_str_eq(key, order[i++]);
		json_decref(want);
		qa_part_merged_free(&out);
	} else {
		ck_assert_msg(strstr(d.msg, c->expect) != NULL, "%s: '%s' lacks '%s'", c->name, d.msg, c->expect);
		ck_assert_str_eq(culprit, names[c->culprit - 1]);
	}
	for (size_t i = 0; i < 3; i++)
		json_decref(parts[i]);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("part");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits"), *mal = tcase_create("malformed");
	tcase_add_loop_test(core, partition_properties, 0, 8);
	tcase_add_test(core, partition_ties_by_position);
	tcase_add_test(limits, partition_limits);
	tcase_add_loop_test(mal, malformed_parts, 0, (int)(sizeof bad_parts / sizeof bad_parts[0]));
	TCase *verify = tcase_create("verify");
	tcase_add_loop_test(verify, verify_parts_merge, 0, (int)(sizeof vcases / sizeof vcases[0]));
	tcase_add_loop_test(verify, transfer_merge, 0, (int)(sizeof tcases / sizeof tcases[0]));
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, mal);
	suite_add_tcase(s, verify);
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
