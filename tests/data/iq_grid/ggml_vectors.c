/*
 * ggml_vectors.c - NOT part of the build.  Makes the oracle vectors of the
 * grid i-quants with the real ggml (libggml-base of the llama.cpp build):
 *   OUT/TYPE.imatrix.bin   ggml_quantize_chunk(TYPE, input, out, 0, NROW, NPR, imatrix)
 *   OUT/TYPE.bin           the same with no importance matrix (iq2_s and iq1_m only:
 *                          ggml refuses iq2_xxs, iq2_xs and iq1_s without one)
 *   OUT/*.dequant.f32      ggml's to_float of each
 *   OUT/imatrix.f32        the NPR importance weights used
 * input is fixtures/vectors/input.f32 (131072 floats), cut into NROW = 64
 * rows of NPR = 2048.  The weights are seeded (xorshift32, seed 12): 3 % are
 * exactly 0, the rest exp(u) with u uniform in [-3, 3), as spread as the
 * activation statistics of a real importance matrix.  Build:
 *   G=~/.cache/llama-cpp-ref/src; gcc -O2 -std=gnu11 -I$G/ggml/include ggml_vectors.c \
 *     -L$G/build/bin -lggml-base -lm -o ggml_vectors
 *   LD_LIBRARY_PATH=$G/build/bin ./ggml_vectors fixtures/vectors/input.f32 OUT
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ggml.h"

#define N 131072
#define NPR 2048
#define NROW (N / NPR)

static void put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static uint32_t st = 12;
static uint32_t next(void)
{
	st ^= st << 13;
	st ^= st >> 17;
	st ^= st << 5;
	return st;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	static float in[N], out[N], qw[NPR];
	FILE *f = fopen(argv[1], "rb");
	if (!f || fread(in, 4, N, f) != N)
		return 1;
	fclose(f);
	for (int i = 0; i < NPR; i++) {
		uint32_t r = next();
		qw[i] = r % 100 < 3 ? 0.0f : expf(6.0f * (float)(next() >> 8) / 16777216.0f - 3.0f);
	}
	put(argv[2], "imatrix.f32", qw, sizeof qw);
	static const struct { enum ggml_type t; const char *name; int plain; } ty[] = {
		{ GGML_TYPE_IQ2_XXS, "iq2_xxs", 0 }, { GGML_TYPE_IQ2_XS, "iq2_xs", 0 },
		{ GGML_TYPE_IQ2_S, "iq2_s", 1 }, { GGML_TYPE_IQ1_S, "iq1_s", 0 },
		{ GGML_TYPE_IQ1_M, "iq1_m", 1 },
	};
	static uint8_t q[N * 2];
	for (size_t i = 0; i < sizeof ty / sizeof ty[0]; i++) {
		for (int pass = 0; pass < 2; pass++) {
			if (pass == 1 && !ty[i].plain)
				continue;
			size_t n = ggml_quantize_chunk(ty[i].t, in, q, 0, NROW, NPR, pass == 0 ? qw : NULL);
			ggml_get_type_traits(ty[i].t)->to_float(q, out, N);
			char name[128];
			snprintf(name, sizeof name, "%s%s.bin", ty[i].name, pass == 0 ? ".imatrix" : "");
			put(argv[2], name, q, n);
			snprintf(name, sizeof name, "%s%s.dequant.f32", ty[i].name, pass == 0 ? ".imatrix" : "");
			put(argv[2], name, out, sizeof out);
		}
	}
	return 0;
}
