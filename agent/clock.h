/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Is the wall clock synchronized? The kernel's view (adjtimex()), timesyncd's
 * `synchronized` file, and clock steps, watched without polling (see clock.c). Gives the
 * ClockFact the reconcile pass decides on.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "facts.h"
#include "macro.h"

#define CLOCK_RTC_PATH_DEFAULT "/sys/class/rtc/rtc0"
#define CLOCK_TIMESYNC_DIR_DEFAULT "/run/systemd/timesync"

typedef struct ClockWatch ClockWatch;

/* Called when the fact changes (WAITING -> SYNCED, WAITING -> TIMED_OUT, ...). */
typedef void (*ClockHandler)(ClockWatch *c, void *userdata);
/* The synchronization source: adjtimex()'s return value (TIME_ERROR = unsynchronized) or
 * -errno. The default calls adjtimex() with modes 0. Tests pass a fake. */
typedef int (*ClockSyncSource)(void *userdata);

typedef struct ClockWatchParams {
        ClockWaitSync wait_sync;
        uint64_t timeout_usec; /* WAITING -> TIMED_OUT after this long; UINT64_MAX = never */
        const char *rtc_path; /* NULL: CLOCK_RTC_PATH_DEFAULT */
        const char *timesync_dir; /* NULL: CLOCK_TIMESYNC_DIR_DEFAULT */
        ClockSyncSource source; /* NULL: adjtimex() */
        void *source_userdata;
        /* CLOCK_REALTIME - CLOCK_MONOTONIC in µs, whose change is a step's size. NULL: the
         * kernel's clocks. Tests pass a fake (the host's clock cannot be stepped in a test). */
        int64_t (*offset)(void *userdata);
} ClockWatchParams;

/* From the config. For tests of the whole agent, three environment variables replace the
 * sources (documented in clock.c): K0S_TSAGENT_TEST_CLOCK_RTC,
 * K0S_TSAGENT_TEST_CLOCK_TIMESYNC_DIR, K0S_TSAGENT_TEST_CLOCK_SOURCE. */
int clock_watch_new(const AgentConfig *cfg, ClockHandler handler, void *userdata, ClockWatch **ret);
int clock_watch_new_with(const ClockWatchParams *p, ClockHandler handler, void *userdata,
                         ClockWatch **ret);
/* Decides the first fact and starts the watches (timerfd, inotify, timeout timer). */
int clock_watch_attach(ClockWatch *c, sd_event *e);

ClockFact clock_watch_get_fact(ClockWatch *c);
/* The live view, whatever the fact: the source says synchronized, or the file exists. */
bool clock_watch_is_synced(ClockWatch *c);
/* Clock steps seen since start, and the last one's size (signed µs, realtime - monotonic). */
uint64_t clock_watch_get_jumps(ClockWatch *c);
int64_t clock_watch_get_last_jump_usec(ClockWatch *c);
/* What the CANCEL_ON_SET timerfd's wake-up does: note the step (logged with its size, counted;
 * nothing is restarted) and look again. Public for tests with a fake offset. */
void clock_watch_step(ClockWatch *c);
/* Look again now (what a clock step or inotify event does); for tests with a fake source. */
void clock_watch_recheck(ClockWatch *c);

ClockWatch *clock_watch_free(ClockWatch *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ClockWatch *, clock_watch_free);
