/* SPDX-License-Identifier: MIT */
/*
 * The one-shot `k0s version` child: spawned clean (spawn.c), its stdout read through a pipe on the
 * event loop, killed at the timeout, always reaped. Parsing the version and deciding when to
 * probe again is the daemon's business.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"
#include "event-util.h"
#include "log.h"
#include "spawn-child.h"
#include "version-probe.h"

#define VERSION_OUTPUT_MAX 4096

struct VersionProbe {
        sd_event_source *child_source; /* owns the process: freeing it kills and reaps */
        sd_event_source *io_source; /* the read end of the stdout pipe */
        sd_event_source *timer_source;
        int fd;
        char output[VERSION_OUTPUT_MAX + 1];
        size_t len;
        bool exited, eof, timed_out, finished;
        int exit_r;
        BinaryId binary_id;
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
        event_timer_disarm(p->timer_source);

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

/* Spawns `binary version` with stdout into a pipe; returns the pipe's read end (non-blocking). */
static int version_probe_spawn(const char *binary, pid_t *ret_pid) {
        _cleanup_close_ int rfd = -1, wfd = -1;
        _cleanup_strv_free_ char **env = NULL;
        char *argv[] = { (char *) binary, (char *) "version", NULL };
        int fds[2], r;

        env = spawn_build_env(NULL, NULL);
        if (!env)
                return -ENOMEM;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rfd = fds[0];
        wfd = fds[1];
        /* Only our end is non-blocking: k0s writes to a normal pipe. */
        if (fcntl(rfd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        r = spawn_child(
                &(const SpawnSpec){ .argv = argv, .env = env, .stdout_fd = wfd, .stderr_fd = -1 },
                ret_pid);
        if (r < 0)
                return r;
        return TAKE_FD(rfd); /* wfd is closed on return: EOF comes when the child is done */
}

static int version_probe_watch(VersionProbe *p, sd_event *e, pid_t pid, uint64_t timeout_usec) {
        int r;

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

        r = sd_event_add_io(e, &p->io_source, p->fd, EPOLLIN, on_probe_io, p);
        if (r < 0)
                return r;
        return event_timer_arm(e, &p->timer_source, timeout_usec, USEC_PER_MSEC, false,
                               on_probe_timeout, p, "k0s-version-timeout");
}

int version_probe_start(sd_event *e, const char *binary, uint64_t timeout_usec,
                        VersionProbeHandler done, void *userdata, VersionProbe **ret) {
        _cleanup_(version_probe_freep) VersionProbe *p = NULL;
        pid_t pid;
        int r;

        if (!e || !binary || !done || !ret)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->fd = -1;
        p->done = done;
        p->userdata = userdata;

        /* Before the spawn: if the file is replaced meanwhile, the id is older than the version
         * and the supervisor's check before a start asks for another probe. */
        r = binary_id_from_path(binary, &p->binary_id);
        if (r < 0)
                return r;
        r = version_probe_spawn(binary, &pid);
        if (r < 0)
                return r;
        p->fd = r;
        r = version_probe_watch(p, e, pid, timeout_usec);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

const BinaryId *version_probe_get_binary_id(const VersionProbe *p) {
        return &p->binary_id;
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
