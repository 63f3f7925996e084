#define _POSIX_C_SOURCE 200809L
/*
 * check_iq_grid.c - the grid i-quants (iq2_xxs, iq2_xs, iq2_s, iq1_s,
 * iq1_m) and their lattice tables against ggml.
 *
 * Sources of truth, all in fixtures/vectors (fixtures/README.md says how
 * each was made with the real ggml, libggml-base 0.23.0):
 *   iq_grid.sha256       digests of ggml's own tables (ggml-common.h's
 *                        decode grids, and the map and neighbour lists that
 *                        ggml's iq2xs_init_impl builds) and of ggml's
 *                        dequantization of every vector below;
 *   TYPE.imatrix.bin     ggml_quantize_chunk(TYPE, input.f32, 64 rows of
 *                        2048, importance weights iq.imatrix.f32);
 *   TYPE.bin             the same without weights (iq2_s, iq1_m);
 *   real-qwen2.*         one tensor of the real llama-quantize artifacts in
 *                        ../shared/oracle/real, its bf16 reference and the
 *                        importance weights llama-quantize used.
 */
#include <check.h>
#include <pthread.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockhash.h"
#include "cursor.h"
#include "iq_grid.h"
#include "quant.h"
#include "testutil.h"
#include "tu_decode.h"
#include "types.h"

#define N_INPUT 131072
#define NPR 2048
#define NROW (N_INPUT / NPR)

static const char *const grid_names[QA_IQ_GRID_COUNT] = { "iq2_xxs", "iq2_xs", "iq2_s", "iq1_s" };

static const struct {
	const char *type;
	bool weighted;
} vectors[] = {
	{ "iq2_xxs", true }, { "iq2_xs", true }, { "iq2_s", true }, { "iq2_s", false },
	{ "iq1_s", true },   { "iq1_m", true },  { "iq1_m", false },
};
#define N_VECTORS (int)(sizeof vectors / sizeof vectors[0])

static const char *const type_names[] = { "iq2_xxs", "iq2_xs", "iq2_s", "iq1_s", "iq1_m" };
#define N_TYPES 5

static float *input, *imatrix;

static void load_input(void)
{
	size_t len = 0, wlen = 0;
	input = tu_slurp(tu_path("fixtures/vectors/input.f32"), &len);
	imatrix = tu_slurp(tu_path("fixtures/vectors/iq.imatrix.f32"), &wlen);
	ck_assert_msg(input && len == N_INPUT * 4, "fixtures/vectors/input.f32 missing");
	ck_assert_msg(imatrix && wlen == NPR * 4, "fixtures/vectors/iq.imatrix.f32 missing");
}

static void free_input(void)
{
	free(input);
	free(imatrix);
	input = imatrix = NULL;
}

/* The digest recorded for file name in fixtures/vectors/iq_grid.sha256. */
static void want_digest(const char *name, char hex[65])
{
	size_t len;
	char *text = tu_slurp(tu_path("fixtures/vectors/iq_grid.sha256"), &len);
	ck_assert_ptr_nonnull(text);
	hex[0] = '\0';
	size_t nl = strlen(name);
	for (char *line = text; line < text + len;) {
		char *end = memchr(line, '\n', (size_t)(text + len - line));
		size_t n = end ? (size_t)(end - line) : (size_t)(text + len - line);
		if (n == 66 + nl && memcmp(line + 64, "  ", 2) == 0 && memcmp(line + 66, name, nl) == 0) {
			memcpy(hex, line, 64);
			hex[64] = '\0';
		}
		line += n + 1;
	}
	free(text);
	ck_assert_msg(hex[0], "no digest for %s", name);
}

static void digest_hex(const void *p, size_t n, char hex[65])
{
	uint8_t d[32];
	ck_assert_int_eq(qa_sha256(p, n, d, NULL), QA_OK);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void check_digest(const char *name, const void *p, size_t n)
{
	char want[65], got[65];
	want_digest(name, want);
	digest_hex(p, n, got);
	ck_assert_msg(strcmp(want, got) == 0, "%s: digest %s, ggml's %s", name, got, want);
}

/* The decode grid, the map and the neighbour lists of grid id equal ggml's, by digest. */
static void check_tables(int id)
{
	const struct qa_iq_grid *g = qa_iq_grid_get((enum qa_iq_grid_id)id);
	char name[64];
	ck_assert_ptr_nonnull(g);

	uint8_t *words = malloc((size_t)g->npoints * 8);
	for (unsigned j = 0; j < g->npoints; j++)
		memcpy(words + 8 * j, g->bytes[j], 8);
	snprintf(name, sizeof name, "%s.grid.u64", grid_names[id]);
	check_digest(name, words, (size_t)g->npoints * 8);
	free(words);

	uint8_t *map = malloc(g->map_size * 4);
	for (size_t u = 0; u < g->map_size; u++)
		qa_store_le32(map + 4 * u, (uint32_t)g->map[u]);
	snprintf(name, sizeof name, "%s.map.i32", grid_names[id]);
	check_digest(name, map, g->map_size * 4);
	free(map);

	uint8_t *nbr = malloc(g->n_neighbours * 2);
	for (size_t k = 0; k < g->n_neighbours; k++)
		qa_store_le16(nbr + 2 * k, g->neighbours[k]);
	snprintf(name, sizeof name, "%s.nbr.u16", grid_names[id]);
	check_digest(name, nbr, g->n_neighbours * 2);
	free(nbr);
}

/* core: every grid's tables equal ggml's. */
START_TEST(tables_match_ggml)
{
	check_tables(_i);
}
END_TEST

static void *get_grid(void *arg)
{
	return (void *)qa_iq_grid_get((enum qa_iq_grid_id)(intptr_t)arg);
}

/*
 * limits: first uses of all four grids from eight threads at once (each
 * test runs in a fresh process, so the tables are built here, concurrently)
 * give one table per grid, equal to ggml's.
 */
START_TEST(concurrent_build)
{
	pthread_t th[8];
	void *got[8];
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, get_grid, (void *)(intptr_t)(i % 4)), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_join(th[i], &got[i]), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_eq(got[i], got[i + 4]);
	for (int id = 0; id < QA_IQ_GRID_COUNT; id++)
		check_tables(id);
}
END_TEST

static const struct qa_type_info *vector_type(int i, const struct qa_quant_ops **ops)
{
	const struct qa_type_info *t = qa_type_by_name(vectors[i].type);
	ck_assert_ptr_nonnull(t);
	*ops = qa_quant_ops(t->id);
	ck_assert_ptr_nonnull(*ops);
	return t;
}

static void vector_name(int i, const char *suffix, char *out, size_t n)
{
	snprintf(out, n, "%s%s%s", vectors[i].type, vectors[i].weighted ? ".imatrix" : "", suffix);
}

/* core: quantizing input.f32 (with the weights where ggml used them) gives ggml's bytes. */
START_TEST(oracle_quantize)
{
	const struct qa_quant_ops *ops;
	const struct qa_type_info *t = vector_type(_i, &ops);
	char name[64], rel[128];
	vector_name(_i, ".bin", name, sizeof name);
	snprintf(rel, sizeof rel, "fixtures/vectors/%s", name);
	size_t len;
	uint8_t *want = tu_slurp(tu_path(rel), &len);
	ck_assert_ptr_nonnull(want);
	ck_assert_uint_eq(len, N_INPUT / 256 * t->block_bytes);
	uint8_t *got = malloc(len);
	ops->quantize_rows(input, got, NROW, NPR, vectors[_i].weighted ? imatrix : NULL);
	size_t first = SIZE_MAX;
	for (size_t i = 0; i < len && first == SIZE_MAX; i++)
		if (got[i] != want[i])
			first = i;
	ck_assert_msg(first == SIZE_MAX, "%s: first differing byte %zu (block %zu)", name, first,
	              first / t->block_bytes);
	/* The unweighted entry point is the same quantizer. */
	if (!vectors[_i].weighted) {
		ck_assert_ptr_nonnull(ops->quantize);
		memset(got, 0xa5, len);
		ops->quantize(input, got, N_INPUT);
		ck_assert_mem_eq(got, want, len);
	}
	free(got);
	free(want);
}
END_TEST

/* core: dequantizing ggml's bytes gives ggml's floats, by digest. */
START_TEST(oracle_dequantize)
{
	const struct qa_quant_ops *ops;
	vector_type(_i, &ops);
	char name[64], rel[128];
	vector_name(_i, ".bin", name, sizeof name);
	snprintf(rel, sizeof rel, "fixtures/vectors/%s", name);
	size_t len;
	uint8_t *q = tu_slurp(tu_path(rel), &len);
	ck_assert_ptr_nonnull(q);
	float *f = malloc(N_INPUT * sizeof *f);
	ops->dequantize(q, f, N_INPUT);
	vector_name(_i, ".dequant.f32", name, sizeof name);
	check_digest(name, f, N_INPUT * sizeof *f);
	free(f);
	free(q);
}
END_TEST

/*
 * core: the real llama-quantize's bytes.  blk.0.attn_k.weight (256 x 128,
 * bf16) of the real qwen2 checkpoint, as real-qwen2.RECIPE.imatrix.gguf holds
 * it, equals our quantization under the weights llama-quantize derived from
 * real-qwen2.imatrix.gguf (in_sum2 / counts).
 */
static const struct {
	const char *recipe;
	uint32_t type;
} real_cases[] = {
	{ "IQ2_XXS", QA_TYPE_IQ2_XXS }, { "IQ2_XS", QA_TYPE_IQ2_XS }, { "IQ2_M", QA_TYPE_IQ2_S },
	{ "IQ1_S", QA_TYPE_IQ1_S },     { "IQ1_M", QA_TYPE_IQ1_M },
};

START_TEST(real_llama_quantize)
{
	enum { IN = 256, OUT = 128 };
	const struct qa_type_info *t = qa_type_get(real_cases[_i].type);
	size_t len = 0, wlen = 0, alen = 0;
	uint8_t *bf = tu_slurp(tu_path("fixtures/vectors/real-qwen2.attn_k.bf16"), &len);
	float *w = tu_slurp(tu_path("fixtures/vectors/real-qwen2.attn_k.imatrix.f32"), &wlen);
	char rel[128];
	snprintf(rel, sizeof rel, "fixtures/vectors/real-qwen2.%s.attn_k.bin", real_cases[_i].recipe);
	uint8_t *want = tu_slurp(tu_path(rel), &alen);
	ck_assert(bf && len == IN * OUT * 2 && w && wlen == IN * 4 && want);
	ck_assert_uint_eq(alen, OUT * IN / 256 * t->block_bytes);
	float *x = malloc(IN * OUT * sizeof *x);
	for (size_t i = 0; i < IN * OUT; i++) {
		uint32_t u = (uint32_t)qa_load_le16(bf + 2 * i) << 16;
		memcpy(&x[i], &u, 4);
	}
	uint8_t *got = malloc(alen);
	qa_quant_ops(t->id)->quantize_rows(x, got, OUT, IN, w);
	ck_assert_msg(memcmp(got, want, alen) == 0, "%s: not llama-quantize's bytes", t->name);
	free(got);
	free(x);
	free(want);
	free(w);
	free(bf);
}
END_TEST

/*
 * limits: which types need an importance matrix.  ggml's
 * ggml_quantize_requires_imatrix names iq2_xxs, iq2_xs and iq1_s (and ggml
 * asserts without one); llama-quantize's tensor_requires_imatrix adds iq2_s
 * and iq1_m, which ggml quantizes without weights.
 */
START_TEST(imatrix_requirements)
{
	static const struct {
		uint32_t type;
		bool ggml, llama;
	} want[] = {
		{ QA_TYPE_IQ2_XXS, true, true }, { QA_TYPE_IQ2_XS, true, true },
		{ QA_TYPE_IQ1_S, true, true },   { QA_TYPE_IQ2_S, false, true },
		{ QA_TYPE_IQ1_M, false, true },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const struct qa_quant_ops *ops = qa_quant_ops(want[i].type);
		const char *name = qa_type_name(want[i].type);
		ck_assert_ptr_nonnull(ops);
		ck_assert_msg(ops->requires_imatrix == want[i].ggml, "%s requires_imatrix", name);
		ck_assert_msg(ops->llama_requires_imatrix == want[i].llama, "%s llama", name);
		ck_assert_msg(ops->quantize_rows != NULL, "%s weighted path", name);
		/* Without weights only the types ggml accepts so have an unweighted path. */
		ck_assert_msg((ops->quantize != NULL) == !want[i].ggml, "%s unweighted path", name);
		ck_assert(qa_type_get(want[i].type)->quantizable && qa_type_get(want[i].type)->decodable);
	}
	/* The refused ones write zeros rather than garbage when called without weights. */
	uint8_t out[82];
	for (size_t i = 0; i < 3; i++) {
		const struct qa_type_info *t = qa_type_get(want[i].type);
		memset(out, 0xa5, sizeof out);
		qa_quant_ops(t->id)->quantize_rows(input, out, 1, 256, NULL);
		for (uint32_t b = 0; b < t->block_bytes; b++)
			ck_assert_uint_eq(out[b], 0);
		ck_assert_uint_eq(out[t->block_bytes], 0xa5);
	}
}
END_TEST

/*
 * limits: weighted quantization works row by row (the weights index
 * columns) and block by block within a row; unweighted, any cut on a block
 * boundary gives the same bytes.
 */
START_TEST(row_locality)
{
	const struct qa_type_info *t = qa_type_by_name(type_names[_i]);
	const struct qa_quant_ops *ops = qa_quant_ops(t->id);
	size_t row_bytes = NPR / 256 * t->block_bytes;
	uint8_t *whole = malloc(NROW * row_bytes), *piece = malloc(row_bytes);
	ops->quantize_rows(input, whole, NROW, NPR, imatrix);
	for (size_t r = 0; r < NROW; r += 21) {
		ops->quantize_rows(input + r * NPR, piece, 1, NPR, imatrix);
		ck_assert_mem_eq(piece, whole + r * row_bytes, row_bytes);
		/* One block of row r with its columns' weights. */
		for (size_t b = 0; b < NPR / 256; b += 3) {
			ops->quantize_rows(input + r * NPR + 256 * b, piece, 1, 256, imatrix + 256 * b);
			ck_assert_mem_eq(piece, whole + r * row_bytes + b * t->block_bytes, t->block_bytes);
		}
	}
	if (ops->quantize) {
		ops->quantize_rows(input, whole, NROW, NPR, NULL);
		for (size_t b = 0; b < N_INPUT / 256; b += 7) {
			ops->quantize(input + 256 * b, piece, 256);
			ck_assert_mem_eq(piece, whole + b * t->block_bytes, t->block_bytes);
		}
	}
	free(whole);
	free(piece);
}
END_TEST

/*
 * limits: the round trip of a Gaussian-like row keeps its sign pattern
 * where it matters and its error below the row's range; an all-zero block
 * encodes to all zero bytes and decodes to zeros.
 */
START_TEST(zeros_and_round_trip)
{
	const struct qa_type_info *t = qa_type_by_name(type_names[_i]);
	const struct qa_quant_ops *ops = qa_quant_ops(t->id);
	float zeros[256] = { 0 }, back[256];
	uint8_t q[82];
	memset(q, 0xa5, sizeof q);
	ops->quantize_rows(zeros, q, 1, 256, imatrix);
	for (uint32_t b = 0; b < t->block_bytes; b++)
		ck_assert_uint_eq(q[b], 0);
	ops->dequantize(q, back, 256);
	for (int i = 0; i < 256; i++)
		ck_assert(back[i] == 0.0f);
	/* Block 3 of the input is ordinary data: the error stays below its largest magnitude. */
	const float *x = input + 3 * 256;
	float amax = 0, err = 0, ref = 0;
	ops->quantize_rows(x, q, 1, 256, imatrix);
	ops->dequantize(q, back, 256);
	for (int i = 0; i < 256; i++) {
		amax = fmaxf(amax, fabsf(x[i]));
		err += (back[i] - x[i]) * (back[i] - x[i]);
		ref += x[i] * x[i];
	}
	ck_assert(amax > 0);
	ck_assert_msg(err < ref, "%s: error energy %g not below signal %g", t->name, err, ref);
}
END_TEST

/* limits: the implied eighth sign makes every sign byte's bit count even. */
START_TEST(sign_parity)
{
	for (unsigned s = 0; s < 128; s++) {
		uint8_t b = qa_iq_sign_byte(s);
		ck_assert_uint_eq(b & 127, s);
		ck_assert_uint_eq(__builtin_popcount(b) % 2, 0);
	}
}
END_TEST

/*
 * limits: the table builder for other shapes (4 coordinates of 3 bits, as
 * the iq3 grids have) against a direct definition: the neighbours of u are
 * the points at its nwant smallest distinct distances, by distance then
 * index.
 */
START_TEST(builder_general)
{
	enum { DIM = 4, BITS = 3, MAP = 1 << (DIM * BITS), NP = 40, NWANT = 2 };
	uint16_t codes[NP];
	uint32_t st = 99;
	for (int j = 0; j < NP; j++) {
		uint16_t c;
		bool dup;
		do {
			st ^= st << 13;
			st ^= st >> 17;
			st ^= st << 5;
			c = (uint16_t)(st % MAP);
			dup = false;
			for (int k = 0; k < j; k++)
				dup |= codes[k] == c;
		} while (dup);
		codes[j] = c;
	}
	static int32_t map[MAP];
	static uint16_t nbr[MAP * (NP + 1)];
	static uint32_t scratch[2 * NP + 2 * (1 << (DIM / 2 * BITS))];
	size_t total = qa_iq_grid_build(codes, NP, DIM, BITS, MAP, NWANT, map, nbr, sizeof nbr / 2,
	                                scratch);
	ck_assert_uint_le(total, sizeof nbr / 2);
	ck_assert_uint_eq(qa_iq_grid_build(codes, NP, DIM, BITS, MAP, NWANT, map, NULL, 0, scratch),
	                  total);
	for (uint32_t u = 0; u < MAP; u++) {
		int on = -1;
		for (int j = 0; j < NP; j++)
			if (codes[j] == u)
				on = j;
		if (on >= 0) {
			ck_assert_int_eq(map[u], on);
			continue;
		}
		ck_assert_int_lt(map[u], 0);
		const uint16_t *list = nbr + (-map[u] - 1);
		int d[NP];
		for (int j = 0; j < NP; j++) {
			d[j] = 0;
			for (int k = 0; k < DIM; k++) {
				int a = (codes[j] >> (BITS * k)) & 7, b = (u >> (BITS * k)) & 7;
				d[j] += (2 * a - 2 * b) * (2 * a - 2 * b);
			}
		}
		/* Expected: walk distances upward, taking the first NWANT that occur. */
		unsigned n = 0, have = 0;
		for (int dist = 0; dist <= 4 * DIM * 49 && have < NWANT; dist += 4) {
			bool any = false;
			for (int j = 0; j < NP; j++) {
				if (d[j] != dist)
					continue;
				any = true;
				ck_assert_uint_lt(n, list[0]);
				ck_assert_uint_eq(list[1 + n], j);
				n++;
			}
			have += any;
		}
		ck_assert_uint_eq(list[0], n);
	}
}
END_TEST

static uint32_t xs_next(uint32_t *st)
{
	uint32_t x = *st;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *st = x;
}

/* Uniform in [-1, 1). */
static float xs_unit(uint32_t *st)
{
	return (float)(xs_next(st) >> 8) / 8388608.0f - 1.0f;
}

/*
 * Super-block kind k: ordinary, heavy-tailed, all equal, ties in pairs,
 * few distinct values, sparse, one-signed, tiny, huge, sub-blocks of zeros.
 */
#define N_KINDS 12
static void nasty_block(float *v, unsigned k, uint32_t *st)
{
	float s = 0.01f + fabsf(xs_unit(st));
	for (int i = 0; i < 256; i++) {
		float g = xs_unit(st) + xs_unit(st) + xs_unit(st);
		switch (k) {
		case 0: v[i] = s * g; break;
		case 1: v[i] = s * g * (xs_next(st) % 50 == 0 ? 20.0f : 1.0f); break;
		case 2: v[i] = s; break;
		case 3: v[i] = i % 2 ? v[i - 1] : s * g; break;
		case 4: v[i] = s * (float)((int)(xs_next(st) % 5) - 2); break;
		case 5: v[i] = xs_next(st) % 9 == 0 ? s * g : 0.0f; break;
		case 6: v[i] = fabsf(s * g); break;
		case 7: v[i] = -fabsf(s * g); break;
		case 8: v[i] = s * g * 1e-9f; break;
		case 9: v[i] = s * g * 1e4f; break;
		case 10: v[i] = (i / 16) % 3 == 1 ? 0.0f : s * g; break;
		default: v[i] = (i / 8) % 2 ? s * g : -0.0f; break;
		}
	}
}

/*
 * limits: the fast and the scalar search agree byte for byte, with and
 * without weights (where the type takes none), on every kind of block and
 * on weights with zeros, ties and a wide spread.
 */
START_TEST(paths_agree)
{
	const struct qa_type_info *t = qa_type_by_name(type_names[_i]);
	bool iq1 = t->id == QA_TYPE_IQ1_S || t->id == QA_TYPE_IQ1_M;
	bool (*path)(uint32_t, bool, const float *, void *, size_t, size_t, const float *) =
		iq1 ? qa_quant_iq1_quantize_path : qa_quant_iq2_quantize_path;
	enum { ROWS = 4, COLS = 256 * N_KINDS };
	float *x = malloc(ROWS * COLS * sizeof *x), qw[COLS];
	size_t nbytes = ROWS * N_KINDS * t->block_bytes;
	uint8_t *fast = malloc(nbytes), *slow = malloc(nbytes);
	uint32_t st = 7u + (uint32_t)_i;
	for (int r = 0; r < ROWS; r++)
		for (unsigned k = 0; k < N_KINDS; k++)
			nasty_block(x + r * COLS + 256 * k, k, &st);
	for (int c = 0; c < COLS; c++) {
		uint32_t u = xs_next(&st) % 10;
		qw[c] = u == 0 ? 0.0f : u == 1 ? 1.0f : expf(4.0f * xs_unit(&st));
	}
	for (int weighted = 1; weighted >= 0; weighted--) {
		const float *w = weighted ? qw : NULL;
		bool ok = path(t->id, false, x, slow, ROWS, COLS, w);
		ck_assert(ok == path(t->id, true, x, fast, ROWS, COLS, w));
		ck_assert(ok == (weighted || !qa_quant_ops(t->id)->requires_imatrix));
		if (ok)
			ck_assert_msg(memcmp(fast, slow, nbytes) == 0, "%s %s: paths differ", t->name,
			              weighted ? "weighted" : "unweighted");
	}
	/* And on the oracle input with its weights. */
	uint8_t *a = malloc(N_INPUT / 256 * t->block_bytes), *b = malloc(N_INPUT / 256 * t->block_bytes);
	ck_assert(path(t->id, false, input, a, NROW, NPR, imatrix));
	ck_assert(path(t->id, true, input, b, NROW, NPR, imatrix));
	ck_assert_mem_eq(a, b, N_INPUT / 256 * t->block_bytes);
	free(a);
	free(b);
	free(x);
	free(fast);
	free(slow);
}
END_TEST

/* malformed: decoding arbitrary bytes keeps to its blocks and its n floats (tu_decode.h), and is finite wherever the scale is. */
START_TEST(decode_garbage)
{
	const struct qa_type_info *t = qa_type_by_name(type_names[_i]);
	const struct qa_quant_ops *ops = qa_quant_ops(t->id);
	uint8_t raw[4 * 82 + 64]; /* 64 bytes past the blocks, which must not matter */
	float out[1024];
	uint32_t x = 2463534242u;
	for (int round = 0; round < 64; round++) {
		for (size_t i = 0; i < sizeof raw; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			raw[i] = round == 0 ? 0xff : (uint8_t)x;
		}
		if (round == 1) /* finite scales: clear the fp16 exponent's top bit */
			for (int b = 0; b < 4; b++)
				raw[b * t->block_bytes + (t->id == QA_TYPE_IQ1_M ? 55 : 1)] &= 0xbf;
		tu_decode_properties(t, ops, raw, sizeof raw, 1024);
		ops->dequantize(raw, out, 1024);
		if (round == 1)
			for (int i = 0; i < 1024; i++)
				ck_assert(isfinite(out[i]));
	}
}
END_TEST

/*
 * malformed: importance weights from a hostile matrix (negative, NaN,
 * infinite, huge) and extreme finite inputs: ggml aborts on some of these,
 * we must not: both paths write the same whole blocks, which decode.
 */
START_TEST(hostile_weights)
{
	const struct qa_type_info *t = qa_type_by_name(type_names[_i]);
	bool iq1 = t->id == QA_TYPE_IQ1_S || t->id == QA_TYPE_IQ1_M;
	bool (*path)(uint32_t, bool, const float *, void *, size_t, size_t, const float *) =
		iq1 ? qa_quant_iq1_quantize_path : qa_quant_iq2_quantize_path;
	static const float bad[] = { -1.0f, NAN, INFINITY, -INFINITY, 3e38f, 0.0f, -0.0f, 1e-38f };
	float x[1024], qw[1024], back[1024];
	uint8_t q[4 * 82 + 1];
	uint32_t st = 5;
	for (int i = 0; i < 1024; i++) {
		x[i] = xs_unit(&st) * (i < 256 ? 3e37f : i < 512 ? 1e-37f : 1.0f);
		qw[i] = bad[xs_next(&st) % (sizeof bad / sizeof bad[0])];
	}
	uint8_t q2[4 * 82 + 1];
	memset(q, 0xa5, sizeof q);
	memset(q2, 0x5a, sizeof q2);
	ck_assert(path(t->id, false, x, q, 1, 1024, qw));
	ck_assert(path(t->id, true, x, q2, 1, 1024, qw));
	/* Both paths write every byte, the same bytes, and stop at the end. */
	ck_assert_mem_eq(q, q2, 4 * t->block_bytes);
	ck_assert_uint_eq(q[4 * t->block_bytes], 0xa5);
	qa_quant_ops(t->id)->dequantize(q, back, 1024);
}
END_TEST

static Suite *iq_grid_suite(void)
{
	Suite *s = suite_create("iq_grid");
	TCase *core = tcase_create("core");
	tcase_add_unchecked_fixture(core, load_input, free_input);
	tcase_add_loop_test(core, tables_match_ggml, 0, QA_IQ_GRID_COUNT);
	tcase_add_loop_test(core, oracle_quantize, 0, N_VECTORS);
	tcase_add_loop_test(core, oracle_dequantize, 0, N_VECTORS);
	tcase_add_loop_test(core, real_llama_quantize, 0, (int)(sizeof real_cases / sizeof real_cases[0]));
	tcase_set_timeout(core, 120);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_unchecked_fixture(limits, load_input, free_input);
	tcase_add_test(limits, imatrix_requirements);
	tcase_add_loop_test(limits, row_locality, 0, N_TYPES);
	tcase_add_loop_test(limits, zeros_and_round_trip, 0, N_TYPES);
	tcase_add_test(limits, sign_parity);
	tcase_add_test(limits, builder_general);
	tcase_add_test(limits, concurrent_build);
	tcase_add_loop_test(limits, paths_agree, 0, N_TYPES);
	tcase_set_timeout(limits, 120);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, decode_garbage, 0, N_TYPES);
	tcase_add_loop_test(bad, hostile_weights, 0, N_TYPES);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(iq_grid_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
