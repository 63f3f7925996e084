/*
 * arena.h - bump allocation for many small records that die together (the
 * strings and values of a GGUF header): qa_arena_alloc hands out 16-byte
 * aligned blocks from 64 KiB chunks, and qa_arena_free releases them all.
 * A zeroed struct qa_arena is an empty arena.  Private to the library.
 */
#ifndef QA_ARENA_H
#define QA_ARENA_H

#include <stddef.h>

struct qa_arena_chunk;

struct qa_arena {
	struct qa_arena_chunk *head;
};

/* n bytes (16-byte aligned, at least 16) that live until qa_arena_free;
 * NULL when out of memory or n overflows. */
void *qa_arena_alloc(struct qa_arena *a, size_t n);

/* A NUL-terminated copy of the n bytes at s (which may hold NULs); NULL when
 * out of memory. */
char *qa_arena_strdup(struct qa_arena *a, const void *s, size_t n);

/* Release every block; the arena is empty again. */
void qa_arena_free(struct qa_arena *a);

#endif
