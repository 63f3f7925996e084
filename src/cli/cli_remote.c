/*
 * cli_remote.c - the network options every command accepts, and what the
 * CLI does around a run that reads remote inputs: hf:// repository and
 * QUANT arguments expanded to files, warnings, the "transfer" object of
 * --json outputs, and the final integrity check.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hub.h"
#include "remote.h"

static char *expanded[64];
static size_t n_expanded;

static void warn_line(const char *msg)
{
	fprintf(stderr, "quantaudit: warning: %s\n", msg);
}

/* The value of option name at argv[*i] ("--name V" or "--name=V"), or NULL. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *matched)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	*matched = false;
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=') {
		*matched = true;
		return a + n + 1;
	}
	if (a[n] != '\0')
		return NULL;
	*matched = true;
	if (*i + 1 >= argc)
		return NULL;
	(*i)++;
	return argv[*i];
}

int cli_remote_setup(int *argc, char **argv)
{
	static const char usage[] = "quantaudit COMMAND [--retries N] [--retry-wait-ms MS] [--cache DIR] "
	                            "[--cache-blobs] [--offline] [--quiet] ...";
	struct qa_remote_options o;
	bool quiet = false;
	qa_remote_options_default(&o);
	int w = 1;
	bool rest = false;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		bool m;
		const char *v;
		uint64_t x;
		if (rest || a[0] != '-' || a[1] != '-') {
			argv[w++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			rest = true;
			argv[w++] = argv[i];
			continue;
		}
		if ((v = opt_value(*argc, argv, &i, "--retries", &m)), m) {
			if (!v || !cli_parse_u64(v, 0, 100, &x))
				return cli_usage_error(argv[0], usage, "--retries needs a count from 0 to 100");
			o.retries = (unsigned)x;
		} else if ((v = opt_value(*argc, argv, &i, "--retry-wait-ms", &m)), m) {
			if (!v || !cli_parse_u64(v, 0, 600000, &x))
				return cli_usage_error(argv[0], usage, "--retry-wait-ms needs milliseconds from 0 to 600000");
			o.retry_wait_ms = (unsigned)x;
		} else if ((v = opt_value(*argc, argv, &i, "--cache", &m)), m) {
			if (!v || !*v)
				return cli_usage_error(argv[0], usage, "--cache needs a directory");
			o.cache_dir = v;
		} else if (strcmp(a, "--cache-blobs") == 0) {
			o.cache_blobs = true;
		} else if (strcmp(a, "--offline") == 0) {
			o.offline = true;
		} else if (strcmp(a, "--quiet") == 0) {
			quiet = true;
		} else {
			argv[w++] = argv[i];
		}
	}
	argv[w] = NULL;
	*argc = w;
	o.progress = !quiet && isatty(STDERR_FILENO);
	o.warn = warn_line;
	qa_remote_configure(&o);

	/* hf:// repositories and QUANT tags become the files they name. */
	for (int i = 1; i < *argc; i++) {
		if (strncmp(argv[i], "hf://", 5) != 0)
			continue;
		char *out = NULL, *cands = NULL;
		struct qa_diag d;
		qa_diag_clear(&d);
		enum qa_err e = qa_hub_expand(argv[i], &out, &cands, &d);
		if (e == QA_ERR_USAGE) {
			fprintf(stderr, "quantaudit: %s\n", d.msg);
			if (cands && *cands) {
				fprintf(stderr, "candidates:\n");
				for (char *line = cands, *nl; *line; line = nl + 1) {
					nl = strchr(line, '\n');
					if (!nl)
						break;
					*nl = '\0';
					fprintf(stderr, "  %s\n", line);
				}
			}
			free(cands);
			return QA_EXIT_USAGE;
		}
		free(cands);
		if (e)
			return cli_fail(argv[i], &d);
		if (n_expanded < sizeof expanded / sizeof expanded[0]) {
			expanded[n_expanded++] = out;
			argv[i] = out;
		} else {
			free(out);
		}
	}
	return QA_EXIT_OK;
}

/* merge: the transfer its parts recorded (this process reads no remote input) */
static json_t *adopted;

void cli_remote_adopt(json_t *transfer)
{
	json_decref(adopted);
	adopted = json_incref(transfer);
}

void cli_remote_json(json_t *root)
{
	json_t *t = qa_remote_transfer_json();
	if (!t && adopted)
		t = json_incref(adopted);
	if (t && json_is_object(root))
		json_object_set_new(root, "transfer", t);
	else
		json_decref(t);
}

int cli_remote_finish(int rc)
{
	struct qa_diag d;
	qa_diag_clear(&d);
	if (qa_remote_finish(&d) && rc != QA_EXIT_IO) {
		fprintf(stderr, "quantaudit: %s\n", d.msg);
		rc = QA_EXIT_IO;
	}
	for (size_t i = 0; i < n_expanded; i++)
		free(expanded[i]);
	n_expanded = 0;
	json_decref(adopted);
	adopted = NULL;
	return rc;
}
