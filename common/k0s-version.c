/* SPDX-License-Identifier: MIT */
/*
 * Parses the version line `k0s version` prints ("v1.35.7+k0s.0") and maps it to the containerd
 * drop-in format k0s expects. Running k0s to get that line is the agent's job, not this module's.
 */

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "k0s-version.h"
#include "macro.h"

static const char *const containerd_format_table[_CONTAINERD_FORMAT_MAX] = {
        [CONTAINERD_FORMAT_V2] = "v2",
        [CONTAINERD_FORMAT_V3] = "v3",
};

const char *containerd_format_to_string(ContainerdFormat f) {
        if (f < 0 || f >= _CONTAINERD_FORMAT_MAX)
                return NULL;
        return containerd_format_table[f];
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool is_ident_char(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                c == '-';
}

/* A semver numeric identifier: digits, no leading zero (except "0" itself), fits an unsigned. */
static int parse_number(const char **p, const char *end, unsigned *ret) {
        const char *s = *p;
        unsigned long long v = 0;

        if (s >= end || *s < '0' || *s > '9')
                return -EINVAL;
        if (*s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9')
                return -EINVAL;
        for (; s < end && *s >= '0' && *s <= '9'; s++) {
                v = v * 10 + (unsigned) (*s - '0');
                if (v > UINT_MAX)
                        return -EINVAL;
        }
        *p = s;
        *ret = (unsigned) v;
        return 0;
}

/* Dot-separated, non-empty identifiers of [0-9A-Za-z-] (semver pre-release and build metadata);
 * stops at the first character that is neither. */
static int parse_identifiers(const char **p, const char *end) {
        const char *s = *p;

        for (;;) {
                const char *start = s;
                while (s < end && is_ident_char(*s))
                        s++;
                if (s == start)
                        return -EINVAL;
                if (s < end && *s == '.') {
                        s++;
                        continue;
                }
                break;
        }
        *p = s;
        return 0;
}

int k0s_version_parse(const char *s, K0sVersion *ret) {
        K0sVersion v = {};
        const char *begin, *end, *p;
        int r;

        if (!s)
                return -EINVAL;

        /* Surrounding whitespace and anything after the first non-blank line are ignored:
         * `k0s version` prints one line, and callers hand us its stdout as is. */
        begin = s;
        while (*begin && is_space(*begin))
                begin++;
        end = strchrnul(begin, '\n');
        while (end > begin && is_space(end[-1]))
                end--;

        p = begin;
        if (p < end && *p == 'v')
                p++;

        r = parse_number(&p, end, &v.major);
        if (r < 0)
                return r;
        if (p >= end || *p != '.')
                return -EINVAL;
        p++;
        r = parse_number(&p, end, &v.minor);
        if (r < 0)
                return r;
        if (p >= end || *p != '.')
                return -EINVAL;
        p++;
        r = parse_number(&p, end, &v.patch);
        if (r < 0)
                return r;

        if (p < end && *p == '-') {
                p++;
                r = parse_identifiers(&p, end);
                if (r < 0)
                        return r;
        }
        if (p < end && *p == '+') {
                p++;
                r = parse_identifiers(&p, end);
                if (r < 0)
                        return r;
        }
        if (p != end)
                return -EINVAL;

        /* Normalised with exactly one leading 'v'; a version that does not fit is not one k0s
         * would print. */
        r = snprintf(v.text, sizeof(v.text), "v%.*s", (int) (end - begin - (*begin == 'v')),
                     begin + (*begin == 'v'));
        if (r < 0 || (size_t) r >= sizeof(v.text))
                return -EINVAL;

        *ret = v;
        return 0;
}

bool k0s_version_at_least(const K0sVersion *v, unsigned major, unsigned minor, unsigned patch) {
        if (!v)
                return false;
        if (v->major != major)
                return v->major > major;
        if (v->minor != minor)
                return v->minor > minor;
        return v->patch >= patch;
}

ContainerdFormat k0s_version_containerd_format(const K0sVersion *v) {
        /* k0s 1.36.1 moved to containerd 2.x and rejects version = 2 drop-ins in its pre-flight
         * check; everything before bundles containerd 1.7 (facts/k0s.md §4). */
        if (!v)
                return _CONTAINERD_FORMAT_INVALID;
        if (v->major > 1 || (v->major == 1 && v->minor >= 36))
                return CONTAINERD_FORMAT_V3;
        return CONTAINERD_FORMAT_V2;
}
