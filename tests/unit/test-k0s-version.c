/* SPDX-License-Identifier: MIT */
/*
 * k0s-version: table tests of what `k0s version` may print (and what it does not), and of the
 * 1.35/1.36 boundary that picks the containerd drop-in format.
 */

#include <check.h>
#include <stdlib.h>

#include "k0s-version.h"
#include "macro.h"

static const struct {
        const char *in;
        unsigned major, minor, patch;
        const char *text;
        ContainerdFormat fmt;
} good[] = {
        { "v1.35.7+k0s.0", 1, 35, 7, "v1.35.7+k0s.0", CONTAINERD_FORMAT_V2 },
        { "v1.35.7+k0s.0\n", 1, 35, 7, "v1.35.7+k0s.0", CONTAINERD_FORMAT_V2 },
        { "1.36.1+k0s.0", 1, 36, 1, "v1.36.1+k0s.0", CONTAINERD_FORMAT_V3 },
        { "v1.36.1-rc.1+k0s.0", 1, 36, 1, "v1.36.1-rc.1+k0s.0", CONTAINERD_FORMAT_V3 },
        { "  \t v1.33.4+k0s.0 \r\n", 1, 33, 4, "v1.33.4+k0s.0", CONTAINERD_FORMAT_V2 },
        { "\n\nv1.34.0+k0s.1\nsecond line is ignored\n", 1, 34, 0, "v1.34.0+k0s.1",
          CONTAINERD_FORMAT_V2 },
        { "v1.35.99+k0s.12", 1, 35, 99, "v1.35.99+k0s.12", CONTAINERD_FORMAT_V2 },
        { "v1.36.0", 1, 36, 0, "v1.36.0", CONTAINERD_FORMAT_V3 },
        { "v1.37.0-beta.0", 1, 37, 0, "v1.37.0-beta.0", CONTAINERD_FORMAT_V3 },
        { "v2.0.0+k0s.0", 2, 0, 0, "v2.0.0+k0s.0", CONTAINERD_FORMAT_V3 },
        { "v1.27.1+k0s.0", 1, 27, 1, "v1.27.1+k0s.0", CONTAINERD_FORMAT_V2 },
        { "v0.9.0", 0, 9, 0, "v0.9.0", CONTAINERD_FORMAT_V2 },
        { "v1.100.0+k0s.0", 1, 100, 0, "v1.100.0+k0s.0", CONTAINERD_FORMAT_V3 },
        { "v4294967295.0.0", 4294967295u, 0, 0, "v4294967295.0.0", CONTAINERD_FORMAT_V3 },
};

static const char *const bad[] = {
        "",
        " ",
        "\n",
        "v",
        "v1",
        "1",
        "v1.35",
        "v1.35.",
        "v1..7",
        "v1.35.7.1",
        "vv1.35.7",
        "V1.35.7",
        "garbage",
        "v1.35.x",
        "v1.35.7+",
        "v1.35.7-",
        "v1.35.7+k0s..0",
        "v1.35.7+k0s.0.",
        "v1.35.7 +k0s.0",
        "v1.35.7+k0s 0",
        "v1.35.7_k0s",
        "v-1.35.7",
        "v+1.35.7",
        "v1.-35.7",
        "v01.35.7",
        "v1.035.7",
        "v4294967296.0.0", /* UINT_MAX + 1 */
        "v1.99999999999999999999999.0", /* would overflow even 64 bits */
        "v1.35.18446744073709551616+k0s.0", /* 2^64 */
        "k0s version v1.35.7+k0s.0", /* `k0s version` prints only the version */
        "Version: v1.35.7+k0s.0",
        "v1.35.7+k0s.0 (commit abc)",
        "\xff\xfe",
        "v1.35.7+k0s.0-very-long-build-metadata-that-does-not-fit-into-the-text-field-at-all",
};

START_TEST(test_parse_good) {
        K0sVersion v = {};

        ck_assert_int_eq(k0s_version_parse(good[_i].in, &v), 0);
        ck_assert_uint_eq(v.major, good[_i].major);
        ck_assert_uint_eq(v.minor, good[_i].minor);
        ck_assert_uint_eq(v.patch, good[_i].patch);
        ck_assert_str_eq(v.text, good[_i].text);
        ck_assert_int_eq(k0s_version_containerd_format(&v), good[_i].fmt);
}
END_TEST

START_TEST(test_parse_bad) {
        K0sVersion v = { .major = 77, .text = "untouched" };

        ck_assert_msg(k0s_version_parse(bad[_i], &v) == -EINVAL, "accepted \"%s\"", bad[_i]);
        /* ret is written only on success */
        ck_assert_uint_eq(v.major, 77);
        ck_assert_str_eq(v.text, "untouched");
}
END_TEST

START_TEST(test_parse_null) {
        K0sVersion v = {};

        ck_assert_int_eq(k0s_version_parse(NULL, &v), -EINVAL);
        ck_assert_int_eq(k0s_version_containerd_format(NULL), _CONTAINERD_FORMAT_INVALID);
}
END_TEST

START_TEST(test_boundary) {
        /* The exact switch point: every 1.35.x is v2, every 1.36.x is v3. */
        K0sVersion v = { .major = 1, .minor = 35, .patch = 4294967295u };

        ck_assert_int_eq(k0s_version_containerd_format(&v), CONTAINERD_FORMAT_V2);
        v.minor = 36;
        v.patch = 0;
        ck_assert_int_eq(k0s_version_containerd_format(&v), CONTAINERD_FORMAT_V3);
}
END_TEST

START_TEST(test_at_least) {
        static const struct {
                const char *v;
                bool ok;
        } t[] = {
                { "v1.28.1+k0s.0", false },     { "v1.28.2+k0s.0", true },
                { "v1.28.2-rc.1+k0s.0", true }, { "v1.27.9+k0s.0", false },
                { "v1.29.0+k0s.0", true },      { "v2.0.0+k0s.0", true },
                { "v0.99.99+k0s.0", false },
        };
        K0sVersion v;

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                ck_assert_int_eq(k0s_version_parse(t[i].v, &v), 0);
                ck_assert_msg(k0s_version_at_least(&v, 1, 28, 2) == t[i].ok, "%s", t[i].v);
        }
        ck_assert(!k0s_version_at_least(NULL, 0, 0, 0));
}
END_TEST

START_TEST(test_format_to_string) {
        ck_assert_str_eq(containerd_format_to_string(CONTAINERD_FORMAT_V2), "v2");
        ck_assert_str_eq(containerd_format_to_string(CONTAINERD_FORMAT_V3), "v3");
        ck_assert_ptr_null(containerd_format_to_string(_CONTAINERD_FORMAT_MAX));
        ck_assert_ptr_null(containerd_format_to_string(_CONTAINERD_FORMAT_INVALID));
}
END_TEST

static Suite *k0s_version_suite(void) {
        Suite *s = suite_create("k0s-version");
        TCase *tc = tcase_create("core");

        tcase_add_loop_test(tc, test_parse_good, 0, (int) ELEMENTSOF(good));
        tcase_add_loop_test(tc, test_parse_bad, 0, (int) ELEMENTSOF(bad));
        tcase_add_test(tc, test_parse_null);
        tcase_add_test(tc, test_boundary);
        tcase_add_test(tc, test_format_to_string);
        tcase_add_test(tc, test_at_least);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(k0s_version_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
