/* SPDX-License-Identifier: MIT */
/* Unit tests for common/tailnet-status.c: the LocalAPI /status and watch-ipn-bus decoders. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"
#include "tailnet-status.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(TailnetStatus *, tailnet_status_free);
#define _cleanup_status_ _cleanup_(tailnet_status_freep)

/* Reads $ENV_VAR/name whole; the test fails if the variable or the file is missing. */
static char *read_test_file(const char *env_var, const char *name, size_t *ret_len) {
        const char *dir = getenv(env_var);
        _cleanup_free_ char *path = NULL;
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        ck_assert_msg(dir, "%s is not set (run the tests through meson)", env_var);
        path = strdup_printf("%s/%s", dir, name);
        ck_assert_ptr_nonnull(path);
        f = fopen(path, "re");
        ck_assert_msg(f, "cannot open %s", path);
        ck_assert_int_eq(getdelim(&buf, &len, '\0', f) > 0, 1);
        len = strlen(buf);
        fclose(f);
        *ret_len = len;
        return buf;
}

static int parse_file(const char *env_var, const char *name, TailnetStatus **ret) {
        _cleanup_free_ char *json = NULL;
        size_t len;

        json = read_test_file(env_var, name, &len);
        return tailnet_status_parse(json, len, ret);
}

static int parse_str(const char *json, TailnetStatus **ret) {
        return tailnet_status_parse(json, strlen(json), ret);
}

START_TEST(test_backend_state_strings) {
        for (BackendState s = 0; s < _BACKEND_STATE_MAX; s++) {
                const char *name = backend_state_to_string(s);
                ck_assert_ptr_nonnull(name);
                ck_assert_int_eq(backend_state_from_string(name), s);
        }
        ck_assert_str_eq(backend_state_to_string(BACKEND_RUNNING), "Running");
        ck_assert_str_eq(backend_state_to_string(BACKEND_NEEDS_MACHINE_AUTH), "NeedsMachineAuth");
        ck_assert_int_eq(BACKEND_RUNNING, 6); /* ipn.State on the bus */
        ck_assert_ptr_null(backend_state_to_string(_BACKEND_STATE_MAX));
        ck_assert_ptr_null(backend_state_to_string(_BACKEND_STATE_INVALID));
        ck_assert_int_eq(backend_state_from_string("running"), _BACKEND_STATE_INVALID);
        ck_assert_int_eq(backend_state_from_string(""), _BACKEND_STATE_INVALID);
        ck_assert_int_eq(backend_state_from_string(NULL), _BACKEND_STATE_INVALID);
}
END_TEST

START_TEST(test_status_sample) {
        _cleanup_status_ TailnetStatus *s = NULL;

        ck_assert_int_eq(parse_file("SAMPLES_DIR", "tailscale-status-sample.json", &s), 0);
        ck_assert_str_eq(s->version, "1.102.3-t9c1f2a3b4-g5d6e7f8a9");
        ck_assert(s->tun);
        ck_assert_int_eq(s->backend_state, BACKEND_RUNNING);
        ck_assert_ptr_null(s->auth_url); /* "" means none */
        ck_assert_str_eq(s->ipv4, "100.101.102.103");
        ck_assert_str_eq(s->ipv6, "fd7a:115c:a1e0::6a01:6667");
        ck_assert(s->self_online);
        ck_assert_str_eq(s->dns_name, "k0s-worker-1.tail1234.ts.net");
        ck_assert_str_eq(s->host_name, "k0s-worker-1");
        ck_assert_str_eq(s->magic_dns_suffix, "tail1234.ts.net");
        ck_assert_ptr_nonnull(s->health);
        ck_assert_ptr_null(s->health[0]);

        ck_assert_uint_eq(s->n_peers, 2);
        ck_assert_str_eq(s->peers[0].dns_name, "k0s-ctrl-1.tail1234.ts.net");
        ck_assert_str_eq(s->peers[0].host_name, "k0s-ctrl-1");
        ck_assert_str_eq(s->peers[0].ipv4, "100.88.1.2");
        ck_assert_str_eq(s->peers[0].ipv6, "fd7a:115c:a1e0::a101:102");
        ck_assert(s->peers[0].online);
        ck_assert_str_eq(s->peers[1].dns_name, "k0s-worker-2.tail1234.ts.net");
        ck_assert_str_eq(s->peers[1].host_name, "k0s-worker-2");
        ck_assert_str_eq(s->peers[1].ipv4, "100.77.3.4");
        ck_assert_str_eq(s->peers[1].ipv6, "fd7a:115c:a1e0::4d01:304");
        ck_assert(!s->peers[1].online);
}
END_TEST

START_TEST(test_status_peers_false) {
        _cleanup_status_ TailnetStatus *s = NULL;

        ck_assert_int_eq(parse_file("TEST_DATA_DIR", "json/tailnet-status-peers-false.json", &s),
                         0);
        ck_assert_uint_eq(s->n_peers, 0);
        ck_assert_ptr_null(s->peers);
        ck_assert_str_eq(s->ipv4, "100.101.102.103");
}
END_TEST

START_TEST(test_status_needs_login) {
        _cleanup_status_ TailnetStatus *s = NULL;

        ck_assert_int_eq(parse_file("TEST_DATA_DIR", "json/tailnet-status-needs-login.json", &s),
                         0);
        ck_assert_int_eq(s->backend_state, BACKEND_NEEDS_LOGIN);
        ck_assert_str_eq(s->auth_url, "https://login.tailscale.com/a/1a2b3c4d5e6f7");
        ck_assert_ptr_null(s->ipv4);
        ck_assert_ptr_null(s->ipv6);
        ck_assert_ptr_null(s->dns_name);
        ck_assert_str_eq(s->host_name, "k0s-worker-1");
        ck_assert_ptr_null(s->magic_dns_suffix); /* CurrentTailnet null, alias "" */
        ck_assert(!s->self_online);
        ck_assert_ptr_nonnull(s->health[0]);
        ck_assert(startswith(s->health[0], "You are logged out."));
        ck_assert_ptr_null(s->health[1]);
        ck_assert_uint_eq(s->n_peers, 0);
}
END_TEST

START_TEST(test_status_stopped) {
        _cleanup_status_ TailnetStatus *s = NULL;

        ck_assert_int_eq(parse_file("TEST_DATA_DIR", "json/tailnet-status-stopped.json", &s), 0);
        ck_assert_int_eq(s->backend_state, BACKEND_STOPPED);
        /* The netmap's addresses are still reported: they must not make it "running". */
        ck_assert_str_eq(s->ipv4, "100.101.102.103");
        ck_assert_str_eq(s->health[0], "Tailscale is stopped.");
}
END_TEST

START_TEST(test_status_running_from_cache) {
        _cleanup_status_ TailnetStatus *s = NULL;

        /* Running from a disk-cached netmap, control poll not up yet (v1.96+). */
        ck_assert_int_eq(
                parse_file("TEST_DATA_DIR", "json/tailnet-status-running-offline.json", &s), 0);
        ck_assert_int_eq(s->backend_state, BACKEND_RUNNING);
        ck_assert_ptr_nonnull(s->ipv4);
        ck_assert(!s->self_online);
}
END_TEST

START_TEST(test_status_no_self) {
        static const char *const files[] = {
                "json/tailnet-status-no-self.json",
                "json/tailnet-status-self-null.json",
        };

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_status_ TailnetStatus *s = NULL;

                ck_assert_int_eq(parse_file("TEST_DATA_DIR", files[i], &s), 0);
                ck_assert_int_eq(s->backend_state, BACKEND_RUNNING);
                ck_assert(!s->self_online);
                ck_assert_ptr_null(s->dns_name);
                ck_assert_ptr_null(s->host_name);
                ck_assert_str_eq(s->ipv4, "100.101.102.103");
                ck_assert_uint_eq(s->n_peers, 2);
        }
}
END_TEST

START_TEST(test_status_userspace_old_daemon) {
        _cleanup_status_ TailnetStatus *s = NULL;

        ck_assert_int_eq(parse_file("TEST_DATA_DIR", "json/tailnet-status-userspace-old.json", &s),
                         0);
        ck_assert(!s->tun);
        /* Junk, a prefix and a zoned address are skipped; IPv6 comes out canonical. */
        ck_assert_str_eq(s->ipv4, "100.64.0.7");
        ck_assert_str_eq(s->ipv6, "fd7a:115c:a1e0::1");
        ck_assert_str_eq(s->dns_name, "ws.example.ts.net");
        ck_assert_str_eq(s->magic_dns_suffix, "example.ts.net"); /* the deprecated alias */
        ck_assert_str_eq(s->health[0], "health one");
        ck_assert_str_eq(s->health[1], "health two");
        ck_assert_ptr_null(s->health[2]);

        /* Two of the four peer values are not objects. */
        ck_assert_uint_eq(s->n_peers, 2);
        ck_assert_ptr_null(s->peers[0].dns_name); /* "." */
        ck_assert_str_eq(s->peers[0].host_name, "a");
        ck_assert_ptr_null(s->peers[0].ipv4);
        ck_assert_str_eq(s->peers[0].ipv6, "fd7a:115c:a1e0::3");
        ck_assert(s->peers[0].online);
        ck_assert_ptr_null(s->peers[1].host_name);
        ck_assert(!s->peers[1].online);
}
END_TEST

START_TEST(test_status_dns_dots) {
        _cleanup_status_ TailnetStatus *s = NULL;

        /* Every trailing dot goes; a name of only dots is no name. Found by the fuzzer. */
        ck_assert_int_eq(
                parse_str("{\"BackendState\":\"Starting\",\"Self\":{\"DNSName\":\"a.b..\"},"
                          "\"MagicDNSSuffix\":\"ts.net.\",\"CurrentTailnet\":{},"
                          "\"Peer\":{\"k\":{\"DNSName\":\"...\"}}}",
                          &s),
                0);
        ck_assert_str_eq(s->dns_name, "a.b");
        ck_assert_str_eq(s->magic_dns_suffix, "ts.net");
        ck_assert_uint_eq(s->n_peers, 1);
        ck_assert_ptr_null(s->peers[0].dns_name);
}
END_TEST

START_TEST(test_status_wrong_types) {
        _cleanup_status_ TailnetStatus *s = NULL, *t = NULL;

        ck_assert_int_eq(parse_file("TEST_DATA_DIR", "json/tailnet-status-wrong-types.json", &s),
                         0);
        ck_assert_int_eq(s->backend_state, BACKEND_RUNNING);
        ck_assert_ptr_null(s->version);
        ck_assert(!s->tun);
        ck_assert_ptr_null(s->auth_url);
        ck_assert_ptr_null(s->ipv4);
        ck_assert_ptr_null(s->ipv6);
        ck_assert(!s->self_online);
        ck_assert_ptr_null(s->dns_name);
        ck_assert_ptr_null(s->host_name);
        ck_assert_ptr_null(s->magic_dns_suffix);
        ck_assert_ptr_nonnull(s->health);
        ck_assert_ptr_null(s->health[0]);
        ck_assert_uint_eq(s->n_peers, 0);

        ck_assert_int_eq(
                parse_file("TEST_DATA_DIR", "json/tailnet-status-wrong-types-nested.json", &t), 0);
        ck_assert_str_eq(t->ipv4, "100.64.0.9");
        ck_assert_ptr_null(t->ipv6);
        ck_assert(!t->self_online);
        ck_assert_ptr_null(t->dns_name);
        ck_assert_str_eq(t->magic_dns_suffix, "fallback.ts.net");
        ck_assert_ptr_null(t->health[0]);
        ck_assert_uint_eq(t->n_peers, 1);
        ck_assert_ptr_null(t->peers[0].host_name);
        ck_assert_ptr_null(t->peers[0].dns_name);
        ck_assert_ptr_null(t->peers[0].ipv4);
        ck_assert(!t->peers[0].online);
}
END_TEST

START_TEST(test_status_backend_state_required) {
        static const char *const bad[] = {
                "{}",
                "{\"BackendState\":null}",
                "{\"BackendState\":6}",
                "{\"BackendState\":\"\"}",
                "{\"BackendState\":\"running\"}",
                "{\"backendstate\":\"Running\"}",
        };
        TailnetStatus *s = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_int_eq(parse_str(bad[i], &s), -EINVAL);
                ck_assert_ptr_null(s);
        }
        ck_assert_int_eq(parse_file("TEST_DATA_DIR", "json/tailnet-status-unknown-state.json", &s),
                         -EINVAL);
        ck_assert_ptr_null(s);

        for (BackendState st = 0; st < _BACKEND_STATE_MAX; st++) {
                _cleanup_free_ char *json = NULL;
                _cleanup_status_ TailnetStatus *t = NULL;

                json = strdup_printf("{\"BackendState\":\"%s\"}", backend_state_to_string(st));
                ck_assert_int_eq(parse_str(json, &t), 0);
                ck_assert_int_eq(t->backend_state, st);
                ck_assert_ptr_nonnull(t->health);
        }
}
END_TEST

START_TEST(test_status_invalid_input) {
        static const char *const bad[] = {
                "",
                " ",
                "[]",
                "[{\"BackendState\":\"Running\"}]",
                "null",
                "\"Running\"",
                "42",
                "{\"BackendState\":\"Running\"",
                "{\"BackendState\":\"Running\",}",
                "{\"BackendState\":\"Running\"} {}",
                "{\"BackendState\":\"Running\"}x",
                "{BackendState:\"Running\"}",
        };
        TailnetStatus *s = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_int_eq(parse_str(bad[i], &s), -EINVAL);
                ck_assert_ptr_null(s);
        }
        ck_assert_int_eq(tailnet_status_parse(NULL, 0, &s), -EINVAL);
        ck_assert_int_eq(parse_file("TEST_DATA_DIR", "json/tailnet-status-truncated.json", &s),
                         -EINVAL);
        ck_assert_ptr_null(s);

        /* A NUL inside the length is not JSON whitespace. */
        ck_assert_int_eq(tailnet_status_parse("{\"BackendState\":\"Running\"}\0", 28, &s), -EINVAL);
        ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_status_not_nul_terminated) {
        static const char json[] = "{\"BackendState\":\"Running\",\"TUN\":true}\n\t ";
        _cleanup_status_ TailnetStatus *s = NULL;
        _cleanup_free_ char *copy = NULL;
        size_t len = strlen(json);

        /* Exactly len bytes on the heap, no terminator: ASan/valgrind would see an over-read. */
        copy = malloc(len);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, json, len);
        ck_assert_int_eq(tailnet_status_parse(copy, len, &s), 0);
        ck_assert(s->tun);

        /* A prefix of a valid document is not valid. */
        ck_assert_int_eq(tailnet_status_parse(copy, 20, &(TailnetStatus *){ NULL }), -EINVAL);
}
END_TEST

START_TEST(test_status_deep_nesting) {
        const size_t depth = 100000;
        _cleanup_free_ char *json = NULL;
        TailnetStatus *s = NULL;
        size_t len = 0;

        /* Nesting inside an ignored key: cJSON's depth limit must refuse it, not the stack. */
        json = malloc(64 + 2 * depth);
        ck_assert_ptr_nonnull(json);
        len += (size_t) sprintf(json, "{\"BackendState\":\"Running\",\"X\":");
        memset(json + len, '[', depth);
        len += depth;
        memset(json + len, ']', depth);
        len += depth;
        json[len++] = '}';
        ck_assert_int_eq(tailnet_status_parse(json, len, &s), -EINVAL);
        ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_status_too_big) {
        const size_t len = (size_t) TAILNET_STATUS_MAX_SIZE + 1;
        _cleanup_free_ char *json = NULL;
        TailnetStatus *s = NULL;
        static const char head[] = "{\"BackendState\":\"Running\",\"Pad\":\"";

        /* A valid document one byte over the limit: refused by size, not by content. */
        json = malloc(len);
        ck_assert_ptr_nonnull(json);
        memcpy(json, head, strlen(head));
        memset(json + strlen(head), 'a', len - strlen(head) - 2);
        memcpy(json + len - 2, "\"}", 2);
        ck_assert_int_eq(tailnet_status_parse(json, len, &s), -EFBIG);
        ck_assert_ptr_null(s);

        /* The same shape at exactly the limit is accepted. */
        memcpy(json + len - 3, "\"}", 2);
        ck_assert_int_eq(tailnet_status_parse(json, len - 1, &s), 0);
        ck_assert_int_eq(s->backend_state, BACKEND_RUNNING);
        s = tailnet_status_free(s);
        ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_status_peer_cap) {
        const size_t max = 100000;
        _cleanup_free_ char *json = NULL;
        TailnetStatus *s = NULL;
        size_t len = 0;

        json = malloc(64 + (max + 1) * 16);
        ck_assert_ptr_nonnull(json);
        len += (size_t) sprintf(json, "{\"BackendState\":\"Running\",\"Peer\":{");
        for (size_t i = 0; i < max; i++)
                len += (size_t) sprintf(json + len, "%s\"k%zu\":{}", i > 0 ? "," : "", i);
        json[len++] = '}';
        json[len++] = '}';

        /* Exactly at the cap: all collected. */
        ck_assert_int_eq(tailnet_status_parse(json, len, &s), 0);
        ck_assert_uint_eq(s->n_peers, max);
        ck_assert(!s->peers[max - 1].online);
        s = tailnet_status_free(s);

        /* One more is refused rather than silently truncated. */
        len -= 2;
        len += (size_t) sprintf(json + len, ",\"last\":{}}}");
        ck_assert_int_eq(tailnet_status_parse(json, len, &s), -EFBIG);
        ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_status_free_null) {
        ck_assert_ptr_null(tailnet_status_free(NULL));
}
END_TEST

START_TEST(test_bus_sample) {
        static const struct {
                bool has_state;
                BackendState state;
                bool self_change;
                const char *err;
        } expected[] = {
                { true, BACKEND_RUNNING, false, NULL },
                { true, BACKEND_STOPPED, false, NULL },
                { true, BACKEND_STARTING, false, NULL },
                { true, BACKEND_RUNNING, false, NULL },
                { false, 0, true, NULL },
                { false, 0, false, "IPN bus consumer fell behind; closing watch" },
        };
        _cleanup_free_ char *data = NULL;
        size_t len, i = 0;
        char *line, *saveptr = NULL;

        data = read_test_file("SAMPLES_DIR", "tailscale-ipnbus-sample.ndjson", &len);
        for (line = strtok_r(data, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                IpnBusNotify n = {};

                ck_assert_uint_lt(i, ELEMENTSOF(expected));
                ck_assert_int_eq(ipn_bus_line_parse(line, strlen(line), &n), 0);
                ck_assert_int_eq(n.has_state, expected[i].has_state);
                if (n.has_state)
                        ck_assert_int_eq(n.state, expected[i].state);
                ck_assert_int_eq(n.has_self_change, expected[i].self_change);
                ck_assert(!n.has_netmap);
                ck_assert(!n.has_prefs);
                if (expected[i].err)
                        ck_assert_str_eq(n.err_message, expected[i].err);
                else
                        ck_assert_ptr_null(n.err_message);
                ck_assert_str_eq(n.version, "1.102.3-t9c1f2a3b4-g5d6e7f8a9");
                ipn_bus_notify_done(&n);
                ck_assert_ptr_null(n.version);
                i++;
        }
        ck_assert_uint_eq(i, ELEMENTSOF(expected));
}
END_TEST

START_TEST(test_bus_extra) {
        /* One row per line of json/ipn-bus-extra.ndjson. */
        static const struct {
                bool has_state;
                BackendState state;
                bool prefs, netmap, self_change;
                const char *err, *version;
        } expected[] = {
                { false, 0, true, false, false, NULL, "1.96.4-tabc" }, /* Prefs */
                { false, 0, false, true, false, NULL, "1.96.4-tabc" }, /* old full NetMap */
                { false, 0, false, false, false, NULL, NULL }, /* old Go: nulls */
                { true, BACKEND_NEEDS_LOGIN, false, false, false, NULL, NULL },
                { false, 0, false, false, false, NULL, NULL }, /* 7: unknown */
                { false, 0, false, false, false, NULL, NULL }, /* -1 */
                { false, 0, false, false, false, NULL, NULL }, /* 2.5 */
                { false, 0, false, false, false, NULL, NULL }, /* "Running" */
                { false, 0, false, false, false, NULL, NULL }, /* 1e400 */
                { false, 0, false, false, false, NULL, NULL }, /* "" strings */
                { false, 0, true, true, true, NULL, NULL }, /* wrong types */
                { false, 0, false, false, false, NULL, NULL }, /* {} */
        };
        _cleanup_free_ char *data = NULL;
        size_t len, i = 0;
        char *line, *saveptr = NULL;

        data = read_test_file("TEST_DATA_DIR", "json/ipn-bus-extra.ndjson", &len);
        for (line = strtok_r(data, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                IpnBusNotify n = {};

                ck_assert_uint_lt(i, ELEMENTSOF(expected));
                ck_assert_int_eq(ipn_bus_line_parse(line, strlen(line), &n), 0);
                ck_assert_msg(n.has_state == expected[i].has_state, "line %zu", i + 1);
                if (n.has_state)
                        ck_assert_int_eq(n.state, expected[i].state);
                ck_assert_msg(n.has_prefs == expected[i].prefs, "line %zu", i + 1);
                ck_assert_msg(n.has_netmap == expected[i].netmap, "line %zu", i + 1);
                ck_assert_msg(n.has_self_change == expected[i].self_change, "line %zu", i + 1);
                ck_assert_pstr_eq(n.err_message, expected[i].err);
                ck_assert_pstr_eq(n.version, expected[i].version);
                ipn_bus_notify_done(&n);
                i++;
        }
        ck_assert_uint_eq(i, ELEMENTSOF(expected));
}
END_TEST

START_TEST(test_bus_all_states) {
        for (int st = 0; st < _BACKEND_STATE_MAX; st++) {
                _cleanup_free_ char *line = NULL;
                IpnBusNotify n = {};

                line = strdup_printf("{\"State\":%d}\r", st); /* a CRLF-ended line */
                ck_assert_int_eq(ipn_bus_line_parse(line, strlen(line), &n), 0);
                ck_assert(n.has_state);
                ck_assert_int_eq(n.state, st);
                ipn_bus_notify_done(&n);
        }
}
END_TEST

START_TEST(test_bus_invalid) {
        static const char *const bad[] = {
                "",
                "\n",
                "[]",
                "null",
                "6",
                "\"Running\"",
                "{\"State\":6",
                "{\"State\":6}{}",
                "{\"State\":6}\n{\"State\":4}",
        };
        IpnBusNotify n = { .has_state = true, .state = BACKEND_STARTING };
        const size_t big = (size_t) 70 * 1024 * 1024;
        _cleanup_free_ char *huge = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_int_eq(ipn_bus_line_parse(bad[i], strlen(bad[i]), &n), -EINVAL);
                /* ret untouched on failure */
                ck_assert(n.has_state);
                ck_assert_int_eq(n.state, BACKEND_STARTING);
        }
        ck_assert_int_eq(ipn_bus_line_parse(NULL, 0, &n), -EINVAL);

        /* No length limit any more: a line is scanned in O(1) memory, whatever its size. */
        huge = malloc(big);
        ck_assert_ptr_nonnull(huge);
        memset(huge, ' ', big);
        memcpy(huge, "{\"State\":6}", 11);
        ck_assert_int_eq(ipn_bus_line_parse(huge, big, &n), 0);
        ck_assert_int_eq(n.state, BACKEND_RUNNING);
        ipn_bus_notify_done(&n);
        ipn_bus_notify_done(NULL);
}
END_TEST

/* The reachability rule, step by step (common/tailnet-status.c, k0s-tsagent.conf(5)). */
START_TEST(test_peer_reachability_rule) {
        const uint64_t now = 2000 * USEC_PER_SEC;
        TailnetPeer p = {};

        /* idle peer: Online decides, whatever the control connection */
        p.online = true;
        ck_assert(tailnet_peer_is_reachable(&p, true, now));
        ck_assert(tailnet_peer_is_reachable(&p, false, now));
        p.online = false;
        ck_assert(!tailnet_peer_is_reachable(&p, false, now));
        /* a fresh handshake counts during a control outage ... */
        p.last_handshake_usec = now - 30 * USEC_PER_SEC;
        ck_assert(tailnet_peer_is_reachable(&p, false, now));
        /* ... but while control is up, its "offline" wins over a handshake from before a cut */
        ck_assert(!tailnet_peer_is_reachable(&p, true, now));
        /* a direct path wins over both */
        p.cur_addr = (char *) "192.0.2.7:41641";
        ck_assert(tailnet_peer_is_reachable(&p, true, now));
        /* an expired key loses over everything */
        p.key_expiry_usec = now - 1;
        ck_assert(!tailnet_peer_is_reachable(&p, true, now));
        p.key_expiry_usec = 0;
        p.cur_addr = NULL;
        /* sending, no handshake for over 3 minutes: unreachable even if Online is stale true */
        p.online = true;
        p.active = true;
        p.last_handshake_usec = now - 181 * USEC_PER_SEC;
        ck_assert(!tailnet_peer_is_reachable(&p, false, now));
        p.last_handshake_usec = now - 179 * USEC_PER_SEC;
        ck_assert(tailnet_peer_is_reachable(&p, false, now));
        ck_assert(!tailnet_peer_is_reachable(NULL, true, now));
}
END_TEST

/* A peer: name may be this node itself (a registry on its own tailnet address). */
START_TEST(test_resolve_peer_self) {
        TailnetPeer peers[1] = { { .host_name = (char *) "reg-b",
                                   .dns_name = (char *) "reg-b.tail1.ts.net",
                                   .ipv4 = (char *) "100.64.2.1" } };
        TailnetStatus t = { .ipv4 = (char *) "100.64.1.1",
                            .host_name = (char *) "a1",
                            .dns_name = (char *) "node-a1.tail1.ts.net",
                            .self_online = true,
                            .peers = peers,
                            .n_peers = 1 };
        const char *ip = NULL;
        bool reach = false;

        ck_assert_int_eq(tailnet_status_build_index(&t), 0);
        ck_assert(tailnet_status_resolve_peer(&t, "a1", 1, &ip, &reach));
        ck_assert_str_eq(ip, "100.64.1.1");
        ck_assert(reach);
        ck_assert(tailnet_status_resolve_peer(&t, "NODE-A1.tail1.ts.net.", 1, &ip, &reach));
        ck_assert_str_eq(ip, "100.64.1.1");
        ck_assert(tailnet_status_resolve_peer(&t, "node-a1", 1, &ip, &reach));
        ck_assert(!tailnet_status_resolve_peer(&t, "node-a", 1, &ip, &reach));
        /* a peer: found, reachability by the rule (control up, peer offline) */
        ck_assert(tailnet_status_resolve_peer(&t, "reg-b", 1, &ip, &reach));
        ck_assert_str_eq(ip, "100.64.2.1");
        ck_assert(!reach);
        ck_assert(!tailnet_status_resolve_peer(&t, "nowhere", 1, &ip, &reach));
        ck_assert(!tailnet_status_resolve_peer(NULL, "a1", 1, &ip, &reach));
        free(t.index);
}
END_TEST

static Suite *tailnet_status_suite(void) {
        Suite *s = suite_create("tailnet-status");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_backend_state_strings);
        tcase_add_test(tc, test_status_sample);
        tcase_add_test(tc, test_status_peers_false);
        tcase_add_test(tc, test_status_needs_login);
        tcase_add_test(tc, test_status_stopped);
        tcase_add_test(tc, test_status_running_from_cache);
        tcase_add_test(tc, test_status_no_self);
        tcase_add_test(tc, test_status_userspace_old_daemon);
        tcase_add_test(tc, test_status_dns_dots);
        tcase_add_test(tc, test_status_wrong_types);
        tcase_add_test(tc, test_status_backend_state_required);
        tcase_add_test(tc, test_status_invalid_input);
        tcase_add_test(tc, test_status_not_nul_terminated);
        tcase_add_test(tc, test_status_deep_nesting);
        tcase_add_test(tc, test_status_too_big);
        tcase_add_test(tc, test_status_peer_cap);
        tcase_add_test(tc, test_status_free_null);
        tcase_add_test(tc, test_peer_reachability_rule);
        tcase_add_test(tc, test_resolve_peer_self);
        tcase_add_test(tc, test_bus_sample);
        tcase_add_test(tc, test_bus_extra);
        tcase_add_test(tc, test_bus_all_states);
        tcase_add_test(tc, test_bus_invalid);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(tailnet_status_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
