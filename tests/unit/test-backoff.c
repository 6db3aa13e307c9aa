/* SPDX-License-Identifier: MIT */
/*
 * backoff: the doubling sequence, the cap, reset, the floor, and the corner cases (odd and huge
 * max, max below min, min of 0) that must neither overflow nor exceed the cap.
 */

#include <check.h>
#include <stdlib.h>

#include "backoff.h"
#include "macro.h"

START_TEST(test_sequence) {
        static const uint64_t want[] = { 1, 2, 4, 8, 16, 32, 60, 60, 60 };
        Backoff b;

        backoff_init(&b, 1 * USEC_PER_SEC, 60 * USEC_PER_SEC);
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                ck_assert_uint_eq(backoff_next(&b), want[i] * USEC_PER_SEC);
}
END_TEST

START_TEST(test_reset) {
        Backoff b;

        backoff_init(&b, 250 * USEC_PER_MSEC, 10 * USEC_PER_SEC);
        for (int i = 0; i < 5; i++)
                (void) backoff_next(&b);
        ck_assert_uint_eq(backoff_next(&b), 8 * USEC_PER_SEC);
        backoff_reset(&b);
        ck_assert_uint_eq(backoff_next(&b), 250 * USEC_PER_MSEC);
        ck_assert_uint_eq(backoff_next(&b), 500 * USEC_PER_MSEC);
}
END_TEST

START_TEST(test_floor) {
        static const uint64_t want[] = { 250, 500, 1000, 2000, 2000 };
        Backoff b;

        /* [0s, 60s] and [0s, 0s]: a zero min still grows, a zero max is no tight loop. */
        backoff_init_floor(&b, 0, 60 * USEC_PER_SEC, 250 * USEC_PER_MSEC, 2 * USEC_PER_SEC);
        for (size_t i = 0; i < 4; i++)
                ck_assert_uint_eq(backoff_next(&b), want[i] * USEC_PER_MSEC);
        ck_assert_uint_eq(backoff_next(&b), 4 * USEC_PER_SEC); /* the config's max is higher */
        backoff_init_floor(&b, 0, 0, 250 * USEC_PER_MSEC, 2 * USEC_PER_SEC);
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                ck_assert_uint_eq(backoff_next(&b), want[i] * USEC_PER_MSEC);
        backoff_reset(&b);
        ck_assert_uint_eq(backoff_next(&b), 250 * USEC_PER_MSEC);
        /* Above the floor the config rules. */
        backoff_init_floor(&b, 3 * USEC_PER_SEC, 5 * USEC_PER_SEC, 250 * USEC_PER_MSEC,
                           2 * USEC_PER_SEC);
        ck_assert_uint_eq(backoff_next(&b), 3 * USEC_PER_SEC);
        ck_assert_uint_eq(backoff_next(&b), 5 * USEC_PER_SEC);
}
END_TEST

START_TEST(test_odd_max) {
        /* 2, 4 then the cap 5, not 8 and not an early jump to 5 */
        Backoff b;

        backoff_init(&b, 2, 5);
        ck_assert_uint_eq(backoff_next(&b), 2);
        ck_assert_uint_eq(backoff_next(&b), 4);
        ck_assert_uint_eq(backoff_next(&b), 5);
        ck_assert_uint_eq(backoff_next(&b), 5);
}
END_TEST

START_TEST(test_no_overflow) {
        Backoff b;
        uint64_t prev = 0;

        backoff_init(&b, 1, UINT64_MAX);
        for (int i = 0; i < 200; i++) {
                uint64_t d = backoff_next(&b);
                ck_assert_uint_ge(d, prev); /* monotonic: a wrap-around would show as a drop */
                prev = d;
        }
        ck_assert_uint_eq(prev, UINT64_MAX);
}
END_TEST

START_TEST(test_max_below_min) {
        Backoff b;

        backoff_init(&b, 10 * USEC_PER_SEC, 1 * USEC_PER_SEC);
        ck_assert_uint_eq(backoff_next(&b), 1 * USEC_PER_SEC);
        ck_assert_uint_eq(backoff_next(&b), 1 * USEC_PER_SEC);
        backoff_reset(&b);
        ck_assert_uint_eq(backoff_next(&b), 1 * USEC_PER_SEC);
}
END_TEST

START_TEST(test_zero_min) {
        Backoff b;

        backoff_init(&b, 0, 60 * USEC_PER_SEC);
        ck_assert_uint_eq(backoff_next(&b), 0);
        ck_assert_uint_eq(backoff_next(&b), 0);
}
END_TEST

static Suite *backoff_suite(void) {
        Suite *s = suite_create("backoff");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_sequence);
        tcase_add_test(tc, test_reset);
        tcase_add_test(tc, test_floor);
        tcase_add_test(tc, test_odd_max);
        tcase_add_test(tc, test_no_overflow);
        tcase_add_test(tc, test_max_below_min);
        tcase_add_test(tc, test_zero_min);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(backoff_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
