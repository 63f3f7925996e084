/*
 * report_int.h - what the report modules (report.c, report_diff.c,
 * report_swap.c, claims.c) share: plural words, tensor classes, the atomic
 * write of a rendered report, the plot runner, and the header, falsifier and
 * environment sections.  Private to the library (not installed).
 */
#ifndef QA_REPORT_INT_H
#define QA_REPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compare.h"
#include "err.h"
#include "report.h"
#include "strbuf.h"

#define QA_REPORT_LIST_MAX 5   /* tensors named per kind in a verdict */

/* Classes in order of first appearance. */
struct qa_report_classes {
	char (*name)[64];
	size_t n;
};

/* Plot state shared by the plots of one report. */
struct qa_report_plotter {
	const char *fmt;
	const char *report;
	bool unavailable;   /* gnuplot could not be run: skip the rest */
	int made, failed;
	char first_error[256];
};

/* one when n == 1, many otherwise */
const char *qa_report_plural(uint64_t n, const char *one, const char *many);

/* The file-name part of path p ("" for NULL); a view into p. */
const char *qa_report_base_name(const char *p);

/* The tensor class of name (qa_names_class, or "other"), with ".bias" kept
 * apart from the weights; NUL-terminated in buf. */
void qa_report_class_of(const char *name, char *buf, size_t cap);

/* labels[m], or "model" when there is none. */
const char *qa_report_label_at(const char *const *labels, size_t m);

/*
 * Group n tensors by class: cl lists the classes in order of first
 * appearance and (*ci)[i] is the class of tensor i.  Returns false, with
 * nothing allocated, when memory runs out; otherwise the caller frees
 * cl->name and *ci.
 */
bool qa_report_classify(size_t n, const char *(*name_at)(const void *, size_t), const void *ctx,
                        struct qa_report_classes *cl, size_t **ci);

/* Bytes of the in,out quantization minus bytes of the out,in one. */
int64_t qa_report_swap_excess(const struct qa_swap_tensor *t);

/* a / b rounded up; 0 when b is 0. */
uint64_t qa_report_ceil_div(uint64_t a, uint64_t b);

/* Write the rendered report b to path atomically (see tmpfile.h). */
QA_WARN_UNUSED
enum qa_err qa_report_write_atomic(const char *path, const struct qa_sb *b, struct qa_diag *d);

/* Whether path's directory takes a new file and path is not a directory
 * (checked before any plot is drawn, so that a bad path fails fast). */
QA_WARN_UNUSED
enum qa_err qa_report_check_writable(const char *path, struct qa_diag *d);

/* Draw one plot from script and append its markdown (image link or note) to md. */
void qa_report_plot_one(struct qa_report_plotter *pl, struct qa_sb *md, const char *what, const char *alt,
                        const struct qa_sb *script);

/* The plot summary appended to the CLI's "wrote REPORT" line. */
void qa_report_plot_note(const struct qa_report_plotter *pl, char *note, size_t cap);

/* The sentence that opens a verdict paragraph under a policy: "Policy
 * FILE: PASS: ..." or "... FAIL: N items fail it (names)". */
void qa_report_policy_sentence(struct qa_sb *b, const struct qa_report_policy *pol, bool md);

/* The report's Status line under a policy, e.g. "PASS under policy gate.json
 * (raw findings: FAIL — findings)", into b. */
void qa_report_policy_status(struct qa_sb *b, const struct qa_report_policy *pol, const char *raw);

/* The title and document block. */
void qa_report_header(struct qa_sb *b, const struct qa_report_opts *o, const char *def_title,
                      const char *def_id, const char *status);

/* The falsifier section: what, then the command line in a code fence. */
void qa_report_falsifier(struct qa_sb *b, const struct qa_report_opts *o, const char *what);

/* The environment and changelog sections. */
void qa_report_environment(struct qa_sb *b, const struct qa_report_opts *o, const struct qa_report_plotter *pl,
                           const char *command);

#endif
