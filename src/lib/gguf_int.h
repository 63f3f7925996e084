/*
 * gguf_int.h - what the GGUF reader (gguf_read.c) and writer
 * (gguf_write.c) share.  Private to the library.
 */
#ifndef QA_GGUF_INT_H
#define QA_GGUF_INT_H

#include <stddef.h>
#include <stdint.h>

#define QA_GGUF_MAX_TENSOR_NAME 64u     /* ggml's GGML_MAX_NAME, names are shorter */

/* The name of a metadata value type ("u8" ... "f64", or "unknown"). */
const char *qa_gguf_vtype_name(uint32_t t);

#endif
