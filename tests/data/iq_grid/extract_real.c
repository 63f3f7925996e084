/*
 * extract_real.c - NOT part of the build.  Copies one tensor of the real
 * llama-quantize artifacts in ../shared/oracle/real into small fixtures, so
 * that check_iq_grid pins the grid i-quants against the real tool without
 * ../shared (fixtures/README.md):
 *   OUT/real-qwen2.attn_k.bf16          blk.0.attn_k.weight of real-qwen2.BF16.gguf
 *                                        (ne 256 x 128, raw bf16)
 *   OUT/real-qwen2.attn_k.imatrix.f32   its 256 importance weights as llama-quantize
 *                                        uses them: in_sum2[i] / (float)counts[0] from
 *                                        real-qwen2.imatrix.gguf
 *   OUT/real-qwen2.RECIPE.attn_k.bin     the tensor's bytes in real-qwen2.RECIPE.imatrix.gguf
 * Build from a configured tree:
 *   gcc -std=gnu11 -Isrc/lib -I. tests/data/iq_grid/extract_real.c libquantaudit.a \
 *     -lcrypto -lcurl -ljansson -lm -lpthread -o extract_real
 *   ./extract_real ../shared/oracle/real fixtures/vectors IQ2_XXS IQ2_XS IQ2_M IQ1_S IQ1_M
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "source.h"

#define TENSOR "blk.0.attn_k.weight"

static struct qa_gguf *open_gguf(const char *dir, const char *name)
{
	char path[1024];
	struct qa_source *s;
	struct qa_gguf *g;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (qa_source_open_file(&s, path, NULL) != QA_OK || qa_gguf_open(&g, s, NULL) != QA_OK) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	return g;
}

static const void *tensor(struct qa_gguf *g, const char *name, uint64_t *nbytes)
{
	const struct qa_gguf_tensor *t = qa_gguf_tensor_find(g, name);
	const void *p;
	if (!t || qa_gguf_tensor_view(g, t, &p, NULL) != QA_OK) {
		fprintf(stderr, "no tensor %s\n", name);
		exit(1);
	}
	*nbytes = t->nbytes;
	return p;
}

static void put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	uint64_t n, ns, nc;
	struct qa_gguf *ref = open_gguf(argv[1], "real-qwen2.BF16.gguf");
	const void *p = tensor(ref, TENSOR, &n);
	put(argv[2], "real-qwen2.attn_k.bf16", p, n);
	struct qa_gguf *im = open_gguf(argv[1], "real-qwen2.imatrix.gguf");
	const float *sum2 = tensor(im, TENSOR ".in_sum2", &ns);
	const float *counts = tensor(im, TENSOR ".counts", &nc);
	float w[256];
	if (ns != sizeof w || nc != 4)
		return 1;
	for (int i = 0; i < 256; i++)
		w[i] = counts[0] > 0.0f ? sum2[i] / counts[0] : 1.0f;
	put(argv[2], "real-qwen2.attn_k.imatrix.f32", w, sizeof w);
	for (int i = 3; i < argc; i++) {
		char name[256];
		snprintf(name, sizeof name, "real-qwen2.%s.imatrix.gguf", argv[i]);
		struct qa_gguf *a = open_gguf(argv[1], name);
		p = tensor(a, TENSOR, &n);
		snprintf(name, sizeof name, "real-qwen2.%s.attn_k.bin", argv[i]);
		put(argv[2], name, p, n);
	}
	return 0;
}
