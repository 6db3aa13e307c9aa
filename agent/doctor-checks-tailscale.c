/* SPDX-License-Identifier: MIT */
/*
 * doctor's Tailscale checks (TS01-TS05, TS07, TS08): tailscaled's unit, its LocalAPI state,
 * key expiry, tailscale0, the paths to controller peers and the endpoints it advertises. The
 * routing table checks (NW10, NW11) are in doctor-checks-routing.c.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "doctor-rules.h"
#include "doctor.h"
#include "util.h"

#define AREA "tailscale"
#define KEY_EXPIRY_WARN_USEC (14 * 24 * 3600 * USEC_PER_SEC)

static const cJSON *jget(const cJSON *o, const char *k) {
        return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *jstr(const cJSON *o, const char *k) {
        const cJSON *v = jget(o, k);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* TS01: below --root only the enablement symlink can be seen. */
static void check_ts01(Doctor *d) {
        _cleanup_free_ char *file = NULL, *active = NULL;
        if (!doctor_is_live(d)) {
                _cleanup_free_ char *w = doctor_path(
                        d, "/etc/systemd/system/multi-user.target.wants/tailscaled.service");
                struct stat st;
                if (w && lstat(w, &st) >= 0)
                        doctor_report(d, "TS01", AREA, DOCTOR_OK, w, NULL,
                                      "tailscaled.service is enabled (file below --root)");
                else
                        doctor_report(d, "TS01", AREA, DOCTOR_SKIPPED, NULL, NULL,
                                      "skipped: --root is not the live system (no D-Bus)");
                return;
        }
        int r = doctor_unit_state("tailscaled.service", &file, &active);
        if (r < 0) {
                doctor_report(d, "TS01", AREA, DOCTOR_SKIPPED, strerror(-r), NULL,
                              "skipped: no systemd D-Bus to ask about tailscaled.service");
                return;
        }
        _cleanup_free_ char *ev =
                strdup_printf("systemd: UnitFileState=%s ActiveState=%s", file, active);
        bool enabled = streq(file, "enabled") || streq(file, "static") ||
                streq(file, "enabled-runtime") || streq(file, "alias");
        if (!enabled || !streq(active, "active"))
                doctor_report(d, "TS01", AREA, DOCTOR_ERROR, ev,
                              "systemctl enable --now tailscaled",
                              "tailscaled.service is %s and %s: the node leaves the tailnet "
                              "at the next boot",
                              file, active);
        else
                doctor_report(d, "TS01", AREA, DOCTOR_OK, ev, NULL,
                              "tailscaled.service is enabled and active");
}

static void check_ts02(Doctor *d) {
        if (!d->tn) {
                _cleanup_free_ char *ev = strdup_printf("LocalAPI %s: %s", d->cfg->tailscale_socket,
                                                        d->ts_error ?: "no answer");
                doctor_report(d, "TS02", AREA, DOCTOR_ERROR, ev,
                              "systemctl start tailscaled; check tailscale.socket in the "
                              "agent's config",
                              "tailscaled's LocalAPI does not answer");
                return;
        }
        const char *st = backend_state_to_string(d->tn->backend_state);
        _cleanup_free_ char *ev = strdup_printf(
                "LocalAPI /status BackendState=%s%s%s", st,
                d->tn->auth_url && *d->tn->auth_url ? " AuthURL=" : "", d->tn->auth_url ?: "");
        if (d->tn->backend_state == BACKEND_RUNNING)
                doctor_report(d, "TS02", AREA, DOCTOR_OK, ev, NULL, "tailscaled is Running");
        else
                doctor_report(d, "TS02", AREA, DOCTOR_ERROR, ev,
                              "tailscale up --auth-key=<key> (a tagged key does not expire); "
                              "or open the AuthURL",
                              "tailscaled is %s, not Running: the node is off the tailnet", st);
}

static void check_ts03(Doctor *d) {
        const cJSON *self = jget(d->ts, "Self");
        if (!d->tn || !cJSON_IsObject(self)) {
                doctor_report(d, "TS03", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no LocalAPI status");
                return;
        }
        const char *exp = jstr(self, "KeyExpiry");
        uint64_t at = exp ? doctor_parse_rfc3339(exp) : d->tn->self_key_expiry_usec;
        const char *fix = "tag the node (tagged nodes do not expire) or disable key expiry "
                          "for it in the admin console";
        _cleanup_free_ char *ev =
                strdup_printf("LocalAPI /status Self.KeyExpiry=%s%s", exp ?: "(none)",
                              cJSON_IsTrue(jget(self, "Expired")) ? " Self.Expired=true" : "");
        if (at == 0 && !cJSON_IsTrue(jget(self, "Expired"))) {
                doctor_report(d, "TS03", AREA, DOCTOR_OK, ev, NULL,
                              "node key does not expire (tagged or expiry disabled)");
                return;
        }
        if (cJSON_IsTrue(jget(self, "Expired")) || at <= d->now_usec) {
                doctor_report(d, "TS03", AREA, DOCTOR_ERROR, ev, fix, "node key has expired");
                return;
        }
        uint64_t left = at - d->now_usec;
        unsigned days = (unsigned) (left / (24 * 3600 * USEC_PER_SEC));
        unsigned hours = (unsigned) (left / (3600 * USEC_PER_SEC) % 24);
        doctor_report(d, "TS03", AREA, left < KEY_EXPIRY_WARN_USEC ? DOCTOR_WARNING : DOCTOR_OK, ev,
                      fix, "node key expires in %ud %uh", days, hours);
}

static void check_ts04(Doctor *d) {
        const char *ifn = d->cfg->interface;
        _cleanup_free_ char *fix =
                strdup_printf("systemctl restart tailscaled; ip addr show %s", ifn);
        if (!d->link.present || !d->link.up) {
                doctor_report(d, "TS04", AREA, DOCTOR_ERROR, "netlink: link absent or down", fix,
                              "%s %s", ifn, d->link.present ? "is down" : "does not exist");
                return;
        }
        if (!d->tn || !d->tn->ipv4) {
                doctor_report(d, "TS04", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: LocalAPI names no tailnet IPv4 to look for on %s", ifn);
                return;
        }
        _cleanup_free_ char *have = strv_join(d->link.ipv4, " ");
        _cleanup_free_ char *ev = strdup_printf("%s: %s; LocalAPI TailscaleIPs: %s %s", ifn,
                                                have ?: "", d->tn->ipv4, d->tn->ipv6 ?: "");
        if (!strv_contains(d->link.ipv4, d->tn->ipv4))
                doctor_report(d, "TS04", AREA, DOCTOR_ERROR, ev, fix,
                              "%s is up but does not hold %s", ifn, d->tn->ipv4);
        else if (d->tn->ipv6 && !strv_contains(d->link.ipv6, d->tn->ipv6))
                doctor_report(d, "TS04", AREA, DOCTOR_INFO, ev, NULL,
                              "%s holds %s but not %s (tailscaled skips IPv6 when the host "
                              "cannot use it)",
                              ifn, d->tn->ipv4, d->tn->ipv6);
        else
                doctor_report(d, "TS04", AREA, DOCTOR_OK, ev, NULL, "%s is up with %s", ifn,
                              d->tn->ipv4);
}

static void check_ts05(Doctor *d) {
        if (!d->link.present) {
                doctor_report(d, "TS05", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: %s does not exist", d->cfg->interface);
                return;
        }
        _cleanup_free_ char *ev = strdup_printf("%s mtu %u", d->cfg->interface, d->link.mtu);
        doctor_report(d, "TS05", AREA, d->link.mtu == 1280 ? DOCTOR_OK : DOCTOR_INFO, ev, NULL,
                      "%s MTU is %u%s", d->cfg->interface, d->link.mtu,
                      d->link.mtu == 1280 ? "" : " (tailscale's default is 1280; TS_DEBUG_MTU?)");
}

/* The /status peer whose TailscaleIPs hold addr. */
static const cJSON *find_peer(const Doctor *d, const char *addr) {
        const cJSON *peers = jget(d->ts, "Peer"), *p, *a;
        cJSON_ArrayForEach(p, peers) {
                cJSON_ArrayForEach(
                        a, jget(p, "TailscaleIPs")) if (cJSON_IsString(a) &&
                                                        streq(a->valuestring, addr)) return p;
        }
        return NULL;
}

static void check_ts07_peer(Doctor *d, const char *addr, const char *from) {
        const cJSON *p = find_peer(d, addr);
        bool controller = k0s_role_is_controller(d->cfg->role);
        if (!p) {
                _cleanup_free_ char *ev = strdup_printf("%s (from %s) is not in LocalAPI /status "
                                                        "Peer",
                                                        addr, from);
                doctor_report(d, "TS07", AREA, DOCTOR_ERROR, ev,
                              "check the tailnet ACLs and that the controller is logged in",
                              "controller %s is not a peer of this node", addr);
                return;
        }
        const char *cur = jstr(p, "CurAddr"), *relay = jstr(p, "Relay");
        const char *hs = jstr(p, "LastHandshake");
        uint64_t hs_at = hs ? doctor_parse_rfc3339(hs) : 0;
        bool direct = !isempty(cur);
        _cleanup_free_ char *ev = strdup_printf(
                "peer %s %s: CurAddr=%s Relay=%s Online=%s Active=%s LastHandshake=%s",
                jstr(p, "HostName") ?: "?", addr, isempty(cur) ? "\"\"" : cur,
                isempty(relay) ? "\"\"" : relay, cJSON_IsTrue(jget(p, "Online")) ? "true" : "false",
                cJSON_IsTrue(jget(p, "Active")) ? "true" : "false", hs ?: "-");
        if (!direct && !cJSON_IsTrue(jget(p, "Online")) &&
            (hs_at == 0 || d->now_usec > usec_add(hs_at, 300 * USEC_PER_SEC)))
                doctor_report(d, "TS07", AREA, DOCTOR_WARNING, ev,
                              "check that the controller is powered and tailscaled runs there",
                              "controller %s: offline, no recent handshake", addr);
        else if (!direct)
                doctor_report(d, "TS07", AREA, controller ? DOCTOR_WARNING : DOCTOR_INFO, ev,
                              "open UDP 41641 between the sites (or a port forward) so the "
                              "path goes direct; etcd over DERP makes elections flap",
                              "controller %s is reached through DERP relay %s", addr,
                              isempty(relay) ? "?" : relay);
        else
                doctor_report(d, "TS07", AREA, DOCTOR_OK, ev, NULL,
                              "controller %s is reached directly (%s)", addr, cur);
}

static void check_ts07(Doctor *d) {
        if (!d->ts) {
                doctor_report(d, "TS07", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no LocalAPI status");
                return;
        }
        if (!d->controllers[0]) {
                doctor_report(d, "TS07", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no controller address known (token file, kubelet "
                              "kubeconfig, k0s config)");
                return;
        }
        for (size_t i = 0; d->controllers[i]; i++)
                check_ts07_peer(d, d->controllers[i], d->controllers_from[i]);
}

/* TS08: tailscale offering pod/service addresses as its own endpoints (tailscale#7594). */
static void check_ts08(Doctor *d) {
        const cJSON *addrs = jget(jget(d->ts, "Self"), "Addrs"), *a;
        _cleanup_strv_free_ char **bad = calloc(1, sizeof(char *));
        if (!d->ts || !bad) {
                doctor_report(d, "TS08", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no LocalAPI status");
                return;
        }
        cJSON_ArrayForEach(a, addrs) {
                char *host = NULL;
                unsigned port;
                if (!cJSON_IsString(a) || doctor_url_host_port(a->valuestring, &host, &port) < 0)
                        continue;
                if (doctor_address_in_cidr(host, d->pod_cidr) ||
                    doctor_address_in_cidr(host, d->service_cidr))
                        (void) strv_extend(&bad, a->valuestring);
                free(host);
        }
        _cleanup_free_ char *list = strv_join(bad, " ");
        _cleanup_free_ char *ev =
                strdup_printf("Self.Addrs in pod CIDR %s / service CIDR %s: %s", d->pod_cidr,
                              d->service_cidr, bad[0] ? list : "none");
        if (bad[0])
                doctor_report(d, "TS08", AREA, DOCTOR_WARNING, ev,
                              "keep tailscaled from offering CNI interfaces as endpoints "
                              "(tailscale#1552); a routing loop and CPU spikes follow",
                              "tailscaled advertises pod or service addresses as endpoints");
        else
                doctor_report(d, "TS08", AREA, DOCTOR_OK, ev, NULL,
                              "no pod or service address among tailscaled's endpoints");
}

void doctor_checks_tailscale(Doctor *d) {
        check_ts01(d);
        check_ts02(d);
        check_ts03(d);
        check_ts04(d);
        check_ts05(d);
        check_ts07(d);
        check_ts08(d);
}
