/*
 * iq_grid.c - builds the derived tables of the i-quant lattice grids: the
 * decode rows, the cube-to-grid map and the neighbour lists (see
 * iq_grid.h for their meaning and order).
 *
 * A neighbour list holds the grid points at the nwant smallest distinct
 * distances from an off-grid point, ordered by distance, then by index.
 * Distances are sums of per-coordinate terms 4*(c - p)^2, so they are small
 * integers: the builder splits the coordinates into two halves, tabulates
 * the distance of every half-point once per cube point, and gets a grid
 * point's distance with two lookups.  A histogram of the distances gives the
 * cut-off and a stable counting pass gives the order, with no sort.
 */
#include <float.h>
#include <pthread.h>
#include <string.h>

#include "iq_grid.h"
#include "quant_x86.h"

/* Largest distance/4 over 8 coordinates of 3 bits: 8 * 7^2. */
#define MAX_QDIST (8 * 49)

size_t qa_iq_grid_build(const uint16_t *codes, unsigned npoints, unsigned dim, unsigned bits,
                        size_t map_size, unsigned nwant, int32_t *map, uint16_t *nbr,
                        size_t nbr_cap, uint32_t *scratch)
{
	const unsigned half = dim / 2, hbits = half * bits;
	const uint32_t hmask = (1u << hbits) - 1, cmask = (1u << bits) - 1;
	const uint32_t nhalf = 1u << hbits;
	uint32_t *qd = scratch;                /* distance/4 of each grid point */
	uint32_t *split = scratch + npoints;   /* low half | high half << 16 */
	uint32_t *dlo = split + npoints;       /* half-point distances, low coordinates */
	uint32_t *dhi = dlo + nhalf;           /* high coordinates */
	uint32_t hist[MAX_QDIST + 1];
	uint32_t slot[MAX_QDIST + 1];

	for (size_t i = 0; i < map_size; i++)
		map[i] = -1;
	for (unsigned j = 0; j < npoints; j++) {
		if (codes[j] < map_size)
			map[codes[j]] = (int32_t)j;
		split[j] = (codes[j] & hmask) | ((uint32_t)(codes[j] >> hbits) << 16);
	}

	size_t total = 0;
	for (size_t u = 0; u < map_size; u++) {
		if (map[u] >= 0)
			continue;
		/* Distances of every half-point to u's two halves. */
		for (uint32_t a = 0; a < nhalf; a++) {
			uint32_t sl = 0, sh = 0;
			for (unsigned k = 0; k < half; k++) {
				int c = (int)((a >> (k * bits)) & cmask);
				int pl = (int)((u >> (k * bits)) & cmask);
				int ph = (int)((u >> ((k + half) * bits)) & cmask);
				sl += (uint32_t)((c - pl) * (c - pl));
				sh += (uint32_t)((c - ph) * (c - ph));
			}
			dlo[a] = sl;
			dhi[a] = sh;
		}
		memset(hist, 0, sizeof hist);
		for (unsigned j = 0; j < npoints; j++) {
			qd[j] = dlo[split[j] & 0xffff] + dhi[split[j] >> 16];
			hist[qd[j]]++;
		}
		/* The first nwant distances present, and where each one's run starts. */
		size_t n = 0;
		unsigned have = 0;
		for (unsigned d = 0; d <= MAX_QDIST; d++) {
			slot[d] = UINT32_MAX;
			if (hist[d] == 0 || have == nwant)
				continue;
			slot[d] = (uint32_t)n;
			n += hist[d];
			have++;
		}
		size_t base = total + 1;
		map[u] = -(int32_t)total - 1;
		if (nbr && total < nbr_cap)
			nbr[total] = (uint16_t)n;
		for (unsigned j = 0; j < npoints; j++) {
			uint32_t s = slot[qd[j]];
			if (s == UINT32_MAX)
				continue;
			slot[qd[j]] = s + 1;
			if (nbr && base + s < nbr_cap)
				nbr[base + s] = (uint16_t)j;
		}
		total += 1 + n;
	}
	return total;
}

/* Neighbour list sizes of the four grids (the tables' fixed totals, checked by the unit test). */
#define NBR_IQ2XXS 417400
#define NBR_IQ2XS 551722
#define NBR_IQ2S 209100
#define NBR_IQ1S 1375339

struct grid_store {
	const uint16_t *codes;
	unsigned npoints;
	unsigned nwant;
	uint8_t levels[3];        /* decode byte of level codes 0, 1, 2 */
	size_t nbr_cap;
	uint16_t *nbr;
	pthread_once_t once;
	struct qa_iq_grid grid;
};

static int32_t map_iq2xxs[QA_IQ_GRID_MAP8_SIZE], map_iq2xs[QA_IQ_GRID_MAP8_SIZE];
static int32_t map_iq2s[QA_IQ_GRID_MAP8_SIZE], map_iq1s[QA_IQ_GRID_MAP8_SIZE];
static uint16_t nbr_iq2xxs[NBR_IQ2XXS + QA_IQ_GRID_PAD], nbr_iq2xs[NBR_IQ2XS + QA_IQ_GRID_PAD];
static uint16_t nbr_iq2s[NBR_IQ2S + QA_IQ_GRID_PAD], nbr_iq1s[NBR_IQ1S + QA_IQ_GRID_PAD];
static uint32_t c32_iq2xxs[256], c32_iq2xs[512], c32_iq2s[1024], c32_iq1s[2048];
static uint32_t *const codes32[QA_IQ_GRID_COUNT] = { c32_iq2xxs, c32_iq2xs, c32_iq2s, c32_iq1s };
static uint8_t bytes_iq2xxs[256][8], bytes_iq2xs[512][8], bytes_iq2s[1024][8], bytes_iq1s[2048][8];
static int32_t *const maps[QA_IQ_GRID_COUNT] = { map_iq2xxs, map_iq2xs, map_iq2s, map_iq1s };
static uint8_t (*const rows[QA_IQ_GRID_COUNT])[8] = { bytes_iq2xxs, bytes_iq2xs, bytes_iq2s, bytes_iq1s };

/*
 * The 2-bit grids keep the points at the two nearest distances (iq2_xxs,
 * iq2_xs), the nearest only (iq2_s) or three (iq1_s); decode bytes are the
 * iq2 levels 8, 25, 43 and the iq1 levels -1, 0, +1.
 */
static struct grid_store stores[QA_IQ_GRID_COUNT] = {
	{ qa_iq_grid_iq2xxs_codes, 256, 2, { 0x08, 0x19, 0x2b }, NBR_IQ2XXS, nbr_iq2xxs, PTHREAD_ONCE_INIT, { 0 } },
	{ qa_iq_grid_iq2xs_codes, 512, 2, { 0x08, 0x19, 0x2b }, NBR_IQ2XS, nbr_iq2xs, PTHREAD_ONCE_INIT, { 0 } },
	{ qa_iq_grid_iq2s_codes, 1024, 1, { 0x08, 0x19, 0x2b }, NBR_IQ2S, nbr_iq2s, PTHREAD_ONCE_INIT, { 0 } },
	{ qa_iq_grid_iq1s_codes, 2048, 3, { 0xff, 0x00, 0x01 }, NBR_IQ1S, nbr_iq1s, PTHREAD_ONCE_INIT, { 0 } },
};

/* Builds of different grids may run at once (one pthread_once each): scratch is per call. */
static void build(enum qa_iq_grid_id id)
{
	uint32_t scratch[2 * 2048 + 2 * 256];
	struct grid_store *s = &stores[id];
	for (unsigned j = 0; j < s->npoints; j++) {
		codes32[id][j] = s->codes[j];
		for (unsigned k = 0; k < 8; k++)
			rows[id][j][k] = s->levels[(s->codes[j] >> (2 * k)) & 3];
	}
	size_t total = qa_iq_grid_build(s->codes, s->npoints, 8, 2, QA_IQ_GRID_MAP8_SIZE, s->nwant,
	                                maps[id], s->nbr, s->nbr_cap, scratch);
	s->grid = (struct qa_iq_grid){
		.npoints = s->npoints, .dim = 8, .bits = 2, .codes = s->codes,
		.codes32 = codes32[id],
		.bytes = (const uint8_t (*)[8])rows[id], .map = maps[id], .map_size = QA_IQ_GRID_MAP8_SIZE,
		.neighbours = s->nbr, .n_neighbours = total,
	};
}

static void build_iq2xxs(void) { build(QA_IQ_GRID_IQ2XXS); }
static void build_iq2xs(void) { build(QA_IQ_GRID_IQ2XS); }
static void build_iq2s(void) { build(QA_IQ_GRID_IQ2S); }
static void build_iq1s(void) { build(QA_IQ_GRID_IQ1S); }

const struct qa_iq_grid *qa_iq_grid_get(enum qa_iq_grid_id id)
{
	static void (*const builders[QA_IQ_GRID_COUNT])(void) = {
		build_iq2xxs, build_iq2xs, build_iq2s, build_iq1s,
	};
	if ((unsigned)id >= QA_IQ_GRID_COUNT)
		return NULL;
	pthread_once(&stores[id].once, builders[id]);
	return &stores[id].grid;
}

long qa_iq_grid_search(const struct qa_iq_grid *g, const uint16_t *list, const float *x,
                       const float *w, float scale, const float pos[3], bool vec)
{
#if QA_QUANT_X86
	if (vec) {
		int at = qa_x86_grid8_pick(x, w, scale, pos, list + 1, list[0], g->codes32);
		return at < 0 ? -1 : list[1 + at];
	}
#else
	(void)vec;
#endif
	/* each coordinate has three positions: its error terms, once */
	float t[8][4];
	for (int i = 0; i < 8; i++) {
		for (int c = 0; c < 3; c++) {
			float diff = scale * pos[c] - x[i];
			t[i][c] = w[i] * diff * diff;
		}
		t[i][3] = 0;
	}
	float best = FLT_MAX;
	long pick = -1;
	for (unsigned j = 1; j <= list[0]; j++) {
		uint16_t c = g->codes[list[j]];
		float d2 = 0;
		for (int i = 0; i < 8; i++)
			d2 += t[i][(c >> (2 * i)) & 3];
		if (d2 < best) {
			best = d2;
			pick = list[j];
		}
	}
	return pick;
}

bool qa_iq_grid_vec(void)
{
#if QA_QUANT_X86
	return qa_quant_x86_available(false);
#else
	return false;
#endif
}
