/*
 * cmd_inspect.c - "quantaudit inspect FILE [--json]": a GGUF or safetensors
 * file's header, metadata and tensor table.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "escape.h"
#include "strbuf.h"
#include "gguf.h"
#include "model.h"
#include "safetensors.h"
#include "source.h"
#include "types.h"
#include "json_scan.h"

static const char usage[] = "quantaudit inspect FILE [--json]";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Show a GGUF or safetensors file: header, metadata and a tensor table\n"
	       "(name, type, shape, offset, bytes and, for GGUF, bits per weight).\n"
	       "FILE may be a GGUF file, a .safetensors file, a sharded checkpoint's\n"
	       "model.safetensors.index.json, or a directory holding a checkpoint.\n\n"
	       "  --json     print one JSON object (schema quantaudit.inspect/1)\n"
	       "  -h, --help show this help\n",
	       usage);
}

/* ------------------------------------------------------------ GGUF values */

static json_t *gguf_value_json(const struct qa_gguf_value *v)
{
	switch (v->type) {
	case QA_GGUF_U8: case QA_GGUF_U16: case QA_GGUF_U32: case QA_GGUF_U64:
		return qa_json_u64(v->v.u);
	case QA_GGUF_I8: case QA_GGUF_I16: case QA_GGUF_I32: case QA_GGUF_I64:
		return json_integer((json_int_t)v->v.i);
	case QA_GGUF_F32: case QA_GGUF_F64:
		return json_real(v->v.f);
	case QA_GGUF_BOOL:
		return json_boolean(v->v.b);
	case QA_GGUF_STRING:
		/* invalid UTF-8 becomes U+FFFD; inspect_gguf adds the exact bytes as hex */
		return qa_json_text(v->v.str.ptr, (size_t)v->v.str.len);
	case QA_GGUF_ARRAY: {
		json_t *a = json_array();
		for (uint64_t i = 0; i < v->v.arr.count; i++) {
			struct qa_gguf_value item;
			if (qa_gguf_array_get(v, i, &item))
				json_array_append_new(a, gguf_value_json(&item));
		}
		return a;
	}
	}
	return json_null();
}

static const char *vtype_name(uint32_t t)
{
	static const char *names[] = { "u8", "i8", "u16", "i16", "u32", "i32", "f32",
	                               "bool", "string", "array", "u64", "i64", "f64" };
	return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* Untrusted bytes for the terminal (escape.h's policy), left-aligned in width columns. */
static void put_term(const char *s, uint64_t len, int width)
{
	struct qa_sb b = { 0 };
	qa_escape_term(&b, s, (size_t)len);
	printf("%-*s", width, b.oom ? "(out of memory)" : b.p ? b.p : "");
	qa_sb_free(&b);
}

/* A string value, quoted: the first max bytes, escaped, and "..." when cut. */
static void print_escaped(const char *s, uint64_t len, size_t max)
{
	putchar('"');
	uint64_t n = len < max ? len : max;
	/* do not cut a UTF-8 character in half */
	while (n < len && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	put_term(s, n, 0);
	if (len > n)
		printf("...");
	putchar('"');
}

/* Whether the bytes are all valid UTF-8; when not, obj[what_hex] gets them. */
static void add_hex(json_t *obj, const char *what, const char *s, uint64_t len)
{
	if (qa_utf8_valid(s, (size_t)len))
		return;
	struct qa_sb b = { 0 }, k = { 0 };
	qa_sb_hex(&b, (const uint8_t *)s, (size_t)len);
	qa_sb_printf(&k, "%s_hex", what);
	if (!b.oom && !k.oom)
		json_object_set_new(obj, k.p, json_stringn(b.p ? b.p : "", b.len));
	qa_sb_free(&b);
	qa_sb_free(&k);
}

static void print_value(const struct qa_gguf_value *v, int depth)
{
	switch (v->type) {
	case QA_GGUF_U8: case QA_GGUF_U16: case QA_GGUF_U32: case QA_GGUF_U64:
		printf("%" PRIu64, v->v.u);
		break;
	case QA_GGUF_I8: case QA_GGUF_I16: case QA_GGUF_I32: case QA_GGUF_I64:
		printf("%" PRId64, v->v.i);
		break;
	case QA_GGUF_F32: case QA_GGUF_F64:
		printf("%.9g", v->v.f);
		break;
	case QA_GGUF_BOOL:
		printf(v->v.b ? "true" : "false");
		break;
	case QA_GGUF_STRING:
		print_escaped(v->v.str.ptr, v->v.str.len, 120);
		break;
	case QA_GGUF_ARRAY: {
		uint64_t n = v->v.arr.count, show = n > 8 ? 4 : n;
		printf("[%s x %" PRIu64 "] [", vtype_name(v->v.arr.elem_type), n);
		for (uint64_t i = 0; i < show; i++) {
			if (i)
				printf(", ");
			struct qa_gguf_value item;
			if (depth < 2 && qa_gguf_array_get(v, i, &item))
				print_value(&item, depth + 1);
			else
				printf("...");
		}
		if (show < n)
			printf(", ... %" PRIu64 " more", n - show);
		printf("]");
		break;
	}
	}
}

static int inspect_gguf(const char *path, bool as_json)
{
	struct qa_diag d;
	struct qa_source *src;
	struct qa_gguf *g;
	qa_diag_clear(&d);
	if (qa_source_open_file(&src, path, &d))
		return cli_fail(path, &d);
	if (qa_gguf_open(&g, src, &d)) {
		qa_source_close(src);
		return cli_fail(path, &d);
	}
	size_t nkv = qa_gguf_n_kv(g), nt = qa_gguf_n_tensors(g);
	int rc = QA_EXIT_OK;
	if (as_json) {
		json_t *root = json_object(), *meta = json_object(), *ts = json_array();
		json_object_set_new(root, "schema", json_string("quantaudit.inspect/1"));
		json_object_set_new(root, "format", json_string("gguf"));
		qa_json_text_set(root, "path", path, strlen(path));
		json_object_set_new(root, "size", qa_json_u64(qa_source_size(src)));
		json_object_set_new(root, "version", json_integer(qa_gguf_version(g)));
		json_object_set_new(root, "alignment", json_integer(qa_gguf_alignment(g)));
		json_object_set_new(root, "data_offset", qa_json_u64(qa_gguf_data_offset(g)));
		/* Keys that are valid UTF-8 (NULs included) key the metadata object;
		 * any other key, and any string value that is not valid UTF-8, is
		 * listed in metadata_raw with its exact bytes in hex. */
		json_t *raw = json_array();
		for (size_t i = 0; i < nkv; i++) {
			const struct qa_gguf_kv *kv = qa_gguf_kv_at(g, i);
			const struct qa_gguf_value *v = &kv->value;
			bool key_ok = qa_utf8_valid(kv->key, (size_t)kv->key_len);
			bool val_ok = v->type != QA_GGUF_STRING || qa_utf8_valid(v->v.str.ptr, (size_t)v->v.str.len);
			if (key_ok)
				json_object_setn_new_nocheck(meta, kv->key, (size_t)kv->key_len, gguf_value_json(v));
			if (!key_ok || !val_ok) {
				json_t *o = json_object();
				qa_json_text_set(o, "key", kv->key, (size_t)kv->key_len);
				json_object_set_new(o, "value", gguf_value_json(v));
				if (!val_ok)
					add_hex(o, "value", v->v.str.ptr, v->v.str.len);
				json_array_append_new(raw, o);
			}
		}
		json_object_set_new(root, "metadata", meta);
		if (json_array_size(raw))
			json_object_set_new(root, "metadata_raw", raw);
		else
			json_decref(raw);
		for (size_t i = 0; i < nt; i++) {
			const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
			const struct qa_type_info *ti = qa_type_get(t->type);
			json_t *o = json_object(), *sh = json_array();
			for (uint32_t k = 0; k < t->n_dims; k++)
				json_array_append_new(sh, qa_json_u64(t->ne[k]));
			qa_json_text_set(o, "name", t->name, (size_t)t->name_len);
			json_object_set_new(o, "type", json_string(qa_type_name(t->type)));
			json_object_set_new(o, "shape", sh);
			json_object_set_new(o, "offset", qa_json_u64(t->offset));
			json_object_set_new(o, "nbytes", qa_json_u64(t->nbytes));
			json_object_set_new(o, "bpw", json_real(ti ? qa_type_bpw(ti) : 0));
			json_object_set_new(o, "supported", json_boolean(ti && ti->decodable));
			json_array_append_new(ts, o);
		}
		json_object_set_new(root, "tensors", ts);
		rc = cli_json_print(root);
	} else {
		printf("file:        ");
		put_term(path, strlen(path), 0);
		printf("\nformat:      gguf v%u, %" PRIu64 " bytes\n", qa_gguf_version(g), qa_source_size(src));
		printf("alignment:   %u\n", qa_gguf_alignment(g));
		printf("data offset: %" PRIu64 "\n", qa_gguf_data_offset(g));
		printf("\nmetadata (%zu keys):\n", nkv);
		for (size_t i = 0; i < nkv; i++) {
			const struct qa_gguf_kv *kv = qa_gguf_kv_at(g, i);
			printf("  ");
			put_term(kv->key, kv->key_len, 40);
			printf(" %-6s ", vtype_name(kv->value.type));
			print_value(&kv->value, 0);
			putchar('\n');
		}
		printf("\ntensors (%zu):\n", nt);
		printf("  %-36s %-8s %-22s %12s %12s %6s\n", "name", "type", "shape", "offset", "bytes", "bpw");
		uint64_t total = 0;
		for (size_t i = 0; i < nt; i++) {
			const struct qa_gguf_tensor *t = qa_gguf_tensor_at(g, i);
			const struct qa_type_info *ti = qa_type_get(t->type);
			char sh[96];
			cli_shape_text(t->ne, t->n_dims, sh, sizeof sh);
			printf("  ");
			put_term(t->name, t->name_len, 36);
			printf(" %-8s %-22s %12" PRIu64 " %12" PRIu64 " %6.2f%s\n",
			       qa_type_name(t->type), sh, t->offset, t->nbytes,
			       ti ? qa_type_bpw(ti) : 0.0,
			       ti && !ti->decodable ? "  (unsupported type)" : "");
			total += t->nbytes;
		}
		printf("  total: %zu tensors, %" PRIu64 " bytes of data\n", nt, total);
		if (cli_flush() != 0)
			rc = QA_EXIT_IO;
	}
	qa_gguf_close(g);
	qa_source_close(src);
	return rc;
}

/* ------------------------------------------------------------ safetensors */

static int inspect_st(const char *path, bool as_json)
{
	struct qa_diag d;
	struct qa_st *st;
	qa_diag_clear(&d);
	if (qa_st_open(&st, path, &d))
		return cli_fail(path, &d);
	size_t nt = qa_st_n_tensors(st), nm = qa_st_n_metadata(st);
	size_t nshards = qa_st_n_shards(st);
	int rc = QA_EXIT_OK;
	if (as_json) {
		json_t *root = json_object(), *meta = json_object(), *ts = json_array(), *sh = json_array();
		json_object_set_new(root, "schema", json_string("quantaudit.inspect/1"));
		json_object_set_new(root, "format", json_string("safetensors"));
		qa_json_text_set(root, "path", path, strlen(path));
		for (uint32_t s = 0; s < nshards; s++) {
			json_t *o = json_object();
			const char *sp = qa_st_shard_path(st, s);
			qa_json_text_set(o, "path", sp, strlen(sp));
			json_object_set_new(o, "size", qa_json_u64(qa_source_size(qa_st_shard_source(st, s))));
			json_object_set_new(o, "data_offset", qa_json_u64(qa_st_header_len(st, s)));
			json_array_append_new(sh, o);
		}
		json_object_set_new(root, "data_offset", qa_json_u64(qa_st_header_len(st, 0)));
		json_object_set_new(root, "shards", sh);
		for (size_t i = 0; i < nm; i++) {
			const char *k, *v;
			if (qa_st_metadata_at(st, i, &k, &v))
				json_object_set_new(meta, k, json_string(v));
		}
		json_object_set_new(root, "metadata", meta);
		for (size_t i = 0; i < nt; i++) {
			const struct qa_st_tensor *t = qa_st_tensor_at(st, i);
			json_t *o = json_object(), *shape = json_array();
			for (uint32_t k = 0; k < t->n_dims; k++)
				json_array_append_new(shape, qa_json_u64(t->shape[k]));
			json_object_set_new(o, "name", json_string(t->name));
			json_object_set_new(o, "type", json_string(t->dtype));
			json_object_set_new(o, "shape", shape);
			json_object_set_new(o, "offset", qa_json_u64(t->begin));
			json_object_set_new(o, "nbytes", qa_json_u64(t->end - t->begin));
			if (nshards > 1)
				json_object_set_new(o, "shard", json_integer(t->shard));
			json_array_append_new(ts, o);
		}
		json_object_set_new(root, "tensors", ts);
		rc = cli_json_print(root);
	} else {
		printf("file:        ");
		put_term(path, strlen(path), 0);
		printf("\nformat:      safetensors, %zu shard%s\n", nshards, nshards == 1 ? "" : "s");
		for (uint32_t s = 0; s < nshards; s++) {
			const char *sp = qa_st_shard_path(st, s);
			printf("  shard %u: ", s);
			put_term(sp, strlen(sp), 0);
			printf(", %" PRIu64 " bytes, data offset %" PRIu64 "\n",
			       qa_source_size(qa_st_shard_source(st, s)), qa_st_header_len(st, s));
		}
		printf("\nmetadata (%zu keys):\n", nm);
		for (size_t i = 0; i < nm; i++) {
			const char *k, *v;
			if (qa_st_metadata_at(st, i, &k, &v)) {
				printf("  ");
				put_term(k, strlen(k), 40);
				putchar(' ');
				print_escaped(v, strlen(v), 120);
				putchar('\n');
			}
		}
		printf("\ntensors (%zu):\n", nt);
		printf("  %-48s %-6s %-18s %12s %12s%s\n", "name", "dtype", "shape", "offset", "bytes",
		       nshards > 1 ? " shard" : "");
		uint64_t total = 0;
		for (size_t i = 0; i < nt; i++) {
			const struct qa_st_tensor *t = qa_st_tensor_at(st, i);
			char sh[96];
			cli_shape_text(t->shape, t->n_dims, sh, sizeof sh);
			printf("  ");
			put_term(t->name, strlen(t->name), 48);
			putchar(' ');
			put_term(t->dtype, strlen(t->dtype), 6);
			printf(" %-18s %12" PRIu64 " %12" PRIu64, sh, t->begin, t->end - t->begin);
			if (nshards > 1)
				printf(" %5u", t->shard);
			putchar('\n');
			total += t->end - t->begin;
		}
		printf("  total: %zu tensors, %" PRIu64 " bytes of data\n", nt, total);
		if (cli_flush() != 0)
			rc = QA_EXIT_IO;
	}
	qa_st_close(st);
	return rc;
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_OPTION_JSON, CLI_OPTION_HELP, CLI_OPTION_END,
	};
	struct cli_common co = CLI_COMMON_INIT("inspect", usage, help);
	int c;
	while ((c = cli_getopt(&co, argc, argv, "h", opts)) != -1)
		if (c == CLI_GETOPT_EXIT)
			return co.status;
	bool as_json = co.json;
	if (argc - optind != 1)
		return cli_usage_error("inspect", usage, argc - optind ? "too many arguments" : "missing FILE");
	const char *path = argv[optind];
	struct qa_diag d;
	enum qa_format fmt;
	qa_diag_clear(&d);
	if (qa_format_detect(path, &fmt, &d))
		return cli_fail(path, &d);
	return fmt == QA_FORMAT_GGUF ? inspect_gguf(path, as_json) : inspect_st(path, as_json);
}
