/*
 * ggml_tables.c - NOT part of the build.  Dumps ggml's own i-quant grid
 * tables so that their SHA-256 digests can be pinned in
 * fixtures/vectors/iq_grid.sha256 (see fixtures/README.md):
 *   OUT/TYPE.grid.u64      ggml-common.h's decode grid (iq2xxs_grid, ...), little-endian u64
 *   OUT/TYPE.map.i32       iq2_data[].map after iq2xs_init_impl(TYPE), little-endian i32
 *   OUT/TYPE.nbr.u16       iq2_data[].neighbours, little-endian u16
 * It includes ggml-quants.c itself to reach the static iq2_data.  Build:
 *   G=~/.cache/llama-cpp-ref/src; gcc -O2 -std=gnu11 -D_GNU_SOURCE -I$G/ggml/src -I$G/ggml/include \
 *     ggml_tables.c -L$G/build/bin -lggml-base -lm -o ggml_tables
 *   LD_LIBRARY_PATH=$G/build/bin ./ggml_tables OUT
 */
#include "ggml-quants.c"

#include <stdio.h>

static void dump(const char *dir, const char *name, const char *ext, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	static const struct { enum ggml_type t; const char *name; const uint64_t *grid; size_t n; } g[] = {
		{ GGML_TYPE_IQ2_XXS, "iq2_xxs", iq2xxs_grid, 256 },
		{ GGML_TYPE_IQ2_XS, "iq2_xs", iq2xs_grid, 512 },
		{ GGML_TYPE_IQ2_S, "iq2_s", iq2s_grid, 1024 },
		{ GGML_TYPE_IQ1_S, "iq1_s", iq1s_grid, NGRID_IQ1S },
	};
	for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
		iq2xs_init_impl(g[i].t);
		int gi = iq2_data_index(g[i].t);
		const int kmap_size = 43692;
		size_t nn = 0;
		for (int u = 0; u < kmap_size; u++)
			if (iq2_data[gi].map[u] < 0)
				nn += 1 + iq2_data[gi].neighbours[-iq2_data[gi].map[u] - 1];
		dump(argv[1], g[i].name, "grid.u64", g[i].grid, g[i].n * 8);
		dump(argv[1], g[i].name, "map.i32", iq2_data[gi].map, kmap_size * sizeof(int));
		dump(argv[1], g[i].name, "nbr.u16", iq2_data[gi].neighbours, nn * 2);
		printf("%s: %zu neighbour entries\n", g[i].name, nn);
	}
	return 0;
}
