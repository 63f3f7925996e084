/*
 * source.c - local-file (mmap) and in-memory byte sources.
 */
#define _POSIX_C_SOURCE 200809L
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockhash.h"
#include "cursor.h"
#include "remote.h"
#include "util.h"

struct mem_source {
	struct qa_source base;
	const uint8_t *data;
	int mapped; /* data came from mmap and is unmapped on close */
};

static enum qa_err mem_read(struct qa_source *s, uint64_t off, size_t len,
                            void *buf, struct qa_diag *d)
{
	(void)d;
	struct mem_source *m = (struct mem_source *)s;
	if (len)
		memcpy(buf, m->data + off, len);
	return QA_OK;
}

static enum qa_err mem_view(struct qa_source *s, uint64_t off, size_t len,
                            const void **out, struct qa_diag *d)
{
	(void)d;
	(void)len;
	struct mem_source *m = (struct mem_source *)s;
	*out = m->data + off;
	return QA_OK;
}

static void mem_close(struct qa_source *s)
{
	struct mem_source *m = (struct mem_source *)s;
	if (m->mapped && s->size)
		munmap((void *)m->data, (size_t)s->size);
}

/* Drop the whole pages inside [off, off+len) of a mapped file from the
 * resident set; the read-only private mapping faults them back in from the
 * page cache when touched again. */
static void mem_release(struct qa_source *s, uint64_t off, uint64_t len)
{
	struct mem_source *m = (struct mem_source *)s;
	if (!m->mapped)
		return;
	qa_unmap_pages((void *)m->data, s->size, off, len);
}

static const struct qa_source_ops mem_ops = { mem_read, mem_view, mem_close, mem_release };

static struct mem_source *mem_new(const char *name)
{
	struct mem_source *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->base.ops = &mem_ops;
	m->base.name = qa_str_dup(name ? name : "<memory>");
	if (!m->base.name) {
		free(m);
		return NULL;
	}
	return m;
}

enum qa_err qa_source_open_memory(struct qa_source **out, const void *buf,
                                  size_t len, const char *name,
                                  struct qa_diag *d)
{
	static const uint8_t empty[1];
	struct mem_source *m = mem_new(name);
	if (!m)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	m->data = buf ? buf : empty;
	m->base.size = buf ? len : 0;
	*out = &m->base;
	return QA_OK;
}

enum qa_err qa_source_open_file(struct qa_source **out, const char *path,
                                struct qa_diag *d)
{
	static const uint8_t empty[1];
	struct stat st;
	if (qa_remote_is_url(path))
		return qa_remote_open(out, path, d);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open: %s",
		                   qa_strerror(errno));
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot stat: %s",
		                   qa_strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET,
		                   S_ISDIR(st.st_mode) ? "is a directory"
		                                       : "not a regular file");
	}
	if ((uint64_t)st.st_size > SIZE_MAX) {
		close(fd);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "file too large to map");
	}
	struct mem_source *m = mem_new(path);
	if (!m) {
		close(fd);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	m->base.size = (uint64_t)st.st_size;
	m->data = empty;
	if (st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			free(m->base.name);
			free(m);
			return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot map: %s",
			                   qa_strerror(e));
		}
		m->data = p;
		m->mapped = 1;
	}
	close(fd);
	*out = &m->base;
	return QA_OK;
}

void qa_source_close(struct qa_source *s)
{
	if (!s)
		return;
	if (s->ops->close)
		s->ops->close(s);
	free(s->name);
	free(s);
}

static enum qa_err check_range(struct qa_source *s, uint64_t off, size_t len,
                               const char *what, struct qa_diag *d)
{
	uint64_t end;
	if (!qa_add_u64(off, len, &end) || end > s->size)
		return qa_diag_set(d, QA_ERR_FORMAT, off,
		                   "%s past end of file (%llu bytes at offset %llu, file is %llu bytes)",
		                   what, (unsigned long long)len,
		                   (unsigned long long)off,
		                   (unsigned long long)s->size);
	return QA_OK;
}

enum qa_err qa_source_read(struct qa_source *s, uint64_t off, size_t len,
                           void *buf, const char *what, struct qa_diag *d)
{
	enum qa_err e = check_range(s, off, len, what, d);
	if (e)
		return e;
	return s->ops->read(s, off, len, buf, d);
}

enum qa_err qa_source_view(struct qa_source *s, uint64_t off, size_t len,
                           const void **out, const char *what,
                           struct qa_diag *d)
{
	enum qa_err e = check_range(s, off, len, what, d);
	if (e)
		return e;
	if (!s->ops->view)
		return qa_diag_set(d, QA_ERR_UNSUPPORTED, off,
		                   "source cannot lend memory");
	return s->ops->view(s, off, len, out, d);
}

void qa_source_release(struct qa_source *s, uint64_t off, uint64_t len)
{
	if (!s || !s->ops->release || off >= s->size || len == 0)
		return;
	if (len > s->size - off)
		len = s->size - off;
	s->ops->release(s, off, len);
}

/* Hashing window: large enough that SHA-256 runs at full speed, small
 * against any budget. */
#define HASH_WINDOW ((uint64_t)8 << 20)

enum qa_err qa_source_sha256(struct qa_source *s, uint8_t out[32], struct qa_diag *d)
{
	struct qa_sha256_stream *h = qa_sha256_stream_init();
	uint8_t *buf = NULL;
	enum qa_err e = QA_OK;
	if (!h)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (uint64_t off = 0; off < s->size && !e; off += HASH_WINDOW) {
		size_t n = (size_t)(s->size - off < HASH_WINDOW ? s->size - off : HASH_WINDOW);
		const void *p;
		e = qa_source_view(s, off, n, &p, "file", d);
		if (e == QA_ERR_UNSUPPORTED) {
			if (!buf && !(buf = malloc((size_t)HASH_WINDOW))) {
				e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				break;
			}
			e = qa_source_read(s, off, n, buf, "file", d);
			p = buf;
		}
		if (e)
			break;
		qa_sha256_stream_update(h, p, n);
		qa_source_release(s, off, n);
	}
	if (!e && qa_sha256_stream_final(h, out) != QA_OK)
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
	qa_sha256_stream_free(h);
	free(buf);
	return e;
}

enum qa_err qa_source_slurp(const char *path, uint64_t max, const char *what,
                            char **out, size_t *len, struct qa_diag *d)
{
	struct qa_source *src;
	*out = NULL;
	*len = 0;
	enum qa_err e = qa_source_open_file(&src, path, d);
	if (e)
		return e;
	uint64_t size = qa_source_size(src);
	if (size > max || size >= SIZE_MAX) {
		qa_source_close(src);
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "%s of %llu bytes exceeds the %llu-byte limit", what,
		                   (unsigned long long)size, (unsigned long long)max);
	}
	char *buf = malloc((size_t)size + 1);
	if (!buf) {
		qa_source_close(src);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	e = qa_source_read(src, 0, (size_t)size, buf, what, d);
	qa_source_close(src);
	if (e) {
		free(buf);
		return e;
	}
	buf[size] = '\0';
	*out = buf;
	*len = (size_t)size;
	return QA_OK;
}

/* ------------------------------------------------------------ streamed files */

/* A local file read with pread: nothing is mapped, so memory does not grow
 * with the bytes read (a mapping's touched pages count in the process's
 * resident set). */
struct fd_source {
	struct qa_source base;
	int fd;
};

static enum qa_err fd_read(struct qa_source *s, uint64_t off, size_t len, void *buf,
                           struct qa_diag *d)
{
	struct fd_source *f = (struct fd_source *)s;
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qa_diag_set(d, QA_ERR_IO, off, "cannot read: %s", qa_strerror(errno));
		if (n == 0)
			return qa_diag_set(d, QA_ERR_IO, off, "file shrank while being read");
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return QA_OK;
}

static void fd_close(struct qa_source *s)
{
	close(((struct fd_source *)s)->fd);
}

static const struct qa_source_ops fd_ops = { fd_read, NULL, fd_close, NULL };

enum qa_err qa_source_open_stream(struct qa_source **out, const char *path,
                                  struct qa_diag *d)
{
	struct stat st;
	if (qa_remote_is_url(path))
		return qa_remote_open(out, path, d);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open: %s", qa_strerror(errno));
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot stat: %s", qa_strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET,
		                   S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
	}
	struct fd_source *f = calloc(1, sizeof *f);
	char *name = qa_str_dup(path);
	if (!f || !name) {
		free(f);
		free(name);
		close(fd);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	f->base.ops = &fd_ops;
	f->base.size = (uint64_t)st.st_size;
	f->base.name = name;
	f->fd = fd;
	*out = &f->base;
	return QA_OK;
}
