/* SPDX-License-Identifier: MIT */
/* Table tests of the pure reconcile(): gate, files, k0s argv/env/hash, endpoint order, token,
 * versions, IPv6, the etcd address hold, base config errors, failover, the clock. */

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

static Plan *run_f(const NodeFacts *f) {
        Plan *p = NULL;
        ck_assert_int_eq(reconcile(cfg, f, &p), 0);
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_nonnull(p->status);
        ck_assert_ptr_nonnull(p->warnings);
        ck_assert_ptr_nonnull(p->notices);
        ck_assert(p->gate_open == (p->k0s == PLAN_K0S_RUN));
        ck_assert(!strchr(p->status, '\n'));
        return p;
}

static NodeFacts facts(const NetState *n, const TailnetStatus *t, const K0sVersion *v) {
        return (NodeFacts){ .net = n,
                            .tailnet = t,
                            .k0s_version = v,
                            .tailnet_error = "connect: No such file or directory" };
}

static Plan *run(const NetState *n, const TailnetStatus *t, const K0sVersion *v) {
        NodeFacts f = facts(n, t, v);
        return run_f(&f);
}

static bool strv_has_substr(char **l, const char *what) {
        for (char **i = l; i && *i; i++)
                if (strstr(*i, what))
                        return true;
        return false;
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

        /* Self.Online is the control server's view: never required (issue 7 item 1). */
        t = ts;
        t.self_online = false;
        p = run(&net, &t, &v135);
        ck_assert(p->gate_open);
        ck_assert_int_eq(p->k0s, PLAN_K0S_RUN);
        ck_assert(strstr(p->status, "control server unreachable"));
        plan_free(p);
        p = run(&net, &ts, &v135);
        ck_assert(!strstr(p->status, "control server"));
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
        /* Spelled as k0sctl spells them (host.go K0sInstallFlags); joining roles get the token. */
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s controller --config=/etc/k0s/k0s-tsagent.yaml "
                         "--token-file=/etc/k0s/k0stoken");
        ck_assert_uint_eq(p->n_files, 1);
        ck_assert_str_eq(p->files[0].path, "/etc/k0s/k0s-tsagent.yaml");
        ck_assert(strstr(p->files[0].contents, "100.64.0.10"));
        ck_assert(strstr(p->files[0].contents, "node1.tail1234.ts.net"));
        ck_assert(!strstr(p->files[0].contents, "provider"));
        ck_assert(strv_has_substr(p->warnings, "kuberouter"));
        plan_free(p);

        cfg->role = K0S_ROLE_CONTROLLER_WORKER;
        p = run(&net, &ts, &v135);
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s controller --config=/etc/k0s/k0s-tsagent.yaml "
                         "--enable-worker=true --token-file=/etc/k0s/k0stoken "
                         "--kubelet-extra-args=--node-ip=100.64.0.10");
        plan_free(p);

        cfg->role = K0S_ROLE_SINGLE;
        p = run(&net, &ts, &v135);
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s controller --config=/etc/k0s/k0s-tsagent.yaml "
                         "--single=true --kubelet-extra-args=--node-ip=100.64.0.10");
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

        /* Controllers: a k0s.yaml change (calico MTU) changes the hash. */
        cfg->role = K0S_ROLE_CONTROLLER;
        const char *base = "spec:\n  network:\n    provider: calico\n";
        NodeFacts f = facts(&net, &ts, &v135);
        f.base_config = (FileFact){ .content = base, .len = strlen(base) };
        a = run_f(&f);
        cfg->calico_mtu = 1200;
        b = run_f(&f);
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

/* Endpoint i of registry 0: "peer:NAME" makes a peer endpoint (port 5000, http), else a URL. */
static void add_endpoints(const char *name, const char *const *eps, size_t n) {
        Registry *r = realloc(cfg->registries, sizeof(Registry) * (cfg->n_registries + 1));
        ck_assert_ptr_nonnull(r);
        cfg->registries = r;
        r = &cfg->registries[cfg->n_registries++];
        *r = (Registry){ .name = strdup(name), .n_endpoints = n };
        r->endpoints = calloc(n, sizeof(RegistryEndpoint));
        for (size_t i = 0; i < n; i++)
                if (startswith(eps[i], "peer:"))
                        r->endpoints[i] = (RegistryEndpoint){ .peer = strdup(eps[i] + 5),
                                                              .port = 5000,
                                                              .scheme = strdup("http") };
                else
                        r->endpoints[i].url = strdup(eps[i]);
}

static TailnetPeer peers[4];

static void setup_peers(TailnetStatus *t) {
        /* manila: a direct path (CurAddr); cebu: known, not reachable; davao: handshake 10 s
         * ago (tailnet_peer_is_reachable's rule). */
        memset(peers, 0, sizeof(peers));
        peers[0] = (TailnetPeer){ .host_name = (char *) "registry-manila",
                                  .dns_name = (char *) "registry-manila.tail1234.ts.net",
                                  .ipv4 = (char *) "100.64.2.1",
                                  .active = true,
                                  .cur_addr = (char *) "192.0.2.1:41641" };
        peers[1] = (TailnetPeer){ .host_name = (char *) "registry-cebu",
                                  .dns_name = (char *) "registry-cebu.tail1234.ts.net",
                                  .ipv4 = (char *) "100.64.2.2" };
        peers[2] = (TailnetPeer){ .host_name = (char *) "registry-davao",
                                  .dns_name = (char *) "registry-davao.tail1234.ts.net",
                                  .ipv4 = (char *) "100.64.2.3",
                                  .online = true,
                                  .last_handshake_usec = 1000 * USEC_PER_SEC - 10 * USEC_PER_SEC };
        peers[3] = (TailnetPeer){ .host_name = (char *) "reg-a",
                                  .dns_name = (char *) "reg-a.tail1234.ts.net",
                                  .ipv4 = (char *) "100.64.1.1" };
        t->peers = peers;
        t->n_peers = ELEMENTSOF(peers);
        t->index = NULL;
        ck_assert_int_eq(tailnet_status_build_index(t), 0);
}

static void assert_endpoints(const Registry *r, const char *const *want, size_t n) {
        ck_assert_uint_eq(r->n_endpoints, n);
        for (size_t i = 0; i < n; i++)
                ck_assert_str_eq(r->endpoints[i].url, want[i]);
}

START_TEST(test_endpoint_order) {
        TailnetStatus t = ts;
        const uint64_t now = 1000 * USEC_PER_SEC;
        _cleanup_strv_free_ char **w = NULL;
        Registry out = {};

        setup_peers(&t);
        /* Peer slots: reachable first (manila, then davao by its handshake), then cebu; the URL
         * endpoint keeps its slot (2); an unknown peer is left out with a warning. */
        const char *eps[] = { "peer:registry-cebu", "peer:registry-manila",
                              "https://registry.example.org:5000", "peer:registry-nowhere",
                              "peer:registry-davao.tail1234.ts.net" };
        add_endpoints("registry.example.org:5000", eps, ELEMENTSOF(eps));
        ck_assert_int_eq(reconcile_registry_endpoints(&cfg->registries[0], &t, now, &out, &w), 0);
        assert_endpoints(&out,
                         (const char *const[]){ "http://100.64.2.1:5000", "http://100.64.2.3:5000",
                                                "https://registry.example.org:5000",
                                                "http://100.64.2.2:5000" },
                         4);
        ck_assert(strv_has_substr(w, "registry-nowhere"));
        ck_assert_uint_eq(strv_length(w), 1);
        registry_done(&out);

        /* When cebu comes back it takes its config slot again. */
        peers[1].online = true;
        peers[1].last_handshake_usec = now - 5 * USEC_PER_SEC;
        ck_assert_int_eq(reconcile_registry_endpoints(&cfg->registries[0], &t, now, &out, &w), 0);
        ck_assert_str_eq(out.endpoints[0].url, "http://100.64.2.2:5000");
        ck_assert_str_eq(out.endpoints[1].url, "http://100.64.2.1:5000");
        registry_done(&out);
        peers[1].online = false;
        peers[1].last_handshake_usec = 0;

        /* Today's rule for URL endpoints: a host that is a peer known unreachable goes last. */
        const char *urls[] = { "http://reg-a:5000", "http://100.64.2.1:5000" };
        add_endpoints("registry2.example:5000", urls, 2);
        ck_assert_int_eq(reconcile_registry_endpoints(&cfg->registries[1], &t, now, &out, &w), 0);
        assert_endpoints(&out,
                         (const char *const[]){ "http://100.64.2.1:5000", "http://reg-a:5000" }, 2);
        registry_done(&out);
        /* Without tailnet facts: config order, peers unknown. */
        ck_assert_int_eq(reconcile_registry_endpoints(&cfg->registries[1], NULL, now, &out, &w), 0);
        assert_endpoints(&out, urls, 2);
        registry_done(&out);

        /* The plan: hosts.toml in that order, https settings kept for URL endpoints. */
        NodeFacts f = facts(&net, &t, &v135);
        f.now_realtime_usec = now;
        Plan *p = run_f(&f);
        const char *hosts = p->files[0].contents;
        ck_assert_ptr_nonnull(strstr(hosts, "server = \"http://100.64.2.1:5000\""));
        ck_assert(strstr(hosts, "[host.\"http://100.64.2.3:5000\"]") <
                  strstr(hosts, "[host.\"https://registry.example.org:5000\"]"));
        ck_assert(strstr(hosts, "[host.\"https://registry.example.org:5000\"]") <
                  strstr(hosts, "[host.\"http://100.64.2.2:5000\"]"));
        ck_assert(strv_has_substr(p->warnings, "registry-nowhere"));
        plan_free(p);
        free(t.index);
}
END_TEST

/* A registry whose endpoints are all unknown peers: no hosts.toml is planned (the last one
 * stays), its directory stays in the keep set, and a warning says so. */
START_TEST(test_registry_all_unknown) {
        const char *eps[] = { "peer:gone-1", "peer:gone-2" };
        add_endpoints("r.example:5000", eps, 2);
        Plan *p = run(&net, &ts, &v135);
        ck_assert(p->gate_open);
        ck_assert_uint_eq(p->n_files, 1); /* only the drop-in */
        ck_assert_str_eq(p->files[0].path, "/etc/k0s/containerd.d/registry.toml");
        ck_assert_str_eq(p->registry_dirs[0], "/etc/containerd/certs.d/r.example:5000");
        ck_assert(strv_has_substr(p->warnings, "no endpoint could be resolved"));
        ck_assert(strv_has_substr(p->warnings, "gone-1"));
        plan_free(p);
}
END_TEST

START_TEST(test_token_file) {
        NodeFacts f = facts(&net, &ts, &v135);
        Plan *p;

        f.token_file_error = -ENOENT;
        p = run_f(&f); /* worker: an error in status, k0s not started */
        assert_waiting(p, "the join token in /etc/k0s/k0stoken");
        ck_assert(strstr(p->error, "/etc/k0s/k0stoken: No such file or directory"));
        plan_free(p);

        cfg->role = K0S_ROLE_CONTROLLER; /* the first controller: bootstraps, no --token-file */
        p = run_f(&f);
        ck_assert(p->gate_open);
        ck_assert_ptr_null(p->error);
        ck_assert(!strstr(argv_join(p), "--token-file"));
        ck_assert(strv_has_substr(p->notices, "bootstraps a new cluster"));
        plan_free(p);

        cfg->role = K0S_ROLE_CONTROLLER_WORKER;
        p = run_f(&f);
        ck_assert(p->gate_open);
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s controller "
                         "--config=/etc/k0s/k0s-tsagent.yaml --enable-worker=true "
                         "--kubelet-extra-args=--node-ip=100.64.0.10");
        plan_free(p);

        cfg->role = K0S_ROLE_SINGLE; /* never joins: no token, no notice */
        p = run_f(&f);
        ck_assert(p->gate_open);
        ck_assert_ptr_null(p->notices[0]);
        plan_free(p);
        f.token_file_error = 0;
        p = run_f(&f);
        ck_assert(!strstr(argv_join(p), "--token-file"));
        plan_free(p);
}
END_TEST

START_TEST(test_versions) {
        add_registry("r.example:5000", "http://100.64.0.99:5000", NULL);
        NodeFacts f = facts(&net, &ts, &v136);
        f.k0s_running_version = &v135;
        f.k0s_binary_id = (BinaryId){ .valid = true, .dev = 1, .ino = 42, .size = 7 };
        Plan *p = run_f(&f);
        /* The drop-in follows the k0s that runs; the upgrade waits for a restart. */
        ck_assert(strstr(p->files[1].contents, "version = 2\n"));
        ck_assert(p->upgrade_pending);
        ck_assert(strstr(p->status,
                         "restart pending an upgrade: k0s v1.35.7+k0s.0 runs, the "
                         "binary on disk is v1.36.1+k0s.0"));
        ck_assert(binary_id_equal(&p->spec.binary_id, &f.k0s_binary_id));
        _cleanup_free_ char *hash = strdup(p->spec.hash);
        plan_free(p);

        /* No k0s runs: the binary on disk decides; the hash does not depend on the version. */
        f.k0s_running_version = NULL;
        p = run_f(&f);
        ck_assert(strstr(p->files[1].contents, "version = 3\n"));
        ck_assert(!p->upgrade_pending);
        ck_assert_str_eq(p->spec.hash, hash);
        plan_free(p);

        f.k0s_running_version = &v136;
        p = run_f(&f);
        ck_assert(!p->upgrade_pending);
        plan_free(p);

        /* Only a running version known (the binary is being replaced): enough to proceed. */
        f.k0s_version = NULL;
        f.k0s_running_version = &v135;
        p = run_f(&f);
        ck_assert(p->gate_open);
        ck_assert(!p->upgrade_pending);
        plan_free(p);
}
END_TEST

START_TEST(test_old_k0s_warning) {
        K0sVersion v1281, v1282;
        ck_assert_int_eq(k0s_version_parse("v1.28.1+k0s.0", &v1281), 0);
        ck_assert_int_eq(k0s_version_parse("v1.28.2+k0s.0", &v1282), 0);
        Plan *p = run(&net, &ts, &v1281);
        ck_assert(!strv_has_substr(p->warnings, "1.28.2")); /* workers read no k0s.yaml */
        plan_free(p);
        cfg->role = K0S_ROLE_CONTROLLER;
        p = run(&net, &ts, &v1281);
        ck_assert(strv_has_substr(p->warnings, "older than 1.28.2"));
        ck_assert(strv_has_substr(p->warnings, "--config /etc/k0s/k0s-tsagent.yaml"));
        plan_free(p);
        p = run(&net, &ts, &v1282);
        ck_assert(!strv_has_substr(p->warnings, "1.28.2"));
        plan_free(p);
}
END_TEST

START_TEST(test_ipv6) {
        NetState n = net;
        TailnetStatus t = ts;
        cfg->k0s_ipv6 = true;

        strcpy(n.ipv6[0], "2001:db8::5"); /* a global LAN IPv6 is not the tailnet */
        n.n_ipv6 = 1;
        Plan *p = run(&n, &t, &v135);
        assert_waiting(p, "tailscale0 to get a tailnet IPv6 address (k0s.ipv6)");
        plan_free(p);

        strcpy(n.ipv6[1], "fd7a:115c:a1e0::a");
        n.n_ipv6 = 2;
        p = run(&n, &t, &v135);
        ck_assert(p->gate_open);
        ck_assert_str_eq(p->address6, "fd7a:115c:a1e0::a");
        ck_assert(strstr(argv_join(p),
                         "--kubelet-extra-args=--node-ip=100.64.0.10,"
                         "fd7a:115c:a1e0::a"));
        _cleanup_free_ char *h1 = strdup(p->spec.hash);
        plan_free(p);

        strcpy(n.ipv6[1], "fd7a:115c:a1e0::b"); /* a v6 change restarts k0s like a v4 change */
        p = run(&n, &t, &v135);
        ck_assert_str_ne(p->spec.hash, h1);
        plan_free(p);

        cfg->role = K0S_ROLE_CONTROLLER;
        p = run(&n, &t, &v135);
        ck_assert(strstr(p->files[0].contents, "- \"fd7a:115c:a1e0::b\""));
        ck_assert(!strstr(argv_join(p), "node-ip"));
        plan_free(p);

        cfg->k0s_ipv6 = false; /* single stack: one address, whatever the link has */
        cfg->role = K0S_ROLE_WORKER;
        p = run(&n, &t, &v135);
        ck_assert_str_eq(argv_join(p),
                         "/usr/local/bin/k0s worker --token-file=/etc/k0s/k0stoken "
                         "--kubelet-extra-args=--node-ip=100.64.0.10");
        ck_assert(!strstr(argv_join(p), "fd7a"));
        ck_assert_ptr_null(p->address6);
        plan_free(p);
}
END_TEST

/* Issue 7 item 8: the table of who is held when the tailnet IPv4 drifts. */
START_TEST(test_etcd_hold) {
        static const struct {
                K0sRole role;
                const char *base, *last, *accept;
                bool hold;
        } t[] = {
                { K0S_ROLE_CONTROLLER, NULL, "100.64.0.9", NULL, true },
                { K0S_ROLE_CONTROLLER_WORKER, "spec:\n  storage:\n    type: etcd\n", "100.64.0.9",
                  NULL, true },
                { K0S_ROLE_CONTROLLER, NULL, "100.64.0.9", "100.64.0.10", false }, /* accepted */
                { K0S_ROLE_CONTROLLER, NULL, "100.64.0.9", "100.64.0.77", true }, /* another */
                { K0S_ROLE_CONTROLLER, NULL, "100.64.0.10", NULL, false }, /* unchanged */
                { K0S_ROLE_CONTROLLER, NULL, NULL, NULL, false }, /* nothing recorded */
                { K0S_ROLE_CONTROLLER, "spec:\n  storage:\n    type: kine\n", "100.64.0.9", NULL,
                  false },
                { K0S_ROLE_SINGLE, NULL, "100.64.0.9", NULL, false },
                { K0S_ROLE_SINGLE, "spec:\n  storage:\n    type: etcd\n", "100.64.0.9", NULL,
                  false },
                { K0S_ROLE_WORKER, NULL, "100.64.0.9", NULL, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                NodeFacts f = facts(&net, &ts, &v135);
                f.last_address = t[i].last;
                f.base_config = (FileFact){ .content = t[i].base,
                                            .len = t[i].base ? strlen(t[i].base) : 0,
                                            .error = t[i].base ? 0 : -ENOENT };
                cfg->role = t[i].role;
                free(cfg->k0s_accept_address);
                cfg->k0s_accept_address = t[i].accept ? strdup(t[i].accept) : NULL;
                Plan *p = run_f(&f);
                ck_assert_msg(p->hold == t[i].hold, "case %zu", i);
                if (t[i].hold) {
                        ck_assert_int_eq(p->k0s, PLAN_K0S_WAIT);
                        ck_assert_ptr_null(p->spec.argv);
                        ck_assert(strstr(p->status, "100.64.0.9 -> 100.64.0.10"));
                        ck_assert(strstr(p->hold_reason, "new identity"));
                        ck_assert(strstr(p->hold_reason, "`k0s etcd member-list`"));
                        ck_assert(strstr(p->hold_reason,
                                         "`k0s etcd leave "
                                         "--peer-address=100.64.0.9`"));
                        ck_assert(strstr(p->hold_reason, "mv /var/lib/k0s/etcd"));
                        ck_assert(strstr(p->hold_reason,
                                         "k0s-tsagent accept-address "
                                         "100.64.0.10"));
                        ck_assert(!strchr(p->hold_reason, '\n'));
                        /* k0s.yaml stays what the running k0s was started with. */
                        for (size_t j = 0; j < p->n_files; j++)
                                ck_assert_str_ne(p->files[j].path, "/etc/k0s/k0s-tsagent.yaml");
                } else {
                        ck_assert_msg(p->k0s == PLAN_K0S_RUN, "case %zu: %s", i, p->status);
                        ck_assert_ptr_null(p->hold_reason);
                }
                plan_free(p);
        }
}
END_TEST

/* Issue 8 item 2: an unreadable base config is a fact, the plan waits and names it. */
START_TEST(test_base_config_error) {
        static const int errors[] = { -EISDIR, -EFBIG, -EACCES, -EINVAL };
        cfg->role = K0S_ROLE_CONTROLLER;
        for (size_t i = 0; i < ELEMENTSOF(errors); i++) {
                NodeFacts f = facts(&net, &ts, &v135);
                f.base_config.error = errors[i];
                Plan *p = run_f(&f);
                assert_waiting(p, "a readable /etc/k0s/k0s.yaml");
                ck_assert(startswith(p->error, "/etc/k0s/k0s.yaml: "));
                ck_assert(strstr(p->error, strerror(-errors[i])));
                ck_assert_uint_eq(p->n_files, 0);
                plan_free(p);
        }
        /* Absent is fine: k0s's defaults. Workers never read it. */
        NodeFacts f = facts(&net, &ts, &v135);
        f.base_config.error = -ENOENT;
        Plan *p = run_f(&f);
        ck_assert(p->gate_open);
        plan_free(p);
        cfg->role = K0S_ROLE_WORKER;
        f.base_config.error = -EISDIR;
        p = run_f(&f);
        ck_assert(p->gate_open);
        plan_free(p);
}
END_TEST

START_TEST(test_failover) {
        cfg->failover_target_usec = 60 * USEC_PER_SEC;
        Plan *p = run(&net, &ts, &v135);
        ck_assert(strstr(argv_join(p),
                         "--kubelet-extra-args=--node-ip=100.64.0.10 "
                         "--node-status-update-frequency=10s"));
        plan_free(p);

        cfg->role = K0S_ROLE_CONTROLLER;
        p = run(&net, &ts, &v135);
        const char *y = p->files[0].contents;
        ck_assert(strstr(y, "default-not-ready-toleration-seconds: \"9\""));
        ck_assert(strstr(y, "default-unreachable-toleration-seconds: \"9\""));
        ck_assert(strstr(y, "node-monitor-grace-period: \"41s\""));
        ck_assert(!strstr(argv_join(p), "node-status-update-frequency")); /* no kubelet */
        ck_assert(!strv_has_substr(p->warnings, "failover"));
        plan_free(p);

        cfg->role = K0S_ROLE_WORKER; /* the user's kubelet value wins, with a warning */
        strv_extend(&cfg->k0s_args, "--kubelet-extra-args=--node-status-update-frequency=4s");
        p = run(&net, &ts, &v135);
        ck_assert(strstr(argv_join(p), "--node-ip=100.64.0.10 --node-status-update-frequency=4s"));
        ck_assert(!strstr(argv_join(p), "=10s"));
        ck_assert(strv_has_substr(p->warnings, "wins over failover.target's 10s"));
        plan_free(p);

        cfg->failover_target_usec = 30 * USEC_PER_SEC; /* faster than safe: a warning */
        p = run(&net, &ts, &v135);
        ck_assert(strv_has_substr(p->warnings, "fastest safe profile: 50 s"));
        plan_free(p);
}
END_TEST

/* Issue 11 part 3: the clock holds the first start only. */
START_TEST(test_clock) {
        NodeFacts f = facts(&net, &ts, &v135);
        f.clock = CLOCK_FACT_WAITING;
        Plan *p = run_f(&f);
        assert_waiting(p, "the clock to be synchronized (clock.wait_sync)");
        plan_free(p);

        f.k0s_running_version = &v135; /* a running k0s is never stopped for the clock */
        p = run_f(&f);
        ck_assert(p->gate_open);
        plan_free(p);

        f.k0s_running_version = NULL;
        f.clock = CLOCK_FACT_TIMED_OUT;
        p = run_f(&f);
        ck_assert(p->gate_open);
        ck_assert(strv_has_substr(p->warnings, "clock.timeout passed"));
        plan_free(p);

        f.clock = CLOCK_FACT_NOT_NEEDED;
        p = run_f(&f);
        ck_assert(p->gate_open);
        ck_assert_ptr_null(p->warnings[0]);
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
        tcase_add_test(tc, test_registry_all_unknown);
        tcase_add_test(tc, test_token_file);
        tcase_add_test(tc, test_versions);
        tcase_add_test(tc, test_old_k0s_warning);
        tcase_add_test(tc, test_ipv6);
        tcase_add_test(tc, test_etcd_hold);
        tcase_add_test(tc, test_base_config_error);
        tcase_add_test(tc, test_failover);
        tcase_add_test(tc, test_clock);
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
