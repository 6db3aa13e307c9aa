/* SPDX-License-Identifier: MIT */
/* Table tests of the pure reconcile(): gate, files, k0s argv/env/hash, endpoint order. */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "config.h"
#include "reconcile.h"

static AgentConfig *cfg;
static NetState net;
static TailnetStatus ts;
static K0sVersion v135, v136;
static char *no_health[] = { NULL };

static void setup(void) {
        ck_assert_int_eq(config_new_default(&cfg), 0);
        free(cfg->k0s_binary);
        cfg->k0s_binary = strdup("/usr/local/bin/k0s");
        memset(&net, 0, sizeof(net));
        net.present = net.up = net.admin_up = net.lower_up = true;
        net.ifindex = 7;
        strcpy(net.ipv4[0], "100.64.0.10");
        net.n_ipv4 = 1;
        memset(&ts, 0, sizeof(ts));
        ts.backend_state = BACKEND_RUNNING;
        ts.self_online = true;
        ts.tun = true;
        ts.ipv4 = (char *) "100.64.0.10";
        ts.dns_name = (char *) "node1.tail1234.ts.net";
        ts.health = no_health;
        ck_assert_int_eq(k0s_version_parse("v1.35.7+k0s.0", &v135), 0);
        ck_assert_int_eq(k0s_version_parse("v1.36.1+k0s.0", &v136), 0);
}

static void teardown(void) {
        cfg = config_free(cfg);
}

static void add_registry(const char *name, const char *url1, const char *url2) {
        Registry *r = realloc(cfg->registries, sizeof(Registry) * (cfg->n_registries + 1));
        ck_assert_ptr_nonnull(r);
        cfg->registries = r;
        r = &cfg->registries[cfg->n_registries++];
        memset(r, 0, sizeof(*r));
        r->name = strdup(name);
        r->n_endpoints = url2 ? 2 : 1;
        r->endpoints = calloc(r->n_endpoints, sizeof(RegistryEndpoint));
        r->endpoints[0].url = strdup(url1);
        if (url2)
                r->endpoints[1].url = strdup(url2);
}

static Plan *run(const NetState *n, const TailnetStatus *t, const K0sVersion *v) {
        NodeFacts f = { .net = n,
                        .tailnet = t,
                        .k0s_version = v,
                        .tailnet_error = "connect: No such file or directory" };
        Plan *p = NULL;
        ck_assert_int_eq(reconcile(cfg, &f, &p), 0);
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_nonnull(p->status);
        return p;
}

static void assert_waiting(Plan *p, const char *what) {
        ck_assert(!p->gate_open);
        ck_assert_int_eq(p->k0s, PLAN_K0S_WAIT);
        ck_assert_ptr_null(p->address);
        ck_assert_ptr_nonnull(p->waiting_for);
        if (!strstr(p->waiting_for, what))
                ck_abort_msg("waiting_for '%s' does not contain '%s'", p->waiting_for, what);
        ck_assert(strncmp(p->status, "Waiting for ", 12) == 0);
}

static const char *argv_join(Plan *p) {
        static char buf[4096];
        char *s = strv_join(p->spec.argv, " ");
        ck_assert_ptr_nonnull(s);
        snprintf(buf, sizeof(buf), "%s", s);
        free(s);
        return buf;
}

START_TEST(test_gate_steps) {
        Plan *p;
        NetState n = net;

        p = run(NULL, &ts, &v135);
        assert_waiting(p, "tailscale0 to appear");
        plan_free(p);

        n.present = false;
        p = run(&n, &ts, &v135);
        assert_waiting(p, "tailscale0 to appear");
        plan_free(p);

        n = net;
        n.up = false;
        p = run(&n, &ts, &v135);
        assert_waiting(p, "to come up");
        plan_free(p);

        n = net;
        n.n_ipv4 = 1;
        strcpy(n.ipv4[0], "192.168.1.5"); /* a LAN address is never the tailnet */
        p = run(&n, &ts, &v135);
        assert_waiting(p, "tailnet IPv4 address");
        plan_free(p);

        p = run(&net, NULL, &v135);
        assert_waiting(p, "LocalAPI: connect: No such file or directory");
        plan_free(p);

        TailnetStatus t = ts;
        t.backend_state = BACKEND_NEEDS_LOGIN;
        p = run(&net, &t, &v135);
        assert_waiting(p, "BackendState NeedsLogin");
        plan_free(p);

        t = ts;
        t.self_online = false;
        p = run(&net, &t, &v135);
        assert_waiting(p, "Self.Online");
        plan_free(p);

        t = ts;
        t.ipv4 = (char *) "100.64.0.11"; /* tailscaled moved on, the link has the old one */
        p = run(&net, &t, &v135);
        assert_waiting(p, "tailscale0 to get 100.64.0.11");
        plan_free(p);

        p = run(&net, &ts, NULL);
        assert_waiting(p, "k0s version");
        ck_assert_uint_eq(p->n_files, 0);
        plan_free(p);
}
END_TEST

START_TEST(test_worker_run) {
        add_registry("registry.example.ts.net:5000", "http://registry.example.ts.net:5000", NULL);
        Plan *p = run(&net, &ts, &v135);
        ck_assert(p->gate_open);
        ck_assert_int_eq(p->k0s, PLAN_K0S_RUN);
        ck_assert_str_eq(p->address, "100.64.0.10");
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s worker --token-file=/etc/k0s/k0stoken "
                         "--kubelet-extra-args=--node-ip=100.64.0.10");
        ck_assert_uint_eq(p->n_files, 2);
        ck_assert_str_eq(p->files[0].path,
                         "/etc/containerd/certs.d/registry.example.ts.net:5000/hosts.toml");
        ck_assert_str_eq(p->files[1].path, "/etc/k0s/containerd.d/registry.toml");
        ck_assert(strstr(p->files[1].contents, "version = 2\n"));
        ck_assert(strstr(p->files[1].contents, "io.containerd.grpc.v1.cri"));
        ck_assert_str_eq(p->registry_dirs[0],
                         "/etc/containerd/certs.d/registry.example.ts.net:5000");
        ck_assert_ptr_nonnull(p->spec.hash);
        ck_assert(strstr(p->status, "100.64.0.10"));
        plan_free(p);

        p = run(&net, &ts, &v136);
        ck_assert(strstr(p->files[1].contents, "version = 3\n"));
        ck_assert(strstr(p->files[1].contents, "io.containerd.cri.v1.images"));
        ck_assert(!strstr(p->files[1].contents, "grpc.v1.cri"));
        plan_free(p);
}
END_TEST

START_TEST(test_files_before_gate) {
        /* Registry files do not wait for the tailnet: they are in place before k0s starts. */
        add_registry("r.example:5000", "http://100.64.0.99:5000", NULL);
        Plan *p = run(NULL, NULL, &v135);
        assert_waiting(p, "appear");
        ck_assert_uint_eq(p->n_files, 2);
        plan_free(p);
}
END_TEST

START_TEST(test_no_registries_no_files) {
        Plan *p = run(&net, &ts, &v135);
        ck_assert(p->gate_open);
        ck_assert_uint_eq(p->n_files, 0);
        plan_free(p);
}
END_TEST

START_TEST(test_require_running_false) {
        cfg->require_running = false;
        Plan *p = run(&net, NULL, &v135);
        ck_assert(p->gate_open);
        ck_assert_str_eq(p->address, "100.64.0.10");
        plan_free(p);
}
END_TEST

START_TEST(test_roles) {
        Plan *p;

        cfg->role = K0S_ROLE_CONTROLLER;
        p = run(&net, &ts, &v135);
        ck_assert(p->gate_open);
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s controller --config=/etc/k0s/k0s-tsagent.yaml");
        ck_assert_uint_eq(p->n_files, 1);
        ck_assert_str_eq(p->files[0].path, "/etc/k0s/k0s-tsagent.yaml");
        ck_assert(strstr(p->files[0].contents, "100.64.0.10"));
        ck_assert(strstr(p->files[0].contents, "node1.tail1234.ts.net"));
        plan_free(p);

        cfg->role = K0S_ROLE_CONTROLLER_WORKER;
        p = run(&net, &ts, &v135);
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s controller --config=/etc/k0s/k0s-tsagent.yaml "
                         "--enable-worker --kubelet-extra-args=--node-ip=100.64.0.10");
        plan_free(p);

        cfg->role = K0S_ROLE_SINGLE;
        p = run(&net, &ts, &v135);
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s controller --config=/etc/k0s/k0s-tsagent.yaml "
                         "--single --kubelet-extra-args=--node-ip=100.64.0.10");
        plan_free(p);
}
END_TEST

START_TEST(test_bad_base_config) {
        cfg->role = K0S_ROLE_CONTROLLER;
        const char *base = "spec:\n  api: [1, 2\n";
        NodeFacts f = { .net = &net,
                        .tailnet = &ts,
                        .k0s_version = &v135,
                        .base_config = { .content = base, .len = strlen(base) } };
        Plan *p = NULL;
        ck_assert_int_eq(reconcile(cfg, &f, &p), 0);
        ck_assert(!p->gate_open);
        ck_assert_int_eq(p->k0s, PLAN_K0S_WAIT);
        ck_assert_ptr_nonnull(p->error);
        ck_assert(strstr(p->error, "/etc/k0s/k0s.yaml:"));
        plan_free(p);
}
END_TEST

START_TEST(test_kubelet_args_merge) {
        strv_free(cfg->k0s_args);
        cfg->k0s_args = NULL;
        strv_extend(&cfg->k0s_args, "--kubelet-extra-args=--max-pods=50  --node-ip=10.0.0.1");
        strv_extend(&cfg->k0s_args, "--debug");
        strv_extend(&cfg->k0s_args, "--kubelet-extra-args");
        strv_extend(&cfg->k0s_args, "--v=2");
        Plan *p = run(&net, &ts, &v135);
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s worker --token-file=/etc/k0s/k0stoken "
                         "--kubelet-extra-args=--node-ip=100.64.0.10 --max-pods=50 --v=2 "
                         "--debug");
        plan_free(p);
}
END_TEST

START_TEST(test_hash) {
        Plan *a = run(&net, &ts, &v135), *b = run(&net, &ts, &v135);
        ck_assert_str_eq(a->spec.hash, b->spec.hash);
        plan_free(b);

        NetState n = net;
        strcpy(n.ipv4[0], "100.64.0.11");
        TailnetStatus t = ts;
        t.ipv4 = (char *) "100.64.0.11";
        b = run(&n, &t, &v135);
        ck_assert_str_ne(a->spec.hash, b->spec.hash);
        plan_free(b);

        strv_extend(&cfg->k0s_env, "HTTP_PROXY=http://proxy:3128");
        b = run(&net, &ts, &v135);
        ck_assert_str_ne(a->spec.hash, b->spec.hash);
        ck_assert_str_eq(b->spec.env[0], "HTTP_PROXY=http://proxy:3128");
        plan_free(b);
        plan_free(a);

        /* Controllers: a k0s.yaml change (MTU) changes the hash. */
        cfg->role = K0S_ROLE_CONTROLLER;
        a = run(&net, &ts, &v135);
        cfg->calico_mtu = 1200;
        b = run(&net, &ts, &v135);
        ck_assert_str_ne(a->spec.hash, b->spec.hash);
        plan_free(a);
        plan_free(b);

        char *h1 = reconcile_spec_hash((char *[]){ (char *) "a", (char *) "b", NULL }, NULL, NULL);
        char *h2 = reconcile_spec_hash((char *[]){ (char *) "ab", NULL }, NULL, NULL);
        ck_assert_str_ne(h1, h2); /* element boundaries count */
        ck_assert_uint_eq(strlen(h1), 16);
        free(h1);
        free(h2);
}
END_TEST

START_TEST(test_endpoint_order) {
        TailnetPeer peers[2] = {
                { .dns_name = (char *) "reg-a.tail1234.ts.net",
                  .ipv4 = (char *) "100.64.1.1",
                  .online = false },
                { .dns_name = (char *) "reg-b.tail1234.ts.net",
                  .ipv4 = (char *) "100.64.1.2",
                  .online = true },
        };
        TailnetStatus t = ts;
        t.peers = peers;
        t.n_peers = 2;
        add_registry("registry.example:5000", "http://reg-a:5000", "http://100.64.1.2:5000");
        size_t *order = NULL;
        ck_assert_int_eq(reconcile_endpoint_order(&cfg->registries[0], &t, &order), 0);
        ck_assert_uint_eq(order[0], 1); /* the online peer first */
        ck_assert_uint_eq(order[1], 0);
        free(order);

        peers[0].online = true;
        ck_assert_int_eq(reconcile_endpoint_order(&cfg->registries[0], &t, &order), 0);
        ck_assert_uint_eq(order[0], 0); /* config order when all are up */
        ck_assert_uint_eq(order[1], 1);
        free(order);

        ck_assert_int_eq(reconcile_endpoint_order(&cfg->registries[0], NULL, &order), 0);
        ck_assert_uint_eq(order[0], 0);
        free(order);

        peers[0].online = false;
        Plan *p = run(&net, &t, &v135);
        const char *hosts = p->files[0].contents;
        ck_assert_ptr_nonnull(strstr(hosts, "http://100.64.1.2:5000"));
        ck_assert(strstr(hosts, "[host.\"http://100.64.1.2:5000\"]") <
                  strstr(hosts, "[host.\"http://reg-a:5000\"]"));
        plan_free(p);
}
END_TEST

static Suite *reconcile_suite(void) {
        Suite *s = suite_create("reconcile");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_gate_steps);
        tcase_add_test(tc, test_worker_run);
        tcase_add_test(tc, test_files_before_gate);
        tcase_add_test(tc, test_no_registries_no_files);
        tcase_add_test(tc, test_require_running_false);
        tcase_add_test(tc, test_roles);
        tcase_add_test(tc, test_bad_base_config);
        tcase_add_test(tc, test_kubelet_args_merge);
        tcase_add_test(tc, test_hash);
        tcase_add_test(tc, test_endpoint_order);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(reconcile_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
