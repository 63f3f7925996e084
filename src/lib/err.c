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

const char *qa_err_name(enum qa_err code)
{
	switch (code) {
	case QA_OK: return "ok";
	case QA_ERR_USAGE: return "usage error";
	case QA_ERR_FORMAT: return "malformed input";
	case QA_ERR_UNSUPPORTED: return "unsupported input";
	case QA_ERR_VALUE: return "refused input value";
	case QA_ERR_IO: return "i/o error";
	case QA_ERR_NETWORK: return "network error";
	case QA_ERR_NOMEM: return "out of memory";
	}
	return "unknown error";
}

int qa_err_exit_code(enum qa_err code)
{
	switch (code) {
	case QA_OK: return 0;
	case QA_ERR_USAGE: return 2;
	case QA_ERR_FORMAT:
	case QA_ERR_UNSUPPORTED:
	case QA_ERR_VALUE: return 3;
	case QA_ERR_IO:
	case QA_ERR_NETWORK:
	case QA_ERR_NOMEM: return 4;
	}
	return 4;
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
