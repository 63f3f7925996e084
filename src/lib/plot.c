/*
 * plot.c - the only code that runs gnuplot (see plot.h).
 *
 * gnuplot is spawned without a shell; its standard input is an anonymous
 * temporary file holding the script (a file, not a pipe, so a gnuplot that
 * stops reading early cannot raise SIGPIPE in the caller), its standard
 * output is a temporary file beside the plot (tmpfile.h) that is renamed
 * over the plot on success, and its standard error is another anonymous temporary file
 * whose first line becomes the diagnostic when gnuplot fails.
 */
#define _POSIX_C_SOURCE 200809L
#include "plot.h"

#ifdef HAVE_CONFIG_H
#include "build-config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tmpfile.h"

#ifndef QA_GNUPLOT_DEFAULT
#define QA_GNUPLOT_DEFAULT "gnuplot"
#endif

extern char **environ;

const char *qa_plot_program(void)
{
	const char *p = getenv("QUANTAUDIT_GNUPLOT");
	if (p && *p)
		return p;
	return QA_GNUPLOT_DEFAULT[0] ? QA_GNUPLOT_DEFAULT : "gnuplot";
}

static bool is_exec_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

bool qa_plot_available(void)
{
	const char *prog = qa_plot_program();
	if (strchr(prog, '/'))
		return is_exec_file(prog);
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	size_t plen = strlen(prog);
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t dlen = colon ? (size_t)(colon - path) : strlen(path);
		char buf[4096];
		if (dlen + plen + 2 <= sizeof buf) {
			if (dlen == 0) {
				buf[0] = '.';
				dlen = 1;
			} else {
				memcpy(buf, path, dlen);
			}
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, prog, plen + 1);
			if (is_exec_file(buf))
				return true;
		}
		if (!colon)
			break;
		path = colon + 1;
	}
	return false;
}

bool qa_plot_format_ok(const char *format)
{
	return format && (strcmp(format, "png") == 0 || strcmp(format, "svg") == 0);
}

char *qa_plot_label(const char *s, char *buf, size_t cap)
{
	if (!buf || cap == 0)
		return buf;
	size_t k = 0;
	for (; s && *s && k + 1 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		bool bad = c < 0x20 || c > 0x7e || strchr("\"\\'`@$&", c) != NULL;
		buf[k++] = bad ? '_' : (char)c;
	}
	buf[k] = '\0';
	return buf;
}

/* The terminal settings: fixed sizes and fonts, and no enhanced-text markup
 * (tensor names are full of underscores, which enhanced text would read as
 * subscripts). */
static const char *terminal_for(const char *format)
{
	if (strcmp(format, "png") == 0)
		return "set terminal pngcairo size 900,500 font \",10\" noenhanced\n";
	return "set terminal svg size 900,500 dynamic enhanced font \",10\"\nset termoption noenhanced\n";
}

static bool write_all(FILE *f, const char *s)
{
	size_t n = strlen(s);
	return fwrite(s, 1, n, f) == n;
}

/* First line of what gnuplot wrote to stderr, made printable, into buf. */
static void first_line(FILE *f, char *buf, size_t cap)
{
	char raw[512];
	size_t n = 0;
	buf[0] = '\0';
	if (fseek(f, 0, SEEK_SET) != 0)
		return;
	n = fread(raw, 1, sizeof raw - 1, f);
	raw[n] = '\0';
	/* gnuplot echoes the offending line first and the message after a
	 * caret line; prefer the line that names the problem */
	char *line = raw, *best = NULL;
	while (line && *line) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strstr(line, "line ") || strstr(line, "rror") || strstr(line, "arning")) {
			best = line;
			break;
		}
		if (!best) {
			const char *p = line;
			while (*p == ' ' || *p == '\t' || *p == '^')
				p++;
			if (*p)
				best = line;
		}
		line = nl ? nl + 1 : NULL;
	}
	if (!best)
		return;
	while (*best == ' ' || *best == '\t')
		best++;
	qa_plot_label(best, buf, cap);
}

enum qa_err qa_plot_run(const char *format, const char *script, const char *out_path,
                        bool *ran, struct qa_diag *d)
{
	if (ran)
		*ran = false;
	if (!script || !out_path || !ran || !qa_plot_format_ok(format))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "plot: bad arguments");

	enum qa_err e = QA_OK;
	FILE *in = NULL, *err = NULL;
	struct qa_tmpfile out;
	posix_spawn_file_actions_t fa;
	bool fa_ok = false;

	if ((e = qa_tmpfile_open(&out, out_path, d)))
		return e;

	in = tmpfile();
	err = tmpfile();
	if (!in || !err) {
		e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot create a temporary file: %s",
		                qa_strerror(errno));
		goto done;
	}
	if (!write_all(in, terminal_for(format)) || !write_all(in, "set output\n") ||
	    !write_all(in, script) || !write_all(in, "\nunset output\n") || fflush(in) != 0 ||
	    fseek(in, 0, SEEK_SET) != 0) {
		e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write the plot script: %s",
		                qa_strerror(errno));
		goto done;
	}

	if (posix_spawn_file_actions_init(&fa) != 0) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	fa_ok = true;
	if (posix_spawn_file_actions_adddup2(&fa, fileno(in), 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, out.fd, 1) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, fileno(err), 2) != 0) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}

	const char *prog = qa_plot_program();
	char *argv[] = { (char *)prog, (char *)"-d", NULL };
	pid_t pid;
	int rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
	if (rc == ENOENT || rc == EACCES || rc == ENOTDIR || rc == ENOEXEC) {
		goto done; /* not available: *ran stays false */
	} else if (rc != 0) {
		e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot start %s: %s", prog, qa_strerror(rc));
		goto done;
	}
	int status;
	pid_t w;
	do
		w = waitpid(pid, &status, 0);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "waiting for %s: %s", prog, qa_strerror(errno));
		goto done;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		/* the exec failed in the child: not available */
		goto done;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char why[200];
		first_line(err, why, sizeof why);
		if (WIFSIGNALED(status))
			e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "%s killed by signal %d%s%s", prog,
			                WTERMSIG(status), why[0] ? ": " : "", why);
		else
			e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "%s failed (exit status %d)%s%s", prog,
			                WIFEXITED(status) ? WEXITSTATUS(status) : -1, why[0] ? ": " : "", why);
		goto done;
	}
	struct stat st;
	if (fstat(out.fd, &st) != 0 || st.st_size == 0) {
		char why[200];
		first_line(err, why, sizeof why);
		e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "%s produced no plot%s%s", prog,
		                why[0] ? ": " : "", why);
		goto done;
	}
	if ((e = qa_tmpfile_commit(&out, false, d)))
		goto done;
	*ran = true;
done:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	qa_tmpfile_abort(&out); /* a no-op after the commit */
	if (in)
		fclose(in);
	if (err)
		fclose(err);
	return e;
}
