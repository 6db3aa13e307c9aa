/* SPDX-License-Identifier: MIT */
/*
 * doctor's identity and CNI checks from files and the k0s process: ID01 (--node-ip of the
 * running k0s), ID03 (controller addresses in k0s.yaml), ID08/ID09 (the join token), NW01
 * (provider, autodetection), NW03 (Calico MTU vs tailscale0), NW07 (Felix mark masks). No
 * Kubernetes API here (doctor-checks-k8s.c).
 */

#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor-rules.h"
#include "doctor.h"
#include "util.h"

#define FIX_RESTART "systemctl restart k0s-tsagent (it re-pins the address at every start)"

static char *at(const char *path, const yaml_node_t *n, const char *key, const char *value) {
        return strdup_printf("%s:%u: %s: %s", path, doctor_yaml_line(n), key, value ?: "(unset)");
}

/* The value of --node-ip inside the running k0s's --kubelet-extra-args. */
static char *running_node_ip(char **argv) {
        for (char **a = argv; a && *a; a++) {
                const char *p =
                        startswith(*a, "--kubelet-extra-args=") ? strstr(*a, "--node-ip=") : NULL;
                if (p) {
                        p += strlen("--node-ip=");
                        return strndup(p, strcspn(p, ", \t"));
                }
        }
        return NULL;
}

static void check_id01(Doctor *d) {
        const char *self = doctor_self_ipv4(d);
        if (!k0s_role_runs_kubelet(d->cfg->role)) {
                doctor_report(d, "ID01", "identity", DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: role %s runs no kubelet", k0s_role_to_string(d->cfg->role));
                return;
        }
        if (!d->k0s_pid || !d->k0s_argv) {
                doctor_report(d, "ID01", "identity", DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no running k0s known (status.json%s)",
                              doctor_is_live(d) ? ", /proc" : "");
                return;
        }
        _cleanup_free_ char *ip = running_node_ip(d->k0s_argv);
        _cleanup_free_ char *ev = strdup_printf("%s k0s pid %d: --node-ip=%s; tailnet IPv4 %s",
                                                doctor_is_live(d) ? "/proc" : "status.json",
                                                (int) d->k0s_pid, ip ?: "(none)", self ?: "?");
        if (!ip)
                doctor_report(d, "ID01", "identity", DOCTOR_ERROR, ev, FIX_RESTART,
                              "k0s runs without --node-ip: the kubelet picks the LAN address");
        else if (self && !streq(ip, self))
                doctor_report(d, "ID01", "identity", DOCTOR_ERROR, ev, FIX_RESTART,
                              "k0s runs with --node-ip=%s, the tailnet address is %s", ip, self);
        else
                doctor_report(d, "ID01", "identity", DOCTOR_OK, ev, NULL,
                              "k0s runs with --node-ip=%s", ip);
}

static void id03_one(Doctor *d, yaml_document_t *doc, const char *key, const char *self) {
        yaml_node_t *n = doctor_yaml_get(doc, key);
        const char *v = doctor_yaml_scalar(n);
        _cleanup_free_ char *ev = at(d->k0s_yaml_path, n, key, v);
        if (!streq_ptr(v, self))
                doctor_report(d, "ID03", "identity", DOCTOR_ERROR, ev, FIX_RESTART,
                              "%s is %s, not the tailnet address %s", key, v ?: "unset", self);
        else
                doctor_report(d, "ID03", "identity", DOCTOR_OK, ev, NULL, "%s is %s", key, v);
}

static void check_id03(Doctor *d) {
        const char *self = doctor_self_ipv4(d);
        yaml_document_t doc;
        if (!k0s_role_is_controller(d->cfg->role)) {
                doctor_report(d, "ID03", "identity", DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: not a controller");
                return;
        }
        if (!self || doctor_k0s_yaml(d, &doc) < 0) {
                doctor_report(d, "ID03", "identity", DOCTOR_SKIPPED, NULL, NULL, "skipped: %s",
                              self ? "no k0s config to read" : "no tailnet IPv4");
                return;
        }
        id03_one(d, &doc, "spec.api.address", self);
        const char *st = doctor_yaml_scalar(doctor_yaml_get(&doc, "spec.storage.type"));
        if (!st || streq(st, "etcd"))
                id03_one(d, &doc, "spec.storage.etcd.peerAddress", self);
        yaml_node_t *sans = doctor_yaml_get(&doc, "spec.api.sans");
        bool found = false;
        if (sans && sans->type == YAML_SEQUENCE_NODE)
                for (yaml_node_item_t *i = sans->data.sequence.items.start;
                     i < sans->data.sequence.items.top; i++)
                        found = found ||
                                streq_ptr(doctor_yaml_scalar(yaml_document_get_node(&doc, *i)),
                                          self);
        _cleanup_free_ char *ev = at(d->k0s_yaml_path, sans, "spec.api.sans", found ? self : "-");
        doctor_report(d, "ID03", "identity", found ? DOCTOR_OK : DOCTOR_ERROR, ev, FIX_RESTART,
                      "spec.api.sans %s %s", found ? "includes" : "lacks", self);
        yaml_document_delete(&doc);
}

static void check_token(Doctor *d) {
        _cleanup_free_ char *token = NULL, *url = NULL, *host = NULL;
        size_t len;
        int r = doctor_read(d, d->cfg->k0s_token_file, 1024 * 1024, &token, &len);
        bool worker = d->cfg->role == K0S_ROLE_WORKER;
        if (d->cfg->role == K0S_ROLE_SINGLE) {
                doctor_report(d, "ID08", "identity", DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: role single joins nothing");
                return;
        }
        _cleanup_free_ char *ev = strdup_printf("k0s.token_file %s: %s", d->cfg->k0s_token_file,
                                                r < 0 ? strerror(-r) : "present");
        if (r < 0) {
                doctor_report(d, "ID08", "identity", worker ? DOCTOR_ERROR : DOCTOR_INFO, ev,
                              "k0s token create --role=worker on a controller, saved to that "
                              "file (k0sctl does this on apply)",
                              worker ? "the join token file is missing: the worker cannot join"
                                     : "no join token (fine for the first controller; "
                                       "controllers 2..n need one)");
                return;
        }
        doctor_report(d, "ID08", "identity", DOCTOR_OK, ev, NULL, "join token file present");
        unsigned port;
        if (doctor_token_server(token, len, &url) < 0 ||
            doctor_url_host_port(url, &host, &port) < 0) {
                doctor_report(d, "ID09", "identity", DOCTOR_INFO, ev, NULL,
                              "the join token could not be decoded (base64 of a gzip'd "
                              "kubeconfig expected)");
                return;
        }
        _cleanup_free_ char *ev2 = strdup_printf("%s: server %s", d->cfg->k0s_token_file, url);
        bool ok = address_is_tailnet_ipv4(host) || strstr(host, ".ts.net");
        doctor_report(d, "ID09", "identity", ok ? DOCTOR_OK : DOCTOR_WARNING, ev2,
                      "set spec.api.address (or externalAddress) to the controller's tailnet "
                      "address and create a new token (k0sctl#1035)",
                      "the join token points at %s%s", host, ok ? "" : ", not a tailnet address");
}

void doctor_checks_k0s(Doctor *d) {
        check_id01(d);
        check_id03(d);
        check_token(d);
        doctor_checks_cni(d);
}
