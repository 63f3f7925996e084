/*
 * blockindex.c - writing and reading the block index sidecar (format in
 * blockindex.h).  The writer buffers records and hashes every byte it
 * writes; the reader treats the file as hostile: every count and size is
 * checked against the file's length before use.
 */
#define _POSIX_C_SOURCE 200809L
#include "blockindex.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cursor.h"
#include "util.h"

static const char magic[8] = { 'Q', 'A', 'B', 'L', 'K', 'I', 'D', 'X' };

#define WBUF (64u << 10)

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ------------------------------------------------------------ writer */

struct qa_blockindex_writer {
	int fd;
	unsigned digest_bytes;
	uint64_t expect, written;   /* records */
	uint64_t size;              /* bytes */
	int err;                    /* first errno, 0 when none */
	struct qa_sha256_stream *sha;
	size_t fill;
	uint8_t buf[WBUF];
};

static void flush(struct qa_blockindex_writer *w)
{
	const uint8_t *p = w->buf;
	size_t n = w->fill;
	qa_sha256_stream_update(w->sha, w->buf, w->fill);
	w->fill = 0;
	while (n && !w->err) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			w->err = k < 0 ? errno : EIO;
			break;
		}
		p += k;
		n -= (size_t)k;
	}
}

static void put(struct qa_blockindex_writer *w, const uint8_t *p, size_t n)
{
	while (n) {
		size_t k = WBUF - w->fill < n ? WBUF - w->fill : n;
		memcpy(w->buf + w->fill, p, k);
		w->fill += k;
		w->size += k;
		p += k;
		n -= k;
		if (w->fill == WBUF)
			flush(w);
	}
}

enum qa_err qa_blockindex_writer_open(struct qa_blockindex_writer **out, int fd,
                                      unsigned digest_bytes, size_t n_tensors,
                                      const uint64_t *n_blocks, struct qa_diag *d)
{
	if (digest_bytes < 4 || digest_bytes > QA_SHA256_LEN)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "block index digests of %u bytes", digest_bytes);
	struct qa_blockindex_writer *w = calloc(1, sizeof *w);
	if (!w || !(w->sha = qa_sha256_stream_init())) {
		free(w);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	w->fd = fd;
	w->digest_bytes = digest_bytes;
	for (size_t i = 0; i < n_tensors; i++)
		if (!qa_add_u64(w->expect, n_blocks[i], &w->expect)) {
			qa_blockindex_writer_free(w);
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "block count overflows");
		}
	uint8_t h[QA_BLOCKINDEX_HEADER];
	memcpy(h, magic, 8);
	put_u32(h + 8, 1);
	put_u32(h + 12, digest_bytes);
	put_u64(h + 16, (uint64_t)n_tensors);
	put_u64(h + 24, w->expect);
	put(w, h, sizeof h);
	for (size_t i = 0; i < n_tensors; i++) {
		uint8_t c[8];
		put_u64(c, n_blocks[i]);
		put(w, c, 8);
	}
	*out = w;
	return QA_OK;
}

void qa_blockindex_writer_add(struct qa_blockindex_writer *w, const uint8_t *digests,
                              uint64_t count)
{
	for (uint64_t i = 0; i < count; i++)
		put(w, digests + i * QA_SHA256_LEN, w->digest_bytes);
	w->written += count;
}

enum qa_err qa_blockindex_writer_finish(struct qa_blockindex_writer *w, uint64_t *size,
                                        uint8_t sha256[QA_SHA256_LEN], struct qa_diag *d)
{
	flush(w);
	if (w->err)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write the block index: %s",
		                   qa_strerror(w->err));
	if (w->written != w->expect)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "block index has %llu of %llu records",
		                   (unsigned long long)w->written, (unsigned long long)w->expect);
	if (qa_sha256_stream_final(w->sha, sha256))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
	*size = w->size;
	return QA_OK;
}

void qa_blockindex_writer_free(struct qa_blockindex_writer *w)
{
	if (w) {
		qa_sha256_stream_free(w->sha);
		free(w);
	}
}

/* ------------------------------------------------------------ reader */

struct qa_blockindex {
	struct qa_source *src;
	unsigned digest_bytes;
	size_t n_tensors;
	uint64_t records_off;  /* byte offset of the first record */
	uint64_t *first;       /* n_tensors + 1 record indices */
};

enum qa_err qa_blockindex_open(struct qa_blockindex **out, struct qa_source *src,
                               struct qa_diag *d)
{
	uint64_t size = qa_source_size(src);
	uint8_t h[QA_BLOCKINDEX_HEADER];
	enum qa_err e;
	*out = NULL;
	if (size < QA_BLOCKINDEX_HEADER)
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "block index of %llu bytes is shorter than its %u-byte header",
		                   (unsigned long long)size, QA_BLOCKINDEX_HEADER);
	if ((e = qa_source_read(src, 0, sizeof h, h, "block index header", d)))
		return e;
	if (memcmp(h, magic, 8) != 0)
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "not a block index (bad magic)");
	if (get_u32(h + 8) != 1)
		return qa_diag_set(d, QA_ERR_FORMAT, 8, "block index version %lu (this build reads 1)",
		                   (unsigned long)get_u32(h + 8));
	uint32_t db = get_u32(h + 12);
	if (db < 4 || db > QA_SHA256_LEN)
		return qa_diag_set(d, QA_ERR_FORMAT, 12, "block index digest size %lu (4..32)", (unsigned long)db);
	uint64_t nt = get_u64(h + 16), nr = get_u64(h + 24);
	/* the table must fit in the file before anything is allocated for it */
	if (nt > (size - QA_BLOCKINDEX_HEADER) / 8 || nt >= SIZE_MAX / 8 - 1)
		return qa_diag_set(d, QA_ERR_FORMAT, 16, "block index claims %llu tensors in %llu bytes",
		                   (unsigned long long)nt, (unsigned long long)size);
	uint64_t rec_off = QA_BLOCKINDEX_HEADER + nt * 8;
	if (nr > (size - rec_off) / db || rec_off + nr * db != size)
		return qa_diag_set(d, QA_ERR_FORMAT, 24,
		                   "block index of %llu bytes does not hold %llu records of %lu bytes after its table",
		                   (unsigned long long)size, (unsigned long long)nr, (unsigned long)db);
	struct qa_blockindex *bi = calloc(1, sizeof *bi);
	if (!bi || !(bi->first = malloc(((size_t)nt + 1) * sizeof *bi->first))) {
		free(bi);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	bi->src = src;
	bi->digest_bytes = db;
	bi->n_tensors = (size_t)nt;
	bi->records_off = rec_off;
	uint64_t sum = 0;
	uint8_t chunk[4096];
	for (uint64_t i = 0; i < nt; i += sizeof chunk / 8) {
		uint64_t k = nt - i < sizeof chunk / 8 ? nt - i : sizeof chunk / 8;
		if ((e = qa_source_read(src, QA_BLOCKINDEX_HEADER + i * 8, (size_t)k * 8, chunk, "block index table", d))) {
			qa_blockindex_free(bi);
			return e;
		}
		for (uint64_t j = 0; j < k; j++) {
			bi->first[i + j] = sum;
			if (!qa_add_u64(sum, get_u64(chunk + j * 8), &sum) || sum > nr) {
				qa_blockindex_free(bi);
				return qa_diag_set(d, QA_ERR_FORMAT, QA_BLOCKINDEX_HEADER + (i + j) * 8,
				                   "block index: tensor %llu's block count exceeds the %llu records",
				                   (unsigned long long)(i + j), (unsigned long long)nr);
			}
		}
	}
	if (sum != nr) {
		qa_blockindex_free(bi);
		return qa_diag_set(d, QA_ERR_FORMAT, 24, "block index: the tensors' block counts sum to %llu, not %llu",
		                   (unsigned long long)sum, (unsigned long long)nr);
	}
	bi->first[nt] = sum;
	*out = bi;
	return QA_OK;
}

void qa_blockindex_free(struct qa_blockindex *bi)
{
	if (bi) {
		free(bi->first);
		free(bi);
	}
}

unsigned qa_blockindex_digest_bytes(const struct qa_blockindex *bi)
{
	return bi->digest_bytes;
}

size_t qa_blockindex_n_tensors(const struct qa_blockindex *bi)
{
	return bi->n_tensors;
}

uint64_t qa_blockindex_blocks(const struct qa_blockindex *bi, size_t i)
{
	return bi->first[i + 1] - bi->first[i];
}

enum qa_err qa_blockindex_read(struct qa_blockindex *bi, size_t i, uint64_t first,
                               uint64_t count, uint8_t *out, struct qa_diag *d)
{
	uint64_t end;
	if (i >= bi->n_tensors || !qa_add_u64(first, count, &end) || end > qa_blockindex_blocks(bi, i) ||
	    count > SIZE_MAX / bi->digest_bytes)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "block index read outside tensor %zu", i);
	return qa_source_read(bi->src, bi->records_off + (bi->first[i] + first) * bi->digest_bytes,
	                      (size_t)count * bi->digest_bytes, out, "block index records", d);
}

enum qa_err qa_blockindex_sha256(struct qa_blockindex *bi, uint8_t out[QA_SHA256_LEN],
                                 struct qa_diag *d)
{
	struct qa_sha256_stream *s = qa_sha256_stream_init();
	uint8_t *buf = malloc(WBUF);
	enum qa_err e = QA_OK;
	if (!s || !buf) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	uint64_t size = qa_source_size(bi->src);
	for (uint64_t off = 0; off < size; off += WBUF) {
		size_t k = size - off < WBUF ? (size_t)(size - off) : WBUF;
		if ((e = qa_source_read(bi->src, off, k, buf, "block index", d)))
			goto done;
		qa_sha256_stream_update(s, buf, k);
	}
	if (qa_sha256_stream_final(s, out))
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
done:
	qa_sha256_stream_free(s);
	free(buf);
	return e;
}
