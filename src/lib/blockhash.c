/*
 * blockhash.c - SHA-256 through OpenSSL 3.
 *
 * Whole files and tensors go through EVP as usual.  The per-block digests
 * are a different load: millions of 144-byte messages, where a plain EVP
 * digest costs about as much in bookkeeping as in hashing (in OpenSSL 3.0
 * every EVP_DigestInit frees and re-allocates the provider's context).  So
 * the block hasher fetches SHA2-256 through EVP once, then binds the very
 * implementation EVP dispatches to, through the provider's public dispatch
 * table (OSSL_PROVIDER_query_operation), and drives one provider context per
 * thread with init/update/final.  The bytes hashed and the code hashing them
 * are EVP's; only the per-call allocation is gone.  The binding checks
 * itself against EVP on known input at start-up and falls back to EVP_Digest*
 * calls when anything about it is unexpected.
 */
#define _POSIX_C_SOURCE 200809L
#include "blockhash.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

static const EVP_MD *sha256_md(void)
{
	/* EVP_sha256() returns a static, thread-safe method object. */
	return EVP_sha256();
}

/* The provider functions behind EVP's SHA2-256, bound once per process. */
static struct {
	bool ok;
	void *provctx;
	OSSL_FUNC_digest_newctx_fn *newctx;
	OSSL_FUNC_digest_freectx_fn *freectx;
	OSSL_FUNC_digest_init_fn *init;
	OSSL_FUNC_digest_update_fn *update;
	OSSL_FUNC_digest_final_fn *final;
} prov;
static pthread_once_t prov_once = PTHREAD_ONCE_INIT;

/* True when the colon-separated list names holds name. */
static bool names_hold(const char *names, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = names; p && *p;) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* The fetched method pins the provider whose functions we call; it is kept
 * until exit and released then, before OpenSSL's own clean-up (atexit runs
 * handlers in reverse order, and OpenSSL registered its handler first). */
static EVP_MD *bound_md;

static void release_provider(void)
{
	prov.ok = false;
	EVP_MD_free(bound_md);
	bound_md = NULL;
}

static void bind_provider(void)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	if (!md)
		return;
	bound_md = md;
	atexit(release_provider);
	const OSSL_PROVIDER *p = md ? EVP_MD_get0_provider(md) : NULL;
	int no_store = 0;
	const OSSL_ALGORITHM *alg = p ? OSSL_PROVIDER_query_operation(p, OSSL_OP_DIGEST, &no_store) : NULL;
	const OSSL_DISPATCH *fns = NULL;
	for (; alg && alg->algorithm_names; alg++)
		if (names_hold(alg->algorithm_names, "SHA2-256")) {
			fns = alg->implementation;
			break;
		}
	for (; fns && fns->function_id; fns++) {
		switch (fns->function_id) {
		case OSSL_FUNC_DIGEST_NEWCTX: prov.newctx = OSSL_FUNC_digest_newctx(fns); break;
		case OSSL_FUNC_DIGEST_FREECTX: prov.freectx = OSSL_FUNC_digest_freectx(fns); break;
		case OSSL_FUNC_DIGEST_INIT: prov.init = OSSL_FUNC_digest_init(fns); break;
		case OSSL_FUNC_DIGEST_UPDATE: prov.update = OSSL_FUNC_digest_update(fns); break;
		case OSSL_FUNC_DIGEST_FINAL: prov.final = OSSL_FUNC_digest_final(fns); break;
		}
	}
	if (!p || !prov.newctx || !prov.freectx || !prov.init || !prov.update || !prov.final)
		return;
	prov.provctx = OSSL_PROVIDER_get0_provider_ctx(p);
	/* self-check against EVP on a 144-byte message */
	uint8_t msg[144], a[32], b[32];
	unsigned int n = 0;
	size_t outl = 0;
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 29 + 7);
	void *ctx = prov.newctx(prov.provctx);
	if (!ctx)
		return;
	bool same = prov.init(ctx, NULL) && prov.update(ctx, msg, sizeof msg) &&
	            prov.final(ctx, a, &outl, sizeof a) && outl == 32 &&
	            EVP_Digest(msg, sizeof msg, b, &n, sha256_md(), NULL) && memcmp(a, b, 32) == 0;
	prov.freectx(ctx);
	prov.ok = same;
}

uint64_t qa_blockhash_block_bytes(const struct qa_type_info *t)
{
	if (t->block_elems >= QA_HASH_BLOCK_ELEMS)
		return t->block_bytes;
	return (uint64_t)(QA_HASH_BLOCK_ELEMS / t->block_elems) * t->block_bytes;
}

uint64_t qa_blockhash_n_blocks(uint64_t nbytes, uint64_t block_bytes)
{
	if (block_bytes == 0)
		return 0;
	return nbytes / block_bytes + (nbytes % block_bytes != 0);
}

enum qa_err qa_sha256(const void *data, size_t len, uint8_t out[QA_SHA256_LEN],
                      struct qa_diag *d)
{
	unsigned int n = 0;
	if (!EVP_Digest(data, len, out, &n, sha256_md(), NULL))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
	return QA_OK;
}

struct qa_sha256_stream {
	EVP_MD_CTX *ctx;
};

struct qa_sha256_stream *qa_sha256_stream_init(void)
{
	struct qa_sha256_stream *s = malloc(sizeof *s);
	if (!s)
		return NULL;
	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx || !EVP_DigestInit_ex(s->ctx, sha256_md(), NULL)) {
		EVP_MD_CTX_free(s->ctx);
		free(s);
		return NULL;
	}
	return s;
}

void qa_sha256_stream_update(struct qa_sha256_stream *s, const void *data, size_t len)
{
	EVP_DigestUpdate(s->ctx, data, len);
}

void qa_sha256_stream_final(struct qa_sha256_stream *s, uint8_t out[QA_SHA256_LEN])
{
	unsigned int n = 0;
	EVP_DigestFinal_ex(s->ctx, out, &n);
}

void qa_sha256_stream_free(struct qa_sha256_stream *s)
{
	if (s) {
		EVP_MD_CTX_free(s->ctx);
		free(s);
	}
}

struct qa_blockhasher {
	EVP_MD_CTX *ctx; /* EVP path: whole buffers, and blocks when unbound */
	void *pctx;      /* provider context for blocks, NULL when unbound */
};

struct qa_blockhasher *qa_blockhasher_init(void)
{
	pthread_once(&prov_once, bind_provider);
	struct qa_blockhasher *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, sha256_md(), NULL)) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return NULL;
	}
	if (prov.ok)
		h->pctx = prov.newctx(prov.provctx);
	return h;
}

void qa_blockhasher_free(struct qa_blockhasher *h)
{
	if (h) {
		if (h->pctx)
			prov.freectx(h->pctx);
		EVP_MD_CTX_free(h->ctx);
		free(h);
	}
}

static void digest(struct qa_blockhasher *h, const void *data, size_t len,
                   uint8_t *out)
{
	unsigned int n = 0;
	/* NULL type: reuse the digest already set on the context. */
	EVP_DigestInit_ex(h->ctx, NULL, NULL);
	EVP_DigestUpdate(h->ctx, data, len);
	EVP_DigestFinal_ex(h->ctx, out, &n);
}

/* A small message: through the bound provider context when there is one. */
static void digest_small(struct qa_blockhasher *h, const void *data, size_t len,
                         uint8_t *out)
{
	size_t outl = 0;
	if (h->pctx && prov.init(h->pctx, NULL) && prov.update(h->pctx, data, len) &&
	    prov.final(h->pctx, out, &outl, QA_SHA256_LEN))
		return;
	digest(h, data, len, out);
}

void qa_blockhasher_blocks(struct qa_blockhasher *h, const uint8_t *data,
                           uint64_t nbytes, uint64_t block_bytes,
                           uint64_t first, uint64_t count, uint8_t *out)
{
	for (uint64_t i = 0; i < count; i++) {
		uint64_t off = (first + i) * block_bytes;
		uint64_t len = nbytes - off < block_bytes ? nbytes - off : block_bytes;
		digest_small(h, data + off, (size_t)len, out + i * QA_SHA256_LEN);
	}
}

void qa_blockhasher_merkle(struct qa_blockhasher *h, const uint8_t *digests,
                           uint64_t n_blocks, uint8_t root[QA_SHA256_LEN])
{
	digest(h, digests, (size_t)(n_blocks * QA_SHA256_LEN), root);
}

void qa_blockhasher_whole(struct qa_blockhasher *h, const void *data,
                          size_t len, uint8_t out[QA_SHA256_LEN])
{
	digest(h, data, len, out);
}

const char *qa_blockhash_backend_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
