/*
 * htab.c - open-addressing hash index over (bytes, length) keys (see htab.h).
 */
#include "htab.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, uint64_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (uint64_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

size_t qa_htab_find(const struct qa_htab *h, qa_htab_key_fn get, const void *ctx,
                        const char *key, uint64_t len)
{
	if (!h->cap)
		return SIZE_MAX;
	size_t mask = h->cap - 1;
	size_t i = (size_t)hash_bytes(key, len) & mask;
	while (h->slot[i]) {
		const char *k;
		uint64_t kl;
		get(ctx, h->slot[i] - 1, &k, &kl);
		if (kl == len && memcmp(k, key, (size_t)len) == 0)
			return h->slot[i] - 1;
		i = (i + 1) & mask;
	}
	return SIZE_MAX;
}

static void htab_put(size_t *slot, size_t cap, qa_htab_key_fn get, const void *ctx, size_t idx)
{
	const char *k;
	uint64_t kl;
	get(ctx, idx, &k, &kl);
	size_t mask = cap - 1;
	size_t i = (size_t)hash_bytes(k, kl) & mask;
	while (slot[i])
		i = (i + 1) & mask;
	slot[i] = idx + 1;
}

bool qa_htab_insert(struct qa_htab *h, qa_htab_key_fn get, const void *ctx, size_t idx)
{
	if ((h->n + 1) * 2 > h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		if (cap < h->cap)
			return false;
		size_t *slot = calloc(cap, sizeof *slot);
		if (!slot)
			return false;
		for (size_t i = 0; i < h->cap; i++)
			if (h->slot[i])
				htab_put(slot, cap, get, ctx, h->slot[i] - 1);
		free(h->slot);
		h->slot = slot;
		h->cap = cap;
	}
	htab_put(h->slot, h->cap, get, ctx, idx);
	h->n++;
	return true;
}

void qa_htab_free(struct qa_htab *h)
{
	free(h->slot);
	h->slot = NULL;
	h->cap = h->n = 0;
}
