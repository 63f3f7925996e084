/*
 * cli.c - shared helpers of the command implementations.
 */
#include "cli.h"

#include "imatrix.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int cli_fail(const char *file, const struct qa_diag *d)
{
	/* reasons quote names read from files: keep their bytes off the terminal */
	char msg[4 * sizeof d->msg];
	cli_escape_name(d->msg, msg, sizeof msg);
	if (d->offset != QA_NO_OFFSET)
		fprintf(stderr, "quantaudit: %s: offset %llu: %s\n", file,
		        (unsigned long long)d->offset, msg);
	else
		fprintf(stderr, "quantaudit: %s: %s\n", file, msg);
	return qa_err_exit_code(d->code);
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
	int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	json_decref(root);
	if (rc != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		fprintf(stderr, "quantaudit: cannot write standard output\n");
		return QA_EXIT_IO;
	}
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

void cli_escape_name(const char *s, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool plain = ch >= 0x20 && ch < 0x7f && ch != '\\';
		size_t need = plain ? 1 : 4;
		if (k + need >= cap)
			break;
		if (plain) {
			buf[k++] = (char)ch;
		} else {
			buf[k++] = '\\';
			buf[k++] = 'x';
			buf[k++] = hex[ch >> 4];
			buf[k++] = hex[ch & 15];
		}
	}
	buf[k] = '\0';
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
	char name[256];
	if (!unmatched)
		return;
	cli_escape_name(first, name, sizeof name);
	fprintf(stderr,
	        "quantaudit: warning: %s: %zu entr%s name%s no tensor of the reference (first: %s); "
	        "llama-quantize ignores %s\n",
	        path, unmatched, unmatched == 1 ? "y" : "ies", unmatched == 1 ? "s" : "", name,
	        unmatched == 1 ? "it" : "them");
}
