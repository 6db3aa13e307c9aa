/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The agent's Prometheus metrics, as a text file for node_exporter's textfile collector. The
 * manager fills a MetricsSnapshot after every reconcile pass and supervisor event and hands it
 * to metrics_update(); rendering is the pure metrics_render().
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "facts.h"
#include "macro.h"
#include "tailnet-status.h"

typedef enum MetricsFileKind {
        METRICS_FILE_DROPIN, /* containerd registry drop-in */
        METRICS_FILE_HOSTS, /* hosts.toml, one per registry */
        METRICS_FILE_K0S_CONFIG, /* the generated k0s.yaml */
        METRICS_FILE_STATUS, /* status.json */
        METRICS_FILE_METRICS, /* this file (filled in by the writer itself) */
        _METRICS_FILE_MAX,
        _METRICS_FILE_INVALID = -EINVAL,
} MetricsFileKind;

/* Why k0s exited, a small fixed set (the `reason` label). */
typedef enum MetricsExitReason {
        METRICS_EXIT_OK, /* exit status 0 (autopilot, k0s stop) */
        METRICS_EXIT_ERROR, /* exit status != 0 */
        METRICS_EXIT_SIGNALED, /* killed by a signal the agent did not send */
        METRICS_EXIT_STOPPED_BY_AGENT, /* the agent stopped it (restart, gate closed, stop) */
        _METRICS_EXIT_MAX,
        _METRICS_EXIT_INVALID = -EINVAL,
} MetricsExitReason;

/* A registry endpoint as the agent sees it (the `reachability` label). */
typedef enum MetricsReachability {
        METRICS_REACH_REACHABLE, /* peer: endpoint whose peer is reachable */
        METRICS_REACH_UNREACHABLE, /* peer: endpoint whose peer is not */
        METRICS_REACH_UNKNOWN, /* peer: endpoint naming no known peer */
        METRICS_REACH_URL, /* url: endpoint, not judged */
        _METRICS_REACH_MAX,
        _METRICS_REACH_INVALID = -EINVAL,
} MetricsReachability;

#define METRICS_LABEL_MAX 64

/* Plain values only, so a snapshot can be copied by assignment. Zero-initialize, then fill. */
typedef struct MetricsSnapshot {
        char version[METRICS_LABEL_MAX]; /* the agent's; "" -> PACKAGE_VERSION */
        char k0s_version[METRICS_LABEL_MAX]; /* of the binary on disk; "" -> "unknown" */
        bool gate_open;
        bool interface_present, interface_up;
        BackendState backend_state; /* _BACKEND_STATE_INVALID: LocalAPI unreachable/unknown */
        bool self_online;
        bool k0s_running;
        uint64_t k0s_starts, k0s_restarts;
        uint64_t k0s_exits[_METRICS_EXIT_MAX];
        uint64_t k0s_start_time_usec; /* CLOCK_REALTIME of the running k0s's start; 0 = none */
        uint64_t tailnet_to_k0s_start_usec; /* last measured latency; UINT64_MAX = never */
        uint64_t file_writes[_METRICS_FILE_MAX], file_write_failures[_METRICS_FILE_MAX];
        uint64_t localapi_reconnects;
        unsigned registry_endpoints[_METRICS_REACH_MAX];
        ClockFact clock; /* the wait's state */
        bool clock_synced; /* the kernel's (or timesyncd's) view */
        uint64_t clock_steps; /* clock steps seen since the agent started */
} MetricsSnapshot;

/* A snapshot with every value "nothing yet". */
void metrics_snapshot_init(MetricsSnapshot *s);

const char *metrics_file_kind_to_string(MetricsFileKind k);
const char *metrics_exit_reason_to_string(MetricsExitReason r);
const char *metrics_reachability_to_string(MetricsReachability r);

/* The Prometheus text exposition (format 0.0.4) of s. Pure. */
int metrics_render(const MetricsSnapshot *s, char **ret);

typedef struct Metrics Metrics;

/* path NULL or "" -> *ret = NULL and 0 (metrics off; every call below accepts NULL). */
int metrics_new(const char *path, Metrics **ret);
int metrics_attach(Metrics *m, sd_event *e);
/* Writes the file when a value changed, at most once a second (a trailing write carries the
 * last snapshot), never while nothing changes, and only once its directory exists. */
int metrics_update(Metrics *m, const MetricsSnapshot *s);
/* Write a pending snapshot now (at shutdown). */
void metrics_flush(Metrics *m);
uint64_t metrics_get_writes(Metrics *m);
uint64_t metrics_get_write_failures(Metrics *m);
Metrics *metrics_free(Metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Metrics *, metrics_free);

/* What the manager sees only as a sequence of states (the k0s pid coming and going, the gate
 * opening, file writes) turned into the snapshot's counters. Pure: the caller passes the time. */
typedef struct MetricsTracker {
        MetricsSnapshot snap; /* counters live here; the manager fills the gauges */
        pid_t pid; /* k0s pid at the last look, 0 = none */
        uint64_t started_usec; /* its start time (CLOCK_REALTIME) */
        bool stopping; /* the agent was stopping that k0s at the last look */
        bool gate_open;
        uint64_t gate_open_mono_usec; /* when the gate last opened, 0 = start measured */
} MetricsTracker;

void metrics_tracker_init(MetricsTracker *t);
/* After every supervisor event: pid (0 = none), its start time, adopted (an adopted k0s is not
 * a start), the state was STOPPING (an exit then is the agent's doing), the last exit text
 * ("exited 1", "killed by SIGSEGV", ...), now on CLOCK_MONOTONIC. */
void metrics_tracker_k0s(MetricsTracker *t, pid_t pid, uint64_t started_usec, bool adopted,
                         bool stopping, const char *last_exit, uint64_t now_mono_usec);
void metrics_tracker_gate(MetricsTracker *t, bool open, uint64_t now_mono_usec);
/* r as atomic_file_write() returned it: > 0 written, 0 unchanged, < 0 failed. */
void metrics_tracker_file(MetricsTracker *t, MetricsFileKind k, int r);
/* The registry endpoints by reachability (peer: endpoints resolved as reconcile does; now:
 * CLOCK_REALTIME µs). */
void metrics_count_endpoints(const AgentConfig *c, const TailnetStatus *t, uint64_t now,
                             MetricsSnapshot *s);
