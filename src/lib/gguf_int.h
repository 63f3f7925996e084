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

/* A printable excerpt of the len bytes at s for messages, NUL-terminated in
 * buf (cap bytes); returns buf. */
const char *qa_gguf_printable(char *buf, size_t cap, const char *s, uint64_t len);

#endif
