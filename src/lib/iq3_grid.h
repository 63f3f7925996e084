/*
 * iq3_grid.h - the two lattice grids of the 3-bit i-quants and the search
 * tables derived from them: iq3_xxs uses 256 points, iq3_s 512.
 *
 * A grid point has 4 coordinates, each a level 0..7; a point of the cube
 * {0..7}^4 is named by its code u = l0 | l1 << 3 | l2 << 6 | l3 << 9.
 * Which 256 (512) codes make up the grid is a fact of the format.  From it
 * follow:
 *   - the decode bytes: the value a level stands for in dequantization
 *     (iq3_xxs: 4, 12, 20, 28, 36, 44, 52, 62; iq3_s: 2l + 1), four per
 *     point, packed little-endian into a uint32 as ggml's iq3xxs_grid and
 *     iq3s_grid tables hold them;
 *   - the search positions 2l + 1 the quantizer measures distances with;
 *   - map[u]: the grid index of u when u is on the grid, otherwise -(o+1)
 *     where neighbours[o] is the count n of u's neighbour list and
 *     neighbours[o+1..o+n] are the grid indices of every grid point whose
 *     squared distance to u is among the nwant smallest distinct distances
 *     (nwant = 2 for 256 points, 3 for 512), by distance then index.  Lists
 *     are laid out in increasing u.  This is the layout and order of ggml's
 *     iq3xs_init_impl, on which the quantizers' tie-breaking depends.
 *
 * The tables are built on first use (once, thread-safely) into static
 * storage and live for the whole program; building cannot fail.
 */
#ifndef QA_IQ3_GRID_H
#define QA_IQ3_GRID_H

#include <stddef.h>
#include <stdint.h>

#define QA_IQ3_MAP_SIZE 4096

struct qa_iq3_grid {
	unsigned npoints;           /* 256 or 512 */
	const uint16_t *codes;      /* npoints cube codes, increasing */
	const uint32_t *codes32;    /* the same codes widened (for vector gathers) */
	const uint32_t *decode;     /* npoints packed decode bytes */
	const uint8_t (*pos)[4];    /* npoints search positions 2l + 1 */
	const int32_t *map;         /* QA_IQ3_MAP_SIZE entries, see above */
	const uint16_t *neighbours; /* n_neighbours entries, see above, then 16 readable ones */
	const uint16_t *neighbour_codes; /* the same layout with each grid index replaced by its code */
	size_t n_neighbours;
};

/*
 * The grid of npoints points (256 for iq3_xxs, 512 for iq3_s) with its
 * derived tables, built on the first call.  Returns static data, or NULL
 * for any other npoints.
 */
const struct qa_iq3_grid *qa_iq3_grid_get(unsigned npoints);

#endif
