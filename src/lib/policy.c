/*
 * policy.c - the gate policy (quantaudit.policy/1) and its evaluation.
 *
 * The policy is parsed by jansson with duplicate keys rejected; a small
 * scanner over the raw text (qa_json_key_positions, json_scan.h) finds where each key
 * sits, so an unknown key, an unknown name or a bad value is reported at
 * its byte offset.  The evaluation turns a result into one struct qa_gate,
 * which every renderer reads.
 */
#define _POSIX_C_SOURCE 200809L
#include "policy.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "names.h"
#include "reproduce.h"
#include "json_scan.h"
#include "types.h"

#define MAX_POLICY_BYTES (1u << 20)
#define MAX_SKIP 4096
#define MAX_LIMITS 4096

/* Every verdict and status name any command gives a tensor.  Diff's verdicts
 * come first in enum qa_verdict order; "imatrix" and "unpermuted" are the
 * forensic verdicts (an importance-matrix quantization, a q/k weight left
 * in Hugging Face's row order). */
static const struct qa_policy_status statuses[] = {
	{ "identical", QA_POLICY_DIFF | QA_POLICY_SWAP, QA_ACTION_PASS,
	  "the bytes equal ggml's re-quantization (shape-swap: both layouts give the same bytes)" },
	{ "layout-swap", QA_POLICY_DIFF, QA_ACTION_FAIL, "matches the in,out layout only" },
	{ "transposed", QA_POLICY_DIFF, QA_ACTION_FAIL, "matches the transposed weight only" },
	{ "divergent", QA_POLICY_DIFF | QA_POLICY_SWAP, QA_ACTION_FAIL,
	  "no layout matches (shape-swap: the two layouts differ)" },
	{ "missing", QA_POLICY_DIFF | QA_POLICY_VERIFY, QA_ACTION_FAIL,
	  "in the reference or manifest, absent from the file" },
	{ "extra", QA_POLICY_DIFF | QA_POLICY_VERIFY, QA_ACTION_FAIL,
	  "in the file, absent from the reference or manifest" },
	{ "shape-mismatch", QA_POLICY_DIFF | QA_POLICY_VERIFY, QA_ACTION_FAIL,
	  "the shapes (verify: type, shape or size) cannot be paired" },
	{ "unsupported-type", QA_POLICY_DIFF, QA_ACTION_FAIL, "the artifact's type cannot be re-quantized" },
	{ "unpermuted", QA_POLICY_DIFF, QA_ACTION_FAIL, "matches the weight without llama.cpp's q/k row permutation" },
	{ "imatrix", QA_POLICY_DIFF, QA_ACTION_FAIL, "most blocks diverge with an error in the band importance weighting gives (the artifact declares a matrix; not verified)" },
	{ "needs-imatrix", QA_POLICY_DIFF, QA_ACTION_FAIL,
	  "a type ggml makes only with an importance matrix (iq2_xxs, iq2_xs, iq1_s); give --imatrix" },
	{ "metadata", QA_POLICY_DIFF, QA_ACTION_FAIL,
	  "a metadata pair the audit counts as a finding (an ARCH.* or tokenizer.* key, a config.json hyperparameter)" },
	{ "match", QA_POLICY_VERIFY, QA_ACTION_PASS, "the tensor's digests equal the manifest's" },
	{ "mismatch", QA_POLICY_VERIFY, QA_ACTION_FAIL, "the tensor's bytes differ from the manifest" },
	{ "metadata-changed", QA_POLICY_VERIFY, QA_ACTION_FAIL, "the bytes before the data section differ" },
	{ "file-mismatch", QA_POLICY_VERIFY, QA_ACTION_FAIL,
	  "the whole-file SHA-256 (llama-gguf-hash manifest: the digest of all tensor data) differs" },
};
#define N_STATUS (sizeof statuses / sizeof statuses[0])

size_t qa_policy_status_count(void)
{
	return N_STATUS;
}

const struct qa_policy_status *qa_policy_status_at(size_t i)
{
	return i < N_STATUS ? &statuses[i] : NULL;
}

int qa_policy_status_find(const char *name)
{
	for (size_t i = 0; name && i < N_STATUS; i++)
		if (strcmp(statuses[i].name, name) == 0)
			return (int)i;
	return -1;
}

static const char *const action_names[QA_ACTION_COUNT] = { "pass", "ignore", "warn", "fail" };

const char *qa_action_name(enum qa_action a)
{
	return (unsigned)a < QA_ACTION_COUNT ? action_names[a] : "?";
}

/* ------------------------------------------------------------------ parsing */

struct text {
	const char *buf;
	size_t len;
};

static size_t skip_ws(const struct text *t, size_t p)
{
	return p + qa_json_first_nonspace(t->buf + p, t->len - p);
}

/* Offset of the value of the key whose opening quote is at key. */
static size_t value_at(const struct text *t, size_t key)
{
	return qa_json_value_position(t->buf, t->len, key);
}

/* Positions of the keys of the object at start (malloc'd, n entries, or
 * NULL when the scan disagrees with jansson: offsets then fall back). */
static size_t *key_positions(const struct text *t, size_t start, size_t n)
{
	size_t *pos = malloc((n ? n : 1) * sizeof *pos);
	if (pos && qa_json_key_positions(t->buf, t->len, start, pos, n) != n) {
		free(pos);
		pos = NULL;
	}
	return pos;
}

/*
 * Call fn(ctx, key, value, key offset, value offset, d) for each key of the
 * object o whose '{' is at start, in document order, until one fails;
 * every offset is fallback when the scan disagrees with jansson.  Returns
 * the first failure, or QA_OK.
 */
static enum qa_err each_key(const json_t *o, const struct text *t, size_t start, uint64_t fallback,
                            enum qa_err (*fn)(void *ctx, const char *key, json_t *v, uint64_t koff,
                                              uint64_t voff, struct qa_diag *d),
                            void *ctx, struct qa_diag *d)
{
	size_t *pos = key_positions(t, start, json_object_size(o)), k = 0;
	const char *key;
	json_t *v;
	enum qa_err e = QA_OK;
	json_object_foreach((json_t *)o, key, v) {
		uint64_t koff = pos ? pos[k] : fallback, voff = pos ? value_at(t, pos[k]) : fallback;
		k++;
		if ((e = fn(ctx, key, v, koff, voff, d)))
			break;
	}
	free(pos);
	return e;
}

static enum qa_err parse_action(const json_t *v, uint64_t off, const char *what,
                                enum qa_action *out, struct qa_diag *d)
{
	const char *s = json_string_value(v);
	if (!s)
		return qa_diag_set(d, QA_ERR_FORMAT, off, "%s must be \"fail\", \"warn\" or \"ignore\"", what);
	if (strcmp(s, "fail") == 0)
		*out = QA_ACTION_FAIL;
	else if (strcmp(s, "warn") == 0)
		*out = QA_ACTION_WARN;
	else if (strcmp(s, "ignore") == 0)
		*out = QA_ACTION_IGNORE;
	else
		return qa_diag_set(d, QA_ERR_FORMAT, off, "%s: unknown action '%.40s' (fail, warn or ignore)", what, s);
	return QA_OK;
}

static enum qa_err verdict_key(void *ctx, const char *key, json_t *v, uint64_t koff, uint64_t voff,
                               struct qa_diag *d)
{
	struct qa_policy *p = ctx;
	int i = qa_policy_status_find(key);
	if (i < 0)
		return qa_diag_set(d, QA_ERR_FORMAT, koff, "unknown verdict or status '%.60s'", key);
	char what[96];
	snprintf(what, sizeof what, "verdict '%s'", key);
	return parse_action(v, voff, what, &p->status[i], d);
}

static enum qa_err parse_verdicts(struct qa_policy *p, const json_t *o, const struct text *t,
                                  size_t start, struct qa_diag *d)
{
	if (!json_is_object(o))
		return qa_diag_set(d, QA_ERR_FORMAT, start, "\"verdicts\" must be an object");
	return each_key(o, t, start, start, verdict_key, p, d);
}

struct limits_ctx {
	struct qa_policy *p;
	bool warn;
	const char *field;
};

static enum qa_err limit_key(void *ctx, const char *key, json_t *v, uint64_t koff, uint64_t voff,
                             struct qa_diag *d)
{
	const struct limits_ctx *c = ctx;
	struct qa_policy *p = c->p;
	size_t kl = strlen(key);
	if (kl == 0 || kl >= sizeof p->limits[0].cls)
		return qa_diag_set(d, QA_ERR_FORMAT, koff, "\"%s\": a class name has 1 to %zu bytes", c->field,
		                   sizeof p->limits[0].cls - 1);
	double x = json_is_number(v) ? json_number_value(v) : -1;
	if (!(x > 0) || !isfinite(x))
		return qa_diag_set(d, QA_ERR_FORMAT, voff, "\"%s\": the limit for '%.60s' must be a number above 0",
		                   c->field, key);
	struct qa_policy_limit *l = NULL;
	for (size_t i = 0; i < p->n_limits; i++)
		if (strcmp(p->limits[i].cls, key) == 0)
			l = &p->limits[i];
	if (!l) {
		l = &p->limits[p->n_limits++];
		memset(l, 0, sizeof *l);
		memcpy(l->cls, key, kl + 1);
	}
	if (c->warn)
		l->warn = x;
	else
		l->fail = x;
	return QA_OK;
}

static enum qa_err parse_limits(struct qa_policy *p, const json_t *o, bool warn, const char *field,
                                const struct text *t, size_t start, struct qa_diag *d)
{
	if (!json_is_object(o))
		return qa_diag_set(d, QA_ERR_FORMAT, start, "\"%s\" must be an object", field);
	if (json_object_size(o) > MAX_LIMITS)
		return qa_diag_set(d, QA_ERR_FORMAT, start, "\"%s\" has more than %d classes", field, MAX_LIMITS);
	struct qa_policy_limit *grown = realloc(p->limits, (p->n_limits + json_object_size(o) + 1) * sizeof *grown);
	if (!grown)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	p->limits = grown;
	struct limits_ctx c = { p, warn, field };
	return each_key(o, t, start, start, limit_key, &c, d);
}

static enum qa_err parse_skip(struct qa_policy *p, const json_t *a, size_t start, struct qa_diag *d)
{
	if (!json_is_array(a))
		return qa_diag_set(d, QA_ERR_FORMAT, start, "\"skip\" must be an array of glob patterns");
	if (json_array_size(a) > MAX_SKIP)
		return qa_diag_set(d, QA_ERR_FORMAT, start, "\"skip\" has more than %d patterns", MAX_SKIP);
	p->skip = calloc(json_array_size(a) + 1, sizeof *p->skip);
	if (!p->skip)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);
		if (!s || !*s || strlen(s) > 1024)
			return qa_diag_set(d, QA_ERR_FORMAT, start, "\"skip\"[%zu] must be a pattern of 1 to 1024 bytes", i);
		size_t n = strlen(s) + 1;
		if (!(p->skip[p->n_skip] = malloc(n)))
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		memcpy(p->skip[p->n_skip++], s, n);
	}
	return QA_OK;
}

static struct qa_policy *policy_new(void)
{
	struct qa_policy *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->status = calloc(N_STATUS, sizeof *p->status);
	if (!p->status) {
		qa_policy_free(p);
		return NULL;
	}
	for (size_t i = 0; i < N_STATUS; i++)
		p->status[i] = statuses[i].fallback;
	p->recipe_deviation = QA_ACTION_IGNORE;
	return p;
}

struct top_ctx {
	struct qa_policy *p;
	const struct text *t;
	bool has_schema;
};

static enum qa_err top_key(void *ctx, const char *key, json_t *v, uint64_t koff, uint64_t voff,
                           struct qa_diag *d)
{
	struct top_ctx *c = ctx;
	if (strcmp(key, "schema") == 0) {
		const char *s = json_string_value(v);
		if (!s || strcmp(s, QA_POLICY_SCHEMA) != 0)
			return qa_diag_set(d, QA_ERR_FORMAT, voff, "unknown policy schema (this build reads %s)",
			                   QA_POLICY_SCHEMA);
		c->has_schema = true;
		return QA_OK;
	}
	if (strcmp(key, "verdicts") == 0)
		return parse_verdicts(c->p, v, c->t, voff, d);
	if (strcmp(key, "max_rmse_ratio") == 0)
		return parse_limits(c->p, v, false, key, c->t, voff, d);
	if (strcmp(key, "warn_rmse_ratio") == 0)
		return parse_limits(c->p, v, true, key, c->t, voff, d);
	if (strcmp(key, "recipe_deviation") == 0)
		return parse_action(v, voff, "\"recipe_deviation\"", &c->p->recipe_deviation, d);
	if (strcmp(key, "skip") == 0)
		return parse_skip(c->p, v, voff, d);
	return qa_diag_set(d, QA_ERR_FORMAT, koff, "unknown policy key '%.60s'", key);
}

enum qa_err qa_policy_parse(const void *buf, size_t len, struct qa_policy **out, struct qa_diag *d)
{
	if (!out || (!buf && len))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no policy given");
	*out = NULL;
	if (len > MAX_POLICY_BYTES)
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "policy of %zu bytes is too large (at most %u)", len,
		                   MAX_POLICY_BYTES);
	struct text t = { buf ? buf : "", len };
	json_error_t je;
	json_t *root = json_loadb(t.buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return qa_json_error_diag(d, &je, 0, len, "policy");
	if (!json_is_object(root)) {
		json_decref(root);
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "policy is not a json object");
	}
	struct qa_policy *p = policy_new();
	if (!p) {
		json_decref(root);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	struct top_ctx c = { p, &t, false };
	enum qa_err e = each_key(root, &t, skip_ws(&t, 0), 0, top_key, &c, d);
	json_decref(root);
	if (!e && !c.has_schema)
		e = qa_diag_set(d, QA_ERR_FORMAT, 0, "policy has no \"schema\" (%s)", QA_POLICY_SCHEMA);
	if (e) {
		qa_policy_free(p);
		return e;
	}
	*out = p;
	return QA_OK;
}

enum qa_err qa_policy_load(const char *path, struct qa_policy **out, struct qa_diag *d)
{
	if (!path || !out)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no policy given");
	FILE *f = fopen(path, "rb");
	if (!f)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open: %s", qa_strerror(errno));
	char *buf = malloc(MAX_POLICY_BYTES + 1);
	if (!buf) {
		fclose(f);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	size_t n = fread(buf, 1, MAX_POLICY_BYTES + 1, f);
	bool bad = ferror(f);
	fclose(f);
	enum qa_err e = bad ? qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot read") :
	                qa_policy_parse(buf, n, out, d);
	free(buf);
	return e;
}

void qa_policy_free(struct qa_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_skip; i++)
		free(p->skip[i]);
	free(p->skip);
	free(p->limits);
	free(p->status);
	free(p);
}

/* ------------------------------------------------------------------ evaluation */

void qa_gate_init(struct qa_gate *g)
{
	memset(g, 0, sizeof *g);
	g->pass = true;
}

void qa_gate_free(struct qa_gate *g)
{
	if (!g)
		return;
	free(g->suites);
	free(g->items);
	memset(g, 0, sizeof *g);
}

static enum qa_action status_action(const struct qa_policy *p, const char *status)
{
	int i = qa_policy_status_find(status);
	if (i < 0)
		return QA_ACTION_FAIL;
	return p ? p->status[i] : statuses[i].fallback;
}

static bool skipped(const struct qa_policy *p, const char *name)
{
	for (size_t i = 0; p && i < p->n_skip; i++)
		if (fnmatch(p->skip[i], name, 0) == 0)
			return true;
	return false;
}

/* The class the report groups a tensor in: qa_names_class, plus ".bias". */
static void class_of(const char *name, char *buf, size_t cap)
{
	if (!qa_names_class(name, buf, cap))
		snprintf(buf, cap, "%s", "other");
	size_t n = strlen(name);
	if (n >= 5 && strcmp(name + n - 5, ".bias") == 0) {
		size_t k = strlen(buf);
		if (k + 6 <= cap)
			memcpy(buf + k, ".bias", 6);
	}
}

static const struct qa_policy_limit *limit_for(const struct qa_policy *p, const char *cls)
{
	const struct qa_policy_limit *any = NULL;
	for (size_t i = 0; p && i < p->n_limits; i++) {
		if (strcmp(p->limits[i].cls, cls) == 0)
			return &p->limits[i];
		if (strcmp(p->limits[i].cls, "*") == 0)
			any = &p->limits[i];
	}
	return any;
}

static enum qa_err suite_begin(struct qa_gate *g, const char *name, size_t n_more, struct qa_diag *d)
{
	struct qa_gate_suite *s = realloc(g->suites, (g->n_suites + 1) * sizeof *s);
	if (!s)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	g->suites = s;
	struct qa_gate_item *it = realloc(g->items, (g->n + n_more + 1) * sizeof *it);
	if (!it)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	g->items = it;
	s = &g->suites[g->n_suites++];
	memset(s, 0, sizeof *s);
	s->name = name;
	s->first = g->n;
	g->pass = g->counts[QA_ACTION_FAIL] == 0;
	return QA_OK;
}

static struct qa_gate_item *item_new(struct qa_gate *g, const char *name, const char *status)
{
	struct qa_gate_item *it = &g->items[g->n++];
	memset(it, 0, sizeof *it);
	it->name = name;
	it->status = status;
	class_of(name, it->cls, sizeof it->cls);
	return it;
}

/* Apply skips, record the item in its suite and the totals. */
static void item_done(struct qa_gate *g, const struct qa_policy *p, struct qa_gate_item *it)
{
	struct qa_gate_suite *s = &g->suites[g->n_suites - 1];
	if (skipped(p, it->name)) {
		it->action = QA_ACTION_IGNORE;
		snprintf(it->detail, sizeof it->detail, "%s; skipped by the policy", it->status);
	} else if (it->action != QA_ACTION_PASS && !it->detail[0]) {
		snprintf(it->detail, sizeof it->detail, "%s; the policy's action for it is %s", it->status,
		         qa_action_name(it->action));
	}
	if (it->action == QA_ACTION_PASS)
		it->detail[0] = '\0';
	s->n++;
	s->counts[it->action]++;
	g->counts[it->action]++;
	if (!it->whole)
		g->tensors++;
	if (strcmp(it->status, "identical") == 0 || strcmp(it->status, "match") == 0)
		g->identical++;
	g->pass = g->counts[QA_ACTION_FAIL] == 0;
}

/* Append ", "-separated text to it->detail. */
static void add_detail(struct qa_gate_item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add_detail(struct qa_gate_item *it, const char *fmt, ...)
{
	size_t k = strlen(it->detail);
	if (k && k + 2 < sizeof it->detail) {
		memcpy(it->detail + k, "; ", 3);
		k += 2;
	}
	if (k + 1 >= sizeof it->detail)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(it->detail + k, sizeof it->detail - k, fmt, ap);
	va_end(ap);
}

static enum qa_action max_action(enum qa_action a, enum qa_action b)
{
	return a > b ? a : b;
}

enum qa_err qa_gate_add_diff(struct qa_gate *g, const struct qa_policy *p,
                             const struct qa_diff_result *r, const char *suite,
                             struct qa_diag *d)
{
	enum qa_err e = suite_begin(g, suite, r->n + r->n_metadata, d);
	if (e)
		return e;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		struct qa_gate_item *it = item_new(g, t->name, qa_verdict_name(t->verdict));
		it->action = status_action(p, it->status);
		switch (t->verdict) {
		case QA_VERDICT_DIVERGENT:
			add_detail(it, "divergent: %" PRIu64 " of %" PRIu64 " blocks differ, first at block %" PRIu64,
			           t->divergent_blocks, t->blocks,
			           t->first_divergent == QA_NO_BLOCK ? 0 : t->first_divergent);
			break;
		case QA_VERDICT_LAYOUT_SWAP: add_detail(it, "layout-swap: matches the in,out layout only"); break;
		case QA_VERDICT_TRANSPOSED: add_detail(it, "transposed: matches the transposed weight only"); break;
		case QA_VERDICT_MISSING: add_detail(it, "missing: in the reference, absent from the artifact"); break;
		case QA_VERDICT_EXTRA: add_detail(it, "extra: in the artifact, absent from the reference"); break;
		case QA_VERDICT_SHAPE_MISMATCH: add_detail(it, "shape-mismatch: the shapes cannot be paired"); break;
		case QA_VERDICT_UNSUPPORTED:
			add_detail(it, "unsupported-type: %s cannot be re-quantized", qa_type_name(t->type));
			break;
		case QA_VERDICT_NEEDS_IMATRIX:
			add_detail(it, "needs-imatrix: %s is made only with an importance matrix; give --imatrix",
			           qa_type_name(t->type));
			break;
		default:
			if (t->verdict != QA_VERDICT_IDENTICAL)
				add_detail(it, "%s", it->status);
			break;
		}
		if (t->has_error) {
			it->has_ratio = true;
			it->rmse_ratio = t->requant_rmse > 0 ? t->rmse / t->requant_rmse : t->rmse > 0 ? INFINITY : 1.0;
			if (t->verdict != QA_VERDICT_IDENTICAL)
				add_detail(it, "RMSE %.3e against %.3e for ggml's re-quantization (ratio %.3f)",
				           t->rmse, t->requant_rmse, it->rmse_ratio);
			const struct qa_policy_limit *l = limit_for(p, it->cls);
			if (l && l->fail > 0 && it->rmse_ratio > l->fail) {
				it->action = QA_ACTION_FAIL;
				add_detail(it, "RMSE ratio %.3f exceeds the %s limit %.3f", it->rmse_ratio, l->cls, l->fail);
			} else if (l && l->warn > 0 && it->rmse_ratio > l->warn) {
				it->action = max_action(it->action, QA_ACTION_WARN);
				add_detail(it, "RMSE ratio %.3f exceeds the %s warning limit %.3f", it->rmse_ratio, l->cls,
				           l->warn);
			}
		}
		if (t->in_plan && t->recipe_type != t->type) {
			enum qa_action ra = p ? p->recipe_deviation : QA_ACTION_IGNORE;
			if (ra == QA_ACTION_FAIL || ra == QA_ACTION_WARN) {
				it->action = max_action(it->action, ra);
				add_detail(it, "recipe deviation: %s where the %s recipe gives %s (%s)", qa_type_name(t->type),
				           r->recipe_name ? r->recipe_name : "file type's", qa_type_name(t->recipe_type), t->rule);
			}
		}
		item_done(g, p, it);
	}
	/* the metadata audit's findings, one item per key (differences that
	 * are not findings are listed by the outputs, not judged) */
	for (size_t i = 0; i < r->n_metadata; i++) {
		const struct qa_reproduce_kv *k = &r->metadata[i];
		if (!k->finding)
			continue;
		struct qa_gate_item *it = item_new(g, k->key, "metadata");
		snprintf(it->cls, sizeof it->cls, "%s", "metadata");
		it->whole = true;
		it->action = status_action(p, it->status);
		add_detail(it, "metadata %s: expected %.100s, artifact %.100s", qa_reproduce_kv_kind_name(k->kind),
		           k->expected ? k->expected : "(absent)", k->actual ? k->actual : "(absent)");
		item_done(g, p, it);
	}
	return QA_OK;
}

enum qa_err qa_gate_add_swap(struct qa_gate *g, const struct qa_policy *p,
                             const struct qa_swap_result *r, const char *suite,
                             struct qa_diag *d)
{
	enum qa_err e = suite_begin(g, suite, r->n, d);
	if (e)
		return e;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_swap_tensor *t = &r->tensors[i];
		struct qa_gate_item *it = item_new(g, t->name, t->identical ? "identical" : "divergent");
		it->action = status_action(p, it->status);
		if (!t->identical)
			add_detail(it, "divergent: %" PRIu64 " of %" PRIu64 " blocks differ between out,in and in,out, "
			           "first at block %" PRIu64 "; %+" PRId64 " bytes", t->divergent_blocks, t->blocks[0],
			           t->first_divergent == QA_NO_BLOCK ? 0 : t->first_divergent,
			           (int64_t)t->bytes[1] - (int64_t)t->bytes[0]);
		if (t->identical != t->predicted_identical)
			add_detail(it, "the measurement contradicts the mechanism's prediction");
		item_done(g, p, it);
	}
	return QA_OK;
}

static const char *verify_status(enum qa_verify_kind k)
{
	switch (k) {
	case QA_VERIFY_MISMATCH: return "mismatch";
	case QA_VERIFY_MISSING: return "missing";
	case QA_VERIFY_EXTRA: return "extra";
	case QA_VERIFY_SHAPE: return "shape-mismatch";
	}
	return "mismatch";
}

static void verify_detail(struct qa_gate_item *it, const struct qa_verify_item *vi)
{
	if (vi->blocks_known && vi->divergent_blocks)
		add_detail(it, "%s: %" PRIu64 " of %" PRIu64 " blocks differ, first at block %" PRIu64, it->status,
		           vi->divergent_blocks, vi->blocks_compared, vi->first_divergent);
	else if (vi->kind == QA_VERIFY_MISMATCH)
		add_detail(it, "mismatch: the tensor digest differs");
	else if (vi->kind == QA_VERIFY_MISSING)
		add_detail(it, "missing: in the manifest, absent from the file");
	else if (vi->kind == QA_VERIFY_EXTRA)
		add_detail(it, "extra: in the file, absent from the manifest");
	else
		add_detail(it, "shape-mismatch: type, shape or size changed");
}

enum qa_err qa_gate_add_verify(struct qa_gate *g, const struct qa_policy *p,
                               const struct qa_manifest *want, const struct qa_verify *v,
                               bool file_known, const char *suite, struct qa_diag *d)
{
	enum qa_err e = suite_begin(g, suite, want->n + v->n_items + 2, d);
	if (e)
		return e;
	for (size_t i = 0; i < want->n; i++) {
		const struct qa_verify_item *vi = NULL;
		for (size_t k = 0; k < v->n_items && !vi; k++)
			if (v->items[k].kind != QA_VERIFY_EXTRA && strcmp(v->items[k].name, want->tensors[i].name) == 0)
				vi = &v->items[k];
		struct qa_gate_item *it = item_new(g, want->tensors[i].name, vi ? verify_status(vi->kind) : "match");
		it->action = status_action(p, it->status);
		if (vi)
			verify_detail(it, vi);
		item_done(g, p, it);
	}
	for (size_t k = 0; k < v->n_items; k++) {
		if (v->items[k].kind != QA_VERIFY_EXTRA)
			continue;
		struct qa_gate_item *it = item_new(g, v->items[k].name, "extra");
		it->action = status_action(p, it->status);
		verify_detail(it, &v->items[k]);
		item_done(g, p, it);
	}
	if (!v->metadata_match) {
		struct qa_gate_item *it = item_new(g, "(metadata)", "metadata-changed");
		it->whole = true;
		snprintf(it->cls, sizeof it->cls, "%s", "file");
		it->action = status_action(p, it->status);
		add_detail(it, "metadata-changed: the bytes before the data section differ");
		item_done(g, p, it);
	}
	if (file_known && !v->file_match) {
		struct qa_gate_item *it = item_new(g, "(file)", "file-mismatch");
		it->whole = true;
		snprintf(it->cls, sizeof it->cls, "%s", "file");
		it->action = status_action(p, it->status);
		add_detail(it, "file-mismatch: the whole-file SHA-256 differs");
		item_done(g, p, it);
	}
	return QA_OK;
}

json_t *qa_gate_to_json(const struct qa_gate *g)
{
	json_t *o = json_object();
	json_object_set_new(o, "verdict", json_string(g->pass ? "pass" : "fail"));
	json_object_set_new(o, "tensors", json_integer((json_int_t)g->tensors));
	json_object_set_new(o, "identical", json_integer((json_int_t)g->identical));
	json_object_set_new(o, "failing", json_integer((json_int_t)g->counts[QA_ACTION_FAIL]));
	json_object_set_new(o, "warnings", json_integer((json_int_t)g->counts[QA_ACTION_WARN]));
	json_object_set_new(o, "ignored", json_integer((json_int_t)g->counts[QA_ACTION_IGNORE]));
	return o;
}
