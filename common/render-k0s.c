/* SPDX-License-Identifier: MIT */
/*
 * The generated k0s.yaml for controller roles: the user's base ClusterConfig (untrusted bytes)
 * with the keys the agent owns set to the tailnet facts, and the failover profile arithmetic.
 * Keys the agent does not own are kept in order; comments are not. Reading and writing files,
 * and deciding when k0s restarts, are the agent's.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "macro.h"
#include "util.h"
#include "render-k0s.h"

/* Deeper than any ClusterConfig (spec.extensions.helm.charts[].values... is about 10), shallow
 * enough that libyaml's recursive emitter cannot run out of stack. */
#define MAX_DEPTH 64

typedef struct Renderer {
        yaml_document_t doc;
        bool have_doc;
        const char *path; /* for messages */
        char *error;
        char **warnings;
        bool etcd_member;
        const AgentConfig *cfg;
} Renderer;

/* The emitter's output; libyaml's write handler can only say "failed", so OOM is remembered. */
typedef struct Buf {
        StrBuf sb;
        bool oom;
} Buf;

static int write_handler(void *userdata, unsigned char *buffer, size_t size) {
        Buf *b = userdata;

        if (strbuf_append_n(&b->sb, (const char *) buffer, size) < 0) {
                b->oom = true;
                return 0;
        }
        return 1;
}

/* Sets r->error to "WHERE: message" and returns error (-ENOMEM if that fails). */
_printf_(4, 0) static int fail_v(Renderer *r, int error, const char *where, const char *fmt,
                                 va_list ap) {
        _cleanup_free_ char *msg = NULL;

        if (!where || vasprintf(&msg, fmt, ap) < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        free(r->error);
        r->error = strdup_printf("%s: %s", where, msg);
        return r->error ? error : -ENOMEM;
}

/* "PATH:LINE:COLUMN: message"; returns -EINVAL (-ENOMEM if that fails). */
_printf_(4, 5) static int fail_at(Renderer *r, size_t line, size_t column, const char *fmt, ...) {
        _cleanup_free_ char *where = strdup_printf("%s:%zu:%zu", r->path, line, column);
        va_list ap;

        va_start(ap, fmt);
        int k = fail_v(r, -EINVAL, where, fmt, ap);
        va_end(ap);
        return k;
}

/* For errors that have no place in the file: "PATH: message". */
_printf_(3, 4) static int fail_file(Renderer *r, int error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int k = fail_v(r, error, r->path, fmt, ap);
        va_end(ap);
        return k;
}

#define fail_mark(r, mark, ...) fail_at((r), (mark).line + 1, (mark).column + 1, __VA_ARGS__)

static yaml_node_t *node_get(Renderer *r, int id) {
        return yaml_document_get_node(&r->doc, id);
}

static bool scalar_is(const yaml_node_t *n, const char *s) {
        size_t l = strlen(s);

        return n->type == YAML_SCALAR_NODE && n->data.scalar.length == l &&
                memcmp(n->data.scalar.value, s, l) == 0;
}

/* A YAML 1.1 null as Go's yaml reads it: an empty value, ~, null, or !!null. Treated like an
 * absent key, so "spec:" with nothing under it still gets the agent's keys. */
static bool node_is_null(const yaml_node_t *n) {
        if (n->type != YAML_SCALAR_NODE)
                return false;
        if (streq((const char *) n->tag, YAML_NULL_TAG))
                return true;
        if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
            !streq((const char *) n->tag, YAML_STR_TAG))
                return false;
        return scalar_is(n, "") || scalar_is(n, "~") || scalar_is(n, "null") ||
                scalar_is(n, "Null") || scalar_is(n, "NULL");
}

/* YAML 1.1 true, as Go's yaml.v2 (which k0s's config loader uses) reads a plain scalar. */
static bool node_is_true(const yaml_node_t *n) {
        static const char *const words[] = { "y",    "Y",    "yes", "Yes", "YES", "true",
                                             "True", "TRUE", "on",  "On",  "ON" };

        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        if (!streq((const char *) n->tag, YAML_STR_TAG) &&
            !streq((const char *) n->tag, YAML_BOOL_TAG))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (scalar_is(n, words[i]))
                        return true;
        return false;
}

/* A string that YAML 1.1 and 1.2 both read as that same string when written plain: starts with
 * a letter, only name characters, and not one of the bool/null words. Anything else the agent
 * writes is double-quoted, so a MagicDNS name like "on" or "1e5" cannot turn into a bool or a
 * number. */
static bool string_is_plain_safe(const char *s) {
        static const char *const words[] = { "y",     "yes", "n",   "no",  "true",
                                             "false", "on",  "off", "null" };

        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
                return false;
        for (const char *p = s; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_=/",
                            *p))
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcasecmp(s, words[i]) == 0)
                        return false;
        return true;
}

static bool string_is_ipv4(const char *s) {
        struct in_addr a;

        return inet_pton(AF_INET, s, &a) == 1;
}

/* Returns the new node's id, or -ENOMEM. */
static int add_scalar(Renderer *r, const char *value, yaml_scalar_style_t style) {
        int id;

        id = yaml_document_add_scalar(&r->doc, (yaml_char_t *) YAML_STR_TAG, (yaml_char_t *) value,
                                      (int) strlen(value), style);
        return id > 0 ? id : -ENOMEM;
}

static int add_string(Renderer *r, const char *value) {
        bool plain = string_is_ipv4(value) || string_is_plain_safe(value);

        return add_scalar(r, value,
                          plain ? YAML_PLAIN_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

/* Index of key in the mapping's pairs, -ENOENT if absent. A duplicate key is an error: YAML
 * forbids it and k0s's strict loader refuses it, and which copy counts would be a guess. */
static int mapping_find(Renderer *r, int map_id, const char *key, const char *where,
                        size_t *ret_index) {
        yaml_node_t *m = node_get(r, map_id);
        bool found = false;
        size_t index = 0;

        for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = node_get(r, p->key);

                if (!streq((const char *) k->tag, YAML_STR_TAG) || !scalar_is(k, key))
                        continue;
                if (found)
                        return fail_mark(r, k->start_mark, "duplicate key %s%s%s", where,
                                         *where ? "." : "", key);
                found = true;
                index = (size_t) (p - m->data.mapping.pairs.start);
        }
        if (!found)
                return -ENOENT;
        *ret_index = index;
        return 0;
}

/* Sets key to the node value_id, replacing an existing value in place (order kept) or appending
 * the key at the end. */
static int mapping_set(Renderer *r, int map_id, const char *key, const char *where, int value_id) {
        size_t index;
        int k;

        k = mapping_find(r, map_id, key, where, &index);
        if (k >= 0) {
                node_get(r, map_id)->data.mapping.pairs.start[index].value = value_id;
                return 0;
        }
        if (k != -ENOENT)
                return k;

        k = add_scalar(r, key, YAML_PLAIN_SCALAR_STYLE);
        if (k < 0)
                return k;
        if (!yaml_document_append_mapping_pair(&r->doc, map_id, k, value_id))
                return -ENOMEM;
        return 0;
}

static int mapping_set_string(Renderer *r, int map_id, const char *key, const char *where,
                              const char *value, bool quote) {
        int id;

        id = quote ? add_scalar(r, value, YAML_DOUBLE_QUOTED_SCALAR_STYLE) : add_string(r, value);
        if (id < 0)
                return id;
        return mapping_set(r, map_id, key, where, id);
}

/* The id of the value of key in the mapping (where is its dotted path, for messages), or 0 if
 * the key is absent or null. */
static int mapping_get(Renderer *r, int map_id, const char *key, const char *where, int *ret_id) {
        size_t index;
        int k, id;

        k = mapping_find(r, map_id, key, where, &index);
        if (k == -ENOENT) {
                *ret_id = 0;
                return 0;
        }
        if (k < 0)
                return k;
        id = node_get(r, map_id)->data.mapping.pairs.start[index].value;
        *ret_id = node_is_null(node_get(r, id)) ? 0 : id;
        return 0;
}

/* The mapping or sequence under key, made (and put in place of a null) when absent. A value of
 * another type is an error at that value. */
static int mapping_child(Renderer *r, int map_id, const char *key, const char *where,
                         yaml_node_type_t type, bool create, int *ret_id) {
        yaml_node_t *n;
        int k, id;

        k = mapping_get(r, map_id, key, where, &id);
        if (k < 0)
                return k;
        if (id == 0) {
                if (!create) {
                        *ret_id = 0;
                        return 0;
                }
                if (type == YAML_MAPPING_NODE)
                        id = yaml_document_add_mapping(&r->doc, (yaml_char_t *) YAML_MAP_TAG,
                                                       YAML_BLOCK_MAPPING_STYLE);
                else
                        id = yaml_document_add_sequence(&r->doc, (yaml_char_t *) YAML_SEQ_TAG,
                                                        YAML_BLOCK_SEQUENCE_STYLE);
                if (id <= 0)
                        return -ENOMEM;
                k = mapping_set(r, map_id, key, where, id);
                if (k < 0)
                        return k;
                *ret_id = id;
                return 0;
        }

        n = node_get(r, id);
        if (n->type != type)
                return fail_mark(r, n->start_mark, "%s%s%s must be a %s", where, *where ? "." : "",
                                 key, type == YAML_MAPPING_NODE ? "mapping" : "sequence");
        *ret_id = id;
        return 0;
}

/* The value of a key that must be a string, NULL if absent or null. */
static int mapping_get_string(Renderer *r, int map_id, const char *key, const char *where,
                              const yaml_node_t **ret) {
        yaml_node_t *n;
        int k, id;

        k = mapping_get(r, map_id, key, where, &id);
        if (k < 0)
                return k;
        if (id == 0) {
                *ret = NULL;
                return 0;
        }
        n = node_get(r, id);
        if (n->type != YAML_SCALAR_NODE)
                return fail_mark(r, n->start_mark, "%s.%s must be a string", where, key);
        *ret = n;
        return 0;
}

static int sequence_append_unique(Renderer *r, int seq_id, const char *value, const char *where) {
        yaml_node_t *s = node_get(r, seq_id);
        int id;

        for (yaml_node_item_t *i = s->data.sequence.items.start; i < s->data.sequence.items.top;
             i++) {
                yaml_node_t *n = node_get(r, *i);

                if (n->type != YAML_SCALAR_NODE)
                        return fail_mark(r, n->start_mark, "%s entries must be strings", where);
                if (scalar_is(n, value))
                        return 0;
        }

        id = add_string(r, value);
        if (id < 0)
                return id;
        if (!yaml_document_append_sequence_item(&r->doc, seq_id, id))
                return -ENOMEM;
        return 0;
}

/* Tags: untagged nodes get the default tag, which the emitter leaves implicit. A scalar that was
 * a string only because of its tag ("!!str 123", "! 123") becomes a double-quoted one. The YAML
 * 1.1 core tags are kept. Others mean nothing to k0s and are refused: libyaml's emitter writes
 * some of them ("!!a,b") in a form its own parser does not read back. */
static int resolve_tag(Renderer *r, const yaml_event_t *e, const yaml_char_t *tag,
                       const char *default_tag, const char **ret_tag) {
        static const char *const known[] = {
                YAML_NULL_TAG, YAML_BOOL_TAG,  YAML_STR_TAG,
                YAML_INT_TAG,  YAML_FLOAT_TAG, YAML_TIMESTAMP_TAG,
                YAML_SEQ_TAG,  YAML_MAP_TAG,   "tag:yaml.org,2002:binary"
        };
        const char *t = (const char *) tag;

        if (!t || streq(t, "!")) {
                *ret_tag = default_tag;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (streq(t, known[i])) {
                        *ret_tag = known[i];
                        return 0;
                }
        return fail_mark(r, e->start_mark, "YAML tag '%s' is not supported", t);
}

typedef struct Frame {
        int id;
        int key; /* mappings: the key waiting for its value, 0 for none */
} Frame;

/* Hangs node id under the innermost open collection, or makes it the root. */
static int attach(Renderer *r, Frame *stack, size_t depth, int id) {
        Frame *f;

        if (depth == 0)
                return 0; /* the first node of the document is its root */
        f = &stack[depth - 1];
        if (node_get(r, f->id)->type == YAML_SEQUENCE_NODE)
                return yaml_document_append_sequence_item(&r->doc, f->id, id) ? 0 : -ENOMEM;
        if (f->key == 0) {
                f->key = id;
                return 0;
        }
        if (!yaml_document_append_mapping_pair(&r->doc, f->id, f->key, id))
                return -ENOMEM;
        f->key = 0;
        return 0;
}

static int parser_fail(Renderer *r, const yaml_parser_t *p, const char *base, size_t base_len) {
        const char *problem = p->problem ?: "invalid YAML";

        switch (p->error) {
        case YAML_MEMORY_ERROR:
                return -ENOMEM;
        case YAML_READER_ERROR: {
                /* The reader reports a byte offset (bad UTF-8, control characters), not a mark. */
                size_t line = 1, column = 1, end = MIN(p->problem_offset, base_len);

                for (size_t i = 0; i < end; i++) {
                        if (base[i] == '\n') {
                                line++;
                                column = 1;
                        } else
                                column++;
                }
                return fail_at(r, line, column, "%s", problem);
        }
        case YAML_SCANNER_ERROR:
        case YAML_PARSER_ERROR:
        case YAML_COMPOSER_ERROR:
                if (p->context)
                        return fail_mark(r, p->problem_mark, "%s (%s started at %zu:%zu)", problem,
                                         p->context, p->context_mark.line + 1,
                                         p->context_mark.column + 1);
                return fail_mark(r, p->problem_mark, "%s", problem);
        case YAML_NO_ERROR:
        case YAML_WRITER_ERROR:
        case YAML_EMITTER_ERROR:
                break;
        }
        return fail_at(r, 1, 1, "%s", problem);
}

static int handle_event(Renderer *r, const yaml_event_t *e, Frame *stack, size_t *depth,
                        bool *done) {
        const char *tag;
        int k, id = 0;

        switch (e->type) {
        case YAML_NO_EVENT:
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
                return 0;
        case YAML_STREAM_END_EVENT:
                *done = true;
                return 0;
        case YAML_DOCUMENT_START_EVENT:
                if (r->have_doc)
                        return fail_mark(r, e->start_mark,
                                         "more than one YAML document; k0s reads one");
                r->have_doc = true;
                return 0;
        case YAML_ALIAS_EVENT:
                return fail_mark(r, e->start_mark, "YAML aliases (*%s) are not supported",
                                 (const char *) e->data.alias.anchor);
        case YAML_SCALAR_EVENT: {
                yaml_scalar_style_t style = e->data.scalar.style;

                k = resolve_tag(r, e, e->data.scalar.tag, YAML_STR_TAG, &tag);
                if (k < 0)
                        return k;
                if (e->data.scalar.tag && streq(tag, YAML_STR_TAG) &&
                    style == YAML_PLAIN_SCALAR_STYLE)
                        style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
                if (e->data.scalar.length > INT32_MAX)
                        return -ENOMEM;
                if (!e->data.scalar.tag && style == YAML_PLAIN_SCALAR_STYLE &&
                    e->data.scalar.length == 0) {
                        /* An empty value ("key:") is null. libyaml writes an empty plain scalar
                         * in flow context as '', a string: spell the null out instead. */
                        id = yaml_document_add_scalar(&r->doc, (yaml_char_t *) tag,
                                                      (yaml_char_t *) "null", 4, style);
                        break;
                }
                id = yaml_document_add_scalar(&r->doc, (yaml_char_t *) tag, e->data.scalar.value,
                                              (int) e->data.scalar.length, style);
                break;
        }
        case YAML_SEQUENCE_START_EVENT:
                if (*depth >= MAX_DEPTH)
                        return fail_mark(r, e->start_mark, "nested deeper than %d levels",
                                         MAX_DEPTH);
                k = resolve_tag(r, e, e->data.sequence_start.tag, YAML_SEQ_TAG, &tag);
                if (k < 0)
                        return k;
                id = yaml_document_add_sequence(&r->doc, (yaml_char_t *) tag,
                                                e->data.sequence_start.style);
                break;
        case YAML_MAPPING_START_EVENT:
                if (*depth >= MAX_DEPTH)
                        return fail_mark(r, e->start_mark, "nested deeper than %d levels",
                                         MAX_DEPTH);
                k = resolve_tag(r, e, e->data.mapping_start.tag, YAML_MAP_TAG, &tag);
                if (k < 0)
                        return k;
                id = yaml_document_add_mapping(&r->doc, (yaml_char_t *) tag,
                                               e->data.mapping_start.style);
                break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                if (*depth > 0)
                        (*depth)--;
                return 0;
        }

        if (id <= 0)
                return -ENOMEM;
        /* Marks for messages about this node later on; libyaml's add functions take none. */
        node_get(r, id)->start_mark = e->start_mark;

        k = attach(r, stack, *depth, id);
        if (k < 0)
                return k;
        if (e->type != YAML_SCALAR_EVENT)
                stack[(*depth)++] = (Frame){ .id = id };
        return 0;
}

/* Events -> r->doc, rather than yaml_parser_load(), so aliases, unknown tags and deep nesting
 * are refused before they are built. */
static int load_base(Renderer *r, const char *base, size_t base_len) {
        Frame stack[MAX_DEPTH] = {};
        size_t depth = 0;
        yaml_parser_t parser;
        bool done = false;
        int k = 0;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) base, base_len);

        while (!done) {
                yaml_event_t event;

                if (!yaml_parser_parse(&parser, &event)) {
                        k = parser_fail(r, &parser, base, base_len);
                        break;
                }
                k = handle_event(r, &event, stack, &depth, &done);
                yaml_event_delete(&event);
                if (k < 0)
                        break;
        }

        yaml_parser_delete(&parser);
        return k;
}

/* The ClusterConfig k0s would read from an empty file, spelled out. */
static int make_minimal(Renderer *r) {
        int root, metadata, k;

        root = yaml_document_add_mapping(&r->doc, (yaml_char_t *) YAML_MAP_TAG,
                                         YAML_BLOCK_MAPPING_STYLE);
        if (root <= 0)
                return -ENOMEM;
        k = mapping_set_string(r, root, "apiVersion", "", "k0s.k0sproject.io/v1beta1", false);
        if (k < 0)
                return k;
        k = mapping_set_string(r, root, "kind", "", "ClusterConfig", false);
        if (k < 0)
                return k;
        k = mapping_child(r, root, "metadata", "", YAML_MAPPING_NODE, true, &metadata);
        if (k < 0)
                return k;
        return mapping_set_string(r, metadata, "name", "metadata", "k0s", false);
}

static int pin_api(Renderer *r, int spec, const K0sFacts *facts) {
        int api, sans, k;

        k = mapping_child(r, spec, "api", "spec", YAML_MAPPING_NODE, true, &api);
        if (k < 0)
                return k;
        k = mapping_set_string(r, api, "address", "spec.api", facts->ipv4, false);
        if (k < 0)
                return k;
        k = mapping_child(r, api, "sans", "spec.api", YAML_SEQUENCE_NODE, true, &sans);
        if (k < 0)
                return k;
        k = sequence_append_unique(r, sans, facts->ipv4, "spec.api.sans");
        if (k < 0)
                return k;
        if (facts->ipv6) {
                k = sequence_append_unique(r, sans, facts->ipv6, "spec.api.sans");
                if (k < 0)
                        return k;
        }
        if (!isempty(facts->dns_name))
                return sequence_append_unique(r, sans, facts->dns_name, "spec.api.sans");
        return 0;
}

static int pin_storage(Renderer *r, int spec, const AgentConfig *cfg, const K0sFacts *facts) {
        const yaml_node_t *type;
        int storage, etcd, external, k;
        bool is_etcd;

        k = mapping_child(r, spec, "storage", "spec", YAML_MAPPING_NODE, false, &storage);
        if (k < 0)
                return k;
        type = NULL;
        if (storage != 0) {
                k = mapping_get_string(r, storage, "type", "spec.storage", &type);
                if (k < 0)
                        return k;
        }
        /* Without a type k0s uses etcd, except `--single`, which defaults to kine
         * (pkg/config/cfgvars.go NodeConfig, DefaultStorageType). */
        if (type)
                is_etcd = scalar_is(type, "etcd");
        else
                is_etcd = cfg->role != K0S_ROLE_SINGLE;
        if (!is_etcd)
                return 0;

        k = mapping_child(r, spec, "storage", "spec", YAML_MAPPING_NODE, true, &storage);
        if (k < 0)
                return k;
        k = mapping_child(r, storage, "etcd", "spec.storage", YAML_MAPPING_NODE, true, &etcd);
        if (k < 0)
                return k;
        /* An external etcd has no member on this node (`k0s etcd` refuses it, cmd/etcd/etcd.go). */
        k = mapping_get(r, etcd, "externalCluster", "spec.storage.etcd", &external);
        if (k < 0)
                return k;
        r->etcd_member = external == 0;
        return mapping_set_string(r, etcd, "peerAddress", "spec.storage.etcd", facts->ipv4, false);
}

/* envVars is map[string]string: quoted, or YAML would read 0xff00ff00 as a number. */
static int pin_calico_env(Renderer *r, int calico, const AgentConfig *cfg, const char *method) {
        static const char where[] = "spec.network.calico.envVars";
        size_t index;
        int env, k;

        if (isempty(cfg->calico_mark_mask) && isempty(cfg->calico_nftables_mark_mask))
                return 0;
        k = mapping_child(r, calico, "envVars", "spec.network.calico", YAML_MAPPING_NODE, true,
                          &env);
        if (k < 0)
                return k;
        if (!isempty(cfg->calico_mark_mask)) {
                k = mapping_set_string(r, env, "FELIX_IPTABLESMARKMASK", where,
                                       cfg->calico_mark_mask, true);
                if (k < 0)
                        return k;
        }
        /* Felix in nftables mode (kube-proxy nftables) reads its own mask, whose default
         * 0xffff0000 overlaps tailscale's 0xff0000 (facts/k0s.md, Calico mark masks). */
        if (!isempty(cfg->calico_nftables_mark_mask)) {
                k = mapping_set_string(r, env, "FELIX_NFTABLESMARKMASK", where,
                                       cfg->calico_nftables_mark_mask, true);
                if (k < 0)
                        return k;
        }

        /* envVars come after k0s's own env in the DaemonSet, so a base that sets the variable
         * there would win over ipAutodetectionMethod: make it say the same. */
        k = mapping_find(r, env, "IP_AUTODETECTION_METHOD", where, &index);
        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return k;
        return mapping_set_string(r, env, "IP_AUTODETECTION_METHOD", where, method, true);
}

static int pin_calico(Renderer *r, int network, const AgentConfig *cfg) {
        _cleanup_free_ char *method = NULL;
        int calico, k;

        k = mapping_child(r, network, "calico", "spec.network", YAML_MAPPING_NODE, true, &calico);
        if (k < 0)
                return k;
        method = strdup_printf("interface=%s", cfg->interface);
        if (!method)
                return -ENOMEM;
        k = mapping_set_string(r, calico, "ipAutodetectionMethod", "spec.network.calico", method,
                               false);
        if (k < 0)
                return k;

        if (cfg->calico_mtu > 0) {
                char buf[sizeof(unsigned) * 3 + 1];
                int id;

                (void) snprintf(buf, sizeof(buf), "%u", cfg->calico_mtu);
                id = add_scalar(r, buf, YAML_PLAIN_SCALAR_STYLE);
                if (id < 0)
                        return id;
                k = mapping_set(r, calico, "mtu", "spec.network.calico", id);
                if (k < 0)
                        return k;
        }
        return pin_calico_env(r, calico, cfg, method);
}

/* The node-local load balancer is independent of the CNI: pin its type whatever the provider. */
static int pin_nllb(Renderer *r, int network) {
        static const char where[] = "spec.network.nodeLocalLoadBalancing";
        const yaml_node_t *type;
        int nllb, id, k;

        k = mapping_child(r, network, "nodeLocalLoadBalancing", "spec.network", YAML_MAPPING_NODE,
                          false, &nllb);
        if (k < 0 || nllb == 0)
                return k;
        k = mapping_get(r, nllb, "enabled", where, &id);
        if (k < 0)
                return k;
        k = mapping_get_string(r, nllb, "type", where, &type);
        if (k < 0)
                return k;
        if (id != 0 && node_is_true(node_get(r, id)) && !type)
                return mapping_set_string(r, nllb, "type", where, "EnvoyProxy", false);
        return 0;
}

static int pin_network(Renderer *r, int spec, const AgentConfig *cfg) {
        const yaml_node_t *provider;
        int network, k;

        k = mapping_child(r, spec, "network", "spec", YAML_MAPPING_NODE, true, &network);
        if (k < 0)
                return k;
        k = pin_nllb(r, network);
        if (k < 0)
                return k;

        k = mapping_get_string(r, network, "provider", "spec.network", &provider);
        if (k < 0)
                return k;
        if (provider && scalar_is(provider, "calico"))
                return pin_calico(r, network, cfg);

        /* The provider is never written: k0s's default is kube-router (DefaultNetwork() and
         * Network.UnmarshalJSON in pkg/apis/k0s/v1beta1/network.go), and k0s refuses to switch the
         * CNI of an installed cluster (pkg/component/controller/calico.go), so writing calico
         * would change nothing on an existing cluster and surprise a new one. */
        if (!provider || scalar_is(provider, "kuberouter"))
                return strv_extendf(
                        &r->warnings,
                        "%s: spec.network.provider is %s, and kube-router cannot be pinned to an "
                        "interface (it follows the node IP, --node-ip, which the agent pins to "
                        "%s); to pin the CNI to %s set spec.network.provider: calico in %s before "
                        "the cluster is installed (k0s cannot change the CNI of an installed "
                        "cluster)",
                        r->path, provider ? "kuberouter" : "not set (k0s's default: kuberouter)",
                        cfg->interface, cfg->interface, r->path);
        if (scalar_is(provider, "custom"))
                return strv_extendf(&r->warnings,
                                    "%s: spec.network.provider is custom; the agent cannot pin a "
                                    "custom CNI to %s, configure its interface yourself",
                                    r->path, cfg->interface);
        return strv_extendf(&r->warnings,
                            "%s: spec.network.provider is not calico, kuberouter or custom; left "
                            "alone, and k0s will refuse it",
                            r->path);
}

/* True when one of k0s.args sets `flag` inside --kube-controller-manager-extra-args, which k0s
 * merges before spec.controllerManager.extraArgs (pkg/component/controller/controllermanager.go):
 * the user's value must win there too. */
static bool args_set_controller_manager_flag(const AgentConfig *cfg, const char *flag) {
        for (char **a = cfg->k0s_args; a && *a; a++)
                if (startswith(*a, "--kube-controller-manager-extra-args") && strstr(*a, flag))
                        return true;
        return false;
}

/* spec.<section>.extraArgs.<key> = value, unless the user set it: theirs wins, with a warning. */
static int set_extra_arg(Renderer *r, int parent, const char *section, const char *key,
                         unsigned value, bool user_set) {
        _cleanup_free_ char *where = strdup_printf("spec.%s", section);
        _cleanup_free_ char *where_args = strdup_printf("spec.%s.extraArgs", section);
        char buf[sizeof(unsigned) * 3 + 2];
        size_t index;
        int extra, k;

        if (!where || !where_args)
                return -ENOMEM;
        k = mapping_child(r, parent, "extraArgs", where, YAML_MAPPING_NODE, !user_set, &extra);
        if (k < 0)
                return k;
        /* Durations for the controller manager, plain seconds for the API server's flags. */
        (void) snprintf(buf, sizeof(buf), streq(section, "api") ? "%u" : "%us", value);
        if (!user_set && extra != 0) {
                k = mapping_find(r, extra, key, where_args, &index);
                if (k < 0 && k != -ENOENT)
                        return k;
                /* The same value (a render fed back, or the user agreeing) says nothing. */
                if (k >= 0 &&
                    scalar_is(
                            node_get(r, node_get(r, extra)->data.mapping.pairs.start[index].value),
                            buf))
                        return 0;
                user_set = k >= 0;
        }
        if (user_set)
                return strv_extendf(&r->warnings,
                                    "%s: %s.%s is set by the user and wins over failover.target "
                                    "(which asks for %s); the target may not be met",
                                    r->path, where_args, key, buf);
        return mapping_set_string(r, extra, key, where_args, buf, true);
}

static int pin_failover(Renderer *r, int spec, const FailoverProfile *fp) {
        int api, cm, k;

        k = mapping_child(r, spec, "api", "spec", YAML_MAPPING_NODE, true, &api);
        if (k < 0)
                return k;
        k = set_extra_arg(r, api, "api", "default-not-ready-toleration-seconds", fp->toleration_sec,
                          false);
        if (k < 0)
                return k;
        k = set_extra_arg(r, api, "api", "default-unreachable-toleration-seconds",
                          fp->toleration_sec, false);
        if (k < 0)
                return k;
        k = mapping_child(r, spec, "controllerManager", "spec", YAML_MAPPING_NODE, true, &cm);
        if (k < 0)
                return k;
        return set_extra_arg(r, cm, "controllerManager", "node-monitor-grace-period", fp->grace_sec,
                             args_set_controller_manager_flag(r->cfg, "node-monitor-grace-period"));
}

static int apply_facts(Renderer *r, const AgentConfig *cfg, const K0sFacts *facts) {
        int spec, k;

        k = mapping_child(r, 1, "spec", "", YAML_MAPPING_NODE, true, &spec);
        if (k < 0)
                return k;
        k = pin_api(r, spec, facts);
        if (k < 0)
                return k;
        k = pin_storage(r, spec, cfg, facts);
        if (k < 0)
                return k;
        k = pin_network(r, spec, cfg);
        if (k < 0)
                return k;
        return facts->failover ? pin_failover(r, spec, facts->failover) : 0;
}

/* The header names the file it came from; control characters in a path must not end the
 * comment line. */
static int append_header(Buf *b, const char *base_path, const char *ipv4) {
        _cleanup_free_ char *from = NULL, *text = NULL;

        from = strdup(base_path);
        if (!from)
                return -ENOMEM;
        for (char *p = from; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = '?';

        text = strdup_printf("# Generated by k0s-tsagent from %s, for %s; do not edit.\n"
                             "# Edit the base file instead. Its comments are not carried over.\n",
                             from, ipv4);
        if (!text)
                return -ENOMEM;
        return strbuf_append(&b->sb, text);
}

/* Writes the document to b. *consumed tells whether libyaml took the document (it frees it in
 * yaml_emitter_dump(), on failure too). */
static int emit(Renderer *r, Buf *b, bool *consumed) {
        yaml_emitter_t emitter;
        int k = 0;

        *consumed = false;
        if (!yaml_emitter_initialize(&emitter))
                return -ENOMEM;
        yaml_emitter_set_output(&emitter, write_handler, b);
        yaml_emitter_set_encoding(&emitter, YAML_UTF8_ENCODING);
        yaml_emitter_set_unicode(&emitter, 1);
        yaml_emitter_set_indent(&emitter, 2);
        yaml_emitter_set_width(&emitter, -1); /* never fold long strings */
        yaml_emitter_set_break(&emitter, YAML_LN_BREAK);

        if (!yaml_emitter_open(&emitter)) {
                yaml_emitter_delete(&emitter);
                return -ENOMEM;
        }
        *consumed = true;
        if (!yaml_emitter_dump(&emitter, &r->doc) || !yaml_emitter_close(&emitter)) {
                if (emitter.error == YAML_MEMORY_ERROR || b->oom)
                        k = -ENOMEM;
                else
                        k = fail_file(r, -EINVAL, "cannot write YAML: %s",
                                      emitter.problem ?: "unknown error");
        }
        yaml_emitter_delete(&emitter);
        return k;
}

/* r->doc from the base (or the minimal config for none, "---" alone or "~"). On success and on
 * failure *initialized says whether r->doc must be deleted. */
static int load_document(Renderer *r, const char *base, size_t base_len, bool *initialized) {
        yaml_node_t *root;
        int k;

        if (!yaml_document_initialize(&r->doc, NULL, NULL, NULL, 1, 1))
                return -ENOMEM;
        *initialized = true;
        if (base) {
                k = load_base(r, base, base_len);
                if (k < 0)
                        return k;
        }

        root = yaml_document_get_root_node(&r->doc);
        if (root && node_is_null(root)) {
                /* "---" alone, or "~": no settings, like an empty file. */
                yaml_document_delete(&r->doc);
                *initialized = false;
                if (!yaml_document_initialize(&r->doc, NULL, NULL, NULL, 1, 1))
                        return -ENOMEM;
                *initialized = true;
                root = NULL;
        }
        if (!root)
                return make_minimal(r);
        if (root->type != YAML_MAPPING_NODE)
                return fail_mark(r, root->start_mark, "the document must be a mapping");
        return 0;
}

static int check_facts(Renderer *r, const K0sFacts *facts) {
        struct in6_addr a6;

        if (!facts->ipv4 || !string_is_ipv4(facts->ipv4))
                return fail_file(r, -EINVAL, "tailnet address '%s' is not an IPv4 address",
                                 facts->ipv4 ?: "(null)");
        if (facts->ipv6 && inet_pton(AF_INET6, facts->ipv6, &a6) != 1)
                return fail_file(r, -EINVAL, "tailnet address '%s' is not an IPv6 address",
                                 facts->ipv6);
        return 0;
}

void k0s_render_notes_done(K0sRenderNotes *n) {
        if (!n)
                return;
        n->warnings = strv_free(n->warnings);
        n->etcd_member = false;
}

int render_k0s_config(const char *base, size_t base_len, const char *base_path,
                      const AgentConfig *cfg, const K0sFacts *facts, char **ret_yaml,
                      K0sRenderNotes *ret_notes, char **ret_error) {
        Renderer r = { .path = base_path ?: "k0s.yaml", .cfg = cfg };
        Buf out = {};
        bool doc_initialized = false, consumed;
        int k;

        if (!cfg || !facts || !ret_yaml || isempty(cfg->interface))
                return -EINVAL;
        k = check_facts(&r, facts);
        if (k < 0)
                goto finish;
        if (base && base_len > RENDER_K0S_MAX_BASE_SIZE) {
                k = fail_file(&r, -EFBIG, "larger than %u bytes", RENDER_K0S_MAX_BASE_SIZE);
                goto finish;
        }

        k = load_document(&r, base, base_len, &doc_initialized);
        if (k < 0)
                goto finish;
        k = apply_facts(&r, cfg, facts);
        if (k < 0)
                goto finish;

        k = append_header(&out, base ? r.path : "built-in defaults", facts->ipv4);
        if (k < 0)
                goto finish;
        k = emit(&r, &out, &consumed);
        if (consumed)
                doc_initialized = false;
        if (k < 0)
                goto finish;

        *ret_yaml = TAKE_PTR(out.sb.s);
        if (ret_notes)
                *ret_notes = (K0sRenderNotes){ .warnings = TAKE_PTR(r.warnings),
                                               .etcd_member = r.etcd_member };
        k = 0;

finish:
        if (doc_initialized)
                yaml_document_delete(&r.doc);
        if (k < 0 && k != -ENOMEM && ret_error)
                *ret_error = TAKE_PTR(r.error);
        strbuf_done(&out.sb);
        free(r.error);
        strv_free(r.warnings);
        return k;
}

/*
 * failover.target T -> Kubernetes timings (whole seconds). From "site dies" to "pods deleted":
 *   the node controller notices within G (node-monitor-grace-period) of the last heartbeat plus
 *   one P (node-monitor-period, 5 s, kept), taints the node unreachable:NoExecute, and the taint
 *   eviction controller deletes pods E (default-unreachable-toleration-seconds) later; the
 *   ReplicaSet controller recreates them within about a second. So G + P + E <= T.
 * The heartbeat the node controller sees is kubelet's node Lease, renewed every
 *   nodeLeaseDurationSeconds / 4 = 10 s (kubelet defaults; k0s's kubelet config file sets
 *   neither, pkg/component/worker/kubelet.go, and a --node-status-update-frequency flag does not
 *   change the status report frequency once the config file is defaulted). G >= 4 x 10 s keeps a
 *   node on a lossy link from flapping: four renewals in a row must fail. G grows with T up to
 *   50 s, Kubernetes' own default since 1.32. E = not-ready = unreachable toleration, at least
 *   5 s (a kubelet or containerd restart that reports NotReady for a moment keeps its pods), and
 *   G + 2 E <= T as well, so even the sum of all three flags stays within the target.
 * The kubelet's node-status-update-frequency U = G / 4 (2..10 s): a node's own NotReady is
 *   posted within a quarter of the grace period.
 */
int failover_profile_compute(uint64_t target_usec, FailoverProfile *ret) {
        const uint64_t heartbeat = 10, period = 5, tol_min = 5;
        uint64_t t, grace, tol;

        if (!ret || target_usec < FAILOVER_TARGET_MIN_USEC)
                return -EINVAL;
        t = target_usec / UINT64_C(1000000);

        grace = (t - period) * 3 / 4;
        grace = MIN(grace, UINT64_C(50));
        grace = MAX(grace, 4 * heartbeat);

        tol = t > grace + period ? t - grace - period : 0;
        tol = MIN(tol, t > grace ? (t - grace) / 2 : 0);
        tol = MIN(tol, UINT64_C(300)); /* Kubernetes' default: never slower than without a target */
        tol = MAX(tol, tol_min);

        *ret = (FailoverProfile){
                .monitor_period_sec = (unsigned) period,
                .grace_sec = (unsigned) grace,
                .toleration_sec = (unsigned) tol,
                .update_sec = (unsigned) MAX(MIN(grace / 4, UINT64_C(10)), UINT64_C(2)),
        };
        return 0;
}
