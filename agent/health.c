/* SPDX-License-Identifier: MIT */
/*
 * The k0s status-socket probe: while enabled, GET /status every interval with a hard timeout,
 * keep the last K0sStatus or the error, and tell the owner when that changed. It owns its timer
 * and request; it reports only and never acts on k0s (the supervisor and manager do).
 */

#include <stdio.h>

#include "util.h"
#include "event-util.h"
#include "health.h"
#include "log.h"

/* k0s serves plain net/http on the unix socket: any host will do. */
#define STATUS_URL "http://localhost/status"

#define DEFAULT_INTERVAL_USEC (10 * USEC_PER_SEC)
/* k0s can block for minutes building its API client; a probe without a timeout would hang. */
#define DEFAULT_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define CONNECT_TIMEOUT_MS 2000L

struct Health {
        CurlGlue *glue;
        sd_event *event;
        char *socket_path;
        uint64_t interval_usec, timeout_usec;
        bool enabled;
        HealthHandler handler;
        void *userdata;

        CURL *req; /* the probe in flight, if any */
        CurlBody body;
        K0sStatus *status; /* last probe's result, NULL if it failed */
        char *error; /* last probe's failure, NULL if it worked */

        sd_event_source *timer; /* one-shot: next probe; off when disabled */
        sd_event_source *notify_source; /* defer: calls handler outside of curl callbacks */
};

static bool k0s_status_equal(const K0sStatus *a, const K0sStatus *b) {
        if (!a || !b)
                return a == b;
        return streq_ptr(a->version, b->version) && streq_ptr(a->role, b->role) &&
                a->pid == b->pid && a->workloads == b->workloads &&
                a->single_node == b->single_node && a->api_ok == b->api_ok &&
                streq_ptr(a->api_message, b->api_message);
}

/* Takes ownership of both (either may be NULL). */
static void health_set_result(Health *h, K0sStatus *status, char *error) {
        bool changed = !k0s_status_equal(h->status, status) || !streq_ptr(h->error, error);

        k0s_status_free(h->status);
        h->status = status;
        free(h->error);
        h->error = error;

        /* Deferred: the handler must not run inside the glue's done loop (it may free us). */
        if (changed && h->notify_source)
                (void) sd_event_source_set_enabled(h->notify_source, SD_EVENT_ONESHOT);
}

static int health_on_notify(sd_event_source *s, void *userdata) {
        Health *h = userdata;

        if (h->handler)
                h->handler(h, h->userdata); /* may free h */
        return 0;
}

static void health_cancel(Health *h) {
        if (h->req) {
                curl_glue_remove(h->glue, h->req);
                curl_easy_cleanup(h->req);
                h->req = NULL;
        }
        curl_body_reset(&h->body);
        event_timer_disarm(h->timer);
}

static int health_on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void health_schedule(Health *h, uint64_t delay_usec) {
        int r;

        if (!h->event || !h->enabled)
                return;

        r = event_timer_arm(h->event, &h->timer, delay_usec, 0, false, health_on_timer, h,
                            "health-probe");
        if (r < 0)
                log_warning_errno(r, "Failed to schedule k0s status probe, ignoring: %m");
}

static void health_schedule_next(Health *h) {
        if (h->interval_usec > 0)
                health_schedule(h, h->interval_usec);
}

static void health_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Health *h = userdata;
        K0sStatus *status = NULL;
        char *error = NULL;
        int r;

        r = curl_glue_result(easy, result, h->timeout_usec, &h->body, &error);
        if (r == 0) {
                r = k0s_status_parse(h->body.data ? h->body.data : "", h->body.size, &status);
                if (r < 0) {
                        error = strdup_printf("invalid /status response: %s", strerror(-r));
                        r = error ? 1 : -ENOMEM;
                }
        }
        if (r < 0) {
                log_oom();
                error = NULL;
        }

        curl_easy_cleanup(easy);
        h->req = NULL;
        curl_body_reset(&h->body);

        if (r < 0 && !error)
                /* Even the failure text could not be allocated: keep the old result. */
                k0s_status_free(status);
        else {
                /* Probes repeat every interval: log transitions, not every failure. */
                if (error && !streq_ptr(error, h->error))
                        log_warning("k0s status probe on %s failed: %s", h->socket_path, error);
                else if (!error && h->error)
                        log_info("k0s status probe on %s works again.", h->socket_path);
                health_set_result(h, status, error);
        }

        health_schedule_next(h);
}

static void health_probe(Health *h) {
        _cleanup_(curl_easy_cleanupp) CURL *easy = NULL;
        long timeout_ms;
        int r;

        if (!h->enabled || h->req)
                return;

        /* Round up: a sub-millisecond timeout must not become 0, which means "none" to curl. */
        timeout_ms =
                (long) MAX((h->timeout_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (uint64_t) 1);

        r = curl_glue_easy_new(h->socket_path, MIN(timeout_ms, CONNECT_TIMEOUT_MS), timeout_ms,
                               &easy);
        if (r >= 0 &&
            (curl_easy_setopt(easy, CURLOPT_URL, STATUS_URL) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, curl_body_write) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_WRITEDATA, &h->body) != CURLE_OK))
                r = -ENOMEM;
        if (r >= 0) {
                curl_body_reset(&h->body);
                h->body.max = K0S_STATUS_MAX_SIZE;
                r = curl_glue_add(h->glue, easy, health_done, h);
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to start k0s status probe: %m");
                health_schedule_next(h);
                return;
        }

        h->req = TAKE_PTR(easy);
}

static int health_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        health_probe(userdata);
        return 0;
}

int health_new(CurlGlue *glue, const char *socket_path, HealthHandler handler, void *userdata,
               Health **ret) {
        Health *h;
        int r;

        if (!glue || !ret)
                return -EINVAL;
        r = curl_glue_check_socket_path(socket_path);
        if (r < 0)
                return r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        *h = (Health){
                .glue = glue,
                .handler = handler,
                .userdata = userdata,
                .interval_usec = DEFAULT_INTERVAL_USEC,
                .timeout_usec = DEFAULT_TIMEOUT_USEC,
                .body.max = K0S_STATUS_MAX_SIZE,
        };
        h->socket_path = strdup(socket_path);
        if (!h->socket_path) {
                free(h);
                return -ENOMEM;
        }

        *ret = h;
        return 0;
}

int health_attach(Health *h, sd_event *e) {
        int r;

        if (!h || !e)
                return -EINVAL;
        if (h->event)
                return -EBUSY;

        r = sd_event_add_defer(e, &h->notify_source, health_on_notify, h);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(h->notify_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(h->notify_source, "health-notify");
        h->event = sd_event_ref(e);

        if (h->enabled)
                health_schedule(h, 0);
        return 0;
}

void health_configure(Health *h, const char *socket_path, uint64_t interval_usec,
                      uint64_t timeout_usec) {
        bool restart = false;

        if (!h)
                return;

        if (socket_path && !streq(socket_path, h->socket_path)) {
                char *p = NULL;

                if (curl_glue_check_socket_path(socket_path) < 0)
                        log_warning("Invalid k0s status socket path '%s', keeping '%s'.",
                                    socket_path, h->socket_path);
                else if (!(p = strdup(socket_path)))
                        log_oom();
                else {
                        free(h->socket_path);
                        h->socket_path = p;
                        restart = true;
                }
        }

        if (timeout_usec == 0)
                timeout_usec = DEFAULT_TIMEOUT_USEC;
        if (timeout_usec != h->timeout_usec || interval_usec != h->interval_usec)
                restart = true;
        h->timeout_usec = timeout_usec;
        h->interval_usec = interval_usec;

        if (!restart || !h->enabled)
                return;

        /* A probe in flight used the old settings: start over with the new ones at once. */
        health_cancel(h);
        health_schedule(h, 0);
}

void health_set_enabled(Health *h, bool enabled) {
        if (!h || h->enabled == enabled)
                return;

        h->enabled = enabled;
        if (enabled) {
                /* One interval after k0s starts, not at once: k0s serves its status socket
                 * late (facts/k0s.md §3), so an immediate probe could only fail. */
                health_schedule(h, h->interval_usec);
                return;
        }

        health_cancel(h);
        health_set_result(h, NULL, NULL);
}

const K0sStatus *health_get_status(const Health *h) {
        return h ? h->status : NULL;
}

const char *health_get_error(const Health *h) {
        return h ? h->error : NULL;
}

Health *health_free(Health *h) {
        if (!h)
                return NULL;

        h->notify_source = sd_event_source_disable_unref(h->notify_source);
        health_cancel(h);
        sd_event_source_disable_unref(h->timer);
        sd_event_unref(h->event);

        k0s_status_free(h->status);
        free(h->error);
        free(h->socket_path);
        free(h);
        return NULL;
}
