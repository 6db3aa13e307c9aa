/* SPDX-License-Identifier: MIT */
/*
 * util and macro.h: string vectors (NULL and empty handling, ownership), strdup_printf, the
 * safe_ato* family at and beyond every limit, and the small string/ownership macros.
 */

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "macro.h"
#include "util.h"

START_TEST(test_strv_basics) {
        _cleanup_strv_free_ char **l = NULL;
        char *owned;

        ck_assert_uint_eq(strv_length(NULL), 0);
        ck_assert_ptr_null(strv_free(NULL));
        ck_assert(!strv_contains(NULL, "a"));

        ck_assert_int_eq(strv_extend(&l, "a"), 0);
        ck_assert_int_eq(strv_extend(&l, "b"), 0);
        owned = strdup("c");
        ck_assert_ptr_nonnull(owned);
        ck_assert_int_eq(strv_push(&l, owned), 0);
        ck_assert_ptr_eq(l[2], owned); /* push takes the pointer itself */
        ck_assert_uint_eq(strv_length(l), 3);
        ck_assert_str_eq(l[0], "a");
        ck_assert_str_eq(l[1], "b");
        ck_assert_ptr_null(l[3]);
        ck_assert(strv_contains(l, "b"));
        ck_assert(!strv_contains(l, "d"));
        ck_assert(!strv_contains(l, ""));

        /* extend copies */
        char buf[] = "x";
        ck_assert_int_eq(strv_extend(&l, buf), 0);
        ck_assert_ptr_ne(l[3], buf);
        buf[0] = 'y';
        ck_assert_str_eq(l[3], "x");
}
END_TEST

START_TEST(test_strv_copy_equal) {
        _cleanup_strv_free_ char **a = NULL, **b = NULL, **empty = NULL, **e2 = NULL;

        empty = strv_copy(NULL);
        ck_assert_ptr_nonnull(empty);
        ck_assert_uint_eq(strv_length(empty), 0);
        ck_assert(strv_equal(NULL, NULL));
        ck_assert(strv_equal(NULL, empty));
        ck_assert(strv_equal(empty, NULL));

        ck_assert_int_eq(strv_extend(&a, "one"), 0);
        ck_assert_int_eq(strv_extend(&a, "two"), 0);
        b = strv_copy(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_ptr_ne(a, b);
        ck_assert_ptr_ne(a[0], b[0]);
        ck_assert(strv_equal(a, b));
        ck_assert(!strv_equal(a, empty));

        e2 = strv_copy(empty);
        ck_assert_ptr_nonnull(e2);
        ck_assert(strv_equal(e2, empty));

        free(b[1]);
        b[1] = strdup("three");
        ck_assert(!strv_equal(a, b));
        ck_assert_int_eq(strv_extend(&b, "x"), 0);
        ck_assert(!strv_equal(a, b)); /* length differs */
}
END_TEST

START_TEST(test_strv_join) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *j0 = NULL, *j1 = NULL, *j2 = NULL, *j3 = NULL;

        j0 = strv_join(NULL, ",");
        ck_assert_str_eq(j0, "");
        ck_assert_int_eq(strv_extend(&l, "a"), 0);
        j1 = strv_join(l, ", ");
        ck_assert_str_eq(j1, "a");
        ck_assert_int_eq(strv_extend(&l, ""), 0);
        ck_assert_int_eq(strv_extend(&l, "ccc"), 0);
        j2 = strv_join(l, ", ");
        ck_assert_str_eq(j2, "a, , ccc");
        j3 = strv_join(l, "");
        ck_assert_str_eq(j3, "accc");
}
END_TEST

START_TEST(test_strdup_printf) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        a = strdup_printf("%s:%u:%u: %s", "f.yaml", 3u, 14u, "msg");
        ck_assert_str_eq(a, "f.yaml:3:14: msg");
        b = strdup_printf("%s", "");
        ck_assert_str_eq(b, "");
        c = strdup_printf("%05d|%-3s|", 42, "x");
        ck_assert_str_eq(c, "00042|x  |");
}
END_TEST

START_TEST(test_safe_atou64) {
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } cases[] = {
                { "0", 0, 0 },
                { "42", 0, 42 },
                { "007", 0, 7 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "99999999999999999999999", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "-0", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "\t1", -EINVAL, 0 },
                { "\n1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "1\n", -EINVAL, 0 },
                { "12a", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
                { "abc", -EINVAL, 0 },
                { "1.5", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 4711;
                int r = safe_atou64(cases[i].s, &v);

                ck_assert_msg(r == cases[i].r, "'%s': r=%d", cases[i].s, r);
                ck_assert_uint_eq(v, r == 0 ? cases[i].v : 4711);
        }
        uint64_t v = 1;
        ck_assert_int_eq(safe_atou64(NULL, &v), -EINVAL);
        ck_assert_uint_eq(v, 1);
}
END_TEST

START_TEST(test_safe_atou) {
        unsigned v = 4711;

        ck_assert_int_eq(safe_atou("4294967295", &v), 0);
        ck_assert_uint_eq(v, UINT_MAX);
        ck_assert_int_eq(safe_atou("0", &v), 0);
        ck_assert_uint_eq(v, 0);
        v = 4711;
        ck_assert_int_eq(safe_atou("4294967296", &v), -ERANGE);
        ck_assert_int_eq(safe_atou("18446744073709551616", &v), -ERANGE);
        ck_assert_int_eq(safe_atou("-1", &v), -EINVAL);
        ck_assert_int_eq(safe_atou(" 5", &v), -EINVAL);
        ck_assert_int_eq(safe_atou("", &v), -EINVAL);
        ck_assert_int_eq(safe_atou("5x", &v), -EINVAL);
        ck_assert_uint_eq(v, 4711);
}
END_TEST

START_TEST(test_safe_atoi) {
        static const struct {
                const char *s;
                int r;
                int v;
        } cases[] = {
                { "0", 0, 0 },
                { "-0", 0, 0 },
                { "42", 0, 42 },
                { "-42", 0, -42 },
                { "+42", 0, 42 },
                { "2147483647", 0, INT_MAX },
                { "-2147483648", 0, INT_MIN },
                { "2147483648", -ERANGE, 0 },
                { "-2147483649", -ERANGE, 0 },
                { "99999999999999999999", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "-", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "\t1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "1x", -EINVAL, 0 },
                { "0x1", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int v = 4711;
                int r = safe_atoi(cases[i].s, &v);

                ck_assert_msg(r == cases[i].r, "'%s': r=%d", cases[i].s, r);
                ck_assert_int_eq(v, r == 0 ? cases[i].v : 4711);
        }
        int v = 1;
        ck_assert_int_eq(safe_atoi(NULL, &v), -EINVAL);
}
END_TEST

START_TEST(test_string_helpers) {
        ck_assert(streq("a", "a"));
        ck_assert(!streq("a", "ab"));
        ck_assert(streq_ptr(NULL, NULL));
        ck_assert(!streq_ptr("a", NULL));
        ck_assert(!streq_ptr(NULL, "a"));
        ck_assert(streq_ptr("abc", "abc"));
        ck_assert(!streq_ptr("abc", "abd"));
        ck_assert(startswith("http://x", "http://"));
        ck_assert(startswith("x", ""));
        ck_assert(!startswith("http", "http://"));
        ck_assert(isempty(NULL));
        ck_assert(isempty(""));
        ck_assert(!isempty(" "));
        ck_assert_int_eq(MIN(3, 5), 3);
        ck_assert_int_eq(MAX(3, 5), 5);
        int arr[7];
        ck_assert_uint_eq(ELEMENTSOF(arr), 7);
}
END_TEST

START_TEST(test_take_and_cleanup) {
        _cleanup_free_ char *owner = NULL;
        char *p = strdup("x");
        int fd, kept;

        ck_assert_ptr_nonnull(p);
        owner = TAKE_PTR(p);
        ck_assert_ptr_null(p);
        ck_assert_str_eq(owner, "x");

        {
                _cleanup_close_ int scoped = open("/dev/null", O_RDONLY | O_CLOEXEC);
                ck_assert_int_ge(scoped, 0);
                fd = scoped;
        }
        /* closed by the cleanup attribute */
        ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
        ck_assert_int_eq(errno, EBADF);

        {
                _cleanup_close_ int scoped = open("/dev/null", O_RDONLY | O_CLOEXEC);
                ck_assert_int_ge(scoped, 0);
                kept = TAKE_FD(scoped);
                ck_assert_int_eq(scoped, -1);
        }
        ck_assert_int_ge(fcntl(kept, F_GETFD), 0); /* still open: ownership moved */
        ck_assert_int_eq(close(kept), 0);

        {
                _cleanup_close_ int none = -1; /* closep() ignores -1 */
                _cleanup_strv_free_ char **nothing = NULL;
                _cleanup_free_ char *nil = NULL;
                (void) none;
                (void) nothing;
                (void) nil;
        }
}
END_TEST

static Suite *util_suite(void) {
        Suite *s = suite_create("util");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_strv_basics);
        tcase_add_test(tc, test_strv_copy_equal);
        tcase_add_test(tc, test_strv_join);
        tcase_add_test(tc, test_strdup_printf);
        tcase_add_test(tc, test_safe_atou64);
        tcase_add_test(tc, test_safe_atou);
        tcase_add_test(tc, test_safe_atoi);
        tcase_add_test(tc, test_string_helpers);
        tcase_add_test(tc, test_take_and_cleanup);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(util_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
