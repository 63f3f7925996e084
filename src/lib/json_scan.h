/*
 * json_scan.h - JSON helpers the parsers share: a scanner that finds the
 * byte position of each top-level key of an object (jansson keeps keys in
 * document order but does not say where they sit), so that an error about an
 * entry of a safetensors header, an index or a config.json can carry the
 * exact offset of its key; the one message for a jansson load error; and the
 * JSON output policies every writer shares: a uint64, bytes as hex, a string
 * that may be absent, and text that may not be UTF-8.  Private to the library.
 */
#ifndef QA_JSON_SCAN_H
#define QA_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

/*
 * Scan the JSON object whose '{' is at buf[start] (the text must already be
 * known to be valid JSON, e.g. parsed by jansson) and store the position of
 * the opening quote of each of its top-level keys, in document order, in
 * pos[0..max).  Returns the number of keys seen, which may exceed max.
 */
size_t qa_json_key_positions(const char *buf, size_t len, size_t start,
                             size_t *pos, size_t max);

/* Position of the first byte of the value after the key whose quote is at kpos. */
size_t qa_json_value_position(const char *buf, size_t len, size_t kpos);

/* Position of the first byte of buf that is not JSON whitespace (len if none). */
size_t qa_json_first_nonspace(const char *buf, size_t len);

/*
 * Key offsets (absolute: base + position) of the n_keys keys of the object
 * at buf[start], as a malloc'd array the caller frees; when the scan does
 * not find exactly n_keys keys (or buf[start] is not '{'), every entry is
 * fallback.  NULL only when out of memory.
 */
uint64_t *qa_json_key_offsets(const char *buf, size_t len, size_t start,
                              size_t n_keys, uint64_t base, uint64_t fallback);

/*
 * The offset of the key named key of obj, given off[0..n), the offsets of
 * obj's keys in document order (from qa_json_key_offsets); 0 when key is
 * not there or off is NULL.
 */
uint64_t qa_json_key_offset(const json_t *obj, const uint64_t *off, size_t n, const char *key);

/*
 * Fill d from jansson's load error je for a document of len bytes at file
 * offset base, named what ("config", "header", ...): QA_ERR_FORMAT at the
 * error's position, "duplicate key in WHAT: ..." or "WHAT is not valid
 * json: ...".  Returns QA_ERR_FORMAT.
 */
QA_WARN_UNUSED
enum qa_err qa_json_error_diag(struct qa_diag *d, const json_error_t *je,
                               uint64_t base, size_t len, const char *what);

/*
 * A uint64 as JSON: an integer up to INT64_MAX, beyond that a decimal
 * string (lossless; jansson integers are signed 64-bit).  New reference,
 * NULL when out of memory.
 */
json_t *qa_json_u64(uint64_t v);

/*
 * The n bytes at p (a digest, a bitmap) as a JSON string of lowercase hex,
 * 2n characters.  New reference, NULL when out of memory.
 */
json_t *qa_json_hex(const uint8_t *p, size_t n);

/* s as a JSON string, or JSON null when s is NULL (s must be valid UTF-8,
 * as jansson requires).  New reference, NULL when out of memory. */
json_t *qa_json_str_or_null(const char *s);

/*
 * Set obj[key] to the len bytes at s as a JSON string that is always valid:
 * invalid UTF-8 bytes become U+FFFD (NUL and other control bytes are kept,
 * JSON escapes them).  Only when s is not valid UTF-8, obj[KEY_hex] is set
 * as well, to the exact bytes in lowercase hex.  Returns 0, or -1 when out
 * of memory.
 */
int qa_json_text_set(json_t *obj, const char *key, const char *s, size_t len);

/* The len bytes at s as a JSON string (invalid UTF-8 becomes U+FFFD); a new
 * reference, NULL when out of memory. */
json_t *qa_json_text(const char *s, size_t len);

#endif
