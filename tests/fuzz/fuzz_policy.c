/*
 * fuzz_policy.c - libFuzzer target for the gate policy parser that
 * `--policy FILE` feeds with untrusted JSON.  Every input must be accepted
 * or refused cleanly (a refusal carries an offset inside the input); an
 * accepted policy is also evaluated against a small diff result.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qa_policy *p = NULL;
	struct qa_diag d;
	if (qa_policy_parse(data, size, &p, &d) != QA_OK) {
		if (d.code == QA_ERR_FORMAT && d.offset != QA_NO_OFFSET && d.offset > size)
			abort();
		return 0;
	}
	struct qa_diff_tensor t[2];
	memset(t, 0, sizeof t);
	t[0].name = (char *)"blk.0.attn_q.weight";
	t[0].verdict = QA_VERDICT_DIVERGENT;
	t[0].has_error = true;
	t[0].rmse = 2;
	t[0].requant_rmse = 1;
	t[0].in_plan = true;
	t[0].recipe_type = 3;
	t[1].name = (char *)"output.weight";
	t[1].verdict = QA_VERDICT_IDENTICAL;
	struct qa_diff_result r;
	memset(&r, 0, sizeof r);
	r.n = 2;
	r.tensors = t;
	struct qa_gate g;
	qa_gate_init(&g);
	if (qa_gate_add_diff(&g, p, &r, "a", &d) == QA_OK)
		json_decref(qa_gate_to_json(&g));
	qa_gate_free(&g);
	qa_policy_free(p);
	return 0;
}
