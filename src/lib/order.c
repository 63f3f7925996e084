/*
 * order.c - llama.cpp's weight order (see order.h): layer as a C scanf of
 * "blk.%d." reads it, then the name byte by byte.
 */
#include "order.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The white space scanf's %d skips in the C locale. */
static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int qa_order_layer(const char *name)
{
	if (name == NULL || strncmp(name, "blk.", 4) != 0)
		return -1;
	const unsigned char *p = (const unsigned char *)name + 4;
	while (is_space(*p))
		p++;
	int neg = 0;
	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		p++;
	}
	if (*p < '0' || *p > '9')
		return -1;
	/* strtol's value, saturated at LONG_MIN/LONG_MAX as glibc's scanf sees it */
	unsigned long long mag = 0, lim = (unsigned long long)LONG_MAX + 1;
	int over = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (mag > (ULLONG_MAX - 9) / 10)
			over = 1;
		else
			mag = mag * 10 + (unsigned)(*p - '0');
	}
	long v;
	if (neg)
		v = over || mag >= lim ? LONG_MIN : -(long)mag;
	else
		v = over || mag >= lim ? LONG_MAX : (long)mag;
	/* the store into an int keeps the low 32 bits (two's complement) */
	uint32_t low = (uint32_t)(unsigned long)v;
	return low <= (uint32_t)INT_MAX ? (int)low : -(int)(~low) - 1;
}

int qa_order_cmp(const char *a, const char *b)
{
	int la = qa_order_layer(a), lb = qa_order_layer(b);
	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a ? a : "", b ? b : "");
}

struct okey {
	int layer;
	const char *name;
	size_t idx;
};

static int okey_cmp(const void *x, const void *y)
{
	const struct okey *a = x, *b = y;
	if (a->layer != b->layer)
		return a->layer < b->layer ? -1 : 1;
	int c = strcmp(a->name, b->name);
	if (c)
		return c;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

enum qa_err qa_order_sort(const char *const *names, size_t n, size_t *perm,
                          struct qa_diag *d)
{
	if (n == 0)
		return QA_OK;
	if (names == NULL || perm == NULL)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "order needs names and room for the order");
	struct okey *k = calloc(n, sizeof *k);
	if (k == NULL)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "no memory to order %zu tensors", n);
	for (size_t i = 0; i < n; i++) {
		k[i].name = names[i] ? names[i] : "";
		k[i].layer = qa_order_layer(names[i]);
		k[i].idx = i;
	}
	qsort(k, n, sizeof *k, okey_cmp);
	for (size_t i = 0; i < n; i++)
		perm[i] = k[i].idx;
	free(k);
	return QA_OK;
}
