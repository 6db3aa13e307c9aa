/* SPDX-License-Identifier: MIT */
#pragma once

/* The one home of cleanup attributes and small helpers shared by common/ and agent/. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _noreturn_ __attribute__((noreturn))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define NSEC_PER_USEC UINT64_C(1000)

/* Take ownership of a pointer or fd: the cleanup attribute then sees NULL / -1. */
#define TAKE_PTR(p) \
        ({ \
                __typeof__(p) _ptr_ = (p); \
                (p) = NULL; \
                _ptr_; \
        })
#define TAKE_FD(fd) \
        ({ \
                int _fd_ = (fd); \
                (fd) = -1; \
                _fd_; \
        })

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* free() that returns NULL, for `p = mfree(p);`. */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

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

/* Define a cleanup function for a library destructor that takes a pointer. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p) { \
                if (*p) \
                        func(*p); \
        }
