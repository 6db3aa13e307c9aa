/* SPDX-License-Identifier: MIT */
/* unit-job against a real dbus-daemon (a private session bus in a temp dir) with a stand-in
 * org.freedesktop.systemd1 on the same event loop: restart / stop / no job / a manager that
 * never answers (timeout, while the loop keeps running), and the job-type decision. */

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#include "util.h"
#include "event-util.h"
#include "log.h"
#include "unit-job.h"

static char *tmpdir, *address;
static pid_t daemon_pid;

/* What the stand-in systemd answers. */
static const char *job_type; /* NULL: no job on the unit */
static bool hang; /* GetUnitByPID is never answered */

static int get_unit_by_pid(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        if (hang)
                return 1; /* read, never answered */
        return sd_bus_reply_method_return(m, "o", "/org/freedesktop/systemd1/unit/agent");
}

static int get_job(sd_bus *bus, const char *path, const char *interface, const char *property,
                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "(uo)", job_type ? 42u : 0u,
                                     job_type ? "/org/freedesktop/systemd1/job/42" : "/");
}

static int get_job_type(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", job_type ?: "");
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("GetUnitByPID", "u", "o", get_unit_by_pid, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
static const sd_bus_vtable unit_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Job", "(uo)", get_job, 0, 0),
        SD_BUS_VTABLE_END,
};
static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("JobType", "s", get_job_type, 0, 0),
        SD_BUS_VTABLE_END,
};

static void setup(void) {
        char t[] = "/tmp/test-unit-job-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(t));
        tmpdir = strdup(t);
        address = strdup_printf("unix:path=%s/bus", tmpdir);
        _cleanup_free_ char *listen = strdup_printf("--address=%s", address);
        _cleanup_free_ char *sock = strdup_printf("%s/bus", tmpdir);
        log_set_max_level(LOG_DEBUG);

        daemon_pid = fork();
        ck_assert_int_ge(daemon_pid, 0);
        if (daemon_pid == 0) {
                execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", "--nopidfile", listen,
                       (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 500 && access(sock, F_OK) < 0; i++)
                usleep(10000);
        ck_assert_msg(access(sock, F_OK) >= 0, "dbus-daemon did not create %s", sock);
}

static void teardown(void) {
        if (daemon_pid > 0) {
                kill(daemon_pid, SIGTERM);
                waitpid(daemon_pid, NULL, 0);
        }
        _cleanup_free_ char *cmd = strdup_printf("rm -rf -- '%s'", tmpdir);
        ck_assert_int_eq(system(cmd), 0);
        free(tmpdir);
        free(address);
}

static sd_bus *fake_systemd(sd_event *e) {
        sd_bus *bus = NULL;
        ck_assert_int_ge(sd_bus_new(&bus), 0);
        ck_assert_int_ge(sd_bus_set_address(bus, address), 0);
        ck_assert_int_ge(sd_bus_set_bus_client(bus, true), 0);
        ck_assert_int_ge(sd_bus_start(bus), 0);
        ck_assert_int_ge(sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1",
                                                  "org.freedesktop.systemd1.Manager",
                                                  manager_vtable, NULL),
                         0);
        ck_assert_int_ge(sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1/unit/agent",
                                                  "org.freedesktop.systemd1.Unit", unit_vtable,
                                                  NULL),
                         0);
        ck_assert_int_ge(sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1/job/42",
                                                  "org.freedesktop.systemd1.Job", job_vtable, NULL),
                         0);
        ck_assert_int_ge(sd_bus_request_name(bus, "org.freedesktop.systemd1", 0), 0);
        ck_assert_int_ge(sd_bus_attach_event(bus, e, 0), 0);
        return bus;
}

typedef struct Result {
        bool done;
        int r;
        bool restarting;
        unsigned ticks; /* of a 20 ms timer while the query ran */
        sd_event_source *tick;
} Result;

static void on_answer(UnitJobQuery *q, int r, bool restarting, void *userdata) {
        Result *res = userdata;
        res->done = true;
        res->r = r;
        res->restarting = restarting;
        sd_event_exit(sd_event_source_get_event(res->tick), 0);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Result *res = userdata;
        res->ticks++;
        return event_timer_arm(sd_event_source_get_event(s), &res->tick, 20 * USEC_PER_MSEC,
                               USEC_PER_MSEC, false, on_tick, res, "tick");
}

static Result ask(uint64_t timeout_usec) {
        sd_event *e = NULL;
        Result res = {};
        UnitJobQuery *q = NULL;

        ck_assert_int_ge(sd_event_new(&e), 0);
        sd_bus *server = fake_systemd(e);
        ck_assert_int_ge(event_timer_arm(e, &res.tick, 20 * USEC_PER_MSEC, USEC_PER_MSEC, false,
                                         on_tick, &res, "tick"),
                         0);
        ck_assert_int_ge(
                unit_job_query(e, address, (uint32_t) getpid(), timeout_usec, on_answer, &res, &q),
                0);
        ck_assert(!res.done); /* never answered from within the call */
        ck_assert_int_ge(sd_event_loop(e), 0);
        unit_job_query_free(q);
        sd_event_source_disable_unref(res.tick);
        sd_bus_flush_close_unref(server);
        sd_event_unref(e);
        return res;
}

START_TEST(test_restart) {
        job_type = "restart";
        hang = false;
        Result r = ask(5 * USEC_PER_SEC);
        ck_assert(r.done);
        ck_assert_int_eq(r.r, 0);
        ck_assert(r.restarting);
}
END_TEST

START_TEST(test_stop) {
        job_type = "stop";
        hang = false;
        Result r = ask(5 * USEC_PER_SEC);
        ck_assert_int_eq(r.r, 0);
        ck_assert(!r.restarting);
}
END_TEST

START_TEST(test_no_job) {
        job_type = NULL;
        hang = false;
        Result r = ask(5 * USEC_PER_SEC);
        ck_assert_int_eq(r.r, 0);
        ck_assert(!r.restarting);
}
END_TEST

START_TEST(test_hang_times_out_loop_runs) {
        job_type = "restart";
        hang = true;
        Result r = ask(300 * USEC_PER_MSEC);
        ck_assert(r.done);
        ck_assert_int_lt(r.r, 0);
        ck_assert(!r.restarting);
        /* the loop kept running while the answer was pending: ~15 ticks of 20 ms */
        ck_assert_uint_ge(r.ticks, 5);
}
END_TEST

START_TEST(test_job_types) {
        ck_assert(unit_job_type_is_restart("restart"));
        ck_assert(!unit_job_type_is_restart("stop"));
        ck_assert(!unit_job_type_is_restart("try-restart")); /* collapsed by systemd */
        ck_assert(!unit_job_type_is_restart("reload-or-restart")); /* a method name */
        ck_assert(!unit_job_type_is_restart(NULL));
}
END_TEST

static Suite *unit_job_suite(void) {
        Suite *s = suite_create("unit-job");
        TCase *pure = tcase_create("decision");
        tcase_add_test(pure, test_job_types);
        suite_add_tcase(s, pure);

        if (access("/usr/bin/dbus-daemon", X_OK) < 0) {
                printf("SKIP: D-Bus tests: no dbus-daemon (package dbus)\n");
                return s;
        }
        TCase *tc = tcase_create("dbus");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_restart);
        tcase_add_test(tc, test_stop);
        tcase_add_test(tc, test_no_job);
        tcase_add_test(tc, test_hang_times_out_loop_runs);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(unit_job_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
