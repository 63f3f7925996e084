/*
 * manifest_json.h - the jansson form of a manifest, for the CLI and tests.
 * Private to the library: the installed API exposes no jansson types (see
 * qa_manifest_json_text).
 */
#ifndef QA_MANIFEST_JSON_H
#define QA_MANIFEST_JSON_H

#include <jansson.h>

#include "manifest.h"

/* The JSON object of m (new reference; block digests only when m has them). */
json_t *qa_manifest_to_json(const struct qa_manifest *m);

#endif
