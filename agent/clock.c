/* SPDX-License-Identifier: MIT */
/*
 * Owns the clock watch: whether k0s must wait for a synchronized wall clock (clock.wait_sync),
 * the wait's timeout, and the log line for a clock step. Decides nothing about k0s: it hands
 * the reconcile pass a ClockFact (WAITING holds k0s) and restarts nothing on a step.
 * No polling: it wakes only on a clock step, an inotify event or the timeout.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "event-util.h"
#include "log.h"
#include "path-watch.h"
#include "util.h"

/* timesyncd touches this after its first synchronization (systemd >= 239), which also covers a
 * clock that was slewed into sync without a step. */
#define TIMESYNC_FILE "synchronized"

struct ClockWatch {
        ClockWaitSync wait_sync;
        uint64_t timeout_usec;
        char *rtc_path;
        char *timesync_dir;
        char *timesync_file;
        ClockSyncSource source;
        void *source_userdata;
        int64_t (*offset)(void *userdata);
        ClockHandler handler;
        void *userdata;

        sd_event *event;
        int timer_fd; /* CLOCK_REALTIME timerfd, TFD_TIMER_CANCEL_ON_SET: wakes on every step */
        sd_event_source *timer_source;
        PathWatch *timesync_watch; /* inotify on timesync_dir (or its nearest ancestor) */
        sd_event_source *timeout_source; /* WAITING -> TIMED_OUT */

        ClockFact fact;
        bool synced; /* live view */
        int64_t offset_usec; /* CLOCK_REALTIME - CLOCK_MONOTONIC at the last look */
        uint64_t n_jumps;
        int64_t last_jump_usec;
};

static int source_adjtimex(void *userdata) {
        struct timex tx = {}; /* modes 0: read only */
        int r = adjtimex(&tx);
        return r < 0 ? -errno : r;
}

static int source_fixed(void *userdata) {
        return userdata ? TIME_OK : TIME_ERROR;
}

static int64_t clock_offset_usec(void *userdata) {
        struct timespec rt, mono;
        clock_gettime(CLOCK_REALTIME, &rt);
        clock_gettime(CLOCK_MONOTONIC, &mono);
        return ((int64_t) rt.tv_sec - (int64_t) mono.tv_sec) * (int64_t) USEC_PER_SEC +
                ((int64_t) rt.tv_nsec - (int64_t) mono.tv_nsec) / (int64_t) NSEC_PER_USEC;
}

int clock_watch_new_with(const ClockWatchParams *p, ClockHandler handler, void *userdata,
                         ClockWatch **ret) {
        ClockWatch *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (ClockWatch){
                .wait_sync = p->wait_sync,
                .timeout_usec = p->timeout_usec,
                .source = p->source ?: source_adjtimex,
                .source_userdata = p->source_userdata,
                .offset = p->offset ?: clock_offset_usec,
                .handler = handler,
                .userdata = userdata,
                .timer_fd = -1,
                .fact = _CLOCK_FACT_INVALID,
        };
        c->rtc_path = strdup(p->rtc_path ?: CLOCK_RTC_PATH_DEFAULT);
        c->timesync_dir = strdup(p->timesync_dir ?: CLOCK_TIMESYNC_DIR_DEFAULT);
        c->timesync_file = strdup_printf("%s/" TIMESYNC_FILE, c->timesync_dir ?: "");
        if (!c->rtc_path || !c->timesync_dir || !c->timesync_file) {
                clock_watch_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

/* The test hooks of the whole-agent tests (tests/integration/test_clock_netns.py). They only
 * point the watch at other files or a fixed answer; with none set, the real sources are used:
 *   K0S_TSAGENT_TEST_CLOCK_RTC=PATH           instead of /sys/class/rtc/rtc0
 *   K0S_TSAGENT_TEST_CLOCK_TIMESYNC_DIR=DIR   instead of /run/systemd/timesync
 *   K0S_TSAGENT_TEST_CLOCK_SOURCE=synchronized|unsynchronized   instead of adjtimex() */
int clock_watch_new(const AgentConfig *cfg, ClockHandler handler, void *userdata,
                    ClockWatch **ret) {
        ClockWatchParams p = {
                .wait_sync = cfg->clock_wait_sync,
                .timeout_usec = cfg->clock_timeout_usec,
                .rtc_path = getenv("K0S_TSAGENT_TEST_CLOCK_RTC"),
                .timesync_dir = getenv("K0S_TSAGENT_TEST_CLOCK_TIMESYNC_DIR"),
        };
        const char *src = getenv("K0S_TSAGENT_TEST_CLOCK_SOURCE");

        if (src && streq(src, "synchronized"))
                p.source = source_fixed, p.source_userdata = (void *) (uintptr_t) 1;
        else if (src && streq(src, "unsynchronized"))
                p.source = source_fixed, p.source_userdata = NULL;
        else if (src)
                return -EINVAL;
        return clock_watch_new_with(&p, handler, userdata, ret);
}

/* The kernel's answer or timesyncd's file: either is enough, as for systemd-time-wait-sync. */
static bool clock_look(ClockWatch *c) {
        if (access(c->timesync_file, F_OK) >= 0)
                return true;
        int r = c->source(c->source_userdata);
        if (r < 0) {
                log_warning_errno(r, "Cannot read the clock's synchronization state: %m");
                return false;
        }
        return r != TIME_ERROR;
}

static bool clock_needed(ClockWatch *c) {
        switch (c->wait_sync) {
        case CLOCK_WAIT_SYNC_YES:
                return true;
        case CLOCK_WAIT_SYNC_NO:
                return false;
        case CLOCK_WAIT_SYNC_AUTO:
        case _CLOCK_WAIT_SYNC_MAX:
        case _CLOCK_WAIT_SYNC_INVALID:
                break;
        }
        /* A battery-backed RTC gives a boot time close to the truth; without one (most
         * boards) the clock starts where it was saved, hours behind after a power cut. */
        return access(c->rtc_path, F_OK) < 0;
}

static void clock_set_fact(ClockWatch *c, ClockFact f) {
        if (c->fact == f)
                return;
        ClockFact old = c->fact;
        c->fact = f;
        if (f == CLOCK_FACT_TIMED_OUT)
                log_warning("The clock is still not synchronized after %" PRIu64
                            " s: starting k0s anyway (TLS and certificates may fail).",
                            c->timeout_usec / USEC_PER_SEC);
        else
                log_info("Clock: %s -> %s.", clock_fact_to_string(old) ?: "start",
                         clock_fact_to_string(f));
        if (f != CLOCK_FACT_WAITING)
                event_timer_disarm(c->timeout_source);
        if (old >= 0 && c->handler)
                c->handler(c, c->userdata);
}

void clock_watch_recheck(ClockWatch *c) {
        c->synced = clock_look(c);
        /* Once synchronized or given up, the fact stays: a lost NTP server later does not stop
         * a running k0s. */
        if (c->synced && (c->fact == CLOCK_FACT_WAITING || c->fact == CLOCK_FACT_TIMED_OUT))
                clock_set_fact(c, CLOCK_FACT_SYNCED);
}

static void clock_note_step(ClockWatch *c) {
        int64_t now = c->offset(c->source_userdata), jump = now - c->offset_usec;
        c->offset_usec = now;
        c->n_jumps++;
        c->last_jump_usec = jump;

        char j[64];
        snprintf(j, sizeof(j), "CLOCK_JUMP_USEC=%" PRId64, jump);
        const char *fields[] = { j, NULL };
        log_struct_errno(llabs(jump) >= (long long) USEC_PER_SEC ? LOG_WARNING : LOG_INFO, 0, NULL,
                         fields,
                         "The wall clock was set: it jumped by %+.3f s (k0s is left running).",
                         (double) jump / (double) USEC_PER_SEC);
}

static int timer_arm(int fd) {
        /* Far in the future, absolute: it never expires, it is only cancelled by a step. */
        struct itimerspec its = { .it_value.tv_sec = (time_t) INT32_MAX * 2 };
        if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
                return -errno;
        return 0;
}

static int on_clock_set(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ClockWatch *c = userdata;
        uint64_t ticks;

        bool stepped = read(fd, &ticks, sizeof(ticks)) < 0 && errno == ECANCELED;
        int r = timer_arm(fd);
        if (r < 0)
                log_warning_errno(r, "Failed to re-arm the clock-step timer, ignoring: %m");
        if (stepped)
                clock_watch_step(c);
        else
                clock_watch_recheck(c);
        return 0;
}

void clock_watch_step(ClockWatch *c) {
        if (!c)
                return;
        clock_note_step(c);
        clock_watch_recheck(c);
}

static void on_timesync_dir(PathWatch *w, void *userdata) {
        clock_watch_recheck(userdata);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        ClockWatch *c = userdata;
        if (c->fact == CLOCK_FACT_WAITING)
                clock_set_fact(c, CLOCK_FACT_TIMED_OUT);
        return 0;
}

static int clock_attach_timerfd(ClockWatch *c) {
        c->timer_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (c->timer_fd < 0)
                return -errno;
        int r = timer_arm(c->timer_fd);
        if (r < 0)
                return r;
        r = sd_event_add_io(c->event, &c->timer_source, c->timer_fd, EPOLLIN, on_clock_set, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->timer_source, "clock-step");
        return 0;
}

int clock_watch_attach(ClockWatch *c, sd_event *e) {
        int r;

        c->event = sd_event_ref(e);
        c->offset_usec = c->offset(c->source_userdata);
        /* The step timer runs in every mode: a step is logged even when nobody waits. */
        r = clock_attach_timerfd(c);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the clock for steps: %m");
        r = path_watch_new(c->timesync_dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE,
                           on_timesync_dir, c, &c->timesync_watch);
        if (r >= 0)
                r = path_watch_attach(c->timesync_watch, e);
        if (r < 0)
                log_warning_errno(r, "Cannot watch %s, ignoring: %m", c->timesync_dir);

        c->synced = clock_look(c);
        if (!clock_needed(c))
                clock_set_fact(c, CLOCK_FACT_NOT_NEEDED);
        else if (c->synced)
                clock_set_fact(c, CLOCK_FACT_SYNCED);
        else {
                clock_set_fact(c, CLOCK_FACT_WAITING);
                log_notice("Waiting up to %" PRIu64 " s for the clock to be synchronized "
                           "(adjtimex() or %s).",
                           c->timeout_usec / USEC_PER_SEC, c->timesync_file);
                r = event_timer_arm(e, &c->timeout_source, c->timeout_usec, USEC_PER_SEC / 10,
                                    false, on_timeout, c, "clock-timeout");
                if (r < 0)
                        return log_error_errno(r, "Failed to arm the clock timeout: %m");
        }
        return 0;
}

ClockFact clock_watch_get_fact(ClockWatch *c) {
        return c ? c->fact : CLOCK_FACT_NOT_NEEDED;
}

bool clock_watch_is_synced(ClockWatch *c) {
        return c && c->synced;
}

uint64_t clock_watch_get_jumps(ClockWatch *c) {
        return c ? c->n_jumps : 0;
}

int64_t clock_watch_get_last_jump_usec(ClockWatch *c) {
        return c ? c->last_jump_usec : 0;
}

ClockWatch *clock_watch_free(ClockWatch *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->timer_source);
        sd_event_source_disable_unref(c->timeout_source);
        if (c->timer_fd >= 0)
                close(c->timer_fd);
        path_watch_free(c->timesync_watch);
        sd_event_unref(c->event);
        free(c->rtc_path);
        free(c->timesync_dir);
        free(c->timesync_file);
        free(c);
        return NULL;
}
