/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The k0s child: start (a clean child, spawn.c; stdout/stderr to journald via
 * sd_journal_stream_fd("k0s") or the agent's stderr), the settle rule for restarts, exactly one
 * SIGTERM then SIGKILL after stop_timeout, restart after any exit with exponential backoff
 * (reset after a stable period, never faster than the floor below), pidfile + adoption of a k0s
 * started by an earlier agent. Never two k0s at once.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "facts.h"
#include "k0s-pidfile.h"
#include "macro.h"

/*
 * The crash-loop floor, whatever timing.restart_backoff says: the first restart delay is at least
 * 250 ms and the delay doubles up to at least 2 s; a run resets the backoff only after it lasted
 * at least 1 s (and timing.stable). So a k0s that exits at once is started at most 5 times in any
 * 5 s (0, 0.25, 0.75, 1.75, 3.75 s, then every 2 s), with [0s, 0s] as with [0s, 60s].
 */
#define SUPERVISOR_BACKOFF_FLOOR_MIN_USEC (250 * USEC_PER_MSEC)
#define SUPERVISOR_BACKOFF_FLOOR_MAX_USEC (2 * USEC_PER_SEC)
#define SUPERVISOR_STABLE_FLOOR_USEC (1 * USEC_PER_SEC)

typedef enum SupervisorState {
        SUPERVISOR_IDLE, /* no k0s, none wanted yet (gate closed) */
        SUPERVISOR_RUNNING, /* k0s runs (started or adopted) */
        SUPERVISOR_SETTLING, /* k0s runs, its inputs changed; restart when settle ends */
        SUPERVISOR_STOPPING, /* SIGTERM sent; SIGKILL when stop_timeout passes */
        SUPERVISOR_BACKOFF, /* no k0s; a start waits: for the backoff delay, or blocked (below) */
        _SUPERVISOR_STATE_MAX,
        _SUPERVISOR_STATE_INVALID = -EINVAL,
} SupervisorState;

const char *supervisor_state_to_string(SupervisorState s);

/* Why a k0s ended, for the counters (metrics label: k0s_exit_reason_to_string()). */
typedef enum K0sExitReason {
        K0S_EXIT_EXITED_OK, /* exit 0 we did not ask for (autopilot stops k0s like this) */
        K0S_EXIT_EXITED_ERROR, /* exit != 0 */
        K0S_EXIT_SIGNALED, /* killed by a signal we did not send */
        K0S_EXIT_STOPPED_BY_AGENT, /* any end after our SIGTERM (SIGKILL after the timeout too) */
        K0S_EXIT_START_FAILED, /* the spawn failed (exec error, pidfile not writable) */
        K0S_EXIT_UNKNOWN, /* an adopted k0s (not our child): its status cannot be known */
        _K0S_EXIT_REASON_MAX,
        _K0S_EXIT_REASON_INVALID = -EINVAL,
} K0sExitReason;

const char *k0s_exit_reason_to_string(K0sExitReason r);

typedef struct SupervisorCounters {
        uint64_t starts; /* k0s processes started (not adopted) */
        uint64_t restarts; /* starts after the first start or adoption */
        uint64_t exits[_K0S_EXIT_REASON_MAX];
        uint64_t last_start_usec; /* CLOCK_MONOTONIC of the last start; 0 if none */
} SupervisorCounters;

typedef struct SupervisorTiming {
        uint64_t settle_usec;
        uint64_t backoff_min_usec, backoff_max_usec;
        uint64_t stable_usec;
        uint64_t stop_timeout_usec;
} SupervisorTiming;

/* The timing section of the config, as the supervisor takes it. */
void supervisor_timing_from_config(const AgentConfig *c, SupervisorTiming *ret);

typedef struct Supervisor Supervisor;

/* Called on every state change, every k0s exit and when a start is blocked. */
typedef void (*SupervisorHandler)(Supervisor *s, void *userdata);

int supervisor_new(const char *state_dir, const SupervisorTiming *t, SupervisorHandler handler,
                   void *userdata, Supervisor **ret);
int supervisor_attach(Supervisor *s, sd_event *e);
void supervisor_set_timing(Supervisor *s, const SupervisorTiming *t);
int supervisor_set_state_dir(Supervisor *s, const char *state_dir);

/*
 * Look at state_dir/k0s.pid: if it names a live k0s (see k0s_proc_check()), adopt it via
 * pidfd_open without signalling it. Returns 1 if adopted, 0 if nothing to adopt (a stale pidfile,
 * naming no process or another program, is removed). When it cannot be told (the pidfile or /proc
 * unreadable, a child that is about to exec k0s), returns -errno and stays blocked: state BACKOFF,
 * supervisor_get_blocked_reason() says why, no k0s is started, adoption is retried with backoff.
 */
int supervisor_adopt(Supervisor *s, const char *binary);

/*
 * What k0s should be. spec == NULL means "hold": start nothing new, leave a running k0s alone,
 * cancel a pending restart. With a spec: not running -> start now (or when a running backoff
 * delay ends); running with the same hash -> nothing (and a pending settle is cancelled);
 * running with another hash -> restart after settle (one SIGTERM, wait, start the new spec at
 * once). The spec is copied.
 *
 * Before every start, argv[0] is stat()ed: if spec->binary_id is valid and the file is another
 * one now, nothing is started, supervisor_binary_changed() turns true and the handler is called;
 * hand a spec probed from the new binary, it starts at once.
 */
int supervisor_set_desired(Supervisor *s, const K0sSpec *spec);

/* Stop k0s for good (agent shutdown): one SIGTERM, SIGKILL after stop_timeout; the handler is
 * called when it is gone. Returns 0 if nothing runs. */
int supervisor_stop(Supervisor *s);
/* Forget k0s without signalling it (agent restart under systemd: the next agent adopts it). */
void supervisor_detach(Supervisor *s);

SupervisorState supervisor_get_state(const Supervisor *s);
pid_t supervisor_get_pid(const Supervisor *s); /* 0 if none */
bool supervisor_is_adopted(const Supervisor *s);
const char *supervisor_get_hash(const Supervisor *s); /* hash of the running k0s, or NULL */
uint64_t supervisor_get_started_usec(const Supervisor *s); /* CLOCK_REALTIME, 0 if none */
unsigned supervisor_get_restarts(const Supervisor *s); /* starts after the first */
/* Last exit: "exited 1", "killed by SIGKILL", NULL if none yet. */
const char *supervisor_get_last_exit(const Supervisor *s);
/* A start waits for a spec probed from the binary now on disk (see set_desired). */
bool supervisor_binary_changed(const Supervisor *s);
/* Adoption could not tell whether the pidfile's process is k0s: nothing starts, retried. */
bool supervisor_adoption_failed(const Supervisor *s);
/* Why no k0s is started although one is wanted (binary changed, adoption failed), or NULL. A
 * sentence for status and STATUS=. */
const char *supervisor_get_blocked_reason(const Supervisor *s);
void supervisor_get_counters(const Supervisor *s, SupervisorCounters *ret);

Supervisor *supervisor_free(Supervisor *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Supervisor *, supervisor_free);
