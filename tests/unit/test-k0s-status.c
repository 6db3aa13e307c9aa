/* SPDX-License-Identifier: MIT */
/* Unit tests for common/k0s-status.c: the k0s status-socket /status decoder. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k0s-status.h"
#include "macro.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(K0sStatus *, k0s_status_free);
#define _cleanup_status_ _cleanup_(k0s_status_freep)

static int parse_data_file(const char *name, K0sStatus **ret) {
        const char *dir = getenv("TEST_DATA_DIR");
        _cleanup_free_ char *path = NULL, *buf = NULL;
        size_t len = 0;
        FILE *f;

        ck_assert_msg(dir, "TEST_DATA_DIR is not set (run the tests through meson)");
        path = strdup_printf("%s/json/%s", dir, name);
        ck_assert_ptr_nonnull(path);
        f = fopen(path, "re");
        ck_assert_msg(f, "cannot open %s", path);
        ck_assert_int_eq(getdelim(&buf, &len, '\0', f) > 0, 1);
        fclose(f);
        return k0s_status_parse(buf, strlen(buf), ret);
}

static int parse_str(const char *json, K0sStatus **ret) {
        return k0s_status_parse(json, strlen(json), ret);
}

START_TEST(test_controller) {
        _cleanup_status_ K0sStatus *s = NULL;

        ck_assert_int_eq(parse_data_file("k0s-status-controller.json", &s), 0);
        ck_assert_str_eq(s->version, "v1.33.1+k0s.0");
        ck_assert_str_eq(s->role, "controller");
        ck_assert_int_eq(s->pid, 1234);
        ck_assert(!s->workloads);
        ck_assert(!s->single_node);
        ck_assert(!s->api_ok);
        ck_assert_ptr_null(s->api_message); /* "" means none */
}
END_TEST

START_TEST(test_single_node) {
        _cleanup_status_ K0sStatus *s = NULL;

        ck_assert_int_eq(parse_data_file("k0s-status-single.json", &s), 0);
        ck_assert_str_eq(s->role, "controller");
        ck_assert_int_eq(s->pid, 4321);
        ck_assert(s->workloads);
        ck_assert(s->single_node);
        ck_assert(s->api_ok);
}
END_TEST

START_TEST(test_worker) {
        _cleanup_status_ K0sStatus *s = NULL, *t = NULL;

        ck_assert_int_eq(parse_data_file("k0s-status-worker.json", &s), 0);
        ck_assert_str_eq(s->version, "v1.33.1+k0s.0");
        ck_assert_str_eq(s->role, "worker");
        ck_assert_int_eq(s->pid, 987);
        ck_assert(s->workloads);
        ck_assert(!s->single_node);
        ck_assert(!s->api_ok);
        ck_assert_str_eq(s->api_message,
                         "Get \"https://100.88.1.2:6443/version\": dial tcp "
                         "100.88.1.2:6443: connect: connection refused");

        ck_assert_int_eq(parse_data_file("k0s-status-worker-ok.json", &t), 0);
        ck_assert(t->api_ok);
        ck_assert_ptr_null(t->api_message);
}
END_TEST

START_TEST(test_missing_fields) {
        _cleanup_status_ K0sStatus *s = NULL, *t = NULL;

        ck_assert_int_eq(parse_data_file("k0s-status-missing.json", &s), 0);
        ck_assert_ptr_null(s->version);
        ck_assert_str_eq(s->role, "worker");
        ck_assert_int_eq(s->pid, 0);
        ck_assert(!s->workloads);
        ck_assert(!s->single_node);
        ck_assert(!s->api_ok);
        ck_assert_ptr_null(s->api_message);

        ck_assert_int_eq(parse_str("{\"Version\":\"v1.30.0+k0s.0\"}", &t), 0);
        ck_assert_str_eq(t->version, "v1.30.0+k0s.0");
        ck_assert_ptr_null(t->role);
}
END_TEST

START_TEST(test_wrong_types) {
        _cleanup_status_ K0sStatus *s = NULL, *t = NULL;

        ck_assert_int_eq(parse_data_file("k0s-status-wrong-types.json", &s), 0);
        ck_assert_ptr_null(s->version); /* a number */
        ck_assert_str_eq(s->role, "worker");
        ck_assert_int_eq(s->pid, 0); /* a string */
        ck_assert(!s->workloads);
        ck_assert(!s->single_node);
        ck_assert(!s->api_ok);
        ck_assert_ptr_null(s->api_message);

        ck_assert_int_eq(parse_data_file("k0s-status-wrong-types-api.json", &t), 0);
        ck_assert_str_eq(t->version, "v1.30.0+k0s.0");
        ck_assert_int_eq(t->pid, 0); /* negative */
        ck_assert(!t->api_ok);
}
END_TEST

START_TEST(test_pid_range) {
        static const struct {
                const char *json;
                int pid;
        } cases[] = {
                { "{\"Role\":\"worker\",\"Pid\":1}", 1 },
                { "{\"Role\":\"worker\",\"Pid\":2147483647}", 2147483647 },
                { "{\"Role\":\"worker\",\"Pid\":2147483648}", 0 },
                { "{\"Role\":\"worker\",\"Pid\":0}", 0 },
                { "{\"Role\":\"worker\",\"Pid\":12.5}", 0 },
                { "{\"Role\":\"worker\",\"Pid\":1e400}", 0 },
                { "{\"Role\":\"worker\",\"Pid\":-1e400}", 0 },
                { "{\"Role\":\"worker\",\"Pid\":null}", 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_status_ K0sStatus *s = NULL;

                ck_assert_int_eq(parse_str(cases[i].json, &s), 0);
                ck_assert_msg(s->pid == cases[i].pid, "%s: pid %d", cases[i].json, s->pid);
        }
}
END_TEST

START_TEST(test_invalid) {
        static const char *const bad[] = {
                "",
                "   ",
                "[]",
                "[{\"Role\":\"worker\"}]",
                "\"controller\"",
                "null",
                "{}",
                "{\"Role\":\"\",\"Version\":\"\"}",
                "{\"Role\":\"worker\"",
                "{\"Role\":\"worker\"}}",
                "{\"Role\":\"worker\"} x",
                "404 page not found\n",
        };
        K0sStatus *s = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_msg(parse_str(bad[i], &s) == -EINVAL, "%s", bad[i]);
                ck_assert_ptr_null(s);
        }
        ck_assert_int_eq(k0s_status_parse(NULL, 0, &s), -EINVAL);
        ck_assert_int_eq(parse_data_file("k0s-status-neither.json", &s), -EINVAL);
        ck_assert_ptr_null(s);
        ck_assert_ptr_null(k0s_status_free(NULL));
}
END_TEST

START_TEST(test_not_nul_terminated) {
        static const char json[] = "{\"Role\":\"worker\",\"Pid\":77}\n";
        _cleanup_status_ K0sStatus *s = NULL;
        _cleanup_free_ char *copy = NULL;
        size_t len = strlen(json);

        copy = malloc(len); /* no terminator: a sanitizer catches any over-read */
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, json, len);
        ck_assert_int_eq(k0s_status_parse(copy, len, &s), 0);
        ck_assert_int_eq(s->pid, 77);
}
END_TEST

START_TEST(test_too_big) {
        const size_t len = (size_t) K0S_STATUS_MAX_SIZE + 1;
        _cleanup_free_ char *json = NULL;
        K0sStatus *s = NULL;

        json = malloc(len);
        ck_assert_ptr_nonnull(json);
        memset(json, ' ', len);
        memcpy(json, "{\"Role\":\"worker\"}", 17);
        ck_assert_int_eq(k0s_status_parse(json, len, &s), -EFBIG);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(k0s_status_parse(json, len - 1, &s), 0);
        ck_assert_str_eq(s->role, "worker");
        s = k0s_status_free(s);
}
END_TEST

START_TEST(test_deep_nesting) {
        const size_t depth = 100000;
        _cleanup_free_ char *json = NULL;
        K0sStatus *s = NULL;
        size_t len = 0;

        json = malloc(64 + 2 * depth);
        ck_assert_ptr_nonnull(json);
        len += (size_t) sprintf(json, "{\"Role\":\"worker\",\"Args\":");
        memset(json + len, '[', depth);
        len += depth;
        memset(json + len, ']', depth);
        len += depth;
        json[len++] = '}';
        ck_assert_int_eq(k0s_status_parse(json, len, &s), -EINVAL);
        ck_assert_ptr_null(s);
}
END_TEST

static Suite *k0s_status_suite(void) {
        Suite *s = suite_create("k0s-status");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_controller);
        tcase_add_test(tc, test_single_node);
        tcase_add_test(tc, test_worker);
        tcase_add_test(tc, test_missing_fields);
        tcase_add_test(tc, test_wrong_types);
        tcase_add_test(tc, test_pid_range);
        tcase_add_test(tc, test_invalid);
        tcase_add_test(tc, test_not_nul_terminated);
        tcase_add_test(tc, test_too_big);
        tcase_add_test(tc, test_deep_nesting);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(k0s_status_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
