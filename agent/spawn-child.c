/* SPDX-License-Identifier: MIT */
/*
 * The clean child: clone(CLONE_VM|CLONE_VFORK) as glibc's posix_spawn does (no page-table copy,
 * no copy-on-write faults: a plain fork() of the agent cost ~3 ms of reaction time), reset what
 * the agent set up (signals, descriptors, environment), write the pidfile from the child, exec.
 * Used by the supervisor (k0s), the version probe and `render`. When to start or stop a child,
 * and watching it, is not here.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"
#include "spawn-child.h"

/* The pidfile's tail (the spec hash) is small; this bounds the child's stack buffer. */
#define PIDFILE_TAIL_MAX 512

/* Per-service variables systemd sets for the agent: meaningless or harmful in k0s's tree. */
static const char *const dropped_names[] = {
        "NOTIFY_SOCKET",
        "INVOCATION_ID",
        "SYSTEMD_EXEC_PID",
        "MANAGERPID",
        "MAINPID",
        "SERVICE_RESULT",
        "EXIT_CODE",
        "EXIT_STATUS",
        "CREDENTIALS_DIRECTORY",
        NULL,
};
static const char *const dropped_prefixes[] = {
        "WATCHDOG_", "LISTEN_", "TRIGGER_", "MONITOR_", NULL,
};

static bool env_name_in(const char *const *l, const char *entry) {
        size_t n = strcspn(entry, "=");

        for (const char *const *i = l; i && *i; i++)
                if (strncmp(*i, entry, n) == 0 && ((*i)[n] == '=' || (*i)[n] == 0))
                        return true;
        return false;
}

static bool env_dropped(const char *entry) {
        if (env_name_in(dropped_names, entry))
                return true;
        for (const char *const *p = dropped_prefixes; *p; p++)
                if (startswith(entry, *p))
                        return true;
        return false;
}

char **spawn_build_env(char *const *extra, const char *const *more) {
        _cleanup_strv_free_ char **env = strv_copy(NULL);

        if (!env)
                return NULL;
        for (char **i = environ; i && *i; i++) {
                if (env_dropped(*i) || env_name_in((const char *const *) extra, *i) ||
                    env_name_in(more, *i))
                        continue;
                if (strv_extend(&env, *i) < 0)
                        return NULL;
        }
        for (char *const *i = extra; i && *i; i++)
                if (!env_name_in(more, *i) && strv_extend(&env, *i) < 0)
                        return NULL;
        for (const char *const *i = more; i && *i; i++)
                if (strv_extend(&env, *i) < 0)
                        return NULL;
        return TAKE_PTR(env);
}

int binary_id_from_path(const char *path, BinaryId *ret) {
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        *ret = (BinaryId){
                .valid = true,
                .dev = st.st_dev,
                .ino = st.st_ino,
                .size = st.st_size,
                .mtime_nsec = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
        };
        return 0;
}

/* ---- in the child: async-signal-safe system calls only, no malloc, no stdio -------------- */

static _noreturn_ void child_fail(int errfd, int error) {
        (void) !write(errfd, &error, sizeof(error));
        _exit(127);
}

static int child_reset_signals(void) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t empty;

        /* sigaction() refuses SIGKILL, SIGSTOP and glibc's internal signals: nothing to reset. */
        for (int sig = 1; sig < _NSIG; sig++)
                (void) sigaction(sig, &sa, NULL);
        (void) sigemptyset(&empty);
        return sigprocmask(SIG_SETMASK, &empty, NULL) < 0 ? -errno : 0;
}

/* So that the dup2()s onto 0-2 below never overwrite a source. */
static int child_move_above_stdio(int *fd) {
        int nfd;

        if (*fd < 0 || *fd > STDERR_FILENO)
                return 0;
        nfd = fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        if (nfd < 0)
                return -errno;
        *fd = nfd;
        return 0;
}

static int child_setup_stdio(int out, int err) {
        int null_fd, r;

        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0)
                return -errno;
        r = child_move_above_stdio(&null_fd);
        if (r == 0)
                r = child_move_above_stdio(&out);
        if (r == 0)
                r = child_move_above_stdio(&err);
        if (r < 0)
                return r;
        /* Every source is above 2 now, so dup2() clears close-on-exec on 0, 1 and 2. */
        if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(out >= 0 ? out : null_fd, STDOUT_FILENO) < 0 ||
            dup2(err >= 0 ? err : null_fd, STDERR_FILENO) < 0)
                return -errno;
        return 0;
}

/* Every descriptor above 2 except keep (close-on-exec itself: it reports a failed exec). */
static void child_close_fds(int keep) {
        struct rlimit rl;

#ifdef SYS_close_range
        if ((keep <= 3 || syscall(SYS_close_range, 3U, (unsigned) keep - 1, 0U) == 0) &&
            syscall(SYS_close_range, (unsigned) keep + 1, ~0U, 0U) == 0)
                return;
#endif
        /* Kernels before 5.9: every possible descriptor up to the limit. */
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
            rl.rlim_cur > INT_MAX)
                rl.rlim_cur = 65536;
        for (int fd = 3; fd < (int) rl.rlim_cur; fd++)
                if (fd != keep)
                        (void) close(fd);
}

static size_t fmt_u64(char *buf, uint64_t v) {
        char tmp[24];
        size_t n = 0, len;

        do {
                tmp[n++] = (char) ('0' + v % 10);
                v /= 10;
        } while (v > 0);
        for (len = 0; len < n; len++)
                buf[len] = tmp[n - 1 - len];
        return n;
}

/* Field 22 of /proc/self/stat: the start time, in clock ticks after boot. */
static int child_read_starttime(uint64_t *ret) {
        char buf[4096];
        const char *p = NULL;
        uint64_t v = 0;
        ssize_t n;
        int fd;

        fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        (void) close(fd);
        if (n <= 0)
                return n < 0 ? -errno : -EBADMSG;
        buf[n] = 0;
        /* comm (field 2) may contain spaces and parentheses: start after the last ')'. */
        for (const char *c = buf; *c; c++)
                if (*c == ')')
                        p = c + 1;
        if (!p)
                return -EBADMSG;
        for (int field = 3; field <= 22; field++) {
                if (*p != ' ')
                        return -EBADMSG;
                p++;
                if (field == 22)
                        break;
                while (*p && *p != ' ')
                        p++;
        }
        if (*p < '0' || *p > '9')
                return -EBADMSG;
        for (; *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (uint64_t) (*p - '0');
        *ret = v;
        return 0;
}

static int child_write_pidfile(const SpawnSpec *spec) {
        char buf[64 + PIDFILE_TAIL_MAX];
        size_t len = 0, tail = strlen(spec->pidfile_tail);
        uint64_t starttime = 0;
        int fd, r;

        r = child_read_starttime(&starttime);
        if (r < 0)
                return r;
        len += fmt_u64(buf + len, (uint64_t) getpid());
        buf[len++] = '\n';
        len += fmt_u64(buf + len, starttime);
        buf[len++] = '\n';
        memcpy(buf + len, spec->pidfile_tail, tail);
        len += tail;

        fd = open(spec->pidfile_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < len;) {
                ssize_t n = write(fd, buf + off, len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        (void) close(fd);
                        (void) unlink(spec->pidfile_tmp);
                        return r;
                }
                off += (size_t) n;
        }
        /* No fsync: the file has to outlive the agent, not the machine (k0s does not either). */
        if (close(fd) < 0 || rename(spec->pidfile_tmp, spec->pidfile) < 0) {
                r = -errno;
                (void) unlink(spec->pidfile_tmp);
                return r;
        }
        return 0;
}

static _noreturn_ void child_run(const SpawnSpec *spec, int errfd) {
        int r;

        r = child_move_above_stdio(&errfd);
        if (r == 0)
                r = child_reset_signals();
        /* Own session: a Ctrl-C on the agent's terminal must not reach k0s. */
        if (r == 0 && setsid() < 0)
                r = -errno;
        if (r == 0)
                r = child_setup_stdio(spec->stdout_fd, spec->stderr_fd);
        if (r == 0)
                child_close_fds(errfd);
        if (r == 0 && spec->pidfile)
                r = child_write_pidfile(spec);
        if (r < 0)
                child_fail(errfd, -r);
        (void) execve(spec->argv[0], spec->argv, spec->env);
        r = errno;
        /* The exec failed: the pidfile must not name this process any more. */
        if (spec->pidfile)
                (void) unlink(spec->pidfile);
        child_fail(errfd, r);
}

typedef struct ChildArgs {
        const SpawnSpec *spec;
        int errfd;
} ChildArgs;

static int child_main(void *userdata) {
        const ChildArgs *a = userdata;
        child_run(a->spec, a->errfd);
}

/* ---- in the parent ------------------------------------------------------------------------ */

/* The child's own stack: it shares the agent's memory until it execs (the agent is suspended
 * meanwhile), and the code above runs on it; ASan-instrumented frames need room. */
#define CHILD_STACK_SIZE (256u * 1024u)

static pid_t clone_child(const SpawnSpec *spec, int errfd) {
        ChildArgs args = { .spec = spec, .errfd = errfd };
        sigset_t all, old;
        void *stack;
        pid_t pid;
        int e;

        stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED)
                return -errno;
        /* No handler of the agent may run in the child on the shared memory before it has reset
         * them all (child_reset_signals() ends with an empty mask). */
        (void) sigfillset(&all);
        (void) pthread_sigmask(SIG_BLOCK, &all, &old);
        pid = clone(child_main, (char *) stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD,
                    &args);
        e = errno;
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        (void) munmap(stack, CHILD_STACK_SIZE);
        return pid < 0 ? -e : pid;
}

int spawn_child(const SpawnSpec *spec, pid_t *ret_pid) {
        _cleanup_close_ int rfd = -1, wfd = -1;
        int fds[2], error = 0;
        ssize_t n;
        pid_t pid;

        if (!spec || !spec->argv || !spec->argv[0] || !spec->env || !ret_pid)
                return -EINVAL;
        if (spec->pidfile &&
            (!spec->pidfile_tmp || !spec->pidfile_tail ||
             strlen(spec->pidfile_tail) > PIDFILE_TAIL_MAX))
                return -EINVAL;

        /* The child reports a failure before or in exec() here; a successful exec closes it. */
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rfd = fds[0];
        wfd = fds[1];

        pid = clone_child(spec, wfd);
        if (pid < 0)
                return pid;

        (void) close(TAKE_FD(wfd));
        do
                n = read(rfd, &error, sizeof(error));
        while (n < 0 && errno == EINTR);
        if (n == 0) {
                *ret_pid = pid;
                return 0;
        }
        if (n != (ssize_t) sizeof(error) || error <= 0) {
                /* Cannot tell whether it exec'd: never leave an unknown child behind. */
                error = n < 0 ? errno : EIO;
                (void) kill(pid, SIGKILL);
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return -error;
}
