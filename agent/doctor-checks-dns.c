/* SPDX-License-Identifier: MIT */
/*
 * doctor's DNS checks: DN01 (what /etc/resolv.conf is), DN02/DN03 (the resolv.conf the kubelet
 * hands to pods: no loopback, no 100.100.100.100, no tailnet search suffix), DN06 (every
 * registry host resolves, or has an IP or peer: endpoint; lookups in parallel, 2 s).
 */

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "doctor-rules.h"
#include "doctor.h"
#include "util.h"

#define AREA "dns"
#define RESOLVE_TIMEOUT_SEC 2

/* --resolv-conf inside the kubelet extra args, else the kubelet's default /etc/resolv.conf
 * (KubeletConfiguration.resolvConf). */
static char *kubelet_resolv_conf(const Doctor *d) {
        for (char **a = d->cfg->k0s_args; a && *a; a++) {
                const char *p = startswith(*a, "--kubelet-extra-args")
                        ? strstr(*a, "--resolv-conf=")
                        : NULL;
                if (p) {
                        p += strlen("--resolv-conf=");
                        return strndup(p, strcspn(p, " \t'\""));
                }
        }
        return strdup("/etc/resolv.conf");
}

static void check_dn01(Doctor *d) {
        _cleanup_free_ char *p = doctor_path(d, "/etc/resolv.conf");
        char target[512];
        ssize_t n = p ? readlink(p, target, sizeof(target) - 1) : -1;
        _cleanup_free_ char *text = NULL;
        _cleanup_strv_free_ char **ns = NULL, **search = NULL;
        target[n > 0 ? n : 0] = 0;
        if (doctor_read(d, "/etc/resolv.conf", 1 << 20, &text, NULL) < 0 ||
            doctor_resolv_conf_parse(text, &ns, &search) < 0) {
                doctor_report(d, "DN01", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no /etc/resolv.conf%s", d->root ? " below --root" : "");
                return;
        }
        const char *mode = strstr(target, "systemd/resolve") ? "systemd-resolved"
                : strstr(text, "tailscale")                  ? "tailscaled (direct)"
                : strstr(target, "resolvconf")               ? "resolvconf"
                                                             : "a plain file";
        _cleanup_free_ char *list = strv_join(ns, " ");
        _cleanup_free_ char *ev = strdup_printf("/etc/resolv.conf%s%s: nameserver %s",
                                                *target ? " -> " : "", target, list ?: "");
        doctor_report(d, "DN01", AREA, DOCTOR_INFO, ev, NULL, "/etc/resolv.conf is managed by %s",
                      mode);
}

static void check_dn02_dn03(Doctor *d) {
        _cleanup_free_ char *path = kubelet_resolv_conf(d), *text = NULL;
        _cleanup_strv_free_ char **ns = NULL, **search = NULL;
        if (!path || doctor_read(d, path, 1 << 20, &text, NULL) < 0 ||
            doctor_resolv_conf_parse(text, &ns, &search) < 0) {
                doctor_report(d, "DN02", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: cannot read the kubelet's resolv.conf %s", path ?: "?");
                return;
        }
        const char *fix = "point the kubelet at a resolv.conf with the LAN resolvers: "
                          "k0s.args: [--kubelet-extra-args=--resolv-conf=/etc/k0s/resolv.conf] "
                          "(or tailscale set --accept-dns=false)";
        bool bad = false;
        for (size_t i = 0; ns[i]; i++)
                if (doctor_nameserver_is_bad(ns[i])) {
                        _cleanup_free_ char *ev = strdup_printf("%s: nameserver %s", path, ns[i]);
                        doctor_report(d, "DN02", AREA, DOCTOR_ERROR, ev, fix,
                                      "the kubelet's resolv.conf names %s: pods cannot use it "
                                      "(CoreDNS loops or MagicDNS is host-only)",
                                      ns[i]);
                        bad = true;
                }
        if (!bad)
                doctor_report(d, "DN02", AREA, DOCTOR_OK, path, NULL,
                              "the kubelet's resolv.conf names no loopback or 100.100.100.100");
        const char *suffix = d->tn ? d->tn->magic_dns_suffix : NULL;
        for (size_t i = 0; search[i]; i++) {
                const char *s = search[i];
                size_t l = strlen(s);
                bool ts = (suffix && !isempty(suffix) && streq(s, suffix)) ||
                        (l >= 7 && streq(s + l - 7, ".ts.net")) ||
                        (l >= 8 && streq(s + l - 8, ".ts.net."));
                if (!ts)
                        continue;
                _cleanup_free_ char *ev = strdup_printf("%s: search %s", path, s);
                doctor_report(d, "DN03", AREA, DOCTOR_WARNING, ev, fix,
                              "the tailnet suffix %s is in the kubelet's search list", s);
                return;
        }
        doctor_report(d, "DN03", AREA, DOCTOR_OK, path, NULL,
                      "no tailnet suffix in the kubelet's search list");
}

static bool is_ip(const char *h) {
        unsigned char b[16];
        return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

/* true when the registry can be reached without a name lookup. */
static bool registry_needs_dns(const Registry *r, char ***hosts) {
        for (size_t j = 0; j < r->n_endpoints; j++) {
                _cleanup_free_ char *h = NULL;
                unsigned port;
                if (!r->endpoints[j].url)
                        return false; /* peer: the agent resolves it through LocalAPI */
                if (doctor_url_host_port(r->endpoints[j].url, &h, &port) < 0)
                        continue;
                if (is_ip(h))
                        return false;
                (void) strv_extend(hosts, h);
        }
        return true;
}

static void check_dn06(Doctor *d) {
        struct gaicb req[64], *list[64];
        const char *reg[64];
        size_t n = 0;
        _cleanup_strv_free_ char **hosts = calloc(1, sizeof(char *));
        for (size_t i = 0; hosts && i < d->cfg->n_registries; i++) {
                const Registry *r = &d->cfg->registries[i];
                size_t before = strv_length(hosts);
                if (!registry_needs_dns(r, &hosts)) {
                        doctor_report(d, "DN06", AREA, DOCTOR_OK, r->name, NULL,
                                      "registry %s has an IP or peer: endpoint", r->name);
                        continue;
                }
                for (size_t k = before; hosts[k] && n < ELEMENTSOF(req); k++, n++) {
                        req[n] = (struct gaicb){ .ar_name = hosts[k] };
                        list[n] = &req[n];
                        reg[n] = r->name;
                }
        }
        if (n == 0)
                return;
        struct timespec ts = { .tv_sec = RESOLVE_TIMEOUT_SEC };
        if (getaddrinfo_a(GAI_NOWAIT, list, (int) n, NULL) == 0)
                while (gai_suspend((const struct gaicb *const *) list, (int) n, &ts) == 0) {
                        size_t left = 0;
                        for (size_t i = 0; i < n; i++)
                                left += gai_error(&req[i]) == EAI_INPROGRESS;
                        if (left == 0)
                                break;
                }
        for (size_t i = 0; i < n; i++) {
                int e = gai_error(&req[i]);
                if (e == EAI_INPROGRESS)
                        (void) gai_cancel(&req[i]);
                _cleanup_free_ char *ev =
                        strdup_printf("getaddrinfo(%s): %s", req[i].ar_name,
                                      e == 0                        ? "resolves"
                                              : e == EAI_INPROGRESS ? "timeout"
                                                                    : gai_strerror(e));
                if (e == 0)
                        doctor_report(d, "DN06", AREA, DOCTOR_OK, ev, NULL, "%s resolves",
                                      req[i].ar_name);
                else
                        doctor_report(d, "DN06", AREA, DOCTOR_ERROR, ev,
                                      "give the registry an IP or peer: endpoint in the agent's "
                                      "config (MagicDNS names do not resolve in containerd "
                                      "before tailscaled is up, nor without --accept-dns)",
                                      "registry %s: host %s does not resolve", reg[i],
                                      req[i].ar_name);
                if (e == 0 && req[i].ar_result)
                        freeaddrinfo(req[i].ar_result);
        }
}

void doctor_checks_dns(Doctor *d) {
        check_dn01(d);
        check_dn02_dn03(d);
        check_dn06(d);
}
