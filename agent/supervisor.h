/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The k0s child: start (posix_spawn, argv only, stdout/stderr to journald via
 * sd_journal_stream_fd("k0s") or the agent's stderr), the settle rule for restarts, exactly one
 * SIGTERM then SIGKILL after stop_timeout, restart after any exit with exponential backoff
 * (reset after a stable period), pidfile + adoption of a k0s started by an earlier agent.
 * Never two k0s at once.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "facts.h"
#include "macro.h"

/* Put into k0s's environment; adoption requires it (like k0s's own _K0S_MANAGED=yes). */
#define SUPERVISOR_MARKER_ENV "K0S_TSAGENT_MANAGED=1"

typedef enum SupervisorState {
        SUPERVISOR_IDLE, /* no k0s, none wanted yet (gate closed) */
        SUPERVISOR_RUNNING, /* k0s runs (started or adopted) */
        SUPERVISOR_SETTLING, /* k0s runs, its inputs changed; restart when settle ends */
        SUPERVISOR_STOPPING, /* SIGTERM sent; SIGKILL when stop_timeout passes */
        SUPERVISOR_BACKOFF, /* k0s exited; restart when the backoff delay passes */
        _SUPERVISOR_STATE_MAX,
        _SUPERVISOR_STATE_INVALID = -EINVAL,
} SupervisorState;

const char *supervisor_state_to_string(SupervisorState s);

typedef struct SupervisorTiming {
        uint64_t settle_usec;
        uint64_t backoff_min_usec, backoff_max_usec;
        uint64_t stable_usec;
        uint64_t stop_timeout_usec;
} SupervisorTiming;

typedef struct Supervisor Supervisor;

/* Called on every state change and every k0s exit. */
typedef void (*SupervisorHandler)(Supervisor *s, void *userdata);

int supervisor_new(const char *state_dir, const SupervisorTiming *t, SupervisorHandler handler,
                   void *userdata, Supervisor **ret);
int supervisor_attach(Supervisor *s, sd_event *e);
void supervisor_set_timing(Supervisor *s, const SupervisorTiming *t);
int supervisor_set_state_dir(Supervisor *s, const char *state_dir);

/* Look at state_dir/k0s.pid: if it names a live k0s (thread-group leader, /proc/PID/exe is
 * `binary` (also "... (deleted)"), environ holds SUPERVISOR_MARKER_ENV, start time matches),
 * adopt it via pidfd_open without signalling it. Returns 1 if adopted, 0 if nothing to adopt
 * (a stale pidfile is removed), -errno on error. */
int supervisor_adopt(Supervisor *s, const char *binary);

/*
 * What k0s should be. spec == NULL means "hold": start nothing new, leave a running k0s alone,
 * cancel a pending restart. With a spec: not running -> start now (or when a running backoff
 * delay ends); running with the same hash -> nothing (and a pending settle is cancelled);
 * running with another hash -> restart after settle (one SIGTERM, wait, start the new spec at
 * once). The spec is copied.
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
uint64_t supervisor_get_next_start_usec(const Supervisor *s); /* CLOCK_MONOTONIC, 0 if none */

Supervisor *supervisor_free(Supervisor *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Supervisor *, supervisor_free);

/* `k0s version`, asynchronously: spawn, read stdout (<= 4 KiB), time out after timeout_usec.
 * done gets r < 0 on failure, else the trimmed first line of stdout. */
typedef struct VersionProbe VersionProbe;
typedef void (*VersionProbeHandler)(VersionProbe *p, int r, const char *output, void *userdata);
int version_probe_start(sd_event *e, const char *binary, uint64_t timeout_usec,
                        VersionProbeHandler done, void *userdata, VersionProbe **ret);
VersionProbe *version_probe_free(VersionProbe *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(VersionProbe *, version_probe_free);
