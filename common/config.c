/* SPDX-License-Identifier: MIT */
/*
 * The agent's configuration file: YAML bytes -> a small node tree (libyaml event API) -> the
 * plain AgentConfig struct (table-driven, one parser per value type) -> cross-field validation.
 * Owns defaults, durations and their bounds, registry-name grammar, every "FILE:LINE:COLUMN:
 * message" error, the file's ownership rule and config_lint()'s warnings. Does not decide
 * anything from the values (reconcile does) and never logs.
 */

#include <arpa/inet.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "atomic-file.h"
#include "config.h"
#include "facts.h"
#include "k0s-version.h"
#include "util.h"

/* Far more than any real config needs; bounds recursion on hostile input. */
#define NODE_DEPTH_MAX 64U

static const char *const k0s_role_table[_K0S_ROLE_MAX] = {
        [K0S_ROLE_WORKER] = "worker",
        [K0S_ROLE_CONTROLLER] = "controller",
        [K0S_ROLE_CONTROLLER_WORKER] = "controller+worker",
        [K0S_ROLE_SINGLE] = "single",
};

const char *k0s_role_to_string(K0sRole r) {
        if (r < 0 || r >= _K0S_ROLE_MAX)
                return NULL;
        return k0s_role_table[r];
}

K0sRole k0s_role_from_string(const char *s) {
        if (!s)
                return _K0S_ROLE_INVALID;
        for (K0sRole r = 0; r < _K0S_ROLE_MAX; r++)
                if (streq(k0s_role_table[r], s))
                        return r;
        return _K0S_ROLE_INVALID;
}

bool k0s_role_is_controller(K0sRole r) {
        return r == K0S_ROLE_CONTROLLER || r == K0S_ROLE_CONTROLLER_WORKER || r == K0S_ROLE_SINGLE;
}

bool k0s_role_runs_kubelet(K0sRole r) {
        return r == K0S_ROLE_WORKER || r == K0S_ROLE_CONTROLLER_WORKER || r == K0S_ROLE_SINGLE;
}

static const char *const clock_wait_sync_table[_CLOCK_WAIT_SYNC_MAX] = {
        [CLOCK_WAIT_SYNC_AUTO] = "auto",
        [CLOCK_WAIT_SYNC_YES] = "true",
        [CLOCK_WAIT_SYNC_NO] = "false",
};

const char *clock_wait_sync_to_string(ClockWaitSync w) {
        if (w < 0 || w >= _CLOCK_WAIT_SYNC_MAX)
                return NULL;
        return clock_wait_sync_table[w];
}

ClockWaitSync clock_wait_sync_from_string(const char *s) {
        if (!s)
                return _CLOCK_WAIT_SYNC_INVALID;
        for (ClockWaitSync w = 0; w < _CLOCK_WAIT_SYNC_MAX; w++)
                if (streq(clock_wait_sync_table[w], s))
                        return w;
        return _CLOCK_WAIT_SYNC_INVALID;
}

/* ---- durations ------------------------------------------------------------------------- */

static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        /* "ms" and "us" before "m" and "s": the longest suffix wins. */
        { "ms", USEC_PER_MSEC },    { "us", 1 },           { "h", 3600 * USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC }, { "s", USEC_PER_SEC },
};

/* parse_duration() with a reason for the error message. */
static int parse_duration_reason(const char *s, uint64_t *ret_usec, const char **ret_reason) {
        uint64_t total = 0;
        const char *p = s;
        bool all_digits = true;

        if (isempty(s)) {
                *ret_reason = "empty";
                return -EINVAL;
        }
        if (*s == '-') {
                *ret_reason = "negative durations are not allowed";
                return -EINVAL;
        }
        for (const char *q = s; *q; q++)
                if (*q < '0' || *q > '9')
                        all_digits = false;
        if (all_digits) {
                /* A bare number is refused so "settle: 10" cannot silently mean 10us or 10s;
                 * zero is zero in every unit. */
                for (const char *q = s; *q; q++)
                        if (*q != '0') {
                                *ret_reason = "missing unit (e.g. 10s)";
                                return -EINVAL;
                        }
                *ret_usec = 0;
                return 0;
        }

        while (*p) {
                uint64_t n = 0, mult = 0;

                if (*p < '0' || *p > '9') {
                        *ret_reason = "expected a number";
                        return -EINVAL;
                }
                for (; *p >= '0' && *p <= '9'; p++) {
                        uint64_t d = (uint64_t) (*p - '0');

                        if (n > (UINT64_MAX - d) / 10) {
                                *ret_reason = "out of range";
                                return -ERANGE;
                        }
                        n = n * 10 + d;
                }
                for (size_t i = 0; i < ELEMENTSOF(duration_units); i++)
                        if (startswith(p, duration_units[i].suffix)) {
                                mult = duration_units[i].usec;
                                p += strlen(duration_units[i].suffix);
                                break;
                        }
                if (mult == 0) {
                        *ret_reason = *p ? "unknown unit (use h, m, s, ms or us)"
                                         : "missing unit (e.g. 10s)";
                        return -EINVAL;
                }
                if (n > UINT64_MAX / mult || total > UINT64_MAX - n * mult) {
                        *ret_reason = "out of range";
                        return -ERANGE;
                }
                total += n * mult;
        }

        *ret_usec = total;
        return 0;
}

int parse_duration(const char *s, uint64_t *ret_usec) {
        const char *reason;
        uint64_t v;
        int r;

        r = parse_duration_reason(s, &v, &reason);
        if (r < 0)
                return r;
        *ret_usec = v;
        return 0;
}

const char *format_duration(char *buf, size_t n, uint64_t usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "h", 3600 * USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC },
                { "s", USEC_PER_SEC },
                { "ms", USEC_PER_MSEC },
                { "us", 1 },
        };
        size_t used = 0;

        if (!buf || n == 0)
                return NULL;
        if (usec == 0) {
                snprintf(buf, n, "0");
                return buf;
        }

        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(units) && usec > 0; i++) {
                uint64_t k = usec / units[i].usec;
                int w;

                if (k == 0)
                        continue;
                usec -= k * units[i].usec;
                w = snprintf(buf + used, n - used, "%" PRIu64 "%s", k, units[i].suffix);
                if (w < 0 || (size_t) w >= n - used)
                        break; /* truncated, still NUL-terminated */
                used += (size_t) w;
        }
        return buf;
}

/* ---- registry names -------------------------------------------------------------------- */

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_alnum(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* 1-65535, digits only, no sign, no leading zero (the name must match image references
 * byte for byte, and containerd's directory lookup does not normalise ports). */
static bool port_is_valid(const char *s, size_t n) {
        unsigned v = 0;

        if (n == 0 || n > 5 || s[0] == '0')
                return false;
        for (size_t i = 0; i < n; i++) {
                if (!is_digit(s[i]))
                        return false;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        return v >= 1 && v <= 65535;
}

/* DNS name: labels of [A-Za-z0-9-] (1-63), not starting or ending with '-'. A last label of
 * only digits is not a host name (RFC 3696 §2), so such a name must be a dotted quad. */
static bool host_is_valid(const char *s, size_t n) {
        char ip[INET_ADDRSTRLEN];
        size_t label = 0;
        bool label_numeric = true;

        if (n == 0)
                return false;
        for (size_t i = 0; i <= n; i++) {
                char c = i < n ? s[i] : '.';

                if (c == '.') {
                        if (label == 0 || label > 63 || s[i - 1] == '-')
                                return false;
                        if (i == n)
                                break;
                        label = 0;
                        label_numeric = true;
                        continue;
                }
                if (!is_alnum(c) && c != '-')
                        return false;
                if (label == 0 && c == '-')
                        return false;
                if (!is_digit(c))
                        label_numeric = false;
                label++;
        }
        if (!label_numeric)
                return true;

        if (n >= sizeof(ip))
                return false;
        memcpy(ip, s, n);
        ip[n] = 0;
        struct in_addr a;
        return inet_pton(AF_INET, ip, &a) == 1;
}

bool registry_name_is_valid(const char *name) {
        const char *colon;
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > 253)
                return false;

        if (name[0] == '[') {
                char ip[INET6_ADDRSTRLEN];
                struct in6_addr a;
                const char *end = strchr(name, ']');
                size_t len;

                if (!end)
                        return false;
                len = (size_t) (end - name - 1);
                if (len == 0 || len >= sizeof(ip))
                        return false;
                memcpy(ip, name + 1, len);
                ip[len] = 0;
                if (inet_pton(AF_INET6, ip, &a) != 1)
                        return false;
                if (end[1] == 0)
                        return true;
                return end[1] == ':' && port_is_valid(end + 2, strlen(end + 2));
        }

        colon = strchr(name, ':');
        if (!colon)
                return host_is_valid(name, n);
        return host_is_valid(name, (size_t) (colon - name)) &&
                port_is_valid(colon + 1, strlen(colon + 1));
}

/* ---- registries ------------------------------------------------------------------------ */

static void endpoint_done(RegistryEndpoint *e) {
        free(e->url);
        free(e->peer);
        free(e->scheme);
        free(e->ca);
        *e = (RegistryEndpoint){};
}

void registry_done(Registry *r) {
        if (!r)
                return;
        free(r->name);
        for (size_t i = 0; i < r->n_endpoints; i++)
                endpoint_done(&r->endpoints[i]);
        free(r->endpoints);
        *r = (Registry){};
}

/* ---- defaults -------------------------------------------------------------------------- */

AgentConfig *config_free(AgentConfig *c) {
        if (!c)
                return NULL;
        free(c->path);
        free(c->interface);
        free(c->tailscale_socket);
        free(c->k0s_binary);
        free(c->k0s_version);
        free(c->k0s_token_file);
        free(c->k0s_base_config);
        free(c->k0s_config);
        strv_free(c->k0s_args);
        strv_free(c->k0s_env);
        free(c->k0s_status_socket);
        free(c->containerd_dropin);
        free(c->containerd_certs_dir);
        for (size_t i = 0; i < c->n_registries; i++)
                registry_done(&c->registries[i]);
        free(c->registries);
        free(c->calico_mark_mask);
        free(c->calico_nftables_mark_mask);
        free(c->k0s_accept_address);
        free(c->metrics_textfile);
        free(c->doctor_backup_dir);
        free(c->state_dir);
        free(c->persist_dir);
        free(c);
        return NULL;
}

int config_new_default(AgentConfig **ret) {
        _cleanup_(config_freep) AgentConfig *c = NULL;

        c = calloc(1, sizeof(AgentConfig));
        if (!c)
                return -ENOMEM;

        c->role = K0S_ROLE_WORKER;
        c->require_running = true;
        c->peer_refresh_usec = 60 * USEC_PER_SEC;
        c->calico_mtu = 1230;
        c->health_interval_usec = 30 * USEC_PER_SEC;
        c->health_timeout_usec = 5 * USEC_PER_SEC;
        c->settle_usec = 10 * USEC_PER_SEC;
        c->restart_backoff_min_usec = 1 * USEC_PER_SEC;
        c->restart_backoff_max_usec = 60 * USEC_PER_SEC;
        c->stable_usec = 120 * USEC_PER_SEC;
        c->stop_timeout_usec = 90 * USEC_PER_SEC;

        c->interface = strdup("tailscale0");
        c->tailscale_socket = strdup("/run/tailscale/tailscaled.sock");
        c->k0s_binary = strdup("/usr/local/bin/k0s");
        c->k0s_version = strdup("auto");
        c->k0s_token_file = strdup("/etc/k0s/k0stoken");
        c->k0s_base_config = strdup("/etc/k0s/k0s.yaml");
        c->k0s_config = strdup("/etc/k0s/k0s-tsagent.yaml");
        c->k0s_args = calloc(1, sizeof(char *));
        c->k0s_env = calloc(1, sizeof(char *));
        c->k0s_status_socket = strdup("/run/k0s/status.sock");
        c->containerd_dropin = strdup("/etc/k0s/containerd.d/registry.toml");
        c->containerd_certs_dir = strdup("/etc/containerd/certs.d");
        c->calico_mark_mask = strdup("0xff00ff00");
        c->state_dir = strdup("/run/k0s-tsagent");
        c->persist_dir = strdup("/var/lib/k0s-tsagent");
        c->calico_nftables_mark_mask = strdup("0xff00ff00");
        c->metrics_textfile = strdup("/var/lib/prometheus/node-exporter/k0s-tsagent.prom");
        c->clock_wait_sync = CLOCK_WAIT_SYNC_AUTO;
        c->clock_timeout_usec = 2 * 60 * USEC_PER_SEC;
        if (!c->interface || !c->tailscale_socket || !c->k0s_binary || !c->k0s_version ||
            !c->k0s_token_file || !c->k0s_base_config || !c->k0s_config || !c->k0s_args ||
            !c->k0s_env || !c->k0s_status_socket || !c->containerd_dropin ||
            !c->containerd_certs_dir || !c->calico_mark_mask || !c->state_dir || !c->persist_dir ||
            !c->calico_nftables_mark_mask || !c->metrics_textfile)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- YAML -> node tree ------------------------------------------------------------------ */

typedef enum NodeType {
        NODE_SCALAR,
        NODE_SEQUENCE,
        NODE_MAPPING,
} NodeType;

typedef struct Node {
        NodeType type;
        unsigned line, column; /* 1-based */
        char *value; /* scalar: the bytes, NUL-terminated (may hold a NUL: length) */
        size_t length;
        bool plain; /* scalar written without quotes: may be a YAML null */
        struct Node **items; /* sequence: items; mapping: key, value, key, value, ... */
        size_t n_items, n_allocated;
} Node;

static Node *node_free(Node *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n_items; i++)
                node_free(n->items[i]);
        free(n->items);
        free(n->value);
        free(n);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Node *, node_free);

static const char *node_type_to_string(const Node *n) {
        switch (n->type) {
        case NODE_SCALAR:
                return "a scalar";
        case NODE_SEQUENCE:
                return "a sequence";
        case NODE_MAPPING:
                return "a mapping";
        }
        return "?";
}

static bool node_is_null(const Node *n) {
        return n->type == NODE_SCALAR && n->plain &&
                (n->length == 0 || streq(n->value, "~") || streq(n->value, "null") ||
                 streq(n->value, "Null") || streq(n->value, "NULL"));
}

/* Mapping lookups for positions in error messages; keys are unique by then. */
static const Node *node_get_key(const Node *map, const char *key) {
        if (!map || map->type != NODE_MAPPING)
                return NULL;
        for (size_t i = 0; i + 1 < map->n_items; i += 2)
                if (map->items[i]->type == NODE_SCALAR && streq(map->items[i]->value, key))
                        return map->items[i];
        return NULL;
}

static const Node *node_get(const Node *map, const char *key) {
        if (!map || map->type != NODE_MAPPING)
                return NULL;
        for (size_t i = 0; i + 1 < map->n_items; i += 2)
                if (map->items[i]->type == NODE_SCALAR && streq(map->items[i]->value, key))
                        return map->items[i + 1];
        return NULL;
}

static const Node *node_item(const Node *seq, size_t i) {
        if (!seq || seq->type != NODE_SEQUENCE || i >= seq->n_items)
                return NULL;
        return seq->items[i];
}

typedef struct Ctx {
        const char *filename;
        const unsigned char *data;
        size_t size;
        yaml_parser_t parser;
        char *error; /* the first error, "FILE:LINE:COLUMN: message" */
} Ctx;

static int ctx_error_at(Ctx *ctx, unsigned line, unsigned column, const char *fmt, ...)
        _printf_(4, 5);

static int ctx_error_at(Ctx *ctx, unsigned line, unsigned column, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        if (ctx->error)
                return -EINVAL;
        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        ctx->error = strdup_printf("%s:%u:%u: %s", ctx->filename, line, column, msg);
        if (!ctx->error)
                return -ENOMEM;
        return -EINVAL;
}

/* Errors point at a node; a missing node (cannot happen for a tree that parsed) means 1:1. */
#define ctx_error(ctx, node, ...) \
        ctx_error_at((ctx), (node) ? (node)->line : 1, (node) ? (node)->column : 1, __VA_ARGS__)

/* Line and column of a byte offset, for errors libyaml reports without a mark. */
static void ctx_offset_to_position(const Ctx *ctx, size_t offset, unsigned *ret_line,
                                   unsigned *ret_column) {
        unsigned line = 1, column = 1;

        for (size_t i = 0; i < offset && i < ctx->size; i++) {
                if (ctx->data[i] == '\n') {
                        line++;
                        column = 1;
                } else
                        column++;
        }
        *ret_line = line;
        *ret_column = column;
}

static int ctx_yaml_error(Ctx *ctx) {
        const yaml_parser_t *p = &ctx->parser;
        unsigned line, column;

        switch (p->error) {
        case YAML_MEMORY_ERROR:
                return -ENOMEM;
        case YAML_READER_ERROR:
                ctx_offset_to_position(ctx, p->problem_offset, &line, &column);
                return ctx_error_at(ctx, line, column, "YAML syntax error: %s",
                                    p->problem ?: "unreadable input");
        case YAML_NO_ERROR:
        case YAML_SCANNER_ERROR:
        case YAML_PARSER_ERROR:
        case YAML_COMPOSER_ERROR:
        case YAML_WRITER_ERROR:
        case YAML_EMITTER_ERROR:
                break;
        }
        line = (unsigned) MIN(p->problem_mark.line, (size_t) UINT_MAX - 1) + 1;
        column = (unsigned) MIN(p->problem_mark.column, (size_t) UINT_MAX - 1) + 1;
        if (p->context)
                return ctx_error_at(ctx, line, column, "YAML syntax error: %s (%s)",
                                    p->problem ?: "invalid YAML", p->context);
        return ctx_error_at(ctx, line, column, "YAML syntax error: %s",
                            p->problem ?: "invalid YAML");
}

static void yaml_event_deletep(yaml_event_t *e) {
        yaml_event_delete(e);
}

static int ctx_next_event(Ctx *ctx, yaml_event_t *ret) {
        if (!yaml_parser_parse(&ctx->parser, ret)) {
                *ret = (yaml_event_t){};
                return ctx_yaml_error(ctx);
        }
        return 0;
}

static int node_append(Node *parent, Node *child) {
        if (parent->n_items == parent->n_allocated) {
                size_t n = parent->n_allocated == 0 ? 8 : parent->n_allocated * 2;
                Node **items = reallocarray(parent->items, n, sizeof(Node *));

                if (!items)
                        return -ENOMEM;
                parent->items = items;
                parent->n_allocated = n;
        }
        parent->items[parent->n_items++] = child;
        return 0;
}

/* Builds the node that starts with event ev (already read), reading until its end. */
static int node_build(Ctx *ctx, const yaml_event_t *ev, unsigned depth, Node **ret) {
        _cleanup_(node_freep) Node *n = NULL;
        yaml_event_type_t end = YAML_NO_EVENT;
        int r;

        if (ev->type == YAML_ALIAS_EVENT)
                /* Aliases buy a config file nothing and make exponential expansion possible. */
                return ctx_error_at(ctx, (unsigned) ev->start_mark.line + 1,
                                    (unsigned) ev->start_mark.column + 1,
                                    "YAML aliases are not supported");
        if (depth >= NODE_DEPTH_MAX)
                return ctx_error_at(ctx, (unsigned) ev->start_mark.line + 1,
                                    (unsigned) ev->start_mark.column + 1,
                                    "nesting too deep (limit %u)", NODE_DEPTH_MAX);

        n = calloc(1, sizeof(Node));
        if (!n)
                return -ENOMEM;
        n->line = (unsigned) ev->start_mark.line + 1;
        n->column = (unsigned) ev->start_mark.column + 1;

        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                n->type = NODE_SCALAR;
                n->length = ev->data.scalar.length;
                n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                n->value = malloc(n->length + 1);
                if (!n->value)
                        return -ENOMEM;
                memcpy(n->value, ev->data.scalar.value, n->length);
                n->value[n->length] = 0;
                *ret = TAKE_PTR(n);
                return 0;
        case YAML_SEQUENCE_START_EVENT:
                n->type = NODE_SEQUENCE;
                end = YAML_SEQUENCE_END_EVENT;
                break;
        case YAML_MAPPING_START_EVENT:
                n->type = NODE_MAPPING;
                end = YAML_MAPPING_END_EVENT;
                break;
        case YAML_NO_EVENT:
        case YAML_STREAM_START_EVENT:
        case YAML_STREAM_END_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
        case YAML_ALIAS_EVENT:
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                return ctx_error_at(ctx, n->line, n->column, "unexpected YAML event");
        }

        for (;;) {
                _cleanup_(yaml_event_deletep) yaml_event_t child_ev = {};
                Node *child = NULL;

                r = ctx_next_event(ctx, &child_ev);
                if (r < 0)
                        return r;
                if (child_ev.type == end)
                        break;
                r = node_build(ctx, &child_ev, depth + 1, &child);
                if (r < 0)
                        return r;
                r = node_append(n, child);
                if (r < 0) {
                        node_free(child);
                        return r;
                }
        }

        *ret = TAKE_PTR(n);
        return 0;
}

/* The one document of the stream, or NULL for an empty stream or a null document. */
static int ctx_load(Ctx *ctx, Node **ret) {
        _cleanup_(node_freep) Node *root = NULL;
        int r;

        for (;;) {
                _cleanup_(yaml_event_deletep) yaml_event_t ev = {};

                r = ctx_next_event(ctx, &ev);
                if (r < 0)
                        return r;
                switch (ev.type) {
                case YAML_STREAM_START_EVENT:
                case YAML_DOCUMENT_END_EVENT:
                        break;
                case YAML_STREAM_END_EVENT:
                        if (root && node_is_null(root))
                                root = node_free(root);
                        *ret = TAKE_PTR(root);
                        return 0;
                case YAML_DOCUMENT_START_EVENT:
                        if (root)
                                return ctx_error_at(ctx, (unsigned) ev.start_mark.line + 1,
                                                    (unsigned) ev.start_mark.column + 1,
                                                    "only one YAML document is allowed");
                        break;
                case YAML_ALIAS_EVENT:
                case YAML_SCALAR_EVENT:
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        r = node_build(ctx, &ev, 0, &root);
                        if (r < 0)
                                return r;
                        break;
                case YAML_NO_EVENT:
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        return ctx_error_at(ctx, (unsigned) ev.start_mark.line + 1,
                                            (unsigned) ev.start_mark.column + 1,
                                            "unexpected YAML event");
                }
        }
}

/* ---- node tree -> AgentConfig: one parser per value type, driven by key tables ------------ */

typedef int (*ConfigParseFn)(Ctx *ctx, const char *path, const Node *key, const Node *value,
                             void *field, const void *arg);

typedef struct ConfigKey {
        const char *name;
        ConfigParseFn parse;
        size_t offset; /* of the field in the struct the table describes */
        const void *arg;
} ConfigKey;

typedef struct ConfigTable {
        const ConfigKey *keys;
        size_t n_keys;
} ConfigTable;

static int parse_table(Ctx *ctx, const char *path, const Node *map, const ConfigTable *t,
                       void *base);

static int expect_type(Ctx *ctx, const char *path, const Node *value, NodeType type,
                       const char *what) {
        if (value->type != type)
                return ctx_error(ctx, value, "'%s' must be %s, not %s", path, what,
                                 node_type_to_string(value));
        return 0;
}

/* A non-empty string scalar without NUL bytes. */
static int get_string(Ctx *ctx, const char *path, const Node *key, const Node *value,
                      const char **ret) {
        int r;

        r = expect_type(ctx, path, value, NODE_SCALAR, "a string");
        if (r < 0)
                return r;
        if (node_is_null(value) || value->length == 0)
                return ctx_error(ctx, key, "'%s' needs a value", path);
        if (strlen(value->value) != value->length)
                return ctx_error(ctx, value, "'%s' contains a NUL byte", path);
        *ret = value->value;
        return 0;
}

static int set_string(char **field, const char *s) {
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

static bool has_control_bytes(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* What a path key accepts besides an absolute path (the ConfigKey's arg; NULL = defaults). */
typedef struct PathOpts {
        bool nullable; /* null or "" leaves the path unset (NULL): "off" or "none" */
        size_t max; /* the path must be shorter than this many bytes; 0 = PATH_MAX */
        const char *max_why; /* what the limit is, for the message */
} PathOpts;

static const PathOpts path_nullable = { .nullable = true };
/* A unix socket's path must fit sockaddr_un.sun_path with its NUL: 107 bytes at most. */
static const PathOpts path_socket = {
        .max = sizeof(((struct sockaddr_un *) NULL)->sun_path),
        .max_why = "a unix socket path must fit sockaddr_un.sun_path",
};

static int parse_path(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                      const void *arg) {
        const PathOpts *o = arg;
        size_t max = o && o->max > 0 ? o->max : PATH_MAX;
        const char *s;
        int r;

        if (o && o->nullable &&
            (node_is_null(value) || (value->type == NODE_SCALAR && value->length == 0))) {
                char **p = field;
                *p = mfree(*p);
                return 0;
        }
        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (s[0] != '/')
                return ctx_error(ctx, value, "'%s' must be an absolute path, not '%s'", path, s);
        /* Paths end up in TOML and YAML files the agent renders; keep them plain. */
        if (has_control_bytes(s) || strpbrk(s, "\"\\"))
                return ctx_error(ctx, value,
                                 "'%s' must not contain control characters, quotes or backslashes",
                                 path);
        if (strlen(s) >= max) {
                if (o && o->max_why)
                        return ctx_error(ctx, value,
                                         "'%s' is %zu bytes long; %s (at most %zu bytes)", path,
                                         strlen(s), o->max_why, max - 1);
                return ctx_error(ctx, value, "'%s' is longer than %zu bytes", path, max - 1);
        }
        return set_string(field, s);
}

/* The YAML 1.1 booleans people write in config files; "on"/"off"/"y"/"n" are not taken. */
static int bool_from_string(const char *s, bool *ret) {
        static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES" };
        static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (streq(s, yes[i])) {
                        *ret = true;
                        return 0;
                }
                if (streq(s, no[i])) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int parse_bool(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                      const void *arg) {
        int r;

        r = expect_type(ctx, path, value, NODE_SCALAR, "a boolean");
        if (r < 0)
                return r;
        if (bool_from_string(value->value, field) < 0)
                return ctx_error(ctx, value, "'%s' must be a boolean (true/false/yes/no), not '%s'",
                                 path, value->value);
        return 0;
}

/* clock.wait_sync: "auto" or a boolean. */
static int parse_clock_wait_sync(Ctx *ctx, const char *path, const Node *key, const Node *value,
                                 void *field, const void *arg) {
        ClockWaitSync *w = field;
        bool b;
        int r;

        r = expect_type(ctx, path, value, NODE_SCALAR, "auto or a boolean");
        if (r < 0)
                return r;
        if (streq(value->value, "auto")) {
                *w = CLOCK_WAIT_SYNC_AUTO;
                return 0;
        }
        if (bool_from_string(value->value, &b) < 0)
                return ctx_error(ctx, value,
                                 "'%s' must be auto, true or false (or yes/no), not '%s'", path,
                                 has_control_bytes(value->value) ? "?" : value->value);
        *w = b ? CLOCK_WAIT_SYNC_YES : CLOCK_WAIT_SYNC_NO;
        return 0;
}

/* The range a duration key accepts (the ConfigKey's arg), documented in k0s-tsagent.conf(5).
 * Bounds keep every timer the agent arms finite and slow enough not to spin. */
typedef struct DurationBounds {
        uint64_t min, max;
        bool zero_is_off; /* 0 is accepted and means "off", whatever min says */
} DurationBounds;

#define MSEC(n) ((uint64_t) (n) *USEC_PER_MSEC)
#define SECS(n) ((uint64_t) (n) *USEC_PER_SEC)
#define MINS(n) SECS((n) *60)
#define HOURS(n) MINS((n) *60)

static const DurationBounds bounds_settle = { 0, HOURS(1), false };
static const DurationBounds bounds_stop_timeout = { SECS(1), HOURS(1), false };
static const DurationBounds bounds_backoff_min = { 0, HOURS(1), false };
static const DurationBounds bounds_backoff_max = { MSEC(250), HOURS(24), false };
static const DurationBounds bounds_stable = { SECS(1), HOURS(24), false };
static const DurationBounds bounds_health_interval = { SECS(1), HOURS(1), true };
static const DurationBounds bounds_health_timeout = { MSEC(100), MINS(1), false };
static const DurationBounds bounds_peer_refresh = { SECS(1), HOURS(1), true };
static const DurationBounds bounds_clock_timeout = { SECS(1), HOURS(1), false };
static const DurationBounds bounds_failover_target = { SECS(20), MINS(10), true };

static int parse_duration_value(Ctx *ctx, const char *path, const Node *key, const Node *value,
                                const DurationBounds *b, uint64_t *ret) {
        const char *s, *reason = "invalid";
        char lo[32], hi[32];
        uint64_t v;
        int r;

        r = expect_type(ctx, path, value, NODE_SCALAR, "a duration");
        if (r < 0)
                return r;
        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        r = parse_duration_reason(s, &v, &reason);
        if (r < 0)
                return ctx_error(ctx, value, "invalid duration '%s' for '%s': %s", s, path, reason);
        if (b && !(v == 0 && b->zero_is_off) && (v < b->min || v > b->max)) {
                format_duration(lo, sizeof(lo), b->min);
                format_duration(hi, sizeof(hi), b->max);
                /* s parsed as a duration: digits and unit letters only, safe to print. */
                if (b->zero_is_off)
                        return ctx_error(ctx, value,
                                         "'%s' must be 0 (off) or between %s and %s, not '%s'",
                                         path, lo, hi, s);
                return ctx_error(ctx, value, "'%s' must be between %s and %s, not '%s'", path, lo,
                                 hi, s);
        }
        *ret = v;
        return 0;
}

static int parse_duration_key(Ctx *ctx, const char *path, const Node *key, const Node *value,
                              void *field, const void *arg) {
        return parse_duration_value(ctx, path, key, value, arg, field);
}

static int parse_role(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                      const void *arg) {
        K0sRole *role = field, v;
        const char *s;
        int r;

        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        v = k0s_role_from_string(s);
        if (v < 0)
                return ctx_error(ctx, value,
                                 "invalid role '%s': expected worker, controller, "
                                 "controller+worker or single",
                                 s);
        *role = v;
        return 0;
}

/* What the kernel's dev_valid_name() accepts, minus non-ASCII: the name goes into Calico's
 * "interface=" autodetection regex and into log lines. */
static bool interface_name_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= IFNAMSIZ || streq(s, ".") || streq(s, ".."))
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= 0x20 || (unsigned char) *s >= 0x7f || *s == '/' ||
                    *s == ':')
                        return false;
        return true;
}

static int parse_interface(Ctx *ctx, const char *path, const Node *key, const Node *value,
                           void *field, const void *arg) {
        const char *s;
        int r;

        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (!interface_name_is_valid(s))
                return ctx_error(ctx, value,
                                 "invalid interface name '%s': 1-%d printable characters, "
                                 "no '/', ':' or whitespace",
                                 s, IFNAMSIZ - 1);
        return set_string(field, s);
}

static int parse_k0s_version(Ctx *ctx, const char *path, const Node *key, const Node *value,
                             void *field, const void *arg) {
        K0sVersion v;
        const char *s;
        int r;

        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (!streq(s, "auto") && k0s_version_parse(s, &v) < 0)
                return ctx_error(ctx, value,
                                 "invalid k0s version '%s' for '%s': expected 'auto' or a "
                                 "version like v1.35.7+k0s.0",
                                 s, path);
        return set_string(field, s);
}

static int parse_mtu(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                     const void *arg) {
        unsigned *mtu = field, v;
        const char *s;
        int r;

        r = expect_type(ctx, path, value, NODE_SCALAR, "an integer");
        if (r < 0)
                return r;
        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (safe_atou(s, &v) < 0 || (v != 0 && (v < 576 || v > 9000)))
                return ctx_error(ctx, value, "'%s' must be 0 or between 576 and 9000, not '%s'",
                                 path, s);
        *mtu = v;
        return 0;
}

static int parse_mark_mask(Ctx *ctx, const char *path, const Node *key, const Node *value,
                           void *field, const void *arg) {
        const char *s;
        size_t n;
        int r;

        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        n = strlen(s);
        if (n < 3 || n > 10 || !startswith(s, "0x") ||
            strspn(s + 2, "0123456789abcdefABCDEF") != n - 2)
                return ctx_error(ctx, value,
                                 "invalid mark mask '%s' for '%s': expected 0x and 1 to 8 hex "
                                 "digits, e.g. \"0xff00ff00\"",
                                 s, path);
        return set_string(field, s);
}

/* "args:" or "env:" with nothing under it: an empty vector (the fields are never NULL). */
static int strv_set_empty(char ***field) {
        char **l = calloc(1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        strv_free(*field);
        *field = l;
        return 0;
}

static int parse_strv(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                      const void *arg) {
        _cleanup_strv_free_ char **l = NULL;
        char ***ret = field;
        int r;

        if (node_is_null(value))
                return strv_set_empty(ret);
        r = expect_type(ctx, path, value, NODE_SEQUENCE, "a sequence of strings");
        if (r < 0)
                return r;
        /* Sized up front: strv_extend() per item would be quadratic. */
        l = calloc(value->n_items + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < value->n_items; i++) {
                const Node *item = value->items[i];
                char p[256];
                const char *s;

                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                r = get_string(ctx, p, item, item, &s);
                if (r < 0)
                        return r;
                l[i] = strdup(s);
                if (!l[i])
                        return -ENOMEM;
        }
        strv_free(*ret);
        *ret = TAKE_PTR(l);
        return 0;
}

static int strcmp_indirect(const void *a, const void *b, void *userdata) {
        const char *const *names = userdata;
        size_t i = *(const size_t *) a, j = *(const size_t *) b;
        int r = strcmp(names[i], names[j]);

        if (r != 0)
                return r;
        return i < j ? -1 : i > j ? 1 : 0;
}

/* Finds the first name (in order) that equals an earlier one, in O(n log n) so a hostile file
 * with 100k keys cannot stall a reload. Returns 1 and both indexes, or 0 if all differ. */
static int find_duplicate(const char *const *names, size_t n, size_t *ret_dup, size_t *ret_first) {
        _cleanup_free_ size_t *idx = NULL;
        size_t dup = SIZE_MAX, first = 0, group = 0;

        if (n < 2)
                return 0;
        idx = calloc(n, sizeof(size_t));
        if (!idx)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                idx[i] = i;
        /* sorted by name, then by position: a group of equal names starts with its first */
        qsort_r(idx, n, sizeof(size_t), strcmp_indirect, (void *) names);
        for (size_t k = 1; k < n; k++) {
                if (!streq(names[idx[k]], names[idx[k - 1]])) {
                        group = k;
                        continue;
                }
                if (idx[k] < dup) {
                        dup = idx[k];
                        first = idx[group];
                }
        }
        if (dup == SIZE_MAX)
                return 0;
        *ret_dup = dup;
        *ret_first = first;
        return 1;
}

static bool env_name_is_valid(const char *s) {
        if (!(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
                return false;
        for (s++; *s; s++)
                if (!is_alnum(*s) && *s != '_')
                        return false;
        return true;
}

static int parse_env(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                     const void *arg) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ const char **names = NULL;
        char ***ret = field;
        size_t n, dup, first;
        int r;

        if (node_is_null(value))
                return strv_set_empty(ret);
        r = expect_type(ctx, path, value, NODE_MAPPING, "a mapping of NAME: value");
        if (r < 0)
                return r;
        n = value->n_items / 2;
        /* Sized up front: strv_push() per entry would be quadratic. */
        l = calloc(n + 1, sizeof(char *));
        names = calloc(n + 1, sizeof(char *));
        if (!l || !names)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const Node *k = value->items[2 * i], *v = value->items[2 * i + 1];
                const char *val = "";
                char p[256];

                if (k->type != NODE_SCALAR || strlen(k->value) != k->length ||
                    !env_name_is_valid(k->value))
                        return ctx_error(ctx, k,
                                         "invalid environment variable name in '%s': expected "
                                         "[A-Za-z_][A-Za-z0-9_]*",
                                         path);
                snprintf(p, sizeof(p), "%s.%s", path, k->value);
                r = expect_type(ctx, p, v, NODE_SCALAR, "a string");
                if (r < 0)
                        return r;
                if (!node_is_null(v)) {
                        if (strlen(v->value) != v->length)
                                return ctx_error(ctx, v, "'%s' contains a NUL byte", p);
                        val = v->value;
                }
                l[i] = strdup_printf("%s=%s", k->value, val);
                if (!l[i])
                        return -ENOMEM;
                names[i] = k->value;
        }
        r = find_duplicate(names, n, &dup, &first);
        if (r < 0)
                return r;
        if (r > 0)
                return ctx_error(ctx, value->items[2 * dup], "duplicate key '%s' in '%s'",
                                 names[dup], path);

        strv_free(*ret);
        *ret = TAKE_PTR(l);
        return 0;
}

static int parse_restart_backoff(Ctx *ctx, const char *path, const Node *key, const Node *value,
                                 void *field, const void *arg) {
        AgentConfig *c = field;
        uint64_t min, max;
        char p[256];
        int r;

        if (value->type != NODE_SEQUENCE || value->n_items != 2)
                return ctx_error(ctx, value, "'%s' must be a sequence of two durations [min, max]",
                                 path);
        snprintf(p, sizeof(p), "%s[0]", path);
        r = parse_duration_value(ctx, p, value->items[0], value->items[0], &bounds_backoff_min,
                                 &min);
        if (r < 0)
                return r;
        snprintf(p, sizeof(p), "%s[1]", path);
        r = parse_duration_value(ctx, p, value->items[1], value->items[1], &bounds_backoff_max,
                                 &max);
        if (r < 0)
                return r;
        c->restart_backoff_min_usec = min;
        c->restart_backoff_max_usec = max;
        return 0;
}

/* Characters a URL may hold here: it becomes a TOML table key [host."URL"], so no quotes,
 * backslashes, whitespace or control bytes; and no query, fragment or userinfo. */
static int parse_url(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                     const void *arg) {
        _cleanup_free_ char *host = NULL;
        const char *s, *rest;
        size_t n;
        int r;

        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (startswith(s, "http://"))
                rest = s + 7;
        else if (startswith(s, "https://"))
                rest = s + 8;
        else
                return ctx_error(ctx, value,
                                 "invalid URL '%s' for '%s': the scheme must be http:// or "
                                 "https://",
                                 s, path);
        for (const char *q = s; *q; q++)
                if ((unsigned char) *q <= 0x20 || (unsigned char) *q >= 0x7f ||
                    strchr("\"\\?#@", *q))
                        return ctx_error(ctx, value,
                                         "invalid URL '%s' for '%s': no whitespace, quotes, "
                                         "backslashes, control bytes, '?', '#' or '@'",
                                         s, path);
        n = strcspn(rest, "/");
        if (n == 0)
                return ctx_error(ctx, value, "invalid URL '%s' for '%s': no host", s, path);
        host = strndup(rest, n);
        if (!host)
                return -ENOMEM;
        if (!registry_name_is_valid(host))
                return ctx_error(ctx, value,
                                 "invalid URL '%s' for '%s': '%s' is not a valid host[:port]", s,
                                 path, host);
        return set_string(field, s);
}

static int parse_registry_name(Ctx *ctx, const char *path, const Node *key, const Node *value,
                               void *field, const void *arg) {
        const char *s;
        int r;

        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (!registry_name_is_valid(s))
                return ctx_error(ctx, value,
                                 "invalid registry name '%s': expected host[:port] as in image "
                                 "references (DNS name, IPv4 or [IPv6], port 1-65535)",
                                 s);
        return set_string(field, s);
}

/* A tailnet peer as tailscaled names it: its HostName or MagicDNS name (DNS labels, one
 * trailing dot allowed as in Status.Peer[].DNSName). An address belongs in url:. */
static bool peer_name_is_valid(const char *s) {
        size_t n = strlen(s);
        struct in_addr a;

        if (n > 0 && s[n - 1] == '.')
                n--;
        if (n == 0 || n > 253 || !host_is_valid(s, n))
                return false;
        return inet_pton(AF_INET, s, &a) != 1;
}

static int parse_peer(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                      const void *arg) {
        const char *s;
        int r;

        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (!peer_name_is_valid(s))
                return ctx_error(ctx, value,
                                 "invalid peer '%s' for '%s': expected a tailnet peer's HostName "
                                 "or MagicDNS name (DNS labels of A-Z, a-z, 0-9 and '-'); an "
                                 "address goes into 'url:'",
                                 has_control_bytes(s) ? "?" : s, path);
        return set_string(field, s);
}

static int parse_port(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                      const void *arg) {
        unsigned *port = field, v;
        const char *s;
        int r;

        r = expect_type(ctx, path, value, NODE_SCALAR, "an integer");
        if (r < 0)
                return r;
        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (!port_is_valid(s, strlen(s)) || safe_atou(s, &v) < 0)
                return ctx_error(ctx, value, "'%s' must be a port between 1 and 65535, not '%s'",
                                 path, has_control_bytes(s) ? "?" : s);
        *port = v;
        return 0;
}

static int parse_scheme(Ctx *ctx, const char *path, const Node *key, const Node *value, void *field,
                        const void *arg) {
        const char *s;
        int r;

        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (!streq(s, "http") && !streq(s, "https"))
                return ctx_error(ctx, value, "'%s' must be http or https, not '%s'", path,
                                 has_control_bytes(s) ? "?" : s);
        return set_string(field, s);
}

/* k0s.accept_address: the new tailnet IPv4 of an etcd controller the operator confirmed. */
static int parse_accept_address(Ctx *ctx, const char *path, const Node *key, const Node *value,
                                void *field, const void *arg) {
        const char *s;
        int r;

        if (node_is_null(value) || (value->type == NODE_SCALAR && value->length == 0)) {
                char **p = field;
                *p = mfree(*p);
                return 0;
        }
        r = get_string(ctx, path, key, value, &s);
        if (r < 0)
                return r;
        if (!address_is_tailnet_ipv4(s))
                return ctx_error(ctx, value,
                                 "'%s' must be a tailnet IPv4 address (100.64.0.0/10), not '%s'",
                                 path, has_control_bytes(s) ? "?" : s);
        return set_string(field, s);
}

static const ConfigKey endpoint_keys[] = {
        { "url", parse_url, offsetof(RegistryEndpoint, url), NULL },
        { "peer", parse_peer, offsetof(RegistryEndpoint, peer), NULL },
        { "port", parse_port, offsetof(RegistryEndpoint, port), NULL },
        { "scheme", parse_scheme, offsetof(RegistryEndpoint, scheme), NULL },
        { "skip_verify", parse_bool, offsetof(RegistryEndpoint, skip_verify), NULL },
        { "ca", parse_path, offsetof(RegistryEndpoint, ca), &path_nullable },
};
static const ConfigTable endpoint_table = { endpoint_keys, ELEMENTSOF(endpoint_keys) };

/* A sequence of mappings -> a calloc'd array of n structs, each filled by parse_table(). Sized
 * once from the node, so no realloc moves entries under parse_table(); *n counts the entries
 * started, so the caller's destructor frees a half-parsed array too. */
static int parse_table_sequence(Ctx *ctx, const char *path, const Node *value,
                                const ConfigTable *table, size_t elem_size, size_t max,
                                const char *max_name, void **array, size_t *n) {
        int r;

        if (node_is_null(value))
                return 0;
        r = expect_type(ctx, path, value, NODE_SEQUENCE, "a sequence of mappings");
        if (r < 0)
                return r;
        if (value->n_items == 0)
                return 0;
        /* Checked before anything is allocated: the cost of every later event grows with it. */
        if (value->n_items > max)
                return ctx_error(ctx, value->items[max], "'%s' has more than %zu entries (%s)",
                                 path, max, max_name);
        *array = calloc(value->n_items, elem_size);
        if (!*array)
                return -ENOMEM;
        for (size_t i = 0; i < value->n_items; i++) {
                char p[256];

                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                (*n)++;
                r = expect_type(ctx, p, value->items[i], NODE_MAPPING, "a mapping");
                if (r < 0)
                        return r;
                r = parse_table(ctx, p, value->items[i], table, (char *) *array + i * elem_size);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_endpoints(Ctx *ctx, const char *path, const Node *key, const Node *value,
                           void *field, const void *arg) {
        Registry *reg = field;
        return parse_table_sequence(ctx, path, value, &endpoint_table, sizeof(RegistryEndpoint),
                                    CONFIG_MAX_ENDPOINTS, "CONFIG_MAX_ENDPOINTS",
                                    (void **) &reg->endpoints, &reg->n_endpoints);
}

static const ConfigKey registry_keys[] = {
        { "name", parse_registry_name, offsetof(Registry, name), NULL },
        { "endpoints", parse_endpoints, 0, NULL },
};
static const ConfigTable registry_table = { registry_keys, ELEMENTSOF(registry_keys) };

static int parse_registries(Ctx *ctx, const char *path, const Node *key, const Node *value,
                            void *field, const void *arg) {
        AgentConfig *c = field;
        return parse_table_sequence(ctx, path, value, &registry_table, sizeof(Registry),
                                    CONFIG_MAX_REGISTRIES, "CONFIG_MAX_REGISTRIES",
                                    (void **) &c->registries, &c->n_registries);
}

/* A section (tailscale:, k0s:, ...) whose keys fill fields of the AgentConfig itself. */
static int parse_section(Ctx *ctx, const char *path, const Node *key, const Node *value,
                         void *field, const void *arg) {
        int r;

        if (node_is_null(value))
                return 0; /* "k0s:" with nothing under it: all defaults */
        r = expect_type(ctx, path, value, NODE_MAPPING, "a mapping");
        if (r < 0)
                return r;
        return parse_table(ctx, path, value, arg, field);
}

static const ConfigKey tailscale_keys[] = {
        { "socket", parse_path, offsetof(AgentConfig, tailscale_socket), &path_socket },
        { "require_running", parse_bool, offsetof(AgentConfig, require_running), NULL },
        { "peer_refresh", parse_duration_key, offsetof(AgentConfig, peer_refresh_usec),
          &bounds_peer_refresh },
};

static const ConfigKey k0s_keys[] = {
        { "binary", parse_path, offsetof(AgentConfig, k0s_binary), NULL },
        { "version", parse_k0s_version, offsetof(AgentConfig, k0s_version), NULL },
        { "token_file", parse_path, offsetof(AgentConfig, k0s_token_file), &path_nullable },
        { "base_config", parse_path, offsetof(AgentConfig, k0s_base_config), NULL },
        { "config", parse_path, offsetof(AgentConfig, k0s_config), NULL },
        { "args", parse_strv, offsetof(AgentConfig, k0s_args), NULL },
        { "env", parse_env, offsetof(AgentConfig, k0s_env), NULL },
        { "status_socket", parse_path, offsetof(AgentConfig, k0s_status_socket), &path_socket },
        { "ipv6", parse_bool, offsetof(AgentConfig, k0s_ipv6), NULL },
        { "accept_address", parse_accept_address, offsetof(AgentConfig, k0s_accept_address), NULL },
};

static const ConfigKey containerd_keys[] = {
        { "dropin", parse_path, offsetof(AgentConfig, containerd_dropin), NULL },
        { "certs_dir", parse_path, offsetof(AgentConfig, containerd_certs_dir), NULL },
};

static const ConfigKey calico_keys[] = {
        { "mtu", parse_mtu, offsetof(AgentConfig, calico_mtu), NULL },
        { "iptables_mark_mask", parse_mark_mask, offsetof(AgentConfig, calico_mark_mask), NULL },
        { "nftables_mark_mask", parse_mark_mask, offsetof(AgentConfig, calico_nftables_mark_mask),
          NULL },
};

static const ConfigKey metrics_keys[] = {
        { "textfile", parse_path, offsetof(AgentConfig, metrics_textfile), &path_nullable },
};

static const ConfigKey clock_keys[] = {
        { "wait_sync", parse_clock_wait_sync, offsetof(AgentConfig, clock_wait_sync), NULL },
        { "timeout", parse_duration_key, offsetof(AgentConfig, clock_timeout_usec),
          &bounds_clock_timeout },
};

static const ConfigKey failover_keys[] = {
        { "target", parse_duration_key, offsetof(AgentConfig, failover_target_usec),
          &bounds_failover_target },
};

static const ConfigKey doctor_keys[] = {
        { "backup_dir", parse_path, offsetof(AgentConfig, doctor_backup_dir), &path_nullable },
};

static const ConfigKey health_keys[] = {
        { "interval", parse_duration_key, offsetof(AgentConfig, health_interval_usec),
          &bounds_health_interval },
        { "timeout", parse_duration_key, offsetof(AgentConfig, health_timeout_usec),
          &bounds_health_timeout },
};

static const ConfigKey timing_keys[] = {
        { "settle", parse_duration_key, offsetof(AgentConfig, settle_usec), &bounds_settle },
        { "restart_backoff", parse_restart_backoff, 0, NULL },
        { "stable", parse_duration_key, offsetof(AgentConfig, stable_usec), &bounds_stable },
        { "stop_timeout", parse_duration_key, offsetof(AgentConfig, stop_timeout_usec),
          &bounds_stop_timeout },
};

static const ConfigTable tailscale_table = { tailscale_keys, ELEMENTSOF(tailscale_keys) };
static const ConfigTable k0s_table = { k0s_keys, ELEMENTSOF(k0s_keys) };
static const ConfigTable containerd_table = { containerd_keys, ELEMENTSOF(containerd_keys) };
static const ConfigTable calico_table = { calico_keys, ELEMENTSOF(calico_keys) };
static const ConfigTable health_table = { health_keys, ELEMENTSOF(health_keys) };
static const ConfigTable timing_table = { timing_keys, ELEMENTSOF(timing_keys) };
static const ConfigTable metrics_table = { metrics_keys, ELEMENTSOF(metrics_keys) };
static const ConfigTable clock_table = { clock_keys, ELEMENTSOF(clock_keys) };
static const ConfigTable failover_table = { failover_keys, ELEMENTSOF(failover_keys) };
static const ConfigTable doctor_table = { doctor_keys, ELEMENTSOF(doctor_keys) };

static const ConfigKey top_keys[] = {
        { "interface", parse_interface, offsetof(AgentConfig, interface), NULL },
        { "role", parse_role, offsetof(AgentConfig, role), NULL },
        { "tailscale", parse_section, 0, &tailscale_table },
        { "k0s", parse_section, 0, &k0s_table },
        { "containerd", parse_section, 0, &containerd_table },
        { "registries", parse_registries, 0, NULL },
        { "calico", parse_section, 0, &calico_table },
        { "health", parse_section, 0, &health_table },
        { "timing", parse_section, 0, &timing_table },
        { "state_dir", parse_path, offsetof(AgentConfig, state_dir), NULL },
        { "persist_dir", parse_path, offsetof(AgentConfig, persist_dir), NULL },
        { "metrics", parse_section, 0, &metrics_table },
        { "clock", parse_section, 0, &clock_table },
        { "failover", parse_section, 0, &failover_table },
        { "doctor", parse_section, 0, &doctor_table },
};
static const ConfigTable top_table = { top_keys, ELEMENTSOF(top_keys) };
_Static_assert(ELEMENTSOF(top_keys) <= 64 && ELEMENTSOF(k0s_keys) <= 64,
               "parse_table() tracks the keys it saw in a uint64_t");

/* path: "" for the top level, else the dotted name of the mapping ("k0s", "registries[0]"). */
static int parse_table(Ctx *ctx, const char *path, const Node *map, const ConfigTable *t,
                       void *base) {
        uint64_t seen = 0;
        int r;

        for (size_t i = 0; i + 1 < map->n_items; i += 2) {
                const Node *key = map->items[i], *value = map->items[i + 1];
                const ConfigKey *k = NULL;
                size_t idx = 0;
                char p[256];

                if (key->type != NODE_SCALAR)
                        return ctx_error(ctx, key, "keys must be strings, not %s",
                                         node_type_to_string(key));
                for (idx = 0; idx < t->n_keys; idx++)
                        if (strlen(key->value) == key->length &&
                            streq(t->keys[idx].name, key->value)) {
                                k = &t->keys[idx];
                                break;
                        }
                if (!k) {
                        /* The key came from the file: print it only if it is printable. */
                        const char *shown = has_control_bytes(key->value) ? "?" : key->value;

                        if (isempty(path))
                                return ctx_error(ctx, key, "unknown key '%s'", shown);
                        return ctx_error(ctx, key, "unknown key '%s' in '%s'", shown, path);
                }
                if (seen & (UINT64_C(1) << idx)) {
                        if (isempty(path))
                                return ctx_error(ctx, key, "duplicate key '%s'", k->name);
                        return ctx_error(ctx, key, "duplicate key '%s' in '%s'", k->name, path);
                }
                seen |= UINT64_C(1) << idx;

                if (isempty(path))
                        snprintf(p, sizeof(p), "%s", k->name);
                else
                        snprintf(p, sizeof(p), "%s.%s", path, k->name);
                r = k->parse(ctx, p, key, value, (uint8_t *) base + k->offset, k->arg);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- validation: rules that span more than one value ------------------------------------ */

static const Node *registry_node(const Node *root, size_t i) {
        return node_item(node_get(root, "registries"), i);
}

static const Node *endpoint_node(const Node *root, size_t i, size_t j) {
        return node_item(node_get(registry_node(root, i), "endpoints"), j);
}

static const Node *section_key(const Node *root, const char *section, const char *key) {
        return node_get_key(node_get(root, section), key);
}

static const Node *section_value(const Node *root, const char *section, const char *key) {
        return node_get(node_get(root, section), key);
}

/* Defaults that depend on other values, filled in before validation. */
static int config_complete(AgentConfig *c, const Node *root) {
        for (size_t i = 0; i < c->n_registries; i++)
                for (size_t j = 0; j < c->registries[i].n_endpoints; j++) {
                        RegistryEndpoint *e = &c->registries[i].endpoints[j];

                        /* https unless http is asked for: plain text only by choice. */
                        if (e->peer && !e->scheme) {
                                e->scheme = strdup("https");
                                if (!e->scheme)
                                        return -ENOMEM;
                        }
                }

        /* An interval under 10s without an explicit timeout gets half the interval, so
         * "health: {interval: 2s}" alone is valid. */
        if (!section_key(root, "health", "timeout") && c->health_interval_usec > 0)
                c->health_timeout_usec = MIN(c->health_timeout_usec, c->health_interval_usec / 2);
        return 0;
}

static int validate_endpoint(Ctx *ctx, const Registry *reg, const RegistryEndpoint *e,
                             const Node *en) {
        const char *shown;
        bool http;

        if (!e->url && !e->peer)
                return ctx_error(ctx, en, "endpoint of registry '%s' has neither 'url' nor 'peer'",
                                 reg->name);
        if (e->url && e->peer)
                return ctx_error(ctx, node_get_key(en, "peer"),
                                 "endpoint of registry '%s' has both 'url' and 'peer': an "
                                 "endpoint is one or the other",
                                 reg->name);
        if (e->url) {
                if (e->port > 0 || e->scheme)
                        return ctx_error(ctx, node_get_key(en, e->port > 0 ? "port" : "scheme"),
                                         "'%s' belongs to a 'peer:' endpoint; a 'url:' endpoint "
                                         "carries its scheme and port in the URL",
                                         e->port > 0 ? "port" : "scheme");
                http = startswith(e->url, "http://");
                shown = e->url;
        } else {
                if (e->port == 0)
                        return ctx_error(ctx, en,
                                         "peer endpoint '%s' of registry '%s' needs a 'port' "
                                         "(1-65535)",
                                         e->peer, reg->name);
                http = streq(e->scheme, "http");
                shown = e->peer;
        }

        /* containerd >= 1.6.25/1.7.7 takes any TLS setting on an http:// host as "try HTTPS
         * first" (facts/containerd.md §1.5). */
        if (http && e->skip_verify)
                return ctx_error(ctx, node_get(en, "skip_verify"),
                                 "'skip_verify: true' on the http:// endpoint '%s' makes "
                                 "containerd try HTTPS first; drop it",
                                 shown);
        if (http && e->ca)
                return ctx_error(ctx, node_get(en, "ca"),
                                 "'ca' on the http:// endpoint '%s' makes containerd try HTTPS "
                                 "first; drop it",
                                 shown);
        return 0;
}

static int validate_registries(Ctx *ctx, const AgentConfig *c, const Node *root) {
        _cleanup_free_ const char **names = NULL;
        size_t dup, first;
        int r;

        for (size_t i = 0; i < c->n_registries; i++) {
                const Registry *reg = &c->registries[i];
                const Node *rn = registry_node(root, i), *n;

                if (!reg->name)
                        return ctx_error(ctx, rn, "registry entry has no 'name'");
                if (reg->n_endpoints == 0) {
                        /* "endpoints: []" points at the value, "endpoints:" at the key */
                        n = node_get(rn, "endpoints");
                        if (n && node_is_null(n))
                                n = node_get_key(rn, "endpoints");
                        return ctx_error(ctx, n ?: rn, "registry '%s' has no endpoints", reg->name);
                }
                for (size_t j = 0; j < reg->n_endpoints; j++) {
                        r = validate_endpoint(ctx, reg, &reg->endpoints[j],
                                              endpoint_node(root, i, j));
                        if (r < 0)
                                return r;
                }
        }

        /* Two entries for one name would fight over one certs_dir/NAME/hosts.toml. */
        if (c->n_registries < 2)
                return 0;
        names = calloc(c->n_registries, sizeof(char *));
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_registries; i++)
                names[i] = c->registries[i].name;
        r = find_duplicate(names, c->n_registries, &dup, &first);
        if (r <= 0)
                return r;
        const Node *f = node_get(registry_node(root, first), "name");
        return ctx_error(ctx, node_get(registry_node(root, dup), "name"),
                         "duplicate registry name '%s' (first at line %u)", names[dup],
                         f ? f->line : 0);
}

static int validate_timing(Ctx *ctx, const AgentConfig *c, const Node *root) {
        char a[64], b[64];

        if (c->restart_backoff_min_usec > c->restart_backoff_max_usec)
                return ctx_error(ctx, section_value(root, "timing", "restart_backoff"),
                                 "'timing.restart_backoff': min %s is larger than max %s",
                                 format_duration(a, sizeof(a), c->restart_backoff_min_usec),
                                 format_duration(b, sizeof(b), c->restart_backoff_max_usec));
        /* A probe that may take as long as the interval would overlap the next one. */
        if (c->health_interval_usec > 0 && c->health_timeout_usec >= c->health_interval_usec) {
                const Node *n = section_value(root, "health", "timeout")
                        ?: section_value(root, "health", "interval");
                return ctx_error(ctx, n,
                                 "'health.timeout' (%s) must be shorter than 'health.interval' "
                                 "(%s)",
                                 format_duration(a, sizeof(a), c->health_timeout_usec),
                                 format_duration(b, sizeof(b), c->health_interval_usec));
        }
        return 0;
}

/* Flags of k0s.args the agent sets itself: given here they would silently undo it (k0s takes
 * the last --config, and a second --token-file or role flag changes what joins how). */
static const struct {
        const char *flag;
        const char *fix;
} agent_flags[] = {
        { "--config",
          "the agent passes --config=<k0s.config> to controller roles; put your "
          "settings into 'k0s.base_config'" },
        { "--token-file",
          "the agent passes --token-file=<k0s.token_file>; set "
          "'k0s.token_file' instead" },
        { "--enable-worker", "the role says that: use 'role: controller+worker'" },
        { "--single", "the role says that: use 'role: single'" },
};

/* The flag of agent_flags that arg sets (--x, --x=v; -c, -cV, -c=V for --config), or NULL. */
static const char *arg_agent_flag(const char *arg, const char **ret_fix) {
        for (size_t i = 0; i < ELEMENTSOF(agent_flags); i++) {
                size_t n = strlen(agent_flags[i].flag);

                if (strncmp(arg, agent_flags[i].flag, n) == 0 && (arg[n] == 0 || arg[n] == '=')) {
                        *ret_fix = agent_flags[i].fix;
                        return agent_flags[i].flag;
                }
        }
        /* k0s's only one-letter flag starting with c is -c, --config (pflag: -c v, -cv, -c=v). */
        if (startswith(arg, "-c")) {
                *ret_fix = agent_flags[0].fix;
                return "-c";
        }
        return NULL;
}

static bool env_has(char *const *env, const char *name) {
        size_t n = strlen(name);

        for (; env && *env; env++)
                if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
                        return true;
        return false;
}

static int validate_k0s(Ctx *ctx, const AgentConfig *c, const Node *root) {
        const Node *args = section_value(root, "k0s", "args");

        for (size_t i = 0; c->k0s_args[i]; i++) {
                const char *flag, *fix;

                flag = arg_agent_flag(c->k0s_args[i], &fix);
                if (flag)
                        return ctx_error(ctx, node_item(args, i) ?: args,
                                         "'k0s.args[%zu]' sets %s, which would undo the agent: %s",
                                         i, flag, fix);
        }

        /* k0s reads K0S_TOKEN when no token file is given; both at once is ambiguous. */
        if (c->k0s_token_file && env_has(c->k0s_env, "K0S_TOKEN"))
                return ctx_error(ctx, node_get_key(section_value(root, "k0s", "env"), "K0S_TOKEN"),
                                 "'k0s.env.K0S_TOKEN' together with the token file '%s': use one; "
                                 "for K0S_TOKEN alone set 'k0s.token_file: \"\"'",
                                 c->k0s_token_file);
        return 0;
}

static int config_validate(Ctx *ctx, const AgentConfig *c, const Node *root) {
        int r;

        r = validate_registries(ctx, c, root);
        if (r < 0)
                return r;
        r = validate_timing(ctx, c, root);
        if (r < 0)
                return r;
        return validate_k0s(ctx, c, root);
}

/* ---- entry points ------------------------------------------------------------------------ */

/* Reads all of f, up to CONFIG_MAX_SIZE + 1 bytes (the extra byte tells "too big"). */
static int read_all(FILE *f, unsigned char **ret, size_t *ret_size) {
        _cleanup_free_ unsigned char *buf = NULL;
        size_t size = 0, alloc = 0;

        for (;;) {
                size_t k;

                if (size == alloc) {
                        size_t n = alloc == 0 ? 4096 : MIN(alloc * 2, (size_t) CONFIG_MAX_SIZE + 1);
                        unsigned char *b;

                        if (n == alloc)
                                break; /* read CONFIG_MAX_SIZE + 1 bytes: enough to know */
                        b = realloc(buf, n + 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        alloc = n;
                }
                k = fread(buf + size, 1, alloc - size, f);
                size += k;
                if (k == 0) {
                        if (ferror(f))
                                return errno > 0 ? -errno : -EIO;
                        break;
                }
        }
        buf[size] = 0; /* the first pass always allocated */
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int config_parse(FILE *f, const char *filename, AgentConfig **ret, char **ret_error) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_(node_freep) Node *root = NULL;
        _cleanup_free_ unsigned char *data = NULL;
        Ctx ctx = {
                .filename = filename ?: "<config>",
        };
        size_t size;
        int r;

        if (!f || !ret)
                return -EINVAL;

        r = read_all(f, &data, &size);
        if (r < 0) {
                if (r != -ENOMEM && ret_error)
                        *ret_error = strdup_printf("%s: %s", ctx.filename, strerror(-r));
                return r;
        }
        ctx.data = data;
        ctx.size = size;
        if (size > CONFIG_MAX_SIZE) {
                unsigned line, column;

                ctx_offset_to_position(&ctx, CONFIG_MAX_SIZE, &line, &column);
                r = ctx_error_at(&ctx, line, column, "file is larger than %d bytes",
                                 CONFIG_MAX_SIZE);
                if (r == -EINVAL)
                        r = -EFBIG;
                goto finish;
        }

        r = config_new_default(&c);
        if (r < 0)
                return r;
        if (filename) {
                c->path = strdup(filename);
                if (!c->path)
                        return -ENOMEM;
        }

        if (!yaml_parser_initialize(&ctx.parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&ctx.parser, data, size);
        r = ctx_load(&ctx, &root);
        yaml_parser_delete(&ctx.parser);
        if (r < 0)
                goto finish;

        if (root) {
                if (root->type != NODE_MAPPING) {
                        r = ctx_error(&ctx, root, "the top level must be a mapping, not %s",
                                      node_type_to_string(root));
                        goto finish;
                }
                r = parse_table(&ctx, "", root, &top_table, c);
                if (r < 0)
                        goto finish;
        }
        r = config_complete(c, root);
        if (r < 0)
                return r;
        r = config_validate(&ctx, c, root);
        if (r < 0)
                goto finish;

        *ret = TAKE_PTR(c);
        return 0;

finish:
        if (ret_error && ctx.error)
                *ret_error = TAKE_PTR(ctx.error);
        free(ctx.error);
        return r;
}

static void fclose_nullp(FILE **f) {
        if (*f)
                (void) fclose(*f);
}

int config_check_owner(const struct stat *st, const char *path, char **ret_error) {
        _cleanup_free_ char *owner = NULL;
        const char *writable = NULL;

        if (!st || !path)
                return -EINVAL;
        if (st->st_uid != 0) {
                owner = strdup_printf("owned by uid %u, not root", (unsigned) st->st_uid);
                if (!owner)
                        return -ENOMEM;
        }
        if ((st->st_mode & (S_IWGRP | S_IWOTH)) == (S_IWGRP | S_IWOTH))
                writable = "group- and world-writable";
        else if (st->st_mode & S_IWGRP)
                writable = "group-writable";
        else if (st->st_mode & S_IWOTH)
                writable = "world-writable";
        if (!owner && !writable)
                return 0;
        if (ret_error) {
                *ret_error = strdup_printf("%s: refusing a config file that is %s%s%s: it names "
                                           "programs the agent runs as root; fix: chown root:root "
                                           "%s; chmod go-w %s",
                                           path, owner ?: "", owner && writable ? " and " : "",
                                           writable ?: "", path, path);
                if (!*ret_error)
                        return -ENOMEM;
        }
        return -EPERM;
}

int config_load_full(const char *path, ConfigLoadFlags flags, AgentConfig **ret, char **ret_error) {
        _cleanup_(fclose_nullp) FILE *f = NULL;
        struct stat st;
        int r;

        if (!path || !ret)
                return -EINVAL;
        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                if (ret_error)
                        *ret_error = strdup_printf("%s: %s", path, strerror(-r));
                return r;
        }
        if (flags & CONFIG_LOAD_STRICT_OWNER) {
                /* fstat of what was opened: no window between the check and the read. */
                if (fstat(fileno(f), &st) < 0) {
                        r = -errno;
                        if (ret_error)
                                *ret_error = strdup_printf("%s: %s", path, strerror(-r));
                        return r;
                }
                r = config_check_owner(&st, path, ret_error);
                if (r < 0)
                        return r;
        }
        return config_parse(f, path, ret, ret_error);
}

int config_load(const char *path, AgentConfig **ret, char **ret_error) {
        return config_load_full(path, geteuid() == 0 ? CONFIG_LOAD_STRICT_OWNER : 0, ret,
                                ret_error);
}

/* ---- lint: valid, but probably not what was meant --------------------------------------- */

static int lint_add(char ***l, const AgentConfig *c, const char *fmt, ...) _printf_(3, 4);

static int lint_add(char ***l, const AgentConfig *c, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        char *line;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        line = strdup_printf("%s: %s", c->path ?: "<config>", msg);
        if (!line)
                return -ENOMEM;
        r = strv_push(l, line);
        if (r < 0)
                free(line);
        return r;
}

/* 1 if the k0s config in data sets spec.network.dualStack.enabled: true, 0 if not, -EINVAL if it
 * is not YAML this parser reads (aliases included). */
static int k0s_config_is_dual_stack(const char *data, size_t size) {
        _cleanup_(node_freep) Node *root = NULL;
        Ctx ctx = { .filename = "", .data = (const unsigned char *) data, .size = size };
        const Node *n;
        bool b;
        int r;

        if (!yaml_parser_initialize(&ctx.parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&ctx.parser, (const unsigned char *) data, size);
        r = ctx_load(&ctx, &root);
        yaml_parser_delete(&ctx.parser);
        free(ctx.error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        n = node_get(node_get(node_get(node_get(root, "spec"), "network"), "dualStack"), "enabled");
        return n && n->type == NODE_SCALAR && bool_from_string(n->value, &b) >= 0 && b;
}

static int lint_ipv6(const AgentConfig *c, char ***l) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        if (!c->k0s_ipv6)
                return 0;
        /* Workers usually have no base config: the cluster's is on the controllers. */
        r = read_file_full(c->k0s_base_config, CONFIG_MAX_SIZE, &data, &size);
        if (r == -ENOENT && !k0s_role_is_controller(c->role))
                return 0;
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return lint_add(l, c,
                                "k0s.ipv6: true, but the base config '%s' cannot be read (%s) to "
                                "check that it enables dual stack",
                                c->k0s_base_config, strerror(-r));
        r = k0s_config_is_dual_stack(data, size);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return lint_add(l, c,
                                "k0s.ipv6: true, but the base config '%s' is not YAML this check "
                                "reads; make sure it sets spec.network.dualStack.enabled: true",
                                c->k0s_base_config);
        if (r == 0)
                return lint_add(l, c,
                                "k0s.ipv6: true, but the base config '%s' does not set "
                                "spec.network.dualStack.enabled: true; kubelet gets two node "
                                "addresses on a single-stack cluster",
                                c->k0s_base_config);
        return 0;
}

static int lint_registries(const AgentConfig *c, char ***l) {
        int r;

        for (size_t i = 0; i < c->n_registries; i++)
                for (size_t j = 0; j < c->registries[i].n_endpoints; j++) {
                        const RegistryEndpoint *e = &c->registries[i].endpoints[j];

                        if (!e->skip_verify)
                                continue;
                        r = lint_add(l, c,
                                     "registries[%zu].endpoints[%zu]: skip_verify: true turns off "
                                     "TLS verification for '%s'; prefer 'ca:'",
                                     i, j, e->url ?: e->peer);
                        if (r < 0)
                                return r;
                }
        return 0;
}

static int lint_k0s(const AgentConfig *c, char ***l) {
        int r = 0;

        if (access(c->k0s_binary, X_OK) < 0)
                r = lint_add(l, c, "k0s.binary: '%s' is not an executable file (%s)", c->k0s_binary,
                             strerror(errno));
        if (r < 0)
                return r;

        if (c->role == K0S_ROLE_WORKER && !env_has(c->k0s_env, "K0S_TOKEN")) {
                if (!c->k0s_token_file)
                        r = lint_add(l, c,
                                     "k0s.token_file is empty and k0s.env has no K0S_TOKEN: a "
                                     "worker that has not joined yet cannot join");
                else if (access(c->k0s_token_file, F_OK) < 0 && errno == ENOENT)
                        r = lint_add(l, c,
                                     "k0s.token_file: '%s' does not exist; the agent does not "
                                     "start a worker's k0s until it does",
                                     c->k0s_token_file);
                if (r < 0)
                        return r;
        }

        if (c->k0s_accept_address) {
                if (!k0s_role_is_controller(c->role))
                        return lint_add(l, c, "k0s.accept_address has no effect for role %s",
                                        k0s_role_to_string(c->role));
                return lint_add(l, c,
                                "k0s.accept_address: %s is set; remove it once the etcd member "
                                "has moved, or a later address change to it is accepted "
                                "without asking",
                                c->k0s_accept_address);
        }
        return 0;
}

int config_lint(const AgentConfig *c, char ***ret_warnings) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        if (!c || !ret_warnings)
                return -EINVAL;
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        r = lint_ipv6(c, &l);
        if (r >= 0)
                r = lint_registries(c, &l);
        if (r >= 0)
                r = lint_k0s(c, &l);
        if (r < 0)
                return r;
        *ret_warnings = TAKE_PTR(l);
        return 0;
}
