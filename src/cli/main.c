/*
 * main.c - the quantaudit command line: global options and the command
 * table.  Each command lives in its own cmd_<name>.c and receives argv
 * starting at its own name.
 */
#define _POSIX_C_SOURCE 200809L
#include "build-config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "blockhash.h"
#include "cli.h"
#include "fetch.h"
#include "tmpfile.h"

static const struct cli_command commands[] = {
	{ "inspect", cmd_inspect, "show a GGUF or safetensors file's header, metadata and tensors" },
	{ "quantize", cmd_quantize, "quantize a reference checkpoint exactly as ggml does" },
	{ "hash", cmd_hash, "hash every tensor and 256-element block (manifest)" },
	{ "verify", cmd_verify, "check a file against a manifest" },
	{ "diff", cmd_diff, "audit a GGUF artifact against its reference checkpoint" },
	{ "shape-swap", cmd_shape_swap, "audit the [in,out] shape-swap defect (AUDIT-Q4K-SHAPE-001)" },
	{ "merge", cmd_merge, "merge the parts of a sharded diff, shape-swap or hash (--shard K/N)" },
	{ "recipe-check", cmd_recipe_check, "a llama.cpp recipe against a pure type on a model's shapes (AUDIT-Q4K-RECIPE-002)" },
	{ "synth", cmd_synth, "write a deterministic synthetic checkpoint with a real model's shapes" },
	{ "reproduce", cmd_reproduce, "rebuild an artifact from its GGUF reference; prove it with one SHA-256" },
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
	           "Every FILE may be an https:// or hf://ORG/NAME[@REV][/PATH|:QUANT] URL; every command\n"
	           "takes --retries N, --retry-wait-ms MS, --cache DIR, --cache-blobs, --offline, --quiet.\n"
	           "Exit status: 0 ok, 1 audit finding, 2 usage, 3 malformed input, 4 I/O or network error.\n");
}

/* SIGINT, SIGTERM: remove the pending temporary files, then die of the signal. */
static void on_signal(int sig)
{
	qa_tmpfile_remove_pending();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int not_a_command(const char *a)
{
	char name[256];
	fprintf(stderr, "quantaudit: '%s' is not a command\n", cli_escape(name, sizeof name, a));
	usage(stderr);
	return QA_EXIT_USAGE;
}

static int dispatch(int argc, char **argv)
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
			return not_a_command(argv[2]);
		}
		usage(stdout);
		return QA_EXIT_OK;
	}
	if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
		printf("%s\n", cli_version_string());
		return QA_EXIT_OK;
	}
	for (size_t i = 0; i < n_commands; i++)
		if (strcmp(a, commands[i].name) == 0) {
			/* network options and hf:// arguments first (cli_remote.c) */
			int sub_argc = argc - 1;
			int rc = cli_remote_setup(&sub_argc, argv + 1);
			if (rc)
				return cli_remote_finish(rc);
			return cli_remote_finish(commands[i].run(sub_argc, argv + 1));
		}
	return not_a_command(a);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = dispatch(argc, argv);
	/* stdout is checked once, here, for every command and the help text */
	if (cli_flush() != 0) {
		int err = cli_stdout_errno();
		fprintf(stderr, "quantaudit: cannot write standard output: %s\n",
		        err ? qa_strerror(err) : "write error");
		return QA_EXIT_IO;
	}
	return rc;
}
