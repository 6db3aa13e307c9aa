/* SPDX-License-Identifier: MIT */
/* netwatch parts that need no netlink: the tailnet address test and the object lifecycle. */

#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "netwatch.h"

static const struct {
        const char *address;
        bool tailnet;
} tailnet_table[] = {
        { "100.64.0.0", true }, /* first of 100.64.0.0/10 */
        { "100.64.1.2", true },
        { "100.100.100.100", true }, /* the tailnet service IP is inside the range */
        { "100.127.255.255", true }, /* last of 100.64.0.0/10 */
        { "100.128.0.0", false }, /* one past the end */
        { "100.63.255.255", false }, /* one before the start */
        { "100.115.91.255", true }, /* just below the ChromeOS VM range */
        { "100.115.92.0", false }, /* 100.115.92.0/23: ChromeOS VMs, never tailnet */
        { "100.115.92.5", false },
        { "100.115.93.255", false },
        { "100.115.94.1", true }, /* just above it */
        { "10.0.0.1", false },
        { "192.168.1.1", false },
        { "0.0.0.0", false },
        { "255.255.255.255", false },
        { "100.64.0.0/10", false }, /* a prefix is not an address */
        { "100.64.1", false }, /* inet_pton wants all four parts */
        { " 100.64.1.2", false },
        { "100.64.1.2 ", false },
        { "100.64.1.256", false },
        { "garbage", false },
        { "", false },
        { "fd7a:115c:a1e0::1", false }, /* IPv6 is not an IPv4 tailnet address */
        { "::ffff:100.64.1.2", false },
};

START_TEST(test_address_is_tailnet_ipv4) {
        const char *a = tailnet_table[_i].address;

        ck_assert_msg(address_is_tailnet_ipv4(a) == tailnet_table[_i].tailnet, "'%s': expected %s",
                      a, tailnet_table[_i].tailnet ? "tailnet" : "not tailnet");
}
END_TEST

START_TEST(test_address_is_tailnet_ipv4_null) {
        ck_assert(!address_is_tailnet_ipv4(NULL));
}
END_TEST

START_TEST(test_new_rejects_bad_names) {
        Netwatch *nw = (Netwatch *) 0x1;

        ck_assert_int_eq(netwatch_new(NULL, NULL, NULL, &nw), -EINVAL);
        ck_assert_int_eq(netwatch_new("", NULL, NULL, &nw), -EINVAL);
        /* IFNAMSIZ is 16 including the NUL: 16 characters cannot be an interface name. */
        ck_assert_int_eq(netwatch_new("abcdefghijklmnop", NULL, NULL, &nw), -EINVAL);
        ck_assert_ptr_eq(nw, (Netwatch *) 0x1); /* ret_ untouched on failure */

        ck_assert_int_eq(netwatch_new("abcdefghijklmno", NULL, NULL, &nw), 0);
        ck_assert_ptr_ne(nw, NULL);
        nw = netwatch_free(nw);
        ck_assert_ptr_eq(nw, NULL);
}
END_TEST

START_TEST(test_state_before_attach) {
        _cleanup_(netwatch_freep) Netwatch *nw = NULL;
        const NetState *s;

        ck_assert_int_eq(netwatch_new("tailscale0", NULL, NULL, &nw), 0);
        s = netwatch_get_state(nw);
        ck_assert(!s->present);
        ck_assert(!s->up);
        ck_assert_int_eq(s->ifindex, 0);
        ck_assert_uint_eq(s->n_ipv4, 0);
        ck_assert_uint_eq(s->n_ipv6, 0);
        ck_assert_uint_eq(s->n_recreated, 0);
        ck_assert_uint_eq(netwatch_get_resyncs(nw), 0);

        /* Not attached: renaming only records the name, nothing changes. */
        ck_assert_int_eq(netwatch_set_ifname(nw, "ts1"), 0);
        ck_assert_int_eq(netwatch_set_ifname(nw, ""), -EINVAL);
        ck_assert_int_eq(netwatch_set_rcvbuf(nw, 4096), 0);
        ck_assert_int_eq(netwatch_set_rcvbuf(nw, 0), -EINVAL);
        ck_assert_int_eq(netwatch_attach(nw, NULL), -EINVAL);
}
END_TEST

START_TEST(test_free_null) {
        ck_assert_ptr_eq(netwatch_free(NULL), NULL);
}
END_TEST

static Suite *netwatch_helpers_suite(void) {
        Suite *s = suite_create("netwatch-helpers");
        TCase *tc = tcase_create("core");

        tcase_add_loop_test(tc, test_address_is_tailnet_ipv4, 0, (int) ELEMENTSOF(tailnet_table));
        tcase_add_test(tc, test_address_is_tailnet_ipv4_null);
        tcase_add_test(tc, test_new_rejects_bad_names);
        tcase_add_test(tc, test_state_before_attach);
        tcase_add_test(tc, test_free_null);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(netwatch_helpers_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
