/*
 * blockhash.c - SHA-256 through OpenSSL 3.
 *
 * Everything goes through one SHA2-256 method fetched explicitly
 * (EVP_MD_fetch) once per process and kept for its life; there is no
 * atexit handler (OpenSSL's own exit clean-up releases its library
 * context).  Every EVP call's result is checked: a failure returns
 * QA_ERR_NOMEM and zeroes the digest, so no stale bytes survive it.
 *
 * Whole files and tensors go through EVP as usual.  The per-block digests
 * are a different load: millions of 144-byte messages, where a plain EVP
 * digest costs about as much in bookkeeping as in hashing (in OpenSSL 3.0
 * every EVP_DigestInit frees and re-allocates the provider's context).  So,
 * with OpenSSL 3.0.x only (checked at run time with OpenSSL_version_num:
 * the series where this was measured and proven), the block hasher binds
 * the very implementation the fetched method dispatches to, through the
 * provider's public dispatch table (OSSL_PROVIDER_query_operation), and
 * drives one provider context per thread with init/update/final.  The
 * binding checks itself against EVP on known input at start-up.  Any other
 * version, a failed self-check, or QUANTAUDIT_SHA256=evp in the environment
 * selects plain EVP_Digest* calls; the test suite runs both paths.
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

/* The fetched method and, on OpenSSL 3.0.x, the provider functions behind
 * it; set up once per process by setup(). */
static struct {
	EVP_MD *md;      /* NULL when SHA2-256 could not be fetched */
	bool ok;         /* the provider path is bound and checked */
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

/* True when the environment forces the EVP path. */
static bool env_forces_evp(void)
{
	const char *v = getenv("QUANTAUDIT_SHA256");
	return v && *v && strcmp(v, "auto") != 0;
}

/* True for the OpenSSL series the provider path is proven on (3.0.x). */
static bool provider_path_proven(void)
{
	unsigned long v = OpenSSL_version_num();
	return (v >> 20) == 0x300ul;
}

/* SHA-256 of len bytes through EVP with the fetched method. */
static bool evp_digest(const void *data, size_t len, uint8_t out[QA_SHA256_LEN])
{
	unsigned int n = 0;
	return prov.md && EVP_Digest(data, len, out, &n, prov.md, NULL) == 1 &&
	       n == QA_SHA256_LEN;
}

static void bind_provider(void)
{
	const OSSL_PROVIDER *p = EVP_MD_get0_provider(prov.md);
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
	size_t outl = 0;
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 29 + 7);
	void *ctx = prov.newctx(prov.provctx);
	if (!ctx)
		return;
	bool same = prov.init(ctx, NULL) && prov.update(ctx, msg, sizeof msg) &&
	            prov.final(ctx, a, &outl, sizeof a) && outl == 32 &&
	            evp_digest(msg, sizeof msg, b) && memcmp(a, b, 32) == 0;
	prov.freectx(ctx);
	prov.ok = same;
}

static void setup(void)
{
	prov.md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	if (prov.md && provider_path_proven() && !env_forces_evp())
		bind_provider();
}

/* The fetched method, or NULL when OpenSSL has none. */
static const EVP_MD *sha256_md(void)
{
	pthread_once(&prov_once, setup);
	return prov.md;
}

const char *qa_blockhash_path(void)
{
	pthread_once(&prov_once, setup);
	return prov.ok ? "provider" : "evp";
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
	if (!sha256_md() || !evp_digest(data, len, out)) {
		memset(out, 0, QA_SHA256_LEN);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "sha-256 failed");
	}
	return QA_OK;
}

struct qa_sha256_stream {
	EVP_MD_CTX *ctx;
	bool failed;     /* an update failed: final reports it */
};

struct qa_sha256_stream *qa_sha256_stream_init(void)
{
	const EVP_MD *md = sha256_md();
	struct qa_sha256_stream *s = calloc(1, sizeof *s);
	if (!s || !md)
		goto fail;
	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx || EVP_DigestInit_ex(s->ctx, md, NULL) != 1)
		goto fail;
	return s;
fail:
	qa_sha256_stream_free(s);
	return NULL;
}

void qa_sha256_stream_update(struct qa_sha256_stream *s, const void *data, size_t len)
{
	if (!s->failed && EVP_DigestUpdate(s->ctx, data, len) != 1)
		s->failed = true;
}

enum qa_err qa_sha256_stream_final(struct qa_sha256_stream *s, uint8_t out[QA_SHA256_LEN])
{
	unsigned int n = 0;
	if (s->failed || EVP_DigestFinal_ex(s->ctx, out, &n) != 1 || n != QA_SHA256_LEN) {
		s->failed = true;
		memset(out, 0, QA_SHA256_LEN);
		return QA_ERR_NOMEM;
	}
	return QA_OK;
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
	const EVP_MD *md = sha256_md();
	struct qa_blockhasher *h = calloc(1, sizeof *h);
	if (!h || !md)
		goto fail;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, md, NULL) != 1)
		goto fail;
	if (prov.ok && !(h->pctx = prov.newctx(prov.provctx)))
		goto fail;
	return h;
fail:
	qa_blockhasher_free(h);
	return NULL;
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

/* One message through h's EVP context; false (out zeroed) on any failure. */
static bool digest(struct qa_blockhasher *h, const void *data, size_t len,
                   uint8_t *out)
{
	unsigned int n = 0;
	/* NULL type: reuse the method already set on the context. */
	if (EVP_DigestInit_ex(h->ctx, NULL, NULL) == 1 &&
	    EVP_DigestUpdate(h->ctx, data, len) == 1 &&
	    EVP_DigestFinal_ex(h->ctx, out, &n) == 1 && n == QA_SHA256_LEN)
		return true;
	memset(out, 0, QA_SHA256_LEN);
	return false;
}

/* A small message: through the bound provider context when there is one.
 * A failure there is a failure (no quiet retry through EVP: the two paths
 * must not mix within a run). */
static bool digest_small(struct qa_blockhasher *h, const void *data, size_t len,
                         uint8_t *out)
{
	if (!h->pctx)
		return digest(h, data, len, out);
	size_t outl = 0;
	if (prov.init(h->pctx, NULL) == 1 && prov.update(h->pctx, data, len) == 1 &&
	    prov.final(h->pctx, out, &outl, QA_SHA256_LEN) == 1 && outl == QA_SHA256_LEN)
		return true;
	memset(out, 0, QA_SHA256_LEN);
	return false;
}

enum qa_err qa_blockhasher_blocks(struct qa_blockhasher *h, const uint8_t *data,
                                  uint64_t nbytes, uint64_t block_bytes,
                                  uint64_t first, uint64_t count, uint8_t *out)
{
	for (uint64_t i = 0; i < count; i++) {
		uint64_t off = (first + i) * block_bytes;
		uint64_t len = nbytes - off < block_bytes ? nbytes - off : block_bytes;
		if (!digest_small(h, data + off, (size_t)len, out + i * QA_SHA256_LEN)) {
			memset(out, 0, (size_t)count * QA_SHA256_LEN);
			return QA_ERR_NOMEM;
		}
	}
	return QA_OK;
}

enum qa_err qa_blockhasher_merkle(struct qa_blockhasher *h, const uint8_t *digests,
                                  uint64_t n_blocks, uint8_t root[QA_SHA256_LEN])
{
	return digest(h, digests, (size_t)(n_blocks * QA_SHA256_LEN), root) ? QA_OK : QA_ERR_NOMEM;
}

enum qa_err qa_blockhasher_whole(struct qa_blockhasher *h, const void *data,
                                 size_t len, uint8_t out[QA_SHA256_LEN])
{
	return digest(h, data, len, out) ? QA_OK : QA_ERR_NOMEM;
}

const char *qa_blockhash_backend_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
