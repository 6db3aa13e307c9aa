/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `k0s-tsagent doctor`: the shared context of the checks and the one way a check reports.
 * doctor.c owns the run and the output; the doctor-checks-*.c files own the checks of an area.
 */

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <yaml.h>

#include "config.h"
#include "facts.h"
#include "k0s-version.h"
#include "tailnet-status.h"

typedef enum DoctorSeverity {
        DOCTOR_OK,
        DOCTOR_INFO,
        DOCTOR_SKIPPED,
        DOCTOR_WARNING,
        DOCTOR_ERROR,
        _DOCTOR_SEVERITY_MAX,
        _DOCTOR_SEVERITY_INVALID = -EINVAL,
} DoctorSeverity;

const char *doctor_severity_to_string(DoctorSeverity s);

typedef struct DoctorCheck {
        char *id, *area, *title, *evidence, *fix;
        DoctorSeverity severity;
} DoctorCheck;

/* What netlink/ioctl says about one link right now. */
typedef struct DoctorLink {
        bool present, up;
        unsigned mtu;
        char **ipv4, **ipv6; /* never NULL once loaded */
} DoctorLink;

typedef struct Doctor {
        const AgentConfig *cfg;
        const char *root; /* NULL: the live system; else config paths are read below it */
        char **only; /* --check IDs, NULL = all */
        uint64_t now_usec; /* CLOCK_REALTIME */
        bool is_root; /* euid 0 */

        DoctorCheck *checks;
        size_t n_checks;

        cJSON *agent_status; /* state_dir/status.json of a running agent, or NULL */
        char *ts_json; /* LocalAPI /status body, NULL when unreachable */
        cJSON *ts; /* the same, parsed */
        TailnetStatus *tn; /* the same, through common/tailnet-status.c */
        char *ts_error; /* why ts_json is NULL */
        DoctorLink link; /* cfg->interface */

        bool have_k0s_version;
        K0sVersion k0s_version; /* of the binary on disk (or the running k0s) */
        pid_t k0s_pid; /* the running k0s, 0 = none known */
        char **k0s_argv; /* its argv (from /proc or status.json), NULL = unknown */
        char *k0s_yaml; /* the generated config if present, else the base config */
        char *k0s_yaml_path; /* the file k0s_yaml came from (as named in the config) */
        char *pod_cidr, *service_cidr; /* from the k0s config, else k0s's defaults */
        char **controllers; /* tailnet IPv4s of controller peers (never NULL) */
        char **controllers_from; /* where each was found, same order */
} Doctor;

/* Record one result. title is printf-style; evidence and fix may be NULL. Untrusted text in any
 * of them is sanitized here. */
void doctor_report(Doctor *d, const char *id, const char *area, DoctorSeverity sev,
                   const char *evidence, const char *fix, const char *title_fmt, ...)
        _printf_(7, 8);
/* Whether --check asked for this ID (or for everything). */
bool doctor_wants(const Doctor *d, const char *id);
/* true when no --root (or --root /) was given. */
bool doctor_is_live(const Doctor *d);
/* path below --root, malloc'd. */
char *doctor_path(const Doctor *d, const char *path);
/* read_file_full() of doctor_path(path). */
int doctor_read(const Doctor *d, const char *path, size_t max, char **ret, size_t *ret_len);
/* The tailnet IPv4 of this node: LocalAPI first, else the interface's first 100.x, or NULL. */
const char *doctor_self_ipv4(const Doctor *d);

/* `k0s-tsagent doctor ...`; argv[0] is "doctor". Returns the exit code (0, 1, 2; 2 also for a
 * usage error). */
int doctor_cli(const char *config_path, int argc, char **argv);

/* RFC 3339 ("2026-03-01T09:00:00.5Z", "...+02:00") -> CLOCK_REALTIME µs; 0 for the zero time
 * or bad input. */
uint64_t doctor_parse_rfc3339(const char *s);
/* systemd's view of a unit over the system bus: UnitFileState ("enabled", ...) and ActiveState
 * ("active", ...), malloc'd. -ENXIO when there is no system bus. */
int doctor_unit_state(const char *unit, char **ret_file_state, char **ret_active_state);
/* The controller addresses (token file, kubelet kubeconfig, k0s config) into d->controllers. */
void doctor_load_controllers(Doctor *d);

/* The checks, one function per area (each reports every check of its area that applies). */
void doctor_checks_tailscale(Doctor *d);
void doctor_checks_host(Doctor *d);
void doctor_checks_k0s(Doctor *d);
void doctor_checks_cni(Doctor *d);
void doctor_checks_dns(Doctor *d);
void doctor_checks_containerd(Doctor *d);
void doctor_checks_firewall(Doctor *d);
void doctor_checks_routing(Doctor *d);
void doctor_checks_net(Doctor *d);
void doctor_checks_k8s(Doctor *d);

/* Run the argvs in parallel (execve, no shell, stdin /dev/null, stderr dropped), each with the
 * same deadline; out[i] gets the stdout (capped at max) or NULL, status[i] the wait status or
 * -errno (-ETIMEDOUT: killed at the deadline, -ENOENT: no such binary). */
void doctor_run_many(char *const *const argvs[], size_t n, uint64_t timeout_usec, size_t max,
                     char *out[], int status[]);
/* The link's state via getifaddrs() + SIOCGIFMTU. */
int doctor_link_load(const char *name, DoctorLink *ret);
/* SIOCGIFMTU, 0 when the link does not exist. */
unsigned doctor_link_mtu(const char *name);
/* The k0s config (generated, else base) as a libyaml document; -ENOENT when there is none. */
int doctor_k0s_yaml(const Doctor *d, yaml_document_t *ret);
void doctor_link_done(DoctorLink *l);
