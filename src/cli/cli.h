/*
 * cli.h - what the command implementations share: the command table entry,
 * error reporting in the one-line house style, option-value parsing, and
 * JSON output.
 *
 * Every command is a function "int cmd_NAME(int argc, char **argv)" whose
 * argv[0] is the command name; it returns the process exit status:
 * 0 ok, 1 audit finding, 2 usage, 3 malformed input, 4 I/O or network.
 */
#ifndef QA_CLI_H
#define QA_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define QA_EXIT_OK 0
#define QA_EXIT_FINDING 1
#define QA_EXIT_USAGE 2
#define QA_EXIT_MALFORMED 3
#define QA_EXIT_IO 4

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_inspect(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_hash(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_shape_swap(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_recipe_check(int argc, char **argv);

/*
 * Print d as "quantaudit: FILE: offset N: reason" (without the offset part
 * when none applies) to stderr and return the exit status for d->code.
 */
int cli_fail(const char *file, const struct qa_diag *d);

/*
 * Print "quantaudit CMD: MESSAGE" and the command's usage synopsis to stderr
 * and return 2.
 */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parse a decimal unsigned integer in [min, max]; false on any junk. */
bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parse -j's value: 1..1024 threads. */
bool cli_parse_threads(const char *s, unsigned *out);

/*
 * Write root to stdout as indented JSON followed by a newline, then drop
 * the reference.  Returns 0, or 4 when stdout cannot be written.
 */
int cli_json_print(json_t *root);

/* "896 x 4864": the n dims joined by " x ", truncated to fit cap. */
void cli_shape_text(const uint64_t *dims, uint32_t n, char *buf, size_t cap);

/*
 * Copy s into buf (cap > 0 bytes, always terminated) with every byte that is
 * not printable ASCII, and the backslash, written as \xNN, so that a name
 * read from a file cannot drive the terminal; cut short to fit.
 */
void cli_escape_name(const char *s, char *buf, size_t cap);

struct qa_imatrix;
/*
 * Load the importance matrix at path (--imatrix) into *out.  Returns 0, or
 * prints the error in the house style and returns the exit status.
 */
int cli_imatrix_load(const char *path, struct qa_imatrix **out);

/*
 * Print one "quantaudit: warning: ..." line to stderr per entry of m that
 * names no tensor of the model (has says which names exist), summarised:
 * the count and the first name.  llama-quantize ignores such entries.
 */
void cli_imatrix_warn_unmatched(const char *path, size_t unmatched, const char *first);

/* The version line printed by --version and embedded in reports. */
const char *cli_version_string(void);

#endif
