#define _POSIX_C_SOURCE 200809L
/*
 * check_blockhash.c - SHA-256 against the FIPS 180-2 test vectors through
 * all three entry points (one-shot, stream, block hasher), the block
 * hasher's per-block path against the one-shot path on every short length,
 * the 256-element block geometry of each type, the Merkle-root definition,
 * and per-thread hashers agreeing.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockhash.h"
#include "types.h"

/* FIPS 180-2 appendix B, plus the 896-bit message of its successors. */
static const struct {
	const char *msg; /* NULL: one million 'a' */
	const char *hex;
} vectors[] = {
	{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
	{ NULL, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
};

static void hex_digest(const char *hex, uint8_t out[QA_SHA256_LEN])
{
	for (int i = 0; i < QA_SHA256_LEN; i++) {
		char two[3] = { hex[2 * i], hex[2 * i + 1], '\0' };
		out[i] = (uint8_t)strtoul(two, NULL, 16);
	}
}

/* The vector's message in a malloc'd buffer. */
static uint8_t *vector_msg(int i, size_t *len)
{
	size_t n = vectors[i].msg ? strlen(vectors[i].msg) : 1000000;
	uint8_t *p = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(p);
	if (vectors[i].msg)
		memcpy(p, vectors[i].msg, n);
	else
		memset(p, 'a', n);
	*len = n;
	return p;
}

/* Deterministic filler bytes. */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1u;
	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (uint8_t)(x >> 24);
	}
}

/* core: qa_sha256 on the vectors. */
START_TEST(oneshot_vectors)
{
	size_t n;
	uint8_t *m = vector_msg(_i, &n), want[32], got[32];
	hex_digest(vectors[_i].hex, want);
	struct qa_diag d;
	ck_assert_int_eq(qa_sha256(m, n, got, &d), QA_OK);
	ck_assert_mem_eq(got, want, 32);
	free(m);
}
END_TEST

/* core: the stream API on the vectors, fed in pieces of several sizes. */
static const size_t pieces[] = { 1, 3, 63, 64, 65, 1000, 1000000 };

START_TEST(stream_vectors)
{
	size_t n;
	uint8_t *m = vector_msg(_i, &n), want[32];
	hex_digest(vectors[_i].hex, want);
	for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
		if (n > 100000 && pieces[k] < 64)
			continue; /* a million one-byte updates add nothing but time */
		struct qa_sha256_stream *s = qa_sha256_stream_init();
		ck_assert_ptr_nonnull(s);
		for (size_t off = 0; off < n; off += pieces[k])
			qa_sha256_stream_update(s, m + off, n - off < pieces[k] ? n - off : pieces[k]);
		uint8_t got[32];
		ck_assert_int_eq(qa_sha256_stream_final(s, got), QA_OK);
		qa_sha256_stream_free(s);
		ck_assert_mem_eq(got, want, 32);
	}
	free(m);
}
END_TEST

/* core: the block hasher on the vectors, whole and as one block. */
START_TEST(blockhasher_vectors)
{
	size_t n;
	uint8_t *m = vector_msg(_i, &n), want[32], got[32];
	hex_digest(vectors[_i].hex, want);
	struct qa_blockhasher *h = qa_blockhasher_init();
	ck_assert_ptr_nonnull(h);
	memset(got, 0, sizeof got);
	ck_assert_int_eq(qa_blockhasher_whole(h, m, n, got), QA_OK);
	ck_assert_mem_eq(got, want, 32);
	memset(got, 0, sizeof got);
	ck_assert_int_eq(qa_blockhasher_blocks(h, m, n, n ? n : 1, 0, 1, got), QA_OK);
	ck_assert_mem_eq(got, want, 32);
	/* the hasher is reusable: again, in the other order */
	memset(got, 0, sizeof got);
	ck_assert_int_eq(qa_blockhasher_blocks(h, m, n, n ? n : 1, 0, 1, got), QA_OK);
	ck_assert_mem_eq(got, want, 32);
	ck_assert_int_eq(qa_blockhasher_whole(h, m, n, got), QA_OK);
	ck_assert_mem_eq(got, want, 32);
	qa_blockhasher_free(h);
	free(m);
}
END_TEST

/* core: one block of every length 0..300 equals the one-shot digest. */
START_TEST(blocks_every_length)
{
	uint8_t buf[300], want[32], got[32];
	fill(buf, sizeof buf, 7);
	struct qa_blockhasher *h = qa_blockhasher_init();
	ck_assert_ptr_nonnull(h);
	for (size_t len = 0; len <= sizeof buf; len++) {
		ck_assert_int_eq(qa_sha256(buf, len, want, NULL), QA_OK);
		ck_assert_int_eq(qa_blockhasher_blocks(h, buf, len, len ? len : 1, 0, 1, got), QA_OK);
		ck_assert_msg(memcmp(got, want, 32) == 0, "length %zu", len);
		ck_assert_int_eq(qa_blockhasher_whole(h, buf, len, got), QA_OK);
		ck_assert_msg(memcmp(got, want, 32) == 0, "whole, length %zu", len);
	}
	qa_blockhasher_free(h);
}
END_TEST

/* core: many blocks of several sizes, partial last block, any starting block. */
static const uint64_t block_sizes[] = { 1, 55, 64, 144, 210, 272 };

START_TEST(blocks_cut)
{
	uint64_t bb = block_sizes[_i];
	uint8_t buf[300];
	fill(buf, sizeof buf, 11);
	struct qa_blockhasher *h = qa_blockhasher_init();
	ck_assert_ptr_nonnull(h);
	for (uint64_t n = 0; n <= sizeof buf; n++) {
		uint64_t nb = qa_blockhash_n_blocks(n, bb);
		uint8_t *got = malloc(nb * 32 + 1);
		ck_assert_ptr_nonnull(got);
		ck_assert_int_eq(qa_blockhasher_blocks(h, buf, n, bb, 0, nb, got), QA_OK);
		for (uint64_t b = 0; b < nb; b++) {
			uint64_t off = b * bb, len = n - off < bb ? n - off : bb;
			uint8_t want[32];
			ck_assert_int_eq(qa_sha256(buf + off, (size_t)len, want, NULL), QA_OK);
			ck_assert_msg(memcmp(got + b * 32, want, 32) == 0, "n %llu block %llu",
			              (unsigned long long)n, (unsigned long long)b);
		}
		/* a sub-range starting at block `first` gives the same digests */
		for (uint64_t first = 0; first < nb; first += 1 + nb / 3) {
			uint8_t *part = malloc((nb - first) * 32);
			ck_assert_ptr_nonnull(part);
			ck_assert_int_eq(qa_blockhasher_blocks(h, buf, n, bb, first, nb - first, part), QA_OK);
			ck_assert_int_eq(memcmp(part, got + first * 32, (size_t)(nb - first) * 32), 0);
			free(part);
		}
		free(got);
	}
	qa_blockhasher_free(h);
}
END_TEST

/* core: the Merkle root is SHA-256 of the concatenated block digests. */
static const size_t merkle_lens[] = { 1, 144, 145, 1440, 5000 };

START_TEST(merkle_definition)
{
	size_t n = merkle_lens[_i];
	uint8_t *buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	fill(buf, n, 3);
	uint64_t bb = 144, nb = qa_blockhash_n_blocks(n, bb);
	uint8_t *cat = malloc(nb * 32);
	ck_assert_ptr_nonnull(cat);
	for (uint64_t b = 0; b < nb; b++) {
		uint64_t off = b * bb, len = n - off < bb ? n - off : bb;
		ck_assert_int_eq(qa_sha256(buf + off, (size_t)len, cat + b * 32, NULL), QA_OK);
	}
	uint8_t want[32], got[32];
	ck_assert_int_eq(qa_sha256(cat, (size_t)nb * 32, want, NULL), QA_OK);
	struct qa_blockhasher *h = qa_blockhasher_init();
	ck_assert_ptr_nonnull(h);
	uint8_t *digests = malloc(nb * 32);
	ck_assert_ptr_nonnull(digests);
	ck_assert_int_eq(qa_blockhasher_blocks(h, buf, n, bb, 0, nb, digests), QA_OK);
	ck_assert_int_eq(memcmp(digests, cat, (size_t)nb * 32), 0);
	ck_assert_int_eq(qa_blockhasher_merkle(h, digests, nb, got), QA_OK);
	ck_assert_mem_eq(got, want, 32);
	qa_blockhasher_free(h);
	free(digests);
	free(cat);
	free(buf);
}
END_TEST

/* core: two hashers in two threads give identical digests. */
#define MT_BYTES (1u << 20)
#define MT_BB 144u

struct mt_job {
	const uint8_t *data;
	uint8_t *digests;
	uint8_t root[32];
	int ok;
};

static void *mt_run(void *arg)
{
	struct mt_job *j = arg;
	struct qa_blockhasher *h = qa_blockhasher_init();
	if (!h)
		return NULL;
	uint64_t nb = qa_blockhash_n_blocks(MT_BYTES, MT_BB);
	int ok = 1;
	for (int rep = 0; rep < 3; rep++)
		if (qa_blockhasher_blocks(h, j->data, MT_BYTES, MT_BB, 0, nb, j->digests) != QA_OK ||
		    qa_blockhasher_merkle(h, j->digests, nb, j->root) != QA_OK)
			ok = 0;
	qa_blockhasher_free(h);
	j->ok = ok;
	return NULL;
}

START_TEST(two_threads)
{
	uint8_t *data = malloc(MT_BYTES);
	ck_assert_ptr_nonnull(data);
	fill(data, MT_BYTES, 5);
	uint64_t nb = qa_blockhash_n_blocks(MT_BYTES, MT_BB);
	struct mt_job jobs[2];
	pthread_t th[2];
	for (int k = 0; k < 2; k++) {
		jobs[k].data = data;
		jobs[k].digests = malloc(nb * 32);
		jobs[k].ok = 0;
		ck_assert_ptr_nonnull(jobs[k].digests);
	}
	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(pthread_create(&th[k], NULL, mt_run, &jobs[k]), 0);
	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(pthread_join(th[k], NULL), 0);
	ck_assert(jobs[0].ok && jobs[1].ok);
	ck_assert_int_eq(memcmp(jobs[0].digests, jobs[1].digests, (size_t)nb * 32), 0);
	ck_assert_mem_eq(jobs[0].root, jobs[1].root, 32);
	/* and both agree with the one-shot path on a few blocks */
	for (uint64_t b = 0; b < nb; b += 997) {
		uint64_t off = b * MT_BB, len = MT_BYTES - off < MT_BB ? MT_BYTES - off : MT_BB;
		uint8_t want[32];
		ck_assert_int_eq(qa_sha256(data + off, (size_t)len, want, NULL), QA_OK);
		ck_assert_mem_eq(jobs[0].digests + b * 32, want, 32);
	}
	uint8_t last[32];
	uint64_t off = (nb - 1) * MT_BB;
	ck_assert_int_eq(qa_sha256(data + off, MT_BYTES - off, last, NULL), QA_OK);
	ck_assert_mem_eq(jobs[1].digests + (nb - 1) * 32, last, 32);
	for (int k = 0; k < 2; k++)
		free(jobs[k].digests);
	free(data);
}
END_TEST

START_TEST(backend_version)
{
	const char *v = qa_blockhash_backend_version();
	ck_assert_ptr_nonnull(v);
	ck_assert_ptr_nonnull(strstr(v, "OpenSSL"));
}
END_TEST

/*
 * core: the block path this process runs is the one the rules choose:
 * QUANTAUDIT_SHA256=evp (set by `make check`'s second run of this suite,
 * tests/unit/blockhash-evp.sh) forces EVP; otherwise the provider shortcut
 * with OpenSSL 3.0.x and EVP with anything else.  The vectors above run
 * under whichever it is, so the two runs together cover both paths.
 */
START_TEST(block_path)
{
	const char *env = getenv("QUANTAUDIT_SHA256");
	const char *v = qa_blockhash_backend_version();
	const char *want = env && *env && strcmp(env, "auto") != 0 ? "evp"
	                   : strncmp(v, "OpenSSL 3.0.", 12) == 0 ? "provider" : "evp";
	ck_assert_str_eq(qa_blockhash_path(), want);
	/* a block through this path equals the FIPS vector */
	uint8_t want_d[32], got[32];
	hex_digest(vectors[1].hex, want_d);
	struct qa_blockhasher *h = qa_blockhasher_init();
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(qa_blockhasher_blocks(h, (const uint8_t *)"abc", 3, 3, 0, 1, got), QA_OK);
	qa_blockhasher_free(h);
	ck_assert_mem_eq(got, want_d, 32);
}
END_TEST

/*
 * limits: bytes of one 256-element block.  q4_K and q6_K have 256-element
 * super-blocks of 144 and 210 bytes; q8_0 and iq4_nl have 32-element blocks
 * of 34 and 18 bytes (8 of them per hash block); f16 and f32 are 2 and 4
 * bytes per element.
 */
static const struct {
	const char *type;
	uint64_t bytes;
} geometry[] = {
	{ "q4_K", 144 }, { "q8_0", 272 }, { "f16", 512 },  { "f32", 1024 },
	{ "iq4_nl", 144 }, { "q6_K", 210 }, { "bf16", 512 }, { "q4_0", 144 },
	{ "q5_K", 176 },  { "q2_K", 84 },
};

START_TEST(block_bytes)
{
	const struct qa_type_info *t = qa_type_by_name(geometry[_i].type);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(qa_blockhash_block_bytes(t), geometry[_i].bytes);
	/* a whole tensor of 896 hash blocks is exactly 896 blocks of those bytes */
	uint64_t nbytes;
	ck_assert(qa_type_nbytes(t, 896u * 256u, &nbytes));
	ck_assert_uint_eq(nbytes, 896u * geometry[_i].bytes);
	ck_assert_uint_eq(qa_blockhash_n_blocks(nbytes, qa_blockhash_block_bytes(t)), 896);
	/* a tensor of 896*256 + 32 elements ends with a partial block */
	if (t->block_elems <= 32) {
		ck_assert(qa_type_nbytes(t, 896u * 256u + 32u, &nbytes));
		ck_assert_uint_eq(qa_blockhash_n_blocks(nbytes, qa_blockhash_block_bytes(t)), 897);
	}
}
END_TEST

/* limits: the block count rounds up. */
static const struct {
	uint64_t nbytes, bb, want;
} counts[] = {
	{ 0, 144, 0 },     { 1, 144, 1 },     { 143, 144, 1 },
	{ 144, 144, 1 },   { 145, 144, 2 },   { 288, 144, 2 },
	{ 289, 144, 3 },   { 1024, 1024, 1 }, { 1023, 1024, 1 },
	{ 7, 1, 7 },       { 0, 1, 0 },
	{ UINT64_MAX, 1, UINT64_MAX },
	{ UINT64_MAX, 2, (UINT64_MAX / 2) + 1 },
	{ UINT64_MAX, UINT64_MAX, 1 },
	{ UINT64_MAX - 1, UINT64_MAX, 1 },
	{ 1, UINT64_MAX, 1 },
};

START_TEST(n_blocks)
{
	ck_assert_uint_eq(qa_blockhash_n_blocks(counts[_i].nbytes, counts[_i].bb), counts[_i].want);
}
END_TEST

/* limits: empty input; the Merkle root of no blocks is SHA-256 of no bytes. */
START_TEST(empty_inputs)
{
	uint8_t want[32], got[32];
	hex_digest(vectors[0].hex, want);
	struct qa_blockhasher *h = qa_blockhasher_init();
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(qa_blockhasher_merkle(h, NULL, 0, got), QA_OK);
	ck_assert_mem_eq(got, want, 32);
	memset(got, 0, sizeof got);
	ck_assert_int_eq(qa_sha256(NULL, 0, got, NULL), QA_OK);
	ck_assert_mem_eq(got, want, 32);
	/* count 0 writes nothing */
	uint8_t guard[32];
	memset(guard, 0xa5, sizeof guard);
	ck_assert_int_eq(qa_blockhasher_blocks(h, (const uint8_t *)"x", 1, 144, 0, 0, guard), QA_OK);
	for (int i = 0; i < 32; i++)
		ck_assert_uint_eq(guard[i], 0xa5);
	qa_blockhasher_free(h);
	qa_blockhasher_free(NULL);
	qa_sha256_stream_free(NULL);
	/* an empty stream */
	struct qa_sha256_stream *s = qa_sha256_stream_init();
	ck_assert_ptr_nonnull(s);
	qa_sha256_stream_update(s, "", 0);
	ck_assert_int_eq(qa_sha256_stream_final(s, got), QA_OK);
	qa_sha256_stream_free(s);
	ck_assert_mem_eq(got, want, 32);
}
END_TEST

/* malformed: a zero block size cannot divide anything and counts no blocks. */
START_TEST(zero_block_bytes)
{
	ck_assert_uint_eq(qa_blockhash_n_blocks(0, 0), 0);
	ck_assert_uint_eq(qa_blockhash_n_blocks(1000, 0), 0);
	ck_assert_uint_eq(qa_blockhash_n_blocks(UINT64_MAX, 0), 0);
}
END_TEST

/* malformed: digests change with any single flipped bit (a sanity property of the wiring). */
START_TEST(bit_flip_changes_block)
{
	uint8_t buf[432], a[3 * 32], b[3 * 32];
	fill(buf, sizeof buf, 9);
	struct qa_blockhasher *h = qa_blockhasher_init();
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(qa_blockhasher_blocks(h, buf, sizeof buf, 144, 0, 3, a), QA_OK);
	size_t pos = (size_t)_i * 61 % sizeof buf;
	buf[pos] ^= (uint8_t)(1u << (_i % 8));
	ck_assert_int_eq(qa_blockhasher_blocks(h, buf, sizeof buf, 144, 0, 3, b), QA_OK);
	for (int k = 0; k < 3; k++) {
		int changed = memcmp(a + k * 32, b + k * 32, 32) != 0;
		ck_assert_int_eq(changed, (size_t)k == pos / 144);
	}
	qa_blockhasher_free(h);
}
END_TEST

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
	Suite *s = suite_create("blockhash");
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 60);
	tcase_add_loop_test(core, oneshot_vectors, 0, LEN(vectors));
	tcase_add_loop_test(core, stream_vectors, 0, LEN(vectors));
	tcase_add_loop_test(core, blockhasher_vectors, 0, LEN(vectors));
	tcase_add_test(core, blocks_every_length);
	tcase_add_loop_test(core, blocks_cut, 0, LEN(block_sizes));
	tcase_add_loop_test(core, merkle_definition, 0, LEN(merkle_lens));
	tcase_add_test(core, two_threads);
	tcase_add_test(core, backend_version);
	tcase_add_test(core, block_path);
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(limits, block_bytes, 0, LEN(geometry));
	tcase_add_loop_test(limits, n_blocks, 0, LEN(counts));
	tcase_add_test(limits, empty_inputs);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, zero_block_bytes);
	tcase_add_loop_test(bad, bit_flip_changes_block, 0, 16);
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
