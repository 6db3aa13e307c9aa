/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Watches one interface by *name* over rtnetlink (libnl-3): initial dump, then RTNLGRP_LINK,
 * RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR events. tailscaled deletes and recreates the link
 * with a new ifindex, so the index is re-learned on every RTM_NEWLINK with our name. ENOBUFS
 * (socket overrun) -> full resync by a new dump. Never polls.
 */

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <systemd/sd-event.h>

#include "facts.h"
#include "macro.h"

typedef struct Netwatch Netwatch;

/* Called (from the event loop) after every netlink message batch that changed NetState. */
typedef void (*NetwatchHandler)(Netwatch *nw, void *userdata);

int netwatch_new(const char *ifname, NetwatchHandler handler, void *userdata, Netwatch **ret);
/* Opens the socket, subscribes, does the initial dump synchronously, adds an IO source. */
int netwatch_attach(Netwatch *nw, sd_event *e);
/* Change the watched name (config reload); does a resync when attached. Does not call the
 * handler: returns 1 when the state changed, 0 when not, -errno on failure. */
int netwatch_set_ifname(Netwatch *nw, const char *ifname);
/* Receive buffer of the event socket (default 1 MiB); works before and after attach. Tests
 * make it tiny to force ENOBUFS. */
int netwatch_set_rcvbuf(Netwatch *nw, int bytes);
const NetState *netwatch_get_state(const Netwatch *nw);
/* Number of full resyncs done because of ENOBUFS (for tests/status). */
uint64_t netwatch_get_resyncs(const Netwatch *nw);
Netwatch *netwatch_free(Netwatch *nw);
DEFINE_TRIVIAL_CLEANUP_FUNC(Netwatch *, netwatch_free);

/* true for 100.64.0.0/10 minus 100.115.92.0/23 (tsaddr.CGNATRange minus ChromeOSVMRange). */
