/* SPDX-License-Identifier: MIT */
/*
 * Owns one inotify descriptor that follows a directory which may not exist yet (the nearest
 * existing ancestor is watched until it does). Knows nothing about the files inside: the
 * handler decides (clock.c: timesyncd's `synchronized`; metrics.c: the textfile directory).
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path-watch.h"
#include "util.h"

/* What an ancestor must tell: a child created or renamed in, or the ancestor itself going. */
#define ANCESTOR_MASK (IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define SELF_MASK (IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct PathWatch {
        char *dir;
        uint32_t mask;
        PathWatchHandler handler;
        void *userdata;
        int fd; /* inotify */
        int wd; /* the one watch we hold, -1 = none */
        bool dir_exists;
        sd_event_source *io;
};

int path_watch_new(const char *dir, uint32_t mask, PathWatchHandler handler, void *userdata,
                   PathWatch **ret) {
        if (!dir || dir[0] != '/' || !handler)
                return -EINVAL;
        PathWatch *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (PathWatch){
                .mask = mask, .handler = handler, .userdata = userdata, .fd = -1, .wd = -1
        };
        w->dir = strdup(dir);
        if (!w->dir) {
                free(w);
                return -ENOMEM;
        }
        /* "/a/b/" and "/a/b" are one directory. */
        for (size_t n = strlen(w->dir); n > 1 && w->dir[n - 1] == '/'; n--)
                w->dir[n - 1] = 0;
        *ret = w;
        return 0;
}

static bool is_dir(const char *p) {
        struct stat st;
        return stat(p, &st) >= 0 && S_ISDIR(st.st_mode);
}

/* Cut p at its last '/' (keeping "/" itself); false when p is "/" already. */
static bool path_parent(char *p) {
        char *s = strrchr(p, '/');
        if (!s || (s == p && p[1] == 0))
                return false;
        if (s == p)
                p[1] = 0;
        else
                *s = 0;
        return true;
}

/* Watch dir, or its deepest existing ancestor. Re-checks after adding the watch so a component
 * created in between is not missed. */
static int path_watch_resolve(PathWatch *w) {
        for (unsigned tries = 0; tries < 64; tries++) {
                _cleanup_free_ char *p = strdup(w->dir);
                if (!p)
                        return -ENOMEM;
                while (!is_dir(p))
                        if (!path_parent(p))
                                return -ENOENT;

                bool self = streq(p, w->dir);
                if (w->wd >= 0)
                        (void) inotify_rm_watch(w->fd, w->wd);
                w->wd = inotify_add_watch(w->fd, p, self ? w->mask | SELF_MASK : ANCESTOR_MASK);
                if (w->wd < 0) {
                        if (errno == ENOENT || errno == ENOTDIR)
                                continue; /* went away meanwhile */
                        return -errno;
                }
                w->dir_exists = self;
                if (self)
                        return 0;
                /* Did the next component appear before the watch was in place? */
                _cleanup_free_ char *next = strdup(w->dir);
                if (!next)
                        return -ENOMEM;
                size_t n = strlen(p);
                char *slash = strchr(next + (n == 1 ? 1 : n + 1), '/');
                if (slash)
                        *slash = 0;
                if (!is_dir(next))
                        return 0;
        }
        return -ELOOP;
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PathWatch *w = userdata;
        union {
                struct inotify_event ev;
                char buf[4096];
        } u;
        bool resolve = false, notify = false;

        for (;;) {
                ssize_t l = read(fd, &u, sizeof(u));
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        break; /* EAGAIN: drained */
                }
                for (char *p = u.buf; p < u.buf + l;) {
                        struct inotify_event *e = (struct inotify_event *) p;
                        p += sizeof(*e) + e->len;
                        if (e->mask & IN_Q_OVERFLOW) {
                                resolve = notify = true;
                                continue;
                        }
                        if (e->wd != w->wd)
                                continue; /* a watch we already dropped */
                        if (!w->dir_exists ||
                            (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)))
                                resolve = true;
                        else if (e->mask & w->mask)
                                notify = true;
                }
        }
        if (resolve) {
                bool before = w->dir_exists;
                if (path_watch_resolve(w) < 0)
                        w->wd = -1, w->dir_exists = false;
                if (before != w->dir_exists)
                        notify = true;
        }
        if (notify)
                w->handler(w, w->userdata);
        return 0;
}

int path_watch_attach(PathWatch *w, sd_event *e) {
        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0)
                return -errno;
        int r = path_watch_resolve(w);
        if (r < 0)
                return r;
        r = sd_event_add_io(e, &w->io, w->fd, EPOLLIN, on_inotify, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->io, "path-watch");
        return 0;
}

bool path_watch_dir_exists(PathWatch *w) {
        return w && w->dir_exists;
}

const char *path_watch_dir(PathWatch *w) {
        return w->dir;
}

PathWatch *path_watch_free(PathWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        if (w->fd >= 0)
                close(w->fd);
        free(w->dir);
        free(w);
        return NULL;
}
