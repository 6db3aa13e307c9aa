/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * base k0s.yaml (optional) + tailnet facts -> the k0s.yaml the agent generates and passes to
 * `k0s controller --config=`. libyaml document API; keys the agent does not own are kept.
 * Also the failover profile arithmetic (failover.target -> Kubernetes timings).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define RENDER_K0S_MAX_BASE_SIZE (1024u * 1024u)

/* Kubernetes' timings for failover.target (the arithmetic is in k0s-tsagent.conf(5) and in
 * failover_profile_compute()). Whole seconds. */
typedef struct FailoverProfile {
        unsigned monitor_period_sec; /* kube-controller-manager node-monitor-period: 5 (kept) */
        unsigned grace_sec; /* kube-controller-manager node-monitor-grace-period */
        unsigned toleration_sec; /* kube-apiserver default-{not-ready,unreachable}-toleration-
                                  * seconds */
        unsigned update_sec; /* kubelet node-status-update-frequency */
} FailoverProfile;

#define FAILOVER_TARGET_MIN_USEC (20 * UINT64_C(1000000))

/* -EINVAL for a target under FAILOVER_TARGET_MIN_USEC (0 = off is the caller's business). */
int failover_profile_compute(uint64_t target_usec, FailoverProfile *ret);

typedef struct K0sFacts {
        const char *ipv4; /* required: the tailnet IPv4 */
        const char *ipv6; /* the tailnet IPv6 (k0s.ipv6), added to spec.api.sans; may be NULL */
        const char *dns_name; /* MagicDNS name, trailing dot already dropped; may be NULL */
        const FailoverProfile *failover; /* failover.target, NULL when off */
} K0sFacts;

/* What the render learned besides the text. */
typedef struct K0sRenderNotes {
        char **warnings; /* NULL-terminated, NULL when there is none; one line each */
        bool etcd_member; /* storage is k0s-managed etcd (type etcd, or unset and not --single;
                           * not an external cluster): this node is an etcd member */
} K0sRenderNotes;

void k0s_render_notes_done(K0sRenderNotes *n);

/*
 * base/base_len: the user's k0s.yaml, NULL for none (a minimal ClusterConfig is made).
 * base_path: named in the header comment and in errors.
 * Sets spec.api.address, appends ipv4, ipv6 and dns_name to spec.api.sans (no duplicates),
 * spec.storage.etcd.peerAddress unless spec.storage.type is set and not "etcd". The CNI provider
 * is never written: k0s defaults to kube-router (pkg/apis/k0s/v1beta1/network.go) and cannot
 * switch an installed cluster. For provider calico: calico.ipAutodetectionMethod
 * "interface=<cfg->interface>", calico.envVars FELIX_IPTABLESMARKMASK = cfg->calico_mark_mask
 * and FELIX_NFTABLESMARKMASK = cfg->calico_nftables_mark_mask, calico.mtu = cfg->calico_mtu (if
 * non-zero); kube-router (named or by default) and others get a warning. nodeLocalLoadBalancing
 * type EnvoyProxy when enabled and no type given. With facts->failover: the api and
 * controllerManager extraArgs of the profile, unless the base sets them (a warning then).
 * Errors: -EINVAL with *ret_error = "BASE_PATH:LINE:COLUMN: message" (bad YAML, not a mapping,
 * a key of the wrong type), -EFBIG over RENDER_K0S_MAX_BASE_SIZE. ret_notes and ret_error may be
 * NULL; ret_notes is only written on success.
 */
int render_k0s_config(const char *base, size_t base_len, const char *base_path,
                      const AgentConfig *cfg, const K0sFacts *facts, char **ret_yaml,
                      K0sRenderNotes *ret_notes, char **ret_error);
