/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * tailscaled LocalAPI client on CurlGlue: a long-lived GET /localapi/v0/watch-ipn-bus stream used
 * as a trigger (mask by what is needed and by the daemon's version), and GET
 * /localapi/v0/status[?peers=false] for the facts (debounced ~50 ms after a trigger; peer changes
 * at most every 750 ms; one request in flight). URL host is local-tailscaled.sock (tailscaled
 * answers 403 to any other Host). The stream's response headers must come within 10 s. When the
 * socket is missing or the stream ends: reconnect with backoff 250 ms -> 5 s (reset only after a
 * stream stayed up 10 s with a valid line), then re-fetch /status. Optional periodic /status
 * refresh for peer liveness (the data-plane fields change without a bus message).
 */

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "curl-glue.h"
#include "tailnet-status.h"

typedef struct Tailnet Tailnet;

/* Called whenever the status or the reachability changed. */
typedef void (*TailnetHandler)(Tailnet *t, void *userdata);

int tailnet_new(CurlGlue *glue, const char *socket_path, TailnetHandler handler, void *userdata,
                Tailnet **ret);
int tailnet_attach(Tailnet *t, sd_event *e); /* starts connecting */
/* Reload: a new socket path reconnects; refresh_usec 0 disables the periodic refresh. */
int tailnet_set_socket(Tailnet *t, const char *socket_path);
void tailnet_set_refresh(Tailnet *t, uint64_t refresh_usec);
/* true when some registry endpoint names a tailnet peer: subscribe to peer changes
 * (NotifyPeerChanges) and fetch /status with peers. A change reconnects the stream with the new
 * mask when the mask differs. Default false: /status?peers=false, and TailnetStatus has no
 * peers. */
void tailnet_set_need_peers(Tailnet *t, bool need_peers);
bool tailnet_get_need_peers(const Tailnet *t);
/* Hint that tailscaled may be back (tailscale0 appeared): if disconnected, reconnect now instead
 * of waiting out the backoff delay. tailscaled serves its LocalAPI before it creates the TUN. */
void tailnet_kick(Tailnet *t);

/* Last good /status, or NULL if none since the stream (re)connected / the socket vanished. */
const TailnetStatus *tailnet_get_status(const Tailnet *t);
/* true while the watch stream is established. */
bool tailnet_is_connected(const Tailnet *t);
/* Human-readable reason of the last failure ("connect: No such file or directory", "HTTP 403"),
 * NULL if none. */
const char *tailnet_get_error(const Tailnet *t);
/* Connection attempts after the first (for metrics). */
uint64_t tailnet_get_reconnects(const Tailnet *t);

Tailnet *tailnet_free(Tailnet *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Tailnet *, tailnet_free);
