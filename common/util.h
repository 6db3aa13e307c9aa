/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * util.c's API: string vectors, a growing string, safe number parsing, saturating time
 * arithmetic and text cleaning for what comes from outside. Pure, no global state, never logs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* NULL-terminated string vectors. */
char **strv_free(char **l);
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)
size_t strv_length(char *const *l);
int strv_extend(char ***l, const char *value); /* appends a copy; -ENOMEM */
int strv_push(char ***l, char *value); /* takes ownership on success */
char **strv_copy(char *const *l); /* NULL on OOM; NULL input -> empty vector */
bool strv_equal(char *const *a, char *const *b);
bool strv_contains(char *const *l, const char *s);

/* Join with separator; NULL on OOM. */
char *strv_join(char *const *l, const char *sep);

/* Appends a formatted string; -ENOMEM (the vector is unchanged). */
int strv_extendf(char ***l, const char *fmt, ...) _printf_(2, 3);

/* The value of a hex digit, or -EINVAL. */
int unhexchar(char c);

/* asprintf that returns NULL on failure instead of leaving the pointer undefined. */
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);

/* A growing NUL-terminated string; appends report -ENOMEM and leave the text as it was. */
typedef struct StrBuf {
        char *s;
        size_t len, size;
} StrBuf;
int strbuf_append_n(StrBuf *b, const char *s, size_t n);
int strbuf_append(StrBuf *b, const char *s);
void strbuf_done(StrBuf *b); /* frees the text; the StrBuf is empty again */

/* Safe unsigned parsing, no atoi: whole string must be consumed. */
int safe_atou64(const char *s, uint64_t *ret);
int safe_atou(const char *s, unsigned *ret);
int safe_atoi(const char *s, int *ret);

/* Saturating microsecond arithmetic: a sum that would wrap is UINT64_MAX ("never"). */
static inline uint64_t usec_add(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A copy of untrusted text fit for STATUS=, status.json and log fields: at most max_len bytes
 * (UTF-8 sequences are never cut in half), every control byte (newline included) and every
 * invalid UTF-8 byte replaced by '?'. "" for NULL. NULL on OOM. */
char *str_sanitize(const char *s, size_t max_len);
