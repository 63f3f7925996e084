/*
 * pool.h - a small parallel-for over POSIX threads.
 *
 * The work quantaudit parallelises is a list of independent items (tensors,
 * row ranges, blocks).  qa_pool_run() hands items out to worker threads one
 * at a time from a shared atomic counter, so uneven items balance
 * themselves, and returns when every item is done.  There is no persistent
 * pool: threads live for one call, which costs microseconds against work
 * measured in milliseconds.
 */
#ifndef QA_POOL_H
#define QA_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * Called once per item with the caller's context, the item index and the
 * index of the worker thread running it (0 .. n_threads-1, useful for
 * per-thread scratch buffers).  A non-OK return stops the hand-out of new
 * items; items already running finish.
 */
typedef enum qa_err (*qa_pool_fn)(void *ctx, size_t item, unsigned worker);

/*
 * Run fn over items 0 .. n_items-1 on up to n_threads threads (the calling
 * thread is one of them; 0 means the number of online cores).  Returns
 * QA_OK, or the error of the lowest-numbered failing item, so that the
 * result does not depend on scheduling.  Thread creation failure falls back
 * to fewer threads.
 */
QA_WARN_UNUSED
enum qa_err qa_pool_run(unsigned n_threads, size_t n_items, qa_pool_fn fn,
                        void *ctx);

/*
 * For callers that keep one struct qa_diag per item: copy the first diag of
 * diags[0 .. n-1] whose code is not QA_OK into *d (nothing when d is NULL or
 * none failed).  That is the diagnosis of the error qa_pool_run returned.
 */
void qa_pool_first_diag(const struct qa_diag *diags, size_t n, struct qa_diag *d);

/*
 * Sort the n distinct item indices at idx by weight[index], biggest first,
 * equal weights by the lower index first: the order the audits start work
 * in and the shards of a run are filled in.  False when out of memory
 * (idx is then unchanged).
 */
bool qa_pool_order_by_weight(size_t *idx, size_t n, const uint64_t *weight);

/* The number of online cores, at least 1. */
unsigned qa_pool_default_threads(void);

#endif
