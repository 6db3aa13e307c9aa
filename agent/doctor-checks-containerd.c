/* SPDX-License-Identifier: MIT */
/*
 * doctor's containerd file checks: CR01 (drop-in format vs the k0s version), CR03 (one
 * hosts.toml per registry with a [host] table and no double /v2), CR04 (skip_verify on http),
 * CR07 (drop-in directory and k0s-managed containerd.toml). The /v2/ probes are in
 * doctor-checks-net.c.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor.h"
#include "util.h"

#define AREA "containerd"

/* Missing generated files are expected until the agent ran once. */
static DoctorSeverity missing_sev(const Doctor *d) {
        return d->agent_status ? DOCTOR_WARNING : DOCTOR_INFO;
}

static void check_cr01(Doctor *d) {
        _cleanup_free_ char *text = NULL;
        const char *p = d->cfg->containerd_dropin;
        if (d->cfg->n_registries == 0) {
                doctor_report(d, "CR01", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no registries, no drop-in");
                return;
        }
        int r = doctor_read(d, p, 1 << 20, &text, NULL);
        if (r < 0) {
                _cleanup_free_ char *ev = strdup_printf("%s: %s", p, strerror(-r));
                doctor_report(d, "CR01", AREA, missing_sev(d), ev,
                              "start the agent (it writes the drop-in once the tailnet is up)",
                              "the registry drop-in is not there yet");
                return;
        }
        ContainerdFormat have = strstr(text, "io.containerd.cri.v1.images") ? CONTAINERD_FORMAT_V3
                : strstr(text, "io.containerd.grpc.v1.cri")                 ? CONTAINERD_FORMAT_V2
                                                            : _CONTAINERD_FORMAT_INVALID;
        if (!d->have_k0s_version || have < 0) {
                _cleanup_free_ char *ev =
                        strdup_printf("%s: format %s", p, containerd_format_to_string(have) ?: "?");
                doctor_report(d, "CR01", AREA, DOCTOR_INFO, ev, NULL,
                              "drop-in format not compared (%s)",
                              have < 0 ? "no CRI section found" : "k0s version unknown");
                return;
        }
        ContainerdFormat want = k0s_version_containerd_format(&d->k0s_version);
        _cleanup_free_ char *ev = strdup_printf(
                "%s: format %s; k0s %s expects %s", p, containerd_format_to_string(have),
                d->k0s_version.text, containerd_format_to_string(want));
        if (have != want)
                doctor_report(d, "CR01", AREA, DOCTOR_ERROR, ev,
                              "systemctl restart k0s-tsagent (it rewrites the drop-in for the "
                              "k0s version it probes)",
                              "the drop-in is %s but k0s %s wants %s (k0s >= 1.36 refuses v2 "
                              "drop-ins)",
                              containerd_format_to_string(have), d->k0s_version.text,
                              containerd_format_to_string(want));
        else
                doctor_report(d, "CR01", AREA, DOCTOR_OK, ev, NULL,
                              "drop-in format %s matches k0s %s", containerd_format_to_string(have),
                              d->k0s_version.text);
}

static void check_hosts_toml(Doctor *d, const Registry *reg) {
        _cleanup_free_ char *path =
                strdup_printf("%s/%s/hosts.toml", d->cfg->containerd_certs_dir, reg->name);
        _cleanup_free_ char *text = NULL;
        int r = path ? doctor_read(d, path, 1 << 20, &text, NULL) : -ENOMEM;
        if (r < 0) {
                _cleanup_free_ char *ev = strdup_printf("%s: %s", path ?: "?", strerror(-r));
                doctor_report(d, "CR03", AREA, missing_sev(d), ev,
                              "start the agent; the directory must be named exactly as image "
                              "references spell host[:port]",
                              "no hosts.toml for registry %s", reg->name);
                return;
        }
        bool has_host = strstr(text, "[host.") != NULL;
        bool double_v2 = strstr(text, "/v2/v2") ||
                (strstr(text, "/v2\"]") && !strstr(text, "override_path"));
        if (!has_host || double_v2)
                doctor_report(d, "CR03", AREA, has_host ? DOCTOR_WARNING : DOCTOR_ERROR, path,
                              "let the agent render the file (every endpoint as a [host] table, "
                              "no /v2 in the URL)",
                              "%s: %s", path,
                              has_host ? "an endpoint URL ends in /v2: containerd adds /v2 "
                                         "again (404) without override_path"
                                       : "no [host] table: containerd has no fallback");
        else
                doctor_report(d, "CR03", AREA, DOCTOR_OK, path, NULL, "hosts.toml for %s",
                              reg->name);
        /* CR04: skip_verify under an http:// host table */
        const char *h = strstr(text, "[host.\"http://");
        const char *next = h ? strstr(h + 1, "[host.") : NULL;
        const char *sv = h ? strstr(h, "skip_verify = true") : NULL;
        if (sv && (!next || sv < next))
                doctor_report(d, "CR04", AREA, DOCTOR_WARNING, path,
                              "drop skip_verify from http:// hosts (containerd then tries "
                              "HTTPS first)",
                              "skip_verify on an http:// host in %s", path);
}

static void check_cr03(Doctor *d) {
        for (size_t i = 0; i < d->cfg->n_registries; i++)
                check_hosts_toml(d, &d->cfg->registries[i]);
        if (d->cfg->n_registries == 0)
                doctor_report(d, "CR03", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no registries in the agent's config");
}

/* k0s reads drop-ins only from /etc/k0s/containerd.d and only while containerd.toml is
 * k0s-managed (k0s pkg/component/worker/containerd/component.go isK0sManagedConfig). */
static void check_cr07(Doctor *d) {
        const char *p = d->cfg->containerd_dropin;
        const char *slash = strrchr(p, '/');
        size_t dl = slash ? (size_t) (slash - p) : 0;
        _cleanup_free_ char *head = NULL;
        bool bad = false;
        if (dl < strlen("containerd.d") ||
            strncmp(p + dl - strlen("/containerd.d"), "/containerd.d", strlen("/containerd.d"))) {
                doctor_report(d, "CR07", AREA, DOCTOR_ERROR, p,
                              "containerd.dropin: /etc/k0s/containerd.d/registry.toml",
                              "the drop-in is not in a containerd.d directory: k0s never reads "
                              "it");
                bad = true;
        }
        if (doctor_read(d, "/etc/k0s/containerd.toml", 1 << 20, &head, NULL) >= 0 &&
            !startswith(head, "# k0s_managed=true")) {
                doctor_report(d, "CR07", AREA, DOCTOR_ERROR, "/etc/k0s/containerd.toml:1",
                              "remove /etc/k0s/containerd.toml (k0s writes its own) or put the "
                              "registry settings into it by hand",
                              "/etc/k0s/containerd.toml is not k0s-managed: drop-ins are "
                              "ignored");
                return;
        }
        if (!bad)
                doctor_report(d, "CR07", AREA, DOCTOR_OK, p, NULL,
                              "drop-in directory is k0s's containerd.d");
}

void doctor_checks_containerd(Doctor *d) {
        check_cr01(d);
        check_cr03(d);
        check_cr07(d);
}
