/*
 * rope.c - rope_freqs and the long-context rope factors, as llama.cpp's
 * converter generates them (see rope.h).
 *
 * The llama3 factors follow LlamaModel.generate_extra_tensors operation by
 * operation in torch's float32 semantics, where a Python number meeting a
 * float32 tensor is first rounded to float32 and x / t is evaluated as
 * reciprocal(t) * x (Tensor.__rtruediv__):
 *
 *   freq    = 1 / base ** (arange(0, dim, 2) / dim)    all f32
 *   wavelen = reciprocal(freq) * f32(2 pi)
 *   factor  = 1 if wavelen < f32(old / high), factor if wavelen > f32(old / low), else
 *             smooth = (reciprocal(wavelen) * f32(old) - f32(low)) / f32(high - low)
 *             1 / ((1 - smooth) / f32(factor) + smooth)
 *
 * (old = original_max_position_embeddings; the two wavelength limits are
 * Python doubles, compared with the f32 wavelen after rounding to f32).
 */
#include "rope.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double get_or(bool has, double v, double def)
{
	return has ? v : def;
}

enum qa_err qa_rope_llama3(const struct qa_rope_config *r, uint64_t head_dim, float *out, size_t n,
                           struct qa_diag *d)
{
	if (head_dim == 0 || n != (head_dim + 1) / 2)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "llama3 rope factors: %zu values for a head of %llu", n,
		                   (unsigned long long)head_dim);
	double base = get_or(r->has_rope_theta, r->rope_theta, 10000.0);
	double factor = get_or(r->has_factor, r->factor, 8.0);
	double low = get_or(r->has_low_freq_factor, r->low_freq_factor, 1.0);
	double high = get_or(r->has_high_freq_factor, r->high_freq_factor, 4.0);
	double old = r->has_original_max_position ? (double)r->original_max_position : 8192.0;
	float low_wl = (float)(old / low), high_wl = (float)(old / high);
	float two_pi = (float)(2.0 * 3.14159265358979323846);
	float f_old = (float)old, f_low = (float)low, f_span = (float)(high - low);
	float f_factor = (float)factor, f_base = (float)base, f_dim = (float)head_dim;
	for (size_t i = 0; i < n; i++) {
		float x = (float)(2 * i) / f_dim;
		float p = (float)pow((double)f_base, (double)x);
		float freq = 1.0f / p;
		float wavelen = 1.0f / freq * two_pi;
		if (wavelen < high_wl) {
			out[i] = 1.0f;
		} else if (wavelen > low_wl) {
			out[i] = f_factor;
		} else {
			if (f_span == 0.0f)
				return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
				                   "rope_scaling: high_freq_factor equals low_freq_factor");
			float smooth = (1.0f / wavelen * f_old - f_low) / f_span;
			out[i] = 1.0f / ((1.0f - smooth) / f_factor + smooth);
		}
	}
	return QA_OK;
}

static enum qa_err add(struct qa_rope_tensor *t, const char *name, const char *origin,
                       const float *src, uint32_t n, struct qa_diag *d)
{
	snprintf(t->name, sizeof t->name, "%s", name);
	t->origin = origin;
	t->n = n;
	t->data = malloc((n ? n : 1) * sizeof *t->data);
	if (!t->data)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	if (src)
		memcpy(t->data, src, n * sizeof *src);
	return QA_OK;
}

/* Phi3MiniModel: the long and short factors, checked as the converter checks them. */
static enum qa_err longrope(const struct qa_model_config *c, struct qa_rope_tensor *out,
                            size_t *n_out, struct qa_diag *d)
{
	const struct qa_rope_config *r = &c->rope;
	if (!r->has_long_factor || r->n_long == 0)
		return QA_OK; /* "if not long_factors: return" */
	if (!r->type[0])
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                   "config.json: rope_scaling has long_factor but no rope_type");
	if (strcmp(r->type, "su") != 0 && strcmp(r->type, "longrope") != 0 && strcmp(r->type, "yarn") != 0)
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                   "config.json: rope_scaling type '%s' is not one llama.cpp's converter "
		                   "handles for phi3 (su, longrope, yarn)", r->type);
	if (!r->has_short_factor)
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                   "config.json: rope_scaling has long_factor but no short_factor");
	double pct = r->has_partial_rotary_factor ? r->partial_rotary_factor : 1.0;
	double rot = pct * (double)c->hidden_size;
	if (!c->has_hidden_size || c->n_heads == 0 || !(rot >= 0) || rot > 9007199254740992.0)
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                   "config.json: the phi3 rope factors need hidden_size and num_attention_heads");
	uint64_t rope_dims = (uint64_t)rot / c->n_heads;
	if (r->n_long != r->n_short || rope_dims % 2 || r->n_long != rope_dims / 2)
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                   "config.json: rope_scaling long_factor (%u) and short_factor (%u) must "
		                   "both have rope_dims / 2 = %g entries", r->n_long, r->n_short,
		                   (double)rope_dims / 2);
	static const char origin[] = "config.json rope_scaling";
	enum qa_err e = add(&out[0], "rope_factors_long.weight", origin, r->long_factor, r->n_long, d);
	if (e)
		return e;
	*n_out = 1;
	if ((e = add(&out[1], "rope_factors_short.weight", origin, r->short_factor, r->n_short, d)))
		return e;
	*n_out = 2;
	return QA_OK;
}

enum qa_err qa_rope_generate(const struct qa_arch *a, const struct qa_model_config *c,
                             struct qa_rope_tensor out[QA_ROPE_MAX_TENSORS], size_t *n_out,
                             struct qa_diag *d)
{
	enum qa_err e = QA_OK;
	*n_out = 0;
	if (qa_arch_has(a, QA_ARCH_ROPE_LLAMA3) && strcmp(c->rope.type, "llama3") == 0) {
		/* head_dim, else hidden_size // num_attention_heads */
		uint64_t dim = c->has_head_dim ? c->head_dim
		             : c->n_heads ? c->hidden_size / c->n_heads : 0;
		if (dim == 0 || dim > 2ull * QA_ROPE_MAX_FACTORS)
			return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
			                   "config.json: llama3 rope_scaling needs a head size (head_dim, or "
			                   "hidden_size and num_attention_heads) of 1..%u",
			                   2u * QA_ROPE_MAX_FACTORS);
		e = add(&out[0], "rope_freqs.weight", "config.json rope_scaling (llama3)", NULL,
		        (uint32_t)((dim + 1) / 2), d);
		if (!e) {
			*n_out = 1;
			e = qa_rope_llama3(&c->rope, dim, out[0].data, out[0].n, d);
		}
	} else if (qa_arch_has(a, QA_ARCH_ROPE_LONG)) {
		e = longrope(c, out, n_out, d);
	}
	if (e) {
		qa_rope_free(out, *n_out);
		*n_out = 0;
	}
	return e;
}

void qa_rope_free(struct qa_rope_tensor *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++) {
		free(t[i].data);
		t[i].data = NULL;
	}
}
