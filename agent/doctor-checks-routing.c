/* SPDX-License-Identifier: MIT */
/*
 * doctor's policy-routing checks over netlink (libnl-route): NW10 (tailscale's ip rules
 * 5210-5270 and table 52 while it runs) and NW11 (an exit node in use needs `throw` routes for
 * the pod and service CIDRs in table 52, tailscale#14706).
 */

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor-rules.h"
#include "doctor.h"
#include "util.h"

#define AREA "routing"
#define TS_TABLE 52 /* net/routemanager: tailscaleRouteTable */
#define FIX_TS \
        "systemctl restart tailscaled (it re-adds its rules); for good: " \
        "ManageForeignRoutingPolicyRules=no and ManageForeignRoutes=no in networkd.conf"

typedef struct RouteFacts {
        bool rule[4]; /* 5210, 5230, 5250, 5270 */
        size_t n_table; /* routes in table 52 */
        char **throws; /* "10.244.0.0/16" of every throw route in table 52 */
} RouteFacts;

static void on_rule(struct nl_object *o, void *arg) {
        RouteFacts *f = arg;
        struct rtnl_rule *r = (struct rtnl_rule *) o;
        static const uint32_t prio[] = { 5210, 5230, 5250, 5270 };
        if (rtnl_rule_get_family(r) != AF_INET)
                return;
        for (size_t i = 0; i < ELEMENTSOF(prio); i++)
                if (rtnl_rule_get_prio(r) == prio[i])
                        f->rule[i] = true;
}

static void on_route(struct nl_object *o, void *arg) {
        RouteFacts *f = arg;
        struct rtnl_route *r = (struct rtnl_route *) o;
        char buf[128];
        if (rtnl_route_get_table(r) != TS_TABLE)
                return;
        f->n_table++;
        if (rtnl_route_get_type(r) == RTN_THROW && rtnl_route_get_dst(r))
                (void) strv_extend(&f->throws,
                                   nl_addr2str(rtnl_route_get_dst(r), buf, sizeof(buf)));
}

static int load(RouteFacts *f) {
        struct nl_sock *sk = nl_socket_alloc();
        struct nl_cache *rules = NULL, *routes = NULL;
        int r = -ENOMEM;
        f->throws = calloc(1, sizeof(char *));
        if (!sk || !f->throws)
                goto out;
        if (nl_connect(sk, NETLINK_ROUTE) < 0 || rtnl_rule_alloc_cache(sk, AF_INET, &rules) < 0 ||
            rtnl_route_alloc_cache(sk, AF_INET, 0, &routes) < 0) {
                r = -EIO;
                goto out;
        }
        nl_cache_foreach(rules, on_rule, f);
        nl_cache_foreach(routes, on_route, f);
        r = 0;
out:
        if (rules)
                nl_cache_free(rules);
        if (routes)
                nl_cache_free(routes);
        nl_socket_free(sk);
        return r;
}

static void check_nw10(Doctor *d, const RouteFacts *f) {
        static const char *const names[] = { "5210", "5230", "5250", "5270" };
        StrBuf missing = {};
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (!f->rule[i]) {
                        (void) strbuf_append(&missing, missing.s ? " " : "");
                        (void) strbuf_append(&missing, names[i]);
                }
        _cleanup_free_ char *ev = strdup_printf("ip rule: missing priorities [%s]; table 52: %zu "
                                                "routes",
                                                missing.s ?: "", f->n_table);
        if (missing.s || f->n_table == 0)
                doctor_report(d, "NW10", AREA, DOCTOR_ERROR, ev, FIX_TS,
                              "tailscale's policy routing is incomplete: %s%s",
                              missing.s ? "ip rules missing" : "",
                              f->n_table == 0 ? (missing.s ? ", table 52 empty" : "table 52 empty")
                                              : "");
        else
                doctor_report(d, "NW10", AREA, DOCTOR_OK, ev, NULL,
                              "ip rules 5210-5270 and table 52 (%zu routes) present", f->n_table);
        strbuf_done(&missing);
}

static void check_nw11(Doctor *d, const RouteFacts *f) {
        const cJSON *exit_node = cJSON_GetObjectItemCaseSensitive(d->ts, "ExitNodeStatus");
        if (!cJSON_IsObject(exit_node)) {
                doctor_report(d, "NW11", AREA, DOCTOR_OK, "LocalAPI /status: no ExitNodeStatus",
                              NULL, "no exit node in use");
                return;
        }
        const char *cidrs[] = { d->pod_cidr, d->service_cidr };
        for (size_t i = 0; i < ELEMENTSOF(cidrs); i++) {
                bool ok = strv_contains(f->throws, cidrs[i]);
                _cleanup_free_ char *list = strv_join(f->throws, " ");
                _cleanup_free_ char *ev = strdup_printf("exit node in use; table 52 throw "
                                                        "routes: %s",
                                                        list && *list ? list : "none");
                _cleanup_free_ char *fix = strdup_printf("ip route add throw %s table 52 (and "
                                                         "keep it), or stop using an exit node "
                                                         "on cluster nodes",
                                                         cidrs[i]);
                doctor_report(d, "NW11", AREA, ok ? DOCTOR_OK : DOCTOR_ERROR, ev, fix,
                              "%s %s a throw route in table 52", cidrs[i], ok ? "has" : "lacks");
        }
}

void doctor_checks_routing(Doctor *d) {
        RouteFacts f = {};
        if (!doctor_wants(d, "NW10") && !doctor_wants(d, "NW11"))
                return;
        if (!d->tn || d->tn->backend_state != BACKEND_RUNNING) {
                doctor_report(d, "NW10", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: tailscaled is not Running");
                doctor_report(d, "NW11", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: tailscaled is not Running");
                return;
        }
        if (load(&f) < 0) {
                doctor_report(d, "NW10", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: cannot dump rules/routes over netlink");
        } else {
                check_nw10(d, &f);
                check_nw11(d, &f);
        }
        strv_free(f.throws);
}
