/*
 * reproduce.c - whole-file reproduction of a llama-quantize artifact (see
 * reproduce.h): option inference, the streamed would-be file, its digest,
 * the first differing region and the metadata audit.
 */
#define _POSIX_C_SOURCE 200809L
#include "reproduce.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "escape.h"
#include "gguf.h"
#include "imatrix.h"
#include "manifest.h"
#include "model.h"
#include "names.h"
#include "remote.h"
#include "source.h"
#include "strbuf.h"
#include "types.h"
#include "compare_json.h"
#include "json_scan.h"

/* ------------------------------------------------------------------ */
/* small helpers                                                       */
/* ------------------------------------------------------------------ */

/* A string from a file or the command line under the terminal policy of
 * escape.h (control bytes and invalid UTF-8 as \xNN, a backslash as \\),
 * in new memory (NULL when out of memory). */
static char *escape_n(const char *s, size_t n)
{
	struct qa_sb b = { 0 };
	qa_sb_putn(&b, "", 0);
	qa_escape_term(&b, s, n);
	if (b.oom) {
		qa_sb_free(&b);
		return NULL;
	}
	return b.p;
}

static char *escape(const char *s)
{
	return escape_n(s ? s : "", s ? strlen(s) : 0);
}

/* One word of the options line: shell-quoted, so that the line can be
 * pasted to a shell, when s is printable UTF-8; under the terminal policy
 * (which a shell does not undo) when it holds control bytes or invalid
 * UTF-8, since those must not reach a terminal as they are. */
static void put_word(struct qa_sb *b, const char *s)
{
	size_t n = strlen(s);
	bool printable = qa_utf8_valid(s, n);
	for (size_t i = 0; i < n && printable; i++)
		printable = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
	if (printable)
		qa_sb_shell(b, s);
	else
		qa_escape_term(b, s, n);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *p = malloc((size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, f);
	vsnprintf(p, (size_t)n + 1, f, ap);
	va_end(ap);
	return p;
}

static const char *const vtype_names[] = {
	"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

static const char *vtype_name(uint32_t t)
{
	return t < sizeof vtype_names / sizeof vtype_names[0] ? vtype_names[t] : "?";
}

/* Append the text of v (without its type) to a growing buffer. */
static void value_text(struct qa_sb *b, const struct qa_gguf_value *v, int depth)
{
	char num[64];
	switch (v->type) {
	case QA_GGUF_U8: case QA_GGUF_U16: case QA_GGUF_U32: case QA_GGUF_U64:
		snprintf(num, sizeof num, "%llu", (unsigned long long)v->v.u);
		qa_sb_puts(b, num);
		return;
	case QA_GGUF_I8: case QA_GGUF_I16: case QA_GGUF_I32: case QA_GGUF_I64:
		snprintf(num, sizeof num, "%lld", (long long)v->v.i);
		qa_sb_puts(b, num);
		return;
	case QA_GGUF_F32:
		snprintf(num, sizeof num, "%.9g", v->v.f);
		qa_sb_puts(b, num);
		return;
	case QA_GGUF_F64:
		snprintf(num, sizeof num, "%.17g", v->v.f);
		qa_sb_puts(b, num);
		return;
	case QA_GGUF_BOOL:
		qa_sb_puts(b, v->v.b ? "true" : "false");
		return;
	case QA_GGUF_STRING: {
		size_t n = v->v.str.len > 120 ? 120 : (size_t)v->v.str.len;
		char *e = escape_n(v->v.str.ptr, n);
		qa_sb_puts(b, "\"");
		if (e)
			qa_sb_puts(b, e);
		else
			b->oom = true;
		free(e);
		qa_sb_puts(b, v->v.str.len > 120 ? "\"..." : "\"");
		return;
	}
	case QA_GGUF_ARRAY: {
		snprintf(num, sizeof num, "[%s x %llu]", vtype_name(v->v.arr.elem_type),
		         (unsigned long long)v->v.arr.count);
		qa_sb_puts(b, num);
		if (depth > 0)
			return;
		qa_sb_puts(b, " [");
		for (uint64_t i = 0; i < v->v.arr.count && i < 4; i++) {
			if (i)
				qa_sb_puts(b, ", ");
			struct qa_gguf_value it;
			if (qa_gguf_array_get(v, i, &it))
				value_text(b, &it, depth + 1);
		}
		qa_sb_puts(b, v->v.arr.count > 4 ? ", ...]" : "]");
		return;
	}
	}
	qa_sb_puts(b, "?");
}

char *qa_reproduce_value_text(const struct qa_gguf_value *v)
{
	struct qa_sb b = { 0 };
	qa_sb_puts(&b, vtype_name(v->type));
	qa_sb_puts(&b, " ");
	value_text(&b, v, 0);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* Deep equality of two values: same type, same bits (floats compared as stored). */
static bool value_eq(const struct qa_gguf_value *a, const struct qa_gguf_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case QA_GGUF_U8: case QA_GGUF_U16: case QA_GGUF_U32: case QA_GGUF_U64:
		return a->v.u == b->v.u;
	case QA_GGUF_I8: case QA_GGUF_I16: case QA_GGUF_I32: case QA_GGUF_I64:
		return a->v.i == b->v.i;
	case QA_GGUF_F32: {
		float x = (float)a->v.f, y = (float)b->v.f;
		return memcmp(&x, &y, sizeof x) == 0;
	}
	case QA_GGUF_F64:
		return memcmp(&a->v.f, &b->v.f, sizeof a->v.f) == 0;
	case QA_GGUF_BOOL:
		return a->v.b == b->v.b;
	case QA_GGUF_STRING:
		return a->v.str.len == b->v.str.len &&
		       (a->v.str.len == 0 || memcmp(a->v.str.ptr, b->v.str.ptr, (size_t)a->v.str.len) == 0);
	case QA_GGUF_ARRAY:
		if (a->v.arr.elem_type != b->v.arr.elem_type || a->v.arr.count != b->v.arr.count)
			return false;
		for (uint64_t i = 0; i < a->v.arr.count; i++) {
			struct qa_gguf_value x, y;
			if (!qa_gguf_array_get(a, i, &x) || !qa_gguf_array_get(b, i, &y) || !value_eq(&x, &y))
				return false;
		}
		return true;
	}
	return false;
}

const char *qa_reproduce_kv_kind_name(enum qa_reproduce_kv_kind k)
{
	switch (k) {
	case QA_RKV_MISSING: return "missing";
	case QA_RKV_EXTRA: return "extra";
	case QA_RKV_CHANGED: return "changed";
	case QA_RKV_MOVED: return "moved";
	}
	return "?";
}

void qa_reproduce_kv_free(struct qa_reproduce_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].expected);
		free(kv[i].actual);
	}
	free(kv);
}

/* ------------------------------------------------------------------ */
/* metadata audit                                                      */
/* ------------------------------------------------------------------ */

static bool kv_push(struct qa_reproduce_kv **kv, size_t *n, const char *key,
                    enum qa_reproduce_kv_kind kind, const struct qa_gguf_value *exp,
                    const struct qa_gguf_value *act, int64_t ei, int64_t ai, uint64_t aoff)
{
	struct qa_reproduce_kv *p = realloc(*kv, (*n + 1) * sizeof *p);
	if (!p)
		return false;
	*kv = p;
	struct qa_reproduce_kv *k = &p[*n];
	memset(k, 0, sizeof *k);
	k->key = escape(key);
	k->kind = kind;
	k->expected = exp ? qa_reproduce_value_text(exp) : NULL;
	k->actual = act ? qa_reproduce_value_text(act) : NULL;
	k->expected_index = ei;
	k->actual_index = ai;
	k->actual_offset = aoff;
	(*n)++;
	return k->key && (!exp || k->expected) && (!act || k->actual);
}

enum qa_err qa_reproduce_kv_audit(const struct qa_quantize_kv *expected, size_t n_expected,
                                  const struct qa_gguf *art, bool keys_only,
                                  struct qa_reproduce_kv **out, size_t *n_out,
                                  struct qa_diag *d)
{
	struct qa_reproduce_kv *kv = NULL;
	size_t n = 0;
	bool ok = true;
	size_t n_art = qa_gguf_n_kv(art);
	for (size_t i = 0; ok && i < n_expected; i++) {
		const struct qa_gguf_kv *a = qa_gguf_kv_find(art, expected[i].key);
		if (!a) {
			ok = kv_push(&kv, &n, expected[i].key, QA_RKV_MISSING, &expected[i].value, NULL,
			             (int64_t)i, -1, QA_NO_OFFSET);
			continue;
		}
		int64_t ai = -1;
		for (size_t j = 0; j < n_art; j++)
			if (qa_gguf_kv_at(art, j) == a)
				ai = (int64_t)j;
		if (!value_eq(&expected[i].value, &a->value)) {
			const struct qa_gguf_value *x = &expected[i].value, *y = &a->value;
			uint64_t item = UINT64_MAX;
			if (x->type == QA_GGUF_ARRAY && y->type == QA_GGUF_ARRAY &&
			    x->v.arr.elem_type == y->v.arr.elem_type && x->v.arr.count == y->v.arr.count)
				for (uint64_t j = 0; j < x->v.arr.count && item == UINT64_MAX; j++) {
					struct qa_gguf_value xj, yj;
					if (!qa_gguf_array_get(x, j, &xj) || !qa_gguf_array_get(y, j, &yj) ||
					    !value_eq(&xj, &yj))
						item = j;
				}
			if (item == UINT64_MAX) {
				ok = kv_push(&kv, &n, expected[i].key, QA_RKV_CHANGED, x, y, (int64_t)i, ai,
				             a->offset);
			} else {
				/* name the first differing item of equally long arrays */
				struct qa_gguf_value xi, yi;
				ok = qa_gguf_array_get(x, item, &xi) && qa_gguf_array_get(y, item, &yi) &&
				     kv_push(&kv, &n, expected[i].key, QA_RKV_CHANGED, &xi, &yi, (int64_t)i, ai,
				             a->offset);
				if (ok) {
					char *k = fmt("%s[%llu]", kv[n - 1].key, (unsigned long long)item);
					ok = k != NULL;
					if (k) {
						free(kv[n - 1].key);
						kv[n - 1].key = k;
					}
				}
			}
		}
		else if (!keys_only && ai != (int64_t)i)
			ok = kv_push(&kv, &n, expected[i].key, QA_RKV_MOVED, &expected[i].value,
			             &a->value, (int64_t)i, ai, a->offset);
	}
	for (size_t j = 0; ok && j < n_art; j++) {
		const struct qa_gguf_kv *a = qa_gguf_kv_at(art, j);
		bool found = false;
		for (size_t i = 0; !found && i < n_expected; i++)
			found = strcmp(expected[i].key, a->key) == 0;
		if (!found)
			ok = kv_push(&kv, &n, a->key, QA_RKV_EXTRA, NULL, &a->value, -1, (int64_t)j,
			             a->offset);
	}
	if (!ok) {
		qa_reproduce_kv_free(kv, n);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	*out = kv;
	*n_out = n;
	return QA_OK;
}

/* ------------------------------------------------------------------ */
/* option inference                                                    */
/* ------------------------------------------------------------------ */

#define MAX_INFERRED 256

struct infer {
	const struct qa_ref *ref;
	const struct qa_gguf *art;
	const struct qa_recipe *recipe;
	struct qa_recipe_overrides ov;                  /* user's, then inferred */
	struct qa_recipe_tensor_type tt[MAX_INFERRED];
	char *owned[MAX_INFERRED];                      /* inferred patterns */
	size_t n_owned;
	struct qa_plan_entry *plan;
	size_t n;
	bool has_imatrix;
};

/* The artifact's type for reference tensor i, or QA_TYPE_COUNT when it lacks it. */
static uint32_t art_type(const struct infer *in, size_t i)
{
	const struct qa_gguf_tensor *t = qa_gguf_tensor_find(in->art, qa_ref_tensor_at(in->ref, i)->name);
	return t ? t->type : QA_TYPE_COUNT;
}

/* Plan under ov and count the tensors whose type differs from the artifact's
 * (SIZE_MAX when the plan fails). */
static size_t deviations(struct infer *in, const struct qa_recipe_overrides *ov)
{
	if (qa_quantize_plan_types_with(in->ref, in->recipe, 0, in->has_imatrix, ov, in->plan, NULL))
		return SIZE_MAX;
	size_t n = 0;
	for (size_t i = 0; i < in->n; i++) {
		uint32_t a = art_type(in, i);
		if (a != QA_TYPE_COUNT && a != in->plan[i].type)
			n++;
	}
	return n;
}

static enum qa_err add_inferred(struct qa_reproduce_result *res, char *option, char *reason,
                                struct qa_diag *d)
{
	struct qa_reproduce_inferred *p = realloc(res->inferred, (res->n_inferred + 1) * sizeof *p);
	if (!p || !option || !reason) {
		free(option);
		free(reason);
		if (p)
			res->inferred = p;
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	res->inferred = p;
	p[res->n_inferred].option = option;
	p[res->n_inferred].reason = reason;
	res->n_inferred++;
	return QA_OK;
}

/* A regex that matches exactly name: anchored, special characters as
 * one-character classes ("[.]"), which need no backslashes on a shell line. */
static char *exact_pattern(const char *name)
{
	size_t n = strlen(name);
	char *p = malloc(4 * n + 3);
	if (!p)
		return NULL;
	size_t k = 0;
	p[k++] = '^';
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '\\' || name[i] == '^' || name[i] == ']') {
			p[k++] = '\\'; /* ERE has no class for these that reads better */
			p[k++] = name[i];
		} else if (strchr(".[()*+?{}|$", name[i])) {
			p[k++] = '[';
			p[k++] = name[i];
			p[k++] = ']';
		} else {
			p[k++] = name[i];
		}
	}
	p[k++] = '$';
	p[k] = '\0';
	return p;
}

/* Candidates tried in each round of the greedy search. */
enum cand_kind { C_PURE, C_OUTPUT, C_LEAVE, C_TOKEN, C_CLASS, C_EXACT };

struct cand {
	enum cand_kind kind;
	uint32_t type;
	char pattern[160];
	char tensor[128];
};

static void apply_cand(struct qa_recipe_overrides *ov, struct qa_recipe_tensor_type *tt,
                       const struct cand *c)
{
	switch (c->kind) {
	case C_PURE: ov->pure = true; break;
	case C_OUTPUT: ov->output_type = c->type; break;
	case C_LEAVE: ov->leave_output = true; break;
	case C_TOKEN: ov->token_embd_type = c->type; break;
	case C_CLASS:
	case C_EXACT:
		tt[ov->n_tensor_types].pattern = c->pattern;
		tt[ov->n_tensor_types].type = c->type;
		ov->n_tensor_types++;
		break;
	}
}

/*
 * Greedy inference: each round tries every option that could explain a
 * deviating tensor (--pure; the output, token-embedding and leave-output
 * options; a --tensor-type for the tensor's class, then for the tensor
 * alone) and keeps the one that leaves the fewest deviations.  Manual types
 * stop llama.cpp's counters, so every candidate is judged by replanning.
 */
static enum qa_err infer_options(struct infer *in, struct qa_reproduce_result *res,
                                 struct qa_diag *d)
{
	size_t best = deviations(in, &in->ov);
	enum qa_err e = QA_OK;
	struct cand *cands = calloc(in->n * 2 + 8, sizeof *cands);
	if (!cands)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (int round = 0; !e && best != 0 && best != SIZE_MAX && round < 64; round++) {
		size_t nc = 0;
		if (deviations(in, &in->ov) == SIZE_MAX)
			break;
		if (!in->ov.pure && in->recipe)
			cands[nc++] = (struct cand){ .kind = C_PURE };
		for (size_t i = 0; i < in->n; i++) {
			uint32_t a = art_type(in, i);
			const struct qa_ref_tensor *t = qa_ref_tensor_at(in->ref, i);
			if (a == QA_TYPE_COUNT || a == in->plan[i].type)
				continue;
			const struct qa_type_info *ti = qa_type_get(a);
			if (strcmp(t->name, "output.weight") == 0) {
				if (a == t->src_type && !in->ov.leave_output)
					cands[nc++] = (struct cand){ .kind = C_LEAVE };
				if (ti && ti->quantizable && in->ov.output_type == QA_TYPE_COUNT)
					cands[nc++] = (struct cand){ .kind = C_OUTPUT, .type = a };
			}
			if (strcmp(t->name, "token_embd.weight") == 0 && ti && ti->quantizable &&
			    in->ov.token_embd_type == QA_TYPE_COUNT)
				cands[nc++] = (struct cand){ .kind = C_TOKEN, .type = a };
			if (!ti || !ti->quantizable || in->ov.n_tensor_types + 1 >= MAX_INFERRED)
				continue;
			char cls[96];
			if (qa_names_class(t->name, cls, sizeof cls) && strcmp(cls, t->name) != 0) {
				struct cand c = { .kind = C_CLASS, .type = a };
				snprintf(c.pattern, sizeof c.pattern, "%s", cls);
				cands[nc++] = c;
			}
			struct cand c = { .kind = C_EXACT, .type = a };
			char *p = exact_pattern(t->name);
			if (!p || strlen(p) >= sizeof c.pattern) {
				free(p);
				continue;
			}
			memcpy(c.pattern, p, strlen(p) + 1);
			snprintf(c.tensor, sizeof c.tensor, "%s", t->name);
			free(p);
			cands[nc++] = c;
		}
		size_t pick = SIZE_MAX, pick_dev = best;
		for (size_t k = 0; k < nc; k++) {
			struct qa_recipe_overrides ov = in->ov;
			apply_cand(&ov, in->tt, &cands[k]);
			size_t dv = deviations(in, &ov);
			if (dv < pick_dev) {
				pick_dev = dv;
				pick = k;
			}
		}
		if (pick == SIZE_MAX)
			break;
		struct cand *c = &cands[pick];
		char *option = NULL, *reason = NULL;
		if (c->kind == C_CLASS || c->kind == C_EXACT) {
			char *own = malloc(strlen(c->pattern) + 1);
			if (!own) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				break;
			}
			memcpy(own, c->pattern, strlen(c->pattern) + 1);
			in->owned[in->n_owned++] = own;
			in->tt[in->ov.n_tensor_types].pattern = own;
			in->tt[in->ov.n_tensor_types].type = c->type;
			in->ov.n_tensor_types++;
			char *ep = escape(own);
			option = fmt("--tensor-type %s=%s", ep ? ep : "?", qa_type_name(c->type));
			reason = c->kind == C_CLASS
			         ? fmt("%s tensors are %s where the recipe's rules give other types",
			               ep ? ep : "?", qa_type_name(c->type))
			         : fmt("only this tensor's type is left to explain");
			free(ep);
		} else {
			apply_cand(&in->ov, in->tt, c);
			switch (c->kind) {
			case C_PURE:
				option = fmt("--pure");
				reason = fmt("the tensors have %s's default type %s without its per-tensor rules",
				             qa_recipe_name(in->recipe),
				             qa_type_name(qa_recipe_default_type(in->recipe)));
				break;
			case C_OUTPUT:
				option = fmt("--output-tensor-type %s", qa_type_name(c->type));
				reason = fmt("output.weight is %s", qa_type_name(c->type));
				break;
			case C_LEAVE:
				option = fmt("--leave-output-tensor");
				reason = fmt("output.weight keeps the reference's type");
				break;
			case C_TOKEN:
				option = fmt("--token-embedding-type %s", qa_type_name(c->type));
				reason = fmt("token_embd.weight is %s", qa_type_name(c->type));
				break;
			default:
				break;
			}
		}
		if ((e = add_inferred(res, option, reason, d)))
			break;
		best = pick_dev;
	}
	free(cands);
	return e;
}

/*
 * Tail metadata the artifact carries after general.file_type that an
 * --override-kv explains: a u32, f32, bool or string (at most 127 bytes)
 * that differs from or is absent in the plan.  Keys in the middle of the
 * file cannot come from an override (llama-quantize appends them).
 */
static enum qa_err infer_kv(const struct qa_gguf *art, const struct qa_quantize_kv *plan,
                            size_t n_plan, struct qa_kv_override **kvo, size_t *n_kvo,
                            struct qa_reproduce_result *res, struct qa_diag *d)
{
	size_t n_art = qa_gguf_n_kv(art), ft = SIZE_MAX;
	for (size_t j = 0; j < n_art; j++)
		if (strcmp(qa_gguf_kv_at(art, j)->key, "general.file_type") == 0)
			ft = j;
	if (ft == SIZE_MAX)
		return QA_OK;
	for (size_t j = ft + 1; j < n_art; j++) {
		const struct qa_gguf_kv *a = qa_gguf_kv_at(art, j);
		const struct qa_gguf_value *v = &a->value;
		bool same = false;
		for (size_t i = 0; i < n_plan && !same; i++)
			same = i == j && strcmp(plan[i].key, a->key) == 0 && value_eq(&plan[i].value, v);
		if (same || strlen(a->key) >= 128 || strncmp(a->key, "quantize.imatrix.", 17) == 0)
			continue;
		struct qa_kv_override o;
		memset(&o, 0, sizeof o);
		memcpy(o.key, a->key, strlen(a->key) + 1);
		char *val = NULL;
		if (v->type == QA_GGUF_U32) {
			o.tag = QA_KVO_INT;
			o.i = (int64_t)v->v.u;
			val = fmt("int:%llu", (unsigned long long)v->v.u);
		} else if (v->type == QA_GGUF_F32) {
			o.tag = QA_KVO_FLOAT;
			o.f = v->v.f;
			val = fmt("float:%.9g", v->v.f);
		} else if (v->type == QA_GGUF_BOOL) {
			o.tag = QA_KVO_BOOL;
			o.b = v->v.b;
			val = fmt("bool:%s", v->v.b ? "true" : "false");
		} else if (v->type == QA_GGUF_STRING && v->v.str.len <= 127 &&
		           !memchr(v->v.str.ptr, 0, (size_t)v->v.str.len)) {
			o.tag = QA_KVO_STR;
			memcpy(o.str, v->v.str.ptr, (size_t)v->v.str.len);
			char *e = escape_n(v->v.str.ptr, (size_t)v->v.str.len);
			val = e ? fmt("str:%s", e) : NULL;
			free(e);
		} else {
			continue;
		}
		struct qa_kv_override *p = realloc(*kvo, (*n_kvo + 1) * sizeof *p);
		if (!p) {
			free(val);
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		}
		*kvo = p;
		p[(*n_kvo)++] = o;
		char *ek = escape(a->key);
		enum qa_err e = add_inferred(res, ek && val ? fmt("--override-kv %s=%s", ek, val) : NULL,
		                             fmt("the artifact appends this key after general.file_type"), d);
		free(ek);
		free(val);
		if (e)
			return e;
	}
	return QA_OK;
}

/* ------------------------------------------------------------------ */
/* the stream                                                          */
/* ------------------------------------------------------------------ */

struct stream {
	struct qa_sha256_stream *exp, *art;
	struct qa_source *src;      /* the artifact, NULL when not read */
	uint8_t *buf;
	size_t cap;
	bool found;
	uint64_t first;             /* first differing offset */
	uint64_t read;              /* artifact bytes read */
	uint64_t total;             /* expected bytes seen */
};

static enum qa_err stream_tap(void *ctx, uint64_t off, const void *buf, size_t len,
                              struct qa_diag *d)
{
	struct stream *s = ctx;
	qa_sha256_stream_update(s->exp, buf, len);
	s->total = off + len;
	if (!s->src)
		return QA_OK;
	uint64_t size = qa_source_size(s->src);
	if (off >= size) {
		if (!s->found) {
			s->found = true;
			s->first = size;
		}
		return QA_OK;
	}
	size_t k = size - off < len ? (size_t)(size - off) : len;
	if (k > s->cap) {
		uint8_t *p = realloc(s->buf, k);
		if (!p)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		s->buf = p;
		s->cap = k;
	}
	enum qa_err e = qa_source_read(s->src, off, k, s->buf, "artifact", d);
	if (e)
		return e;
	s->read += k;
	qa_sha256_stream_update(s->art, s->buf, k);
	if (!s->found) {
		const uint8_t *a = s->buf, *b = buf;
		for (size_t i = 0; i < k; i++)
			if (a[i] != b[i]) {
				s->found = true;
				s->first = off + i;
				break;
			}
		if (!s->found && k < len) {
			s->found = true;
			s->first = size;
		}
	}
	return QA_OK;
}

struct locate_ctx {
	struct qa_reproduce_result *res;
	struct stream *st;
	bool done;
	bool oom;
};

/* Called with the committed writer: name the first difference's region. */
static void on_located(void *ctx, const struct qa_gguf_writer *w)
{
	struct locate_ctx *lc = ctx;
	struct stream *st = lc->st;
	struct qa_gguf_region rg;
	if (!st->src)
		return;
	if (!st->found && st->read < qa_source_size(st->src)) {
		/* the would-be file is a prefix of the artifact */
		st->found = true;
		st->first = st->total;
	}
	if (!st->found || !qa_gguf_writer_locate(w, st->first, &rg))
		return;
	lc->done = true;
	struct qa_reproduce_result *r = lc->res;
	snprintf(r->region_kind, sizeof r->region_kind, "%s", qa_gguf_region_kind_name(rg.kind));
	r->region_name = escape(rg.name);
	r->region_index = rg.index == SIZE_MAX ? -1 : (int64_t)rg.index;
	r->region_start = rg.start;
	r->region_end = rg.end;
	if (!r->region_name)
		lc->oom = true;
}

/* The same offset in the artifact's own layout. */
static char *artifact_region(const struct qa_gguf *g, uint64_t off, char kind[16])
{
	uint64_t data = qa_gguf_data_offset(g);
	const char *name = NULL;
	snprintf(kind, 16, "header");
	if (off < 24)
		return escape("header");
	if (off < data) {
		size_t nt = qa_gguf_n_tensors(g), nk = qa_gguf_n_kv(g);
		if (nt) {
			/* the last tensor info: name, n_dims, dims, type, offset */
			const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, nt - 1);
			uint64_t end = t->info_offset + 8 + strlen(t->name) + 4 + 8ull * t->n_dims + 4 + 8;
			if (off >= end) {
				snprintf(kind, 16, "padding");
				return escape("header padding");
			}
		}
		for (size_t i = nt; i-- > 0 && !name;)
			if (off >= qa_gguf_tensor_at(g, i)->info_offset) {
				snprintf(kind, 16, "tensor-info");
				name = qa_gguf_tensor_at(g, i)->name;
			}
		for (size_t i = nk; i-- > 0 && !name;)
			if (off >= qa_gguf_kv_at(g, i)->offset) {
				snprintf(kind, 16, "kv");
				name = qa_gguf_kv_at(g, i)->key;
			}
		return escape(name ? name : "header");
	}
	for (size_t i = 0; i < qa_gguf_n_tensors(g); i++) {
		const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
		if (off >= data + t->offset && off < data + t->offset + t->nbytes) {
			snprintf(kind, 16, "tensor-data");
			return escape(t->name);
		}
	}
	snprintf(kind, 16, off >= qa_source_size(qa_gguf_source(g)) ? "beyond-end" : "padding");
	return escape(off >= qa_source_size(qa_gguf_source(g)) ? "past the end" : "padding");
}

/* Whether path names the same file as an existing input. */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static char *join_options(const struct qa_recipe_overrides *ov, const struct qa_kv_override *kvo,
                          size_t n_kvo)
{
	struct qa_sb b = { 0 };
	char tmp[320];
	qa_sb_puts(&b, "");
	if (ov->pure)
		qa_sb_puts(&b, " --pure");
	if (ov->leave_output)
		qa_sb_puts(&b, " --leave-output-tensor");
	if (ov->output_type != QA_TYPE_COUNT) {
		snprintf(tmp, sizeof tmp, " --output-tensor-type %s", qa_type_name(ov->output_type));
		qa_sb_puts(&b, tmp);
	}
	if (ov->token_embd_type != QA_TYPE_COUNT) {
		snprintf(tmp, sizeof tmp, " --token-embedding-type %s", qa_type_name(ov->token_embd_type));
		qa_sb_puts(&b, tmp);
	}
	for (size_t i = 0; i < ov->n_tensor_types; i++) {
		char *w = fmt("%s=%s", ov->tensor_types[i].pattern, qa_type_name(ov->tensor_types[i].type));
		qa_sb_puts(&b, " --tensor-type ");
		if (w)
			put_word(&b, w);
		else
			b.oom = true;
		free(w);
	}
	for (size_t i = 0; i < n_kvo; i++) {
		struct qa_gguf_value v;
		qa_kv_override_value(&kvo[i], &v);
		char *w = NULL;
		switch (kvo[i].tag) {
		case QA_KVO_INT: w = fmt("%s=int:%llu", kvo[i].key, (unsigned long long)v.v.u); break;
		case QA_KVO_FLOAT: w = fmt("%s=float:%.9g", kvo[i].key, v.v.f); break;
		case QA_KVO_BOOL: w = fmt("%s=bool:%s", kvo[i].key, v.v.b ? "true" : "false"); break;
		case QA_KVO_STR: w = fmt("%s=str:%s", kvo[i].key, kvo[i].str); break;
		}
		qa_sb_puts(&b, " --override-kv ");
		if (w)
			put_word(&b, w);
		else
			b.oom = true;
		free(w);
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (b.p[0] == ' ')
		memmove(b.p, b.p + 1, strlen(b.p));
	return b.p;
}

/* ------------------------------------------------------------------ */
/* the run                                                             */
/* ------------------------------------------------------------------ */

void qa_reproduce_free(struct qa_reproduce_result *r)
{
	if (!r)
		return;
	free(r->reference_path);
	free(r->artifact_path);
	free(r->output_path);
	free(r->options);
	for (size_t i = 0; i < r->n_inferred; i++) {
		free(r->inferred[i].option);
		free(r->inferred[i].reason);
	}
	free(r->inferred);
	for (size_t i = 0; i < r->n_type_devs; i++)
		free(r->type_devs[i].name);
	free(r->type_devs);
	free(r->imatrix_declared);
	free(r->imatrix_path);
	free(r->artifact_error);
	free(r->region_name);
	free(r->artifact_region_name);
	qa_reproduce_kv_free(r->kv, r->n_kv);
	qa_diff_free(r->explain);
	free(r);
}

/* The plan that made a stream, to tell whether a second stream would repeat it. */
static char *plan_fingerprint(const struct qa_recipe *rc, const char *options,
                              const char *imatrix_file, const char *imatrix_path)
{
	return fmt("%s\n%s\n%s\n%s", qa_recipe_name(rc), options ? options : "",
	           imatrix_file ? imatrix_file : "", imatrix_path ? imatrix_path : "");
}

/* Count a quantize pass that streamed through st and take the digest and
 * size of the would-be file it wrote into res. */
static enum qa_err pass_digest(struct stream *st, struct qa_reproduce_result *res, struct qa_diag *d)
{
	res->passes++;
	if (qa_sha256_stream_final(st->exp, res->expected_sha256))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
	res->expected_size = st->total;
	return QA_OK;
}

/*
 * The first try when the artifact's digest is known: the would-be file from
 * the reference and the options given alone, under recipe rc, with the
 * matrix recorded as given; the artifact is not opened.  On equal digests
 * res is complete and ->reproduced; otherwise *fp receives the plan's
 * fingerprint and res the stream's digest and size.  QA_ERR_USAGE from the
 * plan (a type that needs a matrix, say) means only that this try is not
 * possible: *fp stays NULL.  *bad names the file at fault on error.
 */
static enum qa_err cheap_pass(struct qa_ref *ref, const char *ref_path, const struct qa_recipe *rc,
                              const struct qa_reproduce_opts *opts,
                              struct qa_reproduce_result *res, char **fp, const char **bad,
                              struct qa_diag *d)
{
	struct qa_recipe_overrides ov;
	struct qa_imatrix *matrix = NULL;
	struct stream st;
	char *options = NULL;
	enum qa_err e = QA_OK;
	*fp = NULL;
	memset(&st, 0, sizeof st);
	qa_recipe_overrides_init(&ov);
	if (opts->overrides)
		ov = *opts->overrides;
	*bad = opts->imatrix_path;
	if (opts->imatrix_path && (e = qa_imatrix_load(&matrix, opts->imatrix_path, d)))
		return e;
	*bad = ref_path;
	struct qa_quantize_opts qo;
	memset(&qo, 0, sizeof qo);
	qo.recipe = rc;
	qo.overrides = &ov;
	qo.layout = QA_LAYOUT_OUT_IN;
	qo.n_threads = opts->n_threads;
	qo.imatrix = matrix;
	qo.imatrix_file = opts->imatrix_path;
	qo.kv_overrides = opts->kv_overrides;
	qo.n_kv_overrides = opts->n_kv_overrides;
	struct qa_quantize_item *items = NULL;
	uint32_t ft;
	if ((e = qa_quantize_plan(ref, &qo, &items, &ft, d))) {
		if (e == QA_ERR_USAGE) {
			e = QA_OK;
			qa_diag_clear(d);
		}
		goto done;
	}
	free(items);
	if (!(st.exp = qa_sha256_stream_init()) ||
	    !(options = join_options(&ov, opts->kv_overrides, opts->n_kv_overrides))) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	qo.tap = stream_tap;
	qo.tap_ctx = &st;
	if ((e = qa_quantize_model_located(ref, &qo, opts->out_path, NULL, NULL, d)))
		goto done;
	if ((e = pass_digest(&st, res, d)))
		goto done;
	if (!(*fp = plan_fingerprint(rc, options, opts->imatrix_path, opts->imatrix_path))) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	if (memcmp(res->expected_sha256, opts->artifact_digest, QA_SHA256_LEN) != 0 ||
	    (opts->artifact_size_known && opts->artifact_size != st.total))
		goto done;
	/* equal digests: the artifact is this file, header and all */
	res->reproduced = true;
	res->recipe_name = qa_recipe_name(rc);
	res->file_type = qa_recipe_file_type(rc);
	res->pure = ov.pure;
	res->options = options;
	options = NULL;
	memcpy(res->artifact_sha256, opts->artifact_digest, QA_SHA256_LEN);
	res->artifact_size = st.total;
	if (opts->imatrix_path && (!(res->imatrix_path = escape(opts->imatrix_path)) ||
	                           !(res->imatrix_declared = escape(opts->imatrix_path))))
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
done:
	free(options);
	qa_sha256_stream_free(st.exp);
	qa_imatrix_free(matrix);
	return e;
}

enum qa_err qa_reproduce_run(const char *ref_path, const char *art_path,
                             const struct qa_reproduce_opts *opts,
                             struct qa_reproduce_result **out, const char **culprit,
                             struct qa_diag *d)
{
	struct qa_reproduce_opts defaults;
	struct qa_reproduce_result *res = calloc(1, sizeof *res);
	struct qa_ref *ref = NULL;
	struct qa_source *src = NULL;
	struct qa_gguf *art = NULL;
	struct infer in;
	struct qa_kv_override *kvo = NULL;
	size_t n_kvo = 0;
	struct qa_quantize_kv *plan_kv = NULL;
	size_t n_plan_kv = 0;
	struct stream st;
	struct qa_imatrix *matrix = NULL;
	enum qa_err e = QA_OK;
	const char *bad = NULL;
	char *cheap_fp = NULL;

	memset(&in, 0, sizeof in);
	memset(&st, 0, sizeof st);
	if (!opts) {
		memset(&defaults, 0, sizeof defaults);
		opts = &defaults;
	}
	if (culprit)
		*culprit = NULL;
	if (!res)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	res->region_index = -1;
	res->reference_path = escape(ref_path);
	res->artifact_path = escape(art_path);
	res->output_path = opts->out_path ? escape(opts->out_path) : NULL;
	if (opts->out_path && (same_file(opts->out_path, ref_path) || same_file(opts->out_path, art_path))) {
		e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                "-o %s would overwrite an input", res->output_path ? res->output_path : "");
		goto done;
	}
	bad = ref_path;
	if ((e = qa_ref_open(&ref, ref_path, d)))
		goto done;
	if (qa_ref_format(ref) != QA_FORMAT_GGUF) {
		e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                "reproduce needs the GGUF reference llama-quantize read (a BF16/F16/F32 "
		                "GGUF); for a safetensors checkpoint use diff");
		goto done;
	}
	res->artifact_digest_given = opts->artifact_digest != NULL;
	res->artifact_digest_source = !opts->artifact_digest ? "read"
	                              : opts->artifact_digest_source ? opts->artifact_digest_source
	                                                             : "given";
	if (opts->artifact_digest) {
		/* the recipe without the header: given, or announced by the file name */
		const struct qa_recipe *rc = opts->recipe ? qa_recipe_by_name(opts->recipe)
		                                          : qa_recipe_from_file_name(art_path);
		if (rc) {
			if ((e = cheap_pass(ref, ref_path, rc, opts, res, &cheap_fp, &bad, d)))
				goto done;
			if (res->reproduced) {
				res->recipe_source = opts->recipe ? "given" : "file name";
				goto done;
			}
		}
	}
	bad = art_path;
	if ((e = qa_source_open_file(&src, art_path, d)))
		goto done;
	res->header_read = true;
	if ((e = qa_gguf_open(&art, src, d))) {
		/* an artifact whose header does not parse can still be compared
		 * byte for byte when the recipe is given */
		if (e != QA_ERR_FORMAT || !opts->recipe)
			goto done;
		res->artifact_error = fmt("offset %llu: %s", (unsigned long long)d->offset, d->msg);
		art = NULL;
		e = QA_OK;
		qa_diag_clear(d);
	}
	bad = NULL;
	res->artifact_size = qa_source_size(src);

	/* the recipe */
	uint64_t ft = 0;
	bool has_ft = art && qa_gguf_get_u64(art, "general.file_type", &ft);
	if (opts->recipe) {
		in.recipe = qa_recipe_by_name(opts->recipe);
		if (!in.recipe) {
			e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "unknown recipe '%s'", opts->recipe);
			goto done;
		}
	} else if (!has_ft || ft > UINT32_MAX || !(in.recipe = qa_recipe_by_file_type((uint32_t)ft))) {
		e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET,
		                has_ft ? "general.file_type %llu is not a recipe this build reproduces (give --recipe)"
		                       : "the artifact has no general.file_type (give --recipe)",
		                (unsigned long long)ft);
		bad = art_path;
		goto done;
	}
	res->recipe_name = qa_recipe_name(in.recipe);
	res->file_type = qa_recipe_file_type(in.recipe);
	res->recipe_source = opts->recipe ? "given" : "general.file_type";

	/* the importance matrix the artifact declares: --imatrix, else the
	 * declared name beside the artifact, then in the current directory */
	const char *im = art ? qa_gguf_get_str(art, "quantize.imatrix.file") : NULL;
	if (im || opts->imatrix_path) {
		res->imatrix_declared = im ? escape(im) : NULL;
		char *path = NULL;
		if (opts->imatrix_path) {
			path = fmt("%s", opts->imatrix_path);
		} else {
			/* an absolute name as it is, then (or a relative one) beside the
			 * artifact: the same folder, or the same remote repository folder
			 * (publishers upload the matrix with the quants), then in the
			 * current directory; an absolute name there by its base name */
			const char *slash = strrchr(art_path, '/');
			const char *base = strrchr(im, '/') ? strrchr(im, '/') + 1 : im;
			const char *rel = im[0] == '/' ? base : im;
			struct stat sb;
			path = fmt("%s", im);
			if (path && (im[0] != '/' || stat(path, &sb) != 0)) {
				free(path);
				path = slash ? fmt("%.*s/%s", (int)(slash - art_path), art_path, rel) : fmt("%s", rel);
				if (path && (qa_remote_is_url(path) ? !qa_remote_exists(path) : stat(path, &sb) != 0)) {
					free(path);
					path = fmt("%s", rel);
				}
			}
		}
		if (!path) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
		struct stat sb;
		if (!opts->imatrix_path && !qa_remote_is_url(path) && stat(path, &sb) != 0) {
			e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                "the artifact was quantized with importance matrix \"%s\", found neither "
			                "beside it nor in the current directory (give --imatrix)",
			                res->imatrix_declared ? res->imatrix_declared : "");
			free(path);
			goto done;
		}
		res->imatrix_path = escape(path);
		e = qa_imatrix_load(&matrix, path, d);
		free(path);
		if (e) {
			bad = opts->imatrix_path ? opts->imatrix_path : art_path;
			goto done;
		}
	}

	/* the options: the user's, then what the artifact's types call for */
	in.ref = ref;
	in.art = art;
	in.has_imatrix = matrix != NULL;
	in.n = qa_ref_n_tensors(ref);
	in.plan = calloc(in.n ? in.n : 1, sizeof *in.plan);
	if (!in.plan) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	qa_recipe_overrides_init(&in.ov);
	if (opts->overrides) {
		in.ov = *opts->overrides;
		if (in.ov.n_tensor_types >= MAX_INFERRED) {
			e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "too many --tensor-type options");
			goto done;
		}
		for (size_t i = 0; i < in.ov.n_tensor_types; i++)
			in.tt[i] = opts->overrides->tensor_types[i];
	}
	in.ov.tensor_types = in.tt;
	if ((e = qa_quantize_plan_types_with(ref, in.recipe, 0, in.has_imatrix, &in.ov, in.plan, d)))
		goto done;
	if (art && !opts->no_infer && (e = infer_options(&in, res, d)))
		goto done;
	res->pure = in.ov.pure;
	if (art && deviations(&in, &in.ov) != SIZE_MAX) {
		for (size_t i = 0; i < in.n; i++) {
			uint32_t a = art_type(&in, i);
			if (a == QA_TYPE_COUNT || a == in.plan[i].type)
				continue;
			struct qa_reproduce_type_dev *p = realloc(res->type_devs, (res->n_type_devs + 1) * sizeof *p);
			if (!p) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				goto done;
			}
			res->type_devs = p;
			p[res->n_type_devs].name = escape(qa_ref_tensor_at(ref, i)->name);
			p[res->n_type_devs].artifact_type = a;
			p[res->n_type_devs].planned_type = in.plan[i].type;
			res->n_type_devs++;
		}
	}

	struct qa_quantize_opts qo;
	memset(&qo, 0, sizeof qo);
	qo.recipe = in.recipe;
	qo.overrides = &in.ov;
	qo.layout = QA_LAYOUT_OUT_IN;
	qo.n_threads = opts->n_threads;
	qo.imatrix = matrix;
	/* recorded as the artifact declares it (or as given, without a declaration) */
	qo.imatrix_file = im ? im : opts->imatrix_path;
	if (opts->n_kv_overrides) {
		kvo = calloc(opts->n_kv_overrides, sizeof *kvo);
		if (!kvo) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
		memcpy(kvo, opts->kv_overrides, opts->n_kv_overrides * sizeof *kvo);
		n_kvo = opts->n_kv_overrides;
	}
	qo.kv_overrides = kvo;
	qo.n_kv_overrides = n_kvo;
	if ((e = qa_quantize_kv_plan(ref, &qo, res->file_type, &plan_kv, &n_plan_kv, d)))
		goto done;
	if (art && !opts->no_infer) {
		if ((e = infer_kv(art, plan_kv, n_plan_kv, &kvo, &n_kvo, res, d)))
			goto done;
		qo.kv_overrides = kvo;
		qo.n_kv_overrides = n_kvo;
		free(plan_kv);
		plan_kv = NULL;
		if ((e = qa_quantize_kv_plan(ref, &qo, res->file_type, &plan_kv, &n_plan_kv, d)))
			goto done;
	}
	if (!(res->options = join_options(&in.ov, kvo, n_kvo))) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	if (art && (e = qa_reproduce_kv_audit(plan_kv, n_plan_kv, art, false, &res->kv, &res->n_kv, d)))
		goto done;

	/* the would-be file, streamed */
	st.exp = qa_sha256_stream_init();
	st.art = qa_sha256_stream_init();
	if (!st.exp || !st.art) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	st.src = opts->artifact_digest ? NULL : src;
	qo.tap = stream_tap;
	qo.tap_ctx = &st;
	struct locate_ctx lc = { res, &st, false, false };
	char *fp = cheap_fp ? plan_fingerprint(in.recipe, res->options, qo.imatrix_file, opts->imatrix_path)
	                    : NULL;
	if (cheap_fp && !fp) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	bool again = !fp || strcmp(fp, cheap_fp) != 0;
	free(fp);
	if (again) {
		/* (with the same plan the first stream's digest and -o file stand) */
		if ((e = qa_quantize_model_located(ref, &qo, opts->out_path, on_located, &lc, d))) {
			bad = ref_path;
			goto done;
		}
		if ((e = pass_digest(&st, res, d)))
			goto done;
	} else {
		st.total = res->expected_size;
	}
	if (st.src) {
		/* hash whatever the artifact has beyond the would-be file */
		uint64_t size = qa_source_size(src);
		for (uint64_t pos = st.total; !e && pos < size;) {
			size_t k = size - pos < (1u << 20) ? (size_t)(size - pos) : (1u << 20);
			if (k > st.cap) {
				uint8_t *p = realloc(st.buf, k);
				if (!p) {
					e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
					break;
				}
				st.buf = p;
				st.cap = k;
			}
			if (!(e = qa_source_read(src, pos, k, st.buf, "artifact", d)))
				qa_sha256_stream_update(st.art, st.buf, k);
			pos += k;
			st.read += k;
		}
		if (e) {
			bad = art_path;
			goto done;
		}
		if (qa_sha256_stream_final(st.art, res->artifact_sha256)) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
			goto done;
		}
	} else {
		memcpy(res->artifact_sha256, opts->artifact_digest, QA_SHA256_LEN);
	}
	res->reproduced = memcmp(res->expected_sha256, res->artifact_sha256, QA_SHA256_LEN) == 0;

	if (!res->reproduced && !st.src) {
		/* the digest was given and differs: stream again, reading the
		 * artifact, to locate the difference */
		uint64_t total = st.total;
		qa_sha256_stream_free(st.exp);
		qa_sha256_stream_free(st.art);
		memset(&st, 0, sizeof st);
		st.src = src;
		st.exp = qa_sha256_stream_init();
		st.art = qa_sha256_stream_init();
		if (!st.exp || !st.art) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
		if ((e = qa_quantize_model_located(ref, &qo, NULL, on_located, &lc, d)))
			goto done;
		res->passes++;
		(void)total;
	}
	res->artifact_bytes_read = st.read;
	if (lc.oom) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	if (!res->reproduced && lc.done) {
		res->located = true;
		res->first_difference = st.first;
		if (art) {
			res->artifact_region_name = artifact_region(art, st.first, res->artifact_region_kind);
		} else {
			snprintf(res->artifact_region_kind, sizeof res->artifact_region_kind, "unparsed");
			res->artifact_region_name = escape("the artifact's header does not parse");
		}
	}
	if (!res->reproduced && !opts->no_explain && art) {
		const char *who = NULL;
		struct qa_diff_opts dopts = { opts->n_threads, matrix, opts->imatrix_path, NULL, 0 };
		e = qa_diff_run(ref_path, art_path, &dopts, &res->explain, &who, d);
		if (e) {
			bad = who;
			goto done;
		}
	}
done:
	free(cheap_fp);
	if (e && culprit)
		*culprit = bad;
	if (!e)
		*out = res;
	else
		qa_reproduce_free(res);
	for (size_t i = 0; i < in.n_owned; i++)
		free(in.owned[i]);
	free(in.plan);
	free(kvo);
	free(plan_kv);
	free(st.buf);
	qa_sha256_stream_free(st.exp);
	qa_sha256_stream_free(st.art);
	qa_gguf_close(art);
	qa_source_close(src);
	qa_ref_close(ref);
	qa_imatrix_free(matrix);
	return e;
}

/* ------------------------------------------------------------------ */
/* diff's metadata audit                                               */
/* ------------------------------------------------------------------ */

/* config.json beside a file, or inside a directory. */
static char *config_path(const char *ref_path)
{
	struct stat sb;
	if (stat(ref_path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return fmt("%s/config.json", ref_path);
	const char *slash = strrchr(ref_path, '/');
	if (!slash)
		return fmt("config.json");
	return fmt("%.*s/config.json", (int)(slash - ref_path), ref_path);
}

struct hp {
	const char *suffix;   /* after "ARCH." */
	bool has;
	bool is_float;
	uint64_t u;
	double f;
};

static enum qa_err hp_check(const struct qa_gguf *art, const char *arch, const struct hp *h,
                            struct qa_reproduce_kv **kv, size_t *n, struct qa_diag *d)
{
	if (!h->has)
		return QA_OK;
	char key[192];
	snprintf(key, sizeof key, "%s.%s", arch, h->suffix);
	const struct qa_gguf_kv *a = qa_gguf_kv_find(art, key);
	if (!a)
		return QA_OK;
	struct qa_gguf_value want;
	memset(&want, 0, sizeof want);
	bool same;
	if (h->is_float) {
		want.type = QA_GGUF_F32;
		want.v.f = (double)(float)h->f;
		double got = a->value.type == QA_GGUF_F32 || a->value.type == QA_GGUF_F64 ? a->value.v.f : -1;
		same = (float)got == (float)h->f;
	} else {
		want.type = QA_GGUF_U32;
		want.v.u = h->u;
		uint64_t got;
		same = qa_gguf_get_u64(art, key, &got) && got == h->u;
	}
	if (same)
		return QA_OK;
	if (!kv_push(kv, n, key, QA_RKV_CHANGED, &want, &a->value, -1, -1, a->offset))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	(*kv)[*n - 1].finding = true;
	return QA_OK;
}

static enum qa_err hyperparameters(const struct qa_model_config *c, const struct qa_gguf *art,
                                   struct qa_reproduce_kv **kv, size_t *n, struct qa_diag *d)
{
	const char *arch = qa_gguf_get_str(art, "general.architecture");
	if (!arch)
		return QA_OK;
	uint64_t head_dim = c->has_head_dim ? c->head_dim
	                    : c->n_heads ? c->hidden_size / c->n_heads : 0;
	const struct hp hps[] = {
		{ "block_count", c->has_n_layers, false, c->n_layers, 0 },
		{ "embedding_length", c->has_hidden_size, false, c->hidden_size, 0 },
		{ "feed_forward_length", c->has_intermediate_size, false, c->intermediate_size, 0 },
		{ "attention.head_count", c->has_n_heads, false, c->n_heads, 0 },
		{ "attention.head_count_kv", c->has_n_kv_heads || c->has_n_heads, false, c->n_kv_heads, 0 },
		{ "rope.freq_base", c->has_rope_theta, true, 0, c->rope_theta },
		{ "rope.dimension_count", head_dim > 0, false, head_dim, 0 },
		{ "attention.layer_norm_rms_epsilon", c->has_rms_norm_eps, true, 0, c->rms_norm_eps },
		{ "context_length", c->has_max_position, false, c->max_position, 0 },
		{ "vocab_size", c->has_vocab_size, false, c->vocab_size, 0 },
	};
	enum qa_err e = QA_OK;
	for (size_t i = 0; !e && i < sizeof hps / sizeof hps[0]; i++)
		e = hp_check(art, arch, &hps[i], kv, n, d);
	if (e)
		return e;
	/* the vocabulary the tokenizer lists */
	const struct qa_gguf_kv *tok = qa_gguf_kv_find(art, "tokenizer.ggml.tokens");
	if (c->has_vocab_size && tok && tok->value.type == QA_GGUF_ARRAY &&
	    tok->value.v.arr.count != c->vocab_size) {
		struct qa_gguf_value want = { .type = QA_GGUF_U64, .v.u = c->vocab_size };
		struct qa_gguf_value got = { .type = QA_GGUF_U64, .v.u = tok->value.v.arr.count };
		if (!kv_push(kv, n, "tokenizer.ggml.tokens (count)", QA_RKV_CHANGED, &want, &got, -1, -1,
		             tok->offset))
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		(*kv)[*n - 1].finding = true;
	}
	/* tied embeddings: no output.weight */
	bool art_tied = qa_gguf_tensor_find(art, "output.weight") == NULL;
	if (c->has_tie_word_embeddings && art_tied != c->tie_word_embeddings) {
		struct qa_gguf_value want = { .type = QA_GGUF_BOOL, .v.b = c->tie_word_embeddings };
		struct qa_gguf_value got = { .type = QA_GGUF_BOOL, .v.b = art_tied };
		if (!kv_push(kv, n, "tied embeddings (no output.weight)", QA_RKV_CHANGED, &want, &got, -1, -1,
		             QA_NO_OFFSET))
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		(*kv)[*n - 1].finding = true;
	}
	return QA_OK;
}

enum qa_err qa_metadata_audit(const char *ref_path, const char *art_path,
                              struct qa_reproduce_kv **out, size_t *n_out, struct qa_diag *d)
{
	struct qa_ref *ref = NULL;
	struct qa_source *src = NULL;
	struct qa_gguf *art = NULL;
	struct qa_reproduce_kv *kv = NULL;
	size_t n = 0;
	enum qa_err e;
	*out = NULL;
	*n_out = 0;
	if ((e = qa_ref_open(&ref, ref_path, d)))
		return e;
	if ((e = qa_source_open_file(&src, art_path, d)) || (e = qa_gguf_open(&art, src, d)))
		goto done;
	if (qa_ref_format(ref) == QA_FORMAT_GGUF) {
		uint64_t ft;
		struct qa_quantize_opts qo;
		struct qa_quantize_kv *plan = NULL;
		size_t n_plan = 0;
		memset(&qo, 0, sizeof qo);
		if (!qa_gguf_get_u64(art, "general.file_type", &ft) || ft > UINT32_MAX)
			goto done;
		if ((e = qa_quantize_kv_plan(ref, &qo, (uint32_t)ft, &plan, &n_plan, d)))
			goto done;
		struct qa_reproduce_kv *all = NULL;
		size_t n_all = 0;
		e = qa_reproduce_kv_audit(plan, n_plan, art, true, &all, &n_all, d);
		free(plan);
		if (e)
			goto done;
		const char *arch = qa_gguf_get_str(art, "general.architecture");
		size_t alen = arch ? strlen(arch) : 0;
		for (size_t i = 0; i < n_all; i++) {
			if (all[i].kind == QA_RKV_EXTRA && strncmp(all[i].key, "quantize.imatrix.", 17) == 0) {
				free(all[i].key);
				free(all[i].expected);
				free(all[i].actual);
				continue;
			}
			all[i].finding = strncmp(all[i].key, "tokenizer.", 10) == 0 ||
			                 (alen && strncmp(all[i].key, arch, alen) == 0 && all[i].key[alen] == '.');
			all[n++] = all[i];
		}
		kv = all;
		goto done;
	}
	char *cp = config_path(ref_path);
	struct qa_model_config cfg;
	struct stat sb;
	if (!cp) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	if (stat(cp, &sb) == 0 && !(e = qa_config_load(&cfg, cp, d)))
		e = hyperparameters(&cfg, art, &kv, &n, d);
	free(cp);
done:
	if (e) {
		qa_reproduce_kv_free(kv, n);
	} else {
		*out = kv;
		*n_out = n;
	}
	qa_gguf_close(art);
	qa_source_close(src);
	qa_ref_close(ref);
	return e;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

json_t *qa_reproduce_kv_json(const struct qa_reproduce_kv *kvs, size_t n)
{
	json_t *kv = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct qa_reproduce_kv *k = &kvs[i];
		json_t *o = json_object();
		json_object_set_new(o, "key", json_string(k->key));
		json_object_set_new(o, "difference", json_string(qa_reproduce_kv_kind_name(k->kind)));
		json_object_set_new(o, "expected", qa_json_str_or_null(k->expected));
		json_object_set_new(o, "actual", qa_json_str_or_null(k->actual));
		json_object_set_new(o, "actual_offset", k->actual_offset == QA_NO_OFFSET ? json_null() : qa_json_u64(k->actual_offset));
		json_object_set_new(o, "finding", json_boolean(k->finding));
		json_array_append_new(kv, o);
	}
	return kv;
}

json_t *qa_reproduce_to_json(const struct qa_reproduce_result *r)
{
	json_t *root = json_object(), *ref = json_object(), *art = json_object(), *exp = json_object();
	json_object_set_new(root, "schema", json_string("quantaudit.reproduce/1"));
	json_object_set_new(root, "result", json_string(r->reproduced ? "reproduced" : "differs"));
	json_object_set_new(ref, "path", json_string(r->reference_path));
	json_object_set_new(root, "reference", ref);
	json_object_set_new(art, "path", json_string(r->artifact_path));
	json_object_set_new(art, "size", qa_json_u64(r->artifact_size));
	json_object_set_new(art, "sha256", qa_json_hex(r->artifact_sha256, QA_SHA256_LEN));
	json_object_set_new(art, "sha256_source",
	                    json_string(r->artifact_digest_source ? r->artifact_digest_source
	                                : r->artifact_digest_given ? "given" : "read"));
	json_object_set_new(art, "header_read", json_boolean(r->header_read));
	json_object_set_new(art, "body_bytes_read", qa_json_u64(r->artifact_bytes_read));
	json_object_set_new(root, "artifact", art);
	json_object_set_new(exp, "size", qa_json_u64(r->expected_size));
	json_object_set_new(exp, "sha256", qa_json_hex(r->expected_sha256, QA_SHA256_LEN));
	json_object_set_new(exp, "written_to", qa_json_str_or_null(r->output_path));
	json_object_set_new(exp, "passes", json_integer(r->passes));
	json_object_set_new(root, "reproduction", exp);
	json_t *recipe = json_object();
	json_object_set_new(recipe, "name", json_string(r->recipe_name ? r->recipe_name : ""));
	json_object_set_new(recipe, "file_type", qa_json_u64(r->file_type));
	json_object_set_new(recipe, "source", json_string(r->recipe_source ? r->recipe_source : ""));
	json_object_set_new(recipe, "options", json_string(r->options ? r->options : ""));
	json_t *inf = json_array();
	for (size_t i = 0; i < r->n_inferred; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "option", json_string(r->inferred[i].option));
		json_object_set_new(o, "reason", json_string(r->inferred[i].reason));
		json_array_append_new(inf, o);
	}
	json_object_set_new(recipe, "inferred", inf);
	json_t *dev = json_array();
	for (size_t i = 0; i < r->n_type_devs; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(r->type_devs[i].name));
		json_object_set_new(o, "type", json_string(qa_type_name(r->type_devs[i].artifact_type)));
		json_object_set_new(o, "planned", json_string(qa_type_name(r->type_devs[i].planned_type)));
		json_array_append_new(dev, o);
	}
	json_object_set_new(recipe, "unexplained_types", dev);
	json_object_set_new(root, "recipe", recipe);
	json_t *imj = json_object();
	json_object_set_new(imj, "declared", qa_json_str_or_null(r->imatrix_declared));
	json_object_set_new(imj, "path", qa_json_str_or_null(r->imatrix_path));
	json_object_set_new(root, "imatrix", r->imatrix_declared || r->imatrix_path ? imj : json_null());
	if (!(r->imatrix_declared || r->imatrix_path))
		json_decref(imj);
	json_object_set_new(art, "header_error", qa_json_str_or_null(r->artifact_error));
	if (r->located) {
		json_t *fd = json_object();
		json_object_set_new(fd, "offset", qa_json_u64(r->first_difference));
		json_object_set_new(fd, "region", json_string(r->region_kind));
		json_object_set_new(fd, "name", qa_json_str_or_null(r->region_name));
		json_object_set_new(fd, "index", r->region_index >= 0 ? json_integer(r->region_index) : json_null());
		json_object_set_new(fd, "region_start", qa_json_u64(r->region_start));
		json_object_set_new(fd, "region_end", r->region_end == UINT64_MAX ? json_null() : qa_json_u64(r->region_end));
		json_object_set_new(fd, "offset_in_region", qa_json_u64(r->first_difference - r->region_start));
		json_object_set_new(fd, "artifact_region", json_string(r->artifact_region_kind));
		json_object_set_new(fd, "artifact_name", qa_json_str_or_null(r->artifact_region_name));
		json_object_set_new(root, "first_difference", fd);
	} else {
		json_object_set_new(root, "first_difference", json_null());
	}
	json_t *kv = json_array();
	for (size_t i = 0; i < r->n_kv; i++) {
		const struct qa_reproduce_kv *k = &r->kv[i];
		json_t *o = json_object();
		json_object_set_new(o, "key", json_string(k->key));
		json_object_set_new(o, "difference", json_string(qa_reproduce_kv_kind_name(k->kind)));
		json_object_set_new(o, "expected", qa_json_str_or_null(k->expected));
		json_object_set_new(o, "actual", qa_json_str_or_null(k->actual));
		json_object_set_new(o, "expected_index", k->expected_index >= 0 ? json_integer(k->expected_index) : json_null());
		json_object_set_new(o, "actual_index", k->actual_index >= 0 ? json_integer(k->actual_index) : json_null());
		json_object_set_new(o, "actual_offset", k->actual_offset == QA_NO_OFFSET ? json_null() : qa_json_u64(k->actual_offset));
		json_array_append_new(kv, o);
	}
	json_object_set_new(root, "metadata", kv);
	json_object_set_new(root, "diff", r->explain ? qa_diff_to_json(r->explain) : json_null());
	return root;
}
