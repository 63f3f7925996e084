/*
 * cmd_hash.c - "quantaudit hash": per-tensor and per-block SHA-256 manifest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "manifest.h"
#include "part.h"
#include "tmpfile.h"
#include "util.h"
#include "manifest_json.h"

static const char usage[] =
	"quantaudit hash FILE [--blocks] [--json] [--format json|table|gguf-hash] [-o MANIFEST] [-j N]\n"
	"                     [--shard K/N [--file-digests]]";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Hash a GGUF or safetensors file: the whole file, its metadata section, and every\n"
	       "tensor (digest, number of 256-element blocks, Merkle root of the block digests).\n\n"
	       "  --blocks            block location data for 'verify': with -o, a block index\n"
	       "                      MANIFEST.blocks beside it (8 bytes of each block's SHA-256);\n"
	       "                      on stdout (and from 'merge'), every block's SHA-256\n"
	       "                      (block_sha256) in the JSON\n"
	       "  --json              print the manifest as JSON (same as --format json)\n"
	       "  --format F          table (default), json (schema quantaudit.manifest/2), or\n"
	       "                      gguf-hash: the text of llama.cpp's llama-gguf-hash --sha256\n"
	       "  -o, --output FILE   write the manifest to FILE instead of stdout (JSON unless\n"
	       "                      --format says otherwise); 'quantaudit verify' reads it back\n"
	       "  -j, --threads N     worker threads (default: all cores)\n"
	       "  --shard K/N         hash only shard K of N of the tensors and write a part (schema\n"
	       "                      quantaudit.part/1; with -o, to a file) for 'quantaudit merge',\n"
	       "                      which prints the manifest in the format given here\n"
	       "  --file-digests      with --shard: compute the whole-file, metadata and (gguf-hash)\n"
	       "                      tensor-data digests too; without them the merged manifest\n"
	       "                      has null there\n"
	       "  -h, --help          show this help\n\n"
	       "A block is 256 consecutive elements in storage order (one k-quant super-block,\n"
	       "eight q8_0 blocks, 256 f16 values...); the last may be partial.  The Merkle root\n"
	       "is SHA-256 of the block digests concatenated as 32-byte values.  The tensor digests\n"
	       "and Merkle roots are the integrity proof; the block index only locates blocks.\n",
	       usage);
}

static const char not_computed[] = "not computed (a merge of shards run without --file-digests)";

static void print_table(FILE *f, const struct qa_manifest *m, bool digests)
{
	char hex[65];
	qa_manifest_hex(m->sha256, hex);
	fprintf(f, "file:     %s (%s, %" PRIu64 " bytes)\nsha256:   %s\n", m->path, m->format, m->size,
	        digests ? hex : not_computed);
	qa_manifest_hex(m->metadata_sha256, hex);
	fprintf(f, "metadata: %s\n\n", digests ? hex : not_computed);
	fprintf(f, "%-40s %-6s %8s  %-16s  %-16s\n", "tensor", "type", "blocks", "sha256", "merkle_root");
	for (size_t i = 0; i < m->n; i++) {
		const struct qa_manifest_tensor *t = &m->tensors[i];
		char a[65], b[65];
		qa_manifest_hex(t->sha256, a);
		qa_manifest_hex(t->merkle, b);
		fprintf(f, "%-40s %-6s %8" PRIu64 "  %.16s  %.16s\n", t->name, t->type, t->n_blocks, a, b);
	}
}

/* llama-gguf-hash --sha256: one line per tensor, then the digest of all tensor data. */
static void print_gguf_hash(FILE *f, const struct qa_manifest *m, const char *label, bool digests)
{
	char hex[65];
	for (size_t i = 0; i < m->n; i++) {
		qa_manifest_hex(m->tensors[i].sha256, hex);
		fprintf(f, "%-8s  %s  %s:%s\n", "sha256", hex, label, m->tensors[i].name);
	}
	/* the digest of all tensor data cannot be assembled from shards */
	if (!digests)
		return;
	qa_manifest_hex(m->tensor_data_sha256, hex);
	fprintf(f, "%-8s  %s  %s\n", "sha256", hex, label);
}

int cmd_hash(int argc, char **argv)
{
	enum { O_BLOCKS = 256, O_FORMAT, O_SHARD, O_DIGESTS };
	static const struct option opts[] = {
		{ "blocks", no_argument, NULL, O_BLOCKS },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "shard", required_argument, NULL, O_SHARD },
		{ "file-digests", no_argument, NULL, O_DIGESTS },
		CLI_OPTION_JSON, CLI_OPTION_OUTPUT, CLI_OPTION_THREADS, CLI_OPTION_HELP, CLI_OPTION_END,
	};
	struct cli_common co = CLI_COMMON_INIT("hash", usage, help);
	bool blocks = false, file_digests = false;
	uint32_t sk = 0, sn = 0;
	const char *format = NULL;
	int c;
	while ((c = cli_getopt(&co, argc, argv, "o:j:h", opts)) != -1) {
		switch (c) {
		case CLI_GETOPT_EXIT: return co.status;
		case O_BLOCKS: blocks = true; break;
		case O_FORMAT:
			if (strcmp(optarg, "json") && strcmp(optarg, "table") && strcmp(optarg, "gguf-hash"))
				return cli_usage_error("hash", usage, "unknown format '%s' (json, table or gguf-hash)", optarg);
			format = optarg;
			break;
		case O_SHARD:
			if (!cli_parse_shard(optarg, &sk, &sn))
				return cli_usage_error("hash", usage, "--shard needs K/N with 1 <= K <= N <= 256, not '%s'", optarg);
			break;
		case O_DIGESTS: file_digests = true; break;
		}
	}
	if (co.json)
		format = "json";
	if (file_digests && !sn)
		return cli_usage_error("hash", usage, "--file-digests needs --shard");
	const char *out = co.output;
	unsigned threads = co.threads;
	if (argc - optind != 1)
		return cli_usage_error("hash", usage, argc - optind ? "too many arguments" : "missing FILE");
	const char *path = argv[optind];
	int rc = cli_check_output(&co, out, &path, 1);
	if (rc)
		return rc;
	struct qa_diag d;
	qa_diag_clear(&d);
	if (sn) {
		/* a part; the merge prints the manifest as this command would have
		 * ("default": JSON to a file, a table to the terminal) */
		json_t *part = NULL;
		enum qa_err e = qa_part_hash(path, sk, sn, blocks, file_digests, format && strcmp(format, "gguf-hash") == 0,
		                             format ? format : "default", argc, argv, &part, &d);
		if (e == QA_ERR_USAGE)
			return cli_usage_error("hash", usage, "%s", d.msg);
		if (e)
			return cli_fail(path, &d);
		return cli_part_output(part, out);
	}
	if (!format)
		format = out ? "json" : "table";
	/* with -o, block location data goes to a block index beside the manifest */
	bool sidecar = blocks && out && strcmp(format, "json") == 0;
	char *ipath = NULL;
	struct qa_tmpfile it = { NULL, NULL, -1, 0 };
	struct qa_manifest *m = NULL;
	enum qa_err e = QA_OK;
	if (sidecar) {
		size_t n = strlen(out) + sizeof ".blocks";
		if (!(ipath = malloc(n))) {
			fprintf(stderr, "quantaudit: out of memory\n");
			return QA_EXIT_IO;
		}
		snprintf(ipath, n, "%s.blocks", out);
		if ((rc = cli_check_output(&co, ipath, &path, 1)) == 0 && (e = qa_tmpfile_open(&it, ipath, &d)))
			rc = cli_fail(ipath, &d);
		if (rc) {
			free(ipath);
			return rc;
		}
	}
	struct qa_manifest_opts mo = { blocks && !sidecar, strcmp(format, "gguf-hash") == 0, false, threads,
	                               sidecar, it.fd };
	e = qa_manifest_compute_opts(path, &mo, &m, &d);
	if (!e && sidecar) {
		const char *slash = strrchr(ipath, '/');
		if (!(m->index_file = qa_str_dup(slash ? slash + 1 : ipath)))
			e = qa_diag_set(&d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	if (e) {
		qa_tmpfile_abort(&it);
		qa_manifest_free(m);
		if (e == QA_ERR_USAGE)
			rc = cli_usage_error("hash", usage, "%s", d.msg);
		else /* a failed write of the block index names it; anything else the input */
			rc = cli_fail(e == QA_ERR_IO && strstr(d.msg, "block index") ? ipath : path, &d);
		free(ipath);
		return rc;
	}
	rc = cli_hash_finish(m, format, out, true, sidecar ? &it : NULL, ipath);
	qa_manifest_free(m);
	free(ipath);
	return rc;
}

/*
 * hash's output stage, shared with merge: m in format ("json", "table" or
 * "gguf-hash") to out (atomically) or stdout.  digests false: the
 * whole-file digests were not computed (null, or said so).  it, when not
 * NULL, is the open block index for ipath (written by the computation): it is
 * committed just before out, or aborted on any failure.  Returns the exit
 * status; m stays the caller's.
 */
int cli_hash_finish(const struct qa_manifest *m, const char *format, const char *out, bool digests,
                    struct qa_tmpfile *it, const char *ipath)
{
	const char *path = m->path;
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e;
	int rc = 0;
	/* the manifest file is written atomically; stdout is checked by main */
	struct qa_tmpfile t = { NULL, NULL, -1, 0 };
	FILE *f = stdout;
	if (out) {
		if ((e = qa_tmpfile_open(&t, out, &d)) == QA_OK && !(f = fdopen(t.fd, "w")))
			e = qa_diag_set(&d, QA_ERR_IO, QA_NO_OFFSET, "cannot write: %s", qa_strerror(errno));
		if (e) {
			qa_tmpfile_abort(&t);
			if (it)
				qa_tmpfile_abort(it);
			return cli_fail(out, &d);
		}
		t.fd = -1; /* the stream owns it now */
	}
	if (strcmp(format, "json") == 0) {
		json_t *j = qa_manifest_to_json(m);
		if (j && !digests) {
			json_object_set_new(json_object_get(j, "file"), "sha256", json_null());
			json_object_set_new(j, "metadata_sha256", json_null());
		}
		if (j) {
			/* a failed write leaves f's error flag set, checked below or by main */
			(void)json_dumpf(j, f, JSON_INDENT(2));
			fputc('\n', f);
			json_decref(j);
		} else {
			rc = QA_EXIT_IO;
		}
	} else if (strcmp(format, "gguf-hash") == 0) {
		print_gguf_hash(f, m, path, digests);
	} else {
		print_table(f, m, digests);
	}
	if (rc == QA_EXIT_IO) {
		if (out) {
			fclose(f);
			qa_tmpfile_abort(&t);
		}
		if (it)
			qa_tmpfile_abort(it);
		fprintf(stderr, "quantaudit: out of memory\n");
		return rc;
	}
	if (out) {
		int err = ferror(f) ? EIO : 0;
		if (fflush(f) != 0)
			err = errno;
		if (fclose(f) != 0 && !err)
			err = errno;
		if (err) {
			qa_tmpfile_abort(&t);
			if (it)
				qa_tmpfile_abort(it);
			qa_diag_set(&d, QA_ERR_IO, QA_NO_OFFSET, "cannot write: %s", qa_strerror(err));
			return cli_fail(out, &d);
		}
		/* the block index goes into place first: a manifest never names a
		 * block index that is not there */
		if (it && (e = qa_tmpfile_commit(it, true, &d))) {
			qa_tmpfile_abort(&t);
			return cli_fail(ipath, &d);
		}
		if ((e = qa_tmpfile_commit(&t, true, &d)))
			return cli_fail(out, &d);
	}
	return QA_EXIT_OK;
}
