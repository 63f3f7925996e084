/*
 * cmd_quantize.c - "quantaudit quantize": re-quantize a reference checkpoint
 * byte-for-byte as ggml's reference quantizer and llama.cpp's recipes would.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "imatrix.h"
#include "layout.h"
#include "model.h"
#include "quantize.h"
#include "recipe.h"
#include "types.h"

static const char usage[] =
	"quantaudit quantize REF -o OUT.gguf (--recipe NAME | --type TYPE) [--layout out,in|in,out|transposed]\n"
	"                           [--imatrix FILE] [--allow-invalid] [--dry-run] [-j N] [--pure]\n"
	"                           [--output-tensor-type T] [--token-embedding-type T] [--tensor-type PATTERN=T]...\n"
	"                           [--leave-output-tensor] [--override-kv KEY=TYPE:VALUE]...";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Quantize a reference checkpoint (safetensors file, sharded index, directory, or a GGUF\n"
	       "of f32/f16/bf16 tensors) into a GGUF that is byte-identical to what llama-quantize\n"
	       "writes, without or (--imatrix) with an importance matrix.\n\n"
	       "  -o, --output FILE     the GGUF to write (atomically: temporary file, then rename)\n"
	       "  --recipe NAME         a llama.cpp file type: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S\n"
	       "                        Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ1_S IQ1_M\n"
	       "                        IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ4_NL\n"
	       "                        IQ4_XS TQ1_0 TQ2_0 MXFP4_MOE F32 F16 BF16, with llama.cpp's\n"
	       "                        per-tensor type rules\n"
	       "  --type TYPE           every quantizable tensor gets TYPE (llama-quantize --pure):\n"
	       "                        f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_K q3_K q4_K q5_K q6_K\n"
	       "                        iq4_nl iq4_xs iq3_s iq3_xxs tq1_0 tq2_0 mxfp4, with llama.cpp's\n"
	       "                        fallback where rows do not fit\n"
	       "Like llama-quantize, a recipe or type that would write an iq1_s, iq1_m, iq2_xxs,\n"
	       "iq2_xs, iq2_s or iq3_xxs tensor (other than token_embd and output) is refused\n"
	       "without an importance matrix (exit 2).\n"
	       "  --layout L            out,in (default; what GGUF expects), in,out (the shape-swap\n"
	       "                        defect: rows of out_features, zero-padded), transposed (W^T)\n"
	       "  --imatrix FILE        quantize with this importance matrix (llama.cpp GGUF imatrix or\n"
	       "                        legacy .dat), as llama-quantize --imatrix FILE does: tensors\n"
	       "                        with an entry use its weights, the others none; the output\n"
	       "                        records quantize.imatrix.file (FILE as given), .dataset,\n"
	       "                        .entries_count and .chunks_count\n"
	       "  --allow-invalid       write a layout that changes a tensor's byte size, recording\n"
	       "                        the shape actually used (otherwise: exit 2)\n"
	       "  --dry-run             print the type plan and the rule behind each choice\n"
	       "  -j, --threads N       worker threads (default: all cores)\n"
	       "  -h, --help            show this help\n\n"
	       "llama-quantize's options that change the file, with its meaning:\n%s\n"
	       "From a GGUF reference the output is llama-quantize's file byte for byte: its metadata\n"
	       "order and keys, llama.cpp's tensor order, alignment and padding.  From safetensors the\n"
	       "tensors are the same and the metadata is quantaudit's own minimal set.\n\n"
	       "Example:\n"
	       "  quantaudit quantize model.safetensors --recipe Q4_K_M -o model.Q4_K_M.gguf\n",
	       usage, cli_quant_help);
}

static void progress(void *ctx, size_t done, size_t total, const char *name)
{
	(void)ctx;
	fprintf(stderr, "\rquantize: %zu/%zu %-48.48s", done, total, name);
	if (done == total)
		fputc('\n', stderr);
}

static int dry_run(const struct qa_ref *r, const struct qa_quantize_opts *o)
{
	struct qa_quantize_item *items;
	uint32_t ftype;
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_quantize_plan(r, o, &items, &ftype, &d);
	if (e == QA_ERR_USAGE) {
		/* as without --dry-run: e.g. a recipe that needs an importance matrix */
		fprintf(stderr, "quantaudit quantize: %s\n", d.msg);
		return QA_EXIT_USAGE;
	}
	if (e)
		return cli_fail(qa_ref_path(r), &d);
	const struct qa_ref_info *info = qa_ref_info(r);
	printf("reference: %s (%s, %u layers, %u heads, %u kv heads%s%s)\n", qa_ref_path(r),
	       info->arch, info->n_layer, info->n_head, info->n_head_kv,
	       info->tied ? ", tied embeddings" : "",
	       info->from_config ? "" : "; dimensions inferred from tensor shapes");
	printf("plan: %s, general.file_type %u, layout %s\n\n",
	       o->recipe ? qa_recipe_name(o->recipe) : qa_type_name(o->pure_type), ftype,
	       qa_layout_name(o->layout));
	printf("%-36s %-6s %-16s %-7s %12s  %s\n", "tensor", "from", "shape", "type", "bytes", "rule");
	uint64_t total = 0;
	for (size_t i = 0; i < qa_ref_n_tensors(r); i++) {
		const struct qa_quantize_item *it = &items[i];
		char sh[64];
		cli_shape_text(it->ne, it->n_dims, sh, sizeof sh);
		printf("%-36s %-6s %-16s %-7s %12" PRIu64 "  %s%s\n", it->tensor->name,
		       it->tensor->src_dtype, sh, qa_type_name(it->plan.type), it->nbytes, it->plan.rule,
		       it->resized ? " [resized by layout]" : "");
		total += it->nbytes;
	}
	printf("\n%zu tensors, %" PRIu64 " bytes of tensor data\n", qa_ref_n_tensors(r), total);
	free(items);
	return QA_EXIT_OK;
}

int cmd_quantize(int argc, char **argv)
{
	enum { O_RECIPE = 256, O_TYPE, O_LAYOUT, O_ALLOW, O_DRY, O_IMATRIX };
	static const struct option opts[] = {
		{ "recipe", required_argument, NULL, O_RECIPE },
		{ "type", required_argument, NULL, O_TYPE },
		{ "layout", required_argument, NULL, O_LAYOUT },
		{ "allow-invalid", no_argument, NULL, O_ALLOW },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "imatrix", required_argument, NULL, O_IMATRIX },
		CLI_QUANT_LONGOPTS,
		CLI_OPTION_OUTPUT, CLI_OPTION_THREADS, CLI_OPTION_HELP, CLI_OPTION_END,
	};
	struct cli_common co = CLI_COMMON_INIT("quantize", usage, help);
	struct cli_quant_flags qf;
	struct qa_quantize_opts o;
	const char *recipe = NULL, *type = NULL;
	bool dry = false;
	int c;
	memset(&o, 0, sizeof o);
	o.layout = QA_LAYOUT_OUT_IN;
	cli_quant_init(&qf);
	while ((c = cli_getopt(&co, argc, argv, "o:j:h", opts)) != -1) {
		int q = cli_quant_flag(&qf, c, optarg, "quantize", usage);
		if (q > 0) {
			cli_quant_free(&qf);
			return q;
		}
		if (q == 0)
			continue;
		switch (c) {
		case CLI_GETOPT_EXIT: return co.status;
		case O_RECIPE: recipe = optarg; break;
		case O_TYPE: type = optarg; break;
		case O_LAYOUT:
			if (!qa_layout_parse(optarg, &o.layout))
				return cli_usage_error("quantize", usage, "unknown layout '%s' (out,in, in,out or transposed)", optarg);
			break;
		case O_ALLOW: o.allow_invalid = true; break;
		case O_DRY: dry = true; break;
		case O_IMATRIX: o.imatrix_file = optarg; break;
		}
	}
	const char *out = co.output;
	o.n_threads = co.threads;
	if (argc - optind != 1)
		return cli_usage_error("quantize", usage, argc - optind ? "too many arguments" : "missing REF");
	if (!!recipe == !!type)
		return cli_usage_error("quantize", usage, "give exactly one of --recipe and --type");
	if (!out && !dry)
		return cli_usage_error("quantize", usage, "missing -o OUT.gguf");
	if (recipe && !(o.recipe = qa_recipe_by_name(recipe)))
		return cli_usage_error("quantize", usage, "unknown recipe '%s'", recipe);
	if (type) {
		const struct qa_type_info *t = qa_type_by_name(type);
		if (!t || !t->quantizable || qa_recipe_pure_file_type(t->id) == QA_RECIPE_NO_FILE_TYPE)
			return cli_usage_error("quantize", usage, "type '%s' cannot be produced", type);
		o.pure_type = t->id;
	}
	o.overrides = &qf.ov;
	o.kv_overrides = qf.kvo;
	o.n_kv_overrides = qf.n_kvo;
	const char *ref_path = argv[optind];
	const char *inputs[] = { ref_path, o.imatrix_file };
	int rc = cli_check_output(&co, out, inputs, 2);
	if (rc)
		return rc;
	struct qa_diag d;
	struct qa_ref *r;
	struct qa_imatrix *im = NULL;
	qa_diag_clear(&d);
	if (o.imatrix_file && (rc = cli_imatrix_load(o.imatrix_file, &im))) {
		cli_quant_free(&qf);
		return rc;
	}
	o.imatrix = im;
	if (qa_ref_open(&r, ref_path, &d)) {
		qa_imatrix_free(im);
		cli_quant_free(&qf);
		return cli_fail(ref_path, &d);
	}
	size_t unmatched;
	const char *first;
	enum qa_err ce = qa_quantize_check_imatrix(r, &o, &unmatched, &first, &d);
	if (ce) {
		rc = ce == QA_ERR_VALUE ? cli_fail(o.imatrix_file, &d) :
		     ce == QA_ERR_USAGE ? (fprintf(stderr, "quantaudit quantize: %s\n", d.msg), QA_EXIT_USAGE) :
		     cli_fail(ref_path, &d);
		goto done;
	}
	if (im)
		cli_imatrix_warn_unmatched(o.imatrix_file, unmatched, first);
	if (dry) {
		rc = dry_run(r, &o);
	} else {
		if (isatty(STDERR_FILENO))
			o.progress = progress;
		enum qa_err e = qa_quantize_model(r, &o, out, &d);
		if (e == QA_ERR_USAGE) {
			fprintf(stderr, "quantaudit quantize: %s\n", d.msg);
			rc = QA_EXIT_USAGE;
		} else if (e == QA_ERR_IO) {
			rc = cli_fail(out, &d);
		} else if (e) {
			rc = cli_fail(ref_path, &d);
		} else {
			rc = QA_EXIT_OK;
		}
	}
done:
	qa_ref_close(r);
	qa_imatrix_free(im);
	cli_quant_free(&qf);
	return rc;
}
