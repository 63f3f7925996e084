/*
 * main.c - the quantaudit command line: global options and the command
 * table.  Each command lives in its own cmd_<name>.c and receives argv
 * starting at its own name.
 */
#include "build-config.h"

#include <stdio.h>
#include <string.h>

#include "blockhash.h"
#include "cli.h"
#include "fetch.h"

static const struct cli_command commands[] = {
	{ "inspect", cmd_inspect, "show a GGUF or safetensors file's header, metadata and tensors" },
	{ "quantize", cmd_quantize, "quantize a reference checkpoint exactly as ggml does" },
	{ "hash", cmd_hash, "hash every tensor and 256-element block (manifest)" },
	{ "verify", cmd_verify, "check a file against a manifest" },
	{ "diff", cmd_diff, "audit a GGUF artifact against its reference checkpoint" },
	{ "shape-swap", cmd_shape_swap, "audit the [in,out] shape-swap defect (AUDIT-Q4K-SHAPE-001)" },
	{ "recipe-check", cmd_recipe_check, "a llama.cpp recipe against a pure type on a model's shapes (AUDIT-Q4K-RECIPE-002)" },
	{ "synth", cmd_synth, "write a deterministic synthetic checkpoint with a real model's shapes" },
};

static const size_t n_commands = sizeof commands / sizeof commands[0];

const char *cli_version_string(void)
{
	static char buf[256];
	if (!buf[0])
		snprintf(buf, sizeof buf, "quantaudit %s (%s, %s, jansson %s)",
		         PACKAGE_VERSION, qa_blockhash_backend_version(),
		         qa_fetch_backend_version(), jansson_version_str());
	return buf;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: quantaudit [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < n_commands; i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'quantaudit COMMAND --help' for a command's options.\n"
	           "Exit status: 0 ok, 1 audit finding, 2 usage, 3 malformed input, 4 I/O or network error.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return QA_EXIT_USAGE;
	}
	const char *a = argv[1];
	if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
		if (argc > 2 && strcmp(a, "help") == 0) {
			for (size_t i = 0; i < n_commands; i++)
				if (strcmp(argv[2], commands[i].name) == 0) {
					char *sub[] = { argv[2], "--help", NULL };
					return commands[i].run(2, sub);
				}
		}
		usage(stdout);
		return QA_EXIT_OK;
	}
	if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
		printf("%s\n", cli_version_string());
		return QA_EXIT_OK;
	}
	for (size_t i = 0; i < n_commands; i++)
		if (strcmp(a, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "quantaudit: '%s' is not a command\n", a);
	usage(stderr);
	return QA_EXIT_USAGE;
}
