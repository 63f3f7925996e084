/*
 * config.c - parsing config.json.
 *
 * The file is read through a qa_source and parsed by jansson with duplicate
 * keys rejected.  A small scanner over the raw text finds the byte position
 * of every top-level key (jansson keeps keys in document order), so a field
 * with a bad value is reported at the offset of its key.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "arch.h"
#include "json_scan.h"
#include "remote.h"
#include "source.h"
#include "util.h"

/* config.json files are small; anything larger is not one. */
#define MAX_CONFIG_BYTES (16u * 1024 * 1024)

struct field_ctx {
	json_t *root;
	json_t *text;  /* the "text_config" object of a multimodal config, or NULL */
	uint64_t *off; /* key offsets, one per top-level key in document order */
	size_t n;
};

static enum qa_err parse_moe(struct qa_model_config *out, const struct field_ctx *c,
                             struct qa_diag *d);
static enum qa_err parse_rope(struct qa_model_config *out, const struct field_ctx *c,
                              struct qa_diag *d);

static uint64_t key_off(const struct field_ctx *c, const char *key)
{
	return qa_json_key_offset(c->root, c->off, c->n, key);
}

/*
 * A dimension field: the top-level value, else text_config's (multimodal
 * checkpoints such as Gemma3ForConditionalGeneration keep the decoder's
 * there, and llama.cpp's converter merges it in).  *off is where to report
 * a bad value: the key, or the text_config key for a nested one.
 */
static json_t *field(const struct field_ctx *c, const char *key, uint64_t *off)
{
	json_t *v = json_object_get(c->root, key);
	*off = key_off(c, key);
	if ((!v || json_is_null(v)) && c->text) {
		v = json_object_get(c->text, key);
		*off = key_off(c, "text_config");
	}
	return v;
}

/* Fetch key as a non-negative integer; absent or null leaves *has false. */
static enum qa_err get_uint(const struct field_ctx *c, const char *key,
                            uint64_t *out, bool *has, struct qa_diag *d)
{
	uint64_t off;
	json_t *v = field(c, key, &off);
	*has = false;
	if (!v || json_is_null(v))
		return QA_OK;
	if (!json_is_integer(v))
		return qa_diag_set(d, QA_ERR_FORMAT, off,
		                   "%s is not an integer", key);
	if (json_integer_value(v) < 0)
		return qa_diag_set(d, QA_ERR_FORMAT, off,
		                   "%s is negative (%lld)", key,
		                   (long long)json_integer_value(v));
	*out = (uint64_t)json_integer_value(v);
	*has = true;
	return QA_OK;
}

static enum qa_err get_real(const struct field_ctx *c, const char *key,
                            double *out, bool *has, struct qa_diag *d)
{
	uint64_t off;
	json_t *v = field(c, key, &off);
	*has = false;
	if (!v || json_is_null(v))
		return QA_OK;
	if (!json_is_number(v))
		return qa_diag_set(d, QA_ERR_FORMAT, off,
		                   "%s is not a number", key);
	if (json_number_value(v) < 0)
		return qa_diag_set(d, QA_ERR_FORMAT, off,
		                   "%s is negative", key);
	*out = json_number_value(v);
	*has = true;
	return QA_OK;
}

static enum qa_err copy_name(char *dst, size_t cap, const char *s, uint64_t off,
                             const char *key, struct qa_diag *d)
{
	size_t n = strlen(s);
	if (n >= cap)
		return qa_diag_set(d, QA_ERR_FORMAT, off, "%s is longer than %zu bytes",
		                   key, cap - 1);
	memcpy(dst, s, n + 1);
	return QA_OK;
}

static enum qa_err parse_config(struct qa_model_config *out,
                                const struct field_ctx *c, struct qa_diag *d)
{
	enum qa_err e;
	json_t *v;

	v = json_object_get(c->root, "architectures");
	if (v && !json_is_null(v)) {
		if (!json_is_array(v))
			return qa_diag_set(d, QA_ERR_FORMAT, key_off(c, "architectures"),
			                   "architectures is not an array");
		for (size_t i = 0; i < json_array_size(v); i++)
			if (!json_is_string(json_array_get(v, i)))
				return qa_diag_set(d, QA_ERR_FORMAT,
				                   key_off(c, "architectures"),
				                   "architectures entry %zu is not a string", i);
		if (json_array_size(v) > 0) {
			e = copy_name(out->hf_architecture, sizeof out->hf_architecture,
			              json_string_value(json_array_get(v, 0)),
			              key_off(c, "architectures"), "architectures[0]", d);
			if (e)
				return e;
			out->has_hf_architecture = true;
		}
	}
	v = json_object_get(c->root, "model_type");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return qa_diag_set(d, QA_ERR_FORMAT, key_off(c, "model_type"),
			                   "model_type is not a string");
		e = copy_name(out->model_type, sizeof out->model_type,
		              json_string_value(v), key_off(c, "model_type"),
		              "model_type", d);
		if (e)
			return e;
		out->has_model_type = true;
	}
	/* llama.cpp's converter picks its model class by architectures[0] */
	const struct qa_arch *a = qa_arch_from_config(out->hf_architecture, out->model_type);
	if (a) {
		memcpy(out->architecture, a->name, strlen(a->name) + 1);
		out->has_architecture = true;
	}
	v = json_object_get(c->root, "text_config");
	if (v && !json_is_null(v) && !json_is_object(v))
		return qa_diag_set(d, QA_ERR_FORMAT, key_off(c, "text_config"),
		                   "text_config is not an object");

	if ((e = get_uint(c, "hidden_size", &out->hidden_size, &out->has_hidden_size, d)) ||
	    (e = get_uint(c, "intermediate_size", &out->intermediate_size,
	                  &out->has_intermediate_size, d)) ||
	    (e = get_uint(c, "num_hidden_layers", &out->n_layers, &out->has_n_layers, d)) ||
	    (e = get_uint(c, "num_attention_heads", &out->n_heads, &out->has_n_heads, d)) ||
	    (e = get_uint(c, "num_key_value_heads", &out->n_kv_heads,
	                  &out->has_n_kv_heads, d)) ||
	    (e = get_uint(c, "vocab_size", &out->vocab_size, &out->has_vocab_size, d)) ||
	    (e = get_uint(c, "head_dim", &out->head_dim, &out->has_head_dim, d)) ||
	    (e = get_uint(c, "max_position_embeddings", &out->max_position,
	                  &out->has_max_position, d)) ||
	    (e = get_real(c, "rms_norm_eps", &out->rms_norm_eps, &out->has_rms_norm_eps, d)) ||
	    (e = get_real(c, "rope_theta", &out->rope_theta, &out->has_rope_theta, d)))
		return e;

	uint64_t tie_off;
	v = field(c, "tie_word_embeddings", &tie_off);
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v))
			return qa_diag_set(d, QA_ERR_FORMAT, tie_off,
			                   "tie_word_embeddings is not a boolean");
		out->tie_word_embeddings = json_is_true(v);
		out->has_tie_word_embeddings = true;
	}

	if ((e = parse_moe(out, c, d)) || (e = parse_rope(out, c, d)))
		return e;
	if (!out->has_n_kv_heads && out->has_n_heads)
		out->n_kv_heads = out->n_heads;
	if (!out->has_head_dim && out->has_hidden_size && out->n_heads > 0 &&
	    out->hidden_size % out->n_heads == 0)
		out->head_dim = out->hidden_size / out->n_heads;
	return QA_OK;
}

/*
 * The mixture-of-experts fields (the arch.h rows give the MoE model types
 * their GGUF names).  Each count has two spellings in the wild; the first present wins.
 */
static enum qa_err parse_moe(struct qa_model_config *out, const struct field_ctx *c,
                             struct qa_diag *d)
{
	enum qa_err e;
	if ((e = get_uint(c, "num_experts", &out->n_experts, &out->has_n_experts, d)))
		return e;
	if (!out->has_n_experts &&
	    (e = get_uint(c, "num_local_experts", &out->n_experts, &out->has_n_experts, d)))
		return e;
	if ((e = get_uint(c, "num_experts_per_tok", &out->n_experts_used, &out->has_n_experts_used, d)))
		return e;
	if (!out->has_n_experts_used &&
	    (e = get_uint(c, "experts_per_token", &out->n_experts_used, &out->has_n_experts_used, d)))
		return e;
	if ((e = get_uint(c, "moe_intermediate_size", &out->expert_ffn, &out->has_expert_ffn, d)))
		return e;
	if (!out->has_expert_ffn && out->has_intermediate_size &&
	    qa_arch_has(qa_arch_find(out->architecture), QA_ARCH_FUSED_EXPERTS)) {
		out->expert_ffn = out->intermediate_size;
		out->has_expert_ffn = true;
	}
	return QA_OK;
}

/* A number of the rope object o under key; absent or null leaves *has false. */
static enum qa_err rope_real(json_t *o, const char *key, uint64_t off, double *out, bool *has,
                             struct qa_diag *d)
{
	json_t *v = json_object_get(o, key);
	*has = false;
	if (!v || json_is_null(v))
		return QA_OK;
	if (!json_is_number(v))
		return qa_diag_set(d, QA_ERR_FORMAT, off, "rope_scaling.%s is not a number", key);
	*out = json_number_value(v);
	*has = true;
	return QA_OK;
}

/* A list of numbers of the rope object o, rounded to f32 (torch.tensor(dtype=float32)). */
static enum qa_err rope_list(json_t *o, const char *key, uint64_t off, float *out, uint32_t *n,
                             bool *has, struct qa_diag *d)
{
	json_t *v = json_object_get(o, key);
	*has = false;
	*n = 0;
	if (!v || json_is_null(v))
		return QA_OK;
	if (!json_is_array(v))
		return qa_diag_set(d, QA_ERR_FORMAT, off, "rope_scaling.%s is not a list", key);
	if (json_array_size(v) > QA_ROPE_MAX_FACTORS)
		return qa_diag_set(d, QA_ERR_FORMAT, off, "rope_scaling.%s has %zu entries (at most %u)",
		                   key, json_array_size(v), (unsigned)QA_ROPE_MAX_FACTORS);
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *x = json_array_get(v, i);
		if (!json_is_number(x))
			return qa_diag_set(d, QA_ERR_FORMAT, off, "rope_scaling.%s[%zu] is not a number", key, i);
		out[i] = (float)json_number_value(x);
	}
	*n = (uint32_t)json_array_size(v);
	*has = true;
	return QA_OK;
}

/*
 * rope_parameters / rope_scaling as the converter's ModelBase collects them
 * (see struct qa_rope_config).
 */
static enum qa_err parse_rope(struct qa_model_config *out, const struct field_ctx *c,
                              struct qa_diag *d)
{
	struct qa_rope_config *r = &out->rope;
	uint64_t off;
	const char *key = "rope_parameters";
	json_t *o = field(c, key, &off);
	if (!o) {
		key = "rope_scaling";
		o = field(c, key, &off);
	}
	if (o && !json_is_null(o) && !json_is_object(o))
		return qa_diag_set(d, QA_ERR_FORMAT, off, "%s is neither an object nor null", key);
	json_t *empty = json_object();
	if (!empty)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	if (!o || json_is_null(o))
		o = empty;
	else
		r->present = true;
	/* the converter mirrors the top-level keys only into a flat object */
	bool nested = json_object_get(o, "full_attention") || json_object_get(o, "sliding_attention");
	json_t *full = json_object_get(o, "full_attention");
	if (full && !json_is_object(full)) {
		json_decref(empty);
		return qa_diag_set(d, QA_ERR_FORMAT, off, "%s.full_attention is not an object", key);
	}
	json_t *p = full ? full : o;
	json_t *t = json_object_get(p, "rope_type");
	if (!t || json_is_null(t))
		t = json_object_get(p, "type");
	enum qa_err e = QA_OK;
	if (t && !json_is_null(t) && !json_is_string(t))
		e = qa_diag_set(d, QA_ERR_FORMAT, off, "%s.rope_type is not a string", key);
	else if (t && json_is_string(t))
		e = copy_name(r->type, sizeof r->type, json_string_value(t), off, "rope_type", d);
	for (char *q = r->type; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	double omp = 0;
	bool has_omp = false;
	if (!e)
		e = rope_real(p, "factor", off, &r->factor, &r->has_factor, d);
	if (!e)
		e = rope_real(p, "low_freq_factor", off, &r->low_freq_factor, &r->has_low_freq_factor, d);
	if (!e)
		e = rope_real(p, "high_freq_factor", off, &r->high_freq_factor, &r->has_high_freq_factor, d);
	if (!e)
		e = rope_real(p, "rope_theta", off, &r->rope_theta, &r->has_rope_theta, d);
	if (!e)
		e = rope_real(p, "partial_rotary_factor", off, &r->partial_rotary_factor,
		              &r->has_partial_rotary_factor, d);
	if (!e)
		e = rope_real(p, "original_max_position_embeddings", off, &omp, &has_omp, d);
	if (!e)
		e = rope_list(p, "long_factor", off, r->long_factor, &r->n_long, &r->has_long_factor, d);
	if (!e)
		e = rope_list(p, "short_factor", off, r->short_factor, &r->n_short, &r->has_short_factor, d);
	json_decref(empty);
	if (e)
		return e;
	if (has_omp && (omp < 0 || omp > 9007199254740992.0 || omp != (double)(uint64_t)omp))
		return qa_diag_set(d, QA_ERR_FORMAT, off,
		                   "%s.original_max_position_embeddings is not a non-negative integer", key);
	r->original_max_position = has_omp ? (uint64_t)omp : 0;
	r->has_original_max_position = has_omp;
	if (nested)
		return QA_OK;
	if (!r->has_rope_theta && out->has_rope_theta) {
		r->rope_theta = out->rope_theta;
		r->has_rope_theta = true;
	}
	if (!r->has_partial_rotary_factor &&
	    (e = get_real(c, "partial_rotary_factor", &r->partial_rotary_factor,
	                  &r->has_partial_rotary_factor, d)))
		return e;
	if (!r->has_original_max_position &&
	    (e = get_uint(c, "original_max_position_embeddings", &r->original_max_position,
	                  &r->has_original_max_position, d)))
		return e;
	return QA_OK;
}

enum qa_err qa_config_load(struct qa_model_config *out, const char *path,
                           struct qa_diag *d)
{
	if (!out || !path)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no path given");
	memset(out, 0, sizeof *out);
	char *buf;
	size_t len;
	enum qa_err e = qa_source_slurp(path, MAX_CONFIG_BYTES, "config", &buf, &len, d);
	if (e)
		return e;
	e = qa_config_parse(out, buf, len, d);
	free(buf);
	return e;
}

enum qa_err qa_config_parse(struct qa_model_config *out, const char *buf, size_t len,
                            struct qa_diag *d)
{
	enum qa_err e;
	if (!out || (!buf && len))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no config given");
	memset(out, 0, sizeof *out);
	if (len > MAX_CONFIG_BYTES)
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "config of %zu bytes is too large", len);
	json_error_t je;
	json_t *root = json_loadb(buf ? buf : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return qa_json_error_diag(d, &je, 0, len, "config");
	if (!json_is_object(root)) {
		json_decref(root);
		return qa_diag_set(d, QA_ERR_FORMAT, 0, "config is not a json object");
	}

	json_t *text = json_object_get(root, "text_config");
	struct field_ctx c = { root, json_is_object(text) ? text : NULL, NULL, json_object_size(root) };
	c.off = qa_json_key_offsets(buf, len, qa_json_first_nonspace(buf, len), c.n, 0, 0);
	if (!c.off) {
		json_decref(root);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	e = parse_config(out, &c, d);
	free(c.off);
	json_decref(root);
	if (e)
		memset(out, 0, sizeof *out);
	return e;
}

enum qa_err qa_config_load_beside(struct qa_model_config *out,
                                  const struct qa_st *st, bool *found,
                                  struct qa_diag *d)
{
	if (!out || !found)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no output given");
	memset(out, 0, sizeof *out);
	*found = false;
	const char *dir = qa_st_dir(st);
	if (!dir)
		return QA_OK;
	char *path = qa_path_join(dir, "config.json");
	if (!path)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	struct stat sb;
	if (qa_remote_is_url(path) ? !qa_remote_exists(path)
	                           : stat(path, &sb) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
		free(path);
		return QA_OK;
	}
	*found = true;
	enum qa_err e = qa_config_load(out, path, d);
	if (e)
		qa_diag_prefix(d, e, path);
	free(path);
	return e;
}
