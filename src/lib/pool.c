/*
 * pool.c - parallel-for with an atomic item counter.
 */
#define _POSIX_C_SOURCE 200809L
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct job {
	qa_pool_fn fn;
	void *ctx;
	size_t n_items;
	atomic_size_t next;
	atomic_bool stop;
	pthread_mutex_t lock;
	size_t err_item; /* lowest failing item, SIZE_MAX if none */
	enum qa_err err;
};

struct worker {
	struct job *job;
	unsigned index;
	pthread_t thread;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct job *j = w->job;
	for (;;) {
		if (atomic_load(&j->stop))
			break;
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->n_items)
			break;
		enum qa_err e = j->fn(j->ctx, i, w->index);
		if (e != QA_OK) {
			pthread_mutex_lock(&j->lock);
			if (i < j->err_item) {
				j->err_item = i;
				j->err = e;
			}
			pthread_mutex_unlock(&j->lock);
			atomic_store(&j->stop, true);
		}
	}
	return NULL;
}

unsigned qa_pool_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1u;
}

enum qa_err qa_pool_run(unsigned n_threads, size_t n_items, qa_pool_fn fn,
                        void *ctx)
{
	struct job j;
	if (n_threads == 0)
		n_threads = qa_pool_default_threads();
	if (n_items < n_threads)
		n_threads = n_items ? (unsigned)n_items : 1u;
	j.fn = fn;
	j.ctx = ctx;
	j.n_items = n_items;
	atomic_init(&j.next, 0);
	atomic_init(&j.stop, false);
	pthread_mutex_init(&j.lock, NULL);
	j.err_item = SIZE_MAX;
	j.err = QA_OK;

	struct worker *ws = calloc(n_threads, sizeof *ws);
	unsigned started = 1;
	if (!ws)
		n_threads = 1;
	struct worker self = { &j, 0, 0 };
	for (unsigned t = 1; ws && t < n_threads; t++) {
		ws[t].job = &j;
		ws[t].index = t;
		if (pthread_create(&ws[t].thread, NULL, work, &ws[t]) != 0)
			break;
		started++;
	}
	work(&self);
	for (unsigned t = 1; t < started; t++)
		pthread_join(ws[t].thread, NULL);
	free(ws);
	pthread_mutex_destroy(&j.lock);
	return j.err;
}

struct weighted {
	uint64_t w;
	size_t i;
};

static int cmp_weighted(const void *a, const void *b)
{
	const struct weighted *x = a, *y = b;
	if (x->w != y->w)
		return x->w > y->w ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

bool qa_pool_order_by_weight(size_t *idx, size_t n, const uint64_t *weight)
{
	struct weighted *it = malloc((n + 1) * sizeof *it);
	if (!it)
		return false;
	for (size_t k = 0; k < n; k++)
		it[k] = (struct weighted){ weight[idx[k]], idx[k] };
	qsort(it, n, sizeof *it, cmp_weighted);
	for (size_t k = 0; k < n; k++)
		idx[k] = it[k].i;
	free(it);
	return true;
}

void qa_pool_first_diag(const struct qa_diag *diags, size_t n, struct qa_diag *d)
{
	for (size_t i = 0; d && i < n; i++)
		if (diags[i].code != QA_OK) {
			*d = diags[i];
			return;
		}
}
