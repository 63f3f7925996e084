/*
 * github.c - annotations, job summary and step outputs for GitHub Actions.
 *
 * The summary is built in memory (open_memstream) and then appended in one
 * write, cut to what the 1 MiB budget of the step's summary file leaves.
 */
#define _POSIX_C_SOURCE 200809L
#include "github.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockhash.h"
#include "escape.h"
#include "manifest.h"

char *qa_github_escape(const char *s, bool property, char *out, size_t cap)
{
	size_t k = 0, len = s ? strlen(s) : 0;
	if (!cap)
		return out;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		char esc[8] = "";
		uint32_t cp;
		size_t n = 1;
		if (c == '%')
			memcpy(esc, "%25", 4);
		else if (c == '\r')
			memcpy(esc, "%0D", 4);
		else if (c == '\n')
			memcpy(esc, "%0A", 4);
		else if (property && c == ':')
			memcpy(esc, "%3A", 4);
		else if (property && c == ',')
			memcpy(esc, "%2C", 4);
		else if (c == '\\')
			memcpy(esc, "\\\\", 3);
		else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !(n = qa_utf8_decode(s + i, len - i, &cp))))
			snprintf(esc, sizeof esc, "\\x%02x", c); /* the project's \xNN policy (escape.h) */
		n = n ? n : 1;
		const char *o = esc[0] ? esc : s + i;
		size_t on = esc[0] ? strlen(esc) : n;
		if (k + on + 1 > cap)
			break;
		memcpy(out + k, o, on);
		k += on;
		i += esc[0] ? 1 : n;
	}
	out[k] = '\0';
	return out;
}

static bool annotate_one(FILE *f, const char *kind, const char *title, const char *msg)
{
	char t[512], m[2048];
	qa_github_escape(title, true, t, sizeof t);
	qa_github_escape(msg, false, m, sizeof m);
	return fprintf(f, "::%s title=%s::%s\n", kind, t, m) >= 0;
}

enum qa_err qa_github_annotate(const struct qa_gate *g, const char *command, FILE *f,
                               struct qa_diag *d)
{
	static const struct {
		enum qa_action action;
		const char *kind, *what;
	} kinds[2] = { { QA_ACTION_FAIL, "error", "failing" }, { QA_ACTION_WARN, "warning", "warned" } };
	bool ok = true;
	for (int k = 0; k < 2; k++) {
		size_t total = g->counts[kinds[k].action], shown = 0;
		size_t room = total > QA_GITHUB_MAX_ANNOTATIONS ? QA_GITHUB_MAX_ANNOTATIONS - 1 : total;
		for (size_t i = 0; i < g->n && shown < room; i++) {
			const struct qa_gate_item *it = &g->items[i];
			if (it->action != kinds[k].action)
				continue;
			char title[400];
			snprintf(title, sizeof title, "quantaudit %s: %s %s", command, it->status, it->name);
			const char *suite = NULL;
			for (size_t s = 0; g->n_suites > 1 && s < g->n_suites; s++)
				if (i >= g->suites[s].first && i < g->suites[s].first + g->suites[s].n)
					suite = g->suites[s].name;
			char msg[800];
			snprintf(msg, sizeof msg, "%s%s%s: %s", suite ? suite : "", suite ? ": " : "", it->name, it->detail);
			ok = annotate_one(f, kinds[k].kind, title, msg) && ok;
			shown++;
		}
		if (total > shown) {
			char title[128], msg[256];
			snprintf(title, sizeof title, "quantaudit %s: %zu more %s", command, total - shown, kinds[k].what);
			snprintf(msg, sizeof msg, "%zu more %s tensor%s not annotated (GitHub shows %d %ss per step); "
			         "the job summary and the JSON list them all", total - shown, kinds[k].what,
			         total - shown == 1 ? "" : "s", QA_GITHUB_MAX_ANNOTATIONS, kinds[k].kind);
			ok = annotate_one(f, kinds[k].kind, title, msg) && ok;
		}
	}
	if (fflush(f) != 0 || !ok)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write annotations: %s", qa_strerror(errno));
	return QA_OK;
}

/* Markdown text under the report policy (escape.h): control bytes and
 * invalid UTF-8 as \xNN, a backslash as \\, markdown-significant
 * characters backslash-escaped. */
static void md_text(FILE *f, const char *s)
{
	struct qa_sb b = { 0 };
	qa_escape_md_str(&b, s);
	if (b.len)
		fwrite(b.p, 1, b.len, f);
	qa_sb_free(&b);
}

/* A link to a path relative to the summary (paths only make sense inside the
 * workspace, so this is the path as text in a code-free form). */
static void md_path_line(FILE *f, const char *what, const char *path)
{
	if (!path)
		return;
	fprintf(f, "- %s: ", what);
	md_text(f, path);
	fputc('\n', f);
}

struct cls_row {
	const char *cls;
	size_t counts[QA_ACTION_COUNT];
};

static void summary_body(const struct qa_gate *g, const struct qa_github_summary *s, FILE *f)
{
	fprintf(f, "## quantaudit %s: %s\n\n", s->command, g->pass ? "PASS" : "FAIL");
	fprintf(f, "**%s**: %zu tensors, %zu identical, %zu failing, %zu warned, %zu ignored.\n\n",
	        g->pass ? "pass" : "fail", g->tensors, g->identical, g->counts[QA_ACTION_FAIL],
	        g->counts[QA_ACTION_WARN], g->counts[QA_ACTION_IGNORE]);
	if (s->verdict) {
		fputs("> ", f);
		md_text(f, s->verdict);
		fputs("\n\n", f);
	}
	if (s->note) {
		md_text(f, s->note);
		fputs("\n\n", f);
	}
	/* per-class table, classes in order of first appearance */
	struct cls_row *rows = calloc(g->n + 1, sizeof *rows);
	size_t n_rows = 0;
	if (rows) {
		for (size_t i = 0; i < g->n; i++) {
			size_t k = 0;
			while (k < n_rows && strcmp(rows[k].cls, g->items[i].cls) != 0)
				k++;
			if (k == n_rows)
				rows[n_rows++].cls = g->items[i].cls;
			rows[k].counts[g->items[i].action]++;
		}
		fputs("| class | tensors | pass | warn | fail | ignored |\n|---|---:|---:|---:|---:|---:|\n", f);
		for (size_t k = 0; k < n_rows; k++) {
			const size_t *c = rows[k].counts;
			fputs("| ", f);
			md_text(f, rows[k].cls);
			fprintf(f, " | %zu | %zu | %zu | %zu | %zu |\n", c[0] + c[1] + c[2] + c[3], c[QA_ACTION_PASS],
			        c[QA_ACTION_WARN], c[QA_ACTION_FAIL], c[QA_ACTION_IGNORE]);
		}
		fputc('\n', f);
		free(rows);
	}
	for (int pass = 0; pass < 2; pass++) {
		enum qa_action a = pass == 0 ? QA_ACTION_FAIL : QA_ACTION_WARN;
		if (!g->counts[a])
			continue;
		fprintf(f, "### %s tensors (%zu)\n\n| %s | tensor | status | why |\n|---|---|---|---|\n",
		        pass == 0 ? "Failing" : "Warned", g->counts[a], g->n_suites > 1 ? "input" : "class");
		for (size_t si = 0; si < g->n_suites; si++) {
			const struct qa_gate_suite *su = &g->suites[si];
			for (size_t i = su->first; i < su->first + su->n; i++) {
				const struct qa_gate_item *it = &g->items[i];
				if (it->action != a)
					continue;
				fputs("| ", f);
				md_text(f, g->n_suites > 1 ? su->name : it->cls);
				fputs(" | ", f);
				md_text(f, it->name);
				fputs(" | ", f);
				md_text(f, it->status);
				fputs(" | ", f);
				md_text(f, it->detail);
				fputs(" |\n", f);
			}
		}
		fputc('\n', f);
	}
	if (s->report || s->json || s->junit) {
		fputs("### Files\n\n", f);
		md_path_line(f, "report", s->report);
		md_path_line(f, "JSON", s->json);
		md_path_line(f, "JUnit", s->junit);
		fputc('\n', f);
	}
}

static enum qa_err write_all(int fd, const char *p, size_t n, struct qa_diag *d)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write: %s", qa_strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return QA_OK;
}

enum qa_err qa_github_summary_append(const struct qa_gate *g, const struct qa_github_summary *s,
                                     const char *path, struct qa_diag *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	summary_body(g, s, m);
	if (fclose(m) != 0 || !buf) {
		free(buf);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
	if (fd < 0) {
		free(buf);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open: %s", qa_strerror(errno));
	}
	struct stat sb;
	uint64_t have = fstat(fd, &sb) == 0 && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
	static const char cut_fmt[] = "\n**Summary cut**: GitHub keeps at most 1 MiB per step; "
	                              "%zu more lines are in the JSON output and the report.\n";
	char cut[256];
	size_t keep = len;
	uint64_t budget = have + 512 < QA_GITHUB_SUMMARY_MAX ? QA_GITHUB_SUMMARY_MAX - have - 512 : 0;
	if (len > budget) {
		keep = (size_t)budget;
		while (keep > 0 && buf[keep - 1] != '\n')
			keep--;
		size_t dropped = 0;
		for (size_t i = keep; i < len; i++)
			dropped += buf[i] == '\n';
		snprintf(cut, sizeof cut, cut_fmt, dropped);
	}
	enum qa_err e = write_all(fd, buf, keep, d);
	if (!e && keep < len && budget > 0)
		e = write_all(fd, cut, strlen(cut), d);
	free(buf);
	if (close(fd) != 0 && !e)
		e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot close: %s", qa_strerror(errno));
	return e;
}

/* One output: name=value, or the delimiter form when value holds a line
 * break.  The delimiter derives from the value's SHA-256, so it cannot be
 * one of the value's lines (without a preimage of the hash). */
static void output_one(FILE *f, const char *name, const char *value)
{
	if (!strpbrk(value, "\r\n")) {
		fprintf(f, "%s=%s\n", name, value);
		return;
	}
	uint8_t h[QA_SHA256_LEN];
	char hex[65];
	if (qa_sha256(value, strlen(value), h, NULL) != QA_OK)
		memset(h, 0, sizeof h);
	qa_manifest_hex(h, hex);
	fprintf(f, "%s<<ghadelimiter_%s\n%s\nghadelimiter_%s\n", name, hex, value, hex);
}

enum qa_err qa_github_outputs_append(const struct qa_gate *g, const char *report, const char *path,
                                     struct qa_diag *d)
{
	FILE *f = fopen(path, "a");
	if (!f)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open: %s", qa_strerror(errno));
	char num[32];
	output_one(f, "verdict", g->pass ? "pass" : "fail");
	snprintf(num, sizeof num, "%zu", g->tensors);
	output_one(f, "tensors", num);
	snprintf(num, sizeof num, "%zu", g->identical);
	output_one(f, "identical", num);
	snprintf(num, sizeof num, "%zu", g->counts[QA_ACTION_FAIL]);
	output_one(f, "failing", num);
	if (report)
		output_one(f, "report", report);
	bool bad = ferror(f) != 0;
	if (fclose(f) != 0 || bad)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write: %s", qa_strerror(errno));
	return QA_OK;
}
