/*
 * err.h - the single error vocabulary of libquantaudit.
 *
 * Every fallible library call returns an enum qa_err and, when the caller
 * passes one, fills a struct qa_diag with the byte offset at which a file
 * went wrong and a one-line lowercase reason.  The library never prints,
 * exits or aborts on bad input; the CLI turns a diag into the one line
 * "quantaudit: FILE: offset N: reason" and an exit code.
 */
#ifndef QA_ERR_H
#define QA_ERR_H

#include <stdarg.h>
#include <stdint.h>

/*
 * QA_WARN_UNUSED marks a function whose result reports an error: ignoring
 * it is a compiler warning (curl's WARN_UNUSED_RESULT).  A call site that
 * ignores one on purpose writes "(void)!f(...)" (GCC does not take a plain
 * void cast as consent) and says why in a comment beside it.
 */
#if defined(__GNUC__) || defined(__clang__)
#define QA_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define QA_WARN_UNUSED
#endif

enum qa_err {
	QA_OK = 0,
	QA_ERR_USAGE,       /* the caller asked for something impossible */
	QA_ERR_FORMAT,      /* malformed input file: offset and reason set */
	QA_ERR_UNSUPPORTED, /* well-formed input this build cannot handle */
	QA_ERR_VALUE,       /* input data refused (e.g. NaN or Inf weights) */
	QA_ERR_IO,          /* the operating system refused a read or write */
	QA_ERR_NETWORK,     /* a remote source failed */
	QA_ERR_NOMEM        /* an allocation failed */
};

/* Offset value meaning "no byte offset applies". */
#define QA_NO_OFFSET UINT64_MAX

struct qa_diag {
	enum qa_err code;
	uint64_t offset;   /* absolute byte offset in the file, or QA_NO_OFFSET */
	char msg[256];     /* lowercase reason, no trailing newline */
};

/*
 * Record an error in d (which may be NULL) and return code, so that callers
 * can write "return qa_diag_set(d, QA_ERR_FORMAT, off, "...", ...)".  The
 * message is formatted with vsnprintf and silently truncated to fit.
 */
enum qa_err qa_diag_set(struct qa_diag *d, enum qa_err code, uint64_t offset,
                        const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * A lowercase description of errno value e ("no such file or directory"),
 * for messages in the house style.  The string is static or thread-local
 * and stays valid until the calling thread's next call.
 */
const char *qa_strerror(int e);

/*
 * Put "PREFIX: " before d's message (typically a path), keeping its code
 * and offset, and set its code to e; returns e.  d may be NULL.
 */
enum qa_err qa_diag_prefix(struct qa_diag *d, enum qa_err e, const char *prefix);

/* Reset d to "no error".  d may be NULL. */
void qa_diag_clear(struct qa_diag *d);

/* A short static lowercase name for code, e.g. "malformed input". */
const char *qa_err_name(enum qa_err code);

/*
 * The process exit statuses of the quantaudit command, every command:
 * 0 ok, 1 audit finding, 2 usage, 3 malformed or refused input, 4 I/O,
 * network or memory.
 */
enum qa_exit {
	QA_EXIT_OK = 0,
	QA_EXIT_FINDING = 1,
	QA_EXIT_USAGE = 2,
	QA_EXIT_MALFORMED = 3,
	QA_EXIT_IO = 4
};

/*
 * The exit status for code, from the one table in err.c: QA_ERR_USAGE 2;
 * FORMAT, UNSUPPORTED and VALUE 3; IO, NETWORK and NOMEM 4; QA_OK 0 (an
 * unknown value 4).  QA_EXIT_FINDING is never an error: the commands decide it.
 */
int qa_err_exit_code(enum qa_err code);

#endif
