/* SPDX-License-Identifier: MIT */
/*
 * doctor's pure rules: mark scans of iptables-save text and nft JSON (what counts as touching
 * 0xff0000, tailscale's own chains and connmark left out), resolv.conf, Calico overhead, YAML
 * lookups with lines, kubeconfig/token server URLs, unit-file parsing and CIDR membership.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "doctor-rules.h"
#include "util.h"

START_TEST(test_parse_mark) {
        uint32_t v;
        ck_assert_int_eq(doctor_parse_mark("0x10000", &v), 0);
        ck_assert_uint_eq(v, 0x10000);
        ck_assert_int_eq(doctor_parse_mark("65536", &v), 0);
        ck_assert_uint_eq(v, 65536);
        ck_assert_int_lt(doctor_parse_mark("0x1ffffffff", &v), 0);
        ck_assert_int_lt(doctor_parse_mark("-1", &v), 0);
        ck_assert_int_lt(doctor_parse_mark("", &v), 0);
        ck_assert_int_lt(doctor_parse_mark("0x10000/0xff", &v), 0);
}
END_TEST

START_TEST(test_iptables_save) {
        const char *text = "*mangle\n"
                           ":PREROUTING ACCEPT [0:0]\n"
                           "-A PREROUTING -j MARK --set-xmark 0x10000/0xff0000\n"
                           "-A PREROUTING -m comment --comment \"a b\" -j MARK --set-xmark "
                           "0x4000/0x4000\n"
                           "-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff0000 --ctmask "
                           "0xff0000\n"
                           "-A ts-forward -i tailscale0 -j MARK --set-xmark 0x40000/0xff0000\n"
                           "COMMIT\n"
                           "*filter\n"
                           "-A cali-fw -m mark --mark 0x10000/0x10000 -j ACCEPT\n"
                           "-A KUBE-X -m mark --mark 0x8000/0x8000 -j DROP\n"
                           "-A OTHER -j MARK --set-xmark 0x1/0xffffffff\n"
                           "COMMIT\n";
        _cleanup_strv_free_ char **f = NULL;
        ck_assert_int_eq(doctor_scan_iptables_save(text, &f), 0);
        ck_assert_uint_eq(strv_length(f), 3);
        ck_assert_ptr_nonnull(strstr(f[0], "mangle PREROUTING"));
        ck_assert_ptr_nonnull(strstr(f[0], "0x10000/0xff0000"));
        ck_assert_ptr_nonnull(strstr(f[1], "filter cali-fw"));
        ck_assert_ptr_nonnull(strstr(f[2], "filter OTHER"));
}
END_TEST

START_TEST(test_nft_json) {
        const char *json =
                "{\"nftables\": [{\"metainfo\": {}},"
                "{\"rule\": {\"family\": \"ip\", \"table\": \"t\", \"chain\": \"pre\", "
                "\"handle\": 4, \"expr\": [{\"mangle\": {\"key\": {\"meta\": {\"key\": "
                "\"mark\"}}, \"value\": {\"|\": [{\"&\": [{\"meta\": {\"key\": \"mark\"}}, "
                "4278255615]}, 65536]}}}]}},"
                "{\"rule\": {\"family\": \"ip\", \"table\": \"t\", \"chain\": \"ok\", "
                "\"handle\": 5, \"expr\": [{\"mangle\": {\"key\": {\"meta\": {\"key\": "
                "\"mark\"}}, \"value\": {\"|\": [{\"&\": [{\"meta\": {\"key\": \"mark\"}}, "
                "4294950911]}, 16384]}}}]}},"
                "{\"rule\": {\"family\": \"ip\", \"table\": \"t\", \"chain\": \"ts-forward\", "
                "\"handle\": 6, \"expr\": [{\"mangle\": {\"key\": {\"meta\": {\"key\": "
                "\"mark\"}}, \"value\": 262144}}]}},"
                "{\"rule\": {\"family\": \"inet\", \"table\": \"t\", \"chain\": \"m\", "
                "\"handle\": 7, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"&\": "
                "[{\"ct\": {\"key\": \"mark\"}}, 16711680]}, \"right\": 65536}}]}}]}";
        _cleanup_strv_free_ char **f = NULL;
        ck_assert_int_eq(doctor_scan_nft_json(json, strlen(json), &f), 0);
        ck_assert_uint_eq(strv_length(f), 2);
        ck_assert_ptr_nonnull(strstr(f[0], "ip t pre handle 4"));
        ck_assert_ptr_nonnull(strstr(f[1], "inet t m handle 7"));
        ck_assert_int_eq(doctor_scan_nft_json("[]", 2, &f), -EINVAL);
}
END_TEST

START_TEST(test_resolv_conf) {
        _cleanup_strv_free_ char **ns = NULL, **search = NULL;
        ck_assert_int_eq(doctor_resolv_conf_parse("# x\nnameserver 100.100.100.100\n"
                                                  "nameserver 192.0.2.1\nsearch a.ts.net b\n",
                                                  &ns, &search),
                         0);
        ck_assert_uint_eq(strv_length(ns), 2);
        ck_assert_str_eq(search[0], "a.ts.net");
        ck_assert_str_eq(search[1], "b");
        ck_assert(doctor_nameserver_is_bad("100.100.100.100"));
        ck_assert(doctor_nameserver_is_bad("127.0.0.53"));
        ck_assert(doctor_nameserver_is_bad("::1"));
        ck_assert(doctor_nameserver_is_bad("fd7a:115c:a1e0::53"));
        ck_assert(!doctor_nameserver_is_bad("192.0.2.1"));
}
END_TEST

START_TEST(test_overhead) {
        ck_assert_int_eq(doctor_calico_overhead(NULL), 50);
        ck_assert_int_eq(doctor_calico_overhead("vxlan"), 50);
        ck_assert_int_eq(doctor_calico_overhead("ipip"), 20);
        ck_assert_int_eq(doctor_calico_overhead("bird"), 0);
        ck_assert_int_lt(doctor_calico_overhead("nope"), 0);
}
END_TEST

START_TEST(test_yaml) {
        const char *y = "spec:\n  network:\n    provider: calico\n    calico:\n      mtu: 1400\n";
        yaml_document_t doc;
        ck_assert_int_eq(doctor_yaml_load(y, strlen(y), &doc), 0);
        yaml_node_t *n = doctor_yaml_get(&doc, "spec.network.calico.mtu");
        ck_assert_str_eq(doctor_yaml_scalar(n), "1400");
        ck_assert_uint_eq(doctor_yaml_line(n), 5);
        ck_assert_ptr_null(doctor_yaml_get(&doc, "spec.network.calico.mode"));
        ck_assert_ptr_null(doctor_yaml_scalar(doctor_yaml_get(&doc, "spec.network")));
        yaml_document_delete(&doc);
        ck_assert_int_lt(doctor_yaml_load("a: [", 4, &doc), 0);
}
END_TEST

START_TEST(test_token) {
        _cleanup_free_ char *url = NULL, *host = NULL, *url2 = NULL;
        const char *tok = /* base64(gzip(a kubeconfig naming 100.64.0.2)) */
                "H4sIAAAAAAACA0ssyAxLLSrOzM+zUigz5ErOKS0uAfKtuHQVoGwrLgUgKE4tKgOy"
                "FTJKSgqKrfT1DQ0M9MxM9Az0jKzMTEyMgWryEnNTrRSyDYq5ADufWZ1UAAAA";
        unsigned port;
        ck_assert_int_eq(doctor_token_server(tok, strlen(tok), &url), 0);
        ck_assert_str_eq(url, "https://100.64.0.2:6443");
        ck_assert_int_eq(doctor_url_host_port(url, &host, &port), 0);
        ck_assert_str_eq(host, "100.64.0.2");
        ck_assert_uint_eq(port, 6443);
        ck_assert_int_lt(doctor_token_server("H4sIAAAA-fake", 13, &url2), 0);
        free(host);
        ck_assert_int_eq(doctor_url_host_port("http://[fd7a::1]:5000/v2", &host, &port), 0);
        ck_assert_str_eq(host, "fd7a::1");
        ck_assert_uint_eq(port, 5000);
}
END_TEST

START_TEST(test_unit) {
        _cleanup_strv_free_ char **exec = NULL, **env = NULL;
        ck_assert_int_eq(doctor_unit_parse("[Service]\nExecStart=/usr/local/bin/k0s worker "
                                           "--data-dir=/srv/k0s --labels=\"a=b\"\n"
                                           "Environment=\"HTTP_PROXY=x\" NO_PROXY=y\n",
                                           &exec, &env),
                         0);
        ck_assert_uint_eq(strv_length(exec), 4);
        ck_assert_str_eq(exec[2], "--data-dir=/srv/k0s");
        ck_assert_str_eq(exec[3], "--labels=a=b");
        ck_assert_uint_eq(strv_length(env), 2);
        ck_assert_str_eq(env[0], "HTTP_PROXY=x");
}
END_TEST

START_TEST(test_cidr) {
        ck_assert(doctor_address_in_cidr("10.244.3.4", "10.244.0.0/16"));
        ck_assert(!doctor_address_in_cidr("10.245.3.4", "10.244.0.0/16"));
        ck_assert(doctor_address_in_cidr("10.100.0.1", "10.96.0.0/12"));
        ck_assert(!doctor_address_in_cidr("fd00::1", "10.96.0.0/12"));
        ck_assert(!doctor_address_in_cidr("10.0.0.1", "garbage"));
}
END_TEST

static Suite *doctor_rules_suite(void) {
        Suite *s = suite_create("doctor-rules");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_parse_mark);
        tcase_add_test(tc, test_iptables_save);
        tcase_add_test(tc, test_nft_json);
        tcase_add_test(tc, test_resolv_conf);
        tcase_add_test(tc, test_overhead);
        tcase_add_test(tc, test_yaml);
        tcase_add_test(tc, test_token);
        tcase_add_test(tc, test_unit);
        tcase_add_test(tc, test_cidr);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(doctor_rules_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
