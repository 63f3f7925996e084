/*
 * json_scan.c - JSON key scanner, load-error messages and the uint64 policy
 * (see json_scan.h).
 */
#include "json_scan.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "strbuf.h"

size_t qa_json_key_positions(const char *buf, size_t len, size_t start,
                                size_t *pos, size_t max)
{
	size_t n = 0, depth = 0;
	bool want_key = false;
	for (size_t i = start; i < len; i++) {
		char c = buf[i];
		if (c == '"') {
			if (depth == 1 && want_key) {
				if (n < max)
					pos[n] = i;
				n++;
				want_key = false;
			}
			for (i++; i < len && buf[i] != '"'; i++)
				if (buf[i] == '\\')
					i++;
		} else if (c == '{' || c == '[') {
			depth++;
			if (depth == 1)
				want_key = true;
		} else if (c == '}' || c == ']') {
			if (depth <= 1)
				break;
			depth--;
		} else if (c == ',' && depth == 1) {
			want_key = true;
		}
	}
	return n;
}

size_t qa_json_value_position(const char *buf, size_t len, size_t kpos)
{
	size_t i = kpos + 1;
	while (i < len && buf[i] != '"') {
		if (buf[i] == '\\')
			i++;
		i++;
	}
	i++;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' ||
	                   buf[i] == '\r' || buf[i] == ':'))
		i++;
	return i;
}

size_t qa_json_first_nonspace(const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' ||
	                   buf[i] == '\r'))
		i++;
	return i;
}

uint64_t *qa_json_key_offsets(const char *buf, size_t len, size_t start,
                             size_t n_keys, uint64_t base, uint64_t fallback)
{
	size_t *pos = malloc((n_keys ? n_keys : 1) * sizeof *pos);
	uint64_t *off = malloc((n_keys ? n_keys : 1) * sizeof *off);
	if (!pos || !off) {
		free(pos);
		free(off);
		return NULL;
	}
	size_t found = 0;
	if (start < len && buf[start] == '{')
		found = qa_json_key_positions(buf, len, start, pos, n_keys);
	for (size_t i = 0; i < n_keys; i++)
		off[i] = (found == n_keys) ? base + pos[i] : fallback;
	free(pos);
	return off;
}

enum qa_err qa_json_error_diag(struct qa_diag *d, const json_error_t *je,
                              uint64_t base, size_t len, const char *what)
{
	uint64_t pos = je->position > 0 ? (uint64_t)je->position : 0;
	if (pos > len)
		pos = len;
	if (json_error_code(je) == json_error_duplicate_key)
		return qa_diag_set(d, QA_ERR_FORMAT, base + pos,
		                   "duplicate key in %s: %s", what, je->text);
	return qa_diag_set(d, QA_ERR_FORMAT, base + pos, "%s is not valid json: %s",
	                   what, je->text);
}

uint64_t qa_json_key_offset(const json_t *obj, const uint64_t *off, size_t n, const char *key)
{
	size_t i = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		if (strcmp(k, key) == 0)
			return i < n && off ? off[i] : 0;
		i++;
	}
	return 0;
}

json_t *qa_json_u64(uint64_t v)
{
	if (v <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v);
	char buf[32];
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
	return json_string(buf);
}

json_t *qa_json_hex(const uint8_t *p, size_t n)
{
	struct qa_sb b = { 0 };
	qa_sb_hex(&b, p, n);
	json_t *v = b.oom ? NULL : json_stringn_nocheck(b.p ? b.p : "", b.len);
	qa_sb_free(&b);
	return v;
}

json_t *qa_json_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *qa_json_text(const char *s, size_t len)
{
	if (qa_utf8_valid(s, len))
		return json_stringn_nocheck(s, len);
	struct qa_sb b = { 0 };
	qa_utf8_sanitize(&b, s, len);
	json_t *v = b.oom ? NULL : json_stringn_nocheck(b.p ? b.p : "", b.len);
	qa_sb_free(&b);
	return v;
}

int qa_json_text_set(json_t *obj, const char *key, const char *s, size_t len)
{
	if (json_object_set_new(obj, key, qa_json_text(s, len)) != 0)
		return -1;
	if (qa_utf8_valid(s, len))
		return 0;
	struct qa_sb k = { 0 }, hex = { 0 };
	qa_sb_puts(&k, key);
	qa_sb_puts(&k, "_hex");
	qa_sb_hex(&hex, (const uint8_t *)s, len);
	int rc = k.oom || hex.oom ? -1 :
	         json_object_set_new(obj, k.p, json_stringn_nocheck(hex.p ? hex.p : "", hex.len));
	qa_sb_free(&k);
	qa_sb_free(&hex);
	return rc;
}
