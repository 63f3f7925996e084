/*
 * check_recipe.c - Check suite for recipe.c, llama.cpp's per-tensor types.
 *
 * core pins every tensor type of the oracle's recipe artifacts (fixture
 * tests/data/recipe/plans.txt, made by extract.py from the oracle) against
 * plans of the models rebuilt from the oracle README's shapes, and every
 * tensor type of the 24 artifacts the real llama-quantize wrote in
 * oracle/real (fixture tests/data/recipe/real-plans.txt, made by
 * extract_real.py: i-quant, ternary and k-quant recipes, with and without an
 * importance matrix), plus the documented llama.cpp rules on synthetic
 * models.  limits covers edge
 * shapes and the name tables, malformed the refused inputs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "recipe.h"
#include "types.h"

/* ---- model builder ---------------------------------------------------- */

struct model_spec {
	const char *name;
	uint32_t hidden, inter, layers, heads, kv_heads, head_dim, vocab;
	bool tied;
	uint32_t src_type;
};

/* The oracle README's table. */
static const struct model_spec oracle_models[] = {
	{ "micro-qwen2", 256, 512, 2, 4, 1, 64, 256, false, QA_TYPE_BF16 },
	{ "tiny-qwen2-div", 256, 768, 4, 4, 2, 64, 512, false, QA_TYPE_F32 },
	{ "tiny-qwen2-nondiv", 384, 1024, 3, 6, 2, 64, 640, true, QA_TYPE_BF16 },
};

#define MAX_TENSORS 1200

struct model {
	struct qa_plan_tensor t[MAX_TENSORS];
	char names[MAX_TENSORS][48];
	size_t n;
	struct qa_model_shape shape;
};

static void add(struct model *m, const char *name, uint32_t n_dims, uint64_t ne0,
                uint64_t ne1, uint32_t src)
{
	ck_assert_uint_lt(m->n, MAX_TENSORS);
	struct qa_plan_tensor *t = &m->t[m->n];
	snprintf(m->names[m->n], sizeof m->names[0], "%s", name);
	t->name = m->names[m->n];
	t->n_dims = n_dims;
	t->ne[0] = ne0;
	t->ne[1] = n_dims > 1 ? ne1 : 1;
	t->ne[2] = t->ne[3] = 1;
	t->src_type = src;
	m->n++;
}

/* A qwen2/llama decoder in the converter's tensor order. */
static void build(struct model *m, const struct model_spec *s, const char *arch,
                  bool biases)
{
	char name[48];
	uint32_t q = s->heads * s->head_dim, kv = s->kv_heads * s->head_dim;

	m->n = 0;
	m->shape.arch = arch;
	m->shape.n_layer = s->layers;
	m->shape.n_head = s->heads;
	m->shape.n_head_kv = s->kv_heads;
	m->shape.tied = s->tied;
	add(m, "token_embd.weight", 2, s->hidden, s->vocab, s->src_type);
	for (uint32_t l = 0; l < s->layers; l++) {
#define L(suffix) (snprintf(name, sizeof name, "blk.%u." suffix, (unsigned)l), name)
		add(m, L("attn_norm.weight"), 1, s->hidden, 1, s->src_type);
		add(m, L("attn_q.weight"), 2, s->hidden, q, s->src_type);
		if (biases)
			add(m, L("attn_q.bias"), 1, q, 1, s->src_type);
		add(m, L("attn_k.weight"), 2, s->hidden, kv, s->src_type);
		if (biases)
			add(m, L("attn_k.bias"), 1, kv, 1, s->src_type);
		add(m, L("attn_v.weight"), 2, s->hidden, kv, s->src_type);
		if (biases)
			add(m, L("attn_v.bias"), 1, kv, 1, s->src_type);
		add(m, L("attn_output.weight"), 2, q, s->hidden, s->src_type);
		add(m, L("ffn_norm.weight"), 1, s->hidden, 1, s->src_type);
		add(m, L("ffn_gate.weight"), 2, s->hidden, s->inter, s->src_type);
		add(m, L("ffn_up.weight"), 2, s->hidden, s->inter, s->src_type);
		add(m, L("ffn_down.weight"), 2, s->inter, s->hidden, s->src_type);
#undef L
	}
	add(m, "output_norm.weight", 1, s->hidden, 1, s->src_type);
	if (!s->tied)
		add(m, "output.weight", 2, s->hidden, s->vocab, s->src_type);
}

static size_t find(const struct model *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->t[i].name, name) == 0)
			return i;
	ck_abort_msg("no tensor %s", name);
	return 0;
}

static struct model M; /* large: static */
static struct qa_plan_entry P[MAX_TENSORS];

static void plan_ok(const char *recipe, uint32_t pure)
{
	struct qa_diag d;
	const struct qa_recipe *r = recipe ? qa_recipe_by_name(recipe) : NULL;
	if (recipe)
		ck_assert_ptr_nonnull(r);
	enum qa_err e = qa_recipe_plan(r, pure, &M.shape, M.t, M.n, P, &d);
	ck_assert_msg(e == QA_OK, "plan failed: %s", d.msg);
}

static const char *type_of(const char *name)
{
	return qa_type_name(P[find(&M, name)].type);
}

/* ---- oracle fixture ----------------------------------------------------- */

#define N_ARTIFACTS 11

struct fixture_tensor {
	char name[48];
	char type[16];
	uint64_t ne[4];
	uint32_t n_dims;
};

struct artifact {
	char model[48], recipe[32];
	long file_type;
	size_t n;
	struct fixture_tensor t[MAX_TENSORS];
};

static struct artifact A;

static FILE *open_fixture(void)
{
	const char *top = getenv("QA_TOP_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/tests/data/recipe/plans.txt", top ? top : ".");
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	return f;
}

/* Copy the next space-delimited word of *p into buf. */
static void word(char **p, char *buf, size_t cap)
{
	char *s = *p;
	while (*s == ' ')
		s++;
	size_t n = strcspn(s, " \n");
	ck_assert_uint_lt(n, cap);
	memcpy(buf, s, n);
	buf[n] = '\0';
	*p = s + n;
}

static unsigned long long number(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	ck_assert_msg(end != s && *end == '\0', "bad number '%s'", s);
	return v;
}

/* Load artifact number want (0-based); returns how many the file holds. */
static int load_artifact(int want)
{
	FILE *f = open_fixture();
	char line[512], buf[64];
	int count = 0;
	bool in = false;

	while (fgets(line, sizeof line, f)) {
		char *p = line;
		if (line[0] == '#')
			continue;
		if (strncmp(line, "artifact ", 9) == 0) {
			p += 9;
			in = count == want;
			count++;
			if (!in)
				continue;
			word(&p, A.model, sizeof A.model);
			word(&p, A.recipe, sizeof A.recipe);
			word(&p, buf, sizeof buf);
			A.file_type = (long)number(buf);
			A.n = 0;
			continue;
		}
		if (strncmp(line, "end", 3) == 0) {
			in = false;
			continue;
		}
		if (!in)
			continue;
		ck_assert_uint_lt(A.n, MAX_TENSORS);
		struct fixture_tensor *t = &A.t[A.n++];
		word(&p, t->name, sizeof t->name);
		word(&p, t->type, sizeof t->type);
		word(&p, buf, sizeof buf);
		t->n_dims = 0;
		for (char *q = buf; *q && t->n_dims < 4;) {
			char num[24];
			size_t n = strcspn(q, ",");
			ck_assert_uint_lt(n, sizeof num);
			memcpy(num, q, n);
			num[n] = '\0';
			t->ne[t->n_dims++] = number(num);
			q += n + (q[n] == ',');
		}
	}
	fclose(f);
	return count;
}

START_TEST(test_fixture_count)
{
	ck_assert_int_eq(load_artifact(-1), N_ARTIFACTS);
}
END_TEST

START_TEST(test_oracle_artifact)
{
	load_artifact(_i);
	const struct model_spec *s = NULL;
	for (size_t k = 0; k < sizeof oracle_models / sizeof oracle_models[0]; k++)
		if (strcmp(oracle_models[k].name, A.model) == 0)
			s = &oracle_models[k];
	ck_assert_msg(s != NULL, "unknown model %s", A.model);
	build(&M, s, "qwen2", true);

	/* The rebuilt model must be the artifact's tensor list. */
	ck_assert_uint_eq(M.n, A.n);
	for (size_t i = 0; i < M.n; i++) {
		ck_assert_str_eq(M.t[i].name, A.t[i].name);
		ck_assert_uint_eq(M.t[i].n_dims, A.t[i].n_dims);
		for (uint32_t k = 0; k < A.t[i].n_dims; k++)
			ck_assert_uint_eq(M.t[i].ne[k], A.t[i].ne[k]);
	}

	uint32_t file_type;
	if (strncmp(A.recipe, "pure-", 5) == 0) {
		const struct qa_type_info *ti = qa_type_by_name(A.recipe + 5);
		ck_assert_ptr_nonnull(ti);
		plan_ok(NULL, ti->id);
		file_type = qa_recipe_pure_file_type(ti->id);
	} else {
		plan_ok(A.recipe, 0);
		file_type = qa_recipe_file_type(qa_recipe_by_name(A.recipe));
	}
	ck_assert_uint_eq(file_type, (uint32_t)A.file_type);
	for (size_t i = 0; i < M.n; i++)
		ck_assert_msg(strcmp(qa_type_name(P[i].type), A.t[i].type) == 0,
		              "%s.%s %s: planned %s (%s), artifact %s", A.model, A.recipe,
		              A.t[i].name, qa_type_name(P[i].type), P[i].rule, A.t[i].type);
}
END_TEST

/* The planner must follow llama.cpp's own tensor order, not the caller's. */
START_TEST(test_order_independent)
{
	static struct qa_plan_entry fwd[MAX_TENSORS];
	static const struct model_spec s = { "m", 256, 768, 12, 8, 2, 32, 512, false, QA_TYPE_F16 };
	build(&M, &s, "llama", false);
	plan_ok("Q4_K_M", 0);
	memcpy(fwd, P, sizeof(P[0]) * M.n);
	/* reverse the list */
	for (size_t i = 0, j = M.n - 1; i < j; i++, j--) {
		struct qa_plan_tensor t = M.t[i];
		M.t[i] = M.t[j];
		M.t[j] = t;
	}
	plan_ok("Q4_K_M", 0);
	for (size_t i = 0; i < M.n; i++)
		ck_assert_uint_eq(P[i].type, fwd[M.n - 1 - i].type);
}
END_TEST

/* use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2. */
static const int more_bits_32[] = { 0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31 };

static bool in_more_bits_32(uint32_t l)
{
	for (size_t k = 0; k < sizeof more_bits_32 / sizeof more_bits_32[0]; k++)
		if ((uint32_t)more_bits_32[k] == l)
			return true;
	return false;
}

static const char *const more_bits_recipes[] = { "Q4_K_M", "Q5_K_M" };

START_TEST(test_use_more_bits)
{
	static const struct model_spec s = { "m", 512, 1024, 32, 8, 8, 64, 1024, false, QA_TYPE_F16 };
	const char *recipe = more_bits_recipes[_i];
	const char *base = _i == 0 ? "q4_K" : "q5_K";
	char name[48];
	build(&M, &s, "llama", false);
	plan_ok(recipe, 0);
	for (uint32_t l = 0; l < 32; l++) {
		const char *want = in_more_bits_32(l) ? "q6_K" : base;
		snprintf(name, sizeof name, "blk.%u.ffn_down.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), want);
		snprintf(name, sizeof name, "blk.%u.attn_v.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), want);
		snprintf(name, sizeof name, "blk.%u.attn_k.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), base);
		snprintf(name, sizeof name, "blk.%u.attn_output.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), base);
	}
	ck_assert_str_eq(type_of("output.weight"), "q6_K");
	ck_assert_str_eq(type_of("token_embd.weight"), base);
	ck_assert_str_eq(type_of("output_norm.weight"), "f32");
	ck_assert_str_eq(type_of("blk.0.attn_norm.weight"), "f32");
}
END_TEST

/* Q2_K: attn_v q4_K when n_head / n_head_kv >= 4, else q3_K. */
static const struct {
	uint32_t heads, kv;
	const char *attn_v;
} gqa_cases[] = {
	{ 8, 8, "q3_K" }, { 8, 4, "q3_K" }, { 12, 4, "q3_K" }, { 8, 2, "q4_K" },
	{ 32, 8, "q4_K" }, { 8, 1, "q4_K" }, { 16, 4, "q4_K" }, { 12, 3, "q4_K" },
};

START_TEST(test_q2_k_gqa)
{
	struct model_spec s = { "m", 256, 512, 4, gqa_cases[_i].heads, gqa_cases[_i].kv,
	                        64, 256, false, QA_TYPE_F32 };
	build(&M, &s, "llama", false);
	plan_ok("Q2_K", 0);
	for (uint32_t l = 0; l < 4; l++) {
		char name[48];
		snprintf(name, sizeof name, "blk.%u.attn_v.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), gqa_cases[_i].attn_v);
		snprintf(name, sizeof name, "blk.%u.ffn_down.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), "q3_K");
		snprintf(name, sizeof name, "blk.%u.attn_output.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), "q3_K");
		snprintf(name, sizeof name, "blk.%u.attn_q.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), "q2_K");
	}
}
END_TEST

START_TEST(test_q3_k_mixes)
{
	static const struct model_spec s = { "m", 256, 512, 32, 4, 4, 64, 256, false, QA_TYPE_F16 };
	char name[48];
	build(&M, &s, "llama", false);

	plan_ok("Q3_K_S", 0);
	for (size_t i = 0; i < M.n; i++)
		if (M.t[i].n_dims == 2 && strcmp(M.t[i].name, "output.weight") != 0)
			ck_assert_str_eq(qa_type_name(P[i].type), "q3_K");

	plan_ok("Q3_K_M", 0);
	for (uint32_t l = 0; l < 32; l++) {
		snprintf(name, sizeof name, "blk.%u.attn_v.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), l < 2 ? "q5_K" : "q4_K");
		snprintf(name, sizeof name, "blk.%u.ffn_down.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), l < 2 ? "q5_K" : "q4_K"); /* 32/16 = 2 */
		snprintf(name, sizeof name, "blk.%u.attn_output.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), "q4_K");
		snprintf(name, sizeof name, "blk.%u.ffn_up.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), "q3_K");
	}

	plan_ok("Q3_K_L", 0);
	for (uint32_t l = 0; l < 32; l++) {
		snprintf(name, sizeof name, "blk.%u.attn_v.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), "q5_K");
		snprintf(name, sizeof name, "blk.%u.ffn_down.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), "q5_K");
		snprintf(name, sizeof name, "blk.%u.attn_output.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), "q5_K");
	}
	ck_assert_str_eq(type_of("output.weight"), "q6_K");
}
END_TEST

START_TEST(test_q4_k_s)
{
	static const struct model_spec s = { "m", 256, 512, 32, 4, 4, 64, 256, false, QA_TYPE_F16 };
	char name[48];
	build(&M, &s, "llama", false);
	plan_ok("Q4_K_S", 0);
	for (uint32_t l = 0; l < 32; l++) {
		snprintf(name, sizeof name, "blk.%u.attn_v.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), l < 4 ? "q5_K" : "q4_K");
		snprintf(name, sizeof name, "blk.%u.ffn_down.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), l < 4 ? "q5_K" : "q4_K"); /* 32/8 = 4 */
	}
}
END_TEST

/*
 * With an importance matrix, llama.cpp keeps the first n_layer/8 ffn_down of
 * Q4_0 and Q5_0 at q4_1 and q5_1 ("guard against craziness", llama-quant.cpp);
 * without one, and for the k-quant recipes, nothing changes.
 */
START_TEST(test_imatrix_guard)
{
	static const struct model_spec s = { "m", 256, 512, 16, 4, 4, 64, 256, false, QA_TYPE_F16 };
	static const char *const recipes[] = { "Q4_0", "Q5_0", "Q4_K_M" };
	static const char *const guarded[] = { "q4_1", "q5_1", NULL };
	char name[48];
	build(&M, &s, "llama", false);
	const char *r = recipes[_i];
	plan_ok(r, 0);
	char plain[16][8];
	for (uint32_t l = 0; l < 16; l++) {
		snprintf(name, sizeof name, "blk.%u.ffn_down.weight", (unsigned)l);
		snprintf(plain[l], sizeof plain[l], "%s", type_of(name));
	}
	M.shape.has_imatrix = true;
	plan_ok(r, 0);
	M.shape.has_imatrix = false;
	for (uint32_t l = 0; l < 16; l++) {
		snprintf(name, sizeof name, "blk.%u.ffn_down.weight", (unsigned)l);
		if (guarded[_i] && l < 2) /* 16/8 = 2 */
			ck_assert_str_eq(type_of(name), guarded[_i]);
		else
			ck_assert_str_eq(type_of(name), plain[l]);
		/* the rest of the plan does not depend on the matrix */
		snprintf(name, sizeof name, "blk.%u.attn_q.weight", (unsigned)l);
		ck_assert_str_eq(type_of(name), r[1] == '4' && r[2] == '_' && r[3] == '0' ? "q4_0" :
		                               r[1] == '5' ? "q5_0" : "q4_K");
	}
}
END_TEST

/* Output (or tied token_embd): q6_K, q8_0 when ne[0] % 256, kept for Q8_0. */
static const struct {
	const char *recipe;
	uint32_t hidden;
	bool tied;
	const char *out, *embd;
} output_cases[] = {
	{ "Q4_K_M", 256, false, "q6_K", "q4_K" },
	{ "Q4_K_M", 256, true, NULL, "q6_K" },
	{ "Q4_K_M", 384, true, NULL, "q8_0" },
	{ "Q4_K_M", 384, false, "q8_0", "q5_0" },
	{ "Q6_K", 384, true, NULL, "q8_0" },
	{ "Q8_0", 256, false, "q8_0", "q8_0" },
	{ "Q8_0", 384, true, NULL, "q8_0" },
	{ "Q4_0", 256, false, "q6_K", "q4_0" },
	{ "Q4_0", 384, false, "q8_0", "q4_0" },
	{ "Q5_1", 256, true, NULL, "q6_K" },
	{ "Q2_K", 256, false, "q6_K", "q2_K" },
	{ "Q3_K_S", 384, false, "q8_0", "q4_0" },
};

START_TEST(test_output_rule)
{
	struct model_spec s = { "m", output_cases[_i].hidden, 1024, 2, 4, 4, 64, 300,
	                        output_cases[_i].tied, QA_TYPE_BF16 };
	build(&M, &s, "qwen2", true);
	plan_ok(output_cases[_i].recipe, 0);
	if (output_cases[_i].out)
		ck_assert_str_eq(type_of("output.weight"), output_cases[_i].out);
	ck_assert_str_eq(type_of("token_embd.weight"), output_cases[_i].embd);
	ck_assert(P[find(&M, "token_embd.weight")].quantized);
}
END_TEST

/* Pure: one type everywhere, with the fallback chain for ne[0] % block. */
static const struct {
	const char *type;
	uint32_t hidden;
	const char *want;
} fallback_cases[] = {
	{ "q4_K", 256, "q4_K" }, { "q4_K", 384, "q5_0" }, { "q5_K", 384, "q5_1" },
	{ "q6_K", 384, "q8_0" }, { "q2_K", 384, "q4_0" }, { "q3_K", 384, "q4_0" },
	{ "iq4_xs", 384, "iq4_nl" }, { "q4_K", 48, "f16" }, { "q6_K", 80, "f16" },
	{ "q8_0", 384, "q8_0" }, { "f16", 48, "f16" }, { "bf16", 384, "bf16" },
	{ "iq3_xxs", 384, "iq4_nl" }, { "iq3_s", 384, "iq4_nl" }, { "iq2_xxs", 384, "iq4_nl" },
	{ "iq1_m", 384, "iq4_nl" }, { "tq1_0", 384, "q4_0" }, { "tq2_0", 384, "q4_0" },
	/* llama.cpp of 2026-09: a block-32 type that does not fit becomes f16 */
	{ "q8_0", 48, "f16" }, { "q4_0", 48, "f16" }, { "iq4_nl", 80, "f16" },
	{ "mxfp4", 48, "f16" }, { "iq4_xs", 80, "f16" },
};

START_TEST(test_pure_fallback)
{
	struct model_spec s = { "m", fallback_cases[_i].hidden, 512, 2, 2, 2,
	                        fallback_cases[_i].hidden / 2, 256, false, QA_TYPE_F32 };
	const struct qa_type_info *ti = qa_type_by_name(fallback_cases[_i].type);
	ck_assert_ptr_nonnull(ti);
	build(&M, &s, "qwen2", true);
	plan_ok(NULL, ti->id);
	/* Every matrix with ne[0] = hidden, the output included. */
	ck_assert_str_eq(type_of("output.weight"), fallback_cases[_i].want);
	ck_assert_str_eq(type_of("token_embd.weight"), fallback_cases[_i].want);
	ck_assert_str_eq(type_of("blk.1.attn_v.weight"), fallback_cases[_i].want);
	ck_assert_str_eq(type_of("blk.1.ffn_up.weight"), fallback_cases[_i].want);
	ck_assert_str_eq(type_of("blk.0.attn_q.bias"), "f32");
	ck_assert(!P[find(&M, "blk.0.attn_q.bias")].quantized);
}
END_TEST

START_TEST(test_70b)
{
	static const struct model_spec s = { "m", 256, 512, 80, 8, 1, 32, 256, false, QA_TYPE_F16 };
	build(&M, &s, "llama", false);
	plan_ok("Q2_K", 0);
	ck_assert_str_eq(type_of("blk.0.attn_v.weight"), "q5_K");
	plan_ok("Q4_K_M", 0);
	ck_assert_str_eq(type_of("blk.0.attn_v.weight"), "q6_K"); /* use_more_bits */
	ck_assert_str_eq(type_of("blk.11.attn_v.weight"), "q5_K"); /* 70B bump */
	ck_assert_str_eq(type_of("blk.11.ffn_down.weight"), "q4_K");
}
END_TEST

/* ---- limits -------------------------------------------------------------- */

static const struct {
	const char *name, *canonical;
	uint32_t ftype, type;
} name_cases[] = {
	{ "Q4_K_M", "Q4_K_M", 15, QA_TYPE_Q4_K }, { "q4_k_m", "Q4_K_M", 15, QA_TYPE_Q4_K },
	{ "Q4_K", "Q4_K_M", 15, QA_TYPE_Q4_K },   { "Q4_K_S", "Q4_K_S", 14, QA_TYPE_Q4_K },
	{ "Q2_K", "Q2_K", 10, QA_TYPE_Q2_K },     { "Q3_K_S", "Q3_K_S", 11, QA_TYPE_Q3_K },
	{ "Q3_K_M", "Q3_K_M", 12, QA_TYPE_Q3_K }, { "q3_k_l", "Q3_K_L", 13, QA_TYPE_Q3_K },
	{ "Q5_K_S", "Q5_K_S", 16, QA_TYPE_Q5_K }, { "Q5_K_M", "Q5_K_M", 17, QA_TYPE_Q5_K },
	{ "Q6_K", "Q6_K", 18, QA_TYPE_Q6_K },     { "Q8_0", "Q8_0", 7, QA_TYPE_Q8_0 },
	{ "Q4_0", "Q4_0", 2, QA_TYPE_Q4_0 },      { "Q4_1", "Q4_1", 3, QA_TYPE_Q4_1 },
	{ "Q5_0", "Q5_0", 8, QA_TYPE_Q5_0 },      { "Q5_1", "Q5_1", 9, QA_TYPE_Q5_1 },
	/* llama_ftype ids and default types of llama.cpp's llama_ftype_get_default_type */
	{ "IQ2_XXS", "IQ2_XXS", 19, QA_TYPE_IQ2_XXS }, { "iq2_xs", "IQ2_XS", 20, QA_TYPE_IQ2_XS },
	{ "IQ3_XS", "IQ3_XS", 22, QA_TYPE_IQ3_S },     { "IQ3_XXS", "IQ3_XXS", 23, QA_TYPE_IQ3_XXS },
	{ "IQ1_S", "IQ1_S", 24, QA_TYPE_IQ1_S },       { "IQ4_NL", "IQ4_NL", 25, QA_TYPE_IQ4_NL },
	{ "IQ3_S", "IQ3_S", 26, QA_TYPE_IQ3_S },       { "IQ3_M", "IQ3_M", 27, QA_TYPE_IQ3_S },
	{ "IQ2_S", "IQ2_S", 28, QA_TYPE_IQ2_XS },      { "IQ2_M", "IQ2_M", 29, QA_TYPE_IQ2_S },
	{ "IQ4_XS", "IQ4_XS", 30, QA_TYPE_IQ4_XS },    { "IQ1_M", "IQ1_M", 31, QA_TYPE_IQ1_M },
	{ "TQ1_0", "TQ1_0", 36, QA_TYPE_TQ1_0 },       { "tq2_0", "TQ2_0", 37, QA_TYPE_TQ2_0 },
	{ "MXFP4_MOE", "MXFP4_MOE", 38, QA_TYPE_MXFP4 }, { "F32", "F32", 0, QA_TYPE_F32 },
	{ "F16", "F16", 1, QA_TYPE_F16 },              { "bf16", "BF16", 32, QA_TYPE_BF16 },
};

START_TEST(test_recipe_names)
{
	const struct qa_recipe *r = qa_recipe_by_name(name_cases[_i].name);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(qa_recipe_name(r), name_cases[_i].canonical);
	ck_assert_uint_eq(qa_recipe_file_type(r), name_cases[_i].ftype);
	ck_assert_uint_eq(qa_recipe_default_type(r), name_cases[_i].type);
	ck_assert_ptr_eq(qa_recipe_by_file_type(name_cases[_i].ftype), r);
}
END_TEST

static const char *const unknown_names[] = {
	"", "Q4", "Q4_K_X", "IQ2", "F8", "Q4_K_M ", "q8", "Q2_K_S", "IQ3_XXL", "MXFP4",
};

START_TEST(test_unknown_recipe)
{
	ck_assert_ptr_null(qa_recipe_by_name(unknown_names[_i]));
}
END_TEST

START_TEST(test_unknown_ftype)
{
	/* 4..6 retired, 21 IQ3_XS's old slot, 33..35 Q4_0_4_4 & co, 39.. newer than the table */
	static const uint32_t ids[] = { 4, 5, 6, 21, 33, 34, 35, 39, 1024, UINT32_MAX };
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		ck_assert_ptr_null(qa_recipe_by_file_type(ids[i]));
	ck_assert_ptr_null(qa_recipe_by_name(NULL));
}
END_TEST

START_TEST(test_pure_file_type)
{
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_Q4_K), 15);
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_Q4_0), 2);
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_Q8_0), 7);
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_Q5_0), 8);
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_Q6_K), 18);
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_F16), 1);
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_F32), 0);
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_BF16), 32);
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_Q8_K), QA_RECIPE_NO_FILE_TYPE);
	ck_assert_uint_eq(qa_recipe_pure_file_type(QA_TYPE_I8), QA_RECIPE_NO_FILE_TYPE);
	ck_assert_uint_eq(qa_recipe_pure_file_type(12345), QA_RECIPE_NO_FILE_TYPE);
}
END_TEST

START_TEST(test_edge_shapes)
{
	struct qa_diag d;
	/* No tensors at all. */
	struct qa_model_shape shape = { "qwen2", 0, 1, 1, false, false, 0 };
	ck_assert_int_eq(qa_recipe_plan(qa_recipe_by_name("Q4_K_M"), 0, &shape, NULL, 0, NULL, &d),
	                 QA_OK);

	/* One layer: use_more_bits(0, 1) holds (0 >= 7/8 = 0). */
	static const struct model_spec s = { "m", 256, 512, 1, 4, 4, 64, 256, false, QA_TYPE_F16 };
	build(&M, &s, "llama", false);
	plan_ok("Q4_K_M", 0);
	ck_assert_str_eq(type_of("blk.0.attn_v.weight"), "q6_K");
	ck_assert_str_eq(type_of("blk.0.ffn_down.weight"), "q6_K");

	/* A [N, 1] matrix is 1-D to llama.cpp; non-weight 2-D is not quantized
	 * and the converter writes it f32 (ModelBase.prepare_tensors: every name
	 * not ending in ".weight", and the routers ffn_gate_inp, are f32). */
	M.n = 0;
	add(&M, "blk.0.attn_q.weight", 2, 256, 1, QA_TYPE_BF16);
	add(&M, "blk.0.ffn_up.weight", 2, 256, 64, QA_TYPE_BF16);
	add(&M, "blk.0.ffn_up.scale", 2, 256, 64, QA_TYPE_BF16);
	add(&M, "blk.0.extra_norm.weight", 2, 256, 64, QA_TYPE_BF16);
	add(&M, "blk.0.ffn_gate_inp.weight", 2, 256, 8, QA_TYPE_BF16);
	add(&M, "blk.0.ffn_gate_exps.bias", 2, 256, 8, QA_TYPE_BF16);
	plan_ok("Q4_K_M", 0);
	ck_assert(!P[0].quantized);
	ck_assert_str_eq(qa_type_name(P[0].type), "bf16");
	ck_assert(P[1].quantized);
	ck_assert_str_eq(qa_type_name(P[1].type), "q4_K");
	ck_assert(!P[2].quantized);
	ck_assert_str_eq(qa_type_name(P[2].type), "f32");
	ck_assert(!P[3].quantized);
	ck_assert_str_eq(qa_type_name(P[3].type), "f32");
	ck_assert(!P[4].quantized);
	ck_assert_str_eq(qa_type_name(P[4].type), "f32");
	ck_assert(!P[5].quantized);
	ck_assert_str_eq(qa_type_name(P[5].type), "f32");
	ck_assert(strlen(P[1].rule) > 0 && strlen(P[1].rule) < sizeof P[1].rule);
}
END_TEST


/*
 * The rules that read llama.cpp's has_imatrix, n_gqa and the layer, on
 * synthetic dense models (hidden 256, ffn 512, head_dim 256/heads).  The
 * expected types are the branches of llama_tensor_get_type_impl in
 * llama.cpp's src/llama-quant.cpp (2026-09).
 */
static const struct {
	const char *recipe;
	uint32_t layers, heads, kv_heads;
	bool imatrix;
	const char *tensor, *want;
} imatrix_cases[] = {
	{ "IQ3_XXS", 8, 4, 2, false, "blk.0.attn_v.weight", "iq3_s" },
	{ "IQ3_XXS", 8, 4, 2, true, "blk.0.attn_v.weight", "iq3_xxs" },
	{ "IQ3_XXS", 8, 8, 2, true, "blk.0.attn_v.weight", "q4_K" },
	{ "IQ3_XXS", 8, 4, 2, false, "blk.0.ffn_down.weight", "q4_K" },
	{ "IQ3_XXS", 8, 4, 2, false, "blk.1.ffn_down.weight", "q3_K" },
	{ "IQ3_XXS", 8, 4, 2, true, "blk.0.ffn_down.weight", "iq3_xxs" },
	{ "IQ3_XXS", 8, 4, 2, true, "blk.0.attn_q.weight", "iq2_s" },
	{ "IQ3_XXS", 8, 4, 2, true, "blk.5.attn_k.weight", "iq2_s" },
	{ "IQ3_XXS", 8, 4, 2, true, "blk.0.attn_output.weight", "iq3_s" },
	{ "IQ3_XXS", 8, 4, 2, true, "token_embd.weight", "iq3_s" },
	{ "IQ3_XXS", 8, 4, 2, true, "output.weight", "q5_K" },
	{ "IQ4_XS", 8, 4, 2, false, "blk.0.ffn_down.weight", "q5_K" },
	{ "IQ4_XS", 8, 4, 2, false, "blk.1.ffn_down.weight", "iq4_xs" },
	{ "IQ4_XS", 8, 4, 2, true, "blk.0.ffn_down.weight", "iq4_xs" },
	{ "IQ4_XS", 8, 4, 2, true, "output.weight", "q6_K" },
	{ "IQ4_NL", 8, 4, 2, false, "blk.0.ffn_down.weight", "q5_K" },
	{ "IQ4_NL", 8, 8, 2, true, "blk.3.attn_v.weight", "q5_K" },
	{ "IQ4_NL", 8, 4, 2, true, "blk.3.attn_v.weight", "iq4_nl" },
	{ "Q4_0", 8, 4, 2, true, "blk.0.ffn_down.weight", "q4_1" },
	{ "Q4_0", 8, 4, 2, false, "blk.0.ffn_down.weight", "q4_0" },
	{ "Q5_0", 8, 4, 2, true, "blk.0.ffn_down.weight", "q5_1" },
	{ "Q5_0", 8, 4, 2, true, "blk.1.ffn_down.weight", "q5_0" },
	{ "IQ3_S", 8, 8, 2, false, "blk.0.attn_v.weight", "q4_K" },
	{ "IQ3_S", 8, 4, 2, false, "blk.0.attn_v.weight", "iq3_s" },
	{ "IQ3_XS", 8, 8, 2, true, "blk.0.attn_v.weight", "q4_K" },
	{ "IQ3_XS", 8, 4, 2, true, "blk.0.ffn_gate.weight", "iq3_s" },
	{ "IQ3_XS", 8, 4, 2, true, "blk.1.ffn_gate.weight", "iq3_xxs" },
	{ "IQ3_XS", 8, 4, 2, true, "blk.6.ffn_up.weight", "iq3_xxs" },
	{ "IQ3_XS", 8, 4, 2, true, "blk.7.ffn_up.weight", "iq3_s" },
	{ "IQ3_XS", 8, 4, 2, true, "blk.4.ffn_down.weight", "iq3_s" },
	{ "IQ3_M", 8, 4, 2, false, "blk.0.ffn_down.weight", "q4_K" },
	{ "IQ3_M", 8, 4, 2, false, "blk.1.ffn_down.weight", "iq3_s" },
	{ "IQ3_M", 8, 4, 2, false, "blk.1.attn_v.weight", "q4_K" },
	{ "IQ3_M", 8, 4, 2, false, "blk.1.attn_output.weight", "q4_K" },
	{ "IQ2_XXS", 16, 4, 2, true, "blk.1.ffn_down.weight", "q2_K" },
	{ "IQ2_XXS", 16, 4, 2, true, "blk.2.ffn_down.weight", "iq2_xxs" },
	{ "IQ2_M", 16, 4, 2, true, "blk.1.ffn_down.weight", "iq3_s" },
	{ "IQ2_M", 16, 4, 2, true, "blk.1.ffn_up.weight", "iq2_s" },
	{ "IQ2_XS", 8, 8, 2, true, "blk.0.attn_v.weight", "q4_K" },
	{ "IQ2_S", 8, 4, 2, true, "blk.0.attn_v.weight", "iq3_s" },
	{ "IQ2_S", 8, 4, 2, true, "blk.0.ffn_up.weight", "iq2_xs" },
	{ "IQ2_S", 8, 4, 2, true, "output.weight", "q5_K" },
	{ "IQ1_M", 8, 4, 2, true, "blk.0.attn_output.weight", "iq2_xxs" },
	{ "IQ1_S", 8, 4, 2, true, "token_embd.weight", "q2_K" },
	{ "TQ2_0", 8, 4, 2, false, "token_embd.weight", "q4_K" },
	{ "TQ1_0", 8, 4, 2, false, "output.weight", "q6_K" },
	{ "TQ1_0", 8, 4, 2, false, "blk.0.attn_v.weight", "tq1_0" },
	{ "MXFP4_MOE", 8, 4, 2, false, "blk.0.ffn_up.weight", "q8_0" },
	{ "MXFP4_MOE", 8, 4, 2, false, "output.weight", "q8_0" },
	{ "MXFP4_MOE", 8, 4, 2, false, "token_embd.weight", "q8_0" },
};

START_TEST(test_imatrix_rules)
{
	struct model_spec s = { "m", 256, 512, imatrix_cases[_i].layers, imatrix_cases[_i].heads,
	                        imatrix_cases[_i].kv_heads, 256 / imatrix_cases[_i].heads, 512,
	                        false, QA_TYPE_BF16 };
	build(&M, &s, "qwen2", true);
	M.shape.has_imatrix = imatrix_cases[_i].imatrix;
	plan_ok(imatrix_cases[_i].recipe, 0);
	size_t k = find(&M, imatrix_cases[_i].tensor);
	ck_assert_msg(strcmp(qa_type_name(P[k].type), imatrix_cases[_i].want) == 0,
	              "%s %s imatrix %s: planned %s (%s), llama.cpp %s", imatrix_cases[_i].recipe,
	              imatrix_cases[_i].imatrix ? "with" : "without", imatrix_cases[_i].tensor,
	              qa_type_name(P[k].type), P[k].rule, imatrix_cases[_i].want);
}
END_TEST

/*
 * Which tensors llama-quantize refuses to write without an importance
 * matrix (its tensor_requires_imatrix): iq1/iq2/iq3_xxs types, except
 * token_embd and output.
 */
START_TEST(test_needs_imatrix)
{
	static const struct model_spec s = { "m", 256, 512, 8, 4, 2, 64, 512, false, QA_TYPE_BF16 };
	build(&M, &s, "qwen2", true);
	M.shape.has_imatrix = false;
	plan_ok("IQ3_XXS", 0);
	ck_assert(P[find(&M, "blk.0.attn_q.weight")].needs_imatrix);     /* iq2_s */
	ck_assert(P[find(&M, "blk.0.ffn_up.weight")].needs_imatrix);     /* iq3_xxs */
	ck_assert(!P[find(&M, "blk.0.attn_v.weight")].needs_imatrix);    /* iq3_s */
	ck_assert(!P[find(&M, "blk.0.ffn_down.weight")].needs_imatrix);  /* q4_K */
	ck_assert(!P[find(&M, "token_embd.weight")].needs_imatrix);
	ck_assert(!P[find(&M, "output.weight")].needs_imatrix);
	ck_assert(!P[find(&M, "blk.0.attn_norm.weight")].needs_imatrix);
	plan_ok("IQ4_XS", 0);
	for (size_t i = 0; i < M.n; i++)
		ck_assert(!P[i].needs_imatrix);
	plan_ok("IQ3_M", 0);
	for (size_t i = 0; i < M.n; i++)
		ck_assert(!P[i].needs_imatrix);
	plan_ok(NULL, QA_TYPE_IQ2_XXS);
	ck_assert(!P[find(&M, "token_embd.weight")].needs_imatrix);
	ck_assert(!P[find(&M, "output.weight")].needs_imatrix);
	ck_assert(P[find(&M, "blk.7.ffn_down.weight")].needs_imatrix);
	/* the same types also need it in the plan made with a matrix */
	M.shape.has_imatrix = true;
	plan_ok("IQ1_S", 0);
	ck_assert(P[find(&M, "blk.0.ffn_up.weight")].needs_imatrix);
	ck_assert(!P[find(&M, "blk.0.attn_v.weight")].needs_imatrix); /* q2_K */
}
END_TEST

/* MXFP4_MOE: 3-D expert tensors mxfp4, every other matrix q8_0. */
START_TEST(test_mxfp4_moe)
{
	static const struct model_spec s = { "m", 256, 512, 2, 4, 2, 64, 512, false, QA_TYPE_BF16 };
	build(&M, &s, "qwen2", false);
	M.shape.n_expert = 4;
	add(&M, "blk.0.ffn_up_exps.weight", 3, 256, 512, QA_TYPE_BF16);
	M.t[M.n - 1].ne[2] = 4;
	add(&M, "blk.0.ffn_gate_inp.weight", 2, 256, 4, QA_TYPE_F32);
	plan_ok("MXFP4_MOE", 0);
	ck_assert_str_eq(type_of("blk.0.ffn_up_exps.weight"), "mxfp4");
	ck_assert_str_eq(type_of("blk.0.ffn_gate_inp.weight"), "f32"); /* router: never quantized */
	ck_assert_str_eq(type_of("blk.1.attn_v.weight"), "q8_0");
	ck_assert_str_eq(type_of("blk.1.ffn_down.weight"), "q8_0");
	M.shape.n_expert = 0;
}
END_TEST

/* ---- llama-quantize's own artifacts ------------------------------------------ */

/*
 * Plans of artifacts the real llama-quantize wrote (llama.cpp 2026-09),
 * extracted by tests/data/recipe/extract_real.py:
 *   real-plans.txt: oracle/real (its README): qwen2, hidden 256, ffn 768,
 *     2 layers, 4 heads / 2 kv heads of dim 64, vocab 512, untied, bf16;
 *   m8-plans.txt, m16-plans.txt: llama-quantize run on quantaudit synth
 *     checkpoints (tests/data/recipe/README.md says how): m8 is qwen2 with 8
 *     layers and 8 heads / 2 kv heads (GQA 4), m16 llama with 16 layers.
 */
static const struct {
	const char *file, *arch;
	bool biases;
	struct model_spec spec;
	int count;
} plan_sets[] = {
	{ "real-plans.txt", "qwen2", true, { "real-qwen2", 256, 768, 2, 4, 2, 64, 512, false, QA_TYPE_BF16 }, 24 },
	{ "m8-plans.txt", "qwen2", true, { "m8", 256, 512, 8, 8, 2, 32, 512, false, QA_TYPE_BF16 }, 15 },
	{ "m16-plans.txt", "llama", false, { "m16", 256, 512, 16, 4, 2, 64, 384, false, QA_TYPE_BF16 }, 8 },
};
#define N_PLAN_SETS (int)(sizeof plan_sets / sizeof plan_sets[0])

struct real_artifact {
	char recipe[32];
	unsigned long long file_type, imatrix;
	size_t n;
	struct fixture_tensor t[160];
};

static struct real_artifact R;

/* Load artifact number want of tests/data/recipe/FILE; returns the count. */
static int load_real(const char *file, int want)
{
	const char *top = getenv("QA_TOP_SRCDIR");
	char path[4096], line[512], buf[64];
	snprintf(path, sizeof path, "%s/tests/data/recipe/%s", top ? top : ".", file);
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	int count = 0;
	bool in = false;
	while (fgets(line, sizeof line, f)) {
		char *p = line;
		if (line[0] == '#')
			continue;
		if (strncmp(line, "artifact ", 9) == 0) {
			p += 9;
			in = count++ == want;
			if (!in)
				continue;
			word(&p, R.recipe, sizeof R.recipe);
			word(&p, buf, sizeof buf);
			R.file_type = number(buf);
			word(&p, buf, sizeof buf);
			R.imatrix = number(buf);
			R.n = 0;
			continue;
		}
		if (strncmp(line, "end", 3) == 0) {
			in = false;
			continue;
		}
		if (!in)
			continue;
		ck_assert_uint_lt(R.n, sizeof R.t / sizeof R.t[0]);
		struct fixture_tensor *t = &R.t[R.n++];
		word(&p, t->name, sizeof t->name);
		word(&p, t->type, sizeof t->type);
	}
	fclose(f);
	return count;
}

START_TEST(test_real_count)
{
	for (int k = 0; k < N_PLAN_SETS; k++)
		ck_assert_int_eq(load_real(plan_sets[k].file, -1), plan_sets[k].count);
}
END_TEST

/* Every tensor type of every artifact is what the plan says. */
START_TEST(test_real_artifact)
{
	int k = 0, i = _i;
	while (i >= plan_sets[k].count)
		i -= plan_sets[k++].count;
	load_real(plan_sets[k].file, i);
	build(&M, &plan_sets[k].spec, plan_sets[k].arch, plan_sets[k].biases);
	M.shape.has_imatrix = R.imatrix != 0;
	ck_assert_uint_eq(R.n, M.n);
	const struct qa_recipe *r = qa_recipe_by_name(R.recipe);
	ck_assert_msg(r != NULL, "no recipe %s", R.recipe);
	ck_assert_uint_eq(qa_recipe_file_type(r), R.file_type);
	plan_ok(R.recipe, 0);
	for (size_t j = 0; j < R.n; j++) {
		size_t t = find(&M, R.t[j].name);
		ck_assert_msg(strcmp(qa_type_name(P[t].type), R.t[j].type) == 0,
		              "%s %s%s %s: planned %s (%s), llama-quantize wrote %s", plan_sets[k].spec.name,
		              R.recipe, R.imatrix ? " imatrix" : "", R.t[j].name, qa_type_name(P[t].type),
		              P[t].rule, R.t[j].type);
	}
}
END_TEST

/* ---- malformed ------------------------------------------------------------- */

START_TEST(test_refused)
{
	struct qa_diag d;
	static const struct model_spec s = { "m", 256, 512, 2, 4, 4, 64, 256, false, QA_TYPE_F16 };
	const struct qa_recipe *r = qa_recipe_by_name("Q4_K_M");

	build(&M, &s, "llama", false);
	ck_assert_int_eq(qa_recipe_plan(r, 0, NULL, M.t, M.n, P, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_recipe_plan(r, 0, &M.shape, NULL, M.n, P, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_recipe_plan(r, 0, &M.shape, M.t, M.n, NULL, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_recipe_plan(NULL, QA_TYPE_Q8_K, &M.shape, M.t, M.n, P, &d),
	                 QA_ERR_USAGE);
	ck_assert_int_eq(qa_recipe_plan(NULL, 999, &M.shape, M.t, M.n, P, NULL), QA_ERR_USAGE);

	/* Declared tied but the file has output.weight. */
	M.shape.tied = true;
	ck_assert_int_eq(qa_recipe_plan(r, 0, &M.shape, M.t, M.n, P, &d), QA_ERR_VALUE);
	ck_assert_int_eq(d.code, QA_ERR_VALUE);
	M.shape.tied = false;

	/* A block-32 type whose rows do not fit has nothing smaller to fall back
	 * to: llama-quant.cpp's tensor_type_fallback (2026-09) turns it into f16
	 * (older llama.cpp threw). */
	M.n = 0;
	add(&M, "blk.0.ffn_up.weight", 2, 48, 64, QA_TYPE_F32);
	ck_assert_int_eq(qa_recipe_plan(qa_recipe_by_name("Q8_0"), 0, &M.shape, M.t, M.n, P, &d),
	                 QA_OK);
	ck_assert_uint_eq(P[0].type, QA_TYPE_F16);
	ck_assert_int_eq(qa_recipe_plan(NULL, QA_TYPE_Q4_0, &M.shape, M.t, M.n, P, &d), QA_OK);
	ck_assert_uint_eq(P[0].type, QA_TYPE_F16);
	/* An expert tensor of a mixture of experts must name its layer. */
	M.n = 0;
	add(&M, "ffn_up_exps.weight", 3, 256, 512, QA_TYPE_F32);
	M.t[0].ne[2] = 8;
	M.shape.n_expert = 8;
	ck_assert_int_eq(qa_recipe_plan(qa_recipe_by_name("IQ3_XS"), 0, &M.shape, M.t, M.n, P, &d),
	                 QA_ERR_VALUE);
	M.shape.n_expert = 0;
}
END_TEST

static const struct {
	const char *name;
	uint32_t n_dims, src;
} bad_tensors[] = {
	{ NULL, 2, QA_TYPE_F32 },
	{ "blk.0.ffn_up.weight", 0, QA_TYPE_F32 },
	{ "blk.0.ffn_up.weight", 5, QA_TYPE_F32 },
	{ "blk.0.ffn_up.weight", 2, 4 },
	{ "blk.0.ffn_up.weight", 2, 9999 },
};

START_TEST(test_bad_tensor)
{
	struct qa_diag d;
	struct qa_plan_tensor t[2] = {
		{ "token_embd.weight", 2, { 256, 256, 1, 1 }, QA_TYPE_F32 },
		{ bad_tensors[_i].name, bad_tensors[_i].n_dims, { 256, 64, 1, 1 }, bad_tensors[_i].src },
	};
	struct qa_model_shape shape = { "qwen2", 1, 4, 4, true, false, 0 };
	ck_assert_int_eq(qa_recipe_plan(qa_recipe_by_name("Q6_K"), 0, &shape, t, 2, P, &d),
	                 QA_ERR_VALUE);
	ck_assert_int_eq(d.code, QA_ERR_VALUE);
	ck_assert(strlen(d.msg) > 0);
}
END_TEST


/*
 * llama-quantize's overrides, as llama-quant.cpp's llama_tensor_get_type
 * orders them (source: that function and its tensor_type_fallback): the
 * token-embedding and output types win first and skip the fallback; a
 * --tensor-type pattern replaces the recipe's rules for its tensors and,
 * since the rules are never called for them, does not advance the attn_v
 * counter, so the next attn_v is judged as if it were the first; --pure
 * skips every rule; --leave-output-tensor keeps output.weight unquantized.
 */
START_TEST(test_overrides)
{
	/* 8 layers, Q4_K_M: the i-th attn_v gets q6_K where use_more_bits(i, 8)
	 * holds: i < 1, i >= 7 or (i - 1) % 3 == 2, so i = 0, 3, 6, 7 */
	static const struct model_spec s = { "m", 256, 512, 8, 4, 1, 64, 256, false, QA_TYPE_BF16 };
	struct qa_recipe_overrides ov;
	struct qa_recipe_tensor_type tt[1];
	struct qa_diag d;
	const struct qa_recipe *r = qa_recipe_by_name("Q4_K_M");
	build(&M, &s, "qwen2", true);

	/* no overrides: the same plan as qa_recipe_plan */
	qa_recipe_overrides_init(&ov);
	ck_assert(qa_recipe_overrides_empty(&ov));
	ck_assert_int_eq(qa_recipe_plan_with(r, 0, &ov, &M.shape, M.t, M.n, P, &d), QA_OK);
	ck_assert_str_eq(type_of("blk.0.attn_v.weight"), "q6_K"); /* i = 0 < 8/8 */
	ck_assert_str_eq(type_of("blk.1.attn_v.weight"), "q4_K"); /* (1-1)%3 = 0 */
	ck_assert_str_eq(type_of("output.weight"), "q6_K");

	/* a pattern for blk.0's attn_v: blk.1's attn_v becomes counter 0 -> q6_K */
	tt[0].pattern = "BLK\\.0\\.attn_v";    /* lower-cased as llama-quantize does */
	tt[0].type = QA_TYPE_Q8_0;
	ov.tensor_types = tt;
	ov.n_tensor_types = 1;
	ck_assert(!qa_recipe_overrides_empty(&ov));
	ck_assert_int_eq(qa_recipe_plan_with(r, 0, &ov, &M.shape, M.t, M.n, P, &d), QA_OK);
	ck_assert_str_eq(type_of("blk.0.attn_v.weight"), "q8_0");
	ck_assert_str_eq(type_of("blk.1.attn_v.weight"), "q6_K");
	ck_assert_str_eq(type_of("blk.1.attn_q.weight"), "q4_K");

	/* output and token-embedding types; --pure skips the rules */
	qa_recipe_overrides_init(&ov);
	ov.output_type = QA_TYPE_Q8_0;
	ov.token_embd_type = QA_TYPE_Q5_0;
	ov.pure = true;
	ck_assert_int_eq(qa_recipe_plan_with(r, 0, &ov, &M.shape, M.t, M.n, P, &d), QA_OK);
	ck_assert_str_eq(type_of("output.weight"), "q8_0");
	ck_assert_str_eq(type_of("token_embd.weight"), "q5_0");
	ck_assert_str_eq(type_of("blk.0.attn_v.weight"), "q4_K");
	ck_assert_str_eq(type_of("blk.7.ffn_down.weight"), "q4_K");
	ck_assert_str_eq(type_of("blk.0.attn_norm.weight"), "f32");

	/* --leave-output-tensor: output.weight keeps the reference's type */
	qa_recipe_overrides_init(&ov);
	ov.leave_output = true;
	ck_assert_int_eq(qa_recipe_plan_with(r, 0, &ov, &M.shape, M.t, M.n, P, &d), QA_OK);
	ck_assert_str_eq(type_of("output.weight"), "bf16");
	ck_assert(!P[find(&M, "output.weight")].quantized);

	/* a pattern that does not compile is a usage error */
	qa_recipe_overrides_init(&ov);
	tt[0].pattern = "attn_(v";
	ov.tensor_types = tt;
	ov.n_tensor_types = 1;
	ck_assert_int_eq(qa_recipe_plan_with(r, 0, &ov, &M.shape, M.t, M.n, P, &d), QA_ERR_USAGE);
}
END_TEST

/* A tied model takes --output-tensor-type for token_embd through the rules. */
START_TEST(test_overrides_tied)
{
	static const struct model_spec s = { "m", 256, 512, 2, 4, 1, 64, 256, true, QA_TYPE_BF16 };
	struct qa_recipe_overrides ov;
	struct qa_diag d;
	build(&M, &s, "qwen2", true);
	qa_recipe_overrides_init(&ov);
	ov.output_type = QA_TYPE_Q8_0;
	ck_assert_int_eq(qa_recipe_plan_with(qa_recipe_by_name("Q4_K_M"), 0, &ov, &M.shape, M.t, M.n,
	                                     P, &d), QA_OK);
	ck_assert_str_eq(type_of("token_embd.weight"), "q8_0");
	ov.pure = true; /* --pure skips the rule that carries it */
	ck_assert_int_eq(qa_recipe_plan_with(qa_recipe_by_name("Q4_K_M"), 0, &ov, &M.shape, M.t, M.n,
	                                     P, &d), QA_OK);
	ck_assert_str_eq(type_of("token_embd.weight"), "q4_K");
}
END_TEST

/*
 * --tensor-type patterns as llama-quantize matches them.  Source of truth:
 * std::regex (ECMAScript) regex_search of the lower-cased pattern, the
 * table printed by tests/data/recipe/ecma-truth.cpp (g++ 12, libstdc++).
 */
static const struct {
	const char *pattern, *name;
	bool match;
} ecma_cases[] = {
	{ "attn_q", "blk.0.attn_q.weight", true },
	{ "blk\\.\\d+\\.ffn_(up|gate)", "blk.12.ffn_gate.weight", true },
	{ "blk\\.\\d+\\.ffn_(up|gate)", "blk.12.ffn_down.weight", false },
	{ "BLK\\.\\D\\.ATTN_V", "blk.3.attn_v.weight", true },
	{ "BLK\\.\\D\\.ATTN_V", "blk.x.attn_v.weight", false },
	{ "(?:attn_k|attn_v)\\.weight$", "blk.0.attn_v.weight", true },
	{ "(?:attn_k|attn_v)\\.weight$", "blk.0.attn_v.bias", false },
	{ "blk\\.[\\d]\\.attn_out\\w+", "blk.4.attn_output.weight", true },
	{ "blk\\.[\\d]\\.attn_out\\w+", "blk.40.attn_output.weight", false },
	{ "blk\\.[^\\d]", "blk.a", true },
	{ "blk\\.[^\\d]", "blk.1", false },
	{ "ffn_[\\w]+\\.weight", "blk.0.ffn_up.weight", true },
	{ "\\W", "token_embd", true },
	{ "\\S+_exps", "blk.0.ffn_up_exps.weight", false },
	{ "blk\\.(\\d|1\\d)\\.", "blk.15.attn_q.weight", true },
	{ "blk\\.(\\d|1\\d)\\.", "blk.25.attn_q.weight", false },
	{ "^output", "output_norm.weight", true },
	{ "^output\\.", "output_norm.weight", false },
	{ "ffn_.*?_exps", "blk.0.ffn_gate_exps.weight", true },
	{ "attn_[kv]\\b", "blk.0.attn_k.weight", true },
	{ "attn_[kv]\\b", "blk.0.attn_kv_b.weight", false },
	{ "blk\\.[1-3]\\.", "blk.2.ffn_up.weight", true },
	{ "[\\-.]0[.]", "blk.0.ffn_up.weight", true },
	{ "exps\\/", "blk.0.ffn_up_exps.weight", false },
	{ "blk\\.\\d{2}\\.", "blk.7.attn_q.weight", false },
	{ "blk\\.\\d{2}\\.", "blk.17.attn_q.weight", true },
};

START_TEST(test_pattern_syntax)
{
	struct qa_diag d;
	bool m = !ecma_cases[_i].match;
	ck_assert_msg(qa_recipe_pattern_match(ecma_cases[_i].pattern, ecma_cases[_i].name, &m, &d) == QA_OK,
	              "%s: %s", ecma_cases[_i].pattern, d.msg);
	ck_assert_msg(m == ecma_cases[_i].match, "/%s/ on %s: %d, std::regex says %d",
	              ecma_cases[_i].pattern, ecma_cases[_i].name, m, ecma_cases[_i].match);
}
END_TEST

/* What std::regex reads but this build refuses, rather than matching differently. */
START_TEST(test_pattern_refused)
{
	static const char *const bad[] = { "(?=attn)attn_q", "(?!ffn)attn", "attn\\x5fq", "attn\\u005fq",
	                                   "(a)\\1", "attn_(v", "[[:digit:]]", "attn\\" };
	struct qa_diag d;
	bool m;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(qa_recipe_pattern_match(bad[i], "blk.0.attn_q.weight", &m, &d) == QA_ERR_USAGE,
		              "%s accepted", bad[i]);
}
END_TEST

/* Recipes announced by file names (the names of published artifacts). */
START_TEST(test_recipe_from_file_name)
{
	static const struct {
		const char *name, *recipe;
	} c[] = {
		{ "Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Q4_K_M" },
		{ "hf://org/m/real-qwen2.IQ2_XXS.imatrix.gguf", "IQ2_XXS" },
		{ "model-q8_0.gguf", "Q8_0" },
		{ "https://host/x/Model-IQ4_XS-00001-of-00002.gguf?download=true", "IQ4_XS" },
		{ "m.Q4_K.gguf", "Q4_K_M" },          /* llama-quantize's alias */
		{ "model.gguf", NULL },
		{ "model.BF16.gguf", "BF16" },
		{ "model-Q4_K_M-Q5_K_M.gguf", NULL }, /* two recipes: no guess */
		{ "xQ4_K_M.gguf", NULL },             /* not between separators */
		{ "Q4_K_M/model.gguf", NULL },        /* the folder does not count */
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		const struct qa_recipe *r = qa_recipe_from_file_name(c[i].name);
		if (!c[i].recipe)
			ck_assert_msg(r == NULL, "%s: %s", c[i].name, r ? qa_recipe_name(r) : "");
		else
			ck_assert_msg(r && strcmp(qa_recipe_name(r), c[i].recipe) == 0, "%s: %s", c[i].name,
			              r ? qa_recipe_name(r) : "none");
	}
}
END_TEST

static Suite *recipe_suite(void)
{
	Suite *s = suite_create("recipe");
	TCase *core = tcase_create("core");
	tcase_add_test(core, test_fixture_count);
	tcase_add_loop_test(core, test_oracle_artifact, 0, N_ARTIFACTS);
	tcase_add_test(core, test_order_independent);
	tcase_add_loop_test(core, test_use_more_bits, 0, 2);
	tcase_add_loop_test(core, test_q2_k_gqa, 0, sizeof gqa_cases / sizeof gqa_cases[0]);
	tcase_add_test(core, test_q3_k_mixes);
	tcase_add_test(core, test_q4_k_s);
	tcase_add_loop_test(core, test_imatrix_guard, 0, 3);
	tcase_add_loop_test(core, test_output_rule, 0, sizeof output_cases / sizeof output_cases[0]);
	tcase_add_loop_test(core, test_pure_fallback, 0,
	                    sizeof fallback_cases / sizeof fallback_cases[0]);
	tcase_add_test(core, test_70b);
	tcase_add_test(core, test_overrides);
	tcase_add_test(core, test_overrides_tied);
	tcase_add_loop_test(core, test_imatrix_rules, 0,
	                    sizeof imatrix_cases / sizeof imatrix_cases[0]);
	tcase_add_test(core, test_needs_imatrix);
	tcase_add_test(core, test_mxfp4_moe);
	tcase_add_test(core, test_real_count);
	tcase_add_loop_test(core, test_real_artifact, 0, 24 + 15 + 8);
	suite_add_tcase(s, core);

	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(limits, test_recipe_names, 0, sizeof name_cases / sizeof name_cases[0]);
	tcase_add_loop_test(limits, test_unknown_recipe, 0,
	                    sizeof unknown_names / sizeof unknown_names[0]);
	tcase_add_test(limits, test_unknown_ftype);
	tcase_add_loop_test(core, test_pattern_syntax, 0, (int)(sizeof ecma_cases / sizeof ecma_cases[0]));
	tcase_add_test(core, test_recipe_from_file_name);

	tcase_add_test(limits, test_pure_file_type);
	tcase_add_test(limits, test_edge_shapes);
	suite_add_tcase(s, limits);

	TCase *malformed = tcase_create("malformed");
	tcase_add_test(malformed, test_pattern_refused);
	tcase_add_test(malformed, test_refused);
	tcase_add_loop_test(malformed, test_bad_tensor, 0,
	                    sizeof bad_tensors / sizeof bad_tensors[0]);
	suite_add_tcase(s, malformed);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(recipe_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
