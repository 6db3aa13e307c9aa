/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * base k0s.yaml (optional) + tailnet facts -> the k0s.yaml the agent generates and passes to
 * `k0s controller --config=`. libyaml document API; keys the agent does not own are kept.
 */

#include <stddef.h>

#include "config.h"

#define RENDER_K0S_MAX_BASE_SIZE (1024u * 1024u)

typedef struct K0sFacts {
        const char *ipv4; /* required: the tailnet IPv4 */
        const char *dns_name; /* MagicDNS name, trailing dot already dropped; may be NULL */
} K0sFacts;

/*
 * base/base_len: the user's k0s.yaml, NULL for none (a minimal ClusterConfig is made).
 * base_path: named in the header comment and in errors.
 * Sets spec.api.address, appends ipv4 and dns_name to spec.api.sans (no duplicates),
 * spec.storage.etcd.peerAddress unless spec.storage.type is set and not "etcd",
 * spec.network.provider = calico if unset; for calico: calico.ipAutodetectionMethod
 * "interface=<cfg->interface>", calico.envVars.FELIX_IPTABLESMARKMASK = cfg->calico_mark_mask,
 * calico.mtu = cfg->calico_mtu (if non-zero); nodeLocalLoadBalancing.type EnvoyProxy when enabled
 * and no type given. provider kuberouter is kept and *ret_warning says why that is fragile.
 * Errors: -EINVAL with *ret_error = "BASE_PATH:LINE:COLUMN: message" (bad YAML, not a mapping,
 * a key of the wrong type), -EFBIG over RENDER_K0S_MAX_BASE_SIZE.
 */
int render_k0s_config(const char *base, size_t base_len, const char *base_path,
                      const AgentConfig *cfg, const K0sFacts *facts, char **ret_yaml,
                      char **ret_warning, char **ret_error);
