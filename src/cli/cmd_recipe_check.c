/*
 * cmd_recipe_check.c - "quantaudit recipe-check REF": a llama.cpp recipe
 * against a pure type on REF's shapes (the plan for every layer, the error
 * per tensor class), written as a report that checks the seed audit's
 * MODEL-1 claims (AUDIT-Q4K-RECIPE-002).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "recipe.h"
#include "recipecheck.h"
#include "report.h"
#include "types.h"

static const char usage[] =
	"quantaudit recipe-check REF [--recipe R] [--type T] [--layers N] [--measure-layers M] [-j N]\n"
	"       --report FILE.md [--id ID] [--title T]";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Compare a llama.cpp recipe with llama-quantize --pure on the shapes of REF: plan every\n"
	       "tensor of a model of N layers (the shapes of REF's layer 0 repeated; recipes depend on\n"
	       "names, shapes and layer indices only), measure with ggml's quantizer the RMSE of every\n"
	       "type the two use on REF's first M layers, carry it over all N layers by the plan, and\n"
	       "write a report that checks the seed audit's MODEL-1 claims (attn_output and ffn_down kept\n"
	       "at q6_K; a benchmark gap attributed to the recipe and the implementation) with those\n"
	       "numbers.  REF is typically a `quantaudit synth` checkpoint of one or two layers.\n\n"
	       "  --recipe R          llama.cpp recipe (default Q4_K_M)\n"
	       "  --type T            the pure type to compare with (default q4_K)\n"
	       "  --layers N          layers to plan (default: REF's own)\n"
	       "  --measure-layers M  layers of REF to measure the error on (default 1)\n"
	       "  --report FILE.md    the report to write (required)\n"
	       "  --id ID, --title T  the report's document ID and title\n"
	       "  -j, --threads N     worker threads (default: all cores)\n"
	       "  -h, --help          show this help\n\n"
	       "Exit status: 0 when the report was written.\n",
	       usage);
}

int cmd_recipe_check(int argc, char **argv)
{
	enum { O_RECIPE = 256, O_TYPE, O_LAYERS, O_MEASURE, O_REPORT, O_ID, O_TITLE };
	static const struct option opts[] = {
		{ "recipe", required_argument, NULL, O_RECIPE },
		{ "type", required_argument, NULL, O_TYPE },
		{ "layers", required_argument, NULL, O_LAYERS },
		{ "measure-layers", required_argument, NULL, O_MEASURE },
		{ "report", required_argument, NULL, O_REPORT },
		{ "id", required_argument, NULL, O_ID },
		{ "title", required_argument, NULL, O_TITLE },
		{ "threads", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct qa_recipe *rec = qa_recipe_by_name("Q4_K_M");
	uint32_t pure = QA_TYPE_Q4_K;
	uint64_t layers = 0, measure = 1;
	unsigned threads = 0;
	struct qa_report_opts ro;
	int c;
	memset(&ro, 0, sizeof ro);
	ro.plot_format = "png";
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "j:h", opts, NULL)) != -1) {
		switch (c) {
		case O_RECIPE:
			if (!(rec = qa_recipe_by_name(optarg)))
				return cli_usage_error("recipe-check", usage, "unknown recipe '%s'", optarg);
			break;
		case O_TYPE: {
			const struct qa_type_info *ti = qa_type_by_name(optarg);
			if (ti)
				pure = ti->id;
			if (!ti || qa_recipe_pure_file_type(pure) == QA_RECIPE_NO_FILE_TYPE)
				return cli_usage_error("recipe-check", usage, "--type: '%s' is not a type llama-quantize --pure writes", optarg);
			break;
		}
		case O_LAYERS:
			if (!cli_parse_u64(optarg, 1, 4096, &layers))
				return cli_usage_error("recipe-check", usage, "--layers needs 1 to 4096, not '%s'", optarg);
			break;
		case O_MEASURE:
			if (!cli_parse_u64(optarg, 1, 4096, &measure))
				return cli_usage_error("recipe-check", usage, "--measure-layers needs 1 to 4096, not '%s'", optarg);
			break;
		case O_REPORT: ro.path = optarg; break;
		case O_ID: ro.id = optarg; break;
		case O_TITLE: ro.title = optarg; break;
		case 'j':
			if (!cli_parse_threads(optarg, &threads))
				return cli_usage_error("recipe-check", usage, "-j needs a thread count from 1 to 1024, not '%s'", optarg);
			break;
		case 'h': help(); return QA_EXIT_OK;
		default:
			return cli_usage_error("recipe-check", usage, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("recipe-check", usage, argc - optind > 1 ? "too many arguments" : "need REF");
	if (!ro.path)
		return cli_usage_error("recipe-check", usage, "--report FILE.md is required");
	const char *ref = argv[optind];
	struct qa_recipe_check *r;
	struct qa_diag d;
	qa_diag_clear(&d);
	if (qa_recipe_check_run(ref, rec, pure, (uint32_t)layers, (uint32_t)measure, threads, &r, &d))
		return cli_fail(ref, &d);
	ro.argc = argc;
	ro.argv = (const char *const *)argv;
	ro.version = cli_version_string();
	char note[256];
	int rc = QA_EXIT_OK;
	if (qa_report_recipe_check_write(r, &ro, note, sizeof note, &d))
		rc = cli_fail(ro.path, &d);
	else
		fprintf(stderr, "quantaudit: report written to %s\n", ro.path);
	qa_recipe_check_free(r);
	return rc;
}
