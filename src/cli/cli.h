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

#include <getopt.h>

#include <jansson.h>

#include "err.h"
#include "policy.h"
#include "report.h"

/* The exit statuses (QA_EXIT_*) and the one error-to-status table are in err.h/err.c. */

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
int cmd_merge(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);

/*
 * Options every command spells the same way.  A command's option table lists
 * the ones it takes with these entries, and cli_getopt handles them; the
 * command's own option codes start at 256 (below CLI_OPT_JSON).
 *
 *   -o, --output FILE   the output file (cli_common.output)
 *   -j, --threads N     worker threads, 1..1024 (cli_common.threads; 0: all cores)
 *       --json          JSON on stdout (cli_common.json)
 *   -h, --help          the command's help on stdout, exit 0
 */
#define CLI_OPT_OUTPUT 'o'
#define CLI_OPT_THREADS 'j'
#define CLI_OPT_HELP 'h'
#define CLI_OPT_JSON 0x1000
#define CLI_OPTION_OUTPUT { "output", required_argument, NULL, CLI_OPT_OUTPUT }
#define CLI_OPTION_THREADS { "threads", required_argument, NULL, CLI_OPT_THREADS }
#define CLI_OPTION_JSON { "json", no_argument, NULL, CLI_OPT_JSON }
#define CLI_OPTION_HELP { "help", no_argument, NULL, CLI_OPT_HELP }
#define CLI_OPTION_END { NULL, 0, NULL, 0 }

/* The parse state of one command line: what the command is, and the values
 * of the common options.  Start it with CLI_COMMON_INIT. */
struct cli_common {
	const char *cmd;        /* "hash" */
	const char *usage;      /* the one-line synopsis */
	void (*help)(void);     /* prints the help text to stdout */
	const char *output;     /* -o: NULL when not given */
	unsigned threads;       /* -j: 0 when not given */
	bool json;              /* --json */
	int status;             /* the exit status when cli_getopt returns CLI_GETOPT_EXIT */
	bool started;           /* getopt's state was reset for this command line */
};
#define CLI_COMMON_INIT(cmd, usage, help) { (cmd), (usage), (help), NULL, 0, false, 0, false }

/* cli_getopt's "stop and exit with co->status" (help shown, or a usage error printed). */
#define CLI_GETOPT_EXIT (-2)

/*
 * getopt_long over argv (argv[0] is the command name), with the common
 * options handled here.  Returns the code of the next option the command
 * handles itself (optarg set as usual), -1 when the options are done
 * (operands start at optind), or CLI_GETOPT_EXIT after --help (status 0) or
 * a usage error: an unknown or incomplete option, a bad -j value (status 2,
 * message and synopsis printed).  Call it until it returns -1 or
 * CLI_GETOPT_EXIT; the first call resets getopt's state.
 */
int cli_getopt(struct cli_common *co, int argc, char **argv, const char *shortopts,
               const struct option *opts);
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

/*
 * Flush stdout: 0, or -1 when it cannot be written (now or before), with the
 * first reason kept for cli_stdout_errno.  main checks stdout once at the
 * end and prints the one line; commands flush only to stop early.
 */
int cli_flush(void);

/* The errno of the first failed flush of stdout, or 0. */
int cli_stdout_errno(void);

/*
 * s (from the command line or a file) escaped for the terminal (escape.h's
 * policy), NUL-terminated in buf and cut with "..." to fit cap; returns buf.
 */
const char *cli_escape(char *buf, size_t cap, const char *s);

/*
 * Check an output path before any work starts, and print the one-line
 * reason when it is refused: an empty path or a path naming the same file
 * as one of the n inputs (same st_dev and st_ino, after symbolic links; a
 * directory input counts with every file directly in it) is a usage error
 * (2); an existing directory, or a directory that will not take a new file,
 * is an I/O error (4).  Returns 0 when out is NULL or usable.
 */
int cli_check_output(const struct cli_common *co, const char *out, const char *const *inputs,
                     size_t n);

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

/* ---------------------------------------------------------------- CI gate (cli_gate.c) */

/* The CI options of diff, verify, shape-swap and merge, and the run's gate. */
struct cli_gate {
	const char *policy_path;   /* --policy FILE */
	const char *junit_path;    /* --junit FILE */
	const char *out_path;      /* -o FILE: JSON there instead of stdout */
	bool github;               /* --github (also implied by GITHUB_ACTIONS=true) */
	struct qa_policy *policy;  /* loaded by cli_gate_load, NULL: the default */
	struct qa_gate gate;       /* filled by the command from its result */
	/* the gate's outcome as the report states it (cli_gate_report_policy) */
	struct qa_report_policy report_policy;
#define CLI_GATE_NAMES 5
	const char *failing_names[CLI_GATE_NAMES];
};

/* Load the policy (if any) and empty the gate; 0, or the exit status after
 * printing the error. */
int cli_gate_load(struct cli_gate *o);
void cli_gate_free(struct cli_gate *o);

/* With a policy, its outcome from o->gate for the report and the verdict
 * paragraph (points into o, valid while o and its gate are); NULL without. */
const struct qa_report_policy *cli_gate_report_policy(struct cli_gate *o);

/* True with --github or when GITHUB_ACTIONS is "true". */
bool cli_gate_github(const struct cli_gate *o);

/* "::group::TITLE" / "::endgroup::" on stdout in GitHub mode, else nothing. */
void cli_gate_group_begin(const struct cli_gate *o, const char *title);
void cli_gate_group_end(const struct cli_gate *o);

/*
 * Write what the options ask for from o->gate: the JUnit file, and in GitHub
 * mode the annotations (stderr), the job summary ($GITHUB_STEP_SUMMARY) and
 * the outputs ($GITHUB_OUTPUT).  verdict, report and note (may be NULL) go
 * into the summary.  Returns 0 or the exit status after printing the error.
 */
int cli_gate_emit(const struct cli_gate *o, const char *command, const char *verdict,
                  const char *report, const char *note);

struct qa_diff_result;
struct qa_report_opts;
/* diff's output stage (cmd_diff.c), shared with merge: judge, report, print, emit. */
int cli_diff_finish(struct qa_diff_result *r, struct cli_gate *g, struct qa_report_opts *ro,
                    bool as_json, int argc, char **argv, const char *note);

struct qa_swap_result;
/* shape-swap's output stage (cmd_shape_swap.c), shared with merge. */
int cli_swap_finish(struct qa_swap_result *const *results, const char *const *names, size_t n,
                    struct cli_gate *g, struct qa_report_opts *ro, bool as_json, int argc, char **argv,
                    const char *note);

struct qa_manifest;
/* hash's output stage (cmd_hash.c), shared with merge: m in format to out or
 * stdout; digests false: the whole-file digests were not computed. */
struct qa_tmpfile;
int cli_hash_finish(const struct qa_manifest *m, const char *format, const char *out, bool digests,
                    struct qa_tmpfile *it, const char *ipath);

struct qa_verify;
/* verify's output stage (cmd_verify.c), shared with merge: print v (the gate
 * already judged it) as text or JSON and emit the gate's outputs; digests
 * false: the file and metadata digests were not computed (null in the JSON,
 * "not computed" in the text). */
int cli_verify_finish(const struct qa_verify *v, bool gguf_hash, bool digests, const char *path, const char *mpath,
                      struct cli_gate *g, bool as_json);

/*
 * Parse --shard's "K/N" (1 <= K <= N <= 256) into *k and *n; false on junk.
 */
bool cli_parse_shard(const char *s, uint32_t *k, uint32_t *n);

/* Write a part (exact doubles) to path atomically, or to stdout; drops the
 * reference; 0 or 4. */
int cli_part_output(json_t *part, const char *path);

/* cli_json_print, or with path set, the same bytes written atomically to
 * path.  Drops the reference.  Returns 0 or 4. */
int cli_json_output(json_t *root, const char *path);

/*
 * Remote inputs (cli_remote.c).  cli_remote_setup removes the network
 * options (--retries, --retry-wait-ms, --cache, --cache-blobs, --offline,
 * --quiet) from a command's argv (argv[0] is the command), configures the
 * remote layer, and expands hf:// repository and QUANT arguments into the
 * files they name.  Returns 0, or the exit status to stop with (2 for misuse
 * or an ambiguous QUANT, listing the candidates; 4 for network errors).
 * cli_remote_json adds the "transfer" object to a --json output (or a
 * shard's part) of a run that read remote inputs; cli_remote_adopt gives it
 * the transfer that merge rebuilt from the parts (a reference is taken), used
 * when the process itself read none.  cli_remote_finish turns a failed
 * integrity check into exit 4 with one line, and releases what setup and
 * adopt hold.
 */
int cli_remote_setup(int *argc, char **argv);
void cli_remote_json(json_t *root);
void cli_remote_adopt(json_t *transfer);
int cli_remote_finish(int rc);
/* ---- llama-quantize's file-changing options (cli_quant.c), shared by
 * quantize and reproduce ---- */
#include "quantize.h"
#include "recipe.h"

#define CLI_QUANT_MAX 64 /* --tensor-type and --override-kv, each */

struct cli_quant_flags {
	struct qa_recipe_overrides ov; /* points into tt */
	struct qa_recipe_tensor_type tt[CLI_QUANT_MAX];
	char *patterns[CLI_QUANT_MAX]; /* owned copies */
	struct qa_kv_override kvo[CLI_QUANT_MAX];
	size_t n_kvo;
	bool any;                      /* some flag was given */
};

enum {
	CLI_QO_PURE = 0x1100, /* above CLI_OPT_JSON */ CLI_QO_OUTPUT_TYPE, CLI_QO_TOKEN_TYPE, CLI_QO_TENSOR_TYPE,
	CLI_QO_LEAVE_OUTPUT, CLI_QO_OVERRIDE_KV
};

/* getopt_long entries for the options above. */
#define CLI_QUANT_LONGOPTS \
	{ "pure", no_argument, NULL, CLI_QO_PURE }, \
	{ "output-tensor-type", required_argument, NULL, CLI_QO_OUTPUT_TYPE }, \
	{ "token-embedding-type", required_argument, NULL, CLI_QO_TOKEN_TYPE }, \
	{ "tensor-type", required_argument, NULL, CLI_QO_TENSOR_TYPE }, \
	{ "leave-output-tensor", no_argument, NULL, CLI_QO_LEAVE_OUTPUT }, \
	{ "override-kv", required_argument, NULL, CLI_QO_OVERRIDE_KV }

/* The help lines describing them. */
extern const char cli_quant_help[];

void cli_quant_init(struct cli_quant_flags *f);
void cli_quant_free(struct cli_quant_flags *f);

/*
 * Handle option c with argument arg: -1 when c is not one of these options,
 * 0 when it was taken, or the exit status 2 after a usage error printed for
 * cmd with usage.
 */
int cli_quant_flag(struct cli_quant_flags *f, int c, const char *arg, const char *cmd,
                   const char *usage);

/* The flags as llama-quantize options, for reports ("" when none); static buffer. */
const char *cli_quant_text(const struct cli_quant_flags *f);

#endif
