/*
 * recipecheck.c - a recipe against a pure type on a model's shapes (see
 * recipecheck.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "recipecheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "names.h"
#include "pool.h"
#include "quant.h"
#include "quantize.h"
#include "types.h"
#include "util.h"
#include "blockhash.h"
#include "source.h"

void qa_recipe_check_free(struct qa_recipe_check *c)
{
	if (!c)
		return;
	free(c->plan);
	free(c->reference_path);
	free(c);
}

int qa_recipe_check_class(const struct qa_recipe_check *c, const char *name)
{
	for (size_t k = 0; k < c->n_classes; k++)
		if (strcmp(c->classes[k].name, name) == 0)
			return (int)k;
	return -1;
}

size_t qa_recipe_check_layers_at(const struct qa_recipe_check *c, size_t k, uint32_t type)
{
	size_t n = 0;
	if (k >= c->n_classes || !c->classes[k].per_layer)
		return 0;
	for (uint32_t l = 0; l < c->n_layer; l++)
		n += c->plan[(size_t)l * c->n_classes + k] == type;
	return n;
}

static double type_bpw(uint32_t t)
{
	const struct qa_type_info *ti = qa_type_get(t);
	return ti && ti->block_elems ? (double)ti->block_bytes * 8.0 / (double)ti->block_elems : 0;
}

static int type_index(struct qa_recipe_check *c, uint32_t t, bool add)
{
	for (size_t k = 0; k < c->n_types; k++)
		if (c->types[k] == t)
			return (int)k;
	if (!add || c->n_types == QA_RC_MAX_TYPES)
		return -1;
	c->types[c->n_types] = t;
	return (int)c->n_types++;
}

/* One measured tensor: its class and the squared error under each type. */
struct rc_item {
	const struct qa_ref_tensor *rt;
	size_t cls;
	double sq[QA_RC_MAX_TYPES];
};

struct rc_ctx {
	struct qa_ref *ref;
	struct qa_recipe_check *c;
	struct rc_item *items;
	struct qa_diag *diags;
};

static enum qa_err rc_one(void *vctx, size_t i, unsigned worker)
{
	(void)worker;
	struct rc_ctx *x = vctx;
	struct rc_item *it = &x->items[i];
	return qa_quantize_sq_error(x->ref, it->rt, NULL, x->c->types, x->c->classes[it->cls].measured,
	                            x->c->n_types, it->sq, NULL, &x->diags[i]);
}

enum qa_err qa_recipe_check_run(const char *ref_path, const struct qa_recipe *recipe,
                                uint32_t pure_type, uint32_t n_layer, uint32_t measure_layers,
                                unsigned n_threads, struct qa_recipe_check **out,
                                struct qa_diag *d)
{
	struct qa_ref *ref = NULL;
	struct qa_recipe_check *c = NULL;
	struct qa_plan_tensor *pt = NULL;
	struct qa_plan_entry *pr = NULL, *pp = NULL;
	char (*names)[96] = NULL;
	struct rc_ctx x;
	enum qa_err e;
	memset(&x, 0, sizeof x);
	if (!recipe || measure_layers == 0 || qa_recipe_pure_file_type(pure_type) == QA_RECIPE_NO_FILE_TYPE)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "recipe check needs a recipe, a pure type and a layer");
	if ((e = qa_ref_open(&ref, ref_path, d)))
		return e;
	c = calloc(1, sizeof *c);
	if (!c) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	c->reference_path = qa_str_dup(ref_path);
	if (!c->reference_path) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	if (qa_ref_n_sources(ref) == 1) {
		struct qa_source *src = qa_ref_source(ref, 0);
		const void *p;
		c->reference_size = qa_source_size(src);
		if ((e = qa_source_view(src, 0, (size_t)c->reference_size, &p, "file", d)) ||
		    (e = qa_sha256(p, (size_t)c->reference_size, c->reference_sha256, d)))
			goto done;
	}
	struct qa_model_shape m;
	qa_ref_model_shape(ref, &m);
	snprintf(c->arch, sizeof c->arch, "%s", qa_ref_info(ref)->arch);
	c->recipe = recipe;
	c->pure_type = pure_type;
	c->n_head = m.n_head;
	c->n_head_kv = m.n_head_kv;
	uint32_t have = 0;
	size_t nr = qa_ref_n_tensors(ref), n_l0 = 0, n_glob = 0;
	for (size_t i = 0; i < nr; i++) {
		uint32_t l;
		const struct qa_ref_tensor *rt = qa_ref_tensor_at(ref, i);
		if (qa_names_layer(rt->name, &l)) {
			if (l + 1 > have)
				have = l + 1;
			n_l0 += l == 0;
		} else {
			n_glob++;
		}
	}
	c->n_layer = n_layer ? n_layer : have;
	c->measured_layers = measure_layers;
	if (have == 0 || measure_layers > have || c->n_layer == 0 || c->n_layer > 4096) {
		e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                "the reference has %u layers: cannot measure %u of them or plan %u",
		                have, measure_layers, c->n_layer);
		goto done;
	}
	m.n_layer = c->n_layer;

	/* the model to plan: the global tensors and layer 0's, cloned n_layer times */
	size_t np = n_glob + n_l0 * c->n_layer, k = 0;
	pt = calloc(np + 1, sizeof *pt);
	pr = calloc(np + 1, sizeof *pr);
	pp = calloc(np + 1, sizeof *pp);
	names = calloc(np + 1, sizeof *names);
	c->plan = calloc((size_t)c->n_layer * QA_RC_MAX_CLASSES + 1, sizeof *c->plan);
	if (!pt || !pr || !pp || !names || !c->plan) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nr; i++) {
		const struct qa_ref_tensor *rt = qa_ref_tensor_at(ref, i);
		uint32_t l;
		bool layer = qa_names_layer(rt->name, &l);
		if (layer && l != 0)
			continue;
		for (uint32_t j = 0; j < (layer ? c->n_layer : 1); j++) {
			if (layer)
				snprintf(names[k], sizeof names[k], "blk.%u.%s", j, strchr(rt->name + 4, '.') + 1);
			else
				snprintf(names[k], sizeof names[k], "%s", rt->name);
			pt[k].name = names[k];
			pt[k].n_dims = rt->n_dims;
			memcpy(pt[k].ne, rt->ne, sizeof pt[k].ne);
			pt[k].src_type = rt->src_type == QA_TYPE_COUNT ? QA_TYPE_F32 : rt->src_type;
			k++;
		}
	}
	struct qa_diag why;
	if (qa_recipe_plan(recipe, 0, &m, pt, np, pr, &why) || qa_recipe_plan(NULL, pure_type, &m, pt, np, pp, &why)) {
		e = qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET, "cannot plan the model: %.200s", why.msg);
		goto done;
	}
	type_index(c, pure_type, true);
	double bits_r = 0, bits_p = 0, elems = 0, lbits_r = 0, lbits_p = 0, lelems = 0;
	for (size_t i = 0; i < np; i++) {
		if (!pr[i].quantized)
			continue;
		char cls[32];
		if (!qa_names_class(pt[i].name, cls, sizeof cls))
			continue;
		uint32_t l = 0;
		bool layer = qa_names_layer(pt[i].name, &l);
		int ci = qa_recipe_check_class(c, cls);
		if (ci < 0) {
			if (c->n_classes == QA_RC_MAX_CLASSES) {
				e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET, "more than %d tensor classes",
				                QA_RC_MAX_CLASSES);
				goto done;
			}
			ci = (int)c->n_classes++;
			struct qa_rc_class *cl = &c->classes[ci];
			snprintf(cl->name, sizeof cl->name, "%s", cls);
			cl->per_layer = layer;
			cl->in = pt[i].ne[0];
			cl->out = pt[i].ne[1];
			cl->elems = pt[i].ne[0] * pt[i].ne[1] * pt[i].ne[2] * pt[i].ne[3];
			cl->pure_type = pp[i].type;
			cl->recipe_global = pr[i].type;
			if (type_index(c, pp[i].type, layer) < 0 && layer) {
				e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET, "more than %d types", QA_RC_MAX_TYPES);
				goto done;
			}
		}
		struct qa_rc_class *cl = &c->classes[ci];
		double ne = (double)cl->elems;
		bits_r += ne * type_bpw(pr[i].type);
		bits_p += ne * type_bpw(pp[i].type);
		elems += ne;
		if (layer) {
			int ti = type_index(c, pr[i].type, true);
			if (ti < 0) {
				e = qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET, "more than %d types", QA_RC_MAX_TYPES);
				goto done;
			}
			c->plan[(size_t)l * QA_RC_MAX_CLASSES + (size_t)ci] = pr[i].type;
			cl->n_recipe_layers[ti]++;
			cl->measured[ti] = true;
			cl->measured[type_index(c, cl->pure_type, false)] = true;
			lbits_r += ne * type_bpw(pr[i].type);
			lbits_p += ne * type_bpw(pp[i].type);
			lelems += ne;
		}
	}
	/* compact the plan to n_classes columns */
	for (uint32_t l = 0; l < c->n_layer; l++)
		for (size_t j = 0; j < c->n_classes; j++)
			c->plan[(size_t)l * c->n_classes + j] = c->plan[(size_t)l * QA_RC_MAX_CLASSES + j];
	c->bpw_recipe = elems > 0 ? bits_r / elems : 0;
	c->bpw_pure = elems > 0 ? bits_p / elems : 0;
	c->layers_bpw_recipe = lelems > 0 ? lbits_r / lelems : 0;
	c->layers_bpw_pure = lelems > 0 ? lbits_p / lelems : 0;

	/* measure the per-layer classes on the first layers */
	x.items = calloc(nr + 1, sizeof *x.items);
	x.diags = calloc(nr + 1, sizeof *x.diags);
	if (!x.items || !x.diags) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	size_t ni = 0;
	for (size_t i = 0; i < nr; i++) {
		const struct qa_ref_tensor *rt = qa_ref_tensor_at(ref, i);
		uint32_t l;
		char cls[32];
		if (!qa_names_layer(rt->name, &l) || l >= measure_layers || rt->n_dims != 2 ||
		    !qa_names_class(rt->name, cls, sizeof cls))
			continue;
		int ci = qa_recipe_check_class(c, cls);
		if (ci < 0 || !c->classes[ci].per_layer || !qa_str_ends_with(rt->name, "weight"))
			continue;
		x.items[ni].rt = rt;
		x.items[ni].cls = (size_t)ci;
		ni++;
	}
	x.ref = ref;
	x.c = c;
	if ((e = qa_pool_run(n_threads ? n_threads : qa_pool_default_threads(), ni, rc_one, &x))) {
		qa_pool_first_diag(x.diags, ni, d);
		goto done;
	}
	double sq_r = 0, sq_p = 0, le = 0;
	for (size_t j = 0; j < c->n_classes; j++) {
		struct qa_rc_class *cl = &c->classes[j];
		if (!cl->per_layer)
			continue;
		double sq[QA_RC_MAX_TYPES] = { 0 }, ne = 0;
		for (size_t i = 0; i < ni; i++)
			if (x.items[i].cls == j) {
				for (size_t t = 0; t < c->n_types; t++)
					sq[t] += x.items[i].sq[t];
				ne += (double)x.items[i].rt->n_elems;
			}
		double mse[QA_RC_MAX_TYPES] = { 0 };
		for (size_t t = 0; t < c->n_types; t++)
			if (cl->measured[t] && ne > 0) {
				mse[t] = sq[t] / ne;
				cl->rmse[t] = sqrt(mse[t]);
			}
		/* every layer under the plan: the layers' mean squared error */
		double m_r = 0;
		for (size_t t = 0; t < c->n_types; t++)
			m_r += (double)cl->n_recipe_layers[t] * mse[t];
		m_r /= (double)c->n_layer;
		double m_p = mse[type_index(c, cl->pure_type, false)];
		cl->est_rmse_recipe = sqrt(m_r);
		cl->est_rmse_pure = sqrt(m_p);
		double bits = 0;
		for (size_t t = 0; t < c->n_types; t++)
			bits += (double)cl->n_recipe_layers[t] * type_bpw(c->types[t]);
		cl->bpw_recipe = bits / (double)c->n_layer;
		cl->bpw_pure = type_bpw(cl->pure_type);
		double w = (double)cl->elems * (double)c->n_layer;
		sq_r += w * m_r;
		sq_p += w * m_p;
		le += w;
	}
	for (size_t j = 0; j < c->n_classes; j++) {
		struct qa_rc_class *cl = &c->classes[j];
		if (!cl->per_layer) {
			cl->bpw_recipe = type_bpw(cl->recipe_global);
			cl->bpw_pure = type_bpw(cl->pure_type);
		}
	}
	c->layers_rmse_recipe = le > 0 ? sqrt(sq_r / le) : 0;
	c->layers_rmse_pure = le > 0 ? sqrt(sq_p / le) : 0;
	*out = c;
	c = NULL;
done:
	qa_recipe_check_free(c);
	free(pt);
	free(pr);
	free(pp);
	free(names);
	free(x.items);
	free(x.diags);
	qa_ref_close(ref);
	return e;
}
