/*
 * check_gguf.c - Check suite "gguf": the GGUF reader and streaming writer.
 *
 * core: the valid files in tests/data/gguf parse to the values, shapes,
 * offsets and data that tests/data/gguf/make.py put there, and files made
 * by the writer read back identically (and byte for byte equal make.py's
 * independent layout).  limits: four dimensions, alignments 1/32/64, empty
 * files, headers bigger than the reader's first buffer, thousands of
 * tensors.  malformed: every bad-*.gguf is refused with its reason and the
 * exact offset of the broken field, and every truncation of a valid file
 * fails cleanly.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "source.h"
#include "types.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Item i of an array value (packed or listed); fails the test when absent. */
static struct qa_gguf_value item_at(const struct qa_gguf_value *a, uint64_t i)
{
	struct qa_gguf_value v;
	ck_assert(qa_gguf_array_get(a, i, &v));
	return v;
}

static void data_path(char *buf, size_t cap, const char *name)
{
	const char *top = getenv("QA_TOP_SRCDIR");
	snprintf(buf, cap, "%s/tests/data/gguf/%s", top && *top ? top : ".", name);
}

/* Read a whole test file into malloc'd memory. */
static uint8_t *slurp(const char *name, size_t *len)
{
	char path[4096];
	data_path(path, sizeof path, name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s (set QA_TOP_SRCDIR)", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

struct opened {
	struct qa_source *src;
	struct qa_gguf *g;
};

static struct opened open_ok(const char *name)
{
	char path[4096];
	struct qa_diag d;
	struct opened o;
	data_path(path, sizeof path, name);
	ck_assert_int_eq(qa_source_open_file(&o.src, path, &d), QA_OK);
	enum qa_err e = qa_gguf_open(&o.g, o.src, &d);
	ck_assert_msg(e == QA_OK, "%s: offset %llu: %s", name,
	              (unsigned long long)d.offset, d.msg);
	return o;
}

static void close_opened(struct opened o)
{
	qa_gguf_close(o.g);
	qa_source_close(o.src);
}

static struct opened open_path(const char *path)
{
	struct qa_diag d;
	struct opened o;
	ck_assert_int_eq(qa_source_open_file(&o.src, path, &d), QA_OK);
	enum qa_err e = qa_gguf_open(&o.g, o.src, &d);
	ck_assert_msg(e == QA_OK, "%s: offset %llu: %s", path,
	              (unsigned long long)d.offset, d.msg);
	return o;
}

/* The data pattern make.py writes: byte j of the i-th tensor. */
static uint8_t pattern(size_t i, uint64_t j)
{
	return (uint8_t)((j * 31 + i * 17 + 1) & 0xff);
}

static void check_tensor_data(struct qa_gguf *g, size_t i)
{
	const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
	struct qa_diag d;
	const void *view;
	uint8_t *buf = malloc(t->nbytes);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(qa_gguf_tensor_view(g, t, &view, &d), QA_OK);
	ck_assert_int_eq(qa_gguf_tensor_read(g, t, 0, t->nbytes, buf, &d), QA_OK);
	ck_assert_mem_eq(view, buf, t->nbytes);
	for (uint64_t j = 0; j < t->nbytes; j++)
		ck_assert_uint_eq(buf[j], pattern(i, j));
	free(buf);
}

static char tmpdir[4096];

static void make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/check_gguf.XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Remove the temp dir and everything in it; returns how many files it held. */
static int clean_tmpdir(void)
{
	int n = 0;
	DIR *dir = opendir(tmpdir);
	struct dirent *e;
	char p[8192];
	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
		unlink(p);
		n++;
	}
	closedir(dir);
	rmdir(tmpdir);
	return n;
}

static int count_tmpdir(void)
{
	int n = 0;
	DIR *dir = opendir(tmpdir);
	struct dirent *e;
	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(dir);
	return n;
}

static void tmp_path(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", tmpdir, name);
}

#define OK(call)                                                              \
	do {                                                                  \
		struct qa_diag d_;                                            \
		enum qa_err e_ = (call);                                      \
		ck_assert_msg(e_ == QA_OK, "%s failed: %s", #call, d_.msg);   \
	} while (0)

/* ------------------------------------------------------------------ */
/* core                                                                */
/* ------------------------------------------------------------------ */

START_TEST(test_v3_file)
{
	struct opened o = open_ok("good-v3.gguf");
	struct qa_gguf *g = o.g;
	ck_assert_uint_eq(qa_gguf_version(g), 3);
	ck_assert_uint_eq(qa_gguf_alignment(g), 32);
	ck_assert_ptr_eq(qa_gguf_source(g), o.src);
	ck_assert_uint_eq(qa_gguf_n_kv(g), 2);
	ck_assert_str_eq(qa_gguf_kv_at(g, 0)->key, "general.architecture");
	ck_assert_uint_eq(qa_gguf_kv_at(g, 0)->offset, 24);
	ck_assert_str_eq(qa_gguf_get_str(g, "general.architecture"), "test");
	ck_assert_ptr_null(qa_gguf_kv_at(g, 2));
	ck_assert_ptr_null(qa_gguf_kv_find(g, "general.name"));
	ck_assert_ptr_null(qa_gguf_get_str(g, "test.count"));
	uint64_t u = 0;
	ck_assert(qa_gguf_get_u64(g, "test.count", &u));
	ck_assert_uint_eq(u, 7);
	ck_assert(!qa_gguf_get_u64(g, "general.architecture", &u));

	/* key "general.architecture" (8+20+4+8+4) then "test.count" (8+10+4+4) */
	ck_assert_uint_eq(qa_gguf_kv_at(g, 1)->offset, 24 + 44);

	static const struct {
		const char *name;
		uint32_t type, n_dims;
		uint64_t ne0, ne1, nbytes, offset;
	} want[] = {
		{ "a", QA_TYPE_F32, 1, 8, 1, 32, 0 },
		{ "b", QA_TYPE_F16, 2, 16, 2, 64, 32 },
		{ "c", QA_TYPE_Q8_0, 2, 64, 3, 204, 96 },
		{ "d", QA_TYPE_Q4_K, 1, 256, 1, 144, 320 },
	};
	ck_assert_uint_eq(qa_gguf_n_tensors(g), 4);
	uint64_t info = 24 + 44 + 26;
	for (size_t i = 0; i < 4; i++) {
		const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
		ck_assert_str_eq(t->name, want[i].name);
		ck_assert_ptr_eq(qa_gguf_tensor_find(g, want[i].name), t);
		ck_assert_uint_eq(t->type, want[i].type);
		ck_assert_uint_eq(t->n_dims, want[i].n_dims);
		ck_assert_uint_eq(t->ne[0], want[i].ne0);
		ck_assert_uint_eq(t->ne[1], want[i].ne1);
		ck_assert_uint_eq(t->ne[2], 1);
		ck_assert_uint_eq(t->ne[3], 1);
		ck_assert_uint_eq(t->n_elems, want[i].ne0 * want[i].ne1);
		ck_assert_uint_eq(t->nbytes, want[i].nbytes);
		ck_assert_uint_eq(t->offset, want[i].offset);
		ck_assert_uint_eq(t->info_offset, info);
		info += 8 + 1 + 4 + 8 * t->n_dims + 4 + 8;
		check_tensor_data(g, i);
	}
	ck_assert_ptr_null(qa_gguf_tensor_at(g, 4));
	ck_assert_ptr_null(qa_gguf_tensor_find(g, "e"));
	ck_assert_ptr_null(qa_gguf_tensor_find(g, ""));
	/* header ends at info; the data section starts at the next multiple of 32 */
	ck_assert_uint_eq(qa_gguf_data_offset(g), (info + 31) / 32 * 32);
	ck_assert_uint_eq(qa_gguf_data_offset(g) + 320 + 160, qa_source_size(o.src));

	/* partial reads */
	const struct qa_gguf_tensor *c = qa_gguf_tensor_find(g, "c");
	uint8_t buf[10];
	struct qa_diag d;
	ck_assert_int_eq(qa_gguf_tensor_read(g, c, 194, 10, buf, &d), QA_OK);
	for (int j = 0; j < 10; j++)
		ck_assert_uint_eq(buf[j], pattern(2, 194 + j));
	ck_assert_int_eq(qa_gguf_tensor_read(g, c, 195, 10, buf, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_gguf_tensor_read(g, c, UINT64_MAX, 2, buf, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_gguf_tensor_read(g, c, 204, 0, buf, &d), QA_OK);
	close_opened(o);
}
END_TEST

START_TEST(test_v2_file)
{
	struct opened o = open_ok("good-v2.gguf");
	ck_assert_uint_eq(qa_gguf_version(o.g), 2);
	ck_assert_str_eq(qa_gguf_get_str(o.g, "general.name"), "good v2");
	ck_assert_uint_eq(qa_gguf_n_tensors(o.g), 1);
	const struct qa_gguf_tensor *t = qa_gguf_tensor_find(o.g, "w");
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->nbytes, 32);
	check_tensor_data(o.g, 0);
	close_opened(o);
}
END_TEST

/* The values make.py put into good-all-types.gguf. */
static void check_all_types(struct qa_gguf *g)
{
	const struct qa_gguf_kv *kv;
	const struct qa_gguf_value *v;
#define KV(k, t)                                                              \
	do {                                                                  \
		kv = qa_gguf_kv_find(g, k);                                   \
		ck_assert_ptr_nonnull(kv);                                    \
		ck_assert_uint_eq(kv->value.type, t);                         \
		v = &kv->value;                                               \
	} while (0)
	KV("t.u8", QA_GGUF_U8);
	ck_assert_uint_eq(v->v.u, 200);
	KV("t.i8", QA_GGUF_I8);
	ck_assert_int_eq(v->v.i, -100);
	KV("t.u16", QA_GGUF_U16);
	ck_assert_uint_eq(v->v.u, 60000);
	KV("t.i16", QA_GGUF_I16);
	ck_assert_int_eq(v->v.i, -30000);
	KV("t.u32", QA_GGUF_U32);
	ck_assert_uint_eq(v->v.u, 4000000000u);
	KV("t.i32", QA_GGUF_I32);
	ck_assert_int_eq(v->v.i, -2000000000);
	KV("t.f32", QA_GGUF_F32);
	ck_assert(v->v.f == 1.5);
	KV("t.bool", QA_GGUF_BOOL);
	ck_assert(v->v.b);
	KV("t.string", QA_GGUF_STRING);
	ck_assert_uint_eq(v->v.str.len, 6);
	ck_assert_str_eq(v->v.str.ptr, "h\xc3\xa9llo");
	KV("t.string_nul", QA_GGUF_STRING);
	ck_assert_uint_eq(v->v.str.len, 3);
	ck_assert_mem_eq(v->v.str.ptr, "a\0b", 4);
	KV("t.u64", QA_GGUF_U64);
	ck_assert_uint_eq(v->v.u, UINT64_MAX);
	KV("t.i64", QA_GGUF_I64);
	ck_assert(v->v.i == INT64_MIN);
	KV("t.f64", QA_GGUF_F64);
	ck_assert(v->v.f == -0.25);
	KV("t.array_u8", QA_GGUF_ARRAY);
	ck_assert_uint_eq(v->v.arr.elem_type, QA_GGUF_U8);
	ck_assert_uint_eq(v->v.arr.count, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(item_at(v, (uint64_t)i).type, QA_GGUF_U8);
		ck_assert_uint_eq(item_at(v, (uint64_t)i).v.u, (uint64_t)i + 1);
	}
	KV("t.array_str", QA_GGUF_ARRAY);
	ck_assert_uint_eq(v->v.arr.elem_type, QA_GGUF_STRING);
	ck_assert_uint_eq(v->v.arr.count, 3);
	ck_assert_str_eq(v->v.arr.items[0].v.str.ptr, "x");
	ck_assert_str_eq(v->v.arr.items[1].v.str.ptr, "");
	ck_assert_uint_eq(v->v.arr.items[1].v.str.len, 0);
	ck_assert_str_eq(v->v.arr.items[2].v.str.ptr, "yz");
	KV("t.array_nested", QA_GGUF_ARRAY);
	ck_assert_uint_eq(v->v.arr.elem_type, QA_GGUF_ARRAY);
	ck_assert_uint_eq(v->v.arr.count, 3);
	ck_assert_uint_eq(v->v.arr.items[0].v.arr.elem_type, QA_GGUF_U32);
	ck_assert_uint_eq(v->v.arr.items[0].v.arr.count, 2);
	ck_assert_uint_eq(item_at(&v->v.arr.items[0], 1).v.u, 2);
	ck_assert_uint_eq(v->v.arr.items[1].v.arr.count, 1);
	ck_assert_uint_eq(item_at(&v->v.arr.items[1], 0).v.u, 3);
	ck_assert_uint_eq(v->v.arr.items[2].v.arr.count, 0);
	ck_assert_ptr_null(v->v.arr.items[2].v.arr.items);
	KV("t.array_empty", QA_GGUF_ARRAY);
	ck_assert_uint_eq(v->v.arr.elem_type, QA_GGUF_I32);
	ck_assert_uint_eq(v->v.arr.count, 0);
	KV("t.array_f32", QA_GGUF_ARRAY);
	ck_assert(item_at(v, 0).v.f == 0.5 && item_at(v, 1).v.f == -2.0);
	KV("t.array_bool", QA_GGUF_ARRAY);
	ck_assert(!item_at(v, 0).v.b && item_at(v, 1).v.b);
	KV("t.array_deep", QA_GGUF_ARRAY);
	for (int depth = 1; depth < 8; depth++) {
		ck_assert_uint_eq(v->v.arr.elem_type, QA_GGUF_ARRAY);
		ck_assert_uint_eq(v->v.arr.count, 1);
		v = &v->v.arr.items[0];
	}
	ck_assert_uint_eq(v->v.arr.elem_type, QA_GGUF_U8);
	ck_assert_uint_eq(item_at(v, 0).v.u, 7);
#undef KV
}

START_TEST(test_all_types)
{
	struct opened o = open_ok("good-all-types.gguf");
	ck_assert_uint_eq(qa_gguf_n_kv(o.g), 20);
	ck_assert_uint_eq(qa_gguf_n_tensors(o.g), 0);
	check_all_types(o.g);
	uint64_t u;
	ck_assert(qa_gguf_get_u64(o.g, "t.u8", &u) && u == 200);
	ck_assert(!qa_gguf_get_u64(o.g, "t.i8", &u));  /* negative */
	ck_assert(qa_gguf_get_u64(o.g, "t.u64", &u) && u == UINT64_MAX);
	ck_assert(!qa_gguf_get_u64(o.g, "t.f32", &u));
	ck_assert(!qa_gguf_get_u64(o.g, "t.bool", &u));
	ck_assert(!qa_gguf_get_u64(o.g, "absent", &u));
	close_opened(o);
}
END_TEST

START_TEST(test_iq2xs_tensor_parses)
{
	struct opened o = open_ok("good-iq2xs.gguf");
	const struct qa_gguf_tensor *t = qa_gguf_tensor_find(o.g, "q");
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->type, QA_TYPE_IQ2_XS);
	ck_assert_uint_eq(t->nbytes, 2 * 74);
	check_tensor_data(o.g, 0);
	check_tensor_data(o.g, 1);
	close_opened(o);
}
END_TEST

START_TEST(test_unordered_offsets)
{
	struct opened o = open_ok("good-unordered.gguf");
	ck_assert_uint_eq(qa_gguf_tensor_find(o.g, "late")->offset, 64);
	ck_assert_uint_eq(qa_gguf_tensor_find(o.g, "early")->offset, 0);
	check_tensor_data(o.g, 0);
	check_tensor_data(o.g, 1);
	close_opened(o);
}
END_TEST

/*
 * A source that can only copy bytes (like a future remote source): the
 * reader must get the header through read calls, and tensor views must be
 * refused as unsupported while reads work.
 */
struct copy_source {
	struct qa_source base;
	const uint8_t *data;
	size_t reads;
	uint64_t max_read;
};

static enum qa_err copy_read(struct qa_source *s, uint64_t off, size_t len, void *buf,
                             struct qa_diag *d)
{
	struct copy_source *c = (struct copy_source *)s;
	(void)d;
	c->reads++;
	if (len > c->max_read)
		c->max_read = len;
	memcpy(buf, c->data + off, len);
	return QA_OK;
}

static const struct qa_source_ops copy_ops = { copy_read, NULL, NULL, NULL };

START_TEST(test_read_only_source)
{
	size_t len;
	uint8_t *all = slurp("good-v3.gguf", &len);
	struct copy_source c = { { &copy_ops, len, (char *)"copy" }, all, 0, 0 };
	struct qa_gguf *g;
	struct qa_diag d;
	ck_assert_int_eq(qa_gguf_open(&g, &c.base, &d), QA_OK);
	ck_assert_uint_ge(c.reads, 1);
	ck_assert_uint_eq(qa_gguf_n_tensors(g), 4);
	const struct qa_gguf_tensor *t = qa_gguf_tensor_find(g, "d");
	const void *view;
	ck_assert_int_eq(qa_gguf_tensor_view(g, t, &view, &d), QA_ERR_UNSUPPORTED);
	uint8_t buf[144];
	ck_assert_int_eq(qa_gguf_tensor_read(g, t, 0, sizeof buf, buf, &d), QA_OK);
	for (size_t j = 0; j < sizeof buf; j++)
		ck_assert_uint_eq(buf[j], pattern(3, j));
	qa_gguf_close(g);
	free(all);
}
END_TEST

/* Write the content of good-v3.gguf with the writer: same bytes. */
static void write_v3_like(const char *path, size_t chunk)
{
	struct qa_gguf_writer *w;
	static const uint64_t ne[4][4] = { { 8 }, { 16, 2 }, { 64, 3 }, { 256 } };
	static const uint32_t type[4] = { QA_TYPE_F32, QA_TYPE_F16, QA_TYPE_Q8_0, QA_TYPE_Q4_K };
	static const uint32_t nd[4] = { 1, 2, 2, 1 };
	static const char *const name[4] = { "a", "b", "c", "d" };
	static const size_t nbytes[4] = { 32, 64, 204, 144 };
	OK(qa_gguf_writer_open(&w, path, &d_));
	OK(qa_gguf_writer_set_str(w, "general.architecture", "test", &d_));
	OK(qa_gguf_writer_set_u32(w, "test.count", 7, &d_));
	for (int i = 0; i < 4; i++)
		OK(qa_gguf_writer_add_tensor(w, name[i], type[i], nd[i], ne[i], &d_));
	OK(qa_gguf_writer_begin_data(w, &d_));
	/* the data of all tensors as one stream, fed in chunk-sized pieces */
	uint8_t all[444];
	size_t n = 0;
	for (int i = 0; i < 4; i++)
		for (size_t j = 0; j < nbytes[i]; j++)
			all[n++] = pattern((size_t)i, j);
	for (size_t at = 0; at < n; at += chunk)
		OK(qa_gguf_writer_write(w, all + at, n - at < chunk ? n - at : chunk, &d_));
	OK(qa_gguf_writer_commit(w, &d_));
	qa_gguf_writer_free(w);
}

static void assert_same_file(const char *path, const char *data_name)
{
	size_t a_len, b_len;
	uint8_t *b = slurp(data_name, &b_len);
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	uint8_t *a = malloc(b_len + 1);
	a_len = fread(a, 1, b_len + 1, f);
	fclose(f);
	ck_assert_uint_eq(a_len, b_len);
	ck_assert_mem_eq(a, b, b_len);
	free(a);
	free(b);
}

static const size_t chunks[] = { 1, 7, 32, 100, 444, 1000 };

START_TEST(test_writer_layout)
{
	char path[8192];
	make_tmpdir();
	tmp_path(path, sizeof path, "v3.gguf");
	write_v3_like(path, chunks[_i]);
	assert_same_file(path, "good-v3.gguf");
	struct opened o = open_path(path);
	for (size_t i = 0; i < 4; i++)
		check_tensor_data(o.g, i);
	close_opened(o);
	ck_assert_int_eq(clean_tmpdir(), 1); /* no temporary file left behind */
}
END_TEST

START_TEST(test_writer_alignment_layout)
{
	char path[8192];
	struct qa_gguf_writer *w;
	static const uint64_t ne_a[4] = { 3 }, ne_b[4] = { 5 };
	uint8_t a[12], b[20];
	for (int j = 0; j < 12; j++)
		a[j] = pattern(0, (uint64_t)j);
	for (int j = 0; j < 20; j++)
		b[j] = pattern(1, (uint64_t)j);
	make_tmpdir();
	tmp_path(path, sizeof path, "a64.gguf");
	OK(qa_gguf_writer_open(&w, path, &d_));
	OK(qa_gguf_writer_set_u32(w, "general.alignment", 64, &d_));
	OK(qa_gguf_writer_add_tensor(w, "a", QA_TYPE_F32, 1, ne_a, &d_));
	OK(qa_gguf_writer_add_tensor(w, "b", QA_TYPE_F32, 1, ne_b, &d_));
	OK(qa_gguf_writer_begin_data(w, &d_));
	OK(qa_gguf_writer_write(w, a, 12, &d_));
	OK(qa_gguf_writer_write(w, b, 20, &d_));
	OK(qa_gguf_writer_commit(w, &d_));
	qa_gguf_writer_free(w);
	assert_same_file(path, "good-align64.gguf");
	clean_tmpdir();
}
END_TEST

/* Copy every kv of good-all-types.gguf through the writer and read it back. */
START_TEST(test_writer_all_types)
{
	char path[8192];
	struct opened src = open_ok("good-all-types.gguf");
	struct qa_gguf_writer *w;
	make_tmpdir();
	tmp_path(path, sizeof path, "types.gguf");
	OK(qa_gguf_writer_open(&w, path, &d_));
	for (size_t i = 0; i < qa_gguf_n_kv(src.g); i++) {
		const struct qa_gguf_kv *kv = qa_gguf_kv_at(src.g, i);
		OK(qa_gguf_writer_add_kv(w, kv->key, &kv->value, &d_));
	}
	close_opened(src); /* the writer holds deep copies */
	OK(qa_gguf_writer_begin_data(w, &d_));
	OK(qa_gguf_writer_commit(w, &d_));
	qa_gguf_writer_free(w);
	assert_same_file(path, "good-all-types.gguf");
	struct opened o = open_path(path);
	check_all_types(o.g);
	close_opened(o);
	clean_tmpdir();
}
END_TEST

START_TEST(test_writer_helpers)
{
	char path[8192];
	struct qa_gguf_writer *w;
	make_tmpdir();
	tmp_path(path, sizeof path, "h.gguf");
	OK(qa_gguf_writer_open(&w, path, &d_));
	OK(qa_gguf_writer_set_u64(w, "h.u64", 1ull << 40, &d_));
	OK(qa_gguf_writer_set_f32(w, "h.f32", 0.1f, &d_));
	OK(qa_gguf_writer_set_bool(w, "h.bool", true, &d_));
	OK(qa_gguf_writer_set_str(w, "h.str", "", &d_));
	OK(qa_gguf_writer_commit(w, &d_)); /* no tensors: begin_data is implied */
	qa_gguf_writer_free(w);
	struct opened o = open_path(path);
	uint64_t u;
	ck_assert(qa_gguf_get_u64(o.g, "h.u64", &u) && u == 1ull << 40);
	ck_assert(qa_gguf_kv_find(o.g, "h.f32")->value.v.f == (double)0.1f);
	ck_assert(qa_gguf_kv_find(o.g, "h.bool")->value.v.b);
	ck_assert_str_eq(qa_gguf_get_str(o.g, "h.str"), "");
	ck_assert_uint_eq(qa_gguf_n_tensors(o.g), 0);
	close_opened(o);
	clean_tmpdir();
}
END_TEST

START_TEST(test_writer_refusals)
{
	char path[8192];
	struct qa_gguf_writer *w;
	struct qa_diag d;
	static const uint64_t ne[4] = { 100, 2 }, ne32[4] = { 32 }, zero[4] = { 0 };
	uint8_t buf[64] = { 0 };
	make_tmpdir();
	tmp_path(path, sizeof path, "r.gguf");
	OK(qa_gguf_writer_open(&w, path, &d_));
	OK(qa_gguf_writer_set_u32(w, "k", 1, &d_));
	ck_assert_int_eq(qa_gguf_writer_set_u32(w, "k", 2, &d), QA_ERR_USAGE);
	ck_assert_ptr_nonnull(strstr(d.msg, "duplicate"));
	ck_assert_int_eq(qa_gguf_writer_set_u32(w, "general.alignment", 48, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_gguf_writer_set_u64(w, "general.alignment", 64, &d), QA_ERR_USAGE);
	struct qa_gguf_value bad = { .type = 13 };
	ck_assert_int_eq(qa_gguf_writer_add_kv(w, "x", &bad, &d), QA_ERR_USAGE);
	struct qa_gguf_value item = { .type = QA_GGUF_U16 };
	struct qa_gguf_value arr = { .type = QA_GGUF_ARRAY };
	arr.v.arr.elem_type = QA_GGUF_U8;
	arr.v.arr.count = 1;
	arr.v.arr.items = &item;
	ck_assert_int_eq(qa_gguf_writer_add_kv(w, "x", &arr, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_gguf_writer_add_tensor(w, "t", QA_TYPE_Q4_K, 2, ne, &d), QA_ERR_USAGE);
	ck_assert_ptr_nonnull(strstr(d.msg, "block size"));
	ck_assert_int_eq(qa_gguf_writer_add_tensor(w, "t", 4, 1, ne32, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_gguf_writer_add_tensor(w, "t", QA_TYPE_F32, 5, ne32, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_gguf_writer_add_tensor(w, "t", QA_TYPE_F32, 1, zero, &d), QA_ERR_USAGE);
	OK(qa_gguf_writer_add_tensor(w, "t", QA_TYPE_Q8_0, 1, ne32, &d_)); /* 34 bytes */
	ck_assert_int_eq(qa_gguf_writer_add_tensor(w, "t", QA_TYPE_F32, 1, ne32, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_gguf_writer_write(w, buf, 1, &d), QA_ERR_USAGE); /* before begin_data */
	OK(qa_gguf_writer_begin_data(w, &d_));
	ck_assert_int_eq(qa_gguf_writer_set_u32(w, "late", 1, &d), QA_ERR_USAGE);
	ck_assert_int_eq(qa_gguf_writer_begin_data(w, &d), QA_ERR_USAGE);
	OK(qa_gguf_writer_write(w, buf, 30, &d_));
	ck_assert_int_eq(qa_gguf_writer_commit(w, &d), QA_ERR_USAGE); /* 4 bytes short */
	ck_assert_ptr_nonnull(strstr(d.msg, "got 30 of its 34 bytes"));
	ck_assert_int_eq(qa_gguf_writer_write(w, buf, 5, &d), QA_ERR_USAGE); /* one too many */
	/* abandoned: neither the destination nor the temporary file remains */
	ck_assert_int_eq(count_tmpdir(), 1);
	qa_gguf_writer_free(w);
	ck_assert_int_eq(count_tmpdir(), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	char missing[8192];
	tmp_path(missing, sizeof missing, "no/such/dir/x.gguf");
	ck_assert_int_eq(qa_gguf_writer_open(&w, missing, &d), QA_ERR_IO);
	clean_tmpdir();
}
END_TEST

/* ------------------------------------------------------------------ */
/* limits                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_four_dims)
{
	struct opened o = open_ok("good-4d.gguf");
	const struct qa_gguf_tensor *t = qa_gguf_tensor_at(o.g, 0);
	ck_assert_uint_eq(t->n_dims, 4);
	ck_assert(t->ne[0] == 2 && t->ne[1] == 3 && t->ne[2] == 4 && t->ne[3] == 5);
	ck_assert_uint_eq(t->n_elems, 120);
	ck_assert_uint_eq(t->nbytes, 480);
	check_tensor_data(o.g, 0);
	close_opened(o);
}
END_TEST

static const struct {
	const char *file;
	uint32_t alignment;
	uint64_t data_offset;
	uint64_t offset_b;
} align_cases[] = {
	/* 24 header + kv (8+17+4+4) + infos (8+1+4+8+4+8 each) */
	{ "good-align1.gguf", 1, 24 + 33 + 66, 12 },
	{ "good-align64.gguf", 64, 128, 64 },
	/* 24 + kvs (44 + 39) + info (41) = 148 */
	{ "good-v2.gguf", 32, 160, 0 },
};

START_TEST(test_alignments)
{
	struct opened o = open_ok(align_cases[_i].file);
	ck_assert_uint_eq(qa_gguf_alignment(o.g), align_cases[_i].alignment);
	ck_assert_uint_eq(qa_gguf_data_offset(o.g), align_cases[_i].data_offset);
	ck_assert_uint_eq(qa_gguf_data_offset(o.g) % align_cases[_i].alignment, 0);
	size_t last = qa_gguf_n_tensors(o.g) - 1;
	ck_assert_uint_eq(qa_gguf_tensor_at(o.g, last)->offset, align_cases[_i].offset_b);
	for (size_t i = 0; i <= last; i++)
		check_tensor_data(o.g, i);
	close_opened(o);
}
END_TEST

START_TEST(test_empty)
{
	struct opened o = open_ok("good-empty.gguf");
	ck_assert_uint_eq(qa_gguf_n_kv(o.g), 0);
	ck_assert_uint_eq(qa_gguf_n_tensors(o.g), 0);
	ck_assert_uint_eq(qa_gguf_data_offset(o.g), 32);
	ck_assert_ptr_null(qa_gguf_tensor_find(o.g, "x"));
	ck_assert_ptr_null(qa_gguf_kv_find(o.g, "x"));
	close_opened(o);
}
END_TEST

/*
 * A header of several MiB (a 300k-string array, a 500k-element u8 array and
 * 3000 tensors) is larger than the reader's first buffer: it must still
 * parse, and truncating it deep inside must fail at the truncation.
 */
#define BIG_STRINGS 300000
#define BIG_BYTES 500000
#define BIG_TENSORS 3000

START_TEST(test_big_header)
{
	char path[8192];
	struct qa_gguf_writer *w;
	make_tmpdir();
	tmp_path(path, sizeof path, "big.gguf");
	OK(qa_gguf_writer_open(&w, path, &d_));

	struct qa_gguf_value *items = calloc(BIG_STRINGS, sizeof *items);
	char (*text)[16] = malloc((size_t)BIG_STRINGS * 16);
	ck_assert(items && text);
	for (size_t i = 0; i < BIG_STRINGS; i++) {
		int n = snprintf(text[i], 16, "tok%zu", i);
		items[i].type = QA_GGUF_STRING;
		items[i].v.str.ptr = text[i];
		items[i].v.str.len = (uint64_t)n;
	}
	struct qa_gguf_value arr = { .type = QA_GGUF_ARRAY };
	arr.v.arr.elem_type = QA_GGUF_STRING;
	arr.v.arr.count = BIG_STRINGS;
	arr.v.arr.items = items;
	OK(qa_gguf_writer_add_kv(w, "tokenizer.ggml.tokens", &arr, &d_));
	free(items);
	free(text);
	items = calloc(BIG_BYTES, sizeof *items);
	ck_assert_ptr_nonnull(items);
	for (size_t i = 0; i < BIG_BYTES; i++) {
		items[i].type = QA_GGUF_U8;
		items[i].v.u = i & 0xff;
	}
	arr.v.arr.elem_type = QA_GGUF_U8;
	arr.v.arr.count = BIG_BYTES;
	arr.v.arr.items = items;
	OK(qa_gguf_writer_add_kv(w, "big.bytes", &arr, &d_));
	free(items);
	for (size_t i = 0; i < BIG_TENSORS; i++) {
		char name[32];
		uint64_t ne[4] = { 32, 1 + i % 3 };
		snprintf(name, sizeof name, "blk.%zu.weight", i);
		OK(qa_gguf_writer_add_tensor(w, name, QA_TYPE_Q8_0, 2, ne, &d_));
	}
	OK(qa_gguf_writer_begin_data(w, &d_));
	uint8_t block[34 * 3];
	for (size_t i = 0; i < BIG_TENSORS; i++) {
		memset(block, (int)(i & 0xff), sizeof block);
		OK(qa_gguf_writer_write(w, block, 34 * (1 + i % 3), &d_));
	}
	OK(qa_gguf_writer_commit(w, &d_));
	qa_gguf_writer_free(w);

	struct opened o = open_path(path);
	ck_assert_uint_eq(qa_gguf_n_tensors(o.g), BIG_TENSORS);
	const struct qa_gguf_kv *kv = qa_gguf_kv_find(o.g, "tokenizer.ggml.tokens");
	ck_assert_ptr_nonnull(kv);
	ck_assert_uint_eq(kv->value.v.arr.count, BIG_STRINGS);
	ck_assert_str_eq(kv->value.v.arr.items[BIG_STRINGS - 1].v.str.ptr, "tok299999");
	kv = qa_gguf_kv_find(o.g, "big.bytes");
	ck_assert_uint_eq(kv->value.v.arr.count, BIG_BYTES);
	ck_assert_uint_eq(item_at(&kv->value, BIG_BYTES - 1).v.u, (BIG_BYTES - 1) & 0xff);
	/* packed, not expanded: the u8 array costs its own bytes */
	ck_assert_ptr_null(kv->value.v.arr.items);
	ck_assert_ptr_nonnull(kv->value.v.arr.raw);
	uint64_t expect_off = 0;
	for (size_t i = 0; i < BIG_TENSORS; i++) {
		char name[32];
		snprintf(name, sizeof name, "blk.%zu.weight", i);
		const struct qa_gguf_tensor *t = qa_gguf_tensor_find(o.g, name);
		ck_assert_ptr_eq(t, qa_gguf_tensor_at(o.g, i));
		ck_assert_uint_eq(t->offset, expect_off);
		ck_assert_uint_eq(t->nbytes, 34 * (1 + i % 3));
		expect_off += (t->nbytes + 31) / 32 * 32;
		uint8_t last;
		struct qa_diag d;
		ck_assert_int_eq(qa_gguf_tensor_read(o.g, t, t->nbytes - 1, 1, &last, &d), QA_OK);
		ck_assert_uint_eq(last, i & 0xff);
	}
	uint64_t size = qa_source_size(o.src);
	ck_assert_uint_eq(qa_gguf_data_offset(o.g) + expect_off, size);

	/* Truncate inside the u8 array, past the first 1 MiB buffers. */
	const void *all;
	struct qa_diag d;
	ck_assert_int_eq(qa_source_view(o.src, 0, (size_t)size, &all, "all", &d), QA_OK);
	uint64_t arr_at = qa_gguf_kv_find(o.g, "big.bytes")->offset + 8 + 9 + 4 + 4 + 8;
	uint64_t cut = arr_at + BIG_BYTES - 10;
	ck_assert_uint_gt(cut, 3u << 20);
	struct qa_source *s;
	struct qa_gguf *g;
	ck_assert_int_eq(qa_source_open_memory(&s, all, (size_t)cut, "cut", &d), QA_OK);
	ck_assert_int_eq(qa_gguf_open(&g, s, &d), QA_ERR_FORMAT);
	/* the array count no longer fits what is left of the file */
	ck_assert_uint_eq(d.offset, arr_at - 8);
	ck_assert_ptr_nonnull(strstr(d.msg, "array count 500000 of u8"));
	qa_source_close(s);
	close_opened(o);
	clean_tmpdir();
}
END_TEST

/* ------------------------------------------------------------------ */
/* malformed                                                           */
/* ------------------------------------------------------------------ */

/* Rows printed by tests/data/gguf/make.py --table. */
static const struct {
	const char *file;
	enum qa_err code;
	const char *reason;
	uint64_t offset;
} bad_cases[] = {
	{ "bad-alignment-npot.gguf", QA_ERR_FORMAT, "general.alignment 48 is not a nonzero power of two", 125 },
	{ "bad-alignment-type.gguf", QA_ERR_FORMAT, "general.alignment has type u64, expected u32", 121 },
	{ "bad-alignment-zero.gguf", QA_ERR_FORMAT, "general.alignment 0 is not a nonzero power of two", 125 },
	{ "bad-array-count.gguf", QA_ERR_FORMAT, "array count 4611686018427387904 of u32 needs more", 113 },
	{ "bad-array-depth.gguf", QA_ERR_FORMAT, "arrays nested deeper than 8 levels", 193 },
	{ "bad-array-elem-type.gguf", QA_ERR_FORMAT, "unknown array element type 13", 109 },
	{ "bad-block.gguf", QA_ERR_FORMAT, "tensor \"w\" row of 100 elements is not a multiple of the q4_K block size 256", 124 },
	{ "bad-bool.gguf", QA_ERR_FORMAT, "bool value 2 is neither 0 nor 1", 109 },
	{ "bad-data-past-end.gguf", QA_ERR_FORMAT, "tensor \"w\" data (256 bytes at data offset 0) runs past end", 136 },
	{ "bad-dup-key.gguf", QA_ERR_FORMAT, "duplicate metadata key \"general.name\"", 96 },
	{ "bad-dup-tensor.gguf", QA_ERR_FORMAT, "duplicate tensor name \"w\"", 144 },
	{ "bad-empty.gguf", QA_ERR_FORMAT, "truncated magic", 0 },
	{ "bad-key-past-end.gguf", QA_ERR_FORMAT, "metadata key length 1000 runs past end of file", 96 },
	{ "bad-magic.gguf", QA_ERR_FORMAT, "bad magic", 0 },
	{ "bad-n-kv-huge.gguf", QA_ERR_FORMAT, "metadata count 1000 is more than", 16 },
	{ "bad-n-tensors-huge.gguf", QA_ERR_FORMAT, "tensor count 1099511627776 is more than", 8 },
	{ "bad-nbytes-overflow.gguf", QA_ERR_FORMAT, "tensor \"w\" byte size overflows", 132 },
	{ "bad-ndims-5.gguf", QA_ERR_FORMAT, "tensor \"w\" has 5 dimensions, more than 4", 120 },
	{ "bad-ndims-zero.gguf", QA_ERR_FORMAT, "tensor \"w\" has zero dimensions", 120 },
	{ "bad-ne-huge.gguf", QA_ERR_FORMAT, "tensor \"w\" element count overflows int64", 124 },
	{ "bad-ne-overflow.gguf", QA_ERR_FORMAT, "tensor \"w\" element count overflows int64", 132 },
	{ "bad-ne-zero.gguf", QA_ERR_FORMAT, "tensor \"w\" dimension 1 is zero", 132 },
	{ "bad-offset-align.gguf", QA_ERR_FORMAT, "tensor \"w\" data offset 16 is not a multiple of the alignment 32", 136 },
	{ "bad-overlap.gguf", QA_ERR_FORMAT, "tensor \"b\" data overlaps tensor \"a\"", 169 },
	{ "bad-string-past-end.gguf", QA_ERR_FORMAT, "string value length 500 runs past end of file", 109 },
	{ "bad-tensor-name-past-end.gguf", QA_ERR_FORMAT, "tensor name length 1000 runs past end", 111 },
	{ "bad-tensor-type-huge.gguf", QA_ERR_FORMAT, "tensor \"w\" has unknown type 4294967295", 132 },
	{ "bad-tensor-type.gguf", QA_ERR_FORMAT, "tensor \"w\" has unknown type 4", 132 },
	{ "bad-trunc-array-count.gguf", QA_ERR_FORMAT, "truncated array count", 113 },
	{ "bad-trunc-array-elem.gguf", QA_ERR_FORMAT, "truncated string value length", 149 },
	{ "bad-trunc-array-type.gguf", QA_ERR_FORMAT, "truncated array element type", 109 },
	{ "bad-trunc-kv-key.gguf", QA_ERR_FORMAT, "truncated metadata key length", 96 },
	{ "bad-trunc-kv-type.gguf", QA_ERR_FORMAT, "truncated metadata value type", 105 },
	{ "bad-trunc-kv-value.gguf", QA_ERR_FORMAT, "truncated u64 value", 109 },
	{ "bad-trunc-magic.gguf", QA_ERR_FORMAT, "truncated magic", 0 },
	{ "bad-trunc-n-kv.gguf", QA_ERR_FORMAT, "truncated metadata count", 16 },
	{ "bad-trunc-n-tensors.gguf", QA_ERR_FORMAT, "truncated tensor count", 8 },
	{ "bad-trunc-string-len.gguf", QA_ERR_FORMAT, "truncated string value length", 109 },
	{ "bad-trunc-tensor-name.gguf", QA_ERR_FORMAT, "truncated tensor name length", 111 },
	{ "bad-trunc-tensor-ndims.gguf", QA_ERR_FORMAT, "truncated tensor dimension count", 120 },
	{ "bad-trunc-tensor-ne.gguf", QA_ERR_FORMAT, "truncated tensor dimension", 132 },
	{ "bad-trunc-tensor-offset.gguf", QA_ERR_FORMAT, "truncated tensor data offset", 136 },
	{ "bad-trunc-tensor-type.gguf", QA_ERR_FORMAT, "truncated tensor type", 132 },
	{ "bad-trunc-version.gguf", QA_ERR_FORMAT, "truncated version", 4 },
	{ "bad-value-type.gguf", QA_ERR_FORMAT, "unknown value type 13", 105 },
	{ "bad-version-1.gguf", QA_ERR_UNSUPPORTED, "gguf version 1 is not supported", 4 },
	{ "bad-version-big-endian.gguf", QA_ERR_UNSUPPORTED, "big-endian gguf files are not supported", 4 },
	{ "bad-version-unknown.gguf", QA_ERR_FORMAT, "unknown gguf version 4", 4 },
};
#define N_BAD (sizeof bad_cases / sizeof bad_cases[0])

START_TEST(test_bad_file)
{
	char path[4096];
	struct qa_source *s;
	struct qa_gguf *g = (struct qa_gguf *)&g; /* must stay untouched */
	struct qa_diag d;
	data_path(path, sizeof path, bad_cases[_i].file);
	ck_assert_int_eq(qa_source_open_file(&s, path, &d), QA_OK);
	enum qa_err e = qa_gguf_open(&g, s, &d);
	ck_assert_msg(e == bad_cases[_i].code, "%s: got %s (%s)", bad_cases[_i].file,
	              qa_err_name(e), d.msg);
	ck_assert_ptr_eq(g, (struct qa_gguf *)&g);
	ck_assert_int_eq(d.code, bad_cases[_i].code);
	ck_assert_msg(strstr(d.msg, bad_cases[_i].reason) != NULL,
	              "%s: reason \"%s\" lacks \"%s\"", bad_cases[_i].file, d.msg,
	              bad_cases[_i].reason);
	ck_assert_msg(d.offset == bad_cases[_i].offset, "%s: offset %llu, want %llu (%s)",
	              bad_cases[_i].file, (unsigned long long)d.offset,
	              (unsigned long long)bad_cases[_i].offset, d.msg);
	qa_source_close(s);
}
END_TEST

/* The reasons of the bad files are distinct where the rules differ. */
START_TEST(test_bad_table_complete)
{
	char path[4096];
	DIR *dir;
	struct dirent *e;
	size_t n = 0;
	data_path(path, sizeof path, "");
	dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, "bad-", 4) != 0)
			continue;
		bool found = false;
		for (size_t i = 0; i < N_BAD; i++)
			found = found || strcmp(bad_cases[i].file, e->d_name) == 0;
		ck_assert_msg(found, "%s is not in the table", e->d_name);
		n++;
	}
	closedir(dir);
	ck_assert_uint_eq(n, N_BAD);
}
END_TEST

static const char *const good_files[] = {
	"good-v2.gguf", "good-v3.gguf", "good-all-types.gguf", "good-iq2xs.gguf",
	"good-align64.gguf", "good-align1.gguf", "good-empty.gguf", "good-4d.gguf",
	"good-unordered.gguf",
};
#define N_GOOD (sizeof good_files / sizeof good_files[0])

/*
 * Every prefix shorter than the end of the last tensor's data fails cleanly.
 * A file without tensors must fail for every prefix shorter than its header,
 * which ends somewhere in the last alignment unit: the failing prefixes are
 * exactly those below some length T in that unit.
 */
START_TEST(test_truncations)
{
	size_t len;
	uint8_t *all = slurp(good_files[_i], &len);
	struct qa_source *s;
	struct qa_gguf *g;
	struct qa_diag d;
	ck_assert_int_eq(qa_source_open_memory(&s, all, len, "full", &d), QA_OK);
	ck_assert_int_eq(qa_gguf_open(&g, s, &d), QA_OK);
	uint64_t need = 0, header_min = 0;
	if (qa_gguf_n_tensors(g) == 0) {
		need = len;
		header_min = qa_gguf_data_offset(g) - qa_gguf_alignment(g) + 1;
	}
	for (size_t i = 0; i < qa_gguf_n_tensors(g); i++) {
		const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
		uint64_t end = qa_gguf_data_offset(g) + t->offset + t->nbytes;
		need = end > need ? end : need;
	}
	qa_gguf_close(g);
	qa_source_close(s);
	bool succeeded = false;
	for (size_t cut = 0; cut < need; cut++) {
		/* a private copy so that ASan catches any read past the cut */
		uint8_t *part = malloc(cut ? cut : 1);
		memcpy(part, all, cut);
		ck_assert_int_eq(qa_source_open_memory(&s, part, cut, "cut", &d), QA_OK);
		d.msg[0] = '\0';
		enum qa_err e = qa_gguf_open(&g, s, &d);
		if (e == QA_OK) {
			/* only possible for tensorless files, past the header */
			ck_assert_msg(header_min && cut >= header_min, "%s cut at %zu parses",
			              good_files[_i], cut);
			succeeded = true;
			qa_gguf_close(g);
		} else {
			ck_assert_msg(!succeeded, "%s cut at %zu fails after a shorter cut parsed",
			              good_files[_i], cut);
			ck_assert_msg(e == QA_ERR_FORMAT, "%s cut at %zu: %s", good_files[_i], cut,
			              qa_err_name(e));
			ck_assert_msg(d.offset <= cut, "%s cut at %zu: offset %llu", good_files[_i],
			              cut, (unsigned long long)d.offset);
			ck_assert(d.msg[0] != '\0');
		}
		qa_source_close(s);
		free(part);
	}
	free(all);
}
END_TEST

static Suite *gguf_suite(void)
{
	Suite *s = suite_create("gguf");
	TCase *core = tcase_create("core");
	tcase_add_test(core, test_v3_file);
	tcase_add_test(core, test_v2_file);
	tcase_add_test(core, test_all_types);
	tcase_add_test(core, test_iq2xs_tensor_parses);
	tcase_add_test(core, test_unordered_offsets);
	tcase_add_test(core, test_read_only_source);
	tcase_add_loop_test(core, test_writer_layout, 0,
	                    (int)(sizeof chunks / sizeof chunks[0]));
	tcase_add_test(core, test_writer_alignment_layout);
	tcase_add_test(core, test_writer_all_types);
	tcase_add_test(core, test_writer_helpers);
	tcase_add_test(core, test_writer_refusals);
	suite_add_tcase(s, core);

	TCase *limits = tcase_create("limits");
	tcase_set_timeout(limits, 120);
	tcase_add_test(limits, test_four_dims);
	tcase_add_loop_test(limits, test_alignments, 0,
	                    (int)(sizeof align_cases / sizeof align_cases[0]));
	tcase_add_test(limits, test_empty);
	tcase_add_test(limits, test_big_header);
	suite_add_tcase(s, limits);

	TCase *malformed = tcase_create("malformed");
	tcase_set_timeout(malformed, 120);
	tcase_add_loop_test(malformed, test_bad_file, 0, (int)N_BAD);
	tcase_add_test(malformed, test_bad_table_complete);
	tcase_add_loop_test(malformed, test_truncations, 0, (int)N_GOOD);
	suite_add_tcase(s, malformed);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gguf_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
