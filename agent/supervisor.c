/* SPDX-License-Identifier: MIT */
/*
 * The k0s child's state machine: when to start, settle, stop, restart and adopt, the timers of
 * each state, the pidfile's life, the counters. How a child is made clean is spawn.c, what /proc
 * says about a pidfile's process is k0s-pidfile.c, `k0s version` is version-probe.c. What k0s
 * should run is not decided here: the manager hands in a K0sSpec from reconcile.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "util.h"
#include "atomic-file.h"
#include "backoff.h"
#include "event-util.h"
#include "log.h"
#include "spawn-child.h"
#include "supervisor.h"

/* Durations in log messages: "1.500s". */
#define SEC_FMT "%" PRIu64 ".%03" PRIu64 "s"
#define SEC_ARGS(usec) (usec) / USEC_PER_SEC, (usec) % USEC_PER_SEC / USEC_PER_MSEC

/* How often an adopted k0s is checked where the kernel has no pidfds (< 5.3). */
#define ADOPTED_POLL_USEC (500 * USEC_PER_MSEC)

struct Supervisor {
        sd_event *event;
        char *state_dir;
        char *pidfile; /* state_dir/k0s.pid */
        char *pidfile_tmp; /* state_dir/.k0s.pid.tmp, renamed over pidfile by the child */
        SupervisorTiming timing;
        SupervisorHandler handler;
        void *userdata;

        SupervisorState state;
        Backoff backoff; /* with the floor applied */

        /* What should run; desired.hash == NULL means "hold". */
        K0sSpec desired;

        /* The k0s we know of (pid > 0), spawned by us or adopted. */
        pid_t pid;
        int pidfd; /* adopted only, -1 if none; for our own child sd-event holds the pidfd */
        uint64_t starttime; /* /proc/PID/stat field 22: guards the pidfile against PID reuse */
        char *hash; /* hash of the spec it runs */
        bool adopted;
        bool sigterm_sent; /* exactly one SIGTERM per process: a second kills k0s uncleanly */
        bool sigkill_sent;
        uint64_t started_realtime;
        uint64_t started_boottime; /* for the "ran long enough to count as stable" rule */
        sd_event_source *process_source; /* child source (ours) or pidfd io source (adopted) */

        sd_event_source *timer_source; /* settle end, stop timeout or backoff end, by state */

        bool stopping_for_good; /* supervisor_stop() or _detach(): never start again */
        bool ever_started; /* a k0s was started or adopted before: later starts count */
        char *last_exit;

        /* Blocked starts (state BACKOFF): the binary is not the probed one (cleared by a spec
         * with another binary_id), or adoption could not decide (retried by the timer). */
        bool binary_changed;
        BinaryId refused_id; /* the spec's binary_id that did not match */
        char *adopt_binary; /* non-NULL while adoption is to be retried */
        char *blocked_reason;

        SupervisorCounters counters;
};

static const char *const supervisor_state_table[_SUPERVISOR_STATE_MAX] = {
        [SUPERVISOR_IDLE] = "idle",         [SUPERVISOR_RUNNING] = "running",
        [SUPERVISOR_SETTLING] = "settling", [SUPERVISOR_STOPPING] = "stopping",
        [SUPERVISOR_BACKOFF] = "backoff",
};

const char *supervisor_state_to_string(SupervisorState s) {
        if (s < 0 || s >= _SUPERVISOR_STATE_MAX)
                return NULL;
        return supervisor_state_table[s];
}

static const char *const k0s_exit_reason_table[_K0S_EXIT_REASON_MAX] = {
        [K0S_EXIT_EXITED_OK] = "exited_ok",       [K0S_EXIT_EXITED_ERROR] = "exited_error",
        [K0S_EXIT_SIGNALED] = "signaled",         [K0S_EXIT_STOPPED_BY_AGENT] = "stopped_by_agent",
        [K0S_EXIT_START_FAILED] = "start_failed", [K0S_EXIT_UNKNOWN] = "unknown",
};

const char *k0s_exit_reason_to_string(K0sExitReason r) {
        if (r < 0 || r >= _K0S_EXIT_REASON_MAX)
                return NULL;
        return k0s_exit_reason_table[r];
}

void supervisor_timing_from_config(const AgentConfig *c, SupervisorTiming *ret) {
        *ret = (SupervisorTiming){
                .settle_usec = c->settle_usec,
                .backoff_min_usec = c->restart_backoff_min_usec,
                .backoff_max_usec = c->restart_backoff_max_usec,
                .stable_usec = c->stable_usec,
                .stop_timeout_usec = c->stop_timeout_usec,
        };
}

static int k0s_spec_copy(const K0sSpec *from, K0sSpec *ret) {
        K0sSpec c = {};

        c.argv = strv_copy(from->argv);
        c.env = strv_copy(from->env);
        c.hash = strdup(from->hash);
        c.binary_id = from->binary_id;
        if (!c.argv || !c.env || !c.hash) {
                k0s_spec_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static int pidfd_send_signal_syscall(int pidfd, int sig) {
        return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

/* "exited 1", "killed by SIGKILL" */
static char *exit_status_to_string(int code, int status) {
        const char *name;

        switch (code) {
        case CLD_EXITED:
                return strdup_printf("exited %d", status);
        case CLD_KILLED:
        case CLD_DUMPED:
                name = sigabbrev_np(status);
                if (!name)
                        return strdup_printf("killed by signal %d", status);
                return strdup_printf("killed by SIG%s%s", name,
                                     code == CLD_DUMPED ? " (core dumped)" : "");
        default:
                return strdup_printf("ended (code %d, status %d)", code, status);
        }
}

static K0sExitReason exit_reason_of(const siginfo_t *si) {
        if (!si)
                return K0S_EXIT_UNKNOWN;
        if (si->si_code == CLD_EXITED)
                return si->si_status == 0 ? K0S_EXIT_EXITED_OK : K0S_EXIT_EXITED_ERROR;
        return K0S_EXIT_SIGNALED;
}

static void supervisor_notify(Supervisor *s) {
        if (s->handler)
                s->handler(s, s->userdata);
}

static void supervisor_set_state(Supervisor *s, SupervisorState state) {
        SupervisorState old = s->state;

        if (old == state)
                return;
        s->state = state;
        log_debug("k0s supervisor: %s -> %s", supervisor_state_to_string(old),
                  supervisor_state_to_string(state));
        supervisor_notify(s);
}

static void supervisor_set_blocked(Supervisor *s, char *reason) {
        free(s->blocked_reason);
        s->blocked_reason = reason;
}

static void supervisor_cancel_timer(Supervisor *s) {
        event_timer_disarm(s->timer_source);
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata);

/* One timer serves every state that waits; what it means when it fires depends on the state. */
static int supervisor_arm_timer(Supervisor *s, uint64_t delay_usec) {
        return event_timer_arm(s->event, &s->timer_source, delay_usec, USEC_PER_MSEC, false,
                               on_timer, s, "k0s-supervisor-timer");
}

static void supervisor_remove_pidfile(Supervisor *s) {
        if (unlink(s->pidfile) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove '%s', ignoring: %m", s->pidfile);
}

/* Without a pidfd (kernel < 5.3), an adopted k0s is known by PID + start time only. */
static bool supervisor_adopted_alive(Supervisor *s) {
        uint64_t st;
        char state;

        return k0s_proc_get_stat(s->pid, &state, &st) >= 0 && st == s->starttime && state != 'Z' &&
                state != 'X';
}

static int supervisor_signal(Supervisor *s, int sig) {
        if (s->adopted && s->pidfd >= 0)
                return pidfd_send_signal_syscall(s->pidfd, sig);
        if (s->adopted)
                return supervisor_adopted_alive(s) && kill(s->pid, sig) >= 0 ? 0 : -ESRCH;
        /* sd-event uses the child's pidfd when it has one, so a reused PID is never hit. */
        return sd_event_source_send_child_signal(s->process_source, sig, NULL, 0);
}

/* Drop everything about the current process; the pidfile is the caller's business. */
static void supervisor_forget_process(Supervisor *s) {
        s->process_source = sd_event_source_disable_unref(s->process_source);
        if (s->pidfd >= 0)
                (void) close(s->pidfd);
        s->pidfd = -1;
        s->pid = 0;
        s->starttime = 0;
        s->hash = mfree(s->hash);
        s->adopted = false;
        s->sigterm_sent = false;
        s->sigkill_sent = false;
        s->started_realtime = 0;
        s->started_boottime = 0;
}

static void supervisor_schedule_restart(Supervisor *s, uint64_t ran_usec) {
        uint64_t delay;
        int r;

        /* A k0s that ran for a while and then exited is a new incident, not the same crash loop.
         * Never below the floor: a tiny `stable` must not turn the backoff off. */
        if (ran_usec >= MAX(s->timing.stable_usec, SUPERVISOR_STABLE_FLOOR_USEC))
                backoff_reset(&s->backoff);
        delay = backoff_next(&s->backoff);
        r = supervisor_arm_timer(s, delay);
        if (r < 0) {
                log_error_errno(r, "Failed to arm the k0s restart timer, k0s stays stopped: %m");
                supervisor_set_state(s, SUPERVISOR_IDLE);
                return;
        }
        log_info("Starting k0s again in " SEC_FMT ".", SEC_ARGS(delay));
        if (s->state == SUPERVISOR_BACKOFF)
                /* A failed start while backing off: same state, but a new next start time. */
                supervisor_notify(s);
        else
                supervisor_set_state(s, SUPERVISOR_BACKOFF);
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata);

/* k0s with the spec's argv and environment, output to the journal, the pidfile written by the
 * child before it execs (so its identity survives the agent dying at any instant). */
static int spawn_k0s(Supervisor *s, pid_t *ret_pid) {
        _cleanup_close_ int journal_fd = -1;
        _cleanup_free_ char *journal_stream = NULL, *tail = NULL;
        _cleanup_strv_free_ char **env = NULL;
        const char *more[3] = { SUPERVISOR_MARKER_ENV, NULL, NULL };
        struct stat st;

        /* Not a pipe to the agent: k0s's output must survive an agent restart. */
        journal_fd = sd_journal_stream_fd("k0s", LOG_INFO, 0);
        if (journal_fd < 0)
                log_debug_errno(journal_fd, "No journal stream for k0s, it gets our stderr: %m");
        else if (fstat(journal_fd, &st) >= 0) {
                journal_stream = strdup_printf("JOURNAL_STREAM=%lu:%lu", (unsigned long) st.st_dev,
                                               (unsigned long) st.st_ino);
                if (!journal_stream)
                        return -ENOMEM;
                more[1] = journal_stream;
        }
        env = spawn_build_env(s->desired.env, more);
        tail = strdup_printf("%s\n", s->desired.hash);
        if (!env || !tail)
                return -ENOMEM;

        return spawn_child(
                &(const SpawnSpec){
                        .argv = s->desired.argv,
                        .env = env,
                        .stdout_fd = journal_fd >= 0 ? journal_fd : STDERR_FILENO,
                        .stderr_fd = journal_fd >= 0 ? journal_fd : STDERR_FILENO,
                        .pidfile = s->pidfile,
                        .pidfile_tmp = s->pidfile_tmp,
                        .pidfile_tail = tail,
                },
                ret_pid);
}

/* Is argv[0] still the file the spec was probed from? If not, block the start until a spec from
 * the new binary comes. Returns true if the start may go on. */
static bool supervisor_check_binary(Supervisor *s) {
        BinaryId now = {};
        bool again;
        int r;

        if (!s->desired.binary_id.valid)
                return true;
        r = binary_id_from_path(s->desired.argv[0], &now);
        if (r >= 0 && binary_id_equal(&now, &s->desired.binary_id)) {
                s->binary_changed = false;
                return true;
        }
        /* The same spec refused again (reconcile passes before the re-probe ends): no new log
         * line and no handler call, or handler -> reconcile -> set_desired would loop. */
        again = s->binary_changed && binary_id_equal(&s->desired.binary_id, &s->refused_id);
        if (r < 0)
                log_full_errno(again ? LOG_DEBUG : LOG_WARNING, r,
                               "Cannot stat the k0s binary '%s', not starting it: %m",
                               s->desired.argv[0]);
        else
                log_full_errno(again ? LOG_DEBUG : LOG_NOTICE, 0,
                               "The k0s binary '%s' was replaced since its version was probed; "
                               "waiting for its new version before starting it.",
                               s->desired.argv[0]);
        supervisor_cancel_timer(s);
        if (again)
                return false;
        s->binary_changed = true;
        s->refused_id = s->desired.binary_id;
        supervisor_set_blocked(s,
                               strdup("the k0s binary changed since its version was probed; "
                                      "probing it again"));
        if (s->state == SUPERVISOR_BACKOFF)
                supervisor_notify(s);
        else
                supervisor_set_state(s, SUPERVISOR_BACKOFF);
        return false;
}

static void supervisor_start_failed(Supervisor *s, int r) {
        log_error_errno(r, "Failed to start k0s '%s': %m", s->desired.argv[0]);
        free(s->last_exit);
        s->last_exit = strdup_printf("failed to start: %s", strerror(-r));
        s->counters.exits[K0S_EXIT_START_FAILED]++;
        supervisor_schedule_restart(s, 0);
}

static void supervisor_start(Supervisor *s) {
        _cleanup_free_ char *hash = NULL;
        char pid_field[32], hash_field[128];
        sd_event_source *src = NULL;
        pid_t pid = 0;
        int r;

        /* Never two k0s at once: not with one we know, nor with one we could not rule out. */
        if (s->pid > 0 || s->adopt_binary)
                return;
        if (!supervisor_check_binary(s))
                return;
        supervisor_set_blocked(s, NULL);

        hash = strdup(s->desired.hash);
        r = hash ? spawn_k0s(s, &pid) : -ENOMEM;
        if (r < 0) {
                supervisor_start_failed(s, r);
                return;
        }

        r = sd_event_add_child(s->event, &src, pid, WEXITED, on_child_exit, s);
        if (r < 0) {
                /* Unwatched, it could outlive us as a second k0s: take it down again. */
                log_error_errno(r, "Failed to watch k0s (pid %d), killing it: %m", pid);
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                supervisor_remove_pidfile(s);
                supervisor_start_failed(s, r);
                return;
        }
        (void) sd_event_source_set_description(src, "k0s-child");

        s->process_source = src;
        s->pid = pid;
        s->hash = TAKE_PTR(hash);
        s->started_realtime = now_usec(CLOCK_REALTIME);
        s->started_boottime = now_usec(CLOCK_BOOTTIME);
        s->counters.starts++;
        s->counters.last_start_usec = now_usec(CLOCK_MONOTONIC);
        if (s->ever_started)
                s->counters.restarts++;
        s->ever_started = true;
        /* Not reaped until we dispatch its exit, so /proc/PID/stat is there even if it died. */
        r = k0s_proc_get_stat(pid, NULL, &s->starttime);
        if (r < 0)
                log_warning_errno(r, "Failed to read the start time of k0s (pid %d): %m", pid);

        (void) snprintf(pid_field, sizeof(pid_field), "K0S_PID=%d", pid);
        (void) snprintf(hash_field, sizeof(hash_field), "K0S_HASH=%s", s->desired.hash);
        log_struct_errno(LOG_INFO, 0, MESSAGE_ID_K0S_STARTED,
                         (const char *const[]){ pid_field, hash_field, NULL },
                         "Started k0s (pid %d): %s %s", pid, s->desired.argv[0],
                         s->desired.argv[1] ? s->desired.argv[1] : "");
        supervisor_set_state(s, SUPERVISOR_RUNNING);
}

/* One SIGTERM, then SIGKILL when stop_timeout passes. */
static void supervisor_begin_stop(Supervisor *s, const char *why) {
        char pid_field[32];
        int r;

        (void) snprintf(pid_field, sizeof(pid_field), "K0S_PID=%d", s->pid);
        if (!s->sigterm_sent) {
                s->sigterm_sent = true;
                log_struct_errno(LOG_INFO, 0, MESSAGE_ID_K0S_STOPPING,
                                 (const char *const[]){ pid_field, NULL },
                                 "Stopping k0s (pid %d): %s.", s->pid, why);
                r = supervisor_signal(s, SIGTERM);
                if (r < 0)
                        /* ESRCH: it is exiting already; its exit event is on the way. */
                        log_warning_errno(r, "Failed to send SIGTERM to k0s (pid %d): %m", s->pid);
        }
        r = supervisor_arm_timer(s, s->timing.stop_timeout_usec);
        if (r < 0)
                log_error_errno(r, "Failed to arm the k0s stop timer, waiting without one: %m");
        supervisor_set_state(s, SUPERVISOR_STOPPING);
}

static void supervisor_log_exit(Supervisor *s, SupervisorState before, const char *exit_status,
                                uint64_t ran) {
        char pid_field[32], exit_field[96];

        (void) snprintf(pid_field, sizeof(pid_field), "K0S_PID=%d", s->pid);
        (void) snprintf(exit_field, sizeof(exit_field), "K0S_EXIT=%s",
                        exit_status ? exit_status : "unknown");
        log_struct_errno(before == SUPERVISOR_STOPPING ? LOG_INFO : LOG_WARNING, 0,
                         MESSAGE_ID_K0S_EXITED,
                         (const char *const[]){ pid_field, exit_field, NULL },
                         "k0s (pid %d) %s after " SEC_FMT ".", s->pid,
                         exit_status ? exit_status : "ended", SEC_ARGS(ran));
}

/* si: how it ended, NULL when unknown (adopted, not our child). */
static void supervisor_process_gone(Supervisor *s, const siginfo_t *si) {
        SupervisorState before = s->state;
        uint64_t now = now_usec(CLOCK_BOOTTIME);
        uint64_t ran = now > s->started_boottime ? now - s->started_boottime : 0;
        char *exit_status = si ? exit_status_to_string(si->si_code, si->si_status)
                               : strdup("exited (adopted, status unknown)");

        supervisor_log_exit(s, before, exit_status, ran);
        s->counters.exits[s->sigterm_sent ? K0S_EXIT_STOPPED_BY_AGENT : exit_reason_of(si)]++;
        free(s->last_exit);
        s->last_exit = exit_status;
        supervisor_forget_process(s);
        supervisor_remove_pidfile(s);
        supervisor_cancel_timer(s);

        switch (before) {
        case SUPERVISOR_STOPPING:
                /* A stop we asked for: start the new spec at once, this was not a crash. */
                if (s->stopping_for_good || !s->desired.hash)
                        supervisor_set_state(s, SUPERVISOR_IDLE);
                else
                        supervisor_start(s);
                break;
        case SUPERVISOR_RUNNING:
        case SUPERVISOR_SETTLING:
                /* Any exit we did not ask for, exit 0 included: autopilot expects a restart. */
                if (s->stopping_for_good || !s->desired.hash)
                        supervisor_set_state(s, SUPERVISOR_IDLE);
                else
                        supervisor_schedule_restart(s, ran);
                break;
        case SUPERVISOR_IDLE:
        case SUPERVISOR_BACKOFF:
        case _SUPERVISOR_STATE_MAX:
        case _SUPERVISOR_STATE_INVALID:
                /* No process is known in these states. */
                supervisor_set_state(s, SUPERVISOR_IDLE);
                break;
        }
        if (s->state == before)
                supervisor_notify(s);
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        supervisor_process_gone(userdata, si);
        return 0;
}

static int on_pidfd_readable(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Supervisor *s = userdata;
        siginfo_t si = {};

        /* Not our child (it was reparented when the old agent went away), so the status is
         * unknown; unless this agent is still its parent, then reap it and tell. */
        if (waitid(P_PIDFD, (id_t) fd, &si, WEXITED | WNOHANG) >= 0 && si.si_pid > 0)
                supervisor_process_gone(s, &si);
        else
                supervisor_process_gone(s, NULL);
        return 0;
}

static int on_adopted_poll(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;
        siginfo_t si = {};
        char state = 0;
        uint64_t st = 0;
        int r;

        if (supervisor_adopted_alive(s)) {
                r = event_timer_arm(s->event, &s->process_source, ADOPTED_POLL_USEC, USEC_PER_MSEC,
                                    false, on_adopted_poll, s, "k0s-adopted");
                if (r < 0)
                        log_error_errno(r, "Failed to re-arm the watch of k0s (pid %d): %m",
                                        s->pid);
                return 0;
        }
        /* Our own zombie (same start time) can be reaped and tells how it ended. */
        if (k0s_proc_get_stat(s->pid, &state, &st) >= 0 && st == s->starttime && state == 'Z' &&
            waitid(P_PID, (id_t) s->pid, &si, WEXITED | WNOHANG) >= 0 && si.si_pid > 0)
                supervisor_process_gone(s, &si);
        else
                supervisor_process_gone(s, NULL);
        return 0;
}

static int supervisor_try_adopt(Supervisor *s, const char *binary);

static void on_stop_timeout(Supervisor *s) {
        char pid_field[32];
        int r;

        if (s->pid <= 0 || s->sigkill_sent)
                return;
        s->sigkill_sent = true;
        (void) snprintf(pid_field, sizeof(pid_field), "K0S_PID=%d", s->pid);
        log_struct_errno(LOG_WARNING, 0, MESSAGE_ID_K0S_STOPPING,
                         (const char *const[]){ pid_field, NULL },
                         "k0s (pid %d) did not stop within " SEC_FMT ", sending SIGKILL.", s->pid,
                         SEC_ARGS(s->timing.stop_timeout_usec));
        /* The k0s process only, never its group: pods and shims stay. */
        r = supervisor_signal(s, SIGKILL);
        if (r < 0)
                log_warning_errno(r, "Failed to send SIGKILL to k0s (pid %d): %m", s->pid);
}

static void on_backoff_end(Supervisor *s) {
        _cleanup_free_ char *binary = NULL;
        int r;

        if (s->adopt_binary) {
                /* Blocked by a failed adoption: look again; start only once it is settled. */
                binary = TAKE_PTR(s->adopt_binary);
                r = supervisor_try_adopt(s, binary);
                if (r != 0)
                        return; /* adopted (RUNNING), or blocked again with a new timer */
        }
        if (s->desired.hash && !s->stopping_for_good)
                supervisor_start(s);
        else
                supervisor_set_state(s, SUPERVISOR_IDLE);
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        switch (s->state) {
        case SUPERVISOR_SETTLING:
                supervisor_begin_stop(s, "its inputs changed");
                break;
        case SUPERVISOR_STOPPING:
                on_stop_timeout(s);
                break;
        case SUPERVISOR_BACKOFF:
                on_backoff_end(s);
                break;
        case SUPERVISOR_IDLE:
        case SUPERVISOR_RUNNING:
        case _SUPERVISOR_STATE_MAX:
        case _SUPERVISOR_STATE_INVALID:
                break;
        }
        return 0;
}

/* ---- adoption: the pidfile's process, pinned and verified by k0s-pidfile.c, watched here ---- */

static int adopt_watch(Supervisor *s, K0sCandidate *c) {
        uint64_t now_boot, now_rt, age;
        char pid_field[32];
        long hz;
        int r;

        if (c->pidfd >= 0) {
                r = sd_event_add_io(s->event, &s->process_source, c->pidfd, EPOLLIN,
                                    on_pidfd_readable, s);
                if (r >= 0)
                        (void) sd_event_source_set_description(s->process_source, "k0s-adopted");
        } else
                r = event_timer_arm(s->event, &s->process_source, ADOPTED_POLL_USEC, USEC_PER_MSEC,
                                    false, on_adopted_poll, s, "k0s-adopted");
        if (r < 0)
                return log_error_errno(r, "Failed to watch adopted k0s (pid %d): %m", c->pid);

        s->pidfd = TAKE_FD(c->pidfd);
        s->pid = c->pid;
        s->starttime = c->starttime;
        s->hash = TAKE_PTR(c->hash);
        s->adopted = true;
        s->ever_started = true;
        /* Its start time is in clock ticks after boot. */
        hz = sysconf(_SC_CLK_TCK);
        s->started_boottime = hz > 0 ? c->starttime * USEC_PER_SEC / (uint64_t) hz : 0;
        now_boot = now_usec(CLOCK_BOOTTIME);
        now_rt = now_usec(CLOCK_REALTIME);
        age = now_boot > s->started_boottime ? now_boot - s->started_boottime : 0;
        s->started_realtime = now_rt > age ? now_rt - age : 0;

        (void) snprintf(pid_field, sizeof(pid_field), "K0S_PID=%d", c->pid);
        log_struct_errno(LOG_INFO, 0, MESSAGE_ID_K0S_ADOPTED,
                         (const char *const[]){ pid_field, NULL },
                         "Adopted running k0s (pid %d) from an earlier agent.", c->pid);
        return 0;
}

/* Could not tell: start nothing (it may be a running k0s), say so, look again later. */
static int supervisor_adopt_blocked(Supervisor *s, const char *binary, const K0sCandidate *c,
                                    const char *reason, int error) {
        uint64_t delay;
        int r;

        free(s->adopt_binary);
        s->adopt_binary = strdup(binary);
        if (!s->adopt_binary)
                return log_oom();
        supervisor_set_blocked(s,
                               strdup_printf("cannot tell whether pid %d in %s is k0s (%s: %s); "
                                             "not starting a second k0s, retrying",
                                             (int) c->pid, s->pidfile, reason, strerror(-error)));
        delay = backoff_next(&s->backoff);
        log_warning_errno(error,
                          "Cannot tell whether pid %d in '%s' is k0s (%s: %m); not "
                          "starting k0s, looking again in " SEC_FMT ".",
                          (int) c->pid, s->pidfile, reason, SEC_ARGS(delay));
        r = supervisor_arm_timer(s, delay);
        if (r < 0)
                log_error_errno(r, "Failed to arm the adoption retry timer: %m");
        if (s->state == SUPERVISOR_BACKOFF)
                supervisor_notify(s);
        else
                supervisor_set_state(s, SUPERVISOR_BACKOFF);
        return error;
}

/* 1 adopted (RUNNING), 0 nothing to adopt (blocked state cleared), -errno blocked. */
static int supervisor_try_adopt(Supervisor *s, const char *binary) {
        _cleanup_(k0s_candidate_done) K0sCandidate c = { .pidfd = -1 };
        const char *reason = NULL;
        int r;

        r = k0s_pidfile_inspect(s->pidfile, binary, &c, &reason);
        if (r > 0) {
                r = adopt_watch(s, &c);
                if (r >= 0)
                        r = 1;
        }
        if (r == -ENOMEM || (r < 0 && !reason))
                return supervisor_adopt_blocked(s, binary, &c, reason ?: "error", r);
        if (r < 0)
                return supervisor_adopt_blocked(s, binary, &c, reason, r);

        s->adopt_binary = mfree(s->adopt_binary);
        supervisor_set_blocked(s, NULL);
        if (r == 0) {
                if (reason) {
                        log_info("Removing stale k0s pidfile '%s': %s.", s->pidfile, reason);
                        supervisor_remove_pidfile(s);
                }
                return 0;
        }
        backoff_reset(&s->backoff);
        supervisor_set_state(s, SUPERVISOR_RUNNING);
        return 1;
}

int supervisor_adopt(Supervisor *s, const char *binary) {
        if (!s || !binary || !s->event)
                return -EINVAL;
        if (s->pid > 0 || s->state != SUPERVISOR_IDLE || s->stopping_for_good)
                return -EBUSY;
        return supervisor_try_adopt(s, binary);
}

/* ---- what should run ------------------------------------------------------------------------ */

static int supervisor_desired_changed(Supervisor *s, bool same_as_running, bool same_as_before) {
        int r;

        switch (s->state) {
        case SUPERVISOR_IDLE:
                if (s->desired.hash)
                        supervisor_start(s); /* the first start is immediate */
                break;
        case SUPERVISOR_BACKOFF:
                if (!s->desired.hash && !s->adopt_binary) {
                        supervisor_cancel_timer(s);
                        s->binary_changed = false;
                        supervisor_set_blocked(s, NULL);
                        supervisor_set_state(s, SUPERVISOR_IDLE);
                } else if (s->binary_changed && s->desired.hash)
                        supervisor_start(s); /* probed again: start at once (or stay blocked) */
                /* else: the newest spec starts when the delay ends */
                break;
        case SUPERVISOR_RUNNING:
                if (!s->desired.hash || same_as_running)
                        break;
                r = supervisor_arm_timer(s, s->timing.settle_usec);
                if (r < 0)
                        return log_error_errno(r, "Failed to arm the k0s settle timer: %m");
                log_info("k0s inputs changed, restarting it unless they change back within " SEC_FMT
                         ".",
                         SEC_ARGS(s->timing.settle_usec));
                supervisor_set_state(s, SUPERVISOR_SETTLING);
                break;
        case SUPERVISOR_SETTLING:
                if (!s->desired.hash || same_as_running) {
                        if (s->desired.hash)
                                log_info("k0s inputs are back to what runs, no restart.");
                        else
                                log_info("k0s is held as it runs, its restart is cancelled.");
                        supervisor_cancel_timer(s);
                        supervisor_set_state(s, SUPERVISOR_RUNNING);
                } else if (!same_as_before) {
                        /* Changed again: the new inputs must hold for a whole settle period. */
                        r = supervisor_arm_timer(s, s->timing.settle_usec);
                        if (r < 0)
                                return log_error_errno(r, "Failed to arm the k0s settle timer: %m");
                }
                break;
        case SUPERVISOR_STOPPING:
                /* Remembered; the exit handler starts the newest spec. */
                break;
        case _SUPERVISOR_STATE_MAX:
        case _SUPERVISOR_STATE_INVALID:
                return -EINVAL;
        }
        return 0;
}

int supervisor_set_desired(Supervisor *s, const K0sSpec *spec) {
        K0sSpec copy = {};
        bool same_as_running, same_as_before;
        int r;

        if (!s || !s->event)
                return -EINVAL;
        if (spec && (!spec->argv || !spec->argv[0] || !spec->hash))
                return -EINVAL;
        if (s->stopping_for_good) {
                log_debug("k0s supervisor is shutting down, ignoring a new desired state.");
                return 0;
        }
        if (spec) {
                r = k0s_spec_copy(spec, &copy);
                if (r < 0)
                        return log_oom();
        }
        same_as_before = streq_ptr(copy.hash, s->desired.hash);
        same_as_running = copy.hash && streq_ptr(copy.hash, s->hash);
        k0s_spec_done(&s->desired);
        s->desired = copy;
        return supervisor_desired_changed(s, same_as_running, same_as_before);
}

int supervisor_stop(Supervisor *s) {
        if (!s)
                return 0;
        s->stopping_for_good = true;
        k0s_spec_done(&s->desired);

        switch (s->state) {
        case SUPERVISOR_IDLE:
                return 0;
        case SUPERVISOR_BACKOFF:
                /* Blocked by a failed adoption included: what we could not verify is not ours
                 * to signal. */
                supervisor_cancel_timer(s);
                s->adopt_binary = mfree(s->adopt_binary);
                supervisor_set_state(s, SUPERVISOR_IDLE);
                return 0;
        case SUPERVISOR_RUNNING:
        case SUPERVISOR_SETTLING:
                supervisor_begin_stop(s, "the agent is stopping");
                return 1;
        case SUPERVISOR_STOPPING:
                /* SIGTERM went out already; a second one would skip k0s's cleanup. */
                return 1;
        case _SUPERVISOR_STATE_MAX:
        case _SUPERVISOR_STATE_INVALID:
                break;
        }
        return 0;
}

void supervisor_detach(Supervisor *s) {
        if (!s)
                return;
        /* The pidfile stays: the next agent adopts k0s through it. */
        s->stopping_for_good = true;
        supervisor_cancel_timer(s);
        s->adopt_binary = mfree(s->adopt_binary);
        if (s->pid > 0)
                log_info("Leaving k0s (pid %d) running for the next agent.", s->pid);
        supervisor_forget_process(s);
        supervisor_set_state(s, SUPERVISOR_IDLE);
}

SupervisorState supervisor_get_state(const Supervisor *s) {
        return s->state;
}

pid_t supervisor_get_pid(const Supervisor *s) {
        return s->pid;
}

bool supervisor_is_adopted(const Supervisor *s) {
        return s->adopted;
}

const char *supervisor_get_hash(const Supervisor *s) {
        return s->hash;
}

uint64_t supervisor_get_started_usec(const Supervisor *s) {
        return s->pid > 0 ? s->started_realtime : 0;
}

unsigned supervisor_get_restarts(const Supervisor *s) {
        return (unsigned) MIN(s->counters.restarts, (uint64_t) UINT_MAX);
}

const char *supervisor_get_last_exit(const Supervisor *s) {
        return s->last_exit;
}

bool supervisor_binary_changed(const Supervisor *s) {
        return s->binary_changed;
}

bool supervisor_adoption_failed(const Supervisor *s) {
        return s->adopt_binary != NULL;
}

const char *supervisor_get_blocked_reason(const Supervisor *s) {
        return s->binary_changed || s->adopt_binary ? s->blocked_reason : NULL;
}

void supervisor_get_counters(const Supervisor *s, SupervisorCounters *ret) {
        *ret = s->counters;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

int supervisor_new(const char *state_dir, const SupervisorTiming *t, SupervisorHandler handler,
                   void *userdata, Supervisor **ret) {
        _cleanup_(supervisor_freep) Supervisor *s = NULL;
        int r;

        if (!state_dir || !t || !ret)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->pidfd = -1;
        s->state = SUPERVISOR_IDLE;
        s->handler = handler;
        s->userdata = userdata;
        s->timing = *t;
        backoff_init_floor(&s->backoff, t->backoff_min_usec, t->backoff_max_usec,
                           SUPERVISOR_BACKOFF_FLOOR_MIN_USEC, SUPERVISOR_BACKOFF_FLOOR_MAX_USEC);
        r = supervisor_set_state_dir(s, state_dir);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int supervisor_attach(Supervisor *s, sd_event *e) {
        if (!s || !e)
                return -EINVAL;
        if (s->event)
                return -EBUSY;
        s->event = sd_event_ref(e);
        return 0;
}

void supervisor_set_timing(Supervisor *s, const SupervisorTiming *t) {
        bool same_backoff = s->timing.backoff_min_usec == t->backoff_min_usec &&
                s->timing.backoff_max_usec == t->backoff_max_usec;

        /* Running timers keep their deadline; the new values apply from the next one on. */
        s->timing = *t;
        if (!same_backoff)
                backoff_init_floor(&s->backoff, t->backoff_min_usec, t->backoff_max_usec,
                                   SUPERVISOR_BACKOFF_FLOOR_MIN_USEC,
                                   SUPERVISOR_BACKOFF_FLOOR_MAX_USEC);
}

int supervisor_set_state_dir(Supervisor *s, const char *state_dir) {
        _cleanup_free_ char *dir = NULL, *pidfile = NULL, *tmp = NULL;
        int r;

        dir = strdup(state_dir);
        pidfile = strdup_printf("%s/k0s.pid", state_dir);
        tmp = strdup_printf("%s/.k0s.pid.tmp", state_dir);
        if (!dir || !pidfile || !tmp)
                return -ENOMEM;
        if (s->pidfile && streq(s->pidfile, pidfile))
                return 0;
        if (s->pid > 0 && s->pidfile)
                supervisor_remove_pidfile(s);
        free(s->state_dir);
        free(s->pidfile);
        free(s->pidfile_tmp);
        s->state_dir = TAKE_PTR(dir);
        s->pidfile = TAKE_PTR(pidfile);
        s->pidfile_tmp = TAKE_PTR(tmp);
        if (s->pid > 0 && s->hash) {
                r = k0s_pidfile_write(s->pidfile, s->pid, s->starttime, s->hash);
                if (r < 0)
                        log_warning_errno(r,
                                          "Failed to write '%s', a restarted agent will not "
                                          "adopt k0s: %m",
                                          s->pidfile);
        }
        return 0;
}

Supervisor *supervisor_free(Supervisor *s) {
        if (!s)
                return NULL;
        /* Like detach: freeing never signals k0s. */
        s->timer_source = sd_event_source_disable_unref(s->timer_source);
        s->process_source = sd_event_source_disable_unref(s->process_source);
        if (s->pidfd >= 0)
                (void) close(s->pidfd);
        k0s_spec_done(&s->desired);
        free(s->hash);
        free(s->last_exit);
        free(s->adopt_binary);
        free(s->blocked_reason);
        free(s->state_dir);
        free(s->pidfile);
        free(s->pidfile_tmp);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
