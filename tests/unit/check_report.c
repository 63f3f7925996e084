/*
 * check_report.c - Check suite for report.c and plot.c: markdown audit
 * reports, verdict paragraphs, the claims check and the gnuplot runner.
 *
 * Results are built by hand, field by field, the way compare.c fills them,
 * so the suite needs no model files.  Reports are written into a fresh
 * mkdtemp directory per test and checked for structure (every section,
 * header fields, one row per tensor), for determinism (two writes are equal
 * once the Date line is removed), for claims that hold or not by
 * construction, and for a clean degradation when gnuplot is missing.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compare.h"
#include "err.h"
#include "plot.h"
#include "report.h"
#include "testutil.h"
#include "types.h"

/* ---- fixtures ------------------------------------------------------------ */

static char tmpdir[256];
static const char *saved_gnuplot; /* QUANTAUDIT_GNUPLOT as the suite found it */

static void setup(void)
{
	if (saved_gnuplot)
		setenv("QUANTAUDIT_GNUPLOT", saved_gnuplot, 1);
	else
		unsetenv("QUANTAUDIT_GNUPLOT");
	snprintf(tmpdir, sizeof tmpdir, "%s", "/tmp/check_report.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char p[1024];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static void teardown(void)
{
	rm_tree(tmpdir);
}

static const char *in_tmp(const char *name)
{
	static char buf[4][1024];
	static int slot;
	char *b = buf[slot++ & 3];
	snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
	return b;
}

static size_t files_in_tmp(void)
{
	size_t n = 0;
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static char *slurp_str(const char *path)
{
	size_t len = 0;
	char *p = tu_slurp(path, &len);
	if (!p)
		return NULL;
	char *s = realloc(p, len + 1);
	if (!s) {
		free(p);
		return NULL;
	}
	s[len] = '\0';
	return s;
}

/* The text without its "Date: " line(s). */
static char *strip_date(const char *s)
{
	char *out = malloc(strlen(s) + 1);
	size_t k = 0;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) + 1 : strlen(s);
		if (strncmp(s, "Date: ", 6) != 0) {
			memcpy(out + k, s, n);
			k += n;
		}
		s += n;
	}
	out[k] = '\0';
	return out;
}

static size_t count_str(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	memcpy(p, s, n);
	return p;
}

/* ---- hand-made diff results ---------------------------------------------- */

enum variant {
	V_PASS,        /* every tensor identical, recipe matches */
	V_DIVERGENT,   /* blk.1.ffn_up diverges in block 171 only */
	V_SWAPPED,     /* blk.0.ffn_down is layout-swap, blk.1.attn_q transposed */
	V_REQUANT,     /* every quantized tensor diverges, errors within 25 %: different quantizer */
	V_PURE,        /* recipe deviates, pure q4_K matches */
	V_MISSING      /* one tensor missing, one extra */
};

static const char *const classes[] = { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
	                               "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down" };
#define N_CLASSES 9

static void set_div(struct qa_diff_tensor *t, uint64_t first, uint64_t count)
{
	t->verdict = QA_VERDICT_DIVERGENT;
	t->layout = -1;
	t->divergence = calloc((size_t)(t->blocks / 8 + 1), 1);
	for (uint64_t b = first; b < first + count && b < t->blocks; b++)
		t->divergence[b / 8] |= (uint8_t)(1u << (b % 8));
	t->divergent_blocks = count;
	t->first_divergent = first;
}

/* A qwen2-0.5B-shaped model with n_layers layers. */
static struct qa_diff_result *make_diff(int n_layers, enum variant v)
{
	static const uint64_t in[N_CLASSES] = { 896, 896, 896, 896, 896, 896, 896, 896, 4864 };
	static const uint64_t out[N_CLASSES] = { 1, 896, 128, 128, 896, 1, 4864, 4864, 896 };
	struct qa_diff_result *r = calloc(1, sizeof *r);
	r->reference_path = dupstr("/models/qwen2-0.5b/model.safetensors");
	r->artifact_path = dupstr("/models/qwen2-0.5b-Q4_K_M.gguf");
	r->reference_size = 988097824;
	r->artifact_size = 397808192;
	for (int i = 0; i < QA_SHA256_LEN; i++) {
		r->reference_sha256[i] = (uint8_t)(0x10 + i);
		r->artifact_sha256[i] = (uint8_t)(0xa0 + i);
	}
	r->has_file_type = true;
	r->file_type = 15;
	snprintf(r->arch, sizeof r->arch, "%s", "qwen2");
	size_t cap = (size_t)n_layers * N_CLASSES + 3;
	r->tensors = calloc(cap, sizeof *r->tensors);
	size_t n = 0;
	for (int l = -1; l <= n_layers; l++) {
		for (int c = 0; c < N_CLASSES; c++) {
			struct qa_diff_tensor *t = &r->tensors[n];
			char name[64];
			if (l == -1 && c > 0)
				break;
			if (l == n_layers && c > 0)
				break;
			if (l == -1)
				snprintf(name, sizeof name, "%s", "token_embd.weight");
			else if (l == n_layers)
				snprintf(name, sizeof name, "%s", "output_norm.weight");
			else
				snprintf(name, sizeof name, "blk.%d.%s.weight", l, classes[c]);
			bool vec = l == n_layers || (l >= 0 && out[c] == 1);
			t->name = dupstr(name);
			t->reference_name = dupstr(name);
			t->layer = l >= 0 && l < n_layers ? l : -1;
			t->n_dims = vec ? 1 : 2;
			t->ne[0] = l == -1 ? 896 : in[c];
			t->ne[1] = l == -1 ? 151936 : vec ? 1 : out[c];
			t->ne[2] = t->ne[3] = 1;
			t->quantized = !vec;
			t->type = vec ? QA_TYPE_F32 : (l == -1 || c == 8) ? QA_TYPE_Q6_K : QA_TYPE_Q4_K;
			t->blocks = (t->ne[0] * t->ne[1] + 255) / 256;
			t->nbytes = t->blocks * 144;
			t->verdict = QA_VERDICT_IDENTICAL;
			t->layout = QA_LAYOUT_OUT_IN;
			t->first_divergent = QA_NO_BLOCK;
			t->has_error = true;
			t->rmse = t->requant_rmse = vec ? 0.0 : 1.5e-3 * (1.0 + 0.01 * (l + 1));
			t->max_abs = t->requant_max_abs = vec ? 0.0 : 1.0e-2;
			t->in_plan = true;
			t->recipe_type = t->type;
			snprintf(t->rule, sizeof t->rule, "%s", vec ? "1-d tensor: kept" : "default type");
			n++;
		}
	}
	r->n = n;
	struct qa_diff_tensor *up1 = NULL, *down0 = NULL, *q1 = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(r->tensors[i].name, "blk.1.ffn_up.weight") == 0)
			up1 = &r->tensors[i];
		if (strcmp(r->tensors[i].name, "blk.0.ffn_down.weight") == 0)
			down0 = &r->tensors[i];
		if (strcmp(r->tensors[i].name, "blk.1.attn_q.weight") == 0)
			q1 = &r->tensors[i];
	}
	switch (v) {
	case V_PASS:
		break;
	case V_DIVERGENT:
		set_div(up1, 171, 1);
		up1->rmse *= 1.01;
		break;
	case V_SWAPPED:
		down0->verdict = QA_VERDICT_LAYOUT_SWAP;
		down0->layout = QA_LAYOUT_IN_OUT;
		down0->has_error = false;
		q1->verdict = QA_VERDICT_TRANSPOSED;
		q1->layout = QA_LAYOUT_TRANSPOSED;
		q1->has_error = false;
		break;
	case V_REQUANT:
		for (size_t i = 0; i < n; i++)
			if (r->tensors[i].quantized) {
				set_div(&r->tensors[i], 0, r->tensors[i].blocks);
				r->tensors[i].rmse = r->tensors[i].requant_rmse * 0.93;
			}
		r->different_quantizer = true;
		break;
	case V_PURE:
		for (size_t i = 0; i < n; i++)
			if (r->tensors[i].quantized && r->tensors[i].type == QA_TYPE_Q6_K) {
				r->tensors[i].type = QA_TYPE_Q4_K;
				r->recipe_deviations++;
			}
		r->pure_type = QA_TYPE_Q4_K;
		r->pure_matches = true;
		break;
	case V_MISSING:
		down0->verdict = QA_VERDICT_MISSING;
		down0->layout = -1;
		down0->has_error = false;
		q1->verdict = QA_VERDICT_EXTRA;
		q1->layout = -1;
		q1->has_error = false;
		q1->in_plan = false;
		break;
	}
	for (size_t i = 0; i < n; i++) {
		r->counts[r->tensors[i].verdict]++;
		if (r->tensors[i].quantized) {
			r->quantized_tensors++;
			r->quantized_divergent += r->tensors[i].verdict == QA_VERDICT_DIVERGENT;
		}
	}
	r->recipe_name = "Q4_K_M";
	r->recipe_matches = r->recipe_deviations == 0;
	r->pass = r->counts[QA_VERDICT_IDENTICAL] == r->n;
	return r;
}

static void free_diff(struct qa_diff_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->tensors[i].name);
		free(r->tensors[i].reference_name);
		free(r->tensors[i].divergence);
	}
	free(r->tensors);
	free(r->reference_path);
	free(r->artifact_path);
	free(r);
}

/* ---- hand-made shape-swap results ---------------------------------------- */

/* n_layers layers of the seven 2-D weights of a model with the given dims;
 * the measurement follows the row-split prediction unless lie_at names a
 * tensor whose measurement is flipped. */
static struct qa_swap_result *make_swap(const char *path, int n_layers, uint64_t hid, uint64_t ffn, uint64_t kv,
                                        const char *lie_at)
{
	static const char *const cls[7] = { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
		                            "ffn_down" };
	uint64_t in[7] = { hid, hid, hid, hid, hid, hid, ffn }, out[7] = { hid, kv, kv, hid, ffn, ffn, hid };
	struct qa_swap_result *r = calloc(1, sizeof *r);
	r->reference_path = dupstr(path);
	r->reference_size = 1000;
	r->type = QA_TYPE_Q4_K;
	r->block_elems = 256;
	snprintf(r->arch, sizeof r->arch, "%s", "qwen2");
	r->tensors = calloc((size_t)n_layers * 7 + 1, sizeof *r->tensors);
	for (int l = 0; l < n_layers; l++)
		for (int c = 0; c < 7; c++) {
			struct qa_swap_tensor *t = &r->tensors[r->n++];
			char name[64];
			snprintf(name, sizeof name, "blk.%d.%s.weight", l, cls[c]);
			t->name = dupstr(name);
			t->in = in[c];
			t->out = out[c];
			t->layer = l;
			uint64_t bo = (t->in + 255) / 256, bi = (t->out + 255) / 256;
			t->blocks[0] = t->out * bo;
			t->blocks[1] = t->in * bi;
			t->bytes[0] = t->blocks[0] * 144;
			t->bytes[1] = t->blocks[1] * 144;
			t->predicted_identical = t->in == t->out || (t->in % 256 == 0 && t->out % 256 == 0);
			t->identical = t->predicted_identical;
			if (lie_at && strcmp(lie_at, name) == 0)
				t->identical = !t->identical;
			t->divergent_blocks = t->identical ? 0 : t->blocks[0];
			t->first_divergent = t->identical ? QA_NO_BLOCK : 0;
			if (t->identical)
				r->n_identical++;
			else
				r->n_divergent++;
			if (t->identical != t->predicted_identical)
				r->n_mispredicted++;
			if (t->bytes[1] > t->bytes[0])
				r->excess_bytes += (int64_t)t->bytes[1] - (int64_t)t->bytes[0];
		}
	return r;
}

static void free_swap(struct qa_swap_result *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->tensors[i].name);
	free(r->tensors);
	free(r->reference_path);
	free(r);
}

static const char *const av_diff[] = { "diff", "/models/qwen2-0.5b/model.safetensors",
	                               "/models/it's a model.gguf", "--report", "r.md" };

static struct qa_report_opts diff_opts(const char *path, const char *fmt)
{
	struct qa_report_opts o;
	memset(&o, 0, sizeof o);
	o.path = path;
	o.plot_format = fmt;
	o.argc = 5;
	o.argv = av_diff;
	o.version = "quantaudit 0.1.0 (test)";
	return o;
}

/* ---- core: diff report structure ------------------------------------------ */

static const char *const diff_sections[] = {
	"\n## TL;DR\n", "\n## Inputs\n", "\n## Mechanism\n", "\n## Findings per tensor class\n",
	"\n## Per-tensor results\n", "\n## Recipe check\n", "\n## Plots\n", "\n## Falsifier\n",
	"\n## Environment\n", "\n## Changelog\n", "\nDocument ID: ", "\nquantaudit version: quantaudit 0.1.0 (test)",
	"\nStatus: ", "\nDate: ",
};

static const struct {
	enum variant v;
	int layers;
	const char *status;
} diff_cases[] = {
	{ V_PASS, 2, "\nStatus: PASS" },
	{ V_DIVERGENT, 2, "\nStatus: FAIL" },
	{ V_SWAPPED, 12, "\nStatus: FAIL" },
	{ V_REQUANT, 3, "\nStatus: FAIL" },
	{ V_PURE, 2, "\nStatus: PASS" },
	{ V_MISSING, 9, "\nStatus: FAIL" },
};

START_TEST(test_diff_structure)
{
	setenv("QUANTAUDIT_GNUPLOT", "/nonexistent/gnuplot", 1);
	struct qa_diff_result *r = make_diff(diff_cases[_i].layers, diff_cases[_i].v);
	struct qa_report_opts o = diff_opts(in_tmp("r.md"), "png");
	o.date = "2024-05-06";
	char note[256];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_diff_write(r, &o, note, sizeof note, &d), QA_OK);
	char *md = slurp_str(o.path);
	ck_assert_ptr_nonnull(md);
	ck_assert(strncmp(md, "# ", 2) == 0);
	for (size_t k = 0; k < sizeof diff_sections / sizeof diff_sections[0]; k++)
		ck_assert_msg(strstr(md, diff_sections[k]), "missing %s", diff_sections[k]);
	ck_assert(strstr(md, "\nDate: 2024-05-06\n"));
	ck_assert(strstr(md, diff_cases[_i].status));
	/* the default ID is derived from the artifact's digest */
	ck_assert(strstr(md, "\nDocument ID: AUDIT-DIFF-A0A1A2A3"));
	/* SHA-256 of both inputs */
	ck_assert(strstr(md, "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"));
	ck_assert(strstr(md, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"));
	/* exactly one row per tensor in the per-tensor section */
	char *sec = strstr(md, "\n## Per-tensor results\n"), *end = strstr(md, "\n## Recipe check\n");
	ck_assert(sec && end && sec < end);
	*end = '\0';
	for (size_t i = 0; i < r->n; i++) {
		char row[128];
		snprintf(row, sizeof row, "\n| `%s` | %s |", r->tensors[i].name, qa_type_name(r->tensors[i].type));
		ck_assert_msg(count_str(sec, row) == 1, "row for %s", r->tensors[i].name);
	}
	*end = '\n';
	/* sub-headings per layer only with more than 8 layers */
	ck_assert_int_eq(strstr(md, "\n### Layer 0\n") != NULL, diff_cases[_i].layers > 8);
	/* findings per class: one row per class */
	for (int c = 0; c < N_CLASSES; c++) {
		char row[64];
		snprintf(row, sizeof row, "\n| `%s` | %d |", classes[c], diff_cases[_i].layers);
		ck_assert_msg(strstr(md, row), "class row %s", classes[c]);
	}
	/* the TL;DR is the verdict */
	char v[4096];
	qa_report_diff_verdict(r, v, sizeof v);
	ck_assert(strncmp(strstr(md, "## TL;DR\n\n") + 10, v, 4) == 0);
	/* the falsifier is the shell-quoted command */
	ck_assert(strstr(md, "\nquantaudit diff /models/qwen2-0.5b/model.safetensors '/models/it'\\''s a model.gguf' "
	                     "--report r.md\n"));
	free(md);
	free_diff(r);
}
END_TEST

static const struct {
	enum variant v;
	const char *want[4];
} verdict_cases[] = {
	{ V_PASS, { "PASS: all 20 tensors are byte-identical to ggml's reference quantization",
	            "every tensor has the type llama.cpp's Q4_K_M plan gives", NULL } },
	{ V_DIVERGENT, { "FAIL: 1 of 20 tensors diverges: blk.1.ffn_up.weight has 1 divergent block of 17024 (block 171)",
	                 "The other 19 are byte-identical", "Q4_K_M plan", NULL } },
	{ V_SWAPPED, { "blk.0.ffn_down.weight", "shape-swap defect", "transposed export", "blk.1.attn_q.weight" } },
	{ V_REQUANT, { "FAIL: 15 of 20 tensors diverge", "a different quantizer (for example importance-weighted), not damage",
	               "The other 5 are byte-identical", NULL } },
	{ V_PURE, { "PASS", "deviate from llama.cpp's Q4_K_M plan", "pure q4_K", NULL } },
	{ V_MISSING, { "is missing from the artifact: blk.0.ffn_down.weight", "has no reference tensor: blk.1.attn_q.weight",
	               NULL } },
};

START_TEST(test_diff_verdict)
{
	struct qa_diff_result *r = make_diff(2, verdict_cases[_i].v);
	char v[4096];
	qa_report_diff_verdict(r, v, sizeof v);
	for (int k = 0; k < 4 && verdict_cases[_i].want[k]; k++)
		ck_assert_msg(strstr(v, verdict_cases[_i].want[k]), "want \"%s\" in \"%s\"", verdict_cases[_i].want[k], v);
	ck_assert(strchr(v, '\n') == NULL);
	if (verdict_cases[_i].v != V_REQUANT)
		ck_assert(strstr(v, "different quantizer") == NULL);
	free_diff(r);
}
END_TEST

START_TEST(test_diff_deterministic)
{
	struct qa_diff_result *r = make_diff(10, (enum variant)_i);
	struct qa_report_opts o = diff_opts(in_tmp("det.md"), "png");
	char note[256];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_diff_write(r, &o, note, sizeof note, &d), QA_OK);
	char *a = slurp_str(o.path);
	size_t pa_len = 0, pb_len = 0;
	char *pa = tu_slurp(in_tmp("det-rmse.png"), &pa_len);
	o.date = "1999-12-31";
	ck_assert_int_eq(qa_report_diff_write(r, &o, note, sizeof note, &d), QA_OK);
	char *b = slurp_str(o.path);
	char *pb = tu_slurp(in_tmp("det-rmse.png"), &pb_len);
	ck_assert(strstr(b, "\nDate: 1999-12-31\n"));
	char *sa = strip_date(a), *sb = strip_date(b);
	ck_assert_str_eq(sa, sb);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(pa != NULL, pb != NULL);
	if (pa) {
		ck_assert_uint_eq(pa_len, pb_len);
		ck_assert(memcmp(pa, pb, pa_len) == 0);
	}
	/* no temporary file is left behind */
	DIR *dir = opendir(tmpdir);
	struct dirent *e;
	while ((e = readdir(dir)))
		ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "stray %s", e->d_name);
	closedir(dir);
	free(a);
	free(b);
	free(sa);
	free(sb);
	free(pa);
	free(pb);
	free_diff(r);
}
END_TEST

/* ---- core: plots ---------------------------------------------------------- */

static const struct {
	const char *fmt;
	const char *sig;
	size_t sig_len;
} plot_fmts[] = {
	{ "png", "\x89PNG\r\n\x1a\n", 8 },
	{ "svg", "<?xml", 5 },
};

START_TEST(test_plots_written)
{
	if (!qa_plot_available())
		return; /* nothing to check without gnuplot */
	struct qa_diff_result *r = make_diff(4, V_DIVERGENT);
	struct qa_report_opts o = diff_opts(in_tmp("p.md"), plot_fmts[_i].fmt);
	char note[256];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_diff_write(r, &o, note, sizeof note, &d), QA_OK);
	ck_assert_str_eq(note, " and 3 plots");
	char *md = slurp_str(o.path);
	static const char *const what[] = { "rmse", "divergence", "types" };
	for (int k = 0; k < 3; k++) {
		char name[64];
		snprintf(name, sizeof name, "p-%s.%s", what[k], plot_fmts[_i].fmt);
		size_t len = 0;
		char *img = tu_slurp(in_tmp(name), &len);
		ck_assert_msg(img != NULL, "%s missing", name);
		ck_assert_uint_gt(len, plot_fmts[_i].sig_len);
		ck_assert(memcmp(img, plot_fmts[_i].sig, plot_fmts[_i].sig_len) == 0 ||
		          (strcmp(plot_fmts[_i].fmt, "svg") == 0 && memcmp(img, "<svg", 4) == 0));
		if (strcmp(plot_fmts[_i].fmt, "svg") == 0) {
			char *text = slurp_str(in_tmp(name));
			ck_assert(strstr(text, "Date") == NULL && strstr(text, "date") == NULL);
			free(text);
		}
		char link[96];
		snprintf(link, sizeof link, "](%s)", name);
		ck_assert(strstr(md, link));
		free(img);
	}
	ck_assert(strstr(md, "plot not generated") == NULL);
	free(md);
	free_diff(r);
}
END_TEST

START_TEST(test_plot_run_direct)
{
	if (!qa_plot_available())
		return;
	bool ran = false;
	struct qa_diag d;
	const char *out = in_tmp("direct.png");
	ck_assert_int_eq(qa_plot_run("png", "plot x title \"x\"\n", out, &ran, &d), QA_OK);
	ck_assert(ran);
	/* a broken script is an I/O error with gnuplot's message, and leaves nothing */
	ck_assert_int_eq(qa_plot_run("png", "plot $nosuchblock using 1:2\n", in_tmp("bad.png"), &ran, &d), QA_ERR_IO);
	ck_assert(!ran);
	ck_assert(access(in_tmp("bad.png"), F_OK) != 0);
	ck_assert_uint_eq(files_in_tmp(), 1);
}
END_TEST

/* ---- core: shape-swap report and claims ----------------------------------- */

static const struct {
	const char *json;   /* one claim */
	bool holds;
	const char *measured;
} claim_cases[] = {
	/* Qwen ffn_down [in 4864, out 896]: +2432 blocks x 144 bytes */
	{ "{\"id\":\"C1\",\"text\":\"t\",\"model\":\"Qwen\",\"class\":\"ffn_down\",\"excess_bytes\":350208}", true,
	  "2 tensors: excess +350208 B" },
	{ "{\"id\":\"C1\",\"text\":\"t\",\"model\":\"Qwen\",\"class\":\"ffn_down\",\"excess_bytes\":350207}", false,
	  "2 tensors: excess +350208 B" },
	{ "{\"id\":\"C1\",\"text\":\"t\",\"model\":\"Qwen\",\"tensor\":\"blk.0.ffn_up.weight\",\"excess_bytes\":-350208,"
	  "\"identical\":false}", true, "1 tensor: excess -350208 B; 0 identical" },
	{ "{\"id\":\"C1\",\"text\":\"t\",\"model\":\"*\",\"class\":\"attn_q\",\"identical\":true}", true,
	  "4 tensors: 4 identical" },
	/* attn_k is harmless in Llama (2048 x 512) but not in Qwen (896 x 128) */
	{ "{\"id\":\"C1\",\"text\":\"t\",\"model\":\"*\",\"class\":\"attn_k\",\"identical\":true}", false,
	  "4 tensors: 2 identical" },
	{ "{\"id\":\"C1\",\"text\":\"t\",\"model\":\"Llama\",\"identical\":true,\"excess_bytes\":0}", true,
	  "14 tensors: excess +0 B; 14 identical" },
	{ "{\"id\":\"C1\",\"text\":\"t\",\"model\":\"Phi\",\"identical\":true}", false, "no tensor selected" },
	{ "{\"id\":\"C1\",\"text\":\"t\",\"model\":\"Qwen\",\"tensor\":\"blk.9.ffn_up.weight\",\"identical\":true}", false,
	  "no tensor selected" },
};

static struct qa_swap_result *qwen, *llama;
static const struct qa_swap_result *two[2];
static const char *const two_labels[2] = { "Qwen", "Llama" };

static void swap_setup(void)
{
	setup();
	qwen = make_swap("/m/qwen/model.safetensors", 2, 896, 4864, 128, NULL);
	llama = make_swap("/m/llama/model.safetensors", 2, 2048, 8192, 512, NULL);
	two[0] = qwen;
	two[1] = llama;
}

static void swap_teardown(void)
{
	free_swap(qwen);
	free_swap(llama);
	teardown();
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return false;
	size_t n = strlen(text);
	bool ok = fwrite(text, 1, n, f) == n;
	return fclose(f) == 0 && ok;
}

START_TEST(test_swap_claims)
{
	setenv("QUANTAUDIT_GNUPLOT", "/nonexistent/gnuplot", 1);
	char json[1024];
	snprintf(json, sizeof json, "{\"audit\":\"AUDIT-Q4K-SHAPE-001\",\"claims\":[%s]}", claim_cases[_i].json);
	ck_assert(write_file(in_tmp("claims.json"), json));
	static const char *const av[] = { "shape-swap", "--claims", "claims.json" };
	struct qa_report_opts o;
	memset(&o, 0, sizeof o);
	o.path = in_tmp("s.md");
	o.plot_format = "svg";
	o.argc = 3;
	o.argv = av;
	o.version = "quantaudit 0.1.0 (test)";
	o.claims_path = in_tmp("claims.json");
	char note[256];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_swap_write(two, two_labels, 2, &o, note, sizeof note, &d), QA_OK);
	char *md = slurp_str(o.path);
	ck_assert_ptr_nonnull(md);
	ck_assert(strstr(md, "\n## Claims checked\n"));
	char row[256];
	snprintf(row, sizeof row, "\n| C1 | t | %s | %s | ", claim_cases[_i].measured,
	         claim_cases[_i].holds ? "HOLDS" : "DOES NOT HOLD");
	ck_assert_msg(strstr(md, row), "want row %s", row);
	ck_assert_int_eq(strstr(note, "do not hold") != NULL || strstr(note, "does not hold") != NULL,
	                 !claim_cases[_i].holds);
	size_t nc = 0, nf = 9;
	ck_assert_int_eq(qa_report_claims_check(two, two_labels, 2, o.claims_path, &nc, &nf, &d), QA_OK);
	ck_assert_uint_eq(nc, 1);
	ck_assert_uint_eq(nf, claim_cases[_i].holds ? 0 : 1);
	free(md);
}
END_TEST

static const char *const swap_sections[] = {
	"\n## TL;DR\n", "\n## Inputs\n", "\n## Mechanism\n", "\n## Findings per tensor class\n",
	"\n## Per-tensor results\n", "\n### Qwen\n", "\n### Llama\n", "\n## Claims checked\n", "\n## Plots\n",
	"\n## Falsifier\n", "\n## Environment\n", "\n## Changelog\n", "\nDocument ID: AUDIT-SWAP-", "\nStatus: CONFIRMED",
	"\nDate: ",
	/* the row-split numbers of Qwen's ffn_down */
	"out,in = 896 rows x ceil(4864/256) = 896 x 19 = 17024 blocks, in,out = 4864 rows x ceil(896/256) = 4864 x 4 = "
	"19456 blocks: predicted divergent, +2432 blocks x 144 bytes = +350208 bytes per tensor",
	"\n| `blk.0.ffn_down.weight` | `ffn_down` | [4864, 896] | 17024 | 19456 | 2451456 | 2801664 | +350208 | no | "
	"divergent | 0 |\n",
	"\n| Qwen | `ffn_down` | 2 | 0 | 128 | 0 | 2 | 0 | 34048 | 38912 | +700416 |\n",
};

START_TEST(test_swap_structure)
{
	setenv("QUANTAUDIT_GNUPLOT", "/nonexistent/gnuplot", 1);
	struct qa_report_opts o;
	memset(&o, 0, sizeof o);
	o.path = in_tmp("s.md");
	o.version = "quantaudit 0.1.0 (test)";
	char note[256];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_swap_write(two, two_labels, 2, &o, note, sizeof note, &d), QA_OK);
	char *md = slurp_str(o.path);
	for (size_t k = 0; k < sizeof swap_sections / sizeof swap_sections[0]; k++)
		ck_assert_msg(strstr(md, swap_sections[k]), "missing %s", swap_sections[k]);
	ck_assert(strstr(md, "WARNING") == NULL);
	ck_assert_uint_eq(count_str(md, "(plot not generated: gnuplot not found; set QUANTAUDIT_GNUPLOT)"), 1);
	char v[4096];
	qa_report_swap_verdict(two, two_labels, 2, v, sizeof v);
	ck_assert(strncmp(v, "CONFIRMED: all 28 2-D weights of 2 models", 40) == 0);
	/* determinism */
	ck_assert_int_eq(qa_report_swap_write(two, two_labels, 2, &o, note, sizeof note, &d), QA_OK);
	char *again = slurp_str(o.path);
	char *sa = strip_date(md), *sb = strip_date(again);
	ck_assert_str_eq(sa, sb);
	free(sa);
	free(sb);
	free(again);
	free(md);
}
END_TEST

START_TEST(test_swap_mispredicted)
{
	struct qa_swap_result *bad = make_swap("/m/q.safetensors", 2, 896, 4864, 128, "blk.1.attn_k.weight");
	const struct qa_swap_result *one[1] = { bad };
	const char *const lab[1] = { "Qwen" };
	char v[4096];
	qa_report_swap_verdict(one, lab, 1, v, sizeof v);
	ck_assert(strncmp(v, "FALSIFIED: 1 of 14", 18) == 0);
	ck_assert(strstr(v, "blk.1.attn_k.weight [in 896, out 128] was predicted divergent but measured identical"));
	setenv("QUANTAUDIT_GNUPLOT", "/nonexistent/gnuplot", 1);
	struct qa_report_opts o;
	memset(&o, 0, sizeof o);
	o.path = in_tmp("m.md");
	char note[256];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_swap_write(one, lab, 1, &o, note, sizeof note, &d), QA_OK);
	char *md = slurp_str(o.path);
	ck_assert(strstr(md, "\nStatus: FALSIFIED"));
	ck_assert(strstr(md, "\n> **WARNING: the mechanism is falsified.**"));
	ck_assert(strstr(md, "(CONTRADICTS THE PREDICTION)"));
	ck_assert(strstr(md, "| no | divergent | 0 |") != NULL);
	ck_assert(strstr(md, "| yes | divergent (WRONG) | - |") != NULL);
	free(md);
	free_swap(bad);
}
END_TEST

/* ---- limits ---------------------------------------------------------------- */

START_TEST(test_no_gnuplot)
{
	setenv("QUANTAUDIT_GNUPLOT", "/nonexistent/dir/gnuplot", 1);
	ck_assert(!qa_plot_available());
	ck_assert_str_eq(qa_plot_program(), "/nonexistent/dir/gnuplot");
	bool ran = true;
	struct qa_diag d;
	ck_assert_int_eq(qa_plot_run("png", "plot x\n", in_tmp("x.png"), &ran, &d), QA_OK);
	ck_assert(!ran);
	struct qa_diff_result *r = make_diff(3, V_DIVERGENT);
	struct qa_report_opts o = diff_opts(in_tmp("n.md"), "png");
	char note[256];
	ck_assert_int_eq(qa_report_diff_write(r, &o, note, sizeof note, &d), QA_OK);
	ck_assert_str_eq(note, "; gnuplot not found, plots skipped");
	char *md = slurp_str(o.path);
	ck_assert_uint_eq(count_str(md, "\n(plot not generated: gnuplot not found; set QUANTAUDIT_GNUPLOT)\n"), 3);
	ck_assert(strstr(md, "![") == NULL);
	ck_assert_uint_eq(files_in_tmp(), 1); /* the report only */
	free(md);
	free_diff(r);
}
END_TEST

START_TEST(test_empty_results)
{
	setenv("QUANTAUDIT_GNUPLOT", "/nonexistent/gnuplot", 1);
	struct qa_diff_result r;
	memset(&r, 0, sizeof r);
	r.pass = true;
	char v[512];
	qa_report_diff_verdict(&r, v, sizeof v);
	ck_assert(strncmp(v, "PASS", 4) == 0);
	struct qa_report_opts o = diff_opts(in_tmp("e.md"), NULL);
	o.argc = 0;
	o.argv = NULL;
	o.version = NULL;
	char note[64];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_diff_write(&r, &o, note, sizeof note, &d), QA_OK);
	char *md = slurp_str(o.path);
	ck_assert(strstr(md, "\n## Falsifier\n") && strstr(md, "\nquantaudit\n"));
	free(md);
	o.path = in_tmp("e2.md");
	ck_assert_int_eq(qa_report_swap_write(NULL, NULL, 0, &o, note, sizeof note, &d), QA_OK);
	qa_report_swap_verdict(NULL, NULL, 0, v, sizeof v);
	ck_assert(v[0] != '\0');
}
END_TEST

static const size_t caps[] = { 1, 2, 16, 100, 4096 };

START_TEST(test_verdict_truncation)
{
	struct qa_diff_result *r = make_diff(2, V_DIVERGENT);
	char full[4096], buf[4096];
	qa_report_diff_verdict(r, full, sizeof full);
	memset(buf, 'x', sizeof buf);
	qa_report_diff_verdict(r, buf, caps[_i]);
	ck_assert_uint_lt(strlen(buf), caps[_i]);
	ck_assert(strncmp(buf, full, strlen(buf)) == 0);
	ck_assert(buf[caps[_i] - 1] == '\0' || strlen(buf) < caps[_i] - 1);
	qa_report_diff_verdict(r, NULL, 0);
	qa_report_swap_verdict(NULL, NULL, 0, buf, caps[_i]);
	ck_assert_uint_lt(strlen(buf), caps[_i]);
	free_diff(r);
}
END_TEST

START_TEST(test_unwritable)
{
	struct qa_diff_result *r = make_diff(1, V_PASS);
	struct qa_report_opts o = diff_opts(in_tmp("no/such/dir/r.md"), "png");
	char note[64];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_diff_write(r, &o, note, sizeof note, &d), QA_ERR_IO);
	ck_assert_int_eq(d.code, QA_ERR_IO);
	o.path = tmpdir; /* a directory */
	ck_assert_int_eq(qa_report_diff_write(r, &o, note, sizeof note, &d), QA_ERR_IO);
	o.path = in_tmp("ok.md");
	o.plot_format = "jpeg";
	ck_assert_int_eq(qa_report_diff_write(r, &o, note, sizeof note, &d), QA_ERR_USAGE);
	ck_assert_uint_eq(files_in_tmp(), 0);
	free_diff(r);
}
END_TEST

START_TEST(test_hostile_names)
{
	setenv("QUANTAUDIT_GNUPLOT", "/nonexistent/gnuplot", 1);
	struct qa_diff_result *r = make_diff(2, V_DIVERGENT);
	free(r->tensors[1].name);
	r->tensors[1].name = dupstr("blk.0.evil|name`\n# injected heading\nEOD\n");
	free(r->tensors[0].name);
	r->tensors[0].name = dupstr("a\\b\x1b[31mred\xff\xc2\x85*x*");
	struct qa_report_opts o = diff_opts(in_tmp("h.md"), "png");
	o.title = "title\n## fake \\ *section* [x](y)\x07";
	char note[64];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_diff_write(r, &o, note, sizeof note, &d), QA_OK);
	char *md = slurp_str(o.path);
	ck_assert(strstr(md, "\n# injected") == NULL);
	ck_assert(strstr(md, "\n## fake") == NULL);
	ck_assert(strstr(md, "\nEOD") == NULL);
	/* escape.h's policies: in a code span control bytes, C1 controls and
	 * invalid UTF-8 are \xNN, a backslash \\, a backtick ' and a pipe \|;
	 * in prose the markdown characters get a backslash too */
	ck_assert(strstr(md, "`blk.0.evil\\|name'\\x0a# injected heading\\x0aEOD\\x0a`"));
	ck_assert(strstr(md, "`a\\\\b\\x1b[31mred\\xff\\xc2\\x85*x*`"));
	ck_assert(strstr(md, "title\\x0a\\#\\# fake \\\\ \\*section\\* \\[x\\](y)\\x07"));
	ck_assert(strchr(md, '\x1b') == NULL && strchr(md, '\x07') == NULL);
	ck_assert(strstr(md, "?") == NULL);
	char v[2048];
	qa_report_diff_verdict(r, v, sizeof v);
	ck_assert(strchr(v, '\n') == NULL);
	free(md);
	free_diff(r);
}
END_TEST

START_TEST(test_plot_label)
{
	char buf[16];
	ck_assert_str_eq(qa_plot_label("a\"b\\c\n$d", buf, sizeof buf), "a_b_c__d");
	ck_assert_str_eq(qa_plot_label("0123456789abcdefghij", buf, 8), "0123456");
	ck_assert_str_eq(qa_plot_label(NULL, buf, sizeof buf), "");
	ck_assert(qa_plot_format_ok("png") && qa_plot_format_ok("svg"));
	ck_assert(!qa_plot_format_ok("PNG") && !qa_plot_format_ok(NULL) && !qa_plot_format_ok("pdf"));
	unsetenv("QUANTAUDIT_GNUPLOT");
	ck_assert(qa_plot_program()[0] != '\0');
	setenv("QUANTAUDIT_GNUPLOT", "", 1);
	ck_assert(qa_plot_program()[0] != '\0');
}
END_TEST

/* ---- malformed: claims files --------------------------------------------- */

static const struct {
	const char *json;
	bool has_offset; /* a JSON syntax error: the offset is known */
} bad_claims[] = {
	{ "", true },
	{ "{", true },
	{ "{\"claims\":[] x", true },
	{ "{\"claims\":[]} trailing", true },
	{ "{\"claims\":[],\"claims\":[]}", true },
	{ "{\"claims\":[{\"id\":\"C1\",\"id\":\"C2\",\"text\":\"t\",\"model\":\"*\",\"identical\":true}]}", true },
	{ "[]", false },
	{ "{}", false },
	{ "{\"claims\":{}}", false },
	{ "{\"audit\":1,\"claims\":[]}", false },
	{ "{\"audit\":\"A\",\"claims\":[],\"extra\":1}", false },
	{ "{\"claims\":[1]}", false },
	{ "{\"claims\":[{\"id\":\"C1\",\"text\":\"t\",\"model\":\"*\"}]}", false },
	{ "{\"claims\":[{\"id\":\"C1\",\"text\":\"t\",\"model\":\"*\",\"identical\":true,\"colour\":\"red\"}]}", false },
	{ "{\"claims\":[{\"text\":\"t\",\"model\":\"*\",\"identical\":true}]}", false },
	{ "{\"claims\":[{\"id\":\"C1\",\"model\":\"*\",\"identical\":true}]}", false },
	{ "{\"claims\":[{\"id\":\"C1\",\"text\":\"t\",\"identical\":true}]}", false },
	{ "{\"claims\":[{\"id\":\"C1\",\"text\":\"t\",\"model\":\"*\",\"identical\":\"yes\"}]}", false },
	{ "{\"claims\":[{\"id\":\"C1\",\"text\":\"t\",\"model\":\"*\",\"excess_bytes\":1.5}]}", false },
	{ "{\"claims\":[{\"id\":\"C1\",\"text\":\"t\",\"model\":\"*\",\"excess_bytes\":\"350208\"}]}", false },
	{ "{\"claims\":[{\"id\":7,\"text\":\"t\",\"model\":\"*\",\"identical\":true}]}", false },
	{ "{\"claims\":[{\"id\":\"\",\"text\":\"t\",\"model\":\"*\",\"identical\":true}]}", false },
	{ "{\"claims\":[{\"id\":\"C\\u0000\",\"text\":\"t\",\"model\":\"*\",\"identical\":true}]}", false },
	{ "{\"claims\":[{\"id\":\"C1\",\"text\":\"t\",\"model\":\"*\",\"identical\":true},"
	  "{\"id\":\"C1\",\"text\":\"u\",\"model\":\"*\",\"identical\":false}]}", false },
};

START_TEST(test_bad_claims)
{
	ck_assert(write_file(in_tmp("bad.json"), bad_claims[_i].json));
	struct qa_swap_result *q = make_swap("/m/q.safetensors", 1, 896, 4864, 128, NULL);
	const struct qa_swap_result *one[1] = { q };
	const char *const lab[1] = { "Qwen" };
	struct qa_report_opts o;
	memset(&o, 0, sizeof o);
	o.path = in_tmp("bad.md");
	o.claims_path = in_tmp("bad.json");
	char note[64];
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_int_eq(qa_report_swap_write(one, lab, 1, &o, note, sizeof note, &d), QA_ERR_FORMAT);
	ck_assert_int_eq(d.code, QA_ERR_FORMAT);
	ck_assert(d.msg[0] != '\0');
	if (bad_claims[_i].has_offset)
		ck_assert_msg(d.offset != QA_NO_OFFSET, "no offset for %s", bad_claims[_i].json);
	ck_assert(access(o.path, F_OK) != 0); /* no report for a bad claims file */
	ck_assert_int_eq(qa_report_claims_check(one, lab, 1, o.claims_path, NULL, NULL, &d), QA_ERR_FORMAT);
	free_swap(q);
}
END_TEST

START_TEST(test_claims_unreadable)
{
	struct qa_report_opts o;
	memset(&o, 0, sizeof o);
	o.path = in_tmp("x.md");
	o.claims_path = in_tmp("missing.json");
	char note[64];
	struct qa_diag d;
	ck_assert_int_eq(qa_report_swap_write(NULL, NULL, 0, &o, note, sizeof note, &d), QA_ERR_IO);
	ck_assert_int_eq(qa_report_claims_check(NULL, NULL, 0, o.claims_path, NULL, NULL, &d), QA_ERR_IO);
	ck_assert_int_eq(qa_report_claims_check(NULL, NULL, 0, NULL, NULL, NULL, &d), QA_ERR_USAGE);
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, swap_setup, swap_teardown);
	tcase_set_timeout(core, 60);
	tcase_add_loop_test(core, test_diff_structure, 0, sizeof diff_cases / sizeof diff_cases[0]);
	tcase_add_loop_test(core, test_diff_verdict, 0, sizeof verdict_cases / sizeof verdict_cases[0]);
	tcase_add_loop_test(core, test_diff_deterministic, V_PASS, V_MISSING + 1);
	tcase_add_loop_test(core, test_plots_written, 0, sizeof plot_fmts / sizeof plot_fmts[0]);
	tcase_add_test(core, test_plot_run_direct);
	tcase_add_loop_test(core, test_swap_claims, 0, sizeof claim_cases / sizeof claim_cases[0]);
	tcase_add_test(core, test_swap_structure);
	tcase_add_test(core, test_swap_mispredicted);
	suite_add_tcase(s, core);

	TCase *limits = tcase_create("limits");
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_add_test(limits, test_no_gnuplot);
	tcase_add_test(limits, test_empty_results);
	tcase_add_loop_test(limits, test_verdict_truncation, 0, sizeof caps / sizeof caps[0]);
	tcase_add_test(limits, test_unwritable);
	tcase_add_test(limits, test_hostile_names);
	tcase_add_test(limits, test_plot_label);
	suite_add_tcase(s, limits);

	TCase *malformed = tcase_create("malformed");
	tcase_add_checked_fixture(malformed, setup, teardown);
	tcase_add_loop_test(malformed, test_bad_claims, 0, sizeof bad_claims / sizeof bad_claims[0]);
	tcase_add_test(malformed, test_claims_unreadable);
	suite_add_tcase(s, malformed);
	return s;
}

int main(void)
{
	const char *g = getenv("QUANTAUDIT_GNUPLOT");
	static char keep[1024];
	if (g && strlen(g) < sizeof keep) {
		memcpy(keep, g, strlen(g) + 1);
		saved_gnuplot = keep;
	}
	SRunner *sr = srunner_create(report_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
