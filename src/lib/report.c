/*
 * report.c - what the markdown reports share: tensor classes, the atomic
 * write, the gnuplot plot runner, and the header, falsifier and environment
 * sections (see report_int.h).  The diff report is in report_diff.c, the
 * shape-swap report in report_swap.c, the claims check in claims.c.
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

#include "names.h"
#include "plot.h"
#include "remote.h"
#include "tmpfile.h"
#include "types.h"

#define PLOT_MISSING_NOTE "(plot not generated: gnuplot not found; set QUANTAUDIT_GNUPLOT)"

const char *qa_report_plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

const char *qa_report_base_name(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p ? p : "";
}

/* The tensor class of name, with ".bias" kept apart from the weights. */
void qa_report_class_of(const char *name, char *buf, size_t cap)
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

const char *qa_report_label_at(const char *const *labels, size_t m)
{
	return labels && labels[m] ? labels[m] : "model";
}

static size_t class_index(struct qa_report_classes *c, const char *cls)
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
bool qa_report_classify(size_t n, const char *(*name_at)(const void *, size_t), const void *ctx,
                     struct qa_report_classes *cl, size_t **ci)
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
		qa_report_class_of(name_at(ctx, i), c, sizeof c);
		(*ci)[i] = class_index(cl, c);
	}
	return true;
}

int64_t qa_report_swap_excess(const struct qa_swap_tensor *t)
{
	return (int64_t)t->bytes[QA_LAYOUT_IN_OUT] - (int64_t)t->bytes[QA_LAYOUT_OUT_IN];
}

uint64_t qa_report_ceil_div(uint64_t a, uint64_t b)
{
	return b ? a / b + (a % b != 0) : 0;
}
/* ------------------------------------------------------------------ files */

enum qa_err qa_report_write_atomic(const char *path, const struct qa_sb *b, struct qa_diag *d)
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
enum qa_err qa_report_check_writable(const char *path, struct qa_diag *d)
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
struct qa_report_plot_names {
	char full[4096];
	char rel[1024];
};

static bool plot_path(const char *report, const char *what, const char *fmt, struct qa_report_plot_names *p)
{
	const char *b = qa_report_base_name(report);
	size_t blen = strlen(b);
	if (blen > 3 && strcmp(b + blen - 3, ".md") == 0)
		blen -= 3;
	int n = snprintf(p->rel, sizeof p->rel, "%.*s-%s.%s", (int)blen, b, what, fmt);
	if (n < 0 || (size_t)n >= sizeof p->rel)
		return false;
	n = snprintf(p->full, sizeof p->full, "%.*s%s", (int)(b - report), report, p->rel);
	return n >= 0 && (size_t)n < sizeof p->full;
}

/* Draw one plot and put the markdown for it (image link or note) into md. */
void qa_report_plot_one(struct qa_report_plotter *pl, struct qa_sb *md, const char *what, const char *alt,
                     const struct qa_sb *script)
{
	struct qa_report_plot_names pn;
	if (!plot_path(pl->report, what, pl->fmt, &pn)) {
		qa_sb_puts(md, "(plot not generated: the report path is too long)\n\n");
		pl->failed++;
		return;
	}
	if (pl->unavailable) {
		qa_sb_puts(md, PLOT_MISSING_NOTE "\n\n");
		return;
	}
	if (script->oom) {
		qa_sb_puts(md, "(plot not generated: out of memory)\n\n");
		pl->failed++;
		return;
	}
	bool ran = false;
	struct qa_diag pd;
	qa_diag_clear(&pd);
	enum qa_err e = qa_plot_run(pl->fmt, script->p ? script->p : "", pn.full, &ran, &pd);
	if (e == QA_OK && !ran) {
		pl->unavailable = true;
		qa_sb_puts(md, PLOT_MISSING_NOTE "\n\n");
		return;
	}
	if (e != QA_OK) {
		pl->failed++;
		if (!pl->first_error[0])
			snprintf(pl->first_error, sizeof pl->first_error, "%s", pd.msg);
		qa_sb_puts(md, "(plot not generated: ");
		qa_escape_md_str(md, pd.msg);
		qa_sb_puts(md, ")\n\n");
		return;
	}
	pl->made++;
	qa_sb_printf(md, "![%s](", alt);
	/* the link is the bare file name; escape what markdown would misread */
	for (const char *s = pn.rel; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == '(' || c == ')' || c == '<' || c == '>' || c >= 0x7f)
			qa_sb_printf(md, "%%%02X", c);
		else
			qa_sb_putc(md, (char)c);
	}
	qa_sb_puts(md, ")\n\n");
}

void qa_report_plot_note(const struct qa_report_plotter *pl, char *note, size_t cap)
{
	if (!note || cap == 0)
		return;
	if (pl->unavailable && pl->made == 0)
		snprintf(note, cap, "; gnuplot not found, plots skipped");
	else if (pl->failed && pl->made == 0)
		snprintf(note, cap, "; %d %s failed (%s)", pl->failed, qa_report_plural((uint64_t)pl->failed, "plot", "plots"),
		         pl->first_error);
	else if (pl->failed)
		snprintf(note, cap, " and %d %s; %d %s failed (%s)", pl->made, qa_report_plural((uint64_t)pl->made, "plot", "plots"),
		         pl->failed, qa_report_plural((uint64_t)pl->failed, "plot", "plots"), pl->first_error);
	else if (pl->made)
		snprintf(note, cap, " and %d %s", pl->made, qa_report_plural((uint64_t)pl->made, "plot", "plots"));
	else
		note[0] = '\0';
}
/* ------------------------------------------------------------------ header */

static void today(const struct qa_report_opts *o, char *buf, size_t cap)
{
	if (o->date) {
		struct qa_sb b = { 0 };
		qa_escape_term_str(&b, o->date);
		qa_sb_copy_out(&b, buf, cap);
		qa_sb_free(&b);
		return;
	}
	time_t now = time(NULL);
	struct tm tm;
	if (!gmtime_r(&now, &tm) || strftime(buf, cap, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, cap, "%s", "1970-01-01");
}

void qa_report_policy_sentence(struct qa_sb *b, const struct qa_report_policy *pol, bool md)
{
	qa_sb_puts(b, "Policy ");
	qa_escape_name(b, md, pol->path ? pol->path : "(given)");
	if (pol->pass) {
		qa_sb_printf(b, ": PASS: nothing fails it (%zu warned, %zu ignored); the findings that follow are reported, "
		             "not blocking.", pol->warned, pol->ignored);
		return;
	}
	qa_sb_printf(b, ": FAIL: %zu %s it", pol->failing, qa_report_plural(pol->failing, "item fails", "items fail"));
	for (size_t i = 0; i < pol->n_failing_names; i++) {
		qa_sb_puts(b, i ? ", " : " (");
		qa_escape_name(b, md, pol->failing_names[i]);
	}
	if (pol->n_failing_names)
		qa_sb_puts(b, pol->failing > pol->n_failing_names ? ", ...)" : ")");
	qa_sb_printf(b, "; %zu warned, %zu ignored.", pol->warned, pol->ignored);
}

void qa_report_policy_status(struct qa_sb *b, const struct qa_report_policy *pol, const char *raw)
{
	qa_sb_puts(b, pol->pass ? "PASS under policy " : "FAIL under policy ");
	qa_escape_md_str(b, qa_report_base_name(pol->path ? pol->path : "(given)"));
	qa_sb_puts(b, " (findings: ");
	qa_sb_puts(b, raw);
	qa_sb_puts(b, ")");
}

void qa_report_header(struct qa_sb *b, const struct qa_report_opts *o, const char *def_title,
                   const char *def_id, const char *status)
{
	char date[64];
	today(o, date, sizeof date);
	qa_sb_puts(b, "# ");
	qa_escape_md_str(b, o->title ? o->title : def_title);
	qa_sb_puts(b, "\n\nDocument ID: ");
	qa_escape_md_str(b, o->id ? o->id : def_id);
	qa_sb_puts(b, "  \nStatus: ");
	qa_sb_puts(b, status);
	qa_sb_puts(b, "  \nquantaudit version: ");
	qa_escape_md_str(b, o->version ? o->version : "unknown");
	qa_sb_puts(b, "  \nDate: ");
	qa_sb_puts(b, date);
	qa_sb_puts(b, "\n\n");
}

void qa_report_falsifier(struct qa_sb *b, const struct qa_report_opts *o, const char *what)
{
	struct qa_sb cmd = { 0 };
	const char *a0 = o->argc > 0 && o->argv && o->argv[0] ? qa_report_base_name(o->argv[0]) : "";
	if (strncmp(a0, "quantaudit", 10) != 0)
		qa_sb_puts(&cmd, "quantaudit");
	for (int i = 0; i < o->argc && o->argv; i++) {
		if (!o->argv[i])
			break;
		if (cmd.len)
			qa_sb_putc(&cmd, ' ');
		/* a remote input is named at the commit this run read */
		char *pinned = qa_remote_pinned_url(o->argv[i]);
		qa_sb_shell(&cmd, pinned ? pinned : o->argv[i]);
		free(pinned);
	}
	/* a fence longer than any run of backticks in the command */
	size_t run = 0, longest = 0;
	for (size_t i = 0; i < cmd.len; i++) {
		run = cmd.p[i] == '`' ? run + 1 : 0;
		if (run > longest)
			longest = run;
	}
	size_t fence = longest >= 3 ? longest + 1 : 3;
	qa_sb_puts(b, "## Falsifier\n\n");
	qa_sb_puts(b, what);
	qa_sb_puts(b, "\n\n");
	for (size_t i = 0; i < fence; i++)
		qa_sb_putc(b, '`');
	qa_sb_puts(b, "sh\n");
	if (cmd.p)
		qa_sb_putn(b, cmd.p, cmd.len);
	qa_sb_putc(b, '\n');
	for (size_t i = 0; i < fence; i++)
		qa_sb_putc(b, '`');
	qa_sb_puts(b, "\n\n");
	if (cmd.oom)
		b->oom = true;
	qa_sb_free(&cmd);
}

void qa_report_environment(struct qa_sb *b, const struct qa_report_opts *o, const struct qa_report_plotter *pl,
                        const char *command)
{
	qa_sb_puts(b, "## Environment\n\n- quantaudit: ");
	qa_escape_md_str(b, o->version ? o->version : "unknown");
	qa_sb_printf(b, "\n- plots: %s\n\n", pl->made ? (strcmp(pl->fmt, "svg") == 0 ? "gnuplot, svg terminal" :
	                                                "gnuplot, pngcairo terminal") :
	          "not generated");
	qa_sb_puts(b, "## Changelog\n\n");
	qa_sb_printf(b, "- v1 (see Date above): generated by `quantaudit %s`.\n", command);
}
