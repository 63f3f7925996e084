/*
 * tu_decode.h - properties any dequantizer must have on arbitrary bytes,
 * checked without a sanitizer (the decode_garbage cases of check_quant,
 * check_quant_ext and check_iq_grid):
 *  - it writes exactly n floats: a sentinel after them survives;
 *  - it reads only the n / block_elems blocks it is given: changing every
 *    byte after them changes nothing;
 *  - blocks are independent: each block decoded alone gives the same bits
 *    as in the whole decode;
 *  - it is deterministic: a second decode gives the same bits.
 * Include after check.h and quant.h.
 */
#ifndef QA_TU_DECODE_H
#define QA_TU_DECODE_H

#include <stdint.h>
#include <string.h>

#define TU_DECODE_MAX 1024 /* floats */

/* raw holds rawcap bytes, at least the n / t->block_elems blocks decoded. */
static inline void tu_decode_properties(const struct qa_type_info *t, const struct qa_quant_ops *ops,
                                        uint8_t *raw, size_t rawcap, size_t n)
{
	static float a[TU_DECODE_MAX + 64], b[TU_DECODE_MAX + 64], one[TU_DECODE_MAX];
	size_t be = t->block_elems, bb = t->block_bytes, used = n / be * bb;
	ck_assert_uint_le(n, TU_DECODE_MAX);
	ck_assert_uint_le(used, rawcap);
	memset(a, 0xa5, sizeof a);
	memset(b, 0xa5, sizeof b);
	ops->dequantize(raw, a, n);
	for (size_t i = n * sizeof(float); i < sizeof a; i++)
		ck_assert_msg(((uint8_t *)a)[i] == 0xa5, "%s: wrote past %zu floats", t->name, n);
	/* bytes after the decoded blocks do not matter */
	for (size_t i = used; i < rawcap; i++)
		raw[i] ^= 0x5a;
	ops->dequantize(raw, b, n);
	ck_assert_msg(memcmp(a, b, sizeof a) == 0, "%s: output depends on bytes past the blocks", t->name);
	/* each block alone */
	for (size_t k = 0; k < n / be; k++) {
		ops->dequantize(raw + k * bb, one, be);
		ck_assert_msg(memcmp(one, a + k * be, be * sizeof(float)) == 0,
		              "%s: block %zu decodes differently alone", t->name, k);
	}
}

#endif
