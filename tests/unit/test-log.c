/* SPDX-License-Identifier: MIT */
/* log: the stderr line format, %m, fields, level filtering, return values, target choice and the
 * fallback to stderr when journald is not there. stderr is captured in a memfd. */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "log.h"

static int saved_stderr = -1;
static int capture_fd = -1;

static void capture_start(void) {
        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        ck_assert_int_ge(saved_stderr, 0);
        capture_fd = memfd_create("stderr", MFD_CLOEXEC);
        ck_assert_int_ge(capture_fd, 0);
        ck_assert_int_eq(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

/* Stops capturing and returns everything written since capture_start(). */
static char *capture_end(void) {
        struct stat st;
        char *buf;
        ssize_t n;

        ck_assert_int_eq(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;

        ck_assert_int_eq(fstat(capture_fd, &st), 0);
        buf = calloc(1, (size_t) st.st_size + 1);
        ck_assert_ptr_nonnull(buf);
        n = pread(capture_fd, buf, (size_t) st.st_size, 0);
        ck_assert_int_eq(n, st.st_size);
        close(capture_fd);
        capture_fd = -1;
        return buf;
}

/* Every test but the first starts from the same explicit configuration, also without CK_FORK. */
static void setup_stderr(void) {
        unsetenv("JOURNAL_STREAM");
        unsetenv("K0S_TSAGENT_LOG_LEVEL");
        setenv("K0S_TSAGENT_LOG", "stderr", 1);
        log_open();
        log_set_max_level(LOG_INFO);
}

START_TEST(test_before_open) {
        _cleanup_free_ char *out = NULL;
        int r1, r2;

        /* No log_open() in this process yet: stderr at level info. */
        capture_start();
        r1 = log_info("hello %d", 42);
        r2 = log_debug("not shown");
        out = capture_end();

        ck_assert_int_eq(r1, 0);
        ck_assert_int_eq(r2, 0);
        ck_assert_str_eq(out, "INFO: hello 42\n");
        ck_assert(!log_is_journal());
        ck_assert_int_eq(log_get_max_level(), LOG_INFO);
}
END_TEST

START_TEST(test_level_names) {
        _cleanup_free_ char *out = NULL;

        log_set_max_level(LOG_DEBUG);
        capture_start();
        log_error("e");
        log_warning("w");
        log_notice("n");
        log_info("i");
        log_debug("d");
        log_full_errno(LOG_CRIT, 0, "c");
        out = capture_end();

        ck_assert_str_eq(out, "ERR: e\nWARNING: w\nNOTICE: n\nINFO: i\nDEBUG: d\nCRIT: c\n");
}
END_TEST

START_TEST(test_errno_m) {
        _cleanup_free_ char *out = NULL;
        int r1, r2, r3, r4;

        capture_start();
        errno = EBUSY;
        r1 = log_error_errno(-ENOENT, "Failed to open '%s': %m", "/x");
        ck_assert_int_eq(errno, EBUSY); /* callers' errno survives logging */
        r2 = log_warning_errno(EACCES, "Positive too: %m");
        r3 = log_info_errno(0, "No error");
        r4 = log_oom();
        out = capture_end();

        ck_assert_int_eq(r1, -ENOENT);
        ck_assert_int_eq(r2, -EACCES);
        ck_assert_int_eq(r3, 0);
        ck_assert_int_eq(r4, -ENOMEM);
        ck_assert_str_eq(out,
                         "ERR: Failed to open '/x': No such file or directory\n"
                         "WARNING: Positive too: Permission denied\n"
                         "INFO: No error\n"
                         "ERR: Out of memory.\n");
}
END_TEST

START_TEST(test_filtered_still_returns) {
        _cleanup_free_ char *out = NULL;
        int r1, r2;

        log_set_max_level(LOG_WARNING);
        ck_assert_int_eq(log_get_max_level(), LOG_WARNING);
        capture_start();
        r1 = log_info_errno(-EIO, "hidden: %m");
        r2 = log_debug_errno(ETIMEDOUT, "hidden too");
        log_warning("shown");
        out = capture_end();

        ck_assert_int_eq(r1, -EIO);
        ck_assert_int_eq(r2, -ETIMEDOUT);
        ck_assert_str_eq(out, "WARNING: shown\n");
}
END_TEST

START_TEST(test_set_max_level_clamps) {
        log_set_max_level(100);
        ck_assert_int_eq(log_get_max_level(), LOG_DEBUG);
        log_set_max_level(-3);
        ck_assert_int_eq(log_get_max_level(), LOG_EMERG);
}
END_TEST

START_TEST(test_level_from_env) {
        _cleanup_free_ char *out = NULL;

        setenv("K0S_TSAGENT_LOG_LEVEL", "warning", 1);
        log_open();
        ck_assert_int_eq(log_get_max_level(), LOG_WARNING);

        setenv("K0S_TSAGENT_LOG_LEVEL", "err", 1);
        log_open();
        ck_assert_int_eq(log_get_max_level(), LOG_ERR);

        setenv("K0S_TSAGENT_LOG_LEVEL", "notice", 1);
        log_open();
        ck_assert_int_eq(log_get_max_level(), LOG_NOTICE);

        setenv("K0S_TSAGENT_LOG_LEVEL", "debug", 1);
        log_open();
        ck_assert_int_eq(log_get_max_level(), LOG_DEBUG);

        setenv("K0S_TSAGENT_LOG_LEVEL", "info", 1);
        log_open();
        ck_assert_int_eq(log_get_max_level(), LOG_INFO);

        /* Unknown: keep the level, and say so. */
        setenv("K0S_TSAGENT_LOG_LEVEL", "loud", 1);
        capture_start();
        log_open();
        out = capture_end();
        ck_assert_int_eq(log_get_max_level(), LOG_INFO);
        ck_assert_ptr_nonnull(strstr(out, "WARNING: "));
        ck_assert_ptr_nonnull(strstr(out, "loud"));

        /* Unset: whatever the program chose stays. */
        unsetenv("K0S_TSAGENT_LOG_LEVEL");
        log_set_max_level(LOG_DEBUG);
        log_open();
        ck_assert_int_eq(log_get_max_level(), LOG_DEBUG);
}
END_TEST

START_TEST(test_struct_fields) {
        _cleanup_free_ char *out = NULL;
        const char *const fields[] = { "INTERFACE=tailscale0", "ADDRESS=100.64.1.2", NULL };
        const char *const no_fields[] = { NULL };
        int r1, r2, r3;

        capture_start();
        r1 = log_struct_errno(LOG_NOTICE, 0, MESSAGE_ID_GATE_OPEN, fields, "Gate open on %s.",
                              "tailscale0");
        r2 = log_struct_errno(LOG_ERR, -ENETDOWN, NULL, fields, "Link: %m");
        r3 = log_struct_errno(LOG_INFO, 0, MESSAGE_ID_ADDRESS, NULL, "No fields");
        log_struct_errno(LOG_INFO, 0, NULL, no_fields, "Empty fields");
        log_struct_errno(LOG_DEBUG, 0, NULL, fields, "Filtered");
        out = capture_end();

        ck_assert_int_eq(r1, 0);
        ck_assert_int_eq(r2, -ENETDOWN);
        ck_assert_int_eq(r3, 0);
        ck_assert_str_eq(
                out,
                "NOTICE: Gate open on tailscale0. [INTERFACE=tailscale0 ADDRESS=100.64.1.2]\n"
                "ERR: Link: Network is down [INTERFACE=tailscale0 ADDRESS=100.64.1.2]\n"
                "INFO: No fields\n"
                "INFO: Empty fields\n");
}
END_TEST

/* 32 fields (the most a message carries) with no NULL after them, ending right before a page
 * that cannot be read: the bound must be checked before fields[32] is looked at. */
START_TEST(test_fields_bound_checked_first) {
        const size_t max = 32, page = (size_t) sysconf(_SC_PAGESIZE);
        char *mem =
                mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ck_assert_ptr_ne(mem, MAP_FAILED);
        ck_assert_int_eq(mprotect(mem + page, page, PROT_NONE), 0);
        const char **fields = (const char **) (mem + page - max * sizeof(char *));
        for (size_t i = 0; i < max; i++)
                fields[i] = "F=x";

        capture_start();
        log_struct_errno(LOG_INFO, 0, NULL, fields, "Many fields");
        _cleanup_free_ char *out = capture_end();
        ck_assert_ptr_nonnull(strstr(out, "INFO: Many fields [F=x"));
        munmap(mem, 2 * page);
}
END_TEST

/* log_new_lines(): each line once, again only after it went away. */
START_TEST(test_new_lines_once) {
        char *a[] = { (char *) "kube-router cannot be pinned", NULL };
        char *ab[] = { (char *) "kube-router cannot be pinned", (char *) "second\nline", NULL };
        char **logged = NULL;

        capture_start();
        log_new_lines(LOG_WARNING, &logged, a);
        log_new_lines(LOG_WARNING, &logged, a);
        log_new_lines(LOG_WARNING, &logged, ab);
        log_new_lines(LOG_WARNING, &logged, NULL);
        log_new_lines(LOG_WARNING, &logged, a);
        _cleanup_free_ char *out = capture_end();
        ck_assert_str_eq(out,
                         "WARNING: kube-router cannot be pinned\n"
                         "WARNING: second line\n"
                         "WARNING: kube-router cannot be pinned\n");
        strv_free(logged);
}
END_TEST

START_TEST(test_long_line_truncated) {
        _cleanup_free_ char *out = NULL, *big = NULL;
        const char *const fields[] = { "INTERFACE=tailscale0", NULL };
        size_t len;

        big = malloc(20000);
        ck_assert_ptr_nonnull(big);
        memset(big, 'a', 19999);
        big[19999] = '\0';

        capture_start();
        log_struct_errno(LOG_INFO, 0, NULL, fields, "%s", big);
        log_info("after");
        out = capture_end();

        len = strlen(out);
        /* One line, cut, marked, then the next message intact. */
        ck_assert_uint_le(len, 4096 + strlen("INFO: after\n"));
        ck_assert(strncmp(out, "INFO: aaaa", 10) == 0);
        ck_assert_ptr_nonnull(strstr(out, "aaa...\nINFO: after\n"));
        ck_assert_ptr_eq(strchr(out, '\n'), strstr(out, "...\n") + 3);
        ck_assert_str_eq(out + len - strlen("INFO: after\n"), "INFO: after\n");
}
END_TEST

START_TEST(test_control_characters) {
        _cleanup_free_ char *out = NULL;
        const char *const fields[] = { "REASON=a\nb", NULL };

        capture_start();
        log_warning("peer says '%s'", "x\nERR: forged\r\x1b[31m");
        log_struct_errno(LOG_INFO, 0, NULL, fields, "tab\tstays");
        out = capture_end();

        /* A newline in quoted input must not forge a second line. */
        ck_assert_str_eq(out,
                         "WARNING: peer says 'x ERR: forged  [31m'\n"
                         "INFO: tab\tstays [REASON=a b]\n");
}
END_TEST

static bool journald_socket_exists(void) {
        return access("/run/systemd/journal/socket", F_OK) == 0;
}

START_TEST(test_journal_fallback) {
        _cleanup_free_ char *out = NULL;
        const char *const fields[] = { "INTERFACE=tailscale0", NULL };
        int r1, r2;

        setenv("K0S_TSAGENT_LOG", "journal", 1);
        log_open();
        ck_assert(log_is_journal());

        capture_start();
        r1 = log_struct_errno(LOG_WARNING, -EHOSTUNREACH, MESSAGE_ID_GATE_CLOSED, fields,
                              "Gate closed: %m");
        r2 = log_info("plain");
        out = capture_end();

        ck_assert_int_eq(r1, -EHOSTUNREACH);
        ck_assert_int_eq(r2, 0);
        if (journald_socket_exists())
                /* A real journald took them; nothing may be duplicated on stderr. */
                ck_assert_str_eq(out, "");
        else
                /* sd_journal_sendv() failed: the messages still reach stderr. */
                ck_assert_str_eq(out,
                                 "WARNING: Gate closed: No route to host "
                                 "[INTERFACE=tailscale0]\n"
                                 "INFO: plain\n");
}
END_TEST

START_TEST(test_journal_bad_field_falls_back) {
        _cleanup_free_ char *out = NULL;
        const char *const fields[] = { "NO_EQUALS_SIGN", NULL };

        setenv("K0S_TSAGENT_LOG", "journal", 1);
        log_open();

        capture_start();
        log_struct_errno(LOG_INFO, 0, NULL, fields, "odd field");
        out = capture_end();

        /* sd_journal_sendv() rejects the whole message (with or without a journald); stderr
         * gets it. */
        ck_assert_str_eq(out, "INFO: odd field [NO_EQUALS_SIGN]\n");
}
END_TEST

static void set_journal_stream(int fd, long ino_delta) {
        char buf[64];
        struct stat st;

        ck_assert_int_eq(fstat(fd, &st), 0);
        snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long) st.st_dev,
                 (unsigned long long) st.st_ino + (unsigned long long) ino_delta);
        setenv("JOURNAL_STREAM", buf, 1);
}

START_TEST(test_journal_stream_detection) {
        _cleanup_free_ char *out = NULL;
        bool matching, mismatched, forced_stderr, garbage, half;

        unsetenv("K0S_TSAGENT_LOG");
        capture_start(); /* stderr is now a memfd we can name by dev:ino */

        set_journal_stream(STDERR_FILENO, 0);
        log_open();
        matching = log_is_journal();

        set_journal_stream(STDERR_FILENO, 1);
        log_open();
        mismatched = log_is_journal();

        set_journal_stream(STDERR_FILENO, 0);
        setenv("K0S_TSAGENT_LOG", "stderr", 1);
        log_open();
        forced_stderr = log_is_journal();
        unsetenv("K0S_TSAGENT_LOG");

        setenv("JOURNAL_STREAM", "garbage", 1);
        log_open();
        garbage = log_is_journal();

        setenv("JOURNAL_STREAM", "12:", 1);
        log_open();
        half = log_is_journal();

        unsetenv("JOURNAL_STREAM");
        out = capture_end();

        ck_assert(matching);
        ck_assert(!mismatched);
        ck_assert(!forced_stderr);
        ck_assert(!garbage);
        ck_assert(!half);
        ck_assert_str_eq(out, "");

        log_open();
        ck_assert(!log_is_journal());
}
END_TEST

static Suite *log_suite(void) {
        Suite *s = suite_create("log");
        TCase *tc;

        /* First, and without the fixture: the defaults before log_open(). */
        tc = tcase_create("defaults");
        tcase_add_test(tc, test_before_open);
        suite_add_tcase(s, tc);

        tc = tcase_create("stderr");
        tcase_add_checked_fixture(tc, setup_stderr, NULL);
        tcase_add_test(tc, test_level_names);
        tcase_add_test(tc, test_errno_m);
        tcase_add_test(tc, test_filtered_still_returns);
        tcase_add_test(tc, test_set_max_level_clamps);
        tcase_add_test(tc, test_level_from_env);
        tcase_add_test(tc, test_struct_fields);
        tcase_add_test(tc, test_long_line_truncated);
        tcase_add_test(tc, test_fields_bound_checked_first);
        tcase_add_test(tc, test_new_lines_once);
        tcase_add_test(tc, test_control_characters);
        suite_add_tcase(s, tc);

        tc = tcase_create("journal");
        tcase_add_checked_fixture(tc, setup_stderr, NULL);
        tcase_add_test(tc, test_journal_fallback);
        tcase_add_test(tc, test_journal_bad_field_falls_back);
        tcase_add_test(tc, test_journal_stream_detection);
        suite_add_tcase(s, tc);

        return s;
}

int main(void) {
        SRunner *sr = srunner_create(log_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
