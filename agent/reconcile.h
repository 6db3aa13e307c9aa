/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Pure: (config, node facts) -> Plan. Which files with which content, what k0s should be
 * (run with argv/env, hold, or nothing yet), and the one-line status. No I/O: the caller reads
 * the base k0s.yaml and the k0s version and passes them in.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "facts.h"

typedef struct PlanFile {
        char *path; /* absolute */
        char *contents;
        mode_t mode;
} PlanFile;

typedef enum PlanK0s {
        PLAN_K0S_WAIT, /* gate closed: hold (start nothing, keep a running k0s) */
        PLAN_K0S_RUN, /* gate open: run `spec` */
        _PLAN_K0S_MAX,
        _PLAN_K0S_INVALID = -EINVAL,
} PlanK0s;

typedef struct Plan {
        bool gate_open;
        char *address; /* the tailnet IPv4 k0s is pinned to, NULL while the gate is closed */
        char *dns_name; /* MagicDNS name without trailing dot, may be NULL */
        char *waiting_for; /* gate closed: what is missing, e.g. "tailscale0 to appear" */

        PlanFile *files; /* in write order: hosts.toml files first, drop-in, k0s.yaml last */
        size_t n_files;
        char **registry_dirs; /* certs_dir/<name> for every configured registry (keep set) */

        PlanK0s k0s;
        K0sSpec spec; /* PLAN_K0S_RUN only */

        char **warnings; /* NULL-terminated, never NULL */
        char *error; /* a fatal problem for this pass (bad base k0s.yaml), or NULL */
        char *status; /* one line for STATUS= */
} Plan;

int reconcile(const AgentConfig *cfg, const NodeFacts *facts, Plan **ret);
Plan *plan_free(Plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Plan *, plan_free);

/* Argument vector for k0s, without the binary: exposed for tests.
 * worker: worker --token-file=T --kubelet-extra-args=--node-ip=IP [args...]
 * controller: controller --config=C [--enable-worker | --single] [--kubelet-extra-args=...]
 * User-given --kubelet-extra-args in k0s.args are merged into ours (node-ip ours). */
int reconcile_k0s_argv(const AgentConfig *cfg, const char *address, char ***ret);

/* 64-bit FNV-1a over argv, env and the k0s.yaml text, as 16 hex digits. */
char *reconcile_spec_hash(char *const *argv, char *const *env, const char *k0s_yaml);

/* Endpoint order for a registry: endpoints whose host is a tailnet peer known to be offline go
 * last (containerd tries hosts in file order and waits out a dead one's dial timeout). */
int reconcile_endpoint_order(const Registry *r, const TailnetStatus *tailnet, size_t **ret);
