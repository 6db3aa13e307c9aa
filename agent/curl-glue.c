/* SPDX-License-Identifier: MIT */
/*
 * curl's multi-socket API on sd-event: curl's sockets become io sources, curl's one timeout
 * becomes one CLOCK_MONOTONIC time source that is disabled whenever curl has nothing to time,
 * and finished transfers go to the per-handle done callback. It owns the CURLM and the sources;
 * it does not own the easy handles (their users do) and knows nothing about HTTP.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/un.h>

#include <sys/socket.h>

#include "util.h"
#include "curl-glue.h"
#include "event-util.h"
#include "log.h"

/* One per added easy handle, stored in CURLOPT_PRIVATE; linked so curl_glue_free() can detach
 * whatever is still in flight (curl < 8.4 cannot list a multi handle's easy handles). */
typedef struct GlueHandle {
        CurlGlue *glue;
        CURL *easy;
        CurlDoneHandler done;
        void *userdata;
        struct GlueHandle *prev, *next;
} GlueHandle;

struct CurlGlue {
        sd_event *event;
        CURLM *multi;
        /* curl's single timeout; SD_EVENT_OFF while curl asks for none (-1), so an idle agent
         * has no timer armed at all. */
        sd_event_source *timer;
        GlueHandle *handles;
};

static GlueHandle *glue_handle_unlink_free(GlueHandle *h) {
        if (!h)
                return NULL;
        if (h->prev)
                h->prev->next = h->next;
        else
                h->glue->handles = h->next;
        if (h->next)
                h->next->prev = h->prev;
        (void) curl_easy_setopt(h->easy, CURLOPT_PRIVATE, NULL);
        free(h);
        return NULL;
}

/* Hand every finished transfer to its owner. The done callback may add or remove other handles
 * (curl_multi_remove_handle() also drops their queued messages), so the message is copied
 * before anything is removed. */
static void curl_glue_process_done(CurlGlue *g) {
        CURLMsg *msg;
        int queued;

        while ((msg = curl_multi_info_read(g->multi, &queued))) {
                CURL *easy = msg->easy_handle;
                CURLcode result = msg->data.result;
                GlueHandle *h = NULL;
                CurlDoneHandler done;
                void *userdata;

                if (msg->msg != CURLMSG_DONE)
                        continue;

                if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &h) != CURLE_OK || !h) {
                        /* Not ours (cannot happen): do not leave it running. */
                        (void) curl_multi_remove_handle(g->multi, easy);
                        continue;
                }

                done = h->done;
                userdata = h->userdata;
                (void) curl_multi_remove_handle(g->multi, easy);
                glue_handle_unlink_free(h);

                if (done)
                        done(g, easy, result, userdata);
        }
}

static void curl_glue_action(CurlGlue *g, curl_socket_t fd, int action) {
        int running;
        CURLMcode mc;

        mc = curl_multi_socket_action(g->multi, fd, action, &running);
        if (mc != CURLM_OK)
                log_warning("curl_multi_socket_action() failed, ignoring: %s",
                            curl_multi_strerror(mc));
        curl_glue_process_done(g);
}

static int curl_glue_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CurlGlue *g = userdata;
        int action = 0;

        /* HUP/ERR are reported as readable so curl reads the EOF or the error itself. */
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                action |= CURL_CSELECT_IN;
        if (revents & (EPOLLOUT | EPOLLERR))
                action |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                action |= CURL_CSELECT_ERR;

        curl_glue_action(g, fd, action);
        return 0;
}

static int curl_glue_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlGlue *g = userdata;

        curl_glue_action(g, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

/* CURLMOPT_SOCKETFUNCTION: keep exactly one io source per socket curl uses, with the events curl
 * wants. Runs inside curl: must not call back into the multi handle except curl_multi_assign(). */
static int curl_glue_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlGlue *g = userp;
        sd_event_source *io = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                if (io) {
                        (void) sd_event_source_set_enabled(io, SD_EVENT_OFF);
                        sd_event_source_unref(io);
                        (void) curl_multi_assign(g->multi, fd, NULL);
                }
                return 0;
        }

        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (io) {
                r = sd_event_source_set_io_events(io, events);
                if (r < 0) {
                        log_error_errno(r, "Failed to update curl io source: %m");
                        return -1;
                }
                return 0;
        }

        r = sd_event_add_io(g->event, &io, fd, events, curl_glue_on_io, g);
        if (r < 0) {
                log_error_errno(r, "Failed to watch curl socket: %m");
                return -1;
        }
        (void) sd_event_source_set_description(io, "curl-io");

        if (curl_multi_assign(g->multi, fd, io) != CURLM_OK) {
                sd_event_source_unref(io);
                log_error("Failed to assign io source to curl socket.");
                return -1;
        }
        return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 disables the timer; 0 means "as soon as possible", which is "now"
 * on the event loop's clock, so sd-event dispatches it in the next iteration. */
static int curl_glue_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        CurlGlue *g = userp;
        int r;

        if (timeout_ms < 0) {
                event_timer_disarm(g->timer);
                return 0;
        }

        /* 1 ms accuracy: sd-event's default (250 ms) would stretch curl's short protocol
         * timeouts. */
        r = event_timer_arm(g->event, &g->timer, (uint64_t) timeout_ms * USEC_PER_MSEC,
                            USEC_PER_MSEC, false, curl_glue_on_timer, g, "curl-timer");
        if (r < 0) {
                log_error_errno(r, "Failed to arm curl timer: %m");
                return -1;
        }
        return 0;
}

int curl_glue_new(sd_event *e, CurlGlue **ret) {
        CurlGlue *g;

        if (!e || !ret)
                return -EINVAL;

        /* Idempotent and reference counted inside libcurl; SSL is never used here. */
        if (curl_global_init(CURL_GLOBAL_NOTHING) != CURLE_OK)
                return -EIO;

        g = calloc(1, sizeof(*g));
        if (!g) {
                curl_global_cleanup();
                return -ENOMEM;
        }
        g->event = sd_event_ref(e);

        g->multi = curl_multi_init();
        if (!g->multi) {
                curl_glue_free(g);
                return -ENOMEM;
        }

        if (curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, curl_glue_socket_cb) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, curl_glue_timer_cb) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g) != CURLM_OK) {
                curl_glue_free(g);
                return -EIO;
        }

        *ret = g;
        return 0;
}

CurlGlue *curl_glue_free(CurlGlue *g) {
        if (!g)
                return NULL;

        /* Handles still in flight belong to their users, who free them; here they are only
         * detached so the multi handle can go. */
        while (g->handles) {
                GlueHandle *h = g->handles;

                if (g->multi)
                        (void) curl_multi_remove_handle(g->multi, h->easy);
                glue_handle_unlink_free(h);
        }

        /* curl_multi_cleanup() reports CURL_POLL_REMOVE for remaining sockets, which unrefs their
         * io sources through curl_glue_socket_cb(). */
        if (g->multi)
                curl_multi_cleanup(g->multi);
        sd_event_source_disable_unref(g->timer);
        sd_event_unref(g->event);
        free(g);
        curl_global_cleanup();
        return NULL;
}

int curl_glue_add(CurlGlue *g, CURL *easy, CurlDoneHandler done, void *userdata) {
        GlueHandle *h;
        CURLMcode mc;

        if (!g || !easy)
                return -EINVAL;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        *h = (GlueHandle){
                .glue = g,
                .easy = easy,
                .done = done,
                .userdata = userdata,
                .next = g->handles,
        };

        if (curl_easy_setopt(easy, CURLOPT_PRIVATE, h) != CURLE_OK) {
                free(h);
                return -EIO;
        }

        mc = curl_multi_add_handle(g->multi, easy);
        if (mc != CURLM_OK) {
                (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                free(h);
                return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
        }

        if (g->handles)
                g->handles->prev = h;
        g->handles = h;
        return 0;
}

void curl_glue_remove(CurlGlue *g, CURL *easy) {
        GlueHandle *h = NULL;

        if (!g || !easy)
                return;

        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &h) != CURLE_OK || !h ||
            h->glue != g)
                return;

        (void) curl_multi_remove_handle(g->multi, easy);
        glue_handle_unlink_free(h);
}

int curl_glue_check_socket_path(const char *path) {
        if (isempty(path))
                return -EINVAL;
        /* CURLOPT_UNIX_SOCKET_PATH is bound by sockaddr_un: 107 bytes on Linux. */
        if (strlen(path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return -ENAMETOOLONG;
        return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: every socket curl opens is close-on-exec. Debian 12's libcurl 7.88
 * opens its sockets without SOCK_CLOEXEC (and makes its multi wakeup socketpair without it, which
 * no option reaches); a k0s started meanwhile would inherit the LocalAPI connection and hand it
 * down to kubelet, containerd and every shim. The spawn code closes every fd above 2 in the
 * child anyway (agent/spawn.c); this keeps our own sockets right whatever spawns. */
static curl_socket_t curl_glue_open_socket(void *clientp, curlsocktype purpose,
                                           struct curl_sockaddr *a) {
        int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

        return fd < 0 ? CURL_SOCKET_BAD : fd;
}

int curl_glue_easy_new(const char *socket_path, long connect_timeout_ms, long timeout_ms,
                       CURL **ret) {
        _cleanup_(curl_easy_cleanupp) CURL *easy = NULL;
        CURLcode c = CURLE_OK;

        if (isempty(socket_path) || !ret)
                return -EINVAL;

        easy = curl_easy_init();
        if (!easy)
                return -ENOMEM;

                /* Each setopt only fails on OOM or a bad option; collect the first failure. */
#define SETOPT(opt, val) \
        do { \
                if (c == CURLE_OK) \
                        c = curl_easy_setopt(easy, opt, val); \
        } while (false)

        SETOPT(CURLOPT_UNIX_SOCKET_PATH, socket_path);
        SETOPT(CURLOPT_OPENSOCKETFUNCTION, curl_glue_open_socket);
        /* "" disables proxies, including http_proxy from the environment: the request must go
         * to the socket and nowhere else. */
        SETOPT(CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
        SETOPT(CURLOPT_PROTOCOLS_STR, "http");
#else
        SETOPT(CURLOPT_PROTOCOLS, (long) CURLPROTO_HTTP);
#endif
        SETOPT(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
        /* A fresh connection per request: nothing idle is left open (and watched) between
         * requests, and a restarted server never meets a stale connection. */
        SETOPT(CURLOPT_FORBID_REUSE, 1L);
        SETOPT(CURLOPT_NOSIGNAL, 1L);
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
        SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms);
        SETOPT(CURLOPT_USERAGENT, "k0s-tsagent/" PACKAGE_VERSION);
#undef SETOPT
        if (c != CURLE_OK)
                return c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;

        *ret = TAKE_PTR(easy);
        return 0;
}

int curl_body_append(CurlBody *b, const void *p, size_t n) {
        size_t need;

        if (n == 0)
                return 0;
        if (n > b->max || b->size > b->max - n)
                return -EFBIG;

        need = b->size + n + 1;
        if (need > b->allocated) {
                size_t a = MAX(need, MAX(b->allocated * 2, (size_t) 4096));
                char *d;

                /* The doubling must not overshoot the cap by much: max + 1 bytes is enough. */
                a = MIN(a, b->max + 1);
                d = realloc(b->data, a);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->allocated = a;
        }

        memcpy(b->data + b->size, p, n);
        b->size += n;
        b->data[b->size] = 0;
        return 0;
}

void curl_body_consume(CurlBody *b, size_t n) {
        if (n >= b->size) {
                /* Let a huge line's buffer go instead of keeping it for the daemon's lifetime. */
                if (b->allocated > 64 * 1024)
                        curl_body_reset(b);
                else if (b->data) {
                        b->size = 0;
                        b->data[0] = 0;
                }
                return;
        }

        memmove(b->data, b->data + n, b->size - n);
        b->size -= n;
        b->data[b->size] = 0;
}

void curl_body_reset(CurlBody *b) {
        free(b->data);
        b->data = NULL;
        b->size = b->allocated = 0;
        b->overflow = false;
}

size_t curl_body_write(char *p, size_t size, size_t n, void *userdata) {
        CurlBody *b = userdata;
        size_t len = size * n;
        int r;

        r = curl_body_append(b, p, len);
        if (r == -EFBIG)
                b->overflow = true;
        if (r < 0)
                return 0; /* short write: curl ends the transfer with CURLE_WRITE_ERROR */
        return len;
}

static char *format_timeout(uint64_t usec) {
        if (usec % USEC_PER_SEC == 0)
                return strdup_printf("timeout after %" PRIu64 "s", usec / USEC_PER_SEC);
        return strdup_printf("timeout after %" PRIu64 "ms", usec / USEC_PER_MSEC);
}

/* The first line of an error body, printable ASCII only, at most 200 characters: the body is
 * untrusted and ends up in logs and in sd_notify STATUS=. */
static char *body_summary(const CurlBody *body) {
        size_t n = 0;
        char *s;

        if (!body || !body->data)
                return strdup("");

        s = malloc(MIN(body->size, (size_t) 200) + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < body->size && n < 200; i++) {
                char ch = body->data[i];

                if (ch == '\n' || ch == '\r')
                        break;
                s[n++] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
        }
        s[n] = 0;
        return s;
}

int curl_glue_result(CURL *easy, CURLcode result, uint64_t timeout_usec, const CurlBody *body,
                     char **ret) {
        long code = 0, os_errno = 0;
        char *text;

        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);

        if (result == CURLE_WRITE_ERROR && body && body->overflow)
                text = strdup_printf("response larger than %zu bytes", body->max);
        else if (code >= 300 || (result == CURLE_OK && code != 200)) {
                _cleanup_free_ char *summary = body_summary(body);

                if (!summary)
                        return -ENOMEM;
                text = isempty(summary) ? strdup_printf("HTTP %ld", code)
                                        : strdup_printf("HTTP %ld: %s", code, summary);
        } else if (result == CURLE_COULDNT_CONNECT) {
                (void) curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
                text = os_errno > 0 ? strdup_printf("connect: %s", strerror((int) os_errno))
                                    : strdup_printf("connect: %s", curl_easy_strerror(result));
        } else if (result == CURLE_OPERATION_TIMEDOUT)
                text = timeout_usec > 0 ? format_timeout(timeout_usec) : strdup("timeout");
        else if (result != CURLE_OK)
                text = strdup(curl_easy_strerror(result));
        else {
                *ret = NULL;
                return 0;
        }

        if (!text)
                return -ENOMEM;
        *ret = text;
        return 1;
}
