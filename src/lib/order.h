/*
 * order.h - llama.cpp's weight order: the order in which llama-quantize
 * writes the tensors of its output file.
 *
 * llama.cpp keeps a model's weights in a map sorted by layer first and name
 * second: a name's layer is the integer that a C scanf("blk.%d.") would read
 * from its start (so "blk.10." comes after "blk.9.", "blk.7" without the dot
 * still counts as layer 7, and "blk. 3." as layer 3), and is -1 when no
 * integer can be read ("output.weight", "token_embd.weight": they come
 * first).  Within a layer names compare byte by byte as unsigned chars, so
 * "output.weight" precedes "output_norm.weight" ('.' < '_') and
 * "ffn_down.weight" precedes "ffn_down_exps.weight".
 */
#ifndef QA_ORDER_H
#define QA_ORDER_H

#include <stddef.h>

#include "err.h"

/*
 * The layer llama.cpp reads from name: scanf("blk.%d.") on a glibc system
 * (leading white space and a sign are accepted, the digits are converted as
 * a long and then stored in an int, as glibc does).  -1 when name does not
 * start with "blk." followed by an integer; name may be NULL (-1).
 */
int qa_order_layer(const char *name);

/* <0, 0 or >0 as a sorts before, with or after b in llama.cpp's weight order. */
int qa_order_cmp(const char *a, const char *b);

/*
 * Sort: perm receives the indices 0..n-1 of names[] in llama.cpp's weight
 * order (equal names keep their input order).  Returns QA_ERR_NOMEM when the
 * scratch space cannot be allocated, QA_ERR_USAGE for NULL arguments with
 * n > 0.
 */
QA_WARN_UNUSED
enum qa_err qa_order_sort(const char *const *names, size_t n, size_t *perm,
                          struct qa_diag *d);

#endif
