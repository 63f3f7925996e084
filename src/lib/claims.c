/*
 * claims.c - the claims file of a shape-swap report: load, evaluate, render (see
 * claims.h), and qa_report_claims_check.
 */
#define _POSIX_C_SOURCE 200809L
#include "report_int.h"
#include "escape.h"
#include "claims.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "names.h"
#include "plot.h"
#include "tmpfile.h"
#include "types.h"

/* ------------------------------------------------------------------ claims */

void qa_claims_free(struct qa_claims *cs)
{
	free(cs->c);
	if (cs->root)
		json_decref(cs->root);
	cs->c = NULL;
	cs->root = NULL;
}

enum qa_err qa_claims_load(const char *path, struct qa_claims *cs, struct qa_diag *d)
{
	memset(cs, 0, sizeof *cs);
	struct stat st;
	if (stat(path, &st) != 0)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open claims file %s: %s", path, qa_strerror(errno));
	if (!S_ISREG(st.st_mode))
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "claims file %s is not a regular file", path);
	if ((uint64_t)st.st_size > QA_CLAIMS_MAX_BYTES)
		return qa_diag_set(d, QA_ERR_FORMAT, QA_CLAIMS_MAX_BYTES, "claims file larger than %u bytes",
		                   QA_CLAIMS_MAX_BYTES);
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		if (json_error_code(&je) == json_error_cannot_open_file)
			return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open claims file %s", path);
		return qa_diag_set(d, QA_ERR_FORMAT, je.position >= 0 ? (uint64_t)je.position : QA_NO_OFFSET,
		                   "claims file: %s", je.text);
	}
	cs->root = root;
	if (!json_is_object(root)) {
		qa_claims_free(cs);
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "claims file: the top level is not an object");
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "audit") == 0) {
			if (!json_is_string(v)) {
				qa_claims_free(cs);
				return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET, "claims file: \"audit\" is not a string");
			}
		} else if (strcmp(key, "claims") != 0) {
			char k[64];
			qa_plot_label(key, k, sizeof k);
			qa_claims_free(cs);
			return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET, "claims file: unknown field \"%s\"", k);
		}
	}
	json_t *arr = json_object_get(root, "claims");
	if (!json_is_array(arr)) {
		qa_claims_free(cs);
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET, "claims file: \"claims\" missing or not an array");
	}
	size_t n = json_array_size(arr);
	cs->c = calloc(n ? n : 1, sizeof *cs->c);
	if (!cs->c) {
		qa_claims_free(cs);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(arr, i);
		struct qa_claim *c = &cs->c[i];
		const char *why = NULL;
		char k[64] = "";
		if (!json_is_object(o)) {
			why = "is not an object";
			goto bad;
		}
		json_object_foreach(o, key, v) {
			const char **str = strcmp(key, "id") == 0 ? &c->id :
			                   strcmp(key, "text") == 0 ? &c->text :
			                   strcmp(key, "model") == 0 ? &c->model :
			                   strcmp(key, "tensor") == 0 ? &c->tensor :
			                   strcmp(key, "class") == 0 ? &c->cls : NULL;
			qa_plot_label(key, k, sizeof k);
			if (str) {
				if (!json_is_string(v) || json_string_length(v) == 0 ||
				    strlen(json_string_value(v)) != json_string_length(v)) {
					why = "has a field that is not a non-empty string without NUL";
					goto bad;
				}
				*str = json_string_value(v);
			} else if (strcmp(key, "excess_bytes") == 0) {
				if (!json_is_integer(v)) {
					why = "has an \"excess_bytes\" that is not an integer";
					goto bad;
				}
				c->has_excess = true;
				c->excess = (int64_t)json_integer_value(v);
			} else if (strcmp(key, "identical") == 0) {
				if (!json_is_boolean(v)) {
					why = "has an \"identical\" that is not true or false";
					goto bad;
				}
				c->has_ident = true;
				c->ident = json_is_true(v);
			} else {
				why = "has an unknown field";
				goto bad;
			}
		}
		k[0] = '\0';
		if (!c->id)
			why = "has no \"id\"";
		else if (!c->text)
			why = "has no \"text\"";
		else if (!c->model)
			why = "has no \"model\"";
		else if (!c->has_excess && !c->has_ident)
			why = "has no predicate (\"excess_bytes\" or \"identical\")";
		else
			for (size_t j = 0; j < i; j++)
				if (strcmp(cs->c[j].id, c->id) == 0) {
					why = "repeats the id of an earlier claim";
					break;
				}
		if (!why)
			continue;
bad:;
		char id[64];
		qa_plot_label(c->id ? c->id : "", id, sizeof id);
		enum qa_err e = qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET, "claims file: claim %zu%s%s%s %s%s%s%s", i + 1,
		                            id[0] ? " (" : "", id, id[0] ? ")" : "", why, k[0] ? " (\"" : "", k,
		                            k[0] ? "\")" : "");
		qa_claims_free(cs);
		return e;
	}
	cs->n = n;
	return QA_OK;
}

static bool claim_selects(const struct qa_claim *c, const char *label, const struct qa_swap_tensor *t)
{
	if (strcmp(c->model, "*") != 0 && strcmp(c->model, label) != 0)
		return false;
	if (c->tensor && strcmp(c->tensor, t->name) != 0)
		return false;
	if (c->cls) {
		char cl[64];
		qa_report_class_of(t->name, cl, sizeof cl);
		if (strcmp(c->cls, cl) != 0)
			return false;
	}
	return true;
}

static bool claim_ok(const struct qa_claim *c, const struct qa_swap_tensor *t)
{
	if (c->has_excess && qa_report_swap_excess(t) != c->excess)
		return false;
	if (c->has_ident && t->identical != c->ident)
		return false;
	return true;
}

void qa_claims_evaluate(const struct qa_claim *c, const struct qa_swap_result *const *res,
                           const char *const *labels, size_t n, struct qa_claim_eval *ev)
{
	memset(ev, 0, sizeof *ev);
	for (size_t m = 0; m < n; m++) {
		if (!res[m])
			continue;
		for (size_t i = 0; i < res[m]->n; i++) {
			const struct qa_swap_tensor *t = &res[m]->tensors[i];
			if (!claim_selects(c, qa_report_label_at(labels, m), t))
				continue;
			int64_t x = qa_report_swap_excess(t);
			if (ev->selected == 0 || x < ev->ex_min)
				ev->ex_min = x;
			if (ev->selected == 0 || x > ev->ex_max)
				ev->ex_max = x;
			ev->selected++;
			ev->n_ident += t->identical;
			ev->failed += !claim_ok(c, t);
		}
	}
}

void qa_claims_section(struct qa_sb *b, const struct qa_claims *cs, const char *path,
                           const struct qa_swap_result *const *res, const char *const *labels, size_t n,
                           size_t *n_failed)
{
	*n_failed = 0;
	qa_sb_puts(b, "## Claims checked\n\n");
	if (!cs) {
		qa_sb_puts(b, "No claims file was given (--claims FILE.json checks stated claims against these "
		           "measurements).\n\n");
		return;
	}
	qa_sb_puts(b, "Claims file: ");
	qa_escape_code_str(b, path);
	const char *audit = json_string_value(json_object_get(cs->root, "audit"));
	if (audit) {
		qa_sb_puts(b, " (audit ");
		qa_escape_code_str(b, audit);
		qa_sb_putc(b, ')');
	}
	qa_sb_puts(b, ". A claim holds when every tensor it selects (model, tensor, class) satisfies every predicate it "
	           "states (excess_bytes: in,out bytes minus out,in bytes; identical: all blocks equal under both "
	           "layouts); a claim that selects no tensor does not hold.\n\n");
	if (cs->n == 0) {
		qa_sb_puts(b, "The file states no claims.\n\n");
		return;
	}
	qa_sb_puts(b, "| id | claim | measured | result | broken by |\n|---|---|---|---|---|\n");
	for (size_t k = 0; k < cs->n; k++) {
		const struct qa_claim *c = &cs->c[k];
		struct qa_claim_eval ev;
		qa_claims_evaluate(c, res, labels, n, &ev);
		bool holds = ev.selected > 0 && ev.failed == 0;
		if (!holds)
			(*n_failed)++;
		qa_sb_puts(b, "| ");
		qa_escape_md_str(b, c->id);
		qa_sb_puts(b, " | ");
		qa_escape_md_str(b, c->text);
		qa_sb_puts(b, " | ");
		if (ev.selected == 0) {
			qa_sb_puts(b, "no tensor selected");
		} else {
			qa_sb_printf(b, "%zu %s", ev.selected, qa_report_plural(ev.selected, "tensor", "tensors"));
			if (c->has_excess) {
				if (ev.ex_min == ev.ex_max)
					qa_sb_printf(b, ": excess %+" PRId64 " B", ev.ex_min);
				else
					qa_sb_printf(b, ": excess %+" PRId64 " to %+" PRId64 " B", ev.ex_min, ev.ex_max);
			}
			if (c->has_ident)
				qa_sb_printf(b, "%s %zu identical", c->has_excess ? ";" : ":", ev.n_ident);
		}
		qa_sb_printf(b, " | %s | ", holds ? "HOLDS" : "DOES NOT HOLD");
		if (holds) {
			qa_sb_puts(b, "-");
		} else if (ev.selected == 0) {
			qa_sb_puts(b, "(nothing matches model ");
			qa_escape_code_str(b, c->model);
			if (c->tensor) {
				qa_sb_puts(b, ", tensor ");
				qa_escape_code_str(b, c->tensor);
			}
			if (c->cls) {
				qa_sb_puts(b, ", class ");
				qa_escape_code_str(b, c->cls);
			}
			qa_sb_putc(b, ')');
		} else {
			size_t named = 0;
			for (size_t m = 0; m < n && named < QA_CLAIMS_BROKEN_MAX; m++) {
				if (!res[m])
					continue;
				for (size_t i = 0; i < res[m]->n && named < QA_CLAIMS_BROKEN_MAX; i++) {
					const struct qa_swap_tensor *t = &res[m]->tensors[i];
					if (!claim_selects(c, qa_report_label_at(labels, m), t) || claim_ok(c, t))
						continue;
					if (named)
						qa_sb_puts(b, "; ");
					qa_escape_code_str(b, qa_report_label_at(labels, m));
					qa_sb_putc(b, ' ');
					qa_escape_code_str(b, t->name);
					qa_sb_printf(b, " (excess %+" PRId64 " B, %s)", qa_report_swap_excess(t),
					          t->identical ? "identical" : "divergent");
					named++;
				}
			}
			if (ev.failed > named)
				qa_sb_printf(b, "; and %zu more", ev.failed - named);
		}
		qa_sb_puts(b, " |\n");
	}
	qa_sb_printf(b, "\n%zu of %zu %s %s.\n\n", cs->n - *n_failed, cs->n, qa_report_plural(cs->n, "claim", "claims"),
	          qa_report_plural(cs->n - *n_failed, "holds", "hold"));
}

enum qa_err qa_report_claims_check(const struct qa_swap_result *const *results, const char *const *labels, size_t n,
                                   const char *path, size_t *n_claims, size_t *n_failed, struct qa_diag *d)
{
	if (!path || (n && !results))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "claims: no file or results");
	struct qa_claims cs;
	enum qa_err e = qa_claims_load(path, &cs, d);
	if (e)
		return e;
	size_t failed = 0;
	for (size_t k = 0; k < cs.n; k++) {
		struct qa_claim_eval ev;
		qa_claims_evaluate(&cs.c[k], results, labels, n, &ev);
		failed += !(ev.selected > 0 && ev.failed == 0);
	}
	if (n_claims)
		*n_claims = cs.n;
	if (n_failed)
		*n_failed = failed;
	qa_claims_free(&cs);
	return QA_OK;
}
