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

#define TAILNET_STATUS_MAX_SIZE (32u * 1024u * 1024u)
#define IPN_BUS_LINE_MAX_SIZE (64u * 1024u * 1024u)

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
} TailnetStatus;

/* -EINVAL on invalid JSON or a non-object / missing/unknown BackendState, -EFBIG over the limit. */
int tailnet_status_parse(const char *json, size_t len, TailnetStatus **ret);
TailnetStatus *tailnet_status_free(TailnetStatus *s);

/* The peer whose HostName or MagicDNS name (with or without the tailnet suffix) is name, or
 * NULL. */
/* true when the node is "really on the tailnet": Running && Self.Online && an IPv4. */
bool tailnet_status_is_running(const TailnetStatus *s);

const TailnetPeer *tailnet_status_find_peer(const TailnetStatus *s, const char *name);

/* Whether traffic to this peer can be expected to get through now (the rule is documented in
 * k0s-tsagent.conf(5): data-plane fields first, Online only as a hint, since it is the control
 * server's view and goes stale in a control outage). now: CLOCK_REALTIME µs. */
bool tailnet_peer_is_reachable(const TailnetPeer *p, uint64_t now_realtime_usec);

typedef struct IpnBusNotify {
        bool has_state;
        BackendState state;
        bool has_self_change; /* SelfChange present and non-null */
        bool has_netmap; /* NetMap present and non-null */
        bool has_prefs;
        char *err_message; /* ErrMessage, NULL if null/absent */
        char *version;
} IpnBusNotify;

/* One NDJSON line (without the newline). -EINVAL on invalid JSON or a non-object. */
int ipn_bus_line_parse(const char *line, size_t len, IpnBusNotify *ret);
void ipn_bus_notify_done(IpnBusNotify *n);
