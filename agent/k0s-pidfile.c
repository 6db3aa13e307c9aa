/* SPDX-License-Identifier: MIT */
/*
 * The k0s pidfile's format, and what /proc says about the process a pidfile names (start time,
 * thread-group leader, executable, environment marker). Reading the pidfile at the right moment,
 * pinning the process and deciding what to do with the answer is the supervisor's business; the
 * child writes its own pidfile (spawn.c).
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"
#include "atomic-file.h"
#include "log.h"
#include "k0s-pidfile.h"

#define PROC_STATUS_MAX (64 * 1024)
#define PROC_ENVIRON_MAX (4 * 1024 * 1024)

int k0s_pidfile_parse(char *content, pid_t *ret_pid, uint64_t *ret_starttime, char **ret_hash) {
        char *nl1, *nl2, *nl3, *hash;
        uint64_t starttime;
        int pid;

        nl1 = strchr(content, '\n');
        nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
        nl3 = nl2 ? strchr(nl2 + 1, '\n') : NULL;
        if (!nl3 || nl3[1] != 0 || nl3 == nl2 + 1)
                return -EBADMSG;
        *nl1 = *nl2 = *nl3 = 0;
        if (safe_atoi(content, &pid) < 0 || pid <= 0 || safe_atou64(nl1 + 1, &starttime) < 0)
                return -EBADMSG;
        hash = strdup(nl2 + 1);
        if (!hash)
                return -ENOMEM;
        *ret_pid = pid;
        *ret_starttime = starttime;
        *ret_hash = hash;
        return 0;
}

int k0s_pidfile_write(const char *path, pid_t pid, uint64_t starttime, const char *hash) {
        _cleanup_free_ char *content = NULL;

        content = strdup_printf("%d\n%" PRIu64 "\n%s\n", (int) pid, starttime, hash);
        if (!content)
                return -ENOMEM;
        return atomic_file_write(path, content, strlen(content), 0644);
}

int k0s_proc_get_stat(pid_t pid, char *ret_state, uint64_t *ret_starttime) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        char *p, *save = NULL, *tok, state;
        int r;

        path = strdup_printf("/proc/%d/stat", (int) pid);
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

        path = strdup_printf("/proc/%d/status", (int) pid);
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

        path = strdup_printf("/proc/%d/environ", (int) pid);
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

/* exe is `want`, or "want (deleted)" after the file was replaced. */
static bool exe_matches(const char *exe, const char *want) {
        return streq(exe, want) ||
                (startswith(exe, want) && streq(exe + strlen(want), " (deleted)"));
}

static int readlink_exe(const char *path, char *buf, size_t size) {
        ssize_t n = readlink(path, buf, size - 1);

        if (n < 0)
                return -errno;
        buf[n] = 0;
        return 0;
}

/* 1: /proc/PID/exe is `binary`; 0: another program; -EAGAIN: the agent itself (a child that has
 * not exec'd yet); -errno: unreadable. */
static int proc_exe_is(pid_t pid, const char *binary) {
        _cleanup_free_ char *path = NULL, *want = NULL;
        char exe[PATH_MAX + sizeof(" (deleted)")], self[PATH_MAX + sizeof(" (deleted)")];
        int r;

        path = strdup_printf("/proc/%d/exe", (int) pid);
        if (!path)
                return -ENOMEM;
        r = readlink_exe(path, exe, sizeof(exe));
        if (r < 0)
                return r;
        want = realpath(binary, NULL);
        if (!want) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                /* The binary is gone (mid-upgrade): compare with the path as configured. */
                want = strdup(binary);
                if (!want)
                        return -ENOMEM;
        }
        if (exe_matches(exe, want))
                return 1;
        if (readlink_exe("/proc/self/exe", self, sizeof(self)) >= 0 &&
            (streq(exe, self) || exe_matches(exe, self) || exe_matches(self, exe)))
                return -EAGAIN;
        return 0;
}

static bool errno_is_gone(int r) {
        return r == -ENOENT || r == -ESRCH;
}

int k0s_proc_check(pid_t pid, uint64_t starttime, const char *binary, const char **ret_reason) {
        uint64_t st = 0;
        pid_t tgid = 0;
        int r;

        if (pid == getpid()) {
                *ret_reason = "it is this agent";
                return 0;
        }
        r = k0s_proc_get_stat(pid, NULL, &st);
        if (r < 0) {
                *ret_reason = errno_is_gone(r) ? "no such process" : "cannot read its start time";
                return errno_is_gone(r) ? 0 : r;
        }
        if (st != starttime) {
                *ret_reason = "its start time differs (PID reused)";
                return 0;
        }
        r = proc_get_tgid(pid, &tgid);
        if (r < 0 && !errno_is_gone(r)) {
                *ret_reason = "cannot read its status";
                return r;
        }
        if (r < 0 || tgid != pid) {
                *ret_reason = r < 0 ? "no such process" : "not a thread-group leader";
                return 0;
        }
        r = proc_exe_is(pid, binary);
        if (r == -EAGAIN) {
                *ret_reason = "it is an agent's child that has not become k0s yet";
                return r;
        }
        if (r < 0 && !errno_is_gone(r)) {
                *ret_reason = "cannot read its executable";
                return r;
        }
        if (r <= 0) {
                *ret_reason = "its executable is not the k0s binary";
                return 0;
        }
        r = proc_environ_contains(pid, SUPERVISOR_MARKER_ENV);
        if (r < 0 && !errno_is_gone(r)) {
                *ret_reason = "cannot read its environment";
                return r;
        }
        if (r <= 0) {
                *ret_reason = "its environment lacks " SUPERVISOR_MARKER_ENV;
                return 0;
        }
        return 1;
}

/* ---- the pidfile's process: read, pin, verify -------------------------------------------- */

static int pidfd_open_syscall(pid_t pid) {
        long fd = syscall(SYS_pidfd_open, pid, 0); /* pidfds are always close-on-exec */
        return fd < 0 ? -errno : (int) fd;
}

void k0s_candidate_done(K0sCandidate *c) {
        c->hash = mfree(c->hash);
        if (c->pidfd >= 0)
                (void) close(c->pidfd);
        c->pidfd = -1;
}

/* Each step: 1 go on, 0 stale (*reason set) or nothing there, -errno undecidable (*reason). */
static int adopt_read(const char *pidfile, K0sCandidate *c, const char **reason) {
        _cleanup_free_ char *content = NULL;
        int r;

        r = read_file_full(pidfile, K0S_PIDFILE_MAX, &content, NULL);
        if (r == -ENOENT)
                return 0;
        if (r == -EFBIG) {
                *reason = "too large";
                return 0;
        }
        if (r < 0) {
                *reason = "cannot read the pidfile";
                return r;
        }
        r = k0s_pidfile_parse(content, &c->pid, &c->starttime, &c->hash);
        if (r == -ENOMEM) {
                *reason = "out of memory";
                return r;
        }
        if (r < 0) {
                *reason = "malformed";
                return 0;
        }
        return 1;
}

/* Pin the process first, so every check after this is about this very process. */
static int adopt_pin(K0sCandidate *c, const char **reason) {
        int fd = pidfd_open_syscall(c->pid);

        if (fd == -ESRCH) {
                *reason = "no such process";
                return 0;
        }
        if (fd == -ENOSYS) {
                log_debug("No pidfd support, an adopted k0s is watched through /proc.");
                return 1;
        }
        if (fd < 0) {
                *reason = "cannot open a pidfd for it";
                return fd;
        }
        c->pidfd = fd;
        return 1;
}

static int adopt_verify(K0sCandidate *c, const char *binary, const char **reason) {
        struct pollfd pfd;
        int r;

        r = k0s_proc_check(c->pid, c->starttime, binary, reason);
        if (r <= 0)
                return r;
        if (c->pidfd >= 0) {
                /* Checked via /proc by PID: make sure the pinned process did not die meanwhile. */
                pfd = (struct pollfd){ .fd = c->pidfd, .events = POLLIN };
                if (poll(&pfd, 1, 0) != 0) {
                        *reason = "it exited";
                        return 0;
                }
        }
        return 1;
}

int k0s_pidfile_inspect(const char *pidfile, const char *binary, K0sCandidate *c,
                        const char **ret_reason) {
        int r;

        *ret_reason = NULL;
        r = adopt_read(pidfile, c, ret_reason);
        if (r > 0)
                r = adopt_pin(c, ret_reason);
        if (r > 0)
                r = adopt_verify(c, binary, ret_reason);
        return r;
}
