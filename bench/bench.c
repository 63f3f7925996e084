#define _POSIX_C_SOURCE 200809L
/*
 * bench.c - quantaudit's micro-benchmarks (make bench).  Not a test: it
 * prints rates and compares them with their natural limits.
 *
 *  1. every quantizer: elements/s on one thread and on all threads, and MB/s
 *     of f32 input;
 *  2. SHA-256: the OpenSSL EVP large-buffer rate measured in this run (what
 *     `openssl speed -evp sha256` reports for 16 KiB blocks), the library's
 *     whole-tensor rate against it, and the per-block digests of 144-byte
 *     q4_K blocks against their padding-bound limit (a 144-byte message costs
 *     three 64-byte compressions, so the limit is 144/192 of the large rate);
 *     per core and on all cores.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "blockhash.h"
#include "layout.h"
#include "pool.h"
#include "quant.h"
#include "quantize.h"
#include "types.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Gaussian-ish weights with per-row scale spread and rare outliers. */
static void fill(float *w, size_t rows, size_t cols)
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
}

static const char *const types[] = { "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0",
                                     "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl",
                                     "iq4_xs", "iq3_s", "iq3_xxs", "tq1_0", "tq2_0", "mxfp4" };

static void bench_quant(unsigned all)
{
	const size_t rows = 1024, cols = 4096, n = rows * cols;
	float *w = malloc(n * sizeof *w);
	uint8_t *q = malloc(n * 4);
	fill(w, rows, cols);
	printf("quantizers: %zu x %zu f32 (%.0f MB), best of 3\n", rows, cols, n * 4 / 1e6);
	printf("  %-7s %14s %10s %14s %10s %8s\n", "type", "1 thread", "MB/s", "all threads", "MB/s", "speedup");
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		const struct qa_type_info *t = qa_type_by_name(types[i]);
		double best[2] = { 1e9, 1e9 };
		for (int k = 0; k < 2; k++) {
			unsigned th = k ? all : 1;
			for (int rep = 0; rep < 3; rep++) {
				double t0 = now();
				if (qa_quantize_tensor(w, cols, rows, t->id, QA_LAYOUT_OUT_IN, th, q, NULL)) {
					fprintf(stderr, "bench: quantizing %s failed\n", t->name);
					exit(1);
				}
				double dt = now() - t0;
				if (dt < best[k])
					best[k] = dt;
			}
		}
		printf("  %-7s %10.1f M/s %10.0f %10.1f M/s %10.0f %7.2fx\n", t->name, n / best[0] / 1e6,
		       n * 4 / best[0] / 1e6, n / best[1] / 1e6, n * 4 / best[1] / 1e6, best[0] / best[1]);
	}
	free(w);
	free(q);
}

/*
 * The grid i-quants through their weighted entry point (importance weights
 * in [0.5, 1.5) per column), one thread: their searches are the slowest
 * quantizers, so a smaller matrix.  The tables are built before timing.
 */
static const char *const iq_grid_types[] = { "iq2_xxs", "iq2_xs", "iq2_s", "iq1_s", "iq1_m" };

static void bench_iq_grid(void)
{
	const size_t rows = 64, cols = 4096, n = rows * cols;
	float *w = malloc(n * sizeof *w), *qw = malloc(cols * sizeof *qw);
	uint8_t *q = malloc(n);
	fill(w, rows, cols);
	for (size_t c = 0; c < cols; c++)
		qw[c] = 0.5f + (float)((c * 2654435761u) % 1000) / 1000.0f;
	printf("\ngrid i-quants with importance weights: %zu x %zu f32 (%.0f MB), 1 thread, best of 3\n",
	       rows, cols, n * 4 / 1e6);
	for (size_t i = 0; i < sizeof iq_grid_types / sizeof iq_grid_types[0]; i++) {
		const struct qa_type_info *t = qa_type_by_name(iq_grid_types[i]);
		const struct qa_quant_ops *ops = qa_quant_ops(t->id);
		ops->quantize_rows(w, q, 1, cols, qw); /* builds the grid tables */
		double best = 1e9;
		for (int rep = 0; rep < 3; rep++) {
			double t0 = now();
			ops->quantize_rows(w, q, rows, cols, qw);
			double dt = now() - t0;
			if (dt < best)
				best = dt;
		}
		printf("  %-7s %10.2f M/s %10.1f MB/s\n", t->name, n / best / 1e6, n * 4 / best / 1e6);
	}
	free(w);
	free(qw);
	free(q);
}

/* What `openssl speed -evp sha256` measures: repeated one-shot digests of 16 KiB. */
static double openssl_rate(void)
{
	static uint8_t buf[16384];
	uint8_t out[32];
	unsigned int len;
	memset(buf, 0x5a, sizeof buf);
	double t0 = now(), dt;
	size_t n = 0;
	do {
		for (int k = 0; k < 256; k++)
			EVP_Digest(buf, sizeof buf, out, &len, EVP_sha256(), NULL);
		n += 256;
		dt = now() - t0;
	} while (dt < 1.0);
	return n * sizeof buf / dt;
}

struct hash_job {
	const uint8_t *data;
	uint64_t nbytes, block_bytes, blocks_per_item;
	struct qa_blockhasher **h;
	uint8_t *out;
};

static enum qa_err hash_item(void *ctx, size_t item, unsigned worker)
{
	struct hash_job *j = ctx;
	uint64_t total = qa_blockhash_n_blocks(j->nbytes, j->block_bytes);
	uint64_t first = item * j->blocks_per_item;
	uint64_t count = total - first < j->blocks_per_item ? total - first : j->blocks_per_item;
	return qa_blockhasher_blocks(j->h[worker], j->data, j->nbytes, j->block_bytes, first, count,
	                             j->out + first * QA_SHA256_LEN);
}

static void bench_hash(unsigned all)
{
	const size_t big = 256u << 20;
	uint8_t *data = malloc(big), d[32];
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 131 + (i >> 9));
	struct qa_blockhasher **h = calloc(all, sizeof *h);
	for (unsigned i = 0; i < all; i++)
		h[i] = qa_blockhasher_init();

	double ossl = openssl_rate();
	double t0 = now();
	if (qa_blockhasher_whole(h[0], data, big, d)) {
		fprintf(stderr, "bench: sha-256 failed\n");
		exit(1);
	}
	double whole = big / (now() - t0);

	uint64_t bb = 144, nblocks = big / bb;
	uint8_t *out = malloc(nblocks * QA_SHA256_LEN);
	if (!out) {
		fprintf(stderr, "bench: out of memory\n");
		exit(1);
	}
	/*
	 * Fault the digests' pages in first: the first pass would otherwise
	 * time the kernel handing out 57 MiB of fresh pages (half the one-core
	 * figure on a VM whose page faults are slow), not the hashing.  Not
	 * with zeros, which the compiler may turn into a lazy calloc.
	 */
	memset(out, 0xa5, nblocks * QA_SHA256_LEN);
	struct hash_job j = { data, nblocks * bb, bb, 4096, h, out };
	size_t items = (size_t)((nblocks + 4095) / 4096);
	t0 = now();
	enum qa_err e1 = qa_pool_run(1, items, hash_item, &j);
	double blocks1 = nblocks * bb / (now() - t0);
	t0 = now();
	enum qa_err en = qa_pool_run(all, items, hash_item, &j);
	if (e1 || en) {
		fprintf(stderr, "bench: sha-256 failed\n");
		exit(1);
	}
	double blocksn = nblocks * bb / (now() - t0);
	double limit = ossl * 144.0 / 192.0;

	printf("\nsha-256 (OpenSSL EVP, block path %s; %u cores):\n", qa_blockhash_path(), all);
	printf("  openssl speed -evp sha256 equivalent (16 KiB):  %8.0f MB/s\n", ossl / 1e6);
	printf("  whole tensor, one core:                        %8.0f MB/s  %5.1f %% of openssl (target >= 95 %%)\n",
	       whole / 1e6, 100 * whole / ossl);
	printf("  q4_K block digests (144 B), one core:          %8.0f MB/s  %5.1f %% of the padding-bound limit %.0f MB/s (target >= 85 %%)\n",
	       blocks1 / 1e6, 100 * blocks1 / limit, limit / 1e6);
	printf("                                                 %8.2f M blocks/s\n", blocks1 / bb / 1e6);
	printf("  q4_K block digests, all cores:                 %8.0f MB/s  (%.2fx)\n", blocksn / 1e6, blocksn / blocks1);
	for (unsigned i = 0; i < all; i++)
		qa_blockhasher_free(h[i]);
	free(h);
	free(out);
	free(data);
}

int main(int argc, char **argv)
{
	unsigned all = qa_pool_default_threads();
	bool quant = true, hash = true;
	if (argc > 1 && strcmp(argv[1], "hash") == 0)
		quant = false;
	if (argc > 1 && strcmp(argv[1], "quant") == 0)
		hash = false;
	if (quant) {
		bench_quant(all);
		bench_iq_grid();
	}
	if (hash)
		bench_hash(all);
	return 0;
}
