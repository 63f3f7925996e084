/*
 * plot.h - running gnuplot, the one external program quantaudit uses.
 *
 * This module is the only code that starts gnuplot.  The program is the
 * value of the environment variable QUANTAUDIT_GNUPLOT when it is set and
 * not empty, else the path configure found (QA_GNUPLOT_DEFAULT), else
 * "gnuplot" looked up in PATH.  It is started directly (posix_spawnp, no
 * shell) with -d (no initialisation files, so a user's ~/.gnuplot cannot
 * change the output), the script on its standard input and its standard
 * output captured into the plot file, so no data or script file is ever left
 * beside the plot.  The terminal settings are fixed here, which makes plots
 * reproducible byte for byte for the same gnuplot.  A missing gnuplot is not
 * an error: callers are told it did not run and say so in their output.
 */
#ifndef QA_PLOT_H
#define QA_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* The gnuplot program that would be run (static or environment storage; do not free). */
const char *qa_plot_program(void);

/*
 * True when qa_plot_program() names an executable file (a name without a
 * slash is searched in PATH).  A true answer does not promise that the
 * program works; qa_plot_run finds that out.
 */
bool qa_plot_available(void);

/* True for the plot formats this module can produce: "png" and "svg". */
bool qa_plot_format_ok(const char *format);

/*
 * Run gnuplot on script (gnuplot commands, without terminal or output
 * settings: those are prepended here for format "png" (pngcairo, 900x500)
 * or "svg" (900x500, no dates in the file)) and store what it draws at
 * out_path.  The plot is written to a temporary file in out_path's
 * directory and renamed into place only when gnuplot succeeds, so out_path
 * is never left half-written.
 *
 * Returns QA_OK with *ran true when the plot was written, and QA_OK with
 * *ran false when gnuplot is not available (cannot be executed: ENOENT,
 * EACCES, exit status 127) - nothing is written then.  Errors:
 * QA_ERR_USAGE for an unknown format or NULL arguments; QA_ERR_IO when a
 * file cannot be created or gnuplot fails (the message then carries the
 * first line gnuplot wrote to its standard error).  gnuplot's standard
 * error never reaches the caller's.
 */
QA_WARN_UNUSED
enum qa_err qa_plot_run(const char *format, const char *script, const char *out_path,
                        bool *ran, struct qa_diag *d);

/*
 * Copy s into buf (cap bytes, always NUL-terminated when cap > 0) made safe
 * for a double-quoted gnuplot string or a quoted inline-data field: every
 * byte that is not a printable ASCII character, and the characters '"',
 * '\\', '\'', '`', '@', '$' and '&', becomes '_'.  Returns buf.
 */
char *qa_plot_label(const char *s, char *buf, size_t cap);

#endif
