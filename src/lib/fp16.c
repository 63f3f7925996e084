/*
 * fp16.c - half and bfloat16 conversions.
 *
 * The binary16 narrowing works on the integer representation: it aligns the
 * mantissa for the target exponent (denormalising below 2^-14), then rounds
 * the discarded bits to nearest even.  A carry out of the mantissa bumps the
 * exponent, which is exactly the IEEE behaviour, including rounding up into
 * infinity.
 */
#include "fp16.h"

#include <string.h>

static uint32_t bits_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static float float_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

uint16_t qa_fp32_to_fp16(float f)
{
	uint32_t u = bits_of(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
	uint32_t exp = (u >> 23) & 0xffu;
	uint32_t man = u & 0x7fffffu;

	if (exp == 0xffu) /* inf or nan */
		return (uint16_t)(sign | 0x7c00u | (man ? 0x0200u : 0));

	/* Unbiased exponent; values below 2^-25 round to zero at best. */
	int e = (int)exp - 127;
	if (e > 15)
		return (uint16_t)(sign | 0x7c00u);
	if (e < -25)
		return sign;

	/* Full 24-bit significand (implicit one unless fp32-subnormal). */
	uint32_t sig = exp ? (man | 0x800000u) : man;
	/* Right shift that leaves a 10-bit fraction (11 with the leading one). */
	int shift = (e >= -14) ? 13 : 13 + (-14 - e);
	uint32_t kept = sig >> shift;
	uint32_t rest = sig & ((1u << shift) - 1u);
	uint32_t half = 1u << (shift - 1);
	if (rest > half || (rest == half && (kept & 1u)))
		kept++;

	uint32_t h;
	if (e >= -14) {
		/* normal: kept holds 1.fraction in 11 bits, possibly 2.0 after rounding */
		h = ((uint32_t)(e + 15) << 10) + (kept - 0x400u);
	} else {
		/* subnormal: kept is the fraction; a carry to 0x400 makes it the smallest normal */
		h = kept;
	}
	return (uint16_t)(sign | h);
}

float qa_fp16_to_fp32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;

	if (exp == 0x1fu)
		return float_of(sign | 0x7f800000u | (man << 13));
	if (exp == 0) {
		if (man == 0)
			return float_of(sign);
		/* subnormal: normalise into an fp32 normal */
		int e = -14;
		while (!(man & 0x400u)) {
			man <<= 1;
			e--;
		}
		man &= 0x3ffu;
		return float_of(sign | ((uint32_t)(e + 127) << 23) | (man << 13));
	}
	return float_of(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

uint16_t qa_fp32_to_bf16(float f)
{
	uint32_t u = bits_of(f);
	if ((u & 0x7fffffffu) > 0x7f800000u) /* nan: keep sign, force quiet */
		return (uint16_t)((u >> 16) | 0x40u);
	/* round to nearest even on the low 16 bits; a carry may reach infinity */
	uint32_t lsb = (u >> 16) & 1u;
	return (uint16_t)((u + 0x7fffu + lsb) >> 16);
}

float qa_bf16_to_fp32(uint16_t h)
{
	return float_of((uint32_t)h << 16);
}
