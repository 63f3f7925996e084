/*
 * cli.c - shared helpers of the command implementations.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "escape.h"
#include "imatrix.h"
#include "tmpfile.h"

static int stdout_errno; /* the first reason stdout could not be written */

int cli_flush(void)
{
	if (fflush(stdout) != 0) {
		if (!stdout_errno)
			stdout_errno = errno;
		return -1;
	}
	return ferror(stdout) ? -1 : 0;
}

int cli_stdout_errno(void)
{
	return stdout_errno;
}

const char *cli_escape(char *buf, size_t cap, const char *s)
{
	return qa_escape_term_buf(buf, cap, s ? s : "", s ? strlen(s) : 0);
}

int cli_fail(const char *file, const struct qa_diag *d)
{
	char f[1024], m[1024];
	cli_escape(f, sizeof f, file);
	/* the library escaped the names in its message: do not double their backslashes */
	qa_escape_msg_buf(m, sizeof m, d->msg, strlen(d->msg));
	if (d->offset != QA_NO_OFFSET)
		fprintf(stderr, "quantaudit: %s: offset %llu: %s\n", f, (unsigned long long)d->offset, m);
	else
		fprintf(stderr, "quantaudit: %s: %s\n", f, m);
	return qa_err_exit_code(d->code);
}

/* Whether the directory dir holds an entry that is the file st. */
static bool dir_holds(const char *dir, const struct stat *st)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(dh))) {
		struct stat es;
		if (fstatat(dirfd(dh), e->d_name, &es, 0) == 0 && S_ISREG(es.st_mode) &&
		    es.st_dev == st->st_dev && es.st_ino == st->st_ino)
			found = true;
	}
	closedir(dh);
	return found;
}

int cli_check_output(const struct cli_common *co, const char *out, const char *const *inputs,
                     size_t n)
{
	char o[1024], in[1024];
	if (!out)
		return 0;
	if (!*out)
		return cli_usage_error(co->cmd, co->usage, "the output path is empty");
	struct stat os;
	if (stat(out, &os) == 0) {
		if (S_ISDIR(os.st_mode)) {
			fprintf(stderr, "quantaudit: %s: is a directory\n", cli_escape(o, sizeof o, out));
			return QA_EXIT_IO;
		}
		for (size_t i = 0; i < n; i++) {
			struct stat is;
			if (!inputs[i] || stat(inputs[i], &is) != 0)
				continue;
			if ((is.st_dev == os.st_dev && is.st_ino == os.st_ino) ||
			    (S_ISDIR(is.st_mode) && dir_holds(inputs[i], &os)))
				return cli_usage_error(co->cmd, co->usage,
				                       "output %s is the same file as input %s; refusing to overwrite an input",
				                       cli_escape(o, sizeof o, out), cli_escape(in, sizeof in, inputs[i]));
		}
	}
	struct qa_tmpfile t;
	struct qa_diag d;
	qa_diag_clear(&d);
	if (qa_tmpfile_open(&t, out, &d) != QA_OK)
		return cli_fail(out, &d);
	qa_tmpfile_abort(&t);
	return 0;
}

int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "quantaudit %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\nTry 'quantaudit %s --help' for more.\n", usage, cmd);
	return QA_EXIT_USAGE;
}

bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int cli_getopt(struct cli_common *co, int argc, char **argv, const char *shortopts,
               const struct option *opts)
{
	if (!co->started) {
		co->started = true;
		optind = 1;
		opterr = 0;
	}
	for (;;) {
		int c = getopt_long(argc, argv, shortopts, opts, NULL);
		switch (c) {
		case -1:
			return -1;
		case CLI_OPT_OUTPUT:
			co->output = optarg;
			continue;
		case CLI_OPT_JSON:
			co->json = true;
			continue;
		case CLI_OPT_THREADS:
			if (cli_parse_threads(optarg, &co->threads))
				continue;
			co->status = cli_usage_error(co->cmd, co->usage,
			                             "-j needs a thread count from 1 to 1024, not '%s'", optarg);
			break;
		case CLI_OPT_HELP:
			co->help();
			co->status = QA_EXIT_OK;
			break;
		case '?':
		case ':':
			co->status = cli_usage_error(co->cmd, co->usage, "unknown or incomplete option '%s'",
			                             argv[optind - 1]);
			break;
		default:
			return c;
		}
		return CLI_GETOPT_EXIT;
	}
}

bool cli_parse_threads(const char *s, unsigned *out)
{
	uint64_t v;
	if (!cli_parse_u64(s, 1, 1024, &v))
		return false;
	*out = (unsigned)v;
	return true;
}

int cli_json_print(json_t *root)
{
	if (!root) {
		fprintf(stderr, "quantaudit: out of memory\n");
		return QA_EXIT_IO;
	}
	cli_remote_json(root);
	errno = 0;
	int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	if (rc != 0 && !stdout_errno)
		stdout_errno = errno; /* the failed write's reason, before anything else runs */
	json_decref(root);
	/* a write error is reported once, by main's check of stdout */
	if (rc != 0 || fputc('\n', stdout) == EOF || cli_flush() != 0)
		return QA_EXIT_IO;
	return QA_EXIT_OK;
}

void cli_shape_text(const uint64_t *dims, uint32_t n, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < n && used < cap; i++) {
		int w = snprintf(buf + used, cap - used, "%s%" PRIu64, i ? " x " : "", dims[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

int cli_imatrix_load(const char *path, struct qa_imatrix **out)
{
	struct qa_diag d;
	qa_diag_clear(&d);
	if (qa_imatrix_load(out, path, &d))
		return cli_fail(path, &d);
	return QA_EXIT_OK;
}

void cli_imatrix_warn_unmatched(const char *path, size_t unmatched, const char *first)
{
	char name[256], p[1024];
	if (!unmatched)
		return;
	cli_escape(name, sizeof name, first);
	path = cli_escape(p, sizeof p, path);
	fprintf(stderr,
	        "quantaudit: warning: %s: %zu entr%s name%s no tensor of the reference (first: %s); "
	        "llama-quantize ignores %s\n",
	        path, unmatched, unmatched == 1 ? "y" : "ies", unmatched == 1 ? "s" : "", name,
	        unmatched == 1 ? "it" : "them");
}
