/*
 * cmd_reproduce.c - "quantaudit reproduce": rebuild a published artifact
 * byte for byte from its GGUF reference and prove it with one SHA-256.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "manifest.h"
#include "remote.h"
#include "reproduce.h"
#include "types.h"
#include "util.h"

static const char usage[] =
	"quantaudit reproduce REF.gguf ARTIFACT.gguf [--recipe NAME] [--imatrix FILE] [-o OUT.gguf] [--json]\n"
	"                            [--no-infer] [--no-explain] [--artifact-sha256 HEX] [-j N]\n"
	"                            [llama-quantize options: --pure --output-tensor-type T\n"
	"                             --token-embedding-type T --tensor-type PATTERN=T\n"
	"                             --leave-output-tensor --override-kv KEY=TYPE:VALUE]";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Rebuild ARTIFACT from the GGUF reference llama-quantize read (a BF16, F16 or F32\n"
	       "GGUF), stream the would-be file through SHA-256 without writing it, and compare\n"
	       "the digest with the artifact's.  The recipe comes from the artifact's\n"
	       "general.file_type; options the artifact's tensor types and trailing metadata call\n"
	       "for are inferred and named.  When the digests differ, reproduce names the first\n"
	       "differing region (header, kv, tensor-info, padding, tensor-data) and its absolute\n"
	       "offset, lists every metadata pair that differs from what llama-quantize would\n"
	       "write, and runs the per-tensor diff to explain the tensor data.\n\n"
	       "  --recipe NAME         the llama.cpp file type (default: the artifact's)\n"
	       "  --imatrix FILE        the importance matrix (default: the artifact's\n"
	       "                        quantize.imatrix.file, beside the artifact, then in the\n"
	       "                        current directory; recorded as the artifact declares it)\n"
	       "  -o, --output FILE     also write the would-be file (atomically)\n"
	       "  --json                print quantaudit.reproduce/1\n"
	       "  --no-infer            use the given options only\n"
	       "  --no-explain          skip the per-tensor diff when the file differs\n"
	       "  --artifact-sha256 HEX the artifact's digest when known: the artifact body is\n"
	       "                        then read only when the digests differ, and its header\n"
	       "                        only when the recipe is neither given nor in its name\n"
	       "                        or the digest of the file made without it differs.  A\n"
	       "                        remote ARTIFACT's digest is its first hop's X-Linked-Etag\n"
	       "                        (one HEAD request), so proving it transfers no byte of it\n"
	       "  -j, --threads N       worker threads (default: all cores)\n"
	       "  -h, --help            show this help\n\n"
	       "llama-quantize's options that change the file:\n%s\n"
	       "Exit status: 0 reproduced, 1 differs, 2 usage, 3 malformed input, 4 I/O.\n\n"
	       "Example (CI): prove a published artifact from its published BF16 GGUF without\n"
	       "downloading the artifact:\n"
	       "  quantaudit reproduce hf://ORG/NAME-GGUF/NAME-BF16.gguf hf://ORG/NAME-GGUF/NAME-Q4_K_M.gguf\n",
	       usage, cli_quant_help);
}

static bool parse_hex(const char *s, uint8_t out[QA_SHA256_LEN])
{
	return strlen(s) == 2 * QA_SHA256_LEN && qa_hex_decode(s, out, QA_SHA256_LEN, true);
}

static void print_report(const struct qa_reproduce_result *r)
{
	char hex[65];
	printf("reference: %s\n", r->reference_path);
	printf("artifact:  %s (general.file_type %u = %s)\n", r->artifact_path, r->file_type,
	       r->recipe_name);
	if (r->artifact_error)
		printf("header:    the artifact's header does not parse (%s); compared byte for byte\n",
		       r->artifact_error);
	printf("recipe:    %s%s%s\n", r->recipe_name, r->options[0] ? " " : "", r->options);
	if (r->imatrix_path)
		printf("imatrix:   %s%s%s%s\n", r->imatrix_path, r->imatrix_declared ? " (declared as \"" : "",
		       r->imatrix_declared ? r->imatrix_declared : "", r->imatrix_declared ? "\")" : "");
	for (size_t i = 0; i < r->n_inferred; i++)
		printf("inferred:  %s  (%s)\n", r->inferred[i].option, r->inferred[i].reason);
	for (size_t i = 0; i < r->n_type_devs; i++)
		printf("type:      %s is %s, no option explains it (plan: %s)\n", r->type_devs[i].name,
		       qa_type_name(r->type_devs[i].artifact_type),
		       qa_type_name(r->type_devs[i].planned_type));
	qa_manifest_hex(r->expected_sha256, hex);
	printf("would-be:  %" PRIu64 " bytes, sha256 %s%s%s\n", r->expected_size, hex,
	       r->output_path ? ", written to " : "", r->output_path ? r->output_path : "");
	qa_manifest_hex(r->artifact_sha256, hex);
	printf("artifact:  %" PRIu64 " bytes, sha256 %s%s%s%s%s\n", r->artifact_size, hex,
	       r->artifact_digest_given ? " (" : "",
	       r->artifact_digest_given ? r->artifact_digest_source : "",
	       r->artifact_digest_given ? ")" : "",
	       r->header_read ? "" : "; the artifact was not read");
	if (r->n_kv) {
		printf("\nmetadata: %zu pair%s differ%s from what llama-quantize would write:\n", r->n_kv,
		       r->n_kv == 1 ? "" : "s", r->n_kv == 1 ? "s" : "");
		for (size_t i = 0; i < r->n_kv; i++) {
			const struct qa_reproduce_kv *k = &r->kv[i];
			printf("  %-8s %s", qa_reproduce_kv_kind_name(k->kind), k->key);
			if (k->kind == QA_RKV_MOVED)
				printf(": position %" PRId64 ", expected %" PRId64, k->actual_index,
				       k->expected_index);
			else if (k->expected && k->actual)
				printf(": expected %s, artifact %s", k->expected, k->actual);
			else if (k->expected)
				printf(": expected %s", k->expected);
			else if (k->actual)
				printf(": artifact %s", k->actual);
			if (k->actual_offset != QA_NO_OFFSET)
				printf(" (offset %" PRIu64 ")", k->actual_offset);
			printf("\n");
		}
	}
	if (r->located) {
		printf("\nfirst difference: offset %" PRIu64 ", %s", r->first_difference, r->region_kind);
		if (r->region_name && r->region_index >= 0)
			printf(" %s", r->region_name);
		if (r->region_end != UINT64_MAX)
			printf(" (byte %" PRIu64 " of %" PRIu64 " at %" PRIu64 ")",
			       r->first_difference - r->region_start, r->region_end - r->region_start,
			       r->region_start);
		printf("; in the artifact: %s %s\n", r->artifact_region_kind,
		       r->artifact_region_name ? r->artifact_region_name : "");
	}
	if (r->explain) {
		const struct qa_diff_result *x = r->explain;
		size_t shown = 0;
		const char *sep = " ";
		printf("\nper-tensor diff:");
		for (int v = 0; v < QA_VERDICT_COUNT; v++)
			if (x->counts[v]) {
				printf("%s%zu %s", sep, x->counts[v], qa_verdict_name((enum qa_verdict)v));
				sep = ", ";
			}
		printf("\n");
		for (size_t i = 0; i < x->n && shown < 20; i++) {
			const struct qa_diff_tensor *t = &x->tensors[i];
			if (t->verdict == QA_VERDICT_IDENTICAL)
				continue;
			shown++;
			printf("  %-32s %-7s %s", t->name, qa_type_name(t->type), qa_verdict_name(t->verdict));
			if (t->verdict == QA_VERDICT_DIVERGENT)
				printf(": %" PRIu64 " of %" PRIu64 " blocks differ, first at block %" PRIu64,
				       t->divergent_blocks, t->blocks, t->first_divergent);
			printf("\n");
		}
	}
	printf("\n");
	qa_manifest_hex(r->expected_sha256, hex);
	if (r->reproduced) {
		printf("REPRODUCED: %s is byte for byte llama-quantize's %s%s%s output from %s (sha256 %s).\n",
		       r->artifact_path, r->recipe_name, r->options[0] ? " " : "", r->options,
		       r->reference_path, hex);
		return;
	}
	printf("DIFFERS: %s is not llama-quantize's %s%s%s output from %s", r->artifact_path,
	       r->recipe_name, r->options[0] ? " " : "", r->options, r->reference_path);
	if (r->located)
		printf("; the first difference is at offset %" PRIu64 " (%s%s%s)", r->first_difference,
		       r->region_kind, r->region_index >= 0 ? " " : "",
		       r->region_index >= 0 ? r->region_name : "");
	if (r->n_kv)
		printf("; %zu metadata pair%s differ%s", r->n_kv, r->n_kv == 1 ? "" : "s",
		       r->n_kv == 1 ? "s" : "");
	if (r->explain) {
		size_t bad = r->explain->n - r->explain->counts[QA_VERDICT_IDENTICAL];
		printf("; %zu of %zu tensors are not byte-identical to the re-quantization", bad,
		       r->explain->n);
	}
	printf(".\n");
}

int cmd_reproduce(int argc, char **argv)
{
	enum { O_RECIPE = 256, O_JSON, O_NOINFER, O_NOEXPLAIN, O_SHA, O_IMATRIX };
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "recipe", required_argument, NULL, O_RECIPE },
		{ "json", no_argument, NULL, O_JSON },
		{ "no-infer", no_argument, NULL, O_NOINFER },
		{ "no-explain", no_argument, NULL, O_NOEXPLAIN },
		{ "artifact-sha256", required_argument, NULL, O_SHA },
		{ "imatrix", required_argument, NULL, O_IMATRIX },
		{ "threads", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		CLI_QUANT_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_quant_flags qf;
	struct qa_reproduce_opts o;
	uint8_t digest[QA_SHA256_LEN];
	bool json = false;
	int c;
	memset(&o, 0, sizeof o);
	cli_quant_init(&qf);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:j:h", opts, NULL)) != -1) {
		int q = cli_quant_flag(&qf, c, optarg, "reproduce", usage);
		if (q > 0) {
			cli_quant_free(&qf);
			return q;
		}
		if (q == 0)
			continue;
		switch (c) {
		case 'o': o.out_path = optarg; break;
		case O_RECIPE: o.recipe = optarg; break;
		case O_JSON: json = true; break;
		case O_NOINFER: o.no_infer = true; break;
		case O_NOEXPLAIN: o.no_explain = true; break;
		case O_IMATRIX: o.imatrix_path = optarg; break;
		case O_SHA:
			if (!parse_hex(optarg, digest)) {
				cli_quant_free(&qf);
				return cli_usage_error("reproduce", usage, "--artifact-sha256 needs 64 hex digits");
			}
			o.artifact_digest = digest;
			break;
		case 'j':
			if (!cli_parse_threads(optarg, &o.n_threads)) {
				cli_quant_free(&qf);
				return cli_usage_error("reproduce", usage, "-j needs a thread count from 1 to 1024, not '%s'", optarg);
			}
			break;
		case 'h': help(); cli_quant_free(&qf); return QA_EXIT_OK;
		default:
			cli_quant_free(&qf);
			return cli_usage_error("reproduce", usage, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 2) {
		cli_quant_free(&qf);
		return cli_usage_error("reproduce", usage, argc - optind < 2 ? "needs REF and ARTIFACT" : "too many arguments");
	}
	if (o.recipe && !qa_recipe_by_name(o.recipe)) {
		cli_quant_free(&qf);
		return cli_usage_error("reproduce", usage, "unknown recipe '%s'", o.recipe);
	}
	const char *art0 = argv[optind + 1];
	struct qa_remote_head head;
	if (!o.artifact_digest && qa_remote_is_url(art0)) {
		/* the first hop's X-Linked-Etag: no artifact byte unless the digests differ */
		struct qa_diag hd;
		qa_diag_clear(&hd);
		if (qa_remote_head(art0, &head, &hd)) {
			cli_quant_free(&qf);
			return cli_fail(art0, &hd);
		}
		if (head.has_sha256) {
			memcpy(digest, head.sha256, sizeof digest);
			o.artifact_digest = digest;
			o.artifact_digest_source = "x-linked-etag";
			o.artifact_size_known = head.size != UINT64_MAX;
			o.artifact_size = head.size;
		}
	}
	o.overrides = &qf.ov;
	o.kv_overrides = qf.kvo;
	o.n_kv_overrides = qf.n_kvo;
	const char *ref = argv[optind], *art = argv[optind + 1], *culprit = NULL;
	struct qa_reproduce_result *r = NULL;
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_reproduce_run(ref, art, &o, &r, &culprit, &d);
	cli_quant_free(&qf);
	if (e == QA_ERR_USAGE)
		return cli_usage_error("reproduce", usage, "%s", d.msg);
	if (e)
		return cli_fail(e == QA_ERR_IO && o.out_path && !culprit ? o.out_path
		                : culprit ? culprit : art, &d);
	int rc = r->reproduced ? QA_EXIT_OK : QA_EXIT_FINDING;
	if (json) {
		if (cli_json_print(qa_reproduce_to_json(r)))
			rc = QA_EXIT_IO;
	} else {
		print_report(r);
	}
	qa_reproduce_free(r);
	return rc;
}
