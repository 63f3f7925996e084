#define _POSIX_C_SOURCE 200809L
/*
 * check_http.c - the ranged-HTTP source against a small HTTP/1.0 server in
 * this process (127.0.0.1, a free port, one thread, closes every
 * connection).  The bytes served are a deterministic pattern, so every read
 * is checked against the pattern itself; the server counts the body bytes it
 * sends.  Faults: a body cut short, 503s, answers that ignore Range, and a
 * wrong X-Linked-Etag.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blockhash.h"
#include "http.h"
#include "remote.h"

#define FILE_SIZE ((size_t)3 << 20)

enum mode { M_OK, M_CUT, M_503, M_NORANGE, M_BADETAG };

static uint8_t *data;
static char sha_hex[65];
static int lfd = -1;
static int port;
static enum mode mode;
static int faults_left;
static unsigned long long served, requests;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t th;
static char cache[64];

static void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		c += w;
		n -= (size_t)w;
	}
}

static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			return NULL;
		char req[4096];
		size_t got = 0;
		while (got < sizeof req - 1) {
			ssize_t r = recv(c, req + got, sizeof req - 1 - got, 0);
			if (r <= 0)
				break;
			got += (size_t)r;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = '\0';
		unsigned long long a = 0, b = FILE_SIZE - 1;
		const char *rg = strstr(req, "Range: bytes=");
		bool ranged = rg != NULL;
		if (rg) {
			char *end;
			a = strtoull(rg + 13, &end, 10);
			if (*end == '-' && end[1] >= '0' && end[1] <= '9')
				b = strtoull(end + 1, NULL, 10);
		}
		if (b >= FILE_SIZE)
			b = FILE_SIZE - 1;
		pthread_mutex_lock(&mu);
		requests++;
		bool fault = faults_left != 0;
		if (faults_left > 0)
			faults_left--;
		enum mode m = fault ? mode : M_OK;
		pthread_mutex_unlock(&mu);
		char h[512];
		int n;
		if (m == M_503) {
			n = snprintf(h, sizeof h, "HTTP/1.0 503 Busy\r\nContent-Length: 0\r\nRetry-After: 0\r\n\r\n");
			send_all(c, h, (size_t)n);
			close(c);
			continue;
		}
		if (m == M_NORANGE || !ranged) {
			a = 0;
			b = FILE_SIZE - 1;
			ranged = false;
		}
		unsigned long long len = b - a + 1;
		n = snprintf(h, sizeof h,
		             "HTTP/1.0 %s\r\nContent-Length: %llu\r\nX-Linked-Etag: \"%s\"\r\n"
		             "X-Repo-Commit: 0123456789abcdef0123456789abcdef01234567\r\n",
		             ranged ? "206 Partial Content" : "200 OK", len,
		             m == M_BADETAG ? "0000000000000000000000000000000000000000000000000000000000000000" : sha_hex);
		if (ranged)
			n += snprintf(h + n, sizeof h - (size_t)n, "Content-Range: bytes %llu-%llu/%zu\r\n", a, b, FILE_SIZE);
		n += snprintf(h + n, sizeof h - (size_t)n, "\r\n");
		send_all(c, h, (size_t)n);
		unsigned long long send_n = m == M_CUT ? len / 2 : len;
		send_all(c, data + a, (size_t)send_n);
		pthread_mutex_lock(&mu);
		served += send_n;
		pthread_mutex_unlock(&mu);
		close(c);
	}
}

static void setup(void)
{
	data = malloc(FILE_SIZE);
	for (size_t i = 0; i < FILE_SIZE; i++)
		data[i] = (uint8_t)((i * 2654435761u) >> 13);
	uint8_t dg[QA_SHA256_LEN];
	if (qa_sha256(data, FILE_SIZE, dg, NULL) != QA_OK)
		abort(); /* an unchecked fixture: no test could mean anything */
	for (int i = 0; i < QA_SHA256_LEN; i++)
		snprintf(sha_hex + 2 * i, 3, "%02x", dg[i]);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(lfd, 64), 0);
	socklen_t sl = sizeof sa;
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	pthread_create(&th, NULL, serve, NULL);
	snprintf(cache, sizeof cache, "/tmp/qa-http-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(cache));
	struct qa_remote_options o;
	qa_remote_options_default(&o);
	o.retry_wait_ms = 1;
	o.retries = 3;
	o.cache_dir = cache;
	qa_remote_configure(&o);
	served = requests = 0;
	faults_left = 0;
}

static void teardown(void)
{
	shutdown(lfd, SHUT_RDWR);
	close(lfd);
	pthread_join(th, NULL);
	free(data);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", cache);
}

static struct qa_source *open_src(enum qa_err want)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/file.bin", port);
	struct qa_source *s = NULL;
	struct qa_diag d;
	qa_diag_clear(&d);
	enum qa_err e = qa_http_source_open(&s, url, NULL, url, NULL, &d);
	ck_assert_msg(e == want, "open: %d %s", e, d.msg);
	return s;
}

/* Reads at scattered offsets return the pattern; a header read costs at most one chunk more. */
START_TEST(ranged_reads)
{
	struct qa_source *s = open_src(QA_OK);
	ck_assert_uint_eq(qa_source_size(s), FILE_SIZE);
	uint8_t buf[100000];
	ck_assert_int_eq(qa_source_read(s, 0, 70000, buf, "x", NULL), QA_OK);
	ck_assert(memcmp(buf, data, 70000) == 0);
	ck_assert_uint_le(served, 70000 + QA_HTTP_CHUNK);
	static const uint64_t offs[] = { 1, 65535, 65536, 1000003, FILE_SIZE - 100000 };
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		ck_assert_int_eq(qa_source_read(s, offs[i], sizeof buf, buf, "x", NULL), QA_OK);
		ck_assert_msg(memcmp(buf, data + offs[i], sizeof buf) == 0, "offset %llu", (unsigned long long)offs[i]);
	}
	const void *v;
	ck_assert_int_eq(qa_source_view(s, 0, FILE_SIZE, &v, "x", NULL), QA_OK);
	ck_assert(memcmp(v, data, FILE_SIZE) == 0);
	ck_assert_uint_le(served, FILE_SIZE); /* nothing fetched twice */
	ck_assert_int_eq(qa_source_read(s, FILE_SIZE - 1, 2, buf, "x", NULL), QA_ERR_FORMAT);
	qa_source_close(s);
}
END_TEST

struct reader_arg {
	struct qa_source *s;
	uint64_t off;
	int ok;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	const void *v;
	a->ok = qa_source_view(a->s, a->off, 500000, &v, "x", NULL) == QA_OK &&
	        memcmp(v, data + a->off, 500000) == 0;
	return NULL;
}

START_TEST(concurrent_views)
{
	struct qa_source *s = open_src(QA_OK);
	pthread_t t[4];
	struct reader_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct reader_arg){ s, (uint64_t)i * 700001 + 17, 0 };
		pthread_create(&t[i], NULL, reader, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(a[i].ok, "reader %d", i);
	}
	qa_source_close(s);
}
END_TEST

/*
 * limits: two readers stream the same file at different paces while the
 * local copy is held to one chunk, so chunks behind the reads leave it as
 * fast as they can.  A chunk a reader waits for, or is still copying,
 * must not leave it under that reader: every read returns the pattern, and
 * none waits forever (the test's timeout).  Several rounds, because the
 * interleaving differs from run to run.
 */
struct stream_arg {
	struct qa_source *s;
	size_t step;
	int ok;
};

static void *streamer(void *p)
{
	struct stream_arg *a = p;
	uint8_t *buf = malloc(a->step);
	a->ok = buf != NULL;
	for (uint64_t off = 0; off < FILE_SIZE && a->ok; off += a->step) {
		size_t n = FILE_SIZE - off < a->step ? (size_t)(FILE_SIZE - off) : a->step;
		a->ok = qa_source_read(a->s, off, n, buf, "x", NULL) == QA_OK &&
		        memcmp(buf, data + off, n) == 0;
	}
	free(buf);
	return NULL;
}

START_TEST(concurrent_streams_small_window)
{
	struct qa_remote_options o;
	qa_remote_options_default(&o);
	o.retry_wait_ms = 1;
	o.retries = 3;
	o.cache_dir = cache;
	o.window_bytes = QA_HTTP_CHUNK;
	qa_remote_configure(&o);
	for (int round = 0; round < 6; round++) {
		struct qa_source *s = open_src(QA_OK);
		struct stream_arg a[2] = { { s, QA_HTTP_CHUNK / 2 + 11, 0 },
			                   { s, 3 * QA_HTTP_CHUNK + 5, 0 } };
		pthread_t t[2];
		for (int i = 0; i < 2; i++)
			ck_assert_int_eq(pthread_create(&t[i], NULL, streamer, &a[i]), 0);
		for (int i = 0; i < 2; i++) {
			pthread_join(t[i], NULL);
			ck_assert_msg(a[i].ok, "round %d, reader %d", round, i);
		}
		qa_source_close(s);
	}
}
END_TEST

/* Faults that are survived: the bytes are still the pattern. */
START_TEST(faults_survived)
{
	static const enum mode modes[] = { M_CUT, M_503, M_NORANGE };
	mode = modes[_i];
	faults_left = mode == M_NORANGE ? -1 : 2;
	struct qa_source *s = open_src(QA_OK);
	const void *v;
	struct qa_diag d;
	qa_diag_clear(&d);
	ck_assert_msg(qa_source_view(s, 0, FILE_SIZE, &v, "x", &d) == QA_OK, "%s", d.msg);
	ck_assert(memcmp(v, data, FILE_SIZE) == 0);
	qa_source_close(s);
}
END_TEST

START_TEST(retries_exhausted)
{
	mode = M_503;
	faults_left = -1;
	struct qa_source *s = open_src(QA_ERR_NETWORK);
	ck_assert_ptr_null(s);
	ck_assert_uint_eq(requests, 4); /* the first attempt and --retries 3 */
}
END_TEST

START_TEST(wrong_etag)
{
	mode = M_BADETAG;
	faults_left = -1;
	struct qa_source *s = open_src(QA_OK);
	uint8_t b[16];
	ck_assert_int_eq(qa_source_read(s, 0, 16, b, "x", NULL), QA_OK); /* not all read yet */
	const void *v;
	struct qa_diag d;
	ck_assert_int_eq(qa_source_view(s, 0, FILE_SIZE, &v, "x", &d), QA_ERR_NETWORK);
	ck_assert_ptr_nonnull(strstr(d.msg, "SHA-256 differs from the Hub's"));
	ck_assert_int_eq(qa_source_read(s, 0, 16, b, "x", NULL), QA_ERR_NETWORK);
	qa_source_close(s);
	ck_assert_int_eq(qa_remote_finish(&d), QA_ERR_NETWORK);
}
END_TEST

START_TEST(same_host)
{
	ck_assert(qa_http_same_host("https://huggingface.co/a", "https://HuggingFace.co:443/b"));
	ck_assert(!qa_http_same_host("https://huggingface.co/a", "https://cdn-lfs.hf.co/b"));
	ck_assert(!qa_http_same_host("https://huggingface.co/a", "http://huggingface.co/b"));
	ck_assert(!qa_http_same_host("http://127.0.0.1:1/a", "http://127.0.0.1:2/a"));
	ck_assert(!qa_http_same_host("not a url", "https://huggingface.co"));
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, ranged_reads);
	tcase_add_test(tc, concurrent_views);
	tcase_add_test(tc, same_host);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, faults_survived, 0, 3);
	tcase_add_test(tc, retries_exhausted);
	tcase_add_test(tc, concurrent_streams_small_window);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, wrong_etag);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
