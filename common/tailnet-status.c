/* SPDX-License-Identifier: MIT */
/*
 * Decodes tailscaled's LocalAPI bodies: GET /localapi/v0/status and single watch-ipn-bus NDJSON
 * lines, into plain structs. Owns only the decoding and the "really connected" predicate; the
 * HTTP transport and what to do with the result live in agent/tailnet.c. Input is untrusted:
 * size-limited, unknown keys and wrong-typed optional fields are ignored, never a crash.
 */

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"
#include "tailnet-status.h"

/* A real tailnet visible to one node has far fewer peers; past this the body is not believable
 * and the peer array would only cost memory. */
#define TAILNET_STATUS_MAX_PEERS 100000u

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);
DEFINE_TRIVIAL_CLEANUP_FUNC(TailnetStatus *, tailnet_status_free);

/* The comments are ipn.State's integer values, as the bus sends them. */
static const char *const backend_state_table[_BACKEND_STATE_MAX] = {
        [BACKEND_NO_STATE] = "NoState", /* 0 */
        [BACKEND_IN_USE_OTHER_USER] = "InUseOtherUser", /* 1 */
        [BACKEND_NEEDS_LOGIN] = "NeedsLogin", /* 2 */
        [BACKEND_NEEDS_MACHINE_AUTH] = "NeedsMachineAuth", /* 3 */
        [BACKEND_STOPPED] = "Stopped", /* 4 */
        [BACKEND_STARTING] = "Starting", /* 5 */
        [BACKEND_RUNNING] = "Running", /* 6 */
};

const char *backend_state_to_string(BackendState s) {
        if (s < 0 || s >= _BACKEND_STATE_MAX)
                return NULL;
        return backend_state_table[s];
}

BackendState backend_state_from_string(const char *s) {
        if (!s)
                return _BACKEND_STATE_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(backend_state_table); i++)
                if (streq(backend_state_table[i], s))
                        return (BackendState) i;
        return _BACKEND_STATE_INVALID;
}

/* JSON's own whitespace, not isspace(): NUL, \v and \f are not allowed between values. */
static bool json_is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* cJSON stops at the end of the first value, so anything but whitespace after it means the
 * bytes are not one JSON document (e.g. two bus lines glued together). */
static int json_parse_bytes(const char *data, size_t len, size_t max, cJSON **ret) {
        const char *end = NULL;
        cJSON *root;

        if (!data || len == 0)
                return -EINVAL;
        if (len > max)
                return -EFBIG;

        root = cJSON_ParseWithLengthOpts(data, len, &end, false);
        if (!root)
                return -EINVAL;
        for (const char *p = end; p && p < data + len; p++)
                if (!json_is_space(*p)) {
                        cJSON_Delete(root);
                        return -EINVAL;
                }
        if (!cJSON_IsObject(root)) {
                cJSON_Delete(root);
                return -EINVAL;
        }

        *ret = root;
        return 0;
}

/* Copy of a string member; absent, null, wrong-typed and empty all mean "not set" (NULL). */
static int json_dup_string(const cJSON *obj, const char *key, char **ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
        char *s = NULL;

        if (cJSON_IsString(v) && !isempty(v->valuestring)) {
                s = strdup(v->valuestring);
                if (!s)
                        return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/* Like json_dup_string(), for FQDNs: tailscale writes them with a trailing dot, we do not. */
static int json_dup_dns_name(const cJSON *obj, const char *key, char **ret) {
        _cleanup_free_ char *s = NULL;
        size_t n;
        int r;

        r = json_dup_string(obj, key, &s);
        if (r < 0)
                return r;
        if (s) {
                /* All of them: "a.." must not come out as "a." and fail a later comparison. */
                n = strlen(s);
                while (n > 0 && s[n - 1] == '.')
                        s[--n] = '\0';
                if (n == 0) {
                        free(s);
                        s = NULL;
                }
        }
        *ret = TAKE_PTR(s);
        return 0;
}

static bool json_get_bool(const cJSON *obj, const char *key) {
        return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* First valid IPv4 and first valid IPv6 of a TailscaleIPs array, in canonical text form so they
 * compare equal to what netlink reports. Invalid entries (zones, prefixes, junk) are skipped. */
static int parse_tailscale_ips(const cJSON *obj, char **ret_ipv4, char **ret_ipv6) {
        _cleanup_free_ char *ipv4 = NULL, *ipv6 = NULL;
        const cJSON *ips = cJSON_GetObjectItemCaseSensitive(obj, "TailscaleIPs");
        const cJSON *ip;

        if (cJSON_IsArray(ips))
                cJSON_ArrayForEach(ip, ips) {
                        char buf[INET6_ADDRSTRLEN];
                        union {
                                struct in_addr in;
                                struct in6_addr in6;
                        } a;

                        if (!cJSON_IsString(ip))
                                continue;
                        if (!ipv4 && inet_pton(AF_INET, ip->valuestring, &a.in) == 1) {
                                if (!inet_ntop(AF_INET, &a.in, buf, sizeof(buf)))
                                        return -errno;
                                ipv4 = strdup(buf);
                                if (!ipv4)
                                        return -ENOMEM;
                        } else if (!ipv6 && inet_pton(AF_INET6, ip->valuestring, &a.in6) == 1) {
                                if (!inet_ntop(AF_INET6, &a.in6, buf, sizeof(buf)))
                                        return -errno;
                                ipv6 = strdup(buf);
                                if (!ipv6)
                                        return -ENOMEM;
                        }
                        if (ipv4 && ipv6)
                                break;
                }

        *ret_ipv4 = TAKE_PTR(ipv4);
        *ret_ipv6 = TAKE_PTR(ipv6);
        return 0;
}

static void tailnet_peer_done(TailnetPeer *p) {
        free(p->dns_name);
        free(p->host_name);
        free(p->cur_addr);
        free(p->relay);
        free(p->ipv4);
        free(p->ipv6);
        *p = (TailnetPeer){};
}

static int parse_peer(const cJSON *obj, TailnetPeer *ret) {
        TailnetPeer p = {};
        int r;

        r = json_dup_dns_name(obj, "DNSName", &p.dns_name);
        if (r >= 0)
                r = json_dup_string(obj, "HostName", &p.host_name);
        if (r >= 0)
                r = parse_tailscale_ips(obj, &p.ipv4, &p.ipv6);
        if (r < 0) {
                tailnet_peer_done(&p);
                return r;
        }
        p.online = json_get_bool(obj, "Online");

        *ret = p;
        return 0;
}

/* "Peer" is a map keyed by node key; the keys carry nothing we use. null (?peers=false) and
 * wrong types mean no peers; non-object values are skipped. */
static int parse_peers(const cJSON *root, TailnetStatus *s) {
        const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "Peer");
        const cJSON *v;
        size_t allocated = 0;
        int r;

        if (!cJSON_IsObject(map))
                return 0;

        cJSON_ArrayForEach(v, map) {
                if (!cJSON_IsObject(v))
                        continue;
                if (s->n_peers >= TAILNET_STATUS_MAX_PEERS)
                        return -EFBIG;
                if (s->n_peers >= allocated) {
                        size_t n = MAX(allocated * 2, (size_t) 16);
                        TailnetPeer *a = reallocarray(s->peers, n, sizeof(TailnetPeer));
                        if (!a)
                                return -ENOMEM;
                        s->peers = a;
                        allocated = n;
                }
                r = parse_peer(v, &s->peers[s->n_peers]);
                if (r < 0)
                        return r;
                s->n_peers++;
        }
        return 0;
}

static int parse_health(const cJSON *root, TailnetStatus *s) {
        const cJSON *health = cJSON_GetObjectItemCaseSensitive(root, "Health");
        const cJSON *v;
        size_t n = 0;

        /* Sized once up front: Health can be long on a sick node and strv_push() is O(n). */
        if (cJSON_IsArray(health))
                n = (size_t) cJSON_GetArraySize(health);
        s->health = calloc(n + 1, sizeof(char *));
        if (!s->health)
                return -ENOMEM;

        n = 0;
        if (cJSON_IsArray(health))
                cJSON_ArrayForEach(v, health) {
                        if (!cJSON_IsString(v))
                                continue;
                        s->health[n] = strdup(v->valuestring);
                        if (!s->health[n])
                                return -ENOMEM;
                        n++;
                }
        return 0;
}

int tailnet_status_parse(const char *json, size_t len, TailnetStatus **ret) {
        _cleanup_(cJSON_Deletep) cJSON *root = NULL;
        _cleanup_(tailnet_status_freep) TailnetStatus *s = NULL;
        const cJSON *self, *tailnet, *state;
        int r;

        r = json_parse_bytes(json, len, TAILNET_STATUS_MAX_SIZE, &root);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(TailnetStatus));
        if (!s)
                return -ENOMEM;

        /* The one field we cannot do without: everything else is judged relative to it. */
        state = cJSON_GetObjectItemCaseSensitive(root, "BackendState");
        if (!cJSON_IsString(state))
                return -EINVAL;
        s->backend_state = backend_state_from_string(state->valuestring);
        if (s->backend_state < 0)
                return -EINVAL;

        s->tun = json_get_bool(root, "TUN");
        r = json_dup_string(root, "Version", &s->version);
        if (r < 0)
                return r;
        r = json_dup_string(root, "AuthURL", &s->auth_url);
        if (r < 0)
                return r;
        r = parse_tailscale_ips(root, &s->ipv4, &s->ipv6);
        if (r < 0)
                return r;

        self = cJSON_GetObjectItemCaseSensitive(root, "Self");
        if (cJSON_IsObject(self)) {
                s->self_online = json_get_bool(self, "Online");
                r = json_dup_dns_name(self, "DNSName", &s->dns_name);
                if (r < 0)
                        return r;
                r = json_dup_string(self, "HostName", &s->host_name);
                if (r < 0)
                        return r;
        }

        /* CurrentTailnet is authoritative; the top-level MagicDNSSuffix is its deprecated
         * alias, still the only one on old daemons. */
        tailnet = cJSON_GetObjectItemCaseSensitive(root, "CurrentTailnet");
        if (cJSON_IsObject(tailnet)) {
                r = json_dup_dns_name(tailnet, "MagicDNSSuffix", &s->magic_dns_suffix);
                if (r < 0)
                        return r;
        }
        if (!s->magic_dns_suffix) {
                r = json_dup_dns_name(root, "MagicDNSSuffix", &s->magic_dns_suffix);
                if (r < 0)
                        return r;
        }

        r = parse_health(root, s);
        if (r < 0)
                return r;
        r = parse_peers(root, s);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

TailnetStatus *tailnet_status_free(TailnetStatus *s) {
        if (!s)
                return NULL;

        free(s->version);
        free(s->auth_url);
        free(s->ipv4);
        free(s->ipv6);
        free(s->dns_name);
        free(s->host_name);
        free(s->magic_dns_suffix);
        strv_free(s->health);
        for (size_t i = 0; i < s->n_peers; i++)
                tailnet_peer_done(&s->peers[i]);
        free(s->peers);
        free(s);
        return NULL;
}

bool tailnet_status_is_running(const TailnetStatus *s) {
        /* Running alone is not enough: since v1.96 tailscaled reaches Running from a cached
         * netmap before it has talked to control. Self.Online is the live control poll. */
        return s && s->backend_state == BACKEND_RUNNING && s->self_online && s->ipv4;
}

int ipn_bus_line_parse(const char *line, size_t len, IpnBusNotify *ret) {
        _cleanup_(cJSON_Deletep) cJSON *root = NULL;
        _cleanup_free_ char *err_message = NULL, *version = NULL;
        IpnBusNotify n = {};
        const cJSON *state, *v;
        int r;

        r = json_parse_bytes(line, len, IPN_BUS_LINE_MAX_SIZE, &root);
        if (r < 0)
                return r;

        /* On the bus State is ipn.State as an integer; null means "no state change in this
         * message". A value we do not know is treated the same, so a newer daemon adding a
         * state does not tear down the watch. */
        state = cJSON_GetObjectItemCaseSensitive(root, "State");
        if (cJSON_IsNumber(state)) {
                double d = state->valuedouble;
                if (d >= 0 && d < _BACKEND_STATE_MAX && d == (double) (int) d) {
                        n.has_state = true;
                        n.state = (BackendState) (int) d;
                }
        }

        v = cJSON_GetObjectItemCaseSensitive(root, "SelfChange");
        n.has_self_change = v && !cJSON_IsNull(v);
        v = cJSON_GetObjectItemCaseSensitive(root, "NetMap");
        n.has_netmap = v && !cJSON_IsNull(v);
        v = cJSON_GetObjectItemCaseSensitive(root, "Prefs");
        n.has_prefs = v && !cJSON_IsNull(v);

        r = json_dup_string(root, "ErrMessage", &err_message);
        if (r < 0)
                return r;
        r = json_dup_string(root, "Version", &version);
        if (r < 0)
                return r;

        n.err_message = TAKE_PTR(err_message);
        n.version = TAKE_PTR(version);
        *ret = n;
        return 0;
}

void ipn_bus_notify_done(IpnBusNotify *n) {
        if (!n)
                return;
        free(n->err_message);
        free(n->version);
        *n = (IpnBusNotify){};
}

/* Linear for now; the tailnet module replaces it with a table built once per /status. */
const TailnetPeer *tailnet_status_find_peer(const TailnetStatus *s, const char *name) {
        if (!s || isempty(name))
                return NULL;
        for (size_t i = 0; i < s->n_peers; i++) {
                const TailnetPeer *p = &s->peers[i];
                if (streq_ptr(p->host_name, name) || streq_ptr(p->dns_name, name))
                        return p;
        }
        return NULL;
}

/* Placeholder rule; the tailnet module refines it. */
bool tailnet_peer_is_reachable(const TailnetPeer *p, uint64_t now_realtime_usec) {
        if (!p)
                return false;
        if (p->active)
                return true;
        if (p->last_handshake_usec > 0 && now_realtime_usec >= p->last_handshake_usec &&
            now_realtime_usec - p->last_handshake_usec <= 180 * USEC_PER_SEC)
                return true;
        return p->online;
}
