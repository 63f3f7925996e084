/*
 * part.h - sharded audits: the deterministic partition of a run's tensors
 * over N shards, the partial results a shard writes (JSON, schema
 * quantaudit.part/1), and merging the parts of one run back into the result
 * an unsharded run gives.
 *
 * Every shard computes the same partition from the inputs' headers alone:
 * tensors are weighted by element count and dealt, biggest first (ties by
 * position), to the shard with the least weight so far (ties to the lowest
 * shard).  A part carries the whole result table of its run, with the audit
 * figures filled only for its own tensors, plus the run's identity: the
 * SHA-256 of everything the headers determine (command, options that change
 * results, paths, sizes, the tensor table), so that parts of different runs
 * are told apart.  Whole-file digests cannot be assembled from parts; a
 * shard computes them only when asked (--file-digests), and the merge takes
 * them from any part that has them.
 *
 * Parts are untrusted input: every field is type- and range-checked, and a
 * malformed part is QA_ERR_FORMAT naming the field.
 */
#ifndef QA_PART_H
#define QA_PART_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "compare.h"
#include "err.h"
#include "manifest.h"

#define QA_PART_SCHEMA "quantaudit.part/1"
#define QA_PART_MAX_SHARDS 256

/*
 * Assign n items of the given weights to n_shards shards (1..256): owner[i]
 * receives the 0-based shard of item i.  Deterministic (see above).
 * Returns false when out of memory or n_shards is out of range.
 */
bool qa_part_assign(const uint64_t *weights, size_t n, uint32_t n_shards, uint32_t *owner);

/* Elements of a diff tensor (product of its dims, saturating). */
uint64_t qa_part_diff_weight(const struct qa_diff_tensor *t);

/*
 * The part of shard k (1-based) of n for a diff result computed with that
 * shard (qa_diff_run_shard), or, for shape-swap, for the n_models results
 * (labels[i] names results[i]).  argv (argc entries, the command's own
 * argv from its name on) is kept, without the shard-only options, so that
 * the merged report can name the command that reproduces it.  New
 * reference, NULL when out of memory.
 */
json_t *qa_part_diff_to_json(const struct qa_diff_result *r, uint32_t k, uint32_t n, int argc,
                             char *const *argv);
json_t *qa_part_swap_to_json(struct qa_swap_result *const *results, const char *const *labels,
                             size_t n_models, uint32_t k, uint32_t n, int argc, char *const *argv);

struct qa_manifest;

/*
 * hash --shard: the manifest of the GGUF or single safetensors file at path
 * with only the tensors shard k (1-based) of n owns hashed (partition by
 * tensor bytes), as a part (new reference in *out).  keep_blocks keeps
 * their block digests; with file_digests the whole-file, metadata and (with
 * data_digest) all-tensor-data digests are computed too, streaming every
 * byte once.  format ("json", "table" or "gguf-hash") is how the merge
 * prints the manifest.  Errors: the readers', QA_ERR_USAGE for a sharded
 * checkpoint, QA_ERR_NOMEM.
 */
enum qa_err qa_part_hash(const char *path, uint32_t k, uint32_t n, bool keep_blocks, bool file_digests,
                         bool data_digest, const char *format, int argc, char *const *argv, json_t **out,
                         struct qa_diag *d);

/*
 * verify --shard: owner[i] (want->n entries) receives the 0-based shard of
 * the manifest's tensor i (partition by tensor bytes).  False when out of
 * memory.
 */
bool qa_part_verify_assign(const struct qa_manifest *want, uint32_t n, uint32_t *owner);

/*
 * The part of shard k (1-based) of n for a verify of the file at path (size
 * bytes) against the manifest want read from mpath (manifest_sha256: the
 * SHA-256 of its text), where v holds only the items of shard k's tensors
 * (owner from qa_part_verify_assign) and, for shard 1, the file's extra
 * tensors; v->n_tensors_ok is not used.  file_digests: v's file_match and
 * metadata_match were computed (otherwise they are written as null).
 * New reference, NULL when out of memory.
 */
json_t *qa_part_verify_to_json(const struct qa_manifest *want, const struct qa_verify *v, const uint32_t *owner,
                               const char *path, uint64_t size, const char *mpath,
                               const uint8_t manifest_sha256[QA_SHA256_LEN], bool file_digests, uint32_t k,
                               uint32_t n, int argc, char *const *argv);

/* A merged run: the command's result, rebuilt from its parts. */
struct qa_part_merged {
	char command[16];             /* "diff", "shape-swap", "hash" or "verify" */
	struct qa_manifest *manifest; /* hash: the merged manifest; verify: the
	                               * manifest's tensor names and sizes only */
	struct qa_verify verify;      /* verify: the merged comparison (names
	                               * borrowed from manifest and extra_names) */
	char **extra_names;           /* verify: the file's extra tensors (owned) */
	size_t n_extra;
	char *file, *manifest_path;   /* verify: the paths the shards were given */
	char format[16];              /* hash: "json", "table", "gguf-hash" or "default" */
	struct qa_diff_result *diff;  /* diff: the merged result */
	size_t n_models;              /* shape-swap: the merged results and labels */
	struct qa_swap_result **swap;
	char **labels;
	int argc;                     /* the audited command line (owned) */
	char **argv;
	bool digests;                 /* the whole-file digests were computed by some part */
	json_t *transfer;             /* the parts' "transfer" objects summed (owned), NULL
	                               * when no shard read a remote input */
};

/*
 * Merge the n parts parts[i] (parsed JSON documents; names[i] is the file
 * each came from, for messages) into *out, which the caller frees with
 * qa_part_merged_free.  Refused with QA_ERR_FORMAT, naming the file: a
 * malformed part, parts of different runs ("belongs to another run than
 * NAME"), two parts of the same shard ("overlaps NAME"), a part whose
 * tensors are not the partition's, a missing shard ("shard K of N is
 * missing").  *culprit receives the name of the offending part.
 * The parts' optional "transfer" objects (what each shard read from remote
 * inputs, in remote.h's schema) become out->transfer: the counters and each
 * input's bytes and requests summed, each input's local peak the largest of
 * any shard's; two parts that read one input at different commits are
 * refused (the shards did not audit the same bytes).
 */
enum qa_err qa_part_merge(json_t *const *parts, const char *const *names, size_t n,
                          struct qa_part_merged *out, const char **culprit, struct qa_diag *d);
void qa_part_merged_free(struct qa_part_merged *m);

#endif
