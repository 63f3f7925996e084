/*
 * report.c - markdown audit reports, their gnuplot plots, the one-paragraph
 * verdicts, and the claims check of shape-swap reports.
 *
 * Everything is rendered into an in-memory string first and written
 * atomically (temporary file in the target directory, then rename; see
 * tmpfile.h).  The text depends only on the result structs and the options,
 * iterated in result order and formatted with fixed printf formats, so two
 * runs give the same bytes except for the "Date:" line.  Names and paths
 * come from untrusted files and are escaped for markdown (or for gnuplot,
 * through qa_plot_label) wherever they are printed.
 */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

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
#include "names.h"
#include "plot.h"
#include "tmpfile.h"
#include "types.h"

#define PLOT_MISSING_NOTE "(plot not generated: gnuplot not found; set QUANTAUDIT_GNUPLOT)"
#define LIST_MAX 5          /* tensors named per kind in a verdict */
#define BROKEN_MAX 8        /* tensors named per failing claim */
#define CLAIMS_MAX_BYTES (16u << 20)

/* ------------------------------------------------------------------ strings */

struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_reserve(struct sb *b, size_t extra)
{
	if (b->oom)
		return;
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void sb_putn(struct sb *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static void sb_putc(struct sb *b, char c)
{
	sb_putn(b, &c, 1);
}

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tmp[256];
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n < sizeof tmp) {
		sb_putn(b, tmp, (size_t)n);
		return;
	}
	sb_reserve(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void sb_free(struct sb *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Untrusted text in markdown prose or a table cell: markup characters are
 * backslash-escaped, control bytes become '?'. */
static void sb_md(struct sb *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			sb_putc(b, '?');
		else {
			if (strchr("\\`*_[]<>|#!", c))
				sb_putc(b, '\\');
			sb_putc(b, (char)c);
		}
	}
}

/* Untrusted text as a code span (also valid inside a table cell). */
static void sb_code(struct sb *b, const char *s)
{
	sb_putc(b, '`');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			sb_putc(b, '?');
		else if (c == '`')
			sb_putc(b, '\'');
		else if (c == '|')
			sb_puts(b, "\\|");
		else
			sb_putc(b, (char)c);
	}
	sb_putc(b, '`');
}

/* Untrusted text in the plain-text verdict: control bytes become '?'. */
static void sb_plain(struct sb *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		sb_putc(b, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
}

/* A name in a verdict: a code span in markdown, plain in text. */
static void sb_name(struct sb *b, bool md, const char *s)
{
	if (md)
		sb_code(b, s);
	else
		sb_plain(b, s);
}

static void copy_out(const struct sb *b, char *buf, size_t cap)
{
	if (!buf || cap == 0)
		return;
	size_t n = b->oom || !b->p ? 0 : b->len;
	if (n >= cap) {
		n = cap - 1;
		/* do not cut a UTF-8 sequence in half */
		while (n > 0 && ((unsigned char)b->p[n] & 0xc0) == 0x80)
			n--;
	}
	if (n)
		memcpy(buf, b->p, n);
	buf[n] = '\0';
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void sb_hex(struct sb *b, const uint8_t *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "%02x", h[i]);
}

static const char *base_name(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p ? p : "";
}

/* The tensor class of name, with ".bias" kept apart from the weights. */
static void class_of(const char *name, char *buf, size_t cap)
{
	if (!qa_names_class(name, buf, cap))
		snprintf(buf, cap, "%s", "other");
	size_t n = name ? strlen(name) : 0;
	if (n >= 5 && strcmp(name + n - 5, ".bias") == 0) {
		size_t k = strlen(buf);
		if (k + 6 <= cap)
			memcpy(buf + k, ".bias", 6);
	}
}

/* Classes in order of first appearance. */
struct classes {
	char (*name)[64];
	size_t n;
};

static size_t class_index(struct classes *c, const char *cls)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->name[i], cls) == 0)
			return i;
	snprintf(c->name[c->n], sizeof c->name[0], "%s", cls);
	return c->n++;
}

/*
 * Group n tensors by class: cl lists the classes in order of first
 * appearance and (*ci)[i] is the class of tensor i.  Returns false, with
 * nothing allocated, when memory runs out; otherwise the caller frees
 * cl->name and *ci.
 */
static bool classify(size_t n, const char *(*name_at)(const void *, size_t), const void *ctx,
                     struct classes *cl, size_t **ci)
{
	cl->n = 0;
	cl->name = calloc(n ? n : 1, sizeof *cl->name);
	*ci = calloc(n ? n : 1, sizeof **ci);
	if (!cl->name || !*ci) {
		free(cl->name);
		free(*ci);
		cl->name = NULL;
		*ci = NULL;
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c[64];
		class_of(name_at(ctx, i), c, sizeof c);
		(*ci)[i] = class_index(cl, c);
	}
	return true;
}

static const char *diff_name_at(const void *r, size_t i)
{
	return ((const struct qa_diff_result *)r)->tensors[i].name;
}

static const char *swap_name_at(const void *r, size_t i)
{
	return ((const struct qa_swap_result *)r)->tensors[i].name;
}

static double n_elems(const struct qa_diff_tensor *t)
{
	double n = 1;
	for (uint32_t k = 0; k < t->n_dims && k < 4; k++)
		n *= (double)t->ne[k];
	return n;
}

static int64_t swap_excess(const struct qa_swap_tensor *t)
{
	return (int64_t)t->bytes[QA_LAYOUT_IN_OUT] - (int64_t)t->bytes[QA_LAYOUT_OUT_IN];
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return b ? a / b + (a % b != 0) : 0;
}

/* ------------------------------------------------------------------ files */

static enum qa_err write_atomic(const char *path, const struct sb *b, struct qa_diag *d)
{
	if (b->oom)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	struct qa_tmpfile t;
	enum qa_err e = qa_tmpfile_open(&t, path, d);
	if (e)
		return e;
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = write(t.fd, b->p + off, b->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int err = w < 0 ? errno : EIO;
			qa_tmpfile_abort(&t);
			return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write %s: %s", path,
			                   qa_strerror(err));
		}
		off += (size_t)w;
	}
	return qa_tmpfile_commit(&t, true, d);
}

/* Whether the report's directory takes a new file (checked before any plot
 * is drawn, so that an unwritable path fails fast and leaves nothing). */
static enum qa_err check_writable(const char *path, struct qa_diag *d)
{
	struct qa_tmpfile t;
	enum qa_err e = qa_tmpfile_open(&t, path, d);
	if (e)
		return e;
	qa_tmpfile_abort(&t);
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write %s: is a directory", path);
	return QA_OK;
}

/* Plot paths: <dir>/<base>-<what>.<fmt>, base being the report's file name
 * without ".md". */
struct plot_names {
	char full[4096];
	char rel[1024];
};

static bool plot_path(const char *report, const char *what, const char *fmt, struct plot_names *p)
{
	const char *b = base_name(report);
	size_t blen = strlen(b);
	if (blen > 3 && strcmp(b + blen - 3, ".md") == 0)
		blen -= 3;
	int n = snprintf(p->rel, sizeof p->rel, "%.*s-%s.%s", (int)blen, b, what, fmt);
	if (n < 0 || (size_t)n >= sizeof p->rel)
		return false;
	n = snprintf(p->full, sizeof p->full, "%.*s%s", (int)(b - report), report, p->rel);
	return n >= 0 && (size_t)n < sizeof p->full;
}

/* Plot state shared by the plots of one report. */
struct plotter {
	const char *fmt;
	const char *report;
	bool unavailable;   /* gnuplot could not be run: skip the rest */
	int made, failed;
	char first_error[256];
};

/* Draw one plot and put the markdown for it (image link or note) into md. */
static void plot_one(struct plotter *pl, struct sb *md, const char *what, const char *alt,
                     const struct sb *script)
{
	struct plot_names pn;
	if (!plot_path(pl->report, what, pl->fmt, &pn)) {
		sb_puts(md, "(plot not generated: the report path is too long)\n\n");
		pl->failed++;
		return;
	}
	if (pl->unavailable) {
		sb_puts(md, PLOT_MISSING_NOTE "\n\n");
		return;
	}
	if (script->oom) {
		sb_puts(md, "(plot not generated: out of memory)\n\n");
		pl->failed++;
		return;
	}
	bool ran = false;
	struct qa_diag pd;
	qa_diag_clear(&pd);
	enum qa_err e = qa_plot_run(pl->fmt, script->p ? script->p : "", pn.full, &ran, &pd);
	if (e == QA_OK && !ran) {
		pl->unavailable = true;
		sb_puts(md, PLOT_MISSING_NOTE "\n\n");
		return;
	}
	if (e != QA_OK) {
		pl->failed++;
		if (!pl->first_error[0])
			snprintf(pl->first_error, sizeof pl->first_error, "%s", pd.msg);
		sb_puts(md, "(plot not generated: ");
		sb_md(md, pd.msg);
		sb_puts(md, ")\n\n");
		return;
	}
	pl->made++;
	sb_printf(md, "![%s](", alt);
	/* the link is the bare file name; escape what markdown would misread */
	for (const char *s = pn.rel; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == '(' || c == ')' || c == '<' || c == '>' || c >= 0x7f)
			sb_printf(md, "%%%02X", c);
		else
			sb_putc(md, (char)c);
	}
	sb_puts(md, ")\n\n");
}

static void plot_note(const struct plotter *pl, char *note, size_t cap)
{
	if (!note || cap == 0)
		return;
	if (pl->unavailable && pl->made == 0)
		snprintf(note, cap, "; gnuplot not found, plots skipped");
	else if (pl->failed && pl->made == 0)
		snprintf(note, cap, "; %d %s failed (%s)", pl->failed, plural((uint64_t)pl->failed, "plot", "plots"),
		         pl->first_error);
	else if (pl->failed)
		snprintf(note, cap, " and %d %s; %d %s failed (%s)", pl->made, plural((uint64_t)pl->made, "plot", "plots"),
		         pl->failed, plural((uint64_t)pl->failed, "plot", "plots"), pl->first_error);
	else if (pl->made)
		snprintf(note, cap, " and %d %s", pl->made, plural((uint64_t)pl->made, "plot", "plots"));
	else
		note[0] = '\0';
}

/* ------------------------------------------------------------------ header */

static void today(const struct qa_report_opts *o, char *buf, size_t cap)
{
	if (o->date) {
		struct sb b = { 0 };
		sb_plain(&b, o->date);
		copy_out(&b, buf, cap);
		sb_free(&b);
		return;
	}
	time_t now = time(NULL);
	struct tm tm;
	if (!gmtime_r(&now, &tm) || strftime(buf, cap, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, cap, "%s", "1970-01-01");
}

static void header(struct sb *b, const struct qa_report_opts *o, const char *def_title,
                   const char *def_id, const char *status)
{
	char date[64];
	today(o, date, sizeof date);
	sb_puts(b, "# ");
	sb_md(b, o->title ? o->title : def_title);
	sb_puts(b, "\n\nDocument ID: ");
	sb_md(b, o->id ? o->id : def_id);
	sb_puts(b, "  \nStatus: ");
	sb_puts(b, status);
	sb_puts(b, "  \nquantaudit version: ");
	sb_md(b, o->version ? o->version : "unknown");
	sb_puts(b, "  \nDate: ");
	sb_puts(b, date);
	sb_puts(b, "\n\n");
}

/* Shell-quote one argument for a POSIX shell. */
static void sb_shell(struct sb *b, const char *s)
{
	bool plain = *s != '\0';
	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+@%-", *p)) {
			plain = false;
			break;
		}
	if (plain) {
		sb_puts(b, s);
		return;
	}
	sb_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sb_puts(b, "'\\''");
		else
			sb_putc(b, *s);
	}
	sb_putc(b, '\'');
}

static void falsifier(struct sb *b, const struct qa_report_opts *o, const char *what)
{
	struct sb cmd = { 0 };
	const char *a0 = o->argc > 0 && o->argv && o->argv[0] ? base_name(o->argv[0]) : "";
	if (strncmp(a0, "quantaudit", 10) != 0)
		sb_puts(&cmd, "quantaudit");
	for (int i = 0; i < o->argc && o->argv; i++) {
		if (!o->argv[i])
			break;
		if (cmd.len)
			sb_putc(&cmd, ' ');
		sb_shell(&cmd, o->argv[i]);
	}
	/* a fence longer than any run of backticks in the command */
	size_t run = 0, longest = 0;
	for (size_t i = 0; i < cmd.len; i++) {
		run = cmd.p[i] == '`' ? run + 1 : 0;
		if (run > longest)
			longest = run;
	}
	size_t fence = longest >= 3 ? longest + 1 : 3;
	sb_puts(b, "## Falsifier\n\n");
	sb_puts(b, what);
	sb_puts(b, "\n\n");
	for (size_t i = 0; i < fence; i++)
		sb_putc(b, '`');
	sb_puts(b, "sh\n");
	if (cmd.p)
		sb_putn(b, cmd.p, cmd.len);
	sb_putc(b, '\n');
	for (size_t i = 0; i < fence; i++)
		sb_putc(b, '`');
	sb_puts(b, "\n\n");
	if (cmd.oom)
		b->oom = true;
	sb_free(&cmd);
}

static void environment(struct sb *b, const struct qa_report_opts *o, const struct plotter *pl,
                        const char *command)
{
	sb_puts(b, "## Environment\n\n- quantaudit: ");
	sb_md(b, o->version ? o->version : "unknown");
	sb_printf(b, "\n- plots: %s\n\n", pl->made ? (strcmp(pl->fmt, "svg") == 0 ? "gnuplot, svg terminal" :
	                                                "gnuplot, pngcairo terminal") :
	          "not generated");
	sb_puts(b, "## Changelog\n\n");
	sb_printf(b, "- v1 (see Date above): generated by `quantaudit %s`.\n", command);
}

/* ------------------------------------------------------------------ diff verdict */

static const enum qa_verdict kind_order[] = {
	QA_VERDICT_DIVERGENT, QA_VERDICT_LAYOUT_SWAP, QA_VERDICT_TRANSPOSED, QA_VERDICT_UNPERMUTED,
	QA_VERDICT_MISSING, QA_VERDICT_EXTRA, QA_VERDICT_SHAPE_MISMATCH, QA_VERDICT_UNSUPPORTED,
	QA_VERDICT_IMATRIX,
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
	default: return "?";
	}
}

static void divergent_item(struct sb *b, bool md, const struct qa_diff_tensor *t)
{
	sb_name(b, md, t->name);
	sb_printf(b, " has %" PRIu64 " divergent %s of %" PRIu64, t->divergent_blocks,
	          plural(t->divergent_blocks, "block", "blocks"), t->blocks);
	if (t->first_divergent != QA_NO_BLOCK)
		sb_printf(b, " (%s %" PRIu64 ")", t->divergent_blocks == 1 ? "block" : "first at block",
		          t->first_divergent);
	if (t->has_error)
		sb_printf(b, ", RMSE %.3e against %.3e for ggml's re-quantization", t->rmse, t->requant_rmse);
}

static double rmse_ratio(const struct qa_diff_tensor *t)
{
	if (!t->has_error)
		return NAN;
	if (t->requant_rmse > 0)
		return t->rmse / t->requant_rmse;
	return t->rmse > 0 ? INFINITY : 1.0;
}

static void sb_ratio(struct sb *b, double r)
{
	if (isnan(r))
		sb_puts(b, "-");
	else if (isinf(r))
		sb_puts(b, "inf");
	else
		sb_printf(b, "%.3f", r);
}

static void recipe_sentence(struct sb *b, bool md, const struct qa_diff_result *r)
{
	if (r->recipe_name && r->recipe_matches) {
		sb_printf(b, " Recipe: every tensor has the type llama.cpp's %s plan gives (general.file_type %" PRIu32 ").",
		          r->recipe_name, r->file_type);
		return;
	}
	if (r->recipe_name) {
		sb_printf(b, " Recipe: %zu %s from llama.cpp's %s plan (general.file_type %" PRIu32 ")",
		          r->recipe_deviations, plural(r->recipe_deviations, "tensor deviates", "tensors deviate"),
		          r->recipe_name, r->file_type);
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_diff_tensor *t = &r->tensors[i];
			if (t->in_plan && t->recipe_type != t->type) {
				sb_puts(b, ", e.g. ");
				sb_name(b, md, t->name);
				sb_printf(b, " is %s where the plan gives %s", qa_type_name(t->type),
				          qa_type_name(t->recipe_type));
				if (t->rule[0]) {
					sb_puts(b, " (");
					if (md)
						sb_md(b, t->rule);
					else
						sb_plain(b, t->rule);
					sb_putc(b, ')');
				}
				break;
			}
		}
		if (r->pure_matches)
			sb_printf(b, "; the types match pure %s instead (llama-quantize --pure)", qa_type_name(r->pure_type));
		sb_putc(b, '.');
		return;
	}
	if (r->pure_matches) {
		sb_printf(b, " Recipe: pure %s (llama-quantize --pure)", qa_type_name(r->pure_type));
		if (r->has_file_type)
			sb_printf(b, "; general.file_type %" PRIu32 " has no plan quantaudit knows", r->file_type);
		sb_putc(b, '.');
		return;
	}
	if (r->has_file_type)
		sb_printf(b, " Recipe: general.file_type %" PRIu32 " is not a file type quantaudit can plan, "
		          "so tensor types were not checked.", r->file_type);
	else
		sb_puts(b, " Recipe: the artifact has no general.file_type, so tensor types were not checked.");
}

/* " (by error: RMSE x.xx times ggml's under transposed, yy times under out,in)" */
static void evidence_item(struct sb *b, const struct qa_diff_tensor *t)
{
	const struct qa_layout_errors *e = &t->layout_errors;
	sb_printf(b, " (by error: RMSE ");
	sb_ratio(b, qa_forensics_ratio(e->rmse[t->layout], e->noise[t->layout]));
	sb_printf(b, " times ggml's under %s", qa_forensics_layout_name(t->layout));
	if (e->tried[QA_LAYOUT_OUT_IN]) {
		sb_puts(b, ", ");
		sb_ratio(b, qa_forensics_ratio(e->rmse[QA_LAYOUT_OUT_IN], e->noise[QA_LAYOUT_OUT_IN]));
		sb_puts(b, " times under out,in");
	}
	sb_putc(b, ')');
}

/* The importance matrix the artifact declares, as one sentence. */
static void imatrix_sentence(struct sb *b, const struct qa_diff_result *r, bool md)
{
	const struct qa_imatrix_decl *m = &r->imatrix_decl;
	if (!m->present)
		return;
	sb_puts(b, " Importance matrix: the artifact declares ");
	if (m->has_file)
		sb_name(b, md, m->file);
	else
		sb_puts(b, "one (no file name)");
	if (m->has_dataset) {
		sb_puts(b, " (dataset ");
		sb_name(b, md, m->dataset);
		sb_putc(b, ')');
	}
	if (m->has_entries || m->has_chunks) {
		sb_puts(b, ", ");
		if (m->has_entries)
			sb_printf(b, "%" PRIu64 " %s", m->entries, plural(m->entries, "entry", "entries"));
		if (m->has_entries && m->has_chunks)
			sb_puts(b, ", ");
		if (m->has_chunks)
			sb_printf(b, "%" PRIu64 " %s", m->chunks, plural(m->chunks, "chunk", "chunks"));
	}
	sb_printf(b, "; %zu %s the imatrix verdict", r->counts[QA_VERDICT_IMATRIX],
	          plural(r->counts[QA_VERDICT_IMATRIX], "tensor gets", "tensors get"));
	sb_puts(b, ". Re-run with --imatrix and that file to verify those tensors byte for byte.");
}

static void diff_verdict(struct sb *b, const struct qa_diff_result *r, bool md)
{
	size_t n = r->n, same = r->counts[QA_VERDICT_IDENTICAL];
	size_t findings = n - same - r->counts[QA_VERDICT_IMATRIX];
	if (n == 0) {
		sb_puts(b, "PASS: nothing to compare: the artifact and the reference have no tensors.");
	} else if (r->pass) {
		sb_printf(b, "PASS: all %zu %s byte-identical to ggml's reference quantization of the reference "
		          "(the SHA-256 of every 256-element block matches).", n, plural(n, "tensor is", "tensors are"));
	} else {
		sb_puts(b, findings ? "FAIL:" : "NOT VERIFIED:");
		bool first = true;
		for (size_t k = 0; k < sizeof kind_order / sizeof kind_order[0]; k++) {
			enum qa_verdict v = kind_order[k];
			size_t c = r->counts[v];
			if (!c)
				continue;
			if (first)
				sb_printf(b, " %zu of %zu %s %s: ", c, n, plural(n, "tensor", "tensors"), kind_verb(v, c));
			else
				sb_printf(b, " %zu %s: ", c, kind_verb(v, c));
			first = false;
			size_t named = 0;
			for (size_t i = 0; i < n && named < LIST_MAX; i++) {
				const struct qa_diff_tensor *t = &r->tensors[i];
				if (t->verdict != v)
					continue;
				if (named)
					sb_puts(b, v == QA_VERDICT_DIVERGENT ? "; " : ", ");
				if (v == QA_VERDICT_DIVERGENT) {
					divergent_item(b, md, t);
				} else {
					sb_name(b, md, t->name);
					if (v == QA_VERDICT_UNSUPPORTED)
						sb_printf(b, " (%s)", qa_type_name(t->type));
					else if (t->evidence == QA_EVIDENCE_ERROR)
						evidence_item(b, t);
					else if (t->evidence == QA_EVIDENCE_BYTES && v != QA_VERDICT_IDENTICAL)
						sb_puts(b, " (by bytes)");
				}
				named++;
			}
			if (c > named)
				sb_printf(b, "; and %zu more", c - named);
			sb_putc(b, '.');
		}
		if (same)
			sb_printf(b, " The other %zu %s byte-identical to ggml's reference quantization.", same,
			          plural(same, "is", "are"));
		else
			sb_puts(b, " No tensor is byte-identical to ggml's reference quantization.");
	}
	imatrix_sentence(b, r, md);
	if (r->different_quantizer) {
		sb_printf(b, " Inference: %s %zu quantized %s that %s in most blocks, with %s within 25%% of "
		          "ggml's own re-quantization (RMSE ratio min ", r->quantizer_n == 1 ? "the" : "all",
		          r->quantizer_n, plural(r->quantizer_n, "tensor", "tensors"),
		          r->quantizer_n == 1 ? "diverges does so" : "diverge do so",
		          r->quantizer_n == 1 ? "an error" : "errors");
		sb_ratio(b, r->quantizer_min);
		sb_puts(b, ", median ");
		sb_ratio(b, r->quantizer_median);
		sb_puts(b, ", max ");
		sb_ratio(b, r->quantizer_max);
		sb_puts(b, "): a different quantizer (for example importance-weighted), not damage.");
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
			sb_printf(b, " Inference: the error of %zu divergent %s exceeds ggml's own re-quantization by more "
			          "than 25%% (worst: ", worse, plural(worse, "tensor", "tensors"));
			sb_name(b, md, worst->name);
			sb_puts(b, ", ratio ");
			sb_ratio(b, wr);
			sb_puts(b, "): damage or a worse quantizer, not a different rounding.");
		}
	}
	recipe_sentence(b, md, r);
}

/* The errors under each layout tried, for tensors judged by error or left
 * divergent: one line each (plain text) or one table row each (markdown). */
static void layout_error_lines(struct sb *b, const struct qa_diff_result *r, bool md)
{
	bool any = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		if (!t->has_layout_errors ||
		    (t->verdict != QA_VERDICT_DIVERGENT && t->evidence != QA_EVIDENCE_ERROR))
			continue;
		if (!any) {
			if (md)
				sb_puts(b, "| tensor | verdict | out,in | in,out | transposed | unpermuted |\n"
				           "|---|---|---:|---:|---:|---:|\n");
			else
				sb_puts(b, "Layout errors (artifact RMSE under each layout tried, and its ratio to ggml's "
				           "re-quantization under the same layout):\n");
			any = true;
		}
		if (md) {
			sb_puts(b, "| ");
			sb_code(b, t->name);
			sb_printf(b, " | %s |", qa_verdict_name(t->verdict));
		} else {
			sb_puts(b, "  ");
			sb_plain(b, t->name);
			sb_printf(b, " (%s):", qa_verdict_name(t->verdict));
		}
		for (int l = 0; l < QA_FX_LAYOUTS; l++) {
			const struct qa_layout_errors *e = &t->layout_errors;
			if (!e->tried[l]) {
				if (md)
					sb_puts(b, " - |");
				continue;
			}
			if (md) {
				sb_printf(b, " %.3e (", e->rmse[l]);
				sb_ratio(b, qa_forensics_ratio(e->rmse[l], e->noise[l]));
				sb_puts(b, "x) |");
			} else {
				sb_printf(b, " %s %.3e (", qa_forensics_layout_name(l), e->rmse[l]);
				sb_ratio(b, qa_forensics_ratio(e->rmse[l], e->noise[l]));
				sb_puts(b, "x)");
			}
		}
		sb_putc(b, '\n');
	}
}

void qa_report_diff_layout_errors(const struct qa_diff_result *r, char *buf, size_t cap)
{
	struct sb b = { 0 };
	if (r)
		layout_error_lines(&b, r, false);
	copy_out(&b, buf, cap);
	sb_free(&b);
}

void qa_report_diff_verdict(const struct qa_diff_result *r, char *buf, size_t cap)
{
	struct sb b = { 0 };
	if (r)
		diff_verdict(&b, r, false);
	copy_out(&b, buf, cap);
	sb_free(&b);
}

/* ------------------------------------------------------------------ swap verdict */

static void swap_totals(const struct qa_swap_result *r, uint64_t blocks[2], uint64_t bytes[2])
{
	blocks[0] = blocks[1] = bytes[0] = bytes[1] = 0;
	for (size_t i = 0; i < r->n; i++)
		for (int l = 0; l < 2; l++) {
			blocks[l] += r->tensors[i].blocks[l];
			bytes[l] += r->tensors[i].bytes[l];
		}
}

static void swap_verdict(struct sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                         size_t n, bool md)
{
	size_t total = 0, mis = 0;
	for (size_t m = 0; m < n; m++)
		if (res[m]) {
			total += res[m]->n;
			mis += res[m]->n_mispredicted;
		}
	if (n == 0 || total == 0) {
		sb_puts(b, "NOTHING TO CHECK: no 2-D weight was measured.");
		return;
	}
	uint32_t be = res[0]->block_elems ? res[0]->block_elems : 256;
	if (mis == 0)
		sb_printf(b, "CONFIRMED: all %zu 2-D %s of %zu %s behave as AUDIT-Q4K-SHAPE-001's row-split mechanism "
		          "predicts: the [in, out] swap leaves the quantized blocks byte-identical exactly when both "
		          "dimensions are multiples of %" PRIu32 " (or the matrix is square), and shifts every later "
		          "block otherwise.", total, plural(total, "weight", "weights"), n,
		          plural(n, "model", "models"), be);
	else
		sb_printf(b, "FALSIFIED: %zu of %zu 2-D %s contradict AUDIT-Q4K-SHAPE-001's row-split prediction "
		          "(identical exactly when both dimensions are multiples of %" PRIu32 " or the matrix is square).",
		          mis, total, plural(total, "weight", "weights"), be);
	size_t named = 0;
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = res[m];
		if (!r)
			continue;
		uint64_t blocks[2], bytes[2];
		swap_totals(r, blocks, bytes);
		sb_putc(b, ' ');
		sb_name(b, md, labels && labels[m] ? labels[m] : "model");
		sb_printf(b, " (%s): %zu of %zu identical, %zu divergent", qa_type_name(r->type), r->n_identical, r->n,
		          r->n_divergent);
		sb_puts(b, r->n_divergent ? " (the swap is not benign for it)" : " (the swap is benign for it)");
		if (r->n_divergent)
			sb_printf(b, "; in,out needs %+" PRId64 " blocks and %+" PRId64 " bytes against out,in",
			          (int64_t)blocks[1] - (int64_t)blocks[0], (int64_t)bytes[1] - (int64_t)bytes[0]);
		if (r->n_mispredicted)
			sb_printf(b, "; %zu mispredicted", r->n_mispredicted);
		sb_putc(b, '.');
		for (size_t i = 0; i < r->n && named < LIST_MAX; i++) {
			const struct qa_swap_tensor *t = &r->tensors[i];
			if (t->identical == t->predicted_identical)
				continue;
			sb_puts(b, " Contradiction: ");
			sb_name(b, md, t->name);
			sb_printf(b, " [in %" PRIu64 ", out %" PRIu64 "] was predicted %s but measured %s.", t->in, t->out,
			          t->predicted_identical ? "identical" : "divergent", t->identical ? "identical" : "divergent");
			named++;
		}
	}
	if (mis > named)
		sb_printf(b, " And %zu more contradictions.", mis - named);
}

void qa_report_swap_verdict(const struct qa_swap_result *const *results, const char *const *labels, size_t n,
                            char *buf, size_t cap)
{
	struct sb b = { 0 };
	swap_verdict(&b, results, labels, results ? n : 0, false);
	copy_out(&b, buf, cap);
	sb_free(&b);
}

/* ------------------------------------------------------------------ diff plots */

/* A layer's RMSE: the root of the element-weighted mean square of its
 * quantized tensors' RMSEs. */
static void plot_rmse(struct plotter *pl, struct sb *md, const struct qa_diff_result *r)
{
	int max_layer = -1;
	for (size_t i = 0; i < r->n; i++)
		if (r->tensors[i].layer > max_layer && r->tensors[i].has_error && r->tensors[i].quantized)
			max_layer = r->tensors[i].layer;
	if (max_layer < 0) {
		sb_puts(md, "(plot not generated: no layer tensor has error figures)\n\n");
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
	struct sb s = { 0 };
	sb_puts(&s, "$rmse << EOD\n");
	for (size_t l = 0; l < L; l++) {
		if (acc[3 * l + 2] <= 0)
			continue;
		double a = sqrt(acc[3 * l] / acc[3 * l + 2]), q = sqrt(acc[3 * l + 1] / acc[3 * l + 2]);
		if (!(a > 0) || !(q > 0))
			positive = false;
		sb_printf(&s, "%zu %.6e %.6e\n", l, a, q);
	}
	sb_puts(&s, "EOD\n");
	sb_puts(&s, "set title \"RMSE per layer: the artifact and ggml's re-quantization, both against the reference\"\n"
	            "set xlabel \"layer\"\n"
	            "set ylabel \"RMSE (element-weighted over the layer's quantized tensors)\"\n"
	            "set format y \"%.1e\"\n"
	            "set grid xtics ytics mytics\n"
	            "set key top left box opaque\n");
	sb_printf(&s, "set xrange [-0.5:%zu.5]\n", L - 1);
	if (positive)
		sb_puts(&s, "set logscale y\nset mytics 10\n");
	if (L <= 40)
		sb_puts(&s, "set xtics 1\n");
	sb_puts(&s, "plot $rmse using 1:3 with linespoints lw 5 pt 6 ps 1.8 lc rgb \"#85c1e9\" "
	            "title \"ggml re-quantization\", \\\n"
	            "     $rmse using 1:2 with linespoints lw 1.5 pt 7 ps 0.8 lc rgb \"#c0392b\" title \"artifact\"\n");
	free(acc);
	plot_one(pl, md, "rmse", "RMSE per layer", &s);
	sb_free(&s);
}

static bool diverges_somewhere(const struct qa_diff_tensor *t)
{
	return t->divergence && t->divergent_blocks > 0 && t->blocks > 0 &&
	       (t->verdict == QA_VERDICT_DIVERGENT || t->verdict == QA_VERDICT_LAYOUT_SWAP ||
	        t->verdict == QA_VERDICT_TRANSPOSED);
}

#define DIV_BINS 300
#define DIV_LABELLED_ROWS 30

static void plot_divergence(struct plotter *pl, struct sb *md, const struct qa_diff_result *r)
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
		sb_puts(md, "(no divergent blocks: nothing to map)\n\n");
		return;
	}
	/* one cell width for all rows, so that cells are comparable */
	w = ceil_div(maxb, DIV_BINS);
	/* cells at least ~1/125 of the axis wide, so that one divergent block shows */
	double min_half = (double)maxb / 250.0;
	struct sb s = { 0 };
	sb_puts(&s, "$div << EOD\n");
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
				sb_printf(&s, "%.1f %zu %.2f 0.42 %.4f\n", (double)b0 + (double)(b1 - b0) / 2.0, row,
				          half > min_half ? half : min_half, (double)hit / (double)(b1 - b0));
			}
		}
		row++;
	}
	sb_puts(&s, "EOD\n");
	sb_puts(&s, "set title \"Divergent 256-element blocks against ggml's out,in re-quantization\"\n"
	            "set xlabel \"block index (256 elements per block)\"\n"
	            "set cblabel \"fraction of blocks in the cell that diverge\"\n"
	            "set cbrange [0:1]\n"
	            "set palette defined (0 \"#fdae6b\", 0.5 \"#e6550d\", 1 \"#67000d\")\n"
	            "set style fill solid 1.0 noborder\n"
	            "set grid xtics\n"
	            "unset key\n");
	sb_printf(&s, "set xrange [0:%" PRIu64 "]\nset yrange [%zu.5:-0.5]\n", maxb, rows - 1);
	if (rows <= DIV_LABELLED_ROWS) {
		sb_puts(&s, "set ylabel \"tensor\"\nset ytics (");
		row = 0;
		for (size_t i = 0; i < r->n; i++) {
			if (!diverges_somewhere(&r->tensors[i]))
				continue;
			char lab[128];
			sb_printf(&s, "%s\"%s\" %zu", row ? ", " : "", qa_plot_label(r->tensors[i].name, lab, sizeof lab),
			          row);
			row++;
		}
		sb_puts(&s, ")\n");
	} else {
		sb_puts(&s, "set ylabel \"divergent tensor (order of the per-tensor table)\"\n");
	}
	sb_puts(&s, "plot $div using 1:2:3:4:5 with boxxyerror fillcolor palette notitle\n");
	plot_one(pl, md, "divergence", "Divergence map", &s);
	sb_free(&s);
}

static void plot_types(struct plotter *pl, struct sb *md, const struct qa_diff_result *r)
{
	if (r->n == 0) {
		sb_puts(md, "(plot not generated: no tensors)\n\n");
		return;
	}
	struct classes cl;
	size_t *ci;
	if (!classify(r->n, diff_name_at, r, &cl, &ci)) {
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
	struct sb s = { 0 };
	sb_puts(&s, "$types << EOD\n");
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		const struct qa_type_info *ti = qa_type_get(t->type);
		if (!ti)
			continue;
		size_t x = t->layer >= 0 ? (size_t)t->layer : L;
		sb_printf(&s, "%zu %zu %.4f \"%s\"\n", x, ci[i], qa_type_bpw(ti), ti->name);
	}
	sb_puts(&s, "EOD\n");
	sb_puts(&s, "set title \"Tensor types per layer, coloured by bits per weight\"\n"
	            "set xlabel \"layer\"\nset ylabel \"tensor class\"\n"
	            "set cblabel \"bits per weight\"\n"
	            "set logscale cb 2\n"
	            "set palette defined (0 \"#fed976\", 0.2 \"#fd8d3c\", 0.4 \"#e31a1c\", 0.7 \"#6a51a3\", "
	            "1 \"#08306b\")\n"
	            "set style fill solid 1.0 border lc rgb \"#ffffff\"\n"
	            "unset key\n");
	sb_printf(&s, "set cbrange [%.3f:%.3f]\nset xrange [-0.5:%zu.5]\nset yrange [%zu.5:-0.5]\n", lo, hi, cols - 1,
	          cl.n - 1);
	/* colour-bar tics: one per type present, named */
	sb_puts(&s, "set cbtics (");
	bool seen_type[QA_TYPE_COUNT] = { false };
	bool any_cb = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_type_info *ti = qa_type_get(r->tensors[i].type);
		if (!ti || ti->id >= QA_TYPE_COUNT || seen_type[ti->id])
			continue;
		seen_type[ti->id] = true;
		sb_printf(&s, "%s\"%s %.2f\" %.4f", any_cb ? ", " : "", ti->name, qa_type_bpw(ti), qa_type_bpw(ti));
		any_cb = true;
	}
	sb_puts(&s, ")\n");
	sb_puts(&s, "set ytics (");
	for (size_t k = 0; k < cl.n; k++) {
		char lab[80];
		sb_printf(&s, "%s\"%s\" %zu", k ? ", " : "", qa_plot_label(cl.name[k], lab, sizeof lab), k);
	}
	sb_puts(&s, ")\n");
	size_t step = cols <= 40 ? 1 : ceil_div(cols, 40);
	sb_puts(&s, "set xtics (");
	bool any = false;
	for (size_t l = 0; l < L; l += step) {
		sb_printf(&s, "%s\"%zu\" %zu", any ? ", " : "", l, l);
		any = true;
	}
	if (globals)
		sb_printf(&s, "%s\"other\" %zu", any ? ", " : "", L);
	sb_puts(&s, ")\n");
	sb_puts(&s, "plot $types using 1:2:(0.5):(0.5):3 with boxxyerror fillcolor palette notitle");
	if (cols <= 16)
		sb_puts(&s, ", \\\n     $types using 1:2:4 with labels font \",8\" notitle");
	sb_puts(&s, "\n");
	free(cl.name);
	free(ci);
	plot_one(pl, md, "types", "Type map", &s);
	sb_free(&s);
}

/* ------------------------------------------------------------------ diff report */

static void diff_inputs(struct sb *b, const struct qa_diff_result *r)
{
	sb_puts(b, "## Inputs\n\n| role | path | size (bytes) | SHA-256 |\n|---|---|---:|---|\n| reference | ");
	sb_code(b, r->reference_path ? r->reference_path : "");
	sb_printf(b, " | %" PRIu64 " | ", r->reference_size);
	sb_hex(b, r->reference_sha256, QA_SHA256_LEN);
	sb_puts(b, " |\n| artifact | ");
	sb_code(b, r->artifact_path ? r->artifact_path : "");
	sb_printf(b, " | %" PRIu64 " | ", r->artifact_size);
	sb_hex(b, r->artifact_sha256, QA_SHA256_LEN);
	sb_puts(b, " |\n\n");
	if (r->arch[0]) {
		sb_puts(b, "Architecture: ");
		sb_code(b, r->arch);
		sb_puts(b, ". ");
	}
	if (r->has_file_type)
		sb_printf(b, "general.file_type: %" PRIu32 " (%s).", r->file_type,
		          r->recipe_name ? r->recipe_name : "no recipe quantaudit can plan");
	else
		sb_puts(b, "general.file_type: not set.");
	sb_printf(b, " Tensors audited: %zu.\n\n", r->n);
	const struct qa_imatrix_decl *m = &r->imatrix_decl;
	if (m->present) {
		sb_puts(b, "Importance matrix declared by the artifact (quantize.imatrix.*): file ");
		if (m->has_file)
			sb_code(b, m->file);
		else
			sb_puts(b, "-");
		sb_puts(b, ", dataset ");
		if (m->has_dataset)
			sb_code(b, m->dataset);
		else
			sb_puts(b, "-");
		if (m->has_entries)
			sb_printf(b, ", entries_count %" PRIu64, m->entries);
		if (m->has_chunks)
			sb_printf(b, ", chunks_count %" PRIu64, m->chunks);
		sb_puts(b, ".\n\n");
	}
}

static const char *verdict_cell(enum qa_verdict v)
{
	switch (v) {
	case QA_VERDICT_LAYOUT_SWAP: return "layout-swap (shape-swap defect)";
	case QA_VERDICT_TRANSPOSED: return "transposed (transposed export)";
	case QA_VERDICT_UNPERMUTED: return "unpermuted (q/k rows without the rotary permutation)";
	case QA_VERDICT_IMATRIX: return "imatrix (declared importance matrix)";
	default: return qa_verdict_name(v);
	}
}

static void diff_row(struct sb *b, const struct qa_diff_tensor *t)
{
	sb_puts(b, "| ");
	sb_code(b, t->name);
	sb_printf(b, " | %s | ", qa_type_name(t->type));
	if (t->in_plan)
		sb_printf(b, "%s%s", qa_type_name(t->recipe_type), t->recipe_type != t->type ? " (deviation)" : "");
	else
		sb_puts(b, "-");
	const char *ev = qa_forensics_evidence_name(t->evidence);
	sb_printf(b, " | %s | %s | %s | %" PRIu64 " | ", verdict_cell(t->verdict),
	          t->layout >= 0 ? qa_forensics_layout_name(t->layout) : "-", ev ? ev : "-", t->blocks);
	bool counted = t->verdict != QA_VERDICT_MISSING && t->verdict != QA_VERDICT_EXTRA &&
	               t->verdict != QA_VERDICT_SHAPE_MISMATCH && t->verdict != QA_VERDICT_UNSUPPORTED;
	if (counted)
		sb_printf(b, "%" PRIu64 " | ", t->divergent_blocks);
	else
		sb_puts(b, "- | ");
	if (t->first_divergent != QA_NO_BLOCK && counted)
		sb_printf(b, "%" PRIu64 " | ", t->first_divergent);
	else
		sb_puts(b, "- | ");
	if (t->has_error)
		sb_printf(b, "%.3e | %.3e |\n", t->rmse, t->requant_rmse);
	else
		sb_puts(b, "- | - |\n");
}

static const char diff_table_head[] =
	"| tensor | type | recipe | verdict | layout | evidence | blocks | divergent | first divergent | rmse | requant rmse |\n"
	"|---|---|---|---|---|---|---:|---:|---:|---:|---:|\n";

static void diff_table(struct sb *b, const struct qa_diff_result *r)
{
	sb_puts(b, "## Per-tensor results\n\n");
	sb_puts(b, "Blocks are 256-element blocks; \"divergent\" counts those whose SHA-256 differs from ggml's out,in "
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
			sb_puts(b, "### Tensors outside the layers\n\n");
		sb_puts(b, diff_table_head);
		for (size_t i = 0; i < r->n; i++)
			if (r->tensors[i].layer < 0)
				diff_row(b, &r->tensors[i]);
		if (sub)
			sb_putc(b, '\n');
	} else if (!sub) {
		sb_puts(b, diff_table_head);
	}
	for (int l = 0; l <= max_layer; l++) {
		bool first = true;
		for (size_t i = 0; i < r->n; i++) {
			if (r->tensors[i].layer != l)
				continue;
			if (first && sub)
				sb_printf(b, "### Layer %d\n\n%s", l, diff_table_head);
			first = false;
			diff_row(b, &r->tensors[i]);
		}
		if (!first && sub)
			sb_putc(b, '\n');
	}
	if (!sub)
		sb_putc(b, '\n');
}

static void diff_findings(struct sb *b, const struct qa_diff_result *r)
{
	sb_puts(b, "## Findings per tensor class\n\n");
	if (r->n == 0) {
		sb_puts(b, "No tensors.\n\n");
		return;
	}
	struct classes cl;
	size_t *ci;
	if (!classify(r->n, diff_name_at, r, &cl, &ci)) {
		b->oom = true;
		return;
	}
	sb_puts(b, "| class | tensors | identical | imatrix | layout-swap | transposed | unpermuted | divergent | other | "
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
		               cnt[QA_VERDICT_UNSUPPORTED];
		sb_puts(b, "| ");
		sb_code(b, cl.name[k]);
		sb_printf(b, " | %zu | %zu | %zu | %zu | %zu | %zu | %zu | %zu | %" PRIu64 " | ", tot,
		          cnt[QA_VERDICT_IDENTICAL], cnt[QA_VERDICT_IMATRIX], cnt[QA_VERDICT_LAYOUT_SWAP],
		          cnt[QA_VERDICT_TRANSPOSED], cnt[QA_VERDICT_UNPERMUTED], cnt[QA_VERDICT_DIVERGENT], other, divb);
		sb_ratio(b, worst);
		sb_puts(b, " |\n");
	}
	sb_puts(b, "\nThe RMSE ratio is the artifact's RMSE over that of ggml's re-quantization (1.000: as good as the "
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
		sb_puts(b, "- ");
		sb_code(b, cl.name[k]);
		sb_printf(b, ": %zu of %zu %s not identical:", bad, tot, plural(tot, "tensor", "tensors"));
		size_t named = 0;
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_diff_tensor *t = &r->tensors[i];
			if (ci[i] != k || t->verdict == QA_VERDICT_IDENTICAL)
				continue;
			if (named == LIST_MAX) {
				sb_printf(b, " and %zu more", bad - named);
				break;
			}
			sb_puts(b, named ? "; " : " ");
			if (t->verdict == QA_VERDICT_DIVERGENT) {
				divergent_item(b, true, t);
			} else {
				sb_code(b, t->name);
				sb_printf(b, " is %s", verdict_cell(t->verdict));
				if (t->evidence == QA_EVIDENCE_ERROR)
					evidence_item(b, t);
			}
			named++;
		}
		sb_puts(b, ".\n");
	}
	if (!any)
		sb_puts(b, "Every tensor class is byte-identical to ggml's reference quantization.\n");
	sb_putc(b, '\n');
	free(cl.name);
	free(ci);
}

static void diff_recipe(struct sb *b, const struct qa_diff_result *r)
{
	sb_puts(b, "## Recipe check\n\n");
	struct sb s = { 0 };
	recipe_sentence(&s, true, r);
	if (s.p)
		sb_puts(b, s.p + 1); /* drop the leading space */
	if (s.oom)
		b->oom = true;
	sb_free(&s);
	sb_puts(b, "\n\n");
	bool any = false;
	for (size_t i = 0; i < r->n; i++)
		any |= r->tensors[i].in_plan && r->tensors[i].recipe_type != r->tensors[i].type;
	if (r->recipe_name && any) {
		sb_puts(b, "| tensor | artifact type | recipe type | rule |\n|---|---|---|---|\n");
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_diff_tensor *t = &r->tensors[i];
			if (!t->in_plan || t->recipe_type == t->type)
				continue;
			sb_puts(b, "| ");
			sb_code(b, t->name);
			sb_printf(b, " | %s | %s | ", qa_type_name(t->type), qa_type_name(t->recipe_type));
			sb_md(b, t->rule[0] ? t->rule : "-");
			sb_puts(b, " |\n");
		}
		sb_putc(b, '\n');
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
	enum qa_err e = check_writable(o->path, d);
	if (e)
		return e;

	struct plotter pl = { .fmt = fmt, .report = o->path };
	struct sb plots = { 0 }, b = { 0 };
	sb_puts(&plots, "## Plots\n\n### RMSE per layer\n\n");
	plot_rmse(&pl, &plots, r);
	sb_puts(&plots, "### Divergence map\n\nEach row is a tensor with divergent blocks, each cell a run of blocks "
	                "coloured by the fraction that diverge.\n\n");
	plot_divergence(&pl, &plots, r);
	sb_puts(&plots, "### Type map (bits per weight)\n\n");
	plot_types(&pl, &plots, r);

	char def_id[64] = "AUDIT-DIFF-";
	for (int i = 0; i < 4; i++)
		snprintf(def_id + 11 + 2 * i, 3, "%02X", r->artifact_sha256[i]);
	struct sb title = { 0 };
	sb_puts(&title, "Quantization audit of ");
	sb_puts(&title, base_name(r->artifact_path));
	sb_puts(&title, " against ");
	sb_puts(&title, base_name(r->reference_path));
	bool only_imatrix = r->counts[QA_VERDICT_IDENTICAL] + r->counts[QA_VERDICT_IMATRIX] == r->n;
	header(&b, o, title.p ? title.p : "Quantization audit", def_id,
	       r->pass ? "PASS" : only_imatrix ? "NOT VERIFIED — importance-weighted tensors (re-run with --imatrix)" :
	       "FAIL — findings");
	sb_free(&title);

	sb_puts(&b, "## TL;DR\n\n");
	diff_verdict(&b, r, true);
	sb_puts(&b, "\n\n");
	diff_inputs(&b, r);

	sb_puts(&b, "## Mechanism\n\n"
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
	sb_printf(&b, "For llama-family checkpoints a fourth layout, unpermuted, re-quantizes attn_q and attn_k from the "
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
		struct sb le = { 0 };
		layout_error_lines(&le, r, true);
		if (le.len) {
			sb_puts(&b, "## Layouts by error\n\nArtifact RMSE against the reference arranged as each layout, "
			            "with its ratio to the RMSE of ggml's re-quantization under that layout (tensors judged "
			            "by error or left divergent; - where the layout was not tried).\n\n");
			sb_putn(&b, le.p, le.len);
			sb_putc(&b, '\n');
		}
		if (le.oom)
			b.oom = true;
		sb_free(&le);
	}
	diff_table(&b, r);
	diff_recipe(&b, r);
	if (plots.p)
		sb_puts(&b, plots.p);
	if (plots.oom)
		b.oom = true;
	sb_free(&plots);
	falsifier(&b, o, "Re-running this command on the inputs above (same SHA-256) must reproduce every verdict and "
	                 "block count of this report; exit status 0 means PASS, 1 findings.");
	environment(&b, o, &pl, "diff");
	e = write_atomic(o->path, &b, d);
	sb_free(&b);
	if (e == QA_OK)
		plot_note(&pl, note, cap);
	return e;
}

/* ------------------------------------------------------------------ claims */

struct claim {
	const char *id, *text, *model, *tensor, *cls; /* borrowed from the JSON */
	bool has_excess, has_ident;
	int64_t excess;
	bool ident;
};

struct claims {
	json_t *root;
	struct claim *c;
	size_t n;
};

static void claims_free(struct claims *cs)
{
	free(cs->c);
	if (cs->root)
		json_decref(cs->root);
	cs->c = NULL;
	cs->root = NULL;
}

static enum qa_err claims_load(const char *path, struct claims *cs, struct qa_diag *d)
{
	memset(cs, 0, sizeof *cs);
	struct stat st;
	if (stat(path, &st) != 0)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open claims file %s: %s", path, qa_strerror(errno));
	if (!S_ISREG(st.st_mode))
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "claims file %s is not a regular file", path);
	if ((uint64_t)st.st_size > CLAIMS_MAX_BYTES)
		return qa_diag_set(d, QA_ERR_FORMAT, CLAIMS_MAX_BYTES, "claims file larger than %u bytes",
		                   CLAIMS_MAX_BYTES);
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
		claims_free(cs);
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "claims file: the top level is not an object");
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "audit") == 0) {
			if (!json_is_string(v)) {
				claims_free(cs);
				return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET, "claims file: \"audit\" is not a string");
			}
		} else if (strcmp(key, "claims") != 0) {
			char k[64];
			qa_plot_label(key, k, sizeof k);
			claims_free(cs);
			return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET, "claims file: unknown field \"%s\"", k);
		}
	}
	json_t *arr = json_object_get(root, "claims");
	if (!json_is_array(arr)) {
		claims_free(cs);
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET, "claims file: \"claims\" missing or not an array");
	}
	size_t n = json_array_size(arr);
	cs->c = calloc(n ? n : 1, sizeof *cs->c);
	if (!cs->c) {
		claims_free(cs);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(arr, i);
		struct claim *c = &cs->c[i];
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
		claims_free(cs);
		return e;
	}
	cs->n = n;
	return QA_OK;
}

struct claim_eval {
	size_t selected, failed, n_ident;
	int64_t ex_min, ex_max;
};

static bool claim_selects(const struct claim *c, const char *label, const struct qa_swap_tensor *t)
{
	if (strcmp(c->model, "*") != 0 && strcmp(c->model, label) != 0)
		return false;
	if (c->tensor && strcmp(c->tensor, t->name) != 0)
		return false;
	if (c->cls) {
		char cl[64];
		class_of(t->name, cl, sizeof cl);
		if (strcmp(c->cls, cl) != 0)
			return false;
	}
	return true;
}

static bool claim_ok(const struct claim *c, const struct qa_swap_tensor *t)
{
	if (c->has_excess && swap_excess(t) != c->excess)
		return false;
	if (c->has_ident && t->identical != c->ident)
		return false;
	return true;
}

static const char *label_at(const char *const *labels, size_t m)
{
	return labels && labels[m] ? labels[m] : "model";
}

static void claim_evaluate(const struct claim *c, const struct qa_swap_result *const *res,
                           const char *const *labels, size_t n, struct claim_eval *ev)
{
	memset(ev, 0, sizeof *ev);
	for (size_t m = 0; m < n; m++) {
		if (!res[m])
			continue;
		for (size_t i = 0; i < res[m]->n; i++) {
			const struct qa_swap_tensor *t = &res[m]->tensors[i];
			if (!claim_selects(c, label_at(labels, m), t))
				continue;
			int64_t x = swap_excess(t);
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

static void claims_section(struct sb *b, const struct claims *cs, const char *path,
                           const struct qa_swap_result *const *res, const char *const *labels, size_t n,
                           size_t *n_failed)
{
	*n_failed = 0;
	sb_puts(b, "## Claims checked\n\n");
	if (!cs) {
		sb_puts(b, "No claims file was given (--claims FILE.json checks stated claims against these "
		           "measurements).\n\n");
		return;
	}
	sb_puts(b, "Claims file: ");
	sb_code(b, path);
	const char *audit = json_string_value(json_object_get(cs->root, "audit"));
	if (audit) {
		sb_puts(b, " (audit ");
		sb_code(b, audit);
		sb_putc(b, ')');
	}
	sb_puts(b, ". A claim holds when every tensor it selects (model, tensor, class) satisfies every predicate it "
	           "states (excess_bytes: in,out bytes minus out,in bytes; identical: all blocks equal under both "
	           "layouts); a claim that selects no tensor does not hold.\n\n");
	if (cs->n == 0) {
		sb_puts(b, "The file states no claims.\n\n");
		return;
	}
	sb_puts(b, "| id | claim | measured | result | broken by |\n|---|---|---|---|---|\n");
	for (size_t k = 0; k < cs->n; k++) {
		const struct claim *c = &cs->c[k];
		struct claim_eval ev;
		claim_evaluate(c, res, labels, n, &ev);
		bool holds = ev.selected > 0 && ev.failed == 0;
		if (!holds)
			(*n_failed)++;
		sb_puts(b, "| ");
		sb_md(b, c->id);
		sb_puts(b, " | ");
		sb_md(b, c->text);
		sb_puts(b, " | ");
		if (ev.selected == 0) {
			sb_puts(b, "no tensor selected");
		} else {
			sb_printf(b, "%zu %s", ev.selected, plural(ev.selected, "tensor", "tensors"));
			if (c->has_excess) {
				if (ev.ex_min == ev.ex_max)
					sb_printf(b, ": excess %+" PRId64 " B", ev.ex_min);
				else
					sb_printf(b, ": excess %+" PRId64 " to %+" PRId64 " B", ev.ex_min, ev.ex_max);
			}
			if (c->has_ident)
				sb_printf(b, "%s %zu identical", c->has_excess ? ";" : ":", ev.n_ident);
		}
		sb_printf(b, " | %s | ", holds ? "HOLDS" : "DOES NOT HOLD");
		if (holds) {
			sb_puts(b, "-");
		} else if (ev.selected == 0) {
			sb_puts(b, "(nothing matches model ");
			sb_code(b, c->model);
			if (c->tensor) {
				sb_puts(b, ", tensor ");
				sb_code(b, c->tensor);
			}
			if (c->cls) {
				sb_puts(b, ", class ");
				sb_code(b, c->cls);
			}
			sb_putc(b, ')');
		} else {
			size_t named = 0;
			for (size_t m = 0; m < n && named < BROKEN_MAX; m++) {
				if (!res[m])
					continue;
				for (size_t i = 0; i < res[m]->n && named < BROKEN_MAX; i++) {
					const struct qa_swap_tensor *t = &res[m]->tensors[i];
					if (!claim_selects(c, label_at(labels, m), t) || claim_ok(c, t))
						continue;
					if (named)
						sb_puts(b, "; ");
					sb_code(b, label_at(labels, m));
					sb_putc(b, ' ');
					sb_code(b, t->name);
					sb_printf(b, " (excess %+" PRId64 " B, %s)", swap_excess(t),
					          t->identical ? "identical" : "divergent");
					named++;
				}
			}
			if (ev.failed > named)
				sb_printf(b, "; and %zu more", ev.failed - named);
		}
		sb_puts(b, " |\n");
	}
	sb_printf(b, "\n%zu of %zu %s %s.\n\n", cs->n - *n_failed, cs->n, plural(cs->n, "claim", "claims"),
	          plural(cs->n - *n_failed, "holds", "hold"));
}

enum qa_err qa_report_claims_check(const struct qa_swap_result *const *results, const char *const *labels, size_t n,
                                   const char *path, size_t *n_claims, size_t *n_failed, struct qa_diag *d)
{
	if (!path || (n && !results))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "claims: no file or results");
	struct claims cs;
	enum qa_err e = claims_load(path, &cs, d);
	if (e)
		return e;
	size_t failed = 0;
	for (size_t k = 0; k < cs.n; k++) {
		struct claim_eval ev;
		claim_evaluate(&cs.c[k], results, labels, n, &ev);
		failed += !(ev.selected > 0 && ev.failed == 0);
	}
	if (n_claims)
		*n_claims = cs.n;
	if (n_failed)
		*n_failed = failed;
	claims_free(&cs);
	return QA_OK;
}

/* ------------------------------------------------------------------ swap report */

static void swap_mechanism(struct sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                           size_t n)
{
	sb_puts(b, "## Mechanism\n\n");
	uint32_t be = n && res[0] && res[0]->block_elems ? res[0]->block_elems : 256;
	const struct qa_type_info *ti = n && res[0] ? qa_type_get(res[0]->type) : NULL;
	sb_printf(b, "Every 2-D weight W ([out, in], stored as out rows of in values) was quantized to %s twice with "
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
		sb_puts(b, "For ");
		sb_code(b, label_at(labels, m));
		sb_puts(b, ":\n\n");
		/* one line per distinct (class, in, out) in result order */
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_swap_tensor *t = &r->tensors[i];
			char cl[64], cj[64];
			class_of(t->name, cl, sizeof cl);
			bool seen = false;
			size_t count = 0;
			for (size_t j = 0; j < r->n; j++) {
				const struct qa_swap_tensor *u = &r->tensors[j];
				class_of(u->name, cj, sizeof cj);
				if (strcmp(cl, cj) != 0 || u->in != t->in || u->out != t->out)
					continue;
				if (j < i)
					seen = true;
				count++;
			}
			if (seen)
				continue;
			uint64_t bo = ceil_div(t->in, bel), bi = ceil_div(t->out, bel);
			sb_puts(b, "- ");
			sb_code(b, cl);
			sb_printf(b, " (%zu %s) [in %" PRIu64 ", out %" PRIu64 "]: in %% %" PRIu32 " = %" PRIu64 ", out %% %"
			          PRIu32 " = %" PRIu64 "; out,in = %" PRIu64 " rows x ceil(%" PRIu64 "/%" PRIu32 ") = %"
			          PRIu64 " x %" PRIu64 " = %" PRIu64 " blocks, in,out = %" PRIu64 " rows x ceil(%" PRIu64 "/%"
			          PRIu32 ") = %" PRIu64 " x %" PRIu64 " = %" PRIu64 " blocks",
			          count, plural(count, "tensor", "tensors"), t->in, t->out, bel, t->in % bel, bel,
			          t->out % bel, t->out, t->in, bel, t->out, bo, t->out * bo, t->in, t->out, bel, t->in, bi,
			          t->in * bi);
			int64_t dblk = (int64_t)(t->in * bi) - (int64_t)(t->out * bo);
			if (t->predicted_identical)
				sb_puts(b, ": predicted identical");
			else
				sb_printf(b, ": predicted divergent, %+" PRId64 " blocks x %" PRIu32 " bytes = %+" PRId64
				          " bytes per tensor", dblk, bb, dblk * (int64_t)bb);
			size_t same = 0;
			for (size_t j = 0; j < r->n; j++) {
				const struct qa_swap_tensor *u = &r->tensors[j];
				class_of(u->name, cj, sizeof cj);
				if (strcmp(cl, cj) == 0 && u->in == t->in && u->out == t->out)
					same += u->identical;
			}
			bool wrong = t->predicted_identical ? same != count : same != 0;
			sb_printf(b, "; measured: %zu of %zu identical, excess %+" PRId64 " bytes per tensor%s.\n", same, count,
			          swap_excess(t), wrong ? " (CONTRADICTS THE PREDICTION)" : "");
		}
		sb_putc(b, '\n');
	}
}

static void swap_callout(struct sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                         size_t n)
{
	size_t mis = 0;
	for (size_t m = 0; m < n; m++)
		mis += res[m] ? res[m]->n_mispredicted : 0;
	if (!mis)
		return;
	sb_printf(b, "> **WARNING: the mechanism is falsified.** %zu %s measured differently from the row-split "
	          "prediction:", mis, plural(mis, "tensor was", "tensors were"));
	size_t named = 0;
	for (size_t m = 0; m < n && named < 20; m++)
		for (size_t i = 0; res[m] && i < res[m]->n && named < 20; i++) {
			const struct qa_swap_tensor *t = &res[m]->tensors[i];
			if (t->identical == t->predicted_identical)
				continue;
			sb_puts(b, named ? "; " : " ");
			sb_code(b, label_at(labels, m));
			sb_putc(b, ' ');
			sb_code(b, t->name);
			sb_printf(b, " [in %" PRIu64 ", out %" PRIu64 "] predicted %s, measured %s", t->in, t->out,
			          t->predicted_identical ? "identical" : "divergent", t->identical ? "identical" : "divergent");
			named++;
		}
	if (mis > named)
		sb_printf(b, "; and %zu more", mis - named);
	sb_puts(b, ". AUDIT-Q4K-SHAPE-001's explanation does not account for these tensors.\n\n");
}

static void swap_findings(struct sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                          size_t n)
{
	sb_puts(b, "## Findings per tensor class\n\n");
	uint32_t be = n && res[0] && res[0]->block_elems ? res[0]->block_elems : 256;
	sb_printf(b, "| model | class | tensors | in %% %" PRIu32 " | out %% %" PRIu32 " | identical | divergent | "
	          "mispredicted | blocks out,in | blocks in,out | excess bytes |\n", be, be);
	sb_puts(b, ""
	           "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|\n");
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = res[m];
		if (!r || r->n == 0)
			continue;
		struct classes cl;
		size_t *ci;
		if (!classify(r->n, swap_name_at, r, &cl, &ci)) {
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
				ex += swap_excess(t);
				if (in_mod != UINT64_MAX && in_mod != t->in % bel)
					in_var = true;
				if (out_mod != UINT64_MAX && out_mod != t->out % bel)
					out_var = true;
				in_mod = t->in % bel;
				out_mod = t->out % bel;
			}
			sb_puts(b, "| ");
			sb_md(b, label_at(labels, m));
			sb_puts(b, " | ");
			sb_code(b, cl.name[k]);
			sb_printf(b, " | %zu | ", tot);
			if (in_var)
				sb_puts(b, "varies");
			else
				sb_printf(b, "%" PRIu64, in_mod);
			sb_puts(b, " | ");
			if (out_var)
				sb_puts(b, "varies");
			else
				sb_printf(b, "%" PRIu64, out_mod);
			sb_printf(b, " | %zu | %zu | %zu | %" PRIu64 " | %" PRIu64 " | %+" PRId64 " |\n", same, tot - same, mis,
			          bl[0], bl[1], ex);
		}
		free(cl.name);
		free(ci);
	}
	sb_printf(b, "\n(\"%% %" PRIu32 "\" is the remainder modulo the quantization block size; excess bytes are "
	          "in,out bytes minus out,in bytes, summed over the class.)\n\n", be);
}

static void swap_tables(struct sb *b, const struct qa_swap_result *const *res, const char *const *labels,
                        size_t n)
{
	sb_puts(b, "## Per-tensor results\n\n");
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = res[m];
		if (!r)
			continue;
		sb_puts(b, "### ");
		sb_md(b, label_at(labels, m));
		sb_puts(b, "\n\n");
		if (r->n == 0) {
			sb_puts(b, "No 2-D weights.\n\n");
			continue;
		}
		sb_puts(b, "| tensor | class | shape [in, out] | blocks out,in | blocks in,out | bytes out,in | "
		           "bytes in,out | excess bytes | identical | predicted | first divergent block |\n"
		           "|---|---|---|---:|---:|---:|---:|---:|---|---|---:|\n");
		for (size_t i = 0; i < r->n; i++) {
			const struct qa_swap_tensor *t = &r->tensors[i];
			char cl[64];
			class_of(t->name, cl, sizeof cl);
			sb_puts(b, "| ");
			sb_code(b, t->name);
			sb_puts(b, " | ");
			sb_code(b, cl);
			sb_printf(b, " | [%" PRIu64 ", %" PRIu64 "] | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64
			          " | %+" PRId64 " | %s | %s%s | ", t->in, t->out, t->blocks[0], t->blocks[1], t->bytes[0],
			          t->bytes[1], swap_excess(t), t->identical ? "yes" : "no",
			          t->predicted_identical ? "identical" : "divergent",
			          t->identical != t->predicted_identical ? " (WRONG)" : "");
			if (t->first_divergent != QA_NO_BLOCK)
				sb_printf(b, "%" PRIu64 " |\n", t->first_divergent);
			else
				sb_puts(b, "- |\n");
		}
		sb_putc(b, '\n');
	}
}

static void plot_swap(struct plotter *pl, struct sb *md, const struct qa_swap_result *const *res,
                      const char *const *labels, size_t n)
{
	struct sb s = { 0 };
	sb_puts(&s, "$sw << EOD\n");
	size_t groups = 0;
	uint64_t max_bl = 0, max_by = 0;
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = res[m];
		if (!r || r->n == 0)
			continue;
		struct classes cl;
		size_t *ci;
		if (!classify(r->n, swap_name_at, r, &cl, &ci)) {
			md->oom = true;
			sb_free(&s);
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
			qa_plot_label(label_at(labels, m), lm, sizeof lm);
			qa_plot_label(cl.name[k], lc, sizeof lc);
			if (n > 1)
				sb_printf(&s, "\"%s: %s\"", lm, lc);
			else
				sb_printf(&s, "\"%s\"", lc);
			for (int l = 0; l < 2; l++) {
				max_bl = bl[l] > max_bl ? bl[l] : max_bl;
				max_by = by[l] > max_by ? by[l] : max_by;
			}
			sb_printf(&s, " %" PRIu64 " %" PRIu64 " %.6f %.6f\n", bl[0], bl[1], (double)by[0] / 1048576.0,
			          (double)by[1] / 1048576.0);
			groups++;
		}
		free(cl.name);
		free(ci);
	}
	sb_puts(&s, "EOD\n");
	if (groups == 0) {
		sb_free(&s);
		sb_puts(md, "(plot not generated: no 2-D weights)\n\n");
		return;
	}
	sb_puts(&s, "set style data histogram\n"
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
	sb_puts(&s, "set logscale y\nset format y \"%g\"\n");
	sb_printf(&s, "set yrange [1:%.1f]\n", (double)(max_bl ? max_bl : 1) * 4);
	sb_puts(&s, "plot $sw using 2:xtic(1) title \"out,in\" lc rgb \"#2471a3\", $sw using 3 title \"in,out\" "
	            "lc rgb \"#c0392b\"\n"
	            "set title \"bytes\"\n"
	            "set ylabel \"MiB\"\n");
	sb_printf(&s, "set yrange [0.001:%.6f]\n", (double)(max_by ? max_by : 1) / 1048576.0 * 4);
	sb_puts(&s, "plot $sw using 4:xtic(1) title \"out,in\" lc rgb \"#2471a3\", $sw using 5 title \"in,out\" "
	            "lc rgb \"#c0392b\"\n"
	            "unset multiplot\n");
	plot_one(pl, md, "layouts", "Blocks and bytes per layout by tensor class", &s);
	sb_free(&s);
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
	struct claims cs;
	bool have_claims = false;
	enum qa_err e;
	if (o->claims_path) {
		if ((e = claims_load(o->claims_path, &cs, d)))
			return e;
		have_claims = true;
	}
	if ((e = check_writable(o->path, d))) {
		if (have_claims)
			claims_free(&cs);
		return e;
	}
	const struct qa_swap_result *first = NULL;
	size_t mis = 0;
	for (size_t m = 0; m < n; m++) {
		if (results[m] && !first)
			first = results[m];
		mis += results[m] ? results[m]->n_mispredicted : 0;
	}

	struct sb claims_md = { 0 };
	size_t failed = 0;
	claims_section(&claims_md, have_claims ? &cs : NULL, o->claims_path, results, labels, n, &failed);

	struct plotter pl = { .fmt = fmt, .report = o->path };
	struct sb plots = { 0 }, b = { 0 };
	sb_puts(&plots, "## Plots\n\n### Blocks and bytes per layout by tensor class\n\n");
	plot_swap(&pl, &plots, results, labels, n);

	char def_id[64] = "AUDIT-SWAP-";
	if (first)
		for (int i = 0; i < 4; i++)
			snprintf(def_id + 11 + 2 * i, 3, "%02X", first->reference_sha256[i]);
	else
		snprintf(def_id + 11, sizeof def_id - 11, "EMPTY");
	struct sb title = { 0 }, status = { 0 };
	sb_printf(&title, "Shape-swap audit (%s) of ", first ? qa_type_name(first->type) : "-");
	for (size_t m = 0; m < n; m++) {
		if (m)
			sb_puts(&title, m + 1 == n ? " and " : ", ");
		sb_puts(&title, label_at(labels, m));
	}
	if (mis)
		sb_printf(&status, "FALSIFIED — %zu %s the predicted mechanism", mis,
		          plural(mis, "tensor contradicts", "tensors contradict"));
	else
		sb_puts(&status, "CONFIRMED — every tensor behaves as predicted");
	if (have_claims && cs.n)
		sb_printf(&status, "; %zu of %zu %s %s", failed ? failed : cs.n, cs.n, plural(cs.n, "claim", "claims"),
		          failed ? plural(failed, "does not hold", "do not hold") : plural(cs.n, "holds", "hold"));
	header(&b, o, title.p ? title.p : "Shape-swap audit", def_id, status.p ? status.p : "");
	if (title.oom || status.oom)
		b.oom = true;
	sb_free(&title);
	sb_free(&status);

	sb_puts(&b, "## TL;DR\n\n");
	swap_verdict(&b, results, labels, n, true);
	if (have_claims && cs.n)
		sb_printf(&b, " Claims: %zu of %zu %s.", cs.n - failed, cs.n, plural(cs.n - failed, "holds", "hold"));
	sb_puts(&b, "\n\n");
	swap_callout(&b, results, labels, n);

	sb_puts(&b, "## Inputs\n\n| model | path | size (bytes) | SHA-256 | arch | type |\n|---|---|---:|---|---|---|\n");
	for (size_t m = 0; m < n; m++) {
		const struct qa_swap_result *r = results[m];
		if (!r)
			continue;
		sb_puts(&b, "| ");
		sb_md(&b, label_at(labels, m));
		sb_puts(&b, " | ");
		sb_code(&b, r->reference_path ? r->reference_path : "");
		sb_printf(&b, " | %" PRIu64 " | ", r->reference_size);
		sb_hex(&b, r->reference_sha256, QA_SHA256_LEN);
		sb_puts(&b, " | ");
		sb_md(&b, r->arch[0] ? r->arch : "-");
		sb_printf(&b, " | %s |\n", qa_type_name(r->type));
	}
	sb_putc(&b, '\n');

	swap_mechanism(&b, results, labels, n);
	swap_findings(&b, results, labels, n);
	swap_callout(&b, results, labels, n);
	swap_tables(&b, results, labels, n);
	if (claims_md.p)
		sb_puts(&b, claims_md.p);
	if (claims_md.oom || plots.oom)
		b.oom = true;
	sb_free(&claims_md);
	if (plots.p)
		sb_puts(&b, plots.p);
	sb_free(&plots);
	falsifier(&b, o, "Re-running this command on the checkpoints above (same SHA-256) must reproduce every block "
	                 "count, digest comparison and claim result of this report.");
	environment(&b, o, &pl, "shape-swap");
	size_t n_claims = have_claims ? cs.n : 0;
	if (have_claims)
		claims_free(&cs);
	e = write_atomic(o->path, &b, d);
	sb_free(&b);
	if (e == QA_OK) {
		plot_note(&pl, note, cap);
		if (have_claims && failed && note && cap) {
			size_t k = strlen(note);
			snprintf(note + k, cap - k, "; %zu of %zu %s %s", failed, n_claims, plural(n_claims, "claim", "claims"),
			         plural(failed, "does not hold", "do not hold"));
		}
	}
	return e;
}
