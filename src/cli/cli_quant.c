/*
 * cli_quant.c - llama-quantize's options that change the file it writes,
 * parsed once for quantize and reproduce.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "types.h"

const char cli_quant_help[] =
	"  --pure                every quantizable tensor gets the recipe's default type\n"
	"  --output-tensor-type T   type for output.weight (and a tied token_embd)\n"
	"  --token-embedding-type T type for token_embd.weight\n"
	"  --tensor-type PATTERN=T  tensors whose name contains the regex PATTERN get T\n"
	"                        (repeatable; the first match wins; llama-quantize's syntax)\n"
	"  --leave-output-tensor output.weight keeps the reference's type\n"
	"  --override-kv KEY=TYPE:VALUE  set a metadata key (int, float, bool, str), as\n"
	"                        llama-quantize does (int is written as u32, float as f32)\n";

void cli_quant_init(struct cli_quant_flags *f)
{
	memset(f, 0, sizeof *f);
	qa_recipe_overrides_init(&f->ov);
	f->ov.tensor_types = f->tt;
}

void cli_quant_free(struct cli_quant_flags *f)
{
	for (size_t i = 0; i < f->ov.n_tensor_types; i++)
		free(f->patterns[i]);
	f->ov.n_tensor_types = 0;
}

static bool parse_type(const char *arg, uint32_t *out)
{
	const struct qa_type_info *t = qa_type_by_name(arg);
	if (!t || !t->quantizable)
		return false;
	*out = t->id;
	return true;
}

int cli_quant_flag(struct cli_quant_flags *f, int c, const char *arg, const char *cmd,
                   const char *usage)
{
	switch (c) {
	case CLI_QO_PURE:
		f->ov.pure = true;
		break;
	case CLI_QO_LEAVE_OUTPUT:
		f->ov.leave_output = true;
		break;
	case CLI_QO_OUTPUT_TYPE:
	case CLI_QO_TOKEN_TYPE:
		if (!parse_type(arg, c == CLI_QO_OUTPUT_TYPE ? &f->ov.output_type : &f->ov.token_embd_type))
			return cli_usage_error(cmd, usage, "type '%s' cannot be produced", arg);
		break;
	case CLI_QO_TENSOR_TYPE: {
		const char *sep = strchr(arg, '=');
		uint32_t type;
		if (!sep || sep == arg || !sep[1])
			return cli_usage_error(cmd, usage, "--tensor-type needs PATTERN=TYPE, not '%s'", arg);
		if (!parse_type(sep + 1, &type))
			return cli_usage_error(cmd, usage, "type '%s' cannot be produced", sep + 1);
		if (f->ov.n_tensor_types >= CLI_QUANT_MAX)
			return cli_usage_error(cmd, usage, "at most %d --tensor-type options", CLI_QUANT_MAX);
		char *pat = strndup(arg, (size_t)(sep - arg));
		if (!pat)
			return cli_usage_error(cmd, usage, "out of memory");
		f->patterns[f->ov.n_tensor_types] = pat;
		f->tt[f->ov.n_tensor_types].pattern = pat;
		f->tt[f->ov.n_tensor_types].type = type;
		f->ov.n_tensor_types++;
		break;
	}
	case CLI_QO_OVERRIDE_KV: {
		struct qa_diag d;
		qa_diag_clear(&d);
		if (f->n_kvo >= CLI_QUANT_MAX)
			return cli_usage_error(cmd, usage, "at most %d --override-kv options", CLI_QUANT_MAX);
		if (qa_kv_override_parse(arg, &f->kvo[f->n_kvo], &d))
			return cli_usage_error(cmd, usage, "%s", d.msg);
		f->n_kvo++;
		break;
	}
	default:
		return -1;
	}
	f->any = true;
	return 0;
}

static void add(char *buf, size_t cap, size_t *len, const char *fmt, const char *a, const char *b)
{
	if (*len >= cap)
		return;
	int k = snprintf(buf + *len, cap - *len, fmt, a, b);
	if (k > 0)
		*len += (size_t)k < cap - *len ? (size_t)k : cap - *len;
}

const char *cli_quant_text(const struct cli_quant_flags *f)
{
	static char buf[4096];
	size_t len = 0;
	buf[0] = '\0';
	if (f->ov.pure)
		add(buf, sizeof buf, &len, " --pure%s%s", "", "");
	if (f->ov.leave_output)
		add(buf, sizeof buf, &len, " --leave-output-tensor%s%s", "", "");
	if (f->ov.output_type != QA_TYPE_COUNT)
		add(buf, sizeof buf, &len, " --output-tensor-type %s%s", qa_type_name(f->ov.output_type), "");
	if (f->ov.token_embd_type != QA_TYPE_COUNT)
		add(buf, sizeof buf, &len, " --token-embedding-type %s%s", qa_type_name(f->ov.token_embd_type), "");
	for (size_t i = 0; i < f->ov.n_tensor_types; i++)
		add(buf, sizeof buf, &len, " --tensor-type %s=%s", f->tt[i].pattern, qa_type_name(f->tt[i].type));
	return buf[0] == ' ' ? buf + 1 : buf;
}
