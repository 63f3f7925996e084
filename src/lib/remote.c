/*
 * remote.c - the run's network options, the dispatch of URLs to caches or
 * ranged HTTP, pinned commits, transfer statistics and progress.
 */
#define _POSIX_C_SOURCE 200809L
#include "remote.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache.h"
#include "escape.h"
#include "strbuf.h"
#include "http.h"
#include "hub.h"
#include "util.h"

static struct qa_remote_options opts;
static bool opts_set;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

void qa_remote_options_default(struct qa_remote_options *o)
{
	memset(o, 0, sizeof *o);
	o->retries = 5;
	o->retry_wait_ms = 1000;
	o->window_bytes = (uint64_t)64 << 20;
	const char *w = getenv("QUANTAUDIT_REMOTE_WINDOW");
	uint64_t wb = 0;
	if (w && *w) {
		for (const char *p = w; *p >= '0' && *p <= '9' && wb < ((uint64_t)1 << 40); p++)
			wb = wb * 10 + (uint64_t)(*p - '0');
		if (wb >= 65536 && wb <= ((uint64_t)1 << 40))
			o->window_bytes = wb;
	}
	const char *v = getenv("HF_HUB_OFFLINE");
	if (v && (strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
	          strcasecmp(v, "true") == 0))
		o->offline = true;
}

void qa_remote_configure(const struct qa_remote_options *o)
{
	opts = *o;
	opts_set = true;
}

const struct qa_remote_options *qa_remote_options(void)
{
	if (!opts_set) {
		qa_remote_options_default(&opts);
		opts_set = true;
	}
	return &opts;
}

bool qa_remote_is_url(const char *path)
{
	return path && (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0 ||
	                strncmp(path, "hf://", 5) == 0);
}

char *qa_remote_display_url(const char *url)
{
	char *out = qa_str_dup(url);
	if (!out)
		return NULL;
	char *q = strpbrk(out, "?#");
	if (q)
		*q = '\0';
	char *sch = strstr(out, "://");
	if (sch) {
		char *host = sch + 3;
		char *slash = strchr(host, '/');
		char *at = strchr(host, '@');
		if (at && (!slash || at < slash) && strncmp(out, "hf://", 5) != 0)
			memmove(host, at + 1, strlen(at + 1) + 1);
	}
	/* control bytes and a backslash as escape.c writes them everywhere */
	struct qa_sb b = { 0 };
	qa_escape_term(&b, out, strlen(out));
	free(out);
	if (b.oom) {
		qa_sb_free(&b);
		return NULL;
	}
	return b.p ? b.p : qa_str_dup("");
}

/* ---------------------------------------------------------------- pins */

struct pin {
	char *key;
	char commit[64];
};
static struct pin *pins;
static size_t n_pins;

bool qa_remote_pin_get(const char *key, char *buf, size_t cap)
{
	bool found = false;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < n_pins && !found; i++)
		if (strcmp(pins[i].key, key) == 0) {
			snprintf(buf, cap, "%s", pins[i].commit);
			found = true;
		}
	pthread_mutex_unlock(&mu);
	return found;
}

void qa_remote_pin_set(const char *key, const char *commit)
{
	char tmp[64];
	if (!commit[0] || qa_remote_pin_get(key, tmp, sizeof tmp))
		return;
	pthread_mutex_lock(&mu);
	struct pin *p = realloc(pins, (n_pins + 1) * sizeof *pins);
	if (p) {
		pins = p;
		pins[n_pins].key = qa_str_dup(key);
		snprintf(pins[n_pins].commit, sizeof pins[n_pins].commit, "%s", commit);
		if (pins[n_pins].key)
			n_pins++;
	}
	pthread_mutex_unlock(&mu);
}

char *qa_remote_pinned_url(const char *url)
{
	struct qa_hub_uri u;
	char key[512], commit[64];
	if (!url || strncmp(url, "hf://", 5) != 0 || qa_hub_parse(url, &u, NULL) != QA_OK || !u.path[0])
		return NULL;
	qa_hub_pin_key(&u, key, sizeof key);
	if (!qa_remote_pin_get(key, commit, sizeof commit) || strcmp(commit, u.rev) == 0)
		return NULL;
	size_t n = strlen(u.repo) + strlen(commit) + strlen(u.path) + 32;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "hf://%s%s@%s/%s", u.kind == QA_HUB_DATASET ? "datasets/" : "", u.repo,
		         commit, u.path);
	return s;
}

/* ---------------------------------------------------------------- statistics */

struct input {
	char *url;
	char commit[64];
	uint64_t bytes, requests, peak;
};
static struct input *inputs;
static size_t n_inputs;
static uint64_t t_requests, t_bytes, t_retries, t_hits, t_expect;
static char *integrity_msg;
static double t_start, t_last;
static bool progress_shown;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int qa_remote_input_add(const char *url, const char *commit)
{
	int slot = -1;
	pthread_mutex_lock(&mu);
	if (!t_start)
		t_start = now_s();
	for (size_t i = 0; i < n_inputs; i++)
		if (strcmp(inputs[i].url, url) == 0) {
			pthread_mutex_unlock(&mu);
			return (int)i; /* the same file opened again */
		}
	struct input *p = realloc(inputs, (n_inputs + 1) * sizeof *inputs);
	if (p) {
		inputs = p;
		memset(&inputs[n_inputs], 0, sizeof *inputs);
		inputs[n_inputs].url = qa_str_dup(url);
		if (commit)
			snprintf(inputs[n_inputs].commit, sizeof inputs[n_inputs].commit, "%s", commit);
		if (inputs[n_inputs].url)
			slot = (int)n_inputs++;
	}
	pthread_mutex_unlock(&mu);
	return slot;
}

void qa_remote_input_commit(int input, const char *commit)
{
	pthread_mutex_lock(&mu);
	if (input >= 0 && (size_t)input < n_inputs)
		snprintf(inputs[input].commit, sizeof inputs[input].commit, "%s", commit);
	pthread_mutex_unlock(&mu);
}

static void human(char *buf, size_t cap, double v)
{
	if (v >= 1 << 30)
		snprintf(buf, cap, "%.1f GiB", v / (1 << 30));
	else if (v >= 1 << 20)
		snprintf(buf, cap, "%.1f MiB", v / (1 << 20));
	else
		snprintf(buf, cap, "%.0f KiB", v / 1024);
}

/* A progress line on stderr, at most four times a second, after 1 s (mutex held). */
static void progress_locked(void)
{
	if (!opts.progress)
		return;
	double t = now_s();
	if (t - t_start < 1.0 || t - t_last < 0.25)
		return;
	t_last = t;
	char a[32], b[32], r[32], eta[32] = "";
	double rate = t_bytes / (t - t_start);
	human(a, sizeof a, (double)t_bytes);
	human(b, sizeof b, (double)t_expect);
	human(r, sizeof r, rate);
	if (rate > 0 && t_expect > t_bytes)
		snprintf(eta, sizeof eta, ", ETA %.0f s", (t_expect - t_bytes) / rate);
	fprintf(stderr, "\rquantaudit: %s of %s, %s/s%s\033[K", a, b, r, eta);
	progress_shown = true;
}

void qa_remote_count(int input, uint64_t bytes, unsigned requests, unsigned retries)
{
	pthread_mutex_lock(&mu);
	t_bytes += bytes;
	t_requests += requests;
	t_retries += retries;
	if (input >= 0 && (size_t)input < n_inputs) {
		inputs[input].bytes += bytes;
		inputs[input].requests += requests;
	}
	progress_locked();
	pthread_mutex_unlock(&mu);
}

void qa_remote_local_peak(int input, uint64_t bytes)
{
	pthread_mutex_lock(&mu);
	if (input >= 0 && (size_t)input < n_inputs && bytes > inputs[input].peak)
		inputs[input].peak = bytes;
	pthread_mutex_unlock(&mu);
}

void qa_remote_expect(uint64_t bytes)
{
	pthread_mutex_lock(&mu);
	t_expect += bytes;
	pthread_mutex_unlock(&mu);
}

void qa_remote_cache_hit(int input)
{
	(void)input;
	pthread_mutex_lock(&mu);
	t_hits++;
	pthread_mutex_unlock(&mu);
}

void qa_remote_integrity_fail(const char *msg)
{
	pthread_mutex_lock(&mu);
	if (!integrity_msg)
		integrity_msg = qa_str_dup(msg);
	pthread_mutex_unlock(&mu);
}

static json_t *jnum(uint64_t v)
{
	return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v));
}

json_t *qa_remote_transfer_json(void)
{
	pthread_mutex_lock(&mu);
	json_t *o = NULL;
	if (n_inputs) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n_inputs; i++) {
			json_t *e = json_object();
			json_object_set_new(e, "url", json_string(inputs[i].url));
			if (inputs[i].commit[0])
				json_object_set_new(e, "commit", json_string(inputs[i].commit));
			json_object_set_new(e, "bytes", jnum(inputs[i].bytes));
			json_object_set_new(e, "requests", jnum(inputs[i].requests));
			json_object_set_new(e, "local_peak_bytes", jnum(inputs[i].peak));
			json_array_append_new(arr, e);
		}
		o = json_object();
		json_object_set_new(o, "requests", jnum(t_requests));
		json_object_set_new(o, "bytes", jnum(t_bytes));
		json_object_set_new(o, "retries", jnum(t_retries));
		json_object_set_new(o, "cache_hits", jnum(t_hits));
		json_object_set_new(o, "inputs", arr);
	}
	pthread_mutex_unlock(&mu);
	return o;
}

enum qa_err qa_remote_finish(struct qa_diag *d)
{
	pthread_mutex_lock(&mu);
	if (progress_shown) {
		fprintf(stderr, "\r\033[K");
		progress_shown = false;
	}
	enum qa_err e = QA_OK;
	if (integrity_msg)
		e = qa_diag_set(d, QA_ERR_NETWORK, QA_NO_OFFSET, "%s", integrity_msg);
	pthread_mutex_unlock(&mu);
	return e;
}

/* ---------------------------------------------------------------- dispatch */

static enum qa_err open_hf(struct qa_source **out, const char *url, const char *display,
                           struct qa_diag *d)
{
	struct qa_hub_uri u;
	enum qa_err e = qa_hub_parse(url, &u, d);
	if (e)
		return e;
	if (!u.path[0] || u.quant[0])
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "%s names a repository, not a file", display);
	char *local = qa_cache_hf_lookup(&u);
	if (local) {
		struct qa_source *src;
		e = qa_source_open_file(&src, local, d);
		free(local);
		if (!e) {
			char *nm = qa_str_dup(display);
			if (nm) {
				free(src->name);
				src->name = nm;
			}
			int slot = qa_remote_input_add(display, NULL);
			qa_remote_cache_hit(slot);
			*out = src;
			return QA_OK;
		}
	}
	char key[512], commit[64];
	qa_hub_pin_key(&u, key, sizeof key);
	bool pinned = qa_remote_pin_get(key, commit, sizeof commit);
	char *rurl = qa_hub_resolve_url(&u, pinned ? commit : NULL);
	char *alias = pinned ? qa_hub_resolve_url(&u, NULL) : NULL;
	if (!rurl || (pinned && !alias)) {
		free(rurl);
		free(alias);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	e = qa_http_source_open(out, rurl, alias, display, key, d);
	free(rurl);
	free(alias);
	return e;
}

enum qa_err qa_remote_open(struct qa_source **out, const char *url, struct qa_diag *d)
{
	char *display = qa_remote_display_url(url);
	if (!display)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	enum qa_err e;
	if (strncmp(url, "hf://", 5) == 0)
		e = open_hf(out, url, display, d);
	else
		e = qa_http_source_open(out, url, NULL, display, NULL, d);
	free(display);
	return e;
}

static bool hex32(const char *hex, uint8_t out[32])
{
	return qa_cache_is_sha256(hex) && qa_hex_decode(hex, out, 32, false);
}

enum qa_err qa_remote_head(const char *url, struct qa_remote_head *out, struct qa_diag *d)
{
	struct qa_hub_uri u;
	char key[512], commit[64], refkey[1200];
	char *rurl = NULL, *alias = NULL;
	enum qa_err e = QA_OK;
	memset(out, 0, sizeof *out);
	out->size = UINT64_MAX;
	char *display = qa_remote_display_url(url);
	if (!display)
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	bool hf = strncmp(url, "hf://", 5) == 0;
	if (hf) {
		if ((e = qa_hub_parse(url, &u, d)))
			goto done;
		if (!u.path[0] || u.quant[0]) {
			e = qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "%s names a repository, not a file",
			                display);
			goto done;
		}
		char *local = qa_cache_hf_lookup(&u);
		if (local) {
			free(local);
			out->local = true;
			goto done;
		}
		qa_hub_pin_key(&u, key, sizeof key);
		bool pinned = qa_remote_pin_get(key, commit, sizeof commit);
		rurl = qa_hub_resolve_url(&u, pinned ? commit : NULL);
		alias = pinned ? qa_hub_resolve_url(&u, NULL) : NULL;
		if (!rurl || (pinned && !alias)) {
			e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
			goto done;
		}
	} else if (!(rurl = qa_str_dup(url))) {
		e = qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
		goto done;
	}
	int slot = qa_remote_input_add(display, NULL);
	if (qa_remote_options()->offline) {
		/* what an earlier run's first hop said, kept with the cached header */
		struct qa_cache_meta cm;
		uint8_t *head = NULL;
		size_t len = 0;
		if ((qa_cache_ref_load(rurl, refkey, sizeof refkey) ||
		     (alias && qa_cache_ref_load(alias, refkey, sizeof refkey))) &&
		    qa_cache_head_load(refkey, &cm, &head, &len)) {
			free(head);
			out->from_cache = true;
			out->size = cm.size;
			out->has_sha256 = cm.linked && hex32(cm.etag, out->sha256);
			snprintf(out->commit, sizeof out->commit, "%s", cm.commit);
			qa_remote_cache_hit(slot);
		} else {
			e = qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "offline mode: %s is not cached", display);
		}
		goto done;
	}
	struct qa_http_meta m;
	if ((e = qa_http_head(rurl, slot, &m, d)))
		goto done;
	out->size = m.size;
	out->has_sha256 = m.linked && hex32(m.etag, out->sha256);
	snprintf(out->commit, sizeof out->commit, "%s", m.commit);
	if (out->has_sha256 && m.size != UINT64_MAX) {
		/* kept as an empty header entry, so that an offline run knows the digest */
		struct qa_cache_meta cm;
		memset(&cm, 0, sizeof cm);
		cm.size = m.size;
		memcpy(cm.etag, m.etag, sizeof cm.etag);
		cm.linked = true;
		memcpy(cm.commit, m.commit, sizeof cm.commit);
		snprintf(refkey, sizeof refkey, "%s\n%s", rurl, m.commit[0] ? m.commit : m.etag);
		uint8_t *head = NULL;
		size_t len = 0;
		struct qa_cache_meta om;
		/* keep a header an earlier run cached for these very bytes */
		if (!(qa_cache_head_load(refkey, &om, &head, &len) && om.size == cm.size &&
		      strcmp(om.etag, cm.etag) == 0))
			(void)!qa_cache_head_store(refkey, &cm, "", 0, NULL);
		free(head);
		/* the cache is best effort: a failed write costs a later run a request */
		(void)!qa_cache_ref_store(rurl, refkey, NULL);
		if (alias)
			(void)!qa_cache_ref_store(alias, refkey, NULL);
	}
	qa_http_meta_free(&m);
	if (out->commit[0]) {
		if (hf)
			qa_remote_pin_set(key, out->commit);
		qa_remote_input_commit(slot, out->commit);
	}
done:
	free(rurl);
	free(alias);
	free(display);
	return e;
}

bool qa_remote_exists(const char *url)
{
	struct qa_source *src;
	struct qa_diag d;
	qa_diag_clear(&d);
	if (qa_remote_open(&src, url, &d) == QA_OK) {
		qa_source_close(src);
		return true;
	}
	return !(strstr(d.msg, "HTTP 404") || strstr(d.msg, "is not cached"));
}
