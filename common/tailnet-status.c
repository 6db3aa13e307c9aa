/* SPDX-License-Identifier: MIT */
/*
 * Decodes tailscaled's LocalAPI bodies: GET /localapi/v0/status and watch-ipn-bus NDJSON lines,
 * into plain structs, plus the peer lookup table and the peer reachability rule. The HTTP
 * transport and what to do with the result live in agent/tailnet.c. Input is untrusted: bounded
 * in bytes and in memory (no cJSON tree of a whole body or line), unknown keys and wrong-typed
 * optional fields are ignored, strings are sanitized, never a crash.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json-util.h"
#include "macro.h"
#include "util.h"
#include "tailnet-status.h"

/* A real tailnet visible to one node has far fewer peers; past this the body is not believable
 * and the peer array would only cost memory. */
#define TAILNET_STATUS_MAX_PEERS 100000u
/* Bounds of the strings kept (DNS names are at most 253 bytes). */
#define NAME_MAX_LEN 255u
#define TEXT_MAX_LEN 1024u
#define ERR_MESSAGE_MAX_LEN 256u
#define VERSION_MAX_LEN 128u

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

/* FQDNs: tailscale writes them with a trailing dot, we do not. All of them go: "a.." must not
 * come out as "a." and fail a later comparison. */
static void drop_trailing_dots(char **s) {
        size_t n;

        if (!*s)
                return;
        n = strlen(*s);
        while (n > 0 && (*s)[n - 1] == '.')
                (*s)[--n] = '\0';
        if (n == 0) {
                free(*s);
                *s = NULL;
        }
}

/* A string value into *dst unless *dst is set already (the first of duplicate keys wins). */
static int span_string_once(const char *v, const char *v_end, size_t max, char **dst) {
        if (*dst)
                return 0;
        return json_span_string(v, v_end, max, dst);
}

/* First valid IPv4 and first valid IPv6 of a TailscaleIPs array, in canonical text form so they
 * compare equal to what netlink reports. Invalid entries (zones, prefixes, junk) are skipped. */
static int parse_tailscale_ips(const char *v, const char *v_end, char **ret_ipv4, char **ret_ipv6) {
        _cleanup_free_ char *ipv4 = NULL, *ipv6 = NULL;
        const char *e, *e_end;
        JsonIter it;
        int r;

        if (*ret_ipv4 || *ret_ipv6 || json_iter_init(&it, v, v_end, '[') < 0)
                return 0;
        while ((r = json_iter_next(&it, NULL, NULL, &e, &e_end)) > 0) {
                char text[INET6_ADDRSTRLEN + 8], buf[INET6_ADDRSTRLEN];
                union {
                        struct in_addr in;
                        struct in6_addr in6;
                } a;

                if (*e != '"' || e_end - e - 2 <= 0 || (size_t) (e_end - e - 2) >= sizeof(text))
                        continue;
                memcpy(text, e + 1, (size_t) (e_end - e - 2));
                text[e_end - e - 2] = '\0';
                if (!ipv4 && inet_pton(AF_INET, text, &a.in) == 1) {
                        if (!inet_ntop(AF_INET, &a.in, buf, sizeof(buf)))
                                return -errno;
                        ipv4 = strdup(buf);
                        if (!ipv4)
                                return -ENOMEM;
                } else if (!ipv6 && inet_pton(AF_INET6, text, &a.in6) == 1) {
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

static int span_time(const char *v, const char *v_end, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = json_span_string(v, v_end, 64, &s);
        if (r < 0)
                return r;
        if (!s || rfc3339_to_usec(s, ret) < 0)
                *ret = 0;
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

/* One ipnstate.PeerStatus (a peer or Self), key by key, without a tree. */
static int parse_peer_member(const char *k, size_t kl, const char *v, const char *v_end,
                             TailnetPeer *p) {
        if (json_key_eq(k, kl, "DNSName"))
                return span_string_once(v, v_end, NAME_MAX_LEN, &p->dns_name);
        if (json_key_eq(k, kl, "HostName"))
                return span_string_once(v, v_end, NAME_MAX_LEN, &p->host_name);
        if (json_key_eq(k, kl, "TailscaleIPs"))
                return parse_tailscale_ips(v, v_end, &p->ipv4, &p->ipv6);
        if (json_key_eq(k, kl, "CurAddr"))
                return span_string_once(v, v_end, NAME_MAX_LEN, &p->cur_addr);
        if (json_key_eq(k, kl, "Relay"))
                return span_string_once(v, v_end, NAME_MAX_LEN, &p->relay);
        if (json_key_eq(k, kl, "LastHandshake"))
                return span_time(v, v_end, &p->last_handshake_usec);
        if (json_key_eq(k, kl, "KeyExpiry"))
                return span_time(v, v_end, &p->key_expiry_usec);
        if (json_key_eq(k, kl, "Online"))
                p->online = json_span_true(v, v_end);
        else if (json_key_eq(k, kl, "Active"))
                p->active = json_span_true(v, v_end);
        return 0;
}

/* The object at v (within ..end) into *ret (*ret_ok), walked once; *ret_end: where it ends.
 * Not an object: 0, *ret_ok false, *ret_end NULL. <0 on error. */
static int parse_peer(const char *v, const char *end, TailnetPeer *ret, bool *ret_ok,
                      const char **ret_end) {
        TailnetPeer p = {};
        const char *k, *pv, *pv_end;
        size_t kl;
        JsonIter it;
        int r;

        *ret_ok = false;
        *ret_end = NULL;
        if (json_iter_init(&it, v, end, '{') < 0)
                return 0;
        while ((r = json_iter_next(&it, &k, &kl, &pv, &pv_end)) > 0) {
                r = parse_peer_member(k, kl, pv, pv_end, &p);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                tailnet_peer_done(&p);
                return r;
        }
        drop_trailing_dots(&p.dns_name);
        /* Lookups ignore trailing dots (tailnet_status_find_peer()): a HostName of only dots
         * could never be found, so it is no name. */
        drop_trailing_dots(&p.host_name);
        *ret = p;
        *ret_ok = true;
        *ret_end = it.p;
        return 0;
}

/* "Peer" is a map keyed by node key; the keys carry nothing we use. null (?peers=false) and
 * wrong types mean no peers; non-object values are skipped. */
static int parse_peers(const char *v, const char *end, TailnetStatus *s, const char **ret_end) {
        const char *k, *pv, *pv_end;
        size_t kl, allocated = 0;
        JsonIter it;
        int r;

        if (json_iter_init(&it, v, end, '{') < 0)
                return -EINVAL;
        while ((r = json_iter_next_open(&it, &k, &kl, &pv)) > 0) {
                bool ok;

                if (*pv != '{') {
                        pv_end = json_skip_value(pv, end);
                        if (!pv_end)
                                return -EINVAL;
                        json_iter_resume(&it, pv_end);
                        continue;
                }
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
                r = parse_peer(pv, end, &s->peers[s->n_peers], &ok, &pv_end);
                if (r < 0)
                        return r;
                if (!ok)
                        return -EINVAL;
                s->n_peers++;
                json_iter_resume(&it, pv_end);
        }
        if (r < 0)
                return r;
        *ret_end = it.p;
        return 0;
}

static int parse_health(const char *v, const char *v_end, TailnetStatus *s) {
        const char *e, *e_end;
        size_t n = 0;
        JsonIter it;
        int r;

        if (s->health)
                return 0;
        /* Sized once up front: Health can be long on a sick node and strv_push() is O(n). */
        if (json_iter_init(&it, v, v_end, '[') >= 0) {
                while ((r = json_iter_next(&it, NULL, NULL, &e, &e_end)) > 0)
                        n++;
                if (n > TAILNET_STATUS_MAX_TREE_VALUES)
                        return -EFBIG;
        }
        s->health = calloc(n + 1, sizeof(char *));
        if (!s->health)
                return -ENOMEM;
        if (n == 0 || json_iter_init(&it, v, v_end, '[') < 0)
                return 0;

        n = 0;
        while ((r = json_iter_next(&it, NULL, NULL, &e, &e_end)) > 0) {
                if (*e != '"')
                        continue;
                r = json_span_string(e, e_end, TEXT_MAX_LEN, &s->health[n]);
                if (r < 0)
                        return r;
                if (!s->health[n])
                        s->health[n] = strdup(""); /* "" is a (strange) entry too */
                if (!s->health[n])
                        return -ENOMEM;
                n++;
        }
        return 0;
}

static int parse_self(const char *v, const char *v_end, TailnetStatus *s) {
        TailnetPeer self = {};
        bool ok;
        int r;

        if (s->host_name || s->dns_name || s->self_online)
                return 0;
        const char *self_end;

        r = parse_peer(v, v_end, &self, &ok, &self_end);
        if (r < 0 || !ok)
                return r;
        s->self_online = self.online;
        s->self_key_expiry_usec = self.key_expiry_usec;
        s->dns_name = TAKE_PTR(self.dns_name);
        s->host_name = TAKE_PTR(self.host_name);
        tailnet_peer_done(&self);
        return 0;
}

/* CurrentTailnet is authoritative; the top-level MagicDNSSuffix is its deprecated alias, still
 * the only one on old daemons. */
static int parse_current_tailnet(const char *v, const char *v_end, TailnetStatus *s) {
        const char *k, *tv, *tv_end;
        _cleanup_free_ char *suffix = NULL;
        size_t kl;
        JsonIter it;
        int r;

        if (json_iter_init(&it, v, v_end, '{') < 0)
                return 0;
        while ((r = json_iter_next(&it, &k, &kl, &tv, &tv_end)) > 0)
                if (json_key_eq(k, kl, "MagicDNSSuffix")) {
                        r = span_string_once(tv, tv_end, NAME_MAX_LEN, &suffix);
                        if (r < 0)
                                return r;
                }
        drop_trailing_dots(&suffix);
        if (suffix) {
                free(s->magic_dns_suffix);
                s->magic_dns_suffix = TAKE_PTR(suffix);
        }
        return 0;
}

static int parse_member(const char *k, size_t kl, const char *v, const char *v_end,
                        TailnetStatus *s, bool *have_state) {
        int r;

        if (json_key_eq(k, kl, "BackendState")) {
                _cleanup_free_ char *state = NULL;

                if (*have_state)
                        return 0;
                r = json_span_string(v, v_end, 64, &state);
                if (r < 0)
                        return r;
                s->backend_state = backend_state_from_string(state);
                if (s->backend_state < 0)
                        return -EINVAL;
                *have_state = true;
                return 0;
        }
        if (json_key_eq(k, kl, "TUN"))
                s->tun = json_span_true(v, v_end);
        else if (json_key_eq(k, kl, "Version"))
                return span_string_once(v, v_end, VERSION_MAX_LEN, &s->version);
        else if (json_key_eq(k, kl, "AuthURL"))
                return span_string_once(v, v_end, TEXT_MAX_LEN, &s->auth_url);
        else if (json_key_eq(k, kl, "TailscaleIPs"))
                return parse_tailscale_ips(v, v_end, &s->ipv4, &s->ipv6);
        else if (json_key_eq(k, kl, "Self"))
                return parse_self(v, v_end, s);
        else if (json_key_eq(k, kl, "CurrentTailnet"))
                return parse_current_tailnet(v, v_end, s);
        else if (json_key_eq(k, kl, "MagicDNSSuffix") && !s->magic_dns_suffix) {
                r = span_string_once(v, v_end, NAME_MAX_LEN, &s->magic_dns_suffix);
                drop_trailing_dots(&s->magic_dns_suffix);
                return r;
        } else if (json_key_eq(k, kl, "Health"))
                return parse_health(v, v_end, s);
        return 0;
}

int tailnet_status_parse(const char *json, size_t len, TailnetStatus **ret) {
        _cleanup_(tailnet_status_freep) TailnetStatus *s = NULL;
        const char *end, *k, *v, *v_end;
        bool have_state = false;
        size_t kl;
        JsonIter it;
        int r;

        if (!json || len == 0)
                return -EINVAL;
        if (len > TAILNET_STATUS_MAX_SIZE)
                return -EFBIG;

        end = json + len;
        if (json_iter_init(&it, json, end, '{') < 0)
                return -EINVAL;

        s = calloc(1, sizeof(TailnetStatus));
        if (!s)
                return -ENOMEM;

        /* One pass: the Peer map (most of the bytes) is walked where it is, everything else is
         * delimited and decoded key by key. */
        while ((r = json_iter_next_open(&it, &k, &kl, &v)) > 0) {
                if (json_key_eq(k, kl, "Peer") && *v == '{' && !s->peers) {
                        r = parse_peers(v, end, s, &v_end);
                        if (r < 0)
                                return r;
                } else {
                        v_end = json_skip_value(v, end);
                        if (!v_end)
                                return -EINVAL;
                        r = parse_member(k, kl, v, v_end, s, &have_state);
                        if (r < 0)
                                return r;
                }
                json_iter_resume(&it, v_end);
        }
        if (r < 0)
                return r;
        /* One object and only whitespace after it (e.g. not two documents glued together). */
        if (json_skip_space(it.p, end) != end)
                return -EINVAL;
        /* The one field we cannot do without: everything else is judged relative to it. */
        if (!have_state)
                return -EINVAL;
        if (!s->health) {
                s->health = calloc(1, sizeof(char *));
                if (!s->health)
                        return -ENOMEM;
        }

        r = tailnet_status_build_index(s);
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
        free(s->index);
        free(s);
        return NULL;
}

/* ---- peer lookup ---------------------------------------------------------------------------- */

typedef enum PeerKeyKind {
        PEER_KEY_DNS_NAME, /* "host.tail1234.ts.net" */
        PEER_KEY_DNS_NO_SUFFIX, /* DNSName without ".<MagicDNSSuffix>" */
        PEER_KEY_SHORT, /* DNSName up to its first dot */
        PEER_KEY_HOST_NAME, /* HostName (not unique, not a DNS name) */
        _PEER_KEY_KIND_MAX,
} PeerKeyKind;

struct TailnetPeerSlot {
        uint32_t peer_plus_one; /* 0: empty */
        uint16_t len; /* the key is the first len bytes of the peer's dns_name or host_name */
        uint8_t kind;
};

static uint64_t name_hash(const char *s, size_t n) {
        uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a, ASCII case folded */

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c >= 'A' && c <= 'Z')
                        c += 'a' - 'A';
                h = (h ^ c) * UINT64_C(1099511628211);
        }
        return h;
}

/* The key of kind for peer p: a prefix of one of its strings, or false when it has none. */
static bool peer_key(const TailnetStatus *s, const TailnetPeer *p, PeerKeyKind kind,
                     const char **ret, size_t *ret_len) {
        const char *dot;
        size_t n, sl;

        switch (kind) {
        case PEER_KEY_DNS_NAME:
                if (!p->dns_name)
                        return false;
                *ret = p->dns_name;
                *ret_len = strlen(p->dns_name);
                return true;
        case PEER_KEY_DNS_NO_SUFFIX:
                if (!p->dns_name || !s->magic_dns_suffix)
                        return false;
                n = strlen(p->dns_name);
                sl = strlen(s->magic_dns_suffix);
                if (n <= sl + 1 || p->dns_name[n - sl - 1] != '.' ||
                    strcasecmp(p->dns_name + n - sl, s->magic_dns_suffix) != 0)
                        return false;
                *ret = p->dns_name;
                *ret_len = n - sl - 1;
                return true;
        case PEER_KEY_SHORT:
                if (!p->dns_name || !(dot = strchr(p->dns_name, '.')) || dot == p->dns_name)
                        return false;
                *ret = p->dns_name;
                *ret_len = (size_t) (dot - p->dns_name);
                return true;
        case PEER_KEY_HOST_NAME:
                if (!p->host_name)
                        return false;
                *ret = p->host_name;
                *ret_len = strlen(p->host_name);
                return true;
        case _PEER_KEY_KIND_MAX:
                break;
        }
        return false;
}

int tailnet_status_build_index(TailnetStatus *s) {
        size_t size = 16;

        s->index = mfree(s->index);
        s->n_index = 0;
        if (s->n_peers == 0)
                return 0;
        /* At most 4 keys per peer, load factor <= 1/2. */
        while (size < s->n_peers * _PEER_KEY_KIND_MAX * 2)
                size *= 2;
        s->index = calloc(size, sizeof(struct TailnetPeerSlot));
        if (!s->index)
                return -ENOMEM;
        s->n_index = size;

        /* Kind by kind: equal names hash alike, so along a probe chain the earlier kind comes
         * first and wins on lookup (a DNS name beats somebody's HostName). */
        for (PeerKeyKind kind = 0; kind < _PEER_KEY_KIND_MAX; kind++)
                for (size_t i = 0; i < s->n_peers; i++) {
                        const char *key;
                        size_t n, slot;

                        if (!peer_key(s, &s->peers[i], kind, &key, &n) || n == 0 || n > UINT16_MAX)
                                continue;
                        slot = name_hash(key, n) & (size - 1);
                        while (s->index[slot].peer_plus_one != 0)
                                slot = (slot + 1) & (size - 1);
                        s->index[slot] = (struct TailnetPeerSlot){
                                .peer_plus_one = (uint32_t) i + 1,
                                .len = (uint16_t) n,
                                .kind = (uint8_t) kind,
                        };
                }
        return 0;
}

const TailnetPeer *tailnet_status_find_peer(const TailnetStatus *s, const char *name) {
        size_t n, slot;

        if (!s || isempty(name) || s->n_index == 0)
                return NULL;
        n = strlen(name);
        while (n > 0 && name[n - 1] == '.')
                n--;
        if (n == 0)
                return NULL;

        for (slot = name_hash(name, n) & (s->n_index - 1); s->index[slot].peer_plus_one != 0;
             slot = (slot + 1) & (s->n_index - 1)) {
                const struct TailnetPeerSlot *e = &s->index[slot];
                const TailnetPeer *p = &s->peers[e->peer_plus_one - 1];
                const char *key;

                if (e->len != n ||
                    !(e->kind == PEER_KEY_HOST_NAME ? (key = p->host_name) : (key = p->dns_name)))
                        continue;
                if (strncasecmp(key, name, n) == 0)
                        return p;
        }
        return NULL;
}

/* ---- reachability ------------------------------------------------------------------------- */

/* WireGuard's REJECT_AFTER_TIME: a session whose last handshake is older than this is dead; while
 * traffic flows, WireGuard rekeys every REKEY_AFTER_TIME (120 s), so a live session's handshake
 * is never older than ~3 minutes (wireguard-go device/constants.go). */
#define HANDSHAKE_FRESH_USEC (180 * USEC_PER_SEC)

/*
 * The rule, from tailscale's source (v1.103, shared/facts/tailscale.md §2):
 * - Online (tailcfg.Node.Online) is the control server's view of the peer's control connection.
 *   It says nothing about the data path and freezes at its last value in a control outage.
 * - CurAddr is set only while magicsock trusts a direct UDP path, i.e. shortly after a disco pong
 *   from the peer (wgengine/magicsock/endpoint.go populatePeerStatus, addrForSendLocked): proof
 *   that the peer answered us seconds ago.
 * - LastHandshake is the last completed WireGuard handshake: the peer answered then.
 * - Active means *we* sent to it in the last 45 s (sessionActiveTimeout, magicsock.go), not that
 *   it answered; Relay is only the peer's home DERP region and is always set.
 * - Self.Online tells whether *this* node's control connection is up: while it is, the control
 *   server's Online for a peer is current (control marks a node offline when its map poll
 *   drops, e.g. in a power cut); while it is not, every peer's Online is frozen.
 * So, in order:
 *   1. a KeyExpiry in the past: unreachable (tailscale stops talking to expired nodes);
 *   2. a CurAddr: reachable (a direct path answered within seconds);
 *   3. control up (Self.Online) and the peer not Online: unreachable (the control server saw
 *      its connection go; a fresh handshake from before a power cut must not win here);
 *   4. a LastHandshake less than 180 s old (either way: a clock stepped back is no reason to
 *      distrust it): reachable;
 *   5. Active with no fresh handshake: unreachable (we are sending and WireGuard, which retries
 *      its handshake every 5 s while there is traffic, got no answer for 3 minutes);
 *   6. otherwise the peer is idle (WireGuard handshakes only on traffic, so a healthy idle peer
 *      has an old handshake): Online, the control server's last word, is all there is.
 */
bool tailnet_peer_is_reachable(const TailnetPeer *p, bool control_up, uint64_t now_realtime_usec) {
        uint64_t age;

        if (!p)
                return false;
        if (p->key_expiry_usec > 0 && p->key_expiry_usec <= now_realtime_usec)
                return false;
        if (p->cur_addr)
                return true;
        if (control_up && !p->online)
                return false;
        if (p->last_handshake_usec > 0) {
                age = now_realtime_usec >= p->last_handshake_usec
                        ? now_realtime_usec - p->last_handshake_usec
                        : p->last_handshake_usec - now_realtime_usec;
                if (age <= HANDSHAKE_FRESH_USEC)
                        return true;
        }
        if (p->active)
                return false;
        return p->online;
}

/* name against Self's HostName, MagicDNS name and its first label (case-insensitive, trailing
 * dots ignored), as tailnet_status_find_peer() matches peers. */
static bool self_matches(const TailnetStatus *t, const char *name) {
        size_t n = strlen(name);
        const char *dns = t->dns_name;

        while (n > 0 && name[n - 1] == '.')
                n--;
        if (n == 0)
                return false;
        if (t->host_name && strlen(t->host_name) == n && strncasecmp(t->host_name, name, n) == 0)
                return true;
        if (!dns)
                return false;
        if (strncasecmp(dns, name, n) == 0 && (dns[n] == '\0' || dns[n] == '.'))
                return true; /* the full name, or its first label */
        return false;
}

bool tailnet_status_resolve_peer(const TailnetStatus *t, const char *name,
                                 uint64_t now_realtime_usec, const char **ret_ipv4,
                                 bool *ret_reachable) {
        const TailnetPeer *p;

        if (!t || isempty(name))
                return false;
        if (t->ipv4 && self_matches(t, name)) {
                *ret_ipv4 = t->ipv4;
                *ret_reachable = true;
                return true;
        }
        p = tailnet_status_find_peer(t, name);
        if (!p || !p->ipv4)
                return false;
        *ret_ipv4 = p->ipv4;
        *ret_reachable = tailnet_peer_is_reachable(p, t->self_online, now_realtime_usec);
        return true;
}

/* ---- RFC 3339 ------------------------------------------------------------------------------- */

static bool parse_digits(const char **p, size_t n, int *ret) {
        int v = 0;

        for (size_t i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

int rfc3339_to_usec(const char *s, uint64_t *ret) {
        int year, mon, day, hour, min, sec, oh = 0, om = 0;
        int64_t t, frac = 0, scale = 100000;
        const char *p = s;

        if (!s)
                return -EINVAL;
        if (!parse_digits(&p, 4, &year) || *p++ != '-' || !parse_digits(&p, 2, &mon) ||
            *p++ != '-' || !parse_digits(&p, 2, &day) || (*p != 'T' && *p != 't'))
                return -EINVAL;
        p++;
        if (!parse_digits(&p, 2, &hour) || *p++ != ':' || !parse_digits(&p, 2, &min) ||
            *p++ != ':' || !parse_digits(&p, 2, &sec))
                return -EINVAL;
        if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
                return -EINVAL;
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                for (; *p >= '0' && *p <= '9'; p++) {
                        frac += (*p - '0') * scale;
                        scale /= 10;
                }
        }
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                bool neg = *p++ == '-';

                if (!parse_digits(&p, 2, &oh) || *p++ != ':' || !parse_digits(&p, 2, &om) ||
                    oh > 23 || om > 59)
                        return -EINVAL;
                if (neg) {
                        oh = -oh;
                        om = -om;
                }
        } else
                return -EINVAL;
        if (*p != '\0')
                return -EINVAL;

        t = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec -
                (oh * 3600 + om * 60);
        /* Go's zero time (year 1) and anything before the epoch mean "never" here. */
        *ret = t <= 0 ? 0 : (uint64_t) t * USEC_PER_SEC + (uint64_t) frac;
        return 0;
}

/* ---- the IPN bus ---------------------------------------------------------------------------- */

enum {
        SCAN_START, /* before the root '{' */
        SCAN_KEY_OR_END, /* after '{': a key or '}' */
        SCAN_KEY, /* after ',': a key */
        SCAN_IN_KEY,
        SCAN_COLON,
        SCAN_VALUE, /* before a top-level value */
        SCAN_IN_STRING, /* a top-level string value */
        SCAN_IN_NESTED, /* a top-level object/array value, depth > 0 */
        SCAN_IN_SCALAR, /* a top-level number/literal */
        SCAN_AFTER_VALUE, /* ',' or '}' */
        SCAN_END, /* after the root '}': whitespace only */
        SCAN_ERROR,
};

enum {
        KEY_OTHER,
        KEY_VERSION,
        KEY_ERR_MESSAGE,
        KEY_STATE,
        KEY_SELF_CHANGE,
        KEY_NETMAP,
        KEY_PREFS,
        KEY_PEERS,
};

void ipn_bus_scanner_init(IpnBusScanner *s) {
        ipn_bus_notify_done(&s->n);
        *s = (IpnBusScanner){ .state = SCAN_START };
}

void ipn_bus_scanner_done(IpnBusScanner *s) {
        if (s)
                ipn_bus_notify_done(&s->n);
}

static int scan_key_id(const IpnBusScanner *s) {
        static const struct {
                const char *name;
                int id;
        } keys[] = {
                { "Version", KEY_VERSION },
                { "ErrMessage", KEY_ERR_MESSAGE },
                { "State", KEY_STATE },
                { "SelfChange", KEY_SELF_CHANGE },
                { "NetMap", KEY_NETMAP },
                { "Prefs", KEY_PREFS },
                /* v1.100+ (ipn/backend.go Notify) */
                { "PeersChanged", KEY_PEERS },
                { "PeersRemoved", KEY_PEERS },
                { "PeerChangedPatch", KEY_PEERS },
                /* v1.98 (its Notify.PeerChanges, sent instead of a NetMap with the mask bit) */
                { "PeerChanges", KEY_PEERS },
        };

        if (s->key_len >= sizeof(s->key_buf))
                return KEY_OTHER;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (json_key_eq(s->key_buf, s->key_len, keys[i].name))
                        return keys[i].id;
        return KEY_OTHER;
}

static void scan_capture(IpnBusScanner *s, char c) {
        if (s->val_len < sizeof(s->val_buf) - 1)
                s->val_buf[s->val_len++] = c;
}

static void scan_mark_present(IpnBusScanner *s) {
        switch (s->key) {
        case KEY_SELF_CHANGE:
                s->n.has_self_change = true;
                break;
        case KEY_NETMAP:
                s->n.has_netmap = true;
                break;
        case KEY_PREFS:
                s->n.has_prefs = true;
                break;
        case KEY_PEERS:
                s->n.has_peer_changes = true;
                break;
        }
}

/* A complete top-level scalar (number or literal). */
static void scan_end_scalar(IpnBusScanner *s) {
        s->val_buf[s->val_len] = '\0';
        if (streq(s->val_buf, "null"))
                return;
        if (!streq(s->val_buf, "true") && !streq(s->val_buf, "false")) {
                char *e = NULL;
                double d = strtod(s->val_buf, &e);

                if (s->val_len == 0 || !e || *e != '\0' ||
                    strspn(s->val_buf, "-+.0123456789eE") != s->val_len) {
                        s->state = SCAN_ERROR;
                        return;
                }
                /* On the bus State is ipn.State as an integer. A value we do not know is
                 * treated as "no state", so a newer daemon adding a state does not tear down
                 * the watch. */
                if (s->key == KEY_STATE && d >= 0 && d < _BACKEND_STATE_MAX &&
                    d == (double) (int) d) {
                        s->n.has_state = true;
                        s->n.state = (BackendState) (int) d;
                }
        }
        scan_mark_present(s);
}

static void scan_end_string(IpnBusScanner *s) {
        char **dst = s->key == KEY_VERSION  ? &s->n.version
                : s->key == KEY_ERR_MESSAGE ? &s->n.err_message
                                            : NULL;

        scan_mark_present(s);
        if (!dst || *dst || s->val_len == 0)
                return;
        *dst = json_unescape(s->val_buf, s->val_len,
                             s->key == KEY_VERSION ? VERSION_MAX_LEN : ERR_MESSAGE_MAX_LEN);
        if (!*dst)
                s->state = SCAN_ERROR; /* OOM: the line is lost, the stream goes on */
        else if (isempty(*dst))
                *dst = mfree(*dst);
}

/* Inside a nested value: skip to its end in a tight loop (most of a big line is here). */
static size_t scan_nested(IpnBusScanner *s, const char *p, size_t len) {
        for (size_t i = 0; i < len; i++) {
                char c = p[i];

                if (s->in_string) {
                        if (s->escape)
                                s->escape = false;
                        else if (c == '\\')
                                s->escape = true;
                        else if (c == '"')
                                s->in_string = false;
                } else if (c == '"')
                        s->in_string = true;
                else if (c == '{' || c == '[')
                        s->depth++;
                else if ((c == '}' || c == ']') && --s->depth == 0) {
                        s->state = SCAN_AFTER_VALUE;
                        return i + 1;
                }
        }
        return len;
}

static void scan_byte(IpnBusScanner *s, char c) {
        bool space = json_is_space(c);

        switch (s->state) {
        case SCAN_START:
                if (c == '{')
                        s->state = SCAN_KEY_OR_END;
                else if (!space)
                        s->state = SCAN_ERROR;
                break;
        case SCAN_KEY_OR_END:
        case SCAN_KEY:
                if (c == '"') {
                        s->state = SCAN_IN_KEY;
                        s->key_len = 0;
                        s->escape = false;
                } else if (c == '}' && s->state == SCAN_KEY_OR_END)
                        s->state = SCAN_END;
                else if (!space)
                        s->state = SCAN_ERROR;
                break;
        case SCAN_IN_KEY:
                if (s->escape)
                        s->escape = false;
                else if (c == '\\')
                        s->escape = true;
                else if (c == '"') {
                        s->key = scan_key_id(s);
                        s->state = SCAN_COLON;
                        break;
                }
                if (s->key_len < sizeof(s->key_buf))
                        s->key_buf[s->key_len] = c;
                s->key_len++;
                break;
        case SCAN_COLON:
                if (c == ':')
                        s->state = SCAN_VALUE;
                else if (!space)
                        s->state = SCAN_ERROR;
                break;
        case SCAN_VALUE:
                s->val_len = 0;
                if (space)
                        break;
                if (c == '"') {
                        s->state = SCAN_IN_STRING;
                        s->escape = false;
                } else if (c == '{' || c == '[') {
                        s->state = SCAN_IN_NESTED;
                        s->depth = 1;
                        s->in_string = s->escape = false;
                        scan_mark_present(s);
                } else if (c == ',' || c == '}' || c == ']' || c == ':')
                        s->state = SCAN_ERROR;
                else {
                        s->state = SCAN_IN_SCALAR;
                        scan_capture(s, c);
                }
                break;
        case SCAN_IN_STRING:
                if (s->escape)
                        s->escape = false;
                else if (c == '\\')
                        s->escape = true;
                else if (c == '"') {
                        s->state = SCAN_AFTER_VALUE;
                        scan_end_string(s);
                        break;
                }
                scan_capture(s, c);
                break;
        case SCAN_IN_SCALAR:
                if (space || c == ',' || c == '}') {
                        scan_end_scalar(s);
                        if (s->state == SCAN_ERROR)
                                break;
                        s->state = SCAN_AFTER_VALUE;
                        scan_byte(s, c);
                } else
                        scan_capture(s, c);
                break;
        case SCAN_AFTER_VALUE:
                if (c == ',')
                        s->state = SCAN_KEY;
                else if (c == '}')
                        s->state = SCAN_END;
                else if (!space)
                        s->state = SCAN_ERROR;
                break;
        case SCAN_END:
                if (!space)
                        s->state = SCAN_ERROR;
                break;
        case SCAN_IN_NESTED: /* handled by scan_nested() */
        case SCAN_ERROR:
                break;
        }
}

void ipn_bus_scanner_feed(IpnBusScanner *s, const char *p, size_t len) {
        size_t i = 0;

        s->bytes += len;
        while (i < len && s->state != SCAN_ERROR) {
                if (s->state == SCAN_IN_NESTED)
                        i += scan_nested(s, p + i, len - i);
                else
                        scan_byte(s, p[i++]);
        }
}

int ipn_bus_scanner_finish(IpnBusScanner *s, IpnBusNotify *ret) {
        int r = 0;

        if (s->state == SCAN_IN_SCALAR) /* "{...,"State":6" cut short is still invalid */
                s->state = SCAN_ERROR;
        if (s->state != SCAN_END)
                r = -EINVAL;
        else {
                *ret = s->n;
                s->n = (IpnBusNotify){};
        }
        ipn_bus_scanner_init(s);
        return r;
}

int ipn_bus_line_parse(const char *line, size_t len, IpnBusNotify *ret) {
        IpnBusScanner s;

        if (!line || len == 0)
                return -EINVAL;
        s = (IpnBusScanner){ .state = SCAN_START };
        ipn_bus_scanner_feed(&s, line, len);
        return ipn_bus_scanner_finish(&s, ret);
}

void ipn_bus_notify_done(IpnBusNotify *n) {
        if (!n)
                return;
        free(n->err_message);
        free(n->version);
        *n = (IpnBusNotify){};
}
