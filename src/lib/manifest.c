/*
 * manifest.c - computing, reading, writing and comparing manifests.
 *
 * Computation is organised in batches of consecutive tensors holding up to
 * about a million blocks (32 MiB of digests).  Within a batch the work items
 * are each tensor's whole digest plus its blocks in chunks, spread over the
 * thread pool; Merkle roots are taken when the batch is done, and block
 * digests are then dropped unless the caller keeps them.  The whole-file
 * digest (and, on request, the digest of all tensor data) run meanwhile on
 * their own threads, since each is one sequential SHA-256 stream.
 */
#define _POSIX_C_SOURCE 200809L
#include "manifest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "model.h"
#include "pool.h"
#include "safetensors.h"
#include "source.h"
#include "types.h"
#include "json_scan.h"
#include "util.h"
#include "manifest_json.h"

#define BLOCKS_PER_CHUNK 4096u
#define BATCH_BLOCKS (1u << 20)

void qa_manifest_hex(const uint8_t digest[QA_SHA256_LEN], char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < QA_SHA256_LEN; i++) {
		out[2 * i] = digits[digest[i] >> 4];
		out[2 * i + 1] = digits[digest[i] & 15];
	}
	out[64] = '\0';
}

void qa_manifest_free(struct qa_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->tensors[i].name);
		free(m->tensors[i].type);
		free(m->tensors[i].blocks);
	}
	free(m->tensors);
	free(m->path);
	free(m->format);
	free(m);
}

/* ------------------------------------------------------------ computing */

struct stream_job {
	const uint8_t *data;    /* whole file */
	uint64_t size;
	const struct qa_manifest *m;
	const uint8_t *const *tensor_data;
	uint8_t *out;
	bool all_tensors;       /* digest of tensor data instead of the file */
	bool ok;
};

static void *stream_thread(void *arg)
{
	struct stream_job *j = arg;
	struct qa_sha256_stream *s = qa_sha256_stream_init();
	if (!s)
		return NULL;
	if (j->all_tensors) {
		for (size_t i = 0; i < j->m->n; i++)
			qa_sha256_stream_update(s, j->tensor_data[i], (size_t)j->m->tensors[i].nbytes);
	} else {
		/* feed in 64 MiB slices so that size_t never truncates */
		for (uint64_t off = 0; off < j->size; off += 1u << 26) {
			uint64_t len = j->size - off < (1u << 26) ? j->size - off : (1u << 26);
			qa_sha256_stream_update(s, j->data + off, (size_t)len);
		}
	}
	j->ok = qa_sha256_stream_final(s, j->out) == QA_OK;
	qa_sha256_stream_free(s);
	return NULL;
}

struct work_item {
	size_t tensor;
	bool whole;        /* the tensor digest, else a chunk of blocks */
	uint64_t first, count;
};

struct batch_job {
	struct qa_manifest *m;
	const uint8_t *const *tensor_data;
	struct work_item *items;
	struct qa_blockhasher **hashers;
};

static enum qa_err batch_item(void *ctx, size_t i, unsigned worker)
{
	struct batch_job *b = ctx;
	const struct work_item *w = &b->items[i];
	struct qa_manifest_tensor *t = &b->m->tensors[w->tensor];
	const uint8_t *data = b->tensor_data[w->tensor];
	if (w->whole)
		return qa_blockhasher_whole(b->hashers[worker], data, (size_t)t->nbytes, t->sha256);
	return qa_blockhasher_blocks(b->hashers[worker], data, t->nbytes, t->block_bytes,
	                             w->first, w->count, t->blocks + w->first * QA_SHA256_LEN);
}

/* Hash tensors [lo, hi) of m: digests, blocks and Merkle roots. */
static enum qa_err hash_batch(struct qa_manifest *m, const uint8_t *const *tensor_data,
                              size_t lo, size_t hi, bool keep_blocks, unsigned n_threads,
                              struct qa_blockhasher **hashers, struct qa_diag *d)
{
	size_t n_items = 0;
	for (size_t i = lo; i < hi; i++)
		n_items += 1 + (size_t)((m->tensors[i].n_blocks + BLOCKS_PER_CHUNK - 1) / BLOCKS_PER_CHUNK);
	struct work_item *items = calloc(n_items ? n_items : 1, sizeof *items);
	if (!items)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	size_t k = 0;
	enum qa_err e = QA_OK;
	for (size_t i = lo; i < hi; i++) {
		struct qa_manifest_tensor *t = &m->tensors[i];
		t->blocks = malloc(t->n_blocks ? (size_t)t->n_blocks * QA_SHA256_LEN : 1);
		if (!t->blocks) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
		items[k++] = (struct work_item){ i, true, 0, 0 };
		for (uint64_t f = 0; f < t->n_blocks; f += BLOCKS_PER_CHUNK) {
			uint64_t c = t->n_blocks - f < BLOCKS_PER_CHUNK ? t->n_blocks - f : BLOCKS_PER_CHUNK;
			items[k++] = (struct work_item){ i, false, f, c };
		}
	}
	struct batch_job b = { m, tensor_data, items, hashers };
	e = qa_pool_run(n_threads, k, batch_item, &b);
	if (e) {
		e = qa_diag_set(d, e, QA_NO_OFFSET, "sha-256 failed");
		goto done;
	}
	for (size_t i = lo; i < hi; i++) {
		struct qa_manifest_tensor *t = &m->tensors[i];
		if ((e = qa_blockhasher_merkle(hashers[0], t->blocks, t->n_blocks, t->merkle))) {
			e = qa_diag_set(d, e, QA_NO_OFFSET, "sha-256 failed");
			goto done;
		}
		if (!keep_blocks) {
			free(t->blocks);
			t->blocks = NULL;
		}
	}
done:
	free(items);
	return e;
}

/* The file's tensors as (name, type, shape, offset, nbytes, data) records. */
struct opened {
	struct qa_source *src;
	struct qa_gguf *g;
	struct qa_st *st;
	uint64_t data_offset;
};

static enum qa_err collect(const char *path, struct opened *o, struct qa_manifest *m,
                           const uint8_t ***tensor_data, struct qa_diag *d)
{
	enum qa_format fmt;
	enum qa_err e = qa_format_detect(path, &fmt, d);
	if (e)
		return e;
	if (fmt == QA_FORMAT_GGUF) {
		if ((e = qa_source_open_file(&o->src, path, d)) || (e = qa_gguf_open(&o->g, o->src, d)))
			return e;
		m->n = qa_gguf_n_tensors(o->g);
		o->data_offset = qa_gguf_data_offset(o->g);
	} else {
		if ((e = qa_st_open(&o->st, path, d)))
			return e;
		if (qa_st_n_shards(o->st) != 1)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "a sharded checkpoint has %zu files: hash each shard on its own",
			                   qa_st_n_shards(o->st));
		o->src = NULL;
		m->n = qa_st_n_tensors(o->st);
		o->data_offset = qa_st_header_len(o->st, 0);
	}
	m->format = qa_str_dup(fmt == QA_FORMAT_GGUF ? "gguf" : "safetensors");
	m->tensors = calloc(m->n ? m->n : 1, sizeof *m->tensors);
	*tensor_data = calloc(m->n ? m->n : 1, sizeof **tensor_data);
	if (!m->format || !m->tensors || !*tensor_data)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (size_t i = 0; i < m->n; i++) {
		struct qa_manifest_tensor *t = &m->tensors[i];
		const void *p;
		if (o->g) {
			const struct qa_gguf_tensor *s = qa_gguf_tensor_at(o->g, i);
			const struct qa_type_info *ti = qa_type_get(s->type);
			t->name = qa_str_dup(s->name);
			t->type = qa_str_dup(ti->name);
			t->n_dims = s->n_dims;
			memcpy(t->shape, s->ne, sizeof s->ne);
			t->offset = s->offset;
			t->nbytes = s->nbytes;
			t->block_bytes = qa_blockhash_block_bytes(ti);
			e = qa_gguf_tensor_view(o->g, s, &p, d);
		} else {
			const struct qa_st_tensor *s = qa_st_tensor_at(o->st, i);
			int es = qa_st_dtype_size(s->dtype);
			t->name = qa_str_dup(s->name);
			t->type = qa_str_dup(s->dtype);
			t->n_dims = s->n_dims;
			memcpy(t->shape, s->shape, sizeof t->shape);
			t->offset = s->begin;
			t->nbytes = s->end - s->begin;
			t->block_bytes = (uint64_t)(es > 0 ? es : 1) * QA_HASH_BLOCK_ELEMS;
			e = qa_st_tensor_view(o->st, s, &p, d);
		}
		if (e)
			return e;
		if (!t->name || !t->type)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		t->n_blocks = qa_blockhash_n_blocks(t->nbytes, t->block_bytes);
		(*tensor_data)[i] = p;
	}
	return QA_OK;
}

enum qa_err qa_manifest_compute(const char *path, bool keep_blocks, bool data_digest,
                                unsigned n_threads, struct qa_manifest **out,
                                struct qa_diag *d)
{
	struct opened o = { 0 };
	const uint8_t **tensor_data = NULL;
	struct qa_blockhasher **hashers = NULL;
	struct qa_manifest *m = calloc(1, sizeof *m);
	enum qa_err e;
	if (!m || !(m->path = qa_str_dup(path))) {
		free(m);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	if ((e = collect(path, &o, m, &tensor_data, d)))
		goto done;
	struct qa_source *src = o.g ? o.src : qa_st_shard_source(o.st, 0);
	const void *file;
	m->size = qa_source_size(src);
	if ((e = qa_source_view(src, 0, (size_t)m->size, &file, "file", d)))
		goto done;
	if ((e = qa_sha256((const uint8_t *)file, (size_t)o.data_offset, m->metadata_sha256, d)))
		goto done;
	if (n_threads == 0)
		n_threads = qa_pool_default_threads();
	hashers = calloc(n_threads, sizeof *hashers);
	if (!hashers) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (unsigned i = 0; i < n_threads; i++)
		if (!(hashers[i] = qa_blockhasher_init())) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}

	struct stream_job fj = { file, m->size, m, tensor_data, m->sha256, false, false };
	struct stream_job tj = { file, m->size, m, tensor_data, m->tensor_data_sha256, true, false };
	pthread_t ft, tt;
	bool f_started = pthread_create(&ft, NULL, stream_thread, &fj) == 0;
	bool t_started = data_digest && pthread_create(&tt, NULL, stream_thread, &tj) == 0;
	if (!f_started)
		stream_thread(&fj);
	if (data_digest && !t_started)
		stream_thread(&tj);

	for (size_t lo = 0; lo < m->n && !e;) {
		size_t hi = lo;
		uint64_t blocks = 0;
		while (hi < m->n && (hi == lo || blocks + m->tensors[hi].n_blocks <= BATCH_BLOCKS))
			blocks += m->tensors[hi++].n_blocks;
		e = hash_batch(m, tensor_data, lo, hi, keep_blocks, n_threads, hashers, d);
		lo = hi;
	}
	if (f_started)
		pthread_join(ft, NULL);
	if (t_started)
		pthread_join(tt, NULL);
	if (!e && (!fj.ok || (data_digest && !tj.ok)))
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
	m->has_tensor_data_sha256 = data_digest;
	m->has_blocks = keep_blocks;
done:
	if (hashers)
		for (unsigned i = 0; i < n_threads; i++)
			qa_blockhasher_free(hashers[i]);
	free(hashers);
	free(tensor_data);
	qa_gguf_close(o.g);
	qa_source_close(o.src);
	qa_st_close(o.st);
	if (e) {
		qa_manifest_free(m);
		return e;
	}
	*out = m;
	return QA_OK;
}

/* ------------------------------------------------------------ JSON */

static json_t *hex_json(const uint8_t *digest)
{
	char hex[65];
	qa_manifest_hex(digest, hex);
	return json_string(hex);
}

json_t *qa_manifest_to_json(const struct qa_manifest *m)
{
	json_t *root = json_object(), *file = json_object(), *ts = json_array();
	json_object_set_new(root, "schema", json_string(QA_MANIFEST_SCHEMA));
	json_object_set_new(file, "path", json_string(m->path));
	json_object_set_new(file, "format", json_string(m->format));
	json_object_set_new(file, "size", qa_json_u64(m->size));
	json_object_set_new(file, "sha256", hex_json(m->sha256));
	json_object_set_new(root, "file", file);
	json_object_set_new(root, "metadata_sha256", hex_json(m->metadata_sha256));
	for (size_t i = 0; i < m->n; i++) {
		const struct qa_manifest_tensor *t = &m->tensors[i];
		json_t *o = json_object(), *sh = json_array();
		for (uint32_t k = 0; k < t->n_dims; k++)
			json_array_append_new(sh, qa_json_u64(t->shape[k]));
		json_object_set_new(o, "name", json_string(t->name));
		json_object_set_new(o, "type", json_string(t->type));
		json_object_set_new(o, "shape", sh);
		json_object_set_new(o, "offset", qa_json_u64(t->offset));
		json_object_set_new(o, "nbytes", qa_json_u64(t->nbytes));
		json_object_set_new(o, "sha256", hex_json(t->sha256));
		json_object_set_new(o, "blocks", qa_json_u64(t->n_blocks));
		json_object_set_new(o, "block_bytes", qa_json_u64(t->block_bytes));
		json_object_set_new(o, "merkle_root", hex_json(t->merkle));
		if (m->has_blocks && t->blocks) {
			json_t *bl = json_array();
			for (uint64_t b = 0; b < t->n_blocks; b++)
				json_array_append_new(bl, hex_json(t->blocks + b * QA_SHA256_LEN));
			json_object_set_new(o, "block_sha256", bl);
		}
		json_array_append_new(ts, o);
	}
	json_object_set_new(root, "tensors", ts);
	return root;
}

static bool parse_hex(const char *s, uint8_t out[QA_SHA256_LEN])
{
	if (!s || strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		        c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (v < 0)
			return false;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return true;
}

static bool get_u64(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return true;
	}
	return false;
}

enum qa_err qa_manifest_load(const char *path, struct qa_manifest **out, struct qa_diag *d)
{
	struct qa_source *src;
	const void *p;
	enum qa_err e = qa_source_open_file(&src, path, d);
	if (e)
		return e;
	e = qa_source_view(src, 0, (size_t)qa_source_size(src), &p, "manifest", d);
	if (!e)
		e = qa_manifest_parse(p, (size_t)qa_source_size(src), out, d);
	qa_source_close(src);
	return e;
}

enum qa_err qa_manifest_parse(const void *buf, size_t len, struct qa_manifest **out,
                              struct qa_diag *d)
{
	json_error_t jerr;
	json_t *root = json_loadb(buf ? buf : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return qa_diag_set(d, QA_ERR_FORMAT, (uint64_t)(jerr.position > 0 ? jerr.position : 0),
		                   "manifest is not valid json: %s", jerr.text);
	struct qa_manifest *m = calloc(1, sizeof *m);
	enum qa_err e = QA_OK;
	const char *why = NULL;
	if (!m) {
		json_decref(root);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	const char *schema = json_string_value(json_object_get(root, "schema"));
	json_t *file = json_object_get(root, "file"), *ts = json_object_get(root, "tensors");
	if (!json_is_object(root)) { why = "manifest is not a json object"; goto bad; }
	if (!schema) { why = "manifest has no schema"; goto bad; }
	if (strcmp(schema, QA_MANIFEST_SCHEMA) != 0) {
		e = qa_diag_set(d, QA_ERR_FORMAT, 0, "unknown manifest schema '%.64s' (expected %s)",
		                schema, QA_MANIFEST_SCHEMA);
		goto fail;
	}
	if (!json_is_object(file) || !get_u64(file, "size", &m->size) ||
	    !parse_hex(json_string_value(json_object_get(file, "sha256")), m->sha256)) {
		why = "manifest: file needs size and sha256";
		goto bad;
	}
	const char *fpath = json_string_value(json_object_get(file, "path"));
	const char *fmt = json_string_value(json_object_get(file, "format"));
	m->path = qa_str_dup(fpath ? fpath : "");
	m->format = qa_str_dup(fmt ? fmt : "");
	if (!parse_hex(json_string_value(json_object_get(root, "metadata_sha256")), m->metadata_sha256)) {
		why = "manifest: metadata_sha256 missing or not a sha-256 hex digest";
		goto bad;
	}
	if (!json_is_array(ts)) { why = "manifest: tensors is not an array"; goto bad; }
	m->n = json_array_size(ts);
	m->tensors = calloc(m->n ? m->n : 1, sizeof *m->tensors);
	if (!m->tensors || !m->path || !m->format) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto fail;
	}
	m->has_blocks = m->n > 0;
	for (size_t i = 0; i < m->n; i++) {
		json_t *o = json_array_get(ts, i), *sh = json_object_get(o, "shape");
		json_t *bl = json_object_get(o, "block_sha256");
		struct qa_manifest_tensor *t = &m->tensors[i];
		const char *name = json_string_value(json_object_get(o, "name"));
		const char *type = json_string_value(json_object_get(o, "type"));
		if (!json_is_object(o) || !name || !type || !json_is_array(sh) || json_array_size(sh) > 8 ||
		    !get_u64(o, "nbytes", &t->nbytes) || !get_u64(o, "blocks", &t->n_blocks) ||
		    !parse_hex(json_string_value(json_object_get(o, "sha256")), t->sha256) ||
		    !parse_hex(json_string_value(json_object_get(o, "merkle_root")), t->merkle)) {
			e = qa_diag_set(d, QA_ERR_FORMAT, 0,
			                "manifest: tensor %zu needs name, type, shape, nbytes, sha256, blocks and merkle_root", i);
			goto fail;
		}
		get_u64(o, "offset", &t->offset);
		get_u64(o, "block_bytes", &t->block_bytes);
		t->name = qa_str_dup(name);
		t->type = qa_str_dup(type);
		t->n_dims = (uint32_t)json_array_size(sh);
		for (uint32_t k = 0; k < t->n_dims; k++) {
			json_t *dim = json_array_get(sh, k);
			if (!json_is_integer(dim) || json_integer_value(dim) < 0) {
				e = qa_diag_set(d, QA_ERR_FORMAT, 0, "manifest: tensor %s has a bad shape", name);
				goto fail;
			}
			t->shape[k] = (uint64_t)json_integer_value(dim);
		}
		if (!t->name || !t->type) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto fail;
		}
		if (!bl) {
			m->has_blocks = false;
			continue;
		}
		if (!json_is_array(bl) || json_array_size(bl) != t->n_blocks) {
			e = qa_diag_set(d, QA_ERR_FORMAT, 0,
			                "manifest: tensor %s has %zu block digests for %llu blocks", name,
			                json_array_size(bl), (unsigned long long)t->n_blocks);
			goto fail;
		}
		t->blocks = malloc(t->n_blocks ? (size_t)t->n_blocks * QA_SHA256_LEN : 1);
		if (!t->blocks) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto fail;
		}
		for (uint64_t b = 0; b < t->n_blocks; b++)
			if (!parse_hex(json_string_value(json_array_get(bl, b)), t->blocks + b * QA_SHA256_LEN)) {
				e = qa_diag_set(d, QA_ERR_FORMAT, 0,
				                "manifest: tensor %s block %llu is not a sha-256 hex digest", name,
				                (unsigned long long)b);
				goto fail;
			}
	}
	json_decref(root);
	*out = m;
	return QA_OK;
bad:
	e = qa_diag_set(d, QA_ERR_FORMAT, 0, "%s", why);
fail:
	json_decref(root);
	qa_manifest_free(m);
	return e;
}

/* ------------------------------------------------------------ verify */

static const struct qa_manifest_tensor *find(const struct qa_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->tensors[i].name, name) == 0)
			return &m->tensors[i];
	return NULL;
}

enum qa_err qa_verify_compare(const struct qa_manifest *got, const struct qa_manifest *want,
                              struct qa_verify *v, struct qa_diag *d)
{
	memset(v, 0, sizeof *v);
	v->file_match = memcmp(got->sha256, want->sha256, QA_SHA256_LEN) == 0 && got->size == want->size;
	v->metadata_match = memcmp(got->metadata_sha256, want->metadata_sha256, QA_SHA256_LEN) == 0;
	v->items = calloc(got->n + want->n + 1, sizeof *v->items);
	if (!v->items)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (size_t i = 0; i < want->n; i++) {
		const struct qa_manifest_tensor *w = &want->tensors[i], *g = find(got, w->name);
		struct qa_verify_item it = { QA_VERIFY_MISMATCH, w->name, 0, 0, UINT64_MAX, false };
		if (!g) {
			it.kind = QA_VERIFY_MISSING;
			v->items[v->n_items++] = it;
			continue;
		}
		bool same_shape = g->n_dims == w->n_dims && strcmp(g->type, w->type) == 0 &&
		                  g->nbytes == w->nbytes;
		for (uint32_t k = 0; same_shape && k < g->n_dims; k++)
			same_shape = g->shape[k] == w->shape[k];
		if (same_shape && memcmp(g->sha256, w->sha256, QA_SHA256_LEN) == 0) {
			v->n_tensors_ok++;
			continue;
		}
		it.kind = same_shape ? QA_VERIFY_MISMATCH : QA_VERIFY_SHAPE;
		if (g->blocks && w->blocks) {
			uint64_t n = g->n_blocks < w->n_blocks ? g->n_blocks : w->n_blocks;
			it.blocks_known = true;
			it.blocks_compared = n;
			for (uint64_t b = 0; b < n; b++)
				if (memcmp(g->blocks + b * QA_SHA256_LEN, w->blocks + b * QA_SHA256_LEN, QA_SHA256_LEN)) {
					if (it.first_divergent == UINT64_MAX)
						it.first_divergent = b;
					it.divergent_blocks++;
				}
			uint64_t extra = (g->n_blocks > n ? g->n_blocks : w->n_blocks) - n;
			if (extra && it.first_divergent == UINT64_MAX)
				it.first_divergent = n;
			it.divergent_blocks += extra;
		}
		v->items[v->n_items++] = it;
	}
	for (size_t i = 0; i < got->n; i++)
		if (!find(want, got->tensors[i].name))
			v->items[v->n_items++] = (struct qa_verify_item){ QA_VERIFY_EXTRA, got->tensors[i].name,
			                                                  0, 0, UINT64_MAX, false };
	return QA_OK;
}

void qa_verify_free(struct qa_verify *v)
{
	free(v->items);
	v->items = NULL;
	v->n_items = 0;
}

bool qa_verify_ok(const struct qa_verify *v)
{
	return v->file_match && v->metadata_match && v->n_items == 0;
}

char *qa_manifest_json_text(const struct qa_manifest *m)
{
	json_t *j = qa_manifest_to_json(m);
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	return s;
}
