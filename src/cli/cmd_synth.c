/*
 * cmd_synth.c - "quantaudit synth": write a deterministic synthetic
 * checkpoint (safetensors plus config.json) with the shapes of a real model.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "synth.h"
#include "types.h"

static const char usage[] =
	"quantaudit synth --arch ARCH --hidden H --intermediate I --heads A\n"
	"       --kv-heads K --vocab V [--layers N] [--head-dim D] [--tied] [--dtype bf16|f16|f32]\n"
	"       [--seed S] [-j N] -o FILE.safetensors\n"
	"       (qwen2moe, qwen3moe, gpt-oss: also --experts N --experts-used K [--expert-ffn F];\n"
	"        llama, mistral: [--rope-scaling llama3]; phi3: [--rope-scaling longrope];\n"
	"        gemma3: [--tokenizer-vocab T])";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Write a synthetic reference checkpoint with Hugging Face tensor names and shapes,\n"
	       "and a config.json in the same directory, so that audits can run on the shapes of\n"
	       "real models without downloading weights.  The values look like trained weights\n"
	       "(log-normal per-row scales around std 0.02, about 0.2%% heavy-tail values, small\n"
	       "biases, norm weights near 1) and depend only on the options: the same options\n"
	       "give byte-identical files on every machine and for every thread count.\n\n"
	       "  --arch A            GGUF architecture name: llama, mistral (written as\n"
	       "                      MistralForCausalLM, converted as llama), qwen2 (q/k/v\n"
	       "                      biases), qwen3 (q/k norms), gemma2, gemma3 (extra norms,\n"
	       "                      always tied), phi3 (fused qkv_proj and gate_up_proj)\n"
	       "                      mixture of experts: qwen3moe, qwen2moe (one tensor per\n"
	       "                      expert; qwen2moe with a shared expert) or gpt-oss (fused\n"
	       "                      3-D experts, attention sinks)\n"
	       "  --hidden H          hidden size\n"
	       "  --intermediate I    MLP intermediate size\n"
	       "  --heads A           attention heads\n"
	       "  --kv-heads K        key/value heads (must divide A)\n"
	       "  --vocab V           vocabulary size\n"
	       "  --layers N          transformer layers (default 1)\n"
	       "  --head-dim D        head dimension (default H / A, which must then divide)\n"
	       "  --tied              tie the output to the embeddings (no lm_head.weight)\n"
	       "  --dtype T           bf16 (default), f16 or f32\n"
	       "  --seed S            random seed (default 0)\n"
	       "  --experts N         experts per layer (MoE architectures only, N >= 2)\n"
	       "  --experts-used K    experts routed per token (1..N)\n"
	       "  --expert-ffn F      each expert's intermediate size (default --intermediate)\n"
	       "  --rope-scaling R    write a rope_scaling: llama3 (llama, mistral; Llama 3.1's)\n"
	       "                      or longrope (phi3; long/short factor lists)\n"
	       "  --tokenizer-vocab T also write a tokenizer.json of T tokens (gemma3, T <= V)\n"
	       "  --mxfp4             gpt-oss only: write the experts in the MXFP4 form published\n"
	       "                      on the Hub (U8 *_proj_blocks and *_proj_scales, and a\n"
	       "                      quantization_config of quant_method mxfp4)\n"
	       "  -j, --threads N     worker threads (default: all cores)\n"
	       "  -o, --output FILE   the .safetensors file to write (files are replaced atomically)\n"
	       "  -h, --help          show this help\n\n"
	       "Example (Qwen2.5-7B shapes, one layer):\n"
	       "  quantaudit synth --arch qwen2 --hidden 3584 --intermediate 18944 --heads 28 \\\n"
	       "      --kv-heads 4 --vocab 152064 --layers 1 -o q7b/model.safetensors\n",
	       usage);
}

int cmd_synth(int argc, char **argv)
{
	enum { O_ARCH = 256, O_HIDDEN, O_INTER, O_HEADS, O_KV, O_VOCAB, O_LAYERS, O_HEAD_DIM,
	       O_TIED, O_DTYPE, O_SEED, O_EXPERTS, O_EXPERTS_USED, O_EXPERT_FFN, O_ROPE, O_TOKENIZER, O_MXFP4 };
	static const struct option opts[] = {
		{ "arch", required_argument, NULL, O_ARCH },
		{ "hidden", required_argument, NULL, O_HIDDEN },
		{ "intermediate", required_argument, NULL, O_INTER },
		{ "heads", required_argument, NULL, O_HEADS },
		{ "kv-heads", required_argument, NULL, O_KV },
		{ "vocab", required_argument, NULL, O_VOCAB },
		{ "layers", required_argument, NULL, O_LAYERS },
		{ "head-dim", required_argument, NULL, O_HEAD_DIM },
		{ "tied", no_argument, NULL, O_TIED },
		{ "dtype", required_argument, NULL, O_DTYPE },
		{ "seed", required_argument, NULL, O_SEED },
		{ "experts", required_argument, NULL, O_EXPERTS },
		{ "experts-used", required_argument, NULL, O_EXPERTS_USED },
		{ "expert-ffn", required_argument, NULL, O_EXPERT_FFN },
		{ "rope-scaling", required_argument, NULL, O_ROPE },
		{ "tokenizer-vocab", required_argument, NULL, O_TOKENIZER },
		{ "mxfp4", no_argument, NULL, O_MXFP4 },
		CLI_OPTION_THREADS, CLI_OPTION_OUTPUT, CLI_OPTION_HELP, CLI_OPTION_END,
	};
	struct cli_common co = CLI_COMMON_INIT("synth", usage, help);
	struct qa_synth_opts o = { .layers = 1, .dtype = QA_TYPE_BF16 };
	bool seen_hidden = false, seen_inter = false, seen_heads = false, seen_kv = false,
	     seen_vocab = false;
	uint64_t v;
	int c;
	while ((c = cli_getopt(&co, argc, argv, "o:j:h", opts)) != -1) {
		const char *name = NULL;
		uint64_t max = QA_SYNTH_MAX_DIM;
		switch (c) {
		case CLI_GETOPT_EXIT: return co.status;
		case O_ARCH: o.arch = optarg; continue;
		case O_ROPE: o.rope_scaling = optarg; continue;
		case O_TIED: o.tied = true; continue;
		case O_MXFP4: o.mxfp4 = true; continue;
		case O_DTYPE:
			if (strcmp(optarg, "bf16") == 0)
				o.dtype = QA_TYPE_BF16;
			else if (strcmp(optarg, "f16") == 0)
				o.dtype = QA_TYPE_F16;
			else if (strcmp(optarg, "f32") == 0)
				o.dtype = QA_TYPE_F32;
			else
				return cli_usage_error("synth", usage, "unknown dtype '%s' (bf16, f16 or f32)", optarg);
			continue;
		case O_SEED:
			if (!cli_parse_u64(optarg, 0, UINT64_MAX, &o.seed))
				return cli_usage_error("synth", usage, "--seed needs an unsigned integer, not '%s'", optarg);
			continue;
		case O_HIDDEN: name = "--hidden"; break;
		case O_INTER: name = "--intermediate"; break;
		case O_HEADS: name = "--heads"; break;
		case O_KV: name = "--kv-heads"; break;
		case O_VOCAB: name = "--vocab"; break;
		case O_LAYERS: name = "--layers"; max = QA_SYNTH_MAX_LAYERS; break;
		case O_EXPERTS: name = "--experts"; max = QA_SYNTH_MAX_EXPERTS; break;
		case O_EXPERTS_USED: name = "--experts-used"; max = QA_SYNTH_MAX_EXPERTS; break;
		case O_EXPERT_FFN: name = "--expert-ffn"; break;
		case O_TOKENIZER: name = "--tokenizer-vocab"; break;
		default: name = "--head-dim"; break;
		}
		if (!cli_parse_u64(optarg, 1, max, &v))
			return cli_usage_error("synth", usage, "%s needs an integer from 1 to %" PRIu64 ", not '%s'",
			                       name, max, optarg);
		switch (c) {
		case O_HIDDEN: o.hidden = v; seen_hidden = true; break;
		case O_INTER: o.intermediate = v; seen_inter = true; break;
		case O_HEADS: o.heads = (uint32_t)v; seen_heads = true; break;
		case O_KV: o.kv_heads = (uint32_t)v; seen_kv = true; break;
		case O_VOCAB: o.vocab = v; seen_vocab = true; break;
		case O_LAYERS: o.layers = (uint32_t)v; break;
		case O_EXPERTS: o.experts = (uint32_t)v; break;
		case O_EXPERTS_USED: o.experts_used = (uint32_t)v; break;
		case O_EXPERT_FFN: o.expert_ffn = v; break;
		case O_TOKENIZER: o.tokenizer_vocab = v; break;
		default: o.head_dim = (uint32_t)v; break;
		}
	}
	const char *out = co.output;
	o.threads = co.threads;
	if (optind < argc)
		return cli_usage_error("synth", usage, "unexpected argument '%s'", argv[optind]);
	const char *missing = !o.arch ? "--arch" : !seen_hidden ? "--hidden"
	                    : !seen_inter ? "--intermediate" : !seen_heads ? "--heads"
	                    : !seen_kv ? "--kv-heads" : !seen_vocab ? "--vocab" : !out ? "-o" : NULL;
	if (missing)
		return cli_usage_error("synth", usage, "missing %s", missing);
	int rc = cli_check_output(&co, out, NULL, 0);
	if (rc)
		return rc;

	struct qa_diag d;
	qa_diag_clear(&d);
	uint64_t n_tensors = 0, bytes = 0;
	enum qa_err e = qa_synth_check(&o, &n_tensors, &bytes, &d);
	if (e == QA_OK)
		e = qa_synth_write(&o, out, &d);
	if (e == QA_ERR_USAGE)
		return cli_usage_error("synth", usage, "%s", d.msg);
	if (e)
		return cli_fail(out, &d);
	char esc[1024];
	printf("%s: %" PRIu64 " tensors, %" PRIu64 " bytes\n", cli_escape(esc, sizeof esc, out), n_tensors, bytes);
	return QA_EXIT_OK; /* stdout is checked by main */
}
