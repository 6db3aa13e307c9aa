/* SPDX-License-Identifier: MIT */
/*
 * inotify on the k0s binary's directory (not on the file: a rename over it replaces the inode
 * the watch would be on), filtered to the binary's name, debounced by a short timer. What to do
 * about a change (probe the version again, hand the supervisor a new spec) is the daemon's.
 *
 * Autopilot (k0s pkg/autopilot/controller/signal/k0s/apply.go) downloads to <dir>/k0s.tmp,
 * chmods it, hard-links it to <dir>/k0s.new and renames that over <dir>/k0s, where <dir> is the
 * directory of os.Executable() (symlinks resolved); then restart_unix.go sends k0s SIGTERM and
 * expects the init system to start the new binary. So both the configured path and the path it
 * resolves to are watched; only IN_MOVED_TO of the name matters there, k0s.tmp/k0s.new are not
 * ours. An operator's `cp` over the file shows as IN_CLOSE_WRITE (after IN_MODIFY).
 */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "util.h"
#include "binary-watch.h"
#include "event-util.h"
#include "log.h"

#define BINARY_WATCH_MASK \
        (IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_ATTRIB | IN_DELETE | IN_MOVED_FROM | \
         IN_ONLYDIR)

/* The configured path and, if it is a symlink, the file it resolves to. */
typedef struct WatchedName {
        char *dir;
        char *name;
        int wd; /* -1 until attached */
} WatchedName;

struct BinaryWatch {
        sd_event *event;
        WatchedName names[2];
        size_t n_names;
        int fd; /* inotify */
        sd_event_source *io_source;
        sd_event_source *quiet_source; /* fires BINARY_WATCH_QUIET_USEC after the last change */
        BinaryWatchHandler handler;
        void *userdata;
};

static int watched_name_set(WatchedName *n, const char *path) {
        const char *slash = strrchr(path, '/');

        if (!slash || isempty(slash + 1))
                return -EINVAL;
        n->wd = -1;
        n->dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
        n->name = strdup(slash + 1);
        return n->dir && n->name ? 0 : -ENOMEM;
}

int binary_watch_new(const char *path, BinaryWatchHandler handler, void *userdata,
                     BinaryWatch **ret) {
        _cleanup_(binary_watch_freep) BinaryWatch *w = NULL;
        _cleanup_free_ char *real = NULL;
        int r;

        if (!path || !handler || !ret)
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->handler = handler;
        w->userdata = userdata;
        r = watched_name_set(&w->names[w->n_names++], path);
        if (r < 0)
                return r;
        real = realpath(path, NULL);
        if (real && !streq(real, path)) {
                r = watched_name_set(&w->names[w->n_names++], real);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(w);
        return 0;
}

static int on_quiet(sd_event_source *src, uint64_t usec, void *userdata) {
        BinaryWatch *w = userdata;

        log_debug("k0s binary %s/%s changed.", w->names[0].dir, w->names[0].name);
        w->handler(w, w->userdata);
        return 0;
}

/* 1 if the batch in buf names our binary (or the queue overflowed), else 0. */
static int binary_watch_scan(BinaryWatch *w, const char *buf, size_t len) {
        int hit = 0;

        for (size_t off = 0; off + sizeof(struct inotify_event) <= len;) {
                const struct inotify_event *ev = (const struct inotify_event *) (buf + off);

                if (ev->mask & IN_Q_OVERFLOW)
                        hit = 1;
                for (size_t i = 0; ev->len > 0 && i < w->n_names; i++)
                        if (ev->wd == w->names[i].wd && streq(ev->name, w->names[i].name))
                                hit = 1;
                off += sizeof(struct inotify_event) + ev->len;
        }
        return hit;
}

static int on_inotify(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        BinaryWatch *w = userdata;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool hit = false;
        int r;

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                log_warning_errno(errno, "Failed to read inotify events: %m");
                        break;
                }
                if (n == 0)
                        break;
                hit = binary_watch_scan(w, buf, (size_t) n) || hit;
        }
        if (!hit)
                return 0;
        /* Re-armed on every change: the handler runs once writes have stopped. */
        r = event_timer_arm(w->event, &w->quiet_source, BINARY_WATCH_QUIET_USEC, USEC_PER_MSEC,
                            false, on_quiet, w, "k0s-binary-quiet");
        if (r < 0) {
                log_warning_errno(r, "Failed to arm the binary watch timer, calling at once: %m");
                w->handler(w, w->userdata);
        }
        return 0;
}

int binary_watch_attach(BinaryWatch *w, sd_event *e) {
        int r;

        if (!w || !e)
                return -EINVAL;
        if (w->event)
                return -EBUSY;
        w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (w->fd < 0)
                return -errno;
        for (size_t i = 0; i < w->n_names; i++) {
                w->names[i].wd = inotify_add_watch(w->fd, w->names[i].dir, BINARY_WATCH_MASK);
                if (w->names[i].wd < 0)
                        return -errno;
        }
        r = sd_event_add_io(e, &w->io_source, w->fd, EPOLLIN, on_inotify, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->io_source, "k0s-binary-watch");
        w->event = sd_event_ref(e);
        return 0;
}

BinaryWatch *binary_watch_free(BinaryWatch *w) {
        if (!w)
                return NULL;
        w->io_source = sd_event_source_disable_unref(w->io_source);
        w->quiet_source = sd_event_source_disable_unref(w->quiet_source);
        if (w->fd >= 0)
                (void) close(w->fd);
        sd_event_unref(w->event);
        for (size_t i = 0; i < w->n_names; i++) {
                free(w->names[i].dir);
                free(w->names[i].name);
        }
        free(w);
        return NULL;
}
