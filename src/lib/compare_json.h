/*
 * compare_json.h - the jansson form of diff and shape-swap results, for the
 * CLI and the library's own JSON text functions.  Private to the library:
 * the installed API exposes no jansson types (see qa_diff_json_text).
 */
#ifndef QA_COMPARE_JSON_H
#define QA_COMPARE_JSON_H

#include <jansson.h>

#include "compare.h"

/* The JSON document of r (new reference; NULL when out of memory). */
json_t *qa_diff_to_json(const struct qa_diff_result *r);

/* The JSON object of one shape-swap result (new reference). */
json_t *qa_swap_to_json(const struct qa_swap_result *r);

#endif
