/*
 * synth.c - writing deterministic synthetic safetensors checkpoints.
 *
 * The tensor list is planned from the options, the header is built with
 * jansson (insertion order kept), and the data is streamed chunk by chunk:
 * a chunk of rows (at most CHUNK_BYTES, or one row if that is larger) is
 * generated in parallel by the pool while one pool item writes the
 * previous chunk from a second buffer, so memory stays bounded by two
 * chunks whatever the model size.
 *
 * Each row has its own xoshiro256** streams seeded through splitmix64 from
 * (seed, tensor index, row index): one for the row scale and the normal
 * values (a ziggurat), one for the positions and factors of
 * the heavy-tail values (Bernoulli positions drawn as geometric gaps).  The
 * logarithm and exponential are computed here from IEEE basic operations
 * so the output never depends on the C library's libm.
 */
#define _POSIX_C_SOURCE 200809L
#include "synth.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "arch.h"
#include "cursor.h"
#include "fp16.h"
#include "pool.h"
#include "tmpfile.h"
#include "types.h"

/* Bytes generated per write: the memory bound of the writer. */
#define CHUNK_BYTES (32u * 1024 * 1024)
/* Elements per pool item (rows are grouped up to this size). */
#define ITEM_ELEMS 65536u

/* Statistics. */
#define BASE_STD 0.02      /* weight and embedding std before the row scale */
#define LINEAR_SIGMA 0.35  /* log-normal sigma of a linear layer's row scale */
#define EMBED_SIGMA 0.25   /* log-normal sigma of an embedding row's scale */
#define BIAS_STD 0.02
#define NORM_STD 0.05
#define TAIL_P 0.002       /* fraction of matrix values that are heavy-tailed */
#define TAIL_MIN 8.0       /* heavy-tail factor drawn uniformly in [TAIL_MIN, TAIL_MIN + TAIL_SPAN) */
#define TAIL_SPAN 7.0

enum kind {
	K_EMBED, K_LINEAR, K_BIAS, K_NORM,
	/* gpt-oss --mxfp4: U8 bytes.  Blocks are rows of cols bytes written as
	 * [outer, rows/outer, cols/16, 16]: random nibbles (the 16 FP4 codes);
	 * scales are E8M0 exponents 117..122 (blocks of at most 6 * 2^-5). */
	K_MX_BLOCKS, K_MX_SCALES
};

struct spec {
	char name[96];
	uint32_t n_dims;   /* 1, 2 or 3 */
	uint64_t outer;    /* the leading dimension of a 3-D tensor (experts); rows counts all of them */
	uint64_t rows;     /* 1 for a vector */
	uint64_t cols;     /* elements per row */
	enum kind kind;
};

/* ------------------------------------------------------------ random */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s[4];
};

static void rng_seed(struct rng *r, uint64_t h)
{
	for (int i = 0; i < 4; i++) {
		h += UINT64_C(0x9e3779b97f4a7c15);
		r->s[i] = mix64(h);
	}
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in the open interval (0, 1), never 0 or 1. */
static inline double rng_open01(struct rng *r)
{
	return ((double)(int64_t)(rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Natural logarithm of a positive normal double, from basic operations only. */
static inline double det_log(double x)
{
	uint64_t b;
	memcpy(&b, &x, sizeof b);
	int e = (int)((b >> 52) & 0x7ff) - 1022;
	b = (b & UINT64_C(0x000fffffffffffff)) | (UINT64_C(1022) << 52); /* m in [0.5, 1) */
	double m;
	memcpy(&m, &b, sizeof m);
	if (m < 0.70710678118654752) {
		m *= 2.0;
		e--;
	}
	/* log m = 2 atanh(s), |s| <= 0.1716: the series to s^17 is exact to double precision. */
	double s = (m - 1.0) / (m + 1.0), z = s * s;
	double p = 1.0 / 17;
	p = p * z + 1.0 / 15;
	p = p * z + 1.0 / 13;
	p = p * z + 1.0 / 11;
	p = p * z + 1.0 / 9;
	p = p * z + 1.0 / 7;
	p = p * z + 1.0 / 5;
	p = p * z + 1.0 / 3;
	p = p * z + 1.0;
	return (double)e * 0.69314718055994531 + 2.0 * s * p;
}

/*
 * e^x from basic operations: x is halved until |x| <= 1/8, a degree-10
 * Taylor polynomial (error below 1e-18 there) is evaluated and the result
 * squared back.  Accurate to a few ulp for the arguments used here
 * (|x| < 40).  The coefficients 1/k! are constant-folded, correctly
 * rounded, by the compiler.
 */
static double det_exp(double x)
{
	int k = 0;
	while (x > 0.125 || x < -0.125) {
		x *= 0.5;
		k++;
	}
	double t = 1.0 / 3628800;
	t = t * x + 1.0 / 362880;
	t = t * x + 1.0 / 40320;
	t = t * x + 1.0 / 5040;
	t = t * x + 1.0 / 720;
	t = t * x + 1.0 / 120;
	t = t * x + 1.0 / 24;
	t = t * x + 1.0 / 6;
	t = t * x + 0.5;
	t = t * x + 1.0;
	t = t * x + 1.0;
	while (k--)
		t *= t;
	return t;
}

/*
 * Standard normal values by the ziggurat method with 128 layers
 * (Marsaglia and Tsang; the layout of the tables follows Doornik's
 * description): x[i] are the layer edges, ratio[i] = x[i+1] / x[i] the
 * part of each layer that is accepted without evaluating the density.
 */
#define ZIG_LAYERS 128
#define ZIG_R 3.442619855899      /* start of the tail */
#define ZIG_V 9.91256303526217e-3 /* area of each layer */

struct zig {
	double x[ZIG_LAYERS + 1];
	double ratio[ZIG_LAYERS];
};

static void zig_init(struct zig *z)
{
	double f = det_exp(-0.5 * ZIG_R * ZIG_R);
	z->x[0] = ZIG_V / f;
	z->x[1] = ZIG_R;
	z->x[ZIG_LAYERS] = 0.0;
	for (int i = 2; i < ZIG_LAYERS; i++) {
		z->x[i] = sqrt(-2.0 * det_log(ZIG_V / z->x[i - 1] + f));
		f = det_exp(-0.5 * z->x[i] * z->x[i]);
	}
	for (int i = 0; i < ZIG_LAYERS; i++)
		z->ratio[i] = z->x[i + 1] / z->x[i];
}

static inline double zig_normal(struct rng *r, const struct zig *z)
{
	for (;;) {
		uint64_t b = rng_next(r);
		unsigned i = (unsigned)(b & (ZIG_LAYERS - 1));
		/* bits 12..63: u in (-1, 1), exact */
		double u = ((double)(int64_t)(b >> 12) + 0.5) * (1.0 / 2251799813685248.0) - 1.0;
		double au = u < 0 ? -u : u;
		if (au < z->ratio[i])
			return u * z->x[i];
		if (i == 0) {
			/* beyond ZIG_R: Marsaglia's exponential rejection */
			double t, y;
			do {
				t = det_log(rng_open01(r)) / ZIG_R;
				y = det_log(rng_open01(r));
			} while (-2.0 * y < t * t);
			return u < 0 ? t - ZIG_R : ZIG_R - t;
		}
		double x = u * z->x[i];
		double f0 = det_exp(-0.5 * (z->x[i] * z->x[i] - x * x));
		double f1 = det_exp(-0.5 * (z->x[i + 1] * z->x[i + 1] - x * x));
		if (f1 + rng_open01(r) * (f0 - f1) < 1.0)
			return x;
	}
}

/* ------------------------------------------------------------ rows */

static uint64_t row_hash(uint64_t seed, uint64_t tensor, uint64_t row, uint64_t stream)
{
	uint64_t h = mix64(seed ^ UINT64_C(0x7173796e74680001)); /* "qsynth" */
	h = mix64(h ^ (tensor * UINT64_C(0x9e3779b97f4a7c15)));
	h = mix64(h ^ (row * UINT64_C(0xd1b54a32d192ed03)));
	return mix64(h ^ (stream * UINT64_C(0xaef17502108ef2d9)));
}

/* log(1 - TAIL_P), written out so that no libm is involved. */
static const double log1m_tail_p = -0.0020020026706730775;

/* Gap to the next heavy-tail value: geometric with success probability TAIL_P. */
static inline uint64_t tail_gap(struct rng *r, uint64_t limit)
{
	double g = det_log(rng_open01(r)) / log1m_tail_p;
	return g >= (double)limit ? limit : (uint64_t)g;
}

static inline void store_elem(uint8_t *p, float v, uint32_t dtype)
{
	switch (dtype) {
	case QA_TYPE_BF16: qa_store_le16(p, qa_fp32_to_bf16(v)); break;
	case QA_TYPE_F16: qa_store_le16(p, qa_fp32_to_fp16(v)); break;
	default: qa_store_lef32(p, v); break;
	}
}

/* Generate row `row` of tensor `index` (spec t) into out (cols elements of esize bytes). */
static void gen_row(const struct spec *t, uint64_t index, uint64_t row, uint64_t seed,
                    uint32_t dtype, size_t esize, const struct zig *zt, uint8_t *out)
{
	struct rng g;
	rng_seed(&g, row_hash(seed, index, row, 0));
	uint64_t n = t->cols;
	if (t->kind == K_MX_BLOCKS || t->kind == K_MX_SCALES) {
		for (uint64_t i = 0; i < n; i++) {
			uint64_t b = rng_next(&g);
			out[i] = t->kind == K_MX_BLOCKS ? (uint8_t)(b >> 56) : (uint8_t)(117 + (b >> 32) % 6);
		}
		return;
	}
	double offset = 0.0, scale;
	bool tails = false;
	switch (t->kind) {
	case K_NORM: offset = 1.0; scale = NORM_STD; break;
	case K_BIAS: scale = BIAS_STD; break;
	default: {
		double sigma = t->kind == K_EMBED ? EMBED_SIGMA : LINEAR_SIGMA;
		double z = zig_normal(&g, zt);
		z = z < -4.0 ? -4.0 : z > 4.0 ? 4.0 : z;
		scale = BASE_STD * det_exp(sigma * z);
		tails = true;
		break;
	}
	}
	struct rng tr;
	uint64_t next_tail = n;
	if (tails) {
		rng_seed(&tr, row_hash(seed, index, row, 1));
		next_tail = tail_gap(&tr, n);
	}
	for (uint64_t i = 0; i < n; i++) {
		double z = zig_normal(&g, zt);
		if (i == next_tail) {
			z *= TAIL_MIN + TAIL_SPAN * rng_open01(&tr);
			next_tail = i + 1 + tail_gap(&tr, n);
		}
		store_elem(out + i * esize, (float)(offset + scale * z), dtype);
	}
}

/*
 * One round of the writer: item 0 writes the previous chunk (if any) while
 * items 1.. generate the rows of the current chunk into the other buffer.
 */
struct chunk_job {
	const struct spec *t;
	uint64_t index;     /* tensor index */
	uint64_t row0;      /* first row of the chunk */
	uint64_t n_rows;    /* rows in the chunk */
	uint64_t rows_per_item;
	uint64_t seed;
	uint32_t dtype;
	size_t esize;
	const struct zig *zt;
	uint8_t *buf;       /* n_rows rows */
	/* the write of the previous chunk */
	int fd;
	const void *pending;
	size_t pending_len;
	const char *path;
	struct qa_diag *d;
};

static enum qa_err write_all(int fd, const void *buf, size_t n, const char *path,
                             struct qa_diag *d);

static enum qa_err chunk_item(void *ctx, size_t item, unsigned worker)
{
	(void)worker;
	struct chunk_job *j = ctx;
	if (item == 0)
		return j->pending_len ? write_all(j->fd, j->pending, j->pending_len, j->path, j->d) : QA_OK;
	uint64_t r = (uint64_t)(item - 1) * j->rows_per_item;
	uint64_t end = r + j->rows_per_item;
	if (end > j->n_rows)
		end = j->n_rows;
	size_t row_bytes = (size_t)j->t->cols * j->esize;
	for (; r < end; r++)
		gen_row(j->t, j->index, j->row0 + r, j->seed, j->dtype, j->esize, j->zt,
		        j->buf + (size_t)r * row_bytes);
	return QA_OK;
}

/* ------------------------------------------------------------ plan */

static size_t dtype_size(uint32_t dtype)
{
	return dtype == QA_TYPE_F32 ? 4 : 2;
}

static const char *dtype_st_name(uint32_t dtype)
{
	return dtype == QA_TYPE_F32 ? "F32" : dtype == QA_TYPE_F16 ? "F16" : "BF16";
}

/* Bytes per element of spec t: U8 for the MXFP4 parts, else the dtype's. */
static size_t spec_esize(const struct qa_synth_opts *o, const struct spec *t)
{
	return t->kind == K_MX_BLOCKS || t->kind == K_MX_SCALES ? 1 : dtype_size(o->dtype);
}

static const char *dtype_torch_name(uint32_t dtype)
{
	return dtype == QA_TYPE_F32 ? "float32" : dtype == QA_TYPE_F16 ? "float16" : "bfloat16";
}

/* Gemma checkpoints are always tied (tie_word_embeddings, no lm_head). */
static bool synth_tied(const struct qa_synth_opts *o)
{
	return o->tied || qa_arch_has(qa_arch_find(o->arch), QA_ARCH_TIED);
}

static void add(struct spec *s, size_t *n, enum kind kind, uint64_t rows, uint64_t cols,
                const char *fmt, uint32_t layer)
{
	if (s) {
		struct spec *t = &s[*n];
		snprintf(t->name, sizeof t->name, fmt, layer);
		t->n_dims = rows ? 2 : 1;
		t->outer = 1;
		t->rows = rows ? rows : 1;
		t->cols = cols;
		t->kind = kind;
	}
	(*n)++;
}

/*
 * Fill s (when not NULL) with the tensors of o, which has passed the
 * option checks; return their count.  rows == 0 passed to add() marks a vector.
 */
static size_t plan_moe(const struct qa_synth_opts *o, uint64_t d, struct spec *s);
static bool arch_is_moe(const char *arch);

static size_t plan(const struct qa_synth_opts *o, uint64_t d, struct spec *s)
{
	if (arch_is_moe(o->arch))
		return plan_moe(o, d, s);
	const struct qa_arch *a = qa_arch_find(o->arch);
	bool bias = qa_arch_has(a, QA_ARCH_QKV_BIAS), qk_norm = qa_arch_has(a, QA_ARCH_QK_NORM);
	bool sandwich = qa_arch_has(a, QA_ARCH_FFN_SANDWICH), fused = qa_arch_has(a, QA_ARCH_FUSED);
	uint64_t H = o->hidden, I = o->intermediate, V = o->vocab;
	uint64_t q = (uint64_t)o->heads * d, kv = (uint64_t)o->kv_heads * d;
	size_t n = 0;
	add(s, &n, K_EMBED, V, H, "model.embed_tokens.weight", 0);
	for (uint32_t l = 0; l < o->layers; l++) {
		add(s, &n, K_NORM, 0, H, "model.layers.%" PRIu32 ".input_layernorm.weight", l);
		if (fused) {
			/* phi3: q, k and v rows stacked in one projection */
			add(s, &n, K_LINEAR, q + 2 * kv, H, "model.layers.%" PRIu32 ".self_attn.qkv_proj.weight", l);
		} else {
			add(s, &n, K_LINEAR, q, H, "model.layers.%" PRIu32 ".self_attn.q_proj.weight", l);
			if (bias)
				add(s, &n, K_BIAS, 0, q, "model.layers.%" PRIu32 ".self_attn.q_proj.bias", l);
			add(s, &n, K_LINEAR, kv, H, "model.layers.%" PRIu32 ".self_attn.k_proj.weight", l);
			if (bias)
				add(s, &n, K_BIAS, 0, kv, "model.layers.%" PRIu32 ".self_attn.k_proj.bias", l);
			add(s, &n, K_LINEAR, kv, H, "model.layers.%" PRIu32 ".self_attn.v_proj.weight", l);
			if (bias)
				add(s, &n, K_BIAS, 0, kv, "model.layers.%" PRIu32 ".self_attn.v_proj.bias", l);
		}
		if (qk_norm) {
			add(s, &n, K_NORM, 0, d, "model.layers.%" PRIu32 ".self_attn.q_norm.weight", l);
			add(s, &n, K_NORM, 0, d, "model.layers.%" PRIu32 ".self_attn.k_norm.weight", l);
		}
		add(s, &n, K_LINEAR, H, q, "model.layers.%" PRIu32 ".self_attn.o_proj.weight", l);
		add(s, &n, K_NORM, 0, H, "model.layers.%" PRIu32 ".post_attention_layernorm.weight", l);
		if (sandwich) {
			add(s, &n, K_NORM, 0, H, "model.layers.%" PRIu32 ".pre_feedforward_layernorm.weight", l);
			add(s, &n, K_NORM, 0, H, "model.layers.%" PRIu32 ".post_feedforward_layernorm.weight", l);
		}
		if (fused) {
			/* phi3: gate rows, then up rows */
			add(s, &n, K_LINEAR, 2 * I, H, "model.layers.%" PRIu32 ".mlp.gate_up_proj.weight", l);
		} else {
			add(s, &n, K_LINEAR, I, H, "model.layers.%" PRIu32 ".mlp.gate_proj.weight", l);
			add(s, &n, K_LINEAR, I, H, "model.layers.%" PRIu32 ".mlp.up_proj.weight", l);
		}
		add(s, &n, K_LINEAR, H, I, "model.layers.%" PRIu32 ".mlp.down_proj.weight", l);
	}
	add(s, &n, K_NORM, 0, H, "model.norm.weight", 0);
	if (!synth_tied(o))
		add(s, &n, K_EMBED, V, H, "lm_head.weight", 0);
	return n;
}

static enum qa_err check_moe(const struct qa_synth_opts *o, uint64_t hd, uint64_t *total,
                             struct qa_diag *d);

/* Validate o; on success store the head dimension and the tensor data size. */
static enum qa_err check_opts(const struct qa_synth_opts *o, uint64_t *head_dim,
                              uint64_t *data_bytes, struct qa_diag *d)
{
	if (!o)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no options given");
	char known[QA_ARCH_LIST_CAP];
	qa_arch_known_list(known, sizeof known);
	if (!o->arch)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no architecture given (%s)", known);
	const struct qa_arch *a = qa_arch_find(o->arch);
	if (!a || strcmp(a->name, o->arch) != 0)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "unknown architecture '%.64s' (%s)", o->arch, known);
	if (!arch_is_moe(o->arch) && (o->experts || o->experts_used || o->expert_ffn))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "experts are only synthesized for qwen2moe, qwen3moe and gpt-oss, not %.64s",
		                   o->arch);
	if (o->mxfp4 && !qa_arch_has(a, QA_ARCH_FUSED_EXPERTS))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "--mxfp4 is gpt-oss's checkpoint form, not %.64s's", o->arch);
	if (o->dtype != QA_TYPE_BF16 && o->dtype != QA_TYPE_F16 && o->dtype != QA_TYPE_F32)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "dtype %s cannot be synthesized (bf16, f16 or f32)", qa_type_name(o->dtype));
	if (o->rope_scaling &&
	    !(strcmp(o->rope_scaling, "llama3") == 0 && qa_arch_has(a, QA_ARCH_ROPE_LLAMA3)) &&
	    !(strcmp(o->rope_scaling, "longrope") == 0 && qa_arch_has(a, QA_ARCH_ROPE_LONG)))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "rope scaling '%.32s' is not synthesized for %.64s (llama3: llama, mistral; "
		                   "longrope: phi3)", o->rope_scaling, o->arch);
	if (o->tokenizer_vocab && (!qa_arch_has(a, QA_ARCH_VOCAB_CUT) || o->tokenizer_vocab < 2 ||
	                           o->tokenizer_vocab > o->vocab))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "a tokenizer is synthesized only for gemma3, of 2 to vocabulary size tokens");
	static const char *const names[] = { "hidden size", "intermediate size", "vocabulary size",
	                                     "head count", "kv head count" };
	const uint64_t vals[] = { o->hidden, o->intermediate, o->vocab, o->heads, o->kv_heads };
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		if (vals[i] == 0)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "%s must be positive", names[i]);
		if (vals[i] > QA_SYNTH_MAX_DIM)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "%s %" PRIu64 " is above the limit %u",
			                   names[i], vals[i], QA_SYNTH_MAX_DIM);
	}
	if (o->layers == 0)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "layer count must be positive");
	if (o->layers > QA_SYNTH_MAX_LAYERS)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "layer count %" PRIu32 " is above the limit %u",
		                   o->layers, QA_SYNTH_MAX_LAYERS);
	uint64_t hd = o->head_dim;
	if (hd == 0) {
		if (o->hidden % o->heads)
			return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
			                   "head count %" PRIu32 " does not divide hidden size %" PRIu64
			                   " (give the head dimension explicitly)", o->heads, o->hidden);
		hd = o->hidden / o->heads;
	} else if (hd > QA_SYNTH_MAX_DIM) {
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "head dimension %" PRIu64 " is above the limit %u",
		                   hd, QA_SYNTH_MAX_DIM);
	}
	if (qa_arch_has(a, QA_ARCH_FUSED) && hd * o->heads != o->hidden)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "%s has no head_dim of its own: the head dimension must be hidden size / heads (%" PRIu64
		                   " / %" PRIu32 ")", o->arch, o->hidden, o->heads);
	if (o->heads % o->kv_heads)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "kv head count %" PRIu32 " does not divide head count %" PRIu32,
		                   o->kv_heads, o->heads);
	/* Elements: V*H (x2 untied) + L*(2*q*H + 2*kv*H + 3*I*H + 2*H + biases
	 * + q/k norms + sandwich norms) + H; fusing moves rows, not elements. */
	uint64_t q, kv, t, per_layer = 0, total = 0;
	uint64_t H = o->hidden, I = o->intermediate;
	bool ok = qa_mul_u64(o->heads, hd, &q) && qa_mul_u64(o->kv_heads, hd, &kv) &&
	          q <= QA_SYNTH_MAX_DIM;
	ok = ok && qa_mul_u64(q, H, &t) && qa_mul_u64(t, 2, &t) && qa_add_u64(per_layer, t, &per_layer);
	ok = ok && qa_mul_u64(kv, H, &t) && qa_mul_u64(t, 2, &t) && qa_add_u64(per_layer, t, &per_layer);
	ok = ok && qa_mul_u64(I, H, &t) && qa_mul_u64(t, 3, &t) && qa_add_u64(per_layer, t, &per_layer);
	bool bias = qa_arch_has(a, QA_ARCH_QKV_BIAS); /* q, k and v biases */
	ok = ok && qa_add_u64(per_layer, 2 * H + (bias ? q + 2 * kv : 0), &per_layer);
	if (qa_arch_has(a, QA_ARCH_QK_NORM))
		ok = ok && qa_add_u64(per_layer, 2 * hd, &per_layer);
	if (qa_arch_has(a, QA_ARCH_FFN_SANDWICH))
		ok = ok && qa_add_u64(per_layer, 2 * H, &per_layer);
	ok = ok && qa_mul_u64(per_layer, o->layers, &total);
	ok = ok && qa_mul_u64(o->vocab, H, &t) && qa_mul_u64(t, synth_tied(o) ? 1 : 2, &t) &&
	     qa_add_u64(total, t, &total) && qa_add_u64(total, H, &total);
	ok = ok && qa_mul_u64(total, dtype_size(o->dtype), &total);
	if (ok && arch_is_moe(o->arch)) {
		enum qa_err e = check_moe(o, hd, &total, d);
		if (e)
			return e;
	}
	if (!ok || total > QA_SYNTH_MAX_BYTES)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "the model would be larger than the limit of %" PRIu64 " bytes",
		                   (uint64_t)QA_SYNTH_MAX_BYTES);
	if (head_dim)
		*head_dim = hd;
	if (data_bytes)
		*data_bytes = total;
	return QA_OK;
}

/* ------------------------------------------------------------ json */

static json_t *header_json(const struct qa_synth_opts *o, const struct spec *s, size_t n)
{
	json_t *root = json_object(), *meta = json_object();
	char seed[32];
	snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
	bool ok = meta && json_object_set_new(meta, "format", json_string("pt")) == 0 &&
	          json_object_set_new(meta, "generator", json_string("quantaudit synth")) == 0 &&
	          json_object_set_new(meta, "seed", json_string(seed)) == 0;
	if (!ok)
		json_decref(meta);
	else /* steals meta, also on failure */
		ok = json_object_set_new(root, "__metadata__", meta) == 0;
	uint64_t off = 0;
	for (size_t i = 0; ok && i < n; i++) {
		uint64_t end = off + s[i].rows * s[i].cols * spec_esize(o, &s[i]); /* bounded by check_opts */
		bool mx = s[i].kind == K_MX_BLOCKS || s[i].kind == K_MX_SCALES;
		json_t *shape = s[i].kind == K_MX_BLOCKS
			? json_pack("[IIII]", (json_int_t)s[i].outer, (json_int_t)(s[i].rows / s[i].outer),
			            (json_int_t)(s[i].cols / 16), (json_int_t)16)
			: s[i].n_dims == 3
			? json_pack("[III]", (json_int_t)s[i].outer, (json_int_t)(s[i].rows / s[i].outer),
			            (json_int_t)s[i].cols)
			: s[i].n_dims == 2
			? json_pack("[II]", (json_int_t)s[i].rows, (json_int_t)s[i].cols)
			: json_pack("[I]", (json_int_t)s[i].cols);
		json_t *t = json_pack("{s:s,s:o,s:[II]}", "dtype", mx ? "U8" : dtype_st_name(o->dtype),
		                      "shape", shape, "data_offsets", (json_int_t)off, (json_int_t)end);
		ok = t && json_object_set_new(root, s[i].name, t) == 0;
		off = end;
	}
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static json_t *config_json_moe(const struct qa_synth_opts *o, uint64_t hd);

/* rope_theta as each family ships it (qwen2 and qwen3 1e6, gemma3 1e6 for global layers). */
static double synth_rope_theta(const struct qa_arch *a)
{
	return strcmp(a->name, "qwen2") == 0 || strcmp(a->name, "qwen3") == 0 ||
	       strcmp(a->name, "gemma3") == 0 ? 1000000.0 : 10000.0;
}

static bool set_real(json_t *c, const char *key, double v)
{
	return json_object_set_new(c, key, json_real(v)) == 0;
}

static bool set_int(json_t *c, const char *key, json_int_t v)
{
	return json_object_set_new(c, key, json_integer(v)) == 0;
}

/*
 * rope_scaling as Llama 3.1 (rope_type llama3) or Phi-3 128k (longrope)
 * ship it, with their context lengths.  The longrope lists are a smooth
 * deterministic ramp (IEEE operations only) with digits beyond f32's, so
 * the f32 rounding of the lists is exercised.
 */
static bool set_rope_scaling(json_t *c, const struct qa_synth_opts *o, uint64_t hd)
{
	json_t *rs;
	if (strcmp(o->rope_scaling, "llama3") == 0) {
		rs = json_pack("{s:f,s:f,s:f,s:I,s:s}", "factor", 8.0, "low_freq_factor", 1.0,
		               "high_freq_factor", 4.0, "original_max_position_embeddings", (json_int_t)8192,
		               "rope_type", "llama3");
		return rs && set_real(c, "rope_theta", 500000.0) &&
		       set_int(c, "max_position_embeddings", 131072) &&
		       json_object_set_new(c, "rope_scaling", rs) == 0;
	}
	json_t *lf = json_array(), *sf = json_array();
	bool ok = lf && sf;
	for (uint64_t i = 0; ok && i < hd / 2; i++) {
		double x = (double)i / (double)(hd / 2);
		ok = json_array_append_new(lf, json_real(1.0 + 47.123456789 * x * x * x)) == 0 &&
		     json_array_append_new(sf, json_real(1.0 + 0.0987654321 * x)) == 0;
	}
	rs = ok ? json_pack("{s:o,s:o,s:s}", "long_factor", lf, "short_factor", sf, "type", "longrope") : NULL;
	if (!rs) {
		if (!ok) {
			json_decref(lf);
			json_decref(sf);
		}
		return false;
	}
	return set_int(c, "max_position_embeddings", 131072) && json_object_set_new(c, "rope_scaling", rs) == 0;
}

/*
 * config.json as the family's own checkpoints write it: the common fields,
 * then the ones llama.cpp's converter requires for the family (Gemma 2's
 * soft-capping and sliding window, Gemma 3's sliding-window pattern, Phi-3's
 * original context length).
 */
static json_t *config_json(const struct qa_synth_opts *o, uint64_t hd)
{
	if (arch_is_moe(o->arch))
		return config_json_moe(o, hd);
	const struct qa_arch *a = qa_arch_find(o->arch);
	json_t *c = json_pack("{s:s,s:[s],s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:f,s:f,s:I,s:s}",
	                      "model_type", a->model_types[0],
	                      "architectures", a->hf_class,
	                      "hidden_size", (json_int_t)o->hidden,
	                      "intermediate_size", (json_int_t)o->intermediate,
	                      "num_hidden_layers", (json_int_t)o->layers,
	                      "num_attention_heads", (json_int_t)o->heads,
	                      "num_key_value_heads", (json_int_t)o->kv_heads,
	                      "head_dim", (json_int_t)hd,
	                      "vocab_size", (json_int_t)o->vocab,
	                      "tie_word_embeddings", (int)synth_tied(o),
	                      "rms_norm_eps", 1e-6,
	                      "rope_theta", synth_rope_theta(a),
	                      "max_position_embeddings", (json_int_t)32768,
	                      "torch_dtype", dtype_torch_name(o->dtype));
	bool ok = c != NULL;
	if (ok && (strcmp(a->name, "gemma2") == 0 || strcmp(a->name, "gemma3") == 0)) {
		ok = set_int(c, "query_pre_attn_scalar", (json_int_t)hd) &&
		     set_int(c, "sliding_window", strcmp(a->name, "gemma2") == 0 ? 4096 : 512) &&
		     json_object_set_new(c, "hidden_activation", json_string("gelu_pytorch_tanh")) == 0;
		if (ok && strcmp(a->name, "gemma2") == 0)
			ok = set_real(c, "attn_logit_softcapping", 50.0) &&
			     set_real(c, "final_logit_softcapping", 30.0);
		else if (ok)
			ok = set_int(c, "sliding_window_pattern", 6) && set_real(c, "rope_local_base_freq", 10000.0);
	}
	if (ok && strcmp(a->name, "phi3") == 0)
		ok = set_int(c, "original_max_position_embeddings", o->rope_scaling ? 4096 : 32768) &&
		     json_object_set_new(c, "rope_scaling", json_null()) == 0;
	if (ok && o->rope_scaling)
		ok = set_rope_scaling(c, o, hd);
	if (!ok) {
		json_decref(c);
		return NULL;
	}
	return c;
}

/* ------------------------------------------------------------ mixture of experts */

/*
 * The QA_ARCH_MOE rows of arch.h, kept apart from the dense layouts.  Qwen3-MoE
 * checkpoints store every expert's projections as separate 2-D tensors
 * (model.layers.L.mlp.experts.E.{gate,up,down}_proj.weight) beside the router
 * mlp.gate.weight [experts, hidden], and q/k norms of head_dim.
 * transformers' GptOss stores the experts fused and [in, out]:
 * mlp.experts.gate_up_proj [experts, hidden, 2*ffn] with gate and up
 * interleaved along the last axis, mlp.experts.down_proj [experts, ffn, hidden],
 * their biases [experts, 2*ffn] and [experts, hidden], a router
 * mlp.router.{weight,bias}, biased attention projections and the attention
 * sinks self_attn.sinks [heads].  Qwen2-MoE is Qwen3-MoE's layout with
 * q/k/v biases instead of q/k norms, plus the shared expert
 * mlp.shared_expert.{gate,up,down}_proj (of the expert ffn size here) and
 * its gate mlp.shared_expert_gate.weight [1, hidden].
 */
static bool arch_is_moe(const char *arch)
{
	return qa_arch_has(qa_arch_find(arch), QA_ARCH_MOE);
}

static uint64_t expert_ffn(const struct qa_synth_opts *o)
{
	return o->expert_ffn ? o->expert_ffn : o->intermediate;
}

/* A 3-D tensor [outer, rows, cols]. */
static void add3(struct spec *s, size_t *n, enum kind kind, uint64_t outer, uint64_t rows,
                 uint64_t cols, const char *fmt, uint32_t layer)
{
	if (s) {
		struct spec *t = &s[*n];
		snprintf(t->name, sizeof t->name, fmt, layer);
		t->n_dims = 3;
		t->outer = outer;
		t->rows = outer * rows; /* bounded by check_moe */
		t->cols = cols;
		t->kind = kind;
	}
	(*n)++;
}

static void add_expert(struct spec *s, size_t *n, uint64_t rows, uint64_t cols,
                       uint32_t layer, uint32_t expert, const char *proj)
{
	if (s) {
		struct spec *t = &s[*n];
		snprintf(t->name, sizeof t->name, "model.layers.%" PRIu32 ".mlp.experts.%" PRIu32 ".%s.weight",
		         layer, expert, proj);
		t->n_dims = 2;
		t->outer = 1;
		t->rows = rows;
		t->cols = cols;
		t->kind = K_LINEAR;
	}
	(*n)++;
}

static size_t plan_moe(const struct qa_synth_opts *o, uint64_t d, struct spec *s)
{
	const struct qa_arch *a = qa_arch_find(o->arch);
	bool oss = qa_arch_has(a, QA_ARCH_FUSED_EXPERTS), bias = qa_arch_has(a, QA_ARCH_QKV_BIAS);
	bool shexp = strcmp(a->name, "qwen2moe") == 0;
	uint64_t H = o->hidden, F = expert_ffn(o), V = o->vocab, E = o->experts;
	uint64_t q = (uint64_t)o->heads * d, kv = (uint64_t)o->kv_heads * d;
	size_t n = 0;
	add(s, &n, K_EMBED, V, H, "model.embed_tokens.weight", 0);
	for (uint32_t l = 0; l < o->layers; l++) {
		add(s, &n, K_NORM, 0, H, "model.layers.%" PRIu32 ".input_layernorm.weight", l);
		add(s, &n, K_LINEAR, q, H, "model.layers.%" PRIu32 ".self_attn.q_proj.weight", l);
		if (oss || bias)
			add(s, &n, K_BIAS, 0, q, "model.layers.%" PRIu32 ".self_attn.q_proj.bias", l);
		add(s, &n, K_LINEAR, kv, H, "model.layers.%" PRIu32 ".self_attn.k_proj.weight", l);
		if (oss || bias)
			add(s, &n, K_BIAS, 0, kv, "model.layers.%" PRIu32 ".self_attn.k_proj.bias", l);
		add(s, &n, K_LINEAR, kv, H, "model.layers.%" PRIu32 ".self_attn.v_proj.weight", l);
		if (oss || bias)
			add(s, &n, K_BIAS, 0, kv, "model.layers.%" PRIu32 ".self_attn.v_proj.bias", l);
		add(s, &n, K_LINEAR, H, q, "model.layers.%" PRIu32 ".self_attn.o_proj.weight", l);
		if (oss) {
			add(s, &n, K_BIAS, 0, H, "model.layers.%" PRIu32 ".self_attn.o_proj.bias", l);
			add(s, &n, K_BIAS, 0, o->heads, "model.layers.%" PRIu32 ".self_attn.sinks", l);
		} else if (!bias) {
			add(s, &n, K_NORM, 0, d, "model.layers.%" PRIu32 ".self_attn.q_norm.weight", l);
			add(s, &n, K_NORM, 0, d, "model.layers.%" PRIu32 ".self_attn.k_norm.weight", l);
		}
		add(s, &n, K_NORM, 0, H, "model.layers.%" PRIu32 ".post_attention_layernorm.weight", l);
		if (oss) {
			add(s, &n, K_LINEAR, E, H, "model.layers.%" PRIu32 ".mlp.router.weight", l);
			add(s, &n, K_BIAS, 0, E, "model.layers.%" PRIu32 ".mlp.router.bias", l);
			if (o->mxfp4) {
				/* [experts, out, in/32 blocks, 16 bytes] and [experts, out, in/32] */
				add3(s, &n, K_MX_BLOCKS, E, 2 * F, H / 2,
				     "model.layers.%" PRIu32 ".mlp.experts.gate_up_proj_blocks", l);
				add3(s, &n, K_MX_SCALES, E, 2 * F, H / 32,
				     "model.layers.%" PRIu32 ".mlp.experts.gate_up_proj_scales", l);
			} else {
				add3(s, &n, K_LINEAR, E, H, 2 * F, "model.layers.%" PRIu32 ".mlp.experts.gate_up_proj", l);
			}
			add(s, &n, K_BIAS, E, 2 * F, "model.layers.%" PRIu32 ".mlp.experts.gate_up_proj_bias", l);
			if (o->mxfp4) {
				add3(s, &n, K_MX_BLOCKS, E, H, F / 2,
				     "model.layers.%" PRIu32 ".mlp.experts.down_proj_blocks", l);
				add3(s, &n, K_MX_SCALES, E, H, F / 32,
				     "model.layers.%" PRIu32 ".mlp.experts.down_proj_scales", l);
			} else {
				add3(s, &n, K_LINEAR, E, F, H, "model.layers.%" PRIu32 ".mlp.experts.down_proj", l);
			}
			add(s, &n, K_BIAS, E, H, "model.layers.%" PRIu32 ".mlp.experts.down_proj_bias", l);
			continue;
		}
		add(s, &n, K_LINEAR, E, H, "model.layers.%" PRIu32 ".mlp.gate.weight", l);
		for (uint32_t x = 0; x < o->experts; x++) {
			add_expert(s, &n, F, H, l, x, "gate_proj");
			add_expert(s, &n, F, H, l, x, "up_proj");
			add_expert(s, &n, H, F, l, x, "down_proj");
		}
		if (shexp) {
			add(s, &n, K_LINEAR, F, H, "model.layers.%" PRIu32 ".mlp.shared_expert.gate_proj.weight", l);
			add(s, &n, K_LINEAR, F, H, "model.layers.%" PRIu32 ".mlp.shared_expert.up_proj.weight", l);
			add(s, &n, K_LINEAR, H, F, "model.layers.%" PRIu32 ".mlp.shared_expert.down_proj.weight", l);
			add(s, &n, K_LINEAR, 1, H, "model.layers.%" PRIu32 ".mlp.shared_expert_gate.weight", l);
		}
	}
	add(s, &n, K_NORM, 0, H, "model.norm.weight", 0);
	if (!o->tied)
		add(s, &n, K_EMBED, V, H, "lm_head.weight", 0);
	return n;
}

/*
 * The MoE option checks, after the common ones: expert counts and the data
 * size of the planned tensors (every product overflow-checked), which
 * replaces the dense estimate in *total.
 */
static enum qa_err check_moe(const struct qa_synth_opts *o, uint64_t hd, uint64_t *total,
                             struct qa_diag *d)
{
	if (o->experts < 2)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "%s needs --experts N with N >= 2", o->arch);
	if (o->experts > QA_SYNTH_MAX_EXPERTS)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "expert count %" PRIu32 " is above the limit %u",
		                   o->experts, QA_SYNTH_MAX_EXPERTS);
	if (o->experts_used == 0 || o->experts_used > o->experts)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "experts used per token must be from 1 to %" PRIu32 ", not %" PRIu32,
		                   o->experts, o->experts_used);
	if (expert_ffn(o) > QA_SYNTH_MAX_DIM)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "expert ffn size %" PRIu64 " is above the limit %u",
		                   expert_ffn(o), QA_SYNTH_MAX_DIM);
	if (o->mxfp4 && (o->hidden % 32 || expert_ffn(o) % 32))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "--mxfp4 needs the hidden size and the expert ffn size to be multiples of 32 "
		                   "(MXFP4 blocks), not %" PRIu64 " and %" PRIu64, o->hidden, expert_ffn(o));
	/* Count first with nothing that can overflow (layers x (experts x 3 + 24)). */
	uint64_t per_layer = (uint64_t)o->experts * 3 + 24;
	if (per_layer * o->layers > (UINT64_C(1) << 24))
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "too many tensors (layers x experts)");
	size_t n = plan_moe(o, hd, NULL);
	struct spec *s = calloc(n, sizeof *s);
	if (!s)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	plan_moe(o, hd, s); /* experts <= 2^12 and dims <= 2^24: rows of add3 cannot wrap */
	uint64_t sum = 0, t;
	bool ok = true;
	for (size_t i = 0; ok && i < n; i++)
		ok = qa_mul_u64(s[i].rows, s[i].cols, &t) && qa_mul_u64(t, spec_esize(o, &s[i]), &t) &&
		     qa_add_u64(sum, t, &sum);
	free(s);
	if (!ok || sum > QA_SYNTH_MAX_BYTES)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "the model would be larger than the limit of %" PRIu64 " bytes",
		                   (uint64_t)QA_SYNTH_MAX_BYTES);
	*total = sum;
	return QA_OK;
}

static json_t *config_json_oss(const struct qa_synth_opts *o, uint64_t hd);

static json_t *config_json_moe(const struct qa_synth_opts *o, uint64_t hd)
{
	const struct qa_arch *a = qa_arch_find(o->arch);
	if (qa_arch_has(a, QA_ARCH_FUSED_EXPERTS))
		return config_json_oss(o, hd);
	/* qwen2moe and qwen3moe differ in the shared expert and the context length */
	bool shared = strcmp(a->name, "qwen2moe") == 0;
	return json_pack("{s:s,s:[s],s:I,s:I,s:I,s:o*,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:f,s:f,s:I,s:s}",
	                 "model_type", a->model_types[0],
	                 "architectures", a->hf_class,
	                 "hidden_size", (json_int_t)o->hidden,
	                 "intermediate_size", (json_int_t)o->intermediate,
	                 "moe_intermediate_size", (json_int_t)expert_ffn(o),
	                 "shared_expert_intermediate_size", shared ? json_integer((json_int_t)expert_ffn(o)) : NULL,
	                 "num_hidden_layers", (json_int_t)o->layers,
	                 "num_attention_heads", (json_int_t)o->heads,
	                 "num_key_value_heads", (json_int_t)o->kv_heads,
	                 "head_dim", (json_int_t)hd,
	                 "vocab_size", (json_int_t)o->vocab,
	                 "num_experts", (json_int_t)o->experts,
	                 "num_experts_per_tok", (json_int_t)o->experts_used,
	                 "tie_word_embeddings", (int)o->tied,
	                 "rms_norm_eps", 1e-6,
	                 "rope_theta", 1000000.0,
	                 "max_position_embeddings", (json_int_t)(shared ? 32768 : 40960),
	                 "torch_dtype", dtype_torch_name(o->dtype));
}

/*
 * gpt-oss's config.json; with --mxfp4 the quantization_config the published
 * checkpoints carry (convert_hf_to_gguf.py reads quant_method from it).
 */
static json_t *config_json_oss(const struct qa_synth_opts *o, uint64_t hd)
{
	json_t *c = json_pack("{s:s,s:[s],s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:f,s:f,s:I,s:I,s:s}",
	                      "model_type", "gpt_oss",
	                      "architectures", "GptOssForCausalLM",
	                      "hidden_size", (json_int_t)o->hidden,
	                      "intermediate_size", (json_int_t)expert_ffn(o),
	                      "num_hidden_layers", (json_int_t)o->layers,
	                      "num_attention_heads", (json_int_t)o->heads,
	                      "num_key_value_heads", (json_int_t)o->kv_heads,
	                      "head_dim", (json_int_t)hd,
	                      "vocab_size", (json_int_t)o->vocab,
	                      "num_local_experts", (json_int_t)o->experts,
	                      "num_experts_per_tok", (json_int_t)o->experts_used,
	                      "experts_per_token", (json_int_t)o->experts_used,
	                      "tie_word_embeddings", (int)o->tied,
	                      "rms_norm_eps", 1e-5,
	                      "rope_theta", 150000.0,
	                      "max_position_embeddings", (json_int_t)131072,
	                      "sliding_window", (json_int_t)128,
	                      "torch_dtype", dtype_torch_name(o->dtype));
	if (c && o->mxfp4 &&
	    json_object_set_new(c, "quantization_config",
	                        json_pack("{s:s,s:[s,s,s,s]}", "quant_method", "mxfp4",
	                                  "modules_to_not_convert", "model.layers.*.self_attn",
	                                  "model.layers.*.mlp.router", "model.embed_tokens",
	                                  "lm_head")) != 0) {
		json_decref(c);
		return NULL;
	}
	return c;
}

/* ------------------------------------------------------------ files */

static enum qa_err write_all(int fd, const void *buf, size_t n, const char *path,
                             struct qa_diag *d)
{
	const uint8_t *p = buf;
	while (n) {
		size_t step = n > (1u << 30) ? (1u << 30) : n;
		ssize_t w = write(fd, p, step);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot write %s: %s", path,
			                   w < 0 ? qa_strerror(errno) : "no progress");
		p += w;
		n -= (size_t)w;
	}
	return QA_OK;
}

/* The path of file name in the directory of out_path (malloc'd), or NULL. */
static char *beside_path(const char *out_path, const char *name)
{
	const char *slash = strrchr(out_path, '/');
	size_t dir = slash ? (size_t)(slash - out_path) + 1 : 0, len = strlen(name) + 1;
	char *p = malloc(dir + len);
	if (p) {
		memcpy(p, out_path, dir);
		memcpy(p + dir, name, len);
	}
	return p;
}

/*
 * A minimal tokenizer.json of n tokens: model.vocab "<tI>" for I < n - 2 and
 * two added_tokens after them (the two lists Gemma3Model counts).
 */
static char *tokenizer_json(uint64_t n)
{
	json_t *vocab = json_object(), *added = json_array();
	bool ok = vocab && added;
	char tok[32];
	for (uint64_t i = 0; ok && i + 2 < n; i++) {
		snprintf(tok, sizeof tok, "<t%" PRIu64 ">", i);
		ok = json_object_set_new(vocab, tok, json_integer((json_int_t)i)) == 0;
	}
	for (uint64_t i = n - 2; ok && i < n; i++) {
		snprintf(tok, sizeof tok, "<added%" PRIu64 ">", i);
		ok = json_array_append_new(added, json_pack("{s:I,s:s,s:b}", "id", (json_int_t)i,
		                                             "content", tok, "special", 1)) == 0;
	}
	json_t *root = ok ? json_pack("{s:s,s:o,s:{s:s,s:o}}", "version", "1.0", "added_tokens", added,
	                              "model", "type", "BPE", "vocab", vocab) : NULL;
	if (!ok) {
		json_decref(vocab);
		json_decref(added);
	}
	char *text = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(root);
	return text;
}

static enum qa_err write_tensors(int fd, const char *path, const struct qa_synth_opts *o,
                                 const struct spec *s, size_t n, uint64_t max_cols,
                                 struct qa_diag *d)
{
	size_t esize = dtype_size(o->dtype);
	size_t max_row = (size_t)max_cols * esize;
	size_t cap = max_row > CHUNK_BYTES ? max_row : CHUNK_BYTES;
	struct zig *zt = malloc(sizeof *zt);
	uint8_t *bufs[2] = { malloc(cap), malloc(cap) };
	enum qa_err e = QA_OK;
	if (!zt || !bufs[0] || !bufs[1]) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory for %zu-byte chunks", cap);
		goto out;
	}
	zig_init(zt);
	struct chunk_job j = {
		.seed = o->seed, .dtype = o->dtype, .esize = esize, .zt = zt,
		.fd = fd, .path = path, .d = d,
	};
	int cur = 0;
	for (size_t i = 0; e == QA_OK && i < n; i++) {
		size_t row_bytes = (size_t)s[i].cols * spec_esize(o, &s[i]);
		j.esize = spec_esize(o, &s[i]);
		uint64_t chunk_rows = cap / row_bytes;
		j.t = &s[i];
		j.index = i;
		j.rows_per_item = s[i].cols >= ITEM_ELEMS ? 1 : ITEM_ELEMS / s[i].cols;
		for (uint64_t r0 = 0; e == QA_OK && r0 < s[i].rows; r0 += chunk_rows) {
			j.row0 = r0;
			j.n_rows = s[i].rows - r0 < chunk_rows ? s[i].rows - r0 : chunk_rows;
			j.buf = bufs[cur];
			size_t items = (size_t)((j.n_rows + j.rows_per_item - 1) / j.rows_per_item);
			e = qa_pool_run(o->threads, 1 + items, chunk_item, &j);
			j.pending = bufs[cur];
			j.pending_len = (size_t)j.n_rows * row_bytes;
			cur ^= 1;
		}
	}
	if (e == QA_OK && j.pending_len)
		e = write_all(fd, j.pending, j.pending_len, path, d);
out:
	free(bufs[0]);
	free(bufs[1]);
	free(zt);
	return e;
}

enum qa_err qa_synth_check(const struct qa_synth_opts *o, uint64_t *out_tensors,
                           uint64_t *out_bytes, struct qa_diag *d)
{
	uint64_t hd, data;
	enum qa_err e = check_opts(o, &hd, &data, d);
	if (e)
		return e;
	size_t n = plan(o, hd, NULL);
	struct spec *s = calloc(n, sizeof *s);
	if (!s)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	plan(o, hd, s);
	json_t *h = header_json(o, s, n);
	free(s);
	char *text = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(h);
	if (!text)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	uint64_t hlen = (strlen(text) + 7) & ~(uint64_t)7;
	free(text);
	if (out_tensors)
		*out_tensors = n;
	if (out_bytes)
		*out_bytes = 8 + hlen + data;
	return QA_OK;
}

enum qa_err qa_synth_write(const struct qa_synth_opts *o, const char *out_path,
                           struct qa_diag *d)
{
	uint64_t hd, data;
	enum qa_err e = check_opts(o, &hd, &data, d);
	if (e)
		return e;
	if (!out_path || !*out_path)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "no output path given");
	const char *base = strrchr(out_path, '/');
	base = base ? base + 1 : out_path;
	if (strcmp(base, "config.json") == 0 || !*base)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "output '%.200s' must name a file other than config.json", out_path);
	if (o->threads > 1024)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "at most 1024 threads");

	size_t n = plan(o, hd, NULL);
	struct spec *s = calloc(n, sizeof *s);
	char *cfg = beside_path(out_path, "config.json");
	char *tpath = o->tokenizer_vocab ? beside_path(out_path, "tokenizer.json") : NULL;
	char *htext = NULL, *ctext = NULL, *ttext = NULL;
	/* Both files are pending until both are complete; abort at the end
	 * removes whatever was not renamed into place. */
	struct qa_tmpfile model = { NULL, NULL, -1, 0 }, conf = { NULL, NULL, -1, 0 };
	struct qa_tmpfile tok = { NULL, NULL, -1, 0 };
	struct qa_diag cd;
	if (!s || !cfg || (o->tokenizer_vocab && (!tpath || !(ttext = tokenizer_json(o->tokenizer_vocab))))) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto out;
	}
	plan(o, hd, s);
	uint64_t max_cols = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i].cols > max_cols)
			max_cols = s[i].cols;

	json_t *h = header_json(o, s, n);
	htext = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(h);
	json_t *c = config_json(o, hd);
	ctext = c ? json_dumps(c, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
	json_decref(c);
	if (!htext || !ctext) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto out;
	}
	size_t hl = strlen(htext), padded = (hl + 7) & ~(size_t)7;
	uint8_t *hbuf = malloc(8 + padded);
	if (!hbuf) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto out;
	}
	qa_store_le64(hbuf, padded);
	memcpy(hbuf + 8, htext, hl);
	memset(hbuf + 8 + hl, ' ', padded - hl);

	e = qa_tmpfile_open(&model, out_path, d);
	if (e == QA_OK)
		e = write_all(model.fd, hbuf, 8 + padded, out_path, d);
	free(hbuf);
	if (e == QA_OK)
		e = write_tensors(model.fd, out_path, o, s, n, max_cols, d);
	/* Errors about config.json name it: the caller reports them under out_path. */
	qa_diag_clear(&cd);
	if (e == QA_OK && (e = qa_tmpfile_open(&conf, cfg, &cd)) != QA_OK)
		qa_diag_set(d, e, QA_NO_OFFSET, "%s: %s", cfg, cd.msg);
	if (e == QA_OK)
		e = write_all(conf.fd, ctext, strlen(ctext), cfg, d);
	if (e == QA_OK)
		e = write_all(conf.fd, "\n", 1, cfg, d);
	if (e == QA_OK && ttext && (e = qa_tmpfile_open(&tok, tpath, &cd)) != QA_OK)
		qa_diag_set(d, e, QA_NO_OFFSET, "%s: %s", tpath, cd.msg);
	if (e == QA_OK && ttext)
		e = write_all(tok.fd, ttext, strlen(ttext), tpath, d);
	if (e == QA_OK)
		e = qa_tmpfile_commit(&model, false, d);
	if (e == QA_OK && (e = qa_tmpfile_commit(&conf, false, &cd)) != QA_OK)
		qa_diag_set(d, e, QA_NO_OFFSET, "%s: %s", cfg, cd.msg);
	if (e == QA_OK && ttext && (e = qa_tmpfile_commit(&tok, false, &cd)) != QA_OK)
		qa_diag_set(d, e, QA_NO_OFFSET, "%s: %s", tpath, cd.msg);
out:
	qa_tmpfile_abort(&model);
	qa_tmpfile_abort(&conf);
	qa_tmpfile_abort(&tok);
	free(tpath);
	free(ttext);
	free(cfg);
	free(s);
	free(htext);
	free(ctext);
	return e;
}
