/*
 * manifest.c - computing, reading, writing and comparing manifests.
 *
 * Computation streams.  The whole-file and metadata digests are one
 * sequential SHA-256 stream on their own thread, reading the file in 1 MiB
 * slices.  The tensors are read in windows of about 4 MiB (whole blocks) in
 * manifest order, double-buffered; each window is one batch on the thread
 * pool whose items are: the tensor-digest update, the all-data-digest
 * update, the previous window's Merkle update and block index records, the
 * read of the next window, and the window's block digests in chunks.
 * Memory is two windows and their digests, whatever the file's size, unless
 * every block digest is kept for inline output.  Verification hashes no
 * blocks at first: only tensors whose digest differs are read again to
 * locate their divergent blocks (qa_verify_locate).
 */
#define _POSIX_C_SOURCE 200809L
#include "manifest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "blockindex.h"
#include "cursor.h"
#include "gguf.h"
#include "model.h"
#include "remote.h"
#include "pool.h"
#include "safetensors.h"
#include "source.h"
#include "types.h"
#include "json_scan.h"
#include "util.h"
#include "manifest_json.h"


void qa_manifest_hex(const uint8_t digest[QA_SHA256_LEN], char out[65])
{
	qa_hex_encode(digest, QA_SHA256_LEN, out);
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
	free(m->index_file);
	free(m);
}

/* ------------------------------------------------------------ computing */

/* Window of tensor bytes read at a time (rounded down to whole blocks),
 * and blocks per work item within a window. */
#define WINDOW_BYTES ((uint64_t)4 << 20)
#define CHUNK_BLOCKS 2048u
/* Slice of the whole-file stream. */
#define FILE_SLICE ((size_t)1 << 20)

/* The whole-file digest and the metadata digest: one sequential stream. */
struct file_job {
	struct qa_source *rs;
	uint64_t size, data_offset;
	uint8_t *sha256, *metadata_sha256;
	enum qa_err err;
	struct qa_diag d;
};

static void *file_thread(void *arg)
{
	struct file_job *j = arg;
	struct qa_sha256_stream *s = qa_sha256_stream_init(), *ms = qa_sha256_stream_init();
	uint8_t *buf = malloc(FILE_SLICE);
	j->err = QA_OK;
	if (!s || !ms || !buf) {
		j->err = qa_diag_set(&j->d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (uint64_t off = 0; off < j->size; off += FILE_SLICE) {
		size_t len = j->size - off < FILE_SLICE ? (size_t)(j->size - off) : FILE_SLICE;
		if ((j->err = qa_source_read(j->rs, off, len, buf, "file", &j->d)))
			goto done;
		qa_sha256_stream_update(s, buf, len);
		if (off < j->data_offset)
			qa_sha256_stream_update(ms, buf, j->data_offset - off < len ? (size_t)(j->data_offset - off) : len);
	}
	if (qa_sha256_stream_final(s, j->sha256) || qa_sha256_stream_final(ms, j->metadata_sha256))
		j->err = qa_diag_set(&j->d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
done:
	free(buf);
	qa_sha256_stream_free(s);
	qa_sha256_stream_free(ms);
	return NULL;
}

/* An open file's readers: the format reader (header, split GGUF shards) and,
 * for a local file, a pread stream that nothing maps. */
struct opened {
	struct qa_source *reader_src, *stream;
	struct qa_gguf *g;
	struct qa_st *st;
	bool split;               /* a split GGUF: tensors live in several files */
	struct qa_source *rs;     /* where the file's own bytes are read from */
	uint64_t data_offset;
};

static void opened_close(struct opened *o)
{
	qa_source_close(o->stream);
	qa_gguf_close(o->g);
	qa_source_close(o->reader_src);
	qa_st_close(o->st);
	memset(o, 0, sizeof *o);
}

/* len bytes at off of tensor i into buf. */
static enum qa_err tensor_read(struct opened *o, const struct qa_manifest_tensor *t, size_t i,
                               uint64_t off, size_t len, void *buf, struct qa_diag *d)
{
	if (o->split)
		return qa_gguf_tensor_read(o->g, qa_gguf_tensor_at(o->g, i), off, len, buf, d);
	return qa_source_read(o->rs, o->data_offset + t->offset + off, len, buf, "tensor data", d);
}

/* One window: bytes [off, off+len) of tensor t, blocks [first, first+count). */
struct window {
	bool valid;
	size_t t;
	uint64_t off, len, first, count;
	bool last;          /* the tensor's last window */
};

/* The tensor pipeline's state, shared by the work items of one batch. */
struct pipe {
	struct qa_manifest *m;
	const struct qa_manifest_opts *o;
	struct opened *f;
	struct qa_blockhasher **hashers;
	uint8_t *buf[2], *dig[2];
	struct window cur, prev, next;
	unsigned k;                                  /* batch number: cur uses buf/dig[k % 2] */
	struct qa_sha256_stream *tsha, *msha, *dsha; /* tensor, Merkle, all-data streams */
	struct qa_blockindex_writer *index;          /* NULL when none is written */
	const uint8_t *sel;                          /* tensors to read (NULL: all) */
	size_t n_chunks;
	enum qa_err err[4];                          /* per fixed item */
	struct qa_diag d[4];
};

enum { ITEM_TENSOR, ITEM_DATA, ITEM_MERKLE, ITEM_READ, ITEM_FIXED };

static enum qa_err reopen(struct qa_sha256_stream **s, struct qa_diag *d)
{
	qa_sha256_stream_free(*s);
	*s = qa_sha256_stream_init();
	return *s ? QA_OK : qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
}

/* Finish stream *s into out (a tensor's digest or Merkle root) and start a
 * new stream in its place for the next tensor. */
static enum qa_err finish_reopen(struct qa_sha256_stream **s, uint8_t *out, struct qa_diag *d)
{
	if (qa_sha256_stream_final(*s, out))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
	return reopen(s, d);
}

static enum qa_err read_window(struct pipe *p, const struct window *w, uint8_t *buf, struct qa_diag *d)
{
	return tensor_read(p->f, &p->m->tensors[w->t], w->t, w->off, (size_t)w->len, buf, d);
}

static enum qa_err pipe_item(void *ctx, size_t i, unsigned worker)
{
	struct pipe *p = ctx;
	const uint8_t *data = p->buf[p->k % 2];
	struct qa_manifest_tensor *t = p->cur.valid ? &p->m->tensors[p->cur.t] : NULL;
	switch (i) {
	case ITEM_TENSOR:
		if (!t)
			return QA_OK;
		qa_sha256_stream_update(p->tsha, data, (size_t)p->cur.len);
		if (p->cur.last)
			return p->err[i] = finish_reopen(&p->tsha, t->sha256, &p->d[i]);
		return QA_OK;
	case ITEM_DATA:
		if (t && p->o->data_digest)
			qa_sha256_stream_update(p->dsha, data, (size_t)p->cur.len);
		return QA_OK;
	case ITEM_MERKLE: {
		if (!p->prev.valid || p->o->no_blocks)
			return QA_OK;
		struct qa_manifest_tensor *pt = &p->m->tensors[p->prev.t];
		const uint8_t *dg = p->dig[(p->k + 1) % 2];
		size_t n = (size_t)p->prev.count * QA_SHA256_LEN;
		qa_sha256_stream_update(p->msha, dg, n);
		if (p->index)
			qa_blockindex_writer_add(p->index, dg, p->prev.count);
		if (p->o->keep_blocks && pt->blocks)
			memcpy(pt->blocks + p->prev.first * QA_SHA256_LEN, dg, n);
		if (p->prev.last)
			return p->err[i] = finish_reopen(&p->msha, pt->merkle, &p->d[i]);
		return QA_OK;
	}
	case ITEM_READ:
		if (!p->next.valid)
			return QA_OK;
		return p->err[i] = read_window(p, &p->next, p->buf[(p->k + 1) % 2], &p->d[i]);
	default: {
		if (!t)
			return QA_OK;
		uint64_t c = (uint64_t)(i - ITEM_FIXED) * CHUNK_BLOCKS;
		uint64_t n = p->cur.count - c < CHUNK_BLOCKS ? p->cur.count - c : CHUNK_BLOCKS;
		/* the window starts at block cur.first: hash relative to it */
		return qa_blockhasher_blocks(p->hashers[worker], data, p->cur.len, t->block_bytes, c, n,
		                             p->dig[p->k % 2] + c * QA_SHA256_LEN);
	}
	}
}

/* The window after w (or the first when w is not valid), skipping empty
 * tensors and those sel (when not NULL) leaves out. */
static struct window next_window(const struct qa_manifest *m, const uint8_t *sel, const struct window *w)
{
	struct window n = { 0 };
	size_t t = w->valid ? w->t : 0;
	uint64_t off = w->valid ? w->off + w->len : 0;
	for (; t < m->n; t++, off = 0) {
		const struct qa_manifest_tensor *mt = &m->tensors[t];
		if (off >= mt->nbytes || (sel && !sel[t]))
			continue;
		uint64_t bb = mt->block_bytes ? mt->block_bytes : mt->nbytes;
		uint64_t win = WINDOW_BYTES / bb * bb;
		if (win == 0)
			win = bb;
		n.valid = true;
		n.t = t;
		n.off = off;
		n.len = mt->nbytes - off < win ? mt->nbytes - off : win;
		n.last = off + n.len == mt->nbytes;
		n.first = mt->block_bytes ? off / mt->block_bytes : 0;
		n.count = mt->block_bytes ? qa_blockhash_n_blocks(n.len, mt->block_bytes) : 0;
		return n;
	}
	return n;
}

/* Digests of the tensors with no bytes (no window visits them). */
static enum qa_err empty_tensors(struct qa_manifest *m, bool blocks, struct qa_diag *d)
{
	enum qa_err e = QA_OK;
	for (size_t i = 0; i < m->n && !e; i++)
		if (m->tensors[i].nbytes == 0 && !(e = qa_sha256("", 0, m->tensors[i].sha256, d)) && blocks)
			e = qa_sha256("", 0, m->tensors[i].merkle, d);
	return e;
}

static enum qa_err run_pipe(struct pipe *p, unsigned n_threads, struct qa_diag *d)
{
	struct qa_manifest *m = p->m;
	uint64_t max_len = 0, max_blocks = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct qa_manifest_tensor *t = &m->tensors[i];
		uint64_t bb = t->block_bytes ? t->block_bytes : t->nbytes;
		if (bb == 0)
			continue;
		uint64_t win = WINDOW_BYTES / bb * bb;
		if (win == 0)
			win = bb;
		uint64_t len = t->nbytes < win ? t->nbytes : win;
		if (len > max_len)
			max_len = len;
		uint64_t nb = t->block_bytes ? qa_blockhash_n_blocks(len, t->block_bytes) : 0;
		if (nb > max_blocks)
			max_blocks = nb;
	}
	if (max_len > SIZE_MAX / 2 || max_blocks > SIZE_MAX / 64)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "block too large");
	for (int i = 0; i < 2; i++) {
		p->buf[i] = malloc(max_len ? (size_t)max_len : 1);
		p->dig[i] = malloc(max_blocks ? (size_t)max_blocks * QA_SHA256_LEN : 1);
		if (!p->buf[i] || !p->dig[i])
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	enum qa_err e;
	if ((e = reopen(&p->tsha, d)) || (e = reopen(&p->msha, d)) || (e = reopen(&p->dsha, d)))
		return e;
	p->cur = next_window(m, p->sel, &(struct window){ 0 });
	if (p->cur.valid && (e = read_window(p, &p->cur, p->buf[0], d)))
		return e;
	p->k = 0;
	while (p->cur.valid || (p->prev.valid && !p->o->no_blocks)) {
		p->next = p->cur.valid ? next_window(m, p->sel, &p->cur) : (struct window){ 0 };
		if (p->cur.valid && p->cur.off == 0 && p->o->keep_blocks && !p->o->no_blocks) {
			struct qa_manifest_tensor *t = &m->tensors[p->cur.t];
			free(t->blocks);
			t->blocks = malloc(t->n_blocks ? (size_t)t->n_blocks * QA_SHA256_LEN : 1);
			if (!t->blocks)
				return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		}
		p->n_chunks = p->cur.valid && !p->o->no_blocks
		                      ? (size_t)((p->cur.count + CHUNK_BLOCKS - 1) / CHUNK_BLOCKS) : 0;
		memset(p->err, 0, sizeof p->err);
		e = qa_pool_run(n_threads, ITEM_FIXED + p->n_chunks, pipe_item, p);
		for (int i = 0; i < ITEM_FIXED; i++)
			if (p->err[i]) {
				if (d)
					*d = p->d[i];
				return p->err[i];
			}
		if (e)
			return qa_diag_set(d, e, QA_NO_OFFSET, "sha-256 failed");
		p->prev = p->cur;
		p->cur = p->next;
		p->k++;
	}
	if (p->o->data_digest && qa_sha256_stream_final(p->dsha, m->tensor_data_sha256))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
	return QA_OK;
}

/* The file's tensors as (name, type, shape, offset, nbytes) records. */
static enum qa_err collect(const char *path, struct opened *o, struct qa_manifest *m, struct qa_diag *d)
{
	struct qa_source **reader_src = &o->reader_src;
	struct qa_gguf **g = &o->g;
	struct qa_st **st = &o->st;
	enum qa_format fmt;
	enum qa_err e = qa_format_detect(path, &fmt, d);
	if (e)
		return e;
	if (fmt == QA_FORMAT_GGUF) {
		if ((e = qa_source_open_file(reader_src, path, d)) || (e = qa_gguf_open(g, *reader_src, d)))
			return e;
		m->n = qa_gguf_n_tensors(*g);
		m->data_offset = qa_gguf_data_offset(*g);
		uint64_t count = 0;
		o->split = qa_gguf_get_u64(*g, "split.count", &count) && count > 1;
	} else {
		if ((e = qa_st_open(st, path, d)))
			return e;
		if (qa_st_n_shards(*st) != 1)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "a sharded checkpoint has %zu files: hash each shard on its own",
			                   qa_st_n_shards(*st));
		m->n = qa_st_n_tensors(*st);
		m->data_offset = qa_st_header_len(*st, 0);
	}
	m->format = qa_str_dup(fmt == QA_FORMAT_GGUF ? "gguf" : "safetensors");
	m->tensors = calloc(m->n ? m->n : 1, sizeof *m->tensors);
	if (!m->format || !m->tensors)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	struct qa_source *src = *g ? *reader_src : qa_st_shard_source(*st, 0);
	m->size = qa_source_size(src);
	for (size_t i = 0; i < m->n; i++) {
		struct qa_manifest_tensor *t = &m->tensors[i];
		if (*g) {
			const struct qa_gguf_tensor *s = qa_gguf_tensor_at(*g, i);
			const struct qa_type_info *ti = qa_type_get(s->type);
			t->name = qa_str_dup(s->name);
			t->type = qa_str_dup(ti->name);
			t->n_dims = s->n_dims;
			memcpy(t->shape, s->ne, sizeof s->ne);
			t->offset = s->offset;
			t->nbytes = s->nbytes;
			t->block_bytes = qa_blockhash_block_bytes(ti);
		} else {
			const struct qa_st_tensor *s = qa_st_tensor_at(*st, i);
			int es = qa_st_dtype_size(s->dtype);
			t->name = qa_str_dup(s->name);
			t->type = qa_str_dup(s->dtype);
			t->n_dims = s->n_dims;
			memcpy(t->shape, s->shape, sizeof t->shape);
			t->offset = s->begin;
			t->nbytes = s->end - s->begin;
			t->block_bytes = (uint64_t)(es > 0 ? es : 1) * QA_HASH_BLOCK_ELEMS;
		}
		if (!t->name || !t->type)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		uint64_t start = 0, end;
		if (!o->split && (!qa_add_u64(m->data_offset, t->offset, &start) ||
		                  !qa_add_u64(start, t->nbytes, &end) || end > m->size))
			return qa_diag_set(d, QA_ERR_FORMAT, start, "tensor %zu's data lies past the end of the file", i);
		t->n_blocks = qa_blockhash_n_blocks(t->nbytes, t->block_bytes);
	}
	o->data_offset = m->data_offset;
	/* local files are read again with pread (nothing mapped stays resident);
	 * a remote file is read through the reader's source and its cache */
	o->rs = src;
	if (!qa_remote_is_url(path)) {
		if ((e = qa_source_open_stream(&o->stream, path, d)))
			return e;
		if (qa_source_size(o->stream) != m->size)
			return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "file changed while being opened");
		o->rs = o->stream;
	}
	return QA_OK;
}

enum qa_err qa_manifest_compute_opts(const char *path, const struct qa_manifest_opts *o,
                                     struct qa_manifest **out, struct qa_diag *d)
{
	struct opened f = { 0 };
	struct pipe p = { 0 };
	unsigned n_threads = o->n_threads ? o->n_threads : qa_pool_default_threads();
	struct qa_manifest *m = calloc(1, sizeof *m);
	enum qa_err e;
	bool f_started = false;
	pthread_t ft;
	struct file_job fj = { 0 };
	if (!m || !(m->path = qa_str_dup(path))) {
		free(m);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	if ((e = collect(path, &f, m, d)))
		goto done;
	struct qa_source *rs = f.rs;
	p.hashers = calloc(n_threads, sizeof *p.hashers);
	if (!p.hashers) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (unsigned i = 0; i < n_threads; i++)
		if (!(p.hashers[i] = qa_blockhasher_init())) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
	if (o->select) {
		uint8_t *sel = calloc(m->n + 1, 1);
		if (!sel) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
		for (size_t i = 0; i < m->n; i++)
			sel[i] = o->select(o->select_ctx, &m->tensors[i]);
		p.sel = sel;
	}
	fj = (struct file_job){ rs, m->size, m->data_offset < m->size ? m->data_offset : m->size,
	                        m->sha256, m->metadata_sha256, QA_OK, { 0 } };
	if (!o->no_file) {
		f_started = pthread_create(&ft, NULL, file_thread, &fj) == 0;
		if (!f_started)
			file_thread(&fj);
	}
	p.m = m;
	p.o = o;
	p.f = &f;
	e = empty_tensors(m, !o->no_blocks, d);
	if (!e && o->index && !o->no_blocks) {
		uint64_t *counts = malloc((m->n ? m->n : 1) * sizeof *counts);
		for (size_t i = 0; counts && i < m->n; i++)
			counts[i] = m->tensors[i].n_blocks;
		e = counts ? qa_blockindex_writer_open(&p.index, o->index_fd, QA_BLOCKINDEX_DIGEST_BYTES, m->n,
		                                       counts, d)
		           : qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		free(counts);
	}
	if (!e)
		e = run_pipe(&p, n_threads, d);
	if (!e && p.index && !(e = qa_blockindex_writer_finish(p.index, &m->index_size, m->index_sha256, d))) {
		m->has_index = true;
		m->index_digest_bytes = QA_BLOCKINDEX_DIGEST_BYTES;
	}
	if (f_started)
		pthread_join(ft, NULL);
	if (!e && fj.err) {
		e = fj.err;
		if (d)
			*d = fj.d;
	}
	m->has_tensor_data_sha256 = o->data_digest;
	m->has_blocks = o->keep_blocks && !o->no_blocks;
done:
	for (int i = 0; i < 2; i++) {
		free(p.buf[i]);
		free(p.dig[i]);
	}
	qa_sha256_stream_free(p.tsha);
	qa_sha256_stream_free(p.msha);
	qa_sha256_stream_free(p.dsha);
	qa_blockindex_writer_free(p.index);
	free((void *)p.sel);
	if (p.hashers)
		for (unsigned i = 0; i < n_threads; i++)
			qa_blockhasher_free(p.hashers[i]);
	free(p.hashers);
	opened_close(&f);
	if (e) {
		qa_manifest_free(m);
		return e;
	}
	*out = m;
	return QA_OK;
}

enum qa_err qa_manifest_compute(const char *path, bool keep_blocks, bool data_digest,
                                unsigned n_threads, struct qa_manifest **out,
                                struct qa_diag *d)
{
	struct qa_manifest_opts o = { keep_blocks, data_digest, false, n_threads, false, -1, NULL, NULL, false };
	return qa_manifest_compute_opts(path, &o, out, d);
}

/* ------------------------------------------------------------ JSON */

json_t *qa_manifest_to_json(const struct qa_manifest *m)
{
	json_t *root = json_object(), *file = json_object(), *ts = json_array();
	json_object_set_new(root, "schema", json_string(QA_MANIFEST_SCHEMA));
	json_object_set_new(file, "path", json_string(m->path));
	json_object_set_new(file, "format", json_string(m->format));
	json_object_set_new(file, "size", qa_json_u64(m->size));
	json_object_set_new(file, "sha256", qa_json_hex(m->sha256, QA_SHA256_LEN));
	json_object_set_new(root, "file", file);
	json_object_set_new(root, "metadata_sha256", qa_json_hex(m->metadata_sha256, QA_SHA256_LEN));
	if (m->has_index) {
		json_t *bi = json_object();
		json_object_set_new(bi, "schema", json_string(QA_BLOCKINDEX_SCHEMA));
		json_object_set_new(bi, "file", json_string(m->index_file));
		json_object_set_new(bi, "digest_bytes", json_integer((json_int_t)m->index_digest_bytes));
		json_object_set_new(bi, "size", qa_json_u64(m->index_size));
		json_object_set_new(bi, "sha256", qa_json_hex(m->index_sha256, QA_SHA256_LEN));
		json_object_set_new(root, "block_index", bi);
	}
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
		json_object_set_new(o, "sha256", qa_json_hex(t->sha256, QA_SHA256_LEN));
		json_object_set_new(o, "blocks", qa_json_u64(t->n_blocks));
		json_object_set_new(o, "block_bytes", qa_json_u64(t->block_bytes));
		json_object_set_new(o, "merkle_root", qa_json_hex(t->merkle, QA_SHA256_LEN));
		if (m->has_blocks && t->blocks) {
			json_t *bl = json_array();
			for (uint64_t b = 0; b < t->n_blocks; b++)
				json_array_append_new(bl, qa_json_hex(t->blocks + b * QA_SHA256_LEN, QA_SHA256_LEN));
			json_object_set_new(o, "block_sha256", bl);
		}
		json_array_append_new(ts, o);
	}
	json_object_set_new(root, "tensors", ts);
	return root;
}

static bool parse_hex(const char *s, uint8_t out[QA_SHA256_LEN])
{
	return s && strlen(s) == 2 * QA_SHA256_LEN && qa_hex_decode(s, out, QA_SHA256_LEN, true);
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

/* The /2 "block_index" object into m; NULL, or why it is refused. */
static const char *parse_index(json_t *o, struct qa_manifest *m)
{
	const char *schema = json_string_value(json_object_get(o, "schema"));
	const char *file = json_string_value(json_object_get(o, "file"));
	uint64_t db;
	if (!json_is_object(o) || !schema || strcmp(schema, QA_BLOCKINDEX_SCHEMA) != 0)
		return "manifest: block_index needs schema " QA_BLOCKINDEX_SCHEMA;
	/* a bare file name beside the manifest: no directories, no way out */
	if (!file || !*file || strlen(file) > 255 || strchr(file, '/') || strcmp(file, ".") == 0 ||
	    strcmp(file, "..") == 0)
		return "manifest: block_index file must be a plain file name";
	if (!get_u64(o, "digest_bytes", &db) || db < 4 || db > QA_SHA256_LEN)
		return "manifest: block_index digest_bytes must be 4..32";
	if (!get_u64(o, "size", &m->index_size) ||
	    !parse_hex(json_string_value(json_object_get(o, "sha256")), m->index_sha256))
		return "manifest: block_index needs size and sha256";
	if (!(m->index_file = qa_str_dup(file)))
		return "out of memory";
	m->index_digest_bytes = (unsigned)db;
	m->has_index = true;
	return NULL;
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
	bool v2 = strcmp(schema, QA_MANIFEST_SCHEMA) == 0;
	if (!v2 && strcmp(schema, QA_MANIFEST_SCHEMA_V1) != 0) {
		e = qa_diag_set(d, QA_ERR_FORMAT, 0, "unknown manifest schema '%.64s' (expected %s or %s)",
		                schema, QA_MANIFEST_SCHEMA, QA_MANIFEST_SCHEMA_V1);
		goto fail;
	}
	json_t *bix = v2 ? json_object_get(root, "block_index") : NULL;
	if (bix && (why = parse_index(bix, m)))
		goto bad;
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

const struct qa_manifest_tensor *qa_manifest_find(const struct qa_manifest *m, const char *name)
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
		const struct qa_manifest_tensor *w = &want->tensors[i], *g = qa_manifest_find(got, w->name);
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
		if (!qa_manifest_find(want, got->tensors[i].name))
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

/* ------------------------------------------------------------ locating blocks */

enum qa_err qa_manifest_open_index(const struct qa_manifest *want, const char *manifest_path,
                                   struct qa_source **src, struct qa_blockindex **bi,
                                   struct qa_diag *d)
{
	*src = NULL;
	*bi = NULL;
	if (!want->has_index)
		return QA_OK;
	char *dir = qa_path_dir(manifest_path);
	char *path = dir ? qa_path_join(dir, want->index_file) : NULL;
	free(dir);
	if (!path)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	enum qa_err e = qa_source_open_stream(src, path, d);
	free(path);
	if (e)
		return qa_diag_prefix(d, e, "block index");
	uint8_t sha[QA_SHA256_LEN];
	if (qa_source_size(*src) != want->index_size)
		e = qa_diag_set(d, QA_ERR_FORMAT, 0, "block index %s has %llu bytes, the manifest says %llu",
		                want->index_file, (unsigned long long)qa_source_size(*src),
		                (unsigned long long)want->index_size);
	else if (!(e = qa_blockindex_open(bi, *src, d)) && !(e = qa_blockindex_sha256(*bi, sha, d)) &&
	         memcmp(sha, want->index_sha256, QA_SHA256_LEN) != 0)
		e = qa_diag_set(d, QA_ERR_FORMAT, 0, "block index %s does not match the manifest's sha256 of it",
		                want->index_file);
	if (!e && (qa_blockindex_digest_bytes(*bi) != want->index_digest_bytes ||
	           qa_blockindex_n_tensors(*bi) != want->n))
		e = qa_diag_set(d, QA_ERR_FORMAT, 0, "block index %s does not describe the manifest's tensors",
		                want->index_file);
	for (size_t i = 0; !e && i < want->n; i++)
		if (qa_blockindex_blocks(*bi, i) != want->tensors[i].n_blocks)
			e = qa_diag_set(d, QA_ERR_FORMAT, QA_BLOCKINDEX_HEADER + (uint64_t)i * 8,
			                "block index: tensor %zu has %llu blocks, the manifest says %llu", i,
			                (unsigned long long)qa_blockindex_blocks(*bi, i),
			                (unsigned long long)want->tensors[i].n_blocks);
	if (e) {
		qa_blockindex_free(*bi);
		qa_source_close(*src);
		*bi = NULL;
		*src = NULL;
	}
	return e;
}

/* One window of a tensor being located: blocks [first, first+count) read
 * into data, their records into rec; chunks compare in parallel. */
struct locate_job {
	const uint8_t *data, *rec;
	uint64_t len, block_bytes, count;
	unsigned rec_bytes;
	struct qa_blockhasher **hashers;
	uint64_t *diverge;       /* per chunk: divergent blocks */
	uint64_t *first;         /* per chunk: first divergent (relative), or UINT64_MAX */
};

#define LOCATE_CHUNK 1024u

static enum qa_err locate_item(void *ctx, size_t i, unsigned worker)
{
	struct locate_job *j = ctx;
	uint64_t c = (uint64_t)i * LOCATE_CHUNK;
	uint64_t n = j->count - c < LOCATE_CHUNK ? j->count - c : LOCATE_CHUNK;
	uint8_t dg[LOCATE_CHUNK * QA_SHA256_LEN];
	j->diverge[i] = 0;
	j->first[i] = UINT64_MAX;
	enum qa_err e = qa_blockhasher_blocks(j->hashers[worker], j->data, j->len, j->block_bytes, c, n, dg);
	if (e)
		return e;
	for (uint64_t b = 0; b < n; b++)
		if (memcmp(dg + b * QA_SHA256_LEN, j->rec + (c + b) * j->rec_bytes, j->rec_bytes) != 0) {
			if (j->first[i] == UINT64_MAX)
				j->first[i] = c + b;
			j->diverge[i]++;
		}
	return QA_OK;
}

/* Compare the blocks of the file's tensor gi (g, read through f) with want's w (wi). */
static enum qa_err locate_one(struct qa_verify_item *it, struct opened *f, size_t gi,
                              const struct qa_manifest_tensor *g, const struct qa_manifest_tensor *w,
                              size_t wi, struct qa_blockindex *bi,
                              unsigned n_threads, struct qa_blockhasher **hashers, struct qa_diag *d)
{
	uint64_t bb = g->block_bytes;
	uint64_t n = g->n_blocks < w->n_blocks ? g->n_blocks : w->n_blocks;
	unsigned rb = w->blocks ? QA_SHA256_LEN : qa_blockindex_digest_bytes(bi);
	uint64_t per = bb ? (WINDOW_BYTES / bb ? WINDOW_BYTES / bb : 1) : 0;
	if (bb == 0 || n == 0) {
		/* nothing to compare block by block */
		it->blocks_known = true;
		it->blocks_compared = 0;
		it->divergent_blocks = g->n_blocks > w->n_blocks ? g->n_blocks : w->n_blocks;
		it->first_divergent = it->divergent_blocks ? 0 : UINT64_MAX;
		return QA_OK;
	}
	size_t n_chunks = (size_t)((per + LOCATE_CHUNK - 1) / LOCATE_CHUNK);
	uint8_t *data = malloc((size_t)(per * bb)), *rec = malloc((size_t)(per * rb));
	uint64_t *dv = calloc(n_chunks, sizeof *dv), *fs = calloc(n_chunks, sizeof *fs);
	enum qa_err e = QA_OK;
	if (!data || !rec || !dv || !fs) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	it->blocks_known = true;
	it->blocks_compared = n;
	for (uint64_t b = 0; b < n; b += per) {
		uint64_t count = n - b < per ? n - b : per;
		uint64_t off = b * bb, len = g->nbytes - off < count * bb ? g->nbytes - off : count * bb;
		if ((e = tensor_read(f, g, gi, off, (size_t)len, data, d)))
			goto done;
		if (w->blocks)
			memcpy(rec, w->blocks + b * QA_SHA256_LEN, (size_t)count * QA_SHA256_LEN);
		else if ((e = qa_blockindex_read(bi, wi, b, count, rec, d)))
			goto done;
		struct locate_job j = { data, rec, len, bb, count, rb, hashers, dv, fs };
		size_t items = (size_t)((count + LOCATE_CHUNK - 1) / LOCATE_CHUNK);
		if ((e = qa_pool_run(n_threads, items, locate_item, &j))) {
			e = qa_diag_set(d, e, QA_NO_OFFSET, "sha-256 failed");
			goto done;
		}
		for (size_t c = 0; c < items; c++) {
			if (it->first_divergent == UINT64_MAX && fs[c] != UINT64_MAX)
				it->first_divergent = b + fs[c];
			it->divergent_blocks += dv[c];
		}
	}
	uint64_t extra = (g->n_blocks > n ? g->n_blocks : w->n_blocks) - n;
	if (extra && it->first_divergent == UINT64_MAX)
		it->first_divergent = n;
	it->divergent_blocks += extra;
done:
	free(data);
	free(rec);
	free(dv);
	free(fs);
	return e;
}

enum qa_err qa_verify_locate(struct qa_verify *v, const struct qa_manifest *got,
                             const struct qa_manifest *want, struct qa_blockindex *bi,
                             const char *path, unsigned n_threads, struct qa_diag *d)
{
	struct opened f = { 0 };
	struct qa_manifest *now = NULL;   /* the file's tensors as opened again */
	struct qa_blockhasher **hashers = NULL;
	enum qa_err e = QA_OK;
	if (n_threads == 0)
		n_threads = qa_pool_default_threads();
	for (size_t i = 0; i < v->n_items && !e; i++) {
		struct qa_verify_item *it = &v->items[i];
		if ((it->kind != QA_VERIFY_MISMATCH && it->kind != QA_VERIFY_SHAPE) || it->blocks_known)
			continue;
		const struct qa_manifest_tensor *w = qa_manifest_find(want, it->name);
		size_t wi = w ? (size_t)(w - want->tensors) : 0;
		if (!qa_manifest_find(got, it->name) || !w ||
		    (!w->blocks && !(bi && wi < qa_blockindex_n_tensors(bi) && qa_blockindex_blocks(bi, wi) == w->n_blocks)))
			continue;
		if (!now) {
			if (!(now = calloc(1, sizeof *now))) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				break;
			}
			if ((e = collect(path, &f, now, d)))
				break;
			hashers = calloc(n_threads, sizeof *hashers);
			for (unsigned k = 0; hashers && k < n_threads; k++)
				if (!(hashers[k] = qa_blockhasher_init()))
					e = QA_ERR_NOMEM;
			if (!hashers || e) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				break;
			}
		}
		const struct qa_manifest_tensor *g = qa_manifest_find(now, it->name);
		if (!g) {
			e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "file changed while being verified");
			break;
		}
		it->first_divergent = UINT64_MAX;
		it->divergent_blocks = 0;
		e = locate_one(it, &f, (size_t)(g - now->tensors), g, w, wi, bi, n_threads, hashers, d);
	}
	if (hashers)
		for (unsigned k = 0; k < n_threads; k++)
			qa_blockhasher_free(hashers[k]);
	free(hashers);
	opened_close(&f);
	qa_manifest_free(now);
	return e;
}

char *qa_manifest_json_text(const struct qa_manifest *m)
{
	json_t *j = qa_manifest_to_json(m);
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	return s;
}
