/*
 * hub.h - the Hugging Face Hub's naming: hf:// URLs, resolve and tree-API
 * URLs under HF_ENDPOINT, quantization-tag matching, split-GGUF file names,
 * and the access token.
 *
 *   hf://[datasets/|models/]ORG/NAME[@REV][/PATH]    a file (or, without
 *                                                     PATH, a reference)
 *   hf://[datasets/|models/]ORG/NAME[@REV]:QUANT     a GGUF artifact
 *
 * REV is a branch, a tag, a 40-hex commit, refs/pr/N or refs/convert/NAME;
 * the two special forms are recognised before the path is split off, as
 * huggingface_hub does.  Parsing never touches the network; qa_hub_expand()
 * does (the tree API).
 */
#ifndef QA_HUB_H
#define QA_HUB_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum qa_hub_kind { QA_HUB_MODEL = 0, QA_HUB_DATASET = 1 };

struct qa_hub_uri {
	enum qa_hub_kind kind;
	char repo[200];   /* "ORG/NAME" */
	char rev[200];    /* "main" when not given */
	bool has_rev;
	char path[1024];  /* "" when not given */
	char quant[64];   /* "" when not given */
};

/*
 * Parse uri (which must start with "hf://").  Errors: QA_ERR_USAGE with a
 * reason for anything malformed (one-segment repo ids, "..", empty
 * segments, control characters, a QUANT together with a PATH, ...).
 */
QA_WARN_UNUSED
enum qa_err qa_hub_parse(const char *uri, struct qa_hub_uri *out, struct qa_diag *d);

/* HF_ENDPOINT without trailing slashes, default "https://huggingface.co". */
const char *qa_hub_endpoint(void);

/*
 * {endpoint}/[datasets/]ORG/NAME/resolve/{quote(rev, safe="")}/{quote(path)}
 * with rev replaced by commit when commit is not NULL.  Returns a new
 * string (NULL when out of memory).
 */
char *qa_hub_resolve_url(const struct qa_hub_uri *u, const char *commit);

/* {endpoint}/api/{models|datasets}/ORG/NAME/tree/{quote(rev)}?recursive=true */
char *qa_hub_tree_url(const struct qa_hub_uri *u);

/* "ORG/NAME@REV" with a kind prefix for datasets: the key commits are pinned under. */
void qa_hub_pin_key(const struct qa_hub_uri *u, char *buf, size_t cap);

/*
 * Whether file name (a path in the repo) is a GGUF matching quant: its base
 * name contains quant case-insensitively followed by '.' or '-', ends in
 * ".gguf", is not a split shard other than 00001, and is not an mmproj or
 * imatrix file.
 */
bool qa_hub_quant_matches(const char *name, const char *quant);

/*
 * Split-GGUF names: for "STEM-0000k-of-0000N.gguf" set *no = k, *count = N
 * and *stem_len = strlen(STEM) and return true.
 */
bool qa_hub_split_name(const char *name, unsigned *no, unsigned *count, size_t *stem_len);

/*
 * The access token: HF_TOKEN, else the first line of HF_TOKEN_PATH, else of
 * $HF_HOME/token (HF_HOME defaults to ${XDG_CACHE_HOME:-~/.cache}/huggingface).
 * Returns a new string or NULL.  Never printed by anyone.
 */
char *qa_hub_token(void);

/*
 * Turn a command-line argument into the URL of the file to open.
 * Arguments that are not hf:// URLs, and hf:// URLs naming a file, come back
 * unchanged (copied).  hf://REPO[@REV] becomes the reference checkpoint in
 * the repo root (model.safetensors.index.json, else model.safetensors);
 * hf://REPO[@REV]:QUANT becomes the one GGUF that matches QUANT.  Both read
 * the tree API ({endpoint}/api/models/REPO/tree/REV?recursive=true; the
 * answer is cached for offline use).
 * Errors: QA_ERR_USAGE when nothing or several files match; *candidates
 * (when not NULL) then gets the repo's GGUF files (first shards only), one
 * per line, in a new string the caller frees.  The network and cache errors
 * of the tree request.  *out is a new string.
 */
QA_WARN_UNUSED
enum qa_err qa_hub_expand(const char *arg, char **out, char **candidates, struct qa_diag *d);

#endif
