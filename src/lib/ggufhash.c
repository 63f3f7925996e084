/*
 * ggufhash.c - reading llama-gguf-hash's text and verifying against it.
 */
#define _POSIX_C_SOURCE 200809L
#include "ggufhash.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_LINE 8192

bool qa_ggufhash_sniff(const void *buf, size_t len)
{
	const char *p = buf;
	size_t i = 0;
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	return i < len && p[i] != '{' && p[i] != '[';
}

struct line {
	size_t off;          /* where the line starts */
	char type[16];
	const char *hex;     /* borrowed, hex_len bytes */
	size_t hex_len;
	const char *name;    /* borrowed, name_len bytes */
	size_t name_len;
};

/* Split "TYPE<spaces>HEX<two spaces>NAME".  False when the line has another shape. */
static bool split(const char *s, size_t n, struct line *l)
{
	size_t i = 0, t = 0;
	while (i < n && s[i] != ' ')
		i++;
	if (i == 0 || i >= sizeof l->type)
		return false;
	memcpy(l->type, s, i);
	l->type[i] = '\0';
	while (i < n && s[i] == ' ')
		i++;
	t = i;
	while (i < n && s[i] != ' ')
		i++;
	l->hex = s + t;
	l->hex_len = i - t;
	if (i + 2 > n || s[i] != ' ' || s[i + 1] != ' ' || i + 2 == n)
		return false;
	l->name = s + i + 2;
	l->name_len = n - i - 2;
	return l->hex_len > 0;
}

enum qa_err qa_ggufhash_parse(const void *buf, size_t len, struct qa_manifest **out,
                              struct qa_diag *d)
{
	const char *s = buf ? buf : "";
	*out = NULL;
	struct line *lines = NULL;
	size_t n = 0, cap = 0;
	enum qa_err e = QA_OK;
	for (size_t p = 0; p < len;) {
		const char *nl = memchr(s + p, '\n', len - p);
		size_t end = nl ? (size_t)(nl - s) : len, m = end - p;
		if (m && s[p + m - 1] == '\r')
			m--;
		if (m > MAX_LINE) {
			e = qa_diag_set(d, QA_ERR_FORMAT, p, "line longer than %d bytes", MAX_LINE);
			goto fail;
		}
		struct line l;
		memset(&l, 0, sizeof l);
		l.off = p;
		if (m == 0) {
			p = end + 1;
			continue;
		}
		if (!split(s + p, m, &l)) {
			e = qa_diag_set(d, QA_ERR_FORMAT, p, "not a llama-gguf-hash line (TYPE  HEX  NAME)");
			goto fail;
		}
		if (strcmp(l.type, "xxh64") && strcmp(l.type, "sha1") && strcmp(l.type, "uuid") &&
		    strcmp(l.type, "sha256")) {
			e = qa_diag_set(d, QA_ERR_FORMAT, p, "unknown hash type '%s' (xxh64, sha1, sha256 or uuid)", l.type);
			goto fail;
		}
		if (strcmp(l.type, "sha256") == 0) {
			uint8_t check[QA_SHA256_LEN];
			if (l.hex_len != 2 * QA_SHA256_LEN || !qa_hex_decode(l.hex, check, QA_SHA256_LEN, false)) {
				e = qa_diag_set(d, QA_ERR_FORMAT, p, "sha256 is not 64 lowercase hex digits");
				goto fail;
			}
			if (!qa_array_grow((void **)&lines, &cap, n + 1, sizeof *lines)) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				goto fail;
			}
			lines[n++] = l;
		}
		p = end + 1;
	}
	if (n == 0) {
		e = qa_diag_set(d, QA_ERR_FORMAT, 0, "no sha256 line (write it with llama-gguf-hash --sha256)");
		goto fail;
	}
	/* the last sha256 line names the file; every other one FILE:TENSOR */
	const struct line *last = &lines[n - 1];
	struct qa_manifest *m = calloc(1, sizeof *m);
	if (!m || !(m->tensors = calloc(n, sizeof *m->tensors))) {
		free(m);
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto fail;
	}
	*out = m;
	for (size_t i = 0; i < n; i++) {
		const struct line *l = &lines[i];
		uint8_t *dst;
		if (i == n - 1) {
			dst = m->tensor_data_sha256;
			m->has_tensor_data_sha256 = true;
		} else {
			if (l->name_len <= last->name_len + 1 || memcmp(l->name, last->name, last->name_len) != 0 ||
			    l->name[last->name_len] != ':') {
				e = qa_diag_set(d, QA_ERR_FORMAT, l->off, "tensor line does not name the file '%.*s' of the "
				                "closing line", (int)(last->name_len < 80 ? last->name_len : 80), last->name);
				goto fail;
			}
			struct qa_manifest_tensor *t = &m->tensors[m->n];
			size_t k = l->name_len - last->name_len - 1;
			t->name = malloc(k + 1);
			t->type = qa_str_dup("");
			if (!t->name || !t->type) {
				free(t->name);
				free(t->type);
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				goto fail;
			}
			memcpy(t->name, l->name + last->name_len + 1, k);
			t->name[k] = '\0';
			m->n++;
			for (size_t j = 0; j + 1 < m->n; j++)
				if (strcmp(m->tensors[j].name, t->name) == 0) {
					e = qa_diag_set(d, QA_ERR_FORMAT, l->off, "tensor '%.80s' is listed twice", t->name);
					goto fail;
				}
			dst = t->sha256;
		}
		/* checked while the lines were read */
		(void)qa_hex_decode(l->hex, dst, QA_SHA256_LEN, false);
	}
	m->path = malloc(last->name_len + 1);
	m->format = qa_str_dup("gguf-hash");
	if (!m->path || !m->format) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto fail;
	}
	memcpy(m->path, last->name, last->name_len);
	m->path[last->name_len] = '\0';
	free(lines);
	return QA_OK;
fail:
	free(lines);
	qa_manifest_free(*out);
	*out = NULL;
	return e;
}

enum qa_err qa_ggufhash_verify(const struct qa_manifest *got, const struct qa_manifest *want,
                               struct qa_verify *v, struct qa_diag *d)
{
	memset(v, 0, sizeof *v);
	v->metadata_match = true;
	v->file_match = !want->has_tensor_data_sha256 ||
	                (got->has_tensor_data_sha256 &&
	                 memcmp(got->tensor_data_sha256, want->tensor_data_sha256, QA_SHA256_LEN) == 0);
	v->items = calloc(got->n + want->n + 1, sizeof *v->items);
	if (!v->items)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (size_t i = 0; i < want->n; i++) {
		const struct qa_manifest_tensor *w = &want->tensors[i], *g = qa_manifest_find(got, w->name);
		if (g && memcmp(g->sha256, w->sha256, QA_SHA256_LEN) == 0) {
			v->n_tensors_ok++;
			continue;
		}
		v->items[v->n_items++] = (struct qa_verify_item){ g ? QA_VERIFY_MISMATCH : QA_VERIFY_MISSING, w->name,
		                                                  0, 0, UINT64_MAX, false };
	}
	/* --no-layer manifests list no tensor: then only the data digest is claimed */
	for (size_t i = 0; want->n && i < got->n; i++)
		if (!qa_manifest_find(want, got->tensors[i].name))
			v->items[v->n_items++] = (struct qa_verify_item){ QA_VERIFY_EXTRA, got->tensors[i].name,
			                                                  0, 0, UINT64_MAX, false };
	return QA_OK;
}
