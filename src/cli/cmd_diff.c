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
#include "report.h"
#include "types.h"
#include "compare_json.h"

static const char usage[] =
	"quantaudit diff REF ARTIFACT [--imatrix FILE] [--json] [-j N] [--compare-recipe NAME[,NAME...]]\n"
	"       [--report FILE.md [--id ID] [--title T] [--plot-format png|svg]]";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Re-quantize every tensor of REF (safetensors file, sharded index, directory, or GGUF\n"
	       "of f32/f16/bf16) to the type the ARTIFACT tensor has, exactly as ggml's reference\n"
	       "quantizer would, and compare the two block by block (SHA-256 of every 256-element\n"
	       "block).  Each tensor gets a verdict: identical (matches the out,in layout),\n"
	       "layout-swap (matches in,out only), transposed (matches W^T only), divergent (no\n"
	       "layout matches: count and first divergent block), missing, extra, shape-mismatch or\n"
	       "unsupported-type, with RMSE and max abs error of the artifact and of the\n"
	       "re-quantization against the reference.  The artifact's type plan is checked against\n"
	       "llama.cpp's recipe for its general.file_type.\n\n"
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
	       "  -j, --threads N    worker threads (default: all cores)\n"
	       "  -h, --help         show this help\n\n"
	       "Exit status: 0 when every tensor is identical, 1 otherwise.\n",
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
	char para[4096];
	qa_report_diff_verdict(r, para, sizeof para);
	printf("%s\n", para);
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

int cmd_diff(int argc, char **argv)
{
	enum { O_REPORT = 256, O_ID, O_TITLE, O_PLOT, O_IMATRIX, O_CMP };
	static const struct option opts[] = {
		{ "report", required_argument, NULL, O_REPORT },
		{ "id", required_argument, NULL, O_ID },
		{ "title", required_argument, NULL, O_TITLE },
		{ "plot-format", required_argument, NULL, O_PLOT },
		{ "imatrix", required_argument, NULL, O_IMATRIX },
		{ "compare-recipe", required_argument, NULL, O_CMP },
		CLI_OPTION_JSON, CLI_OPTION_THREADS, CLI_OPTION_HELP, CLI_OPTION_END,
	};
	struct cli_common co = CLI_COMMON_INIT("diff", usage, help);
	const struct qa_recipe *cmp[QA_FX_MAX_RECIPES];
	size_t n_cmp = 0;
	struct qa_diff_opts dopts;
	struct qa_imatrix *im = NULL;
	struct qa_report_opts ro;
	int c;
	memset(&ro, 0, sizeof ro);
	memset(&dopts, 0, sizeof dopts);
	ro.plot_format = "png";
	while ((c = cli_getopt(&co, argc, argv, "j:h", opts)) != -1) {
		switch (c) {
		case CLI_GETOPT_EXIT: return co.status;
		case O_REPORT: ro.path = optarg; break;
		case O_ID: ro.id = optarg; break;
		case O_TITLE: ro.title = optarg; break;
		case O_IMATRIX: dopts.imatrix_path = optarg; break;
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
	bool as_json = co.json;
	dopts.n_threads = co.threads;
	if (argc - optind != 2)
		return cli_usage_error("diff", usage, argc - optind > 2 ? "too many arguments" : "need REF and ARTIFACT");
	if ((ro.id || ro.title) && !ro.path)
		return cli_usage_error("diff", usage, "--id and --title need --report");
	const char *ref = argv[optind], *art = argv[optind + 1];
	const char *inputs[] = { ref, art, dopts.imatrix_path };
	int crc = cli_check_output(&co, ro.path, inputs, 3);
	if (crc)
		return crc;
	struct qa_diff_result *r;
	const char *culprit = ref;
	struct qa_diag d;
	qa_diag_clear(&d);
	int rc;
	if (dopts.imatrix_path && (rc = cli_imatrix_load(dopts.imatrix_path, &im)))
		return rc;
	dopts.imatrix = im;
	enum qa_err e = qa_diff_run(ref, art, &dopts, &r, &culprit, &d);
	if (e) {
		qa_imatrix_free(im);
		return cli_fail(culprit, &d);
	}
	warn_imatrix(r);
	if (n_cmp && (e = qa_forensics_recipe_compare(ref, r, cmp, n_cmp, im, dopts.n_threads, &d))) {
		qa_imatrix_free(im);
		qa_diff_free(r);
		return cli_fail(e == QA_ERR_FORMAT || e == QA_ERR_IO ? ref : "diff", &d);
	}
	qa_imatrix_free(im);
	rc = r->pass ? QA_EXIT_OK : QA_EXIT_FINDING;
	/* the metadata audit (reproduce.h) */
	struct qa_reproduce_kv *meta = NULL;
	size_t n_meta = 0;
	if (qa_metadata_audit(ref, art, &meta, &n_meta, &d)) {
		qa_diff_free(r);
		return cli_fail(art, &d);
	}
	for (size_t i = 0; i < n_meta; i++)
		if (meta[i].finding)
			rc = QA_EXIT_FINDING;
	if (ro.path) {
		ro.argc = argc;
		ro.argv = (const char *const *)argv;
		ro.version = cli_version_string();
		char where[1024];
		if (qa_report_diff_write(r, &ro, where, sizeof where, &d)) {
			qa_diff_free(r);
			return cli_fail(ro.path, &d);
		}
		fprintf(stderr, "quantaudit: report written to %s%s\n", ro.path, where);
	}
	if (as_json) {
		json_t *j = qa_diff_to_json(r);
		json_object_set_new(j, "metadata", qa_reproduce_kv_json(meta, n_meta));
		int jr = cli_json_print(j);
		if (jr)
			rc = jr;
	} else {
		print_human(r);
		for (size_t i = 0; i < n_meta; i++)
			printf("%s %s: expected %s, artifact %s\n",
			       meta[i].finding ? "METADATA FINDING:" : "metadata:", meta[i].key,
			       meta[i].expected ? meta[i].expected : "(absent)",
			       meta[i].actual ? meta[i].actual : "(absent)");
		if (cli_flush() != 0)
			rc = QA_EXIT_IO;
	}
	qa_reproduce_kv_free(meta, n_meta);
	qa_diff_free(r);
	return rc;
}
