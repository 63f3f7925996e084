/*
 * cmd_shape_swap.c - "quantaudit shape-swap REF...": AUDIT-Q4K-SHAPE-001 as a
 * command.  Every 2-D weight is quantized under out,in and under in,out
 * (zero-padded rows), every block hashed, and the two compared against the
 * row-split prediction.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
#include "imatrix.h"
#include "part.h"
#include "report.h"
#include "types.h"
#include "compare_json.h"

static const char usage[] =
	"quantaudit shape-swap REF... [--type q4_K] [--imatrix FILE] [--label NAME]... [--json] [-j N]\n"
	"                             [--report FILE.md [--id ID] [--title T] [--claims FILE.json] [--plot-format png|svg]]\n"
	"                             [-o FILE] [--policy FILE] [--github] [--junit FILE] [--shard K/N [--file-digests]]";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Audit the shape-swap defect (AUDIT-Q4K-SHAPE-001): an exporter that passes a weight's\n"
	       "shape as [in, out] instead of [out, in] makes the quantizer read the same data as rows\n"
	       "of out_features, each zero-padded to whole blocks.  For every 2-D weight of each REF\n"
	       "(in GGUF naming) this quantizes under out,in and in,out, hashes every 256-element\n"
	       "block and compares, next to the prediction of the mechanism: the bytes cannot change\n"
	       "when both dims are multiples of the block size (256 for k-quants) or the matrix is\n"
	       "square.  A tensor where prediction and measurement disagree is called out.\n\n"
	       "  --type T           quantization type (default q4_K)\n"
	       "  --imatrix FILE     quantize with this importance matrix (llama.cpp GGUF or legacy\n"
	       "                     .dat) as llama-quantize --imatrix would: out,in with each\n"
	       "                     tensor's weights; in,out with them only when square\n"
	       "  --label NAME       name the next REF in reports (repeat per REF; default: file name)\n"
	       "  --json             print JSON (schema quantaudit.shape-swap/1; with several REFs, an\n"
	       "                     object whose \"models\" array holds one such object per REF)\n"
	       "  --report FILE.md   write a markdown audit report with plots beside it\n"
	       "  --id ID, --title T the report's document ID and title\n"
	       "  --claims FILE      check the claims in FILE (JSON) against the measurements\n"
	       "  --plot-format F    png (default) or svg\n"
	       "  -o FILE            write the JSON to FILE (atomically) instead of standard output\n"
	       "  --policy FILE      decide what fails from FILE (schema quantaudit.policy/1)\n"
	       "  --github           GitHub Actions output (implied by GITHUB_ACTIONS=true)\n"
	       "  --junit FILE       write a JUnit XML report (one testsuite per REF)\n"
	       "  --shard K/N        audit only shard K of N and write a part for 'quantaudit merge'\n"
	       "  --file-digests     with --shard: compute the references' SHA-256s too\n"
	       "  -j, --threads N    worker threads (default: all cores)\n"
	       "  -h, --help         show this help\n\n"
	       "Exit status: 1 when any tensor diverges (the swap is not benign; with --policy:\n"
	       "when a tensor fails the policy), 0 otherwise.\n",
	       usage);
}

static void print_human(const struct qa_swap_result *r, const char *label)
{
	if (strcmp(label, r->reference_path) == 0)
		printf("%s (%s, type %s)\n", r->reference_path, r->arch, qa_type_name(r->type));
	else
		printf("%s: %s (%s, type %s)\n", label, r->reference_path, r->arch, qa_type_name(r->type));
	printf("%-30s %-13s %9s %9s %12s %12s %10s %-9s %-9s %s\n", "tensor", "shape[in,out]",
	       "blk out,in", "blk in,out", "B out,in", "B in,out", "excess", "identical", "predicted", "first div");
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_swap_tensor *t = &r->tensors[i];
		char shape[40], first[24] = "-";
		if (t->experts > 1) /* one slice's [in, out], times the experts */
			snprintf(shape, sizeof shape, "%" PRIu64 "x%" PRIu64 "x%" PRIu64, t->in, t->out, t->experts);
		else
			snprintf(shape, sizeof shape, "%" PRIu64 "x%" PRIu64, t->in, t->out);
		if (t->first_divergent != QA_NO_BLOCK)
			snprintf(first, sizeof first, "%" PRIu64, t->first_divergent);
		printf("%-30s %-13s %10" PRIu64 " %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRId64
		       " %-9s %-9s %s%s\n", t->name, shape, t->blocks[0], t->blocks[1], t->bytes[0], t->bytes[1],
		       (int64_t)(t->bytes[1] - t->bytes[0]), t->identical ? "yes" : "no",
		       t->predicted_identical ? "yes" : "no", first,
		       t->identical != t->predicted_identical ? "  <-- MEASUREMENT CONTRADICTS THE MECHANISM" : "");
	}
	printf("\n");
}

int cli_swap_finish(struct qa_swap_result *const *results, const char *const *names, size_t n,
                    struct cli_gate *g, struct qa_report_opts *ro, bool as_json, int argc, char **argv,
                    const char *note)
{
	struct qa_diag d;
	qa_diag_clear(&d);
	for (size_t i = 0; i < n; i++)
		if (qa_gate_add_swap(&g->gate, g->policy, results[i], names[i], &d))
			return cli_fail(names[i], &d);
	const struct qa_report_policy *pol = cli_gate_report_policy(g);
	if (ro) {
		char where[256] = "";
		ro->policy = pol;
		ro->argc = argc;
		ro->argv = (const char *const *)argv;
		ro->version = cli_version_string();
		if (qa_report_swap_write((const struct qa_swap_result *const *)results, names, n, ro,
		                         where, sizeof where, &d))
			return cli_fail(d.code == QA_ERR_FORMAT && ro->claims_path ? ro->claims_path : ro->path, &d);
		fprintf(stderr, "quantaudit: report written to %s%s\n", ro->path, where);
	}
	char para[4096];
	qa_report_swap_verdict_policy((const struct qa_swap_result *const *)results, names, n, pol, para, sizeof para);
	if (as_json) {
		json_t *root;
		if (n == 1) {
			root = qa_swap_to_json(results[0]);
		} else {
			json_t *models = json_array();
			root = json_object();
			json_object_set_new(root, "schema", json_string("quantaudit.shape-swap-set/1"));
			for (size_t i = 0; i < n; i++) {
				json_t *o = qa_swap_to_json(results[i]);
				json_object_set_new(o, "label", json_string(names[i]));
				json_array_append_new(models, o);
			}
			json_object_set_new(root, "models", models);
		}
		if (g->policy) {
			json_object_set_new(root, "gate", qa_gate_to_json(&g->gate));
			json_object_set_new(root, "verdict", json_string(g->gate.pass ? "pass" : "fail"));
		}
		int jr = cli_json_output(root, g->out_path);
		if (jr)
			return jr;
	} else {
		cli_gate_group_begin(g, "quantaudit shape-swap: per-tensor tables");
		for (size_t i = 0; i < n; i++)
			print_human(results[i], names[i]);
		cli_gate_group_end(g);
		printf("%s\n", para);
		if (note)
			printf("%s\n", note);
		if (cli_flush() != 0)
			return QA_EXIT_IO;
	}
	int er = cli_gate_emit(g, "shape-swap", para, ro ? ro->path : NULL, note);
	return er ? er : g->gate.pass ? QA_EXIT_OK : QA_EXIT_FINDING;
}

int cmd_shape_swap(int argc, char **argv)
{
	enum { O_TYPE = 256, O_LABEL, O_REPORT, O_ID, O_TITLE, O_CLAIMS, O_PLOT, O_IMATRIX, O_POLICY, O_GITHUB,
	       O_JUNIT, O_SHARD, O_DIGESTS };
	static const struct option opts[] = {
		{ "type", required_argument, NULL, O_TYPE },
		{ "label", required_argument, NULL, O_LABEL },
		{ "report", required_argument, NULL, O_REPORT },
		{ "id", required_argument, NULL, O_ID },
		{ "title", required_argument, NULL, O_TITLE },
		{ "claims", required_argument, NULL, O_CLAIMS },
		{ "plot-format", required_argument, NULL, O_PLOT },
		{ "imatrix", required_argument, NULL, O_IMATRIX },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "github", no_argument, NULL, O_GITHUB },
		{ "junit", required_argument, NULL, O_JUNIT },
		{ "shard", required_argument, NULL, O_SHARD },
		{ "file-digests", no_argument, NULL, O_DIGESTS },
		CLI_OPTION_OUTPUT, CLI_OPTION_JSON, CLI_OPTION_THREADS, CLI_OPTION_HELP, CLI_OPTION_END,
	};
	struct cli_common co = CLI_COMMON_INIT("shape-swap", usage, help);
	struct cli_gate g;
	memset(&g, 0, sizeof g);
	struct qa_audit_shard sh = { 0, 0, false };
	uint32_t type = QA_TYPE_Q4_K;
	struct qa_swap_opts so;
	const char *imatrix_path = NULL;
	struct qa_imatrix *im = NULL;
	const char *labels[64];
	size_t n_labels = 0;
	struct qa_report_opts ro;
	int c;
	memset(&ro, 0, sizeof ro);
	memset(&so, 0, sizeof so);
	ro.plot_format = "png";
	while ((c = cli_getopt(&co, argc, argv, "j:ho:", opts)) != -1) {
		switch (c) {
		case CLI_GETOPT_EXIT: return co.status;
		case O_TYPE: {
			const struct qa_type_info *t = qa_type_by_name(optarg);
			if (!t || !t->quantizable || t->block_elems == 1)
				return cli_usage_error("shape-swap", usage, "'%s' is not a quantized type that can be produced", optarg);
			type = t->id;
			break;
		}
		case O_LABEL:
			if (n_labels == 64)
				return cli_usage_error("shape-swap", usage, "at most 64 labels");
			labels[n_labels++] = optarg;
			break;
		case O_REPORT: ro.path = optarg; break;
		case O_ID: ro.id = optarg; break;
		case O_TITLE: ro.title = optarg; break;
		case O_CLAIMS: ro.claims_path = optarg; break;
		case O_IMATRIX: imatrix_path = optarg; break;
		case O_POLICY: g.policy_path = optarg; break;
		case O_GITHUB: g.github = true; break;
		case O_JUNIT: g.junit_path = optarg; break;
		case O_SHARD:
			if (!cli_parse_shard(optarg, &sh.k, &sh.n))
				return cli_usage_error("shape-swap", usage, "--shard needs K/N with 1 <= K <= N <= 256, not '%s'", optarg);
			break;
		case O_DIGESTS: sh.file_digests = true; break;
		case O_PLOT:
			if (strcmp(optarg, "png") && strcmp(optarg, "svg"))
				return cli_usage_error("shape-swap", usage, "--plot-format is png or svg, not '%s'", optarg);
			ro.plot_format = optarg;
			break;
		}
	}
	g.out_path = co.output;
	bool as_json = co.json || co.output;
	so.n_threads = co.threads;
	size_t n = (size_t)(argc - optind);
	if (n == 0)
		return cli_usage_error("shape-swap", usage, "missing REF");
	if (n > 64)
		return cli_usage_error("shape-swap", usage, "at most 64 checkpoints");
	if (n_labels && n_labels != n)
		return cli_usage_error("shape-swap", usage, "give one --label per REF (%zu labels, %zu REFs)", n_labels, n);
	if ((ro.id || ro.title || ro.claims_path) && !ro.path)
		return cli_usage_error("shape-swap", usage, "--id, --title and --claims need --report");
	if (sh.n && (ro.path || g.policy_path || g.junit_path || g.github))
		return cli_usage_error("shape-swap", usage, "--shard writes a part: give --report, --policy, --junit "
		                       "and --github to 'quantaudit merge'");
	if (sh.file_digests && !sh.n)
		return cli_usage_error("shape-swap", usage, "--file-digests needs --shard");
	if (sh.n && imatrix_path)
		return cli_usage_error("shape-swap", usage, "--shard does not take --imatrix yet: audit unsharded");
	const char *inputs[67];
	for (size_t i = 0; i < n; i++)
		inputs[i] = argv[optind + (int)i];
	inputs[n] = ro.claims_path;
	inputs[n + 1] = imatrix_path;
	inputs[n + 2] = g.policy_path;
	int rc = cli_check_output(&co, ro.path, inputs, n + 3);
	if (!rc)
		rc = cli_check_output(&co, co.output, inputs, n + 3);
	if (!rc)
		rc = cli_check_output(&co, g.junit_path, inputs, n + 3);
	if (rc)
		return rc;
	struct qa_swap_result *results[64] = { 0 };
	const char *names[64];
	rc = sh.n ? QA_EXIT_OK : cli_gate_load(&g);
	if (rc)
		return rc;
	if (imatrix_path && (rc = cli_imatrix_load(imatrix_path, &im))) {
		cli_gate_free(&g);
		return rc;
	}
	so.imatrix = im;
	so.imatrix_path = imatrix_path;
	so.shard = sh.n ? &sh : NULL;
	for (size_t i = 0; i < n; i++) {
		const char *path = argv[optind + (int)i];
		struct qa_diag d;
		qa_diag_clear(&d);
		names[i] = n_labels ? labels[i] : path;
		const char *culprit = path;
		enum qa_err e = qa_swap_run(path, type, &so, &results[i], &culprit, &d);
		if (e) {
			rc = e == QA_ERR_USAGE ? cli_usage_error("shape-swap", usage, "%s", d.msg) : cli_fail(culprit, &d);
			goto done;
		}
	}
	if (sh.n) {
		json_t *part = qa_part_swap_to_json(results, names, n, sh.k, sh.n, argc, argv);
		rc = part ? cli_part_output(part, g.out_path) : QA_EXIT_IO;
		goto done;
	}
	rc = cli_swap_finish(results, names, n, &g, ro.path ? &ro : NULL, as_json, argc, argv, NULL);
done:
	for (size_t i = 0; i < n; i++)
		qa_swap_free(results[i]);
	cli_gate_free(&g);
	qa_imatrix_free(im);
	return rc;
}
