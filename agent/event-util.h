/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one way the agent arms a one-shot timer: "in N µs from now" on CLOCK_MONOTONIC, with a
 * saturating add, so no configured duration can wrap a deadline into the past.
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <systemd/sd-event.h>

/* Arm *s to fire delay_usec from now, creating it on first use (accuracy as sd_event_add_time():
 * 0 is sd-event's default of 250 ms). A delay that would overflow means "never" (the timer is
 * left disarmed). With keep_earlier an already armed, earlier expiry stays (coalescing). */
int event_timer_arm(sd_event *e, sd_event_source **s, uint64_t delay_usec, uint64_t accuracy,
                    bool keep_earlier, sd_event_time_handler_t cb, void *userdata,
                    const char *description);

/* The clock's current time in µs: the real time, not the loop iteration's (sd_event_now()), for
 * the few places that measure within one iteration (the gate opens and k0s starts in one). */
uint64_t now_usec(clockid_t clock);

/* Disarm a timer armed by event_timer_arm(); NULL is fine. */
void event_timer_disarm(sd_event_source *s);
