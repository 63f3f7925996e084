/*
 * fp16.h - IEEE binary16 and bfloat16 conversions, bit-exact with ggml.
 *
 * Narrowing rounds to nearest, ties to even, keeps subnormals (no flushing)
 * and saturates to infinity on overflow, which is what ggml's software
 * conversion and the F16C instruction both do.  NaN narrows to a quiet NaN
 * of the same sign.  Widening is exact.  All functions are pure.
 */
#ifndef QA_FP16_H
#define QA_FP16_H

#include <stdint.h>

uint16_t qa_fp32_to_fp16(float f);
float qa_fp16_to_fp32(uint16_t h);
uint16_t qa_fp32_to_bf16(float f);
float qa_bf16_to_fp32(uint16_t h);

#endif
