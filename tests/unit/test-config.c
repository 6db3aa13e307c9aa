/* SPDX-License-Identifier: MIT */
/*
 * config: defaults, the full DESIGN §4 example with every value checked, one exact
 * "FILE:LINE:COLUMN: message" per error kind, the duration and registry-name grammars, role
 * names, bounds of every duration, limits, peer endpoints, k0s.args the agent owns, the
 * ownership rule, config_lint(), size limit, and the shipped contrib example.
 */

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "config.h"

#define SEC(n) (USEC_PER_SEC * (n))

static int parse(const char *yaml, AgentConfig **ret, char **ret_error) {
        FILE *f;
        int r;

        f = fmemopen((void *) yaml, strlen(yaml), "r");
        ck_assert_ptr_nonnull(f);
        r = config_parse(f, "t.yaml", ret, ret_error);
        fclose(f);
        return r;
}

/* Parses yaml that must fail and returns the error string (owned by the caller). */
static char *parse_error(const char *yaml, int expected_r) {
        AgentConfig *c = NULL;
        char *error = NULL;
        int r;

        r = parse(yaml, &c, &error);
        ck_assert_msg(r == expected_r, "r=%d for:\n%s", r, yaml);
        ck_assert_ptr_null(c);
        ck_assert_msg(error != NULL, "no error string for:\n%s", yaml);
        return error;
}

static void assert_defaults(const AgentConfig *c) {
        ck_assert_str_eq(c->interface, "tailscale0");
        ck_assert_int_eq(c->role, K0S_ROLE_WORKER);
        ck_assert_str_eq(c->tailscale_socket, "/run/tailscale/tailscaled.sock");
        ck_assert(c->require_running);
        ck_assert_uint_eq(c->peer_refresh_usec, SEC(60));
        ck_assert_str_eq(c->k0s_binary, "/usr/local/bin/k0s");
        ck_assert_str_eq(c->k0s_version, "auto");
        ck_assert_str_eq(c->k0s_token_file, "/etc/k0s/k0stoken");
        ck_assert_str_eq(c->k0s_base_config, "/etc/k0s/k0s.yaml");
        ck_assert_str_eq(c->k0s_config, "/etc/k0s/k0s-tsagent.yaml");
        ck_assert_ptr_nonnull(c->k0s_args);
        ck_assert_uint_eq(strv_length(c->k0s_args), 0);
        ck_assert_ptr_nonnull(c->k0s_env);
        ck_assert_uint_eq(strv_length(c->k0s_env), 0);
        ck_assert_str_eq(c->k0s_status_socket, "/run/k0s/status.sock");
        ck_assert_str_eq(c->containerd_dropin, "/etc/k0s/containerd.d/registry.toml");
        ck_assert_str_eq(c->containerd_certs_dir, "/etc/containerd/certs.d");
        ck_assert_uint_eq(c->n_registries, 0);
        ck_assert_ptr_null(c->registries);
        ck_assert_uint_eq(c->calico_mtu, 1230);
        ck_assert_str_eq(c->calico_mark_mask, "0xff00ff00");
        ck_assert_uint_eq(c->health_interval_usec, SEC(30));
        ck_assert_uint_eq(c->health_timeout_usec, SEC(5));
        ck_assert_uint_eq(c->settle_usec, SEC(10));
        ck_assert_uint_eq(c->restart_backoff_min_usec, SEC(1));
        ck_assert_uint_eq(c->restart_backoff_max_usec, SEC(60));
        ck_assert_uint_eq(c->stable_usec, SEC(120));
        ck_assert_uint_eq(c->stop_timeout_usec, SEC(90));
        ck_assert_str_eq(c->state_dir, "/run/k0s-tsagent");
        ck_assert_str_eq(c->persist_dir, "/var/lib/k0s-tsagent");
        ck_assert(!c->k0s_ipv6);
        ck_assert_ptr_null(c->k0s_accept_address);
        ck_assert_str_eq(c->calico_nftables_mark_mask, "0xff00ff00");
        ck_assert_uint_eq(c->failover_target_usec, 0);
        ck_assert_int_eq(c->clock_wait_sync, CLOCK_WAIT_SYNC_AUTO);
        ck_assert_uint_eq(c->clock_timeout_usec, SEC(120));
        ck_assert_str_eq(c->metrics_textfile, "/var/lib/prometheus/node-exporter/k0s-tsagent.prom");
        ck_assert_ptr_null(c->doctor_backup_dir);
}

START_TEST(test_defaults) {
        _cleanup_(config_freep) AgentConfig *c = NULL;

        ck_assert_int_eq(config_new_default(&c), 0);
        assert_defaults(c);
        ck_assert_ptr_null(c->path);
}
END_TEST

/* Empty input in all its spellings is a valid config with every default. */
START_TEST(test_empty) {
        static const char *const inputs[] = {
                "",
                "\n",
                "# only a comment\n",
                "---\n",
                "---\n...\n",
                "~\n",
                "null\n",
                "{}\n",
                "\xef\xbb\xbf", /* a UTF-8 byte-order mark and nothing else */
                "tailscale:\nk0s:\ncontainerd: ~\nregistries:\ncalico: {}\nhealth:\ntiming:\n",
                "k0s:\n  args:\n  env: ~\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *error = NULL;

                ck_assert_msg(parse(inputs[i], &c, &error) == 0, "input %zu: %s", i, error);
                ck_assert_ptr_null(error);
                assert_defaults(c);
                ck_assert_str_eq(c->path, "t.yaml");
        }
}
END_TEST

static const char design_example[] =
        "interface: tailscale1\n"
        "role: controller+worker     # worker | controller | controller+worker | single\n"
        "tailscale:\n"
        "  socket: /srv/t/ts/tailscaled.sock\n"
        "  require_running: false\n"
        "  peer_refresh: 2m\n"
        "k0s:\n"
        "  binary: /opt/k0s/bin/k0s\n"
        "  version: v1.35.7+k0s.0\n"
        "  token_file: /srv/t/k0s/token\n"
        "  base_config: /srv/t/k0s/base.yaml\n"
        "  config: /srv/t/k0s/generated.yaml\n"
        "  args: [--debug, \"--labels=a=b\"]\n"
        "  env:\n"
        "    HTTPS_PROXY: http://proxy:3128\n"
        "    _no_value:\n"
        "    N1: 42\n"
        "  status_socket: /srv/t/k0s/status.sock\n"
        "containerd:\n"
        "  dropin: /srv/t/cd/registry.toml\n"
        "  certs_dir: /srv/t/cd/certs.d\n"
        "registries:\n"
        "  - name: registry.example.ts.net:5000   # as image references spell it\n"
        "    endpoints:\n"
        "      - url: http://registry.example.ts.net:5000\n"
        "        skip_verify: false\n"
        "      - url: https://100.64.0.7:5443/mirror\n"
        "        skip_verify: yes\n"
        "        ca: /srv/t/ca.pem\n"
        "  - name: \"[fd7a:115c:a1e0::1]:5000\"\n"
        "    endpoints:\n"
        "      - {url: \"http://[fd7a:115c:a1e0::1]:5000\"}\n"
        "calico:\n"
        "  mtu: 1200\n"
        "  iptables_mark_mask: \"0xff000000\"\n"
        "health:\n"
        "  interval: 0\n"
        "  timeout: 1500ms\n"
        "timing:\n"
        "  settle: 1m30s\n"
        "  restart_backoff: [250ms, 5m]\n"
        "  stable: 1h\n"
        "  stop_timeout: 45s\n"
        "state_dir: /srv/t/state\n";

START_TEST(test_full_example) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *error = NULL;
        const Registry *r;

        ck_assert_msg(parse(design_example, &c, &error) == 0, "%s", error);
        ck_assert_ptr_null(error);

        ck_assert_str_eq(c->interface, "tailscale1");
        ck_assert_int_eq(c->role, K0S_ROLE_CONTROLLER_WORKER);
        ck_assert_str_eq(c->tailscale_socket, "/srv/t/ts/tailscaled.sock");
        ck_assert(!c->require_running);
        ck_assert_uint_eq(c->peer_refresh_usec, SEC(120));
        ck_assert_str_eq(c->k0s_binary, "/opt/k0s/bin/k0s");
        ck_assert_str_eq(c->k0s_version, "v1.35.7+k0s.0");
        ck_assert_str_eq(c->k0s_token_file, "/srv/t/k0s/token");
        ck_assert_str_eq(c->k0s_base_config, "/srv/t/k0s/base.yaml");
        ck_assert_str_eq(c->k0s_config, "/srv/t/k0s/generated.yaml");
        ck_assert_uint_eq(strv_length(c->k0s_args), 2);
        ck_assert_str_eq(c->k0s_args[0], "--debug");
        ck_assert_str_eq(c->k0s_args[1], "--labels=a=b");
        ck_assert_uint_eq(strv_length(c->k0s_env), 3);
        ck_assert_str_eq(c->k0s_env[0], "HTTPS_PROXY=http://proxy:3128");
        ck_assert_str_eq(c->k0s_env[1], "_no_value=");
        ck_assert_str_eq(c->k0s_env[2], "N1=42");
        ck_assert_str_eq(c->k0s_status_socket, "/srv/t/k0s/status.sock");
        ck_assert_str_eq(c->containerd_dropin, "/srv/t/cd/registry.toml");
        ck_assert_str_eq(c->containerd_certs_dir, "/srv/t/cd/certs.d");

        ck_assert_uint_eq(c->n_registries, 2);
        r = &c->registries[0];
        ck_assert_str_eq(r->name, "registry.example.ts.net:5000");
        ck_assert_uint_eq(r->n_endpoints, 2);
        ck_assert_str_eq(r->endpoints[0].url, "http://registry.example.ts.net:5000");
        ck_assert(!r->endpoints[0].skip_verify);
        ck_assert_ptr_null(r->endpoints[0].ca);
        ck_assert_str_eq(r->endpoints[1].url, "https://100.64.0.7:5443/mirror");
        ck_assert(r->endpoints[1].skip_verify);
        ck_assert_str_eq(r->endpoints[1].ca, "/srv/t/ca.pem");
        r = &c->registries[1];
        ck_assert_str_eq(r->name, "[fd7a:115c:a1e0::1]:5000");
        ck_assert_uint_eq(r->n_endpoints, 1);
        ck_assert_str_eq(r->endpoints[0].url, "http://[fd7a:115c:a1e0::1]:5000");
        ck_assert(!r->endpoints[0].skip_verify);

        ck_assert_uint_eq(c->calico_mtu, 1200);
        ck_assert_str_eq(c->calico_mark_mask, "0xff000000");
        ck_assert_uint_eq(c->health_interval_usec, 0);
        ck_assert_uint_eq(c->health_timeout_usec, 1500 * USEC_PER_MSEC);
        ck_assert_uint_eq(c->settle_usec, SEC(90));
        ck_assert_uint_eq(c->restart_backoff_min_usec, 250 * USEC_PER_MSEC);
        ck_assert_uint_eq(c->restart_backoff_max_usec, SEC(300));
        ck_assert_uint_eq(c->stable_usec, SEC(3600));
        ck_assert_uint_eq(c->stop_timeout_usec, SEC(45));
        ck_assert_str_eq(c->state_dir, "/srv/t/state");
}
END_TEST

/* The DESIGN §4 block verbatim (every value a default there except the registry). */
START_TEST(test_design_block) {
        static const char yaml[] =
                "interface: tailscale0\n"
                "role: worker                 # worker | controller | controller+worker | single\n"
                "tailscale:\n"
                "  socket: /run/tailscale/tailscaled.sock\n"
                "  require_running: true      # gate k0s on BackendState == Running\n"
                "k0s:\n"
                "  binary: /usr/local/bin/k0s\n"
                "  version: auto              # auto: ask `k0s version`; or e.g. v1.35.7+k0s.0\n"
                "  token_file: /etc/k0s/k0stoken          # worker roles\n"
                "  base_config: /etc/k0s/k0s.yaml         # controller roles\n"
                "  config: /etc/k0s/k0s-tsagent.yaml      # controller roles\n"
                "                                         # passes to k0s with --config\n"
                "  args: []                   # extra arguments\n"
                "  status_socket: /run/k0s/status.sock\n"
                "containerd:\n"
                "  dropin: /etc/k0s/containerd.d/registry.toml\n"
                "  certs_dir: /etc/containerd/certs.d\n"
                "registries:\n"
                "  - name: registry.example.ts.net:5000   # exactly as image references spell it\n"
                "    endpoints:\n"
                "      - url: http://registry.example.ts.net:5000\n"
                "        skip_verify: false\n"
                "calico:\n"
                "  mtu: 1230\n"
                "  iptables_mark_mask: \"0xff00ff00\"\n"
                "timing:\n"
                "  settle: 10s                # an IP change must hold this long\n"
                "  restart_backoff: [1s, 60s]\n"
                "  stop_timeout: 90s\n"
                "state_dir: /run/k0s-tsagent  # status.json, k0s.pid\n";
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_msg(parse(yaml, &c, &error) == 0, "%s", error);
        ck_assert_uint_eq(c->n_registries, 1);
        ck_assert_str_eq(c->registries[0].name, "registry.example.ts.net:5000");
        ck_assert_str_eq(c->registries[0].endpoints[0].url, "http://registry.example.ts.net:5000");
        /* Apart from the registry, the block spells out the defaults. */
        for (size_t i = 0; i < c->n_registries; i++)
                registry_done(&c->registries[i]);
        c->registries = (free(c->registries), NULL);
        c->n_registries = 0;
        assert_defaults(c);
}
END_TEST

START_TEST(test_contrib_example) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *path = NULL, *error = NULL;
        const char *data = getenv("TEST_DATA_DIR");

        if (!data) {
                printf("SKIP: TEST_DATA_DIR is not set (run through meson test)\n");
                return;
        }
        path = strdup_printf("%s/../../contrib/k0s-tsagent.conf.example", data);
        ck_assert_ptr_nonnull(path);
        ck_assert_msg(config_load_full(path, 0, &c, &error) == 0, "%s", error);
        ck_assert_str_eq(c->path, path);
        /* It is the packaged /etc/k0s-tsagent.conf: every value is the default, and no
         * made-up registry gets containerd files on a fresh install. */
        ck_assert_uint_eq(c->n_registries, 0);
        assert_defaults(c);
}
END_TEST

START_TEST(test_data_file) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *path = NULL, *error = NULL;
        const char *data = getenv("TEST_DATA_DIR");

        if (!data) {
                printf("SKIP: TEST_DATA_DIR is not set (run through meson test)\n");
                return;
        }
        path = strdup_printf("%s/config/controller.yaml", data);
        ck_assert_ptr_nonnull(path);
        /* A source tree need not be root's: the ownership rule has its own test. */
        ck_assert_msg(config_load_full(path, 0, &c, &error) == 0, "%s", error);
        ck_assert_int_eq(c->role, K0S_ROLE_CONTROLLER_WORKER);
        ck_assert(!c->require_running);
        ck_assert_str_eq(c->k0s_version, "v1.36.1+k0s.0");
        ck_assert_str_eq(c->k0s_args[0], "--debug");
        ck_assert_ptr_null(c->k0s_args[1]);
        ck_assert_str_eq(c->k0s_env[0], "ETCD_UNSUPPORTED_ARCH=arm");
        ck_assert_uint_eq(c->n_registries, 1);
        ck_assert_str_eq(c->registries[0].name, "100.64.0.5:5000");
        ck_assert_uint_eq(c->registries[0].n_endpoints, 2);
        ck_assert_str_eq(c->registries[0].endpoints[1].url, "https://registry.example.ts.net:5443");
        ck_assert_str_eq(c->registries[0].endpoints[1].ca, "/srv/k0s-tsagent-test/ca.pem");
}
END_TEST

typedef struct ErrorCase {
        const char *yaml;
        const char *error;
} ErrorCase;

static const ErrorCase error_cases[] = {
        /* unknown keys: at the key */
        { "foo: 1\n", "t.yaml:1:1: unknown key 'foo'" },
        { "role: worker\nk0s:\n  foo: 1\n", "t.yaml:3:3: unknown key 'foo' in 'k0s'" },
        { "tailscale:\n  socket: /s\n  Socket: /s\n",
          "t.yaml:3:3: unknown key 'Socket' in 'tailscale'" },
        { "registries:\n  - name: a\n    endpoints:\n      - url: http://a\n        bar: 1\n",
          "t.yaml:5:9: unknown key 'bar' in 'registries[0].endpoints[0]'" },
        { "registries:\n  - name: a\n    mirrors: []\n",
          "t.yaml:3:5: unknown key 'mirrors' in 'registries[0]'" },
        { "? [a]\n: b\n", "t.yaml:1:3: keys must be strings, not a sequence" },
        { "\"a\\x01\": 1\n", "t.yaml:1:1: unknown key '?'" },

        /* duplicate keys: at the second key */
        { "role: worker\ninterface: ts0\nrole: single\n", "t.yaml:3:1: duplicate key 'role'" },
        { "timing:\n  settle: 1s\n  stable: 1m\n  settle: 2s\n",
          "t.yaml:4:3: duplicate key 'settle' in 'timing'" },
        { "registries:\n  - name: a\n    name: b\n",
          "t.yaml:3:5: duplicate key 'name' in 'registries[0]'" },
        { "k0s:\n  env:\n    A: 1\n    B: 2\n    A: 3\n",
          "t.yaml:5:5: duplicate key 'A' in 'k0s.env'" },
        { "k0s:\n  env: {B: 1, A: 2, A: 3, B: 4}\n",
          "t.yaml:2:21: duplicate key 'A' in 'k0s.env'" },

        /* wrong types: at the value */
        { "k0s: 5\n", "t.yaml:1:6: 'k0s' must be a mapping, not a scalar" },
        { "k0s: [1, {a: b}]\n", "t.yaml:1:6: 'k0s' must be a mapping, not a sequence" },
        { "interface: [a]\n", "t.yaml:1:12: 'interface' must be a string, not a sequence" },
        { "tailscale:\n  socket: {a: b}\n",
          "t.yaml:2:11: 'tailscale.socket' must be a string, not a mapping" },
        { "tailscale:\n  require_running: maybe\n",
          "t.yaml:2:20: 'tailscale.require_running' must be a boolean (true/false/yes/no), "
          "not 'maybe'" },
        { "tailscale:\n  require_running: 1\n",
          "t.yaml:2:20: 'tailscale.require_running' must be a boolean (true/false/yes/no), "
          "not '1'" },
        { "tailscale:\n  require_running: [true]\n",
          "t.yaml:2:20: 'tailscale.require_running' must be a boolean, not a sequence" },
        { "registries: {name: a}\n",
          "t.yaml:1:13: 'registries' must be a sequence of mappings, not a mapping" },
        { "registries:\n  - a:5000\n",
          "t.yaml:2:5: 'registries[0]' must be a mapping, not a scalar" },
        { "registries:\n  - name: a\n    endpoints: http://a\n",
          "t.yaml:3:16: 'registries[0].endpoints' must be a sequence of mappings, not a scalar" },
        { "registries:\n  - name: a\n    endpoints: [http://a]\n",
          "t.yaml:3:17: 'registries[0].endpoints[0]' must be a mapping, not a scalar" },
        { "k0s:\n  args: --debug\n",
          "t.yaml:2:9: 'k0s.args' must be a sequence of strings, not a scalar" },
        { "k0s:\n  args: [--debug, [x]]\n",
          "t.yaml:2:19: 'k0s.args[1]' must be a string, not a sequence" },
        { "k0s:\n  args: [--debug, \"\"]\n", "t.yaml:2:19: 'k0s.args[1]' needs a value" },
        { "k0s:\n  env: [A=1]\n",
          "t.yaml:2:8: 'k0s.env' must be a mapping of NAME: value, not a sequence" },
        { "k0s:\n  env:\n    A: [1]\n",
          "t.yaml:3:8: 'k0s.env.A' must be a string, not a sequence" },
        { "calico:\n  mtu: [1]\n", "t.yaml:2:8: 'calico.mtu' must be an integer, not a sequence" },
        { "timing:\n  settle: {}\n",
          "t.yaml:2:11: 'timing.settle' must be a duration, not a mapping" },
        { "interface:\n", "t.yaml:1:1: 'interface' needs a value" },
        { "k0s:\n  binary: ''\n", "t.yaml:2:3: 'k0s.binary' needs a value" },
        { "interface: \"a\\0b\"\n", "t.yaml:1:12: 'interface' contains a NUL byte" },
        { "k0s:\n  env:\n    A: \"x\\0\"\n", "t.yaml:3:8: 'k0s.env.A' contains a NUL byte" },

        /* top level */
        { "- a\n- b\n", "t.yaml:1:1: the top level must be a mapping, not a sequence" },
        { "hello\n", "t.yaml:1:1: the top level must be a mapping, not a scalar" },
        { "role: worker\n---\nrole: single\n", "t.yaml:2:1: only one YAML document is allowed" },

        /* role */
        { "role: boss\n",
          "t.yaml:1:7: invalid role 'boss': expected worker, controller, controller+worker or "
          "single" },
        { "role: Worker\n",
          "t.yaml:1:7: invalid role 'Worker': expected worker, controller, controller+worker or "
          "single" },

        /* durations */
        { "timing:\n  settle: 10\n",
          "t.yaml:2:11: invalid duration '10' for 'timing.settle': missing unit (e.g. 10s)" },
        { "timing:\n  stop_timeout: 5x\n",
          "t.yaml:2:17: invalid duration '5x' for 'timing.stop_timeout': unknown unit "
          "(use h, m, s, ms or us)" },
        { "timing:\n  stable: -5s\n",
          "t.yaml:2:11: invalid duration '-5s' for 'timing.stable': negative durations are not "
          "allowed" },
        { "tailscale:\n  peer_refresh: 1.5s\n",
          "t.yaml:2:17: invalid duration '1.5s' for 'tailscale.peer_refresh': unknown unit "
          "(use h, m, s, ms or us)" },
        { "health:\n  interval: 99999999999999999999h\n",
          "t.yaml:2:13: invalid duration '99999999999999999999h' for 'health.interval': out of "
          "range" },
        { "health:\n  timeout: 0\n",
          "t.yaml:2:12: 'health.timeout' must be between 100ms and 1m, not '0'" },
        { "timing:\n  restart_backoff: 5s\n",
          "t.yaml:2:20: 'timing.restart_backoff' must be a sequence of two durations [min, max]" },
        { "timing:\n  restart_backoff: [1s]\n",
          "t.yaml:2:20: 'timing.restart_backoff' must be a sequence of two durations [min, max]" },
        { "timing:\n  restart_backoff: [1s, 2s, 3s]\n",
          "t.yaml:2:20: 'timing.restart_backoff' must be a sequence of two durations [min, max]" },
        { "timing:\n  restart_backoff: [1s, 10]\n",
          "t.yaml:2:25: invalid duration '10' for 'timing.restart_backoff[1]': missing unit "
          "(e.g. 10s)" },
        { "timing:\n  restart_backoff:\n    - 60s\n    - 1s\n",
          "t.yaml:3:5: 'timing.restart_backoff': min 1m is larger than max 1s" },

        /* paths (every path key is checked in test_paths) */
        { "k0s:\n  binary: bin/k0s\n",
          "t.yaml:2:11: 'k0s.binary' must be an absolute path, not 'bin/k0s'" },
        { "state_dir: \"/run/a\\nb\"\n",
          "t.yaml:1:12: 'state_dir' must not contain control characters, quotes or backslashes" },
        { "state_dir: '/run/a\"b'\n",
          "t.yaml:1:12: 'state_dir' must not contain control characters, quotes or backslashes" },

        /* URLs */
        { "registries:\n  - name: a\n    endpoints:\n      - url: ftp://a\n",
          "t.yaml:4:14: invalid URL 'ftp://a' for 'registries[0].endpoints[0].url': the scheme "
          "must be http:// or https://" },
        { "registries:\n  - name: a\n    endpoints:\n      - url: a:5000\n",
          "t.yaml:4:14: invalid URL 'a:5000' for 'registries[0].endpoints[0].url': the scheme "
          "must be http:// or https://" },
        { "registries:\n  - name: a\n    endpoints:\n      - url: HTTP://a\n",
          "t.yaml:4:14: invalid URL 'HTTP://a' for 'registries[0].endpoints[0].url': the scheme "
          "must be http:// or https://" },
        { "registries:\n  - name: a\n    endpoints:\n      - url: http://\n",
          "t.yaml:4:14: invalid URL 'http://' for 'registries[0].endpoints[0].url': no host" },
        { "registries:\n  - name: a\n    endpoints:\n      - url: https:///v2\n",
          "t.yaml:4:14: invalid URL 'https:///v2' for 'registries[0].endpoints[0].url': no host" },
        { "registries:\n  - name: a\n    endpoints:\n      - url: http://a_b:5000\n",
          "t.yaml:4:14: invalid URL 'http://a_b:5000' for 'registries[0].endpoints[0].url': "
          "'a_b:5000' is not a valid host[:port]" },
        { "registries:\n  - name: a\n    endpoints:\n      - url: http://a:99999\n",
          "t.yaml:4:14: invalid URL 'http://a:99999' for 'registries[0].endpoints[0].url': "
          "'a:99999' is not a valid host[:port]" },
        { "registries:\n  - name: a\n    endpoints:\n      - url: http://u:p@a\n",
          "t.yaml:4:14: invalid URL 'http://u:p@a' for 'registries[0].endpoints[0].url': no "
          "whitespace, quotes, backslashes, control bytes, '?', '#' or '@'" },
        { "registries:\n  - name: a\n    endpoints:\n      - url: \"http://a/\\\"]\"\n",
          "t.yaml:4:14: invalid URL 'http://a/\"]' for 'registries[0].endpoints[0].url': no "
          "whitespace, quotes, backslashes, control bytes, '?', '#' or '@'" },

        /* registries: cross-field rules */
        { "registries:\n  - name: a:1\n    endpoints: [{url: http://a:1}]\n"
          "  - name: b\n    endpoints: [{url: http://b}]\n"
          "  - name: a:1\n    endpoints: [{url: http://c}]\n",
          "t.yaml:6:11: duplicate registry name 'a:1' (first at line 2)" },
        { "registries:\n  - {name: b, endpoints: [{url: http://b}]}\n"
          "  - {name: a, endpoints: [{url: http://a}]}\n"
          "  - {name: a, endpoints: [{url: http://a}]}\n"
          "  - {name: b, endpoints: [{url: http://b}]}\n",
          "t.yaml:4:12: duplicate registry name 'a' (first at line 3)" },
        { "registries:\n  - name: r:5000\n    endpoints:\n      - url: http://r:5000\n"
          "        skip_verify: true\n",
          "t.yaml:5:22: 'skip_verify: true' on the http:// endpoint 'http://r:5000' makes "
          "containerd try HTTPS first; drop it" },
        { "registries:\n  - name: r:5000\n    endpoints:\n      - url: http://r:5000\n"
          "        ca: /etc/ca.pem\n",
          "t.yaml:5:13: 'ca' on the http:// endpoint 'http://r:5000' makes containerd try HTTPS "
          "first; drop it" },
        { "registries:\n  - name: r\n    endpoints: []\n",
          "t.yaml:3:16: registry 'r' has no endpoints" },
        { "registries:\n  - name: r\n    endpoints:\n",
          "t.yaml:3:5: registry 'r' has no endpoints" },
        { "registries:\n  - name: r\n", "t.yaml:2:5: registry 'r' has no endpoints" },
        { "registries:\n  - endpoints: [{url: http://a}]\n",
          "t.yaml:2:5: registry entry has no 'name'" },
        { "registries:\n  - name: ../x\n    endpoints: [{url: http://a}]\n",
          "t.yaml:2:11: invalid registry name '../x': expected host[:port] as in image references "
          "(DNS name, IPv4 or [IPv6], port 1-65535)" },

        /* interface */
        { "interface: a/b\n",
          "t.yaml:1:12: invalid interface name 'a/b': 1-15 printable characters, no '/', ':' or "
          "whitespace" },
        { "interface: abcdefghijklmnop\n",
          "t.yaml:1:12: invalid interface name 'abcdefghijklmnop': 1-15 printable characters, no "
          "'/', ':' or whitespace" },
        { "interface: \"..\"\n",
          "t.yaml:1:12: invalid interface name '..': 1-15 printable characters, no '/', ':' or "
          "whitespace" },
        { "interface: 'ts 0'\n",
          "t.yaml:1:12: invalid interface name 'ts 0': 1-15 printable characters, no '/', ':' or "
          "whitespace" },

        /* calico */
        { "calico:\n  iptables_mark_mask: ff00ff00\n",
          "t.yaml:2:23: invalid mark mask 'ff00ff00' for 'calico.iptables_mark_mask': expected 0x "
          "and 1 to 8 hex digits, e.g. \"0xff00ff00\"" },
        { "calico:\n  iptables_mark_mask: \"0xff00ff00f\"\n",
          "t.yaml:2:23: invalid mark mask '0xff00ff00f' for 'calico.iptables_mark_mask': expected "
          "0x and 1 to 8 hex digits, e.g. \"0xff00ff00\"" },
        { "calico:\n  iptables_mark_mask: 0x\n",
          "t.yaml:2:23: invalid mark mask '0x' for 'calico.iptables_mark_mask': expected 0x and 1 "
          "to 8 hex digits, e.g. \"0xff00ff00\"" },
        { "calico:\n  iptables_mark_mask: 0xgg\n",
          "t.yaml:2:23: invalid mark mask '0xgg' for 'calico.iptables_mark_mask': expected 0x and "
          "1 to 8 hex digits, e.g. \"0xff00ff00\"" },
        { "calico:\n  mtu: 70000\n",
          "t.yaml:2:8: 'calico.mtu' must be 0 or between 576 and 9000, not '70000'" },
        { "calico:\n  mtu: 575\n",
          "t.yaml:2:8: 'calico.mtu' must be 0 or between 576 and 9000, not '575'" },
        { "calico:\n  mtu: 9001\n",
          "t.yaml:2:8: 'calico.mtu' must be 0 or between 576 and 9000, not '9001'" },
        { "calico:\n  mtu: -1\n",
          "t.yaml:2:8: 'calico.mtu' must be 0 or between 576 and 9000, not '-1'" },
        { "calico:\n  mtu: 1k\n",
          "t.yaml:2:8: 'calico.mtu' must be 0 or between 576 and 9000, not '1k'" },

        /* k0s.version and k0s.env names */
        { "k0s:\n  version: latest\n",
          "t.yaml:2:12: invalid k0s version 'latest' for 'k0s.version': expected 'auto' or a "
          "version like v1.35.7+k0s.0" },
        { "k0s:\n  env:\n    1X: a\n",
          "t.yaml:3:5: invalid environment variable name in 'k0s.env': expected "
          "[A-Za-z_][A-Za-z0-9_]*" },
        { "k0s:\n  env:\n    A-B: a\n",
          "t.yaml:3:5: invalid environment variable name in 'k0s.env': expected "
          "[A-Za-z_][A-Za-z0-9_]*" },
        { "k0s:\n  env:\n    \"A=B\": a\n",
          "t.yaml:3:5: invalid environment variable name in 'k0s.env': expected "
          "[A-Za-z_][A-Za-z0-9_]*" },
        { "k0s:\n  env:\n    [A]: a\n",
          "t.yaml:3:5: invalid environment variable name in 'k0s.env': expected "
          "[A-Za-z_][A-Za-z0-9_]*" },

        /* YAML itself: libyaml's problem mark */
        { "a: [\n",
          "t.yaml:2:1: YAML syntax error: did not find expected node content "
          "(while parsing a flow node)" },
        { "role: worker\ninterface: a: b\n",
          "t.yaml:2:13: YAML syntax error: mapping values are not allowed in this context" },
        { "k0s:\n  binary: /a\n bad: 1\n",
          "t.yaml:3:2: YAML syntax error: did not find expected key (while parsing a block "
          "mapping)" },
        { "role: \"worker\n",
          "t.yaml:2:1: YAML syntax error: found unexpected end of stream (while scanning a "
          "quoted scalar)" },
        { "role: worker\n\tinterface: x\n",
          "t.yaml:2:1: YAML syntax error: found a tab character that violates indentation "
          "(while scanning a plain scalar)" },
        { "role: worker\ninterface: a\x01\n",
          "t.yaml:2:13: YAML syntax error: control characters are not allowed" },
        { "role: worker\ninterface: \xff\n",
          "t.yaml:2:12: YAML syntax error: invalid leading UTF-8 octet" },
        { "a: &x [1]\nb: *x\n", "t.yaml:2:4: YAML aliases are not supported" },
};

START_TEST(test_errors) {
        const ErrorCase *t = &error_cases[_i];
        _cleanup_free_ char *error = parse_error(t->yaml, -EINVAL);

        ck_assert_msg(streq(error, t->error), "case %d:\n%s\nwant: %s\ngot:  %s", _i, t->yaml,
                      t->error, error);
}
END_TEST

START_TEST(test_error_null_ret_error) {
        AgentConfig *c = NULL;

        /* Without ret_error, failures still return the code and leak nothing. */
        ck_assert_int_eq(parse("role: boss\n", &c, NULL), -EINVAL);
        ck_assert_int_eq(parse("a: [\n", &c, NULL), -EINVAL);
        ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_nesting_limit) {
        char yaml[256] = "a: ";
        size_t n = strlen(yaml);
        _cleanup_free_ char *error = NULL;

        for (int i = 0; i < 70; i++)
                yaml[n++] = '[';
        yaml[n++] = '\n';
        yaml[n] = 0;
        /* the 64th nested '[' (column 4 + 63) is one level too deep */
        error = parse_error(yaml, -EINVAL);
        ck_assert_str_eq(error, "t.yaml:1:67: nesting too deep (limit 64)");
}
END_TEST

/* Every path key refuses a relative path, at the value. */
/* Many keys must neither stall nor hide a duplicate (duplicate search is not quadratic). */
START_TEST(test_many_env_keys) {
        const size_t n = 50000;
        _cleanup_free_ char *yaml = NULL, *error = NULL, *want = NULL;
        _cleanup_(config_freep) AgentConfig *c = NULL;
        size_t len = 0;

        yaml = malloc(n * 16 + 64);
        ck_assert_ptr_nonnull(yaml);
        len += (size_t) sprintf(yaml + len, "k0s:\n  env:\n");
        for (size_t i = 0; i < n; i++)
                len += (size_t) sprintf(yaml + len, "    V%zu: x\n", i);
        ck_assert_msg(parse(yaml, &c, &error) == 0, "%s", error);
        ck_assert_uint_eq(strv_length(c->k0s_env), n);
        ck_assert_str_eq(c->k0s_env[n - 1], "V49999=x");

        sprintf(yaml + len, "    V17: y\n");
        error = parse_error(yaml, -EINVAL);
        want = strdup_printf("t.yaml:%zu:5: duplicate key 'V17' in 'k0s.env'", n + 3);
        ck_assert_str_eq(error, want);
}
END_TEST

START_TEST(test_paths) {
        static const struct {
                const char *section, *key;
        } keys[] = {
                { "tailscale", "socket" },  { "k0s", "binary" },
                { "k0s", "token_file" },    { "k0s", "base_config" },
                { "k0s", "config" },        { "k0s", "status_socket" },
                { "containerd", "dropin" }, { "containerd", "certs_dir" },
                { NULL, "state_dir" },
        };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *yaml = NULL, *want = NULL, *error = NULL;

                if (keys[i].section) {
                        yaml = strdup_printf("role: worker\n%s:\n  %s: relative/path\n",
                                             keys[i].section, keys[i].key);
                        want = strdup_printf("t.yaml:3:%zu: '%s.%s' must be an absolute path, not "
                                             "'relative/path'",
                                             strlen(keys[i].key) + 5, keys[i].section, keys[i].key);
                } else {
                        yaml = strdup_printf("role: worker\n%s: relative/path\n", keys[i].key);
                        want = strdup_printf("t.yaml:2:%zu: '%s' must be an absolute path, not "
                                             "'relative/path'",
                                             strlen(keys[i].key) + 3, keys[i].key);
                }
                error = parse_error(yaml, -EINVAL);
                ck_assert_str_eq(error, want);
        }

        /* and ca, inside a registry endpoint */
        _cleanup_free_ char *error =
                parse_error("registries:\n  - name: a\n    endpoints:\n      - url: https://a\n"
                            "        ca: ca.pem\n",
                            -EINVAL);
        ck_assert_str_eq(error,
                         "t.yaml:5:13: 'registries[0].endpoints[0].ca' must be an absolute "
                         "path, not 'ca.pem'");
}
END_TEST

START_TEST(test_optional_ca) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_msg(parse("registries:\n  - name: a\n    endpoints:\n"
                            "      - url: https://a\n        ca: ~\n",
                            &c, &error) == 0,
                      "%s", error);
        ck_assert_ptr_null(c->registries[0].endpoints[0].ca);
}
END_TEST

START_TEST(test_booleans) {
        static const struct {
                const char *word;
                bool value;
        } words[] = {
                { "true", true },    { "True", true }, { "TRUE", true },   { "yes", true },
                { "Yes", true },     { "YES", true },  { "false", false }, { "False", false },
                { "FALSE", false },  { "no", false },  { "No", false },    { "NO", false },
                { "\"yes\"", true },
        };
        static const char *const bad[] = { "on", "off", "y", "n", "1", "0", "tRUE", "~" };

        for (size_t i = 0; i < ELEMENTSOF(words); i++) {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *yaml = NULL, *error = NULL;

                yaml = strdup_printf("tailscale:\n  require_running: %s\n", words[i].word);
                ck_assert_msg(parse(yaml, &c, &error) == 0, "%s: %s", words[i].word, error);
                ck_assert_int_eq(c->require_running, words[i].value);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *yaml = NULL, *error = NULL, *want = NULL;

                yaml = strdup_printf("tailscale:\n  require_running: %s\n", bad[i]);
                want = strdup_printf("t.yaml:2:20: 'tailscale.require_running' must be a boolean "
                                     "(true/false/yes/no), not '%s'",
                                     bad[i]);
                error = parse_error(yaml, -EINVAL);
                ck_assert_str_eq(error, want);
        }
}
END_TEST

START_TEST(test_values_in_range) {
        static const struct {
                const char *yaml;
                unsigned mtu;
                const char *mask;
        } cases[] = {
                { "calico:\n  mtu: 0\n", 0, "0xff00ff00" },
                { "calico:\n  mtu: 576\n", 576, "0xff00ff00" },
                { "calico:\n  mtu: 9000\n", 9000, "0xff00ff00" },
                { "calico:\n  iptables_mark_mask: 0xF\n", 1230, "0xF" },
                { "calico:\n  iptables_mark_mask: '0xFFFFFFFF'\n", 1230, "0xFFFFFFFF" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *error = NULL;

                ck_assert_msg(parse(cases[i].yaml, &c, &error) == 0, "%s", error);
                ck_assert_uint_eq(c->calico_mtu, cases[i].mtu);
                ck_assert_str_eq(c->calico_mark_mask, cases[i].mask);
        }
}
END_TEST

START_TEST(test_roles) {
        static const struct {
                const char *name;
                K0sRole role;
                bool controller, kubelet;
        } roles[] = {
                { "worker", K0S_ROLE_WORKER, false, true },
                { "controller", K0S_ROLE_CONTROLLER, true, false },
                { "controller+worker", K0S_ROLE_CONTROLLER_WORKER, true, true },
                { "single", K0S_ROLE_SINGLE, true, true },
        };

        for (size_t i = 0; i < ELEMENTSOF(roles); i++) {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *yaml = NULL, *error = NULL;

                ck_assert_str_eq(k0s_role_to_string(roles[i].role), roles[i].name);
                ck_assert_int_eq(k0s_role_from_string(roles[i].name), roles[i].role);
                ck_assert_int_eq(k0s_role_is_controller(roles[i].role), roles[i].controller);
                ck_assert_int_eq(k0s_role_runs_kubelet(roles[i].role), roles[i].kubelet);

                yaml = strdup_printf("role: %s\n", roles[i].name);
                ck_assert_msg(parse(yaml, &c, &error) == 0, "%s", error);
                ck_assert_int_eq(c->role, roles[i].role);
        }
        ck_assert_ptr_null(k0s_role_to_string(_K0S_ROLE_MAX));
        ck_assert_ptr_null(k0s_role_to_string(_K0S_ROLE_INVALID));
        ck_assert_int_eq(k0s_role_from_string("controller+"), _K0S_ROLE_INVALID);
        ck_assert_int_eq(k0s_role_from_string(""), _K0S_ROLE_INVALID);
        ck_assert_int_eq(k0s_role_from_string(NULL), _K0S_ROLE_INVALID);
        ck_assert(!k0s_role_is_controller(_K0S_ROLE_INVALID));
        ck_assert(!k0s_role_runs_kubelet(_K0S_ROLE_INVALID));
}
END_TEST

START_TEST(test_durations) {
        static const struct {
                const char *s;
                int r;
                uint64_t usec;
        } cases[] = {
                { "0", 0, 0 },
                { "000", 0, 0 },
                { "0s", 0, 0 },
                { "1us", 0, 1 },
                { "250ms", 0, 250 * USEC_PER_MSEC },
                { "1s", 0, SEC(1) },
                { "90s", 0, SEC(90) },
                { "5m", 0, SEC(300) },
                { "1h", 0, SEC(3600) },
                { "1m30s", 0, SEC(90) },
                { "1s500ms", 0, SEC(1) + 500 * USEC_PER_MSEC },
                { "1h2m3s4ms5us", 0, SEC(3723) + 4005 },
                { "30s1m", 0, SEC(90) }, /* any order, like systemd */
                { "18446744073709551615us", 0, UINT64_MAX },
                { "5124095576h", 0, UINT64_C(5124095576) * SEC(3600) },
                { "18446744073709551616us", -ERANGE, 0 },
                { "99999999999999999999", -EINVAL, 0 }, /* bare number: missing unit first */
                { "18446744073709551615ms", -ERANGE, 0 },
                { "5124095577h", -ERANGE, 0 },
                { "5124095576h1h", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "10", -EINVAL, 0 },
                { "1", -EINVAL, 0 },
                { "-1s", -EINVAL, 0 },
                { "-0", -EINVAL, 0 },
                { "+1s", -EINVAL, 0 },
                { "1x", -EINVAL, 0 },
                { "1S", -EINVAL, 0 },
                { "s", -EINVAL, 0 },
                { "ms", -EINVAL, 0 },
                { "1.5s", -EINVAL, 0 },
                { " 1s", -EINVAL, 0 },
                { "1s ", -EINVAL, 0 },
                { "1 s", -EINVAL, 0 },
                { "1m30", -EINVAL, 0 },
                { "1sm", -EINVAL, 0 },
                { "1d", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 4711;
                int r = parse_duration(cases[i].s, &v);

                ck_assert_msg(r == cases[i].r, "'%s': r=%d", cases[i].s, r);
                if (r == 0)
                        ck_assert_msg(v == cases[i].usec, "'%s': %" PRIu64, cases[i].s, v);
                else
                        ck_assert_uint_eq(v, 4711); /* untouched on failure */
        }
        uint64_t v = 1;
        ck_assert_int_eq(parse_duration(NULL, &v), -EINVAL);
}
END_TEST

START_TEST(test_format_duration) {
        static const struct {
                uint64_t usec;
                const char *s;
        } cases[] = {
                { 0, "0" },
                { 1, "1us" },
                { 250 * USEC_PER_MSEC, "250ms" },
                { SEC(1), "1s" },
                { SEC(90), "1m30s" },
                { SEC(3600), "1h" },
                { SEC(3723) + 4005, "1h2m3s4ms5us" },
                { SEC(1) + 500 * USEC_PER_MSEC, "1s500ms" },
                { UINT64_MAX, "5124095576h1m49s551ms615us" },
        };
        char buf[64];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t back = 0;

                ck_assert_str_eq(format_duration(buf, sizeof(buf), cases[i].usec), cases[i].s);
                ck_assert_int_eq(parse_duration(buf, &back), 0);
                ck_assert_uint_eq(back, cases[i].usec);
        }
        /* A short buffer truncates but stays a string. */
        char small[4];
        ck_assert_ptr_eq(format_duration(small, sizeof(small), SEC(3723)), small);
        ck_assert_str_eq(small, "1h2");
        ck_assert_ptr_null(format_duration(NULL, 10, 1));
        ck_assert_ptr_null(format_duration(buf, 0, 1));
}
END_TEST

START_TEST(test_registry_names) {
        static const struct {
                const char *name;
                bool valid;
        } cases[] = {
                { "localhost", true },
                { "localhost:5000", true },
                { "registry.example.ts.net:5000", true },
                { "registry.example.ts.net", true },
                { "Registry.Example.TS.NET", true },
                { "my-registry", true },
                { "a", true },
                { "a1.b2", true },
                { "100.64.0.5:5000", true },
                { "100.64.0.5", true },
                { "127.0.0.1:1", true },
                { "x:65535", true },
                { "[fd7a:115c:a1e0::1]:5000", true },
                { "[fd7a:115c:a1e0::1]", true },
                { "[::1]", true },
                { "[::ffff:100.64.0.1]:443", true },
                { "123abc.example", true },

                { NULL, false },
                { "", false },
                { ".", false },
                { "..", false },
                { "../x", false },
                { "../../etc", false },
                { "a/b", false },
                { "a\\b", false },
                { "/", false },
                { "/etc", false },
                { "a b", false },
                { "a\tb", false },
                { "a\nb", false },
                { "a\x01", false },
                { "a\x7f", false },
                { "\xc3\xa9t\xc3\xa9", false },
                { ".a", false },
                { "a.", false },
                { "a..b", false },
                { "-a", false },
                { "a-", false },
                { "a.-b", false },
                { "a_b", false },
                { "_default", false },
                { "a*", false },
                { "x:0", false },
                { "x:65536", false },
                { "x:99999", false },
                { "x:123456", false },
                { "x:", false },
                { ":5000", false },
                { "x:05000", false },
                { "x:+5", false },
                { "x:-1", false },
                { "x:5000:1", false },
                { "x:50a", false },
                { "[::1", false },
                { "[::1]:", false },
                { "[::1]x", false },
                { "[::1]:0", false },
                { "[zz]:5", false },
                { "[]", false },
                { "[]:5", false },
                { "[100.64.0.5]", false },
                { "::1", false },
                { "fd7a:115c:a1e0::1", false },
                { "[::1]/..", false },
                { "1.2.3", false },
                { "256.1.1.1", false },
                { "1.2.3.4.5", false },
                { "01.2.3.4", false },
                { "1234", false },
                { "user@host", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                ck_assert_msg(registry_name_is_valid(cases[i].name) == cases[i].valid,
                              "'%s' should be %s", cases[i].name ?: "(null)",
                              cases[i].valid ? "valid" : "invalid");
}
END_TEST

START_TEST(test_registry_name_length) {
        char name[300];

        /* 4 labels of 63 + 3 dots = 255: too long; trim to exactly 253 and 254. */
        memset(name, 'a', sizeof(name));
        name[63] = name[127] = name[191] = '.';
        name[253] = 0;
        ck_assert(registry_name_is_valid(name));
        name[253] = 'a';
        name[254] = 0;
        ck_assert(!registry_name_is_valid(name));

        /* A label is at most 63 bytes. */
        memset(name, 'b', 64);
        name[64] = 0;
        ck_assert(!registry_name_is_valid(name));
        name[63] = 0;
        ck_assert(registry_name_is_valid(name));
}
END_TEST

START_TEST(test_free_null) {
        ck_assert_ptr_null(config_free(NULL));
        {
                _cleanup_(config_freep) AgentConfig *c = NULL; /* cleanup of NULL */
                (void) c;
        }
}
END_TEST

START_TEST(test_too_big) {
        _cleanup_free_ char *yaml = NULL, *error = NULL;
        size_t n = CONFIG_MAX_SIZE + 1;

        /* A comment line filling the limit, so the byte over it sits on line 2, column 1. */
        yaml = malloc(n + 1);
        ck_assert_ptr_nonnull(yaml);
        memset(yaml, ' ', n);
        yaml[0] = '#';
        yaml[CONFIG_MAX_SIZE - 1] = '\n';
        yaml[n] = 0;
        error = parse_error(yaml, -EFBIG);
        ck_assert_str_eq(error, "t.yaml:2:1: file is larger than 1048576 bytes");

        /* Exactly at the limit is fine. */
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *error2 = NULL;
        yaml[CONFIG_MAX_SIZE] = 0;
        ck_assert_msg(parse(yaml, &c, &error2) == 0, "%s", error2);
}
END_TEST

START_TEST(test_load) {
        _cleanup_free_ char *dir = NULL, *path = NULL, *missing = NULL, *error = NULL;
        _cleanup_(config_freep) AgentConfig *c = NULL;
        FILE *f;

        dir = strdup_printf("%s/test-config-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        ck_assert_ptr_nonnull(dir);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        path = strdup_printf("%s/k0s-tsagent.conf", dir);
        missing = strdup_printf("%s/missing.conf", dir);

        ck_assert_int_eq(config_load(missing, &c, &error), -ENOENT);
        ck_assert_ptr_null(c);
        _cleanup_free_ char *want_missing = strdup_printf("%s: No such file or directory", missing);
        ck_assert_str_eq(error, want_missing);
        error = (free(error), NULL);

        ck_assert_int_eq(config_load(dir, &c, &error), -EISDIR);
        ck_assert_ptr_null(c);
        error = (free(error), NULL);

        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("role: single\nk0s:\n  binary: nope\n", f);
        fclose(f);
        ck_assert_int_eq(config_load(path, &c, &error), -EINVAL);
        _cleanup_free_ char *want = strdup_printf("%s:3:11: 'k0s.binary' must be an absolute "
                                                  "path, not 'nope'",
                                                  path);
        ck_assert_str_eq(error, want);
        error = (free(error), NULL);

        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("role: single\n", f);
        fclose(f);
        ck_assert_int_eq(config_load(path, &c, NULL), 0);
        ck_assert_int_eq(c->role, K0S_ROLE_SINGLE);
        ck_assert_str_eq(c->path, path);

        ck_assert_int_eq(config_load(NULL, &c, NULL), -EINVAL);
        ck_assert_int_eq(config_parse(NULL, "x", &c, NULL), -EINVAL);

        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_no_filename) {
        _cleanup_free_ char *error = NULL;
        AgentConfig *c = NULL;
        FILE *f = fmemopen((void *) "role: x\n", 8, "r");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(config_parse(f, NULL, &c, &error), -EINVAL);
        fclose(f);
        ck_assert_str_eq(error,
                         "<config>:1:7: invalid role 'x': expected worker, controller, "
                         "controller+worker or single");
}
END_TEST

/* Every duration key: its documented bounds, refused just outside with the bound named. */
static const ErrorCase bound_cases[] = {
        { "timing:\n  stop_timeout: 5124095576h\n",
          "t.yaml:2:17: 'timing.stop_timeout' must be between 1s and 1h, not '5124095576h'" },
        { "timing:\n  stop_timeout: 999ms\n",
          "t.yaml:2:17: 'timing.stop_timeout' must be between 1s and 1h, not '999ms'" },
        { "timing:\n  stop_timeout: 1h1us\n",
          "t.yaml:2:17: 'timing.stop_timeout' must be between 1s and 1h, not '1h1us'" },
        { "timing:\n  settle: 61m\n",
          "t.yaml:2:11: 'timing.settle' must be between 0 and 1h, not '61m'" },
        { "timing:\n  stable: 0\n",
          "t.yaml:2:11: 'timing.stable' must be between 1s and 24h, not '0'" },
        { "timing:\n  stable: 25h\n",
          "t.yaml:2:11: 'timing.stable' must be between 1s and 24h, not '25h'" },
        { "timing:\n  restart_backoff: [2h, 3h]\n",
          "t.yaml:2:21: 'timing.restart_backoff[0]' must be between 0 and 1h, not '2h'" },
        { "timing:\n  restart_backoff: [0s, 0s]\n",
          "t.yaml:2:25: 'timing.restart_backoff[1]' must be between 250ms and 24h, not '0s'" },
        { "timing:\n  restart_backoff: [1s, 25h]\n",
          "t.yaml:2:25: 'timing.restart_backoff[1]' must be between 250ms and 24h, not '25h'" },
        { "health:\n  interval: 1us\n",
          "t.yaml:2:13: 'health.interval' must be 0 (off) or between 1s and 1h, not '1us'" },
        { "health:\n  interval: 2h\n",
          "t.yaml:2:13: 'health.interval' must be 0 (off) or between 1s and 1h, not '2h'" },
        { "health:\n  timeout: 99ms\n",
          "t.yaml:2:12: 'health.timeout' must be between 100ms and 1m, not '99ms'" },
        { "health:\n  timeout: 1m1s\n",
          "t.yaml:2:12: 'health.timeout' must be between 100ms and 1m, not '1m1s'" },
        { "health:\n  interval: 5s\n  timeout: 5s\n",
          "t.yaml:3:12: 'health.timeout' (5s) must be shorter than 'health.interval' (5s)" },
        { "tailscale:\n  peer_refresh: 1us\n",
          "t.yaml:2:17: 'tailscale.peer_refresh' must be 0 (off) or between 1s and 1h, not '1us'" },
        { "tailscale:\n  peer_refresh: 90m\n",
          "t.yaml:2:17: 'tailscale.peer_refresh' must be 0 (off) or between 1s and 1h, not "
          "'90m'" },
        { "clock:\n  timeout: 0\n",
          "t.yaml:2:12: 'clock.timeout' must be between 1s and 1h, not '0'" },
        { "clock:\n  timeout: 2h\n",
          "t.yaml:2:12: 'clock.timeout' must be between 1s and 1h, not '2h'" },
        { "failover:\n  target: 19s\n",
          "t.yaml:2:11: 'failover.target' must be 0 (off) or between 20s and 10m, not '19s'" },
        { "failover:\n  target: 10m1s\n",
          "t.yaml:2:11: 'failover.target' must be 0 (off) or between 20s and 10m, not '10m1s'" },
};

START_TEST(test_duration_bounds) {
        const ErrorCase *t = &bound_cases[_i];
        _cleanup_free_ char *error = parse_error(t->yaml, -EINVAL);

        ck_assert_msg(streq(error, t->error), "case %d:\n%s\nwant: %s\ngot:  %s", _i, t->yaml,
                      t->error, error);
}
END_TEST

/* The edges themselves are accepted, and 0 means off where documented. */
START_TEST(test_duration_edges) {
        static const char yaml[] = "tailscale:\n  peer_refresh: 0\n"
                                   "health:\n  interval: 1h\n  timeout: 1m\n"
                                   "timing:\n  settle: 0\n  restart_backoff: [0, 250ms]\n"
                                   "  stable: 24h\n  stop_timeout: 1s\n"
                                   "clock:\n  timeout: 1h\n"
                                   "failover:\n  target: 10m\n";
        _cleanup_(config_freep) AgentConfig *c = NULL, *c2 = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_msg(parse(yaml, &c, &error) == 0, "%s", error);
        ck_assert_uint_eq(c->peer_refresh_usec, 0);
        ck_assert_uint_eq(c->health_interval_usec, SEC(3600));
        ck_assert_uint_eq(c->health_timeout_usec, SEC(60));
        ck_assert_uint_eq(c->settle_usec, 0);
        ck_assert_uint_eq(c->restart_backoff_min_usec, 0);
        ck_assert_uint_eq(c->restart_backoff_max_usec, 250 * USEC_PER_MSEC);
        ck_assert_uint_eq(c->stable_usec, SEC(86400));
        ck_assert_uint_eq(c->stop_timeout_usec, SEC(1));
        ck_assert_uint_eq(c->clock_timeout_usec, SEC(3600));
        ck_assert_uint_eq(c->failover_target_usec, SEC(600));

        ck_assert_msg(parse("failover:\n  target: 20s\nhealth:\n  interval: 1s\n"
                            "timing:\n  restart_backoff: [1h, 24h]\n",
                            &c2, &error) == 0,
                      "%s", error);
        ck_assert_uint_eq(c2->failover_target_usec, SEC(20));
        ck_assert_uint_eq(c2->restart_backoff_min_usec, SEC(3600));
}
END_TEST

/* Without an explicit timeout, a short interval gets half of it; 0 leaves the default. */
START_TEST(test_health_timeout_default) {
        static const struct {
                const char *yaml;
                uint64_t interval, timeout;
        } cases[] = {
                { "health:\n  interval: 1s\n", SEC(1), 500 * USEC_PER_MSEC },
                { "health:\n  interval: 4s\n", SEC(4), SEC(2) },
                { "health:\n  interval: 10s\n", SEC(10), SEC(5) },
                { "health:\n  interval: 30s\n", SEC(30), SEC(5) },
                { "health:\n  interval: 0\n", 0, SEC(5) },
                { "health:\n  interval: 0\n  timeout: 1m\n", 0, SEC(60) },
                { "health:\n  interval: 2s\n  timeout: 1999ms\n", SEC(2), 1999 * USEC_PER_MSEC },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *error = NULL;

                ck_assert_msg(parse(cases[i].yaml, &c, &error) == 0, "%s", error);
                ck_assert_uint_eq(c->health_interval_usec, cases[i].interval);
                ck_assert_uint_eq(c->health_timeout_usec, cases[i].timeout);
        }
}
END_TEST

static char *repeat(char ch, size_t n) {
        char *s = malloc(n + 1);

        ck_assert_ptr_nonnull(s);
        memset(s, ch, n);
        s[n] = 0;
        return s;
}

/* Socket paths must fit sun_path (108 bytes with the NUL). */
START_TEST(test_socket_paths) {
        static const struct {
                const char *section, *key;
        } keys[] = { { "tailscale", "socket" }, { "k0s", "status_socket" } };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *ok_path = repeat('a', 107), *bad_path = repeat('b', 108);
                _cleanup_free_ char *ok = NULL, *bad = NULL, *error = NULL, *want = NULL;
                _cleanup_(config_freep) AgentConfig *c = NULL;

                ok_path[0] = bad_path[0] = '/';
                ok = strdup_printf("%s:\n  %s: %s\n", keys[i].section, keys[i].key, ok_path);
                bad = strdup_printf("%s:\n  %s: %s\n", keys[i].section, keys[i].key, bad_path);
                ck_assert_msg(parse(ok, &c, &error) == 0, "%s", error);
                error = parse_error(bad, -EINVAL);
                want = strdup_printf("t.yaml:2:%zu: '%s.%s' is 108 bytes long; a unix socket path "
                                     "must fit sockaddr_un.sun_path (at most 107 bytes)",
                                     strlen(keys[i].key) + 5, keys[i].section, keys[i].key);
                ck_assert_str_eq(error, want);
        }
}
END_TEST

/* CONFIG_MAX_REGISTRIES and CONFIG_MAX_ENDPOINTS: the first entry over the limit is named. */
START_TEST(test_limits) {
        StrBuf b = {};
        _cleanup_free_ char *error = NULL, *want = NULL;
        _cleanup_(config_freep) AgentConfig *c = NULL;

        ck_assert_int_eq(strbuf_append(&b, "registries:\n"), 0);
        for (size_t i = 0; i < CONFIG_MAX_REGISTRIES; i++) {
                _cleanup_free_ char *line = strdup_printf("  - {name: r%zu, endpoints: "
                                                          "[{url: http://r}]}\n",
                                                          i);
                ck_assert_int_eq(strbuf_append(&b, line), 0);
        }
        ck_assert_msg(parse(b.s, &c, &error) == 0, "%s", error);
        ck_assert_uint_eq(c->n_registries, CONFIG_MAX_REGISTRIES);
        ck_assert_int_eq(strbuf_append(&b, "  - {name: over, endpoints: [{url: http://r}]}\n"), 0);
        error = parse_error(b.s, -EINVAL);
        want = strdup_printf("t.yaml:%d:5: 'registries' has more than %d entries "
                             "(CONFIG_MAX_REGISTRIES)",
                             CONFIG_MAX_REGISTRIES + 2, CONFIG_MAX_REGISTRIES);
        ck_assert_str_eq(error, want);
        strbuf_done(&b);

        ck_assert_int_eq(strbuf_append(&b, "registries:\n  - name: r\n    endpoints:\n"), 0);
        for (size_t i = 0; i <= CONFIG_MAX_ENDPOINTS; i++)
                ck_assert_int_eq(strbuf_append(&b, "      - url: http://r\n"), 0);
        error = mfree(error);
        want = mfree(want);
        error = parse_error(b.s, -EINVAL);
        want = strdup_printf("t.yaml:%d:9: 'registries[0].endpoints' has more than %d entries "
                             "(CONFIG_MAX_ENDPOINTS)",
                             CONFIG_MAX_ENDPOINTS + 4, CONFIG_MAX_ENDPOINTS);
        ck_assert_str_eq(error, want);
        strbuf_done(&b);
}
END_TEST

/* k0s.args that would undo the agent are refused at the item; others pass. */
START_TEST(test_k0s_args) {
        static const struct {
                const char *args, *flag;
                unsigned line, column;
        } bad[] = {
                { "[--config=/x]", "--config", 2, 10 },
                { "[--debug, --config, /x]", "--config", 2, 19 },
                { "[-c, /x]", "-c", 2, 10 },
                { "[-c/x]", "-c", 2, 10 },
                { "[\"-c=/x\"]", "-c", 2, 10 },
                { "[--token-file=/t]", "--token-file", 2, 10 },
                { "\n    - --labels=a=b\n    - --token-file\n    - /t\n", "--token-file", 4, 7 },
                { "[--enable-worker]", "--enable-worker", 2, 10 },
                { "[--enable-worker=false]", "--enable-worker", 2, 10 },
                { "[--single=true]", "--single", 2, 10 },
                { "[--single]", "--single", 2, 10 },
        };
        static const char *const good[] = {
                "[--no-taints]",
                "[--kubelet-extra-args=--a=b, --kubelet-extra-args=--c=d]",
                "[--kubelet-extra-args, --max-pods=50]",
                "[--config-file-ish, --cri-socket=remote:/x, --labels=c=d, --singleton]",
                "[--data-dir=/var/lib/k0s, --profile=x, --taints=a=b:NoSchedule]",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *yaml = NULL, *error = NULL, *prefix = NULL;

                yaml = strdup_printf("k0s:\n  args: %s\n", bad[i].args);
                error = parse_error(yaml, -EINVAL);
                prefix = strdup_printf("t.yaml:%u:%u: 'k0s.args[", bad[i].line, bad[i].column);
                ck_assert_msg(startswith(error, prefix), "%s: %s", bad[i].args, error);
                ck_assert_msg(strstr(error, bad[i].flag) && strstr(error, "would undo the agent"),
                              "%s: %s", bad[i].args, error);
        }
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *yaml = NULL, *error = NULL;

                yaml = strdup_printf("role: controller+worker\nk0s:\n  args: %s\n", good[i]);
                ck_assert_msg(parse(yaml, &c, &error) == 0, "%s: %s", good[i], error);
        }

        _cleanup_free_ char *e = parse_error("k0s:\n  args: [--debug, --token-file=/t]\n", -EINVAL);
        ck_assert_str_eq(e,
                         "t.yaml:2:19: 'k0s.args[1]' sets --token-file, which would undo the "
                         "agent: the agent passes --token-file=<k0s.token_file>; set "
                         "'k0s.token_file' instead");
}
END_TEST

/* K0S_TOKEN needs token_file "" or null; both together are refused at the env key. */
START_TEST(test_k0s_token) {
        static const char *const alone[] = {
                "k0s:\n  token_file: \"\"\n  env:\n    K0S_TOKEN: abc\n",
                "k0s:\n  token_file:\n  env:\n    K0S_TOKEN: abc\n",
                "k0s:\n  token_file: ~\n  env: {K0S_TOKEN: abc}\n",
        };
        _cleanup_free_ char *error = NULL;

        for (size_t i = 0; i < ELEMENTSOF(alone); i++) {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *err = NULL;

                ck_assert_msg(parse(alone[i], &c, &err) == 0, "%s", err);
                ck_assert_ptr_null(c->k0s_token_file);
                ck_assert_str_eq(c->k0s_env[0], "K0S_TOKEN=abc");
        }
        error = parse_error("k0s:\n  env:\n    A: b\n    K0S_TOKEN: abc\n", -EINVAL);
        ck_assert_str_eq(error,
                         "t.yaml:4:5: 'k0s.env.K0S_TOKEN' together with the token file "
                         "'/etc/k0s/k0stoken': use one; for K0S_TOKEN alone set "
                         "'k0s.token_file: \"\"'");
        /* a name that only starts like it is not it */
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *err = NULL;
        ck_assert_msg(parse("k0s:\n  env: {K0S_TOKENX: a}\n", &c, &err) == 0, "%s", err);
}
END_TEST

START_TEST(test_peer_endpoints) {
        static const char yaml[] = "registries:\n"
                                   "  - name: registry.example.org:5000\n"
                                   "    endpoints:\n"
                                   "      - peer: registry-manila\n"
                                   "        port: 5000\n"
                                   "        scheme: http\n"
                                   "      - peer: registry-cebu.tail1234.ts.net.\n"
                                   "        port: 5443\n"
                                   "        ca: /etc/ca.pem\n"
                                   "      - url: https://registry.example.org:5000\n";
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *error = NULL;
        const Registry *r;

        ck_assert_msg(parse(yaml, &c, &error) == 0, "%s", error);
        r = &c->registries[0];
        ck_assert_uint_eq(r->n_endpoints, 3);
        ck_assert_ptr_null(r->endpoints[0].url);
        ck_assert_str_eq(r->endpoints[0].peer, "registry-manila");
        ck_assert_uint_eq(r->endpoints[0].port, 5000);
        ck_assert_str_eq(r->endpoints[0].scheme, "http");
        ck_assert_str_eq(r->endpoints[1].peer, "registry-cebu.tail1234.ts.net.");
        ck_assert_uint_eq(r->endpoints[1].port, 5443);
        ck_assert_str_eq(r->endpoints[1].scheme, "https"); /* the default */
        ck_assert_str_eq(r->endpoints[1].ca, "/etc/ca.pem");
        ck_assert_str_eq(r->endpoints[2].url, "https://registry.example.org:5000");
        ck_assert_ptr_null(r->endpoints[2].peer);
        ck_assert_ptr_null(r->endpoints[2].scheme);
        ck_assert_uint_eq(r->endpoints[2].port, 0);
}
END_TEST

#define EP "registries:\n  - name: r\n    endpoints:\n      - "
static const ErrorCase peer_cases[] = {
        { EP "skip_verify: false\n",
          "t.yaml:4:9: endpoint of registry 'r' has neither 'url' nor 'peer'" },
        { EP "url: http://a\n        peer: a\n        port: 1\n",
          "t.yaml:5:9: endpoint of registry 'r' has both 'url' and 'peer': an endpoint is one or "
          "the other" },
        { EP "peer: a\n",
          "t.yaml:4:9: peer endpoint 'a' of registry 'r' needs a 'port' (1-65535)" },
        { EP "url: http://a\n        port: 80\n",
          "t.yaml:5:9: 'port' belongs to a 'peer:' endpoint; a 'url:' endpoint carries its scheme "
          "and port in the URL" },
        { EP "url: http://a\n        scheme: http\n",
          "t.yaml:5:9: 'scheme' belongs to a 'peer:' endpoint; a 'url:' endpoint carries its "
          "scheme and port in the URL" },
        { EP "peer: a\n        port: 0\n",
          "t.yaml:5:15: 'registries[0].endpoints[0].port' must be a port between 1 and 65535, not "
          "'0'" },
        { EP "peer: a\n        port: 65536\n",
          "t.yaml:5:15: 'registries[0].endpoints[0].port' must be a port between 1 and 65535, not "
          "'65536'" },
        { EP "peer: a\n        port: [1]\n",
          "t.yaml:5:15: 'registries[0].endpoints[0].port' must be an integer, not a sequence" },
        { EP "peer: a\n        port: 1\n        scheme: ftp\n",
          "t.yaml:6:17: 'registries[0].endpoints[0].scheme' must be http or https, not 'ftp'" },
        { EP "peer: a\n        port: 1\n        scheme: HTTP\n",
          "t.yaml:6:17: 'registries[0].endpoints[0].scheme' must be http or https, not 'HTTP'" },
        { EP "peer: 100.64.0.7\n        port: 1\n",
          "t.yaml:4:15: invalid peer '100.64.0.7' for 'registries[0].endpoints[0].peer': expected "
          "a tailnet peer's HostName or MagicDNS name (DNS labels of A-Z, a-z, 0-9 and '-'); an "
          "address goes into 'url:'" },
        { EP "peer: reg_istry\n        port: 1\n",
          "t.yaml:4:15: invalid peer 'reg_istry' for 'registries[0].endpoints[0].peer': expected "
          "a tailnet peer's HostName or MagicDNS name (DNS labels of A-Z, a-z, 0-9 and '-'); an "
          "address goes into 'url:'" },
        { EP "peer: a..b\n        port: 1\n",
          "t.yaml:4:15: invalid peer 'a..b' for 'registries[0].endpoints[0].peer': expected a "
          "tailnet peer's HostName or MagicDNS name (DNS labels of A-Z, a-z, 0-9 and '-'); an "
          "address goes into 'url:'" },
        { EP "peer: a\n        port: 5000\n        scheme: http\n        skip_verify: true\n",
          "t.yaml:7:22: 'skip_verify: true' on the http:// endpoint 'a' makes containerd try "
          "HTTPS first; drop it" },
        { EP "peer: a\n        port: 5000\n        scheme: http\n        ca: /ca.pem\n",
          "t.yaml:7:13: 'ca' on the http:// endpoint 'a' makes containerd try HTTPS first; drop "
          "it" },
};
#undef EP

START_TEST(test_peer_errors) {
        const ErrorCase *t = &peer_cases[_i];
        _cleanup_free_ char *error = parse_error(t->yaml, -EINVAL);

        ck_assert_msg(streq(error, t->error), "case %d:\n%s\nwant: %s\ngot:  %s", _i, t->yaml,
                      t->error, error);
}
END_TEST

/* The wave-2 keys: parsed, validated, defaults. */
START_TEST(test_new_keys) {
        static const char yaml[] = "persist_dir: /srv/p\n"
                                   "k0s:\n  ipv6: true\n  accept_address: 100.101.102.103\n"
                                   "calico:\n  nftables_mark_mask: \"0xff000000\"\n"
                                   "failover:\n  target: 1m\n"
                                   "clock:\n  wait_sync: false\n  timeout: 30s\n"
                                   "metrics:\n  textfile: /srv/m/k.prom\n"
                                   "doctor:\n  backup_dir: /srv/backup\n";
        _cleanup_(config_freep) AgentConfig *c = NULL, *d = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_int_eq(config_new_default(&d), 0);
        ck_assert_str_eq(d->persist_dir, "/var/lib/k0s-tsagent");
        ck_assert(!d->k0s_ipv6);
        ck_assert_ptr_null(d->k0s_accept_address);
        ck_assert_str_eq(d->calico_nftables_mark_mask, "0xff00ff00");
        ck_assert_uint_eq(d->failover_target_usec, 0);
        ck_assert_int_eq(d->clock_wait_sync, CLOCK_WAIT_SYNC_AUTO);
        ck_assert_uint_eq(d->clock_timeout_usec, SEC(120));
        ck_assert_str_eq(d->metrics_textfile, "/var/lib/prometheus/node-exporter/k0s-tsagent.prom");
        ck_assert_ptr_null(d->doctor_backup_dir);

        ck_assert_msg(parse(yaml, &c, &error) == 0, "%s", error);
        ck_assert_str_eq(c->persist_dir, "/srv/p");
        ck_assert(c->k0s_ipv6);
        ck_assert_str_eq(c->k0s_accept_address, "100.101.102.103");
        ck_assert_str_eq(c->calico_nftables_mark_mask, "0xff000000");
        ck_assert_uint_eq(c->failover_target_usec, SEC(60));
        ck_assert_int_eq(c->clock_wait_sync, CLOCK_WAIT_SYNC_NO);
        ck_assert_uint_eq(c->clock_timeout_usec, SEC(30));
        ck_assert_str_eq(c->metrics_textfile, "/srv/m/k.prom");
        ck_assert_str_eq(c->doctor_backup_dir, "/srv/backup");

        /* "" and null turn the optional ones off */
        static const char *const off[] = {
                "metrics:\n  textfile: \"\"\ndoctor:\n  backup_dir: ''\n"
                "k0s:\n  accept_address: ''\n",
                "metrics:\n  textfile:\ndoctor:\n  backup_dir: ~\nk0s:\n  accept_address: null\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(off); i++) {
                _cleanup_(config_freep) AgentConfig *o = NULL;
                _cleanup_free_ char *err = NULL;

                ck_assert_msg(parse(off[i], &o, &err) == 0, "%s", err);
                ck_assert_ptr_null(o->metrics_textfile);
                ck_assert_ptr_null(o->doctor_backup_dir);
                ck_assert_ptr_null(o->k0s_accept_address);
        }
}
END_TEST

START_TEST(test_clock_wait_sync) {
        static const struct {
                const char *word;
                ClockWaitSync w;
        } words[] = {
                { "auto", CLOCK_WAIT_SYNC_AUTO },   { "true", CLOCK_WAIT_SYNC_YES },
                { "yes", CLOCK_WAIT_SYNC_YES },     { "True", CLOCK_WAIT_SYNC_YES },
                { "false", CLOCK_WAIT_SYNC_NO },    { "no", CLOCK_WAIT_SYNC_NO },
                { "'auto'", CLOCK_WAIT_SYNC_AUTO },
        };
        static const char *const bad[] = { "Auto", "maybe", "1", "on", "~" };

        for (size_t i = 0; i < ELEMENTSOF(words); i++) {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *yaml = NULL, *error = NULL;

                yaml = strdup_printf("clock:\n  wait_sync: %s\n", words[i].word);
                ck_assert_msg(parse(yaml, &c, &error) == 0, "%s: %s", words[i].word, error);
                ck_assert_int_eq(c->clock_wait_sync, words[i].w);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *yaml = NULL, *error = NULL, *want = NULL;

                yaml = strdup_printf("clock:\n  wait_sync: %s\n", bad[i]);
                want = strdup_printf("t.yaml:2:14: 'clock.wait_sync' must be auto, true or false "
                                     "(or yes/no), not '%s'",
                                     bad[i]);
                error = parse_error(yaml, -EINVAL);
                ck_assert_str_eq(error, want);
        }
        ck_assert_str_eq(clock_wait_sync_to_string(CLOCK_WAIT_SYNC_AUTO), "auto");
        ck_assert_int_eq(clock_wait_sync_from_string("false"), CLOCK_WAIT_SYNC_NO);
        ck_assert_int_eq(clock_wait_sync_from_string("x"), _CLOCK_WAIT_SYNC_INVALID);
        ck_assert_ptr_null(clock_wait_sync_to_string(_CLOCK_WAIT_SYNC_MAX));
}
END_TEST

START_TEST(test_accept_address) {
        static const char *const bad[] = { "10.0.0.1",     "100.63.255.255",    "100.128.0.1",
                                           "100.115.92.1", "fd7a:115c:a1e0::1", "100.64.0.1/32",
                                           "host" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *yaml = NULL, *error = NULL, *want = NULL;

                yaml = strdup_printf("k0s:\n  accept_address: \"%s\"\n", bad[i]);
                want = strdup_printf("t.yaml:2:19: 'k0s.accept_address' must be a tailnet IPv4 "
                                     "address (100.64.0.0/10), not '%s'",
                                     bad[i]);
                error = parse_error(yaml, -EINVAL);
                ck_assert_str_eq(error, want);
        }
}
END_TEST

/* The ownership rule on made-up stats, then config_load_full() on a real file both ways. */
START_TEST(test_owner) {
        static const struct {
                uid_t uid;
                mode_t mode;
                const char *reason; /* NULL: accepted */
        } cases[] = {
                { 0, S_IFREG | 0644, NULL },
                { 0, S_IFREG | 0600, NULL },
                { 0, S_IFREG | 0444, NULL },
                { 0, S_IFREG | 0664, "group-writable" },
                { 0, S_IFREG | 0646, "world-writable" },
                { 0, S_IFREG | 0666, "group- and world-writable" },
                { 1000, S_IFREG | 0644, "owned by uid 1000, not root" },
                { 1000, S_IFREG | 0666,
                  "owned by uid 1000, not root and group- and world-writable" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct stat st = { .st_uid = cases[i].uid, .st_mode = cases[i].mode };
                _cleanup_free_ char *error = NULL, *want = NULL;
                int r = config_check_owner(&st, "/etc/k.conf", &error);

                if (!cases[i].reason) {
                        ck_assert_int_eq(r, 0);
                        ck_assert_ptr_null(error);
                        continue;
                }
                ck_assert_int_eq(r, -EPERM);
                want = strdup_printf("/etc/k.conf: refusing a config file that is %s: it names "
                                     "programs the agent runs as root; fix: chown root:root "
                                     "/etc/k.conf; chmod go-w /etc/k.conf",
                                     cases[i].reason);
                ck_assert_str_eq(error, want);
        }

        _cleanup_free_ char *dir =
                strdup_printf("%s/test-config-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        _cleanup_free_ char *path = strdup_printf("%s/k.conf", dir);
        FILE *f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("role: single\n", f);
        fclose(f);
        ck_assert_int_eq(chmod(path, 0666), 0);
        {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *error = NULL;

                ck_assert_int_eq(config_load_full(path, CONFIG_LOAD_STRICT_OWNER, &c, &error),
                                 -EPERM);
                ck_assert_ptr_null(c);
                ck_assert_msg(strstr(error, "world-writable") && strstr(error, "chmod go-w"), "%s",
                              error);
                /* not strict: the same file loads */
                ck_assert_int_eq(config_load_full(path, 0, &c, NULL), 0);
                ck_assert_int_eq(c->role, K0S_ROLE_SINGLE);
        }
        ck_assert_int_eq(chmod(path, 0644), 0);
        {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_free_ char *error = NULL;
                int r = config_load_full(path, CONFIG_LOAD_STRICT_OWNER, &c, &error);

                /* owned by whoever runs the test: accepted only for root */
                if (geteuid() == 0)
                        ck_assert_msg(r == 0, "%s", error);
                else {
                        ck_assert_int_eq(r, -EPERM);
                        ck_assert_ptr_nonnull(strstr(error, "not root"));
                }
                /* config_load() is strict exactly as root */
                config_free(c);
                c = NULL;
                ck_assert_int_eq(chmod(path, 0664), 0);
                ck_assert_int_eq(config_load(path, &c, NULL), geteuid() == 0 ? -EPERM : 0);
        }
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static bool strv_has_substring(char **l, const char *s) {
        for (; l && *l; l++)
                if (strstr(*l, s))
                        return true;
        return false;
}

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        fputs(content, f);
        fclose(f);
}

START_TEST(test_lint) {
        _cleanup_free_ char *dir =
                strdup_printf("%s/test-config-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        _cleanup_free_ char *base = strdup_printf("%s/k0s.yaml", dir);
        _cleanup_free_ char *token = strdup_printf("%s/token", dir);
        static const struct {
                const char *base; /* NULL: no file */
                const char *role;
                bool warned;
        } cases[] = {
                { "spec:\n  network:\n    provider: calico\n", "controller", true },
                { "spec:\n  network:\n    dualStack:\n      enabled: false\n", "single", true },
                { "spec:\n  network:\n    dualStack:\n      enabled: true\n", "controller", false },
                { "spec:\n  network:\n    dualStack: {enabled: yes, IPv6podCIDR: fd00::/108}\n",
                  "controller+worker", false },
                { "a: &x 1\nb: *x\n", "controller", true }, /* not readable here: say so */
                { NULL, "controller", true },
                { NULL, "worker", false },
                { "spec: {}\n", "worker", true },
        };

        write_file(token, "t\n");
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_strv_free_ char **w = NULL;
                _cleanup_free_ char *yaml = NULL, *error = NULL;

                (void) unlink(base);
                if (cases[i].base)
                        write_file(base, cases[i].base);
                yaml = strdup_printf("role: %s\nk0s:\n  ipv6: true\n  binary: /bin/sh\n"
                                     "  base_config: %s\n  token_file: %s\n",
                                     cases[i].role, base, token);
                ck_assert_msg(parse(yaml, &c, &error) == 0, "%s", error);
                ck_assert_int_eq(config_lint(c, &w), 0);
                ck_assert_ptr_nonnull(w);
                ck_assert_msg(strv_has_substring(w, "k0s.ipv6: true") == cases[i].warned,
                              "case %zu: %s", i, w[0] ?: "(none)");
                ck_assert_uint_eq(strv_length(w), cases[i].warned ? 1 : 0);
                if (cases[i].warned)
                        ck_assert(startswith(w[0], "t.yaml: k0s.ipv6: true, but the base config"));
        }

        /* the other lints, and a config with nothing to say */
        {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_strv_free_ char **w = NULL;
                _cleanup_free_ char *yaml = NULL, *error = NULL;

                yaml = strdup_printf(
                        "role: worker\nk0s:\n  binary: %s/nope\n  token_file: %s/nope\n"
                        "  accept_address: 100.64.0.9\n"
                        "registries:\n  - name: r\n    endpoints:\n"
                        "      - {url: https://r, skip_verify: true}\n",
                        dir, dir);
                ck_assert_msg(parse(yaml, &c, &error) == 0, "%s", error);
                ck_assert_int_eq(config_lint(c, &w), 0);
                ck_assert_uint_eq(strv_length(w), 4);
                ck_assert(strv_has_substring(w, "is not an executable file"));
                ck_assert(strv_has_substring(w, "does not exist; the agent does not start"));
                ck_assert(strv_has_substring(w, "accept_address has no effect for role worker"));
                ck_assert(strv_has_substring(w, "skip_verify: true turns off TLS verification"));
        }
        {
                _cleanup_(config_freep) AgentConfig *c = NULL;
                _cleanup_strv_free_ char **w = NULL;
                _cleanup_free_ char *yaml = NULL, *error = NULL;

                yaml = strdup_printf("role: worker\nk0s:\n  binary: /bin/sh\n  token_file: %s\n",
                                     token);
                ck_assert_msg(parse(yaml, &c, &error) == 0, "%s", error);
                ck_assert_int_eq(config_lint(c, &w), 0);
                ck_assert_msg(strv_length(w) == 0, "%s", w[0]);
        }
        ck_assert_int_eq(config_lint(NULL, NULL), -EINVAL);
        (void) unlink(base);
        ck_assert_int_eq(unlink(token), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_full_example);
        tcase_add_test(tc, test_design_block);
        tcase_add_test(tc, test_contrib_example);
        tcase_add_test(tc, test_data_file);
        tcase_add_loop_test(tc, test_errors, 0, (int) ELEMENTSOF(error_cases));
        tcase_add_test(tc, test_error_null_ret_error);
        tcase_add_test(tc, test_nesting_limit);
        tcase_add_test(tc, test_many_env_keys);
        tcase_add_test(tc, test_paths);
        tcase_add_test(tc, test_optional_ca);
        tcase_add_test(tc, test_booleans);
        tcase_add_test(tc, test_values_in_range);
        tcase_add_test(tc, test_roles);
        tcase_add_test(tc, test_durations);
        tcase_add_test(tc, test_format_duration);
        tcase_add_test(tc, test_registry_names);
        tcase_add_test(tc, test_registry_name_length);
        tcase_add_test(tc, test_free_null);
        tcase_add_test(tc, test_too_big);
        tcase_add_test(tc, test_load);
        tcase_add_test(tc, test_no_filename);
        tcase_add_loop_test(tc, test_duration_bounds, 0, (int) ELEMENTSOF(bound_cases));
        tcase_add_test(tc, test_duration_edges);
        tcase_add_test(tc, test_health_timeout_default);
        tcase_add_test(tc, test_socket_paths);
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_k0s_args);
        tcase_add_test(tc, test_k0s_token);
        tcase_add_test(tc, test_peer_endpoints);
        tcase_add_loop_test(tc, test_peer_errors, 0, (int) ELEMENTSOF(peer_cases));
        tcase_add_test(tc, test_new_keys);
        tcase_add_test(tc, test_clock_wait_sync);
        tcase_add_test(tc, test_accept_address);
        tcase_add_test(tc, test_owner);
        tcase_add_test(tc, test_lint);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(config_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
