/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * tailscaled's LocalAPI: GET /localapi/v0/status JSON and watch-ipn-bus NDJSON lines ->
 * plain structs. Untrusted input: size-limited, tolerant of unknown/missing keys, never crashes.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest /status body the parser takes. The agent's caps are lower when it asks without
 * peers (agent/tailnet.c). The body is walked with a span scanner and only small values become
 * cJSON trees, so peak memory is about the body plus the peer array, not ~80 B per element. */
#define TAILNET_STATUS_MAX_SIZE (24u * 1024u * 1024u)
/* Values that are parsed into a cJSON tree (TailscaleIPs, Health): at most this many elements. */
#define TAILNET_STATUS_MAX_TREE_VALUES 65536u

typedef enum BackendState {
        BACKEND_NO_STATE,
        BACKEND_IN_USE_OTHER_USER,
        BACKEND_NEEDS_LOGIN,
        BACKEND_NEEDS_MACHINE_AUTH,
        BACKEND_STOPPED,
        BACKEND_STARTING,
        BACKEND_RUNNING,
        _BACKEND_STATE_MAX,
        _BACKEND_STATE_INVALID = -EINVAL,
} BackendState;

/* "NoState", "InUseOtherUser", "NeedsLogin", ... exactly as /status spells them. The integer
 * value equals ipn.State on the bus (0..6). */
const char *backend_state_to_string(BackendState s);
BackendState backend_state_from_string(const char *s);

typedef struct TailnetPeer {
        char *dns_name; /* trailing dot dropped; may be NULL */
        char *host_name;
        char *ipv4, *ipv6; /* first of each family from TailscaleIPs; may be NULL */
        bool online; /* the control server's view: goes stale in a control outage */
        bool active; /* data plane: traffic in the last minutes */
        uint64_t last_handshake_usec; /* CLOCK_REALTIME µs of LastHandshake, 0 = never */
        char *cur_addr; /* direct UDP endpoint "ip:port", NULL when none */
        char *relay; /* DERP region code, NULL when none */
        uint64_t key_expiry_usec; /* CLOCK_REALTIME µs, 0 = none */
} TailnetPeer;

typedef struct TailnetStatus {
        char *version;
        bool tun;
        BackendState backend_state;
        char *auth_url;
        char *ipv4, *ipv6; /* first IPv4 / IPv6 of TailscaleIPs (validated with inet_pton) */
        bool self_online;
        char *dns_name; /* Self.DNSName, trailing dot dropped; may be NULL */
        char *host_name;
        char *magic_dns_suffix;
        uint64_t self_key_expiry_usec; /* Self.KeyExpiry, CLOCK_REALTIME µs; 0 = none */
        char **health; /* NULL-terminated, never NULL */
        TailnetPeer *peers;
        size_t n_peers;
        /* tailnet_status_find_peer()'s open-addressing table over the peer names, built once per
         * parse; n_index is a power of two (0: no peers). */
        struct TailnetPeerSlot *index;
        size_t n_index;
} TailnetStatus;

/* -EINVAL on invalid JSON or a non-object / missing/unknown BackendState, -EFBIG over the limit. */
int tailnet_status_parse(const char *json, size_t len, TailnetStatus **ret);
TailnetStatus *tailnet_status_free(TailnetStatus *s);

/* The peer named name (case-insensitive, trailing dots ignored), or NULL. Matches, in this order
 * of precedence when names collide: the MagicDNS name (DNSName without its trailing dot), the
 * MagicDNS name without the tailnet's suffix, the short name before its first dot, HostName.
 * O(1): a hash table built by tailnet_status_parse(). */
/* (Re)build the name table tailnet_status_find_peer() uses; tailnet_status_parse() calls it, a
 * caller that fills peers by hand (tests) calls it after. -ENOMEM. */
int tailnet_status_build_index(TailnetStatus *s);

const TailnetPeer *tailnet_status_find_peer(const TailnetStatus *s, const char *name);

/* Whether traffic to this peer can be expected to get through now (the rule is documented in
 * k0s-tsagent.conf(5): data-plane fields first, Online only as a hint, since it is the control
 * server's view and goes stale in a control outage). now: CLOCK_REALTIME µs. */
bool tailnet_peer_is_reachable(const TailnetPeer *p, bool control_up, uint64_t now_realtime_usec);

/* A registry's peer: name resolved against this node itself (a registry on the node's own
 * tailnet address: always reachable) and then the peers: false when unknown or without a
 * tailnet IPv4, else its IPv4 (pointing into t) and whether it is reachable by the rule above,
 * with t->self_online as control_up. */
bool tailnet_status_resolve_peer(const TailnetStatus *t, const char *name,
                                 uint64_t now_realtime_usec, const char **ret_ipv4,
                                 bool *ret_reachable);

/* RFC 3339 as Go writes time.Time ("2026-03-01T09:00:00.123456789Z", "...+02:00") -> CLOCK_REALTIME
 * µs. Go's zero time "0001-01-01T00:00:00Z" and anything before 1970 are 0. -EINVAL. */
int rfc3339_to_usec(const char *s, uint64_t *ret);

typedef struct IpnBusNotify {
        bool has_state;
        BackendState state;
        bool has_self_change; /* SelfChange present and non-null */
        bool has_netmap; /* NetMap present and non-null */
        bool has_prefs;
        /* PeersChanged/PeersRemoved/PeerChangedPatch (v1.100+) or PeerChanges (v1.98) present */
        bool has_peer_changes;
        char *err_message; /* ErrMessage (sanitized, bounded), NULL if null/absent */
        char *version; /* sanitized, bounded */
} IpnBusNotify;

/* A watch-ipn-bus line scanned as it streams in, in O(1) memory whatever its length: bus lines
 * are only triggers, so no tree is built; only the top-level keys above are looked at. */
typedef struct IpnBusScanner {
        int state; /* where in the top-level object we are */
        size_t depth; /* nesting inside the current top-level value */
        bool in_string, escape;
        int key; /* which top-level key the current value belongs to */
        char key_buf[24];
        size_t key_len;
        char val_buf[1024]; /* a captured scalar/string value (cut short past the size) */
        size_t val_len;
        size_t bytes;
        IpnBusNotify n;
} IpnBusScanner;

void ipn_bus_scanner_init(IpnBusScanner *s);
void ipn_bus_scanner_feed(IpnBusScanner *s, const char *p, size_t len);
/* The line is complete: its facts in *ret (0), or -EINVAL if it was not one JSON object,
 * -ENOMEM. Resets the scanner for the next line either way. */
int ipn_bus_scanner_finish(IpnBusScanner *s, IpnBusNotify *ret);
void ipn_bus_scanner_done(IpnBusScanner *s);

/* One NDJSON line (without the newline): init + feed + finish. */
int ipn_bus_line_parse(const char *line, size_t len, IpnBusNotify *ret);
void ipn_bus_notify_done(IpnBusNotify *n);
