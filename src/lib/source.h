/*
 * source.h - byte sources: where the readers get file bytes from.
 *
 * A source is anything that can say its size and hand out byte ranges: a
 * local file (mapped with mmap), a caller's memory buffer (tests, fuzzing),
 * and later a remote file read with HTTP range requests.  Readers only ever
 * talk to this interface, so a parser written against it works on all of
 * them.
 *
 * Ownership: qa_source_open_* returns a source the caller owns and frees
 * with qa_source_close().  A memory source borrows its buffer, which must
 * outlive the source.  Views returned by qa_source_view() borrow from the
 * source and stay valid until it is closed.
 */
#ifndef QA_SOURCE_H
#define QA_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct qa_source;

/* The operations behind a source; implementations fill one statically. */
struct qa_source_ops {
	/* Copy len bytes at off into buf; the range is already bounds-checked. */
	enum qa_err (*read)(struct qa_source *s, uint64_t off, size_t len,
	                    void *buf, struct qa_diag *d);
	/* Return a pointer to len bytes at off, valid until close, or fail
	 * with QA_ERR_UNSUPPORTED when the source cannot lend memory. */
	enum qa_err (*view)(struct qa_source *s, uint64_t off, size_t len,
	                    const void **out, struct qa_diag *d);
	void (*close)(struct qa_source *s);
	/* Optional (NULL: nothing to do): the caller is done with [off,
	 * off+len) for now; drop whatever memory holds it (mapped pages count
	 * in the process's resident set).  Views stay valid: touching the
	 * range again brings the bytes back. */
	void (*release)(struct qa_source *s, uint64_t off, uint64_t len);
};

struct qa_source {
	const struct qa_source_ops *ops;
	uint64_t size;
	char *name; /* owned copy of the path or label */
};

/*
 * Open the local file at path and map it read-only.  Views point into the
 * mapping; reads (qa_source_read) copy with pread(2) from the descriptor the
 * source keeps open, so bytes copied out never count in the process's
 * resident set, and a file that shrank fails the read with QA_ERR_IO
 * instead of faulting.  Fails with QA_ERR_IO
 * (d names the system error) when the file cannot be opened, is not a
 * regular file, or cannot be mapped.  An empty file opens as a source of
 * size 0.  A path that is a URL (http://, https://, hf://) opens the remote
 * file instead, through qa_remote_open() (remote.h), with its errors.
 */
QA_WARN_UNUSED
enum qa_err qa_source_open_file(struct qa_source **out, const char *path,
                                struct qa_diag *d);

/*
 * Open the local file at path for streaming: reads go through pread(2) and
 * nothing is mapped, so memory does not grow with the bytes read.  Views are
 * unsupported (QA_ERR_UNSUPPORTED); reads are safe from several threads.  A
 * URL opens the remote file, as qa_source_open_file() does.  Errors as for
 * qa_source_open_file(); a read past a file that shrank fails with QA_ERR_IO.
 */
enum qa_err qa_source_open_stream(struct qa_source **out, const char *path,
                                  struct qa_diag *d);

/* Wrap len bytes at buf (borrowed) as a source labelled name. */
QA_WARN_UNUSED
enum qa_err qa_source_open_memory(struct qa_source **out, const void *buf,
                                  size_t len, const char *name,
                                  struct qa_diag *d);

/* Close s and release everything it owns.  s may be NULL. */
void qa_source_close(struct qa_source *s);

/* Size in bytes. */
static inline uint64_t qa_source_size(const struct qa_source *s)
{
	return s->size;
}

/* The label given at open time (the path for files). */
static inline const char *qa_source_name(const struct qa_source *s)
{
	return s->name;
}

/*
 * Copy len bytes at off into buf.  A range that ends past the end of the
 * source fails with QA_ERR_FORMAT at offset off ("what" names the data).
 * Streaming readers copy windows with it rather than viewing: a local file's
 * copies leave nothing resident (qa_source_open_file).
 */
QA_WARN_UNUSED
enum qa_err qa_source_read(struct qa_source *s, uint64_t off, size_t len,
                           void *buf, const char *what, struct qa_diag *d);

/*
 * Borrow len bytes at off, bounds-checked like qa_source_read.  Sources that
 * cannot lend memory fail with QA_ERR_UNSUPPORTED; callers then fall back to
 * qa_source_read.
 */
QA_WARN_UNUSED
enum qa_err qa_source_view(struct qa_source *s, uint64_t off, size_t len,
                           const void **out, const char *what,
                           struct qa_diag *d);

/*
 * Tell s that the caller is done with [off, off+len) for now, so that a
 * source that keeps it in memory (a mapped file, a download window) can let
 * it go: streaming readers call this behind them so that resident memory
 * stays bounded by their window, not by the file.  Advisory: views into the
 * range stay valid (the bytes come back on access), ranges past the end are
 * clipped, and sources that hold nothing ignore it.
 */
void qa_source_release(struct qa_source *s, uint64_t off, uint64_t len);

/*
 * SHA-256 of the whole of s, copied through one 1 MiB window with
 * qa_source_read (so hashing a file does not make it resident).  Errors:
 * the source's, QA_ERR_NOMEM.
 */
enum qa_err qa_source_sha256(struct qa_source *s, uint8_t out[32], struct qa_diag *d);

/*
 * Read the whole file at path (at most max bytes) into a malloc'd,
 * NUL-terminated buffer: *out (freed by the caller) and *len.  A larger
 * file fails with QA_ERR_FORMAT at offset 0: "WHAT of N bytes exceeds the
 * MAX-byte limit".
 */
QA_WARN_UNUSED
enum qa_err qa_source_slurp(const char *path, uint64_t max, const char *what,
                            char **out, size_t *len, struct qa_diag *d);

#endif
