/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Pure: (config, node facts) -> Plan. Which files with which content, what k0s should be
 * (run with argv/env, hold, or nothing yet), and the one-line status. No I/O: the caller reads
 * the base k0s.yaml, the token file's presence, the k0s versions and the clock and passes them
 * in as NodeFacts.
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
        PLAN_K0S_WAIT, /* hold: start nothing, keep a running k0s untouched */
        PLAN_K0S_RUN, /* run `spec` */
        _PLAN_K0S_MAX,
        _PLAN_K0S_INVALID = -EINVAL,
} PlanK0s;

typedef struct Plan {
        bool gate_open; /* k0s == PLAN_K0S_RUN */
        char *address; /* the tailnet IPv4 k0s is pinned to, NULL unless gate_open */
        char *address6; /* with k0s.ipv6: the tailnet IPv6, NULL unless gate_open */
        char *dns_name; /* MagicDNS name without trailing dot, may be NULL */
        char *waiting_for; /* !gate_open: what is missing, e.g. "tailscale0 to appear" */

        PlanFile *files; /* in write order: hosts.toml files first, drop-in, k0s.yaml last */
        size_t n_files;
        char **registry_dirs; /* certs_dir/<name> for every configured registry (keep set); a
                               * registry whose endpoints all failed to resolve has its dir here
                               * but no hosts.toml in files: the last one written stays */

        PlanK0s k0s;
        K0sSpec spec; /* PLAN_K0S_RUN only */

        /* An etcd controller whose tailnet IPv4 differs from the one it last ran with: k0s is
         * kept as it is (PLAN_K0S_WAIT, and k0s.yaml is not rewritten: a running k0s re-reads
         * it), hold_reason says what changed and the commands to move the etcd member. */
        bool hold;
        char *hold_reason; /* one line; NULL unless hold */
        /* The running k0s is another version than the binary on disk: the files follow the
         * running one; a restart (by the operator or autopilot) picks up the new binary. */
        bool upgrade_pending;

        char **warnings; /* NULL-terminated, never NULL: problems to log and show */
        char **notices; /* NULL-terminated, never NULL: information to log once and show */
        char *error; /* a problem that stops k0s from starting until it is fixed (bad or
                      * unreadable base k0s.yaml, missing worker token), or NULL */
        char *status; /* one line for STATUS= */
} Plan;

int reconcile(const AgentConfig *cfg, const NodeFacts *facts, Plan **ret);
Plan *plan_free(Plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Plan *, plan_free);

/* What k0s's argv depends on besides the config. */
typedef struct K0sArgvFacts {
        const char *ipv4; /* the tailnet IPv4 (--node-ip) */
        const char *ipv6; /* with k0s.ipv6: the tailnet IPv6, else NULL */
        bool token; /* pass --token-file (a joining role whose token file exists) */
        unsigned node_status_update_sec; /* failover: kubelet's frequency, 0 = not set */
} K0sArgvFacts;

/* Argument vector for k0s, with the binary, spelled as k0sctl spells the same flags
 * (k0sctl pkg/apis/k0sctl.k0sproject.io/v1beta1/cluster/host.go K0sInstallFlags):
 * worker: worker [--token-file=T] --kubelet-extra-args=--node-ip=IP[,IP6] [args...]
 * controller: controller --config=C [--enable-worker=true | --single=true] [--token-file=T]
 *             [--kubelet-extra-args=...] [args...]
 * User --kubelet-extra-args in k0s.args are merged into ours (node-ip ours; a user
 * --node-status-update-frequency wins over the failover profile's, with a warning appended to
 * *warnings). */
int reconcile_k0s_argv(const AgentConfig *cfg, const K0sArgvFacts *a, char ***ret,
                       char ***warnings);

/* 64-bit FNV-1a over argv, env and the k0s.yaml text, as 16 hex digits. */
char *reconcile_spec_hash(char *const *argv, char *const *env, const char *k0s_yaml);

/*
 * The endpoints of a registry in the order hosts.toml lists them, every one as a URL:
 * - a peer: endpoint is resolved with tailnet_status_find_peer() to scheme://<its IPv4>:port;
 *   the config's peer slots are filled with the reachable peers first
 *   (tailnet_peer_is_reachable()), then the unreachable ones, each group in config order;
 *   URL endpoints keep their slots;
 * - a URL endpoint whose host is a tailnet peer known to be unreachable goes last;
 * - an unknown peer (or no tailnet status) is left out, with a warning appended to *warnings.
 * ret->n_endpoints may be 0 (every endpoint was an unknown peer). ret is freed with
 * registry_done().
 */
int reconcile_registry_endpoints(const Registry *r, const TailnetStatus *tailnet,
                                 uint64_t now_realtime_usec, Registry *ret, char ***warnings);
