/* SPDX-License-Identifier: MIT */
/*
 * doctor's pure rules: fwmark scans of iptables-save and nft JSON, resolv.conf, Calico MTU
 * overhead, YAML lookups, kubeconfig/token server URLs and systemd unit lines. Strings in,
 * findings out; nothing here opens a file, runs a program or reads a clock.
 */

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "json-util.h"
#include "doctor-rules.h"
#include "util.h"

int doctor_parse_mark(const char *s, uint32_t *ret) {
        char *end;
        if (isempty(s) || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || *end || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* "V/M" or "V" (no mask: every bit). */
static bool mark_operand(const char *tok, uint32_t *value, uint32_t *mask) {
        char buf[64];
        if (strlen(tok) >= sizeof(buf))
                return false;
        strcpy(buf, tok);
        char *slash = strchr(buf, '/');
        if (slash)
                *slash = 0;
        if (doctor_parse_mark(buf, value) < 0)
                return false;
        *mask = UINT32_MAX;
        return !slash || doctor_parse_mark(slash + 1, mask) >= 0;
}

/* The bits one iptables-save rule line touches through its mark options. tailscale's own
 * CONNMARK save/restore (nfmask/ctmask exactly 0xff0000, tailscale >= 1.96 in mangle
 * PREROUTING/OUTPUT, util/linuxfw/iptables_runner.go) is not counted. */
static uint32_t iptables_rule_touched(char *const *w) {
        uint32_t touched = 0, v, m;
        bool ts_connmark = false;
        for (size_t i = 0; w[i]; i++) {
                const char *o = w[i], *a = w[i + 1];
                if (!a)
                        break;
                if (streq(o, "--nfmask") || streq(o, "--ctmask")) {
                        if (doctor_parse_mark(a, &m) >= 0 && m == DOCTOR_TS_MARK_MASK)
                                ts_connmark = true;
                        else if (doctor_parse_mark(a, &m) >= 0)
                                touched |= m;
                } else if (streq(o, "--set-xmark") || streq(o, "--set-mark")) {
                        if (mark_operand(a, &v, &m))
                                touched |= m | v;
                } else if (streq(o, "--mark")) {
                        if (mark_operand(a, &v, &m))
                                touched |= m;
                } else if (streq(o, "--or-mark") || streq(o, "--xor-mark")) {
                        if (doctor_parse_mark(a, &v) >= 0)
                                touched |= v;
                } else if (streq(o, "--and-mark")) {
                        if (doctor_parse_mark(a, &v) >= 0)
                                touched |= ~v;
                }
        }
        return ts_connmark ? touched & ~DOCTOR_TS_MARK_MASK : touched;
}

static int split_words(const char *line, char ***ret) {
        _cleanup_strv_free_ char **w = calloc(1, sizeof(char *));
        if (!w)
                return -ENOMEM;
        const char *p = line;
        for (;;) {
                p += strspn(p, " \t");
                if (!*p)
                        break;
                StrBuf b = { 0 };
                char quote = 0;
                for (; *p && (quote || (*p != ' ' && *p != '\t')); p++) {
                        if (*p == quote) {
                                quote = 0;
                                continue;
                        }
                        if (!quote && (*p == '"' || *p == '\'')) {
                                quote = *p;
                                continue;
                        }
                        if (strbuf_append_n(&b, p, 1) < 0) {
                                strbuf_done(&b);
                                return -ENOMEM;
                        }
                }
                if (strv_push(&w, b.s ?: strdup("")) < 0) {
                        strbuf_done(&b);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(w);
        return 0;
}

int doctor_scan_iptables_save(const char *text, char ***ret) {
        _cleanup_strv_free_ char **found = calloc(1, sizeof(char *));
        char table[64] = "?";
        if (!found)
                return -ENOMEM;
        for (const char *p = text; p && *p;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t) (nl - p) : strlen(p);
                _cleanup_free_ char *line = strndup(p, n);
                p = nl ? nl + 1 : NULL;
                if (!line)
                        return -ENOMEM;
                if (line[0] == '*') {
                        snprintf(table, sizeof(table), "%s", line + 1);
                        continue;
                }
                if (!startswith(line, "-A "))
                        continue;
                _cleanup_strv_free_ char **w = NULL;
                if (split_words(line, &w) < 0)
                        return -ENOMEM;
                if (strv_length(w) < 2 || startswith(w[1], "ts-"))
                        continue;
                uint32_t t = iptables_rule_touched(w);
                if (!(t & DOCTOR_TS_MARK_MASK))
                        continue;
                if (strv_push(&found, strdup_printf("iptables %s %s: %s", table, w[1], line)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(found);
        return 0;
}

static bool is_mark_key(const cJSON *e) {
        const cJSON *k = NULL;
        if (cJSON_IsObject(e)) {
                const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "meta");
                const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "ct");
                k = cJSON_GetObjectItemCaseSensitive(m ?: c, "key");
        }
        return cJSON_IsString(k) && streq(k->valuestring, "mark");
}

/* {"&": [mark, N]} / {"|": [...]} / {"^": [...]} operands as nft -j prints them. */
static const cJSON *binop(const cJSON *e, const char *op, const cJSON **ret_right) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, op);
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2)
                return NULL;
        *ret_right = cJSON_GetArrayItem(a, 1);
        return cJSON_GetArrayItem(a, 0);
}

/* Bits a `mark set VALUE` statement may change. */
static uint32_t nft_set_touched(const cJSON *value) {
        const cJSON *l, *r;
        if (cJSON_IsNumber(value))
                return UINT32_MAX;
        if ((l = binop(value, "|", &r)) && cJSON_IsNumber(r)) {
                const cJSON *l2, *r2;
                uint32_t or_bits = (uint32_t) r->valuedouble;
                if (is_mark_key(l))
                        return or_bits;
                if ((l2 = binop(l, "&", &r2)) && is_mark_key(l2) && cJSON_IsNumber(r2))
                        return ~(uint32_t) r2->valuedouble | or_bits;
        }
        if ((l = binop(value, "&", &r)) && is_mark_key(l) && cJSON_IsNumber(r))
                return ~(uint32_t) r->valuedouble;
        if ((l = binop(value, "^", &r)) && is_mark_key(l) && cJSON_IsNumber(r))
                return (uint32_t) r->valuedouble;
        return UINT32_MAX;
}

static uint32_t nft_expr_touched(const cJSON *e) {
        const cJSON *mg = cJSON_GetObjectItemCaseSensitive(e, "mangle");
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(e, "match");
        if (mg && is_mark_key(cJSON_GetObjectItemCaseSensitive(mg, "key")))
                return nft_set_touched(cJSON_GetObjectItemCaseSensitive(mg, "value"));
        if (mt) {
                const cJSON *left = cJSON_GetObjectItemCaseSensitive(mt, "left"), *r;
                const cJSON *l = binop(left, "&", &r);
                if (is_mark_key(left))
                        return UINT32_MAX;
                if (l && is_mark_key(l) && cJSON_IsNumber(r))
                        return (uint32_t) r->valuedouble;
        }
        return 0;
}

static int nft_rule_finding(const cJSON *rule, char ***found) {
        const cJSON *chain = cJSON_GetObjectItemCaseSensitive(rule, "chain");
        const cJSON *table = cJSON_GetObjectItemCaseSensitive(rule, "table");
        const cJSON *family = cJSON_GetObjectItemCaseSensitive(rule, "family");
        const cJSON *handle = cJSON_GetObjectItemCaseSensitive(rule, "handle");
        const cJSON *expr = cJSON_GetObjectItemCaseSensitive(rule, "expr"), *e;
        uint32_t touched = 0;

        if (!cJSON_IsString(chain) || startswith(chain->valuestring, "ts-"))
                return 0;
        cJSON_ArrayForEach(e, expr) touched |= nft_expr_touched(e);
        if (!(touched & DOCTOR_TS_MARK_MASK))
                return 0;
        _cleanup_free_ char *text = cJSON_PrintUnformatted(expr);
        return strv_push(
                found,
                strdup_printf("nft %s %s %s handle %.0f: %s",
                              cJSON_IsString(family) ? family->valuestring : "?",
                              cJSON_IsString(table) ? table->valuestring : "?", chain->valuestring,
                              cJSON_IsNumber(handle) ? handle->valuedouble : 0, text ?: "?"));
}

int doctor_scan_nft_json(const char *json, size_t len, char ***ret) {
        _cleanup_(cJSON_Deletep) cJSON *root = cJSON_ParseWithLength(json, len);
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "nftables"), *i;
        if (!cJSON_IsArray(items))
                return -EINVAL;
        _cleanup_strv_free_ char **found = calloc(1, sizeof(char *));
        if (!found)
                return -ENOMEM;
        cJSON_ArrayForEach(i, items) {
                const cJSON *rule = cJSON_GetObjectItemCaseSensitive(i, "rule");
                if (cJSON_IsObject(rule) && nft_rule_finding(rule, &found) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(found);
        return 0;
}

int doctor_resolv_conf_parse(const char *text, char ***ret_nameservers, char ***ret_search) {
        _cleanup_strv_free_ char **ns = calloc(1, sizeof(char *));
        _cleanup_strv_free_ char **search = calloc(1, sizeof(char *));
        if (!ns || !search)
                return -ENOMEM;
        for (const char *p = text; p && *p;) {
                const char *nl = strchr(p, '\n');
                _cleanup_free_ char *line = strndup(p, nl ? (size_t) (nl - p) : strlen(p));
                _cleanup_strv_free_ char **w = NULL;
                p = nl ? nl + 1 : NULL;
                if (!line || split_words(line, &w) < 0)
                        return -ENOMEM;
                if (!w[0] || w[0][0] == '#' || w[0][0] == ';')
                        continue;
                if (streq(w[0], "nameserver") && w[1] && strv_extend(&ns, w[1]) < 0)
                        return -ENOMEM;
                if (streq(w[0], "search") || streq(w[0], "domain"))
                        for (size_t i = 1; w[i]; i++)
                                if (strv_extend(&search, w[i]) < 0)
                                        return -ENOMEM;
        }
        *ret_nameservers = TAKE_PTR(ns);
        *ret_search = TAKE_PTR(search);
        return 0;
}

bool doctor_nameserver_is_bad(const char *ns) {
        struct in6_addr a6;
        if (streq(ns, "100.100.100.100") || startswith(ns, "127."))
                return true;
        if (inet_pton(AF_INET6, ns, &a6) == 1) {
                struct in6_addr svc;
                inet_pton(AF_INET6, "fd7a:115c:a1e0::53", &svc);
                return IN6_IS_ADDR_LOOPBACK(&a6) || memcmp(&a6, &svc, sizeof(a6)) == 0;
        }
        return false;
}

int doctor_calico_overhead(const char *mode) {
        /* k0s pkg/apis/k0s/v1beta1/calico.go: mode vxlan (default), ipip, bird; VXLAN adds
         * 50 bytes (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14), IPIP 20, WireGuard
         * 60 (Calico docs "Configure MTU"). */
        if (!mode || streq(mode, "vxlan"))
                return 50;
        if (streq(mode, "ipip"))
                return 20;
        if (streq(mode, "wireguard"))
                return 60;
        if (streq(mode, "bird"))
                return 0;
        return -EINVAL;
}

int doctor_yaml_load(const char *text, size_t len, yaml_document_t *ret) {
        yaml_parser_t p;
        if (!yaml_parser_initialize(&p))
                return -ENOMEM;
        yaml_parser_set_input_string(&p, (const unsigned char *) text, len);
        int ok = yaml_parser_load(&p, ret);
        yaml_parser_delete(&p);
        if (!ok)
                return -EINVAL;
        if (!yaml_document_get_root_node(ret)) {
                yaml_document_delete(ret);
                return -ENODATA;
        }
        return 0;
}

static yaml_node_t *yaml_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key,
                                 size_t keylen) {
        if (!map || map->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);
                if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == keylen &&
                    memcmp(k->data.scalar.value, key, keylen) == 0)
                        return yaml_document_get_node(doc, p->value);
        }
        return NULL;
}

yaml_node_t *doctor_yaml_get(yaml_document_t *doc, const char *path) {
        yaml_node_t *n = yaml_document_get_root_node(doc);
        while (n && *path) {
                size_t k = strcspn(path, ".");
                n = yaml_map_get(doc, n, path, k);
                path += k + (path[k] == '.');
        }
        return n;
}

const char *doctor_yaml_scalar(const yaml_node_t *node) {
        return node && node->type == YAML_SCALAR_NODE ? (const char *) node->data.scalar.value
                                                      : NULL;
}

unsigned doctor_yaml_line(const yaml_node_t *node) {
        return node ? (unsigned) node->start_mark.line + 1 : 0;
}

int doctor_kubeconfig_server(const char *text, char **ret) {
        for (const char *p = text; p && *p;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t) (nl - p) : strlen(p);
                size_t skip = strspn(p, " \t-");
                const char *s = p + skip;
                p = nl ? nl + 1 : NULL;
                if (skip >= n || !startswith(s, "server:"))
                        continue;
                s += strlen("server:");
                s += strspn(s, " \t\"'");
                size_t k = strcspn(s, " \t\"'\r\n");
                if (k == 0)
                        continue;
                *ret = strndup(s, k);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

static int base64_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len) {
        static const char tab[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        _cleanup_free_ unsigned char *out = malloc(len / 4 * 3 + 4);
        uint32_t acc = 0;
        size_t n = 0, bits = 0;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                const char *c = s[i] ? strchr(tab, s[i]) : NULL;
                if (s[i] == '=' || isspace((unsigned char) s[i]))
                        continue;
                if (!c)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t) (c - tab);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (unsigned char) (acc >> bits);
                }
        }
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

int doctor_token_server(const char *token, size_t len, char **ret) {
        _cleanup_free_ unsigned char *gz = NULL;
        size_t gz_len;
        int r = base64_decode(token, len, &gz, &gz_len);
        if (r < 0)
                return r;
        /* A kubeconfig is a few KiB; 1 MiB bounds a hostile token. */
        size_t cap = 1024 * 1024;
        _cleanup_free_ char *out = malloc(cap + 1);
        if (!out)
                return -ENOMEM;
        z_stream z = { .next_in = gz,
                       .avail_in = (uInt) gz_len,
                       .next_out = (Bytef *) out,
                       .avail_out = (uInt) cap };
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
                return -ENOMEM;
        r = inflate(&z, Z_FINISH);
        size_t n = cap - z.avail_out;
        inflateEnd(&z);
        if (r != Z_STREAM_END)
                return -EINVAL;
        out[n] = 0;
        return doctor_kubeconfig_server(out, ret);
}

int doctor_url_host_port(const char *url, char **ret_host, unsigned *ret_port) {
        const char *s = strstr(url, "://");
        s = s ? s + 3 : url;
        size_t n = strcspn(s, "/?#");
        _cleanup_free_ char *hp = strndup(s, n);
        unsigned port = 0;
        char *host;
        if (!hp)
                return -ENOMEM;
        if (hp[0] == '[') {
                char *e = strchr(hp, ']');
                if (!e)
                        return -EINVAL;
                host = strndup(hp + 1, (size_t) (e - hp - 1));
                if (e[1] == ':' && safe_atou(e + 2, &port) < 0)
                        port = 0;
        } else {
                char *c = strrchr(hp, ':');
                if (c) {
                        if (safe_atou(c + 1, &port) < 0)
                                port = 0;
                        *c = 0;
                }
                host = strdup(hp);
        }
        if (!host)
                return -ENOMEM;
        if (!*host) {
                free(host);
                return -EINVAL;
        }
        *ret_host = host;
        *ret_port = port;
        return 0;
}

static int unit_line(const char *line, char ***exec, char ***env) {
        if (startswith(line, "ExecStart=")) {
                const char *v = line + strlen("ExecStart=");
                v += strspn(v, "-@:+!"); /* systemd's ExecStart prefixes */
                strv_free(*exec);
                *exec = NULL;
                return split_words(v, exec);
        }
        if (startswith(line, "Environment=")) {
                _cleanup_strv_free_ char **w = NULL;
                int r = split_words(line + strlen("Environment="), &w);
                for (size_t i = 0; r >= 0 && w[i]; i++)
                        r = strv_extend(env, w[i]);
                return r;
        }
        return 0;
}

int doctor_unit_parse(const char *text, char ***ret_exec, char ***ret_env) {
        _cleanup_strv_free_ char **exec = NULL;
        _cleanup_strv_free_ char **env = calloc(1, sizeof(char *));
        if (!env)
                return -ENOMEM;
        for (const char *p = text; p && *p;) {
                const char *nl = strchr(p, '\n');
                _cleanup_free_ char *line = strndup(p, nl ? (size_t) (nl - p) : strlen(p));
                p = nl ? nl + 1 : NULL;
                if (!line)
                        return -ENOMEM;
                int r = unit_line(line + strspn(line, " \t"), &exec, &env);
                if (r < 0)
                        return r;
        }
        if (!exec && !(exec = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret_exec = TAKE_PTR(exec);
        *ret_env = TAKE_PTR(env);
        return 0;
}

bool doctor_address_in_cidr(const char *a, const char *cidr) {
        char net[INET6_ADDRSTRLEN];
        const char *slash = strchr(cidr, '/');
        unsigned plen;
        unsigned char x[16], y[16];
        if (!slash || (size_t) (slash - cidr) >= sizeof(net) || safe_atou(slash + 1, &plen) < 0)
                return false;
        memcpy(net, cidr, (size_t) (slash - cidr));
        net[slash - cidr] = 0;
        int fam = strchr(net, ':') ? AF_INET6 : AF_INET;
        unsigned bytes = fam == AF_INET ? 4 : 16;
        if (plen > bytes * 8 || inet_pton(fam, net, y) != 1 || inet_pton(fam, a, x) != 1)
                return false;
        for (unsigned i = 0; i < plen; i++) {
                unsigned char bit = (unsigned char) (0x80 >> (i % 8));
                if ((x[i / 8] & bit) != (y[i / 8] & bit))
                        return false;
        }
        return true;
}
