/* SPDX-License-Identifier: MIT */
/*
 * doctor's CNI checks from the k0s config and the live links: NW01 (provider and Calico
 * autodetection), NW03 (Calico MTU vs tailscale0 minus the encapsulation, configured and on
 * vxlan.calico/tunl0/cali*), NW07 (Felix iptables and nftables mark masks vs 0xff0000). The live
 * netfilter rules are doctor-checks-firewall.c's.
 */

#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor-rules.h"
#include "doctor.h"
#include "util.h"

#define AREA "cni"
/* k0s pkg/apis/k0s/v1beta1/calico.go DefaultCalico: Felix's default masks are 0xffff0000
 * (felix/config/config_params.go). */
#define K0S_CALICO_DEFAULT_MTU 1450u
#define FELIX_DEFAULT_MASK "0xffff0000"
#define FIX_RESTART_HINT \
        "spec.network.calico.ipAutodetectionMethod: interface=tailscale0 (the agent renders it " \
        "into k0s.calico.ipAutodetectionMethod); restart every controller"

typedef struct CniView {
        yaml_document_t base, gen;
        bool have_base, have_gen;
        const char *provider; /* from the generated config, else the base config; NULL = unset */
} CniView;

static void cni_view_load(Doctor *d, CniView *v) {
        _cleanup_free_ char *base = NULL, *gen = NULL;
        size_t bl, gl;
        *v = (CniView){};
        if (doctor_read(d, d->cfg->k0s_base_config, 4u << 20, &base, &bl) >= 0)
                v->have_base = doctor_yaml_load(base, bl, &v->base) >= 0;
        if (k0s_role_is_controller(d->cfg->role) &&
            doctor_read(d, d->cfg->k0s_config, 4u << 20, &gen, &gl) >= 0)
                v->have_gen = doctor_yaml_load(gen, gl, &v->gen) >= 0;
        const char *key = "spec.network.provider";
        v->provider = v->have_gen ? doctor_yaml_scalar(doctor_yaml_get(&v->gen, key)) : NULL;
        if (!v->provider && v->have_base)
                v->provider = doctor_yaml_scalar(doctor_yaml_get(&v->base, key));
}

static void cni_view_done(CniView *v) {
        if (v->have_base)
                yaml_document_delete(&v->base);
        if (v->have_gen)
                yaml_document_delete(&v->gen);
}

static void check_nw01_autodetect(Doctor *d, CniView *v) {
        const char *key = "spec.network.calico.ipAutodetectionMethod";
        yaml_node_t *n = doctor_yaml_get(&v->gen, key);
        const char *m = doctor_yaml_scalar(n);
        _cleanup_free_ char *want = strdup_printf("interface=%s", d->cfg->interface);
        _cleanup_free_ char *ev = strdup_printf("%s:%u: %s: %s", d->cfg->k0s_config,
                                                doctor_yaml_line(n), key, m ?: "(unset)");
        if (streq_ptr(m, want) || streq_ptr(m, "kubernetes-internal-ip"))
                doctor_report(d, "NW01", AREA, DOCTOR_OK, ev, NULL,
                              "Calico autodetects the address with %s", m);
        else
                doctor_report(d, "NW01", AREA, DOCTOR_ERROR, ev, FIX_RESTART_HINT,
                              "Calico autodetection is %s: calico-node may pick the LAN or "
                              "wait for an address",
                              m ?: "first-found (k0s default)");
}

static void check_nw01(Doctor *d, CniView *v) {
        const char *key = "spec.network.provider";
        if (!v->have_base && !v->have_gen) {
                doctor_report(d, "NW01", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no k0s config (%s)",
                              k0s_role_is_controller(d->cfg->role)
                                      ? "neither base nor generated file"
                                      : "workers take the CNI from the controllers");
                return;
        }
        yaml_node_t *bn = v->have_base ? doctor_yaml_get(&v->base, key) : NULL;
        const char *bp = doctor_yaml_scalar(bn);
        _cleanup_free_ char *ev = strdup_printf("%s:%u: %s: %s", d->cfg->k0s_base_config,
                                                doctor_yaml_line(bn), key, bp ?: "(unset)");
        if (v->have_base && streq_ptr(bp, "kuberouter")) {
                doctor_report(d, "NW01", AREA, DOCTOR_WARNING, ev,
                              "use provider: calico on a new cluster (the provider cannot change "
                              "after install); with kube-router, every node's --node-ip must be "
                              "its tailnet address",
                              "CNI provider is kube-router: it has no interface selector and "
                              "follows the Node InternalIP; its 0x10000 mark is inside "
                              "tailscale's 0xff0000");
                return;
        }
        if (v->have_base && !bp) {
                doctor_report(d, "NW01", AREA, DOCTOR_WARNING, ev,
                              "write spec.network.provider: calico into the base config (before "
                              "the cluster is created: it cannot change after install)",
                              "base config names no CNI provider: k0s's default is kube-router");
                return;
        }
        if (v->have_gen && streq_ptr(v->provider, "calico"))
                check_nw01_autodetect(d, v);
        else
                doctor_report(d, "NW01", AREA, DOCTOR_OK, ev, NULL, "CNI provider %s%s",
                              v->provider ?: "?",
                              v->have_gen ? "" : "; the agent renders the autodetection");
}

/* The Calico MTU in effect and where it was read. */
static unsigned configured_mtu(Doctor *d, CniView *v, char **ret_where, bool *ret_inert) {
        const char *key = "spec.network.calico.mtu";
        yaml_document_t *docs[] = { v->have_gen ? &v->gen : NULL, v->have_base ? &v->base : NULL };
        const char *paths[] = { d->cfg->k0s_config, d->cfg->k0s_base_config };
        *ret_inert = !k0s_role_is_controller(d->cfg->role);
        if (d->cfg->calico_mtu > 0) {
                *ret_where = strdup_printf("%s: calico.mtu: %u", d->cfg->path ?: "agent config",
                                           d->cfg->calico_mtu);
                return d->cfg->calico_mtu;
        }
        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                yaml_node_t *n = docs[i] ? doctor_yaml_get(docs[i], key) : NULL;
                unsigned mtu;
                if (n && safe_atou(doctor_yaml_scalar(n) ?: "", &mtu) >= 0) {
                        *ret_where = strdup_printf("%s:%u: %s: %u", paths[i], doctor_yaml_line(n),
                                                   key, mtu);
                        *ret_inert = false;
                        return mtu;
                }
        }
        *ret_where = strdup_printf("%s unset: k0s's default %u", key, K0S_CALICO_DEFAULT_MTU);
        return K0S_CALICO_DEFAULT_MTU;
}

static void check_nw03_links(Doctor *d, unsigned ts_mtu, int overhead) {
        struct if_nameindex *ifs = if_nameindex();
        for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
                int ov = streq(i->if_name, "vxlan.calico") ? 50
                        : streq(i->if_name, "tunl0")       ? 20
                        : startswith(i->if_name, "cali")   ? overhead
                                                           : -1;
                unsigned mtu = ov >= 0 ? doctor_link_mtu(i->if_name) : 0;
                if (ov < 0 || mtu == 0 || mtu <= ts_mtu - (unsigned) ov)
                        continue;
                _cleanup_free_ char *ev = strdup_printf("%s mtu %u; %s mtu %u - %d", i->if_name,
                                                        mtu, d->cfg->interface, ts_mtu, ov);
                doctor_report(d, "NW03", AREA, DOCTOR_ERROR, ev,
                              "set calico.mtu in the agent's config (or spec.network.calico.mtu) "
                              "and restart the controllers, then calico-node",
                              "%s has MTU %u, above the %u that fits in %s", i->if_name, mtu,
                              ts_mtu - (unsigned) ov, d->cfg->interface);
        }
        if (ifs)
                if_freenameindex(ifs);
}

static void check_nw03(Doctor *d, CniView *v) {
        unsigned ts_mtu = d->link.mtu ?: 1280;
        const char *mode = NULL;
        if (streq_ptr(v->provider, "kuberouter") || streq_ptr(v->provider, "custom")) {
                doctor_report(d, "NW03", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: provider %s (no Calico MTU)", v->provider);
                return;
        }
        if (v->have_gen || v->have_base)
                mode = doctor_yaml_scalar(doctor_yaml_get(v->have_gen ? &v->gen : &v->base,
                                                          "spec.network.calico.mode"));
        int overhead = doctor_calico_overhead(mode);
        if (overhead < 0)
                overhead = 50;
        _cleanup_free_ char *where = NULL;
        bool inert;
        unsigned mtu = configured_mtu(d, v, &where, &inert);
        unsigned max = ts_mtu > (unsigned) overhead ? ts_mtu - (unsigned) overhead : 0;
        _cleanup_free_ char *ev =
                strdup_printf("%s; %s mtu %u, Calico mode %s adds %d", where, d->cfg->interface,
                              ts_mtu, mode ?: "vxlan", overhead);
        _cleanup_free_ char *fix = strdup_printf("calico.mtu: %u in the agent's config (or "
                                                 "spec.network.calico.mtu), then restart the "
                                                 "controllers",
                                                 max);
        if (mtu > max)
                doctor_report(d, "NW03", AREA, inert ? DOCTOR_WARNING : DOCTOR_ERROR, ev, fix,
                              "Calico MTU %u is above %u (%s MTU %u minus %d): pod traffic "
                              "fragments or stalls",
                              mtu, max, d->cfg->interface, ts_mtu, overhead);
        else
                doctor_report(d, "NW03", AREA, DOCTOR_OK, ev, NULL,
                              "Calico MTU %u fits in %s (at most %u)", mtu, d->cfg->interface, max);
        check_nw03_links(d, ts_mtu, overhead);
}

static void nw07_one(Doctor *d, const char *what, const char *value, const char *where,
                     DoctorSeverity unset_sev) {
        uint32_t m;
        _cleanup_free_ char *ev = strdup_printf("%s: %s=%s", where, what, value ?: "(unset)");
        if (!value) {
                doctor_report(d, "NW07", AREA, unset_sev, ev,
                              "set calico.iptables_mark_mask and calico.nftables_mark_mask to "
                              "0xff000000 in the agent's config",
                              "%s is unset: Felix uses %s, which covers tailscale's 0xff0000", what,
                              FELIX_DEFAULT_MASK);
                return;
        }
        if (doctor_parse_mark(value, &m) < 0 || (m & 0xff0000))
                doctor_report(d, "NW07", AREA, DOCTOR_ERROR, ev,
                              "use 0xff000000 (no bit of 0xff0000)",
                              "%s %s overlaps tailscale's fwmark byte 0xff0000", what, value);
        else
                doctor_report(d, "NW07", AREA, DOCTOR_OK, ev, NULL,
                              "%s %s leaves 0xff0000 to "
                              "tailscale",
                              what, value);
}

static void check_nw07(Doctor *d, CniView *v) {
        const char *path = d->cfg->path ?: "agent config";
        if (streq_ptr(v->provider, "kuberouter") || streq_ptr(v->provider, "custom")) {
                doctor_report(d, "NW07", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: provider %s (no Felix)", v->provider);
                return;
        }
        nw07_one(d, "calico.iptables_mark_mask", d->cfg->calico_mark_mask, path, DOCTOR_ERROR);
        nw07_one(d, "calico.nftables_mark_mask", d->cfg->calico_nftables_mark_mask, path,
                 DOCTOR_ERROR);
        if (!v->have_gen)
                return;
        const char *ipt = doctor_yaml_scalar(
                doctor_yaml_get(&v->gen, "spec.network.calico.envVars.FELIX_IPTABLESMARKMASK"));
        const char *nft = doctor_yaml_scalar(
                doctor_yaml_get(&v->gen, "spec.network.calico.envVars.FELIX_NFTABLESMARKMASK"));
        nw07_one(d, "FELIX_IPTABLESMARKMASK", ipt, d->cfg->k0s_config, DOCTOR_ERROR);
        nw07_one(d, "FELIX_NFTABLESMARKMASK", nft, d->cfg->k0s_config, DOCTOR_WARNING);
}

void doctor_checks_cni(Doctor *d) {
        CniView v;
        cni_view_load(d, &v);
        check_nw01(d, &v);
        check_nw03(d, &v);
        check_nw07(d, &v);
        cni_view_done(&v);
}
