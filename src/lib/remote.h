/*
 * remote.h - remote inputs as a whole: the run's network options, where a
 * URL's bytes come from, pinned commits, and the transfer statistics.
 *
 * qa_source_open_file() hands any path that qa_remote_is_url() accepts to
 * qa_remote_open(), so the readers never learn where bytes come from.  A
 * URL is served, in this order, from the huggingface_hub cache (hf:// only,
 * read-only), from quantaudit's blob cache (--cache-blobs, verified before
 * use), or over ranged HTTP (http.h) with headers cached (cache.h).
 *
 * The options and statistics are process-wide: the CLI sets the options
 * once before any input is opened (qa_remote_configure) and reads the
 * statistics once the command's work is done.  Statistics and pins are
 * protected by a mutex; the options are read-only after configuration.
 */
#ifndef QA_REMOTE_H
#define QA_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "source.h"

struct qa_remote_options {
	unsigned retries;        /* retries after the first attempt (default 5) */
	unsigned retry_wait_ms;  /* first backoff step (default 1000) */
	const char *cache_dir;   /* NULL: ${XDG_CACHE_HOME:-~/.cache}/quantaudit */
	bool cache_blobs;        /* keep whole verified bodies, content-addressed */
	bool offline;            /* no network request at all */
	bool progress;           /* progress lines on stderr */
	uint64_t window_bytes;   /* read-ahead window and bound of a file's local copy beyond
	                          * its header (default 64 MiB; QUANTAUDIT_REMOTE_WINDOW) */
	void (*warn)(const char *msg); /* one-line warnings (e.g. no range support), or NULL */
};

/* Defaults, with HF_HUB_OFFLINE (1/ON/YES/TRUE) turning offline mode on. */
void qa_remote_options_default(struct qa_remote_options *o);

/* Install o (copied; cache_dir must outlive the process's remote use). */
void qa_remote_configure(const struct qa_remote_options *o);

/* The options in force (defaults until qa_remote_configure is called). */
const struct qa_remote_options *qa_remote_options(void);

/* True for "http://", "https://" and "hf://" paths. */
bool qa_remote_is_url(const char *path);

/*
 * Open the remote file a URL names as a source labelled with the URL
 * without credentials.  hf:// URLs must name a file (see qa_hub_expand for
 * the other forms).  Errors: QA_ERR_USAGE for a malformed hf:// URL,
 * QA_ERR_NETWORK after the retries (the message names the status or
 * curl's error), QA_ERR_IO in offline mode when the file is not cached
 * ("offline and not cached").
 */
QA_WARN_UNUSED
enum qa_err qa_remote_open(struct qa_source **out, const char *url, struct qa_diag *d);

/* What the first hop says about a remote file, without its body. */
struct qa_remote_head {
	bool has_sha256;         /* the Hub gave the file's SHA-256 (X-Linked-Etag) */
	uint8_t sha256[32];
	uint64_t size;           /* X-Linked-Size (or Content-Length), UINT64_MAX when unknown */
	char commit[64];         /* X-Repo-Commit, or "" */
	bool from_cache;         /* answered from quantaudit's header cache (offline) */
	bool local;              /* the file is in the huggingface_hub cache: read it instead */
};

/*
 * The first hop's headers of the file a URL names, with no body byte
 * transferred: one HEAD request to the Hub's resolve URL (or the https URL
 * itself) without following its redirect.  X-Repo-Commit pins the
 * revision for the rest of the run, as opening the file would.  The request
 * counts for the URL's entry in the transfer statistics (one request, no
 * bytes).  A file already in the huggingface_hub cache makes no request and
 * sets ->local.  Offline, the header cache answers (->from_cache) or the
 * call fails with QA_ERR_IO.  Errors: those of qa_remote_open.
 */
enum qa_err qa_remote_head(const char *url, struct qa_remote_head *out, struct qa_diag *d);

/*
 * Whether a remote file exists: false only when the server answered 404
 * (or, offline, when nothing is cached).  Other failures count as existing
 * so that opening it reports them.
 */
bool qa_remote_exists(const char *url);

/* ---- pinned commits (X-Repo-Commit), keyed by "repo@rev" ---- */

/* Copy the commit pinned for key into buf (cap >= 41); false when none. */
bool qa_remote_pin_get(const char *key, char *buf, size_t cap);
/* Pin key to commit unless already pinned. */
void qa_remote_pin_set(const char *key, const char *commit);

/*
 * url with the revision replaced by the commit the run pinned for it, for
 * commands that must rerun on the same bytes ("hf://ORG/NAME@COMMIT/PATH"),
 * as a new string; NULL when url is not an hf:// file URL or nothing is
 * pinned for its revision.
 */
char *qa_remote_pinned_url(const char *url);

/* ---- transfer statistics ---- */

/* Register a remote input (display URL, pinned commit or NULL); returns its slot. */
int qa_remote_input_add(const char *url, const char *commit);
/* Set a slot's commit once it is known. */
void qa_remote_input_commit(int input, const char *commit);
/* Count one request, its body bytes and whether it was a retry. slot may be -1. */
void qa_remote_count(int input, uint64_t bytes, unsigned requests, unsigned retries);
/* Record the most bytes of an input held in its local copy at once (the peak is kept). */
void qa_remote_local_peak(int input, uint64_t bytes);
/* Add expected bytes (for progress) to the run's total. */
void qa_remote_expect(uint64_t bytes);
/* Count a cache hit (a header, an API answer or a blob served from a cache). */
void qa_remote_cache_hit(int input);
/* Record that an input failed its integrity check (message kept for qa_remote_finish). */
void qa_remote_integrity_fail(const char *msg);

/*
 * The "transfer" object for --json outputs: {"requests","bytes","retries",
 * "cache_hits","inputs":[{"url","commit","bytes","requests","local_peak_bytes"}]}, or NULL
 * when the run read no remote input.  The caller owns the reference.
 */
json_t *qa_remote_transfer_json(void);

/*
 * At the end of a run: clear the progress line, and fail with
 * QA_ERR_NETWORK when an input's SHA-256 differed from the Hub's.
 */
QA_WARN_UNUSED
enum qa_err qa_remote_finish(struct qa_diag *d);

/* Strip credentials and the query from url for messages (returns a new string). */
char *qa_remote_display_url(const char *url);

#endif
