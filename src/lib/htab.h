/*
 * htab.h - an open-addressing hash index over records kept elsewhere: it
 * stores record indexes only and asks a key function for a record's key
 * (bytes and length, so keys may hold NULs).  Used for GGUF keys and tensor
 * names, where it also catches duplicates.  A zeroed struct qa_htab is an
 * empty index.  Private to the library.
 */
#ifndef QA_HTAB_H
#define QA_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returns the key of record idx. */
typedef void (*qa_htab_key_fn)(const void *ctx, size_t idx, const char **key, uint64_t *len);

struct qa_htab {
	size_t *slot; /* record index + 1, or 0 when empty */
	size_t cap;   /* power of two, or 0 */
	size_t n;
};

/* The index of the record whose key is the len bytes at key, or SIZE_MAX. */
size_t qa_htab_find(const struct qa_htab *h, qa_htab_key_fn get, const void *ctx,
                    const char *key, uint64_t len);

/* Insert record idx (whose key is not yet present); false when out of memory. */
bool qa_htab_insert(struct qa_htab *h, qa_htab_key_fn get, const void *ctx, size_t idx);

/* Release the index; it is empty again. */
void qa_htab_free(struct qa_htab *h);

#endif
