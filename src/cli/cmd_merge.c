/*
 * cmd_merge.c - "quantaudit merge PART.json...": join the parts of a sharded
 * diff, shape-swap, verify or hash (one per shard, from --shard K/N) into exactly what the
 * unsharded run gives: the same JSON, report, JUnit, GitHub output and exit
 * status.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "part.h"
#include "policy.h"
#include "report.h"

static const char usage[] =
	"quantaudit merge PART.json... [--json] [-o FILE] [--report FILE.md [--id ID] [--title T] [--plot-format png|svg]\n"
	"                              [--claims FILE.json]] [--policy FILE] [--github] [--junit FILE]";

static void help(void)
{
	printf("usage: %s\n\n"
	       "Merge the parts that 'quantaudit diff --shard K/N', 'quantaudit shape-swap --shard K/N',\n"
	       "'quantaudit verify --shard K/N' (no --report) or 'quantaudit hash --shard K/N' (which\n"
	       "prints the manifest; --json and -o only)\n"
	       "wrote (schema quantaudit.part/1), one per shard, and produce what the unsharded\n"
	       "command produces: the same JSON, report, JUnit file, GitHub output and exit status.\n"
	       "Parts of another run (other inputs, command or shard count), two parts of one shard,\n"
	       "or a missing shard are refused (exit 3, naming the part).  Whole-file digests are\n"
	       "those a shard computed with --file-digests; without one they are null, and the\n"
	       "report says they were not computed.\n\n"
	       "  --json             print the merged JSON (the command's own schema)\n"
	       "  -o FILE            write the JSON to FILE (atomically) instead of standard output\n"
	       "  --report FILE.md   write the command's markdown report (and plots)\n"
	       "  --id ID, --title T, --plot-format F, --claims FILE   as for the command\n"
	       "  --policy FILE      decide what fails from FILE (schema quantaudit.policy/1)\n"
	       "  --github           GitHub Actions output (implied by GITHUB_ACTIONS=true)\n"
	       "  --junit FILE       write a JUnit XML report\n"
	       "  -h, --help         show this help\n\n"
	       "Exit status: the merged run's verdict (0 pass, 1 finding); 3 for refused parts.\n",
	       usage);
}


int cmd_merge(int argc, char **argv)
{
	enum { O_JSON = 256, O_REPORT, O_ID, O_TITLE, O_PLOT, O_CLAIMS, O_POLICY, O_GITHUB, O_JUNIT };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "report", required_argument, NULL, O_REPORT },
		{ "id", required_argument, NULL, O_ID },
		{ "title", required_argument, NULL, O_TITLE },
		{ "plot-format", required_argument, NULL, O_PLOT },
		{ "claims", required_argument, NULL, O_CLAIMS },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "github", no_argument, NULL, O_GITHUB },
		{ "junit", required_argument, NULL, O_JUNIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_gate g;
	memset(&g, 0, sizeof g);
	struct qa_report_opts ro;
	memset(&ro, 0, sizeof ro);
	ro.plot_format = "png";
	bool as_json = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case O_JSON: as_json = true; break;
		case 'o': g.out_path = optarg; as_json = true; break;
		case O_REPORT: ro.path = optarg; break;
		case O_ID: ro.id = optarg; break;
		case O_TITLE: ro.title = optarg; break;
		case O_CLAIMS: ro.claims_path = optarg; break;
		case O_PLOT:
			if (strcmp(optarg, "png") && strcmp(optarg, "svg"))
				return cli_usage_error("merge", usage, "--plot-format is png or svg, not '%s'", optarg);
			ro.plot_format = optarg;
			break;
		case O_POLICY: g.policy_path = optarg; break;
		case O_GITHUB: g.github = true; break;
		case O_JUNIT: g.junit_path = optarg; break;
		case 'h': help(); return QA_EXIT_OK;
		default:
			return cli_usage_error("merge", usage, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	size_t n = (size_t)(argc - optind);
	if (n == 0)
		return cli_usage_error("merge", usage, "need at least one PART.json");
	if ((ro.id || ro.title || ro.claims_path) && !ro.path)
		return cli_usage_error("merge", usage, "--id, --title and --claims need --report");
	int rc = cli_gate_load(&g);
	if (rc)
		return rc;
	json_t **parts = calloc(n, sizeof *parts);
	const char **names = calloc(n, sizeof *names);
	struct qa_part_merged m;
	memset(&m, 0, sizeof m);
	char **fargv = NULL;
	if (!parts || !names) {
		fprintf(stderr, "quantaudit: out of memory\n");
		rc = QA_EXIT_IO;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		names[i] = argv[optind + (int)i];
		json_error_t je;
		parts[i] = json_load_file(names[i], JSON_REJECT_DUPLICATES, &je);
		if (!parts[i]) {
			struct qa_diag d;
			FILE *f = fopen(names[i], "rb");
			if (!f) {
				qa_diag_set(&d, QA_ERR_IO, QA_NO_OFFSET, "cannot open part");
			} else {
				fclose(f);
				qa_diag_set(&d, QA_ERR_FORMAT, je.position > 0 ? (uint64_t)je.position : 0,
				            "part is not valid json: %s", je.text);
			}
			rc = cli_fail(names[i], &d);
			goto done;
		}
	}
	struct qa_diag d;
	qa_diag_clear(&d);
	const char *culprit = names[0];
	if (qa_part_merge(parts, names, n, &m, &culprit, &d)) {
		rc = cli_fail(culprit, &d);
		goto done;
	}
	cli_remote_adopt(m.transfer); /* JSON outputs carry the shards' transfer, as an unsharded run's do */
	if (strcmp(m.command, "hash") == 0) {
		/* the manifest as 'hash' prints it; its exit status is 0 */
		if (ro.path || g.policy_path || g.junit_path) {
			rc = cli_usage_error("merge", usage, "the parts are of 'hash': --report, --policy and --junit do not apply");
			goto done;
		}
		const char *fmt = as_json && !g.out_path ? "json" : m.format;
		if (strcmp(fmt, "default") == 0)
			fmt = g.out_path ? "json" : "table";
		rc = cli_hash_finish(m.manifest, fmt, g.out_path, m.digests, NULL, NULL);
		goto done;
	}
	if (strcmp(m.command, "verify") == 0) {
		if (ro.path) {
			rc = cli_usage_error("merge", usage, "the parts are of 'verify': --report does not apply");
			goto done;
		}
		/* judged as the unsharded run judges (without digests, the file and
		 * metadata are not judged) */
		if (qa_gate_add_verify(&g.gate, g.policy, m.manifest, &m.verify, m.digests, m.file, &d)) {
			rc = cli_fail(culprit, &d);
			goto done;
		}
		rc = cli_verify_finish(&m.verify, false, m.digests, m.file, m.manifest_path, &g, as_json);
		goto done;
	}
	/* the command line of the unsharded run (getopt has moved options before
	 * operands): the audited command's name and options, this command's
	 * options (not the parts), then the audited command's operands (REF
	 * ARTIFACT for diff, the REFs for shape-swap) */
	fargv = calloc((size_t)(m.argc + argc + 1), sizeof *fargv);
	if (!fargv) {
		fprintf(stderr, "quantaudit: out of memory\n");
		rc = QA_EXIT_IO;
		goto done;
	}
	int fargc = 0, n_ops = strcmp(m.command, "diff") == 0 ? 2 : (int)m.n_models;
	int first_op = m.argc - n_ops < 1 ? 1 : m.argc - n_ops;
	for (int i = 0; i < first_op && i < m.argc; i++)
		fargv[fargc++] = m.argv[i];
	for (int i = 1; i < optind; i++)
		fargv[fargc++] = argv[i];
	for (int i = first_op; i < m.argc; i++)
		fargv[fargc++] = m.argv[i];
	const char *note = m.digests ? NULL :
	                   "Note: the whole-file SHA-256s were not computed (shards ran without --file-digests).";
	if (strcmp(m.command, "diff") == 0)
		rc = cli_diff_finish(m.diff, &g, ro.path ? &ro : NULL, as_json, fargc, fargv, note);
	else
		rc = cli_swap_finish(m.swap, (const char *const *)m.labels, m.n_models, &g, ro.path ? &ro : NULL,
		                     as_json, fargc, fargv, note);
done:
	free(fargv);
	qa_part_merged_free(&m);
	for (size_t i = 0; parts && i < n; i++)
		json_decref(parts[i]);
	free(parts);
	free(names);
	cli_gate_free(&g);
	return rc;
}
