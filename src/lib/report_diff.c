/*
 * report_diff.c - the diff report and verdict: the one-paragraph verdict, the plots
 * (RMSE, divergence, types) and the markdown report of a qa_diff_result.
 */
#define _POSIX_C_SOURCE 200809L
#include "report_int.h"
#include "escape.h"

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

#include "forensics.h"
#include "manifest.h"
#include "names.h"
#include "plot.h"
#include "tmpfile.h"
#include "types.h"

/* ------------------------------------------------------------------ diff verdict */

static const char *diff_name_at(const void *r, size_t i)
{
	return ((const struct qa_diff_result *)r)->tensors[i].name;
}

static const enum qa_verdict kind_order[] = {
	QA_VERDICT_DIVERGENT, QA_VERDICT_LAYOUT_SWAP, QA_VERDICT_TRANSPOSED, QA_VERDICT_UNPERMUTED,
	QA_VERDICT_MISSING, QA_VERDICT_EXTRA, QA_VERDICT_SHAPE_MISMATCH, QA_VERDICT_UNSUPPORTED,
	QA_VERDICT_NEEDS_IMATRIX, QA_VERDICT_IMATRIX,
};

static const char *kind_verb(enum qa_verdict v, size_t n)
{
	switch (v) {
	case QA_VERDICT_DIVERGENT: return n == 1 ? "diverges" : "diverge";
	case QA_VERDICT_LAYOUT_SWAP:
		return n == 1 ? "carries the shape-swap defect of AUDIT-Q4K-SHAPE-001 (quantized as in,out: "
		                "its shape was exported as [in, out])" :
		                "carry the shape-swap defect of AUDIT-Q4K-SHAPE-001 (quantized as in,out: "
		                "their shapes were exported as [in, out])";
	case QA_VERDICT_TRANSPOSED:
		return n == 1 ? "is a transposed export (it matches W transposed)" :
		                "are transposed exports (they match W transposed)";
	case QA_VERDICT_UNPERMUTED:
		return n == 1 ? "lacks the rotary row permutation of llama-family attn_q/attn_k (an unpermuted export)" :
		                "lack the rotary row permutation of llama-family attn_q/attn_k (unpermuted exports)";
	case QA_VERDICT_IMATRIX:
		return n == 1 ? "was quantized with the declared importance matrix (verdict imatrix: most blocks differ "
		                "from ggml's unweighted re-quantization, with an error in the band importance weighting "
		                "produces)" :
		                "were quantized with the declared importance matrix (verdict imatrix: most blocks differ "
		                "from ggml's unweighted re-quantization, with errors in the band importance weighting "
		                "produces)";
	case QA_VERDICT_MISSING: return n == 1 ? "is missing from the artifact" : "are missing from the artifact";
	case QA_VERDICT_EXTRA: return n == 1 ? "has no reference tensor" : "have no reference tensor";
	case QA_VERDICT_SHAPE_MISMATCH:
		return n == 1 ? "has a shape that cannot be paired with the reference" :
		                "have shapes that cannot be paired with the reference";
	case QA_VERDICT_UNSUPPORTED:
		return n == 1 ? "has a type that cannot be re-quantized" : "have types that cannot be re-quantized";
	case QA_VERDICT_NEEDS_IMATRIX:
		return n == 1 ? "has a type ggml makes only with an importance matrix (verdict needs-imatrix: give "
		                "--imatrix with the matrix it was made with, which must have an entry for it)" :
		                "have types ggml makes only with an importance matrix (verdict needs-imatrix: give "
		                "--imatrix with the matrix they were made with, which must have an entry for each)";
	default: return "?";
	}
}

static void divergent_item(struct qa_sb *b, bool md, const struct qa_diff_tensor *t)
{
	qa_escape_name(b, md, t->name);
	qa_sb_printf(b, " has %" PRIu64 " divergent %s of %" PRIu64, t->divergent_blocks,
	          qa_report_plural(t->divergent_blocks, "block", "blocks"), t->blocks);
	if (t->first_divergent != QA_NO_BLOCK)
		qa_sb_printf(b, " (%s %" PRIu64 ")", t->divergent_blocks == 1 ? "block" : "first at block",
		          t->first_divergent);
	if (t->has_error)
		qa_sb_printf(b, ", RMSE %.3e against %.3e for ggml's re-quantization", t->rmse, t->requant_rmse);
}

static double rmse_ratio(const struct qa_diff_tensor *t)
{
	if (!t->has_error)
		return NAN;
	if (t->requant_rmse > 0)
		return t->rmse / t->requant_rmse;
	return t->rmse > 0 ? INFINITY : 1.0;
}

static void sb_ratio(struct qa_sb *b, double r)
{
	if (isnan(r))
		qa_sb_puts(b, "-");
	else if (isinf(r))
		qa_sb_puts(b, "inf");
	else
		qa_sb_printf(b, "%.3f", r);
}

static void recipe_sentence(struct qa_sb *b, bool md, const struct qa_diff_result *r)
{
	if (r->recipe_name && r->recipe_matches) {
		qa_sb_printf(b, " Recipe: every tensor has the type llama.cpp's %s plan gives (general.file_type %" PRIu32 ").",
		          r->recipe_name, r->file_type);
		return;
	}
	if (r->recipe_name) {
		qa_sb_printf(b, " Recipe: %zu %s from llama.cpp's %s plan (general.file_type %" PRIu32 ")",
		          r->recipe_deviations, qa_report_plural(r->recipe_deviations, "tensor deviates", "tensors deviate"),
		          r->recipe_name, r->file_type);
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_diff_tensor *t = &r->tensors[i];
			if (t->in_plan && t->recipe_type != t->type) {
				qa_sb_puts(b, ", e.g. ");
				qa_escape_name(b, md, t->name);
				qa_sb_printf(b, " is %s where the plan gives %s", qa_type_name(t->type),
				          qa_type_name(t->recipe_type));
				if (t->rule[0]) {
					qa_sb_puts(b, " (");
					if (md)
						qa_escape_md_str(b, t->rule);
					else
						qa_escape_term_str(b, t->rule);
					qa_sb_putc(b, ')');
				}
				break;
			}
		}
		if (r->pure_matches)
			qa_sb_printf(b, "; the types match pure %s instead (llama-quantize --pure)", qa_type_name(r->pure_type));
		qa_sb_putc(b, '.');
		return;
	}
	if (r->pure_matches) {
		qa_sb_printf(b, " Recipe: pure %s (llama-quantize --pure)", qa_type_name(r->pure_type));
		if (r->has_file_type)
			qa_sb_printf(b, "; general.file_type %" PRIu32 " has no plan quantaudit knows", r->file_type);
		qa_sb_putc(b, '.');
		return;
	}
	if (r->has_file_type)
		qa_sb_printf(b, " Recipe: general.file_type %" PRIu32 " is not a file type quantaudit can plan, "
		          "so tensor types were not checked.", r->file_type);
	else
		qa_sb_puts(b, " Recipe: the artifact has no general.file_type, so tensor types were not checked.");
}

/* " (by error: RMSE x.xx times ggml's under transposed, yy times under out,in)" */
static void evidence_item(struct qa_sb *b, const struct qa_diff_tensor *t)
{
	const struct qa_layout_errors *e = &t->layout_errors;
	qa_sb_printf(b, " (by error: RMSE ");
	sb_ratio(b, qa_forensics_ratio(e->rmse[t->layout], e->noise[t->layout]));
	qa_sb_printf(b, " times ggml's under %s", qa_forensics_layout_name(t->layout));
	if (e->tried[QA_LAYOUT_OUT_IN]) {
		qa_sb_puts(b, ", ");
		sb_ratio(b, qa_forensics_ratio(e->rmse[QA_LAYOUT_OUT_IN], e->noise[QA_LAYOUT_OUT_IN]));
		qa_sb_puts(b, " times under out,in");
	}
	qa_sb_putc(b, ')');
}

/* The importance matrix the artifact declares (without --imatrix), as one sentence. */
static void declared_sentence(struct qa_sb *b, const struct qa_diff_result *r, bool md)
{
	const struct qa_diff_imatrix_keys *m = &r->declared_imatrix;
	if (!m->declared || r->imatrix.given)
		return;
	qa_sb_puts(b, " Importance matrix: the artifact declares ");
	if (m->file)
		qa_escape_name(b, md, m->file);
	else
		qa_sb_puts(b, "one (no file name)");
	if (m->dataset) {
		qa_sb_puts(b, " (dataset ");
		qa_escape_name(b, md, m->dataset);
		qa_sb_putc(b, ')');
	}
	if (m->has_entries || m->has_chunks) {
		qa_sb_puts(b, ", ");
		if (m->has_entries)
			qa_sb_printf(b, "%" PRIu64 " %s", m->entries, qa_report_plural(m->entries, "entry", "entries"));
		if (m->has_entries && m->has_chunks)
			qa_sb_puts(b, ", ");
		if (m->has_chunks)
			qa_sb_printf(b, "%" PRIu64 " %s", m->chunks, qa_report_plural(m->chunks, "chunk", "chunks"));
	}
	qa_sb_printf(b, "; %zu %s the imatrix verdict", r->counts[QA_VERDICT_IMATRIX],
	          qa_report_plural(r->counts[QA_VERDICT_IMATRIX], "tensor gets", "tensors get"));
	qa_sb_puts(b, ". Re-run with --imatrix and that file to verify those tensors byte for byte.");
}

/* --imatrix: which matrix weighted the re-quantization, and how many tensors it touched. */
static void imatrix_sentence(struct qa_sb *b, bool md, const struct qa_diff_result *r)
{
	const struct qa_diff_imatrix_given *g = &r->imatrix;
	char hex[65];
	if (!g->given)
		return;
	qa_manifest_hex(g->sha256, hex);
	hex[16] = '\0';
	qa_sb_puts(b, " Importance matrix: ");
	qa_escape_name(b, md, g->path);
	qa_sb_printf(b, " (%s, ", qa_imatrix_format_name(g->format));
	if (g->dataset) {
		qa_sb_puts(b, "dataset ");
		qa_escape_name(b, md, g->dataset);
		qa_sb_puts(b, ", ");
	}
	qa_sb_printf(b, "%llu %s, SHA-256 %s...): %zu %s re-quantized with its weights, as llama-quantize "
	             "--imatrix does; the others without.", (unsigned long long)g->entries,
	             qa_report_plural(g->entries, "entry", "entries"), hex, g->weighted_tensors,
	             qa_report_plural(g->weighted_tensors, "tensor was", "tensors were"));
}

/*
 * The per-expert layouts of 3-D expert tensors that diverged under out,in,
 * grouped: " Per expert: experts 2,5 of blk.1.ffn_down_exps.weight are
 * transposed; expert 4 matches no layout (the other 5 match out,in)."
 */
static void expert_sentence(struct qa_sb *b, const struct qa_diff_result *r, bool md)
{
	static const int groups[] = { QA_LAYOUT_TRANSPOSED, QA_LAYOUT_IN_OUT, -1 };
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		if (!t->n_experts)
			continue;
		qa_sb_puts(b, " Per expert:");
		size_t listed = 0;
		for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
			size_t c = 0;
			for (uint32_t x = 0; x < t->n_experts; x++)
				c += t->expert_layout[x] == groups[g];
			if (!c)
				continue;
			qa_sb_printf(b, "%s %s ", listed ? ";" : "", c == 1 ? "expert" : "experts");
			size_t k = 0;
			for (uint32_t x = 0; x < t->n_experts; x++)
				if (t->expert_layout[x] == groups[g])
					qa_sb_printf(b, "%s%u", k++ ? "," : "", (unsigned)x);
			qa_sb_puts(b, " of ");
			qa_escape_name(b, md, t->name);
			qa_sb_puts(b, groups[g] == QA_LAYOUT_TRANSPOSED ? (c == 1 ? " is transposed" : " are transposed")
			            : groups[g] == QA_LAYOUT_IN_OUT ? (c == 1 ? " is read in,out (layout-swap)"
			                                                      : " are read in,out (layout-swap)")
			            : (c == 1 ? " matches no layout" : " match no layout"));
			listed += c;
		}
		qa_sb_printf(b, " (the other %zu %s out,in).", (size_t)t->n_experts - listed,
		             t->n_experts - listed == 1 ? "matches" : "match");
	}
}

static void diff_verdict(struct qa_sb *b, const struct qa_diff_result *r, bool md, const struct qa_report_policy *pol)
{
	size_t n = r->n, same = r->counts[QA_VERDICT_IDENTICAL];
	size_t findings = n - same - r->counts[QA_VERDICT_IMATRIX];
	if (pol) {
		/* the policy decides PASS or FAIL; the audit's own result follows as findings */
		qa_report_policy_sentence(b, pol, md);
		qa_sb_putc(b, ' ');
	}
	if (n == 0) {
		qa_sb_printf(b, "%s nothing to compare: the artifact and the reference have no tensors.",
		             pol ? "Findings:" : "PASS:");
	} else if (r->pass) {
		qa_sb_printf(b, "%s all %zu %s byte-identical to ggml's %s of the reference "
		          "(the SHA-256 of every 256-element block matches).", pol ? "Findings:" : "PASS:", n,
		          qa_report_plural(n, "tensor is", "tensors are"),
		          r->imatrix.given ? "quantization" : "reference quantization");
	} else {
		qa_sb_puts(b, pol ? "Findings:" : findings ? "FAIL:" : "NOT VERIFIED:");
		bool first = true;
		for (size_t k = 0; k < sizeof kind_order / sizeof kind_order[0]; k++) {
			enum qa_verdict v = kind_order[k];
			size_t c = r->counts[v];
			if (!c)
				continue;
			if (first)
				qa_sb_printf(b, " %zu of %zu %s %s: ", c, n, qa_report_plural(n, "tensor", "tensors"), kind_verb(v, c));
			else
				qa_sb_printf(b, " %zu %s: ", c, kind_verb(v, c));
			first = false;
			size_t named = 0;
			for (size_t i = 0; i < n && named < QA_REPORT_LIST_MAX; i++) {
				const struct qa_diff_tensor *t = &r->tensors[i];
				if (t->verdict != v)
					continue;
				if (named)
					qa_sb_puts(b, v == QA_VERDICT_DIVERGENT ? "; " : ", ");
				if (v == QA_VERDICT_DIVERGENT) {
					divergent_item(b, md, t);
				} else {
					qa_escape_name(b, md, t->name);
					if (v == QA_VERDICT_UNSUPPORTED || v == QA_VERDICT_NEEDS_IMATRIX)
						qa_sb_printf(b, " (%s)", qa_type_name(t->type));
					else if (t->evidence == QA_EVIDENCE_ERROR)
						evidence_item(b, t);
					else if (t->evidence == QA_EVIDENCE_BYTES && v != QA_VERDICT_IDENTICAL)
						qa_sb_puts(b, " (by bytes)");
				}
				named++;
			}
			if (c > named)
				qa_sb_printf(b, "; and %zu more", c - named);
			qa_sb_putc(b, '.');
		}
		if (same)
			qa_sb_printf(b, " The other %zu %s byte-identical to ggml's reference quantization.", same,
			          qa_report_plural(same, "is", "are"));
		else
			qa_sb_puts(b, " No tensor is byte-identical to ggml's reference quantization.");
	}
	expert_sentence(b, r, md);
	declared_sentence(b, r, md);
	if (r->different_quantizer) {
		qa_sb_printf(b, " Inference: %s %zu quantized %s that %s in most blocks, with %s within 25%% of "
		          "ggml's own re-quantization (RMSE ratio min ", r->quantizer_n == 1 ? "the" : "all",
		          r->quantizer_n, qa_report_plural(r->quantizer_n, "tensor", "tensors"),
		          r->quantizer_n == 1 ? "diverges does so" : "diverge do so",
		          r->quantizer_n == 1 ? "an error" : "errors");
		sb_ratio(b, r->quantizer_min);
		qa_sb_puts(b, ", median ");
		sb_ratio(b, r->quantizer_median);
		qa_sb_puts(b, ", max ");
		sb_ratio(b, r->quantizer_max);
		qa_sb_puts(b, "): a different quantizer (for example importance-weighted), not damage.");
	} else {
		size_t worse = 0;
		const struct qa_diff_tensor *worst = NULL;
		double wr = 0;
		for (size_t i = 0; i < n; i++) {
			const struct qa_diff_tensor *t = &r->tensors[i];
			double q = rmse_ratio(t);
			if (t->verdict != QA_VERDICT_DIVERGENT || isnan(q) || !(q > 1.25))
				continue;
			worse++;
			if (!worst || q > wr) {
				worst = t;
				wr = q;
			}
		}
		if (worse) {
			qa_sb_printf(b, " Inference: the error of %zu divergent %s exceeds ggml's own re-quantization by more "
			          "than 25%% (worst: ", worse, qa_report_plural(worse, "tensor", "tensors"));
			qa_escape_name(b, md, worst->name);
			qa_sb_puts(b, ", ratio ");
			sb_ratio(b, wr);
			qa_sb_puts(b, "): damage or a worse quantizer, not a different rounding.");
		}
	}
	imatrix_sentence(b, md, r);
	recipe_sentence(b, md, r);
}

/* The errors under each layout tried, for tensors judged by error or left
 * divergent: one line each (plain text) or one table row each (markdown). */
static void layout_error_lines(struct qa_sb *b, const struct qa_diff_result *r, bool md)
{
	bool any = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		if (!t->has_layout_errors ||
		    (t->verdict != QA_VERDICT_DIVERGENT && t->evidence != QA_EVIDENCE_ERROR))
			continue;
		if (!any) {
			if (md)
				qa_sb_puts(b, "| tensor | verdict | out,in | in,out | transposed | unpermuted |\n"
				           "|---|---|---:|---:|---:|---:|\n");
			else
				qa_sb_puts(b, "Layout errors (artifact RMSE under each layout tried, and its ratio to ggml's "
				           "re-quantization under the same layout):\n");
			any = true;
		}
		if (md) {
			qa_sb_puts(b, "| ");
			qa_escape_code_str(b, t->name);
			qa_sb_printf(b, " | %s |", qa_verdict_name(t->verdict));
		} else {
			qa_sb_puts(b, "  ");
			qa_escape_term_str(b, t->name);
			qa_sb_printf(b, " (%s):", qa_verdict_name(t->verdict));
		}
		for (int l = 0; l < QA_FX_LAYOUTS; l++) {
			const struct qa_layout_errors *e = &t->layout_errors;
			if (!e->tried[l]) {
				if (md)
					qa_sb_puts(b, " - |");
				continue;
			}
			if (md) {
				qa_sb_printf(b, " %.3e (", e->rmse[l]);
				sb_ratio(b, qa_forensics_ratio(e->rmse[l], e->noise[l]));
				qa_sb_puts(b, "x) |");
			} else {
				qa_sb_printf(b, " %s %.3e (", qa_forensics_layout_name(l), e->rmse[l]);
				sb_ratio(b, qa_forensics_ratio(e->rmse[l], e->noise[l]));
				qa_sb_puts(b, "x)");
			}
		}
		qa_sb_putc(b, '\n');
	}
}

/* The recipe comparison (diff --compare-recipe): one row per tensor class and
 * the whole model, as a markdown table or aligned plain text. */
static void recipe_cmp_table(struct qa_sb *b, const struct qa_recipe_cmp *c, bool md)
{
	if (md) {
		qa_sb_puts(b, "| class | tensors | artifact RMSE | artifact bpw |");
		for (size_t k = 0; k < c->n_recipes; k++)
			qa_sb_printf(b, " %s RMSE | %s bpw | artifact / %s |", qa_recipe_name(c->recipes[k]),
			             qa_recipe_name(c->recipes[k]), qa_recipe_name(c->recipes[k]));
		qa_sb_puts(b, "\n|---|---:|---:|---:|");
		for (size_t k = 0; k < c->n_recipes; k++)
			qa_sb_puts(b, "---:|---:|---:|");
		qa_sb_putc(b, '\n');
	} else {
		qa_sb_printf(b, "%-16s %7s %10s %6s", "class", "tensors", "artifact", "bpw");
		for (size_t k = 0; k < c->n_recipes; k++)
			qa_sb_printf(b, " | %-10s %6s %7s", qa_recipe_name(c->recipes[k]), "bpw", "ratio");
		qa_sb_putc(b, '\n');
	}
	for (size_t j = 0; j < c->n_rows; j++) {
		const struct qa_recipe_cmp_row *row = &c->rows[j];
		if (md) {
			qa_sb_puts(b, "| ");
			if (strcmp(row->cls, "all") == 0 && j == c->n_rows - 1)
				qa_sb_puts(b, "**whole model**");
			else
				qa_escape_code_str(b, row->cls);
			qa_sb_printf(b, " | %zu | %.4e | %.3f |", row->tensors, row->art_rmse, row->art_bpw);
			for (size_t k = 0; k < c->n_recipes; k++) {
				qa_sb_printf(b, " %.4e | %.3f | ", row->rmse[k], row->bpw[k]);
				sb_ratio(b, qa_forensics_ratio(row->art_rmse, row->rmse[k]));
				qa_sb_puts(b, " |");
			}
			qa_sb_putc(b, '\n');
		} else {
			struct qa_sb name = { 0 };
			qa_escape_term_str(&name, j == c->n_rows - 1 ? "(whole model)" : row->cls);
			qa_sb_printf(b, "%-16s %7zu %10.3e %6.3f", name.p ? name.p : "", row->tensors, row->art_rmse,
			             row->art_bpw);
			qa_sb_free(&name);
			for (size_t k = 0; k < c->n_recipes; k++) {
				struct qa_sb q = { 0 };
				sb_ratio(&q, qa_forensics_ratio(row->art_rmse, row->rmse[k]));
				qa_sb_printf(b, " | %-10.3e %6.3f %7s", row->rmse[k], row->bpw[k], q.p ? q.p : "-");
				qa_sb_free(&q);
			}
			qa_sb_putc(b, '\n');
		}
	}
}

void qa_report_diff_recipe_cmp(const struct qa_diff_result *r, char *buf, size_t cap)
{
	struct qa_sb b = { 0 };
	if (r && r->recipe_cmp) {
		qa_sb_puts(&b, "Recipe comparison (RMSE against the reference and bits per weight of the artifact and of "
		               "ggml's quantization under each llama.cpp recipe; ratio = artifact RMSE / recipe RMSE):\n");
		recipe_cmp_table(&b, r->recipe_cmp, false);
	}
	qa_sb_copy_out(&b, buf, cap);
	qa_sb_free(&b);
}

/* Clustered bars: RMSE per tensor class, the artifact next to each recipe. */
static void plot_recipes(struct qa_report_plotter *pl, struct qa_sb *md, const struct qa_recipe_cmp *c)
{
	static const char *const colours[] = { "#c0392b", "#2e86c1", "#28b463", "#d68910", "#7d3c98",
	                                       "#17a589", "#566573", "#cb4335", "#1f618d" };
	struct qa_sb s = { 0 };
	char label[64];
	qa_sb_puts(&s, "$cmp << EOD\n");
	for (size_t j = 0; j < c->n_rows; j++) {
		const struct qa_recipe_cmp_row *row = &c->rows[j];
		qa_sb_printf(&s, "\"%s\" %.6e", j == c->n_rows - 1 ? "whole model" :
		             qa_plot_label(row->cls, label, sizeof label), row->art_rmse);
		for (size_t k = 0; k < c->n_recipes; k++)
			qa_sb_printf(&s, " %.6e", row->rmse[k]);
		qa_sb_putc(&s, '\n');
	}
	qa_sb_puts(&s, "EOD\n"
	               "set title \"RMSE per tensor class: the artifact and llama.cpp's recipes (ggml's quantizer)\"\n"
	               "set ylabel \"RMSE against the reference\"\n"
	               "set format y \"%.1e\"\n"
	               "set style data histograms\n"
	               "set style histogram clustered gap 1\n"
	               "set style fill solid 0.85 border -1\n"
	               "set boxwidth 0.9\n"
	               "set xtics rotate by -35 nomirror\n"
	               "set grid ytics\n"
	               "set key outside right top box noenhanced\n"
	               "set xtics noenhanced\n"
	               "set yrange [0:*]\n");
	qa_sb_printf(&s, "plot $cmp using 2:xtic(1) title \"artifact\" lc rgb \"%s\"", colours[0]);
	for (size_t k = 0; k < c->n_recipes; k++)
		qa_sb_printf(&s, ", \\\n     $cmp using %zu title \"%s\" lc rgb \"%s\"", k + 3,
		             qa_plot_label(qa_recipe_name(c->recipes[k]), label, sizeof label), colours[(k + 1) % 9]);
	qa_sb_putc(&s, '\n');
	qa_report_plot_one(pl, md, "recipes", "RMSE per tensor class against llama.cpp's recipes", &s);
	qa_sb_free(&s);
}

void qa_report_diff_layout_errors(const struct qa_diff_result *r, char *buf, size_t cap)
{
	struct qa_sb b = { 0 };
	if (r)
		layout_error_lines(&b, r, false);
	qa_sb_copy_out(&b, buf, cap);
	qa_sb_free(&b);
}

void qa_report_diff_verdict(const struct qa_diff_result *r, char *buf, size_t cap)
{
	qa_report_diff_verdict_policy(r, NULL, buf, cap);
}

void qa_report_diff_verdict_policy(const struct qa_diff_result *r, const struct qa_report_policy *pol, char *buf,
                                   size_t cap)
{
	struct qa_sb b = { 0 };
	if (r)
		diff_verdict(&b, r, false, pol);
	qa_sb_copy_out(&b, buf, cap);
	qa_sb_free(&b);
}
static double n_elems(const struct qa_diff_tensor *t)
{
	double n = 1;
	for (uint32_t k = 0; k < t->n_dims && k < 4; k++)
		n *= (double)t->ne[k];
	return n;
}

/* ------------------------------------------------------------------ diff plots */

/* A layer's RMSE: the root of the element-weighted mean square of its
 * quantized tensors' RMSEs. */
static void plot_rmse(struct qa_report_plotter *pl, struct qa_sb *md, const struct qa_diff_result *r)
{
	int max_layer = -1;
	for (size_t i = 0; i < r->n; i++)
		if (r->tensors[i].layer > max_layer && r->tensors[i].has_error && r->tensors[i].quantized)
			max_layer = r->tensors[i].layer;
	if (max_layer < 0) {
		qa_sb_puts(md, "(plot not generated: no layer tensor has error figures)\n\n");
		return;
	}
	size_t L = (size_t)max_layer + 1;
	double *acc = calloc(L * 3, sizeof *acc);
	if (!acc) {
		md->oom = true;
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		if (t->layer < 0 || !t->has_error || !t->quantized)
			continue;
		double w = n_elems(t);
		acc[3 * t->layer] += w * t->rmse * t->rmse;
		acc[3 * t->layer + 1] += w * t->requant_rmse * t->requant_rmse;
		acc[3 * t->layer + 2] += w;
	}
	bool positive = true;
	struct qa_sb s = { 0 };
	qa_sb_puts(&s, "$rmse << EOD\n");
	for (size_t l = 0; l < L; l++) {
		if (acc[3 * l + 2] <= 0)
			continue;
		double a = sqrt(acc[3 * l] / acc[3 * l + 2]), q = sqrt(acc[3 * l + 1] / acc[3 * l + 2]);
		if (!(a > 0) || !(q > 0))
			positive = false;
		qa_sb_printf(&s, "%zu %.6e %.6e\n", l, a, q);
	}
	qa_sb_puts(&s, "EOD\n");
	qa_sb_puts(&s, "set title \"RMSE per layer: the artifact and ggml's re-quantization, both against the reference\"\n"
	            "set xlabel \"layer\"\n"
	            "set ylabel \"RMSE (element-weighted over the layer's quantized tensors)\"\n"
	            "set format y \"%.1e\"\n"
	            "set grid xtics ytics mytics\n"
	            "set key top left box opaque\n");
	qa_sb_printf(&s, "set xrange [-0.5:%zu.5]\n", L - 1);
	if (positive)
		qa_sb_puts(&s, "set logscale y\nset mytics 10\n");
	if (L <= 40)
		qa_sb_puts(&s, "set xtics 1\n");
	qa_sb_puts(&s, "plot $rmse using 1:3 with linespoints lw 5 pt 6 ps 1.8 lc rgb \"#85c1e9\" "
	            "title \"ggml re-quantization\", \\\n"
	            "     $rmse using 1:2 with linespoints lw 1.5 pt 7 ps 0.8 lc rgb \"#c0392b\" title \"artifact\"\n");
	free(acc);
	qa_report_plot_one(pl, md, "rmse", "RMSE per layer", &s);
	qa_sb_free(&s);
}

static bool diverges_somewhere(const struct qa_diff_tensor *t)
{
	return t->divergence && t->divergent_blocks > 0 && t->blocks > 0 &&
	       (t->verdict == QA_VERDICT_DIVERGENT || t->verdict == QA_VERDICT_LAYOUT_SWAP ||
	        t->verdict == QA_VERDICT_TRANSPOSED || t->verdict == QA_VERDICT_UNPERMUTED ||
	        t->verdict == QA_VERDICT_IMATRIX);
}

#define DIV_BINS 300
#define DIV_LABELLED_ROWS 30

static void plot_divergence(struct qa_report_plotter *pl, struct qa_sb *md, const struct qa_diff_result *r)
{
	size_t rows = 0;
	uint64_t maxb = 0, w;
	for (size_t i = 0; i < r->n; i++)
		if (diverges_somewhere(&r->tensors[i])) {
			rows++;
			if (r->tensors[i].blocks > maxb)
				maxb = r->tensors[i].blocks;
		}
	if (rows == 0) {
		qa_sb_puts(md, "(no divergent blocks: nothing to map)\n\n");
		return;
	}
	/* one cell width for all rows, so that cells are comparable */
	w = qa_report_ceil_div(maxb, DIV_BINS);
	/* cells at least ~1/125 of the axis wide, so that one divergent block shows */
	double min_half = (double)maxb / 250.0;
	struct qa_sb s = { 0 };
	qa_sb_puts(&s, "$div << EOD\n");
	size_t row = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		if (!diverges_somewhere(t))
			continue;
		for (uint64_t b0 = 0; b0 < t->blocks; b0 += w) {
			uint64_t b1 = b0 + w < t->blocks ? b0 + w : t->blocks, hit = 0;
			for (uint64_t k = b0; k < b1; k++)
				if (t->divergence[k / 8] & (1u << (k % 8)))
					hit++;
			if (hit)
			{
				double half = (double)(b1 - b0) * 0.51;
				qa_sb_printf(&s, "%.1f %zu %.2f 0.42 %.4f\n", (double)b0 + (double)(b1 - b0) / 2.0, row,
				          half > min_half ? half : min_half, (double)hit / (double)(b1 - b0));
			}
		}
		row++;
	}
	qa_sb_puts(&s, "EOD\n");
	qa_sb_puts(&s, "set title \"Divergent 256-element blocks against ggml's out,in re-quantization\"\n"
	            "set xlabel \"block index (256 elements per block)\"\n"
	            "set cblabel \"fraction of blocks in the cell that diverge\"\n"
	            "set cbrange [0:1]\n"
	            "set palette defined (0 \"#fdae6b\", 0.5 \"#e6550d\", 1 \"#67000d\")\n"
	            "set style fill solid 1.0 noborder\n"
	            "set grid xtics\n"
	            "unset key\n");
	qa_sb_printf(&s, "set xrange [0:%" PRIu64 "]\nset yrange [%zu.5:-0.5]\n", maxb, rows - 1);
	if (rows <= DIV_LABELLED_ROWS) {
		qa_sb_puts(&s, "set ylabel \"tensor\"\nset ytics (");
		row = 0;
		for (size_t i = 0; i < r->n; i++) {
			if (!diverges_somewhere(&r->tensors[i]))
				continue;
			char lab[128];
			qa_sb_printf(&s, "%s\"%s\" %zu", row ? ", " : "", qa_plot_label(r->tensors[i].name, lab, sizeof lab),
			          row);
			row++;
		}
		qa_sb_puts(&s, ")\n");
	} else {
		qa_sb_puts(&s, "set ylabel \"divergent tensor (order of the per-tensor table)\"\n");
	}
	qa_sb_puts(&s, "plot $div using 1:2:3:4:5 with boxxyerror fillcolor palette notitle\n");
	qa_report_plot_one(pl, md, "divergence", "Divergence map", &s);
	qa_sb_free(&s);
}

static void plot_types(struct qa_report_plotter *pl, struct qa_sb *md, const struct qa_diff_result *r)
{
	if (r->n == 0) {
		qa_sb_puts(md, "(plot not generated: no tensors)\n\n");
		return;
	}
	struct qa_report_classes cl;
	size_t *ci;
	if (!qa_report_classify(r->n, diff_name_at, r, &cl, &ci)) {
		md->oom = true;
		return;
	}
	int max_layer = -1;
	bool globals = false;
	double lo = 1e9, hi = -1e9;
	for (size_t i = 0; i < r->n; i++) {
		if (r->tensors[i].layer > max_layer)
			max_layer = r->tensors[i].layer;
		if (r->tensors[i].layer < 0)
			globals = true;
		const struct qa_type_info *ti = qa_type_get(r->tensors[i].type);
		if (ti) {
			double bpw = qa_type_bpw(ti);
			lo = bpw < lo ? bpw : lo;
			hi = bpw > hi ? bpw : hi;
		}
	}
	if (hi < lo) {
		lo = 4;
		hi = 32;
	}
	if (hi / lo < 1.5) {
		lo /= 1.25;
		hi *= 1.25;
	}
	size_t L = (size_t)(max_layer + 1);
	size_t cols = L + (globals ? 1 : 0);
	struct qa_sb s = { 0 };
	qa_sb_puts(&s, "$types << EOD\n");
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		const struct qa_type_info *ti = qa_type_get(t->type);
		if (!ti)
			continue;
		size_t x = t->layer >= 0 ? (size_t)t->layer : L;
		qa_sb_printf(&s, "%zu %zu %.4f \"%s\"\n", x, ci[i], qa_type_bpw(ti), ti->name);
	}
	qa_sb_puts(&s, "EOD\n");
	qa_sb_puts(&s, "set title \"Tensor types per layer, coloured by bits per weight\"\n"
	            "set xlabel \"layer\"\nset ylabel \"tensor class\"\n"
	            "set cblabel \"bits per weight\"\n"
	            "set logscale cb 2\n"
	            "set palette defined (0 \"#fed976\", 0.2 \"#fd8d3c\", 0.4 \"#e31a1c\", 0.7 \"#6a51a3\", "
	            "1 \"#08306b\")\n"
	            "set style fill solid 1.0 border lc rgb \"#ffffff\"\n"
	            "unset key\n");
	qa_sb_printf(&s, "set cbrange [%.3f:%.3f]\nset xrange [-0.5:%zu.5]\nset yrange [%zu.5:-0.5]\n", lo, hi, cols - 1,
	          cl.n - 1);
	/* colour-bar tics: one per type present, named */
	qa_sb_puts(&s, "set cbtics (");
	bool seen_type[QA_TYPE_COUNT] = { false };
	bool any_cb = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_type_info *ti = qa_type_get(r->tensors[i].type);
		if (!ti || ti->id >= QA_TYPE_COUNT || seen_type[ti->id])
			continue;
		seen_type[ti->id] = true;
		qa_sb_printf(&s, "%s\"%s %.2f\" %.4f", any_cb ? ", " : "", ti->name, qa_type_bpw(ti), qa_type_bpw(ti));
		any_cb = true;
	}
	qa_sb_puts(&s, ")\n");
	qa_sb_puts(&s, "set ytics (");
	for (size_t k = 0; k < cl.n; k++) {
		char lab[80];
		qa_sb_printf(&s, "%s\"%s\" %zu", k ? ", " : "", qa_plot_label(cl.name[k], lab, sizeof lab), k);
	}
	qa_sb_puts(&s, ")\n");
	size_t step = cols <= 40 ? 1 : qa_report_ceil_div(cols, 40);
	qa_sb_puts(&s, "set xtics (");
	bool any = false;
	for (size_t l = 0; l < L; l += step) {
		qa_sb_printf(&s, "%s\"%zu\" %zu", any ? ", " : "", l, l);
		any = true;
	}
	if (globals)
		qa_sb_printf(&s, "%s\"other\" %zu", any ? ", " : "", L);
	qa_sb_puts(&s, ")\n");
	qa_sb_puts(&s, "plot $types using 1:2:(0.5):(0.5):3 with boxxyerror fillcolor palette notitle");
	if (cols <= 16)
		qa_sb_puts(&s, ", \\\n     $types using 1:2:4 with labels font \",8\" notitle");
	qa_sb_puts(&s, "\n");
	free(cl.name);
	free(ci);
	qa_report_plot_one(pl, md, "types", "Type map", &s);
	qa_sb_free(&s);
}
/* ------------------------------------------------------------------ diff report */

static void diff_inputs(struct qa_sb *b, const struct qa_diff_result *r)
{
	qa_sb_puts(b, "## Inputs\n\n| role | path | size (bytes) | SHA-256 |\n|---|---|---:|---|\n| reference | ");
	qa_escape_code_str(b, r->reference_path ? r->reference_path : "");
	qa_sb_printf(b, " | %" PRIu64 " | ", r->reference_size);
	if (r->no_digests)
		qa_sb_puts(b, "not computed");
	else
		qa_sb_hex(b, r->reference_sha256, QA_SHA256_LEN);
	qa_sb_puts(b, " |\n| artifact | ");
	qa_escape_code_str(b, r->artifact_path ? r->artifact_path : "");
	qa_sb_printf(b, " | %" PRIu64 " | ", r->artifact_size);
	if (r->no_digests)
		qa_sb_puts(b, "not computed");
	else
		qa_sb_hex(b, r->artifact_sha256, QA_SHA256_LEN);
	qa_sb_puts(b, " |\n\n");
	if (r->no_digests)
		qa_sb_puts(b, "The whole-file SHA-256s were not computed: this is a merge of shards run without "
		              "`--file-digests`.\n\n");
	if (r->arch[0]) {
		qa_sb_puts(b, "Architecture: ");
		qa_escape_code_str(b, r->arch);
		qa_sb_puts(b, ". ");
	}
	if (r->has_file_type)
		qa_sb_printf(b, "general.file_type: %" PRIu32 " (%s).", r->file_type,
		          r->recipe_name ? r->recipe_name : "no recipe quantaudit can plan");
	else
		qa_sb_puts(b, "general.file_type: not set.");
	qa_sb_printf(b, " Tensors audited: %zu.\n\n", r->n);
	const struct qa_diff_imatrix_given *g = &r->imatrix;
	if (g->given) {
		qa_sb_puts(b, "Importance matrix given (--imatrix): ");
		qa_escape_code_str(b, g->path);
		qa_sb_printf(b, " (%s), dataset ", qa_imatrix_format_name(g->format));
		if (g->dataset)
			qa_escape_code_str(b, g->dataset);
		else
			qa_sb_puts(b, "-");
		qa_sb_printf(b, ", %llu entries, SHA-256 ", (unsigned long long)g->entries);
		qa_sb_hex(b, g->sha256, QA_SHA256_LEN);
		qa_sb_printf(b, "; %zu %s re-quantized with its weights.\n\n", g->weighted_tensors,
		             qa_report_plural(g->weighted_tensors, "tensor was", "tensors were"));
	}
	const struct qa_diff_imatrix_keys *m = &r->declared_imatrix;
	if (m->declared) {
		qa_sb_puts(b, "Importance matrix declared by the artifact (quantize.imatrix.*): file ");
		if (m->file)
			qa_escape_code_str(b, m->file);
		else
			qa_sb_puts(b, "-");
		qa_sb_puts(b, ", dataset ");
		if (m->dataset)
			qa_escape_code_str(b, m->dataset);
		else
			qa_sb_puts(b, "-");
		if (m->has_entries)
			qa_sb_printf(b, ", entries_count %" PRIu64, m->entries);
		if (m->has_chunks)
			qa_sb_printf(b, ", chunks_count %" PRIu64, m->chunks);
		qa_sb_puts(b, ".\n\n");
	}
}

static const char *verdict_cell(enum qa_verdict v)
{
	switch (v) {
	case QA_VERDICT_LAYOUT_SWAP: return "layout-swap (shape-swap defect)";
	case QA_VERDICT_TRANSPOSED: return "transposed (transposed export)";
	case QA_VERDICT_UNPERMUTED: return "unpermuted (q/k rows without the rotary permutation)";
	case QA_VERDICT_IMATRIX: return "imatrix (declared importance matrix)";
	case QA_VERDICT_NEEDS_IMATRIX: return "needs-imatrix (type made only with an importance matrix)";
	default: return qa_verdict_name(v);
	}
}

static void diff_row(struct qa_sb *b, const struct qa_diff_tensor *t)
{
	qa_sb_puts(b, "| ");
	qa_escape_code_str(b, t->name);
	qa_sb_printf(b, " | %s | ", qa_type_name(t->type));
	if (t->in_plan)
		qa_sb_printf(b, "%s%s", qa_type_name(t->recipe_type), t->recipe_type != t->type ? " (deviation)" : "");
	else
		qa_sb_puts(b, "-");
	const char *ev = qa_forensics_evidence_name(t->evidence);
	qa_sb_printf(b, " | %s | %s | %s | %" PRIu64 " | ", verdict_cell(t->verdict),
	          t->layout >= 0 ? qa_forensics_layout_name(t->layout) : "-", ev ? ev : "-", t->blocks);
	bool counted = t->verdict != QA_VERDICT_MISSING && t->verdict != QA_VERDICT_EXTRA &&
	               t->verdict != QA_VERDICT_SHAPE_MISMATCH && t->verdict != QA_VERDICT_UNSUPPORTED &&
	               t->verdict != QA_VERDICT_NEEDS_IMATRIX;
	if (counted)
		qa_sb_printf(b, "%" PRIu64 " | ", t->divergent_blocks);
	else
		qa_sb_puts(b, "- | ");
	if (t->first_divergent != QA_NO_BLOCK && counted)
		qa_sb_printf(b, "%" PRIu64 " | ", t->first_divergent);
	else
		qa_sb_puts(b, "- | ");
	if (t->has_error)
		qa_sb_printf(b, "%.3e | %.3e |\n", t->rmse, t->requant_rmse);
	else
		qa_sb_puts(b, "- | - |\n");
}

static const char diff_table_head[] =
	"| tensor | type | recipe | verdict | layout | evidence | blocks | divergent | first divergent | rmse | requant rmse |\n"
	"|---|---|---|---|---|---|---:|---:|---:|---:|---:|\n";

static void diff_table(struct qa_sb *b, const struct qa_diff_result *r)
{
	qa_sb_puts(b, "## Per-tensor results\n\n");
	qa_sb_puts(b, "Blocks are 256-element blocks; \"divergent\" counts those whose SHA-256 differs from ggml's out,in "
	           "re-quantization; rmse is the artifact's error against the reference, requant rmse that of ggml's "
	           "re-quantization.\n\n");
	int max_layer = -1;
	size_t n_glob = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (r->tensors[i].layer > max_layer)
			max_layer = r->tensors[i].layer;
		if (r->tensors[i].layer < 0)
			n_glob++;
	}
	size_t n_layers = 0;
	for (int l = 0; l <= max_layer; l++)
		for (size_t i = 0; i < r->n; i++)
			if (r->tensors[i].layer == l) {
				n_layers++;
				break;
			}
	bool sub = n_layers > 8;
	if (n_glob) {
		if (sub)
			qa_sb_puts(b, "### Tensors outside the layers\n\n");
		qa_sb_puts(b, diff_table_head);
		for (size_t i = 0; i < r->n; i++)
			if (r->tensors[i].layer < 0)
				diff_row(b, &r->tensors[i]);
		if (sub)
			qa_sb_putc(b, '\n');
	} else if (!sub) {
		qa_sb_puts(b, diff_table_head);
	}
	for (int l = 0; l <= max_layer; l++) {
		bool first = true;
		for (size_t i = 0; i < r->n; i++) {
			if (r->tensors[i].layer != l)
				continue;
			if (first && sub)
				qa_sb_printf(b, "### Layer %d\n\n%s", l, diff_table_head);
			first = false;
			diff_row(b, &r->tensors[i]);
		}
		if (!first && sub)
			qa_sb_putc(b, '\n');
	}
	if (!sub)
		qa_sb_putc(b, '\n');
}

static void diff_findings(struct qa_sb *b, const struct qa_diff_result *r)
{
	qa_sb_puts(b, "## Findings per tensor class\n\n");
	if (r->n == 0) {
		qa_sb_puts(b, "No tensors.\n\n");
		return;
	}
	struct qa_report_classes cl;
	size_t *ci;
	if (!qa_report_classify(r->n, diff_name_at, r, &cl, &ci)) {
		b->oom = true;
		return;
	}
	qa_sb_puts(b, "| class | tensors | identical | imatrix | layout-swap | transposed | unpermuted | divergent | other | "
	           "divergent blocks | worst RMSE ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size_t k = 0; k < cl.n; k++) {
		size_t cnt[QA_VERDICT_COUNT] = { 0 }, tot = 0;
		uint64_t divb = 0;
		double worst = NAN;
		for (size_t i = 0; i < r->n; i++) {
			if (ci[i] != k)
				continue;
			const struct qa_diff_tensor *t = &r->tensors[i];
			tot++;
			if ((unsigned)t->verdict < QA_VERDICT_COUNT)
				cnt[t->verdict]++;
			if (t->verdict == QA_VERDICT_DIVERGENT)
				divb += t->divergent_blocks;
			double q = rmse_ratio(t);
			if (t->quantized && !isnan(q) && (isnan(worst) || q > worst))
				worst = q;
		}
		size_t other = cnt[QA_VERDICT_MISSING] + cnt[QA_VERDICT_EXTRA] + cnt[QA_VERDICT_SHAPE_MISMATCH] +
		               cnt[QA_VERDICT_UNSUPPORTED] + cnt[QA_VERDICT_NEEDS_IMATRIX];
		qa_sb_puts(b, "| ");
		qa_escape_code_str(b, cl.name[k]);
		qa_sb_printf(b, " | %zu | %zu | %zu | %zu | %zu | %zu | %zu | %zu | %" PRIu64 " | ", tot,
		          cnt[QA_VERDICT_IDENTICAL], cnt[QA_VERDICT_IMATRIX], cnt[QA_VERDICT_LAYOUT_SWAP],
		          cnt[QA_VERDICT_TRANSPOSED], cnt[QA_VERDICT_UNPERMUTED], cnt[QA_VERDICT_DIVERGENT], other, divb);
		sb_ratio(b, worst);
		qa_sb_puts(b, " |\n");
	}
	qa_sb_puts(b, "\nThe RMSE ratio is the artifact's RMSE over that of ggml's re-quantization (1.000: as good as the "
	           "reference quantizer; quantized tensors only).\n\n");
	/* one line per class with findings */
	bool any = false;
	for (size_t k = 0; k < cl.n; k++) {
		size_t bad = 0, tot = 0;
		for (size_t i = 0; i < r->n; i++)
			if (ci[i] == k) {
				tot++;
				bad += r->tensors[i].verdict != QA_VERDICT_IDENTICAL;
			}
		if (!bad)
			continue;
		any = true;
		qa_sb_puts(b, "- ");
		qa_escape_code_str(b, cl.name[k]);
		qa_sb_printf(b, ": %zu of %zu %s not identical:", bad, tot, qa_report_plural(tot, "tensor", "tensors"));
		size_t named = 0;
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_diff_tensor *t = &r->tensors[i];
			if (ci[i] != k || t->verdict == QA_VERDICT_IDENTICAL)
				continue;
			if (named == QA_REPORT_LIST_MAX) {
				qa_sb_printf(b, " and %zu more", bad - named);
				break;
			}
			qa_sb_puts(b, named ? "; " : " ");
			if (t->verdict == QA_VERDICT_DIVERGENT) {
				divergent_item(b, true, t);
			} else {
				qa_escape_code_str(b, t->name);
				qa_sb_printf(b, " is %s", verdict_cell(t->verdict));
				if (t->evidence == QA_EVIDENCE_ERROR)
					evidence_item(b, t);
			}
			named++;
		}
		qa_sb_puts(b, ".\n");
	}
	if (!any)
		qa_sb_puts(b, "Every tensor class is byte-identical to ggml's reference quantization.\n");
	qa_sb_putc(b, '\n');
	free(cl.name);
	free(ci);
}

static void diff_recipe(struct qa_sb *b, const struct qa_diff_result *r)
{
	qa_sb_puts(b, "## Recipe check\n\n");
	struct qa_sb s = { 0 };
	recipe_sentence(&s, true, r);
	if (s.p)
		qa_sb_puts(b, s.p + 1); /* drop the leading space */
	if (s.oom)
		b->oom = true;
	qa_sb_free(&s);
	qa_sb_puts(b, "\n\n");
	bool any = false;
	for (size_t i = 0; i < r->n; i++)
		any |= r->tensors[i].in_plan && r->tensors[i].recipe_type != r->tensors[i].type;
	if (r->recipe_name && any) {
		qa_sb_puts(b, "| tensor | artifact type | recipe type | rule |\n|---|---|---|---|\n");
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_diff_tensor *t = &r->tensors[i];
			if (!t->in_plan || t->recipe_type == t->type)
				continue;
			qa_sb_puts(b, "| ");
			qa_escape_code_str(b, t->name);
			qa_sb_printf(b, " | %s | %s | ", qa_type_name(t->type), qa_type_name(t->recipe_type));
			qa_escape_md_str(b, t->rule[0] ? t->rule : "-");
			qa_sb_puts(b, " |\n");
		}
		qa_sb_putc(b, '\n');
	}
}

enum qa_err qa_report_diff_write(const struct qa_diff_result *r, const struct qa_report_opts *o, char *note,
                                 size_t cap, struct qa_diag *d)
{
	if (note && cap)
		note[0] = '\0';
	if (!r || !o || !o->path || !*o->path)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "report: no result or path");
	const char *fmt = o->plot_format ? o->plot_format : "png";
	if (!qa_plot_format_ok(fmt))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "report: plot format is png or svg, not '%s'", fmt);
	enum qa_err e = qa_report_check_writable(o->path, d);
	if (e)
		return e;

	struct qa_report_plotter pl = { .fmt = fmt, .report = o->path };
	struct qa_sb plots = { 0 }, b = { 0 };
	qa_sb_puts(&plots, "## Plots\n\n### RMSE per layer\n\n");
	plot_rmse(&pl, &plots, r);
	qa_sb_puts(&plots, "### Divergence map\n\nEach row is a tensor with divergent blocks, each cell a run of blocks "
	                "coloured by the fraction that diverge.\n\n");
	plot_divergence(&pl, &plots, r);
	qa_sb_puts(&plots, "### Type map (bits per weight)\n\n");
	plot_types(&pl, &plots, r);

	char def_id[64] = "AUDIT-DIFF-";
	for (int i = 0; i < 4; i++)
		snprintf(def_id + 11 + 2 * i, 3, "%02X", r->artifact_sha256[i]);
	struct qa_sb title = { 0 };
	qa_sb_puts(&title, "Quantization audit of ");
	qa_sb_puts(&title, qa_report_base_name(r->artifact_path));
	qa_sb_puts(&title, " against ");
	qa_sb_puts(&title, qa_report_base_name(r->reference_path));
	bool only_imatrix = r->counts[QA_VERDICT_IDENTICAL] + r->counts[QA_VERDICT_IMATRIX] == r->n;
	const char *raw = r->pass ? "PASS" : only_imatrix ?
	                  "NOT VERIFIED — importance-weighted tensors (re-run with --imatrix)" : "FAIL — findings";
	struct qa_sb status = { 0 };
	if (o->policy)
		qa_report_policy_status(&status, o->policy, raw);
	qa_report_header(&b, o, title.p ? title.p : "Quantization audit", def_id,
	                 o->policy && status.p ? status.p : raw);
	if (status.oom)
		b.oom = true;
	qa_sb_free(&status);
	qa_sb_free(&title);

	qa_sb_puts(&b, "## TL;DR\n\n");
	diff_verdict(&b, r, true, o->policy);
	qa_sb_puts(&b, "\n\n");
	diff_inputs(&b, r);

	qa_sb_puts(&b, "## Mechanism\n\n"
	            "Every reference tensor was read as f32 and re-quantized to the artifact tensor's type with a "
	            "bit-exact reimplementation of ggml's reference quantizer (no importance matrix). Both sides were cut "
	            "into blocks of 256 elements (one k-quant super-block, eight 32-element blocks of the legacy types) "
	            "and each block was digested with SHA-256, so a difference is located to a block, not just detected. "
	            "Three layouts of each 2-D weight W ([out, in]) were tried, in order: out,in (what GGUF expects), "
	            "in,out (the shape-swap defect of AUDIT-Q4K-SHAPE-001: the flat data read as in rows of out values, "
	            "each row zero-padded to a whole block) and transposed (W transposed). A tensor is identical when "
	            "its out,in blocks all match; the first other layout that matches names the defect. Errors are the "
	            "RMSE and maximum absolute error of the dequantized artifact and of the re-quantization against the "
	            "reference weights. The recipe check compares every tensor's type with the type llama.cpp's "
	            "llama-quantize would choose for the artifact's general.file_type.\n\n");
	qa_sb_printf(&b, "For llama-family checkpoints a fourth layout, unpermuted, re-quantizes attn_q and attn_k from the "
	              "checkpoint's rows without the rotary permutation llama.cpp's converter applies. When the bytes "
	              "match no layout, the dequantized artifact is measured against the reference arranged as each "
	              "layout (evidence \"error\"): a layout other than out,in whose RMSE is at most %.2f times that "
	              "of ggml's re-quantization under the same layout, while out,in is more than %.2f times, names "
	              "the defect; \"bytes\" means every block digest matched. When the artifact declares an "
	              "importance matrix (quantize.imatrix.*), a tensor whose blocks mostly diverge and whose RMSE is "
	              "%.2f to %.2f times that of ggml's unweighted re-quantization gets the verdict imatrix: the band "
	              "importance weighting produces, measured on artifacts written by llama-quantize --imatrix. Only "
	              "--imatrix with the matrix itself verifies such tensors byte for byte.\n\n",
	          QA_FX_NOISE_HI, QA_FX_FAR, QA_FX_IMATRIX_LO, QA_FX_IMATRIX_HI);
	diff_findings(&b, r);
	{
		struct qa_sb le = { 0 };
		layout_error_lines(&le, r, true);
		if (le.len) {
			qa_sb_puts(&b, "## Layouts by error\n\nArtifact RMSE against the reference arranged as each layout, "
			            "with its ratio to the RMSE of ggml's re-quantization under that layout (tensors judged "
			            "by error or left divergent; - where the layout was not tried).\n\n");
			qa_sb_putn(&b, le.p, le.len);
			qa_sb_putc(&b, '\n');
		}
		if (le.oom)
			b.oom = true;
		qa_sb_free(&le);
	}
	diff_table(&b, r);
	diff_recipe(&b, r);
	if (r->recipe_cmp) {
		qa_sb_puts(&b, "## Recipe comparison\n\nThe reference re-quantized under each llama.cpp recipe named with "
		               "--compare-recipe (llama.cpp's type plan, ggml's quantizer), against the artifact: RMSE "
		               "against the reference (element-weighted over the class's tensors) and bits per weight, over "
		               "the tensors the artifact quantizes with the reference's shape. A ratio above 1 means the "
		               "artifact is further from the reference than that recipe; a recipe's lower RMSE bought with "
		               "more bits per weight is a recipe difference, a higher RMSE at the same type a quantizer "
		               "difference.\n\n");
		recipe_cmp_table(&b, r->recipe_cmp, true);
		qa_sb_putc(&b, '\n');
		plot_recipes(&pl, &b, r->recipe_cmp);
	}
	if (plots.p)
		qa_sb_puts(&b, plots.p);
	if (plots.oom)
		b.oom = true;
	qa_sb_free(&plots);
	qa_report_falsifier(&b, o, o->policy ?
	                 "Re-running this command on the inputs above (same SHA-256) must reproduce every verdict and "
	                 "block count of this report; exit status 0 means PASS under the policy, 1 FAIL under it." :
	                 "Re-running this command on the inputs above (same SHA-256) must reproduce every verdict and "
	                 "block count of this report; exit status 0 means PASS, 1 findings.");
	qa_report_environment(&b, o, &pl, "diff");
	e = qa_report_write_atomic(o->path, &b, d);
	qa_sb_free(&b);
	if (e == QA_OK)
		qa_report_plot_note(&pl, note, cap);
	return e;
}
