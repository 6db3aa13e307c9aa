/* SPDX-License-Identifier: MIT */
/*
 * The tailscaled LocalAPI client: the watch-ipn-bus stream (only a trigger), debounced GET /status
 * (the facts), reconnect with backoff, an optional periodic refresh. It owns its easy handles,
 * timers and the last TailnetStatus; it does not decide anything (the manager gates on the
 * status) and it never parses JSON itself (common/tailnet-status does).
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
/* mask=2 (NotifyInitialState): the first line carries State, later ones come on changes. */
#define WATCH_URL LOCALAPI_URL "watch-ipn-bus?mask=2"
#define STATUS_URL LOCALAPI_URL "status"

#define CONNECT_TIMEOUT_MS 2000L
/* /status can block while tailscaled builds its backend: always bounded. */
#define STATUS_TIMEOUT_MS 5000L
#define DEBOUNCE_USEC (50 * USEC_PER_MSEC)
/* A failed /status while the stream is up is retried this late (not a poll: only after a
 * failure). */
#define STATUS_RETRY_USEC (1 * USEC_PER_SEC)
#define RECONNECT_MIN_USEC (250 * USEC_PER_MSEC)
#define RECONNECT_MAX_USEC (5 * USEC_PER_SEC)
/* Room for the error text of a non-200 watch response. */
#define ERROR_BODY_MAX 4096u

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

        /* The stream. */
        CURL *watch;
        CurlBody watch_buf; /* unconsumed bytes (a partial line), or the non-200 error body */
        long watch_code; /* HTTP status once the headers ended, 0 before */
        char *watch_abort; /* why the write callback ended the stream, NULL otherwise */
        bool watch_got_line;

        /* The one /status request in flight, if any. */
        CURL *status_req;
        CurlBody status_body;
        bool status_dirty; /* a trigger arrived while it ran: fetch again afterwards */

        TailnetStatus *status;
        char *error;

        sd_event_source *reconnect_timer; /* one-shot: next connect attempt */
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

/* Takes ownership of error (NULL clears). */
static void tailnet_set_error(Tailnet *t, char *error) {
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
            !streq_ptr(a->host_name, b->host_name) ||
            !streq_ptr(a->magic_dns_suffix, b->magic_dns_suffix) ||
            !strv_equal_ptr(a->health, b->health) || a->n_peers != b->n_peers)
                return false;

        for (size_t i = 0; i < a->n_peers; i++) {
                const TailnetPeer *p = &a->peers[i], *q = &b->peers[i];

                if (!streq_ptr(p->dns_name, q->dns_name) ||
                    !streq_ptr(p->host_name, q->host_name) || !streq_ptr(p->ipv4, q->ipv4) ||
                    !streq_ptr(p->ipv6, q->ipv6) || p->online != q->online)
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
        t->status_dirty = false;
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
        t->watch_code = 0;
        free(t->watch_abort);
        t->watch_abort = NULL;
        t->watch_got_line = false;

        tailnet_cancel_status(t);
        event_timer_disarm(t->refresh_timer);
        event_timer_disarm(t->reconnect_timer);
        tailnet_set_status(t, NULL);
        tailnet_set_state(t, TAILNET_DISCONNECTED);
}

static int tailnet_on_fetch_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void tailnet_schedule_fetch(Tailnet *t, uint64_t delay_usec) {
        int r;

        if (t->state != TAILNET_CONNECTED || !t->event)
                return;

        r = event_timer_arm(t->event, &t->fetch_timer, delay_usec, USEC_PER_MSEC, true,
                            tailnet_on_fetch_timer, t, "tailnet-fetch");
        if (r < 0)
                log_warning_errno(r, "Failed to schedule LocalAPI /status, ignoring: %m");
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
                tailnet_set_status(t, status);
                tailnet_set_error(t, NULL);
        }

        if (t->status_dirty) {
                t->status_dirty = false;
                tailnet_schedule_fetch(t, DEBOUNCE_USEC);
        } else if (failed)
                tailnet_schedule_fetch(t, STATUS_RETRY_USEC);
}

static void tailnet_fetch_status(Tailnet *t) {
        _cleanup_(curl_easy_cleanupp) CURL *easy = NULL;
        int r;

        if (t->state != TAILNET_CONNECTED)
                return;
        if (t->status_req) {
                /* The running request may have read the old state already. */
                t->status_dirty = true;
                return;
        }

        r = curl_glue_easy_new(t->socket_path, CONNECT_TIMEOUT_MS, STATUS_TIMEOUT_MS, &easy);
        if (r >= 0 &&
            (curl_easy_setopt(easy, CURLOPT_URL, STATUS_URL) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, curl_body_write) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t->status_body) != CURLE_OK))
                r = -ENOMEM;
        if (r >= 0) {
                curl_body_reset(&t->status_body);
                t->status_body.max = TAILNET_STATUS_MAX_SIZE;
                r = curl_glue_add(t->glue, easy, tailnet_status_done, t);
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to start LocalAPI GET /status: %m");
                tailnet_schedule_fetch(t, STATUS_RETRY_USEC);
                return;
        }

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

/* Runs inside curl: no curl_multi_* calls from here, only state and sd-event sources. Returns
 * false to end the stream. */
static bool tailnet_handle_line(Tailnet *t, const char *line, size_t len) {
        IpnBusNotify n = {};
        bool first = !t->watch_got_line;
        int r;

        while (len > 0 && line[len - 1] == '\r')
                len--;
        if (len == 0)
                return true;

        t->watch_got_line = true;

        r = ipn_bus_line_parse(line, len, &n);
        if (r < 0) {
                /* Untrusted input: a bad line is no reason to drop a working stream. */
                log_debug_errno(r, "Ignoring unparsable IPN bus line (%zu bytes): %m", len);
                return true;
        }

        if (n.err_message) {
                /* "IPN bus consumer fell behind; closing watch": the server is about to close;
                 * reconnecting at once loses nothing because /status is fetched anew. */
                t->watch_abort = strdup_printf("IPN bus: %s", n.err_message);
                ipn_bus_notify_done(&n);
                if (!t->watch_abort)
                        log_oom();
                return false;
        }

        if (n.has_state)
                log_debug("IPN bus: State=%s", strna(backend_state_to_string(n.state)));

        if (first || n.has_state || n.has_self_change || n.has_netmap)
                tailnet_schedule_fetch(t, DEBOUNCE_USEC);

        ipn_bus_notify_done(&n);
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
        if (code != 200) {
                /* The body is the error text (plain text from http.Error). */
                t->watch_buf.max = ERROR_BODY_MAX;
                return len;
        }

        t->watch_buf.max = IPN_BUS_LINE_MAX_SIZE;
        backoff_reset(&t->backoff);
        tailnet_set_state(t, TAILNET_CONNECTED);
        tailnet_set_error(t, NULL);
        /* Whatever happened while we were away: fetch /status even if no line ever comes. */
        tailnet_schedule_fetch(t, DEBOUNCE_USEC);
        tailnet_arm_refresh(t);
        return len;
}

static size_t tailnet_watch_write(char *p, size_t size, size_t n, void *userdata) {
        Tailnet *t = userdata;
        size_t len = size * n, scanned, start = 0;
        char *nl;
        int r;

        if (t->watch_code != 200) {
                /* Keep the start of an error body; the rest is dropped, not an error. */
                size_t room = t->watch_buf.max - MIN(t->watch_buf.size, t->watch_buf.max);

                if (curl_body_append(&t->watch_buf, p, MIN(len, room)) < 0)
                        return 0;
                return len;
        }

        scanned = t->watch_buf.size;
        r = curl_body_append(&t->watch_buf, p, len);
        if (r < 0) {
                t->watch_abort = r == -EFBIG
                        ? strdup_printf("IPN bus line longer than %u bytes", IPN_BUS_LINE_MAX_SIZE)
                        : NULL;
                if (r == -ENOMEM || !t->watch_abort)
                        log_oom();
                return 0;
        }

        /* Chunk boundaries are not line boundaries: only search the new bytes for '\n'. */
        while ((nl = memchr(t->watch_buf.data + scanned, '\n', t->watch_buf.size - scanned))) {
                size_t end = nl - t->watch_buf.data;

                if (!tailnet_handle_line(t, t->watch_buf.data + start, end - start))
                        return 0;
                start = scanned = end + 1;
        }
        curl_body_consume(&t->watch_buf, start);
        return len;
}

static int tailnet_connect(Tailnet *t);

static int tailnet_on_reconnect_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Tailnet *t = userdata;

        t->reconnects++;
        (void) tailnet_connect(t);
        return 0;
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

static void tailnet_watch_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Tailnet *t = userdata;
        _cleanup_free_ char *reason = NULL;
        bool was_connected = t->state == TAILNET_CONNECTED;
        int r;

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

        log_full_errno(was_connected || !streq_ptr(reason, t->error) ? LOG_WARNING : LOG_DEBUG, 0,
                       "tailscaled LocalAPI %s: %s", t->socket_path, strna(reason));

        tailnet_drop(t);
        tailnet_set_error(t, TAKE_PTR(reason));
        tailnet_schedule_reconnect(t);
}

static int tailnet_connect(Tailnet *t) {
        _cleanup_(curl_easy_cleanupp) CURL *easy = NULL;
        int r;

        tailnet_drop(t);

        r = curl_glue_easy_new(t->socket_path, CONNECT_TIMEOUT_MS, 0, &easy);
        if (r >= 0 &&
            (curl_easy_setopt(easy, CURLOPT_URL, WATCH_URL) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, tailnet_watch_header) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_HEADERDATA, t) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, tailnet_watch_write) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEDATA, t) != CURLE_OK))
                r = -ENOMEM;
        if (r >= 0) {
                /* Set before adding: the header callback reads t->watch. */
                t->watch = easy;
                t->watch_buf.max = ERROR_BODY_MAX;
                r = curl_glue_add(t->glue, easy, tailnet_watch_done, t);
                if (r < 0)
                        t->watch = NULL;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to start LocalAPI watch-ipn-bus: %m");
                tailnet_set_error(t, strdup_printf("cannot start request: %s", strerror(-r)));
                tailnet_schedule_reconnect(t);
                return r;
        }

        TAKE_PTR(easy);
        tailnet_set_state(t, TAILNET_CONNECTING);
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
        sd_event_source_disable_unref(t->fetch_timer);
        sd_event_source_disable_unref(t->refresh_timer);
        sd_event_unref(t->event);

        tailnet_status_free(t->status);
        free(t->error);
        free(t->socket_path);
        free(t);
        return NULL;
}
