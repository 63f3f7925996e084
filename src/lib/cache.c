/*
 * cache.c - quantaudit's download cache (heads, refs, blobs) and the
 * read-only huggingface_hub cache lookup.  See cache.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "blockhash.h"
#include "remote.h"
#include "source.h"
#include "tmpfile.h"
#include "util.h"

#define HEAD_FILE_MAX (((size_t)64 << 20) + 4096)

char *qa_cache_dir(void)
{
	const char *o = qa_remote_options()->cache_dir;
	if (o && *o)
		return qa_str_dup(o);
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	if (xdg && *xdg)
		return qa_path_join(xdg, "quantaudit");
	if (home && *home)
		return qa_path_join(home, ".cache/quantaudit");
	return NULL;
}

/* mkdir -p: create dir and its missing parents (errors show up when writing). */
static void make_dirs(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof p)
		return;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++)
		if (p[i] == '/' || p[i] == '\0') {
			char c = p[i];
			p[i] = '\0';
			mkdir(p, 0777);
			p[i] = c;
		}
}

bool qa_cache_is_sha256(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

static bool sha_hex(const void *p, size_t n, char out[65])
{
	uint8_t dg[QA_SHA256_LEN];
	if (qa_sha256(p, n, dg, NULL) != QA_OK)
		return false;
	qa_hex_encode(dg, QA_SHA256_LEN, out);
	return true;
}

/* DIR/sub/<sha256 of name>, creating DIR and DIR/sub when create is set. */
static char *entry_path(const char *sub, const char *name, bool create)
{
	char *dir = qa_cache_dir();
	char hex[65];
	if (!dir || !sha_hex(name, strlen(name), hex)) {
		free(dir);
		return NULL;
	}
	char *sd = qa_path_join(dir, sub);
	if (create && sd)
		make_dirs(sd);
	char *p = sd ? qa_path_join(sd, hex) : NULL;
	free(sd);
	free(dir);
	return p;
}

/* Read a whole small file (at most cap bytes). */
static bool slurp(const char *path, size_t cap, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > cap) {
		close(fd);
		return false;
	}
	size_t n = (size_t)st.st_size, got = 0;
	uint8_t *b = malloc(n + 1);
	while (b && got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!b || got != n) {
		free(b);
		return false;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return true;
}

static enum qa_err write_atomic(const char *path, const void *a, size_t na, const void *b,
                                size_t nb, struct qa_diag *d)
{
	struct qa_tmpfile t;
	memset(&t, 0, sizeof t);
	enum qa_err e = qa_tmpfile_open(&t, path, d);
	if (e)
		return e;
	const void *parts[2] = { a, b };
	size_t lens[2] = { na, nb };
	for (int k = 0; k < 2; k++) {
		const uint8_t *p = parts[k];
		size_t n = lens[k];
		while (n > 0) {
			ssize_t w = write(t.fd, p, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				qa_tmpfile_abort(&t);
				return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write cache entry");
			}
			p += w;
			n -= (size_t)w;
		}
	}
	return qa_tmpfile_commit(&t, false, d);
}

bool qa_cache_head_load(const char *key, struct qa_cache_meta *m, uint8_t **head, size_t *len)
{
	char *path = entry_path("heads", key, false);
	uint8_t *buf;
	size_t n;
	bool ok = false;
	if (!path || !slurp(path, HEAD_FILE_MAX, &buf, &n)) {
		free(path);
		return false;
	}
	free(path);
	uint8_t *nl = memchr(buf, '\n', n);
	json_t *j = NULL;
	if (nl) {
		json_error_t je;
		j = json_loadb((const char *)buf, (size_t)(nl - buf), 0, &je);
	}
	const char *k = json_string_value(json_object_get(j, "key"));
	const char *etag = json_string_value(json_object_get(j, "etag"));
	const char *commit = json_string_value(json_object_get(j, "commit"));
	const char *sum = json_string_value(json_object_get(j, "sha256"));
	json_t *size = json_object_get(j, "size"), *hl = json_object_get(j, "len");
	size_t body = nl ? n - (size_t)(nl + 1 - buf) : 0;
	char hex[65];
	if (k && etag && commit && sum && json_is_integer(size) && json_is_integer(hl) &&
	    strcmp(k, key) == 0 && json_integer_value(size) >= 0 &&
	    (uint64_t)json_integer_value(hl) == body &&
	    (uint64_t)json_integer_value(size) >= body && sha_hex(nl + 1, body, hex) &&
	    strcmp(hex, sum) == 0 && strlen(etag) < sizeof m->etag && strlen(commit) < sizeof m->commit) {
		memset(m, 0, sizeof *m);
		m->size = (uint64_t)json_integer_value(size);
		snprintf(m->etag, sizeof m->etag, "%s", etag);
		snprintf(m->commit, sizeof m->commit, "%s", commit);
		m->linked = json_is_true(json_object_get(j, "linked"));
		uint8_t *h = malloc(body ? body : 1);
		if (h) {
			memcpy(h, nl + 1, body);
			*head = h;
			*len = body;
			ok = true;
		}
	}
	json_decref(j);
	free(buf);
	return ok;
}

enum qa_err qa_cache_head_store(const char *key, const struct qa_cache_meta *m,
                                const void *head, size_t len, struct qa_diag *d)
{
	char hex[65];
	char *path = entry_path("heads", key, true);
	if (!path || !sha_hex(head, len, hex)) {
		free(path);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "no cache directory");
	}
	json_t *j = json_pack("{s:i,s:s,s:I,s:s,s:b,s:s,s:I,s:s}", "v", 1, "key", key,
	                      "size", (json_int_t)m->size, "etag", m->etag, "linked", m->linked,
	                      "commit", m->commit, "len", (json_int_t)len, "sha256", hex);
	char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	enum qa_err e;
	if (!line) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	} else {
		size_t n = strlen(line);
		line[n] = '\n'; /* the NUL is replaced: write n + 1 bytes */
		e = write_atomic(path, line, n + 1, head, len, d);
		free(line);
	}
	free(path);
	return e;
}

void qa_cache_head_remove(const char *key)
{
	char *path = entry_path("heads", key, false);
	if (path)
		unlink(path);
	free(path);
}

bool qa_cache_ref_load(const char *name, char *buf, size_t cap)
{
	char *path = entry_path("refs", name, false);
	uint8_t *b;
	size_t n;
	bool ok = path && slurp(path, cap - 1, &b, &n);
	free(path);
	if (!ok)
		return false;
	memcpy(buf, b, n);
	buf[n] = '\0';
	free(b);
	return n > 0;
}

enum qa_err qa_cache_ref_store(const char *name, const char *value, struct qa_diag *d)
{
	char *path = entry_path("refs", name, true);
	if (!path)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "no cache directory");
	enum qa_err e = write_atomic(path, value, strlen(value), NULL, 0, d);
	free(path);
	return e;
}

static char *blob_path(const char *hex, bool create)
{
	char *dir = qa_cache_dir();
	if (!dir || !qa_cache_is_sha256(hex)) {
		free(dir);
		return NULL;
	}
	char *bd = qa_path_join(dir, "blobs");
	if (create && bd)
		make_dirs(bd);
	char *p = bd ? qa_path_join(bd, hex) : NULL;
	free(bd);
	free(dir);
	return p;
}

char *qa_cache_blob_find(const char *sha256_hex)
{
	char *p = blob_path(sha256_hex, false);
	struct qa_source *src;
	if (!p || qa_source_open_file(&src, p, NULL) != QA_OK) {
		free(p);
		return NULL;
	}
	const void *v;
	char hex[65];
	bool ok = qa_source_view(src, 0, (size_t)qa_source_size(src), &v, "blob", NULL) == QA_OK &&
	          sha_hex(v, (size_t)qa_source_size(src), hex) && strcmp(hex, sha256_hex) == 0;
	qa_source_close(src);
	if (!ok) {
		unlink(p); /* a blob that does not hash to its name is never used */
		free(p);
		return NULL;
	}
	return p;
}

enum qa_err qa_cache_blob_store(const char *sha256_hex, const void *data, uint64_t len,
                                struct qa_diag *d)
{
	char *p = blob_path(sha256_hex, true);
	if (!p)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "no cache directory");
	struct stat st;
	enum qa_err e = QA_OK;
	if (stat(p, &st) != 0 || (uint64_t)st.st_size != len)
		e = write_atomic(p, data, (size_t)len, NULL, 0, d);
	free(p);
	return e;
}

static char *hf_root(void)
{
	const char *v = getenv("HF_HUB_CACHE");
	if (!v || !*v)
		v = getenv("HUGGINGFACE_HUB_CACHE");
	if (v && *v)
		return qa_str_dup(v);
	const char *home = getenv("HF_HOME");
	if (home && *home)
		return qa_path_join(home, "hub");
	const char *xdg = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	if (xdg && *xdg)
		return qa_path_join(xdg, "huggingface/hub");
	if (h && *h)
		return qa_path_join(h, ".cache/huggingface/hub");
	return NULL;
}

static bool is_hex40(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 40;
}

char *qa_cache_hf_lookup(const struct qa_hub_uri *u)
{
	if (!u->path[0])
		return NULL;
	char *root = hf_root();
	if (!root)
		return NULL;
	char folder[512];
	size_t k = (size_t)snprintf(folder, sizeof folder, "%s--", u->kind == QA_HUB_DATASET ? "datasets" : "models");
	for (const char *c = u->repo; *c && k + 3 < sizeof folder; c++) {
		if (*c == '/') {
			folder[k++] = '-';
			folder[k++] = '-';
		} else {
			folder[k++] = *c;
		}
	}
	folder[k] = '\0';
	char commit[64] = "";
	char *repo = qa_path_join(root, folder);
	free(root);
	if (!repo)
		return NULL;
	if (is_hex40(u->rev)) {
		memcpy(commit, u->rev, 41);
	} else {
		char rel[300];
		snprintf(rel, sizeof rel, "refs/%s", u->rev);
		char *rp = qa_path_join(repo, rel);
		uint8_t *b;
		size_t n;
		if (rp && slurp(rp, 200, &b, &n)) {
			size_t m = strcspn((char *)b, "\r\n");
			b[m] = '\0';
			if (is_hex40((char *)b))
				memcpy(commit, b, 41);
			free(b);
		}
		free(rp);
	}
	char *out = NULL;
	if (commit[0]) {
		size_t n = strlen(repo) + strlen(commit) + strlen(u->path) + 16;
		out = malloc(n);
		struct stat st;
		if (out) {
			snprintf(out, n, "%s/snapshots/%s/%s", repo, commit, u->path);
			if (stat(out, &st) != 0 || !S_ISREG(st.st_mode)) {
				free(out);
				out = NULL;
			}
		}
	}
	free(repo);
	return out;
}
