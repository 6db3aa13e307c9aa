/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * state_dir/status.json: the agent writes it (atomically) whenever its state changes;
 * `k0s-tsagent status [--json]` reads it and prints a table or the JSON.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "files.h"
#include "health.h"
#include "k0s-version.h"
#include "macro.h"
#include "netwatch.h"
#include "reconcile.h"
#include "supervisor.h"
#include "tailnet.h"

#define STATUS_FILE_NAME "status.json"

/* What status.json is built from: the modules are only read (getters), never driven. */
typedef struct StatusSources {
        const AgentConfig *config;
        const Plan *plan; /* NULL before the first reconcile pass */
        const char *status; /* the STATUS= line */
        const Netwatch *netwatch;
        const Tailnet *tailnet; /* NULL when the LocalAPI is not required */
        const Supervisor *supervisor;
        const Health *health;
        const Files *files;
        const K0sVersion *k0s_version; /* of the binary on disk, NULL while unknown */
        const char *last_error;
        const char *clock; /* clock_fact_to_string() of the clock fact */
        const char *base_config_error; /* why the base k0s.yaml cannot be used, or NULL */
        const char *last_address; /* persist_dir/last-address (controllers), or NULL */
        const K0sVersion *k0s_running_version; /* of the k0s that runs, NULL when unknown */
} StatusSources;

/* The status.json document. Every text that came from outside is passed through
 * str_sanitize(). NULL on OOM (every cJSON result is checked). */
cJSON *status_build(const StatusSources *src);

/* The STATUS= line for src->plan (not NULL) before it is sanitized: what k0s does and why. */
char *status_line(const StatusSources *src, bool stopping);

/* Write root as state_dir/status.json; 0 unchanged, 1 written, -errno. */
int status_write(const char *state_dir, const cJSON *root);

/* Read state_dir/status.json and print it: JSON as written, or a human table. uptime is computed
 * now from k0s.started. Returns 0, or -errno (-ENOENT: agent not running / never wrote it). */
int status_show(const char *state_dir, bool json, FILE *out);

/* From state_dir/status.json: the agent's pid (0 if absent) and the node's tailnet IPv4
 * (tailnet.ipv4, else the interface's first IPv4; NULL if none). */
int status_read_agent(const char *state_dir, pid_t *ret_pid, char **ret_ipv4);

/* RFC 3339 UTC with seconds, e.g. "2026-11-26T23:40:01Z", for a CLOCK_REALTIME usec value. */
const char *format_timestamp(char buf[static 32], uint64_t realtime_usec);
