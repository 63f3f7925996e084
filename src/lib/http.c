/*
 * http.c - libcurl requests with retries and resume, and the ranged-HTTP
 * byte source (see http.h for the contract).
 */
#define _GNU_SOURCE /* fallocate */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "blockhash.h"
#include "build-config.h"
#include "cache.h"
#include "cursor.h"
#include "hub.h"
#include "remote.h"
#include "util.h"

#define MAX_HOPS 10
#define JOB_CHUNKS 64              /* 4 MiB per request */
#define RECENT_N 4                 /* reads whose bytes are never released */
#define RA_JOBS 4                  /* read-ahead requests queued at once */
#define N_WORKERS 3                /* ranges in flight */
#define HEAD_CACHE_MAX ((uint64_t)64 << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Clear secret bytes in a way the compiler keeps. */
static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

void qa_http_meta_free(struct qa_http_meta *m)
{
	if (!m)
		return;
	free(m->final_url);
	memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------ headers */

struct hdrs {
	long status;
	char commit[64];
	char linked_etag[80];
	char etag[80];
	uint64_t linked_size;
	bool has_linked_size;
	uint64_t cr_start, cr_total;
	bool has_cr, has_cr_total;
	uint64_t content_length;
	bool has_cl;
	long retry_after; /* seconds, -1 when absent */
};

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t dgt = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - dgt) / 10)
			return false;
		v = v * 10 + dgt;
	}
	*out = v;
	return true;
}

/* Copy a header value, stripping W/ and quotes, keeping only printable ASCII. */
static void copy_tag(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= 2 && v[0] == 'W' && v[1] == '/') {
		v += 2;
		n -= 2;
	}
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < cap; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '"' || c <= 0x20 || c >= 0x7f)
			continue;
		dst[k++] = (char)c;
	}
	dst[k] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct hdrs *h = arg;
	size_t n = size * nitems;
	if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		memset(h, 0, sizeof *h);
		h->retry_after = -1;
		const char *sp = memchr(buf, ' ', n);
		uint64_t code;
		if (sp && (size_t)(sp - buf) + 4 <= n && parse_u64(sp + 1, 3, &code))
			h->status = (long)code;
		return n;
	}
	const char *colon = memchr(buf, ':', n);
	if (!colon)
		return n;
	size_t klen = (size_t)(colon - buf);
	const char *v = colon + 1;
	size_t vlen = n - klen - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
#define IS(name) (klen == sizeof(name) - 1 && strncasecmp(buf, name, klen) == 0)
	if (IS("X-Repo-Commit")) {
		copy_tag(h->commit, sizeof h->commit, v, vlen);
	} else if (IS("X-Linked-Etag")) {
		copy_tag(h->linked_etag, sizeof h->linked_etag, v, vlen);
	} else if (IS("ETag")) {
		copy_tag(h->etag, sizeof h->etag, v, vlen);
	} else if (IS("X-Linked-Size")) {
		h->has_linked_size = parse_u64(v, vlen, &h->linked_size);
	} else if (IS("Content-Length")) {
		h->has_cl = parse_u64(v, vlen, &h->content_length);
	} else if (IS("Retry-After")) {
		uint64_t s;
		if (parse_u64(v, vlen, &s))
			h->retry_after = s > 3600 ? 3600 : (long)s;
	} else if (IS("Content-Range")) {
		/* "bytes A-B/T" or "bytes * /T" */
		if (vlen > 6 && strncasecmp(v, "bytes ", 6) == 0) {
			const char *p = v + 6, *end = v + vlen;
			const char *dash = memchr(p, '-', (size_t)(end - p));
			const char *slash = memchr(p, '/', (size_t)(end - p));
			if (slash) {
				h->has_cr_total = parse_u64(slash + 1, (size_t)(end - slash - 1), &h->cr_total);
				if (dash && dash < slash)
					h->has_cr = parse_u64(p, (size_t)(dash - p), &h->cr_start);
			}
		}
	}
#undef IS
	return n;
}

/* ------------------------------------------------------------ body sink */

struct sink {
	uint8_t *dst;        /* fixed destination of the wanted bytes, or NULL */
	uint64_t want;       /* bytes wanted into dst */
	char *grow;          /* growable destination (dst == NULL) */
	size_t glen, gcap, gmax;
	bool too_big;
	uint64_t req_start;  /* first byte asked for (skipped when answered 200) */
	uint64_t skip;       /* bytes still to discard */
	bool skip_set;
	uint64_t got;        /* wanted bytes delivered */
	uint64_t received;   /* body bytes seen (statistics) */
	bool done;
	struct hdrs *hd;
	void (*on_data)(void *arg, uint64_t abs_end);
	void *arg;
	uint64_t abs_base;   /* absolute offset of dst[0] */
};

static size_t on_body(char *buf, size_t size, size_t nitems, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nitems;
	long st = s->hd->status;
	if (st < 200 || st > 299)
		return n; /* error bodies are dropped */
	s->received += n;
	if (!s->skip_set) {
		s->skip_set = true;
		s->skip = st == 200 ? s->req_start : 0;
	}
	size_t i = 0;
	if (s->skip) {
		size_t k = s->skip < n ? (size_t)s->skip : n;
		s->skip -= k;
		i = k;
	}
	if (i == n)
		return n;
	if (!s->dst) {
		size_t k = n - i;
		if (s->glen + k > s->gmax) {
			s->too_big = true;
			return 0;
		}
		if (s->glen + k + 1 > s->gcap) {
			size_t nc = s->gcap ? s->gcap : 4096;
			while (nc < s->glen + k + 1)
				nc *= 2;
			char *p = realloc(s->grow, nc);
			if (!p)
				return 0;
			s->grow = p;
			s->gcap = nc;
		}
		memcpy(s->grow + s->glen, buf + i, k);
		s->glen += k;
		s->grow[s->glen] = '\0';
		return n;
	}
	uint64_t room = s->want - s->got;
	size_t k = (uint64_t)(n - i) < room ? n - i : (size_t)room;
	memcpy(s->dst + s->got, buf + i, k);
	s->got += k;
	if (s->on_data)
		s->on_data(s->arg, s->abs_base + s->got);
	if (s->got == s->want) {
		s->done = true;
		if (i + k < n)
			return 0; /* the rest is not wanted: stop here */
	}
	return n;
}

/* ------------------------------------------------------------ one request */

bool qa_http_same_host(const char *a, const char *b)
{
	CURLU *ua = curl_url(), *ub = curl_url();
	bool same = false;
	char *ha = NULL, *hb = NULL, *sa = NULL, *sb = NULL, *pa = NULL, *pb = NULL;
	if (ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
	    curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK &&
	    curl_url_get(ua, CURLUPART_HOST, &ha, 0) == CURLUE_OK &&
	    curl_url_get(ub, CURLUPART_HOST, &hb, 0) == CURLUE_OK &&
	    curl_url_get(ua, CURLUPART_SCHEME, &sa, 0) == CURLUE_OK &&
	    curl_url_get(ub, CURLUPART_SCHEME, &sb, 0) == CURLUE_OK &&
	    curl_url_get(ua, CURLUPART_PORT, &pa, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    curl_url_get(ub, CURLUPART_PORT, &pb, CURLU_DEFAULT_PORT) == CURLUE_OK)
		same = strcasecmp(ha, hb) == 0 && strcasecmp(sa, sb) == 0 && strcmp(pa, pb) == 0;
	curl_free(ha);
	curl_free(hb);
	curl_free(sa);
	curl_free(sb);
	curl_free(pa);
	curl_free(pb);
	curl_url_cleanup(ua);
	curl_url_cleanup(ub);
	return same;
}

/* One request without following redirects.  *redirect gets Location (absolute). */
static CURLcode perform(CURL *h, const char *url, const char *range, const char *token,
                        struct sink *s, struct hdrs *hd, char **redirect, bool head)
{
	struct curl_slist *list = NULL, *l2;
	char auth[4200];
	curl_easy_reset(h);
	memset(hd, 0, sizeof *hd);
	hd->retry_after = -1;
	s->hd = hd;
	s->skip_set = false;
	s->skip = 0;
	if ((l2 = curl_slist_append(list, "Accept-Encoding: identity")))
		list = l2;
	if (token && qa_http_same_host(url, qa_hub_endpoint()) &&
	    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token) < (int)sizeof auth &&
	    (l2 = curl_slist_append(list, auth)))
		list = l2;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "quantaudit/" PACKAGE_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (range)
		curl_easy_setopt(h, CURLOPT_RANGE, range);
	if (head)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, hd);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	CURLcode cc = curl_easy_perform(h);
	long st = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
	hd->status = st;
	*redirect = NULL;
	if (st >= 300 && st <= 399) {
		char *loc = NULL;
		if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
			*redirect = qa_str_dup(loc);
	}
	curl_slist_free_all(list);
	wipe(auth, sizeof auth);
	return cc;
}

static bool retryable_status(long st)
{
	return st == 408 || st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

static bool retryable_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT: case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING: case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Backoff before retry number k (0-based): wait * 2^k, scaled by a jitter in
 * [0.5, 1], at most 60 s; a Retry-After (seconds) raises it. */
static uint64_t backoff_ms(unsigned k, long retry_after)
{
	static unsigned seed;
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	uint64_t base = qa_remote_options()->retry_wait_ms;
	for (unsigned i = 0; i < k && base < 60000; i++)
		base *= 2;
	if (base > 60000)
		base = 60000;
	pthread_mutex_lock(&mu);
	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)getpid() << 8;
	seed = seed * 1103515245u + 12345u;
	unsigned r = (seed >> 16) & 0x7fff;
	pthread_mutex_unlock(&mu);
	uint64_t ms = base / 2 + base / 2 * r / 0x7fff;
	if (retry_after >= 0 && (uint64_t)retry_after * 1000 > ms)
		ms = (uint64_t)retry_after * 1000;
	return ms;
}

struct conn {
	CURL *h;
	char *token;
};

static enum qa_err conn_init(struct conn *c, struct qa_diag *d)
{
	pthread_once(&curl_once, curl_init_once);
	c->h = curl_easy_init();
	c->token = qa_hub_token();
	if (!c->h)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "cannot start libcurl");
	return QA_OK;
}

static void conn_free(struct conn *c)
{
	if (c->h)
		curl_easy_cleanup(c->h);
	if (c->token) {
		wipe(c->token, strlen(c->token));
		free(c->token);
	}
	memset(c, 0, sizeof *c);
}

/*
 * GET [off, off+len) of url (len UINT64_MAX: to the end; ranged false: no
 * Range header) through s, following redirects by hand, retrying and
 * resuming.  The first hop's headers and the final size go into m.
 */
static enum qa_err fetch(struct conn *c, const char *url, bool ranged, uint64_t off,
                         uint64_t len, struct sink *s, struct qa_http_meta *m,
                         int input, const char *display, struct qa_diag *d)
{
	unsigned attempt = 0;
	uint64_t base_got = 0;
	uint8_t *dst0 = s->dst;
	uint64_t want0 = s->want, abs0 = s->abs_base;
	if (qa_remote_options()->offline)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "offline mode: %s is not cached", display);
	for (;;) {
		char *cur = qa_str_dup(url), *next = NULL;
		struct hdrs hd;
		CURLcode cc = CURLE_OK;
		char range[64];
		bool first = true;
		if (!cur)
			return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		if (s->dst) {
			s->dst = dst0 + base_got;
			s->want = want0 - base_got;
			s->abs_base = abs0 + base_got;
			s->got = 0;
			s->done = false;
		}
		s->req_start = ranged ? off + base_got : 0;
		s->received = 0;
		for (unsigned hop = 0;; hop++) {
			const char *rp = NULL;
			if (ranged) {
				if (len == UINT64_MAX)
					snprintf(range, sizeof range, "%llu-", (unsigned long long)(off + base_got));
				else
					snprintf(range, sizeof range, "%llu-%llu",
					         (unsigned long long)(off + base_got),
					         (unsigned long long)(off + len - 1));
				rp = range;
			}
			cc = perform(c->h, cur, rp, c->token, s, &hd, &next, false);
			qa_remote_count(input, s->received, 1, 0);
			s->received = 0;
			if (first && m) {
				if (!m->commit[0])
					memcpy(m->commit, hd.commit, sizeof m->commit);
				if (!m->etag[0] && hd.linked_etag[0]) {
					memcpy(m->etag, hd.linked_etag, sizeof m->etag);
					m->linked = true;
				}
				if (hd.has_linked_size && m->size == UINT64_MAX)
					m->size = hd.linked_size;
			}
			first = false;
			if (next && hop < MAX_HOPS && cc == CURLE_OK) {
				free(cur);
				cur = next;
				next = NULL;
				continue;
			}
			free(next);
			break;
		}
		long st = hd.status;
		bool ok_status = st == 200 || st == 206;
		if (ok_status && m) {
			if (!m->etag[0] && hd.etag[0])
				memcpy(m->etag, hd.etag, sizeof m->etag);
			if (st == 206 && hd.has_cr_total)
				m->size = hd.cr_total;
			else if (st == 200 && hd.has_cl && m->size == UINT64_MAX)
				m->size = hd.content_length;
			m->ranged = st == 206;
			m->status = st;
			free(m->final_url);
			m->final_url = qa_str_dup(cur);
		}
		free(cur);
		if (ok_status && st == 206 && ranged && (!hd.has_cr || hd.cr_start != off + base_got)) {
			return qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET,
			                   "%s: server answered a different byte range", display);
		}
		if (s->too_big)
			return qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET,
			                   "%s: answer larger than %zu bytes", display, s->gmax);
		/* How much of the wanted range arrived in this attempt. */
		uint64_t goal = len;
		if (m && m->size != UINT64_MAX && ranged && len != UINT64_MAX) {
			uint64_t rest = m->size > off ? m->size - off : 0;
			if (goal > rest)
				goal = rest;
		}
		if (ok_status && s->dst)
			base_got += s->got;
		bool complete = ok_status && (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && s->done));
		if (complete && s->dst && goal != UINT64_MAX && base_got < goal && base_got < want0)
			complete = false; /* a body cut short without a transport error */
		if (complete)
			return QA_OK;
		if (st == 416 && m && hd.has_cr_total && hd.cr_total == 0) {
			m->size = 0;
			return QA_OK;
		}
		bool retry = ok_status ? (cc == CURLE_OK || retryable_curl(cc))
		                       : (st ? retryable_status(st) : retryable_curl(cc));
		if (!retry || attempt >= qa_remote_options()->retries) {
			if (st && !ok_status)
				return qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET, "%s: HTTP %ld%s", display, st,
				                   retry ? " after retries" : "");
			if (cc != CURLE_OK)
				return qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET, "%s: %s%s", display,
				                   curl_easy_strerror(cc), retry ? " (after retries)" : "");
			return qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET, "%s: body cut short after retries",
			                   display);
		}
		qa_remote_count(input, 0, 0, 1);
		sleep_ms(backoff_ms(attempt, st ? hd.retry_after : -1));
		attempt++;
		if (!s->dst) {
			s->glen = 0; /* growable answers restart from the beginning */
			base_got = 0;
		}
	}
}

enum qa_err qa_http_get_all(const char *url, size_t cap, int input, char **buf,
                            size_t *len, struct qa_http_meta *m, struct qa_diag *d)
{
	struct conn c;
	struct sink s;
	enum qa_err e = conn_init(&c, d);
	memset(&s, 0, sizeof s);
	s.gmax = cap;
	if (!e) {
		char *disp = qa_remote_display_url(url);
		m->size = UINT64_MAX;
		e = fetch(&c, url, false, 0, UINT64_MAX, &s, m, input, disp ? disp : "url", d);
		free(disp);
	}
	conn_free(&c);
	if (e) {
		free(s.grow);
		return e;
	}
	if (!s.grow && !(s.grow = calloc(1, 1)))
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	*buf = s.grow;
	*len = s.glen;
	return QA_OK;
}

enum qa_err qa_http_head(const char *url, int input, struct qa_http_meta *m, struct qa_diag *d)
{
	struct conn c;
	struct sink s;
	struct hdrs hd;
	enum qa_err e;
	char *disp = qa_remote_display_url(url);
	memset(m, 0, sizeof *m);
	m->size = UINT64_MAX;
	if (!disp)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	if (qa_remote_options()->offline) {
		e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "offline mode: %s is not cached", disp);
		free(disp);
		return e;
	}
	if ((e = conn_init(&c, d))) {
		conn_free(&c);
		free(disp);
		return e;
	}
	for (unsigned attempt = 0;; attempt++) {
		char *next = NULL;
		memset(&s, 0, sizeof s);
		CURLcode cc = perform(c.h, url, NULL, c.token, &s, &hd, &next, true);
		free(next);
		qa_remote_count(input, 0, 1, 0);
		long st = hd.status;
		if (cc == CURLE_OK && st >= 200 && st <= 399) {
			m->status = st;
			memcpy(m->commit, hd.commit, sizeof m->commit);
			if (hd.linked_etag[0]) {
				memcpy(m->etag, hd.linked_etag, sizeof m->etag);
				m->linked = true;
			} else {
				memcpy(m->etag, hd.etag, sizeof m->etag);
			}
			if (hd.has_linked_size)
				m->size = hd.linked_size;
			else if (st >= 200 && st <= 299 && hd.has_cl)
				m->size = hd.content_length;
			break;
		}
		bool retry = st && cc == CURLE_OK ? retryable_status(st) : retryable_curl(cc);
		if (!retry || attempt >= qa_remote_options()->retries) {
			if (st && cc == CURLE_OK)
				e = qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET, "%s: HTTP %ld%s", disp, st,
				                retry ? " after retries" : "");
			else
				e = qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET, "%s: %s%s", disp,
				                curl_easy_strerror(cc), retry ? " (after retries)" : "");
			break;
		}
		qa_remote_count(input, 0, 0, 1);
		sleep_ms(backoff_ms(attempt, st ? hd.retry_after : -1));
	}
	conn_free(&c);
	free(disp);
	return e;
}

/* ------------------------------------------------------------ the source */

/* A released chunk was here once and was dropped from the local copy: it is
 * fetched again if read again. */
enum { CH_ABSENT = 0, CH_INFLIGHT = 1, CH_PRESENT = 2, CH_RELEASED = 3 };

struct job {
	uint64_t c0, n;
	bool demand;
	struct job *next;
};

/*
 * A reader's claim on the chunks from c0 on, from the moment it asks for
 * them until it has copied them (on the reader's stack, listed in
 * hsrc.pins): release_locked leaves every chunk at or after a pin's c0.
 * Without it a chunk could leave the local copy between its arrival and
 * the waiting reader's wake-up (the reader would wait for it forever), or
 * while the reader copies it (the copy would read the punched hole).
 */
struct pin {
	uint64_t c0;
	struct pin *next;
};

struct hsrc {
	struct qa_source base;
	char *url;        /* as opened */
	char *data_url;   /* after redirects: where ranges go */
	char *key;        /* cache key */
	struct qa_http_meta meta;
	int input;
	int fd;
	uint8_t *map;
	uint64_t nchunks, present;
	uint8_t *st;
	uint8_t *lent;      /* per chunk: under a view (kept until close) */
	uint64_t head_end;  /* end of the reads that started in the header */
	pthread_mutex_t mu;
	pthread_cond_t cv, wcv;
	struct job *dq, *dq_tail, *rq, *rq_tail;
	unsigned ra_jobs;
	uint64_t ra_next, demand_end;
	bool ra_on, norange, need_verify, stop, started;
	uint64_t window;    /* read-ahead window and release budget, in chunks */
	struct qa_sha256_stream *vh; /* the file's SHA-256 over chunks [0, frontier) */
	uint64_t frontier, peak;     /* chunks hashed; most chunks held at once */
	uint64_t recent[RECENT_N];   /* first chunks of the latest reads */
	unsigned n_recent, recent_i;
	struct pin *pins;            /* readers between asking and copying */
	enum qa_err err;
	struct qa_diag diag;
	pthread_t th[N_WORKERS];
	unsigned n_th;
};

static void chunk_span(const struct hsrc *s, uint64_t c, uint64_t *off, uint64_t *len)
{
	*off = c * QA_HTTP_CHUNK;
	uint64_t end = *off + QA_HTTP_CHUNK;
	if (end > s->base.size)
		end = s->base.size;
	*len = end - *off;
}

static void push(struct job **head, struct job **tail, struct job *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static struct job *pop(struct job **head, struct job **tail)
{
	struct job *j = *head;
	if (j) {
		*head = j->next;
		if (!*head)
			*tail = NULL;
	}
	return j;
}

/* Queue runs of absent chunks in [c0, c1) (mutex held). */
static bool queue_runs(struct hsrc *s, uint64_t c0, uint64_t c1, bool demand, unsigned max_jobs)
{
	unsigned queued = 0;
	uint64_t c = c0;
	while (c < c1 && queued < max_jobs) {
		if (s->st[c] == CH_PRESENT || s->st[c] == CH_INFLIGHT) {
			c++;
			continue;
		}
		uint64_t e = c;
		uint64_t lim = s->norange ? s->nchunks : c + JOB_CHUNKS;
		while (e < c1 && e < lim && (s->st[e] == CH_ABSENT || s->st[e] == CH_RELEASED))
			e++;
		if (s->norange)
			while (e < s->nchunks && (s->st[e] == CH_ABSENT || s->st[e] == CH_RELEASED))
				e++;
		struct job *j = malloc(sizeof *j);
		if (!j)
			return false;
		j->c0 = c;
		j->n = e - c;
		j->demand = demand;
		for (uint64_t k = c; k < e; k++)
			s->st[k] = CH_INFLIGHT;
		if (demand)
			push(&s->dq, &s->dq_tail, j);
		else {
			push(&s->rq, &s->rq_tail, j);
			s->ra_jobs++;
		}
		queued++;
		c = e;
		if (!demand && !s->norange)
			s->ra_next = e;
	}
	if (!demand)
		s->ra_next = c > s->ra_next ? c : s->ra_next;
	return true;
}

static void refill_readahead(struct hsrc *s)
{
	if (!s->ra_on || s->err || s->norange)
		return;
	uint64_t lim = s->demand_end + s->window;
	if (lim > s->nchunks)
		lim = s->nchunks;
	if (s->ra_next < s->demand_end)
		s->ra_next = s->demand_end;
	while (s->ra_jobs < RA_JOBS && s->ra_next < lim) {
		unsigned before = s->ra_jobs;
		queue_runs(s, s->ra_next, lim, false, 1);
		if (s->ra_jobs == before)
			break;
	}
}

static void fail_locked(struct hsrc *s, enum qa_err e, const struct qa_diag *d)
{
	if (!s->err) {
		s->err = e;
		if (d)
			s->diag = *d;
	}
}

/* Mark chunks whose bytes have all arrived (on_data of a job's sink). */
struct job_ctx {
	struct hsrc *s;
	uint64_t c0, n, marked; /* chunks c0 .. c0+marked-1 are marked */
};

static void advance_locked(struct hsrc *s);

static void mark_upto(struct job_ctx *jc, uint64_t abs_end)
{
	struct hsrc *s = jc->s;
	pthread_mutex_lock(&s->mu);
	while (jc->marked < jc->n) {
		uint64_t c = jc->c0 + jc->marked, off, len;
		chunk_span(s, c, &off, &len);
		if (off + len > abs_end)
			break;
		s->st[c] = CH_PRESENT;
		s->present++;
		jc->marked++;
	}
	if (s->present > s->peak)
		s->peak = s->present;
	/* the check of the file's digest runs before any reader of the chunk
	 * that completes it wakes up */
	advance_locked(s);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void on_job_data(void *arg, uint64_t abs_end)
{
	struct job_ctx *jc = arg;
	/* Marking per chunk is cheap; skip calls that complete nothing new. */
	uint64_t off, len;
	chunk_span(jc->s, jc->c0 + jc->marked, &off, &len);
	if (jc->marked < jc->n && off + len <= abs_end)
		mark_upto(jc, abs_end);
}

static void stash_drop(const char *url);

/*
 * The file's digest is computed in file order as chunks arrive (the hash
 * frontier), so that chunks behind it can leave the local copy; when the
 * frontier reaches the end, the digest is checked against X-Linked-Etag.
 */
static enum qa_err verify_locked(struct hsrc *s);

static void advance_locked(struct hsrc *s)
{
	if (!s->need_verify || !s->vh)
		return;
	while (s->frontier < s->nchunks && s->st[s->frontier] == CH_PRESENT) {
		uint64_t off, len;
		chunk_span(s, s->frontier, &off, &len);
		qa_sha256_stream_update(s->vh, s->map + off, (size_t)len);
		s->frontier++;
	}
	if (s->frontier == s->nchunks)
		verify_locked(s);
}

static enum qa_err sha256_windows(uint8_t *map, uint64_t size, uint8_t out[QA_SHA256_LEN],
                                     struct qa_diag *d)
{
	enum { WIN = 8 << 20 };
	struct qa_sha256_stream *h = qa_sha256_stream_init();
	if (!h)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	for (uint64_t off = 0; off < size; off += WIN) {
		size_t n = (size_t)(size - off < WIN ? size - off : WIN);
		qa_sha256_stream_update(h, map + off, n);
		qa_unmap_pages(map, size, off, n);
	}
	enum qa_err e = qa_sha256_stream_final(h, out);
	qa_sha256_stream_free(h);
	return e ? qa_diag_set(d, e, QA_NO_OFFSET, "sha-256 failed") : QA_OK;
}

static enum qa_err verify_locked(struct hsrc *s)
{
	uint8_t dg[QA_SHA256_LEN];
	char hex[2 * QA_SHA256_LEN + 1];
	struct qa_diag d;
	s->need_verify = false;
	if (qa_sha256_stream_final(s->vh, dg)) {
		qa_diag_set(&d, QA_ERR_NOMEM, QA_NO_OFFSET, "%s: SHA-256 failed", s->base.name);
		fail_locked(s, QA_ERR_NOMEM, &d);
		return QA_ERR_NOMEM;
	}
	for (size_t i = 0; i < QA_SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", dg[i]);
	if (strcmp(hex, s->meta.etag) != 0) {
		qa_diag_set(&d, QA_ERR_NETWORK, QA_NO_OFFSET,
		            "%s: its SHA-256 differs from the Hub's (X-Linked-Etag %.64s)",
		            s->base.name, s->meta.etag);
		fail_locked(s, QA_ERR_NETWORK, &d);
		char msg[600];
		snprintf(msg, sizeof msg, "%s: its SHA-256 differs from the Hub's", s->base.name);
		qa_remote_integrity_fail(msg);
		/* the header an earlier open of this run cached came with that digest: drop it */
		if (s->key)
			qa_cache_head_remove(s->key);
		stash_drop(s->url);
		return QA_ERR_NETWORK;
	}
	return QA_OK;
}

static enum qa_err run_job(struct hsrc *s, struct conn *c, struct job *j, struct qa_diag *d)
{
	uint64_t off, len, last_off, last_len;
	chunk_span(s, j->c0, &off, &len);
	chunk_span(s, j->c0 + j->n - 1, &last_off, &last_len);
	len = last_off + last_len - off;
	struct job_ctx jc = { s, j->c0, j->n, 0 };
	struct sink sk;
	memset(&sk, 0, sizeof sk);
	sk.dst = s->map + off;
	sk.want = len;
	sk.abs_base = off;
	sk.on_data = on_job_data;
	sk.arg = &jc;
	struct qa_http_meta m;
	memset(&m, 0, sizeof m);
	m.size = UINT64_MAX;
	pthread_mutex_lock(&s->mu);
	char *du = qa_str_dup(s->data_url);
	pthread_mutex_unlock(&s->mu);
	if (!du)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	enum qa_err e = fetch(c, du, true, off, len, &sk, &m, s->input, s->base.name, d);
	if (!e && m.final_url && strcmp(m.final_url, du) != 0) {
		/* Later ranges go straight to where this one was served from. */
		char *nu = qa_str_dup(m.final_url);
		pthread_mutex_lock(&s->mu);
		if (nu) {
			free(s->data_url);
			s->data_url = nu;
		}
		pthread_mutex_unlock(&s->mu);
	}
	if (e && strcmp(du, s->url) != 0) {
		/* A signed CDN URL may have expired: resolve again from the start. */
		qa_http_meta_free(&m);
		memset(&m, 0, sizeof m);
		m.size = UINT64_MAX;
		sk.dst = s->map + off; /* the whole range again: it rewrites the same bytes */
		sk.want = len;
		sk.abs_base = off;
		sk.got = 0;
		sk.done = false;
		e = fetch(c, s->url, true, off, len, &sk, &m, s->input, s->base.name, d);
	}
	if (!e && m.size != UINT64_MAX && m.size != s->base.size)
		e = qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET,
		                "%s: the file changed size during the run (%llu, now %llu bytes)",
		                s->base.name, (unsigned long long)s->base.size,
		                (unsigned long long)m.size);
	qa_http_meta_free(&m);
	free(du);
	if (!e)
		mark_upto(&jc, off + len);
	return e;
}

static void *worker(void *arg)
{
	struct hsrc *s = arg;
	struct conn c;
	struct qa_diag d;
	enum qa_err ce = conn_init(&c, &d);
	pthread_mutex_lock(&s->mu);
	if (ce)
		fail_locked(s, ce, &d);
	for (;;) {
		struct job *j = NULL;
		while (!s->stop && !s->err && !(j = pop(&s->dq, &s->dq_tail)) &&
		       !(j = pop(&s->rq, &s->rq_tail)))
			pthread_cond_wait(&s->wcv, &s->mu);
		if (!j)
			break;
		pthread_mutex_unlock(&s->mu);
		qa_diag_clear(&d);
		enum qa_err e = run_job(s, &c, j, &d);
		pthread_mutex_lock(&s->mu);
		if (e)
			fail_locked(s, e, &d);
		if (!j->demand)
			s->ra_jobs--;
		free(j);
		refill_readahead(s);
		pthread_cond_broadcast(&s->wcv);
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	conn_free(&c);
	return NULL;
}

static void start_workers(struct hsrc *s)
{
	if (s->started)
		return;
	s->started = true;
	for (unsigned i = 0; i < N_WORKERS; i++)
		if (pthread_create(&s->th[s->n_th], NULL, worker, s) == 0)
			s->n_th++;
}

/*
 * Keep the local copy bounded (mutex held): unless --cache-blobs keeps whole
 * files, chunks behind the latest reads (and, while the digest is being
 * checked, behind the hash frontier) leave it once it holds more than the
 * window, except the header's.  Their disk blocks are freed (a hole is
 * punched in the unlinked download file); a later read fetches them again.
 */
static void release_locked(struct hsrc *s)
{
	if (qa_remote_options()->cache_blobs || s->fd < 0 || s->present <= 2 * s->window)
		return;
	uint64_t limit = s->nchunks;
	for (unsigned i = 0; i < s->n_recent; i++)
		if (s->recent[i] < limit)
			limit = s->recent[i];
	if (s->need_verify && s->frontier < limit)
		limit = s->frontier;
	for (const struct pin *p = s->pins; p; p = p->next)
		if (p->c0 < limit)
			limit = p->c0;
	uint64_t c = (s->head_end + QA_HTTP_CHUNK - 1) / QA_HTTP_CHUNK;
	for (; c < limit && s->present > s->window; c++) {
		uint64_t off, len;
		if (s->st[c] != CH_PRESENT || s->lent[c])
			continue;
		chunk_span(s, c, &off, &len);
		if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) != 0)
			return; /* no hole punching here: the copy keeps what it has */
		s->st[c] = CH_RELEASED;
		s->present--;
	}
}

/* Drop pin p (taken by ensure). */
static void unpin(struct hsrc *s, struct pin *p)
{
	pthread_mutex_lock(&s->mu);
	for (struct pin **pp = &s->pins; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

/*
 * Make [off, off+len) present (called with the range bounds-checked) and
 * keep it so until the caller drops pin p with unpin, whatever ensure
 * returns.  The pin is taken before the range is looked at, so a chunk
 * queued or found present here cannot leave before the wait sees it.
 */
static enum qa_err ensure(struct hsrc *s, uint64_t off, size_t len, struct pin *p,
                          struct qa_diag *d)
{
	uint64_t c0 = off / QA_HTTP_CHUNK, c1 = len ? (off + len - 1) / QA_HTTP_CHUNK + 1 : c0;
	pthread_mutex_lock(&s->mu);
	p->c0 = c0;
	p->next = s->pins;
	s->pins = p;
	if (len == 0) {
		pthread_mutex_unlock(&s->mu);
		return QA_OK;
	}
	if (off <= 8 && off + len > s->head_end)
		s->head_end = off + len;
	s->recent[s->recent_i] = c0;
	s->recent_i = (s->recent_i + 1) % RECENT_N;
	if (s->n_recent < RECENT_N)
		s->n_recent++;
	release_locked(s);
	bool missing = false;
	for (uint64_t c = c0; c < c1 && !missing; c++)
		missing = s->st[c] != CH_PRESENT;
	if (missing && !s->err) {
		if (qa_remote_options()->offline) {
			qa_diag_set(&s->diag, QA_ERR_IO, QA_NO_OFFSET,
			            "offline mode: bytes %llu..%llu of %s are not cached",
			            (unsigned long long)off, (unsigned long long)(off + len),
			            s->base.name);
			s->err = QA_ERR_IO;
		} else {
			if (!s->started) {
				if (s->n_th == 0)
					start_workers(s);
				if (s->n_th == 0) {
					qa_diag_set(&s->diag, QA_ERR_NOMEM, QA_NO_OFFSET, "cannot start a thread");
					s->err = QA_ERR_NOMEM;
				}
			}
			if (off > 8)
				s->ra_on = true;
			if (c1 > s->demand_end)
				s->demand_end = c1;
			if (!queue_runs(s, c0, c1, true, UINT32_MAX)) {
				qa_diag_set(&s->diag, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
				s->err = QA_ERR_NOMEM;
			}
			refill_readahead(s);
			pthread_cond_broadcast(&s->wcv);
		}
	}
	for (;;) {
		if (s->err)
			break;
		bool all = true;
		for (uint64_t c = c0; c < c1 && all; c++)
			all = s->st[c] == CH_PRESENT;
		if (all)
			break;
		pthread_cond_wait(&s->cv, &s->mu);
	}
	enum qa_err e = s->err;
	if (e && d)
		*d = s->diag;
	pthread_mutex_unlock(&s->mu);
	return e;
}

static enum qa_err hs_read(struct qa_source *src, uint64_t off, size_t len, void *buf,
                           struct qa_diag *d)
{
	struct hsrc *s = (struct hsrc *)src;
	struct pin p;
	enum qa_err e = ensure(s, off, len, &p, d);
	if (!e && len) {
		memcpy(buf, s->map + off, len);
		/* a copy leaves nothing resident, as a local file's does
		 * (source.h): streaming readers copy windows and never release */
		qa_unmap_pages(s->map, s->base.size, off, len);
	}
	unpin(s, &p);
	return e;
}

static enum qa_err hs_view(struct qa_source *src, uint64_t off, size_t len, const void **out,
                           struct qa_diag *d)
{
	struct hsrc *s = (struct hsrc *)src;
	static const uint8_t empty[1];
	struct pin p;
	enum qa_err e = ensure(s, off, len, &p, d);
	if (!e) {
		/* a view stays valid until close (source.h): its chunks stay */
		pthread_mutex_lock(&s->mu);
		for (uint64_t c = off / QA_HTTP_CHUNK; len && c <= (off + len - 1) / QA_HTTP_CHUNK; c++)
			s->lent[c] = 1;
		pthread_mutex_unlock(&s->mu);
		*out = s->map ? s->map + off : empty;
	}
	unpin(s, &p);
	return e;
}

/*
 * The heads of the files this process closed, so that opening a file again
 * in the same run (format detection, then the reader) needs no request even
 * when the cache directory cannot be written: a run reads one version of a
 * file.  A few entries of at most HEAD_STASH_MAX bytes each.
 */
#define STASH_N 8
#define HEAD_STASH_MAX ((size_t)4 << 20)
struct stash_entry {
	char *url, *key, *data_url;
	struct qa_cache_meta cm;
	uint8_t *head;
	size_t len;
};
static struct stash_entry stash[STASH_N];
static unsigned stash_next;
static pthread_mutex_t stash_mu = PTHREAD_MUTEX_INITIALIZER;

static void stash_put(const char *url, const char *key, const char *data_url,
                      const struct qa_cache_meta *cm, const uint8_t *head, size_t len)
{
	if (len > HEAD_STASH_MAX)
		len = HEAD_STASH_MAX;
	uint8_t *h = malloc(len ? len : 1);
	char *u = qa_str_dup(url), *k = qa_str_dup(key), *du = qa_str_dup(data_url);
	if (!h || !u || !k || !du) {
		free(h);
		free(u);
		free(k);
		free(du);
		return;
	}
	if (len)
		memcpy(h, head, len);
	pthread_mutex_lock(&stash_mu);
	struct stash_entry *e = NULL;
	for (unsigned i = 0; i < STASH_N && !e; i++)
		if (stash[i].url && strcmp(stash[i].url, url) == 0)
			e = &stash[i];
	if (!e)
		e = &stash[stash_next++ % STASH_N];
	free(e->url);
	free(e->key);
	free(e->data_url);
	free(e->head);
	*e = (struct stash_entry){ u, k, du, *cm, h, len };
	pthread_mutex_unlock(&stash_mu);
}

/* Forget what the stash holds for url. */
static void stash_drop(const char *url)
{
	pthread_mutex_lock(&stash_mu);
	for (unsigned i = 0; i < STASH_N; i++)
		if (stash[i].url && strcmp(stash[i].url, url) == 0) {
			free(stash[i].url);
			free(stash[i].key);
			free(stash[i].data_url);
			free(stash[i].head);
			memset(&stash[i], 0, sizeof stash[i]);
		}
	pthread_mutex_unlock(&stash_mu);
}

/* A copy of the stashed head of url (or alias): true when there is one. */
static bool stash_get(const char *url, const char *alias, char *key, size_t keycap,
                      char **data_url, struct qa_cache_meta *cm, uint8_t **head, size_t *len)
{
	bool found = false;
	pthread_mutex_lock(&stash_mu);
	for (unsigned i = 0; i < STASH_N && !found; i++) {
		struct stash_entry *e = &stash[i];
		if (!e->url || (strcmp(e->url, url) != 0 && !(alias && strcmp(e->url, alias) == 0)) ||
		    strlen(e->key) >= keycap)
			continue;
		uint8_t *h = malloc(e->len ? e->len : 1);
		char *du = qa_str_dup(e->data_url);
		if (!h || !du) {
			free(h);
			free(du);
			break;
		}
		if (e->len)
			memcpy(h, e->head, e->len);
		memcpy(key, e->key, strlen(e->key) + 1);
		*data_url = du;
		*cm = e->cm;
		*head = h;
		*len = e->len;
		found = true;
	}
	pthread_mutex_unlock(&stash_mu);
	return found;
}

static void save_to_cache(struct hsrc *s)
{
	if (!s->key || !s->st || s->err || qa_remote_options()->offline)
		return; /* nothing read yet (e.g. served from a blob), or nothing to trust */
	uint64_t prefix = 0;
	while (prefix < s->nchunks && s->st[prefix] == CH_PRESENT)
		prefix++;
	uint64_t have = prefix * QA_HTTP_CHUNK;
	if (have > s->base.size)
		have = s->base.size;
	uint64_t keep = (s->head_end + QA_HTTP_CHUNK - 1) / QA_HTTP_CHUNK * QA_HTTP_CHUNK;
	if (keep > have)
		keep = have;
	if (keep > HEAD_CACHE_MAX)
		keep = HEAD_CACHE_MAX;
	struct qa_cache_meta cm;
	memset(&cm, 0, sizeof cm);
	cm.size = s->base.size;
	memcpy(cm.etag, s->meta.etag, sizeof cm.etag);
	cm.linked = s->meta.linked;
	memcpy(cm.commit, s->meta.commit, sizeof cm.commit);
	/* best effort: an entry that cannot be written costs a request next time */
	(void)!qa_cache_head_store(s->key, &cm, s->map, (size_t)keep, NULL);
	stash_put(s->url, s->key, s->data_url, &cm, s->map, (size_t)keep);
	if (qa_remote_options()->cache_blobs && s->present == s->nchunks) {
		uint8_t dg[QA_SHA256_LEN];
		char hex[2 * QA_SHA256_LEN + 1];
		if (sha256_windows(s->map, s->base.size, dg, NULL) == QA_OK) {
			for (size_t i = 0; i < QA_SHA256_LEN; i++)
				snprintf(hex + 2 * i, 3, "%02x", dg[i]);
			if (!s->meta.linked || strcmp(hex, s->meta.etag) == 0)
				(void)!qa_cache_blob_store(hex, s->map, s->base.size, NULL); /* best effort, as above */
		}
	}
}

static void hs_close(struct qa_source *src)
{
	struct hsrc *s = (struct hsrc *)src;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->wcv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->n_th; i++)
		pthread_join(s->th[i], NULL);
	save_to_cache(s);
	qa_remote_local_peak(s->input, s->peak * QA_HTTP_CHUNK > s->base.size ? s->base.size
	                                                                      : s->peak * QA_HTTP_CHUNK);
	qa_sha256_stream_free(s->vh);
	struct job *j;
	while ((j = pop(&s->dq, &s->dq_tail)))
		free(j);
	while ((j = pop(&s->rq, &s->rq_tail)))
		free(j);
	if (s->map)
		munmap(s->map, (size_t)s->base.size);
	if (s->fd >= 0)
		close(s->fd);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->wcv);
	free(s->st);
	free(s->lent);
	free(s->url);
	free(s->data_url);
	free(s->key);
	qa_http_meta_free(&s->meta);
}

/* The bytes stay in the download file; only the mapping's resident pages go. */
static void hs_release(struct qa_source *src, uint64_t off, uint64_t len)
{
	struct hsrc *s = (struct hsrc *)src;
	if (s->map)
		qa_unmap_pages(s->map, s->base.size, off, len);
}

static const struct qa_source_ops http_ops = { hs_read, hs_view, hs_close, hs_release };

/* An unlinked sparse file of size bytes, mapped read-write. */
static enum qa_err make_backing(struct hsrc *s, struct qa_diag *d)
{
	if (s->base.size == 0)
		return QA_OK;
	if (s->base.size > SIZE_MAX)
		return qa_diag_set(d, QA_ERR_UNSUPPORTED, QA_NO_OFFSET, "remote file too large for this machine");
	char *dir = qa_cache_dir();
	const char *tmpdir = getenv("TMPDIR");
	char path[4096];
	int fd = -1;
	if (dir) {
		char sub[4096];
		snprintf(sub, sizeof sub, "%s/tmp", dir);
		for (size_t i = 1; sub[i]; i++)
			if (sub[i] == '/') {
				sub[i] = '\0';
				mkdir(sub, 0777);
				sub[i] = '/';
			}
		mkdir(sub, 0777);
		if (snprintf(path, sizeof path, "%s/partial.XXXXXX", sub) < (int)sizeof path)
			fd = mkstemp(path);
	}
	free(dir);
	if (fd < 0) {
		snprintf(path, sizeof path, "%s/quantaudit.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
		fd = mkstemp(path);
	}
	if (fd < 0)
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot create a download file: %s",
		                   qa_strerror(errno));
	unlink(path);
	if (ftruncate(fd, (off_t)s->base.size) != 0) {
		int er = errno;
		close(fd);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot size the download file: %s",
		                   qa_strerror(er));
	}
	void *p = mmap(NULL, (size_t)s->base.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int er = errno;
		close(fd);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "cannot map the download file: %s",
		                   qa_strerror(er));
	}
	s->fd = fd;
	s->map = p;
	return QA_OK;
}

static char *make_key(const char *url, const struct qa_http_meta *m)
{
	const char *tag = m->commit[0] ? m->commit : m->etag;
	size_t n = strlen(url) + strlen(tag) + 2;
	char *k = malloc(n);
	if (k)
		snprintf(k, n, "%s\n%s", url, tag);
	return k;
}

/* Serve a verified blob instead, when --cache-blobs has one. */
static bool open_blob(struct qa_source **out, const struct qa_http_meta *m, const char *display,
                      int input)
{
	if (!qa_remote_options()->cache_blobs || !m->linked || !qa_cache_is_sha256(m->etag))
		return false;
	char *p = qa_cache_blob_find(m->etag);
	if (!p)
		return false;
	struct qa_source *src;
	enum qa_err e = qa_source_open_file(&src, p, NULL);
	free(p);
	if (e)
		return false;
	char *nm = qa_str_dup(display);
	if (nm) {
		free(src->name);
		src->name = nm;
	}
	qa_remote_cache_hit(input);
	*out = src;
	return true;
}

enum qa_err qa_http_source_open(struct qa_source **out, const char *url, const char *alias,
                                const char *display, const char *pin_key,
                                struct qa_diag *d)
{
	struct hsrc *s = calloc(1, sizeof *s);
	if (!s)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	s->fd = -1;
	s->base.ops = &http_ops;
	s->base.name = qa_str_dup(display);
	s->url = qa_str_dup(url);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->wcv, NULL);
	s->input = qa_remote_input_add(display, NULL);
	s->meta.size = UINT64_MAX;
	enum qa_err e = QA_OK;
	uint8_t *first = NULL, *head = NULL;
	size_t first_len = 0, head_len = 0;
	struct qa_cache_meta cm;
	bool cached = false;
	char refkey[1200];
	if (!s->base.name || !s->url) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto fail;
	}
	bool offline = qa_remote_options()->offline;
	char *stash_url = NULL;
	if (stash_get(url, alias, refkey, sizeof refkey, &stash_url, &cm, &head, &head_len)) {
		cached = true; /* opened before in this run */
	} else if (!offline && alias &&
	    (qa_cache_ref_load(url, refkey, sizeof refkey) ||
	     qa_cache_ref_load(alias, refkey, sizeof refkey)) &&
	    qa_cache_head_load(refkey, &cm, &head, &head_len)) {
		/* url names a pinned commit: what the cache holds for it cannot
		 * have changed, so no request is needed until bytes are missing. */
		cached = true;
	} else if (offline &&
	           ((!qa_cache_ref_load(url, refkey, sizeof refkey) &&
	             !(alias && qa_cache_ref_load(alias, refkey, sizeof refkey))) ||
	            !(cached = qa_cache_head_load(refkey, &cm, &head, &head_len)))) {
		e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "offline mode: %s is not cached", display);
		goto fail;
	}
	if (cached) {
		s->meta.size = cm.size;
		memcpy(s->meta.etag, cm.etag, sizeof cm.etag);
		s->meta.linked = cm.linked;
		memcpy(s->meta.commit, cm.commit, sizeof cm.commit);
		s->data_url = stash_url ? stash_url : qa_str_dup(url);
		s->key = qa_str_dup(refkey);
		qa_remote_cache_hit(s->input);
	} else {
		struct conn c;
		struct sink sk;
		if ((e = conn_init(&c, d))) {
			conn_free(&c);
			goto fail;
		}
		first = malloc(QA_HTTP_CHUNK);
		if (!first) {
			conn_free(&c);
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto fail;
		}
		memset(&sk, 0, sizeof sk);
		sk.dst = first;
		sk.want = QA_HTTP_CHUNK;
		e = fetch(&c, url, true, 0, QA_HTTP_CHUNK, &sk, &s->meta, s->input, display, d);
		conn_free(&c);
		if (e)
			goto fail;
		first_len = (size_t)sk.got;
		if (s->meta.size == UINT64_MAX) {
			e = qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET, "%s: the server gives no size", display);
			goto fail;
		}
		s->data_url = qa_str_dup(s->meta.final_url ? s->meta.final_url : url);
		s->key = make_key(url, &s->meta);
		if (!s->data_url || !s->key) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto fail;
		}
		/* best effort: a ref that cannot be written only costs a HEAD request offline */
		(void)!qa_cache_ref_store(url, s->key, NULL);
		if (alias)
			(void)!qa_cache_ref_store(alias, s->key, NULL);
		if ((cached = qa_cache_head_load(s->key, &cm, &head, &head_len)) &&
		    (cm.size != s->meta.size || strcmp(cm.etag, s->meta.etag) != 0)) {
			cached = false;
			free(head);
			head = NULL;
		}
		if (cached && head_len > first_len)
			qa_remote_cache_hit(s->input);
		if (!s->meta.ranged) {
			s->norange = true;
			if (qa_remote_options()->warn) {
				char msg[600];
				snprintf(msg, sizeof msg, "%s: the server ignores byte ranges; reading it sequentially",
				         display);
				qa_remote_options()->warn(msg);
			}
		}
	}
	if (pin_key && s->meta.commit[0])
		qa_remote_pin_set(pin_key, s->meta.commit);
	if (s->meta.commit[0])
		qa_remote_input_commit(s->input, s->meta.commit);
	if (open_blob(out, &s->meta, display, s->input)) {
		free(first);
		free(head);
		qa_source_close(&s->base);
		return QA_OK;
	}
	s->base.size = s->meta.size;
	s->nchunks = (s->base.size + QA_HTTP_CHUNK - 1) / QA_HTTP_CHUNK;
	s->st = calloc(s->nchunks ? s->nchunks : 1, 1);
	s->lent = calloc(s->nchunks ? s->nchunks : 1, 1);
	if (!s->st || !s->lent) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto fail;
	}
	if ((e = make_backing(s, d)))
		goto fail;
	s->need_verify = s->meta.linked && qa_cache_is_sha256(s->meta.etag);
	s->window = qa_remote_options()->window_bytes / QA_HTTP_CHUNK;
	if (s->window < 1)
		s->window = 1;
	if (s->need_verify && !(s->vh = qa_sha256_stream_init())) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto fail;
	}
	qa_remote_expect(s->base.size);
	/* Bytes already here: the first answer, then the cached head. */
	const uint8_t *srcs[2] = { first, head };
	size_t lens[2] = { first_len, head_len };
	for (int k = 0; k < 2; k++) {
		size_t n = lens[k];
		if (!srcs[k] || n == 0 || (uint64_t)n > s->base.size)
			continue;
		memcpy(s->map, srcs[k], n);
		for (uint64_t c = 0; c < s->nchunks; c++) {
			uint64_t off, len;
			chunk_span(s, c, &off, &len);
			if (off + len > n)
				break;
			if (s->st[c] != CH_PRESENT) {
				s->st[c] = CH_PRESENT;
				s->present++;
			}
		}
	}
	if (s->present > s->peak)
		s->peak = s->present;
	if (s->need_verify) {
		pthread_mutex_lock(&s->mu);
		advance_locked(s); /* a file whose cached head is all of it is checked now */
		e = s->err;
		if (e && d)
			*d = s->diag;
		pthread_mutex_unlock(&s->mu);
		if (e) {
			free(s->key);
			s->key = NULL; /* nothing of a file that failed its check is cached */
			goto fail;
		}
	}
	free(first);
	free(head);
	*out = &s->base;
	return QA_OK;
fail:
	free(first);
	free(head);
	free(s->key);
	s->key = NULL;
	qa_source_close(&s->base);
	return e;
}
