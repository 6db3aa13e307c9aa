/* SPDX-License-Identifier: MIT */
/*
 * supervisor: the real supervisor on an sd_event against the stand-in k0s ($FAKE_K0S): first
 * start, settle, crash backoff, stop timeout, detach + adopt, stale pidfiles, the version probe,
 * and the fake's own status socket. What k0s saw is read back from the fake's JSON log. Short
 * timings (settle 200 ms, backoff 100..800 ms, stop 500 ms); every wait is bounded.
 */

#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"
#include "supervisor.h"

#define MSEC(x) ((uint64_t) (x) *USEC_PER_MSEC)

static const SupervisorTiming timing = {
        .settle_usec = MSEC(200),
        .backoff_min_usec = MSEC(100),
        .backoff_max_usec = MSEC(800),
        .stable_usec = 10 * USEC_PER_SEC,
        .stop_timeout_usec = MSEC(500),
};

static const char *fake; /* $FAKE_K0S */
/* Sized so that every "dir/name" below fits a PATH_MAX buffer. */
static char root[1024]; /* all test dirs, cleaned up by main() */
static char dir[2048]; /* this test's dir */
static char log_path[PATH_MAX], ctl_path[PATH_MAX], state_dir[PATH_MAX], pidfile[PATH_MAX];
static sd_event *ev;

/* What the supervisor's handler saw. */
typedef struct Recorder {
        unsigned calls;
        SupervisorState last;
        unsigned idle_seen;
        unsigned n_delays;
        uint64_t delays[32]; /* each restart delay scheduled (in BACKOFF, a new next start) */
        uint64_t last_next_start;
} Recorder;
static Recorder rec;

static void on_change(Supervisor *s, void *userdata) {
        Recorder *r = userdata;
        SupervisorState st = supervisor_get_state(s);
        uint64_t now;

        r->calls++;
        if (st == SUPERVISOR_BACKOFF && supervisor_get_next_start_usec(s) != r->last_next_start &&
            r->n_delays < ELEMENTSOF(r->delays)) {
                r->last_next_start = supervisor_get_next_start_usec(s);
                ck_assert_int_ge(sd_event_now(ev, CLOCK_MONOTONIC, &now), 0);
                ck_assert_uint_gt(supervisor_get_next_start_usec(s), now);
                r->delays[r->n_delays++] = supervisor_get_next_start_usec(s) - now;
        }
        if (st == SUPERVISOR_IDLE && r->last != SUPERVISOR_IDLE)
                r->idle_seen++;
        r->last = st;
}

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(clock, &ts), 0);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* The loop's cached "now" (what the supervisor arms its timers from) on the realtime clock, in
 * seconds, comparable with the fake's timestamps. */
static double loop_now_realtime(void) {
        uint64_t loop, mono, rt;

        ck_assert_int_ge(sd_event_now(ev, CLOCK_MONOTONIC, &loop), 0);
        mono = now_usec(CLOCK_MONOTONIC);
        rt = now_usec(CLOCK_REALTIME);
        ck_assert_uint_ge(mono, loop);
        return (double) (rt - (mono - loop)) / USEC_PER_SEC;
}

static void setup(void) {
        ck_assert_int_lt(snprintf(dir, sizeof(dir), "%s/t-XXXXXX", root), (int) sizeof(dir));
        ck_assert_ptr_nonnull(mkdtemp(dir));
        (void) snprintf(log_path, sizeof(log_path), "%s/k0s.log", dir);
        (void) snprintf(ctl_path, sizeof(ctl_path), "%s/control", dir);
        (void) snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
        (void) snprintf(pidfile, sizeof(pidfile), "%s/state/k0s.pid", dir);
        ck_assert_int_eq(mkdir(state_dir, 0755), 0);
        ck_assert_int_ge(sd_event_new(&ev), 0);
        rec = (Recorder){ .last = SUPERVISOR_IDLE };
        /* The probe runs `k0s version` with our environment. */
        ck_assert_int_eq(setenv("FAKE_K0S_LOG", log_path, 1), 0);
        ck_assert_int_eq(unsetenv("FAKE_K0S_VERSION"), 0);
        ck_assert_int_eq(unsetenv("FAKE_K0S_VERSION_FAIL"), 0);
        ck_assert_int_eq(unsetenv("FAKE_K0S_VERSION_HANG"), 0);
}

static void teardown(void) {
        ev = sd_event_unref(ev);
}

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(content, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

static char *read_file(const char *path) {
        static char buf[65536];
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return NULL;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        (void) fclose(f);
        return buf;
}

static bool file_exists(const char *path) {
        return access(path, F_OK) == 0;
}

/* ---- the fake's log ---------------------------------------------------------------------- */

/* Every complete line of the log as a cJSON array of objects. A line longer than a page may be
 * seen half-written while the fake writes it: that one is left for the next look. */
static cJSON *load_events(void) {
        cJSON *all = cJSON_CreateArray();
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        ssize_t n;
        FILE *f;

        ck_assert_ptr_nonnull(all);
        f = fopen(log_path, "re");
        if (!f)
                return all;
        while ((n = getline(&line, &size, f)) > 0 && line[n - 1] == '\n') {
                cJSON *j = cJSON_Parse(line);
                ck_assert_msg(j != NULL, "bad line in the fake's log: %s", line);
                cJSON_AddItemToArray(all, j);
        }
        (void) fclose(f);
        return all;
}

static const char *ev_str(const cJSON *e, const char *key) {
        return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, key));
}

static double ev_num(const cJSON *e, const char *key) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, key);
        ck_assert_msg(cJSON_IsNumber(n), "no number '%s'", key);
        return cJSON_GetNumberValue(n);
}

static bool ev_is(const cJSON *e, const char *type, pid_t pid) {
        return streq(ev_str(e, "event"), type) && (pid == 0 || (pid_t) ev_num(e, "pid") == pid);
}

/* The n-th (0-based) event of this type (and pid, unless 0), or NULL. */
static const cJSON *nth_event(const cJSON *all, const char *type, pid_t pid, unsigned n) {
        const cJSON *e;

        cJSON_ArrayForEach(e, all) {
                if (ev_is(e, type, pid) && n-- == 0)
                        return e;
        }
        return NULL;
}

static unsigned count_events(const cJSON *all, const char *type, pid_t pid) {
        const cJSON *e;
        unsigned n = 0;

        cJSON_ArrayForEach(e, all) {
                n += ev_is(e, type, pid);
        }
        return n;
}

static unsigned count_in_log(const char *type, pid_t pid) {
        cJSON *all = load_events();
        unsigned n = count_events(all, type, pid);

        cJSON_Delete(all);
        return n;
}

static bool strv_json_contains(const cJSON *arr, const char *s) {
        const cJSON *i;

        cJSON_ArrayForEach(i, arr) {
                if (streq_ptr(cJSON_GetStringValue(i), s))
                        return true;
        }
        return false;
}

/* ---- running the loop, always bounded ------------------------------------------------------ */

typedef bool (*Predicate)(const void *userdata);

static bool run_until(Predicate p, const void *userdata, uint64_t timeout_usec) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + timeout_usec;

        while (!p(userdata)) {
                uint64_t n = now_usec(CLOCK_MONOTONIC);
                if (n >= end)
                        return false;
                ck_assert_int_ge(sd_event_run(ev, MIN(end - n, MSEC(20))), 0);
        }
        return true;
}

static bool never(const void *userdata) {
        return false;
}

static void run_for(uint64_t usec) {
        (void) run_until(never, NULL, usec);
}

typedef struct EventCount {
        const char *type;
        pid_t pid;
        unsigned n;
} EventCount;

static bool log_has(const void *userdata) {
        const EventCount *c = userdata;
        return count_in_log(c->type, c->pid) >= c->n;
}

static void wait_log(const char *type, pid_t pid, unsigned n, uint64_t timeout) {
        EventCount c = { type, pid, n };
        ck_assert_msg(run_until(log_has, &c, timeout), "no %u '%s' events for pid %d in the log", n,
                      type, (int) pid);
}

typedef struct StateWait {
        Supervisor *s;
        SupervisorState state;
} StateWait;

static bool state_is(const void *userdata) {
        const StateWait *w = userdata;
        return supervisor_get_state(w->s) == w->state;
}

static void wait_state(Supervisor *s, SupervisorState state, uint64_t timeout) {
        StateWait w = { s, state };
        ck_assert_msg(run_until(state_is, &w, timeout), "state %s, want %s",
                      supervisor_state_to_string(supervisor_get_state(s)),
                      supervisor_state_to_string(state));
}

/* ---- helpers ------------------------------------------------------------------------------- */

static K0sSpec make_spec_for(const char *binary, const char *hash, const char *extra_arg) {
        K0sSpec spec = {};
        char *e;

        ck_assert_int_eq(strv_extend(&spec.argv, binary), 0);
        ck_assert_int_eq(strv_extend(&spec.argv, "worker"), 0);
        ck_assert_int_eq(strv_extend(&spec.argv, "--token-file=/etc/k0s/k0stoken"), 0);
        if (extra_arg)
                ck_assert_int_eq(strv_extend(&spec.argv, extra_arg), 0);
        /* The control file reaches the fake through the spec's environment. */
        e = strdup_printf("FAKE_K0S_CONTROL=%s", ctl_path);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(strv_push(&spec.env, e), 0);
        ck_assert_int_eq(strv_extend(&spec.env, "FOO=bar baz"), 0);
        ck_assert_int_eq(strv_extend(&spec.env, "OVERRIDE=spec"), 0);
        spec.hash = strdup(hash);
        ck_assert_ptr_nonnull(spec.hash);
        return spec;
}

static K0sSpec make_spec(const char *hash, const char *extra_arg) {
        return make_spec_for(fake, hash, extra_arg);
}

static Supervisor *new_supervisor(const SupervisorTiming *t) {
        Supervisor *s = NULL;

        ck_assert_int_eq(supervisor_new(state_dir, t, on_change, &rec, &s), 0);
        ck_assert_int_eq(supervisor_attach(s, ev), 0);
        return s;
}

/* Start with `hash` and wait until the fake logged its start. Returns the pid. */
static pid_t start_k0s(Supervisor *s, const char *hash) {
        K0sSpec spec = make_spec(hash, NULL);
        unsigned before = count_in_log("start", 0);
        pid_t pid;

        ck_assert_int_eq(supervisor_set_desired(s, &spec), 0);
        k0s_spec_done(&spec);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_RUNNING);
        pid = supervisor_get_pid(s);
        ck_assert_int_gt(pid, 0);
        wait_log("start", pid, 1, 2 * USEC_PER_SEC);
        ck_assert_uint_eq(count_in_log("start", 0), before + 1);
        return pid;
}

/* Stop for good and wait until k0s is gone. */
static void stop_k0s(Supervisor *s) {
        int r = supervisor_stop(s);

        ck_assert_int_ge(r, 0);
        if (r > 0)
                wait_state(s, SUPERVISOR_IDLE, 3 * USEC_PER_SEC);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_IDLE);
        ck_assert_int_eq(supervisor_get_pid(s), 0);
}

static int proc_starttime(pid_t pid, uint64_t *ret) {
        char path[64], *p, *tok, *save = NULL, *buf;

        (void) snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        buf = read_file(path);
        if (!buf)
                return -errno;
        p = strrchr(buf, ')');
        ck_assert_ptr_nonnull(p);
        tok = strtok_r(p + 1, " ", &save);
        for (int field = 3; tok && field < 22; field++)
                tok = strtok_r(NULL, " ", &save);
        ck_assert_ptr_nonnull(tok);
        return safe_atou64(tok, ret);
}

static void write_pidfile(pid_t pid, uint64_t starttime, const char *hash) {
        char buf[256];

        (void) snprintf(buf, sizeof(buf), "%d\n%llu\n%s\n", (int) pid,
                        (unsigned long long) starttime, hash);
        write_file(pidfile, buf);
}

/* The pidfile names the process, its start time (against PID reuse) and the spec's hash. */
static void assert_pidfile(pid_t pid, const char *hash) {
        char want[256], *content;
        uint64_t starttime;

        ck_assert_int_eq(proc_starttime(pid, &starttime), 0);
        content = read_file(pidfile);
        ck_assert_ptr_nonnull(content);
        (void) snprintf(want, sizeof(want), "%d\n%llu\n%s\n", (int) pid,
                        (unsigned long long) starttime, hash);
        ck_assert_str_eq(content, want);
}

/* Start the fake directly (not through the supervisor), with the given extra environment. */
static pid_t spawn_fake(const char *role, const char *arg, char **extra_env) {
        char *argv[] = { (char *) fake, (char *) role, (char *) arg, NULL };
        char **env = strv_copy(environ);
        pid_t pid;

        ck_assert_ptr_nonnull(env);
        for (char **i = extra_env; i && *i; i++)
                ck_assert_int_eq(strv_extend(&env, *i), 0);
        ck_assert_int_eq(posix_spawn(&pid, fake, NULL, NULL, argv, env), 0);
        strv_free(env);
        wait_log("start", pid, 1, 2 * USEC_PER_SEC);
        return pid;
}

static void kill_and_reap(pid_t pid) {
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}

/* Children of this process running `k0s version`, zombies included. */
static unsigned count_probe_children(void) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        unsigned n = 0;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                char path[300], *status, *ppid;
                int v;

                if (safe_atoi(de->d_name, &v) < 0)
                        continue;
                (void) snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
                status = read_file(path);
                ppid = status ? strstr(status, "\nPPid:\t") : NULL;
                if (!ppid || strtol(ppid + strlen("\nPPid:\t"), NULL, 10) != getpid())
                        continue;
                (void) snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
                {
                        FILE *f = fopen(path, "re");
                        char cmd[PATH_MAX + 64] = {};
                        size_t k = f ? fread(cmd, 1, sizeof(cmd) - 1, f) : 0;
                        if (f)
                                (void) fclose(f);
                        /* argv[0] NUL argv[1]: a zombie has an empty cmdline, count it too */
                        if (k == 0 ||
                            (k > strlen(cmd) + 1 && streq(cmd + strlen(cmd) + 1, "version")))
                                n++;
                }
        }
        (void) closedir(d);
        return n;
}

/* ---- supervisor -------------------------------------------------------------------------- */

START_TEST(test_start_and_stop) {
        Supervisor *s = new_supervisor(&timing);
        char path[64], fd0[PATH_MAX], *status, *sigblk;
        const cJSON *start, *argv, *env, *i;
        unsigned overrides = 0;
        uint64_t mask;
        cJSON *all;
        ssize_t n;
        pid_t pid;

        /* Agent-side variables that must not reach k0s, or must be overridden by the spec. */
        ck_assert_int_eq(setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1), 0);
        ck_assert_int_eq(setenv("OVERRIDE", "agent", 1), 0);

        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_IDLE);
        ck_assert_ptr_null(supervisor_get_last_exit(s));
        pid = start_k0s(s, "h1");
        ck_assert_str_eq(supervisor_get_hash(s), "h1");
        ck_assert(!supervisor_is_adopted(s));
        ck_assert_uint_eq(supervisor_get_restarts(s), 0);
        ck_assert_uint_gt(supervisor_get_started_usec(s),
                          now_usec(CLOCK_REALTIME) - 5 * USEC_PER_SEC);
        ck_assert_uint_eq(rec.last, SUPERVISOR_RUNNING);

        all = load_events();
        start = nth_event(all, "start", pid, 0);
        ck_assert_ptr_nonnull(start);
        /* argv exactly as given, no shell in between */
        argv = cJSON_GetObjectItemCaseSensitive(start, "argv");
        ck_assert_int_eq(cJSON_GetArraySize(argv), 3);
        ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(argv, 0)), fake);
        ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(argv, 1)), "worker");
        ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(argv, 2)),
                         "--token-file=/etc/k0s/k0stoken");
        ck_assert_int_eq((int) ev_num(start, "ppid"), (int) getpid());
        env = cJSON_GetObjectItemCaseSensitive(start, "env");
        ck_assert(strv_json_contains(env, SUPERVISOR_MARKER_ENV));
        ck_assert(strv_json_contains(env, "FOO=bar baz"));
        ck_assert(strv_json_contains(env, "OVERRIDE=spec"));
        cJSON_ArrayForEach(i, env) {
                ck_assert(!startswith(cJSON_GetStringValue(i), "NOTIFY_SOCKET="));
                overrides += startswith(cJSON_GetStringValue(i), "OVERRIDE=");
        }
        ck_assert_uint_eq(overrides, 1);
        cJSON_Delete(all);

        /* Own session, stdin from /dev/null, and SIGCHLD (blocked here) not blocked in k0s. */
        ck_assert_int_eq(getsid(pid), pid);
        (void) snprintf(path, sizeof(path), "/proc/%d/fd/0", (int) pid);
        n = readlink(path, fd0, sizeof(fd0) - 1);
        ck_assert_int_gt(n, 0);
        fd0[n] = 0;
        ck_assert_str_eq(fd0, "/dev/null");
        (void) snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        status = read_file(path);
        ck_assert_ptr_nonnull(status);
        sigblk = strstr(status, "SigBlk:");
        ck_assert_ptr_nonnull(sigblk);
        mask = strtoull(sigblk + strlen("SigBlk:"), NULL, 16);
        ck_assert_uint_eq(mask & (UINT64_C(1) << (SIGCHLD - 1)), 0);

        assert_pidfile(pid, "h1");

        /* Stop: exactly one SIGTERM, a clean exit, the pidfile gone, never started again. */
        ck_assert_int_eq(supervisor_stop(s), 1);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_STOPPING);
        ck_assert_int_eq(supervisor_stop(s), 1); /* a second stop sends nothing more */
        wait_state(s, SUPERVISOR_IDLE, 3 * USEC_PER_SEC);
        ck_assert_uint_eq(rec.idle_seen, 1);
        ck_assert_uint_eq(count_in_log("signal", pid), 1);
        all = load_events();
        ck_assert_str_eq(ev_str(nth_event(all, "signal", pid, 0), "signal"), "SIGTERM");
        ck_assert_int_eq((int) ev_num(nth_event(all, "exit", pid, 0), "code"), 0);
        cJSON_Delete(all);
        ck_assert_str_eq(supervisor_get_last_exit(s), "exited 0");
        ck_assert(!file_exists(pidfile));
        ck_assert_int_eq(supervisor_get_pid(s), 0);
        ck_assert_ptr_null(supervisor_get_hash(s));

        {
                K0sSpec spec = make_spec("h2", NULL);
                ck_assert_int_eq(supervisor_set_desired(s, &spec), 0);
                k0s_spec_done(&spec);
        }
        run_for(MSEC(200));
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_IDLE);
        ck_assert_uint_eq(count_in_log("start", 0), 1);

        supervisor_free(s);
        ck_assert_int_eq(unsetenv("NOTIFY_SOCKET"), 0);
        ck_assert_int_eq(unsetenv("OVERRIDE"), 0);
}
END_TEST

START_TEST(test_same_hash_no_restart) {
        Supervisor *s = new_supervisor(&timing);
        K0sSpec spec = make_spec("h1", "--other-argv-same-hash");
        pid_t pid = start_k0s(s, "h1");

        /* Only the hash counts: the caller folds everything k0s reads into it. */
        ck_assert_int_eq(supervisor_set_desired(s, &spec), 0);
        k0s_spec_done(&spec);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_RUNNING);
        run_for(2 * timing.settle_usec);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_RUNNING);
        ck_assert_int_eq(supervisor_get_pid(s), pid);
        ck_assert_uint_eq(count_in_log("signal", 0), 0);
        ck_assert_uint_eq(count_in_log("start", 0), 1);

        stop_k0s(s);
        supervisor_free(s);
}
END_TEST

START_TEST(test_new_hash_restarts_after_settle) {
        Supervisor *s = new_supervisor(&timing);
        K0sSpec spec = make_spec("h2", "--labels=new");
        pid_t pid1 = start_k0s(s, "h1"), pid2;
        const cJSON *sig, *exit1, *start2;
        double t_set;
        cJSON *all;

        t_set = loop_now_realtime();
        ck_assert_int_eq(supervisor_set_desired(s, &spec), 0);
        k0s_spec_done(&spec);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_SETTLING);
        ck_assert_uint_gt(supervisor_get_next_start_usec(s), 0);
        ck_assert_str_eq(supervisor_get_hash(s), "h1"); /* still the running one */

        wait_log("start", 0, 2, 3 * USEC_PER_SEC);
        wait_state(s, SUPERVISOR_RUNNING, USEC_PER_SEC);
        pid2 = supervisor_get_pid(s);
        ck_assert_int_ne(pid2, pid1);
        ck_assert_str_eq(supervisor_get_hash(s), "h2");
        ck_assert_uint_eq(supervisor_get_restarts(s), 1);
        ck_assert_str_eq(supervisor_get_last_exit(s), "exited 0");

        run_for(MSEC(300)); /* nothing more happens */
        all = load_events();
        ck_assert_uint_eq(count_events(all, "signal", 0), 1);
        ck_assert_uint_eq(count_events(all, "start", 0), 2);
        sig = nth_event(all, "signal", pid1, 0);
        ck_assert_ptr_nonnull(sig);
        ck_assert_str_eq(ev_str(sig, "signal"), "SIGTERM");
        /* Not before the settle period ended. */
        ck_assert_double_ge(ev_num(sig, "time") - t_set, 0.199);
        /* Never two at once: the new one started after the old one exited. */
        exit1 = nth_event(all, "exit", pid1, 0);
        start2 = nth_event(all, "start", pid2, 0);
        ck_assert_ptr_nonnull(exit1);
        ck_assert_ptr_nonnull(start2);
        ck_assert_double_ge(ev_num(start2, "time"), ev_num(exit1, "time"));
        ck_assert(strv_json_contains(cJSON_GetObjectItemCaseSensitive(start2, "argv"),
                                     "--labels=new"));
        /* A restart we asked for is no crash: started at once, no backoff delay. */
        ck_assert_uint_eq(rec.n_delays, 0);
        cJSON_Delete(all);
        assert_pidfile(pid2, "h2");

        stop_k0s(s);
        supervisor_free(s);
}
END_TEST

START_TEST(test_flap_back_within_settle) {
        Supervisor *s = new_supervisor(&timing);
        K0sSpec h2 = make_spec("h2", NULL), h1 = make_spec("h1", NULL);
        pid_t pid = start_k0s(s, "h1");

        ck_assert_int_eq(supervisor_set_desired(s, &h2), 0);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_SETTLING);
        run_for(MSEC(50));
        ck_assert_int_eq(supervisor_set_desired(s, &h1), 0);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_RUNNING);
        ck_assert_uint_eq(supervisor_get_next_start_usec(s), 0);
        run_for(2 * timing.settle_usec);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_RUNNING);
        ck_assert_int_eq(supervisor_get_pid(s), pid);
        ck_assert_uint_eq(count_in_log("signal", 0), 0);

        /* "hold" (NULL) while settling also cancels the restart. */
        ck_assert_int_eq(supervisor_set_desired(s, &h2), 0);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_SETTLING);
        ck_assert_int_eq(supervisor_set_desired(s, NULL), 0);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_RUNNING);
        run_for(2 * timing.settle_usec);
        ck_assert_uint_eq(count_in_log("signal", 0), 0);
        ck_assert_int_eq(supervisor_get_pid(s), pid);

        k0s_spec_done(&h1);
        k0s_spec_done(&h2);
        stop_k0s(s);
        supervisor_free(s);
}
END_TEST

START_TEST(test_settle_restarts_on_each_change) {
        Supervisor *s = new_supervisor(&timing);
        K0sSpec h2 = make_spec("h2", NULL), h3 = make_spec("h3", NULL);
        uint64_t deadline;
        double t_h3;
        cJSON *all;

        (void) start_k0s(s, "h1");
        ck_assert_int_eq(supervisor_set_desired(s, &h2), 0);
        deadline = supervisor_get_next_start_usec(s);
        run_for(MSEC(30));
        /* The same desired spec again (a reconcile with nothing new) keeps the deadline... */
        ck_assert_int_eq(supervisor_set_desired(s, &h2), 0);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_SETTLING);
        ck_assert_uint_eq(supervisor_get_next_start_usec(s), deadline);
        /* ...a different one pushes it out: the new inputs must hold a whole settle period. */
        run_for(MSEC(30));
        t_h3 = loop_now_realtime();
        ck_assert_int_eq(supervisor_set_desired(s, &h3), 0);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_SETTLING);
        ck_assert_uint_ge(supervisor_get_next_start_usec(s), deadline + MSEC(60));

        wait_log("start", 0, 2, 3 * USEC_PER_SEC);
        wait_state(s, SUPERVISOR_RUNNING, USEC_PER_SEC);
        ck_assert_str_eq(supervisor_get_hash(s), "h3");
        all = load_events();
        ck_assert_uint_eq(count_events(all, "signal", 0), 1);
        ck_assert_double_ge(ev_num(nth_event(all, "signal", 0, 0), "time") - t_h3, 0.199);
        cJSON_Delete(all);

        k0s_spec_done(&h2);
        k0s_spec_done(&h3);
        stop_k0s(s);
        supervisor_free(s);
}
END_TEST

START_TEST(test_crash_backoff_grows) {
        Supervisor *s = new_supervisor(&timing);
        double d[3];
        cJSON *all;

        write_file(ctl_path, "exit 1 50\n");
        (void) start_k0s(s, "h1");
        /* Runs of 50 ms, then 100, 200, 400 ms pauses: four starts in well under 3 s. */
        wait_log("start", 0, 4, 5 * USEC_PER_SEC);

        all = load_events();
        for (unsigned k = 0; k < 3; k++) {
                const cJSON *st = nth_event(all, "start", 0, k);
                pid_t pid = (pid_t) ev_num(st, "pid");
                const cJSON *ex = nth_event(all, "exit", pid, 0);
                const cJSON *next = nth_event(all, "start", 0, k + 1);

                ck_assert_ptr_nonnull(ex);
                ck_assert_int_eq((int) ev_num(ex, "code"), 1);
                d[k] = ev_num(next, "time") - ev_num(ex, "time");
        }
        cJSON_Delete(all);
        ck_assert_double_ge(d[0], 0.09);
        ck_assert_double_gt(d[1], d[0]);
        ck_assert_double_gt(d[2], d[1]);
        /* The delays the supervisor scheduled: exactly the doubling sequence. */
        ck_assert_uint_ge(rec.n_delays, 3);
        ck_assert_uint_eq(rec.delays[0], MSEC(100));
        ck_assert_uint_eq(rec.delays[1], MSEC(200));
        ck_assert_uint_eq(rec.delays[2], MSEC(400));
        ck_assert_uint_ge(supervisor_get_restarts(s), 3);
        ck_assert_str_eq(supervisor_get_last_exit(s), "exited 1");
        ck_assert_uint_eq(count_in_log("signal", 0), 0);

        stop_k0s(s);
        ck_assert(!file_exists(pidfile));
        supervisor_free(s);
}
END_TEST

START_TEST(test_exit0_restarts) {
        Supervisor *s = new_supervisor(&timing);
        pid_t pid1;

        write_file(ctl_path, "once-exit 0 50\n");
        pid1 = start_k0s(s, "h1");
        /* Autopilot stops k0s with exit 0 and expects it back. */
        wait_state(s, SUPERVISOR_BACKOFF, 2 * USEC_PER_SEC);
        ck_assert_str_eq(supervisor_get_last_exit(s), "exited 0");
        ck_assert_int_eq(supervisor_get_pid(s), 0);
        ck_assert(!file_exists(pidfile));
        ck_assert_uint_gt(supervisor_get_next_start_usec(s), 0);
        wait_state(s, SUPERVISOR_RUNNING, 2 * USEC_PER_SEC);
        ck_assert_int_ne(supervisor_get_pid(s), pid1);
        wait_log("start", supervisor_get_pid(s), 1, 2 * USEC_PER_SEC);
        ck_assert_uint_eq(supervisor_get_restarts(s), 1);
        ck_assert_uint_eq(supervisor_get_next_start_usec(s), 0);
        ck_assert(file_exists(pidfile));
        /* once-exit: the second run stays up. */
        run_for(MSEC(200));
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_RUNNING);

        stop_k0s(s);
        supervisor_free(s);
}
END_TEST

START_TEST(test_stable_run_resets_backoff) {
        SupervisorTiming t = timing;
        Supervisor *s;

        t.stable_usec = MSEC(100);
        s = new_supervisor(&t);
        write_file(ctl_path, "exit 1 250\n");
        (void) start_k0s(s, "h1");
        wait_log("start", 0, 3, 5 * USEC_PER_SEC);
        wait_state(s, SUPERVISOR_RUNNING, USEC_PER_SEC);
        /* Each run outlived stable_usec: every delay is the minimum again. */
        ck_assert_uint_ge(rec.n_delays, 2);
        for (unsigned k = 0; k < rec.n_delays; k++)
                ck_assert_uint_eq(rec.delays[k], MSEC(100));

        stop_k0s(s);
        supervisor_free(s);
}
END_TEST

START_TEST(test_hold_cancels_backoff) {
        Supervisor *s = new_supervisor(&timing);

        write_file(ctl_path, "once-exit 1 20\n");
        (void) start_k0s(s, "h1");
        wait_state(s, SUPERVISOR_BACKOFF, 2 * USEC_PER_SEC);
        ck_assert_int_eq(supervisor_set_desired(s, NULL), 0);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_IDLE);
        run_for(MSEC(300));
        ck_assert_uint_eq(count_in_log("start", 0), 1);
        /* Gate open again: the first start is immediate. */
        (void) start_k0s(s, "h1");
        stop_k0s(s);
        supervisor_free(s);
}
END_TEST

START_TEST(test_stop_timeout_sigkill) {
        Supervisor *s = new_supervisor(&timing);
        uint64_t t0, elapsed;
        pid_t pid;

        write_file(ctl_path, "ignore-term\n");
        pid = start_k0s(s, "h1");
        ck_assert_int_ge(sd_event_now(ev, CLOCK_MONOTONIC, &t0), 0); /* what the timer uses */
        ck_assert_int_eq(supervisor_stop(s), 1);
        wait_state(s, SUPERVISOR_IDLE, 3 * USEC_PER_SEC);
        elapsed = now_usec(CLOCK_MONOTONIC) - t0;
        ck_assert_uint_ge(elapsed, timing.stop_timeout_usec);
        ck_assert_uint_eq(count_in_log("signal", pid), 1); /* one SIGTERM, ignored */
        ck_assert_uint_eq(count_in_log("exit", pid), 0); /* SIGKILL leaves no line */
        ck_assert_str_eq(supervisor_get_last_exit(s), "killed by SIGKILL");
        ck_assert_uint_eq(rec.idle_seen, 1);
        ck_assert_uint_eq(rec.last, SUPERVISOR_IDLE);
        ck_assert(!file_exists(pidfile));
        ck_assert_int_eq(kill(pid, 0), -1);
        supervisor_free(s);
}
END_TEST

START_TEST(test_stop_while_settling) {
        Supervisor *s = new_supervisor(&timing);
        K0sSpec h2 = make_spec("h2", NULL);
        pid_t pid = start_k0s(s, "h1");
        uint64_t t0;

        ck_assert_int_eq(supervisor_set_desired(s, &h2), 0);
        k0s_spec_done(&h2);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_SETTLING);
        t0 = now_usec(CLOCK_MONOTONIC);
        ck_assert_int_eq(supervisor_stop(s), 1);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_STOPPING);
        wait_state(s, SUPERVISOR_IDLE, 2 * USEC_PER_SEC);
        ck_assert_uint_lt(now_usec(CLOCK_MONOTONIC) - t0, timing.settle_usec);
        run_for(MSEC(300));
        ck_assert_uint_eq(count_in_log("signal", pid), 1);
        ck_assert_uint_eq(count_in_log("start", 0), 1); /* h2 never starts */
        supervisor_free(s);
}
END_TEST

START_TEST(test_stop_during_term_delay) {
        Supervisor *s = new_supervisor(&timing);
        pid_t pid;

        write_file(ctl_path, "term-delay 150\n");
        pid = start_k0s(s, "h1");
        ck_assert_int_eq(supervisor_stop(s), 1);
        run_for(MSEC(50));
        /* Asked again while k0s cleans up: a second SIGTERM would kill it uncleanly. */
        ck_assert_int_eq(supervisor_stop(s), 1);
        wait_state(s, SUPERVISOR_IDLE, 2 * USEC_PER_SEC);
        ck_assert_uint_eq(count_in_log("signal", pid), 1);
        ck_assert_uint_eq(count_in_log("exit", pid), 1);
        ck_assert_str_eq(supervisor_get_last_exit(s), "exited 0");
        supervisor_free(s);
}
END_TEST

START_TEST(test_detach_and_adopt) {
        Supervisor *s1 = new_supervisor(&timing), *s2;
        K0sSpec h1 = make_spec("h1", NULL), h2 = make_spec("h2", NULL);
        pid_t pid = start_k0s(s1, "h1"), pid2;

        supervisor_detach(s1);
        ck_assert_int_eq(supervisor_get_state(s1), SUPERVISOR_IDLE);
        ck_assert_int_eq(supervisor_get_pid(s1), 0);
        /* A detached supervisor never starts a second k0s. */
        ck_assert_int_eq(supervisor_set_desired(s1, &h1), 0);
        ck_assert_int_eq(supervisor_get_pid(s1), 0);
        supervisor_free(s1);
        run_for(MSEC(100));
        ck_assert_int_eq(kill(pid, 0), 0);
        ck_assert(file_exists(pidfile));

        s2 = new_supervisor(&timing);
        ck_assert_int_eq(supervisor_adopt(s2, fake), 1);
        ck_assert_int_eq(supervisor_get_state(s2), SUPERVISOR_RUNNING);
        ck_assert_int_eq(supervisor_get_pid(s2), pid);
        ck_assert(supervisor_is_adopted(s2));
        ck_assert_str_eq(supervisor_get_hash(s2), "h1");
        ck_assert_uint_gt(supervisor_get_started_usec(s2),
                          now_usec(CLOCK_REALTIME) - 10 * USEC_PER_SEC);
        ck_assert_uint_le(supervisor_get_started_usec(s2), now_usec(CLOCK_REALTIME));
        ck_assert_int_eq(supervisor_adopt(s2, fake), -EBUSY);

        /* Same hash: nothing. */
        ck_assert_int_eq(supervisor_set_desired(s2, &h1), 0);
        ck_assert_int_eq(supervisor_get_state(s2), SUPERVISOR_RUNNING);
        run_for(2 * timing.settle_usec);
        ck_assert_uint_eq(count_in_log("signal", 0), 0);
        ck_assert_int_eq(supervisor_get_pid(s2), pid);

        /* Another hash: one SIGTERM through the pidfd after settle, then a new k0s. */
        ck_assert_int_eq(supervisor_set_desired(s2, &h2), 0);
        ck_assert_int_eq(supervisor_get_state(s2), SUPERVISOR_SETTLING);
        wait_log("start", 0, 2, 3 * USEC_PER_SEC);
        wait_state(s2, SUPERVISOR_RUNNING, USEC_PER_SEC);
        pid2 = supervisor_get_pid(s2);
        ck_assert_int_ne(pid2, pid);
        ck_assert(!supervisor_is_adopted(s2));
        ck_assert_uint_eq(count_in_log("signal", pid), 1);
        ck_assert_uint_eq(count_in_log("exit", pid), 1);
        ck_assert_ptr_nonnull(supervisor_get_last_exit(s2));
        ck_assert_uint_eq(supervisor_get_restarts(s2), 1);

        k0s_spec_done(&h1);
        k0s_spec_done(&h2);
        stop_k0s(s2);
        supervisor_free(s2);
}
END_TEST

static void copy_file(const char *from, const char *to) {
        char buf[65536];
        int in = open(from, O_RDONLY | O_CLOEXEC), out;
        ssize_t n;

        ck_assert_int_ge(in, 0);
        out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
        ck_assert_int_ge(out, 0);
        while ((n = read(in, buf, sizeof(buf))) > 0)
                ck_assert_int_eq(write(out, buf, (size_t) n), n);
        ck_assert_int_eq(n, 0);
        ck_assert_int_eq(close(in), 0);
        ck_assert_int_eq(close(out), 0);
}

START_TEST(test_adopt_after_binary_replaced) {
        char bin[PATH_MAX], exe[PATH_MAX + 32], path[64];
        Supervisor *s1 = new_supervisor(&timing), *s2;
        K0sSpec spec;
        ssize_t n;
        pid_t pid;

        /* An autopilot upgrade writes a new binary over the running one's path. */
        (void) snprintf(bin, sizeof(bin), "%s/k0s", dir);
        copy_file(fake, bin);
        spec = make_spec_for(bin, "h1", NULL);
        ck_assert_int_eq(supervisor_set_desired(s1, &spec), 0);
        k0s_spec_done(&spec);
        pid = supervisor_get_pid(s1);
        wait_log("start", pid, 1, 2 * USEC_PER_SEC);
        supervisor_detach(s1);
        supervisor_free(s1);

        ck_assert_int_eq(unlink(bin), 0);
        copy_file(fake, bin);
        (void) snprintf(path, sizeof(path), "/proc/%d/exe", (int) pid);
        n = readlink(path, exe, sizeof(exe) - 1);
        ck_assert_int_gt(n, 0);
        exe[n] = 0;
        ck_assert_msg(strstr(exe, " (deleted)"), "exe is '%s'", exe);

        s2 = new_supervisor(&timing);
        ck_assert_int_eq(supervisor_adopt(s2, bin), 1);
        ck_assert_int_eq(supervisor_get_pid(s2), pid);
        stop_k0s(s2);
        ck_assert_uint_eq(count_in_log("signal", pid), 1);
        ck_assert_uint_eq(count_in_log("exit", pid), 1);
        ck_assert(!file_exists(pidfile));
        supervisor_free(s2);
}
END_TEST

START_TEST(test_adopt_stale_pidfiles) {
        Supervisor *s = new_supervisor(&timing);
        char *marker_env[] = { (char *) SUPERVISOR_MARKER_ENV, NULL };
        uint64_t starttime;
        pid_t pid;

        /* No pidfile. */
        ck_assert_int_eq(supervisor_adopt(s, fake), 0);

        /* Garbage, an empty hash, trailing junk. */
        write_file(pidfile, "hello\n");
        ck_assert_int_eq(supervisor_adopt(s, fake), 0);
        ck_assert(!file_exists(pidfile));
        write_file(pidfile, "1\n1\n\n");
        ck_assert_int_eq(supervisor_adopt(s, fake), 0);
        ck_assert(!file_exists(pidfile));
        write_file(pidfile, "1\n1\nh1\nmore\n");
        ck_assert_int_eq(supervisor_adopt(s, fake), 0);
        ck_assert(!file_exists(pidfile));

        /* A dead PID. */
        {
                char *argv[] = { (char *) fake, (char *) "version", NULL };
                posix_spawn_file_actions_t fa;

                ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
                ck_assert_int_eq(posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
                                                                  O_WRONLY, 0),
                                 0);
                ck_assert_int_eq(posix_spawn(&pid, fake, &fa, NULL, argv, environ), 0);
                ck_assert_int_eq(posix_spawn_file_actions_destroy(&fa), 0);
                ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        }
        write_pidfile(pid, 1, "h1");
        ck_assert_int_eq(supervisor_adopt(s, fake), 0);
        ck_assert(!file_exists(pidfile));

        /* A live process that is not k0s (this test), with its true start time. */
        ck_assert_int_eq(proc_starttime(getpid(), &starttime), 0);
        write_pidfile(getpid(), starttime, "h1");
        ck_assert_int_eq(supervisor_adopt(s, fake), 0);
        ck_assert(!file_exists(pidfile));

        /* The k0s binary, but not started by an agent (no marker). */
        pid = spawn_fake("worker", NULL, NULL);
        ck_assert_int_eq(proc_starttime(pid, &starttime), 0);
        write_pidfile(pid, starttime, "h1");
        ck_assert_int_eq(supervisor_adopt(s, fake), 0);
        ck_assert(!file_exists(pidfile));
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_IDLE);
        kill_and_reap(pid);

        /* Marked, but the start time says the PID was reused. */
        pid = spawn_fake("worker", NULL, marker_env);
        ck_assert_int_eq(proc_starttime(pid, &starttime), 0);
        write_pidfile(pid, starttime + 1, "h1");
        ck_assert_int_eq(supervisor_adopt(s, fake), 0);
        ck_assert(!file_exists(pidfile));

        /* ...and with the right start time it is adopted. */
        write_pidfile(pid, starttime, "h1");
        ck_assert_int_eq(supervisor_adopt(s, fake), 1);
        ck_assert_int_eq(supervisor_get_pid(s), pid);
        supervisor_detach(s);
        kill_and_reap(pid);

        /* Adoption never signals. */
        ck_assert_uint_eq(count_in_log("signal", 0), 0);
        supervisor_free(s);
}
END_TEST

static bool two_delays(const void *userdata) {
        return rec.n_delays >= 2;
}

START_TEST(test_start_failure_backs_off) {
        Supervisor *s = new_supervisor(&timing);
        char missing[PATH_MAX];
        K0sSpec spec;

        (void) snprintf(missing, sizeof(missing), "%s/no-such-k0s", dir);
        spec = make_spec_for(missing, "h1", NULL);
        ck_assert_int_eq(supervisor_set_desired(s, &spec), 0);
        k0s_spec_done(&spec);
        /* glibc reports the failed exec from posix_spawn; where it cannot (valgrind turns the
         * vfork into a fork), the child exits non-zero instead. Both end in BACKOFF. */
        wait_state(s, SUPERVISOR_BACKOFF, USEC_PER_SEC);
        ck_assert_int_eq(supervisor_get_pid(s), 0);
        ck_assert_ptr_nonnull(supervisor_get_last_exit(s));
        ck_assert_msg(startswith(supervisor_get_last_exit(s), "failed to start") ||
                              (startswith(supervisor_get_last_exit(s), "exited ") &&
                               !streq(supervisor_get_last_exit(s), "exited 0")),
                      "last exit '%s'", supervisor_get_last_exit(s));
        /* Retries on its own: a second delay is scheduled after the first one ends. */
        ck_assert(run_until(two_delays, NULL, 2 * USEC_PER_SEC));
        ck_assert_uint_eq(rec.delays[1], MSEC(200));
        ck_assert_int_eq(supervisor_stop(s), 0);
        ck_assert_int_eq(supervisor_get_state(s), SUPERVISOR_IDLE);
        supervisor_free(s);
}
END_TEST

/* ---- version probe ---------------------------------------------------------------------- */

typedef struct ProbeResult {
        bool done;
        int r;
        char output[256];
} ProbeResult;

static void on_probe(VersionProbe *p, int r, const char *output, void *userdata) {
        ProbeResult *res = userdata;

        ck_assert(!res->done);
        res->done = true;
        res->r = r;
        if (r >= 0) {
                ck_assert_ptr_nonnull(output);
                (void) snprintf(res->output, sizeof(res->output), "%s", output);
        } else
                ck_assert_ptr_null(output);
}

static bool probe_done(const void *userdata) {
        return ((const ProbeResult *) userdata)->done;
}

static ProbeResult run_probe(const char *binary, uint64_t timeout) {
        ProbeResult res = {};
        VersionProbe *p = NULL;

        ck_assert_int_eq(version_probe_start(ev, binary, timeout, on_probe, &res, &p), 0);
        ck_assert(run_until(probe_done, &res, timeout + 2 * USEC_PER_SEC));
        version_probe_free(p);
        ck_assert(count_probe_children() == 0);
        return res;
}

START_TEST(test_version_probe_ok) {
        ProbeResult res = run_probe(fake, 2 * USEC_PER_SEC);

        ck_assert_int_eq(res.r, 0);
        ck_assert_str_eq(res.output, "v1.35.7+k0s.0");

        /* The first line, trimmed. */
        ck_assert_int_eq(setenv("FAKE_K0S_VERSION", " \tv1.36.1+k0s.0 \r\nsecond line", 1), 0);
        res = run_probe(fake, 2 * USEC_PER_SEC);
        ck_assert_int_eq(res.r, 0);
        ck_assert_str_eq(res.output, "v1.36.1+k0s.0");
}
END_TEST

START_TEST(test_version_probe_fails) {
        VersionProbe *p = NULL;
        ProbeResult res;
        char missing[PATH_MAX];
        int r;

        ck_assert_int_eq(setenv("FAKE_K0S_VERSION_FAIL", "1", 1), 0);
        res = run_probe(fake, 2 * USEC_PER_SEC);
        ck_assert_int_eq(res.r, -EIO);

        /* A missing binary: posix_spawn says ENOENT, or (under valgrind, which turns the vfork
         * into a fork) the child exits 127. */
        (void) snprintf(missing, sizeof(missing), "%s/no-such-k0s", dir);
        res = (ProbeResult){};
        r = version_probe_start(ev, missing, USEC_PER_SEC, on_probe, &res, &p);
        if (r == 0) {
                ck_assert(run_until(probe_done, &res, 3 * USEC_PER_SEC));
                ck_assert_int_eq(res.r, -EIO);
                version_probe_free(p);
        } else {
                ck_assert_int_eq(r, -ENOENT);
                ck_assert_ptr_null(p);
        }
}
END_TEST

START_TEST(test_version_probe_timeout) {
        uint64_t t0 = now_usec(CLOCK_MONOTONIC), elapsed;
        ProbeResult res;
        VersionProbe *p = NULL;

        ck_assert_int_eq(setenv("FAKE_K0S_VERSION_HANG", "1", 1), 0);
        res = run_probe(fake, MSEC(300));
        elapsed = now_usec(CLOCK_MONOTONIC) - t0;
        ck_assert_int_eq(res.r, -ETIMEDOUT);
        ck_assert_uint_ge(elapsed, MSEC(300));
        ck_assert_uint_lt(elapsed, 2 * USEC_PER_SEC);

        /* Freed before it ends: the child is killed and reaped, never left behind. */
        res = (ProbeResult){};
        ck_assert_int_eq(version_probe_start(ev, fake, 10 * USEC_PER_SEC, on_probe, &res, &p), 0);
        run_for(MSEC(50));
        version_probe_free(p);
        ck_assert(count_probe_children() == 0);
        ck_assert(!res.done);
}
END_TEST

/* ---- the fake's status socket (the contract health tests rely on) ------------------------ */

static int connect_status(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

static bool sock_exists(const void *userdata) {
        return file_exists(userdata);
}

START_TEST(test_fake_status_socket) {
        static const char req[] = "GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n";
        char sock[PATH_MAX], env_sock[PATH_MAX + 32], resp[16384];
        char *env[] = { env_sock, NULL };
        struct pollfd pfd;
        size_t len = 0;
        cJSON *j, *args;
        ssize_t n;
        int fd;
        pid_t pid;

        (void) snprintf(sock, sizeof(sock), "%s/status.sock", dir);
        (void) snprintf(env_sock, sizeof(env_sock), "FAKE_K0S_STATUS_SOCKET=%s", sock);
        pid = spawn_fake("controller", "--enable-worker", env);
        ck_assert(run_until(sock_exists, sock, 2 * USEC_PER_SEC));

        fd = connect_status(sock);
        ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t) strlen(req));
        pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
        while (len < sizeof(resp) - 1) {
                ck_assert_int_eq(poll(&pfd, 1, 2000), 1);
                n = read(fd, resp + len, sizeof(resp) - 1 - len);
                ck_assert_int_ge(n, 0);
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        resp[len] = 0;
        (void) close(fd);
        ck_assert(startswith(resp, "HTTP/1.1 200 OK\r\n"));
        ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\n"));
        j = cJSON_Parse(strstr(resp, "\r\n\r\n") + 4);
        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq((int) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "Pid")),
                         (int) pid);
        ck_assert_str_eq(ev_str(j, "Role"), "controller");
        ck_assert_str_eq(ev_str(j, "Version"), "v1.35.7+k0s.0");
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "Workloads")));
        ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "SingleNode")));
        ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "ClusterConfig")));
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(j, "WorkerToAPIConnectionStatus"), "Success")));
        ck_assert_str_eq(ev_str(cJSON_GetObjectItemCaseSensitive(j, "K0sVars"), "StatusSocketPath"),
                         sock);
        args = cJSON_GetObjectItemCaseSensitive(j, "Args");
        ck_assert_int_eq(cJSON_GetArraySize(args), 3);
        ck_assert(strv_json_contains(args, "--enable-worker"));
        cJSON_Delete(j);

        ck_assert_int_eq(kill(pid, SIGTERM), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        ck_assert(!file_exists(sock));
}
END_TEST

START_TEST(test_fake_status_socket_hang) {
        static const char req[] = "GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n";
        char sock[PATH_MAX], env_sock[PATH_MAX + 32];
        char *env[] = { env_sock, (char *) "FAKE_K0S_STATUS_HANG=1", NULL };
        struct pollfd pfd;
        int fd;
        pid_t pid;

        (void) snprintf(sock, sizeof(sock), "%s/status.sock", dir);
        (void) snprintf(env_sock, sizeof(env_sock), "FAKE_K0S_STATUS_SOCKET=%s", sock);
        pid = spawn_fake("worker", NULL, env);
        ck_assert(run_until(sock_exists, sock, 2 * USEC_PER_SEC));
        fd = connect_status(sock);
        ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t) strlen(req));
        pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
        ck_assert_int_eq(poll(&pfd, 1, 300), 0); /* accepted, never answered */
        (void) close(fd);
        kill_and_reap(pid);
}
END_TEST

/* ---- cleanup of whatever a failed test left running ---------------------------------------- */

static void kill_leftovers(const char *log) {
        char exe[PATH_MAX], path[64], *real_fake, *line = NULL;
        FILE *f = fopen(log, "re");
        size_t size = 0;

        if (!f)
                return;
        real_fake = realpath(fake, NULL);
        while (getline(&line, &size, f) > 0) {
                cJSON *j = cJSON_Parse(line);
                const cJSON *pid = cJSON_GetObjectItemCaseSensitive(j, "pid");
                ssize_t n;

                if (cJSON_IsNumber(pid)) {
                        (void) snprintf(path, sizeof(path), "/proc/%d/exe", pid->valueint);
                        n = readlink(path, exe, sizeof(exe) - 1);
                        if (n > 0) {
                                exe[n] = 0;
                                /* Only fakes of this run: the binary, or a copy under root. */
                                if ((real_fake && startswith(exe, real_fake)) ||
                                    startswith(exe, root))
                                        (void) kill(pid->valueint, SIGKILL);
                        }
                }
                cJSON_Delete(j);
        }
        free(real_fake);
        free(line);
        (void) fclose(f);
}

static int cleanup_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_F && strstr(path, "/k0s.log"))
                kill_leftovers(path);
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static Suite *supervisor_suite(void) {
        Suite *s = suite_create("supervisor");
        TCase *tc = tcase_create("supervisor"), *tp = tcase_create("probe"),
              *tf = tcase_create("fake");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_start_and_stop);
        tcase_add_test(tc, test_same_hash_no_restart);
        tcase_add_test(tc, test_new_hash_restarts_after_settle);
        tcase_add_test(tc, test_flap_back_within_settle);
        tcase_add_test(tc, test_settle_restarts_on_each_change);
        tcase_add_test(tc, test_crash_backoff_grows);
        tcase_add_test(tc, test_exit0_restarts);
        tcase_add_test(tc, test_stable_run_resets_backoff);
        tcase_add_test(tc, test_hold_cancels_backoff);
        tcase_add_test(tc, test_stop_timeout_sigkill);
        tcase_add_test(tc, test_stop_while_settling);
        tcase_add_test(tc, test_stop_during_term_delay);
        tcase_add_test(tc, test_detach_and_adopt);
        tcase_add_test(tc, test_adopt_after_binary_replaced);
        tcase_add_test(tc, test_adopt_stale_pidfiles);
        tcase_add_test(tc, test_start_failure_backs_off);
        suite_add_tcase(s, tc);

        tcase_add_checked_fixture(tp, setup, teardown);
        tcase_set_timeout(tp, 60);
        tcase_add_test(tp, test_version_probe_ok);
        tcase_add_test(tp, test_version_probe_fails);
        tcase_add_test(tp, test_version_probe_timeout);
        suite_add_tcase(s, tp);

        tcase_add_checked_fixture(tf, setup, teardown);
        tcase_set_timeout(tf, 60);
        tcase_add_test(tf, test_fake_status_socket);
        tcase_add_test(tf, test_fake_status_socket_hang);
        suite_add_tcase(s, tf);
        return s;
}

int main(void) {
        const char *tmp = getenv("TMPDIR");
        sigset_t mask;
        SRunner *sr;
        int failed;

        fake = getenv("FAKE_K0S");
        if (isempty(fake) || access(fake, X_OK) < 0) {
                fprintf(stderr, "FAKE_K0S must name the fake-k0s binary (meson sets it)\n");
                return EXIT_FAILURE;
        }
        /* As in the agent: sd-event wants SIGCHLD blocked before it watches children. */
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return EXIT_FAILURE;

        if (snprintf(root, sizeof(root), "%s/test-supervisor-XXXXXX",
                     isempty(tmp) ? "/tmp" : tmp) >= (int) sizeof(root) ||
            !mkdtemp(root)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }

        sr = srunner_create(supervisor_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        (void) nftw(root, cleanup_entry, 16, FTW_PHYS);
        (void) nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
