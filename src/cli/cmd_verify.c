/*
 * cmd_verify.c - "quantaudit verify FILE MANIFEST": check a file against a
 * manifest written by "quantaudit hash", naming what differs.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "blockindex.h"
#include "ggufhash.h"
#include "manifest.h"
#include "json_scan.h"

static const char usage[] =
	"quantaudit verify FILE MANIFEST [--json] [-o FILE] [-j N] [--policy FILE] [--github] [--junit FILE]";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Hash FILE and compare it with MANIFEST (from 'quantaudit hash -o', or the text of\n"
	       "'llama-gguf-hash --sha256' / 'quantaudit hash --format gguf-hash', whose tensor\n"
	       "digests and digest of all tensor data are checked). Exit 0 when\n"
	       "everything matches; otherwise exit 1 and name each mismatching tensor (with the\n"
	       "number of mismatching 256-element blocks and the first one, when the manifest\n"
	       "holds block location data), missing and extra tensors, and a changed metadata\n"
	       "section.  Reads schema quantaudit.manifest/2 (with its block index MANIFEST.blocks)\n"
	       "and /1.  Memory stays bounded: the file is read in windows, and only the tensors\n"
	       "that differ are read again to locate their blocks.\n"
	       "A malformed manifest or block index, or an unknown schema, exits 3.\n\n"
	       "  --json            print the result as JSON (schema quantaudit.verify/1)\n"
	       "  -o FILE           write the JSON to FILE (atomically) instead of standard output\n"
	       "  --policy FILE     decide what fails from FILE (schema quantaudit.policy/1)\n"
	       "  --github          GitHub Actions output (implied by GITHUB_ACTIONS=true)\n"
	       "  --junit FILE      write a JUnit XML report (one testcase per tensor)\n"
	       "  -j, --threads N   worker threads (default: all cores)\n"
	       "  -h, --help        show this help\n",
	       usage);
}

static const char *kind_name(enum qa_verify_kind k)
{
	switch (k) {
	case QA_VERIFY_MISMATCH: return "mismatch";
	case QA_VERIFY_MISSING: return "missing";
	case QA_VERIFY_EXTRA: return "extra";
	case QA_VERIFY_SHAPE: return "shape-mismatch";
	}
	return "?";
}

int cmd_verify(int argc, char **argv)
{
	enum { O_POLICY = 256, O_GITHUB, O_JUNIT };
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, O_POLICY },
		{ "github", no_argument, NULL, O_GITHUB },
		{ "junit", required_argument, NULL, O_JUNIT },
		CLI_OPTION_OUTPUT, CLI_OPTION_JSON, CLI_OPTION_THREADS, CLI_OPTION_HELP, CLI_OPTION_END,
	};
	struct cli_common co = CLI_COMMON_INIT("verify", usage, help);
	struct cli_gate g;
	memset(&g, 0, sizeof g);
	int c;
	while ((c = cli_getopt(&co, argc, argv, "j:ho:", opts)) != -1) {
		switch (c) {
		case CLI_GETOPT_EXIT: return co.status;
		case O_POLICY: g.policy_path = optarg; break;
		case O_GITHUB: g.github = true; break;
		case O_JUNIT: g.junit_path = optarg; break;
		}
	}
	g.out_path = co.output;
	bool as_json = co.json || co.output;
	unsigned threads = co.threads;
	if (argc - optind != 2)
		return cli_usage_error("verify", usage, argc - optind > 2 ? "too many arguments" : "need FILE and MANIFEST");
	const char *path = argv[optind], *mpath = argv[optind + 1];
	const char *inputs[] = { path, mpath, g.policy_path };
	int crc = cli_check_output(&co, co.output, inputs, 3);
	if (!crc)
		crc = cli_check_output(&co, g.junit_path, inputs, 3);
	if (crc)
		return crc;
	struct qa_manifest *want, *got;
	struct qa_diag d;
	qa_diag_clear(&d);
	int rc = cli_gate_load(&g);
	if (rc)
		return rc;
	/* a JSON manifest, or the text llama-gguf-hash --sha256 prints */
	char *mtext = NULL;
	size_t mlen = 0;
	bool gguf_hash = false;
	enum qa_err le = qa_source_slurp(mpath, (uint64_t)1 << 30, "manifest", &mtext, &mlen, &d);
	if (!le) {
		gguf_hash = qa_ggufhash_sniff(mtext, mlen);
		le = gguf_hash ? qa_ggufhash_parse(mtext, mlen, &want, &d) : qa_manifest_parse(mtext, mlen, &want, &d);
	}
	free(mtext);
	if (le) {
		cli_gate_free(&g);
		return cli_fail(mpath, &d);
	}
	/* a block index is checked against the manifest before any hashing */
	struct qa_source *isrc;
	struct qa_blockindex *bi;
	if (qa_manifest_open_index(want, mpath, &isrc, &bi, &d)) {
		qa_manifest_free(want);
		cli_gate_free(&g);
		return cli_fail(mpath, &d);
	}
	/* first pass: file, metadata and tensor digests only; then the blocks of
	 * the tensors that differ (qa_verify_locate) */
	struct qa_manifest_opts mo = { false, gguf_hash, true, threads, false, -1 };
	enum qa_err e = qa_manifest_compute_opts(path, &mo, &got, &d);
	if (e) {
		qa_blockindex_free(bi);
		qa_source_close(isrc);
		qa_manifest_free(want);
		cli_gate_free(&g);
		return e == QA_ERR_USAGE ? cli_usage_error("verify", usage, "%s", d.msg) : cli_fail(path, &d);
	}
	struct qa_verify v = { 0 };
	if ((gguf_hash ? qa_ggufhash_verify(got, want, &v, &d) : qa_verify_compare(got, want, &v, &d)) ||
	    (!gguf_hash && qa_verify_locate(&v, got, want, bi, path, threads, &d)) ||
	    qa_gate_add_verify(&g.gate, g.policy, want, &v, true, path, &d)) {
		qa_verify_free(&v);
		qa_blockindex_free(bi);
		qa_source_close(isrc);
		qa_manifest_free(want);
		qa_manifest_free(got);
		cli_gate_free(&g);
		return cli_fail(path, &d);
	}
	qa_blockindex_free(bi);
	qa_source_close(isrc);
	/* ok is the finding (everything matches); the gate decides the exit
	 * status, and without a policy the two agree */
	bool ok = qa_verify_ok(&v);
	rc = g.gate.pass ? QA_EXIT_OK : QA_EXIT_FINDING;
	if (as_json) {
		json_t *root = json_object(), *items = json_array();
		json_object_set_new(root, "schema", json_string("quantaudit.verify/1"));
		json_object_set_new(root, "file", json_string(path));
		json_object_set_new(root, "manifest", json_string(mpath));
		json_object_set_new(root, "file_match", json_boolean(v.file_match));
		json_object_set_new(root, "metadata_match", json_boolean(v.metadata_match));
		json_object_set_new(root, "tensors_ok", json_integer((json_int_t)v.n_tensors_ok));
		for (size_t i = 0; i < v.n_items; i++) {
			const struct qa_verify_item *it = &v.items[i];
			json_t *o = json_object();
			json_object_set_new(o, "name", json_string(it->name));
			json_object_set_new(o, "status", json_string(kind_name(it->kind)));
			if (it->blocks_known) {
				json_object_set_new(o, "divergent_blocks", qa_json_u64(it->divergent_blocks));
				json_object_set_new(o, "first_divergent_block",
				                    it->first_divergent == UINT64_MAX ? json_null() : qa_json_u64(it->first_divergent));
			}
			json_array_append_new(items, o);
		}
		json_object_set_new(root, "differences", items);
		json_object_set_new(root, "verdict", json_string(g.gate.pass ? "pass" : "fail"));
		if (g.policy)
			json_object_set_new(root, "gate", qa_gate_to_json(&g.gate));
		int jr = cli_json_output(root, g.out_path);
		if (jr)
			rc = jr;
	} else {
		if (!v.metadata_match)
			printf("metadata: changed (the bytes before the data section differ)\n");
		for (size_t i = 0; i < v.n_items; i++) {
			const struct qa_verify_item *it = &v.items[i];
			printf("%-14s %s", kind_name(it->kind), it->name);
			if (it->blocks_known && it->divergent_blocks)
				printf(": %" PRIu64 " of %" PRIu64 " blocks differ, first at block %" PRIu64,
				       it->divergent_blocks, it->blocks_compared, it->first_divergent);
			else if (it->kind == QA_VERIFY_MISMATCH)
				printf(": tensor digest differs (the manifest has no block digests)");
			putchar('\n');
		}
		if (ok && gguf_hash)
			printf("%s: OK (%zu tensors and the digest of all tensor data match %s)\n", path, v.n_tensors_ok,
			       mpath);
		else if (ok)
			printf("%s: OK (%zu tensors, file and metadata match %s)\n", path, v.n_tensors_ok, mpath);
		else
			printf("%s: FAILED against %s: %zu difference%s%s%s\n", path, mpath, v.n_items,
			       v.n_items == 1 ? "" : "s", v.metadata_match ? "" : ", metadata changed",
			       v.file_match ? "" : ", file digest differs");
		if (g.policy)
			printf("Policy %s: %s (%zu failing, %zu warned, %zu ignored).\n", g.policy_path,
			       g.gate.pass ? "PASS" : "FAIL", g.gate.counts[QA_ACTION_FAIL],
			       g.gate.counts[QA_ACTION_WARN], g.gate.counts[QA_ACTION_IGNORE]);
		if (cli_flush() != 0)
			rc = QA_EXIT_IO;
	}
	if (rc != QA_EXIT_IO && rc < QA_EXIT_USAGE) {
		char para[512];
		snprintf(para, sizeof para, "%s: %s against %s (%zu tensors match, %zu differences)", path,
		         ok ? "OK" : "FAILED", mpath, v.n_tensors_ok, v.n_items);
		int er = cli_gate_emit(&g, "verify", para, NULL, NULL);
		if (er)
			rc = er;
	}
	cli_gate_free(&g);
	qa_verify_free(&v);
	qa_manifest_free(want);
	qa_manifest_free(got);
	return rc;
}
