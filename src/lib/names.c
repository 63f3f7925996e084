/*
 * names.c - Hugging Face <-> GGUF tensor names and the llama row permutation.
 *
 * The renaming rules are the architecture table's (arch.h); '#' in a
 * pattern stands for a decimal layer number.
 */
#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "cursor.h"
#include "util.h"

/* Name endings the converter skips before mapping anything. */
static const char *const dropped_suffixes[] = {
	".rotary_emb.inv_freq",
	".attention.masked_bias",
	".attention.bias",
};

/* Suffixes the mapping carries over unchanged. */
static const char *const kept_suffixes[] = { ".weight", ".bias" };


/*
 * Parse a canonical decimal (no sign, no leading zero unless it is "0", at
 * most 10 digits, fits 32 bits) at s[0..len).  Returns the digits used, 0 if
 * none.
 */
static size_t parse_layer(const char *s, size_t len, bool canonical,
                          uint32_t *out)
{
	size_t i = 0;
	uint64_t v = 0;
	while (i < len && i < 11 && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (uint64_t)(s[i] - '0');
		i++;
	}
	if (i == 0 || i > 10 || v > UINT32_MAX)
		return 0;
	if (canonical && i > 1 && s[0] == '0')
		return 0;
	*out = (uint32_t)v;
	return i;
}

/* Does pattern match exactly s[0..len)?  The layer number goes to *layer. */
static bool pattern_match(const char *pattern, const char *s, size_t len,
                          uint32_t *layer)
{
	size_t i = 0;
	for (const char *p = pattern; *p; p++) {
		if (*p == '#') {
			size_t used = parse_layer(s + i, len - i, true, layer);
			if (used == 0)
				return false;
			i += used;
		} else {
			if (i >= len || s[i] != *p)
				return false;
			i++;
		}
	}
	return i == len;
}

/* Write pattern with '#' replaced by layer, then suffix.  False if cut. */
static bool pattern_expand(const char *pattern, uint32_t layer,
                           const char *suffix, char *out, size_t cap)
{
	size_t o = 0;
	char num[16];
	int nlen = snprintf(num, sizeof num, "%u", (unsigned)layer);
	bool fits = true;

	if (cap == 0)
		return false;
	for (const char *p = pattern; *p; p++) {
		const char *piece = p;
		size_t plen = 1;
		if (*p == '#') {
			piece = num;
			plen = (size_t)nlen;
		}
		for (size_t k = 0; k < plen; k++) {
			if (o + 1 < cap)
				out[o++] = piece[k];
			else
				fits = false;
		}
	}
	for (const char *p = suffix; *p; p++) {
		if (o + 1 < cap)
			out[o++] = *p;
		else
			fits = false;
	}
	out[o] = '\0';
	return fits;
}

static void copy_name(const char *name, char *out, size_t cap)
{
	if (cap == 0)
		return;
	size_t n = strlen(name);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, name, n);
	out[n] = '\0';
}

/*
 * Look name up in the rules of a in the direction given (to_gguf: match the
 * hf column, write the gguf one).  Exact base first, then base + suffix.
 */
static bool table_lookup(const struct qa_arch *a, const char *name, bool to_gguf,
                         char *out, size_t cap, bool *fits)
{
	size_t len = strlen(name);
	for (size_t s = 0; s <= sizeof kept_suffixes / sizeof kept_suffixes[0]; s++) {
		const char *suffix = s == 0 ? "" : kept_suffixes[s - 1];
		if (!qa_mem_ends_with(name, len, suffix))
			continue;
		size_t base = len - strlen(suffix);
		for (const struct qa_arch_names *l = a->names; l->rules; l++) {
			for (size_t i = 0; i < l->n; i++) {
				const char *from = to_gguf ? l->rules[i].hf : l->rules[i].gguf;
				const char *to = to_gguf ? l->rules[i].gguf : l->rules[i].hf;
				const char *fixed = l->rules[i].suffix;
				uint32_t layer = 0;
				/* a rule with a fixed suffix matches no suffix on the hf side, its own on the gguf side */
				if (fixed && strcmp(suffix, to_gguf ? "" : fixed) != 0)
					continue;
				if (pattern_match(from, name, base, &layer)) {
					*fits = pattern_expand(to, layer, !fixed ? suffix : to_gguf ? fixed : "",
					                       out, cap);
					return true;
				}
			}
		}
	}
	return false;
}

/*
 * The converter's filter_tensors removes every "language_model." from a
 * name (multimodal checkpoints nest the decoder under it).  Writes the
 * result to out (cap bytes; false when it does not fit).
 */
static bool strip_language_model(const char *name, char *out, size_t cap)
{
	static const char tag[] = "language_model.";
	size_t o = 0;
	for (const char *p = name; *p;) {
		if (strncmp(p, tag, sizeof tag - 1) == 0) {
			p += sizeof tag - 1;
			continue;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = *p++;
	}
	if (cap == 0)
		return false;
	out[o] = '\0';
	return true;
}

bool qa_names_arch_is_moe(const char *arch)
{
	return qa_arch_has(qa_arch_find(arch), QA_ARCH_MOE);
}

enum qa_names_result qa_names_to_gguf(const char *arch, const char *hf_name,
                                      char *out, size_t cap)
{
	if (arch == NULL)
		arch = "";
	if (hf_name == NULL)
		hf_name = "";
	size_t len = strlen(hf_name);
	for (size_t i = 0; i < sizeof dropped_suffixes / sizeof dropped_suffixes[0]; i++) {
		if (qa_mem_ends_with(hf_name, len, dropped_suffixes[i])) {
			copy_name(hf_name, out, cap);
			return QA_NAME_DROPPED;
		}
	}
	const struct qa_arch *a = qa_arch_find(arch);
	if (a != NULL) {
		bool fits = true;
		char *plain = malloc(len + 1);
		const char *name = hf_name;
		if (plain != NULL && strip_language_model(hf_name, plain, len + 1))
			name = plain;
		if (qa_arch_has(a, QA_ARCH_DROP_LM_HEAD) && strcmp(name, "lm_head.weight") == 0) {
			free(plain);
			copy_name(hf_name, out, cap);
			return QA_NAME_DROPPED;
		}
		bool found = table_lookup(a, name, true, out, cap, &fits);
		free(plain);
		if (found)
			return QA_NAME_MAPPED;
	}
	copy_name(hf_name, out, cap);
	return QA_NAME_KEPT;
}

bool qa_names_to_hf(const char *arch, const char *gguf_name, char *out,
                    size_t cap)
{
	bool fits = false;
	if (cap > 0)
		out[0] = '\0';
	const struct qa_arch *a = qa_arch_find(arch);
	if (gguf_name == NULL || cap == 0 || a == NULL)
		return false;
	if (!table_lookup(a, gguf_name, false, out, cap, &fits))
		return false;
	if (!fits) {
		out[0] = '\0';
		return false;
	}
	return true;
}

enum qa_names_perm qa_names_permutation(const char *arch,
                                        const char *gguf_name)
{
	char cls[32];
	if (gguf_name == NULL || !qa_arch_has(qa_arch_find(arch), QA_ARCH_PERMUTE_QK))
		return QA_PERM_NONE;
	if (!qa_names_layer(gguf_name, NULL))
		return QA_PERM_NONE;
	size_t len = strlen(gguf_name);
	if (!qa_mem_ends_with(gguf_name, len, ".weight") && !qa_mem_ends_with(gguf_name, len, ".bias"))
		return QA_PERM_NONE;
	if (qa_names_class(gguf_name, cls, sizeof cls) == NULL)
		return QA_PERM_NONE;
	if (strcmp(cls, "attn_q") == 0)
		return QA_PERM_Q;
	if (strcmp(cls, "attn_k") == 0)
		return QA_PERM_K;
	return QA_PERM_NONE;
}

enum qa_err qa_names_permute_rows(const float *src, float *dst, uint64_t rows,
                                  uint64_t cols, uint32_t n_heads,
                                  struct qa_diag *d)
{
	uint64_t total;
	if (src == NULL || dst == NULL || n_heads == 0)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "permute needs buffers and a nonzero head count");
	if (rows % (2 * (uint64_t)n_heads) != 0)
		return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
		                   "%llu rows do not split into %u heads of row pairs",
		                   (unsigned long long)rows, (unsigned)n_heads);
	if (!qa_mul_u64(rows, cols, &total) || total > SIZE_MAX / sizeof(float))
		return qa_diag_set(d, QA_ERR_VALUE, QA_NO_OFFSET,
		                   "permute of %llu x %llu overflows",
		                   (unsigned long long)rows, (unsigned long long)cols);

	uint64_t head_rows = rows / n_heads;
	uint64_t half = head_rows / 2;
	size_t row_bytes = (size_t)cols * sizeof(float);
	for (uint64_t h = 0; h < n_heads; h++) {
		uint64_t base = h * head_rows;
		for (uint64_t j = 0; j < half; j++) {
			for (uint64_t s = 0; s < 2; s++) {
				uint64_t to = base + 2 * j + s;
				uint64_t from = base + s * half + j;
				if (row_bytes > 0)
					memcpy(dst + to * cols, src + from * cols, row_bytes);
			}
		}
	}
	return QA_OK;
}

bool qa_names_layer(const char *gguf_name, uint32_t *layer)
{
	uint32_t v = 0;
	if (gguf_name == NULL || strncmp(gguf_name, "blk.", 4) != 0)
		return false;
	const char *p = gguf_name + 4;
	size_t used = parse_layer(p, strlen(p), false, &v);
	if (used == 0 || p[used] != '.')
		return false;
	if (layer != NULL)
		*layer = v;
	return true;
}

const char *qa_names_class(const char *gguf_name, char *buf, size_t cap)
{
	if (gguf_name == NULL || buf == NULL || cap == 0)
		return NULL;
	const char *start = gguf_name;
	if (qa_names_layer(gguf_name, NULL))
		start = strchr(gguf_name + 4, '.') + 1;
	size_t len = strlen(start);
	for (size_t i = 0; i < sizeof kept_suffixes / sizeof kept_suffixes[0]; i++) {
		if (qa_mem_ends_with(start, len, kept_suffixes[i])) {
			len -= strlen(kept_suffixes[i]);
			break;
		}
	}
	if (len >= cap)
		return NULL;
	memcpy(buf, start, len);
	buf[len] = '\0';
	return buf;
}
