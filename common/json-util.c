/* SPDX-License-Identifier: MIT */
/*
 * JSON helpers for the decoders in common/: bounded cJSON parsing, sanitized string copies and a
 * span scanner that walks a complete buffer without allocating. It owns no format knowledge
 * (tailnet-status.c and k0s-status.c know the keys) and never logs.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "util.h"

size_t json_count_values(const char *data, size_t len) {
        size_t n = 1;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char c = data[i];

                if (in_string) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_string = false;
                } else if (c == '"')
                        in_string = true;
                else if (c == ',' || c == '[' || c == '{')
                        n++;
        }
        return n;
}

int json_parse_bounded(const char *data, size_t len, size_t max, size_t max_values,
                       bool want_object, cJSON **ret) {
        const char *end = NULL;
        cJSON *root;

        if (!data || len == 0)
                return -EINVAL;
        if (len > max)
                return -EFBIG;
        /* The tree, not the text, is what costs: refuse before cJSON allocates it. */
        if (json_count_values(data, len) > max_values)
                return -EFBIG;

        root = cJSON_ParseWithLengthOpts(data, len, &end, false);
        if (!root)
                return -EINVAL;
        /* cJSON stops at the end of the first value: anything but whitespace after it means the
         * bytes are not one JSON document (e.g. two bus lines glued together). */
        for (const char *p = end; p && p < data + len; p++)
                if (!json_is_space(*p)) {
                        cJSON_Delete(root);
                        return -EINVAL;
                }
        if (want_object && !cJSON_IsObject(root)) {
                cJSON_Delete(root);
                return -EINVAL;
        }

        *ret = root;
        return 0;
}

int json_dup_string(const cJSON *obj, const char *key, size_t max_len, char **ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
        char *s = NULL;

        if (cJSON_IsString(v) && !isempty(v->valuestring)) {
                s = str_sanitize(v->valuestring, max_len);
                if (!s)
                        return -ENOMEM;
        }
        *ret = s;
        return 0;
}

bool json_get_bool(const cJSON *obj, const char *key) {
        return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* UTF-8 of a code point (no surrogates: those became '?'); returns the length. */
static size_t utf8_encode(uint32_t cp, char *out) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xc0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3f));
                return 2;
        }
        out[0] = (char) (0xe0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
}

char *json_unescape(const char *p, size_t n, size_t max_len) {
        _cleanup_free_ char *raw = NULL;
        size_t o = 0, cap = MIN(n, max_len * 4 + 8);

        /* Decoded text is never longer than its escaped form (one escape gives at most 3 bytes
         * and takes at least 2); past 4*max_len + some there is nothing left that
         * str_sanitize() would keep. */
        raw = malloc(cap + 4);
        if (!raw)
                return NULL;
        for (size_t i = 0; i < n && o < cap; i++) {
                char c = p[i];

                if (c != '\\') {
                        raw[o++] = c;
                        continue;
                }
                if (++i >= n)
                        break;
                switch (p[i]) {
                case 'u': {
                        uint32_t cp = 0;

                        if (i + 4 >= n) {
                                i = n;
                                break;
                        }
                        for (size_t k = 1; k <= 4; k++) {
                                int h = unhexchar(p[i + k]);
                                cp = h < 0 ? 0xfffe0000u : (cp << 4) | (uint32_t) h;
                        }
                        i += 4;
                        if (cp == 0 || cp > 0xffff || (cp >= 0xd800 && cp <= 0xdfff))
                                raw[o++] = '?'; /* NUL, bad hex, surrogate halves */
                        else
                                o += utf8_encode(cp, raw + o);
                        break;
                }
                case 'b':
                        raw[o++] = '\b';
                        break;
                case 'f':
                        raw[o++] = '\f';
                        break;
                case 'n':
                        raw[o++] = '\n';
                        break;
                case 'r':
                        raw[o++] = '\r';
                        break;
                case 't':
                        raw[o++] = '\t';
                        break;
                default: /* \" \\ \/ and anything a lax writer escaped */
                        raw[o++] = p[i];
                }
        }
        raw[o] = '\0';
        return str_sanitize(raw, max_len);
}

const char *json_skip_space(const char *p, const char *end) {
        while (p < end && json_is_space(*p))
                p++;
        return p;
}

/* The end of the string literal that starts at p ('"'), or NULL. memchr() does the walking:
 * strings are most of the bytes of a LocalAPI body. */
static const char *skip_string(const char *p, const char *end) {
        const char *start = p + 1;

        for (p = start; p < end;) {
                const char *q = memchr(p, '"', (size_t) (end - p));
                size_t bs = 0;

                if (!q)
                        return NULL;
                while (q - bs > start && q[-1 - (ptrdiff_t) bs] == '\\')
                        bs++;
                if (bs % 2 == 0)
                        return q + 1;
                p = q + 1;
        }
        return NULL;
}

static bool is_delimiter(char c) {
        return json_is_space(c) || c == ',' || c == ':' || c == ']' || c == '}' || c == '[' ||
                c == '{' || c == '"';
}

const char *json_skip_value(const char *p, const char *end) {
        uint64_t kinds[JSON_SCAN_MAX_DEPTH / 64] = {}; /* bit set: '{' at that depth */
        size_t depth = 0;

        p = json_skip_space(p, end);
        if (p >= end)
                return NULL;

        do {
                char c = *p;

                if (c == '"') {
                        p = skip_string(p, end);
                        if (!p)
                                return NULL;
                } else if (c == '{' || c == '[') {
                        if (depth >= JSON_SCAN_MAX_DEPTH)
                                return NULL;
                        if (c == '{')
                                kinds[depth / 64] |= UINT64_C(1) << (depth % 64);
                        else
                                kinds[depth / 64] &= ~(UINT64_C(1) << (depth % 64));
                        depth++;
                        p++;
                } else if (c == '}' || c == ']') {
                        bool obj;

                        if (depth == 0)
                                return NULL;
                        depth--;
                        obj = kinds[depth / 64] & (UINT64_C(1) << (depth % 64));
                        if (obj != (c == '}'))
                                return NULL;
                        p++;
                } else if (depth > 0 && (c == ',' || c == ':' || json_is_space(c)))
                        p++;
                else {
                        /* A scalar: up to the next delimiter. */
                        const char *s = p;

                        while (p < end && !is_delimiter(*p))
                                p++;
                        if (p == s)
                                return NULL;
                }
        } while (depth > 0 && p < end);

        return depth == 0 ? p : NULL;
}

int json_iter_init(JsonIter *it, const char *p, const char *end, char kind) {
        p = json_skip_space(p, end);
        if (p >= end || *p != kind)
                return -EINVAL;
        *it = (JsonIter){ .p = p + 1, .end = end, .first = true };
        return 0;
}

int json_iter_next_open(JsonIter *it, const char **key, size_t *key_len, const char **v) {
        const char *p = json_skip_space(it->p, it->end), *k;

        if (p >= it->end)
                return -EINVAL;
        if (*p == '}' || *p == ']') {
                it->p = p + 1;
                return 0;
        }
        if (!it->first) {
                if (*p != ',')
                        return -EINVAL;
                p = json_skip_space(p + 1, it->end);
        }
        it->first = false;

        if (key) {
                if (p >= it->end || *p != '"')
                        return -EINVAL;
                k = p;
                p = skip_string(p, it->end);
                if (!p)
                        return -EINVAL;
                *key = k + 1;
                *key_len = (size_t) (p - k - 2);
                p = json_skip_space(p, it->end);
                if (p >= it->end || *p != ':')
                        return -EINVAL;
                p++;
        }

        p = json_skip_space(p, it->end);
        if (p >= it->end)
                return -EINVAL;
        *v = p;
        it->p = p;
        return 1;
}

void json_iter_resume(JsonIter *it, const char *v_end) {
        it->p = v_end;
}

int json_iter_next(JsonIter *it, const char **key, size_t *key_len, const char **v,
                   const char **v_end) {
        const char *e;
        int r;

        r = json_iter_next_open(it, key, key_len, v);
        if (r <= 0)
                return r;
        e = json_skip_value(*v, it->end);
        if (!e)
                return -EINVAL;
        *v_end = e;
        json_iter_resume(it, e);
        return 1;
}

int json_span_string(const char *v, const char *v_end, size_t max_len, char **ret) {
        char *s;

        if (v_end - v < 2 || *v != '"' || v_end[-1] != '"' || v_end - v == 2) {
                *ret = NULL;
                return 0;
        }
        s = json_unescape(v + 1, (size_t) (v_end - v - 2), max_len);
        if (!s)
                return -ENOMEM;
        if (isempty(s)) {
                free(s);
                s = NULL;
        }
        *ret = s;
        return 0;
}

static bool span_eq(const char *v, const char *v_end, const char *lit) {
        return strlen(lit) == (size_t) (v_end - v) && memcmp(v, lit, strlen(lit)) == 0;
}

bool json_span_true(const char *v, const char *v_end) {
        return span_eq(v, v_end, "true");
}

bool json_span_null(const char *v, const char *v_end) {
        return span_eq(v, v_end, "null");
}
