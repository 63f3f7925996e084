/*
 * testutil.h - helpers shared by the Check suites: locating test data under
 * QA_TOP_SRCDIR and slurping files.
 */
#ifndef QA_TESTUTIL_H
#define QA_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Path of rel under the source tree, in a static buffer (one at a time per slot). */
static inline const char *tu_path(const char *rel)
{
	static char buf[4][1024];
	static int slot;
	const char *top = getenv("QA_TOP_SRCDIR");
	char *b = buf[slot++ & 3];
	snprintf(b, sizeof buf[0], "%s/%s", top && *top ? top : ".", rel);
	return b;
}

/* Read a whole file into a malloc'd buffer; NULL on failure. */
static inline void *tu_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = malloc(n > 0 ? (size_t)n : 1);
	if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	if (p && len)
		*len = (size_t)(n > 0 ? n : 0);
	return p;
}

#endif
