/* SPDX-License-Identifier: MIT */
/*
 * The tailscaled LocalAPI client: the watch-ipn-bus stream (only a trigger, scanned in O(1)
 * memory), coalesced GET /status (the facts; without peers unless they are needed), reconnect
 * with backoff, an optional periodic refresh. It owns its easy handles, timers and the last
 * TailnetStatus; it does not decide anything (the manager gates on the status) and it never
 * parses JSON itself (common/tailnet-status does).
 */

#include <inttypes.h>
#include <stdio.h>

#include "util.h"
#include "backoff.h"
#include "log.h"
#include "event-util.h"
#include "tailnet.h"

/* tailscaled answers 403 to any other Host; libcurl derives the Host header from the URL. */
#define LOCALAPI_URL "http://local-tailscaled.sock/localapi/v0/"
#define WATCH_URL_FMT LOCALAPI_URL "watch-ipn-bus?mask=%u"
/* ipn/localapi/localapi.go serveStatus: peers=false -> StatusWithoutPeers(). */
#define STATUS_URL_PEERS LOCALAPI_URL "status"
#define STATUS_URL_NO_PEERS LOCALAPI_URL "status?peers=false"

/* Watch mask bits (tailscale ipn/backend.go NotifyWatchOpt). */
#define NOTIFY_INITIAL_STATE 2u /* first line carries State; SelfChange comes to every watcher */
#define NOTIFY_PEER_CHANGES 4096u /* v1.98+: peer deltas instead of (v1.98) full NetMaps */

#define CONNECT_TIMEOUT_MS 2000L
/* The response headers of the stream must come this soon (tailscaled flushes them as soon as
 * the watcher is registered); a LocalAPI that accepts and says nothing is given up. */
#define HEADER_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* /status can block while tailscaled builds its backend: always bounded (headers included). */
#define STATUS_TIMEOUT_MS 10000L
/* Body caps that keep the agent's peak RSS under 64 MiB whatever tailscaled sends: the body is
 * held once and walked without a tree (common/tailnet-status.c), and only the peer array is
 * built from it (~200 B per peer). Without peers a real body is a few KiB: 4 MiB. With peers a
 * real body is ~1.2 KiB per peer: 24 MiB is ~20,000 peers. A cJSON tree of 24 MiB of tiny
 * elements would have cost ~80 B x 12 M elements = ~1 GiB; this way it is ~24 MiB + peers. */
#define STATUS_MAX_NO_PEERS (4u * 1024u * 1024u)
#define STATUS_MAX_PEERS TAILNET_STATUS_MAX_SIZE
#define DEBOUNCE_USEC (50 * USEC_PER_MSEC)
/* Peer changes (and old daemons' NetMaps) come as often as every peer flips: one /status with
 * peers per this interval at most, so a 5,000-peer tailnet costs little, and a change is still
 * seen within a second. */
#define PEER_DEBOUNCE_USEC (100 * USEC_PER_MSEC)
#define PEER_MIN_INTERVAL_USEC (750 * USEC_PER_MSEC)
/* Daemons before v1.98 push a full NetMap to every watcher on every peer change, so each trigger
 * is also a full /status: spaced further (the 5,000-peer benchmark: 6.5 % of a core at 750 ms). */
#define PEER_MIN_INTERVAL_OLD_USEC (1500 * USEC_PER_MSEC)
/* The backoff starts over only after a stream stayed up this long and delivered a valid line: a
 * server that answers 200 and closes at once gets ever fewer reconnects. */
#define STABLE_USEC (10 * USEC_PER_SEC)
/* A failed /status while the stream is up is retried this late (not a poll: only after a
 * failure). */
#define STATUS_RETRY_USEC (1 * USEC_PER_SEC)
#define RECONNECT_MIN_USEC (250 * USEC_PER_MSEC)
#define RECONNECT_MAX_USEC (5 * USEC_PER_SEC)
/* Room for the error text of a non-200 watch response. */
#define ERROR_BODY_MAX 4096u
/* Bound of every text from tailscaled kept for status.json / STATUS= (str_sanitize()). */
#define ERROR_MAX_LEN 256u

typedef enum TailnetState {
        TAILNET_DISCONNECTED, /* no stream; the reconnect timer is armed once attached */
        TAILNET_CONNECTING, /* watch request running, no response headers yet */
        TAILNET_CONNECTED, /* watch stream answered 200 and is open */
        _TAILNET_STATE_MAX,
        _TAILNET_STATE_INVALID = -EINVAL,
} TailnetState;

static const char *const tailnet_state_table[_TAILNET_STATE_MAX] = {
        [TAILNET_DISCONNECTED] = "disconnected",
        [TAILNET_CONNECTING] = "connecting",
        [TAILNET_CONNECTED] = "connected",
};

static const char *strna(const char *s) {
        return s ?: "n/a";
}

static const char *tailnet_state_to_string(TailnetState s) {
        if (s < 0 || s >= _TAILNET_STATE_MAX)
                return NULL;
        return tailnet_state_table[s];
}

struct Tailnet {
        CurlGlue *glue;
        sd_event *event;
        char *socket_path;
        TailnetHandler handler;
        void *userdata;

        TailnetState state;
        Backoff backoff;
        uint64_t reconnects;
        uint64_t refresh_usec;

        bool need_peers; /* some registry names a peer: peer deltas and /status with peers */
        char *daemon_version; /* from the bus (every Notify carries Version) or /status */
        unsigned mask; /* the watch mask of the current/last stream */

        /* The stream. */
        CURL *watch;
        CurlBody watch_buf; /* the non-200 error body */
        IpnBusScanner scan; /* the line being received */
        long watch_code; /* HTTP status once the headers ended, 0 before */
        char *watch_abort; /* why the write callback ended the stream, NULL otherwise */
        bool watch_remask; /* ended to reconnect with another mask: at once, not an error */
        bool watch_got_line; /* a valid line arrived on this stream */
        uint64_t connected_usec; /* CLOCK_MONOTONIC of the 200 */

        /* The one /status request in flight, if any. */
        CURL *status_req;
        CurlBody status_body;
        bool status_dirty; /* a trigger arrived while it ran: fetch again afterwards */
        bool status_dirty_peers; /* ... and that trigger was a peer change */
        uint64_t last_fetch_usec; /* CLOCK_MONOTONIC start of the last /status */

        TailnetStatus *status;
        char *error;

        sd_event_source *reconnect_timer; /* one-shot: next connect attempt */
        sd_event_source *header_timer; /* one-shot: the stream's headers are overdue */
        sd_event_source *fetch_timer; /* one-shot: debounced /status */
        sd_event_source *refresh_timer; /* periodic /status while connected, if configured */
        sd_event_source *notify_source; /* defer: calls handler outside of curl callbacks */
};

static void tailnet_notify(Tailnet *t) {
        /* Deferred: changes are found inside curl callbacks, where the handler must not run (it
         * may reconfigure or free us); a burst of changes also gives one call. */
        if (t->notify_source)
                (void) sd_event_source_set_enabled(t->notify_source, SD_EVENT_ONESHOT);
}

static int tailnet_on_notify(sd_event_source *s, void *userdata) {
        Tailnet *t = userdata;

        if (t->handler)
                t->handler(t, t->userdata); /* may free t: touch nothing afterwards */
        return 0;
}

static void tailnet_set_state(Tailnet *t, TailnetState state) {
        bool was_connected = t->state == TAILNET_CONNECTED;

        if (t->state == state)
                return;

        log_full_errno(was_connected || state == TAILNET_CONNECTED ? LOG_INFO : LOG_DEBUG, 0,
                       "tailscaled LocalAPI %s: %s -> %s", t->socket_path,
                       tailnet_state_to_string(t->state), tailnet_state_to_string(state));
        t->state = state;

        if (was_connected != (state == TAILNET_CONNECTED))
                tailnet_notify(t);
}

/* Takes ownership of error (NULL clears). Whatever tailscaled said is in it: it is made
 * printable and bounded here, before it can reach status.json, STATUS= or a log field. */
static void tailnet_set_error(Tailnet *t, char *error) {
        if (error) {
                char *clean = str_sanitize(error, ERROR_MAX_LEN);

                free(error);
                error = clean;
                if (!error)
                        log_oom();
        }
        if (streq_ptr(t->error, error)) {
                free(error);
                return;
        }
        free(t->error);
        t->error = error;
        tailnet_notify(t);
}

static bool strv_equal_ptr(char *const *a, char *const *b) {
        return strv_equal(a ? a : (char *const[]){ NULL }, b ? b : (char *const[]){ NULL });
}

/* Only what TailnetStatus holds counts: byte counters and timestamps of /status are not in it,
 * so a periodic refresh of an unchanged tailnet reports nothing. */
static bool tailnet_status_equal(const TailnetStatus *a, const TailnetStatus *b) {
        if (!a || !b)
                return a == b;

        if (!streq_ptr(a->version, b->version) || a->tun != b->tun ||
            a->backend_state != b->backend_state || !streq_ptr(a->auth_url, b->auth_url) ||
            !streq_ptr(a->ipv4, b->ipv4) || !streq_ptr(a->ipv6, b->ipv6) ||
            a->self_online != b->self_online || !streq_ptr(a->dns_name, b->dns_name) ||
            a->self_key_expiry_usec != b->self_key_expiry_usec ||
            !streq_ptr(a->host_name, b->host_name) ||
            !streq_ptr(a->magic_dns_suffix, b->magic_dns_suffix) ||
            !strv_equal_ptr(a->health, b->health) || a->n_peers != b->n_peers)
                return false;

        for (size_t i = 0; i < a->n_peers; i++) {
                const TailnetPeer *p = &a->peers[i], *q = &b->peers[i];

                if (!streq_ptr(p->dns_name, q->dns_name) ||
                    !streq_ptr(p->host_name, q->host_name) || !streq_ptr(p->ipv4, q->ipv4) ||
                    !streq_ptr(p->ipv6, q->ipv6) || p->online != q->online ||
                    p->active != q->active || p->last_handshake_usec != q->last_handshake_usec ||
                    !streq_ptr(p->cur_addr, q->cur_addr) || !streq_ptr(p->relay, q->relay) ||
                    p->key_expiry_usec != q->key_expiry_usec)
                        return false;
        }
        return true;
}

static void tailnet_set_status(Tailnet *t, TailnetStatus *status) {
        if (tailnet_status_equal(t->status, status)) {
                tailnet_status_free(status);
                return;
        }
        tailnet_status_free(t->status);
        t->status = status;
        tailnet_notify(t);
}

static void tailnet_cancel_status(Tailnet *t) {
        if (t->status_req) {
                curl_glue_remove(t->glue, t->status_req);
                curl_easy_cleanup(t->status_req);
                t->status_req = NULL;
        }
        curl_body_reset(&t->status_body);
        t->status_dirty = t->status_dirty_peers = false;
        event_timer_disarm(t->fetch_timer);
}

/* Tear down the stream and everything that belongs to it; the status goes with it (NULL until
 * the next connection has fetched a fresh one). */
static void tailnet_drop(Tailnet *t) {
        if (t->watch) {
                curl_glue_remove(t->glue, t->watch);
                curl_easy_cleanup(t->watch);
                t->watch = NULL;
        }
        curl_body_reset(&t->watch_buf);
        ipn_bus_scanner_init(&t->scan);
        t->watch_code = 0;
        free(t->watch_abort);
        t->watch_abort = NULL;
        t->watch_remask = t->watch_got_line = false;
        t->connected_usec = 0;
        event_timer_disarm(t->header_timer);

        tailnet_cancel_status(t);
        event_timer_disarm(t->refresh_timer);
        event_timer_disarm(t->reconnect_timer);
        tailnet_set_status(t, NULL);
        tailnet_set_state(t, TAILNET_DISCONNECTED);
}

static int tailnet_on_fetch_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int tailnet_on_reconnect_timer(sd_event_source *s, uint64_t usec, void *userdata);

static uint64_t tailnet_now(Tailnet *t) {
        uint64_t now = 0;

        (void) sd_event_now(t->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void tailnet_schedule_fetch(Tailnet *t, uint64_t delay_usec) {
        int r;

        if (t->state != TAILNET_CONNECTED || !t->event)
                return;

        r = event_timer_arm(t->event, &t->fetch_timer, delay_usec, USEC_PER_MSEC, true,
                            tailnet_on_fetch_timer, t, "tailnet-fetch");
        if (r < 0)
                log_warning_errno(r, "Failed to schedule LocalAPI /status, ignoring: %m");
}

/* A trigger from the bus. Self/state changes are fetched after a short debounce; peer changes
 * (which come as often as peers flip) at most once per PEER_MIN_INTERVAL_USEC. */
static int tailnet_daemon_minor(const Tailnet *t);

static void tailnet_trigger(Tailnet *t, bool peers) {
        uint64_t delay = DEBOUNCE_USEC, now, next;

        if (peers) {
                int minor = tailnet_daemon_minor(t);
                now = tailnet_now(t);
                next = usec_add(t->last_fetch_usec,
                                minor >= 0 && minor < 98 ? PEER_MIN_INTERVAL_OLD_USEC
                                                         : PEER_MIN_INTERVAL_USEC);
                delay = MAX(PEER_DEBOUNCE_USEC, next > now ? next - now : 0);
        }
        if (t->status_req) {
                /* The running request may have read the old state already. */
                t->status_dirty = true;
                t->status_dirty_peers = t->status_dirty_peers || peers;
                return;
        }
        tailnet_schedule_fetch(t, delay);
}

/* "1.102.3-t9c1f2a3b4-g5d6e7f8a9" -> 102 when the major is 1; -1 when unknown. */
static int tailnet_daemon_minor(const Tailnet *t) {
        unsigned major, minor;

        if (!t->daemon_version || sscanf(t->daemon_version, "%u.%u", &major, &minor) != 2)
                return -1;
        return major > 1 ? 1000 : major < 1 ? 0 : (int) MIN(minor, 999u);
}

/* What to subscribe to (shared facts tailscale.md §3; tailscale ipn/backend.go):
 * - NotifyInitialState always: the first line tells the state; State and SelfChange (v1.98+,
 *   sent to every watcher) lines follow on changes.
 * - NotifyPeerChanges when peers are needed: v1.100+ then sends PeersChanged/PeersRemoved
 *   deltas, and without it nothing about peers at all (Linux sends no NetMap after the initial
 *   one: ipn/ipnlocal/bus.go goosGetsLegacyNetmapNotify).
 * - On v1.98 always: there the bit makes incremental peer changes come as small PeerChanges
 *   lines instead of full NetMaps (v1.98.0 ipn/ipnlocal/local.go, the watcher loop that "skips
 *   the full Netmap"), so it saves megabytes per change even when peers are not needed.
 * - Before v1.98 the bit is unknown and ignored (no mask validation before v1.102): full
 *   NetMaps come on every change whatever the mask; they are triggers, never trees. */
static unsigned tailnet_wanted_mask(const Tailnet *t) {
        int minor = tailnet_daemon_minor(t);
        unsigned mask = NOTIFY_INITIAL_STATE;

        if (t->need_peers || (minor >= 98 && minor < 100))
                mask |= NOTIFY_PEER_CHANGES;
        return mask;
}

/* Remember the daemon's version; true when the stream must be reopened with another mask. */
static bool tailnet_learn_version(Tailnet *t, const char *version) {
        char *v;

        if (isempty(version) || streq_ptr(version, t->daemon_version))
                return false;
        v = strdup(version);
        if (!v) {
                log_oom();
                return false;
        }
        free(t->daemon_version);
        t->daemon_version = v;
        log_debug("tailscaled version %s: watch mask %u.", v, tailnet_wanted_mask(t));
        return t->watch && tailnet_wanted_mask(t) != t->mask;
}

static void tailnet_reconnect_now(Tailnet *t) {
        int r;

        r = event_timer_arm(t->event, &t->reconnect_timer, 0, USEC_PER_MSEC, false,
                            tailnet_on_reconnect_timer, t, "tailnet-reconnect");
        if (r < 0)
                log_error_errno(r, "Failed to schedule LocalAPI reconnect: %m");
}

/* wgengine/magicsock/endpoint.go trustUDPAddrDuration (6.5 s), plus a margin. */
#define CURADDR_TRUST_USEC (7 * USEC_PER_SEC)

/* Control (while this node reaches it) shows a peer offline whose CurAddr still says direct. */
static bool tailnet_status_curaddr_pending(const TailnetStatus *s) {
        if (!s || !s->self_online)
                return false;
        for (size_t i = 0; i < s->n_peers; i++)
                if (s->peers[i].cur_addr && !s->peers[i].online)
                        return true;
        return false;
}

static void tailnet_status_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Tailnet *t = userdata;
        _cleanup_free_ char *error = NULL;
        TailnetStatus *status = NULL;
        bool failed;
        int r;

        r = curl_glue_result(easy, result, STATUS_TIMEOUT_MS * USEC_PER_MSEC, &t->status_body,
                             &error);
        if (r == 0) {
                r = tailnet_status_parse(t->status_body.data ? t->status_body.data : "",
                                         t->status_body.size, &status);
                if (r < 0) {
                        error = strdup_printf("invalid /status response: %s", strerror(-r));
                        r = 1;
                }
        }
        curl_easy_cleanup(easy);
        t->status_req = NULL;
        curl_body_reset(&t->status_body);

        if (r < 0) {
                log_oom();
                error = strdup("out of memory");
        }
        failed = r != 0;

        if (failed) {
                /* Retried every STATUS_RETRY_USEC: say it loudly once per distinct error. */
                log_full_errno(streq_ptr(error, t->error) ? LOG_DEBUG : LOG_WARNING, 0,
                               "LocalAPI GET /status on %s failed: %s", t->socket_path,
                               strna(error));
                tailnet_set_error(t, TAKE_PTR(error));
        } else {
                /* Only when the bus has not told it (every Notify carries Version): the bus
                 * is the stream whose mask depends on it. */
                if (!t->daemon_version && tailnet_learn_version(t, status->version)) {
                        t->watch_remask = true;
                        tailnet_reconnect_now(t);
                }
                tailnet_set_status(t, status);
                tailnet_set_error(t, NULL);
        }

        if (t->status_dirty) {
                bool peers = t->status_dirty_peers;

                t->status_dirty = t->status_dirty_peers = false;
                tailnet_trigger(t, peers);
        } else if (failed)
                tailnet_schedule_fetch(t, STATUS_RETRY_USEC);
        else if (t->need_peers && tailnet_status_curaddr_pending(tailnet_get_status(t)))
                /* A peer control shows offline is still reachable only through its CurAddr,
                 * which magicsock trusts for 6.5 s after the last pong and no bus line announces
                 * going stale: look again once it has (or the dark registry stays first until
                 * peer_refresh). */
                tailnet_schedule_fetch(t, CURADDR_TRUST_USEC);
}

static void tailnet_fetch_status(Tailnet *t) {
        _cleanup_(curl_easy_cleanupp) CURL *easy = NULL;
        int r;

        if (t->state != TAILNET_CONNECTED)
                return;
        if (t->status_req) {
                t->status_dirty = true;
                return;
        }

        r = curl_glue_easy_new(t->socket_path, CONNECT_TIMEOUT_MS, STATUS_TIMEOUT_MS, &easy);
        if (r >= 0 &&
            (curl_easy_setopt(easy, CURLOPT_URL,
                              t->need_peers ? STATUS_URL_PEERS : STATUS_URL_NO_PEERS) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, curl_body_write) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t->status_body) != CURLE_OK))
                r = -ENOMEM;
        if (r >= 0) {
                curl_body_reset(&t->status_body);
                t->status_body.max = t->need_peers ? STATUS_MAX_PEERS : STATUS_MAX_NO_PEERS;
                r = curl_glue_add(t->glue, easy, tailnet_status_done, t);
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to start LocalAPI GET /status: %m");
                tailnet_schedule_fetch(t, STATUS_RETRY_USEC);
                return;
        }

        t->last_fetch_usec = tailnet_now(t);
        t->status_req = TAKE_PTR(easy);
}

static int tailnet_on_fetch_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        tailnet_fetch_status(userdata);
        return 0;
}

static int tailnet_on_refresh_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Tailnet *t = userdata;
        int r;

        tailnet_fetch_status(t);

        r = event_timer_arm(t->event, &t->refresh_timer, t->refresh_usec, 0, false,
                            tailnet_on_refresh_timer, t, "tailnet-refresh");
        if (r < 0)
                log_warning_errno(r, "Failed to re-arm LocalAPI refresh timer, ignoring: %m");
        return 0;
}

static void tailnet_arm_refresh(Tailnet *t) {
        int r;

        if (t->refresh_usec == 0 || t->state != TAILNET_CONNECTED || !t->event) {
                event_timer_disarm(t->refresh_timer);
                return;
        }

        r = event_timer_arm(t->event, &t->refresh_timer, t->refresh_usec, 0, false,
                            tailnet_on_refresh_timer, t, "tailnet-refresh");
        if (r < 0)
                log_warning_errno(r, "Failed to arm LocalAPI refresh timer, ignoring: %m");
}

/* One scanned line. Runs inside curl: no curl_multi_* calls from here, only state and sd-event
 * sources. Returns false to end the stream. */
static bool tailnet_handle_notify(Tailnet *t, IpnBusNotify *n) {
        bool first = !t->watch_got_line, old_daemon;
        int minor;

        t->watch_got_line = true;

        if (n->err_message) {
                /* "IPN bus consumer fell behind; closing watch": the server is about to close;
                 * reconnecting at once loses nothing because /status is fetched anew. The
                 * text is sanitized (tailnet_set_error() again, to be sure). */
                t->watch_abort = strdup_printf("IPN bus: %s", n->err_message);
                if (!t->watch_abort)
                        log_oom();
                return false;
        }
        if (tailnet_learn_version(t, n->version)) {
                t->watch_remask = true;
                return false;
        }
        if (n->has_state)
                log_debug("IPN bus: State=%s", strna(backend_state_to_string(n->state)));

        if (first || n->has_state || n->has_self_change)
                tailnet_trigger(t, false);

        /* Before v1.98 there is no SelfChange: a NetMap may carry a change of self. */
        minor = tailnet_daemon_minor(t);
        old_daemon = minor < 98;
        if (t->need_peers && (n->has_peer_changes || n->has_netmap))
                tailnet_trigger(t, true);
        else if (old_daemon && n->has_netmap)
                tailnet_trigger(t, true); /* rate-limited like peer changes */
        return true;
}

static size_t tailnet_watch_header(char *p, size_t size, size_t n, void *userdata) {
        Tailnet *t = userdata;
        size_t len = size * n;
        long code = 0;

        /* Only the empty line that ends the (first) header block matters; a chunked body's
         * trailers end with one too. */
        if (t->watch_code != 0 || !(len == 0 || (len <= 2 && (p[0] == '\r' || p[0] == '\n'))))
                return len;

        (void) curl_easy_getinfo(t->watch, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 100 && code < 200)
                return len; /* an interim response; the real one follows */

        t->watch_code = code;
        event_timer_disarm(t->header_timer);
        if (code != 200) {
                /* The body is the error text (plain text from http.Error). */
                t->watch_buf.max = ERROR_BODY_MAX;
                return len;
        }

        /* No backoff_reset() here: only a stream that stays up resets it (tailnet_watch_done). */
        t->connected_usec = tailnet_now(t);
        tailnet_set_state(t, TAILNET_CONNECTED);
        tailnet_set_error(t, NULL);
        /* Whatever happened while we were away: fetch /status even if no line ever comes. */
        tailnet_schedule_fetch(t, DEBOUNCE_USEC);
        tailnet_arm_refresh(t);
        return len;
}

/* Bytes of the stream: split on '\n' (chunk boundaries are not line boundaries) and scanned as
 * they come, so a 40 MB NetMap line costs no memory at all. */
static size_t tailnet_watch_write(char *p, size_t size, size_t n, void *userdata) {
        Tailnet *t = userdata;
        size_t len = size * n, start = 0;
        char *nl;

        if (t->watch_code != 200) {
                /* Keep the start of an error body; the rest is dropped, not an error. */
                size_t room = t->watch_buf.max - MIN(t->watch_buf.size, t->watch_buf.max);

                if (curl_body_append(&t->watch_buf, p, MIN(len, room)) < 0)
                        return 0;
                return len;
        }

        while ((nl = memchr(p + start, '\n', len - start))) {
                IpnBusNotify notify = {};
                size_t end = (size_t) (nl - p);
                bool keep = true;
                int r;

                ipn_bus_scanner_feed(&t->scan, p + start, end - start);
                if (t->scan.bytes > 0) {
                        r = ipn_bus_scanner_finish(&t->scan, &notify);
                        if (r < 0)
                                /* Untrusted input: a bad line is no reason to drop a working
                                 * stream. */
                                log_debug_errno(r, "Ignoring unparsable IPN bus line: %m");
                        else
                                keep = tailnet_handle_notify(t, &notify);
                        ipn_bus_notify_done(&notify);
                }
                if (!keep)
                        return 0;
                start = end + 1;
        }
        ipn_bus_scanner_feed(&t->scan, p + start, len - start);
        return len;
}

static void tailnet_schedule_reconnect(Tailnet *t) {
        uint64_t delay = backoff_next(&t->backoff);
        int r;

        r = event_timer_arm(t->event, &t->reconnect_timer, delay, USEC_PER_MSEC, false,
                            tailnet_on_reconnect_timer, t, "tailnet-reconnect");
        if (r < 0)
                /* Without a timer nothing would ever retry: this is worth an error. */
                log_error_errno(r, "Failed to schedule LocalAPI reconnect: %m");
        else
                log_debug("Reconnecting to tailscaled LocalAPI in %" PRIu64 " ms.",
                          delay / USEC_PER_MSEC);
}

/* The stream is gone (reason: why; NULL only on OOM): back off and retry. The backoff starts
 * over only when the stream had stayed up for STABLE_USEC and delivered a valid line. */
static void tailnet_lost(Tailnet *t, char *reason) {
        bool was_connected = t->state == TAILNET_CONNECTED;
        bool stable = t->watch_got_line && t->connected_usec > 0 &&
                tailnet_now(t) >= usec_add(t->connected_usec, STABLE_USEC);

        log_full_errno(was_connected || !streq_ptr(reason, t->error) ? LOG_WARNING : LOG_DEBUG, 0,
                       "tailscaled LocalAPI %s: %s", t->socket_path, strna(reason));

        tailnet_drop(t);
        tailnet_set_error(t, reason);
        if (stable)
                backoff_reset(&t->backoff);
        tailnet_schedule_reconnect(t);
}

static int tailnet_on_header_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Tailnet *t = userdata;

        tailnet_lost(t,
                     strdup_printf("no response from tailscaled within %" PRIu64 "s",
                                   HEADER_TIMEOUT_USEC / USEC_PER_SEC));
        return 0;
}

static void tailnet_watch_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Tailnet *t = userdata;
        _cleanup_free_ char *reason = NULL;
        int r;

        if (t->watch_remask) {
                /* Not a failure: reopen at once with the mask for this daemon. */
                curl_easy_cleanup(easy);
                t->watch = NULL;
                tailnet_drop(t);
                tailnet_reconnect_now(t);
                return;
        }

        if (t->watch_abort)
                reason = TAKE_PTR(t->watch_abort);
        else {
                r = curl_glue_result(easy, result, CONNECT_TIMEOUT_MS * USEC_PER_MSEC,
                                     &t->watch_buf, &reason);
                if (r == 0)
                        /* A clean chunked end: tailscaled is shutting down. */
                        reason = strdup("watch-ipn-bus stream ended");
                if (r < 0 || !reason)
                        log_oom();
        }

        /* Already removed from the multi handle by the glue. */
        curl_easy_cleanup(easy);
        t->watch = NULL;
        tailnet_lost(t, TAKE_PTR(reason));
}

static int tailnet_connect(Tailnet *t) {
        _cleanup_(curl_easy_cleanupp) CURL *easy = NULL;
        char url[sizeof(WATCH_URL_FMT) + 16];
        int r;

        tailnet_drop(t);

        t->mask = tailnet_wanted_mask(t);
        (void) snprintf(url, sizeof(url), WATCH_URL_FMT, t->mask);
        r = curl_glue_easy_new(t->socket_path, CONNECT_TIMEOUT_MS, 0, &easy);
        if (r >= 0 &&
            (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, tailnet_watch_header) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_HEADERDATA, t) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, tailnet_watch_write) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEDATA, t) != CURLE_OK))
                r = -ENOMEM;
        if (r >= 0)
                r = event_timer_arm(t->event, &t->header_timer, HEADER_TIMEOUT_USEC, USEC_PER_MSEC,
                                    false, tailnet_on_header_timer, t, "tailnet-headers");
        if (r >= 0) {
                /* Set before adding: the header callback reads t->watch. */
                t->watch = easy;
                t->watch_buf.max = ERROR_BODY_MAX;
                r = curl_glue_add(t->glue, easy, tailnet_watch_done, t);
                if (r < 0)
                        t->watch = NULL;
        }
        if (r < 0) {
                event_timer_disarm(t->header_timer);
                log_error_errno(r, "Failed to start LocalAPI watch-ipn-bus: %m");
                tailnet_set_error(t, strdup_printf("cannot start request: %s", strerror(-r)));
                tailnet_schedule_reconnect(t);
                return r;
        }

        TAKE_PTR(easy);
        tailnet_set_state(t, TAILNET_CONNECTING);
        return 0;
}

static int tailnet_on_reconnect_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Tailnet *t = userdata;

        t->reconnects++;
        (void) tailnet_connect(t);
        return 0;
}

int tailnet_new(CurlGlue *glue, const char *socket_path, TailnetHandler handler, void *userdata,
                Tailnet **ret) {
        Tailnet *t;
        int r;

        if (!glue || !ret)
                return -EINVAL;
        r = curl_glue_check_socket_path(socket_path);
        if (r < 0)
                return r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->glue = glue;
        t->handler = handler;
        t->userdata = userdata;
        t->state = TAILNET_DISCONNECTED;
        backoff_init(&t->backoff, RECONNECT_MIN_USEC, RECONNECT_MAX_USEC);
        t->socket_path = strdup(socket_path);
        if (!t->socket_path) {
                free(t);
                return -ENOMEM;
        }

        *ret = t;
        return 0;
}

int tailnet_attach(Tailnet *t, sd_event *e) {
        int r;

        if (!t || !e)
                return -EINVAL;
        if (t->event)
                return -EBUSY;

        r = sd_event_add_defer(e, &t->notify_source, tailnet_on_notify, t);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(t->notify_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(t->notify_source, "tailnet-notify");
        t->event = sd_event_ref(e);

        /* A failure here is retried by the reconnect timer; attaching itself worked. */
        (void) tailnet_connect(t);
        return 0;
}

int tailnet_set_socket(Tailnet *t, const char *socket_path) {
        char *p;
        int r;

        if (!t)
                return -EINVAL;
        r = curl_glue_check_socket_path(socket_path);
        if (r < 0)
                return r;
        if (streq(t->socket_path, socket_path))
                return 0;

        p = strdup(socket_path);
        if (!p)
                return -ENOMEM;

        log_info("tailscaled LocalAPI socket changed: %s -> %s", t->socket_path, p);
        if (t->event)
                tailnet_drop(t);
        free(t->socket_path);
        t->socket_path = p;

        if (!t->event)
                return 0;

        tailnet_set_error(t, NULL);
        backoff_reset(&t->backoff);
        (void) tailnet_connect(t);
        return 0;
}

void tailnet_kick(Tailnet *t) {
        /* Only between attempts: a running connect is already as fast as it gets. */
        if (!t || !t->event || t->state != TAILNET_DISCONNECTED)
                return;
        log_debug("tailscaled LocalAPI %s: retrying now, without waiting for the backoff.",
                  t->socket_path);
        backoff_reset(&t->backoff);
        t->reconnects++;
        (void) tailnet_connect(t);
}

void tailnet_set_need_peers(Tailnet *t, bool need_peers) {
        if (!t || t->need_peers == need_peers)
                return;
        t->need_peers = need_peers;
        log_debug("tailscaled LocalAPI: peers %s.", need_peers ? "needed" : "not needed");
        if (!t->event || t->state == TAILNET_DISCONNECTED)
                return; /* the next connect uses the new mask */
        if (tailnet_wanted_mask(t) != t->mask) {
                /* From here (not inside curl) the stream can go at once. */
                tailnet_drop(t);
                (void) tailnet_connect(t);
                return;
        }
        /* Same mask (v1.98): fetch /status with or without peers now. */
        tailnet_trigger(t, false);
}

bool tailnet_get_need_peers(const Tailnet *t) {
        return t && t->need_peers;
}

void tailnet_set_refresh(Tailnet *t, uint64_t refresh_usec) {
        if (!t || t->refresh_usec == refresh_usec)
                return;
        t->refresh_usec = refresh_usec;
        tailnet_arm_refresh(t);
}

const TailnetStatus *tailnet_get_status(const Tailnet *t) {
        return t ? t->status : NULL;
}

bool tailnet_is_connected(const Tailnet *t) {
        return t && t->state == TAILNET_CONNECTED;
}

const char *tailnet_get_error(const Tailnet *t) {
        return t ? t->error : NULL;
}

uint64_t tailnet_get_reconnects(const Tailnet *t) {
        return t ? t->reconnects : 0;
}

Tailnet *tailnet_free(Tailnet *t) {
        if (!t)
                return NULL;

        /* No handler calls from here on: the owner is going away. */
        t->notify_source = sd_event_source_disable_unref(t->notify_source);
        tailnet_drop(t);

        sd_event_source_disable_unref(t->reconnect_timer);
        sd_event_source_disable_unref(t->header_timer);
        sd_event_source_disable_unref(t->fetch_timer);
        sd_event_source_disable_unref(t->refresh_timer);
        sd_event_unref(t->event);

        tailnet_status_free(t->status);
        ipn_bus_scanner_done(&t->scan);
        free(t->daemon_version);
        free(t->error);
        free(t->socket_path);
        free(t);
        return NULL;
}
