/* SPDX-License-Identifier: MIT */
/*
 * inotify on the k0s binary's directory (not on the file: a rename over it replaces the inode
 * the watch would be on), filtered to the binary's name, debounced by a short timer. What to do
 * about a change (probe the version again, hand the supervisor a new spec) is the daemon's.
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

struct BinaryWatch {
        sd_event *event;
        char *dir;
        char *name;
        int fd; /* inotify */
        sd_event_source *io_source;
        sd_event_source *quiet_source; /* fires BINARY_WATCH_QUIET_USEC after the last change */
        BinaryWatchHandler handler;
        void *userdata;
};

int binary_watch_new(const char *path, BinaryWatchHandler handler, void *userdata,
                     BinaryWatch **ret) {
        _cleanup_(binary_watch_freep) BinaryWatch *w = NULL;
        const char *slash;

        if (!path || !handler || !ret)
                return -EINVAL;
        slash = strrchr(path, '/');
        if (!slash || isempty(slash + 1))
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->handler = handler;
        w->userdata = userdata;
        w->dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
        w->name = strdup(slash + 1);
        if (!w->dir || !w->name)
                return -ENOMEM;
        *ret = TAKE_PTR(w);
        return 0;
}

static int on_quiet(sd_event_source *src, uint64_t usec, void *userdata) {
        BinaryWatch *w = userdata;

        log_debug("k0s binary %s/%s changed.", w->dir, w->name);
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
                else if (ev->len > 0 && streq(ev->name, w->name))
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
        if (inotify_add_watch(w->fd, w->dir, BINARY_WATCH_MASK) < 0)
                return -errno;
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
        free(w->dir);
        free(w->name);
        free(w);
        return NULL;
}
