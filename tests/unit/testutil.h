/*
 * testutil.h - helpers shared by the Check suites: locating test data under
 * QA_TOP_SRCDIR and slurping files.
 */
#ifndef QA_TESTUTIL_H
#define QA_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

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
	/* one byte more, a NUL, so that text files can go to string functions */
	char *p = malloc(n > 0 ? (size_t)n + 1 : 1);
	if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	if (p)
		p[n > 0 ? n : 0] = '\0';
	fclose(f);
	if (p && len)
		*len = (size_t)(n > 0 ? n : 0);
	return p;
}

/* Copy the file src to dst with the byte at off XORed with mask (a planted
 * one-byte corruption); 0 on success, -1 when src cannot be read, off is
 * past its end, or dst cannot be written. */
static inline int tu_copy_flipped(const char *src, const char *dst, size_t off, uint8_t mask)
{
	size_t len;
	uint8_t *bytes = tu_slurp(src, &len);
	if (!bytes || off >= len) {
		free(bytes);
		return -1;
	}
	bytes[off] ^= mask;
	FILE *f = fopen(dst, "wb");
	int rc = f && fwrite(bytes, 1, len, f) == len ? 0 : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	free(bytes);
	return rc;
}

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>

/* One tensor for tu_write_st: name, dtype ("F32", "BF16", ...), up to 4 dims, raw bytes. */
struct tu_st_tensor {
	const char *name;
	const char *dtype;
	int n_dims;
	uint64_t shape[4];
	const void *data;
	size_t nbytes;
};

/* Write a safetensors file holding n tensors in order; returns 0 on success. */
static inline int tu_write_st(const char *path, const struct tu_st_tensor *t, int n)
{
	char hdr[8192];
	size_t used = 0, off = 0;
	used += (size_t)snprintf(hdr + used, sizeof hdr - used, "{");
	for (int i = 0; i < n; i++) {
		used += (size_t)snprintf(hdr + used, sizeof hdr - used, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
		                         i ? "," : "", t[i].name, t[i].dtype);
		for (int k = 0; k < t[i].n_dims; k++)
			used += (size_t)snprintf(hdr + used, sizeof hdr - used, "%s%llu", k ? "," : "",
			                         (unsigned long long)t[i].shape[k]);
		used += (size_t)snprintf(hdr + used, sizeof hdr - used, "],\"data_offsets\":[%zu,%zu]}",
		                         off, off + t[i].nbytes);
		off += t[i].nbytes;
	}
	used += (size_t)snprintf(hdr + used, sizeof hdr - used, "}");
	while (used % 8)
		hdr[used++] = ' ';
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	uint8_t len[8];
	for (int k = 0; k < 8; k++)
		len[k] = (uint8_t)((uint64_t)used >> (8 * k));
	fwrite(len, 1, 8, f);
	fwrite(hdr, 1, used, f);
	for (int i = 0; i < n; i++)
		fwrite(t[i].data, 1, t[i].nbytes, f);
	return fclose(f);
}

/* Remove path and, for a directory, everything below it (links are not followed). */
static inline void tu_rm_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char sub[4096];
			int k = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
			if (k > 0 && (size_t)k < sizeof sub)
				tu_rm_tree(sub);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

#define TU_MAX_TMPDIRS 256
static char tu_tmpdirs[TU_MAX_TMPDIRS][32];
static pid_t tu_tmpdir_pid[TU_MAX_TMPDIRS];
static int tu_n_tmpdirs;

/*
 * Remove every directory tu_tmpdir made in this process (registered with
 * atexit).  A forked Check test inherits the handler and the list, so only
 * the directories this very process made are removed: the parent's stay
 * for the tests that follow.
 */
static inline void tu_tmpdir_cleanup(void)
{
	for (int i = 0; i < tu_n_tmpdirs; i++)
		if (tu_tmpdir_pid[i] == getpid())
			tu_rm_tree(tu_tmpdirs[i]);
}

/*
 * A fresh temporary directory, removed with its contents when the process
 * (a Check test runs in a forked child) exits.  Each call gets its own
 * buffer, valid until then; NULL when none can be made.
 */
static inline const char *tu_tmpdir(void)
{
	if (tu_n_tmpdirs >= TU_MAX_TMPDIRS)
		return NULL;
	char *dir = tu_tmpdirs[tu_n_tmpdirs];
	snprintf(dir, sizeof tu_tmpdirs[0], "/tmp/qa-test-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return NULL;
	tu_tmpdir_pid[tu_n_tmpdirs] = getpid();
	if (tu_n_tmpdirs++ == 0)
		atexit(tu_tmpdir_cleanup);
	return dir;
}

#endif
