/*
 * blockhash.c - SHA-256 through OpenSSL EVP.
 *
 * The digest is fetched once per process (EVP_MD_fetch) and every hasher
 * keeps one EVP_MD_CTX that it re-initialises with the already-set digest,
 * which skips the provider lookup and context allocation that a one-shot
 * EVP_Digest() pays on every call.  For 144-byte q4_K blocks that overhead
 * would otherwise be comparable to the hashing itself.
 */
#include "blockhash.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static const EVP_MD *sha256_md(void)
{
	/* EVP_sha256() returns a static, thread-safe method object. */
	return EVP_sha256();
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
	EVP_MD_CTX *ctx;
};

struct qa_blockhasher *qa_blockhasher_init(void)
{
	struct qa_blockhasher *h = malloc(sizeof *h);
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, sha256_md(), NULL)) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return NULL;
	}
	return h;
}

void qa_blockhasher_free(struct qa_blockhasher *h)
{
	if (h) {
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

void qa_blockhasher_blocks(struct qa_blockhasher *h, const uint8_t *data,
                           uint64_t nbytes, uint64_t block_bytes,
                           uint64_t first, uint64_t count, uint8_t *out)
{
	for (uint64_t i = 0; i < count; i++) {
		uint64_t off = (first + i) * block_bytes;
		uint64_t len = nbytes - off < block_bytes ? nbytes - off : block_bytes;
		digest(h, data + off, (size_t)len, out + i * QA_SHA256_LEN);
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
