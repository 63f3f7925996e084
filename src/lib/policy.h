/*
 * policy.h - what fails a run: the gate policy (JSON, schema
 * quantaudit.policy/1) and its one evaluation over a diff, verify or
 * shape-swap result.
 *
 * A policy maps every verdict or status name a command can give a tensor
 * (one table, qa_policy_status_at) to an action: fail, warn or ignore; it
 * also sets RMSE-ratio limits per tensor class (the artifact's RMSE over
 * that of ggml's re-quantization), whether a recipe deviation fails or
 * warns, and glob patterns of tensors to skip.  Without a policy the
 * default holds: a tensor passes only when it is identical (verify: its
 * digests match), every other status fails, recipe deviations and error
 * figures are not judged.
 *
 * The evaluation (a struct qa_gate) is computed once per run and is what
 * the exit status, the GitHub annotations, job summary and outputs, and the
 * JUnit report all read: nothing decides a tensor's fate twice.
 */
#ifndef QA_POLICY_H
#define QA_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "compare.h"
#include "err.h"
#include "manifest.h"

#define QA_POLICY_SCHEMA "quantaudit.policy/1"

/* What a tensor's status makes of the run, in increasing severity. */
enum qa_action {
	QA_ACTION_PASS,    /* counts as good */
	QA_ACTION_IGNORE,  /* skipped: neither good nor bad (JUnit <skipped/>) */
	QA_ACTION_WARN,    /* reported, does not fail the run */
	QA_ACTION_FAIL     /* fails the run */
};
#define QA_ACTION_COUNT 4

/* "pass", "ignore", "warn", "fail". */
const char *qa_action_name(enum qa_action a);

/* Which commands give a status (bit mask of qa_policy_status.commands). */
#define QA_POLICY_DIFF 1u
#define QA_POLICY_VERIFY 2u
#define QA_POLICY_SWAP 4u

/* One entry of the table of every verdict and status name this build knows. */
struct qa_policy_status {
	const char *name;         /* as in the JSON outputs, e.g. "layout-swap" */
	unsigned commands;        /* QA_POLICY_DIFF | ... */
	enum qa_action fallback;  /* the action without a policy */
	const char *meaning;      /* one line, for the documentation */
};

/* The number of known names, and entry i (0 <= i < count) of the table. */
size_t qa_policy_status_count(void);
const struct qa_policy_status *qa_policy_status_at(size_t i);

/* The index of name in the table, or -1 when this build does not know it. */
int qa_policy_status_find(const char *name);

/* An RMSE-ratio limit for one tensor class ("*": every class not listed). */
struct qa_policy_limit {
	char cls[64];
	double fail;              /* 0: no fail limit */
	double warn;              /* 0: no warn limit */
};

struct qa_policy {
	enum qa_action *status;   /* one per table entry */
	enum qa_action recipe_deviation;
	size_t n_limits;
	struct qa_policy_limit *limits;
	size_t n_skip;
	char **skip;              /* fnmatch(3) patterns over GGUF tensor names */
};

/*
 * Parse a policy from len bytes at buf (borrowed).  The document is a JSON
 * object:
 *   "schema": "quantaudit.policy/1"                  (required)
 *   "verdicts": { NAME: "fail"|"warn"|"ignore", ... } names from the table
 *   "max_rmse_ratio": { CLASS|"*": number > 0, ... } fail above
 *   "warn_rmse_ratio": { CLASS|"*": number > 0, ... } warn above
 *   "recipe_deviation": "fail"|"warn"|"ignore"       (default "ignore")
 *   "skip": [ GLOB, ... ]
 * Unknown keys, unknown names, duplicate keys and mistyped values are
 * refused.  The caller frees *out with qa_policy_free.  Errors:
 * QA_ERR_FORMAT with the byte offset of the offending key or value (of the
 * JSON error for malformed text) and the reason; QA_ERR_NOMEM.
 */
enum qa_err qa_policy_parse(const void *buf, size_t len, struct qa_policy **out,
                            struct qa_diag *d);

/* The same for the file at path; QA_ERR_IO when it cannot be read. */
enum qa_err qa_policy_load(const char *path, struct qa_policy **out, struct qa_diag *d);

void qa_policy_free(struct qa_policy *p);

/* ------------------------------------------------------------------ the gate */

/* One tensor's (or, for verify, the file's) fate. */
struct qa_gate_item {
	const char *name;         /* borrowed from the result (lives as long as it) */
	char cls[72];             /* tensor class, e.g. "attn_q", "attn_q.bias" */
	const char *status;       /* a table name (static) */
	enum qa_action action;
	bool has_ratio;
	double rmse_ratio;        /* artifact RMSE / re-quantization RMSE */
	char detail[320];         /* why, with blocks and error figures; "" when it passes */
	bool whole;               /* about the file, not a tensor (diff's metadata findings,
	                           * verify's metadata-changed and file-mismatch) */
};

/* One input artifact (diff, verify) or one model (shape-swap). */
struct qa_gate_suite {
	const char *name;         /* borrowed, e.g. the artifact path or the label */
	size_t first, n;          /* items[first .. first+n) */
	size_t counts[QA_ACTION_COUNT];
};

struct qa_gate {
	size_t n_suites;
	struct qa_gate_suite *suites;
	size_t n;
	struct qa_gate_item *items;
	size_t counts[QA_ACTION_COUNT];
	size_t tensors;           /* items that are tensors (not whole) */
	size_t identical;         /* items whose status is "identical" or "match" */
	bool pass;                /* no item fails */
};

/* Make g empty (a zeroed struct is empty too). */
void qa_gate_init(struct qa_gate *g);

/*
 * Judge every tensor of a diff result r under policy p (NULL: the default)
 * and append them to g as one suite named suite (borrowed, like the tensor
 * names: g must not outlive r or suite).  Errors: QA_ERR_NOMEM.
 */
enum qa_err qa_gate_add_diff(struct qa_gate *g, const struct qa_policy *p,
                             const struct qa_diff_result *r, const char *suite,
                             struct qa_diag *d);

/* The same for one shape-swap result (statuses "identical", "divergent"). */
enum qa_err qa_gate_add_swap(struct qa_gate *g, const struct qa_policy *p,
                             const struct qa_swap_result *r, const char *suite,
                             struct qa_diag *d);

/*
 * The same for verify: every tensor of the manifest want (in its order),
 * then the file's extra tensors, judged by v; then "metadata-changed" and
 * "file-mismatch" items when v says so (file_known false: the whole-file
 * digest was not computed and is not judged).
 */
enum qa_err qa_gate_add_verify(struct qa_gate *g, const struct qa_policy *p,
                               const struct qa_manifest *want, const struct qa_verify *v,
                               bool file_known, const char *suite, struct qa_diag *d);

void qa_gate_free(struct qa_gate *g);

/*
 * The gate's figures as a JSON object (new reference): "verdict" ("pass" or
 * "fail"), "tensors" (items that are tensors), "identical", "failing",
 * "warnings", "ignored" (items of every kind).
 */
json_t *qa_gate_to_json(const struct qa_gate *g);

#endif
