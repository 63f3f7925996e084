/*
 * report.h - markdown audit reports (with gnuplot plots) and the one-paragraph
 * verdicts the CLI prints.
 *
 * A report is a document in the style of AUDIT-Q4K-SHAPE-001: header block
 * (ID, quantaudit version, date, status), TL;DR, inputs (paths, sizes,
 * SHA-256), mechanism, findings per tensor class, the per-tensor table,
 * claims checked (shape-swap with a claims file), the falsifier (the exact
 * command line), and the environment.  Reports are deterministic: the same
 * inputs give the same bytes except the date line.  Plots are written
 * beside the report and linked by relative paths; without gnuplot the
 * report is still written, with a note where each plot would be.
 */
#ifndef QA_REPORT_H
#define QA_REPORT_H

#include <stddef.h>

#include "compare.h"
#include "err.h"

/*
 * A gate policy's outcome (policy.h), as the verdict paragraphs state it.
 * With one, the paragraph opens with the policy's verdict and calls the raw
 * audit result "Findings", so that what it says PASS or FAIL is what the
 * exit status says.
 */
struct qa_report_policy {
	const char *path;                  /* the policy file as given */
	bool pass;                         /* nothing fails the policy */
	size_t failing, warned, ignored;   /* items per action */
	const char *const *failing_names;  /* the first failing items (borrowed) */
	size_t n_failing_names;
};

struct qa_report_opts {
	const char *path;              /* the markdown file to write */
	const char *id;                /* document ID; NULL: derived from the inputs */
	const char *title;             /* NULL: a default title */
	const char *plot_format;       /* "png" or "svg" */
	int argc;                      /* the command line, for the falsifier */
	const char *const *argv;
	const char *version;           /* "quantaudit X (OpenSSL ..., libcurl ..., jansson ...)" */
	const char *date;              /* NULL: today's UTC date, YYYY-MM-DD */
	const char *claims_path;       /* shape-swap: JSON claims file to check, or NULL */
	const struct qa_report_policy *policy; /* NULL: no policy (the paragraph states the findings) */
};

/* The one-paragraph verdict of a diff, NUL-terminated in buf (truncated to cap). */
void qa_report_diff_verdict(const struct qa_diff_result *r, char *buf, size_t cap);

/* The same under a policy's outcome pol (NULL: as qa_report_diff_verdict). */
void qa_report_diff_verdict_policy(const struct qa_diff_result *r, const struct qa_report_policy *pol, char *buf,
                                   size_t cap);

/*
 * The errors of the tensors judged by layout error or left divergent, under
 * each layout tried (one plain-text line each, names escaped), in buf
 * (truncated to cap); empty when there are none.
 */
void qa_report_diff_layout_errors(const struct qa_diff_result *r, char *buf, size_t cap);

/*
 * The recipe comparison of r (diff --compare-recipe) as an aligned
 * plain-text table with a heading line, in buf (truncated to cap); empty
 * when r has none.
 */
void qa_report_diff_recipe_cmp(const struct qa_diff_result *r, char *buf, size_t cap);

struct qa_recipe_check;

/*
 * Write the recipe-check report for c (recipecheck.h) to o->path: the plan
 * for every layer, the error per tensor class, and the MODEL-1 claims of the
 * seed audit checked with those numbers (AUDIT-Q4K-RECIPE-002).  note gets
 * a short remark for the CLI.  Errors: QA_ERR_IO, QA_ERR_USAGE.
 */
QA_WARN_UNUSED
enum qa_err qa_report_recipe_check_write(const struct qa_recipe_check *c, const struct qa_report_opts *o,
                                         char *note, size_t cap, struct qa_diag *d);

/* The one-paragraph verdict of a shape-swap run over n models (labels[i] names results[i]). */
void qa_report_swap_verdict(const struct qa_swap_result *const *results,
                            const char *const *labels, size_t n, char *buf, size_t cap);

/* The same under a policy's outcome pol (NULL: as qa_report_swap_verdict). */
void qa_report_swap_verdict_policy(const struct qa_swap_result *const *results, const char *const *labels, size_t n,
                                   const struct qa_report_policy *pol, char *buf, size_t cap);

/*
 * Write the diff report for r to o->path, and its plots beside it.  note
 * receives a short human remark for the CLI (e.g. " and 3 plots" or
 * "; gnuplot not found, plots skipped").  Errors: QA_ERR_IO when the report
 * cannot be written (plots failing is not an error: the report says so).
 */
QA_WARN_UNUSED
enum qa_err qa_report_diff_write(const struct qa_diff_result *r, const struct qa_report_opts *o,
                                 char *note, size_t cap, struct qa_diag *d);

/*
 * Write the shape-swap report for n models (results[i] labelled labels[i])
 * to o->path, with plots beside it.  When o->claims_path is set, each claim
 * of the file is checked against the results and the report states, claim
 * by claim, whether it holds.  Errors: QA_ERR_IO; QA_ERR_FORMAT for a
 * malformed claims file.
 */
QA_WARN_UNUSED
enum qa_err qa_report_swap_write(const struct qa_swap_result *const *results,
                                 const char *const *labels, size_t n,
                                 const struct qa_report_opts *o, char *note, size_t cap,
                                 struct qa_diag *d);

/*
 * Check the claims file at path (the format qa_report_swap_write reads)
 * against n shape-swap results without writing a report: *n_claims
 * receives the number of claims and *n_failed the number that do not hold
 * (either pointer may be NULL), so that a command can decide its exit
 * status.  Errors: QA_ERR_IO when the file cannot be read; QA_ERR_FORMAT
 * for malformed JSON (offset set), unknown fields, missing fields or a
 * claim without a predicate; QA_ERR_USAGE for NULL arguments.
 */
QA_WARN_UNUSED
enum qa_err qa_report_claims_check(const struct qa_swap_result *const *results,
                                   const char *const *labels, size_t n, const char *path,
                                   size_t *n_claims, size_t *n_failed, struct qa_diag *d);

#endif
