/*
 * check_safetensors.c - unit tests for the safetensors reader.
 *
 * core: the valid files made by tests/data/safetensors/make.py (single,
 * sharded, directory forms, memory and non-lending sources) and the exact
 * f32 values of F32/F16/BF16 data, computed here from the IEEE definitions.
 * limits: in-memory headers at the edges of what is accepted.
 * malformed: every bad-* entry of tests/data/safetensors, against the code,
 * offset and reason make.py recorded in expected.tsv; truncations and byte
 * flips of a valid file must fail cleanly or succeed, never crash.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cursor.h"
#include "safetensors.h"

static char *data_path(const char *rel)
{
	const char *top = getenv("QA_TOP_SRCDIR");
	if (!top || !*top)
		top = ".";
	size_t n = strlen(top) + strlen(rel) + 64;
	char *p = malloc(n);
	ck_assert_ptr_nonnull(p);
	snprintf(p, n, "%s/tests/data/safetensors%s%s", top, *rel ? "/" : "", rel);
	return p;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static struct qa_st *open_ok(const char *rel)
{
	char *p = data_path(rel);
	struct qa_st *st = NULL;
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_st_open(&st, p, &d);
	ck_assert_msg(e == QA_OK, "%s: %s", p, d.msg);
	free(p);
	return st;
}

static bool same_float(float a, float b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

/* ------------------------------------------------------------------ core */

START_TEST(test_good_small_listing)
{
	static const struct {
		const char *name, *dtype;
		uint32_t n_dims;
		uint64_t shape[2], n_elems, bytes;
	} want[] = {
		/* data order, not key order */
		{ "a.f32", "F32", 2, { 2, 3 }, 6, 24 },
		{ "b.f16", "F16", 1, { 8, 0 }, 8, 16 },
		{ "c.bf16", "BF16", 2, { 2, 2 }, 4, 8 },
		{ "d.i8", "I8", 1, { 4, 0 }, 4, 4 },
		{ "e.scalar", "F32", 0, { 0, 0 }, 1, 4 },
		{ "f.empty", "F32", 2, { 0, 4 }, 0, 0 },
	};
	char *p = data_path("good-small.safetensors");
	size_t len;
	unsigned char *raw = slurp(p, &len);
	uint64_t n = qa_load_le64(raw);
	struct qa_st *st = open_ok("good-small.safetensors");

	ck_assert_uint_eq(qa_st_n_shards(st), 1);
	ck_assert_str_eq(qa_st_shard_path(st, 0), p);
	ck_assert_ptr_nonnull(qa_st_shard_source(st, 0));
	ck_assert_ptr_null(qa_st_shard_source(st, 1));
	ck_assert_uint_eq(qa_st_header_len(st, 0), 8 + n);
	ck_assert_uint_eq(qa_st_n_tensors(st), 6);
	uint64_t pos = 0;
	for (size_t i = 0; i < 6; i++) {
		const struct qa_st_tensor *t = qa_st_tensor_at(st, i);
		ck_assert_ptr_nonnull(t);
		ck_assert_str_eq(t->name, want[i].name);
		ck_assert_str_eq(t->dtype, want[i].dtype);
		ck_assert_uint_eq(t->n_dims, want[i].n_dims);
		for (uint32_t k = 0; k < t->n_dims; k++)
			ck_assert_uint_eq(t->shape[k], want[i].shape[k]);
		ck_assert_uint_eq(t->n_elems, want[i].n_elems);
		ck_assert_uint_eq(t->begin, pos);
		ck_assert_uint_eq(t->end - t->begin, want[i].bytes);
		ck_assert_uint_eq(t->data_offset, 8 + n + t->begin);
		ck_assert_uint_eq(t->shard, 0);
		ck_assert_ptr_eq(qa_st_tensor_find(st, want[i].name), t);
		pos = t->end;
	}
	ck_assert_uint_eq(8 + n + pos, len);
	ck_assert_ptr_null(qa_st_tensor_at(st, 6));
	ck_assert_ptr_null(qa_st_tensor_find(st, "a.f3"));
	ck_assert_ptr_null(qa_st_tensor_find(st, "zzz"));
	ck_assert_ptr_null(qa_st_tensor_find(st, ""));

	const char *k, *v;
	ck_assert_uint_eq(qa_st_n_metadata(st), 2);
	ck_assert(qa_st_metadata_at(st, 0, &k, &v));
	ck_assert_str_eq(k, "format");
	ck_assert_str_eq(v, "pt");
	ck_assert(qa_st_metadata_at(st, 1, &k, &v));
	ck_assert_str_eq(k, "note");
	ck_assert_str_eq(v, "quantaudit test");
	ck_assert(!qa_st_metadata_at(st, 2, &k, &v));

	char *dir = data_path("");
	ck_assert_str_eq(qa_st_dir(st), dir);
	free(dir);

	/* The view is the file's bytes. */
	const struct qa_st_tensor *t = qa_st_tensor_find(st, "b.f16");
	const void *view;
	struct qa_diag d;
	ck_assert_int_eq(qa_st_tensor_view(st, t, &view, &d), QA_OK);
	ck_assert(memcmp(view, raw + t->data_offset, 16) == 0);
	qa_st_close(st);
	free(raw);
	free(p);
}
END_TEST

/* Expected values from the IEEE definitions, not from the converter. */
static void check_values(struct qa_st *st)
{
	float out[8];
	struct qa_diag d;
	const struct qa_st_tensor *t;

	t = qa_st_tensor_find(st, "a.f32");
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 0, 6, out, &d), QA_OK);
	const float a[6] = { 1.0f, -2.5f, 0.0f, -0.0f, 3.4028234663852886e38f,
	                     ldexpf(1.0f, -149) };
	for (int i = 0; i < 6; i++)
		ck_assert_msg(same_float(out[i], a[i]), "a[%d] = %a", i, (double)out[i]);

	t = qa_st_tensor_find(st, "b.f16");
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 0, 8, out, &d), QA_OK);
	const float b[8] = { 1.0f, ldexpf(1.0f, -24), ldexpf(1023.0f, -24),
	                     -ldexpf(1.0f, -24), 65504.0f, -INFINITY,
	                     ldexpf(0x155 + 1024.0f, -12), -2.0f };
	for (int i = 0; i < 8; i++)
		ck_assert_msg(same_float(out[i], b[i]), "b[%d] = %a", i, (double)out[i]);

	t = qa_st_tensor_find(st, "c.bf16");
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 0, 4, out, &d), QA_OK);
	const float c[4] = { 1.0f, -3.0f, ldexpf(1.0f, -133), INFINITY };
	for (int i = 0; i < 4; i++)
		ck_assert_msg(same_float(out[i], c[i]), "c[%d] = %a", i, (double)out[i]);

	/* A sub-range. */
	t = qa_st_tensor_find(st, "b.f16");
	memset(out, 0, sizeof out);
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 3, 2, out, &d), QA_OK);
	ck_assert(same_float(out[0], b[3]) && same_float(out[1], b[4]));
	ck_assert(same_float(out[2], 0.0f));
	/* Out of range. */
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 7, 2, out, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 9, 0, out, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, UINT64_MAX, 2, out, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 8, 0, out, &d), QA_OK);

	t = qa_st_tensor_find(st, "d.i8");
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 0, 1, out, &d), QA_ERR_UNSUPPORTED);
	ck_assert_str_eq(d.msg, "dtype I8 cannot be quantized");

	t = qa_st_tensor_find(st, "e.scalar");
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 0, 1, out, &d), QA_OK);
	ck_assert(same_float(out[0], 42.0f));

	t = qa_st_tensor_find(st, "f.empty");
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 0, 0, out, &d), QA_OK);
	ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 0, 1, out, &d), QA_ERR_USAGE);
}

START_TEST(test_good_small_values)
{
	struct qa_st *st = open_ok("good-small.safetensors");
	check_values(st);

	/* A tensor that does not belong to the checkpoint is refused. */
	struct qa_st_tensor fake = *qa_st_tensor_find(st, "a.f32");
	float out[8];
	struct qa_diag d;
	fake.shard = 3;
	ck_assert_int_eq(qa_st_tensor_read_f32(st, &fake, 0, 1, out, &d), QA_ERR_USAGE);
	fake.shard = 0;
	fake.end = fake.begin + (1u << 30);
	ck_assert_int_eq(qa_st_tensor_read_f32(st, &fake, 0, 1, out, &d), QA_ERR_USAGE);
	qa_st_close(st);
}
END_TEST

/* A source that cannot lend memory, like a remote one. */
struct noview_source {
	struct qa_source base;
	const unsigned char *data;
	int reads;
};

static enum qa_err nv_read(struct qa_source *s, uint64_t off, size_t len,
                           void *buf, struct qa_diag *d)
{
	(void)d;
	struct noview_source *n = (struct noview_source *)s;
	n->reads++;
	memcpy(buf, n->data + off, len);
	return QA_OK;
}

static void nv_close(struct qa_source *s)
{
	(void)s;
}

static const struct qa_source_ops nv_ops = { nv_read, NULL, nv_close, NULL };

START_TEST(test_sources)
{
	char *p = data_path("good-small.safetensors");
	size_t len;
	unsigned char *raw = slurp(p, &len);
	struct qa_diag d;

	/* Memory source. */
	struct qa_source *src;
	struct qa_st *st;
	ck_assert_int_eq(qa_source_open_memory(&src, raw, len, "mem", &d), QA_OK);
	ck_assert_int_eq(qa_st_open_source(&st, src, &d), QA_OK);
	ck_assert_ptr_null(qa_st_dir(st));
	ck_assert_str_eq(qa_st_shard_path(st, 0), "mem");
	ck_assert_ptr_eq(qa_st_shard_source(st, 0), src);
	check_values(st);
	qa_st_close(st);
	/* The borrowed source survives qa_st_close. */
	ck_assert_uint_eq(qa_source_size(src), len);
	qa_source_close(src);

	/* Non-lending source: views fall back to reads into owned buffers. */
	struct noview_source nv = { { &nv_ops, len, (char *)"noview" }, raw, 0 };
	ck_assert_int_eq(qa_st_open_source(&st, &nv.base, &d), QA_OK);
	check_values(st);
	const struct qa_st_tensor *t = qa_st_tensor_find(st, "c.bf16");
	const void *view1, *view2;
	ck_assert_int_eq(qa_st_tensor_view(st, t, &view1, &d), QA_OK);
	ck_assert_int_eq(qa_st_tensor_view(st, t, &view2, &d), QA_OK);
	ck_assert(memcmp(view1, raw + t->data_offset, 8) == 0);
	ck_assert(memcmp(view2, raw + t->data_offset, 8) == 0);
	ck_assert(nv.reads > 0);
	qa_st_close(st);
	free(raw);
	free(p);
}
END_TEST

/* Build an in-memory file with one F32/F16/BF16 tensor of n elements. */
static unsigned char *build_one(const char *dtype, size_t n, size_t *len)
{
	int es = qa_st_dtype_size(dtype);
	char hdr[256];
	int h = snprintf(hdr, sizeof hdr,
	                 "{\"t\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}",
	                 dtype, n, n * (size_t)es);
	*len = 8 + (size_t)h + n * (size_t)es;
	unsigned char *b = malloc(*len);
	qa_store_le64(b, (uint64_t)h);
	memcpy(b + 8, hdr, (size_t)h);
	for (size_t i = 0; i < n; i++) {
		unsigned char *q = b + 8 + h + i * (size_t)es;
		if (es == 4)
			qa_store_lef32(q, (float)i - 1000.0f);
		else if (strcmp(dtype, "BF16") == 0)
			qa_store_le16(q, (uint16_t)(0x3f80 + (i % 128)));
		else
			qa_store_le16(q, (uint16_t)(i % 0x7c00));
	}
	return b;
}

START_TEST(test_chunked_reads)
{
	/* Larger than the 4 KiB chunk so the non-lending path loops. */
	static const char *dts[] = { "F32", "F16", "BF16" };
	for (int k = 0; k < 3; k++) {
		size_t n = 5000, len;
		unsigned char *raw = build_one(dts[k], n, &len);
		struct noview_source nv = { { &nv_ops, len, (char *)"noview" }, raw, 0 };
		struct qa_source *ms;
		struct qa_st *a, *b;
		struct qa_diag d;
		ck_assert_int_eq(qa_source_open_memory(&ms, raw, len, "m", &d), QA_OK);
		ck_assert_int_eq(qa_st_open_source(&a, ms, &d), QA_OK);
		ck_assert_int_eq(qa_st_open_source(&b, &nv.base, &d), QA_OK);
		float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
		const struct qa_st_tensor *ta = qa_st_tensor_at(a, 0);
		const struct qa_st_tensor *tb = qa_st_tensor_at(b, 0);
		ck_assert_int_eq(qa_st_tensor_read_f32(a, ta, 0, n, x, &d), QA_OK);
		nv.reads = 0;
		ck_assert_int_eq(qa_st_tensor_read_f32(b, tb, 0, n, y, &d), QA_OK);
		ck_assert_int_ge(nv.reads, 2);
		ck_assert(memcmp(x, y, n * sizeof *x) == 0);
		ck_assert_int_eq(qa_st_tensor_read_f32(b, tb, 1234, n - 1234, y, &d), QA_OK);
		ck_assert(memcmp(x + 1234, y, (n - 1234) * sizeof *x) == 0);
		if (k == 0)
			ck_assert(same_float(x[4999], 3999.0f));
		free(x);
		free(y);
		qa_st_close(a);
		qa_st_close(b);
		qa_source_close(ms);
		free(raw);
	}
}
END_TEST

START_TEST(test_dtypes)
{
	static const struct {
		const char *name;
		int size;
		bool is_float;
	} want[] = {
		{ "F64", 8, false }, { "F32", 4, true }, { "F16", 2, true },
		{ "BF16", 2, true }, { "I64", 8, false }, { "I32", 4, false },
		{ "I16", 2, false }, { "I8", 1, false }, { "U64", 8, false },
		{ "U32", 4, false }, { "U16", 2, false }, { "U8", 1, false },
		{ "BOOL", 1, false }, { "F8_E4M3", 1, false }, { "F8_E5M2", 1, false },
		{ "F8_E8M0", 1, false }, { "C64", 8, false },
	};
	size_t n = sizeof want / sizeof want[0];
	struct qa_st *st = open_ok("good-dtypes.safetensors");
	ck_assert_uint_eq(qa_st_n_tensors(st), n);
	for (size_t i = 0; i < n; i++) {
		const struct qa_st_tensor *t = qa_st_tensor_at(st, i);
		char name[32];
		snprintf(name, sizeof name, "t.%s", want[i].name);
		ck_assert_str_eq(t->name, name);
		ck_assert_str_eq(t->dtype, want[i].name);
		ck_assert_int_eq(qa_st_dtype_size(want[i].name), want[i].size);
		ck_assert_uint_eq(t->end - t->begin, (uint64_t)want[i].size);
		ck_assert(qa_st_dtype_is_float(want[i].name) == want[i].is_float);
		float f;
		struct qa_diag d;
		enum qa_err e = qa_st_tensor_read_f32(st, t, 0, 1, &f, &d);
		ck_assert_int_eq(e, want[i].is_float ? QA_OK : QA_ERR_UNSUPPORTED);
		if (!want[i].is_float) {
			char msg[64];
			snprintf(msg, sizeof msg, "dtype %s cannot be quantized", want[i].name);
			ck_assert_str_eq(d.msg, msg);
		}
	}
	ck_assert_int_eq(qa_st_dtype_size("f32"), 0);
	ck_assert_int_eq(qa_st_dtype_size("Q4_K"), 0);
	ck_assert_int_eq(qa_st_dtype_size(""), 0);
	ck_assert_int_eq(qa_st_dtype_size(NULL), 0);
	qa_st_close(st);

	st = open_ok("good-empty.safetensors");
	ck_assert_uint_eq(qa_st_n_tensors(st), 0);
	ck_assert_uint_eq(qa_st_n_metadata(st), 0);
	ck_assert_ptr_null(qa_st_tensor_find(st, "x"));
	qa_st_close(st);
}
END_TEST

static void check_sharded(struct qa_st *st, const char *dirrel)
{
	static const struct {
		const char *name, *dtype;
		uint32_t shard;
		float first, last;
	} want[] = {
		{ "model.embed_tokens.weight", "F32", 0, 1.0f, 6.0f },
		{ "model.layers.0.w", "BF16", 0, 1.0f, 4.0f },
		{ "model.layers.1.w", "F16", 1, 1.0f, 4.0f },
		{ "lm_head.weight", "F32", 1, -1.0f, -6.0f },
	};
	char *dir = data_path(dirrel);
	ck_assert_str_eq(qa_st_dir(st), dir);
	ck_assert_uint_eq(qa_st_n_shards(st), 2);
	for (uint32_t s = 0; s < 2; s++) {
		char rel[128];
		snprintf(rel, sizeof rel, "%s/model-0000%u-of-00002.safetensors", dirrel, s + 1);
		char *p = data_path(rel);
		ck_assert_str_eq(qa_st_shard_path(st, s), p);
		size_t len;
		unsigned char *raw = slurp(p, &len);
		ck_assert_uint_eq(qa_st_header_len(st, s), 8 + qa_load_le64(raw));
		free(raw);
		free(p);
	}
	ck_assert_ptr_null(qa_st_shard_path(st, 2));
	ck_assert_uint_eq(qa_st_header_len(st, 2), 0);
	ck_assert_uint_eq(qa_st_n_tensors(st), 4);
	for (size_t i = 0; i < 4; i++) {
		const struct qa_st_tensor *t = qa_st_tensor_at(st, i);
		ck_assert_str_eq(t->name, want[i].name);
		ck_assert_str_eq(t->dtype, want[i].dtype);
		ck_assert_uint_eq(t->shard, want[i].shard);
		ck_assert_ptr_eq(qa_st_tensor_find(st, want[i].name), t);
		float v[6];
		struct qa_diag d;
		ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 0, t->n_elems, v, &d), QA_OK);
		ck_assert(same_float(v[0], want[i].first));
		ck_assert(same_float(v[t->n_elems - 1], want[i].last));
	}
	const char *k, *v;
	/* the index's metadata, then the first shard's __metadata__ keys not
	 * already given ("format" appears in both and is listed once) */
	ck_assert_uint_eq(qa_st_n_metadata(st), 2);
	ck_assert(qa_st_metadata_at(st, 0, &k, &v));
	ck_assert_str_eq(k, "total_size");
	ck_assert_str_eq(v, "64");
	ck_assert(qa_st_metadata_at(st, 1, &k, &v));
	ck_assert_str_eq(k, "format");
	ck_assert_str_eq(v, "pt");
	ck_assert(!qa_st_metadata_at(st, 2, &k, &v));
	free(dir);
}

START_TEST(test_sharded)
{
	struct qa_st *st = open_ok("sharded");
	check_sharded(st, "sharded");

	struct qa_model_config cfg;
	bool found = false;
	struct qa_diag d;
	ck_assert_int_eq(qa_config_load_beside(&cfg, st, &found, &d), QA_OK);
	ck_assert(found);
	ck_assert_str_eq(cfg.architecture, "qwen2");
	ck_assert_uint_eq(cfg.hidden_size, 3);
	qa_st_close(st);

	st = open_ok("sharded/model.safetensors.index.json");
	check_sharded(st, "sharded");
	qa_st_close(st);

	/* A trailing slash names the same directory. */
	st = open_ok("sharded/");
	check_sharded(st, "sharded");
	qa_st_close(st);

	/* One shard opened on its own is an ordinary file. */
	st = open_ok("sharded/model-00002-of-00002.safetensors");
	ck_assert_uint_eq(qa_st_n_tensors(st), 2);
	ck_assert_str_eq(qa_st_tensor_at(st, 0)->name, "model.layers.1.w");
	qa_st_close(st);

	/* A directory holding one file. */
	st = open_ok("single");
	ck_assert_uint_eq(qa_st_n_shards(st), 1);
	ck_assert_uint_eq(qa_st_n_tensors(st), 2);
	ck_assert_int_eq(qa_config_load_beside(&cfg, st, &found, &d), QA_OK);
	ck_assert(!found);
	qa_st_close(st);
}
END_TEST

START_TEST(test_open_errors)
{
	struct qa_st *st = (struct qa_st *)&st; /* must stay untouched */
	struct qa_st *keep = st;
	struct qa_diag d;
	char *p = data_path("no-such-file.safetensors");
	ck_assert_int_eq(qa_st_open(&st, p, &d), QA_ERR_IO);
	ck_assert_ptr_eq(st, keep);
	free(p);
	/* The data directory itself holds many files and no index. */
	p = data_path("");
	ck_assert_int_eq(qa_st_open(&st, p, &d), QA_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(d.msg, "but no index"));
	free(p);
	ck_assert_int_eq(qa_st_open(&st, NULL, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_st_open_source(&st, NULL, &d), QA_ERR_USAGE);
	/* a directory without a checkpoint is a usage error (the CLI exits 2) */
	ck_assert_int_eq(qa_st_open(&st, "/", &d), QA_ERR_USAGE);
	ck_assert_ptr_nonnull(strstr(d.msg, "no .safetensors file"));
	qa_st_close(NULL);
	ck_assert_uint_eq(qa_st_n_tensors(NULL), 0);
}
END_TEST

/* ---------------------------------------------------------------- limits */

static const struct limit_case {
	const char *header; /* %s-free JSON */
	size_t data_len;
	enum qa_err want;
	const char *reason;
} limit_cases[] = {
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[0,2]}}", 2, QA_OK, NULL },
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,2]}}", 2, QA_ERR_FORMAT, "more than 8" },
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[0,1,1,1,1,1,1,1],\"data_offsets\":[0,0]}}", 0, QA_OK, NULL },
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, QA_OK, NULL },
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[1,5]}}", 4, QA_ERR_FORMAT, "past end of data" },
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]}}", 4, QA_OK, NULL },
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[5,5]}}", 4, QA_ERR_FORMAT, "past end of data" },
	/* gaps and trailing bytes are tolerated */
	{ "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]}}", 9, QA_OK, NULL },
	/* adjacent tensors do not overlap; zero-size at a boundary neither */
	{ "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 4, QA_OK, NULL },
	{ "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", 4, QA_ERR_FORMAT, "overlaps" },
	/* largest integers jansson accepts, and beyond */
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[9223372036854775807],\"data_offsets\":[0,9223372036854775807]}}", 4, QA_ERR_FORMAT, "past end of data" },
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[9223372036854775808],\"data_offsets\":[0,4]}}", 4, QA_ERR_FORMAT, "not valid json" },
	{ "{\"t\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 4, QA_ERR_FORMAT, "byte size overflows" },
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 4, QA_ERR_FORMAT, "overflows" },
	/* extra fields in an entry are ignored; an empty object header is fine */
	{ "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":[1]}}", 1, QA_OK, NULL },
	{ "{}", 0, QA_OK, NULL },
	{ "  {}  ", 0, QA_OK, NULL },
	{ "{\"__metadata__\":{\"k\":\"v\"},\"__metadata__x\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 1, QA_OK, NULL },
};

START_TEST(test_limits_table)
{
	const struct limit_case *c = &limit_cases[_i];
	size_t h = strlen(c->header), len = 8 + h + c->data_len;
	unsigned char *b = calloc(1, len);
	qa_store_le64(b, h);
	memcpy(b + 8, c->header, h);
	struct qa_source *src;
	struct qa_st *st = NULL;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_source_open_memory(&src, b, len, "mem", &d), QA_OK);
	enum qa_err e = qa_st_open_source(&st, src, &d);
	ck_assert_msg(e == c->want, "case %d: got %d (%s)", _i, e, d.msg);
	if (c->reason)
		ck_assert_msg(strstr(d.msg, c->reason), "case %d: %s", _i, d.msg);
	if (e == QA_OK) {
		for (size_t i = 0; i < qa_st_n_tensors(st); i++) {
			const struct qa_st_tensor *t = qa_st_tensor_at(st, i);
			ck_assert_uint_le(t->data_offset + (t->end - t->begin), len);
		}
		qa_st_close(st);
	} else {
		ck_assert_uint_ge(d.offset, 8);
		ck_assert_uint_le(d.offset, 8 + h);
	}
	qa_source_close(src);
	free(b);
}
END_TEST

START_TEST(test_header_len_limit)
{
	/* Just over the limit is refused as too large; at the limit, as past EOF. */
	unsigned char b[16] = { 0 };
	struct qa_source *src;
	struct qa_st *st;
	struct qa_diag d;
	memcpy(b + 8, "{}      ", 8);
	qa_store_le64(b, QA_ST_MAX_HEADER + 1ull);
	ck_assert_int_eq(qa_source_open_memory(&src, b, sizeof b, "m", &d), QA_OK);
	ck_assert_int_eq(qa_st_open_source(&st, src, &d), QA_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(d.msg, "100 mb limit"));
	qa_store_le64(b, QA_ST_MAX_HEADER);
	ck_assert_int_eq(qa_st_open_source(&st, src, &d), QA_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(d.msg, "past end of file"));
	qa_store_le64(b, 9);
	ck_assert_int_eq(qa_st_open_source(&st, src, &d), QA_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(d.msg, "past end of file"));
	qa_store_le64(b, 8);
	ck_assert_int_eq(qa_st_open_source(&st, src, &d), QA_OK);
	qa_st_close(st);
	qa_source_close(src);
	/* Empty source. */
	ck_assert_int_eq(qa_source_open_memory(&src, NULL, 0, "empty", &d), QA_OK);
	ck_assert_int_eq(qa_st_open_source(&st, src, &d), QA_ERR_FORMAT);
	ck_assert_uint_eq(d.offset, 0);
	qa_source_close(src);
}
END_TEST

START_TEST(test_many_tensors)
{
	/* 20000 tensors in reverse name order: find() must locate each one. */
	size_t n = 20000, cap = n * 80 + 16, h = 1;
	char *hdr = malloc(cap);
	hdr[0] = '{';
	for (size_t i = 0; i < n; i++)
		h += (size_t)snprintf(hdr + h, cap - h,
		                      "%s\"t%05zu\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
		                      i ? "," : "", n - 1 - i, i, i + 1);
	hdr[h++] = '}';
	size_t len = 8 + h + n;
	unsigned char *b = malloc(len);
	qa_store_le64(b, h);
	memcpy(b + 8, hdr, h);
	for (size_t i = 0; i < n; i++)
		b[8 + h + i] = (unsigned char)i;
	struct qa_source *src;
	struct qa_st *st;
	struct qa_diag d;
	ck_assert_int_eq(qa_source_open_memory(&src, b, len, "m", &d), QA_OK);
	ck_assert_int_eq(qa_st_open_source(&st, src, &d), QA_OK);
	ck_assert_uint_eq(qa_st_n_tensors(st), n);
	for (size_t i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof name, "t%05zu", i);
		const struct qa_st_tensor *t = qa_st_tensor_find(st, name);
		ck_assert_ptr_nonnull(t);
		ck_assert_uint_eq(t->begin, n - 1 - i);
		/* data order: the i-th tensor starts at byte i */
		ck_assert_uint_eq(qa_st_tensor_at(st, i)->begin, i);
	}
	qa_st_close(st);
	qa_source_close(src);
	free(b);
	free(hdr);
}
END_TEST

/* ------------------------------------------------------------- malformed */

struct bad_case {
	char path[128];
	enum qa_err code;
	uint64_t lo, hi; /* expected offset range; QA_NO_OFFSET for none */
	char reason[96];
	char prefix[128];
};

static struct bad_case bad_cases[128];
static int n_bad_cases;

static enum qa_err code_of(const char *s)
{
	if (strcmp(s, "FORMAT") == 0)
		return QA_ERR_FORMAT;
	if (strcmp(s, "IO") == 0)
		return QA_ERR_IO;
	if (strcmp(s, "UNSUPPORTED") == 0)
		return QA_ERR_UNSUPPORTED;
	return QA_OK;
}

static void load_manifest(void)
{
	const char *top = getenv("QA_TOP_SRCDIR");
	char p[512], line[1024];
	snprintf(p, sizeof p, "%s/tests/data/safetensors/expected.tsv",
	         top && *top ? top : ".");
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f) &&
	       n_bad_cases < (int)(sizeof bad_cases / sizeof bad_cases[0])) {
		if (line[0] == '#')
			continue;
		line[strcspn(line, "\n")] = '\0';
		char *fld[5];
		int nf = 0;
		char *s = line;
		while (nf < 5) {
			fld[nf++] = s;
			char *tab = strchr(s, '\t');
			if (!tab)
				break;
			*tab = '\0';
			s = tab + 1;
		}
		if (nf != 5)
			continue;
		struct bad_case *c = &bad_cases[n_bad_cases++];
		snprintf(c->path, sizeof c->path, "%s", fld[0]);
		c->code = code_of(fld[1]);
		if (strcmp(fld[2], "none") == 0) {
			c->lo = c->hi = QA_NO_OFFSET;
		} else {
			char *end;
			c->lo = strtoull(fld[2], &end, 10);
			c->hi = *end == '-' ? strtoull(end + 1, NULL, 10) : c->lo;
		}
		snprintf(c->reason, sizeof c->reason, "%s", fld[3]);
		snprintf(c->prefix, sizeof c->prefix, "%s", strcmp(fld[4], "-") ? fld[4] : "");
	}
	fclose(f);
}

START_TEST(test_manifest_complete)
{
	ck_assert_int_gt(n_bad_cases, 40);
	char *p = data_path("");
	DIR *dh = opendir(p);
	ck_assert_ptr_nonnull(dh);
	struct dirent *de;
	int seen = 0;
	while ((de = readdir(dh)) != NULL) {
		if (strncmp(de->d_name, "bad-", 4) != 0)
			continue;
		bool found = false;
		for (int i = 0; i < n_bad_cases; i++)
			found |= strcmp(bad_cases[i].path, de->d_name) == 0;
		ck_assert_msg(found, "%s has no line in expected.tsv", de->d_name);
		seen++;
	}
	closedir(dh);
	ck_assert_int_eq(seen, n_bad_cases);
	free(p);
}
END_TEST

START_TEST(test_bad_file)
{
	const struct bad_case *c = &bad_cases[_i];
	char *p = data_path(c->path);
	struct qa_st *st = NULL;
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_st_open(&st, p, &d);
	ck_assert_msg(e == c->code, "%s: got %s (%s)", c->path, qa_err_name(e), d.msg);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(d.msg, c->reason), "%s: reason \"%s\" lacks \"%s\"",
	              c->path, d.msg, c->reason);
	if (c->lo == QA_NO_OFFSET)
		ck_assert_msg(d.offset == QA_NO_OFFSET, "%s: offset %llu", c->path,
		              (unsigned long long)d.offset);
	else
		ck_assert_msg(d.offset >= c->lo && d.offset <= c->hi,
		              "%s: offset %llu not in [%llu, %llu] (%s)", c->path,
		              (unsigned long long)d.offset, (unsigned long long)c->lo,
		              (unsigned long long)c->hi, d.msg);
	if (c->prefix[0]) {
		char *pre = data_path(c->prefix);
		ck_assert_msg(strncmp(d.msg, pre, strlen(pre)) == 0 &&
		              strncmp(d.msg + strlen(pre), ": ", 2) == 0,
		              "%s: message \"%s\" does not start with %s", c->path, d.msg, pre);
		free(pre);
	} else {
		/* errors in the given file itself carry no path prefix */
		ck_assert_msg(strncmp(d.msg, p, strlen(p)) != 0, "%s: %s", c->path, d.msg);
	}
	/* Single files fail the same way from a memory source. */
	size_t n = strlen(c->path);
	if (n > 12 && strcmp(c->path + n - 12, ".safetensors") == 0) {
		size_t len;
		unsigned char *raw = slurp(p, &len);
		struct qa_source *src;
		struct qa_diag d2;
		ck_assert_int_eq(qa_source_open_memory(&src, raw, len, "m", &d2), QA_OK);
		ck_assert_int_eq(qa_st_open_source(&st, src, &d2), e);
		ck_assert_uint_eq(d2.offset, d.offset);
		ck_assert_str_eq(d2.msg, d.msg);
		qa_source_close(src);
		free(raw);
	}
	free(p);
}
END_TEST

static void open_buffer(const unsigned char *b, size_t len)
{
	struct qa_source *src;
	struct qa_st *st = NULL;
	struct qa_diag d;
	ck_assert_int_eq(qa_source_open_memory(&src, b, len, "m", &d), QA_OK);
	enum qa_err e = qa_st_open_source(&st, src, &d);
	ck_assert(e == QA_OK || e == QA_ERR_FORMAT);
	if (e == QA_OK) {
		for (size_t i = 0; i < qa_st_n_tensors(st); i++) {
			const struct qa_st_tensor *t = qa_st_tensor_at(st, i);
			float f[2];
			if (qa_st_dtype_is_float(t->dtype) && t->n_elems)
				ck_assert_int_eq(qa_st_tensor_read_f32(st, t, 0, 1, f, &d), QA_OK);
		}
		qa_st_close(st);
	} else {
		ck_assert(d.offset <= len);
	}
	qa_source_close(src);
}

START_TEST(test_truncations_and_flips)
{
	char *p = data_path("good-small.safetensors");
	size_t len;
	unsigned char *raw = slurp(p, &len);
	uint64_t hl = 8 + qa_load_le64(raw);
	for (size_t n = 0; n < len; n++) {
		unsigned char *b = malloc(n ? n : 1);
		memcpy(b, raw, n);
		struct qa_source *src;
		struct qa_st *st;
		struct qa_diag d;
		ck_assert_int_eq(qa_source_open_memory(&src, b, n, "m", &d), QA_OK);
		/* every truncation loses the last tensor's bytes or the header */
		ck_assert_int_eq(qa_st_open_source(&st, src, &d), QA_ERR_FORMAT);
		qa_source_close(src);
		free(b);
	}
	for (size_t i = 0; i < hl; i++) {
		static const unsigned char xors[] = { 0x01, 0x20, 0x80, 0xff };
		for (size_t k = 0; k < sizeof xors; k++) {
			raw[i] ^= xors[k];
			open_buffer(raw, len);
			raw[i] ^= xors[k];
		}
	}
	free(raw);
	free(p);
}
END_TEST

static Suite *safetensors_suite(void)
{
	Suite *s = suite_create("safetensors");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_good_small_listing);
	tcase_add_test(tc, test_good_small_values);
	tcase_add_test(tc, test_sources);
	tcase_add_test(tc, test_chunked_reads);
	tcase_add_test(tc, test_dtypes);
	tcase_add_test(tc, test_sharded);
	tcase_add_test(tc, test_open_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_loop_test(tc, test_limits_table, 0,
	                    (int)(sizeof limit_cases / sizeof limit_cases[0]));
	tcase_add_test(tc, test_header_len_limit);
	tcase_add_test(tc, test_many_tensors);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	load_manifest();
	tc = tcase_create("malformed");
	tcase_add_test(tc, test_manifest_complete);
	tcase_add_loop_test(tc, test_bad_file, 0, n_bad_cases);
	tcase_add_test(tc, test_truncations_and_flips);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(safetensors_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
