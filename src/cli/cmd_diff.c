/*
 * cmd_diff.c - "quantaudit diff REF ARTIFACT": audit a quantized GGUF against
 * the reference checkpoint it was made from.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "reproduce.h"
#include "compare.h"
#include "forensics.h"
#include "imatrix.h"
#include "layout.h"
#include "part.h"
#include "report.h"
#include "types.h"
#include "compare_json.h"

static const char usage[] =
	"quantaudit diff REF ARTIFACT [--imatrix FILE] [--json] [-o FILE] [-j N] [--compare-recipe NAME[,NAME...]]\n"
	"       [--report FILE.md [--id ID] [--title T] [--plot-format png|svg]] [--policy FILE] [--github]\n"
	"       [--junit FILE] [--shard K/N [--file-digests]]";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Re-quantize every tensor of REF (safetensors file, sharded index, directory, or GGUF\n"
	       "of f32/f16/bf16) to the type the ARTIFACT tensor has, exactly as ggml's reference\n"
	       "quantizer would, and compare the two block by block (SHA-256 of every 256-element\n"
	       "block).  Each tensor gets a verdict: identical (matches the out,in layout),\n"
	       "layout-swap (matches in,out only), transposed (matches W^T only), divergent (no\n"
	       "layout matches: count and first divergent block), missing, extra, shape-mismatch,\n"
	       "needs-imatrix (iq2_xxs, iq2_xs, iq1_s: ggml makes them only with an importance\n"
	       "matrix, so give --imatrix) or unsupported-type, with RMSE and max abs error of the\n"
	       "artifact and of the re-quantization against the reference.  The artifact's type\n"
	       "plan is checked against llama.cpp's recipe for its general.file_type.\n\n"
	       "  --imatrix FILE     the importance matrix the artifact was made with (llama.cpp GGUF\n"
	       "                     imatrix or legacy .dat): tensors it has an entry for are\n"
	       "                     re-quantized with its weights, as llama-quantize --imatrix does;\n"
	       "                     a warning says when it disagrees with the artifact's\n"
	       "                     quantize.imatrix.* keys\n"
	       "  --compare-recipe R re-quantize REF under each llama.cpp recipe in the comma-separated\n"
	       "                     list R (e.g. Q4_K_M,Q4_K_S) and compare RMSE and bits per weight\n"
	       "                     with the artifact's, per tensor class and for the whole model\n"
	       "  --json             print one JSON object (schema quantaudit.diff/1)\n"
	       "  --report FILE.md   also write a markdown audit report, with plots beside it\n"
	       "  --id ID            the report's document ID (default AUDIT-DIFF-<sha prefix>)\n"
	       "  --title T          the report's title\n"
	       "  --plot-format F    png (default) or svg\n"
	       "  -o FILE            write the JSON to FILE (atomically) instead of standard output\n"
	       "  --policy FILE      decide what fails from FILE (schema quantaudit.policy/1)\n"
	       "  --github           GitHub Actions output: annotations on stderr, job summary,\n"
	       "                     step outputs (implied by GITHUB_ACTIONS=true)\n"
	       "  --junit FILE       write a JUnit XML report (one testcase per tensor)\n"
	       "  --shard K/N        audit only shard K of N and write a part (schema\n"
	       "                     quantaudit.part/1; with -o, to a file) for 'quantaudit merge'\n"
	       "  --file-digests     with --shard: compute the whole-file SHA-256s too\n"
	       "  -j, --threads N    worker threads (default: all cores)\n"
	       "  -h, --help         show this help\n\n"
	       "Exit status: 0 when every tensor is identical and the metadata audit finds nothing\n"
	       "(with --policy: when nothing fails the policy), 1 otherwise.\n",
	       usage);
}

static void print_human(const struct qa_diff_result *r)
{
	printf("reference: %s\nartifact:  %s", r->reference_path, r->artifact_path);
	if (r->has_file_type)
		printf(" (general.file_type %u%s%s)", r->file_type, r->recipe_name ? " = " : "",
		       r->recipe_name ? r->recipe_name : "");
	printf("\n\n%-32s %-7s %-7s %-15s %-6s %6s %9s %10s %10s\n", "tensor", "type", "recipe", "verdict",
	       "by", "blocks", "diverge", "rmse", "requant");
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		char div[32] = "-", rmse[16] = "-", rq[16] = "-";
		if ((t->verdict == QA_VERDICT_DIVERGENT || t->verdict == QA_VERDICT_IMATRIX) && t->divergent_blocks)
			snprintf(div, sizeof div, "%" PRIu64 "@%" PRIu64, t->divergent_blocks, t->first_divergent);
		const char *by = t->verdict == QA_VERDICT_IDENTICAL ? NULL : qa_forensics_evidence_name(t->evidence);
		if (t->has_error) {
			snprintf(rmse, sizeof rmse, "%.3e", t->rmse);
			snprintf(rq, sizeof rq, "%.3e", t->requant_rmse);
		}
		printf("%-32s %-7s %-7s %-15s %-6s %6" PRIu64 " %9s %10s %10s%s\n", t->name, qa_type_name(t->type),
		       t->in_plan ? qa_type_name(t->recipe_type) : "-", qa_verdict_name(t->verdict), by ? by : "-",
		       t->blocks, div, rmse, rq,
		       t->in_plan && t->recipe_type != t->type ? "  (recipe deviation)" : "");
	}
	printf("\n");
	static char lines[16384];
	qa_report_diff_layout_errors(r, lines, sizeof lines);
	if (lines[0])
		printf("%s\n", lines);
	qa_report_diff_recipe_cmp(r, lines, sizeof lines);
	if (lines[0])
		printf("%s\n", lines);
}

/*
 * --imatrix: one warning line each when the matrix given is not the one the
 * artifact declares (dataset or entry count), or names tensors the reference
 * lacks.  The bytes are verified either way.
 */
static void warn_imatrix(const struct qa_diff_result *r)
{
	const struct qa_diff_imatrix_keys *k = &r->declared_imatrix;
	const struct qa_diff_imatrix_given *g = &r->imatrix;
	char a[160], b[160], pb[1024];
	if (!g->given)
		return;
	const char *path = cli_escape(pb, sizeof pb, g->path);
	if (!k->declared) {
		fprintf(stderr, "quantaudit: warning: %s: the artifact declares no importance matrix "
		        "(no quantize.imatrix.* keys)\n", path);
	} else {
		if (g->dataset_differs) {
			cli_escape(a, sizeof a, g->dataset ? g->dataset : "(none)");
			cli_escape(b, sizeof b, k->dataset ? k->dataset : "(none)");
			fprintf(stderr, "quantaudit: warning: %s: dataset '%s' differs from the artifact's "
			        "quantize.imatrix.dataset '%s'\n", path, a, b);
		}
		if (g->entries_differ) {
			if (k->has_entries)
				fprintf(stderr, "quantaudit: warning: %s: %" PRIu64 " entries, but the artifact's "
				        "quantize.imatrix.entries_count is %" PRIu64 "\n", path, g->entries,
				        k->entries);
			else
				fprintf(stderr, "quantaudit: warning: %s: %" PRIu64 " entries, but the artifact "
				        "records no quantize.imatrix.entries_count\n", path, g->entries);
		}
	}
	cli_imatrix_warn_unmatched(g->path, g->unmatched, g->first_unmatched);
}

/*
 * Everything after the audit, shared with merge: judge r under the policy
 * (the one evaluation), write the report, the JSON or table, the JUnit file
 * and the GitHub output.  note (may be NULL) is a remark for the report's
 * readers and the job summary.  Returns the exit status.
 */
int cli_diff_finish(struct qa_diff_result *r, struct cli_gate *g, struct qa_report_opts *ro,
                    bool as_json, int argc, char **argv, const char *note)
{
	struct qa_diag d;
	qa_diag_clear(&d);
	warn_imatrix(r);
	if (qa_gate_add_diff(&g->gate, g->policy, r, r->artifact_path, &d))
		return cli_fail(r->artifact_path, &d);
	/* the gate (every tensor's verdict and the metadata audit's findings,
	 * under the policy or the default rule) decides the exit status */
	int rc = g->gate.pass ? QA_EXIT_OK : QA_EXIT_FINDING;
	const struct qa_report_policy *pol = cli_gate_report_policy(g);
	if (ro) {
		ro->policy = pol;
		ro->argc = argc;
		ro->argv = (const char *const *)argv;
		ro->version = cli_version_string();
		char where[1024];
		if (qa_report_diff_write(r, ro, where, sizeof where, &d))
			return cli_fail(ro->path, &d);
		fprintf(stderr, "quantaudit: report written to %s%s\n", ro->path, where);
	}
	char para[4096];
	qa_report_diff_verdict_policy(r, pol, para, sizeof para);
	if (as_json) {
		json_t *root = qa_diff_to_json(r);
		if (r->metadata_audited)
			json_object_set_new(root, "metadata", qa_reproduce_kv_json(r->metadata, r->n_metadata));
		if (g->policy) {
			json_object_set_new(root, "gate", qa_gate_to_json(&g->gate));
			json_object_set_new(root, "verdict", json_string(g->gate.pass ? "pass" : "fail"));
		}
		int jr = cli_json_output(root, g->out_path);
		if (jr)
			return jr;
	} else {
		cli_gate_group_begin(g, "quantaudit diff: per-tensor table");
		print_human(r);
		cli_gate_group_end(g);
		printf("%s\n", para);
		for (size_t i = 0; i < r->n_metadata; i++) {
			const struct qa_reproduce_kv *k = &r->metadata[i];
			printf("%s %s: expected %s, artifact %s\n", k->finding ? "METADATA FINDING:" : "metadata:", k->key,
			       k->expected ? k->expected : "(absent)", k->actual ? k->actual : "(absent)");
		}
		if (note)
			printf("%s\n", note);
		if (cli_flush() != 0)
			return QA_EXIT_IO;
	}
	int er = cli_gate_emit(g, "diff", para, ro ? ro->path : NULL, note);
	return er ? er : rc;
}

/* diff's metadata audit of art against ref, stored in r; 0 or the exit status. */
static int audit_metadata(struct qa_diff_result *r, const char *ref, const char *art)
{
	struct qa_diag d;
	qa_diag_clear(&d);
	if (qa_metadata_audit(ref, art, &r->metadata, &r->n_metadata, &d))
		return cli_fail(art, &d);
	r->metadata_audited = true;
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	enum { O_REPORT = 256, O_ID, O_TITLE, O_PLOT, O_IMATRIX, O_CMP, O_POLICY, O_GITHUB, O_JUNIT, O_SHARD,
	       O_DIGESTS };
	static const struct option opts[] = {
		{ "report", required_argument, NULL, O_REPORT },
		{ "id", required_argument, NULL, O_ID },
		{ "title", required_argument, NULL, O_TITLE },
		{ "plot-format", required_argument, NULL, O_PLOT },
		{ "imatrix", required_argument, NULL, O_IMATRIX },
		{ "compare-recipe", required_argument, NULL, O_CMP },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "github", no_argument, NULL, O_GITHUB },
		{ "junit", required_argument, NULL, O_JUNIT },
		{ "shard", required_argument, NULL, O_SHARD },
		{ "file-digests", no_argument, NULL, O_DIGESTS },
		CLI_OPTION_OUTPUT, CLI_OPTION_JSON, CLI_OPTION_THREADS, CLI_OPTION_HELP, CLI_OPTION_END,
	};
	struct cli_common co = CLI_COMMON_INIT("diff", usage, help);
	const struct qa_recipe *cmp[QA_FX_MAX_RECIPES];
	size_t n_cmp = 0;
	struct cli_gate g;
	memset(&g, 0, sizeof g);
	struct qa_audit_shard sh = { 0, 0, false };
	struct qa_diff_opts dopts;
	struct qa_imatrix *im = NULL;
	struct qa_report_opts ro;
	int c;
	memset(&ro, 0, sizeof ro);
	memset(&dopts, 0, sizeof dopts);
	ro.plot_format = "png";
	while ((c = cli_getopt(&co, argc, argv, "j:ho:", opts)) != -1) {
		switch (c) {
		case CLI_GETOPT_EXIT: return co.status;
		case O_REPORT: ro.path = optarg; break;
		case O_ID: ro.id = optarg; break;
		case O_TITLE: ro.title = optarg; break;
		case O_IMATRIX: dopts.imatrix_path = optarg; break;
		case O_POLICY: g.policy_path = optarg; break;
		case O_GITHUB: g.github = true; break;
		case O_JUNIT: g.junit_path = optarg; break;
		case O_SHARD:
			if (!cli_parse_shard(optarg, &sh.k, &sh.n))
				return cli_usage_error("diff", usage, "--shard needs K/N with 1 <= K <= N <= 256, not '%s'", optarg);
			break;
		case O_DIGESTS: sh.file_digests = true; break;
		case O_PLOT:
			if (strcmp(optarg, "png") && strcmp(optarg, "svg"))
				return cli_usage_error("diff", usage, "--plot-format is png or svg, not '%s'", optarg);
			ro.plot_format = optarg;
			break;
		case O_CMP: {
			struct qa_diag pd;
			if (qa_forensics_recipes_parse(optarg, cmp, &n_cmp, &pd))
				return cli_usage_error("diff", usage, "%s", pd.msg);
			break;
		}
		}
	}
	g.out_path = co.output;
	bool as_json = co.json || co.output;
	dopts.n_threads = co.threads;
	if (argc - optind != 2)
		return cli_usage_error("diff", usage, argc - optind > 2 ? "too many arguments" : "need REF and ARTIFACT");
	if ((ro.id || ro.title) && !ro.path)
		return cli_usage_error("diff", usage, "--id and --title need --report");
	if (sh.n && (ro.path || g.policy_path || g.junit_path || g.github))
		return cli_usage_error("diff", usage, "--shard writes a part: give --report, --policy, --junit and "
		                       "--github to 'quantaudit merge'");
	if (sh.file_digests && !sh.n)
		return cli_usage_error("diff", usage, "--file-digests needs --shard");
	const char *ref = argv[optind], *art = argv[optind + 1];
	const char *inputs[] = { ref, art, dopts.imatrix_path, g.policy_path };
	int crc = cli_check_output(&co, ro.path, inputs, 4);
	if (!crc)
		crc = cli_check_output(&co, co.output, inputs, 4);
	if (!crc)
		crc = cli_check_output(&co, g.junit_path, inputs, 4);
	if (crc)
		return crc;
	if (sh.n)
		dopts.shard = &sh;
	int rc = cli_gate_load(&g);
	if (rc)
		return rc;
	struct qa_diff_result *r;
	const char *culprit = ref;
	struct qa_diag d;
	qa_diag_clear(&d);
	if (dopts.imatrix_path && (rc = cli_imatrix_load(dopts.imatrix_path, &im))) {
		cli_gate_free(&g);
		return rc;
	}
	dopts.imatrix = im;
	enum qa_err e = qa_diff_run(ref, art, &dopts, &r, &culprit, &d);
	if (e) {
		qa_imatrix_free(im);
		cli_gate_free(&g);
		return cli_fail(culprit, &d);
	}
	if (sh.n)
		warn_imatrix(r);
	if (n_cmp && (e = qa_forensics_recipe_compare(ref, r, cmp, n_cmp, im, dopts.n_threads, &d))) {
		qa_imatrix_free(im);
		qa_diff_free(r);
		cli_gate_free(&g);
		return cli_fail(e == QA_ERR_FORMAT || e == QA_ERR_IO ? ref : "diff", &d);
	}
	qa_imatrix_free(im);
	rc = audit_metadata(r, ref, art);
	if (!rc && sh.n) {
		/* a shard writes its part; the merge judges and reports */
		json_t *part = qa_part_diff_to_json(r, sh.k, sh.n, argc, argv);
		if (!part) {
			fprintf(stderr, "quantaudit: out of memory\n");
			rc = QA_EXIT_IO;
		} else {
			rc = cli_part_output(part, g.out_path);
		}
	} else if (!rc) {
		rc = cli_diff_finish(r, &g, ro.path ? &ro : NULL, as_json, argc, argv, NULL);
	}
	qa_diff_free(r);
	cli_gate_free(&g);
	return rc;
}
