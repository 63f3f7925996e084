/*
 * cache.h - quantaudit's download cache, and read-only lookups in the
 * huggingface_hub cache.
 *
 * quantaudit's cache (--cache DIR, default
 * ${XDG_CACHE_HOME:-~/.cache}/quantaudit) holds:
 *   heads/<sha256 of key>   the leading bytes of a remote file (its header;
 *                           all of it for small files such as config.json,
 *                           index files and API answers) with the file's
 *                           size, etag and commit;
 *   refs/<sha256 of url>    the key last used for a URL, for offline runs;
 *   blobs/<sha256>          whole bodies (--cache-blobs), named by their
 *                           SHA-256 and verified before every use.
 * A key is the URL plus the pinned commit, or the URL plus the ETag.  Every
 * entry is written to a temporary file and renamed into place, and a head
 * entry carries the SHA-256 of its bytes, so an interrupted or failed write
 * never leaves an entry that a later run trusts.  Cache write failures are
 * not errors of the run: the cache is an optimisation.
 *
 * The huggingface_hub cache (HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else
 * $HF_HOME/hub) is only read: {models|datasets}--ORG--NAME/snapshots/COMMIT/PATH,
 * with a branch or tag resolved through refs/REV.
 */
#ifndef QA_CACHE_H
#define QA_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hub.h"

struct qa_cache_meta {
	uint64_t size;     /* the whole remote file's size */
	char etag[80];
	bool linked;       /* etag is the Hub's X-Linked-Etag (a SHA-256 for LFS files) */
	char commit[64];
};

/* The cache directory in use (a new string), or NULL when none can be named. */
char *qa_cache_dir(void);

/*
 * Load the head entry for key: its metadata and a new buffer (caller frees)
 * with its bytes.  Returns false when there is no entry or it fails its
 * checks (length, SHA-256 of the bytes, well-formed metadata).
 */
bool qa_cache_head_load(const char *key, struct qa_cache_meta *m, uint8_t **head,
                        size_t *len);

/* Store a head entry atomically (replacing any older one).  Best effort. */
QA_WARN_UNUSED
enum qa_err qa_cache_head_store(const char *key, const struct qa_cache_meta *m,
                                const void *head, size_t len, struct qa_diag *d);

/* Remove the head entry for key, if any (a file that failed its integrity check). */
void qa_cache_head_remove(const char *key);

/* refs: the key last used for name (a URL).  Returns false when absent. */
bool qa_cache_ref_load(const char *name, char *buf, size_t cap);
QA_WARN_UNUSED
enum qa_err qa_cache_ref_store(const char *name, const char *value, struct qa_diag *d);

/*
 * The path of the blob named sha256_hex when it exists and its bytes hash to
 * that name (a new string), else NULL.  A blob that fails the check is
 * removed.
 */
char *qa_cache_blob_find(const char *sha256_hex);

/* Store len bytes as blobs/<sha256_hex> atomically.  Best effort. */
QA_WARN_UNUSED
enum qa_err qa_cache_blob_store(const char *sha256_hex, const void *data, uint64_t len,
                                struct qa_diag *d);

/*
 * The huggingface_hub cache's copy of u's file (a new path string), or NULL
 * when it is not there.  Needs u->path.
 */
char *qa_cache_hf_lookup(const struct qa_hub_uri *u);

/* True when s is 64 lowercase hex digits. */
bool qa_cache_is_sha256(const char *s);

#endif
