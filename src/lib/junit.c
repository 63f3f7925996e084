/*
 * junit.c - JUnit XML from a gate, written through a temporary file.
 */
#define _POSIX_C_SOURCE 200809L
#include "junit.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "escape.h"
#include "tmpfile.h"

/* s as XML character data or attribute text, under escape.h's XML policy
 * (invalid UTF-8 and bytes XML cannot carry become U+FFFD). */
static void xml_text(FILE *f, const char *str)
{
	struct qa_sb b = { 0 };
	if (str)
		qa_escape_xml(&b, str, strlen(str));
	if (b.len)
		fwrite(b.p, 1, b.len, f);
	qa_sb_free(&b);
}

static void counts_attrs(FILE *f, const size_t *c)
{
	fprintf(f, " tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"0\"",
	        c[QA_ACTION_PASS] + c[QA_ACTION_IGNORE] + c[QA_ACTION_WARN] + c[QA_ACTION_FAIL],
	        c[QA_ACTION_FAIL], c[QA_ACTION_IGNORE]);
}

static void write_xml(const struct qa_gate *g, const char *name, FILE *f)
{
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"", f);
	xml_text(f, name);
	fputc('"', f);
	counts_attrs(f, g->counts);
	fputs(">\n", f);
	for (size_t s = 0; s < g->n_suites; s++) {
		const struct qa_gate_suite *su = &g->suites[s];
		fputs("  <testsuite name=\"", f);
		xml_text(f, su->name && *su->name ? su->name : "quantaudit");
		fputc('"', f);
		counts_attrs(f, su->counts);
		fputs(">\n", f);
		for (size_t i = su->first; i < su->first + su->n; i++) {
			const struct qa_gate_item *it = &g->items[i];
			fputs("    <testcase classname=\"", f);
			xml_text(f, it->cls);
			fputs("\" name=\"", f);
			xml_text(f, it->name && *it->name ? it->name : "?");
			fputs("\" time=\"0\"", f);
			switch (it->action) {
			case QA_ACTION_PASS:
				fputs("/>\n", f);
				break;
			case QA_ACTION_IGNORE:
				fputs(">\n      <skipped message=\"", f);
				xml_text(f, it->detail);
				fputs("\"/>\n    </testcase>\n", f);
				break;
			case QA_ACTION_WARN:
				fputs(">\n      <system-out>warning: ", f);
				xml_text(f, it->detail);
				fputs("</system-out>\n    </testcase>\n", f);
				break;
			case QA_ACTION_FAIL:
				fputs(">\n      <failure message=\"", f);
				xml_text(f, it->detail);
				fputs("\" type=\"", f);
				xml_text(f, it->status);
				fputs("\">", f);
				xml_text(f, it->detail);
				fputs("</failure>\n    </testcase>\n", f);
				break;
			}
		}
		fputs("  </testsuite>\n", f);
	}
	fputs("</testsuites>\n", f);
}

enum qa_err qa_junit_write(const struct qa_gate *g, const char *name, const char *path,
                           struct qa_diag *d)
{
	struct qa_tmpfile t;
	enum qa_err e = qa_tmpfile_open(&t, path, d);
	if (e)
		return e;
	FILE *f = fdopen(t.fd, "w");
	if (!f) {
		qa_tmpfile_abort(&t);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write: %s", qa_strerror(errno));
	}
	t.fd = -1;
	write_xml(g, name, f);
	bool bad = ferror(f) != 0;
	if (fclose(f) != 0 || bad) {
		qa_tmpfile_abort(&t);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write: %s", qa_strerror(errno));
	}
	return qa_tmpfile_commit(&t, false, d);
}
