/*
 * reproduce.h - rebuild a published artifact byte for byte from its GGUF
 * reference, and prove it with one SHA-256.
 *
 * From a GGUF reference, llama-quantize's output is a deterministic function
 * of its inputs (quantize.h writes exactly that file).  qa_reproduce_run
 * takes the recipe from the artifact's general.file_type (unless given),
 * infers the llama-quantize options the artifact's tensor types and tail
 * metadata call for (--pure, --output-tensor-type, --token-embedding-type,
 * --tensor-type, --leave-output-tensor, --override-kv), streams the
 * would-be file through SHA-256 without writing it (or also to a file),
 * and compares its digest with the artifact's.  When they differ it names
 * the first differing byte's region (header, KV pair, tensor info, padding
 * or tensor data) with its absolute offset, lists every metadata pair that
 * differs from what llama-quantize would write, and runs the per-tensor
 * diff (compare.h) to explain the tensor data.
 *
 * The artifact is read once, sequentially, alongside the stream.  A caller
 * that knows the artifact's digest beforehand (a Hub file's X-Linked-Etag)
 * passes it in qa_reproduce_opts.artifact_digest: the body is then read
 * only when the digests differ, to locate the difference.  Its header is not
 * read either when the recipe is known without it (--recipe, or a recipe
 * the artifact's file name announces, qa_recipe_from_file_name): the
 * would-be file is first made from the reference and the options given
 * (the matrix recorded as given), and only when that digest differs is the
 * header read, the options inferred and the file made again; when that
 * second plan is the first one the stream is not repeated.
 *
 * Ownership: a result is plain data the caller frees with
 * qa_reproduce_free; every string in it is owned by it and already escaped
 * for terminals and reports (bytes outside printable ASCII as \xNN).
 */
#ifndef QA_REPRODUCE_H
#define QA_REPRODUCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "blockhash.h"
#include "compare.h"
#include "err.h"
#include "quantize.h"
#include "recipe.h"

struct qa_reproduce_opts {
	const char *recipe;                          /* NULL: the artifact's general.file_type */
	const struct qa_recipe_overrides *overrides; /* the user's type options, NULL: none */
	const struct qa_kv_override *kv_overrides;   /* the user's --override-kv, in order */
	size_t n_kv_overrides;
	bool no_infer;            /* take the options as given, infer nothing */
	const char *out_path;     /* also write the would-be file there (atomically), NULL: don't */
	const char *imatrix_path; /* the importance matrix; NULL: the artifact's quantize.imatrix.file,
	                           * looked up beside the artifact, then in the current directory */
	bool no_explain;          /* skip the per-tensor diff when the digests differ */
	const uint8_t *artifact_digest; /* the artifact's SHA-256 if known (32 bytes), NULL: hash it */
	const char *artifact_digest_source; /* where it came from ("x-linked-etag"), NULL: "given" */
	bool artifact_size_known;       /* artifact_size holds the artifact's size (X-Linked-Size) */
	uint64_t artifact_size;
	unsigned n_threads;       /* 0: all cores */
};

enum qa_reproduce_kv_kind {
	QA_RKV_MISSING, /* llama-quantize would write the key; the artifact lacks it */
	QA_RKV_EXTRA,   /* the artifact has a key llama-quantize would not write */
	QA_RKV_CHANGED, /* both have it, with different types or values */
	QA_RKV_MOVED    /* same key and value, at another position */
};

const char *qa_reproduce_kv_kind_name(enum qa_reproduce_kv_kind k);

/* One metadata pair that differs from what llama-quantize would write. */
struct qa_reproduce_kv {
	char *key;
	enum qa_reproduce_kv_kind kind;
	char *expected, *actual;   /* value text ("u32 15", "string \"x\"", ...), NULL when absent */
	int64_t expected_index, actual_index; /* positions, -1 when absent */
	uint64_t actual_offset;    /* absolute offset of the artifact's pair, QA_NO_OFFSET when absent */
	bool finding;              /* counts as an audit finding (diff's metadata audit) */
};

/* One option inferred from the artifact, and why. */
struct qa_reproduce_inferred {
	char *option; /* as on llama-quantize's command line, e.g. "--output-tensor-type q8_0" */
	char *reason;
};

/* A tensor whose artifact type no (inferred) option explains. */
struct qa_reproduce_type_dev {
	char *name;
	uint32_t artifact_type, planned_type;
};

struct qa_reproduce_result {
	char *reference_path, *artifact_path, *output_path;
	bool reproduced;               /* the digests are equal */
	const char *recipe_name;       /* static */
	uint32_t file_type;
	bool pure;                     /* the options used include --pure */
	char *options;                 /* every option used (given and inferred), "" when none */
	size_t n_inferred;
	struct qa_reproduce_inferred *inferred;
	size_t n_type_devs;
	struct qa_reproduce_type_dev *type_devs;
	char *imatrix_declared;        /* quantize.imatrix.file as the artifact declares it, or NULL */
	char *imatrix_path;            /* the matrix file used, or NULL */
	char *artifact_error;          /* why the artifact's header does not parse (with --recipe), or NULL */
	uint64_t expected_size, artifact_size;
	uint8_t expected_sha256[QA_SHA256_LEN], artifact_sha256[QA_SHA256_LEN];
	bool artifact_digest_given;    /* artifact_sha256 came from the caller */
	const char *artifact_digest_source; /* static: "read", "given" or the caller's source */
	const char *recipe_source;     /* static: "given", "file name" or "general.file_type" */
	bool header_read;              /* the artifact was opened and its header parsed */
	unsigned passes;               /* times the would-be file was streamed */
	uint64_t artifact_bytes_read;  /* artifact body bytes read to compare or hash */
	/* the first differing byte (when not reproduced and the artifact was read) */
	bool located;
	uint64_t first_difference;     /* absolute offset */
	char region_kind[16];          /* "header", "kv", "tensor-info", "padding", "tensor-data", "beyond-end" */
	char *region_name;             /* key, tensor name or description, in the would-be file */
	int64_t region_index;          /* kv or tensor index, -1 for none */
	uint64_t region_start, region_end;
	char artifact_region_kind[16]; /* the same byte in the artifact's own layout */
	char *artifact_region_name;
	size_t n_kv;                   /* the metadata audit */
	struct qa_reproduce_kv *kv;
	struct qa_diff_result *explain; /* per-tensor diff, NULL unless run */
};

/*
 * Reproduce the artifact at art_path from the GGUF reference at ref_path
 * under o (NULL: defaults) and store the result in *out.  Returns QA_OK
 * whether or not the artifact was reproduced (see ->reproduced).  Errors:
 * QA_ERR_USAGE for a safetensors reference, an unknown --recipe, an output
 * path that is one of the inputs, a declared importance matrix that cannot be
 * found; QA_ERR_UNSUPPORTED for a file type with no recipe here; the
 * matrix reader's errors; the readers' errors (*culprit then names the file at fault:
 * an artifact whose header does not parse is compared byte for byte
 * anyway when o->recipe is given, with ->artifact_error saying why;
 * ref_path or art_path); the quantizer's and the writer's.
 */
QA_WARN_UNUSED
enum qa_err qa_reproduce_run(const char *ref_path, const char *art_path,
                             const struct qa_reproduce_opts *o,
                             struct qa_reproduce_result **out, const char **culprit,
                             struct qa_diag *d);

void qa_reproduce_free(struct qa_reproduce_result *r);

/* The result as quantaudit.reproduce/1 JSON (a new reference). */
json_t *qa_reproduce_to_json(const struct qa_reproduce_result *r);

/*
 * The metadata audit on its own: compare the artifact's pairs with the
 * plan (expected, n_expected pairs in order).  *out receives the findings
 * (possibly none); free them with qa_reproduce_kv_free.  keys_only ignores
 * order (for diff).  Returns QA_ERR_NOMEM only.
 */
QA_WARN_UNUSED
enum qa_err qa_reproduce_kv_audit(const struct qa_quantize_kv *expected, size_t n_expected,
                                  const struct qa_gguf *art, bool keys_only,
                                  struct qa_reproduce_kv **out, size_t *n_out,
                                  struct qa_diag *d);
void qa_reproduce_kv_free(struct qa_reproduce_kv *kv, size_t n);

/*
 * diff's metadata audit of the artifact at art_path against the reference at
 * ref_path.  A GGUF reference: every pair that differs from what
 * llama-quantize would write for the artifact's general.file_type (keys
 * only, order ignored; quantize.imatrix.* pairs are expected when present);
 * differences under "ARCH." and "tokenizer." are findings, others are
 * listed.  A safetensors reference with a config.json beside it (or in its
 * directory): the hyperparameters the artifact declares (block count,
 * embedding and feed-forward lengths, head counts, rope base and dimension
 * count, norm epsilon, context length, vocabulary size, tied embeddings),
 * each mismatch a finding named by its GGUF key.  Without config.json the
 * audit is empty.  *out (freed with qa_reproduce_kv_free) may be NULL when
 * *n is 0.  Errors: the readers'.
 */
QA_WARN_UNUSED
enum qa_err qa_metadata_audit(const char *ref_path, const char *art_path,
                              struct qa_reproduce_kv **out, size_t *n, struct qa_diag *d);

/* The audit as a JSON array of {"key", "difference", "expected", "actual",
 * "actual_offset", "finding"} (a new reference). */
json_t *qa_reproduce_kv_json(const struct qa_reproduce_kv *kv, size_t n);

/* Text of a metadata value as the audit shows it ("u32 15"); malloc'd, NULL on no memory. */
char *qa_reproduce_value_text(const struct qa_gguf_value *v);

#endif
