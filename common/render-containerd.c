/* SPDX-License-Identifier: MIT */
/*
 * Text of the containerd registry drop-in (v2 or v3 layout) and of the per-registry hosts.toml
 * files (facts/containerd.md §3). Pure string work: deciding where the files go, writing them and
 * removing stale ones belong to the agent.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "util.h"
#include "render-containerd.h"

/* Appends toml_quote(s). */
static int buf_append_quoted(StrBuf *b, const char *s) {
        _cleanup_free_ char *q = NULL;
        int r;

        r = toml_quote(s, &q);
        if (r < 0)
                return r;
        return strbuf_append(b, q);
}

/* Length of the UTF-8 sequence starting at s (1-4), or 0 if it is not valid UTF-8 (overlong
 * forms, surrogates and code points above U+10FFFF included). TOML files must be valid UTF-8. */
static size_t utf8_sequence_len(const unsigned char *s) {
        unsigned char c = s[0];

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                return (s[1] & 0xc0) == 0x80 ? 2 : 0;
        if (c >= 0xe0 && c <= 0xef) {
                if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
                        return 0;
                if (c == 0xe0 && s[1] < 0xa0) /* overlong */
                        return 0;
                if (c == 0xed && s[1] >= 0xa0) /* UTF-16 surrogate */
                        return 0;
                return 3;
        }
        if (c >= 0xf0 && c <= 0xf4) {
                if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
                        return 0;
                if (c == 0xf0 && s[1] < 0x90) /* overlong */
                        return 0;
                if (c == 0xf4 && s[1] >= 0x90) /* above U+10FFFF */
                        return 0;
                return 4;
        }
        return 0;
}

int toml_quote(const char *s, char **ret) {
        _cleanup_(strbuf_done) StrBuf b = {};
        const unsigned char *p;
        int r;

        if (!s)
                return -EINVAL;

        r = strbuf_append(&b, "\"");
        if (r < 0)
                return r;
        for (p = (const unsigned char *) s; *p;) {
                size_t n = utf8_sequence_len(p);
                char esc[8];

                if (n == 0)
                        return -EINVAL;
                if (*p == '"' || *p == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) *p;
                        r = strbuf_append_n(&b, esc, 2);
                } else if (*p < 0x20 || *p == 0x7f) {
                        /* TOML forbids raw control characters in basic strings (tab is allowed,
                         * but one uniform escape is simpler to check). */
                        (void) snprintf(esc, sizeof(esc), "\\u%04X", *p);
                        r = strbuf_append(&b, esc);
                } else
                        r = strbuf_append_n(&b, (const char *) p, n);
                if (r < 0)
                        return r;
                p += n;
        }
        r = strbuf_append(&b, "\"");
        if (r < 0)
                return r;

        *ret = TAKE_PTR(b.s);
        return 0;
}

int render_containerd_dropin(ContainerdFormat fmt, const char *certs_dir, char **ret) {
        _cleanup_(strbuf_done) StrBuf b = {};
        const char *head = NULL;
        int r;

        if (!certs_dir)
                return -EINVAL;

        /* containerd 1.x only reads the grpc.v1.cri section and ignores the other; k0s >= 1.36
         * refuses any file with version != 3 or a grpc.v1.cri table. So one file cannot serve
         * both (facts/containerd.md §2.1, §3). No blank lines and nothing else: k0s <= 1.35
         * applies this file as a merge patch onto its own CRI config. */
        switch (fmt) {
        case CONTAINERD_FORMAT_V2:
                head = "version = 2\n"
                       "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n";
                break;
        case CONTAINERD_FORMAT_V3:
                head = "version = 3\n"
                       "[plugins.\"io.containerd.cri.v1.images\".registry]\n";
                break;
        case _CONTAINERD_FORMAT_MAX:
        case _CONTAINERD_FORMAT_INVALID:
                break;
        }
        if (!head)
                return -EINVAL;

        r = strbuf_append(&b, RENDER_CONTAINERD_MARKER "\n");
        if (r >= 0)
                r = strbuf_append(&b, head);
        if (r >= 0)
                r = strbuf_append(&b, "config_path = ");
        if (r >= 0)
                r = buf_append_quoted(&b, certs_dir);
        if (r >= 0)
                r = strbuf_append(&b, "\n");
        if (r < 0)
                return r;

        *ret = TAKE_PTR(b.s);
        return 0;
}

static bool url_is_https(const char *url) {
        return strncasecmp(url, "https://", strlen("https://")) == 0;
}

static bool url_has_brackets(const char *url) {
        return strpbrk(url, "[]");
}

/* The keys of one host entry: the first prefixed with `first_sep`, the others with `sep` (a
 * newline plus indent for a table; " " and ", " for an inline table). skip_verify is never
 * written for http://: it does nothing on containerd 1.6.20 and makes >= 1.6.25/1.7.7/2.x try
 * HTTPS first (facts/containerd.md §1.5). */
static int append_host_keys(StrBuf *b, const RegistryEndpoint *e, const char *first_sep,
                            const char *sep) {
        int r;

        r = strbuf_append(b, first_sep);
        if (r >= 0)
                r = strbuf_append(b, "capabilities = [\"pull\", \"resolve\"]");
        if (r >= 0 && e->skip_verify && url_is_https(e->url)) {
                r = strbuf_append(b, sep);
                if (r >= 0)
                        r = strbuf_append(b, "skip_verify = true");
        }
        if (r >= 0 && e->ca) {
                r = strbuf_append(b, sep);
                if (r >= 0)
                        r = strbuf_append(b, "ca = ");
                if (r >= 0)
                        r = buf_append_quoted(b, e->ca);
        }
        return r;
}

int render_hosts_toml(const Registry *reg, const size_t *order, char **ret) {
        _cleanup_(strbuf_done) StrBuf b = {};
        _cleanup_free_ bool *seen = NULL;
        bool brackets = false;
        const RegistryEndpoint *first;
        int r;

        if (!reg || reg->n_endpoints == 0 || !reg->endpoints)
                return -EINVAL;

        if (order) {
                seen = calloc(reg->n_endpoints, sizeof(bool));
                if (!seen)
                        return -ENOMEM;
                for (size_t i = 0; i < reg->n_endpoints; i++) {
                        if (order[i] >= reg->n_endpoints || seen[order[i]])
                                return -EINVAL;
                        seen[order[i]] = true;
                }
        }
        for (size_t i = 0; i < reg->n_endpoints; i++) {
                if (!reg->endpoints[i].url)
                        return -EINVAL;
                if (url_has_brackets(reg->endpoints[i].url))
                        brackets = true;
        }

        first = &reg->endpoints[order ? order[0] : 0];
        r = strbuf_append(&b, RENDER_CONTAINERD_MARKER "\nserver = ");
        if (r >= 0)
                r = buf_append_quoted(&b, first->url);
        if (r >= 0)
                r = strbuf_append(&b, "\n");
        if (r < 0)
                return r;

        /* containerd 1.6/1.7 read hosts.toml with go-toml v1, which refuses a table header whose
         * quoted key holds ']' ("table key cannot contain ']'", containerd#10055), so
         * [host."http://[fd7a::5]:5001"] makes the whole file fall back to https://<name>. When
         * any endpoint is an IPv6 literal every endpoint goes into one [host] table as an
         * inline table under its quoted URL key: plain TOML that 2.x reads too, and containerd
         * 1.6.20 parses it and still tries the hosts in file order (tests/e2e/containerd-pull.sh
         * pulls through such a file with a dead IPv6 endpoint first). Without IPv6 the usual
         * [host."URL"] tables are written, as containerd's docs show them. */
        if (brackets) {
                r = strbuf_append(&b, "\n[host]\n");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < reg->n_endpoints; i++) {
                const RegistryEndpoint *e = &reg->endpoints[order ? order[i] : i];

                if (brackets) {
                        r = strbuf_append(&b, "  ");
                        if (r >= 0)
                                r = buf_append_quoted(&b, e->url);
                        if (r >= 0)
                                r = strbuf_append(&b, " = {");
                        if (r >= 0)
                                r = append_host_keys(&b, e, " ", ", ");
                        if (r >= 0)
                                r = strbuf_append(&b, " }\n");
                } else {
                        r = strbuf_append(&b, "\n[host.");
                        if (r >= 0)
                                r = buf_append_quoted(&b, e->url);
                        if (r >= 0)
                                r = strbuf_append(&b, "]");
                        if (r >= 0)
                                r = append_host_keys(&b, e, "\n  ", "\n  ");
                        if (r >= 0)
                                r = strbuf_append(&b, "\n");
                }
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(b.s);
        return 0;
}
