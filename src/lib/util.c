/*
 * util.c - small helpers several library modules share (see util.h).
 */
#define _DEFAULT_SOURCE /* madvise, MADV_DONTNEED */
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cursor.h"

#define FAULT_AROUND ((uint64_t)64 << 10) /* Linux fault_around_bytes default */

bool qa_array_grow(void **arr, size_t *cap, size_t want, size_t elem)
{
	if (want <= *cap)
		return true;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < want) {
		if (ncap > SIZE_MAX / 2)
			return false;
		ncap *= 2;
	}
	size_t bytes;
	if (!qa_mul_size(ncap, elem, &bytes))
		return false;
	void *p = realloc(*arr, bytes);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

bool qa_is_pow2(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

char *qa_str_dup(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

char *qa_path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name), n;
	if (!qa_add_size(a, b, &n) || !qa_add_size(n, 2, &n))
		return NULL;
	char *p = malloc(n);
	if (!p)
		return NULL;
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

char *qa_path_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return qa_str_dup(".");
	size_t n = (size_t)(slash - path);
	if (n == 0)
		n = 1; /* "/file" lives in "/" */
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, path, n);
	p[n] = '\0';
	return p;
}

bool qa_mem_ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

bool qa_str_ends_with(const char *s, const char *suffix)
{
	return qa_mem_ends_with(s, strlen(s), suffix);
}

void qa_unmap_pages(void *base, uint64_t map_len, uint64_t off, uint64_t len)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t page = ps > 0 ? (uint64_t)ps : 4096;
	/* outward to the kernel's fault-around unit: a fault maps the cached
	 * pages of its whole 64 KiB block, so pages just behind (or ahead of)
	 * a window get mapped again by the next window's first fault; dropping
	 * the whole blocks keeps them from piling up, one block per window */
	uint64_t unit = page > FAULT_AROUND ? page : FAULT_AROUND;
	uintptr_t b = (uintptr_t)base;
	uint64_t start = (b + off) / unit * unit, end = (b + off + len + unit - 1) / unit * unit;
	/* never past the mapping: a neighbouring anonymous mapping would lose
	 * its contents */
	if (start < b)
		start = b;
	if (end > (b + map_len + page - 1) / page * page)
		end = (b + map_len + page - 1) / page * page;
	if (end > start)
		madvise((void *)(uintptr_t)start, (size_t)(end - start), MADV_DONTNEED);
}

void qa_hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_digit(char c, bool any_case)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (any_case && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool qa_hex_decode(const char *s, uint8_t *out, size_t n, bool any_case)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(s[2 * i], any_case), lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1], any_case);
		if (lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}
