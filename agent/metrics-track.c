/* SPDX-License-Identifier: MIT */
/*
 * Owns the metrics counters the agent derives from what it observes: k0s starts, restarts
 * and exits by reason (from the supervisor's pid and last exit), the gate-to-start latency,
 * file writes by kind. Pure: no clock, no I/O; the manager calls it and fills the gauges.
 */

#include <string.h>

#include "metrics.h"
#include "util.h"

void metrics_tracker_init(MetricsTracker *t) {
        *t = (MetricsTracker){};
        metrics_snapshot_init(&t->snap);
}

static MetricsExitReason exit_reason(const char *last_exit, bool stopping) {
        if (stopping)
                return METRICS_EXIT_STOPPED_BY_AGENT;
        if (last_exit && streq(last_exit, "exited 0"))
                return METRICS_EXIT_OK;
        if (last_exit && startswith(last_exit, "killed by"))
                return METRICS_EXIT_SIGNALED;
        return METRICS_EXIT_ERROR; /* "exited N", "failed to start: ..." */
}

void metrics_tracker_k0s(MetricsTracker *t, pid_t pid, uint64_t started_usec, bool adopted,
                         bool stopping, const char *last_exit, uint64_t now_mono_usec) {
        bool same = pid == t->pid && started_usec == t->started_usec;

        if (t->pid > 0 && !same)
                t->snap.k0s_exits[exit_reason(last_exit, t->stopping)]++;
        if (pid > 0 && !same && !adopted) {
                if (t->snap.k0s_starts > 0 || t->pid > 0)
                        t->snap.k0s_restarts++;
                t->snap.k0s_starts++;
                if (t->gate_open_mono_usec > 0 && now_mono_usec >= t->gate_open_mono_usec) {
                        t->snap.tailnet_to_k0s_start_usec = now_mono_usec - t->gate_open_mono_usec;
                        t->gate_open_mono_usec = 0; /* one measurement per opening */
                }
        }
        t->pid = pid;
        t->started_usec = pid > 0 ? started_usec : 0;
        t->stopping = pid > 0 && stopping;
        t->snap.k0s_running = pid > 0;
        t->snap.k0s_start_time_usec = t->started_usec;
}

void metrics_tracker_gate(MetricsTracker *t, bool open, uint64_t now_mono_usec) {
        if (open && !t->gate_open)
                t->gate_open_mono_usec = now_mono_usec ?: 1;
        if (!open)
                t->gate_open_mono_usec = 0;
        t->gate_open = open;
        t->snap.gate_open = open;
}

void metrics_tracker_file(MetricsTracker *t, MetricsFileKind k, int r) {
        if (k < 0 || k >= _METRICS_FILE_MAX)
                return;
        if (r > 0)
                t->snap.file_writes[k]++;
        else if (r < 0)
                t->snap.file_write_failures[k]++;
}

void metrics_count_endpoints(const AgentConfig *c, const TailnetStatus *t, uint64_t now,
                             MetricsSnapshot *s) {
        for (size_t i = 0; i < c->n_registries; i++)
                for (size_t j = 0; j < c->registries[i].n_endpoints; j++) {
                        const RegistryEndpoint *e = &c->registries[i].endpoints[j];
                        const char *ipv4;
                        bool reachable = false;
                        MetricsReachability r = !e->peer ? METRICS_REACH_URL
                                : !tailnet_status_resolve_peer(t, e->peer, now, &ipv4, &reachable)
                                ? METRICS_REACH_UNKNOWN
                                : reachable ? METRICS_REACH_REACHABLE
                                            : METRICS_REACH_UNREACHABLE;
                        s->registry_endpoints[r]++;
                }
}
