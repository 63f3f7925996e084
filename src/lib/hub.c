/*
 * hub.c - hf:// URLs, Hub URLs, tag matching, split names, the token, and
 * the expansion of repository URLs through the tree API.
 */
#define _POSIX_C_SOURCE 200809L
#include "hub.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cache.h"
#include "http.h"
#include "remote.h"
#include "util.h"

#define TREE_MAX ((size_t)64 << 20)

/* Clear secret bytes in a way the compiler keeps. */
static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

static bool id_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* One repo-id segment: [A-Za-z0-9._-]+, not "." or "..". */
static bool valid_segment(const char *s, size_t n)
{
	if (n == 0 || n > 96 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_char(s[i]))
			return false;
	return true;
}

static bool valid_path(const char *p)
{
	if (!*p || *p == '/')
		return false;
	const char *seg = p;
	for (const char *c = p;; c++) {
		if (*c == '/' || *c == '\0') {
			size_t n = (size_t)(c - seg);
			if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return false;
			if (!*c)
				return true;
			seg = c + 1;
		} else if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\') {
			return false;
		}
	}
}

static bool valid_rev(const char *r)
{
	if (!*r)
		return false;
	for (const char *c = r; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '\\' || *c == ':' || *c == '?' ||
		    *c == '#')
			return false;
	return strstr(r, "..") == NULL;
}

enum qa_err qa_hub_parse(const char *uri, struct qa_hub_uri *out, struct qa_diag *d)
{
	memset(out, 0, sizeof *out);
	if (!uri || strncmp(uri, "hf://", 5) != 0)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "not an hf:// url");
	const char *p = uri + 5;
	if (strncmp(p, "datasets/", 9) == 0) {
		out->kind = QA_HUB_DATASET;
		p += 9;
	} else if (strncmp(p, "models/", 7) == 0) {
		p += 7;
	} else if (strncmp(p, "spaces/", 7) == 0 || strncmp(p, "buckets/", 8) == 0 ||
	           strncmp(p, "kernels/", 8) == 0) {
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "only model and dataset repositories hold checkpoints");
	}
	/* ORG/NAME */
	const char *slash = strchr(p, '/');
	if (!slash)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "repository id must be ORG/NAME");
	if (!valid_segment(p, (size_t)(slash - p)))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "bad organisation in repository id");
	const char *name = slash + 1;
	size_t nn = strcspn(name, "@/:");
	if (!valid_segment(name, nn))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "bad name in repository id");
	size_t rl = (size_t)(name + nn - p);
	if (rl >= sizeof out->repo)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "repository id too long");
	memcpy(out->repo, p, rl);
	out->repo[rl] = '\0';
	p = name + nn;
	snprintf(out->rev, sizeof out->rev, "main");
	if (*p == '@') {
		p++;
		size_t n;
		if (strncmp(p, "refs/pr/", 8) == 0) {
			n = 8 + strspn(p + 8, "0123456789");
			if (n == 8)
				return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "refs/pr/ needs a number");
		} else if (strncmp(p, "refs/convert/", 13) == 0) {
			n = 13 + strcspn(p + 13, "/:");
			if (n == 13)
				return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "refs/convert/ needs a name");
		} else {
			n = strcspn(p, "/:");
		}
		if (n == 0 || n >= sizeof out->rev)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "empty or overlong revision");
		memcpy(out->rev, p, n);
		out->rev[n] = '\0';
		if (!valid_rev(out->rev))
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "bad revision");
		out->has_rev = true;
		p += n;
	}
	if (*p == '/') {
		p++;
		if (strlen(p) >= sizeof out->path || !valid_path(p))
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "bad path in hf:// url");
		snprintf(out->path, sizeof out->path, "%s", p);
	} else if (*p == ':') {
		p++;
		size_t n = strlen(p);
		if (n == 0 || n >= sizeof out->quant)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "empty or overlong quantization tag");
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '_' && p[i] != '-' && p[i] != '.')
				return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "bad quantization tag");
		memcpy(out->quant, p, n + 1);
	} else if (*p) {
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "unexpected text in hf:// url");
	}
	return QA_OK;
}

const char *qa_hub_endpoint(void)
{
	static char buf[1024];
	const char *e = getenv("HF_ENDPOINT");
	if (!e || !*e)
		e = "https://huggingface.co";
	snprintf(buf, sizeof buf, "%s", e);
	size_t n = strlen(buf);
	while (n > 0 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return buf;
}

/* Percent-encode s, keeping unreserved characters and those in safe. */
static void quote(char *dst, size_t cap, const char *s, const char *safe)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;
	for (; *s && k + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (c && strchr(safe, c))) {
			dst[k++] = (char)c;
		} else {
			dst[k++] = '%';
			dst[k++] = hex[c >> 4];
			dst[k++] = hex[c & 15];
		}
	}
	dst[k] = '\0';
}

char *qa_hub_resolve_url(const struct qa_hub_uri *u, const char *commit)
{
	char rev[700], path[3100];
	quote(rev, sizeof rev, commit ? commit : u->rev, "");
	quote(path, sizeof path, u->path, "/");
	size_t n = strlen(qa_hub_endpoint()) + strlen(u->repo) + strlen(rev) + strlen(path) + 40;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s/%s%s/resolve/%s/%s", qa_hub_endpoint(),
		         u->kind == QA_HUB_DATASET ? "datasets/" : "", u->repo, rev, path);
	return s;
}

char *qa_hub_tree_url(const struct qa_hub_uri *u)
{
	char rev[700];
	quote(rev, sizeof rev, u->rev, "");
	size_t n = strlen(qa_hub_endpoint()) + strlen(u->repo) + strlen(rev) + 60;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s/api/%s/%s/tree/%s?recursive=true", qa_hub_endpoint(),
		         u->kind == QA_HUB_DATASET ? "datasets" : "models", u->repo, rev);
	return s;
}

void qa_hub_pin_key(const struct qa_hub_uri *u, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s@%s", u->kind == QA_HUB_DATASET ? "datasets/" : "", u->repo, u->rev);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static bool ends_with_ci(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcasecmp(s + a - b, suf) == 0;
}

bool qa_hub_split_name(const char *name, unsigned *no, unsigned *count, size_t *stem_len)
{
	/* STEM-00001-of-00003.gguf: 5 digits, "-of-", 5 digits */
	size_t n = strlen(name);
	static const size_t tail = 1 + 5 + 4 + 5 + 5; /* -NNNNN-of-NNNNN.gguf */
	if (n <= tail || !ends_with_ci(name, ".gguf"))
		return false;
	const char *t = name + n - tail;
	if (t[0] != '-' || strncmp(t + 6, "-of-", 4) != 0)
		return false;
	unsigned a = 0, b = 0;
	for (int i = 0; i < 5; i++) {
		if (!isdigit((unsigned char)t[1 + i]) || !isdigit((unsigned char)t[10 + i]))
			return false;
		a = a * 10 + (unsigned)(t[1 + i] - '0');
		b = b * 10 + (unsigned)(t[10 + i] - '0');
	}
	if (a == 0 || b == 0 || a > b)
		return false;
	*no = a;
	*count = b;
	*stem_len = n - tail;
	return true;
}

static bool contains_ci(const char *s, const char *needle)
{
	size_t n = strlen(needle);
	for (; *s; s++)
		if (strncasecmp(s, needle, n) == 0)
			return true;
	return false;
}

bool qa_hub_quant_matches(const char *name, const char *quant)
{
	const char *b = base_name(name);
	if (!ends_with_ci(b, ".gguf") || strncasecmp(b, "mmproj", 6) == 0 || contains_ci(b, "imatrix"))
		return false;
	unsigned no, count;
	size_t stem;
	if (qa_hub_split_name(b, &no, &count, &stem) && no != 1)
		return false;
	size_t q = strlen(quant);
	if (q == 0)
		return false;
	for (const char *s = b; *s; s++)
		if (strncasecmp(s, quant, q) == 0 && (s[q] == '.' || s[q] == '-'))
			return true;
	return false;
}

static char *read_line_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char buf[4096];
	char *out = NULL;
	if (fgets(buf, sizeof buf, f)) {
		size_t n = strcspn(buf, "\r\n");
		buf[n] = '\0';
		if (n) {
			out = malloc(n + 1);
			if (out)
				memcpy(out, buf, n + 1);
		}
	}
	wipe(buf, sizeof buf);
	fclose(f);
	return out;
}

char *qa_hub_token(void)
{
	const char *t = getenv("HF_TOKEN");
	if (t && *t) {
		size_t n = strlen(t) + 1;
		char *s = malloc(n);
		if (s)
			memcpy(s, t, n);
		return s;
	}
	const char *tp = getenv("HF_TOKEN_PATH");
	if (tp && *tp)
		return read_line_file(tp);
	char path[4096];
	const char *home = getenv("HF_HOME");
	if (home && *home) {
		snprintf(path, sizeof path, "%s/token", home);
	} else {
		const char *xdg = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
		if (xdg && *xdg)
			snprintf(path, sizeof path, "%s/huggingface/token", xdg);
		else if (h && *h)
			snprintf(path, sizeof path, "%s/.cache/huggingface/token", h);
		else
			return NULL;
	}
	return read_line_file(path);
}

/* ---------------------------------------------------------------- expansion */

/* The tree API answer for u: from the network (then cached) or, offline, the cache. */
static enum qa_err tree_get(const struct qa_hub_uri *u, json_t **out, struct qa_diag *d)
{
	char *url = qa_hub_tree_url(u);
	if (!url)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	char *buf = NULL;
	size_t len = 0;
	enum qa_err e = QA_OK;
	struct qa_cache_meta cm;
	if (qa_remote_options()->offline) {
		uint8_t *h = NULL;
		if (!qa_cache_head_load(url, &cm, &h, &len)) {
			e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET,
			                "offline mode: the file list of %s@%s is not cached", u->repo, u->rev);
		} else {
			buf = (char *)h;
			qa_remote_cache_hit(-1);
		}
	} else {
		struct qa_http_meta m;
		memset(&m, 0, sizeof m);
		int slot = qa_remote_input_add(url, NULL);
		e = qa_http_get_all(url, TREE_MAX, slot, &buf, &len, &m, d);
		qa_http_meta_free(&m);
		if (!e) {
			memset(&cm, 0, sizeof cm);
			cm.size = len;
			/* best effort: a listing that cannot be cached is fetched again next time */
			(void)!qa_cache_head_store(url, &cm, buf, len, NULL);
		}
	}
	free(url);
	if (e)
		return e;
	json_error_t je;
	*out = json_loadb(buf, len, 0, &je);
	free(buf);
	if (!*out || !json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		return qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET,
		                   "the Hub's file list for %s is not a json array", u->repo);
	}
	return QA_OK;
}

static char *file_url(const struct qa_hub_uri *u, const char *path)
{
	size_t n = strlen(u->repo) + strlen(u->rev) + strlen(path) + 32;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "hf://%s%s@%s/%s", u->kind == QA_HUB_DATASET ? "datasets/" : "", u->repo,
		         u->rev, path);
	return s;
}

enum qa_err qa_hub_expand(const char *arg, char **out, char **candidates, struct qa_diag *d)
{
	*out = NULL;
	if (candidates)
		*candidates = NULL;
	struct qa_hub_uri u;
	if (strncmp(arg, "hf://", 5) != 0) {
		*out = qa_str_dup(arg);
		return *out ? QA_OK : qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	enum qa_err e = qa_hub_parse(arg, &u, d);
	if (e)
		return e;
	if (u.path[0]) {
		*out = qa_str_dup(arg);
		return *out ? QA_OK : qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	json_t *tree;
	if ((e = tree_get(&u, &tree, d)))
		return e;
	size_t i;
	json_t *it;
	const char *match = NULL;
	size_t n_match = 0;
	bool has_index = false, has_single = false;
	size_t cap = 1, used = 0;
	char *list = calloc(1, cap);
	json_array_foreach(tree, i, it) {
		const char *type = json_string_value(json_object_get(it, "type"));
		const char *path = json_string_value(json_object_get(it, "path"));
		if (!path || (type && strcmp(type, "file") != 0))
			continue;
		if (strcmp(path, "model.safetensors.index.json") == 0)
			has_index = true;
		if (strcmp(path, "model.safetensors") == 0)
			has_single = true;
		if (!u.quant[0] || !ends_with_ci(path, ".gguf"))
			continue;
		if (qa_hub_quant_matches(path, u.quant)) {
			n_match++;
			match = path;
		}
		/* candidates: every GGUF file that could match a tag (no mmproj or
		 * imatrix files, first shards only) */
		unsigned no, count;
		size_t stem;
		const char *bn = base_name(path);
		if ((qa_hub_split_name(bn, &no, &count, &stem) && no != 1) ||
		    strncasecmp(bn, "mmproj", 6) == 0 || contains_ci(bn, "imatrix"))
			continue;
		size_t k = strlen(path);
		if (list && used + k + 2 > cap) {
			while (used + k + 2 > cap)
				cap *= 2;
			char *nl = realloc(list, cap);
			if (!nl) {
				free(list);
				list = NULL;
			} else {
				list = nl;
			}
		}
		if (list) {
			memcpy(list + used, path, k);
			used += k;
			list[used++] = '\n';
			list[used] = '\0';
		}
	}
	if (u.quant[0]) {
		if (n_match == 1) {
			*out = file_url(&u, match);
			e = *out ? QA_OK : qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		} else {
			e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "%s: %s GGUF file matches %s", arg,
			                n_match ? "more than one" : "no", u.quant);
			if (candidates) {
				*candidates = list;
				list = NULL;
			}
		}
	} else if (has_index || has_single) {
		*out = file_url(&u, has_index ? "model.safetensors.index.json" : "model.safetensors");
		e = *out ? QA_OK : qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	} else {
		e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                "%s: no model.safetensors or model.safetensors.index.json in the repository root",
		                arg);
	}
	free(list);
	json_decref(tree);
	return e;
}
