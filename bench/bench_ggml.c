#define _GNU_SOURCE /* sched_setaffinity, sched_getcpu */
/*
 * bench_ggml.c - quantaudit's quantizers beside ggml's own (make bench-ggml;
 * not a test, and not part of the build: it links the libggml-base of a
 * llama.cpp build, by default the one ../shared/tools/build-llama-cpp makes).
 *
 * For every type both sides can produce, it quantizes the same weights
 * (Gaussian-ish, per-row scale spread, rare outliers) on one thread with
 * ggml_quantize_chunk (no importance matrix: ggml's reference path, what
 * llama-quantize runs without --imatrix) and with quantaudit's entry point,
 * checks that the bytes are equal, and prints both rates and their ratio
 * (ours over ggml's; best of at least a second of runs a side; thread
 * CPU time; both on the core it started on).  One-time table
 * builds are outside the timing on both sides (ggml_quantize_init, and one
 * untimed row of ours).  Type names as arguments (BENCH_TYPES="q4_K q6_K"
 * for make) limit it to those types.  Then the same with importance
 * weights for the types whose weighted path differs.
 *
 * Only two ggml functions are used; they are declared here with ggml's
 * public signatures (enum ggml_type passed as its int value).
 */
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant.h"
#include "types.h"

size_t ggml_quantize_chunk(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                           int64_t n_per_row, const float *imatrix);
void ggml_quantize_init(int type);

/*
 * Thread CPU time, not wall time: the machine is shared, and time spent
 * descheduled would otherwise land on whichever side happened to run then.
 */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill(float *w, size_t rows, size_t cols, float *qw)
{
	uint64_t s = 0x9e3779b97f4a7c15ull;
	for (size_t r = 0; r < rows; r++) {
		float scale = 0.02f * (1.0f + (float)(r % 7) * 0.1f);
		for (size_t c = 0; c < cols; c++) {
			float acc = 0;
			for (int k = 0; k < 4; k++) {
				s ^= s << 13; s ^= s >> 7; s ^= s << 17;
				acc += (float)(s >> 40) / 16777216.0f - 0.5f;
			}
			if ((s & 1023) == 0)
				acc *= 12;
			w[r * cols + c] = acc * scale;
		}
	}
	for (size_t c = 0; c < cols; c++) {
		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		qw[c] = 0.05f + (float)(s >> 40) / 8388608.0f;
	}
}

static const char *const types[] = { "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K",
                                     "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs", "iq3_xxs",
                                     "iq3_s", "iq2_xxs", "iq2_xs", "iq2_s", "iq1_s", "iq1_m",
                                     "tq1_0", "tq2_0", "mxfp4" };

/* Seconds of one quantization into q; ggml's when ours is false. */
static double once(bool ours, const struct qa_type_info *t, const struct qa_quant_ops *ops,
                   const float *w, uint8_t *q, size_t rows, size_t cols, const float *qw)
{
	double t0 = now();
	if (!ours)
		ggml_quantize_chunk((int)t->id, w, q, 0, (int64_t)rows, (int64_t)cols, qw);
	else if (qw || !ops->quantize)
		ops->quantize_rows(w, q, rows, cols, qw);
	else
		ops->quantize(w, q, rows * cols);
	return now() - t0;
}

/*
 * The best time of one side over at least reps runs and as many more as
 * fit in a second (at most 100): on a shared or virtual machine the speed
 * of a core dips for tens of milliseconds at a time, and a best of few
 * short runs catches the dips.  Each side runs alone, in steady state, as
 * a quantizer does over a model: runs that alternate with ggml's cost ours
 * 10-15 % here (our code starts cold after every ggml run; ggml's runs are
 * longer and scalar), which is not what a user sees.
 */
static double best_of(bool ours, const struct qa_type_info *t, const struct qa_quant_ops *ops,
                      const float *w, uint8_t *q, size_t rows, size_t cols, const float *qw,
                      int reps)
{
	double best = 1e9, sum = 0;
	for (int r = 0; r < 100 && (r < reps || sum < 1.0); r++) {
		double dt = once(ours, t, ops, w, q, rows, cols, qw);
		sum += dt;
		if (dt < best)
			best = dt;
	}
	return best;
}

/* Whether type name was asked for (no arguments: every type). */
static bool wanted(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const size_t rows = 256, cols = 4096, n = rows * cols;
	/*
	 * Both sides on one core: the cores of a shared or virtual machine are
	 * not equally fast (here one ran our q3_K 20 % slower than the other),
	 * and a migration between the two runs of a type would tilt its ratio.
	 */
	int cpu = sched_getcpu();
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		(void)sched_setaffinity(0, sizeof set, &set);
	}
	float *w = malloc(n * sizeof *w), *qw = malloc(cols * sizeof *qw);
	uint8_t *a = malloc(n * 4), *b = malloc(n * 4);
	if (!w || !qw || !a || !b)
		return 1;
	fill(w, rows, cols, qw);
	printf("quantizers beside ggml's (ggml_quantize_chunk), one thread, %zu x %zu f32, best of >= 3 runs and >= 1 s a side\n", rows, cols);
	printf("  %-8s %-9s %12s %12s %8s  %s\n", "type", "imatrix", "ggml M/s", "ours M/s", "ratio", "bytes");
	int bad = 0;
	for (int weighted = 0; weighted < 2; weighted++) {
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
			const struct qa_type_info *t = qa_type_by_name(types[i]);
			const struct qa_quant_ops *ops = t ? qa_quant_ops(t->id) : NULL;
			if (!ops || (!ops->quantize && !ops->quantize_rows) || !wanted(types[i], argc, argv))
				continue;
			if (weighted && !ops->quantize_rows)
				continue; /* ggml ignores the weights: same as unweighted */
			if (!weighted && ops->requires_imatrix)
				continue;
			const float *mw = weighted ? qw : NULL;
			ggml_quantize_init((int)t->id);
			/*
			 * ggml builds its grids in ggml_quantize_init, outside the
			 * timing; ours are built on first use, so one untimed row
			 * builds them here.
			 */
			(void)once(true, t, ops, w, b, 1, cols, mw);
			int reps = t->block_elems == 1 || t->id <= QA_TYPE_Q8_0 ? 5 : 3;
			if (strncmp(t->name, "iq", 2) == 0 && t->id != QA_TYPE_IQ4_NL && t->id != QA_TYPE_IQ4_XS)
				reps = 1;
			double tg = best_of(false, t, ops, w, a, rows, cols, mw, reps);
			double to = best_of(true, t, ops, w, b, rows, cols, mw, reps);
			uint64_t nbytes = 0;
			qa_type_nbytes(t, n, &nbytes);
			bool same = memcmp(a, b, nbytes) == 0;
			bad += !same;
			printf("  %-8s %-9s %12.1f %12.1f %7.2fx  %s\n", t->name, weighted ? "weighted" : "-",
			       n / tg / 1e6, n / to / 1e6, tg / to, same ? "equal" : "DIFFER");
		}
	}
	free(w);
	free(qw);
	free(a);
	free(b);
	return bad ? 1 : 0;
}
