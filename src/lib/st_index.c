/*
 * st_index.c - opening a safetensors checkpoint by path: a single file, a
 * sharded checkpoint through its model.safetensors.index.json (shards opened
 * one by one, sorted by file name, and cross-checked against the index's
 * weight_map, using jansson objects as hash sets), or a directory holding
 * either.  The header parsing itself is in safetensors.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cursor.h"
#include "json_scan.h"
#include "remote.h"
#include "st_int.h"
#include "util.h"

static enum qa_err open_single(struct qa_st *st, const char *path,
                               bool prefix, struct qa_diag *d)
{
	struct qa_source *src;
	enum qa_err e = qa_source_open_file(&src, path, d);
	if (e)
		return prefix ? qa_diag_prefix(d, e, path) : e;
	if (!qa_st_add_shard(st, path, src, true)) {
		qa_source_close(src);
		return qa_st_nomem(d);
	}
	e = qa_st_parse_shard(st, 0, true, d);
	if (e)
		return prefix ? qa_diag_prefix(d, e, path) : e;
	return QA_OK;
}

static bool valid_shard_name(const char *s)
{
	return s[0] != '\0' && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
	       !strchr(s, '/') && !strchr(s, '\\');
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct index_ctx {
	char *buf;
	size_t len;
	json_t *root;
	json_t *wmap;
	uint64_t *wmap_off; /* key offsets inside weight_map */
	const char **names; /* unique shard names, sorted */
	size_t n_names;
	json_t *seen;       /* tensor name -> shard index */
};

static void index_ctx_free(struct index_ctx *c)
{
	free(c->buf);
	free(c->wmap_off);
	free(c->names);
	json_decref(c->seen);
	json_decref(c->root);
}

static enum qa_err parse_index(struct qa_st *st, struct index_ctx *c,
                               const char *path, struct qa_diag *d)
{
	enum qa_err e = qa_source_slurp(path, QA_ST_MAX_HEADER, "index file", &c->buf, &c->len, d);
	if (e)
		return e;

	json_error_t je;
	c->root = json_loadb(c->buf, c->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!c->root)
		return qa_json_error_diag(d, &je, 0, c->len, "index");
	if (!json_is_object(c->root))
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "index is not a json object");

	size_t start = qa_json_first_nonspace(c->buf, c->len);
	size_t n_top = json_object_size(c->root);
	uint64_t *top = qa_json_key_offsets(c->buf, c->len, start, n_top, 0, 0);
	if (!top)
		return qa_st_nomem(d);
	uint64_t wmap_koff = 0, meta_koff = 0;
	{
		size_t i = 0;
		const char *k;
		json_t *v;
		json_object_foreach(c->root, k, v) {
			if (strcmp(k, "weight_map") == 0)
				wmap_koff = top[i];
			else if (strcmp(k, "metadata") == 0)
				meta_koff = top[i];
			i++;
		}
	}
	free(top);

	json_t *meta = json_object_get(c->root, "metadata");
	if (meta && !json_is_null(meta)) {
		const char *k;
		json_t *v;
		if (!json_is_object(meta))
			return qa_diag_set(d, QA_ERR_FORMAT, meta_koff,
			                   "index metadata is not an object");
		json_object_foreach(meta, k, v) {
			bool ok;
			if (json_is_string(v)) {
				ok = qa_st_add_meta(st, k, json_string_value(v));
			} else {
				char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
				ok = s && qa_st_add_meta(st, k, s);
				free(s);
			}
			if (!ok)
				return qa_st_nomem(d);
		}
	}

	c->wmap = json_object_get(c->root, "weight_map");
	if (!c->wmap)
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "index has no weight_map");
	if (!json_is_object(c->wmap))
		return qa_diag_set(d, QA_ERR_FORMAT, wmap_koff,
		                   "weight_map is not an object");
	size_t n_w = json_object_size(c->wmap);
	if (n_w == 0)
		return qa_diag_set(d, QA_ERR_FORMAT, wmap_koff, "weight_map is empty");
	c->wmap_off = qa_json_key_offsets(c->buf, c->len,
	                          qa_json_value_position(c->buf, c->len, (size_t)wmap_koff),
	                          n_w, 0, wmap_koff);
	if (!c->wmap_off)
		return qa_st_nomem(d);

	/* Collect the unique shard names. */
	json_t *uniq = json_object();
	if (!uniq)
		return qa_st_nomem(d);
	{
		size_t i = 0;
		const char *k;
		json_t *v;
		json_object_foreach(c->wmap, k, v) {
			if (!json_is_string(v)) {
				json_decref(uniq);
				return qa_diag_set(d, QA_ERR_FORMAT, c->wmap_off[i],
				                   "weight_map value is not a string: %s", k);
			}
			const char *s = json_string_value(v);
			if (!valid_shard_name(s)) {
				json_decref(uniq);
				return qa_diag_set(d, QA_ERR_FORMAT, c->wmap_off[i],
				                   "shard name is not a plain file name: \"%.64s\" for %s",
				                   s, k);
			}
			if (json_object_set_new(uniq, s, json_null()) != 0) {
				json_decref(uniq);
				return qa_st_nomem(d);
			}
			i++;
		}
	}
	c->n_names = json_object_size(uniq);
	c->names = malloc(c->n_names * sizeof *c->names);
	if (!c->names) {
		json_decref(uniq);
		return qa_st_nomem(d);
	}
	{
		size_t i = 0;
		const char *k;
		json_t *v;
		json_object_foreach(c->wmap, k, v) {
			const char *s = json_string_value(v);
			json_t *u = json_object_get(uniq, s);
			if (json_is_null(u)) {
				/* point at the string owned by the weight_map value */
				c->names[i++] = s;
				json_object_set_new(uniq, s, json_true());
			}
		}
	}
	json_decref(uniq);
	qsort(c->names, c->n_names, sizeof *c->names, cmp_str);
	return QA_OK;
}

static enum qa_err open_index(struct qa_st *st, const char *index_path,
                              bool prefix_index, struct qa_diag *d)
{
	struct index_ctx c;
	memset(&c, 0, sizeof c);
	enum qa_err e = parse_index(st, &c, index_path, d);
	if (e) {
		index_ctx_free(&c);
		return prefix_index ? qa_diag_prefix(d, e, index_path) : e;
	}
	c.seen = json_object();
	if (!c.seen) {
		index_ctx_free(&c);
		return qa_st_nomem(d);
	}

	for (size_t si = 0; si < c.n_names && !e; si++) {
		char *spath = qa_path_join(st->dir, c.names[si]);
		struct qa_source *src = NULL;
		if (!spath) {
			e = qa_st_nomem(d);
			break;
		}
		e = qa_source_open_file(&src, spath, d);
		if (!e && !qa_st_add_shard(st, spath, src, true)) {
			qa_source_close(src);
			e = qa_st_nomem(d);
		}
		if (!e)
			e = qa_st_parse_shard(st, (uint32_t)si, si == 0, d);
		if (e && e != QA_ERR_NOMEM)
			qa_diag_prefix(d, e, spath);
		free(spath);
	}
	/* Duplicates across shards first, then the weight_map assignment. */
	for (size_t i = 0; !e && i < st->n_entries; i++) {
		const struct qa_st_entry *en = &st->entries[i];
		json_t *prev = json_object_get(c.seen, en->t.name);
		if (prev) {
			e = qa_diag_set(d, QA_ERR_FORMAT, en->key_off,
			                "duplicate tensor across shards (also in %s): %s",
			                c.names[json_integer_value(prev)], en->t.name);
			qa_diag_prefix(d, e, st->shards[en->t.shard].path);
		} else if (json_object_set_new(c.seen, en->t.name,
		                               json_integer((json_int_t)en->t.shard)) != 0) {
			e = qa_st_nomem(d);
		}
	}
	for (size_t i = 0; !e && i < st->n_entries; i++) {
		const struct qa_st_entry *en = &st->entries[i];
		json_t *w = json_object_get(c.wmap, en->t.name);
		if (!w)
			e = qa_diag_set(d, QA_ERR_FORMAT, en->key_off,
			                "tensor not in weight_map: %s", en->t.name);
		else if (strcmp(json_string_value(w), c.names[en->t.shard]) != 0)
			e = qa_diag_set(d, QA_ERR_FORMAT, en->key_off,
			                "weight_map names shard %.64s for tensor %s",
			                json_string_value(w), en->t.name);
		if (e)
			qa_diag_prefix(d, e, st->shards[en->t.shard].path);
	}
	if (!e) {
		const char *k;
		json_t *v;
		json_object_foreach(c.wmap, k, v) {
			if (!json_object_get(c.seen, k)) {
				e = qa_diag_set(d, QA_ERR_FORMAT, qa_json_key_offset(c.wmap, c.wmap_off, json_object_size(c.wmap), k),
				                "tensor in weight_map missing from shard %.64s: %s",
				                json_string_value(v), k);
				if (prefix_index)
					qa_diag_prefix(d, e, index_path);
				break;
			}
		}
	}
	index_ctx_free(&c);
	return e;
}

/* Pick what a directory holds: its index, or its single .safetensors file. */
static enum qa_err open_dir(struct qa_st *st, const char *dir, struct qa_diag *d)
{
	char *p = qa_path_join(dir, QA_ST_INDEX_NAME);
	struct stat sb;
	if (!p)
		return qa_st_nomem(d);
	if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
		enum qa_err e = open_index(st, p, true, d);
		free(p);
		return e;
	}
	free(p);

	DIR *dh = opendir(dir);
	if (!dh)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open directory: %s",
		                   qa_strerror(errno));
	char *index = NULL, *single = NULL;
	size_t n_index = 0, n_single = 0;
	struct dirent *de;
	while ((de = readdir(dh)) != NULL) {
		const char *nm = de->d_name;
		if (nm[0] == '.')
			continue;
		char **slot = NULL;
		if (qa_str_ends_with(nm, ".safetensors.index.json")) {
			n_index++;
			slot = &index;
		} else if (qa_str_ends_with(nm, ".safetensors")) {
			n_single++;
			slot = &single;
		}
		if (slot && !*slot) {
			*slot = qa_path_join(dir, nm);
			if (!*slot) {
				closedir(dh);
				free(index);
				free(single);
				return qa_st_nomem(d);
			}
		}
	}
	closedir(dh);

	enum qa_err e;
	if (n_index > 1)
		e = qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                "directory holds %zu index files", n_index);
	else if (n_index == 1)
		e = open_index(st, index, true, d);
	else if (n_single == 1)
		e = open_single(st, single, true, d);
	else if (n_single == 0)
		e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                "no .safetensors file in directory");
	else
		e = qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                "directory holds %zu .safetensors files but no index",
		                n_single);
	free(index);
	free(single);
	return e;
}

enum qa_err qa_st_open(struct qa_st **out, const char *path, struct qa_diag *d)
{
	struct stat sb;
	enum qa_err e;
	if (!out || !path)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no path given");
	bool remote = qa_remote_is_url(path);
	if (!remote && stat(path, &sb) != 0)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open: %s",
		                   qa_strerror(errno));
	struct qa_st *st = qa_st_new();
	if (!st)
		return qa_st_nomem(d);
	if (!remote && S_ISDIR(sb.st_mode)) {
		st->dir = qa_str_dup(path);
		if (st->dir) {
			/* "dir/" and "dir" name the same checkpoint */
			size_t n = strlen(st->dir);
			while (n > 1 && st->dir[n - 1] == '/')
				st->dir[--n] = '\0';
		}
		e = st->dir ? open_dir(st, st->dir, d) : qa_st_nomem(d);
	} else {
		st->dir = qa_path_dir(path);
		if (!st->dir)
			e = qa_st_nomem(d);
		else if (qa_str_ends_with(path, ".json"))
			e = open_index(st, path, false, d);
		else
			e = open_single(st, path, false, d);
	}
	return qa_st_finish(st, e, out, d);
}
