/*
 * iq_grid.h - the lattice grids of the grid-based i-quants (iq2_xxs, iq2_xs,
 * iq2_s, iq1_s, iq1_m) and the tables derived from them: the map from a
 * point of the surrounding cube to its grid index, and for every point off
 * the grid the list of its nearest grid points.
 *
 * A grid is a fixed list of points of dim coordinates, each coordinate a
 * level code 0..levels-1 (format facts, from iq_grid_data.c).  The search
 * position of code c is 2c+1, so distances are the squared Euclidean
 * distances between those odd positions.  A point u of the cube (its codes
 * packed bits per coordinate, coordinate i at bits i*bits) maps to
 * map[u] >= 0, its grid index, when u is on the grid; otherwise map[u] is
 * -(o+1) and neighbours[o] holds the count n of its neighbour list, followed
 * by n grid indices: every grid point whose distance to u is among the nwant
 * smallest distinct distances, in order of distance, then of index.  This is
 * the layout and order ggml builds (iq2xs_init_impl), which the quantizers'
 * tie-breaking depends on.
 *
 * The builder is general in dim, bits and nwant so that other grids (the
 * 4-coordinate iq3 grids) can use it too.  The tables are built once on
 * first use, thread-safely, into static storage: they cannot fail.
 */
#ifndef QA_IQ_GRID_H
#define QA_IQ_GRID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum qa_iq_grid_id {
	QA_IQ_GRID_IQ2XXS, /* 256 points, used by iq2_xxs */
	QA_IQ_GRID_IQ2XS,  /* 512 points, iq2_xs */
	QA_IQ_GRID_IQ2S,   /* 1024 points, iq2_s */
	QA_IQ_GRID_IQ1S,   /* 2048 points, iq1_s and iq1_m */
	QA_IQ_GRID_COUNT
};

/* Cube points the map covers for the 8-coordinate 2-bit grids (ggml's kmap_size). */
#define QA_IQ_GRID_MAP8_SIZE 43692

struct qa_iq_grid {
	unsigned npoints;            /* grid points */
	unsigned dim;                /* coordinates per point (8 here) */
	unsigned bits;               /* bits per coordinate in a cube index */
	const uint16_t *codes;       /* npoints packed level codes */
	const uint32_t *codes32;     /* the same codes widened (for vector gathers) */
	const uint8_t (*bytes)[8];   /* npoints decode rows: the level's byte per coordinate */
	const int32_t *map;          /* map_size entries, see above */
	size_t map_size;
	const uint16_t *neighbours;  /* n_neighbours entries, see above, then QA_IQ_GRID_PAD readable ones */
	size_t n_neighbours;
};

/* Entries past the last neighbour list that may be read (and are ignored) by vector code. */
#define QA_IQ_GRID_PAD 16

/*
 * The grid id with its derived tables, built on the first call (from any
 * thread; later calls return at once).  Returns a pointer to static data
 * that lives as long as the program, or NULL for an unknown id.
 */
const struct qa_iq_grid *qa_iq_grid_get(enum qa_iq_grid_id id);

/*
 * Build the map and neighbour lists of a grid of npoints points of dim
 * coordinates (dim even, at most 8; bits per coordinate at most 3) given as
 * packed codes, for the cube indices 0..map_size-1, keeping nwant distinct
 * distances per list.  map receives map_size entries.  With nbr NULL only
 * the total count of uint16 entries is returned; otherwise at most nbr_cap
 * entries are written to nbr and the total is returned (a total above
 * nbr_cap means nbr was too small and the lists are cut).  scratch must hold
 * 2 * npoints + 2 * (1 << (dim/2 * bits)) uint32_t.
 */
size_t qa_iq_grid_build(const uint16_t *codes, unsigned npoints, unsigned dim, unsigned bits,
                        size_t map_size, unsigned nwant, int32_t *map, uint16_t *nbr,
                        size_t nbr_cap, uint32_t *scratch);

/*
 * The search of the 8-coordinate grids' quantizers (iq2, iq1): among the
 * neighbour list list (count, then grid indices; see above) the grid index
 * of the first point of least error, the sum over coordinates i from 0 of
 * (w[i] * diff) * diff with diff = scale * pos[c_i] - x[i] (c_i the point's
 * level code), or -1 when no error is below FLT_MAX.  The error terms are
 * tabulated once per coordinate and code; with vec (only where
 * qa_iq_grid_vec() is true) 8 entries are summed at once (quant_x86.c).
 * Both give the bytes of a plain loop over the list computing each error.
 */
long qa_iq_grid_search(const struct qa_iq_grid *g, const uint16_t *list, const float *x,
                       const float *w, float scale, const float pos[3], bool vec);

/* Whether this CPU runs qa_iq_grid_search's vector form (AVX2). */
bool qa_iq_grid_vec(void);

/*
 * The sign byte of a 7-bit sign index s used by iq2_xxs and iq2_xs: s in
 * bits 0..6 and, in bit 7, the bit that makes the count of set bits even
 * (the eighth sign is implied by the parity of the other seven).
 */
static inline uint8_t qa_iq_sign_byte(unsigned s)
{
	unsigned p = s & 127, v = p;
	v ^= v >> 4;
	v ^= v >> 2;
	v ^= v >> 1;
	return (uint8_t)(p | ((v & 1) << 7));
}

/*
 * Round to the nearest integer, ties to even, as ggml's nearest_int does:
 * valid for |v| < 2^22, which every caller guarantees by clamping its input
 * range or by the size of its arguments.
 */
static inline int qa_iq_nearest_int(float v)
{
	float shifted = v + 12582912.f;
	uint32_t u;
	memcpy(&u, &shifted, sizeof u);
	return (int)(u & 0x007fffffu) - 0x00400000;
}

/* The level codes of the four grids (iq_grid_data.c, generated). */
extern const uint16_t qa_iq_grid_iq2xxs_codes[256];
extern const uint16_t qa_iq_grid_iq2xs_codes[512];
extern const uint16_t qa_iq_grid_iq2s_codes[1024];
extern const uint16_t qa_iq_grid_iq1s_codes[2048];

#endif
