/*
 * arena.c - bump allocation, everything freed at once (see arena.h).
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"

struct qa_arena_chunk {
	struct qa_arena_chunk *next;
	size_t cap;
	size_t used;
};

#define ARENA_ALIGN 16u
#define ARENA_HDR ((sizeof(struct qa_arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))
#define ARENA_CHUNK (64u * 1024u)

void *qa_arena_alloc(struct qa_arena *a, size_t n)
{
	size_t need;
	if (!qa_add_size(n, ARENA_ALIGN - 1, &need))
		return NULL;
	need &= ~(size_t)(ARENA_ALIGN - 1);
	if (need == 0)
		need = ARENA_ALIGN;
	struct qa_arena_chunk *c = a->head;
	if (!c || c->cap - c->used < need) {
		size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
		size_t total;
		if (!qa_add_size(cap, ARENA_HDR, &total))
			return NULL;
		c = malloc(total);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		/* A big one-off block goes behind the head so that the head's
		 * free space stays usable. */
		if (a->head && cap > ARENA_CHUNK) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	void *p = (char *)c + ARENA_HDR + c->used;
	c->used += need;
	return p;
}

void qa_arena_free(struct qa_arena *a)
{
	struct qa_arena_chunk *c = a->head;
	while (c) {
		struct qa_arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->head = NULL;
}

/* Copy n bytes into the arena with a terminating NUL. */
char *qa_arena_strdup(struct qa_arena *a, const void *s, size_t n)
{
	size_t sz;
	if (!qa_add_size(n, 1, &sz))
		return NULL;
	char *p = qa_arena_alloc(a, sz);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}
