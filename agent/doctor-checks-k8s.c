/* SPDX-License-Identifier: MIT */
/*
 * doctor's Kubernetes-API checks through the node's own `k0s kubectl` / `k0s etcd member-list`
 * (run in parallel, 5 s): ID02 (Node InternalIPs), ID04 (default/kubernetes Endpoints), NW06
 * (calico-node restarts), DN04 (CoreDNS CrashLoop), HA01 (controller count), HA02 (etcd peer
 * URLs). Skipped with the reason unless k0s runs here as a controller on the live system.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "doctor.h"
#include "util.h"

#define API_TIMEOUT_USEC (5 * USEC_PER_SEC)
static const char *const ids[] = { "ID02", "ID04", "NW06", "DN04", "HA01", "HA02" };
static const char *const areas[] = { "identity", "identity",      "cni",
                                     "dns",      "control-plane", "control-plane" };

static void skip_all(Doctor *d, const char *why) {
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                doctor_report(d, ids[i], areas[i], DOCTOR_SKIPPED, NULL, NULL, "skipped: %s", why);
}

static const cJSON *jpath(const cJSON *o, const char *a, const char *b) {
        o = cJSON_GetObjectItemCaseSensitive(o, a);
        return b ? cJSON_GetObjectItemCaseSensitive(o, b) : o;
}

static void check_id02_ha01(Doctor *d, const cJSON *nodes) {
        const cJSON *n, *a;
        _cleanup_strv_free_ char **seen = calloc(1, sizeof(char *));
        size_t bad = 0, cp = 0;
        StrBuf ev = {};
        cJSON_ArrayForEach(n, jpath(nodes, "items", NULL)) {
                const cJSON *name = jpath(jpath(n, "metadata", NULL), "name", NULL);
                const cJSON *labels = jpath(n, "metadata", "labels");
                cp += cJSON_GetObjectItemCaseSensitive(
                              labels, "node-role.kubernetes.io/control-plane") != NULL;
                cJSON_ArrayForEach(a, jpath(n, "status", "addresses")) {
                        const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "type");
                        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "address");
                        if (!cJSON_IsString(t) || !streq(t->valuestring, "InternalIP") ||
                            !cJSON_IsString(v))
                                continue;
                        bool dup = seen && strv_contains(seen, v->valuestring);
                        if (seen)
                                (void) strv_extend(&seen, v->valuestring);
                        if (dup ||
                            (!strchr(v->valuestring, ':') &&
                             !address_is_tailnet_ipv4(v->valuestring))) {
                                bad++;
                                (void) strbuf_append(&ev, ev.s ? "; " : "");
                                (void) strbuf_append(
                                        &ev, cJSON_IsString(name) ? name->valuestring : "?");
                                (void) strbuf_append(&ev, dup ? " duplicate " : " InternalIP ");
                                (void) strbuf_append(&ev, v->valuestring);
                        }
                }
        }
        doctor_report(d, "ID02", "identity", bad ? DOCTOR_ERROR : DOCTOR_OK,
                      ev.s
                              ?: "k0s kubectl "
                                 "get nodes",
                      "re-pin --node-ip on those nodes (run the agent there)",
                      bad ? "%zu Node address(es) are not unique tailnet addresses"
                          : "every Node InternalIP is a tailnet address%.0zu",
                      bad);
        strbuf_done(&ev);
        _cleanup_free_ char *ev2 = strdup_printf("%zu node(s) labelled control-plane", cp);
        doctor_report(d, "HA01", "control-plane", DOCTOR_INFO, ev2, NULL,
                      "%zu control-plane node(s) registered (controllers without a worker are "
                      "not Nodes)",
                      cp);
}

static void check_id04(Doctor *d, const cJSON *ep) {
        const cJSON *s, *a;
        StrBuf bad = {};
        cJSON_ArrayForEach(s, jpath(ep, "subsets", NULL))
                cJSON_ArrayForEach(a, jpath(s, "addresses", NULL)) {
                const cJSON *ip = cJSON_GetObjectItemCaseSensitive(a, "ip");
                if (cJSON_IsString(ip) && !address_is_tailnet_ipv4(ip->valuestring)) {
                        (void) strbuf_append(&bad, bad.s ? " " : "");
                        (void) strbuf_append(&bad, ip->valuestring);
                }
        }
        doctor_report(d, "ID04", "identity", bad.s ? DOCTOR_ERROR : DOCTOR_OK,
                      bad.s ?: "default/kubernetes Endpoints",
                      "spec.api.address on every controller must be its tailnet address "
                      "(the agent renders it); restart those controllers",
                      bad.s ? "default/kubernetes Endpoints hold non-tailnet addresses"
                            : "default/kubernetes Endpoints are all tailnet addresses");
        strbuf_done(&bad);
}

static void check_pods(Doctor *d, const cJSON *pods) {
        const cJSON *p, *c;
        int calico_restarts = 0;
        bool dns_crash = false;
        cJSON_ArrayForEach(p, jpath(pods, "items", NULL)) {
                const cJSON *name = jpath(p, "metadata", "name");
                bool calico = cJSON_IsString(name) && startswith(name->valuestring, "calico-node");
                bool coredns = cJSON_IsString(name) && startswith(name->valuestring, "coredns");
                cJSON_ArrayForEach(c, jpath(p, "status", "containerStatuses")) {
                        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(c, "restartCount");
                        const cJSON *w = jpath(jpath(c, "state", "waiting"), "reason", NULL);
                        if (calico && cJSON_IsNumber(rc))
                                calico_restarts += (int) rc->valuedouble;
                        if (coredns && cJSON_IsString(w) &&
                            streq(w->valuestring, "CrashLoopBackOff"))
                                dns_crash = true;
                }
        }
        _cleanup_free_ char *ev = strdup_printf("calico-node restarts: %d", calico_restarts);
        doctor_report(d, "NW06", "cni", calico_restarts > 5 ? DOCTOR_WARNING : DOCTOR_OK, ev,
                      "k0s kubectl -n kube-system logs ds/calico-node (autodetection, MTU)",
                      "calico-node restarted %d time(s)", calico_restarts);
        doctor_report(d, "DN04", "dns", dns_crash ? DOCTOR_ERROR : DOCTOR_OK, "coredns pods",
                      "check the kubelet resolv.conf (DN02): CoreDNS's loop plugin stops on a "
                      "loopback upstream",
                      dns_crash ? "CoreDNS is in CrashLoopBackOff"
                                : "CoreDNS is not crash-looping");
}

static void check_ha02(Doctor *d, const cJSON *members) {
        const cJSON *m;
        StrBuf bad = {};
        size_t n = 0;
        cJSON_ArrayForEach(m, jpath(members, "members", NULL)) {
                n++;
                if (cJSON_IsString(m) && !strstr(m->valuestring, "://100.")) {
                        (void) strbuf_append(&bad, bad.s ? " " : "");
                        (void) strbuf_append(&bad, m->valuestring);
                }
        }
        _cleanup_free_ char *ev = strdup_printf("k0s etcd member-list: %zu member(s)%s%s", n,
                                                bad.s ? "; not on the tailnet: " : "", bad.s ?: "");
        doctor_report(d, "HA02", "control-plane", bad.s || n % 2 == 0 ? DOCTOR_WARNING : DOCTOR_OK,
                      ev,
                      "k0s etcd leave / re-join the member with its tailnet peerAddress; run "
                      "an odd number of controllers",
                      bad.s ? "etcd members with peer URLs off the tailnet"
                            : "%zu etcd member(s) on the tailnet",
                      n);
        strbuf_done(&bad);
}

void doctor_checks_k8s(Doctor *d) {
        char *k = d->cfg->k0s_binary;
        if (!doctor_is_live(d))
                return skip_all(d, "--root is not the live system");
        if (!k0s_role_is_controller(d->cfg->role))
                return skip_all(d, "not a controller (the API is read through the local k0s)");
        if (!d->k0s_pid)
                return skip_all(d, "k0s is not running here");
        char *a0[] = { k,
                       (char *) "kubectl",
                       (char *) "get",
                       (char *) "nodes",
                       (char *) "-o",
                       (char *) "json",
                       NULL };
        char *a1[] = { k,
                       (char *) "kubectl",
                       (char *) "-n",
                       (char *) "default",
                       (char *) "get",
                       (char *) "endpoints",
                       (char *) "kubernetes",
                       (char *) "-o",
                       (char *) "json",
                       NULL };
        char *a2[] = { k,
                       (char *) "kubectl",
                       (char *) "-n",
                       (char *) "kube-system",
                       (char *) "get",
                       (char *) "pods",
                       (char *) "-o",
                       (char *) "json",
                       NULL };
        char *a3[] = { k, (char *) "etcd", (char *) "member-list", NULL };
        char *const *argvs[] = { a0, a1, a2, a3 };
        char *out[4];
        int st[4];
        doctor_run_many(argvs, 4, API_TIMEOUT_USEC, 64u << 20, out, st);
        cJSON *j[4];
        for (size_t i = 0; i < 4; i++) {
                j[i] = out[i] && st[i] == 0 ? cJSON_Parse(out[i]) : NULL;
                free(out[i]);
        }
        if (j[0])
                check_id02_ha01(d, j[0]);
        if (j[1])
                check_id04(d, j[1]);
        if (j[2])
                check_pods(d, j[2]);
        if (j[3])
                check_ha02(d, j[3]);
        if (!j[0] || !j[1] || !j[2] || !j[3]) {
                static const char *const which[] = { "ID02", "ID04", "NW06", "HA02" };
                for (size_t i = 0; i < 4; i++)
                        if (!j[i])
                                doctor_report(d, which[i], "control-plane", DOCTOR_SKIPPED, NULL,
                                              NULL, "skipped: k0s %s failed or timed out",
                                              i == 3 ? "etcd member-list" : "kubectl");
        }
        for (size_t i = 0; i < 4; i++)
                cJSON_Delete(j[i]);
}
