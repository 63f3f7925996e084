/*
 * recipe.c - llama.cpp's per-tensor type choice for dense decoders.
 *
 * The rules follow the facts of llama.cpp's src/llama-quant.cpp (2026):
 * which tensors may be quantized, the per-category type choice of each file
 * type, the attn_v / ffn_down counters and the fallback for row lengths a
 * type cannot hold.  Only the branches reachable for the supported file types
 * and dense (no expert, non-Falcon) models are modelled.
 */
#include "recipe.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arch.h"
#include "names.h"
#include "order.h"
#include "quant.h"
#include "types.h"

/* llama_ftype ids (include/llama.h). */
enum {
	FT_ALL_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7,
	FT_Q5_0 = 8, FT_Q5_1 = 9, FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12,
	FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15, FT_Q5_K_S = 16,
	FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ2_XXS = 19, FT_IQ2_XS = 20,
	FT_IQ3_XS = 22, FT_IQ3_XXS = 23, FT_IQ1_S = 24, FT_IQ4_NL = 25,
	FT_IQ3_S = 26, FT_IQ3_M = 27, FT_IQ2_S = 28, FT_IQ2_M = 29,
	FT_IQ4_XS = 30, FT_IQ1_M = 31, FT_BF16 = 32, FT_TQ1_0 = 36,
	FT_TQ2_0 = 37, FT_MXFP4_MOE = 38
};

struct qa_recipe {
	const char *name;
	uint32_t file_type;
	uint32_t default_type;
};

static const struct qa_recipe recipes[] = {
	{ "Q4_0", FT_Q4_0, QA_TYPE_Q4_0 },
	{ "Q4_1", FT_Q4_1, QA_TYPE_Q4_1 },
	{ "Q5_0", FT_Q5_0, QA_TYPE_Q5_0 },
	{ "Q5_1", FT_Q5_1, QA_TYPE_Q5_1 },
	{ "Q8_0", FT_Q8_0, QA_TYPE_Q8_0 },
	{ "Q2_K", FT_Q2_K, QA_TYPE_Q2_K },
	{ "Q3_K_S", FT_Q3_K_S, QA_TYPE_Q3_K },
	{ "Q3_K_M", FT_Q3_K_M, QA_TYPE_Q3_K },
	{ "Q3_K_L", FT_Q3_K_L, QA_TYPE_Q3_K },
	{ "Q4_K_S", FT_Q4_K_S, QA_TYPE_Q4_K },
	{ "Q4_K_M", FT_Q4_K_M, QA_TYPE_Q4_K },
	{ "Q5_K_S", FT_Q5_K_S, QA_TYPE_Q5_K },
	{ "Q5_K_M", FT_Q5_K_M, QA_TYPE_Q5_K },
	{ "Q6_K", FT_Q6_K, QA_TYPE_Q6_K },
	{ "IQ2_XXS", FT_IQ2_XXS, QA_TYPE_IQ2_XXS },
	{ "IQ2_XS", FT_IQ2_XS, QA_TYPE_IQ2_XS },
	{ "IQ2_S", FT_IQ2_S, QA_TYPE_IQ2_XS },
	{ "IQ2_M", FT_IQ2_M, QA_TYPE_IQ2_S },
	{ "IQ1_S", FT_IQ1_S, QA_TYPE_IQ1_S },
	{ "IQ1_M", FT_IQ1_M, QA_TYPE_IQ1_M },
	{ "TQ1_0", FT_TQ1_0, QA_TYPE_TQ1_0 },
	{ "TQ2_0", FT_TQ2_0, QA_TYPE_TQ2_0 },
	{ "IQ3_XXS", FT_IQ3_XXS, QA_TYPE_IQ3_XXS },
	{ "IQ3_XS", FT_IQ3_XS, QA_TYPE_IQ3_S },
	{ "IQ3_S", FT_IQ3_S, QA_TYPE_IQ3_S },
	{ "IQ3_M", FT_IQ3_M, QA_TYPE_IQ3_S },
	{ "IQ4_NL", FT_IQ4_NL, QA_TYPE_IQ4_NL },
	{ "IQ4_XS", FT_IQ4_XS, QA_TYPE_IQ4_XS },
	{ "MXFP4_MOE", FT_MXFP4_MOE, QA_TYPE_MXFP4 },
	/* the unquantized file types: every quantizable tensor converted */
	{ "F32", FT_ALL_F32, QA_TYPE_F32 },
	{ "F16", FT_F16, QA_TYPE_F16 },
	{ "BF16", FT_BF16, QA_TYPE_BF16 },
};

#define N_RECIPES (sizeof recipes / sizeof recipes[0])

/* llama-quantize's short aliases for the medium k-quant mixes. */
static const struct {
	const char *alias;
	uint32_t file_type;
} aliases[] = {
	{ "Q3_K", FT_Q3_K_M }, { "Q4_K", FT_Q4_K_M }, { "Q5_K", FT_Q5_K_M },
};

/* The natural file type of each type accepted by --pure. */
static const struct {
	uint32_t type;
	uint32_t file_type;
} pure_ftypes[] = {
	{ QA_TYPE_F32, FT_ALL_F32 },     { QA_TYPE_F16, FT_F16 },
	{ QA_TYPE_BF16, FT_BF16 },       { QA_TYPE_Q4_0, FT_Q4_0 },
	{ QA_TYPE_Q4_1, FT_Q4_1 },       { QA_TYPE_Q5_0, FT_Q5_0 },
	{ QA_TYPE_Q5_1, FT_Q5_1 },       { QA_TYPE_Q8_0, FT_Q8_0 },
	{ QA_TYPE_Q2_K, FT_Q2_K },       { QA_TYPE_Q3_K, FT_Q3_K_M },
	{ QA_TYPE_Q4_K, FT_Q4_K_M },     { QA_TYPE_Q5_K, FT_Q5_K_M },
	{ QA_TYPE_Q6_K, FT_Q6_K },       { QA_TYPE_IQ2_XXS, FT_IQ2_XXS },
	{ QA_TYPE_IQ2_XS, FT_IQ2_XS },   { QA_TYPE_IQ2_S, FT_IQ2_M },
	{ QA_TYPE_IQ3_XXS, FT_IQ3_XXS }, { QA_TYPE_IQ3_S, FT_IQ3_S },
	{ QA_TYPE_IQ1_S, FT_IQ1_S },     { QA_TYPE_IQ1_M, FT_IQ1_M },
	{ QA_TYPE_IQ4_NL, FT_IQ4_NL },   { QA_TYPE_IQ4_XS, FT_IQ4_XS },
	{ QA_TYPE_TQ1_0, FT_TQ1_0 },     { QA_TYPE_TQ2_0, FT_TQ2_0 },
	{ QA_TYPE_MXFP4, FT_MXFP4_MOE },
};

/*
 * Substrings that keep a tensor out of quantization whatever its shape
 * (llama.cpp's list for all architectures; most never occur in a dense
 * decoder but cost nothing to honour).
 */
static const char *const never_quantized[] = {
	"_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight",
	"altup", "laurel", "per_layer_model_proj", "ssm_conv1d",
	"shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
	"time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
	"time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight",
	"time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
	"time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
	"time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
	"time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd",
	"sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd",
	".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
};

/* Whole names that are never quantized (positional and token-type tables). */
static const char *const never_quantized_exact[] = {
	"position_embd.weight", "token_types.weight",
};

enum category {
	CAT_TOKEN_EMBD, CAT_ATTN_Q, CAT_ATTN_V, CAT_ATTN_K, CAT_ATTN_QKV,
	CAT_ATTN_KV_B, CAT_ATTN_OUTPUT, CAT_FFN_UP, CAT_FFN_GATE, CAT_FFN_DOWN,
	CAT_OUTPUT, CAT_OTHER
};

const struct qa_recipe *qa_recipe_by_name(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < N_RECIPES; i++)
		if (strcasecmp(name, recipes[i].name) == 0)
			return &recipes[i];
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
		if (strcasecmp(name, aliases[i].alias) == 0)
			return qa_recipe_by_file_type(aliases[i].file_type);
	return NULL;
}

/* Whether name (a base name) holds tag at p, between separators: preceded
 * by the start, '.', '-' or '_', followed by '.' or '-' (the Hub's QUANT
 * convention), compared case-insensitively. */
static bool tag_at(const char *name, const char *p, const char *tag)
{
	size_t n = strlen(tag);
	return strncasecmp(p, tag, n) == 0 && (p == name || strchr(".-_", p[-1])) &&
	       (p[n] == '.' || p[n] == '-');
}

const struct qa_recipe *qa_recipe_from_file_name(const char *path)
{
	if (!path)
		return NULL;
	size_t end = strcspn(path, "?#");
	const char *name = path;
	for (size_t i = 0; i < end; i++)
		if (path[i] == '/')
			name = path + i + 1;
	const struct qa_recipe *found = NULL;
	for (const char *p = name; p < path + end; p++) {
		const struct qa_recipe *r = NULL;
		for (size_t i = 0; i < N_RECIPES && !r; i++)
			if (tag_at(name, p, recipes[i].name))
				r = &recipes[i];
		for (size_t i = 0; i < sizeof aliases / sizeof aliases[0] && !r; i++)
			if (tag_at(name, p, aliases[i].alias))
				r = qa_recipe_by_file_type(aliases[i].file_type);
		if (r && found && r != found)
			return NULL; /* two different recipes named: no guess */
		if (r)
			found = r;
	}
	return found;
}

const struct qa_recipe *qa_recipe_by_file_type(uint32_t ftype)
{
	for (size_t i = 0; i < N_RECIPES; i++)
		if (recipes[i].file_type == ftype)
			return &recipes[i];
	return NULL;
}

const char *qa_recipe_name(const struct qa_recipe *r)
{
	return r->name;
}

uint32_t qa_recipe_file_type(const struct qa_recipe *r)
{
	return r->file_type;
}

uint32_t qa_recipe_default_type(const struct qa_recipe *r)
{
	return r->default_type;
}

uint32_t qa_recipe_pure_file_type(uint32_t type)
{
	for (size_t i = 0; i < sizeof pure_ftypes / sizeof pure_ftypes[0]; i++)
		if (pure_ftypes[i].type == type)
			return pure_ftypes[i].file_type;
	return QA_RECIPE_NO_FILE_TYPE;
}

/* ggml_is_quantized: every block type is, the plain float types are not. */
static bool type_is_quantized(uint32_t type)
{
	const struct qa_type_info *ti = qa_type_get(type);
	return ti != NULL && ti->block_elems > 1;
}

static uint32_t block_elems(uint32_t type)
{
	const struct qa_type_info *ti = qa_type_get(type);
	return ti != NULL && ti->block_elems > 0 ? ti->block_elems : 1;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static enum category category_of(const char *name)
{
	if (strcmp(name, "output.weight") == 0)
		return CAT_OUTPUT;
	if (strcmp(name, "token_embd.weight") == 0 ||
	    strcmp(name, "per_layer_token_embd.weight") == 0)
		return CAT_TOKEN_EMBD;
	if (strstr(name, "attn_qkv.weight"))
		return CAT_ATTN_QKV;
	if (strstr(name, "attn_kv_b.weight"))
		return CAT_ATTN_KV_B;
	if (strstr(name, "attn_v.weight"))
		return CAT_ATTN_V;
	if (strstr(name, "attn_k.weight"))
		return CAT_ATTN_K;
	if (strstr(name, "attn_q.weight"))
		return CAT_ATTN_Q;
	if (strstr(name, "attn_output.weight"))
		return CAT_ATTN_OUTPUT;
	if (strstr(name, "ffn_up"))
		return CAT_FFN_UP;
	if (strstr(name, "ffn_gate"))
		return CAT_FFN_GATE;
	if (strstr(name, "ffn_down"))
		return CAT_FFN_DOWN;
	return CAT_OTHER;
}

/* attn_v-like tensors share the attn_v rules and counter. */
static bool category_is_attn_v(enum category c)
{
	return c == CAT_ATTN_V || c == CAT_ATTN_QKV || c == CAT_ATTN_KV_B;
}

/* ggml_n_dims: the number of dimensions up to the last one larger than 1. */
static uint32_t effective_dims(const struct qa_plan_tensor *t)
{
	for (uint32_t i = t->n_dims; i > 1; i--)
		if (t->ne[i - 1] > 1)
			return i;
	return 1;
}

/* Why the tensor is not quantized, or NULL when llama.cpp quantizes it. */
static const char *not_quantized_reason(const struct qa_plan_tensor *t, bool leave_output)
{
	if (effective_dims(t) < 2)
		return "1-D";
	if (leave_output && strcmp(t->name, "output.weight") == 0)
		return "--leave-output-tensor";
	if (!has_suffix(t->name, "weight"))
		return "name does not end in weight";
	if (strstr(t->name, "_norm.weight"))
		return "norm";
	for (size_t i = 0; i < sizeof never_quantized / sizeof never_quantized[0]; i++)
		if (strstr(t->name, never_quantized[i]))
			return "on the never-quantize list";
	for (size_t i = 0; i < sizeof never_quantized_exact / sizeof never_quantized_exact[0]; i++)
		if (strcmp(t->name, never_quantized_exact[i]) == 0)
			return "on the never-quantize list";
	return NULL;
}

/*
 * What llama.cpp's converter wrote for a tensor that is not quantized
 * (ModelBase.prepare_tensors): f32 for 1-D tensors, norms, the MoE routers
 * (ffn_gate_inp, ffn_gate_inp_shexp) and every name not ending in ".weight"
 * (e.g. gpt-oss's 2-D expert biases); the source's float type otherwise.
 * For a GGUF reference the caller keeps the reference's own type instead
 * (qa_quantize_plan_types).
 */
static bool converter_keeps_f32(const struct qa_plan_tensor *t)
{
	return t->n_dims <= 1 || has_suffix(t->name, "_norm.weight") || !has_suffix(t->name, ".weight") ||
	       strstr(t->name, ".ffn_gate_inp.weight") || strstr(t->name, ".ffn_gate_inp_shexp.weight");
}

/* llama.cpp's layer weighting: first and last eighth, every third between. */
static bool use_more_bits(int64_t i, int64_t n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

struct plan_state {
	const struct qa_recipe *r;
	uint32_t output_type; /* --output-tensor-type or QA_TYPE_COUNT */
	const struct qa_model_shape *m;
	bool tied;
	bool is_70b;
	bool has_imatrix;
	uint32_t n_gqa, n_expert;
	int64_t n_attention_wv, i_attention_wv;
	int64_t n_ffn_down, i_ffn_down;
	int64_t n_ffn_gate, i_ffn_gate;
	int64_t n_ffn_up, i_ffn_up;
};

#define RULE(e, ...) snprintf((e)->rule, sizeof (e)->rule, __VA_ARGS__)

/* The 1- and 2-bit i-quant mixes, which share one branch of the rules. */
static bool ft_low_iq(uint32_t ft)
{
	return ft == FT_IQ2_XXS || ft == FT_IQ2_XS || ft == FT_IQ1_S || ft == FT_IQ2_S ||
	       ft == FT_IQ2_M || ft == FT_IQ1_M;
}

/* IQ2_S and IQ2_M raise with iq3_s where the other low mixes use q2_K. */
static bool ft_iq2_sm(uint32_t ft)
{
	return ft == FT_IQ2_S || ft == FT_IQ2_M;
}

/*
 * The layer a per-layer counter stands for: the counter itself for a dense
 * model; for a mixture of experts llama.cpp reads it from the name (expert
 * tensors are not one per layer in order).
 */
static bool layer_of(const struct plan_state *st, int64_t counter, const char *name,
                     int64_t *layer)
{
	uint32_t l;
	if (st->n_expert <= 1) {
		*layer = counter;
		return true;
	}
	if (!qa_names_layer(name, &l) || l >= st->m->n_layer)
		return false;
	*layer = l;
	return true;
}

static uint32_t attn_v_type(struct plan_state *st, uint32_t type,
                            struct qa_plan_entry *e)
{
	uint32_t ft = st->r->file_type;
	int64_t i = st->i_attention_wv, n = st->n_attention_wv;

	RULE(e, "attn_v #%lld default -> %s", (long long)i, qa_type_name(type));
	if (ft == FT_Q2_K) {
		type = st->n_gqa >= 4 ? QA_TYPE_Q4_K : QA_TYPE_Q3_K;
		RULE(e, "attn_v Q2_K n_gqa=%u -> %s", (unsigned)st->n_gqa, qa_type_name(type));
	} else if (ft == FT_IQ3_XXS) {
		type = st->n_gqa >= 4 ? QA_TYPE_Q4_K
		     : !st->has_imatrix ? QA_TYPE_IQ3_S : QA_TYPE_IQ3_XXS;
		RULE(e, "attn_v IQ3_XXS n_gqa=%u %s imatrix -> %s", (unsigned)st->n_gqa,
		     st->has_imatrix ? "with" : "without", qa_type_name(type));
	} else if ((ft == FT_IQ3_XS || ft == FT_IQ3_S) && st->n_gqa >= 4) {
		type = QA_TYPE_Q4_K;
		RULE(e, "attn_v %s n_gqa=%u >= 4 -> q4_K", st->r->name, (unsigned)st->n_gqa);
	} else if (ft == FT_IQ3_M) {
		type = QA_TYPE_Q4_K;
		RULE(e, "attn_v IQ3_M -> q4_K");
	} else if (ft == FT_Q3_K_M) {
		type = i < 2 ? QA_TYPE_Q5_K : QA_TYPE_Q4_K;
		RULE(e, "attn_v Q3_K_M #%lld %s 2 -> %s", (long long)i, i < 2 ? "<" : ">=",
		     qa_type_name(type));
	} else if (ft == FT_Q3_K_L) {
		type = QA_TYPE_Q5_K;
		RULE(e, "attn_v Q3_K_L -> q5_K");
	} else if ((ft == FT_IQ4_NL || ft == FT_IQ4_XS) && st->n_gqa >= 4) {
		type = QA_TYPE_Q5_K;
		RULE(e, "attn_v %s n_gqa=%u >= 4 -> q5_K", st->r->name, (unsigned)st->n_gqa);
	} else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(i, n)) {
		type = QA_TYPE_Q6_K;
		RULE(e, "attn_v use_more_bits(%lld of %lld) -> q6_K", (long long)i, (long long)n);
	} else if (ft == FT_Q4_K_S && i < 4) {
		type = QA_TYPE_Q5_K;
		RULE(e, "attn_v Q4_K_S #%lld < 4 -> q5_K", (long long)i);
	}
	if (st->is_70b && (type == QA_TYPE_Q3_K || type == QA_TYPE_Q4_K)) {
		type = QA_TYPE_Q5_K;
		RULE(e, "attn_v 70B model -> q5_K");
	}
	if (st->n_expert == 8) {
		type = QA_TYPE_Q8_0;
		RULE(e, "attn_v 8 experts -> q8_0");
	}
	st->i_attention_wv++;
	return type;
}

static enum qa_err ffn_down_type(struct plan_state *st, const char *name, uint32_t *type,
                                 struct qa_plan_entry *e, struct qa_diag *d)
{
	uint32_t ft = st->r->file_type;
	int64_t i, n = st->n_ffn_down;

	if (!layer_of(st, st->i_ffn_down, name, &i))
		return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
		                   "cannot tell the layer of expert tensor %s", name);
	RULE(e, "ffn_down #%lld default -> %s", (long long)i, qa_type_name(*type));
	if (ft == FT_Q2_K) {
		*type = QA_TYPE_Q3_K;
		RULE(e, "ffn_down Q2_K -> q3_K");
	} else if (ft == FT_IQ3_XXS && !st->has_imatrix) {
		*type = i < n / 8 ? QA_TYPE_Q4_K : QA_TYPE_Q3_K;
		RULE(e, "ffn_down IQ3_XXS without imatrix, layer %lld of %lld -> %s", (long long)i,
		     (long long)n, qa_type_name(*type));
	} else if (ft == FT_Q3_K_M) {
		*type = i < n / 16 ? QA_TYPE_Q5_K : QA_TYPE_Q4_K;
		RULE(e, "ffn_down Q3_K_M layer %lld of %lld -> %s", (long long)i, (long long)n,
		     qa_type_name(*type));
	} else if (ft == FT_IQ3_M && (i < n / 8 || (st->n_expert == 8 && use_more_bits(i, n)))) {
		*type = QA_TYPE_Q4_K;
		RULE(e, "ffn_down IQ3_M layer %lld of %lld -> q4_K", (long long)i, (long long)n);
	} else if (ft == FT_Q3_K_L) {
		*type = QA_TYPE_Q5_K;
		RULE(e, "ffn_down Q3_K_L -> q5_K");
	} else if (ft == FT_Q4_K_M) {
		if (use_more_bits(i, n)) {
			*type = QA_TYPE_Q6_K;
			RULE(e, "ffn_down use_more_bits(layer %lld of %lld) -> q6_K", (long long)i,
			     (long long)n);
		}
	} else if (i < n / 8 && (ft == FT_IQ4_NL || ft == FT_IQ4_XS) && !st->has_imatrix) {
		*type = QA_TYPE_Q5_K;
		RULE(e, "ffn_down %s without imatrix, layer %lld < %lld/8 -> q5_K", st->r->name,
		     (long long)i, (long long)n);
	} else if (ft == FT_Q5_K_M && use_more_bits(i, n)) {
		*type = QA_TYPE_Q6_K;
		RULE(e, "ffn_down use_more_bits(layer %lld of %lld) -> q6_K", (long long)i,
		     (long long)n);
	} else if (ft == FT_Q4_K_S && i < n / 8) {
		*type = QA_TYPE_Q5_K;
		RULE(e, "ffn_down Q4_K_S layer %lld < %lld/8 -> q5_K", (long long)i, (long long)n);
	} else if ((ft == FT_Q4_0 || ft == FT_Q5_0) && st->has_imatrix && i < n / 8) {
		*type = ft == FT_Q4_0 ? QA_TYPE_Q4_1 : QA_TYPE_Q5_1;
		RULE(e, "ffn_down %s with imatrix, layer %lld < %lld/8 -> %s", st->r->name,
		     (long long)i, (long long)n, qa_type_name(*type));
	}
	st->i_ffn_down++;
	return QA_OK;
}

/* The branch of the rules for the 1- and 2-bit i-quant mixes. */
static void low_iq_type(struct plan_state *st, enum category cat, uint32_t *type,
                        struct qa_plan_entry *e)
{
	uint32_t ft = st->r->file_type;
	const char *r = st->r->name;

	if (category_is_attn_v(cat)) {
		if (st->n_gqa >= 4 || st->n_expert >= 4)
			*type = QA_TYPE_Q4_K;
		else
			*type = ft_iq2_sm(ft) ? QA_TYPE_IQ3_S : QA_TYPE_Q2_K;
		RULE(e, "attn_v %s n_gqa=%u -> %s", r, (unsigned)st->n_gqa, qa_type_name(*type));
		st->i_attention_wv++;
	} else if (st->n_expert == 8 && cat == CAT_ATTN_K) {
		*type = QA_TYPE_Q4_K;
		RULE(e, "attn_k %s 8 experts -> q4_K", r);
	} else if (cat == CAT_FFN_DOWN) {
		if (st->i_ffn_down < st->n_ffn_down / 8) {
			*type = ft_iq2_sm(ft) ? QA_TYPE_IQ3_S : QA_TYPE_Q2_K;
			RULE(e, "ffn_down %s #%lld < %lld/8 -> %s", r, (long long)st->i_ffn_down,
			     (long long)st->n_ffn_down, qa_type_name(*type));
		}
		st->i_ffn_down++;
	} else if (cat == CAT_ATTN_OUTPUT) {
		if (st->n_expert == 8)
			*type = QA_TYPE_Q5_K;
		else if (ft == FT_IQ1_S || ft == FT_IQ1_M)
			*type = QA_TYPE_IQ2_XXS;
		else if (ft_iq2_sm(ft))
			*type = QA_TYPE_IQ3_S;
		if (*type != st->r->default_type)
			RULE(e, "attn_output %s -> %s", r, qa_type_name(*type));
	}
}

/* The recipe's choice for one quantizable tensor before the fallback. */
static enum qa_err recipe_type(struct plan_state *st, const struct qa_plan_tensor *t,
                               enum category cat, struct qa_plan_entry *e, struct qa_diag *d)
{
	uint32_t ft = st->r->file_type;
	uint32_t type = st->r->default_type;
	enum qa_err err = QA_OK;

	RULE(e, "default %s", qa_type_name(type));
	if (cat == CAT_OUTPUT || (st->tied && cat == CAT_TOKEN_EMBD)) {
		const char *what = cat == CAT_OUTPUT ? "output" : "tied token_embd";
		uint64_t qk = block_elems(type);
		if (st->output_type != QA_TYPE_COUNT) {
			type = st->output_type;
			RULE(e, "%s --output-tensor-type %s", what, qa_type_name(type));
		} else if (ft == FT_MXFP4_MOE) {
			RULE(e, "%s MXFP4_MOE -> q8_0", what);
			type = QA_TYPE_Q8_0;
		} else if (t->ne[0] % qk != 0) {
			RULE(e, "%s: ne[0]=%llu %% %llu -> q8_0", what,
			     (unsigned long long)t->ne[0], (unsigned long long)qk);
			type = QA_TYPE_Q8_0;
		} else if (ft_low_iq(ft) || ft == FT_IQ3_XXS) {
			RULE(e, "%s %s -> q5_K", what, st->r->name);
			type = QA_TYPE_Q5_K;
		} else if (type != QA_TYPE_Q8_0) {
			RULE(e, "%s -> q6_K", what);
			type = QA_TYPE_Q6_K;
		} else {
			RULE(e, "%s keeps q8_0", what);
		}
	} else if (ft == FT_MXFP4_MOE) {
		type = t->n_dims >= 3 && t->ne[2] > 1 ? QA_TYPE_MXFP4 : QA_TYPE_Q8_0;
		RULE(e, "MXFP4_MOE %s -> %s", type == QA_TYPE_MXFP4 ? "expert tensor" : "non-expert",
		     qa_type_name(type));
	} else if (cat == CAT_TOKEN_EMBD) {
		if (ft == FT_IQ2_XXS || ft == FT_IQ2_XS || ft == FT_IQ1_S || ft == FT_IQ1_M)
			type = QA_TYPE_Q2_K;
		else if (ft_iq2_sm(ft) || ft == FT_IQ3_XXS)
			type = QA_TYPE_IQ3_S;
		else if (ft == FT_TQ1_0 || ft == FT_TQ2_0)
			type = QA_TYPE_Q4_K;
		if (type != st->r->default_type)
			RULE(e, "token_embd %s -> %s", st->r->name, qa_type_name(type));
	} else if (ft_low_iq(ft)) {
		low_iq_type(st, cat, &type, e);
	} else if (category_is_attn_v(cat)) {
		type = attn_v_type(st, type, e);
	} else if (cat == CAT_ATTN_K) {
		if (st->n_expert == 8)
			type = QA_TYPE_Q8_0;
		else if (ft == FT_IQ3_XS)
			type = QA_TYPE_IQ3_XXS;
		else if (ft == FT_IQ3_XXS)
			type = QA_TYPE_IQ2_S;
		if (type != st->r->default_type)
			RULE(e, "attn_k %s -> %s", st->r->name, qa_type_name(type));
	} else if (cat == CAT_ATTN_Q) {
		if (ft == FT_IQ3_XS)
			type = QA_TYPE_IQ3_XXS;
		else if (ft == FT_IQ3_XXS)
			type = QA_TYPE_IQ2_S;
		if (type != st->r->default_type)
			RULE(e, "attn_q %s -> %s", st->r->name, qa_type_name(type));
	} else if (cat == CAT_FFN_DOWN) {
		err = ffn_down_type(st, t->name, &type, e, d);
	} else if (cat == CAT_ATTN_OUTPUT) {
		if (st->n_expert == 8) {
			if (ft == FT_Q2_K || ft == FT_IQ3_XS || ft == FT_IQ3_XXS || ft == FT_Q3_K_S ||
			    ft == FT_Q3_K_M || ft == FT_IQ4_NL || ft == FT_Q4_K_S || ft == FT_Q4_K_M ||
			    ft == FT_IQ3_S || ft == FT_IQ3_M || ft == FT_IQ4_XS)
				type = QA_TYPE_Q5_K;
		} else if (ft == FT_Q2_K) {
			type = QA_TYPE_Q3_K;
		} else if (ft == FT_IQ3_XXS) {
			type = QA_TYPE_IQ3_S;
		} else if (ft == FT_Q3_K_M || ft == FT_IQ3_M) {
			type = QA_TYPE_Q4_K;
		} else if (ft == FT_Q3_K_L) {
			type = QA_TYPE_Q5_K;
		}
		if (type != st->r->default_type)
			RULE(e, "attn_output %s -> %s", st->r->name, qa_type_name(type));
	} else if (cat == CAT_FFN_GATE || cat == CAT_FFN_UP) {
		int64_t *counter = cat == CAT_FFN_GATE ? &st->i_ffn_gate : &st->i_ffn_up;
		int64_t n = cat == CAT_FFN_GATE ? st->n_ffn_gate : st->n_ffn_up, i;
		if (!layer_of(st, *counter, t->name, &i))
			return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
			                   "cannot tell the layer of expert tensor %s", t->name);
		if (ft == FT_IQ3_XS && i >= n / 8 && i < 7 * n / 8) {
			type = QA_TYPE_IQ3_XXS;
			RULE(e, "%s IQ3_XS layer %lld in [%lld/8, 7*%lld/8) -> iq3_xxs",
			     cat == CAT_FFN_GATE ? "ffn_gate" : "ffn_up", (long long)i, (long long)n,
			     (long long)n);
		}
		(*counter)++;
	}
	e->type = type;
	return err;
}

/* The block-32 (or f16) replacement for a type ne[0] cannot hold. */
static bool fallback_type(uint32_t type, uint32_t *out)
{
	switch (type) {
	case QA_TYPE_IQ1_S:
	case QA_TYPE_IQ1_M:
	case QA_TYPE_IQ2_XXS:
	case QA_TYPE_IQ2_XS:
	case QA_TYPE_IQ2_S:
	case QA_TYPE_IQ3_XXS:
	case QA_TYPE_IQ3_S:
	case QA_TYPE_IQ4_XS:
		*out = QA_TYPE_IQ4_NL;
		return true;
	case QA_TYPE_Q2_K:
	case QA_TYPE_Q3_K:
	case QA_TYPE_TQ1_0:
	case QA_TYPE_TQ2_0:
		*out = QA_TYPE_Q4_0;
		return true;
	case QA_TYPE_Q4_K:
		*out = QA_TYPE_Q5_0;
		return true;
	case QA_TYPE_Q5_K:
		*out = QA_TYPE_Q5_1;
		return true;
	case QA_TYPE_Q6_K:
		*out = QA_TYPE_Q8_0;
		return true;
	default:
		return false;
	}
}

static void append_rule(struct qa_plan_entry *e, const char *text)
{
	size_t len = strlen(e->rule);
	if (len + 1 < sizeof e->rule)
		snprintf(e->rule + len, sizeof e->rule - len, "%s", text);
}

static enum qa_err apply_fallback(const struct qa_plan_tensor *t, size_t idx,
                                  struct qa_plan_entry *e, struct qa_diag *d)
{
	uint64_t qk = block_elems(e->type);
	uint32_t fb;
	char note[64];

	if (t->ne[0] % qk == 0)
		return QA_OK;
	if (qk <= 32) {
		/* a block-32 type has no smaller block to fall back to */
		snprintf(note, sizeof note, "; ne[0]=%llu %% %llu: f16",
		         (unsigned long long)t->ne[0], (unsigned long long)qk);
		append_rule(e, note);
		e->type = QA_TYPE_F16;
		return QA_OK;
	}
	if (!fallback_type(e->type, &fb))
		return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
		                   "tensor %zu (%s): ne[0]=%llu is not a multiple of %llu "
		                   "and %s has no fallback", idx, t->name,
		                   (unsigned long long)t->ne[0], (unsigned long long)qk,
		                   qa_type_name(e->type));
	snprintf(note, sizeof note, "; fallback %s->%s: ne[0]=%llu %% %llu",
	         qa_type_name(e->type), qa_type_name(fb),
	         (unsigned long long)t->ne[0], (unsigned long long)qk);
	append_rule(e, note);
	e->type = fb;
	if (t->ne[0] % block_elems(fb) != 0) {
		e->type = QA_TYPE_F16;
		append_rule(e, "; then f16");
	}
	return QA_OK;
}

/*
 * llama-quantize refuses to write some types without an importance matrix
 * (iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s, iq3_xxs: the ops' llama_requires_imatrix),
 * except for the token embeddings and the output matrix (its
 * tensor_requires_imatrix; the Q2_K_S exception is not a supported recipe).
 */
static bool needs_imatrix(const char *name, uint32_t type)
{
	const struct qa_quant_ops *ops = qa_quant_ops(type);
	if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "per_layer_token_embd.weight") == 0 ||
	    strcmp(name, "output.weight") == 0)
		return false;
	return ops != NULL && ops->llama_requires_imatrix;
}

/*
 * llama.cpp's LLM_TYPE_70B, the only model size its rules look at: its
 * loader gives it to 80-layer models of some architectures (arch.h).
 */
static bool model_is_70b(const struct qa_model_shape *m)
{
	const struct qa_arch *a = qa_arch_find(m->arch);
	if (m->n_layer != 80)
		return false;
	if (qa_arch_has(a, QA_ARCH_70B_AT_80))
		return true;
	return qa_arch_has(a, QA_ARCH_70B_AT_80_GQA) && m->n_head != m->n_head_kv;
}

static enum qa_err validate(const struct qa_plan_tensor *t, size_t n,
                            struct qa_diag *d, bool *has_output,
                            int64_t *n_attention_wv)
{
	*has_output = false;
	*n_attention_wv = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i].name == NULL)
			return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
			                   "tensor %zu has no name", i);
		if (t[i].n_dims < 1 || t[i].n_dims > 4)
			return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
			                   "tensor %zu (%s) has %u dimensions", i, t[i].name,
			                   (unsigned)t[i].n_dims);
		if (qa_type_get(t[i].src_type) == NULL)
			return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
			                   "tensor %zu (%s) has unknown type %u", i, t[i].name,
			                   (unsigned)t[i].src_type);
		enum category c = category_of(t[i].name);
		if (c == CAT_OUTPUT)
			*has_output = true;
		if (category_is_attn_v(c))
			(*n_attention_wv)++;
	}
	return QA_OK;
}

void qa_recipe_overrides_init(struct qa_recipe_overrides *o)
{
	memset(o, 0, sizeof *o);
	o->output_type = QA_TYPE_COUNT;
	o->token_embd_type = QA_TYPE_COUNT;
}

bool qa_recipe_overrides_empty(const struct qa_recipe_overrides *o)
{
	return o == NULL || (!o->pure && !o->leave_output && o->output_type == QA_TYPE_COUNT &&
	                     o->token_embd_type == QA_TYPE_COUNT && o->n_tensor_types == 0);
}

/*
 * Compile pattern as llama-quantize uses it: it lower-cases the whole
 * pattern first (so "\D" reads as "\d", "\W" as "\w"), then searches it
 * anywhere in the name as an ECMAScript regular expression (std::regex).
 * The ECMAScript that a tensor-name pattern uses is translated to POSIX
 * ERE: the classes \d \w \s (also inside brackets), identity escapes of
 * punctuation ("\-", "\/"), non-capturing groups "(?:" and lazy
 * quantifiers ("*?", "+?", "??", "}?", which cannot change whether a search
 * matches).  Look-arounds ("(?=", "(?!") and other escapes of letters
 * except \b are refused (QA_ERR_USAGE).
 */
static bool tr_add(char *buf, size_t cap, size_t *k, const char *s)
{
	size_t n = strlen(s);
	if (*k + n >= cap)
		return false;
	memcpy(buf + *k, s, n);
	*k += n;
	return true;
}

static const char *tr_class(char c, bool in_bracket)
{
	switch (c) {
	case 'd': return in_bracket ? "0-9" : "[0-9]";
	case 'w': return in_bracket ? "a-zA-Z0-9_" : "[a-zA-Z0-9_]";
	case 's': return in_bracket ? " \t\n\r\f\v" : "[ \t\n\r\f\v]";
	default: return NULL;
	}
}

static bool translate_pattern(const char *in, char *buf, size_t cap)
{
	size_t n = strlen(in), k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		char one[3] = { c, '\0', '\0' };
		if (c == '\\') {
			if (i + 1 >= n)
				return false;
			char e = in[++i];
			const char *cls = tr_class(e, false);
			if (cls) {
				if (!tr_add(buf, cap, &k, cls))
					return false;
			} else if (e == 'b') {
				if (!tr_add(buf, cap, &k, "\\b")) /* GNU regex word boundary */
					return false;
			} else if (isalnum((unsigned char)e)) {
				return false; /* \n \t \x.. \u.. \1 ...: not in tensor names */
			} else {
				one[0] = e;
				if (strchr(".[]()*+?{}|^$\\", e)) {
					one[0] = '\\';
					one[1] = e;
				}
				if (!tr_add(buf, cap, &k, one))
					return false;
			}
			continue;
		}
		if (c == '[') {
			/* a bracket expression: ']' and '-' from escapes go first and last */
			size_t j = i + 1;
			bool neg = j < n && in[j] == '^', close = false, dash = false;
			char body[512];
			size_t b = 0;
			if (neg)
				j++;
			if (j < n && in[j] == ']') {
				close = true;
				j++;
			}
			for (; j < n && in[j] != ']'; j++) {
				const char *add = NULL;
				char lit[2] = { in[j], '\0' };
				if (in[j] == '\\' && j + 1 < n) {
					char e = in[++j];
					if ((add = tr_class(e, true)) == NULL) {
						if (isalnum((unsigned char)e))
							return false;
						if (e == ']')
							close = true;
						else if (e == '-')
							dash = true;
						else {
							lit[0] = e;
							add = lit;
						}
					}
				} else if (in[j] == '[' && j + 1 < n && strchr(":.=", in[j + 1])) {
					return false; /* POSIX classes inside brackets: not ECMAScript */
				} else {
					add = lit;
				}
				if (add) {
					size_t an = strlen(add);
					if (b + an >= sizeof body)
						return false;
					memcpy(body + b, add, an);
					b += an;
				}
			}
			if (j >= n)
				return false;
			body[b] = '\0';
			if (!tr_add(buf, cap, &k, neg ? "[^" : "[") || (close && !tr_add(buf, cap, &k, "]")) ||
			    !tr_add(buf, cap, &k, body) || (dash && !tr_add(buf, cap, &k, "-")) ||
			    !tr_add(buf, cap, &k, "]"))
				return false;
			i = j;
			continue;
		}
		if (c == '(' && i + 1 < n && in[i + 1] == '?') {
			if (i + 2 < n && in[i + 2] == ':') {
				if (!tr_add(buf, cap, &k, "("))
					return false;
				i += 2;
				continue;
			}
			return false; /* look-arounds */
		}
		if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < n && in[i + 1] == '?') {
			if (!tr_add(buf, cap, &k, one))
				return false;
			i++; /* lazy: the same matches for a search */
			continue;
		}
		if (!tr_add(buf, cap, &k, one))
			return false;
	}
	buf[k] = '\0';
	return true;
}

static enum qa_err compile_pattern(const char *pattern, regex_t *re, struct qa_diag *d)
{
	size_t n = strlen(pattern);
	size_t cap = n * 16 + 16;
	char *low = malloc(n + 1), *buf = malloc(cap);
	if (low == NULL || buf == NULL) {
		free(low);
		free(buf);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)pattern[i]);
	bool ok = translate_pattern(low, buf, cap);
	int rc = ok ? regcomp(re, buf, REG_EXTENDED | REG_NOSUB) : -1;
	free(low);
	free(buf);
	if (rc != 0)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "--tensor-type pattern '%s' is not a regular expression this build understands",
		                   pattern);
	return QA_OK;
}

enum qa_err qa_recipe_pattern_match(const char *pattern, const char *name, bool *match,
                                    struct qa_diag *d)
{
	regex_t re;
	enum qa_err e = compile_pattern(pattern, &re, d);
	if (e)
		return e;
	*match = regexec(&re, name, 0, NULL, 0) == 0;
	regfree(&re);
	return QA_OK;
}

enum qa_err qa_recipe_plan(const struct qa_recipe *r, uint32_t pure_type,
                           const struct qa_model_shape *m,
                           const struct qa_plan_tensor *t, size_t n,
                           struct qa_plan_entry *out, struct qa_diag *d)
{
	return qa_recipe_plan_with(r, pure_type, NULL, m, t, n, out, d);
}

enum qa_err qa_recipe_plan_with(const struct qa_recipe *r, uint32_t pure_type,
                                const struct qa_recipe_overrides *ov,
                                const struct qa_model_shape *m,
                                const struct qa_plan_tensor *t, size_t n,
                                struct qa_plan_entry *out, struct qa_diag *d)
{
	struct plan_state st;
	struct qa_recipe_overrides none;
	bool has_output;
	enum qa_err err;

	if (ov == NULL) {
		qa_recipe_overrides_init(&none);
		ov = &none;
	}
	if (m == NULL || (n > 0 && (t == NULL || out == NULL)) ||
	    (ov->n_tensor_types > 0 && ov->tensor_types == NULL))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "plan needs a model shape, tensors and room for the plan");
	if (r == NULL && qa_recipe_pure_file_type(pure_type) == QA_RECIPE_NO_FILE_TYPE)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "type %s cannot be used for a pure quantization",
		                   qa_type_name(pure_type));
	if ((ov->output_type != QA_TYPE_COUNT && qa_type_get(ov->output_type) == NULL) ||
	    (ov->token_embd_type != QA_TYPE_COUNT && qa_type_get(ov->token_embd_type) == NULL))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "override names an unknown type");
	for (size_t i = 0; i < ov->n_tensor_types; i++)
		if (ov->tensor_types[i].pattern == NULL || qa_type_get(ov->tensor_types[i].type) == NULL)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "--tensor-type %zu needs a pattern and a known type", i + 1);
	err = validate(t, n, d, &has_output, &st.n_attention_wv);
	if (err != QA_OK)
		return err;
	if (m->tied && has_output)
		return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
		                   "model declared tied but has output.weight");

	st.r = r;
	st.output_type = ov->output_type;
	st.m = m;
	st.tied = !has_output;
	st.is_70b = model_is_70b(m);
	st.n_gqa = m->n_head_kv == 0 ? 0 : m->n_head / m->n_head_kv;
	st.has_imatrix = m->has_imatrix;
	st.n_expert = m->n_expert;
	st.i_attention_wv = 0;
	st.n_ffn_down = st.n_ffn_gate = st.n_ffn_up = m->n_layer;
	st.i_ffn_down = st.i_ffn_gate = st.i_ffn_up = 0;

	if (n == 0)
		return QA_OK;
	size_t *order = calloc(n, sizeof *order);
	const char **names = calloc(n, sizeof *names);
	regex_t *res = calloc(ov->n_tensor_types ? ov->n_tensor_types : 1, sizeof *res);
	size_t n_res = 0;
	if (order == NULL || names == NULL || res == NULL) {
		err = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET,
		                  "no memory to order %zu tensors", n);
		goto done;
	}
	for (; n_res < ov->n_tensor_types; n_res++)
		if ((err = compile_pattern(ov->tensor_types[n_res].pattern, &res[n_res], d)))
			goto done;
	for (size_t i = 0; i < n; i++)
		names[i] = t[i].name;
	if ((err = qa_order_sort(names, n, order, d)))
		goto done;

	for (size_t k = 0; k < n && err == QA_OK; k++) {
		size_t i = order[k];
		const struct qa_plan_tensor *ti = &t[i];
		struct qa_plan_entry *e = &out[i];
		const char *why = not_quantized_reason(ti, ov->leave_output);
		enum category cat = category_of(ti->name);

		memset(e, 0, sizeof *e);
		if (why != NULL) {
			e->type = converter_keeps_f32(ti) ? QA_TYPE_F32 : ti->src_type;
			e->quantized = false;
			RULE(e, "not quantized (%s): %s", why, qa_type_name(e->type));
			continue;
		}
		e->quantized = true;
		int manual = -1;
		for (size_t p = 0; p < n_res && manual < 0; p++)
			if (regexec(&res[p], ti->name, 0, NULL, 0) == 0)
				manual = (int)p;
		/* per_layer_token_embd follows --token-embedding-type unless a pattern names it */
		bool named_ple = manual >= 0 && strcmp(ti->name, "per_layer_token_embd.weight") == 0;
		if (ov->token_embd_type != QA_TYPE_COUNT && cat == CAT_TOKEN_EMBD && !named_ple) {
			e->type = ov->token_embd_type;
			RULE(e, "--token-embedding-type %s", qa_type_name(e->type));
			continue;
		}
		if (ov->output_type != QA_TYPE_COUNT && cat == CAT_OUTPUT) {
			e->type = ov->output_type;
			RULE(e, "--output-tensor-type %s", qa_type_name(e->type));
			continue;
		}
		uint32_t def = r != NULL ? r->default_type : pure_type;
		if (!type_is_quantized(def)) {
			e->type = def;
			RULE(e, "%s %s", r != NULL ? r->name : "pure", qa_type_name(def));
			continue;
		}
		if (manual >= 0) {
			e->type = ov->tensor_types[manual].type;
			RULE(e, "--tensor-type %.40s=%s", ov->tensor_types[manual].pattern,
			     qa_type_name(e->type));
		} else if (r == NULL || ov->pure) {
			e->type = def;
			RULE(e, "pure %s", qa_type_name(def));
		} else {
			err = recipe_type(&st, ti, cat, e, d);
		}
		if (err == QA_OK)
			err = apply_fallback(ti, i, e, d);
		e->needs_imatrix = needs_imatrix(ti->name, e->type);
	}
done:
	for (size_t p = 0; p < n_res; p++)
		regfree(&res[p]);
	free(res);
	free(names);
	free(order);
	return err;
}
