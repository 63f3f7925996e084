/*
 * make_mini.c - NOT part of the build.  Cuts fixtures/iq_grid/mini.{D,E,F}.gguf
 * out of the real llama-quantize artifacts in ../shared/oracle/real, in the
 * form of fixtures/imatrix/mini.{A,B,C}.gguf (the reference is
 * fixtures/imatrix/mini.safetensors): blk.0.attn_q.bias and the attn_k and
 * attn_v weights of both layers, bytes unchanged, with the source
 * artifact's quantize.imatrix.* keys.  Every one of them was made with
 * --imatrix real-qwen2.imatrix.gguf:
 *   D: blk.0.attn_k iq2_xxs (IQ2_XXS), blk.1.attn_k iq1_s (IQ1_S), attn_v q2_K (IQ2_XXS)
 *   E: blk.0.attn_k iq2_xs (IQ2_XS), blk.1.attn_k iq2_s (IQ2_M), attn_v iq3_s (IQ2_M)
 *   F: blk.0.attn_k iq1_m (IQ1_M), blk.1.attn_k iq1_m (IQ1_M), attn_v q2_K (IQ1_M)
 * Build from a configured tree:
 *   gcc -std=gnu11 -Isrc/lib -I. tests/data/iq_grid/make_mini.c libquantaudit.a \
 *     -lcrypto -lcurl -ljansson -lm -lpthread -o make_mini
 *   ./make_mini ../shared/oracle/real fixtures/iq_grid
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "source.h"

static struct qa_gguf *open_art(const char *dir, const char *recipe)
{
	char path[1024];
	struct qa_source *s;
	struct qa_gguf *g;
	snprintf(path, sizeof path, "%s/real-qwen2.%s.imatrix.gguf", dir, recipe);
	if (qa_source_open_file(&s, path, NULL) != QA_OK || qa_gguf_open(&g, s, NULL) != QA_OK) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	return g;
}

static void check(enum qa_err e, const char *what)
{
	if (e != QA_OK) {
		fprintf(stderr, "%s failed\n", what);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	static const char *const names[5] = { "blk.0.attn_q.bias", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
	                                      "blk.1.attn_k.weight", "blk.1.attn_v.weight" };
	static const struct {
		const char *file, *meta, *from[5];
	} minis[] = {
		{ "mini.D.gguf", "IQ2_XXS", { "IQ2_XXS", "IQ2_XXS", "IQ2_XXS", "IQ1_S", "IQ2_XXS" } },
		{ "mini.E.gguf", "IQ2_XS", { "IQ2_XS", "IQ2_XS", "IQ2_M", "IQ2_M", "IQ2_M" } },
		{ "mini.F.gguf", "IQ1_M", { "IQ1_M", "IQ1_M", "IQ1_M", "IQ1_M", "IQ1_M" } },
	};
	if (argc != 3)
		return 2;
	for (size_t m = 0; m < sizeof minis / sizeof minis[0]; m++) {
		char path[1024];
		struct qa_gguf_writer *w;
		struct qa_gguf *meta = open_art(argv[1], minis[m].meta);
		const struct qa_gguf_tensor *t[5];
		struct qa_gguf *src[5];
		snprintf(path, sizeof path, "%s/%s", argv[2], minis[m].file);
		check(qa_gguf_writer_open(&w, path, NULL), "open");
		check(qa_gguf_writer_set_str(w, "general.architecture", "qwen2", NULL), "kv");
		check(qa_gguf_writer_set_str(w, "quantize.imatrix.file", qa_gguf_get_str(meta, "quantize.imatrix.file"), NULL), "kv");
		check(qa_gguf_writer_set_str(w, "quantize.imatrix.dataset", qa_gguf_get_str(meta, "quantize.imatrix.dataset"), NULL), "kv");
		static const char *const u32keys[2] = { "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count" };
		for (int k = 0; k < 2; k++) {
			const struct qa_gguf_kv *kv = qa_gguf_kv_find(meta, u32keys[k]);
			if (!kv)
				return 1;
			check(qa_gguf_writer_add_kv(w, u32keys[k], &kv->value, NULL), "kv");
		}
		for (int i = 0; i < 5; i++) {
			src[i] = open_art(argv[1], minis[m].from[i]);
			t[i] = qa_gguf_tensor_find(src[i], names[i]);
			if (!t[i])
				return 1;
			check(qa_gguf_writer_add_tensor(w, names[i], t[i]->type, t[i]->n_dims, t[i]->ne, NULL), "tensor");
		}
		check(qa_gguf_writer_begin_data(w, NULL), "begin");
		for (int i = 0; i < 5; i++) {
			const void *p;
			check(qa_gguf_tensor_view(src[i], t[i], &p, NULL), "view");
			check(qa_gguf_writer_write(w, p, (size_t)t[i]->nbytes, NULL), "write");
		}
		check(qa_gguf_writer_commit(w, NULL), "commit");
		qa_gguf_writer_free(w);
	}
	return 0;
}
