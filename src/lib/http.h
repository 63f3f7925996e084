/*
 * http.h - HTTP(S) through libcurl: single requests with retries, and a
 * byte source (struct qa_source) over ranged GETs.  This module and fetch.c
 * are the only code that includes libcurl.
 *
 * Requests follow redirects by hand so that the first hop's headers
 * (X-Repo-Commit, X-Linked-Etag, X-Linked-Size) are seen before the CDN
 * answers, and so that the bearer token goes only to the Hub's host.  Every
 * request asks for identity encoding.  408, 429, 500, 502, 503, 504 and
 * connection errors are retried with exponential backoff and jitter,
 * honouring Retry-After; a body cut short resumes from the last byte
 * received.  Retry counts and waits come from qa_remote_options().
 *
 * The source keeps the bytes it has fetched in an unlinked sparse file
 * mapped into memory, in 64 KiB chunks: a read or view fetches only the
 * chunks it lacks, so reading a header transfers the header plus at most
 * one chunk.  Once reads move past the header, a few worker threads keep a
 * bounded window (64 MiB) of the following bytes in flight in file order,
 * so downloading overlaps the caller's work.  Views stay valid until the
 * source is closed.  When every byte has arrived and the Hub gave the
 * file's SHA-256 (X-Linked-Etag), the bytes are checked against it before
 * the last waiting read returns; a mismatch fails that read and every later
 * one with QA_ERR_NETWORK.
 */
#ifndef QA_HTTP_H
#define QA_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "source.h"

#define QA_HTTP_CHUNK ((uint64_t)64 << 10)

/* What a request learned from the headers (first hop and final answer). */
struct qa_http_meta {
	long status;              /* final HTTP status */
	uint64_t size;            /* whole file size, UINT64_MAX when unknown */
	char commit[64];          /* X-Repo-Commit of the first hop, or "" */
	char etag[80];            /* X-Linked-Etag, else ETag (quotes, W/ removed), or "" */
	bool linked;              /* etag came from X-Linked-Etag */
	bool ranged;              /* the body answered the Range (206) */
	char *final_url;          /* owned: URL that served the body (after redirects) */
};

/* Release what m owns (final_url) and zero it. */
void qa_http_meta_free(struct qa_http_meta *m);

/*
 * GET url entirely into a new buffer (NUL-terminated; *len excludes the
 * NUL), refusing bodies over cap bytes.  The caller frees *buf.  Fails with
 * QA_ERR_NETWORK naming the status or curl's error after the retries, and
 * QA_ERR_IO when offline mode forbids the request.  input is the transfer
 * statistics slot (qa_remote_input_add) or -1.
 */
QA_WARN_UNUSED
enum qa_err qa_http_get_all(const char *url, size_t cap, int input, char **buf,
                            size_t *len, struct qa_http_meta *m, struct qa_diag *d);

/*
 * The first hop's headers of url without its body and without following a
 * redirect: one HEAD request (retried like any other), as huggingface_hub
 * reads a file's metadata.  m receives the status, X-Repo-Commit, the
 * X-Linked-Etag (m->linked) or else the ETag, and X-Linked-Size or else the
 * Content-Length of a 2xx answer (UINT64_MAX when neither).  Counts one
 * request and no bytes for input.  Errors: QA_ERR_NETWORK (a status other
 * than 2xx/3xx, or curl's error, after the retries), QA_ERR_IO in offline
 * mode.
 */
enum qa_err qa_http_head(const char *url, int input, struct qa_http_meta *m, struct qa_diag *d);

/*
 * Open url as a byte source labelled display (a URL without credentials).
 * alias, when not NULL, is another URL naming the same file (the hf://
 * revision's resolve URL when url carries the pinned commit): offline runs
 * find the cached head under either.  pin_key, when not NULL, names the
 * revision whose commit the first hop's X-Repo-Commit pins
 * (qa_remote_pin_set).  The source caches the header it read when closed
 * (cache.h), and serves a verified blob instead under --cache-blobs.  It is
 * safe to read from several threads at once.
 * Errors: QA_ERR_NETWORK (status or curl's error, after the retries; a
 * SHA-256 that differs from X-Linked-Etag), QA_ERR_IO (offline and not
 * cached; the download file), QA_ERR_NOMEM.
 */
QA_WARN_UNUSED
enum qa_err qa_http_source_open(struct qa_source **out, const char *url, const char *alias,
                                const char *display, const char *pin_key,
                                struct qa_diag *d);

/* True when url's scheme, host and port are those of the Hub endpoint. */
bool qa_http_same_host(const char *a, const char *b);

#endif
