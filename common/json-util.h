/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Small JSON helpers shared by the LocalAPI and k0s decoders: a bounded cJSON parse (bytes and
 * element count, since cJSON spends ~80 bytes per element), sanitized string copies, and a
 * non-allocating span scanner that walks a complete buffer without building a tree.
 */

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

/* Nesting the span scanner follows; deeper input is refused (cJSON's own limit is 1000). */
#define JSON_SCAN_MAX_DEPTH 512u

/* JSON's own whitespace, not isspace(): NUL, \v and \f are not allowed between values. */
static inline bool json_is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Rough number of values in data (every ',' '[' '{' outside strings, plus one): what a cJSON
 * tree of it would hold, give or take one per container. */
size_t json_count_values(const char *data, size_t len);

/* Parse data as exactly one JSON value (trailing whitespace only). -EINVAL if it is not valid
 * JSON or (with want_object) not an object, -EFBIG over max bytes or max_values values. */
int json_parse_bounded(const char *data, size_t len, size_t max, size_t max_values,
                       bool want_object, cJSON **ret);

/* Copy of a string member, passed through str_sanitize(, max_len); absent, null, wrong-typed and
 * empty all mean "not set" (NULL). -ENOMEM. */
int json_dup_string(const cJSON *obj, const char *key, size_t max_len, char **ret);
bool json_get_bool(const cJSON *obj, const char *key);

/* Decode the inside of a JSON string literal (p..p+n, without the quotes; may be cut short) into
 * a sanitized copy of at most max_len bytes: escapes decoded, control bytes and invalid UTF-8
 * become '?'. NULL on OOM. */
char *json_unescape(const char *p, size_t n, size_t max_len);

/* ---- span scanner: no allocation, no tree ------------------------------------------------- */

const char *json_skip_space(const char *p, const char *end);
/* The end of the one value that starts at p (after whitespace), or NULL if it is cut short,
 * unbalanced or nested deeper than JSON_SCAN_MAX_DEPTH. Structure only: scalars are not
 * validated (the values the callers use are decoded one by one). */
const char *json_skip_value(const char *p, const char *end);

typedef struct JsonIter {
        const char *p, *end;
        bool first;
} JsonIter;

/* Start walking the object or array (kind '{' or '[') that starts at p..end (one value, as
 * json_skip_value() delimits it). -EINVAL if it is not one. */
int json_iter_init(JsonIter *it, const char *p, const char *end, char kind);
/* Next member: key (object only, the raw bytes inside the quotes) and value span [v, v_end).
 * 1: got one, 0: the end, -EINVAL: malformed. */
int json_iter_next(JsonIter *it, const char **key, size_t *key_len, const char **v,
                   const char **v_end);
/* Like json_iter_next() without looking for the end of the value (one pass less over a big
 * value the caller walks itself): *v is its start; the caller must then call json_iter_resume()
 * with its end. */
int json_iter_next_open(JsonIter *it, const char **key, size_t *key_len, const char **v);
void json_iter_resume(JsonIter *it, const char *v_end);
/* key (raw, from json_iter_next()) equals s. Inline: with a literal s, strlen() folds. */
static inline bool json_key_eq(const char *key, size_t key_len, const char *s) {
        return __builtin_strlen(s) == key_len && __builtin_memcmp(key, s, key_len) == 0;
}
/* A string value span ("...") decoded like json_unescape(); NULL *ret when v is not a string or
 * is empty. -ENOMEM. */
int json_span_string(const char *v, const char *v_end, size_t max_len, char **ret);
/* A literal true. */
bool json_span_true(const char *v, const char *v_end);
bool json_span_null(const char *v, const char *v_end);
