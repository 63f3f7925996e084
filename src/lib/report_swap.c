/*
 * report_swap.c - the shape-swap report and verdict: the one-paragraph verdict, the
 * mechanism, findings, tables, claims section and plot of shape-swap results.
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

/* ------------------------------------------------------------------ swap verdict */

static const char *swap_name_at(const void *r, size_t i)
{
	return ((const struct qa_swap_result *)r)->tensors[i].name;
}

static void swap_totals(const struct qa_swap_result *r, uint64_t blocks[2], uint64_t bytes[2])
{
	blocks[0] = blocks[1] = bytes[0] = bytes[1] = 0;
	for (size_t i = 0; i < r->n; i++)
		for (int l = 0; l < 2; l++) {
			blocks[l] += r->tensors[i].blocks[l];
			bytes[l] += r->tensors[i].bytes[l];
		}
}

/* Mixture-of-experts models: the 3-D expert tensors count among the 2-D
 * weights once each, their slices swapped one by one (one expert's matrix
 * each). */
static void swap_expert_sentence(struct qa_sb *b, const struct qa_swap_result *const *res, size_t n)
{
	size_t tensors = 0;
	uint64_t slices = 0, divergent = 0;
	for (size_t m = 0; m < n; m++)
		for (size_t i = 0; res[m] && i < res[m]->n; i++)
			if (res[m]->tensors[i].experts > 1) {
				tensors++;
				slices += res[m]->tensors[i].experts;
				divergent += res[m]->tensors[i].divergent_experts;
			}
	if (tensors)
		qa_sb_printf(b, " Among them %zu 3-D expert %s, swapped expert by expert: %" PRIu64 " of %" PRIu64
		             " expert slices change under the swap.", tensors,
		             qa_report_plural(tensors, "tensor", "tensors"), divergent, slices);
}

static void swap_verdict(struct qa_sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                         size_t n, bool md, const struct qa_report_policy *pol)
{
	if (pol) {
		/* the policy decides PASS or FAIL; the measurement follows as findings */
		qa_report_policy_sentence(b, pol, md);
		qa_sb_puts(b, " Findings: ");
	}
	size_t total = 0, mis = 0;
	for (size_t m = 0; m < n; m++)
		if (res[m]) {
			total += res[m]->n;
			mis += res[m]->n_mispredicted;
		}
	if (n == 0 || total == 0) {
		qa_sb_puts(b, "NOTHING TO CHECK: no 2-D weight was measured.");
		return;
	}
	uint32_t be = res[0]->block_elems ? res[0]->block_elems : 256;
	if (mis == 0)
		qa_sb_printf(b, "CONFIRMED: all %zu 2-D %s of %zu %s behave as AUDIT-Q4K-SHAPE-001's row-split mechanism "
		          "predicts: the [in, out] swap leaves the quantized blocks byte-identical exactly when both "
		          "dimensions are multiples of %" PRIu32 " (or the matrix is square), and shifts every later "
		          "block otherwise.", total, qa_report_plural(total, "weight", "weights"), n,
		          qa_report_plural(n, "model", "models"), be);
	else
		qa_sb_printf(b, "FALSIFIED: %zu of %zu 2-D %s contradict AUDIT-Q4K-SHAPE-001's row-split prediction "
		          "(identical exactly when both dimensions are multiples of %" PRIu32 " or the matrix is square).",
		          mis, total, qa_report_plural(total, "weight", "weights"), be);
	swap_expert_sentence(b, res, n);
	size_t named = 0;
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = res[m];
		if (!r)
			continue;
		uint64_t blocks[2], bytes[2];
		swap_totals(r, blocks, bytes);
		qa_sb_putc(b, ' ');
		qa_escape_name(b, md, labels && labels[m] ? labels[m] : "model");
		qa_sb_printf(b, " (%s): %zu of %zu identical, %zu divergent", qa_type_name(r->type), r->n_identical, r->n,
		          r->n_divergent);
		qa_sb_puts(b, r->n_divergent ? " (the swap is not benign for it)" : " (the swap is benign for it)");
		if (r->n_divergent)
			qa_sb_printf(b, "; in,out needs %+" PRId64 " blocks and %+" PRId64 " bytes against out,in",
			          (int64_t)blocks[1] - (int64_t)blocks[0], (int64_t)bytes[1] - (int64_t)bytes[0]);
		if (r->n_mispredicted)
			qa_sb_printf(b, "; %zu mispredicted", r->n_mispredicted);
		qa_sb_putc(b, '.');
		for (size_t i = 0; i < r->n && named < QA_REPORT_LIST_MAX; i++) {
			const struct qa_swap_tensor *t = &r->tensors[i];
			if (t->identical == t->predicted_identical)
				continue;
			qa_sb_puts(b, " Contradiction: ");
			qa_escape_name(b, md, t->name);
			qa_sb_printf(b, " [in %" PRIu64 ", out %" PRIu64 "] was predicted %s but measured %s.", t->in, t->out,
			          t->predicted_identical ? "identical" : "divergent", t->identical ? "identical" : "divergent");
			named++;
		}
	}
	if (mis > named)
		qa_sb_printf(b, " And %zu more contradictions.", mis - named);
}

void qa_report_swap_verdict(const struct qa_swap_result *const *results, const char *const *labels, size_t n,
                            char *buf, size_t cap)
{
	qa_report_swap_verdict_policy(results, labels, n, NULL, buf, cap);
}

void qa_report_swap_verdict_policy(const struct qa_swap_result *const *results, const char *const *labels, size_t n,
                                   const struct qa_report_policy *pol, char *buf, size_t cap)
{
	struct qa_sb b = { 0 };
	swap_verdict(&b, results, labels, results ? n : 0, false, pol);
	qa_sb_copy_out(&b, buf, cap);
	qa_sb_free(&b);
}
/* ------------------------------------------------------------------ swap report */

static void swap_mechanism(struct qa_sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                           size_t n)
{
	qa_sb_puts(b, "## Mechanism\n\n");
	uint32_t be = n && res[0] && res[0]->block_elems ? res[0]->block_elems : 256;
	const struct qa_type_info *ti = n && res[0] ? qa_type_get(res[0]->type) : NULL;
	qa_sb_printf(b, "Every 2-D weight W ([out, in], stored as out rows of in values) was quantized to %s twice with "
	          "a bit-exact reimplementation of ggml's reference quantizer: as out,in (out rows of in values: what "
	          "GGUF expects) and as in,out (the same flat data read as in rows of out values: what an exporter "
	          "that declares the shape [in, out] hands to the quantizer). The quantizer cuts each row into blocks "
	          "of %" PRIu32 " elements and zero-pads a row whose length is not a multiple of %" PRIu32 ". When both "
	          "in and out are multiples of %" PRIu32 " (or in = out), both readings cut the flat data into the same "
	          "blocks and the swap is harmless; otherwise the padding falls at different places, which shifts "
	          "every later block and changes the block count. Both results were cut into 256-element blocks and "
	          "compared by SHA-256; a tensor is identical when every block matches.\n\n",
	          ti ? ti->name : "the audit type", be, be, be);
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = res[m];
		if (!r || r->n == 0)
			continue;
		uint32_t bel = r->block_elems ? r->block_elems : 256;
		const struct qa_type_info *tm = qa_type_get(r->type);
		uint32_t bb = tm ? tm->block_bytes : 0;
		qa_sb_puts(b, "For ");
		qa_escape_code_str(b, qa_report_label_at(labels, m));
		qa_sb_puts(b, ":\n\n");
		/* one line per distinct (class, in, out) in result order */
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_swap_tensor *t = &r->tensors[i];
			char cl[64], cj[64];
			qa_report_class_of(t->name, cl, sizeof cl);
			bool seen = false;
			size_t count = 0;
			for (size_t j = 0; j < r->n; j++) {
				const struct qa_swap_tensor *u = &r->tensors[j];
				qa_report_class_of(u->name, cj, sizeof cj);
				if (strcmp(cl, cj) != 0 || u->in != t->in || u->out != t->out)
					continue;
				if (j < i)
					seen = true;
				count++;
			}
			if (seen)
				continue;
			uint64_t bo = qa_report_ceil_div(t->in, bel), bi = qa_report_ceil_div(t->out, bel);
			qa_sb_puts(b, "- ");
			qa_escape_code_str(b, cl);
			qa_sb_printf(b, " (%zu %s) [in %" PRIu64 ", out %" PRIu64 "]: in %% %" PRIu32 " = %" PRIu64 ", out %% %"
			          PRIu32 " = %" PRIu64 "; out,in = %" PRIu64 " rows x ceil(%" PRIu64 "/%" PRIu32 ") = %"
			          PRIu64 " x %" PRIu64 " = %" PRIu64 " blocks, in,out = %" PRIu64 " rows x ceil(%" PRIu64 "/%"
			          PRIu32 ") = %" PRIu64 " x %" PRIu64 " = %" PRIu64 " blocks",
			          count, qa_report_plural(count, "tensor", "tensors"), t->in, t->out, bel, t->in % bel, bel,
			          t->out % bel, t->out, t->in, bel, t->out, bo, t->out * bo, t->in, t->out, bel, t->in, bi,
			          t->in * bi);
			int64_t dblk = (int64_t)(t->in * bi) - (int64_t)(t->out * bo);
			if (t->predicted_identical)
				qa_sb_puts(b, ": predicted identical");
			else
				qa_sb_printf(b, ": predicted divergent, %+" PRId64 " blocks x %" PRIu32 " bytes = %+" PRId64
				          " bytes per tensor", dblk, bb, dblk * (int64_t)bb);
			size_t same = 0;
			for (size_t j = 0; j < r->n; j++) {
				const struct qa_swap_tensor *u = &r->tensors[j];
				qa_report_class_of(u->name, cj, sizeof cj);
				if (strcmp(cl, cj) == 0 && u->in == t->in && u->out == t->out)
					same += u->identical;
			}
			bool wrong = t->predicted_identical ? same != count : same != 0;
			qa_sb_printf(b, "; measured: %zu of %zu identical, excess %+" PRId64 " bytes per tensor%s.\n", same, count,
			          qa_report_swap_excess(t), wrong ? " (CONTRADICTS THE PREDICTION)" : "");
		}
		qa_sb_putc(b, '\n');
	}
}

static void swap_callout(struct qa_sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                         size_t n)
{
	size_t mis = 0;
	for (size_t m = 0; m < n; m++)
		mis += res[m] ? res[m]->n_mispredicted : 0;
	if (!mis)
		return;
	qa_sb_printf(b, "> **WARNING: the mechanism is falsified.** %zu %s measured differently from the row-split "
	          "prediction:", mis, qa_report_plural(mis, "tensor was", "tensors were"));
	size_t named = 0;
	for (size_t m = 0; m < n && named < 20; m++)
		for (size_t i = 0; res[m] && i < res[m]->n && named < 20; i++) {
			const struct qa_swap_tensor *t = &res[m]->tensors[i];
			if (t->identical == t->predicted_identical)
				continue;
			qa_sb_puts(b, named ? "; " : " ");
			qa_escape_code_str(b, qa_report_label_at(labels, m));
			qa_sb_putc(b, ' ');
			qa_escape_code_str(b, t->name);
			qa_sb_printf(b, " [in %" PRIu64 ", out %" PRIu64 "] predicted %s, measured %s", t->in, t->out,
			          t->predicted_identical ? "identical" : "divergent", t->identical ? "identical" : "divergent");
			named++;
		}
	if (mis > named)
		qa_sb_printf(b, "; and %zu more", mis - named);
	qa_sb_puts(b, ". AUDIT-Q4K-SHAPE-001's explanation does not account for these tensors.\n\n");
}

static void swap_findings(struct qa_sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                          size_t n)
{
	qa_sb_puts(b, "## Findings per tensor class\n\n");
	uint32_t be = n && res[0] && res[0]->block_elems ? res[0]->block_elems : 256;
	qa_sb_printf(b, "| model | class | tensors | in %% %" PRIu32 " | out %% %" PRIu32 " | identical | divergent | "
	          "mispredicted | blocks out,in | blocks in,out | excess bytes |\n", be, be);
	qa_sb_puts(b, ""
	           "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|\n");
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = res[m];
		if (!r || r->n == 0)
			continue;
		struct qa_report_classes cl;
		size_t *ci;
		if (!qa_report_classify(r->n, swap_name_at, r, &cl, &ci)) {
			b->oom = true;
			return;
		}
		uint32_t bel = r->block_elems ? r->block_elems : 256;
		for (size_t k = 0; k < cl.n; k++) {
			size_t tot = 0, same = 0, mis = 0;
			uint64_t bl[2] = { 0, 0 };
			int64_t ex = 0;
			uint64_t in_mod = UINT64_MAX, out_mod = UINT64_MAX;
			bool in_var = false, out_var = false;
			for (size_t i = 0; i < r->n; i++) {
				if (ci[i] != k)
					continue;
				const struct qa_swap_tensor *t = &r->tensors[i];
				tot++;
				same += t->identical;
				mis += t->identical != t->predicted_identical;
				bl[0] += t->blocks[0];
				bl[1] += t->blocks[1];
				ex += qa_report_swap_excess(t);
				if (in_mod != UINT64_MAX && in_mod != t->in % bel)
					in_var = true;
				if (out_mod != UINT64_MAX && out_mod != t->out % bel)
					out_var = true;
				in_mod = t->in % bel;
				out_mod = t->out % bel;
			}
			qa_sb_puts(b, "| ");
			qa_escape_md_str(b, qa_report_label_at(labels, m));
			qa_sb_puts(b, " | ");
			qa_escape_code_str(b, cl.name[k]);
			qa_sb_printf(b, " | %zu | ", tot);
			if (in_var)
				qa_sb_puts(b, "varies");
			else
				qa_sb_printf(b, "%" PRIu64, in_mod);
			qa_sb_puts(b, " | ");
			if (out_var)
				qa_sb_puts(b, "varies");
			else
				qa_sb_printf(b, "%" PRIu64, out_mod);
			qa_sb_printf(b, " | %zu | %zu | %zu | %" PRIu64 " | %" PRIu64 " | %+" PRId64 " |\n", same, tot - same, mis,
			          bl[0], bl[1], ex);
		}
		free(cl.name);
		free(ci);
	}
	qa_sb_printf(b, "\n(\"%% %" PRIu32 "\" is the remainder modulo the quantization block size; excess bytes are "
	          "in,out bytes minus out,in bytes, summed over the class.)\n\n", be);
}

static void swap_tables(struct qa_sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                        size_t n)
{
	qa_sb_puts(b, "## Per-tensor results\n\n");
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = res[m];
		if (!r)
			continue;
		qa_sb_puts(b, "### ");
		qa_escape_md_str(b, qa_report_label_at(labels, m));
		qa_sb_puts(b, "\n\n");
		if (r->n == 0) {
			qa_sb_puts(b, "No 2-D weights.\n\n");
			continue;
		}
		qa_sb_puts(b, "| tensor | class | shape [in, out] | blocks out,in | blocks in,out | bytes out,in | "
		           "bytes in,out | excess bytes | identical | predicted | first divergent block |\n"
		           "|---|---|---|---:|---:|---:|---:|---:|---|---|---:|\n");
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_swap_tensor *t = &r->tensors[i];
			char cl[64];
			qa_report_class_of(t->name, cl, sizeof cl);
			qa_sb_puts(b, "| ");
			qa_escape_code_str(b, t->name);
			qa_sb_puts(b, " | ");
			qa_escape_code_str(b, cl);
			qa_sb_printf(b, " | [%" PRIu64 ", %" PRIu64 "] | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64
			          " | %+" PRId64 " | %s | %s%s | ", t->in, t->out, t->blocks[0], t->blocks[1], t->bytes[0],
			          t->bytes[1], qa_report_swap_excess(t), t->identical ? "yes" : "no",
			          t->predicted_identical ? "identical" : "divergent",
			          t->identical != t->predicted_identical ? " (WRONG)" : "");
			if (t->first_divergent != QA_NO_BLOCK)
				qa_sb_printf(b, "%" PRIu64 " |\n", t->first_divergent);
			else
				qa_sb_puts(b, "- |\n");
		}
		qa_sb_putc(b, '\n');
	}
}

static void plot_swap(struct qa_report_plotter *pl, struct qa_sb *md, const struct qa_swap_result *const *res,
                      const char *const *labels, size_t n)
{
	struct qa_sb s = { 0 };
	qa_sb_puts(&s, "$sw << EOD\n");
	size_t groups = 0;
	uint64_t max_bl = 0, max_by = 0;
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = res[m];
		if (!r || r->n == 0)
			continue;
		struct qa_report_classes cl;
		size_t *ci;
		if (!qa_report_classify(r->n, swap_name_at, r, &cl, &ci)) {
			md->oom = true;
			qa_sb_free(&s);
			return;
		}
		for (size_t k = 0; k < cl.n; k++) {
			uint64_t bl[2] = { 0, 0 }, by[2] = { 0, 0 };
			for (size_t i = 0; i < r->n; i++)
				if (ci[i] == k)
					for (int l = 0; l < 2; l++) {
						bl[l] += r->tensors[i].blocks[l];
						by[l] += r->tensors[i].bytes[l];
					}
			char lm[48], lc[64];
			qa_plot_label(qa_report_label_at(labels, m), lm, sizeof lm);
			qa_plot_label(cl.name[k], lc, sizeof lc);
			if (n > 1)
				qa_sb_printf(&s, "\"%s: %s\"", lm, lc);
			else
				qa_sb_printf(&s, "\"%s\"", lc);
			for (int l = 0; l < 2; l++) {
				max_bl = bl[l] > max_bl ? bl[l] : max_bl;
				max_by = by[l] > max_by ? by[l] : max_by;
			}
			qa_sb_printf(&s, " %" PRIu64 " %" PRIu64 " %.6f %.6f\n", bl[0], bl[1], (double)by[0] / 1048576.0,
			          (double)by[1] / 1048576.0);
			groups++;
		}
		free(cl.name);
		free(ci);
	}
	qa_sb_puts(&s, "EOD\n");
	if (groups == 0) {
		qa_sb_free(&s);
		qa_sb_puts(md, "(plot not generated: no 2-D weights)\n\n");
		return;
	}
	qa_sb_puts(&s, "set style data histogram\n"
	            "set style histogram clustered gap 1\n"
	            "set style fill solid 0.85 border lc rgb \"#333333\"\n"
	            "set boxwidth 0.9\n"
	            "set grid ytics\n"
	            "set key top left box opaque\n"
	            "set xtics rotate by 50 right nomirror font \",7\"\n"
	            "set lmargin 11\nset bmargin 10\n"
	            "set multiplot layout 1,2 title \"Quantized size per tensor class under each layout (summed over "
	            "the class's tensors)\"\n"
	            "set title \"blocks (256 elements)\"\n"
	            "set ylabel \"blocks\"\n"
	            "set xlabel \"tensor class\" offset 0,2.5\n");
	/* log scale: a class of a few hundred blocks must stay visible next to
	 * an embedding of two million */
	qa_sb_puts(&s, "set logscale y\nset format y \"%g\"\n");
	qa_sb_printf(&s, "set yrange [1:%.1f]\n", (double)(max_bl ? max_bl : 1) * 4);
	qa_sb_puts(&s, "plot $sw using 2:xtic(1) title \"out,in\" lc rgb \"#2471a3\", $sw using 3 title \"in,out\" "
	            "lc rgb \"#c0392b\"\n"
	            "set title \"bytes\"\n"
	            "set ylabel \"MiB\"\n");
	qa_sb_printf(&s, "set yrange [0.001:%.6f]\n", (double)(max_by ? max_by : 1) / 1048576.0 * 4);
	qa_sb_puts(&s, "plot $sw using 4:xtic(1) title \"out,in\" lc rgb \"#2471a3\", $sw using 5 title \"in,out\" "
	            "lc rgb \"#c0392b\"\n"
	            "unset multiplot\n");
	qa_report_plot_one(pl, md, "layouts", "Blocks and bytes per layout by tensor class", &s);
	qa_sb_free(&s);
}

enum qa_err qa_report_swap_write(const struct qa_swap_result *const *results, const char *const *labels, size_t n,
                                 const struct qa_report_opts *o, char *note, size_t cap, struct qa_diag *d)
{
	if (note && cap)
		note[0] = '\0';
	if (!o || !o->path || !*o->path || (n && !results))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "report: no results or path");
	const char *fmt = o->plot_format ? o->plot_format : "png";
	if (!qa_plot_format_ok(fmt))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "report: plot format is png or svg, not '%s'", fmt);
	struct qa_claims cs;
	bool have_claims = false;
	enum qa_err e;
	if (o->claims_path) {
		if ((e = qa_claims_load(o->claims_path, &cs, d)))
			return e;
		have_claims = true;
	}
	if ((e = qa_report_check_writable(o->path, d))) {
		if (have_claims)
			qa_claims_free(&cs);
		return e;
	}
	const struct qa_swap_result *first = NULL;
	size_t mis = 0;
	for (size_t m = 0; m < n; m++) {
		if (results[m] && !first)
			first = results[m];
		mis += results[m] ? results[m]->n_mispredicted : 0;
	}

	struct qa_sb claims_md = { 0 };
	size_t failed = 0;
	qa_claims_section(&claims_md, have_claims ? &cs : NULL, o->claims_path, results, labels, n, &failed);

	struct qa_report_plotter pl = { .fmt = fmt, .report = o->path };
	struct qa_sb plots = { 0 }, b = { 0 };
	qa_sb_puts(&plots, "## Plots\n\n### Blocks and bytes per layout by tensor class\n\n");
	plot_swap(&pl, &plots, results, labels, n);

	char def_id[64] = "AUDIT-SWAP-";
	if (first)
		for (int i = 0; i < 4; i++)
			snprintf(def_id + 11 + 2 * i, 3, "%02X", first->reference_sha256[i]);
	else
		snprintf(def_id + 11, sizeof def_id - 11, "EMPTY");
	struct qa_sb title = { 0 }, status = { 0 };
	qa_sb_printf(&title, "Shape-swap audit (%s) of ", first ? qa_type_name(first->type) : "-");
	for (size_t m = 0; m < n; m++) {
		if (m)
			qa_sb_puts(&title, m + 1 == n ? " and " : ", ");
		qa_sb_puts(&title, qa_report_label_at(labels, m));
	}
	if (mis)
		qa_sb_printf(&status, "FALSIFIED — %zu %s the predicted mechanism", mis,
		          qa_report_plural(mis, "tensor contradicts", "tensors contradict"));
	else
		qa_sb_puts(&status, "CONFIRMED — every tensor behaves as predicted");
	if (have_claims && cs.n)
		qa_sb_printf(&status, "; %zu of %zu %s %s", failed ? failed : cs.n, cs.n, qa_report_plural(cs.n, "claim", "claims"),
		          failed ? qa_report_plural(failed, "does not hold", "do not hold") : qa_report_plural(cs.n, "holds", "hold"));
	struct qa_sb pstatus = { 0 };
	if (o->policy)
		qa_report_policy_status(&pstatus, o->policy, status.p ? status.p : "");
	qa_report_header(&b, o, title.p ? title.p : "Shape-swap audit", def_id,
	                 o->policy && pstatus.p ? pstatus.p : status.p ? status.p : "");
	if (pstatus.oom)
		b.oom = true;
	qa_sb_free(&pstatus);
	if (title.oom || status.oom)
		b.oom = true;
	qa_sb_free(&title);
	qa_sb_free(&status);

	qa_sb_puts(&b, "## TL;DR\n\n");
	swap_verdict(&b, results, labels, n, true, o->policy);
	if (have_claims && cs.n)
		qa_sb_printf(&b, " Claims: %zu of %zu %s.", cs.n - failed, cs.n, qa_report_plural(cs.n - failed, "holds", "hold"));
	qa_sb_puts(&b, "\n\n");
	swap_callout(&b, results, labels, n);

	qa_sb_puts(&b, "## Inputs\n\n| model | path | size (bytes) | SHA-256 | arch | type |\n|---|---|---:|---|---|---|\n");
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = results[m];
		if (!r)
			continue;
		qa_sb_puts(&b, "| ");
		qa_escape_md_str(&b, qa_report_label_at(labels, m));
		qa_sb_puts(&b, " | ");
		qa_escape_code_str(&b, r->reference_path ? r->reference_path : "");
		qa_sb_printf(&b, " | %" PRIu64 " | ", r->reference_size);
		if (r->no_digests)
			qa_sb_puts(&b, "not computed (sharded, no `--file-digests`)");
		else
			qa_sb_hex(&b, r->reference_sha256, QA_SHA256_LEN);
		qa_sb_puts(&b, " | ");
		qa_escape_md_str(&b, r->arch[0] ? r->arch : "-");
		qa_sb_printf(&b, " | %s |\n", qa_type_name(r->type));
	}
	qa_sb_putc(&b, '\n');

	swap_mechanism(&b, results, labels, n);
	swap_findings(&b, results, labels, n);
	swap_callout(&b, results, labels, n);
	swap_tables(&b, results, labels, n);
	if (claims_md.p)
		qa_sb_puts(&b, claims_md.p);
	if (claims_md.oom || plots.oom)
		b.oom = true;
	qa_sb_free(&claims_md);
	if (plots.p)
		qa_sb_puts(&b, plots.p);
	qa_sb_free(&plots);
	qa_report_falsifier(&b, o, "Re-running this command on the checkpoints above (same SHA-256) must reproduce every block "
	                 "count, digest comparison and claim result of this report.");
	qa_report_environment(&b, o, &pl, "shape-swap");
	size_t n_claims = have_claims ? cs.n : 0;
	if (have_claims)
		qa_claims_free(&cs);
	e = qa_report_write_atomic(o->path, &b, d);
	qa_sb_free(&b);
	if (e == QA_OK) {
		qa_report_plot_note(&pl, note, cap);
		if (have_claims && failed && note && cap) {
			size_t k = strlen(note);
			snprintf(note + k, cap - k, "; %zu of %zu %s %s", failed, n_claims, qa_report_plural(n_claims, "claim", "claims"),
			         qa_report_plural(failed, "does not hold", "do not hold"));
		}
	}
	return e;
}
