/*
 * compare.h - the audits: diff (an artifact against its reference) and
 * shape-swap (AUDIT-Q4K-SHAPE-001: what the [in,out] export bug does to a
 * checkpoint).
 *
 * Both re-quantize reference tensors with the bit-exact engine, digest every
 * 256-element block of both sides with SHA-256 (blockhash.h) and compare the
 * digests, so that a difference is located to a block, not just detected.
 * Results are plain data: the JSON, table and markdown renderers only read
 * them, so the three never disagree.  Everything a result points to is owned
 * by the result and freed with it.
 */
#ifndef QA_COMPARE_H
#define QA_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockhash.h"
#include "err.h"
#include "imatrix.h"
#include "layout.h"

struct qa_recipe_cmp; /* forensics.h: diff --compare-recipe's figures */

#define QA_NO_BLOCK UINT64_MAX

/* ------------------------------------------------------------------ diff */

enum qa_verdict {
	QA_VERDICT_IDENTICAL,      /* matches the out,in re-quantization */
	QA_VERDICT_LAYOUT_SWAP,    /* matches in,out only */
	QA_VERDICT_TRANSPOSED,     /* matches transposed only */
	QA_VERDICT_DIVERGENT,      /* no layout matches */
	QA_VERDICT_MISSING,        /* in the reference, absent from the artifact */
	QA_VERDICT_EXTRA,          /* in the artifact, with no reference */
	QA_VERDICT_SHAPE_MISMATCH, /* shapes cannot be paired */
	QA_VERDICT_UNSUPPORTED,    /* the artifact's type cannot be re-quantized */
	QA_VERDICT_UNPERMUTED,     /* llama attn_q/attn_k without the rotary permutation */
	QA_VERDICT_IMATRIX,        /* declared importance matrix; error in its band (forensics.h) */
	QA_VERDICT_NEEDS_IMATRIX   /* a type ggml makes only with importance weights (iq2_xxs, iq2_xs,
	                              iq1_s), and no matrix, or none for this tensor, was given */
};
#define QA_VERDICT_COUNT 11

/* "identical", "layout-swap", ... as in the JSON. */
const char *qa_verdict_name(enum qa_verdict v);

struct qa_diff_tensor {
	char *name;                /* GGUF name */
	char *reference_name;      /* name in the reference, NULL when none */
	uint32_t type;             /* the artifact's ggml type (reference's for missing) */
	uint32_t n_dims;
	uint64_t ne[4];            /* the artifact's shape (reference's for missing) */
	uint64_t blocks;           /* 256-element blocks of the artifact tensor */
	uint64_t nbytes;
	int layer;                 /* blk.N index, -1 for others */
	enum qa_verdict verdict;
	int layout;                /* layout that matched (qa_forensics_layout_name), -1 for none */
	enum qa_evidence evidence; /* how the layout was matched (NONE when layout is -1) */
	bool has_layout_errors;    /* layout_errors measured (bytes matched no layout) */
	struct qa_layout_errors layout_errors;
	uint64_t divergent_blocks; /* against out,in */
	uint64_t first_divergent;  /* QA_NO_BLOCK when none */
	uint8_t *divergence;       /* bitmap of divergent blocks against out,in (NULL when none) */
	bool has_error;
	double rmse, max_abs;                 /* dequantized artifact vs reference */
	double requant_rmse, requant_max_abs; /* ggml's re-quantization vs reference */
	bool quantized;            /* the artifact type is not f32/f16/bf16 */
	bool in_plan;              /* a recipe type is known for it */
	uint32_t recipe_type;      /* what the recipe would choose */
	char rule[96];             /* the recipe rule behind recipe_type */
	bool weighted;             /* re-quantized with importance weights (--imatrix) */
	/*
	 * A 3-D expert tensor (ne[2] experts of ne[1] x ne[0]) that diverged
	 * under out,in: the layout each expert's slice matched by bytes
	 * (QA_LAYOUT_OUT_IN, _IN_OUT, _TRANSPOSED) or -1 where none did.
	 * When every slice matched and the others all share one layout L, the
	 * tensor's verdict is L's (layout-swap or transposed) by bytes.
	 * NULL (n_experts 0) when not examined.
	 */
	uint32_t n_experts;
	int8_t *expert_layout;
};

/*
 * The quantize.imatrix.* keys of an artifact: llama-quantize writes them
 * when it was given an importance matrix.  Strings are owned by the result.
 */
struct qa_diff_imatrix_keys {
	bool declared;             /* any of the four keys is present */
	char *file, *dataset;      /* NULL when absent */
	bool has_entries, has_chunks;
	uint64_t entries, chunks;
};

/* The matrix given with --imatrix, as the result reports it. */
struct qa_diff_imatrix_given {
	bool given;
	char *path;                /* as given */
	enum qa_imatrix_format format;
	char *dataset;             /* NULL when the matrix names none */
	uint64_t entries;
	int32_t chunks;
	uint8_t sha256[QA_SHA256_LEN];
	bool dataset_differs;      /* the artifact declares another dataset */
	bool entries_differ;       /* the artifact declares another entries_count */
	size_t unmatched;          /* entries naming no tensor of the reference */
	char *first_unmatched;     /* NULL when none */
	size_t weighted_tensors;   /* tensors re-quantized with its weights */
};

/* Options of qa_diff_run; zero-initialise, then set what applies. */
/* Which part of an audit to run: shard k (1-based) of n of the partition in
 * part.h, and whether to compute the whole-file digests anyway. */
struct qa_audit_shard {
	uint32_t k, n;
	bool file_digests;
};

struct qa_diff_opts {
	unsigned n_threads;                /* 0: all cores */
	const struct qa_imatrix *imatrix;  /* --imatrix (borrowed), NULL for none */
	const char *imatrix_path;          /* its path as given (reports, errors) */
	/* sharding (part.h), NULL for the whole audit: the result then holds
	 * every tensor, but only those the partition gives shard->k carry audit
	 * figures and the summary counts are not final (the merge recomputes
	 * them, qa_forensics_classify); without shard->file_digests the whole-file
	 * SHA-256s are not computed (no_digests set) */
	const struct qa_audit_shard *shard;
	/* Weights per window of the streamed comparison (0: 2^18).  Results
	 * do not depend on it; QA_DIFF_WHOLE audits every tensor whole, the
	 * path the streamed one is held to in the tests. */
	uint64_t window_elems;
};
#define QA_DIFF_WHOLE UINT64_MAX

struct qa_reproduce_kv;

struct qa_diff_result {
	char *reference_path, *artifact_path;
	uint64_t reference_size, artifact_size;
	uint8_t reference_sha256[QA_SHA256_LEN], artifact_sha256[QA_SHA256_LEN];
	bool has_file_type;
	uint32_t file_type;
	char arch[64];
	size_t n;
	struct qa_diff_tensor *tensors;  /* artifact order, then missing ones */
	size_t counts[QA_VERDICT_COUNT];
	/* recipe check */
	const char *recipe_name;         /* static, NULL when the file type is unknown */
	bool recipe_matches;
	size_t recipe_deviations;
	uint32_t pure_type;              /* all quantized tensors have this type and match --pure */
	bool pure_matches;
	/* importance matrix: the artifact's keys and the one given */
	struct qa_diff_imatrix_keys declared_imatrix;
	struct qa_diff_imatrix_given imatrix;
	/* inference */
	size_t quantized_tensors, quantized_divergent;
	bool different_quantizer;        /* diverging tensors' errors all near ggml's (forensics.h) */
	size_t quantizer_n;              /* diverging tensors judged by the inference */
	double quantizer_min, quantizer_median, quantizer_max; /* spread of their RMSE ratios */
	struct qa_recipe_cmp *recipe_cmp;    /* diff --compare-recipe, NULL when not asked */
	bool pass;
	/* sharding (part.h) */
	uint32_t shard_k, shard_n;       /* audited only shard k of n (1-based); 0, 0: everything */
	bool no_digests;                 /* the whole-file SHA-256s were not computed */
	/* diff's metadata audit (qa_metadata_audit in reproduce.h), stored by
	 * the caller; owned by the result, NULL and 0 when not run */
	struct qa_reproduce_kv *metadata;
	size_t n_metadata;
	bool metadata_audited;
};

/*
 * Audit the GGUF artifact at art_path against the reference at ref_path
 * with options o (NULL: defaults).  Tensors are processed in parallel, each
 * by one thread, beside the SHA-256 of both files.  A tensor whose shape
 * and size match its reference is streamed: a window of rows at a time is
 * copied out of both files (nothing of them stays resident), re-quantized
 * and compared by memcmp with the artifact's bytes, so memory stays bounded
 * by the windows, not by the tensors; a tensor that diverges is audited
 * again whole, under every candidate layout.  With o->imatrix, every
 * tensor the artifact holds quantized and the matrix has an entry for is
 * re-quantized with its weights, as llama-quantize --imatrix does, the
 * others unweighted, and the recipe is planned with an importance matrix
 * (as it is, too, when the artifact declares one).  *out is freed with
 * qa_diff_free.  Errors: the readers' (malformed input), QA_ERR_VALUE for
 * non-finite reference weights or an imatrix entry whose length does not
 * fit its tensor, QA_ERR_NOMEM; *culprit is then set to the path of the
 * file the error is about.  Differences are results, not errors.
 */
QA_WARN_UNUSED
enum qa_err qa_diff_run(const char *ref_path, const char *art_path,
                        const struct qa_diff_opts *o, struct qa_diff_result **out,
                        const char **culprit, struct qa_diag *d);
void qa_diff_free(struct qa_diff_result *r);

/* r as the JSON document of `quantaudit diff --json` (schema
 * quantaudit.diff/1), indented, as a malloc'd NUL-terminated string the
 * caller frees; NULL when out of memory. */
char *qa_diff_json_text(const struct qa_diff_result *r);

/* True when block b of t diverges. */
bool qa_diff_block_divergent(const struct qa_diff_tensor *t, uint64_t b);

/* ------------------------------------------------------------------ shape-swap */

struct qa_swap_tensor {
	char *name;                /* GGUF name */
	uint64_t in, out;          /* ne[0] = in_features, ne[1] = out_features */
	int layer;
	uint64_t blocks[2];        /* [QA_LAYOUT_OUT_IN], [QA_LAYOUT_IN_OUT] */
	uint64_t bytes[2];
	bool identical;
	bool predicted_identical;
	bool weighted[2];          /* [layout]: quantized with importance weights */
	uint64_t divergent_blocks;
	uint64_t first_divergent;  /* QA_NO_BLOCK when identical */
	uint64_t experts;          /* 3-D expert tensors: slices swapped one by one; 1 for 2-D */
	uint64_t divergent_experts;/* slices whose bytes change under the swap */
};

struct qa_swap_result {
	char *reference_path;
	uint64_t reference_size;
	uint8_t reference_sha256[QA_SHA256_LEN];
	uint32_t type;
	uint32_t block_elems;
	char arch[64];
	size_t n;
	struct qa_swap_tensor *tensors;
	size_t n_identical, n_divergent, n_mispredicted;
	int64_t excess_bytes;      /* net sum over tensors of in,out bytes - out,in bytes (may be negative) */
	bool imatrix;              /* quantized with an importance matrix */
	uint32_t shard_k, shard_n; /* audited only shard k of n (1-based); 0, 0: everything */
	bool no_digests;           /* the reference's SHA-256 was not computed */
};

/* Options of qa_swap_run; zero-initialise, then set what applies. */
struct qa_swap_opts {
	unsigned n_threads;                /* 0: all cores */
	const struct qa_imatrix *imatrix;  /* --imatrix (borrowed), NULL for none */
	const char *imatrix_path;          /* its path as given (errors) */
	const struct qa_audit_shard *shard; /* as in qa_diff_opts; each model's tensors are dealt on their own */
};

/*
 * Quantize every 2-D weight of the reference at ref_path as type under
 * out,in and under in,out (rows zero-padded to whole blocks), hash the
 * blocks and compare.  A tensor is predicted identical when the swap does
 * not change how the data is cut into blocks: both dimensions multiples of
 * the type's block size, or a square matrix.  With o->imatrix, out,in is
 * quantized with the tensor's importance weights (as llama-quantize
 * --imatrix would), and so is in,out when the weights fit its rows (a
 * square matrix; a swapped matrix has rows the entry does not describe, so
 * it is quantized unweighted; weighted[] says which).  Importance weights
 * act on whole rows, so the prediction is no longer a guarantee then.
 * *out is freed with qa_swap_free.  Errors as for qa_diff_run (*culprit
 * names the file at fault); QA_ERR_USAGE for a type that cannot be produced.
 */
QA_WARN_UNUSED
enum qa_err qa_swap_run(const char *ref_path, uint32_t type, const struct qa_swap_opts *o,
                        struct qa_swap_result **out, const char **culprit, struct qa_diag *d);
void qa_swap_free(struct qa_swap_result *r);

/* r as the JSON object `quantaudit shape-swap --json` prints for one model,
 * as a malloc'd string the caller frees; NULL when out of memory. */
char *qa_swap_json_text(const struct qa_swap_result *r);

/* Recompute r's summary counts from its tensors. */
void qa_swap_summarize(struct qa_swap_result *r);

#endif
