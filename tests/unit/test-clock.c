/* SPDX-License-Identifier: MIT */
/* The clock watch against a fake synchronization source and a temp timesync directory: the
 * fact at start per wait_sync, release by timesyncd's file (also when its directory appears
 * later), by a re-check of the source, and by the timeout. */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "util.h"

static int fake_state;
static int n_changes;
static char tmp[] = "/tmp/test-clock-XXXXXX";
static sd_event *ev;

static int fake_source(void *userdata) {
        return fake_state;
}

static int64_t fake_offset_usec;

static int64_t fake_offset(void *userdata) {
        return fake_offset_usec;
}

static void on_change(ClockWatch *c, void *userdata) {
        n_changes++;
}

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(strcpy(tmp, "/tmp/test-clock-XXXXXX")));
        ck_assert_int_ge(sd_event_new(&ev), 0);
        fake_state = TIME_ERROR;
        n_changes = 0;
}

static void teardown(void) {
        char *argv_rm = strdup_printf("rm -rf '%s'", tmp);
        ck_assert_int_eq(system(argv_rm), 0);
        free(argv_rm);
        ev = sd_event_unref(ev);
}

static char *tpath(const char *name) {
        return strdup_printf("%s/%s", tmp, name);
}

static ClockWatch *watch(ClockWaitSync w, uint64_t timeout, const char *rtc, const char *dir) {
        _cleanup_free_ char *r = tpath(rtc), *d = tpath(dir);
        ClockWatchParams p = { .wait_sync = w,
                               .timeout_usec = timeout,
                               .rtc_path = r,
                               .timesync_dir = d,
                               .source = fake_source,
                               .offset = fake_offset };
        ClockWatch *c = NULL;
        ck_assert_int_eq(clock_watch_new_with(&p, on_change, NULL, &c), 0);
        ck_assert_int_eq(clock_watch_attach(c, ev), 0);
        return c;
}

/* Run the loop until n_changes reaches want or max_usec passes. */
static void run_until(int want, uint64_t max_usec) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (;;) {
                if (n_changes >= want)
                        return;
                clock_gettime(CLOCK_MONOTONIC, &b);
                uint64_t el = (uint64_t) (b.tv_sec - a.tv_sec) * USEC_PER_SEC +
                        (uint64_t) (b.tv_nsec - a.tv_nsec) / 1000;
                if (el >= max_usec)
                        return;
                ck_assert_int_ge(sd_event_run(ev, max_usec - el), 0);
        }
}

static void touch(const char *name) {
        _cleanup_free_ char *p = tpath(name);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);
}

START_TEST(test_not_needed) {
        touch("rtc0");
        _cleanup_(clock_watch_freep) ClockWatch *a =
                watch(CLOCK_WAIT_SYNC_AUTO, USEC_PER_SEC, "rtc0", "timesync");
        ck_assert_int_eq(clock_watch_get_fact(a), CLOCK_FACT_NOT_NEEDED);
        ck_assert(!clock_watch_is_synced(a));
        _cleanup_(clock_watch_freep) ClockWatch *b =
                watch(CLOCK_WAIT_SYNC_NO, USEC_PER_SEC, "no-rtc", "timesync");
        ck_assert_int_eq(clock_watch_get_fact(b), CLOCK_FACT_NOT_NEEDED);
        /* Not needed stays not needed: nothing to release, no timeout. */
        run_until(1, 300 * USEC_PER_MSEC);
        ck_assert_int_eq(n_changes, 0);
}
END_TEST

START_TEST(test_synced_at_start) {
        fake_state = TIME_OK;
        _cleanup_(clock_watch_freep) ClockWatch *c =
                watch(CLOCK_WAIT_SYNC_AUTO, USEC_PER_SEC, "no-rtc", "timesync");
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_SYNCED);
        ck_assert(clock_watch_is_synced(c));
        /* TIME_INS and friends (leap second pending) are synchronized too. */
        fake_state = TIME_INS;
        _cleanup_(clock_watch_freep) ClockWatch *d =
                watch(CLOCK_WAIT_SYNC_YES, USEC_PER_SEC, "rtc-ignored", "timesync");
        ck_assert_int_eq(clock_watch_get_fact(d), CLOCK_FACT_SYNCED);
}
END_TEST

START_TEST(test_released_by_file) {
        _cleanup_free_ char *d = tpath("timesync");
        ck_assert_int_eq(mkdir(d, 0755), 0);
        _cleanup_(clock_watch_freep) ClockWatch *c =
                watch(CLOCK_WAIT_SYNC_AUTO, 60 * USEC_PER_SEC, "no-rtc", "timesync");
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_WAITING);
        run_until(1, 200 * USEC_PER_MSEC);
        ck_assert_int_eq(n_changes, 0);
        touch("timesync/synchronized");
        run_until(1, 5 * USEC_PER_SEC);
        ck_assert_int_eq(n_changes, 1);
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_SYNCED);
}
END_TEST

START_TEST(test_released_when_dir_appears) {
        /* /run/systemd/timesync does not exist before timesyncd starts. */
        _cleanup_(clock_watch_freep) ClockWatch *c =
                watch(CLOCK_WAIT_SYNC_YES, 60 * USEC_PER_SEC, "rtc", "run/systemd/timesync");
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_WAITING);
        _cleanup_free_ char *a = tpath("run"), *b = tpath("run/systemd"),
                            *d = tpath("run/systemd/timesync");
        ck_assert_int_eq(mkdir(a, 0755), 0);
        run_until(1, 100 * USEC_PER_MSEC);
        ck_assert_int_eq(mkdir(b, 0755), 0);
        run_until(1, 100 * USEC_PER_MSEC);
        ck_assert_int_eq(mkdir(d, 0755), 0);
        run_until(1, 100 * USEC_PER_MSEC);
        ck_assert_int_eq(n_changes, 0);
        touch("run/systemd/timesync/synchronized");
        run_until(1, 5 * USEC_PER_SEC);
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_SYNCED);
}
END_TEST

START_TEST(test_released_by_source) {
        _cleanup_(clock_watch_freep) ClockWatch *c =
                watch(CLOCK_WAIT_SYNC_YES, 60 * USEC_PER_SEC, "rtc", "timesync");
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_WAITING);
        fake_state = TIME_OK;
        clock_watch_recheck(c); /* what a clock step (timerfd cancel) does */
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_SYNCED);
        ck_assert_int_eq(n_changes, 1);
        /* A lost sync later does not hold k0s again. */
        fake_state = TIME_ERROR;
        clock_watch_recheck(c);
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_SYNCED);
        ck_assert(!clock_watch_is_synced(c));
}
END_TEST

/* A step of the wall clock while k0s runs: counted with its size (what the log line carries),
 * and the fact (what holds or releases k0s) does not change. */
START_TEST(test_step_size) {
        _cleanup_(clock_watch_freep) ClockWatch *c =
                watch(CLOCK_WAIT_SYNC_YES, 60 * USEC_PER_SEC, "rtc", "timesync");
        fake_state = TIME_OK;
        clock_watch_recheck(c);
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_SYNCED);
        int changes = n_changes;

        fake_offset_usec += 3 * 3600 * (int64_t) USEC_PER_SEC; /* NTP fixes a clock 3 h behind */
        clock_watch_step(c);
        ck_assert_uint_eq(clock_watch_get_jumps(c), 1);
        ck_assert_int_eq(clock_watch_get_last_jump_usec(c), 3 * 3600 * (int64_t) USEC_PER_SEC);
        fake_offset_usec -= 1500 * (int64_t) USEC_PER_MSEC; /* and back by 1.5 s */
        clock_watch_step(c);
        ck_assert_uint_eq(clock_watch_get_jumps(c), 2);
        ck_assert_int_eq(clock_watch_get_last_jump_usec(c), -1500 * (int64_t) USEC_PER_MSEC);
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_SYNCED);
        ck_assert_int_eq(n_changes, changes);
}
END_TEST

START_TEST(test_timeout) {
        _cleanup_(clock_watch_freep) ClockWatch *c =
                watch(CLOCK_WAIT_SYNC_YES, 300 * USEC_PER_MSEC, "rtc", "ts");
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_WAITING);
        run_until(1, 5 * USEC_PER_SEC);
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_TIMED_OUT);
        /* A sync after the timeout is still reported. */
        fake_state = TIME_OK;
        clock_watch_recheck(c);
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_SYNCED);
        ck_assert_int_eq(n_changes, 2);
}
END_TEST

START_TEST(test_env_hooks) {
        _cleanup_(config_freep) AgentConfig *cfg = NULL;
        ck_assert_int_eq(config_new_default(&cfg), 0);
        _cleanup_free_ char *d = tpath("ts");
        setenv("K0S_TSAGENT_TEST_CLOCK_RTC", "/nonexistent/rtc0", 1);
        setenv("K0S_TSAGENT_TEST_CLOCK_TIMESYNC_DIR", d, 1);
        setenv("K0S_TSAGENT_TEST_CLOCK_SOURCE", "unsynchronized", 1);
        _cleanup_(clock_watch_freep) ClockWatch *c = NULL;
        ck_assert_int_eq(clock_watch_new(cfg, on_change, NULL, &c), 0);
        ck_assert_int_eq(clock_watch_attach(c, ev), 0);
        ck_assert_int_eq(clock_watch_get_fact(c), CLOCK_FACT_WAITING);
        setenv("K0S_TSAGENT_TEST_CLOCK_SOURCE", "bogus", 1);
        ClockWatch *x = NULL;
        ck_assert_int_eq(clock_watch_new(cfg, on_change, NULL, &x), -EINVAL);
        unsetenv("K0S_TSAGENT_TEST_CLOCK_RTC");
        unsetenv("K0S_TSAGENT_TEST_CLOCK_TIMESYNC_DIR");
        unsetenv("K0S_TSAGENT_TEST_CLOCK_SOURCE");
}
END_TEST

static Suite *clock_suite(void) {
        Suite *s = suite_create("clock");
        TCase *tc = tcase_create("clock");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_not_needed);
        tcase_add_test(tc, test_synced_at_start);
        tcase_add_test(tc, test_released_by_file);
        tcase_add_test(tc, test_released_when_dir_appears);
        tcase_add_test(tc, test_released_by_source);
        tcase_add_test(tc, test_timeout);
        tcase_add_test(tc, test_step_size);
        tcase_add_test(tc, test_env_hooks);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(clock_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
