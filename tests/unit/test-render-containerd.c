/* SPDX-License-Identifier: MIT */
/*
 * render-containerd: the exact drop-in and hosts.toml texts, TOML escaping of hostile strings,
 * endpoint order, the IPv6 form containerd 1.x can parse, and a round trip of every output
 * through Python's tomllib (a real TOML 1.0 parser) that compares the parsed values.
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"
#include "render-containerd.h"

#define M RENDER_CONTAINERD_MARKER "\n"

static const char *const want_v2 = M "version = 2\n"
                                     "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
                                     "config_path = \"/etc/containerd/certs.d\"\n";

static const char *const want_v3 = M "version = 3\n"
                                     "[plugins.\"io.containerd.cri.v1.images\".registry]\n"
                                     "config_path = \"/etc/containerd/certs.d\"\n";

static const char *const want_two = M "server = \"http://100.64.0.7:5000\"\n"
                                      "\n"
                                      "[host.\"http://100.64.0.7:5000\"]\n"
                                      "  capabilities = [\"pull\", \"resolve\"]\n"
                                      "\n"
                                      "[host.\"https://registry.example.ts.net:5000\"]\n"
                                      "  capabilities = [\"pull\", \"resolve\"]\n"
                                      "  skip_verify = true\n"
                                      "  ca = \"/etc/k0s-tsagent/registry-ca.pem\"\n";

static const char *const want_ipv6 =
        M "server = \"http://[fd7a:115c:a1e0::5]:5001\"\n"
          "\n"
          "[host]\n"
          "  \"http://[fd7a:115c:a1e0::5]:5001\" = { capabilities = [\"pull\", \"resolve\"] }\n"
          "  \"https://100.64.0.7:5000\" = { capabilities = [\"pull\", \"resolve\"], "
          "skip_verify = true, ca = \"/etc/ca.pem\" }\n";

static RegistryEndpoint two_endpoints[] = {
        { .url = (char *) "http://100.64.0.7:5000", .skip_verify = true /* never on http */ },
        { .url = (char *) "https://registry.example.ts.net:5000",
          .skip_verify = true,
          .ca = (char *) "/etc/k0s-tsagent/registry-ca.pem" },
};
static const Registry two = {
        .name = (char *) "registry.example.ts.net:5000",
        .endpoints = two_endpoints,
        .n_endpoints = ELEMENTSOF(two_endpoints),
};

static RegistryEndpoint ipv6_endpoints[] = {
        { .url = (char *) "http://[fd7a:115c:a1e0::5]:5001" },
        { .url = (char *) "https://100.64.0.7:5000",
          .skip_verify = true,
          .ca = (char *) "/etc/ca.pem" },
};
static const Registry ipv6 = {
        .name = (char *) "registry.example.ts.net:5000",
        .endpoints = ipv6_endpoints,
        .n_endpoints = ELEMENTSOF(ipv6_endpoints),
};

/* Strings config validation would refuse, but the renderer must still emit valid TOML that
 * means exactly them. */
static const char *const hostile[] = {
        "/etc/containerd/certs.d",
        "/a\"b",
        "/a\\b\\",
        "/x\"\n[plugins.evil]\nk = \"v",
        "\"]\n[host.\"http://evil\"]\ncapabilities = [\"push\"]\n#",
        "/tab\there/bell\a/esc\x1b/del\x7f/cr\r",
        "/\x01\x02\x1f",
        "/unicode/\xc3\xbc\xe2\x82\xac\xf0\x9f\x90\xb3",
        "'single' '''triple'''",
        "\\u0041 is not an escape here",
        "",
};

START_TEST(test_dropin_exact) {
        _cleanup_free_ char *v2 = NULL, *v3 = NULL;

        ck_assert_int_eq(
                render_containerd_dropin(CONTAINERD_FORMAT_V2, "/etc/containerd/certs.d", &v2), 0);
        ck_assert_str_eq(v2, want_v2);
        ck_assert_int_eq(
                render_containerd_dropin(CONTAINERD_FORMAT_V3, "/etc/containerd/certs.d", &v3), 0);
        ck_assert_str_eq(v3, want_v3);
        /* k0s >= 1.36 rejects any drop-in mentioning the 1.x plugin (facts/k0s.md §4) */
        ck_assert_ptr_null(strstr(v3, "io.containerd.grpc.v1.cri"));
}
END_TEST

START_TEST(test_dropin_invalid) {
        char *s = (char *) "untouched";

        ck_assert_int_eq(render_containerd_dropin(_CONTAINERD_FORMAT_MAX, "/x", &s), -EINVAL);
        ck_assert_int_eq(render_containerd_dropin(_CONTAINERD_FORMAT_INVALID, "/x", &s), -EINVAL);
        ck_assert_int_eq(render_containerd_dropin(CONTAINERD_FORMAT_V2, NULL, &s), -EINVAL);
        ck_assert_int_eq(render_containerd_dropin(CONTAINERD_FORMAT_V2, "/bad\xff", &s), -EINVAL);
        ck_assert_str_eq(s, "untouched");
}
END_TEST

START_TEST(test_hosts_two_endpoints) {
        _cleanup_free_ char *t = NULL;

        ck_assert_int_eq(render_hosts_toml(&two, NULL, &t), 0);
        ck_assert_str_eq(t, want_two);
}
END_TEST

START_TEST(test_hosts_order) {
        static const size_t rev[] = { 1, 0 };
        _cleanup_free_ char *t = NULL;
        const char *a, *b;

        ck_assert_int_eq(render_hosts_toml(&two, rev, &t), 0);
        ck_assert(startswith(t, M "server = \"https://registry.example.ts.net:5000\"\n\n"));
        a = strstr(t, "[host.\"https://registry.example.ts.net:5000\"]");
        b = strstr(t, "[host.\"http://100.64.0.7:5000\"]");
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert(a < b);
        /* same text, only the server line changed */
        ck_assert_uint_eq(strlen(t) + strlen("http://100.64.0.7:5000"),
                          strlen(want_two) + strlen("https://registry.example.ts.net:5000"));
}
END_TEST

START_TEST(test_hosts_bad_order) {
        static const size_t dup[] = { 1, 1 }, out[] = { 0, 2 };
        char *t = (char *) "untouched";

        ck_assert_int_eq(render_hosts_toml(&two, dup, &t), -EINVAL);
        ck_assert_int_eq(render_hosts_toml(&two, out, &t), -EINVAL);
        ck_assert_str_eq(t, "untouched");
}
END_TEST

START_TEST(test_hosts_invalid) {
        Registry empty = { .name = (char *) "x:1", .endpoints = two_endpoints, .n_endpoints = 0 };
        RegistryEndpoint nourl = {};
        Registry bad = { .name = (char *) "x:1", .endpoints = &nourl, .n_endpoints = 1 };
        RegistryEndpoint badutf = { .url = (char *) "http://\xc0\xaf:1" };
        Registry bad2 = { .name = (char *) "x:1", .endpoints = &badutf, .n_endpoints = 1 };
        char *t = (char *) "untouched";

        ck_assert_int_eq(render_hosts_toml(NULL, NULL, &t), -EINVAL);
        ck_assert_int_eq(render_hosts_toml(&empty, NULL, &t), -EINVAL);
        ck_assert_int_eq(render_hosts_toml(&bad, NULL, &t), -EINVAL);
        ck_assert_int_eq(render_hosts_toml(&bad2, NULL, &t), -EINVAL);
        ck_assert_str_eq(t, "untouched");
}
END_TEST

START_TEST(test_hosts_http_never_skip_verify) {
        RegistryEndpoint e = { .url = (char *) "http://100.64.0.7:5000", .skip_verify = true };
        Registry r = { .name = (char *) "100.64.0.7:5000", .endpoints = &e, .n_endpoints = 1 };
        _cleanup_free_ char *t = NULL;

        ck_assert_int_eq(render_hosts_toml(&r, NULL, &t), 0);
        ck_assert_str_eq(t,
                         M "server = \"http://100.64.0.7:5000\"\n"
                           "\n"
                           "[host.\"http://100.64.0.7:5000\"]\n"
                           "  capabilities = [\"pull\", \"resolve\"]\n");
        ck_assert_ptr_null(strstr(t, "skip_verify"));
}
END_TEST

/* peer: endpoints reach this module resolved (reconcile_registry_endpoints()): an unresolved one
 * is refused, a resolved https one keeps skip_verify and ca like a url: endpoint. */
START_TEST(test_hosts_peer_endpoints) {
        RegistryEndpoint unresolved = { .peer = (char *) "registry-manila",
                                        .port = 5000,
                                        .scheme = (char *) "https" };
        Registry r = { .name = (char *) "registry.example.org:5000",
                       .endpoints = &unresolved,
                       .n_endpoints = 1 };
        RegistryEndpoint resolved = { .url = (char *) "https://100.64.2.1:5000",
                                      .skip_verify = true,
                                      .ca = (char *) "/etc/ssl/manila.pem" };
        _cleanup_free_ char *t = NULL;

        ck_assert_int_eq(render_hosts_toml(&r, NULL, &t), -EINVAL);
        ck_assert_ptr_null(t);
        r.endpoints = &resolved;
        ck_assert_int_eq(render_hosts_toml(&r, NULL, &t), 0);
        ck_assert_str_eq(t,
                         M "server = \"https://100.64.2.1:5000\"\n"
                           "\n"
                           "[host.\"https://100.64.2.1:5000\"]\n"
                           "  capabilities = [\"pull\", \"resolve\"]\n"
                           "  skip_verify = true\n"
                           "  ca = \"/etc/ssl/manila.pem\"\n");
}
END_TEST

START_TEST(test_hosts_ipv6) {
        _cleanup_free_ char *t = NULL;

        ck_assert_int_eq(render_hosts_toml(&ipv6, NULL, &t), 0);
        ck_assert_str_eq(t, want_ipv6);
        /* the form go-toml v1 (containerd 1.x) refuses */
        ck_assert_ptr_null(strstr(t, "[host.\"http://["));
}
END_TEST

static const struct {
        const char *in, *out;
} quotes[] = {
        { "", "\"\"" },
        { "/etc/containerd/certs.d", "\"/etc/containerd/certs.d\"" },
        { "a\"b", "\"a\\\"b\"" },
        { "a\\b", "\"a\\\\b\"" },
        { "\n", "\"\\u000A\"" },
        { "\t\r\x01\x1f\x7f", "\"\\u0009\\u000D\\u0001\\u001F\\u007F\"" },
        { "\xc3\xbc\xe2\x82\xac\xf0\x9f\x90\xb3", "\"\xc3\xbc\xe2\x82\xac\xf0\x9f\x90\xb3\"" },
        { "'", "\"'\"" },
        { "#[]{}=,", "\"#[]{}=,\"" },
};

START_TEST(test_toml_quote) {
        _cleanup_free_ char *q = NULL;

        ck_assert_int_eq(toml_quote(quotes[_i].in, &q), 0);
        ck_assert_str_eq(q, quotes[_i].out);
}
END_TEST

START_TEST(test_toml_quote_invalid_utf8) {
        static const char *const bad[] = {
                "\xff", /* never valid */
                "\x80", /* lone continuation byte */
                "\xc0\xaf", /* overlong '/' */
                "\xe0\x80\xaf", /* overlong */
                "\xed\xa0\x80", /* UTF-16 surrogate */
                "\xf4\x90\x80\x80", /* above U+10FFFF */
                "\xe2\x82", /* truncated */
                "ok\xf0\x9f\x90", /* truncated at the end */
        };
        char *q = (char *) "untouched";

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(toml_quote(bad[i], &q) == -EINVAL, "accepted #%zu", i);
        ck_assert_int_eq(toml_quote(NULL, &q), -EINVAL);
        ck_assert_str_eq(q, "untouched");
}
END_TEST

/* --- round trip through tomllib ------------------------------------------------------------ */

/* Each check is three arguments: kind, TOML file, file with the expected strings (NUL-separated,
 * raw bytes, so no quoting layer of ours is trusted). The dict order tomllib keeps is the file
 * order, so the endpoint order is checked too. */
static const char checker_py[] =
        "import sys\n"
        "try:\n"
        "    import tomllib\n"
        "except ImportError:\n"
        "    sys.exit(77)\n"
        "a = sys.argv[1:]\n"
        "for i in range(0, len(a), 3):\n"
        "    kind, toml, exp = a[i:i + 3]\n"
        "    with open(toml, 'rb') as f:\n"
        "        d = tomllib.load(f)\n"
        "    with open(exp, 'rb') as f:\n"
        "        e = f.read().decode('utf-8').split('\\0')\n"
        "    if kind in ('v2', 'v3'):\n"
        "        plugin = {'v2': 'io.containerd.grpc.v1.cri',\n"
        "                  'v3': 'io.containerd.cri.v1.images'}[kind]\n"
        "        reg = d['plugins'][plugin]['registry']\n"
        "        got = [d['version'], reg['config_path'], len(d), len(d['plugins'])]\n"
        "        want = [int(kind[1]), e[0], 2, 1]\n"
        "    else:\n"
        "        got = [d['server'], len(d)]\n"
        "        want = [e[0], 2]\n"
        "        hosts = list(d['host'].items())\n"
        "        for j in range(len(hosts)):\n"
        "            url, h = hosts[j]\n"
        "            sv = h.get('skip_verify', False)\n"
        "            got += [url, h['capabilities'], h.get('ca', ''), sv]\n"
        "        for j in range(1, len(e), 3):\n"
        "            want += [e[j], ['pull', 'resolve'], e[j + 1], e[j + 2] == '1']\n"
        "    if got != want:\n"
        "        print('MISMATCH in', toml, ':', got, '!=', want)\n"
        "        sys.exit(1)\n"
        "print('tomllib: %d files ok' % (len(a) // 3))\n";

static char *tmpdir;
static char *args;
static unsigned n_files;

static void write_file(const char *path, const char *data, size_t len) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
}

/* Writes text and expected values into tmpdir and queues them for the checker. */
static void queue_check(const char *kind, const char *text, const char *expect, size_t expect_len) {
        _cleanup_free_ char *t = NULL, *e = NULL;
        char *a;

        t = strdup_printf("%s/%u.toml", tmpdir, n_files);
        e = strdup_printf("%s/%u.expect", tmpdir, n_files);
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_nonnull(e);
        n_files++;
        write_file(t, text, strlen(text));
        write_file(e, expect, expect_len);
        a = strdup_printf("%s %s %s %s", args ?: "", kind, t, e);
        ck_assert_ptr_nonnull(a);
        free(args);
        args = a;
}

/* NUL-separated: server, then url, ca, "1"/"0" skip_verify per host in the expected order. */
static size_t expect_hosts(char *buf, size_t size, const Registry *r, const size_t *order) {
        size_t n = 0;

#define PUT(s) \
        do { \
                size_t _l = strlen(s) + 1; \
                ck_assert_uint_le(n + _l, size); \
                memcpy(buf + n, s, _l); \
                n += _l; \
        } while (0)
        PUT(r->endpoints[order ? order[0] : 0].url);
        for (size_t i = 0; i < r->n_endpoints; i++) {
                const RegistryEndpoint *e = &r->endpoints[order ? order[i] : i];
                PUT(e->url);
                PUT(e->ca ?: "");
                PUT(e->skip_verify && startswith(e->url, "https://") ? "1" : "0");
        }
#undef PUT
        return n - 1; /* no trailing separator */
}

START_TEST(test_tomllib_roundtrip) {
        static const size_t rev[] = { 1, 0 };
        _cleanup_free_ char *py = NULL, *cmd = NULL, *rm = NULL;
        _cleanup_free_ char *tmpl =
                strdup_printf("%s/test-render-containerd.XXXXXX", getenv("TMPDIR") ?: "/tmp");
        const char *python;
        char buf[4096];
        int status;

        ck_assert_ptr_nonnull(tmpl);
        tmpdir = mkdtemp(tmpl);
        ck_assert_ptr_nonnull(tmpdir);
        py = strdup_printf("%s/check.py", tmpdir);
        ck_assert_ptr_nonnull(py);
        write_file(py, checker_py, strlen(checker_py));

        for (size_t i = 0; i < ELEMENTSOF(hostile); i++) {
                _cleanup_free_ char *v2 = NULL, *v3 = NULL, *h = NULL;
                RegistryEndpoint eps[] = {
                        { .url = (char *) hostile[i],
                          .skip_verify = true,
                          .ca = (char *) hostile[i] },
                        { .url = (char *) "https://[fd7a::1]:5000",
                          .skip_verify = true,
                          .ca = (char *) hostile[(i + 1) % ELEMENTSOF(hostile)] },
                };
                Registry r = { .name = (char *) "x:1", .endpoints = eps, .n_endpoints = 1 };

                ck_assert_int_eq(render_containerd_dropin(CONTAINERD_FORMAT_V2, hostile[i], &v2),
                                 0);
                ck_assert_int_eq(render_containerd_dropin(CONTAINERD_FORMAT_V3, hostile[i], &v3),
                                 0);
                queue_check("v2", v2, hostile[i], strlen(hostile[i]));
                queue_check("v3", v3, hostile[i], strlen(hostile[i]));

                /* one hostile endpoint alone ([host."..."] form) ... */
                ck_assert_int_eq(render_hosts_toml(&r, NULL, &h), 0);
                queue_check("hosts", h, buf, expect_hosts(buf, sizeof(buf), &r, NULL));
                free(h);
                h = NULL;
                /* ... and next to an IPv6 one (the [host] + inline table form), reversed */
                r.n_endpoints = 2;
                ck_assert_int_eq(render_hosts_toml(&r, rev, &h), 0);
                queue_check("hosts", h, buf, expect_hosts(buf, sizeof(buf), &r, rev));
        }
        {
                _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

                ck_assert_int_eq(render_hosts_toml(&two, NULL, &a), 0);
                queue_check("hosts", a, buf, expect_hosts(buf, sizeof(buf), &two, NULL));
                ck_assert_int_eq(render_hosts_toml(&two, rev, &b), 0);
                queue_check("hosts", b, buf, expect_hosts(buf, sizeof(buf), &two, rev));
                ck_assert_int_eq(render_hosts_toml(&ipv6, NULL, &c), 0);
                queue_check("hosts", c, buf, expect_hosts(buf, sizeof(buf), &ipv6, NULL));
        }

        /* The distribution's interpreter if there is one: a pyenv shim takes a second to start. */
        python = getenv("PYTHON");
        if (!python)
                python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
        cmd = strdup_printf("%s %s%s", python, py, args);
        ck_assert_ptr_nonnull(cmd);
        status = system(cmd);

        rm = strdup_printf("rm -rf -- %s", tmpdir);
        ck_assert_ptr_nonnull(rm);
        (void) system(rm);
        free(args);
        args = NULL;

        if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                printf("SKIP: %s has no tomllib (needs Python >= 3.11)\n", python);
                return;
        }
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "tomllib check failed (status %d)", status);
        ck_assert_uint_eq(n_files, 4 * ELEMENTSOF(hostile) + 3);
}
END_TEST

static Suite *render_containerd_suite(void) {
        Suite *s = suite_create("render-containerd");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_dropin_exact);
        tcase_add_test(tc, test_dropin_invalid);
        tcase_add_test(tc, test_hosts_two_endpoints);
        tcase_add_test(tc, test_hosts_order);
        tcase_add_test(tc, test_hosts_bad_order);
        tcase_add_test(tc, test_hosts_invalid);
        tcase_add_test(tc, test_hosts_http_never_skip_verify);
        tcase_add_test(tc, test_hosts_ipv6);
        tcase_add_test(tc, test_hosts_peer_endpoints);
        tcase_add_loop_test(tc, test_toml_quote, 0, (int) ELEMENTSOF(quotes));
        tcase_add_test(tc, test_toml_quote_invalid_utf8);
        tcase_add_test(tc, test_tomllib_roundtrip);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(render_containerd_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
