/*
 * claims.h - the claims file of a shape-swap report: a JSON list of claims
 * ("model M, tensor T or class C: excess bytes X, identical or not"), loaded,
 * evaluated against shape-swap results, and rendered as the report's
 * "Claims checked" section.  Private to the library (not installed); the
 * public entry is qa_report_claims_check in report.h.
 */
#ifndef QA_CLAIMS_H
#define QA_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "compare.h"
#include "err.h"
#include "strbuf.h"

#define QA_CLAIMS_MAX_BYTES (16u << 20)
#define QA_CLAIMS_BROKEN_MAX 8  /* tensors named per failing claim */

struct qa_claim {
	const char *id, *text, *model, *tensor, *cls; /* borrowed from the JSON */
	bool has_excess, has_ident;
	int64_t excess;
	bool ident;
};

struct qa_claims {
	json_t *root;
	struct qa_claim *c;
	size_t n;
};

struct qa_claim_eval {
	size_t selected, failed, n_ident;
	int64_t ex_min, ex_max;
};

/* Load and validate the claims file at path (at most QA_CLAIMS_MAX_BYTES).
 * On success the caller frees cs with qa_claims_free; the claims' strings
 * are views into cs->root and live as long as cs. */
QA_WARN_UNUSED
enum qa_err qa_claims_load(const char *path, struct qa_claims *cs, struct qa_diag *d);
void qa_claims_free(struct qa_claims *cs);

/* Evaluate claim c against n results (labels[m] names results[m]). */
void qa_claims_evaluate(const struct qa_claim *c, const struct qa_swap_result *const *res,
                        const char *const *labels, size_t n, struct qa_claim_eval *ev);

/* Append the "Claims checked" section for cs (NULL: no claims file) and
 * count the failed claims in *n_failed. */
void qa_claims_section(struct qa_sb *b, const struct qa_claims *cs, const char *path,
                       const struct qa_swap_result *const *res, const char *const *labels, size_t n,
                       size_t *n_failed);

#endif
