/* SPDX-License-Identifier: MIT */
/*
 * The k0s child: spawning it (argv only, output to journald), watching it (sd-event child source,
 * or a pidfd for a k0s adopted from an earlier agent), the settle/stop/backoff timers, the pidfile,
 * and the one-shot `k0s version` probe. What k0s should run is not decided here: the manager
 * hands in a K0sSpec from reconcile.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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
#include "log.h"
#include "supervisor.h"

/* Caps for what we read from the pidfile and /proc (environ can be as large as ARG_MAX). */
#define PIDFILE_MAX 4096
#define PROC_STATUS_MAX (64 * 1024)
#define PROC_ENVIRON_MAX (4 * 1024 * 1024)
#define VERSION_OUTPUT_MAX 4096
/* Durations in log messages: "1.500s". */
#define SEC_FMT "%" PRIu64 ".%03" PRIu64 "s"
#define SEC_ARGS(usec) (usec) / USEC_PER_SEC, (usec) % USEC_PER_SEC / USEC_PER_MSEC

/* How often an adopted k0s is checked where the kernel has no pidfds (< 5.3). */
#define ADOPTED_POLL_USEC (500 * USEC_PER_MSEC)

struct Supervisor {
        sd_event *event;
        char *state_dir;
        char *pidfile; /* state_dir/k0s.pid */
        SupervisorTiming timing;
        SupervisorHandler handler;
        void *userdata;

        SupervisorState state;
        Backoff backoff;

        /* What should run; desired.hash == NULL means "hold". */
        K0sSpec desired;

        /* The k0s we know of (pid > 0), spawned by us or adopted. */
        pid_t pid;
        int pidfd; /* adopted only; for our own child sd-event holds the pidfd */
        uint64_t starttime; /* /proc/PID/stat field 22: guards the pidfile against PID reuse */
        char *hash; /* hash of the spec it runs */
        bool adopted;
        bool sigterm_sent; /* exactly one SIGTERM per process: a second kills k0s uncleanly */
        bool sigkill_sent;
        uint64_t started_realtime;
        uint64_t started_boottime; /* for the "ran long enough to count as stable" rule */
        sd_event_source *process_source; /* child source (ours) or pidfd io source (adopted) */

        sd_event_source *timer_source; /* settle end, stop timeout or backoff end, by state */
        uint64_t next_start_usec;

        bool stopping_for_good; /* supervisor_stop() or _detach(): never start again */
        bool ever_started; /* a k0s was started or adopted before: later starts count */
        unsigned restarts;
        char *last_exit;
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

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static int pidfd_open_syscall(pid_t pid) {
        long fd = syscall(SYS_pidfd_open, pid, 0); /* pidfds are always close-on-exec */
        return fd < 0 ? -errno : (int) fd;
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

/* From /proc/PID/stat: field 3, the state ('Z' zombie), and field 22, the start time in clock
 * ticks after boot. */
static int proc_get_stat(pid_t pid, char *ret_state, uint64_t *ret_starttime) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        char *p, *save = NULL, *tok, state;
        int r;

        path = strdup_printf("/proc/%d/stat", pid);
        if (!path)
                return -ENOMEM;
        r = read_file_full(path, PROC_STATUS_MAX, &buf, NULL);
        if (r < 0)
                return r;
        /* comm (field 2) may contain spaces and parentheses: start after the last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        p++;
        tok = strtok_r(p, " ", &save); /* field 3 */
        if (!tok)
                return -EBADMSG;
        state = tok[0];
        for (unsigned field = 3; tok && field < 22; field++)
                tok = strtok_r(NULL, " ", &save);
        if (!tok)
                return -EBADMSG;
        r = safe_atou64(tok, ret_starttime);
        if (r < 0)
                return r;
        if (ret_state)
                *ret_state = state;
        return 0;
}

static int proc_get_tgid(pid_t pid, pid_t *ret) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        int r, v;

        path = strdup_printf("/proc/%d/status", pid);
        if (!path)
                return -ENOMEM;
        r = read_file_full(path, PROC_STATUS_MAX, &buf, NULL);
        if (r < 0)
                return r;
        for (char *line = buf; line && *line;) {
                char *end = strchr(line, '\n');
                if (end)
                        *end = 0;
                if (startswith(line, "Tgid:")) {
                        line += strlen("Tgid:");
                        line += strspn(line, " \t");
                        r = safe_atoi(line, &v);
                        if (r < 0)
                                return r;
                        *ret = v;
                        return 0;
                }
                line = end ? end + 1 : NULL;
        }
        return -EBADMSG;
}

static int proc_environ_contains(pid_t pid, const char *entry) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        size_t len;
        int r;

        path = strdup_printf("/proc/%d/environ", pid);
        if (!path)
                return -ENOMEM;
        r = read_file_full(path, PROC_ENVIRON_MAX, &buf, &len);
        if (r < 0)
                return r;
        for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
                if (streq(buf + i, entry))
                        return 1;
        return 0;
}

/* /proc/PID/exe is `binary`, or "binary (deleted)" after an autopilot upgrade replaced it. */
static int proc_exe_is(pid_t pid, const char *binary) {
        _cleanup_free_ char *path = NULL, *want = NULL;
        char exe[PATH_MAX + sizeof(" (deleted)")];
        ssize_t n;

        path = strdup_printf("/proc/%d/exe", pid);
        if (!path)
                return -ENOMEM;
        n = readlink(path, exe, sizeof(exe) - 1);
        if (n < 0)
                return -errno;
        exe[n] = 0;

        want = realpath(binary, NULL);
        if (!want) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                /* The binary is gone (mid-upgrade): compare with the path as configured. */
                want = strdup(binary);
                if (!want)
                        return -ENOMEM;
        }
        if (streq(exe, want))
                return 1;
        return startswith(exe, want) && streq(exe + strlen(want), " (deleted)");
}

/*
 * Is PID the k0s an earlier agent started? Returns 1 yes, 0 no (*ret_reason says why), -errno if
 * it could not be checked for a reason other than the process being gone or not ours.
 */
static int proc_is_our_k0s(pid_t pid, uint64_t starttime, const char *binary,
                           const char **ret_reason) {
        uint64_t st = 0;
        pid_t tgid = 0;
        int r;

        r = proc_get_stat(pid, NULL, &st);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_reason = "cannot read its start time";
                return 0;
        }
        if (st != starttime) {
                *ret_reason = "its start time differs (PID reused)";
                return 0;
        }
        r = proc_get_tgid(pid, &tgid);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || tgid != pid) {
                *ret_reason = "not a thread-group leader";
                return 0;
        }
        r = proc_exe_is(pid, binary);
        if (r == -ENOMEM)
                return r;
        if (r <= 0) {
                *ret_reason = "its executable is not the k0s binary";
                return 0;
        }
        r = proc_environ_contains(pid, SUPERVISOR_MARKER_ENV);
        if (r == -ENOMEM)
                return r;
        if (r <= 0) {
                *ret_reason = "its environment lacks " SUPERVISOR_MARKER_ENV;
                return 0;
        }
        return 1;
}

static void supervisor_set_state(Supervisor *s, SupervisorState state) {
        SupervisorState old = s->state;

        if (old == state)
                return;
        s->state = state;
        if (state != SUPERVISOR_BACKOFF && state != SUPERVISOR_SETTLING)
                s->next_start_usec = 0;
        log_debug("k0s supervisor: %s -> %s", supervisor_state_to_string(old),
                  supervisor_state_to_string(state));
        if (s->handler)
                s->handler(s, s->userdata);
}

static void supervisor_cancel_timer(Supervisor *s) {
        s->timer_source = sd_event_source_disable_unref(s->timer_source);
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata);

/* One timer serves every state that waits; what it means when it fires depends on the state. */
static int supervisor_arm_timer(Supervisor *s, uint64_t delay_usec, uint64_t *ret_when) {
        uint64_t now, when;
        int r;

        supervisor_cancel_timer(s);
        r = sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        when = now + delay_usec;
        r = sd_event_add_time(s->event, &s->timer_source, CLOCK_MONOTONIC, when, USEC_PER_MSEC,
                              on_timer, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->timer_source, "k0s-supervisor-timer");
        if (ret_when)
                *ret_when = when;
        return 0;
}

static int supervisor_write_pidfile(Supervisor *s) {
        _cleanup_free_ char *content = NULL;
        int r;

        content = strdup_printf("%d\n%" PRIu64 "\n%s\n", s->pid, s->starttime, s->hash);
        if (!content)
                return log_oom();
        r = atomic_file_write(s->pidfile, content, strlen(content), 0644);
        if (r < 0)
                return log_warning_errno(r,
                                         "Failed to write '%s', a restarted agent will not "
                                         "adopt k0s: %m",
                                         s->pidfile);
        return 0;
}

static void supervisor_remove_pidfile(Supervisor *s) {
        if (unlink(s->pidfile) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove '%s', ignoring: %m", s->pidfile);
}

/* Without a pidfd (kernel < 5.3), an adopted k0s is known by PID + start time only. */
static bool supervisor_adopted_alive(Supervisor *s) {
        uint64_t st;
        char state;

        return proc_get_stat(s->pid, &state, &st) >= 0 && st == s->starttime && state != 'Z' &&
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
        free(s->hash);
        s->hash = NULL;
        s->adopted = false;
        s->sigterm_sent = false;
        s->sigkill_sent = false;
        s->started_realtime = 0;
        s->started_boottime = 0;
}

static void supervisor_schedule_restart(Supervisor *s, uint64_t ran_usec) {
        uint64_t delay;
        int r;

        /* A k0s that ran for a while and then exited is a new incident, not the same crash loop. */
        if (ran_usec >= s->timing.stable_usec)
                backoff_reset(&s->backoff);
        delay = backoff_next(&s->backoff);
        r = supervisor_arm_timer(s, delay, &s->next_start_usec);
        if (r < 0) {
                log_error_errno(r, "Failed to arm the k0s restart timer, k0s stays stopped: %m");
                supervisor_set_state(s, SUPERVISOR_IDLE);
                return;
        }
        log_info("Starting k0s again in " SEC_FMT ".", SEC_ARGS(delay));
        if (s->state == SUPERVISOR_BACKOFF) {
                /* A failed start while backing off: same state, but a new next start time. */
                if (s->handler)
                        s->handler(s, s->userdata);
        } else
                supervisor_set_state(s, SUPERVISOR_BACKOFF);
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata);

static int spawn_attr_init(posix_spawnattr_t *attr) {
        sigset_t empty, all;
        int r;

        /* The agent blocks signals for sd-event and the mask survives exec; k0s needs them. Own
         * session: a Ctrl-C on the agent's terminal must not reach k0s. */
        (void) sigemptyset(&empty);
        (void) sigfillset(&all);
        r = posix_spawnattr_init(attr);
        if (r != 0)
                return -r;
        r = posix_spawnattr_setflags(
                attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
        if (r == 0)
                r = posix_spawnattr_setsigmask(attr, &empty);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(attr, &all);
        if (r != 0) {
                (void) posix_spawnattr_destroy(attr);
                return -r;
        }
        return 0;
}

static bool env_has_name(const char *const *l, const char *entry) {
        size_t n = strcspn(entry, "=");

        for (const char *const *i = l; i && *i; i++)
                if (strncmp(*i, entry, n) == 0 && ((*i)[n] == '=' || (*i)[n] == 0))
                        return true;
        return false;
}

/*
 * The agent's environment, minus systemd's per-service protocol variables (k0s's children, e.g.
 * etcd, would talk to the agent's notify socket), minus names the spec sets (programs take the
 * first of duplicate names), plus the spec's entries and the adoption marker.
 */
static char **build_k0s_env(char *const *extra, const char *journal_stream) {
        static const char *const dropped[] = {
                "NOTIFY_SOCKET",  "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_PID", "LISTEN_FDS",
                "LISTEN_FDNAMES", NULL,
        };
        _cleanup_strv_free_ char **env = strv_copy(NULL);

        if (!env)
                return NULL;
        for (char **i = environ; i && *i; i++) {
                if (env_has_name(dropped, *i) || env_has_name((const char *const *) extra, *i) ||
                    startswith(*i, "K0S_TSAGENT_MANAGED="))
                        continue;
                if (journal_stream && startswith(*i, "JOURNAL_STREAM="))
                        continue;
                if (strv_extend(&env, *i) < 0)
                        return NULL;
        }
        for (char *const *i = extra; i && *i; i++)
                if (strv_extend(&env, *i) < 0)
                        return NULL;
        if (journal_stream && strv_extend(&env, journal_stream) < 0)
                return NULL;
        if (strv_extend(&env, SUPERVISOR_MARKER_ENV) < 0)
                return NULL;
        return TAKE_PTR(env);
}

static int spawn_k0s(const K0sSpec *spec, pid_t *ret_pid) {
        _cleanup_close_ int journal_fd = -1;
        _cleanup_free_ char *journal_stream = NULL;
        _cleanup_strv_free_ char **env = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        struct stat st;
        pid_t pid;
        int r;

        /* Not a pipe to the agent: k0s's output must survive an agent restart. */
        journal_fd = sd_journal_stream_fd("k0s", LOG_INFO, 0);
        if (journal_fd < 0)
                log_debug_errno(journal_fd, "No journal stream for k0s, it gets our stderr: %m");
        else if (fstat(journal_fd, &st) >= 0) {
                journal_stream = strdup_printf("JOURNAL_STREAM=%lu:%lu", (unsigned long) st.st_dev,
                                               (unsigned long) st.st_ino);
                if (!journal_stream)
                        return -ENOMEM;
        }

        env = build_k0s_env(spec->env, journal_stream);
        if (!env)
                return -ENOMEM;

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0 && journal_fd >= 0) {
                r = posix_spawn_file_actions_adddup2(&fa, journal_fd, STDOUT_FILENO);
                if (r == 0)
                        r = posix_spawn_file_actions_adddup2(&fa, journal_fd, STDERR_FILENO);
        } else if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
        if (r != 0) {
                (void) posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        r = spawn_attr_init(&attr);
        if (r < 0) {
                (void) posix_spawn_file_actions_destroy(&fa);
                return r;
        }

        /* Every fd of the agent is O_CLOEXEC, so only 0, 1 and 2 reach k0s. */
        r = posix_spawn(&pid, spec->argv[0], &fa, &attr, spec->argv, env);
        (void) posix_spawn_file_actions_destroy(&fa);
        (void) posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;
        *ret_pid = pid;
        return 0;
}

static void supervisor_start(Supervisor *s) {
        _cleanup_free_ char *hash = NULL;
        char pid_field[32], hash_field[128];
        sd_event_source *src = NULL;
        pid_t pid = 0;
        int r;

        /* Never two k0s at once. */
        if (s->pid > 0)
                return;

        hash = strdup(s->desired.hash);
        r = hash ? spawn_k0s(&s->desired, &pid) : -ENOMEM;
        if (r < 0) {
                log_error_errno(r, "Failed to start k0s '%s': %m", s->desired.argv[0]);
                free(s->last_exit);
                s->last_exit = strdup_printf("failed to start: %s", strerror(-r));
                supervisor_schedule_restart(s, 0);
                return;
        }

        r = sd_event_add_child(s->event, &src, pid, WEXITED, on_child_exit, s);
        if (r < 0) {
                /* Unwatched, it could outlive us as a second k0s: take it down again. */
                log_error_errno(r, "Failed to watch k0s (pid %d), killing it: %m", pid);
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                supervisor_schedule_restart(s, 0);
                return;
        }
        (void) sd_event_source_set_description(src, "k0s-child");

        s->process_source = src;
        s->pid = pid;
        s->hash = TAKE_PTR(hash);
        s->started_realtime = now_usec(CLOCK_REALTIME);
        s->started_boottime = now_usec(CLOCK_BOOTTIME);
        if (s->ever_started)
                s->restarts++;
        s->ever_started = true;

        /* Not reaped until we dispatch its exit, so /proc/PID/stat is there even if it died. */
        r = proc_get_stat(pid, NULL, &s->starttime);
        if (r < 0)
                log_warning_errno(
                        r, "Failed to read the start time of k0s (pid %d), no pidfile: %m", pid);
        else
                (void) supervisor_write_pidfile(s);

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
        r = supervisor_arm_timer(s, s->timing.stop_timeout_usec, NULL);
        if (r < 0)
                log_error_errno(r, "Failed to arm the k0s stop timer, waiting without one: %m");
        supervisor_set_state(s, SUPERVISOR_STOPPING);
}

static void supervisor_process_gone(Supervisor *s, char *exit_status) {
        SupervisorState before = s->state;
        uint64_t now = now_usec(CLOCK_BOOTTIME);
        uint64_t ran = now > s->started_boottime ? now - s->started_boottime : 0;
        char pid_field[32], exit_field[96];

        (void) snprintf(pid_field, sizeof(pid_field), "K0S_PID=%d", s->pid);
        (void) snprintf(exit_field, sizeof(exit_field), "K0S_EXIT=%s",
                        exit_status ? exit_status : "unknown");
        log_struct_errno(before == SUPERVISOR_STOPPING ? LOG_INFO : LOG_WARNING, 0,
                         MESSAGE_ID_K0S_EXITED,
                         (const char *const[]){ pid_field, exit_field, NULL },
                         "k0s (pid %d) %s after " SEC_FMT ".", s->pid,
                         exit_status ? exit_status : "ended", SEC_ARGS(ran));

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
        if (s->state == before && s->handler)
                s->handler(s, s->userdata);
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Supervisor *s = userdata;

        supervisor_process_gone(s, exit_status_to_string(si->si_code, si->si_status));
        return 0;
}

static int on_pidfd_readable(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Supervisor *s = userdata;
        siginfo_t si = {};

        /* Not our child (it was reparented when the old agent went away), so the status is
         * unknown; unless this agent is still its parent, then reap it and tell. */
        if (waitid(P_PIDFD, (id_t) fd, &si, WEXITED | WNOHANG) >= 0 && si.si_pid > 0)
                supervisor_process_gone(s, exit_status_to_string(si.si_code, si.si_status));
        else
                supervisor_process_gone(s, strdup("exited (adopted, status unknown)"));
        return 0;
}

static int on_adopted_poll(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;
        siginfo_t si = {};
        char state = 0;
        uint64_t st = 0;
        int r;

        if (supervisor_adopted_alive(s)) {
                r = sd_event_source_set_time(src, usec + ADOPTED_POLL_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
                if (r < 0)
                        log_error_errno(r, "Failed to re-arm the watch of k0s (pid %d): %m",
                                        s->pid);
                return 0;
        }
        /* Our own zombie (same start time) can be reaped and tells how it ended. */
        if (proc_get_stat(s->pid, &state, &st) >= 0 && st == s->starttime && state == 'Z' &&
            waitid(P_PID, (id_t) s->pid, &si, WEXITED | WNOHANG) >= 0 && si.si_pid > 0)
                supervisor_process_gone(s, exit_status_to_string(si.si_code, si.si_status));
        else
                supervisor_process_gone(s, strdup("exited (adopted, status unknown)"));
        return 0;
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;
        char pid_field[32];
        int r;

        supervisor_cancel_timer(s);
        switch (s->state) {
        case SUPERVISOR_SETTLING:
                supervisor_begin_stop(s, "its inputs changed");
                break;
        case SUPERVISOR_STOPPING:
                if (s->pid <= 0 || s->sigkill_sent)
                        break;
                s->sigkill_sent = true;
                (void) snprintf(pid_field, sizeof(pid_field), "K0S_PID=%d", s->pid);
                log_struct_errno(LOG_WARNING, 0, MESSAGE_ID_K0S_STOPPING,
                                 (const char *const[]){ pid_field, NULL },
                                 "k0s (pid %d) did not stop within " SEC_FMT ", sending SIGKILL.",
                                 s->pid, SEC_ARGS(s->timing.stop_timeout_usec));
                /* The k0s process only, never its group: pods and shims stay. */
                r = supervisor_signal(s, SIGKILL);
                if (r < 0)
                        log_warning_errno(r, "Failed to send SIGKILL to k0s (pid %d): %m", s->pid);
                break;
        case SUPERVISOR_BACKOFF:
                s->next_start_usec = 0;
                if (s->desired.hash && !s->stopping_for_good)
                        supervisor_start(s);
                else
                        supervisor_set_state(s, SUPERVISOR_IDLE);
                break;
        case SUPERVISOR_IDLE:
        case SUPERVISOR_RUNNING:
        case _SUPERVISOR_STATE_MAX:
        case _SUPERVISOR_STATE_INVALID:
                break;
        }
        return 0;
}

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
        backoff_init(&s->backoff, t->backoff_min_usec, t->backoff_max_usec);
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
                backoff_init(&s->backoff, t->backoff_min_usec, t->backoff_max_usec);
}

int supervisor_set_state_dir(Supervisor *s, const char *state_dir) {
        _cleanup_free_ char *dir = NULL, *pidfile = NULL;

        dir = strdup(state_dir);
        pidfile = strdup_printf("%s/k0s.pid", state_dir);
        if (!dir || !pidfile)
                return -ENOMEM;
        if (s->pidfile && streq(s->pidfile, pidfile))
                return 0;
        if (s->pid > 0 && s->pidfile)
                supervisor_remove_pidfile(s);
        free(s->state_dir);
        free(s->pidfile);
        s->state_dir = TAKE_PTR(dir);
        s->pidfile = TAKE_PTR(pidfile);
        if (s->pid > 0 && s->hash)
                (void) supervisor_write_pidfile(s);
        return 0;
}

int supervisor_adopt(Supervisor *s, const char *binary) {
        _cleanup_free_ char *content = NULL, *hash = NULL;
        _cleanup_close_ int pidfd = -1;
        const char *reason = NULL;
        char pid_field[32], *nl1, *nl2, *nl3;
        struct pollfd pfd;
        uint64_t starttime = 0, now_boot, now_rt, now_mono, age;
        int r, pid = 0;
        long hz;

        if (!s || !binary || !s->event)
                return -EINVAL;
        if (s->pid > 0 || s->state != SUPERVISOR_IDLE || s->stopping_for_good)
                return -EBUSY;

        r = read_file_full(s->pidfile, PIDFILE_MAX, &content, NULL);
        if (r == -ENOENT)
                return 0;
        if (r == -EFBIG)
                reason = "too large";
        else if (r < 0)
                return log_error_errno(r, "Failed to read '%s': %m", s->pidfile);

        /* "PID\nSTARTTIME\nHASH\n" */
        if (!reason) {
                nl1 = strchr(content, '\n');
                nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
                nl3 = nl2 ? strchr(nl2 + 1, '\n') : NULL;
                if (!nl3 || nl3[1] != 0 || nl3 == nl2 + 1)
                        reason = "malformed";
                else {
                        *nl1 = *nl2 = *nl3 = 0;
                        if (safe_atoi(content, &pid) < 0 || pid <= 0 ||
                            safe_atou64(nl1 + 1, &starttime) < 0)
                                reason = "malformed";
                }
        }
        if (!reason) {
                hash = strdup(nl2 + 1);
                if (!hash)
                        return log_oom();
                /* Pin the process first, so every check below is about this very process. */
                pidfd = pidfd_open_syscall(pid);
                if (pidfd == -ESRCH)
                        reason = "no such process";
                else if (pidfd == -ENOSYS)
                        log_debug("No pidfd support, an adopted k0s is watched through /proc.");
                else if (pidfd < 0)
                        return log_error_errno(pidfd, "Failed to open a pidfd for pid %d: %m", pid);
        }
        if (!reason) {
                r = proc_is_our_k0s(pid, starttime, binary, &reason);
                if (r < 0)
                        return log_oom();
        }
        if (!reason && pidfd >= 0) {
                /* Checked via /proc by PID: make sure the pinned process did not die meanwhile. */
                pfd = (struct pollfd){ .fd = pidfd, .events = POLLIN };
                if (poll(&pfd, 1, 0) != 0)
                        reason = "it exited";
        }
        if (reason) {
                log_info("Removing stale k0s pidfile '%s': %s.", s->pidfile, reason);
                supervisor_remove_pidfile(s);
                return 0;
        }

        if (pidfd >= 0)
                r = sd_event_add_io(s->event, &s->process_source, pidfd, EPOLLIN, on_pidfd_readable,
                                    s);
        else {
                r = sd_event_now(s->event, CLOCK_MONOTONIC, &now_mono);
                if (r >= 0)
                        r = sd_event_add_time(s->event, &s->process_source, CLOCK_MONOTONIC,
                                              now_mono + ADOPTED_POLL_USEC, USEC_PER_MSEC,
                                              on_adopted_poll, s);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to watch adopted k0s (pid %d): %m", pid);
        (void) sd_event_source_set_description(s->process_source, "k0s-adopted");

        s->pidfd = TAKE_FD(pidfd);
        s->pid = pid;
        s->starttime = starttime;
        s->hash = TAKE_PTR(hash);
        s->adopted = true;
        s->ever_started = true;
        /* Its start time is in clock ticks after boot. */
        hz = sysconf(_SC_CLK_TCK);
        s->started_boottime = hz > 0 ? starttime * USEC_PER_SEC / (uint64_t) hz : 0;
        now_boot = now_usec(CLOCK_BOOTTIME);
        now_rt = now_usec(CLOCK_REALTIME);
        age = now_boot > s->started_boottime ? now_boot - s->started_boottime : 0;
        s->started_realtime = now_rt > age ? now_rt - age : 0;

        (void) snprintf(pid_field, sizeof(pid_field), "K0S_PID=%d", pid);
        log_struct_errno(LOG_INFO, 0, MESSAGE_ID_K0S_ADOPTED,
                         (const char *const[]){ pid_field, NULL },
                         "Adopted running k0s (pid %d) from an earlier agent.", pid);
        supervisor_set_state(s, SUPERVISOR_RUNNING);
        return 1;
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

        switch (s->state) {
        case SUPERVISOR_IDLE:
                if (s->desired.hash)
                        supervisor_start(s); /* the first start is immediate */
                break;
        case SUPERVISOR_BACKOFF:
                if (!s->desired.hash) {
                        supervisor_cancel_timer(s);
                        supervisor_set_state(s, SUPERVISOR_IDLE);
                }
                /* else: the newest spec starts when the delay ends */
                break;
        case SUPERVISOR_RUNNING:
                if (!s->desired.hash || same_as_running)
                        break;
                r = supervisor_arm_timer(s, s->timing.settle_usec, &s->next_start_usec);
                if (r < 0)
                        return log_error_errno(r, "Failed to arm the k0s settle timer: %m");
                log_info("k0s inputs changed, restarting it unless they change back within " SEC_FMT
                         ".",
                         SEC_ARGS(s->timing.settle_usec));
                supervisor_set_state(s, SUPERVISOR_SETTLING);
                break;
        case SUPERVISOR_SETTLING:
                if (!s->desired.hash || same_as_running) {
                        log_info("k0s inputs are back to what runs, no restart.");
                        supervisor_cancel_timer(s);
                        supervisor_set_state(s, SUPERVISOR_RUNNING);
                } else if (!same_as_before) {
                        /* Changed again: the new inputs must hold for a whole settle period. */
                        r = supervisor_arm_timer(s, s->timing.settle_usec, &s->next_start_usec);
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

int supervisor_stop(Supervisor *s) {
        if (!s)
                return 0;
        s->stopping_for_good = true;
        k0s_spec_done(&s->desired);

        switch (s->state) {
        case SUPERVISOR_IDLE:
                return 0;
        case SUPERVISOR_BACKOFF:
                supervisor_cancel_timer(s);
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
        return s->restarts;
}

const char *supervisor_get_last_exit(const Supervisor *s) {
        return s->last_exit;
}

uint64_t supervisor_get_next_start_usec(const Supervisor *s) {
        return s->next_start_usec;
}

Supervisor *supervisor_free(Supervisor *s) {
        if (!s)
                return NULL;
        /* Like detach: freeing never signals k0s. */
        supervisor_cancel_timer(s);
        s->process_source = sd_event_source_disable_unref(s->process_source);
        if (s->pidfd >= 0)
                (void) close(s->pidfd);
        k0s_spec_done(&s->desired);
        free(s->hash);
        free(s->last_exit);
        free(s->state_dir);
        free(s->pidfile);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

/* ---- `k0s version` ---------------------------------------------------------------------- */

struct VersionProbe {
        sd_event_source *child_source; /* owns the process: freeing it kills and reaps */
        sd_event_source *io_source; /* the read end of the stdout pipe */
        sd_event_source *timer_source;
        int fd;
        char output[VERSION_OUTPUT_MAX + 1];
        size_t len;
        bool exited, eof, timed_out, finished;
        int exit_r;
        VersionProbeHandler done;
        void *userdata;
};

static void version_probe_close_pipe(VersionProbe *p) {
        p->io_source = sd_event_source_disable_unref(p->io_source);
        if (p->fd >= 0)
                (void) close(p->fd);
        p->fd = -1;
        p->eof = true;
}

/* Calls done once the process is gone and its stdout is closed (or the timeout passed). */
static void version_probe_maybe_finish(VersionProbe *p) {
        const char *line = NULL;
        char *start, *end;
        int r;

        if (p->finished || !p->exited || !p->eof)
                return;
        p->finished = true;
        p->timer_source = sd_event_source_disable_unref(p->timer_source);

        if (p->timed_out)
                r = -ETIMEDOUT;
        else if (p->exit_r < 0)
                r = p->exit_r;
        else {
                p->output[p->len] = 0;
                start = p->output + strspn(p->output, " \t\r");
                end = start + strcspn(start, "\n");
                while (end > start && strchr(" \t\r", end[-1]))
                        end--;
                *end = 0;
                line = start;
                r = isempty(line) ? -ENODATA : 0;
        }
        /* done may free p: nothing touches p after this. */
        p->done(p, r, r < 0 ? NULL : line, p->userdata);
}

static int on_probe_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        VersionProbe *p = userdata;
        char discard[4096];

        for (;;) {
                /* Beyond the cap, keep draining so the child never blocks on a full pipe. */
                bool room = p->len < VERSION_OUTPUT_MAX;
                ssize_t n = room ? read(fd, p->output + p->len, VERSION_OUTPUT_MAX - p->len)
                                 : read(fd, discard, sizeof(discard));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        break; /* treat a read error as the end of the output */
                }
                if (n == 0)
                        break;
                if (room)
                        p->len += (size_t) n;
        }
        version_probe_close_pipe(p);
        version_probe_maybe_finish(p);
        return 0;
}

static int on_probe_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        VersionProbe *p = userdata;

        p->exited = true;
        p->exit_r = si->si_code == CLD_EXITED && si->si_status == 0 ? 0 : -EIO;
        version_probe_maybe_finish(p);
        return 0;
}

static int on_probe_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        VersionProbe *p = userdata;
        int r;

        p->timed_out = true;
        /* Its output no longer matters; a grandchild holding the pipe must not keep us waiting. */
        version_probe_close_pipe(p);
        if (!p->exited) {
                r = sd_event_source_send_child_signal(p->child_source, SIGKILL, NULL, 0);
                if (r < 0)
                        log_debug_errno(r, "Failed to kill the k0s version probe: %m");
        }
        version_probe_maybe_finish(p);
        return 0;
}

int version_probe_start(sd_event *e, const char *binary, uint64_t timeout_usec,
                        VersionProbeHandler done, void *userdata, VersionProbe **ret) {
        _cleanup_(version_probe_freep) VersionProbe *p = NULL;
        _cleanup_close_ int rfd = -1, wfd = -1;
        char *argv[] = { (char *) binary, (char *) "version", NULL };
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int fds[2], r;
        uint64_t now;
        pid_t pid;

        if (!e || !binary || !done || !ret)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->fd = -1;
        p->done = done;
        p->userdata = userdata;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rfd = fds[0];
        wfd = fds[1];
        /* Only our end is non-blocking: k0s writes to a normal pipe. */
        if (fcntl(rfd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, wfd, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        if (r != 0) {
                (void) posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        r = spawn_attr_init(&attr);
        if (r < 0) {
                (void) posix_spawn_file_actions_destroy(&fa);
                return r;
        }
        r = posix_spawn(&pid, binary, &fa, &attr, argv, environ);
        (void) posix_spawn_file_actions_destroy(&fa);
        (void) posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;
        (void) close(TAKE_FD(wfd)); /* so EOF comes when the child is done */

        r = sd_event_add_child(e, &p->child_source, pid, WEXITED, on_probe_exit, p);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        /* Freeing the probe early kills and reaps the child: no stray process, no zombie. */
        r = sd_event_source_set_child_process_own(p->child_source, true);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->child_source, "k0s-version");

        r = sd_event_add_io(e, &p->io_source, rfd, EPOLLIN, on_probe_io, p);
        if (r < 0)
                return r;
        p->fd = TAKE_FD(rfd);

        r = sd_event_now(e, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        r = sd_event_add_time(e, &p->timer_source, CLOCK_MONOTONIC, now + timeout_usec,
                              USEC_PER_MSEC, on_probe_timeout, p);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(p);
        return 0;
}

VersionProbe *version_probe_free(VersionProbe *p) {
        if (!p)
                return NULL;
        p->timer_source = sd_event_source_disable_unref(p->timer_source);
        version_probe_close_pipe(p);
        p->child_source = sd_event_source_disable_unref(p->child_source);
        free(p);
        return NULL;
}
