/*
 * cli_gate.c - the options diff, verify, shape-swap and merge share for CI
 * use: --policy, --github, --junit, -o (JSON to a file), and emitting what
 * they ask for from the one gate evaluation of a run.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "github.h"
#include "junit.h"
#include "part.h"
#include "tmpfile.h"

bool cli_gate_github(const struct cli_gate *o)
{
	const char *ga = getenv("GITHUB_ACTIONS");
	return o->github || (ga && strcmp(ga, "true") == 0);
}

int cli_gate_load(struct cli_gate *o)
{
	qa_gate_init(&o->gate);
	if (!o->policy_path)
		return QA_EXIT_OK;
	struct qa_diag d;
	qa_diag_clear(&d);
	if (qa_policy_load(o->policy_path, &o->policy, &d))
		return cli_fail(o->policy_path, &d);
	return QA_EXIT_OK;
}

void cli_gate_free(struct cli_gate *o)
{
	qa_policy_free(o->policy);
	o->policy = NULL;
	qa_gate_free(&o->gate);
}

const struct qa_report_policy *cli_gate_report_policy(struct cli_gate *o)
{
	if (!o->policy)
		return NULL;
	struct qa_report_policy *p = &o->report_policy;
	memset(p, 0, sizeof *p);
	p->path = o->policy_path;
	p->pass = o->gate.pass;
	p->failing = o->gate.counts[QA_ACTION_FAIL];
	p->warned = o->gate.counts[QA_ACTION_WARN];
	p->ignored = o->gate.counts[QA_ACTION_IGNORE];
	size_t k = 0;
	for (size_t i = 0; i < o->gate.n && k < CLI_GATE_NAMES; i++)
		if (o->gate.items[i].action == QA_ACTION_FAIL)
			o->failing_names[k++] = o->gate.items[i].name;
	p->failing_names = o->failing_names;
	p->n_failing_names = k;
	return p;
}

void cli_gate_group_begin(const struct cli_gate *o, const char *title)
{
	if (!cli_gate_github(o))
		return;
	char t[512];
	printf("::group::%s\n", qa_github_escape(title, false, t, sizeof t));
}

void cli_gate_group_end(const struct cli_gate *o)
{
	if (cli_gate_github(o))
		printf("::endgroup::\n");
}

int cli_gate_emit(const struct cli_gate *o, const char *command, const char *verdict,
                  const char *report, const char *note)
{
	struct qa_diag d;
	qa_diag_clear(&d);
	if (o->junit_path) {
		char name[64];
		snprintf(name, sizeof name, "quantaudit %s", command);
		if (qa_junit_write(&o->gate, name, o->junit_path, &d))
			return cli_fail(o->junit_path, &d);
	}
	if (!cli_gate_github(o))
		return QA_EXIT_OK;
	if (qa_github_annotate(&o->gate, command, stderr, &d))
		return cli_fail("standard error", &d);
	const char *sum = getenv("GITHUB_STEP_SUMMARY"), *out = getenv("GITHUB_OUTPUT");
	if (sum && *sum) {
		struct qa_github_summary s = { command, verdict, report, o->out_path, o->junit_path, note };
		if (qa_github_summary_append(&o->gate, &s, sum, &d))
			return cli_fail(sum, &d);
	}
	if (out && *out && qa_github_outputs_append(&o->gate, report, out, &d))
		return cli_fail(out, &d);
	return QA_EXIT_OK;
}

static int json_output(json_t *root, const char *path, size_t flags)
{
	if (!path) {
		int rc = json_dumpf(root, stdout, flags);
		json_decref(root);
		/* a write error is reported once, by main's check of stdout */
		if (rc != 0 || fputc('\n', stdout) == EOF || cli_flush() != 0)
			return QA_EXIT_IO;
		return QA_EXIT_OK;
	}
	struct qa_tmpfile t;
	struct qa_diag d;
	qa_diag_clear(&d);
	if (qa_tmpfile_open(&t, path, &d)) {
		json_decref(root);
		return cli_fail(path, &d);
	}
	FILE *f = fdopen(t.fd, "w");
	int rc = f ? json_dumpf(root, f, flags) : -1;
	json_decref(root);
	if (f) {
		t.fd = -1;
		if (rc == 0 && fputc('\n', f) == EOF)
			rc = -1;
		if (fclose(f) != 0)
			rc = -1;
	}
	if (rc != 0) {
		qa_diag_set(&d, QA_ERR_IO, QA_NO_OFFSET, "cannot write: %s", qa_strerror(errno));
		qa_tmpfile_abort(&t);
		return cli_fail(path, &d);
	}
	if (qa_tmpfile_commit(&t, false, &d))
		return cli_fail(path, &d);
	return QA_EXIT_OK;
}

bool cli_parse_shard(const char *s, uint32_t *k, uint32_t *n)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	char a[24];
	uint64_t x, y;
	if (!slash || (size_t)(slash - s) >= sizeof a)
		return false;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	if (!cli_parse_u64(a, 1, QA_PART_MAX_SHARDS, &x) || !cli_parse_u64(slash + 1, 1, QA_PART_MAX_SHARDS, &y) || x > y)
		return false;
	*k = (uint32_t)x;
	*n = (uint32_t)y;
	return true;
}

int cli_json_output(json_t *root, const char *path)
{
	if (!path)
		return cli_json_print(root);
	if (!root) {
		fprintf(stderr, "quantaudit: out of memory\n");
		return QA_EXIT_IO;
	}
	cli_remote_json(root);
	return json_output(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
}

int cli_part_output(json_t *part, const char *path)
{
	if (part)
		cli_remote_json(part); /* what this shard read remotely, summed by merge */
	return json_output(part, path, JSON_COMPACT | JSON_REAL_PRECISION(17));
}
