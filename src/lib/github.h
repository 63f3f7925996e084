/*
 * github.h - GitHub Actions output of a gate (policy.h): workflow-command
 * annotations, the job summary ($GITHUB_STEP_SUMMARY) and step outputs
 * ($GITHUB_OUTPUT).
 *
 * Everything here only reads a struct qa_gate, so the annotations, the
 * summary, the outputs and the exit status cannot disagree.  Names come from
 * files and are hostile: annotation text is escaped as the runner's toolkit
 * does (message: '%', CR, LF; properties also ':' and ','), other control
 * bytes become '?', and markdown punctuation is backslash-escaped.
 */
#ifndef QA_GITHUB_H
#define QA_GITHUB_H

#include <stdio.h>

#include "err.h"
#include "policy.h"

/* At most this many error and this many warning annotations per run: GitHub
 * shows 10 of each per step, so the last one counts the rest. */
#define QA_GITHUB_MAX_ANNOTATIONS 10

/* The job summary is kept under this size (GitHub's limit per step). */
#define QA_GITHUB_SUMMARY_MAX (1024u * 1024u)

/*
 * Escape s for a workflow command into out (cap bytes, NUL-terminated,
 * truncated at a whole escape): '%' -> %25, CR -> %0D, LF -> %0A, and when
 * property is true also ':' -> %3A and ',' -> %2C; other control bytes
 * become '?'.  Returns out.
 */
char *qa_github_escape(const char *s, bool property, char *out, size_t cap);

/*
 * Write one "::error title=...::message" line per failing item and one
 * "::warning ..." per warned item of g to f (stderr in the CLI), at most
 * QA_GITHUB_MAX_ANNOTATIONS of each kind: past the cap the last annotation
 * of the kind counts the items not shown.  command names the command
 * ("diff") in the titles.  Errors: QA_ERR_IO when f cannot be written.
 */
enum qa_err qa_github_annotate(const struct qa_gate *g, const char *command, FILE *f,
                               struct qa_diag *d);

/* What the job summary links to and says besides the gate. */
struct qa_github_summary {
	const char *command;      /* "diff", "verify", "shape-swap", "merge" */
	const char *verdict;      /* the one-paragraph verdict, or NULL */
	const char *report;       /* the report's path, or NULL */
	const char *json;         /* the JSON output's path (-o), or NULL */
	const char *junit;        /* the JUnit file's path, or NULL */
	const char *note;         /* an extra line (e.g. digests not computed), or NULL */
};

/*
 * Append the job summary of g (GitHub-flavoured markdown: verdict line,
 * per-class table, failing and warned tensors, links) to the file at path,
 * keeping the file under QA_GITHUB_SUMMARY_MAX bytes: when the summary does
 * not fit, it is cut at a line and ends with a line saying so.  Errors:
 * QA_ERR_IO when the file cannot be opened or written.
 */
enum qa_err qa_github_summary_append(const struct qa_gate *g, const struct qa_github_summary *s,
                                     const char *path, struct qa_diag *d);

/*
 * Append the step outputs verdict (pass/fail), tensors, identical,
 * failing and, when report is not NULL, report to the file at path, in
 * "name=value" form, or the "name<<DELIMITER" form for a value holding a
 * line break.  Errors: QA_ERR_IO.
 */
enum qa_err qa_github_outputs_append(const struct qa_gate *g, const char *report, const char *path,
                                     struct qa_diag *d);

#endif
