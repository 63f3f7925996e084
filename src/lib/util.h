/*
 * util.h - small helpers several library modules share (one home for each,
 * so that no file keeps its own copy).  Private to the library.
 */
#ifndef QA_UTIL_H
#define QA_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Grow the malloc'd array *arr of elem-sized records, whose capacity is
 * *cap records, so that it holds at least want (doubling, from 16).  On
 * success *arr and *cap are updated; false on overflow or out of memory,
 * with *arr and *cap unchanged (the old array is still valid).
 */
bool qa_array_grow(void **arr, size_t *cap, size_t want, size_t elem);

/* Whether x is a power of two (0 is not). */
bool qa_is_pow2(uint64_t x);

/* A malloc'd copy of s; NULL when s is NULL or out of memory. */
char *qa_str_dup(const char *s);

/* Whether s ends with suffix. */
bool qa_str_ends_with(const char *s, const char *suffix);

/* Whether the len bytes at s end with suffix (s may hold NULs). */
bool qa_mem_ends_with(const char *s, size_t len, const char *suffix);

/* The n bytes at p as 2n lowercase hex digits and a NUL, into out
 * (2n + 1 bytes). */
void qa_hex_encode(const uint8_t *p, size_t n, char *out);

/*
 * The 2n hex digits at s as n bytes into out: lowercase digits only, or
 * upper case too when any_case.  False when one of them is not a hex digit
 * (out is then partly written); s must hold at least 2n bytes.
 */
bool qa_hex_decode(const char *s, uint8_t *out, size_t n, bool any_case);

/* "dir/name", malloc'd; NULL on overflow or out of memory. */
char *qa_path_join(const char *dir, const char *name);

/* The directory part of path, malloc'd: "." without a slash, "/" for
 * "/file"; NULL when out of memory. */
char *qa_path_dir(const char *path);

/*
 * Drop the pages of [off, off+len) of the mapping of map_len bytes at base
 * (page-aligned, as mmap returns it) from the resident set (madvise
 * MADV_DONTNEED), widened to whole 64 KiB blocks (the kernel's fault-around
 * unit) but never past the mapping.  Only for read-only private or
 * file-backed shared mappings, whose contents come back from the file when
 * touched again.
 */
void qa_unmap_pages(void *base, uint64_t map_len, uint64_t off, uint64_t len);

#endif
