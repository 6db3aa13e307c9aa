/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The facts the pure core decides on, as plain structs, and the pure predicates over them.
 * Watchers (netwatch, tailnet, supervisor, clock, file reads) fill these in; reconcile reads
 * them. Nothing here owns a descriptor, an event source or a clock.
 */

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "k0s-version.h"
#include "macro.h"
#include "tailnet-status.h"

#define NETWATCH_MAX_ADDRS 16

typedef struct NetState {
        bool present; /* a link with our name exists */
        int ifindex; /* 0 when absent */
        bool admin_up; /* IFF_UP */
        bool lower_up; /* IFF_LOWER_UP */
        uint8_t operstate; /* IF_OPER_* */
        bool up; /* admin_up && (oper UP || (oper UNKNOWN && lower_up)) — RFC 2863 */
        unsigned mtu;
        size_t n_ipv4, n_ipv6;
        char ipv4[NETWATCH_MAX_ADDRS][INET_ADDRSTRLEN]; /* sorted, no duplicates */
        char ipv6[NETWATCH_MAX_ADDRS][INET6_ADDRSTRLEN]; /* global only (no fe80::/10), sorted */
        uint64_t n_recreated; /* how often the link came back with a new ifindex */
} NetState;

/* Identity of the k0s binary on disk when its version was probed: a start refuses to exec a
 * binary whose identity differs (it was replaced after the probe). */
typedef struct BinaryId {
        bool valid;
        dev_t dev;
        ino_t ino;
        off_t size;
        int64_t mtime_nsec;
} BinaryId;

bool binary_id_equal(const BinaryId *a, const BinaryId *b);

typedef struct K0sSpec {
        char **argv; /* argv[0] is the k0s binary path (absolute) */
        char **env; /* extra "NAME=value" entries, added to the agent's environment */
        char *hash; /* digest of argv + env + every file k0s reads only at start */
        BinaryId binary_id; /* argv[0] as probed; a start of another binary is refused */
} K0sSpec;

void k0s_spec_done(K0sSpec *s);

/* A file the core decides about: its content, or why there is none. */
typedef struct FileFact {
        const char *content; /* NULL when error != 0 */
        size_t len;
        int error; /* 0, -ENOENT (absent), or another -errno (a directory: -EISDIR, too big:
                    * -EFBIG, ...) */
} FileFact;

typedef enum ClockFact {
        CLOCK_FACT_SYNCED, /* the kernel says synchronized */
        CLOCK_FACT_NOT_NEEDED, /* wait_sync false, or auto with a battery-backed RTC */
        CLOCK_FACT_WAITING, /* not synchronized, clock.timeout not yet passed: hold k0s */
        CLOCK_FACT_TIMED_OUT, /* gave up waiting: start k0s with a warning */
        _CLOCK_FACT_MAX,
        _CLOCK_FACT_INVALID = -EINVAL,
} ClockFact;

const char *clock_fact_to_string(ClockFact c);

typedef struct NodeFacts {
        const NetState *net; /* netlink view of cfg->interface; NULL = unknown */
        const TailnetStatus *tailnet; /* last /status, NULL when LocalAPI is unreachable */
        const char *tailnet_error; /* why it is NULL, for the status line; may be NULL */
        const K0sVersion *k0s_version; /* of the binary on disk, NULL while unknown */
        const K0sVersion *k0s_running_version; /* of the k0s that runs now (started or
                                                * adopted), NULL when none runs or unknown */
        BinaryId k0s_binary_id; /* identity of the binary k0s_version was probed from */
        FileFact base_config; /* controller roles: cfg->k0s_base_config */
        int token_file_error; /* 0 when cfg->k0s_token_file exists, else -errno */
        const char *last_address; /* controller roles: tailnet IPv4 k0s last ran with
                                   * (persist_dir), NULL when none recorded */
        ClockFact clock;
        uint64_t now_realtime_usec; /* for LastHandshake ages; 0 = unknown */
} NodeFacts;

/* 100.64.0.0/10 without tailscale's ChromeOS VM range (tsaddr.CGNATRange). */
bool address_is_tailnet_ipv4(const char *a);
/* fd7a:115c:a1e0::/48 (tsaddr.TailscaleULARange). */
bool address_is_tailnet_ipv6(const char *a);
