/* SPDX-License-Identifier: MIT */
/*
 * Owns the helper that arms one-shot sd-event timers relative to now (saturating). Owns no
 * event source itself: callers keep theirs.
 */

#include "event-util.h"
#include "util.h"

uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

void event_timer_disarm(sd_event_source *s) {
        if (s)
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

int event_timer_arm(sd_event *e, sd_event_source **s, uint64_t delay_usec, uint64_t accuracy,
                    bool keep_earlier, sd_event_time_handler_t cb, void *userdata,
                    const char *description) {
        uint64_t now, when;
        int r;

        r = sd_event_now(e, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        when = usec_add(now, delay_usec);
        if (when == UINT64_MAX) { /* "never": nothing to arm */
                event_timer_disarm(*s);
                return 0;
        }

        if (!*s) {
                r = sd_event_add_time(e, s, CLOCK_MONOTONIC, when, accuracy, cb, userdata);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(*s, description);
                return 0;
        }

        if (keep_earlier) {
                uint64_t old;
                int enabled = 0;

                if (sd_event_source_get_enabled(*s, &enabled) > 0 &&
                    sd_event_source_get_time(*s, &old) >= 0 && old <= when)
                        return 0;
        }

        r = sd_event_source_set_time(*s, when);
        if (r < 0)
                return r;
        (void) sd_event_source_set_time_accuracy(*s, accuracy ?: 250 * USEC_PER_MSEC);
        return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
}
