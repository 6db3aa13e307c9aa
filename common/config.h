/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * /etc/k0s-tsagent.conf: YAML -> AgentConfig. Parsing and validation only; never logs.
 * Every error is returned as one "FILE:LINE:COLUMN: message" string (1-based line/column).
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"

#define CONFIG_PATH_DEFAULT "/etc/k0s-tsagent.conf"
#define CONFIG_MAX_SIZE (1024 * 1024) /* bytes; a bigger file is an error */

typedef enum K0sRole {
        K0S_ROLE_WORKER,
        K0S_ROLE_CONTROLLER,
        K0S_ROLE_CONTROLLER_WORKER, /* "controller+worker": controller --enable-worker */
        K0S_ROLE_SINGLE, /* "single": controller --single */
        _K0S_ROLE_MAX,
        _K0S_ROLE_INVALID = -EINVAL,
} K0sRole;

const char *k0s_role_to_string(K0sRole r);
K0sRole k0s_role_from_string(const char *s);
bool k0s_role_is_controller(K0sRole r); /* controller, controller+worker, single */
bool k0s_role_runs_kubelet(K0sRole r); /* worker, controller+worker, single */

/* Bounds that keep the cost of one event small whatever the file says (documented in
 * k0s-tsagent.conf(5)). */
#define CONFIG_MAX_REGISTRIES 256
#define CONFIG_MAX_ENDPOINTS 16

typedef struct RegistryEndpoint {
        char *url; /* http:// or https://, validated; NULL for a peer: endpoint */
        char *peer; /* tailnet peer (HostName or MagicDNS name), NULL for a url: endpoint */
        unsigned port; /* peer: 1-65535 */
        char *scheme; /* peer: "http" or "https" */
        bool skip_verify; /* refused by validation on http:// */
        char *ca; /* absolute path or NULL */
} RegistryEndpoint;

typedef struct Registry {
        char *name; /* host[:port], exactly as image references spell it; safe as a dir name */
        RegistryEndpoint *endpoints;
        size_t n_endpoints; /* >= 1 */
} Registry;

typedef enum ClockWaitSync {
        CLOCK_WAIT_SYNC_AUTO, /* wait only when the machine has no battery-backed RTC */
        CLOCK_WAIT_SYNC_YES,
        CLOCK_WAIT_SYNC_NO,
        _CLOCK_WAIT_SYNC_MAX,
        _CLOCK_WAIT_SYNC_INVALID = -EINVAL,
} ClockWaitSync;

const char *clock_wait_sync_to_string(ClockWaitSync w);
ClockWaitSync clock_wait_sync_from_string(const char *s);

typedef struct AgentConfig {
        char *path; /* file it was loaded from, for messages; may be NULL */

        char *interface; /* "tailscale0"; a valid interface name (< IFNAMSIZ) */
        K0sRole role; /* default worker */

        /* tailscale: */
        char *tailscale_socket; /* /run/tailscale/tailscaled.sock */
        bool require_running; /* true */
        uint64_t peer_refresh_usec; /* tailscale.peer_refresh: 60s; 0 = never (only used
                                          * when a registry has >1 endpoint) */

        /* k0s: */
        char *k0s_binary; /* /usr/local/bin/k0s */
        char *k0s_version; /* "auto" or a version string that k0s_version_parse() accepts */
        char *k0s_token_file; /* /etc/k0s/k0stoken */
        char *k0s_base_config; /* /etc/k0s/k0s.yaml */
        char *k0s_config; /* /etc/k0s/k0s-tsagent.yaml */
        char **k0s_args; /* NULL-terminated, never NULL (empty vector) */
        char **k0s_env; /* k0s.env: map NAME: value -> "NAME=value", never NULL */
        char *k0s_status_socket; /* /run/k0s/status.sock */
        bool k0s_ipv6; /* k0s.ipv6: false; worker roles get --node-ip=<v4>,<v6> */
        char *k0s_accept_address; /* k0s.accept_address: an etcd controller's new tailnet
                                   * IPv4 the operator confirmed, or NULL */

        /* containerd: */
        char *containerd_dropin; /* /etc/k0s/containerd.d/registry.toml */
        char *containerd_certs_dir; /* /etc/containerd/certs.d */

        Registry *registries;
        size_t n_registries;

        /* calico: */
        unsigned calico_mtu; /* 1230; 0 leaves the base config's value */
        char *calico_mark_mask; /* "0xff00ff00": hex, validated (FELIX_IPTABLESMARKMASK) */
        char *calico_nftables_mark_mask; /* "0xff00ff00" (FELIX_NFTABLESMARKMASK) */

        /* failover: */
        uint64_t failover_target_usec; /* failover.target: 0 = off; else >= 20s */

        /* clock: */
        ClockWaitSync clock_wait_sync; /* clock.wait_sync: auto */
        uint64_t clock_timeout_usec; /* clock.timeout: 2m */

        /* metrics: */
        char *metrics_textfile; /* metrics.textfile: node_exporter textfile; NULL = off */

        /* doctor: */
        char *doctor_backup_dir; /* doctor.backup_dir: where etcd backups land, or NULL */

        /* health: */
        uint64_t health_interval_usec; /* health.interval: 30s; 0 disables the probe */
        uint64_t health_timeout_usec; /* health.timeout: 5s */

        /* timing: */
        uint64_t settle_usec; /* 10s */
        uint64_t restart_backoff_min_usec; /* 1s */
        uint64_t restart_backoff_max_usec; /* 60s */
        uint64_t stable_usec; /* timing.stable: 120s; a k0s running this long resets
                                            * the backoff */
        uint64_t stop_timeout_usec; /* 90s */

        char *state_dir; /* /run/k0s-tsagent: status.json, k0s.pid */
        char *persist_dir; /* /var/lib/k0s-tsagent: what survives reboots (last address) */
} AgentConfig;

/* A config with every default filled in. */
int config_new_default(AgentConfig **ret);

/* Parse YAML from f. filename is used in error messages only. On a parse or validation error
 * returns -EINVAL (or -ENOMEM, -EFBIG for a file over CONFIG_MAX_SIZE) and, if ret_error is
 * non-NULL, a malloc'd "FILE:LINE:COLUMN: message". */
int config_parse(FILE *f, const char *filename, AgentConfig **ret, char **ret_error);

typedef enum ConfigLoadFlags {
        /* Refuse a file not owned by root or writable by group or others (sshd's StrictModes):
         * the file names programs the agent runs as root. */
        CONFIG_LOAD_STRICT_OWNER = 1 << 0,
} ConfigLoadFlags;

/* Open path and config_parse() it. A missing/unreadable file is "PATH: strerror" in ret_error;
 * with CONFIG_LOAD_STRICT_OWNER a file that fails config_check_owner() is -EPERM. */
int config_load_full(const char *path, ConfigLoadFlags flags, AgentConfig **ret, char **ret_error);

/* config_load_full() with CONFIG_LOAD_STRICT_OWNER exactly when running as root (euid 0). */
int config_load(const char *path, AgentConfig **ret, char **ret_error);

/* The ownership rule of CONFIG_LOAD_STRICT_OWNER on a stat of the file: 0 if owned by root and
 * not group- or world-writable, else -EPERM and "PATH: reason ... fix" in ret_error. */
struct stat;
int config_check_owner(const struct stat *st, const char *path, char **ret_error);

AgentConfig *config_free(AgentConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentConfig *, config_free);

/* "90s", "5m", "1h", "250ms", "1m30s", "0"; a bare number is refused (unit required) except 0. */
int parse_duration(const char *s, uint64_t *ret_usec);
/* Formats into buf, e.g. "1m30s", "250ms". */
const char *format_duration(char *buf, size_t n, uint64_t usec);

/* host[:port]: DNS name (labels of [A-Za-z0-9-], not starting/ending with '-'), IPv4 dotted quad,
 * or "[IPv6]"; port 1-65535; total <= 253 bytes. Anything that could leave certs_dir is refused. */
bool registry_name_is_valid(const char *name);

/* Frees what r holds and empties it. */
void registry_done(Registry *r);

/* Warnings about a config that is valid but probably not what the operator meant (k0s.ipv6
 * without dual stack in the base config, ...), as "FILE: key: message" lines, read from the
 * files the config names (the base config with a size cap). *ret_warnings is a NULL-terminated
 * vector, empty when all is well. Returns 0 or -ENOMEM. */
int config_lint(const AgentConfig *c, char ***ret_warnings);
