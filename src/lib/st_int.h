/*
 * st_int.h - what the safetensors reader (safetensors.c) and the shard
 * index and directory opener (st_index.c) share: the checkpoint struct and
 * the steps of building one.  Private to the library.
 */
#ifndef QA_ST_INT_H
#define QA_ST_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "safetensors.h"
#include "source.h"

#define QA_ST_INDEX_NAME "model.safetensors.index.json"

struct qa_st_shard {
	char *path;
	struct qa_source *src;
	bool owned;          /* src is closed with the checkpoint */
	uint64_t header_len; /* 8 + N */
	uint64_t data_len;   /* bytes after the header */
};

struct qa_st_entry {
	struct qa_st_tensor t;
	uint64_t key_off; /* absolute offset of the tensor's key in its shard */
};

struct qa_st_buf_node {
	struct qa_st_buf_node *next;
	unsigned char data[];
};

struct qa_st {
	char *dir;
	struct qa_st_shard *shards;
	uint32_t n_shards;
	struct qa_st_entry *entries;
	size_t n_entries, cap_entries;
	struct qa_st_entry **by_name; /* entries sorted by name */
	char **meta;     /* key, value pairs */
	size_t n_meta, cap_meta;
	json_t *meta_keys;        /* the keys recorded so far, as a set */
	struct qa_st_buf_node *bufs;
};


/* A new, empty checkpoint (NULL when out of memory); freed by qa_st_free. */
struct qa_st *qa_st_new(void);

/* Free st and everything it owns (NULL is a no-op). */
void qa_st_free(struct qa_st *st);

/* Append a shard for path read through src (closed with st when owned);
 * false when out of memory (src is then still the caller's). */
bool qa_st_add_shard(struct qa_st *st, const char *path, struct qa_source *src, bool owned);

/* Parse shard si's header and add its tensors (and, when keep_meta, its
 * __metadata__) to st. */
QA_WARN_UNUSED
enum qa_err qa_st_parse_shard(struct qa_st *st, uint32_t si, bool keep_meta, struct qa_diag *d);

/* Record the metadata pair key = value (copied) unless key is already
 * recorded; false when out of memory. */
bool qa_st_add_meta(struct qa_st *st, const char *key, const char *value);

/* Finish building st after its shards were parsed with result e: sort the
 * tensors by name and reject duplicates across shards, then hand st to *out;
 * on any error st is freed and the error returned. */
QA_WARN_UNUSED
enum qa_err qa_st_finish(struct qa_st *st, enum qa_err e, struct qa_st **out, struct qa_diag *d);

/* QA_ERR_NOMEM with "out of memory". */
QA_WARN_UNUSED
enum qa_err qa_st_nomem(struct qa_diag *d);

#endif
