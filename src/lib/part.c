/*
 * part.c - the partition of a sharded audit, its parts (quantaudit.part/1)
 * and their merge.
 *
 * A part is {"schema", "command", "shard", "shards", "run", "argv",
 * "digests", "header", "audited"}: "header" holds everything the inputs'
 * headers determine (identical in every part of a run; "run" is the SHA-256
 * of its canonical text with the command and the shard count), "audited"
 * the audit figures of the shard's own tensors, "digests" the whole-file
 * digests when the shard computed them.  Doubles are written with 17
 * significant digits, so they read back bit for bit.
 */
#define _POSIX_C_SOURCE 200809L
#include "forensics.h"
#include "part.h"

#include <stdlib.h>
#include <string.h>

#include "blockhash.h"
#include "cursor.h"
#include "manifest.h"
#include "model.h"
#include "gguf.h"
#include "safetensors.h"
#include "source.h"
#include "recipe.h"
#include "reproduce.h"
#include "types.h"
#include "json_scan.h"
#include "pool.h"
#include "util.h"

/* ------------------------------------------------------------------ partition */

bool qa_part_assign(const uint64_t *weights, size_t n, uint32_t n_shards, uint32_t *owner)
{
	if (n_shards < 1 || n_shards > QA_PART_MAX_SHARDS)
		return false;
	size_t *order = malloc((n + 1) * sizeof *order);
	if (!order)
		return false;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	if (!qa_pool_order_by_weight(order, n, weights)) {
		free(order);
		return false;
	}
	uint64_t load[QA_PART_MAX_SHARDS] = { 0 };
	for (size_t k = 0; k < n; k++) {
		uint32_t best = 0;
		uint64_t w = weights[order[k]];
		for (uint32_t s = 1; s < n_shards; s++)
			if (load[s] < load[best])
				best = s;
		owner[order[k]] = best;
		load[best] = load[best] + w < load[best] ? UINT64_MAX : load[best] + w;
	}
	free(order);
	return true;
}

uint64_t qa_part_diff_weight(const struct qa_diff_tensor *t)
{
	uint64_t w = 1;
	for (uint32_t k = 0; k < t->n_dims && k < 4; k++)
		if (!qa_mul_u64(w, t->ne[k], &w))
			return UINT64_MAX;
	return w;
}

/* ------------------------------------------------------------------ writing */

/* The argv without the options that only concern a shard (--shard,
 * --file-digests, -o, --json, -j): what the unsharded run would have been
 * given besides the merge's own options. */
static json_t *argv_json(int argc, char *const *argv)
{
	json_t *a = json_array();
	for (int i = 0; i < argc && argv[i]; i++) {
		const char *s = argv[i];
		if (strcmp(s, "--shard") == 0 || strcmp(s, "-o") == 0 || strcmp(s, "-j") == 0 ||
		    strcmp(s, "--threads") == 0) {
			i++;
			continue;
		}
		if (strncmp(s, "--shard=", 8) == 0 || strcmp(s, "--json") == 0 || strcmp(s, "--file-digests") == 0 ||
		    strncmp(s, "--threads=", 10) == 0 || ((strncmp(s, "-o", 2) == 0 || strncmp(s, "-j", 2) == 0) && s[2]))
			continue;
		json_array_append_new(a, json_string(s));
	}
	return a;
}

/* SHA-256 hex of the canonical text of {command, shards, header}. */
static json_t *run_id(const char *command, uint32_t n, json_t *header)
{
	json_t *o = json_pack("{s:s, s:I, s:O}", "command", command, "shards", (json_int_t)n, "header", header);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) : NULL;
	json_decref(o);
	if (!text)
		return NULL;
	uint8_t h[QA_SHA256_LEN];
	enum qa_err e = qa_sha256(text, strlen(text), h, NULL);
	free(text);
	return e ? NULL : qa_json_hex(h, QA_SHA256_LEN);
}

static json_t *part_frame(const char *command, uint32_t k, uint32_t n, int argc, char *const *argv,
                          json_t *header, json_t *digests, json_t *audited)
{
	json_t *p = json_object();
	json_object_set_new(p, "schema", json_string(QA_PART_SCHEMA));
	json_object_set_new(p, "command", json_string(command));
	json_object_set_new(p, "shard", json_integer(k));
	json_object_set_new(p, "shards", json_integer(n));
	json_object_set_new(p, "run", run_id(command, n, header));
	json_object_set_new(p, "argv", argv_json(argc, argv));
	json_object_set_new(p, "digests", digests);
	json_object_set_new(p, "header", header);
	json_object_set_new(p, "audited", audited);
	return p;
}

/* A tensor's errors under each layout tried (exact doubles), or null. */
static json_t *layout_errors_json(const struct qa_diff_tensor *t)
{
	if (!t->has_layout_errors)
		return json_null();
	json_t *tried = json_array(), *rmse = json_array(), *noise = json_array();
	for (int l = 0; l < QA_FX_LAYOUTS; l++) {
		const struct qa_layout_errors *e = &t->layout_errors;
		json_array_append_new(tried, json_boolean(e->tried[l]));
		json_array_append_new(rmse, json_real(e->tried[l] ? e->rmse[l] : 0));
		json_array_append_new(noise, json_real(e->tried[l] ? e->noise[l] : 0));
	}
	return json_pack("{s:o, s:o, s:o}", "tried", tried, "rmse", rmse, "noise", noise);
}

/* The metadata audit's pairs, every field. */
static json_t *metadata_json(const struct qa_diff_result *r)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->n_metadata; i++) {
		const struct qa_reproduce_kv *k = &r->metadata[i];
		json_array_append_new(a, json_pack("{s:s, s:I, s:o, s:o, s:I, s:I, s:o, s:b}", "key", k->key, "kind",
		                                   (json_int_t)k->kind, "expected", qa_json_str_or_null(k->expected), "actual",
		                                   qa_json_str_or_null(k->actual), "expected_index", (json_int_t)k->expected_index,
		                                   "actual_index", (json_int_t)k->actual_index, "actual_offset",
		                                   k->actual_offset == QA_NO_OFFSET ? json_null() : qa_json_u64(k->actual_offset),
		                                   "finding", k->finding));
	}
	return a;
}

json_t *qa_part_diff_to_json(const struct qa_diff_result *r, uint32_t k, uint32_t n, int argc,
                             char *const *argv)
{
	json_t *h = json_object(), *ts = json_array(), *aud = json_array(), *dg = json_object();
	json_object_set_new(h, "reference_path", qa_json_str_or_null(r->reference_path));
	json_object_set_new(h, "artifact_path", qa_json_str_or_null(r->artifact_path));
	json_object_set_new(h, "reference_size", qa_json_u64(r->reference_size));
	json_object_set_new(h, "artifact_size", qa_json_u64(r->artifact_size));
	json_object_set_new(h, "file_type", r->has_file_type ? qa_json_u64(r->file_type) : json_null());
	json_object_set_new(h, "arch", json_string(r->arch));
	json_object_set_new(h, "recipe_matches", json_boolean(r->recipe_matches));
	json_object_set_new(h, "recipe_deviations", qa_json_u64(r->recipe_deviations));
	json_object_set_new(h, "recipe", json_boolean(r->recipe_name != NULL));
	json_object_set_new(h, "pure_type", qa_json_u64(r->pure_type));
	json_object_set_new(h, "pure_matches", json_boolean(r->pure_matches));
	const struct qa_diff_imatrix_keys *ik = &r->declared_imatrix;
	json_object_set_new(h, "declared_imatrix",
	                    ik->declared ? json_pack("{s:o, s:o, s:o, s:o}", "file", qa_json_str_or_null(ik->file), "dataset",
	                                             qa_json_str_or_null(ik->dataset),
	                                             "entries", ik->has_entries ? qa_json_u64(ik->entries) : json_null(),
	                                             "chunks", ik->has_chunks ? qa_json_u64(ik->chunks) : json_null())
	                                 : json_null());
	json_object_set_new(h, "metadata", r->metadata_audited ? metadata_json(r) : json_null());
	const struct qa_diff_imatrix_given *ig = &r->imatrix;
	json_object_set_new(h, "imatrix",
	                    ig->given ? json_pack("{s:o, s:I, s:o, s:o, s:I, s:o, s:b, s:b, s:o, s:o, s:o}", "path",
	                                          qa_json_str_or_null(ig->path), "format", (json_int_t)ig->format, "dataset",
	                                          qa_json_str_or_null(ig->dataset), "entries", qa_json_u64(ig->entries), "chunks",
	                                          (json_int_t)ig->chunks, "sha256", qa_json_hex(ig->sha256, QA_SHA256_LEN),
	                                          "dataset_differs", ig->dataset_differs, "entries_differ",
	                                          ig->entries_differ, "unmatched", qa_json_u64(ig->unmatched),
	                                          "first_unmatched", qa_json_str_or_null(ig->first_unmatched), "weighted_tensors",
	                                          qa_json_u64(ig->weighted_tensors))
	                              : json_null());
	const struct qa_recipe_cmp *rc = r->recipe_cmp;
	json_t *crn = rc ? json_array() : json_null();
	for (size_t q = 0; rc && q < rc->n_recipes; q++)
		json_array_append_new(crn, json_string(qa_recipe_name(rc->recipes[q])));
	json_object_set_new(h, "compare_recipes", crn);
	uint64_t *w = calloc(r->n + 1, sizeof *w);
	uint32_t *owner = calloc(r->n + 1, sizeof *owner);
	bool ok = w && owner;
	for (size_t i = 0; ok && i < r->n; i++)
		w[i] = qa_part_diff_weight(&r->tensors[i]);
	ok = ok && qa_part_assign(w, r->n, n, owner);
	for (size_t i = 0; ok && i < r->n; i++) {
		const struct qa_diff_tensor *t = &r->tensors[i];
		json_t *ne = json_array();
		for (int q = 0; q < 4; q++)
			json_array_append_new(ne, qa_json_u64(t->ne[q]));
		json_array_append_new(ts, json_pack("{s:s, s:o, s:I, s:I, s:o, s:o, s:o, s:I, s:b, s:b, s:I, s:s, s:b}",
		                                    "name", t->name, "reference_name", qa_json_str_or_null(t->reference_name),
		                                    "type", (json_int_t)t->type, "n_dims", (json_int_t)t->n_dims,
		                                    "ne", ne, "blocks", qa_json_u64(t->blocks), "nbytes", qa_json_u64(t->nbytes),
		                                    "layer", (json_int_t)t->layer, "quantized", t->quantized,
		                                    "in_plan", t->in_plan, "recipe_type", (json_int_t)t->recipe_type,
		                                    "rule", t->rule, "missing", t->verdict == QA_VERDICT_MISSING));
		if (owner[i] != k - 1)
			continue;
		json_t *a = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:b, s:f, s:f, s:f, s:f, s:b, s:o}", "index",
		                      (json_int_t)i, "verdict", (json_int_t)t->verdict, "layout", (json_int_t)t->layout,
		                      "evidence", (json_int_t)t->evidence, "divergent_blocks", qa_json_u64(t->divergent_blocks),
		                      "first_divergent", qa_json_u64(t->first_divergent), "has_error", t->has_error,
		                      "rmse", t->rmse, "max_abs", t->max_abs, "requant_rmse", t->requant_rmse,
		                      "requant_max_abs", t->requant_max_abs, "weighted", t->weighted,
		                      "layout_errors", layout_errors_json(t));
		if (a && t->n_experts) { /* per-expert layouts of a 3-D expert tensor (compare.h) */
			json_t *ex = json_array();
			for (uint32_t x = 0; x < t->n_experts; x++)
				json_array_append_new(ex, json_integer(t->expert_layout[x]));
			json_object_set_new(a, "expert_layouts", ex);
		}
		json_t *cm = json_null();
		if (rc && i < rc->n_tensors && rc->measured[i]) {
			json_t *sq = json_array(), *bits = json_array();
			for (size_t q = 0; q < rc->n_recipes; q++) {
				json_array_append_new(sq, json_real(rc->sq[i * QA_FX_MAX_RECIPES + q]));
				json_array_append_new(bits, json_real(rc->bits[i * QA_FX_MAX_RECIPES + q]));
			}
			cm = json_pack("{s:o, s:o, s:o}", "n_elems", qa_json_u64(rc->n_elems[i]), "sq", sq, "bits", bits);
		}
		if (a)
			json_object_set_new(a, "recipe_cmp", cm);
		else
			json_decref(cm);
		if (a && t->divergence)
			json_object_set_new(a, "divergence", qa_json_hex(t->divergence, (size_t)(t->blocks / 8 + 1)));
		json_array_append_new(aud, a);
	}
	free(w);
	free(owner);
	json_object_set_new(h, "tensors", ts);
	json_object_set_new(dg, "reference", r->no_digests || !r->reference_size ? json_null() : qa_json_hex(r->reference_sha256, QA_SHA256_LEN));
	json_object_set_new(dg, "artifact", r->no_digests ? json_null() : qa_json_hex(r->artifact_sha256, QA_SHA256_LEN));
	if (!ok) {
		json_decref(h);
		json_decref(aud);
		json_decref(dg);
		return NULL;
	}
	return part_frame("diff", k, n, argc, argv, h, dg, aud);
}

json_t *qa_part_swap_to_json(struct qa_swap_result *const *results, const char *const *labels,
                             size_t n_models, uint32_t k, uint32_t n, int argc, char *const *argv)
{
	json_t *h = json_object(), *models = json_array(), *aud = json_array(), *dg = json_array();
	bool ok = true;
	for (size_t m = 0; m < n_models && ok; m++) {
		const struct qa_swap_result *r = results[m];
		json_t *mo = json_object(), *ts = json_array();
		json_object_set_new(mo, "label", json_string(labels[m]));
		json_object_set_new(mo, "reference_path", qa_json_str_or_null(r->reference_path));
		json_object_set_new(mo, "reference_size", qa_json_u64(r->reference_size));
		json_object_set_new(mo, "type", json_integer(r->type));
		json_object_set_new(mo, "block_elems", json_integer(r->block_elems));
		json_object_set_new(mo, "arch", json_string(r->arch));
		uint64_t *w = calloc(r->n + 1, sizeof *w);
		uint32_t *owner = calloc(r->n + 1, sizeof *owner);
		ok = w && owner;
		for (size_t i = 0; ok && i < r->n; i++)
			w[i] = r->tensors[i].in * r->tensors[i].out * r->tensors[i].experts;
		ok = ok && qa_part_assign(w, r->n, n, owner);
		for (size_t i = 0; ok && i < r->n; i++) {
			const struct qa_swap_tensor *t = &r->tensors[i];
			json_t *rec = json_pack("{s:s, s:o, s:o, s:I, s:[o,o], s:[o,o], s:b}", "name", t->name,
			                        "in", qa_json_u64(t->in), "out", qa_json_u64(t->out), "layer", (json_int_t)t->layer,
			                        "blocks", qa_json_u64(t->blocks[0]), qa_json_u64(t->blocks[1]),
			                        "bytes", qa_json_u64(t->bytes[0]), qa_json_u64(t->bytes[1]),
			                        "predicted_identical", t->predicted_identical);
			if (rec && t->experts > 1) /* a 3-D expert tensor, swapped slice by slice */
				json_object_set_new(rec, "experts", qa_json_u64(t->experts));
			json_array_append_new(ts, rec);
			if (owner[i] == k - 1) {
				json_t *au = json_pack("{s:I, s:I, s:b, s:o, s:o}", "model", (json_int_t)m,
				                       "index", (json_int_t)i, "identical", t->identical,
				                       "divergent_blocks", qa_json_u64(t->divergent_blocks),
				                       "first_divergent", qa_json_u64(t->first_divergent));
				if (au && t->experts > 1)
					json_object_set_new(au, "divergent_experts", qa_json_u64(t->divergent_experts));
				json_array_append_new(aud, au);
			}
		}
		free(w);
		free(owner);
		json_object_set_new(mo, "tensors", ts);
		json_array_append_new(models, mo);
		json_array_append_new(dg, r->no_digests || !r->reference_size ? json_null() : qa_json_hex(r->reference_sha256, QA_SHA256_LEN));
	}
	json_object_set_new(h, "models", models);
	if (!ok) {
		json_decref(h);
		json_decref(aud);
		json_decref(dg);
		return NULL;
	}
	return part_frame("shape-swap", k, n, argc, argv, h, dg, aud);
}

/* ------------------------------------------------------------------ hash parts */

/* The header's tensor table and the audited digests of a hash part. */
static json_t *hash_tensor_json(const struct qa_manifest_tensor *t)
{
	json_t *sh = json_array();
	for (uint32_t q = 0; q < t->n_dims && q < 8; q++)
		json_array_append_new(sh, qa_json_u64(t->shape[q]));
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "name", t->name, "type", t->type, "shape", sh,
	                 "offset", qa_json_u64(t->offset), "nbytes", qa_json_u64(t->nbytes), "blocks", qa_json_u64(t->n_blocks),
	                 "block_bytes", qa_json_u64(t->block_bytes));
}

enum qa_err qa_part_hash(const char *path, uint32_t k, uint32_t n, bool keep_blocks, bool file_digests,
                         bool data_digest, const char *format, int argc, char *const *argv, json_t **out,
                         struct qa_diag *d)
{
	enum qa_format fmt;
	struct qa_source *src = NULL;
	struct qa_gguf *g = NULL;
	struct qa_st *st = NULL;
	struct qa_blockhasher *bh = NULL;
	struct qa_sha256_stream *ds = NULL;
	uint64_t *w = NULL;
	uint32_t *owner = NULL;
	json_t *h = json_object(), *ts = json_array(), *aud = json_array(), *dg = json_object();
	enum qa_err e = qa_format_detect(path, &fmt, d);
	if (e)
		goto done;
	size_t nt;
	uint64_t data_offset;
	if (fmt == QA_FORMAT_GGUF) {
		if ((e = qa_source_open_file(&src, path, d)) || (e = qa_gguf_open(&g, src, d)))
			goto done;
		nt = qa_gguf_n_tensors(g);
		data_offset = qa_gguf_data_offset(g);
	} else {
		if ((e = qa_st_open(&st, path, d)))
			goto done;
		if (qa_st_n_shards(st) != 1) {
			e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "a sharded checkpoint has %zu files: hash each shard on its own",
			                qa_st_n_shards(st));
			goto done;
		}
		nt = qa_st_n_tensors(st);
		data_offset = qa_st_header_len(st, 0);
	}
	struct qa_source *fsrc = g ? src : qa_st_shard_source(st, 0);
	w = calloc(nt + 1, sizeof *w);
	owner = calloc(nt + 1, sizeof *owner);
	bh = qa_blockhasher_init();
	if (!w || !owner || !bh || !h || !ts || !aud || !dg) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	/* the table, as the manifest records it */
	struct qa_manifest_tensor *mt = calloc(nt + 1, sizeof *mt);
	const void **views = calloc(nt + 1, sizeof *views);
	if (!mt || !views) {
		free(mt);
		free(views);
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nt && !e; i++) {
		struct qa_manifest_tensor *t = &mt[i];
		if (g) {
			const struct qa_gguf_tensor *s = qa_gguf_tensor_at(g, i);
			const struct qa_type_info *ti = qa_type_get(s->type);
			t->name = (char *)s->name;
			t->type = (char *)ti->name;
			t->n_dims = s->n_dims;
			memcpy(t->shape, s->ne, sizeof s->ne);
			t->offset = s->offset;
			t->nbytes = s->nbytes;
			t->block_bytes = qa_blockhash_block_bytes(ti);
			e = qa_gguf_tensor_view(g, s, &views[i], d);
		} else {
			const struct qa_st_tensor *s = qa_st_tensor_at(st, i);
			int es = qa_st_dtype_size(s->dtype);
			t->name = (char *)s->name;
			t->type = (char *)s->dtype;
			t->n_dims = s->n_dims;
			memcpy(t->shape, s->shape, sizeof t->shape);
			t->offset = s->begin;
			t->nbytes = s->end - s->begin;
			t->block_bytes = (uint64_t)(es > 0 ? es : 1) * QA_HASH_BLOCK_ELEMS;
			e = qa_st_tensor_view(st, s, &views[i], d);
		}
		t->n_blocks = qa_blockhash_n_blocks(t->nbytes, t->block_bytes);
		w[i] = t->nbytes;
	}
	if (!e && !qa_part_assign(w, nt, n, owner))
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (size_t i = 0; i < nt && !e; i++) {
		struct qa_manifest_tensor *t = &mt[i];
		json_array_append_new(ts, hash_tensor_json(t));
		if (owner[i] != k - 1)
			continue;
		uint8_t *blocks = malloc(t->n_blocks ? (size_t)t->n_blocks * QA_SHA256_LEN : 1);
		if (!blocks) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			break;
		}
		if ((e = qa_blockhasher_whole(bh, views[i], (size_t)t->nbytes, t->sha256)) ||
		    (e = qa_blockhasher_blocks(bh, views[i], t->nbytes, t->block_bytes, 0, t->n_blocks, blocks)) ||
		    (e = qa_blockhasher_merkle(bh, blocks, t->n_blocks, t->merkle))) {
			free(blocks);
			e = qa_diag_set(d, e, QA_NO_OFFSET, "hashing tensor %zu failed", i);
			break;
		}
		json_t *a = json_pack("{s:I, s:o, s:o}", "index", (json_int_t)i, "sha256", qa_json_hex(t->sha256, QA_SHA256_LEN),
		                      "merkle_root", qa_json_hex(t->merkle, QA_SHA256_LEN));
		if (a && keep_blocks)
			json_object_set_new(a, "block_sha256", qa_json_hex(blocks, (size_t)t->n_blocks * QA_SHA256_LEN));
		free(blocks);
		json_array_append_new(aud, a);
	}
	/* whole-file digests: only when asked, each streaming every byte once */
	uint64_t size = qa_source_size(fsrc);
	if (!e && file_digests) {
		const void *file;
		uint8_t fh[QA_SHA256_LEN], mh[QA_SHA256_LEN];
		if (!(e = qa_source_view(fsrc, 0, (size_t)size, &file, "file", d)) &&
		    !(e = qa_sha256(file, (size_t)size, fh, d)) &&
		    !(e = qa_sha256(file, (size_t)data_offset, mh, d))) {
			json_object_set_new(dg, "file", qa_json_hex(fh, QA_SHA256_LEN));
			json_object_set_new(dg, "metadata", qa_json_hex(mh, QA_SHA256_LEN));
		}
		if (!e && data_digest) {
			if (!(ds = qa_sha256_stream_init())) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			} else {
				for (size_t i = 0; i < nt; i++)
					qa_sha256_stream_update(ds, views[i], (size_t)mt[i].nbytes);
				uint8_t th[QA_SHA256_LEN];
				if ((e = qa_sha256_stream_final(ds, th)))
					e = qa_diag_set(d, e, QA_NO_OFFSET, "hashing the tensor data failed");
				else
					json_object_set_new(dg, "tensor_data", qa_json_hex(th, QA_SHA256_LEN));
			}
		}
	}
	free(mt);
	free(views);
	if (e)
		goto done;
	json_object_set_new(h, "path", json_string(path));
	json_object_set_new(h, "format", json_string(g ? "gguf" : "safetensors"));
	json_object_set_new(h, "size", qa_json_u64(size));
	json_object_set_new(h, "blocks", json_boolean(keep_blocks));
	json_object_set_new(h, "data_digest", json_boolean(data_digest));
	json_object_set_new(h, "print", json_string(format));
	json_object_set_new(h, "tensors", ts);
	ts = NULL;
	*out = part_frame("hash", k, n, argc, argv, h, dg, aud);
	h = dg = aud = NULL;
	if (!*out)
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
done:
	json_decref(h);
	json_decref(ts);
	json_decref(aud);
	json_decref(dg);
	qa_sha256_stream_free(ds);
	qa_blockhasher_free(bh);
	free(w);
	free(owner);
	qa_gguf_close(g);
	qa_source_close(src);
	qa_st_close(st);
	return e;
}

/* ------------------------------------------------------------------ reading */

struct rd {
	struct qa_diag *d;
	enum qa_err e;
	const char *where;   /* the object being read, for messages */
};

static bool fail(struct rd *r, const char *fmt, const char *field)
{
	if (!r->e)
		r->e = qa_diag_set(r->d, QA_ERR_FORMAT, 0, fmt, r->where, field);
	return false;
}

static json_t *need(struct rd *r, const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		fail(r, "malformed part: %s lacks \"%s\"", key);
	return v;
}

static uint64_t get_u64(struct rd *r, const json_t *o, const char *key, uint64_t max)
{
	json_t *v = need(r, o, key);
	if (!v)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0 && (uint64_t)json_integer_value(v) <= max)
		return (uint64_t)json_integer_value(v);
	if (json_is_string(v)) {  /* qa_json_u64 writes values past INT64_MAX as decimal strings */
		const char *s = json_string_value(v);
		char *end;
		unsigned long long x = strtoull(s, &end, 10);
		if (*s >= '0' && *s <= '9' && !*end && x <= max)
			return (uint64_t)x;
	}
	fail(r, "malformed part: %s: \"%s\" is not an integer in range", key);
	return 0;
}

static int64_t get_int(struct rd *r, const json_t *o, const char *key, int64_t lo, int64_t hi)
{
	json_t *v = need(r, o, key);
	if (v && json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi)
		return json_integer_value(v);
	if (v)
		fail(r, "malformed part: %s: \"%s\" is not an integer in range", key);
	return lo;
}

static bool get_bool(struct rd *r, const json_t *o, const char *key)
{
	json_t *v = need(r, o, key);
	if (v && !json_is_boolean(v))
		fail(r, "malformed part: %s: \"%s\" is not a boolean", key);
	return v && json_is_true(v);
}

static double get_real(struct rd *r, const json_t *o, const char *key)
{
	json_t *v = need(r, o, key);
	if (v && !json_is_number(v))
		fail(r, "malformed part: %s: \"%s\" is not a number", key);
	return v ? json_number_value(v) : 0;
}

/* A string (copied, NULL for JSON null when nullable). */
static char *get_str(struct rd *r, const json_t *o, const char *key, bool nullable)
{
	json_t *v = need(r, o, key);
	if (!v)
		return NULL;
	if (nullable && json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		fail(r, "malformed part: %s: \"%s\" is not a string", key);
		return NULL;
	}
	char *s = qa_str_dup(json_string_value(v));
	if (!s && !r->e)
		r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	return s;
}

static bool get_hex(struct rd *r, const json_t *v, uint8_t *out, size_t n)
{
	const char *s = json_string_value(v);
	if (!s || strlen(s) != 2 * n)
		return fail(r, "malformed part: %s: \"%s\" is not a hex digest", "digests");
	if (!qa_hex_decode(s, out, n, false))
		return fail(r, "malformed part: %s: \"%s\" is not lowercase hex", "digests");
	return true;
}

static json_t *need_array(struct rd *r, const json_t *o, const char *key)
{
	json_t *v = need(r, o, key);
	if (v && !json_is_array(v)) {
		fail(r, "malformed part: %s: \"%s\" is not an array", key);
		return NULL;
	}
	return v;
}

/* The string field key of o copied into buf (cap bytes, NUL included);
 * r fails when it is not a string shorter than cap. */
static void get_short_str(struct rd *r, const json_t *o, const char *key, char *buf, size_t cap)
{
	json_t *v = need(r, o, key);
	const char *s = json_string_value(v);
	if (s && strlen(s) < cap)
		memcpy(buf, s, strlen(s) + 1);
	else if (v)
		fail(r, "malformed part: %s: \"%s\" is not a short string", key);
}

/* The array field key of o (into *arr, *n its length) and a zeroed table
 * of n + 1 elements of elem bytes for it; NULL (r failed) when out of
 * memory.  The caller frees the table. */
static void *get_table(struct rd *r, const json_t *o, const char *key, size_t elem, json_t **arr, size_t *n)
{
	*arr = need_array(r, o, key);
	*n = *arr ? json_array_size(*arr) : 0;
	void *t = calloc(*n + 1, elem);
	if (!t && !r->e)
		r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	return t;
}

/* Entry i of the array arr, which must be an object (where names it in
 * messages); NULL, r failed, when it is not. */
static const json_t *get_entry(struct rd *r, const json_t *arr, size_t i, const char *where)
{
	const json_t *o = json_array_get(arr, i);
	r->where = where;
	if (!json_is_object(o)) {
		fail(r, "malformed part: %s: %s is not an object", "entry");
		return NULL;
	}
	return o;
}

/* ------------------------------------------------------------------ merging */

void qa_part_merged_free(struct qa_part_merged *m)
{
	if (!m)
		return;
	qa_diff_free(m->diff);
	qa_manifest_free(m->manifest);
	qa_verify_free(&m->verify);
	for (size_t i = 0; i < m->n_extra; i++)
		free(m->extra_names[i]);
	free(m->extra_names);
	free(m->file);
	free(m->manifest_path);
	for (size_t i = 0; i < m->n_models; i++) {
		if (m->swap)
			qa_swap_free(m->swap[i]);
		if (m->labels)
			free(m->labels[i]);
	}
	free(m->swap);
	free(m->labels);
	for (int i = 0; i < m->argc; i++)
		free(m->argv[i]);
	free(m->argv);
	json_decref(m->transfer);
	memset(m, 0, sizeof *m);
}

/* The metadata audit's pairs from a header's "metadata" array. */
static void metadata_from(struct rd *r, struct qa_diff_result *res, const json_t *md)
{
	r->where = "metadata";
	if (!json_is_array(md)) {
		fail(r, "malformed part: %s: \"%s\" is not an array or null", "metadata");
		return;
	}
	size_t n = json_array_size(md);
	res->metadata = calloc(n + 1, sizeof *res->metadata);
	if (!res->metadata) {
		r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		return;
	}
	res->metadata_audited = true;
	for (size_t i = 0; i < n && !r->e; i++) {
		struct qa_reproduce_kv *k = &res->metadata[res->n_metadata++];
		const json_t *o = get_entry(r, md, i, "metadata");
		if (!o)
			return;
		k->key = get_str(r, o, "key", false);
		k->kind = (enum qa_reproduce_kv_kind)get_int(r, o, "kind", QA_RKV_MISSING, QA_RKV_MOVED);
		k->expected = get_str(r, o, "expected", true);
		k->actual = get_str(r, o, "actual", true);
		k->expected_index = get_int(r, o, "expected_index", -1, INT64_MAX);
		k->actual_index = get_int(r, o, "actual_index", -1, INT64_MAX);
		json_t *off = need(r, o, "actual_offset");
		k->actual_offset = off && json_is_null(off) ? QA_NO_OFFSET : get_u64(r, o, "actual_offset", UINT64_MAX - 1);
		k->finding = get_bool(r, o, "finding");
	}
}

/* The matrix given with --imatrix, as the header records it. */
static void imatrix_from(struct rd *r, struct qa_diff_result *res, const json_t *o)
{
	struct qa_diff_imatrix_given *g = &res->imatrix;
	r->where = "imatrix";
	if (!json_is_object(o)) {
		fail(r, "malformed part: %s: \"%s\" is not an object or null", "imatrix");
		return;
	}
	g->given = true;
	g->path = get_str(r, o, "path", false);
	g->format = (enum qa_imatrix_format)get_int(r, o, "format", QA_IMATRIX_GGUF, QA_IMATRIX_LEGACY);
	g->dataset = get_str(r, o, "dataset", true);
	g->entries = get_u64(r, o, "entries", UINT64_MAX);
	g->chunks = (int32_t)get_int(r, o, "chunks", INT32_MIN, INT32_MAX);
	json_t *sha = need(r, o, "sha256");
	if (sha)
		get_hex(r, sha, g->sha256, QA_SHA256_LEN);
	g->dataset_differs = get_bool(r, o, "dataset_differs");
	g->entries_differ = get_bool(r, o, "entries_differ");
	g->unmatched = (size_t)get_u64(r, o, "unmatched", SIZE_MAX);
	g->first_unmatched = get_str(r, o, "first_unmatched", true);
	g->weighted_tensors = (size_t)get_u64(r, o, "weighted_tensors", SIZE_MAX);
}

/* The diff result described by a header (no audit figures yet). */
static struct qa_diff_result *diff_from_header(struct rd *r, const json_t *h)
{
	struct qa_diff_result *res = calloc(1, sizeof *res);
	if (!res) {
		r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		return NULL;
	}
	r->where = "header";
	res->reference_path = get_str(r, h, "reference_path", false);
	res->artifact_path = get_str(r, h, "artifact_path", false);
	res->reference_size = get_u64(r, h, "reference_size", UINT64_MAX);
	res->artifact_size = get_u64(r, h, "artifact_size", UINT64_MAX);
	json_t *ft = need(r, h, "file_type");
	if (ft && !json_is_null(ft)) {
		res->has_file_type = true;
		res->file_type = (uint32_t)get_u64(r, h, "file_type", UINT32_MAX);
	}
	get_short_str(r, h, "arch", res->arch, sizeof res->arch);
	res->recipe_matches = get_bool(r, h, "recipe_matches");
	res->recipe_deviations = (size_t)get_u64(r, h, "recipe_deviations", SIZE_MAX);
	if (get_bool(r, h, "recipe") && res->has_file_type) {
		const struct qa_recipe *rec = qa_recipe_by_file_type(res->file_type);
		res->recipe_name = rec ? qa_recipe_name(rec) : NULL;
		if (!rec)
			fail(r, "malformed part: %s: \"%s\" names no recipe this build knows", "file_type");
	}
	res->pure_type = (uint32_t)get_u64(r, h, "pure_type", UINT32_MAX);
	res->pure_matches = get_bool(r, h, "pure_matches");
	json_t *ik = need(r, h, "declared_imatrix");
	if (ik && json_is_object(ik)) {
		struct qa_diff_imatrix_keys *k = &res->declared_imatrix;
		r->where = "declared_imatrix";
		k->declared = true;
		k->file = get_str(r, ik, "file", true);
		k->dataset = get_str(r, ik, "dataset", true);
		json_t *en = need(r, ik, "entries"), *ch = need(r, ik, "chunks");
		if (en && !json_is_null(en)) {
			k->has_entries = true;
			k->entries = get_u64(r, ik, "entries", UINT64_MAX);
		}
		if (ch && !json_is_null(ch)) {
			k->has_chunks = true;
			k->chunks = get_u64(r, ik, "chunks", UINT64_MAX);
		}
		r->where = "header";
	} else if (ik && !json_is_null(ik)) {
		fail(r, "malformed part: %s: \"%s\" is not an object or null", "declared_imatrix");
	}
	json_t *md = need(r, h, "metadata");
	if (md && !json_is_null(md))
		metadata_from(r, res, md);
	r->where = "header";
	json_t *ts;
	size_t n;
	res->tensors = get_table(r, h, "tensors", sizeof *res->tensors, &ts, &n);
	for (size_t i = 0; !r->e && i < n; i++) {
		struct qa_diff_tensor *t = &res->tensors[res->n++];
		const json_t *o = get_entry(r, ts, i, "header tensor");
		if (!o)
			break;
		t->name = get_str(r, o, "name", false);
		t->reference_name = get_str(r, o, "reference_name", true);
		t->type = (uint32_t)get_u64(r, o, "type", QA_TYPE_COUNT - 1);
		t->n_dims = (uint32_t)get_u64(r, o, "n_dims", 4);
		json_t *ne = need_array(r, o, "ne");
		if (ne && json_array_size(ne) != 4)
			fail(r, "malformed part: %s: \"%s\" must hold 4 dims", "ne");
		for (size_t q = 0; ne && !r->e && q < 4; q++) {
			json_t *wrap = json_pack("{s:O}", "v", json_array_get(ne, q));
			t->ne[q] = wrap ? get_u64(r, wrap, "v", UINT64_MAX) : 0;
			json_decref(wrap);
		}
		t->blocks = get_u64(r, o, "blocks", UINT64_MAX / 2);
		t->nbytes = get_u64(r, o, "nbytes", UINT64_MAX);
		t->layer = (int)get_int(r, o, "layer", -1, INT32_MAX);
		t->quantized = get_bool(r, o, "quantized");
		t->in_plan = get_bool(r, o, "in_plan");
		t->recipe_type = (uint32_t)get_u64(r, o, "recipe_type", UINT32_MAX);
		get_short_str(r, o, "rule", t->rule, sizeof t->rule);
		t->verdict = get_bool(r, o, "missing") ? QA_VERDICT_MISSING : QA_VERDICT_DIVERGENT;
		t->layout = -1;
		t->first_divergent = QA_NO_BLOCK;
	}
	r->where = "header";
	json_t *ig = need(r, h, "imatrix");
	if (!r->e && ig && !json_is_null(ig))
		imatrix_from(r, res, ig);
	r->where = "header";
	json_t *crn = need(r, h, "compare_recipes");
	if (!r->e && crn && !json_is_null(crn)) {
		const struct qa_recipe *recs[QA_FX_MAX_RECIPES];
		size_t nrec = json_is_array(crn) ? json_array_size(crn) : 0;
		if (!json_is_array(crn) || nrec == 0 || nrec > QA_FX_MAX_RECIPES)
			fail(r, "malformed part: %s: \"%s\" must list 1 to 8 recipes", "compare_recipes");
		for (size_t q = 0; !r->e && q < nrec; q++) {
			const char *nm = json_string_value(json_array_get(crn, q));
			if (!nm || !(recs[q] = qa_recipe_by_name(nm)))
				fail(r, "malformed part: %s: \"%s\" names a recipe this build does not know", "compare_recipes");
		}
		if (!r->e && !(res->recipe_cmp = qa_recipe_cmp_new(recs, nrec, res->n)))
			r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	return res;
}

/* Fill the audit figures of res->tensors[i] from a part's entry a. */
static void diff_audit_from(struct rd *r, struct qa_diff_result *res, size_t idx, const json_t *a)
{
	struct qa_diff_tensor *t = &res->tensors[idx];
	r->where = "audited tensor";
	t->verdict = (enum qa_verdict)get_int(r, a, "verdict", 0, QA_VERDICT_COUNT - 1);
	t->layout = (int)get_int(r, a, "layout", -1, QA_FX_LAYOUTS - 1);
	t->evidence = (enum qa_evidence)get_int(r, a, "evidence", QA_EVIDENCE_NONE, QA_EVIDENCE_ERROR);
	t->weighted = get_bool(r, a, "weighted");
	json_t *le = need(r, a, "layout_errors");
	if (le && !json_is_null(le)) {
		json_t *tr = json_object_get(le, "tried"), *rm = json_object_get(le, "rmse"),
		       *no = json_object_get(le, "noise");
		if (!json_is_array(tr) || !json_is_array(rm) || !json_is_array(no) || json_array_size(tr) != QA_FX_LAYOUTS ||
		    json_array_size(rm) != QA_FX_LAYOUTS || json_array_size(no) != QA_FX_LAYOUTS) {
			fail(r, "malformed part: %s: \"%s\" must hold tried, rmse and noise for each layout",
			     "layout_errors");
			return;
		}
		t->has_layout_errors = true;
		for (size_t l = 0; l < QA_FX_LAYOUTS; l++) {
			json_t *x = json_array_get(tr, l), *y = json_array_get(rm, l), *z = json_array_get(no, l);
			if (!json_is_boolean(x) || !json_is_number(y) || !json_is_number(z)) {
				fail(r, "malformed part: %s: \"%s\" holds a mistyped value", "layout_errors");
				return;
			}
			t->layout_errors.tried[l] = json_is_true(x);
			t->layout_errors.rmse[l] = json_number_value(y);
			t->layout_errors.noise[l] = json_number_value(z);
		}
	}
	json_t *ex = json_object_get(a, "expert_layouts");
	if (ex && !r->e) {
		size_t nx = json_is_array(ex) ? json_array_size(ex) : 0;
		if (nx == 0 || t->n_dims != 3 || nx != t->ne[2] || nx > UINT32_MAX) {
			fail(r, "malformed part: %s: \"%s\" must hold one layout per expert", "expert_layouts");
			return;
		}
		int8_t *lay = malloc(nx);
		if (!lay) {
			r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			return;
		}
		for (size_t x = 0; x < nx; x++) {
			json_t *v = json_array_get(ex, x);
			json_int_t l = json_is_integer(v) ? json_integer_value(v) : -2;
			if (l < -1 || l > QA_LAYOUT_TRANSPOSED) {
				free(lay);
				fail(r, "malformed part: %s: \"%s\" holds a layout out of range", "expert_layouts");
				return;
			}
			lay[x] = (int8_t)l;
		}
		free(t->expert_layout);
		t->expert_layout = lay;
		t->n_experts = (uint32_t)nx;
	}
	t->divergent_blocks = get_u64(r, a, "divergent_blocks", t->blocks);
	t->first_divergent = get_u64(r, a, "first_divergent", UINT64_MAX);
	if (t->first_divergent != QA_NO_BLOCK && t->first_divergent >= t->blocks)
		fail(r, "malformed part: %s: \"%s\" lies past the tensor's blocks", "first_divergent");
	t->has_error = get_bool(r, a, "has_error");
	t->rmse = get_real(r, a, "rmse");
	t->max_abs = get_real(r, a, "max_abs");
	t->requant_rmse = get_real(r, a, "requant_rmse");
	t->requant_max_abs = get_real(r, a, "requant_max_abs");
	json_t *cm = need(r, a, "recipe_cmp");
	if (cm && !json_is_null(cm) && !r->e) {
		struct qa_recipe_cmp *rc = res->recipe_cmp;
		json_t *sq = json_object_get(cm, "sq"), *bits = json_object_get(cm, "bits");
		size_t nr = rc ? rc->n_recipes : 0;
		if (!rc || idx >= rc->n_tensors || !json_is_object(cm) || json_array_size(sq) != nr ||
		    json_array_size(bits) != nr) {
			fail(r, "malformed part: %s: \"%s\" does not fit the recipes compared", "recipe_cmp");
			return;
		}
		rc->measured[idx] = 1;
		rc->n_elems[idx] = get_u64(r, cm, "n_elems", UINT64_MAX);
		for (size_t q = 0; q < nr; q++) {
			json_t *x = json_array_get(sq, q), *y = json_array_get(bits, q);
			if (!json_is_number(x) || !json_is_number(y)) {
				fail(r, "malformed part: %s: \"%s\" holds a non-number", "recipe_cmp");
				return;
			}
			rc->sq[idx * QA_FX_MAX_RECIPES + q] = json_number_value(x);
			rc->bits[idx * QA_FX_MAX_RECIPES + q] = json_number_value(y);
		}
	}
	json_t *dv = json_object_get(a, "divergence");
	if (dv && !r->e) {
		size_t nb = (size_t)(t->blocks / 8 + 1);
		t->divergence = malloc(nb);
		if (!t->divergence) {
			r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			return;
		}
		get_hex(r, dv, t->divergence, nb);
	}
}

/* The swap results described by a header. */
static struct qa_swap_result **swap_from_header(struct rd *r, const json_t *h, size_t *n_models, char ***labels)
{
	r->where = "header";
	json_t *models = need_array(r, h, "models");
	size_t nm = models ? json_array_size(models) : 0;
	struct qa_swap_result **res = calloc(nm + 1, sizeof *res);
	*labels = calloc(nm + 1, sizeof **labels);
	*n_models = 0;
	if (!res || !*labels) {
		r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		return res;
	}
	for (size_t m = 0; m < nm && !r->e; m++) {
		struct qa_swap_result *s = res[m] = calloc(1, sizeof *s);
		(*n_models)++;
		if (!s) {
			r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			break;
		}
		const json_t *mo = get_entry(r, models, m, "model");
		if (!mo)
			break;
		(*labels)[m] = get_str(r, mo, "label", false);
		s->reference_path = get_str(r, mo, "reference_path", false);
		s->reference_size = get_u64(r, mo, "reference_size", UINT64_MAX);
		s->type = (uint32_t)get_u64(r, mo, "type", QA_TYPE_COUNT - 1);
		s->block_elems = (uint32_t)get_u64(r, mo, "block_elems", 1u << 20);
		get_short_str(r, mo, "arch", s->arch, sizeof s->arch);
		json_t *ts;
		size_t n;
		s->tensors = get_table(r, mo, "tensors", sizeof *s->tensors, &ts, &n);
		for (size_t i = 0; !r->e && i < n; i++) {
			struct qa_swap_tensor *t = &s->tensors[s->n++];
			const json_t *o = get_entry(r, ts, i, "header tensor");
			if (!o)
				break;
			t->name = get_str(r, o, "name", false);
			t->in = get_u64(r, o, "in", UINT32_MAX);
			t->out = get_u64(r, o, "out", UINT32_MAX);
			t->layer = (int)get_int(r, o, "layer", -1, INT32_MAX);
			json_t *bl = need_array(r, o, "blocks"), *by = need_array(r, o, "bytes");
			if ((bl && json_array_size(bl) != 2) || (by && json_array_size(by) != 2)) {
				fail(r, "malformed part: %s: \"%s\" must hold two layouts", "blocks");
				break;
			}
			for (int l = 0; bl && by && l < 2 && !r->e; l++) {
				json_t *w = json_pack("{s:O, s:O}", "b", json_array_get(bl, (size_t)l), "y",
				                      json_array_get(by, (size_t)l));
				t->blocks[l] = w ? get_u64(r, w, "b", UINT64_MAX / 2) : 0;
				t->bytes[l] = w ? get_u64(r, w, "y", INT64_MAX) : 0;
				json_decref(w);
			}
			t->predicted_identical = get_bool(r, o, "predicted_identical");
			t->first_divergent = QA_NO_BLOCK;
			t->experts = json_object_get(o, "experts") ? get_u64(r, o, "experts", UINT32_MAX) : 1;
			if (t->experts == 0)
				fail(r, "malformed part: %s: \"%s\" must be positive", "experts");
		}
	}
	return res;
}

/* A 64-hex digest field of o into out; false (and r failed) when malformed. */
static bool get_digest(struct rd *r, const json_t *o, const char *key, uint8_t *out)
{
	json_t *v = need(r, o, key);
	return v && get_hex(r, v, out, QA_SHA256_LEN);
}

/* hash: the manifest from the header's table and every part's digests. */
static void hash_merge(struct rd *r, json_t *const *parts, const size_t *part_of, const char **by_shard,
                       uint32_t n_shards, struct qa_part_merged *out, const char **culprit)
{
	const json_t *h = json_object_get(parts[part_of[1]], "header");
	struct qa_manifest *m = out->manifest = calloc(1, sizeof *m);
	r->where = "header";
	if (!m) {
		r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		return;
	}
	m->path = get_str(r, h, "path", false);
	m->format = get_str(r, h, "format", false);
	m->size = get_u64(r, h, "size", UINT64_MAX);
	m->has_blocks = get_bool(r, h, "blocks");
	bool data_digest = get_bool(r, h, "data_digest");
	json_t *pf = need(r, h, "print");
	const char *pr = json_string_value(pf);
	if (pf && (!pr || (strcmp(pr, "json") && strcmp(pr, "table") && strcmp(pr, "gguf-hash") && strcmp(pr, "default"))))
		fail(r, "malformed part: %s: \"%s\" is not json, table, gguf-hash or default", "print");
	else if (pr)
		snprintf(out->format, sizeof out->format, "%s", pr);
	json_t *ts;
	size_t nt;
	m->tensors = get_table(r, h, "tensors", sizeof *m->tensors, &ts, &nt);
	uint64_t *w = calloc(nt + 1, sizeof *w);
	uint32_t *owner = calloc(nt + 1, sizeof *owner);
	uint8_t *seen = calloc(nt + 1, 1);
	if (!m->tensors || !w || !owner || !seen) {
		if (!r->e)
			r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nt && !r->e; i++) {
		struct qa_manifest_tensor *t = &m->tensors[m->n++];
		const json_t *o = get_entry(r, ts, i, "header tensor");
		if (!o)
			break;
		t->name = get_str(r, o, "name", false);
		t->type = get_str(r, o, "type", false);
		json_t *sh = need_array(r, o, "shape");
		if (sh && json_array_size(sh) > 8)
			fail(r, "malformed part: %s: \"%s\" has more than 8 dims", "shape");
		for (size_t q = 0; sh && !r->e && q < json_array_size(sh); q++) {
			json_t *wrap = json_pack("{s:O}", "v", json_array_get(sh, q));
			t->shape[q] = wrap ? get_u64(r, wrap, "v", UINT64_MAX) : 0;
			json_decref(wrap);
			t->n_dims = (uint32_t)q + 1;
		}
		t->offset = get_u64(r, o, "offset", UINT64_MAX);
		t->nbytes = get_u64(r, o, "nbytes", UINT64_MAX);
		t->n_blocks = get_u64(r, o, "blocks", UINT64_MAX / QA_SHA256_LEN);
		t->block_bytes = get_u64(r, o, "block_bytes", UINT64_MAX);
		w[i] = t->nbytes;
	}
	if (!r->e && !qa_part_assign(w, nt, n_shards, owner))
		r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	bool digests = false;
	for (uint32_t k = 1; !r->e && k <= n_shards; k++) {
		const json_t *p = parts[part_of[k]];
		*culprit = by_shard[k];
		json_t *aud = need_array(r, p, "audited");
		size_t i;
		json_t *a;
		json_array_foreach(aud, i, a) {
			r->where = "audited tensor";
			uint64_t idx = json_is_object(a) ? get_u64(r, a, "index", nt ? nt - 1 : 0) : UINT64_MAX;
			if (r->e)
				break;
			if (idx >= nt || owner[idx] != k - 1 || seen[idx]) {
				r->e = qa_diag_set(r->d, QA_ERR_FORMAT, 0, "audited tensor %llu is not shard %u's to audit "
				                   "(or is listed twice)", (unsigned long long)idx, k);
				break;
			}
			seen[idx] = 1;
			struct qa_manifest_tensor *t = &m->tensors[idx];
			get_digest(r, a, "sha256", t->sha256);
			get_digest(r, a, "merkle_root", t->merkle);
			if (m->has_blocks && !r->e) {
				json_t *bl = need(r, a, "block_sha256");
				t->blocks = malloc(t->n_blocks ? (size_t)t->n_blocks * QA_SHA256_LEN : 1);
				if (!t->blocks)
					r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				else if (bl)
					get_hex(r, bl, t->blocks, (size_t)t->n_blocks * QA_SHA256_LEN);
			}
		}
		/* the whole-file digests of the part that computed them */
		json_t *dg = json_object_get(p, "digests");
		if (!r->e && json_is_string(json_object_get(dg, "file"))) {
			r->where = "digests";
			get_digest(r, dg, "file", m->sha256);
			get_digest(r, dg, "metadata", m->metadata_sha256);
			if (data_digest && get_digest(r, dg, "tensor_data", m->tensor_data_sha256))
				m->has_tensor_data_sha256 = true;
			digests = true;
		}
	}
	for (size_t i = 0; !r->e && i < nt; i++)
		if (!seen[i]) {
			*culprit = by_shard[owner[i] + 1];
			r->e = qa_diag_set(r->d, QA_ERR_FORMAT, 0, "tensor %zu is missing from shard %u's part", i, owner[i] + 1);
		}
	out->digests = digests;
done:
	free(w);
	free(owner);
	free(seen);
}

/* ------------------------------------------------------------------ verify */

static const char *const verify_kinds[] = { "mismatch", "missing", "extra", "shape-mismatch" };

bool qa_part_verify_assign(const struct qa_manifest *want, uint32_t n, uint32_t *owner)
{
	uint64_t *w = calloc(want->n + 1, sizeof *w);
	bool ok = w != NULL;
	for (size_t i = 0; ok && i < want->n; i++)
		w[i] = want->tensors[i].nbytes;
	ok = ok && qa_part_assign(w, want->n, n, owner);
	free(w);
	return ok;
}

json_t *qa_part_verify_to_json(const struct qa_manifest *want, const struct qa_verify *v, const uint32_t *owner,
                               const char *path, uint64_t size, const char *mpath,
                               const uint8_t manifest_sha256[QA_SHA256_LEN], bool file_digests, uint32_t k,
                               uint32_t n, int argc, char *const *argv)
{
	json_t *h = json_object(), *ts = json_array(), *aud = json_array(), *dg = json_object();
	size_t owned = 0, listed = 0;
	for (size_t i = 0; i < want->n; i++) {
		json_array_append_new(ts, json_pack("{s:o, s:o}", "name", qa_json_str_or_null(want->tensors[i].name), "nbytes",
		                                    qa_json_u64(want->tensors[i].nbytes)));
		owned += owner[i] == k - 1;
	}
	json_object_set_new(h, "file", qa_json_str_or_null(path));
	json_object_set_new(h, "size", qa_json_u64(size));
	json_object_set_new(h, "manifest", qa_json_str_or_null(mpath));
	json_object_set_new(h, "manifest_sha256", qa_json_hex(manifest_sha256, QA_SHA256_LEN));
	json_object_set_new(h, "tensors", ts);
	/* the items in v's order: the manifest's tensors (keyed by their index),
	 * then the file's extra tensors (keyed past them, shard 1's alone) */
	size_t extra = 0;
	for (size_t i = 0; i < v->n_items; i++) {
		const struct qa_verify_item *it = &v->items[i];
		uint64_t key;
		if (it->kind == QA_VERIFY_EXTRA) {
			key = (uint64_t)want->n + extra++;
		} else {
			size_t j = 0;
			while (j < want->n && strcmp(want->tensors[j].name, it->name) != 0)
				j++;
			key = j;
			listed++;
		}
		json_t *a = json_pack("{s:o, s:s, s:o, s:b, s:o, s:o, s:o}", "index", qa_json_u64(key), "status",
		                      verify_kinds[it->kind], "name", qa_json_str_or_null(it->name), "blocks_known", it->blocks_known,
		                      "blocks_compared", qa_json_u64(it->blocks_compared), "divergent_blocks",
		                      qa_json_u64(it->divergent_blocks), "first_divergent",
		                      it->first_divergent == UINT64_MAX ? json_null() : qa_json_u64(it->first_divergent));
		json_array_append_new(aud, a);
	}
	json_object_set_new(dg, "file_match", file_digests ? json_boolean(v->file_match) : json_null());
	json_object_set_new(dg, "metadata_match", file_digests ? json_boolean(v->metadata_match) : json_null());
	json_object_set_new(dg, "tensors_ok", qa_json_u64(owned >= listed ? owned - listed : 0));
	return part_frame("verify", k, n, argc, argv, h, dg, aud);
}

struct vkey {
	uint64_t key;
	struct qa_verify_item it;
};

static int cmp_vkey(const void *a, const void *b)
{
	const struct vkey *x = a, *y = b;
	return x->key < y->key ? -1 : x->key > y->key;
}

static void verify_merge(struct rd *r, json_t *const *parts, const size_t *part_of, const char **by_shard,
                         uint32_t n_shards, struct qa_part_merged *out, const char **culprit)
{
	struct qa_diag *d = r->d;
	const json_t *h = json_object_get(parts[part_of[1]], "header");
	r->where = "header";
	json_t *ts = need_array(r, h, "tensors");
	out->file = get_str(r, h, "file", false);
	out->manifest_path = get_str(r, h, "manifest", false);
	if (r->e)
		return;
	size_t nt = json_array_size(ts);
	struct qa_manifest *m = out->manifest = calloc(1, sizeof *m);
	if (m)
		m->tensors = calloc(nt + 1, sizeof *m->tensors);
	if (!m || !m->tensors) {
		r->e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		return;
	}
	for (size_t i = 0; i < nt && !r->e; i++) {
		const json_t *t = get_entry(r, ts, i, "manifest tensor");
		if (!t)
			break;
		m->tensors[i].name = get_str(r, t, "name", false);
		m->tensors[i].nbytes = get_u64(r, t, "nbytes", UINT64_MAX);
		m->n = i + 1;
	}
	uint32_t *owner = calloc(nt + 1, sizeof *owner);
	uint8_t *seen = calloc(nt + 1, 1);
	size_t *owned = calloc(n_shards + 1, sizeof *owned);
	size_t cap = 0, nk = 0;
	struct vkey *keys = NULL;
	if (!r->e && (!owner || !seen || !owned || !qa_part_verify_assign(m, n_shards, owner)))
		r->e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (size_t i = 0; !r->e && i < nt; i++)
		owned[owner[i]]++;
	bool digests = false;
	out->verify.file_match = out->verify.metadata_match = true;
	for (uint32_t k = 1; !r->e && k <= n_shards; k++) {
		const json_t *p = parts[part_of[k]];
		*culprit = by_shard[k];
		json_t *aud = need_array(r, p, "audited");
		json_t *dg = json_object_get(p, "digests");
		r->where = "digests";
		if (!json_is_object(dg)) {
			fail(r, "malformed part: %s: \"%s\" is not an object", "digests");
			break;
		}
		uint64_t ok = get_u64(r, dg, "tensors_ok", nt);
		json_t *fm = json_object_get(dg, "file_match"), *mm = json_object_get(dg, "metadata_match");
		if (json_is_boolean(fm) && json_is_boolean(mm)) {
			out->verify.file_match = json_is_true(fm);
			out->verify.metadata_match = json_is_true(mm);
			digests = true;
		} else if (!json_is_null(fm) || !json_is_null(mm)) {
			fail(r, "malformed part: %s: \"%s\" is not a boolean or null", "file_match");
		}
		size_t listed = 0, i;
		uint64_t last_extra = 0;
		json_t *a;
		json_array_foreach(aud, i, a) {
			if (r->e || !get_entry(r, aud, i, "audited tensor"))
				break;
			uint64_t key = get_u64(r, a, "index", (uint64_t)nt + INT32_MAX);
			const char *st = json_string_value(json_object_get(a, "status"));
			int kind = -1;
			for (int j = 0; st && j < 4; j++)
				if (strcmp(st, verify_kinds[j]) == 0)
					kind = j;
			if (r->e)
				break;
			if (kind < 0) {
				fail(r, "malformed part: %s: \"%s\" is not a verify status", "status");
				break;
			}
			bool is_extra = kind == QA_VERIFY_EXTRA;
			if (is_extra != (key >= nt) || (!is_extra && (owner[key] != k - 1 || seen[key])) ||
			    (is_extra && (k != 1 || (key != nt + last_extra)))) {
				r->e = qa_diag_set(d, QA_ERR_FORMAT, 0, "tensor %llu is not shard %u's to verify (or is "
				                   "listed twice)", (unsigned long long)key, k);
				break;
			}
			if (is_extra)
				last_extra++;
			else
				seen[key] = 1, listed++;
			if (nk == cap) {
				size_t nc = cap ? 2 * cap : 16;
				struct vkey *nkeys = realloc(keys, nc * sizeof *keys);
				if (!nkeys) {
					r->e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
					break;
				}
				keys = nkeys;
				cap = nc;
			}
			struct qa_verify_item *it = &keys[nk].it;
			keys[nk++].key = key;
			it->kind = (enum qa_verify_kind)kind;
			char *name = get_str(r, a, "name", false);
			if (name && !is_extra && strcmp(name, m->tensors[key].name) != 0)
				fail(r, "malformed part: %s: \"%s\" differs from the manifest's", "name");
			if (name && is_extra) {
				char **ne = realloc(out->extra_names, (out->n_extra + 1) * sizeof *ne);
				if (!ne) {
					free(name);
					r->e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
					break;
				}
				out->extra_names = ne;
				ne[out->n_extra++] = name;
				it->name = name;
			} else {
				free(name);
				it->name = key < nt ? m->tensors[key].name : "";
			}
			it->blocks_known = get_bool(r, a, "blocks_known");
			it->blocks_compared = get_u64(r, a, "blocks_compared", UINT64_MAX);
			it->divergent_blocks = get_u64(r, a, "divergent_blocks", UINT64_MAX);
			json_t *fd = json_object_get(a, "first_divergent");
			it->first_divergent = json_is_null(fd) ? UINT64_MAX : get_u64(r, a, "first_divergent", UINT64_MAX);
		}
		if (!r->e && ok + listed != owned[k - 1])
			r->e = qa_diag_set(d, QA_ERR_FORMAT, 0, "shard %u's part accounts for %llu of its %zu tensors", k,
			                   (unsigned long long)(ok + listed), owned[k - 1]);
		out->verify.n_tensors_ok += (size_t)ok;
	}
	if (!r->e) {
		if (nk) /* keys is NULL when no tensor is listed: qsort must not see it */
			qsort(keys, nk, sizeof *keys, cmp_vkey);
		out->verify.items = calloc(nk + 1, sizeof *out->verify.items);
		if (!out->verify.items)
			r->e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		for (size_t i = 0; !r->e && i < nk; i++)
			out->verify.items[out->verify.n_items++] = keys[i].it;
	}
	out->digests = digests;
	free(keys);
	free(owner);
	free(seen);
	free(owned);
}

/* ------------------------------------------------------------------ transfer */

/* The counters of a "transfer" object (remote.h) that add up over shards. */
static const char *const transfer_sums[] = { "requests", "bytes", "retries", "cache_hits" };

struct xfer_input {
	const char *url, *commit;     /* borrowed from the parts */
	uint64_t bytes, requests, peak;
};

static json_t *clamped(uint64_t v)
{
	return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v));
}

/*
 * The parts' "transfer" objects (present in a part whose shard read a remote
 * input) as one: the counters summed, the inputs by URL in shard order with
 * their bytes and requests summed and the largest local peak (each shard held
 * its own copy).  NULL when no part has one.  Two parts that read one URL at
 * different commits are refused: the shards did not audit the same bytes.
 */
static json_t *transfer_merge(struct rd *r, json_t *const *parts, const size_t *part_of, const char **by_shard,
                              uint32_t n_shards, const char **culprit)
{
	uint64_t sum[4] = { 0 };
	struct xfer_input *in = NULL;
	size_t n_in = 0, cap = 0;
	const char **first = NULL;   /* the part that first named each input */
	bool any = false;
	for (uint32_t k = 1; !r->e && k <= n_shards; k++) {
		const json_t *t = json_object_get(parts[part_of[k]], "transfer");
		if (!t)
			continue;
		*culprit = by_shard[k];
		r->where = "transfer";
		if (!json_is_object(t)) {
			fail(r, "malformed part: %s: \"%s\" is not an object", "transfer");
			break;
		}
		any = true;
		for (size_t i = 0; i < 4 && !r->e; i++)
			if (!qa_add_u64(sum[i], get_u64(r, t, transfer_sums[i], UINT64_MAX), &sum[i]))
				fail(r, "malformed part: %s: \"%s\" overflows when summed", transfer_sums[i]);
		json_t *ins = need_array(r, t, "inputs");
		size_t i;
		json_t *e;
		json_array_foreach(ins, i, e) {
			r->where = "transfer input";
			if (r->e)
				break;
			if (!json_is_object(e)) {
				fail(r, "malformed part: %s: %s is not an object", "entry");
				break;
			}
			const char *url = json_string_value(json_object_get(e, "url"));
			json_t *cj = json_object_get(e, "commit");
			const char *commit = json_string_value(cj);
			uint64_t b = get_u64(r, e, "bytes", UINT64_MAX), q = get_u64(r, e, "requests", UINT64_MAX);
			uint64_t pk = get_u64(r, e, "local_peak_bytes", UINT64_MAX);
			if (!r->e && (!url || (cj && !commit)))
				fail(r, "malformed part: %s: \"%s\" is not a string", url ? "commit" : "url");
			if (r->e)
				break;
			size_t j = 0;
			while (j < n_in && strcmp(in[j].url, url) != 0)
				j++;
			if (j == n_in) {
				if (n_in == cap) {
					size_t nc = cap ? 2 * cap : 8;
					struct xfer_input *ni = realloc(in, nc * sizeof *in);
					const char **nf = ni ? realloc(first, nc * sizeof *first) : NULL;
					if (ni)
						in = ni;
					if (nf)
						first = nf;
					if (!ni || !nf) {
						r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
						break;
					}
					cap = nc;
				}
				in[n_in] = (struct xfer_input){ url, NULL, 0, 0, 0 };
				first[n_in++] = by_shard[k];
			}
			if (commit && in[j].commit && strcmp(commit, in[j].commit) != 0) {
				r->e = qa_diag_set(r->d, QA_ERR_FORMAT, 0, "its transfer input %zu was read at another commit "
				                   "than in %s (the repository changed between the shards)", i, first[j]);
				break;
			}
			if (commit)
				in[j].commit = commit;
			if (!qa_add_u64(in[j].bytes, b, &in[j].bytes) || !qa_add_u64(in[j].requests, q, &in[j].requests)) {
				fail(r, "malformed part: %s: \"%s\" overflows when summed", "bytes");
				break;
			}
			in[j].peak = pk > in[j].peak ? pk : in[j].peak;
		}
	}
	json_t *o = NULL;
	if (any && !r->e) {
		json_t *arr = json_array();
		o = json_object();
		for (size_t j = 0; arr && j < n_in; j++) {
			json_t *e = json_object();
			json_object_set_new(e, "url", json_string(in[j].url));
			if (in[j].commit)
				json_object_set_new(e, "commit", json_string(in[j].commit));
			json_object_set_new(e, "bytes", clamped(in[j].bytes));
			json_object_set_new(e, "requests", clamped(in[j].requests));
			json_object_set_new(e, "local_peak_bytes", clamped(in[j].peak));
			json_array_append_new(arr, e);
		}
		for (size_t i = 0; o && i < 4; i++)
			json_object_set_new(o, transfer_sums[i], clamped(sum[i]));
		if (!o || !arr || json_object_set_new(o, "inputs", arr) != 0) {
			json_decref(o);
			o = NULL;
			r->e = qa_diag_set(r->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		}
	}
	free(in);
	free(first);
	return o;
}

enum qa_err qa_part_merge(json_t *const *parts, const char *const *names, size_t n,
                          struct qa_part_merged *out, const char **culprit, struct qa_diag *d)
{
	memset(out, 0, sizeof *out);
	struct rd r = { d, QA_OK, "part" };
	*culprit = n ? names[0] : "";
	if (n == 0)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no parts given");
	/* frames: schema, run identity, shard numbers */
	const char *cmd = NULL, *run = NULL;
	uint32_t n_shards = 0;
	const char **by_shard = calloc(QA_PART_MAX_SHARDS + 1, sizeof *by_shard);
	size_t *part_of = calloc(QA_PART_MAX_SHARDS + 1, sizeof *part_of);
	if (!by_shard || !part_of) {
		free(by_shard);
		free(part_of);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	for (size_t i = 0; i < n && !r.e; i++) {
		const json_t *p = parts[i];
		*culprit = names[i];
		r.where = "part";
		if (!json_is_object(p)) {
			r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "not a quantaudit.part/1 document (not a json object)");
			break;
		}
		const char *schema = json_string_value(json_object_get(p, "schema"));
		if (!schema || strcmp(schema, QA_PART_SCHEMA) != 0) {
			r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "not a part: the schema is not %s", QA_PART_SCHEMA);
			break;
		}
		const char *c = json_string_value(json_object_get(p, "command"));
		const char *id = json_string_value(json_object_get(p, "run"));
		uint32_t k = (uint32_t)get_u64(&r, p, "shard", QA_PART_MAX_SHARDS);
		uint32_t nn = (uint32_t)get_u64(&r, p, "shards", QA_PART_MAX_SHARDS);
		if (r.e)
			break;
		if (!c || (strcmp(c, "diff") && strcmp(c, "shape-swap") && strcmp(c, "hash") && strcmp(c, "verify")) || !id || k < 1 || nn < 1 ||
		    k > nn) {
			r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "malformed part: bad command, run, shard or shards");
			break;
		}
		/* the identity must be that of the part's own header (a part cannot claim another run) */
		json_t *want = run_id(c, nn, json_object_get(p, "header"));
		bool same = want && strcmp(json_string_value(want), id) == 0;
		json_decref(want);
		if (!same) {
			r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "malformed part: its run identity does not match its header");
			break;
		}
		if (i == 0) {
			cmd = c;
			run = id;
			n_shards = nn;
		} else if (strcmp(c, cmd) || strcmp(id, run) || nn != n_shards) {
			r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "belongs to another run than %s (other inputs, command or "
			                  "shard count)", names[0]);
			break;
		}
		if (by_shard[k]) {
			r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "overlaps %s: both are shard %u of %u", by_shard[k], k, nn);
			break;
		}
		by_shard[k] = names[i];
		part_of[k] = i;
	}
	for (uint32_t k = 1; !r.e && k <= n_shards; k++)
		if (!by_shard[k]) {
			*culprit = names[0];
			r.e = qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET, "shard %u of %u is missing (its part was not given)",
			                  k, n_shards);
		}
	if (r.e)
		goto done;
	snprintf(out->command, sizeof out->command, "%s", cmd);
	*culprit = names[0];
	const json_t *p0 = parts[0];
	/* argv of the audited command */
	json_t *av = need_array(&r, p0, "argv");
	size_t na = av ? json_array_size(av) : 0;
	out->argv = calloc(na + 1, sizeof *out->argv);
	for (size_t i = 0; out->argv && i < na && !r.e; i++) {
		const char *s = json_string_value(json_array_get(av, i));
		if (!s)
			fail(&r, "malformed part: %s: \"%s\" holds a non-string", "argv");
		else if (!(out->argv[out->argc++] = qa_str_dup(s)))
			r.e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	if (!out->argv && !r.e)
		r.e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	if (r.e)
		goto done;

	if (strcmp(cmd, "verify") == 0) {
		verify_merge(&r, parts, part_of, by_shard, n_shards, out, culprit);
	} else if (strcmp(cmd, "hash") == 0) {
		hash_merge(&r, parts, part_of, by_shard, n_shards, out, culprit);
	} else if (strcmp(cmd, "diff") == 0) {
		struct qa_diff_result *res = out->diff = diff_from_header(&r, json_object_get(p0, "header"));
		if (r.e || !res)
			goto done;
		uint64_t *w = calloc(res->n + 1, sizeof *w);
		uint32_t *owner = calloc(res->n + 1, sizeof *owner);
		uint8_t *seen = calloc(res->n + 1, 1);
		bool ok = w && owner && seen;
		for (size_t i = 0; ok && i < res->n; i++)
			w[i] = qa_part_diff_weight(&res->tensors[i]);
		ok = ok && qa_part_assign(w, res->n, n_shards, owner);
		if (!ok)
			r.e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		res->no_digests = true;
		for (uint32_t k = 1; !r.e && k <= n_shards; k++) {
			const json_t *p = parts[part_of[k]];
			*culprit = by_shard[k];
			json_t *aud = need_array(&r, p, "audited");
			size_t i;
			json_t *a;
			json_array_foreach(aud, i, a) {
				r.where = "audited tensor";
				uint64_t idx = json_is_object(a) ? get_u64(&r, a, "index", res->n ? res->n - 1 : 0) : UINT64_MAX;
				if (r.e)
					break;
				if (idx >= res->n || owner[idx] != k - 1 || seen[idx]) {
					r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "audited tensor %llu is not shard %u's to audit "
					                  "(or is listed twice)", (unsigned long long)idx, k);
					break;
				}
				seen[idx] = 1;
				diff_audit_from(&r, res, (size_t)idx, a);
			}
			/* the whole-file digests of any part that computed them */
			json_t *dg = json_object_get(p, "digests");
			json_t *ra = json_object_get(dg, "artifact"), *rr = json_object_get(dg, "reference");
			if (!r.e && ra && json_is_string(ra)) {
				uint8_t h[QA_SHA256_LEN];
				if (get_hex(&r, ra, h, QA_SHA256_LEN)) {
					if (!res->no_digests && memcmp(h, res->artifact_sha256, sizeof h) != 0)
						r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "its artifact SHA-256 differs from another part's");
					memcpy(res->artifact_sha256, h, sizeof h);
					if (rr && json_is_string(rr))
						get_hex(&r, rr, res->reference_sha256, QA_SHA256_LEN);
					res->no_digests = false;
				}
			}
		}
		for (size_t i = 0; !r.e && i < res->n; i++)
			if (!seen[i]) {
				*culprit = by_shard[owner[i] + 1];
				r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "tensor %zu is missing from shard %u's part", i, owner[i] + 1);
			}
		free(w);
		free(owner);
		free(seen);
		if (!r.e) {
			qa_forensics_classify(res);
			r.e = qa_forensics_recipe_aggregate(res, d);
		}
		out->digests = !res->no_digests;
	} else {
		out->swap = swap_from_header(&r, json_object_get(p0, "header"), &out->n_models, &out->labels);
		if (r.e || !out->swap)
			goto done;
		uint8_t **seen = calloc(out->n_models + 1, sizeof *seen);
		uint32_t **owner = calloc(out->n_models + 1, sizeof *owner);
		if (!seen || !owner)
			r.e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		for (size_t m = 0; !r.e && m < out->n_models; m++) {
			struct qa_swap_result *s = out->swap[m];
			uint64_t *w = calloc(s->n + 1, sizeof *w);
			seen[m] = calloc(s->n + 1, 1);
			owner[m] = calloc(s->n + 1, sizeof **owner);
			for (size_t i = 0; w && i < s->n; i++)
				w[i] = s->tensors[i].in * s->tensors[i].out;
			if (!w || !seen[m] || !owner[m] || !qa_part_assign(w, s->n, n_shards, owner[m]))
				r.e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			free(w);
			s->no_digests = true;
		}
		for (uint32_t k = 1; !r.e && k <= n_shards; k++) {
			const json_t *p = parts[part_of[k]];
			*culprit = by_shard[k];
			json_t *aud = need_array(&r, p, "audited");
			size_t i;
			json_t *a;
			json_array_foreach(aud, i, a) {
				if (!get_entry(&r, aud, i, "audited tensor"))
					break;
				uint64_t m = get_u64(&r, a, "model", out->n_models ? out->n_models - 1 : 0);
				if (r.e)
					break;
				struct qa_swap_result *s = out->swap[m];
				uint64_t idx = get_u64(&r, a, "index", s->n ? s->n - 1 : 0);
				if (r.e || !s->n || owner[m][idx] != k - 1 || seen[m][idx]) {
					qa_diag_clear(d);
					r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "audited tensor %llu of model %llu is not shard %u's "
					                  "to audit (or is listed twice)", (unsigned long long)idx,
					                  (unsigned long long)m, k);
					break;
				}
				seen[m][idx] = 1;
				struct qa_swap_tensor *t = &s->tensors[idx];
				t->identical = get_bool(&r, a, "identical");
				t->divergent_blocks = get_u64(&r, a, "divergent_blocks", UINT64_MAX / 2);
				t->first_divergent = get_u64(&r, a, "first_divergent", UINT64_MAX);
				if (json_object_get(a, "divergent_experts"))
					t->divergent_experts = get_u64(&r, a, "divergent_experts", t->experts);
			}
			json_t *dg = json_object_get(p, "digests");
			for (size_t m = 0; !r.e && json_is_array(dg) && m < out->n_models && m < json_array_size(dg); m++) {
				json_t *h = json_array_get(dg, m);
				if (json_is_string(h) && get_hex(&r, h, out->swap[m]->reference_sha256, QA_SHA256_LEN)) {
					out->swap[m]->no_digests = false;
					out->digests = true;
				}
			}
		}
		for (size_t m = 0; !r.e && m < out->n_models; m++)
			for (size_t i = 0; !r.e && i < out->swap[m]->n; i++)
				if (!seen[m][i]) {
					*culprit = by_shard[owner[m][i] + 1];
					r.e = qa_diag_set(d, QA_ERR_FORMAT, 0, "tensor %zu of model %zu is missing from shard %u's part",
					                  i, m, owner[m][i] + 1);
				}
		for (size_t m = 0; m < out->n_models; m++) {
			if (seen)
				free(seen[m]);
			if (owner)
				free(owner[m]);
			if (!r.e)
				qa_swap_summarize(out->swap[m]);
		}
		free(seen);
		free(owner);
	}
	if (!r.e) {
		const char *keep = *culprit;
		out->transfer = transfer_merge(&r, parts, part_of, by_shard, n_shards, culprit);
		if (!r.e)
			*culprit = keep;
	}
done:
	free(by_shard);
	free(part_of);
	if (r.e)
		qa_part_merged_free(out);
	return r.e;
}
