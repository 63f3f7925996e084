/*
 * err.c - formatting and classification of library errors.
 */
#define _POSIX_C_SOURCE 200809L
#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

enum qa_err qa_diag_set(struct qa_diag *d, enum qa_err code, uint64_t offset,
                        const char *fmt, ...)
{
	if (d) {
		va_list ap;
		d->code = code;
		d->offset = offset;
		va_start(ap, fmt);
		vsnprintf(d->msg, sizeof d->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

enum qa_err qa_diag_prefix(struct qa_diag *d, enum qa_err e, const char *prefix)
{
	if (d) {
		char tmp[sizeof d->msg];
		memcpy(tmp, d->msg, sizeof tmp);
		tmp[sizeof tmp - 1] = '\0';
		qa_diag_set(d, e, d->offset, "%s: %s", prefix, tmp);
	}
	return e;
}

void qa_diag_clear(struct qa_diag *d)
{
	if (d) {
		d->code = QA_OK;
		d->offset = QA_NO_OFFSET;
		d->msg[0] = '\0';
	}
}


/*
 * The one table from error code to name and exit status.  Every command's
 * status for an error comes from here (through cli_fail); the statuses
 * themselves are enum qa_exit in err.h.
 */
static const struct {
	const char *name;
	enum qa_exit exit;
} err_table[] = {
	[QA_OK]              = { "ok", QA_EXIT_OK },
	[QA_ERR_USAGE]       = { "usage error", QA_EXIT_USAGE },
	[QA_ERR_FORMAT]      = { "malformed input", QA_EXIT_MALFORMED },
	[QA_ERR_UNSUPPORTED] = { "unsupported input", QA_EXIT_MALFORMED },
	[QA_ERR_VALUE]       = { "refused input value", QA_EXIT_MALFORMED },
	[QA_ERR_IO]          = { "i/o error", QA_EXIT_IO },
	[QA_ERR_NETWORK]     = { "network error", QA_EXIT_IO },
	[QA_ERR_NOMEM]       = { "out of memory", QA_EXIT_IO },
};
_Static_assert(sizeof err_table / sizeof err_table[0] == QA_ERR_NOMEM + 1,
               "err_table must list every enum qa_err");

const char *qa_err_name(enum qa_err code)
{
	return (unsigned)code < sizeof err_table / sizeof err_table[0] ? err_table[code].name
	                                                                 : "unknown error";
}

int qa_err_exit_code(enum qa_err code)
{
	/* an unknown code must never look like success to the shell */
	return (unsigned)code < sizeof err_table / sizeof err_table[0] ? (int)err_table[code].exit
	                                                                 : QA_EXIT_IO;
}

const char *qa_strerror(int e)
{
	static _Thread_local char buf[128];
	if (strerror_r(e, buf, sizeof buf) != 0)
		snprintf(buf, sizeof buf, "error %d", e);
	/* strerror's texts start with a capital ("No such file or directory") */
	if (buf[0] && buf[1] && !isupper((unsigned char)buf[1]))
		buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}
