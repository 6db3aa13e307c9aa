/* SPDX-License-Identifier: MIT */
/*
 * Owns the metric names and the pure rendering of a MetricsSnapshot into Prometheus's text
 * format (names: k0s_tsagent_ prefix, base units, _total counters; every label from a small
 * fixed set, except the two version strings of build_info). Writes no file: metrics.c does.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

static const char *const file_kind_table[_METRICS_FILE_MAX] = {
        [METRICS_FILE_DROPIN] = "dropin",         [METRICS_FILE_HOSTS] = "hosts",
        [METRICS_FILE_K0S_CONFIG] = "k0s_config", [METRICS_FILE_STATUS] = "status",
        [METRICS_FILE_METRICS] = "metrics",
};

static const char *const exit_reason_table[_METRICS_EXIT_MAX] = {
        [METRICS_EXIT_OK] = "exited_ok",
        [METRICS_EXIT_ERROR] = "exited_error",
        [METRICS_EXIT_SIGNALED] = "signaled",
        [METRICS_EXIT_STOPPED_BY_AGENT] = "stopped_by_agent",
};

static const char *const reach_table[_METRICS_REACH_MAX] = {
        [METRICS_REACH_REACHABLE] = "reachable",
        [METRICS_REACH_UNREACHABLE] = "unreachable",
        [METRICS_REACH_UNKNOWN] = "unknown",
        [METRICS_REACH_URL] = "url",
};

const char *metrics_file_kind_to_string(MetricsFileKind k) {
        return k >= 0 && k < _METRICS_FILE_MAX ? file_kind_table[k] : NULL;
}

const char *metrics_exit_reason_to_string(MetricsExitReason r) {
        return r >= 0 && r < _METRICS_EXIT_MAX ? exit_reason_table[r] : NULL;
}

const char *metrics_reachability_to_string(MetricsReachability r) {
        return r >= 0 && r < _METRICS_REACH_MAX ? reach_table[r] : NULL;
}

void metrics_snapshot_init(MetricsSnapshot *s) {
        *s = (MetricsSnapshot){
                .backend_state = _BACKEND_STATE_INVALID,
                .tailnet_to_k0s_start_usec = UINT64_MAX,
                .clock = CLOCK_FACT_NOT_NEEDED,
        };
}

typedef struct Out {
        StrBuf b;
        int r;
} Out;

static void out(Out *o, const char *fmt, ...) _printf_(2, 3);
static void out(Out *o, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        if (o->r < 0)
                return;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        o->r = s ? strbuf_append(&o->b, s) : -ENOMEM;
        free(s);
}

static void family(Out *o, const char *name, const char *type, const char *help) {
        out(o, "# HELP k0s_tsagent_%s %s\n# TYPE k0s_tsagent_%s %s\n", name, help, name, type);
}

static void gauge(Out *o, const char *name, const char *help, bool v) {
        family(o, name, "gauge", help);
        out(o, "k0s_tsagent_%s %d\n", name, v ? 1 : 0);
}

/* A label value as the text format wants it: \\, \" and \n escaped; a value that is not
 * printable ASCII is cut there (versions are all this carries). */
static void label_escape(const char *in, char *buf, size_t size) {
        size_t j = 0;
        for (const char *p = in; *p && j + 3 < size; p++) {
                if (*p < 0x20 || *p > 0x7e)
                        break;
                if (*p == '\\' || *p == '"')
                        buf[j++] = '\\';
                buf[j++] = *p;
        }
        buf[j] = 0;
}

static void render_build(Out *o, const MetricsSnapshot *s) {
        char v[2 * METRICS_LABEL_MAX], k[2 * METRICS_LABEL_MAX];

        label_escape(isempty(s->version) ? PACKAGE_VERSION : s->version, v, sizeof(v));
        label_escape(isempty(s->k0s_version) ? "unknown" : s->k0s_version, k, sizeof(k));
        family(o, "build_info", "gauge",
               "The agent's version and the version of the k0s binary on disk; always 1.");
        out(o, "k0s_tsagent_build_info{version=\"%s\",k0s_version=\"%s\"} 1\n", v, k);
}

static void render_tailnet(Out *o, const MetricsSnapshot *s) {
        gauge(o, "gate_open",
              "1 when the tailnet gate is open (address on the interface, "
              "backend Running if required) and k0s may run.",
              s->gate_open);
        gauge(o, "interface_present", "1 when the tailnet interface exists.", s->interface_present);
        gauge(o, "interface_up", "1 when the tailnet interface is up.", s->interface_up);
        family(o, "backend_state", "gauge",
               "tailscaled's BackendState: 1 for the current one; \"unreachable\" when LocalAPI "
               "does not answer.");
        for (BackendState b = 0; b < _BACKEND_STATE_MAX; b++)
                out(o, "k0s_tsagent_backend_state{state=\"%s\"} %d\n", backend_state_to_string(b),
                    s->backend_state == b);
        out(o, "k0s_tsagent_backend_state{state=\"unreachable\"} %d\n",
            s->backend_state < 0 || s->backend_state >= _BACKEND_STATE_MAX);
        gauge(o, "self_online",
              "1 when the control server sees this node online (reported, never required).",
              s->self_online);
        family(o, "localapi_reconnects_total", "counter",
               "Reconnections to tailscaled's LocalAPI since the agent started.");
        out(o, "k0s_tsagent_localapi_reconnects_total %" PRIu64 "\n", s->localapi_reconnects);
}

static void render_k0s(Out *o, const MetricsSnapshot *s) {
        gauge(o, "k0s_running", "1 while the agent's k0s process runs.", s->k0s_running);
        family(o, "k0s_starts_total", "counter", "k0s processes started by the agent.");
        out(o, "k0s_tsagent_k0s_starts_total %" PRIu64 "\n", s->k0s_starts);
        family(o, "k0s_restarts_total", "counter",
               "k0s starts that followed an earlier k0s (after an exit or a change of its "
               "inputs).");
        out(o, "k0s_tsagent_k0s_restarts_total %" PRIu64 "\n", s->k0s_restarts);
        family(o, "k0s_exits_total", "counter", "k0s exits, by reason.");
        for (MetricsExitReason r = 0; r < _METRICS_EXIT_MAX; r++)
                out(o, "k0s_tsagent_k0s_exits_total{reason=\"%s\"} %" PRIu64 "\n",
                    exit_reason_table[r], s->k0s_exits[r]);
        if (s->k0s_start_time_usec > 0) {
                family(o, "k0s_start_time_seconds", "gauge",
                       "Start time of the running k0s, seconds since the Unix epoch.");
                out(o, "k0s_tsagent_k0s_start_time_seconds %" PRIu64 ".%03" PRIu64 "\n",
                    s->k0s_start_time_usec / USEC_PER_SEC,
                    s->k0s_start_time_usec % USEC_PER_SEC / USEC_PER_MSEC);
        }
        if (s->tailnet_to_k0s_start_usec != UINT64_MAX) {
                family(o, "tailnet_to_k0s_start_seconds", "gauge",
                       "Last reaction time: from the gate opening to k0s started.");
                out(o, "k0s_tsagent_tailnet_to_k0s_start_seconds %" PRIu64 ".%06" PRIu64 "\n",
                    s->tailnet_to_k0s_start_usec / USEC_PER_SEC,
                    s->tailnet_to_k0s_start_usec % USEC_PER_SEC);
        }
}

static void render_files(Out *o, const MetricsSnapshot *s) {
        family(o, "file_writes_total", "counter",
               "Files the agent (re)wrote because their content changed, by kind.");
        for (MetricsFileKind k = 0; k < _METRICS_FILE_MAX; k++)
                out(o, "k0s_tsagent_file_writes_total{kind=\"%s\"} %" PRIu64 "\n",
                    file_kind_table[k], s->file_writes[k]);
        family(o, "file_write_failures_total", "counter", "Failed file writes, by kind.");
        for (MetricsFileKind k = 0; k < _METRICS_FILE_MAX; k++)
                out(o, "k0s_tsagent_file_write_failures_total{kind=\"%s\"} %" PRIu64 "\n",
                    file_kind_table[k], s->file_write_failures[k]);
        family(o, "registry_endpoints", "gauge",
               "Registry endpoints in the config, by reachability of their tailnet peer.");
        for (MetricsReachability r = 0; r < _METRICS_REACH_MAX; r++)
                out(o, "k0s_tsagent_registry_endpoints{reachability=\"%s\"} %u\n", reach_table[r],
                    s->registry_endpoints[r]);
}

static void render_clock(Out *o, const MetricsSnapshot *s) {
        gauge(o, "clock_synchronized",
              "1 when the kernel (adjtimex) or timesyncd says the clock is synchronized.",
              s->clock_synced);
        family(o, "clock_wait_state", "gauge",
               "The agent's wait for a synchronized clock: 1 for the current state.");
        for (ClockFact c = 0; c < _CLOCK_FACT_MAX; c++)
                out(o, "k0s_tsagent_clock_wait_state{state=\"%s\"} %d\n", clock_fact_to_string(c),
                    s->clock == c);
        family(o, "clock_steps_total", "counter", "Steps of the wall clock seen by the agent.");
        out(o, "k0s_tsagent_clock_steps_total %" PRIu64 "\n", s->clock_steps);
}

int metrics_render(const MetricsSnapshot *s, char **ret) {
        Out o = {};

        render_build(&o, s);
        render_tailnet(&o, s);
        render_k0s(&o, s);
        render_files(&o, s);
        render_clock(&o, s);
        if (o.r < 0) {
                strbuf_done(&o.b);
                return o.r;
        }
        *ret = o.b.s ?: strdup("");
        return *ret ? 0 : -ENOMEM;
}
