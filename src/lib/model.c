/*
 * model.c - format detection and the reference-checkpoint view.
 */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arch.h"
#include "config.h"
#include "cursor.h"
#include "quant.h"
#include "remote.h"
#include "rope.h"
#include "safetensors.h"
#include "source.h"
#include "types.h"
#include "util.h"

struct qa_ref {
	enum qa_format format;
	char *path;
	struct qa_st *st;        /* safetensors */
	struct qa_source *src;   /* GGUF */
	struct qa_gguf *gguf;
	struct qa_ref_tensor *tensors;
	char **names;            /* owned GGUF names, parallel to tensors */
	char **src_names;        /* owned source names of assembled tensors (or NULL), parallel */
	size_t *expert_parts;    /* QA_REF_STACK part indices, grouped (see moe_index) */
	size_t n;
	size_t *by_name;         /* indices sorted by GGUF name */
	struct qa_ref_info info;
	struct qa_rope_tensor rope[QA_ROPE_MAX_TENSORS]; /* generated tensors' values */
	size_t n_rope;
};

enum qa_err qa_format_detect(const char *path, enum qa_format *out,
                             struct qa_diag *d)
{
	struct stat st;
	bool remote = qa_remote_is_url(path);
	if (!remote && stat(path, &st) != 0)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot open: %s", qa_strerror(errno));
	if ((!remote && S_ISDIR(st.st_mode)) || qa_str_ends_with(path, ".json")) {
		*out = QA_FORMAT_SAFETENSORS;
		return QA_OK;
	}
	struct qa_source *src;
	enum qa_err e = qa_source_open_file(&src, path, d);
	if (e)
		return e;
	uint8_t head[9] = { 0 };
	uint64_t size = qa_source_size(src);
	e = qa_source_read(src, 0, size < 9 ? (size_t)size : 9, head, "header", d);
	qa_source_close(src);
	if (e)
		return e; /* an I/O error, not a format verdict */
	if (size >= 4 && memcmp(head, "GGUF", 4) == 0)
		*out = QA_FORMAT_GGUF;
	else if (size >= 9 && head[8] == '{')
		*out = QA_FORMAT_SAFETENSORS;
	else if (qa_str_ends_with(path, ".gguf"))
		*out = QA_FORMAT_GGUF; /* let the reader say what is wrong */
	else if (qa_str_ends_with(path, ".safetensors"))
		*out = QA_FORMAT_SAFETENSORS;
	else
		return qa_diag_set(d, QA_ERR_FORMAT, 0,
		                   "neither gguf (magic \"GGUF\") nor safetensors (8-byte length, then a json header)");
	return QA_OK;
}

struct name_slot {
	const char *name;
	size_t index;
};

static int cmp_slot(const void *a, const void *b)
{
	return strcmp(((const struct name_slot *)a)->name, ((const struct name_slot *)b)->name);
}

/* Build the name index and reject two source tensors landing on one name. */
static enum qa_err index_names(struct qa_ref *r, struct qa_diag *d)
{
	struct name_slot *slots = malloc((r->n ? r->n : 1) * sizeof *slots);
	r->by_name = malloc((r->n ? r->n : 1) * sizeof *r->by_name);
	if (!slots || !r->by_name) {
		free(slots);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	for (size_t i = 0; i < r->n; i++)
		slots[i] = (struct name_slot){ r->tensors[i].name, i };
	qsort(slots, r->n, sizeof *slots, cmp_slot);
	for (size_t i = 0; i < r->n; i++)
		r->by_name[i] = slots[i].index;
	free(slots);
	for (size_t i = 1; i < r->n; i++) {
		const struct qa_ref_tensor *a = &r->tensors[r->by_name[i - 1]];
		const struct qa_ref_tensor *b = &r->tensors[r->by_name[i]];
		if (strcmp(a->name, b->name) == 0)
			return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
			                   "tensors '%s' and '%s' both map to '%s'",
			                   a->src_name, b->src_name, a->name);
	}
	return QA_OK;
}

/* Dimensions from the tensors when there is no config.json. */
static void infer_info(struct qa_ref *r)
{
	struct qa_ref_info *in = &r->info;
	bool has_output = false, has_q_bias = false;
	uint64_t q_rows = 0, k_rows = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct qa_ref_tensor *t = &r->tensors[i];
		uint32_t layer;
		if (qa_names_layer(t->name, &layer) && layer + 1 > in->n_layer)
			in->n_layer = layer + 1;
		if (strcmp(t->name, "output.weight") == 0)
			has_output = true;
		if (strcmp(t->name, "token_embd.weight") == 0 && t->n_dims == 2) {
			in->hidden = t->ne[0];
			in->vocab = t->ne[1];
		}
		if (strcmp(t->name, "blk.0.ffn_up.weight") == 0 && t->n_dims == 2)
			in->ffn = t->ne[1];
		if (strcmp(t->name, "blk.0.attn_q.bias") == 0)
			has_q_bias = true;
		if (strcmp(t->name, "blk.0.attn_q.weight") == 0 && t->n_dims == 2)
			q_rows = t->ne[1];
		if (strcmp(t->name, "blk.0.attn_k.weight") == 0 && t->n_dims == 2)
			k_rows = t->ne[1];
		if (strcmp(t->name, "blk.0.ffn_gate_exps.weight") == 0 && t->n_dims == 3 &&
		    t->ne[2] <= UINT32_MAX) {
			in->n_expert = (uint32_t)t->ne[2];
			in->expert_ffn = t->ne[1];
		}
	}
	in->tied = !has_output;
	if (!in->arch[0])
		snprintf(in->arch, sizeof in->arch, "%s", has_q_bias ? "qwen2" : "llama");
	/* Guess a head size that divides both projections; the ratio (the GQA
	 * factor the recipes use) is exact whichever divisor is picked. */
	static const uint64_t head_dims[] = { 64, 128, 96, 80, 256, 32 };
	for (size_t k = 0; q_rows && k_rows && k < sizeof head_dims / sizeof head_dims[0]; k++) {
		if (q_rows % head_dims[k] == 0 && k_rows % head_dims[k] == 0) {
			in->n_head = (uint32_t)(q_rows / head_dims[k]);
			in->n_head_kv = (uint32_t)(k_rows / head_dims[k]);
			break;
		}
	}
	if (!in->n_head && q_rows && k_rows && q_rows % k_rows == 0) {
		in->n_head = (uint32_t)(q_rows / k_rows);
		in->n_head_kv = 1;
	}
}

/* ------------------------------------------------------------ mixture of experts */

/*
 * llama.cpp's converter writes MoE experts as 3-D tensors.  qwen2moe and
 * qwen3moe checkpoints hold one 2-D tensor per expert and projection
 * (model.layers.L.mlp.experts.X.{gate,up,down}_proj.weight); the converter
 * keeps them until all of a layer's have been seen and then writes
 * torch.stack(dim=0) of each projection, down first, then gate, then up
 * (conversion/qwen.py).  gpt-oss (conversion/gpt_oss.py) holds them fused
 * and [in, out]: gate_up_proj [E, in, 2*ffn] is transposed and split into
 * gate (outputs 0::2) and up (1::2), down_proj [E, ffn, in] transposed, and
 * gate_up_proj_bias split like the outputs.  Nothing is copied at open:
 * the reference tensors record how to assemble, and qa_ref_read_f32 does it.
 */
enum { PROJ_GATE, PROJ_UP, PROJ_DOWN, N_PROJ };
static const char *const proj_hf[N_PROJ] = { "gate_proj", "up_proj", "down_proj" };
static const char *const proj_gguf[N_PROJ] = { "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps" };

struct expert_part {
	uint32_t layer, expert;
	int proj;
	size_t index;      /* reader index */
	size_t first, end; /* the layer's parts: [first, end) of the sorted array */
	size_t last;       /* the largest reader index among them (where the layer is emitted) */
};

struct moe_index {
	struct expert_part *parts; /* sorted by layer, projection, expert */
	size_t n;
	size_t *pos;               /* reader index -> position in parts, SIZE_MAX for none */
};

static void moe_index_free(struct moe_index *mx)
{
	free(mx->parts);
	free(mx->pos);
	mx->parts = NULL;
	mx->pos = NULL;
	mx->n = 0;
}

/* A canonical decimal at *p (advanced past it), at most 9 digits. */
static bool take_number(const char **p, uint32_t *out)
{
	const char *s = *p;
	uint32_t v = 0;
	size_t n = 0;
	while (s[n] >= '0' && s[n] <= '9' && n < 10)
		v = v * 10 + (uint32_t)(s[n++] - '0');
	if (n == 0 || n > 9 || (n > 1 && s[0] == '0'))
		return false;
	*out = v;
	*p = s + n;
	return true;
}

static bool take(const char **p, const char *lit)
{
	size_t n = strlen(lit);
	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

/* "model.layers.L.mlp.experts.X.PROJ.weight" */
static bool parse_expert(const char *name, struct expert_part *out)
{
	const char *p = name;
	if (!take(&p, "model.layers.") || !take_number(&p, &out->layer) ||
	    !take(&p, ".mlp.experts.") || !take_number(&p, &out->expert) || !take(&p, "."))
		return false;
	for (int k = 0; k < N_PROJ; k++) {
		const char *q = p;
		if (take(&q, proj_hf[k]) && strcmp(q, ".weight") == 0) {
			out->proj = k;
			return true;
		}
	}
	return false;
}

static int cmp_part(const void *a, const void *b)
{
	const struct expert_part *x = a, *y = b;
	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	if (x->proj != y->proj)
		return x->proj < y->proj ? -1 : 1;
	if (x->expert != y->expert)
		return x->expert < y->expert ? -1 : 1;
	return 0;
}

/* Collect and check the per-expert tensors of a qwen2moe/qwen3moe checkpoint. */
static enum qa_err moe_index_build(struct qa_ref *r, struct moe_index *mx, struct qa_diag *d)
{
	size_t nt = qa_st_n_tensors(r->st);
	mx->parts = malloc((nt ? nt : 1) * sizeof *mx->parts);
	mx->pos = malloc((nt ? nt : 1) * sizeof *mx->pos);
	if (!mx->parts || !mx->pos)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (size_t i = 0; i < nt; i++)
		mx->pos[i] = SIZE_MAX;
	for (size_t i = 0; i < nt; i++) {
		struct expert_part ep;
		if (parse_expert(qa_st_tensor_at(r->st, i)->name, &ep)) {
			ep.index = i;
			mx->parts[mx->n++] = ep;
		}
	}
	qsort(mx->parts, mx->n, sizeof *mx->parts, cmp_part);
	/* Each layer: every projection holds experts 0..E-1 once, one shape and dtype each. */
	for (size_t a = 0; a < mx->n;) {
		size_t b = a;
		while (b < mx->n && mx->parts[b].layer == mx->parts[a].layer)
			b++;
		uint32_t want = r->info.n_expert;
		size_t per[N_PROJ] = { 0 }, start[N_PROJ] = { 0 };
		for (size_t k = a; k < b; k++)
			per[mx->parts[k].proj]++;
		if (!want)
			want = (uint32_t)per[PROJ_GATE];
		for (int q = 1; q < N_PROJ; q++)
			start[q] = start[q - 1] + per[q - 1];
		for (int q = 0; q < N_PROJ; q++)
			if (per[q] != want || want == 0)
				return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
				                   "layer %u has %zu %s expert tensors, not %u",
				                   mx->parts[a].layer, per[q], proj_hf[q], want);
		for (size_t k = a; k < b; k++) {
			const struct expert_part *ep = &mx->parts[k];
			const struct qa_st_tensor *s = qa_st_tensor_at(r->st, ep->index);
			size_t first = a + start[ep->proj];
			if (ep->expert != k - first)
				return qa_diag_set(d, QA_ERR_FORMAT, s->data_offset,
				                   "layer %u: the %s experts are not 0..%u, each once (tensor '%s')",
				                   ep->layer, proj_hf[ep->proj], want - 1, s->name);
			const struct qa_st_tensor *s0 = qa_st_tensor_at(r->st, mx->parts[first].index);
			if (s->n_dims != 2 || strcmp(s->dtype, s0->dtype) != 0 ||
			    s->shape[0] != s0->shape[0] || s->shape[1] != s0->shape[1])
				return qa_diag_set(d, QA_ERR_FORMAT, s->data_offset,
				                   "expert tensor '%s' is not 2-D or differs in shape or dtype from "
				                   "expert 0's (the converter stacks them into one tensor)", s->name);
		}
		size_t last = 0;
		for (size_t k = a; k < b; k++)
			if (mx->parts[k].index > last)
				last = mx->parts[k].index;
		for (size_t k = a; k < b; k++) {
			mx->parts[k].first = a;
			mx->parts[k].end = b;
			mx->parts[k].last = last;
			mx->pos[mx->parts[k].index] = k;
		}
		a = b;
	}
	return QA_OK;
}

/* Append an assembled tensor; name and src_name are taken over (freed by close). */
static struct qa_ref_tensor *moe_add(struct qa_ref *r, char *name, char *src_name,
                                     const struct qa_st_tensor *s, struct qa_diag *d)
{
	if (!name || !src_name) {
		free(name);
		free(src_name);
		qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		return NULL;
	}
	struct qa_ref_tensor *t = &r->tensors[r->n];
	r->names[r->n] = name;
	r->src_names[r->n] = src_name;
	r->n++;
	memset(t, 0, sizeof *t);
	t->name = name;
	t->src_name = src_name;
	t->src_dtype = s->dtype;
	t->src_type = qa_st_dtype_type(s->dtype);
	t->perm = QA_PERM_NONE;
	return t;
}

static char *fmt_name(const char *fmt, uint32_t layer, const char *what)
{
	char buf[160];
	snprintf(buf, sizeof buf, fmt, layer, what);
	return qa_str_dup(buf);
}

static enum qa_err set_dims(struct qa_ref_tensor *t, uint32_t n_dims, uint64_t a, uint64_t b,
                            uint64_t c, struct qa_diag *d)
{
	t->n_dims = n_dims;
	t->ne[0] = a;
	t->ne[1] = b;
	t->ne[2] = c;
	t->ne[3] = 1;
	uint64_t n;
	if (!qa_mul_u64(a, b, &n) || !qa_mul_u64(n, c, &n))
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET, "tensor '%s' is too large", t->name);
	t->n_elems = n;
	return QA_OK;
}

/* qwen2moe/qwen3moe: at the layer's last expert tensor, emit down, gate, up. */
static enum qa_err stack_experts(struct qa_ref *r, struct moe_index *mx, size_t i, bool *taken,
                                 struct qa_diag *d)
{
	size_t k = mx->pos ? mx->pos[i] : SIZE_MAX;
	if (k == SIZE_MAX)
		return QA_OK;
	*taken = true;
	if (mx->parts[k].last != i)
		return QA_OK; /* not the layer's last expert tensor yet */
	uint32_t layer = mx->parts[k].layer;
	size_t a = mx->parts[k].first, b = mx->parts[k].end;
	if (!r->expert_parts) {
		r->expert_parts = malloc((mx->n ? mx->n : 1) * sizeof *r->expert_parts);
		if (!r->expert_parts)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		for (size_t j = 0; j < mx->n; j++)
			r->expert_parts[j] = mx->parts[j].index;
	}
	static const int order[N_PROJ] = { PROJ_DOWN, PROJ_GATE, PROJ_UP };
	size_t per = (b - a) / N_PROJ;
	for (int o = 0; o < N_PROJ; o++) {
		size_t first = a + (size_t)order[o] * per; /* sorted: projection groups in enum order */
		const struct qa_st_tensor *s = qa_st_tensor_at(r->st, mx->parts[first].index);
		char src[160];
		snprintf(src, sizeof src, "model.layers.%u.mlp.experts.{0..%zu}.%s.weight", layer,
		         per - 1, proj_hf[order[o]]);
		struct qa_ref_tensor *t = moe_add(r, fmt_name("blk.%u.%s.weight", layer, proj_gguf[order[o]]),
		                                  qa_str_dup(src), s, d);
		if (!t)
			return QA_ERR_NOMEM;
		t->assembly = QA_REF_STACK;
		t->parts = r->expert_parts + first;
		t->n_parts = per;
		t->src_index = mx->parts[first].index;
		enum qa_err e = set_dims(t, 3, s->shape[1], s->shape[0], per, d);
		if (e)
			return e;
	}
	return QA_OK;
}

/* The reader index of safetensors tensor t (found by name, so present). */
static size_t st_index_of(const struct qa_st *st, const struct qa_st_tensor *t)
{
	size_t k = 0;
	while (qa_st_tensor_at(st, k) != t)
		k++;
	return k;
}

/*
 * gpt-oss's MXFP4 checkpoint (what is published on the Hub): per layer
 * mlp.experts.gate_up_proj_blocks [E, 2*ffn, nb, 16] with _scales
 * [E, 2*ffn, nb], and down_proj_blocks [E, hidden, nb, 16] with _scales,
 * all U8, rows already [out] and 32 values per block.  conversion/gpt_oss.py
 * (generate_extra_tensors, repack_mxfp4) repacks them without dequantizing:
 * gate = rows 0::2 and up = rows 1::2 of gate_up, each a ggml mxfp4 tensor
 * of ne [nb*32, rows, E].  Emitted at the _blocks tensor; the _scales one
 * is only taken (and checked there).
 */
static enum qa_err mxfp4_experts(struct qa_ref *r, size_t i, const char *p, uint32_t layer,
                                 bool *taken, struct qa_diag *d)
{
	const struct qa_st_tensor *s = qa_st_tensor_at(r->st, i);
	bool gate_up = strncmp(p, "gate_up_proj_", 13) == 0, down = strncmp(p, "down_proj_", 10) == 0;
	if (!gate_up && !down)
		return QA_OK;
	*taken = true;
	if (qa_str_ends_with(p, "_scales")) {
		/* the partner must exist: a lone _scales tensor has nothing to scale */
		char bn[256];
		snprintf(bn, sizeof bn, "%.*sblocks", (int)(strlen(s->name) - 6), s->name);
		if (!qa_st_tensor_find(r->st, bn))
			return qa_diag_set(d, QA_ERR_FORMAT, s->data_offset,
			                   "gpt-oss tensor '%s' has no '%s'", s->name, bn);
		return QA_OK;
	}
	char sn[256];
	snprintf(sn, sizeof sn, "%.*sscales", (int)(strlen(s->name) - 6), s->name);
	const struct qa_st_tensor *sc = qa_st_tensor_find(r->st, sn);
	uint32_t stride = gate_up ? 2 : 1;
	if (!sc || strcmp(s->dtype, "U8") != 0 || strcmp(sc->dtype, "U8") != 0 || s->n_dims != 4 ||
	    sc->n_dims != 3 || s->shape[3] != 16 || s->shape[0] != sc->shape[0] ||
	    s->shape[1] != sc->shape[1] || s->shape[2] != sc->shape[2] || s->shape[1] % stride)
		return qa_diag_set(d, QA_ERR_FORMAT, s->data_offset,
		                   "gpt-oss MXFP4 tensor '%s' must be U8 [experts, rows, blocks, 16] with a U8 "
		                   "'%s' [experts, rows, blocks]%s", s->name, sn,
		                   gate_up ? " and an even row count (gate and up interleaved)" : "");
	size_t si = st_index_of(r->st, sc);
	for (uint32_t sel = 0; sel < stride; sel++) {
		const char *what = down ? "ffn_down_exps" : sel ? "ffn_up_exps" : "ffn_gate_exps";
		char src[320];
		snprintf(src, sizeof src, "%s + %s%s (mxfp4)", s->name, sc->name,
		         down ? "" : sel ? " [rows 1::2]" : " [rows 0::2]");
		struct qa_ref_tensor *t = moe_add(r, fmt_name("blk.%u.%s.weight", layer, what),
		                                  qa_str_dup(src), s, d);
		if (!t)
			return QA_ERR_NOMEM;
		t->src_type = QA_TYPE_MXFP4;
		t->src_index = i;
		t->src_scales = si;
		t->select = sel;
		t->stride = stride;
		t->assembly = QA_REF_MXFP4;
		uint64_t cols;
		enum qa_err e = !qa_mul_u64(s->shape[2], 32, &cols)
		                ? qa_diag_set(d, QA_ERR_FORMAT, s->data_offset, "tensor '%s' is too large", s->name)
		                : set_dims(t, 3, cols, s->shape[1] / stride, s->shape[0], d);
		if (e)
			return e;
	}
	return QA_OK;
}

/* gpt-oss: the fused expert tensors and the gate/up bias. */
static enum qa_err fused_experts(struct qa_ref *r, size_t i, bool *taken, struct qa_diag *d)
{
	const struct qa_st_tensor *s = qa_st_tensor_at(r->st, i);
	const char *p = s->name;
	uint32_t layer;
	if (!take(&p, "model.layers.") || !take_number(&p, &layer) || !take(&p, ".mlp.experts."))
		return QA_OK;
	if (qa_str_ends_with(p, "_proj_blocks") || qa_str_ends_with(p, "_proj_scales"))
		return mxfp4_experts(r, i, p, layer, taken, d);
	bool gate_up = strcmp(p, "gate_up_proj") == 0, down = strcmp(p, "down_proj") == 0;
	bool bias = strcmp(p, "gate_up_proj_bias") == 0;
	if (!gate_up && !down && !bias)
		return QA_OK; /* down_proj_bias maps by name */
	*taken = true;
	uint32_t want_dims = bias ? 2 : 3;
	uint64_t last = s->n_dims ? s->shape[s->n_dims - 1] : 0;
	if (s->n_dims != want_dims || ((gate_up || bias) && last % 2))
		return qa_diag_set(d, QA_ERR_FORMAT, s->data_offset,
		                   "gpt-oss tensor '%s' must be %u-D%s", s->name, want_dims,
		                   down ? "" : " with an even last dimension (gate and up interleaved)");
	for (uint32_t sel = 0; sel < (down ? 1u : 2u); sel++) {
		const char *what = down ? "ffn_down_exps" : sel ? "ffn_up_exps" : "ffn_gate_exps";
		char src[160];
		snprintf(src, sizeof src, "%s%s%s", s->name, down ? "" : sel ? "[..1::2]" : "[..0::2]",
		         bias ? "" : " (transposed per expert)");
		struct qa_ref_tensor *t = moe_add(r, fmt_name(bias ? "blk.%u.%s.bias" : "blk.%u.%s.weight",
		                                              layer, what), qa_str_dup(src), s, d);
		if (!t)
			return QA_ERR_NOMEM;
		t->src_index = i;
		t->select = sel;
		t->stride = down ? 1 : 2;
		t->assembly = bias ? QA_REF_SPLIT : QA_REF_EXPERT_T;
		enum qa_err e = bias ? set_dims(t, 2, s->shape[1] / 2, s->shape[0], 1, d)
		                     : set_dims(t, 3, s->shape[1], s->shape[2] / t->stride, s->shape[0], d);
		if (e)
			return e;
	}
	return QA_OK;
}

/*
 * Called for every source tensor of a MoE checkpoint in order: *taken is set
 * when the tensor belongs to an assembled one (and is not added by name).
 */
static enum qa_err moe_assemble(struct qa_ref *r, struct moe_index *mx, size_t i, bool *taken,
                                struct qa_diag *d)
{
	*taken = false;
	if (qa_arch_has(qa_arch_find(r->info.arch), QA_ARCH_FUSED_EXPERTS))
		return fused_experts(r, i, taken, d);
	return stack_experts(r, mx, i, taken, d);
}

/* qa_ref_read_f32 of an assembled tensor. */
static enum qa_err moe_read(struct qa_ref *r, const struct qa_ref_tensor *t, float *dst,
                            struct qa_diag *d)
{
	enum qa_err e;
	if (t->assembly == QA_REF_MXFP4)
		return qa_ref_read_rows_f32(r, t, 0, t->n_elems / t->ne[0], dst, d);
	if (t->assembly == QA_REF_STACK) {
		size_t per = (size_t)(t->n_elems / (t->n_parts ? t->n_parts : 1));
		for (size_t x = 0; x < t->n_parts; x++) {
			const struct qa_st_tensor *s = qa_st_tensor_at(r->st, t->parts[x]);
			if ((e = qa_st_tensor_read_f32(r->st, s, 0, per, dst + x * per, d)))
				return e;
		}
		return QA_OK;
	}
	const struct qa_st_tensor *s = qa_st_tensor_at(r->st, t->src_index);
	if (s->n_elems > SIZE_MAX / sizeof(float))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "tensor '%s' too large", s->name);
	float *tmp = malloc((size_t)s->n_elems * sizeof *tmp);
	if (!tmp)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	e = qa_st_tensor_read_f32(r->st, s, 0, (size_t)s->n_elems, tmp, d);
	if (!e && t->assembly == QA_REF_SPLIT) {
		/* [rows, cols * stride] -> [rows, cols] */
		size_t cols = (size_t)t->ne[0], rows = (size_t)t->ne[1];
		for (size_t y = 0; y < rows; y++)
			for (size_t c = 0; c < cols; c++)
				dst[y * cols + c] = tmp[(y * cols + c) * t->stride + t->select];
	} else if (!e) {
		/* [E, A, B * stride] -> per expert [B, A]: dst[e][o][a] = src[e][a][o*stride+select] */
		size_t A = (size_t)t->ne[0], B = (size_t)t->ne[1], E = (size_t)t->ne[2];
		size_t row = B * t->stride;
		for (size_t x = 0; x < E; x++) {
			const float *src = tmp + x * A * row;
			float *out = dst + x * A * B;
			for (size_t o = 0; o < B; o++)
				for (size_t a = 0; a < A; a++)
					out[o * A + a] = src[a * row + o * t->stride + t->select];
		}
	}
	free(tmp);
	return e;
}

/* ------------------------------------------------------------ generated and cut tensors */

/* The tensors the converter generates from config.json, first (rope.h). */
static enum qa_err add_generated(struct qa_ref *r, const struct qa_arch *row,
                                 const struct qa_model_config *cfg, struct qa_diag *d)
{
	enum qa_err e = qa_rope_generate(row, cfg, r->rope, &r->n_rope, d);
	if (e)
		return qa_diag_prefix(d, e, "config.json");
	for (size_t i = 0; i < r->n_rope; i++) {
		struct qa_ref_tensor *t = &r->tensors[r->n++];
		t->name = r->rope[i].name;
		t->src_name = r->rope[i].origin;
		t->src_dtype = "F32";
		t->src_type = QA_TYPE_F32;
		t->n_dims = 1;
		t->ne[0] = r->rope[i].n;
		t->ne[1] = t->ne[2] = t->ne[3] = 1;
		t->n_elems = r->rope[i].n;
		t->assembly = QA_REF_GENERATED;
		t->values = r->rope[i].data;
	}
	return QA_OK;
}

/* Whether path (local or remote) exists. */
static bool exists(const char *path)
{
	struct stat sb;
	return qa_remote_is_url(path) ? qa_remote_exists(path) : stat(path, &sb) == 0;
}

/* tokenizer.json's len(model.vocab) + len(added_tokens), as Gemma3Model counts them. */
static enum qa_err tokenizer_json_size(const char *path, uint64_t *n, struct qa_diag *d)
{
	char *buf;
	size_t len;
	enum qa_err e = qa_source_slurp(path, UINT64_C(1) << 30, "tokenizer.json", &buf, &len, d);
	if (e)
		return e;
	json_error_t je;
	json_t *root = json_loadb(buf, len, 0, &je);
	free(buf);
	if (!root)
		return qa_diag_set(d, QA_ERR_FORMAT, je.position, "tokenizer.json: %s", je.text);
	json_t *model = json_object_get(root, "model");
	json_t *vocab = json_is_object(model) ? json_object_get(model, "vocab") : NULL;
	json_t *added = json_object_get(root, "added_tokens");
	bool ok = (json_is_object(vocab) || json_is_array(vocab)) && json_is_array(added);
	if (ok)
		*n = (uint64_t)(json_is_object(vocab) ? json_object_size(vocab) : json_array_size(vocab)) +
		     json_array_size(added);
	json_decref(root);
	if (!ok)
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                   "tokenizer.json: model.vocab (an object or list) or added_tokens (a list) is missing");
	return QA_OK;
}

/*
 * Gemma3Model.modify_tensors keeps the first n_vocab_real rows of
 * embed_tokens: vocab_size (as _create_vocab_sentencepiece sizes the vocabulary)
 * when tokenizer.model exists, else tokenizer.json's count.  A slice past the
 * end keeps every row.
 */
static enum qa_err cut_vocab(struct qa_ref *r, const struct qa_model_config *cfg, struct qa_diag *d)
{
	struct qa_ref_tensor *t = NULL;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->tensors[i].name, "token_embd.weight") == 0 &&
		    r->tensors[i].assembly == QA_REF_DIRECT && r->tensors[i].n_dims == 2)
			t = &r->tensors[i];
	const char *dir = qa_st_dir(r->st);
	if (!t || !dir)
		return QA_OK;
	char *sp = qa_path_join(dir, "tokenizer.model"), *tj = qa_path_join(dir, "tokenizer.json");
	enum qa_err e = QA_OK;
	uint64_t keep = 0;
	bool known = false;
	if (!sp || !tj) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	} else if (exists(sp)) {
		if (!cfg->has_vocab_size)
			e = qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
			                "%s: gemma3's token_embd is cut to the tokenizer's size, which config.json's "
			                "vocab_size would give; quantaudit does not read the SentencePiece model",
			                sp);
		keep = cfg->vocab_size;
		known = true;
	} else if (exists(tj)) {
		e = tokenizer_json_size(tj, &keep, d);
		if (e)
			qa_diag_prefix(d, e, tj);
		known = true;
	}
	free(sp);
	free(tj);
	if (e)
		return e;
	if (known && keep >= t->ne[1])
		return QA_OK;
	size_t cap = strlen(t->src_name) + 160;
	char *src = malloc(cap);
	if (!src)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	if (known)
		snprintf(src, cap, "%s[:%llu]", t->src_name, (unsigned long long)keep);
	else
		snprintf(src, cap, "%s (not cut to the tokenizer's size: no tokenizer.model or "
		         "tokenizer.json beside config.json)", t->src_name);
	r->src_names[t - r->tensors] = src;
	t->src_name = src;
	if (known) { /* the rows are the source's first ones: a shorter read of the same tensor */
		t->ne[1] = keep;
		t->n_elems = keep * t->ne[0];
	}
	return QA_OK;
}

static enum qa_err open_st(struct qa_ref *r, const char *path, struct qa_diag *d)
{
	enum qa_err e = qa_st_open(&r->st, path, d);
	if (e)
		return e;
	struct qa_model_config cfg;
	bool found = false;
	memset(&cfg, 0, sizeof cfg);
	e = qa_config_load_beside(&cfg, r->st, &found, d);
	if (e)
		return e;
	struct qa_ref_info *in = &r->info;
	const struct qa_arch *row = NULL;
	if (found && !cfg.has_architecture && (cfg.has_hf_architecture || cfg.has_model_type)) {
		char known[QA_ARCH_LIST_CAP];
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "config.json names architecture '%s', which quantaudit does not know (known: %s)",
		                   cfg.has_hf_architecture ? cfg.hf_architecture : cfg.model_type,
		                   qa_arch_known_list(known, sizeof known));
	}
	if (found) {
		row = qa_arch_find(cfg.architecture); /* NULL when the config names none */
		snprintf(in->arch, sizeof in->arch, "%s", row ? row->gguf : "");
		in->n_layer = (uint32_t)cfg.n_layers;
		in->n_head = (uint32_t)cfg.n_heads;
		in->n_head_kv = (uint32_t)cfg.n_kv_heads;
		in->hidden = cfg.hidden_size;
		in->ffn = cfg.intermediate_size;
		in->vocab = cfg.vocab_size;
		in->context = cfg.max_position;
		in->rms_eps = cfg.rms_norm_eps;
		in->has_rms_eps = cfg.has_rms_norm_eps;
		in->rope_theta = cfg.rope_theta;
		in->has_rope_theta = cfg.has_rope_theta;
		in->n_expert = cfg.has_n_experts && cfg.n_experts <= UINT32_MAX ? (uint32_t)cfg.n_experts : 0;
		in->n_expert_used = cfg.has_n_experts_used && cfg.n_experts_used <= UINT32_MAX
		                  ? (uint32_t)cfg.n_experts_used : 0;
		in->expert_ffn = cfg.expert_ffn;
		in->from_config = true;
	}
	size_t nt = qa_st_n_tensors(r->st);
	/* An assembled gpt-oss tensor can yield two (gate and up): room for 2 per
	 * source, and for the generated ones. */
	size_t cap = 2 * nt + QA_ROPE_MAX_TENSORS;
	r->tensors = calloc(cap, sizeof *r->tensors);
	r->names = calloc(cap, sizeof *r->names);
	r->src_names = calloc(cap, sizeof *r->src_names);
	if (!r->tensors || !r->names || !r->src_names)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	if (found && (e = add_generated(r, row, &cfg, d)))
		return e;
	/* names: the config's row; without one, qwen2 and llama name alike */
	const char *arch = row ? row->name : "qwen2";
	bool plus_one = qa_arch_has(row, QA_ARCH_NORM_PLUS_ONE);
	struct moe_index mx = { 0 };
	if (qa_names_arch_is_moe(arch) && (e = moe_index_build(r, &mx, d))) {
		moe_index_free(&mx); /* what the build allocated before it found the fault */
		return e;
	}
	for (size_t i = 0; i < nt; i++) {
		const struct qa_st_tensor *s = qa_st_tensor_at(r->st, i);
		bool taken = false;
		if (qa_names_arch_is_moe(arch) && (e = moe_assemble(r, &mx, i, &taken, d))) {
			moe_index_free(&mx);
			return e;
		}
		if (taken)
			continue;
		size_t cap = strlen(s->name) + 64;
		char *name = malloc(cap);
		if (!name)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		if (qa_names_to_gguf(arch, s->name, name, cap) == QA_NAME_DROPPED) {
			free(name);
			continue;
		}
		if (s->n_dims > 4) {
			free(name);
			return qa_diag_set(d, QA_ERR_UNSUPPORTED, s->data_offset,
			                   "tensor '%s' has %u dimensions; gguf allows 4",
			                   s->name, s->n_dims);
		}
		struct qa_ref_tensor *t = &r->tensors[r->n];
		r->names[r->n] = name;
		t->name = name;
		t->src_name = s->name;
		t->src_dtype = s->dtype;
		t->src_type = qa_st_dtype_type(s->dtype);
		t->n_dims = s->n_dims ? s->n_dims : 1;
		for (uint32_t k = 0; k < 4; k++)
			t->ne[k] = 1;
		for (uint32_t k = 0; k < s->n_dims; k++)
			t->ne[k] = s->shape[s->n_dims - 1 - k];
		t->n_elems = s->n_elems;
		t->src_index = i;
		t->plus_one = plus_one && qa_str_ends_with(s->name, "norm.weight");
		r->n++;
	}
	moe_index_free(&mx);
	if (found && qa_arch_has(row, QA_ARCH_VOCAB_CUT) && (e = cut_vocab(r, &cfg, d)))
		return e;
	if (!found)
		infer_info(r);
	for (size_t i = 0; i < r->n; i++) {
		struct qa_ref_tensor *t = &r->tensors[i];
		t->perm = qa_names_permutation(r->info.arch, t->name);
		if (t->perm == QA_PERM_NONE)
			continue;
		/* The converter's q/k row permutation needs the head counts: refuse
		 * now rather than when the tensor is read. */
		uint32_t heads = t->perm == QA_PERM_Q ? r->info.n_head : r->info.n_head_kv;
		uint64_t cols = t->n_dims < 2 ? 1 : t->ne[0], rows = t->n_elems / (cols ? cols : 1);
		if (!r->info.from_config)
			return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
			                   "tensor '%s': the %s q/k permutation needs the head counts of config.json, "
			                   "which is missing", t->src_name, r->info.arch);
		if (heads == 0 || rows % (2ull * heads) != 0)
			return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
			                   "tensor '%s': %llu rows cannot be split into %u heads for the %s q/k "
			                   "permutation (check num_attention_heads and num_key_value_heads in config.json)",
			                   t->src_name, (unsigned long long)rows, heads, r->info.arch);
	}
	/* Trust the tensors over config.json's tie_word_embeddings. */
	r->info.tied = qa_ref_tensor_find(r, "output.weight") == NULL;
	return QA_OK;
}

static uint32_t meta_u32(const struct qa_gguf *g, const char *arch, const char *suffix)
{
	char key[160];
	uint64_t v = 0;
	snprintf(key, sizeof key, "%s.%s", arch, suffix);
	if (!qa_gguf_get_u64(g, key, &v) || v > UINT32_MAX)
		return 0;
	return (uint32_t)v;
}

static enum qa_err open_gguf(struct qa_ref *r, const char *path, struct qa_diag *d)
{
	enum qa_err e = qa_source_open_file(&r->src, path, d);
	if (e)
		return e;
	e = qa_gguf_open(&r->gguf, r->src, d);
	if (e)
		return e;
	struct qa_gguf *g = r->gguf;
	struct qa_ref_info *in = &r->info;
	const char *arch = qa_gguf_get_str(g, "general.architecture");
	const char *name = qa_gguf_get_str(g, "general.name");
	snprintf(in->arch, sizeof in->arch, "%s", arch ? arch : "");
	snprintf(in->name, sizeof in->name, "%s", name ? name : "");
	if (arch) {
		in->n_layer = meta_u32(g, arch, "block_count");
		in->n_head = meta_u32(g, arch, "attention.head_count");
		in->n_head_kv = meta_u32(g, arch, "attention.head_count_kv");
		in->hidden = meta_u32(g, arch, "embedding_length");
		in->ffn = meta_u32(g, arch, "feed_forward_length");
		in->context = meta_u32(g, arch, "context_length");
		if (!in->n_head_kv)
			in->n_head_kv = in->n_head;
		in->n_expert = meta_u32(g, arch, "expert_count");
		in->n_expert_used = meta_u32(g, arch, "expert_used_count");
		in->expert_ffn = meta_u32(g, arch, "expert_feed_forward_length");
		in->from_config = in->n_layer && in->n_head;
	}
	size_t nt = qa_gguf_n_tensors(g);
	r->tensors = calloc(nt ? nt : 1, sizeof *r->tensors);
	if (!r->tensors)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (size_t i = 0; i < nt; i++) {
		const struct qa_gguf_tensor *s = qa_gguf_tensor_at(g, i);
		struct qa_ref_tensor *t = &r->tensors[i];
		t->name = s->name;
		t->src_name = s->name;
		t->src_dtype = qa_type_name(s->type);
		t->src_type = (s->type == QA_TYPE_F32 || s->type == QA_TYPE_F16 ||
		               s->type == QA_TYPE_BF16 || s->type == QA_TYPE_MXFP4) ? s->type : QA_TYPE_COUNT;
		t->n_dims = s->n_dims;
		memcpy(t->ne, s->ne, sizeof t->ne);
		t->n_elems = s->n_elems;
		t->perm = QA_PERM_NONE;
		t->src_index = i;
	}
	r->n = nt;
	if (!in->from_config)
		infer_info(r);
	r->info.tied = qa_ref_tensor_find(r, "output.weight") == NULL;
	return QA_OK;
}

enum qa_err qa_ref_open(struct qa_ref **out, const char *path, struct qa_diag *d)
{
	enum qa_format fmt;
	enum qa_err e = qa_format_detect(path, &fmt, d);
	if (e)
		return e;
	struct qa_ref *r = calloc(1, sizeof *r);
	if (!r || !(r->path = qa_str_dup(path))) {
		free(r);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	r->format = fmt;
	e = fmt == QA_FORMAT_GGUF ? open_gguf(r, path, d) : open_st(r, path, d);
	if (!e)
		e = index_names(r, d);
	if (e) {
		qa_ref_close(r);
		return e;
	}
	*out = r;
	return QA_OK;
}

void qa_ref_close(struct qa_ref *r)
{
	if (!r)
		return;
	if (r->names)
		for (size_t i = 0; i < r->n; i++)
			free(r->names[i]);
	if (r->src_names)
		for (size_t i = 0; i < r->n; i++)
			free(r->src_names[i]);
	free(r->names);
	free(r->src_names);
	free(r->expert_parts);
	qa_rope_free(r->rope, r->n_rope);
	free(r->tensors);
	free(r->by_name);
	qa_st_close(r->st);
	qa_gguf_close(r->gguf);
	qa_source_close(r->src);
	free(r->path);
	free(r);
}

enum qa_format qa_ref_format(const struct qa_ref *r) { return r->format; }
const char *qa_ref_path(const struct qa_ref *r) { return r->path; }
size_t qa_ref_n_tensors(const struct qa_ref *r) { return r->n; }
const struct qa_ref_info *qa_ref_info(const struct qa_ref *r) { return &r->info; }

const struct qa_ref_tensor *qa_ref_tensor_at(const struct qa_ref *r, size_t i)
{
	return i < r->n ? &r->tensors[i] : NULL;
}

const struct qa_ref_tensor *qa_ref_tensor_find(const struct qa_ref *r, const char *gguf_name)
{
	if (!r->by_name) { /* during open, before the index exists */
		for (size_t i = 0; i < r->n; i++)
			if (strcmp(r->tensors[i].name, gguf_name) == 0)
				return &r->tensors[i];
		return NULL;
	}
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->tensors[r->by_name[mid]].name, gguf_name);
		if (c == 0)
			return &r->tensors[r->by_name[mid]];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void qa_ref_model_shape(const struct qa_ref *r, struct qa_model_shape *out)
{
	memset(out, 0, sizeof *out);
	out->arch = r->info.arch;
	out->n_layer = r->info.n_layer;
	out->n_head = r->info.n_head;
	out->n_head_kv = r->info.n_head_kv ? r->info.n_head_kv : r->info.n_head;
	out->tied = r->info.tied;
	out->n_expert = r->info.n_expert;
}

/*
 * n elements of safetensors tensor t from element first, widened to f32;
 * Gemma's converter then adds 1 (in f32) to its norms, and so does this.
 */
static enum qa_err st_read(struct qa_ref *r, const struct qa_ref_tensor *t, uint64_t first,
                           size_t n, float *dst, struct qa_diag *d)
{
	enum qa_err e = qa_st_tensor_read_f32(r->st, qa_st_tensor_at(r->st, t->src_index), first, n,
	                                      dst, d);
	for (size_t k = 0; !e && t->plus_one && k < n; k++)
		dst[k] = dst[k] + 1.0f;
	return e;
}

/* The error for a reference tensor that is neither f32, f16 nor bf16. */
static enum qa_err not_float(const struct qa_ref_tensor *t, struct qa_diag *d)
{
	return qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET,
	                   "tensor '%s' is %s; only f32, f16 and bf16 references can be quantized",
	                   t->src_name, t->src_dtype);
}

/* Elements [first, first + n) of t, from a GGUF reference, as f32. */
static enum qa_err gguf_read(struct qa_ref *r, const struct qa_ref_tensor *t, uint64_t first, size_t n,
                             float *dst, struct qa_diag *d)
{
	const struct qa_gguf_tensor *s = qa_gguf_tensor_at(r->gguf, t->src_index);
	const void *p;
	enum qa_err e = qa_gguf_tensor_view(r->gguf, s, &p, d);
	if (e)
		return e;
	/* f32, f16 and bf16 are one element per block; mxfp4 (gpt-oss's
	 * experts) is read in whole blocks */
	const struct qa_type_info *ti = qa_type_get(s->type);
	if (first % ti->block_elems || n % ti->block_elems)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "tensor '%s': no such element range", t->name);
	qa_quant_ops(s->type)->dequantize((const uint8_t *)p + first / ti->block_elems * ti->block_bytes,
	                                  dst, n);
	return QA_OK;
}

enum qa_err qa_ref_read_f32(struct qa_ref *r, const struct qa_ref_tensor *t,
                            float *dst, struct qa_diag *d)
{
	if (t->src_type == QA_TYPE_COUNT)
		return not_float(t, d);
	if (t->n_elems > SIZE_MAX / sizeof(float))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "tensor '%s' too large", t->name);
	if (r->format == QA_FORMAT_GGUF)
		return gguf_read(r, t, 0, (size_t)t->n_elems, dst, d);
	if (t->assembly == QA_REF_GENERATED)
		return qa_ref_read_f32_range(r, t, 0, (size_t)t->n_elems, dst, d);
	if (t->assembly != QA_REF_DIRECT)
		return moe_read(r, t, dst, d);
	const struct qa_st_tensor *s = qa_st_tensor_at(r->st, t->src_index);
	if (t->perm == QA_PERM_NONE)
		return st_read(r, t, 0, (size_t)t->n_elems, dst, d);
	if (!r->info.from_config)
		return qa_diag_set(d, QA_ERR_FORMAT, QA_NO_OFFSET,
		                   "tensor '%s': the %s q/k permutation needs head counts from config.json",
		                   t->src_name, r->info.arch);
	float *tmp = malloc((size_t)t->n_elems * sizeof *tmp);
	if (!tmp)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	enum qa_err e = qa_st_tensor_read_f32(r->st, s, 0, (size_t)t->n_elems, tmp, d);
	if (!e) {
		uint64_t cols = t->n_dims < 2 ? 1 : t->ne[0], rows = t->n_elems / (cols ? cols : 1);
		uint32_t heads = t->perm == QA_PERM_Q ? r->info.n_head : r->info.n_head_kv;
		e = qa_names_permute_rows(tmp, dst, rows, cols, heads, d);
	}
	free(tmp);
	return e;
}

uint64_t qa_ref_row_align(const struct qa_ref *r, const struct qa_ref_tensor *t)
{
	uint32_t heads = t->perm == QA_PERM_Q ? r->info.n_head : r->info.n_head_kv;
	uint64_t cols = t->ne[0] ? t->ne[0] : 1, rows = t->n_elems / cols;
	if (r->format != QA_FORMAT_SAFETENSORS || t->perm == QA_PERM_NONE || !heads ||
	    rows % heads)
		return 1;
	return rows / heads;
}

enum qa_err qa_ref_read_rows_f32(struct qa_ref *r, const struct qa_ref_tensor *t,
                                 uint64_t row0, uint64_t n_rows, float *dst,
                                 struct qa_diag *d)
{
	uint64_t cols = t->ne[0], rows = cols ? t->n_elems / cols : 0, align = qa_ref_row_align(r, t);
	uint64_t first, n, end;
	if (t->src_type == QA_TYPE_COUNT)
		return qa_ref_read_f32(r, t, dst, d); /* its error */
	if (!qa_add_u64(row0, n_rows, &end) || end > rows || row0 % align || n_rows % align ||
	    !qa_mul_u64(row0, cols, &first) || !qa_mul_u64(n_rows, cols, &n) ||
	    n > SIZE_MAX / sizeof(float))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "rows %llu..+%llu of tensor '%s' cannot be read",
		                   (unsigned long long)row0, (unsigned long long)n_rows, t->name);
	if (n == 0)
		return QA_OK;
	if (r->format == QA_FORMAT_GGUF) {
		const struct qa_gguf_tensor *s = qa_gguf_tensor_at(r->gguf, t->src_index);
		const struct qa_type_info *ti = qa_type_get(s->type);
		uint64_t off = first / ti->block_elems * ti->block_bytes;
		uint64_t len = n / ti->block_elems * ti->block_bytes;
		const void *p;
		enum qa_err e = qa_gguf_tensor_view_range(r->gguf, s, off, (size_t)len, &p, d);
		if (e)
			return e;
		qa_quant_ops(s->type)->dequantize(p, dst, (size_t)n);
		qa_gguf_tensor_release(r->gguf, s, off, len);
		return QA_OK;
	}
	if (t->assembly == QA_REF_STACK || t->assembly == QA_REF_GENERATED) /* rows in order */
		return qa_ref_read_f32_range(r, t, first, (size_t)n, dst, d);
	if (t->assembly == QA_REF_MXFP4) {
		/* the repacked blocks, dequantized as ggml dequantizes the converted file */
		const struct qa_type_info *ti = qa_type_get(QA_TYPE_MXFP4);
		uint8_t *raw = malloc((size_t)(n / ti->block_elems * ti->block_bytes));
		if (!raw)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		enum qa_err e = qa_ref_read_raw(r, t, row0, n_rows, raw, d);
		if (!e)
			qa_quant_ops(QA_TYPE_MXFP4)->dequantize(raw, dst, (size_t)n);
		free(raw);
		return e;
	}
	if (t->assembly != QA_REF_DIRECT) {
		/* gpt-oss's transposed assemblies: built whole, the rows copied out */
		if (n == t->n_elems)
			return qa_ref_read_f32(r, t, dst, d);
		float *all = malloc((size_t)t->n_elems * sizeof *all);
		if (!all)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		enum qa_err e = qa_ref_read_f32(r, t, all, d);
		if (!e)
			memcpy(dst, all + first, (size_t)n * sizeof *dst);
		free(all);
		return e;
	}
	const struct qa_st_tensor *s = qa_st_tensor_at(r->st, t->src_index);
	if (t->perm == QA_PERM_NONE)
		return st_read(r, t, first, (size_t)n, dst, d); /* Gemma's norms: + 1 here too */
	if (!r->info.from_config || (t->n_dims < 2 && n_rows == rows))
		return qa_ref_read_f32(r, t, dst, d); /* its error, or a permuted bias: one row */
	float *tmp = malloc((size_t)n * sizeof *tmp);
	if (!tmp)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	/* whole heads: each is permuted within itself */
	enum qa_err e = qa_st_tensor_read_f32(r->st, s, first, (size_t)n, tmp, d);
	if (!e)
		e = qa_names_permute_rows(tmp, dst, n_rows, cols, (uint32_t)(n_rows / align), d);
	free(tmp);
	return e;
}

bool qa_ref_tensor_quantized(const struct qa_ref_tensor *t)
{
	return t->src_type == QA_TYPE_MXFP4;
}

/* n bytes at off of safetensors tensor s (bounds checked against it). */
static enum qa_err st_bytes(struct qa_ref *r, const struct qa_st_tensor *s, uint64_t off, size_t n,
                            void *dst, struct qa_diag *d)
{
	if (off > s->end - s->begin || n > s->end - s->begin - off)
		return qa_diag_set(d, QA_ERR_FORMAT, s->data_offset, "tensor '%s': bytes out of range",
		                   s->name);
	return qa_source_read(qa_st_shard_source(r->st, s->shard), s->data_offset + off, n, dst,
	                      s->name, d);
}

/*
 * One block of HF's MXFP4 (transformers: value 2j in the low and 2j+1 in
 * the high nibble of byte j) as ggml's block_mxfp4: the E8M0 scale byte,
 * then value j in the low and j + 16 in the high nibble of byte j.  This is
 * what conversion/gpt_oss.py's transform_nibble_layout computes.
 */
static void mxfp4_block(uint8_t scale, const uint8_t hf[16], uint8_t out[17])
{
	uint8_t v[32];
	for (int j = 0; j < 16; j++) {
		v[2 * j] = hf[j] & 0x0f;
		v[2 * j + 1] = hf[j] >> 4;
	}
	out[0] = scale;
	for (int j = 0; j < 16; j++)
		out[1 + j] = (uint8_t)(v[j] | v[j + 16] << 4);
}

enum qa_err qa_ref_read_raw(struct qa_ref *r, const struct qa_ref_tensor *t, uint64_t row0,
                            uint64_t n_rows, void *dst, struct qa_diag *d)
{
	const struct qa_type_info *ti = qa_type_get(t->src_type);
	uint64_t cols = t->ne[0], rows = cols ? t->n_elems / cols : 0, end, row_bytes, len;
	if (!qa_ref_tensor_quantized(t) || !ti || cols % ti->block_elems || !qa_add_u64(row0, n_rows, &end) ||
	    end > rows || !qa_mul_u64(cols / ti->block_elems, ti->block_bytes, &row_bytes) ||
	    !qa_mul_u64(row_bytes, n_rows, &len) || len > SIZE_MAX)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "rows %llu..+%llu of tensor '%s' cannot be read as %s blocks",
		                   (unsigned long long)row0, (unsigned long long)n_rows, t->name,
		                   qa_type_name(t->src_type));
	if (r->format == QA_FORMAT_GGUF) {
		const struct qa_gguf_tensor *s = qa_gguf_tensor_at(r->gguf, t->src_index);
		const void *p;
		enum qa_err e = qa_gguf_tensor_view_range(r->gguf, s, row0 * row_bytes, (size_t)len, &p, d);
		if (e)
			return e;
		memcpy(dst, p, (size_t)len);
		qa_gguf_tensor_release(r->gguf, s, row0 * row_bytes, len);
		return QA_OK;
	}
	/* QA_REF_MXFP4: shapes were checked at open (blocks [E, R, nb, 16], scales [E, R, nb]) */
	const struct qa_st_tensor *b = qa_st_tensor_at(r->st, t->src_index);
	const struct qa_st_tensor *sc = qa_st_tensor_at(r->st, t->src_scales);
	uint64_t nb = b->shape[2], hf_rows = b->shape[1], per = t->ne[1];
	uint8_t *buf = malloc((size_t)(nb * 17));
	if (!buf)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	enum qa_err e = QA_OK;
	uint8_t *out = dst;
	for (uint64_t k = 0; !e && k < n_rows; k++) {
		uint64_t row = row0 + k, x = row / per, o = row % per;
		uint64_t hr = x * hf_rows + o * t->stride + t->select; /* the row in the HF tensors */
		if ((e = st_bytes(r, sc, hr * nb, (size_t)nb, buf, d)) ||
		    (e = st_bytes(r, b, hr * nb * 16, (size_t)(nb * 16), buf + nb, d)))
			break;
		for (uint64_t j = 0; j < nb; j++)
			mxfp4_block(buf[j], buf + nb + j * 16, out + k * row_bytes + j * 17);
	}
	free(buf);
	return e;
}

enum qa_err qa_ref_read_f32_range(struct qa_ref *r, const struct qa_ref_tensor *t, uint64_t first,
                                  size_t n_elems, float *dst, struct qa_diag *d)
{
	if (t->src_type == QA_TYPE_COUNT)
		return not_float(t, d);
	if (t->perm != QA_PERM_NONE || first > t->n_elems || n_elems > t->n_elems - first ||
	    t->assembly == QA_REF_EXPERT_T || t->assembly == QA_REF_SPLIT || t->assembly == QA_REF_MXFP4)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "tensor '%s': no such element range",
		                   t->name);
	if (t->assembly == QA_REF_GENERATED) {
		memcpy(dst, t->values + first, n_elems * sizeof *dst);
		return QA_OK;
	}
	if (t->assembly == QA_REF_STACK) {
		/* the range crosses the experts' tensors in order */
		uint64_t per = t->n_elems / (t->n_parts ? t->n_parts : 1);
		while (n_elems) {
			uint64_t x = first / per, off = first % per;
			size_t take = per - off < n_elems ? (size_t)(per - off) : n_elems;
			enum qa_err e = qa_st_tensor_read_f32(r->st, qa_st_tensor_at(r->st, t->parts[x]), off, take, dst, d);
			if (e)
				return e;
			first += take;
			dst += take;
			n_elems -= take;
		}
		return QA_OK;
	}
	if (r->format == QA_FORMAT_GGUF)
		return gguf_read(r, t, first, n_elems, dst, d);
	return st_read(r, t, first, n_elems, dst, d);
}

static enum qa_err set_u32_if(struct qa_gguf_writer *w, const char *arch, const char *suffix,
                              uint64_t v, struct qa_diag *d)
{
	char key[160];
	if (!v || v > UINT32_MAX)
		return QA_OK;
	snprintf(key, sizeof key, "%s.%s", arch, suffix);
	return qa_gguf_writer_set_u32(w, key, (uint32_t)v, d);
}

struct qa_gguf *qa_ref_gguf(const struct qa_ref *r)
{
	return r->format == QA_FORMAT_GGUF ? r->gguf : NULL;
}

enum qa_err qa_ref_write_metadata(const struct qa_ref *r, struct qa_gguf_writer *w,
                                  struct qa_diag *d)
{
	enum qa_err e;
	if (r->format == QA_FORMAT_GGUF) {
		for (size_t i = 0; i < qa_gguf_n_kv(r->gguf); i++) {
			const struct qa_gguf_kv *kv = qa_gguf_kv_at(r->gguf, i);
			if ((e = qa_gguf_writer_add_kv(w, kv->key, &kv->value, d)))
				return e;
		}
		return QA_OK;
	}
	const struct qa_ref_info *in = &r->info;
	const char *arch = in->arch;
	if ((e = qa_gguf_writer_set_str(w, "general.architecture", arch, d)))
		return e;
	if (in->name[0] && (e = qa_gguf_writer_set_str(w, "general.name", in->name, d)))
		return e;
	if ((e = set_u32_if(w, arch, "block_count", in->n_layer, d)) ||
	    (e = set_u32_if(w, arch, "context_length", in->context, d)) ||
	    (e = set_u32_if(w, arch, "embedding_length", in->hidden, d)) ||
	    (e = set_u32_if(w, arch, "feed_forward_length", in->ffn, d)) ||
	    (e = set_u32_if(w, arch, "attention.head_count", in->n_head, d)) ||
	    (e = set_u32_if(w, arch, "attention.head_count_kv", in->n_head_kv, d)) ||
	    (e = set_u32_if(w, arch, "expert_count", in->n_expert, d)) ||
	    (e = set_u32_if(w, arch, "expert_used_count", in->n_expert_used, d)) ||
	    (e = set_u32_if(w, arch, "expert_feed_forward_length", in->n_expert ? in->expert_ffn : 0, d)))
		return e;
	char key[160];
	if (in->has_rope_theta) {
		snprintf(key, sizeof key, "%s.rope.freq_base", arch);
		if ((e = qa_gguf_writer_set_f32(w, key, (float)in->rope_theta, d)))
			return e;
	}
	if (in->has_rms_eps) {
		snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
		if ((e = qa_gguf_writer_set_f32(w, key, (float)in->rms_eps, d)))
			return e;
	}
	return QA_OK;
}

size_t qa_ref_n_sources(const struct qa_ref *r)
{
	return r->format == QA_FORMAT_GGUF ? 1 : qa_st_n_shards(r->st);
}

struct qa_source *qa_ref_source(const struct qa_ref *r, size_t i)
{
	return r->format == QA_FORMAT_GGUF ? r->src : qa_st_shard_source(r->st, (uint32_t)i);
}

enum qa_err qa_ref_require_float(const struct qa_ref *r, struct qa_diag *d)
{
	if (qa_ref_format(r) != QA_FORMAT_GGUF)
		return QA_OK; /* safetensors: non-float dtypes are ordinary extras */
	for (size_t i = 0; i < r->n; i++)
		if (r->tensors[i].src_type == QA_TYPE_COUNT ||
		    (r->tensors[i].src_type == QA_TYPE_MXFP4 &&
		     !qa_str_ends_with(r->tensors[i].name, "_exps.weight")))
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "a reference must hold f32/f16/bf16 weights (tensor '%s' is %s)",
			                   r->tensors[i].name, r->tensors[i].src_dtype);
	return QA_OK;
}
