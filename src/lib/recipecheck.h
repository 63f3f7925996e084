/*
 * recipecheck.h - how much of a quality gap is the recipe: a llama.cpp recipe
 * (e.g. Q4_K_M) against a pure type (llama-quantize --pure, e.g. q4_K) on a
 * model's shapes, for AUDIT-Q4K-RECIPE-002.
 *
 * The plan (which type each tensor gets) is computed for the full layer
 * count of the model, from the shapes of one layer of a reference
 * checkpoint: recipes depend on names, shapes and layer indices only.  The
 * error is measured on the first layers of the same (synthetic) checkpoint,
 * per tensor class and per type the plan uses, and carried over to every
 * layer by the plan (layers of a synthetic checkpoint are statistically
 * alike; that is the stated assumption).  All figures are plain data owned
 * by the result.
 */
#ifndef QA_RECIPECHECK_H
#define QA_RECIPECHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "recipe.h"

#define QA_RC_MAX_CLASSES 16
#define QA_RC_MAX_TYPES 4

/* One tensor class: a per-layer class (attn_q, ...) or a global tensor. */
struct qa_rc_class {
	char name[32];
	bool per_layer;
	uint64_t elems;             /* per layer (per_layer) or in total */
	uint64_t in, out;           /* its shape (ne[0], ne[1]) */
	uint32_t pure_type;         /* under --pure */
	size_t n_recipe_layers[QA_RC_MAX_TYPES]; /* layers per type under the recipe (per_layer) */
	uint32_t recipe_global;     /* the recipe's type (global classes) */
	/* measured on the first layers (per_layer classes only) */
	bool measured[QA_RC_MAX_TYPES];
	double rmse[QA_RC_MAX_TYPES];  /* RMSE of types[k] on this class */
	/* carried over all layers by the plan */
	double est_rmse_recipe, est_rmse_pure;
	double bpw_recipe, bpw_pure;
};

struct qa_recipe_check {
	char *reference_path;
	uint64_t reference_size;     /* 0 with no SHA-256 (a sharded reference) */
	uint8_t reference_sha256[32];
	char arch[64];
	uint32_t n_layer;            /* planned */
	uint32_t measured_layers;    /* error measured on blk.0 .. blk.(measured_layers-1) */
	const struct qa_recipe *recipe;
	uint32_t pure_type;
	uint32_t n_head, n_head_kv;
	size_t n_types;
	uint32_t types[QA_RC_MAX_TYPES]; /* the types the comparison involves, pure first */
	size_t n_classes;
	struct qa_rc_class classes[QA_RC_MAX_CLASSES];
	uint32_t *plan;              /* n_layer x n_classes recipe types (per_layer classes) */
	double layers_rmse_recipe, layers_rmse_pure; /* every layer tensor, element-weighted */
	double bpw_recipe, bpw_pure;                 /* every quantized 2-D tensor of the model */
	double layers_bpw_recipe, layers_bpw_pure;
};

/*
 * Plan ref_path's model with n_layer layers (0: its own) under recipe and
 * under --pure pure_type, and measure the error on its first
 * measure_layers layers (1 or more, at most the layers it has).  *out is
 * freed with qa_recipe_check_free.  Errors: the reader's; QA_ERR_USAGE for
 * bad counts or a pure type without file type; QA_ERR_VALUE when the plan
 * cannot be made; QA_ERR_UNSUPPORTED for more than QA_RC_MAX_CLASSES
 * classes or QA_RC_MAX_TYPES types.
 */
QA_WARN_UNUSED
enum qa_err qa_recipe_check_run(const char *ref_path, const struct qa_recipe *recipe,
                                uint32_t pure_type, uint32_t n_layer, uint32_t measure_layers,
                                unsigned n_threads, struct qa_recipe_check **out,
                                struct qa_diag *d);
void qa_recipe_check_free(struct qa_recipe_check *c);

/* Layers of class k whose recipe type is type. */
size_t qa_recipe_check_layers_at(const struct qa_recipe_check *c, size_t k, uint32_t type);

/* The class called name, or -1. */
int qa_recipe_check_class(const struct qa_recipe_check *c, const char *name);

#endif
