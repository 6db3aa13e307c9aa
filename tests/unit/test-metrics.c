/* SPDX-License-Identifier: MIT */
/* Metrics: the pure rendering against golden text (tests/data/metrics/), and the writer: not
 * before its directory exists (no polling), at most once a second with a trailing write, never
 * rewritten while nothing changes. */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic-file.h"
#include "metrics.h"
#include "util.h"

static char tmp[64];
static sd_event *ev;

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(strcpy(tmp, "/tmp/test-metrics-XXXXXX")));
        ck_assert_int_ge(sd_event_new(&ev), 0);
}

static void teardown(void) {
        _cleanup_free_ char *cmd = strdup_printf("rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
        ev = sd_event_unref(ev);
}

static void full_snapshot(MetricsSnapshot *s) {
        metrics_snapshot_init(s);
        strcpy(s->version, "0.1.0-test");
        strcpy(s->k0s_version, "v1.35.7+k0s.0");
        s->gate_open = s->interface_present = s->interface_up = s->self_online = true;
        s->backend_state = BACKEND_RUNNING;
        s->k0s_running = true;
        s->k0s_starts = 3;
        s->k0s_restarts = 2;
        s->k0s_exits[METRICS_EXIT_ERROR] = 1;
        s->k0s_exits[METRICS_EXIT_STOPPED_BY_AGENT] = 1;
        s->k0s_start_time_usec = UINT64_C(1700000000123456);
        s->tailnet_to_k0s_start_usec = 4321;
        s->file_writes[METRICS_FILE_DROPIN] = 1;
        s->file_writes[METRICS_FILE_HOSTS] = 2;
        s->file_writes[METRICS_FILE_STATUS] = 7;
        s->file_write_failures[METRICS_FILE_HOSTS] = 1;
        s->localapi_reconnects = 5;
        s->registry_endpoints[METRICS_REACH_REACHABLE] = 1;
        s->registry_endpoints[METRICS_REACH_UNREACHABLE] = 1;
        s->registry_endpoints[METRICS_REACH_URL] = 1;
        s->clock = CLOCK_FACT_SYNCED;
        s->clock_synced = true;
}

static void check_golden(const MetricsSnapshot *s, const char *name) {
        _cleanup_free_ char *text = NULL, *want = NULL;
        _cleanup_free_ char *path = strdup_printf("%s/metrics/%s", getenv("TEST_DATA_DIR"), name);
        size_t len;

        ck_assert_int_eq(metrics_render(s, &text), 0);
        if (getenv("UPDATE_GOLDEN"))
                ck_assert_int_ge(atomic_file_write(path, text, strlen(text), 0644), 0);
        ck_assert_int_eq(read_file_full(path, 1 << 20, &want, &len), 0);
        ck_assert_str_eq(text, want);
}

START_TEST(test_render_full) {
        MetricsSnapshot s;
        full_snapshot(&s);
        check_golden(&s, "full.prom");
}
END_TEST

START_TEST(test_render_initial) {
        /* Nothing known yet: no start time, no latency, LocalAPI "unreachable". */
        MetricsSnapshot s;
        metrics_snapshot_init(&s);
        strcpy(s.version, "0.1.0-test");
        check_golden(&s, "initial.prom");
}
END_TEST

START_TEST(test_render_escapes) {
        MetricsSnapshot s;
        _cleanup_free_ char *text = NULL;
        metrics_snapshot_init(&s);
        strcpy(s.version, "a\"b\\c\nd");
        ck_assert_int_eq(metrics_render(&s, &text), 0);
        ck_assert_ptr_nonnull(
                strstr(text, "{version=\"a\\\"b\\\\c\",k0s_version=\"unknown\"} 1\n"));
}
END_TEST

START_TEST(test_tracker) {
        MetricsTracker t;
        metrics_tracker_init(&t);

        metrics_tracker_gate(&t, true, 1000);
        metrics_tracker_k0s(&t, 0, 0, false, false, NULL, 1500); /* not yet */
        ck_assert_int_eq(t.snap.k0s_starts, 0);
        metrics_tracker_k0s(&t, 100, 5000000, false, false, NULL, 4000);
        ck_assert_int_eq(t.snap.k0s_starts, 1);
        ck_assert_int_eq(t.snap.k0s_restarts, 0);
        ck_assert(t.snap.k0s_running);
        ck_assert_int_eq(t.snap.tailnet_to_k0s_start_usec, 3000);
        ck_assert_int_eq(t.snap.k0s_start_time_usec, 5000000);
        /* The same k0s seen again changes nothing. */
        metrics_tracker_k0s(&t, 100, 5000000, false, false, NULL, 9000);
        ck_assert_int_eq(t.snap.k0s_starts, 1);
        /* It crashes; restarted after the backoff: one exit by signal, one restart. */
        metrics_tracker_k0s(&t, 0, 0, false, false, "killed by SIGSEGV", 10000);
        ck_assert(!t.snap.k0s_running);
        ck_assert_int_eq(t.snap.k0s_start_time_usec, 0);
        ck_assert_int_eq(t.snap.k0s_exits[METRICS_EXIT_SIGNALED], 1);
        metrics_tracker_k0s(&t, 101, 6000000, false, false, "killed by SIGSEGV", 20000);
        ck_assert_int_eq(t.snap.k0s_restarts, 1);
        ck_assert_int_eq(t.snap.tailnet_to_k0s_start_usec, 3000); /* not a gate opening */
        /* The agent stops it for an IP change and starts a new one in the same breath. */
        metrics_tracker_k0s(&t, 101, 6000000, false, true, NULL, 21000);
        metrics_tracker_k0s(&t, 102, 7000000, false, false, "exited 0", 22000);
        ck_assert_int_eq(t.snap.k0s_exits[METRICS_EXIT_STOPPED_BY_AGENT], 1);
        ck_assert_int_eq(t.snap.k0s_restarts, 2);
        ck_assert_int_eq(t.snap.k0s_starts, 3);
        /* Exits on its own: 0 and 1. */
        metrics_tracker_k0s(&t, 0, 0, false, false, "exited 0", 23000);
        metrics_tracker_k0s(&t, 103, 8000000, false, false, "exited 0", 24000);
        metrics_tracker_k0s(&t, 0, 0, false, false, "exited 1", 25000);
        ck_assert_int_eq(t.snap.k0s_exits[METRICS_EXIT_OK], 1);
        ck_assert_int_eq(t.snap.k0s_exits[METRICS_EXIT_ERROR], 1);
        /* Gate closes and opens again: a new latency. */
        metrics_tracker_gate(&t, false, 30000);
        metrics_tracker_gate(&t, true, 40000);
        metrics_tracker_k0s(&t, 104, 9000000, false, false, NULL, 40250);
        ck_assert_int_eq(t.snap.tailnet_to_k0s_start_usec, 250);
        /* An adopted k0s is no start. */
        MetricsTracker a;
        metrics_tracker_init(&a);
        metrics_tracker_k0s(&a, 77, 1, true, false, NULL, 1);
        ck_assert_int_eq(a.snap.k0s_starts, 0);
        ck_assert(a.snap.k0s_running);
        /* Files. */
        metrics_tracker_file(&t, METRICS_FILE_HOSTS, 1);
        metrics_tracker_file(&t, METRICS_FILE_HOSTS, 0);
        metrics_tracker_file(&t, METRICS_FILE_HOSTS, -ENOSPC);
        ck_assert_int_eq(t.snap.file_writes[METRICS_FILE_HOSTS], 1);
        ck_assert_int_eq(t.snap.file_write_failures[METRICS_FILE_HOSTS], 1);
}
END_TEST

static void run_for(uint64_t usec) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &b);
                uint64_t el = (uint64_t) (b.tv_sec - a.tv_sec) * USEC_PER_SEC +
                        (uint64_t) (b.tv_nsec - a.tv_nsec) / 1000;
                if (el >= usec)
                        return;
                ck_assert_int_ge(sd_event_run(ev, usec - el), 0);
        }
}

static int file_value(const char *path, const char *needle) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (read_file_full(path, 1 << 20, &text, &len) < 0)
                return -1;
        const char *p = strstr(text, needle);
        return p ? atoi(p + strlen(needle)) : -2;
}

START_TEST(test_writer_waits_for_dir) {
        _cleanup_free_ char *dir = strdup_printf("%s/a/b", tmp),
                            *path = strdup_printf("%s/a/b/k0s-tsagent.prom", tmp),
                            *a = strdup_printf("%s/a", tmp);
        _cleanup_(metrics_freep) Metrics *m = NULL;
        MetricsSnapshot s;

        ck_assert_int_eq(metrics_new(path, &m), 0);
        ck_assert_int_eq(metrics_attach(m, ev), 0);
        full_snapshot(&s);
        ck_assert_int_eq(metrics_update(m, &s), 1);
        run_for(100 * USEC_PER_MSEC);
        ck_assert_int_eq(access(a, F_OK), -1); /* the writer creates no directory */
        ck_assert_int_eq(mkdir(a, 0755), 0);
        run_for(100 * USEC_PER_MSEC);
        ck_assert_int_eq(access(path, F_OK), -1);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        run_for(200 * USEC_PER_MSEC);
        ck_assert_int_eq(file_value(path, "\nk0s_tsagent_gate_open "), 1);
        ck_assert_int_eq(metrics_get_writes(m), 1);
        ck_assert_int_eq(file_value(path, "\nk0s_tsagent_file_writes_total{kind=\"metrics\"} "), 1);
}
END_TEST

START_TEST(test_writer_rate_and_idle) {
        _cleanup_free_ char *path = strdup_printf("%s/k0s-tsagent.prom", tmp);
        _cleanup_(metrics_freep) Metrics *m = NULL;
        MetricsSnapshot s;
        struct stat st1, st2;

        ck_assert_int_eq(metrics_new(path, &m), 0);
        ck_assert_int_eq(metrics_attach(m, ev), 0);
        full_snapshot(&s);
        ck_assert_int_eq(metrics_update(m, &s), 1);
        ck_assert_int_eq(metrics_get_writes(m), 1); /* the first write is immediate */

        /* A burst of 20 changes within a second: one trailing write, with the last values. */
        for (int i = 0; i < 20; i++) {
                s.k0s_starts = 10 + (uint64_t) i;
                ck_assert_int_eq(metrics_update(m, &s), 1);
                run_for(10 * USEC_PER_MSEC);
        }
        ck_assert_int_eq(metrics_get_writes(m), 1);
        run_for(1200 * USEC_PER_MSEC);
        ck_assert_int_eq(metrics_get_writes(m), 2);
        ck_assert_int_eq(file_value(path, "\nk0s_tsagent_k0s_starts_total "), 29);

        /* The same snapshot again and again: no write, same inode and mtime. */
        ck_assert_int_eq(stat(path, &st1), 0);
        for (int i = 0; i < 10; i++) {
                ck_assert_int_eq(metrics_update(m, &s), 0);
                run_for(150 * USEC_PER_MSEC);
        }
        ck_assert_int_eq(stat(path, &st2), 0);
        ck_assert_int_eq(metrics_get_writes(m), 2);
        ck_assert(st1.st_ino == st2.st_ino);
        ck_assert(st1.st_mtim.tv_sec == st2.st_mtim.tv_sec &&
                  st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec);

        /* Someone removes the file: it comes back with the current values. */
        ck_assert_int_eq(unlink(path), 0);
        run_for(1200 * USEC_PER_MSEC);
        ck_assert_int_eq(file_value(path, "\nk0s_tsagent_k0s_starts_total "), 29);
}
END_TEST

START_TEST(test_writer_off) {
        Metrics *m = (Metrics *) 1;
        MetricsSnapshot s;
        metrics_snapshot_init(&s);
        ck_assert_int_eq(metrics_new(NULL, &m), 0);
        ck_assert_ptr_null(m);
        ck_assert_int_eq(metrics_new("", &m), 0);
        ck_assert_ptr_null(m);
        ck_assert_int_eq(metrics_attach(NULL, ev), 0);
        ck_assert_int_eq(metrics_update(NULL, &s), 0);
        ck_assert_int_eq(metrics_new("relative.prom", &m), -EINVAL);
}
END_TEST

static Suite *metrics_suite(void) {
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("render");
        tcase_add_test(tc, test_render_full);
        tcase_add_test(tc, test_render_initial);
        tcase_add_test(tc, test_render_escapes);
        tcase_add_test(tc, test_tracker);
        suite_add_tcase(s, tc);
        tc = tcase_create("writer");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_writer_waits_for_dir);
        tcase_add_test(tc, test_writer_rate_and_idle);
        tcase_add_test(tc, test_writer_off);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(metrics_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
